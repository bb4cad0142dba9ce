"""Study A's models: U-Net of Fig. 3A, the neural ODE of Eq. (1)-(4), and its solver and gradients."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchdiffeq
from torch import nn
from torchdyn.core import NeuralODE

from lib.models import (
    ClassicRungeKutta4,
    GroupedUNet2D,
    NeuralODESegmenter,
    ODEVectorField,
    PerModalityVectorField,
    SegmentationUNet,
    UNet2D,
    adjoint_gradient_error,
    count_parameters,
    set_channels_last,
)

MODALITIES = ("flair", "t1ce")


def tiny_segmenter(**kwargs) -> NeuralODESegmenter:
    settings = dict(base_width=4, depth=2, train_steps=4)
    settings.update(kwargs)
    return NeuralODESegmenter(MODALITIES, **settings)


def toy_batch(seed: int = 0, n: int = 2, size: int = 16):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(MODALITIES), size, size, generator=generator)
    return x, (x[:, :1] > 0).float()


# --- UNet2D ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "in_channels, out_channels, base_width, depth, multiplier, height, width",
    [
        (3, 2, 4, 1, 2, 8, 8),
        (2, 1, 4, 3, 2, 16, 16),
        (4, 4, 2, 4, 3, 16, 24),
        (1, 1, 2, 5, 2, 16, 32),
    ],
)
def test_unet_output_shape_and_widths(in_channels, out_channels, base_width, depth, multiplier, height, width):
    unet = UNet2D(in_channels, out_channels, base_width=base_width, depth=depth, width_multiplier=multiplier)
    y = unet(torch.randn(2, in_channels, height, width))
    assert y.shape == (2, out_channels, height, width)
    assert unet.features == tuple(base_width * multiplier**level for level in range(depth))
    assert len(unet.encoder) == depth and len(unet.decoder) == depth - 1


def test_unet_default_is_five_levels_as_printed():
    assert UNet2D(4, 4).features == (16, 32, 64, 128, 256)


@pytest.mark.parametrize("height, width", [(18, 16), (16, 20), (4, 8)])
def test_unet_rejects_sizes_not_divisible_by_two_to_depth_minus_one(height, width):
    unet = UNet2D(1, 1, base_width=2, depth=4)  # needs multiples of 8
    with pytest.raises(ValueError, match="divisible by 8"):
        unet(torch.randn(1, 1, height, width))


def test_unet_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        UNet2D(2, 1, base_width=2, depth=2)(torch.randn(1, 3, 8, 8))


def test_parameter_count_of_a_tiny_unet_by_hand():
    # in 1, out 1, widths (2, 4). A k x k conv C_in -> C_out has C_in*C_out*k*k + C_out parameters.
    encoder = (1 * 2 * 9 + 2) + (2 * 2 * 9 + 2) + (2 * 4 * 9 + 4) + (4 * 4 * 9 + 4)  # 20+38+76+148
    up_convolution = 4 * 2 * 2 * 2 + 2  # ConvTranspose2d(4, 2, 2): 34
    decoder_convs = (4 * 2 * 9 + 2) + (2 * 2 * 9 + 2)  # after concatenation 2+2 -> 2: 74+38
    output = 2 * 1 + 1
    assert encoder + up_convolution + decoder_convs + output == 431
    assert count_parameters(UNet2D(1, 1, base_width=2, depth=2)) == 431
    # one level only: two convs 3 -> 4 -> 4 and the 1x1 conv 4 -> 2
    assert count_parameters(UNet2D(3, 2, base_width=4, depth=1)) == (3 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 2 + 2)


def test_count_parameters_skips_frozen_unless_asked():
    unet = UNet2D(1, 1, base_width=2, depth=2)
    unet.output.requires_grad_(False)
    assert count_parameters(unet) == 431 - 3
    assert count_parameters(unet, trainable_only=False) == 431


def test_zero_init_output_gives_exactly_zero_field_and_default_does_not():
    x = torch.randn(2, 2, 8, 8)
    assert torch.count_nonzero(UNet2D(2, 2, base_width=2, depth=2, zero_init_output=True)(x)) == 0
    assert torch.count_nonzero(UNet2D(2, 2, base_width=2, depth=2)(x)) > 0


def _copy_of(model: nn.Module) -> nn.Module:
    clone = type(model)(**model.init_kwargs)
    clone.load_state_dict(model.state_dict())
    return clone


def test_channels_last_changes_the_layout_not_the_function():
    torch.manual_seed(0)
    standard = set_channels_last(UNet2D(4, 2, base_width=4, depth=3), False)
    fast = set_channels_last(_copy_of(standard), True)
    assert all(p.is_contiguous() for p in standard.parameters())
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.ndim == 4)
    assert not all(p.is_contiguous() for p in fast.parameters() if p.ndim == 4)
    x = torch.randn(3, 4, 16, 16, requires_grad=True)
    out_standard, out_fast = standard(x), fast(x)
    assert out_fast.is_contiguous()  # callers get the standard layout back
    torch.testing.assert_close(out_fast, out_standard, rtol=1e-5, atol=1e-5)
    grad_standard = torch.autograd.grad(out_standard.square().sum(), [x, *standard.parameters()])
    grad_fast = torch.autograd.grad(out_fast.square().sum(), [x, *fast.parameters()])
    for a, b in zip(grad_fast, grad_standard):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_channels_last_is_the_default_and_set_channels_last_reaches_nested_unets():
    model = NeuralODESegmenter(["flair", "t1"], base_width=2, depth=2, train_steps=1, vector_field="per_modality")
    unets = [m for m in model.modules() if isinstance(m, (UNet2D, GroupedUNet2D))]
    assert len(unets) == 1 and isinstance(unets[0], GroupedUNet2D) and unets[0].channels_last
    weights = [p for p in model.parameters()]
    set_channels_last(model, False)
    assert not any(u.channels_last for u in unets)
    assert all(p.is_contiguous() for p in model.parameters())
    assert [p for p in model.parameters()] == weights  # the same Parameter objects: an optimizer keeps them
    # gradients follow their parameters, so switching between backward passes warns of no layout mismatch
    x = torch.randn(2, 2, 8, 8)
    model(x).sum().backward()
    set_channels_last(model, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(x).sum().backward()
    set_channels_last(model, False)
    # a checkpoint written in one layout loads into the other with the same values
    plain = set_channels_last(
        NeuralODESegmenter(["flair", "t1"], base_width=2, depth=2, train_steps=1, vector_field="per_modality"), False)
    plain.load_state_dict(set_channels_last(_copy_of(model), True).state_dict())
    assert all(p.is_contiguous() for p in plain.parameters())
    for a, b in zip(plain.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_final_activation_bounds_the_output():
    y = UNet2D(1, 1, base_width=2, depth=2, final_activation="sigmoid")(10 * torch.randn(2, 1, 8, 8))
    assert torch.all((y > 0) & (y < 1))
    with pytest.raises(ValueError, match="final_activation"):
        UNet2D(1, 1, final_activation="softmax")


# --- the ODE solver: TorchDyn's RK4, a known answer, torchdiffeq --------------------------------


class LinearField(nn.Module):
    """dx/dt = a x, with the known solution x(1) = exp(a) x(0)."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t, x, args=None):
        return self.a * x


