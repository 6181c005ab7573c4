"""``finetune.select: auto``: the candidate arms, the choice on validation data only,
cross-validation, the refit of what cross-validation chose, and the chosen model's export.

The one owner of ``select: auto``, for a single run and for a sweep's ``auto`` arm alike;
below :mod:`ssl_domains.sweep`, which calls it:

* :mod:`~ssl_domains.autoselect.arms`: arms, labeled-set sizes, cell names and cell configs;
* :mod:`~ssl_domains.autoselect.baseline`: the classical-baseline arm (and its refit);
* :mod:`~ssl_domains.autoselect.choice`: choosing on validation (or out-of-fold) scores;
* :mod:`~ssl_domains.autoselect.crossval`: the derived arms of one size and seed: the
  cross-validation folds and the refit on every label;
* :mod:`~ssl_domains.autoselect.refit`: a network trained again on every label;
* :mod:`~ssl_domains.autoselect.derived`: the ``ensemble`` and ``auto`` cells;
* :mod:`~ssl_domains.autoselect.run`: ``select: auto`` for one run
  (:func:`~ssl_domains.autoselect.run.select_finetune`): its candidates trained by a
  :class:`~ssl_domains.autoselect.run.CandidateRunner` passed in (the sweep's
  :class:`~ssl_domains.sweep.run.SweepCandidates`, one after another or ``--jobs`` side by
  side), the chosen model shipped into the run folder.

The fine-tuning stage whatever ``finetune.select`` says (the CLI and the demo call it) is
:func:`ssl_domains.finetune_stage.finetune`, above the sweep.
"""
