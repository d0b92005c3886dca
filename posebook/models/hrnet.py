"""HRNet (Sun, Xiao, Liu, Wang, CVPR 2019): keep a high-resolution branch from start to end, add lower-resolution
branches in parallel stage by stage, and exchange information between them over and over.

Reads top to bottom: stem (two stride-2 3x3 convs) -> layer1 (4 Bottlenecks, 256 channels) -> transition1 ->
stage2 (1 module, 2 branches) -> transition2 -> stage3 (4 modules, 3 branches) -> transition3 -> stage4 (3 modules,
4 branches; the last returns only the high-resolution branch) -> final_layer (1x1 conv to K heatmaps at 1/4).
The layout is the paper's network instantiation (§3) and the official yaml (PAPERS.md §1.1), passed in as an
:class:`HRNetConfig` (``HRNET_W32``, ``HRNET_W48``). Attribute names equal the official state_dict (PAPERS.md
§1.2), so official checkpoints load with ``strict=True``. Explained in chapter 07 (HRNet).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor, nn

from posebook.blocks.hrnet import Transition, make_stage
from posebook.blocks.resnet import BN_MOMENTUM, Bottleneck, make_layer, normal_init


@dataclass(frozen=True)
class HRNetConfig:
    """HRNet's layout: widths C, 2C, 4C, 8C; modules of stages 2, 3, 4; residual units per branch; the stem.

    The official W32 is ``HRNetConfig(width=32)`` = ``HRNET_W32`` (paper §3, network instantiation; PAPERS.md
    §1.1); ``exchange=False`` is chapter 07's ablation; ``stem_width`` and ``layer1_blocks`` shrink the stem and
    stage 1 for its CPU profile (official 64 and 4). Chapter 07.
    """

    width: int = 32
    num_joints: int = 17
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    stage_blocks: int = 4
    exchange: bool = True
    stem_width: int = 64
    layer1_blocks: int = 4

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

    @classmethod
    def w32(cls, **changes) -> HRNetConfig:
        """HRNet-W32 (paper §3 and Table 1: 28.5M params, 7.1 GFLOPs at 256x192), with optional ``changes``."""
        return cls(width=32, **changes)

    @classmethod
    def w48(cls, **changes) -> HRNetConfig:
        """HRNet-W48 (paper §3 and Table 1: 63.6M params, 14.6 GFLOPs at 256x192), with optional ``changes``."""
        return cls(width=48, **changes)

    def channels(self, branches: int) -> list[int]:
        """The widths of the first ``branches`` branches: C, 2C, 4C, ..."""
        return [self.width * 2 ** b for b in range(branches)]


HRNET_W32 = HRNetConfig.w32()
HRNET_W48 = HRNetConfig.w48()


class HRNet(nn.Module):
    """HRNet for top-down pose, built from an :class:`HRNetConfig`: ``forward(x)`` returns heatmaps (B, K, H/4, W/4).

    ``features(x)`` is the backbone API shared with ResNet: ``{4: ..., 8: ..., 16: ..., 32: ...}`` by stride, the
    four branches of stage 4 (stride 4: the fused high-resolution map the head reads; 8, 16, 32: the lower branches
    as they enter that last fusion). ``branches(x)`` gives every stage's branch outputs for chapter 07's dissection.

    ``exchange=False`` (the ablation): the intermediate exchange units keep only their identity paths, so the
    branches run in parallel without exchanging; the final unit still fuses every branch into the high-resolution
    one (otherwise the lower branches could not reach the output at all). Paper §3; chapter 07.
    """

    def __init__(self, config: HRNetConfig = HRNET_W32):
        super().__init__()
        if not isinstance(config, HRNetConfig):
            raise TypeError(f"HRNet takes an HRNetConfig (e.g. HRNET_W32, HRNetConfig(width=8)), got "
                            f"{type(config).__name__}; create('hrnet', width=...) builds one from keywords")
        self.config = cfg = config
        c2, c3, c4 = cfg.channels(2), cfg.channels(3), cfg.channels(4)
        m2, m3, m4 = cfg.stage_modules
        # stem: two stride-2 3x3 convs take the input to 1/4 resolution
        self.conv1 = nn.Conv2d(3, cfg.stem_width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem_width, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(cfg.stem_width, cfg.stem_width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg.stem_width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        # stage 1 at 1/4: official 4 Bottlenecks of width 64, 256 output channels
        self.layer1 = make_layer(Bottleneck, cfg.stem_width, cfg.stem_width, cfg.layer1_blocks)
        self.transition1 = Transition([cfg.stem_width * Bottleneck.expansion], c2)
        self.stage2 = make_stage(c2, m2, cfg.stage_blocks, exchange=cfg.exchange)
        self.transition2 = Transition(c2, c3)
        self.stage3 = make_stage(c3, m3, cfg.stage_blocks, exchange=cfg.exchange)
        self.transition3 = Transition(c3, c4)
        # the last module fuses every branch into the high-resolution one, also in the no-exchange ablation
        self.stage4 = make_stage(c4, m4, cfg.stage_blocks, multi_scale_output=False, exchange=cfg.exchange,
                                 last_exchange=True)
        self.final_layer = nn.Conv2d(cfg.width, cfg.num_joints, 1)
        # channels of features(x), by stride
        self.feature_channels = {4 * 2 ** b: c for b, c in enumerate(c4)}
        self.init_weights()

    def init_weights(self) -> None:
        """The official initialisation: conv weights N(0, 0.001), biases 0, BN weight 1 and bias 0 (PAPERS.md §1.2)."""
        normal_init(self.modules())

    def _stage3(self, x: Tensor) -> dict[str, list[Tensor]]:
        _check_input(x)
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        x = self.layer1(x)  # (B, 4 * stem_width, H/4, W/4)
        stage2 = self.stage2(self.transition1([x]))
        return {"stage2": stage2, "stage3": self.stage3(self.transition2(stage2))}

    def branches(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Every stage's branch outputs, by stage name (``"stage2"`` to ``"stage4"``), for the chapter's dissection."""
        out = self._stage3(x)
        out["stage4"] = self.stage4(self.transition3(out["stage3"]))  # the high-resolution branch only
        return out

    def features(self, x: Tensor) -> dict[int, Tensor]:
        """Stage 4's branches by stride: {4: the fused (B, C, H/4, W/4) map the head reads, 8: 2C, 16: 4C, 32: 8C}."""
        xs = self.transition3(self._stage3(x)["stage3"])
        for module in self.stage4[:-1]:
            xs = module(xs)
        last = self.stage4[-1]
        xs = [branch(b) for branch, b in zip(last.branches, xs)]
        fused = last.fuse_layers(xs)[0]
        return dict(zip(self.feature_channels, [fused, *xs[1:]]))

    def forward(self, x: Tensor) -> Tensor:
        return self.final_layer(self.features(x)[4])  # (B, K, H/4, W/4)

    def predict(self, x: Tensor) -> Tensor:
        """The final heatmaps (B, K, H/4, W/4)."""
        return self(x)


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
    """HRNet-W32 (Sun et al., CVPR 2019, §3 and Table 1: 28.5M params, 7.1 GFLOPs at 256x192). Chapter 07."""
    return HRNet(replace(HRNET_W32, num_joints=num_joints, **kwargs))


def hrnet_w48(num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet-W48 (Sun et al., CVPR 2019, §3 and Table 1: 63.6M params, 14.6 GFLOPs at 256x192). Chapter 07."""
    return HRNet(replace(HRNET_W48, num_joints=num_joints, **kwargs))
