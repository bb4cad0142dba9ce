"""The 2D U-Net of study A's Fig. 3A.

One implementation serves two roles in study A:

* the vector field f(I(t), t, θ) of the neural ODE (Eq. 1; m channels in, m channels out, same
  spatial size), wrapped by `lib.models.node.ODEVectorField`;
* the plain segmentation baseline of Section C (m modalities in, one logit out), wrapped by
  `lib.models.node.SegmentationUNet`.

As printed (Section B.2): an encoding path of five convolutional blocks, each two 3x3 convolutions
followed by a ReLU, with 2x2 max-pooling between blocks; a decoding path of up-convolutions
(2x2 transposed convolutions, stride 2) each followed by concatenation with the encoder features
of the same resolution and two 3x3 convolutions + ReLU; a final 1x1 convolution. With `depth`
encoder blocks there are `depth - 1` poolings and `depth - 1` up-convolutions (the paper's text
says "five up-convolutions" for five blocks; a five-level U-Net, as in Ronneberger et al. and in
Fig. 3A, has four). The paper names no normalisation layer and none is used: batch statistics
would also make the ODE's right-hand side depend on the mini-batch.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["UNet2D", "check_unet_input", "count_parameters", "encode_decode", "set_channels_last", "unet_features"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions (padding 1), each followed by a ReLU: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )


class UpConcat(nn.Module):
    """Up-convolution, skip concatenation, two 3x3 convolutions.

    (N, C_in, H, W) and skip (N, C_out, 2H, 2W) -> (N, C_out, 2H, 2W).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet2D(nn.Module):
    """U-Net of Fig. 3A, study A: (N, in_channels, H, W) -> (N, out_channels, H, W).

    Args:
        in_channels: input channels (m, the number of MR modalities).
        out_channels: output channels (m for the ODE vector field, 1 for the segmentation logit).
        base_width: feature channels of the first encoder block.
        depth: number of encoder blocks (5 in the paper). H and W must be divisible by
            2**(depth - 1).
        width_multiplier: encoder block `level` has base_width * width_multiplier**level channels
            (16-32-64-128-256 with the defaults, as in the original U-Net's doubling).
        final_activation: None (raw output, the default for both uses in study A), or one of
            "sigmoid", "tanh", "relu" applied after the 1x1 convolution.
        zero_init_output: start the final 1x1 convolution at zero weight and bias, so the network
            outputs exactly 0 at initialisation. Used for the ODE vector field (see
            `ODEVectorField`): f = 0 means the flow starts as the identity, I_t = I_0, and every
            change of the images along t is one that training asked for. Off for segmentation.
        channels_last: keep weights and activations in the channels-last (NHWC) memory layout
            inside the network; its output is returned in the standard (contiguous NCHW) layout.
            Only the layout changes, not the arithmetic (outputs agree to float rounding). On this
            project's 2-core CPU every model of study A's default profile trains 1.3-1.5x faster in
            it (benchmarks/bench_memory_format.py; the cost page measures it in every build, on the
            GPU too where there is one; not yet measured on CUDA). `set_channels_last(model, False)`
            turns it off.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_width: int = 16,
        depth: int = 5,
        width_multiplier: int = 2,
        final_activation: str | None = None,
        zero_init_output: bool = False,
        channels_last: bool = True,
    ):
        super().__init__()
        features = unet_features(base_width, depth, width_multiplier)
        if final_activation is not None and final_activation not in _ACTIVATIONS:
            raise ValueError(
                f"final_activation must be None or one of {sorted(_ACTIVATIONS)}, got {final_activation!r}"
            )
        # Constructor arguments, kept so a checkpoint can rebuild the model (the memory layout is
        # not one: it does not change what the model computes).
        self.init_kwargs = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            base_width=base_width,
            depth=depth,
            width_multiplier=width_multiplier,
            final_activation=final_activation,
            zero_init_output=zero_init_output,
        )
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.features = features

        self.encoder = nn.ModuleList()
        channels = in_channels
        for width in self.features:
            self.encoder.append(DoubleConv(channels, width))
            channels = width
        self.pool = nn.MaxPool2d(kernel_size=2)
        # decoder[i] takes level (depth-1-i) up to level (depth-2-i)
        self.decoder = nn.ModuleList(
            UpConcat(self.features[level + 1], self.features[level]) for level in reversed(range(depth - 1))
        )
        self.output = nn.Conv2d(self.features[0], out_channels, kernel_size=1)
        self.final_activation = _ACTIVATIONS[final_activation]() if final_activation else nn.Identity()
        if zero_init_output:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)
        self.channels_last = False
        set_channels_last(self, channels_last)

    @property
    def size_divisor(self) -> int:
        """H and W must be multiples of this (one halving per pooling)."""
        return 2 ** (self.depth - 1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a one-line ValueError unless x is (N, in_channels, H, W) with H, W divisible by 2**(depth-1)."""
        check_unet_input(x, type(self).__name__, self.in_channels, self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W)."""
        self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.final_activation(self.output(encode_decode(x, self.encoder, self.pool, self.decoder))).contiguous()


def check_unet_input(x: torch.Tensor, name: str, channels: int, depth: int) -> None:
    """Raise a one-line ValueError naming the network unless x is (N, channels, H, W) with H and W
    divisible by 2**(depth-1) (one halving per pooling)."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects (N, {channels}, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    divisor = 2 ** (depth - 1)
    if height % divisor or width % divisor:
        raise ValueError(f"{name} of depth {depth} needs H and W divisible by {divisor}, got {height}x{width}")


def unet_features(base_width: int, depth: int, width_multiplier: int) -> tuple[int, ...]:
    """Feature channels of each encoder level, base_width * width_multiplier**level; checks the arguments."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if base_width < 1 or width_multiplier < 1:
        raise ValueError(f"base_width and width_multiplier must be >= 1, got {base_width}, {width_multiplier}")
    return tuple(int(base_width * width_multiplier**level) for level in range(depth))


def encode_decode(x: torch.Tensor, encoder: nn.ModuleList, pool: nn.Module, decoder: nn.ModuleList) -> torch.Tensor:
    """The U-Net's path before its 1x1 output: encoder blocks with pooling between them, then
    each decoder step takes the deeper features and the skip of its level (Fig. 3A)."""
    skips = []
    for level, block in enumerate(encoder):
        x = block(x if level == 0 else pool(x))
        skips.append(x)
    x = skips.pop()
    for up in decoder:
        x = up(x, skips.pop())
    return x


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable, by default) scalar parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def set_channels_last(model: nn.Module, enabled: bool) -> nn.Module:
    """Put every U-Net in `model` (or `model` itself) in the channels-last layout, or back.

    A U-Net here is any module with a ``channels_last`` flag its forward reads: `UNet2D` and
    `lib.models.grouped_unet.GroupedUNet2D`. Converts the 4-D weights in place (parameters stay
    the same objects, so an optimizer built before keeps them; its existing state keeps its old
    layout, which is only slower) and sets the flag. Returns `model`.
    """
    layout = torch.channels_last if enabled else torch.contiguous_format
    for module in model.modules():
        if isinstance(getattr(module, "channels_last", None), bool):
            module.channels_last = bool(enabled)
            for parameter in module.parameters():
                if parameter.ndim == 4:
                    parameter.data = parameter.data.contiguous(memory_format=layout)
                    if parameter.grad is not None:  # a gradient keeps its parameter's layout
                        parameter.grad = parameter.grad.contiguous(memory_format=layout)
    return model
