"""Benchmarks that print ratios against peers measured in the same run.

``python -m bench`` (or ``bench/run``) runs them all and writes bench/RESULTS.md; see
:mod:`bench.runner`. Each suite is also a module with a command line of its own.
"""
