"""Convert MPII's official annotations (``mpii_human_pose_v1_u12_1.mat``, MATLAB v5 struct ``RELEASE``) into the
HRNet-style json that :class:`posebook.data.MpiiKeypoints` reads. Explained in chapter 01 (real data).

The release nests ``RELEASE.annolist(i).annorect(r).annopoints.point(j)`` (Andriluka et al., CVPR 2014, and the
release's README); ``img_train(i)`` marks training images (test images carry no joints) and ``single_person{i}``
lists the rects of well-separated people. Coordinates stay MATLAB 1-based, as in HRNet's json. Reading MATLAB files
needs scipy (``pip install scipy`` or ``pip install posebook[mpii]``).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from posebook.keypoints import MPII
from posebook._io import atomic_write

NUM_JOINTS = MPII.num_keypoints
MAT_NAME = "mpii_human_pose_v1_u12_1.mat"  # inside the official mpii_human_pose_v1_u12_2.zip
# HRNet's json writes an unlabelled joint as (-1, -1) with joints_vis 0 (see ../shared/data/mpii_sample).
MISSING_JOINT = (-1.0, -1.0)
# The standard (Tompson et al.) validation split holds 2958 of HRNet's 25204 labelled people, about 12%.
VALID_FRACTION = 0.12


class MpiiRecords(list):
    """The people of an MPII .mat as record dicts; ``skipped`` counts the rects left out, by reason. Chapter 01."""

    def __init__(self, records=(), skipped: Counter | None = None, source: str = ""):
        super().__init__(records)
        self.skipped = Counter(skipped or {})
        self.source = source


def _loadmat(path: Path):
    try:
        import scipy.io
    except ImportError:
        raise ImportError("reading MPII's .mat annotations needs scipy: pip install scipy "
                          "(or pip install posebook[mpii])") from None
    if not path.is_file():
        raise FileNotFoundError(f"MPII annotation file {path} does not exist")
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except (ValueError, TypeError, NotImplementedError, OSError) as err:
        raise ValueError(f"{path} is not a readable MATLAB v5 file: {err}") from None
    if "RELEASE" not in mat:
        raise ValueError(f"{path} has no RELEASE struct; expected MPII's mpii_human_pose_v1_u12_1.mat "
                         f"(variables found: {sorted(k for k in mat if not k.startswith('__'))})")
    return mat["RELEASE"]


def _is_empty(value) -> bool:
    return value is None or (isinstance(value, np.ndarray) and value.size == 0)


def _items(value) -> list:
    """A MATLAB struct array or cell as a list: squeeze_me turns a 1x1 one into its element, 0x0 into an empty array."""
    if _is_empty(value):
        return []
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.ravel())
    return [value]


def _field(struct, name: str):
    """A struct field, or None when the struct lacks it or holds [] (both happen in the release)."""
    value = getattr(struct, name, None)
    return None if _is_empty(value) else value


def _number(value, where: str) -> float:
    array = np.asarray(value, dtype=np.float64).reshape(-1) if not isinstance(value, str) else np.zeros(0)
    if array.size != 1 or not np.isfinite(array[0]):
        raise ValueError(f"{where}: expected one finite number, got {value!r}")
    return float(array[0])


def _visibility(value, where: str) -> int:
    """``is_visible`` as 1 (visible), 0 (occluded) or -1 (not given): the release mixes [], 0/1 and '0'/'1'."""
    if _is_empty(value) or (isinstance(value, str) and not value.strip()):
        return -1
    if isinstance(value, np.ndarray) and value.size != 1:
        raise ValueError(f"{where}: is_visible must be one value, got {value!r}")
    text = str(value.item() if isinstance(value, np.ndarray) else value).strip()
    if text in ("0", "1", "0.0", "1.0", "True", "False"):
        return int(text in ("1", "1.0", "True"))
    raise ValueError(f"{where}: is_visible must be 0/1 or '0'/'1', got {value!r}")


def _joints(annopoints, where: str) -> tuple[list, list, list]:
    """(joints 16x[x, y], joints_vis 16 ints, visible 16 ints) of one person's ``annopoints.point`` list."""
    joints = [list(MISSING_JOINT) for _ in range(NUM_JOINTS)]
    labelled, visible = [0] * NUM_JOINTS, [-1] * NUM_JOINTS
    for j, point in enumerate(_items(_field(annopoints, "point"))):
        at = f"{where}, annopoints.point({j + 1})"
        joint = int(_number(_field(point, "id"), f"{at}.id"))
        if not 0 <= joint < NUM_JOINTS:
            raise ValueError(f"{at}: joint id {joint} is outside 0..{NUM_JOINTS - 1} (MPII's 16 joints)")
        if labelled[joint]:
            raise ValueError(f"{at}: joint id {joint} ({MPII.names[joint]}) is labelled twice")
        joints[joint] = [_number(_field(point, "x"), f"{at}.x"), _number(_field(point, "y"), f"{at}.y")]
        labelled[joint], visible[joint] = 1, _visibility(_field(point, "is_visible"), f"{at}.is_visible")
    return joints, labelled, visible


