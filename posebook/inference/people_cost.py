"""``python -m posebook.bench people``: what one image costs as the people in it multiply, bottom-up against
top-down (review OPENPOSE.md, probe P6).

A bottom-up network (OpenPose) runs once on the whole image, whoever is in it; only its parse (peaks, limb
scores, matching, assembly: :func:`posebook.inference.bottomup.parse_outputs`) grows with the people. A top-down
network (SimpleBaseline) runs once per person, on that person's crop, so its cost is linear in the people. Cao et
al. make this point for OpenPose (TPAMI 2019, Fig. 1 and §5, runtime analysis: OpenPose's runtime stays nearly
constant as the people increase, while the top-down methods' grows linearly with them); the CVPR'17 paper's runtime
analysis (§3.3) gives 0.58 ms of parsing against 99.6 ms of CNN per image on a GPU.

Everything here is timed in one process, in interleaved rounds (:func:`posebook.timing.interleaved_ms`, so a
change in the machine's load slows every part alike), with torch and OpenCV on ``threads`` threads:

* the bottom-up network: one eval-mode forward pass of a (1, 3, H, W) image at its input size (fresh weights):
  one number, the same for every people count;
* the parse: for each people count N, ``scenes`` synthetic scenes (:class:`posebook.data.bottomup.SyntheticBottomUp`
  with exactly N people drawn, at the network's input size) drawn as ground-truth confidence maps and PAFs (the
  official targets, :mod:`posebook.codecs.paf`) and parsed; the median over the scenes. Ground-truth maps, not the
  untrained network's, so that the parse finds the people it would find on a good network's maps (drawing the maps
  is not timed: it is the network's job);
* the top-down network: one eval-mode forward pass of one (1, 3, h, w) crop, counted N times (one crop per person).
  The person detector that top-down needs first is EXCLUDED, as are cutting the crops and decoding their heatmaps:
  the comparison favours top-down.

Per N: bottom-up = network + parse, top-down = N x crop. The crossover is the smallest N measured at which top-down
costs more (:func:`crossover`); the break-even (:func:`break_even`) is where the two lines meet, interpolated
between the people counts measured, or extrapolated beyond them with the parse held at its last value (flagged).
Beside the times, each network's real multiply-adds (:func:`posebook.bench.real_macs`) and their ratio: the
break-even of the arithmetic alone, which no machine's load changes. Chapter 08 (OpenPose).
"""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from typing import Sequence

import cv2
import numpy as np
import torch

from posebook import argtypes, timing

STRIDE = 8
# The networks per size: (bottom-up model, kwargs, input (H, W)), (top-down model, kwargs, crop (H, W))
SIZES = {
    # the papers': OpenPose CVPR'17 (VGG-19 front, 6 stages, 7x7 later convs) at the CMU demo's 368 x 368 against
    # SimpleBaseline-R50 at 256 x 192 (Xiao et al., ECCV 2018; posebook.zoo's rows)
    "paper": (("openpose", {}, (368, 368)), ("simple_baseline", dict(depth=50), (256, 192))),
    # the chapters' CPU networks: chapter 08's trained study (a quarter of the width, 3 stages, 3x3 later convs, the
    # stand-in ResNet front) at 192 px, against chapter 04's reference (ResNet-50 at width 16, 64-channel
    # deconvolutions) at the cpu 96 x 64
    "small": (("openpose", dict(stages=3, width=0.25, later_kernel=3, front="resnet"), (192, 192)),
              ("simple_baseline", dict(depth=50, width=16, deconv_channels=64), (96, 64))),
    # the smoke profile's (tests): seconds in all
    "smoke": (("openpose", dict(stages=2, width=0.25, later_kernel=3), (64, 64)),
              ("simple_baseline", dict(depth=50, width=4, deconv_channels=8), (64, 64))),
}
PEOPLE = (1, 2, 4, 8, 16)
PERSON_HEIGHT = (0.2, 0.6)   # standing height / image side: a crowd's sizes, so that parts stay apart
SEED = 1_000_003             # SyntheticBottomUp.validation's seed
DETECTOR = ("EXCLUDED: top-down also needs a person detector on the whole image (and crops cut, heatmaps decoded); "
            "none of it is timed, which favours top-down")


