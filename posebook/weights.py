"""Load published checkpoints: the official HRNet / SimpleBaseline COCO files, MMPose's, and torchvision ResNets.

Every file is read with ``torch.load(weights_only=True)``, so a checkpoint cannot run code. Key layouts handled
(verified against the code that writes them; chapter 07 explains them):

- official (leoxiaobin/deep-high-resolution-net.pytorch): a bare state_dict (``final_state.pth``, the released
  ``pose_hrnet_w32_256x192.pth``) or ``checkpoint.pth`` = {"state_dict": ..., "best_state_dict": ..., ...}, with a
  ``module.`` prefix when saved from ``DataParallel``; our attribute names equal these keys.
- MMPose 0.x (``TopDown``): {"meta", "state_dict"} with ``backbone.*`` (HRNet: the official names; ResNet: conv1,
  bn1, layer1..4 with torchvision's names) and ``keypoint_head.*`` (``TopdownHeatmapSimpleHead``: ``deconv_layers``
  is a Sequential of [ConvTranspose2d, BN, ReLU] x 3, indices 0..8; ``final_layer`` is the bare 1x1 Conv2d).
- MMPose 1.x (``TopdownPoseEstimator``): the same with ``head.*`` (``HeatmapHead``: same ``deconv_layers`` and
  ``final_layer``; for HRNet ``deconv_layers`` is an Identity and has no keys).

A prefix is removed only where the model has the shorter key and not the stored one, so a posebook model with its
own ``backbone`` or ``head`` attribute (CPN, OpenPose) loads its own checkpoints unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from posebook.checkpoints import read_checkpoint, write_checkpoint

# prefixes a checkpoint key may carry, in order: DataParallel, then MMPose's model parts; removed only where the
# model has the shorter key (see _strip)
_PREFIXES = ("module.", "backbone.", "keypoint_head.", "head.")
# where a state_dict sits inside a training checkpoint (official checkpoint.pth, MMPose, generic trainers)
_NESTED = ("state_dict", "model_state_dict", "model")
_SHOWN = 5  # how many offending keys an error lists


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or whose weights do not fit the model; the message names the file."""


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a plain state_dict; with ``model``, published prefixes become its key names.

    The official HRNet / SimpleBaseline names are posebook's (their official code's module names); chapter 07.
    """
    path = Path(path)
    try:
        obj = read_checkpoint(path, format=None)
    except ValueError as err:  # zip, pickle and weights-only errors all mean: this file cannot be used as is
        reason = str(err).partition("cannot be read ")[2] or str(err)
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint {reason}; a truncated download or a "
                              "different file type. Download it again and compare its size with the published "
                              "one.") from None
    return to_state_dict(obj, source=str(path), model=model)


def to_state_dict(obj, source: str = "checkpoint", model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Unwrap a loaded checkpoint (nested dict) into a flat state_dict; with ``model``, map its key prefixes.

    A ``module.``/``backbone.``/head prefix is removed from a key only when ``model`` has the stripped key and not
    the stored one; without a model the keys stay as stored.
    """
    while isinstance(obj, dict) and not _is_state_dict(obj):
        inner = next((obj[k] for k in _NESTED if isinstance(obj.get(k), dict)), None)
        if inner is None:
            raise CheckpointError(f"{source} holds no state_dict: its top-level keys are {sorted(obj)[:10]}, "
                                  f"expected tensors or one of {list(_NESTED)}")
        obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, expected a dict of tensors")
    if model is None:
        return dict(obj)
    own = set(model.state_dict())
    return {_strip(key, own): value for key, value in obj.items()}


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip(key: str, own: set[str]) -> str:
    """The least-stripped form of ``key`` (prefixes removed in ``_PREFIXES`` order) that the model has; if none
    fits, the fully stripped key, which the strict load then reports as unexpected."""
    candidate = key
    for prefix in _PREFIXES:
        if candidate in own:
            return candidate
        if candidate.startswith(prefix):
            candidate = candidate[len(prefix):]
    return candidate


