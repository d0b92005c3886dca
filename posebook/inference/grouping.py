"""``python -m posebook.bench grouping``: how well the bottom-up parser groups people on ground-truth maps.

No network: every image's people are drawn as confidence maps and part affinity fields (``posebook.codecs.paf``,
the official targets or the paper's forms), parsed back by :func:`posebook.inference.bottomup.parse_outputs`, and
scored with COCO AP. What is lost here is lost by the targets and the parser alone, the ceiling of any network
that learns these maps (Cao et al., OpenPose, CVPR 2017; TPAMI'19 §3; review OPENPOSE.md §2, issue #24 D3).

Beside AP the bench counts the people found complete and four named failures, each defined in
:func:`grouping_failures`. Chapter 08 (OpenPose).
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from functools import lru_cache

import numpy as np

from posebook.codecs.paf import CM_FORMS, ConfidenceMaps, PartAffinityFields
from posebook.data.transforms import affine_points
from posebook.inference.bottomup import coco_results, parse_outputs
from posebook.keypoints import OPENPOSE

STRIDE = 8
TOLERANCE = 4.0   # input px: a part is found when a peak lies this close to it (half a stride)
MERGE = 16.0      # input px: a lost part whose same-type neighbour in another person is closer is a merged peak
BORDER = 8.0      # input px: a lost part this close to the maps' edge (one stride) is a border miss

# scene name -> (what it is, the options of SyntheticBottomUp.validation): the settings of review OPENPOSE.md §2.2
SCENES = {
    "apart": ("2 people apart, height 0.35-0.5, front, tilt 0, 512 input",
              dict(input_size=512, min_people=2, max_people=2, person_height=(0.35, 0.5),
                   facing=(1.0, 0.0, 0.0), tilt_std=0.0, overlap=0.0)),
    "default": ("the default scenes (1-4 people, height 0.22-1.0, overlap 0.35), 256 input",
                dict(input_size=256)),
}
FAILURES = ("merged_peaks", "border", "wrong_match", "pruned_fragment")


@lru_cache(maxsize=8)
def _codecs(input_size: tuple[int, int], targets: str) -> tuple[ConfidenceMaps, PartAffinityFields]:
    return (ConfidenceMaps(input_size, STRIDE, form=targets),
            PartAffinityFields(input_size, STRIDE, support=targets))


def input_frame(image_size, input_size=None, height: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """(matrix (2, 3) image -> input, input (H, W)) for one image of ``image_size`` (H, W): fitted into a square
    ``input_size`` as the bottom-up datasets fit it (:func:`posebook.data.bottomup.fit_matrix`), or scaled so
    that its height is ``height`` and padded right and bottom to a multiple of the stride, the CMU demo's test
    scale (Cao et al., TPAMI'19). Chapter 08 (OpenPose)."""
    from posebook.data.bottomup import fit_matrix

    h, w = (int(v) for v in image_size)
    if height is None:
        size = (int(input_size), int(input_size)) if np.ndim(input_size) == 0 else tuple(map(int, input_size))
        return fit_matrix((h, w), size), size
    scale = height / h
    size = tuple(int(np.ceil(v * scale / STRIDE)) * STRIDE for v in (h, w))
    return np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]]), size


def _owners(points: np.ndarray, truth: np.ndarray, labelled: np.ndarray, tolerance: float) -> np.ndarray:
    """For points (n, 2) of one part type: the index of the ground-truth person whose labelled part of that type
    is nearest, if within ``tolerance``, else -1."""
    if not len(points) or not labelled.any():
        return np.full(len(points), -1)
    dist = np.hypot(points[:, None, 0] - truth[None, :, 0], points[:, None, 1] - truth[None, :, 1])
    dist[:, ~labelled] = np.inf
    nearest = dist.argmin(axis=1)
    return np.where(dist[np.arange(len(points)), nearest] <= tolerance, nearest, -1)


def _person_owners(people: np.ndarray, truth: np.ndarray, labelled: np.ndarray, tolerance: float) -> np.ndarray:
    """(P, K): the ground-truth owner of each present part of each parsed person (-1: none or missing)."""
    out = np.full(people.shape[:2], -1)
    present = (people != 0).any(axis=2)
    for j in range(people.shape[1]):
        out[present[:, j], j] = _owners(people[present[:, j], j, :2], truth[:, j], labelled[:, j], tolerance)
    return out


