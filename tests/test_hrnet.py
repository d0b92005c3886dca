"""HRNet: official key names and shapes, exact parameter counts, the paper's GFLOPs, and the official W8 output."""
import pytest
import torch
from conftest import assert_close

from posebook.bench import count_params, gflops
from posebook.blocks import ExchangeUnit, HighResolutionModule, Transition
from posebook.models import create
from posebook.models.hrnet import HRNet, HRNetConfig


def read_key_file(path):
    """key -> shape string from a ``key<TAB>(shape)`` reference file (comment lines start with #)."""
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            out[key] = shape
    return out


def on_meta(name, **kwargs):
    """The model built on the meta device: shapes and a shape-only forward, no memory or arithmetic (fast)."""
    with torch.device("meta"):
        return create(name, **kwargs)


def shapes(model):
    return {k: str(tuple(v.shape)) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def w32():
    return on_meta("hrnet_w32")


def test_w32_state_dict_equals_official_keys_and_shapes(w32, reference_dir):
    official = read_key_file(reference_dir / "hrnet_w32_official_keys.txt")
    mine = shapes(w32)
    assert len(mine) == 1754
    assert sorted(set(official) - set(mine)) == [] and sorted(set(mine) - set(official)) == []
    assert {k: v for k, v in mine.items() if official[k] != v} == {}


def test_w32_has_official_parameter_count(w32):
    assert count_params(w32) == 28_536_113


def test_w48_has_63_6m_parameters():
    assert count_params(on_meta("hrnet_w48")) == 63_595_745


@pytest.mark.parametrize("name,size,expected", [("hrnet_w32", (256, 192), 7.12), ("hrnet_w32", (384, 288), 16.02),
                                                ("hrnet_w48", (256, 192), 14.61), ("hrnet_w48", (384, 288), 32.88)])
def test_gflops_match_paper_to_two_decimals(name, size, expected):
    assert round(gflops(on_meta(name), size), 2) == expected


def test_w8_reproduces_official_output_after_strict_load(reference_dir):
    ref = torch.load(reference_dir / "hrnet_w8_official_reference.pt", weights_only=True)
    cfg = ref["config"]
    model = create("hrnet", width=cfg["width"], num_joints=cfg["num_joints"], stage_blocks=cfg["stage_blocks"],
                   stage_modules=cfg["stage_modules"])
    model.load_state_dict(ref["state_dict"], strict=True)
    with torch.no_grad():
        out = model.eval().predict(ref["input"])
    assert out.shape == ref["output"].shape == (2, 17, 64, 48)
    scale = ref["output"].abs().max()
    assert torch.allclose(out, ref["output"], atol=1e-5 * scale, rtol=0)


def test_output_is_quarter_resolution_heatmaps_for_any_width():
    model = create("hrnet", width=4, num_joints=5).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 128, 96)).shape == (2, 5, 32, 24)


def test_input_not_multiple_of_32_is_refused_with_expected_shape():
    with pytest.raises(ValueError, match=r"multiples of 32.*\(1, 3, 100, 96\)"):
        create("hrnet", width=4)(torch.zeros(1, 3, 100, 96))


def test_official_init_is_normal_0_001_and_bn_one_zero():
    model = HRNet(HRNetConfig(width=8))
    w = model.stage3[0].branches[0][0].conv1.weight
    assert abs(w.std().item() - 0.001) < 2e-4
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    assert torch.all(model.final_layer.bias == 0)


