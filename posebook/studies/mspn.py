"""Chapter 06's study: the MSPN paper's claims about multi-stage networks (Li et al., "Rethinking on Multi-Stage
Networks for Human Pose Estimation", 2019, §3 and its ablations), under protocol 2 (:mod:`posebook.studies.protocol`:
the recipe, 5 seeds, at least 500 validation people, the one-sided Welch rule).

- ``stages``: a 2-stage MSPN beats a 1-stage one trained for the same steps and batch, every stage's trunk from the
  pretrained one (the paper: every stage from ImageNet); the paper's COCO minival AP for 1 / 2 / 3 / 4 stages is
  71.5 / 74.5 / 75.2 / 75.9.
- ``aggregation``: 2 stages with cross-stage feature aggregation beat 2 stages without (``aggregation=False``: the
  next stage still starts from the previous stage's finest upsampling level, but gets no skips).
- ``coarse_to_fine``: the official code's switch for coarse-to-fine supervision (``LOSS.COARSE_TO_FINE``,
  :func:`posebook.models.mspn.kernel_schedule`): with it on, the last stage's kernels are one step sharper (11, 9, 7,
  5 after 15, 11, 9, 7); off, every stage gets 15, 11, 9, 7. The kernels are carried to the profile's heatmap
  (:func:`posebook.codecs.blur.scaled_kernel`); at the cpu recipe's 24x16 map most of them reach the smallest, 3,
  and the switch changes one target of eight (the last stage's coarsest, kernel 5 against 3): the declaration says so.
- ``vs_hourglass``: a 2-stage MSPN beats a 2-stack hourglass (chapter 03) of its real multiply-adds, both trained
  with the recipe for the same steps, each as its own paper trains it: the MSPN from the pretrained trunk on its
  official targets and loss, the hourglass from scratch on the recipe's Gaussians with L2 on each stack. At this
  scale the claim compares two recipes as much as two architectures, and the chapter says so.

Every claim is read on PCK@0.1 of every labelled keypoint (the runs also record AP, PCK@0.2, occluded and visible
keypoints apart and left/right inversions by view). Every MSPN run trains on the same crops, rendered once with every
target a variant needs (:func:`targets`: the L2 targets, drawn for visible joints only, and the OHKM targets, every
labelled joint, at the kernels of both schedules, peak 255 as the official code's); each variant's loss takes its own
outputs' targets (:class:`OutputTargets`). Run with ``python -m posebook.study 06``. Chapter 06.
"""
from __future__ import annotations

import torch
from torch import nn

from posebook import models
from posebook.keypoints import COCO
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.models.mspn import LEVELS, PEAK, TOPK, mspn_codecs, mspn_loss
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import protocol, topdown
from posebook.studies.topdown import TRAIN_SEED, validation_set  # noqa: F401 (the chapter reads them here)

CHAPTER = "06_mspn"
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4
STAGES = 2  # the MSPN the claims are about
METRIC = "PCK@0.1"

# Per profile: the networks (chapter 06's reference, a 2-stage MSPN on ResNet-50 trunks of width 16, at cpu size; the
# paper's at gpu size), the hourglass with the channels whose real multiply-adds come closest to the 2-stage MSPN's
# (cpu 96.5M against 98.2M at 96x64; gpu 11.22G against 11.26G at 256x192), the budget and the data. The cpu budget
# fits 20 runs (4 trained variants x 5 seeds) in about 120 one-thread minutes:
# `python -m posebook.study 06 --profile cpu --dry-run` prints the estimate.
SIZES = {
    "smoke": dict(mspn=dict(width=4), hourglass=dict(channels=16, order=2), steps=4, train_items=32, val_people=4,
                  curve_people=4, evaluations=2, seeds=(0, 1), pretrained=False),
    "cpu": dict(mspn=dict(width=16), hourglass=dict(channels=88, order=3), steps=500, train_items=16000,
                val_people=500, curve_people=200, evaluations=3, seeds=(0, 1, 2, 3, 4), pretrained=True),
    "gpu": dict(mspn=dict(), hourglass=dict(channels=344, order=4), steps=4000, train_items=16000, val_people=500,
                curve_people=200, evaluations=8, seeds=(0, 1, 2, 3, 4), pretrained=False),
}

