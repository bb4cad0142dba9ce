"""Study A's neural ODE segmenter (Eq. 1-4) and its plain U-Net baseline.

The image flow of Section B.1: the m MR images I_0 (one channel per modality) evolve under

    dI(t)/dt = f(I(t), t, θ)                                   Eq. (1)
    I_1 = I_0 + ∫_0^1 f(I(t), t, θ) dt                         Eq. (2)
    I_t = I_0 + ∫_0^t f(I(s), s, θ) ds                         Eq. (3)

with f the U-Net of Fig. 3A (m channels in and out), and the segmentation is read out at t = 1 by
a 1x1 convolution

    γ = σ(Σ_k w^k * I_1^k + b)                                 Eq. (4)

(the paper prints no bias; a 1x1 `nn.Conv2d` has one and the pilot needed it, initialised to the
prior log-odds of the target). Section C: TorchDyn, the classic 4th-order Runge-Kutta solver, the
adjoint sensitivity method for gradients, Adam at 1e-3, binary cross-entropy.

On the solver grid: TorchDyn's fixed-step `rk4` takes exactly one step per interval of `t_span`,
so the grid *is* the step size and the paper's "10^-3 tolerance" has no effect on it. Training
uses `train_steps` equal steps on [0, 1]; the rendered flow (`flow`) uses the paper's 0.01 grid.
"rk4" here is `ClassicRungeKutta4`: TorchDyn 1.0.6's stepper with its stage times corrected (the
same states, so the same numbers, for the paper's autonomous f).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchdyn.core import NeuralODE
from torchdyn.numerics.solvers.ode import RungeKutta4

from lib.models.grouped_unet import GroupedUNet2D
from lib.models.unet import UNet2D

__all__ = [
    "ODEVectorField",
    "PerModalityVectorField",
    "VECTOR_FIELDS",
    "NeuralODESegmenter",
    "SegmentationUNet",
    "SENSITIVITIES",
    "ClassicRungeKutta4",
    "ode_solver",
    "stage_grid",
    "adjoint_gradient_error",
]

SENSITIVITIES = ("adjoint", "autograd")
# "shared": the paper's one U-Net over all m channels; "per_modality": a variant (not in the paper)
# that keeps each channel a function of its own modality (`PerModalityVectorField`).
VECTOR_FIELDS = ("shared", "per_modality")

# TorchDyn warns "Setting tolerances has no effect on fixed-step methods" on every (adjoint) solve
# whose tolerances differ from its odeint defaults (1e-3); 1e-3 is also the paper's value.
_TOLERANCE = 1e-3


class ClassicRungeKutta4(RungeKutta4):
    """The classic 4th-order Runge-Kutta step (Section C, study A's solver), for TorchDyn.

    TorchDyn 1.0.6's `RungeKutta4.step` evaluates k2 at t (instead of t + h/2) and k4 at t + h/2
    (instead of t + h): it indexes the nodes c = (0, 1/2, 1/2, 1) from c[0] where k2 needs c[1].
    For an autonomous f(I), the paper's and this project's default, the times are never read and
    the step is classic RK4; for a time-dependent f (`time_dependent=True`) it is not even
    second-order in t (dx/dt = t over one step gives 0.25 instead of 0.5). This step uses the
    nodes as printed in the tableau and the same state updates, term by term, so for an
    autonomous f it returns exactly what TorchDyn's does.
    """

    def step(self, f, x, t, dt, k1=None, args=None):
        c, a, bsol, _ = self.tableau
        if k1 is None:
            k1 = f(t, x)
        k2 = f(t + c[1] * dt, x + dt * (a[0] * k1))
        k3 = f(t + c[2] * dt, x + dt * (a[1][0] * k1 + a[1][1] * k2))
        k4 = f(t + c[3] * dt, x + dt * (a[2][0] * k1 + a[2][1] * k2 + a[2][2] * k3))
        x_sol = x + dt * (bsol[0] * k1 + bsol[1] * k2 + bsol[2] * k3 + bsol[3] * k4)
        return None, x_sol, None


def ode_solver(name: str):
    """What `NeuralODE(solver=...)` gets for a solver name: `ClassicRungeKutta4()` for "rk4" (see
    there), the name itself for any other TorchDyn solver."""
    return ClassicRungeKutta4() if name == "rk4" else name


def stage_grid(n_points: int, like: torch.Tensor) -> torch.Tensor:
    """The stage grid linspace(0, 1, n_points) on `like`'s device and dtype: shape (n_points,)."""
    if n_points < 2:
        raise ValueError(f"a stage grid needs at least 2 points (t = 0 and t = 1), got {n_points}")
    return torch.linspace(0.0, 1.0, n_points, device=like.device, dtype=like.dtype)


def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    if isinstance(modalities, str):
        raise ValueError(f"modalities must be a sequence of names, got the string {modalities!r}")
    names = tuple(str(name) for name in modalities)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"modalities must be non-empty and unique, got {names}")
    return names


