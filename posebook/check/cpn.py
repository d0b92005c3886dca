"""Checkers for chapter 05 (CPN, Chen et al., "Cascaded Pyramid Network for Multi-Person Pose Estimation", CVPR 2018):
one top-down step of GlobalNet (§3.2.1), online hard keypoint mining (§3.2.2), the shape of RefineNet's
concatenation (§3.2.2) and which keypoints GlobalNet's targets show (the official code's visible-only targets). Each
is checked against the library's own block, loss or codec.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from posebook.blocks.cpn import GlobalNet, RefineNet  # imported here, not inside the timed checks

from ._core import CheckFailure, LearnerError, as_array, expect_close, exercise

CHAPTER = "05_cpn"


def _tensor_out(value, what: str) -> np.ndarray:
    if not torch.is_tensor(value):
        raise CheckFailure(f"{what}: expected a torch tensor, got {type(value).__name__}")
    return as_array(value, what)


def _matches(got: np.ndarray, candidate: torch.Tensor, *, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    candidate = candidate.detach().numpy()
    return got.shape == candidate.shape and np.allclose(got, candidate, atol=atol, rtol=rtol)


# ---- globalnet_merge -------------------------------------------------------------------------------------------


def globalnet_merge_solution(coarser, lateral, conv1x1):
    """One top-down step of GlobalNet (CPN §3.2.1): bilinear-upsample the coarser level to the lateral's size, apply
    the 1x1 conv, add the lateral. The sampling grid is this book's choice, half-pixel centres (align_corners=False,
    as ``posebook.blocks.cpn.resize``): the official TF1 code's ``resize_bilinear`` maps output pixel i to input
    i * in / out, and the PyTorch port uses align_corners=True. Chapter 05."""
    up = F.interpolate(coarser, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
    return lateral + conv1x1(up)


def _merge_add_before_conv(coarser, lateral, conv1x1):
    up = F.interpolate(coarser, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
    return conv1x1(up + lateral)


def _merge_nearest(coarser, lateral, conv1x1):
    return lateral + conv1x1(F.interpolate(coarser, size=lateral.shape[-2:], mode="nearest"))


def _merge_align_corners(coarser, lateral, conv1x1):
    up = F.interpolate(coarser, size=lateral.shape[-2:], mode="bilinear", align_corners=True)
    return lateral + conv1x1(up)


def _merge_conv_on_lateral(coarser, lateral, conv1x1):
    up = F.interpolate(coarser, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
    return up + conv1x1(lateral)


def _merge_no_add(coarser, lateral, conv1x1):
    return conv1x1(F.interpolate(coarser, size=lateral.shape[-2:], mode="bilinear", align_corners=False))


def _globalnet_case(seed: int):
    """A narrow GlobalNet with random weights, biases and BN statistics (eval mode), and C2..C5 of odd sizes (the
    maps ResNet gives a 100x76 input), returned coarse to fine with the pyramid the block computes from them."""
    gen = torch.Generator().manual_seed(seed)
    net = GlobalNet(in_channels=(3, 5, 6, 7), channels=6, num_joints=2)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                values = torch.randn(t.shape, generator=gen) * 0.5
                t.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    net.eval()
    sizes = [(25, 19), (13, 10), (7, 5), (4, 3)]  # C2..C5
    features = [torch.randn(2, c, *s, generator=gen) for c, s in zip(net.in_channels, sizes)]
    with torch.no_grad():
        levels = net.levels(features)
        pyramid = net.pyramid(features)
    return net, levels, pyramid


@exercise("globalnet_merge", solution=globalnet_merge_solution, chapter=CHAPTER,
          mutants={"added before the 1x1 conv": _merge_add_before_conv,
                   "nearest instead of bilinear": _merge_nearest,
                   "align_corners=True instead of the block's False": _merge_align_corners,
                   "1x1 conv applied to the lateral": _merge_conv_on_lateral,
                   "no addition of the lateral": _merge_no_add})
def check_globalnet_merge(fn):
    net, levels, pyramid = _globalnet_case(seed=5)
    names = ["C5", "C4", "C3", "C2"]
    for i in range(1, len(levels)):
        coarser, conv = pyramid[i - 1], net.merge[i - 1]
        with torch.no_grad():
            lateral = net.lateral[i](levels[i])
            what = (f"merging the {names[i - 1]} level {tuple(coarser.shape)} into the {names[i]} lateral "
                    f"{tuple(lateral.shape)}")
            try:
                got = _tensor_out(fn(coarser.clone(), lateral.clone(), conv), what)
            except LearnerError as err:
                if "size of tensor" not in err.summary:
                    raise
                raise CheckFailure(f"{what}: your function raised {err.summary}. Upsample the coarser level to the "
                                   f"lateral's exact size (size=lateral.shape[-2:]): these sizes are odd, so a factor "
                                   f"of 2 does not fit") from None
            want = pyramid[i]
            variants = {
                "you added before the 1x1 conv; the conv acts on the upsampled coarser level alone, and the lateral "
                "is added after it": _merge_add_before_conv(coarser, lateral, conv),
                "you upsampled with mode='nearest'; GlobalNet upsamples bilinearly": _merge_nearest(coarser, lateral,
                                                                                                   conv),
                "you used align_corners=True (the PyTorch port's choice); this book's GlobalNet samples at "
                "half-pixel centres, align_corners=False (its choice: the official TF1 code samples at i * in / out, "
                "neither of the two)": _merge_align_corners(coarser, lateral, conv),
                "you applied the 1x1 conv to the lateral; it belongs on the upsampled coarser level (the lateral "
                "already had its own 1x1 conv)": _merge_conv_on_lateral(coarser, lateral, conv),
                "the lateral is missing; the step adds it to the upsampled, convolved coarser level":
                    _merge_no_add(coarser, lateral, conv),
            }
        if got.shape != tuple(want.shape):
            raise CheckFailure(f"{what}: expected shape {tuple(want.shape)}, got {got.shape}; upsample the coarser "
                               f"level to the lateral's exact size (size=lateral.shape[-2:]: the sizes here are odd, "
                               f"so a factor of 2 does not fit)")
        for hint, candidate in variants.items():
            if not _matches(got, want) and _matches(got, candidate):
                raise CheckFailure(f"{what}: {hint}")
        expect_close(got, want.numpy(), what, atol=1e-5, rtol=1e-5,
                     hint="lateral + conv1x1(F.interpolate(coarser, size=lateral.shape[-2:], mode='bilinear', "
                          "align_corners=False))")


# ---- ohkm ------------------------------------------------------------------------------------------------------


def ohkm_solution(output, target, target_weight, topk):
    """Online hard keypoint mining (CPN §3.2.2) with the library's 0.5: per joint 0.5 x mean over pixels of
    (w * (output - target))^2, each sample's ``topk`` largest averaged (divided by ``topk`` even where fewer joints
    are labelled: an unlabelled joint's loss of 0 stays in, as in the official code), then the batch. Chapter 05."""
    diff = (output - target) * target_weight[:, :, None, None]
    per_joint = 0.5 * diff.pow(2).mean(dim=(2, 3))  # (B, K)
    return per_joint.topk(topk, dim=1).values.mean(dim=1).mean()


