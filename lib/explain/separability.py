"""How well single pixels tell a target region from healthy brain: one image alone, or with a reference.

Study A's Table I asks whether U-Nets on T1ce alone match U-Nets on all inputs. Part of the
answer lies in the pixels before any network: enhancement is T1ce minus what the tissue would look
like without contrast, and T1 shows the latter. ``subtraction_separability`` measures, by the
area under the ROC curve (AUC) over pixels, how well the target region separates from healthy
brain (a) by the target modality's intensity alone and (b) by its residual after the best linear
prediction from a reference modality fitted on healthy pixels (a learned T1ce - beta T1 - c
"subtraction image"). Where (b) is far above (a), the reference is what makes a thin or partial-
volume rim readable pixel by pixel; a network on the target modality alone has to make up for it
with context (shape, neighbourhood), which takes more data and resolution.

Pixel AUC ignores context, so it is a floor of what a network can do, not a forecast. Arrays are
numpy: images (N, m, H, W), masks (N, H, W) bool; channels addressed by name.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pixel_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive pixel > score of a negative one) + 0.5 P(tie): the ROC AUC
    (Mann-Whitney U / (n_pos n_neg)); nan if either set is empty."""
    positive, negative = np.ravel(positive).astype(float), np.ravel(negative).astype(float)
    if positive.size == 0 or negative.size == 0:
        return float("nan")
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(scores.size, dtype=float)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_rank = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(mean_rank, counts)
    u = ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2.0
    return float(u / (positive.size * negative.size))


def subtraction_separability(images: np.ndarray, region: np.ndarray, healthy: np.ndarray,
                             modalities: Sequence[str], target: str = "t1ce", reference: str = "t1",
                             bright: bool = True) -> dict[str, float]:
    """AUC of ``region`` vs ``healthy`` pixels by ``target`` alone and by its residual from ``reference``.

    The residual is r = T - (beta R + c), (beta, c) fitted by least squares on the healthy pixels,
    so healthy anatomy that both images share cancels. bright: the region is brighter than healthy
    tissue (enhancement); False scores by the negated values (a dark region). Returns the two AUCs,
    beta, and the pixel counts.
    """
    modalities = list(modalities)
    t = images[:, modalities.index(target)]
    r = images[:, modalities.index(reference)]
    region, healthy = np.asarray(region, bool), np.asarray(healthy, bool) & ~np.asarray(region, bool)
    sign = 1.0 if bright else -1.0
    if healthy.sum() < 2 or region.sum() == 0:
        return {"auc_alone": float("nan"), "auc_with_reference": float("nan"), "beta": float("nan"),
                "region_pixels": int(region.sum()), "healthy_pixels": int(healthy.sum())}
    design = np.stack([r[healthy], np.ones(int(healthy.sum()))], axis=1)
    (beta, offset), *_ = np.linalg.lstsq(design, t[healthy], rcond=None)
    residual = t - (beta * r + offset)
    return {
        "auc_alone": pixel_auc(sign * t[region], sign * t[healthy]),
        "auc_with_reference": pixel_auc(sign * residual[region], sign * residual[healthy]),
        "beta": float(beta),
        "region_pixels": int(region.sum()),
        "healthy_pixels": int(healthy.sum()),
    }
