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


def test_cpu_target_does_not_import_cuda_target():
    graph, _ = import_graph()
    assert "fwdjit.targets.cuda" not in graph["fwdjit.api"]
    assert not {"fwdjit.api", "fwdjit.targets.cuda"} & graph["fwdjit.targets.base"]