def mismatches(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Keys the model has but the state lacks, keys it does not have, and keys whose shapes differ."""
    own = model.state_dict()
    return {
        "missing": sorted(set(own) - set(state)),
        "unexpected": sorted(set(state) - set(own)),
        "shape": [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape],
    }


def _describe(problems: dict[str, list[str]]) -> str:
    parts = []
    for kind, keys in problems.items():
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            parts.append(f"{len(keys)} {kind} keys ({', '.join(keys[:_SHOWN])}{more})")
    return "; ".join(parts)


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint",
               ignore_missing: tuple[str, ...] = ()) -> nn.Module:
    """Load ``state`` strictly into ``model``; on any misfit raise CheckpointError listing a few keys of each kind.

    ``ignore_missing`` names key prefixes the state may lack (e.g. a pose head when loading ImageNet weights).
    """
    problems = mismatches(model, state)
    if ignore_missing:
        problems["missing"] = [k for k in problems["missing"] if not k.startswith(ignore_missing)]
    if any(problems.values()):
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {_describe(problems)}. Is it a "
                              "checkpoint of this architecture and width?")
    model.load_state_dict(state, strict=not ignore_missing)
    return model


def load_official(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load an official or MMPose HRNet / SimpleBaseline checkpoint file into ``model`` (strict), and return it."""
    return load_state(model, load_checkpoint(path, model), source=str(path))


def load_imagenet_resnet(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a torchvision ImageNet ResNet file into a posebook ResNet or SimpleBaseline (its ``fc`` is dropped)."""
    state = {k: v for k, v in load_checkpoint(path, model).items() if not k.startswith("fc.")}
    return load_state(model, state, source=str(path), ignore_missing=("deconv_layers.", "final_layer."))


TRUNK_STEMS = ("", "backbone.", "stem.")  # SimpleBaseline, CPN, MSPN: where a model keeps ResNet's conv1 and bn1
STEM_PARTS, LAYER_PARTS = ("conv1", "bn1"), ("layer1", "layer2", "layer3", "layer4")
TRUNK_PARTS = STEM_PARTS + LAYER_PARTS  # a ResNet trunk's top-level modules, torchvision's names (no fc)


def trunk_places(model: nn.Module) -> dict[str, list[str]]:
    """Where ``model`` holds ResNet trunks (torchvision's key names): ``{"stem": [prefix, ...], "layers": [prefix,
    ...]}``. SimpleBaseline: "" for both; CPN: "backbone."; MSPN: the stem "stem." and every stage's downsampling
    unit "stages.i.downsample." (each stage is a ResNet's layer1..4). Chapter 04."""
    import re

    own = set(model.state_dict())
    stems = [p for p in TRUNK_STEMS if f"{p}conv1.weight" in own and f"{p}bn1.weight" in own]
    layers = sorted({m.group(1) for k in own if (m := re.fullmatch(r"(.*)layer1\.0\.conv1\.weight", k))})
    return {"stem": stems, "layers": layers}


def load_trunk(model: nn.Module, state: dict[str, torch.Tensor], source: str = "trunk") -> nn.Module:
    """Load a ResNet trunk (``conv1``, ``bn1``, ``layer1..4`` keys, as :func:`posebook.learn.pretrain_trunk` saves)
    into every trunk of ``model`` (:func:`trunk_places`): the papers initialise SimpleBaseline, CPN and every MSPN
    stage from an ImageNet ResNet. Every trunk key must land and fit; the heads keep their own initialisation.
    Chapter 04."""
    places = trunk_places(model)
    if not places["stem"] and not places["layers"]:
        raise CheckpointError(f"{source}: {type(model).__name__} holds no ResNet trunk (no conv1/bn1 nor layer1..4 "
                              f"with torchvision's names)")
    own = model.state_dict()
    placed, used = {}, set()
    for key, value in state.items():
        part = key.split(".")[0]
        prefixes = places["stem"] if part in STEM_PARTS else places["layers"] if part in LAYER_PARTS else []
        for prefix in prefixes:
            placed[prefix + key] = value
            used.add(key)
    unused = sorted(set(state) - used)
    problems = {"unplaced": unused,
                "missing": sorted(k for k in placed if k not in own),
                "shape": [f"{k}: trunk {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in placed.items()
                          if k in own and own[k].shape != v.shape]}
    if any(problems.values()):
        raise CheckpointError(f"{source} does not fit {type(model).__name__}'s trunks {places}: "
                              f"{_describe(problems)}. Is it a trunk of this depth and width?")
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in placed.items()}})
    return model


