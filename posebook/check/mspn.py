"""Checkers for chapter 06 (MSPN, Li et al., "Rethinking on Multi-Stage Networks for Human Pose Estimation", 2019):
the coarse-to-fine kernel schedule, the cross-stage skip addition in the next stage's downsampling unit, and the
staged loss (all §3, as the official code). Each is checked against the library's own schedule, block or loss.
"""
from __future__ import annotations

import numpy as np
import torch

from ._core import CheckFailure, as_array, expect_close, exercise

CHAPTER = "06_mspn"
KERNELS = (15, 11, 9, 7, 5)


# ---- mspn_kernel_schedule --------------------------------------------------------------------------------------


def kernel_schedule_solution(stages, coarse_to_fine=True):
    """Each stage's four kernels, coarse level to fine: 15, 11, 9, 7, and 11, 9, 7, 5 in the last stage with
    ``coarse_to_fine`` (the official MSPN code; Li et al. 2019, §3). Chapter 06."""
    return [KERNELS[1:] if coarse_to_fine and s == stages - 1 else KERNELS[:4] for s in range(stages)]


def _schedule_never_shifts(stages, coarse_to_fine=True):
    return [KERNELS[:4] for _ in range(stages)]


def _schedule_shifts_every_stage(stages, coarse_to_fine=True):
    return [KERNELS[1:] if coarse_to_fine else KERNELS[:4] for _ in range(stages)]


def _schedule_shifts_first_stage(stages, coarse_to_fine=True):
    return [KERNELS[1:] if coarse_to_fine and s == 0 else KERNELS[:4] for s in range(stages)]


def _schedule_fine_to_coarse(stages, coarse_to_fine=True):
    return [tuple(reversed(k)) for k in kernel_schedule_solution(stages, coarse_to_fine)]


def _schedule_ignores_flag(stages, coarse_to_fine=True):
    return kernel_schedule_solution(stages, True)


def _schedule_one_kernel_without_flag(stages, coarse_to_fine=True):
    return kernel_schedule_solution(stages, True) if coarse_to_fine else [(KERNELS[-1],) * 4 for _ in range(stages)]


@exercise("mspn_kernel_schedule", solution=kernel_schedule_solution, chapter=CHAPTER,
          mutants={"the last stage not shifted": _schedule_never_shifts,
                   "every stage shifted": _schedule_shifts_every_stage,
                   "the first stage shifted instead of the last": _schedule_shifts_first_stage,
                   "fine to coarse instead of coarse to fine": _schedule_fine_to_coarse,
                   "coarse_to_fine=False ignored": _schedule_ignores_flag,
                   "coarse_to_fine=False read as one kernel (5) everywhere": _schedule_one_kernel_without_flag})
def check_kernel_schedule(fn):
    from posebook.models.mspn import kernel_schedule

    for flag in (True, False):
        for stages in (1, 2, 3, 4):
            what = f"my_kernel_schedule({stages}, coarse_to_fine={flag})"
            got = fn(stages, flag)
            if not isinstance(got, (list, tuple)) or not all(isinstance(k, (list, tuple)) for k in got):
                raise CheckFailure(f"{what}: expected a list with one list of four kernels per stage, got {got!r:.80}")
            got = [tuple(int(v) for v in k) for k in got]
            want = [tuple(k) for k in kernel_schedule(stages, flag)]
            if len(got) != len(want):
                raise CheckFailure(f"{what}: expected {len(want)} stage(s), got {len(got)}")
            for s, (g, w) in enumerate(zip(got, want)):
                if g == w:
                    continue
                if g == w[::-1]:
                    hint = "each stage lists its outputs coarse to fine (stride 32 first), so the widest kernel first"
                elif flag and s == stages - 1:
                    hint = "with coarse_to_fine the last stage's kernels shift by one toward the sharp end"
                elif not flag and len(set(g)) == 1:
                    hint = ("without coarse_to_fine every stage keeps the per-level kernels 15, 11, 9, 7: the official "
                            "switch removes only the last stage's shift (one kernel on every output is another "
                            "ablation)")
                elif not flag:
                    hint = "without coarse_to_fine every stage gets 15, 11, 9, 7"
                else:
                    hint = "only the last stage shifts; every earlier stage gets 15, 11, 9, 7"
                raise CheckFailure(f"{what}: stage {s + 1} (of {stages}) should get {list(w)}, got {list(g)}; {hint}")


