"""Lesion-level scoring: hand-computed synthetic cases (matching rules, lesion-wise Dice, FROC and
CPM, lesion table, HD95, 2-D input) and real multi-lesion masks (Lesjak MS lesions, 3 cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ssl_domains.scoring.lesions import (
    CONNECTIVITY,
    FROC,
    SEGMENTATION_METRICS,
    case_metrics,
    dice,
    froc,
    hd95,
    label_components,
    lesion_candidates,
    lesion_table,
    match_lesions,
    segmentation_metrics,
)
from ssl_domains.scoring.metrics import LOWER_IS_BETTER
from tests.conftest import SHARED_DATA

LESJAK = SHARED_DATA / "ms_lesions_lesjak"
MASK = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"
#: Lesions per case at 26-, 18- and 6-connectivity (the data's SOURCE.md)
LESJAK_COUNTS = {"patient07": (37, 38, 49), "patient19": (98, 102, 140),
                 "patient26": (19, 19, 27)}


def two_cubes() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: cubes A (27 voxels) and B (27); prediction: A exactly plus a spurious
    8-voxel cube far from both."""
    truth = np.zeros((20, 20, 20), dtype=bool)
    truth[2:5, 2:5, 2:5] = True  # A
    truth[10:13, 10:13, 10:13] = True  # B
    pred = np.zeros_like(truth)
    pred[2:5, 2:5, 2:5] = True
    pred[15:17, 2:4, 2:4] = True  # spurious
    return pred, truth


@pytest.mark.parametrize("rule", ["iou", "overlap"])
def test_one_lesion_found_one_missed_one_spurious(rule: str) -> None:
    pred, truth = two_cubes()
    m = match_lesions(pred, truth, rule=rule)
    assert (m.n_truth, m.n_pred) == (2, 2)
    assert m.truth_hit.tolist() == [True, False]
    assert m.pred_hit.tolist() == [True, False]  # the spurious cube is the false positive
    assert m.truth_dice.tolist() == [1.0, 0.0]
    assert m.sensitivity == 0.5 and m.false_positives == 1
    assert m.lesion_wise_dice == pytest.approx((1 + 0) / (2 + 1))
    assert dice(pred, truth) == pytest.approx(2 * 27 / (35 + 54))


def test_case_metrics_of_a_probability_map() -> None:
    pred, truth = two_cubes()
    prob = np.where(pred, 0.7, 0.1)
    prob[3, 3, 3] = 0.9
    out = case_metrics(prob, truth)
    assert out["dice"] == pytest.approx(54 / 89)
    assert out["lesion_sensitivity"] == 0.5 and out["false_positives"] == 1.0
    assert out["lesion_wise_dice"] == pytest.approx(1 / 3)
    assert (out["n_truth_lesions"], out["n_pred_lesions"]) == (2.0, 2.0)
    assert out["case_score"] == 0.9
    assert out["hd95"] > 0 and math.isfinite(out["hd95"])
    # nothing above the threshold: every lesion missed, no false positive, Dice 0, HD95 undefined
    none = case_metrics(prob, truth, threshold=0.95)
    assert (none["lesion_sensitivity"], none["false_positives"], none["dice"]) == (0.0, 0.0, 0.0)
    assert none["lesion_wise_dice"] == 0.0 and math.isnan(none["hd95"])


def test_empty_cases() -> None:
    empty = np.zeros((4, 4, 4), dtype=bool)
    m = match_lesions(empty, empty)
    assert (m.n_truth, m.n_pred, m.lesion_wise_dice) == (0, 0, 1.0)
    assert math.isnan(m.sensitivity)
    assert dice(empty, empty) == 1.0 and math.isnan(hd95(empty, empty))
    spot = empty.copy()
    spot[1, 1, 1] = True
    assert match_lesions(spot, empty).lesion_wise_dice == 0.0  # only a false positive
    assert match_lesions(empty, spot).lesion_wise_dice == 0.0  # only a miss
    assert math.isnan(hd95(spot, empty)) and math.isnan(hd95(empty, spot))


