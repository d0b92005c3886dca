"""OpenPose (Cao, Simon, Wei, Sheikh, CVPR 2017; Cao et al., TPAMI 2019): bottom-up pose from part confidence maps
and part affinity fields (PAFs), refined over several stages that all read the same features F.

:class:`OpenPose` is the CVPR'17 network (§2.1, Fig. 3): the VGG-19 front, then 6 stages of two branches, PAFs
(the prototxt's L1, 38 channels for COCO's 19 limbs) and confidence maps (L2, 19 = 18 parts + background); stage t
reads concat(L^{t-1}, S^{t-1}, F). :class:`OpenPosePAFFirst` is TPAMI'19's (§3.1, Fig. 3, Table 5): PAF stages
first, then confidence-map stages, each built of concatenated 3x3 blocks with PReLU (4PAF-2CM as in BODY_25).

Both ``forward(x)`` return every stage's maps as ``(pafs, heatmaps)``, two lists ordered by stage (CVPR'17: 6 and
6; TPAMI'19: ``paf_stages`` and ``cm_stages``), each map (B, C, H/8, W/8): what :func:`posebook.losses.openpose_loss`
sums, one term per stage and branch. ``predict(x)`` returns the last (pafs, heatmaps). ``width`` scales every
channel count (front and stages) for chapter 08's CPU variants. Explained in chapter 08 (OpenPose).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from posebook.blocks.openpose import ResNetFront, SingleBranchStage, TwoBranchStage, VGG19Front, scaled

FRONTS = ("vgg19", "resnet")  # OpenPose's front: the paper's VGG-19, or the stand-in for the book's pretrained trunk
STRIDE = 8  # F and every map are at 1/8 of the input (three 2x2 max-pools)

# The CMU COCO model's PAF channel of each posebook PAF channel: ``cmu_pafs[:, CMU_PAF_CHANNELS]`` puts limb c's x, y
# at channels 2c, 2c + 1 in ``posebook.keypoints.OPENPOSE.limbs`` order (the codec's). From the demo's mapIdx (its
# indices count the 19 maps first, so minus 19); its confidence maps are already in OpenPose-18 order, background
# last. For loading the official weights, whose input is BGR / 256 - 0.5.
CMU_PAF_CHANNELS = (12, 13, 20, 21, 14, 15, 16, 17, 22, 23, 24, 25, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                    28, 29, 30, 31, 34, 35, 32, 33, 36, 37, 18, 19, 26, 27)


class OpenPose(nn.Module):
    """CVPR'17 OpenPose: ``front`` (VGG-19 + CPM layers -> F) and ``stages`` (:class:`TwoBranchStage`, ``stages`` of
    them). ``forward(x)`` gives ([L^1..L^T], [S^1..S^T]); ``predict(x)`` gives (L^T, S^T).

    Official COCO model: 6 stages, 7x7 later convs, 38 PAF and 19 map channels: 52,311,446 parameters, 135.9e9
    multiply-adds at 368x368. ``later_kernel=3`` and ``width < 1`` build the cheap variants; ``front="resnet"``
    replaces VGG-19 by :class:`ResNetFront` (a ResNet-50/16 trunk cut at stride 8, for the book's pretrained trunk:
    chapter 08's CPU network, not the paper's front). Cao et al., CVPR 2017, §2.1-2.2, Fig. 3; chapter 08.
    """

    def __init__(self, stages: int = 6, width: float = 1.0, later_kernel: int = 7, num_pafs: int = 38,
                 num_heatmaps: int = 19, front: str = "vgg19"):
        super().__init__()
        _check_count("OpenPose", "stages", stages, 1, "the paper uses 6")
        if front not in FRONTS:
            raise ValueError(f"OpenPose: front={front!r}; expected one of {FRONTS} (vgg19: the paper's; resnet: the "
                             f"book's pretrained ResNet-50/16 trunk cut at stride 8)")
        _check_width("OpenPose", width)
        if isinstance(later_kernel, bool) or not isinstance(later_kernel, int) or later_kernel < 1 \
                or later_kernel % 2 == 0:
            raise ValueError(f"OpenPose: later_kernel={later_kernel!r}; expected an odd int >= 1 (the paper uses 7, "
                             f"3 is the cheap variant)")
        _check_heads("OpenPose", num_pafs, num_heatmaps)
        self.num_pafs, self.num_heatmaps, self.width = num_pafs, num_heatmaps, float(width)
        self.front = VGG19Front(width) if front == "vgg19" else ResNetFront(scaled(128, width))
        c = self.front.out_channels
        first = TwoBranchStage(c, num_pafs, num_heatmaps, kernel=3, convs=3, channels=scaled(128, width),
                               mid_channels=scaled(512, width))
        later = [TwoBranchStage(num_pafs + num_heatmaps + c, num_pafs, num_heatmaps, kernel=later_kernel, convs=5,
                                channels=scaled(128, width), mid_channels=scaled(128, width))
                 for _ in range(stages - 1)]
        self.stages = nn.ModuleList([first, *later])

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        features = self.front(_check_input("OpenPose", x))  # F: (B, 128 x width, H/8, W/8)
        pafs, heatmaps = [], []
        stage_input = features
        for stage in self.stages:
            paf, heatmap = stage(stage_input)  # (B, 38, H/8, W/8), (B, 19, H/8, W/8)
            pafs.append(paf)
            heatmaps.append(heatmap)
            stage_input = torch.cat([paf, heatmap, features], dim=1)  # the prototxt's concat_stage{t+1}: L, S, F
        return pafs, heatmaps

    def predict(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The last stage's (pafs, heatmaps), each (B, C, H/8, W/8)."""
        pafs, heatmaps = self(x)
        return pafs[-1], heatmaps[-1]


