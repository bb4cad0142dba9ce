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
