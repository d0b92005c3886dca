"""MSPN's blocks: the downsampling unit, the upsampling unit and cross-stage feature aggregation of one stage.

Li et al., "Rethinking on Multi-Stage Networks for Human Pose Estimation" (2019), §3 (the single-stage module: a
ResNet downsampling unit and a light upsampling unit; cross-stage feature aggregation), wired as the official code
(megvii-research/MSPN) wires them where the paper leaves details open; each docstring says where. Maps travel as
``{stride: map}`` (strides 4, 8, 16, 32: C2..C5), the backbone API every posebook block shares. Chapter 06 (MSPN).
"""
from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn

from .cpn import GlobalNet, _check_map, resize
from .resnet import BN_MOMENTUM, FEATURE_STRIDES, ResNet, conv1x1


def conv_bn(in_channels: int, out_channels: int, relu: bool) -> nn.Sequential:
    """A 1x1 conv + BN (+ ReLU): the official MSPN code's ``conv_bn_relu`` with kernel 1. Li et al. 2019, §3;
    chapter 06. The official conv also has a bias, which the BN after it cancels: left out here."""
    layers = [conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _default_init(module: nn.Module) -> None:
    # the official MSPN code leaves every conv outside the downsampling unit at PyTorch's default initialisation
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            m.reset_parameters()


def _check_features(features, what: str, channels: Mapping[int, int]) -> dict[int, Tensor]:
    if not isinstance(features, Mapping) or sorted(features) != sorted(channels):
        got = sorted(features) if isinstance(features, Mapping) else type(features).__name__
        raise ValueError(f"{what}: expected {{stride: map}} with strides {sorted(channels)}, got {got}")
    for stride, c in channels.items():
        _check_map(features[stride], f"{what}[{stride}]", c)
    return dict(features)


class DownsamplingUnit(nn.Module):
    """One stage's downsampling unit: ResNet-``depth``'s layer1..layer4 on a (B, ``width``, H/4, W/4) map, giving
    C2..C5 by stride; a later stage adds the cross-stage skips to each layer's output. Li et al. 2019, §3; chapter 06.

    As the official code: every stage starts at layer1 from a ``width``-channel map at 1/4 resolution (no stem of its
    own), and a skip is added to a layer's *output*, before that output feeds the next layer. Layers, attribute
    names and initialisation are :class:`ResNet`'s, so a torchvision ResNet's ``layer1..4`` keys match each stage's.
    """

    def __init__(self, depth: int = 50, width: int = 64):
        super().__init__()
        trunk = ResNet(depth, width)  # checks depth and width; its stem is not used
        self.depth, self.width = depth, width
        self.layer1, self.layer2, self.layer3, self.layer4 = trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4
        #: channels of the outputs by stride: {4: 256, 8: 512, 16: 1024, 32: 2048} for ResNet-50 at width 64
        self.feature_channels = dict(trunk.feature_channels)

    def forward(self, x: Tensor, skips: Mapping[int, Tensor] | None = None) -> dict[int, Tensor]:
        """``{stride: map}`` of layer1..layer4, with ``skips[stride]`` (if given) added to each layer's output."""
        _check_map(x, "DownsamplingUnit input", self.width)
        if skips is not None:
            expected = {s: self.feature_channels[s] for s in FEATURE_STRIDES}
            if not isinstance(skips, Mapping) or sorted(skips) != sorted(expected):
                got = sorted(skips) if isinstance(skips, Mapping) else type(skips).__name__
                raise ValueError(f"DownsamplingUnit skips: expected {{stride: map}} with strides {sorted(expected)}, "
                                 f"got {got}")
        out: dict[int, Tensor] = {}
        for stride, layer in zip(FEATURE_STRIDES, (self.layer1, self.layer2, self.layer3, self.layer4)):
            x = layer(x)
            if skips is not None:
                if not isinstance(skips[stride], Tensor) or skips[stride].shape != x.shape:
                    got = tuple(skips[stride].shape) if isinstance(skips[stride], Tensor) else type(skips[stride])
                    raise ValueError(f"DownsamplingUnit skips[{stride}] has shape {got}; expected layer "
                                     f"{FEATURE_STRIDES.index(stride) + 1}'s output shape {tuple(x.shape)}")
                x = x + skips[stride]  # to the layer's output: the next layer sees the sum
            out[stride] = x
        return out


class UpsamplingUnit(GlobalNet):
    """One stage's upsampling unit: a four-level top-down path like CPN's GlobalNet, each level predicting heatmaps
    resized to the finest level's size. Li et al. 2019, §3; chapter 06.

    As the official code: level k is relu(BN(conv1x1(C_k)) + BN(conv1x1(upsample(level k+1)))), with a BN on both
    branches and the ReLU after the sum (GlobalNet has no BN on the merge and no ReLU after it); its predictor is
    GlobalNet's (1x1 conv + BN + ReLU, 3x3 conv + BN). The official code upsamples with ``align_corners=True``; we
    keep the book's half-pixel resize (CPN's, chapter 05), under which a pixel of a stride-s map covers s input px.
    ``forward`` returns the levels and the heatmaps, both coarse to fine.
    """

    def __init__(self, in_channels=(256, 512, 1024, 2048), channels: int = 256, num_joints: int = 17):
        in_channels = tuple(in_channels)
        if len(in_channels) < 1 or not all(isinstance(c, int) and c > 0 for c in in_channels):
            raise ValueError(f"UpsamplingUnit in_channels={in_channels!r}: expected positive ints, one per level "
                             f"(C2..C5: (256, 512, 1024, 2048) for ResNet-50)")
        for name, value in (("channels", channels), ("num_joints", num_joints)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"UpsamplingUnit {name}={value!r}: expected a positive int")
        super().__init__(in_channels, channels, num_joints)
        coarse_to_fine = in_channels[::-1]
        self.lateral = nn.ModuleList(conv_bn(c, channels, relu=False) for c in coarse_to_fine)  # official u_skip
        self.merge = nn.ModuleList(conv_bn(channels, channels, relu=False) for _ in coarse_to_fine[1:])  # up_conv
        self.relu = nn.ReLU()
        _default_init(self)

    def pyramid(self, features) -> list[Tensor]:
        """The levels, coarse to fine: relu(lateral(C_k) + merge(upsample(level k+1))). MSPN §3; chapter 06."""
        levels: list[Tensor] = []
        for lateral, c in zip(self.lateral, self.levels(features)):
            total = lateral(c)
            if levels:
                total = total + self.merge[len(levels) - 1](resize(levels[-1], total.shape[-2:]))
            levels.append(self.relu(total))
        return levels


class CrossStageFeatureAggregation(nn.Module):
    """Cross-stage feature aggregation: at each stride, a 1x1 conv + BN + ReLU of the previous stage's downsampling
    feature and one of its upsampling level, both to the downsampling unit's width there; the next stage adds both to
    its own downsampling output at that stride. Li et al. 2019, §3 (cross stage feature aggregation); chapter 06.

    As the official code (``skip1`` from the downsampling feature C_k -> C_k, ``skip2`` from the upsampling level
    ``channels`` -> C_k); :class:`DownsamplingUnit` adds their sum to layer k's output.
    """

    def __init__(self, feature_channels: Mapping[int, int] | None = None, channels: int = 256):
        super().__init__()
        feature_channels = dict(feature_channels or {4: 256, 8: 512, 16: 1024, 32: 2048})
        if sorted(feature_channels) != list(FEATURE_STRIDES) or not all(
                isinstance(c, int) and c > 0 for c in feature_channels.values()):
            raise ValueError(f"CrossStageFeatureAggregation feature_channels={feature_channels!r}: expected {{stride: "
                             f"channels}} for strides {list(FEATURE_STRIDES)} (a DownsamplingUnit's feature_channels)")
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"CrossStageFeatureAggregation channels={channels!r}: expected a positive int (the "
                             f"upsampling unit's width, 256 in MSPN)")
        self.feature_channels, self.channels = feature_channels, channels
        self.down_skip = nn.ModuleDict({str(s): conv_bn(c, c, relu=True) for s, c in feature_channels.items()})
        self.up_skip = nn.ModuleDict({str(s): conv_bn(channels, c, relu=True) for s, c in feature_channels.items()})
        _default_init(self)

    def forward(self, down: Mapping[int, Tensor], up: Mapping[int, Tensor]) -> dict[int, Tensor]:
        """``{stride: down_skip(down[stride]) + up_skip(up[stride])}``, what the next stage adds at each stride."""
        down = _check_features(down, "CrossStageFeatureAggregation down", self.feature_channels)
        up = _check_features(up, "CrossStageFeatureAggregation up", {s: self.channels for s in self.feature_channels})
        return {s: self.down_skip[str(s)](down[s]) + self.up_skip[str(s)](up[s]) for s in FEATURE_STRIDES}


