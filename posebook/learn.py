"""Does the recipe learn? Each chapter's reference network trained with its profile's recipe
(:mod:`posebook.recipe`) and scored as the studies score (COCO AP, PCK, left/right inversion by view), with the
oracle's decoding ceiling (:mod:`posebook.inference.oracle`) beside it.

``python -m posebook.bench learn --chapter NN [--seconds S] [--val-seed K] --json`` runs :func:`learn`. The reference
networks are each chapter's model at the cpu size: no layer that feeds a heatmap head is narrower than the 17 joints
it predicts (HRNet at width 18, the narrowest whose stride-4 branch is 18 channels wide; the ResNet trunks at a
quarter of their width). Their ``steps`` are each chapter's budget: about 20 minutes of one CPU thread (at most 25),
from the measured time of a step at 96 x 64, batch 32. Each budget is checked by a plateau pilot, the same run at a
constant learning rate (``bench learn --plateau``, :func:`plateau`): where that curve has flattened the budget
reaches the plateau; where it still rises the budget is the time cap. Chapter 01.

:func:`live_run` is the chapters' live run of the same networks: in the cpu profile a fifth of the budget (about
a quarter for the hourglass, which starts slowly from scratch: 1400 of 5500 steps, within 5 minutes), trained
as a whole run (its own flat-then-cosine schedule) and cached; in gpu and full the papers' sizes. Chapters 03-07.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from posebook import models
from posebook.keypoints import COCO
from posebook.recipe import Recipe, recipe
from posebook.studies import topdown

IMAGE_SIZE = (256, 256)
MAX_PEOPLE = 4
SCENE: dict = {}  # the renderer's view mix (front, side, back), occluders and overlapping people


@dataclass(frozen=True)
class Reference:
    """A chapter's reference network at the cpu size: ``models.create(model, **kwargs)``, its targets ("gaussian",
    "cpn" or "mspn") and its study budget in steps. Chapter 01."""

    chapter: str
    model: str
    kwargs: dict = field(default_factory=dict)
    targets: str = "gaussian"
    steps: int = 3000
    train_items: int = 16000
    pretrained: bool = False  # the ResNet trunk starts from TRUNK_FILE, as the papers' from ImageNet
    live_steps: int | None = None  # the cpu live run (None: a LIVE_SHARE of ``steps``)

    def build(self, smoke: bool = False) -> nn.Module:
        kwargs = dict(self.kwargs, **(SMOKE_SIZES.get(self.model, {}) if smoke else {}))
        return models.create(self.model, num_joints=COCO.num_keypoints, **kwargs)


REFERENCES = {
    # the hourglass learns from scratch and starts slowly (AP 0.02 after 1100 steps, 0.17 after 2250 of its
    # calibration run): its live run is about a quarter of the budget, as many steps as fit 5 minutes of 2 threads
    "03": Reference("03_stacked_hourglass", "hourglass", dict(stacks=2, channels=64, order=3), steps=5500,
                    live_steps=1400),
    "04": Reference("04_simple_baseline", "simple_baseline", dict(depth=50, width=16, deconv_channels=64),
                    steps=5800, pretrained=True),
    "05": Reference("05_cpn", "cpn", dict(depth=50, width=16, pyramid_channels=64), targets="cpn", steps=3000,
                    pretrained=True),
    "06": Reference("06_mspn", "mspn", dict(stages=2, width=16), targets="mspn", steps=2000, pretrained=True),
    "07": Reference("07_hrnet", "hrnet", dict(width=18, stem_width=32, layer1_blocks=1, stage_blocks=1),
                    steps=2500),
}
SMOKE_SIZES = {  # the smoke profile's tiny versions of the same networks (tests)
    "hourglass": dict(channels=8, order=2), "simple_baseline": dict(width=4, deconv_channels=8),
    "cpn": dict(width=4, pyramid_channels=8), "mspn": dict(width=4), "hrnet": dict(width=4, stem_width=8),
}


def reference(chapter: str) -> Reference:
    """The reference of ``chapter`` ("04", "4" or "04_simple_baseline")."""
    key = str(chapter).split("_")[0].zfill(2)
    if key not in REFERENCES:
        raise ValueError(f"learn: no reference network for chapter {chapter!r}; chapters {sorted(REFERENCES)}")
    return REFERENCES[key]


# ---- targets and loss ----------------------------------------------------------------------------------------------

def codec_spec(ref: Reference, rec: Recipe) -> dict | None:
    """The study data's ``codec`` spec of a reference (Gaussians of the recipe's sigma: None, HRNet's, or
    ``{"unbiased": True}``, DARK's, as the recipe says); CPN's and MSPN's
    blur kernels scaled to the map (:func:`posebook.codecs.blur.scaled_kernel`), at the official peak 255, GlobalNet's
    and MSPN's L2 targets drawn for visible joints only (:func:`posebook.models.cpn.cpn_codecs`)."""
    from posebook.codecs import VisibleBlurHeatmap
    from posebook.codecs.blur import scaled_kernel
    from posebook.models.cpn import GLOBAL_KERNELS, REFINE_KERNEL
    from posebook.models.mspn import mspn_codecs

    scale = rec.kernel_scale
    if ref.targets == "gaussian":
        return {"unbiased": True} if rec.unbiased else None
    if ref.targets == "cpn":
        kernels = [scaled_kernel(k, scale) for k in (*GLOBAL_KERNELS, REFINE_KERNEL)]
        return dict(kernels=kernels, decode_kernel=scaled_kernel(21, scale), peak=255,  # GlobalNet: visible only
                    visible_only=[True] * len(GLOBAL_KERNELS) + [False])
    if ref.targets == "mspn":
        codecs = mspn_codecs(ref.kwargs.get("stages", 2), rec.input_size, rec.heatmap_size, kernel_scale=scale)
        return dict(kernels=[c.kernel for c in codecs], decode_kernel=scaled_kernel(5, scale), peak=codecs[-1].peak,
                    visible_only=[isinstance(c, VisibleBlurHeatmap) for c in codecs],
                    clamp=[c.clamp for c in codecs])
    raise ValueError(f"learn: unknown targets {ref.targets!r}; expected gaussian, cpn or mspn")


