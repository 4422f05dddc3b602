"""Errors raised by fwdjit.

Every error derives from :class:`FwdjitError`.  Errors about the *code* being
transformed (:class:`UnsupportedSyntax`, :class:`UnsupportedCall`) are raised
when the function is transformed and point at the real file and line, with the
source line, a caret, and a hint.  Errors about *inputs* (:class:`TangentError`)
say what was expected and what was given.
"""
from __future__ import annotations


class FwdjitError(Exception):
    """Base class of every error fwdjit raises on purpose."""


class TransformError(FwdjitError):
    """A construct that fwdjit cannot differentiate, found at transform time."""

    def __init__(self, message, *, filename=None, lineno=None, col=None,
                 source_line=None, hint=None, construct=None):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.col = col
        self.source_line = source_line
        self.hint = hint
        self.construct = construct
        super().__init__(self._format())

    def _format(self):
        parts = []
        where = ""
        if self.filename is not None:
            where = f"{self.filename}:{self.lineno}"
            if self.col is not None:
                where += f":{self.col + 1}"
            where += ": "
        parts.append(f"{where}{self.message}")
        if self.source_line is not None:
            line = self.source_line.rstrip("\n")
            stripped = line.lstrip()
            indent = len(line) - len(stripped)
            parts.append(f"    {stripped}")
            if self.col is not None and self.col >= indent:
                parts.append("    " + " " * (self.col - indent) + "^")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class UnsupportedSyntax(TransformError):
    """Python syntax outside the subset fwdjit differentiates."""


class UnsupportedCall(TransformError):
    """A call to a function fwdjit has no derivative rule for."""


class CompileError(TransformError):
    """Numba could not compile the generated code for the arguments of a call.

    Located at the user's line (the generated code's ``# file:line:`` comments map
    Numba's frames back), naming the operation and its arguments in NumPy's words;
    ``numba_message`` (and ``__cause__``) hold Numba's full text.
    """

    def __init__(self, message, *, numba_message="", cause=None, **kw):
        self.numba_message = numba_message
        self.cause = cause
        super().__init__(message, **kw)

    def _format(self):
        head, sep, hint = super()._format().rpartition("\nhint: ")
        text = head if sep else hint
        if self.cause:
            text += f"\ncause: {self.cause}"
        if sep:
            text += f"\nhint: {hint}"
        return text + "\n(Numba's full message: this error's .numba_message, or its __cause__)"


class InternalError(CompileError):
    """A failure inside one of fwdjit's own runtime helpers (``fj.*``): fwdjit's bug, not the user's."""


class TangentError(FwdjitError, ValueError):
    """Bad input to ``jvp``: wrong number, shape or dtype of tangents."""


class TangentMismatch(TangentError):
    """Raised from compiled code when a tangent does not match its primal.

    The Python wrapper turns it into a :class:`TangentError` with a full
    message; code that calls the compiled tangent function directly sees this
    one (it is also a :class:`TangentError`).
    """

    def __str__(self):
        if len(self.args) == 4:   # (what, name, expected, given), raised by compiled code
            what, name, expected, given = self.args
            return f"tangent for argument '{name}' has the wrong {what}: expected {expected}, given {given}"
        return " ".join(str(a) for a in self.args)


class Float32PromotionWarning(UserWarning):
    """A float32 call ran with Numba's float64-promoting rules: values are right, dtypes may be float64.

    fwdjit compiles float32 calls with NumPy 2's dtype rules (``np.float32(1) * 2.0``
    stays float32).  Where Numba cannot type that version (a variable that is float32
    on one path and float64 on another inside a loop), it falls back to the rules
    ``numba.njit`` uses and warns once per function and signature.
    """
