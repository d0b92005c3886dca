"""``python -m posebook.bench data``: how fast the data pipeline makes samples, in one process. Chapter 01.

Measures synthetic scene generation (scenes/s at a few image sizes) and the top-down sample throughput (samples/s,
training augmentation on) of ``SyntheticTopDown`` and, on the real COCO sample in ../shared, of ``CocoKeypoints``
(with and without its image cache) beside :class:`OfficialTopDown`, a re-implementation of the steps of the official
HRNet loader (HRNet's official ``lib/dataset/JointsDataset.py``) on the same people, timed in turns in the same run, with their ratio.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posebook.argtypes import input_size as _parse_size


def rate(make_item, seconds: float, min_items: int = 3) -> tuple[float, float]:
    """Items per wall-clock second and per CPU second of ``make_item(i)``, i = 0, 1, ..., over about ``seconds``.

    Both are given because on a shared machine the wall-clock rate also measures the other processes.
    """
    make_item(0)  # warm-up: imports, caches
    start, cpu, count = time.perf_counter(), time.process_time(), 0
    while count < min_items or time.perf_counter() - start < seconds:
        make_item(count + 1)
        count += 1
    return count / (time.perf_counter() - start), count / max(time.process_time() - cpu, 1e-9)


def default_coco_sample() -> Path:
    """``$POSEBOOK_SHARED/data/coco_sample``, else ``../shared/data/coco_sample`` beside the repository."""
    shared = os.environ.get("POSEBOOK_SHARED") or Path(__file__).resolve().parents[3] / "shared"
    return Path(shared) / "data" / "coco_sample"


def rates_in_turns(makers: dict, seconds: float, turns: int = 3, min_items: int = 3) -> dict:
    """:func:`rate` of several ``make_item`` functions, measured in ``turns`` alternating slices of ``seconds /
    turns`` each, so that a change in the machine's load falls on all of them. Returns name -> (per s, per CPU s)."""
    counts = dict.fromkeys(makers, 0)
    wall, cpu = dict.fromkeys(makers, 0.0), dict.fromkeys(makers, 0.0)
    for make_item in makers.values():
        make_item(0)  # warm-up: imports, caches
    for _ in range(turns):
        for name, make_item in makers.items():
            start, cpu_start, count = time.perf_counter(), time.process_time(), 0
            while count < min_items or time.perf_counter() - start < seconds / turns:
                make_item(counts[name] + count + 1)
                count += 1
            counts[name] += count
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - cpu_start
    return {name: (counts[name] / wall[name], counts[name] / max(cpu[name], 1e-9)) for name in makers}


