"""Diagnostics and benchmarks: nothing in training or inference imports them."""
