"""README's table of the supported subset is the one the matrix generates (no drift)."""
import pathlib

from . import harness

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_generated_from_the_matrix():
    want = harness.table()
    text = README.read_text()
    assert want in text, ("README's supported table differs from the matrix's: replace it with the output of "
                          "`python -m tests.ops.harness --table`")