def crossover(people: Sequence[int], bottomup_ms: Sequence[float], topdown_ms: Sequence[float]) -> int | None:
    """The smallest people count (of those given, in any order) at which top-down costs more than bottom-up
    (``topdown_ms > bottomup_ms``); None when top-down is never the dearer there."""
    rows = sorted(zip(people, bottomup_ms, topdown_ms))
    return next((int(n) for n, bu, td in rows if td > bu), None)


def break_even(people: Sequence[int], bottomup_ms: Sequence[float], crop_ms: float) -> tuple[float, bool]:
    """(N*, extrapolated): the people count at which ``N x crop_ms`` equals the bottom-up cost, taken as piecewise
    linear between the people counts given and constant outside them (the parse held at its first or last value).

    The first crossing from bottom-up's side: if top-down is already the dearer at the smallest count, N* is that
    count's bottom-up cost / crop_ms (below the range); if it never is, the largest count's (above it). Either way
    ``extrapolated`` is True. Since the parse grows with the people, an N* above the range is a lower bound."""
    if crop_ms <= 0:
        raise ValueError(f"break_even: crop_ms must be > 0, got {crop_ms}")
    rows = sorted(zip(people, bottomup_ms))
    if not rows:
        raise ValueError("break_even: no people counts given")
    ns = [float(n) for n, _ in rows]
    bus = [float(bu) for _, bu in rows]
    gap = [n * crop_ms - bu for n, bu in zip(ns, bus)]   # top-down minus bottom-up
    if gap[0] > 0:
        return bus[0] / crop_ms, True
    for i in range(1, len(ns)):
        if gap[i] > 0:  # the sign changes between i - 1 and i: both lines are straight there
            return ns[i - 1] + (ns[i] - ns[i - 1]) * -gap[i - 1] / (gap[i] - gap[i - 1]), False
    return bus[-1] / crop_ms, True


