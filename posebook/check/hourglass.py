"""Checkers for chapter 03 (Stacked Hourglass): the residual module, the hourglass's resolutions, the
intermediate-supervision merge and the stacked loss. Facts: PAPERS.md §2."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._core import CheckFailure, as_array, expect_close, exercise

CHAPTER = "03_stacked_hourglass"


def _tensor_out(value, what: str) -> np.ndarray:
    if not torch.is_tensor(value):
        raise CheckFailure(f"{what}: expected a torch tensor, got {type(value).__name__}")
    return as_array(value, what)


# ---- residual_forward ------------------------------------------------------------------------------------------


def residual_forward_solution(x, bns, convs, skip):
    """The pre-activation residual module: three BN-ReLU-conv steps, plus x (or skip(x) when skip is a conv)."""
    out = x
    for bn, conv in zip(bns, convs):
        out = conv(F.relu(bn(out)))
    return out + (x if skip is None else skip(x))


def _residual_relu_after_add(x, bns, convs, skip):
    return F.relu(residual_forward_solution(x, bns, convs, skip))


def _residual_no_skip(x, bns, convs, skip):
    out = x
    for bn, conv in zip(bns, convs):
        out = conv(F.relu(bn(out)))
    return out


def _residual_relu_before_bn(x, bns, convs, skip):
    out = x
    for bn, conv in zip(bns, convs):
        out = conv(bn(F.relu(out)))
    return out + (x if skip is None else skip(x))


def _residual_last_step_not_preactivated(x, bns, convs, skip):
    out = convs[0](F.relu(bns[0](x)))
    out = convs[1](F.relu(bns[1](out)))
    return convs[2](out) + (x if skip is None else skip(x))


def _residual_case(in_channels: int, out_channels: int, seed: int):
    """A Residual with random weights and BN statistics (eval mode), its layers, and an input."""
    from posebook.blocks.residual import Residual

    torch.manual_seed(seed)
    block = Residual(in_channels, out_channels).eval()
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    bns = [step[0] for step in block.conv_block]
    convs = [step[2] for step in block.conv_block]
    return block, bns, convs, torch.randn(2, in_channels, 6, 5)


@exercise("residual_forward", solution=residual_forward_solution, chapter=CHAPTER,
          mutants={"ReLU after the addition": _residual_relu_after_add, "no skip connection": _residual_no_skip,
                   "ReLU before BN": _residual_relu_before_bn,
                   "last conv without BN-ReLU": _residual_last_step_not_preactivated})
def check_residual_forward(fn):
    for in_channels, out_channels in [(8, 8), (4, 8)]:
        block, bns, convs, x = _residual_case(in_channels, out_channels, seed=in_channels)
        what = f"Residual({in_channels}, {out_channels}) on an input {tuple(x.shape)}"
        with torch.no_grad():
            got = _tensor_out(fn(x, bns, convs, block.skip), what)
            want = block(x).numpy()
        if got.shape == want.shape and np.allclose(got, np.maximum(want, 0), atol=1e-5) and (want < 0).any():
            raise CheckFailure(f"{what}: your output is never negative; the residual module has no ReLU after "
                               "the addition (the next module's BN-ReLU comes first)")
        with torch.no_grad():
            skip = (x if block.skip is None else block.skip(x)).numpy()
        if got.shape == want.shape and np.allclose(got, want - skip, atol=1e-5):
            raise CheckFailure(f"{what}: the skip connection is missing; add x (or skip(x) when the channel "
                               "counts differ)")
        expect_close(got, want, what, atol=1e-5, rtol=1e-5,
                     hint="each of the three steps is BN, then ReLU, then the conv (pre-activation)")


# ---- hourglass_resolutions -------------------------------------------------------------------------------------


def hourglass_resolutions_solution(size, order):
    """The (H, W) at each level of an order-``order`` hourglass fed a ``size`` map: the input's, then each 2x2
    max-pool's (which floors odd sizes), down to the innermost residual's."""
    h, w = size
    levels = [(h, w)]
    for _ in range(order):
        h, w = h // 2, w // 2
        levels.append((h, w))
    return levels


def _resolutions_one_short(size, order):
    return hourglass_resolutions_solution(size, order - 1)


def _resolutions_ceil(size, order):
    h, w = size
    levels = [(h, w)]
    for _ in range(order):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        levels.append((h, w))
    return levels


def _resolutions_without_input(size, order):
    return hourglass_resolutions_solution(size, order)[1:]


def _resolutions_xy_swapped(size, order):
    return [(w, h) for h, w in hourglass_resolutions_solution(size, order)]


@exercise("hourglass_resolutions", solution=hourglass_resolutions_solution, chapter=CHAPTER,
          mutants={"one level short": _resolutions_one_short, "ceil instead of floor": _resolutions_ceil,
                   "input level missing": _resolutions_without_input, "(W, H) instead of (H, W)": _resolutions_xy_swapped})
def check_hourglass_resolutions(fn):
    for size, order in [((64, 64), 4), ((64, 48), 4), ((32, 24), 3), ((18, 10), 2)]:
        what = f"an order-{order} hourglass on a {size[0]}x{size[1]} (H x W) map"
        got = [tuple(int(v) for v in level) for level in fn(size, order)]
        want = hourglass_resolutions_solution(size, order)
        if len(got) != len(want):
            raise CheckFailure(f"{what}: expected {len(want)} levels (the input, then one per pooling), "
                               f"got {len(got)}: {got}")
        if got[0] != want[0]:
            raise CheckFailure(f"{what}: the first level is the input itself, {want[0]} as (H, W); got {got[0]}")
        for level, (g, w) in enumerate(zip(got, want)):
            if g != w:
                raise CheckFailure(f"{what}: level {level} should be {w} (H, W), got {g}. Hint: a 2x2 max-pool of "
                                   "stride 2 floors odd sizes (nn.MaxPool2d(2, 2) on 3 rows gives 1)")


# ---- merge -----------------------------------------------------------------------------------------------------


def merge_solution(inter, ll, tmp_out, merge_features, merge_preds):
    """The next stack's input: inter + conv1x1(ll) + conv1x1(tmpOut) (Newell et al. §3.3, Fig. 4 right)."""
    return inter + merge_features(ll) + merge_preds(tmp_out)


