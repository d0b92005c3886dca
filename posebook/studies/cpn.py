"""Chapter 05's study: the CPN paper's claims about hard keypoints (Chen et al., CVPR 2018, §4.2), each measured
apart on occluded (v=1) and visible (v=2) keypoints.

- ``refinenet``: GlobalNet + RefineNet beats GlobalNet alone, and more on the occluded keypoints (Table 3: GlobalNet
  only 66.6, CPN* 68.6 AP; the paper gives no per-keypoint numbers).
- ``ohkm``: online hard keypoint mining on RefineNet's loss (the top M of the 17 per-joint losses of each person)
  beats no mining (M = 17); Table 6 tries M = 6..17 and finds 8 best.
- ``non_local``: a non-local block (Wang et al., CVPR 2018) on C5 gives every position the whole crop as context:
  does it help the occluded keypoints? Not in the CPN paper: the chapter's own question.
- ``vs_simple_baseline``: SimpleBaseline (Xiao et al., ECCV 2018) on the same ResNet is as accurate as CPN
  (SimpleBaseline's Table: ResNet-50, 256x192, 70.4 AP against CPN's 68.6 without, 69.4 with OHKM). The two cost
  about the same in the papers' GFLOPs convention only, which charges a stride-2 transposed convolution four times
  its real multiply-adds: in real multiply-adds (``posebook.bench.real_macs``) SimpleBaseline is the cheaper one.

Each ``*_visible`` claim reads the same runs on the visible keypoints. Every run trains on the same crops of the
synthetic scenes (front, side and back views, occluders, up to four overlapping people), rendered once with CPN's
five blur-kernel targets (GlobalNet C5..C2: 15, 11, 9, 7; RefineNet 7); a model with fewer outputs takes the
targets of the outputs it has (GlobalNet alone: the first four; SimpleBaseline: RefineNet's). As in the official
code (tf-cpn ``network.py``: ``global_label = label * (valid > 1.1)``), CPN's four GlobalNet targets draw the
visible joints only and penalise every joint, while RefineNet's draw every labelled joint; GlobalNet alone, with
nothing after it, learns every labelled joint. Records trained before the study followed the official targets
(GlobalNet drew every labelled joint) are read with :func:`as_recorded`. CPN's targets peak
at 255, as the official code's (its predictors end in a BatchNorm; chapter 06 measures why that matters);
SimpleBaseline, whose head ends in a plain convolution, trains on the same targets with peak 1, as its own official
code's Gaussians. Every claim reads PCK@0.1: at this budget PCK@0.2 sits near 0.8 for the networks of chapters 03,
04 and 07, too close to its ceiling to separate two of them. Run with ``python -m posebook.study 05``. Chapter 05.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from posebook import models, study
from posebook.bench import count_params, gflops
from posebook.keypoints import COCO
from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss
from posebook.models.cpn import PEAK
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import protocol, topdown
from posebook.studies.topdown import TRAIN_SEED, validation_set  # noqa: F401 (the chapters read them here)

CHAPTER = "05_cpn"
GLOBAL_OUTPUTS = 4  # GlobalNet's levels C5, C4, C3, C2; RefineNet's output is the fifth

# Per profile: model, data and budget. The cpu budget fits the whole study (18 trainings) in well under 90 minutes
# of a 2-core machine (`python -m posebook.study 05 --profile cpu --dry-run`). The cpu CPN is ResNet-50 at an eighth
# of its width (C2..C5 = 32..256 channels) with a 32-channel pyramid, every block of the paper kept; SimpleBaseline
# is the same ResNet with 32-channel deconvolutions, which costs about CPN's GFLOPs by the papers' convention
# (posebook.bench.gflops) and about 37 % fewer real multiply-adds (posebook.bench.real_macs). At a 32x24 heatmap
# the test-time blur is the official 21 (for 64x48 maps) halved to 11.
SIZES = {
    "smoke": dict(model=dict(depth=50, width=4, pyramid_channels=8), baseline=dict(depth=50, width=4,
                  deconv_channels=8), input_size=(64, 64), heatmap_size=(16, 16), decode_kernel=5,
                  image_size=(128, 128), batch_size=8, steps=4, warmup=0, lr=2e-3, train_items=32, val_people=4,
                  val_every=2),
    "cpu": dict(model=dict(depth=50, width=8, pyramid_channels=32), baseline=dict(depth=50, width=8,
                deconv_channels=32), input_size=(128, 96), heatmap_size=(32, 24), decode_kernel=11,
                image_size=(256, 256), batch_size=32, steps=600, warmup=30, lr=2e-3, train_items=19200,
                val_people=200, val_every=300),
    "gpu": dict(model=dict(depth=50, width=64, pyramid_channels=256), baseline=dict(depth=50, width=64,
                deconv_channels=256), input_size=(256, 192), heatmap_size=(64, 48), decode_kernel=21,
                image_size=(256, 256), batch_size=32, steps=4000, warmup=200, lr=1e-3, train_items=16000,
                val_people=500, val_every=500),
}
KERNELS = (15, 11, 9, 7, 7)  # GlobalNet C5, C4, C3, C2, then RefineNet (posebook.models.cpn.cpn_codecs)
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4
SIGMA = 2.0  # unused by blur targets; part of the data settings the topdown studies share
METRIC = "PCK@0.1"  # read on the occluded (v=1) and the visible (v=2) keypoints apart

PAPER_REFINE = ("Table 3 (§4.2.2, COCO minival, ResNet-50, 256x192): GlobalNet only 66.6 AP (3.90 GFLOPs), + RefineNet "
                "(CPN*, L2) 68.6, + OHKM (CPN) 69.4 (6.20 GFLOPs); no occluded/visible split is given")
PAPER_OHKM = ("Table 6 (§4.2.3, COCO minival, 256x192): top-M of 17 keypoints M = 6 / 8 / 10 / 12 / 14 / 17: 68.8 / "
              "69.4 / 69.0 / 69.0 / 69.0 / 68.6 AP (M = 17 is no mining; M = 4 not tried)")
PAPER_NON_LOCAL = ("not in the CPN paper; Wang et al. (CVPR 2018) add non-local blocks for context in video and "
                   "detection: here a question for the occluded keypoints")
PAPER_BASELINE = ("HRNet's Table 1 (COCO val2017, 256x192), from the SimpleBaseline and CPN papers: SimpleBaseline "
                  "ResNet-50 70.4 AP at 8.9 GFLOPs; CPN ResNet-50 68.6 (69.4 with OHKM) at 6.2 GFLOPs")


# ---- declarations ------------------------------------------------------------------------------------------------

def _config(profile: str, global_visible_only: bool = True, **model) -> dict:
    sizes = dict(SIZES[profile])
    baseline, cpn = sizes.pop("baseline"), sizes.pop("model")
    arch = model.pop("arch", "cpn")
    topk = model.pop("refine_topk", 8)
    net = dict(arch=arch, **(baseline if arch == "simple_baseline" else dict(cpn, refine=True, non_local=False)))
    net.update(model)
    codec = dict(kernels=list(KERNELS), decode_kernel=sizes["decode_kernel"])
    if arch == "cpn":  # CPN's official targets peak at 255; SimpleBaseline's head has no BatchNorm: peak 1
        codec["peak"] = PEAK
        if net.get("refine", True) and global_visible_only:  # official: GlobalNet draws visible joints only when
            codec["visible_only"] = [True] * (len(KERNELS) - 1) + [False]  # RefineNet takes the rest
    return dict(sizes, profile=profile, model=net, loss=dict(refine_topk=topk), sigma=SIGMA, scene=SCENE,
                max_people=MAX_PEOPLE, codec=codec)


#: Per profile, the GlobalNet targets ``claims`` declares when not told: the official ones (True, visible joints
#: only), except where the profile's committed runs were trained before the study followed the official code: the
#: cpu study is declared as it was trained (every labelled joint drawn) until it is rerun, so that ``summary`` and
#: the Results page read its records; :func:`as_recorded` does the same for any other profile with such records.
_GLOBAL_VISIBLE_ONLY: dict[str, bool] = {"cpu": False}


def claims(profile: str, global_visible_only: bool | None = None) -> list[Claim]:
    """Chapter 05's claims at ``profile``'s size, each on occluded keypoints and (``*_visible``) on the same runs'
    visible ones. ``global_visible_only``: whether the CPN runs draw GlobalNet's targets for visible joints only
    (None: the official targets, True, unless :func:`as_recorded` says otherwise). Chen et al. §4.2."""
    if global_visible_only is None:
        global_visible_only = _GLOBAL_VISIBLE_ONLY.get(profile, True)

    def config(**model) -> dict:
        return _config(profile, global_visible_only, **model)

    cpn = Variant("cpn", train, config())
    # each statement names the kind of keypoint it is read on: "{kind}" is "occluded" or "visible"
    variants = {
        "refinenet": ("GlobalNet + RefineNet (CPN) places {kind} keypoints better than GlobalNet alone",
                      PAPER_REFINE, (Variant("globalnet", train, config(refine=False)), cpn),
                      ("cpn", "globalnet")),
        "ohkm": ("training RefineNet on the 8 hardest of the 17 keypoints of each person (OHKM, M = 8) places {kind} "
                 "keypoints better than training it on all 17 (M = 17); M = 4, beyond the paper's range, is trained "
                 "beside them",
                 PAPER_OHKM, (Variant("M17", train, config(refine_topk=17)),
                              Variant("M8", of="refinenet/cpn"),
                              Variant("M4", train, config(refine_topk=4))), ("M8", "M17")),
        "non_local": ("a non-local block on C5, which lets every position see the whole crop, helps the {kind} "
                      "keypoints", PAPER_NON_LOCAL,
                      (Variant("cpn", of="refinenet/cpn"),
                       Variant("non_local", train, config(non_local=True))), ("non_local", "cpn")),
        "vs_simple_baseline": ("SimpleBaseline on the same ResNet (about CPN's GFLOPs by the papers' count, fewer "
                               "real multiply-adds) places {kind} keypoints better than CPN",
                               PAPER_BASELINE,
                               (Variant("cpn", of="refinenet/cpn"),
                                Variant("simple_baseline", train, config(arch="simple_baseline"))),
                               ("simple_baseline", "cpn")),
    }
    out = []
    for name, (statement, paper, vs, effect) in variants.items():
        out.append(Claim(CHAPTER, name, f"{statement.format(kind='occluded')} (PCK@0.1 of the occluded keypoints, "
                                        f"v=1)", f"{METRIC}.occluded", paper, vs, effect=effect))
        source = {v.name: (v.of or f"{name}/{v.name}") for v in vs}
        out.append(Claim(CHAPTER, f"{name}_visible",
                         f"{statement.format(kind='visible')} (the same runs, PCK@0.1 of the visible keypoints, v=2)",
                         f"{METRIC}.visible", paper,
                         tuple(Variant(v.name, of=source[v.name], read=f"{METRIC}.visible") for v in vs),
                         effect=effect))
    return out


def recorded_targets(profile: str, root=None) -> str | None:
    """The GlobalNet targets the CPN runs of ``profile``'s records were trained with: "visible" (the official
    targets: visible joints drawn, every joint penalised), "labelled" (every labelled joint drawn: records made
    before the study followed the official code), or None (no records, or records that match neither). Chapter 05."""
    for visible_only, name in ((True, "visible"), (False, "labelled")):
        saved = _GLOBAL_VISIBLE_ONLY.get(profile)
        _GLOBAL_VISIBLE_ONLY[profile] = visible_only
        try:
            entries = study.load_claims(CHAPTER, profile, root)
        except ValueError:  # a record made with another declaration
            continue
        finally:
            if saved is None:
                _GLOBAL_VISIBLE_ONLY.pop(profile)
            else:
                _GLOBAL_VISIBLE_ONLY[profile] = saved
        return name if any(v["values"] for c in entries for v in c["variants"]) else None
    return None


@contextmanager
def as_recorded(root=None):
    """Within the block, ``claims(profile)`` declares for every profile the GlobalNet targets its records were
    trained with (:func:`recorded_targets`), so that ``posebook.study.load_claims`` and ``chapter_costs`` read records
    made before the study followed the official targets. Outside it the declaration is the official one, which the
    study's next runs train on. Chapter 05."""
    saved = dict(_GLOBAL_VISIBLE_ONLY)
    try:
        for profile in study.PROFILES:
            if recorded_targets(profile, root) == "labelled":
                _GLOBAL_VISIBLE_ONLY[profile] = False
        yield
    finally:
        _GLOBAL_VISIBLE_ONLY.clear()
        _GLOBAL_VISIBLE_ONLY.update(saved)


