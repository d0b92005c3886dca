"""Checkers for chapter 04 (SimpleBaseline): the output size of a stack of transposed convolutions, the
deconvolution head itself (Xiao, Wu, Wei, ECCV 2018, §2), and the head's multiply-adds counted for real and in the
papers' convention.

The head is checked the way an official checkpoint would judge it: its state_dict must have the official layout
(keys and shapes of ``deconv_layers``), the paper's head must have the paper's parameter count, and with the
reference's weights loaded it must compute the same outputs. Chapter 04.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from posebook.bench import conv_macs, count_params
from posebook.models.simple_baseline import deconv_head

from ._core import CheckFailure, as_array, expect_close, exercise, guard, randomised

CHAPTER = "04_simple_baseline"


# ---- deconv_output_size --------------------------------------------------------------------------------------------


def deconv_output_size_solution(size, layers, kernel, stride, padding, output_padding):
    """The side length after ``layers`` ConvTranspose2d(kernel, stride, padding, output_padding) in a row: each maps
    n to (n - 1) * stride - 2 * padding + kernel + output_padding (dilation 1)."""
    for _ in range(layers):
        size = (size - 1) * stride - 2 * padding + kernel + output_padding
    return size


def _size_no_padding(size, layers, kernel, stride, padding, output_padding):
    for _ in range(layers):
        size = (size - 1) * stride + kernel + output_padding
    return size


def _size_formula_once(size, layers, kernel, stride, padding, output_padding):
    if layers == 0:
        return size
    return (size - 1) * stride ** layers - 2 * padding + kernel + output_padding


def _size_one_short(size, layers, kernel, stride, padding, output_padding):
    for _ in range(layers):
        size = (size - 1) * stride - 2 * padding + kernel + output_padding - 1
    return size


def _size_conv_formula(size, layers, kernel, stride, padding, output_padding):
    for _ in range(layers):
        size = (size + 2 * padding - kernel) // stride + 1
    return size


def _size_no_output_padding(size, layers, kernel, stride, padding, output_padding):
    return deconv_output_size_solution(size, layers, kernel, stride, padding, 0)


def _torch_size(size, layers, kernel, stride, padding, output_padding) -> int:
    """What PyTorch's ConvTranspose2d stack gives, on the meta device (shapes only)."""
    with torch.device("meta"):
        x = torch.empty(1, 1, size, size)
        for _ in range(layers):
            x = nn.ConvTranspose2d(1, 1, kernel, stride, padding, output_padding)(x)
    return int(x.shape[-1])


SIZE_CASES = [  # (size, layers, kernel, stride, padding, output_padding)
    (8, 3, 4, 2, 1, 0), (6, 3, 4, 2, 1, 0),  # the paper's head on a 256x192 input: 8x6 -> 64x48
    (12, 3, 4, 2, 1, 0), (5, 1, 4, 2, 1, 0), (7, 2, 3, 2, 1, 1), (4, 2, 3, 2, 1, 0), (3, 1, 2, 2, 0, 0),
    (9, 2, 4, 2, 0, 0), (10, 0, 4, 2, 1, 0), (2, 4, 4, 2, 1, 0), (6, 1, 5, 3, 1, 2), (1, 1, 3, 1, 1, 0),
]

SIZE_HINTS = [  # (wrong formula, what it forgets), tried in order on the first failing case
    (_size_no_output_padding, "output_padding adds that many pixels on one side of the output"),
    (_size_no_padding, "padding p crops p pixels from each side of a transposed convolution's output"),
    (_size_formula_once, "apply the one-layer formula once per layer, each to the previous layer's output"),
    (_size_one_short, "a side of n pixels spans (n - 1) strides between its first and last pixel, and the kernel "
                      "adds k - 1 more pixels to that span: count the pixels, not the last index"),
    (_size_conv_formula, "this is the size of an ordinary (strided) convolution; a transposed one goes the other "
                         "way and grows the map"),
]


@exercise("simple_baseline_output_size", solution=deconv_output_size_solution, chapter=CHAPTER,
          mutants={"no -2p (padding ignored)": _size_no_padding,
                   "stride applied once (formula once for all layers)": _size_formula_once,
                   "off by one (one short per layer)": _size_one_short,
                   "the ordinary convolution's formula": _size_conv_formula,
                   "output_padding ignored": _size_no_output_padding})
