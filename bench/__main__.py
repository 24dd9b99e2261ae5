"""``python -m bench``: run the benchmarks (see :mod:`bench.runner`)."""

from bench.runner import main

main()
