"""What the top-down studies share: synthetic training crops rendered once, fixed validation scenes, and one way to
score a model (COCO AP/AR, PCK, Ronchi & Perona's error kinds).

Every top-down chapter's study (03 Stacked Hourglass, 07 HRNet, and those to come) trains on crops of the synthetic
scenes (front, side and back views, occluders, up to ``max_people`` overlapping people) rendered once per study and
reused by every variant and seed, and is scored on the same fixed validation scenes. Chapters 03 and 07.
"""
from __future__ import annotations

import functools
import json
import math
import time

import numpy as np
from torch import nn

from posebook import metrics
from posebook.keypoints import COCO
from posebook.study import RenderedItems

TRAIN_SEED, VAL_SEED = 0, 1_000_003  # the rendered training crops and the validation scenes
DATA_KEYS = ("input_size", "heatmap_size", "sigma", "image_size", "scene", "max_people")


def data_settings(config: dict) -> dict:
    """The part of a study config that decides its data (crop and heatmap sizes, sigma, scene options, the
    blur-kernel targets under ``codec``, the training augmentation under ``augment`` and the training scenes' seed
    under ``train_seed`` when a config sets them; without them, HRNet's COCO recipe and ``TRAIN_SEED``)."""
    missing = [k for k in DATA_KEYS if k not in config]
    if missing:
        raise KeyError(f"data_settings: the study config lacks {missing} (has {sorted(config)})")
    return {k: config[k] for k in DATA_KEYS + ("codec", "augment", "train_seed") if k in config}


def codecs(settings: dict):
    """The targets a study's data carries: None (the dataset's Gaussian of ``sigma``), for ``settings["codec"] =
    {"unbiased": True}`` DARK's sub-pixel Gaussian of ``sigma`` with Taylor decoding (Zhang et al., CVPR 2020), or, for
    ``settings["codec"] = {"kernels": [...], "decode_kernel": k}``, one ``BlurHeatmap`` per kernel (CPN's and MSPN's
    targets, one per model output; the last decodes). Optional ``"visible_only"`` (one bool, or one per kernel: draw
    only joints labelled visible and weight every joint, MSPN's L2 targets) and ``"clamp"`` (the same forms; False:
    a joint past the crop's right or bottom edge is not drawn, as MSPN) default to CPN's False and True; optional
    ``"peak"`` (one number for every kernel, default 1; MSPN's official 255). Chapters 05 and 06."""
    spec = settings.get("codec")
    if spec is None:
        return None
    from posebook.codecs import BlurHeatmap, GaussianHeatmap

    if isinstance(spec, dict) and "unbiased" in spec:  # DARK's Gaussians (one codec, every output)
        if set(spec) != {"unbiased"} or not isinstance(spec["unbiased"], bool):
            raise ValueError(f"study codec={spec!r}: a Gaussian spec is {{'unbiased': True or False}} alone")
        return GaussianHeatmap(tuple(settings["input_size"]), tuple(settings["heatmap_size"]), settings["sigma"],
                               unbiased=spec["unbiased"])
    if not isinstance(spec, dict) or not spec.get("kernels") or "decode_kernel" not in spec:
        raise ValueError(f"study codec={spec!r}: expected {{'kernels': [k, ...], 'decode_kernel': k}}")
    unknown = sorted(set(spec) - {"kernels", "decode_kernel", "visible_only", "clamp", "peak"})
    if unknown:
        raise ValueError(f"study codec={spec!r}: unknown keys {unknown}; expected kernels, decode_kernel and "
                         f"optionally visible_only, clamp and peak")
    kernels = list(spec["kernels"])

    def per_kernel(name: str, default: bool) -> list[bool]:
        value = spec.get(name, default)
        values = list(value) if isinstance(value, (list, tuple)) else [value] * len(kernels)
        if len(values) != len(kernels) or not all(isinstance(v, bool) for v in values):
            raise ValueError(f"study codec {name}={value!r}: expected True or False, or a list of {len(kernels)} "
                             f"of them (one per kernel {kernels})")
        return values

    visible, clamp = per_kernel("visible_only", False), per_kernel("clamp", True)
    return [BlurHeatmap(tuple(settings["input_size"]), tuple(settings["heatmap_size"]), kernel=k,
                        decode_kernel=spec["decode_kernel"], clamp=c, visible_only=v, peak=spec.get("peak", 1))
            for k, v, c in zip(kernels, visible, clamp)]