def rk4_amplification(z: float) -> float:
    """One classic RK4 step of dx/dt = a x multiplies x by R(z), z = a h."""
    return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24


@pytest.mark.parametrize("a", [-1.5, 0.7])
@pytest.mark.parametrize("sensitivity", ["autograd", "adjoint"])
def test_torchdyn_rk4_on_linear_ode_matches_the_rk4_polynomial_and_exp(a, sensitivity):
    steps = 10
    field = LinearField(a)
    # adjoint tolerances at TorchDyn's odeint default only to silence "no effect on fixed-step" warnings
    node = NeuralODE(field, solver="rk4", sensitivity=sensitivity, atol_adjoint=1e-3, rtol_adjoint=1e-3)
    x0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    _, trajectory = node(x0, torch.linspace(0, 1, steps + 1, dtype=torch.float64))
    x1 = trajectory[-1]
    # exactly `steps` classic RK4 steps (the grid is the step); TorchDyn builds its tableau
    # (1/6, 1/3, ...) in float32, hence 1e-6 and not float64 round-off
    np.testing.assert_allclose(x1.detach().numpy(), rk4_amplification(a / steps) ** steps * x0.numpy(), rtol=1e-6)
    # ... which approximate exp(a) to RK4's global error ~ |a|^5 h^4 / 120 (< 1e-5 here), not exactly
    error = np.abs(x1.detach().numpy() - math.exp(a) * x0.numpy()).max()
    assert 0 < error < 1e-5
    # d x1 / d a = exp(a) x0 through either sensitivity method (adjoint: up to the backward solve's error)
    (gradient,) = torch.autograd.grad(x1.sum(), field.a)
    assert gradient.item() == pytest.approx(math.exp(a) * x0.sum().item(), rel=1e-4)