# ---- model, targets, loss ------------------------------------------------------------------------------------------

def model(config: dict) -> nn.Module:
    """The network of a run: ``config["model"]["arch"]`` ("cpn" or "simple_baseline") with the rest of
    ``config["model"]`` as its arguments. Chapter 05."""
    spec = dict(config["model"])
    return models.create(spec.pop("arch"), num_joints=COCO.num_keypoints, **spec)


def _outputs(config: dict) -> list[int]:
    """Which of the five rendered targets the model's outputs take, in its output order."""
    spec = config["model"]
    if spec["arch"] == "simple_baseline":
        return [GLOBAL_OUTPUTS]
    return list(range(GLOBAL_OUTPUTS + (1 if spec.get("refine", True) else 0)))


def codecs(config: dict) -> list:
    """The codecs of the model's outputs (blur kernels 15/11/9/7 for GlobalNet C5..C2, 7 for RefineNet or
    SimpleBaseline); the last decodes. CPN §3.2; chapter 05."""
    every = topdown.codecs(topdown.data_settings(config))
    return [every[i] for i in _outputs(config)]


class OutputTargets(nn.Module):
    """``loss`` on the model's outputs against the targets at ``indices`` of the five the data carries (GlobalNet
    alone: the first four; SimpleBaseline: RefineNet's). Chapter 05."""

    def __init__(self, loss: nn.Module, indices: list[int]):
        super().__init__()
        self.loss, self.indices = loss, list(indices)

    def forward(self, outputs, target, target_weight):
        if not isinstance(target, (list, tuple)) or len(target) != len(KERNELS):
            raise ValueError(f"OutputTargets: expected the {len(KERNELS)} targets of the study's data, got "
                             f"{len(target) if isinstance(target, (list, tuple)) else type(target).__name__}")
        pick = lambda xs: [xs[i] for i in self.indices]  # noqa: E731
        t, w = pick(target), pick(target_weight)
        if isinstance(outputs, (list, tuple)):
            return self.loss(outputs, t, w)
        return self.loss(outputs, t[0], w[0])


