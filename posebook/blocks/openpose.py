"""OpenPose's blocks: the VGG-19 front that makes the features F, the CVPR'17 two-branch stage, and the TPAMI'19 stage
built of concatenated 3x3 blocks.

Cao, Simon, Wei, Sheikh, "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields" (CVPR 2017, §2.1,
Fig. 3) and Cao et al., "OpenPose: Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields" (TPAMI 2019,
§3.1, Fig. 3). Layer names inside the blocks are the CMU prototxts' (``conv1_1`` .. ``conv4_4_CPM``; ``Mconv``
blocks ``_0``, ``_1``, ``_2``). Every channel count is an argument, so the models can build narrow variants.
Explained in chapter 08 (OpenPose).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

# VGG-19's convolutions up to conv4_2 ("the first 10 layers of VGG-19", CVPR'17 §2.1): (name, output channels) of
# each 3x3 conv, None for a 2x2 max-pool of stride 2. Three pools: F is at stride 8.
VGG19_FIRST_10 = (("conv1_1", 64), ("conv1_2", 64), ("pool1_stage1", None),
                  ("conv2_1", 128), ("conv2_2", 128), ("pool2_stage1", None),
                  ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), ("pool3_stage1", None),
                  ("conv4_1", 512), ("conv4_2", 512))
# the two layers the CMU models add after conv4_2 to make F: 512 -> 256 -> 128
CPM_LAYERS = (("conv4_3_CPM", 256), ("conv4_4_CPM", 128))
# the front's convs that BODY_25 follows with a PReLU (the others keep their ReLU)
BODY_25_PRELU = ("conv4_2", "conv4_3_CPM", "conv4_4_CPM")
# torchvision's ``vgg19().features`` index of each of the first 10 convs (each conv is followed by a ReLU, each
# stage by a pool), for loading ImageNet weights into the front: ``features.{i}.weight`` -> ``{name}.weight``
VGG19_TORCHVISION_INDEX = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10, "conv3_2": 12,
                           "conv3_3": 14, "conv3_4": 16, "conv4_1": 19, "conv4_2": 21}


def scaled(channels: int, width: float) -> int:
    """``channels`` x ``width``, rounded, at least 1: how the narrow (CPU) variants shrink every layer. Chapter 08
    (OpenPose, Cao et al.)."""
    return max(1, int(round(channels * width)))


def _activation(prelu: bool, channels: int) -> nn.Module:
    # Caffe's PReLU has one slope per channel, initialised at 0.25 (as nn.PReLU)
    return nn.PReLU(channels) if prelu else nn.ReLU(inplace=True)


class VGG19Front(nn.Sequential):
    """The features F (B, 128 x width, H/8, W/8): VGG-19's conv1_1..conv4_2 (3x3, ReLU, three 2x2 max-pools), then
    conv4_3_CPM (256) and conv4_4_CPM (128), 3x3 + activation.

    CVPR'17 §2.1 ("the first 10 layers of VGG-19"): ReLU everywhere. ``prelu=True`` is TPAMI'19's BODY_25 front:
    ReLU on conv1_1..conv4_1, PReLU on conv4_2, conv4_3_CPM and conv4_4_CPM. ``width`` scales every channel count.
    Children are named as in the CMU prototxts (``conv1_1``, ``relu1_1``, ``pool1_stage1``, ...); chapter 08.
    """

    def __init__(self, width: float = 1.0, prelu: bool = False):
        layers, channels = OrderedDict(), 3
        for name, out in VGG19_FIRST_10 + CPM_LAYERS:
            if out is None:
                layers[name] = nn.MaxPool2d(2, 2)
                continue
            out = scaled(out, width)
            with_prelu = prelu and name in BODY_25_PRELU
            layers[name] = nn.Conv2d(channels, out, 3, padding=1)
            layers[("prelu" if with_prelu else "relu") + name[len("conv"):]] = _activation(with_prelu, out)
            channels = out
        super().__init__(layers)
        self.out_channels = channels  # F's channels: 128 x width

    def vgg19_state_dict(self, torchvision_state: dict[str, Tensor]) -> dict[str, Tensor]:
        """ImageNet VGG-19 weights (torchvision ``vgg19().state_dict()``, ``features.*`` keys) renamed to this
        front's conv1_1..conv4_2, checked shape by shape; load with ``strict=False`` (the CPM layers and PReLU slopes
        stay as they are). The CMU code initialises the front this way (CVPR'17 §2.1); chapter 08."""
        out = {}
        for name, index in VGG19_TORCHVISION_INDEX.items():
            for kind in ("weight", "bias"):
                key = f"features.{index}.{kind}"
                if key not in torchvision_state:
                    raise KeyError(f"VGG19Front.vgg19_state_dict: {key} (for {name}) is missing; expected "
                                   f"torchvision's vgg19().state_dict()")
                mine = getattr(self, name)
                value = torchvision_state[key]
                if value.shape != getattr(mine, kind).shape:
                    raise ValueError(f"VGG19Front.vgg19_state_dict: {key} has shape {tuple(value.shape)} but "
                                     f"{name}.{kind} has {tuple(getattr(mine, kind).shape)} (width 1.0 only)")
                out[f"{name}.{kind}"] = value
        return out


class ResNetFront(nn.Module):
    """A stand-in front for CPU training: the features F (B, ``out_channels``, H/8, W/8) from a ResNet-50 trunk cut at
    C3 (``conv1``, ``bn1``, ``layer1``, ``layer2``: stride 8, as VGG-19's conv4_2), then ``conv_cpm``, a 3x3 conv +
    ReLU to ``out_channels`` (the role of conv4_3_CPM/conv4_4_CPM).

    Why it exists: the official code starts the VGG-19 front from ImageNet, which this book cannot ship; what it ships
    is a ResNet-50 trunk at ``trunk_width`` 16 pretrained on synthetic people (:func:`posebook.learn.pretrained_trunk`),
    whose C3 is 128 channels at stride 8, F's place. :meth:`load_trunk` loads it. Not the paper's front: chapter 08
    says so where it trains one.
    """

    def __init__(self, out_channels: int = 128, trunk_width: int = 16):
        super().__init__()
        from posebook.blocks.resnet import ResNet

        trunk = ResNet(50, trunk_width)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2 = trunk.layer1, trunk.layer2
        self.conv_cpm = nn.Conv2d(trunk.feature_channels[8], out_channels, 3, padding=1)
        self.relu_cpm = nn.ReLU(inplace=True)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        c3 = self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x))))))  # C3: (B, 8 x trunk_width, H/8, W/8)
        return self.relu_cpm(self.conv_cpm(c3))

    def load_trunk(self, state: dict[str, Tensor], source: str = "trunk") -> "ResNetFront":
        """Load a ResNet trunk's ``conv1``, ``bn1``, ``layer1`` and ``layer2`` (torchvision names, as
        :func:`posebook.learn.pretrain_trunk` saves them; ``layer3``/``layer4`` are not used). Every key of those
        parts must be present and fit; ``conv_cpm`` keeps its initialisation."""
        parts = ("conv1", "bn1", "layer1", "layer2")
        own = self.state_dict()
        wanted = {k for k in own if k.split(".")[0] in parts}
        given = {k: v for k, v in state.items() if k.split(".")[0] in parts}
        missing, extra = sorted(wanted - set(given)), sorted(set(given) - wanted)
        wrong = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in given.items()
                 if k in own and v.shape != own[k].shape]
        if missing or extra or wrong:
            raise ValueError(f"ResNetFront.load_trunk: {source} does not fit (missing {missing[:3]}, unexpected "
                             f"{extra[:3]}, shapes {wrong[:3]}); expected a ResNet-50 trunk of this width")
        self.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in given.items()}})
        return self


