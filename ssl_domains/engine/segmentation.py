"""Fine-tuning of a dense task (voxel-wise segmentation): cases, whole-case validation, lesion scores.

A fine-tuning task whose class has ``dense = True`` (the medical plugin's
``tumor_segmentation``) trains on mask patches and is judged on whole cases, as nnU-Net and
MONAI do. What differs from classification:

* **The budget counts cases.** ``label_count`` (or ``label_fraction`` of the pool's cases)
  cases train; validation is ``max(1, round(val_fraction * cases))`` *further* cases (a
  one-case budget validates on a second case), unless a ``val`` loader is given. The same
  (data, seed) orders the cases once, so every arm and every budget of a seed draws from the
  same order.
* **Whole cases.** Validation and test items are whole preprocessed cases (the loader's
  ``whole_cases()``), segmented with the task's sliding window (``segment``). Validation keeps
  the weights of the best mean Dice.
* **Scores.** Voxel Dice and HD95, lesion matching, FROC, lesion-wise Dice
  (:mod:`ssl_domains.scoring.lesions`) at the probability threshold 0.5; intervals are
  percentile bootstraps over test cases. ``eval.json`` has the usual shape (``val``, ``test``,
  ``test_intervals``, counts in cases); ``segmentation/`` holds per-case and per-lesion tables
  and, per test case, a probability and a label NIfTI on the case's own grid.
"""

from __future__ import annotations

import csv
import logging
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_domains.config import FinetuneConfig, InitConfig, RunConfig
from ssl_domains.contracts import stats_of
from ssl_domains.data.datasets import Subset
from ssl_domains.data.skipping import iter_readable
from ssl_domains.engine.assess import Assessment, Intervals, write_assessment
from ssl_domains.engine.build import finetune_init
from ssl_domains.engine.checkpoints import read_safetensors
from ssl_domains.engine.exports import export_config, save_network_export
from ssl_domains.engine.loop import TrainOptions
from ssl_domains.engine.model_card import model_card
from ssl_domains.engine.stage import run_stage
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.layout.export import ExportConfig, find_export

# SEGMENTATION_DIR (a run's val_cases.csv, test_cases.csv, test_lesions.csv), FROC_FILE (the
# test cases' FROC curve: fp_per_case, sensitivity, threshold) and SLICES_DIR (overlay slices
# of write_slices) are re-exported from ssl_domains.layout.names
from ssl_domains.layout.names import FROC_FILE, MODEL_FILE, SEGMENTATION_DIR, SLICES_DIR
from ssl_domains.layout.run import RunFolder
from ssl_domains.registry import Registry
from ssl_domains.scoring import lesions
from ssl_domains.scoring.lesions import CaseTally

__all__ = ["is_dense", "dense_cases", "finetune_dense", "assess_dense", "training_cases", "MapModel", "LargestLesion", "largest_lesion", "reassess", "write_slices", "FROC_FILE", "SLICES_DIR", "SEGMENTATION_DIR", "THRESHOLD",
           "segment_cases", "predict_dense", "LARGEST_LESION"]

log = logging.getLogger(__name__)

#: Voxels with lesion probability at or above this are lesion (the argmax of two classes); the
#: FROC's lesion candidates are the components at or above it too, so the curve is the one
#: ``sensitivity_at_1fp`` and ``cpm`` are read off.
THRESHOLD = 0.5
#: Bootstrap replicates of the test intervals (over cases).
REPLICATES = 1000


def is_dense(registry: Registry, task_name: str) -> bool:
    """Whether fine-tuning task ``task_name`` is dense (its factory has ``dense = True``)."""
    return bool(getattr(registry.get("finetune", task_name).factory, "dense", False))


def _whole(ds: Any, where: str) -> Any:
    whole = getattr(ds, "whole_cases", None)
    if whole is None:
        raise DataError(where, "a dense task (segmentation) needs a volume loader with masks "
                        "(image_manifest, nifti, case_folders): this loader gives no whole cases")
    return whole()


