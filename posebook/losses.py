"""Heatmap losses: HRNet's JointsMSELoss, online hard keypoint mining (OHKM), multi-output supervision and OpenPose's
masked L2 over stages.

``JointsMSELoss`` is HRNet's loss exactly (official ``lib/core/loss.py``): 0.5 x the per-joint MSE of weighted heatmaps, averaged
over joints. ``JointsOHKMMSELoss`` keeps each sample's top-k per-joint losses (CPN, Chen et al., CVPR 2018, §3.2.2, Table 6).
``MultiOutputLoss`` supervises a list of outputs, as the Stacked Hourglass does every stack (Newell et al. §3.3).
``openpose_loss`` sums the masked L2 of every stage's PAFs and confidence maps (Cao et al., CVPR 2017, §2.1).
Explained in chapter 03 (Stacked Hourglass); OHKM in chapter 05 (CPN); the OpenPose loss in chapter 08.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _check_shapes(output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None) -> None:
    if output.shape != target.shape:
        raise ValueError(f"heatmap loss: output has shape {tuple(output.shape)} but target has "
                         f"{tuple(target.shape)}; expected both (B, K, H, W)")
    if target_weight is not None and target_weight.reshape(len(target_weight), -1).shape != output.shape[:2]:
        raise ValueError(f"heatmap loss: target_weight has shape {tuple(target_weight.shape)}; expected "
                         f"(B, K) = {tuple(output.shape[:2])} (or (B, K, 1))")


def joint_losses(output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None = None):
    """Per-sample, per-joint loss (B, K): 0.5 x mean over pixels of (w * (output - target))^2 (HRNet's form; chapter 03)."""
    _check_shapes(output, target, target_weight)
    diff = (output - target).flatten(2).float()  # (B, K, H*W)
    if target_weight is not None:
        diff = diff * target_weight.reshape(*output.shape[:2], 1).float()
    return 0.5 * diff.pow(2).mean(dim=2)


def ohkm_loss(per_joint: torch.Tensor, topk: int = 8) -> torch.Tensor:
    """Online hard keypoint mining: average each sample's ``topk`` largest joint losses, then the batch (CPN
    §3.2.2; chapter 05).

    Joints with weight 0 keep their loss of 0 in the ranking and the division by ``topk``, as in the official code.
    """
    if not 1 <= topk <= per_joint.shape[1]:
        raise ValueError(f"ohkm_loss: topk={topk} must be between 1 and the number of joints {per_joint.shape[1]}")
    return per_joint.topk(topk, dim=1).values.mean()


class JointsMSELoss(nn.Module):
    """HRNet's heatmap loss: for each joint 0.5 x MSE(output * w, target * w), averaged over joints (HRNet code,
    Sun et al. CVPR 2019; chapter 03)."""

    def __init__(self, use_target_weight: bool = True):
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight=None):
        weight = target_weight if self.use_target_weight else None
        if self.use_target_weight and weight is None:
            raise ValueError("JointsMSELoss(use_target_weight=True) needs target_weight (B, K)")
        return joint_losses(output, target, weight).mean()


class JointsOHKMMSELoss(nn.Module):
    """JointsMSELoss with online hard keypoint mining: per sample, only the ``topk`` hardest joints (CPN §3.2.2;
    chapter 05).

    HRNet's port of CPN's loss: the same per-joint MSE, top-k per sample, / k, mean over the batch, times 0.5 (CPN's
    official code has no 0.5, so its OHKM term is twice this one; with 0/1 weights nothing else differs).
    """

    def __init__(self, topk: int = 8, use_target_weight: bool = True):
        super().__init__()
        self.topk, self.use_target_weight = topk, use_target_weight

    def forward(self, output, target, target_weight=None):
        weight = target_weight if self.use_target_weight else None
        return ohkm_loss(joint_losses(output, target, weight), self.topk)


