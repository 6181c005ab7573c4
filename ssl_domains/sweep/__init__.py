"""Sweeps: many fine-tuning runs (arms x label budgets x seeds) on one data set, and the
choice among them (ensemble, auto, ``finetune.select: auto``). Above the engine."""