def _per_joint(output, target, target_weight):
    diff = (output - target) * target_weight[:, :, None, None]
    return 0.5 * diff.pow(2).mean(dim=(2, 3))


def _ohkm_whole_batch(output, target, target_weight, topk):
    per_joint = _per_joint(output, target, target_weight)
    return per_joint.flatten().topk(topk * len(per_joint)).values.mean()


def _ohkm_whole_batch_top_m(output, target, target_weight, topk):
    return _per_joint(output, target, target_weight).flatten().topk(topk).values.mean()


def _ohkm_batch_axis(output, target, target_weight, topk):
    return _per_joint(output, target, target_weight).topk(topk, dim=0).values.mean()


def _ohkm_top_pixels(output, target, target_weight, topk):
    diff = ((output - target) * target_weight[:, :, None, None]).flatten(2)
    return 0.5 * diff.pow(2).topk(topk, dim=2).values.mean()


def _ohkm_no_mining(output, target, target_weight, topk):
    return _per_joint(output, target, target_weight).mean()


def _ohkm_divide_by_k(output, target, target_weight, topk):
    per_joint = _per_joint(output, target, target_weight)
    return (per_joint.topk(topk, dim=1).values.sum(dim=1) / per_joint.shape[1]).mean()


def _ohkm_divide_by_kept_labelled(output, target, target_weight, topk):
    per_joint = _per_joint(output, target, target_weight)
    labelled = (target_weight > 0).sum(dim=1).clamp(min=1, max=topk)
    return (per_joint.topk(topk, dim=1).values.sum(dim=1) / labelled).mean()