def _check_channels(x: torch.Tensor, modalities: tuple[str, ...]) -> None:
    if x.ndim != 4 or x.shape[1] != len(modalities):
        raise ValueError(
            f"expected images (N, {len(modalities)}, H, W) for modalities {modalities}, got {tuple(x.shape)}"
        )


class ODEVectorField(nn.Module):
    """f(I(t), t, θ) of Eq. (1), study A: a U-Net mapping (N, m, H, W) -> (N, m, H, W).

    Autonomous by default (`time_dependent=False`): f(I) ignores t, as the U-Net of Fig. 3A takes
    only the m images. With `time_dependent=True` the stage t is appended as a constant (m+1)-th
    input channel, so the U-Net must have m + 1 input and m output channels.

    `nfe` counts calls (function evaluations), including those of the adjoint's backward solve;
    reset it by assigning 0.
    """

    def __init__(self, unet: UNet2D, time_dependent: bool = False):
        super().__init__()
        expected_in = unet.out_channels + int(time_dependent)
        if unet.in_channels != expected_in:
            raise ValueError(
                f"vector field U-Net needs {expected_in} input channels for {unet.out_channels} state channels "
                f"(time_dependent={time_dependent}), got {unet.in_channels}"
            )
        self.unet = unet
        self.time_dependent = time_dependent
        self.nfe = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor, args=None) -> torch.Tensor:
        """dI/dt at stage t: x (N, m, H, W) -> (N, m, H, W). `args` is TorchDyn's and is unused."""
        self.nfe += 1
        if self.time_dependent:
            stage = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1)[0]
            x = torch.cat([x, stage.expand(x.shape[0], 1, *x.shape[2:])], dim=1)
        return self.unet(x)


