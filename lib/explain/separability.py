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


def _pixels(masks: Sequence[np.ndarray], channels: Sequence[np.ndarray], max_pixels: int | None,
            seed: int, rows_per_block: int = 256) -> tuple[list[list[np.ndarray]], list[int], bool]:
    """Values of each channel (N, H, W) at the pixels of each mask (N, H, W), a block of slices at a
    time, and each mask's pixel count.

    When a mask has more than ``max_pixels`` pixels, each of its pixels is kept with probability
    ``max_pixels / count`` (a seeded Bernoulli draw per block, so about ``max_pixels`` are kept and
    the sample is uniform); otherwise all are, in row-major order, exactly as ``channel[mask]``.
    Returns ``values[i][j]`` (mask i, channel j), the counts, and whether any mask was sampled."""
    counts = [int(np.count_nonzero(m)) for m in masks]
    keep_fraction = [1.0 if max_pixels is None or c <= max_pixels else max_pixels / c for c in counts]
    rng = np.random.default_rng(seed)
    values: list[list[list[np.ndarray]]] = [[[] for _ in channels] for _ in masks]
    n = len(channels[0])
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        for i, mask in enumerate(masks):
            block = np.asarray(mask[start:stop], dtype=bool)
            if keep_fraction[i] < 1.0:
                block = block & (rng.random(block.shape, dtype=np.float32) < keep_fraction[i])
            for j, channel in enumerate(channels):
                values[i][j].append(channel[start:stop][block])
    return ([[np.concatenate(parts) for parts in per_mask] for per_mask in values], counts,
            any(f < 1.0 for f in keep_fraction))


def subtraction_separability(images: np.ndarray, region: np.ndarray, healthy: np.ndarray,
                             modalities: Sequence[str], target: str = "t1ce", reference: str = "t1",
                             bright: bool = True, max_pixels: int | None = None, seed: int = 0) -> dict[str, float]:
    """AUC of ``region`` vs ``healthy`` pixels by ``target`` alone and by its residual from ``reference``.

    The residual is r = T - (beta R + c), (beta, c) fitted by least squares on the healthy pixels,
    so healthy anatomy that both images share cancels. bright: the region is brighter than healthy
    tissue (enhancement); False scores by the negated values (a dark region). Returns the two AUCs,
    beta, the pixel counts, and ``sampled``.

    max_pixels: when the region or the healthy brain has more pixels, a seeded uniform sample of
    about this many of them (``seed``) is used for it, for the fit and for the AUC (the AUC's
    standard error at 2 million pixels per class is below 0.001); None uses every pixel. Pixels
    are read a block of slices at a time, and only the pixels used are converted, so memory
    follows the pixels used, not the images: at the paper profile's size every healthy pixel of
    the training slices is ~550 million, and the whole computation had needed tens of GB.
    """
    modalities = list(modalities)
    t = images[:, modalities.index(target)]
    r = images[:, modalities.index(reference)]
    region = np.asarray(region, bool)
    healthy = np.asarray(healthy, bool) & ~region
    [[t_region, r_region], [t_healthy, r_healthy]], (region_count, healthy_count), sampled = _pixels(
        [region, healthy], [t, r], max_pixels, seed)
    sign = 1.0 if bright else -1.0
    if healthy_count < 2 or region_count == 0:
        return {"auc_alone": float("nan"), "auc_with_reference": float("nan"), "beta": float("nan"),
                "region_pixels": region_count, "healthy_pixels": healthy_count, "sampled": sampled}
    design = np.stack([r_healthy, np.ones(len(r_healthy))], axis=1)
    (beta, offset), *_ = np.linalg.lstsq(design, t_healthy, rcond=None)
    residual_region = t_region - (beta * r_region + offset)
    residual_healthy = t_healthy - (beta * r_healthy + offset)
    return {
        "auc_alone": pixel_auc(sign * t_region, sign * t_healthy),
        "auc_with_reference": pixel_auc(sign * residual_region, sign * residual_healthy),
        "beta": float(beta),
        "region_pixels": region_count,
        "healthy_pixels": healthy_count,
        "sampled": sampled,
    }
