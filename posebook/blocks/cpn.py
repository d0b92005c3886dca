"""CPN's blocks, GlobalNet and RefineNet, and the non-local block that can sit on their C5 input.

Chen et al., "Cascaded Pyramid Network for Multi-Person Pose Estimation" (CVPR 2018), §3.2.1 (GlobalNet) and §3.2.2
(RefineNet), wired as the official TensorFlow code wires them where the paper leaves details open (said in each
docstring); Wang et al., "Non-local Neural Networks" (CVPR 2018), §3.2-3.3, for :class:`NonLocalBlock`.
Levels are listed coarse to fine (C5, C4, C3, C2), the top-down order GlobalNet computes them in. Chapter 05 (CPN).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .resnet import BN_MOMENTUM, Bottleneck, conv1x1, conv3x3, projection


def resize(x: Tensor, size) -> Tensor:
    """Bilinear resize of a (B, C, h, w) map to ``size`` (H, W); a no-op when the size already matches. CPN §3.2;
    chapter 05."""
    size = tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    # half-pixel centres (PyTorch's align_corners=False): pixel i of a stride-s map covers input px s*i..s*(i+1).
    # The official TF1 code's resize_bilinear samples at i * in / out instead, a fraction of a pixel up and left.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _check_map(x, what: str, channels: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected a (B, C, H, W) tensor, got {shape}")
    if x.shape[1] != channels:
        raise ValueError(f"{what} has {x.shape[1]} channels; expected {channels}")


class RefineBottleneck(Bottleneck):
    """ResNet's :class:`~posebook.blocks.resnet.Bottleneck` with free widths: 1x1 (to ``mid_channels``) + BN + ReLU,
    3x3 + BN + ReLU, 1x1 (to ``out_channels``) + BN, plus the shortcut, ReLU.

    The shortcut is the identity when widths match (RefineNet's 256 -> 128 -> 256 units) and a 1x1 conv + BN
    projection otherwise (the final unit after the concatenation), as in the official CPN code (Chen et al.,
    CVPR 2018, §3.2.2). Chapter 05.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int):
        downsample = projection(in_channels, out_channels) if in_channels != out_channels else None
        super().__init__(in_channels, mid_channels, downsample=downsample, out_channels=out_channels)