def synthetic_train_set(settings: dict, items: int):
    """``items`` training crops of the synthetic scenes (seeded augmentation), as ``SyntheticTopDown``."""
    from posebook.data import SyntheticTopDown
    from posebook.data.transforms import Augment

    augment = Augment(**settings["augment"]) if "augment" in settings else None  # None: the dataset's, HRNet's
    return SyntheticTopDown(items, seed=settings.get("train_seed", TRAIN_SEED), train=True,
                            input_size=settings["input_size"],
                            heatmap_size=settings["heatmap_size"], sigma=settings["sigma"],
                            image_size=settings["image_size"], max_people=settings["max_people"],
                            codec=codecs(settings), augment=augment, **settings["scene"])


def training_items(name: str, config: dict, progress: bool = False) -> RenderedItems:
    """The study's ``config["train_items"]`` training crops, rendered once and cached on disk (under ``name``, e.g.
    "03-train") and in memory."""
    return _training_items(name, json.dumps(dict(data_settings(config), items=config["train_items"]),
                                            sort_keys=True), progress)


@functools.lru_cache(maxsize=2)
def _training_items(name: str, key: str, progress: bool) -> RenderedItems:
    s = json.loads(key)
    return RenderedItems.cached(name, s, lambda: synthetic_train_set(s, s["items"]), progress)


def validation_set(config: dict):
    """At least ``config["val_people"]`` people of fixed synthetic validation scenes (COCO ground truth for AP),
    drawn from ``config["val_seed"]`` (default ``VAL_SEED``, the studies' scenes)."""
    key = dict(data_settings(config), people=config["val_people"])
    key.pop("augment", None)  # evaluation crops are not augmented
    key.pop("train_seed", None)
    if config.get("val_seed", VAL_SEED) != VAL_SEED:
        key["seed"] = int(config["val_seed"])
    return _validation(json.dumps(key, sort_keys=True))


@functools.lru_cache(maxsize=2)
def _validation(key: str):
    from posebook.data import SyntheticTopDown

    s = json.loads(key)
    images = max(1, math.ceil(s["people"] / 2))
    while True:  # scenes hold 1..max_people people: add scenes until there are enough (a prefix is the same scenes)
        val = SyntheticTopDown.validation(images, seed=s.get("seed", VAL_SEED), input_size=s["input_size"],
                                          heatmap_size=s["heatmap_size"], sigma=s["sigma"],
                                          image_size=s["image_size"], max_people=s["max_people"],
                                          codec=codecs(s), **s["scene"])
        if len(val) >= s["people"]:
            val.scene_settings = dict(seed=s.get("seed", VAL_SEED), images=images, image_size=s["image_size"],
                                      max_people=s["max_people"], scene=s["scene"])
            return val
        images = math.ceil(images * 1.25) + 1


class OutputTargets(nn.Module):
    """``loss`` on a model's outputs against the targets at ``indices`` of the ``carried`` targets the study's data
    holds for each crop (every target any variant needs is rendered once; each variant's loss takes its own). CPN's
    (Chen et al., CVPR 2018) and MSPN's (Li et al. 2019) studies; chapters 05 and 06."""

    def __init__(self, loss: nn.Module, indices: list[int], carried: int):
        super().__init__()
        self.loss, self.indices, self.carried = loss, list(indices), int(carried)

    def forward(self, outputs, target, target_weight):
        if not isinstance(target, (list, tuple)) or len(target) != self.carried:
            raise ValueError(f"OutputTargets: expected the {self.carried} targets of the study's data, got "
                             f"{len(target) if isinstance(target, (list, tuple)) else type(target).__name__}")
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(self.indices):
            got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
            raise ValueError(f"OutputTargets: expected {len(self.indices)} model outputs, got {got}")
        return self.loss(outputs, [target[i] for i in self.indices], [target_weight[i] for i in self.indices])