def classic_rk4(f, x, grid):
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        k1 = f(t0, x)
        k2 = f(t0 + h / 2, x + h / 2 * k1)
        k3 = f(t0 + h / 2, x + h / 2 * k2)
        k4 = f(t1, x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


class CubicInTime(nn.Module):
    """dx/dt = t^3: x(1) = x(0) + 1/4, which classic RK4 (Simpson's rule here) gets exactly in one step."""

    def forward(self, t, x, args=None):
        return torch.ones_like(x) * t**3


def test_rk4_evaluates_the_field_at_the_classic_stage_times():
    x0 = torch.zeros(3, dtype=torch.float64)
    one_step = torch.tensor([0.0, 1.0], dtype=torch.float64)
    _, trajectory = NeuralODE(CubicInTime(), solver=ClassicRungeKutta4())(x0, one_step)
    torch.testing.assert_close(trajectory[-1], x0 + 0.25, atol=1e-7, rtol=0)  # float32 tableau
    # TorchDyn 1.0.6's own 'rk4' evaluates k2 at t and k4 at t + h/2: 1/6 (0 + 2*0 + 2/8 + 1/8) = 1/16
    _, theirs = NeuralODE(CubicInTime(), solver="rk4")(x0, one_step)
    torch.testing.assert_close(theirs[-1], x0 + 1 / 16, atol=1e-7, rtol=0)


@torch.no_grad()
def test_rk4_is_torchdyns_to_the_bit_for_an_autonomous_field():
    torch.manual_seed(0)
    model = tiny_segmenter(zero_init_field=False, train_steps=3)
    x, _ = toy_batch()
    grid = torch.linspace(0, 1, 4)
    _, theirs = NeuralODE(model.vector_field, solver="rk4")(x, grid)
    assert torch.equal(model.final_state(x), theirs[-1])


@torch.no_grad()
@pytest.mark.parametrize("time_dependent", [False, True])
def test_segmenter_solve_is_classic_rk4_and_agrees_with_torchdiffeq(time_dependent):
    torch.manual_seed(0)
    model = tiny_segmenter(zero_init_field=False, train_steps=5, time_dependent=time_dependent)
    with torch.no_grad():  # a field strong enough that solvers could disagree
        model.vector_field.unet.output.weight.mul_(20)
    x, _ = toy_batch()
    grid = torch.linspace(0, 1, 6)
    final = model.final_state(x)
    reference = classic_rk4(model.vector_field, x, grid)
    assert (reference - x).abs().max() > 0.1  # the flow really moves the images
    torch.testing.assert_close(final, reference, atol=1e-5, rtol=1e-5)
    # torchdiffeq's 'rk4' is the 3/8 rule: a different 4th-order method on the same grid
    other = torchdiffeq.odeint(model.vector_field, x, grid, method="rk4")[-1]
    difference = (other - final).abs().max().item()
    assert difference < 1e-3
    assert difference > 0  # genuinely a different scheme


# --- NeuralODESegmenter ------------------------------------------------------------------------


def test_segmenter_shapes_attributes_and_function_evaluations():
    model = tiny_segmenter(train_steps=4)
    x, _ = toy_batch(n=3)
    assert model(x).shape == (3, 1, 16, 16)
    assert model.modalities == MODALITIES
    assert model.vector_field.nfe == 4 * 4  # RK4: four evaluations per step, one step per interval
    assert isinstance(model.vector_field, ODEVectorField)
    assert isinstance(model.readout, nn.Conv2d) and model.readout.kernel_size == (1, 1)
    assert all(key.startswith(("vector_field.", "readout.")) for key in model.state_dict())


def test_segmenter_rejects_wrong_channels_and_bad_arguments():
    model = tiny_segmenter()
    with pytest.raises(ValueError, match="flair"):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="sensitivity"):
        tiny_segmenter(sensitivity="backsolve")
    with pytest.raises(ValueError, match="unique"):
        NeuralODESegmenter(["t1", "t1"])


