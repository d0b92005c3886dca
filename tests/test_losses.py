"""Heatmap losses against values computed by hand: HRNet's JointsMSELoss, OHKM top-k, intermediate supervision."""
import pytest
import torch

from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss, joint_losses, ohkm_loss


def two_by_two(*values):
    """A (1, K, 1, 2) tensor from K pairs of pixel values."""
    return torch.tensor([[[list(v)] for v in values]], dtype=torch.float32)


def test_joints_mse_is_half_the_mean_squared_error_averaged_over_joints():
    output = two_by_two((1, 3), (0, 0))
    target = two_by_two((0, 1), (2, 0))
    # joint 0: 0.5 * (1 + 4) / 2 = 1.25; joint 1: 0.5 * (4 + 0) / 2 = 1.0; mean 1.125
    loss = JointsMSELoss(use_target_weight=False)(output, target)
    assert loss.item() == pytest.approx(1.125)


def test_joints_mse_multiplies_prediction_and_target_by_the_weight():
    output = two_by_two((1, 3), (0, 0))
    target = two_by_two((0, 1), (2, 0))
    weight = torch.tensor([[0.0, 2.0]])
    # joint 0 masked out; joint 1: 0.5 * ((2*0 - 2*2)^2 + 0) / 2 = 4.0; averaged over both joints: 2.0
    assert JointsMSELoss()(output, target, weight).item() == pytest.approx(2.0)
    assert JointsMSELoss()(output, target, weight[..., None]).item() == pytest.approx(2.0)  # HRNet's (B, K, 1)


def test_joints_mse_equals_hrnets_per_joint_loop():
    g = torch.Generator().manual_seed(0)
    output, target = torch.rand(3, 5, 4, 6, generator=g), torch.rand(3, 5, 4, 6, generator=g)
    weight = torch.rand(3, 5, 1, generator=g)
    mse = torch.nn.MSELoss()
    looped = sum(0.5 * mse(output[:, k].reshape(3, -1) * weight[:, k], target[:, k].reshape(3, -1) * weight[:, k])
                 for k in range(5)) / 5
    assert JointsMSELoss()(output, target, weight).item() == pytest.approx(looped.item(), rel=1e-6)


def test_ohkm_keeps_each_samples_top_k_joint_losses():
    per_joint = torch.tensor([[1.0, 5.0, 3.0, 0.0], [2.0, 2.0, 8.0, 4.0]])
    # sample 0 top-2: 5, 3 -> 4; sample 1 top-2: 8, 4 -> 6; batch mean 5
    assert ohkm_loss(per_joint, topk=2).item() == pytest.approx(5.0)
    assert ohkm_loss(per_joint, topk=4).item() == pytest.approx(per_joint.mean().item())
    with pytest.raises(ValueError, match="topk=5"):
        ohkm_loss(per_joint, topk=5)


def test_ohkm_loss_module_uses_per_joint_mse():
    output = two_by_two((1, 3), (0, 0), (0, 2))
    target = two_by_two((0, 1), (2, 0), (0, 0))
    # per joint: 1.25, 1.0, 1.0 -> top-1 = 1.25, top-2 = 1.125
    assert JointsOHKMMSELoss(topk=1, use_target_weight=False)(output, target).item() == pytest.approx(1.25)
    assert JointsOHKMMSELoss(topk=2)(output, target, torch.ones(1, 3)).item() == pytest.approx(1.125)
    assert joint_losses(output, target).shape == (1, 3)


def test_multi_output_loss_sums_each_output_against_the_shared_target():
    target = two_by_two((0, 1), (2, 0))
    outputs = [two_by_two((1, 3), (0, 0)), target.clone()]  # 1.125 + 0
    base = JointsMSELoss(use_target_weight=False)
    assert MultiOutputLoss(base)(outputs, target).item() == pytest.approx(1.125)
    assert MultiOutputLoss(base, reduction="mean")(outputs, target).item() == pytest.approx(0.5625)
    assert MultiOutputLoss(base, weights=[0, 1])(outputs, target).item() == 0.0  # only the last supervised


def test_multi_output_loss_takes_one_target_and_weight_per_output():
    output = two_by_two((1, 3), (0, 0))
    targets = [two_by_two((0, 1), (2, 0)), two_by_two((1, 3), (0, 0))]
    weights = [torch.ones(1, 2), torch.zeros(1, 2)]
    loss = MultiOutputLoss(JointsMSELoss(), weights=[2.0, 1.0])([output, output], targets, weights)
    assert loss.item() == pytest.approx(2 * 1.125)


