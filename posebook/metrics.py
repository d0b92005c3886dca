"""Measuring pose: OKS, PCK/PCKh, COCO AP through pycocotools, OKS-NMS and the detector-box rescoring.

OKS follows pycocotools' ``COCOeval.computeOks`` (COCO keypoint evaluation, Lin et al., ECCV 2014); OKS-NMS and
rescoring follow the test pipeline of the HRNet code (Sun et al., CVPR 2019); PCKh follows the HRNet paper §4.2 and its
MPII ``evaluate``. Explained in chapter 02.
"""
from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np

from .keypoints import COCO_SIGMAS, MPII

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


# ---- OKS -------------------------------------------------------------------------------------------------------

def _poses(value, name: str, min_cols: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 2 and arr.shape[-1] % 3 == 0 and arr.shape[-1] > 3:  # flat COCO rows (x1, y1, v1, x2, ...)
        arr = arr.reshape(len(arr), -1, 3)
    if arr.ndim != 3 or arr.shape[-1] < min_cols:
        raise ValueError(f"{name}: expected shape (people, K, {min_cols}{'|3' if min_cols == 2 else ''}), "
                         f"got {arr.shape}")
    return arr


def _sigmas(sigmas, k: int) -> np.ndarray:
    sig = np.asarray(COCO_SIGMAS if sigmas is None else sigmas, dtype=float)
    if sig.shape != (k,):
        raise ValueError(f"sigmas: expected {k} per-keypoint values (one per keypoint), got shape {sig.shape}")
    return sig


def _outside_box(dt: np.ndarray, boxes: np.ndarray):
    """(N, M, K) distances from detected keypoints to the outside of each GT box enlarged 2x (pycocotools)."""
    x0, y0 = boxes[:, 0] - boxes[:, 2], boxes[:, 1] - boxes[:, 3]
    x1, y1 = boxes[:, 0] + 2 * boxes[:, 2], boxes[:, 1] + 2 * boxes[:, 3]
    xd, yd = dt[:, None, :, 0], dt[:, None, :, 1]
    dx = np.maximum(0, x0[None, :, None] - xd) + np.maximum(0, xd - x1[None, :, None])
    dy = np.maximum(0, y0[None, :, None] - yd) + np.maximum(0, yd - y1[None, :, None])
    return dx, dy


def keypoint_similarity(pred, gt_xy, area, sigmas) -> np.ndarray:
    """One OKS term per keypoint: exp(-d^2 / (2 area (2 sigma_k)^2)), broadcast over leading axes (K last); COCO
    keypoint evaluation (pycocotools ``computeOks``), chapter 02."""
    d2 = ((np.asarray(pred, dtype=float)[..., :2] - np.asarray(gt_xy, dtype=float)[..., :2]) ** 2).sum(-1)
    return np.exp(-d2 / ((2 * sigmas) ** 2) / (np.asarray(area, dtype=float)[..., None] + np.spacing(1)) / 2)


def oks(dt, gt, area, sigmas=None, gt_boxes=None) -> np.ndarray:
    """Object keypoint similarity of every detection with every ground truth, as pycocotools computes it.

    dt (N, K, 2|3) and gt (M, K, 3) with COCO visibility; area (M,) the GT areas. Only labelled GT keypoints
    (v > 0) count. A GT with no labelled keypoint needs ``gt_boxes`` (M, 4) COCO [x, y, w, h]: pycocotools then
    measures the distance to the outside of [x - w, x + 2w] x [y - h, y + 2h] (three box widths and heights across)
    and averages all K. Returns (N, M). COCO keypoint evaluation (pycocotools ``computeOks``); chapter 02.
    """
    dt = _poses(dt, "dt", 2)
    gt = _poses(gt, "gt", 3)
    if dt.shape[1] != gt.shape[1]:
        raise ValueError(f"dt has {dt.shape[1]} keypoints per person but gt has {gt.shape[1]}")
    area = np.asarray(area, dtype=float).reshape(-1)
    if area.shape != (len(gt),):
        raise ValueError(f"area: expected one area per ground truth, shape ({len(gt)},), got {area.shape}")
    variances = (_sigmas(sigmas, gt.shape[1]) * 2) ** 2
    labelled = gt[..., 2] > 0  # (M, K)
    counted = labelled.sum(1)  # (M,)
    dx = dt[:, None, :, 0] - gt[None, :, :, 0]  # (N, M, K)
    dy = dt[:, None, :, 1] - gt[None, :, :, 1]
    unlabelled = counted == 0
    if unlabelled.any():
        if gt_boxes is None:
            raise ValueError(f"ground truths {np.flatnonzero(unlabelled).tolist()} have no labelled keypoint "
                             "(all v = 0): pass gt_boxes (M, 4) to use pycocotools' 2x-box rule")
        boxes = np.asarray(gt_boxes, dtype=float).reshape(len(gt), 4)
        bx, by = _outside_box(dt, boxes)
        dx = np.where(unlabelled[None, :, None], bx, dx)
        dy = np.where(unlabelled[None, :, None], by, dy)
        labelled = labelled | unlabelled[:, None]
        counted = labelled.sum(1)
    # same operation order as computeOks, so the values agree to the last bits
    e = (dx ** 2 + dy ** 2) / variances / (area[None, :, None] + np.spacing(1)) / 2
    return np.where(labelled[None], np.exp(-e), 0.0).sum(-1) / counted[None, :]


# ---- COCO AP through pycocotools ---------------------------------------------------------------------------------

def _silent(fn, *args):
    """pycocotools reports progress on stdout; the library never prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def _gt_dataset(gt) -> dict:
    """A private copy of the ground truth as a COCO dict (COCOeval writes 'ignore' into every annotation), read and
    checked by :func:`posebook.data.cocofile.read_coco` with the fields COCOeval needs."""
    from posebook.data.cocofile import read_coco

    if isinstance(gt, (str, Path, dict)):
        data = read_coco(gt, source=None if not isinstance(gt, dict) else "gt dict", require=_GT_FIELDS)
    elif hasattr(gt, "dataset"):  # a pycocotools COCO object
        data = read_coco(gt.dataset, source="gt COCO object", require=_GT_FIELDS)
    else:
        raise TypeError(f"gt: expected a COCO dict, a json path or a pycocotools COCO, got {type(gt).__name__}")
    out = {k: v for k, v in data.items() if k != "annotations"}
    out["annotations"] = [dict(a) for a in data["annotations"]]
    out["categories"] = copy.deepcopy(data["categories"])
    return out


_GT_FIELDS = ("category_id", "keypoints", "num_keypoints", "area", "iscrowd", "bbox")


def _num_keypoints(data: dict) -> int:
    for cat in data["categories"]:
        if "keypoints" in cat:
            return len(cat["keypoints"])
    if data["annotations"]:
        return len(data["annotations"][0]["keypoints"]) // 3
    raise ValueError("gt: no category lists its keypoints and there is no annotation to count them from")


def _detections(detections, k: int, image_ids: set) -> list[dict]:
    out = []
    for i, det in enumerate(detections):
        missing = [key for key in ("image_id", "category_id", "keypoints", "score") if key not in det]
        if missing:
            raise ValueError(f"detection {i}: lacks {missing} (COCO results format)")
        kps = np.asarray(det["keypoints"], dtype=float).reshape(-1)
        if kps.size != 3 * k:
            raise ValueError(f"detection {i}: expected {3 * k} keypoint values (x, y, score for {k} keypoints), "
                             f"got {kps.size}")
        if det["image_id"] not in image_ids:
            raise ValueError(f"detection {i}: image_id {det['image_id']!r} is not an image of the ground truth")
        out.append({"image_id": det["image_id"], "category_id": det["category_id"],
                    "keypoints": kps.tolist(), "score": float(det["score"])})
    return out


def run_cocoeval(gt, detections, sigmas=None):
    """The pycocotools COCOeval (keypoints) after evaluate/accumulate/summarize, run silently; None if no detections.

    Its ``stats`` hold the 10 numbers of :func:`coco_eval` and ``eval['precision']`` (T, R, K, A, M) the
    precision per OKS threshold. COCO keypoint evaluation (pycocotools ``COCOeval``); chapter 02.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data = _gt_dataset(gt)
    k = _num_keypoints(data)
    if k != 17 and sigmas is None:
        raise ValueError(f"gt has {k} keypoints, not COCO's 17: pass sigmas ({k} per-keypoint OKS constants)")
    dets = _detections(detections, k, {img["id"] for img in data["images"]})
    if not dets:
        return None
    coco_gt = COCO()
    coco_gt.dataset = data
    _silent(coco_gt.createIndex)
    coco_dt = _silent(coco_gt.loadRes, dets)
    evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
    if sigmas is not None:
        evaluator.params.kpt_oks_sigmas = _sigmas(sigmas, k)
    for step in (evaluator.evaluate, evaluator.accumulate, evaluator.summarize):
        _silent(step)
    return evaluator


def coco_eval(gt, detections, sigmas=None) -> dict:
    """COCO keypoint AP/AR (AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl) by pycocotools' COCOeval.

    gt: a COCO dict, a json path or a pycocotools COCO (never modified); detections: COCO results (image_id,
    category_id, keypoints (3K flat), score). No detections gives zeros; -1 means no GT in that area range.
    COCO keypoint evaluation (pycocotools ``COCOeval.summarize``); chapter 02.
    """
    evaluator = run_cocoeval(gt, detections, sigmas)
    if evaluator is None:
        return {name: 0.0 for name in STAT_NAMES}
    return {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats)}


