"""CPN (Chen, Wang, Peng, Zhang, Yu, Sun, "Cascaded Pyramid Network for Multi-Person Pose Estimation", CVPR 2018).

A ResNet gives C2..C5; GlobalNet (§3.2.1) builds a feature pyramid on them and predicts heatmaps at every level;
RefineNet (§3.2.2) refines the pyramid and predicts the final heatmaps, trained with online hard keypoint mining
(§3.2.2). ``forward(x)`` returns a list of five heatmaps (B, K, H/4, W/4): GlobalNet's four, coarse to fine
(C5, C4, C3, C2), then RefineNet's; ``MultiOutputLoss`` takes that list as it is, with one target per output from
``TopDownDataset(codec=cpn_codecs(...))``. ``predict(x)`` returns RefineNet's. Chapter 05 (CPN).

Cost of CPN-R50 at 256x192 (``posebook.bench``, conv multiply-adds / 2^30): 27,009,770 parameters (ResNet-50
23,508,032, GlobalNet 1,603,464, RefineNet 1,898,274) and 6.73 GFLOPs (ResNet 3.73, GlobalNet 1.00, RefineNet 2.01;
15.15 at 384x288), beside 27.0M (HRNet's Table 1; CPN gives no count) and CPN Table 3's 6.20 (Table 8: 13.9 at
384x288). The parameters agree: the wiring is the official code's. The GFLOPs are 8.6% higher: the paper does not
say how it counts, and its own ResNet-50 row (3.54) is already below our backbone's 3.73; the rest is GlobalNet's
per-level predictors (1x1 and 3x3 convs on every level at full output size), which our count includes whole.

Targets: the GlobalNet levels get blur kernels 15, 11, 9, 7 from the coarsest (C5) to the finest (C2), RefineNet 7.
The official TensorFlow code zips its outputs, ordered C2..C5, with kernels 15/11/9/7, so there the finest level gets
15; a comment there calls this order reversed from what was meant, kept only to reproduce the released model. The
PyTorch port and the authors' later MSPN (coarse-to-fine supervision, Li et al. 2019) give the coarsest level the
widest kernel, as here: a stride-32 level cannot place a joint finer than its stride, so it gets the widest target
and the finest level the tightest. ``cpn_codecs(global_kernels=(7, 9, 11, 15))`` reproduces the released order.

Loss, as the official code: L2 on the GlobalNet outputs (the sum of the four, divided by 4, halved) plus OHKM
(top-8) on RefineNet's, the official OHKM term carrying no 0.5, as one object:
``MultiOutputLoss([JointsMSELoss()] * 4 + [JointsOHKMMSELoss(topk=8)], weights=[0.25] * 4 + [2.0])`` on the five
outputs (equal to the official total: ``tests/test_losses.py``). The targets peak at 255, as the official code's
(``PEAK``): every predictor ends in a BatchNorm, whose unit-variance output would swamp a peak-1 target (chapter 06
measures it on MSPN, whose predictors are built the same way). The official GlobalNet target zeroes joints not
labelled visible (v < 2) but still penalises them; RefineNet's masks unlabelled ones.
"""
from __future__ import annotations

from torch import Tensor, nn

from posebook.blocks.cpn import GlobalNet, NonLocalBlock, RefineNet
from posebook.blocks.resnet import ResNet
from posebook.codecs.blur import OFFICIAL_PEAK, BlurHeatmap

DEPTHS = (50, 101, 152)  # the bottleneck ResNets: C2..C5 = 256/512/1024/2048 channels
GLOBAL_KERNELS = (15, 11, 9, 7)  # GlobalNet targets, coarse (C5) to fine (C2)
REFINE_KERNEL = 7
PEAK = OFFICIAL_PEAK  # CPN-TF draws its targets peaking at 255; GlobalNet's and RefineNet's predictors end in a BN


