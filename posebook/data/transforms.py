"""Top-down transforms: box cleaning, box -> (center, scale), the affine crop and its inverse, flip, half-body, colour,
tensors.

Conventions follow the official HRNet code (Sun et al., CVPR 2019: ``JointsDataset``, ``transforms.py``): a person box
is a ``center`` (x, y) and a ``scale`` (w, h) in units of ``pixel_std`` = 200 px; sizes are (H, W); pixel centres sit
at integer coordinates, so a horizontal flip maps x to ``width - 1 - x``. Explained in chapter 01 (Data).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from posebook.keypoints import flip_permutation

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PIXEL_STD = 200.0


def _pair(value, what: str) -> np.ndarray:
    """A length-2 float array from a scalar or a pair; the error names the argument."""
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2:
        raise ValueError(f"{what} must be a scalar or a pair, got shape {np.shape(value)}")
    return arr


def clip_box(box, width: int, height: int):
    """HRNet's box cleaning: clip [x, y, w, h] to the image; None if nothing with area > 0 is left.

    Sun et al., CVPR 2019, official code (``coco.py``, ``clean_bbox``). Chapter 01.
    """
    x, y, w, h = box
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    if x2 < x1 or y2 < y1 or (x2 - x1) * (y2 - y1) <= 0:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


def fix_aspect(width: float, height: float, aspect_ratio: float) -> tuple[float, float]:
    """Grow the side that is too short for ``aspect_ratio`` (w > aspect * h: the height; else the width), never shrink.

    A 180 x 200 box at aspect 0.75 becomes 180 x 240: the longer side grows. HRNet's ``_xywh2cs`` (Sun et al., CVPR
    2019, official code). Chapter 01.
    """
    if width > aspect_ratio * height:
        height = width / aspect_ratio
    elif width < aspect_ratio * height:
        width = height * aspect_ratio
    return width, height


def box_to_center_scale(box_xywh, aspect_ratio: float = 192 / 256, padding: float = 1.25,
                        pixel_std: float = PIXEL_STD) -> tuple[np.ndarray, np.ndarray]:
    """COCO box [x, y, w, h] -> (center (2,), scale (2,)): :func:`fix_aspect` to the input's w/h, /200, x1.25 padding.

    HRNet's ``_xywh2cs`` (Sun et al., CVPR 2019, official code). Chapter 01.
    """
    box = np.asarray(box_xywh, dtype=np.float64).reshape(-1)
    if box.size != 4:
        raise ValueError(f"box_xywh must be [x, y, w, h], got shape {np.shape(box_xywh)}")
    x, y, w, h = box
    center = np.array([x + w * 0.5, y + h * 0.5])
    w, h = fix_aspect(w, h, aspect_ratio)
    scale = np.array([w / pixel_std, h / pixel_std]) * padding
    return center, scale


def _rotation(deg: float) -> np.ndarray:
    rad = np.deg2rad(deg)
    c, s = np.cos(rad), np.sin(rad)
    return np.array([[c, -s], [s, c]])


def get_affine_transform(center, scale, rotation_deg: float, output_size, inv: bool = False,
                         shift=(0.0, 0.0), pixel_std: float = PIXEL_STD) -> np.ndarray:
    """The (2, 3) matrix taking the box of width ``scale[0] * 200`` around ``center``, turned by ``rotation_deg``
    (HRNet's sign: positive turns the crop's content counter-clockwise), to ``output_size`` (H, W); ``inv`` maps back.

    Same mapping as HRNet's ``get_affine_transform`` (a similarity fixed by the box width; ``shift`` in box units).
    Sun et al., CVPR 2019, official code (``transforms.py``). Chapter 01.
    """
    center, scale, shift = _pair(center, "center"), _pair(scale, "scale"), _pair(shift, "shift")
    out_h, out_w = output_size
    box = scale * pixel_std
    zoom = out_w / box[0]
    # A source offset R(rot) @ v from the box centre lands at zoom * v from the output centre.
    src_center = center + box * shift
    dst_center = np.array([out_w * 0.5, out_h * 0.5])
    linear = zoom * _rotation(rotation_deg).T
    if inv:
        linear = np.linalg.inv(linear)
        src_center, dst_center = dst_center, src_center
    return np.hstack([linear, (dst_center - linear @ src_center)[:, None]])


def affine_points(points, matrix) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points of shape (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {pts.shape}")
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def crop(image: np.ndarray, center, scale, rotation_deg: float, output_size) -> np.ndarray:
    """The person crop of ``output_size`` (H, W): cv2.warpAffine with bilinear interpolation, black outside."""
    return warp(image, get_affine_transform(center, scale, rotation_deg, output_size), output_size)


def warp(image: np.ndarray, matrix, output_size) -> np.ndarray:
    """cv2.warpAffine of ``image`` by the (2, 3) ``matrix`` to ``output_size`` (H, W), bilinear, black outside."""
    out_h, out_w = output_size
    return cv2.warpAffine(image, matrix, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR)


def flip_image(image: np.ndarray) -> np.ndarray:
    """The image mirrored left-right, as a new C-contiguous array (``cv2.flip``: the same pixels as
    ``image[:, ::-1]``, about 15x faster than copying that view). Chapter 01."""
    return cv2.flip(np.asarray(image), 1)


def flip_keypoints(keypoints, width: int, flip_pairs) -> np.ndarray:
    """Mirror (K, 3) keypoints x, y, v in an image ``width`` wide and swap left/right; v == 0 rows stay zero.

    HRNet's ``fliplr_joints`` (x -> width - 1 - x; Sun et al., CVPR 2019, official code). Chapter 01.
    """
    kp = np.array(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] < 2:
        raise ValueError(f"keypoints must have shape (K, 3), got {kp.shape}")
    kp[:, 0] = width - 1 - kp[:, 0]
    for a, b in flip_pairs:
        kp[[a, b]] = kp[[b, a]]
    if kp.shape[1] > 2:
        kp[kp[:, 2] <= 0] = 0
    return kp


def flip_heatmaps(heatmaps, flip_pairs, shift: bool = False):
    """Mirror (..., K, h, w) heatmaps and swap left/right channels (HRNet's ``flip_back``; §1.7).

    ``shift`` moves the result one column right, as HRNet's SHIFT_HEATMAP does before averaging a flip test.
    """
    hm = heatmaps[..., ::-1].copy() if isinstance(heatmaps, np.ndarray) else heatmaps.flip(-1)
    hm = hm[..., flip_permutation(hm.shape[-3], flip_pairs).tolist(), :, :]
    if shift:
        hm[..., 1:] = hm[..., :-1].copy() if isinstance(hm, np.ndarray) else hm[..., :-1].clone()
    return hm


def half_body(keypoints, upper_body, rng: np.random.Generator, aspect_ratio: float = 192 / 256,
              padding: float = 1.5, pixel_std: float = PIXEL_STD):
    """HRNet's half-body box: (center, scale) around the upper or lower labelled joints, or None if too few.

    The upper half is chosen when ``randn() < 0.5`` (about 69 %) and it has more than 2 joints. HRNet's
    ``half_body_transform`` (CVPR 2019 code). Chapter 01.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    labelled = kp[:, 2] > 0
    is_upper = np.isin(np.arange(len(kp)), list(upper_body))
    upper, lower = kp[labelled & is_upper, :2], kp[labelled & ~is_upper, :2]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        chosen = upper
    else:
        chosen = lower if len(lower) > 2 else upper
    if len(chosen) < 2:
        return None
    center = chosen.mean(axis=0)
    w, h = chosen.max(axis=0) - chosen.min(axis=0)
    w, h = fix_aspect(w, h, aspect_ratio)
    return center, np.array([w, h]) / pixel_std * padding


def color_jitter(image: np.ndarray, rng: np.random.Generator, low: float = 0.6, high: float = 1.4) -> np.ndarray:
    """Scale each colour channel by U(low, high) and clip to 0..255 (Stacked Hourglass's colour augmentation, §2)."""
    factors = rng.uniform(low, high, size=image.shape[-1])
    return np.clip(image.astype(np.float32) * factors, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Augment:
    """A top-down augmentation recipe; the defaults are HRNet's COCO yaml (Sun et al., CVPR 2019). Chapter 01.

    ``scale_mode`` 'linear' draws s * clip(1 + scale * N, 1 - scale, 1 + scale) (HRNet); 'log2' draws
    s * 2^clip(scale * N, -2 scale, 2 scale) (Stacked Hourglass). Rotation is clip(rotation * N, +-2 rotation)
    with probability ``rotation_prob``.
    """

    scale: float = 0.35
    scale_mode: str = "linear"
    rotation: float = 45.0
    rotation_prob: float = 0.6
    flip: float = 0.5
    half_body: float = 0.3
    half_body_min_joints: int = 8
    color: tuple[float, float] | None = None

    def __post_init__(self):
        if self.scale_mode not in ("linear", "log2"):
            raise ValueError(f"Augment.scale_mode must be 'linear' or 'log2', got {self.scale_mode!r}")

    @classmethod
    def hrnet(cls) -> "Augment":
        return cls()

    @classmethod
    def hrnet_mpii(cls) -> "Augment":
        """HRNet's MPII yaml: scale 0.25, rotation 30, no half-body (PROB_HALF_BODY -1)."""
        return cls(scale=0.25, rotation=30.0, half_body=0.0)

    @classmethod
    def simple_baseline(cls) -> "Augment":
        """SimpleBaseline's yaml: scale 0.3, rotation 40, no half-body (Xiao et al., ECCV 2018)."""
        return cls(scale=0.3, rotation=40.0, half_body=0.0)

    @classmethod
    def hourglass(cls) -> "Augment":
        """Stacked Hourglass (Torch7): 2^clip(0.25 N), rotation 30 with p 0.4, colour x U(0.6, 1.4) (§2)."""
        return cls(scale=0.25, scale_mode="log2", rotation=30.0, rotation_prob=0.4, half_body=0.0,
                   color=(0.6, 1.4))

    @classmethod
    def none(cls) -> "Augment":
        """No augmentation at all (the evaluation pipeline)."""
        return cls(scale=0.0, rotation=0.0, rotation_prob=0.0, flip=0.0, half_body=0.0)

    def with_(self, **changes) -> "Augment":
        return replace(self, **changes)

    def scale_factor(self, rng: np.random.Generator) -> float:
        n = rng.standard_normal()
        if self.scale_mode == "log2":
            return float(2.0 ** np.clip(n * self.scale, -2 * self.scale, 2 * self.scale))
        return float(np.clip(1 + n * self.scale, 1 - self.scale, 1 + self.scale))

    def rotation_deg(self, rng: np.random.Generator) -> float:
        angle = float(np.clip(rng.standard_normal() * self.rotation, -2 * self.rotation, 2 * self.rotation))
        return angle if rng.random() < self.rotation_prob else 0.0


# (3, 256) float32: the normalised value of every uint8 level per channel, computed with the same float32
# operations as the direct formula, so a table look-up gives the same bits, about 6x faster.
_NORMALISED = np.stack([(np.arange(256, dtype=np.float32) / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
                        for c in range(3)]).astype(np.float32)


def to_tensor(image_uint8_rgb: np.ndarray):
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 torch tensor, ImageNet-normalized: (x / 255 - mean) / std."""
    import torch

    img = np.asarray(image_uint8_rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"to_tensor expects an (H, W, 3) RGB image, got shape {img.shape}")
    if img.dtype != np.uint8:
        arr = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    out = np.empty((3, *img.shape[:2]), dtype=np.float32)
    for c, plane in enumerate(cv2.split(np.ascontiguousarray(img))):
        out[c] = cv2.LUT(plane, _NORMALISED[c])
    return torch.from_numpy(out)


def denormalize(tensor) -> np.ndarray:
    """(3, H, W) normalized tensor or array -> (H, W, 3) uint8 RGB image (the inverse of :func:`to_tensor`)."""
    arr = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"denormalize expects a (3, H, W) tensor, got shape {arr.shape}")
    img = (arr.transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255.0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
