"""Checkers for chapter 02 (Measuring pose): OKS against pycocotools, PCK, and the flip-back of heatmaps."""
from __future__ import annotations

import functools

import numpy as np

from posebook import metrics
from posebook.keypoints import COCO, COCO_SIGMAS, MPII

from ._core import CheckFailure, expect_close, expect_shape, exercise

CHAPTER = "02_measuring_pose"

# ---- oks -------------------------------------------------------------------------------------------------------


def oks_solution(dt, gt, area, sigmas, gt_boxes):
    """OKS (N, M) of detections dt (N, K, 2) with ground truths gt (M, K, 3), as pycocotools' computeOks."""
    return metrics.oks(dt, gt, area, sigmas, gt_boxes)


def _oks_variant(dt, gt, area, sigmas, gt_boxes, *, k_factor=2.0, masked=True, sqrt_area=False, box_rule=True):
    """A planted wrong OKS: one of the formula's parts changed (the names say which)."""
    dt, gt = np.asarray(dt, float)[..., :2], np.asarray(gt, float)
    scale = np.sqrt(area) if sqrt_area else np.asarray(area, float)
    d2 = ((dt[:, None] - gt[None, :, :, :2]) ** 2).sum(-1)
    e = d2 / (k_factor * np.asarray(sigmas)) ** 2 / (scale[None, :, None] + np.spacing(1)) / 2
    mask = gt[..., 2] > 0 if masked else np.ones(gt.shape[:2], bool)
    with np.errstate(invalid="ignore"):
        out = (np.exp(-e) * mask[None]).sum(-1) / mask.sum(-1)[None]
    unlabelled = ~(gt[..., 2] > 0).any(-1)
    if box_rule:
        out[:, unlabelled] = metrics.oks(dt, gt[unlabelled], np.asarray(area)[unlabelled], sigmas,
                                         np.asarray(gt_boxes)[unlabelled])
    else:
        out[:, unlabelled] = 0.0
    return out


_OKS_MUTANTS = {
    "sigma instead of 2 sigma": functools.partial(_oks_variant, k_factor=1.0),
    "no visibility mask": functools.partial(_oks_variant, masked=False),
    "sqrt(area) instead of area": functools.partial(_oks_variant, sqrt_area=True),
    "unlabelled person scored 0": functools.partial(_oks_variant, box_rule=False),
}

_OKS_HINTS = {
    "sigma instead of 2 sigma": "the per-keypoint constant is k = 2 sigma, so divide by (2 sigma)^2",
    "no visibility mask": "average only over the keypoints the ground truth labels (v > 0); v = 0 ones are "
                          "not in the image's annotation at all",
    "sqrt(area) instead of area": "the scale s^2 is the area itself (s = sqrt(area)), so divide d^2 by area",
    "unlabelled person scored 0": "a ground truth with no labelled keypoint is not skipped: pycocotools measures "
                                  "each keypoint's distance to the outside of its box enlarged 2x (x - w .. x + 2w)",
}


def _pycocotools_oks(dt, gt, area, boxes, sigmas):
    """The truth, from pycocotools itself."""
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(iouType="keypoints")
    ev.params.kpt_oks_sigmas = np.asarray(sigmas)
    ev._gts[1, 1] = [{"keypoints": g.ravel().tolist(), "area": float(a), "bbox": list(b)}
                     for g, a, b in zip(gt, area, boxes)]
    ev._dts[1, 1] = [{"keypoints": np.c_[d, np.ones(len(d))].ravel().tolist(), "score": 1.0 - i / 100}
                     for i, d in enumerate(dt)]
    return ev.computeOks(1, 1)


def _oks_cases(rng):
    """(what, dt, gt, area, boxes, sigmas): one keypoint; random people with v = 0; an unlabelled person; K = 16."""
    def people(n, k):
        xy = rng.uniform(20, 300, (n, k, 2))
        v = np.where(rng.uniform(size=(n, k)) < 0.7, rng.integers(1, 3, (n, k)), 0)
        return xy, np.concatenate([xy, v[..., None]], -1)

    one_gt = np.zeros((1, 17, 3))
    one_gt[0, 9] = [50, 60, 2]
    one_dt = np.full((1, 17, 2), 50.0)
    one_dt[0, 9] = [53, 64]
    cases = [("one labelled keypoint (left wrist)", one_dt, one_gt, np.array([900.0]),
              np.array([[40.0, 40, 30, 30]]), COCO_SIGMAS)]
    for what, n, m, k, sigmas in (("random COCO people with v = 0 keypoints", 5, 4, 17, COCO_SIGMAS),
                                  ("16 keypoints with sigma 0.07 each", 3, 3, 16, np.full(16, 0.07))):
        xy, gt = people(m, k)
        dt = np.concatenate([xy[:2] + rng.normal(0, 4, (2, k, 2)), people(n - 2, k)[0]])
        gt[-1, :, 2] = 0  # a person whose keypoints are all unlabelled
        boxes = np.c_[xy.min(1), xy.max(1) - xy.min(1)]
        cases.append((what, dt, gt, rng.uniform(2000, 30000, m), boxes, sigmas))
    return cases


