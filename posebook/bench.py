"""Benchmarks that print figures: ``python -m posebook.bench model NAME``, ``... bench train`` and ``... bench data``.

``count_params`` and ``gflops`` are what the chapters and tests use. ``gflops`` follows the papers' convention (HRNet's
``get_model_summary``, the count behind the GFLOPs of Sun et al., CVPR 2019, Table 1): for every Conv2d and
ConvTranspose2d, weight.numel() x output H x W; for every Linear, weight.numel(); summed and divided by 2^30. So it
counts multiply-adds, in units of 2^30.
It works on a model built on the meta device (``with torch.device("meta"): model = create(...)``): shapes only, no
memory, no arithmetic. ``bench train`` times the Trainer's training step (samples/s, ms/step) of a chapter's model.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

import torch
from torch import nn

_COUNTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; buffers such as BN running statistics are not parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_macs(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3, real: bool = False) -> int:
    """Multiply-adds of every conv and linear layer for one (1, C, H, W) input, counted as the papers count them
    (``real=False``) or as the arithmetic does (``real=True``).

    The papers' convention is HRNet's ``get_model_summary`` (Sun et al., CVPR 2019): weight.numel() x the *output*
    H x W for a Conv2d and a ConvTranspose2d alike. For a transposed convolution that is stride^2 times its real
    multiply-adds: each *input* pixel scatters one k x k patch per channel pair, so the real count is weight.numel()
    x the input H x W (SimpleBaseline-R50 at 256 x 192: 8.99 x 2^30 by the convention, 5.05 x 2^30 = 5.43e9 real).
    Convolutions and linear layers are counted alike by both. The input is made on the device of the model's first
    parameter (or buffer): a model on the meta device is counted from shapes alone. Chapters 03 and 04.
    """
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        out = output[0] if isinstance(output, (list, tuple)) else output
        if isinstance(module, nn.Linear):
            total += module.weight.numel()
        elif real and isinstance(module, nn.ConvTranspose2d):
            total += module.weight.numel() * inputs[0].shape[-2] * inputs[0].shape[-1]
        else:
            total += module.weight.numel() * out.shape[-2] * out.shape[-1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _COUNTED)]
    was_training = model.training
    try:
        model.eval()
        tensor = next(model.parameters(), None)
        if tensor is None:
            tensor = next(model.buffers(), None)
        device = tensor.device if tensor is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.zeros(1, in_channels, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def gflops(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> float:
    """GFLOPs in the papers' convention: conv + linear multiply-adds / 2^30 for one input of size (H, W)."""
    return conv_macs(model, input_size, in_channels) / 2**30


def real_macs(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> int:
    """The real multiply-adds of every conv and linear layer for one input of size (H, W) (a transposed
    convolution at its input's size: :func:`conv_macs` with ``real=True``). Chapters 04 and 07."""
    return conv_macs(model, input_size, in_channels, real=True)


def latency_ms(model: nn.Module, input_size: tuple[int, int], batch: int = 1, repeats: int = 10,
               device: torch.device | str = "cpu") -> float:
    """Median milliseconds of one eval-mode forward pass of a (batch, 3, H, W) input, after two warm-up passes."""
    model = model.to(device).eval()
    x = torch.randn(batch, 3, *input_size, device=device)
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2]


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size must look like 256x192 (H x W), got {text!r}") from None
    return h, w


def _parse_kwargs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--arg expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _model_command(args) -> None:
    from posebook import models

    kwargs = _parse_kwargs(args.arg)
    model = models.create(args.name, **kwargs)
    params = count_params(model)
    if args.json:  # one line per input size
        for size in args.input:
            row = dict(name=args.name, kwargs=kwargs, input=list(size), params=params, gflops=gflops(model, size),
                       macs=real_macs(model, size))
            if args.latency:
                row.update(latency_ms=latency_ms(model, size, batch=args.batch), batch=args.batch,
                           threads=torch.get_num_threads())
            print(json.dumps(row))
        return
    print(f"model        {args.name} {_parse_kwargs(args.arg) or ''}".rstrip())
    print(f"params       {params:,} ({params / 1e6:.2f}M)")
    for size in args.input:
        line = (f"input {size[0]}x{size[1]}  GFLOPs {gflops(model, size):.2f} (the papers' convention: conv MACs "
                f"/ 2^30)  real multiply-adds {real_macs(model, size) / 1e9:.2f}e9")
        if args.latency:
            line += f"  latency {latency_ms(model, size, batch=args.batch):.1f} ms (batch {args.batch}, " \
                    f"{torch.get_num_threads()} CPU threads)"
        print(line)


