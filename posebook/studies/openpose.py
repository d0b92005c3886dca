"""Chapter 08's study: probes of what the OpenPose parser can and cannot do on ground-truth maps, and a small
OpenPose trained on synthetic scenes (Cao, Simon, Wei, Sheikh, "Realtime Multi-Person 2D Pose Estimation using Part
Affinity Fields", CVPR 2017; Cao et al., TPAMI 2019).

**The probes** (P1-P5): no network is trained. Every image of a seeded set of synthetic scenes has its people drawn as the maps a perfect
network would output (:mod:`posebook.codecs.paf`), and those maps are parsed back into people by the CMU demo's
steps (:mod:`posebook.inference.bottomup`) and scored with COCO AP. A probe is deterministic given its seed, so a
seed is a different set of scenes (``SCENE_SEED + seed``) and the claims compare 5 such sets per variant.

- ``paf_vs_distance_apart`` and ``paf_vs_distance_crowded`` (P1): joining each part to its limb partner by the PAF
  line integral groups people better than joining the nearest candidates, on the same peaks, with 4 people apart
  and with 8 people.
- ``greedy_vs_hungarian`` (P2): the released code's greedy matching per limb loses little against the optimal
  (Hungarian) matching that CVPR'17 §2.4 writes: an equivalence claim, margin 0.02 AP.
- ``official_vs_paper_paf`` (P3): the PAF drawn over the official code's support (up to sigma_l past the limb's
  ends) parses one person far better than the paper's exact rectangle.
- ``input_scale_small`` (P4): small people (0.15-0.3 of the image high) group better at twice the input scale,
  the reason for multi-scale testing.
- ``paf_vs_midpoint`` (P5): PAFs beat a midpoint map per limb, as the paper found on learned maps (CVPR'17 Fig. 7a,
  2.9%); on ground-truth maps the two do not separate (review OPENPOSE.md §2.5), and the verdict says so.

The paired metric. The scene sets differ far more from seed to seed than two groupings of the same set differ from
each other, so comparing the variants' APs as independent samples would drown small effects in the scene-set
variance. Every claim therefore reads ``dAP``: a variant's AP minus the AP of the claim's reference grouping (its
second variant) on the *same* scenes, so the reference reads 0 on every seed and the Welch rule of the studies
becomes a one-sample t-test of the paired differences (:mod:`posebook.stats`). Each record's ``final`` also keeps
the variant's own AP, AP50, AR and the reference's AP.

A set's maps, peaks and limb scores are computed once per process and shared by every grouping of it, so a record's
``minutes`` hold that shared work in the first run that needed it and little in the others; the sum is the study's
cost. The cpu profile's 60 runs took 52 CPU-seconds in one thread (13.8 wall minutes at ``nice 10`` on a 2-core
CPU loaded by two training jobs).

**The trained study** (D5): per seed, one CVPR'17 OpenPose at a quarter of its width with 3 stages and 3x3 later
convs, its front the stand-in :class:`~posebook.blocks.openpose.ResNetFront` started from the shipped pretrained trunk
(the official VGG-19 front starts from ImageNet, which cannot ship), trained on 1-3 synthetic people with the official
targets and the masked L2 of every stage (:func:`run_trained`), then scored by stage on 300 validation scenes. Its
claims read the same runs, so every comparison is inside each trained network:

- ``stages_refine``: the last stage's maps parse into better people (COCO AP) than the first stage's (CVPR'17 Fig. 7b).
- ``stages_loss``: the last stage's validation loss is lower than the first stage's.
- ``paf_vs_distance_learned``: on the learned maps, PAF grouping beats joining the nearest candidates.

Gate (review OPENPOSE.md D5): before the study was declared, a pilot of the same network, scenes and batch at a
constant learning rate had to reach a stage-3 AP above 0; it reached 0.095 after 8 one-thread CPU-minutes (1443
steps), where the paper's VGG-19 front from scratch reached 0.002 (the chapter's Results page keeps the pilots). Run
with ``python -m posebook.study 08``. Chapter 08 (OpenPose).
"""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from posebook.study import Claim, Variant

CHAPTER = "08_openpose"
STRIDE = 8
SCENE_SEED = 8_000_000  # seed k of a claim renders the scene set SCENE_SEED + k (the validation set is 1_000_003)
METRIC = "dAP"          # a variant's AP minus its claim's reference AP on the same scenes
MARGIN = 0.02           # greedy_vs_hungarian: the equivalence margin in AP
STEPS_CPU = 3000        # the trained study's steps of batch 8 in the cpu profile

# scene name -> (what it is, SceneOptions), every scene 256 x 256 px (review OPENPOSE.md §2.2, §2.5)
SCENES = {
    "apart": ("4 people, none placed beside another (overlap 0)", dict(min_people=4, max_people=4, overlap=0.0)),
    "crowded": ("8 people, the default overlap 0.35", dict(min_people=8, max_people=8)),
    "one": ("1 person", dict(min_people=1, max_people=1)),
    "small": ("1-4 people 0.15-0.3 of the image high", dict(person_height=(0.15, 0.3))),
}
GROUPINGS = ("paf", "distance", "midpoint")
MATCHINGS = ("greedy", "hungarian")
TARGETS = ("official", "paper")