# ---- PCK / PCKh ------------------------------------------------------------------------------------------------

def _normalised_errors(pred, gt, visible, norm):
    pred, gt = np.asarray(pred, dtype=float)[..., :2], np.asarray(gt, dtype=float)[..., :2]
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"pred and gt: expected equal shapes (N, K, 2), got {pred.shape} and {gt.shape}")
    visible = np.asarray(visible, dtype=float) > 0
    norm = np.asarray(norm, dtype=float).reshape(-1)
    if visible.shape != pred.shape[:2]:
        raise ValueError(f"visible: expected shape {pred.shape[:2]}, got {visible.shape}")
    if norm.shape != (len(pred),):
        raise ValueError(f"norm: expected one length per person, shape ({len(pred)},), got {norm.shape}")
    bad = np.flatnonzero((norm <= 0) & visible.any(1))
    if bad.size:
        raise ValueError(f"norm: people {bad.tolist()} have visible joints but a length <= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm(pred - gt, axis=-1) / norm[:, None], visible


def pck(pred, gt, visible, norm, thr: float, exclude=()) -> tuple[np.ndarray, float]:
    """Percentage of correct keypoints: a visible joint is correct when its error <= thr x norm (per person).

    Returns (per_joint (K,) in [0, 1], NaN for joints never visible, mean): the mean weights each joint by
    its visible count (the MPII convention), leaving out the joints in ``exclude``. Chapter 02.
    """
    err, visible = _normalised_errors(pred, gt, visible, norm)
    counts = visible.sum(0)
    hits = ((err <= thr) & visible).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_joint = hits / counts
    used = np.ones(len(counts), bool)
    used[list(exclude)] = False
    total = counts[used].sum()
    return per_joint, float(hits[used].sum() / total) if total else float("nan")


def lr_inversions(pred, gt, norm, flip_index, thr: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Left/right inversions judged by PCK: (eligible (N, K), inverted (N, K)) boolean arrays. Ronchi & Perona's
    inversion error (ICCV 2017), with PCK's box-relative radius in place of OKS.

    A keypoint with a left/right twin (``flip_index[k] != k``) is *eligible* when it and its twin are labelled and
    the twin lies more than ``thr`` x norm away (closer twins cannot be told apart by this test); it is *inverted*
    when the prediction lies within ``thr`` x norm of the twin and not within ``thr`` x norm of its own joint. The
    share ``inverted.sum() / eligible.sum()`` is 0 for a perfect model and about 0.5 for one that guesses the side.
    ``pred`` (N, K, 2+), ``gt`` (N, K, 3) with v in the last column, ``norm`` (N,) (for boxes, the longer side).
    Chapter 02."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    norm = np.asarray(norm, dtype=np.float64).reshape(-1, 1)
    flip = np.asarray(flip_index)
    if pred.ndim != 3 or gt.shape[:2] != pred.shape[:2] or gt.shape[-1] < 3 or len(norm) != len(pred):
        raise ValueError(f"lr_inversions: pred {pred.shape}, gt {gt.shape} (N, K, 3) and norm {norm.shape[:1]} "
                         "must agree on N and K")
    if flip.shape != (pred.shape[1],):
        raise ValueError(f"lr_inversions: flip_index has {flip.shape} entries, the poses {pred.shape[1]} keypoints")
    twin = gt[:, flip]
    sided = flip != np.arange(len(flip))
    labelled = (gt[..., 2] > 0) & (twin[..., 2] > 0) & sided[None]
    apart = np.linalg.norm(gt[..., :2] - twin[..., :2], axis=-1) > thr * norm
    eligible = labelled & apart
    own = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1) <= thr * norm
    at_twin = np.linalg.norm(pred[..., :2] - twin[..., :2], axis=-1) <= thr * norm
    return eligible, eligible & at_twin & ~own


def head_size(head_boxes) -> np.ndarray:
    """MPII head size: 0.6 x the diagonal of the head box (N, 4) [x1, y1, x2, y2] (HRNet paper §4.2, SC_BIAS; chapter 02)."""
    boxes = np.asarray(head_boxes, dtype=float).reshape(-1, 4)
    return 0.6 * np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)


