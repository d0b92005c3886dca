"""The hourglass diagrams are read from the model: levels and pools follow the recursion order, stacks and merges
follow the stacked model, and a wrong argument is named."""
import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from posebook import models  # noqa: E402
from posebook.blocks import Hourglass, Residual  # noqa: E402
from posebook.diagrams.hourglass import (hourglass_diagram, hourglass_layout, stacked_diagram,  # noqa: E402
                                         stacked_layout)


def kinds(diagram, kind, label=None):
    return [b for b in diagram.boxes if b.kind == kind and (label is None or label in b.label)]


def stacked(stacks, order=2):
    with torch.device("meta"):  # only the structure is read: no weights are allocated
        return models.create("hourglass", stacks=stacks, channels=16, num_joints=5, order=order)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_hourglass_has_one_pool_upsample_skip_and_sum_per_level(order):
    d = hourglass_layout(Hourglass(order, 8))
    assert len(kinds(d, "pool")) == order
    assert len(kinds(d, "upsample")) == order
    assert len(kinds(d, "add")) == order
    for name in ("up1", "low1", "low3"):
        assert len(kinds(d, "residual", name)) == order, name
    assert len(kinds(d, "residual", "low2")) == 1  # only the innermost low2 is a Residual
    assert len({round(b.y, 6) for b in d.boxes if b.kind == "residual"}) == order + 1  # one row per resolution


def test_order_four_goes_deeper_than_order_two():
    shallow, deep = hourglass_layout(Hourglass(2, 8)), hourglass_layout(Hourglass(4, 8))
    assert min(b.y for b in deep.boxes) < min(b.y for b in shallow.boxes)


def test_hourglass_rows_are_labelled_with_the_pooled_sizes():
    d = hourglass_layout(Hourglass(3, 8), size=(64, 48))
    assert [n[2] for n in d.notes] == ["64x48", "32x24", "16x12", "8x6"]
    odd = hourglass_layout(Hourglass(2, 8), size=(24, 18))  # a 2x2 max-pool floors odd sizes: 9 -> 4
    assert [n[2] for n in odd.notes] == ["24x18", "12x9", "6x4"]


def test_hourglass_pool_boxes_name_the_models_pooling():
    assert all("max pool" in b.label for b in kinds(hourglass_layout(Hourglass(2, 8)), "pool"))
    assert all("conv 3x3" in b.label for b in kinds(hourglass_layout(Hourglass(2, 8, pool="conv")), "pool"))
    assert all("avg pool" in b.label for b in kinds(hourglass_layout(Hourglass(2, 8, pool="avg")), "pool"))


@pytest.mark.parametrize("stacks", [1, 2, 4])
def test_stacked_has_one_hourglass_heatmap_and_loss_per_stack_and_one_merge_between_stacks(stacks):
    d = stacked_layout(stacked(stacks))
    assert len(kinds(d, "residual", "Hourglass")) == stacks
    assert len(kinds(d, "heatmap", "heatmaps")) == stacks
    assert len(kinds(d, "heatmap", "loss")) == stacks
    assert len(kinds(d, "add")) == stacks - 1
    assert len([b for b in d.boxes if b.label == "1x1"]) == 2 * (stacks - 1)  # conv1x1(ll) and conv1x1(heatmaps)


def test_stacked_reads_joints_order_and_stem_from_the_model():
    d = stacked_layout(stacked(2, order=3))
    assert all("-> 5" in b.label for b in kinds(d, "heatmap", "heatmaps"))
    assert all("order 3" in b.label for b in kinds(d, "residual", "Hourglass"))
    stem = next(b for b in d.boxes if b.label.startswith("stem"))
    assert "conv 7x7 s2" in stem.label and "1/4" in stem.label


def test_diagrams_draw_on_a_given_axis_and_return_it():
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    assert hourglass_diagram(Hourglass(2, 8), ax=a) is a
    assert stacked_diagram(stacked(2), ax=b) is b
    assert any("Hourglass 2" in t.get_text() for t in b.texts)
    plt.close(fig)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="expected a posebook.blocks.Hourglass, got Conv2d"):
        hourglass_diagram(nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError, match="model.hourglasses\\[0\\]"):
        hourglass_diagram(stacked(2))
    with pytest.raises(TypeError, match="expected a posebook StackedHourglass.*got Hourglass"):
        stacked_diagram(Hourglass(2, 8))
    broken = Hourglass(2, 8)
    broken.low2 = Residual(8, 8)  # an order-2 hourglass without its inner hourglass
    with pytest.raises(ValueError, match="innermost low2"):
        hourglass_layout(broken)
    model = stacked(2)
    del model.supervision[1]
    with pytest.raises(ValueError, match="2 hourglasses but 1 supervision"):
        stacked_layout(model)
