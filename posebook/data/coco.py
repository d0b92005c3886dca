"""COCO and MPII person datasets for top-down training and evaluation, on pycocotools.

``CocoKeypoints`` follows HRNet's ``lib/dataset/coco.py``: person instances with keypoints, boxes
clipped to the image, (center, scale) with the aspect fix and 1.25 padding; or one item per detection box.
``MpiiKeypoints`` reads HRNet's MPII json (``lib/dataset/mpii.py``). Both yield the item dict of
:func:`posebook.data.topdown.make_sample`. Explained in chapter 01 (Data).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from posebook.keypoints import COCO, MPII, Skeleton

from .cocofile import IN_MEMORY, coco_api, coco_subset, images_with_people, read_coco, read_json
from .topdown import PersonRecord, TopDownDataset, load_image
from .transforms import Augment, box_to_center_scale, clip_box, fix_aspect

SKIP_REASONS = ("not_person", "crowd", "empty_box", "zero_area", "no_keypoints")


def _box(value, where: str) -> list[float]:
    """[x, y, w, h] as floats; anything but four finite numbers raises (a malformed record), naming ``where``."""
    try:
        box = np.asarray(value, dtype=np.float64).reshape(-1) if value is not None else np.zeros(0)
    except (TypeError, ValueError):
        box = np.zeros(0)
    if box.size != 4 or not np.all(np.isfinite(box)):
        raise ValueError(f"{where}: bbox must be [x, y, w, h], got {value!r}")
    return box.tolist()


def _keypoints(value, num: int, where: str) -> np.ndarray:
    try:
        kp = np.asarray(value if value is not None else [], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: keypoints must be {3 * num} numbers x, y, v, got {str(value)[:80]}") from None
    if kp.size != 3 * num:
        raise ValueError(f"{where}: expected {num} keypoints ({3 * num} numbers x, y, v), got {kp.size} numbers")
    if not np.all(np.isfinite(kp)):
        raise ValueError(f"{where}: keypoints must be finite numbers, got {str(value)[:80]}")
    return kp.reshape(num, 3)


def _number(value, name: str, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None


class CocoKeypoints(TopDownDataset):
    """COCO person crops: ground-truth instances with keypoints, or one item per detection box. Chapter 01.

    Ground truth keeps HRNet's filter (``coco.py``): person category, not crowd, annotated area > 0,
    box clipped to the image with area > 0, at least one labelled keypoint; ``skipped`` counts the rest by reason
    (:data:`SKIP_REASONS`), so one degenerate box does not abort a dataset. A malformed record (missing field,
    wrong keypoint count, non-numeric bbox) raises, naming the file and the annotation id. ``detections`` is a path
    or list of ``{image_id, bbox, score, category_id}`` (HRNet's detector boxes); those items have ``ann_id`` -1, zero
    keypoints and an all-zero target (``skipped`` counts non-person, low-score and empty boxes).
    ``ann_file`` may also be a COCO dict and ``image_dir`` a mapping image id -> RGB array (in-memory data);
    ``source`` then names the dict in error messages (for example the file it was read from). Other options as
    :class:`TopDownDataset` (``codec`` lists, ``seed``, ``image_cache_mb``).
    Attributes the evaluation relies on: ``coco``, ``skeleton``, ``codec``, ``input_size``, ``heatmap_size``.
    """

    def __init__(self, ann_file, image_dir, train: bool, input_size=(256, 192),
                 heatmap_size=(64, 48), sigma: float = 2.0, codec=None, augment: Augment | None = None,
                 detections=None, det_score_threshold: float = 0.0, skeleton: Skeleton = COCO,
                 seed: int | None = None, source: str | None = None, image_cache_mb: float = 256.0):
        self.ann_file = (source or IN_MEMORY) if isinstance(ann_file, dict) else Path(ann_file)
        self.image_dir = image_dir if isinstance(image_dir, dict) else Path(image_dir)
        self.coco = coco_api(read_coco(ann_file, source=str(self.ann_file)))
        aspect = input_size[1] / input_size[0]
        if detections is None:
            self.skipped = dict.fromkeys(SKIP_REASONS, 0)
            records = self._gt_records(skeleton, aspect)
        else:
            self.skipped = dict.fromkeys(("not_person", "low_score", "empty_box"), 0)
            records = self._det_records(detections, det_score_threshold, skeleton, aspect)
        super().__init__(records, train=train, input_size=input_size, heatmap_size=heatmap_size, sigma=sigma,
                         codec=codec, augment=augment, skeleton=skeleton, seed=seed, image_cache_mb=image_cache_mb)

    def _image_info(self, image_id: int, where: str) -> dict:
        info = self.coco.imgs.get(image_id)
        if info is None:
            raise ValueError(f"{where}: image id {image_id} is not in the 'images' list of {self.ann_file}")
        for key in ("file_name", "width", "height"):
            if key not in info:
                raise ValueError(f"{self.ann_file}, image id {image_id}: missing field {key!r}")
        return info

    def _image_path(self, image_id: int, where: str) -> tuple[Path | np.ndarray, dict]:
        info = self._image_info(image_id, where)
        if isinstance(self.image_dir, dict):
            if image_id not in self.image_dir:
                raise ValueError(f"{where}: no in-memory image for image id {image_id}")
            return self.image_dir[image_id], info
        path = self.image_dir / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{where}: image {path} does not exist")
        return path, info

    def image(self, image_id: int) -> np.ndarray:
        """The whole image ``image_id`` as (H, W, 3) uint8 RGB, from disk or from the in-memory mapping."""
        where = f"{type(self).__name__}.image"
        image, _ = self._image_path(int(image_id), where)
        return image if isinstance(image, np.ndarray) else load_image(image, f" ({where}, image id {image_id})")

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def _gt_records(self, skeleton: Skeleton, aspect: float) -> list[PersonRecord]:
        records = []
        for ann_id in sorted(self.coco.anns):
            ann = self.coco.anns[ann_id]
            where = f"{self.ann_file}, annotation id {ann.get('id', ann_id)}"
            missing = [k for k in ("image_id", "bbox", "keypoints", "category_id") if k not in ann]
            if missing:
                raise ValueError(f"{where}: missing field(s) {missing}")
            if ann["category_id"] != 1:
                self._skip("not_person")
                continue
            if ann.get("iscrowd", 0):
                self._skip("crowd")
                continue
            kp = _keypoints(ann["keypoints"], skeleton.num_keypoints, where)
            box = _box(ann["bbox"], where)
            info = self._image_info(ann["image_id"], where)
            # HRNet's order: the box first (clipped, area > 0), then the keypoints
            clean = clip_box(box, info["width"], info["height"])
            if clean is None:
                self._skip("empty_box")
                continue
            if "area" in ann and not _number(ann["area"], "area", where) > 0:
                self._skip("zero_area")
                continue
            if kp[:, 2].max() <= 0:
                self._skip("no_keypoints")
                continue
            path, _ = self._image_path(ann["image_id"], where)
            center, scale = box_to_center_scale(clean, aspect)
            kp[kp[:, 2] <= 0] = 0
            records.append(PersonRecord(path, center, scale, kp, ann["image_id"], ann_id, 1.0,
                                        source=str(self.ann_file)))
        return records

    def _det_records(self, detections, threshold: float, skeleton: Skeleton, aspect: float) -> list[PersonRecord]:
        source = str(detections) if isinstance(detections, (str, Path)) else "the detections list"
        dets = read_json(detections, "detections file") if isinstance(detections, (str, Path)) else detections
        if not isinstance(dets, list):
            raise ValueError(f"{source}: expected a list of detections, got {type(dets).__name__}")
        records = []
        for i, det in enumerate(dets):
            where = f"{source}, detection {i}"
            missing = [k for k in ("image_id", "bbox", "score") if k not in det]
            if missing:
                raise ValueError(f"{where}: missing field(s) {missing}")
            if det.get("category_id", 1) != 1:
                self._skip("not_person")
                continue
            if det["score"] < threshold:
                self._skip("low_score")
                continue
            box = _box(det["bbox"], where)
            if not (box[2] > 0 and box[3] > 0):
                self._skip("empty_box")
                continue
            center, scale = box_to_center_scale(box, aspect)
            path, _ = self._image_path(det["image_id"], where)
            zeros = np.zeros((skeleton.num_keypoints, 3))
            records.append(PersonRecord(path, center, scale, zeros, det["image_id"], -1, float(det["score"]),
                                        source=source))
        return records


def downloaded_coco(folder: str | Path, split: str, *, train: bool, num_images: int | None = None, seed: int = 0,
                    **dataset_options) -> CocoKeypoints | None:
    """The COCO subset ``data_scripts/download_coco.py --out FOLDER --split SPLIT`` wrote, as a :class:`CocoKeypoints`
    (``FOLDER/annotations/person_keypoints_SPLIT_subset.json`` and ``FOLDER/SPLIT/*.jpg``), or None when the
    annotation file is absent. ``num_images`` keeps that many of its photos with people (drawn with ``seed``; all
    when there are fewer). Training sets get ``seed`` too, so their augmentation is reproducible. Chapters 03, 07.
    """
    folder = Path(folder)
    ann_file = folder / "annotations" / f"person_keypoints_{split}_subset.json"
    if not ann_file.exists():
        return None
    data = read_coco(ann_file)
    if num_images is not None:
        available = len(images_with_people(data))
        data = coco_subset(data, min(int(num_images), available), seed=seed, source=str(ann_file))
    if train:
        dataset_options.setdefault("seed", seed)
    return CocoKeypoints(data, folder / split, train=train, source=str(ann_file), **dataset_options)


def downloaded_coco_splits(folder: str | Path, val_images: int, seed: int = 0,
                           **dataset_options) -> tuple[CocoKeypoints, CocoKeypoints] | None:
    """(train2017, val2017) from :func:`downloaded_coco`: the training set and ``val_images`` validation photos,
    or None unless both subsets are in ``folder``. The ``full`` profiles of chapters 03 and 07 train on these."""
    train = downloaded_coco(folder, "train2017", train=True, seed=seed, **dataset_options)
    val = downloaded_coco(folder, "val2017", train=False, num_images=val_images, seed=seed, **dataset_options)
    return None if train is None or val is None else (train, val)


class MpiiKeypoints(TopDownDataset):
    """MPII person crops from HRNet's json (image, center, scale, joints, joints_vis). Chapter 01.

    As HRNet's ``mpii.py``: ``center[1] += 15 * scale``, ``scale *= 1.25``, and MATLAB's 1-based coordinates become
    0-based. If records carry ``head_box`` [x1, y1, x2, y2] (MPII's head rectangle), ``meta['head_size']`` is
    0.6 x its diagonal (the PCKh normaliser of MPII's evaluation); HRNet's json (and the shared sample) has none.
    Training augmentation defaults to HRNet's MPII recipe (:meth:`Augment.hrnet_mpii`).
    """

    def __init__(self, ann_file: str | Path, image_dir: str | Path, train: bool, input_size=(256, 256),
                 heatmap_size=(64, 64), sigma: float = 2.0, codec=None, augment: Augment | None = None,
                 skeleton: Skeleton = MPII, seed: int | None = None, image_cache_mb: float = 256.0):
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        self.coco = None
        data = read_json(ann_file, "MPII annotation file")
        if not isinstance(data, list):
            raise ValueError(f"MPII annotation file {ann_file}: expected a list of records, got {type(data).__name__}")
        aspect = input_size[1] / input_size[0]
        records = [self._record(i, a, skeleton, aspect) for i, a in enumerate(data)]
        self.has_head_size = bool(records) and all("head_size" in r.extra for r in records)
        if not self.has_head_size:
            for r in records:
                r.extra.pop("head_size", None)
        super().__init__(records, train=train, input_size=input_size, heatmap_size=heatmap_size, sigma=sigma,
                         codec=codec, augment=augment if augment is not None else Augment.hrnet_mpii(),
                         skeleton=skeleton, seed=seed, image_cache_mb=image_cache_mb)

    def _record(self, index: int, ann: dict, skeleton: Skeleton, aspect: float) -> PersonRecord:
        where = f"{self.ann_file}, record {index}"
        missing = [k for k in ("image", "center", "scale", "joints", "joints_vis") if k not in ann]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        joints = np.asarray(ann["joints"], dtype=np.float64)
        vis = np.asarray(ann["joints_vis"], dtype=np.float64).reshape(-1)
        k = skeleton.num_keypoints
        if joints.shape != (k, 2) or vis.shape != (k,):
            raise ValueError(f"{where}: expected joints ({k}, 2) and joints_vis ({k},), got {joints.shape} "
                             f"and {vis.shape}")
        if float(ann["scale"]) <= 0:
            raise ValueError(f"{where}: scale must be > 0 (zero-area box), got {ann['scale']}")
        s = float(ann["scale"])
        center = np.asarray(ann["center"], dtype=np.float64).reshape(2)
        scale = np.array(fix_aspect(s, s, aspect))
        if center[0] != -1:  # HRNet leaves records without a centre (-1) alone
            center, scale = center + np.array([0.0, 15 * s]), scale * 1.25
        center = center - 1
        kp = np.concatenate([joints - 1, (vis > 0)[:, None]], axis=1)
        kp[kp[:, 2] <= 0] = 0
        path = self.image_dir / ann["image"]
        if not path.is_file():
            raise FileNotFoundError(f"{where}: image {path} does not exist")
        extra = {}
        if "head_box" in ann:
            x1, y1, x2, y2 = np.asarray(ann["head_box"], dtype=np.float64).reshape(4)
            extra["head_size"] = float(0.6 * np.hypot(x2 - x1, y2 - y1))
        return PersonRecord(path, center, scale, kp, index, index, 1.0, extra=extra, source=str(self.ann_file))
