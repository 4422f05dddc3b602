"""Command line: ``python -m fwdjit show module:function`` and cache management."""
from __future__ import annotations

import argparse
import importlib
import os
import sys


def _load(spec):
    if ":" not in spec:
        raise SystemExit(f"fwdjit: expected module:function (e.g. mypkg.physics:energy), given {spec!r}")
    modname, _, attr = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    if modname.endswith(".py") or os.sep in modname:
        import runpy
        ns = runpy.run_path(modname)
        obj = ns.get(attr)
    else:
        mod = importlib.import_module(modname)
        obj = mod
        for part in attr.split("."):
            obj = getattr(obj, part)
    if obj is None:
        raise SystemExit(f"fwdjit: {attr!r} not found in {modname}")
    return obj


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fwdjit", description="forward-mode AD compiler (Numba)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="print the generated tangent source of module:function")
    show.add_argument("target", help="module:function or path/to/file.py:function")
    show.add_argument("--active", help="comma-separated parameter names that carry tangents (default: all)")
    show.add_argument("--primal", action="store_true", help="print the compiled primal source instead")
    cache = sub.add_parser("cache", help="show or clear the cache of generated code")
    cache.add_argument("action", choices=["info", "clear"])
    demo = sub.add_parser("demo", help="train the MLP on embedded MNIST with forward gradients "
                                       "(options: python -m fwdjit demo --help)", add_help=False)
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.cmd == "show":
        from .api import FwdjitFunction, fwdjit
        from .errors import FwdjitError
        obj = _load(args.target)
        try:
            f = obj if isinstance(obj, FwdjitFunction) else fwdjit(getattr(obj, "py_func", obj))
            if args.primal:
                print(f.primal_source, end="")
                return 0
            if args.active:
                names = [n.strip() for n in args.active.split(",") if n.strip()]
                unknown = [n for n in names if n not in f.params]
                if unknown:
                    raise SystemExit(f"fwdjit: {f.name} has no parameter {unknown[0]!r} (parameters: {', '.join(f.params)})")
                mask = tuple(p in names for p in f.params)
            else:
                mask = (True,) * len(f.params)
            print(f.tangent_source_for(mask), end="")
        except FwdjitError as exc:
            print(f"fwdjit: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "cache":
        from .codegen import cache_clear, cache_info
        if args.action == "clear":
            n = cache_clear()
            print(f"removed {n} entries from {cache_info()['path']}")
        else:
            info = cache_info()
            print(f"{info['path']}: {info['files']} files, {info['bytes'] / 1e6:.2f} MB")
        return 0
    if args.cmd == "demo":
        from .demo import main as demo_main
        return demo_main(args.demo_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