# Per profile: images per scene set and the seeds. A probe costs no training, so the gpu profile is the cpu one (a
# GPU would not speed the numpy/OpenCV parsing up, and the same sizes keep its records comparable).
SIZES = {
    "smoke": dict(images=2, seeds=(0, 1)),
    "cpu": dict(images=20, seeds=(0, 1, 2, 3, 4)),
    "gpu": dict(images=20, seeds=(0, 1, 2, 3, 4)),
}

PAPER_DISTANCE = ("CVPR'17 §2.2 and Fig. 5 (TPAMI'19 §3.2): part positions alone cannot say which candidates form "
                  "a limb when people are close; the PAF keeps the limb's location and orientation. The paper gives "
                  "no distance-only number")
PAPER_GREEDY = ("CVPR'17 §2.4 (Eqs. 12-13) solves each limb's bipartite matching with the Hungarian algorithm; "
                "Table 2 (MPII 343-image val): the tree by ILP 77.6 mAP in 43 s per image, the tree by greedy 77.4 in "
                "0.005 s; the released code matches greedily")
PAPER_SUPPORT = ("CVPR'17 §2.2 Eq. 9 (TPAMI'19 §3.2): the PAF is v inside 0 <= v.(p - x1) <= l and |v_perp.(p - "
                 "x1)| <= sigma_l; the official Caffe code (putVecMaps) draws it over the limb's box widened by "
                 "sigma_l, past both ends. No paper number; review OPENPOSE.md §2.2 measured 0.975 (official) vs "
                 "0.757 (the paper's forms) AP, 1 person")
PAPER_SCALE = ("CVPR'17 Table 1 (MPII test, full set): 75.6 mAP with 3 test scales (x0.7, 1, 1.3), 72.5 with one; "
               "the CMU demo searches 368/H x {0.5, 1, 1.5, 2}")
PAPER_MIDPOINT = ("CVPR'17 §3.1 Fig. 7a (TPAMI'19 §5.1 Fig. 11a, MPII 343-image val, learned maps): PAFs beat "
                  "one-midpoint by 2.9% mAP (PCKh-0.5) and two-midpoint by 2.3%")


def claims(profile: str) -> list[Claim]:
    """Chapter 08's probes at ``profile``'s size (images per scene set, seeds): P1-P5 of review OPENPOSE.md §4.1
    D4, each on ground-truth maps, each reading the paired ``dAP``. Cao et al., CVPR 2017 / TPAMI 2019; chapter 08.
    """
    if profile not in SIZES:
        raise ValueError(f"profile must be one of {sorted(SIZES)}, got {profile!r}")
    size = SIZES[profile]
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    n = size["images"]

    def probe(name: str, scene: str, reference: dict, **change) -> Variant:
        return Variant(name, run_probe, config(profile, scene, n, reference=reference, **change), kind="probe")

    distance = dict(grouping="distance")
    return [
        Claim(CHAPTER, "paf_vs_distance_apart",
              f"with {SCENES['apart'][0]}, PAF grouping finds people better than joining the nearest candidates, "
              "on the same peaks", METRIC, PAPER_DISTANCE,
              (probe("paf", "apart", distance), probe("distance", "apart", distance, grouping="distance")),
              effect=("paf", "distance"), **common),
        Claim(CHAPTER, "paf_vs_distance_crowded",
              f"with {SCENES['crowded'][0]}, PAF grouping finds people better than joining the nearest "
              "candidates, on the same peaks", METRIC, PAPER_DISTANCE,
              (probe("paf", "crowded", distance), probe("distance", "crowded", distance, grouping="distance")),
              effect=("paf", "distance"), **common),
        Claim(CHAPTER, "greedy_vs_hungarian",
              f"with {SCENES['crowded'][0]}, matching each limb greedily (the released code) is as good as the "
              f"optimal matching (Hungarian, the paper's text), within {MARGIN} AP", METRIC, PAPER_GREEDY,
              (probe("greedy", "crowded", dict(matching="hungarian")),
               probe("hungarian", "crowded", dict(matching="hungarian"), matching="hungarian")),
              effect=("greedy", "hungarian"), margin=MARGIN, **common),
        Claim(CHAPTER, "official_vs_paper_paf",
              f"with {SCENES['one'][0]}, the PAF and confidence maps of the official code parse better than the "
              "paper's forms (the exact limb rectangle, exp(-d^2/sigma^2))", METRIC, PAPER_SUPPORT,
              (probe("official", "one", dict(targets="paper")),
               probe("paper", "one", dict(targets="paper"), targets="paper")),
              effect=("official", "paper"), **common),
        Claim(CHAPTER, "input_scale_small",
              f"with {SCENES['small'][0]}, grouping at twice the input scale (512 px) finds them better than at "
              "256 px", METRIC, PAPER_SCALE,
              (probe("input512", "small", dict(input_size=256), input_size=512),
               probe("input256", "small", dict(input_size=256))),
              effect=("input512", "input256"), **common),
        Claim(CHAPTER, "paf_vs_midpoint",
              f"with {SCENES['apart'][0]}, PAFs group better than a midpoint map per limb (on ground-truth maps, "
              "where the review found no difference)", METRIC, PAPER_MIDPOINT,
              (probe("paf", "apart", dict(grouping="midpoint")),
               probe("midpoint", "apart", dict(grouping="midpoint"), grouping="midpoint")),
              effect=("paf", "midpoint"), **common),
        *trained_claims(profile),
    ]