class GlobalNet(nn.Module):
    """CPN's feature pyramid: 1x1 lateral convs on C2..C5, a top-down path (upsample, 1x1 conv, add) and one
    heatmap predictor per level, each resized to the finest level's size. Chen et al., CVPR 2018, §3.2.1; chapter 05.

    As the official code (the paper names only the 1x1 conv before each sum and the per-level heatmap convs):
    lateral = 1x1 conv + BN + ReLU; merge = bilinear upsample of the coarser level, then a 1x1 conv with bias and
    no BN or ReLU, added to the lateral (no ReLU after the sum); predictor = 1x1 conv + BN + ReLU, 3x3 conv to
    ``num_joints`` + BN, bilinear resize. Where the paper puts the heatmap convs (and RefineNet) on C2..C5, the code
    puts them on the merged pyramid levels: followed here. ``in_channels`` are C2..C5's (ascending stride, as
    ``ResNet.feature_channels``); ``forward`` returns the pyramid and the heatmaps, both coarse to fine.
    """

    def __init__(self, in_channels: Sequence[int] = (256, 512, 1024, 2048), channels: int = 256,
                 num_joints: int = 17):
        super().__init__()
        in_channels = tuple(in_channels)
        if len(in_channels) < 1 or not all(isinstance(c, int) and c > 0 for c in in_channels):
            raise ValueError(f"GlobalNet in_channels={in_channels!r}: expected positive ints, one per level "
                             f"(C2..C5: (256, 512, 1024, 2048) for ResNet-50)")
        for name, value in (("channels", channels), ("num_joints", num_joints)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GlobalNet {name}={value!r}: expected a positive int")
        self.in_channels, self.channels, self.num_joints = in_channels, channels, num_joints
        coarse_to_fine = in_channels[::-1]
        self.lateral = nn.ModuleList(
            nn.Sequential(conv1x1(c, channels), nn.BatchNorm2d(channels, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
            for c in coarse_to_fine)
        # merge[i - 1] brings level i - 1 (coarser) into level i; bias and no BN, as in the official code
        self.merge = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in coarse_to_fine[1:])
        self.predictor = nn.ModuleList(
            nn.Sequential(conv1x1(channels, channels), nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
                          nn.ReLU(inplace=True),
                          conv3x3(channels, num_joints), nn.BatchNorm2d(num_joints, momentum=BN_MOMENTUM))
            for _ in coarse_to_fine)
        _init_xavier(self)

    def levels(self, features: Mapping[int, Tensor] | Sequence[Tensor]) -> list[Tensor]:
        """The backbone's maps coarse to fine, from ``{stride: map}`` (``ResNet.features``) or a list ordered like
        ``in_channels`` (C2..C5), each checked against ``in_channels``. CPN §3.2.1; chapter 05."""
        if isinstance(features, Mapping):
            strides = sorted(features)
            maps = [features[s] for s in strides]
            names = [f"features[{s}]" for s in strides]
        elif isinstance(features, (list, tuple)):
            maps, names = list(features), [f"features[{i}]" for i in range(len(features))]
        else:
            raise TypeError(f"GlobalNet expects {{stride: map}} or a list of maps, got {type(features).__name__}")
        if len(maps) != len(self.in_channels):
            raise ValueError(f"GlobalNet got {len(maps)} feature maps; in_channels={self.in_channels} expects "
                             f"{len(self.in_channels)} (C2..C5, finest first)")
        for x, name, c in zip(maps, names, self.in_channels):
            _check_map(x, f"GlobalNet {name}", c)
        return maps[::-1]

    def pyramid(self, features: Mapping[int, Tensor] | Sequence[Tensor]) -> list[Tensor]:
        """The top-down path: P5 = lateral(C5); P_k = lateral(C_k) + merge(upsample(P_{k+1})). Coarse to fine.
        CPN §3.2.1; chapter 05."""
        out: list[Tensor] = []
        for i, c in enumerate(self.levels(features)):
            p = self.lateral[i](c)
            if out:
                p = p + self.merge[i - 1](resize(out[-1], p.shape[-2:]))
            out.append(p)
        return out

    def heatmaps(self, pyramid: Sequence[Tensor]) -> list[Tensor]:
        """One heatmap per level, each resized to the finest level's size (B, K, H/4, W/4). CPN §3.2.1; chapter 05."""
        size = pyramid[-1].shape[-2:]
        return [resize(head(p), size) for head, p in zip(self.predictor, pyramid)]

    def forward(self, features: Mapping[int, Tensor] | Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        pyramid = self.pyramid(features)
        return pyramid, self.heatmaps(pyramid)


class RefineNet(nn.Module):
    """CPN's RefineNet: ``bottlenecks[i]`` units on level i (coarse to fine: 3 on C5, 2 on C4, 1 on C3, 0 on C2),
    every level upsampled to the finest and **concatenated**, then one more bottleneck and a 3x3 conv (+ BN) to the
    heatmaps. Chen et al., CVPR 2018, §3.2.2 and Fig. 1; chapter 05.

    The counts are the paper's figure's and the official code's (which adds i units to C_{i+2}, so none on C2). Units
    are 256 -> 128 -> 256 with an identity shortcut; the final one 1024 -> 128 -> 256 with a projection.
    """

    def __init__(self, channels: int = 256, num_joints: int = 17, bottlenecks: Sequence[int] = (3, 2, 1, 0)):
        super().__init__()
        bottlenecks = tuple(bottlenecks)
        if not bottlenecks or not all(isinstance(n, int) and n >= 0 for n in bottlenecks):
            raise ValueError(f"RefineNet bottlenecks={bottlenecks!r}: expected one count >= 0 per level, coarse to "
                             f"fine (CPN: (3, 2, 1, 0))")
        for name, value in (("channels", channels), ("num_joints", num_joints)):
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"RefineNet {name}={value!r}: expected an int >= 2")
        self.channels, self.num_joints, self.bottlenecks = channels, num_joints, bottlenecks
        mid = channels // 2
        self.branches = nn.ModuleList(
            nn.Sequential(*(RefineBottleneck(channels, mid, channels) for _ in range(n))) for n in bottlenecks)
        #: width of the concatenation: every level's ``channels`` side by side
        self.concat_channels = channels * len(bottlenecks)
        self.final_bottleneck = RefineBottleneck(self.concat_channels, mid, channels)
        self.final_layer = nn.Sequential(conv3x3(channels, num_joints),
                                         nn.BatchNorm2d(num_joints, momentum=BN_MOMENTUM))
        _init_refine(self)

    def concatenated(self, pyramid: Sequence[Tensor]) -> Tensor:
        """Each level through its bottlenecks, upsampled to the finest level, concatenated: (B, levels x C, H/4,
        W/4). CPN §3.2.2; chapter 05."""
        if not isinstance(pyramid, (list, tuple)) or len(pyramid) != len(self.branches):
            got = len(pyramid) if isinstance(pyramid, (list, tuple)) else type(pyramid).__name__
            raise ValueError(f"RefineNet expects a list of {len(self.branches)} maps (coarse to fine, as GlobalNet "
                             f"gives them), got {got}")
        for i, p in enumerate(pyramid):
            _check_map(p, f"RefineNet pyramid[{i}]", self.channels)
        size = pyramid[-1].shape[-2:]
        return torch.cat([resize(branch(p), size) for branch, p in zip(self.branches, pyramid)], dim=1)

    def forward(self, pyramid: Sequence[Tensor]) -> Tensor:
        return self.final_layer(self.final_bottleneck(self.concatenated(pyramid)))


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block: z = x + W(softmax(theta(x)^T phi(x)) g(x)), every position attending to
    all. Wang et al., "Non-local Neural Networks" (CVPR 2018), §3.2-3.3; chapter 05 places it at CPN's C5.

    theta, phi, g are 1x1 convs to ``inter_channels`` (default ``channels // 2``, the paper's); W is a 1x1 conv
    + BN whose scale starts at zero, so the block starts as the identity (§3.3). No 1/sqrt(d) scaling, as Eq. 1 and 3.
    """

    def __init__(self, channels: int, inter_channels: int | None = None):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"NonLocalBlock channels={channels!r}: expected a positive int")
        inter = max(channels // 2, 1) if inter_channels is None else inter_channels
        if not isinstance(inter, int) or inter < 1:
            raise ValueError(f"NonLocalBlock inter_channels={inter_channels!r}: expected a positive int")
        self.channels, self.inter_channels = channels, inter
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.W = nn.Sequential(nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels, momentum=BN_MOMENTUM))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def affinity(self, x: Tensor) -> Tensor:
        """f(x_i, x_j) / C(x) for every pair of positions: (B, HW, HW), each row a softmax (sums to 1). Wang et al.
        §3.2, Eq. 1 and 3; chapter 05."""
        _check_map(x, "NonLocalBlock input", self.channels)
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        phi = self.phi(x).flatten(2)  # (B, C', HW)
        return torch.softmax(theta @ phi, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        f = self.affinity(x)  # checks x is (B, channels, H, W)
        b, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        y = (f @ g).transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return x + self.W(y)


def _init_xavier(module: nn.Module) -> None:
    # the official code's GlobalNet convs: Xavier (uniform) weights, zero biases; BN scale 1, shift 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _init_refine(module: "RefineNet") -> None:
    # the official code: bottleneck convs He-normal (fan in, its ResNet scope's default), the output conv Xavier
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.xavier_uniform_(module.final_layer[0].weight)
