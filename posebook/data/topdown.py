"""The top-down sample pipeline shared by every person dataset: records, images, items and ``TopDownDataset``.

One record (an image, one person's center/scale and keypoints) becomes one training item: HRNet's augmentation
(half-body, scale, rotation, flip; HRNet's ``JointsDataset``), the affine crop, ImageNet normalisation and the codec's target
(or one target per codec, for models supervised at several outputs: CPN §3, MSPN §4). Explained in chapter 01 (Data).
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.utils.data

from posebook.codecs import GaussianHeatmap
from posebook.keypoints import COCO, Skeleton

from .transforms import (Augment, affine_points, color_jitter, flip_image, flip_keypoints, get_affine_transform,
                         half_body, to_tensor, warp)

# Decode straight to RGB where OpenCV can (4.11+): the same pixels as BGR + cvtColor, one pass less.
_READ_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)


@dataclass
class PersonRecord:
    """One person to crop: where the image is, the box as (center, scale), keypoints (K, 3) in image px."""

    image: str | Path | np.ndarray | Callable[[], np.ndarray]  # a file, an RGB uint8 array, or a function giving one
    center: np.ndarray
    scale: np.ndarray
    keypoints: np.ndarray
    image_id: int = 0
    ann_id: int = -1
    score: float = 1.0
    extra: dict = field(default_factory=dict)  # more collatable meta values (e.g. MPII head_size)
    source: str = ""  # the annotation file, for error messages

    def where(self) -> str:
        """' (annotation id A, image id I, in FILE)': what error messages about this record append."""
        return f" (annotation id {self.ann_id}, image id {self.image_id}" + (
            f", in {self.source})" if self.source else ")")


def load_image(path: str | Path, where: str = "") -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; a missing or unreadable file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist{where}")
    flags = cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imread(str(path), flags | (_READ_RGB if _READ_RGB is not None else cv2.IMREAD_COLOR))
    if image is None:
        raise ValueError(f"image {path} is corrupt or not an image (OpenCV cannot decode it){where}")
    return image if _READ_RGB is not None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageCache:
    """A bounded least-recently-used store of decoded images, keyed by file path. Chapter 01.

    A COCO photo holds 2.7 people on average, so its crops reuse one decode (3 ms for a 640 x 480 JPEG). It holds at
    most ``max_mb`` megabytes of pixels (a 640 x 480 RGB image is 0.9 MB); ``max_mb=0`` turns it off. With data
    loader workers each process has its own. Cached arrays are read-only: the pipeline never writes into them.
    """

    def __init__(self, max_mb: float = 256.0):
        if not max_mb >= 0:
            raise ValueError(f"ImageCache max_mb must be >= 0, got {max_mb}")
        self.max_bytes = int(max_mb * 2**20)
        self.nbytes = self.hits = self.misses = 0
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._images)

    def clear(self) -> None:
        self._images.clear()
        self.nbytes = 0

    def get(self, path: str | Path, where: str = "") -> np.ndarray:
        """The image at ``path`` as :func:`load_image` reads it, from the cache when it is there."""
        key = str(path)
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
            self.hits += 1
            return image
        self.misses += 1
        image = load_image(path, where)
        if 0 < image.nbytes <= self.max_bytes:
            image.flags.writeable = False
            self._images[key] = image
            self.nbytes += image.nbytes
            while self.nbytes > self.max_bytes:
                _, old = self._images.popitem(last=False)
                self.nbytes -= old.nbytes
        return image


def record_image(record: PersonRecord, cache: ImageCache | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 RGB image of a record: its array, its function's result, or its file (through ``cache``)."""
    if isinstance(record.image, np.ndarray):
        return record.image
    if callable(record.image):
        return record.image()
    if cache is not None:
        return cache.get(record.image, record.where())
    return load_image(record.image, record.where())


def augment_box(keypoints, center, scale, augment: Augment, skeleton: Skeleton, rng: np.random.Generator,
                aspect_ratio: float):
    """HRNet's random box: maybe half-body, then scale and rotation draws. Returns (center, scale, rotation).

    HRNet's ``JointsDataset.__getitem__`` (Sun et al., CVPR 2019, official code). Chapter 01.
    """
    center, scale = np.array(center, dtype=np.float64), np.array(scale, dtype=np.float64)
    labelled = int((np.asarray(keypoints)[:, 2] > 0).sum())
    if labelled > augment.half_body_min_joints and rng.random() < augment.half_body:
        box = half_body(keypoints, skeleton.upper_body, rng, aspect_ratio)
        if box is not None:
            center, scale = box
    scale = scale * augment.scale_factor(rng)
    return center, scale, augment.rotation_deg(rng)


