"""Segmentation metrics on binary masks: Dice, accuracy, sensitivity, specificity, HD95.

Study A (neural ODE, Table I and II) reports Dice, accuracy, sensitivity and specificity
"following the previous BraTS related studies"; study C reports Dice (DSC) only. HD95 is
here for the book's own comparisons (BraTS reports it; no paper's table uses it).

Inputs are binary masks: bool arrays or arrays holding only 0 and 1 (numpy arrays or
torch tensors; tensors are moved to the CPU and converted). Probabilities or logits are
rejected, so threshold first. ``pred`` and ``target`` must have the same shape.

Confusion counts (foreground = positive):
    tp = pred & target, fp = pred & ~target, fn = ~pred & target, tn = ~pred & ~target

Definitions and the empty-mask conventions (stated again in each function):
    dice        = 2 tp / (2 tp + fp + fn); 1 when pred and target are both empty
                  (``empty=1.0``), 0 when exactly one of them is empty.
    accuracy    = (tp + tn) / (tp + fp + fn + tn), always defined for a non-empty array.
    sensitivity = tp / (tp + fn); nan when the target is empty (no positives).
    specificity = tn / (tn + fp); nan when the target has no negatives (all foreground).
    hd95        = symmetric 95th-percentile Hausdorff distance between the surfaces of
                  pred and target, in physical units when ``spacing`` is given;
                  nan when either mask is empty (``hd95_per_sample`` warns how many).

Whole-array functions (``dice`` ...) pool every voxel of the array they get, batch
included; ``*_per_sample`` functions take a batch of shape (N, H, W) or (N, D, H, W)
and return one value per sample, shape (N,). The mean of per-sample Dice is what
the papers' "mean ± SD" tables report; pooled Dice over a batch is a different number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = [
    "EmptyMaskWarning",
    "accuracy",
    "accuracy_per_sample",
    "confusion_counts",
    "confusion_counts_per_sample",
    "dice",
    "dice_per_sample",
    "hd95",
    "hd95_per_sample",
    "scores_table",
    "segmentation_scores",
    "sensitivity",
    "sensitivity_per_sample",
    "specificity",
    "specificity_per_sample",
]


class EmptyMaskWarning(UserWarning):
    """A metric was undefined (nan) for some samples because a mask was empty."""


# --------------------------------------------------------------------------- inputs


def _as_numpy(x: Any) -> np.ndarray:
    # Duck-typed so this module does not import torch.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_mask(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a bool array; reject anything that is not bool or {0, 1}."""
    arr = _as_numpy(x)
    if arr.dtype == bool:
        return arr
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must be a binary mask (bool or 0/1 values); threshold probabilities first")
    return arr.astype(bool)


def _as_mask_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_mask(pred, "pred"), _as_mask(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    return p, t


def _as_batch_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_mask_pair(pred, target)
    if p.ndim not in (3, 4):
        raise ValueError(f"expected a batch of shape (N, H, W) or (N, D, H, W), got shape {p.shape}")
    return p, t


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, with ``empty`` where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, float(empty))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _scalar(x: np.ndarray) -> float:
    return float(np.asarray(x).reshape(()))


# --------------------------------------------------------------------------- counts


def confusion_counts(pred: Any, target: Any, axes: int | Sequence[int] | None = None):
    """Confusion counts ``(tp, fp, fn, tn)`` of two binary masks of the same shape.

    pred, target: bool or {0, 1} arrays (numpy or torch), any shape.
    axes: axes to count over; None counts over the whole array (each count an int),
        otherwise each count has the shape of the remaining axes.
    Foreground (True / 1) is the positive class.
    """
    p, t = _as_mask_pair(pred, target)
    axis = None if axes is None else (tuple(axes) if isinstance(axes, Sequence) else (axes,))
    tp = np.count_nonzero(p & t, axis=axis)
    fp = np.count_nonzero(p & ~t, axis=axis)
    fn = np.count_nonzero(~p & t, axis=axis)
    n_voxels = p.size if axis is None else math.prod(p.shape[a] for a in axis)
    tn = n_voxels - tp - fp - fn  # the fourth count follows from the other three
    return tp, fp, fn, tn


def confusion_counts_per_sample(pred: Any, target: Any):
    """Per-sample confusion counts ``(tp, fp, fn, tn)``, each of shape (N,).

    pred, target: batches of shape (N, H, W) or (N, D, H, W), bool or {0, 1}.
    """
    p, t = _as_batch_pair(pred, target)
    tp, fp, fn, tn = confusion_counts(p, t, axes=tuple(range(1, p.ndim)))
    return tp, fp, fn, tn


# --------------------------------------------------------------------------- ratios


def _dice_from_counts(tp, fp, fn, empty):
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)


def _accuracy_from_counts(tp, fp, fn, tn):
    return _ratio(tp + tn, tp + fp + fn + tn, math.nan)


