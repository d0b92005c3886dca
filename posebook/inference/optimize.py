"""Inference speed: :func:`optimize` returns a copy of a model that computes the same maps faster on a CPU.

What it does, each step exact up to float rounding:

1. *BatchNorm folded into the convolution it follows.* In eval mode a BN is a fixed per-channel affine map,
   ``y = (x - mean) / sqrt(var + eps) * gamma + beta``, so ``bn(conv(x))`` is one convolution with its output
   channels' weights scaled by ``gamma / sqrt(var + eps)`` and a new bias (Ioffe & Szegedy, ICML 2015, §3.1, on
   inference with fixed statistics). A BN is folded only when its input is exactly that convolution's output and
   nothing else reads that output (:func:`conv_bn_pairs` finds the pairs by running the model once); the BN
   becomes an ``nn.Identity``, so the copy's state_dict and module names stay those of the paper's model.
2. *channels_last*: 4-D weights in NHWC order, the layout oneDNN's convolutions prefer on CPUs. The maps come back
   in that layout too: ``.reshape``, ``.numpy()`` and every elementwise operation work on them as on any tensor;
   ``.view`` of a merged H x W may not (``.contiguous()`` first gives the default layout).
3. *No autograd*: every parameter has ``requires_grad=False``, so no graph is recorded even without
   ``torch.no_grad()``.
4. *Transposed convolutions as a matrix product* (:class:`GemmConvTranspose2d`) where that is measured faster:
   computed so, SimpleBaseline's first deconvolution (2048 channels at 8 x 6) ran about 4x faster on the book's CPU.
5. Optionally (``compile=True``) ``torch.compile`` with inductor's freezing: convolutions fused with the ReLU or sum
   after them, weights prepacked; minutes of compiling per input shape.

``python -m posebook.bench infer`` times the eager model and its optimized copy, interleaved, at batch 1 and 8 and
prints the speed-up and the largest output difference. Chapter 04 (SimpleBaseline) and chapter 07 (HRNet).
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from collections import Counter, defaultdict

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from posebook import argtypes, timing

TOLERANCE = 1e-4  # the optimized model's outputs equal the eager model's to this, relative to the largest |value|

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
# tensor methods and attributes that read only shape, type or place, never the values: not a use of a tensor
_METADATA = frozenset({"dim", "size", "stride", "numel", "nelement", "is_contiguous", "element_size", "get_device",
                       "is_floating_point", "is_complex", "__len__", "shape", "ndim", "dtype", "device", "layout",
                       "requires_grad", "is_cuda", "is_cpu", "is_meta", "is_sparse", "is_quantized", "is_mkldnn",
                       "grad_fn", "is_leaf", "names"})


def fold_bn(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> nn.Conv2d | nn.ConvTranspose2d:
    """A new convolution computing ``bn(conv(x))`` for an eval-mode ``bn`` with running statistics.

    Each output channel ``o`` of the convolution is scaled by ``s = gamma / sqrt(var + eps)`` and gets the bias
    ``(b - mean) * s + beta`` (Ioffe & Szegedy, ICML 2015, §3.1). A Conv2d keeps its output channels on weight
    dim 0; a ConvTranspose2d's weight is (in, out / groups, kH, kW), so its output channels are dim 1 within each
    group: one group uses ``torch.nn.utils.fusion.fuse_conv_bn_weights(..., transpose=True)``, several groups are
    folded here group by group. ``conv`` and ``bn`` are left unchanged. Chapter 04 (the deconvolution head).
    """
    if not isinstance(conv, _CONVS):
        raise TypeError(f"fold_bn: expected an nn.Conv2d or nn.ConvTranspose2d, got {type(conv).__name__}")
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"fold_bn: expected an nn.BatchNorm2d, got {type(bn).__name__}")
    if bn.training:
        raise ValueError("fold_bn: the BatchNorm is in training mode (it normalizes by each batch's statistics); "
                         "call .eval() first")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fold_bn: the BatchNorm has no running statistics (track_running_stats=False): it "
                         "normalizes by each batch's own statistics, which no fixed weight can fold")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"fold_bn: the BatchNorm has {bn.num_features} channels, the convolution "
                         f"{conv.out_channels} output channels")
    fused = copy.deepcopy(conv).eval()
    transpose = isinstance(conv, nn.ConvTranspose2d)
    if not transpose or conv.groups == 1:
        fused.weight, fused.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                        bn.eps, bn.weight, bn.bias, transpose=transpose)
        return fused
    with torch.no_grad():  # grouped transposed: weight (in, out/g, kH, kW) seen as (g, in/g, out/g, kH, kW)
        ones, zeros = torch.ones_like(bn.running_mean), torch.zeros_like(bn.running_mean)
        scale = (bn.weight if bn.weight is not None else ones) * torch.rsqrt(bn.running_var + bn.eps)
        shift = ((conv.bias if conv.bias is not None else zeros) - bn.running_mean) * scale
        shift = shift + (bn.bias if bn.bias is not None else zeros)
        g, w = conv.groups, conv.weight
        weight = (w.view(g, w.shape[0] // g, *w.shape[1:]) * scale.view(g, 1, -1, 1, 1)).view_as(w)
    fused.weight = nn.Parameter(weight.to(w.dtype), w.requires_grad)
    fused.bias = nn.Parameter(shift.to(w.dtype), w.requires_grad)
    return fused


class GemmConvTranspose2d(nn.Module):
    """A one-group ``nn.ConvTranspose2d`` computed as one matrix product and a col2im (``F.fold``): each input pixel's
    channel vector times the weight gives its (out, kH, kW) patch, and the patches are summed into the output at
    stride spacing, which is the transposed convolution itself (Dumoulin & Visin, "A guide to convolution
    arithmetic for deep learning", 2016, §4). The same sums in another order, so the outputs equal the
    ConvTranspose2d's up to float rounding. On a CPU it is several times faster for a low-resolution input with many
    channels: SimpleBaseline's first deconvolution, 2048 -> 256 channels from 8 x 6 (Xiao et al., ECCV 2018, §2),
    where oneDNN's transposed convolution is slow; :func:`optimize` uses it where it measures faster.

    ``weight`` is the convolution's weight (in, out, kH, kW) laid out once as the (out * kH * kW, in) matrix the
    product reads (a copy: later changes to the convolution do not reach it); ``bias`` is the convolution's.
    Chapter 04.
    """

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        if not self.applies(conv):
            raise ValueError(f"GemmConvTranspose2d: expected an nn.ConvTranspose2d with groups=1 and no "
                             f"output_padding, got {conv!r}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.dilation = conv.dilation
        weight = conv.weight.detach()
        self.weight = nn.Parameter(weight.flatten(1).t().contiguous(), conv.weight.requires_grad)
        self.bias = conv.bias

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        """Whether ``conv`` is a transposed convolution this class computes: one group, no output_padding."""
        return (isinstance(conv, nn.ConvTranspose2d) and conv.groups == 1 and not any(conv.output_padding)
                and isinstance(conv.padding, tuple))

    def forward(self, x: Tensor) -> Tensor:
        size = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                zip(x.shape[-2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        patches = torch.matmul(self.weight, x.flatten(2))  # (B, out * kH * kW, H * W)
        y = F.fold(patches, size, self.kernel_size, dilation=self.dilation, padding=self.padding, stride=self.stride)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}")


class _Uses(TorchFunctionMode):
    """Counts, for each convolution's output tensor, the torch operations that read its values."""

    def __init__(self, outputs: dict[str, Tensor]):
        super().__init__()
        self.outputs, self.owner, self.uses = outputs, {}, Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__":  # an attribute such as .shape: the descriptor's own name
            name = getattr(getattr(func, "__self__", None), "__name__", "")
        if name not in _METADATA:
            for leaf in tree_leaves((args, kwargs)):
                owner = self.owner.get(id(leaf)) if isinstance(leaf, Tensor) else None
                if owner is not None and self.outputs[owner] is leaf:
                    self.uses[owner] += 1
        return func(*args, **kwargs)


def conv_bn_pairs(model: nn.Module, example: Tensor) -> list[tuple[str, str]]:
    """The (convolution name, BatchNorm name) pairs of ``model`` where the BN can be folded into the convolution.

    ``model`` runs once on ``example`` (no grad, in the mode it is in) while every Conv2d/ConvTranspose2d output is
    followed through torch's function dispatch. A pair is kept when the BN (an ``nn.BatchNorm2d`` in eval mode with
    running statistics) is called once, on exactly the output of a convolution called once, and that output is read
    by no other operation (shape and dtype queries aside) and is not itself among the model's outputs. The rule
    holds for whatever the forward does on the path ``example`` takes (``torch.fx`` symbolic tracing cannot run the
    book's models: their input checks branch on shapes); a tensor stashed on an attribute without any torch
    operation would not be seen, which is why :func:`optimize` compares the outputs afterwards. Chapter 04.
    """
    names = {module: name for name, module in model.named_modules(remove_duplicate=False)}
    outputs: dict[str, Tensor] = {}  # convolution name -> its output
    mode = _Uses(outputs)
    calls: Counter = Counter()
    feeds: dict[str, list] = defaultdict(list)  # BN name -> the convolution whose output it read (None: another)

    def conv_hook(module, inputs, output):
        name = names[module]
        calls[name] += 1
        outputs[name] = output
        mode.owner[id(output)] = name

    def bn_hook(module, inputs):
        name = names[module]
        calls[name] += 1
        owner = mode.owner.get(id(inputs[0])) if inputs and isinstance(inputs[0], Tensor) else None
        feeds[name].append(owner if owner is not None and outputs[owner] is inputs[0] else None)

    handles = []
    for module, name in names.items():
        if isinstance(module, _CONVS):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(bn_hook))
    try:
        with torch.no_grad(), mode:
            result = model(example)
    finally:
        for handle in handles:
            handle.remove()
    returned = {id(leaf) for leaf in tree_leaves(result) if isinstance(leaf, Tensor)}
    pairs = []
    for bn_name, fed in feeds.items():
        bn, conv_name = model.get_submodule(bn_name), fed[0]
        if (calls[bn_name] == 1 and conv_name is not None and calls[conv_name] == 1 and mode.uses[conv_name] == 1
                and id(outputs[conv_name]) not in returned and not bn.training and bn.running_mean is not None):
            pairs.append((conv_name, bn_name))
    return pairs


