"""Top-down inference for any heatmap model: crop each box, ``model.predict``, flip test, decode, back to the image.

Follows the HRNet code's test path (Sun et al., CVPR 2019: ``validate``, ``get_final_preds``): flip test averages the
heatmaps of the input and of its mirror image (flipped back with the pairs and, where the codec's convention says so,
``codec.flip_shift``, shifted one column right as HRNet does; CPN and MSPN do not shift), the codec decodes them, and
the inverse of the crop's affine transform (HRNet's ``transform_preds``) maps them to the image. :func:`evaluate` then
builds COCO results (rescoring and OKS-NMS for detector boxes) and scores them with pycocotools. Explained in
chapter 02.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from posebook import metrics
from posebook.data.transforms import (affine_points, box_to_center_scale, crop, flip_heatmaps,
                                      get_affine_transform, to_tensor)
from posebook.keypoints import COCO, Skeleton

PCK_THRESHOLD = 0.2  # PCK for COCO-style data: within 0.2 x the longer side of the person's ground-truth box


@torch.no_grad()
def predict_heatmaps(model, images: torch.Tensor, flip_pairs=None, shift: bool = True) -> torch.Tensor:
    """``model.predict`` of (B, 3, H, W) crops -> (B, K, h, w); with ``flip_pairs``, the flip test.

    The mirrored input's heatmaps are flipped back (pairs swapped, one-column shift if ``shift``: HRNet's convention;
    pass the codec's ``flip_shift``) and averaged with the plain ones. HRNet code (Sun et al., CVPR 2019),
    ``validate``; chapter 02.
    """
    heatmaps = model.predict(images)
    if flip_pairs is None:
        return heatmaps
    flipped = model.predict(torch.flip(images, dims=[-1]))
    return 0.5 * (heatmaps + flip_heatmaps(flipped, flip_pairs, shift=shift))


def to_image(points, centers, scales, input_size, rotations=None) -> np.ndarray:
    """Points (B, K, 2) in crop (input) pixels -> image pixels, by the inverse of each crop's affine transform.

    HRNet's ``transform_preds`` inverts the heatmap-sized transform; the codec already scaled heatmap px to input
    px, and both transforms are the same similarity up to that scale. HRNet code (Sun et al., CVPR 2019); chapter 02.
    """
    points = np.asarray(points, dtype=np.float64)
    centers, scales = np.asarray(centers, dtype=np.float64), np.asarray(scales, dtype=np.float64)
    rotations = np.zeros(len(points)) if rotations is None else np.asarray(rotations, dtype=np.float64)
    if not (len(points) == len(centers) == len(scales) == len(rotations)):
        raise ValueError(f"to_image: {len(points)} poses but {len(centers)} centers, {len(scales)} scales and "
                         f"{len(rotations)} rotations")
    return np.stack([affine_points(p, get_affine_transform(c, s, r, input_size, inv=True))
                     for p, c, s, r in zip(points, centers, scales, rotations)]) if len(points) else points


def flip_shift_of(codec, shift: bool | None = None) -> bool:
    """The flip test's one-column shift: ``shift`` when given, else the codec's convention ``codec.flip_shift``."""
    if shift is not None:
        return bool(shift)
    declared = getattr(codec, "flip_shift", None)
    if declared is None:
        raise ValueError(f"{type(codec).__name__} declares no flip_shift (its flip-test convention): give it one, "
                         "or pass shift=True (HRNet) or shift=False (CPN, MSPN)")
    return bool(declared)


def predict_crops(model, images: torch.Tensor, centers, scales, codec, flip_pairs=None, rotations=None,
                  shift: bool | None = None) -> np.ndarray:
    """(B, 3, H, W) normalised crops with their boxes -> keypoints (B, K, 3): x, y in image px and the score.

    With ``flip_pairs``, the flip test; ``shift`` None takes its one-column shift from ``codec.flip_shift``.
    """
    if tuple(images.shape[-2:]) != tuple(codec.input_size):
        raise ValueError(f"crops are {tuple(images.shape[-2:])} (H, W) but the codec decodes to input size "
                         f"{tuple(codec.input_size)}: use the codec the model was trained with")
    heatmaps = predict_heatmaps(model, images, flip_pairs, flip_shift_of(codec, shift))
    coords, scores = codec.decode(heatmaps.float().cpu())
    xy = to_image(coords, centers, scales, images.shape[-2:], rotations)
    return np.concatenate([xy, np.asarray(scores, dtype=np.float64)[..., None]], axis=-1)


@contextlib.contextmanager
def _eval_mode(model):
    """Eval mode (BN running statistics, no dropout) for the duration, then the model's own mode back."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        yield
    finally:
        if hasattr(model, "train"):
            model.train(was_training)


