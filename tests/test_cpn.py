"""CPN: GlobalNet's top-down path, RefineNet's concatenation, the non-local block, the model's cost against the paper,
its targets and losses, and OHKM against values computed by hand from the official definition."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

from posebook import bench
from posebook.blocks import GlobalNet, NonLocalBlock, RefineNet
from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss
from posebook.models import create
from posebook.models.cpn import CPN, cpn_codecs

pytestmark = pytest.mark.usefixtures("one_thread")  # two threads stall on a busy 2-core machine


def maps(channels, sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, h, w, generator=g) for c, (h, w) in zip(channels, sizes)]


@pytest.fixture(scope="module")
def cpn_meta():
    with torch.device("meta"):
        return create("cpn", depth=50)


# --- shapes -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(256, 192), (250, 190)])
def test_cpn_outputs_four_global_heatmaps_then_the_refined_one_at_a_quarter(cpn_meta, size):
    h4, w4 = -(-(-(-size[0] // 2)) // 2), -(-(-(-size[1] // 2)) // 2)  # conv1 and maxpool each round up
    outputs = cpn_meta(torch.zeros(2, 3, *size, device="meta"))
    assert isinstance(outputs, list) and len(outputs) == 5
    assert all(o.shape == (2, 17, h4, w4) for o in outputs)
    assert cpn_meta.predict(torch.zeros(1, 3, *size, device="meta")).shape == (1, 17, h4, w4)


@pytest.mark.parametrize("sizes", [[(8, 6), (4, 3), (2, 2), (1, 1)],  # 32x24 input: exact halvings
                                   [(9, 7), (5, 4), (3, 2), (2, 1)]])  # odd: every resize by size, not by 2
def test_globalnet_and_refinenet_shapes(sizes):
    net = GlobalNet(in_channels=(8, 16, 32, 64), channels=12, num_joints=3)
    features = {s: m for s, m in zip((4, 8, 16, 32), maps((8, 16, 32, 64), sizes))}
    pyramid, heatmaps = net(features)
    assert [p.shape[-2:] for p in pyramid] == [torch.Size(s) for s in sizes[::-1]]  # coarse to fine
    assert all(p.shape[:2] == (2, 12) for p in pyramid)
    assert all(h.shape == (2, 3, *sizes[0]) for h in heatmaps)  # every level at the finest level's size
    refine = RefineNet(channels=12, num_joints=3)
    assert refine(pyramid).shape == (2, 3, *sizes[0])


# --- GlobalNet: upsample, 1x1 conv, add --------------------------------------------------------------------------

def lateral_by_hand(block, x):
    """1x1 conv + BN (eval: running statistics) + ReLU, written out."""
    conv, bn = block[0], block[1]
    y = torch.einsum("oi,bihw->bohw", conv.weight[:, :, 0, 0], x)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return torch.relu((y - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None])


def test_globalnet_top_down_step_is_upsample_then_1x1_conv_then_add():
    torch.manual_seed(0)
    net = GlobalNet(in_channels=(3, 5), channels=4, num_joints=2)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # non-trivial BN statistics
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.bias.data.uniform_(-0.5, 0.5)
    net.merge[0].bias.data.uniform_(-1, 1)
    net.eval()
    c2, c3 = maps((3, 5), [(6, 4), (3, 2)])
    with torch.no_grad():
        coarse, fine = net.pyramid([c2, c3])
        p3 = lateral_by_hand(net.lateral[0], c3)
        up = F.interpolate(p3, size=(6, 4), mode="bilinear", align_corners=False)
        merged = torch.einsum("oi,bihw->bohw", net.merge[0].weight[:, :, 0, 0], up) + net.merge[0].bias[:, None, None]
        expected = lateral_by_hand(net.lateral[1], c2) + merged
    assert_close(coarse, p3)  # the coarsest level is its lateral alone
    assert_close(fine, expected)
    assert (fine < 0).any()  # no ReLU after the sum (the merge conv has no BN or ReLU either)


def test_upsampling_a_one_pixel_level_repeats_it():
    """By hand: a 1x1 coarse level upsampled to 2x2 is that pixel four times, so each fine pixel gets W p + b."""
    net = GlobalNet(in_channels=(1, 1), channels=1, num_joints=1).eval()
    with torch.no_grad():
        net.lateral[0][0].weight.fill_(2.0)  # coarse: relu(2 * 3) = 6
        net.lateral[1][0].weight.fill_(1.0)  # fine: relu(x)
        net.merge[0].weight.fill_(0.5), net.merge[0].bias.fill_(-1.0)  # 0.5 * 6 - 1 = 2
        fine = torch.tensor([[[[1.0, -1.0], [0.0, 4.0]]]])
        _, out = net.pyramid([fine, torch.full((1, 1, 1, 1), 3.0)])
    assert out.flatten().tolist() == pytest.approx([3.0, 2.0, 2.0, 6.0], abs=1e-4)  # relu(x) + 2 (BN eval ~ identity)


# --- RefineNet: bottlenecks per level, concatenation ---------------------------------------------------------------

def test_refinenet_puts_3_2_1_0_bottlenecks_on_c5_to_c2_and_concatenates_the_levels(cpn_meta):
    assert [len(b) for b in cpn_meta.refine_net.branches] == [3, 2, 1, 0]  # coarse (C5) to fine (C2)
    assert cpn_meta.refine_net.concat_channels == 1024  # 4 levels x 256
    final = cpn_meta.refine_net.final_bottleneck
    assert (final.conv1.in_channels, final.conv1.out_channels, final.conv3.out_channels) == (1024, 128, 256)
    assert final.downsample is not None  # projection shortcut 1024 -> 256
    assert all(u.downsample is None and u.conv1.out_channels == 128 for b in cpn_meta.refine_net.branches for u in b)


def test_refinenet_concatenation_is_every_level_upsampled_to_the_finest_in_order():
    net = RefineNet(channels=4, num_joints=2, bottlenecks=(0, 0, 0))  # no bottlenecks: branches are identities
    pyramid = maps((4, 4, 4), [(2, 1), (4, 2), (8, 4)])
    cat = net.concatenated(pyramid)
    assert cat.shape == (2, 12, 8, 4) and net.concat_channels == 12
    resized = [F.interpolate(p, size=(8, 4), mode="bilinear", align_corners=False) for p in pyramid[:2]]
    assert_close(cat, torch.cat([*resized, pyramid[2]], dim=1))


# --- NonLocalBlock -------------------------------------------------------------------------------------------------

def test_non_local_block_starts_as_identity_and_its_affinity_rows_sum_to_one():
    block = NonLocalBlock(8)
    assert block.inter_channels == 4
    x = maps((8,), [(3, 4)])[0]
    for mode in (True, False):
        block.train(mode)
        assert torch.equal(block(x), x)
    f = block.affinity(x)
    assert f.shape == (2, 12, 12) and (f >= 0).all()
    assert_close(f.sum(dim=-1), torch.ones(2, 12))
    with torch.no_grad():
        block.W[1].weight.fill_(1.0)
    assert not torch.allclose(block(x), x)  # once W learns, the block adds context


def test_cpn_with_non_local_applies_it_to_c5_only():
    with torch.device("meta"):
        plain, with_nl = CPN(), CPN(non_local=True)
    assert plain.non_local is None and with_nl.non_local.channels == 2048
    # theta, phi, g: 2048 -> 1024 (+ bias); W: 1024 -> 2048 (+ bias) + BN
    extra = 3 * (2048 * 1024 + 1024) + (1024 * 2048 + 2048) + 2 * 2048
    assert bench.count_params(with_nl) - bench.count_params(plain) == extra
    # the routing, on stand-ins: a backbone giving fixed 4-channel maps and a 4-channel block
    features = {s: torch.randn(1, 4, 64 // s, 48 // s) for s in (4, 8, 16, 32)}
    with_nl.backbone = type("Stub", (torch.nn.Module,), {"features": lambda self, x: dict(features)})()
    with_nl.non_local = NonLocalBlock(4).eval()
    with torch.no_grad():
        with_nl.non_local.W[1].weight.fill_(1.0)
        changed = with_nl.features(None)
    assert all(changed[s] is features[s] for s in (4, 8, 16)) and not torch.equal(changed[32], features[32])


# --- cost against the paper ----------------------------------------------------------------------------------------

def test_cpn_r50_parameters_match_the_papers_27_0m(cpn_meta):
    parts = {name: bench.count_params(getattr(cpn_meta, name)) for name in ("backbone", "global_net", "refine_net")}
    # ResNet-50 without fc; GlobalNet: laterals 3840*256 + 4 BN, merges 3 x (256*256 + 256), predictors
    # 4 x (256*256 + BN + 256*17*9 + BN); RefineNet: 6 units x 214,016 + final 574,976 + 3x3 conv 39,168 + BN 34
    assert parts == {"backbone": 23_508_032, "global_net": 1_603_464, "refine_net": 1_898_274}
    total = bench.count_params(cpn_meta)
    assert total == 27_009_770
    # HRNet's Table 1 prints 27.0M, rounded to 0.1M: the true count lies in [26.95M, 27.05M], 0.19% either side
    assert abs(total - 27.0e6) <= 0.05e6


def test_cpn_r50_gflops_beside_the_papers_6_2(cpn_meta):
    g = bench.gflops(cpn_meta, (256, 192))
    assert g == pytest.approx(6.734, abs=0.001)
    # CPN Table 3 gives 6.20 without saying how it counts; its own ResNet-50 row (3.54) is below our backbone's 3.73,
    # and our count takes GlobalNet's full-resolution predictors whole: 8.6% above, and no further
    assert 6.20 < g < 6.20 * 1.10


def test_create_cpn_by_name_and_depth():
    with torch.device("meta"):
        r50, r101 = create("cpn"), create("cpn", depth=101)
    assert isinstance(r50, CPN) and r50.depth == 50 and r101.depth == 101
    assert bench.count_params(r101) - bench.count_params(r50) == 42_500_160 - 23_508_032  # ResNet-101 vs -50


# --- targets and losses --------------------------------------------------------------------------------------------

def test_cpn_codecs_give_one_target_per_output_widest_on_the_coarsest_level():
    codecs = cpn_codecs((64, 48), (16, 12))
    assert [c.kernel for c in codecs] == [15, 11, 9, 7, 7]
    assert all(c.heatmap_size == (16, 12) and c.decode_kernel == 21 for c in codecs)
    kp, vis = np.array([[20.0, 30.0]]), np.array([2])
    assert all(c.peak == 255 for c in codecs)  # CPN-TF: target /= amax / 255
    assert max(c.encode(kp, vis)[0].max() for c in codecs) == pytest.approx(255)
    widths = [(c.encode(kp, vis)[0][0] > 0.5 * c.peak).sum() for c in codecs]  # pixels above half the peak
    assert widths[0] > widths[3] and widths[3] == widths[4]
    assert [c.kernel for c in cpn_codecs(global_kernels=(7, 9, 11, 15))] == [7, 9, 11, 15, 7]  # the released order


def test_globalnet_targets_draw_visible_joints_only_and_penalise_every_joint_as_the_official_code():
    # tf-cpn network.py: global_label = label * (valid > 1.1); RefineNet's loss is masked by valid > 0.1
    codecs = cpn_codecs((64, 48), (16, 12))
    kp = np.array([[20.0, 30.0], [30.0, 20.0], [10.0, 10.0]])
    vis = np.array([2, 1, 0])  # visible, labelled but occluded, unlabelled
    for c in codecs[:4]:
        heat, weight = c.encode(kp, vis)
        assert heat[0].max() == pytest.approx(255) and heat[1].max() == 0 and heat[2].max() == 0
        assert weight.tolist() == [1, 1, 1]  # the occluded joint is pushed towards an empty map
    heat, weight = codecs[4].encode(kp, vis)
    assert heat[0].max() == pytest.approx(255) and heat[1].max() == pytest.approx(255) and heat[2].max() == 0
    assert weight.tolist() == [1, 1, 0]
    every = cpn_codecs((64, 48), (16, 12), global_visible_only=False)[0].encode(kp, vis)
    assert every[0][1].max() == pytest.approx(255) and every[1].tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="global_visible_only='yes'"):
        cpn_codecs(global_visible_only="yes")


def test_multi_output_loss_trains_cpn_on_cpn_codecs_targets():
    torch.manual_seed(0)
    model = CPN()
    codecs = cpn_codecs((64, 48), (16, 12))
    g = np.random.default_rng(0)
    people = [(g.uniform(0, 48, (17, 1)), g.uniform(0, 64, (17, 1)), g.integers(0, 3, 17)) for _ in range(2)]
    encoded = [[c.encode(np.hstack([x, y]), v) for x, y, v in people] for c in codecs]
    targets = [torch.from_numpy(np.stack([t for t, _ in per])) for per in encoded]
    weights = [torch.from_numpy(np.stack([w for _, w in per])) for per in encoded]
    outputs = model(torch.randn(2, 3, 64, 48))
    l2 = MultiOutputLoss(JointsMSELoss())(outputs, targets, weights)
    official = (MultiOutputLoss(JointsMSELoss(), reduction="mean")(outputs[:4], targets[:4], weights[:4])
                + 2 * JointsOHKMMSELoss(topk=8)(outputs[4], targets[4], weights[4]))
    (l2 + official).backward()
    assert torch.isfinite(l2) and torch.isfinite(official)
    for p in (model.backbone.conv1.weight, model.global_net.lateral[0][0].weight,
              model.refine_net.final_layer[0].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


# --- OHKM against the official definition --------------------------------------------------------------------------

def test_ohkm_against_the_official_definition_by_hand():
    """CPN's official OHKM: per joint, the MSE over pixels times (v > 0); per sample, the sum of the top M over M; the
    mean over the batch. Ours is HRNet's port of it: the same, times 0.5."""
    # (B=2, K=4, 1 x 2 pixels); target 0, so each joint's MSE is the mean of its two squared values
    output = torch.tensor([[[[1.0, 1.0]], [[2.0, 0.0]], [[3.0, 3.0]], [[1.0, 3.0]]],
                           [[[2.0, 2.0]], [[0.0, 0.0]], [[1.0, 0.0]], [[4.0, 0.0]]]])
    target = torch.zeros_like(output)
    weight = torch.tensor([[1.0, 1.0, 0.0, 1.0],  # joint 2 (MSE 9, the largest) unlabelled
                           [1.0, 1.0, 1.0, 0.0]])  # joint 3 (MSE 8, the largest) unlabelled
    # masked per-joint MSE: sample 0 [1, 2, 0, 5]; sample 1 [4, 0, 0.5, 0]
    official = {1: (5 + 4) / 2,  # top-1: 5 and 4
                2: ((5 + 2) / 2 + (4 + 0.5) / 2) / 2,  # top-2: 3.5 and 2.25
                4: ((1 + 2 + 0 + 5) / 4 + (4 + 0 + 0.5 + 0) / 4) / 2}  # all: 2 and 1.125; zeros still count
    assert official == {1: 4.5, 2: 2.875, 4: 1.5625}
    for m, value in official.items():
        assert JointsOHKMMSELoss(topk=m)(output, target, weight).item() == pytest.approx(0.5 * value)
    # M = all with every weight 1 is 0.5 x the plain mean squared error
    ones = torch.ones(2, 4)
    assert JointsOHKMMSELoss(topk=4)(output, target, ones).item() == pytest.approx(0.5 * output.pow(2).mean().item())