def _head_box(rect, where: str) -> list[float] | None:
    values = [_field(rect, k) for k in ("x1", "y1", "x2", "y2")]
    if any(v is None for v in values):
        return None
    return [_number(v, f"{where}.{k}") for v, k in zip(values, ("x1", "y1", "x2", "y2"))]


def _person(rect, where: str) -> tuple[dict | None, str]:
    """One annorect as a record (without image fields), or None and why it was skipped."""
    annopoints, scale, objpos = _field(rect, "annopoints"), _field(rect, "scale"), _field(rect, "objpos")
    if annopoints is None:
        return None, "no annopoints"
    if scale is None or objpos is None or _field(objpos, "x") is None or _field(objpos, "y") is None:
        return None, "no scale or objpos"
    joints, labelled, visible = _joints(annopoints, where)
    if not any(labelled):
        return None, "annopoints without points"
    center = [_number(_field(objpos, "x"), f"{where}.objpos.x"), _number(_field(objpos, "y"), f"{where}.objpos.y")]
    scale = _number(scale, f"{where}.scale")
    if scale <= 0:
        raise ValueError(f"{where}: scale must be > 0, got {scale}")
    return {"center": center, "scale": scale, "joints": joints, "joints_vis": labelled, "visible": visible,
            "head_box": _head_box(rect, where)}, ""


def _image_name(entry, where: str) -> str:
    image = _field(entry, "image")
    name = None if image is None else _field(image, "name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: image.name is missing; every annolist entry names its image")
    return name


def _per_image(release, name: str, count: int, path: Path) -> list:
    """``img_train`` / ``single_person``: one value per annolist entry (squeeze_me unwraps a single entry)."""
    value = getattr(release, name, None)  # not _field: one image's empty cell squeezes to [] too
    if value is None:
        raise ValueError(f"{path}: RELEASE.{name} is missing")
    items = list(np.asarray(value).ravel()) if name == "img_train" else _items(value)
    if count == 1 and len(items) != 1:
        items = [value]
    if len(items) != count:
        raise ValueError(f"{path}: RELEASE.{name} has {len(items)} entries, annolist has {count}")
    return items


def _rect_indices(value, where: str) -> set[int]:
    """A ``single_person{i}`` cell: a number, a vector of 1-based rect indices, or []."""
    try:
        indices = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected rect indices, got {value!r}") from None
    return {int(k) for k in indices}


def load_mpii_mat(path: str | Path) -> MpiiRecords:
    """Every labelled person of MPII's ``RELEASE`` struct as a record dict (1-based MATLAB pixels). Chapter 01.

    Keys: image, center [x, y], scale, joints 16x[x, y], joints_vis (1 labelled), visible (1 / 0 occluded / -1 not
    given), head_box [x1, y1, x2, y2] or None, is_train, single_person, annolist_index, annorect_index (1-based).
    Rects without joints, scale or objpos are skipped and counted by reason in ``records.skipped`` ('no annopoints',
    'annopoints without points', 'no scale or objpos', 'test image').
    """
    path = Path(path)
    release = _loadmat(path)
    annolist = _items(_field(release, "annolist"))
    if not annolist:
        raise ValueError(f"{path}: RELEASE.annolist is empty")
    img_train = _per_image(release, "img_train", len(annolist), path)
    single = _per_image(release, "single_person", len(annolist), path)
    records = MpiiRecords(source=str(path))
    for i, entry in enumerate(annolist, start=1):
        where = f"{path}, annolist({i})"
        image = _image_name(entry, where)
        is_train = bool(_number(img_train[i - 1], f"{path}, img_train({i})"))
        singles = _rect_indices(single[i - 1], f"{path}, single_person{{{i}}}")
        for r, rect in enumerate(_items(_field(entry, "annorect")), start=1):
            person, reason = _person(rect, f"{where}.annorect({r})")
            if person is None:  # test images carry no joints at all: count them apart from gaps in the labels
                records.skipped[reason if is_train else "test image"] += 1
                continue
            records.append({"image": image, **person, "is_train": is_train,
                            "single_person": r in singles, "annolist_index": i, "annorect_index": r})
    return records


