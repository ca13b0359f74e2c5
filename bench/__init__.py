"""Benchmarks: `python -m bench` (or `make bench`) runs the served ones (herold serve as make run starts
it, bench/served*.py) and then the component ones (bench/bench_*.py); see bench/__main__.py."""
