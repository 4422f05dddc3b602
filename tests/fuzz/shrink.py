"""Shrink a failing program to a small one that fails the same way.

Greedy delta debugging over the module's AST: each round tries, in order,

1. removing helper functions and imports,
2. deleting chunks of statements (halves, quarters, ... single statements)
   from every block,
3. replacing an ``if``/``for``/``while`` by its body (or dropping ``else``),
4. replacing an expression by one of its sub-expressions or a constant,
5. dropping parameters that are no longer used (with their arguments),
6. rounding the arguments and tangents,

keeping the first change after which ``still_fails(candidate)`` is true, and
starts again, until no change helps or the attempt budget is spent.  The
predicate is the caller's: the runner checks that the candidate fails with
the same :meth:`~tests.fuzz.runner.Outcome.signature`.
"""
from __future__ import annotations

import ast
import copy
import time
from dataclasses import replace

import numpy as np

STMT_FIELDS = ("body", "orelse")


def _stmt_lists(tree):
    """Every statement list of every function, in a fixed order: [(node, field)]."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.If)):
            for fld in STMT_FIELDS:
                lst = getattr(node, fld, None)
                if lst:
                    out.append((node, fld))
    return out


_SKIP_FIELDS = {"decorator_list", "returns", "annotation", "targets", "target", "func", "type_params"}


def _expr_slots(tree):
    """Every (parent, field, index) that holds a Load expression inside a function."""
    out = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for parent in ast.walk(fn):
            if isinstance(parent, ast.arguments):
                continue
            for fld, value in ast.iter_fields(parent):
                if fld in _SKIP_FIELDS or (isinstance(parent, ast.FunctionDef) and fld == "args"):
                    continue
                items = value if isinstance(value, list) else [value]
                for i, item in enumerate(items):
                    if isinstance(item, ast.expr) and not isinstance(getattr(item, "ctx", None), (ast.Store, ast.Del)):
                        out.append((parent, fld, i if isinstance(value, list) else None))
    return out


def _get(parent, fld, i):
    v = getattr(parent, fld)
    return v[i] if i is not None else v


def _set(parent, fld, i, new):
    if i is None:
        setattr(parent, fld, new)
    else:
        getattr(parent, fld)[i] = new


def _children(expr):
    return [c for c in ast.iter_child_nodes(expr)
            if isinstance(c, ast.expr) and not isinstance(c, (ast.Slice,)) and not isinstance(getattr(c, "ctx", None), ast.Store)]


def _names_used(fn):
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}


def _main(tree):
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")


def _while_loops_end(tree):
    """Every ``while`` still has the generator's shape ``while c < bound and ...:`` with ``c += 1`` first.

    Shrinking must not make a loop endless (compiled code cannot be interrupted).
    """
    for node in ast.walk(tree):
        if not isinstance(node, ast.While):
            continue
        test = node.test
        first = test.values[0] if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else test
        if not (isinstance(first, ast.Compare) and isinstance(first.left, ast.Name)
                and len(first.ops) == 1 and isinstance(first.ops[0], ast.Lt)):
            return False
        counter = first.left.id
        head = node.body[0] if node.body else None
        if not (isinstance(head, ast.AugAssign) and isinstance(head.op, ast.Add)
                and isinstance(head.target, ast.Name) and head.target.id == counter
                and isinstance(head.value, ast.Constant) and head.value.value == 1):
            return False
        for other in ast.walk(node):
            if other is not head and isinstance(other, (ast.Assign, ast.AugAssign)):
                targets = other.targets if isinstance(other, ast.Assign) else [other.target]
                if any(isinstance(t, ast.Name) and t.id == counter for t in targets):
                    return False
    return True


class _Skip(Exception):
    pass


def _safe(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except _Skip:
        return None


def _with_source(prog, tree, **kw):
    if not _while_loops_end(tree):
        raise _Skip
    src = ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    return replace(prog, source=src, **kw)


def candidates(prog):
    """Smaller variants of ``prog``, most promising first (a generator)."""
    for cand in _candidates(prog):
        if cand is not None:
            yield cand


def _candidates(prog):
    tree = ast.parse(prog.source)
    # 1. helpers and imports
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom)) and \
                not (isinstance(node, ast.FunctionDef) and node.name == "f"):
            t = copy.deepcopy(tree)
            del t.body[i]
            yield _safe(_with_source, prog, t)
    # 2. chunks of statements
    nlists = len(_stmt_lists(tree))
    for li in range(nlists):
        node, fld = _stmt_lists(tree)[li]
        n = len(getattr(node, fld))
        size = n
        while size >= 1:
            for start in range(0, n, size):
                t = copy.deepcopy(tree)
                tnode, tfld = _stmt_lists(t)[li]
                lst = getattr(tnode, tfld)
                del lst[start:start + size]
                if not lst and tfld == "body":
                    lst.append(ast.Pass())
                yield _safe(_with_source, prog, t)
            size //= 2
    # 3. inline compound statements
    for li in range(nlists):
        node, fld = _stmt_lists(tree)[li]
        for i, s in enumerate(getattr(node, fld)):
            if isinstance(s, (ast.If, ast.For, ast.While)):
                for which in ("body", "orelse"):
                    if not getattr(s, which):
                        continue
                    t = copy.deepcopy(tree)
                    tnode, tfld = _stmt_lists(t)[li]
                    lst = getattr(tnode, tfld)
                    lst[i:i + 1] = getattr(lst[i], which)
                    yield _safe(_with_source, prog, t)
                if isinstance(s, ast.If) and s.orelse:
                    t = copy.deepcopy(tree)
                    tnode, tfld = _stmt_lists(t)[li]
                    getattr(tnode, tfld)[i].orelse = []
                    yield _safe(_with_source, prog, t)
    # 4. expressions -> sub-expressions or constants
    slots = _expr_slots(tree)
    for si in range(len(slots)):
        parent, fld, i = slots[si]
        e = _get(parent, fld, i)
        if isinstance(e, ast.Constant):
            continue
        subs = list(range(len(_children(e))))
        for ci in subs:
            t = copy.deepcopy(tree)
            tp, tf, ti = _expr_slots(t)[si]
            te = _get(tp, tf, ti)
            _set(tp, tf, ti, _children(te)[ci])
            yield _safe(_with_source, prog, t)
        for const in (0.5,):
            if isinstance(e, ast.Name):
                continue
            t = copy.deepcopy(tree)
            tp, tf, ti = _expr_slots(t)[si]
            _set(tp, tf, ti, ast.Constant(const))
            yield _safe(_with_source, prog, t)
    # 5. unused parameters
    main = _main(tree)
    used = set()
    for stmt in main.body:
        used |= _names_used(stmt)
    for k, a in enumerate(main.args.args):
        if a.arg not in used:
            t = copy.deepcopy(tree)
            del _main(t).args.args[k]
            meta = dict(prog.meta)
            if meta.get("tangents") is not None:
                meta["tangents"] = [x for j, x in enumerate(meta["tangents"]) if j != k]
            if meta.get("mask") is not None:
                meta["mask"] = tuple(n for n in meta["mask"] if n != a.arg)
            yield _safe(_with_source, prog, t, params=[p for j, p in enumerate(prog.params) if j != k],
                               args=[x for j, x in enumerate(prog.args) if j != k], meta=meta)
    # 6. rounder arguments
    rounded = [_round(a) for a in prog.args]
    if any(not _equal(a, b) for a, b in zip(rounded, prog.args)):
        meta = dict(prog.meta)
        if meta.get("tangents") is not None:
            meta["tangents"] = [_round(t) for t in meta["tangents"]]
        yield replace(prog, args=rounded, meta=meta)


def _round(a, digits=2):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return np.round(a, digits).astype(a.dtype)
    if isinstance(a, (float, np.floating)) and not isinstance(a, bool):
        return type(a)(round(float(a), digits))
    if isinstance(a, tuple):
        return tuple(_round(x, digits) for x in a)
    return a


def _equal(a, b):
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def shrink(prog, still_fails, *, max_attempts=400, max_seconds=600, log=None):
    """The smallest variant of ``prog`` found for which ``still_fails`` holds.

    After a successful change the next round resumes at the same position
    in the candidate list (earlier candidates were just tried and failed),
    wrapping around once; it stops after a full round without a change.
    """
    t0 = time.time()
    attempts = 0
    seen = set()
    pos = 0
    while True:
        changed = False
        for k, cand in enumerate(candidates(prog)):
            if k < pos:
                continue
            if attempts >= max_attempts or time.time() - t0 > max_seconds:
                return prog, attempts
            key = cand.source + repr([_key(a) for a in cand.args])
            if key in seen:
                continue
            seen.add(key)
            attempts += 1
            try:
                ok = still_fails(cand)
            except Exception:   # the candidate broke the checker itself: not the same failure
                ok = False
            if ok:
                if log:
                    log(f"shrink: {len(prog.source)} -> {len(cand.source)} chars after {attempts} attempts")
                prog = cand
                pos = k
                changed = True
                break
        if not changed:
            if pos == 0:
                return prog, attempts
            pos = 0        # one more full round from the start


def _key(a):
    if isinstance(a, np.ndarray):
        return ("arr", a.dtype.str, a.tobytes())
    return a
