"""Every file and folder name of a run folder, its ``export/`` and a sweep folder.

No other module spells these names (``tests/test_layout.py`` checks the source tree):
they join paths through :class:`~ssl_domains.layout.run.RunFolder`,
:class:`~ssl_domains.layout.export.ExportFolder` and :mod:`~ssl_domains.layout.sweep`, or
import the constant.

A run folder::

    config.yaml         fully resolved config
    environment.json    host/plugin/torch versions
    metrics.jsonl       one JSON object per logged step
    eval.json           the Assessment (engine.assess)
    skipped.json        items skipped as unreadable (file, reason)
    init_report.json    what --init loaded
    checkpoints/<stage>/last.pt, step_XXXXXXXX.pt   resume state
    predictions/val.csv, test.csv, eval_<loader>.csv
    export/             config.json, backbone.safetensors, model.safetensors, README.md
                        (a baseline: baseline.safetensors; an ensemble: deep/ and baseline/)
    figures/, report/report.html
    candidates/         select: auto's sweep folder
    sweep/              the demo's comparison (results.csv)

A sweep folder::

    sweep.json, config.yaml, environment.json, results.csv, stability.csv, summary.csv,
    summary.json, cells/<arm>_<size>_<seed>/ (run folders; an auto cell adds selection.json,
    cv_oof.csv and members/), cv/<size>_<seed>.json, locks/<cell>/.lock, logs/<job>.log and
    logs/<job>.json, cluster.json and cluster/ (a cluster submission), pretrain/, init/
"""

from __future__ import annotations

# -- run folder
CONFIG_FILE = "config.yaml"
ENVIRONMENT_FILE = "environment.json"
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.json"
SKIPPED_FILE = "skipped.json"
INIT_REPORT_FILE = "init_report.json"
LOCK_FILE = ".lock"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
PREDICTIONS_DIR = "predictions"
EXPORT_DIR = "export"
FIGURES_DIR = "figures"
REPORT_DIR = "report"
REPORT_FILE = "report.html"
#: A dense (segmentation) run's tables: ``<split>_cases.csv``, ``test_lesions.csv``, the FROC
#: curve and ``slices/`` (overlay pictures).
SEGMENTATION_DIR = "segmentation"
FROC_FILE = "froc.csv"
SLICES_DIR = "slices"
#: Sub-folder of a ``select: auto`` run with its candidates' sweep.
CANDIDATES_DIR = "candidates"
#: Sub-folder of a run folder that holds a sweep (the demo's comparison).
SWEEP_DIR = "sweep"

# -- export folder
EXPORT_CONFIG_FILE = "config.json"
BACKBONE_FILE = "backbone.safetensors"
MODEL_FILE = "model.safetensors"
BASELINE_FILE = "baseline.safetensors"
CARD_FILE = "README.md"
#: Member folders of an ensemble export.
DEEP_MEMBER_DIR = "deep"
BASELINE_MEMBER_DIR = "baseline"

# -- sweep folder
SWEEP_FILE = "sweep.json"
CELLS_DIR = "cells"
RESULTS_FILE = "results.csv"
STABILITY_FILE = "stability.csv"
SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
SELECTION_FILE = "selection.json"
CV_OOF_FILE = "cv_oof.csv"
CV_DIR = "cv"
#: An auto cell's members refitted on every label.
MEMBERS_DIR = "members"
#: What a cluster submission submitted (job ids per phase).
CLUSTER_FILE = "cluster.json"
#: One lock per cell or job (``locks/<name>/.lock``, a
#: :class:`~ssl_domains.engine.run_dir.RunLock`): a cell is never run by two processes at once.
LOCKS_DIR = "locks"
#: Per job: ``logs/<job>.log`` (what it said) and ``logs/<job>.json`` (its outcome).
LOGS_DIR = "logs"
#: submitit's folder of a cluster submission: its job scripts and their output.
CLUSTER_DIR = "cluster"

#: Names that only this package may spell (files: anywhere in a string literal).
FILE_NAMES = (
    CONFIG_FILE, ENVIRONMENT_FILE, METRICS_FILE, EVAL_FILE, SKIPPED_FILE, INIT_REPORT_FILE,
    LAST_CHECKPOINT, REPORT_FILE, EXPORT_CONFIG_FILE, BACKBONE_FILE, MODEL_FILE, BASELINE_FILE,
    CARD_FILE, FROC_FILE, CLUSTER_FILE,
    SWEEP_FILE, RESULTS_FILE, STABILITY_FILE, SUMMARY_CSV, SUMMARY_JSON, SELECTION_FILE,
    CV_OOF_FILE,
)
#: Folder names that only this package may join onto a path (``x / "cells"``).
FOLDER_NAMES = (CHECKPOINTS_DIR, PREDICTIONS_DIR, EXPORT_DIR, CELLS_DIR, CANDIDATES_DIR,
                SEGMENTATION_DIR, MEMBERS_DIR, LOCKS_DIR, LOGS_DIR, CLUSTER_DIR)
