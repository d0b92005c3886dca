"""Benchmarks that print figures: ``python -m posebook.bench model NAME`` and ``python -m posebook.bench data``.

``count_params`` and ``gflops`` are what the chapters and tests use. ``gflops`` follows the papers' convention
(HRNet's ``get_model_summary``, PAPERS.md §1.4): for every Conv2d and ConvTranspose2d, weight.numel() x output
H x W; for every Linear, weight.numel(); summed and divided by 2^30. So it counts multiply-adds, in units of 2^30.
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


def conv_macs(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> int:
    """Multiply-adds of every conv and linear layer for one (1, C, H, W) input, counted as the papers count them."""
    total = 0

    def hook(module, _inputs, output):
        nonlocal total
        out = output[0] if isinstance(output, (list, tuple)) else output
        if isinstance(module, nn.Linear):
            total += module.weight.numel()
        else:
            total += module.weight.numel() * out.shape[-2] * out.shape[-1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _COUNTED)]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
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

    model = models.create(args.name, **_parse_kwargs(args.arg))
    params = count_params(model)
    print(f"model        {args.name} {_parse_kwargs(args.arg) or ''}".rstrip())
    print(f"params       {params:,} ({params / 1e6:.2f}M)")
    for size in args.input:
        line = f"input {size[0]}x{size[1]}  GFLOPs {gflops(model, size):.2f} (conv MACs / 2^30)"
        if args.latency:
            line += f"  latency {latency_ms(model, size, batch=args.batch):.1f} ms (batch {args.batch}, " \
                    f"{torch.get_num_threads()} CPU threads)"
        print(line)


# Subcommands that live beside the parts they measure: name -> "module:function(argv)"
_EXTERNAL = {"data": "posebook.data.benchmark:main"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _EXTERNAL:
        module, func = _EXTERNAL[argv[0]].split(":")
        getattr(importlib.import_module(module), func)(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m posebook.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("model", help="params, GFLOPs (paper convention) and optionally latency of a registered model")
    m.add_argument("name")
    m.add_argument("--input", type=_parse_size, nargs="+", default=[(256, 192)], help="H x W, e.g. 256x192")
    m.add_argument("--arg", action="append", default=[], help="constructor argument key=value (JSON values)")
    m.add_argument("--latency", action="store_true")
    m.add_argument("--batch", type=int, default=1)
    for name in _EXTERNAL:
        sub.add_parser(name, help=f"see python -m posebook.bench {name} --help")
    args = parser.parse_args(argv)
    _model_command(args)


if __name__ == "__main__":
    main()
