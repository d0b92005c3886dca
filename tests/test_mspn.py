"""MSPN: the output structure, the cost against the official code, the upsampling unit and cross stage feature
aggregation against by-hand computations, the kernel schedule, the codecs and masks, and the staged loss against the
official formula written out."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

from posebook import bench, models
from posebook.blocks.mspn import CrossStageFeatureAggregation, DownsamplingUnit, SingleStageModule, UpsamplingUnit
from posebook.codecs import BlurHeatmap
from posebook.losses import MultiOutputLoss
from posebook.models.mspn import MSPN, VisibleBlurHeatmap, kernel_schedule, mspn_codecs, mspn_loss

pytestmark = pytest.mark.usefixtures("one_thread")  # two threads stall on a busy 2-core machine


def eval_bn(module, seed=0):
    """Non-trivial BN statistics and affine parameters, eval mode: BN is then a fixed per-channel affine map."""
    g = torch.Generator().manual_seed(seed)
    for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        n = bn.num_features
        bn.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
        bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        bn.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
        bn.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return module.eval()


def conv_bn_by_hand(block, x, relu):
    """A 1x1 conv (no bias) + BN in eval mode (+ ReLU), written out."""
    conv, bn = block[0], block[1]
    assert conv.kernel_size == (1, 1) and conv.bias is None
    y = torch.einsum("oi,bihw->bohw", conv.weight[:, :, 0, 0], x)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    y = (y - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]
    return torch.relu(y) if relu else y


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = eval_bn(MSPN(stages=2, num_joints=3, width=4)).double()  # hand sums in float64: any machine's rounding
    return model, torch.randn(2, 3, 64, 48, dtype=torch.float64)


# --- output structure -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_forward_is_four_heatmaps_per_stage_at_a_quarter_and_predict_is_the_last(stages):
    with torch.device("meta"):
        model = models.create("mspn", stages=stages)
    outputs = model(torch.zeros(2, 3, 256, 192, device="meta"))
    assert isinstance(outputs, list) and len(outputs) == 4 * stages
    assert all(o.shape == (2, 17, 64, 48) for o in outputs)
    assert model.predict(torch.zeros(1, 3, 256, 192, device="meta")).shape == (1, 17, 64, 48)
    assert [s.cross_conv is not None for s in model.stages] == [True] * (stages - 1) + [False]
    assert [s.aggregation is not None for s in model.stages] == [True] * (stages - 1) + [False]


def test_predict_equals_the_last_stages_finest_output_and_outputs_are_coarse_to_fine(tiny):
    model, x = tiny
    with torch.no_grad():
        outputs = model(x)
        predicted = model.predict(x)
        _, levels = model.stages[0].levels(model.stem(x))
    assert torch.equal(predicted, outputs[-1])
    assert [tuple(p.shape[-2:]) for p in levels] == [(2, 2), (4, 3), (8, 6), (16, 12)]  # strides 32 .. 4
    head = model.stages[0].upsample.predictor
    with torch.no_grad():  # output l of stage 0 is level l's head, resized to the finest size
        coarsest = F.interpolate(head[0](levels[0]), size=(16, 12), mode="bilinear", align_corners=False)
        assert_close(outputs[0], coarsest, rel=1e-9)
        assert_close(outputs[3], head[3](levels[3]), rel=1e-9)


# --- cost against the official code -----------------------------------------------------------------------------

# parameters of the official network.py (17 joints) and its conv multiply-adds / 2^30 at 256x192
OFFICIAL = {1: (25.1e6, 4.72), 2: (56.9e6, 10.49), 4: (120.3e6, 22.02)}


@pytest.mark.parametrize("stages", sorted(OFFICIAL))
def test_params_within_3_percent_and_gflops_equal_to_the_official_code(stages):
    with torch.device("meta"):
        model = models.create("mspn", stages=stages)
    params, official_gflops = OFFICIAL[stages]
    assert bench.count_params(model) == pytest.approx(params, rel=0.03)
    assert bench.gflops(model, (256, 192)) == pytest.approx(official_gflops, abs=0.01)


def test_narrow_width_scales_every_unit():
    model = MSPN(stages=2, width=8)
    assert model.channels == 32 and model.stem.conv1.out_channels == 8
    assert model.stages[0].downsample.feature_channels == {4: 32, 8: 64, 16: 128, 32: 256}
    assert model.stages[0].cross_conv[0].out_channels == 8  # the next stage starts from `width` channels
    assert bench.count_params(model) < bench.count_params(MSPN(stages=2, width=16)) / 3


# --- the upsampling unit ----------------------------------------------------------------------------------------

def test_upsampling_level_is_relu_of_lateral_plus_bn_merge_of_the_upsampled_coarser_level():
    torch.manual_seed(1)
    unit = eval_bn(UpsamplingUnit(in_channels=(3, 5), channels=4, num_joints=2))
    fine, coarse = torch.randn(2, 3, 6, 4), torch.randn(2, 5, 3, 2)
    with torch.no_grad():
        top, bottom = unit.pyramid({4: fine, 8: coarse})
        p_coarse = conv_bn_by_hand(unit.lateral[0], coarse, relu=False).relu()
        up = F.interpolate(p_coarse, size=(6, 4), mode="bilinear", align_corners=False)
        expected = (conv_bn_by_hand(unit.lateral[1], fine, relu=False)
                    + conv_bn_by_hand(unit.merge[0], up, relu=False)).relu()
        _, heatmaps = unit({4: fine, 8: coarse})
    assert_close(top, p_coarse)
    assert_close(bottom, expected)
    assert (bottom >= 0).all() and (bottom == 0).any()  # the ReLU comes after the sum
    assert all(h.shape == (2, 2, 6, 4) for h in heatmaps)


# --- cross stage feature aggregation ----------------------------------------------------------------------------

def test_skips_are_added_to_each_layers_output_before_the_next_layer(tiny):
    """By hand: stage 1's layer k output is layer_k(previous sum) + skip1_k + skip2_k, where skip1_k is a 1x1 conv
    + BN + ReLU of stage 0's downsampling map and skip2_k one of stage 0's upsampling level at that stride; stage 1
    starts from cross_conv of stage 0's finest upsampling level."""
    model, x = tiny
    first, second = model.stages
    with torch.no_grad():
        down0, levels0 = first.levels(model.stem(x))
        up0 = {4: levels0[3], 8: levels0[2], 16: levels0[1], 32: levels0[0]}
        h = conv_bn_by_hand(first.cross_conv, levels0[3], relu=True)  # 16 -> 4 channels at stride 4
        start, skips = first.handoff(down0, levels0)
        assert_close(start, h, rel=1e-9)  # not the stem's output
        down1 = second.downsample(start, skips)
        layers = (second.downsample.layer1, second.downsample.layer2, second.downsample.layer3,
                  second.downsample.layer4)
        for stride, layer in zip((4, 8, 16, 32), layers):
            skip1 = conv_bn_by_hand(first.aggregation.down_skip[str(stride)], down0[stride], relu=True)
            skip2 = conv_bn_by_hand(first.aggregation.up_skip[str(stride)], up0[stride], relu=True)
            h = layer(h) + skip1 + skip2
            assert_close(down1[stride], h, rel=1e-9, what=f"stride {stride}")
        assert not torch.allclose(second.downsample(conv_bn_by_hand(first.cross_conv, levels0[3], True))[32], h)