# ---- mspn_skip_addition ----------------------------------------------------------------------------------------


def skip_addition_solution(layers, x, previous_down, previous_up, down_skip, up_skip):
    """The next stage's downsampling unit with cross-stage aggregation: at each stride k, layer k's output plus
    down_skip[k](previous_down[k]) plus up_skip[k](previous_up[k]); that sum feeds layer k + 1 (Li et al. 2019, §3,
    as the official code). Lists run fine to coarse. Chapter 06."""
    outputs = []
    for layer, down, up, skip1, skip2 in zip(layers, previous_down, previous_up, down_skip, up_skip):
        x = layer(x) + skip1(down) + skip2(up)
        outputs.append(x)
    return outputs


def _skips_not_fed_forward(layers, x, previous_down, previous_up, down_skip, up_skip):
    outputs = []
    for layer, down, up, skip1, skip2 in zip(layers, previous_down, previous_up, down_skip, up_skip):
        x = layer(x)
        outputs.append(x + skip1(down) + skip2(up))
    return outputs


def _skips_added_to_next_input(layers, x, previous_down, previous_up, down_skip, up_skip):
    outputs = []
    for layer, down, up, skip1, skip2 in zip(layers, previous_down, previous_up, down_skip, up_skip):
        x = layer(x)
        outputs.append(x)
        x = x + skip1(down) + skip2(up)
    return outputs


def _up_skip_forgotten(layers, x, previous_down, previous_up, down_skip, up_skip):
    outputs = []
    for layer, down, skip1 in zip(layers, previous_down, down_skip):
        x = layer(x) + skip1(down)
        outputs.append(x)
    return outputs


def _down_skip_forgotten(layers, x, previous_down, previous_up, down_skip, up_skip):
    outputs = []
    for layer, up, skip2 in zip(layers, previous_up, up_skip):
        x = layer(x) + skip2(up)
        outputs.append(x)
    return outputs


def _down_map_without_conv(layers, x, previous_down, previous_up, down_skip, up_skip):
    outputs = []
    for layer, down, up, skip2 in zip(layers, previous_down, previous_up, up_skip):
        x = layer(x) + down + skip2(up)
        outputs.append(x)
    return outputs


def _skip_case(seed: int):
    """A narrow downsampling unit (ResNet-18 layers) and the aggregation of a previous stage, with random weights and
    BN statistics (eval mode), random previous maps, and the unit's own output with those skips."""
    from posebook.blocks.mspn import CrossStageFeatureAggregation, DownsamplingUnit

    gen = torch.Generator().manual_seed(seed)
    unit = DownsamplingUnit(depth=18, width=4)
    agg = CrossStageFeatureAggregation(unit.feature_channels, channels=6)
    with torch.no_grad():
        for module in (unit, agg):
            for name, t in module.state_dict().items():
                if t.is_floating_point():
                    values = torch.randn(t.shape, generator=gen) * 0.5
                    t.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    unit.eval()
    agg.eval()
    x = torch.randn(2, 4, 16, 12, generator=gen)
    strides = (4, 8, 16, 32)
    sizes = {4: (16, 12), 8: (8, 6), 16: (4, 3), 32: (2, 2)}
    down = {s: torch.randn(2, unit.feature_channels[s], *sizes[s], generator=gen) for s in strides}
    up = {s: torch.randn(2, 6, *sizes[s], generator=gen) for s in strides}
    with torch.no_grad():
        want = unit(x, agg(down, up))
    layers = [unit.layer1, unit.layer2, unit.layer3, unit.layer4]
    args = (layers, x, [down[s] for s in strides], [up[s] for s in strides],
            [agg.down_skip[str(s)] for s in strides], [agg.up_skip[str(s)] for s in strides])
    return args, [want[s] for s in strides]


