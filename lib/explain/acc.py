"""Segmentation frames, binarised contribution factor and accumulated contribution curve (study A).

Study A (neural ODE for mp-MRI glioma segmentation, sections B.2-B.3) reads a trained neural ODE
through its 1x1 readout. With ``I_t = {I_t^k}`` the image-flow frame at stage t (k indexes the m
ODE channels, which start as the m input modalities at t = 0), readout weights ``w^k`` and bias
``b`` (``w^k = model.readout.weight[0, k, 0, 0]``, ``b = model.readout.bias[0]``):

    Eq. (4)  gamma   = sigma(sum_k w^k I_1^k)                      final segmentation (binarised)
    Eq. (5)  J_t     = sigma(sum_k w^k I_t^k)                      intermediate segmentation frame
    Eq. (6)  eta_t^k = 1 if w^k I_t^k - sum_{n != k} w^n I_t^n > 0  binarised contribution factor
    Eq. (7)  mu_t^k  = |eta_t^k & gamma| / |eta_t^k | gamma|       accumulated contribution factor

and the paper picks "key modalities" from the mean curves mu^k(t) over test slices (Figure 7):
"an ACC with a steeper slope and higher value when approaching t = 1 suggests that the studied MRI
modality is more important".

This module implements those equations *as printed* (one function each), a clearly labelled
polarity-aware variant of Eq. (6), a continuous ``logit_share``, the Figure 7 curve table and a
deterministic key-modality rule. What none of them can repair is channel mixing: ODE channel k
need not carry modality k's information at t = 1 (the pilot found the channel that started as
T1ce correlated -0.63 with input FLAIR), so "ACC of modality k" is really "ACC of ODE channel k".
:mod:`lib.explain.diagnostics` measures that; :mod:`lib.explain.occlusion` and
:mod:`lib.explain.attribution` measure modality importance without relying on channel identity.

Array conventions: every function here takes and returns **numpy** arrays (torch tensors are
accepted and copied to CPU numpy first). Shapes: T frames, N slices, m channels, H x W pixels;
``I_t`` is (T, N, m, H, W), ``I_1`` is (N, m, H, W), masks are bool.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .verdict import KeyModalityResult, _format_reasons, _order_by_score

__all__ = [
    "readout_logits",
    "segmentation_frames",
    "final_segmentation",
    "segmentation_from_logits",
    "final_frame_error",
    "segmentation_overlap",
    "weighted_frames",
    "binarised_contribution",
    "binarised_contribution_polarity_aware",
    "logit_share",
    "accumulated_contribution",
    "empty_union_count",
    "acc_curves",
    "ACC_SLICES",
    "ACCRule",
    "key_modalities_acc",
    "ACCRun",
    "acc_from_model",
]


# ----------------------------------------------------------------------------------------------
# conversions


def _to_numpy(x: Any) -> np.ndarray:
    """numpy view/copy of an array-like; torch tensors are detached and moved to the CPU."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _float_frames(x: Any) -> np.ndarray:
    """numpy frames in a floating dtype (integer or bool frames become float64, so the readout
    weights are not cast to an integer dtype); floating frames keep their dtype."""
    frames = _to_numpy(x)
    if not np.issubdtype(frames.dtype, np.floating):
        frames = frames.astype(np.float64)
    return frames


def _readout(w: Any, b: Any = 0.0) -> tuple[np.ndarray, float]:
    weights = _to_numpy(w).astype(np.float64).reshape(-1)
    bias = float(_to_numpy(b).reshape(-1)[0]) if b is not None else 0.0
    return weights, bias


