"""Checkers for chapter 03 (Stacked Hourglass): the residual module (Newell et al. §3.2), the recursive hourglass
(§3.1) and the stacked loss of intermediate supervision (§3.3)."""
from __future__ import annotations

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


# ---- hourglass_forward ------------------------------------------------------------------------------------------


def hourglass_forward_solution(hg, x):
    """The recursive hourglass (Newell et al. §3.1): up1(x) + nearest-upsample(low3(low2(low1(pool(x))))), where
    low2 is this same function on the inner hourglass, or the innermost Residual."""
    from posebook.blocks import Hourglass

    up1 = hg.up1(x)
    low = hg.low1(hg.pool(x))
    low = hourglass_forward_solution(hg.low2, low) if isinstance(hg.low2, Hourglass) else hg.low2(low)
    low = hg.low3(low)
    return up1 + F.interpolate(low, size=up1.shape[-2:], mode="nearest")


def _hg_no_skip(hg, x):
    return hourglass_forward_solution(hg, x) - hg.up1(x)


def _hg_no_recursion(hg, x):
    """Order handled as 1: the inner hourglass is called as a layer (the library's forward), not recursed into."""
    up1 = hg.up1(x)
    low = hg.low3(hg.low2(hg.low1(hg.pool(x))))
    return up1 + F.interpolate(low, size=up1.shape[-2:], mode="nearest")


def _hg_low2_skipped(hg, x):
    up1 = hg.up1(x)
    low = hg.low3(hg.low1(hg.pool(x)))
    return up1 + F.interpolate(low, size=up1.shape[-2:], mode="nearest")


def _hg_upsample_before_low3(hg, x):
    from posebook.blocks import Hourglass

    up1 = hg.up1(x)
    low = hg.low1(hg.pool(x))
    low = _hg_upsample_before_low3(hg.low2, low) if isinstance(hg.low2, Hourglass) else hg.low2(low)
    return up1 + hg.low3(F.interpolate(low, size=up1.shape[-2:], mode="nearest"))


def _hg_max_pool_hard_coded(hg, x):
    from posebook.blocks import Hourglass

    up1 = hg.up1(x)
    low = hg.low1(F.max_pool2d(x, 2))
    low = _hg_max_pool_hard_coded(hg.low2, low) if isinstance(hg.low2, Hourglass) else hg.low2(low)
    return up1 + F.interpolate(hg.low3(low), size=up1.shape[-2:], mode="nearest")


def _hg_bilinear(hg, x):
    from posebook.blocks import Hourglass

    up1 = hg.up1(x)
    low = hg.low1(hg.pool(x))
    low = _hg_bilinear(hg.low2, low) if isinstance(hg.low2, Hourglass) else hg.low2(low)
    return up1 + F.interpolate(hg.low3(low), size=up1.shape[-2:], mode="bilinear", align_corners=False)


def _refuse_library_forward(hg, outer: bool):
    """A forward that fails the check: the learner called an Hourglass as a layer instead of writing the recursion."""
    def forward(*args, **kwargs):
        if outer:
            raise CheckFailure("you called hg(x), the library's own forward; build the output "
                               "from hg.up1, hg.pool, hg.low1, hg.low2 and hg.low3")
        raise CheckFailure(f"on an order-{hg.order + 1} hourglass you called hg.low2(...), the "
                           f"inner order-{hg.order} hourglass's library forward; recurse instead: when hg.low2 is an "
                           "Hourglass, call hourglass_forward(hg.low2, ...) (only the innermost low2 is a Residual)")

    return forward


def _hourglass_case(order: int, pool: str, size: tuple[int, int], seed: int):
    """An Hourglass with random weights and BN statistics (eval mode) and an input of ``size`` (H, W)."""
    from posebook.blocks import Hourglass

    torch.manual_seed(seed)
    hg = Hourglass(order, 8, pool).eval()
    with torch.no_grad():
        for module in hg.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return hg, torch.randn(2, 8, *size)


@exercise("hourglass_forward", solution=hourglass_forward_solution, chapter=CHAPTER,
          mutants={"no skip branch (up1)": _hg_no_skip, "no recursion (order handled as 1)": _hg_no_recursion,
                   "low2 skipped": _hg_low2_skipped, "upsampled before low3": _hg_upsample_before_low3,
                   "max pool hard-coded instead of hg.pool": _hg_max_pool_hard_coded,
                   "bilinear instead of nearest": _hg_bilinear})
def check_hourglass_forward(fn):
    from posebook.blocks import Hourglass

    for order, pool, size in [(1, "max", (8, 6)), (3, "max", (16, 16)), (2, "avg", (16, 12))]:
        hg, x = _hourglass_case(order, pool, size, seed=order)
        what = f"Hourglass(order={order}, pool={pool!r}) on an input {tuple(x.shape)}"
        with torch.no_grad():
            want = hg(x).numpy()
            up1 = hg.up1(x).numpy()
        for module in hg.modules():
            if isinstance(module, Hourglass):
                module.forward = _refuse_library_forward(module, outer=module is hg)
        with torch.no_grad():
            got = _tensor_out(fn(hg, x), what)
        if got.shape == want.shape and np.allclose(got, want - up1, atol=1e-5):
            raise CheckFailure(f"{what}: the skip branch is missing; add up1 = hg.up1(x), computed at the input's "
                               "resolution, to the upsampled lower branch")
        expect_close(got, want, what, atol=1e-5, rtol=1e-5,
                     hint="pool with hg.pool (the model's choice), then low1, low2 (recursing while it is an "
                          "Hourglass), low3, and only then upsample (nearest, to up1's size) and add up1")


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