def _tensor_out(value, what: str) -> np.ndarray:
    if not torch.is_tensor(value):
        raise CheckFailure(f"{what}: expected a torch tensor, got {type(value).__name__}")
    return as_array(value, what)


@exercise("mspn_skip_addition", solution=skip_addition_solution, chapter=CHAPTER,
          mutants={"the sum not fed to the next layer": _skips_not_fed_forward,
                   "the skips added to the next layer's input only": _skips_added_to_next_input,
                   "the upsampling skip forgotten": _up_skip_forgotten,
                   "the downsampling skip forgotten": _down_skip_forgotten,
                   "the downsampling map added without its 1x1 conv": _down_map_without_conv})
def check_skip_addition(fn):
    args, want = _skip_case(seed=3)
    with torch.no_grad():
        got = fn(*[list(a) if isinstance(a, list) else a.clone() for a in args])
        candidates = {
            "the sum at stride {s} is right but layer {n} read layer {k}'s output without the skips; the sum is what "
            "feeds the next layer (the official code adds to each layer's output before the next layer)":
                _skips_not_fed_forward(*args),
            "the skips are missing from the map returned at stride {s}: they were added to what layer {n1} reads "
            "but not to layer {n}'s output that you return. The official code adds them to each layer's output, and "
            "that one sum is both the stage's map at this stride (what its upsampling unit and the next stage's "
            "skips read) and the next layer's input":
                _skips_added_to_next_input(*args),
            "the skip from the previous stage's upsampling level (up_skip) is missing": _up_skip_forgotten(*args),
            "the skip from the previous stage's downsampling map (down_skip) is missing": _down_skip_forgotten(*args),
            "the previous stage's downsampling map goes through its own 1x1 conv + BN + ReLU (down_skip) before "
            "it is added": _down_map_without_conv(*args),
        }
    if not isinstance(got, (list, tuple)) or len(got) != 4:
        raise CheckFailure(f"expected a list of the four layers' outputs (strides 4, 8, 16, 32), got "
                           f"{len(got) if isinstance(got, (list, tuple)) else type(got).__name__}")
    arrays = []
    for k, (g, w) in enumerate(zip(got, want)):
        what = f"the output of layer {k + 1} (stride {4 * 2 ** k})"
        g = _tensor_out(g, what)
        if g.shape != tuple(w.shape):
            raise CheckFailure(f"{what}: expected shape {tuple(w.shape)}, got {g.shape}")
        arrays.append(g)

    def same(a, b) -> bool:
        return np.allclose(a, b.numpy(), atol=1e-4, rtol=1e-4)

    wrong = [k for k in range(4) if not same(arrays[k], want[k])]
    if not wrong:
        return
    k = wrong[0]
    stride = 4 * 2 ** k
    what = f"the output of layer {k + 1} (stride {stride})"
    # a hint is named only when all four outputs are that wrong answer's, not where one layer happens to agree
    for hint, candidate in candidates.items():
        if all(same(a, c) for a, c in zip(arrays, candidate)):
            raise CheckFailure(f"{what}: " + hint.format(s=stride, n=k + 1, k=k, n1=k + 2))
    expect_close(arrays[k], want[k].numpy(), what, atol=1e-4, rtol=1e-4,
                 hint="x = layer(x) + down_skip(previous_down) + up_skip(previous_up), then the next layer")


# ---- mspn_staged_loss ------------------------------------------------------------------------------------------
#
# One convention across the book: the per-joint L2 carries HRNet's factor 0.5 (posebook.losses.joint_losses, and
# chapter 05's OHKM exercise requires it). The official MSPN code's per-joint loss has no 0.5, with the weights 1/4 on
# the coarser outputs and 1 on the finest; the book's 0.5 with every weight doubled (1/2 and 2) gives the same total
# exactly (posebook.models.mspn.mspn_loss). The checker expects that total, so both spellings pass.


def _per_joint(output, target, weight):
    """(B, K): the book's per-joint loss, 0.5 x mean over pixels of (w * (output - target))^2 (HRNet's form, as
    chapter 05's OHKM)."""
    return 0.5 * ((output - target) * weight[:, :, None, None]).pow(2).mean(dim=(2, 3))


