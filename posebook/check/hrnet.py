"""Checkers for chapter 07 (HRNet): a fuse path from branch j to branch i, the transition that adds a branch, and
the output of one exchange unit.

The learner's modules are checked the way an official checkpoint would judge them: their state_dict must have the
official layout (keys and shapes), and with the reference's weights loaded they must compute the same outputs.
"""
from __future__ import annotations

import torch
from torch import nn

from posebook.blocks.hrnet import ExchangeUnit, Transition, conv_bn, fuse_path

from ._core import CheckFailure, as_array, expect_close, exercise, guard

CHAPTER = "07_hrnet"
CHANNELS = [4, 8, 16, 32]  # a narrow HRNet: C, 2C, 4C, 8C


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial weights and BN statistics, so that every conv, BN and ReLU shows in the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                values = torch.randn(t.shape, generator=gen) * 0.3
                t.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return module.eval()


def _branch_inputs(seed: int, size: int = 16) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, size >> b, size >> b, generator=gen) for b, c in enumerate(CHANNELS)]


def _adopt(learner: object, reference: nn.Module, what: str) -> nn.Module:
    """Check the learner's module has the reference's state_dict layout, then give it the reference's weights."""
    if not isinstance(learner, nn.Module):
        raise CheckFailure(f"{what}: expected an nn.Module, got {type(learner).__name__}")
    mine = {k: tuple(v.shape) for k, v in learner.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    missing, extra = sorted(set(want) - set(mine)), sorted(set(mine) - set(want))
    if missing or extra:
        raise CheckFailure(f"{what}: its state_dict keys differ from the official layout: missing {missing[:4]}, "
                           f"unexpected {extra[:4]} (use nn.Sequential in the official order: conv, BN[, ReLU])")
    wrong = [f"{k}: {mine[k]} instead of {want[k]}" for k in want if mine[k] != want[k]]
    if wrong:
        raise CheckFailure(f"{what}: wrong shapes {wrong[:3]}")
    learner.load_state_dict(reference.state_dict())
    return learner.eval()


def _run(module: nn.Module, *args):
    with torch.no_grad():
        return guard(module)(*args)


# ---- fuse_path -------------------------------------------------------------------------------------------------


def fuse_path_solution(channels, j, i):
    """The path a(X_j, i) from branch j to branch i: identity, 1x1 conv + BN + nearest upsampling, or a chain of
    stride-2 3x3 convs (BN + ReLU between, BN only after the last)."""
    return fuse_path(channels, j, i)


def _fuse_relu_at_end(channels, j, i):
    path = fuse_path(channels, j, i)
    return nn.Sequential(*path, nn.ReLU()) if j < i else path


def _fuse_bilinear(channels, j, i):
    path = fuse_path(channels, j, i)
    if j > i:
        path[2] = nn.Upsample(scale_factor=2 ** (j - i), mode="bilinear", align_corners=False)
    return path


def _fuse_widen_first(channels, j, i):
    if j >= i:
        return fuse_path(channels, j, i)
    steps = i - j
    return nn.Sequential(*(conv_bn(channels[j] if k == 0 else channels[i], channels[i], 2, relu=k < steps - 1)
                           for k in range(steps)))


def _fuse_no_bn_up(channels, j, i):
    if j > i:
        return nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
    return fuse_path(channels, j, i)


@exercise("hrnet_fuse_path", solution=fuse_path_solution, chapter=CHAPTER,
          mutants={"ReLU after the last downsampling conv": _fuse_relu_at_end, "bilinear upsampling": _fuse_bilinear,
                   "first conv already widens": _fuse_widen_first, "no BN after the 1x1 conv": _fuse_no_bn_up})
def check_fuse_path(fn):
    xs = _branch_inputs(0)
    for j, i in [(3, 0), (1, 0), (0, 3), (0, 1), (1, 3), (2, 2)]:
        what = f"fuse path from branch {j} to branch {i} (channels {CHANNELS})"
        reference = _randomise(fuse_path(CHANNELS, j, i), seed=10 * j + i)
        learner = _adopt(fn(list(CHANNELS), j, i), reference, what)
        got = as_array(_run(learner, xs[j]), f"{what}: output")
        want = as_array(_run(reference, xs[j]), "")
        if got.shape != want.shape:
            raise CheckFailure(f"{what}: output shape {got.shape}, expected {want.shape} (branch {i}'s size: "
                               f"{2 ** abs(j - i)}x {'up' if j > i else 'down'})")
        if j < i and (want < 0).any() and (got >= 0).all():
            raise CheckFailure(f"{what}: the output has no negative values; the last conv of the chain is followed "
                               "by BN only: the ReLU comes once, after the exchange unit's sum")
        expect_close(got, want, f"{what}: output", atol=1e-5, rtol=1e-4,
                     hint="upsample with mode='nearest' after the 1x1 conv and BN, as the official code does")


# ---- transition ------------------------------------------------------------------------------------------------


def make_transition_solution(previous, current):
    """An nn.ModuleList with one path per branch of the next stage: identity where the width is unchanged, 3x3 conv
    + BN + ReLU where it changes, and for the new branch stride-2 3x3 conv + BN + ReLU steps from the lowest one."""
    return nn.ModuleList(Transition(previous, current))


def _transition_always_conv(previous, current):
    paths = list(Transition(previous, current))
    paths = [conv_bn(p, c, 1, relu=True) if i < len(previous) else paths[i]
             for i, (p, c) in enumerate(zip(previous + [0] * len(current), current))]
    return nn.ModuleList(paths)


def _transition_new_without_relu(previous, current):
    paths = nn.ModuleList(Transition(previous, current))
    paths[-1] = nn.Sequential(conv_bn(previous[-1], current[-1], 2, relu=False))
    return paths


def _transition_stride_one(previous, current):
    paths = nn.ModuleList(Transition(previous, current))
    paths[-1][0][0].stride = (1, 1)
    return paths


def _transition_flat_new_branch(previous, current):
    paths = nn.ModuleList(Transition(previous, current))
    paths[-1] = conv_bn(previous[-1], current[-1], 2, relu=True)
    return paths


def _apply_transition(paths: nn.ModuleList, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The official forward: existing branch i takes x_i; the new branch takes the lowest-resolution x."""
    return [_run(path, xs[i] if i < len(xs) else xs[-1]) for i, path in enumerate(paths)]


@exercise("hrnet_transition", solution=make_transition_solution, chapter=CHAPTER,
          mutants={"a conv on every existing branch": _transition_always_conv,
                   "new branch without ReLU": _transition_new_without_relu, "new branch at stride 1":
                   _transition_stride_one, "new branch not nested (keys i.0, not i.0.0)": _transition_flat_new_branch})
def check_transition(fn):
    x = _branch_inputs(1)
    cases = [([64], CHANNELS[:2], [torch.randn(2, 64, 16, 16)]), (CHANNELS[:2], CHANNELS[:3], x[:2]),
             (CHANNELS[:3], CHANNELS, x[:3])]
    for previous, current, xs in cases:
        what = f"transition from widths {previous} to {current}"
        reference = _randomise(nn.ModuleList(Transition(previous, current)), seed=len(current))
        learner = fn(list(previous), list(current))
        if not isinstance(learner, nn.ModuleList) or len(learner) != len(current):
            raise CheckFailure(f"{what}: expected an nn.ModuleList with {len(current)} paths, got "
                               f"{type(learner).__name__} of length {len(learner) if hasattr(learner, '__len__') else '?'}")
        learner = _adopt(learner, reference, what)
        for b, (got, want) in enumerate(zip(_apply_transition(learner, xs), _apply_transition(reference, xs))):
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailure(f"{what}: branch {b} comes out {tuple(got.shape)}, expected {tuple(want.shape)}; "
                                   "the new branch halves the resolution (stride 2)")
            expect_close(got, want, f"{what}: branch {b}", atol=1e-5, rtol=1e-4,
                         hint="every transition step is conv + BN + ReLU (the ReLU stays here: no sum follows)")


# ---- exchange unit output ----------------------------------------------------------------------------------------


def exchange_solution(paths, xs):
    """Output i of an exchange unit: ReLU(sum over j of paths[i][j](xs[j])); paths[i][i] is the identity."""
    out = []
    for row in paths:
        total = sum(path(x) for path, x in zip(row, xs))
        out.append(torch.relu(total))
    return out


def _exchange_relu_each(paths, xs):
    return [sum(torch.relu(path(x)) for path, x in zip(row, xs)) for row in paths]


def _exchange_no_relu(paths, xs):
    return [sum(path(x) for path, x in zip(row, xs)) for row in paths]


def _exchange_skip_self(paths, xs):
    return [torch.relu(sum(path(x) for j, (path, x) in enumerate(zip(row, xs)) if j != i))
            for i, row in enumerate(paths)]


def _exchange_mean(paths, xs):
    return [torch.relu(sum(path(x) for path, x in zip(row, xs)) / len(xs)) for row in paths]


_EXCHANGE_HINTS = {
    "applies ReLU to each part before summing; the official unit sums first, then one ReLU": _exchange_relu_each,
    "leaves out branch i's own map; the diagonal path is the identity and is part of the sum": _exchange_skip_self,
    "averages the parts; the exchange unit sums them": _exchange_mean,
}


@exercise("hrnet_exchange", solution=exchange_solution, chapter=CHAPTER,
          mutants={"ReLU on each part before the sum": _exchange_relu_each, "no ReLU": _exchange_no_relu,
                   "own branch left out": _exchange_skip_self, "mean instead of sum": _exchange_mean})
def check_exchange(fn):
    for branches, seed in [(2, 3), (4, 4)]:
        unit = _randomise(ExchangeUnit(CHANNELS[:branches]), seed)
        paths = nn.ModuleList(nn.ModuleList(row) for row in unit)  # plain lists: no forward to call
        xs = _branch_inputs(seed)[:branches]
        with torch.no_grad():
            got = fn(paths, [x.clone() for x in xs])
            want = unit(xs)
            known = {label: variant(paths, xs) for label, variant in _EXCHANGE_HINTS.items()}
        what = f"exchange unit with {branches} branches"
        if not isinstance(got, (list, tuple)) or len(got) != branches:
            raise CheckFailure(f"{what}: expected a list of {branches} tensors, one per output branch")
        for i, (g, w) in enumerate(zip(got, want)):
            g = as_array(g, f"{what}: output {i}")
            if (g < 0).any():
                raise CheckFailure(f"{what}: output {i} has negative values; apply ReLU once, after the sum")
            for hint, values in known.items():
                if g.shape == tuple(w.shape) and not torch.allclose(values[i], w) and \
                        torch.allclose(torch.as_tensor(g, dtype=w.dtype), values[i], atol=1e-5):
                    raise CheckFailure(f"{what}: output {i} {hint}")
            expect_close(g, w, f"{what}: output {i}", atol=1e-5, rtol=1e-4,
                         hint="sum every branch's contribution, including the identity from branch i itself, "
                              "then one ReLU")
