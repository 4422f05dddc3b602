# The regression modules are data for tests/test_fuzz.py, and __main__ is the command line.
collect_ignore_glob = ["regressions/*", "__main__.py"]