class MultiOutputLoss(nn.Module):
    """Intermediate supervision: ``base`` applied to each output of a list against its own target, weighted, summed.

    ``base`` is one loss for every output, or a list with one per output (CPN in chapter 05: L2 on GlobalNet's four
    outputs, OHKM on RefineNet's). ``target`` and ``target_weight`` are one tensor shared by every output (the Stacked
    Hourglass) or a list with one per output (coarse-to-fine targets). ``weights`` default to 1 each;
    ``reduction="mean"`` divides by the number of outputs. A weight of 0 drops an output's supervision (chapter 03's
    ablation). Newell et al. §3.3.
    """

    def __init__(self, base: nn.Module | Sequence[nn.Module], weights: Sequence[float] | None = None,
                 reduction: str = "sum"):
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"MultiOutputLoss: reduction={reduction!r}; expected 'sum' or 'mean'")
        if isinstance(base, (list, tuple)):
            if not base or not all(callable(b) for b in base):
                raise ValueError(f"MultiOutputLoss: base={base!r}; expected a loss or a non-empty list of losses, "
                                 f"one per output")
            base = nn.ModuleList(base) if all(isinstance(b, nn.Module) for b in base) else list(base)
        elif not callable(base):
            raise ValueError(f"MultiOutputLoss: base={base!r}; expected a loss (e.g. JointsMSELoss()) or a list of "
                             f"losses, one per output")
        self.base, self.reduction = base, reduction
        self.weights = None if weights is None else [float(w) for w in weights]
        if self.per_output_base and self.weights is not None and len(self.weights) != len(base):
            raise ValueError(f"MultiOutputLoss: {len(base)} base losses but {len(self.weights)} weights; expected "
                             f"one weight per output")

    @property
    def per_output_base(self) -> bool:
        """True when ``base`` holds one loss per output."""
        return isinstance(self.base, (nn.ModuleList, list))

    @staticmethod
    def _per_output(value, n: int, what: str) -> list:
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"MultiOutputLoss: {n} outputs but {len(value)} {what}s")
            return list(value)
        return [value] * n

    def forward(self, outputs, target, target_weight=None):
        if not isinstance(outputs, (list, tuple)):
            raise TypeError(f"MultiOutputLoss expects a list of outputs, got {type(outputs).__name__}")
        n = len(outputs)
        if self.per_output_base and len(self.base) != n:
            raise ValueError(f"MultiOutputLoss: {n} outputs but {len(self.base)} base losses; expected one base "
                             f"loss per output")
        weights = self.weights if self.weights is not None else [1.0] * n
        if len(weights) != n:
            raise ValueError(f"MultiOutputLoss: {len(weights)} weights for {n} outputs")
        bases = list(self.base) if self.per_output_base else [self.base] * n
        targets = self._per_output(target, n, "target")
        target_weights = self._per_output(target_weight, n, "target_weight")
        total = sum(w * base(out, t, tw)
                    for w, base, out, t, tw in zip(weights, bases, outputs, targets, target_weights))
        return total / n if self.reduction == "mean" else total


# ---- OpenPose: masked L2 over every stage and both branches -------------------------------------------------------

OPENPOSE_REDUCTIONS = ("mean", "caffe")