def conv_relu_branch(in_channels: int, out_channels: int, kernel: int, convs: int, channels: int,
                     mid_channels: int) -> nn.Sequential:
    """One CVPR'17 branch: ``convs`` x (kernel x kernel, ``channels``) + 1x1 ``mid_channels``, each + ReLU, then the
    1x1 ``output`` conv with no activation. Cao et al., CVPR 2017, Fig. 3; chapter 08."""
    layers, c = OrderedDict(), in_channels
    for i in range(1, convs + 1):
        layers[f"conv{i}"] = nn.Conv2d(c, channels, kernel, padding=kernel // 2)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        c = channels
    layers[f"conv{convs + 1}"] = nn.Conv2d(c, mid_channels, 1)
    layers[f"relu{convs + 1}"] = nn.ReLU(inplace=True)
    layers["output"] = nn.Conv2d(mid_channels, out_channels, 1)  # the maps themselves: no activation
    return nn.Sequential(layers)


class TwoBranchStage(nn.Module):
    """A CVPR'17 stage: two branches read the same input; ``paf_branch`` (the prototxt's L1) predicts the PAFs,
    ``heatmap_branch`` (L2) the confidence maps. ``forward(x)`` returns (pafs, heatmaps).

    Stage 1 (reads F): 3 x (3x3, 128) + 1x1 512 + 1x1 out; stages 2-6 (read concat(L, S, F)): 5 x (7x7, 128) + 1x1 128
    + 1x1 out. ReLU after every conv except the outputs. Cao et al., CVPR 2017, §2.1, Fig. 3; chapter 08.
    """

    def __init__(self, in_channels: int, num_pafs: int, num_heatmaps: int, kernel: int, convs: int, channels: int,
                 mid_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.paf_branch = conv_relu_branch(in_channels, num_pafs, kernel, convs, channels, mid_channels)
        self.heatmap_branch = conv_relu_branch(in_channels, num_heatmaps, kernel, convs, channels, mid_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.paf_branch(x), self.heatmap_branch(x)


class Concat3x3Block(nn.Module):
    """TPAMI'19's replacement of a 7x7 conv: three chained 3x3 convs (``conv0`` -> ``conv1`` -> ``conv2``, each +
    PReLU) whose three outputs are concatenated (3 x ``channels``), DenseNet-like: the 7x7 receptive field at less
    cost, with the shallow features kept. Cao et al., TPAMI 2019, §3.1, Fig. 3; chapter 08."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv0, self.prelu0 = nn.Conv2d(in_channels, channels, 3, padding=1), nn.PReLU(channels)
        self.conv1, self.prelu1 = nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels)
        self.conv2, self.prelu2 = nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels)
        self.out_channels = 3 * channels

    def forward(self, x: Tensor) -> Tensor:
        a = self.prelu0(self.conv0(x))
        b = self.prelu1(self.conv1(a))
        c = self.prelu2(self.conv2(b))
        return torch.cat([a, b, c], dim=1)  # (B, 3 x channels, h, w)


class SingleBranchStage(nn.Sequential):
    """A TPAMI'19 stage, PAF or confidence-map: ``blocks`` x :class:`Concat3x3Block` (``channels`` wide), a 1x1
    ``mid_channels`` conv + PReLU, then the 1x1 ``output`` conv with no activation.

    BODY_25: the first stage of each kind is 96 wide with a 256 1x1; later ones 128 wide with a 512 1x1. Cao et al.,
    TPAMI 2019, §3.1, Fig. 3; chapter 08.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int, mid_channels: int, blocks: int = 5):
        layers, c = OrderedDict(), in_channels
        for i in range(1, blocks + 1):
            layers[f"Mconv{i}"] = block = Concat3x3Block(c, channels)
            c = block.out_channels
        layers[f"Mconv{blocks + 1}"] = nn.Conv2d(c, mid_channels, 1)
        layers[f"Mprelu{blocks + 1}"] = nn.PReLU(mid_channels)
        layers["output"] = nn.Conv2d(mid_channels, out_channels, 1)  # the maps themselves: no activation
        super().__init__(layers)
        self.in_channels = in_channels
