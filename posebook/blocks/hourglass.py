"""The hourglass and the intermediate-supervision step of the Stacked Hourglass (Newell et al., ECCV 2016, §3).

``Hourglass(order, channels)`` is built recursively (§3.1, Fig. 3); ``IntermediateSupervision`` is what follows each
hourglass: features, a supervised prediction and the merge back into the next stack's input (§3.3, Fig. 4 right);
the residual module they are made of is §3.2's. Explained in chapter 03 (Stacked Hourglass).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .residual import Residual

POOLS = ("max", "avg", "conv")


def downsample(kind: str, channels: int) -> nn.Module:
    """Halve the resolution: the paper's 2x2 max-pool (Newell et al. §3.1), or an average pool / strided 3x3 conv for
    chapter 03's ablation."""
    if kind == "max":
        return nn.MaxPool2d(2, 2)
    if kind == "avg":
        return nn.AvgPool2d(2, 2)
    if kind == "conv":
        return nn.Conv2d(channels, channels, 3, stride=2, padding=1)
    raise ValueError(f"pool={kind!r} is not a pooling choice; expected one of {POOLS}")


class Hourglass(nn.Module):
    """One hourglass of recursion ``order``: a residual skip at this resolution plus a half-resolution branch.

    up1 = Residual(x); low1 = Residual(pool(x)); low2 = Hourglass(order - 1) or Residual; low3 = Residual;
    output = up1 + nearest-upsample(low3). Order 4 takes a 64x64 map down to 4x4. Newell et al. §3.1; chapter 03.
    """

    def __init__(self, order: int, channels: int, pool: str = "max"):
        super().__init__()
        if order < 1:
            raise ValueError(f"Hourglass order must be >= 1, got {order}")
        self.order = order
        self.up1 = Residual(channels, channels)
        self.pool = downsample(pool, channels)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(order - 1, channels, pool) if order > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)

    def forward(self, x):
        up1 = self.up1(x)                            # (B, C, H, W)
        low = self.low3(self.low2(self.low1(self.pool(x))))  # (B, C, H/2, W/2)
        # nearest x2 as in the paper; sizing to up1 also covers odd sizes (e.g. a 24-wide map: 3 -> 1 -> 3)
        up2 = F.interpolate(low, size=up1.shape[-2:], mode="nearest")
        return up1 + up2


class IntermediateSupervision(nn.Module):
    """After one hourglass: features (ll), the supervised heatmaps (tmpOut) and, unless last, the merge.

    ll = lin(Residual(hg)) with lin = 1x1 conv-BN-ReLU; tmpOut = 1x1 conv to the joints; next input =
    inter + conv1x1(ll) + conv1x1(tmpOut) (plain 1x1 convs). Newell et al. §3.3, Fig. 4 right; chapter 03.
    """

    def __init__(self, channels: int, num_joints: int, merge: bool = True):
        super().__init__()
        self.residual = Residual(channels, channels)
        self.lin = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.tmp_out = nn.Conv2d(channels, num_joints, 1)
        # the Torch code's ll_ and tmpOut_: map features and predictions back to the stack's width
        self.merge_features = nn.Conv2d(channels, channels, 1) if merge else None
        self.merge_preds = nn.Conv2d(num_joints, channels, 1) if merge else None

    def forward(self, inter, hg):
        """Return (heatmaps (B, K, H, W), the next stack's input (B, C, H, W) or None for the last stack)."""
        ll = self.lin(self.residual(hg))
        heatmaps = self.tmp_out(ll)
        if self.merge_features is None:
            return heatmaps, None
        return heatmaps, inter + self.merge_features(ll) + self.merge_preds(heatmaps)