TRANSPOSED = ("fastest", "gemm", "native")  # optimize(transposed=...): how its transposed convolutions are computed


def optimize(model: nn.Module, example: Tensor | None = None, channels_last: bool = True,
             transposed: str = "fastest", compile: bool = False, check: bool = True) -> nn.Module:
    """A copy of ``model`` for fast inference: eval mode, every foldable BatchNorm folded into its convolution (and
    replaced by ``nn.Identity``), weights channels_last, no autograd. ``model`` itself is not changed.

    ``example`` is the input the data flow is traced on (:func:`conv_bn_pairs`) and the outputs are compared on
    (default: zeros (1, 3, 256, 192), the top-down crop of chapters 04 and 07, on the model's device and dtype).
    The copy is put in eval mode whatever mode ``model`` is in: inference uses the BNs' running statistics, which
    is what is folded. With ``check`` the copy's outputs on ``example`` must equal the eager eval-mode model's to
    ``TOLERANCE`` (1e-4) times their largest magnitude, else a ``RuntimeError`` says by how much they differ.
    ``predict`` and every other method and attribute of ``model`` work on the copy (it is the same class).

    ``transposed``: each one-group ``nn.ConvTranspose2d`` (after its BN is folded) becomes a
    :class:`GemmConvTranspose2d` where that runs faster on the input ``example`` brings it ("fastest": both timed
    here, 5 interleaved rounds, the matrix product kept when its median is at least 10% lower), always ("gemm") or
    never ("native").

    ``compile=True`` also compiles the copy with ``torch.compile`` (inductor, ``freezing``: the weights become
    constants, prepacked for oneDNN, and convolutions are fused with the ReLU or sum after them), once for the
    shape of ``example``: another input shape compiles again. Freezing applies under ``torch.no_grad()`` or
    ``torch.inference_mode()``, as inference runs. It needs a C++ compiler and takes minutes the first time (on the
    book's loaded 2-core CPU, 5 to 6 minutes for HRNet-W32 or SimpleBaseline-R50 at 256x192; 3 to 21 seconds once
    inductor's on-disk cache holds the kernels). There, with one thread at batch 1, the copy ran HRNet-W32 1.20x to
    1.29x and SimpleBaseline-R50 1.17x to 1.29x as fast as the eager model over three runs (they differ with the
    machine's load), and compiled 1.39x and 1.31x (one run). Measured by ``python -m posebook.bench infer``.
    Chapters 04 and 07.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"optimize: expected an nn.Module, got {type(model).__name__}")
    if transposed not in TRANSPOSED:
        raise ValueError(f"optimize: transposed={transposed!r}; expected one of {', '.join(TRANSPOSED)}")
    fast = copy.deepcopy(model).eval()
    if example is None:
        tensor = next(fast.parameters(), None)
        example = torch.zeros(1, 3, 256, 192, device=tensor.device if tensor is not None else "cpu",
                              dtype=tensor.dtype if tensor is not None and tensor.is_floating_point() else None)
    if check:
        with torch.no_grad():
            expected = fast(example)
    for conv_name, bn_name in conv_bn_pairs(fast, example):
        _replace(fast, conv_name, fold_bn(fast.get_submodule(conv_name), fast.get_submodule(bn_name)))
        _replace(fast, bn_name, nn.Identity())
    fast.requires_grad_(False)
    if channels_last:
        fast.to(memory_format=torch.channels_last)
    if transposed != "native":
        _gemm_transposed(fast, example, always=transposed == "gemm")
    if compile:
        fast.compile(dynamic=False, options={"freezing": True})
        if not check:
            with torch.no_grad():
                fast(example)  # compile now, not at the caller's first call
    if check:
        with torch.no_grad():
            _compare(fast(example), expected, type(model).__name__)
    return fast


def _gemm_transposed(model: nn.Module, example: Tensor, always: bool) -> None:
    """Replaces each transposed convolution that :class:`GemmConvTranspose2d` computes, and that ``example``
    reaches, by one: ``always``, or where it is faster on the input it gets (median of 5 interleaved rounds, by at
    least 10%)."""
    candidates = {name: m for name, m in model.named_modules() if GemmConvTranspose2d.applies(m)}
    inputs: dict[str, Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda module, args, name=name: inputs.setdefault(name, args[0]))
               for name, m in candidates.items()]
    try:
        if candidates:
            with torch.no_grad():
                model(example)
    finally:
        for handle in handles:
            handle.remove()
    for name, x in inputs.items():
        gemm = GemmConvTranspose2d(candidates[name])
        if always or _faster(gemm, candidates[name], x):
            _replace(model, name, gemm)


def _faster(new: nn.Module, old: nn.Module, x: Tensor) -> bool:
    (old_ms, new_ms), _ = interleaved_ms([old, new], x, rounds=5, warmup=1)
    return new_ms < 0.9 * old_ms


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attribute = name.rpartition(".")
    setattr(model.get_submodule(parent), attribute, module)


def _difference(actual, expected, what: str) -> tuple[float, float]:
    """(largest |actual - expected|, largest |expected|) over the outputs' tensors, which must match in number and
    shape."""
    got, want = tree_leaves(actual), tree_leaves(expected)
    if len(got) != len(want):
        raise RuntimeError(f"optimize({what}): the optimized model returns {len(got)} tensors, the eager {len(want)}")
    error, scale = 0.0, 0.0
    for a, e in zip(got, want):
        if a.shape != e.shape:
            raise RuntimeError(f"optimize({what}): output shapes differ: {tuple(a.shape)} vs eager {tuple(e.shape)}")
        if e.numel():
            error = max(error, float((a.double() - e.double()).abs().max()))
            scale = max(scale, float(e.double().abs().max()))
    return error, scale


def _compare(actual, expected, what: str) -> None:
    """Raises when the outputs differ by more than TOLERANCE x the largest |expected| (at least 1e-3)."""
    error, scale = _difference(actual, expected, what)
    if error > TOLERANCE * max(scale, 1e-3):
        raise RuntimeError(f"optimize({what}): the optimized outputs differ from the eager model's by {error:.3g}, "
                           f"more than {TOLERANCE:g} x their largest |value| {scale:.3g}")


# ---- python -m posebook.bench infer ------------------------------------------------------------------------------

DEFAULT_MODELS = ("hrnet_w32", "simple_baseline")  # the papers' HRNet-W32 and SimpleBaseline-R50 (depth 50)


def interleaved_ms(models: list, x: Tensor, rounds: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """(wall, CPU): the median milliseconds of one no-grad forward pass of ``x`` through each model, timed in
    interleaved rounds (model 0, model 1, ..., model 0, ...) so a busy machine slows each alike, after ``warmup``
    untimed rounds (:func:`posebook.timing.interleaved_ms`). The forward-pass counterpart of
    :func:`posebook.bench.train_step_ms` (chapter 03)."""
    return timing.interleaved_ms([(model, x) for model in models], rounds, warmup)


def _random_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded non-trivial BN statistics and affine parameters, as a trained network has (a fresh BN folds to a
    scale of ~1 and a bias of 0, which would hide a wrong fold)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            n = bn.num_features
            bn.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if bn.affine:
                bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
                bn.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def _keyword(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> list[dict]:
    """``python -m posebook.bench infer``: the eager model beside :func:`optimize`'s copy (and with ``--compile``
    the compiled copy), timed in interleaved rounds at each ``--batch``, with the speed-up and the largest output
    difference; ``--json`` prints one JSON list last. Returns its rows. By default HRNet-W32 (Sun et al., CVPR
    2019; chapter 07) and SimpleBaseline-R50 (Xiao et al., ECCV 2018; chapter 04) at 256x192, batches 1 and 8. With
    ``--official ROOT`` (a clone of the HRNet authors' repository) the official network holding the same weights is
    timed in the same rounds (:mod:`posebook.inference.official`)."""
    from posebook import models

    parser = argparse.ArgumentParser(prog="python -m posebook.bench infer",
                                     description="eager vs optimized (BN folded, channels_last) inference latency")
    parser.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS), help="registered models (default: "
                        "hrnet_w32 simple_baseline, i.e. HRNet-W32 and SimpleBaseline-R50)")
    parser.add_argument("--arg", type=_keyword, action="append", default=[],
                        help="constructor argument key=value (JSON values), given to every model")
    parser.add_argument("--input", type=argtypes.input_size, default=(256, 192), help="H x W (default 256x192)")
    parser.add_argument("--batch", type=argtypes.positive_int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--rounds", type=argtypes.positive_int, default=10, help="timed interleaved rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--threads", type=argtypes.positive_int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="also time optimize(model, compile=True) (minutes "
                                                               "of compiling per model and batch)")
    parser.add_argument("--official", metavar="ROOT", help="also time the official implementation holding the same "
                        "weights, from ROOT, a clone of the HRNet authors' repository (posebook.inference.official)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of the rows last")
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.official:
        from posebook.inference.official import FILES, official_beside

        if not any(m in FILES for m in args.model):
            parser.error(f"--official: no official implementation is known for {args.model}; known: "
                         f"{sorted(FILES)}")
    kwargs = dict(args.arg)
    threads = torch.get_num_threads()
    rows = []
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        print(f"bench infer: the eager eval-mode model beside posebook.inference.optimize(model), input "
              f"{args.input[0]}x{args.input[1]}, {torch.get_num_threads()} CPU thread(s), median ms of {args.rounds} "
              f"interleaved rounds after {args.warmup} (wall clock; in brackets this process's CPU time); BN "
              f"statistics drawn at random (seed 0)", flush=True)
        names = ["eager", "optimized"] + (["compiled"] if args.compile else [])
        official_columns = f"  {'official ms':>19}  {'eager/official':>16}" if args.official else ""
        print(f"{'model':<18} {'batch':>5}" + "".join(f"  {n + ' ms':>19}" for n in names)
              + "".join(f"  {n + ' speed-up':>18}" for n in names[1:]) + f"  {'max |diff|':>10}  {'max |output|':>12}"
              + official_columns, flush=True)
        for name in args.model:
            torch.manual_seed(0)
            model = _random_bn(models.create(name, **kwargs)).eval()
            official = official_beside(model, name, args.official) if args.official and name in FILES else None
            for batch in args.batch:
                x = torch.randn(batch, 3, *args.input, generator=torch.Generator().manual_seed(batch))
                variants = [model, optimize(model, x)]
                if args.compile:
                    start = time.perf_counter()
                    variants.append(optimize(model, x, compile=True))
                    compile_s = time.perf_counter() - start
                timed = variants + ([official] if official is not None else [])
                wall, cpu = interleaved_ms(timed, x, args.rounds, args.warmup)
                with torch.no_grad():
                    eager = model(x)
                    diffs = [_difference(v(x), eager, name) for v in timed[1:]]
                row = dict(model=name, kwargs=kwargs, input=list(args.input), batch=batch,
                           threads=torch.get_num_threads(), rounds=args.rounds, warmup=args.warmup)
                for k, n in enumerate(names):
                    row.update({f"{n}_ms": wall[k], f"{n}_cpu_ms": cpu[k]})
                    if k:
                        row.update({f"{n}_speedup": wall[0] / wall[k], f"{n}_cpu_speedup": cpu[0] / cpu[k],
                                    f"{n}_max_abs_diff": diffs[k - 1][0]})
                if official is not None:  # the book's eager time as a multiple of the official code's
                    row.update(official_ms=wall[-1], official_cpu_ms=cpu[-1], eager_vs_official=wall[0] / wall[-1],
                               eager_vs_official_cpu=cpu[0] / cpu[-1], official_max_abs_diff=diffs[-1][0])
                    diffs = diffs[:-1]
                row.update(max_abs_output=diffs[0][1], **({"compile_s": compile_s} if args.compile else {}),
                           gemm_transposed=[n for n, m in variants[1].named_modules()
                                            if isinstance(m, GemmConvTranspose2d)])
                line = f"{name:<18} {batch:>5}" + "".join(f"  {wall[k]:>9.1f} ({cpu[k]:>7.1f})"
                                                           for k in range(len(names)))
                line += "".join(f"  {wall[0] / wall[k]:>8.2f}x ({cpu[0] / cpu[k]:>5.2f}x)"
                                for k in range(1, len(names)))
                line += f"  {max(d for d, _ in diffs):>10.2g}  {diffs[0][1]:>12.3g}"
                if official is not None:
                    line += (f"  {row['official_ms']:>9.1f} ({row['official_cpu_ms']:>7.1f})  "
                             f"{row['eager_vs_official']:>7.2f}x ({row['eager_vs_official_cpu']:>4.2f}x)")
                elif args.official:
                    line += f"  {'-':>19}  {'-':>16}"
                print(line, flush=True)
                rows.append(row)
        gemm = [f"{r['model']} batch {r['batch']}: {', '.join(r['gemm_transposed'])}" for r in rows
                if r["gemm_transposed"]]
        if gemm:
            print("transposed convolutions computed as a matrix product (GemmConvTranspose2d, measured faster): "
                  + "; ".join(gemm))
        if args.official:
            print(f"official: the implementation of {args.official} holding the same weights (strict load); "
                  f"eager/official is the book's eager time as a multiple of the official's; largest output "
                  f"difference " + ", ".join(f"{r['model']} batch {r['batch']} {r['official_max_abs_diff']:.2g}"
                                             for r in rows if "official_max_abs_diff" in r)
                  + "; none known for " + (", ".join(sorted({m for m in args.model if m not in FILES})) or "no model"))
        if args.compile:
            print("compiling took " + ", ".join(f"{r['model']} batch {r['batch']}: {r['compile_s']:.0f} s"
                                                for r in rows))
    finally:
        torch.set_num_threads(threads)
    if args.json:
        print(json.dumps(rows))
    return rows
