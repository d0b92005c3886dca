"""Chapter 07's study: the HRNet paper's claims (Sun, Xiao, Liu, Wang, CVPR 2019, §4.4).

- ``repeated_fusion``: the same HRNet with every exchange unit fusing (8 fusions) beats it with only the final one
  (1 fusion); the across-stage units alone (3 fusions) sit between (Table 6).
- ``fusion_receptive_field`` (probe): at initialisation, the more exchange units fuse, the larger the effective
  receptive field (from the input gradient) of the high-resolution branch's centre pixel entering the final fusion.
- ``output_receptive_field`` (read from the same probes): the same for the centre stride-4 output pixel, which the
  final fusion feeds from every branch in all three variants.
- ``high_resolution``: heatmaps regressed from the 1/4 branch beat those from the 1/8 and 1/16 branches (Fig. 5).
  Fig. 5 reads the four outputs of one ImageNet-pretrained network and does not print how the lower maps are
  scored; here each head is its own network trained from scratch (as Table 6's): the last exchange unit fuses every
  branch into the one the 1x1 head reads, and its heatmaps are upsampled bilinearly to 1/4, so targets, loss and
  decoding are the same for all three.

The data holds the difficulty these ideas address: the synthetic setting's front, side and back views (left/right
needs context from the whole body), occluders and up to four overlapping people. The training crops are rendered
once per study and reused by every variant and seed. Run with ``python -m posebook.study 07``. Chapter 07.
"""
from __future__ import annotations

import time

import torch
from torch import nn

import posebook
from posebook.bench import count_params
from posebook.losses import JointsMSELoss
from posebook.study import Claim, RenderedItems, Variant
from posebook.studies import protocol, topdown

CHAPTER = "07_hrnet"
EXCHANGES = ("final", "across_stages", "all")  # Table 6's rows: 1, 3 and 8 fusions
STRIDES = (4, 8, 16)  # Fig. 5's 1x, 2x and 4x representations (of a 256x192 input: 64x48, 32x24, 16x12)

# Per profile (protocol 2): the network, its budget in steps and the recipe (posebook.recipe) that every chapter's
# reference network trains with. The cpu network is chapter 07's reference, HRNet-W18 with a 32-wide stem and one
# residual unit per branch (every stage, module and exchange unit kept): the narrowest HRNet whose stride-4 branch
# has at least 17 channels. Every variant reads its heatmaps through a 1x1 conv + BN + ReLU to C channels
# (``head_channels``), so the heads of ``high_resolution`` are equally wide whichever branch they read (not in the
# official code: there the 1x1 head reads the branch as it is, C channels at 1/4 and 4C at 1/16). The cpu budget
# fits 20 runs (4 variants x 5 seeds) in about 120 one-thread minutes; `python -m posebook.study 07 --profile cpu
# --dry-run` prints the estimate.
SIZES = {
    "smoke": dict(model=dict(width=4, stem_width=8, layer1_blocks=1, stage_blocks=1), steps=4, train_items=32,
                  val_people=4, curve_people=4, evaluations=2, probe_batch=2, seeds=(0, 1)),
    "cpu": dict(model=dict(width=18, stem_width=32, layer1_blocks=1, stage_blocks=1), steps=900, train_items=16000,
                val_people=500, curve_people=200, evaluations=3, probe_batch=8, seeds=(0, 1, 2, 3, 4)),
    "gpu": dict(model=dict(width=32), steps=4000, train_items=16000, val_people=500, curve_people=200,
                evaluations=8, probe_batch=8, seeds=(0, 1, 2, 3, 4)),
}
SCENE: dict = {}  # SceneOptions' defaults: front/side/back views, occluders, overlapping people
MAX_PEOPLE = 4
PROBE_KEYS = ("profile", "model", "kwargs", "input_size", "heatmap_size", "sigma", "image_size", "scene",
              "max_people", "probe_batch")  # a probe's config: no training budget
ERF_MASSES = (0.5, 0.9)  # the probe's radii hold these shares of the |gradient| mass

PAPER_FUSION = ("Table 6 (§4.4, COCO val2017, from scratch, 256x192, W32 implied): final exchange only / + across "
                "stages / + within stages (8 fusions, the full HRNet): 70.8 / 71.9 / 73.4 AP")
PAPER_ERF = ("no figure: §3 motivates repeated fusion as each resolution receiving information from the parallel "
             "representations over and over; Table 6 measures its effect on AP")
PAPER_RESOLUTION = ("Fig. 5 (§4.4, COCO val2017, ImageNet-pretrained W32, 256x192): heatmaps regressed from the "
                    "1x / 2x / 4x (1/4, 1/8, 1/16 of the input) representation: 74.4 / 68.9 / 55.0 AP; from the "
                    "lowest (1/32) below 10 AP")


# ---- declarations ------------------------------------------------------------------------------------------------

