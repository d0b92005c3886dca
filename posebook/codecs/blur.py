"""Blur-kernel heatmap codec of CPN and MSPN: one hot pixel blurred by cv2.GaussianBlur, peak scaled to ``peak``.

CPN's Gaussian targets (Chen et al., CVPR 2018) and its test-time decoding, checked against CPN-TF's ``dataset.py``
(``joints_heatmap_gen``) and ``mptest.py`` and MSPN's ``JointsDataset.generate_heatmap`` and ``test.py``: the pixel
``int(x / stride)`` (truncation) is set, blurred with a (k, k) kernel and sigma 0 (OpenCV then uses
0.3 ((k - 1) / 2 - 1) + 0.8), and the peak scaled to 255. ``peak=1`` (the default) gives maps on the scale of the
other codecs; ``peak=255`` the official scale, which matters for networks whose predictor ends in a BatchNorm (CPN's
and MSPN's): the BN's output starts with unit variance, hundreds of times the mean square of a peak-1 target, so
the loss is first spent on shrinking the BN's scale (chapter 06 measures both). Decoding blurs again, moves 0.25 px from the maximum toward the second maximum (a direction, not a sign)
and maps heatmap px to input px with x * stride + stride / 2 (x * 4 + 2 for stride 4). The flip test does not
shift the flipped-back maps (``flip_shift = False``: CPN-TF's ``cv2.flip``, MSPN's ``flip_back``). Chapter 01.
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import HeatmapCodec, _numpy


def blur_sigma(kernel: int) -> float:
    """The sigma OpenCV derives for a (kernel x kernel) GaussianBlur given sigma 0."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def scaled_kernel(kernel: int, factor: float) -> int:
    """The odd kernel (at least 3) whose OpenCV sigma is nearest ``factor`` x ``kernel``'s: CPN's and MSPN's kernels,
    sized for 64 x 48 heatmaps, carried to a smaller map (``factor`` = its height / 64) so the target keeps its width
    relative to the person. Kernel 15 (sigma 2.6) becomes 5 at a 24 x 16 map, kernel 7 (sigma 1.4) becomes 3: the
    coarse-to-fine schedule collapses at that size, as it must. Chapter 01."""
    if int(kernel) != kernel or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"scaled_kernel: kernel must be an odd positive size, got {kernel}")
    if not factor > 0:
        raise ValueError(f"scaled_kernel: factor must be > 0, got {factor}")
    want = blur_sigma(int(kernel)) * factor
    return min(range(3, 2 * int(kernel) + 2, 2), key=lambda k: (abs(blur_sigma(k) - want), k))


def toward_second_max(heatmap: np.ndarray, kernel: int, border: int = 10) -> tuple[float, float]:
    """CPN's decode of one (h, w) map: zero-pad, blur, argmax, then 0.25 px toward the second-highest pixel.

    Returns (x, y) in heatmap px, clipped to the map. CPN's ``mptest.py`` (Chen et al., CVPR 2018). Chapter 01.
    """
    h, w = heatmap.shape
    peak = heatmap.max()
    norm = heatmap / peak if peak > 0 else heatmap
    padded = cv2.copyMakeBorder(norm.astype(np.float32), border, border, border, border, cv2.BORDER_CONSTANT, value=0)
    blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)
    y, x = np.unravel_index(blurred.argmax(), blurred.shape)
    blurred[y, x] = 0
    y2, x2 = np.unravel_index(blurred.argmax(), blurred.shape)
    direction = np.array([x2 - x, y2 - y], dtype=np.float64)
    length = np.hypot(*direction)
    pos = np.array([x - border, y - border], dtype=np.float64)
    if length > 1e-3:
        pos += 0.25 * direction / length
    return float(np.clip(pos[0], 0, w - 1)), float(np.clip(pos[1], 0, h - 1))


#: the official CPN and MSPN targets' maximum (CPN-TF's ``joints_heatmap_gen``, MSPN's ``generate_heatmap``)
OFFICIAL_PEAK = 255