def _ohkm_divide_by_labelled(output, target, target_weight, topk):
    per_joint = _per_joint(output, target, target_weight)
    labelled = (target_weight > 0).sum(dim=1).clamp(min=1)
    return (per_joint.topk(topk, dim=1).values.sum(dim=1) / labelled).mean()


def _ohkm_batch_sum(output, target, target_weight, topk):
    return _per_joint(output, target, target_weight).topk(topk, dim=1).values.mean(dim=1).sum()


def _ohkm_no_weight(output, target, target_weight, topk):
    return ohkm_solution(output, target, torch.ones_like(target_weight), topk)


def _ohkm_no_half(output, target, target_weight, topk):
    return 2 * ohkm_solution(output, target, target_weight, topk)


def _ohkm_case(losses, raw, weight, seed: int, size=(3, 4)):
    """Heatmaps whose weighted per-joint losses are exactly ``losses`` (B, K), with ``raw`` the loss of the joints
    whose weight is 0 when the weight is ignored; targets are random, so target and output both need the weight. The
    differences vary from pixel to pixel, so that ranking pixels is not ranking joints."""
    gen = torch.Generator().manual_seed(seed)
    losses, raw, weight = (torch.tensor(v, dtype=torch.float32) for v in (losses, raw, weight))
    per_joint = torch.where(weight > 0, losses, raw)
    sign = torch.where(torch.rand(*losses.shape, *size, generator=gen) < 0.5, -1.0, 1.0)
    pattern = sign * (0.3 + torch.rand(*losses.shape, *size, generator=gen))
    pattern = pattern / pattern.pow(2).mean(dim=(2, 3), keepdim=True).sqrt()  # mean square 1 per joint
    target = torch.rand(*losses.shape, *size, generator=gen)
    output = target + pattern * (2 * per_joint)[:, :, None, None].sqrt()  # 0.5 x mean of d^2 = per_joint
    return output, target, weight


_WHOLE_BATCH = ("you ranked the joints of the whole batch together; OHKM keeps the top M of each sample (rank along "
                "the joints axis, dim=1), averages them, then averages the samples")
#: each planted wrong answer and the hint the checker gives it (tests/test_cpn.py checks every one)
OHKM_HINTS = {
    _ohkm_whole_batch: _WHOLE_BATCH,
    _ohkm_whole_batch_top_m: _WHOLE_BATCH,
    _ohkm_batch_axis: "you ranked along the batch axis (dim=0), keeping the M hardest samples of each joint; OHKM "
                      "ranks each sample's joints (dim=1) and keeps its M hardest",
    _ohkm_top_pixels: "you ranked pixels; OHKM ranks joints: first each joint's loss (the mean over its pixels), then "
                      "each sample's top M of those (dim=1)",
    _ohkm_no_mining: "you averaged every joint's loss: that is plain L2, no mining; keep only each sample's top M "
                     "joint losses",
    _ohkm_divide_by_k: "you divided the top-M sum by K, the number of joints; average the M kept losses (divide by "
                       "M)",
    _ohkm_divide_by_kept_labelled: "you divided by the number of labelled joints among the kept ones; the official "
                                   "code divides by M always: a sample with fewer than M labelled joints keeps the "
                                   "zero losses of unlabelled ones in its top M and in the average",
    _ohkm_divide_by_labelled: "you divided the top-M sum by the sample's number of labelled joints; divide by M, "
                              "however many joints are labelled (unlabelled ones count with their loss of 0)",
    _ohkm_batch_sum: "you summed the samples' losses; OHKM averages them over the batch (divide by B)",
    _ohkm_no_weight: "target_weight was ignored: unlabelled joints (weight 0) must contribute a loss of 0; multiply "
                     "(output - target) by the weight before squaring",
    _ohkm_no_half: "your loss is twice the expected one: this book keeps HRNet's 0.5 in front of each joint's mean "
                   "squared error (CPN's official code has none; the book matches the official total with a weight "
                   "of 2 on the OHKM term)",
}


