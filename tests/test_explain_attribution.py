"""Integrated gradients to the inputs: exact on a linear model, completeness failure detected."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lib.explain import attribution as attr
from lib.explain.verdict import agreement

MODALITIES = ("flair", "t1ce", "t2")
WEIGHTS = (1.5, -2.0, 0.5)


class Linear(nn.Module):
    """logits = sum_k w_k x_k + b: IG from a zero baseline is exactly w_k x_k inside the region."""

    def __init__(self, weights=WEIGHTS, bias=0.3):
        super().__init__()
        self.modalities = MODALITIES
        self.readout = nn.Conv2d(len(weights), 1, 1)
        with torch.no_grad():
            self.readout.weight.copy_(torch.tensor(weights).view(1, -1, 1, 1))
            self.readout.bias.fill_(bias)

    def forward(self, x):
        return self.readout(x)


class Steep(nn.Module):
    """A near-step response: too sharp for a 2-point quadrature along the IG path."""

    def forward(self, x):
        return 10.0 * torch.tanh(40.0 * (x[:, 1:2] - 0.6))


def data(n=3, size=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 3, size, size)).astype(np.float32)
    regions = np.zeros((n, size, size), dtype=bool)
    regions[:, 1:4, 2:5] = True
    return images, regions


@pytest.mark.parametrize("internal_batch_size", [None, 5])
def test_linear_model_attributions_are_analytic(internal_batch_size):
    images, regions = data()
    model = Linear()
    model.train()
    attributions, error = attr.integrated_gradients(
        model, images, regions, n_steps=4, batch_size=2, internal_batch_size=internal_batch_size
    )
    expected = np.asarray(WEIGHTS, dtype=np.float32)[None, :, None, None] * images * regions[:, None]
    np.testing.assert_allclose(attributions, expected, atol=1e-5)
    assert error.shape == (3,) and np.all(error < 1e-5)
    assert model.training  # restored after the eval-mode run
    assert model.readout.weight.grad is None  # no parameter gradients accumulated


def test_brain_mean_baseline_on_linear_model():
    images, regions = data(n=2)
    brain = np.zeros_like(regions)
    brain[:, :, :] = True
    attributions, error = attr.integrated_gradients(Linear(), images, regions, n_steps=2, baseline="brain_mean",
                                                    brain=brain)
    means = images.mean(axis=(2, 3), keepdims=True)
    expected = np.asarray(WEIGHTS, dtype=np.float32)[None, :, None, None] * (images - means) * regions[:, None]
    np.testing.assert_allclose(attributions, expected, atol=1e-5)
    assert np.all(error < 1e-5)


def test_a_constant_or_array_baseline_on_linear_model():
    """For a linear model IG is w * (x - baseline) inside the region, whatever the baseline."""
    images, regions = data(n=2)
    weights = np.asarray(WEIGHTS, dtype=np.float32)[None, :, None, None]
    for baseline in (0.5, np.full(images.shape, -1.0, dtype=np.float32)):
        attributions, error = attr.integrated_gradients(Linear(), images, regions, n_steps=2, baseline=baseline)
        np.testing.assert_allclose(attributions, weights * (images - baseline) * regions[:, None], atol=1e-5)
        assert np.all(error < 1e-5)
    with pytest.raises(ValueError, match='baseline must be "zero", "brain_mean" or an array'):
        attr.integrated_gradients(Linear(), images, regions, n_steps=2, baseline="mean")


def test_attribution_shares_inside_region():
    images, regions = data()
    attributions = np.asarray(WEIGHTS, dtype=np.float32)[None, :, None, None] * images * regions[:, None]
    attributions[:, :, 0, 0] = 100.0  # outside the region: must not count
    shares = attr.attribution_shares(attributions, regions, MODALITIES)
    assert shares.columns.tolist() == ["slice", "modality", "abs_in_region", "signed_in_region", "share"]
    absolute = np.array([[np.abs(WEIGHTS[k] * images[n, k][regions[n]]).sum() for k in range(3)] for n in range(3)])
    np.testing.assert_allclose(shares["share"].to_numpy().reshape(3, 3), absolute / absolute.sum(1, keepdims=True))
    np.testing.assert_allclose(shares.groupby("slice")["share"].sum(), 1.0)
    signed = np.array([[WEIGHTS[k] * images[n, k][regions[n]].sum() for k in range(3)] for n in range(3)])
    np.testing.assert_allclose(shares["signed_in_region"].to_numpy().reshape(3, 3), signed, rtol=1e-5)


def shares_table(rows):
    return pd.DataFrame(
        [{"slice": n, "modality": m, "share": s} for n, row in enumerate(rows) for m, s in zip(MODALITIES, row)]
    )


def test_rule_single_and_redundant_and_dropped_slices():
    shares = shares_table([(0.1, 0.7, 0.2), (0.2, 0.5, 0.3), (0.9, 0.05, 0.05)])
    converged = np.array([True, True, False])  # slice 2 would make flair win
    result = attr.key_modalities_attribution(shares, converged)
    assert result.key == ("t1ce",)
    assert result.scores["t1ce"] == pytest.approx(0.6)
    assert result.params["slices_used"] == 2 and result.params["slices_dropped_nonconverged"] == 1
    assert "1 dropped" in result.reasons
    assert agreement(result, {"t1ce"}) == "agrees"

    redundant = shares_table([(0.45, 0.1, 0.45), (0.4, 0.1, 0.5)])
    result = attr.key_modalities_attribution(redundant, np.array([True, True]))
    assert result.key == ("t2", "flair")  # both above uniform (1/3), ordered by mean share


def test_rule_needs_min_slices_usable_slices():
    shares = shares_table([(0.1, 0.7, 0.2), (0.2, 0.5, 0.3), (0.9, 0.05, 0.05)])
    converged = np.array([True, True, False])  # two usable slices
    assert attr.key_modalities_attribution(shares, converged, attr.AttributionRule(min_slices=2)).key == ("t1ce",)
    fewer = attr.key_modalities_attribution(shares, converged, attr.AttributionRule(min_slices=3))
    assert fewer.key == () and not fewer.has_verdict


def test_rule_min_share_factor_scales_the_uniform_cut_and_a_short_mask_is_refused():
    shares = shares_table([(0.25, 0.45, 0.3), (0.25, 0.45, 0.3)])  # flair, t1ce, t2; uniform share 1/3
    assert attr.key_modalities_attribution(shares, np.array([True, True])).key == ("t1ce",)  # 0.3 < 1/3
    lower = attr.AttributionRule(min_share_factor=0.75)  # cut 0.25: t2 (0.3) and flair (0.25) pass it
    assert attr.key_modalities_attribution(shares, np.array([True, True]), lower).key == ("t1ce", "t2", "flair")
    with pytest.raises(ValueError, match="converged_mask has 1 entries but shares reach slice 1"):
        attr.key_modalities_attribution(shares, np.array([True]))


def test_rule_counts_a_slice_without_shares_as_empty_not_as_nonconverged():
    nan = float("nan")
    shares = shares_table([(0.1, 0.7, 0.2), (nan, nan, nan), (0.2, 0.5, 0.3), (0.9, 0.05, 0.05)])
    # slice 1's region is empty, so its completeness error is nan and never "converged"
    converged = np.array([True, False, True, False])
    result = attr.key_modalities_attribution(shares, converged)
    assert result.params["slices_used"] == 2
    assert result.params["slices_dropped_empty_region"] == 1
    assert result.params["slices_dropped_nonconverged"] == 1
    assert "2 of 4 slices used (1 dropped: completeness not converged; 1 with an empty" in result.reasons
    assert result.key == ("t1ce",)


def test_rule_shares_below_uniform_are_not_key():
    four = ("flair", "t1", "t1ce", "t2")
    shares = pd.DataFrame([{"slice": 0, "modality": m, "share": v} for m, v in zip(four, (0.4, 0.2, 0.2, 0.2))])
    result = attr.key_modalities_attribution(shares, np.array([True]))
    # 0.2 reaches 0.5 x best (0.2) but not the uniform share 1/4: only flair is key
    assert result.key == ("flair",)
    assert "uniform" in result.modality_reasons["t1"]


def test_nonconverged_model_reports_no_verdict():
    images, regions = data(n=2)
    images[:, 1][regions] = 1.0  # the steep part of tanh lies on the path to these pixels
    attributions, error = attr.integrated_gradients(Steep(), images, regions, n_steps=2)
    assert np.all(error > 0.05)
    converged = attr.converged_slices(error, tolerance=0.05)
    assert not converged.any()
    result = attr.key_modalities_attribution(attr.attribution_shares(attributions, regions, MODALITIES), converged)
    assert result.key == () and "no verdict" in result.reasons and "0 of 2 slices used" in result.reasons
    assert agreement(result, {"t1ce"}) == "no verdict"
    # with enough steps the same model converges
    _, error = attr.integrated_gradients(Steep(), images, regions, n_steps=64)
    assert np.all(error < 0.05)


def test_empty_region_is_never_converged():
    images, regions = data(n=2)
    regions[1] = False
    attributions, error = attr.integrated_gradients(Linear(), images, regions, n_steps=2)
    assert error[0] < 1e-5 and np.isnan(error[1])
    assert attr.converged_slices(error).tolist() == [True, False]
    shares = attr.attribution_shares(attributions, regions, MODALITIES)
    assert shares[shares.slice == 1]["share"].isna().all()


def test_internal_batch_size_bounds_every_pass_even_below_the_slices_per_call():
    """``ig_images_per_pass`` (internal_batch_size) bounds the images of one forward/backward pass.
    Captum raises a smaller value to the slices of the call (a warning, and the memory of batch_size
    x 1 step); the slices per call must then shrink to it."""
    images, regions = data(n=4)
    model = Linear()
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape[0]))
    attributions, error = attr.integrated_gradients(model, images, regions, n_steps=4, internal_batch_size=2)
    expected = np.asarray(WEIGHTS, dtype=np.float32)[None, :, None, None] * images * regions[:, None]
    np.testing.assert_allclose(attributions, expected, atol=1e-5)
    assert max(seen) <= 2, seen


class FallingSteep(nn.Module):
    """Steep with the sign flipped: the region score falls from baseline to input (F(x) < F(x'))."""

    def forward(self, x):
        return -10.0 * torch.tanh(40.0 * (x[:, 1:2] - 0.6))


def test_completeness_error_is_relative_to_the_size_of_a_falling_score():
    images, regions = data(n=2)
    images[:, 1][regions] = 1.0
    # a falling score must not make the relative error negative (and so "converged")
    _, error = attr.integrated_gradients(FallingSteep(), images, regions, n_steps=2)
    _, rising = attr.integrated_gradients(Steep(), images, regions, n_steps=2)
    assert np.all(error > 0.05)
    np.testing.assert_allclose(error, rising, rtol=1e-6)  # the mirrored model: the same relative gap
    assert not attr.converged_slices(error, tolerance=0.05).any()


def test_converged_means_strictly_below_the_tolerance():
    assert attr.converged_slices(np.array([0.25, 0.125, 0.0, np.nan]), tolerance=0.25).tolist() == [
        False, True, True, False]


def test_rule_share_exactly_uniform_is_key():
    four = ("flair", "t1", "t1ce", "t2")
    shares = pd.DataFrame([{"slice": 0, "modality": m, "share": v} for m, v in zip(four, (0.5, 0.25, 0.25, 0.0))])
    result = attr.key_modalities_attribution(shares, np.array([True]))
    # 0.25 is exactly the uniform share 1/4 and exactly 0.5 x best: ">=" on both cuts
    assert result.key == ("flair", "t1", "t1ce")
    assert "t2" not in result.key and "uniform" in result.modality_reasons["t2"]
