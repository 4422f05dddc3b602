"""Writing generated source line by line: the one emitter of fwdjit's small code generators.

The tangent pass builds ASTs; the compiled training loop
(:mod:`fwdjit.training.chunk`), the forward-gradient estimator
(:mod:`fwdjit.training.estimator`) and the CUDA map kernels
(:mod:`fwdjit.targets.cuda.kernels`) are short fixed templates with a few
repeated parts, which read best as lines.  They all write them with
:class:`Source`: indentation follows ``with src.block(header):``, and the
result is plain text for ``ast.parse``/the cache.

>>> src = Source()
>>> with src.block("def f(x, n):"):
...     src("acc = 0.0")
...     with src.block("for i in range(n):"):
...         src("acc += x[i]", "# one line")
...     src("return acc")
>>> print(src.text(), end="")
def f(x, n):
    acc = 0.0
    for i in range(n):
        acc += x[i]
        # one line
    return acc
"""
from __future__ import annotations

import contextlib


class Source:
    """Lines of Python source at the current indentation (four spaces a level)."""

    def __init__(self, indent=0):
        self.lines = []
        self.level = indent

    def __call__(self, *lines):
        """Append ``lines``, each at the current indentation."""
        pad = "    " * self.level
        self.lines.extend(pad + line for line in lines)

    @contextlib.contextmanager
    def block(self, header):
        """``header`` (ending in ``:``) and, indented one level, what the ``with`` body writes."""
        self(header)
        self.level += 1
        try:
            yield self
        finally:
            self.level -= 1

    @contextlib.contextmanager
    def indented(self, levels=1):
        """Write the ``with`` body ``levels`` deeper, without a header line."""
        self.level += levels
        try:
            yield self
        finally:
            self.level -= levels

    def text(self):
        """The source, one line per entry, ending in a newline."""
        return "\n".join(self.lines) + "\n"
