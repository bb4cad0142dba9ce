"""Diagnostics study A lacks: what the readout, eta and the flow's channels actually are.

The ACC of Eq. (6)-(7) silently assumes (i) the readout weights have an interpretable sign,
(ii) eta^k is comparable in size to the tumour gamma, and (iii) ODE channel k still carries
modality k at t = 1. The pilot found all three false on real data (sign set by initialisation;
eta covering 4-96 % of the image while gamma covered 0.4-4.4 %, which caps mu <= |gamma|/|eta|;
the channel that started as T1ce correlating -0.63 with input FLAIR at t = 1). These functions
measure each assumption so the book can show it next to every ACC.

Arrays are **numpy** (torch tensors accepted and converted); tables are pandas DataFrames.
Shapes: eta (T, N, m, H, W) bool, gamma (N, H, W) bool, I_0/I_1 (N, m, H, W), brain (N, H, W) bool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .acc import _readout, _to_numpy

__all__ = [
    "readout_summary",
    "eta_coverage_per_slice",
    "eta_coverage",
    "eta_area_per_slice",
    "eta_area",
    "per_frame_table",
    "channel_mixing",
    "self_fidelity",
    "best_matching_input",
    "empty_gamma_count",
]


def readout_summary(w: Any, b: Any, modalities: Sequence[str]) -> pd.DataFrame:
    """The 1x1 readout of Eq. (4) per channel: weight w^k, its sign, |w^k| share, and the bias b.

    w : (m,), b : float (from ``model.readout_weights()``). Returns a DataFrame indexed by modality
    with columns ``w, sign (+1/-1/0), abs_share (= |w^k| / sum_n |w^n|), b``. A negative w^k means
    eta^k of Eq. (6) lights up where channel k is *dark*; the sign is whatever training gave.
    """
    weights, bias = _readout(w, b)
    modalities = list(modalities)
    if len(modalities) != weights.size:
        raise ValueError(f"{len(modalities)} modality names for {weights.size} readout weights")
    total = np.abs(weights).sum()
    share = np.abs(weights) / total if total > 0 else np.full_like(weights, np.nan)
    table = pd.DataFrame(
        {"w": weights, "sign": np.sign(weights).astype(int), "abs_share": share, "b": bias},
        index=pd.Index(modalities, name="modality"),
    )
    return table


def eta_coverage_per_slice(eta: Any, gamma: Any) -> np.ndarray:
    """Fraction of the tumour gamma covered by eta^k, per slice: |eta_t^k & gamma| / |gamma|.

    eta : (T, N, m, H, W) bool; gamma : (N, H, W) bool. Returns (T, N, m) float, nan where gamma
    is empty. High coverage with low mu (Eq. 7) means eta is much larger than gamma.
    """
    eta = _to_numpy(eta).astype(bool, copy=False)
    region = _to_numpy(gamma).astype(bool)
    size = region.sum(axis=(-2, -1)).astype(np.float64)  # (N,)
    covered = np.logical_and(eta, region[None, :, None]).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = covered / size[None, :, None]
    return np.where(size[None, :, None] > 0, fraction, np.nan)


def eta_coverage(eta: Any, gamma: Any) -> np.ndarray:
    """Mean over slices (with non-empty gamma) of the fraction of gamma covered by eta^k: (T, m)."""
    return _nanmean_over_slices(eta_coverage_per_slice(eta, gamma))


def eta_area_per_slice(eta: Any, brain: Any = None) -> np.ndarray:
    """Fraction of each slice covered by eta^k: (T, N, m) float.

    Without ``brain``: |eta_t^k| / (H W), the whole image. With ``brain`` (N, H, W) bool:
    |eta_t^k & brain| / |brain| (nan for slices with no brain pixel); eta outside the brain is then
    not counted, so compare with the brain-free value to see how much of eta lies in background.
    """
    eta = _to_numpy(eta).astype(bool, copy=False)
    if brain is None:
        pixels = eta.shape[-2] * eta.shape[-1]
        return eta.sum(axis=(-2, -1)) / float(pixels)
    region = _to_numpy(brain).astype(bool)
    size = region.sum(axis=(-2, -1)).astype(np.float64)
    covered = np.logical_and(eta, region[None, :, None]).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = covered / size[None, :, None]
    return np.where(size[None, :, None] > 0, fraction, np.nan)


def eta_area(eta: Any, brain: Any = None) -> np.ndarray:
    """Mean over slices of the fraction of the image (or brain) each eta^k covers: (T, m)."""
    return _nanmean_over_slices(eta_area_per_slice(eta, brain))


def _nanmean_over_slices(per_slice: np.ndarray) -> np.ndarray:
    defined = ~np.isnan(per_slice)
    count = defined.sum(axis=1)
    total = np.where(defined, per_slice, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def per_frame_table(values: Any, modalities: Sequence[str], t: Any = None, name: str = "value") -> pd.DataFrame:
    """Long table (t, modality, <name>) from a (T, m) array such as :func:`eta_coverage` gives."""
    values = _to_numpy(values).astype(np.float64)
    n_frames, n_channels = values.shape
    stages = np.linspace(0.0, 1.0, n_frames) if t is None else _to_numpy(t).reshape(-1).astype(np.float64)
    return pd.DataFrame(
        {
            "t": np.repeat(stages, n_channels),
            "modality": np.tile(np.asarray(list(modalities), dtype=object), n_frames),
            name: values.reshape(-1),
        }
    )


def channel_mixing(I_0: Any, I_1: Any, brain_mask: Any = None, modalities: Sequence[str] | None = None,
                   pixels_per_block: int = 4_000_000) -> pd.DataFrame:
    """Pearson correlation between input modality i at t = 0 and ODE channel j at t = 1.

    I_0 : (N, m, H, W) inputs; I_1 : (N, m, H, W) last flow frame; brain_mask : optional (N, H, W)
    bool (default: every pixel). Pixels are pooled over all slices (inside the brain mask) before
    correlating. Returns an m x m DataFrame: rows = input modality at t = 0 (index "input at t = 0"),
    columns = ODE channel at t = 1, named by the modality it started as ("channel at t = 1": not the T1 channel).
    The diagonal says how much channel k still reflects its own modality; a large off-diagonal
    |r| means the flow moved another modality's information into that channel, so Eq. (6)-(7)'s
    "contribution of modality k" is not about modality k. A constant channel gives nan.

    Computed in two passes (means, then centred sums of products) over blocks of slices of about
    ``pixels_per_block`` pixels each, in float64, so memory follows the block, not the test set
    (at the paper profile's size a float64 copy of the test images alone is ~9 GB). A test set
    that fits in one block is computed exactly as in one piece.
    """
    start, end = _to_numpy(I_0), _to_numpy(I_1)
    if start.shape != end.shape:
        raise ValueError(f"I_0 {start.shape} and I_1 {end.shape} must have the same shape")
    n_slices, n_channels = start.shape[:2]
    names = [f"ch{k}" for k in range(n_channels)] if modalities is None else list(modalities)
    if len(names) != n_channels:
        raise ValueError(f"{len(names)} modality names for {n_channels} channels")
    if brain_mask is None:
        pixels = np.ones((n_slices, start.shape[2], start.shape[3]), dtype=bool)
    else:
        pixels = _to_numpy(brain_mask).astype(bool)
    rows = max(1, int(pixels_per_block) // max(1, start.shape[2] * start.shape[3]))

    def blocks():
        """(m, P_block) float64 values of every selected pixel of a block of slices, per channel."""
        for first in range(0, n_slices, rows):
            selected = pixels[first:first + rows]
            yield (np.moveaxis(start[first:first + rows].astype(np.float64), 1, 0)[:, selected],
                   np.moveaxis(end[first:first + rows].astype(np.float64), 1, 0)[:, selected])

    count = int(pixels.sum())
    sum0, sum1 = np.zeros((n_channels, 1)), np.zeros((n_channels, 1))
    for x0, x1 in blocks():
        sum0 = sum0 + x0.sum(axis=1, keepdims=True)
        sum1 = sum1 + x1.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean0, mean1 = sum0 / count, sum1 / count
    cross = np.zeros((n_channels, n_channels))
    squares0, squares1 = np.zeros(n_channels), np.zeros(n_channels)
    for x0, x1 in blocks():
        x0 = x0 - mean0
        x1 = x1 - mean1
        cross = cross + x0 @ x1.T
        squares0 = squares0 + (x0 * x0).sum(axis=1)
        squares1 = squares1 + (x1 * x1).sum(axis=1)
    norm0, norm1 = np.sqrt(squares0), np.sqrt(squares1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cross / np.outer(norm0, norm1)
    r = np.where(np.outer(norm0, norm1) > 0, r, np.nan)
    return pd.DataFrame(
        np.clip(r, -1.0, 1.0),
        index=pd.Index(names, name="input at t = 0"),
        columns=pd.Index(names, name="channel at t = 1"),
    )


def self_fidelity(mixing: pd.DataFrame) -> pd.Series:
    """Per ODE channel j: |r(modality j, channel j)| - max_{i != j} |r(modality i, channel j)|.

    mixing : the DataFrame of :func:`channel_mixing`. Positive: channel j reflects its own
    modality more than any other; negative: another modality dominates it (channel mixing).
    """
    r = mixing.to_numpy(dtype=np.float64)
    magnitude = np.abs(r)
    n_channels = r.shape[0]
    values = []
    for j in range(n_channels):
        others = np.delete(magnitude[:, j], j)
        values.append(magnitude[j, j] - (np.nanmax(others) if others.size and not np.all(np.isnan(others)) else 0.0))
    return pd.Series(values, index=pd.Index(list(mixing.columns), name="channel at t = 1"), name="self_fidelity")


def best_matching_input(mixing: pd.DataFrame) -> pd.Series:
    """Per ODE channel at t = 1: the input modality with the largest |r| (from :func:`channel_mixing`)."""
    magnitude = mixing.abs()
    best = {
        column: (magnitude[column].idxmax() if magnitude[column].notna().any() else None) for column in mixing.columns
    }
    return pd.Series(best, name="best_matching_input").rename_axis("channel at t = 1")


def empty_gamma_count(gamma: Any) -> int:
    """Number of slices whose final segmentation gamma (N, H, W) is empty (mu of Eq. 7 is 0 or nan there)."""
    gamma = _to_numpy(gamma).astype(bool)
    return int((~gamma.any(axis=(-2, -1))).sum())
