"""Chapter 01's study: the AP a perfect model can reach when its heatmaps are 1/4, 1/8 or 1/16 of the input.

``decoding_ceiling`` (probe): the ground truth of fixed synthetic validation people is encoded as heatmaps at stride
4, 8 and 16 of a 256 x 192 crop, decoded, mapped back to the image and scored by pycocotools. Whatever AP is lost,
the grid and the decoder lose it, with no network involved. The paper's comparison is HRNet's Fig. 5 (Sun et al.,
CVPR 2019, §4.4), which includes the network's own error. Three families per stride:

- ``rounded``: HRNet's target (the centre rounded to a heatmap pixel) decoded by argmax + quarter offset: a model
  that reproduces its training target exactly;
- ``exact``: a Gaussian at the exact sub-pixel position (DARK's target) decoded by argmax + quarter offset;
- ``dark``: the same Gaussian decoded by DARK's Taylor step (Zhang et al., CVPR 2020, §3.2).

Sigma scales with the stride: HRNet's 2 heatmap px at stride 4, so ``8 / stride`` heatmap px, the same 8-pixel
Gaussian in the input at every stride. A seed picks a set of validation scenes (``VAL_SEED + seed``). Run with
``python -m posebook.study 01``. Chapter 01.
"""
from __future__ import annotations

import functools
import math
import tempfile
import time

import numpy as np

from posebook import metrics
from posebook.codecs import GaussianHeatmap
from posebook.study import Claim, Variant, load_claims, plot_claim, run_study
from posebook.studies.topdown import VAL_SEED  # seed 0 scores the same scenes as chapters 03 and 07

CHAPTER = "01_data"
CLAIM = "decoding_ceiling"
INPUT_SIZE = (256, 192)
STRIDES = (4, 8, 16)
SIGMA_INPUT_PX = 8.0  # HRNet's sigma of 2 heatmap px at stride 4, kept in input pixels at every stride
FAMILIES = {  # name: (target at the exact sub-pixel position, DARK decoding)
    "rounded": (False, False),
    "exact": (True, False),
    "dark": (True, True),
}
SIZES = {  # people per validation set (one set per seed); no profile uses a GPU
    "smoke": dict(val_people=24, image_size=(256, 256), max_people=4),
    "cpu": dict(val_people=500, image_size=(256, 256), max_people=4),
    "gpu": dict(val_people=500, image_size=(256, 256), max_people=4),
}
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
SEEDS = (0, 1, 2)

# HRNet Fig. 5: heatmaps regressed from the 1x / 2x / 4x downsampled representation (strides 4 / 8 / 16 of the input)
PAPER_W32 = {4: 74.40, 8: 68.90, 16: 55.00}
PAPER = ("HRNet Fig. 5 (§4.4, COCO val2017, ImageNet-pretrained, 256x192): heatmaps regressed from the 1x / 2x / 4x "
         "(high / medium / low) resolution representation reach W32 74.40 / 68.90 / 55.00 AP, W48 75.10 / 69.60 / "
         "55.40 AP; a trained network's AP, its own error included, where this probe measures the decoding ceiling "
         "alone")


def variant_name(family: str, stride: int) -> str:
    """``"rounded-s4"``: the name of a family's variant at ``stride``. Chapter 01."""
    return f"{family}-s{stride}"


