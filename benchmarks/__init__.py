"""Benchmark scripts and their benchmark-only Django settings and app (never part of the product)."""
