"""Benchmarks that print figures: ``python -m posebook.bench model NAME``, ``... bench models`` (every network of the
book at the papers' sizes, :mod:`posebook.zoo`), ``... bench train``, ``... bench data`` and ``... bench people``
(one image's cost as its people multiply, bottom-up against top-down: :mod:`posebook.inference.people_cost`).

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

from posebook import argtypes, timing

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


class _RandomPAFs(torch.utils.data.Dataset):
    """``n`` fixed random items shaped like a bottom-up (OpenPose) training set: PAF and confidence-map targets of
    ``shapes`` (C, h, w) each and a mask of ones."""

    def __init__(self, n: int, input_size: tuple[int, int], shapes: list[tuple[int, ...]]):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, *input_size, generator=g)
        self.targets = [torch.rand(n, *shape, generator=g) for shape in shapes]
        self.mask = torch.ones(n, 1, *shapes[0][1:])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "target": [t[i] for t in self.targets], "target_weight": self.mask[i]}


def _is_openpose_output(outputs) -> bool:
    """Whether ``outputs`` is OpenPose's ``(pafs, heatmaps)``: two lists of (B, C, h, w) maps."""
    return (isinstance(outputs, tuple) and len(outputs) == 2
            and all(isinstance(branch, list) and branch and all(isinstance(o, torch.Tensor) and o.dim() == 4
                                                                for o in branch) for branch in outputs))


def training_setup(model: nn.Module, input_size: tuple[int, int], batch: int, channels_last: bool | None = None,
                   device: torch.device | str | None = None, optimizer: str = "adam", amp: bool | None = None):
    """A Trainer of ``model`` on random items shaped for its outputs, and one batch of them: (trainer, batch).

    One output gets ``JointsMSELoss``; a list of outputs ``MultiOutputLoss`` (one target shared by outputs of one
    shape, as the Stacked Hourglass; else one target each); OpenPose's ``(pafs, heatmaps)``, two lists of stages'
    maps, gets :func:`posebook.losses.openpose_loss` with one target per branch and an all-ones mask (chapter 08).
    ``amp`` is the Trainer's (None: its default, mixed precision on CUDA only). Chapter 03.
    """
    from posebook.losses import JointsMSELoss, MultiOutputLoss
    from posebook.train import Trainer

    tensor = next(model.parameters(), None)
    with torch.no_grad():
        outputs = model.eval()(torch.zeros(1, 3, *input_size, device=tensor.device if tensor is not None else "cpu"))
    model.train()
    if _is_openpose_output(outputs):
        from posebook.losses import openpose_loss

        data = _RandomPAFs(batch, input_size, [tuple(branch[-1].shape[1:]) for branch in outputs])
        trainer = Trainer(model, data, openpose_loss, steps=10**9, batch_size=batch, optimizer=optimizer,
                          device=device, channels_last=channels_last, amp=amp, progress=False)
        return trainer, torch.utils.data.default_collate([data[i] for i in range(batch)])
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
                      channels_last=channels_last, amp=amp, progress=False)
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
    parser.add_argument("--input", type=argtypes.input_size, help="H x W, e.g. 256x192 (default: the chapter's, or 256x192)")
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: the chapter's, or 8)")
    parser.add_argument("--channels-last", choices=("off", "on", "both", "auto"), default="auto",
                        help="memory format; auto: the Trainer's default on the device (default)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per setting first")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--device", default=None, help="default: posebook.device()")
    parser.add_argument("--amp", choices=("off", "on", "both", "auto"), default="auto",
                        help="mixed precision (bf16, else fp16 autocast; CUDA only): both times it against fp32; "
                             "auto: the Trainer's default (on with CUDA)")
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
    amps = {"off": [False], "on": [True], "both": [False, True], "auto": [None]}[args.amp]
    if args.amp in ("on", "both") and device.type != "cuda":
        parser.error(f"--amp {args.amp} needs a CUDA device (the Trainer does not autocast on {device.type}: on a "
                     f"CPU it would slow training down); got --device {device}")

    setups, rows = [], []
    for b in batches:
        for layout in layouts:
            for amp in amps:
                torch.manual_seed(0)
                model = models.create(name, **kwargs)
                trainer, batch_dict = training_setup(model, size, b, channels_last=layout, device=device,
                                                     optimizer=args.optimizer, amp=amp)
                setups.append((trainer, batch_dict))
                rows.append((b, trainer.channels_last, trainer.amp_dtype))
    times = train_step_ms(setups, steps=args.steps, warmup=args.warmup)

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"model        {name} {json.dumps(kwargs)}{origin}")
    print(f"input        {size[0]}x{size[1]}, {args.optimizer}, device {device}{threads}, median of {args.steps} "
          f"steps after {args.warmup}")
    print(f"{'batch':>5}  {'channels_last':<13}  {'precision':<9}  {'ms/step':>9}  {'samples/s':>9}")
    for (b, layout, dtype), ms in zip(rows, times):
        precision = "fp32" if dtype is None else str(dtype).replace("torch.", "")
        print(f"{b:>5}  {'on' if layout else 'off':<13}  {precision:<9}  {ms:>9.1f}  {b * 1000 / ms:>9.1f}")
    n = len(amps)
    if args.channels_last == "both":  # rows: batch, then layout (off, on), then precision
        ratios = [f"batch {b} {times[(2 * i) * n] / times[(2 * i + 1) * n]:.2f}x" for i, b in enumerate(batches)]
        print("channels_last speed-up (off ms / on ms): " + ", ".join(ratios))
    if args.amp == "both":
        ratios = [f"batch {rows[k][0]}, channels_last {'on' if rows[k][1] else 'off'} {times[k] / times[k + 1]:.2f}x"
                  for k in range(0, len(rows), 2)]
        print("mixed-precision speed-up (fp32 ms / amp ms): " + ", ".join(ratios))