# --- bad input -----------------------------------------------------------------------------------------------------

def test_bad_arguments_and_inputs_name_what_was_expected():
    with pytest.raises(ValueError, match=r"CPN depth=34 is not one of \[50, 101, 152\]"):
        CPN(depth=34)
    with pytest.raises(ValueError, match="depth=18"):
        create("cpn", depth=18)
    net = GlobalNet(in_channels=(8, 16), channels=4, num_joints=2)
    c2, c3 = maps((8, 16), [(4, 4), (2, 2)])
    with pytest.raises(ValueError, match=r"GlobalNet features\[8\] has 8 channels; expected 16"):
        net({4: c2, 8: c2[:, :, :2, :2]})
    with pytest.raises(ValueError, match=r"got 1 feature maps; in_channels=\(8, 16\) expects 2"):
        net([c2])
    with pytest.raises(ValueError, match=r"RefineNet expects a list of 4 maps"):
        RefineNet(channels=4, num_joints=2)(maps((4, 4), [(2, 2), (4, 4)]))
    with pytest.raises(ValueError, match=r"RefineNet pyramid\[1\] has 8 channels; expected 4"):
        RefineNet(channels=4, num_joints=2, bottlenecks=(1, 0))(maps((4, 8), [(2, 2), (4, 4)]))
    with pytest.raises(ValueError, match=r"RefineNet bottlenecks=\(3, -1\)"):
        RefineNet(bottlenecks=(3, -1))
    with pytest.raises(ValueError, match="NonLocalBlock input has 4 channels; expected 8"):
        NonLocalBlock(8)(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match=r"cpn_codecs global_kernels=\(15, 11\)"):
        cpn_codecs(global_kernels=(15, 11))