def trained_claims(profile: str) -> list[Claim]:
    """The trained study's claims (review OPENPOSE.md D5): one network per seed (:func:`run_trained`), read by stage
    and by grouping, so the comparisons are inside each trained model. Chapter 08 (OpenPose)."""
    config = trained_config(profile)
    common = dict(seeds=TRAINED[profile]["seeds"], protocol=2, profile=profile)
    last = f"stage{config['stages']}"
    runs = f"stages_refine/{last}"
    return [
        Claim(CHAPTER, "stages_refine",
              f"in the same trained network, the last of {config['stages']} stages' maps parse into better people "
              "(COCO AP) than the first stage's", "AP", PAPER_STAGES,
              (Variant(last, run_trained, config, read=f"{last}.AP"), Variant("stage1", of=runs, read="stage1.AP")),
              effect=(last, "stage1"), **common),
        Claim(CHAPTER, "stages_loss",
              f"in the same trained network, the last of {config['stages']} stages' maps are closer to the targets "
              "(validation masked L2, PAFs + confidence maps) than the first stage's", "loss", PAPER_STAGE_LOSS,
              (Variant(last, of=runs, read=f"{last}.loss"), Variant("stage1", of=runs, read="stage1.loss")),
              effect=(last, "stage1"), sign=-1, **common),
        Claim(CHAPTER, "paf_vs_distance_learned",
              "on a trained network's maps, PAF grouping finds people better than joining the nearest candidates, "
              "on the same peaks", "AP", PAPER_LEARNED_DISTANCE,
              (Variant("paf", of=runs, read=f"{last}.AP"), Variant("distance", of=runs, read="distance.AP")),
              effect=("paf", "distance"), **common),
    ]