# ---- bench models: every network of the book at the papers' sizes, beside the papers' figures ----------------------

def interleaved_latency_ms(runs: list[tuple[nn.Module, torch.Tensor]], rounds: int, warmup: int = 1
                           ) -> tuple[list[float], list[float]]:
    """(wall, CPU): the median milliseconds of one no-grad forward pass of each (model, input) in ``runs``, timed in
    interleaved rounds after ``warmup`` untimed rounds (:func:`posebook.timing.interleaved_ms`). Chapters 03 and
    09."""
    return timing.interleaved_ms(runs, rounds, warmup)


def _millions(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}M"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _models_command(argv: list[str]) -> list[dict]:
    from posebook.zoo import ZOO, entries

    parser = argparse.ArgumentParser(
        prog="python -m posebook.bench models",
        description="every network of the book at the papers' sizes (posebook.zoo): params, GFLOPs (the papers' "
                    "convention), real multiply-adds, the papers' figures beside them, CPU latency at batch 1 and 8 "
                    "(median of interleaved rounds) and a training step's time",
        epilog="rows: " + ", ".join(e.name for e in ZOO))
    parser.add_argument("--only", action="append", metavar="NAME", help="a row, or a prefix of rows such as "
                        "hrnet_w32 (repeatable; default: every row)")
    parser.add_argument("--no-latency", action="store_true", help="counts only: no latency, no training step")
    parser.add_argument("--no-train", action="store_true", help="no training step")
    parser.add_argument("--rounds", type=argtypes.positive_int, default=5, help="timed interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--threads", type=argtypes.positive_int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--train-batch", type=argtypes.positive_int, default=8, help="training step batch (default 8)")
    parser.add_argument("--train-steps", type=argtypes.positive_int, default=3,
                        help="timed training steps per model, after one untimed (default 3)")
    parser.add_argument("--input", type=argtypes.input_size, help="H x W for every row instead of its paper's size "
                                                          "(the paper's GFLOPs and AP are then left out)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of the rows last")
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    try:
        selected = entries(args.only)
    except ValueError as error:
        parser.error(f"--only: {error}")

    rows = []
    for entry in selected:
        size = tuple(args.input or entry.input_size)
        with torch.device("meta"):  # shapes only: counting needs no weights or arithmetic
            model = entry.build()
        at_paper_size = size == tuple(entry.input_size)
        rows.append(dict(name=entry.name, model=entry.model, kwargs=entry.kwargs, input=list(size),
                         params=count_params(model), gflops=gflops(model, size), macs=real_macs(model, size),
                         paper_params=entry.paper_params,
                         paper_gflops=entry.paper_gflops if at_paper_size else None,
                         paper_ap=entry.paper_ap if at_paper_size else None, source=entry.source,
                         latency_ms_bs1=None, latency_ms_bs8=None, cpu_ms_bs1=None, cpu_ms_bs8=None,
                         train_step_ms=None, train_batch=None))

    threads = torch.get_num_threads()
    flush = torch.set_flush_denormal(True)  # fresh weights can make tiny activations; a trained net's do not
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        if not args.no_latency:
            _models_latency(selected, rows, args)
            if not args.no_train:
                _models_training(selected, rows, args)
        for row in rows:
            row.update(threads=torch.get_num_threads(), rounds=None if args.no_latency else args.rounds)
        _print_models(rows, args)
    finally:
        torch.set_num_threads(threads)
        if flush:
            torch.set_flush_denormal(False)
    if args.json:
        print(json.dumps(rows))
    return rows


def _models_latency(selected, rows: list[dict], args) -> None:
    """Latency at batch 1 and 8 of every selected row's eager eval-mode network (fresh weights), interleaved."""
    runs = []
    for entry, row in zip(selected, rows):
        torch.manual_seed(0)
        model = entry.build().eval()
        for batch in (1, 8):
            runs.append((model, torch.randn(batch, 3, *row["input"], generator=torch.Generator().manual_seed(batch))))
    print(f"bench models: timing {len(selected)} network(s) at batch 1 and 8, {args.rounds} interleaved round(s) "
          f"after {args.warmup}, {torch.get_num_threads()} CPU thread(s)...", file=sys.stderr, flush=True)
    wall, cpu = interleaved_latency_ms(runs, args.rounds, args.warmup)
    for k, row in enumerate(rows):
        row.update(latency_ms_bs1=wall[2 * k], latency_ms_bs8=wall[2 * k + 1], cpu_ms_bs1=cpu[2 * k],
                   cpu_ms_bs8=cpu[2 * k + 1])


def _models_training(selected, rows: list[dict], args) -> None:
    """The Trainer's step (forward, loss, backward, Adam) on random targets, one network at a time (holding every
    network's gradients and Adam state at once would not fit a laptop): the median of ``--train-steps``."""
    for entry, row in zip(selected, rows):
        print(f"bench models: training steps of {entry.name} at batch {args.train_batch}...", file=sys.stderr,
              flush=True)
        torch.manual_seed(0)
        trainer, batch = training_setup(entry.build(), tuple(row["input"]), args.train_batch, device="cpu")
        row.update(train_step_ms=train_step_ms([(trainer, batch)], steps=args.train_steps, warmup=1)[0],
                   train_batch=args.train_batch)
        del trainer, batch


def _print_models(rows: list[dict], args) -> None:
    timed = not args.no_latency
    print("bench models: params, GFLOPs (the papers' convention: conv + linear multiply-adds / 2^30), real "
          "multiply-adds (a transposed convolution at its input's size), the papers' figures (posebook.zoo; "
          "AP: COCO, percent)"
          + (f"; CPU latency of the eager eval-mode network, fresh weights, median ms of {args.rounds} interleaved "
             f"round(s) after {args.warmup} (wall clock; in brackets this process's CPU time, all threads), "
             f"{torch.get_num_threads()} CPU thread(s)" if timed else "")
          + (f"; training step: the Trainer's (Adam, channels_last as on CPU by default) at batch {args.train_batch}, "
             f"median of {args.train_steps} after 1, one network at a time" if timed and not args.no_train else ""))
    header = (f"{'name':<29} {'input':>7} {'params':>7} {'paper':>6} {'GFLOPs':>7} {'paper':>6} {'MACs e9':>8} "
              f"{'AP':>5}")
    if timed:
        header += f" {'ms bs1 (CPU)':>18} {'ms bs8 (CPU)':>18}" + ("" if args.no_train else f" {'train ms':>9}")
    print(header)
    for r in rows:
        line = (f"{r['name']:<29} {r['input'][0]:>3}x{r['input'][1]:<3} {_millions(r['params']):>7} "
                f"{_millions(r['paper_params']):>6} {r['gflops']:>7.2f} {_number(r['paper_gflops'], '.2f'):>6} "
                f"{r['macs'] / 1e9:>8.2f} {_number(r['paper_ap'], '.1f'):>5}")
        if timed:
            line += "".join(f" {r[f'latency_ms_bs{b}']:>8.1f} ({r[f'cpu_ms_bs{b}']:>7.1f})" for b in (1, 8))
            if not args.no_train:
                line += f" {r['train_step_ms']:>9.1f}"
        print(line)
    sources: dict[str, list[str]] = {}
    for r in rows:
        sources.setdefault(r["source"], []).append(r["name"])
    print("the papers' figures (PAPERS.md §0):")
    for source, names in sources.items():
        print(f"  {', '.join(names)}: {source}")


# Subcommands that live beside the parts they measure: name -> "module:function(argv)"
_EXTERNAL = {"data": "posebook.data.benchmark:main", "learn": "posebook.learn:main",
             "pretrain": "posebook.learn:pretrain_main", "grouping": "posebook.inference.grouping:main",
             "infer": "posebook.inference.optimize:main", "people": "posebook.inference.people_cost:main"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        _train_command(argv[1:])
        return
    if argv and argv[0] == "models":
        _models_command(argv[1:])
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
    m.add_argument("--input", type=argtypes.input_size, nargs="+", default=[(256, 192)], help="H x W, e.g. 256x192")
    m.add_argument("--arg", action="append", default=[], help="constructor argument key=value (JSON values)")
    m.add_argument("--latency", action="store_true")
    m.add_argument("--batch", type=int, default=1)
    m.add_argument("--json", action="store_true", help="one JSON line per input size: name, kwargs, input, params, "
                                                       "gflops (the papers' convention), macs (real multiply-adds)")
    for name in ("models", "train", *_EXTERNAL):
        sub.add_parser(name, help=f"see python -m posebook.bench {name} --help")
    args = parser.parse_args(argv)
    _model_command(args)


if __name__ == "__main__":
    main()
