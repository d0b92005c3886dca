"""Checkers for chapter 07 (HRNet): the wiring of a fuse path from branch j to branch i, the shapes a transition
outputs, and the output of one exchange unit (Sun et al., CVPR 2019, §3).

A learner's module is checked the way an official checkpoint would judge it: its state_dict must have the official
layout (keys and shapes), and with the reference's weights loaded it must compute the same outputs. Chapter 07.
"""
from __future__ import annotations

import torch
from torch import nn

from posebook.blocks.hrnet import ExchangeUnit, Transition, conv_bn, fuse_path, upsample_path

from ._core import CheckFailure, as_array, expect_close, exercise, guard, randomised

CHAPTER = "07_hrnet"
CHANNELS = [4, 8, 16, 32]  # a narrow HRNet: C, 2C, 4C, 8C


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


def _fuse_one_big_stride(channels, j, i):
    if j >= i:
        return fuse_path(channels, j, i)
    conv = nn.Conv2d(channels[j], channels[i], 3, stride=2 ** (i - j), padding=1, bias=False)
    return nn.Sequential(nn.Sequential(conv, nn.BatchNorm2d(channels[i])))


def _fuse_linear_factor(channels, j, i):
    if j > i:
        return upsample_path(channels[j], channels[i], 2 * (j - i))  # right for 1 and 2 branches apart only
    return fuse_path(channels, j, i)


WIDTHS = [6, 12, 24, 48]  # the fuse paths are checked at another width than the chapter's, so nothing is hard-coded
PAIRS = [(3, 0), (2, 0), (1, 0), (0, 3), (0, 2), (0, 1), (1, 3), (2, 1), (2, 2)]


@exercise("hrnet_fuse_path", solution=fuse_path_solution, chapter=CHAPTER,
          mutants={"ReLU after the last downsampling conv": _fuse_relu_at_end, "bilinear upsampling": _fuse_bilinear,
                   "first conv already widens": _fuse_widen_first, "no BN after the 1x1 conv": _fuse_no_bn_up,
                   "one conv with stride 2^(i-j)": _fuse_one_big_stride,
                   "upsampling factor 2(j-i), not 2^(j-i)": _fuse_linear_factor})
def check_fuse_path(fn):
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, c, 16 >> b, 12 >> b, generator=gen) for b, c in enumerate(WIDTHS)]
    for j, i in PAIRS:
        what = f"fuse path from branch {j} to branch {i} (widths {WIDTHS})"
        reference = randomised(fuse_path(WIDTHS, j, i), seed=10 * j + i)
        learner = fn(list(WIDTHS), j, i)
        steps = sum(isinstance(step, nn.Sequential) for step in learner) if isinstance(learner, nn.Sequential) else 0
        if j < i and isinstance(learner, nn.Sequential) and steps != i - j:
            raise CheckFailure(f"{what}: {steps} strided step(s); each stride-2 step halves the resolution once, so "
                               f"going from 1/{4 * 2 ** j} to 1/{4 * 2 ** i} takes {i - j}")
        learner = _adopt(learner, reference, what)
        got = as_array(_run(learner, xs[j]), f"{what}: output")
        want = as_array(_run(reference, xs[j]), "")
        if got.shape != want.shape:
            raise CheckFailure(f"{what}: output shape {got.shape}, expected {want.shape} (branch {i}'s size: "
                               f"{2 ** abs(j - i)}x {'up' if j > i else 'down'})")
        if j < i and (want < 0).any() and (got >= 0).all():
            raise CheckFailure(f"{what}: the output has no negative values; the last conv of the chain is followed "
                               "by BN only: the ReLU comes once, after the exchange unit's sum")
        expect_close(got, want, f"{what}: output", atol=1e-5, rtol=1e-4,
                     hint="upsample with mode='nearest' after the 1x1 conv and BN, as the paper (§3, Fig. 3) and "
                          "the official code do")


# ---- transition shapes -------------------------------------------------------------------------------------------