def test_without_aggregation_the_next_stage_starts_from_cross_conv_alone():
    torch.manual_seed(2)
    model = eval_bn(MSPN(stages=2, num_joints=3, width=4, aggregation=False))
    assert model.stages[0].aggregation is None and model.stages[0].cross_conv is not None
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        down0, levels0 = model.stages[0].levels(model.stem(x))
        start = conv_bn_by_hand(model.stages[0].cross_conv, levels0[-1], relu=True)
        expected = model.stages[1].upsample.predictor[-1](model.stages[1].upsample.pyramid(
            model.stages[1].downsample(start))[-1])
        assert_close(model.predict(x), expected)


def test_aggregation_and_stage_inputs_check_what_they_get():
    agg = CrossStageFeatureAggregation({4: 8, 8: 16, 16: 32, 32: 64}, channels=12).eval()
    down = {4: torch.zeros(1, 8, 8, 6), 8: torch.zeros(1, 16, 4, 3), 16: torch.zeros(1, 32, 2, 2),
            32: torch.zeros(1, 64, 1, 1)}
    up = {s: torch.zeros(1, 12, *m.shape[-2:]) for s, m in down.items()}
    assert {s: t.shape for s, t in agg(down, up).items()} == {s: m.shape for s, m in down.items()}
    with pytest.raises(ValueError, match=r"CrossStageFeatureAggregation up\[8\] has 13 channels; expected 12"):
        agg(down, {**up, 8: torch.zeros(1, 13, 4, 3)})
    with pytest.raises(ValueError, match=r"CrossStageFeatureAggregation down: expected \{stride: map\} with strides"):
        agg({4: down[4]}, up)
    unit = DownsamplingUnit(50, width=2)
    with pytest.raises(ValueError, match=r"DownsamplingUnit input has 3 channels; expected 2"):
        unit(torch.zeros(1, 3, 8, 8))
    skips = {s: torch.zeros(1, c, 1, 1) for s, c in unit.feature_channels.items()}
    with pytest.raises(ValueError, match=r"DownsamplingUnit skips\[4\] has shape \(1, 8, 1, 1\); expected layer 1"):
        unit(torch.zeros(1, 2, 8, 8), skips)
    with pytest.raises(ValueError, match="SingleStageModule aggregation='yes': expected True or False"):
        SingleStageModule(width=2, channels=8, aggregation="yes")