class OfficialTopDown:
    """The official HRNet training loader's steps, written out for timing (``JointsDataset.__getitem__``, §1.6).

    Per item: a deep copy of the record, ``cv2.imread`` of the file and BGR -> RGB, the half-body / scale / rotation
    / flip draws from numpy's and Python's generators, a flip by a reversed view and a joint loop, the three-point
    ``cv2.getAffineTransform``, ``cv2.warpAffine`` to the input size, ToTensor + Normalize in torch, and the
    per-joint Gaussian target loop (``generate_target``). Built on the records of a dataset, so both time the same
    people. Only the benchmark uses it; chapter 01.
    """

    def __init__(self, dataset, seed: int = 0, scale_factor: float = 0.35, rotation_factor: float = 45.0,
                 half_body_prob: float = 0.3, half_body_joints: int = 8, sigma: float = 2.0):
        self.db = [{"image": str(r.image), "center": np.array(r.center, dtype=np.float64),
                    "scale": np.array(r.scale, dtype=np.float64),
                    "joints_3d": np.concatenate([r.keypoints[:, :2], np.zeros((len(r.keypoints), 1))], 1),
                    "joints_3d_vis": np.repeat((r.keypoints[:, 2:3] > 0).astype(np.float64), 3, axis=1)}
                   for r in dataset.records]
        self.num_joints = dataset.skeleton.num_keypoints
        self.flip_pairs = [tuple(pair) for pair in dataset.skeleton.flip_pairs]
        self.upper_body_ids = set(dataset.skeleton.upper_body)
        self.image_size = np.array([dataset.input_size[1], dataset.input_size[0]])  # (w, h), as the official yaml
        self.heatmap_size = np.array([dataset.heatmap_size[1], dataset.heatmap_size[0]])
        self.aspect_ratio = self.image_size[0] / self.image_size[1]
        self.scale_factor, self.rotation_factor = scale_factor, rotation_factor
        self.half_body_prob, self.half_body_joints, self.sigma = half_body_prob, half_body_joints, sigma
        self.np_random, self.py_random = np.random.RandomState(seed), random.Random(seed)
        self.mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
        self.std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]

    def __len__(self) -> int:
        return len(self.db)

    def _half_body(self, joints, joints_vis):
        upper = [joints[j] for j in range(self.num_joints) if joints_vis[j][0] > 0 and j in self.upper_body_ids]
        lower = [joints[j] for j in range(self.num_joints) if joints_vis[j][0] > 0 and j not in self.upper_body_ids]
        chosen = upper if self.np_random.randn() < 0.5 and len(upper) > 2 else (lower if len(lower) > 2 else upper)
        if len(chosen) < 2:
            return None, None
        chosen = np.array(chosen, dtype=np.float32)
        center = chosen.mean(axis=0)[:2]
        w, h = chosen.max(axis=0)[:2] - chosen.min(axis=0)[:2]
        if w > self.aspect_ratio * h:
            h = w / self.aspect_ratio
        elif w < self.aspect_ratio * h:
            w = h * self.aspect_ratio
        return center, np.array([w / 200.0, h / 200.0], dtype=np.float32) * 1.5

    def _flip(self, joints, joints_vis, width):
        joints[:, 0] = width - joints[:, 0] - 1
        for a, b in self.flip_pairs:
            joints[a, :], joints[b, :] = joints[b, :], joints[a, :].copy()
            joints_vis[a, :], joints_vis[b, :] = joints_vis[b, :], joints_vis[a, :].copy()
        return joints * joints_vis, joints_vis

    @staticmethod
    def _affine(center, scale, rotation, size):
        box_w = scale[0] * 200.0
        angle = math.pi * rotation / 180
        sin, cos = math.sin(angle), math.cos(angle)
        up = np.array([0.0, -0.5 * box_w])
        src = np.zeros((3, 2), dtype=np.float32)
        dst = np.zeros((3, 2), dtype=np.float32)
        src[0] = center
        src[1] = center + np.array([up[0] * cos - up[1] * sin, up[0] * sin + up[1] * cos])
        dst[0] = [size[0] * 0.5, size[1] * 0.5]
        dst[1] = dst[0] + np.array([0.0, -0.5 * size[0]])
        for pts in (src, dst):  # the third point: the second turned 90 degrees about the first
            d = pts[0] - pts[1]
            pts[2] = pts[1] + np.array([-d[1], d[0]])
        return cv2.getAffineTransform(src, dst)

    def _target(self, joints, joints_vis):
        weight = joints_vis[:, :1].astype(np.float32).copy()
        target = np.zeros((self.num_joints, self.heatmap_size[1], self.heatmap_size[0]), dtype=np.float32)
        radius = self.sigma * 3
        stride = self.image_size / self.heatmap_size
        for j in range(self.num_joints):
            mu_x, mu_y = int(joints[j][0] / stride[0] + 0.5), int(joints[j][1] / stride[1] + 0.5)
            ul = [int(mu_x - radius), int(mu_y - radius)]
            br = [int(mu_x + radius + 1), int(mu_y + radius + 1)]
            if ul[0] >= self.heatmap_size[0] or ul[1] >= self.heatmap_size[1] or br[0] < 0 or br[1] < 0:
                weight[j] = 0
                continue
            size = 2 * radius + 1
            x = np.arange(0, size, 1, np.float32)
            y = x[:, None]
            c = size // 2
            g = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * self.sigma ** 2))
            gx = max(0, -ul[0]), min(br[0], self.heatmap_size[0]) - ul[0]
            gy = max(0, -ul[1]), min(br[1], self.heatmap_size[1]) - ul[1]
            ix = max(0, ul[0]), min(br[0], self.heatmap_size[0])
            iy = max(0, ul[1]), min(br[1], self.heatmap_size[1])
            if weight[j] > 0.5:
                target[j][iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
        return target, weight

    def __getitem__(self, idx: int):
        rec = copy.deepcopy(self.db[idx])
        image = cv2.imread(rec["image"], cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        joints, joints_vis = rec["joints_3d"], rec["joints_3d_vis"]
        c, s = rec["center"], rec["scale"]
        if np.sum(joints_vis[:, 0]) > self.half_body_joints and self.np_random.rand() < self.half_body_prob:
            hc, hs = self._half_body(joints, joints_vis)
            if hc is not None:
                c, s = hc, hs
        sf, rf = self.scale_factor, self.rotation_factor
        s = s * np.clip(self.np_random.randn() * sf + 1, 1 - sf, 1 + sf)
        r = np.clip(self.np_random.randn() * rf, -rf * 2, rf * 2) if self.py_random.random() <= 0.6 else 0
        if self.py_random.random() <= 0.5:
            image = image[:, ::-1, :]
            joints, joints_vis = self._flip(joints, joints_vis, image.shape[1])
            c[0] = image.shape[1] - c[0] - 1
        trans = self._affine(c, s, r, self.image_size)
        patch = cv2.warpAffine(image, trans, (int(self.image_size[0]), int(self.image_size[1])),
                               flags=cv2.INTER_LINEAR)
        tensor = torch.from_numpy(patch.transpose((2, 0, 1))).contiguous().float().div(255)
        tensor = tensor.sub_(self.mean).div_(self.std)
        for j in range(self.num_joints):
            if joints_vis[j, 0] > 0.0:
                joints[j, 0:2] = trans @ np.array([joints[j, 0], joints[j, 1], 1.0])
        target, weight = self._target(joints, joints_vis)
        return tensor, torch.from_numpy(target), torch.from_numpy(weight), {"center": c, "scale": s, "rotation": r}


@contextlib.contextmanager
def one_thread():
    """Run torch and OpenCV on one thread, as in a data-loader worker (torch sets 1 there), then restore both.

    On a busy 2-core machine torch's thread pool alone can make a 256 x 192 normalisation 30x slower."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


def _coco_keypoints(folder: Path, **options):
    from posebook.data.coco import CocoKeypoints

    ann = folder / "person_keypoints_sample.json"
    if not ann.is_file():
        raise FileNotFoundError(f"no COCO sample at {ann}")
    return CocoKeypoints(ann, folder / "images", train=True, seed=0, **options)


def _line(name: str, per_s: float, per_cpu_s: float, ds) -> str:
    h, w = ds.input_size
    return (f"{name:<17} {per_s:8.1f} samples/s  ({per_cpu_s:.1f} per CPU second; input {h}x{w}, "
            f"augmentation on, {len(ds)} items)")


def _report_synthetic(seconds: float) -> None:
    from posebook.data.synthetic_topdown import SyntheticTopDown

    ds = SyntheticTopDown(10**6, seed=0, train=True)
    print(_line("SyntheticTopDown", *rate(lambda i: ds[i % len(ds)], seconds), ds))


def _report_coco(folder: Path, seconds: float) -> None:
    try:
        cached = _coco_keypoints(folder)
    except FileNotFoundError as err:
        print(f"{'CocoKeypoints':<17} not available ({err})")
        return
    uncached = _coco_keypoints(folder, image_cache_mb=0)
    # a cache of one photo, the people of a photo one after another (Trainer(order="images")): the sample holds all
    # its photos in any cache, full COCO does not, so this is the figure that carries over to a full COCO epoch
    one_photo = _coco_keypoints(folder, image_cache_mb=1)
    keys = one_photo.image_keys()
    photo_order = sorted(range(len(keys)), key=lambda i: keys[i])
    official = OfficialTopDown(cached)
    n = len(cached)
    with one_thread():
        rates = rates_in_turns({"official": lambda i: official[i % n], "cached": lambda i: cached[i % n],
                                "uncached": lambda i: uncached[i % n],
                                "photos": lambda i: one_photo[photo_order[i % n]]}, 4 * seconds)
    print(_line("CocoKeypoints", *rates["photos"], one_photo) + " people of a photo together, 1 MB image cache")
    print(_line("  whole sample cached", *rates["cached"], cached)
          + f" image cache {cached.image_cache.max_bytes >> 20} MB")
    print(_line("  no image cache", *rates["uncached"], uncached))
    print(_line("HRNet's steps", *rates["official"], cached) + " (OfficialTopDown: the official loader's steps)")
    ratio = {k: (rates[k][0] / rates["official"][0], rates[k][1] / rates["official"][1]) for k in rates}
    print(f"CocoKeypoints / HRNet's steps: {ratio['photos'][0]:.2f}x per second, {ratio['photos'][1]:.2f}x per CPU "
          f"second with a photo's people together ({n} people in {len(set(keys))} photos; COCO train2017 has 2.7 "
          f"labelled people per photo); whole sample cached {ratio['cached'][0]:.2f}x; no cache "
          f"{ratio['uncached'][0]:.2f}x, {ratio['uncached'][1]:.2f}x (one thread each, as a data-loader worker; "
          "measured in turns, same run)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m posebook.bench data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each measurement")
    parser.add_argument("--sizes", type=_parse_size, nargs="+", default=[(256, 256), (384, 384)],
                        help="synthetic image sizes H x W")
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--coco", type=Path, default=default_coco_sample(), help="COCO sample folder")
    args = parser.parse_args(argv)
    from posebook.data.synthetic import render_scene

    for h, w in args.sizes:
        per_s, per_cpu_s = rate(lambda i: render_scene([0, i], (h, w), args.max_people), args.seconds)
        print(f"synthetic scenes  {per_s:8.1f} scenes/s   ({per_cpu_s:.1f} per CPU second; image {h}x{w}, "
              f"1..{args.max_people} people)")
    _report_synthetic(args.seconds)
    _report_coco(args.coco, args.seconds)
