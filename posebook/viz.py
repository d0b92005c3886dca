"""Drawing for every chapter: skeletons (left limbs one colour, right another), heatmap grids and overlays, and
training curves (``plot_history``, the Trainer's live plot).

Small on purpose: chapters compose these with matplotlib. Introduced in chapter 01 (Data); curves in chapter 03.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from posebook.keypoints import Skeleton

LEFT = (0.12, 0.47, 0.91)  # blue
RIGHT = (0.95, 0.35, 0.10)  # orange
CENTER = (0.20, 0.75, 0.25)  # green


def side(name: str) -> str:
    """'left', 'right' or 'center' from a keypoint name (COCO 'left_wrist', MPII 'l_wrist')."""
    lowered = name.lower()
    if lowered.startswith(("left", "l_")):
        return "left"
    if lowered.startswith(("right", "r_")):
        return "right"
    return "center"


def limb_colors(skeleton: Skeleton, left=LEFT, right=RIGHT, center=CENTER) -> list[tuple]:
    """One RGB colour (0..1) per limb: left when both ends are left, right when both are right, else center."""
    palette = {"left": left, "right": right, "center": center}
    out = []
    for a, b in skeleton.limbs:
        sa, sb = side(skeleton.names[a]), side(skeleton.names[b])
        out.append(palette[sa] if sa == sb else center)
    return out


def point_colors(skeleton: Skeleton, left=LEFT, right=RIGHT, center=CENTER) -> list[tuple]:
    """One RGB colour (0..1) per keypoint, by its side."""
    palette = {"left": left, "right": right, "center": center}
    return [palette[side(n)] for n in skeleton.names]


def _visible_limbs(keypoints: np.ndarray, skeleton: Skeleton, min_visibility: float):
    shown = keypoints[:, 2] > min_visibility
    colors = limb_colors(skeleton)
    return [(a, b, colors[i]) for i, (a, b) in enumerate(skeleton.limbs) if shown[a] and shown[b]], shown


def draw_skeleton(ax_or_image, keypoints, skeleton: Skeleton, *, min_visibility: float = 0.0, linewidth: float = 2.0,
                  markersize: float = 4.0, alpha: float = 1.0):
    """Draw (K, 3) keypoints and the skeleton's limbs on a matplotlib Axes (returns it) or on a copy of an
    (H, W, 3) uint8 image (returns the copy). Keypoints with v <= ``min_visibility`` are not drawn."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[0] != skeleton.num_keypoints or kp.shape[1] < 2:
        raise ValueError(f"draw_skeleton expects ({skeleton.num_keypoints}, 3) keypoints for {skeleton.name}, "
                         f"got {kp.shape}")
    if kp.shape[1] == 2:
        kp = np.concatenate([kp, np.full((len(kp), 1), 2.0)], axis=1)
    limbs, shown = _visible_limbs(kp, skeleton, min_visibility)
    colors = point_colors(skeleton)
    if isinstance(ax_or_image, np.ndarray):
        return _draw_on_image(ax_or_image, kp, limbs, shown, colors, linewidth, markersize)
    ax = ax_or_image
    for a, b, color in limbs:
        ax.plot(kp[[a, b], 0], kp[[a, b], 1], color=color, linewidth=linewidth, alpha=alpha, solid_capstyle="round")
    for k in np.nonzero(shown)[0]:
        ax.plot(kp[k, 0], kp[k, 1], "o", color=colors[k], markersize=markersize, alpha=alpha,
                markeredgecolor="white", markeredgewidth=0.5)
    return ax


def _draw_on_image(image, kp, limbs, shown, colors, linewidth, markersize):
    out = np.ascontiguousarray(image).copy()
    scale = 16  # cv2 fixed-point drawing keeps sub-pixel positions
    pts = np.rint(kp[:, :2] * scale).astype(np.int64)

    def rgb(c):
        return tuple(int(255 * v) for v in c)

    for a, b, color in limbs:
        cv2.line(out, tuple(map(int, pts[a])), tuple(map(int, pts[b])), rgb(color), max(1, int(linewidth)),
                 cv2.LINE_AA, shift=4)
    for k in np.nonzero(shown)[0]:
        cv2.circle(out, tuple(map(int, pts[k])), int(markersize * scale / 2), rgb(colors[k]), -1, cv2.LINE_AA, shift=4)
    return out