def test_every_parameter_gets_a_gradient_so_every_path_is_wired():
    torch.manual_seed(3)
    model = MSPN(stages=2, num_joints=3, width=2)
    sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 48))).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead


# --- coarse-to-fine supervision: kernels, codecs, masks ---------------------------------------------------------

def test_kernel_schedule_is_the_official_codes():
    assert kernel_schedule(2) == [(15, 11, 9, 7), (11, 9, 7, 5)]
    assert kernel_schedule(1) == [(11, 9, 7, 5)]  # the only stage is the last one
    assert kernel_schedule(4) == [(15, 11, 9, 7)] * 3 + [(11, 9, 7, 5)]
    assert kernel_schedule(2, coarse_to_fine=False) == [(15, 11, 9, 7)] * 2


def test_codecs_follow_the_schedule_with_mspns_clamp_and_decode_kernel():
    codecs = mspn_codecs(2, (64, 48), (16, 12))
    assert [c.kernel for c in codecs] == [15, 11, 9, 7, 11, 9, 7, 5]
    assert [type(c) for c in codecs] == ([VisibleBlurHeatmap] * 3 + [BlurHeatmap]) * 2
    assert all(c.clamp is False and c.decode_kernel == 5 for c in codecs)
    assert all(c.input_size == (64, 48) and c.heatmap_size == (16, 12) for c in codecs)


def test_l2_targets_draw_only_visible_joints_and_weight_every_joint():
    kp = np.array([[10.0, 10.0], [30.0, 20.0], [20.0, 40.0], [50.0, 30.0]])  # the last is right of the 48-px crop
    v = np.array([2, 1, 0, 2])
    l2, ohkm = VisibleBlurHeatmap((64, 48), (16, 12), kernel=5), BlurHeatmap((64, 48), (16, 12), 5, 5, clamp=False)
    target, weight = l2.encode(kp, v)
    full, full_weight = ohkm.encode(kp, v)
    assert weight.tolist() == [1, 1, 1, 1]  # every joint penalised, as the official L2
    assert full_weight.tolist() == [1, 1, 0, 0]  # labelled and inside the crop: the official OHKM mask
    assert np.array_equal(target[0], full[0]) and target[0].max() == 1.0  # visible: drawn
    assert not target[1:].any()  # occluded, unlabelled, outside: zero targets
    assert full[1].max() == 1.0 and not full[3].any()  # OHKM target draws the occluded joint; no clamp onto the edge


