"""The compiler: a user function's source in, the source of its primal and tangent functions out.

It imports no target and no training code (``tests/test_layout.py`` checks
this); a target hands it what it needs through :class:`~fwdjit.compiler.tangent.Resolver`
(how a call to another user function is compiled) and
:func:`~fwdjit.compiler.callees.user_python_function`.

The passes, in the order they run for one product (primal, JVP, K-direction JVP),
one module each::

    resolve    source with absolute lines; every free name bound to its object
    validate   a whitelist of syntax; UnsupportedSyntax with file, line, caret and hint
    normalize  desugaring (augmented assignments, chained comparisons...), lines kept
    activity   which variables carry tangents (aliases, views, writes in callees)
    tangent    one tangent statement per primal statement, from the rules table (fwdjit.rules)
    primal     the primal function, with calls to user functions rewritten to their compiled twins
    vector     the K-direction (batched-tangent) form of a tangent function
    float32    the float32-safe twin of a generated function
    callees    which call targets are user functions (the protocol the targets share)

Rendering is ``ast.unparse``; writing and importing the result is the cache's
job (:mod:`fwdjit.targets.cache`).  Today the order is driven by the targets
(:class:`fwdjit.api.FwdjitFunction` for the CPU, :mod:`fwdjit.targets.cuda`):
moving it into one pipeline function here is the next step of issue 12.
"""