def check_deconv_output_size(fn):
    for case in SIZE_CASES:
        size, layers, kernel, stride, padding, output_padding = case
        what = (f"deconv_output_size(size={size}, layers={layers}, kernel={kernel}, stride={stride}, "
                f"padding={padding}, output_padding={output_padding})")
        got = fn(*case)
        if isinstance(got, bool) or not isinstance(got, numbers.Real) and not (
                hasattr(got, "item") and getattr(got, "ndim", 1) == 0):
            raise CheckFailure(f"{what}: expected a number (the side length), got {type(got).__name__}")
        want = _torch_size(*case)
        if float(got) != want:
            hint = next((text for wrong, text in SIZE_HINTS if wrong(*case) == float(got)), "")
            raise CheckFailure(f"{what}: expected {want} (what PyTorch's ConvTranspose2d gives), got {got}"
                               + (f". Hint: {hint}" if hint else ""))


# ---- the deconvolution head ----------------------------------------------------------------------------------------


def deconv_head_solution(in_channels, channels, layers):
    """``layers`` x [ConvTranspose2d(k4, s2, p1, no bias), BatchNorm2d, ReLU] in one nn.Sequential, from
    ``in_channels`` to ``channels``: SimpleBaseline's head."""
    return deconv_head(in_channels, channels, layers)


def _head(in_channels, channels, layers, *, bias=False, kernel=4, padding=1, output_padding=0, bn=True,
          relu_first=False, widen_last=False):
    modules = []
    for i in range(layers):
        out = channels if not widen_last or i == layers - 1 else in_channels
        deconv = nn.ConvTranspose2d(in_channels, out, kernel, stride=2, padding=padding,
                                    output_padding=output_padding, bias=bias)
        norm = [nn.BatchNorm2d(out)] if bn else []
        modules += [deconv, nn.ReLU(inplace=True), *norm] if relu_first else [deconv, *norm, nn.ReLU(inplace=True)]
        in_channels = out
    return nn.Sequential(*modules)


def _head_with_bias(in_channels, channels, layers):
    return _head(in_channels, channels, layers, bias=True)


def _head_k3(in_channels, channels, layers):
    return _head(in_channels, channels, layers, kernel=3, padding=1, output_padding=1)  # same sizes, other kernel


def _head_no_bn(in_channels, channels, layers):
    return _head(in_channels, channels, layers, bn=False)


def _head_relu_before_bn(in_channels, channels, layers):
    return _head(in_channels, channels, layers, relu_first=True)


def _head_padding_0(in_channels, channels, layers):
    return _head(in_channels, channels, layers, padding=0)


def _head_widen_last(in_channels, channels, layers):
    return _head(in_channels, channels, layers, widen_last=True)


