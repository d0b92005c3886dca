"""Chapter 05's study: the CPN paper's claims about hard keypoints (Chen et al., CVPR 2018, §4.2), each measured
apart on occluded (v=1) and visible (v=2) keypoints, under protocol 2 (:mod:`posebook.studies.protocol`).

- ``refinenet``: GlobalNet + RefineNet beats GlobalNet alone, and more on the occluded keypoints (Table 3: GlobalNet
  only 66.6, CPN* 68.6 AP; the paper gives no per-keypoint numbers).
- ``ohkm``: online hard keypoint mining on RefineNet's loss (the top M of the 17 per-joint losses of each person)
  beats no mining (M = 17); Table 6 tries M = 6..17 and finds 8 best; M = 4 is trained beside them.
- ``non_local``: a non-local block (Wang et al., CVPR 2018) on C5 gives every position the whole crop as context:
  does it help the occluded keypoints? Not in the CPN paper: the chapter's own question.
- ``vs_simple_baseline``: SimpleBaseline (Xiao et al., ECCV 2018) on the same pretrained ResNet, its deconvolutions
  widened until it costs CPN's real multiply-adds (``posebook.bench.real_macs``), is **as accurate** as CPN: an
  equivalence test (two one-sided Welch tests, margin 0.02 PCK@0.1), for the papers put the two within 2 AP of
  each other (SimpleBaseline-R50 70.4, CPN-R50 68.6 and 69.4 with OHKM).

Each ``*_visible`` claim reads the same runs on the visible keypoints. Every CPN is chapter 05's reference network
(CPN on a ResNet-50 of width 16 with a 64-channel pyramid, its trunk from the shipped pretrained one as the paper's
from ImageNet) trained with the profile's recipe for the same steps from 5 seeds, on CPN's official targets: four
GlobalNet targets (blur kernels 15/11/9/7 scaled to the map) drawn for **visible** joints only and a RefineNet target
(kernel 7) for every labelled joint, peak 255, as tf-cpn's ``network.py`` (``global_label = label * (valid >
1.1)``); the easy/hard split is the chapter's thesis. GlobalNet alone, with nothing after it, is trained on every
labelled joint (asked for the visible ones only it would never learn the hidden ones). SimpleBaseline trains on its
own paper's Gaussian targets (the recipe's, as chapter 04's). Run with ``python -m posebook.study 05``. Chapter 05.
"""
from __future__ import annotations

import torch
from torch import nn

from posebook import models
from posebook.keypoints import COCO
from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import protocol, topdown
from posebook.studies.topdown import TRAIN_SEED, validation_set  # noqa: F401 (the chapters read them here)

CHAPTER = "05_cpn"
GLOBAL_OUTPUTS = 4  # GlobalNet's levels C5, C4, C3, C2; RefineNet's output is the fifth
TARGETS = GLOBAL_OUTPUTS + 1
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4
METRIC = "PCK@0.1"  # read on the occluded (v=1) and the visible (v=2) keypoints apart
MARGIN = 0.02  # vs_simple_baseline: the equivalence margin in PCK@0.1 (the papers: the two within 2 AP)

# Per profile: the networks (chapter 05's reference at cpu size; SimpleBaseline's deconvolutions as wide as make its
# real multiply-adds CPN's: 65.8M each at 96x64 on the cpu sizes, 7.2G at 256x192 on the paper's), the budget and the data. The cpu budget
# fits 30 runs (6 trained variants x 5 seeds) in about 120 one-thread minutes:
# `python -m posebook.study 05 --profile cpu --dry-run` prints the estimate.
SIZES = {
    "smoke": dict(cpn=dict(depth=50, width=4, pyramid_channels=8), baseline=dict(depth=50, width=4, deconv_channels=8),
                  steps=4, train_items=32, val_people=4, curve_people=4, evaluations=2, seeds=(0, 1),
                  pretrained=False),
    "cpu": dict(cpn=dict(depth=50, width=16, pyramid_channels=64),
                baseline=dict(depth=50, width=16, deconv_channels=115), steps=800, train_items=16000,
                val_people=500, curve_people=200, evaluations=3, seeds=(0, 1, 2, 3, 4), pretrained=True),
    "gpu": dict(cpn=dict(depth=50), baseline=dict(depth=50, deconv_channels=408), steps=4000, train_items=16000,
                val_people=500, curve_people=200, evaluations=8, seeds=(0, 1, 2, 3, 4), pretrained=False),
}

PAPER_REFINE = ("Table 3 (§4.2.2, COCO minival, ResNet-50, 256x192): GlobalNet only 66.6 AP (3.90 GFLOPs), + RefineNet "
                "(CPN*, L2) 68.6, + OHKM (CPN) 69.4 (6.20 GFLOPs); no occluded/visible split is given")