PAPER_STAGES = ("official README and the paper's stage ablation (COCO minival, ResNet-50 per stage, 256x192): MSPN "
                "with 1 / 2 / 3 / 4 stages 71.5 / 74.5 / 75.2 / 75.9 AP at 4.4 / 9.6 / 14.7 / 19.9 GFLOPs")
PAPER_COMPONENTS = ("the paper's component ablation (COCO minival): 2-stage MSPN base 73.3, +CTF 74.2, +CTF+CSFA "
                    "74.5 AP; Hourglass (stage count not stated; its base equals the 4-stage hourglass of the stage "
                    "ablation) base 71.3, +CTF 72.5, +CTF+CSFA 73.0 (table number not known)")
PAPER_SHIFT = PAPER_COMPONENTS + ("; the official code's switch for coarse-to-fine supervision "
                                  "(LOSS.COARSE_TO_FINE) shifts only the last stage's kernels one step sharper")
PAPER_HOURGLASS = ("the paper's stage ablation (COCO minival, 256x192): Hourglass with 2 stages 70.9 AP at 6.2 "
                   "GFLOPs against 2-stage MSPN 74.5 at 9.6; at about equal FLOPs, 8-stage Hourglass 71.6 (19.5 G) "
                   "against 4-stage MSPN 75.9 (19.9 G)")


# ---- declarations ------------------------------------------------------------------------------------------------

def _kernel_scale(profile: str) -> float:
    from posebook.recipe import recipe

    return recipe(profile).kernel_scale


def schedule(profile: str, stages: int = STAGES, coarse_to_fine: bool = True) -> list[list[int]]:
    """Each stage's four kernels, coarse level to fine, carried to ``profile``'s heatmap
    (:func:`posebook.models.mspn.kernel_schedule` with the official switch ``coarse_to_fine``; 15, 11, 9, 7 become
    5, 3, 3, 3 at the cpu recipe's 24x16 map). Li et al. 2019, §3; chapter 06."""
    codecs = mspn_codecs(stages, coarse_to_fine=coarse_to_fine, kernel_scale=_kernel_scale(profile))
    return [[c.kernel for c in codecs[s * LEVELS:(s + 1) * LEVELS]] for s in range(stages)]


def targets(profile: str) -> tuple[tuple[int, bool], ...]:
    """The (kernel, visible_only) targets the study's MSPN data carries at ``profile``'s heatmap: every L2 target
    (coarser levels, visible joints only) and OHKM target (the finest level, every labelled joint) of both schedules,
    the full model's final target (the one that decodes) last. Chapter 06."""
    needed = []
    for coarse_to_fine in (False, True):
        for kernels in schedule(profile, STAGES, coarse_to_fine):
            needed += [(k, level < LEVELS - 1) for level, k in enumerate(kernels)]
    final = needed[-1]
    unique = sorted(set(needed) - {final}, key=lambda t: (not t[1], -t[0]))
    return tuple(unique) + (final,)