def loss(ref: Reference, net: nn.Module) -> nn.Module:
    """The paper's loss of the reference: L2 on each hourglass; CPN's L2 on GlobalNet (1/4 each) and OHKM top-8 on
    RefineNet (2); MSPN's official staged loss; L2 for SimpleBaseline and HRNet."""
    from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss
    from posebook.models.mspn import mspn_loss

    if ref.model == "hourglass":
        return MultiOutputLoss(JointsMSELoss())
    if ref.model == "cpn":
        return MultiOutputLoss([JointsMSELoss() for _ in range(4)] + [JointsOHKMMSELoss(topk=8)],
                               weights=[0.25] * 4 + [2.0])
    if ref.model == "mspn":
        return mspn_loss(len(net.stages))
    return JointsMSELoss()


def data_config(ref: Reference, rec: Recipe, train_items: int | None = None, val_people: int = 500,
                val_seed: int | None = None) -> dict:
    """The data settings (:func:`posebook.studies.topdown.data_settings`) of a reference trained with a recipe."""
    a = rec.augment
    config = dict(input_size=tuple(rec.input_size), heatmap_size=tuple(rec.heatmap_size), sigma=rec.sigma,
                  image_size=IMAGE_SIZE, scene=SCENE, max_people=MAX_PEOPLE,
                  train_items=train_items or ref.train_items, val_people=val_people,
                  val_seed=topdown.VAL_SEED if val_seed is None else int(val_seed),
                  augment=dict(scale=a.scale, scale_mode=a.scale_mode, rotation=a.rotation,
                               rotation_prob=a.rotation_prob, flip=a.flip, half_body=a.half_body))
    spec = codec_spec(ref, rec)
    if spec is not None:
        config["codec"] = spec
    return config


# ---- the run --------------------------------------------------------------------------------------------------------

def ceiling(val) -> float:
    """The decoding ceiling of ``val``: the oracle's COCO AP through the evaluation path."""
    from posebook.inference.oracle import TargetOracle

    return topdown.scores(TargetOracle(val), val)[0]["AP"]


def _step_seconds(probe, steps: int = 6) -> float:
    """One training step's process time: the median of ``steps`` steps of ``probe`` (a Trainer to throw away)
    after one warm-up step."""
    probe.progress, probe.validate = False, None
    timings = []
    for _ in range(steps + 1):
        start = time.process_time()
        probe.fit(until=probe.step + 1)
        timings.append(time.process_time() - start)
    return float(np.median(timings[1:]))


def build(ref: Reference, profile_name: str = "cpu") -> nn.Module:
    """The reference network of a profile: the smoke size for ``smoke``, the cpu size (its trunk from the shipped
    pretrained one where the paper starts from ImageNet) for ``cpu``, the paper's size from scratch for ``gpu`` and
    ``full`` (no ImageNet weights offline; the shipped trunk is the cpu width). Seed the RNG first."""
    if profile_name in ("gpu", "full"):
        sizes = FULL_SIZES if profile_name == "full" else PAPER_SIZES
        return models.create(ref.model, num_joints=COCO.num_keypoints, **sizes[ref.model])
    net = ref.build(smoke=profile_name == "smoke")
    if ref.pretrained and profile_name == "cpu":  # the smoke networks are narrower than the shipped trunk
        from posebook.weights import load_trunk

        load_trunk(net, pretrained_trunk(), source=str(TRUNK_FILE))
    return net