PAPER_OHKM = ("Table 6 (§4.2.3, COCO minival, 256x192): top-M of 17 keypoints M = 6 / 8 / 10 / 12 / 14 / 17: 68.8 / "
              "69.4 / 69.0 / 69.0 / 69.0 / 68.6 AP (M = 17 is no mining; M = 4 not tried)")
PAPER_NON_LOCAL = ("not in the CPN paper; Wang et al. (CVPR 2018) add non-local blocks for context in video and "
                   "detection: here a question for the occluded keypoints")
PAPER_BASELINE = ("HRNet's Table 1 (COCO val2017, 256x192), from the SimpleBaseline and CPN papers: SimpleBaseline "
                  "ResNet-50 70.4 AP at 8.9 GFLOPs; CPN ResNet-50 68.6 (69.4 with OHKM) at 6.2 GFLOPs: within 2 AP")


# ---- declarations ------------------------------------------------------------------------------------------------

def config(profile: str, arch: str = "cpn", refine_topk: int = 8, **change) -> dict:
    """One variant's protocol-2 config (:func:`posebook.studies.protocol.recipe_config`): the recipe's data and
    trainer and ``arch``'s network at ``profile``'s size with ``change`` to its keywords. CPN (``refine`` default
    True) takes the official targets (GlobalNet's visible only, RefineNet's every labelled joint, peak 255) and
    ``refine_topk`` for RefineNet's OHKM; GlobalNet alone (``refine=False``) takes every labelled joint in its four
    targets; SimpleBaseline the recipe's Gaussians. Chapter 05."""
    size = SIZES[profile]
    common = dict(pretrained=size["pretrained"], train_items=size["train_items"], val_people=size["val_people"],
                  curve_people=size["curve_people"], evaluations=size["evaluations"])
    if arch == "simple_baseline":
        out = protocol.recipe_config(profile, arch, dict(size["baseline"], **change), size["steps"], **common)
    elif arch == "cpn":
        kwargs = dict(size["cpn"], **dict(dict(refine=True, non_local=False), **change))
        out = protocol.recipe_config(profile, arch, kwargs, size["steps"], targets="cpn", **common)
        out["loss"] = dict(refine_topk=refine_topk)
        if not kwargs["refine"]:  # alone, GlobalNet must learn every labelled joint: nothing after it does
            out["codec"] = dict(out["codec"], visible_only=[False] * TARGETS)
    else:
        raise ValueError(f"studies.cpn: arch={arch!r}; expected 'cpn' or 'simple_baseline'")
    return dict(out, scene=SCENE, max_people=MAX_PEOPLE)


def claims(profile: str) -> list[Claim]:
    """Chapter 05's claims at ``profile``'s size under protocol 2 (the recipe, 5 seeds, 500 validation people, the
    Welch rule; ``vs_simple_baseline`` the equivalence rule), each on occluded keypoints and (``*_visible``) on the
    same runs' visible ones. Chen et al. §4.2."""
    size = SIZES[profile]
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    cpn = Variant("cpn", train, config(profile))
    # each statement names the kind of keypoint it is read on: "{kind}" is "occluded" or "visible"
    variants = {
        "refinenet": ("GlobalNet + RefineNet (CPN) places {kind} keypoints better than GlobalNet alone",
                      PAPER_REFINE, (Variant("globalnet", train, config(profile, refine=False)), cpn),
                      ("cpn", "globalnet"), None),
        "ohkm": ("training RefineNet on the 8 hardest of the 17 keypoints of each person (OHKM, M = 8) places {kind} "
                 "keypoints better than training it on all 17 (M = 17); M = 4, beyond the paper's range, is trained "
                 "beside them",
                 PAPER_OHKM, (Variant("M17", train, config(profile, refine_topk=17)),
                              Variant("M8", of="refinenet/cpn"),
                              Variant("M4", train, config(profile, refine_topk=4))), ("M8", "M17"), None),
        "non_local": ("a non-local block on C5, which lets every position see the whole crop, helps the {kind} "
                      "keypoints", PAPER_NON_LOCAL,
                      (Variant("cpn", of="refinenet/cpn"),
                       Variant("non_local", train, config(profile, non_local=True))), ("non_local", "cpn"), None),
        "vs_simple_baseline": ("SimpleBaseline on the same pretrained ResNet, at CPN's real multiply-adds, places "
                               "{kind} keypoints as well as CPN (within the margin)", PAPER_BASELINE,
                               (Variant("cpn", of="refinenet/cpn"),
                                Variant("simple_baseline", train, config(profile, "simple_baseline"))),
                               ("simple_baseline", "cpn"), MARGIN),
    }
    out = []
    for name, (statement, paper, vs, effect, margin) in variants.items():
        out.append(Claim(CHAPTER, name, f"{statement.format(kind='occluded')} (PCK@0.1 of the occluded keypoints, "
                                        f"v=1)", f"{METRIC}.occluded", paper, vs, effect=effect, margin=margin,
                         **common))
        source = {v.name: (v.of or f"{name}/{v.name}") for v in vs}
        out.append(Claim(CHAPTER, f"{name}_visible",
                         f"{statement.format(kind='visible')} (the same runs, PCK@0.1 of the visible keypoints, v=2)",
                         f"{METRIC}.visible", paper,
                         tuple(Variant(v.name, of=source[v.name], read=f"{METRIC}.visible") for v in vs),
                         effect=effect, margin=margin, **common))
    return out