class PerModalityVectorField(nn.Module):
    """VARIANT of f in Eq. (1) (not in the paper): one U-Net per modality, f^k(I) = g^k(I^k).

    The paper's f mixes all channels, so after the flow the channel named T1-Ce need not carry T1-Ce
    any more (the pilot's channel mixing), and Eq. (6)-(7) then attribute to a *channel*, not to a
    modality. Here channel k evolves under its own U-Net g^k that sees only I^k (and t when
    time-dependent): I_t^k depends on I_0^k alone, for every t, by construction. The readout of
    Eq. (4) is unchanged, so the modalities meet only there, additively (a generalised additive
    model: γ = σ(Σ_k w^k Φ^k(I_0^k) + b)); cross-modality interactions other than a weighted sum
    are out of its reach, which costs Dice where a target needs them.

    x (N, m, H, W) -> (N, m, H, W). ``unets``: m U-Nets with 1 (+1 for t) input and 1 output channel;
    their weights are copied into one `GroupedUNet2D` (attribute ``grouped``), which evaluates all m
    at once with grouped convolutions: the same function, faster than a loop over m small U-Nets.
    ``unets`` gives standalone copies of the m U-Nets back.
    """

    def __init__(self, unets: Sequence[UNet2D], time_dependent: bool = False):
        super().__init__()
        expected_in = 1 + int(time_dependent)
        for unet in unets:
            if unet.in_channels != expected_in or unet.out_channels != 1:
                raise ValueError(f"each per-modality U-Net needs {expected_in} input and 1 output channel, got "
                                 f"{unet.in_channels} and {unet.out_channels}")
        self.grouped = GroupedUNet2D.from_unets(list(unets))
        self.time_dependent = time_dependent
        self.nfe = 0
        self.register_load_state_dict_pre_hook(_per_modality_weights_from_unet_list)

    @property
    def unets(self) -> list[UNet2D]:
        """g^1..g^m as standalone `UNet2D`s (copies of the weights in ``grouped``)."""
        return [self.grouped.unet(k) for k in range(self.grouped.groups)]

    def forward(self, t: torch.Tensor, x: torch.Tensor, args=None) -> torch.Tensor:
        """dI^k/dt = g^k(I^k) for each channel k: x (N, m, H, W) -> (N, m, H, W)."""
        self.nfe += 1
        if x.shape[1] != self.grouped.groups:
            raise ValueError(f"expected {self.grouped.groups} channels, got {x.shape[1]}")
        if self.time_dependent:
            # group k's input is (I^k, t): interleave the stage channel after every modality
            stage = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1)[0]
            x = torch.stack([x, stage.expand_as(x)], dim=2).flatten(1, 2)
        return self.grouped(x)


def _per_modality_weights_from_unet_list(module, state_dict, prefix, *_) -> None:
    """Load a checkpoint written before 2026-12-05, when `PerModalityVectorField` kept its U-Nets in
    a list (keys ``unets.<k>.*``): rewrite those keys, in place, as the grouped network's."""
    old = prefix + "unets."
    per_unet: dict[int, dict[str, torch.Tensor]] = {}
    for key in [key for key in state_dict if key.startswith(old)]:
        index, name = key[len(old):].split(".", 1)
        per_unet.setdefault(int(index), {})[name] = state_dict.pop(key)
    if not per_unet:
        return
    unets = [module.grouped.unet(0) for _ in sorted(per_unet)]  # the right shape; weights loaded next
    for unet, index in zip(unets, sorted(per_unet)):
        unet.load_state_dict(per_unet[index])
    for name, value in GroupedUNet2D.from_unets(unets).state_dict().items():
        state_dict[prefix + "grouped." + name] = value


