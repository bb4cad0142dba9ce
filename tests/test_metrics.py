"""lib.metrics against hand-made masks with known answers, scikit-learn and MONAI."""

import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, compute_hausdorff_distance
from scipy import ndimage
from scipy.spatial.distance import cdist
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from lib import metrics


def blob(rng, shape, sigma=3.0, quantile=0.8):
    """A random smooth binary blob: thresholded, smoothed white noise."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field > np.quantile(field, quantile)


def mask(shape, *pixels):
    out = np.zeros(shape, dtype=bool)
    for pixel in pixels:
        out[pixel] = True
    return out


# 4x4 masks of 4 pixels each, overlapping in 2: tp=2, fp=2, fn=2, tn=10.
PRED_4 = mask((4, 4), (0, 0), (0, 1), (1, 0), (1, 1))
TARGET_4 = mask((4, 4), (0, 1), (1, 1), (0, 2), (1, 2))


# ----------------------------------------------------------------- known answers


def test_confusion_counts_of_two_overlapping_squares():
    assert metrics.confusion_counts(PRED_4, TARGET_4) == (2, 2, 2, 10)


def test_scores_of_two_overlapping_squares():
    scores = metrics.segmentation_scores(PRED_4, TARGET_4)
    assert scores == pytest.approx(
        {"dice": 0.5, "accuracy": 12 / 16, "sensitivity": 0.5, "specificity": 10 / 12}
    )
    assert metrics.dice(PRED_4, TARGET_4) == 0.5
    assert metrics.accuracy(PRED_4, TARGET_4) == 0.75
    assert metrics.sensitivity(PRED_4, TARGET_4) == 0.5
    assert metrics.specificity(PRED_4, TARGET_4) == pytest.approx(10 / 12)


def test_pred_and_target_are_not_interchangeable_for_sensitivity():
    # pred covers the target and 2 more pixels: sensitivity 1, specificity 10/12.
    target = mask((4, 4), (0, 0), (0, 1))
    pred = mask((4, 4), (0, 0), (0, 1), (2, 2), (3, 3))
    assert metrics.confusion_counts(pred, target) == (2, 2, 0, 12)
    assert metrics.sensitivity(pred, target) == 1.0
    assert metrics.specificity(pred, target) == pytest.approx(12 / 14)
    assert metrics.sensitivity(target, pred) == 0.5


def test_accepts_torch_tensors_and_01_integers():
    as_tensor = metrics.dice(torch.from_numpy(PRED_4.astype(np.float32)), torch.from_numpy(TARGET_4))
    as_ints = metrics.dice(PRED_4.astype(np.uint8), TARGET_4.astype(np.int64))
    assert as_tensor == as_ints == 0.5


def test_confusion_counts_over_axes_and_per_sample():
    pred = np.stack([PRED_4, TARGET_4, np.zeros((4, 4), bool)])
    target = np.stack([TARGET_4, TARGET_4, TARGET_4])
    tp, fp, fn, tn = metrics.confusion_counts_per_sample(pred, target)
    np.testing.assert_array_equal(tp, [2, 4, 0])
    np.testing.assert_array_equal(fp, [2, 0, 0])
    np.testing.assert_array_equal(fn, [2, 0, 4])
    np.testing.assert_array_equal(tn, [10, 12, 12])
    # counting over axis 0 instead gives per-pixel counts of shape (4, 4)
    tp_pixel, fp_pixel, fn_pixel, tn_pixel = metrics.confusion_counts(pred, target, axes=0)
    assert tp_pixel.shape == (4, 4) and tp_pixel[0, 1] == 2 and fn_pixel[0, 2] == 2
    np.testing.assert_array_equal(tp_pixel + fp_pixel + fn_pixel + tn_pixel, np.full((4, 4), 3))


def test_per_sample_scores_of_a_batch():
    pred = np.stack([PRED_4, TARGET_4])
    target = np.stack([TARGET_4, TARGET_4])
    np.testing.assert_allclose(metrics.dice_per_sample(pred, target), [0.5, 1.0])
    np.testing.assert_allclose(metrics.accuracy_per_sample(pred, target), [0.75, 1.0])
    np.testing.assert_allclose(metrics.sensitivity_per_sample(pred, target), [0.5, 1.0])
    np.testing.assert_allclose(metrics.specificity_per_sample(pred, target), [10 / 12, 1.0])
    # pooled over the batch is not the mean of the per-sample values
    assert metrics.dice(pred, target) == pytest.approx(2 * 6 / (2 * 6 + 2 + 2))


# ----------------------------------------------------------------- empty masks


EMPTY = np.zeros((4, 4), dtype=bool)
FULL = np.ones((4, 4), dtype=bool)


def test_dice_is_one_when_both_masks_are_empty_and_zero_when_one_is():
    assert metrics.dice(EMPTY, EMPTY) == 1.0
    assert metrics.dice(EMPTY, EMPTY, empty=math.nan) != metrics.dice(EMPTY, EMPTY, empty=math.nan)
    assert metrics.dice(PRED_4, EMPTY) == 0.0
    assert metrics.dice(EMPTY, TARGET_4) == 0.0


def test_sensitivity_is_nan_when_target_is_empty():
    assert math.isnan(metrics.sensitivity(PRED_4, EMPTY))
    assert math.isnan(metrics.sensitivity(EMPTY, EMPTY))
    assert metrics.sensitivity(EMPTY, TARGET_4) == 0.0  # missed everything: defined, 0


def test_specificity_is_nan_when_target_has_no_negatives():
    assert math.isnan(metrics.specificity(PRED_4, FULL))
    assert metrics.specificity(FULL, EMPTY) == 0.0


def test_accuracy_is_defined_for_empty_masks():
    assert metrics.accuracy(EMPTY, EMPTY) == 1.0
    assert metrics.accuracy(PRED_4, EMPTY) == 12 / 16


def test_per_sample_empty_conventions():
    pred = np.stack([EMPTY, PRED_4, EMPTY, PRED_4])
    target = np.stack([EMPTY, EMPTY, TARGET_4, FULL])
    np.testing.assert_array_equal(metrics.dice_per_sample(pred, target), [1.0, 0.0, 0.0, 0.4])
    np.testing.assert_array_equal(metrics.sensitivity_per_sample(pred, target), [np.nan, np.nan, 0.0, 0.25])
    np.testing.assert_array_equal(metrics.specificity_per_sample(pred, target), [1.0, 12 / 16, 1.0, np.nan])


def test_hd95_is_nan_when_either_mask_is_empty_and_warns_with_the_count():
    assert math.isnan(metrics.hd95(EMPTY, TARGET_4))
    assert math.isnan(metrics.hd95(PRED_4, EMPTY))
    assert metrics.hd95(EMPTY, EMPTY, empty=-1.0) == -1.0
    pred = np.stack([PRED_4, EMPTY, PRED_4, EMPTY])
    target = np.stack([TARGET_4, TARGET_4, EMPTY, EMPTY])
    with pytest.warns(metrics.EmptyMaskWarning, match="3 of 4 samples"):
        values = metrics.hd95_per_sample(pred, target)
    assert values[0] == 1.0 and np.isnan(values[1:]).all()


# ----------------------------------------------------------------- input checks


def test_rejects_probabilities_and_mismatched_shapes():
    with pytest.raises(ValueError, match="binary mask"):
        metrics.dice(PRED_4 * 0.7, TARGET_4)
    with pytest.raises(ValueError, match="same shape"):
        metrics.dice(PRED_4, TARGET_4[:3])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        metrics.dice_per_sample(PRED_4, TARGET_4)
    with pytest.raises(ValueError, match="singleton"):
        metrics.hd95(PRED_4[None], TARGET_4[None])
    with pytest.raises(ValueError, match="spacing"):
        metrics.hd95(PRED_4, TARGET_4, spacing=(1.0, 1.0, 1.0))


# ----------------------------------------------------------------- scikit-learn


def test_counts_and_ratios_match_sklearn_on_random_masks():
    rng = np.random.default_rng(1)
    for _ in range(5):
        pred, target = rng.random((2, 9, 11, 7)) < rng.uniform(0.1, 0.6)
        y_pred, y_true = pred.ravel(), target.ravel()
        tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[False, True]).ravel()
        assert metrics.confusion_counts(pred, target) == (tp, fp, fn, tn)
        assert metrics.accuracy(pred, target) == pytest.approx(accuracy_score(y_true, y_pred))
        assert metrics.sensitivity(pred, target) == pytest.approx(recall_score(y_true, y_pred))
        assert metrics.specificity(pred, target) == pytest.approx(recall_score(y_true, y_pred, pos_label=False))


# ----------------------------------------------------------------- MONAI Dice


@pytest.mark.parametrize("shape", [(6, 32, 32), (4, 10, 16, 12)])
def test_dice_per_sample_matches_monai(shape):
    rng = np.random.default_rng(2)
    pred = np.stack([blob(rng, shape[1:], 2.0, 0.7) for _ in range(shape[0])])
    target = np.stack([blob(rng, shape[1:], 2.0, 0.75) for _ in range(shape[0])])
    pred[0] = False  # an empty prediction against a non-empty target: Dice 0 in both
    monai_dice = DiceMetric(include_background=True, reduction="none")(
        torch.from_numpy(pred[:, None]).float(), torch.from_numpy(target[:, None]).float()
    )
    ours = metrics.dice_per_sample(pred, target)
    np.testing.assert_allclose(ours, monai_dice[:, 0].numpy(), rtol=1e-6)
    assert ours[0] == 0.0 and ours[1:].min() > 0.0


def test_scores_table_rows_match_the_per_sample_functions():
    rng = np.random.default_rng(3)
    pred = np.stack([blob(rng, (24, 24)) for _ in range(3)])
    target = np.stack([blob(rng, (24, 24)) for _ in range(3)])
    table = metrics.scores_table(pred, target, include_hd95=True, spacing=0.5)
    assert list(table.columns) == ["dice", "accuracy", "sensitivity", "specificity", "hd95"]
    assert table.index.name == "sample" and len(table) == 3
    np.testing.assert_allclose(table["dice"], metrics.dice_per_sample(pred, target))
    np.testing.assert_allclose(table["specificity"], metrics.specificity_per_sample(pred, target))
    np.testing.assert_allclose(table["hd95"], [metrics.hd95(p, t, spacing=0.5) for p, t in zip(pred, target)])
    assert table.loc[1].to_dict() == pytest.approx(
        {**metrics.segmentation_scores(pred[1], target[1]), "hd95": metrics.hd95(pred[1], target[1], 0.5)}
    )


# pred covers the target (2 pixels) and 2 more: tp=2, fp=2, fn=0, tn=12 (fp != fn, so swapping them shows).
TARGET_2 = mask((4, 4), (0, 0), (0, 1))
PRED_COVERS_2 = mask((4, 4), (0, 0), (0, 1), (2, 2), (3, 3))


def test_scores_table_known_answers_with_unequal_areas_and_empty_masks():
    table = metrics.scores_table(np.stack([PRED_COVERS_2, EMPTY]), np.stack([TARGET_2, EMPTY]))
    # sample 0: Dice 4/6, accuracy 14/16, sensitivity 2/2, specificity tn/(tn+fp) = 12/14
    assert table.loc[0].to_dict() == pytest.approx(
        {"dice": 2 / 3, "accuracy": 14 / 16, "sensitivity": 1.0, "specificity": 12 / 14})
    # sample 1: both masks empty -> Dice 1 (a correct "no tumour"), sensitivity undefined
    assert table.loc[1, "dice"] == 1.0 and table.loc[1, "specificity"] == 1.0
    assert math.isnan(table.loc[1, "sensitivity"])


def test_scores_by_group_pools_each_group_by_hand():
    pred = np.stack([PRED_COVERS_2, EMPTY, PRED_4])
    target = np.stack([TARGET_2, EMPTY, TARGET_4])
    table = metrics.scores_by_group(pred, target, ["p1", "p1", "p2"]).set_index("group")
    # p1 pools slices 0 and 1: tp=2, fp=2, fn=0, tn=12+16=28; its target has 2 pixels (its prediction 4)
    assert table.loc["p1"].to_dict() == pytest.approx(
        {"dice": 2 / 3, "accuracy": 30 / 32, "sensitivity": 1.0, "specificity": 28 / 30, "target_pixels": 2})
    # p2: the two overlapping squares, tp=fp=fn=2, tn=10
    assert table.loc["p2"].to_dict() == pytest.approx(
        {"dice": 0.5, "accuracy": 12 / 16, "sensitivity": 0.5, "specificity": 10 / 12, "target_pixels": 4})


# ----------------------------------------------------------------- HD95


def test_hd95_of_single_voxels_is_their_distance():
    a = mask((8, 8), (1, 1))
    b = mask((8, 8), (4, 5))
    assert metrics.hd95(a, b) == 5.0
    assert metrics.hd95(a, b, spacing=(2.0, 1.0)) == pytest.approx(math.sqrt(6**2 + 4**2))
    assert metrics.hd95(a, a) == 0.0


def test_hd95_of_parallel_lines_is_their_gap():
    a = np.zeros((20, 30), dtype=bool)
    b = np.zeros((20, 30), dtype=bool)
    a[3, 5:25] = True
    b[9, 5:25] = True
    assert metrics.hd95(a, b) == 6.0
    assert metrics.hd95(a, b, spacing=(0.5, 3.0)) == 3.0


def test_hd95_ignores_interior_voxels():
    # A filled square vs its own outline: same surface, so HD95 = 0.
    filled = np.zeros((12, 12), dtype=bool)
    filled[2:10, 2:10] = True
    outline = filled ^ ndimage.binary_erosion(filled)
    assert metrics.hd95(filled, outline) == 0.0


def brute_force_hd95(pred, target, spacing):
    """All-pairs surface distances with scipy's cdist: an independent reference."""
    def surface_points(m):
        return np.argwhere(m ^ ndimage.binary_erosion(m)) * np.asarray(spacing)

    distances = cdist(surface_points(pred), surface_points(target))
    return max(np.percentile(distances.min(axis=1), 95), np.percentile(distances.min(axis=0), 95))