def config(profile: str, exchange: str = "all", head_stride: int = 4) -> dict:
    """The protocol-2 config of one variant at ``profile``'s size (:func:`posebook.studies.protocol.recipe_config`):
    the recipe's data and trainer, the network's keywords with ``exchange``, ``head_stride`` and equal head widths.
    Chapter 07."""
    size = SIZES[profile]
    kwargs = dict(size["model"], exchange=exchange, head_stride=head_stride,
                  head_channels=size["model"]["width"])
    return dict(protocol.recipe_config(profile, "hrnet", kwargs, size["steps"], train_items=size["train_items"],
                                      val_people=size["val_people"], curve_people=size["curve_people"],
                                      evaluations=size["evaluations"]), scene=SCENE, max_people=MAX_PEOPLE)


def claims(profile: str) -> list[Claim]:
    """Chapter 07's claims at ``profile``'s size, under protocol 2 (the recipe, 5 seeds, 500 validation people,
    the Welch rule). Sun et al. §4.4."""
    size = SIZES[profile]
    fusion = {e: config(profile, exchange=e) for e in EXCHANGES}
    probe = {e: {k: fusion[e][k] for k in PROBE_KEYS if k != "probe_batch"} | {"probe_batch": size["probe_batch"]}
             for e in EXCHANGES}
    common = dict(seeds=size["seeds"], protocol=2, profile=profile)
    return [
        Claim(CHAPTER, "repeated_fusion",
              "the same HRNet predicts better when every exchange unit fuses the resolutions (8 fusions) than when "
              "only the final unit does (1 fusion); the across-stage units alone (3 fusions) sit between",
              "PCK@0.1", PAPER_FUSION,
              tuple(Variant(e, train, fusion[e]) for e in EXCHANGES), effect=("all", "final"), **common),
        Claim(CHAPTER, "fusion_inversion",
              "repeated fusion gives the high-resolution branch the whole body's context, so the full HRNet confuses "
              "left and right less on side and back views (the views where only context tells them apart) than "
              "the one fusing once (read on back views; side views are recorded beside)", "inversion.back", PAPER_FUSION,
              tuple(Variant(e, of=f"repeated_fusion/{e}", read="inversion.back") for e in EXCHANGES),
              effect=("all", "final"), sign=-1, **common),
        Claim(CHAPTER, "fusion_receptive_field",
              "at initialisation, the more exchange units fuse, the wider the input that the high-resolution "
              "representation sees as it enters the final fusion: the radius (input px) holding half the input "
              "gradient of its centre pixel", "erf.high.r50", PAPER_ERF,
              tuple(Variant(e, erf_probe, probe[e], kind="probe") for e in EXCHANGES), effect=("all", "final"),
              **common),
        Claim(CHAPTER, "output_receptive_field",
              "at initialisation, the more exchange units fuse, the wider the input that the centre output pixel "
              "sees (radius holding half its input gradient); the final fusion brings every branch into it in all "
              "three, so this may not differ", "erf.output.r50", PAPER_ERF,
              tuple(Variant(e, of=f"fusion_receptive_field/{e}", read="erf.output.r50") for e in EXCHANGES),
              effect=("all", "final"), **common),
        Claim(CHAPTER, "high_resolution",
              "heatmaps regressed from the 1/4-resolution branch place keypoints more precisely (PCK at a tenth of "
              "the box) than those regressed from the 1/16 branch (upsampled to 1/4) of the same HRNet, the heads "
              "equally wide", "PCK@0.1", PAPER_RESOLUTION,
              (Variant("stride4", of="repeated_fusion/all"),
               Variant(f"stride{STRIDES[-1]}", train, config(profile, head_stride=STRIDES[-1]))),
              effect=("stride4", f"stride{STRIDES[-1]}"), **common),
    ]


def _model(config: dict) -> nn.Module:
    return protocol.recipe_model(config)


# ---- data: rendered once (posebook.studies.topdown) ----------------------------------------------------------------

def training_items(config: dict, progress: bool = False) -> RenderedItems:
    """The study's training crops, rendered once and cached (posebook.studies.topdown). Chapter 07."""
    return topdown.training_items("07-train", config, progress)


# ---- the trained variants ----------------------------------------------------------------------------------------

def scores(model: nn.Module, val) -> dict:
    """COCO AP/AR, PCK@0.2 and PCK@0.1, and error-kind shares on ``val`` (posebook.studies.topdown). Chapter 07."""
    return topdown.scores(model, val)[0]


def train(config: dict, seed: int, progress: bool = False) -> dict:
    """Train one HRNet of ``config`` with ``seed`` (init and data order) with the profile's recipe on the rendered
    crops, from scratch as Table 6 (:func:`posebook.studies.protocol.recipe_run`: curves, and the final scores with
    left/right inversions by view). Sun et al. §4.4."""
    torch.manual_seed(seed)
    net = _model(config)
    return protocol.recipe_run("07-train", config, seed, net, JointsMSELoss(), progress)


