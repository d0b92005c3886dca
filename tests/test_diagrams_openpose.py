"""OpenPose's diagram is read from the model: the front (VGG-19 or the ResNet stand-in) and F's channels and size, one
stage per stage of the model with its branches' convs, kernels and widths, the maps each stage reads and predicts
(CVPR'17: L^t and S^t side by side; TPAMI'19: the PAF stages, then the CM stages reading L^{T_P}), a loss on every
output; six stages fit a 10-inch figure, and wrong input is refused naming what was expected."""
import matplotlib
import pytest
import torch
from torch import nn

from posebook.diagrams import openpose_diagram as exported_diagram
from posebook.diagrams.openpose import LAST_L_COLOR, openpose_diagram, openpose_layout
from posebook.models import create

matplotlib.use("Agg")


def on_meta(name="openpose", **kwargs):
    with torch.device("meta"):
        return create(name, **kwargs)


def labels(d, start: str) -> list[str]:
    return [b.label for b in d.boxes if b.label.startswith(start)]


def notes(d, text: str) -> list:
    return [n for n in d.notes if n[2] == text]


def test_cvpr17_paper_model_six_two_branch_stages_read_from_the_modules():
    model = on_meta()
    d = openpose_layout(model)
    assert d.paper == "CVPR'17"
    assert len(d.stages) == len(model.stages) == 6 and len(d.frames) == 6
    assert [s["name"] for s in d.stages] == [f"stage {t}" for t in range(1, 7)]
    paf = [s["branches"][0] for s in d.stages]
    cm = [s["branches"][1] for s in d.stages]
    assert [b["kernel"] for b in paf] == [b["kernel"] for b in cm] == [3, 7, 7, 7, 7, 7]  # 7x7 from stage 2 on
    assert [b["convs"] for b in paf] == [3, 5, 5, 5, 5, 5]
    assert [b["mid_channels"] for b in paf] == [512] + [128] * 5
    assert {b["out_channels"] for b in paf} == {model.num_pafs}
    assert {b["out_channels"] for b in cm} == {model.num_heatmaps}
    # one box per branch, the kernel in its label; the maps with their channels
    assert len(labels(d, "3 x 3x3, 128\n1x1, 512")) == 2 and len(labels(d, "5 x 7x7, 128\n1x1, 128")) == 10
    assert len([b for b in d.boxes if b.label.startswith("L$^") and b.label.endswith(": 38 ch")]) == 6
    assert len([b for b in d.boxes if b.label.startswith("S$^") and b.label.endswith(": 19 ch")]) == 6
    # what each stage reads: F, then concat(L^{t-1}, S^{t-1}, F) with its channels
    assert d.stages[0]["reads"] == ["F"] and d.stages[3]["reads"] == ["L^3", "S^3", "F"]
    assert [s["in_channels"] for s in d.stages] == [st.in_channels for st in model.stages] == [128] + [185] * 5
    assert len(notes(d, "concat 185")) == 5 and len(notes(d, "128")) == 1
    # intermediate supervision: a loss on both maps of every stage
    assert d.losses == [f"{m}^{t}" for t in range(1, 7) for m in "LS"] and len(notes(d, "loss")) == 12
    # the paper's front: VGG-19 conv1_1..conv4_2 and the two CPM layers, F = 128 x 46x46 at 368x368
    assert d.front["name"] == "VGG-19" and d.front["channels"] == 128 and d.front["size"] == (46, 46)
    assert d.front["layers"][0] == "conv1_1" and d.front["layers"][-3:] == ["conv4_2", "conv4_3_CPM", "conv4_4_CPM"]
    assert d.front["pools"] == 3 and not d.front["prelu"]
    assert labels(d, "VGG-19\nconv1_1..conv4_2\n10 convs 3x3") and labels(d, "F: 128 ch\n46x46 (1/8)")
    assert labels(d, "image\n3 x 368x368")


