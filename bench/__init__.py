"""Benchmarks of the CDS service: ``python -m bench`` (see bench/run.py and the README's Performance)."""
