"""Benchmarks: `python -m bench` (or `make bench`) runs every bench_*.py module's main() in turn."""
