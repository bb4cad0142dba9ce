"""Pixel separability of a region by one image alone or with a reference (known answers)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lib.explain.separability import pixel_auc, subtraction_separability


def test_pixel_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 60).astype(float)
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(60)], np.r_[pos, neg])
    assert pixel_auc(pos, neg) == pytest.approx(expected)
    assert pixel_auc([2.0, 3.0], [0.0, 1.0]) == 1.0 and pixel_auc([1.0], [1.0]) == 0.5
    assert np.isnan(pixel_auc([], [1.0]))


def test_a_reference_sharing_the_anatomy_makes_weak_enhancement_separable():
    """T1 = anatomy + noise; T1ce = anatomy + 0.8 inside the region + noise. The anatomy (sd 1)
    hides the enhancement from T1ce alone; the fitted residual T1ce - beta T1 removes it."""
    rng = np.random.default_rng(1)
    anatomy = rng.normal(size=(4, 32, 32))
    region = np.zeros((4, 32, 32), bool)
    region[:, 10:16, 10:16] = True
    t1 = anatomy + 0.05 * rng.normal(size=anatomy.shape)
    t1ce = anatomy + 0.8 * region + 0.05 * rng.normal(size=anatomy.shape)
    images = np.stack([t1, t1ce], axis=1)
    out = subtraction_separability(images, region, np.ones_like(region), ("t1", "t1ce"))
    assert 0.6 < out["auc_alone"] < 0.8
    assert out["auc_with_reference"] > 0.99 and out["beta"] == pytest.approx(1.0, abs=0.02)
    # a dark region is scored by the negated values
    dark = subtraction_separability(np.stack([t1, t1ce - 1.6 * region], 1), region, np.ones_like(region),
                                    ("t1", "t1ce"), bright=False)
    assert dark["auc_with_reference"] > 0.99
    # a reference that shares nothing does not help
    unrelated = np.stack([rng.normal(size=anatomy.shape), t1ce], axis=1)
    other = subtraction_separability(unrelated, region, np.ones_like(region), ("t1", "t1ce"))
    assert abs(other["auc_with_reference"] - other["auc_alone"]) < 0.03


def _whole_array_separability(images, region, healthy, modalities, target="t1ce", reference="t1", bright=True):
    """The computation as first written (every pixel, residual over the whole array): the reference."""
    t, r = images[:, modalities.index(target)], images[:, modalities.index(reference)]
    healthy = healthy & ~region
    sign = 1.0 if bright else -1.0
    design = np.stack([r[healthy], np.ones(int(healthy.sum()))], axis=1)
    (beta, offset), *_ = np.linalg.lstsq(design, t[healthy], rcond=None)
    residual = t - (beta * r + offset)
    return {"auc_alone": pixel_auc(sign * t[region], sign * t[healthy]),
            "auc_with_reference": pixel_auc(sign * residual[region], sign * residual[healthy]), "beta": float(beta)}


def _weak_enhancement(n=600, size=24, seed=2):
    rng = np.random.default_rng(seed)
    anatomy = rng.normal(size=(n, size, size)).astype(np.float32)
    region = np.zeros((n, size, size), bool)
    region[:, 8:12, 8:12] = True
    t1 = anatomy + np.float32(0.3) * rng.normal(size=anatomy.shape).astype(np.float32)
    t1ce = anatomy + np.float32(0.8) * region + np.float32(0.3) * rng.normal(size=anatomy.shape).astype(np.float32)
    return np.stack([t1, t1ce], axis=1), region


def test_every_pixel_read_block_by_block_gives_the_whole_array_result_exactly():
    images, region = _weak_enhancement(n=300)
    healthy = np.ones_like(region)
    expected = _whole_array_separability(images, region, healthy, ["t1", "t1ce"])
    for cap in (None, region.size):  # no cap, or a cap no class reaches
        out = subtraction_separability(images, region, healthy, ("t1", "t1ce"), max_pixels=cap)
        assert {k: out[k] for k in expected} == expected  # exactly: same pixels, same order, same arithmetic
        assert out["sampled"] is False and out["region_pixels"] == int(region.sum())


def test_a_capped_sample_estimates_the_auc_and_is_seeded():
    images, region = _weak_enhancement()
    healthy = np.ones_like(region)
    exact = subtraction_separability(images, region, healthy, ("t1", "t1ce"))
    capped = subtraction_separability(images, region, healthy, ("t1", "t1ce"), max_pixels=4000, seed=0)
    assert capped["sampled"] is True
    assert capped["region_pixels"] == exact["region_pixels"] == 9600  # counts stay the whole masks'
    assert capped["healthy_pixels"] == exact["healthy_pixels"] == 600 * 24 * 24 - 9600
    for key in ("auc_alone", "auc_with_reference"):
        assert capped[key] == pytest.approx(exact[key], abs=0.02)
    assert capped["beta"] == pytest.approx(exact["beta"], abs=0.03)
    assert subtraction_separability(images, region, healthy, ("t1", "t1ce"), max_pixels=4000, seed=0) == capped
    assert subtraction_separability(images, region, healthy, ("t1", "t1ce"), max_pixels=4000, seed=1) != capped
