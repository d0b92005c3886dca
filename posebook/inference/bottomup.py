"""Bottom-up parsing: from confidence maps and part affinity fields to people, as the CMU OpenPose demo does it.

Cao et al., TPAMI'19 §3 (the line integral E of Eq. 11) and the logic of the CMU demo released with it:
(1) the peaks of every part's smoothed map; (2) every pair of candidates of a limb's two parts scored by the PAF
sampled along the segment between them, with a prior against limbs longer than half the image; (3) a greedy
matching per limb type; (4) the matched limbs assembled into people, and people with few parts or a low mean
score dropped. Then the people become COCO-17 results for ``posebook.metrics.coco_eval``, ranked by default as
the MATLAB evalCOCO.m does (:func:`coco_results`). Chapter 08 (OpenPose).
"""
from __future__ import annotations

import cv2
import numpy as np

from posebook.codecs.paf import OutputGrid, openpose_to_coco
from posebook.data.transforms import affine_points
from posebook.keypoints import OPENPOSE, Skeleton

# the CMU demo's constants (Cao et al., TPAMI'19, released code)
PEAK_SIGMA = 3.0        # Gaussian smoothing of each confidence map before the peak search, input px
THRE1 = 0.1             # a peak's smoothed value must exceed this
THRE2 = 0.05            # a PAF sample along a candidate limb counts when its dot product exceeds this
MID_NUM = 10            # samples along a candidate limb
MIN_ABOVE = 0.8         # more than this share of the samples must exceed THRE2
MIN_PARTS = 4           # people with fewer parts are dropped
MIN_MEAN_SCORE = 0.4    # people whose score per part is lower are dropped
STARTING_LIMBS = 17     # only the first 17 limb types start a person; the last two (ear-shoulder) are redundant


def _maps(value, what: str) -> np.ndarray:
    arr = value.detach().float().cpu().numpy() if hasattr(value, "detach") else np.asarray(value, np.float32)
    if arr.ndim != 3:
        raise ValueError(f"{what} must have shape (C, H, W), got {arr.shape}")
    return arr.astype(np.float32, copy=False)


def find_peaks(heatmaps, thre1: float = THRE1, sigma: float = PEAK_SIGMA) -> list[np.ndarray]:
    """Part candidates: per map of (K, H, W), an (n, 3) array x, y, score of the points where the smoothed map is
    >= its left and upper neighbours, > its right and lower ones, and > thre1; the score is the unsmoothed value
    there (row-major order).

    The strict tie-break toward the right and bottom is our one deliberate deviation from the CMU demo, which
    takes >= on all four sides and so keeps both pixels of a two-pixel plateau. Such exact plateaus are common on
    ground-truth maps (a part halfway between two pixels): with the demo's rule the COCO sample's ground-truth
    maps in a 640 square give duplicate peaks that split people, AP 0.698 against 0.986 with ours (review
    OPENPOSE.md §1.2). We keep the right/bottom pixel, at most 1 px off the plateau's centre; on network outputs
    exact ties are practically absent, so the two rules agree there.

    The CMU demo's peak search (step 1; Cao et al., TPAMI'19 §3); chapter 08 (OpenPose).
    """
    maps = _maps(heatmaps, "heatmaps")
    radius = int(4 * sigma + 0.5)  # a Gaussian truncated at 4 sigma
    peaks = []
    for part in maps:
        smooth = cv2.GaussianBlur(part, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT)
        # outside the map counts as 0, so a peak may sit on the border; strict toward the right and bottom
        # neighbours, so a plateau of two equal pixels (a part halfway between two) gives one peak, not two
        padded = np.pad(smooth, 1)
        is_peak = ((smooth >= padded[1:-1, :-2]) & (smooth > padded[1:-1, 2:])
                   & (smooth >= padded[:-2, 1:-1]) & (smooth > padded[2:, 1:-1]) & (smooth > thre1))
        ys, xs = np.nonzero(is_peak)
        peaks.append(np.stack([xs, ys, part[ys, xs]], axis=1).astype(np.float64))
    return peaks