class BlurHeatmap(HeatmapCodec):
    """Keypoints (input px) <-> CPN/MSPN blur-kernel heatmaps (one hot pixel, GaussianBlur k x k, peak 1).

    ``kernel`` is the target's blur (CPN RefineNet 7; GlobalNet 15/11/9/7); ``decode_kernel`` is the test-time blur
    (CPN 21; MSPN COCO 5, MPII 9): the official CPN (CVPR 2018) and MSPN (2019) code. Chapter 01.

    As the official code: a joint past the right or bottom edge of the crop is drawn clamped onto the last column
    or row (CPN-TF clamps x to W - 1, y to H - 1 input px; ``clamp=False`` leaves it out, as MSPN does), with
    weight 0 (CPN's augmentation marks it invalid); one left of or above the crop is not drawn. The score is the
    (flip-averaged) map's value at the decoded pixel + 0.5: the official ``value / 255 + 0.5`` on 0..255 targets,
    and ours peak at 1 where theirs peak at 255, so ``value_ours = value_theirs / 255`` and the score is the same
    number. Rescoring's 0.2 threshold (HRNet's and CPN's test code) was set with that offset in place.

    ``peak`` is the drawn maximum: 1 here by default, 255 in the official code (MSPN's codecs use it; see the module
    docstring). Decoding is scale-free (the map is normalised by its maximum) and the score divides by ``peak``.

    ``visible_only=True`` gives MSPN's L2 targets (Li et al. 2019, the official ``JointsL2Loss``): only joints
    labelled visible (v = 2) inside the crop are drawn, and every joint gets weight 1, so the others are penalised
    towards zero (:class:`VisibleBlurHeatmap`; chapter 06).
    """

    flip_shift = False
    #: added to the map's value to give the keypoint score (official: ``/ 255 + 0.5`` on 0..255 maps)
    score_offset = 0.5

    def __init__(self, input_size=(256, 192), heatmap_size=(64, 48), kernel: int = 7, decode_kernel: int = 21,
                 clamp: bool = True, visible_only: bool = False, peak: float = 1.0):
        super().__init__(input_size, heatmap_size)
        if isinstance(peak, bool) or not isinstance(peak, (int, float, np.integer, np.floating)) or not peak > 0 \
                or not np.isfinite(peak):
            raise ValueError(f"BlurHeatmap peak={peak!r}: expected a positive number (1, or the official 255)")
        for name, k in (("kernel", kernel), ("decode_kernel", decode_kernel)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"BlurHeatmap {name} must be an odd positive size, got {k}")
        for name, flag in (("clamp", clamp), ("visible_only", visible_only)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"BlurHeatmap {name}={flag!r}: expected True or False")
        self.kernel = int(kernel)
        self.decode_kernel = int(decode_kernel)
        self.clamp = bool(clamp)
        self.visible_only = bool(visible_only)
        self.peak = float(peak)

    @property
    def sigma(self) -> float:
        return blur_sigma(self.kernel)

    def __repr__(self):
        return (f"BlurHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, kernel={self.kernel}, "
                f"decode_kernel={self.decode_kernel}, clamp={self.clamp}"
                + (", visible_only=True" if self.visible_only else "")
                + (f", peak={self.peak:g})" if self.peak != 1 else ")"))

    def encode(self, keypoints, visibility) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) keypoints in input px, (K,) visibility -> (heatmaps (K, h, w), weights (K,)); off-crop weight 0
        (``visible_only``: only v = 2 drawn, every weight 1)."""
        kp, vis = self._inputs(keypoints, visibility)
        if self.visible_only:  # MSPN's L2 target: drawn for v = 2 (as the official label * (v > 1)), all penalised
            heatmaps, _ = self._draw(kp, np.where(vis > 1, vis, 0))
            return heatmaps, np.ones(len(kp), dtype=np.float32)
        return self._draw(kp, vis)

    def _draw(self, kp: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.heatmap_size
        heatmaps = np.zeros((len(kp), h, w), dtype=np.float32)
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < self.input_size[1]) & (kp[:, 1] >= 0) & (kp[:, 1] < self.input_size[0])
        weights = ((vis > 0) & inside).astype(np.float32)
        drawn = (vis > 0) & (kp[:, 0] >= 0) & (kp[:, 1] >= 0) if self.clamp else weights > 0
        # CPN-TF: min(x, W - 1) in input px, then int(x * w / W) (the same as floor for x >= 0)
        limit = np.array([self.input_size[1] - 1, self.input_size[0] - 1], dtype=np.float64)
        cells = np.floor(np.minimum(kp, limit) / self.stride).astype(int)
        for k in np.nonzero(drawn)[0]:
            heatmaps[k, cells[k, 1], cells[k, 0]] = 1.0
            blurred = cv2.GaussianBlur(heatmaps[k], (self.kernel, self.kernel), 0)
            heatmaps[k] = blurred / (blurred.max() / self.peak)  # the official heatmaps[i] /= maxi / 255
        return heatmaps, weights

    def decode(self, heatmaps) -> tuple[np.ndarray, np.ndarray]:
        """(B, K, h, w) numpy or torch -> (keypoints (B, K, 2) in input px, scores (B, K) = map value there / peak +
        0.5)."""
        hm = _numpy(heatmaps)
        b, k, h, w = hm.shape
        coords = np.zeros((b, k, 2))
        scores = np.zeros((b, k), dtype=np.float32)
        for i in range(b):
            for j in range(k):
                x, y = toward_second_max(hm[i, j], self.decode_kernel)
                coords[i, j] = x, y
                scores[i, j] = hm[i, j, int(round(y)), int(round(x))] / self.peak + self.score_offset
        return coords * self.stride + self.stride / 2, scores


class VisibleBlurHeatmap(BlurHeatmap):
    """MSPN's L2 targets: a :class:`BlurHeatmap` with ``visible_only=True`` and ``clamp=False``, test blur 5 (the
    official COCO value). The official MSPN code's ``JointsL2Loss`` (Li et al. 2019); chapter 06.

    The official loss multiplies the target by (v > 1) and penalises every joint; here the codec draws that target
    and gives weight 1 to all, so ``JointsMSELoss`` computes the same thing. A joint outside the crop counts as
    unlabelled (the official code sets its v to 0). Decoding is :class:`BlurHeatmap`'s.
    """

    def __init__(self, input_size=(256, 192), heatmap_size=(64, 48), kernel: int = 7, decode_kernel: int = 5,
                 peak: float = 1.0):
        super().__init__(input_size, heatmap_size, kernel=kernel, decode_kernel=decode_kernel, clamp=False,
                         visible_only=True, peak=peak)

    def __repr__(self):
        return (f"VisibleBlurHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
                f"kernel={self.kernel}, decode_kernel={self.decode_kernel}"
                + (f", peak={self.peak:g})" if self.peak != 1 else ")"))