def config(profile: str, arch: str = "mspn", stages: int = STAGES, aggregation: bool = True,
           coarse_to_fine: bool = True) -> dict:
    """One variant's protocol-2 config (:func:`posebook.studies.protocol.recipe_config`): the recipe's data and
    trainer and ``arch``'s network at ``profile``'s size. MSPN (its trunks pretrained where the profile says) trains
    on the study's targets (:func:`targets`, peak 255) with the kernels ``loss["kernels"]`` of the official schedule
    (``coarse_to_fine``: the official switch); the hourglass from scratch on the recipe's Gaussians. Chapter 06."""
    size = SIZES[profile]
    common = dict(train_items=size["train_items"], val_people=size["val_people"], curve_people=size["curve_people"],
                  evaluations=size["evaluations"])
    if arch == "mspn":
        kwargs = dict(size["mspn"], stages=stages, aggregation=aggregation)
        out = protocol.recipe_config(profile, "mspn", kwargs, size["steps"], targets="mspn",
                                     pretrained=size["pretrained"], **common)
        every = targets(profile)
        out["codec"] = dict(kernels=[k for k, _ in every], visible_only=[v for _, v in every], clamp=False,
                            decode_kernel=out["codec"]["decode_kernel"], peak=PEAK)
        out["loss"] = dict(kernels=schedule(profile, stages, coarse_to_fine), topk=TOPK)
    elif arch == "hourglass":
        kwargs = dict(size["hourglass"], stacks=stages)
        out = protocol.recipe_config(profile, "hourglass", kwargs, size["steps"], **common)
    else:
        raise ValueError(f"studies.mspn: arch={arch!r}; expected 'mspn' or 'hourglass'")
    return dict(out, scene=SCENE, max_people=MAX_PEOPLE)


def claims(profile: str) -> list[Claim]:
    """Chapter 06's claims at ``profile``'s size under protocol 2, each on PCK@0.1 of every labelled keypoint.
    Li et al. 2019, §3; chapter 06."""
    size = SIZES[profile]
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    two = Variant("two_stages", train, config(profile))
    full = "stages/two_stages"
    on, off = schedule(profile), schedule(profile, coarse_to_fine=False)

    def kernels(s):
        return ", then ".join("/".join(map(str, k)) for k in s)

    return [
        Claim(CHAPTER, "stages", "a 2-stage MSPN places keypoints better than a 1-stage one trained for the same "
                                 "steps and batch, every stage's trunk pretrained", METRIC, PAPER_STAGES,
              (Variant("one_stage", train, config(profile, stages=1)), two), effect=("two_stages", "one_stage"),
              **common),
        Claim(CHAPTER, "aggregation", "2 stages with cross-stage feature aggregation place keypoints better than 2 "
                                      "stages without it", METRIC, PAPER_COMPONENTS,
              (Variant("no_aggregation", train, config(profile, aggregation=False)), Variant("two_stages", of=full)),
              effect=("two_stages", "no_aggregation"), **common),
        Claim(CHAPTER, "coarse_to_fine", f"2 stages supervised with the official coarse-to-fine switch on (kernels "
                                         f"{kernels(on)} at this heatmap) place keypoints better than with it off "
                                         f"({kernels(off)})", METRIC, PAPER_SHIFT,
              (Variant("no_shift", train, config(profile, coarse_to_fine=False)), Variant("two_stages", of=full)),
              effect=("two_stages", "no_shift"), **common),
        Claim(CHAPTER, "vs_hourglass", "a 2-stage MSPN (pretrained trunks, its official targets) places keypoints "
                                       "better than a 2-stack hourglass of its real multiply-adds (from scratch, "
                                       "Gaussian targets), both trained with the recipe for the same steps", METRIC,
              PAPER_HOURGLASS, (Variant("hourglass", train, config(profile, arch="hourglass")),
                                Variant("two_stages", of=full)), effect=("two_stages", "hourglass"), **common),
    ]


# ---- model, targets, loss ------------------------------------------------------------------------------------------

def model(config: dict) -> nn.Module:
    """The network of a run, untrained: ``models.create(config["model"], **config["kwargs"])`` (its trunks not
    loaded; :func:`train` loads the pretrained one where the config says). Li et al. 2019, §3; chapter 06."""
    return models.create(config["model"], num_joints=COCO.num_keypoints, **config["kwargs"])


def rendered(config: dict) -> tuple[tuple[int, bool], ...]:
    """The (kernel, visible_only) targets an MSPN config's data carries, in the data's order (:func:`targets`)."""
    codec = config["codec"]
    return tuple(zip(codec["kernels"], codec["visible_only"]))