def test_iou_rule_at_the_boundary() -> None:
    truth = np.zeros((3, 20, 3), dtype=bool)
    truth[1, 0:10, 1] = True  # a 10-voxel lesion
    tip = np.zeros_like(truth)
    tip[1, 9, 1] = True  # IoU 1/10
    m = match_lesions(tip, truth, rule="iou", iou_min=0.1)
    assert m.truth_hit.tolist() == [True] and m.false_positives == 0
    assert m.truth_dice[0] == pytest.approx(2 / 11)
    assert match_lesions(tip, truth, iou_min=0.11).truth_hit.tolist() == [False]
    longer = tip.copy()
    longer[1, 10, 1] = True  # overlap 1, union 11: IoU 1/11 < 0.1
    m = match_lesions(longer, truth, iou_min=0.1)
    assert m.truth_hit.tolist() == [False] and m.false_positives == 1
    assert m.lesion_wise_dice == 0.0
    # the overlap rule takes any overlap
    assert match_lesions(longer, truth, rule="overlap").truth_hit.tolist() == [True]


def test_overlap_rule_with_dilation_hits_through_the_ring() -> None:
    truth = np.zeros((12, 12, 12), dtype=bool)
    truth[5:8, 5:8, 5:8] = True

    def hit(voxel: tuple[int, int, int], dilation: int) -> bool:
        pred = np.zeros_like(truth)
        pred[voxel] = True
        m = match_lesions(pred, truth, rule="overlap", dilation=dilation)
        assert m.false_positives == (0 if m.truth_hit[0] else 1)
        return bool(m.truth_hit[0])

    assert not hit((8, 6, 6), 0)  # face neighbour, no overlap
    assert hit((8, 6, 6), 1)  # inside the one-voxel ring
    m = match_lesions(np.pad(np.ones((1, 1, 1), bool), ((8, 3), (6, 5), (6, 5))), truth,
                      rule="overlap", dilation=1)
    assert m.truth_dice.tolist() == [0.0] and m.lesion_wise_dice == 0.0  # hit, but no overlap
    assert not hit((9, 6, 6), 1) and hit((9, 6, 6), 2)  # two voxels away
    # BraTS 2023 dilates with the 18-neighbourhood: an edge neighbour is one step away, a corner
    # neighbour two
    assert hit((8, 8, 6), 1)
    assert not hit((8, 8, 8), 1) and hit((8, 8, 8), 2)
    with pytest.raises(ValueError, match="matching rule"):
        match_lesions(truth, truth, rule="centre")
    with pytest.raises(ValueError, match="shape"):
        match_lesions(truth[:-1], truth)


def test_a_prediction_merging_two_lesions_hits_both() -> None:
    truth = np.zeros((3, 12, 3), dtype=bool)
    truth[1, 0:4, 1] = truth[1, 6:10, 1] = True
    pred = np.zeros_like(truth)
    pred[1, 0:10, 1] = True  # IoU 4/10 with each
    m = match_lesions(pred, truth)
    assert m.truth_hit.tolist() == [True, True] and m.n_pred == 1 and m.false_positives == 0
    assert m.truth_dice.tolist() == [pytest.approx(8 / 14)] * 2


def test_min_voxels_drops_specks_on_both_sides() -> None:
    truth = np.zeros((10, 10, 10), dtype=bool)
    truth[1:4, 1:4, 1:4] = True
    truth[7, 7, 7] = True  # a one-voxel lesion
    labels, n = label_components(truth, min_voxels=2)
    assert n == 1 and labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1}
    assert (labels == 1).sum() == 27
    pred = truth.copy()
    pred[7, 1, 1] = True  # a one-voxel false positive
    m = match_lesions(pred, truth, min_voxels=2)
    assert (m.n_truth, m.n_pred, m.false_positives, m.lesion_wise_dice) == (1, 1, 0, 1.0)
    # a big prediction on the dropped lesion is not a false positive either
    blob = np.zeros_like(truth)
    blob[6:9, 6:9, 6:9] = True
    m = match_lesions(blob, truth, rule="overlap", min_voxels=2)
    assert (m.n_truth, m.n_pred, m.false_positives) == (1, 1, 0)
    assert m.truth_hit.tolist() == [False]


