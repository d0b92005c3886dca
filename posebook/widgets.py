"""Widgets that work in the rendered book without a kernel: views drawn in advance, switched in the browser.

A chapter draws each setting of a small explorer as a figure, turns it into a PNG (:func:`figure_png`), and
:func:`linked_views` puts the images in an ``ipywidgets.Stack`` whose ``selected_index`` a slider sets through
``jslink``, so the static page still responds. Introduced in chapter 00 (Introduction); used by every chapter.
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


def linked_views(draw: Callable, values: Sequence, description: str, label: str = ""):
    """A slider over ``values`` linked in the browser to a Stack of ``draw(value)`` figures (a VBox)."""
    import ipywidgets as widgets

    if len(values) == 0:
        raise ValueError("linked_views needs at least one value to draw")
    views = widgets.Stack([widgets.Image(value=figure_png(draw(v)), format="png") for v in values],
                          selected_index=0)
    slider = widgets.IntSlider(value=0, min=0, max=len(values) - 1, description=description)
    widgets.jslink((slider, "value"), (views, "selected_index"))
    return widgets.VBox([widgets.Label(label), slider, views] if label else [slider, views])