def head_size_from_joints(joints) -> np.ndarray:
    """Head length upper_neck -> head_top of MPII joints (N, 16, 2+): a stand-in when no head box is at hand (chapter 02).

    The HRNet-style json (and ``../shared/data/mpii_sample``) has no head boxes: its ``evaluate`` reads them from
    ``gt_valid.mat``. This segment is NOT the official normaliser; numbers computed with it are not MPII PCKh.
    """
    joints = np.asarray(joints, dtype=float)
    neck, top = MPII.index("upper_neck"), MPII.index("head_top")
    return np.linalg.norm(joints[:, top, :2] - joints[:, neck, :2], axis=1)


def pckh(pred, gt, visible, head_sizes, thr: float = 0.5) -> tuple[np.ndarray, float]:
    """MPII PCKh@thr: PCK normalised by each person's head size; the mean leaves out pelvis and thorax (HRNet's).

    Official head sizes are :func:`head_size` of MPII's head boxes (HRNet's ``evaluate`` reads them from
    ``gt_valid.mat``; ``MpiiKeypoints`` puts the same value in ``meta['head_size']`` when its json has ``head_box``);
    :func:`head_size_from_joints` is only a stand-in. HRNet paper §4.2; chapter 02.
    """
    return pck(pred, gt, visible, head_sizes, thr, exclude=(MPII.index("pelvis"), MPII.index("thorax")))