VIEWS = {"front": (0.0, 50.0), "side": (50.0, 130.0), "back": (130.0, 180.0)}  # |yaw| bands, as the renderer's


def views(val) -> dict[int, str]:
    """The view (front, side or back, from the person's yaw) of every annotation of a :func:`validation_set`, by
    annotation id: the scenes are rendered again to read the yaw the renderer drew each person with."""
    from posebook.data.synthetic import SyntheticScenes

    s = val.scene_settings
    scenes = SyntheticScenes(s["seed"], tuple(s["image_size"]), s["max_people"], **s["scene"])
    out, ann_id = {}, 1
    for i in range(s["images"]):
        for person in scenes[i].people:  # annotation ids run over the scenes' people in order (make_coco)
            yaw = abs(float(person["yaw"]))
            out[ann_id] = next(name for name, (lo, hi) in VIEWS.items() if lo <= yaw <= hi)
            ann_id += 1
    return out


def scores(model, val, prefix: str = "", views: dict | None = None) -> tuple[dict, np.ndarray]:
    """COCO AP/AR, PCK@0.2 and PCK@0.1 (of every labelled keypoint, and ``.occluded``/``.visible``: v=1 and v=2
    apart), and error-kind shares (Ronchi & Perona, ICCV 2017) on ``val``, each name prefixed by ``prefix``; also the
    error kind of every keypoint. With ``views`` (:func:`views`), also ``inversion.front``/``.side``/``.back``: the
    share of left/right keypoints predicted at the mirrored joint (:func:`posebook.metrics.lr_inversions`, at 0.1
    of the box) in each view."""
    from posebook.inference import coco_results, pck_on_boxes, predict_dataset

    pred = predict_dataset(model, val, progress=False)
    sigmas = val.skeleton.sigmas
    stats = metrics.coco_eval(val.coco, coco_results(pred, nms=False, sigmas=sigmas), sigmas=sigmas)
    for thr in (0.2, 0.1):  # every labelled keypoint, then the occluded (v=1) and the visible (v=2) ones apart
        stats[f"PCK@{thr}"] = pck_on_boxes(pred, val.coco, thr)[1]
        for name, v in (("occluded", 1), ("visible", 2)):
            stats[f"PCK@{thr}.{name}"] = pck_on_boxes(pred, val.coco, thr, visibility=v)[1]
    areas = [val.coco.anns[int(a)]["area"] for a in pred["ann_id"]]
    errors = metrics.keypoint_errors(pred["keypoints"], pred["gt"], areas, COCO.flip_index(),
                                     image_ids=pred["image_id"])
    stats.update({f"error.{k}": v for k, v in errors["share"].items()})
    stats["error.inversion+miss"] = errors["share"]["inversion"] + errors["share"]["miss"]
    if views is not None:
        norm = np.array([max(val.coco.anns[int(a)]["bbox"][2:]) for a in pred["ann_id"]])
        eligible, inverted = metrics.lr_inversions(pred["keypoints"], pred["gt"], norm, COCO.flip_index(), 0.1)
        of = np.array([views[int(a)] for a in pred["ann_id"]])
        for name in VIEWS:
            n = eligible[of == name].sum()
            stats[f"inversion.{name}"] = float(inverted[of == name].sum() / n) if n else float("nan")
    return {f"{prefix}{k}": float(v) for k, v in stats.items()}, errors["kind"]


def estimate_data(name: str, config: dict) -> tuple[float, str]:
    """Seconds to render the training crops (0 when cached), from 8 timed items (one thread's process time)."""
    settings = dict(data_settings(config), items=config["train_items"])
    if RenderedItems.cache_path(name, settings).exists():
        return 0.0, "cached"
    probe = synthetic_train_set(settings, 8)
    start = time.process_time()
    for i in range(len(probe)):
        probe[i]
    seconds = (time.process_time() - start) / len(probe) * config["train_items"]
    return seconds, f"{config['train_items']} crops"
