"""Whole-image samples for bottom-up training (OpenPose): the image, confidence maps, PAFs and a loss mask.

Beside the per-person crops of ``posebook.data.topdown``, an item here is a whole image fitted into a square
S x S input (randomly scaled, turned, shifted and flipped when training), with the targets of every person in it
(``posebook.codecs.paf``) and OpenPose's mask: 0 over people the annotators left without keypoints (COCO crowd
regions and people with no labelled keypoint) so the loss ignores them, 1 elsewhere (TPAMI'19 §3, the spatial
mask W(p); Cao et al., CVPR 2017, §2). Augmentation draws from a generator keyed on (seed, epoch, index), never a global RNG.
Chapter 08 (OpenPose).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.utils.data

from posebook.codecs.paf import ConfidenceMaps, PartAffinityFields, coco_to_openpose, input_pair
from posebook.keypoints import COCO, OPENPOSE

from .cocofile import coco_api, read_coco
from .topdown import load_image
from .transforms import PIXEL_STD, affine_points, get_affine_transform, to_tensor


@dataclass(frozen=True)
class BottomUpAugment:
    """A whole-image augmentation: zoom x U(scale), rotation U(+-rotation) degrees, shift U(+-shift) input px,
    horizontal flip with probability ``flip`` (OpenPose-18 flip pairs). Our defaults; the paper lists none.
    Chapter 08 (OpenPose)."""

    scale: tuple[float, float] = (0.7, 1.3)
    rotation: float = 40.0
    shift: float = 40.0
    flip: float = 0.5

    def __post_init__(self):
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"BottomUpAugment.scale must be (low, high) with 0 < low <= high, got {self.scale}")

    @classmethod
    def none(cls) -> "BottomUpAugment":
        return cls(scale=(1.0, 1.0), rotation=0.0, shift=0.0, flip=0.0)


def fit_matrix(image_size, input_size, zoom: float = 1.0, rotation: float = 0.0, shift=(0.0, 0.0),
               flip: bool = False) -> np.ndarray:
    """The (2, 3) image -> input affine: the whole image (H, W) fitted into ``input_size`` (H, W) around its centre,
    times ``zoom``, turned by ``rotation`` degrees (HRNet's sign), moved by ``shift`` input px, then mirrored
    (x -> W_in - 1 - x) if ``flip``. Chapter 08 (OpenPose)."""
    (h, w), (out_h, out_w) = image_size, input_size
    fit = min(out_h / h, out_w / w) * zoom
    center = np.array([w / 2, h / 2]) - np.asarray(shift, dtype=np.float64) / fit
    box = out_w / fit / PIXEL_STD  # get_affine_transform sizes the box by its width
    matrix = get_affine_transform(center, [box, box], rotation, (out_h, out_w))
    if flip:
        matrix = np.array([[-1.0, 0.0, out_w - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
    return matrix


def make_bottomup_sample(image: np.ndarray, people, unannotated=None, *, heatmap_codec: ConfidenceMaps,
                         paf_codec: PartAffinityFields, augment: BottomUpAugment | None = None,
                         rng: np.random.Generator | None = None, meta: dict | None = None) -> dict:
    """One item: ``image`` (3, H, W) normalised, ``heatmaps`` (C, h, w), ``pafs`` (2L, h, w), ``mask`` (1, h, w),
    ``meta`` (image_id, matrix image -> input, zoom, rotation, flipped, image_size, num_people).

    ``people`` (N, K, 3) in image px in the codecs' skeleton; ``unannotated`` (H, W) bool, where the loss is
    masked. With ``augment``, the draws come from ``rng`` in a fixed order. Chapter 08 (OpenPose).
    """
    height, width = image.shape[:2]
    input_size = heatmap_codec.input_size
    zoom, rotation, shift, flipped = 1.0, 0.0, np.zeros(2), False
    if augment is not None:
        if rng is None:
            raise ValueError("make_bottomup_sample: augment needs rng, a numpy Generator keyed on the item")
        zoom = float(rng.uniform(*augment.scale))
        rotation = float(rng.uniform(-augment.rotation, augment.rotation))
        shift = rng.uniform(-augment.shift, augment.shift, 2)
        flipped = bool(rng.random() < augment.flip)
    matrix = fit_matrix((height, width), input_size, zoom, rotation, shift, flipped)
    size = (input_size[1], input_size[0])
    patch = cv2.warpAffine(np.ascontiguousarray(image), matrix, size, flags=cv2.INTER_LINEAR)
    kp = np.array(people, dtype=np.float64).reshape(-1, heatmap_codec.skeleton.num_keypoints, 3)
    kp[..., :2] = affine_points(kp[..., :2], matrix)
    if flipped:
        kp = kp[:, heatmap_codec.skeleton.flip_index()]
    mask = np.ones(heatmap_codec.output_size, dtype=np.float32)
    if unannotated is not None and np.any(unannotated):
        covered = cv2.warpAffine(np.asarray(unannotated, dtype=np.float32), matrix, size, flags=cv2.INTER_LINEAR)
        # a map pixel is masked when any of the s x s block it stands for is covered: better to ignore the loss
        # beside an unannotated person than to teach the network that a thin one is background
        h, w = heatmap_codec.output_size
        mask = (cv2.resize(covered, (w, h), interpolation=cv2.INTER_AREA) <= 1e-3).astype(np.float32)
    info = {"image_id": -1, **(meta or {}), "matrix": matrix, "zoom": zoom, "rotation": rotation,
            "flipped": flipped, "image_size": np.array([height, width]), "num_people": len(kp)}
    return {"image": to_tensor(patch), "heatmaps": torch.from_numpy(heatmap_codec.encode(kp)),
            "pafs": torch.from_numpy(paf_codec.encode(kp)), "mask": torch.from_numpy(mask[None]), "meta": info}


class _SeededImages(torch.utils.data.Dataset):
    """What both bottom-up datasets share: the codecs, the augmentation and the (seed, epoch, index) generator."""

    def __init__(self, train: bool, input_size, stride: int, sigma: float, limb_width: float | None,
                 background: bool, augment: BottomUpAugment | None, seed: int | None, cm_form: str = "official",
                 paf_support: str = "official"):
        self.train = bool(train)
        self.input_size = input_pair(input_size, "input_size")
        self.heatmap_codec = ConfidenceMaps(self.input_size, stride, sigma, OPENPOSE, background, form=cm_form)
        self.paf_codec = PartAffinityFields(self.input_size, stride, limb_width, OPENPOSE, support=paf_support)
        self.augment = (augment if augment is not None else BottomUpAugment()) if self.train else None
        # no seed: one drawn now from fresh entropy and kept, so a saved (seed, epoch, index) replays exactly
        self.seed = int(np.random.SeedSequence().entropy % 2 ** 63) if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        return int(index) % len(self)

    def _sample(self, index: int, image, people, unannotated, meta: dict) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment is not None else None
        return make_bottomup_sample(image, people, unannotated, heatmap_codec=self.heatmap_codec,
                                    paf_codec=self.paf_codec, augment=self.augment, rng=rng, meta=meta)


def _load_coco(coco, source: str):
    """A pycocotools COCO from a COCO object, or a checked COCO dict or json path (:mod:`posebook.data.cocofile`)."""
    from pycocotools.coco import COCO as CocoApi

    if isinstance(coco, CocoApi):
        return coco
    return coco_api(read_coco(coco, source=None if isinstance(coco, (str, Path)) else source))


class BottomUpDataset(_SeededImages):
    """Whole COCO images for bottom-up training and evaluation: item i is image ``image_ids[i]`` through
    :func:`make_bottomup_sample`, with every annotated person's targets and the unannotated people masked.

    ``coco``: a pycocotools COCO, a COCO dict or a json path; ``images``: the image folder or a mapping image id
    -> RGB array. Training keeps the images with at least one person with a labelled keypoint; evaluation keeps
    every image. Training draws are a pure function of (seed, epoch, index). ``cm_form`` and ``paf_support`` pick
    the targets' forms (:class:`ConfidenceMaps` ``form``, :class:`PartAffinityFields` ``support``; "official" by
    default, "paper" for the forms TPAMI'19 §3 writes). Chapter 08 (OpenPose).
    """

    def __init__(self, coco, images, *, train: bool, input_size=368, stride: int = 8, sigma: float = 7.0,
                 limb_width: float | None = None, background: bool = True, augment: BottomUpAugment | None = None,
                 seed: int | None = None, source: str | None = None, cm_form: str = "official",
                 paf_support: str = "official"):
        super().__init__(train, input_size, stride, sigma, limb_width, background, augment, seed, cm_form,
                         paf_support)
        self.source = source or (str(coco) if isinstance(coco, (str, Path)) else "<in-memory COCO>")
        self.coco = _load_coco(coco, self.source)
        self.images = images if isinstance(images, dict) else Path(images)
        self._people, self._unannotated = {}, {}
        for image_id in sorted(self.coco.imgs):
            self._people[image_id], self._unannotated[image_id] = self._read(image_id)
        self.image_ids = [i for i in sorted(self.coco.imgs) if not self.train or len(self._people[i])]

    def _where(self, ann: dict) -> str:
        return f"{self.source}, annotation id {ann.get('id', '?')} (image id {ann.get('image_id', '?')})"

    def _read(self, image_id: int) -> tuple[np.ndarray, list[dict]]:
        """(people (N, 18, 3) OpenPose-18 in image px, the annotations to mask) of one image, checked."""
        info = self.coco.imgs[image_id]
        missing = [k for k in ("file_name", "width", "height") if k not in info]
        if missing:
            raise ValueError(f"{self.source}, image id {image_id}: missing field(s) {missing}")
        people, unannotated = [], []
        for ann in self.coco.imgToAnns.get(image_id, []):
            where = self._where(ann)
            missing = [k for k in ("keypoints", "category_id") if k not in ann]
            if missing:
                raise ValueError(f"{where}: missing field(s) {missing}")
            if ann["category_id"] != 1:
                continue
            kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1)
            if kp.size != 3 * COCO.num_keypoints or not np.isfinite(kp).all():
                raise ValueError(f"{where}: expected {COCO.num_keypoints} keypoints ({3 * COCO.num_keypoints} "
                                 f"finite numbers x, y, v), got {kp.size} numbers")
            kp = kp.reshape(-1, 3)
            if ann.get("iscrowd", 0) or not (kp[:, 2] > 0).any():
                if not ann.get("segmentation"):
                    box = np.asarray(ann.get("bbox", []), dtype=np.float64).reshape(-1)
                    if box.size != 4 or not np.isfinite(box).all() or (box[2:] <= 0).any():
                        raise ValueError(f"{where}: a person with no labelled keypoint is masked by its "
                                         f"segmentation or its bbox [x, y, w, h]; it has neither (bbox "
                                         f"{ann.get('bbox')!r})")
                unannotated.append(ann)
                continue
            kp[kp[:, 2] <= 0] = 0
            people.append(kp)
        people = coco_to_openpose(np.stack(people)) if people else np.zeros((0, OPENPOSE.num_keypoints, 3))
        return people, unannotated

    def __len__(self) -> int:
        return len(self.image_ids)

    def image(self, image_id: int) -> np.ndarray:
        """The image ``image_id`` as (H, W, 3) uint8 RGB, from the folder or the in-memory mapping; its size must
        be the one the annotation file gives."""
        info = self.coco.imgs[image_id]
        if isinstance(self.images, dict):
            if image_id not in self.images:
                raise ValueError(f"{self.source}: no in-memory image for image id {image_id}")
            image = np.asarray(self.images[image_id])
        else:
            image = load_image(self.images / info["file_name"], f" ({self.source}, image id {image_id})")
        if image.ndim != 3 or image.shape[:2] != (info["height"], info["width"]):
            raise ValueError(f"{self.source}, image id {image_id}: the image is {image.shape}, the annotation "
                             f"file says (height, width) = ({info['height']}, {info['width']})")
        return image

    def people(self, index: int) -> np.ndarray:
        """The annotated people of item ``index``: (N, 18, 3) OpenPose-18 x, y, v in image px."""
        return self._people[self.image_ids[self._index(index)]].copy()

    def unannotated_mask(self, index: int) -> np.ndarray:
        """(H, W) bool of item ``index``: the crowd regions and the people with no labelled keypoint (their
        segmentation, or their box when they have none)."""
        image_id = self.image_ids[self._index(index)]
        info = self.coco.imgs[image_id]
        out = np.zeros((info["height"], info["width"]), dtype=bool)
        for ann in self._unannotated[image_id]:
            if ann.get("segmentation"):
                try:
                    out |= self.coco.annToMask(ann).astype(bool)
                except Exception as err:  # pycocotools raises several types on a malformed segmentation
                    raise ValueError(f"{self._where(ann)}: unreadable segmentation ({err})") from None
                continue
            x, y, w, h = np.asarray(ann["bbox"], dtype=np.float64).reshape(4)
            out[max(int(np.floor(y)), 0):max(int(np.ceil(y + h)), 0),
                max(int(np.floor(x)), 0):max(int(np.ceil(x + w)), 0)] = True
        return out

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        image_id = self.image_ids[index]
        return self._sample(index, self.image(image_id), self._people[image_id], self.unannotated_mask(index),
                            {"image_id": int(image_id)})


class SyntheticBottomUp(_SeededImages):
    """Whole synthetic scenes for bottom-up training: item i is ``render_scene((seed, i), ...)`` (the scene of
    ``SyntheticScenes(seed)[i]``) through :func:`make_bottomup_sample`; people with no labelled keypoint are
    masked by their silhouettes. Training draws are a pure function of (seed, epoch, index). ``cm_form`` and
    ``paf_support`` as in :class:`BottomUpDataset`. Chapter 08.
    """

    def __init__(self, length: int, seed: int = 0, train: bool = True, input_size=256, stride: int = 8,
                 sigma: float = 7.0, limb_width: float | None = None, background: bool = True,
                 augment: BottomUpAugment | None = None, image_size=(256, 256), max_people: int = 4,
                 cm_form: str = "official", paf_support: str = "official", **scene_options):
        super().__init__(train, input_size, stride, sigma, limb_width, background, augment, seed, cm_form,
                         paf_support)
        if length < 1:
            raise ValueError(f"SyntheticBottomUp length must be >= 1, got {length}")
        self.length, self.image_size, self.max_people = int(length), input_pair(image_size, "image_size"), \
            int(max_people)
        self.scene_options = scene_options

    def __len__(self) -> int:
        return self.length

    def scene(self, index: int):
        """The synthetic scene of item ``index``."""
        from .synthetic import render_scene

        return render_scene([self.seed, self._index(index)], self.image_size, self.max_people,
                            **self.scene_options)

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        scene = self.scene(index)
        kp = np.array([p["keypoints"] for p in scene.people], dtype=np.float64).reshape(-1, COCO.num_keypoints, 3)
        labelled = (kp[..., 2] > 0).any(axis=1)
        unannotated = np.zeros(scene.image.shape[:2], dtype=bool)
        for p in np.flatnonzero(~labelled):
            unannotated |= scene.mask(int(p))
        return self._sample(index, scene.image, coco_to_openpose(kp[labelled]), unannotated,
                            {"image_id": index})

    @classmethod
    def validation(cls, num_images: int, seed: int = 1_000_003, input_size=256, image_size=(256, 256),
                   max_people: int = 4, **options) -> BottomUpDataset:
        """A fixed evaluation set: ``make_coco(num_images, seed)`` in memory as a :class:`BottomUpDataset`
        (train=False) whose ``.coco`` is the ground truth for COCO AP. Use a seed other than the training set's."""
        from .synthetic import SceneOptions, make_coco

        scene_keys = set(SceneOptions.__dataclass_fields__)
        scene_options = {k: v for k, v in options.items() if k in scene_keys}
        coco, pixels = make_coco(num_images, seed, image_size, max_people, **scene_options)
        images = {info["id"]: image for info, image in zip(coco["images"], pixels)}
        rest = {k: v for k, v in options.items() if k not in scene_keys}
        return BottomUpDataset(coco, images, train=False, input_size=input_size, source=f"synthetic seed {seed}",
                               **rest)
