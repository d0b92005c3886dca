"""SimpleBaseline (Xiao, Wu, Wei, ECCV 2018): a ResNet, then three stride-2 deconvolutions, then a 1x1 conv.

High-to-low (the ResNet, stride 32) then low-to-high (the deconvs, back to stride 4) with no skip connections: the
baseline the later chapters compare against. Attribute names equal the official ``pose_resnet`` state_dict (Xiao et
al., ECCV 2018, code): the ResNet's layers at the top level, ``deconv_layers`` (Sequential 0..8) and
``final_layer``. Chapter 04 (SimpleBaseline); chapters 05 and 07 compare CPN and HRNet with it.
"""
from __future__ import annotations

from torch import Tensor, nn

from posebook.blocks.resnet import BN_MOMENTUM, ResNet, normal_init


def deconv_head(in_channels: int, channels: int = 256, layers: int = 3) -> nn.Sequential:
    """``layers`` x [ConvTranspose2d(k4, s2, p1, no bias) + BN + ReLU], each doubling the resolution. Paper §2."""
    modules = []
    for _ in range(layers):
        modules += [nn.ConvTranspose2d(in_channels, channels, 4, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(channels, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)]
        in_channels = channels
    return nn.Sequential(*modules)


class SimpleBaseline(ResNet):
    """ResNet-{depth} + ``deconv_layers`` + ``final_layer``; ``forward(x)`` gives heatmaps (B, K, H/4, W/4).

    Subclasses :class:`ResNet` so the backbone's keys sit at the top level, as in the official checkpoints.
    Paper §2, Fig. 1(c); chapter 04.
    """

    def __init__(self, depth: int = 50, num_joints: int = 17, deconv_channels: int = 256, deconv_layers: int = 3,
                 width: int = 64):
        super().__init__(depth, width)
        self.deconv_layers = deconv_head(self.feature_channels[32], deconv_channels, deconv_layers)
        self.final_layer = nn.Conv2d(deconv_channels, num_joints, 1)
        # the official head init; the ResNet keeps its He init (or ImageNet weights)
        normal_init([*self.deconv_layers.modules(), self.final_layer])

    def forward(self, x: Tensor) -> Tensor:
        c5 = self.features(x)[32]  # (B, 2048, H/32, W/32) for depth >= 50
        return self.final_layer(self.deconv_layers(c5))  # (B, K, H/4, W/4)

    def predict(self, x: Tensor) -> Tensor:
        """The final heatmaps (B, K, H/4, W/4)."""
        return self(x)


def simple_baseline(depth: int = 50, num_joints: int = 17, deconv_channels: int = 256, **kwargs) -> SimpleBaseline:
    """SimpleBaseline on ResNet-``depth`` (Xiao et al., ECCV 2018, §2); loads official checkpoints. Chapter 04."""
    return SimpleBaseline(depth=depth, num_joints=num_joints, deconv_channels=deconv_channels, **kwargs)
