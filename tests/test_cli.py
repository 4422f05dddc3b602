"""The command line as a user runs it: ``python -m fwdjit ...`` and the ``fwdjit`` console script, in a subprocess."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(cache):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["FWDJIT_CACHE_DIR"] = str(cache)
    return env


def _entry_points():
    """How a user starts the CLI: the module, and the console script when it is installed."""
    points = [("module", [sys.executable, "-m", "fwdjit"])]
    script = shutil.which("fwdjit", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if script:
        points.append(("script", [script]))
    return points


ENTRY = _entry_points()


def cli(tmp_path, *args, entry=None, cwd=None):
    cmd = (entry or ENTRY[0][1]) + list(args)
    return subprocess.run(cmd, env=_env(tmp_path / "cache"), capture_output=True, text=True, timeout=300,
                          cwd=cwd or tmp_path)


@pytest.fixture
def module(tmp_path):
    (tmp_path / "phys.py").write_text(textwrap.dedent('''
        import numpy as np

        def chain(x, k, n):
            e = 0.0
            for i in range(n - 1):
                d = x[i + 1] - x[i]
                e += 0.5 * k * d * d
            return e

        def scaled(x, n: int):
            return np.sum(x) * n

        answer = 42
    '''))
    return tmp_path


@pytest.mark.parametrize("entry", [e for _, e in ENTRY], ids=[name for name, _ in ENTRY])
@pytest.mark.parametrize("sub", [[], ["show"], ["cache"], ["demo"]], ids=["top", "show", "cache", "demo"])
def test_help_of_every_subcommand(tmp_path, entry, sub):
    r = cli(tmp_path, *sub, "--help", entry=entry)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: fwdjit" + (" " + sub[0] if sub else "")), r.stdout
    assert "unrecognized" not in r.stderr
    if sub == ["demo"]:
        assert "--steps" in r.stdout and "--lr" in r.stdout      # the demo's own options
    if not sub:
        assert "show" in r.stdout and "cache" in r.stdout and "demo" in r.stdout


def test_demo_module_help(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fwdjit.experiments.demo", "--help"], env=_env(tmp_path), capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "--steps" in r.stdout, r.stderr


def test_demo_rejects_a_bad_option(tmp_path):
    r = cli(tmp_path, "demo", "--stepz", "3")
    assert r.returncode == 2 and "unrecognized arguments: --stepz" in r.stderr
    assert "Traceback" not in r.stderr


def test_show_module_and_file(module):
    r = cli(module, "show", "phys:chain")
    assert r.returncode == 0, r.stderr
    assert "def chain_jvp(x, k, n, dx, dk):" in r.stdout      # n is a range bound: an int, no dn
    assert r.stdout.startswith("def chain_jvp(")                  # stdout: the source alone
    assert r.stderr.startswith("# tangents for: x, k (default: all parameters except n (used as int)")
    r = cli(module, "show", "phys.py:scaled")
    assert r.returncode == 0, r.stderr
    assert "def scaled_jvp(x, n, dx):" in r.stdout             # n annotated int
    r = cli(module, "show", "phys:chain", "--active", "k")
    assert "def chain_jvp(x, k, n, dk):" in r.stdout
    r = cli(module, "show", "phys:chain", "--primal")
    assert r.returncode == 0 and r.stdout.startswith("def chain(x, k, n):"), r.stdout


@pytest.mark.parametrize("target,message", [
    ("nosuchmodule:f", "cannot import module 'nosuchmodule': no module named 'nosuchmodule'"),
    ("phys:nothing", "phys has no attribute 'nothing'; it defines: chain, scaled"),
    ("nothere.py:f", "no file 'nothere.py'"),
    ("phys.py:nothing", "phys.py defines no 'nothing'"),
    ("phys", "expected module:function"),
])
def test_show_errors_are_one_line(module, target, message):
    r = cli(module, "show", target)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == f"fwdjit: error: {message}" or message in r.stderr.strip().splitlines()[-1], r.stderr


def test_show_not_a_function(module):
    r = cli(module, "show", "phys:answer")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "fwdjit can only transform plain Python functions, not int" in r.stderr


def test_show_unknown_active_parameter(module):
    r = cli(module, "show", "phys:chain", "--active", "y")
    assert r.returncode == 2 and "chain has no parameter 'y' (parameters: x, k, n)" in r.stderr


def test_unknown_option_is_refused(module):
    r = cli(module, "show", "phys:chain", "--bogus")
    assert r.returncode == 2 and "unrecognized arguments: --bogus" in r.stderr


def test_cache_info_and_clear_count_the_same_files(module):
    script = module / "use.py"
    script.write_text("import numpy as np\nfrom fwdjit import fwdjit\nimport phys\n"
                      "f = fwdjit(phys.scaled)\nprint(f.jvp((np.ones(3), 2), (np.ones(3), None)))\n")
    r = subprocess.run([sys.executable, str(script)], env=_env(module / "cache"), capture_output=True, text=True,
                       timeout=300, cwd=module)
    assert r.returncode == 0, r.stderr
    files = [p for p in (module / "cache").rglob("*") if p.is_file()]
    modules = [p for p in (module / "cache").glob("*.py")]
    assert len(files) > len(modules) >= 2
    info = cli(module, "cache", "info")
    assert info.returncode == 0, info.stderr
    assert f": {len(files)} files" in info.stdout and f"({len(modules)} generated modules" in info.stdout
    clear = cli(module, "cache", "clear")
    assert clear.returncode == 0, clear.stderr
    assert clear.stdout.startswith(f"removed {len(files)} files"), clear.stdout
    assert not [p for p in (module / "cache").rglob("*") if p.is_file()]
    assert ": 0 files" in cli(module, "cache", "info").stdout
