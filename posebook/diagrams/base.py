"""Drawing primitives for the book's architecture diagrams: labelled boxes and arrows on a matplotlib axis.

A diagram module (one per architecture) reads the structure from a built model (its blocks, widths, resolutions)
and places boxes and arrows with :class:`Diagram`, so the figure stays true to the code. Chapters 03 and 07.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# one colour per kind of block, shared by every diagram of the book
COLORS = {
    "conv": "#9ecae1",      # convolutions, stems, 1x1 heads
    "residual": "#c6dbef",  # residual / bottleneck / basic blocks
    "pool": "#fdd0a2",      # downsampling: max pool, strided conv
    "upsample": "#c7e9c0",  # upsampling: nearest, bilinear, deconvolution
    "add": "#ffffff",       # element-wise sum / concatenation
    "heatmap": "#fcbba1",   # predicted heatmaps and their loss
    "feature": "#efedf5",   # feature maps / representations
}


@dataclass
class Box:
    """A labelled rectangle centred at (x, y) in data units."""

    x: float
    y: float
    w: float
    h: float
    label: str
    kind: str = "conv"

    def anchor(self, side: str) -> tuple[float, float]:
        """The midpoint of a side ('left', 'right', 'top', 'bottom') or the 'center'."""
        dx = {"left": -self.w / 2, "right": self.w / 2}.get(side, 0.0)
        dy = {"bottom": -self.h / 2, "top": self.h / 2}.get(side, 0.0)
        if side not in ("left", "right", "top", "bottom", "center"):
            raise ValueError(f"Box.anchor: side must be left, right, top, bottom or center, got {side!r}")
        return self.x + dx, self.y + dy


@dataclass
class Diagram:
    """Boxes and arrows collected first and drawn at once by :meth:`draw` (limits fitted to the content)."""

    boxes: list[Box] = field(default_factory=list)
    arrows: list[tuple] = field(default_factory=list)
    notes: list[tuple] = field(default_factory=list)

    def box(self, x: float, y: float, label: str, kind: str = "conv", w: float = 1.0, h: float = 0.6) -> Box:
        """Add a box of ``kind`` (a key of ``COLORS``) and return it, for arrows to attach to."""
        if kind not in COLORS:
            raise ValueError(f"Diagram.box: kind must be one of {sorted(COLORS)}, got {kind!r}")
        b = Box(x, y, w, h, label, kind)
        self.boxes.append(b)
        return b

    def arrow(self, start, end, label: str = "", style: str = "-|>", color: str = "0.25", rad: float = 0.0,
              linestyle: str = "-") -> None:
        """An arrow between two points or ``(box, side)`` pairs; ``rad`` bends it (a skip connection)."""
        self.arrows.append((self._point(start), self._point(end), label, style, color, rad, linestyle))

    def note(self, x: float, y: float, text: str, **kwargs) -> None:
        """Free text at (x, y) (matplotlib ``text`` keyword arguments pass through)."""
        self.notes.append((x, y, text, kwargs))

    @staticmethod
    def _point(p) -> tuple[float, float]:
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], Box):
            return p[0].anchor(p[1])
        if isinstance(p, Box):
            return p.anchor("center")
        x, y = p
        return float(x), float(y)

    def extent(self, margin: float) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1): the boxes and notes with ``margin`` around them, what :meth:`draw` fits the axis to."""
        x0 = min(b.x - b.w / 2 for b in self.boxes) - margin
        x1 = max(b.x + b.w / 2 for b in self.boxes) + margin
        y0 = min(b.y - b.h / 2 for b in self.boxes) - margin
        y1 = max(b.y + b.h / 2 for b in self.boxes) + margin
        for x, y, _, _ in self.notes:
            x0, x1, y0, y1 = min(x0, x - margin), max(x1, x + margin), min(y0, y - margin), max(y1, y + margin)
        return x0, x1, y0, y1

    def draw(self, ax=None, title: str = "", fontsize: float = 8.0, margin: float = 0.4):
        """Draw everything on ``ax`` (a new figure sized to the content when None); returns the axis."""
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

        if not self.boxes:
            raise ValueError("Diagram.draw: the diagram has no boxes")
        x0, x1, y0, y1 = self.extent(margin)
        if ax is None:
            _, ax = plt.subplots(figsize=(min(16.0, 0.9 * (x1 - x0) + 0.5), min(10.0, 0.9 * (y1 - y0) + 0.5)))
        for (sx, sy), (ex, ey), label, style, color, rad, linestyle in self.arrows:
            ax.add_patch(FancyArrowPatch((sx, sy), (ex, ey), arrowstyle=style, mutation_scale=9, color=color,
                                         connectionstyle=f"arc3,rad={rad}", linestyle=linestyle, lw=1.0,
                                         shrinkA=0, shrinkB=0, zorder=1))
            if label:
                ax.text((sx + ex) / 2, (sy + ey) / 2 + 0.12, label, ha="center", va="bottom",
                        fontsize=fontsize * 0.85, color="0.3", zorder=3)
        for b in self.boxes:
            round_ = "circle,pad=0.02" if b.kind == "add" else "round,pad=0.02,rounding_size=0.08"
            ax.add_patch(FancyBboxPatch((b.x - b.w / 2, b.y - b.h / 2), b.w, b.h, boxstyle=round_,
                                        facecolor=COLORS[b.kind], edgecolor="0.3", lw=0.8, zorder=2))
            ax.text(b.x, b.y, b.label, ha="center", va="center", fontsize=fontsize, zorder=3)
        for x, y, text, kwargs in self.notes:
            ax.text(x, y, text, **{"ha": "center", "va": "center", "fontsize": fontsize, **kwargs})
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.axis("off")
        if title:
            ax.set_title(title, fontsize=fontsize + 2)
        return ax


# ---- map sizes read from the layers (the ResNet-based diagrams: CPN, MSPN) ----------------------------------------

def out_length(size: int, layer) -> int:
    """Output length of a conv or pooling layer along one axis, from its kernel, stride, padding and dilation."""
    k, s, p, d = (v if isinstance(v, int) else v[0] for v in (layer.kernel_size, layer.stride, layer.padding,
                                                             layer.dilation))
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def resnet_sizes(stem, layers, input_size) -> list[tuple[int, int]]:
    """(H, W) after each of ``layers`` (a ResNet's layer1..layer4: C2..C5) for an input of ``input_size``: through the
    ``stem`` layers (conv, pool), then each layer's first residual unit's convs. Chapters 05 and 06."""
    size = list(input_size)
    for layer in stem:
        size = [out_length(n, layer) for n in size]
    sizes = []
    for layer in layers:
        first = layer[0]
        for name in ("conv1", "conv2", "conv3"):
            conv = getattr(first, name, None)
            if conv is not None:
                size = [out_length(n, conv) for n in size]
        sizes.append(tuple(size))
    return sizes


def check_input_size(input_size, where: str) -> tuple[int, int]:
    """``input_size`` as (H, W), two ints of at least 32, else a ValueError naming ``where``. Chapters 05 and 06."""
    try:
        h, w = (int(v) for v in input_size)
        ok = (h, w) == tuple(input_size) and h >= 32 and w >= 32
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{where}: input_size={input_size!r}; expected (H, W), two ints of at least 32 (the "
                         f"paper's (256, 192))")
    return h, w
