"""NumPy functions and forms that Numba cannot compile, implemented for Numba (``overload``)."""
