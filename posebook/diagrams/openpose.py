"""OpenPose's architecture diagrams, read from a built model: the image, the front that makes the features F, and every
stage with what it reads and what it predicts, each prediction supervised (a loss at every stage).

Cao, Simon, Wei, Sheikh, "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields" (CVPR 2017, §2.1,
Fig. 3): :class:`~posebook.models.openpose.OpenPose`, two branches per stage, PAFs L^t and confidence maps S^t, stage
t reading concat(L^{t-1}, S^{t-1}, F). Cao et al., "OpenPose" (TPAMI 2019, §3.1, Fig. 3):
:class:`~posebook.models.openpose.OpenPosePAFFirst`, PAF stages L^t = phi(F, L^{t-1}) then confidence-map stages
S^t = rho(F, S^{t-1}, L^{T_P}), each of concatenated 3x3 blocks. Everything drawn (the front and its layers, F's
channels and size at the given input size, the number of stages, each branch's convs, kernels and widths, the output
channels, the inputs of each stage) comes from the modules of the model passed in, so chapter 08's variants (3x3
later convs, narrow widths, the ResNet front) draw differently. Chapter 08.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from posebook.blocks.openpose import Concat3x3Block, ResNetFront, SingleBranchStage, TwoBranchStage, VGG19Front
from posebook.diagrams.base import Diagram, check_input_size, out_length, resnet_sizes
from posebook.models.openpose import STRIDE, OpenPose, OpenPosePAFFirst

FONTSIZE = 7.5  # the labels' size: six stages fit a figure about 10 inches wide
PITCH = 1.75  # horizontal distance between two stages
BRANCH_W = 1.22  # a stage's (or branch's) box width
BAR_W, BAR_GAP = 0.17, 0.2  # the concat bar in front of each stage, and its gap to the stage
X_FRONT, X_FIRST = 0.0, 2.0  # the front's column, the first stage's centre
LOSS = "tab:red"  # the loss markers
F_COLOR, LAST_L_COLOR = "tab:purple", "tab:blue"  # F's arrows into every stage; TPAMI'19's L^{T_P} into every CM stage
SCALE = 0.8  # inches per unit of a figure drawn without ``ax``: the labels fit their boxes at FONTSIZE


@dataclass
class OpenPoseDiagram(Diagram):
    """A :class:`Diagram` that also lists what it drew, each read from the model: ``paper`` ("CVPR'17" or
    "TPAMI'19"), ``front`` (its ``name``, ``layers``, F's ``channels`` and ``size``), ``stages`` (in forward order,
    each with its ``name``, ``reads`` (the maps concatenated into it), ``in_channels``, ``branches`` (per branch its
    ``output``, ``convs``, ``kernel``, ``channels``, ``mid_channels``, ``out_channels``, and for TPAMI'19 ``blocks``)
    and ``box``/``outputs`` (the drawn boxes)), ``losses`` (the supervised maps, one per stage output) and ``frames``
    ((x0, y0, x1, y1) of each CVPR'17 stage's outline around its two branches). Chapter 08."""

    paper: str = ""
    front: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    frames: list = field(default_factory=list)

    def draw(self, ax=None, title: str = "", fontsize: float = FONTSIZE, margin: float = 0.3):
        """Draw on ``ax`` (a new figure 10 inches wide when None, the book's notebook width); returns the axis."""
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyBboxPatch

        if ax is None:
            x0, x1, y0, y1 = self.extent(margin)
            width = min(10.0, SCALE * (x1 - x0))  # six stages fill 10 inches; fewer keep the same scale
            _, ax = plt.subplots(figsize=(width, width * (y1 - y0) / (x1 - x0) + 0.3))
        ax = super().draw(ax, title=title, fontsize=fontsize, margin=margin)
        for fx0, fy0, fx1, fy1 in self.frames:  # behind the boxes, above nothing: an outline only
            ax.add_patch(FancyBboxPatch((fx0, fy0), fx1 - fx0, fy1 - fy0, boxstyle="round,pad=0.02,rounding_size=0.1",
                                        facecolor="none", edgecolor="0.55", lw=0.7, linestyle=(0, (3, 2)), zorder=0.5))
        return ax


def _check_input_size(input_size, where: str) -> tuple[int, int]:
    message = (f"{where}: input_size={input_size!r}; expected (H, W), two ints of at least 32 that divide by "
               f"{STRIDE} (the model's input; the paper's (368, 368))")
    try:
        h, w = check_input_size(input_size, where)
    except ValueError:
        raise ValueError(message) from None
    if h % STRIDE or w % STRIDE:
        raise ValueError(message)
    return h, w


def _sup(name: str, t) -> str:
    """``name`` with superscript ``t`` in matplotlib's mathtext, for the labels."""
    return f"{name}$^{{{t}}}$"


def _map(name: str, t) -> str:
    """A map's plain name for the records (``L^1``, ``S^3``): what the diagram's lists hold."""
    return f"{name}^{t}"


# ---- the front ------------------------------------------------------------------------------------------------------

def _front_info(front: nn.Module, size: tuple[int, int]) -> dict:
    """The front's name, its layers in words, F's channels and F's (H, W) at input ``size``, read from the module."""
    if isinstance(front, VGG19Front):
        convs = [name for name, m in front.named_children() if isinstance(m, nn.Conv2d)]
        pools = [name for name, m in front.named_children() if isinstance(m, nn.MaxPool2d)]
        cpm = [name for name in convs if name.endswith("_CPM")]
        vgg = [name for name in convs if name not in cpm]
        prelu = [name for name, m in front.named_children() if isinstance(m, nn.PReLU)]
        for m in front.children():
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                size = tuple(out_length(n, m) for n in size)
        lines = ["VGG-19", f"{vgg[0]}..{vgg[-1]}", f"{len(vgg)} convs 3x3", f"{len(pools)} max-pools 2x2"]
        lines += [f"+ {name}" for name in cpm]
        if prelu:
            lines.append(f"PReLU from {'conv' + prelu[0][len('prelu'):]}")
        return {"name": "VGG-19", "layers": convs, "pools": len(pools), "prelu": bool(prelu), "label": "\n".join(lines),
                "channels": front.out_channels, "size": size}
    if isinstance(front, ResNetFront):
        size = resnet_sizes((front.conv1, front.maxpool), (front.layer1, front.layer2), size)[-1]
        size = tuple(out_length(n, front.conv_cpm) for n in size)
        block = type(front.layer1[0]).__name__
        k = front.conv_cpm.kernel_size[0]
        label = (f"ResNet trunk /{front.conv1.out_channels}\nconv1..layer2\n{len(front.layer1)} + {len(front.layer2)} "
                 f"{block}\n+ conv_cpm {k}x{k}\n(stand-in front,\nnot the paper's)")
        return {"name": "ResNet", "layers": ["conv1", "layer1", "layer2", "conv_cpm"], "block": block,
                "label": label, "channels": front.out_channels, "size": size}
    # any other front: its class name, F at the model's stride
    channels = getattr(front, "out_channels", None)
    return {"name": type(front).__name__, "layers": [], "label": type(front).__name__, "channels": channels,
            "size": tuple(n // STRIDE for n in size)}


def _draw_front(d: OpenPoseDiagram, front: nn.Module, size: tuple[int, int], y_f: float, top: float):
    """Image, front and F stacked in the first column; returns F's box (the bus starts at its right)."""
    info = _front_info(front, size)
    d.front = {k: v for k, v in info.items() if k != "label"}
    lines = info["label"].count("\n") + 1
    inp = d.box(X_FRONT, top - 0.27, f"image\n3 x {size[0]}x{size[1]}", "feature", w=1.3, h=0.5)
    fh = 0.25 + 0.175 * lines
    box = d.box(X_FRONT, (inp.y - 0.25 + y_f + 0.25) / 2, info["label"], "conv", w=1.75, h=fh)
    h, w = info["size"]
    c = info["channels"]
    f = d.box(X_FRONT, y_f, f"F: {c} ch\n{h}x{w} (1/{size[0] // h})", "feature", w=1.3, h=0.5)
    d.arrow((inp, "bottom"), (box, "top"))
    d.arrow((box, "bottom"), (f, "top"))
    return f


def _bar(d: OpenPoseDiagram, x: float, y0: float, y1: float, channels: int, concat: bool):
    """The thin bar in front of a stage: the concatenation it reads (its channels written inside, upright)."""
    bar = d.box(x, (y0 + y1) / 2, "", "feature", w=BAR_W, h=y1 - y0)
    d.note(x, bar.y, f"concat {channels}" if concat else str(channels), fontsize=FONTSIZE - 1.5, rotation=90,
           color="0.25")
    return bar


def _bus(d: OpenPoseDiagram, start: tuple[float, float], bars: list, y: float, color: str, end_side: str) -> None:
    """A line at height ``y`` from ``start`` past every bar, with an arrow into each (its ``end_side``)."""
    d.arrow(start, (bars[-1].x, y), style="-", color=color)
    for bar in bars:
        d.arrow((bar.x, y), (bar, end_side), color=color)


# ---- CVPR'17: two branches per stage -----------------------------------------------------------------------------

def _branch_info(branch: nn.Sequential, output: str) -> dict:
    """A CVPR'17 branch read from its convs: ``convs`` x (k x k, ``channels``), 1x1 ``mid_channels``, 1x1 output."""
    convs = [m for m in branch if isinstance(m, nn.Conv2d)]
    body, mid, out = convs[:-2], convs[-2], convs[-1]
    return {"output": output, "convs": len(body), "kernel": body[0].kernel_size[0] if body else None,
            "channels": body[0].out_channels if body else None, "mid_channels": mid.out_channels,
            "mid_kernel": mid.kernel_size[0], "out_channels": out.out_channels}


def _branch_label(b: dict) -> str:
    k, m = b["kernel"], b["mid_kernel"]
    return f"{b['convs']} x {k}x{k}, {b['channels']}\n{m}x{m}, {b['mid_channels']}\n1x1 \u2192 {b['out_channels']}"


def _cvpr_layout(model: OpenPose, size: tuple[int, int]) -> OpenPoseDiagram:
    d = OpenPoseDiagram(paper="CVPR'17")
    y_branch, bh = 0.55, 0.75  # the PAF branch above, the map branch below
    y_out, oh = 1.38, 0.36  # L^t above, S^t below
    y_loss, y_title, y_bus = 1.79, 2.15, -2.05
    f = _draw_front(d, model.front, size, y_bus, y_title + 0.15)
    bars, prev = [], None
    for t, stage in enumerate(model.stages, start=1):
        if not isinstance(stage, TwoBranchStage):
            raise TypeError(f"openpose_layout: stage {t} is a {type(stage).__name__}; expected a TwoBranchStage")
        x = X_FIRST + (t - 1) * PITCH
        branches = [_branch_info(stage.paf_branch, _map("L", t)), _branch_info(stage.heatmap_branch, _map("S", t))]
        bar = _bar(d, x - BRANCH_W / 2 - BAR_GAP - BAR_W / 2, -y_branch - bh / 2, y_branch + bh / 2,
                   stage.in_channels, concat=t > 1)
        bars.append(bar)
        paf = d.box(x, y_branch, _branch_label(branches[0]), "conv", w=BRANCH_W, h=bh)
        hm = d.box(x, -y_branch, _branch_label(branches[1]), "conv", w=BRANCH_W, h=bh)
        d.arrow((bar.x + BAR_W / 2, y_branch), (paf, "left"))
        d.arrow((bar.x + BAR_W / 2, -y_branch), (hm, "left"))
        l_out = d.box(x, y_out, f"{_sup('L', t)}: {branches[0]['out_channels']} ch", "heatmap", w=0.95, h=oh)
        s_out = d.box(x, -y_out, f"{_sup('S', t)}: {branches[1]['out_channels']} ch", "heatmap", w=0.95, h=oh)
        d.arrow((paf, "top"), (l_out, "bottom"))
        d.arrow((hm, "bottom"), (s_out, "top"))
        for y in (y_loss, -y_loss):
            d.note(x, y, "loss", fontsize=FONTSIZE - 0.5, color=LOSS, style="italic")
        d.losses += [_map("L", t), _map("S", t)]
        kernel = branches[0]["kernel"]
        d.note(x, y_title, f"stage {t}" + (f" ({kernel}x{kernel})" if kernel else ""), fontsize=FONTSIZE + 0.5,
               weight="bold")
        pad = 0.08
        d.frames.append((x - BRANCH_W / 2 - pad, -y_out - oh / 2 - pad, x + BRANCH_W / 2 + pad, y_out + oh / 2 + pad))
        reads = ["F"] if prev is None else [_map("L", t - 1), _map("S", t - 1), "F"]
        if prev is not None:  # the previous stage's maps into this stage's concat
            d.arrow((prev[0], "right"), (bar.x - BAR_W / 2, y_branch + 0.2), rad=-0.25)
            d.arrow((prev[1], "right"), (bar.x - BAR_W / 2, -y_branch - 0.2), rad=0.25)
        prev = (l_out, s_out)
        d.stages.append({"name": f"stage {t}", "reads": reads, "in_channels": stage.in_channels,
                         "branches": branches, "box": (paf, hm), "outputs": (l_out, s_out)})
    _bus(d, (f, "right"), bars, y_bus, F_COLOR, "bottom")
    d.note(bars[0].x, y_bus - 0.4, "F into every stage; stage t > 1 reads concat(L$^{t-1}$, S$^{t-1}$, F)\n"
           "a loss on every stage's maps (intermediate supervision)", fontsize=FONTSIZE - 0.5, color="0.3", ha="left")
    return d


# ---- TPAMI'19: PAF stages, then confidence-map stages --------------------------------------------------------------

def _single_branch_info(stage: SingleBranchStage, output: str) -> dict:
    """A TPAMI'19 stage read from its modules: ``blocks`` x Concat3x3Block (``convs`` k x k of ``channels`` each,
    concatenated), 1x1 ``mid_channels``, 1x1 output."""
    blocks = [m for m in stage if isinstance(m, Concat3x3Block)]
    convs = [m for m in stage if isinstance(m, nn.Conv2d)]
    mid, out = convs[-2], convs[-1]
    inner = [m for m in blocks[0].children() if isinstance(m, nn.Conv2d)] if blocks else []
    return {"output": output, "blocks": len(blocks), "convs": len(inner),
            "kernel": inner[0].kernel_size[0] if inner else None, "channels": inner[0].out_channels if inner else None,
            "concat_channels": blocks[0].out_channels if blocks else None, "mid_channels": mid.out_channels,
            "out_channels": out.out_channels}


def _single_branch_label(b: dict) -> str:
    k = b["kernel"]
    return (f"{b['blocks']} blocks of\n{b['convs']} x {k}x{k}, {b['channels']}\nconcat \u2192 {b['concat_channels']}\n"
            f"1x1, {b['mid_channels']}\n1x1 \u2192 {b['out_channels']}")


def _tpami_layout(model: OpenPosePAFFirst, size: tuple[int, int]) -> OpenPoseDiagram:
    d = OpenPoseDiagram(paper="TPAMI'19")
    bh = 1.15  # the stages' row at y = 0
    y_out, oh = 1.1, 0.36
    y_loss, y_last, y_title, y_group, y_bus = 1.43, 1.73, 2.0, 2.4, -1.5
    f = _draw_front(d, model.front, size, y_bus, y_group + 0.1)
    kinds = [("L", "PAF", s) for s in model.paf_stages] + [("S", "CM", s) for s in model.cm_stages]
    t_p = len(model.paf_stages)
    bars, cm_bars, prev, last_l = [], [], None, None
    for i, (name, kind, stage) in enumerate(kinds):
        if not isinstance(stage, SingleBranchStage):
            raise TypeError(f"openpose_layout: {kind} stage {i + 1} is a {type(stage).__name__}; expected a "
                            f"SingleBranchStage")
        t = i + 1 if kind == "PAF" else i + 1 - t_p
        x = X_FIRST + i * PITCH
        info = _single_branch_info(stage, _map(name, t))
        bar = _bar(d, x - BRANCH_W / 2 - BAR_GAP - BAR_W / 2, -bh / 2, bh / 2, stage.in_channels, concat=i > 0)
        bars.append(bar)
        box = d.box(x, 0.0, _single_branch_label(info), "conv", w=BRANCH_W, h=bh)
        d.arrow((bar, "right"), (box, "left"))
        out = d.box(x, y_out, f"{_sup(name, t)}: {info['out_channels']} ch", "heatmap", w=0.95, h=oh)
        d.arrow((box, "top"), (out, "bottom"))
        d.note(x, y_loss, "loss", fontsize=FONTSIZE - 0.5, color=LOSS, style="italic")
        d.losses.append(_map(name, t))
        d.note(x, y_title, f"{kind} stage {t}", fontsize=FONTSIZE + 0.5, weight="bold")
        if kind == "PAF":
            reads = ["F"] if t == 1 else ["F", _map("L", t - 1)]
        else:
            cm_bars.append(bar)
            reads = ["F", _map("L", t_p)] if t == 1 else ["F", _map("S", t - 1), _map("L", t_p)]
        if prev is not None:  # the previous stage's maps (L^{T_P} into the first CM stage)
            d.arrow((prev, "right"), (bar.x - BAR_W / 2, 0.25), rad=-0.25)
        prev = out
        if kind == "PAF" and t == t_p:
            last_l = out
        d.stages.append({"name": f"{kind} stage {t}", "reads": reads, "in_channels": stage.in_channels,
                         "branches": [info], "box": box, "outputs": (out,)})
    _bus(d, (f, "right"), bars, y_bus, F_COLOR, "bottom")
    if len(cm_bars) > 1:  # L^{T_P} also into every later CM stage, over the top
        x_up = last_l.x + last_l.w / 2 - 0.08  # clear of its loss marker
        d.arrow((x_up, last_l.y + last_l.h / 2), (x_up, y_last), style="-", color=LAST_L_COLOR)
        _bus(d, (x_up, y_last), cm_bars[1:], y_last, LAST_L_COLOR, "top")
    x_p = X_FIRST + (t_p - 1) * PITCH / 2
    x_c = X_FIRST + (t_p + (len(model.cm_stages) - 1) / 2) * PITCH
    d.note(x_p, y_group, f"PAF stages ({t_p}): L$^t$ = \u03c6(F, L$^{{t-1}}$)", fontsize=FONTSIZE + 1, color="0.2")
    d.note(x_c, y_group, f"CM stages ({len(model.cm_stages)}): S$^t$ = \u03c1(F, S$^{{t-1}}$, L$^{{{t_p}}}$)",
           fontsize=FONTSIZE + 1, color="0.2")
    d.note(bars[0].x, y_bus - 0.4, f"F into every stage, L$^{{{t_p}}}$ into every CM stage\n"
           f"a loss on every stage's maps (intermediate supervision)", fontsize=FONTSIZE - 0.5, color="0.3", ha="left")
    return d


# ---- the entry points --------------------------------------------------------------------------------------------

def openpose_layout(model: OpenPose | OpenPosePAFFirst, input_size=(368, 368)) -> OpenPoseDiagram:
    """OpenPose left to right: the image, the front and F (channels, size at ``input_size``) in the first column,
    then every stage with the concat it reads (a bar; F from below), its convs, its output maps and their loss.
    CVPR'17 (:class:`OpenPose`): two branches per stage, L^t above, S^t below, stage t > 1 reading (L^{t-1},
    S^{t-1}, F). TPAMI'19 (:class:`OpenPosePAFFirst`): the PAF stages, then the CM stages, each reading L^{T_P}.
    :func:`openpose_diagram` draws it. Cao et al. CVPR 2017 Fig. 3, TPAMI 2019 Fig. 3; chapter 08."""
    if isinstance(model, OpenPosePAFFirst):
        return _tpami_layout(model, _check_input_size(input_size, "openpose_layout"))
    if isinstance(model, OpenPose):
        return _cvpr_layout(model, _check_input_size(input_size, "openpose_layout"))
    raise TypeError(f"openpose_layout: expected an OpenPose or OpenPosePAFFirst (posebook.models.create('openpose', "
                    f"...) or create('openpose_paf_first', ...)), got {type(model).__name__}")


def openpose_diagram(model: OpenPose | OpenPosePAFFirst, ax=None, title: str = "", input_size=(368, 368)):
    """Draw :func:`openpose_layout` of ``model`` at ``input_size``; returns the axis (a new 10-inch-wide figure when
    ``ax`` is None). Cao et al. CVPR 2017 Fig. 3, TPAMI 2019 Fig. 3; chapter 08."""
    return openpose_layout(model, input_size).draw(ax, title=title)
