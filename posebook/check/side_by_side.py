"""Checkers for chapter 09 (Side by side: every architecture of the book compared by accuracy, multiply-adds and
latency): counting a model's multiply-adds with forward hooks in both conventions, reading the Pareto front off the
table of accuracy against cost, and folding a BatchNorm into the convolution before it.

Each is checked against the library's own code or the thing itself: the count against
:func:`posebook.bench.conv_macs` (the papers' convention, HRNet's ``get_model_summary``, Sun et al., CVPR 2019, and
the real count of a transposed convolution), the front against the definition of dominance, and the folded
convolution against ``bn(conv(x))`` computed by the two original modules in eval mode (the first step of
:func:`posebook.inference.optimize.optimize`, Ioffe & Szegedy, ICML 2015, §3.1). The reference solutions below are
short enough for the notebook to show as the answers. Chapter 09.
"""
from __future__ import annotations

import copy
import functools
import numbers

import numpy as np
import torch
from torch import nn

from posebook.bench import conv_macs
from posebook.models import create

from ._core import CheckFailure, as_array, exercise, guard

CHAPTER = "09_side_by_side"


# ---- side_by_side_macs ---------------------------------------------------------------------------------------


def macs_solution(model, input_size, real):
    """Multiply-adds of every ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` of ``model`` for one input of
    shape (1, 3, H, W), ``input_size`` = (H, W), counted by forward hooks (which fire at every call of a module).

    ``real=False``, the papers' convention (HRNet's get_model_summary): weight.numel() x the OUTPUT H x W for a
    Conv2d and a ConvTranspose2d alike, weight.numel() for a Linear. ``real=True``: the same, except a
    ConvTranspose2d counts weight.numel() x its INPUT H x W (each input pixel scatters one k x k patch per pair of
    channels). The hooks are removed before returning.
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.weight.numel()
        elif real and isinstance(module, nn.ConvTranspose2d):
            total += module.weight.numel() * inputs[0].shape[-2] * inputs[0].shape[-1]
        else:
            total += module.weight.numel() * output.shape[-2] * output.shape[-1]

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    handles = [m.register_forward_hook(count) for m in layers]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    return total


def _macs_variant(model, input_size, real, *, transposed_at_output=False, linear=True, bias=False, groups=True,
                  conv_at_input=False, first_call_only=False):
    """A planted wrong count: one part of the reference changed (the names say which)."""
    total, seen = 0, set()

    def count(module, inputs, output):
        nonlocal total
        if first_call_only:
            if id(module) in seen:
                return
            seen.add(id(module))
        if isinstance(module, nn.Linear):
            if linear:
                total += module.weight.numel() + (module.out_features if bias and module.bias is not None else 0)
            return
        weights = module.weight.numel() * (1 if groups else module.groups)
        transposed = isinstance(module, nn.ConvTranspose2d)
        at_input = (transposed and real and not transposed_at_output) or (conv_at_input and not transposed)
        where = inputs[0] if at_input else output
        total += weights * where.shape[-2] * where.shape[-1]
        if bias and module.bias is not None:
            total += module.out_channels * output.shape[-2] * output.shape[-1]

    _hooked(model, input_size, count)
    return total


_MACS_MUTANTS = {
    "transposed convolution at its output size even when real=True":
        functools.partial(_macs_variant, transposed_at_output=True),
    "Linear layers not counted": functools.partial(_macs_variant, linear=False),
    "bias counted as extra adds": functools.partial(_macs_variant, bias=True),
    "groups ignored (in x out x k x k per pixel)": functools.partial(_macs_variant, groups=False),
    "Conv2d at its input size": functools.partial(_macs_variant, conv_at_input=True),
    "each module's first call only": functools.partial(_macs_variant, first_call_only=True),
}

_MACS_HINTS = {
    "transposed convolution at its output size even when real=True":
        "with real=True a ConvTranspose2d is charged at its INPUT pixels: each input pixel scatters one k x k "
        "patch per pair of channels, weight.numel() multiply-adds per input pixel (inputs[0].shape[-2:] in the "
        "hook); only the papers' convention (real=False) charges it at its output, stride^2 times more",
    "Linear layers not counted":
        "count the nn.Linear layers too: weight.numel() = in_features x out_features multiply-adds for one input",
    "bias counted as extra adds":
        "a multiply-add is one product and one sum; adding the bias is not counted (neither the papers' count "
        "nor posebook.bench adds out_channels x H x W for it): weight.numel() x the pixels, with or without bias",
    "groups ignored (in x out x k x k per pixel)":
        "a grouped convolution (groups = g) connects each output channel to only in_channels / g input channels: "
        "its weight is (out, in / g, k, k), so weight.numel() already counts the multiply-adds per pixel; "
        "in_channels x out_channels x k x k counts g times too many",
    "Conv2d at its input size":
        "a Conv2d does weight.numel() multiply-adds per OUTPUT pixel (output.shape[-2:] in the hook): a stride-2 "
        "convolution has a quarter of its input's pixels",
    "each module's first call only":
        "a module called twice in one forward pass costs twice: its hook fires at every call, so add at every "
        "call (do not skip a module already counted)",
}


class _Twice(nn.Module):
    """A stem, then one 3 x 3 convolution applied twice (the same weights): it must be counted twice."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.shared = nn.Conv2d(8, 8, 3, padding=1, bias=False)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        return self.shared(torch.relu(self.shared(x)))


