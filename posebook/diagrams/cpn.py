"""CPN's architecture diagram, read from a built model: the ResNet's stages C2..C5, GlobalNet's pyramid (1x1 lateral,
upsample + 1x1 + add, one predictor per level) and RefineNet's branches, concatenation and final layers.

Chen et al., "Cascaded Pyramid Network for Multi-Person Pose Estimation" (CVPR 2018), §3.2 and Fig. 1. Everything
drawn (bottlenecks per stage and branch, widths, map sizes at the given input size, the non-local block, RefineNet
or its absence) comes from the modules of the model passed in, so the study's variants draw differently. Chapter 05.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from posebook.diagrams.base import Diagram, check_input_size, resnet_sizes
from posebook.models.cpn import CPN

ROW = 1.8  # vertical distance between the levels' rows (C2 on top, C5 at the bottom)
# the columns: stage, non-local, lateral, pyramid node, predictor / branch, heatmap, concat, final layers
X_STAGE, X_NONLOCAL, X_LATERAL, X_NODE, X_HEAD, X_MAP, X_CONCAT, X_FINAL = 1.7, 3.2, 4.6, 5.95, 7.45, 9.2, 10.5, 11.85
FONTSIZE = 9.5  # the labels' size: the page scales the wide figure down to about half


@dataclass
class CPNDiagram(Diagram):
    """A :class:`Diagram` that also lists what it drew, each read from the model: ``stages`` (ResNet, fine to
    coarse), ``levels`` (GlobalNet, coarse to fine), ``branches`` (RefineNet, coarse to fine; empty without it),
    ``concat`` (the concatenation's channels, None without RefineNet) and ``non_local``. CPN §3.2; chapter 05."""

    stages: list = field(default_factory=list)
    levels: list = field(default_factory=list)
    branches: list = field(default_factory=list)
    concat: int | None = None
    non_local: bool = False


def cpn_layout(model: CPN, input_size=(256, 192)) -> CPNDiagram:
    """CPN as rows C2 (top) to C5 (bottom): ResNet stages, GlobalNet's laterals, top-down path and predictors, and
    RefineNet's branches and concatenation, with widths and map sizes at ``input_size``; :func:`cpn_diagram` draws
    it. CPN §3.2, Fig. 1; chapter 05."""
    if not isinstance(model, CPN):
        raise TypeError(f"cpn_layout: expected a CPN (posebook.models.create('cpn', ...)), got {type(model).__name__}")
    h, w = check_input_size(input_size, "cpn_layout")
    backbone, global_net = model.backbone, model.global_net
    refine = getattr(model, "refine_net", None)
    sizes = resnet_sizes((backbone.conv1, backbone.maxpool),
                         [getattr(backbone, f"layer{i}") for i in range(1, 5)], (h, w))  # C2..C5
    out_size = sizes[0]
    k = global_net.num_joints
    d = CPNDiagram(non_local=model.non_local is not None)

    def y(i: float) -> float:  # row of level C_{i+2}
        return -ROW * i

    inp = d.box(-1.5, y(0) + 0.9, f"input\n3 x {h}x{w}", "feature", w=1.35, h=0.7)
    stem = d.box(-1.5, y(0) - 0.3, f"stem\n7x7/2, pool/2\n{backbone.conv1.out_channels} ch", "conv", w=1.55, h=0.85)
    d.arrow((inp, "bottom"), (stem, "top"))
    prev = (stem, "right")
    stage_boxes = []
    for i in range(4):
        layer = getattr(backbone, f"layer{i + 1}")
        channels = backbone.feature_channels[4 * 2 ** i]
        d.stages.append({"name": f"res{i + 2}", "level": f"C{i + 2}", "blocks": len(layer), "channels": channels,
                         "stride": 4 * 2 ** i, "size": sizes[i]})
        box = d.box(X_STAGE, y(i), f"res{i + 2} \u2192 C{i + 2}\n{len(layer)} Bottl.\n{channels} ch, "
                                   f"{sizes[i][0]}x{sizes[i][1]}", "residual", w=1.6, h=0.9)
        d.arrow(prev, (box, "left" if i == 0 else "top"))
        if i:
            d.note(X_STAGE + 0.22, y(i) + ROW / 2, "/2", fontsize=7, color="0.3")
        prev = (box, "bottom")
        stage_boxes.append(box)
    d.note(X_STAGE, y(0) + 0.95, f"ResNet-{model.depth}", fontsize=9, weight="bold")

    # GlobalNet, coarse (i = 3, C5) to fine (i = 0, C2), the order its modules are listed in
    nodes: dict[int, object] = {}
    for g, i in enumerate(range(3, -1, -1)):
        start = (stage_boxes[i], "right")
        if i == 3 and model.non_local is not None:
            nl = d.box(X_NONLOCAL, y(i), f"non-local\nblock\n{model.non_local.channels} ch", "residual", w=1.1,
                       h=0.8)
            d.arrow(start, (nl, "left"))
            start = (nl, "right")
        lateral_conv = global_net.lateral[g][0]
        lat = d.box(X_LATERAL, y(i), f"lateral 1x1\n{lateral_conv.in_channels}\u2192{lateral_conv.out_channels}\n"
                                     f"BN ReLU", "conv", w=1.3, h=0.8)
        d.arrow(start, (lat, "left"))
        merged = g > 0
        node = d.box(X_NODE, y(i), "+" if merged else f"P{i + 2}", "add" if merged else "feature",
                     w=0.45 if merged else 0.55, h=0.45)
        d.arrow((lat, "right"), (node, "left"))
        if merged:
            coarser = nodes[i + 1]
            d.arrow((coarser, "top"), (node, "bottom"), color="tab:green")
            d.note(X_NODE - 0.5, y(i) - ROW / 2, "bilinear \u2191\n1x1 conv", fontsize=8, color="tab:green")
        nodes[i] = node
        head = global_net.predictor[g]
        pred = d.box(X_HEAD, y(i) + 0.44, f"predictor\n1x1, 3x3\u2192{head[3].out_channels}\n"
                                          + ("at 1/4" if i == 0 else f"\u2191 {out_size[0]}x{out_size[1]}"),
                     "conv", w=1.85, h=0.8)
        d.arrow((node, "right"), (pred, "left"))
        hm = d.box(X_MAP, y(i) + 0.44, f"GlobalNet\nC{i + 2} maps", "heatmap", w=1.3, h=0.65)
        d.arrow((pred, "right"), (hm, "left"))
        d.levels.append({"level": f"C{i + 2}", "lateral": (lateral_conv.in_channels, lateral_conv.out_channels),
                         "merge": merged, "predictor": (head[0].in_channels, head[3].out_channels),
                         "size": sizes[i]})
    d.note(X_LATERAL + 0.6, y(0) + 0.95, "GlobalNet", fontsize=9, weight="bold")

    if refine is None:
        d.note(X_CONCAT, y(1.5), "no RefineNet:\nthe GlobalNet C2\nheatmaps predict", fontsize=8, color="0.3")
        return d

    ends = []
    for b, i in enumerate(range(3, -1, -1)):
        n = len(refine.branches[b])
        label = (f"{n} x Bottl.\n{refine.channels}\u2192{refine.channels // 2}\u2192{refine.channels}" if n
                 else "0 Bottl.\n(as it is)")
        branch = d.box(X_HEAD, y(i) - 0.44, label + ("\nat 1/4" if i == 0 else
                                                     f"\n\u2191 {out_size[0]}x{out_size[1]}"),
                       "residual", w=1.85, h=0.8)
        d.arrow((nodes[i], "right"), (branch, "left"))
        d.branches.append({"level": f"C{i + 2}", "bottlenecks": n})
        ends.append((branch, i))
    d.concat = refine.concat_channels
    top, bottom = y(0) + 0.1, y(3) - 0.8
    concat = d.box(X_CONCAT, (top + bottom) / 2, f"concat\n{refine.concat_channels} ch\n"
                                                        f"{out_size[0]}x{out_size[1]}", "feature", w=0.95,
                   h=top - bottom)
    for branch, i in ends:
        d.arrow((branch, "right"), (concat.x - concat.w / 2, branch.y), color="tab:green" if i else "0.25")
    fb = refine.final_bottleneck
    final = d.box(X_FINAL, concat.y, f"Bottl.\n{fb.conv1.in_channels}\u2192{fb.conv1.out_channels}"
                                            f"\n\u2192{fb.conv3.out_channels}", "residual", w=1.3, h=0.9)
    conv = d.box(X_FINAL + 1.5, concat.y, f"3x3 conv\n\u2192{refine.num_joints}, BN", "conv", w=1.2, h=0.8)
    out = d.box(X_FINAL + 3.0, concat.y, f"RefineNet\nheatmaps\n{k} x {out_size[0]}x{out_size[1]}", "heatmap",
                w=1.45, h=0.9)
    d.arrow((concat, "right"), (final, "left"))
    d.arrow((final, "right"), (conv, "left"))
    d.arrow((conv, "right"), (out, "left"))
    d.note(X_HEAD, y(3) - 1.05, "RefineNet", fontsize=9, weight="bold")
    return d


def cpn_diagram(model: CPN, input_size=(256, 192), ax=None, title: str = ""):
    """Draw :func:`cpn_layout` of ``model`` at ``input_size``; returns the axis. CPN §3.2, Fig. 1; chapter 05."""
    return cpn_layout(model, input_size).draw(ax, title=title, fontsize=FONTSIZE)