# ---- detector boxes: rescoring and OKS-NMS --------------------------------------------------------------------

def rescore(box_score, keypoint_scores, thre: float = 0.2):
    """HRNet's detection score: box score x mean of the keypoint maxvals above ``thre`` (0 if none is).

    box_score scalar or (N,), keypoint_scores (K,) or (N, K). HRNet code (Sun et al., CVPR 2019),
    ``validate``; chapter 02.
    """
    scores = np.asarray(keypoint_scores, dtype=float)
    confident = scores > thre
    counts = confident.sum(-1)
    mean = np.where(counts > 0, (scores * confident).sum(-1) / np.maximum(counts, 1), 0.0)
    return np.asarray(box_score, dtype=float) * mean


def oks_iou(pose, others, area, other_areas, sigmas=None, in_vis_thre=None) -> np.ndarray:
    """HRNet's OKS between one pose (K, 3) and others (N, K, 3): the scale is the mean of the two areas.

    With ``in_vis_thre`` only the keypoints of ``others`` scoring above it count: HRNet's
    ``list(vg > t) and list(vd > t)`` evaluates to the second list. HRNet code, ``nms.py``; chapter 02.
    """
    pose, others = np.asarray(pose, dtype=float), _poses(others, "others", 3)
    scale = (area + np.asarray(other_areas, dtype=float)) / 2
    similarity = keypoint_similarity(others, pose[None], scale, _sigmas(sigmas, pose.shape[0]))  # (N, K)
    used = np.ones_like(similarity, bool) if in_vis_thre is None else others[..., 2] > in_vis_thre
    counts = used.sum(-1)
    return np.where(counts > 0, np.where(used, similarity, 0.0).sum(-1) / np.maximum(counts, 1), 0.0)