class OpenPosePAFFirst(nn.Module):
    """TPAMI'19 OpenPose: ``front`` (VGG-19 + CPM layers, PReLU from conv4_2 on), ``paf_stages`` then ``cm_stages``
    (:class:`SingleBranchStage`). ``forward(x)`` gives ([L^1..L^{T_P}], [S^1..S^{T_C}]); ``predict(x)`` the last two.

    L^1 = phi(F), L^t = phi(F, L^{t-1}); S^1 = rho(F, L^{T_P}), S^t = rho(F, S^{t-1}, L^{T_P}) (concatenated in
    BODY_25's order). The first stage of each kind is 96 wide with a 256 1x1, later ones 128 wide with a 512 1x1.
    BODY_25 (52 PAF, 26 map channels, 4PAF-2CM): 26,166,084 parameters, 80.6e9 multiply-adds at 368x368. Cao et al.,
    TPAMI 2019, §3.1, Fig. 3, Table 5; chapter 08.
    """

    def __init__(self, paf_stages: int = 4, cm_stages: int = 2, width: float = 1.0, num_pafs: int = 38,
                 num_heatmaps: int = 19):
        super().__init__()
        _check_count("OpenPosePAFFirst", "paf_stages", paf_stages, 1, "Fig. 3 uses 4")
        _check_count("OpenPosePAFFirst", "cm_stages", cm_stages, 1, "Fig. 3 uses 2")
        _check_width("OpenPosePAFFirst", width)
        _check_heads("OpenPosePAFFirst", num_pafs, num_heatmaps)
        self.num_pafs, self.num_heatmaps, self.width = num_pafs, num_heatmaps, float(width)
        self.front = VGG19Front(width, prelu=True)
        c = self.front.out_channels

        def stage(in_channels: int, out_channels: int, first: bool) -> SingleBranchStage:
            return SingleBranchStage(in_channels, out_channels, channels=scaled(96 if first else 128, width),
                                     mid_channels=scaled(256 if first else 512, width))

        self.paf_stages = nn.ModuleList(stage(c if t == 0 else c + num_pafs, num_pafs, first=t == 0)
                                        for t in range(paf_stages))
        self.cm_stages = nn.ModuleList(stage(c + num_pafs if t == 0 else c + num_heatmaps + num_pafs, num_heatmaps,
                                             first=t == 0)
                                       for t in range(cm_stages))

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        features = self.front(_check_input("OpenPosePAFFirst", x))  # F: (B, 128 x width, H/8, W/8)
        pafs = [self.paf_stages[0](features)]  # (B, num_pafs, H/8, W/8)
        for stage in self.paf_stages[1:]:
            pafs.append(stage(torch.cat([features, pafs[-1]], dim=1)))
        heatmaps = [self.cm_stages[0](torch.cat([features, pafs[-1]], dim=1))]  # (B, num_heatmaps, H/8, W/8)
        for stage in self.cm_stages[1:]:
            heatmaps.append(stage(torch.cat([features, heatmaps[-1], pafs[-1]], dim=1)))
        return pafs, heatmaps

    def predict(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The last PAF stage's PAFs and the last confidence-map stage's maps, each (B, C, H/8, W/8)."""
        pafs, heatmaps = self(x)
        return pafs[-1], heatmaps[-1]


def _check_count(owner: str, name: str, value, minimum: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name}={value!r}; expected an int >= {minimum} ({hint})")


def _check_width(owner: str, width) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"{owner}: width={width!r}; expected a number > 0 that scales every channel count (1.0 is "
                         f"the paper's, 0.25 the CPU variant)")


def _check_heads(owner: str, num_pafs, num_heatmaps) -> None:
    if isinstance(num_pafs, bool) or not isinstance(num_pafs, int) or num_pafs < 2 or num_pafs % 2:
        raise ValueError(f"{owner}: num_pafs={num_pafs!r}; expected an even int >= 2, an (x, y) pair per limb "
                         f"(COCO-18: 38, BODY_25: 52)")
    _check_count(owner, "num_heatmaps", num_heatmaps, 1, "COCO-18: 19, BODY_25: 26, the background included")


def _check_input(owner: str, x: Tensor) -> Tensor:
    # three 2x2 max-pools: H and W must divide by 8 for the maps to lie on the targets' grid (pad as the demo does)
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % STRIDE or x.shape[-1] % STRIDE or min(x.shape[-2:]) == 0:
        raise ValueError(f"{owner} expects input (B, 3, H, W) with H and W positive multiples of {STRIDE} (e.g. "
                         f"368x368), got {tuple(x.shape)}")
    return x

