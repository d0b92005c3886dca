"""HRNet's architecture diagrams, read from a built model: the network's parallel branches with their exchange units,
and one exchange unit's paths.

Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation" (CVPR 2019), §3 and Fig. 3.
Everything drawn (branches per stage, widths, residual units, which exchange units fuse, the head's branch) comes
from the modules of the model passed in, so the ablations of chapter 07 draw differently. Chapter 07.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from posebook.blocks.hrnet import ExchangeUnit, HighResolutionModule
from posebook.diagrams.base import Diagram
from posebook.models.hrnet import HRNet

ROW = 1.3  # vertical distance between the branches' rows


@dataclass
class HRNetDiagram(Diagram):
    """A :class:`Diagram` that also lists what it drew: ``branches`` per stage and one ``fusions`` entry
    ``(stage, module, outputs)`` per fusion mark (an exchange unit that fuses). HRNet §3; chapter 07."""

    branches: dict = field(default_factory=dict)
    fusions: list = field(default_factory=list)


def _stride(branch: int) -> int:
    return 4 * 2 ** branch


def hrnet_layout(model: HRNet) -> HRNetDiagram:
    """HRNet as parallel rows at strides 4, 8, 16, 32: stem, stage 1, transitions adding a branch, each HR module's
    residual units with their widths, one vertical fusion mark per exchange unit that fuses, and the 1x1 head.
    Returns the diagram unfilled (:func:`hrnet_diagram` draws it). HRNet §3 (network instantiation), Fig. 1; chapter 07."""
    if not isinstance(model, HRNet):
        raise TypeError(f"hrnet_layout: expected an HRNet (posebook.models.create('hrnet', ...)), got "
                        f"{type(model).__name__}")
    d = HRNetDiagram()

    def y(branch: int) -> float:
        return -ROW * branch

    stem = d.box(0.0, y(0), f"stem\n2 x 3x3/2\n{model.conv1.out_channels} ch", "conv", w=1.1, h=0.9)
    layer1 = d.box(1.5, y(0), f"stage 1\n{len(model.layer1)} Bottl.\n{model.transition1.previous[0]} ch",
                   "residual", w=1.1, h=0.9)
    d.arrow((stem, "right"), (layer1, "left"))
    ends: list = [(layer1, "right")]  # where each branch of the previous stage ends
    x = 2.6
    for s in (2, 3, 4):
        stage, transition = getattr(model, f"stage{s}"), getattr(model, f"transition{s - 1}")
        d.branches[s] = len(stage[0].channels)
        start, x = x, x + 0.55
        for m, module in enumerate(stage):
            bx = x + 0.55
            boxes = [d.box(bx, y(b), f"{len(module.branches[b])} x BB\n{c} ch", "residual", w=1.0, h=0.62)
                     for b, c in enumerate(module.channels)]
            if m == 0:  # the transition: width adapters on existing rows, stride-2 convs for the new branch
                for b, box in enumerate(boxes):
                    if b < len(transition.previous):
                        label = "" if isinstance(transition[b], nn.Identity) else "3x3"
                        d.arrow(ends[b], (box, "left"), label=label)
                    else:
                        d.arrow(ends[-1], (box, "left"), label="3x3/2", color="tab:orange")
            else:
                for b, box in enumerate(boxes):
                    d.arrow(ends[b], (box, "left"))
            ends = [(box, "right") for box in boxes]
            unit = module.fuse_layers
            x = bx + 0.75
            if unit.exchange:
                fx = bx + 0.8
                top, bottom = y(0) + 0.45, y(len(boxes) - 1) - 0.45
                d.box(fx, (top + bottom) / 2, "", "feature", w=0.14, h=top - bottom)
                d.note(fx, top + 0.22, "fuse", fontsize=6.5, color="0.3")
                d.fusions.append((s, m, tuple(unit.outputs)))
                for b, box in enumerate(boxes):
                    d.arrow((box, "right"), (fx - 0.07, y(b)))
                ends = [(fx + 0.07, y(b)) for b in range(len(boxes))]  # rows not built end at the bar
                x += 0.45
        d.note((start + x) / 2 + 0.3, y(0) + 1.05, f"stage {s}: {len(stage)} module{'s' * (len(stage) > 1)}",
               fontsize=7.5)
    head_b = model.head_branch
    head = d.box(x + 0.7, y(head_b), f"1x1 conv\n-> {model.final_layer.out_channels}", "conv", w=1.0, h=0.62)
    d.arrow(ends[head_b], (head, "left"))
    out = d.box(x + 2.0, y(0), "heatmaps\n1/4", "heatmap", w=1.15, h=0.62)
    if head_b == 0:
        d.arrow((head, "right"), (out, "left"))
    else:
        d.arrow((head, "right"), (out, "bottom"), label=f"bilinear x{_stride(head_b) // 4}")
    for b in range(max(d.branches.values())):
        d.note(-1.3, y(b), f"1/{_stride(b)}\n{model.feature_channels[_stride(b)]} ch", fontsize=7.5, color="0.3")
    return d


def _path_steps(path: nn.Module) -> list[tuple[str, str]]:
    """(label, kind) of each step of a fuse path, read from its layers."""
    if isinstance(path, nn.Identity):
        return []
    modules = list(path)
    if isinstance(modules[-1], nn.Upsample):
        conv = modules[0]
        return [(f"1x1 conv\n{conv.in_channels}\u2192{conv.out_channels}\nBN", "conv"),
                (f"{modules[-1].mode}\nup x{int(modules[-1].scale_factor)}", "upsample")]
    steps = []
    for step in modules:
        conv, relu = step[0], any(isinstance(layer, nn.ReLU) for layer in step)
        steps.append((f"3x3 conv s{conv.stride[0]}\n{conv.in_channels}\u2192{conv.out_channels}\n"
                      f"BN{' ReLU' if relu else ''}", "pool"))
    return steps


def exchange_unit_layout(module: HighResolutionModule | ExchangeUnit) -> Diagram:
    """One exchange unit, one panel per output branch i: every input X_j brought to branch i (strided 3x3 convs
    down, 1x1 conv + BN then nearest upsampling up, identity across), summed, then one ReLU. Read from the unit's
    paths. HRNet §3, "Repeated multi-scale fusion", Fig. 3; chapter 07."""
    unit = module.fuse_layers if isinstance(module, HighResolutionModule) else module
    if not isinstance(unit, ExchangeUnit):
        raise TypeError(f"exchange_unit_layout: expected a HighResolutionModule or an ExchangeUnit, got "
                        f"{type(module).__name__}")
    rows = [(i, row) for i, row in enumerate(unit) if len(row)]
    n = len(rows[0][1])
    if n < 2:
        raise ValueError(f"exchange_unit_diagram: the unit has {n} branch; an exchange needs at least 2")
    if not unit.exchange:
        raise ValueError("exchange_unit_diagram: this unit does not exchange (exchange=False keeps only the "
                         "identity paths); pass a module built with exchange=True")
    d = Diagram()
    pitch = 1.45  # one path step
    longest = max(len(_path_steps(path)) for _, row in rows for path in row)
    plus_x = 0.6 + pitch * longest + 0.9
    for k, (i, row) in enumerate(rows):
        y0 = -k * (ROW * n + 1.2)  # panels stacked, one per output branch
        d.note(plus_x / 2 + 0.6, y0 + 0.85, f"into branch {i + 1} (1/{_stride(i)})", fontsize=9, weight="bold")
        plus = d.box(plus_x, y0 - ROW * i, "+", "add", w=0.45, h=0.45)
        for j, path in enumerate(row):
            yj = y0 - ROW * j
            inp = d.box(0.0, yj, f"X{j + 1}\n1/{_stride(j)}", "feature", w=0.8, h=0.7)
            prev = (inp, "right")
            steps = _path_steps(path)
            for s, (label, kind) in enumerate(steps):
                box = d.box(1.05 + pitch * s, yj, label, kind, w=1.25, h=0.95)
                d.arrow(prev, (box, "left"))
                prev = (box, "right")
            d.arrow(prev, (plus, "left"), label="identity" if not steps else "",
                    color="0.25" if j == i else ("tab:green" if j > i else "tab:orange"))
        relu = d.box(plus.x + 0.95, plus.y, "ReLU", "conv", w=0.75, h=0.5)
        out = d.box(relu.x + 1.0, plus.y, f"Y{i + 1}", "feature", w=0.7, h=0.5)
        d.arrow((plus, "right"), (relu, "left"))
        d.arrow((relu, "right"), (out, "left"))
    return d


def hrnet_diagram(model: HRNet, ax=None, title: str = ""):
    """Draw :func:`hrnet_layout` of ``model``; returns the axis. HRNet §3, Fig. 1; chapter 07."""
    return hrnet_layout(model).draw(ax, title=title)


def exchange_unit_diagram(module: HighResolutionModule | ExchangeUnit, ax=None, title: str = ""):
    """Draw :func:`exchange_unit_layout` of ``module``; returns the axis. HRNet §3, Fig. 3; chapter 07."""
    return exchange_unit_layout(module).draw(ax, title=title)