def config(profile: str, scene: str, images: int, grouping: str = "paf", matching: str = "greedy",
           targets: str = "official", input_size: int = 256, reference: dict | None = None) -> dict:
    """One probe's config for ``profile``: the scene set (``scene``, ``images`` images of 256 x 256 px, fitted into
    a square ``input_size`` input), how its limbs are scored (``grouping``: "paf", "distance" or "midpoint") and
    matched (``matching``: "greedy" or "hungarian"), the maps' forms (``targets``: "official" or "paper"), and the
    changes of the ``reference`` grouping its ``dAP`` is measured against (same scenes). Chapter 08 (OpenPose)."""
    for value, allowed, what in ((profile, SIZES, "profile"), (scene, SCENES, "scene"),
                                 (grouping, GROUPINGS, "grouping"),
                                 (matching, MATCHINGS, "matching"), (targets, TARGETS, "targets")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {sorted(allowed)}, got {value!r}")
    if not (isinstance(images, int) and images >= 1):
        raise ValueError(f"images must be an int >= 1, got {images!r}")
    if not (isinstance(input_size, int) and input_size >= STRIDE and input_size % STRIDE == 0):
        raise ValueError(f"input_size must be a positive multiple of {STRIDE}, got {input_size!r}")
    own = dict(grouping=grouping, matching=matching, targets=targets, input_size=input_size)
    reference = dict(own, **(reference or {}))
    unknown = sorted(set(reference) - set(own))
    if unknown:
        raise ValueError(f"reference may change only {sorted(own)}, got {unknown}")
    return dict(profile=profile, scene=scene, images=images, **own, reference=reference)


# ---- the probe ------------------------------------------------------------------------------------------------------

def run_probe(config: dict, seed: int) -> dict:
    """One probe run: the scene set ``SCENE_SEED + seed`` parsed by ``config``'s grouping and by its reference; final
    ``dAP`` (this AP minus the reference's), ``AP``, ``AP50``, ``AR``, ``reference_AP``; ``val_people`` the people
    scored. Deterministic. Cao et al., CVPR 2017; chapter 08 (OpenPose)."""
    own = {k: config[k] for k in ("grouping", "matching", "targets", "input_size")}
    mine = grouping_ap(config["scene"], config["images"], seed, **own)
    ref = mine if config["reference"] == own else grouping_ap(config["scene"], config["images"], seed,
                                                              **config["reference"])
    final = {"dAP": mine["AP"] - ref["AP"], "AP": mine["AP"], "AP50": mine["AP50"], "AR": mine["AR"],
             "reference_AP": ref["AP"], "detections": mine["detections"]}
    return {"final": final, "curves": [], "val_people": mine["people"], "device": "cpu"}


def grouping_ap(scene: str, images: int, seed: int, grouping: str = "paf", matching: str = "greedy",
                targets: str = "official", input_size: int = 256) -> dict:
    """COCO AP (AP, AP50, AR, detections, people) of scene set ``SCENE_SEED + seed``'s people parsed from their
    ground-truth maps by one grouping. The maps, peaks and limb scores of a set are computed once per process
    (:func:`limb_scores`), so the groupings compared on one set share them. Chapter 08 (OpenPose)."""
    from posebook.inference.bottomup import coco_results
    from posebook.metrics import coco_eval

    dataset = scene_set(scene, images, seed)
    items = (midpoint_limb_scores if grouping == "midpoint" else limb_scores)(scene, images, seed, targets, input_size)
    results = []
    for index, image_id in enumerate(dataset.image_ids):
        poses, scores = group(items[index], grouping, matching)
        results += coco_results(image_id, poses, scores)
    stats = coco_eval(dataset.coco.dataset, results)
    people = sum(int((dataset.people(i)[..., 2] > 0).any(axis=1).sum()) for i in range(len(dataset)))
    return {"AP": stats["AP"], "AP50": stats["AP50"], "AR": stats["AR"], "detections": len(results),
            "people": people}


@lru_cache(maxsize=64)
def scene_set(scene: str, images: int, seed: int):
    """The scene set of a probe: ``images`` synthetic scenes (256 x 256) of seed ``SCENE_SEED + seed``, as a
    :class:`posebook.data.bottomup.BottomUpDataset` whose ``.coco`` is the ground truth. Cached. Chapter 08."""
    from posebook.data.bottomup import SyntheticBottomUp

    if scene not in SCENES:
        raise ValueError(f"scene must be one of {sorted(SCENES)}, got {scene!r}")
    return SyntheticBottomUp.validation(images, seed=SCENE_SEED + int(seed), input_size=256, **SCENES[scene][1])


def midpoint_people(people) -> np.ndarray:
    """OpenPose-18 people (N, 18, 3) -> their limbs' midpoints (N, 19, 3): x, y and v = 1 where both of the limb's
    parts are labelled, else 0. The ground truth of the one-midpoint representation (CVPR'17 §2.2, Fig. 5b).
    Chapter 08 (OpenPose)."""
    from posebook.keypoints import OPENPOSE

    kp = np.asarray(people, dtype=np.float64).reshape(-1, OPENPOSE.num_keypoints, 3)
    limbs = np.asarray(OPENPOSE.limbs)
    a, b = kp[:, limbs[:, 0]], kp[:, limbs[:, 1]]
    both = (a[..., 2] > 0) & (b[..., 2] > 0)
    mid = np.zeros((len(kp), len(limbs), 3))
    mid[..., :2] = np.where(both[..., None], (a[..., :2] + b[..., :2]) / 2, 0.0)
    mid[..., 2] = both
    return mid


@lru_cache(maxsize=1)
def _midpoint_skeleton():
    from posebook.keypoints import OPENPOSE, Skeleton

    names = tuple(f"{OPENPOSE.names[a]}-{OPENPOSE.names[b]}" for a, b in OPENPOSE.limbs)
    return Skeleton("openpose_limb_midpoints", names, (), ())


@lru_cache(maxsize=64)
def limb_scores(scene: str, images: int, seed: int, targets: str = "official", input_size: int = 256) -> tuple:
    """Per image of a scene set, what the PAF and distance groupings need: the peaks of the upsampled ground-truth
    confidence maps, and per limb type the scores (nA, nB) of every candidate pair by the PAF line integral
    (:func:`posebook.inference.bottomup.score_limbs`) and by distance alone (:func:`distance_scores`); plus the
    image -> input matrix and the distance prior's image height. Cached per process (the groupings of one set share
    it). The maps are drawn and upsampled as ``python -m posebook.bench grouping`` does. Chapter 08 (OpenPose)."""
    from posebook.codecs.paf import ConfidenceMaps, OutputGrid, PartAffinityFields
    from posebook.keypoints import OPENPOSE

    size = (input_size, input_size)
    heat_codec = ConfidenceMaps(size, STRIDE, form=targets)
    paf_codec = PartAffinityFields(size, STRIDE, support=targets)
    grid = OutputGrid(size, STRIDE)
    k = OPENPOSE.num_keypoints
    out = []
    for people, matrix, height in _input_people(scene, images, seed, input_size):
        # upsampled as parse_outputs does it (the whole stacks: OpenCV's cubic resize can differ in the last bit
        # with the number of channels, and a ground-truth map's two-pixel plateaus make peaks sensitive to that)
        out.append(scored_item(grid.upsample(heat_codec.encode(people))[:k],
                               grid.upsample(paf_codec.encode(people)), matrix, height))
    return tuple(out)


def scored_item(heat: np.ndarray, field: np.ndarray, matrix: np.ndarray, height: float) -> dict:
    """One image's maps, upsampled to the input (``heat`` (18, H, W) without the background, ``field`` (38, H, W)),
    -> what :func:`group` takes: the peaks (:func:`~posebook.inference.bottomup.find_peaks`) and per limb type the
    scores of every candidate pair by the PAF line integral and by distance alone, with ``matrix`` (image -> input)
    and the distance prior's image ``height``. Ground-truth maps (the probes) or a network's (the trained study).
    Chapter 08 (OpenPose)."""
    from posebook.inference.bottomup import find_peaks, score_limbs
    from posebook.keypoints import OPENPOSE

    peaks = find_peaks(heat)
    per_limb = []
    for c, (a, b) in enumerate(OPENPOSE.limbs):
        if not len(peaks[a]) or not len(peaks[b]):
            per_limb.append(None)
            continue
        per_limb.append({"paf": score_limbs(peaks[a], peaks[b], field[2 * c], field[2 * c + 1], height),
                         "distance": distance_scores(peaks[a], peaks[b], height)})
    return {"peaks": peaks, "limbs": per_limb, "matrix": matrix, "height": height}


@lru_cache(maxsize=16)
def midpoint_limb_scores(scene: str, images: int, seed: int, targets: str = "official",
                         input_size: int = 256) -> tuple:
    """:func:`limb_scores` with, per limb, the scores of the midpoint grouping added (:func:`midpoint_scores` on the
    upsampled ground-truth midpoint maps, drawn as the confidence maps are): computed only for the sets that a
    midpoint probe parses, on the same peaks. Cached per process. Chapter 08 (OpenPose)."""
    from posebook.codecs.paf import ConfidenceMaps, OutputGrid
    from posebook.keypoints import OPENPOSE

    size = (input_size, input_size)
    codec = ConfidenceMaps(size, STRIDE, skeleton=_midpoint_skeleton(), background=False, form=targets)
    grid = OutputGrid(size, STRIDE)
    base = limb_scores(scene, images, seed, targets, input_size)
    out = []
    for item, (people, _, height) in zip(base, _input_people(scene, images, seed, input_size)):
        mids = grid.upsample(codec.encode(midpoint_people(people)))
        limbs = [None if scores is None else
                 dict(scores, midpoint=midpoint_scores(item["peaks"][a], item["peaks"][b], mids[c], height))
                 for c, ((a, b), scores) in enumerate(zip(OPENPOSE.limbs, item["limbs"]))]
        out.append(dict(item, limbs=limbs))
    return tuple(out)


def _input_people(scene: str, images: int, seed: int, input_size: int):
    """Per image of a scene set: (people (N, 18, 3) in input px, matrix image -> input, the distance prior's image
    height), the image fitted into a square ``input_size`` as the bench fits it."""
    from posebook.data.transforms import affine_points
    from posebook.inference.grouping import input_frame

    dataset = scene_set(scene, images, seed)
    for index, image_id in enumerate(dataset.image_ids):
        info = dataset.coco.imgs[image_id]
        matrix, _ = input_frame((info["height"], info["width"]), input_size)
        people = dataset.people(index)
        people[..., :2] = affine_points(people[..., :2], matrix)
        zoom = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        yield people, matrix, info["height"] * zoom  # the prior's height, as parse_outputs gives it


def midpoint_scores(cand_a, cand_b, midpoint_map, image_height: float) -> np.ndarray:
    """Scores (nA, nB) of every candidate limb A_i -> B_j by a midpoint map (the one-midpoint representation,
    CVPR'17 §2.2 Fig. 5b): the map's value at the pixel nearest the pair's midpoint, plus the demo's distance
    prior ``min(0.5 image_height / |AB| - 1, 0)``; accepted (else -inf) when that value exceeds
    :data:`~posebook.inference.bottomup.THRE1` (a midpoint detected as a part is), the score is > 0 and A != B.
    Chapter 08 (OpenPose)."""
    from posebook.inference.bottomup import THRE1

    a, b = np.asarray(cand_a, np.float64)[:, None, :2], np.asarray(cand_b, np.float64)[None, :, :2]
    mid = (a + b) / 2
    h, w = midpoint_map.shape
    px = np.clip(np.rint(mid[..., 0]).astype(int), 0, w - 1)
    py = np.clip(np.rint(mid[..., 1]).astype(int), 0, h - 1)
    value = midpoint_map[py, px].astype(np.float64)
    norm = np.hypot(*(b - a).transpose(2, 0, 1))
    score = value + np.minimum(0.5 * image_height / np.maximum(norm, 1e-12) - 1.0, 0.0)
    return np.where((value > THRE1) & (score > 0) & (norm > 0), score, -np.inf)


def distance_scores(cand_a, cand_b, image_height: float) -> np.ndarray:
    """Scores (nA, nB) of every candidate limb A_i -> B_j by distance alone: ``1 - |AB| / (0.5 image_height)``,
    accepted (else -inf) when A != B and ``|AB|`` is under half the image height (where the demo's distance prior
    starts to count), so the nearest pairs match first. The no-PAF baseline of chapter 08 (OpenPose)."""
    a, b = np.asarray(cand_a, np.float64)[:, None, :2], np.asarray(cand_b, np.float64)[None, :, :2]
    norm = np.hypot(*(b - a).transpose(2, 0, 1))
    score = 1.0 - norm / (0.5 * image_height)
    return np.where((norm > 0) & (score > 0), score, -np.inf)


def group(item: dict, grouping: str = "paf", matching: str = "greedy") -> tuple[np.ndarray, np.ndarray]:
    """One image of :func:`limb_scores` -> (poses (P, 18, 3) in the image, scores (P,) per part) as
    :func:`posebook.inference.bottomup.parse_outputs` returns them: the limbs scored by ``grouping``, matched by
    ``matching`` (:func:`~posebook.inference.bottomup.match_limbs` or
    :func:`~posebook.inference.bottomup.match_limbs_hungarian`), assembled and pruned by the demo's rules. With
    "paf" and "greedy" it is the library's parse. Chapter 08 (OpenPose)."""
    from posebook.inference.bottomup import (assemble, keep_people, match_limbs, match_limbs_hungarian,
                                             to_image)
    from posebook.keypoints import OPENPOSE

    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    match = match_limbs if matching == "greedy" else match_limbs_hungarian
    peaks, k = item["peaks"], OPENPOSE.num_keypoints
    first_id = np.cumsum([0] + [len(p) for p in peaks])
    candidates = np.concatenate(peaks) if first_id[-1] else np.zeros((0, 3))
    connections = []
    for (a, b), scores in zip(OPENPOSE.limbs, item["limbs"]):
        if scores is None:
            connections.append(np.zeros((0, 3)))
            continue
        rows = match(scores[grouping])
        rows[:, 0] += first_id[a]
        rows[:, 1] += first_id[b]
        connections.append(rows)
    parts, totals, counts = assemble(connections, candidates[:, 2], OPENPOSE, min_parts=0, min_mean_score=-np.inf)
    kept = keep_people(totals, counts)
    poses = (np.where((parts >= 0)[..., None], candidates[np.maximum(parts, 0)], 0.0) if len(candidates)
             else np.zeros((0, k, 3))).reshape(-1, k, 3)
    return to_image(poses[kept], item["matrix"]), totals[kept] / np.maximum(counts[kept], 1)


# ---- the trained study (D5): a small OpenPose trained on synthetic scenes ---------------------------------------------

# Per profile: the network, the scenes, the schedule and the validation images of the trained study. The cpu network
# is CVPR'17's at a quarter of its width with 3 stages and 3x3 later convs, on the stand-in front (ResNetFront: the
# book's pretrained ResNet-50/16 trunk cut at stride 8), since the ImageNet VGG-19 the official code starts from
# cannot ship; trained from it on 1-3 people 0.4-0.9 of a 192 px image high.
TRAINED = {
    "smoke": dict(stages=2, width=0.25, later_kernel=3, input_size=64, steps=2, batch_size=2, val_images=2,
                  curve_images=2, seeds=(0, 1)),
    "cpu": dict(stages=3, width=0.25, later_kernel=3, input_size=192, steps=STEPS_CPU, batch_size=8, val_images=300,
                curve_images=40, seeds=(0, 1, 2, 3, 4)),
    "gpu": dict(stages=3, width=0.25, later_kernel=3, input_size=192, steps=4 * STEPS_CPU, batch_size=8,
                val_images=300, curve_images=40, seeds=(0, 1, 2, 3, 4)),
}
TRAIN_SCENES = dict(min_people=1, max_people=3, person_height=(0.4, 0.9))
TRAIN_SEED = 0          # the training scenes (the validation scenes are SyntheticBottomUp.validation's 1_000_003)
LR, SCHEDULE = 1e-3, "flat_cosine"  # Adam (TPAMI'19 §3.1 trains with Adam), the cpu recipe's schedule

PAPER_STAGES = ("CVPR'17 §3.1, Fig. 7b (MPII, 343 held-out images, two-branch model): mAP rises with every stage "
                "from 1 to 6; the text gives no per-stage number")
PAPER_STAGE_LOSS = ("CVPR'17 §2.1 (intermediate supervision at every stage; Fig. 6: confidence maps and PAFs "
                    "sharpen from stage 1 to 3); no loss figure by stage in either paper")
PAPER_LEARNED_DISTANCE = PAPER_DISTANCE


def trained_config(profile: str, front: str = "resnet") -> dict:
    """The trained study's config for ``profile``: :data:`TRAINED`'s network and schedule, the scenes
    (:data:`TRAIN_SCENES` at ``input_size``), Adam at :data:`LR` with :data:`SCHEDULE`; ``front`` "resnet" starts
    from the shipped pretrained trunk, "vgg19" is the paper's front from scratch. Chapter 08 (OpenPose)."""
    if profile not in TRAINED:
        raise ValueError(f"profile must be one of {sorted(TRAINED)}, got {profile!r}")
    if front not in ("resnet", "vgg19"):
        raise ValueError(f"front must be 'resnet' (the pretrained trunk) or 'vgg19' (from scratch), got {front!r}")
    size = {k: v for k, v in TRAINED[profile].items() if k != "seeds"}
    return dict(profile=profile, front=front, pretrained=front == "resnet", **size, scenes=dict(TRAIN_SCENES),
                train_seed=TRAIN_SEED, lr=LR, schedule=SCHEDULE, targets="official")


def trained_model(config: dict):
    """The network of ``config``: :class:`posebook.models.openpose.OpenPose` at its stages, width and later kernel,
    its ResNet front loaded from :func:`posebook.learn.pretrained_trunk` when ``pretrained``."""
    from posebook.models.openpose import OpenPose

    net = OpenPose(stages=config["stages"], width=config["width"], later_kernel=config["later_kernel"],
                   front=config["front"])
    if config["pretrained"]:
        from posebook.learn import pretrained_trunk

        net.front.load_trunk(pretrained_trunk(), "the shipped pretrained trunk")
    return net


class TrainItems:
    """A bottom-up dataset's items as the Trainer takes them: ``image``, ``target`` (pafs, heatmaps) and
    ``target_weight`` the mask (:func:`posebook.losses.openpose_loss`'s arguments). Chapter 08 (OpenPose)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"image": item["image"], "target": (item["pafs"], item["heatmaps"]), "target_weight": item["mask"]}


def trained_sets(config: dict) -> tuple:
    """(training items, validation set) of ``config``: ``steps x batch_size`` scenes of :data:`TRAIN_SEED`
    (augmented as :class:`~posebook.data.bottomup.BottomUpAugment` draws), and ``val_images`` validation scenes of
    the same kind (seed 1_000_003). Chapter 08."""
    from posebook.data.bottomup import SyntheticBottomUp

    size = config["input_size"]
    train = SyntheticBottomUp(config["steps"] * config["batch_size"], seed=config["train_seed"], input_size=size,
                              image_size=(size, size), **config["scenes"])
    val = SyntheticBottomUp.validation(config["val_images"], input_size=size, image_size=(size, size),
                                       **config["scenes"])
    return TrainItems(train), val


def stage_scores(model, dataset, images: int | None = None, distance: bool = True) -> dict:
    """Every stage's validation scores of a trained OpenPose on the first ``images`` of ``dataset`` (all by
    default): ``stage{t}.AP`` (COCO AP of the people its maps parse into, :func:`group` with PAFs, greedy),
    ``stage{t}.AP50``, ``stage{t}.loss`` (its masked L2, PAFs + maps, mean over the images); with ``distance``
    also ``distance.AP`` (the last stage's peaks joined by distance alone, :func:`distance_scores`); ``people``.
    Chapter 08 (OpenPose)."""
    import torch

    from posebook.codecs.paf import OutputGrid
    from posebook.inference.bottomup import coco_results
    from posebook.keypoints import OPENPOSE
    from posebook.losses import openpose_stage_losses
    from posebook.metrics import coco_eval

    n = len(dataset) if images is None else min(images, len(dataset))
    k = OPENPOSE.num_keypoints
    results, losses, people = {}, {}, 0
    model.eval()
    with torch.no_grad():
        for index in range(n):
            item = dataset[index]
            pafs, heatmaps = model(item["image"][None])
            terms = openpose_stage_losses((pafs, heatmaps), (item["pafs"][None], item["heatmaps"][None]),
                                          item["mask"][None])
            meta = item["meta"]
            matrix = np.asarray(meta["matrix"], np.float64)
            zoom = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
            height = float(meta["image_size"][0]) * zoom
            grid = OutputGrid(tuple(v * STRIDE for v in heatmaps[0].shape[-2:]), STRIDE)
            people += int((dataset.people(index)[..., 2] > 0).any(axis=1).sum())
            for t, (paf, heat) in enumerate(zip(pafs, heatmaps), start=1):
                losses[t] = losses.get(t, 0.0) + float(terms["pafs"][t - 1] + terms["heatmaps"][t - 1])
                scored = scored_item(grid.upsample(heat[0].numpy())[:k], grid.upsample(paf[0].numpy()), matrix,
                                     height)
                groupings = ("paf", "distance") if distance and t == len(pafs) else ("paf",)
                for g in groupings:
                    poses, scores = group(scored, g)
                    key = f"stage{t}" if g == "paf" else "distance"
                    results.setdefault(key, []).extend(coco_results(int(meta["image_id"]), poses, scores))
    truth = dataset.coco.dataset
    if n < len(dataset):
        keep = set(dataset.image_ids[:n])
        truth = dict(truth, images=[i for i in truth["images"] if i["id"] in keep],
                     annotations=[a for a in truth["annotations"] if a["image_id"] in keep])
    out = {"people": people}
    for key, found in sorted(results.items()):
        stats = coco_eval(truth, found) if found else {"AP": 0.0, "AP50": 0.0}
        out[f"{key}.AP"], out[f"{key}.AP50"] = float(stats["AP"]), float(stats["AP50"])
    for t, total in losses.items():
        out[f"stage{t}.loss"] = total / max(n, 1)
    return out


def run_trained(config: dict, seed: int) -> dict:
    """One trained run: :func:`trained_model` trained on :func:`trained_sets` with the masked L2 of every stage and
    branch (:func:`posebook.losses.openpose_loss`) for ``steps``, the weights initialised from ``seed``; final
    :func:`stage_scores` on every validation image, curves of the last stage on ``curve_images`` of them at a third,
    two thirds and the end. One thread. Cao et al., CVPR 2017; chapter 08 (OpenPose)."""
    import torch

    from posebook.losses import openpose_loss
    from posebook.train import Trainer

    torch.manual_seed(seed)
    net = trained_model(config)
    train, val = trained_sets(config)
    last = f"stage{config['stages']}"

    def validate(model) -> dict:  # the last stage on the first curve_images (the history's "loss" is training's)
        scores = stage_scores(model, val, config["curve_images"], distance=False)
        return {f"{last}.AP": scores[f"{last}.AP"], f"{last}.loss": scores[f"{last}.loss"]}

    run = Trainer(net, train, openpose_loss, steps=config["steps"], batch_size=config["batch_size"],
                  optimizer="adam", lr=config["lr"], schedule=config["schedule"], seed=seed, device="cpu",
                  validate=validate, val_every=max(1, config["steps"] // 3), progress=False,
                  log_every=max(1, config["steps"] // 20))
    history = run.fit()
    final = stage_scores(run.model, val)
    final["AP"] = final[f"{last}.AP"]
    if seed == CHECKPOINT_SEED:
        save_checkpoint(run.model, config)
    curves = [{k: v for k, v in h.items() if k not in ("lr", "samples_per_s")} for h in history]
    return {"final": final, "curves": curves, "val_people": final["people"], "device": "cpu"}


CHECKPOINT_SEED = 0  # the run whose weights the chapter loads
# seed 0's weights of the cpu study, shipped (float16, about 0.9 MB): posebook/pretrained/README.md says how made
SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "pretrained" / "openpose_w025_s3_synthetic.pt"
SHIPPED_SHA256 = "bc3758c25c07d07e441a0003d3c1836a47fe09c84bbd7daad7692ac5b9d21705"


def checkpoint_path(profile: str, root=None):
    """Where the trained study keeps seed :data:`CHECKPOINT_SEED`'s weights: beside its records,
    ``<studies root>/<profile>/08_openpose/checkpoint-seed0.pt``."""
    from posebook.study import studies_root

    return studies_root(root) / profile / CHAPTER / f"checkpoint-seed{CHECKPOINT_SEED}.pt"


def save_checkpoint(model, config: dict, root=None):
    """Write ``model``'s state_dict in float16 (written whole or not at all) at :func:`checkpoint_path`."""
    from posebook.weights import save_state_dict

    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    path = checkpoint_path(config["profile"], root)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_state_dict(state, path)


def load_trained(profile: str = "cpu", path=None, root=None):
    """The trained study's network of ``profile`` with seed :data:`CHECKPOINT_SEED`'s weights (float32, eval mode),
    from ``path``; by default the copy shipped in the package (:data:`SHIPPED_CHECKPOINT`, the cpu study's, checked
    against :data:`SHIPPED_SHA256`) for the cpu and gpu profiles' network, else :func:`checkpoint_path`. Chapter 08
    loads it beside its live run."""
    import torch

    if path is None and root is None and SHIPPED_CHECKPOINT.exists() and \
            trained_config(profile)["stages"] == TRAINED["cpu"]["stages"]:
        from posebook.learn import sha256

        if sha256(SHIPPED_CHECKPOINT) != SHIPPED_SHA256:
            raise ValueError(f"{SHIPPED_CHECKPOINT} has SHA-256 {sha256(SHIPPED_CHECKPOINT)}, not the recorded "
                             f"{SHIPPED_SHA256}: the file was changed; make it again with the command in "
                             f"{SHIPPED_CHECKPOINT.parent / 'README.md'}")
        path = SHIPPED_CHECKPOINT
    path = Path(checkpoint_path(profile, root) if path is None else path)
    if not path.exists():
        raise FileNotFoundError(f"the trained study's checkpoint {path} is absent: run python -m posebook.study 08 "
                                f"--profile {profile} --only stages_refine")
    net = trained_model(dict(trained_config(profile), pretrained=False))
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()


# ---- estimates for --dry-run ----------------------------------------------------------------------------------------

def _sets(config: dict) -> set:
    """The shared computations a probe run of ``config`` needs, keyed (scene, targets, input size, midpoint maps):
    its own grouping's and its reference's."""
    keys = set()
    for g in (config, config["reference"]):
        keys.add((config["scene"], g["targets"], g["input_size"], False))
        if g["grouping"] == "midpoint":
            keys.add((config["scene"], g["targets"], g["input_size"], True))
    return keys


@lru_cache(maxsize=None)
def _set_seconds(key: tuple, images: int) -> float:
    """One thread's process seconds to compute the shared work ``key`` for ``images`` images, timed on 2 images of
    seed 0 (rendering them included)."""
    scene, targets, input_size, midpoints = key
    start = time.process_time()
    scene_set.__wrapped__(scene, 2, 0)
    if midpoints:
        limb_scores(scene, 2, 0, targets, input_size)
        start = time.process_time()
        midpoint_limb_scores.__wrapped__(scene, 2, 0, targets, input_size)
    else:
        limb_scores.__wrapped__(scene, 2, 0, targets, input_size)
    return (time.process_time() - start) / 2 * images


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``: :func:`estimate_trained` for the trained study, else
    :func:`estimate_probe`. Chapter 08 (OpenPose)."""
    return estimate_trained(config) if kind == "trained" else estimate_probe(config)


def estimate_trained(config: dict) -> tuple[float, str]:
    """Seconds for one trained run: 3 timed training steps (scenes rendered, one thread's process time) times the
    steps, plus the validation timed on 2 images times the images parsed (the curves' and the final's)."""
    import torch

    from posebook.losses import openpose_loss

    net = trained_model(dict(config, pretrained=False))
    train, val = trained_sets(dict(config, steps=3, val_images=2))
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"])
    start = time.process_time()
    for step in range(3):
        items = [train[step * config["batch_size"] + i] for i in range(config["batch_size"])]
        batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "target_weight")}
        target = tuple(torch.stack([it["target"][b] for it in items]) for b in range(2))
        loss = openpose_loss(net(batch["image"]), target, batch["target_weight"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step_seconds = (time.process_time() - start) / 3
    start = time.process_time()
    stage_scores(net, val)
    image_seconds = (time.process_time() - start) / 2
    seconds = step_seconds * config["steps"] + image_seconds * (config["val_images"] + 3 * config["curve_images"])
    return seconds, f"{config['steps']} steps of batch {config['batch_size']} at {config['input_size']} px"


def estimate_probe(config: dict) -> tuple[float, str]:
    """Seconds for one probe run of ``config`` (one thread's process time; a loaded CPU takes longer): the shared
    work of every scene set it parses (:func:`limb_scores`, :func:`midpoint_limb_scores`), timed on 2 images and
    shared out among the declared variants that parse the same set, plus about a second of grouping and COCO
    evaluation. Chapter 08 (OpenPose)."""
    from collections import Counter

    sharing = Counter(key for claim in claims(config["profile"]) for v in claim.variants if v.kind == "probe"
                      for key in _sets(v.config))
    seconds = 1.0 + sum(_set_seconds(key, config["images"]) / sharing[key] for key in _sets(config))
    return seconds, (f"{config['images']} images at {config['input_size']} px, its share of the maps computed once "
                     f"per scene set")
