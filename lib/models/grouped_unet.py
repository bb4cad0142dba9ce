"""Several independent U-Nets of Fig. 3A, study A, evaluated as one network with grouped convolutions.

The per-modality vector field (`lib.models.node.PerModalityVectorField`, a labelled variant, not in
the paper) needs one small U-Net per modality. Run one after another, m U-Nets of width w cost
about 2.4x one shared U-Net of width 2w on this project's CPU although they do the same number of
multiply-adds: each small convolution pays its own call overhead. `GroupedUNet2D` holds the m U-Nets'
weights in convolutions with ``groups=m``, so every layer runs once for all of them
(benchmarks/bench_grouped_unet.py measures the gain). It computes exactly what the m `UNet2D`s
compute, to float rounding: group k of the output depends on group k of the input alone.

The one place a group layout needs care is the decoder's skip concatenation: concatenating
(skip, up) along channels would interleave the groups' channels. A 3x3 convolution over a
concatenation is the sum of one convolution over each part, so `GroupedUpConcat` convolves the
skip and the up-convolved features separately (grouped) and adds them: the same function as
`UNet2D`'s `UpConcat`, with its first convolution's weight split in two along the input channels.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lib.models.unet import UNet2D, check_unet_input, encode_decode, set_channels_last, unet_features

__all__ = ["GroupedUNet2D"]


def _grouped_conv(in_per_group: int, out_per_group: int, groups: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_per_group * groups, out_per_group * groups, kernel_size=kernel_size,
                     padding=kernel_size // 2, groups=groups, bias=bias)


class GroupedDoubleConv(nn.Module):
    """`DoubleConv` of each group: (N, g*C_in, H, W) -> (N, g*C_out, H, W), groups kept apart."""

    def __init__(self, in_per_group: int, out_per_group: int, groups: int):
        super().__init__()
        self.first = _grouped_conv(in_per_group, out_per_group, groups, 3)
        self.second = _grouped_conv(out_per_group, out_per_group, groups, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.second(torch.relu(self.first(x))))


class GroupedUpConcat(nn.Module):
    """`UpConcat` of each group: (N, g*C_in, H, W) and skip (N, g*C_out, 2H, 2W) -> (N, g*C_out, 2H, 2W).

    conv([skip, up(x)]) = conv_skip(skip) + conv_up(up(x)): the first convolution of `UpConcat`
    split along its input channels (see the module docstring); the bias lives in `first_skip`.
    """

    def __init__(self, in_per_group: int, out_per_group: int, groups: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_per_group * groups, out_per_group * groups, kernel_size=2, stride=2,
                                     groups=groups)
        self.first_skip = _grouped_conv(out_per_group, out_per_group, groups, 3)
        self.first_up = _grouped_conv(out_per_group, out_per_group, groups, 3, bias=False)
        self.second = _grouped_conv(out_per_group, out_per_group, groups, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.first_skip(skip) + self.first_up(self.up(x)))
        return torch.relu(self.second(hidden))


class GroupedUNet2D(nn.Module):
    """g independent `UNet2D`s in one network: (N, g*in_channels, H, W) -> (N, g*out_channels, H, W).

    Channels are group-major: input channels [k*in_channels, (k+1)*in_channels) go to U-Net k, whose
    output is channels [k*out_channels, (k+1)*out_channels). Arguments as `UNet2D` (per group), plus
    ``groups``. No final activation (neither use in study A has one). Build it from existing U-Nets
    with `from_unets` (same weights, same function) and read U-Net k back with `unet(k)`; built
    directly, each layer draws PyTorch's default initialisation, whose scale for the split first
    decoder convolutions (half `UpConcat`'s fan-in) differs from a `UNet2D`'s, so study A always
    builds it from U-Nets. Channels-last by default, as `UNet2D` (see there; `set_channels_last`
    reaches it too).
    """

    def __init__(
        self,
        groups: int,
        in_channels: int,
        out_channels: int,
        base_width: int = 16,
        depth: int = 5,
        width_multiplier: int = 2,
        zero_init_output: bool = False,
        channels_last: bool = True,
    ):
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        # The per-group U-Net's arguments: `unet(k)` rebuilds one from them.
        self.unet_kwargs = dict(in_channels=in_channels, out_channels=out_channels, base_width=base_width,
                                depth=depth, width_multiplier=width_multiplier, zero_init_output=zero_init_output)
        self.groups, self.in_channels, self.out_channels, self.depth = groups, in_channels, out_channels, depth
        self.features = unet_features(base_width, depth, width_multiplier)
        self.encoder = nn.ModuleList()
        channels = in_channels
        for width in self.features:
            self.encoder.append(GroupedDoubleConv(channels, width, groups))
            channels = width
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.decoder = nn.ModuleList(
            GroupedUpConcat(self.features[level + 1], self.features[level], groups)
            for level in reversed(range(depth - 1))
        )
        self.output = _grouped_conv(self.features[0], out_channels, groups, 1)
        if zero_init_output:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)
        self.channels_last = False
        set_channels_last(self, channels_last)

    @property
    def size_divisor(self) -> int:
        """H and W must be multiples of this (one halving per pooling)."""
        return 2 ** (self.depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, g*in_channels, H, W) -> (N, g*out_channels, H, W), group k through U-Net k."""
        check_unet_input(x, type(self).__name__, self.groups * self.in_channels, self.depth)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.output(encode_decode(x, self.encoder, self.pool, self.decoder)).contiguous()

    # --- to and from separate U-Nets ------------------------------------------------------------

    def _pairs(self, unet: UNet2D):
        """(grouped layer, the U-Net's layer, which input channels of it) for every weighted layer."""
        for grouped, single in zip(self.encoder, unet.encoder):
            yield grouped.first, single[0], None
            yield grouped.second, single[2], None
        for grouped, single in zip(self.decoder, unet.decoder):
            width = single.up.out_channels
            yield grouped.up, single.up, None
            yield grouped.first_skip, single.conv[0], slice(0, width)  # UpConcat concatenates [skip, up]
            yield grouped.first_up, single.conv[0], slice(width, 2 * width)
            yield grouped.second, single.conv[2], None
        yield self.output, unet.output, None

    @staticmethod
    def _block(parameter: torch.Tensor, k: int, groups: int) -> slice:
        rows = parameter.shape[0] // groups  # grouped weights and biases stack the groups along dim 0
        return slice(k * rows, (k + 1) * rows)

    @classmethod
    def from_unets(cls, unets: Sequence[UNet2D]) -> "GroupedUNet2D":
        """One network holding copies of ``unets``' weights; it computes what they compute, side by side.

        All U-Nets must share their constructor arguments and have no final activation; the result
        takes the first one's dtype, device and memory layout. It draws nothing from torch's random
        stream, so a model that builds its U-Nets and then this draws what it drew before.
        """
        if not unets:
            raise ValueError("from_unets needs at least one U-Net")
        kwargs = dict(unets[0].init_kwargs)
        if any(dict(u.init_kwargs) != kwargs for u in unets):
            raise ValueError("from_unets needs U-Nets built with the same arguments")
        if kwargs.pop("final_activation") is not None:
            raise ValueError("GroupedUNet2D has no final activation")
        like = next(unets[0].parameters())
        with torch.random.fork_rng(devices=[]):  # its own initial weights are overwritten: draw nothing
            grouped = cls(len(unets), **kwargs, channels_last=unets[0].channels_last).to(like.device, like.dtype)
        with torch.no_grad():
            for k, unet in enumerate(unets):
                for target, source, inputs in grouped._pairs(unet):
                    weight = source.weight if inputs is None else source.weight[:, inputs]
                    target.weight[cls._block(target.weight, k, grouped.groups)] = weight
                    if target.bias is not None:
                        target.bias[cls._block(target.bias, k, grouped.groups)] = source.bias
        return grouped

    def unet(self, k: int) -> UNet2D:
        """A standalone `UNet2D` holding a copy of group k's weights (same function as group k)."""
        if not 0 <= k < self.groups:
            raise IndexError(f"group {k} of {self.groups}")
        like = self.output.weight
        with torch.random.fork_rng(devices=[]):  # reading a U-Net back leaves the random stream alone
            unet = UNet2D(**self.unet_kwargs, channels_last=self.channels_last).to(like.device, like.dtype)
        with torch.no_grad():
            for source, target, inputs in self._pairs(unet):
                block = source.weight[self._block(source.weight, k, self.groups)]
                if inputs is None:
                    target.weight.copy_(block)
                else:
                    target.weight[:, inputs] = block
                if source.bias is not None:
                    target.bias.copy_(source.bias[self._block(source.bias, k, self.groups)])
        return unet