# ---- chapter 05's exercise checkers: every planted wrong answer gets its own hint ---------------------------------

def test_every_planted_ohkm_mutant_gets_its_own_hint():
    from posebook.check import check, cpn
    from posebook.check._core import exercises

    mutants = exercises()["ohkm"].mutants
    assert set(mutants.values()) <= set(cpn.OHKM_HINTS)
    for label, fn in mutants.items():
        result = check("ohkm", fn)
        assert result.status == "failed" and cpn.OHKM_HINTS[fn] in result.message, (label, result.message)
    # the mask-aware mean is caught by the case with fewer labelled joints than topk
    assert "only 1 labelled joint" in check("ohkm", cpn._ohkm_divide_by_kept_labelled).message


def test_ohkm_cases_have_no_batch_of_two_and_no_coincident_mutants():
    from posebook.check import cpn
    from posebook.losses import JointsOHKMMSELoss

    cases = cpn._ohkm_cases()
    assert all(w.shape[0] != 2 and topk < w.shape[0] for _, _, w, topk in cases)
    assert any(int((w > 0).sum(1).min()) < topk for _, _, w, topk in cases)
    for output, target, weight, topk in cases:
        want = float(JointsOHKMMSELoss(topk=topk)(output, target, weight))
        values = {}
        for fn, hint in cpn.OHKM_HINTS.items():
            value = float(fn(output, target, weight, topk))
            if abs(value - want) > 1e-5 * max(1.0, abs(want)):
                for other, other_hint in values.items():  # two wrong answers alike only if they share the hint
                    assert abs(other - value) > 1e-5 * max(1.0, abs(value)) or other_hint == hint
                values[value] = hint