def test_two_d_input_and_connectivity() -> None:
    image = np.zeros((6, 6), dtype=bool)
    image[1, 1] = image[2, 2] = True  # diagonal neighbours
    image[4, 4] = True
    assert label_components(image, 8)[1] == 2 and label_components(image, 4)[1] == 3
    assert label_components(image)[1] == 2  # 26 -> 8 in 2-D
    assert label_components(image, 6)[1] == 3  # 6 -> 4 in 2-D
    truth = np.zeros_like(image)
    truth[1:3, 1:3] = True
    m = match_lesions(image, truth)
    assert m.truth_hit.tolist() == [True] and m.false_positives == 1
    assert m.truth_dice[0] == pytest.approx(2 * 2 / (4 + 2))
    labels, scores = lesion_candidates(np.where(image, 0.8, 0.0), connectivity=4)
    assert labels.max() == 3 and scores.tolist() == [0.8, 0.8, 0.8]
    cube = np.zeros((3, 3, 3), dtype=bool)
    cube[0, 0, 0] = cube[1, 1, 1] = True
    assert [label_components(cube, c)[1] for c in sorted(CONNECTIVITY)] == [2, 2, 1]
    with pytest.raises(ValueError, match="connectivity"):
        label_components(cube, 8)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        label_components(np.zeros((2, 2, 2, 2)))


def test_lesion_candidates_score_by_their_highest_probability() -> None:
    prob = np.zeros((8, 8, 8))
    prob[1:3, 1:3, 1:3] = 0.6
    prob[1, 1, 1] = 0.8
    prob[5, 5, 5] = 0.55
    prob[5, 5, 6] = 0.4  # below the threshold
    labels, scores = lesion_candidates(prob, 0.5)
    assert scores.tolist() == [0.8, 0.55]
    assert (labels == 1).sum() == 8 and (labels == 2).sum() == 1
    labels, scores = lesion_candidates(prob, 0.5, min_voxels=2)
    assert scores.tolist() == [0.8] and labels.max() == 1


def test_lesion_table_volume_and_centroid_in_world_coordinates() -> None:
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    prob = np.zeros((8, 8, 4))
    prob[1:3, 4:6, 0:2] = 0.6
    prob[1:3, 4:6, 1] = 0.8  # mean 0.7
    prob[6, 0, 3] = 0.95
    rows = lesion_table(prob, 0.5, affine)
    assert [r["lesion"] for r in rows] == [1, 2]
    single, cube = rows
    assert single["voxels"] == 1 and single["volume_ml"] == pytest.approx(0.008)  # 2 mm voxels
    assert single["centroid_mm"] == pytest.approx([-2 * 6 + 90, -126, 2 * 3 - 72])
    assert (single["max_prob"], single["mean_prob"]) == (0.95, 0.95)
    assert cube["voxels"] == 8 and cube["volume_ml"] == pytest.approx(0.064)
    assert cube["centroid_mm"] == pytest.approx([-2 * 1.5 + 90, 2 * 4.5 - 126, 2 * 0.5 - 72])
    assert cube["max_prob"] == 0.8 and cube["mean_prob"] == pytest.approx(0.7)
    assert lesion_table(prob, 0.99, affine) == []
    # 2-D: a 3x3 affine gives 2 world coordinates
    rows = lesion_table(prob[:, :, 1], 0.5, np.array([[0.5, 0, 10], [0, 0.5, -4], [0, 0, 1]]))
    assert len(rows) == 1 and rows[0]["voxels"] == 4
    assert rows[0]["centroid_mm"] == pytest.approx([0.5 * 1.5 + 10, 0.5 * 4.5 - 4])
    with pytest.raises(ValueError, match="affine"):
        lesion_table(prob, 0.5, np.eye(3))