def loss(config: dict) -> nn.Module:
    """The official CPN loss (L2 on each GlobalNet level, weight 1/4; OHKM top-M on RefineNet, weight 2; M =
    ``config["loss"]["refine_topk"]``, 17 = no mining), GlobalNet's part alone without RefineNet, L2 for
    SimpleBaseline; each on its targets of the study's data. CPN §3.2-3.3; chapter 05."""
    indices = _outputs(config)
    if config["model"]["arch"] == "simple_baseline":
        return OutputTargets(JointsMSELoss(), indices)
    bases: list[nn.Module] = [JointsMSELoss() for _ in range(GLOBAL_OUTPUTS)]
    weights = [0.25] * GLOBAL_OUTPUTS
    if len(indices) > GLOBAL_OUTPUTS:
        bases.append(JointsOHKMMSELoss(topk=config["loss"]["refine_topk"]))
        weights.append(2.0)
    return OutputTargets(MultiOutputLoss(bases, weights=weights), indices)


# ---- data: rendered once (posebook.studies.topdown) ----------------------------------------------------------------

def train_set(config: dict):
    """The study's ``config["train_items"]`` training crops with the five targets, as a (not rendered)
    ``SyntheticTopDown``: item i is the study's item i. Chapter 05."""
    return topdown.synthetic_train_set(topdown.data_settings(config), config["train_items"])


