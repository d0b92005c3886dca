"""``SyntheticTopDown``: person crops of the seeded synthetic scenes, through the shared top-down pipeline.

The scenes come from :mod:`posebook.data.synthetic`, the crop and target from :mod:`posebook.data.topdown`, and
the fixed validation set is a :class:`posebook.data.coco.CocoKeypoints` over :func:`make_coco`. Chapter 01 (Data).
"""
from __future__ import annotations

import numpy as np

from posebook.keypoints import COCO

from .coco import CocoKeypoints
from .synthetic import Scene, make_coco, render_scene
from .topdown import PersonRecord, TopDownDataset, make_sample
from .transforms import Augment, box_to_center_scale, clip_box


class SyntheticTopDown(TopDownDataset):
    """Person crops from seeded synthetic scenes: item i crops one person of scene ``SyntheticScenes(seed)[i]``.

    The scene and the person are functions of (seed, i); the augmentation of (seed, epoch, i), so each epoch
    (:meth:`set_epoch`) sees new crops of the same people. For a fixed validation set with COCO ground truth (for
    COCO AP), use :meth:`validation` with a different seed. ``codec`` may be a list, as in :class:`TopDownDataset`.
    Chapter 01.
    """

    def __init__(self, length: int, seed: int = 0, train: bool = True, input_size=(256, 192),
                 heatmap_size=(64, 48), sigma: float = 2.0, image_size=(256, 256), codec=None,
                 augment: Augment | None = None, max_people: int = 4, **scene_options):
        if seed is None:
            raise ValueError("SyntheticTopDown needs an int seed: it names the scenes (seed=None would draw "
                             "unreproducible ones)")
        super().__init__([], train=train, input_size=input_size, heatmap_size=heatmap_size, sigma=sigma,
                         codec=codec, augment=augment, skeleton=COCO, seed=seed, image_cache_mb=0)
        if length < 1:
            raise ValueError(f"SyntheticTopDown length must be >= 1, got {length}")
        self.length = int(length)
        self.image_size = tuple(int(v) for v in image_size)
        self.max_people = int(max_people)
        self.scene_options = scene_options

    def __len__(self) -> int:
        return self.length

    def image_keys(self) -> list[int]:
        """Item i crops scene i: every item is a photo of its own."""
        return list(range(self.length))

    def scene(self, index: int) -> Scene:
        """The synthetic scene behind item ``index`` (the same as ``SyntheticScenes(seed)[index]``)."""
        return render_scene([self.seed, self._index(index)], self.image_size, self.max_people, **self.scene_options)

    def record(self, index: int) -> PersonRecord:
        """The record of the person that item ``index`` crops (its ``image`` is the scene's pixels)."""
        index = self._index(index)
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

    def _rng(self, index: int) -> np.random.Generator:
        # stream 2 of item `index` (stream 1 picks the person), one per epoch
        return np.random.default_rng([self.seed, index, 2, self.epoch])

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        record = self.record(index)
        return make_sample(record.image, record, codec=self._codec_arg(), input_size=self.input_size,
                           skeleton=self.skeleton, augment=self.augment, rng=self._rng(index))

    @classmethod
    def validation(cls, num_images: int, seed: int = 1_000_003, input_size=(256, 192), heatmap_size=(64, 48),
                   sigma: float = 2.0, image_size=(256, 256), codec=None, max_people: int = 4,
                   **scene_options) -> CocoKeypoints:
        """A fixed evaluation set: ``make_coco(num_images, seed)`` in memory, as a :class:`CocoKeypoints` (train=False)
        with ``.coco`` holding the ground truth for COCO AP. Use a seed other than the training set's."""
        coco, pixels = make_coco(num_images, seed, image_size, max_people, **scene_options)
        images = {info["id"]: image for info, image in zip(coco["images"], pixels)}
        return CocoKeypoints(coco, images, train=False, input_size=input_size, heatmap_size=heatmap_size,
                             sigma=sigma, codec=codec, source=f"make_coco({num_images}, seed={seed})")