# --- the staged loss --------------------------------------------------------------------------------------------

def official_mspn_loss(outputs, labels, valids, stages, topk=8):
    """The official code's loss, written out: labels holds the 5 kernels' targets, drawn for v > 0; stage i, output j
    uses label j (j + 1 in the last stage); L2 = mean over batch and joints of the pixel MSE against label * (v > 1);
    the finest output instead: per sample, pixel MSE per joint times (v > 0), mean of the top k, mean over batch;
    the three coarser outputs divided by 4; all summed."""
    total = 0.0
    for i in range(stages):
        for j in range(4):
            label = labels[j + 1 if i == stages - 1 else j]
            out = outputs[4 * i + j]
            if j == 3:
                per_joint = (out - label).pow(2).mean(dim=(2, 3)) * (valids > 0).float()
                term = torch.stack([row.topk(topk).values.mean() for row in per_joint]).mean()
            else:
                visible = (valids > 1).float()[:, :, None, None]
                term = (out - label * visible).pow(2).mean(dim=(2, 3)).mean(dim=1).mean() / 4
            total = total + term
    return total


def test_two_stage_loss_equals_the_official_formula_on_the_codecs_targets():
    """Targets from mspn_codecs for a batch of two people, against the official formula on plain blur targets."""
    g = torch.Generator().manual_seed(4)
    b, k, size = 2, 17, (64, 48)
    kp = torch.rand(b, k, 2, generator=g).numpy() * [56, 72] - [4, 4]  # some joints fall outside the crop
    v = torch.randint(0, 3, (b, k), generator=g).numpy()
    codecs = mspn_codecs(2, size, (16, 12))
    encoded = [[c.encode(kp[n], v[n]) for n in range(b)] for c in codecs]
    targets = [torch.from_numpy(np.stack([t for t, _ in e])) for e in encoded]
    weights = [torch.from_numpy(np.stack([w for _, w in e])) for e in encoded]
    outputs = [torch.rand(b, k, 16, 12, generator=g) * 255 for _ in range(8)]
    # the official labels: every kernel drawn for labelled joints inside the crop (v set to 0 outside), peak 255
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < 48) & (kp[..., 1] >= 0) & (kp[..., 1] < 64)
    valids = torch.from_numpy(np.where(inside, v, 0))
    labels = [torch.from_numpy(np.stack([BlurHeatmap(size, (16, 12), kernel, 5, clamp=False).encode(kp[n], v[n])[0]
                                         for n in range(b)]) * 255) for kernel in (15, 11, 9, 7, 5)]
    ours = mspn_loss(2)(outputs, targets, weights)
    assert ours.item() == pytest.approx(official_mspn_loss(outputs, labels, valids, 2).item(), rel=1e-6)


def test_two_stage_loss_on_numbers_worked_by_hand():
    """One sample, two joints, 1x2 maps, top-1 OHKM. Every output is [[1, 0]] for joint 0 and [[0, 0]] for joint 1;
    every target is [[0, 0]] for joint 0 and [[1, 1]] for joint 1. Per-joint pixel MSE (official, no 0.5):
    joint 0: (1 + 0) / 2 = 0.5; joint 1: (1 + 1) / 2 = 1. A coarser output's L2 is the mean over joints, 0.75,
    divided by 4: 0.1875. With joint 1 unlabelled (OHKM weight 0), the finest output's top-1 is joint 0's 0.5.
    Per stage 3 x 0.1875 + 0.5 = 1.0625; two stages: 2.125."""
    out = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]])
    target = torch.tensor([[[[0.0, 0.0]], [[1.0, 1.0]]]])
    l2_weight, ohkm_weight = torch.ones(1, 2), torch.tensor([[1.0, 0.0]])
    loss = mspn_loss(2, topk=1)
    total = loss([out] * 8, [target] * 8, ([l2_weight] * 3 + [ohkm_weight]) * 2)
    assert isinstance(loss, MultiOutputLoss) and len(loss.base) == 8
    assert total.item() == pytest.approx(2.125)
    assert loss.weights == [0.5, 0.5, 0.5, 2.0] * 2  # the official 1/4, 1/4, 1/4, 1, doubled for our 0.5


