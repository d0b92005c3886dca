"""Chapter 03's study: the Stacked Hourglass paper's claims (Newell, Yang, Deng, ECCV 2016, §4.2).

- ``intermediate_supervision``: the same 2-stack network trained with every stack supervised beats it trained with
  only the last one supervised (HG-Stacked-Int against HG-Stacked, Fig. 8).
- ``supervision_gradient`` (probe): on a fixed batch at initialisation, supervision puts more gradient into the
  first stack's parameters.
- ``stacking``: at equal parameters (channels chosen so the counts match), more stacks predict better (Fig. 9 right).
- ``halfway_vs_final``: the last stack's prediction is more accurate than the first stack's, in the same network
  (Fig. 9 right: the accuracy halfway through the network against at its end), read from the supervised 2-stack runs.
- ``refinement``: the last stack makes fewer left/right inversions than the first (Fig. 9 left), read from the same
  runs. The metric is the share of labelled keypoints that land on the same person's mirrored joint
  (``error.inversion``, Ronchi and Perona's kind): the mistake Fig. 9 left shows. Misses (OKS ks < 0.5 anywhere
  else) are left out: at this scale they are mostly imprecise placement, which ``halfway_vs_final`` measures.

The data holds the difficulty these ideas address: the synthetic setting's front, side and back views (left/right
needs the whole body), occluders and up to four overlapping people. The training crops are rendered once per study
and reused by every variant and seed. Run with ``python -m posebook.study 03``. Chapter 03.
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch
from torch import nn

import posebook
from posebook import models
from posebook.bench import count_params
from posebook.keypoints import COCO
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import topdown
from posebook.studies.topdown import TRAIN_SEED, scores, validation_set  # noqa: F401 (the chapter reads them here)

CHAPTER = "03_stacked_hourglass"

# Per profile: model, data and budget. The cpu budget fits the whole study (12 trainings, 2 probes x 3 seeds) in
# 90 minutes of a 2-core machine; `python -m posebook.study 03 --profile cpu --dry-run` prints the estimate.
# Batch 32 with channels_last trains 1.7x more samples/s than batch 8 on 2 cores (issue 12). The base widths (52 on
# cpu, 112 on gpu) are those whose 1- and 4-stack equal-parameter twins land within 5% of their parameter count
# with widths in multiples of 4 (the stem uses C/4).
SIZES = {
    "smoke": dict(input_size=(64, 48), heatmap_size=(16, 12), sigma=1.0, image_size=(128, 128), channels=16,
                  order=2, stacks=2, batch_size=8, steps=4, warmup=0, lr=2e-3, train_items=32, val_people=4,
                  val_every=2, probe_batch=4),
    "cpu": dict(input_size=(128, 96), heatmap_size=(32, 24), sigma=2.0, image_size=(256, 256), channels=52,
                order=3, stacks=2, batch_size=32, steps=700, warmup=30, lr=2e-3, train_items=11200, val_people=200,
                val_every=175, probe_batch=16),
    "gpu": dict(input_size=(256, 192), heatmap_size=(64, 48), sigma=2.0, image_size=(256, 256), channels=112,
                order=4, stacks=2, batch_size=32, steps=4000, warmup=200, lr=1e-3, train_items=16000,
                val_people=500, val_every=500, probe_batch=16),
}
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4

PAPER_SUPERVISION = ("Fig. 8 (§4.2, MPII val, PCKh on wrists/elbows/knees/ankles): HG-Stacked-Int trains above "
                     "HG-Stacked; curves only, no end values printed")
PAPER_GRADIENT = ("no figure: §3.3 motivates intermediate supervision as a loss applied to every stack's "
                  "prediction")
PAPER_STACKING = ("Fig. 9 right (§4.2, MPII val, equal parameters): 2 / 4 / 8 stacks reach 87.4 / 87.8 / 88.1%; "
                  "Fig. 8: HG-Stacked (2 x 4 modules) above HG (1 x 8 modules)")
PAPER_HALFWAY = ("Fig. 9 right (§4.2, MPII val): the prediction halfway through the network against at its end: "
                 "84.6 vs 87.4% for 2 stacks (86.5 vs 87.8% for 4, 87.1 vs 88.1% for 8)")
PAPER_REFINEMENT = ("Fig. 9 left (§4.2): mistakes of the 2nd hourglass fixed by the 8th (left/right swaps, joints "
                    "of other people), shown as examples; no error counts printed")


# ---- declarations ------------------------------------------------------------------------------------------------

def claims(profile: str) -> list[Claim]:
    """Chapter 03's claims at ``profile``'s size. Newell et al. §4.2."""
    base = dict(SIZES[profile], profile=profile, scene=SCENE, max_people=MAX_PEOPLE, supervise_all=True)
    stacks = base["stacks"]
    unsupervised = dict(base, supervise_all=False)
    target = _params(stacks, base["channels"], base["order"])
    wide = dict(base, stacks=1, channels=equal_params_channels(1, target, base["order"]))
    deep = dict(base, stacks=2 * stacks, channels=equal_params_channels(2 * stacks, target, base["order"]))
    return [
        Claim(CHAPTER, "intermediate_supervision",
              f"supervising every stack of a {stacks}-stack hourglass makes its final prediction better than "
              "supervising only the last stack", "PCK@0.2", PAPER_SUPERVISION,
              (Variant("with", train, base), Variant("without", train, unsupervised)), effect=("with", "without")),
        Claim(CHAPTER, "supervision_gradient",
              "at initialisation, on a fixed batch, intermediate supervision puts more gradient into the first "
              "stack's parameters", "grad_norm.stack1", PAPER_GRADIENT,
              (Variant("with", gradient_probe, base, kind="probe"),
               Variant("without", gradient_probe, unsupervised, kind="probe")), effect=("with", "without")),
        Claim(CHAPTER, "stacking",
              f"at equal parameters, {2 * stacks} stacks predict better than 1 (channels {wide['channels']} / "
              f"{base['channels']} / {deep['channels']})", "PCK@0.2", PAPER_STACKING,
              (Variant("1-stack", train, wide), Variant(f"{stacks}-stacks", of="intermediate_supervision/with"),
               Variant(f"{2 * stacks}-stacks", train, deep)), effect=(f"{2 * stacks}-stacks", "1-stack")),
        Claim(CHAPTER, "halfway_vs_final",
              f"in the same supervised {stacks}-stack network, the last stack's heatmaps place more keypoints "
              "correctly than the first stack's", "PCK@0.2", PAPER_HALFWAY,
              (Variant("stack1", of="intermediate_supervision/with", read="stack1.PCK@0.2"),
               Variant(f"stack{stacks}", of="intermediate_supervision/with", read=f"stack{stacks}.PCK@0.2")),
              effect=(f"stack{stacks}", "stack1")),
        Claim(CHAPTER, "refinement",
              f"the last of {stacks} supervised stacks puts fewer keypoints on the mirrored joint (left/right "
              "inversions) than the first", "error.inversion", PAPER_REFINEMENT,
              (Variant("stack1", of="intermediate_supervision/with", read="stack1.error.inversion"),
               Variant(f"stack{stacks}", of="intermediate_supervision/with", read=f"stack{stacks}.error.inversion")),
              effect=(f"stack{stacks}", "stack1"), sign=-1),
    ]


def _model(config: dict) -> nn.Module:
    return models.create("hourglass", stacks=config["stacks"], channels=config["channels"],
                         num_joints=COCO.num_keypoints, order=config["order"])


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


def _loss(config: dict) -> MultiOutputLoss:
    weights = None if config["supervise_all"] else [0.0] * (config["stacks"] - 1) + [1.0]
    return MultiOutputLoss(JointsMSELoss(), weights)


# ---- data: rendered once (posebook.studies.topdown) ----------------------------------------------------------------

def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops, rendered once and cached (posebook.studies.topdown). Chapter 03."""
    return topdown.training_items("03-train", config, progress)