def test_right_ohkm_answers_written_differently_pass():
    from posebook.check import check

    def by_sort(output, target, target_weight, topk):
        per = 0.5 * ((output - target) * target_weight[:, :, None, None]).pow(2).mean(dim=(2, 3))
        return per.sort(dim=1, descending=True).values[:, :topk].sum(1).div(topk).mean()

    def by_loop(output, target, target_weight, topk):
        w = target_weight[:, :, None, None]
        rows = []
        for b in range(output.shape[0]):
            per = torch.stack([0.5 * F.mse_loss(output[b, k] * w[b, k], target[b, k] * w[b, k])
                               for k in range(output.shape[1])])
            rows.append(per.topk(topk).values.mean())
        return torch.stack(rows).mean()

    def weight_after_squaring(output, target, target_weight, topk):  # right for 0/1 weights
        per = 0.5 * (output - target).pow(2).mean(dim=(2, 3)) * target_weight
        return per.topk(topk, dim=1).values.mean()

    for fn in (by_sort, by_loop, weight_after_squaring):
        assert check("ohkm", fn).passed, fn.__name__


def test_globalnet_merge_hint_calls_half_pixel_centres_this_books_choice():
    from posebook.check import check, cpn

    message = check("globalnet_merge", cpn._merge_align_corners).message
    assert "this book's GlobalNet" in message and "i * in / out" in message
    assert "this book's choice" in cpn.globalnet_merge_solution.__doc__


def test_every_planted_globalnet_target_mutant_gets_its_own_hint():
    from posebook.check import check, cpn
    from posebook.check._core import exercises

    ex = exercises()["globalnet_target"]
    assert check("globalnet_target", ex.solution).passed
    assert set(ex.mutants.values()) <= set(cpn.GLOBAL_TARGET_HINTS)
    for label, fn in ex.mutants.items():
        result = check("globalnet_target", fn)
        assert result.status == "failed" and cpn.GLOBAL_TARGET_HINTS[fn] in result.message, (label, result.message)


def test_the_globalnet_target_solution_is_what_cpn_codecs_draw():
    from posebook.check import cpn

    codecs = cpn_codecs((64, 48), (16, 12))
    kp = np.array([[20.0, 30.0], [30.0, 20.0], [10.0, 10.0], [40.0, 40.0]])
    vis = np.array([2, 1, 0, 1])
    refine, _ = codecs[4].encode(kp, vis)
    global_target, global_weight = codecs[3].encode(kp, vis)
    got, weight = cpn.globalnet_target_solution(torch.from_numpy(refine), torch.from_numpy(vis))
    assert np.allclose(got.numpy(), global_target) and np.allclose(weight.numpy(), global_weight)