class CPN(nn.Module):
    """ResNet-``depth`` + GlobalNet + RefineNet; ``non_local=True`` puts a :class:`NonLocalBlock` on C5.
    ``width`` (the ResNet's, 64) and ``pyramid_channels`` (GlobalNet's and RefineNet's, 256) are the paper's by
    default; the cpu studies narrow both.

    ``forward`` gives [GlobalNet C5, C4, C3, C2 heatmaps, RefineNet heatmaps], each (B, K, H/4, W/4); ``predict``
    the last. ``refine=False`` drops RefineNet (the paper's "GlobalNet only"): four outputs, ``predict`` the C2 one. Chen et al., CVPR 2018, §3.2 and Fig. 1; chapter 05.
    """

    def __init__(self, depth: int = 50, num_joints: int = 17, non_local: bool = False, width: int = 64,
                 pyramid_channels: int = 256, refine: bool = True):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"CPN depth={depth!r} is not one of {list(DEPTHS)} (CPN uses bottleneck ResNets)")
        if not isinstance(num_joints, int) or num_joints < 1:
            raise ValueError(f"CPN num_joints={num_joints!r}: expected a positive int")
        for name, value in (("non_local", non_local), ("refine", refine)):
            if not isinstance(value, bool):
                raise ValueError(f"CPN {name}={value!r}: expected True or False")
        self.depth, self.num_joints = depth, num_joints
        self.backbone = ResNet(depth, width)
        channels = self.backbone.feature_channels  # {4: 256, 8: 512, 16: 1024, 32: 2048}
        self.non_local = NonLocalBlock(channels[32]) if non_local else None
        self.global_net = GlobalNet(tuple(channels[s] for s in sorted(channels)), pyramid_channels, num_joints)
        # refine=False: "GlobalNet only" of the paper's Table 3, predicting from its finest level
        self.refine_net = RefineNet(pyramid_channels, num_joints, bottlenecks=(3, 2, 1, 0)) if refine else None

    def features(self, x: Tensor) -> dict[int, Tensor]:
        """C2..C5 by stride, the non-local block (if any) applied to C5. Chapter 05."""
        features = self.backbone.features(x)
        if self.non_local is not None:
            features[32] = self.non_local(features[32])
        return features

    def forward(self, x: Tensor) -> list[Tensor]:
        pyramid, global_heatmaps = self.global_net(self.features(x))  # both coarse to fine
        if self.refine_net is None:
            return global_heatmaps
        return [*global_heatmaps, self.refine_net(pyramid)]

    def predict(self, x: Tensor) -> Tensor:
        """RefineNet's heatmaps (B, K, H/4, W/4); without RefineNet, GlobalNet's finest level's."""
        pyramid = self.global_net.pyramid(self.features(x))
        if self.refine_net is None:
            return self.global_net.predictor[-1](pyramid[-1])  # the finest level: already at the output size
        return self.refine_net(pyramid)


def cpn_codecs(input_size=(256, 192), heatmap_size=(64, 48), global_kernels=GLOBAL_KERNELS,
               refine_kernel: int = REFINE_KERNEL, decode_kernel: int = 21, peak: float = PEAK,
               global_visible_only: bool = True) -> list[BlurHeatmap]:
    """One :class:`BlurHeatmap` per CPN output, in ``forward``'s order: GlobalNet C5..C2 (kernels 15, 11, 9, 7),
    then RefineNet (7, the one that decodes), targets peaking at 255 as CPN-TF's (every predictor ends in a
    BatchNorm; chapter 06 measures why the scale matters). Chen et al., CVPR 2018, §3.2; chapter 05.

    As the official code (tf-cpn ``network.py``: ``global_label = label * (valid > 1.1)``), GlobalNet's four targets
    draw only the joints labelled visible (v = 2) and penalise every joint, so an occluded joint is pushed towards an
    empty map; RefineNet's target draws every labelled joint, weighted by its label (``valid > 0.1``) and mined
    with OHKM. That is the paper's division of labour: the pyramid for the visible, easy keypoints, the refinement
    for the hard ones. ``global_visible_only=False`` draws every labelled joint in GlobalNet's targets too."""
    global_kernels = tuple(global_kernels)
    if len(global_kernels) != len(GLOBAL_KERNELS):
        raise ValueError(f"cpn_codecs global_kernels={global_kernels!r}: expected {len(GLOBAL_KERNELS)} kernels, "
                         f"one per GlobalNet level, coarse (C5) to fine (C2)")
    if not isinstance(global_visible_only, bool):
        raise ValueError(f"cpn_codecs global_visible_only={global_visible_only!r}: expected True or False")
    return ([BlurHeatmap(input_size, heatmap_size, kernel=k, decode_kernel=decode_kernel, peak=peak,
                         visible_only=global_visible_only)
             for k in global_kernels]
            + [BlurHeatmap(input_size, heatmap_size, kernel=refine_kernel, decode_kernel=decode_kernel, peak=peak)])