def learn(chapter: str, seconds: float | None = None, steps: int | None = None, val_seed: int | None = None,
          val_people: int = 500, profile_name: str = "cpu", seed: int = 0, evaluations: int = 6,
          threads: int = 1, progress: bool = False, schedule: str | None = None) -> dict:
    """Train ``chapter``'s reference network with the profile's recipe for ``steps`` (default: its study budget) or
    for about ``seconds`` of process time, then score it on ``val_people`` validation people (seed ``val_seed``,
    default the studies'). ``schedule`` replaces the recipe's learning-rate schedule (``"constant"``: the plateau
    pilot, :func:`plateau`); ``evaluations`` is the number of points on the learning curve (200 validation people
    each). Returns one flat dict: chapter, steps, cpu_minutes, AP, PCK@0.1, PCK@0.2, inversion {front, side, back},
    val_people, ceiling (the oracle's AP), the recipe, and the learning curve. Chapter 01."""
    from dataclasses import replace

    from posebook.train import Trainer

    ref, rec = reference(chapter), recipe(profile_name)
    if schedule is not None:
        rec = replace(rec, schedule=schedule)
    smoke = profile_name == "smoke"
    config = data_config(ref, rec, train_items=64 if smoke else None, val_people=8 if smoke else val_people,
                         val_seed=val_seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        items = topdown.training_items(f"learn-{ref.chapter[:2]}", config, progress)  # rendered once, cached
        val = topdown.validation_set(config)
        views = topdown.views(val)
        curve_val = topdown.validation_set(dict(config, val_people=min(200, config["val_people"])))
        curve_views = topdown.views(curve_val)
        clock = time.process_time()  # training and scoring; rendering the data is not counted
        torch.manual_seed(seed)
        net = build(ref, profile_name)
        budget = steps or (4 if smoke else ref.steps)

        def trainer(model: nn.Module, n: int) -> Trainer:
            every = max(1, n // evaluations)
            return Trainer(model, items, loss(ref, model), seed=seed, device="cpu", channels_last=True,
                           validate=lambda m: topdown.scores(m, curve_val, views=curve_views)[0], val_every=every,
                           log_every=max(1, n // 50), progress=progress, **rec.trainer_options(n))

        if seconds is not None:  # as many steps as fit the time, a step timed on this machine first
            import copy

            per_step = _step_seconds(trainer(copy.deepcopy(net), budget))
            budget = max(1, int(seconds / (per_step * threads)))
            clock = time.process_time()
        run = trainer(net, budget)
        history = run.fit()
        final, _ = topdown.scores(run.model, val, views=views)
        cpu_minutes = (time.process_time() - clock) / 60
    finally:
        torch.set_num_threads(previous)
    curves = [{k: h[k] for k in ("step", "loss", "lr", "AP", "PCK@0.1", "PCK@0.2", "inversion.back") if k in h}
              for h in history]
    return dict(chapter=ref.chapter, model=ref.model, kwargs=ref.kwargs, pretrained=ref.pretrained and not smoke,
                steps=budget, threads=threads,
                cpu_minutes=round(cpu_minutes, 2), AP=final["AP"], AP50=final["AP50"], **{
                    "PCK@0.1": final["PCK@0.1"], "PCK@0.2": final["PCK@0.2"]},
                inversion={v: final[f"inversion.{v}"] for v in topdown.VIEWS}, val_people=len(val),
                val_seed=config["val_seed"], ceiling=ceiling(val), seed=seed, recipe=rec.describe(), curve=curves)


# ---- the chapters' live runs ----------------------------------------------------------------------------------------

LIVE_SHARE = 5  # a cpu live run is a fifth of its chapter's study budget (about 4 one-thread minutes), run whole,
# unless its Reference sets live_steps
PAPER_SIZES = {  # the gpu and full profiles' networks: the papers' (the hourglass at 2 stacks, a Colab session's)
    "hourglass": dict(stacks=2, channels=256, order=4), "simple_baseline": dict(depth=50),
    "cpn": dict(depth=50), "mspn": dict(stages=2), "hrnet": dict(width=32),
}
FULL_SIZES = dict(PAPER_SIZES, hourglass=dict(stacks=8, channels=256, order=4))  # the full profile: Newell's 8 stacks
LIVE_BUDGETS = {  # steps (None: the cpu share of the study budget), training crops (None: the reference's),
    # validation people, batch (None: the recipe's), loader workers, validations in the run (the last at its end)
    "smoke": dict(steps=4, train_items=64, val_people=8, batch_size=None, num_workers=0, validations=2),
    "cpu": dict(steps=None, train_items=None, val_people=500, batch_size=None, num_workers=0, validations=4),
    "gpu": dict(steps=3000, train_items=96000, val_people=500, batch_size=None, num_workers=4, validations=4),
    "full": dict(steps=40000, train_items=1_280_000, val_people=1000, batch_size=None, num_workers=4,
                 validations=8),
}
TRIAL_BUDGET = dict(steps=2, train_items=8, val_people=2, batch_size=2, num_workers=0, validations=1)


def live_settings(chapter: str, profile_name: str | None = None) -> dict:
    """What a chapter's live run trains in a profile: the network (``model``, ``kwargs``, ``pretrained``), the
    data (:func:`data_config`'s keys: crop and heatmap sizes, sigma or blur kernels, augmentation, training
    crops, validation people) and the budget (``steps``, ``batch_size``, ``num_workers``). A trial run
    (``$POSEBOOK_TRIAL``) keeps the profile's network and sizes with ``TRIAL_BUDGET``. Chapters 03-07."""
    from posebook.profiles import is_trial, profile

    name = profile_name or profile()
    if name not in LIVE_BUDGETS:
        raise ValueError(f"live_settings: unknown profile {name!r}; expected one of {sorted(LIVE_BUDGETS)}")
    ref, rec = reference(chapter), recipe(name)
    budget = dict(LIVE_BUDGETS[name], **(TRIAL_BUDGET if is_trial() else {}))
    kwargs = ({"gpu": PAPER_SIZES, "full": FULL_SIZES}[name][ref.model] if name in ("gpu", "full")
              else dict(ref.kwargs, **(SMOKE_SIZES[ref.model] if name == "smoke" else {})))
    settings = data_config(ref, rec, train_items=budget["train_items"], val_people=budget["val_people"])
    return dict(settings, chapter=ref.chapter, model=ref.model, kwargs=kwargs,
                pretrained=ref.pretrained and name == "cpu", profile=name, trial=is_trial(),
                steps=budget["steps"] or ref.live_steps or max(1, ref.steps // LIVE_SHARE),
                batch_size=budget["batch_size"] or rec.batch_size, num_workers=budget["num_workers"],
                validations=budget["validations"], rendered=name in ("smoke", "cpu"), recipe=rec.describe())


@dataclass
class LiveRun:
    """A chapter's live run: the trained ``model`` (eval mode), its ``settings`` (:func:`live_settings`), the
    ``train_set`` and ``val_set``, the Trainer's ``history`` (``validations`` of the settings, the last at the
    end), the final
    ``scores`` (:func:`posebook.studies.topdown.scores` with the views: AP, PCK@0.1, PCK@0.2, their occluded and
    visible parts, inversion by view), ``seconds`` of wall time spent here and whether the run was ``loaded``
    from the cache. Chapters 03-07."""

    settings: dict
    model: nn.Module
    train_set: object
    val_set: object
    history: list
    scores: dict
    seconds: float
    loaded: bool
    views: dict | None = None

    @property
    def steps(self) -> int:
        return self.settings["steps"]

    @property
    def train_seconds(self) -> float:
        """Wall seconds of the training loop, from the throughput the Trainer logged (so a run loaded from the cache
        reports the time it took to train, not to load)."""
        logged = [h for h in self.history if "samples_per_s" in h]
        starts = [0] + [h["step"] for h in logged[:-1]]
        batch = self.settings["batch_size"]
        return float(sum((h["step"] - s) * batch / h["samples_per_s"] for h, s in zip(logged, starts)))

    def describe(self) -> str:
        """One line: the network, its size and start, the crops and the steps (:func:`describe`)."""
        return describe(self.settings)


def describe(settings: dict) -> str:
    """A live run's :func:`live_settings` in one line: the network, its size and start, the crops and the steps."""
    s = settings
    kwargs = ", ".join(f"{k}={v}" for k, v in s["kwargs"].items())
    start = "from the pretrained trunk" if s["pretrained"] else "from scratch"
    return (f"{s['model']}({kwargs}), {start}, {s['input_size'][0]}x{s['input_size'][1]} crops, "
            f"{s['steps']} steps of batch {s['batch_size']} with the {s['recipe']['recipe']} recipe")


def live_train_set(settings: dict, progress: bool = False):
    """The synthetic training crops of a live run's :func:`live_settings`: rendered once and cached on disk in the
    smoke and cpu profiles (``settings["rendered"]``), drawn on the fly in gpu and full. Chapters 03-07."""
    if settings["rendered"]:
        return topdown.training_items(f"learn-{reference(settings['chapter']).chapter[:2]}", settings, progress)
    return topdown.synthetic_train_set(topdown.data_settings(settings), settings["train_items"])


def live_validation(settings: dict) -> tuple:
    """(the synthetic validation people of a live run's :func:`live_settings`, their views by person for
    :func:`posebook.studies.topdown.scores`). Chapters 03-07."""
    val_set = topdown.validation_set(settings)
    return val_set, topdown.views(val_set)


def live_trainer(settings: dict, train_set, val_set=None, views: dict | None = None, seed: int = 0,
                 progress: bool = True, plot: bool = False, checkpoint=None):
    """The :class:`posebook.train.Trainer` of a live run: the reference network of ``settings``
    (:func:`live_settings`; ``torch.manual_seed(seed)`` first), its paper's loss, the profile's recipe for
    ``settings["steps"]`` at ``settings["batch_size"]``, ``settings["validations"]`` validations on ``val_set``
    (none without one) and a checkpoint every quarter of the run (to ``checkpoint`` when given). Used by
    :func:`live_run` and ``python -m posebook.train``. Chapters 01 and 03-07."""
    from posebook.train import Trainer

    ref, rec = reference(settings["chapter"]), recipe(settings["profile"])
    torch.manual_seed(seed)
    net = build(ref, settings["profile"])
    steps = settings["steps"]
    options = dict(rec.trainer_options(steps), batch_size=settings["batch_size"])
    validate = None if val_set is None else (lambda m: topdown.scores(m, val_set, views=views)[0])
    return Trainer(net, train_set, loss(ref, net), seed=seed, num_workers=settings["num_workers"],
                   validate=validate, val_every=max(1, steps // settings["validations"]),
                   log_every=max(1, steps // 50), progress=progress, plot=plot, checkpoint=checkpoint,
                   checkpoint_every=max(1, steps // 4), **options)


def live_run(chapter: str, profile_name: str | None = None, data: tuple | None = None, seed: int = 0,
             progress: bool = True, plot: bool = False) -> LiveRun:
    """Train (or load from the cache) ``chapter``'s reference network with the profile's recipe, the way
    ``python -m posebook.bench learn`` does at a fifth of the study budget in the cpu profile, and score it.

    ``data=(train_set, val_set)`` replaces the synthetic people (the full profile's COCO subset; build it with
    :func:`live_settings`' sizes and ``topdown.codecs(topdown.data_settings(settings))``). The run is cached under
    the chapter, the profile, its settings and the library's source (:func:`posebook.checkpoints.checkpoint_path`):
    a second execution loads it. Chapters 03-07."""
    from posebook.checkpoints import load_or_train

    settings = live_settings(chapter, profile_name)
    if data is not None:
        train_set, val_set = data
        views = None
    else:
        train_set = live_train_set(settings, progress)
        val_set, views = live_validation(settings)
    start = time.perf_counter()
    trainer = live_trainer(settings, train_set, val_set, views, seed=seed, progress=progress, plot=plot)
    key = {k: v for k, v in settings.items() if k not in ("trial",)}
    if data is not None:
        key["data"] = f"{type(train_set).__name__}({len(train_set)}), {type(val_set).__name__}({len(val_set)})"
    load_or_train(trainer, settings["chapter"], dict(key, seed=seed), settings["profile"])
    final = next(h for h in reversed(trainer.history) if "AP" in h)
    return LiveRun(settings=settings, model=trainer.model.eval(), train_set=train_set, val_set=val_set,
                   history=trainer.history, scores={k: v for k, v in final.items() if k not in ("step",)},
                   seconds=time.perf_counter() - start, loaded=trainer.loaded, views=views)


# ---- the pretrained trunk -------------------------------------------------------------------------------------------

PRETRAIN_SEED = topdown.TRAIN_SEED + 1  # scenes no study, chapter or validation set draws (they use 0 and 1_000_003)
TRUNK_FILE = Path(__file__).parent / "pretrained" / "resnet50_w16_synthetic.pt"
TRUNK_SHA256 = "ca3e0471fde442d881de03b0380125915037b52e94a597c2b5741a1ef2391598"  # posebook/pretrained/README.md


def pretrain_trunk(steps: int, seed: int = 0, threads: int = 1, progress: bool = False,
                   profile_name: str = "cpu") -> tuple[dict, dict]:
    """Train chapter 04's SimpleBaseline (ResNet-50 at width 16) from scratch with the cpu recipe on scenes of
    ``PRETRAIN_SEED`` for ``steps``, and return (its trunk's state_dict in float16, the run's scores on the
    studies' validation people). The papers start SimpleBaseline, CPN and MSPN from an ImageNet ResNet; this trunk
    stands in for it: features learned on other synthetic people, not on photos. Chapter 04."""
    from posebook.train import Trainer
    from posebook.weights import TRUNK_PARTS

    ref, rec = reference("04"), recipe(profile_name)
    smoke = profile_name == "smoke"
    config = dict(data_config(ref, rec, train_items=64 if smoke else None, val_people=8 if smoke else 200),
                  train_seed=PRETRAIN_SEED)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        items = topdown.training_items("pretrain-trunk", config, progress)
        torch.manual_seed(seed)
        net = ref.build(smoke)
        run = Trainer(net, items, loss(ref, net), seed=seed, device="cpu", channels_last=True, progress=progress,
                      log_every=max(1, steps // 50), **rec.trainer_options(steps))
        run.fit()
        val = topdown.validation_set(config)
        final, _ = topdown.scores(run.model, val)
    finally:
        torch.set_num_threads(previous)
    trunk = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in run.model.state_dict().items() if k.split(".")[0] in TRUNK_PARTS}
    return trunk, {k: final[k] for k in ("AP", "PCK@0.1", "PCK@0.2")}


def sha256(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pretrained_trunk(path=None) -> dict:
    """The shipped trunk (``TRUNK_FILE``) as float32 tensors, after checking its SHA-256 against ``TRUNK_SHA256``."""
    from posebook.weights import CheckpointError

    path = Path(path or TRUNK_FILE)
    if not path.exists():
        raise CheckpointError(f"the pretrained trunk {path} is absent: make it with the command in "
                              f"{TRUNK_FILE.parent / 'README.md'}")
    if path == TRUNK_FILE and TRUNK_SHA256 is not None and sha256(path) != TRUNK_SHA256:
        raise CheckpointError(f"{path} has SHA-256 {sha256(path)}, not the recorded {TRUNK_SHA256}: the file was "
                              f"changed or damaged; make it again with the command in {path.parent / 'README.md'}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# ---- command line ---------------------------------------------------------------------------------------------------

CALIBRATION = "calibration"  # book/results/calibration/NN_<chapter>.json: each chapter's study-budget result
PLATEAU = "plateau"  # book/results/calibration/plateau/NN_<chapter>.json: the same run at a constant learning rate
PLATEAU_EVALUATIONS = 12


def calibration_path(chapter: str, root=None):
    """``book/results/calibration/<chapter>.json`` (e.g. 04_simple_baseline.json)."""
    from posebook.results import ROOT

    return Path(root or ROOT / "book" / "results") / CALIBRATION / f"{reference(chapter).chapter}.json"


def plateau_path(chapter: str, root=None):
    """``book/results/calibration/plateau/<chapter>.json``: the chapter's plateau pilot."""
    path = calibration_path(chapter, root)
    return path.parent / PLATEAU / path.name


def calibration_records(root=None) -> dict[str, dict]:
    """The committed calibration records (``book/results/calibration/*.json``, one per chapter), by chapter."""
    return _records(calibration_path("04", root).parent)


def _records(folder: Path) -> dict[str, dict]:
    """Every ``*.json`` record of ``folder`` (not its subfolders), by file stem, in name order."""
    import json

    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def plot_calibration(records: dict[str, dict], metric: str = "AP", ax=None):
    """Each chapter's learning curve (``metric`` on the curve's validation people against the step), with the
    final value on the run's validation people and the oracle's ceiling. Returns the figure. Chapter 01."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, (name, record) in enumerate(records.items()):
        points = [(c["step"], c[metric]) for c in record["curve"] if metric in c]
        color = f"C{i}"
        if points:
            ax.plot(*zip(*points), "-", color=color, lw=1.5, label=f"{name} ({record['cpu_minutes']:.0f} CPU-min)")
        ax.plot([record["steps"]], [record[metric]], "o", color=color, ms=6)
        if metric == "AP":
            ax.axhline(record["ceiling"], color=color, ls=":", lw=0.8)
    ax.set_xlabel("training step (batch 32)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1 if metric != "AP" else max([r["ceiling"] for r in records.values()] + [0.1]) * 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{metric} while training with the cpu recipe (dots: the final score; dotted: the oracle's ceiling)",
                 fontsize=9)
    return ax.figure


# ---- the plateau pilots: the same runs at a constant learning rate ---------------------------------------------------

PLATEAU_TOLERANCE = 0.01  # PCK@0.1: about one seed's standard deviation of a calibration run (chapter 01)


def plateau_records(root=None) -> dict[str, dict]:
    """The committed plateau pilots (``book/results/calibration/plateau/*.json``), by chapter."""
    return _records(plateau_path("04", root).parent)


def plateau(record: dict, metric: str = "PCK@0.1", tolerance: float = PLATEAU_TOLERANCE) -> dict:
    """Where a constant-learning-rate curve stops rising. ``record`` is a plateau pilot (:func:`learn` with
    ``schedule="constant"``); its curve's ``metric`` is read at each validation (200 people).

    Returns ``rise`` (the gain over the last third of the run: the last point minus the last point at or before two
    thirds of the steps), ``flat`` (``rise < tolerance``), ``best`` (the curve's highest value), ``reached`` (the
    first step within ``tolerance`` of ``best``: where the curve has, to within that, reached its plateau) and
    ``steps`` (the run's). Chapter 01: a budget past ``reached`` trains on a plateau that only the learning rate's
    decay can leave; a curve still rising at its budget (``flat`` False) says that budget is set by the time cap."""
    points = [(c["step"], c[metric]) for c in record["curve"] if metric in c]
    if record.get("recipe", {}).get("schedule") != "constant":
        raise ValueError(f"plateau: the record of {record.get('chapter')} was trained with schedule "
                         f"{record.get('recipe', {}).get('schedule')!r}; a plateau pilot trains at 'constant'")
    if len(points) < 3:
        raise ValueError(f"plateau: {record.get('chapter')}'s curve has {len(points)} points of {metric}; "
                         f"at least 3 are needed")
    steps = record["steps"]
    last_step, last = points[-1]
    earlier = [v for s, v in points if s <= last_step - (last_step / 3)]
    rise = last - (earlier[-1] if earlier else points[0][1])
    best = max(v for _, v in points)
    reached = next(s for s, v in points if v >= best - tolerance)
    return dict(metric=metric, tolerance=tolerance, steps=steps, final=last, rise=rise, flat=rise < tolerance,
                best=best, reached=reached)


def plot_plateau(calibration: dict[str, dict], pilots: dict[str, dict], metric: str = "PCK@0.1", axes=None):
    """Each chapter's learning curve with the recipe's flat-then-cosine schedule (solid) and at a constant
    learning rate (dashed), ``metric`` against the step, one panel per chapter. Returns the figure. Chapter 01."""
    import matplotlib.pyplot as plt

    names = [n for n in calibration if n in pilots]
    if axes is None:
        _, axes = plt.subplots(1, max(1, len(names)), figsize=(2.3 * max(1, len(names)), 2.6), sharey=True,
                               squeeze=False)
        axes = axes[0]
    for ax, name in zip(axes, names):
        for record, style, label in ((calibration[name], "-", "flat, then cosine"),
                                     (pilots[name], "--", "constant")):
            points = [(c["step"], c[metric]) for c in record["curve"] if metric in c]
            if points:
                ax.plot(*zip(*points), style, color="C0" if style == "-" else "C3", lw=1.4, label=label)
        ax.axvline(calibration[name]["steps"] / 2, color="0.6", lw=0.7, ls=":")  # where the cosine starts
        ax.set_title(name.replace("_", " "), fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{metric} (200 validation people)", fontsize=8)
    axes[0].legend(fontsize=7, loc="lower right")
    return axes[0].figure


PLATEAU_BEGIN, PLATEAU_END = "<!-- plateau:begin -->", "<!-- plateau:end -->"


def plateau_markdown(calibration: dict[str, dict], pilots: dict[str, dict]) -> str:
    """The plateau pilots beside the calibration runs of the same budget, as a markdown table (the Results page)."""
    rows = ["| chapter | steps | CPU-min | constant LR: PCK@0.1 | rise over the last third | within "
            f"{PLATEAU_TOLERANCE} of its best from step | constant LR: AP | recipe (flat, then cosine): AP / PCK@0.1 | "
            "commit | command |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in pilots.items():
        p, c = plateau(r), calibration.get(name)
        recipe_cell = f"{c['AP']:.3f} / {c['PCK@0.1']:.3f}" if c else "no calibration record"
        rows.append(f"| {name} | {r['steps']} | {r['cpu_minutes']:.1f} | {r['PCK@0.1']:.3f} | {p['rise']:+.3f} | "
                    f"{p['reached']} | {r['AP']:.3f} | {recipe_cell} | `{r['commit']}` | `{r['command']}` |")
    return "\n".join(rows)


CALIBRATION_BEGIN, CALIBRATION_END = "<!-- calibration:begin -->", "<!-- calibration:end -->"


def calibration_markdown(records: dict[str, dict]) -> str:
    """The calibration records as a markdown table (the Results page's block)."""
    rows = ["| chapter | network | steps | CPU-min | AP | ceiling | PCK@0.1 | PCK@0.2 | inverted front / side / back | "
            "val people (seed) | commit | command |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in records.items():
        inv = r["inversion"]
        net = f"{r['model']} {json_text(r['kwargs'])}{', pretrained trunk' if r.get('pretrained') else ''}"
        rows.append(f"| {name} | {net} | {r['steps']} | {r['cpu_minutes']:.1f} | {r['AP']:.3f} | {r['ceiling']:.3f} | "
                    f"{r['PCK@0.1']:.3f} | {r['PCK@0.2']:.3f} | {inv['front']:.3f} / {inv['side']:.3f} / "
                    f"{inv['back']:.3f} | {r['val_people']} ({r['val_seed']}) | `{r['commit']}` | `{r['command']}` |")
    return "\n".join(rows)


def json_text(value) -> str:
    import json

    return json.dumps(value, separators=(", ", "="))[1:-1].replace('"', "")


def update_page(page, records: dict[str, dict], pilots: dict[str, dict] | None = None):
    """Rewrite the block between ``CALIBRATION_BEGIN`` and ``CALIBRATION_END`` of ``page`` from ``records`` and,
    given ``pilots``, the block between ``PLATEAU_BEGIN`` and ``PLATEAU_END`` from the plateau pilots."""
    from posebook._io import atomic_write
    from posebook.results import replace_block

    page = Path(page)
    body = replace_block(page.read_text(), CALIBRATION_BEGIN, CALIBRATION_END, calibration_markdown(records), page)
    if pilots is not None:
        body = replace_block(body, PLATEAU_BEGIN, PLATEAU_END, plateau_markdown(records, pilots), page)
    return atomic_write(page, lambda f: f.write(body.encode()))


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json
    import sys

    from posebook.results import git_commit, machine
    from posebook.study import write_record
    from posebook.train import SCHEDULES

    parser = argparse.ArgumentParser(
        prog="python -m posebook.bench learn",
        description="train a chapter's reference network with the profile's recipe and score it (AP, PCK@0.1, "
                    "PCK@0.2, left/right inversion by view) beside the oracle's decoding ceiling")
    parser.add_argument("--chapter", choices=sorted(REFERENCES))
    parser.add_argument("--seconds", type=float, help="train for about this many seconds of one thread (default: "
                                                      "the chapter's study budget in steps)")
    parser.add_argument("--steps", type=int, help="train this many steps (default: the study budget)")
    parser.add_argument("--val-seed", type=int, help="draw the validation people from this seed (default: the "
                                                     "studies' validation scenes)")
    parser.add_argument("--val-people", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and data order")
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--schedule", choices=SCHEDULES, help="replace the recipe's learning-rate schedule")
    parser.add_argument("--evaluations", type=int, default=6, help="points on the learning curve (default 6)")
    parser.add_argument("--plateau", action="store_true",
                        help="the plateau pilot: --schedule constant, 12 points on the curve, the record written to "
                             "book/results/calibration/plateau/<chapter>.json")
    parser.add_argument("--json", action="store_true", help="print one JSON line (without the learning curve)")
    parser.add_argument("--out", help="also write the whole record (curve, recipe, provenance) to this JSON file")
    parser.add_argument("--calibration", action="store_true",
                        help="write the record to book/results/calibration/<chapter>.json")
    parser.add_argument("--page", help="only rewrite this page's calibration and plateau tables (book/results.md) "
                                       "from the committed records; trains nothing")
    args = parser.parse_args(argv)
    if args.page:
        update_page(args.page, calibration_records(), plateau_records())
        return
    if args.chapter is None:
        parser.error("give --chapter NN (or --page to rewrite the Results page's table)")
    if args.seconds is not None and args.steps is not None:
        parser.error("give --seconds or --steps, not both")
    if (args.seconds is not None and args.seconds <= 0) or (args.steps is not None and args.steps < 1):
        parser.error(f"--seconds must be > 0 and --steps >= 1; got {args.seconds}, {args.steps}")
    if args.val_people < 1:
        parser.error(f"--val-people must be >= 1, got {args.val_people}")
    if args.evaluations < 1:
        parser.error(f"--evaluations must be >= 1, got {args.evaluations}")
    if args.plateau and args.calibration:
        parser.error("--plateau and --calibration write different records; give one")
    if args.plateau:
        if args.schedule not in (None, "constant"):
            parser.error(f"--plateau trains at a constant learning rate; got --schedule {args.schedule}")
        args.schedule, args.evaluations = "constant", max(args.evaluations, PLATEAU_EVALUATIONS)
    commit = git_commit()  # the code the run starts from (files edited while it runs do not change it)
    result = learn(args.chapter, seconds=args.seconds, steps=args.steps, val_seed=args.val_seed,
                   val_people=args.val_people, profile_name=args.profile, seed=args.seed, threads=args.threads,
                   schedule=args.schedule, evaluations=args.evaluations)
    record = dict(result, command="python -m posebook.bench learn " + " ".join(argv if argv is not None
                                                                                 else sys.argv[1:]),
                  commit=commit, machine=machine(), torch=torch.__version__, date=time.strftime("%Y-%m-%d"))
    paths = ([args.out] if args.out else []) + ([calibration_path(args.chapter)] if args.calibration else [])
    paths += [plateau_path(args.chapter)] if args.plateau else []
    for path in paths:
        write_record(path, record)
    short = {k: v for k, v in result.items() if k not in ("curve", "recipe", "kwargs")}
    if args.json:
        print(json.dumps(short, allow_nan=True))
        return
    inv = result["inversion"]
    print(f"{result['chapter']}: {result['steps']} steps in {result['cpu_minutes']:.1f} CPU-minutes "
          f"({result['threads']} thread(s)), {result['val_people']} validation people (seed {result['val_seed']})")
    print(f"AP {result['AP']:.3f} (ceiling {result['ceiling']:.3f})  PCK@0.1 {result['PCK@0.1']:.3f}  "
          f"PCK@0.2 {result['PCK@0.2']:.3f}  inversion front {inv['front']:.3f} side {inv['side']:.3f} "
          f"back {inv['back']:.3f}")


def pretrain_main(argv: list[str] | None = None) -> None:
    """``python -m posebook.bench pretrain --steps N --out FILE``: :func:`pretrain_trunk`, written atomically."""
    import argparse
    import json

    from posebook.weights import save_state_dict

    parser = argparse.ArgumentParser(prog="python -m posebook.bench pretrain",
                                     description="pretrain the ResNet-50/16 trunk of chapters 04-06 on synthetic "
                                                 f"scenes of seed {PRETRAIN_SEED} (the papers' ImageNet start)")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu"))
    parser.add_argument("--out", default=str(TRUNK_FILE))
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    start = time.process_time()
    trunk, scores = pretrain_trunk(args.steps, args.seed, args.threads, profile_name=args.profile)
    save_state_dict(trunk, args.out)
    print(json.dumps(dict(out=args.out, sha256=sha256(args.out), steps=args.steps, seed=args.seed,
                          data_seed=PRETRAIN_SEED, cpu_minutes=round((time.process_time() - start) / 60, 2),
                          **scores)))
