"""The Stacked Hourglass against PAPERS.md §2: residual module, recursion, merge, params, GFLOPs, output shapes."""
import pytest
import torch
from conftest import assert_close
from torch import nn

from posebook import bench, models
from posebook.blocks import Hourglass, IntermediateSupervision, Residual


def test_residual_is_a_pre_activation_bottleneck_at_half_width():
    block = Residual(64, 128)
    kinds = [type(m).__name__ for m in block.conv_block.modules() if not isinstance(m, nn.Sequential)]
    assert kinds == ["BatchNorm2d", "ReLU", "Conv2d"] * 3
    convs = [m for m in block.conv_block.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [(64, 64, 1), (64, 64, 3),
                                                                                  (64, 128, 1)]
    assert all(c.bias is not None for c in convs)  # Torch's convs have biases
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 128, 8, 8)


def test_residual_skip_conv_exists_only_when_channels_change():
    assert Residual(256, 256).skip is None
    assert isinstance(Residual(128, 256).skip, nn.Conv2d)
    assert sum(p.numel() for p in Residual(256, 256).parameters()) == 2 * 256 + 256 * 128 + 128 + \
        2 * 128 + 9 * 128 * 128 + 128 + 2 * 128 + 128 * 256 + 256


def test_residual_has_no_relu_after_the_addition():
    block = Residual(8, 8)
    with torch.no_grad():
        block.conv_block[2][2].bias.fill_(-100.0)  # push the residual branch far negative
    assert block(torch.zeros(1, 8, 4, 4)).max() < 0


def test_hourglass_recursion_reaches_4x4_at_order_4():
    hourglass = Hourglass(4, 16)
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
             for m in hourglass.modules() if isinstance(m, nn.MaxPool2d)]
    out = hourglass(torch.randn(1, 16, 64, 64))
    for h in hooks:
        h.remove()
    assert sizes == [(32, 32), (16, 16), (8, 8), (4, 4)]
    assert out.shape == (1, 16, 64, 64)
    assert isinstance(hourglass.low2.low2.low2.low2, Residual)  # the innermost level is a residual


def test_hourglass_output_is_skip_plus_upsampled_lower_branch():
    hourglass = Hourglass(1, 4).eval()
    x = torch.randn(1, 4, 8, 8)
    low = hourglass.low3(hourglass.low2(hourglass.low1(nn.functional.max_pool2d(x, 2))))
    expected = hourglass.up1(x) + low.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert_close(hourglass(x), expected)


@pytest.mark.parametrize("pool", ["max", "avg", "conv"])
def test_hourglass_pooling_choices_keep_the_shape(pool):
    assert Hourglass(3, 8, pool=pool)(torch.randn(1, 8, 32, 24)).shape == (1, 8, 32, 24)


def test_unknown_pooling_choice_is_named():
    with pytest.raises(ValueError, match="pool='min'"):
        Hourglass(2, 8, pool="min")


def test_intermediate_supervision_merges_features_and_predictions_into_the_next_input():
    step = IntermediateSupervision(8, 3).eval()
    inter, hg = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    heatmaps, nxt = step(inter, hg)
    ll = step.lin(step.residual(hg))
    assert_close(heatmaps, step.tmp_out(ll))
    assert_close(nxt, inter + step.merge_features(ll) + step.merge_preds(heatmaps))
    last = IntermediateSupervision(8, 3, merge=False)
    assert last(inter, hg)[1] is None and last.merge_features is None


def on_meta(**kwargs):
    """The hourglass built on the meta device: shapes only, no memory or arithmetic, so counting is fast."""
    with torch.device("meta"):
        return models.create("hourglass", **kwargs)


def test_forward_returns_every_stack_and_predict_the_last():
    model = models.create("hourglass", stacks=3, channels=16, num_joints=17, order=3).eval()
    x = torch.randn(2, 3, 128, 96)
    outputs = model(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 17, 32, 24)] * 3
    assert torch.equal(model.predict(x), outputs[-1])


@pytest.mark.parametrize("stacks,joints,expected", [(8, 16, 25_434_112), (8, 17, 25_437_960), (2, 16, 6_570_400),
                                                    (1, 16, 3_426_448)])
def test_parameter_count_matches_papers_md(stacks, joints, expected):
    # PAPERS.md §2: effective params 25.434M (8 stacks), 6.570M (2), 3.426M (1), 16 joints
    model = on_meta(stacks=stacks, num_joints=joints)
    assert bench.count_params(model) == expected


def test_eight_stacks_have_25_25m_conv_weights_with_17_joints():
    model = on_meta(stacks=8, num_joints=17)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    assert round(weights / 1e6, 2) == 25.25


def test_gflops_match_papers_md_for_eight_stacks():
    # PAPERS.md §2: 20.58e9 = 19.17 * 2^30 at 256x192, 27.44e9 = 25.56 * 2^30 at 256x256 (16 joints)
    model = on_meta(stacks=8, num_joints=16)
    assert round(bench.gflops(model, (256, 192)), 2) == 19.17
    assert round(bench.gflops(model, (256, 256)), 2) == 25.56


def test_gflops_match_papers_md_for_two_stacks():
    model = on_meta(stacks=2, num_joints=16)
    assert round(bench.gflops(model, (256, 256)), 2) == 7.76
    assert round(bench.gflops(model, (256, 192)), 2) == 5.82


def test_bad_model_arguments_are_named():
    with pytest.raises(ValueError, match="stacks must be >= 1"):
        models.create("hourglass", stacks=0)
    with pytest.raises(ValueError, match="multiple of 4"):
        models.create("hourglass", channels=30)


def test_chapter_03_refinement_claim_reads_left_right_swaps_per_stack_from_the_committed_records():
    """The refinement claim (Fig. 9 left: left/right mistakes fixed by later stacks) reads each stack's share of
    left/right keypoints swapped on people seen from the side and the back, which the records carry."""
    from posebook import study

    claims = {c.name: c for c in study.chapter_claims("03", "cpu")}
    refinement = claims["refinement"]
    assert refinement.metric == "inversion.side+back" and refinement.sign == -1
    assert [(v.of, v.read) for v in refinement.variants] == [
        ("intermediate_supervision/with", "stack1.inversion.side+back"),
        ("intermediate_supervision/with", "stack2.inversion.side+back")]
    recorded = {c["claim"]: c for c in study.load_claims("03_stacked_hourglass", "cpu")}
    if recorded.get("refinement") and recorded["refinement"]["complete"]:  # the book's cpu records: re-read
        assert all(0 <= x < 0.5 for v in recorded["refinement"]["variants"] for x in v["values"])
        assert recorded["refinement"]["verdict"] in study.VERDICTS