def dense_cases(cfg: RunConfig, fcfg: FinetuneConfig, sources: dict[str, Any]) -> dict[str, Any]:
    """Training patches, validation and test cases of a dense fine-tuning run (see the module
    docstring for the budget).

    Raises:
        ConfigError: A budget of no case, or one that leaves no case to validate on.
        DataError: A loader without whole cases.
    """
    pool = sources["pool"]
    where = f"fine-tuning data ({fcfg.data.train.name})"
    whole = _whole(pool, where)
    case_ids = [str(g) for g in whole.groups]
    n_cases = len(case_ids)
    order = np.random.default_rng(cfg.seed).permutation(n_cases)
    if fcfg.label_count is not None:
        n_train = int(fcfg.label_count)
    else:
        n_train = max(1, round((fcfg.label_fraction or 1.0) * n_cases))
    if sources.get("val") is not None:
        val_whole = _whole(sources["val"], f"validation data ({fcfg.data.val.name if fcfg.data.val else ''})")
        val_idx: list[int] = []
        n_train = min(n_train, n_cases)
    else:
        if n_cases < 2:
            raise ConfigError(f"{where}: {n_cases} case; a dense task needs at least two "
                              "(one trains, one validates) or a data.val loader")
        n_val = max(1, round(fcfg.data.val_fraction * min(n_train, n_cases - 1)))
        n_train = min(n_train, n_cases - n_val)
        val_idx = sorted(int(i) for i in order[n_train:n_train + n_val])
        val_whole = Subset(whole, val_idx)
    if n_train < 1:
        raise ConfigError(f"{where}: the budget leaves no training case")
    train_cases = {case_ids[int(i)] for i in order[:n_train]}
    groups = [str(g) for g in pool.groups]
    train_items = [i for i, g in enumerate(groups) if g in train_cases]
    test = sources.get("test")
    test_whole = None if test is None else _whole(test, f"test data ({fcfg.data.test.name if fcfg.data.test else ''})")
    return {"pool": pool, "train": Subset(pool, train_items, train=True), "val": val_whole,
            "test": test_whole, "n_pool": n_cases, "n_train_cases": n_train,
            "n_val_cases": len(val_whole), "train_case_index": sorted(int(i) for i in order[:n_train]),
            "val_case_index": val_idx}


def _case_mask(item: dict[str, Any], where: str) -> np.ndarray:
    if "mask" not in item:
        raise DataError(where, "a case has no mask; give the loader a mask column/file for every "
                        "labeled case")
    return np.asarray(item["mask"])[0] > 0


@dataclass
class Segmented:
    """What :func:`segment_cases` found: per-case rows (id and
    :func:`~ssl_domains.scoring.lesions.case_metrics`), per-lesion rows, the pooled scores of
    the scored cases (a :class:`~ssl_domains.scoring.lesions.CaseTally`: metrics and FROC
    without the maps), and the ids of cases segmented but not scored (no mask). Maps are not
    kept: memory does not grow with the number of cases."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    lesions: list[dict[str, Any]] = field(default_factory=list)
    tally: CaseTally = field(default_factory=lambda: CaseTally(threshold=THRESHOLD))
    unscored: list[str] = field(default_factory=list)
    #: Position in the dataset of each scored case (of ``rows``).
    index: list[int] = field(default_factory=list)
    #: Every segmented case, scored or not, in order: id -> case score (highest probability).
    scores: dict[str, float] = field(default_factory=dict)
    #: Per scored case (when asked): ``(image, truth, prob)`` of one slice through its largest
    #: lesion area (:func:`write_slices`), or the whole 2-D case.
    slices: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    #: The same cases scored with only their largest lesion kept (when asked).
    largest: Segmented | None = None

    def mean_dice(self) -> float:
        """Mean Dice of the scored cases (NaN without any)."""
        return float(np.mean([r["dice"] for r in self.rows])) if self.rows else float("nan")

    def metrics(self) -> dict[str, float]:
        """Pooled metrics of the scored cases (empty without any); ``dice`` and ``hd95`` are
        the means over cases (``hd95`` over those where it is finite)."""
        return self.tally.metrics() if self.rows else {}


def _slice(image: np.ndarray, truth: np.ndarray, prob: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One slice (last spatial axis) through the largest area of the truth (or of the
    prediction when the truth is empty); 2-D cases whole."""
    if truth.ndim != 3:
        return image, truth, prob
    area = truth.sum(axis=(0, 1)) if truth.any() else (prob >= THRESHOLD).sum(axis=(0, 1))
    z = int(np.argmax(area)) if area.any() else truth.shape[2] // 2
    return image[..., z].copy(), truth[..., z].copy(), prob[..., z].copy()


