"""HRNet (Sun, Xiao, Liu, Wang, CVPR 2019): keep a high-resolution branch from start to end, add lower-resolution
branches in parallel stage by stage, and exchange information between them over and over.

Reads top to bottom: stem (two stride-2 3x3 convs) -> layer1 (4 Bottlenecks, 256 channels) -> transition1 ->
stage2 (1 module, 2 branches) -> transition2 -> stage3 (4 modules, 3 branches) -> transition3 -> stage4 (3 modules,
4 branches; the last returns only the high-resolution branch) -> final_layer (1x1 conv to K heatmaps at 1/4).
Attribute names equal the official state_dict (PAPERS.md §1.2), so official checkpoints load with ``strict=True``.
Explained in chapter 07 (HRNet).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from posebook.blocks.hrnet import ExchangeUnit, Transition, make_stage
from posebook.blocks.resnet import BN_MOMENTUM, Bottleneck, make_layer, normal_init
from posebook.models import register


@dataclass(frozen=True)
class HRNetConfig:
    """The paper's Table 1 / the official yaml: widths C, 2C, 4C, 8C; modules per stage; residual units per branch."""

    width: int = 32
    num_joints: int = 17
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    stage_blocks: int = 4
    exchange: bool = True
    stem_width: int = 64
    layer1_blocks: int = 4

    def channels(self, branches: int) -> list[int]:
        return [self.width * 2 ** b for b in range(branches)]


class HRNet(nn.Module):
    """HRNet-W{width} for top-down pose: ``forward(x)`` returns heatmaps (B, K, H/4, W/4). Paper §3; chapter 07.

    ``exchange=False`` is the chapter's ablation: the intermediate exchange units keep only their identity paths, so
    the branches run in parallel without exchanging; the final unit still fuses every branch into the
    high-resolution one (otherwise the lower branches could not reach the output at all).

    ``stem_width`` (official 64) and ``layer1_blocks`` (official 4) shrink the stem and stage 1 for chapter 07's CPU
    profile: at width 8 the 64-channel stem and the 256-channel stage 1 at 1/4 resolution cost more than all the
    branches together. Stage 1 is then ``layer1_blocks`` Bottlenecks with ``4 * stem_width`` output channels.
    """

    def __init__(self, width: int = 32, num_joints: int = 17, stage_modules=(1, 4, 3), stage_blocks: int = 4,
                 exchange: bool = True, stem_width: int = 64, layer1_blocks: int = 4):
        super().__init__()
        if min(width, num_joints, stem_width, layer1_blocks) < 1:
            raise ValueError(f"HRNet needs width, num_joints, stem_width and layer1_blocks >= 1, got width={width}, "
                             f"num_joints={num_joints}, stem_width={stem_width}, layer1_blocks={layer1_blocks}")
        cfg = self.config = HRNetConfig(width, num_joints, tuple(stage_modules), stage_blocks, exchange, stem_width,
                                        layer1_blocks)
        # stem: two stride-2 3x3 convs take the input to 1/4 resolution
        self.conv1 = nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem_width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        # stage 1 at 1/4: official 4 Bottlenecks of width 64, 256 output channels
        self.layer1 = make_layer(Bottleneck, stem_width, stem_width, layer1_blocks)
        previous = [stem_width * Bottleneck.expansion]
        for s, modules in enumerate(cfg.stage_modules, start=2):
            channels = cfg.channels(s)
            setattr(self, f"transition{s - 1}", Transition(previous, channels))
            last = s == 1 + len(cfg.stage_modules)
            setattr(self, f"stage{s}", make_stage(channels, modules, stage_blocks, multi_scale_output=not last,
                                                  exchange=exchange))
            previous = channels
        if not exchange:  # keep the one final fusion into the high-resolution branch
            self._restore_final_exchange(previous)
        self.final_layer = nn.Conv2d(width, num_joints, 1)
        self.init_weights()

    def _restore_final_exchange(self, channels: list[int]) -> None:
        last_stage = getattr(self, f"stage{1 + len(self.config.stage_modules)}")
        last_stage[-1].fuse_layers = ExchangeUnit(channels, multi_scale_output=False, exchange=True)

    def init_weights(self) -> None:
        """The official initialisation: conv weights N(0, 0.001), biases 0, BN weight 1 and bias 0 (PAPERS.md §1.2)."""
        normal_init(self.modules())

    def branches(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Every stage's branch outputs, by stage name (``"stage2"`` to ``"stage4"``), for the chapter's dissection."""
        _check_input(x)
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]  # (B, 4 * stem_width, H/4, W/4)
        out = {}
        for s in range(2, 2 + len(self.config.stage_modules)):
            xs = getattr(self, f"stage{s}")(getattr(self, f"transition{s - 1}")(xs))
            out[f"stage{s}"] = xs
        return out

    def forward(self, x: Tensor) -> Tensor:
        high = self.branches(x)[f"stage{1 + len(self.config.stage_modules)}"][0]  # (B, C, H/4, W/4)
        return self.final_layer(high)  # (B, K, H/4, W/4)

    def predict(self, x: Tensor) -> Tensor:
        """The final heatmaps (B, K, H/4, W/4)."""
        return self(x)


def _check_input(x: Tensor) -> None:
    # the lowest branch is at 1/32; fuse paths must land on equal sizes, so H and W must divide by 32
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % 32 or x.shape[-1] % 32:
        raise ValueError(f"HRNet expects input (B, 3, H, W) with H and W multiples of 32 (e.g. 256x192), "
                         f"got {tuple(x.shape)}")


@register("hrnet")
def hrnet(width: int = 32, num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet of any width (Sun et al., CVPR 2019, §3); ``create("hrnet", width=8)``. Chapter 07."""
    return HRNet(width=width, num_joints=num_joints, **kwargs)


@register("hrnet_w32")
def hrnet_w32(num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet-W32 (Sun et al., CVPR 2019, Table 1: 28.5M params, 7.1 GFLOPs at 256x192). Chapter 07."""
    return HRNet(width=32, num_joints=num_joints, **kwargs)


@register("hrnet_w48")
def hrnet_w48(num_joints: int = 17, **kwargs) -> HRNet:
    """HRNet-W48 (Sun et al., CVPR 2019, Table 1: 63.6M params, 14.6 GFLOPs at 256x192). Chapter 07."""
    return HRNet(width=48, num_joints=num_joints, **kwargs)