# ---- the probe ---------------------------------------------------------------------------------------------------

def probe_images(config: dict) -> torch.Tensor:
    """The first ``probe_batch`` training crops (B, 3, H, W), rendered on their own (no need for the whole set).
    Chapter 07."""
    data = topdown.synthetic_train_set(topdown.data_settings(config), config["probe_batch"])
    return torch.stack([data[i]["image"] for i in range(config["probe_batch"])])


def calibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to those of ``images`` and put the model in eval mode, so each layer
    is a fixed map of its input (as in inference) at the scale training would see. Chapter 07."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    model.train()
    with torch.no_grad():
        model(images)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return model.eval()


def effective_receptive_field(fn, images: torch.Tensor, masses=(0.5, 0.9)) -> dict:
    """The input gradient of the centre pixel of ``fn(images)`` (a (B, C, h, w) map; summed over channels and
    images): its absolute-gradient map (H, W) and, per share in ``masses``, the radius in input px around that pixel's
    centre (pixel i at input i x stride) holding that share of the absolute-gradient mass.

    Luo et al. 2016's effective receptive field, applied to HRNet's repeated fusion (Sun et al. §3); chapter 07.
    """
    x = images.detach().clone().requires_grad_(True)
    out = fn(x)
    h, w = out.shape[-2:]
    cy, cx = h // 2, w // 2
    out[:, :, cy, cx].sum().backward()
    grad = x.grad.abs().sum(dim=(0, 1))  # (H, W)
    centre = (cy * images.shape[-2] / h, cx * images.shape[-1] / w)
    ys, xs = torch.meshgrid(torch.arange(grad.shape[0], dtype=torch.float64),
                            torch.arange(grad.shape[1], dtype=torch.float64), indexing="ij")
    dist = torch.sqrt((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2).flatten()
    order = torch.argsort(dist, stable=True)
    dist, cum = dist[order], torch.cumsum(grad.flatten().double()[order], 0)
    if not cum[-1] > 0:
        raise ValueError(f"effective_receptive_field: the input gradient of the centre pixel ({cy}, {cx}) of a "
                         f"{h}x{w} map is zero everywhere")
    radii = {m: float(dist[torch.searchsorted(cum, m * cum[-1]).clamp(max=len(cum) - 1)]) for m in masses}
    return {"grad": grad, "radii": radii, "centre": centre}


def erf_probe(config: dict, seed: int) -> dict:
    """Effective receptive fields at initialisation (``seed``), BatchNorm calibrated on the first ``probe_batch``
    training crops, no step taken (deterministic): of the high-resolution branch's centre pixel as it enters the
    final fusion (``erf.high``) and of the centre output pixel (``erf.output``). Sun et al. §3; chapter 07."""
    images = probe_images(config)
    torch.manual_seed(seed)
    model = calibrate_batchnorm(_model(config), images)
    final = {}
    for name, fn in (("high", lambda x: model.fusion_inputs(x)[0]), ("output", model)):
        radii = effective_receptive_field(fn, images, ERF_MASSES)["radii"]
        final.update({f"erf.{name}.r{m * 100:.0f}": r for m, r in radii.items()})
    return {"curves": [], "final": final, "val_people": None, "device": "cpu"}


# ---- estimates for --dry-run ---------------------------------------------------------------------------------------
# On the CPU the estimates are process time of one thread: a machine shared with other work inflates wall time (and
# the busy-waiting of torch's threads inflates their CPU time) many times over, while one thread's CPU time stays
# close to what it is on a quiet machine, and bounds the wall time of two threads from above.

def _timer(device: torch.device):
    """(start, stop) seconds of work: one thread's process time on the CPU, synchronised wall time on a GPU."""
    if device.type == "cpu":
        return time.process_time, time.process_time

    def wall():
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return wall, wall


def estimate_data(profile: str) -> tuple[float, str]:
    """Seconds to render the training crops (0 when cached), timed on a few items (process time). Chapter 07."""
    return topdown.estimate_data("07-train", config(profile))


def estimate_run(config: dict, kind: str) -> tuple[float, str]:
    """Seconds for one run of ``config``, from a few timed training steps and a timed forward pass (random data);
    on the CPU with one thread's process time (an upper bound for two threads on a quiet machine). Chapter 07."""
    if kind != "probe":  # a training run: timed as every top-down study's
        return protocol.estimate_run(_model(config), JointsMSELoss(), config)
    device = posebook.device()
    threads = torch.get_num_threads()
    clock, _ = _timer(device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        params = count_params(_model(config))
        start = clock()
        erf_probe(config, 0)
        return clock() - start, f"{params / 1e6:.3f}M params"
    finally:
        torch.set_num_threads(threads)
