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
