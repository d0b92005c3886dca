"""The Stacked Hourglass drawn from a built model: one hourglass and its recursion, and the stacked network.

Every box is read from the modules (recursion order, widths, the pooling module, the stem's layers, which stacks
merge their prediction back), so the figure changes with the model. Newell et al., ECCV 2016, §3.1-§3.3; chapter 03.
"""
from __future__ import annotations

from torch import nn

from posebook.blocks.hourglass import Hourglass, IntermediateSupervision
from posebook.blocks.residual import Residual
from posebook.diagrams.base import Diagram
from posebook.models.hourglass import StackedHourglass

STEP = 1.15  # horizontal distance between consecutive boxes of the hourglass's main path
ROW = 1.25  # vertical distance between two resolutions


def _levels(hourglass) -> list[Hourglass]:
    """The hourglasses of the recursion, outermost first (``hourglass``, its ``low2``, ...), checked."""
    if not isinstance(hourglass, Hourglass):
        hint = " (pass one of its hourglasses, e.g. model.hourglasses[0])" if isinstance(hourglass, StackedHourglass) \
            else ""
        raise TypeError(f"hourglass_diagram: expected a posebook.blocks.Hourglass, got {type(hourglass).__name__}"
                        f"{hint}")
    levels, node = [], hourglass
    while isinstance(node, Hourglass):
        if levels and node.order != levels[-1].order - 1:
            raise ValueError(f"hourglass_diagram: level {len(levels)} has order {node.order}, expected "
                             f"{levels[-1].order - 1} (each low2 is an hourglass one order lower)")
        levels.append(node)
        node = node.low2
    if not isinstance(node, Residual) or levels[-1].order != 1:
        raise ValueError(f"hourglass_diagram: the innermost low2 must be a Residual of an order-1 hourglass, got "
                         f"{type(node).__name__} at order {levels[-1].order}")
    return levels


def _width(residual: Residual) -> int:
    return residual.conv_block[-1][-1].out_channels


def _pool_label(pool: nn.Module) -> str:
    if isinstance(pool, nn.MaxPool2d):
        return "max pool\n2x2"
    if isinstance(pool, nn.AvgPool2d):
        return "avg pool\n2x2"
    if isinstance(pool, nn.Conv2d):
        return f"conv {pool.kernel_size[0]}x{pool.kernel_size[1]}\nstride {pool.stride[0]}"
    raise ValueError(f"hourglass_diagram: unknown downsampling module {type(pool).__name__}")


def _halve(size: tuple[int, int], pool: nn.Module) -> tuple[int, int]:
    """The output size of a pooling (or strided conv) module on ``size`` (H, W): floor((n + 2p - k) / s) + 1."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    k, s, p = pair(pool.kernel_size), pair(pool.stride), pair(pool.padding)
    return tuple((n + 2 * pp - kk) // ss + 1 for n, kk, ss, pp in zip(size, k, s, p))


def hourglass_layout(hourglass, size: tuple[int, int] | None = None) -> Diagram:
    """The boxes and arrows of one hourglass: down through each level's pool and ``low1``, the innermost ``low2``,
    up through ``low3`` and nearest upsampling, and one ``up1`` skip per level. Newell et al. §3.1; chapter 03."""
    levels = _levels(hourglass)
    order = len(levels)
    d = Diagram()
    y = [-r * ROW for r in range(order + 1)]
    sizes = [tuple(size)] if size is not None else None
    for level in levels if sizes else []:
        sizes.append(_halve(sizes[-1], level.pool))
    x = 0.0
    channels = _width(levels[0].up1)
    left = [d.box(x, y[0], f"input\nC={channels}", "feature", w=0.9)]  # the input of level r, per row r
    previous = left[0]
    for r, level in enumerate(levels):  # going down: pool, then low1, one resolution lower
        x += STEP
        pool = d.box(x, (y[r] + y[r + 1]) / 2, _pool_label(level.pool), "pool", w=0.95, h=0.55)
        d.arrow((previous, "right"), (pool, "left"))
        x += STEP
        low1 = d.box(x, y[r + 1], "low1\nResidual", "residual", w=0.9)
        d.arrow((pool, "right"), (low1, "left"))
        left.append(low1)
        previous = low1
    x += STEP
    bottom = d.box(x, y[order], "low2\nResidual", "residual", w=0.9)
    d.arrow((previous, "right"), (bottom, "left"))
    previous = bottom
    for r in reversed(range(order)):  # going up: low3, nearest x2, the sum with this level's skip
        x += STEP  # low3 at the level below: the innermost follows low2 on the bottom row
        low3 = d.box(x, y[r + 1], "low3\nResidual", "residual", w=0.9)
        d.arrow((previous, "right"), (low3, "left"))
        x += STEP
        up = d.box(x, (y[r] + y[r + 1]) / 2, "nearest\nx2", "upsample", w=0.95, h=0.55)
        d.arrow((low3, "right"), (up, "left"))
        x += STEP * 0.8
        add = d.box(x, y[r], "+", "add", w=0.34, h=0.34)
        d.arrow((up, "right"), (add, "bottom"))
        skip = d.box((left[r].x + add.x) / 2, y[r], "up1\nResidual", "residual", w=0.9)
        d.arrow((left[r], "right"), (skip, "left"), label="skip" if r == 0 else "")
        d.arrow((skip, "right"), (add, "left"))
        previous = add
    x += STEP * 0.9
    out = d.box(x, y[0], f"output\nC={channels}", "feature", w=0.9)
    d.arrow((previous, "right"), (out, "left"))
    for r in range(order + 1):  # the resolution of each row, at the left
        text = f"{sizes[r][0]}x{sizes[r][1]}" if sizes else ("H x W" if r == 0 else f"H/{2 ** r} x W/{2 ** r}")
        d.note(-1.0, y[r], text, color="0.35", ha="right")
    return d


def hourglass_diagram(hourglass, size: tuple[int, int] | None = None, ax=None):
    """Draw one ``Hourglass`` and its recursion (rows = resolutions; ``size`` (H, W) labels them); returns the axis.
    Newell et al. §3.1, Fig. 3; chapter 03."""
    levels = _levels(hourglass)
    title = f"Hourglass(order={len(levels)}, channels={_width(levels[0].up1)})"
    return hourglass_layout(hourglass, size).draw(ax, title=title)


def _check_stacked(model) -> None:
    if not isinstance(model, StackedHourglass):
        hint = " (for one hourglass use hourglass_diagram)" if isinstance(model, Hourglass) else ""
        raise TypeError(f"stacked_diagram: expected a posebook StackedHourglass (models.create('hourglass', ...)), "
                        f"got {type(model).__name__}{hint}")
    if len(model.hourglasses) != len(model.supervision) or not model.hourglasses:
        raise ValueError(f"stacked_diagram: the model has {len(model.hourglasses)} hourglasses but "
                         f"{len(model.supervision)} supervision steps; expected one each, at least one")
    for i, step in enumerate(model.supervision):
        if not isinstance(step, IntermediateSupervision):
            raise ValueError(f"stacked_diagram: supervision[{i}] is a {type(step).__name__}, expected an "
                             "IntermediateSupervision")


def _stem_label(stem: nn.Sequential) -> str:
    """The stem's layers in words, read from its modules, and the resolution it leaves (product of strides)."""
    parts, stride = [], 1
    for m in stem:
        if isinstance(m, nn.Conv2d):
            parts.append(f"conv {m.kernel_size[0]}x{m.kernel_size[1]} s{m.stride[0]}")
            stride *= m.stride[0]
        elif isinstance(m, nn.MaxPool2d):
            parts.append("max pool")
            stride *= m.stride if isinstance(m.stride, int) else m.stride[0]
        elif isinstance(m, Residual):
            if parts and parts[-1].endswith("Residual"):
                count = int(parts[-1].split(" x ")[0]) + 1 if " x " in parts[-1] else 2
                parts[-1] = f"{count} x Residual"
            else:
                parts.append("Residual")
    return "stem\n" + "\n".join(parts) + f"\n-> 1/{stride}"