def oks_nms(poses, scores, areas, threshold: float = 0.9, sigmas=None, in_vis_thre=None) -> list[int]:
    """Greedy OKS non-maximum suppression: keep the best-scored pose, drop those with OKS > threshold to it, repeat.

    poses (N, K, 3) with keypoint scores, scores (N,), areas (N,). Returns the kept indices, best first.
    HRNet's ``oks_nms`` (threshold 0.9; Sun et al., CVPR 2019, its test pipeline); chapter 02.
    """
    poses = _poses(poses, "poses", 3) if len(poses) else np.zeros((0, 0, 3))
    scores, areas = np.asarray(scores, dtype=float), np.asarray(areas, dtype=float)
    if not (len(poses) == len(scores) == len(areas)):
        raise ValueError(f"poses, scores and areas must have one entry per pose: {len(poses)}, {len(scores)}, "
                         f"{len(areas)}")
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap = oks_iou(poses[best], poses[rest], areas[best], areas[rest], sigmas, in_vis_thre)
        order = rest[overlap <= threshold]
    return keep


# ---- error diagnosis ---------------------------------------------------------------------------------------------

ERROR_KINDS = ("good", "jitter", "inversion", "swap", "miss")


def keypoint_errors(pred, gt, area, flip_index, image_ids=None, sigmas=None) -> dict:
    """Sort every labelled keypoint's prediction into Ronchi & Perona's error kinds (ICCV 2017, coco-analyze).

    pred (N, K, 2|3) are the predictions for the ground-truth people gt (N, K, 3) of the same index (top-down with
    ground-truth boxes), area (N,) their areas, ``flip_index`` (K,) the left/right permutation (for example
    ``COCO.flip_index()``), ``image_ids`` (N,) which image each person is in (needed to find swaps). With ks the
    keypoint's OKS term against its own ground truth:

    - **good**: ks >= 0.85; **jitter**: 0.5 <= ks < 0.85 (the right joint, placed loosely);
    - **inversion**: otherwise, ks >= 0.5 against the same person's mirrored joint (left taken for right);
    - **swap**: otherwise, ks >= 0.5 against the same joint of another person in the image;
    - **miss**: anything else.

    Returns ``kind`` (N, K) indices into :data:`ERROR_KINDS` (-1 where the joint is unlabelled), ``share`` (the
    fraction of labelled keypoints of each kind) and ``per_joint`` (K, 5) the same fractions per joint (NaN where a
    joint is never labelled). Chapter 03.
    """
    pred, gt = _poses(pred, "pred", 2), _poses(gt, "gt", 3)
    if pred.shape[:2] != gt.shape[:2]:
        raise ValueError(f"pred {pred.shape[:2]} and gt {gt.shape[:2]} must hold the same people and keypoints")
    n, k = gt.shape[:2]
    area = np.asarray(area, dtype=float).reshape(-1)
    if area.shape != (n,):
        raise ValueError(f"area: expected one area per person, shape ({n},), got {area.shape}")
    flip = np.asarray(flip_index, dtype=int).reshape(-1)
    if sorted(flip.tolist()) != list(range(k)) or not np.array_equal(flip[flip], np.arange(k)):
        raise ValueError(f"flip_index must be a left/right permutation of range({k}) that undoes itself, got {flip}")
    images = np.zeros(n, dtype=np.int64) if image_ids is None else np.asarray(image_ids).reshape(-1)
    if images.shape != (n,):
        raise ValueError(f"image_ids: expected one image id per person, shape ({n},), got {images.shape}")
    sig = _sigmas(sigmas, k)
    labelled = gt[..., 2] > 0
    own = keypoint_similarity(pred, gt, area, sig)
    mirrored = keypoint_similarity(pred, gt[:, flip], area, sig)
    inverted = (mirrored >= 0.5) & labelled[:, flip] & (flip != np.arange(k))
    swapped = np.zeros((n, k), dtype=bool)
    if image_ids is not None:
        for i in range(n):
            others = np.flatnonzero((images == images[i]) & (np.arange(n) != i))
            if others.size:
                ks = keypoint_similarity(pred[i][None], gt[others], area[others], sig)  # (others, K)
                swapped[i] = ((ks >= 0.5) & labelled[others]).any(0)
    kind = np.select([own >= 0.85, own >= 0.5, inverted, swapped], [0, 1, 2, 3], default=4)
    kind = np.where(labelled, kind, -1)
    counts = np.stack([(kind == c).sum(0) for c in range(len(ERROR_KINDS))], axis=1)  # (K, kinds)
    per_joint = counts / np.where(labelled.sum(0) > 0, labelled.sum(0), np.nan)[:, None]
    total = max(int(labelled.sum()), 1)
    share = {name: float(counts[:, c].sum() / total) for c, name in enumerate(ERROR_KINDS)}
    return {"kind": kind, "share": share, "per_joint": per_joint}
