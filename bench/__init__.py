"""Benchmarks of rtserver: `make bench` (not part of the test suite)."""