def stacked_layout(model) -> Diagram:
    """The boxes and arrows of a ``StackedHourglass``: stem, each stack's hourglass, features and supervised
    heatmaps, and the merge ``inter + conv1x1(ll) + conv1x1(heatmaps)``. Newell et al. §3.2-§3.3; chapter 03."""
    _check_stacked(model)
    d = Diagram()
    channels = _width(model.hourglasses[0].up1)
    image = d.box(0.0, 0.0, "image\n3 x H x W", "feature", w=1.0, h=0.7)
    stem = d.box(1.6, 0.0, _stem_label(model.stem), "conv", w=1.5, h=1.5)
    d.arrow((image, "right"), (stem, "left"))
    inter, x = stem, 1.6 + 0.75
    for i, (hourglass, step) in enumerate(zip(model.hourglasses, model.supervision)):
        start = x + 0.45  # where this stack's input (inter) leaves for the merge's skip
        hg = d.box(x + 1.3, 0.0, f"Hourglass {i + 1}\norder {hourglass.order}\nC={channels}", "residual",
                   w=1.3, h=1.0)
        d.arrow((inter, "right"), (hg, "left"), label="inter" if i == 0 else "")
        ll = d.box(hg.x + 1.55, 0.0, "Residual\n+ 1x1 (ll)", "conv", w=1.1)
        d.arrow((hg, "right"), (ll, "left"))
        heat = d.box(ll.x, -1.3, f"1x1 -> {step.tmp_out.out_channels}\nheatmaps", "heatmap", w=1.1)
        d.arrow((ll, "bottom"), (heat, "top"))
        loss = d.box(ll.x, -2.45, f"loss {i + 1}", "heatmap", w=0.9, h=0.45)
        d.arrow((heat, "bottom"), (loss, "top"), linestyle="--")
        if step.merge_features is None:  # the last stack: its heatmaps are the prediction
            d.note(ll.x + 1.05, -1.3, "predict", color="0.35")
            x = ll.x + 0.55
            break
        f1 = d.box(ll.x + 1.3, 0.0, "1x1", "conv", w=0.55, h=0.45)
        p1 = d.box(ll.x + 1.3, -1.3, "1x1", "conv", w=0.55, h=0.45)
        add = d.box(ll.x + 2.1, 0.0, "+", "add", w=0.34, h=0.34)
        d.arrow((ll, "right"), (f1, "left"))
        d.arrow((heat, "right"), (p1, "left"))
        d.arrow((f1, "right"), (add, "left"))
        d.arrow((p1, "right"), (add, "bottom"))
        d.arrow((start, 0.0), (add, "top"), rad=-0.25, color="0.45")  # inter, around this stack
        inter, x = add, add.x
    return d


def stacked_diagram(model, ax=None):
    """Draw a ``StackedHourglass``: the stem, every stack with its supervised heatmaps and loss, and the merge into
    the next stack's input; returns the axis. Newell et al. §3.3, Fig. 4; chapter 03."""
    _check_stacked(model)
    title = f"StackedHourglass: {len(model.hourglasses)} stacks, each supervised"
    return stacked_layout(model).draw(ax, title=title)