def _model_device(model, device):
    if device is not None:
        return torch.device(device)
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return param.device if param is not None else torch.device("cpu")


def predict_image(model, image: np.ndarray, boxes, codec, skeleton: Skeleton = COCO, flip_test: bool = True,
                  device=None, shift: bool | None = None) -> np.ndarray:
    """Poses of the people in one RGB photo (H, W, 3) uint8, given their boxes (N, 4) COCO [x, y, w, h].

    Returns (N, K, 3): x, y in image px and the heatmap score. The crops have the codec's input size; the flip
    test's shift is ``codec.flip_shift`` unless ``shift`` is given. Chapter 02.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if np.asarray(image).ndim != 3 or np.asarray(image).shape[2] != 3:
        raise ValueError(f"image: expected an (H, W, 3) RGB array, got shape {np.shape(image)}")
    if len(boxes) == 0:
        return np.zeros((0, skeleton.num_keypoints, 3))
    input_size = codec.input_size
    centers, scales = zip(*(box_to_center_scale(b, input_size[1] / input_size[0]) for b in boxes))
    crops = torch.stack([to_tensor(crop(image, c, s, 0.0, input_size)) for c, s in zip(centers, scales)])
    device = _model_device(model, device)
    pairs = skeleton.flip_pairs if flip_test else None
    with _eval_mode(model):
        return predict_crops(model, crops.to(device), centers, scales, codec, pairs, shift=shift)


# ---- evaluation on a top-down dataset ---------------------------------------------------------------------------

def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def predict_dataset(model, dataset, flip_test: bool = True, batch_size: int = 32, device=None,
                    progress: bool = True, shift: bool | None = None) -> dict:
    """Run the model over every item of a top-down dataset, in order, decoding with ``dataset.codec``.

    Returns numpy arrays: ``keypoints`` (N, K, 3) in image px with scores, ``image_id``, ``ann_id``, ``box_score``,
    ``area`` (the crop box area, scale x 200 squared, as HRNet's NMS uses) and ``gt`` (N, K, 3). The flip test's
    shift is the codec's ``flip_shift`` unless ``shift`` is given. Chapter 02.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    device = _model_device(model, device)
    pairs = dataset.skeleton.flip_pairs if flip_test else None
    shift = flip_shift_of(dataset.codec, shift)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    parts: dict[str, list] = {k: [] for k in ("keypoints", "image_id", "ann_id", "box_score", "area", "gt")}
    with _eval_mode(model):
        for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            meta = batch["meta"]
            scales = _numpy(meta["scale"])
            parts["keypoints"].append(predict_crops(model, batch["image"].to(device), _numpy(meta["center"]),
                                                    scales, dataset.codec, pairs, _numpy(meta["rotation"]),
                                                    shift))
            parts["area"].append(np.prod(scales * 200.0, axis=1))
            parts["gt"].append(_numpy(meta["keypoints"]))
            for key, name in (("image_id", "image_id"), ("ann_id", "ann_id"), ("box_score", "score")):
                parts[key].append(_numpy(meta[name]))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def coco_results(predictions: dict, nms: bool, in_vis_thre: float = 0.2, oks_thre: float = 0.9,
                 sigmas=None) -> list[dict]:
    """COCO results from :func:`predict_dataset`'s output: HRNet's rescoring, then OKS-NMS per image if ``nms``.

    score = box score x mean keypoint score above ``in_vis_thre``; NMS at OKS ``oks_thre`` (HRNet code, Sun et al.,
    CVPR 2019). Chapter 02.
    """
    scores = metrics.rescore(predictions["box_score"], predictions["keypoints"][..., 2], in_vis_thre)
    results = []
    for image_id in np.unique(predictions["image_id"]):
        idx = np.flatnonzero(predictions["image_id"] == image_id)
        if nms:
            kept = metrics.oks_nms(predictions["keypoints"][idx], scores[idx], predictions["area"][idx], oks_thre,
                                   sigmas)
            idx = idx[kept]
        results += [{"image_id": int(image_id), "category_id": 1, "score": float(scores[i]),
                     "keypoints": predictions["keypoints"][i].reshape(-1).tolist()} for i in idx]
    return results


def pck_on_boxes(predictions: dict, coco, thr: float = PCK_THRESHOLD,
                 visibility: int | None = None) -> tuple[np.ndarray, float]:
    """PCK of the items cropped from ground-truth boxes: correct within thr x max(w, h) of the person's GT box.

    Items from detector boxes (ann_id < 0) have no ground truth of their own and are left out. ``visibility`` 1 or 2
    counts only the keypoints labelled so (COCO's v=1 occluded, v=2 visible; CPN's hard and easy keypoints);
    None counts every labelled one. Chapter 02.
    """
    if visibility not in (None, 1, 2):
        raise ValueError(f"pck_on_boxes visibility={visibility!r}: expected None (every labelled keypoint), 1 "
                         f"(occluded) or 2 (visible)")
    own = np.flatnonzero(predictions["ann_id"] >= 0)
    gt = predictions["gt"][own]
    norm = np.array([max(coco.anns[int(a)]["bbox"][2:]) for a in predictions["ann_id"][own]])
    mask = gt[..., 2] > 0 if visibility is None else gt[..., 2] == visibility
    return metrics.pck(predictions["keypoints"][own, :, :2], gt[..., :2], mask, norm, thr)


def evaluate(model, dataset, flip_test: bool = True, batch_size: int = 32, device=None, progress: bool = True,
             nms: bool | None = None, in_vis_thre: float = 0.2, oks_thre: float = 0.9,
             shift: bool | None = None) -> dict:
    """COCO keypoint AP/AR of ``model`` on a top-down dataset with a ``coco`` ground truth, plus ``PCK@0.2``.

    ``nms`` None: OKS-NMS for detector boxes (items with ann_id < 0), none for ground-truth boxes (the HRNet code
    runs it for both). ``PCK@0.2`` (see :func:`pck_on_boxes`) is NaN without ground-truth boxes. The flip test
    follows ``dataset.codec.flip_shift`` unless ``shift`` is given. Chapter 02.
    """
    coco = getattr(dataset, "coco", None)
    if coco is None:
        raise ValueError(f"evaluate: {type(dataset).__name__} has no 'coco' ground truth (a pycocotools COCO)")
    predictions = predict_dataset(model, dataset, flip_test, batch_size, device, progress, shift)
    detector_boxes = bool(np.any(predictions["ann_id"] < 0))
    sigmas = dataset.skeleton.sigmas
    results = coco_results(predictions, detector_boxes if nms is None else nms, in_vis_thre, oks_thre, sigmas)
    stats = metrics.coco_eval(coco, results, sigmas=sigmas)
    has_gt = np.any(predictions["ann_id"] >= 0)
    stats["PCK@0.2"] = pck_on_boxes(predictions, coco)[1] if has_gt else float("nan")
    return stats