def score_limbs(cand_a: np.ndarray, cand_b: np.ndarray, paf_x: np.ndarray, paf_y: np.ndarray,
                image_height: float, mid_num: int = MID_NUM, thre2: float = THRE2) -> np.ndarray:
    """Scores (nA, nB) of every candidate limb A_i -> B_j; -inf where it is not accepted.

    score = mean over ``mid_num`` points from A to B (rounded to pixels) of PAF . unit(AB), plus
    ``min(0.5 image_height / |AB| - 1, 0)``; accepted when more than 80% of the dot products exceed thre2 and
    score > 0. A zero-length pair (two coincident peaks) is never accepted; that is the demo's behaviour too, not a
    deviation: there unit(AB) is the zero vector, every dot product is 0 and fails > thre2 (the C++ library
    rejects coincident peaks as well). The end samples sit on the two peaks, which is why the PAF targets need the
    official support (:class:`posebook.codecs.paf.PartAffinityFields`). TPAMI'19 Eq. 11 and the CMU demo (step
    2); chapter 08.
    """
    vec = cand_b[None, :, :2] - cand_a[:, None, :2]                   # (nA, nB, 2)
    norm = np.hypot(vec[..., 0], vec[..., 1])
    unit = vec / np.maximum(norm, 1e-12)[..., None]
    t = np.linspace(0.0, 1.0, mid_num)
    points = cand_a[:, None, None, :2] + t[:, None] * vec[:, :, None, :]  # (nA, nB, mid_num, 2)
    h, w = paf_x.shape
    px = np.clip(np.rint(points[..., 0]).astype(int), 0, w - 1)
    py = np.clip(np.rint(points[..., 1]).astype(int), 0, h - 1)
    dots = paf_x[py, px] * unit[..., 0, None] + paf_y[py, px] * unit[..., 1, None]
    prior = np.minimum(0.5 * image_height / np.maximum(norm, 1e-12) - 1.0, 0.0)
    score = dots.mean(axis=-1) + prior
    accepted = ((dots > thre2).sum(axis=-1) > MIN_ABOVE * mid_num) & (score > 0) & (norm > 0)
    return np.where(accepted, score, -np.inf)


def match_limbs(scores: np.ndarray) -> np.ndarray:
    """Greedy matching of one limb type: accepted pairs by score, best first, each candidate used once, at most
    min(nA, nB) of them. Returns (m, 3) rows i, j, score. Cao et al., TPAMI'19 §3 and the CMU demo (step
    3); chapter 08."""
    i_all, j_all = np.nonzero(np.isfinite(scores))
    order = np.argsort(-scores[i_all, j_all], kind="stable")
    used_a, used_b, rows = set(), set(), []
    for i, j in zip(i_all[order], j_all[order]):
        if len(rows) >= min(scores.shape):
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            rows.append((i, j, scores[i, j]))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def match_limbs_hungarian(scores: np.ndarray) -> np.ndarray:
    """The optimal matching of one limb type: the accepted pairs (finite scores) of the largest total score, each
    candidate used once (a maximum-weight bipartite matching, by the Hungarian algorithm of
    ``scipy.optimize.linear_sum_assignment``). Returns (m, 3) rows i, j, score, by score, best first.

    What CVPR'17 §2.4 (Eqs. 12-13) writes; the released code matches greedily (:func:`match_limbs`), which can
    take one high pair where two lower ones together score more. Accepted scores are > 0, so a rejected pair is
    given weight 0 (as good as leaving both unmatched) and dropped afterwards; a finite score <= 0 is a ValueError.
    Chapter 08 (OpenPose).
    """
    from scipy.optimize import linear_sum_assignment

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError(f"match_limbs_hungarian: scores must be a 2-D array of finite numbers or -inf (rejected "
                         f"pairs), got shape {scores.shape}")
    accepted = np.isfinite(scores)
    if (scores[accepted] <= 0).any():
        raise ValueError("match_limbs_hungarian: accepted scores must be > 0 (as score_limbs gives them); reject a "
                         "pair with -inf")
    if not accepted.any():
        return np.zeros((0, 3))
    rows_i, cols_j = linear_sum_assignment(np.where(accepted, scores, 0.0), maximize=True)
    keep = accepted[rows_i, cols_j]
    i, j = rows_i[keep], cols_j[keep]
    order = np.argsort(-scores[i, j], kind="stable")
    return np.stack([i[order], j[order], scores[i, j][order]], axis=1).astype(np.float64).reshape(-1, 3)


