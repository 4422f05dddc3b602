"""The package's layout: fwdjit's modules import each other without cycles, and no module
imports another's private names.

Input: the source of every ``fwdjit/**/*.py`` (parsed with ``ast``, nothing imported or
compiled).  Output: the import graph, module -> modules it imports, counting imports
inside functions too (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fwdjit"


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["fwdjit", *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(mod, path, node):
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph():
    """``{module: {imported fwdjit modules}}`` and ``[(module, imported from, private name)]``."""
    mods = _modules()
    graph, private = {}, []
    for mod, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "fwdjit" or a.name.startswith("fwdjit."):
                        deps.add(a.name)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, path, node)
                if target != "fwdjit" and not target.startswith("fwdjit."):
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in mods:              # from . import rules: the submodule
                        deps.add(sub)
                    else:                        # a name defined in (or re-exported by) target
                        deps.add(target)
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            private.append((mod, target, a.name))
        graph[mod] = {d for d in deps if d in mods and d != mod}
    return graph, private


def find_cycles(graph):
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_lazy_imports_and_cycles():
    tree = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(tree) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    graph, _ = import_graph()
    assert "fwdjit.api" in graph["fwdjit.derivatives"]
    assert "fwdjit.targets.cuda" in graph["fwdjit"]            # a lazy import inside fwdjit.fwdjit()


def test_no_import_cycle_among_fwdjit_modules():
    graph, _ = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles among fwdjit's modules: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names():
    _, private = import_graph()
    assert not private, "private names imported across modules: " + ", ".join(
        f"{m} imports {name} from {src}" for m, src, name in private)


def _in(mod, package):
    return mod == package or mod.startswith(package + ".")


def reachable(graph, start):
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_cpu_target_does_not_import_cuda_target():
    graph, _ = import_graph()
    assert not any(_in(m, "fwdjit.targets.cuda") for m in reachable(graph, "fwdjit.api"))
    assert not {m for m in reachable(graph, "fwdjit.targets.base")
                if m == "fwdjit.api" or _in(m, "fwdjit.targets.cuda")}


def test_compiler_imports_no_target_and_no_training():
    """The compiler package reaches (directly or through others) no target, training or experiment module."""
    graph, _ = import_graph()
    compiler = [m for m in graph if _in(m, "fwdjit.compiler")]
    assert "fwdjit.compiler.tangent" in compiler
    bad = {}
    for mod in compiler:
        reach = reachable(graph, mod)
        bad_deps = sorted(d for d in reach if d == "fwdjit.api" or any(
            _in(d, pkg) for pkg in ("fwdjit.targets", "fwdjit.training", "fwdjit.experiments")))
        if bad_deps:
            bad[mod] = bad_deps
    assert not bad, f"the compiler imports targets or training code: {bad}"


MAX_LINES = 600
# modules allowed over MAX_LINES, with the reason
OVERSIZED = {
}


def module_sizes():
    """``{module: number of lines}`` of every fwdjit module, largest first."""
    sizes = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def test_no_module_over_the_size_limit():
    sizes = module_sizes()
    print("\n".join(f"{n:6d} {m}" for m, n in sizes.items()))     # reported with -s / on failure
    over = {m: n for m, n in sizes.items() if n > MAX_LINES and m not in OVERSIZED}
    assert not over, f"modules over {MAX_LINES} lines (split them, or say why in OVERSIZED): {over}"
    assert set(OVERSIZED) <= set(sizes), f"OVERSIZED names modules that do not exist: {set(OVERSIZED) - set(sizes)}"


if __name__ == "__main__":          # python tests/test_layout.py: the import graph and module sizes, as text
    g, _ = import_graph()
    for m in sorted(g):
        print(m, "->", ", ".join(sorted(g[m])) or "(nothing)")
    print()
    for m, n in module_sizes().items():
        print(f"{n:6d} {m}")


MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 300
#: functions and classes allowed above the limits (lines of code, docstrings not counted), and why
OVERSIZED_UNITS = {
    "fwdjit.training.distributed:train_distributed":
        "the driver loop (exchange, replace a dead worker and replay, records, progress, stop conditions) "
        "shares a dozen locals with the actors it rebuilds; the checks, resume, combine and final sync are "
        "functions of their own",
    "fwdjit.targets.cpu.entry:jvp_entry": "writes the entry module, its typer and its compile-failure hook as "
                                          "closures over the names it generates (85 lines)",
    "fwdjit.targets.numba_errors:compile_error": "one pass over Numba's message: frame, operation, cause, hint "
                                                 "(90 lines); to split when the CUDA target is wired to it",
    "fwdjit.experiments.demo:main": "the demo's narrative, printed step by step (95 lines)",
    "fwdjit.experiments.backprop:_train_jax": "the JAX backprop reference loop kept whole, as in the paper (83)",
}


def unit_sizes():
    """``{(module, qualified name): lines of code}`` of every function and class, docstrings excluded."""
    sizes = {}
    for mod, path in _modules().items():
        tree = ast.parse(path.read_text())

        def visit(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    n = child.end_lineno - child.lineno + 1
                    body = child.body
                    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                            and isinstance(body[0].value.value, str):
                        n -= body[0].end_lineno - body[0].lineno + 1
                    for inner in ast.walk(child):      # docstrings of methods don't count for the class
                        if inner is not child and isinstance(inner, (ast.FunctionDef, ast.ClassDef)) and \
                                inner.body and isinstance(inner.body[0], ast.Expr) and \
                                isinstance(inner.body[0].value, ast.Constant) and isinstance(inner.body[0].value.value, str):
                            n -= inner.body[0].end_lineno - inner.body[0].lineno + 1
                    sizes[(mod, prefix + child.name)] = (n, isinstance(child, ast.ClassDef))
                    visit(child, prefix + child.name + ".")
        visit(tree, "")
    return sizes


def test_no_oversized_functions_or_classes():
    over = {f"{m}:{q}": n for (m, q), (n, is_class) in unit_sizes().items()
            if n > (MAX_CLASS_LINES if is_class else MAX_FUNCTION_LINES) and f"{m}:{q}" not in OVERSIZED_UNITS}
    assert not over, (f"functions over {MAX_FUNCTION_LINES} / classes over {MAX_CLASS_LINES} lines of code "
                      f"(split them, or say why in OVERSIZED_UNITS): {over}")
    sizes = {f"{m}:{q}" for (m, q) in unit_sizes()}
    assert set(OVERSIZED_UNITS) <= sizes, f"OVERSIZED_UNITS names units that do not exist: {set(OVERSIZED_UNITS) - sizes}"
