"""Chapter 04's study: SimpleBaseline's own ablations (Xiao, Wu, Wei, ECCV 2018, Table 1).

- ``deconv_layers``: three deconvolution layers (heatmaps at 1/4 of the input) beat two (1/8): Table 1 (a) against
  (b), 70.4 against 67.9 AP at 256x192.
- ``input_size``: a larger input crop beats a smaller one: Table 1 (g, a, h), 128x96 / 256x192 / 384x288 give
  60.6 / 70.4 / 72.2 AP. Here the recipe's 96x64 against 128x96 (the paper's smallest size), heatmaps at 1/4 in both.

Every variant is chapter 04's reference network (SimpleBaseline on a ResNet-50 of width 16 with 64-channel
deconvolutions, its trunk from the shipped pretrained one as the paper's from ImageNet) trained with the profile's
recipe (:mod:`posebook.recipe`) for the same steps, from 5 seeds, and scored on the studies' validation people by
PCK@0.1 (AP beside it). The two-layer head predicts 1/8 maps, trained on 1/8 targets and decoded there, as the
paper's (b). Run with ``python -m posebook.study 04``. Chapter 04.
"""
from __future__ import annotations

import torch

from posebook.losses import JointsMSELoss
from posebook.study import Claim, Variant
from posebook.studies import protocol, topdown

CHAPTER = "04_simple_baseline"
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4

# Per profile: the network (chapter 04's reference at cpu size), the budget in steps and the sizes compared. The cpu
# budget fits 15 runs (3 variants x 5 seeds; the 128x96 runs cost about twice the others) in about 100 one-thread
# minutes: `python -m posebook.study 04 --profile cpu --dry-run` prints the estimate.
SIZES = {
    "smoke": dict(model=dict(depth=50, width=4, deconv_channels=8), steps=4, train_items=32, val_people=4,
                  curve_people=4, evaluations=2, seeds=(0, 1), larger_input=(96, 64), pretrained=False),
    "cpu": dict(model=dict(depth=50, width=16, deconv_channels=64), steps=1500, train_items=16000, val_people=500,
                curve_people=200, evaluations=3, seeds=(0, 1, 2, 3, 4), larger_input=(128, 96), pretrained=True),
    "gpu": dict(model=dict(depth=50), steps=4000, train_items=16000, val_people=500, curve_people=200,
                evaluations=8, seeds=(0, 1, 2, 3, 4), larger_input=(384, 288), pretrained=False),
}

PAPER_DECONV = ("Table 1 (a, b) (§4.1, COCO val2017, ResNet-50, 256x192, kernel 4): three deconvolution layers "
                "(64x48 heatmaps) 70.4 AP, two layers (32x24) 67.9 AP")
PAPER_INPUT = ("Table 1 (g, a, h) (§4.1, COCO val2017, ResNet-50, three deconvolution layers): input 128x96 / "
               "256x192 / 384x288 gives 60.6 / 70.4 / 72.2 AP")


def config(profile: str, deconv_layers: int = 3, input_size: tuple[int, int] | None = None) -> dict:
    """One variant's protocol-2 config (:func:`posebook.studies.protocol.recipe_config`): the recipe's data and
    trainer, the reference SimpleBaseline with ``deconv_layers`` (its heatmaps at 1/4 of the input with three, 1/8
    with two) and ``input_size`` (default the recipe's). Chapter 04."""
    from posebook.recipe import recipe

    size = SIZES[profile]
    h, w = input_size or recipe(profile).input_size
    stride = 2 ** (5 - deconv_layers)  # the trunk's 1/32, each deconvolution doubling
    return dict(protocol.recipe_config(profile, "simple_baseline", dict(size["model"], deconv_layers=deconv_layers),
                                      size["steps"], pretrained=size["pretrained"], train_items=size["train_items"],
                                      val_people=size["val_people"], curve_people=size["curve_people"],
                                      evaluations=size["evaluations"], input_size=(h, w),
                                      heatmap_size=(h // stride, w // stride)),
                scene=SCENE, max_people=MAX_PEOPLE)


def claims(profile: str) -> list[Claim]:
    """Chapter 04's claims at ``profile``'s size, under protocol 2 (the recipe, 5 seeds, 500 validation people, the
    Welch rule). Xiao et al. Table 1."""
    size = SIZES[profile]
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    larger = tuple(size["larger_input"])
    return [
        Claim(CHAPTER, "deconv_layers",
              "three deconvolution layers, which bring the heatmaps to 1/4 of the input, place keypoints more "
              "precisely than two (heatmaps at 1/8)", "PCK@0.1", PAPER_DECONV,
              (Variant("deconv3", train, config(profile)), Variant("deconv2", train, config(profile, 2))),
              effect=("deconv3", "deconv2"), **common),
        Claim(CHAPTER, "input_size",
              f"a larger input crop ({larger[0]}x{larger[1]}) places keypoints more precisely, relative to the "
              f"person, than the recipe's smaller one", "PCK@0.1", PAPER_INPUT,
              (Variant("recipe", of="deconv_layers/deconv3"),
               Variant(f"input{larger[0]}", train, config(profile, input_size=larger))),
              effect=(f"input{larger[0]}", "recipe"), **common),
    ]


def training_items(config: dict, progress: bool = False):
    """The study's training crops of ``config`` (one set per input and heatmap size), rendered once and cached.
    Chapter 04."""
    return topdown.training_items("04-train", config, progress)


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one SimpleBaseline of ``config`` from ``seed`` with the recipe (:func:`posebook.studies.protocol.recipe_run`): MSE on
    Gaussian heatmaps, the trunk pretrained. Xiao et al. §3; chapter 04."""
    torch.manual_seed(seed)
    net = protocol.recipe_model(config)
    return protocol.recipe_run("04-train", config, seed, net, JointsMSELoss(), progress)


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops of every size (0 when cached), timed on a few items. Chapter 04."""
    total, notes = 0.0, []
    for c in (config(profile), config(profile, 2), config(profile, input_size=SIZES[profile]["larger_input"])):
        seconds, note = topdown.estimate_data("04-train", c)
        total += seconds
        notes.append(note)
    return total, ", ".join(notes)


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one training run of ``config`` (one thread's process time on the CPU). Chapter 04."""
    return protocol.estimate_run(protocol.recipe_model(dict(config, pretrained=False)), JointsMSELoss(), config)
