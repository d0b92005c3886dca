"""The top-down sample pipeline shared by every person dataset, and ``SyntheticTopDown`` (crops of synthetic people).

One record (an image, one person's center/scale and keypoints) becomes one training item: HRNet's augmentation
(half-body, scale, rotation, flip; PAPERS.md §1.6), the affine crop, ImageNet normalisation and the codec's target.
Explained in chapter 01 (Data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.utils.data

from posebook.keypoints import COCO, Skeleton

from .transforms import (Augment, affine_points, box_to_center_scale, color_jitter, crop, flip_keypoints,
                         get_affine_transform, half_body, to_tensor)


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


def load_image(path: str | Path, where: str = "") -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; a missing or unreadable file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist{where}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"image {path} is corrupt or not an image (OpenCV cannot decode it){where}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _record_image(record: PersonRecord) -> np.ndarray:
    if isinstance(record.image, np.ndarray):
        return record.image
    if callable(record.image):
        return record.image()
    where = f" (annotation id {record.ann_id}, image id {record.image_id}"
    where += f", in {record.source})" if record.source else ")"
    return load_image(record.image, where)


def augment_box(keypoints, center, scale, augment: Augment, skeleton: Skeleton, rng: np.random.Generator,
                aspect_ratio: float):
    """HRNet's random box: maybe half-body, then scale and rotation draws. Returns (center, scale, rotation)."""
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
            image = image[:, ::-1]
            kp = flip_keypoints(kp, width, skeleton.flip_pairs)
            center = np.array([width - 1 - center[0], center[1]])
        if augment.color is not None:
            image = color_jitter(image, rng, *augment.color)
    patch = crop(np.ascontiguousarray(image), center, scale, rotation, input_size)
    joints = affine_points(kp[:, :2], get_affine_transform(center, scale, rotation, input_size))
    target, weight = codec.encode(joints, kp[:, 2])
    meta = {
        "image_id": int(record.image_id), "ann_id": int(record.ann_id),
        "center": np.asarray(center, dtype=np.float64), "scale": np.asarray(scale, dtype=np.float64),
        "rotation": float(rotation), "keypoints": np.asarray(record.keypoints, dtype=np.float32),
        "score": float(record.score), "flipped": flipped, "image_size": np.array([height, width]),
        **record.extra,
    }
    return {"image": to_tensor(patch), "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight), "meta": meta}


class TopDownDataset(torch.utils.data.Dataset):
    """A torch Dataset over :class:`PersonRecord` s: item i is record i through :func:`make_sample`.

    Training draws are a pure function of (seed, epoch, index) when ``seed`` is given (call :meth:`set_epoch`
    each epoch); with ``seed=None`` they come from fresh entropy. Chapter 01.
    """

    def __init__(self, records: list[PersonRecord], *, train: bool, input_size=(256, 192), heatmap_size=(64, 48),
                 sigma: float = 2.0, codec=None, augment: Augment | None = None, skeleton: Skeleton = COCO,
                 seed: int | None = None):
        from posebook.codecs import GaussianHeatmap

        self.records = records
        self.train = bool(train)
        self.input_size = tuple(int(v) for v in input_size)
        self.heatmap_size = tuple(int(v) for v in heatmap_size)
        self.codec = codec if codec is not None else GaussianHeatmap(self.input_size, self.heatmap_size, sigma)
        self.augment = (augment if augment is not None else Augment()) if self.train else None
        self.skeleton = skeleton
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        record = self.records[index]
        return make_sample(_record_image(record), record, codec=self.codec, input_size=self.input_size,
                           skeleton=self.skeleton, augment=self.augment, rng=self._rng(index))


class SyntheticTopDown(TopDownDataset):
    """Person crops from seeded synthetic scenes (``posebook.data.synthetic``); item i is a pure function of (seed, i).

    Item i crops one person (chosen by the seed) of scene ``SyntheticScenes(seed)[i]``. For a fixed validation set
    with COCO ground truth (for COCO AP), use :meth:`validation` with a different seed. Chapter 01.
    """

    def __init__(self, length: int, seed: int = 0, train: bool = True, input_size=(256, 192),
                 heatmap_size=(64, 48), sigma: float = 2.0, image_size=(256, 256), codec=None,
                 augment: Augment | None = None, max_people: int = 4, **scene_options):
        super().__init__([], train=train, input_size=input_size, heatmap_size=heatmap_size, sigma=sigma,
                         codec=codec, augment=augment, skeleton=COCO, seed=seed)
        if length < 1:
            raise ValueError(f"SyntheticTopDown length must be >= 1, got {length}")
        self.length = int(length)
        self.image_size = tuple(int(v) for v in image_size)
        self.max_people = int(max_people)
        self.scene_options = scene_options

    def __len__(self) -> int:
        return self.length

    def scene(self, index: int):
        """The synthetic scene behind item ``index`` (the same as ``SyntheticScenes(seed)[index]``)."""
        from .synthetic import render_scene

        return render_scene([self.seed, int(index)], self.image_size, self.max_people, **self.scene_options)

    def record(self, index: int) -> PersonRecord:
        """The record of the person that item ``index`` crops (its ``image`` is the scene's pixels)."""
        from .coco import clip_box

        scene = self.scene(index)
        people = [p for p in scene.people if np.any(np.asarray(p["keypoints"])[:, 2] > 0)]
        if not people:
            raise ValueError(f"synthetic scene (seed {self.seed}, index {index}) has no person with a labelled "
                             "keypoint")
        person = people[int(np.random.default_rng([self.seed, index, 1]).integers(len(people)))]
        height, width = scene.image.shape[:2]
        box = clip_box(person["bbox"], width, height) or person["bbox"]
        center, scale = box_to_center_scale(box, self.input_size[1] / self.input_size[0])
        return PersonRecord(image=scene.image, center=center, scale=scale,
                            keypoints=np.asarray(person["keypoints"], dtype=np.float64), image_id=index)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for SyntheticTopDown of length {len(self)}")
        index %= len(self)
        record = self.record(index)
        # one fixed stream per item: the same (seed, index) always gives the same crop and augmentation
        rng = np.random.default_rng([self.seed, index, 2])
        return make_sample(record.image, record, codec=self.codec, input_size=self.input_size,
                           skeleton=self.skeleton, augment=self.augment, rng=rng)

    @classmethod
    def validation(cls, num_images: int, seed: int = 1_000_003, input_size=(256, 192), heatmap_size=(64, 48),
                   sigma: float = 2.0, image_size=(256, 256), codec=None, max_people: int = 4, **scene_options):
        """A fixed evaluation set: ``make_coco(num_images, seed)`` in memory, as a :class:`CocoKeypoints` (train=False)
        with ``.coco`` holding the ground truth for COCO AP. Use a seed other than the training set's."""
        from .coco import CocoKeypoints
        from .synthetic import make_coco

        coco, pixels = make_coco(num_images, seed, image_size, max_people, **scene_options)
        images = {info["id"]: image for info, image in zip(coco["images"], pixels)}
        return CocoKeypoints(coco, images, train=False, input_size=input_size, heatmap_size=heatmap_size,
                             sigma=sigma, codec=codec)