def test_the_chapter_cpu_network_draws_its_resnet_front_and_3x3_stages():
    model = create("openpose", stages=3, width=0.25, later_kernel=3, front="resnet")  # real weights, on the CPU
    d = openpose_layout(model, (256, 192))
    assert len(d.stages) == 3 and len(d.frames) == 3
    assert [s["branches"][0]["kernel"] for s in d.stages] == [3, 3, 3]
    assert {s["branches"][0]["channels"] for s in d.stages} == {32}
    assert d.front["name"] == "ResNet" and d.front["block"] == "Bottleneck" and d.front["channels"] == 32
    with torch.no_grad():
        f = model.front(torch.zeros(1, 3, 256, 192))
    assert d.front["size"] == tuple(f.shape[-2:]) == (32, 24)
    assert labels(d, "ResNet trunk /16\nconv1..layer2\n3 + 4 Bottleneck") and not labels(d, "VGG-19")
    assert labels(d, "F: 32 ch\n32x24 (1/8)") and [n[2] for n in d.notes if n[2].startswith("stage ")] == [
        "stage 1 (3x3)", "stage 2 (3x3)", "stage 3 (3x3)"]
    assert len(notes(d, f"concat {32 + 38 + 19}")) == 2


@pytest.mark.parametrize("size", [(368, 368), (256, 192), (120, 64)])
@pytest.mark.parametrize("front", ["vgg19", "resnet"])
def test_f_size_is_what_the_front_computes(size, front):
    model = on_meta(stages=2, width=0.25, front=front)
    d = openpose_layout(model, size)
    assert d.front["size"] == tuple(model.front(torch.empty(1, 3, *size, device="meta")).shape[-2:])
    assert labels(d, "image")[0] == f"image\n3 x {size[0]}x{size[1]}"


def test_changing_the_model_changes_the_drawing():
    six, two = openpose_layout(on_meta(width=0.25)), openpose_layout(on_meta(stages=2, width=0.25))
    assert len(two.stages) == 2 and len(two.losses) == 4 and len(two.frames) == 2
    assert len(six.boxes) - len(two.boxes) == 4 * 5  # per stage: a bar, two branches, two maps
    body25 = openpose_layout(on_meta(stages=2, width=0.5, num_pafs=52, num_heatmaps=26, later_kernel=5))
    assert len([b for b in body25.boxes if b.label.endswith(": 52 ch")]) == 2
    assert len([b for b in body25.boxes if b.label.endswith(": 26 ch")]) == 2
    assert labels(body25, "5 x 5x5, 64") and body25.stages[1]["in_channels"] == 52 + 26 + 64
    assert labels(body25, "F: 64 ch")


def test_tpami19_paf_stages_then_cm_stages():
    model = on_meta("openpose_paf_first")
    d = openpose_layout(model)
    assert d.paper == "TPAMI'19" and not d.frames
    assert [s["name"] for s in d.stages] == ["PAF stage 1", "PAF stage 2", "PAF stage 3", "PAF stage 4",
                                             "CM stage 1", "CM stage 2"]
    boxes = [s["box"] for s in d.stages]
    assert [b.x for b in boxes] == sorted(b.x for b in boxes)  # drawn left to right in forward order
    assert d.losses == ["L^1", "L^2", "L^3", "L^4", "S^1", "S^2"] and len(notes(d, "loss")) == 6
    info = [s["branches"][0] for s in d.stages]
    assert [b["blocks"] for b in info] == [5] * 6
    assert {b["convs"] for b in info} == {3} and {b["kernel"] for b in info} == {3}  # 3 x 3x3 per block
    assert [b["channels"] for b in info] == [96, 128, 128, 128, 96, 128]
    assert [b["concat_channels"] for b in info] == [288, 384, 384, 384, 288, 384]
    assert [b["mid_channels"] for b in info] == [256, 512, 512, 512, 256, 512]
    assert [b["out_channels"] for b in info] == [38] * 4 + [19] * 2
    assert [s["reads"] for s in d.stages] == [["F"], ["F", "L^1"], ["F", "L^2"], ["F", "L^3"], ["F", "L^4"],
                                              ["F", "S^1", "L^4"]]
    assert [s["in_channels"] for s in d.stages] == [128, 166, 166, 166, 166, 185]
    assert labels(d, "5 blocks of\n3 x 3x3, 96\nconcat \u2192 288\n1x1, 256\n1x1 \u2192 38")
    assert d.front["name"] == "VGG-19" and d.front["prelu"] and labels(d, "VGG-19")[0].endswith("PReLU from conv4_2")


