import os
import sys
import tempfile

# Generated modules and Numba's cache go to a private folder unless the caller chose one.
if "FWDJIT_CACHE_DIR" not in os.environ:
    os.environ["FWDJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="fwdjit-test-cache-")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
