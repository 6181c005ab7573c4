"""``finetune.select: auto``: train the candidates, choose on validation data only, refit what
cross-validation chose, export the chosen model into the run folder.

:func:`ssl_domains.autoselect.finetune.finetune` is the fine-tuning stage whatever
``finetune.select`` says (the CLI and the demo call it): one model through the engine
(:func:`ssl_domains.engine.finetune.finetune`), or the candidates of ``select: auto``
(:func:`ssl_domains.autoselect.run.select_finetune`). The candidates are the arms of a
one-size, one-seed sweep on the run's own label budget (so ``--jobs`` runs them side by side
as a sweep's cells); the choice, the cross-validation and the refit are the sweep's ``auto``
arm (:mod:`ssl_domains.sweep.derived`, :mod:`ssl_domains.sweep.choice`,
:mod:`ssl_domains.sweep.refit`), the same code for a sweep and a single run.
"""
