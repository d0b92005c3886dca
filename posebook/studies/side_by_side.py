"""Chapter 09's study: every top-down architecture of the book trained with one recipe, one budget and one synthetic
split, and the orderings of the papers' COCO tables tested on it.

Each variant is one chapter's reference network at the profile's size, exactly as that chapter's own study declares
it (:func:`posebook.studies.stacked_hourglass.config`, ``simple_baseline``, ``cpn``, ``mspn``, ``hrnet``), with its
paper's targets and loss and its trunk pretrained where its chapter's is (SimpleBaseline, CPN and MSPN start from the
shipped ResNet trunk, as their papers from ImageNet; the hourglass and HRNet start from scratch: the hourglass paper
does, and the book ships no HRNet trunk); only the budget is replaced by this study's, the same for all: ``steps`` of
the recipe's batch (:mod:`posebook.recipe`), scored on the same 500 validation people. Every run records AP, PCK@0.1
(occluded and visible apart), left/right inversions by view, real multiply-adds and parameters, and a learning curve
with the training throughput of every logged window (``samples_per_s``), from which the chapter draws curves per
CPU-minute.

The claims are the orderings the papers' COCO tables report (the HRNet paper's Table 1, CPN's Table 3, MSPN's
stage table), each read on AP with the one-sided Welch rule:

- ``hrnet_vs_simple_baseline``: HRNet above SimpleBaseline (74.4 against 70.4 AP; 73.4 for HRNet from scratch).
- ``mspn_vs_cpn``: a 2-stage MSPN above CPN (74.5 against 69.4 AP, minival).
- ``cpn_vs_hourglass``: CPN above a 2-stack hourglass (69.4 against 66.5 AP, CPN's Table 3, similar GFLOPs).
- ``simple_baseline_vs_hourglass``: SimpleBaseline above the hourglass (70.4 against 66.5-66.9 AP).

At this budget a comparison is of networks *and* of how fast each learns from the same few thousand crops, pretrained
or not: the chapter says what that does and does not show. Run with ``python -m posebook.study 09``. Chapter 09.
"""
from __future__ import annotations

import torch
from torch import nn

from posebook.losses import JointsMSELoss
from posebook.study import Claim, Variant
from posebook.studies import cpn, hrnet, mspn, protocol, stacked_hourglass, topdown
from posebook.studies import simple_baseline as baseline

CHAPTER = "09_side_by_side"
METRIC = "AP"
ARCHITECTURES = ("hourglass", "simple_baseline", "cpn", "mspn", "hrnet")  # in the order of the book's chapters
CHAPTERS = {"hourglass": "03", "simple_baseline": "04", "cpn": "05", "mspn": "06", "hrnet": "07"}
NAMES = {"hourglass": "Stacked Hourglass (2 stacks)", "simple_baseline": "SimpleBaseline (ResNet-50)",
         "cpn": "CPN (ResNet-50, OHKM)", "mspn": "MSPN (2 stages)", "hrnet": "HRNet"}

# Per profile: the one budget every architecture trains for (steps of the recipe's batch), the curve points and the
# seeds. The cpu budget fits 25 runs (5 architectures x 5 seeds) in about 130 one-thread minutes (two lanes: about
# an hour); `python -m posebook.study 09 --profile cpu --dry-run` prints the estimate.
SIZES = {
    "smoke": dict(steps=4, evaluations=2, seeds=(0, 1)),
    "cpu": dict(steps=500, evaluations=4, seeds=(0, 1, 2, 3, 4)),
    "gpu": dict(steps=4000, evaluations=8, seeds=(0, 1, 2, 3, 4)),
}

PAPER_HRNET_SB = ("HRNet's Table 1 (COCO val2017, 256x192, detector AP 56.4): HRNet-W32 74.4 AP (73.4 trained from "
                  "scratch) against SimpleBaseline ResNet-50 70.4 AP")