def segment_cases(task: Any, ds: Any, where: str, *, maps: Path | None = None,
                  want_lesions: bool = False, skipped_file: Path | None = None,
                  slices: bool = False, largest: bool = False) -> Segmented:
    """Segment every readable case of ``ds`` (whole cases) and score those with a mask, one
    case at a time (the maps are written or dropped, never all held).

    An unreadable case is skipped and listed as a loader's are (``skipped_file``); a case
    without a mask is segmented (maps, lesion rows) but not scored. ``slices`` keeps one slice
    per scored case for the report's overlays; ``largest`` also scores each map with only its
    largest lesion (:attr:`Segmented.largest`, for the post-processing choice).
    """
    out = Segmented()
    if largest:
        out.largest = Segmented(lesions=out.lesions, unscored=out.unscored, index=out.index,
                                scores=out.scores)
    for i, item in iter_readable(ds, where, "finetune", skipped_file):
        prob = task.segment(torch.as_tensor(item[task.key])).numpy()
        meta = item.get("meta") or {}
        spacing = meta.get("spacing")
        cid = str(meta.get("id", i))
        out.scores[cid] = float(prob.max()) if prob.size else 0.0
        if want_lesions:
            affine = np.asarray(meta.get("affine", np.eye(prob.ndim + 1)), dtype=float)
            for lesion in lesions.lesion_table(prob, THRESHOLD, affine):
                out.lesions.append({"id": cid, **lesion})
        if maps is not None and hasattr(ds, "write_prediction"):
            ds.write_prediction(i, prob, maps, cid, threshold=THRESHOLD)
        if "mask" not in item:
            out.unscored.append(cid)
            continue
        truth = np.asarray(item["mask"])[0] > 0
        out.index.append(i)
        image = np.asarray(item[task.key], dtype=np.float32)[0] if slices else None
        for found, p in ((out, prob), (out.largest, None)):
            if found is None:
                continue
            p = largest_lesion(prob) if p is None else p
            found.rows.append({"id": cid, **found.tally.add(p, truth, spacing)})
            if image is not None:
                found.slices.append(_slice(image, truth, p))
    return out


def _mean_dice(task: Any, ds: Any, where: str) -> dict[str, float | None]:
    dice = segment_cases(task, ds, where).mean_dice()
    return {"dice": dice, "loss": 1.0 - dice}


def _write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(path)


def case_intervals(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = ("dice", "lesion_wise_dice", "hd95"),
                   *, n: int = REPLICATES, seed: int = 0) -> Intervals | None:
    """Percentile-bootstrap 95 % intervals of the mean of per-case ``metrics`` over cases."""
    if len(rows) < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), size=(n, len(rows)))
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for m in metrics:
        v = np.array([float(r.get(m, np.nan)) for r in rows], dtype=float)
        if not np.isfinite(v).any():
            continue
        with warnings.catch_warnings():  # a resample of cases that all lack the metric
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(np.where(np.isfinite(v), v, np.nan)[idx], axis=1)
            lo, hi = np.nanpercentile(means, [2.5, 97.5])
        bounds[m] = (float(lo), float(hi))
    return Intervals(method=f"95% percentile bootstrap of the mean over {len(rows)} test cases "
                     f"({n} resamples)", bounds=bounds)