# --- registry and errors ----------------------------------------------------------------------------------------

def test_mspn_is_made_by_name():
    assert models.MODELS["mspn"] is MSPN
    assert "mspn" in models.available()


@pytest.mark.parametrize("kwargs,message", [
    (dict(stages=0), r"MSPN stages=0: expected an int from 1 to 4"),
    (dict(stages=5), r"MSPN stages=5: expected an int from 1 to 4"),
    (dict(stages="2"), r"MSPN stages='2': expected an int from 1 to 4"),
    (dict(stages=True), r"MSPN stages=True: expected an int from 1 to 4"),
    (dict(width=0), r"MSPN width=0: expected a positive int"),
    (dict(width=2.5), r"MSPN width=2.5: expected a positive int"),
    (dict(num_joints=0), r"MSPN num_joints=0: expected a positive int"),
    (dict(channels=-1), r"MSPN channels=-1: expected a positive int"),
    (dict(depth=42), r"MSPN depth=42: expected a ResNet depth"),
    (dict(aggregation=1), r"MSPN aggregation=1: expected True or False"),
])
def test_bad_arguments_name_the_argument_and_what_is_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.create("mspn", **kwargs)


def test_schedule_codecs_and_loss_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"mspn_loss stages=0: expected an int from 1 to 4"):
        mspn_loss(0)
    with pytest.raises(ValueError, match=r"mspn_loss topk=0: expected a positive int"):
        mspn_loss(2, topk=0)
    with pytest.raises(ValueError, match=r"kernel_schedule stages=7: expected an int from 1 to 4"):
        mspn_codecs(7)
    with pytest.raises(ValueError, match=r"kernel_schedule coarse_to_fine='no': expected True or False"):
        kernel_schedule(2, coarse_to_fine="no")


# ---- chapter 06's exercise checkers: learners' answers and the hints they get --------------------------------------

def _check(name, fn):
    from posebook.check import check

    return check(name, fn)


def test_kernel_schedule_checker_names_one_kernel_as_not_the_official_switch():
    from posebook.check import mspn as C

    result = _check("mspn_kernel_schedule", C._schedule_one_kernel_without_flag)
    assert result.status == "failed"
    assert "removes only the last stage's shift" in result.message and "another ablation" in result.message
    ignored = _check("mspn_kernel_schedule", C._schedule_ignores_flag)  # 11/9/7/5 without the flag: the plain hint
    assert "every stage gets 15, 11, 9, 7" in ignored.message and "another ablation" not in ignored.message


def test_skip_addition_checker_names_skips_added_to_the_next_layers_input():
    from posebook.check import mspn as C

    def next_input(layers, x, previous_down, previous_up, down_skip, up_skip):  # a learner's spelling
        outs = []
        for i, layer in enumerate(layers):
            x = layer(x)
            outs.append(x)
            x = x + down_skip[i](previous_down[i]) + up_skip[i](previous_up[i])
        return outs

    for fn in (next_input, C._skips_added_to_next_input):
        result = _check("mspn_skip_addition", fn)
        assert result.status == "failed"
        assert "layer 1 (stride 4)" in result.message and "added to what layer 2 reads" in result.message
    not_fed = _check("mspn_skip_addition", C._skips_not_fed_forward)
    assert "layer 2 (stride 8)" in not_fed.message and "read layer 1's output without the skips" in not_fed.message

    def no_skips(layers, x, previous_down, previous_up, down_skip, up_skip):  # no wrong answer's hint fits
        outs = []
        for layer in layers:
            x = layer(x)
            outs.append(x)
        return outs

    result = _check("mspn_skip_addition", no_skips)
    assert result.status == "failed" and "added to what layer" not in result.message
    assert "x = layer(x) + down_skip" in result.message


