"""The pre-activation bottleneck residual module of the Stacked Hourglass (Newell et al., ECCV 2016, §3.2,
Fig. 4 left).

Explained in chapter 03 (Stacked Hourglass).
"""
from __future__ import annotations

from torch import nn


def bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """BN -> ReLU -> conv (with bias, as in the Torch original): one pre-activation step of the residual module.
    Newell et al. §3.2; chapter 03."""
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-conv1x1 to half width, BN-ReLU-conv3x3, BN-ReLU-conv1x1, plus the skip.

    The skip is the identity when the channel counts match, else a 1x1 conv (created only then); no ReLU after the
    addition. Newell et al. §3.2, Fig. 4 left; chapter 03.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.conv_block = nn.Sequential(bn_relu_conv(in_channels, mid, 1),
                                        bn_relu_conv(mid, mid, 3),
                                        bn_relu_conv(mid, out_channels, 1))
        # a projection exists only when the shapes differ, so the parameter count matches the paper's model
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x):
        shortcut = x if self.skip is None else self.skip(x)
        return self.conv_block(x) + shortcut