def _ohkm_cases() -> list[tuple]:
    """Batches of 3, 4 and 5 samples (never 2, so that summing the batch is not doubling the loss), each topk below
    the batch size; the last has samples with 1 and 2 labelled joints against topk = 3."""
    # sample 0 holds the batch's hardest joints (so a batch-wide top-M differs); joints (0, 0) and (1, 2) are
    # unlabelled (weight 0) with a large loss when the weight is ignored
    cases = [_ohkm_case(losses=[[0.0, 8.0, 7.0, 6.0, 0.5], [1.0, 2.0, 0.0, 3.0, 0.5], [0.2, 0.9, 1.5, 0.1, 0.4]],
                        raw=[[20.0, 0, 0, 0, 0], [0, 0, 11.0, 0, 0], [0, 0, 0, 0, 0]],
                        weight=[[0.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0, 1.0], [1.0] * 5], seed=1) + (2,)]
    gen = torch.Generator().manual_seed(8)
    random_weight = (torch.rand(4, 6, generator=gen) < 0.7).float()
    random_weight[:, 0] = 1.0  # every sample has a labelled joint
    cases.append((torch.rand(4, 6, 4, 3, generator=gen), torch.rand(4, 6, 4, 3, generator=gen), random_weight, 3))
    cases.append(_ohkm_case(losses=[[0.0, 0.0, 5.0, 0.0, 0.0], [0.7, 0.0, 0.0, 0.0, 2.0], [0.3, 1.2, 0.8, 2.5, 0.6],
                                    [1.1, 0.4, 0.9, 0.2, 3.0], [0.5, 0.6, 0.7, 0.8, 0.9]],
                            raw=[[4.0, 9.0, 0, 6.0, 7.0], [0, 8.0, 3.0, 5.0, 0], [0] * 5, [0] * 5, [0] * 5],
                            weight=[[0.0, 0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 1.0], [1.0] * 5, [1.0] * 5,
                                    [1.0] * 5], seed=3) + (3,))
    return cases


@exercise("ohkm", solution=ohkm_solution, chapter=CHAPTER,
          mutants={"top-M of the whole batch instead of per sample": _ohkm_whole_batch,
                   "top-M along the batch axis (dim=0)": _ohkm_batch_axis,
                   "top-k over pixels instead of joints": _ohkm_top_pixels,
                   "mean over all joints (no mining)": _ohkm_no_mining,
                   "divided by K instead of M": _ohkm_divide_by_k,
                   "divided by the labelled joints kept (a mask-aware mean)": _ohkm_divide_by_kept_labelled,
                   "divided by the sample's labelled joints": _ohkm_divide_by_labelled,
                   "summed over the batch instead of averaged": _ohkm_batch_sum,
                   "target_weight ignored": _ohkm_no_weight,
                   "no factor 0.5": _ohkm_no_half})
def check_ohkm(fn):
    from posebook.losses import JointsOHKMMSELoss

    for output, target, weight, topk in _ohkm_cases():
        b, k = weight.shape
        fewest = int((weight > 0).sum(1).min())
        what = (f"ohkm on {b} samples x {k} joints with topk={topk}" +
                (f" (a sample has only {fewest} labelled joint{'s' if fewest > 1 else ''})" if fewest < topk else ""))
        with torch.no_grad():
            got = as_array(fn(output.clone(), target.clone(), weight.clone(), topk), what)
            want = JointsOHKMMSELoss(topk=topk)(output, target, weight)
        if got.shape != ():
            raise CheckFailure(f"{what}: expected one number (a scalar), got shape {got.shape}")
        for mutant, hint in OHKM_HINTS.items():
            with torch.no_grad():
                candidate = mutant(output, target, weight, topk)
            if not _matches(got, want) and _matches(got, candidate):
                raise CheckFailure(f"{what}: {hint}")
        expect_close(got, want.item(), what, atol=1e-6, rtol=1e-5,
                     hint="per joint: 0.5 x mean over pixels of (w * (output - target))^2; per sample: the sum of "
                          "its topk largest divided by topk; then the mean over the batch")