def _transition_reference(shapes, widths) -> list[tuple[int, ...]]:
    """The shapes the library's Transition gives, computed on the meta device (shapes only)."""
    with torch.device("meta"):
        transition = Transition([s[1] for s in shapes], list(widths))
        return [tuple(t.shape) for t in transition([torch.empty(*s) for s in shapes])]


def transition_shapes_solution(shapes, widths):
    """Output shapes (B, C, H, W) of the transition from branches of ``shapes`` to branches of widths ``widths``:
    existing branch i keeps its H, W and takes widths[i]; each new branch halves (rounding up: 3x3, stride 2,
    padding 1) the previous one, starting from the lowest-resolution input."""
    out = []
    for i, width in enumerate(widths):
        b, _, h, w = shapes[min(i, len(shapes) - 1)]
        for _ in range(i + 1 - len(shapes)):
            h, w = (h + 1) // 2, (w + 1) // 2
        out.append((b, width, h, w))
    return out


def _shapes_floor(shapes, widths):
    out = transition_shapes_solution(shapes, widths)
    b, _, h, w = shapes[-1]
    return out[:len(shapes)] + [(b, widths[-1], h // 2, w // 2)]


def _shapes_from_highest(shapes, widths):
    out = transition_shapes_solution(shapes, widths)
    b, _, h, w = shapes[0]
    return out[:len(shapes)] + [(b, widths[-1], (h + 1) // 2, (w + 1) // 2)]


def _shapes_new_keeps_width(shapes, widths):
    out = transition_shapes_solution(shapes, widths)
    return out[:-1] + [out[-1][:1] + (shapes[-1][1],) + out[-1][2:]]


def _shapes_existing_keep_width(shapes, widths):
    out = transition_shapes_solution(shapes, widths)
    return [s if i >= len(shapes) else (s[0], shapes[i][1], s[2], s[3]) for i, s in enumerate(out)]


TRANSITION_CASES = [
    ([(2, 256, 64, 48)], [32, 64]),  # after stage 1 (HRNet-W32, 256x192 input)
    ([(2, 32, 64, 48), (2, 64, 32, 24)], [32, 64, 128]),
    ([(1, 8, 15, 11), (1, 16, 8, 6)], [8, 16, 32]),  # odd sizes: the stride-2 conv rounds up
    ([(3, 8, 25, 19), (3, 16, 13, 10), (3, 32, 7, 5)], [8, 16, 32, 64]),
]


@exercise("hrnet_transition_shapes", solution=transition_shapes_solution, chapter=CHAPTER,
          mutants={"floor halving (odd sizes round down)": _shapes_floor,
                   "new branch from the highest resolution": _shapes_from_highest,
                   "new branch keeps the lowest branch's width": _shapes_new_keeps_width,
                   "existing branches keep their old width": _shapes_existing_keep_width})
def check_transition_shapes(fn):
    for shapes, widths in TRANSITION_CASES:
        what = f"transition from inputs {shapes} to widths {widths}"
        want = _transition_reference(shapes, widths)
        got = fn([tuple(s) for s in shapes], list(widths))
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            raise CheckFailure(f"{what}: expected a list of {len(want)} shapes, one per branch of the next stage, "
                               f"got {got!r}")
        for b, (g, w) in enumerate(zip(got, want)):
            try:
                g = tuple(int(v) for v in g)
            except (TypeError, ValueError):
                raise CheckFailure(f"{what}: branch {b}: expected a shape (B, C, H, W), got {g!r}") from None
            if g == w:
                continue
            hint = ""
            if g[1] != w[1]:
                hint = f"; its width is widths[{b}] = {w[1]}"
            elif b >= len(shapes):
                hint = ("; a 3x3 conv with stride 2 and padding 1 gives ceil(H / 2) x ceil(W / 2), from the "
                        "lowest-resolution input")
            raise CheckFailure(f"{what}: branch {b} comes out {w}, you said {g}{hint}")


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
        unit = randomised(ExchangeUnit(CHANNELS[:branches]), seed)
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