def _pretext_decoder(task: Any, init_cfg: InitConfig | None) -> str | None:
    """Load the pretext task's decoder from an export's ``model.safetensors`` into the task
    (when the task can and the export has one); a sentence for ``eval.json``'s ``init``."""
    if init_cfg is None or not hasattr(task, "load_pretext_state"):
        return None
    export = find_export(init_cfg.path, MODEL_FILE)
    if export is None:
        return None
    path = export.model
    taken = task.load_pretext_state(read_safetensors(path))
    return f"decoder: {len(taken)} tensors from the pretext task" if taken else \
        "decoder: random (the pretext task's decoder does not fit)"


def training_cases(data: dict[str, Any], key: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Whole training cases of :func:`dense_cases`'s ``data``: images ``[C, *spatial]`` and
    masks ``[*spatial]`` (for models that fit on whole cases, such as a classical segmenter)."""
    whole = data["pool"].whole_cases()
    images, masks = [], []
    for i in data["train_case_index"]:
        item = whole[i]
        images.append(np.asarray(item[key], dtype=np.float32))
        masks.append(_case_mask(item, "training cases"))
    return images, masks


class MapModel:
    """A classical segmenter (``predict_map(image) -> prob``) seen as a dense task for
    :func:`assess_dense` (``segment`` and ``key``)."""

    def __init__(self, model: Any, key: str) -> None:
        self.model = model
        self.key = key

    def segment(self, volume: torch.Tensor) -> torch.Tensor:
        """Lesion probability ``[*spatial]`` of one case ``[C, *spatial]``."""
        return torch.as_tensor(np.asarray(self.model.predict_map(volume.numpy()), dtype=np.float32))


def write_slices(folder: Path, cases: Segmented) -> list[Path]:
    """For the report's overlays: the best, median and worst test case by Dice (among cases
    with a lesion, when there are any), each as one slice through its largest lesion area
    (``<rank>.npz`` with ``image``, ``truth``, ``prob``, ``dice``, ``id``; the last spatial axis
    is sliced; the slices :func:`segment_cases` kept). 2-D cases are stored whole."""
    rows = cases.rows
    if not rows or len(cases.slices) != len(rows):
        return []
    # cases with a lesion when there are any (an empty case predicted empty is a Dice of 1)
    pool = [i for i, (_, truth, _) in enumerate(cases.slices) if truth.any()] or list(range(len(rows)))
    order = [pool[j] for j in np.argsort([float(rows[i]["dice"]) for i in pool], kind="stable")]
    picks = {"best": int(order[-1]), "median": int(order[len(order) // 2]), "worst": int(order[0])}
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, i in picks.items():
        image, truth, prob = cases.slices[i]
        path = folder / f"{rank}.npz"
        np.savez_compressed(path, image=image, truth=truth.astype(np.uint8),
                            prob=prob.astype(np.float32), dice=float(rows[i]["dice"]),
                            id=str(rows[i]["id"]))
        written.append(path)
    return written


def largest_lesion(prob: np.ndarray) -> np.ndarray:
    """``prob`` with every lesion but the largest (26-connected components of ``prob >=``
    :data:`THRESHOLD`, by voxel count) set to 0: nnU-Net's "keep the largest component"
    post-processing."""
    labels, n = lesions.label_components(prob >= THRESHOLD)
    if n <= 1:
        return prob
    sizes = np.bincount(labels.ravel())[1:]
    out = prob.copy()
    out[(labels > 0) & (labels != int(np.argmax(sizes)) + 1)] = 0.0
    return out


class LargestLesion:
    """A dense model whose maps keep only their largest lesion (:func:`largest_lesion`)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.key = model.key

    def segment(self, volume: torch.Tensor) -> torch.Tensor:
        """The wrapped model's map with only its largest lesion."""
        return torch.as_tensor(largest_lesion(np.asarray(self.model.segment(volume))))


#: The export config's ``postprocessing`` when validation chose to keep the largest lesion.
LARGEST_LESION = "largest_lesion"