def _strided():
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1, bias=False))


def _grouped():
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1, bias=False), nn.ReLU(),
                         nn.Conv2d(12, 24, 3, padding=1, groups=4, bias=False), nn.ReLU(),
                         nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False))


def _transposed():
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                         nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, bias=False))


def _linear_head():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)),
                         nn.Flatten(), nn.Linear(32, 10), nn.ReLU(), nn.Linear(10, 4))


def _simple_baseline():
    return create("simple_baseline", depth=50, width=4, deconv_channels=8, num_joints=17)


MACS_CASES = [  # (what, a function building the model, input (H, W))
    ("a stride-2 convolution with a bias, then a 3 x 3 convolution", _strided, (20, 16)),
    ("a grouped convolution (groups=4) and a depthwise one (groups=24)", _grouped, (12, 12)),
    ("a stride-2 convolution, then a stride-2 transposed convolution (k4, p1)", _transposed, (16, 12)),
    ("a convolution, adaptive average pooling to 2 x 2, flatten, then two Linear layers", _linear_head, (10, 14)),
    ("one 3 x 3 convolution applied twice in the forward pass", _Twice, (12, 10)),
    ("SimpleBaseline-R50 (width 4, deconv_channels=8)", _simple_baseline, (64, 48)),
]


def _build(factory) -> nn.Module:
    """A fresh eval-mode model of the case, its weights drawn without touching the learner's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return factory().eval()


def _hooked(model: nn.Module, input_size, count) -> None:
    """One forward pass of a (1, 3, H, W) zero input with ``count`` hooked on every conv and linear layer."""
    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size))
    finally:
        for handle in handles:
            handle.remove()


def _by_kind(model: nn.Module, input_size, real: bool) -> dict[str, int]:
    """The reference count split by layer kind (for the hints)."""
    kinds: dict[str, int] = {}

    def count(module, inputs, output):
        where = inputs[0] if real and isinstance(module, nn.ConvTranspose2d) else output
        pixels = 1 if isinstance(module, nn.Linear) else where.shape[-2] * where.shape[-1]
        kind = type(module).__name__
        kinds[kind] = kinds.get(kind, 0) + module.weight.numel() * pixels

    _hooked(model, input_size, count)
    return kinds


def _global_hooks() -> set:
    """The ids of the global forward (pre-)hooks registered now (register_module_forward_hook)."""
    from torch.nn.modules import module as torch_module

    return set(torch_module._global_forward_hooks) | set(torch_module._global_forward_pre_hooks)


def _has_hooks(model: nn.Module, global_before: set) -> bool:
    return (any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
            or bool(_global_hooks() - global_before))


def _as_count(value, what: str) -> float:
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or (
            hasattr(value, "item") and getattr(value, "ndim", 1) == 0)):
        raise CheckFailure(f"{what}: expected a number (the multiply-adds), got {type(value).__name__}")
    return float(value.item() if hasattr(value, "item") else value)


def _fmt_count(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def _macs_hint(factory, size, real: bool, got: float, want: int, kinds: dict[str, int]) -> str:
    for name, mutant in _MACS_MUTANTS.items():
        variant = mutant(_build(factory), size, real)
        if variant != want and variant == got:
            return _MACS_HINTS[name]
    other = conv_macs(_build(factory), size, real=not real)
    if other != want and got == other:
        return (f"that is the count with real={not real}: with real=True a ConvTranspose2d is charged at its "
                "input's H x W, with real=False (the papers' convention) at its output's, like every Conv2d")
    for kind, macs in kinds.items():
        if got == want - macs:
            return f"your count leaves out the {kind} layers ({macs:,} multiply-adds)"
    return ("hook every nn.Conv2d, nn.ConvTranspose2d and nn.Linear of model.modules() and add, at every call, "
            "weight.numel() x the output's H x W (a Linear: weight.numel(); with real=True a ConvTranspose2d: "
            "weight.numel() x its input's H x W)")


@exercise("side_by_side_macs", solution=macs_solution, mutants=_MACS_MUTANTS, chapter=CHAPTER, timeout=10)
def check_macs(fn):
    """``fn(model, input_size, real)`` against posebook.bench.conv_macs on every case, real=False and real=True, each
    on a fresh eval-mode model; the learner's hooks must be gone when ``fn`` returns."""
    for what, factory, size in MACS_CASES:
        for real in (False, True):
            label = f"{what}, input {size[0]}x{size[1]}, real={real}"
            model, hooks_before = _build(factory), _global_hooks()
            got = _as_count(fn(model, size, real), label)
            want = conv_macs(_build(factory), size, real=real)  # the truth: the library's count
            if got != want:
                kinds = _by_kind(_build(factory), size, real)
                split = ", ".join(f"{kind} {macs:,}" for kind, macs in kinds.items())
                raise CheckFailure(f"{label}: expected {want:,} multiply-adds ({split}), got {_fmt_count(got)}. "
                                   f"Hint: {_macs_hint(factory, size, real, got, want, kinds)}")
            if _has_hooks(model, hooks_before):
                raise CheckFailure(f"{label}: the count is right, but your hooks are still registered after "
                                   "my_macs returned, so every later forward pass of the model would still run "
                                   "them. Keep the handles register_forward_hook returns and call handle.remove() "
                                   "on each before returning (in a finally: block)")


