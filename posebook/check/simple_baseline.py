"""Checkers for chapter 04 (SimpleBaseline): the output size of a stack of transposed convolutions, and the
deconvolution head itself (Xiao, Wu, Wei, ECCV 2018, §2).

The head is checked the way an official checkpoint would judge it: its state_dict must have the official layout
(keys and shapes of ``deconv_layers``), the paper's head must have the paper's parameter count, and with the
reference's weights loaded it must compute the same outputs. Chapter 04.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from posebook.bench import count_params
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
                           f"{missing[:4]}, unexpected {extra[:4]} (one nn.Sequential, per layer: the "
                           f"transposed convolution, then BatchNorm2d, then ReLU; which layers have a bias?)")
    wrong = [f"{k}: {mine[k]} instead of {want[k]}" for k in want if mine[k] != want[k]]
    if wrong:
        raise CheckFailure(f"{what}: wrong shapes {wrong[:3]} (a ConvTranspose2d weight is (in, out, k, k))")


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