def predict_dense(model: Any, config: ExportConfig, ds: Any, out_csv: Path, where: str, *,
                  skipped_file: Path | None = None) -> Segmented:
    """Segment every readable case of ``ds`` with a dense export (``model``, its export
    ``config``), with the post-processing its validation chose; write beside ``out_csv``:

    - ``out_csv``: one row per case (opaque id, ``case_score`` = highest probability,
      ``lesions``, ``lesion_ml``; and Dice, HD95, lesion counts where the case has a mask);
    - ``<stem>_lesions.csv``: the lesion table (volume in mL, centroid in world mm, highest and
      mean probability);
    - ``<stem>_maps/``: ``<id>_prob.nii.gz`` and ``<id>_label.nii.gz`` on each case's own grid.

    Raises:
        DataError: A loader without whole cases.
    """
    if config.postprocessing == LARGEST_LESION:
        model = LargestLesion(model)
    out_csv = Path(out_csv)
    maps = out_csv.with_name(f"{out_csv.stem}_maps")
    shutil.rmtree(maps, ignore_errors=True)  # maps of an earlier call do not stay beside these
    seg = segment_cases(model, _whole(ds, where), where, maps=maps, want_lesions=True,
                        skipped_file=skipped_file)
    scored = {r["id"]: r for r in seg.rows}
    by_case: dict[str, list[dict[str, Any]]] = {}
    for lesion in seg.lesions:
        by_case.setdefault(lesion["id"], []).append(lesion)
    rows = []
    for cid, score in seg.scores.items():
        found = by_case.get(cid, [])
        metrics = {k: v for k, v in scored.get(cid, {}).items() if k != "id"}
        rows.append({"id": cid, "case_score": score, "lesions": len(found),
                     "lesion_ml": float(sum(les["volume_ml"] for les in found)), **metrics})
    _write_rows(out_csv, rows)
    _write_rows(out_csv.with_name(f"{out_csv.stem}_lesions.csv"), seg.lesions)
    return seg


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in metrics.items()}


def assess_dense(model: Any, data: dict[str, Any], run_path: Path, cfg: RunConfig, *,
                 details: dict[str, Any], write: bool = True) -> Assessment:
    """Segment the validation and test cases of :func:`dense_cases`'s ``data`` with ``model``
    (anything with ``segment(volume) -> prob`` and ``key``: a dense task or a classical
    segmenter) and write what a dense run leaves: ``segmentation/`` (case and lesion tables,
    test maps) and ``eval.json`` (with ``details``: how the model was trained)."""
    assert cfg.finetune is not None
    fcfg = cfg.finetune
    seg = RunFolder(run_path).segmentation
    where = f"fine-tuning data ({fcfg.data.train.name})"
    skipped = RunFolder(run_path).skipped if write else None
    val = segment_cases(model, data["val"], f"validation cases ({where})", skipped_file=skipped,
                        largest=True)
    # post-processing as nnU-Net decides it: keep only the largest lesion when that raises the
    # mean Dice of the validation cases (never on test data); scored from the same maps
    assert val.largest is not None
    raw, kept = val.mean_dice(), val.largest.mean_dice()
    postprocessing = None
    if kept > raw:
        model, val = LargestLesion(model), val.largest
        postprocessing = (f"largest lesion only (validation Dice {raw:.3f} without, {kept:.3f} "
                          f"with, over {len(val.rows)} case(s))")
    val_rows = val.rows
    val_metrics = val.metrics()
    notes = [f"{len(val.unscored)} validation case(s) without a mask were not scored"] \
        if val.unscored else []
    test_ds = data["test"]
    test_metrics: dict[str, float] | None = None
    intervals: Intervals | None = None
    test_rows: list[dict[str, Any]] = []
    lesion_rows: list[dict[str, Any]] = []
    if test_ds is not None:
        if write:  # maps of an earlier test set do not stay beside this one's
            shutil.rmtree(seg / "maps", ignore_errors=True)
        test = segment_cases(
            model, test_ds, f"test cases ({fcfg.data.test.name if fcfg.data.test else ''})",
            maps=seg / "maps" if write else None, want_lesions=True, skipped_file=skipped,
            slices=write)
        test_rows, lesion_rows = test.rows, test.lesions
        if test.unscored:
            notes.append(f"{len(test.unscored)} test case(s) without a mask were segmented "
                         "(maps, lesion table) but not scored")
        test_metrics = test.metrics()
        test_metrics["dice"] = test.mean_dice()
        intervals = case_intervals(test_rows, seed=cfg.seed)
        if write:
            curve = test.tally.froc()
            _write_rows(seg / FROC_FILE, [{"fp_per_case": float(f), "sensitivity": float(v),
                                          "threshold": float(t)} for f, v, t in
                                         zip(curve.fp_per_case, curve.sensitivity, curve.thresholds)])
            write_slices(seg / SLICES_DIR, test)
    assessment = Assessment.model_validate({
        "threshold": THRESHOLD, "threshold_rule": "argmax (probability 0.5)",
        "val": _finite(val_metrics),
        "test": _finite(test_metrics) if test_metrics is not None else None,
        "n_train": data["n_train_cases"], "n_val": data["n_val_cases"],
        "n_test": len(test_rows) if test_ds is not None else None,
        "n_pool": data["n_pool"], "n_labels": data["n_train_cases"],
        "label_counts": {"train": {"cases": data["n_train_cases"]},
                         "val": {"cases": data["n_val_cases"]},
                         **({"test": {"cases": len(test_rows)}} if test_ds is not None else {})},
        "test_intervals": intervals, "warnings": notes, "postprocessing": postprocessing,
        **details,
    })
    if write:
        _write_rows(RunFolder(run_path).case_table("val"), val_rows)
        if test_ds is not None:
            _write_rows(RunFolder(run_path).case_table("test"), test_rows)
            _write_rows(RunFolder(run_path).lesion_table("test"), lesion_rows)
        write_assessment(Path(run_path), assessment)
    return assessment