def _ohkm(per_joint, topk):
    """Each sample's ``topk`` largest per-joint losses, averaged, then the mean over samples (chapter 05)."""
    return per_joint.topk(topk, dim=1).values.mean(dim=1).mean()


COARSE, FINEST = 0.5, 2.0  # the official 1/4 and 1, doubled for the book's factor 0.5


def staged_loss_solution(outputs, targets, weights, stages, topk):
    """MSPN's loss (the official code, Li et al. 2019, §3) in the book's convention: per stage, the three coarser
    outputs' mean per-joint L2 weighted 1/2 and OHKM on the finest (each sample's ``topk`` largest per-joint losses,
    averaged, then the batch) weighted 2, summed over every stage's outputs. The per-joint loss carries the book's
    factor 0.5, so the doubled weights give the official total (no 0.5, weights 1/4 and 1) exactly. Chapter 06."""
    total = 0.0
    for s in range(stages):
        for level in range(4):
            i = 4 * s + level
            per_joint = _per_joint(outputs[i], targets[i], weights[i])
            total = total + (COARSE * per_joint.mean() if level < 3 else FINEST * _ohkm(per_joint, topk))
    return total


def _loss_official_weights_with_half(outputs, targets, weights, stages, topk):
    total = 0.0
    for i in range(4 * stages):
        per_joint = _per_joint(outputs[i], targets[i], weights[i])
        total = total + (per_joint.mean() / 4 if i % 4 < 3 else _ohkm(per_joint, topk))
    return total


def _loss_doubled_weights_without_half(outputs, targets, weights, stages, topk):
    return 2 * staged_loss_solution(outputs, targets, weights, stages, topk)


def _loss_no_quarter(outputs, targets, weights, stages, topk):
    total = 0.0
    for i in range(4 * stages):
        per_joint = _per_joint(outputs[i], targets[i], weights[i])
        total = total + FINEST * (per_joint.mean() if i % 4 < 3 else _ohkm(per_joint, topk))
    return total


def _loss_ohkm_everywhere(outputs, targets, weights, stages, topk):
    total = 0.0
    for i in range(4 * stages):
        mined = _ohkm(_per_joint(outputs[i], targets[i], weights[i]), topk)
        total = total + (COARSE * mined if i % 4 < 3 else FINEST * mined)
    return total


def _loss_batch_topk(outputs, targets, weights, stages, topk):
    total = 0.0
    for i in range(4 * stages):
        per_joint = _per_joint(outputs[i], targets[i], weights[i])
        if i % 4 < 3:
            total = total + COARSE * per_joint.mean()
        else:
            total = total + FINEST * per_joint.flatten().topk(topk * len(per_joint)).values.mean()
    return total


def _loss_ohkm_on_coarsest(outputs, targets, weights, stages, topk):
    total = 0.0
    for i in range(4 * stages):
        per_joint = _per_joint(outputs[i], targets[i], weights[i])
        total = total + (COARSE * per_joint.mean() if i % 4 > 0 else FINEST * _ohkm(per_joint, topk))
    return total


def _loss_mean_over_stages(outputs, targets, weights, stages, topk):
    return staged_loss_solution(outputs, targets, weights, stages, topk) / stages


def _loss_last_stage_only(outputs, targets, weights, stages, topk):
    shift = 4 * (stages - 1)
    return staged_loss_solution(outputs[shift:], targets[shift:], weights[shift:], 1, topk)


def _loss_case(stages: int, seed: int, b: int = 3, k: int = 6, size=(4, 3)):
    gen = torch.Generator().manual_seed(seed)
    outputs = [torch.rand(b, k, *size, generator=gen) for _ in range(4 * stages)]
    targets = [torch.rand(b, k, *size, generator=gen) for _ in range(4 * stages)]
    weights = [(torch.rand(b, k, generator=gen) < 0.75).float() for _ in range(4 * stages)]
    return outputs, targets, weights


# (stages, topk, seed, batch): 3 stages first, so that "half the total" (the 0.5 with the official weights) and
# "the total over the stages" differ where it matters; batch sizes differ so no factor of 2 or 3 coincides
LOSS_CASES = ((3, 2, 3, 3), (1, 3, 1, 2), (2, 3, 2, 4))