def test_zero_initialised_field_is_the_identity_flow():
    # f = 0 at initialisation, so I_1 = I_0 and the logits are Eq. (4) applied to the input images
    model = tiny_segmenter(prior_logit=-2.0)
    x, _ = toy_batch()
    w, b = model.readout_weights()
    expected = np.einsum("k,nkhw->nhw", w, x.numpy()) + b
    np.testing.assert_allclose(model(x)[:, 0].detach().numpy(), expected, atol=1e-5)


def test_readout_weights_match_the_conv_and_prior_logit_sets_the_bias():
    model = tiny_segmenter(prior_logit=-3.25)
    w, b = model.readout_weights()
    assert w.shape == (2,)
    np.testing.assert_array_equal(w, model.readout.weight.detach().numpy().ravel())
    assert b == pytest.approx(-3.25)
    assert tiny_segmenter().readout_weights()[1] != pytest.approx(-3.25)


def test_flow_on_the_training_grid_starts_at_the_input_and_ends_at_forwards_final_state():
    torch.manual_seed(1)
    model = tiny_segmenter(zero_init_field=False, train_steps=4)
    x, _ = toy_batch()
    t, frames = model.flow(x, n_frames=5)
    assert t.shape == (5,) and frames.shape == (5, 2, 2, 16, 16)
    assert not frames.requires_grad
    assert torch.equal(frames[0], x)
    torch.testing.assert_close(model.readout(frames[-1]), model(x), atol=1e-6, rtol=0)
    assert (frames[-1] - x).abs().max() > 1e-3  # the flow moved


def test_flow_default_is_the_papers_one_hundredth_grid():
    model = tiny_segmenter(zero_init_field=False)
    x, _ = toy_batch(n=1)
    model.vector_field.nfe = 0
    t, frames = model.flow(x)
    assert frames.shape == (101, 1, 2, 16, 16)
    torch.testing.assert_close(t[1:] - t[:-1], torch.full((100,), 0.01), atol=1e-6, rtol=0)
    assert model.vector_field.nfe == 100 * 4  # one solve of 100 RK4 steps


def test_time_dependent_field_sees_the_stage():
    torch.manual_seed(0)
    model = tiny_segmenter(time_dependent=True, zero_init_field=False)
    assert model.vector_field.unet.in_channels == 3
    x, _ = toy_batch(n=1)
    field = model.vector_field
    assert not torch.allclose(field(torch.tensor(0.0), x), field(torch.tensor(1.0), x))
    # the extra input channel holds the stage t itself, in every pixel
    stage = torch.full((1, 1, *x.shape[2:]), 0.3)
    torch.testing.assert_close(field(torch.tensor(0.3), x), field.unet(torch.cat([x, stage], dim=1)))
    assert model(x).shape == (1, 1, 16, 16)


def test_sensitivity_switch_gives_the_same_forward():
    torch.manual_seed(0)
    model = tiny_segmenter(zero_init_field=False)
    x, _ = toy_batch()
    adjoint = model(x)
    model.sensitivity = "autograd"
    assert model.sensitivity == "autograd" and model.node.sensalg == "autograd"
    torch.testing.assert_close(model(x), adjoint, atol=0, rtol=0)
    with pytest.raises(ValueError):
        model.sensitivity = "interpolated"