def assemble(connections: list[np.ndarray], peak_scores: np.ndarray, skeleton: Skeleton = OPENPOSE,
             min_parts: int = MIN_PARTS, min_mean_score: float = MIN_MEAN_SCORE):
    """People from the matched limbs: (parts (P, K) int, candidate id or -1; totals (P,); counts (P,)).

    ``connections[c]`` holds rows (id_a, id_b, score) of limb type c, ids indexing ``peak_scores``. A limb joins
    the person holding either end: it adds its B end there; if both ends lie in two people who share no part,
    they are merged; if neither, a new person starts (first 17 limb types only). A person's total is its parts'
    scores plus its limbs' scores; people with < min_parts parts or total / parts < min_mean_score are dropped.
    Cao et al., TPAMI'19 §3 and the CMU demo (step 4); chapter 08 (OpenPose).
    """
    k = skeleton.num_keypoints
    people: list[np.ndarray] = []   # each: K candidate ids (-1 where the part is missing)
    totals: list[float] = []
    counts: list[int] = []
    for c, ((a, b), rows) in enumerate(zip(skeleton.limbs, connections)):
        for id_a, id_b, score in rows:
            id_a, id_b = int(id_a), int(id_b)
            owners = [p for p, parts in enumerate(people) if parts[a] == id_a or parts[b] == id_b][:2]
            if len(owners) == 2 and not ((people[owners[0]] >= 0) & (people[owners[1]] >= 0)).any():
                keep, gone = owners
                people[keep] = np.maximum(people[keep], people[gone])  # disjoint parts: take the present ones
                totals[keep] += totals[gone] + score
                counts[keep] += counts[gone]
                del people[gone], totals[gone], counts[gone]
            elif owners:
                p = owners[0]
                if people[p][b] != id_b:
                    people[p][b] = id_b
                    counts[p] += 1
                    totals[p] += peak_scores[id_b] + score
            elif c < STARTING_LIMBS:
                parts = np.full(k, -1, dtype=int)
                parts[a], parts[b] = id_a, id_b
                people.append(parts)
                totals.append(peak_scores[id_a] + peak_scores[id_b] + score)
                counts.append(2)
    kept = keep_people(totals, counts, min_parts, min_mean_score)
    return (np.array(people, dtype=int).reshape(-1, k)[kept], np.array(totals, dtype=np.float64)[kept],
            np.array(counts, dtype=int)[kept])


def keep_people(totals, counts, min_parts: int = MIN_PARTS, min_mean_score: float = MIN_MEAN_SCORE) -> np.ndarray:
    """The pruning at the end of the assembly: a bool mask (P,) of the people with at least ``min_parts`` parts
    and a score per part (total / parts) of at least ``min_mean_score``. Cao et al., TPAMI'19 §3 and the CMU demo
    (step 4); chapter 08 (OpenPose)."""
    totals, counts = np.asarray(totals, dtype=np.float64), np.asarray(counts, dtype=int)
    return (counts >= min_parts) & (totals / np.maximum(counts, 1) >= min_mean_score)


