"""Command line: ``python -m fwdjit show module:function``, cache management and the demo.

The same commands are installed as the ``fwdjit`` console script.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


def _load(spec):
    if ":" not in spec:
        raise CLIError(f"expected module:function or path/to/file.py:function (e.g. mypkg.physics:energy), "
                       f"given {spec!r}")
    modname, _, attr = spec.partition(":")
    if not attr:
        raise CLIError(f"no function named after the colon in {spec!r} (e.g. mypkg.physics:energy)")
    sys.path.insert(0, os.getcwd())
    if modname.endswith(".py") or os.sep in modname:
        import runpy
        if not os.path.isfile(modname):
            raise CLIError(f"no file {modname!r} (from {os.getcwd()})")
        ns = runpy.run_path(modname)
        if attr not in ns:
            raise CLIError(f"{modname} defines no {attr!r}; it defines: {_public_names(ns)}")
        return ns[attr]
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        # only the module asked for (or a package above it) is the user's mistake; a missing import
        # inside that module is a bug there and keeps its traceback
        if exc.name is not None and (modname == exc.name or modname.startswith(exc.name + ".")):
            raise CLIError(f"cannot import module {modname!r}: no module named {exc.name!r} "
                           f"(searched the current folder and sys.path)") from None
        raise
    obj = mod
    for i, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            where = modname + "".join("." + p for p in attr.split(".")[:i])
            names = _public_names(vars(obj)) if hasattr(obj, "__dict__") else ""
            raise CLIError(f"{where} has no attribute {part!r}" + (f"; it defines: {names}" if names else ""))
        obj = getattr(obj, part)
    return obj


def _public_names(ns):
    names = sorted(k for k, v in ns.items() if not k.startswith("_") and callable(v)
                   and not isinstance(v, type(sys)))
    if len(names) > 12:
        names = names[:12] + ["..."]
    return ", ".join(names) or "(no functions)"


def _parser():
    parser = argparse.ArgumentParser(prog="fwdjit", description="forward-mode AD compiler (Numba)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="print the generated tangent source of module:function",
                          description="Print the tangent (JVP) source fwdjit generates for a function.")
    show.add_argument("target", help="module:function or path/to/file.py:function")
    show.add_argument("--active", help="comma-separated parameter names that carry tangents (default: every "
                                       "parameter except those used as ints: range bounds, indices, "
                                       "parameters annotated int or bool)")
    show.add_argument("--primal", action="store_true", help="print the compiled primal source instead")
    cache = sub.add_parser("cache", help="show or clear the cache of generated code",
                           description="The cache folder holds the generated modules and Numba's compiled "
                                       "code. 'info' counts its files; 'clear' removes the same files.")
    cache.add_argument("action", choices=["info", "clear"])
    # the demo has its own parser (fwdjit.experiments.demo): everything after "demo" is handed to it,
    # --help included
    sub.add_parser("demo", help="train the MLP on embedded MNIST with forward gradients "
                                "(options: fwdjit demo --help)", add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.cmd == "demo":
        from .experiments.demo import main as demo_main
        return demo_main(rest, prog=f"{parser.prog} demo")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.cmd == "show":
            return _show(args)
        if args.cmd == "cache":
            return _cache(args)
    except CLIError as exc:
        print(f"fwdjit: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _show(args):
    from .api import as_fwdjit, int_params
    from .errors import FwdjitError
    obj = _load(args.target)
    try:
        f = as_fwdjit(obj)
        if args.primal:
            print(f.primal_source, end="")
            return 0
        if args.active:
            names = [n.strip() for n in args.active.split(",") if n.strip()]
            unknown = [n for n in names if n not in f.params]
            if unknown:
                raise CLIError(f"{f.name} has no parameter {unknown[0]!r} (parameters: {', '.join(f.params)})")
            mask = tuple(p in names for p in f.params)
            why = "chosen with --active"
        else:
            ints = int_params(f.info.tree)
            mask = tuple(p not in ints for p in f.params)
            skipped = [p for p in f.params if p in ints]
            why = "default: all parameters" + (f" except {', '.join(skipped)} (used as int)" if skipped else "")
            why += "; choose with --active"
        active = [p for p, m in zip(f.params, mask) if m]
        # on stderr: stdout is the generated source alone (it can be piped into a file)
        print(f"# tangents for: {', '.join(active) or '(none)'} ({why})", file=sys.stderr)
        print(f.tangent_source_for(mask), end="")
    except FwdjitError as exc:
        print(f"fwdjit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _cache(args):
    from .targets.cache import cache_clear, cache_info
    if args.action == "clear":
        before = cache_info()
        n = cache_clear()
        print(f"removed {n} files ({before['bytes'] / 1e6:.2f} MB) from {before['path']}")
    else:
        info = cache_info()
        print(f"{info['path']}: {info['files']} files, {info['bytes'] / 1e6:.2f} MB "
              f"({info['modules']} generated modules; the rest is Numba's compiled code and Python bytecode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