def test_adjoint_backward_reaches_the_zero_initialised_field():
    model = tiny_segmenter()
    x, y = toy_batch()
    F.binary_cross_entropy_with_logits(model(x), y).backward()
    assert model.vector_field.unet.output.weight.grad.abs().sum() > 0
    assert model.readout.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("time_dependent", [False, True])
def test_adjoint_matches_autograd_at_initialisation(time_dependent):
    torch.manual_seed(0)
    model = tiny_segmenter(zero_init_field=False, time_dependent=time_dependent)
    x, y = toy_batch()
    report = adjoint_gradient_error(model, x, y)
    assert report["relative_error"] < 1e-4
    assert model.sensitivity == "adjoint"  # restored


def test_adjoint_matches_autograd_after_training_steps():
    torch.manual_seed(0)
    model = tiny_segmenter(zero_init_field=False, sensitivity="autograd")
    x, y = toy_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(10):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        optimizer.step()
    assert model.vector_field.unet.output.weight.abs().max() > 0.01  # a trained, non-zero field
    report = adjoint_gradient_error(model, x, y)
    assert report["relative_error"] < 2e-2 and report["cosine"] > 0.999


def contracting_segmenter(rate: float, train_steps: int) -> NeuralODESegmenter:
    """A segmenter whose U-Net field is exactly f(I) = -rate * I.

    One level, widths 4: the first conv's centre taps copy (x_c, -x_c) per channel, the ReLUs keep
    their positive parts, the second conv passes them on, and the 1x1 output conv forms
    -rate * (relu(x_c) - relu(-x_c)) = -rate * x_c.
    """
    model = NeuralODESegmenter(MODALITIES, base_width=4, depth=1, train_steps=train_steps)
    unet = model.vector_field.unet
    first, second = unet.encoder[0][0], unet.encoder[0][2]
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.zero_()
        for c in range(len(MODALITIES)):
            first.weight[2 * c, c, 1, 1], first.weight[2 * c + 1, c, 1, 1] = 1.0, -1.0
            second.weight[2 * c, 2 * c, 1, 1] = second.weight[2 * c + 1, 2 * c + 1, 1, 1] = 1.0
            unet.output.weight[c, 2 * c, 0, 0], unet.output.weight[c, 2 * c + 1, 0, 0] = -rate, rate
    return model


def test_flow_of_a_linear_unet_field_is_the_rk4_known_answer():
    rate, steps = 1.0, 4
    model = contracting_segmenter(rate, steps)
    x, _ = toy_batch()
    _, frames = model.flow(x, n_frames=steps + 1)
    for j in range(steps + 1):
        torch.testing.assert_close(frames[j], rk4_amplification(-rate / steps) ** j * x, atol=1e-6, rtol=1e-5)


def test_adjoint_gradient_check_detects_a_gross_mismatch_on_a_strongly_contracting_field():
    # Integrating a contracting flow backwards (what the adjoint does from I_1) amplifies errors:
    # with rate 8 and step 1/4 one backward RK4 step multiplies by R(2) = 7 where the forward step
    # multiplied by R(-2) = 1/3. Mild contraction: the two gradients agree.
    x, y = toy_batch()
    assert adjoint_gradient_error(contracting_segmenter(1.0, 4), x, y)["relative_error"] < 1e-3
    report = adjoint_gradient_error(contracting_segmenter(8.0, 4), x, y)
    assert report["relative_error"] > 0.5 and report["cosine"] < 0.9


# --- SegmentationUNet --------------------------------------------------------------------------


def test_segmentation_unet_shape_modalities_and_prior_bias():
    model = SegmentationUNet(MODALITIES, base_width=4, depth=2, prior_logit=-4.0)
    x, _ = toy_batch()
    assert model(x).shape == (2, 1, 16, 16)
    assert model.modalities == MODALITIES
    assert model.unet.output.bias.item() == pytest.approx(-4.0)
    assert not hasattr(model, "readout")
    with pytest.raises(ValueError):
        model(torch.randn(2, 4, 16, 16))


