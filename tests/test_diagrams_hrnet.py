"""HRNet's diagrams are read from the model: fusion marks follow the exchange mode, rows follow the branches, the
exchange unit's paths follow its layers, and wrong input is refused naming what was expected."""
import matplotlib
import pytest
import torch
from torch import nn

from posebook.blocks import ExchangeUnit, HighResolutionModule
from posebook.diagrams.hrnet import exchange_unit_diagram, exchange_unit_layout, hrnet_diagram, hrnet_layout
from posebook.models import create

matplotlib.use("Agg")


def on_meta(**kwargs):
    with torch.device("meta"):
        return create("hrnet", **kwargs)


@pytest.mark.parametrize("mode,fusions", [("all", 8), ("across_stages", 3), ("final", 1)])
def test_one_fusion_mark_per_exchange_unit_that_fuses(mode, fusions):
    d = hrnet_layout(on_meta(width=8, exchange=mode))
    assert len(d.fusions) == fusions
    bars = [b for b in d.boxes if b.kind == "feature" and b.label == "" and b.h > 1.0]
    assert len(bars) == fusions
    assert d.fusions[-1] == (4, 2, (0,))  # the last unit builds only the row the head reads


def test_fusion_marks_sit_where_the_model_fuses():
    model = on_meta(width=8, exchange="across_stages")
    d = hrnet_layout(model)
    fusing = [(s, m) for s in (2, 3, 4) for m, module in enumerate(getattr(model, f"stage{s}"))
              if module.fuse_layers.exchange]
    assert [(s, m) for s, m, _ in d.fusions] == fusing == [(2, 0), (3, 3), (4, 2)]


def test_rows_and_widths_follow_the_branches():
    d = hrnet_layout(on_meta(width=8, stage_modules=(1, 2, 1), stage_blocks=2))
    assert d.branches == {2: 2, 3: 3, 4: 4}
    units = [b for b in d.boxes if b.kind == "residual" and "BB" in b.label]
    assert len(units) == 1 * 2 + 2 * 3 + 1 * 4  # one box per branch of each module
    assert {b.label for b in units} == {f"2 x BB\n{c} ch" for c in (8, 16, 32, 64)}
    assert len({round(b.y, 6) for b in units}) == 4  # four rows


def test_head_reads_the_branch_at_head_stride():
    d = hrnet_layout(on_meta(width=8, head_stride=16))
    head = next(b for b in d.boxes if b.label.startswith("1x1 conv"))
    assert head.y == pytest.approx(-2 * 1.3)  # the 1/16 row
    assert any(label.startswith("bilinear x4") for _, _, label, *_ in d.arrows)


def test_exchange_unit_diagram_draws_each_path_from_its_layers():
    module = HighResolutionModule([8, 16, 32], num_blocks=1)
    d = exchange_unit_layout(module)
    labels = [b.label for b in d.boxes]
    assert labels.count("+") == 3 and labels.count("ReLU") == 3  # one sum, one ReLU per output
    assert sum("nearest" in label for label in labels) == 3  # 2->1, 3->1, 3->2
    downs = [label for label in labels if label.startswith("3x3 conv s2")]
    assert len(downs) == 4  # 1->2, 2->3 and the two-step chain 1->3
    assert sum("ReLU" in label for label in downs) == 1  # only inside the chain, never at the end of a path
    assert "3x3 conv s2\n8\u21928\nBN ReLU" in labels and "3x3 conv s2\n8\u219232\nBN" in labels
    d.draw()
    matplotlib.pyplot.close("all")


def test_exchange_unit_diagram_follows_the_built_rows():
    d = exchange_unit_layout(ExchangeUnit([8, 16, 32], multi_scale_output=False))
    assert [b.label for b in d.boxes].count("+") == 1


def test_bad_input_is_refused_naming_what_was_expected():
    with pytest.raises(TypeError, match="hrnet_layout: expected an HRNet"):
        hrnet_layout(nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError, match="expected a HighResolutionModule or an ExchangeUnit"):
        exchange_unit_layout(nn.Identity())
    with pytest.raises(ValueError, match="does not exchange"):
        exchange_unit_layout(HighResolutionModule([8, 16, 32], num_blocks=1, exchange=False))
    with pytest.raises(ValueError, match="at least 2"):
        exchange_unit_layout(ExchangeUnit([8]))


def test_the_whole_network_draws():
    ax = hrnet_diagram(on_meta(width=32))
    assert len(ax.patches) > 30
    matplotlib.pyplot.close("all")
