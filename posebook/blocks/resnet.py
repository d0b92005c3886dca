"""ResNet residual units and backbone with torchvision's attribute names, so ImageNet weights load unchanged.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), §3.3 and Table 1; the stride sits on the 3x3
conv of the bottleneck ("ResNet v1.5"), as in torchvision and in the SimpleBaseline/HRNet code. The backbone gives
its multi-scale features C2..C5 with the API every posebook backbone shares, ``features(x) -> {stride: map}``
(``{4: C2, 8: C3, 16: C4, 32: C5}``) and ``feature_channels`` (``{stride: channels}``). Explained in chapter 07 (HRNet)
and used by SimpleBaseline, HRNet's ``layer1``, CPN and MSPN.
"""
from __future__ import annotations

from torch import Tensor, nn

BN_MOMENTUM = 0.1


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with padding 1 and no bias (a BatchNorm follows every conv in these networks)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def projection(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """The shortcut's 1x1 conv + BN used when a residual unit changes width or resolution (keys ``downsample.0/1``)."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a skip: relu(bn2(conv2(relu(bn1(conv1(x))))) + x). He et al. 2016, Fig. 2; chapter 07."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + skip)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4 (or to ``out_channels``), plus the skip; ReLU after the
    sum. He et al. 2016, Fig. 5; chapter 07."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 out_channels: int | None = None):
        super().__init__()
        out_channels = planes * self.expansion if out_channels is None else out_channels  # CPN's units set it
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = conv1x1(planes, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + skip)


def make_layer(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, blocks: int,
               stride: int = 1) -> nn.Sequential:
    """``blocks`` residual units in a row; the first one projects its shortcut when width or stride changes."""
    out_channels = planes * block.expansion
    downsample = projection(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
    layers = [block(in_channels, planes, stride, downsample)]
    layers += [block(out_channels, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def normal_init(modules, std: float = 0.001) -> None:
    """The MSRA pose code's initialisation (SimpleBaseline heads, all of HRNet): conv and deconv weights N(0, std),
    biases 0, BN weight 1 and bias 0 (HRNet's and SimpleBaseline's official ``init_weights``)."""
    for m in modules:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# depth -> (residual unit, units per stage conv2_x..conv5_x), He et al. 2016 Table 1
RESNET_SPECS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
FEATURE_STRIDES = (4, 8, 16, 32)  # C2..C5, the outputs of layer1..layer4


class ResNet(nn.Module):
    """The ResNet trunk without its classifier: ``forward`` gives C5 (stride 32); ``features`` gives C2..C5 by stride.
    ``width`` scales every stage's channels (64 = the paper's; the cpu studies use narrow ones).

    Attribute names equal torchvision's (conv1, bn1, layer1..layer4), so a torchvision ImageNet state_dict loads once
    its ``fc.*`` keys are dropped (:func:`posebook.weights.load_imagenet_resnet`). He et al. 2016 §3.4; chapter 07.
    """

    def __init__(self, depth: int = 50, width: int = 64):
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"ResNet depth={depth!r} is not one of {sorted(RESNET_SPECS)}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"ResNet width={width!r}: expected a positive int (64 is He et al.'s; smaller widths "
                             f"make the narrow networks of the cpu studies)")
        block, counts = RESNET_SPECS[depth]
        self.depth, self.width = depth, width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = (width, 2 * width, 4 * width, 8 * width)  # conv2_x..conv5_x: 64, 128, 256, 512 in the paper
        in_channels = width
        for i, (planes, count) in enumerate(zip(widths, counts)):
            setattr(self, f"layer{i + 1}", make_layer(block, in_channels, planes, count, stride=1 if i == 0 else 2))
            in_channels = planes * block.expansion
        # channels of features(x) by stride, for heads that attach to them (SimpleBaseline's deconvs, CPN's GlobalNet)
        self.feature_channels = {stride: w * block.expansion for stride, w in zip(FEATURE_STRIDES, widths)}
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation (He normal, fan-out) for training from scratch; ImageNet weights replace it
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)

    def features(self, x: Tensor) -> dict[int, Tensor]:
        """C2..C5 by stride, ``{4: C2, 8: C3, 16: C4, 32: C5}``: the outputs of layer1..layer4 (He et al. §3.4)."""
        c2 = self.layer1(self.stem(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return {4: c2, 8: c3, 16: c4, 32: self.layer4(c4)}

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[32]  # C5: (B, 512 * expansion, H/32, W/32)