def _check_openpose_shapes(outputs, target, mask) -> None:
    if not (isinstance(outputs, (list, tuple)) and len(outputs) == 2
            and all(isinstance(o, (list, tuple)) for o in outputs)):
        raise TypeError("openpose_loss: outputs must be (pafs, heatmaps), two lists of every stage's maps as "
                        f"OpenPose.forward returns them, got {type(outputs).__name__}")
    if not (isinstance(target, (list, tuple)) and len(target) == 2
            and all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in target)):
        got = ([tuple(getattr(t, "shape", ())) for t in target] if isinstance(target, (list, tuple))
               else type(target).__name__)
        raise TypeError(f"openpose_loss: target must be (pafs, heatmaps), two (B, C, h, w) tensors, got {got}")
    if not outputs[0] and not outputs[1]:
        raise ValueError("openpose_loss: outputs hold no stage; expected at least one PAF or heatmap map")
    for branch, maps, t in zip(("pafs", "heatmaps"), outputs, target):
        for stage, out in enumerate(maps, 1):
            if not isinstance(out, torch.Tensor) or out.shape != t.shape:
                raise ValueError(f"openpose_loss: {branch} of stage {stage} has shape "
                                 f"{tuple(getattr(out, 'shape', ()))} but the {branch} target has {tuple(t.shape)}")
    pafs, heatmaps = target
    if pafs.shape[0] != heatmaps.shape[0] or pafs.shape[-2:] != heatmaps.shape[-2:]:
        raise ValueError(f"openpose_loss: the pafs target {tuple(pafs.shape)} and the heatmaps target "
                         f"{tuple(heatmaps.shape)} differ in batch or map size")
    if mask is not None and tuple(mask.shape) not in ((pafs.shape[0], 1, *pafs.shape[-2:]),
                                                      (pafs.shape[0], *pafs.shape[-2:])):
        raise ValueError(f"openpose_loss: mask has shape {tuple(mask.shape)}; expected (B, 1, h, w) = "
                         f"{(pafs.shape[0], 1, *pafs.shape[-2:])} or (B, h, w), one weight per pixel for every channel")


def openpose_stage_losses(outputs, target, mask: torch.Tensor | None = None,
                          reduction: str = "mean") -> dict[str, list[torch.Tensor]]:
    """Every stage's masked L2 term by branch: ``{"pafs": [f_L^1, ...], "heatmaps": [f_S^1, ...]}``.

    f^t = sum_p W(p) ||prediction^t(p) - target(p)||^2 (CVPR'17 Eq. 3, 4; TPAMI'19 Eq. 2, 3) with the mask W (B, 1,
    h, w) broadcast over the channels: 0 where people are unannotated. ``reduction="mean"`` divides each term by
    B x C x h x w (masked pixels included), the scale posebook's learning rates assume; ``"caffe"`` by 2B, the
    official training's EuclideanLoss (its net multiplies prediction and target by the mask, W^2 instead of W: the
    same for posebook's 0/1 masks). Cao et al., CVPR 2017, §2.1; chapter 08 (OpenPose).
    """
    if reduction not in OPENPOSE_REDUCTIONS:
        raise ValueError(f"openpose_loss: reduction={reduction!r}; expected one of {OPENPOSE_REDUCTIONS}")
    _check_openpose_shapes(outputs, target, mask)
    weight = None if mask is None else mask.reshape(len(mask), 1, *mask.shape[-2:]).float()
    terms = {}
    for branch, maps, t in zip(("pafs", "heatmaps"), outputs, target):
        terms[branch] = []
        for out in maps:
            squared = (out.float() - t.float()).pow(2)  # (B, C, h, w)
            if weight is not None:
                squared = squared * weight
            terms[branch].append(squared.mean() if reduction == "mean" else squared.sum() / (2 * len(out)))
    return terms


def openpose_loss(outputs, target, mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """OpenPose's loss: the masked L2 of every stage's PAFs and confidence maps, summed over stages and branches
    (f = sum_t f_L^t + f_S^t; intermediate supervision at every stage). ``outputs`` is ``(pafs, heatmaps)``, two lists
    of (B, C, h, w) maps as ``OpenPose.forward`` returns them; ``target`` is ``(pafs, heatmaps)``, one tensor each;
    ``mask`` (B, 1, h, w) or None. Called as the Trainer calls a loss: ``openpose_loss(model(image), target, mask)``.
    See :func:`openpose_stage_losses` for ``reduction``. Cao et al., CVPR 2017, §2.1; TPAMI 2019, §3.1; chapter 08.
    """
    terms = openpose_stage_losses(outputs, target, mask, reduction)
    return torch.stack([term for branch in terms.values() for term in branch]).sum()