def test_tpami19_last_paf_goes_into_every_cm_stage():
    d = openpose_layout(on_meta("openpose_paf_first", paf_stages=2, cm_stages=3, width=0.25))
    assert [s["name"] for s in d.stages][2:] == ["CM stage 1", "CM stage 2", "CM stage 3"]
    assert [s["reads"] for s in d.stages][2:] == [["F", "L^2"], ["F", "S^1", "L^2"], ["F", "S^2", "L^2"]]
    into = [a for a in d.arrows if a[4] == LAST_L_COLOR and a[3] == "-|>"]
    assert len(into) == 2  # over the top into CM stages 2 and 3 (CM stage 1 takes it as its previous stage's)
    assert sorted(round(a[1][0], 6) for a in into) == sorted(round(b.x, 6) for b in
                                                               [b for b in d.boxes if b.label == ""][3:])
    assert any("CM stages (3)" in n[2] and "L$^{2}$" in n[2] for n in d.notes)
    one = openpose_layout(on_meta("openpose_paf_first", paf_stages=1, cm_stages=1, width=0.25))
    assert len(one.stages) == 2 and not [a for a in one.arrows if a[4] == LAST_L_COLOR]


def test_bad_input_is_refused_naming_what_was_expected():
    with pytest.raises(TypeError, match="openpose_layout: expected an OpenPose or OpenPosePAFFirst"):
        openpose_layout(nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError, match="got HRNet"):
        openpose_diagram(on_meta("hrnet", width=8))
    model = on_meta(stages=1, width=0.25)
    for bad in [(368,), (368, 368, 3), (16, 16), (370, 368), (368.5, 368), "368x368", None]:
        with pytest.raises(ValueError, match=r"input_size=.*expected \(H, W\).*divide by 8"):
            openpose_layout(model, bad)


@pytest.mark.parametrize("name", ["openpose", "openpose_paf_first"])
def test_the_paper_networks_draw_at_notebook_width_with_every_label_inside_its_box(name):
    import matplotlib.pyplot as plt

    model = on_meta(name)
    d = openpose_layout(model)
    ax = exported_diagram(model, title=name)
    fig = ax.figure
    width, height = fig.get_size_inches()
    assert width == 10.0 and 3.5 < height < 5.0  # six stages on a notebook-wide figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = {(round(t.get_position()[0], 6), round(t.get_position()[1], 6), t.get_text()): t for t in ax.texts}
    for b in d.boxes:
        if not b.label:
            continue
        extent = texts[round(b.x, 6), round(b.y, 6), b.label].get_window_extent(renderer)
        (x0, y0), (x1, y1) = ax.transData.transform([(b.x - b.w / 2, b.y - b.h / 2), (b.x + b.w / 2, b.y + b.h / 2)])
        assert extent.width <= x1 - x0 and extent.height <= y1 - y0, b.label
    plt.close("all")


def test_the_cpu_network_draws_on_a_given_axis():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(10, 4))
    model = on_meta(stages=3, width=0.25, later_kernel=3, front="resnet")
    assert openpose_diagram(model, ax=ax, title="chapter 08's network", input_size=(256, 192)) is ax
    assert len(ax.patches) > 30 and ax.get_title() == "chapter 08's network"
    plt.close("all")