@exercise("oks", solution=oks_solution, mutants=_OKS_MUTANTS, chapter=CHAPTER)
def check_oks(fn):
    for what, dt, gt, area, boxes, sigmas in _oks_cases(np.random.default_rng(0)):
        want = _pycocotools_oks(dt, gt, area, boxes, sigmas)
        got = expect_shape(fn(dt.copy(), gt.copy(), area.copy(), sigmas.copy(), boxes.copy()), want.shape,
                           f"{what}: OKS (detections x ground truths)")
        if np.allclose(got, want, atol=1e-9, rtol=1e-9):
            continue
        for label, mutant in _OKS_MUTANTS.items():
            if np.allclose(got, mutant(dt, gt, area, sigmas, boxes), atol=1e-9, equal_nan=True):
                raise CheckFailure(f"{what}: your OKS differs from pycocotools' computeOks. Hint: "
                                   f"{_OKS_HINTS[label]}")
        expect_close(got, want, f"{what}: OKS", atol=1e-9,
                     hint="e = d^2 / (2 sigma)^2 / (area + eps) / 2 per keypoint, OKS = mean of exp(-e) over the "
                          "labelled keypoints")


# ---- pck -------------------------------------------------------------------------------------------------------


def pck_solution(pred, gt, visible, norm, thr):
    """(per_joint (K,), mean): a visible joint is correct when its error <= thr x norm; mean weighted by counts."""
    return metrics.pck(pred, gt, visible, norm, thr)


def _pck_unmasked(pred, gt, visible, norm, thr):
    return metrics.pck(pred, gt, np.ones(np.shape(visible)), norm, thr)


def _pck_unweighted_mean(pred, gt, visible, norm, thr):
    per_joint, _ = metrics.pck(pred, gt, visible, norm, thr)
    return per_joint, float(np.nanmean(per_joint))


def _pck_strict(pred, gt, visible, norm, thr):
    return metrics.pck(pred, gt, visible, norm, thr * (1 - 1e-9))


def _pck_pixels(pred, gt, visible, norm, thr):
    return metrics.pck(pred, gt, visible, np.ones(len(norm)), thr)


def _pck_cases(rng):
    """(what, pred, gt, visible, norm, thr); only the first case sits exactly on the boundary (3-4-5: exact)."""
    gt = rng.uniform(0, 200, (6, 16, 2))
    norm = rng.uniform(20, 60, 6)
    direction = rng.normal(size=(6, 16, 2))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    ratio = rng.choice([0.1, 0.3, 0.45, 0.55, 0.8, 2.0], size=(6, 16))
    pred = gt + direction * (ratio * norm[:, None])[..., None]
    visible = (rng.uniform(size=(6, 16)) < 0.75).astype(float)
    visible[0] = 1  # every joint visible at least once
    exact = np.zeros((1, 4, 2)), np.array([[[3.0, 4.0], [0, 30], [6, 8], [1.2, 1.6]]])  # errors 5, 30, 10, 2
    return [("errors 5, 30, 10, 2 px at thr 0.5 x norm 10", exact[1], exact[0], np.ones((1, 4)),
             np.array([10.0]), 0.5),
            ("6 MPII people at PCKh@0.5", pred, gt, visible, norm, 0.5),
            ("6 MPII people at PCK@0.2", pred, gt, visible, norm, 0.2)]


_PCK_HINTS = {
    "unmasked": (_pck_unmasked, "joints with visible == 0 are not labelled: leave them out of both the hits and "
                                "the counts"),
    "unweighted": (_pck_unweighted_mean, "the mean is total hits / total visible joints (weighted by each "
                                         "joint's visible count), not the mean of the per-joint values"),
    "strict": (_pck_strict, "a joint at exactly thr x norm is correct: use <=, as the MPII evaluation does"),
    "pixels": (_pck_pixels, "the threshold is relative: thr x norm of that person (e.g. 0.5 x head size)"),
}