def claims(profile: str) -> list[Claim]:
    """Chapter 01's claim at ``profile``'s size: the coarser the heatmap, the lower a perfect model's AP. HRNet §4.4."""
    size = SIZES[profile]
    variants = []
    for family, (unbiased, dark) in FAMILIES.items():
        for stride in STRIDES:
            config = dict(size, profile=profile, scene=SCENE, input_size=INPUT_SIZE, stride=stride,
                          heatmap_size=(INPUT_SIZE[0] // stride, INPUT_SIZE[1] // stride),
                          sigma=SIGMA_INPUT_PX / stride, unbiased_target=unbiased, dark_decoding=dark)
            variants.append(Variant(variant_name(family, stride), ceiling_probe, config, kind="probe"))
    return [Claim(CHAPTER, CLAIM,
                  "the coarser the heatmap, the lower the AP a perfect model can reach: a model reproducing HRNet's "
                  "target exactly, decoded by argmax + quarter offset, scores higher at stride 4 than at stride 16",
                  "AP", PAPER, tuple(variants), effect=("rounded-s4", "rounded-s16"), sign=1, seeds=SEEDS)]


# ---- the probe ---------------------------------------------------------------------------------------------------

def codecs(config: dict) -> tuple[GaussianHeatmap, GaussianHeatmap]:
    """(encoder, decoder) of a variant: HRNet's or DARK's target, and argmax + quarter offset or DARK. Chapter 01."""
    encoder = GaussianHeatmap(config["input_size"], config["heatmap_size"], config["sigma"],
                              unbiased=config["unbiased_target"])
    decoder = encoder if config["unbiased_target"] == config["dark_decoding"] else GaussianHeatmap(
        config["input_size"], config["heatmap_size"], config["sigma"], unbiased=config["dark_decoding"])
    return encoder, decoder


def perfect_predictions(dataset, encoder, decoder) -> dict:
    """A perfect model's predictions on a top-down evaluation set: each person's heatmaps are ``encoder``'s
    targets of its ground truth, decoded by ``decoder`` and mapped back to the image.

    Returns :func:`posebook.inference.predict_dataset`'s dict (``keypoints`` in image px with scores, ids, ``gt``)
    plus ``weight`` (K per person: whether the target holds the joint). HRNet §4.4 Fig. 5; chapter 01.
    """
    from posebook.data.transforms import affine_points, get_affine_transform
    from posebook.inference import to_image

    records = getattr(dataset, "records", None)
    if not records:
        raise ValueError(f"perfect_predictions: {type(dataset).__name__} has no person records to encode")
    if tuple(encoder.input_size) != tuple(decoder.input_size) or tuple(encoder.heatmap_size) != tuple(
            decoder.heatmap_size):
        raise ValueError(f"perfect_predictions: encoder {encoder!r} and decoder {decoder!r} differ in size")
    input_size = tuple(encoder.input_size)
    heatmaps, weights = [], []
    for r in records:  # an evaluation crop: no augmentation, rotation 0 (make_sample with train=False)
        kp = np.asarray(r.keypoints, dtype=np.float64)
        joints = affine_points(kp[:, :2], get_affine_transform(r.center, r.scale, 0.0, input_size))
        target, weight = encoder.encode(joints, kp[:, 2])
        heatmaps.append(target)
        weights.append(weight)
    coords, scores = decoder.decode(np.stack(heatmaps))
    centers, scales = np.stack([r.center for r in records]), np.stack([r.scale for r in records])
    xy = to_image(coords, centers, scales, input_size)
    return {"keypoints": np.concatenate([xy, np.asarray(scores, dtype=np.float64)[..., None]], axis=-1),
            "image_id": np.array([r.image_id for r in records]), "ann_id": np.array([r.ann_id for r in records]),
            "box_score": np.array([r.score for r in records], dtype=np.float64),
            "area": np.prod(scales * 200.0, axis=1), "gt": np.stack([r.keypoints for r in records]),
            "weight": np.stack(weights)}


def ceiling_scores(dataset, encoder, decoder) -> dict:
    """COCO AP/AR of :func:`perfect_predictions` on ``dataset`` (a top-down set with a ``coco`` ground truth), and
    ``error.input_px`` / ``error.image_px``: the mean distance of the joints the target holds. Chapter 01."""
    from posebook.inference import coco_results

    if getattr(dataset, "coco", None) is None:
        raise ValueError(f"ceiling_scores: {type(dataset).__name__} has no 'coco' ground truth to score against")
    pred = perfect_predictions(dataset, encoder, decoder)
    sigmas = dataset.skeleton.sigmas
    stats = metrics.coco_eval(dataset.coco, coco_results(pred, nms=False, sigmas=sigmas), sigmas=sigmas)
    held = (pred["weight"] > 0) & (pred["gt"][..., 2] > 0)
    image_err = np.linalg.norm(pred["keypoints"][..., :2] - pred["gt"][..., :2], axis=-1)
    # input px per image px: the crop's zoom, W / (200 s_w), per person
    zoom = encoder.input_size[1] / (200.0 * np.stack([r.scale for r in dataset.records])[:, 0])
    stats["error.image_px"] = float(image_err[held].mean()) if held.any() else float("nan")
    stats["error.input_px"] = float((image_err * zoom[:, None])[held].mean()) if held.any() else float("nan")
    return stats


def validation_set(config: dict, seed: int):
    """At least ``val_people`` people of the synthetic validation scenes of seed ``VAL_SEED + seed`` (ground truth
    only; the pixels are rendered to label occlusion). Chapter 01."""
    return _validation(seed, config["val_people"], tuple(config["image_size"]), config["max_people"],
                       tuple(sorted(config["scene"].items())))


@functools.lru_cache(maxsize=4)
def _validation(seed: int, people: int, image_size: tuple, max_people: int, scene: tuple):
    from posebook.data import SyntheticTopDown

    images = max(1, math.ceil(people / 2))
    while True:  # scenes hold 1..max_people people: add scenes until there are enough (a prefix is the same scenes)
        val = SyntheticTopDown.validation(images, seed=VAL_SEED + seed, input_size=INPUT_SIZE,
                                          image_size=image_size, max_people=max_people, **dict(scene))
        if len(val) >= people:
            return val
        images = math.ceil(images * 1.25) + 1


def ceiling_probe(config: dict, seed: int) -> dict:
    """One variant on one validation set: deterministic (no training, no random draw). HRNet §4.4; chapter 01."""
    val = validation_set(config, seed)
    final = ceiling_scores(val, *codecs(config))
    return {"curves": [], "final": final, "val_people": len(val), "device": "cpu"}


# ---- the chapter's view ------------------------------------------------------------------------------------------

def ceiling_claim(profile: str = "cpu", live_profile: str = "smoke", root=None) -> tuple[dict, bool]:
    """The claim's summary (an entry of :func:`posebook.study.load_claims`) from ``profile``'s records; where they
    are missing or incomplete, the probe computed now at ``live_profile``'s size. Returns (claim, computed_now).
    Chapter 01."""
    found = [c for c in load_claims(CHAPTER, profile, root) if c["claim"] == CLAIM]
    if found and found[0]["complete"]:
        return found[0], False
    with tempfile.TemporaryDirectory() as tmp:
        for _ in run_study(CHAPTER, live_profile, only=[CLAIM], root=tmp, command="computed in the notebook"):
            pass
        (claim,) = [c for c in load_claims(CHAPTER, live_profile, tmp) if c["claim"] == CLAIM]
    return claim, True


def _means(claim: dict) -> dict:
    return {v["name"]: v["mean"] for v in claim["variants"]}


def ceiling_numbers(claim: dict) -> dict:
    """The numbers the chapter's prose quotes, formatted, by name: AP x 100 of each variant, the losses against
    stride 4, the paper's W32 figures and losses, the people per set and the seed range at stride 16. Chapter 01."""
    if claim.get("claim") != CLAIM:
        raise ValueError(f"ceiling_numbers: expected the {CLAIM!r} claim, got {claim.get('claim')!r}")
    means = _means(claim)
    missing = sorted(name for name, mean in means.items() if mean is None)
    if missing:
        raise ValueError(f"ceiling_numbers: variants {missing} of {CLAIM} have no records")
    out = {}
    for family in FAMILIES:
        for stride in STRIDES:
            out[f"ceiling_{family}_s{stride}"] = f"{100 * means[variant_name(family, stride)]:.1f}"
        for stride in STRIDES[1:]:
            loss = means[variant_name(family, STRIDES[0])] - means[variant_name(family, stride)]
            out[f"ceiling_{family}_loss_s{stride}"] = f"{100 * loss:.1f}"
    for stride in STRIDES:
        out[f"ceiling_paper_s{stride}"] = f"{PAPER_W32[stride]:.1f}"
    for stride in STRIDES[1:]:
        out[f"ceiling_paper_loss_s{stride}"] = f"{PAPER_W32[STRIDES[0]] - PAPER_W32[stride]:.1f}"
    coarse = next(v for v in claim["variants"] if v["name"] == variant_name("rounded", STRIDES[-1]))
    out["ceiling_range_s16"] = f"{100 * coarse['min']:.1f} to {100 * coarse['max']:.1f}"
    people = [v["val_people"] for v in claim["variants"]]
    flat = [p for ps in people for p in (ps if isinstance(ps, list) else [ps]) if p is not None]
    out["ceiling_people"] = str(min(flat)) if flat else "?"
    out["ceiling_sets"] = str(len(coarse["values"]))
    out["ceiling_verdict"] = claim["verdict"]
    return out


def plot_ceiling(claim: dict, ax=None):
    """:func:`posebook.study.plot_claim` of the claim (each set's AP per variant, seed range, mean) with HRNet-W32's
    trained AP of Fig. 5 beside the ``rounded`` variants. Returns the figure. Chapter 01."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 3.8))
    plot_claim(claim, ax)
    names = [v["name"] for v in claim["variants"]]
    for stride in STRIDES:
        x = names.index(variant_name("rounded", stride))
        ax.plot(x + 0.25, PAPER_W32[stride] / 100, "r*", ms=10,
                label="HRNet-W32 trained, Fig. 5" if stride == STRIDES[0] else None)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("AP of a perfect model")
    ax.legend(fontsize=8, loc="lower left")
    return ax.figure


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render one validation set's scenes, timed on a few. Chapter 01."""
    from posebook.data.synthetic import make_coco

    size = SIZES[profile]
    start = time.perf_counter()
    make_coco(4, VAL_SEED, size["image_size"], size["max_people"], **SCENE)
    per_image = (time.perf_counter() - start) / 4
    images = math.ceil(size["val_people"] / 2.5) * len(SEEDS)  # ~2.5 people per scene
    return per_image * images, f"{len(SEEDS)} sets of about {size['val_people']} people"


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one variant on one set: encoding, decoding and COCOeval, 1 to 3 ms a person (DARK the slowest;
    measured on 2 cores). Chapter 01."""
    return 0.003 * config["val_people"], f"stride {config['stride']}, {config['val_people']} people"
