"""Segmentation and lesion-level scoring: voxel overlap, lesion matching, FROC, lesion tables.

Pure functions on NumPy arrays (2-D images or 3-D volumes; no files, no plotting, no pandas).
A *lesion* is a connected component of a binary mask (26-connectivity in 3-D and 8 in 2-D
unless told otherwise); a predicted lesion is a component of ``prob >= threshold``.

How the field scores lesions, and what is followed here:

* **Matching, IoU rule** (``rule="iou"``): a predicted and a ground-truth component match when
  their intersection over union is at least ``iou_min`` (0.1 by default), the criterion of the
  PI-CAI challenge's ``picai_eval.evaluate_case`` (``min_overlap=0.10``, ``overlap_func="IoU"``;
  github.com/DIAGNijmegen/picai_eval). picai_eval then pairs candidates and lesions one-to-one
  (``linear_sum_assignment``) and, by default, counts the other candidates with enough overlap
  as neither true nor false positives; here every pair that passes the criterion matches, so a
  prediction that merges two lesions hits both.
* **Matching, overlap rule** (``rule="overlap"``): a predicted component hits a ground-truth
  lesion when it overlaps that lesion dilated by ``dilation`` voxels, the rule of the BraTS 2023
  lesion-wise metrics (github.com/rachitsaluja/BraTS-2023-Metrics, ``eval.py``: dilation
  factor 1 to 3 with ``generate_binary_structure(3, 2)``). BraTS also merges ground-truth
  lesions whose dilations touch; here the ground-truth lesions stay the connected components,
  so their count does not depend on ``dilation``.
* **Lesion-wise Dice** (BraTS 2023): each ground-truth lesion scores the Dice of itself with the
  union of the predicted components that hit it (0 when missed), and the case scores
  ``sum / (ground-truth lesions + false positives)``.
* **FROC and CPM** (LUNA16, Setio et al. 2017, ``noduleCADEvaluationLUNA16.py``; MONAI's
  ``compute_froc_curve_data`` / ``compute_froc_score``): candidates keep their highest
  probability as score; the highest-scoring candidate on a lesion is its true positive, other
  candidates on the same lesion are ignored (neither true nor false positives), and candidates
  on no lesion are false positives. The competition performance metric is the mean sensitivity
  at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per case. LUNA16 and MONAI interpolate the
  curve linearly between operating points; :meth:`FROC.sensitivity_at` takes the best operating
  point reached, which never credits a sensitivity no threshold gives.
* **HD95**: the 95th percentile Hausdorff distance between the mask surfaces (voxels removed by
  one binary erosion), in millimetres with the voxel spacing: the definition of
  ``monai.metrics.compute_hausdorff_distance(..., percentile=95, spacing=...)``, computed here
  with SciPy (the host does not depend on MONAI; the tests hold both equal).

Undefined values (a sensitivity without ground-truth lesions, an HD95 with an empty mask) are
NaN, never an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage, spatial

from ssl_domains.scoring.metrics import sklearn_metrics

__all__ = [
    "CONNECTIVITY",
    "CONNECTIVITY_2D",
    "CPM_RATES",
    "FROC",
    "MATCH_RULES",
    "SEGMENTATION_METRICS",
    "CaseTally",
    "LesionMatch",
    "case_metrics",
    "dice",
    "froc",
    "hd95",
    "label_components",
    "lesion_candidates",
    "lesion_table",
    "match_lesions",
    "segmentation_metrics",
]

NAN = float("nan")

#: 3-D neighbourhood (6 faces, 18 faces + edges, 26 all) -> rank of
#: :func:`scipy.ndimage.generate_binary_structure`.
CONNECTIVITY = {6: 1, 18: 2, 26: 3}
#: The same for 2-D (4 edges, 8 edges + corners). A 3-D connectivity given with a 2-D mask maps
#: to its 2-D slice: 6 -> 4, 18 and 26 -> 8.
CONNECTIVITY_2D = {4: 1, 8: 2}
_TO_2D = {6: 4, 18: 8, 26: 8}
#: Matching rules of :func:`match_lesions` and :func:`froc`.
MATCH_RULES = ("iou", "overlap")
#: False-positive rates of the LUNA16 competition performance metric.
CPM_RATES = (0.125, 0.25, 0.5, 1, 2, 4, 8)
#: Metrics of :func:`segmentation_metrics`, headline first (``hd95`` and ``fp_per_case`` are
#: lower-is-better, see :data:`~ssl_domains.scoring.metrics.LOWER_IS_BETTER`).
SEGMENTATION_METRICS = ("dice", "lesion_wise_dice", "lesion_sensitivity", "sensitivity_at_1fp",
                        "cpm", "hd95", "fp_per_case")


def _structure(ndim: int, connectivity: int) -> np.ndarray:
    """The neighbourhood of ``connectivity`` for a ``ndim``-D mask."""
    if ndim == 3:
        table = CONNECTIVITY
    elif ndim == 2:
        table = CONNECTIVITY_2D
        connectivity = _TO_2D.get(connectivity, connectivity)
    else:
        raise ValueError(f"lesion masks must be 2-D or 3-D, got {ndim}-D")
    if connectivity not in table:
        raise ValueError(f"unknown {ndim}-D connectivity {connectivity}; allowed: "
                         f"{sorted(table) + (sorted(_TO_2D) if ndim == 2 else [])}")
    return ndimage.generate_binary_structure(ndim, table[connectivity])


def _masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction and ground truth differ in shape: {p.shape} vs {t.shape}")
    return p, t


def _rule(rule: str) -> None:
    if rule not in MATCH_RULES:
        raise ValueError(f"unknown lesion matching rule {rule!r}; allowed: {MATCH_RULES}")


def _box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """The bounding box of ``mask`` grown by ``margin`` voxels (clipped to the array); one
    voxel at the origin when the mask is empty. Components, overlaps and surfaces inside it are
    those of the whole array, and a volume's lesions fill a small part of it."""
    box = []
    for axis in range(mask.ndim):
        rest = tuple(a for a in range(mask.ndim) if a != axis)
        on = np.flatnonzero(mask.any(axis=rest)) if rest else np.flatnonzero(mask)
        if len(on) == 0:
            return tuple(slice(0, min(1, n)) for n in mask.shape)
        box.append(slice(max(int(on[0]) - margin, 0),
                         min(int(on[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient ``2 |P & T| / (|P| + |T|)`` of two boolean masks.

    Args:
        pred: Predicted mask (any shape; non-zero is foreground).
        truth: Ground-truth mask, same shape.

    Returns:
        The Dice in [0, 1]; 1.0 when both masks are empty (nothing to find, nothing found).

    Raises:
        ValueError: When the shapes differ.
    """
    p, t = _masks(pred, truth)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def _spacing(spacing: Sequence[float] | float | None, ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    s = np.broadcast_to(np.asarray(spacing, dtype=float), (ndim,)) if np.ndim(spacing) == 0 \
        else np.asarray(spacing, dtype=float)
    if s.shape != (ndim,):
        raise ValueError(f"spacing needs {ndim} values for a {ndim}-D mask, got {list(s)}")
    return s


def hd95(pred: np.ndarray, truth: np.ndarray,
         spacing: Sequence[float] | None = None) -> float:
    """95th percentile Hausdorff distance between the surfaces of two masks, in millimetres.

    The surface of a mask is its voxels that one binary erosion (face neighbourhood) removes.
    The distance is the larger of the two directed 95th percentiles (prediction surface to the
    nearest ground-truth surface voxel, and back), as in
    ``monai.metrics.compute_hausdorff_distance(..., percentile=95, spacing=spacing)``.

    Args:
        pred: Predicted mask, 2-D or 3-D.
        truth: Ground-truth mask, same shape.
        spacing: Voxel size per axis in mm (``None``: 1 mm).

    Returns:
        The distance in mm; NaN when either mask is empty.

    Raises:
        ValueError: On a shape mismatch or a spacing of the wrong length.
    """
    p, t = _masks(pred, truth)
    sp = _spacing(spacing, p.ndim)
    if not p.any() or not t.any():
        return NAN
    # crop to the joint bounding box: every surface voxel lies inside it, and erosion treats
    # outside the array as background either way
    box = _box(p | t)
    p, t = p[box], t[box]
    edge_p = p ^ ndimage.binary_erosion(p)
    edge_t = t ^ ndimage.binary_erosion(t)
    # nearest-neighbour distances between the surface voxels' centres in mm (MONAI's CPU path)
    xp, xt = np.argwhere(edge_p) * sp, np.argwhere(edge_t) * sp
    to_t = spatial.cKDTree(xt).query(xp, k=1)[0]
    to_p = spatial.cKDTree(xp).query(xt, k=1)[0]
    return float(max(np.percentile(to_t, 95), np.percentile(to_p, 95)))


def label_components(mask: np.ndarray, connectivity: int = 26,
                     min_voxels: int = 1) -> tuple[np.ndarray, int]:
    """Connected components of a 2-D or 3-D mask.

    Args:
        mask: Boolean mask (non-zero is foreground).
        connectivity: 6, 18 or 26 in 3-D; 4 or 8 in 2-D (26 and 18 mean 8, 6 means 4 there).
        min_voxels: Components smaller than this are removed and the rest renumbered.

    Returns:
        ``(labels, n)``: int32 labels (0 background, 1..n in raster order of first voxel) and n.

    Raises:
        ValueError: For masks that are not 2-D or 3-D, or an unknown connectivity.
    """
    m = np.asarray(mask).astype(bool)
    structure = _structure(m.ndim, connectivity)
    box = _box(m)
    labels = np.zeros(m.shape, dtype=np.int32)
    labels[box], n = ndimage.label(m[box], structure=structure)
    if min_voxels > 1 and n:
        keep = np.bincount(labels.ravel(), minlength=n + 1) >= min_voxels
        keep[0] = False
        renumber = np.zeros(n + 1, dtype=np.int32)
        renumber[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        labels, n = renumber[labels], int(keep.sum())
    return labels, int(n)


@dataclass
class LesionMatch:
    """Ground-truth and predicted lesions of one case, matched (see :func:`match_lesions`).

    Attributes:
        n_truth: Ground-truth lesions.
        n_pred: Predicted lesions.
        truth_hit: Per ground-truth lesion (label order): whether a predicted lesion matches it.
        pred_hit: Per predicted lesion (label order): whether it matches a ground-truth lesion
            (False: a false positive).
        truth_dice: Per ground-truth lesion: Dice of the lesion with the union of the predicted
            lesions matched to it (0 when missed).
        lesion_wise_dice: BraTS 2023 lesion-wise Dice, ``sum(truth_dice) / (n_truth + false
            positives)``: 1.0 when both masks are empty, 0.0 when only one is.
    """

    n_truth: int
    n_pred: int
    truth_hit: np.ndarray
    pred_hit: np.ndarray
    truth_dice: np.ndarray
    lesion_wise_dice: float

    @property
    def sensitivity(self) -> float:
        """Hit ground-truth lesions / ground-truth lesions (NaN without any)."""
        return float(self.truth_hit.mean()) if self.n_truth else NAN

    @property
    def false_positives(self) -> int:
        """Predicted lesions that match no ground-truth lesion."""
        return int((~self.pred_hit).sum())


def _match_matrix(pred_labels: np.ndarray, n_pred: int, truth_labels: np.ndarray, n_truth: int,
                  rule: str, iou_min: float, dilation: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(match [n_pred, n_truth] bool, intersection [n_pred, n_truth], pred sizes, truth
    sizes)`` of two label images."""
    pred_size = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)[1:]
    truth_size = np.bincount(truth_labels.ravel(), minlength=n_truth + 1)[1:]
    both = (pred_labels > 0) & (truth_labels > 0)
    pair = (pred_labels[both].astype(np.int64) - 1) * n_truth + truth_labels[both] - 1
    inter = np.bincount(pair, minlength=n_pred * n_truth).reshape(n_pred, n_truth)
    if rule == "iou":
        union = pred_size[:, None] + truth_size[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        return (inter > 0) & (iou >= iou_min - 1e-12), inter, pred_size, truth_size
    if dilation <= 0:
        return inter > 0, inter, pred_size, truth_size
    match = np.zeros((n_pred, n_truth), dtype=bool)
    ndim = truth_labels.ndim
    grow = ndimage.generate_binary_structure(ndim, min(ndim, 2))  # BraTS 2023: rank 2
    for j, box in enumerate(ndimage.find_objects(truth_labels, max_label=n_truth)):
        if box is None:
            continue
        wide = tuple(slice(max(s.start - dilation, 0), min(s.stop + dilation, size))
                     for s, size in zip(box, truth_labels.shape))
        ring = ndimage.binary_dilation(truth_labels[wide] == j + 1, structure=grow,
                                       iterations=dilation)
        hits = np.unique(pred_labels[wide][ring])
        match[hits[hits > 0] - 1, j] = True
    return match, inter, pred_size, truth_size


def _match_labels(pred_labels: np.ndarray, n_pred: int, truth: np.ndarray, *, rule: str,
                  iou_min: float, dilation: int, connectivity: int,
                  min_voxels: int) -> tuple[LesionMatch, np.ndarray]:
    """Match predicted components against the lesions of ``truth``.

    Ground-truth lesions under ``min_voxels`` are left out of the count; a prediction that
    matches only such a lesion is not a false positive (BraTS 2023 leaves lesions under its
    volume threshold out the same way). Returns the match and the kept-lesion match matrix.
    """
    truth_labels, n_all = label_components(truth, connectivity)
    match, inter, pred_size, truth_size = _match_matrix(pred_labels, n_pred, truth_labels, n_all,
                                                        rule, iou_min, dilation)
    kept = truth_size >= min_voxels
    pred_hit = np.asarray(match.any(axis=1), dtype=bool)
    match, inter, truth_size = match[:, kept], inter[:, kept], truth_size[kept]
    n_truth = int(kept.sum())
    truth_hit = np.asarray(match.any(axis=0), dtype=bool)
    matched_inter = (inter * match).sum(axis=0)
    matched_size = (pred_size[:, None] * match).sum(axis=0)
    truth_dice = np.where(truth_hit, 2.0 * matched_inter / (truth_size + matched_size), 0.0)
    fps = int((~pred_hit).sum())
    lwd = 1.0 if n_truth + fps == 0 else float(truth_dice.sum() / (n_truth + fps))
    return LesionMatch(n_truth, n_pred, truth_hit, pred_hit, truth_dice.astype(float), lwd), match


def match_lesions(pred: np.ndarray, truth: np.ndarray, *, rule: str = "iou",
                  iou_min: float = 0.1, dilation: int = 0, connectivity: int = 26,
                  min_voxels: int = 1) -> LesionMatch:
    """Match the connected components of a predicted mask to those of the ground truth.

    Args:
        pred: Predicted mask (2-D or 3-D).
        truth: Ground-truth mask, same shape.
        rule: ``"iou"``: a predicted and a ground-truth lesion match when their IoU is at least
            ``iou_min`` (picai_eval). ``"overlap"``: a predicted lesion hits a ground-truth
            lesion when it overlaps the lesion dilated by ``dilation`` voxels (BraTS 2023).
            A ground-truth lesion is hit when some predicted lesion matches it.
        iou_min: IoU threshold of the ``"iou"`` rule (matching is ``>=``).
        dilation: Dilation of each ground-truth lesion, in voxels (18-neighbourhood steps in 3-D,
            8 in 2-D), under the ``"overlap"`` rule.
        connectivity: Neighbourhood of the components (see :func:`label_components`).
        min_voxels: Components smaller than this are left out, predicted and ground-truth alike
            (a prediction that matches only a left-out lesion is not a false positive).

    Returns:
        A :class:`LesionMatch`.

    Raises:
        ValueError: On an unknown rule, a shape mismatch or a bad connectivity.
    """
    _rule(rule)
    p, t = _masks(pred, truth)
    box = _box(p | t, dilation if rule == "overlap" else 0)
    p, t = p[box], t[box]
    pred_labels, n_pred = label_components(p, connectivity, min_voxels)
    return _match_labels(pred_labels, n_pred, t, rule=rule, iou_min=iou_min, dilation=dilation,
                         connectivity=connectivity, min_voxels=min_voxels)[0]


def lesion_candidates(prob: np.ndarray, threshold: float = 0.5, connectivity: int = 26,
                      min_voxels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Lesion candidates of a probability map: components of ``prob >= threshold``.

    Args:
        prob: Probability (or score) map, 2-D or 3-D.
        threshold: Voxels at or above it are foreground.
        connectivity: Neighbourhood of the components (see :func:`label_components`).
        min_voxels: Smaller components are dropped.

    Returns:
        ``(labels, scores)``: int32 labels 1..n and float scores [n], ``scores[i]`` the highest
        probability in component ``i + 1``.
    """
    p = np.asarray(prob, dtype=float)
    labels, n = label_components(p >= threshold, connectivity, min_voxels)
    if n == 0:
        return labels, np.zeros(0)
    scores = ndimage.maximum(p, labels, index=np.arange(1, n + 1))
    return labels, np.asarray(scores, dtype=float).reshape(n)


@dataclass
class FROC:
    """Free-response ROC curve over a set of cases (see :func:`froc`).

    One operating point per distinct candidate score, thresholds descending (so false positives
    and sensitivity ascend).

    Attributes:
        fp_per_case: False positives per case at each threshold.
        sensitivity: Detected ground-truth lesions / all lesions at each threshold (NaN without
            lesions).
        thresholds: Candidate score thresholds (a candidate counts when its score is ``>=``).
        n_lesions: Ground-truth lesions over all cases.
        n_cases: Cases.
    """

    fp_per_case: np.ndarray
    sensitivity: np.ndarray
    thresholds: np.ndarray
    n_lesions: int
    n_cases: int

    def sensitivity_at(self, fp_rate: float) -> float:
        """The best sensitivity reached with at most ``fp_rate`` false positives per case.

        No interpolation between operating points (LUNA16 and MONAI interpolate linearly): a
        rate below the first operating point gets 0.0 (the threshold above every candidate).
        NaN without ground-truth lesions.
        """
        if self.n_lesions == 0:
            return NAN
        ok = self.fp_per_case <= fp_rate + 1e-12
        return float(self.sensitivity[ok].max()) if ok.any() else 0.0

    def cpm(self, rates: Sequence[float] = CPM_RATES) -> float:
        """LUNA16 competition performance metric: mean :meth:`sensitivity_at` over ``rates``
        (NaN without ground-truth lesions)."""
        return float(np.mean([self.sensitivity_at(r) for r in rates]))


def _case_detections(prob: np.ndarray, truth: np.ndarray, *, threshold: float, rule: str,
                     iou_min: float, dilation: int, connectivity: int, min_voxels: int
                     ) -> tuple[LesionMatch, np.ndarray, np.ndarray]:
    """``(match, lesion scores, false-positive scores)`` of one case: each kept ground-truth
    lesion's best matching candidate score (-inf when missed) and the unmatched candidates'."""
    _rule(rule)
    p = np.asarray(prob, dtype=float)
    _, t = _masks(p, truth)
    box = _box((p >= threshold) | t, dilation if rule == "overlap" else 0)
    p, t = p[box], t[box]
    labels, scores = lesion_candidates(p, threshold, connectivity, min_voxels)
    match, matrix = _match_labels(labels, len(scores), t, rule=rule,
                                  iou_min=iou_min, dilation=dilation, connectivity=connectivity,
                                  min_voxels=min_voxels)
    lesion_scores = np.where(matrix, scores[:, None], -np.inf).max(axis=0, initial=-np.inf)
    return match, lesion_scores, scores[~match.pred_hit]


def _froc_curve(lesion_scores: list[np.ndarray], fp_scores: list[np.ndarray]) -> FROC:
    lesions = np.concatenate([np.zeros(0), *lesion_scores])
    fps = np.concatenate([np.zeros(0), *fp_scores])
    n_cases, n_lesions = len(lesion_scores), len(lesions)
    thresholds = np.unique(np.concatenate([lesions[np.isfinite(lesions)], fps]))[::-1]
    fp_count = np.searchsorted(np.sort(-fps), -thresholds, side="right")
    tp_count = np.searchsorted(np.sort(-lesions), -thresholds, side="right")
    sens = tp_count / n_lesions if n_lesions else np.full(len(thresholds), NAN)
    return FROC(fp_count / max(n_cases, 1), np.asarray(sens, dtype=float), thresholds,
                n_lesions, n_cases)


def froc(cases: Sequence[tuple[np.ndarray, np.ndarray]], *, threshold: float = 0.5,
         rule: str = "iou", iou_min: float = 0.1, dilation: int = 0, connectivity: int = 26,
         min_voxels: int = 1) -> FROC:
    """Lesion-level FROC curve of probability maps against ground-truth masks.

    Each case's candidates come from :func:`lesion_candidates` (score: highest probability);
    a candidate is on a lesion under the rule of :func:`match_lesions`. Following LUNA16, a
    lesion is detected at a score threshold when some candidate on it scores at least the
    threshold (its highest-scoring candidate is the true positive; further candidates on it are
    neither true nor false positives), and a candidate on no lesion is a false positive. The
    threshold sweeps over the candidate scores.

    Args:
        cases: ``(prob, truth)`` per case (arrays of the same shape within a case).
        threshold: Probability at which voxels become candidate voxels.
        rule: ``"iou"`` or ``"overlap"`` (see :func:`match_lesions`).
        iou_min: IoU threshold of the ``"iou"`` rule.
        dilation: Ground-truth dilation in voxels of the ``"overlap"`` rule.
        connectivity: Neighbourhood of the components.
        min_voxels: Smaller components are left out.

    Returns:
        A :class:`FROC`.

    Raises:
        ValueError: On an unknown rule or a shape mismatch.
    """
    lesion_scores, fp_scores = [], []
    for prob, truth in cases:
        _, lesions, fps = _case_detections(prob, truth, threshold=threshold, rule=rule,
                                           iou_min=iou_min, dilation=dilation,
                                           connectivity=connectivity, min_voxels=min_voxels)
        lesion_scores.append(lesions)
        fp_scores.append(fps)
    return _froc_curve(lesion_scores, fp_scores)


def lesion_table(prob: np.ndarray, threshold: float, affine: np.ndarray, connectivity: int = 26,
                 min_voxels: int = 1) -> list[dict[str, Any]]:
    """One row per predicted lesion (component of ``prob >= threshold``), highest first.

    Args:
        prob: Probability map, 2-D or 3-D.
        threshold: Voxels at or above it are lesion.
        affine: Voxel-to-world matrix in mm: ``(ndim + 1) x (ndim + 1)``, or 4 x 4 for a 2-D
            slice (its index ``(i, j)`` is taken as ``(i, j, 0)``).
        connectivity: Neighbourhood of the components.
        min_voxels: Smaller components are left out.

    Returns:
        Rows with ``lesion`` (1..n by ``max_prob`` descending), ``voxels``, ``volume_ml``
        (voxels x ``|det|`` of the affine's linear part / 1000; a 2-D slice with a 3 x 3 affine
        counts as 1 mm thick), ``centroid_mm`` (world coordinates of the voxel centroid, one per
        world axis of the affine), ``max_prob`` and ``mean_prob``.

    Raises:
        ValueError: When the affine's shape does not fit the map.
    """
    p = np.asarray(prob, dtype=float)
    a = np.asarray(affine, dtype=float)
    k = a.shape[0] - 1
    if a.shape not in ((p.ndim + 1, p.ndim + 1), (4, 4)) or p.ndim > k:
        raise ValueError(f"a {p.ndim}-D map needs a {p.ndim + 1}x{p.ndim + 1} (or 4x4) affine, "
                         f"got shape {a.shape}")
    box = _box(p >= threshold)
    p = p[box]
    labels, scores = lesion_candidates(p, threshold, connectivity, min_voxels)
    n = len(scores)
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    voxels = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    means = np.asarray(ndimage.mean(p, labels, index=index), dtype=float).reshape(n)
    centres = np.asarray(ndimage.center_of_mass(labels > 0, labels, index), dtype=float)
    centres = centres.reshape(n, p.ndim) + [b.start for b in box]
    centres = np.hstack([centres, np.zeros((n, k - p.ndim))])
    world = centres @ a[:k, :k].T + a[:k, k]
    voxel_ml = abs(float(np.linalg.det(a[:k, :k]))) / 1000.0
    order = np.argsort(-scores, kind="stable")
    return [{"lesion": rank, "voxels": int(voxels[i]), "volume_ml": float(voxels[i] * voxel_ml),
             "centroid_mm": [float(x) for x in world[i]], "max_prob": float(scores[i]),
             "mean_prob": float(means[i])}
            for rank, i in enumerate(order, start=1)]


def case_metrics(prob: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | None = None,
                 threshold: float = 0.5, rule: str = "iou", iou_min: float = 0.1,
                 dilation: int = 0, connectivity: int = 26,
                 min_voxels: int = 1) -> dict[str, float]:
    """Voxel- and lesion-level metrics of one case.

    Args:
        prob: Probability map (or a binary mask), 2-D or 3-D.
        truth: Ground-truth mask, same shape.
        spacing: Voxel size in mm for ``hd95`` (``None``: 1 mm).
        threshold: ``prob >= threshold`` is the predicted mask.
        rule, iou_min, dilation, connectivity, min_voxels: Lesion matching, see
            :func:`match_lesions` (``min_voxels`` applies to the lesions only: ``dice`` and
            ``hd95`` score the thresholded mask as it is).

    Returns:
        ``dice``, ``hd95`` (mm; NaN when a mask is empty), ``lesion_sensitivity`` (hit
        ground-truth lesions / lesions; NaN without lesions), ``false_positives`` (predicted
        lesions on no lesion), ``lesion_wise_dice``, ``n_truth_lesions``, ``n_pred_lesions`` and
        ``case_score`` (the highest probability).

    Raises:
        ValueError: On an unknown rule or a shape mismatch.
    """
    out, _, _, _ = _case(prob, truth, spacing=spacing, threshold=threshold, rule=rule,
                      iou_min=iou_min, dilation=dilation, connectivity=connectivity,
                      min_voxels=min_voxels)
    return out


def _case(prob: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | None,
          threshold: float, rule: str, iou_min: float, dilation: int, connectivity: int,
          min_voxels: int) -> tuple[dict[str, float], LesionMatch, np.ndarray, np.ndarray]:
    p = np.asarray(prob, dtype=float)
    t = np.asarray(truth).astype(bool)
    match, lesions, fps = _case_detections(p, t, threshold=threshold, rule=rule, iou_min=iou_min,
                                           dilation=dilation, connectivity=connectivity,
                                           min_voxels=min_voxels)
    pred = p >= threshold
    out = {
        "dice": dice(pred, t),
        "hd95": hd95(pred, t, spacing),
        "lesion_sensitivity": match.sensitivity,
        "false_positives": float(match.false_positives),
        "lesion_wise_dice": match.lesion_wise_dice,
        "n_truth_lesions": float(match.n_truth),
        "n_pred_lesions": float(match.n_pred),
        "case_score": float(p.max()) if p.size else NAN,
    }
    return out, match, lesions, fps


def _per_case_spacing(spacing: Any, n: int) -> list[Any]:
    if spacing is None:
        return [None] * n
    if len(spacing) and (spacing[0] is None or np.ndim(spacing[0]) > 0):
        if len(spacing) != n:
            raise ValueError(f"{len(spacing)} spacings for {n} cases; give one per case or one "
                             "for all")
        return list(spacing)
    return [spacing] * n


def _finite_mean(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else NAN


class CaseTally:
    """Case-by-case accumulation of what :func:`segmentation_metrics` and :func:`froc` compute
    over a set of cases, keeping per case only its row and its lesion scores (not the maps):
    memory stays bounded however many full-size volumes are scored.

    Args:
        threshold, rule, iou_min, dilation, connectivity, min_voxels: As in
            :func:`case_metrics`.
    """

    def __init__(self, *, threshold: float = 0.5, rule: str = "iou", iou_min: float = 0.1,
                 dilation: int = 0, connectivity: int = 26, min_voxels: int = 1) -> None:
        _rule(rule)
        self._match = functools.partial(_case, threshold=threshold, rule=rule, iou_min=iou_min,
                                        dilation=dilation, connectivity=connectivity,
                                        min_voxels=min_voxels)
        self.rows: list[dict[str, float]] = []
        self._lesion_scores: list[np.ndarray] = []
        self._fp_scores: list[np.ndarray] = []
        self._n_lesions = 0
        self._hits = 0

    def add(self, prob: np.ndarray, truth: np.ndarray,
            spacing: Sequence[float] | None = None) -> dict[str, float]:
        """Score one case; returns its :func:`case_metrics` row."""
        row, match, lesions, fps = self._match(prob, truth, spacing=spacing)
        self.rows.append(row)
        self._n_lesions += match.n_truth
        self._hits += int(match.truth_hit.sum())
        self._lesion_scores.append(lesions)
        self._fp_scores.append(fps)
        return row

    def froc(self) -> FROC:
        """The FROC curve of the cases added (as :func:`froc` of their maps)."""
        return _froc_curve(self._lesion_scores, self._fp_scores)

    def metrics(self, case_labels: Sequence[int] | None = None) -> dict[str, float]:
        """:func:`segmentation_metrics` of the cases added."""
        rows = self.rows
        curve = self.froc()
        out = {
            "dice": _finite_mean([r["dice"] for r in rows]),
            "lesion_wise_dice": _finite_mean([r["lesion_wise_dice"] for r in rows]),
            "lesion_sensitivity": self._hits / self._n_lesions if self._n_lesions else NAN,
            "sensitivity_at_1fp": curve.sensitivity_at(1.0) if rows else NAN,
            "cpm": curve.cpm() if rows else NAN,
            "hd95": _finite_mean([r["hd95"] for r in rows]),
            "fp_per_case": _finite_mean([r["false_positives"] for r in rows]),
        }
        if case_labels is not None:
            y = np.asarray(case_labels, dtype=int).reshape(-1)
            if len(y) != len(rows):
                raise ValueError(f"{len(y)} case labels for {len(rows)} cases; they must match")
            both = len(np.unique(y)) == 2
            scores = [r["case_score"] for r in rows]
            out["case_auroc"] = float(sklearn_metrics().roc_auc_score(y, scores)) if both else NAN
        return out


def segmentation_metrics(cases: Sequence[tuple[np.ndarray, np.ndarray]], *,
                         spacing: Sequence[float] | Sequence[Sequence[float]] | None = None,
                         case_labels: Sequence[int] | None = None, threshold: float = 0.5,
                         rule: str = "iou", iou_min: float = 0.1, dilation: int = 0,
                         connectivity: int = 26, min_voxels: int = 1) -> dict[str, float]:
    """Metrics of a set of segmented cases (see :data:`SEGMENTATION_METRICS`).

    Args:
        cases: ``(prob, truth)`` per case.
        spacing: Voxel size in mm, one for all cases or one per case (``None``: 1 mm).
        case_labels: Per case 1 (has lesions) or 0, for ``case_auroc``.
        threshold, rule, iou_min, dilation, connectivity, min_voxels: As in
            :func:`case_metrics`.

    Returns:
        Means over cases: ``dice``, ``hd95`` (over the cases where it is finite; NaN if none)
        and ``lesion_wise_dice``. Pooled over cases: ``lesion_sensitivity`` (all hit lesions /
        all lesions; NaN without lesions), ``fp_per_case`` (mean false positives),
        ``sensitivity_at_1fp`` and ``cpm`` (from the :func:`froc` curve). With
        ``case_labels``: ``case_auroc``, the AUROC of each case's highest probability against
        its label (NaN unless both labels occur). Every value is NaN when there are no cases.
        (:class:`CaseTally` computes the same one case at a time.)

    Raises:
        ValueError: On an unknown rule, a shape mismatch, or spacings or labels whose count is
            not the number of cases.
    """
    cases = list(cases)
    tally = CaseTally(threshold=threshold, rule=rule, iou_min=iou_min, dilation=dilation,
                      connectivity=connectivity, min_voxels=min_voxels)
    for (prob, truth), sp in zip(cases, _per_case_spacing(spacing, len(cases))):
        tally.add(prob, truth, sp)
    return tally.metrics(case_labels)
