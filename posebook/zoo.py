"""The book's networks at the papers' sizes, with the papers' own figures beside them: the rows of
``python -m posebook.bench models`` (and of chapter 09's side-by-side table).

Each :class:`ZooEntry` names a registered model (``posebook.models.create(model, **kwargs)``), the input it is
measured at, and what the paper reports for it: parameters, GFLOPs (the papers' convention, conv + linear
multiply-adds / 2^30, HRNet's ``get_model_summary``: see :func:`posebook.bench.conv_macs`) and COCO AP in percent,
as printed. A figure the paper does not give is ``None``. The figures and their sources are those collected in
``shared/docs/PAPERS.md`` §0 (checked against the papers' tables): HRNet = Sun et al., CVPR 2019, Tables 1 (COCO
val2017, 256x192 and 384x288) and 4 (MPII, 256x256); CPN = Chen et al., CVPR 2018, Table 3; MSPN = Li et al. 2019
(arXiv 1901.00148) through its official README (AP) and a second-hand summary of its table (GFLOPs); OpenPose = Cao
et al., TPAMI 2019, Tables 3-5 (COCO val2017, bottom-up on whole images, so not a top-down crop's AP).

What the counts of posebook's networks give beside these (``python -m posebook.bench models --no-latency``):
HRNet equals the paper to the rounding, SimpleBaseline in parameters and within 1% in GFLOPs (8.99, 12.38, 15.76
beside 8.90, 12.4, 15.7); the 8-stack Hourglass has the paper's parameters (25.4M beside 25.1M) but 25.56 GFLOPs at
256x256 where HRNet's Table 4 prints 19.1 (CPN's Table 8 gives 25.9: PAPERS.md §0 discusses it); CPN-R50 (6.73
beside 6.20) and MSPN (4.72-22.02 beside 4.4-19.9) come out 7-11% above the papers' GFLOPs, as the official PyTorch
ports do. Chapters 03-09.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class ZooEntry:
    """One row: the registered ``model`` built with ``kwargs``, measured at ``input_size`` (H, W); the paper's
    ``paper_params`` (a count, e.g. 28.5e6), ``paper_gflops`` (2^30 multiply-adds) and ``paper_ap`` (COCO AP in
    percent), ``None`` where the paper gives none; ``source`` says where each figure comes from."""

    name: str
    model: str
    kwargs: dict = field(default_factory=dict)
    input_size: tuple[int, int] = (256, 192)
    paper_params: float | None = None
    paper_gflops: float | None = None
    paper_ap: float | None = None
    source: str = ""

    def build(self) -> nn.Module:
        """The network, freshly initialised (under ``with torch.device("meta"):`` shapes only)."""
        from posebook.models import create

        return create(self.model, **self.kwargs)


_HRNET_T1 = "HRNet CVPR'19 Table 1 (COCO val2017)"
_MSPN = ("MSPN official README (COCO minival AP); GFLOPs second-hand from a summary of the paper's table; "
         "no parameter count published")

ZOO: tuple[ZooEntry, ...] = (
    # Stacked Hourglass (Newell et al., ECCV 2016) at its MPII size with MPII's 16 joints. HRNet's Table 4 lists
    # the 8-stack network at 25.1M / 19.1 GFLOPs (MPII PCKh@0.5 90.9: no COCO AP at 256x256); no paper gives the
    # 2-stack network's cost.
    ZooEntry("hourglass_2stack_256x256", "hourglass", dict(stacks=2, num_joints=16), (256, 256),
             source="no paper figure for 2 stacks (MPII, 16 joints)"),
    ZooEntry("hourglass_8stack_256x256", "hourglass", dict(stacks=8, num_joints=16), (256, 256),
             25.1e6, 19.1, None, "HRNet CVPR'19 Table 4 (MPII, 16 joints; PCKh@0.5 90.9, no COCO AP); CPN Table 8 "
                                 "gives 25.9 GFLOPs at 256x256"),
    # SimpleBaseline (Xiao et al., ECCV 2018), three deconvolutions of 256 on a ResNet
    ZooEntry("simple_baseline_r50_256x192", "simple_baseline", dict(depth=50), (256, 192), 34.0e6, 8.90, 70.4,
             _HRNET_T1),
    ZooEntry("simple_baseline_r101_256x192", "simple_baseline", dict(depth=101), (256, 192), 53.0e6, 12.4, 71.4,
             _HRNET_T1),
    ZooEntry("simple_baseline_r152_256x192", "simple_baseline", dict(depth=152), (256, 192), 68.6e6, 15.7, 72.0,
             _HRNET_T1),
    # CPN (Chen et al., CVPR 2018) ResNet-50: 69.4 AP with online hard keypoint mining (68.6 without)
    ZooEntry("cpn_r50_256x192", "cpn", dict(depth=50), (256, 192), 27.0e6, 6.20, 69.4,
             "HRNet CVPR'19 Table 1 and CPN CVPR'18 Table 3 (COCO minival, with OHKM; 68.6 without)"),
    # MSPN (Li et al. 2019), ResNet-50 stages
    *(ZooEntry(f"mspn_{s}stage_256x192", "mspn", dict(stages=s), (256, 192), None, gf, ap, _MSPN)
      for s, gf, ap in ((1, 4.4, 71.5), (2, 9.6, 74.5), (3, 14.7, 75.2), (4, 19.9, 75.9))),
    # HRNet (Sun et al., CVPR 2019)
    ZooEntry("hrnet_w32_256x192", "hrnet_w32", {}, (256, 192), 28.5e6, 7.10, 74.4, _HRNET_T1),
    ZooEntry("hrnet_w32_384x288", "hrnet_w32", {}, (384, 288), 28.5e6, 16.0, 75.8, _HRNET_T1),
    ZooEntry("hrnet_w48_256x192", "hrnet_w48", {}, (256, 192), 63.6e6, 14.6, 75.1, _HRNET_T1),
    ZooEntry("hrnet_w48_384x288", "hrnet_w48", {}, (384, 288), 63.6e6, 32.9, 76.3, _HRNET_T1),
    # OpenPose: bottom-up on whole images (the AP is not a crop's); neither paper gives parameters or GFLOPs
    ZooEntry("openpose_cvpr17_368x368", "openpose", {}, (368, 368), None, None, 58.4,
             "OpenPose TPAMI'19 Tables 3-4 (COCO val2017, the CVPR'17 model; 61.8 on test-dev)"),
    ZooEntry("openpose_tpami19_368x368", "openpose_paf_first",
             dict(paf_stages=4, cm_stages=2, num_pafs=52, num_heatmaps=26), (368, 368), None, None, 65.2,
             "OpenPose TPAMI'19 Table 5 (COCO val2017, 4PAF-2CM; BODY_25's 52 PAF and 26 map channels)"),
)


def entries(only: list[str] | tuple[str, ...] | None = None) -> list[ZooEntry]:
    """The rows of :data:`ZOO` in order; ``only``: those whose name equals one of the given names or starts with it
    followed by ``_`` (``"hrnet_w32"`` selects both of its sizes). A name that selects nothing raises a
    ``ValueError`` listing the rows. Chapter 09."""
    if not only:
        return list(ZOO)
    unknown = [n for n in only if not any(e.name == n or e.name.startswith(n + "_") for e in ZOO)]
    if unknown:
        raise ValueError(f"no model row named {', '.join(map(repr, unknown))}; rows: "
                         f"{', '.join(e.name for e in ZOO)}")
    return [e for e in ZOO if any(e.name == n or e.name.startswith(n + "_") for n in only)]