# --- the per-modality vector field (a labelled variant, not in the paper) ------------------------


def _perturb_one_channel(x: torch.Tensor, k: int) -> torch.Tensor:
    other = x.clone()
    other[:, k] = other[:, k] + torch.randn_like(other[:, k])
    return other


@pytest.mark.parametrize("time_dependent", [False, True])
def test_per_modality_field_keeps_each_channel_a_function_of_its_own_modality(time_dependent):
    torch.manual_seed(0)
    model = tiny_segmenter(vector_field="per_modality", zero_init_field=False, time_dependent=time_dependent)
    assert isinstance(model.vector_field, PerModalityVectorField)
    x, _ = toy_batch(n=3)
    _, frames = model.flow(x, n_frames=11)
    # Changing the T1-Ce input leaves the FLAIR channel's whole trajectory untouched, and vice versa.
    _, after = model.flow(_perturb_one_channel(x, 1), n_frames=11)
    assert torch.equal(after[:, :, 0], frames[:, :, 0])
    assert not torch.allclose(after[:, :, 1], frames[:, :, 1])
    _, after = model.flow(_perturb_one_channel(x, 0), n_frames=11)
    assert torch.equal(after[:, :, 1], frames[:, :, 1])
    assert not torch.allclose(after[:, :, 0], frames[:, :, 0])


@pytest.mark.parametrize("time_dependent", [False, True])
def test_per_modality_field_is_each_unet_on_its_own_channel_and_t(time_dependent):
    torch.manual_seed(0)
    field = tiny_segmenter(vector_field="per_modality", zero_init_field=False, time_dependent=time_dependent).vector_field
    x, _ = toy_batch(n=3)
    t = torch.tensor(0.3)
    expected = []
    for k, unet in enumerate(field.unets):  # the definition, one U-Net at a time: g^k(I^k[, t])
        inputs = [x[:, k:k + 1]] + ([torch.full_like(x[:, :1], 0.3)] if time_dependent else [])
        expected.append(unet(torch.cat(inputs, dim=1)))
    torch.testing.assert_close(field(t, x), torch.cat(expected, dim=1), rtol=1e-5, atol=1e-6)


def test_shared_field_mixes_channels_where_the_per_modality_one_cannot():
    torch.manual_seed(0)
    model = tiny_segmenter(zero_init_field=False)
    x, _ = toy_batch(n=3)
    _, frames = model.flow(x, n_frames=5)
    _, after = model.flow(_perturb_one_channel(x, 1), n_frames=5)
    assert not torch.allclose(after[-1, :, 0], frames[-1, :, 0])  # the control: FLAIR's channel moved


def test_per_modality_field_has_one_unet_per_modality_and_rebuilds_from_its_checkpoint(tmp_path):
    from lib.train import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = tiny_segmenter(vector_field="per_modality", zero_init_field=False)
    assert len(model.vector_field.unets) == len(MODALITIES)
    assert all(u.in_channels == 1 and u.out_channels == 1 for u in model.vector_field.unets)
    one = UNet2D(1, 1, base_width=4, depth=2)
    assert count_parameters(model.vector_field) == len(MODALITIES) * count_parameters(one)
    x, _ = toy_batch()
    save_checkpoint(model, tmp_path / "variant.pt")
    rebuilt, _ = load_checkpoint(tmp_path / "variant.pt")
    assert isinstance(rebuilt.vector_field, PerModalityVectorField)
    torch.testing.assert_close(rebuilt(x), model.eval()(x))
    assert model.vector_field.nfe > 0


def test_per_modality_field_loads_a_checkpoint_of_its_earlier_list_of_unets():
    """Until 2026-12-05 the field kept its U-Nets in a list (keys vector_field.unets.<k>.*)."""
    torch.manual_seed(0)
    model = tiny_segmenter(vector_field="per_modality", zero_init_field=False)
    earlier = {f"vector_field.unets.{k}.{name}": value
               for k, unet in enumerate(model.vector_field.unets) for name, value in unet.state_dict().items()}
    earlier.update({name: value for name, value in model.state_dict().items() if name.startswith("readout.")})
    torch.manual_seed(1)
    fresh = tiny_segmenter(vector_field="per_modality", zero_init_field=False)
    x, _ = toy_batch()
    assert not torch.allclose(fresh(x), model(x))
    fresh.load_state_dict(earlier)
    torch.testing.assert_close(fresh(x), model(x))


