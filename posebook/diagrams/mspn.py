"""MSPN's architecture diagram, read from a built model: per stage the downsampling unit (ResNet layer1..layer4), the
upsampling unit's four levels with their heatmaps and blur kernels, and between two stages the cross-stage feature
aggregation (1x1 skips from the downsampling and upsampling maps, added to the next stage's layer outputs) and the
next stage's input (``cross_conv``).

Li et al., "Rethinking on Multi-Stage Networks for Human Pose Estimation" (2019), §3. Everything drawn (stages,
bottlenecks per layer, widths, map sizes at the given input size, the skips or their absence, the kernels of the
supervision) comes from the model passed in and ``kernel_schedule``, so the study's variants draw differently.
Chapter 06.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from posebook.diagrams.base import Diagram, check_input_size, resnet_sizes
from posebook.models.mspn import MSPN, kernel_schedule

ROW = 1.5  # vertical distance between the strides' rows (stride 4 on top, 32 at the bottom)
X_LAYER, X_ADD, X_UP, X_MAP, X_SKIP = 0.0, 1.15, 2.45, 3.95, 6.0  # columns within one stage
STAGE_W = 8.6  # horizontal distance between two stages
STRIDES = (4, 8, 16, 32)


@dataclass
class MSPNDiagram(Diagram):
    """A :class:`Diagram` that also lists what it drew, each read from the model: ``stages`` (per stage its
    ``layers`` fine to coarse, its ``levels`` coarse to fine with their kernels), ``skips`` (per stride and stage
    boundary, the two 1x1 convs' channels) and ``cross`` (each boundary's ``cross_conv`` channels). MSPN §3;
    chapter 06."""

    stages: list = field(default_factory=list)
    skips: list = field(default_factory=list)
    cross: list = field(default_factory=list)


def mspn_layout(model: MSPN, input_size=(256, 192), coarse_to_fine: bool = True) -> MSPNDiagram:
    """MSPN as rows stride 4 (top) to 32 (bottom) and one block of columns per stage: layer1..layer4, the upsampling
    levels with their heatmaps' blur kernels (``kernel_schedule(stages, coarse_to_fine)``), and between stages the
    cross-stage skips and ``cross_conv``, with widths and map sizes at ``input_size``; :func:`mspn_diagram` draws
    it. MSPN §3; chapter 06."""
    if not isinstance(model, MSPN):
        raise TypeError(f"mspn_layout: expected an MSPN (posebook.models.create('mspn', ...)), got "
                        f"{type(model).__name__}")
    h, w = check_input_size(input_size, "mspn_layout")
    unit = model.stages[0].downsample
    sizes = resnet_sizes((model.stem.conv1, model.stem.maxpool),
                         [getattr(unit, f"layer{i}") for i in range(1, 5)], (h, w))
    out_size = sizes[0]
    schedule = kernel_schedule(model.num_stages, coarse_to_fine)
    d = MSPNDiagram()

    def y(i: float) -> float:  # row of stride 4 * 2^i
        return -ROW * i

    inp = d.box(-2.9, y(0) + 1.0, f"input\n3 x {h}x{w}", "feature", w=1.15, h=0.65)
    stem = d.box(-2.9, y(0), f"stem\n7x7/2, pool/2\n{model.stem.conv1.out_channels} ch", "conv", w=1.35, h=0.85)
    d.arrow((inp, "bottom"), (stem, "top"))
    start = (stem, "right")
    skip_boxes: dict = {}  # (stage, stride) -> the box of the skips that stage hands to the next
    for s, stage in enumerate(model.stages):
        x0 = s * STAGE_W
        unit, up = stage.downsample, stage.upsample
        d.note(x0 + X_UP - 0.6, y(0) + 1.25, f"stage {s + 1}", fontsize=10, weight="bold")
        layers, outputs = [], {}
        for i, stride in enumerate(STRIDES):
            layer = getattr(unit, f"layer{i + 1}")
            channels = unit.feature_channels[stride]
            box = d.box(x0 + X_LAYER, y(i), f"layer{i + 1}: {len(layer)} Bottl.\n{channels} ch, "
                                            f"{sizes[i][0]}x{sizes[i][1]}", "residual", w=1.35, h=0.75)
            d.arrow(start, (box, "left" if i == 0 else "top"))
            out = box
            if s > 0 and model.stages[s - 1].aggregation is not None:
                out = d.box(x0 + X_ADD, y(i), "+", "add", w=0.4, h=0.4)
                d.arrow((box, "right"), (out, "left"))
            start = (out, "bottom")  # the layer's output, with the skips added, feeds the next layer
            outputs[stride] = out
            layers.append({"layer": f"layer{i + 1}", "blocks": len(layer), "channels": channels, "stride": stride,
                           "size": sizes[i], "skip_added": out is not box})
        # the upsampling unit, coarse (stride 32) to fine (stride 4), each level predicting heatmaps
        nodes, levels = {}, []
        for g, stride in enumerate(reversed(STRIDES)):
            i = STRIDES.index(stride)
            lateral = up.lateral[g][0]
            node = d.box(x0 + X_UP, y(i), f"level {stride}\n{lateral.out_channels} ch", "feature", w=0.95, h=0.6)
            src = outputs[stride]
            d.arrow((src, "right"), (node, "left"), label="1x1" if g == 0 else "")
            if g:
                d.arrow((nodes[STRIDES[i + 1]], "top"), (node, "bottom"), color="tab:green")
                d.note(x0 + X_UP + 0.5, y(i) - ROW / 2, "up, 1x1", fontsize=6.5, color="tab:green", ha="left")
            nodes[stride] = node
            kernel = schedule[s][g]
            loss = "OHKM top 8" if g == len(STRIDES) - 1 else "L2 x 1/4"
            hm = d.box(x0 + X_MAP, y(i) + 0.38, f"heatmaps {up.num_joints}x{out_size[0]}x{out_size[1]}\n"
                                               f"kernel {kernel}, {loss}", "heatmap", w=1.75, h=0.55)
            d.arrow((node, "right"), (hm, "left"))
            levels.append({"stride": stride, "channels": lateral.out_channels, "kernel": kernel, "loss": loss})
        d.stages.append({"stage": s, "layers": layers, "levels": levels,
                         "aggregation": stage.aggregation is not None})
        # the hand-off to the next stage: its input, and with aggregation the skips at every stride
        if stage.cross_conv is not None:
            conv = stage.cross_conv[0]
            cross = d.box(x0 + X_SKIP + 0.3, y(0) + 1.0, f"cross_conv 1x1\n{conv.in_channels}\u2192"
                                                         f"{conv.out_channels}, BN ReLU", "conv", w=1.45, h=0.6)
            d.arrow((nodes[4], "top"), (cross, "left"), rad=-0.3)
            start = (cross, "right")
            d.cross.append((conv.in_channels, conv.out_channels))
            if stage.aggregation is not None:
                agg = stage.aggregation
                for i, stride in enumerate(STRIDES):
                    down_conv = agg.down_skip[str(stride)][0]
                    up_conv = agg.up_skip[str(stride)][0]
                    skip = d.box(x0 + X_SKIP, y(i) - 0.75, f"skips 1x1 BN ReLU\n{down_conv.in_channels}\u2192"
                                                           f"{down_conv.out_channels} + {up_conv.in_channels}"
                                                           f"\u2192{up_conv.out_channels}", "conv", w=2.1, h=0.5)
                    skip_boxes[s, stride] = skip
                    d.arrow((outputs[stride], "bottom"), (skip, "left"), color="tab:purple", rad=0.25)
                    d.arrow((nodes[stride], "bottom"), (skip, "left"), color="tab:orange", rad=0.15)
                    d.skips.append({"from_stage": s, "stride": stride,
                                    "down": (down_conv.in_channels, down_conv.out_channels),
                                    "up": (up_conv.in_channels, up_conv.out_channels)})
        if s > 0 and model.stages[s - 1].aggregation is not None:
            for i, stride in enumerate(STRIDES):  # the previous stage's skips enter this stage's sums
                d.arrow((skip_boxes[s - 1, stride], "right"), (outputs[stride], "bottom"), color="tab:purple", rad=0.2)
    d.note((len(model.stages) - 1) * STAGE_W + X_MAP, y(0) + 0.95, "predict: the last stage's finest", fontsize=7,
           color="0.3")
    if len(model.stages) > 1 and all(st.aggregation is None for st in model.stages[:-1]):
        d.note(STAGE_W / 2 + X_SKIP / 2, y(3) - 0.9, "no cross-stage aggregation: only cross_conv hands over",
               fontsize=8, color="0.3")
    return d


def mspn_diagram(model: MSPN, input_size=(256, 192), ax=None, title: str = "", coarse_to_fine: bool = True):
    """Draw :func:`mspn_layout` of ``model`` at ``input_size``; returns the axis. MSPN §3; chapter 06."""
    return mspn_layout(model, input_size, coarse_to_fine).draw(ax, title=title)
