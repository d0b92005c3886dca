"""Stacked Hourglass Networks for Human Pose Estimation (Newell, Yang, Deng, ECCV 2016).

A stem brings the image to 1/4 resolution; then ``stacks`` hourglasses, each followed by intermediate supervision:
every stack predicts heatmaps, and the prediction is merged back into the next stack's input. ``forward`` returns
every stack's heatmaps (the loss supervises all of them); ``predict`` returns the last. Newell et al. §3.1 (the
hourglass), §3.2 (residual modules, stem), §3.3 (stacking with intermediate supervision); chapter 03.
"""
from __future__ import annotations

from torch import nn

from posebook.blocks.hourglass import Hourglass, IntermediateSupervision
from posebook.blocks.residual import Residual


def stem(channels: int) -> nn.Sequential:
    """conv7x7 stride 2 + BN + ReLU, Residual, MaxPool 2, Residual, Residual: (B, 3, H, W) -> (B, C, H/4, W/4).

    The paper's widths are 64 and 128 for C = 256; a narrower model scales them as C/4 and C/2. Newell et al. §3.2; chapter 03.
    """
    quarter, half = channels // 4, channels // 2
    return nn.Sequential(
        nn.Conv2d(3, quarter, 7, stride=2, padding=3), nn.BatchNorm2d(quarter), nn.ReLU(inplace=True),
        Residual(quarter, half),
        nn.MaxPool2d(2, 2),
        Residual(half, half),
        Residual(half, channels),
    )


class StackedHourglass(nn.Module):
    """``stacks`` hourglasses of recursion ``order`` and width ``channels``, each supervised; ``pool`` in
    ("max", "avg", "conv") is the chapter's downsampling ablation. Newell et al. §3.3 (stacking with intermediate
    supervision); chapter 03.
    """

    def __init__(self, stacks: int = 8, channels: int = 256, num_joints: int = 17, order: int = 4,
                 pool: str = "max"):
        super().__init__()
        if stacks < 1:
            raise ValueError(f"stacks must be >= 1, got {stacks}")
        if channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (the stem uses C/4 and C/2), got {channels}")
        self.stacks, self.num_joints = stacks, num_joints
        self.stem = stem(channels)
        self.hourglasses = nn.ModuleList(Hourglass(order, channels, pool) for _ in range(stacks))
        self.supervision = nn.ModuleList(
            IntermediateSupervision(channels, num_joints, merge=i < stacks - 1) for i in range(stacks))

    def forward(self, x):
        """Every stack's heatmaps: a list of ``stacks`` tensors (B, K, H/4, W/4), first stack first."""
        inter = self.stem(x)  # (B, C, H/4, W/4)
        heatmaps = []
        for hourglass, supervision in zip(self.hourglasses, self.supervision):
            out, inter = supervision(inter, hourglass(inter))
            heatmaps.append(out)
        return heatmaps

    def predict(self, x):
        """The last stack's heatmaps (B, K, H/4, W/4)."""
        return self(x)[-1]