#: ``eval.json`` fields of how a model was trained, kept when a dense run is scored again.
TRAINING_FIELDS = ("steps", "best_step", "monitor", "stopped_early", "init", "seconds",
                   "baseline", "refit", "selection", "candidates_note")


def reassess(run_path: Path, cfg: RunConfig, model: Any, sources: dict[str, Any]) -> Assessment:
    """Score a finished dense run again with the current scoring (``ssl-domains evaluate`` of
    a segmentation run): the same validation and test cases (:func:`dense_cases` of the run's
    config), ``model`` (its export), how it was trained kept from its ``eval.json``."""
    from ssl_domains.engine.assess import read_assessment

    assert cfg.finetune is not None
    before = read_assessment(run_path).to_json() if RunFolder(run_path).eval.is_file() else {}
    data = dense_cases(cfg, cfg.finetune, sources)
    return assess_dense(model, data, Path(run_path), cfg,
                        details={k: before[k] for k in TRAINING_FIELDS if k in before})


class DenseRecipe:
    """What a dense (segmentation) task builds its own way in the stage skeleton
    (:mod:`ssl_domains.engine.stage`): the budget's cases (patches to train on, whole cases to
    validate on), training items with masks, the pre-training decoder loaded when the init
    has one, the mean validation Dice."""

    stage = "finetune"

    def __init__(self, cfg: RunConfig, registry: Registry, sources: dict[str, Any]) -> None:
        assert cfg.finetune is not None
        fcfg = cfg.finetune
        self.cfg, self.registry, self.section, self.sources = cfg, registry, fcfg, sources
        self.data_cfg, self.train_cfg = fcfg.data, fcfg.train
        self.loader_name = fcfg.data.train.name
        self.where = f"fine-tuning data ({self.loader_name})"
        #: the initial weights, once the run asked for them (a plan loads none)
        self.init_cfg: InitConfig | None = None
        self.weights_asked = False
        #: what :meth:`build_task` said about the pre-training decoder
        self.decoder_note: str | None = None

    def datasets(self) -> dict[str, Any]:
        """:func:`dense_cases`: ``val`` is the validation cases, scored whole."""
        return dense_cases(self.cfg, self.section, self.sources)

    def initial_weights(self, init: InitConfig | None, export: Path) -> InitConfig | None:
        self.init_cfg, self.weights_asked = finetune_init(self.cfg, init, export), True
        return self.init_cfg

    def build_task(self, backbone: Any, data: dict[str, Any], first: dict[str, Any]) -> Any:
        """The dense task (its window the training patches' size unless configured).

        Raises:
            DataError: Training items without masks.
        """
        if "mask" not in first:
            raise DataError(self.where, "training items have no mask; a dense task trains on lesion masks "
                            "(the manifest's mask column)")
        args = {k: v for k, v in self.section.task.args.items() if k != "num_classes"}
        task = self.registry.create("finetune", self.section.task.name, backbone, **args)
        if self.weights_asked:
            self.decoder_note = _pretext_decoder(task, self.init_cfg)
        if getattr(task, "roi_size", None) is None:
            task.roi_size = [int(s) for s in first[backbone.input_spec.modality].shape[1:]]
        return task

    def options(self, prepared: Any, rt: Any) -> TrainOptions:
        """The decoder and (unless frozen: ``mode: linear``) the encoder; mean validation Dice
        over the whole validation cases, its best step kept."""
        task, backbone, val_ds = prepared.task, prepared.backbone, prepared.data["val"]
        head_params = [p for n, p in task.named_parameters() if not n.startswith("backbone.")]
        groups: list[dict[str, Any]] = [{"params": head_params}]
        frozen: list[Any] = []
        if self.section.mode == "linear":  # the frozen-encoder arm: only the decoder trains
            backbone.requires_grad_(False)
            frozen.append(backbone)
        else:
            groups.append({"params": list(backbone.parameters()), "lr_scale": self.section.backbone_lr_scale})
        val_where = f"validation cases ({self.where})"
        return TrainOptions(param_groups=groups, validate=lambda model: _mean_dice(model, val_ds, val_where),
                            frozen=frozen, monitor="dice")


