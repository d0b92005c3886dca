"""Gaussian heatmap codec: HRNet/SimpleBaseline targets with argmax + quarter-offset decoding, or DARK.

``unbiased=False`` reproduces the official HRNet code exactly (Sun et al., CVPR 2019: ``generate_target``,
``get_max_preds`` + quarter offset). ``unbiased=True`` is DARK (Zhang et al., "Distribution-Aware Coordinate
Representation for Human Pose Estimation", CVPR 2020): a sub-pixel Gaussian target, and a decode that smooths the
heatmap with a Gaussian, takes its log and refines the maximum with a second-order Taylor step. Chapter 01.

The building blocks (:func:`get_max_preds`, :func:`quarter_offset`, :func:`dark_refine`) work on batches of
heatmaps in heatmap pixels, so the inference and metrics code can reuse them.
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import HeatmapCodec, _numpy


def get_max_preds(heatmaps) -> tuple[np.ndarray, np.ndarray]:
    """Argmax of each (B, K, h, w) map -> (coords (B, K, 2) in heatmap px, maxvals (B, K)); coords 0 where max <= 0.

    HRNet's ``get_max_preds`` (Sun et al., CVPR 2019, official code). Chapter 01.
    """
    hm = _numpy(heatmaps)
    b, k, _, w = hm.shape
    flat = hm.reshape(b, k, -1)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
    coords *= (maxvals > 0)[..., None]
    return coords, maxvals


def quarter_offset(heatmaps, coords) -> np.ndarray:
    """Move each argmax 0.25 px toward the higher neighbour, per axis (HRNet's post-processing, §1.7).

    Keeps HRNet's strict bounds ``1 < px < w - 1`` and ``1 < py < h - 1``: a maximum in column or row 1 is not moved.
    Chapter 01.
    """
    hm = _numpy(heatmaps)
    _, _, h, w = hm.shape
    out = np.array(coords, dtype=np.float64)
    px = np.floor(out[..., 0] + 0.5).astype(int)
    py = np.floor(out[..., 1] + 0.5).astype(int)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    bi, ki = np.nonzero(inside)
    x, y = px[bi, ki], py[bi, ki]
    dx = hm[bi, ki, y, x + 1] - hm[bi, ki, y, x - 1]
    dy = hm[bi, ki, y + 1, x] - hm[bi, ki, y - 1, x]
    out[bi, ki, 0] += 0.25 * np.sign(dx)
    out[bi, ki, 1] += 0.25 * np.sign(dy)
    return out


def gaussian_modulate(heatmaps, kernel: int = 11) -> np.ndarray:
    """DARK's distribution modulation: blur each map with a (kernel x kernel) Gaussian, keep its original maximum.

    DARK (Zhang et al., CVPR 2020) §3.2. Chapter 01.
    """
    hm = _numpy(heatmaps)
    if int(kernel) != kernel or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"gaussian_modulate: kernel must be an odd positive size, got {kernel}")
    kernel = int(kernel)
    pad = (kernel - 1) // 2
    _, _, h, w = hm.shape
    out = np.empty_like(hm)
    for b in range(hm.shape[0]):
        for k in range(hm.shape[1]):
            # zero padding, so the border does not invent mass that is not in the prediction; the slice is by
            # size, since [pad:-pad] is empty for pad 0 (kernel 1, which DARK's rule gives sigma < 0.2)
            padded = cv2.copyMakeBorder(hm[b, k], pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[pad:pad + h, pad:pad + w]
            peak = blurred.max()
            out[b, k] = blurred * (hm[b, k].max() / peak) if peak > 0 else blurred
    return out


def dark_refine(heatmaps, coords, kernel: int = 11) -> np.ndarray:
    """DARK decoding: modulate, take the log, and move each argmax by -H^-1 g (second-order Taylor step).

    The derivatives are central differences of the log-heatmap around the integer maximum; maxima within 2 px
    of the border keep their integer position. DARK (Zhang et al., CVPR 2020) §3.2. Chapter 01.
    """
    hm = np.log(np.maximum(gaussian_modulate(heatmaps, kernel), 1e-10))
    _, _, h, w = hm.shape
    out = np.array(coords, dtype=np.float64)
    px, py = np.rint(out[..., 0]).astype(int), np.rint(out[..., 1]).astype(int)
    inside = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    bi, ki = np.nonzero(inside)
    x, y = px[bi, ki], py[bi, ki]

    def at(dy, dx):
        return hm[bi, ki, y + dy, x + dx].astype(np.float64)

    gx, gy = 0.5 * (at(0, 1) - at(0, -1)), 0.5 * (at(1, 0) - at(-1, 0))
    hxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    hyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    hxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = hxx * hyy - hxy ** 2
    ok = np.abs(det) > 1e-12
    safe = np.where(ok, det, 1.0)
    # -H^-1 g with H = [[hxx, hxy], [hxy, hyy]]
    step_x = -(hyy * gx - hxy * gy) / safe
    step_y = -(-hxy * gx + hxx * gy) / safe
    out[bi, ki, 0] += np.where(ok, step_x, 0.0)
    out[bi, ki, 1] += np.where(ok, step_y, 0.0)
    return out


def patch_radius(sigma: float) -> int:
    """The half-width of a target's Gaussian patch in whole heatmap pixels: 3 sigma, rounded up.

    HRNet's ``generate_target`` uses ``tmp_size = sigma * 3`` and ``size = 2 * tmp_size + 1``, which only ever ran at
    sigma 2 (a 13 x 13 patch). For a sigma whose 3 sigma is not a whole number its ``int()`` truncation and a patch
    of even size shift the peak a pixel off the joint near the left and top borders, or fail to broadcast. A whole
    radius keeps the patch odd and centred on the joint for every sigma, and equals HRNet's at sigma 2. Chapter 01.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 heatmap px, got {sigma}")
    return int(np.ceil(3 * sigma - 1e-9))


def hrnet_gaussian_target(mu_x: int, mu_y: int, heatmap_size, sigma: float) -> np.ndarray:
    """HRNet's target for one joint: an unnormalized Gaussian patch of half-width :func:`patch_radius` (6 at sigma
    2: 13 x 13) pasted with its centre on the integer heatmap pixel (mu_x, mu_y).

    Returns the (h, w) map; the caller decides whether the joint is drawn. HRNet's ``generate_target`` (Sun et al.,
    CVPR 2019) exactly at sigma 2; centred for every other sigma (see :func:`patch_radius`). Chapter 01.
    """
    h, w = heatmap_size
    if not (float(mu_x).is_integer() and float(mu_y).is_integer()):
        raise ValueError(f"hrnet_gaussian_target: the centre ({mu_x}, {mu_y}) must be a whole heatmap pixel "
                         f"(HRNet rounds it first: int(x / stride + 0.5))")
    mu_x, mu_y = int(mu_x), int(mu_y)
    radius = patch_radius(sigma)
    g = np.arange(-radius, radius + 1, dtype=np.float32)
    patch = np.exp(-(g[None, :] ** 2 + g[:, None] ** 2) / (2 * sigma ** 2))
    ul = (mu_x - radius, mu_y - radius)
    br = (mu_x + radius + 1, mu_y + radius + 1)
    target = np.zeros((h, w), dtype=np.float32)
    gx0, gy0 = max(0, -ul[0]), max(0, -ul[1])
    x0, x1 = max(0, ul[0]), min(br[0], w)
    y0, y1 = max(0, ul[1]), min(br[1], h)
    if x1 > x0 and y1 > y0:
        target[y0:y1, x0:x1] = patch[gy0:gy0 + y1 - y0, gx0:gx0 + x1 - x0]
    return target


class GaussianHeatmap(HeatmapCodec):
    """Keypoints (input px) <-> Gaussian heatmaps at 1/stride resolution. Chapter 01.

    ``unbiased=False``: HRNet/SimpleBaseline exactly. The target centre is ``int(x / stride + 0.5)``; a
    13 x 13 patch for sigma 2; weight 0 when the patch lies fully outside; drawn only where weight > 0.5. Decoding
    is argmax + quarter offset with HRNet's strict bounds, times the stride, with NO half-pixel correction (as the
    official code). ``unbiased=True``: DARK, an untruncated Gaussian at the exact sub-pixel position x / stride (as
    MMPose's unbiased encoding) and Taylor decoding.

    ``flip_shift`` is True for both: HRNet's SHIFT_HEATMAP (Sun et al., CVPR 2019), and for DARK the convention of its
    code (built on HRNet's, same flip test) and of MMPose's DARK configs (``shift_heatmap=True``). It is also what
    the geometry asks: at stride 4 a flipped-back map of a sub-pixel target sits 0.75 heatmap px left of the truth
    (the input's mirror x -> W - 1 - x is (W - 1) / 4 - x / 4 in heatmap px, the maps' own mirror w - 1 - c), and
    the shift leaves it 0.25 px right.
    """

    flip_shift = True

    def __init__(self, input_size=(256, 192), heatmap_size=(64, 48), sigma: float = 2.0, unbiased: bool = False,
                 dark_kernel: int | None = None):
        super().__init__(input_size, heatmap_size)
        if not sigma > 0:
            raise ValueError(f"GaussianHeatmap sigma must be > 0 heatmap px, got {sigma}")
        self.sigma = float(sigma)
        self.unbiased = bool(unbiased)
        # DARK uses an 11 x 11 modulation kernel for sigma 2; scale it with sigma, keeping it odd
        self.dark_kernel = int(dark_kernel or 2 * int(round(2.5 * self.sigma)) + 1)
        if self.dark_kernel < 1 or self.dark_kernel % 2 == 0:
            raise ValueError(f"GaussianHeatmap dark_kernel must be an odd positive size, got {self.dark_kernel}")

    def __repr__(self):
        return (f"GaussianHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
                f"sigma={self.sigma:g}, unbiased={self.unbiased})")

    def encode(self, keypoints, visibility) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) keypoints in input px and (K,) visibility -> (heatmaps (K, h, w) float32, weights (K,) float32)."""
        kp, vis = self._inputs(keypoints, visibility)
        h, w = self.heatmap_size
        weights = (vis > 0).astype(np.float32)
        heatmaps = np.zeros((len(kp), h, w), dtype=np.float32)
        radius = patch_radius(self.sigma)  # HRNet's 3 sigma at sigma 2, a whole number of pixels for any sigma
        for k, (x, y) in enumerate(kp / self.stride):
            mu_x, mu_y = (x, y) if self.unbiased else (int(x + 0.5), int(y + 0.5))
            ul = (int(mu_x - radius), int(mu_y - radius))
            br = (int(mu_x + radius + 1), int(mu_y + radius + 1))
            if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
                weights[k] = 0.0
            if weights[k] <= 0.5:
                continue
            heatmaps[k] = (self._unbiased_target(mu_x, mu_y) if self.unbiased
                           else hrnet_gaussian_target(mu_x, mu_y, self.heatmap_size, self.sigma))
        return heatmaps, weights

    def _unbiased_target(self, mu_x: float, mu_y: float) -> np.ndarray:
        h, w = self.heatmap_size
        xs = np.arange(w, dtype=np.float32)[None, :]
        ys = np.arange(h, dtype=np.float32)[:, None]
        return np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * self.sigma ** 2)).astype(np.float32)

    def decode_heatmap_px(self, heatmaps) -> tuple[np.ndarray, np.ndarray]:
        """(B, K, h, w) -> (coords (B, K, 2) in heatmap px, scores (B, K)), before scaling to the input."""
        coords, maxvals = get_max_preds(heatmaps)
        if self.unbiased:
            coords = dark_refine(heatmaps, coords, self.dark_kernel)
        else:
            coords = quarter_offset(heatmaps, coords)
        return coords, maxvals

    def decode(self, heatmaps) -> tuple[np.ndarray, np.ndarray]:
        """(B, K, h, w) numpy or torch -> (keypoints (B, K, 2) in input px, scores (B, K))."""
        coords, scores = self.decode_heatmap_px(heatmaps)
        return coords * self.stride, scores