# ---- side_by_side_pareto -------------------------------------------------------------------------------------


def pareto_solution(rows):
    """The names of the models on the Pareto front of accuracy against cost, sorted by macs ascending (ties by
    name). ``rows``: a list of dicts with keys "name", "macs" and "AP". A model is on the front when no other model
    dominates it: has AP >= its AP and macs <= its macs, and is strictly better in at least one of the two. Two
    rows with equal macs and equal AP do not dominate each other, so both stay on the front.
    """
    def dominates(a, b):
        return (a["AP"] >= b["AP"] and a["macs"] <= b["macs"]
                and (a["AP"] > b["AP"] or a["macs"] < b["macs"]))

    front = [row for row in rows if not any(dominates(other, row) for other in rows)]
    return [row["name"] for row in sorted(front, key=lambda row: (row["macs"], row["name"]))]


def _by_macs(rows):
    return [row["name"] for row in sorted(rows, key=lambda row: (row["macs"], row["name"]))]


def _pareto_ties_dominate(rows):
    return _by_macs([row for row in rows if not any(
        other is not row and other["AP"] >= row["AP"] and other["macs"] <= row["macs"] for other in rows)])


def _pareto_strict_both(rows):
    return _by_macs([row for row in rows if not any(
        other["AP"] > row["AP"] and other["macs"] < row["macs"] for other in rows)])