# ---- refinenet_concat_shape ------------------------------------------------------------------------------------


def refinenet_concat_shape_solution(level_shapes, bottlenecks):
    """The shape of RefineNet's concatenation (CPN §3.2.2): every level, whatever its bottleneck count (0 included),
    upsampled to the finest (last) level's size and stacked along channels. Chapter 05."""
    b, c, h, w = level_shapes[-1]
    return (b, c * len(level_shapes), h, w)


def _concat_at_coarsest(level_shapes, bottlenecks):
    b, c, h, w = level_shapes[0]
    return (b, c * len(level_shapes), h, w)


def _concat_summed(level_shapes, bottlenecks):
    return tuple(level_shapes[-1])


def _concat_skips_empty_levels(level_shapes, bottlenecks):
    b, c, h, w = level_shapes[-1]
    return (b, c * sum(1 for n in bottlenecks if n > 0), h, w)


def _concat_four_levels(level_shapes, bottlenecks):
    b, c, h, w = level_shapes[-1]
    return (b, 4 * c, h, w)


def _refinenet_concatenated_shape(level_shapes, bottlenecks) -> tuple[int, ...]:
    """What the library's RefineNet concatenates for these level shapes, run on the meta device (no memory)."""
    with torch.device("meta"):
        net = RefineNet(channels=level_shapes[0][1], num_joints=2, bottlenecks=bottlenecks)
        return tuple(net.concatenated([torch.empty(s) for s in level_shapes]).shape)


@exercise("refinenet_concat_shape", solution=refinenet_concat_shape_solution, chapter=CHAPTER,
          mutants={"concatenated at the coarsest size": _concat_at_coarsest,
                   "summed instead of concatenated": _concat_summed,
                   "levels with 0 bottlenecks left out": _concat_skips_empty_levels,
                   "always 4 levels": _concat_four_levels})
def check_refinenet_concat_shape(fn):
    cases = [([(2, 256, 8, 6), (2, 256, 16, 12), (2, 256, 32, 24), (2, 256, 64, 48)], (3, 2, 1, 0)),
             ([(1, 8, 4, 3), (1, 8, 7, 5), (1, 8, 13, 10)], (0, 2, 0))]
    for level_shapes, bottlenecks in cases:
        what = f"RefineNet(bottlenecks={bottlenecks}) on levels {level_shapes}"
        want = _refinenet_concatenated_shape(level_shapes, bottlenecks)
        value = fn([tuple(s) for s in level_shapes], tuple(bottlenecks))
        try:
            got = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise CheckFailure(f"{what}: expected a shape (B, C, H, W) as a tuple of ints, got {value!r}") from None
        if len(got) != 4:
            raise CheckFailure(f"{what}: expected a 4-tuple (B, C, H, W), got {got}")
        if got == want:
            continue
        b, c, h, w = level_shapes[-1]
        if got[2:] != want[2:]:
            coarsest = got[2:] == tuple(level_shapes[0][2:])
            hint = (f"every level is upsampled to the finest level's size {want[2:]} (the last level) before the "
                    f"concatenation" + (", not to the coarsest" if coarsest else ""))
        elif got[1] == c:
            hint = f"{c} channels is what a sum would give; RefineNet concatenates, one block of {c} per level"
        elif got[1] == c * sum(1 for n in bottlenecks if n > 0):
            hint = "a level with 0 bottlenecks still joins the concatenation (it is upsampled as it is)"
        elif got[1] == 4 * c and len(level_shapes) != 4:
            hint = f"there are {len(level_shapes)} levels here, not 4: one block of {c} channels per level"
        else:
            hint = "the batch passes through; the channels are those of every level side by side"
        raise CheckFailure(f"{what}: expected {want}, got {got}; {hint}")


# ---- globalnet_target ------------------------------------------------------------------------------------------