PAPER_MSPN_CPN = ("MSPN's stage table (COCO minival, 256x192): 2-stage MSPN 74.5 AP; CPN's Table 3 (minival, "
                  "256x192): CPN ResNet-50 with OHKM 69.4 AP")
PAPER_CPN_HG = ("CPN's Table 3 (COCO minival, 256x192, CPN's detector): CPN ResNet-50 69.4 AP at 6.20 GFLOPs against "
                "a 2-stage hourglass 66.5 AP at 6.14 GFLOPs (8 stages: 66.9 at 19.5)")
PAPER_SB_HG = ("HRNet's Table 1: SimpleBaseline ResNet-50 70.4 AP (val2017) against the 8-stage hourglass 66.9 AP "
               "(minival, from CPN's Table 3; 2 stages: 66.5)")

# The papers' COCO AP of each architecture as this study trains it (2 stacks, ResNet-50, 2 MSPN stages, HRNet-W32), at
# 256x192, with where it was measured: val2017 with the 56.4-AP detector's boxes (HRNet's Table 1) or minival (CPN's
# and MSPN's tables, their own detectors), so the column is a ranking across papers, not one experiment.
PAPER_AP = {
    "hourglass": (66.5, "CPN's Table 3 (minival), 2 stacks at 6.14 GFLOPs; 8 stacks 66.9"),
    "simple_baseline": (70.4, "HRNet's Table 1 (val2017), ResNet-50"),
    "cpn": (69.4, "CPN's Table 3 (minival), ResNet-50 with OHKM"),
    "mspn": (74.5, "MSPN's stage table (minival), 2 stages"),
    "hrnet": (74.4, "HRNet's Table 1 (val2017), W32 from ImageNet; 73.4 from scratch"),
}


def _chapter_config(arch: str, profile: str) -> dict:
    """The variant's network, data and recipe as its own chapter's study declares them."""
    if arch == "hourglass":
        return stacked_hourglass.config(profile)
    if arch == "simple_baseline":
        return baseline.config(profile)
    if arch == "cpn":
        return cpn.config(profile)
    if arch == "mspn":
        return mspn.config(profile)
    if arch == "hrnet":
        return hrnet.config(profile)
    raise ValueError(f"studies.side_by_side: architecture {arch!r} is unknown; expected one of {ARCHITECTURES}")


def config(profile: str, arch: str) -> dict:
    """One architecture's protocol-2 config: its chapter's study config (network, targets, loss, trunk) with this
    study's budget: ``SIZES[profile]["steps"]`` steps, the recipe's warm-up and milestones for them, and
    ``evaluations`` curve points. Chapter 09."""
    from posebook.recipe import recipe

    size = SIZES[profile]
    options = recipe(profile).trainer_options(size["steps"])
    return dict(_chapter_config(arch, profile), steps=size["steps"], warmup=options["warmup_steps"],
                milestones=list(options["milestones"]), evaluations=size["evaluations"])


def claims(profile: str) -> list[Claim]:
    """Chapter 09's claims at ``profile``'s size under protocol 2 (5 seeds, 500 validation people, the Welch rule),
    each on COCO AP: the orderings of the papers' tables. Every architecture trains once per seed; later claims read
    the runs of earlier ones (``of``). Chapter 09."""
    size = SIZES[profile]
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    run = {arch: Variant(arch, train, config(profile, arch)) for arch in ARCHITECTURES}
    return [
        Claim(CHAPTER, "hrnet_vs_simple_baseline",
              "HRNet, which keeps a high-resolution representation through the network, scores a higher AP than "
              "SimpleBaseline, which recovers resolution with deconvolutions, trained with the same recipe and "
              "budget", METRIC, PAPER_HRNET_SB, (run["hrnet"], run["simple_baseline"]),
              effect=("hrnet", "simple_baseline"), **common),
        Claim(CHAPTER, "mspn_vs_cpn",
              "A 2-stage MSPN scores a higher AP than CPN on the same trunk, trained with the same recipe and budget",
              METRIC, PAPER_MSPN_CPN, (run["mspn"], run["cpn"]), effect=("mspn", "cpn"), **common),
        Claim(CHAPTER, "cpn_vs_hourglass",
              "CPN scores a higher AP than a 2-stack hourglass, trained with the same recipe and budget", METRIC,
              PAPER_CPN_HG, (Variant("cpn", of="mspn_vs_cpn/cpn"), run["hourglass"]), effect=("cpn", "hourglass"),
              **common),
        Claim(CHAPTER, "simple_baseline_vs_hourglass",
              "SimpleBaseline scores a higher AP than a 2-stack hourglass, trained with the same recipe and budget",
              METRIC, PAPER_SB_HG,
              (Variant("simple_baseline", of="hrnet_vs_simple_baseline/simple_baseline"),
               Variant("hourglass", of="cpn_vs_hourglass/hourglass")),
              effect=("simple_baseline", "hourglass"), **common),
    ]


