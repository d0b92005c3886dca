"""SimpleBaseline drawn from a built model: the ResNet going down to stride 32, the deconvolutions coming back to
stride 4, and the 1x1 head, one row per resolution, with no skip connection between the two halves.

Xiao, Wu, Wei, "Simple Baselines for Human Pose Estimation and Tracking" (ECCV 2018), §2 and Fig. 1(c). Every box
(the stem's layers, each ResNet stage's blocks and width, each deconvolution's kernel, stride, padding and width,
the number of heatmaps) and every printed size is read from the model passed in, traced on its own device (the
meta device draws the full-size network without allocating a weight). Chapter 04.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from posebook.diagrams.base import Diagram
from posebook.models.simple_baseline import SimpleBaseline

STEP = 1.5  # horizontal distance between consecutive boxes
ROW = 1.35  # vertical distance between two resolutions


@dataclass(frozen=True)
class Stage:
    """One drawn stage: its ``name``, ``kind`` (a key of the diagram colours), output ``stride`` (a power of two),
    output ``channels`` and traced output ``size`` (H, W). SimpleBaseline §2; chapter 04."""

    name: str
    kind: str
    stride: int
    channels: int
    size: tuple[int, int]


@dataclass
class SimpleBaselineDiagram(Diagram):
    """A :class:`Diagram` that also lists the ``stages`` it drew, in forward order (stem, layer1..layer4, each
    deconvolution, the 1x1 head). SimpleBaseline §2; chapter 04."""

    stages: list = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Stage]:
        """The stages of one kind ("residual": the ResNet stages; "upsample": the deconvolutions)."""
        return [s for s in self.stages if s.kind == kind]


def _check(model, input_size) -> tuple[int, int]:
    if not isinstance(model, SimpleBaseline):
        raise TypeError(f"simple_baseline_layout: expected a SimpleBaseline (posebook.models.create("
                        f"'simple_baseline', ...)), got {type(model).__name__}")
    size = tuple(input_size) if isinstance(input_size, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 32 for v in size):
        raise ValueError(f"simple_baseline_layout: input_size={input_size!r}: expected (H, W), two ints of at "
                         f"least 32 (the ResNet halves the input five times)")
    return size


def _trace(model: SimpleBaseline, input_size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
    """(channels, H, W) of the stem (after the max pool), of layer1..layer4, of every ConvTranspose2d and of the
    head, from one forward pass on the model's own device (meta: shapes only)."""
    shapes: dict[str, tuple[int, int, int]] = {}
    watched = {"stem": model.maxpool, "final_layer": model.final_layer,
               **{f"layer{i}": getattr(model, f"layer{i}") for i in range(1, 5)},
               **{f"deconv{i}": m for i, m in enumerate(
                   [m for m in model.deconv_layers if isinstance(m, nn.ConvTranspose2d)], start=1)}}

    def hook(name):
        return lambda module, inputs, output: shapes.__setitem__(name, tuple(output.shape[1:]))

    handles = [module.register_forward_hook(hook(name)) for name, module in watched.items()]
    device = next(model.parameters()).device
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, *input_size, device=device))
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    return shapes


def _stride(input_size: tuple[int, int], height: int) -> int:
    """The nominal stride of a map of ``height`` rows: the power of two nearest to input H / height."""
    return 2 ** round(math.log2(input_size[0] / height))