def _sensitivity_from_counts(tp, fn, empty):
    return _ratio(tp, tp + fn, empty)


def _specificity_from_counts(tn, fp, empty):
    return _ratio(tn, tn + fp, empty)


def dice(pred: Any, target: Any, empty: float = 1.0) -> float:
    """Dice = 2 tp / (2 tp + fp + fn) over the whole array.

    Both masks empty -> ``empty`` (default 1.0: a correct "no tumour");
    exactly one empty -> 0.
    """
    tp, fp, fn, _ = confusion_counts(pred, target)
    return _scalar(_dice_from_counts(tp, fp, fn, empty))


def accuracy(pred: Any, target: Any) -> float:
    """Accuracy = (tp + tn) / number of voxels, over the whole array (never undefined)."""
    return _scalar(_accuracy_from_counts(*confusion_counts(pred, target)))


def sensitivity(pred: Any, target: Any, empty: float = math.nan) -> float:
    """Sensitivity (recall, true-positive rate) = tp / (tp + fn) over the whole array.

    Undefined when the target is empty (no positives): returns ``empty`` (default nan).
    """
    tp, _, fn, _ = confusion_counts(pred, target)
    return _scalar(_sensitivity_from_counts(tp, fn, empty))


def specificity(pred: Any, target: Any, empty: float = math.nan) -> float:
    """Specificity (true-negative rate) = tn / (tn + fp) over the whole array.

    Undefined when the target has no negatives (all foreground): returns ``empty``
    (default nan).
    """
    _, fp, _, tn = confusion_counts(pred, target)
    return _scalar(_specificity_from_counts(tn, fp, empty))


def dice_per_sample(pred: Any, target: Any, empty: float = 1.0) -> np.ndarray:
    """Dice of each sample of a batch (N, H, W) or (N, D, H, W) -> shape (N,).

    Both masks of a sample empty -> ``empty`` (default 1.0); exactly one empty -> 0.
    """
    tp, fp, fn, _ = confusion_counts_per_sample(pred, target)
    return _dice_from_counts(tp, fp, fn, empty)


def accuracy_per_sample(pred: Any, target: Any) -> np.ndarray:
    """Accuracy (tp + tn) / voxels of each sample of a batch (N, ...) -> shape (N,)."""
    return _accuracy_from_counts(*confusion_counts_per_sample(pred, target))


def sensitivity_per_sample(pred: Any, target: Any, empty: float = math.nan) -> np.ndarray:
    """Sensitivity tp / (tp + fn) of each sample of a batch (N, ...) -> shape (N,).

    Samples with an empty target get ``empty`` (default nan).
    """
    tp, _, fn, _ = confusion_counts_per_sample(pred, target)
    return _sensitivity_from_counts(tp, fn, empty)


def specificity_per_sample(pred: Any, target: Any, empty: float = math.nan) -> np.ndarray:
    """Specificity tn / (tn + fp) of each sample of a batch (N, ...) -> shape (N,).

    Samples whose target is all foreground (no negatives) get ``empty`` (default nan).
    """
    _, fp, _, tn = confusion_counts_per_sample(pred, target)
    return _specificity_from_counts(tn, fp, empty)


# --------------------------------------------------------------------------- HD95