def test_per_modality_field_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vector_field must be one of"):
        tiny_segmenter(vector_field="grouped")
    with pytest.raises(ValueError, match="1 input and 1 output"):
        PerModalityVectorField([UNet2D(2, 1, base_width=4, depth=2)])


# --- several U-Nets as one grouped network (what the per-modality field runs) ------------------------


def _random_unets(n: int, in_channels: int = 1, seed: int = 0) -> list[UNet2D]:
    torch.manual_seed(seed)
    unets = [UNet2D(in_channels, 1, base_width=3, depth=3) for _ in range(n)]
    with torch.no_grad():  # every weight and bias random and distinct, so a misplaced block shows
        for unet in unets:
            for parameter in unet.parameters():
                parameter.normal_(0.0, 0.3)
    return unets


@pytest.mark.parametrize("in_channels", [1, 2])
def test_grouped_unet_computes_what_its_unets_compute_side_by_side(in_channels):
    # in float64, so a ReLU kink that rounding moves cannot flip a gradient element
    unets = [unet.double() for unet in _random_unets(3, in_channels)]
    grouped = GroupedUNet2D.from_unets(unets)
    x = torch.randn(2, 3 * in_channels, 16, 16, dtype=torch.float64, requires_grad=True)
    expected = torch.cat([u(x[:, k * in_channels:(k + 1) * in_channels]) for k, u in enumerate(unets)], dim=1)
    out = grouped(x)
    assert out.shape == (2, 3, 16, 16) and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(torch.autograd.grad(out.square().sum(), x)[0],
                               torch.autograd.grad(expected.square().sum(), x)[0], rtol=1e-9, atol=1e-9)
    set_channels_last(grouped, False)  # the standard layout computes the same
    torch.testing.assert_close(grouped(x), expected, rtol=1e-10, atol=1e-10)


def test_grouped_unet_gives_each_unet_back_and_keeps_groups_apart():
    unets = _random_unets(3)
    grouped = GroupedUNet2D.from_unets(unets)
    assert count_parameters(grouped) == 3 * count_parameters(unets[0])
    for k, unet in enumerate(unets):
        back = grouped.unet(k).state_dict()
        assert back.keys() == unet.state_dict().keys()
        assert all(torch.equal(back[name], value) for name, value in unet.state_dict().items())
    x = torch.randn(2, 3, 16, 16)
    other = x.clone()
    other[:, 1] += torch.randn_like(other[:, 1])
    before, after = grouped(x), grouped(other)
    assert torch.equal(after[:, [0, 2]], before[:, [0, 2]])  # groups 0 and 2 never see channel 1
    assert not torch.allclose(after[:, 1], before[:, 1])
    with pytest.raises(IndexError, match="group 3 of 3"):
        grouped.unet(3)
    # building and reading back draw nothing from torch's random stream
    torch.manual_seed(5)
    GroupedUNet2D.from_unets(unets).unet(0)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))


def test_grouped_unet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="same arguments"):
        GroupedUNet2D.from_unets([UNet2D(1, 1, base_width=3, depth=3), UNet2D(1, 1, base_width=4, depth=3)])
    with pytest.raises(ValueError, match="no final activation"):
        GroupedUNet2D.from_unets([UNet2D(1, 1, base_width=3, depth=2, final_activation="tanh")])
    with pytest.raises(ValueError, match=r"expects \(N, 2, H, W\), got \(1, 3, 8, 8\)"):
        GroupedUNet2D(2, 1, 1, base_width=2, depth=2)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="divisible by 2, got 7x8"):
        GroupedUNet2D(2, 1, 1, base_width=2, depth=2)(torch.zeros(1, 2, 7, 8))
