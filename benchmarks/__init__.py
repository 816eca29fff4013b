"""Benchmarks: ``make bench`` runs them all (``python -m benchmarks``); results go to stdout
and, with ``--json``, to a file. Figures and commands are recorded in docs/performance.md."""