def save_state_dict(state: dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write a state_dict atomically (a temporary file in the same folder, then ``os.replace``)."""
    return write_checkpoint(state, path)


def convert(source: str | os.PathLike, target: str | os.PathLike, arch: str, **kwargs) -> nn.Module:
    """Read an official/MMPose checkpoint, check it loads strictly into ``create(arch)``, save a posebook state_dict."""
    from posebook.models import create

    model = load_official(create(arch, **kwargs), source)
    save_state_dict(model.state_dict(), target)
    return model


# ------------------------------------------------------------------------------------- published COCO checkpoints

MMPOSE_URL = "https://download.openmmlab.com/mmpose"
MMPOSE_URL_ENV = "POSEBOOK_MMPOSE_URL"  # a mirror of MMPOSE_URL (the same paths below it)


class Published:
    """A published COCO checkpoint (MMPose 0.x's model zoo, the papers' architectures trained with the papers'
    recipes): ``url``, the registered model it loads into (``model`` with ``kwargs``), its ``input_size`` (H, W) and
    the COCO val2017 AP MMPose reports for it (detector boxes, AP 56.4 person detector) beside the ``paper_ap``.
    Chapter 09."""

    def __init__(self, url: str, model: str, kwargs: dict | None = None, input_size=(256, 192),
                 mmpose_ap: float | None = None, paper_ap: float | None = None):
        self.url, self.model, self.kwargs = url, model, dict(kwargs or {})
        self.input_size, self.mmpose_ap, self.paper_ap = tuple(input_size), mmpose_ap, paper_ap

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[1]


# URLs and APs from MMPose 0.x's model zoo pages (configs/top_down/hrnet/README.md and resnet/README.md, "Results on
# COCO val2017 with detector having human AP of 56.4"); the papers' APs from HRNet's Table 1. Only architectures whose
# MMPose keys posebook loads (the official HRNet and SimpleBaseline layouts, see this module's docstring).
PUBLISHED: dict[str, Published] = {
    "hrnet_w32_256x192": Published(f"{MMPOSE_URL}/top_down/hrnet/hrnet_w32_coco_256x192-c78dce93_20200708.pth",
                                   "hrnet_w32", mmpose_ap=74.6, paper_ap=74.4),
    "hrnet_w48_256x192": Published(f"{MMPOSE_URL}/top_down/hrnet/hrnet_w48_coco_256x192-b9e0b3ab_20200708.pth",
                                   "hrnet_w48", mmpose_ap=75.6, paper_ap=75.1),
    "simple_baseline_r50_256x192": Published(
        f"{MMPOSE_URL}/top_down/resnet/res50_coco_256x192-ec54d7f3_20200709.pth", "simple_baseline",
        dict(depth=50), mmpose_ap=71.8, paper_ap=70.4),
    "simple_baseline_r101_256x192": Published(
        f"{MMPOSE_URL}/top_down/resnet/res101_coco_256x192-6e6babf0_20200708.pth", "simple_baseline",
        dict(depth=101), mmpose_ap=72.6, paper_ap=71.4),
    "simple_baseline_r152_256x192": Published(
        f"{MMPOSE_URL}/top_down/resnet/res152_coco_256x192-f6e307c2_20200709.pth", "simple_baseline",
        dict(depth=152), mmpose_ap=73.5, paper_ap=72.0),
}


def fetch_published(name: str, folder: str | os.PathLike, base_url: str | None = None,
                    progress: bool = True) -> nn.Module:
    """Download the published checkpoint ``name`` (:data:`PUBLISHED`) into ``folder`` (resumable, checked, renamed
    into place only when complete: :func:`posebook.data.download.download`), convert it once to a posebook
    state_dict beside it (``<name>.pt``, loaded strictly) and return the model in eval mode. ``base_url`` (else
    ``$POSEBOOK_MMPOSE_URL``, else MMPose's server) names the server. Chapter 09."""
    from posebook.data.download import download, rebase
    from posebook.models import create

    if name not in PUBLISHED:
        raise KeyError(f"no published checkpoint named {name!r}; known: {sorted(PUBLISHED)}")
    entry = PUBLISHED[name]
    folder = Path(folder)
    converted = folder / f"{name}.pt"
    model = create(entry.model, **entry.kwargs)
    if converted.exists():
        return load_state(model, load_checkpoint(converted), source=str(converted)).eval()
    base = base_url or os.environ.get(MMPOSE_URL_ENV) or MMPOSE_URL
    raw = download(rebase(entry.url, base, MMPOSE_URL), folder / entry.file_name, progress=progress)
    model = load_official(model, raw)
    save_state_dict(model.state_dict(), converted)
    return model.eval()
