"""Drills: nightcrew beyond one machine, with real processes and real failures (issue 20).

Run them all with ``make drills``; each module is also runnable on its own
(``python -m drills.pgbouncer --help``). See docs/operations.md.
"""
