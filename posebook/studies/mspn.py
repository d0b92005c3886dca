"""Chapter 06's study: the MSPN paper's claims about multi-stage networks (Li et al., "Rethinking on Multi-Stage
Networks for Human Pose Estimation", 2019, §3 and its ablations).

- ``stages``: a 2-stage MSPN beats a 1-stage one trained with the same budget (steps, batch); the paper's COCO
  minival AP for 1 / 2 / 3 / 4 stages is 71.5 / 74.5 / 75.2 / 75.9.
- ``aggregation``: 2 stages with cross-stage feature aggregation beat 2 stages without (``aggregation=False``: the
  next stage still starts from the previous stage's finest upsampling level, but gets no skips).
- ``coarse_to_fine``: 2 stages supervised with the coarse-to-fine kernels (15, 11, 9, 7, then 11, 9, 7, 5 in the last
  stage) beat 2 stages supervised with one kernel everywhere (5, the full model's final target, on every output).
  This removes two things at once: the per-level kernels and the last stage's shift.
- ``last_stage_shift``: the official code's switch for coarse-to-fine supervision (``LOSS.COARSE_TO_FINE``,
  ``kernel_schedule(coarse_to_fine=False)``) toggles only the last stage's one-step shift: 2 stages with the shift
  (11, 9, 7, 5 in the last stage) beat 2 stages with 15, 11, 9, 7 in every stage.
- ``vs_hourglass``: a 2-stage MSPN beats a 2-stack hourglass (chapter 03) of about its FLOPs, both trained on the
  same crops for the same steps. The hourglass gets its own loss, ``MultiOutputLoss(JointsMSELoss())`` (weight 1 per
  stack), on the finest target of both stacks (kernel 5, every labelled joint drawn, the MSPN's final target).
- ``target_peak``: not a claim of the paper but of its code, which draws every target with a peak of 255
  (``JointsDataset.generate_heatmap``) without saying why: a 1-stage MSPN trained on those targets beats one trained
  on the same targets scaled to a peak of 1. Every predictor ends in a BatchNorm, whose output starts with unit
  variance; against a peak-1 target (mean square about 0.003 per pixel at the cpu size, chapter 06 measures it)
  that output is almost all noise, and the loss is first spent shrinking it.

Every claim is read on PCK@0.1: at the cpu budget PCK@0.2 sits at about 0.8 for the networks of chapters 03, 04 and
07 (and for a 1- and a 2-stage MSPN alike, in a pilot), so it hardly separates two of them; PCK@0.1 asks for twice
the precision and still moves.

Every run trains on the same crops of the synthetic scenes (front, side and back views, occluders, up to four
overlapping people), rendered once with every target a variant needs (MSPN's L2 targets, drawn for visible joints
only, with kernels 15, 11, 9, 7 and 5; its OHKM targets, every labelled joint, with kernels 7 and 5); each variant's
loss takes its own outputs' targets (:class:`OutputTargets`), and every model decodes with the same codec (test blur
of the official code, scaled to the heatmap). Targets peak at 255, as the official code's, except in the
``target_peak`` ablation. Run with ``python -m posebook.study 06``. Chapter 06.
"""
from __future__ import annotations

import torch
from torch import nn

from posebook import models
from posebook.bench import count_params, gflops
from posebook.keypoints import COCO
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.models.mspn import LEVELS, PEAK, TOPK, kernel_schedule, mspn_loss
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import protocol, topdown
from posebook.studies.topdown import TRAIN_SEED, validation_set  # noqa: F401 (the chapter reads them here)

CHAPTER = "06_mspn"

