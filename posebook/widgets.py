"""Widgets that work in the rendered book without a kernel: views drawn in advance, switched in the browser.

A chapter draws each setting of a small explorer as a figure, turns it into a PNG (:func:`figure_png`), and
:func:`linked_views` puts the images in an ``ipywidgets.Stack`` whose ``selected_index`` a slider sets through
``jslink``, so the static page still responds. :func:`linked_grid` does the same for two sliders (rows and columns)
and :func:`linked_explorer` for any number, with nested Stacks. Introduced in chapter 00 (Introduction); used by every
chapter.
"""
from __future__ import annotations

import io
from typing import Callable, Sequence


def figure_png(fig, dpi: int = 72) -> bytes:
    """The PNG bytes of a matplotlib figure (tightly cropped), closing the figure so it is not shown twice."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _label(value, fmt) -> str:
    if fmt is not None:
        return fmt(value) if callable(fmt) else fmt.format(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def linked_explorer(draw: Callable, axes: dict, label: str = "", start: Sequence[int] | None = None,
                    fmt=None, dpi: int = 72):
    """One slider per axis, linked in the browser to nested Stacks of ``draw(*values)`` figures (a VBox).

    ``axes`` maps each slider's description to its values, in the order ``draw`` takes them; every combination is
    drawn in advance (keep them few). ``start`` gives each slider's initial index (default 0); ``fmt`` formats the
    values on the sliders (a format string or a function). Without a kernel the page still answers each slider.
    """
    import ipywidgets as widgets

    if not isinstance(axes, dict) or not axes:
        raise ValueError("linked_explorer: axes must be a non-empty dict {slider description: values}")
    names, values = list(axes), [list(v) for v in axes.values()]
    empty = [n for n, v in zip(names, values) if not v]
    if empty:
        raise ValueError(f"linked_explorer: slider {empty[0]!r} needs at least one value to draw")
    start = [0] * len(names) if start is None else [int(i) for i in start]
    if len(start) != len(names) or any(not 0 <= i < len(v) for i, v in zip(start, values)):
        raise ValueError(f"linked_explorer: start {start} must give one index per slider within "
                         f"{[len(v) for v in values]} values")

    stacks_at: list[list] = [[] for _ in names]  # the Stacks each slider switches, by depth

    def build(depth: int, chosen: tuple):
        if depth == len(names):
            return widgets.Image(value=figure_png(draw(*chosen), dpi=dpi), format="png")
        stack = widgets.Stack([build(depth + 1, chosen + (v,)) for v in values[depth]],
                              selected_index=start[depth])
        stacks_at[depth].append(stack)
        return stack

    view = build(0, ())
    sliders = []
    for depth, (name, vals) in enumerate(zip(names, values)):
        slider = widgets.SelectionSlider(options=[(_label(v, fmt), i) for i, v in enumerate(vals)],
                                         value=start[depth], description=name)
        for stack in stacks_at[depth]:
            widgets.jslink((slider, "index"), (stack, "selected_index"))  # in the browser, no kernel needed
        sliders.append(slider)
    controls = sliders if len(sliders) == 1 else [widgets.HBox(sliders[i:i + 2]) for i in range(0, len(sliders), 2)]
    return widgets.VBox(([widgets.Label(label)] if label else []) + controls + [view])


def linked_views(draw: Callable, values: Sequence, description: str, label: str = "", fmt=None, dpi: int = 72):
    """A slider over ``values`` linked in the browser to a Stack of ``draw(value)`` figures (a VBox)."""
    if len(values) == 0:
        raise ValueError("linked_views needs at least one value to draw")
    return linked_explorer(draw, {description: values}, label, fmt=fmt, dpi=dpi)


def linked_grid(draw: Callable, rows: Sequence, cols: Sequence, row_description: str, col_description: str,
                label: str = "", start: Sequence[int] = (0, 0), fmt=None, dpi: int = 72):
    """Two sliders (rows, columns) linked in the browser to the ``draw(row, col)`` figures of every pair (a VBox)."""
    if row_description == col_description:
        raise ValueError(f"linked_grid: the two sliders need different descriptions, got {row_description!r} twice")
    return linked_explorer(draw, {row_description: rows, col_description: cols}, label, start, fmt, dpi)