def variant_of(arch: str) -> str:
    """The ``claim/variant`` whose runs are ``arch``'s (each architecture trains in one claim). Chapter 09."""
    where = {"hrnet": "hrnet_vs_simple_baseline", "simple_baseline": "hrnet_vs_simple_baseline",
             "mspn": "mspn_vs_cpn", "cpn": "mspn_vs_cpn", "hourglass": "cpn_vs_hourglass"}
    return f"{where[arch]}/{arch}"


# ---- training: each architecture as its chapter trains it -----------------------------------------------------------

def _parts(config: dict) -> tuple[str, nn.Module]:
    """The rendered crops' cache name and the loss of a config's architecture. The Gaussian targets' crops are the
    same for the hourglass, SimpleBaseline and HRNet (one split, one set of settings) and are kept under chapter 03's
    name; CPN's and MSPN's blur targets under their chapters'."""
    model = config["model"]
    if model == "hourglass":
        return "03-train", stacked_hourglass.loss(config)
    if model == "simple_baseline":
        return "03-train", JointsMSELoss()
    if model == "cpn":
        return "05-train", cpn.loss(config)
    if model == "mspn":
        return "06-train", mspn.loss(config)
    if model == "hrnet":
        return "03-train", JointsMSELoss()
    raise ValueError(f"studies.side_by_side: config model {model!r} is unknown; expected one of {ARCHITECTURES}")


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one network of ``config`` from ``seed`` with the recipe (:func:`posebook.studies.protocol.recipe_run`)
    on its chapter's rendered crops, with its chapter's loss, its trunk pretrained where the config says. Chapter 09.
    """
    name, loss_fn = _parts(config)
    torch.manual_seed(seed)
    net = protocol.recipe_model(config)
    return protocol.recipe_run(name, config, seed, net, loss_fn, progress)


def training_minutes(curves: list[dict], batch_size: int) -> list[tuple[int, float]]:
    """(step, training minutes so far) at every curve point of a record, from the throughput of each logged window
    (``samples_per_s``; the time spent scoring the curve points is not counted). Chapter 09."""
    out, minutes, last = [], 0.0, 0
    for point in curves:
        if "samples_per_s" in point and point["step"] > last:
            minutes += (point["step"] - last) * batch_size / point["samples_per_s"] / 60
            last = point["step"]
        out.append((point["step"], minutes))
    return out


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render every architecture's training crops (0 when its chapter's are cached). Chapter 09."""
    total, notes = 0.0, []
    for arch in ARCHITECTURES:
        c = config(profile, arch)
        seconds, note = topdown.estimate_data(_parts(c)[0], c)
        total += seconds
        notes.append(f"{arch} {note}")
    return total, ", ".join(notes)


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one training run of ``config`` (one thread's process time on the CPU). Chapter 09."""
    module = {"hourglass": stacked_hourglass, "simple_baseline": baseline, "cpn": cpn, "mspn": mspn,
              "hrnet": hrnet}[config["model"]]
    return module.estimate_run(config, kind)