def target_indices(config: dict) -> list[int]:
    """Which of the rendered targets each output of an MSPN takes, in output order: per stage the L2 targets
    (visible joints) of its three coarser kernels and the OHKM target (every labelled joint) of its finest. Li et al.
    2019, §3 (coarse-to-fine supervision); chapter 06."""
    if config["model"] != "mspn":
        raise ValueError(f"mspn study: target_indices is for the MSPN's data; {config['model']!r} trains on one "
                         f"Gaussian target")
    carried, indices = rendered(config), []
    for kernels in config["loss"]["kernels"]:
        for level, k in enumerate(kernels):
            want = (k, level < len(kernels) - 1)
            if want not in carried:
                raise ValueError(f"mspn study: no rendered target has kernel {k} with visible_only={want[1]}; the "
                                 f"data carries {carried}")
            indices.append(carried.index(want))
    return indices


def codecs(config: dict) -> list:
    """The codecs of the model's outputs, in output order, the last decodes (the hourglass: the recipe's one
    Gaussian, DARK's, for every stack). Li et al. 2019, §3; chapter 06."""
    every = topdown.codecs(topdown.data_settings(config))
    if config["model"] == "hourglass":
        return [every] * config["kwargs"]["stacks"]
    return [every[i] for i in target_indices(config)]


def loss(config: dict) -> nn.Module:
    """MSPN: the official loss (``mspn_loss``: per stage L2 on the three coarser outputs x 1/4, OHKM top 8 on the
    finest) on its targets of the study's data; the hourglass: its own ``MultiOutputLoss(JointsMSELoss())``, L2 on
    every stack against the one Gaussian target. Li et al. 2019, §3; Newell et al. §3.3; chapter 06."""
    if config["model"] == "hourglass":
        return MultiOutputLoss(JointsMSELoss())
    base = mspn_loss(config["kwargs"]["stages"], config["loss"]["topk"])
    return topdown.OutputTargets(base, target_indices(config), len(rendered(config)))


# ---- data and training ---------------------------------------------------------------------------------------------

def train_set(config: dict):
    """The study's ``config["train_items"]`` training crops with their targets, as a (not rendered)
    ``SyntheticTopDown``: item i is the study's item i. MSPN (Li et al. 2019) study; chapter 06."""
    return topdown.synthetic_train_set(topdown.data_settings(config), config["train_items"])


def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops of ``config``'s targets, rendered once and cached (posebook.studies.topdown).
    MSPN (Li et al. 2019) study; chapter 06."""
    return topdown.training_items("06-train", config, progress)


def scores(net: nn.Module, val) -> dict:
    """COCO AP/AR, PCK@0.2 and PCK@0.1 (all, occluded, visible) and error-kind shares on ``val``
    (posebook.studies.topdown). MSPN (Li et al. 2019) study; chapter 06."""
    return topdown.scores(net, val)[0]


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one network of ``config`` from ``seed`` with the recipe (:func:`posebook.studies.protocol.recipe_run`),
    its trunks pretrained where the config says, on its targets with its paper's loss (:func:`loss`). Li et al.
    2019, §3; chapter 06."""
    torch.manual_seed(seed)
    net = protocol.recipe_model(config)
    return protocol.recipe_run("06-train", config, seed, net, loss(config), progress)


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops of each kind of targets (0 when cached), timed on a few items (process
    time). MSPN (Li et al. 2019) study; chapter 06."""
    total, notes = 0.0, []
    for c in (config(profile), config(profile, "hourglass")):
        seconds, note = topdown.estimate_data("06-train", c)
        total += seconds
        notes.append(note)
    return total, ", ".join(notes)


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data), on
    the CPU with one thread's process time (an upper bound for two threads on a quiet machine). MSPN (Li et al.
    2019) study; chapter 06."""
    carried = None if config["model"] == "hourglass" else len(rendered(config))
    return protocol.estimate_run(model(config), loss(config), config, carried)