def overlay_heatmap(image, heatmap, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heatmap (h, w), or the max over (K, h, w), resized to the image, onto an (H, W, 3) uint8 image."""
    import matplotlib

    img = np.asarray(image)
    hm = heatmap.detach().cpu().numpy() if hasattr(heatmap, "detach") else np.asarray(heatmap, dtype=np.float32)
    if hm.ndim == 3:
        hm = hm.max(axis=0)
    if hm.ndim != 2 or img.ndim != 3:
        raise ValueError(f"overlay_heatmap expects an (H, W, 3) image and an (h, w) heatmap, got {img.shape} and "
                         f"{hm.shape}")
    hm = cv2.resize(hm.astype(np.float32), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    colored = matplotlib.colormaps[cmap](np.clip(hm, 0, 1))[..., :3] * 255
    weight = alpha * np.clip(hm, 0, 1)[..., None]
    return np.clip(img * (1 - weight) + colored * weight, 0, 255).astype(np.uint8)


def show_heatmaps(heatmaps, names=None, image=None, ncols: int = 6, size: float = 1.6, axes=None):
    """A grid of per-keypoint heatmaps (K, h, w), titled by ``names``, optionally over ``image``; returns the figure."""
    import matplotlib.pyplot as plt

    hm = heatmaps.detach().cpu().numpy() if hasattr(heatmaps, "detach") else np.asarray(heatmaps)
    if hm.ndim != 3:
        raise ValueError(f"show_heatmaps expects (K, h, w) heatmaps, got shape {hm.shape}")
    k = hm.shape[0]
    nrows = -(-k // ncols)
    if axes is None:
        aspect = hm.shape[1] / hm.shape[2]
        fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * aspect), squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= k:
            continue
        shown = overlay_heatmap(image, hm[i]) if image is not None else hm[i]
        ax.imshow(shown, cmap=None if image is not None else "magma", vmin=0, vmax=1)
        if names is not None:
            ax.set_title(names[i], fontsize=7)
    return axes[0].figure


# ---- training curves (chapter 03) -------------------------------------------------------------------------------

def plot_history(history: list[dict], ax=None, metrics: Sequence[str] | None = None):
    """Loss against step (log scale) and, on a second axis, the validation metrics of a Trainer's history; returns
    the figure. Chapter 03."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    if losses:
        ax.plot(*zip(*losses), color="tab:blue", label="training loss")
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    base = {"step", "loss", "lr", "samples_per_s"}
    names = metrics if metrics is not None else sorted({k for h in history for k in h} - base)
    if names:
        twin = ax.twinx()
        for name in names:
            points = [(h["step"], h[name]) for h in history if name in h]
            if not points:
                raise ValueError(f"plot_history: metric {name!r} is in no history record; recorded: "
                                 f"{sorted({k for h in history for k in h} - base)}")
            twin.plot(*zip(*points), marker="o", label=name)
        twin.set_ylabel("validation")
        twin.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return ax.figure


def in_notebook() -> bool:
    """True inside an IPython kernel or shell (where a live figure can be displayed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


class LivePlot:
    """The loss/metric figure of a running training, redrawn in place in a notebook (an IPython display handle).

    The Trainer makes one when ``plot=True``. Outside a notebook it draws but displays (and prints) nothing. Chapter 03.
    """

    def __init__(self):
        import matplotlib.pyplot as plt

        self.fig, self.ax = plt.subplots(figsize=(7, 3.5))
        self.handle = None
        if in_notebook():
            from IPython.display import display

            self.handle = display(self.fig, display_id=True)

    def update(self, history: list[dict]) -> None:
        for extra in self.fig.axes[1:]:
            extra.remove()
        self.ax.clear()
        plot_history(history, ax=self.ax)
        if self.handle is not None:
            self.handle.update(self.fig)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.fig)