def two_froc_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Case 1: lesion L1 with two candidates on it (0.9 and 0.6), lesion L2 missed, a false
    positive at 0.7. Case 2: lesion L3 found at 0.8, false positives at 0.95 and 0.55."""
    t1, p1 = np.zeros((16, 16, 16), bool), np.zeros((16, 16, 16))
    t1[2:5, 2:5, 2:5] = True  # L1
    p1[2, 2:5, 2:5] = 0.9  # a 3x3 slab of L1: IoU 9/27
    p1[4, 2:5, 2:5] = 0.6  # another slab, not touching the first
    t1[10:13, 10:13, 10:13] = True  # L2
    p1[10:12, 2:4, 12:14] = 0.7
    t2, p2 = np.zeros((16, 16, 16), bool), np.zeros((16, 16, 16))
    t2[5:9, 5:9, 5:9] = True  # L3
    p2[5:9, 5:9, 5:9] = 0.8
    p2[0, 0, 0] = 0.95
    p2[14:16, 14:16, 14:16] = 0.55
    return [(p1, t1), (p2, t2)]


def test_froc_by_hand() -> None:
    curve = froc(two_froc_cases())
    assert (curve.n_lesions, curve.n_cases) == (3, 2)
    # the second candidate on L1 (0.6) is neither a true nor a false positive
    assert curve.thresholds.tolist() == [0.95, 0.9, 0.8, 0.7, 0.55]
    assert curve.fp_per_case.tolist() == [0.5, 0.5, 0.5, 1.0, 1.5]
    assert curve.sensitivity == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert curve.sensitivity_at(1) == pytest.approx(2 / 3)
    assert curve.sensitivity_at(0.5) == pytest.approx(2 / 3)
    assert curve.sensitivity_at(0.25) == 0.0  # the top-scoring candidate is already a false one
    # CPM: 0 at 1/8 and 1/4, 2/3 at 1/2, 1, 2, 4 and 8
    assert curve.cpm() == pytest.approx(5 * (2 / 3) / 7)
    overlap = froc(two_froc_cases(), rule="overlap")
    assert overlap.sensitivity.tolist() == curve.sensitivity.tolist()
    no_lesions = froc([(np.zeros((4, 4, 4)), np.zeros((4, 4, 4), bool))])
    assert isinstance(no_lesions, FROC) and math.isnan(no_lesions.cpm())
    assert froc([(np.zeros((4, 4, 4)), np.ones((4, 4, 4), bool))]).cpm() == 0.0


def test_segmentation_metrics_pool_lesions_and_false_positives() -> None:
    cases = two_froc_cases()
    out = segmentation_metrics(cases)
    assert set(out) == set(SEGMENTATION_METRICS)
    assert out["lesion_sensitivity"] == pytest.approx(2 / 3)  # L1 and L3 of L1, L2, L3
    assert out["fp_per_case"] == 1.5  # 1 and 2
    assert out["sensitivity_at_1fp"] == pytest.approx(2 / 3)
    assert out["cpm"] == pytest.approx(10 / 21)
    # case 1: both slabs match L1, Dice 2*18/(27+18), L2 missed, 1 FP; case 2: 1 / (1 + 2 FPs)
    assert out["lesion_wise_dice"] == pytest.approx(((2 * 18 / 45) / 3 + 1 / 3) / 2)
    assert 0 < out["dice"] < 1 and out["hd95"] > 0
    assert segmentation_metrics(cases, case_labels=[1, 0])["case_auroc"] == 0.0  # 0.9 < 0.95
    assert math.isnan(segmentation_metrics(cases, case_labels=[1, 1])["case_auroc"])
    spaced = segmentation_metrics(cases, spacing=[(2.0, 2.0, 2.0), (2.0, 2.0, 2.0)])
    assert spaced["hd95"] == pytest.approx(2 * out["hd95"])
    assert segmentation_metrics(cases, spacing=(2.0, 2.0, 2.0))["hd95"] == spaced["hd95"]
    assert {"hd95", "fp_per_case"} <= LOWER_IS_BETTER


def test_hd95_of_known_shapes_with_anisotropic_spacing() -> None:
    a = np.zeros((10, 6, 6), dtype=bool)
    b = np.zeros_like(a)
    a[1, :, :] = True  # two parallel one-voxel-thick planes, 4 voxels apart along axis 0
    b[5, :, :] = True
    assert hd95(a, b) == 4.0
    assert hd95(a, b, spacing=(2.5, 1.0, 0.5)) == 10.0
    c, d = a.transpose(1, 2, 0), b.transpose(1, 2, 0)  # now apart along axis 2
    assert hd95(c, d, spacing=(2.5, 1.0, 0.5)) == 2.0
    # one far outlier among 37 surface voxels moves the maximum, not the 95th percentile
    e = a.copy()
    e[9, 0, 0] = True
    assert hd95(e, a, spacing=(2.5, 1.0, 0.5)) == 0.0
    with pytest.raises(ValueError, match="spacing"):
        hd95(a, b, spacing=(1.0, 1.0))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecations
def test_hd95_agrees_with_monai() -> None:
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics", reason="MONAI (the medical plugin's "
                                  "dependency) gives the reference HD95")
    grid = np.indices((24, 20, 16))
    ball = ((grid[0] - 11) ** 2 + (grid[1] - 9) ** 2 / 0.6 + (grid[2] - 7) ** 2) < 40
    box = np.zeros_like(ball)
    box[6:18, 4:13, 3:12] = True
    box[20:22, 15:18, 12:14] = True  # a second, distant piece
    for spacing in [(1.0, 1.0, 1.0), (0.8, 1.5, 3.0)]:
        ref = metrics.compute_hausdorff_distance(
            torch.from_numpy(box)[None, None], torch.from_numpy(ball)[None, None],
            include_background=True, percentile=95, spacing=spacing).item()
        assert hd95(box, ball, spacing) == pytest.approx(ref, rel=1e-5)


@pytest.fixture(scope="module")
def lesjak() -> dict[str, np.ndarray]:
    nib = pytest.importorskip("nibabel", reason="nibabel reads the Lesjak NIfTI masks")
    if not all((LESJAK / case / MASK).is_file() for case in LESJAK_COUNTS):
        pytest.skip(f"the Lesjak MS lesion masks are not at {LESJAK} (shared/data beside the repo)")
    return {case: np.asarray(nib.load(LESJAK / case / MASK).dataobj) > 0
            for case in LESJAK_COUNTS}


def test_lesjak_lesion_counts_by_connectivity(lesjak: dict[str, np.ndarray]) -> None:
    for case, mask in lesjak.items():
        counts = tuple(label_components(mask, c)[1] for c in (26, 18, 6))
        assert counts == LESJAK_COUNTS[case], case


def test_lesjak_a_mask_against_itself(lesjak: dict[str, np.ndarray]) -> None:
    for case, mask in lesjak.items():
        m = match_lesions(mask, mask)
        assert (m.sensitivity, m.false_positives, m.lesion_wise_dice) == (1.0, 0, 1.0), case
        assert m.n_truth == m.n_pred == LESJAK_COUNTS[case][0]
    out = segmentation_metrics([(mask.astype(float), mask) for mask in lesjak.values()])
    assert out == {"dice": 1.0, "lesion_wise_dice": 1.0, "lesion_sensitivity": 1.0,
                   "sensitivity_at_1fp": 1.0, "cpm": 1.0, "hd95": 0.0, "fp_per_case": 0.0}


def test_lesjak_dropping_lesions(lesjak: dict[str, np.ndarray]) -> None:
    for case, mask in lesjak.items():
        labels, n = label_components(mask)
        dropped = np.arange(1, n + 1, 3)  # every third lesion
        k = len(dropped)
        m = match_lesions(mask & ~np.isin(labels, dropped), mask)
        assert m.sensitivity == (n - k) / n, case
        assert m.false_positives == 0 and m.n_pred == n - k
        assert m.lesion_wise_dice == pytest.approx((n - k) / n)
        assert np.flatnonzero(~m.truth_hit).tolist() == (dropped - 1).tolist()


def test_lesjak_a_dilated_copy_still_hits_every_lesion(lesjak: dict[str, np.ndarray]) -> None:
    for case, mask in lesjak.items():
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in ndimage.find_objects(
            mask.astype(np.int8))[0])
        grown = mask.copy()
        grown[box] = ndimage.binary_dilation(mask[box])  # one voxel, face neighbours
        m = match_lesions(grown, mask, rule="overlap")
        assert (m.sensitivity, m.false_positives) == (1.0, 0), case
        assert m.n_pred <= m.n_truth  # dilation merges neighbouring lesions
        assert 0 < m.lesion_wise_dice < 1
        assert hd95(grown, mask) == pytest.approx(1.0, abs=0.5)


def test_lesjak_lesion_table_volume(lesjak: dict[str, np.ndarray]) -> None:
    nib = pytest.importorskip("nibabel")
    affine = nib.load(LESJAK / "patient07" / MASK).affine  # 1 mm MNI
    rows = lesion_table(lesjak["patient07"].astype(float), 0.5, affine)
    assert len(rows) == 37
    assert sum(r["voxels"] for r in rows) == 1300
    assert sum(r["volume_ml"] for r in rows) == pytest.approx(1.30)
    assert max(r["voxels"] for r in rows) == 210
