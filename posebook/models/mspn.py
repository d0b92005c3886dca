"""MSPN (Li, Wang, Yin, Peng, Du, Xiao, Yu, Lu, Wei, Sun, "Rethinking on Multi-Stage Networks for Human Pose
Estimation", 2019).

A stem (conv 7x7 stride 2 + BN + ReLU, max-pool) brings the image to 1/4; then ``stages`` single-stage modules, each a
ResNet-50 downsampling unit and a four-level upsampling unit that predicts heatmaps at every level (§3). Between two
stages, cross stage feature aggregation adds 1x1 conv + BN + ReLU skips of the previous stage's downsampling and
upsampling maps to the next stage's downsampling outputs, and the next stage's input is a 1x1 conv + BN + ReLU of the
previous stage's finest upsampling level (the official code's ``cross_conv``). Chapter 06 (MSPN).

``forward(x)`` returns one flat list of ``4 * stages`` heatmaps (B, K, H/4, W/4): stage by stage, and within a stage
coarse to fine (stride 32, 16, 8, 4), so output ``4 * s + l`` is stage ``s``'s level ``l``. ``MultiOutputLoss`` takes
it as it is, with one target per output from ``TopDownDataset(codec=mspn_codecs(stages))`` and the loss of
``mspn_loss(stages)``. ``predict(x)`` returns the last stage's finest heatmaps.

Cost at 256x192 (``posebook.bench``; conv multiply-adds / 2^30) for 1 / 2 / 3 / 4 stages: 25,112,264 / 56,800,464 /
88,488,664 / 120,176,864 parameters beside the official code's 25.14M / 56.87M / 88.59M / 120.32M (ours lack the
official convs' biases, which the BN after each conv cancels: 0.1% fewer), and 4.72 / 10.49 / 16.25 / 22.02 GFLOPs
(4 stages at 384x288: 49.54), the official code's count exactly; the paper reports 4.4 / 9.6 / 14.7 / 19.9 GFLOPs,
counted on the authors' own framework.

Coarse-to-fine supervision (§3, as the official code): each stage's four outputs, coarse to fine, get blur kernels
15, 11, 9, 7, and the last stage's 11, 9, 7, 5 (``kernel_schedule``); the paper says only that kernels shrink from
early to late stages, so the official schedule is followed. The loss is L2 on every output and online hard keypoint
mining (top 8 of 17 joints) on each stage's finest, the three coarser outputs weighted 1/4; the L2 targets draw only
joints labelled visible (v = 2) and penalise every joint, the OHKM term masks unlabelled ones, as the official code.
The targets peak at 255, as the official code's (``PEAK``): every predictor ends in a BatchNorm, and against peak-1
targets its unit-variance output is mostly noise to be shrunk away (chapter 06 measures the difference).

Where we differ from the official code: no bias before each BN (above), and upsampling with the book's half-pixel
bilinear resize (CPN's, chapter 05) instead of ``align_corners=True``.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from posebook.blocks.mspn import SingleStageModule
from posebook.blocks.resnet import BN_MOMENTUM, RESNET_SPECS
from posebook.codecs.blur import OFFICIAL_PEAK, BlurHeatmap, VisibleBlurHeatmap
from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss

STAGES = (1, 2, 3, 4)  # the paper's MSPNs
LEVELS = 4  # heatmaps per stage, one per upsampling level (stride 32, 16, 8, 4)
KERNELS = (15, 11, 9, 7, 5)  # the official TRAIN.GAUSSIAN_KERNELS: cv2.GaussianBlur sizes, widest first
DECODE_KERNEL = 5  # the official test-time blur on COCO (9 on MPII)
PEAK = OFFICIAL_PEAK  # the official targets' maximum, 255: the predictors end in a BatchNorm, whose unit-variance
# output starts far above a peak-1 target's energy (chapter 06 trains both)
TOPK = 8  # the official LOSS.TOPK: OHKM keeps each sample's 8 hardest joints
COARSE_WEIGHT = 0.25  # the official loss divides each stage's three coarser outputs' L2 by 4


def _check_stages(stages, where: str) -> int:
    if isinstance(stages, bool) or not isinstance(stages, int) or stages not in STAGES:
        raise ValueError(f"{where} stages={stages!r}: expected an int from {STAGES[0]} to {STAGES[-1]} (the paper's "
                         f"1- to 4-stage MSPNs)")
    return stages


class MSPN(nn.Module):
    """``stages`` single-stage modules (ResNet-``depth`` downsampling unit + four-level upsampling unit) joined by
    cross stage feature aggregation; ``forward`` gives every stage's four heatmaps, ``predict`` the last stage's
    finest. Li et al. 2019, §3; chapter 06.

    ``width`` is the ResNet's (64 = the paper's) and ``channels`` the upsampling units' (default ``4 * width``: the
    official 256); the cpu studies narrow both. ``aggregation=False`` drops the cross-stage skips (the paper's
    ablation); the next stage's input stays the previous stage's finest upsampling level, as the official code.
    """

    def __init__(self, stages: int = 2, num_joints: int = 17, width: int = 64, channels: int | None = None,
                 depth: int = 50, aggregation: bool = True):
        super().__init__()
        _check_stages(stages, "MSPN")
        if isinstance(num_joints, bool) or not isinstance(num_joints, int) or num_joints < 1:
            raise ValueError(f"MSPN num_joints={num_joints!r}: expected a positive int (17 for COCO, 16 for MPII)")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"MSPN width={width!r}: expected a positive int (64 is the paper's ResNet width; "
                             f"smaller widths make the narrow networks of the cpu studies)")
        channels = 4 * width if channels is None else channels
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"MSPN channels={channels!r}: expected a positive int (the upsampling units' width; "
                             f"256 in the paper, 4 * width by default)")
        if depth not in RESNET_SPECS:
            raise ValueError(f"MSPN depth={depth!r}: expected a ResNet depth, one of {sorted(RESNET_SPECS)} (50 in "
                             f"the paper's MSPN)")
        if not isinstance(aggregation, bool):
            raise ValueError(f"MSPN aggregation={aggregation!r}: expected True or False")
        self.num_stages, self.num_joints, self.width, self.channels = stages, num_joints, width, channels
        self.depth, self.aggregation = depth, aggregation
        # stage 0 only; torchvision's names, so an ImageNet ResNet's stem maps onto it
        self.stem = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            bn1=nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            relu=nn.ReLU(inplace=True),
            maxpool=nn.MaxPool2d(3, stride=2, padding=1)))
        self.stages = nn.ModuleList(
            SingleStageModule(depth, width, channels, num_joints, feeds_next=i < stages - 1, aggregation=aggregation)
            for i in range(stages))

    def forward(self, x: Tensor) -> list[Tensor]:
        """``4 * stages`` heatmaps (B, K, H/4, W/4): stage by stage, each stage coarse to fine."""
        x, skips = self.stem(x), None
        outputs: list[Tensor] = []
        for stage in self.stages:
            heatmaps, x, skips = stage(x, skips)
            outputs += heatmaps
        return outputs

    def predict(self, x: Tensor) -> Tensor:
        """The last stage's finest heatmaps (B, K, H/4, W/4), the official code's test output, without computing the
        other outputs' heads."""
        x, skips = self.stem(x), None
        for stage in self.stages[:-1]:
            x, skips = stage.handoff(*stage.levels(x, skips))
        last = self.stages[-1]
        _, levels = last.levels(x, skips)
        return last.upsample.predictor[-1](levels[-1])  # the finest level is already at the output size


