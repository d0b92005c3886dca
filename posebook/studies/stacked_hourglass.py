"""Chapter 03's study: the Stacked Hourglass paper's claims (Newell, Yang, Deng, ECCV 2016, §4.2), under protocol 2
(:mod:`posebook.studies.protocol`: the recipe, 5 seeds, at least 500 validation people, the one-sided Welch rule).

- ``intermediate_supervision``: the same 2-stack network trained with every stack supervised beats it trained with
  only the last one supervised (HG-Stacked-Int against HG-Stacked, Fig. 8).
- ``supervision_gradient`` (probe): on a fixed batch at initialisation, supervision puts more gradient into the
  first stack's parameters.
- ``stacking_width``: at equal width (the same channels in every stack), 2 stacks beat 1: the second stack is extra
  computation on top of the first.
- ``stacking``: at equal parameters (the 1-stack network widened until its parameter count matches), 2 stacks beat 1
  (the paper's design, Fig. 9 right, with 2 / 4 / 8 stacks).
- ``halfway_vs_final``: the last stack's prediction is more accurate than the first stack's, in the same network
  (Fig. 9 right: the accuracy halfway through the network against at its end), read from the supervised 2-stack runs.
- ``refinement``: the last stack swaps fewer left/right keypoints than the first on people seen from the side and
  the back (Fig. 9 left shows such swaps fixed), read from the same runs: the share of eligible left/right keypoints
  predicted at the twin joint (:func:`posebook.metrics.lr_inversions`, PCK radius 0.1 of the box).
- ``refinement_fixes``: the last stack fixes more keypoints than it breaks (a keypoint is fixed when the first
  stack misses it at PCK@0.1 and the last places it, broken the reverse), read from the same runs.

Every variant is an hourglass of chapter 03 trained with the profile's recipe (:mod:`posebook.recipe`) from scratch,
as the paper's, for the same steps on the same crops (the synthetic scenes: front, side and back views, occluders,
up to four overlapping people), on the recipe's Gaussian targets. Run with ``python -m posebook.study 03``. Chapter 03.
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch
from torch import nn

from posebook import metrics, models
from posebook.bench import count_params
from posebook.keypoints import COCO
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import protocol, topdown
from posebook.studies.topdown import TRAIN_SEED, scores, validation_set  # noqa: F401 (the chapter reads them here)

CHAPTER = "03_stacked_hourglass"
METRIC = "PCK@0.1"
THRESHOLD = 0.1  # the PCK radius of the refinement claims (fixed/broken keypoints, left/right swaps)

# Per profile: the hourglass (chapter 03's reference network at cpu size, the paper's 256 channels at gpu size), the
# budget and the data. The cpu budget fits 20 runs (4 trained variants x 5 seeds) and the probes in about 120
# one-thread minutes: `python -m posebook.study 03 --profile cpu --dry-run` prints the estimate.
SIZES = {
    "smoke": dict(channels=16, order=2, stacks=2, steps=4, train_items=32, val_people=4, curve_people=4,
                  evaluations=2, seeds=(0, 1), probe_batch=4),
    "cpu": dict(channels=64, order=3, stacks=2, steps=1000, train_items=16000, val_people=500, curve_people=200,
                evaluations=4, seeds=(0, 1, 2, 3, 4), probe_batch=16),
    "gpu": dict(channels=256, order=4, stacks=2, steps=4000, train_items=16000, val_people=500, curve_people=200,
                evaluations=8, seeds=(0, 1, 2, 3, 4), probe_batch=16),
}
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4

PAPER_SUPERVISION = ("Fig. 8 (§4.2, MPII val, PCKh on wrists/elbows/knees/ankles): HG-Stacked-Int trains above "
                     "HG-Stacked; curves only, no end values printed")
PAPER_GRADIENT = ("no figure: §3.3 motivates intermediate supervision as a loss applied to every stack's "
                  "prediction")
PAPER_WIDTH = ("Fig. 8 (§4.2, MPII val): HG-Stacked (2 stacks of 4 residual modules) above HG (1 stack of 8 "
               "modules), about the same computation; the paper does not train stacks of equal width")
PAPER_STACKING = ("Fig. 9 right (§4.2, MPII val, equal parameters): 2 / 4 / 8 stacks reach 87.4 / 87.8 / 88.1%; "
                  "Fig. 8: HG-Stacked (2 x 4 modules) above HG (1 x 8 modules)")
PAPER_HALFWAY = ("Fig. 9 right (§4.2, MPII val): the prediction halfway through the network against at its end: "
                 "84.6 vs 87.4% for 2 stacks (86.5 vs 87.8% for 4, 87.1 vs 88.1% for 8)")
PAPER_REFINEMENT = ("Fig. 9 left (§4.2): mistakes of the 2nd hourglass fixed by the 8th (left/right swaps, joints "
                    "of other people), shown as examples; no error counts printed")


# ---- declarations ------------------------------------------------------------------------------------------------

def config(profile: str, stacks: int | None = None, channels: int | None = None, supervise_all: bool = True,
           probe: bool = False) -> dict:
    """One variant's protocol-2 config (:func:`posebook.studies.protocol.recipe_config`): the recipe's data and
    trainer, an hourglass of ``stacks`` stacks and ``channels`` channels (the profile's by default), every stack
    supervised or (``supervise_all=False``) only the last; ``probe``: the gradient probe's batch. Chapter 03."""
    size = SIZES[profile]
    kwargs = dict(stacks=stacks or size["stacks"], channels=channels or size["channels"], order=size["order"])
    out = protocol.recipe_config(profile, "hourglass", kwargs, size["steps"], train_items=size["train_items"],
                                 val_people=size["val_people"], curve_people=size["curve_people"],
                                 evaluations=size["evaluations"])
    out = dict(out, scene=SCENE, max_people=MAX_PEOPLE, supervise_all=bool(supervise_all))
    if probe:
        out["probe_batch"] = size["probe_batch"]
    return out


def claims(profile: str) -> list[Claim]:
    """Chapter 03's claims at ``profile``'s size under protocol 2, each on PCK@0.1 of every labelled keypoint but
    the refinement claims (left/right swaps, keypoints fixed and broken). Newell et al. §4.2."""
    size = SIZES[profile]
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    n, c = size["stacks"], size["channels"]
    wide = equal_params_channels(1, _params(n, c, size["order"]), size["order"])
    runs = "intermediate_supervision/with"
    last = f"stack{n}"
    return [
        Claim(CHAPTER, "intermediate_supervision",
              f"supervising every stack of a {n}-stack hourglass makes its final prediction better than "
              "supervising only the last stack", METRIC, PAPER_SUPERVISION,
              (Variant("with", train, config(profile)), Variant("without", train, config(profile, supervise_all=False))),
              effect=("with", "without"), **common),
        Claim(CHAPTER, "supervision_gradient",
              "at initialisation, on a fixed batch, intermediate supervision puts more gradient into the first "
              "stack's parameters", "grad_norm.stack1", PAPER_GRADIENT,
              (Variant("with", gradient_probe, config(profile, probe=True), kind="probe"),
               Variant("without", gradient_probe, config(profile, supervise_all=False, probe=True), kind="probe")),
              effect=("with", "without"), **common),
        Claim(CHAPTER, "stacking_width",
              f"at equal width ({c} channels), {n} stacks place keypoints better than 1", METRIC, PAPER_WIDTH,
              (Variant("1-stack", train, config(profile, stacks=1)), Variant(f"{n}-stacks", of=runs)),
              effect=(f"{n}-stacks", "1-stack"), **common),
        Claim(CHAPTER, "stacking",
              f"at equal parameters, {n} stacks place keypoints better than 1 (channels {wide} / {c})", METRIC,
              PAPER_STACKING,
              (Variant("1-stack", train, config(profile, stacks=1, channels=wide)), Variant(f"{n}-stacks", of=runs)),
              effect=(f"{n}-stacks", "1-stack"), **common),
        Claim(CHAPTER, "halfway_vs_final",
              f"in the same supervised {n}-stack network, the last stack's heatmaps place more keypoints "
              "correctly than the first stack's", METRIC, PAPER_HALFWAY,
              (Variant("stack1", of=runs, read=f"stack1.{METRIC}"), Variant(last, of=runs, read=f"{last}.{METRIC}")),
              effect=(last, "stack1"), **common),
        Claim(CHAPTER, "refinement",
              f"the last of {n} supervised stacks swaps fewer left/right keypoints than the first on people seen "
              f"from the side and the back", "inversion.side+back", PAPER_REFINEMENT,
              (Variant("stack1", of=runs, read="stack1.inversion.side+back"),
               Variant(last, of=runs, read=f"{last}.inversion.side+back")),
              effect=(last, "stack1"), sign=-1, **common),
        Claim(CHAPTER, "refinement_fixes",
              f"the last of {n} supervised stacks fixes more keypoints than it breaks (PCK@{THRESHOLD:g}: missed "
              f"by the first stack and placed by the last, or the reverse)", "refined", PAPER_REFINEMENT,
              (Variant("fixed", of=runs, read="refined.fixed"), Variant("broken", of=runs, read="refined.broken")),
              effect=("fixed", "broken"), **common),
    ]


def model(config: dict) -> nn.Module:
    """The network of a run, untrained: ``models.create("hourglass", **config["kwargs"])``. Chapter 03."""
    return models.create(config["model"], num_joints=COCO.num_keypoints, **config["kwargs"])


@functools.lru_cache(maxsize=None)
def _params(stacks: int, channels: int, order: int) -> int:
    return count_params(models.create("hourglass", stacks=stacks, channels=channels, num_joints=COCO.num_keypoints,
                                      order=order))


@functools.lru_cache(maxsize=None)
def equal_params_channels(stacks: int, params: int, order: int) -> int:
    """The width (a multiple of 4) whose ``stacks``-stack hourglass has the parameter count nearest ``params``.

    Parameters grow about as stacks x channels^2, so the search starts there. Newell et al. §4.2 (equal capacity).
    """
    guess = math.sqrt(params / _params(stacks, 64, order)) * 64
    candidates = range(max(4, int(guess * 0.8) // 4 * 4), int(guess * 1.2) + 8, 4)
    return min(candidates, key=lambda c: abs(_params(stacks, c, order) - params))


def loss(config: dict) -> MultiOutputLoss:
    """L2 on every stack's heatmaps against the one target (weight 1 each), or on the last stack's only
    (``supervise_all=False``: the earlier stacks' weights 0). Newell et al. §3.3; chapter 03."""
    stacks = config["kwargs"]["stacks"]
    weights = None if config["supervise_all"] else [0.0] * (stacks - 1) + [1.0]
    return MultiOutputLoss(JointsMSELoss(), weights)


# ---- data and training ---------------------------------------------------------------------------------------------

def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops, rendered once and cached (posebook.studies.topdown). Chapter 03."""
    return topdown.training_items("03-train", config, progress)


class _Stack(nn.Module):
    """A stacked hourglass whose ``predict`` answers with stack ``index``'s heatmaps (per-stack evaluation)."""

    def __init__(self, model: nn.Module, index: int):
        super().__init__()
        self.model, self.index = model, index

    def predict(self, x):
        return self.model(x)[self.index]


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one hourglass of ``config`` from ``seed`` with the recipe (:func:`posebook.studies.protocol.recipe_run`)
    and :func:`loss`; at the end every stack is scored (:func:`per_stack`). Newell et al. §4.2; chapter 03."""
    torch.manual_seed(seed)
    net = protocol.recipe_model(config)
    return protocol.recipe_run("03-train", config, seed, net, loss(config), progress, extra=per_stack)


def per_stack(net: nn.Module, val, views: dict, final: dict) -> dict:
    """What each stack of a trained hourglass does, on the validation people: every metric of
    :func:`posebook.studies.topdown.scores` for each earlier stack (``stack1.PCK@0.1``...) and the last stack's under
    its own name too (``stack2.PCK@0.1`` = ``PCK@0.1``); each stack's share of eligible left/right keypoints
    predicted at the twin joint on people seen from the side and the back (``stackS.inversion.side+back``); and the
    shares of labelled keypoints the last stack fixes (``refined.fixed``: the first stack misses them at
    PCK@0.1, the last places them) and breaks (``refined.broken``: the reverse). Newell et al. §4.2 (Fig. 9);
    chapter 03."""
    from posebook.inference import predict_dataset

    stacks = len(net.hourglasses)
    out = {f"stack{stacks}.{k}": v for k, v in final.items() if not k.startswith("stack")}
    hits = []
    for s in range(stacks):
        stack = _Stack(net, s)
        if s < stacks - 1:
            out.update(scores(stack, val, prefix=f"stack{s + 1}.", views=views)[0])
        pred = predict_dataset(stack, val, progress=False)
        hit, swapped = judged(pred, val, views)
        out[f"stack{s + 1}.inversion.side+back"] = swapped
        hits.append(hit)
    first, last = hits[0], hits[-1]
    counted = ~np.ma.getmaskarray(first)
    labelled = max(int(counted.sum()), 1)
    out["refined.fixed"] = float((~first.filled(True) & last.filled(False)).sum() / labelled)
    out["refined.broken"] = float((first.filled(False) & ~last.filled(True)).sum() / labelled)
    return out


def judged(pred: dict, val, views: dict, thr: float = THRESHOLD) -> tuple[np.ma.MaskedArray, float]:
    """Per labelled keypoint whether a prediction lies within ``thr`` of the box's longer side of it (a masked
    (N, K) array, unlabelled keypoints masked), and the share of eligible left/right keypoints predicted at the twin
    joint (:func:`posebook.metrics.lr_inversions`) on people seen from the side or the back (NaN without any).
    Chapter 03."""
    gt = pred["gt"]
    norm = np.array([max(val.coco.anns[int(a)]["bbox"][2:]) for a in pred["ann_id"]], dtype=np.float64)
    dist = np.linalg.norm(pred["keypoints"][..., :2] - gt[..., :2], axis=-1)
    hit = np.ma.masked_array(dist <= thr * norm[:, None], mask=gt[..., 2] <= 0)
    eligible, inverted = metrics.lr_inversions(pred["keypoints"], gt, norm, COCO.flip_index(), thr)
    turned = np.array([views[int(a)] in ("side", "back") for a in pred["ann_id"]])
    n = eligible[turned].sum()
    return hit, float(inverted[turned].sum() / n) if n else float("nan")


# ---- the probe ---------------------------------------------------------------------------------------------------

def gradient_probe(config: dict, seed: int) -> dict:
    """The gradient norm reaching the first and the last hourglass's parameters, for the model initialised with
    ``seed`` on the first ``probe_batch`` training crops (train mode, no step taken): deterministic. §3.3."""
    items = training_items(config)
    batch = [items[i] for i in range(config["probe_batch"])]
    image, target, weight = (torch.stack([b[k] for b in batch]) for k in ("image", "target", "target_weight"))
    torch.manual_seed(seed)
    net = model(config).train()
    loss(config)(net(image), target, weight).backward()

    def norm(module: nn.Module) -> float:
        return float(torch.sqrt(sum(p.grad.pow(2).sum() for p in module.parameters() if p.grad is not None)))

    final = {"grad_norm.stack1": norm(net.hourglasses[0]), "grad_norm.last": norm(net.hourglasses[-1])}
    return {"curves": [], "final": final, "val_people": None, "device": "cpu"}


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops (0 when cached), timed on a few items. Chapter 03."""
    return topdown.estimate_data("03-train", config(profile))


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data), on
    the CPU with one thread's process time; a probe's one forward and backward pass. Chapter 03."""
    net = model(config)
    if kind == "probe":
        h, w = config["input_size"]
        start = time.process_time()
        net(torch.randn(config["probe_batch"], 3, h, w))[-1].sum().backward()
        return time.process_time() - start, f"{count_params(net) / 1e6:.3f}M params"
    return protocol.estimate_run(net, loss(config), config)  # scoring the earlier stacks at the end is not counted
