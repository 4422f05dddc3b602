import numpy as np
from fwdjit import fwdjit

@fwdjit
def energy(x, k, n):
    """Potential energy of a chain of n springs with stiffness k."""
    e = 0.0
    for i in range(n - 1):
        d = x[i + 1] - x[i]
        e += 0.5 * k * d * d
    return e + np.sum(np.sin(x))

x = np.linspace(0.0, 1.0, 5)
print(energy(x, 2.0, 5))                                  # compiled primal
e, de = energy.jvp((x, 2.0, 5), (np.ones(5), None, None)) # directional derivative along ones
print(e, de)
print(energy.tangent_source)