# ---- bench train: the Trainer's step on a chapter's model ---------------------------------------------------------

TRAIN_CHAPTERS = ("03", "04", "05", "06", "07")  # chapters whose reference network ``--chapter`` times


def chapter_setting(chapter: str) -> tuple[str, dict, tuple[int, int], int]:
    """(model name, constructor arguments, input (H, W), batch) of a chapter's reference network at the cpu
    recipe's size (:data:`posebook.learn.REFERENCES`, :func:`posebook.recipe.recipe`): what the chapter's live run
    and its study train. Chapter 01."""
    from posebook import learn
    from posebook.keypoints import COCO
    from posebook.recipe import recipe

    ref, rec = learn.reference(chapter), recipe("cpu")
    return ref.model, dict(ref.kwargs, num_joints=COCO.num_keypoints), tuple(rec.input_size), rec.batch_size


class _RandomPoses(torch.utils.data.Dataset):
    """``n`` fixed random items shaped like a top-down training set for a model whose outputs are ``shapes``."""

    def __init__(self, n: int, input_size: tuple[int, int], shapes: list[tuple[int, ...]], shared: bool):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, *input_size, generator=g)
        targets = [torch.rand(n, *shape, generator=g) for shape in (shapes[-1:] if shared else shapes)]
        self.targets = targets[0] if shared or len(targets) == 1 else targets
        self.weight = torch.ones(n, shapes[-1][0])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        target = [t[i] for t in self.targets] if isinstance(self.targets, list) else self.targets[i]
        return {"image": self.images[i], "target": target, "target_weight": self.weight[i]}


def training_setup(model: nn.Module, input_size: tuple[int, int], batch: int, channels_last: bool | None = None,
                   device: torch.device | str | None = None, optimizer: str = "adam"):
    """A Trainer of ``model`` on random items shaped for its outputs, and one batch of them: (trainer, batch).

    One output gets ``JointsMSELoss``; a list of outputs ``MultiOutputLoss`` (one target shared by outputs of one
    shape, as the Stacked Hourglass; else one target each). Chapter 03.
    """
    from posebook.losses import JointsMSELoss, MultiOutputLoss
    from posebook.train import Trainer

    tensor = next(model.parameters(), None)
    with torch.no_grad():
        outputs = model.eval()(torch.zeros(1, 3, *input_size, device=tensor.device if tensor is not None else "cpu"))
    model.train()
    listed = isinstance(outputs, (list, tuple))
    items = list(outputs) if listed else [outputs]
    if not all(isinstance(o, torch.Tensor) and o.dim() == 4 for o in items):
        raise TypeError(f"bench train: {type(model).__name__}(x) must return (B, K, h, w) heatmaps or a list of "
                        f"them, got {[getattr(o, 'shape', type(o).__name__) for o in items]}")
    shapes = [tuple(o.shape[1:]) for o in items]
    shared = len(set(shapes)) == 1
    data = _RandomPoses(batch, input_size, shapes, shared)
    loss = MultiOutputLoss(JointsMSELoss()) if listed else JointsMSELoss()
    trainer = Trainer(model, data, loss, steps=10**9, batch_size=batch, optimizer=optimizer, device=device,
                      channels_last=channels_last, progress=False)
    return trainer, torch.utils.data.default_collate([data[i] for i in range(batch)])