def simple_baseline_layout(model: SimpleBaseline, input_size: tuple[int, int] = (256, 192)) -> SimpleBaselineDiagram:
    """The boxes of SimpleBaseline, one row per stride: the stem and layer1..layer4 going down (high to low), each
    deconvolution coming back up (low to high), then the 1x1 conv to the heatmaps; sizes traced for ``input_size``
    (H, W). Returns the diagram unfilled (:func:`simple_baseline_diagram` draws it). Xiao et al. §2, Fig. 1(c);
    chapter 04."""
    input_size = _check(model, input_size)
    shapes = _trace(model, input_size)
    d = SimpleBaselineDiagram()

    def y(stride: int) -> float:
        return -ROW * math.log2(stride / 4)

    def size_text(name: str) -> str:
        return f"{shapes[name][1]}x{shapes[name][2]}"

    def add(name: str, kind: str, label: str, x: float) -> object:
        channels, h, w = shapes[name]
        stride = _stride(input_size, h)
        d.stages.append(Stage(name, kind, stride, channels, (h, w)))
        return d.box(x, y(stride), label, kind, w=1.3, h=1.05)

    x = 0.0
    image = d.box(x, y(4) + ROW, f"image\n3 x {input_size[0]}x{input_size[1]}", "feature", w=1.3, h=0.7)
    conv, pool = model.conv1, model.maxpool
    x += STEP
    stem = add("stem", "conv", f"stem\nconv {conv.kernel_size[0]}x{conv.kernel_size[1]}/{conv.stride[0]}\n"
                               f"max pool/{pool.stride}\n{shapes['stem'][0]} ch, {size_text('stem')}", x)
    d.arrow((image, "bottom"), (stem, "top"))
    previous = stem
    for i in range(1, 5):  # high to low: conv2_x..conv5_x
        layer = getattr(model, f"layer{i}")
        x += STEP
        box = add(f"layer{i}", "residual", f"layer{i}\n{len(layer)} x {type(layer[0]).__name__}\n"
                                            f"{shapes[f'layer{i}'][0]} ch, {size_text(f'layer{i}')}", x)
        d.arrow((previous, "right" if box.y == previous.y else "bottom"), (box, "left" if box.y == previous.y
                                                                           else "top"))
        previous = box
    deconvs = [m for m in model.deconv_layers if isinstance(m, nn.ConvTranspose2d)]
    for i, deconv in enumerate(deconvs, start=1):  # low to high: each deconvolution doubles the resolution
        x += STEP
        k, s, p = deconv.kernel_size[0], deconv.stride[0], deconv.padding[0]
        bias = "" if deconv.bias is None else " +bias"
        box = add(f"deconv{i}", "upsample", f"deconv {k}x{k}\ns{s} p{p}{bias}\nBN ReLU\n"
                                            f"{shapes[f'deconv{i}'][0]} ch, {size_text(f'deconv{i}')}", x)
        d.arrow((previous, "right" if box.y == previous.y else "top"), (box, "left" if box.y == previous.y
                                                                        else "bottom"))
        previous = box
    x += STEP
    head = add("final_layer", "conv", f"1x1 conv\n-> {model.final_layer.out_channels}", x)
    d.arrow((previous, "right" if head.y == previous.y else "top"), (head, "left" if head.y == previous.y
                                                                     else "bottom"))
    x += STEP
    out = d.box(x, head.y, f"{model.final_layer.out_channels} heatmaps\n{size_text('final_layer')}", "heatmap",
                w=1.3, h=0.8)
    d.arrow((head, "right"), (out, "left"))
    for stride in sorted({s.stride for s in d.stages}):
        d.note(-0.9, y(stride), f"1/{stride}", fontsize=8, color="0.35", ha="right")
    bottom = max(d.boxes, key=lambda b: -b.y)  # the lowest-resolution box: layer4
    d.note(bottom.x - 0.8, bottom.y, "high to low\n(ResNet)", fontsize=7.5, color="0.3", ha="right")
    d.note(bottom.x + 0.8, bottom.y, "low to high\n(deconvolutions)", fontsize=7.5, color="0.3", ha="left")
    d.note(bottom.x, y(8), "no skip connection\nbetween the halves", fontsize=7.5, color="0.4", style="italic")
    return d


def simple_baseline_diagram(model: SimpleBaseline, input_size: tuple[int, int] = (256, 192), ax=None,
                            title: str | None = None):
    """Draw :func:`simple_baseline_layout` of ``model`` at ``input_size``; returns the axis. The default title names
    the depth and the head. Xiao et al. §2, Fig. 1(c); chapter 04."""
    d = simple_baseline_layout(model, input_size)
    if title is None:
        title = (f"SimpleBaseline-R{model.depth}: ResNet to 1/{max(s.stride for s in d.stages)}, "
                 f"{len(d.of_kind('upsample'))} deconvolutions back to 1/{d.stages[-1].stride}")
    return d.draw(ax, title=title)