def _check_channels(frames: np.ndarray, weights: np.ndarray, channel_axis: int) -> None:
    if frames.shape[channel_axis] != weights.size:
        raise ValueError(
            f"{weights.size} readout weights but {frames.shape[channel_axis]} channels on axis "
            f"{channel_axis} of an array of shape {frames.shape}"
        )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow warnings for large |z|)."""
    out = np.empty_like(z, dtype=np.result_type(z.dtype, np.float32))
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    exp_z = np.exp(z[~positive])
    out[~positive] = exp_z / (1.0 + exp_z)
    return out


def _logit(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {p}")
    return math.log(p / (1.0 - p))


# ----------------------------------------------------------------------------------------------
# Eq. (4)-(5): the readout


def readout_logits(frames: Any, w: Any, b: Any = 0.0, include_bias: bool = True) -> np.ndarray:
    """The argument of sigma in Eq. (4)/(5): z = sum_k w^k I^k (+ b), study A.

    frames : (..., m, H, W) numpy array (any leading axes, e.g. (T, N, m, H, W) or (N, m, H, W)).
    Returns (..., H, W) float array. The channel axis is the third from the end.
    """
    frames = _float_frames(frames)
    weights, bias = _readout(w, b)
    _check_channels(frames, weights, -3)
    logits = np.tensordot(frames, weights.astype(frames.dtype, copy=False), axes=([-3], [0]))
    # tensordot moves the contracted axis out: (..., H, W) as wanted
    if include_bias:
        logits = logits + np.asarray(bias, dtype=logits.dtype)
    return logits


def segmentation_frames(I_t: Any, w: Any, b: Any = 0.0, include_bias: bool = True) -> np.ndarray:
    """Intermediate segmentation frames, Eq. (5), study A: J_t = sigma(sum_k w^k I_t^k + b).

    I_t : (T, N, m, H, W) numpy array, the image-flow frames; w : (m,); b : float.
    Returns J_t : (T, N, H, W) float array of probabilities.

    The bias: the printed Eq. (4)/(5) have no bias, but the 1x1 convolution that implements them
    has one, and the paper states J_1 = gamma. With ``include_bias=True`` (default) J_1 equals the
    model's own probability map sigma(model(x)); ``include_bias=False`` gives the equation as
    printed (then J_1 differs from the model output by the constant shift b in the logit).
    (The printed Eq. (5) also swaps the summation letters, sum_{m=1}^{k} w^m I_t^m; it is the
    same sum over all channels as Eq. (4).)
    """
    return _sigmoid(readout_logits(I_t, w, b, include_bias=include_bias))


def final_segmentation(
    I_1: Any, w: Any, b: Any = 0.0, threshold: float = 0.5, include_bias: bool = True
) -> np.ndarray:
    """Final segmentation gamma, Eq. (4) binarised, study A.

    I_1 : (N, m, H, W) numpy array, the last flow frame (t = 1). Returns gamma : (N, H, W) bool,
    True where sigma(sum_k w^k I_1^k + b) > threshold. Compared on the logit scale
    (z > log(threshold / (1 - threshold))) so float32 saturation of sigma cannot flip pixels.
    ``include_bias`` as in :func:`segmentation_frames`.
    """
    return readout_logits(I_1, w, b, include_bias=include_bias) > _logit(threshold)


def segmentation_from_logits(logits: Any, threshold: float = 0.5) -> np.ndarray:
    """gamma from the model's own output: logits (N, 1, H, W) or (N, H, W) -> (N, H, W) bool.

    True where sigma(logit) > threshold (compared on the logit scale).
    """
    logits = _to_numpy(logits)
    if logits.ndim == 4:
        if logits.shape[1] != 1:
            raise ValueError(f"expected one output channel, got logits of shape {logits.shape}")
        logits = logits[:, 0]
    return logits > _logit(threshold)


def final_frame_error(I_1: Any, w: Any, b: Any, logits: Any) -> float:
    """max |J_1 - sigma(model logits)| over all pixels: checks "J_1 = gamma" (Eq. 4-5).

    I_1 : (N, m, H, W) last flow frame; logits : (N, 1, H, W) or (N, H, W) from ``model(x)``.
    Small values (solver tolerance) mean the flow's last frame and the model's forward pass agree;
    a large value means the frames analysed by Eq. (6)-(7) are not the ones that made gamma.
    """
    logits = _to_numpy(logits)
    if logits.ndim == 4:
        logits = logits[:, 0]
    j_1 = segmentation_frames(I_1, w, b, include_bias=True)
    return float(np.max(np.abs(j_1 - _sigmoid(logits.astype(np.float64)))))


def segmentation_overlap(a: Any, b: Any) -> tuple[int, int, int]:
    """Counts for a Dice pooled over batches: (|a ∩ b|, |a| + |b|, pixels where a and b differ).

    a, b : bool masks of one shape, e.g. gamma (Eq. 4 on the rendered flow's last frame) and the
    model's own segmentation (:func:`segmentation_from_logits`). Pooled Dice = 2 Σ|a ∩ b| / Σ(|a| + |b|).
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    return int((a & b).sum()), int(a.sum() + b.sum()), int((a != b).sum())


# ----------------------------------------------------------------------------------------------
# Eq. (6): binarised contribution factor, and the variants


def weighted_frames(I_t: Any, w: Any) -> np.ndarray:
    """Signed contribution of each channel to the readout logit: c_t^k = w^k I_t^k.

    I_t : (T, N, m, H, W) (or any (..., m, H, W)); w : (m,). Returns c : same shape as I_t.
    sum_k c_t^k + b is the logit of Eq. (5).
    """
    frames = _float_frames(I_t)
    weights, _ = _readout(w)
    _check_channels(frames, weights, -3)
    return frames * weights.astype(frames.dtype, copy=False)[:, None, None]


def binarised_contribution(I_t: Any, w: Any) -> np.ndarray:
    """Binarised contribution factor (BCF), Eq. (6), study A, exactly as printed.

        eta_t^k = 1  where  w^k I_t^k - sum_{n != k} w^n I_t^n > 0,  else 0.

    I_t : (T, N, m, H, W) numpy array; w : (m,). Returns eta : (T, N, m, H, W) bool.

    The bias b does not enter. Consequences seen in the pilot, which this function keeps (it is
    the printed equation): where every channel votes for background (all c^n < 0) the bar
    sum_{n != k} c^n is negative and eta^k can light up although channel k itself votes for
    background, so eta covers much of the image (4-96 % in the pilot, tumour 0.4-4.4 %); with two
    channels eta^1 and eta^2 are complements (up to ties); where w^k < 0, eta^k marks where
    I_t^k is dark. See :func:`binarised_contribution_polarity_aware` for a variant.
    """
    contribution = weighted_frames(I_t, w)
    others = contribution.sum(axis=-3, keepdims=True) - contribution
    return (contribution - others) > 0


def binarised_contribution_polarity_aware(I_t: Any, w: Any) -> np.ndarray:
    """VARIANT of Eq. (6) (not in the paper): polarity-aware binarised contribution.

    With signed contributions c_t^k = w^k I_t^k (so that the logit is sum_k c_t^k + b):

        eta~_t^k = 1  where  c_t^k > 0  and  c_t^k > sum_{n != k} max(c_t^n, 0).

    Reading: channel k pushes the pixel towards the foreground, and pushes harder than all the
    other foreground-pushing channels together. (c^k > 0 is implied by the second condition,
    whose right side is >= 0; it is written out for the reading.) Channels that vote *against* the foreground no
    longer lower the bar, which is what lets printed Eq. (6) credit a channel that itself votes for
    background (c^k = -1 beats sum_{n!=k} c^n = -3).

    Relation to Eq. (6) (derivation):
      - eta~^k implies eta^k always: sum_{n!=k} max(c^n, 0) >= sum_{n!=k} c^n, so
        c^k > sum_{n!=k} max(c^n,0) gives c^k > sum_{n!=k} c^n. Hence eta~ is a subset of eta.
      - Where all c^n >= 0 (e.g. all w^n > 0 and non-negative frames: the paper's picture of
        positively weighted intensity images) the two are equal: then max(c^n, 0) = c^n, and
        c^k > sum_{n!=k} c^n >= 0 already implies c^k > 0.
      - They differ exactly where some other channel contributes negatively or c^k <= 0, i.e.
        where a negative w^n (or a negative frame value) is in play.
    Both Eq. (6) and this variant depend on (w^k, I_t^k) only through c^k, so both are invariant
    to flipping the sign of w^k and I_t^k together; neither can tell which sign of I_t^k "means
    tumour". Like Eq. (6) it is winner-take-all (at most one channel per pixel), and like every
    variant of Eq. (6)-(7) it cannot undo channel mixing inside the flow.

    I_t : (T, N, m, H, W) numpy array; w : (m,). Returns (T, N, m, H, W) bool.
    """
    contribution = weighted_frames(I_t, w)
    positive = np.maximum(contribution, 0)
    positive_others = positive.sum(axis=-3, keepdims=True) - positive
    return (contribution > 0) & (contribution > positive_others)


def logit_share(I_t: Any, w: Any, gamma: Any) -> np.ndarray:
    """VARIANT (continuous, not in the paper): each channel's share of the positive logit mass in gamma.

        s_t^k = sum_{p in gamma} max(c_t^k(p), 0) / sum_{p in gamma} sum_n max(c_t^n(p), 0)

    with c_t^k = w^k I_t^k. Shares sum to 1 over channels; nan where gamma is empty or no channel
    pushes any gamma pixel towards the foreground. Unlike Eq. (6) it is not winner-take-all, so two
    channels that both carry the tumour each get a large share. It still reads ODE *channels*.

    I_t : (T, N, m, H, W); w : (m,); gamma : (N, H, W) bool. Returns (T, N, m) float.
    """
    positive = np.maximum(weighted_frames(I_t, w), 0)
    region = _to_numpy(gamma).astype(bool)[None, :, None]
    mass = np.where(region, positive, 0).sum(axis=(-2, -1), dtype=np.float64)  # (T, N, m)
    total = mass.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = mass / total
    return np.where(total > 0, share, np.nan)


# ----------------------------------------------------------------------------------------------
# Eq. (7): accumulated contribution factor and the curves


def accumulated_contribution(eta: Any, gamma: Any) -> np.ndarray:
    """Accumulated contribution factor, Eq. (7), study A: mu_t^k = |eta_t^k & gamma| / |eta_t^k | gamma|.

    eta : (T, N, m, H, W) bool; gamma : (N, H, W) bool (the model's final segmentation, as in the
    paper: "ACCs were calculated based on final segmentation results gamma").
    Returns mu : (T, N, m) float, computed per slice.

    Empty union (gamma empty and eta_t^k empty on that slice): 0/0, returned as nan, and the
    curves average over the slices where it is defined (count them with
    :func:`empty_union_count`). A slice with empty gamma but non-empty eta gets mu = 0; whether
    such slices belong in the average is the caller's choice (:data:`ACC_SLICES`; select slices
    before calling :func:`acc_curves`). Note mu^k <= |gamma| / |eta^k|: a large eta caps the curve.
    """
    eta = _to_numpy(eta).astype(bool, copy=False)
    region = _to_numpy(gamma).astype(bool)[None, :, None]
    intersection = np.logical_and(eta, region).sum(axis=(-2, -1))
    union = np.logical_or(eta, region).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = intersection / union.astype(np.float64)
    return np.where(union > 0, mu, np.nan)


def empty_union_count(mu: Any) -> int:
    """Number of slices whose mu (Eq. 7) is nan at some (t, k), i.e. had an empty union.

    mu : (T, N, m). Such slices have an empty gamma (and an empty eta^k at that t).
    """
    mu = _to_numpy(mu)
    return int(np.isnan(mu).any(axis=(0, 2)).sum())


def acc_curves(mu: Any, modalities: Sequence[str], t: Any = None, ddof: int = 1) -> pd.DataFrame:
    """Accumulated contribution curves (the Figure 7 data), study A: mean and SD of mu_t^k over slices.

    mu : (T, N, m) from :func:`accumulated_contribution`; modalities : m names in channel order;
    t : (T,) stages (default ``linspace(0, 1, T)``); ddof : 1 = sample SD (default), 0 = population.
    Returns a long DataFrame with columns ``t, modality, mean, sd, n``: one row per (t, modality),
    nan-aware (``n`` counts slices with a defined mu; sd is nan when n <= ddof, mean nan when n = 0).
    """
    mu = _to_numpy(mu).astype(np.float64)
    n_frames, _, n_channels = mu.shape
    modalities = list(modalities)
    if len(modalities) != n_channels:
        raise ValueError(f"{len(modalities)} modality names for {n_channels} channels")
    stages = np.linspace(0.0, 1.0, n_frames) if t is None else _to_numpy(t).astype(np.float64).reshape(-1)
    if stages.size != n_frames:
        raise ValueError(f"t has {stages.size} stages but mu has {n_frames} frames")
    defined = ~np.isnan(mu)
    count = defined.sum(axis=1)  # (T, m)
    total = np.where(defined, mu, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        squares = np.where(defined, (mu - mean[:, None, :]) ** 2, 0.0).sum(axis=1)
        sd = np.where(count > ddof, np.sqrt(squares / (count - ddof)), np.nan)
    return pd.DataFrame(
        {
            "t": np.repeat(stages, n_channels),
            "modality": np.tile(np.asarray(modalities, dtype=object), n_frames),
            "mean": mean.reshape(-1),
            "sd": sd.reshape(-1),
            "n": count.reshape(-1).astype(int),
        }
    )


# ----------------------------------------------------------------------------------------------
# the paper's reading of the curves, as a deterministic rule


@dataclass(frozen=True)
class ACCRule:
    """Key-modality rule on ACC curves, following study A's own reading of Figure 7.

    The paper: "an ACC with a steeper slope and higher value when approaching t = 1 suggests that
    the studied MRI modality is more important"; FLAIR is rejected for ET because mu_1 < 0.2 while
    T1ce is close to 1; FLAIR and T2 are both key for WT because both have "a big initial slope and
    high values at t = 1" while T1 and T1ce are "steady ... with low values".

    Modality k is key when its mean curve satisfies all of
      1. mu^k(1) >= ``min_final``                              (the paper's 0.2 cut for FLAIR in ET);
      2. mu^k(1) >= ``relative_to_best`` x max_j mu^j(1)       (high value *relative* to the best);
      3. if ``require_positive_slope``: slope^k > ``min_slope``, where slope is
         - ``"net"`` (default): (mu^k(1) - mu^k(0)) / (t_1 - t_0), the net gain over the flow.
           Chosen because the paper's WT key modalities rise early ("big initial slope") and then
           plateau; a late-window slope would reject such curves for noise around zero;
         - ``"late"``: least-squares slope of the mean curve over the last ``slope_window`` of t.
    mu(1) is the mean at the last stage of the curves (t = 1 for a flow to 1), mu(0) at the first.
    If no modality passes, the verdict is empty: no winner is forced.
    """

    min_final: float = 0.2
    relative_to_best: float = 0.5
    require_positive_slope: bool = True
    slope: Literal["net", "late"] = "net"
    slope_window: float = 0.5
    min_slope: float = 0.0


def _late_slope(stages: np.ndarray, values: np.ndarray, window: float) -> float:
    keep = (stages >= stages.max() - window - 1e-12) & ~np.isnan(values)
    if keep.sum() < 2:
        return math.nan
    x = stages[keep] - stages[keep].mean()
    y = values[keep] - values[keep].mean()
    denominator = float((x * x).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else math.nan


def key_modalities_acc(curves: pd.DataFrame, rule: ACCRule = ACCRule(), method: str = "acc") -> KeyModalityResult:
    """Key modalities from ACC curves (Figure 7 reading, study A) by the deterministic :class:`ACCRule`.

    curves : DataFrame from :func:`acc_curves` (columns t, modality, mean; sd and n unused).
    method : label stored in the result (e.g. ``"acc (Eq. 6-7 as printed)"``).
    Returns :class:`KeyModalityResult` with scores = mean mu at the last stage (mu(1)), key ordered
    by decreasing mu(1); ``table`` lists mu(0), mu(1), both slopes and each criterion per modality.
    """
    required = {"t", "modality", "mean"}
    if not required.issubset(curves.columns):
        raise ValueError(f"curves need columns {sorted(required)}, got {list(curves.columns)}")
    modalities = list(pd.unique(curves["modality"]))
    wide = curves.pivot_table(index="t", columns="modality", values="mean", aggfunc="first", dropna=False)
    wide = wide.sort_index().reindex(columns=modalities)
    stages = wide.index.to_numpy(dtype=np.float64)
    params = asdict(rule) | {"score": "mean mu at the last stage t = %.3g (Eq. 7)" % stages[-1]}

    rows = []
    for name in modalities:
        values = wide[name].to_numpy(dtype=np.float64)
        mu_start, mu_final = values[0], values[-1]
        span = stages[-1] - stages[0]
        net = (mu_final - mu_start) / span if span > 0 else math.nan
        rows.append(
            {
                "modality": name,
                "mu_start": mu_start,
                "mu_final": mu_final,
                "net_slope": net,
                "late_slope": _late_slope(stages, values, rule.slope_window),
            }
        )
    table = pd.DataFrame(rows).set_index("modality")
    finite_final = table["mu_final"].dropna()
    if finite_final.empty:
        reasons = {name: "no defined mu at the last stage" for name in modalities}
        return KeyModalityResult(
            method=method,
            key=(),
            scores={name: math.nan for name in modalities},
            reasons=_format_reasons("no verdict: no modality has a defined ACC at the last stage", reasons),
            params=params,
            modality_reasons=reasons,
            table=table,
        )
    best = float(finite_final.max())
    slope_column = "net_slope" if rule.slope == "net" else "late_slope"
    table["passes_min_final"] = table["mu_final"] >= rule.min_final
    table["passes_relative"] = table["mu_final"] >= rule.relative_to_best * best
    if rule.require_positive_slope:
        table["passes_slope"] = table[slope_column] > rule.min_slope
    else:
        table["passes_slope"] = True
    table["key"] = table["passes_min_final"] & table["passes_relative"] & table["passes_slope"]

    modality_reasons = {}
    for name, row in table.iterrows():
        failures = []
        if not row["passes_min_final"]:
            failures.append(f"mu(1) = {row['mu_final']:.3f} < min_final {rule.min_final}")
        if not row["passes_relative"]:
            failures.append(
                f"mu(1) = {row['mu_final']:.3f} < {rule.relative_to_best} x best mu(1) {best:.3f}"
            )
        if not row["passes_slope"]:
            failures.append(f"{rule.slope} slope {row[slope_column]:.3f} <= {rule.min_slope}")
        summary = f"mu(0) = {row['mu_start']:.3f}, mu(1) = {row['mu_final']:.3f}, {rule.slope} slope = {row[slope_column]:.3f}"
        modality_reasons[name] = ("KEY: " + summary) if row["key"] else ("not key: " + "; ".join(failures))

    scores = {name: float(table.loc[name, "mu_final"]) for name in modalities}
    key = _order_by_score([name for name in modalities if bool(table.loc[name, "key"])], scores, modalities)
    if key:
        headline = f"key = {', '.join(key)} (best mu(1) = {best:.3f})"
    else:
        headline = "no verdict: no modality passes the ACC rule (no winner is forced)"
    if abs(stages[-1] - 1.0) > 1e-6:
        headline += f"; note: last stage is t = {stages[-1]:.3g}, not 1"
    return KeyModalityResult(
        method=method,
        key=key,
        scores=scores,
        reasons=_format_reasons(headline, modality_reasons),
        params=params,
        modality_reasons=modality_reasons,
        table=table,
    )


# ----------------------------------------------------------------------------------------------
# the whole chain on a model, in slice batches (memory: eta for all slices would not fit)


ACC_SLICES = ("segmented", "all")
"""Which test slices the ACC mean and sd of Figure 7 average over (study A: "the mean AAC of all
test images").

- "segmented": slices whose final segmentation gamma is non-empty. On a slice with an empty gamma,
  Eq. (7) is 0 wherever eta^k is non-empty and 0/0 where it is empty, whatever the modality does, so
  such slices say nothing about a modality's contribution to a segmentation. The paper's Figure 7
  suggests this reading: T1ce's mean ACC "close to 1" for ET could not be reached if many slices
  without an enhancing tumour counted as 0 (the paper appears to keep about a whole tumour's extent
  of slices per patient, and an enhancing core rarely spans all of it). gamma is the model's own
  output, not the ground truth, so the selection does not look at the answer.
- "all": every test slice, with Eq. (7) as it falls (0 or nan on empty-gamma slices). The mean is
  then at most the fraction of slices with a non-empty gamma, which the rule's absolute cut
  (``ACCRule.min_final``) does not allow for.
"""


@dataclass
class ACCRun:
    """Everything Eq. (4)-(7) give for a set of slices, plus what the diagnostics need.

    t : (T,) stages; modalities : channel names; w : (m,), b : readout.
    gamma : (N, H, W) bool, Eq. (4) binarised from the flow's last frame.
    mu : (T, N, m) Eq. (7) with Eq. (6) as printed; mu_polarity_aware : (T, N, m) with the variant.
    logit_share : (T, N, m) continuous variant.
    eta_coverage : (T, N, m) fraction of gamma covered by eta^k (Eq. 6 as printed; nan if gamma empty).
    eta_area : (T, N, m) fraction of the image (or brain, when given) covered by eta^k.
    I_1 : (N, m, H, W) last flow frame (for :func:`lib.explain.diagnostics.channel_mixing`), or
        None once the caller has used it (`lib.study_a.ode.explain_ode` drops it: at the paper
        profile's size it is ~4.5 GB per model, and the chapter keeps every model's run).
    final_frame_error : max |J_1 - sigma(model(x))| (nan when not checked).
    kept_frames : {slice index: I_t (T, m, H, W)} for the slices asked for in ``keep_slices``.
    gamma_model_dice : Dice between gamma and the model's own segmentation (its forward pass,
        thresholded), pooled over the slices; 1 when both are empty; nan when not checked or the
        model's output is not finite. The flow may be rendered on a finer grid than the forward
        pass solves on (study A trains on a coarse one), so the two can differ.
    gamma_model_differing_pixels : pixels where they differ (-1 when not checked or not finite).
    """

    t: np.ndarray
    modalities: tuple[str, ...]
    w: np.ndarray
    b: float
    gamma: np.ndarray
    mu: np.ndarray
    mu_polarity_aware: np.ndarray
    logit_share: np.ndarray
    eta_coverage: np.ndarray
    eta_area: np.ndarray
    I_1: np.ndarray | None
    final_frame_error: float
    kept_frames: dict[int, np.ndarray] = field(default_factory=dict)
    gamma_model_dice: float = math.nan
    gamma_model_differing_pixels: int = -1

    def segmented_slices(self) -> np.ndarray:
        """(N,) bool: the slices whose final segmentation gamma (the model's own, Eq. 4) is non-empty."""
        return self.gamma.reshape(len(self.gamma), -1).any(axis=1)

    def curves(self, variant: Literal["printed", "polarity_aware", "logit_share"] = "printed",
               slices: Any = "all") -> pd.DataFrame:
        """:func:`acc_curves` of one variant over ``slices``: "all" test slices, "segmented" (those
        with a non-empty gamma, see :data:`ACC_SLICES`), or a bool or index array."""
        values = {"printed": self.mu, "polarity_aware": self.mu_polarity_aware, "logit_share": self.logit_share}[variant]
        if isinstance(slices, str):
            if slices not in ACC_SLICES:
                raise ValueError(f"slices must be one of {ACC_SLICES} or an array, not {slices!r}")
            slices = None if slices == "all" else self.segmented_slices()
        if slices is not None:
            values = values[:, np.asarray(slices)]
        return acc_curves(values, self.modalities, t=self.t)


def acc_from_model(
    model: Any,
    images: Any,
    n_frames: int = 101,
    threshold: float = 0.5,
    batch_size: int = 8,
    brain: Any = None,
    check_final_frame: bool = True,
    keep_slices: Sequence[int] = (),
) -> ACCRun:
    """Run a neural ODE's flow on ``images`` and evaluate Eq. (4)-(7) slice batch by slice batch.

    model : needs ``modalities``, ``readout_weights() -> (w (m,), b)``, ``flow(x, n_frames) ->
    (t (T,), I_t (T, n, m, H, W))`` and ``__call__(x) -> logits (n, 1, H, W)``.
    images : (N, m, H, W) float array (z-scored inputs I_0); brain : optional (N, H, W) bool for
    ``eta_area``. gamma is Eq. (4) on the flow's last frame (bias included, see
    :func:`segmentation_frames`), so eta and gamma come from the same frames; with
    ``check_final_frame`` the model's own forward pass is compared with J_1 (one extra solve).
    The model is put in eval mode for the run and restored afterwards; no gradients are kept.
    """
    import torch

    from lib.device import model_device

    from .diagnostics import eta_area_per_slice, eta_coverage_per_slice

    images = np.asarray(_to_numpy(images), dtype=np.float32)
    brain_mask = None if brain is None else _to_numpy(brain).astype(bool)
    modalities = tuple(model.modalities)
    if images.shape[1] != len(modalities):
        raise ValueError(f"images have {images.shape[1]} channels, model has modalities {modalities}")
    w, b = _readout(*model.readout_weights())
    keep = set(int(i) for i in keep_slices)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("gamma", "mu", "mu_pa", "share", "cov", "area", "I_1")}
    kept_frames: dict[int, np.ndarray] = {}
    worst_error = math.nan if not check_final_frame else 0.0
    overlap = [0, 0, 0]  # |gamma ∩ own|, |gamma| + |own|, differing pixels, summed over batches
    stages = None
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                x = torch.from_numpy(images[start : start + batch_size]).to(model_device(model))
                t, frames = model.flow(x, n_frames=n_frames)
                frames = _to_numpy(frames)
                stages = _to_numpy(t).astype(np.float64)
                last = frames[-1]
                gamma = final_segmentation(last, w, b, threshold=threshold)
                eta = binarised_contribution(frames, w)
                eta_pa = binarised_contribution_polarity_aware(frames, w)
                parts["gamma"].append(gamma)
                parts["mu"].append(accumulated_contribution(eta, gamma))
                parts["mu_pa"].append(accumulated_contribution(eta_pa, gamma))
                parts["share"].append(logit_share(frames, w, gamma))
                parts["cov"].append(eta_coverage_per_slice(eta, gamma))
                batch_brain = None if brain_mask is None else brain_mask[start : start + batch_size]
                parts["area"].append(eta_area_per_slice(eta, batch_brain))
                parts["I_1"].append(last)
                for offset in range(x.shape[0]):
                    if start + offset in keep:
                        kept_frames[start + offset] = frames[:, offset].copy()
                if check_final_frame:
                    logits = model(x)
                    error = final_frame_error(last, w, b, logits)
                    # nan (a non-finite J_1 or model output) must not be swallowed by max()
                    worst_error = error if math.isnan(error) else max(worst_error, error)
                    counts = segmentation_overlap(gamma, segmentation_from_logits(logits, threshold))
                    overlap = [total + count for total, count in zip(overlap, counts)]
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    if stages is not None and abs(stages[-1] - 1.0) > 1e-6:
        warnings.warn(f"flow ends at t = {stages[-1]:.4g}, not 1: gamma is not the model's final segmentation")
    return ACCRun(
        t=stages,
        modalities=modalities,
        w=w,
        b=b,
        gamma=np.concatenate(parts["gamma"], axis=0),
        mu=np.concatenate(parts["mu"], axis=1),
        mu_polarity_aware=np.concatenate(parts["mu_pa"], axis=1),
        logit_share=np.concatenate(parts["share"], axis=1),
        eta_coverage=np.concatenate(parts["cov"], axis=1),
        eta_area=np.concatenate(parts["area"], axis=1),
        I_1=np.concatenate(parts["I_1"], axis=0),
        final_frame_error=float(worst_error),
        kept_frames=kept_frames,
        # not checked, or a non-finite model output (its mask would read as empty): no agreement to report
        gamma_model_dice=(math.nan if math.isnan(worst_error) else 1.0 if overlap[1] == 0 else 2 * overlap[0] / overlap[1]),
        gamma_model_differing_pixels=-1 if math.isnan(worst_error) else overlap[2],
    )
