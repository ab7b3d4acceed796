"""dagloom's benchmark suites, run as `python -m benchmarks <suite>`; not collected by pytest."""
