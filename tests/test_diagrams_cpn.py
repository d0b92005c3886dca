"""CPN's diagram is read from the model: ResNet stages with their bottlenecks and map sizes, GlobalNet's levels
(lateral, merge, predictor), RefineNet's branches and concatenation follow the modules and the input size, and wrong
input is refused naming what was expected."""
import matplotlib
import pytest
import torch
from torch import nn

from posebook.diagrams.cpn import cpn_diagram, cpn_layout
from posebook.models import create

matplotlib.use("Agg")


def on_meta(**kwargs):
    with torch.device("meta"):
        return create("cpn", **kwargs)


def labels(d, start: str) -> list[str]:
    return [b.label for b in d.boxes if b.label.startswith(start)]


def test_cpn_r50_stages_levels_and_branches():
    model = on_meta(depth=50)
    d = cpn_layout(model, (256, 192))
    assert [s["blocks"] for s in d.stages] == [3, 4, 6, 3]  # ResNet-50's res2..res5
    assert [s["channels"] for s in d.stages] == [256, 512, 1024, 2048]
    assert [s["size"] for s in d.stages] == [(64, 48), (32, 24), (16, 12), (8, 6)]
    assert [lv["level"] for lv in d.levels] == ["C5", "C4", "C3", "C2"]  # coarse to fine, as GlobalNet computes
    assert [lv["lateral"] for lv in d.levels] == [(2048, 256), (1024, 256), (512, 256), (256, 256)]
    assert [lv["merge"] for lv in d.levels] == [False, True, True, True]  # the coarsest level has nothing above it
    assert all(lv["predictor"] == (256, 17) for lv in d.levels)
    assert [b["bottlenecks"] for b in d.branches] == [3, 2, 1, 0]
    assert d.concat == 4 * 256 == model.refine_net.concat_channels
    assert not d.non_local
    # one box per lateral, predictor, GlobalNet heatmap, merge (+) and RefineNet branch
    assert len(labels(d, "lateral 1x1")) == 4 and len(labels(d, "predictor")) == 4
    assert len(labels(d, "GlobalNet\nC")) == 4 and len(labels(d, "+")) == 3
    assert labels(d, "3 x Bottl.") and labels(d, "0 Bottl.") and len(labels(d, "concat\n1024 ch")) == 1
    assert labels(d, "Bottl.\n1024\u2192128\n\u2192256") and labels(d, "RefineNet\nheatmaps\n17 x 64x48")


@pytest.mark.parametrize("size", [(256, 192), (128, 96), (100, 76), (384, 288)])
def test_map_sizes_are_those_the_backbone_computes(size):
    model = on_meta(depth=50, width=8, pyramid_channels=32)
    features = model.backbone.features(torch.empty(1, 3, *size, device="meta"))
    d = cpn_layout(model, size)
    assert [s["size"] for s in d.stages] == [tuple(features[s].shape[-2:]) for s in (4, 8, 16, 32)]
    assert [s["stride"] for s in d.stages] == [4, 8, 16, 32]
    assert labels(d, "input")[0] == f"input\n3 x {size[0]}x{size[1]}"


def test_widths_and_depth_follow_the_model():
    d = cpn_layout(on_meta(depth=101, width=8, pyramid_channels=32), (128, 96))
    assert [s["blocks"] for s in d.stages] == [3, 4, 23, 3]
    assert [s["channels"] for s in d.stages] == [32, 64, 128, 256]
    assert [lv["lateral"] for lv in d.levels] == [(256, 32), (128, 32), (64, 32), (32, 32)]
    assert d.concat == 128 and labels(d, "concat\n128 ch")
    assert labels(d, "3 x Bottl.\n32\u219216\u219232")


def test_variants_of_the_study_draw_differently():
    plain = cpn_layout(on_meta(depth=50, width=8, pyramid_channels=32), (128, 96))
    non_local = cpn_layout(on_meta(depth=50, width=8, pyramid_channels=32, non_local=True), (128, 96))
    assert non_local.non_local and len(labels(non_local, "non-local")) == 1 and not labels(plain, "non-local")
    assert len(non_local.boxes) == len(plain.boxes) + 1
    globalnet = cpn_layout(on_meta(depth=50, width=8, pyramid_channels=32, refine=False), (128, 96))
    assert globalnet.branches == [] and globalnet.concat is None
    assert not labels(globalnet, "concat") and not labels(globalnet, "RefineNet")
    assert len(labels(globalnet, "GlobalNet\nC")) == 4


def test_bad_input_is_refused_naming_what_was_expected():
    with pytest.raises(TypeError, match="cpn_layout: expected a CPN"):
        cpn_layout(nn.Conv2d(3, 3, 1))
    model = on_meta(depth=50, width=8, pyramid_channels=32)
    for bad in [(256,), (256, 192, 3), (16, 16), (256.5, 192), "256x192", None]:
        with pytest.raises(ValueError, match=r"input_size=.*expected \(H, W\)"):
            cpn_layout(model, bad)


def test_the_whole_network_draws_on_a_given_axis():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    drawn = cpn_diagram(on_meta(depth=50), (256, 192), ax=ax)
    assert drawn is ax and len(ax.patches) > 40
    plt.close("all")


def test_labels_are_drawn_larger_than_the_base_default():
    # the page scales the wide figure down by about half: the labels are drawn at FONTSIZE, not Diagram's 8
    import matplotlib

    matplotlib.use("Agg")
    from posebook.diagrams.cpn import FONTSIZE, cpn_diagram

    ax = cpn_diagram(on_meta(depth=50), (256, 192))
    sizes = {t.get_fontsize() for t in ax.texts if "lateral" in t.get_text()}
    assert FONTSIZE >= 9 and sizes == {FONTSIZE}