def _merge_no_inter(inter, ll, tmp_out, merge_features, merge_preds):
    return merge_features(ll) + merge_preds(tmp_out)


def _merge_no_preds(inter, ll, tmp_out, merge_features, merge_preds):
    return inter + merge_features(ll)


def _merge_features_of_inter(inter, ll, tmp_out, merge_features, merge_preds):
    return inter + merge_features(inter) + merge_preds(tmp_out)


def _merge_concat_order(inter, ll, tmp_out, merge_features, merge_preds):
    return merge_features(inter + ll) + merge_preds(tmp_out)


@exercise("merge", solution=merge_solution, chapter=CHAPTER,
          mutants={"stack input dropped": _merge_no_inter, "predictions not merged": _merge_no_preds,
                   "features taken from inter": _merge_features_of_inter,
                   "conv applied to inter + ll": _merge_concat_order})
def check_merge(fn):
    from posebook.blocks.hourglass import IntermediateSupervision

    torch.manual_seed(3)
    step = IntermediateSupervision(8, 5).eval()
    inter, hg = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        ll = step.lin(step.residual(hg))
        tmp_out = step.tmp_out(ll)
        got = _tensor_out(fn(inter, ll, tmp_out, step.merge_features, step.merge_preds), "next stack input")
        want = step(inter, hg)[1].numpy()
        parts = {"inter": inter.numpy(), "merge_features(ll)": step.merge_features(ll).numpy(),
                 "merge_preds(tmp_out)": step.merge_preds(tmp_out).numpy()}
    if got.shape == want.shape:
        for name, part in parts.items():
            if np.allclose(got, want - part, atol=1e-5):
                raise CheckFailure(f"next stack input: the term {name} is missing; the next input is "
                                   "inter + merge_features(ll) + merge_preds(tmp_out)")
    expect_close(got, want, "next stack input (B, C, H, W)", atol=1e-5, rtol=1e-5,
                 hint="the convs map ll (features) and tmp_out (heatmaps) back to C channels; add both to inter")


# ---- stacked_loss ----------------------------------------------------------------------------------------------


def stacked_loss_solution(outputs, target, target_weight):
    """Intermediate supervision: the sum over stacks of HRNet's JointsMSE (0.5 x weighted MSE, mean over joints)."""
    total = 0.0
    for out in outputs:
        diff = (out - target) * target_weight[:, :, None, None]
        total = total + 0.5 * diff.pow(2).mean()
    return total


def _loss_last_only(outputs, target, target_weight):
    return stacked_loss_solution(outputs[-1:], target, target_weight)


def _loss_mean_over_stacks(outputs, target, target_weight):
    return stacked_loss_solution(outputs, target, target_weight) / len(outputs)


def _loss_no_half(outputs, target, target_weight):
    return 2 * stacked_loss_solution(outputs, target, target_weight)


def _loss_no_weight(outputs, target, target_weight):
    return stacked_loss_solution(outputs, target, torch.ones_like(target_weight))


@exercise("stacked_loss", solution=stacked_loss_solution, chapter=CHAPTER,
          mutants={"last stack only": _loss_last_only, "mean over stacks": _loss_mean_over_stacks,
                   "no factor 0.5": _loss_no_half, "target_weight ignored": _loss_no_weight})
def check_stacked_loss(fn):
    from posebook.losses import JointsMSELoss, MultiOutputLoss

    g = torch.Generator().manual_seed(5)
    target = torch.rand(2, 4, 8, 6, generator=g)
    outputs = [torch.rand(2, 4, 8, 6, generator=g) for _ in range(3)]
    weight = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    got = as_array(fn(outputs, target, weight), "loss of 3 stacks")
    want = MultiOutputLoss(JointsMSELoss())(outputs, target, weight).item()
    if got.shape != ():
        raise CheckFailure(f"loss of 3 stacks: expected one number (a scalar), got shape {got.shape}")
    last = JointsMSELoss()(outputs[-1], target, weight).item()
    if np.isclose(got, last, rtol=1e-5):
        raise CheckFailure("loss of 3 stacks: you supervised only the last stack; intermediate supervision sums "
                           "the loss of every stack's heatmaps")
    expect_close(got, want, "loss of 3 stacks", rtol=1e-5, atol=1e-7,
                 hint="per stack: 0.5 x mean over (batch, joints, pixels) of (w * (output - target))^2; "
                      "then sum the stacks")