def parse(heatmaps, pafs, skeleton: Skeleton = OPENPOSE, image_height: float | None = None,
          thre1: float = THRE1, thre2: float = THRE2, mid_num: int = MID_NUM,
          trace: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Confidence maps (K or K + 1, H, W) and PAFs (2L, H, W) at input resolution -> (poses (P, K, 3) x, y, part
    score, zeros where a part is missing; scores (P,) the person's mean score per part: its parts' and limbs'
    scores summed, over the number of parts). A background channel is ignored.

    ``image_height`` (for the distance prior) defaults to H. A ``trace`` dict receives what the steps found:
    ``"peaks"``, every part's candidates (:func:`find_peaks`); ``"people"`` (Q, K, 3), every assembled person
    before the pruning; ``"kept"`` (Q,) bool, the ones the pruning keeps (:func:`keep_people`), which are the
    poses returned, in order. TPAMI'19 §3 and the CMU demo; chapter 08.
    """
    heat, field = _maps(heatmaps, "heatmaps"), _maps(pafs, "pafs")
    k, limbs = skeleton.num_keypoints, skeleton.limbs
    if len(heat) not in (k, k + 1) or len(field) != 2 * len(limbs) or heat.shape[1:] != field.shape[1:]:
        raise ValueError(f"parse expects heatmaps ({k} or {k + 1}, H, W) and pafs ({2 * len(limbs)}, H, W) for "
                         f"{skeleton.name}, got {heat.shape} and {field.shape}")
    height = float(image_height if image_height is not None else heat.shape[1])
    peaks = find_peaks(heat[:k], thre1)
    first_id = np.cumsum([0] + [len(p) for p in peaks])  # candidate ids of part j: first_id[j] ...
    candidates = np.concatenate(peaks) if first_id[-1] else np.zeros((0, 3))
    connections = []
    for c, (a, b) in enumerate(limbs):
        if not len(peaks[a]) or not len(peaks[b]):
            connections.append(np.zeros((0, 3)))
            continue
        scores = score_limbs(peaks[a], peaks[b], field[2 * c], field[2 * c + 1], height, mid_num, thre2)
        rows = match_limbs(scores)
        rows[:, 0] += first_id[a]
        rows[:, 1] += first_id[b]
        connections.append(rows)
    # every person, pruned below, so that a trace can show what the pruning dropped
    parts, totals, counts = assemble(connections, candidates[:, 2], skeleton, min_parts=0, min_mean_score=-np.inf)
    kept = keep_people(totals, counts)
    poses = np.where((parts >= 0)[..., None], candidates[np.maximum(parts, 0)], 0.0) if len(candidates) \
        else np.zeros((0, k, 3))
    poses = poses.reshape(-1, k, 3)
    if trace is not None:
        trace.update(peaks=peaks, people=poses, kept=kept)
    return poses[kept], totals[kept] / np.maximum(counts[kept], 1)


def parse_outputs(heatmaps, pafs, stride: int = 8, matrix=None, image_size=None, flipped: bool = False,
                  skeleton: Skeleton = OPENPOSE, trace: dict | None = None,
                  **thresholds) -> tuple[np.ndarray, np.ndarray]:
    """A network's maps (C, h, w) and (2L, h, w) at 1/stride -> people in the image: upsample x stride (cubic),
    parse, and map back through the inverse of ``matrix`` (2, 3), image -> input (a sample's ``meta['matrix']``);
    ``flipped`` (``meta['flipped']``): the input was mirrored, so the parsed left parts are the image's right ones.

    Without ``matrix`` the image sits at the input's top-left (the demo pads right and bottom) and ``image_size``
    (H, W) crops the padding off. A ``trace`` dict receives :func:`parse`'s trace, its peaks and people mapped
    into the image as the poses are. The CMU demo's test time (Cao et al., TPAMI'19); chapter 08 (OpenPose).
    """
    heat, field = _maps(heatmaps, "heatmaps"), _maps(pafs, "pafs")
    grid = OutputGrid((heat.shape[1] * stride, heat.shape[2] * stride), stride)
    zoom = 1.0 if matrix is None else float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, float)[:, :2]))))
    crop = image_size if matrix is None else None
    height = None if image_size is None else float(image_size[0]) * zoom
    steps = {} if trace is not None else None
    poses, scores = parse(grid.upsample(heat, crop), grid.upsample(field, crop), skeleton, height, **thresholds,
                          trace=steps)
    poses = _into_image(poses, matrix, flipped, skeleton)
    if trace is not None:
        order = skeleton.flip_index() if flipped else range(skeleton.num_keypoints)
        peaks = [_into_image(p[:, None], matrix, False, skeleton)[:, 0] for p in steps["peaks"]]
        trace.update(steps, peaks=[peaks[j] for j in order],
                     people=_into_image(steps["people"], matrix, flipped, skeleton))
    return poses, scores


def _into_image(poses, matrix, flipped: bool, skeleton: Skeleton) -> np.ndarray:
    """(P, K, 3) parsed in the input -> the image: through the inverse of ``matrix`` if given, mirrored back if
    ``flipped``."""
    if matrix is not None:
        poses = to_image(poses, matrix)
    return poses[:, skeleton.flip_index()] if flipped else poses


def to_image(poses, matrix) -> np.ndarray:
    """Poses (P, K, 3) in input px -> the image, through the inverse of ``matrix`` (image -> input); missing parts
    (score 0) stay at 0. Chapter 08 (OpenPose)."""
    out = np.array(poses, dtype=np.float64)
    m = np.vstack([np.asarray(matrix, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    present = out[..., 2] > 0
    out[..., :2] = np.where(present[..., None], affine_points(out[..., :2], np.linalg.inv(m)[:2]), 0.0)
    return out


PERSON_SCORES = ("total_x_parts", "total", "mean")


def coco_results(image_id: int, poses, scores, score: str = "total_x_parts") -> list[dict]:
    """OpenPose-18 poses (P, 18, 3) and scores (P,) as :func:`parse` gives them (the mean per part) -> COCO
    keypoint results (COCO-17, x, y, score; the neck dropped) for ``posebook.metrics.coco_eval``.

    The person's score, which COCO AP ranks by: with n the parts present in the pose (a missing part is all
    zeros) and the total = mean x n, ``score="total_x_parts"`` (the default) is the total x (the number of present
    parts other than the neck), the MATLAB evalCOCO.m form behind the CVPR'17 COCO numbers; ``"total"`` the total
    (as the C++ library ranks); ``"mean"`` the mean per part as given. (The assembly counts a part again when a
    later limb replaces it, as the demo does; there n can be one lower than that count.) On ground-truth maps the
    three rank within about 0.01 AP of each other (review OPENPOSE.md §2.6). Chapter 08 (OpenPose).
    """
    if score not in PERSON_SCORES:
        raise ValueError(f"coco_results score must be one of {', '.join(map(repr, PERSON_SCORES))}, got {score!r}")
    op = np.asarray(poses, dtype=np.float64).reshape(-1, OPENPOSE.num_keypoints, 3)
    means = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(means) != len(op):
        raise ValueError(f"coco_results got {len(op)} poses and {len(means)} scores")
    present = (op != 0).any(axis=2)                                     # (P, 18)
    parts = present.sum(axis=1)
    if score == "mean":
        person = means
    elif score == "total":
        person = means * parts
    else:
        body = np.ones(OPENPOSE.num_keypoints, dtype=bool)
        body[OPENPOSE.index("neck")] = False
        person = means * parts * present[:, body].sum(axis=1)
    coco = openpose_to_coco(op)
    return [{"image_id": int(image_id), "category_id": 1, "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
             "score": float(s)} for kp, s in zip(coco, person)]
