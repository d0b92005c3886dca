"""COCO keypoint JSON: the one reader and checker, the pycocotools index, and subset selection.

Every part of posebook that reads a COCO annotation file goes through :func:`read_coco` (the datasets, the
downloader, the metrics), so a malformed file gives the same error, naming the file and the record, wherever it is
read. Format: the COCO keypoints JSON (Lin et al., ECCV 2014; cocodataset.org/#format-data). Explained in chapter 01 (Data).
"""
from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

IN_MEMORY = "<in-memory COCO dict>"


def read_json(path: str | Path, what: str):
    """Parse a JSON file; a missing file or invalid JSON raises an error naming ``what`` and the path. Chapter 01."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None


def read_coco(path_or_dict, *, source: str | None = None, require: tuple[str, ...] = (),
              plain_file_names: bool = False) -> dict:
    """A COCO keypoint dataset (a path or a dict; a dict is returned as is), checked; errors name file and record.

    Checked: the top-level lists 'images', 'annotations', 'categories'; every image has an 'id'; every annotation
    an 'id', an 'image_id' among the images, a 'keypoints' list of triples when present, and the fields in
    ``require``. ``plain_file_names`` also refuses image file names with a folder in them (the downloader writes
    them to disk). ``source`` names a dict in the errors. COCO keypoints format; chapter 01.
    """
    if isinstance(path_or_dict, dict):
        data, source = path_or_dict, source or IN_MEMORY
    elif isinstance(path_or_dict, (str, Path)):
        data, source = read_json(path_or_dict, "COCO annotation file"), source or str(path_or_dict)
    else:
        raise TypeError(f"read_coco: expected a COCO dict or a json path, got {type(path_or_dict).__name__}")
    if not isinstance(data, dict):
        raise ValueError(f"{source}: not a COCO annotations file; expected a JSON object, got {type(data).__name__}")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise ValueError(f"{source}: not a COCO annotations file; missing top-level keys {missing}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise ValueError(f"{source}: {key!r} must be a list, got {type(data[key]).__name__}")
    image_ids = {_check_image(img, source, plain_file_names) for img in data["images"]}
    needed = ("id", "image_id", *require)
    for ann in data["annotations"]:
        _check_annotation(ann, image_ids, source, needed)
    return data


def _check_image(img, source: str, plain_file_names: bool):
    if not isinstance(img, dict) or "id" not in img:
        raise ValueError(f"{source}: every entry of 'images' needs an 'id', got {str(img)[:80]}")
    if plain_file_names:
        name = img.get("file_name")
        if name is None:
            raise ValueError(f"{source}: image id {img['id']} has no ['file_name']")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"{source}: image id {img['id']}: file_name {name!r} must be a plain file name")
    return img["id"]


def _check_annotation(ann, image_ids: set, source: str, needed: tuple[str, ...]) -> None:
    if not isinstance(ann, dict):
        raise ValueError(f"{source}: every entry of 'annotations' must be an object, got {str(ann)[:80]}")
    missing = [key for key in dict.fromkeys(needed) if key not in ann]
    if missing:
        raise ValueError(f"{source}: annotation id {ann.get('id', '?')} has no {missing}")
    if ann["image_id"] not in image_ids:
        raise ValueError(f"{source}: annotation id {ann['id']} refers to image_id {ann['image_id']}, "
                         f"which is not in 'images'")
    keypoints = ann.get("keypoints")
    if keypoints is not None and (not isinstance(keypoints, list) or len(keypoints) % 3):
        count = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        raise ValueError(f"{source}: annotation id {ann['id']}: keypoints has {count} numbers, "
                         f"expected 3 per keypoint (x, y, v)")


def coco_api(data: dict):
    """A pycocotools ``COCO`` index over an (already read) COCO dict, built without pycocotools' prints. Chapter 01."""
    from pycocotools.coco import COCO as CocoApi

    api = CocoApi()
    api.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api


def _labelled(ann: dict) -> int:
    if "num_keypoints" in ann:
        return int(ann["num_keypoints"])
    return sum(1 for v in ann.get("keypoints", [])[2::3] if v > 0)


def images_with_people(data: dict, min_keypoints: int = 1) -> list:
    """Sorted ids of the images holding a non-crowd person with at least ``min_keypoints`` labelled keypoints.

    The count is the annotation's ``num_keypoints``, else its labelled (v > 0) keypoints. Chapters 03, 07.
    """
    return sorted({a["image_id"] for a in data["annotations"]
                   if not a.get("iscrowd", 0) and _labelled(a) >= min_keypoints})


def coco_subset(data: dict, num_images: int, seed: int = 0, min_keypoints: int = 1, *, source="") -> dict:
    """COCO dataset restricted to ``num_images`` images drawn with ``seed`` among :func:`images_with_people`;
    every annotation of a chosen image is kept. Chapters 03, 07 (via ``downloaded_coco``)."""
    eligible = images_with_people(data, min_keypoints)
    if not 0 < num_images <= len(eligible):
        raise ValueError(f"{source or 'annotations'}: asked for num_images={num_images}, but only {len(eligible)} "
                         f"images have a person with >= {min_keypoints} keypoints")
    chosen = set(random.Random(seed).sample(eligible, num_images))
    return {**data,
            "images": sorted((img for img in data["images"] if img["id"] in chosen), key=lambda img: img["id"]),
            "annotations": [a for a in data["annotations"] if a["image_id"] in chosen]}