# ---- the trained variant -----------------------------------------------------------------------------------------

class _Stack(nn.Module):
    """A stacked hourglass whose ``predict`` answers with stack ``index``'s heatmaps (per-stack evaluation)."""

    def __init__(self, model: nn.Module, index: int):
        super().__init__()
        self.model, self.index = model, index

    def predict(self, x):
        return self.model(x)[self.index]


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one hourglass of ``config`` with ``seed`` (init and data order) on the rendered crops; score it.

    Curves every ``val_every`` steps; at the end every stack is scored, and ``refined.fixed``/``refined.broken`` count
    the keypoints the last stack turns from inversion/miss into good/jitter, and back. Newell et al. §4.2.
    """
    from posebook.train import Trainer

    items, val = training_items(config, progress), validation_set(config)
    torch.manual_seed(seed)
    model = _model(config)
    last = {}

    def validate(m):
        stats, last["kind"] = scores(m, val)
        return stats

    trainer = Trainer(model, items, _loss(config), steps=config["steps"], batch_size=config["batch_size"],
                      optimizer="adam", lr=config["lr"], schedule="cosine", warmup_steps=config["warmup"],
                      seed=seed, validate=validate, val_every=config["val_every"],
                      log_every=max(1, config["steps"] // 50), channels_last=True, progress=progress)
    history = trainer.fit()
    stacks = config["stacks"]
    final = {k: v for k, v in history[-1].items() if k not in ("step", "loss", "lr", "samples_per_s")}
    final.update({f"stack{stacks}.{k}": v for k, v in list(final.items())})
    model.eval()
    for s in range(stacks - 1):
        stats, kind = scores(_Stack(model, s), val, prefix=f"stack{s + 1}.")
        final.update(stats)
        if s == 0:
            final.update(_refined(kind, last["kind"]))
    final["params"] = count_params(model)
    return {"curves": history, "final": final, "val_people": len(val), "device": str(trainer.device)}


def _refined(first: np.ndarray, final: np.ndarray) -> dict:
    """Shares of labelled keypoints fixed (inversion/miss -> good/jitter) and broken (the reverse) by later stacks."""
    labelled = max(int((first >= 0).sum()), 1)
    wrong_first, wrong_final = np.isin(first, (2, 4)), np.isin(final, (2, 4))
    right_first, right_final = np.isin(first, (0, 1)), np.isin(final, (0, 1))
    return {"refined.fixed": float((wrong_first & right_final).sum() / labelled),
            "refined.broken": float((right_first & wrong_final).sum() / labelled)}


# ---- the probe ---------------------------------------------------------------------------------------------------

def gradient_probe(config: dict, seed: int) -> dict:
    """The gradient norm reaching the first and the last hourglass's parameters, for the model initialised with
    ``seed`` on the first ``probe_batch`` training crops (train mode, no step taken): deterministic. §3.3."""
    items = training_items(config)
    batch = [items[i] for i in range(config["probe_batch"])]
    image, target, weight = (torch.stack([b[k] for b in batch]) for k in ("image", "target", "target_weight"))
    torch.manual_seed(seed)
    model = _model(config).train()
    _loss(config)(model(image), target, weight).backward()

    def norm(module: nn.Module) -> float:
        return float(torch.sqrt(sum(p.grad.pow(2).sum() for p in module.parameters() if p.grad is not None)))

    final = {"grad_norm.stack1": norm(model.hourglasses[0]), "grad_norm.last": norm(model.hourglasses[-1])}
    return {"curves": [], "final": final, "val_people": None, "device": "cpu"}


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops (0 when cached), timed on a few items. Chapter 03."""
    return topdown.estimate_data("03-train", dict(SIZES[profile], scene=SCENE, max_people=MAX_PEOPLE))


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data).
    Chapter 03."""
    model = _model(config)
    params = count_params(model)
    h, w = config["input_size"]
    if kind == "probe":
        x = torch.randn(config["probe_batch"], 3, h, w)
        start = time.perf_counter()
        model(x)[-1].sum().backward()
        return time.perf_counter() - start, f"{params / 1e6:.3f}M params"
    device = posebook.device()
    model = model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(config["batch_size"], 3, h, w, device=device).contiguous(memory_format=torch.channels_last)
    t = torch.rand(config["batch_size"], COCO.num_keypoints, *config["heatmap_size"], device=device)
    wt = torch.ones(config["batch_size"], COCO.num_keypoints, device=device)
    loss_fn, timings = _loss(config), []
    for _ in range(4):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(x), t, wt).backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    step = float(np.median(timings[1:]))
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        model(x)
        per_crop = (time.perf_counter() - start) / config["batch_size"]
    evals = config["steps"] // config["val_every"] + (config["steps"] % config["val_every"] > 0)
    # each evaluation: flip test (2 forwards per person) + decoding and COCOeval (~10 ms per person, measured)
    one_eval = config["val_people"] * (2 * per_crop + 0.01)
    seconds = step * config["steps"] + one_eval * (evals + config["stacks"] - 1)
    return seconds, f"{params / 1e6:.3f}M params, {step * 1000:.0f} ms/step, {one_eval:.0f} s/eval"