@exercise("pck", solution=pck_solution, chapter=CHAPTER,
          mutants={"no visibility mask": _pck_unmasked, "unweighted mean of joints": _pck_unweighted_mean,
                   "strict < instead of <=": _pck_strict, "threshold in pixels, not x norm": _pck_pixels})
def check_pck(fn):
    for what, pred, gt, visible, norm, thr in _pck_cases(np.random.default_rng(1)):
        out = fn(pred.copy(), gt.copy(), visible.copy(), norm.copy(), thr)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailure(f"{what}: return a pair (per_joint, mean), got {type(out).__name__}")
        per_joint = expect_shape(out[0], (pred.shape[1],), f"{what}: per_joint")
        mean = float(np.asarray(out[1], dtype=float))
        want_joint, want_mean = pck_solution(pred, gt, visible, norm, thr)
        if np.allclose(per_joint, want_joint, equal_nan=True) and np.isclose(mean, want_mean):
            continue
        for wrong, hint in _PCK_HINTS.values():
            bad_joint, bad_mean = wrong(pred, gt, visible, norm, thr)
            if np.allclose(per_joint, bad_joint, equal_nan=True) and np.isclose(mean, bad_mean):
                raise CheckFailure(f"{what}: expected mean {want_mean:.4f}, got {mean:.4f}. Hint: {hint}")
        expect_close(per_joint, want_joint, f"{what}: per_joint", atol=1e-9)
        expect_close(mean, want_mean, f"{what}: mean", atol=1e-9)


# ---- flip_back -------------------------------------------------------------------------------------------------


def flip_back_solution(heatmaps, flip_pairs):
    """Heatmaps of the flipped input (B, K, h, w) -> aligned with the original: mirror, swap pairs, shift right 1."""
    return _mirror(heatmaps, flip_pairs, shift=True)


def _mirror(heatmaps, flip_pairs, shift):
    from posebook.data.transforms import flip_heatmaps

    return flip_heatmaps(np.asarray(heatmaps), flip_pairs, shift=shift)


def _flip_no_swap(heatmaps, flip_pairs):
    return _mirror(heatmaps, (), shift=True)


def _flip_no_shift(heatmaps, flip_pairs):
    return _mirror(heatmaps, flip_pairs, shift=False)


def _flip_shift_left(heatmaps, flip_pairs):
    out = _mirror(heatmaps, flip_pairs, shift=False)
    out[..., :-1] = out[..., 1:].copy()
    return out


def _flip_rows(heatmaps, flip_pairs):
    return np.swapaxes(flip_back_solution(np.swapaxes(heatmaps, -1, -2), flip_pairs), -1, -2)


_FLIP_MUTANTS = {"left/right not swapped": _flip_no_swap, "shift missing": _flip_no_shift,
                 "shifted left": _flip_shift_left, "mirrored upside down": _flip_rows}
_FLIP_HINTS = {
    "left/right not swapped": "after mirroring, the left-wrist channel holds the right wrist: swap the channels "
                              "of every flip pair",
    "shift missing": "HRNet shifts the flipped-back maps one column right (out[..., 1:] = out[..., :-1]): "
                     "mirroring x -> w - 1 - x in the image is not exactly mirroring the heatmap's columns",
    "shifted left": "the shift goes right: out[..., 1:] = out[..., :-1] (column 0 keeps its value)",
    "mirrored upside down": "a horizontal flip reverses the last axis (columns, x), not the rows",
}


@exercise("flip_back", solution=flip_back_solution, mutants=_FLIP_MUTANTS, chapter=CHAPTER)
def check_flip_back(fn):
    rng = np.random.default_rng(2)
    for what, skeleton, size in (("COCO heatmaps 2 x 17 x 8 x 6", COCO, (8, 6)),
                                 ("MPII heatmaps 2 x 16 x 6 x 6", MPII, (6, 6))):
        hm = rng.uniform(0, 1, (2, skeleton.num_keypoints, *size)).astype(np.float32)
        want = flip_back_solution(hm, skeleton.flip_pairs)
        got = expect_shape(fn(hm.copy(), skeleton.flip_pairs), want.shape, f"{what}: flipped-back heatmaps")
        if np.allclose(got, want):
            continue
        for label, mutant in _FLIP_MUTANTS.items():
            if np.allclose(got, mutant(hm, skeleton.flip_pairs)):
                raise CheckFailure(f"{what}: wrong flip-back. Hint: {_FLIP_HINTS[label]}")
        expect_close(got, want, f"{what}: flipped-back heatmaps", atol=1e-6)