def train_step_ms(setups: list, steps: int = 10, warmup: int = 2) -> list[float]:
    """Median milliseconds of one training step for each (trainer, batch) in ``setups``, interleaved step by step
    (so a busy machine slows each alike), after ``warmup`` untimed steps each."""
    times = [[] for _ in setups]
    for i in range(warmup + steps):
        for k, (trainer, batch) in enumerate(setups):
            cuda = trainer.device.type == "cuda"
            if cuda:
                torch.cuda.synchronize(trainer.device)
            start = time.perf_counter()
            trainer.train_step(batch)
            if cuda:
                torch.cuda.synchronize(trainer.device)
            if i >= warmup:
                times[k].append((time.perf_counter() - start) * 1000)
    return [sorted(t)[len(t) // 2] for t in times]


def _train_command(argv: list[str]) -> None:
    import posebook
    from posebook import models

    parser = argparse.ArgumentParser(prog="python -m posebook.bench train",
                                     description="samples/s and ms of one training step (forward, loss, backward, "
                                                 "optimizer) of a chapter's model, as the Trainer runs it")
    parser.add_argument("name", nargs="?", help="a registered model (or use --chapter)")
    parser.add_argument("--chapter", choices=TRAIN_CHAPTERS, help="the cpu profile's model and input size of a "
                                                                     "chapter")
    parser.add_argument("--arg", action="append", default=[], help="constructor argument key=value (JSON values)")
    parser.add_argument("--input", type=_parse_size, help="H x W, e.g. 256x192 (default: the chapter's, or 256x192)")
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: the chapter's, or 8)")
    parser.add_argument("--channels-last", choices=("off", "on", "both", "auto"), default="auto",
                        help="memory format; auto: the Trainer's default on the device (default)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per setting first")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--device", default=None, help="default: posebook.device()")
    args = parser.parse_args(argv)
    if (args.name is None) == (args.chapter is None):
        parser.error("give a model NAME or --chapter (not both)")
    if args.steps < 1 or args.warmup < 0 or any(b < 1 for b in args.batch or []):
        parser.error(f"--steps must be >= 1, --warmup >= 0 and --batch >= 1; got {args.steps}, {args.warmup}, "
                     f"{args.batch}")
    if args.chapter:
        name, kwargs, size, batch = chapter_setting(args.chapter)
        kwargs = {**kwargs, **_parse_kwargs(args.arg)}
        origin = f" (chapter {args.chapter}, cpu profile)"
    else:
        name, kwargs, size, batch, origin = args.name, _parse_kwargs(args.arg), (256, 192), 8, ""
    size = args.input or size
    batches = args.batch or [batch]
    device = torch.device(args.device) if args.device else posebook.device()
    layouts = {"off": [False], "on": [True], "both": [False, True], "auto": [None]}[args.channels_last]

    setups, rows = [], []
    for b in batches:
        for layout in layouts:
            torch.manual_seed(0)
            model = models.create(name, **kwargs)
            trainer, batch_dict = training_setup(model, size, b, channels_last=layout, device=device,
                                                 optimizer=args.optimizer)
            setups.append((trainer, batch_dict))
            rows.append((b, trainer.channels_last))
    times = train_step_ms(setups, steps=args.steps, warmup=args.warmup)

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"model        {name} {json.dumps(kwargs)}{origin}")
    print(f"input        {size[0]}x{size[1]}, {args.optimizer}, device {device}{threads}, median of {args.steps} "
          f"steps after {args.warmup}")
    print(f"{'batch':>5}  {'channels_last':<13}  {'ms/step':>9}  {'samples/s':>9}")
    for (b, layout), ms in zip(rows, times):
        print(f"{b:>5}  {'on' if layout else 'off':<13}  {ms:>9.1f}  {b * 1000 / ms:>9.1f}")
    if args.channels_last == "both":
        ratios = [f"batch {b} {times[2 * i] / times[2 * i + 1]:.2f}x" for i, b in enumerate(batches)]
        print("channels_last speed-up (off ms / on ms): " + ", ".join(ratios))


# Subcommands that live beside the parts they measure: name -> "module:function(argv)"
_EXTERNAL = {"data": "posebook.data.benchmark:main", "learn": "posebook.learn:main",
             "pretrain": "posebook.learn:pretrain_main", "grouping": "posebook.inference.grouping:main",
             "infer": "posebook.inference.optimize:main"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        _train_command(argv[1:])
        return
    if argv and argv[0] in _EXTERNAL:
        module, func = _EXTERNAL[argv[0]].split(":")
        getattr(importlib.import_module(module), func)(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m posebook.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("model", help="params, GFLOPs (the papers' convention), real multiply-adds and optionally "
                                     "latency of a registered model")
    m.add_argument("name")
    m.add_argument("--input", type=_parse_size, nargs="+", default=[(256, 192)], help="H x W, e.g. 256x192")
    m.add_argument("--arg", action="append", default=[], help="constructor argument key=value (JSON values)")
    m.add_argument("--latency", action="store_true")
    m.add_argument("--batch", type=int, default=1)
    m.add_argument("--json", action="store_true", help="one JSON line per input size: name, kwargs, input, params, "
                                                       "gflops (the papers' convention), macs (real multiply-adds)")
    for name in ("train", *_EXTERNAL):
        sub.add_parser(name, help=f"see python -m posebook.bench {name} --help")
    args = parser.parse_args(argv)
    _model_command(args)


if __name__ == "__main__":
    main()
