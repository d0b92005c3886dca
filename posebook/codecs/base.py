"""What every heatmap codec is: keypoints (input px) -> training targets with ``encode``, heatmaps -> keypoints with
``decode``, and the flip-test convention its official code uses (``flip_shift``). Chapter 01; chapter 02 (flip test).

A codec is the one place that knows how its targets were drawn, so it also says how a flip test must undo the
mirror: HRNet's code shifts the flipped-back heatmaps one column right (``SHIFT_HEATMAP``; Sun et al., CVPR 2019), CPN's
(Chen et al., CVPR 2018) and MSPN's (Li et al., 2019) do not. :mod:`posebook.inference` reads ``codec.flip_shift``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


def _numpy(heatmaps) -> np.ndarray:
    """(B, K, h, w) numpy or torch -> float32 numpy, or a ValueError naming the shape that came."""
    arr = heatmaps.detach().float().cpu().numpy() if hasattr(heatmaps, "detach") else np.asarray(heatmaps)
    if arr.ndim != 4:
        raise ValueError(f"heatmaps must have shape (B, K, h, w), got {arr.shape}")
    return arr.astype(np.float32, copy=False)


class HeatmapCodec(ABC):
    """Keypoints <-> heatmaps at 1/stride of the input: sizes (H, W), the stride, input checks, and the flip convention.

    Subclasses implement ``encode`` and ``decode`` and set ``flip_shift``: whether a flip test shifts the
    flipped-back heatmaps one column right before averaging (HRNet's SHIFT_HEATMAP, Sun et al., CVPR 2019). Chapter 01.
    """

    #: the flip test's one-column shift of the flipped-back heatmaps, as the codec's official code does it
    flip_shift: bool

    def __init__(self, input_size, heatmap_size):
        self.input_size = _size(input_size, "input_size", type(self).__name__)
        self.heatmap_size = _size(heatmap_size, "heatmap_size", type(self).__name__)

    @property
    def stride(self) -> np.ndarray:
        """Input pixels per heatmap pixel, (x, y)."""
        return np.array([self.input_size[1] / self.heatmap_size[1], self.input_size[0] / self.heatmap_size[0]])

    @abstractmethod
    def encode(self, keypoints, visibility) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) keypoints in input px and (K,) visibility -> (heatmaps (K, h, w) float32, weights (K,) float32)."""

    @abstractmethod
    def decode(self, heatmaps) -> tuple[np.ndarray, np.ndarray]:
        """(B, K, h, w) numpy or torch -> (keypoints (B, K, 2) in input px, scores (B, K))."""

    @staticmethod
    def _inputs(keypoints, visibility) -> tuple[np.ndarray, np.ndarray]:
        kp = np.asarray(keypoints, dtype=np.float64)
        vis = np.asarray(visibility, dtype=np.float64).reshape(-1)
        if kp.ndim != 2 or kp.shape[1] != 2 or len(vis) != len(kp):
            raise ValueError(f"encode expects keypoints (K, 2) and visibility (K,), got {kp.shape} and {vis.shape}")
        return kp, vis


def _size(value, name: str, owner: str) -> tuple[int, int]:
    size = tuple(int(v) for v in value)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{owner} {name} must be two positive sizes (H, W), got {tuple(value)}")
    return size