def test_last_module_of_stage4_builds_only_fuse_row_0_and_returns_one_branch():
    model = create("hrnet", width=8)
    last = model.stage4[-1]
    assert len(last.fuse_layers) == 1 and len(model.stage4[0].fuse_layers) == 4
    xs = [torch.randn(1, 8 * 2 ** b, 16 // 2 ** b, 16 // 2 ** b) for b in range(4)]
    with torch.no_grad():
        assert [y.shape[1] for y in last.eval()(xs)] == [8]


def test_fuse_paths_upsample_with_1x1_and_downsample_with_strided_chain_without_final_relu():
    unit = ExchangeUnit([8, 16, 32, 64])
    up = unit[0][3]  # branch 3 -> branch 0: 1x1 conv 64->8, BN, nearest x8
    assert up[0].kernel_size == (1, 1) and up[0].out_channels == 8 and up[2].scale_factor == 8
    down = unit[3][0]  # branch 0 -> branch 3: three stride-2 3x3 convs, 8->8, 8->8, 8->64
    assert [(s[0].in_channels, s[0].out_channels, s[0].stride) for s in down] == [(8, 8, (2, 2))] * 2 + [(8, 64, (2, 2))]
    assert [isinstance(s[-1], torch.nn.ReLU) for s in down] == [True, True, False]
    assert isinstance(unit[1][1], torch.nn.Identity)


def test_exchange_output_is_relu_of_sum_of_contributions():
    unit = ExchangeUnit([4, 8, 16]).eval()
    xs = [torch.randn(1, 4 * 2 ** b, 8 // 2 ** b, 8 // 2 ** b) for b in range(3)]
    with torch.no_grad():
        out = unit(xs)
        parts = unit.contributions(xs)
    for i in range(3):
        assert_close(out[i], torch.relu(sum(parts[i])))
    assert torch.equal(parts[2][2], xs[2])


def test_no_exchange_ablation_keeps_only_identity_paths_but_fuses_once_at_the_end():
    model = HRNet(HRNetConfig(width=4, exchange=False))
    ablated = shapes(model)
    assert not any(".fuse_layers." in k for k in ablated if not k.startswith("stage4.2."))
    assert any(k.startswith("stage4.2.fuse_layers.0.3.") for k in ablated)
    xs = [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]
    with torch.no_grad():
        out = model.stage2[0].fuse_layers(xs)
    assert torch.equal(out[0], torch.relu(xs[0])) and torch.equal(out[1], torch.relu(xs[1]))
    assert count_params(model) < count_params(HRNet(HRNetConfig(width=4)))
    # built so by the constructor: the final unit is a full exchange unit like the official one, row 0 only
    last = model.stage4[-1].fuse_layers
    assert last.exchange and len(last) == 1 and not model.stage4[0].fuse_layers.exchange
    assert shapes(model.stage4[-1]) == shapes(HRNet(HRNetConfig(width=4)).stage4[-1])
    assert not hasattr(HRNet, "_restore_final_exchange")


def test_transition_adapts_width_and_adds_a_half_resolution_branch_from_the_lowest():
    t = Transition([256], [32, 64])
    x = torch.randn(1, 256, 16, 12)
    with torch.no_grad():
        a, b = t.eval()([x])
    assert a.shape == (1, 32, 16, 12) and b.shape == (1, 64, 8, 6)
    t2 = Transition([32, 64], [32, 64, 128])
    assert isinstance(t2[0], torch.nn.Identity) and isinstance(t2[1], torch.nn.Identity)
    assert t2[2][0][0].in_channels == 64 and t2[2][0][0].stride == (2, 2)


def test_hr_module_refuses_wrong_number_of_branches():
    module = HighResolutionModule([4, 8], num_blocks=1)
    with pytest.raises(ValueError, match="expects 2 branch inputs, got 1"):
        module([torch.zeros(1, 4, 8, 8)])


def test_branches_returns_each_stage_at_halving_resolutions():
    model = create("hrnet", width=4).eval()
    with torch.no_grad():
        stages = model.branches(torch.zeros(1, 3, 128, 64))
    assert [len(v) for v in stages.values()] == [2, 3, 1]
    assert [t.shape[-2:] for t in stages["stage3"]] == [(32, 16), (16, 8), (8, 4)]


def test_narrow_stem_option_shrinks_stem_and_layer1_and_keeps_quarter_resolution_output():
    model = create("hrnet", width=4, stem_width=16, layer1_blocks=1).eval()
    assert model.conv1.out_channels == model.conv2.out_channels == 16
    assert len(model.layer1) == 1 and model.layer1[0].conv3.out_channels == 64
    assert model.transition1[0][0].in_channels == 64
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 96)).shape == (1, 17, 32, 24)
    assert count_params(model) < count_params(create("hrnet", width=4))


def test_stem_options_default_to_the_official_64_channels_and_4_bottlenecks():
    model = on_meta("hrnet", width=8)
    assert model.conv1.out_channels == 64 and len(model.layer1) == 4
    assert model.config.stem_width == 64 and model.config.layer1_blocks == 4


def test_stem_width_below_one_is_refused_naming_it():
    with pytest.raises(ValueError, match="stem_width=0"):
        create("hrnet", width=4, stem_width=0)


def test_named_configs_are_the_papers_w32_and_w48_and_build_the_same_model_as_create():
    from posebook.models.hrnet import HRNET_W32, HRNET_W48

    assert HRNET_W32 == HRNetConfig.w32() == HRNetConfig(width=32, stage_modules=(1, 4, 3), stage_blocks=4)
    assert HRNET_W48 == HRNetConfig.w48() and HRNET_W48.channels(4) == [48, 96, 192, 384]
    with torch.device("meta"):
        built = HRNet(HRNET_W32)
    assert built.config is HRNET_W32 and shapes(built) == shapes(on_meta("hrnet_w32"))
    assert on_meta("hrnet", width=8, exchange=False, stem_width=16, layer1_blocks=1).config == HRNetConfig(
        width=8, exchange=False, stem_width=16, layer1_blocks=1)


def test_stages_are_attributes_named_as_in_the_official_model(w32):
    names = [name for name, _ in w32.named_children()]
    assert names == ["conv1", "bn1", "conv2", "bn2", "relu", "layer1", "transition1", "stage2", "transition2",
                     "stage3", "transition3", "stage4", "final_layer"]
    assert [len(w32.stage2), len(w32.stage3), len(w32.stage4)] == [1, 4, 3]


def test_config_rejects_a_wrong_stage_layout_and_hrnet_wants_a_config():
    with pytest.raises(ValueError, match=r"stage_modules must be three.*\(1, 4\)"):
        HRNetConfig(stage_modules=(1, 4))
    with pytest.raises(TypeError, match="HRNet takes an HRNetConfig"):
        HRNet(32)


def test_features_are_stage4_branches_by_stride_and_forward_reads_stride_4():
    model = create("hrnet", width=4, num_joints=5).eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        feats = model.features(x)
        out = model(x)
        high = model.branches(x)["stage4"][0]
    assert list(feats) == [4, 8, 16, 32] and model.feature_channels == {4: 4, 8: 8, 16: 16, 32: 32}
    for stride, f in feats.items():
        assert f.shape == (1, model.feature_channels[stride], 128 // stride, 96 // stride)
    assert torch.equal(feats[4], high) and torch.equal(out, model.final_layer(feats[4]))


# ---- the §4.4 ablations built by the constructor: exchange (Table 6) and head_stride (Fig. 5) ----------------------

def exchanging(model):
    """Per HR module of stages 2, 3, 4 in order: does its exchange unit fuse (True) or keep identities only?"""
    return [m.fuse_layers.exchange for stage in (model.stage2, model.stage3, model.stage4) for m in stage]


@pytest.mark.parametrize("mode,expected", [
    ("final", [False] * 7 + [True]),
    ("across_stages", [True, False, False, False, True, False, False, True]),
    ("all", [True] * 8),
])
def test_exchange_modes_fuse_in_the_units_of_table_6(mode, expected):
    model = on_meta("hrnet", width=8, exchange=mode)
    assert exchanging(model) == expected
    assert sum(expected) == {"final": 1, "across_stages": 3, "all": 8}[mode]
    for stage in (model.stage2, model.stage3, model.stage4):
        for m in stage:
            if not m.fuse_layers.exchange:  # identity-only: no weights at all
                assert shapes(m.fuse_layers) == {}


def test_exchange_booleans_are_the_all_and_final_modes_and_a_wrong_mode_is_refused():
    assert HRNetConfig(exchange=True).exchange == "all" and HRNetConfig(exchange=False).exchange == "final"
    assert HRNetConfig(exchange=False) == HRNetConfig(exchange="final")
    with pytest.raises(ValueError, match=r"exchange='within'.*'final', 'across_stages', 'all'"):
        HRNetConfig(exchange="within")


def test_fewer_exchange_units_mean_fewer_parameters_and_identity_only_units_pass_relu_of_their_input():
    counts = [count_params(on_meta("hrnet", width=4, exchange=m)) for m in ("final", "across_stages", "all")]
    assert counts[0] < counts[1] < counts[2]
    model = HRNet(HRNetConfig(width=4, exchange="across_stages")).eval()
    xs = [torch.randn(1, 4 * 2 ** b, 16 // 2 ** b, 16 // 2 ** b) for b in range(3)]
    with torch.no_grad():
        inner = model.stage3[0].fuse_layers(xs)
        end = model.stage3[-1].fuse_layers(xs)
    assert all(torch.equal(o, torch.relu(x)) for o, x in zip(inner, xs))
    assert not torch.equal(end[0], torch.relu(xs[0]))  # the stage's last unit adds the lower branches


@pytest.mark.parametrize("stride", [4, 8, 16, 32])
def test_head_reads_the_branch_at_head_stride_and_output_stays_quarter_resolution(stride):
    from posebook.models.hrnet import upsample_heatmaps

    torch.manual_seed(0)
    model = create("hrnet", width=4, num_joints=5, head_stride=stride, stem_width=8, layer1_blocks=1,
                   stage_blocks=1).eval()
    b = {4: 0, 8: 1, 16: 2, 32: 3}[stride]
    last = model.stage4[-1].fuse_layers
    assert [len(row) for row in last] == [0] * b + [4] and last.exchange  # only the head's row is built
    assert model.final_layer.in_channels == 4 * stride // 4
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        out = model(x)
        xs = model.fusion_inputs(x)
        fused = torch.relu(sum(last.contributions(xs)[b]))
        feats = model.features(x)
    assert out.shape == model.predict(x).shape == (2, 5, 32, 24)
    assert fused.shape[-2:] == (128 // stride, 96 // stride)
    assert_close(feats[stride], fused)
    assert_close(out, upsample_heatmaps(model.final_layer(fused), stride // 4))
    for other in {4, 8, 16, 32} - {stride}:  # the other branches as they enter the last fusion
        assert torch.equal(feats[other], xs[{4: 0, 8: 1, 16: 2, 32: 3}[other]])


def test_head_stride_must_be_a_branch_stride():
    with pytest.raises(ValueError, match=r"head_stride=6.*\(4, 8, 16, 32\)"):
        HRNetConfig(head_stride=6)


def test_upsampled_heatmaps_keep_heatmap_px_times_stride_as_the_input_px():
    from posebook.models.hrnet import upsample_heatmaps

    coarse = torch.zeros(1, 1, 8, 6)
    coarse[0, 0, 3, 2] = 1.0
    coarse[0, 0, 7, 5] = 0.5  # last row and column: the edge is replicated, not faded to zero
    for factor in (2, 4):
        fine = upsample_heatmaps(coarse, factor)
        assert fine.shape == (1, 1, 8 * factor, 6 * factor)
        assert torch.equal(fine[..., ::factor, ::factor], coarse)  # sample i of the fine map reads position i / f
        peak = divmod(int(fine[..., :5 * factor, :5 * factor].argmax()), 5 * factor)  # away from the 0.5
        assert peak == (3 * factor, 2 * factor)
        assert fine[0, 0, 3 * factor, 2 * factor + 1].item() == pytest.approx(1 - 1 / factor)
        assert torch.allclose(fine[0, 0, -1, -factor:], torch.full((factor,), 0.5))
    assert upsample_heatmaps(coarse, 1) is coarse