# ---- model, targets, loss ------------------------------------------------------------------------------------------

def model(config: dict) -> nn.Module:
    """The network of a run, untrained: ``models.create(config["model"], **config["kwargs"])`` (its trunk not
    loaded; :func:`train` loads the pretrained one where the config says). Chapter 05."""
    return models.create(config["model"], num_joints=COCO.num_keypoints, **config["kwargs"])


def _outputs(config: dict) -> list[int]:
    """Which of the five rendered targets the model's outputs take, in its output order (SimpleBaseline: its own
    one)."""
    if config["model"] == "simple_baseline":
        return [0]
    return list(range(GLOBAL_OUTPUTS + (1 if config["kwargs"].get("refine", True) else 0)))


def codecs(config: dict) -> list:
    """The codecs of the model's outputs (CPN: blur kernels 15/11/9/7 for GlobalNet C5..C2 and 7 for RefineNet,
    scaled to the map; SimpleBaseline: its Gaussian); the last decodes. CPN §3.2; chapter 05."""
    settings = topdown.data_settings(config)
    every = topdown.codecs(settings)
    if config["model"] == "simple_baseline":  # one Gaussian (DARK's where the recipe says; else the dataset's)
        from posebook.codecs import GaussianHeatmap

        return [every or GaussianHeatmap(tuple(settings["input_size"]), tuple(settings["heatmap_size"]),
                                         settings["sigma"])]
    return [every[i] for i in _outputs(config)]


def loss(config: dict) -> nn.Module:
    """The official CPN loss (L2 on each GlobalNet level, weight 1/4; OHKM top-M on RefineNet, weight 2; M =
    ``config["loss"]["refine_topk"]``, 17 = no mining), GlobalNet's part alone without RefineNet, each on its
    targets of the five; L2 on its one target for SimpleBaseline. CPN §3.2-3.3; chapter 05."""
    if config["model"] == "simple_baseline":
        return JointsMSELoss()
    indices = _outputs(config)
    bases: list[nn.Module] = [JointsMSELoss() for _ in range(GLOBAL_OUTPUTS)]
    weights = [0.25] * GLOBAL_OUTPUTS
    if len(indices) > GLOBAL_OUTPUTS:
        bases.append(JointsOHKMMSELoss(topk=config["loss"]["refine_topk"]))
        weights.append(2.0)
    return topdown.OutputTargets(MultiOutputLoss(bases, weights=weights), indices, TARGETS)


# ---- data and training ---------------------------------------------------------------------------------------------

def train_set(config: dict):
    """The study's ``config["train_items"]`` training crops with their targets, as a (not rendered)
    ``SyntheticTopDown``: item i is the study's item i. Chapter 05."""
    return topdown.synthetic_train_set(topdown.data_settings(config), config["train_items"])


def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops of ``config``'s targets, rendered once and cached (posebook.studies.topdown).
    Chapter 05."""
    return topdown.training_items("05-train", config, progress)


def scores(net: nn.Module, val) -> dict:
    """COCO AP/AR, PCK@0.2 and PCK@0.1 (all, occluded, visible) and error-kind shares on ``val``
    (posebook.studies.topdown). Chapter 05."""
    return topdown.scores(net, val)[0]


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one network of ``config`` from ``seed`` with the recipe (:func:`posebook.studies.protocol.recipe_run`),
    its trunk pretrained where the config says, on its targets with the paper's loss (:func:`loss`). Chen et al.
    §4.2; chapter 05."""
    torch.manual_seed(seed)
    net = protocol.recipe_model(config)
    return protocol.recipe_run("05-train", config, seed, net, loss(config), progress)


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops of each kind of targets (0 when cached), timed on a few items (process
    time). Chapter 05."""
    total, notes = 0.0, []
    for c in (config(profile), config(profile, refine=False), config(profile, "simple_baseline")):
        seconds, note = topdown.estimate_data("05-train", c)
        total += seconds
        notes.append(note)
    return total, ", ".join(notes)


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data), on
    the CPU with one thread's process time (an upper bound for two threads on a quiet machine). Chapter 05."""
    targets = None if config["model"] == "simple_baseline" else TARGETS
    return protocol.estimate_run(model(config), loss(config), config, targets)
