"""Label-efficiency benchmark suite: every dataset with its data kind's default recipe.

    python -m benchmarks.suite --budgets 10,20,50,10%,100% --seeds 3     # the whole suite
    python -m benchmarks.suite --quick                                   # 1 seed, 2 budgets, 4 datasets

One recipe per data kind (``recipes/signal.yaml``, ``image.yaml``, ``volume.yaml``); datasets
(:mod:`benchmarks.suite.datasets`) add only their files and protocol. Each dataset runs as an
``ssl-domains sweep`` (every arm on the same labelled subsets); :mod:`benchmarks.suite.run`
collects them into one table with average ranks, target checks and a figure.
"""
