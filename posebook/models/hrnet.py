"""HRNet (Sun, Xiao, Liu, Wang, CVPR 2019): keep a high-resolution branch from start to end, add lower-resolution
branches in parallel stage by stage, and exchange information between them over and over.

Reads top to bottom: stem (two stride-2 3x3 convs) -> layer1 (4 Bottlenecks, 256 channels) -> transition1 ->
stage2 (1 module, 2 branches) -> transition2 -> stage3 (4 modules, 3 branches) -> transition3 -> stage4 (3 modules,
4 branches; the last returns only the high-resolution branch) -> final_layer (1x1 conv to K heatmaps at 1/4).
The layout is the paper's network instantiation (§3) and the official W32 configuration, passed in as an
:class:`HRNetConfig` (``HRNET_W32``, ``HRNET_W48``); two options build the §4.4 ablations: ``exchange`` (which
exchange units fuse, Table 6) and ``head_stride`` (which resolution the heatmaps are regressed from, Fig. 5).
Attribute names equal the official code's state_dict, so official checkpoints load with ``strict=True``.
Explained in chapter 07 (HRNet).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch.nn.functional as F
from torch import Tensor, nn

from posebook.blocks.hrnet import Transition, make_stage
from posebook.blocks.resnet import BN_MOMENTUM, Bottleneck, make_layer, normal_init


EXCHANGES = ("final", "across_stages", "all")  # Table 6's three rows, fewest fusions first
HEAD_STRIDES = (4, 8, 16, 32)  # the branches' strides: the head may read any of them (Fig. 5)


@dataclass(frozen=True)
class HRNetConfig:
    """HRNet's layout: widths C, 2C, 4C, 8C; modules of stages 2, 3, 4; residual units per branch; the stem.

    The official W32 is ``HRNetConfig(width=32)`` = ``HRNET_W32`` (paper §3, network instantiation).
    ``exchange`` picks Table 6's fusions: "all" (official, 8), "across_stages" (the last module of each stage,
    3) or "final" (the last module of stage 4 only, 1); True and False are "all" and "final". ``head_stride`` (4, 8,
    16, 32) is the branch the heatmaps are regressed from (Fig. 5); ``head_channels`` (default None, official: the
    1x1 head reads the branch as it is) puts a 1x1 conv + BN + ReLU to that many channels before the head, so heads
    reading branches of different widths (C at 1/4, 4C at 1/16) read equally wide features (the book's
    ``high_resolution`` study). ``stem_width`` and ``layer1_blocks`` shrink the
    stem and stage 1 for chapter 07's CPU profile (official 64 and 4). Chapter 07.
    """

    width: int = 32
    num_joints: int = 17
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    stage_blocks: int = 4
    exchange: str = "all"
    stem_width: int = 64
    layer1_blocks: int = 4
    head_stride: int = 4
    head_channels: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "stage_modules", tuple(int(m) for m in self.stage_modules))
        if len(self.stage_modules) != 3 or min(self.stage_modules) < 1:
            raise ValueError(f"HRNetConfig stage_modules must be three module counts >= 1 (stages 2, 3, 4), got "
                             f"{self.stage_modules}")
        small = {k: getattr(self, k) for k in ("width", "num_joints", "stage_blocks", "stem_width", "layer1_blocks")
                 if getattr(self, k) < 1}
        if small:
            raise ValueError("HRNetConfig needs width, num_joints, stage_blocks, stem_width and layer1_blocks >= 1, "
                             f"got {', '.join(f'{k}={v}' for k, v in small.items())}")
        if isinstance(self.exchange, bool):  # the earlier switch: True = every unit, False = only the final one
            object.__setattr__(self, "exchange", "all" if self.exchange else "final")
        if self.exchange not in EXCHANGES:
            raise ValueError(f"HRNetConfig exchange={self.exchange!r}; expected one of {EXCHANGES} (or True/False)")
        if self.head_stride not in HEAD_STRIDES or isinstance(self.head_stride, bool):
            raise ValueError(f"HRNetConfig head_stride={self.head_stride!r}; expected one of {HEAD_STRIDES}")
        if self.head_channels is not None and (isinstance(self.head_channels, bool) or
                                               not isinstance(self.head_channels, int) or self.head_channels < 1):
            raise ValueError(f"HRNetConfig head_channels={self.head_channels!r}; expected None or a channel count "
                             f">= 1")

    @classmethod
    def w32(cls, **changes) -> HRNetConfig:
        """HRNet-W32 (layout: paper §3, network instantiation; 28.5M params, 7.1 GFLOPs at 256x192 in Table 1), with
        optional ``changes``. Chapter 07."""
        return cls(width=32, **changes)

    @classmethod
    def w48(cls, **changes) -> HRNetConfig:
        """HRNet-W48 (layout: paper §3, network instantiation; 63.6M params, 14.6 GFLOPs at 256x192 in Table 1), with
        optional ``changes``. Chapter 07."""
        return cls(width=48, **changes)

    def channels(self, branches: int) -> list[int]:
        """The widths of the first ``branches`` branches: C, 2C, 4C, ..."""
        return [self.width * 2 ** b for b in range(branches)]


HRNET_W32 = HRNetConfig.w32()
HRNET_W48 = HRNetConfig.w48()


class HRNet(nn.Module):
    """HRNet for top-down pose, built from an :class:`HRNetConfig`: ``forward(x)`` returns heatmaps (B, K, H/4, W/4).

    ``features(x)`` is the backbone API shared with ResNet: ``{4: ..., 8: ..., 16: ..., 32: ...}`` by stride, the
    four branches of stage 4 (at ``head_stride``, official 4: the fused map the head reads; the others as they enter
    that last fusion). ``branches(x)`` gives every stage's branch outputs for chapter 07's dissection.

    ``exchange`` other than "all" (Table 6): the exchange units it leaves out keep only their identity paths, so the
    branches run in parallel there; the last unit always fuses every branch into the one the head reads (otherwise
    the other branches could not reach the output). ``head_stride`` > 4 (Fig. 5): the 1x1 head reads that branch
    and its heatmaps are upsampled bilinearly to 1/4, sample i at position i x 4 / head_stride (the codec's x / stride
    convention), so every variant is trained on the same targets and decoded alike. Paper §3, §4.4; chapter 07.
    """

    def __init__(self, config: HRNetConfig = HRNET_W32):
        super().__init__()
        if not isinstance(config, HRNetConfig):
            raise TypeError(f"HRNet takes an HRNetConfig (e.g. HRNET_W32, HRNetConfig(width=8)), got "
                            f"{type(config).__name__}; create('hrnet', width=...) builds one from keywords")
        self.config = cfg = config
        c2, c3, c4 = cfg.channels(2), cfg.channels(3), cfg.channels(4)
        m2, m3, m4 = cfg.stage_modules
        within = cfg.exchange == "all"  # the units inside a stage (all but its last module)
        at_stage_end = cfg.exchange != "final"  # the last module of stages 2 and 3
        self.head_branch = HEAD_STRIDES.index(cfg.head_stride)
        # stem: two stride-2 3x3 convs take the input to 1/4 resolution
        self.conv1 = nn.Conv2d(3, cfg.stem_width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem_width, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(cfg.stem_width, cfg.stem_width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg.stem_width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        # stage 1 at 1/4: official 4 Bottlenecks of width 64, 256 output channels
        self.layer1 = make_layer(Bottleneck, cfg.stem_width, cfg.stem_width, cfg.layer1_blocks)
        self.transition1 = Transition([cfg.stem_width * Bottleneck.expansion], c2)
        self.stage2 = make_stage(c2, m2, cfg.stage_blocks, exchange=within, last_exchange=at_stage_end)
        self.transition2 = Transition(c2, c3)
        self.stage3 = make_stage(c3, m3, cfg.stage_blocks, exchange=within, last_exchange=at_stage_end)
        self.transition3 = Transition(c3, c4)
        # the last module fuses every branch into the one the head reads (official: the high-resolution one), in
        # every exchange setting
        self.stage4 = make_stage(c4, m4, cfg.stage_blocks, multi_scale_output=False, exchange=within,
                                 last_exchange=True, last_outputs=(self.head_branch,))
        head_in = c4[self.head_branch]
        if cfg.head_channels is not None:  # equal head widths across branches (not in the official code)
            self.head_transition = nn.Sequential(nn.Conv2d(head_in, cfg.head_channels, 1, bias=False),
                                                 nn.BatchNorm2d(cfg.head_channels, momentum=BN_MOMENTUM),
                                                 nn.ReLU(inplace=True))
            head_in = cfg.head_channels
        self.final_layer = nn.Conv2d(head_in, cfg.num_joints, 1)
        # channels of features(x), by stride
        self.feature_channels = {4 * 2 ** b: c for b, c in enumerate(c4)}
        self.init_weights()

    def init_weights(self) -> None:
        """The official code's initialisation: conv weights N(0, 0.001), biases 0, BN weight 1 and bias 0. HRNet;
        chapter 07."""
        normal_init(self.modules())

    def _stage3(self, x: Tensor) -> dict[str, list[Tensor]]:
        _check_input(x)
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        x = self.layer1(x)  # (B, 4 * stem_width, H/4, W/4)
        stage2 = self.stage2(self.transition1([x]))
        return {"stage2": stage2, "stage3": self.stage3(self.transition2(stage2))}

    def branches(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Every stage's branch outputs, by stage name (``"stage2"`` to ``"stage4"``), for the chapter's dissection;
        stage 4 gives the one fused branch the head reads."""
        out = self._stage3(x)
        fused = self.stage4(self.transition3(out["stage3"]))
        out["stage4"] = [fused[self.head_branch]]
        return out

    def fusion_inputs(self, x: Tensor) -> list[Tensor]:
        """Stage 4's four branches as they enter the last exchange unit (after its module's residual units): what the
        final fusion sums into the branch the head reads. Paper §3; chapter 07."""
        xs = self.transition3(self._stage3(x)["stage3"])
        for module in self.stage4[:-1]:
            xs = module(xs)
        return [branch(b) for branch, b in zip(self.stage4[-1].branches, xs)]

    def features(self, x: Tensor) -> dict[int, Tensor]:
        """Stage 4's branches by stride (4: C, 8: 2C, 16: 4C, 32: 8C channels); the one at ``head_stride`` (official:
        4) is the fused map the head reads, the others are as they enter that last fusion."""
        xs = self.fusion_inputs(x)
        xs[self.head_branch] = self.stage4[-1].fuse_layers(xs)[self.head_branch]
        return dict(zip(self.feature_channels, xs))

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)[self.config.head_stride]
        if self.config.head_channels is not None:
            features = self.head_transition(features)
        heatmaps = self.final_layer(features)
        return upsample_heatmaps(heatmaps, self.config.head_stride // 4)  # (B, K, H/4, W/4)

    def predict(self, x: Tensor) -> Tensor:
        """The final heatmaps (B, K, H/4, W/4)."""
        return self(x)


def upsample_heatmaps(heatmaps: Tensor, factor: int) -> Tensor:
    """Bilinear upsampling by ``factor`` where output sample i reads input position i / factor (edge replicated), so
    heatmap px x stride stays the input px for both maps (the codec's convention). HRNet §4.4 (Fig. 5); chapter 07."""
    if factor == 1:
        return heatmaps
    h, w = heatmaps.shape[-2:]
    padded = F.pad(heatmaps, (0, 1, 0, 1), mode="replicate")  # position h (and w) for the last samples' neighbours
    up = F.interpolate(padded, size=(factor * h + 1, factor * w + 1), mode="bilinear", align_corners=True)
    return up[..., :factor * h, :factor * w]


def _check_input(x: Tensor) -> None:
    # the lowest branch is at 1/32; fuse paths must land on equal sizes, so H and W must divide by 32
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % 32 or x.shape[-1] % 32:
        raise ValueError(f"HRNet expects input (B, 3, H, W) with H and W multiples of 32 (e.g. 256x192), "
                         f"got {tuple(x.shape)}")


def hrnet(width: int = 32, num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet of any width (Sun et al., CVPR 2019, §3); ``create("hrnet", width=8)``; keywords of HRNetConfig.
    Chapter 07."""
    return HRNet(HRNetConfig(width=width, num_joints=num_joints, **kwargs))


def hrnet_w32(num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet-W32 (Sun et al., CVPR 2019; layout §3, network instantiation; 28.5M params, 7.1 GFLOPs at 256x192 in
    Table 1). Chapter 07."""
    return HRNet(replace(HRNET_W32, num_joints=num_joints, **kwargs))


def hrnet_w48(num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet-W48 (Sun et al., CVPR 2019; layout §3, network instantiation; 63.6M params, 14.6 GFLOPs at 256x192 in
    Table 1). Chapter 07."""
    return HRNet(replace(HRNET_W48, num_joints=num_joints, **kwargs))