def kernel_schedule(stages: int, coarse_to_fine: bool = True) -> list[tuple[int, ...]]:
    """Each stage's four blur kernels, coarse level to fine: 15, 11, 9, 7, and 11, 9, 7, 5 in the last stage with
    ``coarse_to_fine`` (the official code's schedule; without it every stage gets 15, 11, 9, 7). Li et al. 2019, §3
    (coarse-to-fine supervision); chapter 06."""
    _check_stages(stages, "kernel_schedule")
    if not isinstance(coarse_to_fine, bool):
        raise ValueError(f"kernel_schedule coarse_to_fine={coarse_to_fine!r}: expected True or False")
    shift = [1 if coarse_to_fine and s == stages - 1 else 0 for s in range(stages)]
    return [KERNELS[k:k + LEVELS] for k in shift]


def mspn_codecs(stages: int = 2, input_size=(256, 192), heatmap_size=(64, 48), coarse_to_fine: bool = True,
                decode_kernel: int = DECODE_KERNEL, peak: float = PEAK,
                kernel_scale: float = 1.0) -> list[BlurHeatmap]:
    """One codec per MSPN output, in ``forward``'s order: per stage, three :class:`VisibleBlurHeatmap` (L2) and a
    :class:`BlurHeatmap` (OHKM, unlabelled joints weight 0), kernels from ``kernel_schedule``, ``clamp=False``, test
    blur 5 and targets peaking at 255, as the official code. The last one decodes. ``kernel_scale`` carries the
    kernels (sized for 64 x 48 maps) to a smaller map (its height / 64; :func:`posebook.codecs.blur.scaled_kernel`).
    Li et al. 2019, §3; chapter 06."""
    codecs: list[BlurHeatmap] = []
    schedule = kernel_schedule(stages, coarse_to_fine)
    if kernel_scale != 1.0:
        from posebook.codecs.blur import scaled_kernel

        schedule = [tuple(scaled_kernel(k, kernel_scale) for k in kernels) for kernels in schedule]
    for kernels in schedule:
        codecs += [VisibleBlurHeatmap(input_size, heatmap_size, kernel=k, decode_kernel=decode_kernel, peak=peak)
                   for k in kernels[:-1]]
        codecs.append(BlurHeatmap(input_size, heatmap_size, kernel=kernels[-1], decode_kernel=decode_kernel,
                                  clamp=False, peak=peak))
    return codecs


def mspn_loss(stages: int = 2, topk: int = TOPK) -> MultiOutputLoss:
    """The official MSPN loss as one :class:`MultiOutputLoss` on ``forward``'s outputs and ``mspn_codecs``' targets:
    per stage, L2 on the three coarser outputs weighted 1/4 and OHKM (top ``topk``) on the finest, summed over
    stages. Li et al. 2019, §3 (coarse-to-fine supervision); chapter 06.

    Our per-joint L2 carries a factor 0.5 (HRNet's) that the official code's lacks, so every weight is doubled
    (0.5 for the coarser outputs, 2 for the finest): the total equals the official one exactly.
    """
    _check_stages(stages, "mspn_loss")
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"mspn_loss topk={topk!r}: expected a positive int (8 in the official code), at most the "
                         f"number of joints")
    per_stage = [JointsMSELoss()] * (LEVELS - 1) + [JointsOHKMMSELoss(topk=topk)]
    weights = [2 * COARSE_WEIGHT] * (LEVELS - 1) + [2.0]
    return MultiOutputLoss(per_stage * stages, weights=weights * stages)