# Per profile: model, data and budget. The cpu MSPN is ResNet-50 at an eighth of its width (C2..C5 = 32..256
# channels) with 32-channel upsampling units, every block of the paper kept; its 2-stage step costs about 1.4 times
# chapter 05's cpu CPN. The hourglass has the channels (a multiple of 4) whose FLOPs come closest to the 2-stage MSPN's
# at the profile's input (cpu 0.057 against 0.052 GFLOPs; gpu 10.45 against 10.49). The cpu budget (1000 steps: in a
# 480-step pilot the 2-stage MSPN was still behind the 1-stage one and climbing faster) makes the whole study (21
# trainings) about 90 minutes of a 2-core machine, two one-thread runs at a time (`python -m posebook.study 06 --profile cpu
# --dry-run`). At a 32x24 heatmap the official test-time blur 5 (for 64x48 maps) is halved to 3.
SIZES = {
    "smoke": dict(model=dict(depth=50, width=4, channels=16), hourglass=dict(channels=16, order=2),
                  input_size=(64, 64), heatmap_size=(16, 16), decode_kernel=3, image_size=(128, 128), batch_size=8,
                  steps=4, warmup=0, lr=2e-3, train_items=32, val_people=4, val_every=2),
    "cpu": dict(model=dict(depth=50, width=8, channels=32), hourglass=dict(channels=48, order=3),
                input_size=(128, 96), heatmap_size=(32, 24), decode_kernel=3, image_size=(256, 256), batch_size=32,
                steps=1000, warmup=30, lr=2e-3, train_items=15360, val_people=200, val_every=250),
    "gpu": dict(model=dict(depth=50, width=64, channels=256), hourglass=dict(channels=344, order=4),
                input_size=(256, 192), heatmap_size=(64, 48), decode_kernel=5, image_size=(256, 256), batch_size=32,
                steps=4000, warmup=200, lr=1e-3, train_items=16000, val_people=500, val_every=500),
}
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4
SIGMA = 2.0  # unused by blur targets; part of the data settings the topdown studies share
STAGES = 2  # the MSPN the claims are about
ONE_KERNEL = 5  # the "one kernel everywhere" ablation: the full model's final kernel on every output
# the targets the rendered data carries, (kernel, visible_only): MSPN's L2 targets (visible joints drawn, every joint
# weighted) and its OHKM targets (every labelled joint drawn, unlabelled ones weight 0); the last one decodes
TARGETS = ((15, True), (11, True), (9, True), (7, True), (5, True), (7, False), (5, False))

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
METRIC = "PCK@0.1"
WHY_PCK = ("PCK@0.1 of every labelled keypoint: at the cpu budget COCO AP sits near its floor and PCK@0.2 near 0.8 "
           "for the networks of chapters 03, 04 and 07; PCK@0.1 still moves")
PAPER_PEAK = ("not in the paper: the official code draws targets peaking at 255 (JointsDataset.generate_heatmap: "
              "heatmaps[i] /= maxi / 255) and ends every predictor in a BatchNorm, without saying why")


# ---- declarations ------------------------------------------------------------------------------------------------

def _config(profile: str, arch: str = "mspn", stages: int = STAGES, aggregation: bool = True,
            supervision: str = "coarse_to_fine", peak: float = PEAK) -> dict:
    """One run's config: the data settings every variant shares (the targets' ``peak`` aside), the network, and the
    kernels of its outputs (``loss["kernels"]``: per stage, one kernel per output, coarse level to fine).
    ``supervision``: "coarse_to_fine" (the official schedule), "one_kernel" (kernel 5 on every output) or "no_shift"
    (the official switch off: 15, 11, 9, 7 in every stage)."""
    sizes = dict(SIZES[profile])
    mspn, hourglass = sizes.pop("model"), sizes.pop("hourglass")
    if arch == "mspn":
        net = dict(arch="mspn", stages=stages, aggregation=aggregation, **mspn)
        if supervision not in ("coarse_to_fine", "one_kernel", "no_shift"):
            raise ValueError(f"mspn study: supervision={supervision!r}; expected 'coarse_to_fine', 'one_kernel' or "
                             f"'no_shift'")
        kernels = ([[ONE_KERNEL] * LEVELS] * stages if supervision == "one_kernel"
                   else [list(k) for k in kernel_schedule(stages, coarse_to_fine=supervision == "coarse_to_fine")])
    elif arch == "hourglass":  # each stack supervised with the MSPN's final target (kernel 5, OHKM's drawing)
        net = dict(arch="hourglass", stacks=stages, **hourglass)
        kernels = [[TARGETS[-1][0]]] * stages
    else:
        raise ValueError(f"mspn study: arch={arch!r}; expected 'mspn' or 'hourglass'")
    codec = dict(kernels=[k for k, _ in TARGETS], visible_only=[v for _, v in TARGETS], clamp=False,
                 decode_kernel=sizes["decode_kernel"], peak=peak)
    return dict(sizes, profile=profile, model=net, loss=dict(kernels=kernels, topk=TOPK), sigma=SIGMA, scene=SCENE,
                max_people=MAX_PEOPLE, codec=codec)