def grouping_failures(truth, trace: dict, matrix, input_size, tolerance: float = TOLERANCE) -> Counter:
    """What the parse of one image found, against its ground truth: a Counter of ``people``, ``complete``,
    ``detections`` and the four failures.

    ``truth`` (N, 18, 3): the image's people (OpenPose-18, x, y, v in image px; v > 0 labelled); ``trace``: what
    :func:`posebook.inference.bottomup.parse_outputs` wrote into its ``trace`` (peaks, every assembled person, the
    ones kept); ``matrix`` image -> input and ``input_size`` (H, W) the maps' frame. Distances are in input px
    (``tolerance``, ``MERGE``, ``BORDER``), converted to the image through the matrix's scale.

    A peak *belongs* to the ground-truth part of its type nearest to it, if that is within ``tolerance`` (4
    input px, half a stride); a parsed part belongs to a person the same way (its coordinates are its peak's).

    * ``people``: ground-truth people (with at least one labelled part); ``detections``: people the parse kept.
    * ``complete``: ground-truth people every labelled part of whom (the neck included) belongs to one kept person.
    * ``merged_peaks``: labelled parts that no peak belongs to, while another person's part of the same type lies
      within ``MERGE`` (16 input px, two strides): two parts' Gaussians gave one peak, and one part was lost.
    * ``border``: labelled parts that no peak belongs to, not merged, within ``BORDER`` (one stride) of the maps'
      edge: the cubic upsampling replicates the edge and pulls such a peak onto it (review OPENPOSE.md §1.4).
    * ``wrong_match``: kept people with parts belonging to two or more ground-truth people.
    * ``pruned_fragment``: ground-truth people with a part in a person that the pruning (fewer than 4 parts or a
      score per part under 0.4) dropped: the person was split and a fragment was lost.

    The kinds are counted independently (one person can show several) and do not cover every miss: a part whose
    peak exists but whose limbs were rejected, for example, only makes its person incomplete. The two peak kinds
    did cover every part left without a peak on the default scenes (seed 1000003, first 60 images, official
    targets: 32 merged, 44 at the border, none else). Cao et al., OpenPose (CVPR 2017); chapter 08 (OpenPose).
    """
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, OPENPOSE.num_keypoints, 3)
    labelled = truth[..., 2] > 0
    truth, labelled = truth[labelled.any(axis=1)], labelled[labelled.any(axis=1)]
    zoom = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))
    tol = tolerance / zoom
    counts = Counter(people=len(truth), detections=int(trace["kept"].sum()))

    # parts without a peak of their own: merged with a neighbour's, at the border, or neither (not counted)
    in_input = affine_points(truth[..., :2], matrix)
    edge = np.minimum(np.minimum(in_input[..., 0], input_size[1] - 1 - in_input[..., 0]),
                      np.minimum(in_input[..., 1], input_size[0] - 1 - in_input[..., 1]))
    for j, peaks in enumerate(trace["peaks"]):
        found = set(_owners(peaks[:, :2], truth[:, j], labelled[:, j], tol).tolist())
        for g in np.flatnonzero(labelled[:, j]):
            if g in found:
                continue
            others = labelled[:, j] & (np.arange(len(truth)) != g)
            gap = np.hypot(*(truth[others, j, :2] - truth[g, j, :2]).T)
            if (gap * zoom < MERGE).any():
                counts["merged_peaks"] += 1
            elif edge[g, j] < BORDER:
                counts["border"] += 1

    owners = _person_owners(trace["people"], truth, labelled, tol)
    kept, dropped = owners[trace["kept"]], owners[~trace["kept"]]
    counts["wrong_match"] += sum(len(set(row[row >= 0].tolist())) >= 2 for row in kept)
    counts["pruned_fragment"] += len(set(dropped[dropped >= 0].tolist()))
    for g in range(len(truth)):
        counts["complete"] += bool(((kept == g) | ~labelled[g]).all(axis=1).any())
    return counts


