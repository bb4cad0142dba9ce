"""Integrated gradients to the input modalities I_0: a gradient-based importance outside the flow.

Like occlusion, attribution to the *inputs* does not care which ODE channel ends up carrying
which modality; unlike occlusion it is local (per pixel) and needs trustworthy gradients. The
pilot found it leaned the right way but weakly, and that for one model the completeness check
failed badly even at 64 steps (error 0.7-23), so its attributions were unusable. Hence every
attribution here comes with its completeness error and the key-modality rule uses only slices
that pass it.

Definitions
-----------
Scalar output per slice n (a region score):

    F_n(x) = sum_{p in R_n} z_n(p),      z = model(x)[:, 0] the logits, R_n = region_masks[n]

(R = the predicted gamma or the ground-truth region; the caller chooses and should say which).
Integrated gradients (Sundararajan et al. 2017) along the straight path from baseline x' to x:

    A_n^k(p) = (x^k(p) - x'^k(p)) * int_0^1 dF_n/dx^k(p) (x' + a (x - x')) da

computed with Captum's ``IntegratedGradients`` (Gauss-Legendre rule by default). Completeness
says sum_{k,p} A_n^k(p) = F_n(x) - F_n(x'); the relative error
|sum A - (F(x) - F(x'))| / |F(x) - F(x')| measures how well ``n_steps`` resolved the integral.
Baseline: ``"zero"`` = every modality at its brain mean (the inputs are z-scored), i.e. "no
contrast"; ``"brain_mean"`` uses each slice's own brain mean (as in :func:`occlusion.occlude`).

Arrays: images (N, m, H, W) float32 numpy in, attributions (N, m, H, W) numpy out; masks bool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .acc import _to_numpy
from .verdict import KeyModalityResult, _format_reasons, _order_by_score

__all__ = [
    "region_score",
    "integrated_gradients",
    "converged_slices",
    "attribution_shares",
    "AttributionRule",
    "key_modalities_attribution",
]


def region_score(logits: Any, region_masks: Any) -> Any:
    """F_n = sum of logits inside the region, per slice (torch in, torch out).

    logits : (n, 1, H, W) torch tensor; region_masks : (n, H, W) torch tensor (bool or 0/1).
    Returns (n,) torch tensor. Logits, not probabilities: sigmoid saturates inside a confident
    tumour, which would leave almost nothing to attribute there.
    """
    return (logits[:, 0] * region_masks.to(logits.dtype)).sum(dim=(-2, -1))


def _baseline(images: np.ndarray, baseline: Any, brain: Any) -> np.ndarray:
    if isinstance(baseline, str):
        if baseline == "zero":
            return np.zeros_like(images)
        if baseline == "brain_mean":
            from .occlusion import occlude

            names = [f"ch{k}" for k in range(images.shape[1])]
            return occlude(images, names, names, fill="brain_mean", brain=brain)
        raise ValueError(f'baseline must be "zero", "brain_mean" or an array, got {baseline!r}')
    base = np.broadcast_to(np.asarray(_to_numpy(baseline), dtype=np.float32), images.shape)
    return np.array(base, order="C")  # a writable copy: broadcast_to gives a read-only view torch warns about



def integrated_gradients(
    model: Any,
    images: Any,
    region_masks: Any,
    n_steps: int = 16,
    baseline: Literal["zero", "brain_mean"] | np.ndarray | float = "zero",
    brain: Any = None,
    method: str = "gausslegendre",
    batch_size: int = 4,
    internal_batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrated gradients of F_n(x) = sum_{p in R_n} logit_n(p) with respect to the inputs I_0.

    model : torch module, ``model(x) -> logits (n, 1, H, W)``; images : (N, m, H, W) float array;
    region_masks : (N, H, W) bool (R_n); n_steps, method : Captum's quadrature; baseline : see
    the module docstring (``brain`` (N, H, W) needed for ``"brain_mean"``); batch_size : slices per
    Captum call (each call evaluates the model on batch_size x n_steps images; cap that product with
    ``internal_batch_size``).

    Returns
      attributions : (N, m, H, W) float32, A_n^k(p);
      completeness_error : (N,) float, |sum_{k,p} A_n^k(p) - (F_n(x) - F_n(x'))| / |F_n(x) - F_n(x')|;
        nan where F_n(x) = F_n(x') exactly (e.g. an empty region): undefined, never "converged".
    The model runs in eval mode (restored afterwards). For a neural ODE solved with the adjoint
    method the gradients are only as good as the backward solve (the pilot saw it fail on a
    trained model); the completeness error is the check.
    """
    import torch
    from captum.attr import IntegratedGradients

    from lib.device import model_device

    images = np.asarray(_to_numpy(images), dtype=np.float32)
    regions = _to_numpy(region_masks).astype(bool)
    if regions.shape != (images.shape[0],) + images.shape[2:]:
        raise ValueError(f"region_masks {regions.shape} do not match images {images.shape}")
    baselines = _baseline(images, baseline, brain)
    if internal_batch_size is not None:  # Captum raises a smaller one to the slices of a call
        batch_size = max(1, min(batch_size, internal_batch_size))

    def score(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return region_score(model(x), mask)

    explainer = IntegratedGradients(score)
    attributions = np.zeros_like(images)
    errors = np.full(images.shape[0], np.nan)
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        for start in range(0, images.shape[0], batch_size):
            stop = min(start + batch_size, images.shape[0])
            device = model_device(model)
            x = torch.from_numpy(images[start:stop]).to(device)
            x_base = torch.from_numpy(baselines[start:stop]).to(device)
            mask = torch.from_numpy(regions[start:stop]).to(device)
            attribution = explainer.attribute(
                x,
                baselines=x_base,
                additional_forward_args=(mask,),
                n_steps=n_steps,
                method=method,
                internal_batch_size=internal_batch_size,
            )
            with torch.no_grad():
                difference = (score(x, mask) - score(x_base, mask)).double()
            total = attribution.detach().double().sum(dim=(1, 2, 3))
            gap = (total - difference).abs()
            relative = torch.where(difference != 0, gap / difference.abs(), torch.full_like(gap, math.nan))
            attributions[start:stop] = attribution.detach().cpu().numpy()
            errors[start:stop] = relative.cpu().numpy()
    finally:
        model.train(was_training)
    return attributions, errors


def converged_slices(completeness_error: Any, tolerance: float = 0.05) -> np.ndarray:
    """Slices whose completeness error is below ``tolerance``: (N,) bool (nan counts as not converged)."""
    error = _to_numpy(completeness_error).astype(np.float64)
    return np.nan_to_num(error, nan=np.inf) < tolerance


def attribution_shares(attributions: Any, region_masks: Any, modalities: Sequence[str]) -> pd.DataFrame:
    """Per slice and modality: share of |attribution| inside the region.

        share_n^k = sum_{p in R_n} |A_n^k(p)| / sum_j sum_{p in R_n} |A_n^j(p)|

    attributions : (N, m, H, W); region_masks : (N, H, W) bool. Summarised inside the region only:
    whole-image signed sums mislead through cancellation in healthy brain (pilot).
    Returns a long DataFrame: slice, modality, abs_in_region, signed_in_region, share
    (nan where the region is empty or carries no attribution).
    """
    values = _to_numpy(attributions).astype(np.float64)
    regions = _to_numpy(region_masks).astype(bool)
    n_slices, n_channels = values.shape[:2]
    modalities = list(modalities)
    if len(modalities) != n_channels:
        raise ValueError(f"{len(modalities)} modality names for {n_channels} channels")
    inside = regions[:, None]
    absolute = np.where(inside, np.abs(values), 0.0).sum(axis=(-2, -1))  # (N, m)
    signed = np.where(inside, values, 0.0).sum(axis=(-2, -1))
    total = absolute.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, absolute / total, np.nan)
    return pd.DataFrame(
        {
            "slice": np.repeat(np.arange(n_slices), n_channels),
            "modality": np.tile(np.asarray(modalities, dtype=object), n_slices),
            "abs_in_region": absolute.reshape(-1),
            "signed_in_region": signed.reshape(-1),
            "share": share.reshape(-1),
        }
    )