def claims(profile: str) -> list[Claim]:
    """Chapter 06's claims at ``profile``'s size, each on PCK@0.1 of every labelled keypoint. Li et al. 2019, §3;
    chapter 06."""
    two = Variant("two_stages", train, _config(profile))
    full = "stages/two_stages"
    return [
        Claim(CHAPTER, "stages", f"a 2-stage MSPN places keypoints better than a 1-stage one trained with the same "
                                 f"steps and batch ({WHY_PCK})", METRIC, PAPER_STAGES,
              (Variant("one_stage", train, _config(profile, stages=1)), two), effect=("two_stages", "one_stage")),
        Claim(CHAPTER, "aggregation", f"2 stages with cross-stage feature aggregation place keypoints better than 2 "
                                      f"stages without it ({WHY_PCK})", METRIC, PAPER_COMPONENTS,
              (Variant("no_aggregation", train, _config(profile, aggregation=False)), Variant("two_stages", of=full)),
              effect=("two_stages", "no_aggregation")),
        Claim(CHAPTER, "coarse_to_fine", f"2 stages supervised coarse to fine (kernels 15/11/9/7, then 11/9/7/5) place "
                                         f"keypoints better than 2 stages with one kernel ({ONE_KERNEL}) on every "
                                         f"output ({WHY_PCK})", METRIC, PAPER_COMPONENTS,
              (Variant("one_kernel", train, _config(profile, supervision="one_kernel")),
               Variant("two_stages", of=full)), effect=("two_stages", "one_kernel")),
        Claim(CHAPTER, "last_stage_shift", f"2 stages whose last stage is supervised one step sharper (kernels "
                                           f"15/11/9/7, then 11/9/7/5: the official coarse-to-fine switch on) place "
                                           f"keypoints better than 2 stages with 15/11/9/7 in every stage (the switch "
                                           f"off) ({WHY_PCK})", METRIC, PAPER_SHIFT,
              (Variant("no_shift", train, _config(profile, supervision="no_shift")), Variant("two_stages", of=full)),
              effect=("two_stages", "no_shift")),
        Claim(CHAPTER, "vs_hourglass", f"a 2-stage MSPN places keypoints better than a 2-stack hourglass of about its "
                                       f"FLOPs, trained on the same crops for the same steps ({WHY_PCK})", METRIC,
              PAPER_HOURGLASS, (Variant("hourglass", train, _config(profile, arch="hourglass")),
                                Variant("two_stages", of=full)), effect=("two_stages", "hourglass")),
        Claim(CHAPTER, "target_peak", f"a 1-stage MSPN trained on the official targets (peak {PEAK:g}) places keypoints "
                                      f"better than one trained on the same targets with peak 1, its predictors "
                                      f"ending in a BatchNorm ({WHY_PCK})", METRIC, PAPER_PEAK,
              (Variant("peak_one", train, _config(profile, stages=1, peak=1)),
               Variant("one_stage", of="stages/one_stage")), effect=("one_stage", "peak_one")),
    ]


# ---- model, targets, loss ------------------------------------------------------------------------------------------

def model(config: dict) -> nn.Module:
    """The network of a run: ``config["model"]["arch"]`` ("mspn" or "hourglass") with the rest of
    ``config["model"]`` as its arguments. Li et al. 2019, §3; chapter 06."""
    spec = dict(config["model"])
    return models.create(spec.pop("arch"), num_joints=COCO.num_keypoints, **spec)


def target_indices(config: dict) -> list[int]:
    """Which of the rendered :data:`TARGETS` each model output takes, in output order: per MSPN stage the L2 targets
    (visible joints) of its three coarser kernels and the OHKM target of its finest; per hourglass stack the final
    target. Li et al. 2019, §3 (coarse-to-fine supervision); chapter 06."""
    indices = []
    hourglass = config["model"]["arch"] == "hourglass"
    for kernels in config["loss"]["kernels"]:
        for level, k in enumerate(kernels):
            visible = not hourglass and level < len(kernels) - 1
            if (k, visible) not in TARGETS:
                raise ValueError(f"mspn study: no rendered target has kernel {k} with visible_only={visible}; the "
                                 f"data carries {TARGETS}")
            indices.append(TARGETS.index((k, visible)))
    return indices


def codecs(config: dict) -> list:
    """The codecs of the model's outputs, in output order (the last decodes). Li et al. 2019, §3; chapter 06."""
    every = topdown.codecs(topdown.data_settings(config))
    return [every[i] for i in target_indices(config)]


