"""``python -m posebook.bench data``: how fast the data pipeline makes samples, in one process. Chapter 01.

Measures synthetic scene generation (scenes/s at a few image sizes) and the top-down sample throughput (samples/s,
training augmentation on) of ``SyntheticTopDown`` and of ``CocoKeypoints`` on the real COCO sample in ../shared.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from posebook.bench import _parse_size


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


def _synthetic_topdown():
    from posebook.data import SyntheticTopDown

    return SyntheticTopDown(10**6, seed=0, train=True)


def _coco_keypoints(folder: Path):
    from posebook.data import CocoKeypoints

    ann = folder / "person_keypoints_sample.json"
    if not ann.is_file():
        raise FileNotFoundError(f"no COCO sample at {ann}")
    return CocoKeypoints(ann, folder / "images", train=True, seed=0)


def _report_dataset(name: str, factory, seconds: float) -> None:
    try:
        ds = factory()
    except (ImportError, AttributeError, FileNotFoundError) as err:
        print(f"{name:<17} not available ({err})")
        return
    per_s, per_cpu_s = rate(lambda i: ds[i % len(ds)], seconds)
    h, w = ds.input_size
    print(f"{name:<17} {per_s:8.1f} samples/s  ({per_cpu_s:.1f} per CPU second; input {h}x{w}, "
          f"augmentation on, {len(ds)} items)")


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
    _report_dataset("SyntheticTopDown", _synthetic_topdown, args.seconds)
    _report_dataset("CocoKeypoints", lambda: _coco_keypoints(args.coco), args.seconds)
