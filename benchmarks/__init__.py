"""fwdjit benchmark suite (see benchmarks/README.md)."""