@contextmanager
def _threads(threads: int | None):
    """torch and OpenCV on ``threads`` threads (None: as they are), denormals flushed (fresh weights can make tiny
    activations; a trained network's do not); all restored after."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    flush = torch.set_flush_denormal(True)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)
        if flush:
            torch.set_flush_denormal(False)


def _pair(value, what: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in ((value, value) if np.ndim(value) == 0 else value))
    except (TypeError, ValueError):
        raise ValueError(f"people_cost: {what} must be (H, W), got {value!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"people_cost: {what} must be positive, got {value!r}")
    return h, w


def _scene_maps(n: int, scenes: int, input_size: tuple[int, int], seed: int, person_height) -> list[dict]:
    """``scenes`` scenes of exactly ``n`` people at ``input_size``, as the parse's arguments: ground-truth maps
    (official targets) at 1/8, the matrix image -> input, the image size; and the labelled people drawn."""
    from posebook.data.bottomup import SyntheticBottomUp
    from posebook.data.transforms import affine_points
    from posebook.inference.grouping import _codecs, input_frame

    data = SyntheticBottomUp.validation(scenes, seed=seed, input_size=input_size, image_size=input_size,
                                        min_people=n, max_people=n, person_height=tuple(person_height))
    heat_codec, paf_codec = _codecs(tuple(input_size), "official")
    out = []
    for index, image_id in enumerate(data.image_ids):
        info = data.coco.imgs[image_id]
        image_size = (info["height"], info["width"])
        matrix, size = input_frame(image_size, input_size)
        people = data.people(index)
        drawn = people.copy()
        drawn[..., :2] = affine_points(drawn[..., :2], matrix)
        out.append(dict(heat=heat_codec.encode(drawn), paf=paf_codec.encode(drawn), matrix=matrix,
                        image_size=image_size, labelled=len(people)))
    return out


class _Parse:
    """``parse_outputs`` of one scene's maps as a callable of them, for :func:`posebook.timing.interleaved_ms`;
    remembers how many people the last call found."""

    def __init__(self, scene: dict):
        self.scene, self.found = scene, 0

    def __call__(self, maps):
        from posebook.inference.bottomup import parse_outputs

        poses, _ = parse_outputs(maps[0], maps[1], STRIDE, self.scene["matrix"], self.scene["image_size"])
        self.found = len(poses)


def _median(values) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def people_cost(people: Sequence[int] = PEOPLE, size: str = "paper", bottomup: str | None = None,
                topdown: str | None = None, bottomup_kwargs: dict | None = None, topdown_kwargs: dict | None = None,
                input_size=None, crop_size=None, repeats: int = 3, warmup: int = 1, scenes: int = 5,
                threads: int | None = 1, seed: int = SEED, person_height=PERSON_HEIGHT) -> dict:
    """The cost of one image with N people, bottom-up (one network pass + the parse) against top-down (N crop
    passes, the detector excluded), for each N of ``people``, all timed in this process (module docstring).

    ``size`` picks the networks and their inputs from :data:`SIZES` ("paper", "small", "smoke"); ``bottomup``,
    ``topdown`` (registered model names), their ``*_kwargs``, ``input_size`` and ``crop_size`` (H, W) override
    its choices. ``repeats`` timed interleaved rounds after ``warmup`` untimed ones (medians); ``scenes`` scenes per
    N (the median of their parse times); ``threads``: torch and OpenCV threads while timing (None: as they are),
    restored after; ``seed`` and ``person_height`` (a range, of the image side) draw the scenes.

    Returns a dict: ``bottomup`` and ``topdown`` (model, kwargs, input, params, macs: real multiply-adds, ms and
    cpu_ms of one pass), ``rows`` (per N: people, labelled (mean people with a labelled keypoint in the scenes),
    parsed (mean people the parse kept), network_ms (the same number in every row), parse_ms, bottomup_ms =
    network_ms + parse_ms, crop_ms, topdown_ms = people x crop_ms, and the same in CPU time as ``*_cpu_ms``),
    ``crossover`` / ``crossover_cpu`` (:func:`crossover`, None if none in the range), ``break_even`` /
    ``break_even_cpu`` and ``break_even_extrapolated`` (:func:`break_even`), ``macs_break_even`` (the networks'
    multiply-adds ratio), ``detector`` (it is excluded) and the settings. Chapter 08 (OpenPose).
    """
    from posebook.bench import count_params, real_macs
    from posebook.models import create

    if size not in SIZES:
        raise ValueError(f"people_cost: unknown size {size!r}; expected one of {', '.join(map(repr, SIZES))}")
    counts = list(people)
    if not counts:
        raise ValueError("people_cost: give at least one people count")
    if any(isinstance(n, bool) or int(n) != n or n < 1 for n in counts):
        raise ValueError(f"people_cost: every people count must be an integer >= 1, got {list(people)!r}")
    counts = sorted({int(n) for n in counts})
    for name, value, least in (("repeats", repeats, 1), ("warmup", warmup, 0), ("scenes", scenes, 1)):
        if isinstance(value, bool) or int(value) != value or value < least:
            raise ValueError(f"people_cost: {name} must be an integer >= {least}, got {value!r}")
    if threads is not None and (int(threads) != threads or threads < 1):
        raise ValueError(f"people_cost: threads must be an integer >= 1 or None, got {threads!r}")
    (bu_name, bu_kwargs, bu_size), (td_name, td_kwargs, td_size) = SIZES[size]
    bu_name, td_name = bottomup or bu_name, topdown or td_name
    bu_kwargs = dict(bu_kwargs if bottomup_kwargs is None else bottomup_kwargs)
    td_kwargs = dict(td_kwargs if topdown_kwargs is None else topdown_kwargs)
    bu_size = _pair(bu_size if input_size is None else input_size, "input_size")
    td_size = _pair(td_size if crop_size is None else crop_size, "crop_size")
    if bu_size[0] % STRIDE or bu_size[1] % STRIDE:
        raise ValueError(f"people_cost: input_size must be a multiple of the stride {STRIDE}, got {bu_size}")

    torch.manual_seed(0)
    nets = {"bottomup": create(bu_name, **bu_kwargs).eval(), "topdown": create(td_name, **td_kwargs).eval()}
    generator = torch.Generator().manual_seed(0)
    inputs = {"bottomup": torch.randn(1, 3, *bu_size, generator=generator),
              "topdown": torch.randn(1, 3, *td_size, generator=generator)}
    maps = {n: _scene_maps(n, scenes, bu_size, seed, person_height) for n in counts}
    parses = {n: [_Parse(scene) for scene in maps[n]] for n in counts}

    runs = [(nets["bottomup"], inputs["bottomup"]), (nets["topdown"], inputs["topdown"])]
    runs += [(parse, (scene["heat"], scene["paf"])) for n in counts for parse, scene in zip(parses[n], maps[n])]
    with _threads(threads):
        used_threads = torch.get_num_threads()
        wall, cpu = timing.interleaved_ms(runs, repeats, warmup)

    report = {}
    for k, (key, name, kwargs, shape) in enumerate((("bottomup", bu_name, bu_kwargs, bu_size),
                                                    ("topdown", td_name, td_kwargs, td_size))):
        with torch.device("meta"):  # shapes only: counting needs no arithmetic
            counted = create(name, **kwargs)
        report[key] = dict(model=name, kwargs=kwargs, input=list(shape), params=count_params(nets[key]),
                           macs=real_macs(counted, shape), ms=wall[k], cpu_ms=cpu[k])
    network, crop = report["bottomup"], report["topdown"]
    rows, at = [], 2
    for n in counts:
        parse_wall, parse_cpu = wall[at:at + scenes], cpu[at:at + scenes]
        at += scenes
        parse_ms, parse_cpu_ms = _median(parse_wall), _median(parse_cpu)
        rows.append(dict(people=n, labelled=float(np.mean([s["labelled"] for s in maps[n]])),
                         parsed=float(np.mean([p.found for p in parses[n]])),
                         network_ms=network["ms"], parse_ms=parse_ms, bottomup_ms=network["ms"] + parse_ms,
                         crop_ms=crop["ms"], topdown_ms=n * crop["ms"],
                         network_cpu_ms=network["cpu_ms"], parse_cpu_ms=parse_cpu_ms,
                         bottomup_cpu_ms=network["cpu_ms"] + parse_cpu_ms, crop_cpu_ms=crop["cpu_ms"],
                         topdown_cpu_ms=n * crop["cpu_ms"]))

    def column(key):
        return [r[key] for r in rows]

    even, extrapolated = break_even(counts, column("bottomup_ms"), crop["ms"])
    even_cpu, extrapolated_cpu = break_even(counts, column("bottomup_cpu_ms"), crop["cpu_ms"])
    report.update(
        rows=rows, people=counts,
        crossover=crossover(counts, column("bottomup_ms"), column("topdown_ms")),
        crossover_cpu=crossover(counts, column("bottomup_cpu_ms"), column("topdown_cpu_ms")),
        break_even=even, break_even_extrapolated=extrapolated,
        break_even_cpu=even_cpu, break_even_cpu_extrapolated=extrapolated_cpu,
        macs_break_even=network["macs"] / crop["macs"],
        detector=DETECTOR, size=size, threads=used_threads, repeats=repeats, warmup=warmup, scenes=scenes,
        seed=seed, person_height=list(person_height), targets="official")
    return report


def _macs(value: float) -> str:
    return f"{value / 1e9:.2f}e9" if value >= 1e8 else f"{value / 1e6:.1f}e6"


def text(report: dict) -> str:
    """The report of :func:`people_cost` as a small table."""
    bu, td = report["bottomup"], report["topdown"]
    lines = [
        f"cost as people multiply (size {report['size']}; {report['threads']} thread(s); median of "
        f"{report['repeats']} interleaved round(s) after {report['warmup']}; wall ms, CPU ms in brackets)",
        f"bottom-up  {bu['model']} {json.dumps(bu['kwargs'])} at {bu['input'][0]}x{bu['input'][1]}: one pass "
        f"{bu['ms']:.1f} ms ({bu['cpu_ms']:.1f}), {_macs(bu['macs'])} multiply-adds, whatever the people; "
        f"+ the parse of ground-truth maps (median of {report['scenes']} scenes of exactly N people, "
        f"{report['person_height'][0]}-{report['person_height'][1]} of the image high)",
        f"top-down   {td['model']} {json.dumps(td['kwargs'])} on one {td['input'][0]}x{td['input'][1]} crop: "
        f"{td['ms']:.1f} ms ({td['cpu_ms']:.1f}), {_macs(td['macs'])} multiply-adds, x N people",
        f"detector   {report['detector']}",
        f"{'people':>6} {'labelled':>8} {'parsed':>6} {'parse ms':>16} {'bottom-up ms':>20} {'top-down ms':>20}  "
        f"cheaper",
    ]
    for r in report["rows"]:
        cheaper = "top-down" if r["topdown_ms"] < r["bottomup_ms"] else "bottom-up"
        lines.append(f"{r['people']:>6} {r['labelled']:>8.1f} {r['parsed']:>6.1f} "
                     f"{r['parse_ms']:>7.1f} ({r['parse_cpu_ms']:>6.1f}) "
                     f"{r['bottomup_ms']:>9.1f} ({r['bottomup_cpu_ms']:>8.1f}) "
                     f"{r['topdown_ms']:>9.1f} ({r['topdown_cpu_ms']:>8.1f})  {cheaper}")
    span = f"{report['people'][0]}-{report['people'][-1]}"
    for label, key in (("wall", ""), ("CPU", "_cpu")):
        cross = report[f"crossover{key}"]
        even, extra = report[f"break_even{key}"], report[f"break_even{key}_extrapolated"]
        lines.append(f"crossover ({label}): " + (f"top-down costs more from {cross} people" if cross is not None
                                                 else f"none in {span} people")
                     + f"; break-even {even:.1f} people" + (" (extrapolated, parse held at its end value)"
                                                            if extra else " (interpolated)"))
    lines.append(f"multiply-adds alone (networks only): one bottom-up pass = {report['macs_break_even']:.1f} crops")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """``python -m posebook.bench people``: :func:`people_cost`, printed as a table or, with ``--json``, as one JSON
    object. Returns the report. Chapter 08 (OpenPose)."""
    parser = argparse.ArgumentParser(
        prog="python -m posebook.bench people",
        description="cost of one image as the people multiply: bottom-up (OpenPose: one network pass + the parse, "
                    "measured on ground-truth maps) against top-down (SimpleBaseline: one crop pass per person, the "
                    "person detector EXCLUDED), in one process; prints the crossover people count",
        epilog="sizes: " + "; ".join(f"{k}: {bu[0]} {json.dumps(bu[1])} at {bu[2][0]}x{bu[2][1]} vs {td[0]} "
                                     f"{json.dumps(td[1])} at {td[2][0]}x{td[2][1]}" for k, (bu, td) in SIZES.items()))
    parser.add_argument("--people", type=argtypes.positive_int, nargs="+", default=list(PEOPLE),
                        help="people counts N (default: 1 2 4 8 16)")
    parser.add_argument("--size", choices=tuple(SIZES), default="paper",
                        help="the networks and inputs (default paper: OpenPose CVPR'17 at 368x368 vs "
                             "SimpleBaseline-R50 at 256x192)")
    parser.add_argument("--repeats", type=argtypes.positive_int, default=3,
                        help="timed interleaved rounds, median reported (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--scenes", type=argtypes.positive_int, default=5,
                        help="scenes per people count, median parse time (default 5)")
    parser.add_argument("--threads", type=argtypes.positive_int, default=1,
                        help="torch and OpenCV threads while timing (default 1)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"scene seed (default {SEED})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    report = people_cost(args.people, size=args.size, repeats=args.repeats, warmup=args.warmup, scenes=args.scenes,
                         threads=args.threads, seed=args.seed)
    print(json.dumps(report) if args.json else text(report))
    return report
