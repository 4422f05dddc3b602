r"""Render: a generated function's AST in, its source text out, with the source-line comments.

Passes mark comments as string statements starting with :data:`COMMENT`
(an AST has no comments); :func:`render` unparses and turns them into ``#`` lines.

>>> import ast
>>> fdef = ast.parse("def f(x):\n    return x").body[0]
>>> fdef.body.insert(0, ast.Expr(ast.Constant(COMMENT + "demo.py:2: return x")))
>>> print(render(fdef), end="")
def f(x):
    # demo.py:2: return x
    return x
"""
from __future__ import annotations

import ast
import re

COMMENT = "__FJ_COMMENT__"

_COMMENT_RE = re.compile(r"""^(\s*)('''|\"\"\"|'|")""" + COMMENT)


def render(fdef):
    """Unparse a generated function, turning comment markers into comments."""
    text = ast.unparse(fdef)
    lines = []
    for line in text.splitlines():
        m = _COMMENT_RE.match(line)
        if m:
            body = ast.literal_eval(line.strip())[len(COMMENT):]
            lines.append(f"{m.group(1)}# {body}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