def test_loss_shape_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"output has shape \(1, 2, 1, 2\) but target has \(1, 3, 1, 2\)"):
        JointsMSELoss()(two_by_two((0, 0), (0, 0)), two_by_two((0, 0), (0, 0), (0, 0)), torch.ones(1, 2))
    with pytest.raises(ValueError, match=r"target_weight has shape \(1, 3\)"):
        JointsMSELoss()(two_by_two((0, 0), (0, 0)), two_by_two((0, 0), (0, 0)), torch.ones(1, 3))
    with pytest.raises(ValueError, match="3 weights for 2 outputs"):
        MultiOutputLoss(JointsMSELoss(), weights=[1, 1, 1])([torch.zeros(1, 2, 1, 2)] * 2, torch.zeros(1, 2, 1, 2),
                                                             torch.ones(1, 2))


def test_multi_output_loss_applies_each_base_to_its_own_output():
    target = two_by_two((0, 1), (2, 0))
    first = two_by_two((1, 3), (0, 0))  # per joint 1.25, 1.0: MSE 1.125, top-1 1.25
    second = two_by_two((0, 1), (0, 0))  # per joint 0.0, 1.0: MSE 0.5, top-1 1.0
    bases = [JointsMSELoss(use_target_weight=False), JointsOHKMMSELoss(topk=1, use_target_weight=False)]
    assert MultiOutputLoss(bases)([first, second], target).item() == pytest.approx(1.125 + 1.0)
    assert MultiOutputLoss(bases[::-1])([first, second], target).item() == pytest.approx(1.25 + 0.5)
    weighted = MultiOutputLoss(tuple(bases), weights=[0.25, 2.0])([first, second], target)
    assert weighted.item() == pytest.approx(0.25 * 1.125 + 2.0 * 1.0)
    assert MultiOutputLoss(bases, reduction="mean")([first, second], target).item() == pytest.approx(2.125 / 2)


def test_multi_output_loss_single_base_is_unchanged_and_equals_it_repeated():
    g = torch.Generator().manual_seed(3)
    outputs = [torch.rand(2, 4, 3, 5, generator=g) for _ in range(3)]
    target, weight = torch.rand(2, 4, 3, 5, generator=g), torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    base = JointsMSELoss()
    single = MultiOutputLoss(base, weights=[0.5, 1.0, 2.0])
    assert single.base is base
    by_hand = sum(w * base(o, target, weight).item() for w, o in zip([0.5, 1.0, 2.0], outputs))
    assert single(outputs, target, weight).item() == pytest.approx(by_hand, rel=1e-6)
    repeated = MultiOutputLoss([base] * 3, weights=[0.5, 1.0, 2.0])
    assert repeated(outputs, target, weight).item() == pytest.approx(by_hand, rel=1e-6)


def test_multi_output_loss_base_count_mismatch_names_both_counts():
    outputs = [torch.zeros(1, 2, 1, 2)] * 5
    with pytest.raises(ValueError, match="5 outputs but 4 base losses"):
        MultiOutputLoss([JointsMSELoss()] * 4)(outputs, torch.zeros(1, 2, 1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="5 outputs but 4 base losses"):
        MultiOutputLoss([JointsMSELoss()] * 4, weights=[1] * 4)(outputs, torch.zeros(1, 2, 1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="2 base losses but 3 weights"):
        MultiOutputLoss([JointsMSELoss()] * 2, weights=[1, 1, 1])
    with pytest.raises(ValueError, match="non-empty list of losses"):
        MultiOutputLoss([])


def test_multi_output_loss_with_per_output_bases_is_cpns_official_total():
    """The official CPN code's loss, written from its formula: the four GlobalNet L2 terms averaged and halved (targets
    zeroed for joints not labelled visible, every joint penalised), plus RefineNet's per-joint MSE masked by labelled
    joints with each sample's top 8 averaged, then the batch (no 0.5)."""
    g = torch.Generator().manual_seed(14)
    b, k = 3, 17
    outputs = [torch.rand(b, k, 8, 6, generator=g) for _ in range(5)]
    targets = [torch.rand(b, k, 8, 6, generator=g) for _ in range(5)]
    v = torch.randint(0, 3, (b, k), generator=g).float()
    visible, labelled = (v > 1.1).float(), (v > 0.1).float()
    global_targets = [t * visible[:, :, None, None] for t in targets[:4]]
    official_global = sum((o - t).pow(2).mean() for o, t in zip(outputs[:4], global_targets)) / 4 / 2
    refine = (outputs[4] - targets[4]).pow(2).mean(dim=(2, 3)) * labelled
    official_refine = torch.stack([row.topk(8).values.sum() / 8 for row in refine]).mean()
    loss = MultiOutputLoss([JointsMSELoss()] * 4 + [JointsOHKMMSELoss(topk=8)], weights=[0.25] * 4 + [2.0])
    ours = loss(outputs, global_targets + targets[4:], [torch.ones(b, k)] * 4 + [labelled])
    assert ours.item() == pytest.approx((official_global + official_refine).item(), rel=1e-6)