def make_sample(image: np.ndarray, record: PersonRecord, *, codec, input_size, skeleton: Skeleton,
                augment: Augment | None = None, rng: np.random.Generator | None = None) -> dict:
    """One item: ``image`` (3, H, W) normalized, ``target`` (K, h, w), ``target_weight`` (K,), ``meta`` (dict).

    With ``augment`` (training) the box, rotation and flip are drawn from ``rng``; ``meta`` center/scale/rotation
    describe the crop in the (flipped, if ``flipped``) image, and ``meta['keypoints']`` stays in the original image.
    ``codec`` may be a list of codecs (one per model output): ``target`` and ``target_weight`` are then lists, in
    the codecs' order. HRNet's ``JointsDataset``; chapter 01.
    """
    kp = np.asarray(record.keypoints, dtype=np.float64)
    center, scale, rotation, flipped = record.center, record.scale, 0.0, False
    height, width = image.shape[:2]
    if augment is not None:
        rng = rng if rng is not None else np.random.default_rng()
        aspect = input_size[1] / input_size[0]
        center, scale, rotation = augment_box(kp, center, scale, augment, skeleton, rng, aspect)
        if rng.random() < augment.flip:
            flipped = True
            image = flip_image(image)
            kp = flip_keypoints(kp, width, skeleton.flip_pairs)
            center = np.array([width - 1 - center[0], center[1]])
        if augment.color is not None:
            image = color_jitter(image, rng, *augment.color)
    matrix = get_affine_transform(center, scale, rotation, input_size)
    patch = warp(np.ascontiguousarray(image), matrix, input_size)
    joints = affine_points(kp[:, :2], matrix)
    if isinstance(codec, (list, tuple)):
        encoded = [c.encode(joints, kp[:, 2]) for c in codec]
        target = [torch.from_numpy(t) for t, _ in encoded]
        weight = [torch.from_numpy(w) for _, w in encoded]
    else:
        t, w = codec.encode(joints, kp[:, 2])
        target, weight = torch.from_numpy(t), torch.from_numpy(w)
    meta = {
        "image_id": int(record.image_id), "ann_id": int(record.ann_id),
        "center": np.asarray(center, dtype=np.float64), "scale": np.asarray(scale, dtype=np.float64),
        "rotation": float(rotation), "keypoints": np.asarray(record.keypoints, dtype=np.float32),
        "score": float(record.score), "flipped": flipped, "image_size": np.array([height, width]),
        **record.extra,
    }
    return {"image": to_tensor(patch), "target": target, "target_weight": weight, "meta": meta}


def _check_seed(seed, owner: str):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"{owner} seed must be a non-negative int or None, got {seed!r}")
    return None if seed is None else int(seed)


class TopDownDataset(torch.utils.data.Dataset):
    """A torch Dataset over :class:`PersonRecord` s: item i is record i through :func:`make_sample`. Chapter 01.

    Every random draw of item i comes from one generator keyed on (seed, epoch, index) when ``seed`` is given (call
    :meth:`set_epoch` each epoch; the Trainer does, and seeds an unseeded training set); ``seed=None`` draws fresh
    entropy. ``codec`` may be a list (one target per model output, e.g. CPN's GlobalNet levels then its RefineNet):
    items then hold lists of targets and weights, and ``codec`` is the last one, which decodes the final output
    (``codecs`` holds them all). Image files are decoded through an :class:`ImageCache` of ``image_cache_mb`` MB.
    """

    def __init__(self, records: list[PersonRecord], *, train: bool, input_size=(256, 192), heatmap_size=(64, 48),
                 sigma: float = 2.0, codec=None, augment: Augment | None = None, skeleton: Skeleton = COCO,
                 seed: int | None = None, image_cache_mb: float = 256.0):
        self.records = records
        self.train = bool(train)
        self.input_size = tuple(int(v) for v in input_size)
        self.heatmap_size = tuple(int(v) for v in heatmap_size)
        if codec is None:
            codec = GaussianHeatmap(self.input_size, self.heatmap_size, sigma)
        self.codecs = self._check_codecs(codec)
        self.multi_target = isinstance(codec, (list, tuple))
        self.codec = self.codecs[-1]
        self.augment = (augment if augment is not None else Augment()) if self.train else None
        self.skeleton = skeleton
        self.seed = _check_seed(seed, type(self).__name__)
        self.epoch = 0
        self.image_cache = ImageCache(image_cache_mb)

    def _check_codecs(self, codec) -> list:
        codecs = list(codec) if isinstance(codec, (list, tuple)) else [codec]
        if not codecs:
            raise ValueError(f"{type(self).__name__}: codec is an empty list; give at least one codec")
        for i, c in enumerate(codecs):
            what = f"{type(self).__name__}: codec" + (f"[{i}]" if isinstance(codec, (list, tuple)) else "")
            if not callable(getattr(c, "encode", None)):
                raise TypeError(f"{what} {c!r} has no encode(keypoints, visibility) method")
            size = getattr(c, "input_size", None)
            if size is not None and tuple(size) != self.input_size:
                raise ValueError(f"{what} has input_size {tuple(size)}, but the dataset crops {self.input_size}")
        return codecs

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Make the next items epoch ``epoch``'s draws (call it before each epoch)."""
        self.epoch = int(epoch)

    def image_keys(self) -> list:
        """Which photo each item crops (its file, or its image id for in-memory images), for an epoch order that
        keeps a photo's people together (``Trainer(order="images")``)."""
        return [str(r.image) if isinstance(r.image, (str, Path)) else r.image_id for r in self.records]

    def _index(self, index) -> int:
        """``index`` as a position in 0..len-1 (negative indices count from the end); out of range raises."""
        n, index = len(self), operator.index(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {n}")
        return index % n

    def _rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` (0..len-1): keyed on (seed, epoch, index); fresh entropy without a seed."""
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index])

    def _codec_arg(self):
        return self.codecs if self.multi_target else self.codec

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        record = self.records[index]
        return make_sample(record_image(record, self.image_cache), record, codec=self._codec_arg(),
                           input_size=self.input_size, skeleton=self.skeleton, augment=self.augment,
                           rng=self._rng(index))