def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops, rendered once and cached (posebook.studies.topdown). Chapter 05."""
    return topdown.training_items("05-train", config, progress)


def scores(net: nn.Module, val) -> dict:
    """COCO AP/AR, PCK@0.2 and PCK@0.1 (all, occluded, visible) and error-kind shares on ``val``
    (posebook.studies.topdown). Chapter 05."""
    return topdown.scores(net, val)[0]


def trainer(config: dict, seed: int, data, val, **kwargs):
    """A ``Trainer`` of ``config``'s network (initialised from ``seed``) as the study trains it: Adam, cosine
    schedule with warmup, batch ``batch_size``, channels_last, ``scores`` on ``val`` every ``val_every`` steps.
    Chapter 05."""
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
    ``val_every`` steps. Chen et al. §4.2 (from scratch here)."""
    items, val = training_items(config, progress), validation_set(config)
    run = trainer(config, seed, items, val, progress=progress)
    history = run.fit()
    final = {k: v for k, v in history[-1].items() if k not in ("step", "loss", "lr", "samples_per_s")}
    final["params"] = count_params(run.model)
    final["gflops"] = gflops(run.model, tuple(config["input_size"]))
    return {"curves": history, "final": final, "val_people": len(val), "device": str(run.device)}


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------

def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops (0 when cached), timed on a few items (process time). Chapter 05."""
    return topdown.estimate_data("05-train", _config(profile))


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data), on
    the CPU with one thread's process time (an upper bound for two threads on a quiet machine). Chapter 05."""
    return protocol.estimate_run(model(config), loss(config), config, len(KERNELS))