class NeuralODESegmenter(nn.Module):
    """The neural ODE of Fig. 3B, study A: images (N, m, H, W) -> segmentation logits (N, 1, H, W).

    Args:
        modalities: names of the m input channels, in channel order (e.g. FLAIR, T1, T1-Ce, T2).
        base_width, depth, width_multiplier: the vector field U-Net (see `UNet2D`).
        train_steps: RK4 steps on [0, 1] in `forward` (grid linspace(0, 1, train_steps + 1)).
        solver: TorchDyn solver name ("rk4" in the paper).
        sensitivity: "adjoint" (the paper's; memory independent of the number of steps, but the
            backward solve re-integrates I(t) from I_1 and can be inaccurate for a trained field,
            see `adjoint_gradient_error`) or "autograd" (backpropagation through the solver's
            operations: exact for the discretised forward, memory grows with the steps).
            Settable after construction.
        prior_logit: initial readout bias b; the prior log-odds of the target (see
            `lib.train.prior_logit`) makes the untrained model predict the base rate.
        time_dependent: append t as an input channel of f (default: autonomous f(I)).
        zero_init_field: start f at exactly 0 (zero final 1x1 conv of the U-Net), so the untrained
            flow is the identity (I_t = I_0) and any change along t is learned. The first update
            reaches only that final conv; the rest of the U-Net trains from the second.
        vector_field: "shared" (the paper's: one U-Net over all m channels, `ODEVectorField`) or
            "per_modality" (a labelled variant: one U-Net of `base_width` per modality, each seeing
            only its own channel, `PerModalityVectorField`; its m U-Nets run as one grouped network,
            about 1.7x the cost of the shared field of twice its width, which for m = 4 does the same
            multiply-adds; benchmarks/bench_grouped_unet.py).

    Attributes:
        modalities: tuple of channel names. vector_field: the `ODEVectorField` (or
        `PerModalityVectorField`). node: the TorchDyn
        `NeuralODE` around it. readout: `nn.Conv2d(m, 1, 1)`, Eq. (4)'s w^k and bias b.

    The TorchDyn `NeuralODE` is kept outside the module tree (it only wraps `vector_field`) so the
    state_dict holds each parameter once: keys `vector_field.*` and `readout.*`.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        base_width: int = 16,
        depth: int = 5,
        train_steps: int = 10,
        solver: str = "rk4",
        sensitivity: str = "adjoint",
        prior_logit: float | None = None,
        width_multiplier: int = 2,
        time_dependent: bool = False,
        zero_init_field: bool = True,
        vector_field: str = "shared",
    ):
        super().__init__()
        self.modalities = _check_modalities(modalities)
        if vector_field not in VECTOR_FIELDS:
            raise ValueError(f"vector_field must be one of {VECTOR_FIELDS}, got {vector_field!r}")
        if train_steps < 1:
            raise ValueError(f"train_steps must be >= 1, got {train_steps}")
        if sensitivity not in SENSITIVITIES:
            raise ValueError(f"sensitivity must be one of {SENSITIVITIES}, got {sensitivity!r}")
        self.init_kwargs = dict(
            modalities=list(self.modalities),
            base_width=base_width,
            depth=depth,
            train_steps=train_steps,
            solver=solver,
            sensitivity=sensitivity,
            prior_logit=prior_logit,
            width_multiplier=width_multiplier,
            time_dependent=time_dependent,
            zero_init_field=zero_init_field,
            vector_field=vector_field,
        )
        m = len(self.modalities)
        self.train_steps = train_steps

        def unet(channels_in: int, channels_out: int) -> UNet2D:
            return UNet2D(channels_in + int(time_dependent), channels_out, base_width=base_width, depth=depth,
                          width_multiplier=width_multiplier, zero_init_output=zero_init_field)

        if vector_field == "shared":
            self.vector_field = ODEVectorField(unet(m, m), time_dependent=time_dependent)
        else:
            self.vector_field = PerModalityVectorField([unet(1, 1) for _ in range(m)], time_dependent=time_dependent)
        node = NeuralODE(
            self.vector_field,
            solver=ode_solver(solver),
            sensitivity=sensitivity,
            atol=_TOLERANCE,
            rtol=_TOLERANCE,
            atol_adjoint=_TOLERANCE,
            rtol_adjoint=_TOLERANCE,
        )
        object.__setattr__(self, "_node", node)  # not a submodule: see the class docstring
        self.readout = nn.Conv2d(m, 1, kernel_size=1)
        if prior_logit is not None:
            with torch.no_grad():
                self.readout.bias.fill_(float(prior_logit))

    @property
    def node(self) -> NeuralODE:
        """The TorchDyn `NeuralODE(vector_field, solver, sensitivity)`."""
        return self._node

    @property
    def sensitivity(self) -> str:
        """"adjoint" or "autograd"; assigning switches how `forward` is differentiated."""
        return self._node.sensalg

    @sensitivity.setter
    def sensitivity(self, value: str) -> None:
        if value not in SENSITIVITIES:
            raise ValueError(f"sensitivity must be one of {SENSITIVITIES}, got {value!r}")
        # TorchDyn reads `sensalg` when solving; the other two are bookkeeping copies.
        self._node.sensalg = self._node.sensitivity = self._node.vf.sensitivity = value
        self.init_kwargs["sensitivity"] = value

    def final_state(self, x: torch.Tensor) -> torch.Tensor:
        """I_1 of Eq. (2): (N, m, H, W) -> (N, m, H, W), `train_steps` RK4 steps, differentiable."""
        _check_channels(x, self.modalities)
        _, trajectory = self._node(x, stage_grid(self.train_steps + 1, x))
        return trajectory[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits Σ_k w^k I_1^k + b, Eq. (4) before σ: (N, m, H, W) -> (N, 1, H, W)."""
        return self.readout(self.final_state(x))

    @torch.no_grad()
    def flow(self, x: torch.Tensor, n_frames: int = 101) -> tuple[torch.Tensor, torch.Tensor]:
        """The image flow I_t of Eq. (3) on linspace(0, 1, n_frames), in one solve, without gradients.

        Returns t (T,) and I_t (T, N, m, H, W), T = n_frames; I_t[0] is x itself. The default is the
        paper's 0.01 grid (Section C), which is finer than the training grid (`train_steps` steps):
        the same RK4 with a smaller step, so I_t[-1] differs from the I_1 used by `forward` by the
        discretisation error; with n_frames = train_steps + 1 the two coincide.
        """
        _check_channels(x, self.modalities)
        t = stage_grid(n_frames, x)
        _, trajectory = self._node(x, t)
        return t, trajectory

    def readout_weights(self) -> tuple[np.ndarray, float]:
        """Eq. (4)'s readout: w (m,) in modality order, and the bias b."""
        weight = self.readout.weight.detach().cpu().numpy().reshape(len(self.modalities)).astype(np.float64)
        return weight, float(self.readout.bias.detach().cpu())