def to_hrnet_json(records) -> list[dict]:
    """Records as HRNet's MPII json (image, center, scale, joints, joints_vis) plus head_box where known. Chapter 01."""
    out = []
    for index, record in enumerate(records):
        missing = [k for k in ("image", "center", "scale", "joints", "joints_vis") if k not in record]
        if missing:
            raise ValueError(f"record {index}: missing field(s) {missing}")
        entry = {"image": record["image"], "center": [float(v) for v in record["center"]],
                 "scale": float(record["scale"]), "joints": [[float(x), float(y)] for x, y in record["joints"]],
                 "joints_vis": [int(v) for v in record["joints_vis"]]}
        if record.get("head_box") is not None:
            entry["head_box"] = [float(v) for v in record["head_box"]]
        out.append(entry)
    return out


def _chosen(valid_images, trainval: list[dict]):
    """The validation test of a record, from image names and/or 1-based (annolist, annorect) index pairs."""
    names = {str(v) for v in valid_images if isinstance(v, str)}
    people = {tuple(int(k) for k in v) for v in valid_images if not isinstance(v, str)}
    if any(len(p) != 2 for p in people):
        raise ValueError("valid_images: expected image names or (annolist index, annorect index) pairs")
    unknown = sorted(names.difference(r["image"] for r in trainval), key=str)
    unknown += sorted(people.difference((r["annolist_index"], r["annorect_index"]) for r in trainval))
    if unknown:
        raise ValueError(f"valid_images: {len(unknown)} entries name no labelled person of a training image, "
                         f"e.g. {unknown[:5]}")
    return lambda r: r["image"] in names or (r.get("annolist_index"), r.get("annorect_index")) in people


def split_by(records, valid_images=None, *, seed: int = 0, valid_fraction: float = VALID_FRACTION) -> dict:
    """Split training records into {'train', 'valid', 'trainval'}; test images are always left out. Chapter 01.

    ``valid_images`` picks the validation people: image names (all their people), or 1-based (annolist index,
    annorect index) pairs, the form of Tompson et al.'s split used by HRNet (``RELEASE_img_index``,
    ``RELEASE_person_index``). Without it a seeded ``valid_fraction`` of the training images is held out: that is
    NOT the standard split, so numbers on it are not comparable with the papers' validation PCKh.
    """
    trainval = [r for r in records if r["is_train"]]
    if valid_images is None:
        if not 0 < valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        images = sorted({r["image"] for r in trainval})
        order = np.random.default_rng(seed).permutation(len(images))
        valid_images = [images[k] for k in order[:max(1, round(valid_fraction * len(images)))]]
    is_valid = _chosen(valid_images, trainval)
    return {"train": [r for r in trainval if not is_valid(r)], "valid": [r for r in trainval if is_valid(r)],
            "trainval": trainval}


def write_splits(records, out_dir: str | Path, valid_images=None, seed: int = 0) -> dict[str, Path]:
    """Write train.json, valid.json and trainval.json (HRNet style) into ``out_dir``, each atomically. Chapter 01."""
    out_dir = Path(out_dir)
    paths = {}
    for name, part in split_by(records, valid_images, seed=seed).items():
        paths[name] = out_dir / f"{name}.json"
        text = json.dumps(to_hrnet_json(part))
        atomic_write(paths[name], lambda f: f.write(text.encode()))
    return paths


def convert_mpii(mat_path: str | Path, out_dir: str | Path, valid_images=None, seed: int = 0) -> dict[str, Path]:
    """Read MPII's .mat and write train/valid/trainval json for :class:`MpiiKeypoints`; returns their paths.

    Chapter 01 (real data)."""
    return write_splits(load_mpii_mat(mat_path), out_dir, valid_images, seed)
