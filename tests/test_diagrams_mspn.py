"""MSPN's diagram is read from the model: per stage the layers with their bottlenecks and map sizes, the upsampling
levels with the kernels of their supervision, and between stages the cross-stage skips and cross_conv, following the
modules and the input size; wrong input is refused naming what was expected."""
import matplotlib
import pytest
import torch
from torch import nn

from posebook.diagrams.mspn import mspn_diagram, mspn_layout
from posebook.models import create

matplotlib.use("Agg")


def on_meta(**kwargs):
    with torch.device("meta"):
        return create("mspn", **kwargs)


def labels(d, start: str) -> list[str]:
    return [b.label for b in d.boxes if b.label.startswith(start)]


def test_two_stage_mspn_layers_levels_skips_and_cross_conv():
    d = mspn_layout(on_meta(stages=2), (256, 192))
    assert len(d.stages) == 2
    for stage in d.stages:
        assert [x["blocks"] for x in stage["layers"]] == [3, 4, 6, 3]  # ResNet-50's layer1..layer4
        assert [x["channels"] for x in stage["layers"]] == [256, 512, 1024, 2048]
        assert [x["size"] for x in stage["layers"]] == [(64, 48), (32, 24), (16, 12), (8, 6)]
        assert [lv["stride"] for lv in stage["levels"]] == [32, 16, 8, 4]  # coarse to fine, as the unit computes
        assert all(lv["channels"] == 256 for lv in stage["levels"])
    assert [lv["kernel"] for lv in d.stages[0]["levels"]] == [15, 11, 9, 7]
    assert [lv["kernel"] for lv in d.stages[1]["levels"]] == [11, 9, 7, 5]  # the last stage shifts by one
    assert [lv["loss"] for lv in d.stages[1]["levels"]] == ["L2 x 1/4"] * 3 + ["OHKM top 8"]
    # the skips are added to the second stage's layer outputs only
    assert [x["skip_added"] for x in d.stages[0]["layers"]] == [False] * 4
    assert [x["skip_added"] for x in d.stages[1]["layers"]] == [True] * 4
    assert [s["stride"] for s in d.skips] == [4, 8, 16, 32]
    assert [s["down"] for s in d.skips] == [(256, 256), (512, 512), (1024, 1024), (2048, 2048)]
    assert [s["up"] for s in d.skips] == [(256, 256), (256, 512), (256, 1024), (256, 2048)]
    assert d.cross == [(256, 64)]  # the next stage starts from 64 channels at 1/4
    assert len(labels(d, "+")) == 4 and len(labels(d, "skips 1x1")) == 4 and len(labels(d, "cross_conv")) == 1
    assert len(labels(d, "heatmaps 17x64x48")) == 8


@pytest.mark.parametrize("size", [(256, 192), (128, 96), (100, 76)])
def test_map_sizes_are_those_the_model_computes(size):
    model = on_meta(stages=1, width=8)
    down = model.stages[0].downsample(model.stem(torch.empty(1, 3, *size, device="meta")))
    d = mspn_layout(model, size)
    assert [x["size"] for x in d.stages[0]["layers"]] == [tuple(down[s].shape[-2:]) for s in (4, 8, 16, 32)]
    assert labels(d, "input")[0] == f"input\n3 x {size[0]}x{size[1]}"


def test_variants_of_the_study_draw_differently():
    full = mspn_layout(on_meta(stages=2, width=8, channels=32), (128, 96))
    plain = mspn_layout(on_meta(stages=2, width=8, channels=32, aggregation=False), (128, 96))
    assert not plain.skips and not labels(plain, "skips") and not labels(plain, "+")
    assert plain.cross == full.cross == [(32, 8)]  # cross_conv hands over either way
    assert len(full.boxes) == len(plain.boxes) + 8
    one = mspn_layout(on_meta(stages=1, width=8, channels=32), (128, 96))
    assert len(one.stages) == 1 and not one.cross and [lv["kernel"] for lv in one.stages[0]["levels"]] == [11, 9, 7, 5]
    flat = mspn_layout(on_meta(stages=2, width=8, channels=32), (128, 96), coarse_to_fine=False)
    assert [lv["kernel"] for lv in flat.stages[1]["levels"]] == [15, 11, 9, 7]
    four = mspn_layout(on_meta(stages=4, width=8, channels=32), (128, 96))
    assert len(four.stages) == 4 and len(four.skips) == 12 and len(four.cross) == 3
    assert [x["channels"] for x in full.stages[0]["layers"]] == [32, 64, 128, 256]


def test_bad_input_is_refused_naming_what_was_expected():
    with pytest.raises(TypeError, match="mspn_layout: expected an MSPN"):
        mspn_layout(nn.Conv2d(3, 3, 1))
    model = on_meta(stages=1, width=8)
    for bad in [(256,), (256, 192, 3), (16, 16), (256.5, 192), "256x192", None]:
        with pytest.raises(ValueError, match=r"input_size=.*expected \(H, W\)"):
            mspn_layout(model, bad)


def test_the_whole_network_draws_on_a_given_axis():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    drawn = mspn_diagram(on_meta(stages=2), (256, 192), ax=ax)
    assert drawn is ax and len(ax.patches) > 40
    plt.close("all")