class SingleStageModule(nn.Module):
    """One MSPN stage: a :class:`DownsamplingUnit` and an :class:`UpsamplingUnit` emitting four heatmaps; a stage
    that feeds another also makes the next stage's input and, with ``aggregation``, its cross-stage skips. Li et al.
    2019, §3 (the single-stage module and cross stage feature aggregation); chapter 06.

    As the official code: the next stage's input is ``cross_conv`` (1x1 conv + BN + ReLU, ``channels`` -> ``width``)
    of this stage's finest upsampling level, not the stem's output; ``aggregation=False`` keeps that input and drops
    the skips (the paper's ablation without cross stage feature aggregation).
    """

    def __init__(self, depth: int = 50, width: int = 64, channels: int = 256, num_joints: int = 17,
                 feeds_next: bool = False, aggregation: bool = True):
        super().__init__()
        for name, value in (("feeds_next", feeds_next), ("aggregation", aggregation)):
            if not isinstance(value, bool):
                raise ValueError(f"SingleStageModule {name}={value!r}: expected True or False")
        self.downsample = DownsamplingUnit(depth, width)
        strides = sorted(self.downsample.feature_channels)
        self.upsample = UpsamplingUnit(tuple(self.downsample.feature_channels[s] for s in strides), channels,
                                       num_joints)
        self.cross_conv = conv_bn(channels, width, relu=True) if feeds_next else None
        self.aggregation = (CrossStageFeatureAggregation(self.downsample.feature_channels, channels)
                            if feeds_next and aggregation else None)
        if self.cross_conv is not None:
            _default_init(self.cross_conv)

    def levels(self, x: Tensor, skips: Mapping[int, Tensor] | None = None) -> tuple[dict[int, Tensor], list[Tensor]]:
        """The downsampling unit's ``{stride: map}`` (skips added) and the upsampling levels, coarse to fine. MSPN
        §3; chapter 06."""
        down = self.downsample(x, skips)
        return down, self.upsample.pyramid(down)

    def handoff(self, down: Mapping[int, Tensor], levels: list[Tensor]) -> tuple[Tensor | None, dict | None]:
        """What the next stage takes: its input (``cross_conv`` of the finest level) and its skips (``None`` without
        aggregation); ``(None, None)`` for a last stage. MSPN §3; chapter 06."""
        if self.cross_conv is None:
            return None, None
        skips = None
        if self.aggregation is not None:
            up = dict(zip(sorted(down), levels[::-1]))  # the levels are coarse to fine, the strides fine to coarse
            skips = self.aggregation(down, up)
        return self.cross_conv(levels[-1]), skips

    def forward(self, x: Tensor, skips: Mapping[int, Tensor] | None = None):
        """(four heatmaps coarse to fine, each (B, K, H/4, W/4); the next stage's input; its skips)."""
        down, levels = self.levels(x, skips)
        return (self.upsample.heatmaps(levels), *self.handoff(down, levels))
