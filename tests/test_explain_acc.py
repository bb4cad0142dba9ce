"""Eq. (4)-(7) of study A on hand-made tensors with known answers, the ACC curves and the ACC rule."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lib.explain import acc
from lib.explain.diagnostics import eta_area_per_slice, eta_coverage_per_slice
from lib.explain.verdict import KeyModalityResult, agreement


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


# ---------------------------------------------------------------- Eq. (5): J_t


def two_channel_frames():
    """I_t of shape (T=2, N=1, m=2, H=1, W=2)."""
    frames = np.zeros((2, 1, 2, 1, 2), dtype=np.float32)
    frames[0, 0, 0, 0] = [1.0, 0.0]  # channel 0 at t = 0
    frames[0, 0, 1, 0] = [0.0, 1.0]  # channel 1 at t = 0
    frames[1, 0, 0, 0] = [2.0, 0.0]
    frames[1, 0, 1, 0] = [0.5, 1.0]
    return frames


def test_segmentation_frames_by_hand():
    frames = two_channel_frames()
    w, b = np.array([1.0, 2.0]), -1.0
    j = acc.segmentation_frames(frames, w, b)
    assert j.shape == (2, 1, 1, 2)
    # t0: z = [1*1 + 2*0 - 1, 1*0 + 2*1 - 1] = [0, 1]; t1: z = [2 + 1 - 1, 0 + 2 - 1] = [2, 1]
    np.testing.assert_allclose(j[0, 0, 0], [0.5, sigmoid(1.0)], rtol=1e-6)
    np.testing.assert_allclose(j[1, 0, 0], [sigmoid(2.0), sigmoid(1.0)], rtol=1e-6)
    # as printed (no bias): z shifts by +1
    j_printed = acc.segmentation_frames(frames, w, b, include_bias=False)
    np.testing.assert_allclose(j_printed[0, 0, 0], [sigmoid(1.0), sigmoid(2.0)], rtol=1e-6)


def test_final_segmentation_and_logits_threshold():
    frames = two_channel_frames()
    w, b = np.array([1.0, 2.0]), -1.0
    gamma = acc.final_segmentation(frames[0], w, b)  # z = [0, 1]: sigma(0) = 0.5 is not > 0.5
    assert gamma.dtype == bool and gamma.tolist() == [[[False, True]]]
    assert acc.final_segmentation(frames[0], w, b, threshold=0.3).tolist() == [[[True, True]]]
    logits = torch.tensor([[[[0.0, 1.0]]]])  # (N, 1, H, W)
    assert acc.segmentation_from_logits(logits).tolist() == [[[False, True]]]


class ToyODE(nn.Module):
    """Stand-in for the neural ODE: I_t = I_0 * (1 + t) per channel, then a 1x1 readout."""

    def __init__(self, modalities=("a", "b"), weights=(2.0, -1.0), bias=-0.5):
        super().__init__()
        self.modalities = tuple(modalities)
        self.readout = nn.Conv2d(len(modalities), 1, 1)
        with torch.no_grad():
            self.readout.weight.copy_(torch.tensor(weights).view(1, -1, 1, 1))
            self.readout.bias.fill_(bias)

    def readout_weights(self):
        return self.readout.weight[0, :, 0, 0].detach().numpy().copy(), float(self.readout.bias.detach()[0])

    def flow(self, x, n_frames=101):
        t = torch.linspace(0, 1, n_frames)
        return t, x[None] * (1 + t)[:, None, None, None, None]

    def forward(self, x):
        return self.readout(2 * x)


def test_final_frame_equals_model_output_with_bias():
    model = ToyODE()
    x = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    w, b = model.readout_weights()
    _, frames = model.flow(x, n_frames=5)
    with torch.no_grad():
        logits = model(x)
    assert acc.final_frame_error(frames[-1], w, b, logits) < 1e-6
    # dropping the bias (the printed Eq. 4) no longer reproduces the model's probabilities
    j_printed = acc.segmentation_frames(frames[-1:].numpy(), w, b, include_bias=False)[0]
    assert np.max(np.abs(j_printed - torch.sigmoid(logits)[:, 0].numpy())) > 0.01


# ---------------------------------------------------------------- Eq. (6): eta


def sign_frames():
    """(T=1, N=1, m=2, H=1, W=3)."""
    frames = np.zeros((1, 1, 2, 1, 3), dtype=np.float32)
    frames[0, 0, 0, 0] = [2.0, 0.0, -1.0]
    frames[0, 0, 1, 0] = [0.5, 1.0, -3.0]
    return frames


def test_binarised_contribution_by_hand_and_negative_weight_flips_eta():
    frames = sign_frames()
    # w = (1, +1): c0 = [2, 0, -1], c1 = [0.5, 1, -3]
    eta = acc.binarised_contribution(frames, [1.0, 1.0])
    assert eta.shape == (1, 1, 2, 1, 3) and eta.dtype == bool
    assert eta[0, 0, 0, 0].tolist() == [True, False, True]  # c0 - c1 = [1.5, -1, 2]
    assert eta[0, 0, 1, 0].tolist() == [False, True, False]
    # w = (1, -1): c1 = [-0.5, -1, 3]; eta^1 now lights where channel 1 is DARK
    eta_neg = acc.binarised_contribution(frames, [1.0, -1.0])
    assert eta_neg[0, 0, 0, 0].tolist() == [True, True, False]  # c0 - c1 = [2.5, 1, -4]
    assert eta_neg[0, 0, 1, 0].tolist() == [False, False, True]
    # with two channels eta^0 and eta^1 are complements (no ties here)
    assert np.all(eta_neg[0, 0, 0] ^ eta_neg[0, 0, 1])
    # only c = w * I matters: flipping w^1 and I^1 together leaves eta unchanged
    flipped = frames.copy()
    flipped[:, :, 1] *= -1
    np.testing.assert_array_equal(acc.binarised_contribution(flipped, [1.0, -1.0]), eta)


def test_binarised_contribution_three_channels_matches_definition():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(2, 2, 3, 3, 3)).astype(np.float32)
    w = np.array([0.7, -1.3, 0.4])
    eta = acc.binarised_contribution(frames, w)
    for k in range(3):
        others = sum(w[n] * frames[:, :, n] for n in range(3) if n != k)
        np.testing.assert_array_equal(eta[:, :, k], w[k] * frames[:, :, k] - others > 0)


def test_integer_frames_keep_the_fractional_readout():
    # Hand-made integer (or bool) frames: the readout weights and bias must not be cast to the
    # frames' integer dtype (w = (0.5, -0.4) would become (0, 0), b = 0.3 would become 0).
    frames = np.ones((1, 1, 2, 1, 1), dtype=np.int64)  # (T, N, m, H, W), I = 1 everywhere
    w, b = [0.5, -0.4], 0.3
    np.testing.assert_allclose(acc.weighted_frames(frames, w)[0, 0, :, 0, 0], [0.5, -0.4])
    np.testing.assert_allclose(acc.readout_logits(frames, w, b)[0, 0], [[0.4]])
    np.testing.assert_allclose(acc.segmentation_frames(frames, w, b)[0, 0], [[sigmoid(0.4)]])
    # Eq. (6): c = (0.5, -0.4): eta^0 = 0.5 - (-0.4) > 0, eta^1 = -0.4 - 0.5 < 0
    assert acc.binarised_contribution(frames, w)[0, 0, :, 0, 0].tolist() == [True, False]
    assert acc.binarised_contribution(frames.astype(bool), w)[0, 0, :, 0, 0].tolist() == [True, False]
    assert acc.final_segmentation(frames[0], [0.5, -0.4], -0.05)[0].tolist() == [[True]]  # logit 0.05 > 0


def test_polarity_aware_equals_eq6_when_contributions_are_non_negative():
    rng = np.random.default_rng(1)
    frames = rng.uniform(0, 2, size=(3, 2, 4, 5, 5)).astype(np.float32)  # non-negative frames
    w = np.array([0.5, 1.0, 2.0, 0.3])  # all positive
    np.testing.assert_array_equal(
        acc.binarised_contribution_polarity_aware(frames, w), acc.binarised_contribution(frames, w)
    )


def test_polarity_aware_is_subset_of_eq6_and_differs_correctly_with_a_negative_weight():
    rng = np.random.default_rng(2)
    frames = rng.normal(size=(2, 2, 3, 4, 4)).astype(np.float32)
    w = np.array([1.0, -0.8, 0.5])
    variant = acc.binarised_contribution_polarity_aware(frames, w)
    printed = acc.binarised_contribution(frames, w)
    assert not np.any(variant & ~printed)  # always a subset
    assert np.any(printed & ~variant)  # and strictly smaller here

    # hand pixels, w = (1, -1): background (I0 = 0, I1 = 1): c = (0, -1)
    frames = np.zeros((1, 1, 2, 1, 3), dtype=np.float32)
    frames[0, 0, 0, 0] = [0.0, 2.0, -1.0]
    frames[0, 0, 1, 0] = [1.0, 0.5, 2.0]  # c1 = [-1, -0.5, -2]
    printed = acc.binarised_contribution(frames, [1.0, -1.0])
    variant = acc.binarised_contribution_polarity_aware(frames, [1.0, -1.0])
    # pixel 0: channel 0 contributes nothing, channel 1 votes background: Eq. 6 still credits channel 0
    assert printed[0, 0, 0, 0, 0] and not variant[0, 0, 0, 0, 0]
    # pixel 1: channel 0 pushes to foreground (c0 = 2 > 0): both agree
    assert printed[0, 0, 0, 0, 1] and variant[0, 0, 0, 0, 1]
    # pixel 2: c = (-1, -2), both vote background: Eq. 6 credits the less negative one, the variant none
    assert printed[0, 0, 0, 0, 2] and not variant[0, 0, :, 0, 2].any()


def test_polarity_aware_three_channels_by_hand():
    # one pixel, w = (1, 1, 1), I = (1, 2, -3): c = (1, 2, -3)
    frames = np.array([1.0, 2.0, -3.0], dtype=np.float32).reshape(1, 1, 3, 1, 1)
    variant = acc.binarised_contribution_polarity_aware(frames, [1.0, 1.0, 1.0])
    # bars sum_{n!=k} max(c^n, 0) = (2, 1, 3): only c^1 = 2 > 1 wins; c^0 = 1 < 2 although it beats
    # the signed sum 2 - 3 = -1 that Eq. 6 uses (channel 2's "against" vote must not lower the bar)
    assert variant[0, 0, :, 0, 0].tolist() == [False, True, False]


def test_logit_share_splits_between_redundant_channels():
    frames = np.zeros((1, 1, 3, 1, 4), dtype=np.float32)
    frames[0, 0, 0, 0] = [1.0, 1.0, 0.0, 0.0]
    frames[0, 0, 1, 0] = [1.0, 1.0, 0.0, 0.0]
    frames[0, 0, 2, 0] = [-1.0, 0.0, 5.0, 0.0]  # bright only outside gamma
    gamma = np.array([[[True, True, False, False]]])
    share = acc.logit_share(frames, [1.0, 1.0, 1.0], gamma)
    np.testing.assert_allclose(share[0, 0], [0.5, 0.5, 0.0])
    # Eq. 6 gives channel 0 nothing where 0 and 1 tie (winner-take-all)
    assert not acc.binarised_contribution(frames, [1.0, 1.0, 1.0])[0, 0, 0, 0, 1]
    assert np.isnan(acc.logit_share(frames, [1.0, 1.0, 1.0], np.zeros_like(gamma))).all()


def test_a_segmentation_that_needs_two_channels_gets_no_eq6_credit_but_an_even_logit_share():
    # Channel 0 is bright on the left half, channel 1 on the right three quarters; with bias -1.5
    # the model segments only where both are bright (an AND of two modalities' evidence).
    frames = np.zeros((1, 1, 2, 1, 4), dtype=np.float32)
    frames[0, 0, 0, 0] = [1.0, 1.0, 0.0, 0.0]
    frames[0, 0, 1, 0] = [0.0, 1.0, 1.0, 1.0]
    w, b = np.array([1.0, 1.0]), -1.5
    gamma = acc.final_segmentation(frames[-1], w, b)
    np.testing.assert_array_equal(gamma, [[[False, True, False, False]]])
    eta = acc.binarised_contribution(frames, w)
    assert not eta[0, 0, :, 0, 1].any()  # inside gamma neither channel outweighs the other: no winner
    np.testing.assert_allclose(acc.accumulated_contribution(eta, gamma)[0, 0], [0.0, 0.0])
    np.testing.assert_allclose(acc.logit_share(frames, w, gamma)[0, 0], [0.5, 0.5])


# ---------------------------------------------------------------- Eq. (7): mu


def test_accumulated_contribution_known_iou_and_empty_union():
    eta = np.zeros((1, 3, 2, 1, 4), dtype=bool)  # (T, N, m, H, W)
    gamma = np.zeros((3, 1, 4), dtype=bool)
    gamma[0, 0] = [False, True, True, False]
    eta[0, 0, 0, 0] = [True, True, False, False]  # inter 1, union 3
    eta[0, 0, 1, 0] = [False, True, True, False]  # identical: 1
    eta[0, 1, 0, 0] = [True, False, False, False]  # gamma empty, eta not: 0
    # slice 1 channel 1 and slice 2 both channels: gamma and eta empty -> nan
    mu = acc.accumulated_contribution(eta, gamma)
    assert mu.shape == (1, 3, 2)
    np.testing.assert_allclose(mu[0, 0], [1 / 3, 1.0])
    assert mu[0, 1, 0] == 0.0 and np.isnan(mu[0, 1, 1])
    assert np.isnan(mu[0, 2]).all()
    assert acc.empty_union_count(mu) == 2


def test_acc_curves_mean_sd_n():
    mu = np.array(
        [
            [[0.1, 0.0], [0.3, 0.2], [np.nan, 0.4]],
            [[0.5, 1.0], [0.7, 1.0], [0.9, 1.0]],
        ]
    )  # (T=2, N=3, m=2)
    curves = acc.acc_curves(mu, ("flair", "t1ce"), t=[0.0, 1.0])
    assert list(curves.columns) == ["t", "modality", "mean", "sd", "n"]
    row = curves[(curves.t == 0.0) & (curves.modality == "flair")].iloc[0]
    assert row["n"] == 2 and row["mean"] == pytest.approx(0.2) and row["sd"] == pytest.approx(math.sqrt(0.02))
    row = curves[(curves.t == 0.0) & (curves.modality == "t1ce")].iloc[0]
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.2) and row["sd"] == pytest.approx(0.2)
    row = curves[(curves.t == 1.0) & (curves.modality == "t1ce")].iloc[0]
    assert row["mean"] == pytest.approx(1.0) and row["sd"] == pytest.approx(0.0)
    one_slice = acc.acc_curves(mu[:, :1], ("flair", "t1ce"))
    assert one_slice["sd"].isna().all() and (one_slice["n"] == 1).all()


# ---------------------------------------------------------------- the ACC rule


def make_curves(shapes, n_frames=11):
    """shapes: {modality: function of t -> mean mu}; returns an acc_curves-like table."""
    t = np.linspace(0, 1, n_frames)
    rows = [
        {"t": ti, "modality": name, "mean": float(f(ti)), "sd": 0.05, "n": 10}
        for ti in t
        for name, f in shapes.items()
    ]
    return pd.DataFrame(rows)


def linear(start, end):
    return lambda t: start + (end - start) * t


def test_rule_one_clear_winner_and_paper_style_rejection():
    curves = make_curves(
        {
            "flair": lambda t: 0.1 + 0.8 * t * (1 - t) * 2 - 0.05 * t,  # rises to ~0.3, falls to 0.05
            "t1": linear(0.3, 0.25),
            "t1ce": linear(0.1, 0.95),
            "t2": linear(0.05, 0.1),
        }
    )
    result = acc.key_modalities_acc(curves)
    assert result.key == ("t1ce",)
    assert result.scores["t1ce"] == pytest.approx(0.95)
    assert "min_final" in result.modality_reasons["flair"]
    assert "slope" in result.modality_reasons["t1"]  # high enough but decreasing
    assert result.params["min_final"] == 0.2 and result.params["relative_to_best"] == 0.5
    assert agreement(result, {"t1ce"}) == "agrees"
    assert agreement(result, {"flair", "t2"}) == "disagrees"


def test_rule_two_key_modalities():
    curves = make_curves(
        {"flair": linear(0.1, 0.8), "t1": linear(0.2, 0.2), "t1ce": linear(0.1, 0.15), "t2": linear(0.1, 0.7)}
    )
    result = acc.key_modalities_acc(curves)
    assert result.key == ("flair", "t2")  # ordered by mu(1)
    assert agreement(result, {"flair", "t2"}) == "agrees"
    assert agreement(result, {"flair"}) == "partly"
    # a stricter relative cut drops t2 (0.7 < 0.9 x 0.8)
    assert acc.key_modalities_acc(curves, acc.ACCRule(relative_to_best=0.9)).key == ("flair",)


def test_rule_flat_curve_is_not_key():
    # "flat" stays at 0.9: high at t = 1, but net slope 0 is not > min_slope 0, so it fails the slope test
    curves = make_curves({"flat": linear(0.9, 0.9), "rising": linear(0.1, 0.95)})
    result = acc.key_modalities_acc(curves)
    assert result.key == ("rising",)
    assert not result.table.loc["flat", "passes_slope"] and result.table.loc["flat", "passes_relative"]
    assert "slope" in result.modality_reasons["flat"]


def test_agreement_partly_when_a_planted_modality_is_missed():
    # key {flair} is a proper subset of planted {flair, t2}: they overlap but differ -> "partly"
    result = KeyModalityResult("test", ("flair",), {"flair": 0.8, "t2": 0.1}, "", {})
    assert agreement(result, {"flair", "t2"}) == "partly"
    assert agreement(result, {"flair"}) == "agrees"


def test_rule_none_passes_gives_no_verdict():
    curves = make_curves({"flair": linear(0.05, 0.12), "t1ce": linear(0.05, 0.18)})
    result = acc.key_modalities_acc(curves)
    assert result.key == () and not result.has_verdict
    assert "no verdict" in result.reasons
    assert agreement(result, {"t1ce"}) == "no verdict"


def test_rule_net_versus_late_slope():
    # rises early to 0.8, then drifts down slightly: net slope positive, late slope negative
    curves = make_curves({"a": lambda t: min(0.8, 0.1 + 3 * t) - 0.02 * t, "b": linear(0.1, 0.3)})
    assert acc.key_modalities_acc(curves).key == ("a",)
    late = acc.key_modalities_acc(curves, acc.ACCRule(slope="late", slope_window=0.5))
    assert late.key == ()
    assert late.params["slope"] == "late"


def test_rule_without_the_slope_condition_keeps_a_flat_high_curve():
    curves = make_curves({"a": lambda t: 0.9, "b": linear(0.1, 0.3)})  # a: high but flat; b: rising but low
    assert acc.key_modalities_acc(curves).key == ()  # the slope condition rejects the flat one
    assert acc.key_modalities_acc(curves, acc.ACCRule(require_positive_slope=False)).key == ("a",)


def test_rule_all_nan_curves_no_verdict():
    curves = make_curves({"a": lambda t: np.nan, "b": lambda t: np.nan})
    result = acc.key_modalities_acc(curves)
    assert result.key == () and "no verdict" in result.reasons


# ---------------------------------------------------------------- the chain on a model


def test_acc_from_model_matches_step_by_step():
    model = ToyODE(modalities=("flair", "t1ce"), weights=(2.0, -1.0), bias=-0.5)
    images = np.random.default_rng(3).normal(size=(5, 2, 4, 4)).astype(np.float32)
    run = acc.acc_from_model(model, images, n_frames=6, batch_size=2, keep_slices=[4])
    _, frames = model.flow(torch.from_numpy(images), n_frames=6)
    frames = frames.numpy()
    w, b = model.readout_weights()
    gamma = acc.final_segmentation(frames[-1], w, b)
    np.testing.assert_array_equal(run.gamma, gamma)
    with torch.no_grad():
        np.testing.assert_array_equal(run.gamma, model(torch.from_numpy(images))[:, 0].numpy() > 0)
    eta = acc.binarised_contribution(frames, w)
    mu = acc.accumulated_contribution(eta, gamma)
    np.testing.assert_array_equal(run.mu, mu)
    assert run.mu.shape == (6, 5, 2) and run.mu_polarity_aware.shape == (6, 5, 2)
    # every other field is the step-by-step value too; with w = (2, -1) the polarity-aware factor
    # and the printed one differ, so reading one for the other would show here
    mu_pa = acc.accumulated_contribution(acc.binarised_contribution_polarity_aware(frames, w), gamma)
    np.testing.assert_array_equal(run.mu_polarity_aware, mu_pa)
    assert not np.array_equal(mu_pa, mu)
    np.testing.assert_array_equal(run.logit_share, acc.logit_share(frames, w, gamma))
    np.testing.assert_array_equal(run.eta_coverage, eta_coverage_per_slice(eta, gamma))
    np.testing.assert_array_equal(run.eta_area, eta_area_per_slice(eta, None))
    np.testing.assert_array_equal(run.I_1, frames[-1])
    assert run.final_frame_error < 1e-6
    np.testing.assert_allclose(run.kept_frames[4], frames[:, 4])
    curves = run.curves()
    assert set(curves.modality) == {"flair", "t1ce"} and len(curves) == 12
    assert model.training  # restored


def test_acc_from_model_reads_each_batch_with_its_own_brain_slices():
    """``eta_area`` is per slice over that slice's brain: batches of 2 over 5 slices must take
    rows 0-1, 2-3 and 4 of ``brain``, not the first rows again."""
    model = ToyODE(modalities=("flair", "t1ce"), weights=(2.0, -1.0), bias=-0.5)
    images = np.random.default_rng(3).normal(size=(5, 2, 4, 4)).astype(np.float32)
    brain = np.zeros((5, 4, 4), bool)
    for i in range(5):
        brain[i, : i + 1] = True  # slice i: its first i + 1 rows are brain, so every slice differs
    run = acc.acc_from_model(model, images, n_frames=6, batch_size=2, brain=brain)
    _, frames = model.flow(torch.from_numpy(images), n_frames=6)
    w, _ = model.readout_weights()
    eta = acc.binarised_contribution(frames.numpy(), w)
    np.testing.assert_array_equal(run.eta_area, eta_area_per_slice(eta, brain))
    assert not np.array_equal(run.eta_area, eta_area_per_slice(eta, None))


def test_segmentation_overlap_counts_for_a_pooled_dice():
    a = np.array([[True, True, False], [False, False, False]])
    b = np.array([[True, False, True], [False, False, True]])
    # |a ∩ b| = 1, |a| + |b| = 2 + 3, differing pixels: (0,1), (0,2), (1,2)
    assert acc.segmentation_overlap(a, b) == (1, 5, 3)
    assert acc.segmentation_overlap(a, a) == (2, 4, 0)
    with pytest.raises(ValueError, match="shape"):
        acc.segmentation_overlap(a, b[:1])


def test_acc_from_model_compares_gamma_with_the_models_own_segmentation():
    # The flow agrees with the forward pass: gamma is the model's segmentation, Dice 1, no pixel differs.
    images = np.random.default_rng(3).normal(size=(5, 2, 4, 4)).astype(np.float32)
    same = acc.acc_from_model(ToyODE(), images, n_frames=6, batch_size=2)
    assert same.gamma_model_dice == 1.0 and same.gamma_model_differing_pixels == 0

    # A forward pass that flips the sign of the logit (a coarse solve far off the rendered flow):
    # every pixel differs and the two segmentations are disjoint, so Dice 0.
    class Opposite(ToyODE):
        def forward(self, x):
            return -self.readout(2 * x)

    off = acc.acc_from_model(Opposite(), images, n_frames=6, batch_size=2)
    assert off.gamma_model_dice == 0.0 and off.gamma_model_differing_pixels == images[:, 0].size
    unchecked = acc.acc_from_model(ToyODE(), images, n_frames=6, check_final_frame=False)
    assert math.isnan(unchecked.gamma_model_dice) and unchecked.gamma_model_differing_pixels == -1


def test_acc_from_model_reports_a_non_finite_final_frame_check_as_nan():
    # A model whose forward pass gives nan on one batch: J_1 cannot be checked against it there,
    # so the check must not report agreement (max(0.0, nan) == 0.0 would).
    class NaNForward(ToyODE):
        def forward(self, x):
            logits = self.readout(2 * x)
            return torch.full_like(logits, float("nan")) if x.shape[0] == 2 else logits

    images = np.random.default_rng(3).normal(size=(3, 2, 4, 4)).astype(np.float32)
    run = acc.acc_from_model(NaNForward(), images, n_frames=3, batch_size=2)
    assert math.isnan(run.final_frame_error)
    assert math.isnan(run.gamma_model_dice) and run.gamma_model_differing_pixels == -1


def test_acc_slices_segmented_leaves_out_slices_with_empty_gamma():
    # Slice 0: gamma and eta^0 coincide (mu = 1). Slice 1: gamma empty, eta^0 non-empty, so Eq. (7)
    # gives 0 there whatever the modality does. Over "all" slices the mean is 0.5, over the
    # "segmented" ones 1. Channel 1's eta is empty on both: nan on slice 1 (0/0), 0 on slice 0.
    gamma = np.zeros((2, 2, 2), bool)
    gamma[0, 0] = True
    eta = np.zeros((1, 2, 2, 2, 2), bool)
    eta[0, 0, 0, 0] = True
    eta[0, 1, 0, 1] = True
    mu = acc.accumulated_contribution(eta, gamma)
    nothing = np.zeros((1, 2, 2))
    run = acc.ACCRun(t=np.array([1.0]), modalities=("flair", "t1ce"), w=np.ones(2), b=0.0, gamma=gamma, mu=mu,
                     mu_polarity_aware=mu, logit_share=nothing, eta_coverage=nothing, eta_area=nothing,
                     I_1=None, final_frame_error=0.0)
    np.testing.assert_array_equal(run.segmented_slices(), [True, False])
    every = run.curves("printed", "all").set_index("modality")
    segmented = run.curves("printed", "segmented").set_index("modality")
    assert every.loc["flair", "mean"] == 0.5 and every.loc["flair", "n"] == 2
    assert segmented.loc["flair", "mean"] == 1.0 and segmented.loc["flair", "n"] == 1
    assert segmented.loc["t1ce", "mean"] == 0.0 and every.loc["t1ce", "n"] == 1
    assert run.curves("printed").equals(run.curves("printed", "all"))
    with pytest.raises(ValueError, match="segmented"):
        run.curves("printed", "tumour")


def test_rule_cuts_are_inclusive_at_their_boundaries():
    # mu(1) exactly at min_final (0.25) passes ">= min_final"; exactly at relative_to_best x best
    # (0.5 x 0.75 = 0.375) passes ">= relative x best" (dyadic values: no rounding at the boundary)
    curves = make_curves({"best": linear(0.0, 0.75), "at_relative": linear(0.0, 0.375), "at_min": linear(0.0, 0.25)})
    by_min = acc.key_modalities_acc(curves, acc.ACCRule(min_final=0.25, relative_to_best=0.0))
    assert by_min.key == ("best", "at_relative", "at_min")
    assert by_min.table.loc["at_min", "passes_min_final"]
    by_relative = acc.key_modalities_acc(curves, acc.ACCRule(min_final=0.0, relative_to_best=0.5))
    assert by_relative.key == ("best", "at_relative")
    assert by_relative.table.loc["at_relative", "passes_relative"]
    assert not by_relative.table.loc["at_min", "passes_relative"]


def test_late_slope_uses_only_the_last_window_of_t():
    # rises 0 -> 0.8 over t in [0, 0.5], then flat: over the last 0.25 of t the slope is 0;
    # over the last 0.75 it would be positive. T = 9 frames: t = 0, 0.125, ..., 1
    curves = make_curves({"a": lambda t: min(0.8, 1.6 * t)}, n_frames=9)
    result = acc.key_modalities_acc(curves, acc.ACCRule(slope="late", slope_window=0.25))
    assert result.table.loc["a", "late_slope"] == pytest.approx(0.0, abs=1e-12)
    assert result.key == ()  # slope 0 is not > min_slope 0
    # the window of 0.75 covers t = 0.25 .. 1: values 0.4, 0.6, 0.8, 0.8, 0.8, 0.8, 0.8
    t = np.linspace(0.25, 1.0, 7)
    y = np.minimum(0.8, 1.6 * t)
    expected = float(np.polyfit(t, y, 1)[0])
    wide = acc.key_modalities_acc(curves, acc.ACCRule(slope="late", slope_window=0.75))
    assert wide.table.loc["a", "late_slope"] == pytest.approx(expected)
    assert wide.key == ("a",)