class OutputTargets(nn.Module):
    """``loss`` on the model's outputs against the targets at ``indices`` of the :data:`TARGETS` the study's data
    carries. Li et al. 2019, §3; chapter 06."""

    def __init__(self, loss: nn.Module, indices: list[int]):
        super().__init__()
        self.loss, self.indices = loss, list(indices)

    def forward(self, outputs, target, target_weight):
        if not isinstance(target, (list, tuple)) or len(target) != len(TARGETS):
            raise ValueError(f"OutputTargets: expected the {len(TARGETS)} targets of the study's data, got "
                             f"{len(target) if isinstance(target, (list, tuple)) else type(target).__name__}")
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(self.indices):
            got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
            raise ValueError(f"OutputTargets: expected {len(self.indices)} model outputs, got {got}")
        return self.loss(outputs, [target[i] for i in self.indices], [target_weight[i] for i in self.indices])


def loss(config: dict) -> nn.Module:
    """MSPN: the official loss (``mspn_loss``: per stage L2 on the three coarser outputs x 1/4, OHKM top 8 on the
    finest); the hourglass: its own ``MultiOutputLoss(JointsMSELoss())``; each on its targets of the study's data.
    Li et al. 2019, §3; chapter 06."""
    if config["model"]["arch"] == "hourglass":
        base = MultiOutputLoss(JointsMSELoss())
    else:
        base = mspn_loss(config["model"]["stages"], config["loss"]["topk"])
    return OutputTargets(base, target_indices(config))


# ---- data: rendered once (posebook.studies.topdown) ----------------------------------------------------------------

def train_set(config: dict):
    """The study's ``config["train_items"]`` training crops with every target, as a (not rendered)
    ``SyntheticTopDown``: item i is the study's item i. MSPN (Li et al. 2019) study; chapter 06."""
    return topdown.synthetic_train_set(topdown.data_settings(config), config["train_items"])


def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops, rendered once and cached (posebook.studies.topdown). MSPN (Li et al. 2019)
    study; chapter 06."""
    return topdown.training_items("06-train", config, progress)


def scores(net: nn.Module, val) -> dict:
    """COCO AP/AR, PCK@0.2 and PCK@0.1 (all, occluded, visible) and error-kind shares on ``val``
    (posebook.studies.topdown). MSPN (Li et al. 2019) study; chapter 06."""
    return topdown.scores(net, val)[0]


def trainer(config: dict, seed: int, data, val, **kwargs):
    """A ``Trainer`` of ``config``'s network (initialised from ``seed``) as the study trains it: Adam, cosine
    schedule with warmup, batch ``batch_size``, channels_last, ``scores`` on ``val`` every ``val_every`` steps.
    MSPN (Li et al. 2019) study; chapter 06."""
    from posebook.train import Trainer

    torch.manual_seed(seed)
    net = model(config)
    options = dict(steps=config["steps"], batch_size=config["batch_size"], optimizer="adam", lr=config["lr"],
                   schedule="cosine", warmup_steps=config["warmup"], seed=seed,
                   validate=lambda m: scores(m, val), val_every=config["val_every"],
                   log_every=max(1, config["steps"] // 50), channels_last=True)
    return Trainer(net, data, loss(config), **dict(options, **kwargs))


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one network of ``config`` with ``seed`` (init and data order) on the rendered crops; score it every
    ``val_every`` steps. Li et al. 2019, §3 (from scratch here); chapter 06."""
    items, val = training_items(config, progress), validation_set(config)
    run = trainer(config, seed, items, val, progress=progress)
    history = run.fit()
    final = {k: v for k, v in history[-1].items() if k not in ("step", "loss", "lr", "samples_per_s")}
    final["params"] = count_params(run.model)
    final["gflops"] = gflops(run.model, tuple(config["input_size"]))
    return {"curves": history, "final": final, "val_people": len(val), "device": str(run.device)}


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops (0 when cached), timed on a few items (process time). MSPN (Li et al. 2019)
    study; chapter 06."""
    return topdown.estimate_data("06-train", _config(profile))


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data), on
    the CPU with one thread's process time (an upper bound for two threads on a quiet machine). MSPN (Li et al.
    2019) study; chapter 06."""
    return protocol.estimate_run(model(config), loss(config), config, len(TARGETS))