def globalnet_target_solution(target, visibility):
    """GlobalNet's target and weights from RefineNet's (every labelled joint drawn), as the official code (tf-cpn
    ``network.py``: ``global_label = label * (valid > 1.1)``, every joint penalised): keep the maps of the visible
    joints (v = 2), empty the others, weight 1 for all. Chapter 05."""
    visible = (torch.as_tensor(visibility) > 1.1).to(target.dtype)
    return target * visible[:, None, None], torch.ones(target.shape[0], dtype=target.dtype)


def _global_every_labelled(target, visibility):
    return target.clone(), torch.ones(target.shape[0], dtype=target.dtype)


def _global_masked(target, visibility):
    visible = (torch.as_tensor(visibility) > 1.1).to(target.dtype)
    return target * visible[:, None, None], visible


def _global_label_weights(target, visibility):
    labelled = (torch.as_tensor(visibility) > 0.1).to(target.dtype)
    return globalnet_target_solution(target, visibility)[0], labelled


def _global_occluded_only(target, visibility):
    occluded = (torch.as_tensor(visibility) == 1).to(target.dtype)
    return target * occluded[:, None, None], torch.ones(target.shape[0], dtype=target.dtype)


GLOBAL_TARGET_HINTS = {
    _global_every_labelled: "you kept the occluded keypoints' maps (v = 1); GlobalNet's targets show only the visible "
                            "ones (v = 2, the official valid > 1.1): an occluded keypoint gets an empty map",
    _global_masked: "you gave the occluded and unlabelled joints weight 0; the official code penalises every joint "
                    "(weight 1), so GlobalNet is pushed towards an empty map where a keypoint is hidden",
    _global_label_weights: "you weighted by the label (v > 0), which is RefineNet's weight; GlobalNet's loss penalises "
                           "every joint, unlabelled ones included (weight 1)",
    _global_occluded_only: "you kept the occluded keypoints and emptied the visible ones: the other way round",
}


def _global_target_cases() -> list[tuple]:
    """RefineNet-style targets (every labelled joint drawn, unlabelled ones empty) with visible, occluded and
    unlabelled joints; the flags as floats (COCO's column) and as ints."""
    gen = torch.Generator().manual_seed(11)
    cases = []
    for flags, size in (([2.0, 1.0, 0.0, 2.0, 1.0], (6, 5)), ([1, 2, 2, 0, 1, 2, 0], (4, 3))):
        v = torch.tensor(flags)
        target = torch.rand(len(flags), *size, generator=gen) * 255 * (v > 0).float()[:, None, None]
        cases.append((target, v))
    return cases


@exercise("globalnet_target", solution=globalnet_target_solution, chapter=CHAPTER,
          mutants={"every labelled keypoint drawn": _global_every_labelled,
                   "hidden joints masked out (weight 0)": _global_masked,
                   "RefineNet's label weights": _global_label_weights,
                   "occluded kept, visible emptied": _global_occluded_only})
def check_globalnet_target(fn):
    for target, v in _global_target_cases():
        what = f"GlobalNet's target for visibility {[int(x) for x in v.tolist()]}"
        value = fn(target.clone(), v.clone())
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise CheckFailure(f"{what}: expected a pair (target, weight), got {type(value).__name__}")
        got_target = as_array(value[0], f"{what}, target")
        got_weight = as_array(value[1], f"{what}, weight").reshape(-1)
        want_target, want_weight = globalnet_target_solution(target, v)
        if got_target.shape != tuple(want_target.shape) or got_weight.shape != tuple(want_weight.shape):
            raise CheckFailure(f"{what}: expected a target of shape {tuple(want_target.shape)} and "
                               f"{len(want_weight)} weights, got {got_target.shape} and {got_weight.shape}")
        right = _matches(got_target, want_target) and _matches(got_weight, want_weight)
        if right:
            continue
        for mutant, hint in GLOBAL_TARGET_HINTS.items():
            t, w = mutant(target, v)
            if _matches(got_target, t) and _matches(got_weight, w):
                raise CheckFailure(f"{what}: {hint}")
        if not _matches(got_target, want_target):
            raise CheckFailure(f"{what}: the target is wrong; keep the map of a visible joint (v = 2) as it is and "
                               f"set every other joint's map to zero")
        raise CheckFailure(f"{what}: the weights are wrong; GlobalNet's loss gives every joint weight 1")
