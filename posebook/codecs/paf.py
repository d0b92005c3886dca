"""OpenPose's targets: part confidence maps and part affinity fields (PAFs) on the network's output grid.

Cao et al., TPAMI'19 §3: a confidence map per part is the max over people of a Gaussian around
each person's part; a PAF per limb holds, at every pixel on a person's limb, the limb's unit direction, averaged
over the people whose limbs overlap there. Both are drawn at the output stride (8 for OpenPose). Output pixel
(i, j) stands for the input point (j s + (s - 1) / 2, i s + (s - 1) / 2), the centre of the s x s block it
summarises, so a cubic resize by s (:meth:`OutputGrid.upsample`) lays a map back onto the input pixels.
By default both follow the official training code (the Gaussian's factor 2 and 1% cut; the PAF drawn up to
sigma_l past the limb's ends), which the demo's parser expects; the forms the paper writes are kept as
``form="paper"`` and ``support="paper"``. Chapter 08 (OpenPose).
"""
from __future__ import annotations

import cv2
import numpy as np

from posebook.keypoints import COCO, COCO_TO_OPENPOSE, OPENPOSE, Skeleton

NECK = OPENPOSE.index("neck")
_SHOULDERS = (COCO.index("left_shoulder"), COCO.index("right_shoulder"))


def _people(keypoints, num_keypoints: int, what: str) -> np.ndarray:
    """(N, K, 3) float64 from an array of people; one person (K, 3) is accepted too."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (num_keypoints, 3):
        raise ValueError(f"{what} expects people keypoints (N, {num_keypoints}, 3) x, y, v, got shape {kp.shape}")
    return kp


def coco_to_openpose(keypoints) -> np.ndarray:
    """COCO-17 people (N, 17, 3) -> OpenPose-18 (N, 18, 3); the neck is the shoulders' midpoint when both are
    labelled (its v the smaller of theirs), unlabelled otherwise. The OpenPose-18 order of Cao et al., TPAMI'19;
    chapter 08 (OpenPose)."""
    kp = _people(keypoints, COCO.num_keypoints, "coco_to_openpose")
    out = np.zeros((len(kp), OPENPOSE.num_keypoints, 3))
    for k, coco_k in enumerate(COCO_TO_OPENPOSE):
        if coco_k is not None:
            out[:, k] = kp[:, coco_k]
    left, right = kp[:, _SHOULDERS[0]], kp[:, _SHOULDERS[1]]
    both = (left[:, 2] > 0) & (right[:, 2] > 0)
    out[both, NECK, :2] = (left[both, :2] + right[both, :2]) / 2
    out[both, NECK, 2] = np.minimum(left[both, 2], right[both, 2])
    return out


def openpose_to_coco(keypoints) -> np.ndarray:
    """OpenPose-18 people (N, 18, C) -> COCO-17 (N, 17, C): the neck is dropped, the others reordered.
    Chapter 08 (OpenPose)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1] != OPENPOSE.num_keypoints:
        raise ValueError(f"openpose_to_coco expects (N, {OPENPOSE.num_keypoints}, C), got shape {kp.shape}")
    out = np.zeros((len(kp), COCO.num_keypoints, kp.shape[2]))
    for k, coco_k in enumerate(COCO_TO_OPENPOSE):
        if coco_k is not None:
            out[:, coco_k] = kp[:, k]
    return out


def input_pair(size, what: str = "input_size") -> tuple[int, int]:
    """(H, W) from an int S (a square S x S) or a pair; the error names the argument."""
    arr = np.asarray(size).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(arr == np.round(arr)):
        raise ValueError(f"{what} must be an int S or a pair (H, W) of ints, got {size!r}")
    return int(arr[0]), int(arr[1])


class OutputGrid:
    """The output grid of a stride-``stride`` network on an ``input_size`` (H, W) input, and the way back.

    Cao et al., TPAMI'19 and its demo (stride 8, maps upsampled x8 with cubic interpolation); chapter 08 (OpenPose).
    """

    def __init__(self, input_size=(368, 368), stride: int = 8):
        self.input_size, self.stride = input_pair(input_size, "input_size"), int(stride)
        if self.stride < 1 or any(v < self.stride or v % self.stride for v in self.input_size):
            raise ValueError(f"input_size {self.input_size} must be positive multiples of stride {stride}")

    @property
    def output_size(self) -> tuple[int, int]:
        """(h, w) of the maps: the input size over the stride."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(xs (w,), ys (h,)): the input-pixel coordinates that the output columns and rows stand for."""
        h, w = self.output_size
        offset = (self.stride - 1) / 2
        return np.arange(w) * self.stride + offset, np.arange(h) * self.stride + offset

    def upsample(self, maps, image_size=None) -> np.ndarray:
        """(C, h, w) maps -> (C, H, W) on the input pixels (cubic, as the CMU demo); ``image_size`` crops the
        padding off: the first image_size (H, W) rows and columns are kept."""
        arr = maps.detach().float().cpu().numpy() if hasattr(maps, "detach") else np.asarray(maps, np.float32)
        if arr.ndim != 3 or arr.shape[1:] != self.output_size:
            raise ValueError(f"upsample expects maps (C, {self.output_size[0]}, {self.output_size[1]}), "
                             f"got shape {arr.shape}")
        h, w = self.input_size
        # cv2 resizes up to 512 channels at once; more are done in slices
        out = np.concatenate([
            cv2.resize(np.ascontiguousarray(arr[c:c + 512].transpose(1, 2, 0)), (w, h),
                       interpolation=cv2.INTER_CUBIC).reshape(h, w, -1)
            for c in range(0, len(arr), 512)], axis=2).transpose(2, 0, 1)
        if image_size is not None:
            out = out[:, :int(image_size[0]), :int(image_size[1])]
        return np.ascontiguousarray(out)