@dataclass(frozen=True)
class AttributionRule:
    """Key modalities from attribution shares, on converged slices only.

    Score of modality k: mean over usable slices of share_n^k (usable: completeness converged and
    a defined share). Modality k is key when
      - mean share >= ``min_share_factor`` / m (at least the share of a uniform split), and
      - mean share >= ``relative_to_max`` x the largest mean share.
    Two redundant modalities split the attribution and both stay above uniform; a single
    dominant one leaves the others below it. Fewer than ``min_slices`` usable slices: no verdict.
    """

    relative_to_max: float = 0.5
    min_share_factor: float = 1.0
    min_slices: int = 1


def key_modalities_attribution(
    shares: pd.DataFrame,
    converged_mask: Any,
    rule: AttributionRule = AttributionRule(),
    method: str = "integrated gradients",
) -> KeyModalityResult:
    """Key modalities from :func:`attribution_shares` by :class:`AttributionRule`.

    converged_mask : (N,) bool indexed by the ``slice`` column (from :func:`converged_slices`).
    Only converged slices are used; the reasons say how many were dropped, and when none is usable
    the result has no verdict with that reason. Scores = mean share; ``table``: mean_share, sd_share, n.
    """
    modalities = list(pd.unique(shares["modality"]))
    converged = np.asarray(_to_numpy(converged_mask)).astype(bool).reshape(-1)
    all_slices = np.sort(pd.unique(shares["slice"]))
    if converged.size <= int(all_slices.max(initial=-1)):
        raise ValueError(f"converged_mask has {converged.size} entries but shares reach slice {all_slices.max()}")
    # A slice without a defined share (empty region, or F(x) = F(x') so that completeness has nothing
    # to measure) is counted as such, not as non-converged, whatever its completeness error says.
    defined = shares.groupby("slice")["share"].apply(lambda s: s.notna().all())
    defined = defined.reindex(all_slices, fill_value=False).to_numpy(dtype=bool)  # apply may hand back objects
    n_undefined = int((~defined).sum())
    usable = defined & converged[all_slices]
    n_dropped = int((defined & ~converged[all_slices]).sum())
    usable_slices = all_slices[usable]
    used = shares[shares["slice"].isin(usable_slices)]
    n_used = len(usable_slices)
    params = asdict(rule) | {
        "score": "mean share of |IG attribution| inside the region (converged slices)",
        "slices_total": int(all_slices.size),
        "slices_dropped_nonconverged": n_dropped,
        "slices_dropped_empty_region": n_undefined,
        "slices_used": n_used,
    }
    counts = f"{n_used} of {all_slices.size} slices used ({n_dropped} dropped: completeness not converged; {n_undefined} with an empty or attribution-free region)"

    grouped = used.groupby("modality")["share"]
    table = pd.DataFrame(index=pd.Index(modalities, name="modality"))
    table["mean_share"] = grouped.mean().reindex(modalities)
    table["sd_share"] = grouped.std().reindex(modalities)
    table["n"] = grouped.count().reindex(modalities).fillna(0).astype(int)
    scores = {k: float(table.loc[k, "mean_share"]) for k in modalities}

    if n_used < rule.min_slices:
        reasons = {k: "not assessed" for k in modalities}
        table["key"] = False
        headline = f"no verdict: {counts}; need at least {rule.min_slices}"
        return KeyModalityResult(method, (), scores, _format_reasons(headline, reasons), params, reasons, table)

    uniform = rule.min_share_factor / len(modalities)
    best = float(table["mean_share"].max())
    table["key"] = (table["mean_share"] >= uniform) & (table["mean_share"] >= rule.relative_to_max * best)
    reasons = {}
    for k in modalities:
        share = table.loc[k, "mean_share"]
        if table.loc[k, "key"]:
            reasons[k] = f"KEY: mean share {share:.3f}"
        else:
            failures = []
            if not share >= uniform:
                failures.append(f"mean share {share:.3f} < {uniform:.3f} (uniform x {rule.min_share_factor})")
            if not share >= rule.relative_to_max * best:
                failures.append(f"mean share {share:.3f} < {rule.relative_to_max} x best {best:.3f}")
            reasons[k] = "not key: " + "; ".join(failures)
    key = _order_by_score([k for k in modalities if bool(table.loc[k, "key"])], scores, modalities)
    headline = (f"key = {', '.join(key)}" if key else "no verdict: no modality passes") + f"; {counts}"
    return KeyModalityResult(method, key, scores, _format_reasons(headline, reasons), params, reasons, table)
