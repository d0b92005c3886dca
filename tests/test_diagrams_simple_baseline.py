"""SimpleBaseline's diagram is read from the model: ResNet stages and blocks follow the depth, deconvolution boxes
follow the head, rows and sizes follow the traced shapes, and wrong input is refused naming what was expected."""
import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from posebook.diagrams.simple_baseline import simple_baseline_diagram, simple_baseline_layout  # noqa: E402
from posebook.models import create  # noqa: E402


def on_meta(**kwargs):
    with torch.device("meta"):  # only the structure and the shapes are read: no weights are allocated
        return create("simple_baseline", **kwargs)


def test_the_paper_model_goes_down_to_stride_32_and_back_to_stride_4():
    d = simple_baseline_layout(on_meta(depth=50), (256, 192))
    assert [s.name for s in d.stages] == ["stem", "layer1", "layer2", "layer3", "layer4", "deconv1", "deconv2",
                                          "deconv3", "final_layer"]
    assert [s.stride for s in d.stages] == [4, 4, 8, 16, 32, 16, 8, 4, 4]
    assert [s.size for s in d.stages] == [(64, 48), (64, 48), (32, 24), (16, 12), (8, 6), (16, 12), (32, 24),
                                          (64, 48), (64, 48)]
    assert [s.channels for s in d.of_kind("residual")] == [256, 512, 1024, 2048]
    assert [s.channels for s in d.of_kind("upsample")] == [256, 256, 256]
    assert d.stages[-1].channels == 17


@pytest.mark.parametrize("depth,blocks,name", [(18, [2, 2, 2, 2], "BasicBlock"), (50, [3, 4, 6, 3], "Bottleneck"),
                                               (152, [3, 8, 36, 3], "Bottleneck")])
def test_residual_boxes_name_the_blocks_of_the_depth(depth, blocks, name):
    d = simple_baseline_layout(on_meta(depth=depth), (256, 192))
    labels = [b.label for b in d.boxes if b.kind == "residual"]
    assert len(labels) == 4
    assert [label.split("\n")[1] for label in labels] == [f"{n} x {name}" for n in blocks]


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_one_upsample_box_per_deconvolution_of_the_head(layers):
    d = simple_baseline_layout(on_meta(depth=18, deconv_layers=layers, deconv_channels=32, num_joints=5),
                               (128, 96))
    ups = [b for b in d.boxes if b.kind == "upsample"]
    assert len(ups) == len(d.of_kind("upsample")) == layers
    assert all(label.startswith("deconv 4x4\ns2 p1\nBN ReLU\n32 ch") for label in (b.label for b in ups))
    assert d.stages[-1].stride == 32 // 2 ** layers  # each deconvolution doubles the resolution
    assert any(b.kind == "heatmap" and b.label.startswith("5 heatmaps") for b in d.boxes)


def test_rows_follow_the_strides_and_the_bottom_is_layer4():
    d = simple_baseline_layout(on_meta(depth=50), (256, 192))
    rows = {s.stride: None for s in d.stages}
    assert sorted(rows) == [4, 8, 16, 32]
    drawn = [b for b in d.boxes if b.kind in ("conv", "residual", "upsample")]
    assert len(drawn) == len(d.stages)
    by_stride = {}
    for box, stage in zip(drawn, d.stages):
        by_stride.setdefault(stage.stride, set()).add(round(box.y, 6))
    assert all(len(ys) == 1 for ys in by_stride.values())  # one row per stride
    assert sorted(by_stride, key=lambda s: -next(iter(by_stride[s]))) == [4, 8, 16, 32]  # finer rows above
    assert min(drawn, key=lambda b: b.y).label.startswith("layer4")
    assert sorted(n[2] for n in d.notes if n[2].startswith("1/")) == ["1/16", "1/32", "1/4", "1/8"]


def test_sizes_are_traced_for_the_input_size_and_width_is_read():
    d = simple_baseline_layout(on_meta(depth=18, width=8, deconv_channels=16), (384, 288))
    assert d.stages[4].size == (12, 9) and d.stages[-1].size == (96, 72)
    assert [s.channels for s in d.of_kind("residual")] == [8, 16, 32, 64]
    odd = simple_baseline_layout(on_meta(depth=18, width=8, deconv_channels=16), (100, 75))  # no power of two
    assert odd.stages[4].size == (4, 3) and odd.stages[-1].size == (32, 24)
    assert [s.stride for s in odd.stages] == [4, 4, 8, 16, 32, 16, 8, 4, 4]


def test_a_model_with_weights_is_traced_and_left_in_its_mode():
    model = create("simple_baseline", depth=18, width=8, deconv_channels=16, num_joints=3).train()
    d = simple_baseline_layout(model, (64, 64))
    assert model.training and d.stages[-1].size == (16, 16)


def test_bad_input_is_refused_naming_what_was_expected():
    with pytest.raises(TypeError, match="expected a SimpleBaseline"):
        simple_baseline_layout(nn.Conv2d(3, 3, 1), (256, 192))
    with torch.device("meta"):
        hrnet = create("hrnet", width=8)
    with pytest.raises(TypeError, match="got HRNet"):
        simple_baseline_diagram(hrnet, (256, 192))
    for bad in [(256,), (256, 192.0), 256, (16, 16), (256, True)]:
        with pytest.raises(ValueError, match="input_size"):
            simple_baseline_layout(on_meta(depth=18), bad)


def test_the_whole_network_draws_on_a_given_axis_and_returns_it():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert simple_baseline_diagram(on_meta(depth=50), (256, 192), ax=ax) is ax
    assert ax.get_title().startswith("SimpleBaseline-R50")
    assert len(ax.patches) >= 11 + 10  # boxes and arrows
    assert any("8x6" in t.get_text() for t in ax.texts)
    plt.close(fig)