def _chapter05_reuse(outputs, targets, weights, stages, topk):
    """A learner who reuses chapter 05's per-joint L2 and OHKM (with the book's 0.5) and the doubled weights."""
    from posebook.losses import joint_losses, ohkm_loss

    total = 0
    for i in range(4 * stages):
        per_joint = joint_losses(outputs[i], targets[i], weights[i])
        total = total + (0.5 * per_joint.mean() if i % 4 < 3 else 2 * ohkm_loss(per_joint, topk))
    return total


def _official_form(outputs, targets, weights, stages, topk):
    """The official code's spelling: no 0.5, weights 1/4 and 1, a float total."""
    total = 0.0
    for s in range(stages):
        for level in range(4):
            o, t, w = outputs[4 * s + level], targets[4 * s + level], weights[4 * s + level]
            per_joint = ((o - t) * w[:, :, None, None]).pow(2).mean(dim=(2, 3))
            if level < 3:
                total += per_joint.mean().item() / 4
            else:
                total += per_joint.sort(dim=1, descending=True).values[:, :topk].mean().item()
    return total


def test_staged_loss_checker_passes_both_conventions_and_the_library_loss():
    from posebook.check.mspn import LOSS_CASES, _loss_case, staged_loss_solution

    assert _check("mspn_staged_loss", _chapter05_reuse).passed
    assert _check("mspn_staged_loss", _official_form).passed
    for stages, topk, seed, b in LOSS_CASES:  # the reference solution (book convention) is the library's total
        case = _loss_case(stages, seed, b=b)
        assert float(staged_loss_solution(*case, stages, topk)) == pytest.approx(
            float(mspn_loss(stages, topk)(*case)), rel=1e-6)


def test_staged_loss_checker_names_each_wrong_convention_and_the_stage_average():
    from posebook.losses import joint_losses, ohkm_loss

    def half_with_official_weights(outputs, targets, weights, stages, topk):  # chapter 05's 0.5, weights 1/4 and 1
        total = 0
        for i in range(4 * stages):
            per_joint = joint_losses(outputs[i], targets[i], weights[i])
            total = total + (per_joint.mean() / 4 if i % 4 < 3 else ohkm_loss(per_joint, topk))
        return total

    result = _check("mspn_staged_loss", half_with_official_weights)
    assert result.status == "failed" and "half the official one" in result.message
    assert "doubled weights, 1/2" in result.message and "1/4 and 1 go with the official per-joint loss" in result.message

    def doubled_without_half(outputs, targets, weights, stages, topk):
        return 2 * _official_form(outputs, targets, weights, stages, topk)

    assert "twice the official one" in _check("mspn_staged_loss", doubled_without_half).message

    def over_stages(outputs, targets, weights, stages, topk):  # halves a 2-stage total: must not read as the 0.5
        return _chapter05_reuse(outputs, targets, weights, stages, topk) / stages

    result = _check("mspn_staged_loss", over_stages)
    assert "summed, not averaged" in result.message and "half" not in result.message


def test_every_staged_loss_mutant_gets_its_own_hint():
    from posebook.check import exercises

    messages = {label: _check("mspn_staged_loss", fn).message for label, fn in
                exercises()["mspn_staged_loss"].mutants.items()}
    hints = {m.split(": ", 1)[1] for m in messages.values()}
    assert len(hints) == len(messages), messages
    assert not any("expected" in h.split(";")[0] for h in hints), messages  # none falls back to the generic text
