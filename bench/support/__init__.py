"""Helpers shared by the benchmarks and campaigns under bench/ (not benchmarks themselves)."""