def ground_truth_grouping(dataset, targets: str = "official", height: int | None = None,
                          tolerance: float = TOLERANCE) -> dict:
    """COCO AP of a :class:`posebook.data.bottomup.BottomUpDataset`'s people parsed back from their own maps,
    and the counts of :func:`grouping_failures` summed over its images.

    Each image's labelled people are drawn with the ``targets`` forms (``"official"`` or ``"paper"``: the
    ConfidenceMaps ``form`` and PartAffinityFields ``support``) in the frame of :func:`input_frame` (the
    dataset's square input, or the image scaled to ``height``), parsed by
    :func:`posebook.inference.bottomup.parse_outputs`, ranked by :func:`posebook.inference.bottomup.coco_results`'
    default and scored by ``posebook.metrics.coco_eval``. Returns AP, AP50, AR, detections, people, complete (a
    share), failures (a dict). Cao et al., OpenPose (CVPR 2017); chapter 08 (OpenPose).
    """
    from posebook.metrics import coco_eval

    if targets not in CM_FORMS:
        raise ValueError(f"ground_truth_grouping targets must be one of {', '.join(map(repr, CM_FORMS))}, "
                         f"got {targets!r}")
    results, counts = [], Counter()
    for index, image_id in enumerate(dataset.image_ids):
        info = dataset.coco.imgs[image_id]
        image_size = (info["height"], info["width"])
        matrix, size = input_frame(image_size, dataset.input_size, height)
        heat_codec, paf_codec = _codecs(size, targets)
        truth = dataset.people(index)
        people = truth.copy()
        people[..., :2] = affine_points(people[..., :2], matrix)
        trace = {}
        poses, scores = parse_outputs(heat_codec.encode(people), paf_codec.encode(people), STRIDE, matrix,
                                      image_size, trace=trace)
        results += coco_results(image_id, poses, scores)
        counts += grouping_failures(truth, trace, matrix, size, tolerance)
    stats = coco_eval(dataset.coco.dataset, results)
    return {"AP": round(stats["AP"], 4), "AP50": round(stats["AP50"], 4), "AR": round(stats["AR"], 4),
            "detections": counts["detections"], "people": counts["people"],
            "complete": round(counts["complete"] / max(counts["people"], 1), 4),
            "failures": {name: counts[name] for name in FAILURES}}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main(argv: list[str] | None = None) -> dict:
    """``python -m posebook.bench grouping``: :func:`ground_truth_grouping` on synthetic scenes (``--scene``,
    ``--num``, ``--seed``) or on the packaged COCO sample (``--coco-sample --height H``); ``--json`` prints one
    JSON object. Returns that object. Cao et al., OpenPose (CVPR 2017); chapter 08 (OpenPose)."""
    parser = argparse.ArgumentParser(prog="python -m posebook.bench grouping",
                                     description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--num", type=_positive, help="synthetic images (default 100)")
    parser.add_argument("--seed", type=_seed, help="synthetic seed (default 1000003, the validation seed)")
    parser.add_argument("--scene", choices=sorted(SCENES), help="synthetic scene (default: default): "
                        + "; ".join(f"{k}: {v[0]}" for k, v in SCENES.items()))
    parser.add_argument("--coco-sample", action="store_true", help="the 4 packaged COCO val2017 photos instead")
    parser.add_argument("--height", type=_positive, help="with --coco-sample: the image height the photos are "
                                                         "scaled to (default 368, the CMU test scale)")
    parser.add_argument("--targets", choices=CM_FORMS, default="official",
                        help="the maps' forms: the official training code's or the paper's (default official)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.coco_sample:
        given = [name for name in ("num", "seed", "scene") if getattr(args, name) is not None]
        if given:
            parser.error(f"--coco-sample takes no {', '.join('--' + n for n in given)}")
        dataset, setting = _coco_sample(), {"scene": "coco_sample", "height": args.height or 368}
        height = setting["height"]
    else:
        if args.height is not None:
            parser.error("--height goes with --coco-sample (a synthetic scene has its own input size)")
        setting = {"scene": args.scene or "default", "num": args.num or 100,
                   "seed": 1_000_003 if args.seed is None else args.seed}
        dataset, height = _synthetic(setting["scene"], setting["num"], setting["seed"]), None
    report = {**ground_truth_grouping(dataset, args.targets, height), "num": len(dataset), "seed": None,
              **setting, "targets": args.targets}
    print(json.dumps(report, sort_keys=True) if args.json else _text(report))
    return report


def _synthetic(scene: str, num: int, seed: int):
    from posebook.data.bottomup import SyntheticBottomUp

    return SyntheticBottomUp.validation(num, seed=seed, **SCENES[scene][1])


def _coco_sample():
    import posebook
    from posebook.data.bottomup import BottomUpDataset

    folder = posebook.sample_data("coco_sample")
    if folder is None:
        raise SystemExit("bench grouping: the COCO sample (posebook/sample_data/coco_sample) is missing")
    return BottomUpDataset(folder / "person_keypoints_sample.json", folder / "images", train=False)


def _text(report: dict) -> str:
    where = (f"COCO sample ({report['num']} photos) at height {report['height']}" if report["scene"] == "coco_sample"
             else f"scene {report['scene']} ({SCENES[report['scene']][0]}), {report['num']} images, seed "
                  f"{report['seed']}")
    f = report["failures"]
    return "\n".join([
        f"grouping on ground-truth maps: {where}, {report['targets']} targets",
        f"AP {report['AP']:.4f}  AP50 {report['AP50']:.4f}  AR {report['AR']:.4f}  detections {report['detections']}"
        f"  complete people {report['complete']:.1%} of {report['people']}",
        f"failures: merged peaks {f['merged_peaks']} parts, border {f['border']} parts, wrong match "
        f"{f['wrong_match']} detections, pruned fragment {f['pruned_fragment']} people"])
