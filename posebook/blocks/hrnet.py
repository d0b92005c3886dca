"""HRNet's blocks: the exchange unit (fuse layers), the high-resolution module and the transition that adds a branch.

Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation" (CVPR 2019), §3 "Parallel
multi-resolution subnetworks" and "Repeated multi-scale fusion" (Fig. 3). Attribute names (``branches``,
``fuse_layers``, Sequential indices) equal the official code's state_dict, so official checkpoints load with
``strict=True``. Explained in chapter 07 (HRNet).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .resnet import BN_MOMENTUM, BasicBlock, conv1x1, conv3x3, make_layer


def conv_bn(in_channels: int, out_channels: int, stride: int, relu: bool) -> nn.Sequential:
    """3x3 conv (no bias) + BN, optionally + ReLU: the unit of every strided path in HRNet (keys ``0``, ``1``).
    HRNet §3; chapter 07."""
    layers = [conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def upsample_path(in_channels: int, out_channels: int, factor: int) -> nn.Sequential:
    """Lower resolution into higher: 1x1 conv + BN, then nearest-neighbour upsampling by ``factor`` (HRNet §3 and
    Fig. 3; the official code alike). Chapter 07."""
    return nn.Sequential(conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
                         nn.Upsample(scale_factor=factor, mode="nearest"))


def downsample_path(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    """Higher resolution into lower: ``steps`` stride-2 3x3 convs; all keep the width and end in BN + ReLU except the
    last, which changes the width and ends in BN only (the ReLU comes once, after the sum). HRNet §3; chapter 07."""
    chain = [conv_bn(in_channels, in_channels, 2, relu=True) for _ in range(steps - 1)]
    return nn.Sequential(*chain, conv_bn(in_channels, out_channels, 2, relu=False))


def fuse_path(channels: list[int], j: int, i: int) -> nn.Module:
    """The path a(X_j, i) that brings branch ``j``'s map to branch ``i``'s resolution and width (HRNet §3, Fig. 3).
    Chapter 07."""
    if j > i:
        return upsample_path(channels[j], channels[i], 2 ** (j - i))
    if j < i:
        return downsample_path(channels[j], channels[i], i - j)
    return nn.Identity()


class ExchangeUnit(nn.ModuleList):
    """Repeated multi-scale fusion: output i = ReLU(sum_j a(X_j, i)). Row i of this list holds the paths into branch i.

    ``multi_scale_output=False`` builds only row 0 (the last module of stage 4); ``outputs`` names the rows to build
    instead (the others stay empty, output None). ``exchange=False`` keeps only the identity paths, so branches run in
    parallel without exchanging (Table 6's ablations). Paper §3, §4.4; chapter 07.
    """

    def __init__(self, channels: list[int], multi_scale_output: bool = True, exchange: bool = True,
                 outputs: Sequence[int] | None = None):
        if outputs is None:
            outputs = range(len(channels)) if multi_scale_output else (0,)
        outputs = sorted(set(int(i) for i in outputs))
        if not outputs or outputs[0] < 0 or outputs[-1] >= len(channels):
            raise ValueError(f"ExchangeUnit with channels {list(channels)}: outputs={outputs} must name branches "
                             f"0..{len(channels) - 1}")
        super().__init__(nn.ModuleList(fuse_path(channels, j, i) if exchange or i == j else _Dropped()
                                       for j in range(len(channels))) if i in outputs else nn.ModuleList()
                         for i in range(outputs[-1] + 1))
        self.exchange, self.outputs = exchange, tuple(outputs)

    def contributions(self, xs: list[Tensor]) -> list[list[Tensor | None]]:
        """``[i][j]`` = a(X_j, i), what branch j passes to branch i (None where the ablation drops the path; an
        unbuilt row is empty)."""
        return [[path(x) for path, x in zip(row, xs)] for row in self]

    def forward(self, xs: list[Tensor]) -> list[Tensor | None]:
        out = []
        for row in self.contributions(xs):
            parts = [part for part in row if part is not None]
            if not parts:  # a row this unit does not build (``outputs``)
                out.append(None)
                continue
            total = parts[0]
            for part in parts[1:]:
                total = total + part  # summed in branch order, as the official code does
            out.append(torch.relu(total))  # once, after the sum
        return out


class _Dropped(nn.Module):
    """A path removed by the no-exchange ablation: it contributes nothing and has no weights."""

    def forward(self, x: Tensor) -> None:
        return None


class HighResolutionModule(nn.Module):
    """One HR module: parallel branches of BasicBlocks (``branches``), then one exchange unit (``fuse_layers``).

    Paper §3, the N_sr blocks of each stage; chapter 07.
    """

    def __init__(self, channels: list[int], num_blocks: int = 4, multi_scale_output: bool = True,
                 exchange: bool = True, outputs: Sequence[int] | None = None):
        super().__init__()
        self.channels = list(channels)
        self.branches = nn.ModuleList(make_layer(BasicBlock, c, c, num_blocks) for c in channels)
        self.fuse_layers = ExchangeUnit(channels, multi_scale_output, exchange, outputs)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        if len(xs) != len(self.branches):
            raise ValueError(f"HighResolutionModule with channels {self.channels} expects {len(self.branches)} "
                             f"branch inputs, got {len(xs)}")
        return self.fuse_layers([branch(x) for branch, x in zip(self.branches, xs)])


class Transition(nn.ModuleList):
    """Between stages: adapts existing branches (3x3 conv + BN + ReLU where the width changes, else identity) and adds
    the new lower-resolution branch with stride-2 3x3 convs from the previous stage's lowest branch. Paper §3; ch. 07.
    """

    def __init__(self, previous: list[int], current: list[int]):
        super().__init__(self._path(previous, current, i) for i in range(len(current)))
        self.previous, self.current = list(previous), list(current)

    @staticmethod
    def _path(previous: list[int], current: list[int], i: int) -> nn.Module:
        if i < len(previous):
            same = previous[i] == current[i]
            return nn.Identity() if same else conv_bn(previous[i], current[i], 1, relu=True)
        # a Sequential of Sequentials (keys ``transitionK.i.0.0``), one stride-2 step per halving
        steps = i + 1 - len(previous)
        widths = [previous[-1]] * steps + [current[i]]
        return nn.Sequential(*(conv_bn(widths[k], widths[k + 1], 2, relu=True) for k in range(steps)))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return [path(xs[i] if i < len(xs) else xs[-1]) for i, path in enumerate(self)]


def make_stage(channels: list[int], num_modules: int, num_blocks: int = 4, multi_scale_output: bool = True,
               exchange: bool = True, last_exchange: bool | None = None,
               last_outputs: Sequence[int] | None = None) -> nn.Sequential:
    """``num_modules`` HR modules in a row; only the last one honours ``multi_scale_output=False`` (or builds the rows
    ``last_outputs``), and its exchange unit follows ``last_exchange`` (None: ``exchange``). Paper §3; chapter 07."""
    last = exchange if last_exchange is None else last_exchange
    return nn.Sequential(*(HighResolutionModule(channels, num_blocks, multi_scale_output or m < num_modules - 1,
                                                exchange if m < num_modules - 1 else last,
                                                last_outputs if m == num_modules - 1 else None)
                           for m in range(num_modules)))