def finetune_dense(cfg: RunConfig, run_path: Path, *, registry: Registry, init: InitConfig | None,
                   resume: bool, sources: dict[str, Any]) -> dict[str, Any]:
    """The ``finetune`` stage for a dense task (called by
    :func:`ssl_domains.engine.finetune.finetune`); returns the ``eval.json`` content."""
    assert cfg.finetune is not None
    fcfg = cfg.finetune
    if fcfg.select == "auto":
        raise ConfigError(f"{cfg.name}: select: auto trains several candidates; run it with "
                          "`ssl-domains finetune` or ssl_domains.finetune_stage.finetune")
    if fcfg.mode == "frozen_then_unfrozen":
        raise ConfigError(f"{cfg.name}: finetune.mode frozen_then_unfrozen is not available for a "
                          "dense task; use full or linear (the encoder frozen, the decoder trained)")
    recipe = DenseRecipe(cfg, registry, sources)
    trained = run_stage(recipe, run_path, init=init, resume=resume)
    rt, run, result = trained.where.runtime, trained.where.run, trained.result
    data, backbone = trained.prepared.data, trained.prepared.backbone
    task: Any = trained.prepared.task  # a dense task: roi_size, predict_case
    init_report, decoder_note = trained.prepared.init_report, recipe.decoder_note

    init_text = init_report.summary() if init_report else ("scratch" if fcfg.from_scratch else "none")
    if decoder_note:
        init_text = f"{init_text}; {decoder_note}"
    if rt.is_main:  # one process segments and scores the cases (the others wait at the barrier)
        assessment = assess_dense(task, data, run.path, cfg, details={
            "steps": result.step, "best_step": result.best_step, "monitor": "dice",
            "stopped_early": result.stopped_early, "init": init_text, "seconds": result.seconds})
        export_cfg = export_config(
            cfg, backbone, "finetune", task=fcfg.task.model_dump(mode="json"), num_classes=2,
            threshold=THRESHOLD, threshold_rule="argmax", roi_size=list(task.roi_size),
            data_stats=stats_of(data["pool"]),
            postprocessing=LARGEST_LESION if assessment.postprocessing else None)
        save_network_export(run.layout.export, export_cfg, backbone=backbone, model=task,
                            card=model_card(cfg.model_dump(mode="json"), assessment))
    rt.barrier()
    run.close()
    return assessment.to_json() if rt.is_main else {}