def _layout(learner: object, reference: nn.Module, what: str) -> None:
    """The learner's module has the reference's state_dict keys and shapes (the official ``deconv_layers.*``)."""
    if not isinstance(learner, nn.Module):
        raise CheckFailure(f"{what}: expected an nn.Module (an nn.Sequential), got {type(learner).__name__}")
    mine = {k: tuple(v.shape) for k, v in learner.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    missing, extra = sorted(set(want) - set(mine)), sorted(set(mine) - set(want))
    if missing or extra:
        raise CheckFailure(f"{what}: its state_dict keys differ from the official deconv_layers: missing "
                           f"{missing[:4]}, unexpected {extra[:4]} ({_layout_hint(learner, reference, missing, extra)})")
    wrong = [f"{k}: {mine[k]} instead of {want[k]}" for k in want if mine[k] != want[k]]
    if wrong:
        raise CheckFailure(f"{what}: wrong shapes {wrong[:3]} (a ConvTranspose2d weight is (in, out, k, k))")


_BN_STATE = ("running_mean", "running_var", "num_batches_tracked")


def _layout_hint(learner: nn.Module, reference: nn.Module, missing: list, extra: list) -> str:
    """What the keys say is wrong: nested Sequentials, another normalisation, a bias on a deconvolution, or layers
    beyond the head's last ReLU. The official layout: one nn.Sequential, per layer ConvTranspose2d (0, 3, 6),
    BatchNorm2d (1, 4, 7) and ReLU (no state)."""
    convs = {str(i) for i, m in enumerate(reference) if isinstance(m, nn.ConvTranspose2d)}
    norms = {str(i) for i, m in enumerate(reference) if isinstance(m, nn.BatchNorm2d)}
    top = {k.split(".")[0] for k in extra}
    if any(k.count(".") >= 2 for k in extra):
        return ("put every layer directly into one nn.Sequential (nn.Sequential(*modules)), not one Sequential "
                "per layer: the official keys are 0.weight, 1.weight, 1.running_mean, ..., numbered layer by layer")
    if top and not top <= convs | norms and all(int(t) >= len(reference) for t in top if t.isdigit()):
        return (f"the head ends with the ReLU of its last deconvolution ({len(reference)} modules); the 1x1 "
                "convolution to the heatmaps is a separate layer (final_layer), not part of this Sequential")
    if missing and all(k.split(".")[0] in norms and k.endswith(_BN_STATE) for k in missing):
        others = sorted({type(m).__name__ for m in learner.modules()
                         if isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.BatchNorm1d))})
        used = f" ({', '.join(others)} keeps none)" if others else ""
        return ("the normalisation after each deconvolution is BatchNorm2d, whose state_dict also holds "
                f"running_mean, running_var and num_batches_tracked{used}")
    learner_norms = [m for m in learner.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    if not learner_norms:
        return "each transposed convolution is followed by a BatchNorm2d (keys 1.*, 4.*, 7.* in the paper's head)"
    if missing and all(str(int(t) + 1) in top for t in {k.split(".")[0] for k in missing} if t in norms):
        return "the BatchNorm2d comes right after its transposed convolution, and the ReLU after the BatchNorm2d"
    if extra and all(k.endswith(".bias") and k.split(".")[0] in convs for k in extra):
        return ("the transposed convolutions have no bias (bias=False): the BatchNorm right after each one has its "
                "own shift, which would cancel a bias")
    return "one nn.Sequential, per layer: the transposed convolution (no bias), then BatchNorm2d, then ReLU"


HEAD_CASES = [(16, 8, 3, (4, 3)), (12, 6, 2, (5, 4)), (8, 8, 1, (3, 3))]  # in, channels, layers, input H, W


@exercise("simple_baseline_head", solution=deconv_head_solution, chapter=CHAPTER,
          mutants={"deconvolutions with a bias": _head_with_bias,
                   "kernel 3 with output_padding 1 (same sizes, not the paper's kernel)": _head_k3,
                   "no BatchNorm": _head_no_bn, "ReLU before BatchNorm": _head_relu_before_bn,
                   "padding 0": _head_padding_0, "only the last layer takes the new width": _head_widen_last})
def check_deconv_head(fn):
    with torch.device("meta"):  # the paper's head on ResNet-50's C5, shapes only
        paper, mine = deconv_head(2048, 256, 3), fn(2048, 256, 3)
    what = "the paper's head, my_deconv_head(2048, 256, 3)"
    _layout(mine, paper, what)
    if count_params(mine) != count_params(paper):
        raise CheckFailure(f"{what}: {count_params(mine):,} parameters, expected {count_params(paper):,}")
    for seed, (in_channels, channels, layers, (h, w)) in enumerate(HEAD_CASES):
        what = f"my_deconv_head({in_channels}, {channels}, {layers})"
        reference = randomised(deconv_head(in_channels, channels, layers), seed)
        learner = fn(in_channels, channels, layers)
        _layout(learner, reference, what)
        learner.load_state_dict(reference.state_dict())
        x = torch.randn(2, in_channels, h, w, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            got = as_array(guard(learner.eval())(x), f"{what}: output")
            want = as_array(reference(x), "")
        if got.shape != want.shape:
            raise CheckFailure(f"{what}: on a {h}x{w} input the output has shape {got.shape}, expected "
                               f"{want.shape} (each layer doubles the resolution exactly)")
        if (got < 0).any():  # the reference ends in a ReLU
            raise CheckFailure(f"{what}: the output has negative values; each layer ends with its ReLU, after "
                               f"the BatchNorm")
        expect_close(got, want, f"{what}: output (with the reference's weights loaded)", atol=1e-5, rtol=1e-4,
                     hint="per layer: transposed convolution, BatchNorm2d, then ReLU, in this order")


# ---- the head's multiply-adds: real, and as the papers count them --------------------------------------------------

DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}  # kernel -> (padding, output_padding) that doubles the side exactly
# (the official code's _get_deconv_cfg)


def head_macs_solution(in_channels, channels, layers, kernel, size):
    """(real, papers') multiply-adds of ``layers`` stride-2 transposed convolutions with a ``kernel`` x ``kernel``
    kernel and no bias, the first reading ``in_channels`` from an (H, W) = ``size`` map, every one writing
    ``channels`` at twice the side. Real: weight.numel() x the *input* pixels (each input pixel scatters one patch);
    the papers' count (HRNet's get_model_summary): weight.numel() x the *output* pixels, stride^2 = 4 times more."""
    h, w = size
    real = papers = 0
    for _ in range(layers):
        weights = in_channels * channels * kernel * kernel
        real += weights * h * w
        h, w = 2 * h, 2 * w
        papers += weights * h * w
        in_channels = channels
    return real, papers


def _macs_at_output(in_channels, channels, layers, kernel, size):
    _, papers = head_macs_solution(in_channels, channels, layers, kernel, size)
    return papers, papers


def _macs_swapped(in_channels, channels, layers, kernel, size):
    real, papers = head_macs_solution(in_channels, channels, layers, kernel, size)
    return papers, real


def _macs_every_layer_reads_input(in_channels, channels, layers, kernel, size):
    h, w = size
    real = papers = 0
    for _ in range(layers):
        weights = in_channels * channels * kernel * kernel
        real, papers = real + weights * h * w, papers + weights * 4 * h * w
        h, w = 2 * h, 2 * w
    return real, papers


def _macs_no_doubling(in_channels, channels, layers, kernel, size):
    h, w = size
    real = papers = 0
    for _ in range(layers):
        weights = in_channels * channels * kernel * kernel
        real, papers = real + weights * h * w, papers + weights * 4 * h * w
        in_channels = channels
    return real, papers


def _macs_kernel_once(in_channels, channels, layers, kernel, size):
    real, papers = head_macs_solution(in_channels, channels, layers, kernel, size)
    return real // kernel, papers // kernel


def _macs_stride_not_squared(in_channels, channels, layers, kernel, size):
    real, _ = head_macs_solution(in_channels, channels, layers, kernel, size)
    return real, 2 * real


def _torch_head_macs(in_channels, channels, layers, kernel, size) -> tuple[int, int]:
    """(real, papers') multiply-adds of the head built in PyTorch, counted by posebook.bench on the meta device
    (the tests compare it with :func:`head_macs_solution` on every case)."""
    padding, output_padding = DECONV_PADDING[kernel]
    with torch.device("meta"):
        head = _head(in_channels, channels, layers, kernel=kernel, padding=padding, output_padding=output_padding)
    return (conv_macs(head, size, in_channels, real=True), conv_macs(head, size, in_channels, real=False))


MACS_CASES = [  # (in_channels, channels, layers, kernel, size (H, W) of the map the head reads)
    (2048, 256, 3, 4, (8, 6)),  # the paper's head on ResNet-50's stride-32 map of a 256x192 crop
    (64, 24, 2, 3, (5, 4)), (40, 16, 4, 2, (3, 2)), (12, 20, 1, 4, (7, 3)), (32, 32, 3, 2, (2, 2)),
]

MACS_HINTS = [  # (wrong answer, what it gets wrong), tried in order on the first failing case
    (_macs_swapped, "the first number is the real count, the smaller one; the second is the papers' convention"),
    (_macs_at_output, "the real count charges a transposed convolution at its *input* pixels: each input pixel "
                      "scatters one k x k patch per channel pair onto the output, so it does weight.numel() "
                      "multiply-adds per input pixel; counting at the output pixels, as the papers do, charges a "
                      "stride-2 layer stride^2 = 4 times its real cost"),
    (_macs_stride_not_squared, "the output of a stride-2 layer has twice the height *and* twice the width: "
                               "stride^2 = 4 times the input's pixels"),
    (_macs_every_layer_reads_input, "only the first deconvolution reads in_channels; every layer after it reads "
                                    "the channels the one before wrote"),
    (_macs_no_doubling, "each deconvolution doubles the side: layer l reads a map 2^l times the size's side "
                        "(l = 0, 1, ...)"),
    (_macs_kernel_once, "a k x k kernel does k * k multiply-adds per pair of input and output channels, per pixel"),
]


@exercise("simple_baseline_head_macs", solution=head_macs_solution, chapter=CHAPTER,
          mutants={"real counted at the output pixels (the papers' count twice)": _macs_at_output,
                   "real and papers' swapped": _macs_swapped,
                   "every layer reads in_channels": _macs_every_layer_reads_input,
                   "no doubling (every layer at the input size)": _macs_no_doubling,
                   "kernel not squared": _macs_kernel_once,
                   "papers' count = 2 x real (stride, not stride^2)": _macs_stride_not_squared})
def check_head_macs(fn):
    for case in MACS_CASES:
        in_channels, channels, layers, kernel, size = case
        what = f"head_macs({in_channels}, {channels}, {layers}, kernel={kernel}, size={size})"
        got = fn(*case)
        if (not isinstance(got, (tuple, list)) or len(got) != 2
                or any(isinstance(v, bool) or not isinstance(v, numbers.Real) and not (
                    hasattr(v, "item") and getattr(v, "ndim", 1) == 0) for v in got)):
            raise CheckFailure(f"{what}: expected a pair of numbers (real, papers'), got {got!r:.80}")
        want = head_macs_solution(*case)  # = posebook.bench on the PyTorch layers (tests/test_simple_baseline.py)
        if tuple(float(v) for v in got) != tuple(float(v) for v in want):
            hint = next((text for wrong, text in MACS_HINTS
                         if tuple(float(v) for v in wrong(*case)) == tuple(float(v) for v in got)), "")
            raise CheckFailure(f"{what}: expected (real, papers') = ({want[0]:,}, {want[1]:,}) (what "
                               f"posebook.bench counts on these PyTorch layers), got ({got[0]:,}, {got[1]:,})"
                               + (f". Hint: {hint}" if hint else ""))
