"""Sweeps: many fine-tuning runs (arms x label budgets x seeds) on one data set: the grid, the
cells as jobs (side by side, or on a cluster), the tables. Above :mod:`ssl_domains.autoselect`,
whose arms, choice, cross-validation and refit every cell runs (the ``ensemble`` and ``auto``
arms included); it trains ``select: auto``'s candidates for a single run
(:class:`~ssl_domains.sweep.run.SweepCandidates`)."""