def _pareto_sorted_by_ap(rows):
    names = set(pareto_solution(rows))
    front = [row for row in rows if row["name"] in names]
    return [row["name"] for row in sorted(front, key=lambda row: (-row["AP"], row["name"]))]


def _pareto_ratio(rows):
    ranked = sorted(rows, key=lambda row: -row["AP"] / row["macs"])
    return _by_macs(ranked[:(len(rows) + 1) // 2])


def _pareto_above_median(rows):
    if not rows:
        return []
    median = float(np.median([row["AP"] for row in rows]))
    return _by_macs([row for row in rows if row["AP"] > median])


_PARETO_MUTANTS = {
    "equal rows dominate each other (no strict improvement required)": _pareto_ties_dominate,
    "dominance needs both strictly better (a tie on macs or AP never dominates)": _pareto_strict_both,
    "front sorted by AP, best first": _pareto_sorted_by_ap,
    "top half by AP / macs (a ranking, not dominance)": _pareto_ratio,
    "models above the median AP (cost ignored)": _pareto_above_median,
}

_PARETO_HINTS = {
    "equal rows dominate each other (no strict improvement required)":
        "two models with the same macs and the same AP do not dominate each other: to dominate, a model must be "
        "at least as good on both AND strictly better on at least one (higher AP or fewer macs), so both stay",
    "dominance needs both strictly better (a tie on macs or AP never dominates)":
        "a model with the same macs and a higher AP (or the same AP at fewer macs) dominates: at least as good "
        "on both and strictly better on one is enough, it need not be strictly better on both",
    "front sorted by AP, best first":
        "return the front sorted by macs ascending (the cheapest first), ties by name, not by AP",
    "top half by AP / macs (a ranking, not dominance)":
        "AP per multiply-add ranks efficiency; it is not the front. The front keeps every model that no other "
        "beats on both axes: the most accurate model is on it however costly, and a model with a good ratio is "
        "off it when another is both cheaper and more accurate",
    "models above the median AP (cost ignored)":
        "the front weighs both axes: a cheap model is on it even with a low AP when nothing cheaper is as "
        "accurate, and an accurate model is off it when another has at least its AP at fewer macs",
}


def _rows(*table):
    return [{"name": name, "macs": macs, "AP": ap} for name, macs, ap in table]


PARETO_CASES = [  # (what, rows); made-up numbers, GMACs and AP in points
    ("the book's five architectures", _rows(("hourglass", 25.9, 66.9), ("simple_baseline", 8.9, 73.5),
                                            ("cpn", 6.2, 68.6), ("mspn", 4.4, 73.0), ("hrnet", 7.1, 74.4))),
    ("two models with equal macs, two with equal AP", _rows(("A", 5.0, 70.0), ("B", 5.0, 72.0), ("C", 3.0, 65.0),
                                                           ("D", 8.0, 72.0))),
    ("equal AP at different costs", _rows(("big", 6_000_000, 0.7), ("small", 2_000_000, 0.6),
                                          ("medium", 4_000_000, 0.6))),
    ("two identical rows (same macs, same AP)", _rows(("y", 4.0, 70.0), ("x", 4.0, 70.0), ("z", 2.0, 60.0),
                                                      ("w", 6.0, 69.0))),
    ("every model on the front", _rows(("w48", 14.6, 75.1), ("small", 3.0, 68.0), ("w32", 7.1, 74.4),
                                       ("tiny", 0.5, 55.0))),
    ("a single row", _rows(("only", 7.1, 74.4))),
    ("an empty table", []),
]


def _as_names(out, what: str) -> list[str]:
    if out is None or isinstance(out, (str, bytes, dict)) or not hasattr(out, "__iter__"):
        raise CheckFailure(f"{what}: return a list of names, got {type(out).__name__}")
    names = list(out)
    if not all(isinstance(name, str) for name in names):
        bad = next(name for name in names if not isinstance(name, str))
        raise CheckFailure(f"{what}: return the models' names (the rows' \"name\"), got {bad!r:.60} in the list")
    return names


@exercise("side_by_side_pareto", solution=pareto_solution, mutants=_PARETO_MUTANTS, chapter=CHAPTER, timeout=10)
def check_pareto(fn):
    """``fn(rows)`` against the definition of the Pareto front on every case (given a copy of the rows)."""
    for what, rows in PARETO_CASES:
        shown = ", ".join(f"{r['name']} (macs {r['macs']:g}, AP {r['AP']:g})" for r in rows) or "no rows"
        label = f"{what}: {shown}"
        got = _as_names(fn(copy.deepcopy(rows)), label)
        want = pareto_solution(rows)
        if got == want:
            continue
        head = f"{label}: expected {want}, got {got}"
        for name, mutant in _PARETO_MUTANTS.items():
            variant = mutant(rows)
            if variant != want and got == variant:
                raise CheckFailure(f"{head}. Hint: {_PARETO_HINTS[name]}")
        by_name = {row["name"]: row for row in rows}
        if sorted(got) == sorted(want):
            hint = "these are the right models: sort them by macs ascending, ties by name"
        elif len(set(got)) < len(got):
            hint = "each model appears once"
        elif any(name not in by_name for name in got):
            hint = f"{next(n for n in got if n not in by_name)!r} is not the name of any row"
        elif any(name not in want for name in got):
            name = next(n for n in got if n not in want)
            row = by_name[name]
            rival = next(o for o in rows if o["AP"] >= row["AP"] and o["macs"] <= row["macs"]
                         and (o["AP"] > row["AP"] or o["macs"] < row["macs"]))
            hint = (f"{name} is dominated by {rival['name']} (AP {rival['AP']:g} >= {row['AP']:g} at "
                    f"{rival['macs']:g} <= {row['macs']:g} macs, better on one of the two)")
        else:
            name = next(n for n in want if n not in got)
            hint = (f"{name} is on the front: no other model has at least its AP at no more macs while being "
                    "strictly better on one of the two")
        raise CheckFailure(f"{head}. Hint: {hint}")


# ---- side_by_side_fold_bn ------------------------------------------------------------------------------------


def fold_bn_solution(conv, bn):
    """A new ``nn.Conv2d`` computing, in eval mode, exactly ``bn(conv(x))``: BatchNorm with running statistics is
    the per-channel affine map y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, so each output
    channel o of the convolution is scaled by scale[o] = bn.weight[o] / sqrt(running_var[o] + eps) and gets the bias
    (conv_bias[o] - running_mean[o]) * scale[o] + bn.bias[o] (conv_bias = 0 when the convolution has none).
    ``conv`` and ``bn`` are left unchanged.
    """
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused = copy.deepcopy(conv)
        fused.weight = nn.Parameter(conv.weight * scale[:, None, None, None])
        fused.bias = nn.Parameter((conv_bias - bn.running_mean) * scale + bn.bias)
    return fused


def _fold_variant(conv, bn, *, eps=True, conv_bias=True, sqrt=True, input_channels=False, sign=-1.0,
                  in_place=False):
    """A planted wrong fold: one part of the reference changed (the names say which)."""
    with torch.no_grad():
        var = bn.running_var + (bn.eps if eps else 0.0)
        scale = bn.weight / (torch.sqrt(var) if sqrt else var)
        bias = conv.bias if conv.bias is not None and conv_bias else torch.zeros_like(bn.running_mean)
        weight = conv.weight * (scale[None, :, None, None] if input_channels else scale[:, None, None, None])
        fused = conv if in_place else copy.deepcopy(conv)
        fused.weight = nn.Parameter(weight)
        fused.bias = nn.Parameter((bias + sign * bn.running_mean) * scale + bn.bias)
    return fused


_FOLD_MUTANTS = {
    "eps forgotten": functools.partial(_fold_variant, eps=False),
    "conv bias dropped": functools.partial(_fold_variant, conv_bias=False),
    "divides by running_var, not its square root": functools.partial(_fold_variant, sqrt=False),
    "input channels scaled (scale[None, :, None, None])": functools.partial(_fold_variant, input_channels=True),
    "mean added instead of subtracted": functools.partial(_fold_variant, sign=1.0),
    "conv modified in place and returned": functools.partial(_fold_variant, in_place=True),
}

_FOLD_HINTS = {
    "eps forgotten":
        "BatchNorm divides by sqrt(running_var + eps), not sqrt(running_var): add bn.eps (here 0.1, so it shows)",
    "conv bias dropped":
        "this convolution has a bias: it is added before the BatchNorm, so it is shifted and scaled too: the new "
        "bias is (conv.bias - running_mean) * scale + bn.bias",
    "divides by running_var, not its square root":
        "BatchNorm divides by the standard deviation, sqrt(running_var + eps), not by the variance",
    "input channels scaled (scale[None, :, None, None])":
        "the BatchNorm scales the convolution's OUTPUT channels, which are dim 0 of a Conv2d's weight "
        "(out, in / groups, kH, kW): weight * scale[:, None, None, None]",
    "mean added instead of subtracted":
        "BatchNorm subtracts the running mean: the new bias is (conv_bias - running_mean) * scale + bn.bias",
}


def _fold_case(seed: int, in_channels: int, out_channels: int, kernel: int, *, stride=1, padding=0, groups=1,
               bias=True, eps=1e-5):
    """(conv, bn), both in eval mode, with seeded weights, running statistics and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
    bn = nn.BatchNorm2d(out_channels, eps=eps)
    with torch.no_grad():
        if bias:
            conv.bias.copy_(torch.randn(out_channels, generator=gen) * 0.5)
        bn.running_mean.copy_(torch.randn(out_channels, generator=gen) * 0.5)
        bn.running_var.copy_(torch.rand(out_channels, generator=gen) * 2.8 + 0.2)  # in [0.2, 3]
        bn.weight.copy_(torch.randn(out_channels, generator=gen) * 0.5 + 1.0)
        bn.bias.copy_(torch.randn(out_channels, generator=gen) * 0.3)
        bn.num_batches_tracked.fill_(100)
    return conv.eval(), bn.eval()


FOLD_CASES = [  # (what, conv and BN arguments, input (H, W))
    ("Conv2d(8, 8, 3, padding=1) with a bias, BatchNorm2d(8, eps=0.1)",
     dict(in_channels=8, out_channels=8, kernel=3, padding=1, eps=0.1), (9, 11)),
    ("Conv2d(6, 10, 3, stride=2, padding=1, bias=False), BatchNorm2d(10)",
     dict(in_channels=6, out_channels=10, kernel=3, stride=2, padding=1, bias=False), (12, 10)),
    ("Conv2d(8, 12, 3, padding=1, groups=2) with a bias, BatchNorm2d(12, eps=1e-3)",
     dict(in_channels=8, out_channels=12, kernel=3, padding=1, groups=2, eps=1e-3), (7, 9)),
    ("Conv2d(16, 4, 1) with a bias, BatchNorm2d(4, eps=0.1)",
     dict(in_channels=16, out_channels=4, kernel=1, eps=0.1), (6, 5)),
]

FOLD_RTOL = 1e-5  # the folded output equals bn(conv(x)) to this, relative to its largest absolute value (float32)


def _fold_error(got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference relative to the output's magnitude."""
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1.0))


