"""Diagnostics of study A's ACC: readout signs, eta size against gamma, channel mixing in the flow."""

import numpy as np
import pytest

from lib.explain import diagnostics as diag


def test_readout_summary():
    table = diag.readout_summary([2.0, -1.0, 1.0], 0.5, ("flair", "t1ce", "t2"))
    assert list(table.index) == ["flair", "t1ce", "t2"]
    assert table["sign"].tolist() == [1, -1, 1]
    np.testing.assert_allclose(table["abs_share"], [0.5, 0.25, 0.25])
    assert (table["b"] == 0.5).all()
    with pytest.raises(ValueError):
        diag.readout_summary([1.0, 2.0], 0.0, ("flair",))


def test_eta_coverage_and_area_by_hand():
    eta = np.zeros((1, 2, 2, 2, 4), dtype=bool)  # (T, N, m, H, W), 8 pixels per slice
    gamma = np.zeros((2, 2, 4), dtype=bool)
    gamma[0, 0, :2] = True  # 2 pixels; slice 1 has an empty gamma
    eta[0, 0, 0] = True  # channel 0 covers the whole slice 0
    eta[0, 0, 1, 0, 0] = True  # channel 1: one pixel, inside gamma
    eta[0, 1, 0, 1, :] = True  # slice 1, channel 0: 4 pixels
    per_slice = diag.eta_coverage_per_slice(eta, gamma)
    np.testing.assert_allclose(per_slice[0, 0], [1.0, 0.5])
    assert np.isnan(per_slice[0, 1]).all()
    np.testing.assert_allclose(diag.eta_coverage(eta, gamma), [[1.0, 0.5]])  # slice 1 left out

    np.testing.assert_allclose(diag.eta_area(eta), [[(1.0 + 0.5) / 2, (1 / 8 + 0) / 2]])
    brain = np.zeros((2, 2, 4), dtype=bool)
    brain[:, 0, :] = True  # first row is brain: 4 pixels
    area = diag.eta_area_per_slice(eta, brain)
    np.testing.assert_allclose(area[0, 0], [1.0, 0.25])
    np.testing.assert_allclose(area[0, 1], [0.0, 0.0])  # slice 1's eta lies outside the brain

    table = diag.per_frame_table(diag.eta_area(eta), ("a", "b"), t=[1.0], name="area")
    assert table.columns.tolist() == ["t", "modality", "area"] and len(table) == 2


def test_channel_mixing_detects_swapped_channels():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3, 8, 8))
    end = 2.0 * start[:, [1, 0, 2]] + 0.05 * rng.normal(size=start.shape)  # channels 0 and 1 swapped
    end[:, 2] *= -1  # channel 2 keeps its modality with flipped sign
    mixing = diag.channel_mixing(start, end, modalities=("flair", "t1ce", "t2"))
    assert mixing.index.name == "input at t = 0" and mixing.columns.name == "channel at t = 1"
    r = mixing.to_numpy()
    assert abs(r[0, 0]) < 0.2 and abs(r[1, 1]) < 0.2  # diagonal low
    assert r[1, 0] > 0.95 and r[0, 1] > 0.95  # off-diagonal high
    assert r[2, 2] < -0.95
    fidelity = diag.self_fidelity(mixing)
    assert fidelity["flair"] < -0.7 and fidelity["t1ce"] < -0.7
    assert fidelity["t2"] > 0.9  # |r| counts: a sign flip is not mixing
    best = diag.best_matching_input(mixing)
    assert best.to_dict() == {"flair": "t1ce", "t1ce": "flair", "t2": "t2"}


def test_channel_mixing_uses_only_brain_pixels():
    rng = np.random.default_rng(1)
    start = rng.normal(size=(2, 2, 6, 6))
    end = rng.normal(size=start.shape)
    brain = np.zeros((2, 6, 6), dtype=bool)
    brain[:, 1:5, 1:5] = True
    end[:, :, brain[0]] = start[:, :, brain[0]]  # identical inside the brain only
    inside = diag.channel_mixing(start, end, brain_mask=brain)
    np.testing.assert_allclose(np.diag(inside.to_numpy()), [1.0, 1.0], atol=1e-12)
    everywhere = diag.channel_mixing(start, end)
    assert np.all(np.diag(everywhere.to_numpy()) < 0.9)
    assert list(inside.columns) == ["ch0", "ch1"]


def test_channel_mixing_constant_channel_is_nan():
    start = np.random.default_rng(2).normal(size=(1, 2, 4, 4))
    end = start.copy()
    end[:, 1] = 3.0
    mixing = diag.channel_mixing(start, end)
    assert np.isnan(mixing.to_numpy()[:, 1]).all()


def test_empty_gamma_count():
    gamma = np.zeros((4, 3, 3), dtype=bool)
    gamma[1, 0, 0] = True
    gamma[3] = True
    assert diag.empty_gamma_count(gamma) == 2


def _pooled_correlation(start, end, brain):
    """Pearson r over the pooled pixels, all at once (the reference)."""
    x0 = np.moveaxis(start.astype(np.float64), 1, 0)[:, brain]
    x1 = np.moveaxis(end.astype(np.float64), 1, 0)[:, brain]
    x0 = x0 - x0.mean(axis=1, keepdims=True)
    x1 = x1 - x1.mean(axis=1, keepdims=True)
    return (x0 @ x1.T) / np.outer(np.sqrt((x0 * x0).sum(axis=1)), np.sqrt((x1 * x1).sum(axis=1)))


def test_channel_mixing_in_blocks_equals_the_pooled_correlation():
    rng = np.random.default_rng(3)
    start = rng.normal(size=(30, 3, 8, 8)).astype(np.float32)
    end = (np.roll(start, 1, axis=1) + 0.5 * rng.normal(size=start.shape)).astype(np.float32) + 2.0
    brain = rng.random((30, 8, 8)) > 0.3
    expected = _pooled_correlation(start, end, brain)
    whole = diag.channel_mixing(start, end, brain_mask=brain)  # one block: the same arithmetic
    np.testing.assert_array_equal(whole.to_numpy(), np.clip(expected, -1, 1))
    for per_block in (64, 100, 64 * 7):  # one slice, a slice and a half (rounded down), seven slices
        blocked = diag.channel_mixing(start, end, brain_mask=brain, pixels_per_block=per_block)
        np.testing.assert_allclose(blocked.to_numpy(), expected, rtol=0, atol=1e-12)