HD95_CASES = [  # (seed, shape, spacing)
    (10, (48, 48), None),
    (11, (40, 52), (0.7, 1.3)),
    (12, (18, 22, 26), None),
    (13, (18, 22, 26), (2.0, 1.0, 1.5)),
]


@pytest.mark.parametrize("seed, shape, spacing", HD95_CASES)
def test_hd95_matches_monai_and_brute_force_on_random_blobs(seed, shape, spacing):
    # MONAI computes distances in float32: agreement to rtol 1e-5 (observed ~1e-7).
    rng = np.random.default_rng(seed)
    for _ in range(3):
        pred, target = blob(rng, shape, 3.0, 0.8), blob(rng, shape, 3.0, 0.75)
        ours = metrics.hd95(pred, target, spacing=spacing)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            monai_hd95 = compute_hausdorff_distance(
                torch.from_numpy(pred)[None, None], torch.from_numpy(target)[None, None], percentile=95, spacing=spacing
            ).item()
        assert ours == pytest.approx(monai_hd95, rel=1e-5, abs=1e-5)
        assert ours == pytest.approx(brute_force_hd95(pred, target, spacing or (1.0,) * len(shape)), rel=1e-12)
        assert ours > 0


def test_hd95_per_sample_matches_monai_on_a_batch_touching_the_border():
    rng = np.random.default_rng(5)
    pred = np.stack([blob(rng, (32, 32), 2.5, 0.6) for _ in range(4)])
    target = np.stack([blob(rng, (32, 32), 2.5, 0.65) for _ in range(4)])
    assert pred[:, 0, :].any() and target[:, :, -1].any()  # blobs reach the image edge
    spacing = (1.2, 0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's own deprecation notice
        monai_hd95 = compute_hausdorff_distance(
            torch.from_numpy(pred[:, None]), torch.from_numpy(target[:, None]), percentile=95, spacing=spacing
        )[:, 0].numpy()
    np.testing.assert_allclose(metrics.hd95_per_sample(pred, target, spacing=spacing), monai_hd95, rtol=1e-5, atol=1e-5)