# hints, each named only when the answer equals that wrong answer on every case
LOSS_HINTS = {
    "your loss is half the official one: the book's per-joint loss (with its factor 0.5, as chapter 05's OHKM) "
    "needs the doubled weights, 1/2 on the three coarser outputs and 2 on the finest; the official weights 1/4 and "
    "1 go with the official per-joint loss, which has no 0.5": _loss_official_weights_with_half,
    "your loss is twice the official one: the doubled weights (1/2 on the coarser outputs, 2 on the finest) go with "
    "the book's per-joint loss and its factor 0.5; without the 0.5 (the official per-joint loss) the weights are "
    "1/4 and 1": _loss_doubled_weights_without_half,
    "the three coarser outputs of each stage weigh a quarter of the finest (1/2 and 2 with the book's factor 0.5; "
    "the official 1/4 and 1 without it)": _loss_no_quarter,
    "only the finest output of each stage uses OHKM; the coarser ones use the mean over every joint":
        _loss_ohkm_everywhere,
    "OHKM ranks the joints of each sample apart (top k per row), not the whole batch together": _loss_batch_topk,
    "the outputs run coarse to fine within a stage, so the finest (OHKM) is the stage's last":
        _loss_ohkm_on_coarsest,
    "the stages' losses are summed, not averaged: your total is the official one divided by the number of stages":
        _loss_mean_over_stages,
    "every stage is supervised, not only the last one": _loss_last_stage_only,
}


@exercise("mspn_staged_loss", solution=staged_loss_solution, chapter=CHAPTER,
          mutants={"the book's factor 0.5 with the official weights (1/4, 1)": _loss_official_weights_with_half,
                   "the official per-joint loss (no 0.5) with the doubled weights (1/2, 2)":
                       _loss_doubled_weights_without_half,
                   "coarser outputs weighted like the finest": _loss_no_quarter,
                   "OHKM on every output": _loss_ohkm_everywhere,
                   "top-k over the whole batch": _loss_batch_topk,
                   "OHKM on the coarsest output instead of the finest": _loss_ohkm_on_coarsest,
                   "the total divided by the number of stages": _loss_mean_over_stages,
                   "only the last stage supervised": _loss_last_stage_only})
def check_staged_loss(fn):
    from posebook.models.mspn import mspn_loss

    results = []  # (what, the case, got, want) per case
    for stages, topk, seed, b in LOSS_CASES:
        case = _loss_case(stages, seed, b=b)
        outputs, targets, weights = case
        what = f"{stages} stage(s), {4 * stages} outputs, batch {b}, top {topk} of 6 joints"
        with torch.no_grad():
            want = float(mspn_loss(stages, topk)(outputs, targets, weights))
            got = fn([o.clone() for o in outputs], [t.clone() for t in targets], [w.clone() for w in weights],
                     stages, topk)
        got = _tensor_out(got, what) if torch.is_tensor(got) else np.asarray(got, dtype=np.float64)
        if got.size != 1:
            raise CheckFailure(f"{what}: expected one number (a scalar tensor), got shape {got.shape}")
        results.append((what, (case, stages, topk), float(got.reshape(())), want))

    def close(a, b) -> bool:
        return bool(np.isclose(a, b, rtol=1e-5, atol=1e-7))

    wrong = [r for r in results if not close(r[2], r[3])]
    if not wrong:
        return
    what, _, got, want = wrong[0]
    with torch.no_grad():
        for hint, mutant in LOSS_HINTS.items():
            if all(close(g, float(mutant(*case, stages, topk))) for _, (case, stages, topk), g, _ in results):
                raise CheckFailure(f"{what}: {hint}")
    raise CheckFailure(f"{what}: expected {want:.6f}, got {got:.6f}; per stage: the three coarser outputs' mean "
                       f"per-joint L2 x 1/2 plus 2 x OHKM on the finest (the mean over samples of each sample's top "
                       f"k per-joint losses), with the book's per-joint loss 0.5 x mean over pixels of "
                       f"(w (output - target))^2; summed over the stages")