CM_FORMS = ("official", "paper")
PAF_SUPPORTS = ("official", "paper")
_CUT = np.log(100.0)  # the official confidence map is cut to 0 where its exponent exceeds ln 100 (below 1%)


def _choice(value, allowed, what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class ConfidenceMaps(OutputGrid):
    """Part confidence maps, one channel per part, the max over people of a Gaussian around each person's part,
    plus (``background``) OpenPose's background channel 1 - max_k S_k last: 18 + 1 = 19 for OpenPose-18.

    ``form="official"`` (the default): ``exp(-d^2 / (2 sigma^2))``, cut to 0 where the exponent exceeds ln 100
    (values below 1%), the max over people: the Gaussian of both official training codes (the CVPR'17 Caffe
    ``putGaussianMaps`` and its 2019 successor; the 2019 code takes the max over people, the CVPR'17 one the sum
    clipped at 1). ``form="paper"``: ``exp(-d^2 / sigma^2)``, not cut, the form TPAMI'19 §3 writes (no factor 2),
    a Gaussian sqrt(2) narrower. With sigma = 7 the official width is what the released models learnt, and on
    ground-truth maps it parses slightly better (default synthetic scenes AP 0.752 -> 0.780, review
    OPENPOSE.md §2.2). ``sigma`` in input pixels. Chapter 08 (OpenPose).
    """

    def __init__(self, input_size=(368, 368), stride: int = 8, sigma: float = 7.0, skeleton: Skeleton = OPENPOSE,
                 background: bool = True, form: str = "official"):
        super().__init__(input_size, stride)
        if not sigma > 0:
            raise ValueError(f"ConfidenceMaps sigma must be > 0 (input px), got {sigma}")
        self.sigma, self.skeleton, self.background = float(sigma), skeleton, bool(background)
        self.form = _choice(form, CM_FORMS, "ConfidenceMaps form")

    @property
    def num_channels(self) -> int:
        return self.skeleton.num_keypoints + int(self.background)

    def __repr__(self):
        return (f"ConfidenceMaps(input_size={self.input_size}, stride={self.stride}, sigma={self.sigma:g}, "
                f"skeleton={self.skeleton.name}, background={self.background}, form={self.form!r})")

    def encode(self, people_keypoints) -> np.ndarray:
        """People (N, K, 3) x, y, v in input px -> maps (C, h, w) float32; parts with v = 0 are not drawn."""
        kp = _people(people_keypoints, self.skeleton.num_keypoints, "ConfidenceMaps.encode")
        xs, ys = self.grid()
        labelled = (kp[..., 2] > 0) & np.isfinite(kp[..., :2]).all(-1)  # (N, K)
        x, y = np.where(labelled, kp[..., 0], 0.0), np.where(labelled, kp[..., 1], 0.0)
        scale = 2 * self.sigma ** 2 if self.form == "official" else self.sigma ** 2
        # exp(-(dx^2 + dy^2) / scale) = exp(-dx^2 / scale) exp(-dy^2 / scale): an outer product per part
        ex = (xs - x[..., None]) ** 2 / scale                                             # (N, K, w)
        ey = (ys - y[..., None]) ** 2 / scale                                             # (N, K, h)
        exponent = ey[..., :, None] + ex[..., None, :]                                    # (N, K, h, w)
        gauss = np.exp(-exponent) * labelled[..., None, None]
        if self.form == "official":
            gauss[exponent > _CUT] = 0.0
        parts = gauss.max(axis=0, initial=0.0)                                            # (K, h, w)
        if self.background:
            parts = np.concatenate([parts, np.maximum(1.0 - parts.max(axis=0, initial=0.0), 0.0)[None]])
        return parts.astype(np.float32)


class PartAffinityFields(OutputGrid):
    """Part affinity fields: for limb c from part j1 to j2, the unit vector ``v = (x_j2 - x_j1) / |x_j2 - x_j1|`` at
    every point p of the limb's support, averaged over the people whose limb c covers p (the count average); 0
    elsewhere. Channels 2c, 2c + 1 are x, y of limb c in ``skeleton.limbs`` order: 19 limbs -> 38 channels for
    OpenPose-18. ``limb_width`` is sigma_l in input pixels; the paper leaves its value open, the official code uses
    one output pixel, our default (the stride).

    ``support="official"`` (the default), the official training code's support (the CVPR'17 Caffe ``putVecMaps``
    and its 2019 successor): the segment's bounding box widened by sigma_l on every side, intersected with the
    points within sigma_l of the limb's line, ``|v_perp.(p - x_j1)| <= sigma_l``. Along the limb it reaches up to
    about sigma_l past each end. ``support="paper"``: the rectangle of TPAMI'19 §3, ``0 <= v.(p - x_j1) <=
    |x_j2 - x_j1|`` and ``|v_perp.(p - x_j1)| <= sigma_l``, which stops exactly at the two parts.

    Why the official support matters: the CMU demo's parser (:func:`posebook.inference.bottomup.score_limbs`)
    samples the field at 10 points from one peak to the other, both ends included, and needs more than 8 of them
    above 0.05. The end samples sit on the peaks; with the paper's rectangle at stride 8 the upsampled field there
    is often below 0.05 (the nearest grid pixels lie outside the rectangle), so only 8 of 10 pass and a true limb
    is rejected: ground-truth maps of one synthetic person parse to COCO AP 0.757 with the paper's rectangle and
    0.970 with the official support (review OPENPOSE.md §2.3).

    Both keep posebook's grid (output pixel j stands for input x = 8 j + 3.5, as for the confidence maps; the
    official PAF code compares x / 8 with j, 3.5 px off) and the count average where people overlap (the CVPR'17
    code lets a later person overwrite, the 2019 code averages). Chapter 08 (OpenPose).
    """

    def __init__(self, input_size=(368, 368), stride: int = 8, limb_width: float | None = None,
                 skeleton: Skeleton = OPENPOSE, support: str = "official"):
        super().__init__(input_size, stride)
        self.limb_width = float(self.stride if limb_width is None else limb_width)
        if not self.limb_width > 0:
            raise ValueError(f"PartAffinityFields limb_width must be > 0 (input px), got {limb_width}")
        self.skeleton = skeleton
        self.limbs = np.asarray(skeleton.limbs, dtype=int).reshape(-1, 2)
        self.support = _choice(support, PAF_SUPPORTS, "PartAffinityFields support")

    @property
    def num_channels(self) -> int:
        return 2 * len(self.limbs)

    def __repr__(self):
        return (f"PartAffinityFields(input_size={self.input_size}, stride={self.stride}, "
                f"limb_width={self.limb_width:g}, skeleton={self.skeleton.name}, support={self.support!r})")

    def encode(self, people_keypoints) -> np.ndarray:
        """People (N, K, 3) x, y, v in input px -> fields (2L, h, w) float32; a limb is drawn when both of its
        parts are labelled (v > 0) and apart."""
        kp = _people(people_keypoints, self.skeleton.num_keypoints, "PartAffinityFields.encode")
        xs, ys = self.grid()
        start, end = kp[:, self.limbs[:, 0]], kp[:, self.limbs[:, 1]]  # (N, L, 3)
        vec = end[..., :2] - start[..., :2]
        length = np.hypot(vec[..., 0], vec[..., 1])                   # (N, L)
        drawn = (start[..., 2] > 0) & (end[..., 2] > 0) & np.isfinite(length) & (length > 0)
        v = np.where(drawn[..., None], vec / np.where(drawn, length, 1.0)[..., None], 0.0)  # unit vectors (N, L, 2)
        x0, y0 = np.where(drawn, start[..., 0], 0.0), np.where(drawn, start[..., 1], 0.0)
        dx = xs - x0[..., None]                                       # (N, L, w)
        dy = ys - y0[..., None]                                       # (N, L, h)
        across = dy[..., :, None] * v[..., 0, None, None] - dx[..., None, :] * v[..., 1, None, None]
        on_line = (np.abs(across) <= self.limb_width) & drawn[..., None, None]  # (N, L, h, w)
        if self.support == "official":
            x1, y1 = np.where(drawn, end[..., 0], 0.0), np.where(drawn, end[..., 1], 0.0)
            width = self.limb_width
            in_x = ((xs >= np.minimum(x0, x1)[..., None] - width)
                    & (xs <= np.maximum(x0, x1)[..., None] + width))  # (N, L, w)
            in_y = ((ys >= np.minimum(y0, y1)[..., None] - width)
                    & (ys <= np.maximum(y0, y1)[..., None] + width))  # (N, L, h)
            on_limb = on_line & in_y[..., :, None] & in_x[..., None, :]
        else:
            along = dx[..., None, :] * v[..., 0, None, None] + dy[..., :, None] * v[..., 1, None, None]
            on_limb = on_line & (along >= 0) & (along <= length[..., None, None])
        count = on_limb.sum(axis=0)                                    # (L, h, w)
        total = np.einsum("nlhw,nlc->lchw", on_limb.astype(np.float64), v)  # (L, 2, h, w)
        fields = total / np.maximum(count, 1)[:, None]
        h, w = self.output_size
        return fields.reshape(2 * len(self.limbs), h, w).astype(np.float32)