def _run_conv(module, x) -> np.ndarray:
    with torch.no_grad():
        return as_array(module(x), "")


def _state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _unchanged(module: nn.Module, before: dict) -> bool:
    after = module.state_dict()
    return after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())


@exercise("side_by_side_fold_bn", solution=fold_bn_solution, mutants=_FOLD_MUTANTS, chapter=CHAPTER, timeout=10)
def check_fold_bn(fn):
    """``fn(conv, bn)`` against ``bn(conv(x))`` of the two original eval-mode modules on a random input, to a relative
    tolerance of FOLD_RTOL; ``conv`` and ``bn`` must come back unchanged."""
    for seed, (what, args, (h, w)) in enumerate(FOLD_CASES):
        conv, bn = _fold_case(seed, **args)
        conv_before, bn_before = _state(conv), _state(bn)
        x = torch.randn(2, conv.in_channels, h, w, generator=torch.Generator().manual_seed(100 + seed))
        want = _run_conv(lambda t: bn(conv(t)), x)  # the truth: the two original modules
        fused = fn(conv, bn)
        if not _unchanged(conv, conv_before) or not _unchanged(bn, bn_before) or fused is conv:
            changed = "conv" if not _unchanged(conv, conv_before) or fused is conv else "bn"
            raise CheckFailure(f"{what}: my_fold_bn changed {changed} (its state_dict) or returned it. Hint: "
                               "leave the originals untouched, the model they come from still uses them: build "
                               "a new nn.Conv2d (copy.deepcopy(conv), then give the copy its new weight and bias "
                               "as nn.Parameter)")
        if not isinstance(fused, nn.Conv2d):
            raise CheckFailure(f"{what}: expected an nn.Conv2d, got {type(fused).__name__}")
        if fused.bias is None:
            raise CheckFailure(f"{what}: the folded convolution has no bias. Hint: it needs one, even when conv "
                               "has none: the BatchNorm's shift bn.bias - running_mean * scale moves into it")
        if tuple(fused.weight.shape) != tuple(conv.weight.shape):
            raise CheckFailure(f"{what}: the folded weight has shape {tuple(fused.weight.shape)}, expected "
                               f"{tuple(conv.weight.shape)} (conv's own: only its values change)")
        got = _run_conv(guard(fused.eval()), x)
        if got.shape != want.shape:
            raise CheckFailure(f"{what}: on a (2, {conv.in_channels}, {h}, {w}) input the folded convolution gives "
                               f"shape {got.shape}, expected {want.shape}: keep conv's stride, padding, dilation "
                               "and groups")
        error = _fold_error(got, want)
        if error <= FOLD_RTOL:
            continue
        head = (f"{what}: on a random input the folded convolution differs from bn(conv(x)) by {error:.3g} of the "
                "output's largest absolute value")
        for name, mutant in _FOLD_MUTANTS.items():
            if name not in _FOLD_HINTS:
                continue
            try:
                variant = _run_conv(mutant(copy.deepcopy(conv), copy.deepcopy(bn)), x)
            except RuntimeError:  # e.g. input channels scaled where in / groups != out: no such answer here
                continue
            if (variant.shape == want.shape and _fold_error(variant, want) > FOLD_RTOL
                    and _fold_error(got, variant) <= FOLD_RTOL):
                raise CheckFailure(f"{head}. Hint: {_FOLD_HINTS[name]}")
        raise CheckFailure(f"{head}. Hint: scale = bn.weight / sqrt(running_var + eps) per output channel; new "
                           "weight = conv.weight * scale[:, None, None, None]; new bias = (conv_bias - "
                           "running_mean) * scale + bn.bias")