def _spacing_tuple(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        return (float(spacing),) * ndim
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim:
        raise ValueError(f"spacing needs one value per spatial axis ({ndim}), got {len(values)}")
    return values


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: the mask minus its erosion (face connectivity, outside = background)."""
    return mask ^ ndimage.binary_erosion(mask)


def _distances_to_surface(from_surface: np.ndarray, to_surface: np.ndarray, spacing) -> np.ndarray:
    """Distance from each voxel of ``from_surface`` to the nearest voxel of ``to_surface``."""
    # The EDT of the complement gives, at every voxel, the distance to the nearest
    # surface voxel (the zeros of the input).
    distance_map = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return distance_map[from_surface]


def hd95(
    pred: Any,
    target: Any,
    spacing: float | Sequence[float] | None = None,
    empty: float = math.nan,
) -> float:
    """Symmetric 95th-percentile Hausdorff distance between two masks' surfaces.

    pred, target: one image (H, W) or volume (D, H, W), bool or {0, 1}; no batch or
        channel axis (a singleton spatial axis would make every voxel a surface voxel,
        so it is rejected).
    spacing: voxel size per axis (or one number for all); None means 1, i.e. voxels.
    empty: returned when either mask is empty (default nan: undefined).

    Surface = mask XOR binary_erosion(mask) with face connectivity, voxels outside the
    array counting as background. HD95 = max(P95 of distances from pred-surface voxels
    to the nearest target-surface voxel, P95 of the reverse), percentiles by linear
    interpolation. This is MONAI's ``compute_hausdorff_distance(percentile=95)``
    (taking the max of the two directed percentiles; some toolkits instead take the
    95th percentile of both directions pooled).
    """
    p, t = _as_mask_pair(pred, target)
    if any(size == 1 for size in p.shape):
        raise ValueError(f"hd95 got a singleton spatial axis in shape {p.shape}; squeeze batch/channel axes first")
    if not p.any() or not t.any():
        return float(empty)
    sampling = _spacing_tuple(spacing, p.ndim)

    # Crop to the union's bounding box: the distance transforms then run on the
    # tumour's neighbourhood, not the whole volume. Exact, since every surface voxel
    # lies inside the box and the erosion already treats the outside as background.
    box = ndimage.find_objects((p | t).astype(np.uint8))[0]
    p, t = p[box], t[box]

    surface_pred, surface_target = _surface(p), _surface(t)
    pred_to_target = _distances_to_surface(surface_pred, surface_target, sampling)
    target_to_pred = _distances_to_surface(surface_target, surface_pred, sampling)
    return float(max(np.percentile(pred_to_target, 95), np.percentile(target_to_pred, 95)))


def hd95_per_sample(
    pred: Any,
    target: Any,
    spacing: float | Sequence[float] | None = None,
    empty: float = math.nan,
) -> np.ndarray:
    """HD95 of each sample of a batch (N, H, W) or (N, D, H, W) -> shape (N,).

    ``spacing`` applies to the spatial axes (not N). Samples where either mask is
    empty get ``empty`` (default nan); if any do, an ``EmptyMaskWarning`` says how many.
    """
    p, t = _as_batch_pair(pred, target)
    values = np.array([hd95(p[i], t[i], spacing=spacing, empty=empty) for i in range(len(p))], dtype=np.float64)
    n_empty = int(np.count_nonzero(~(p.any(axis=tuple(range(1, p.ndim))) & t.any(axis=tuple(range(1, t.ndim))))))
    if n_empty:
        warnings.warn(
            f"HD95 undefined (set to {empty}) for {n_empty} of {len(p)} samples: empty prediction or target",
            EmptyMaskWarning,
            stacklevel=2,
        )
    return values


# --------------------------------------------------------------------------- tables


def segmentation_scores(pred: Any, target: Any) -> dict[str, float]:
    """Dice, accuracy, sensitivity and specificity over the whole array, as a dict.

    Keys: "dice", "accuracy", "sensitivity", "specificity". Conventions as in the
    individual functions (Dice 1 if both empty; sensitivity nan if the target is
    empty; specificity nan if the target has no negatives).
    """
    tp, fp, fn, tn = confusion_counts(pred, target)
    return {
        "dice": _scalar(_dice_from_counts(tp, fp, fn, 1.0)),
        "accuracy": _scalar(_accuracy_from_counts(tp, fp, fn, tn)),
        "sensitivity": _scalar(_sensitivity_from_counts(tp, fn, math.nan)),
        "specificity": _scalar(_specificity_from_counts(tn, fp, math.nan)),
    }


def scores_table(
    pred_batch: Any,
    target_batch: Any,
    include_hd95: bool = False,
    spacing: float | Sequence[float] | None = None,
) -> pd.DataFrame:
    """One row per sample of a batch (N, H, W) or (N, D, H, W).

    Columns: dice, accuracy, sensitivity, specificity (and hd95 if ``include_hd95``,
    in the units of ``spacing``); index "sample" = 0..N-1. Per-sample conventions as
    in the ``*_per_sample`` functions (nan where undefined).
    """
    tp, fp, fn, tn = confusion_counts_per_sample(pred_batch, target_batch)
    table = pd.DataFrame(
        {
            "dice": _dice_from_counts(tp, fp, fn, 1.0),
            "accuracy": _accuracy_from_counts(tp, fp, fn, tn),
            "sensitivity": _sensitivity_from_counts(tp, fn, math.nan),
            "specificity": _specificity_from_counts(tn, fp, math.nan),
        },
        index=pd.RangeIndex(len(tp), name="sample"),
    )
    if include_hd95:
        table["hd95"] = hd95_per_sample(pred_batch, target_batch, spacing=spacing)
    return table


def scores_by_group(pred, target, groups) -> "pd.DataFrame":
    """Dice, accuracy, sensitivity and specificity pooled over the samples of each group.

    pred, target: (N, ...) binary; groups: (N,) labels (e.g. the patient of each slice). Pooling a
    patient's slices gives one per-patient (volume-like) score, the unit the comparisons pair on.
    Returns one row per group (in order of first appearance) with the columns ``group`` and
    ``target_pixels`` (so callers can leave out groups without target, whose Dice is 1 or 0 by the
    empty-mask convention).
    """
    import pandas as pd

    pred, target = _as_mask_pair(pred, target)
    groups = np.asarray(groups)
    rows = []
    for group in dict.fromkeys(groups.tolist()):
        idx = groups == group
        rows.append({"group": group, **segmentation_scores(pred[idx], target[idx]),
                     "target_pixels": int(target[idx].sum())})
    return pd.DataFrame(rows)