class SegmentationUNet(nn.Module):
    """The plain U-Net baseline of Section C, study A: images (N, m, H, W) -> logits (N, 1, H, W).

    The U-Net of Fig. 3A with m modality channels in and one logit out; its final 1x1 conv's bias
    starts at `prior_logit` when given (as the neural ODE's readout). It has no `readout` attribute,
    so `TrainConfig.readout_lr_multiplier` does not apply to it.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        base_width: int = 16,
        depth: int = 5,
        width_multiplier: int = 2,
        prior_logit: float | None = None,
    ):
        super().__init__()
        self.modalities = _check_modalities(modalities)
        self.init_kwargs = dict(
            modalities=list(self.modalities),
            base_width=base_width,
            depth=depth,
            width_multiplier=width_multiplier,
            prior_logit=prior_logit,
        )
        self.unet = UNet2D(
            len(self.modalities), 1, base_width=base_width, depth=depth, width_multiplier=width_multiplier
        )
        if prior_logit is not None:
            with torch.no_grad():
                self.unet.output.bias.fill_(float(prior_logit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, m, H, W) -> logits (N, 1, H, W)."""
        _check_channels(x, self.modalities)
        return self.unet(x)


def _parameter_gradients(model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def adjoint_gradient_error(
    model: NeuralODESegmenter,
    images: torch.Tensor,
    target: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.binary_cross_entropy_with_logits,
) -> dict[str, float]:
    """How far the adjoint's parameter gradients are from backpropagation through the solver.

    Both differentiate the same discretised forward (same RK4 grid); autograd is exact for it, the
    adjoint re-integrates I(t) backwards from I_1 and is only as good as that backward solve (the
    pilot found it unreliable for trained fields). images (N, m, H, W), target (N, 1, H, W) float.

    Returns relative_error = ||g_adj - g_auto|| / ||g_auto||, cosine similarity, max_abs_error,
    and the autograd gradient norm. The model's `sensitivity` is restored afterwards.
    """
    original = model.sensitivity
    gradients = {}
    try:
        for mode in SENSITIVITIES:
            model.sensitivity = mode
            gradients[mode] = _parameter_gradients(model, loss_fn(model(images), target))
    finally:
        model.sensitivity = original
    adjoint, autograd = gradients["adjoint"].double(), gradients["autograd"].double()
    norm = autograd.norm()
    return {
        "relative_error": float((adjoint - autograd).norm() / norm.clamp_min(1e-30)),
        "cosine": float(F.cosine_similarity(adjoint, autograd, dim=0)),
        "max_abs_error": float((adjoint - autograd).abs().max()),
        "autograd_norm": float(norm),
    }
