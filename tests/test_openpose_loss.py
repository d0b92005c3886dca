"""OpenPose's loss against hand computations: masked L2 over every stage and both branches, mean or Caffe form."""
import pytest
import torch

from posebook.losses import openpose_loss, openpose_stage_losses


def maps(*rows):
    """A (1, C, 1, W) tensor from C rows of pixel values."""
    return torch.tensor([[[list(r)] for r in rows]], dtype=torch.float32)


# one image, a 1 x 2 map: PAFs 2 channels, confidence maps 1 channel
PAF_TARGET = maps((0, 1), (1, 0))
HEATMAP_TARGET = maps((1, 0))
TARGET = (PAF_TARGET, HEATMAP_TARGET)


def two_stages():
    """Two stages of (PAFs, maps) with known errors (stage 1 wrong, stage 2 right but for one value)."""
    pafs = [maps((1, 1), (1, 2)), maps((0, 1), (1, 0))]  # stage 1: squared errors 1, 0 | 0, 4; stage 2: 0
    heatmaps = [maps((0, 3)), maps((1, 2))]  # stage 1: 1, 9; stage 2: 0, 4
    return pafs, heatmaps


def random_stages(g, stages, shape):
    return [torch.rand(*shape, generator=g) for _ in range(stages)]


def test_all_zero_mask_gives_zero():
    g = torch.Generator().manual_seed(0)
    outputs = (random_stages(g, 3, (2, 4, 5, 6)), random_stages(g, 3, (2, 3, 5, 6)))
    target = (torch.rand(2, 4, 5, 6, generator=g), torch.rand(2, 3, 5, 6, generator=g))
    assert openpose_loss(outputs, target, torch.zeros(2, 1, 5, 6)).item() == 0
    assert openpose_loss(outputs, target, torch.zeros(2, 1, 5, 6), reduction="caffe").item() == 0
    assert openpose_loss(outputs, target).item() > 0


def test_toy_example_equals_the_hand_computation():
    outputs = two_stages()
    # mean over B x C x h x w: PAFs stage 1 (1 + 0 + 0 + 4) / 4, stage 2 0; maps stage 1 (1 + 9) / 2, stage 2 4 / 2
    terms = openpose_stage_losses(outputs, TARGET)
    assert [t.item() for t in terms["pafs"]] == [1.25, 0.0]
    assert [t.item() for t in terms["heatmaps"]] == [5.0, 2.0]
    assert openpose_loss(outputs, TARGET).item() == pytest.approx(8.25)
    # Caffe: each term's sum / 2N with N = 1 image: 5 / 2 + 0 + 10 / 2 + 4 / 2
    assert openpose_loss(outputs, TARGET, reduction="caffe").item() == pytest.approx(9.5)


def test_mask_is_broadcast_over_channels():
    outputs = two_stages()
    mask = torch.tensor([[[[1.0, 0.0]]]])  # the second pixel unannotated, in every channel
    # PAFs stage 1: (1 + 0) / 4; maps stage 1: 1 / 2; stage 2: 0 + 0
    terms = openpose_stage_losses(outputs, TARGET, mask)
    assert [t.item() for t in terms["pafs"]] == [0.25, 0.0] and [t.item() for t in terms["heatmaps"]] == [0.5, 0.0]
    assert openpose_loss(outputs, TARGET, mask[:, 0]).item() == pytest.approx(0.75)  # a (B, h, w) mask alike
    assert openpose_loss(outputs, TARGET, mask, reduction="caffe").item() == pytest.approx(1 / 2 + 1 / 2)


def test_caffe_form_is_the_sum_over_2n_for_a_batch():
    g = torch.Generator().manual_seed(1)
    out, target = torch.rand(3, 2, 4, 4, generator=g), torch.rand(3, 2, 4, 4, generator=g)
    heat, heat_target = torch.rand(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g)
    mask = (torch.rand(3, 1, 4, 4, generator=g) > 0.3).float()
    expected = (((out - target) ** 2 * mask).sum() + ((heat - heat_target) ** 2 * mask).sum()) / (2 * 3)
    loss = openpose_loss(([out], [heat]), (target, heat_target), mask, reduction="caffe")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("paf_stages,cm_stages", [(6, 6), (3, 3), (4, 2), (5, 1)])
def test_one_term_per_stage_and_branch(paf_stages, cm_stages):
    g = torch.Generator().manual_seed(2)
    outputs = (random_stages(g, paf_stages, (2, 4, 3, 3)), random_stages(g, cm_stages, (2, 3, 3, 3)))
    target = (torch.rand(2, 4, 3, 3, generator=g), torch.rand(2, 3, 3, 3, generator=g))
    terms = openpose_stage_losses(outputs, target)
    assert (len(terms["pafs"]), len(terms["heatmaps"])) == (paf_stages, cm_stages)
    for branch, maps_, t in zip(("pafs", "heatmaps"), outputs, target):
        assert [x.item() for x in terms[branch]] == pytest.approx([((m - t) ** 2).mean().item() for m in maps_])
    assert openpose_loss(outputs, target).item() == pytest.approx(sum(x.item() for v in terms.values() for x in v))


def test_changing_one_stage_changes_only_its_term():
    pafs, heatmaps = two_stages()
    before = openpose_stage_losses((pafs, heatmaps), TARGET)
    after = openpose_stage_losses((pafs, [heatmaps[0], HEATMAP_TARGET.clone()]), TARGET)
    assert after["heatmaps"][1].item() == 0 and after["heatmaps"][0] == before["heatmaps"][0]
    assert [t.item() for t in after["pafs"]] == [t.item() for t in before["pafs"]]


def test_loss_trains_every_stage_of_a_narrow_openpose():
    from posebook.models import create

    torch.manual_seed(0)
    model = create("openpose", stages=2, width=0.125, later_kernel=3)
    outputs = model(torch.randn(2, 3, 32, 32))
    target = (torch.rand(2, 38, 4, 4), torch.rand(2, 19, 4, 4))
    openpose_loss(outputs, target, torch.ones(2, 1, 4, 4)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.stages[0].parameters())


@pytest.mark.parametrize("outputs,target,mask,message", [
    (([maps((1, 1))], [maps((1, 0))]), TARGET, None,
     r"pafs of stage 1 has shape \(1, 1, 1, 2\) but the pafs target has \(1, 2, 1, 2\)"),
    (two_stages(), TARGET, torch.ones(1, 2, 1, 2), r"mask has shape \(1, 2, 1, 2\); expected \(B, 1, h, w\) = "
                                                   r"\(1, 1, 1, 2\)"),
    (([maps((1, 1), (0, 0))], [maps((1, 0, 0))]), (PAF_TARGET, maps((1, 0, 0))), None,
     r"the pafs target \(1, 2, 1, 2\) and the heatmaps target \(1, 1, 1, 3\) differ in batch or map size"),
])
def test_bad_shapes_raise_naming_the_shapes(outputs, target, mask, message):
    with pytest.raises(ValueError, match=message):
        openpose_loss(outputs, target, mask)


def test_outputs_not_a_pair_of_lists_and_bad_reduction_raise():
    with pytest.raises(TypeError, match=r"outputs must be \(pafs, heatmaps\), two lists"):
        openpose_loss([PAF_TARGET, HEATMAP_TARGET], TARGET)
    with pytest.raises(TypeError, match=r"target must be \(pafs, heatmaps\), two \(B, C, h, w\) tensors"):
        openpose_loss(two_stages(), PAF_TARGET)
    with pytest.raises(ValueError, match=r"reduction='sum'; expected one of \('mean', 'caffe'\)"):
        openpose_loss(two_stages(), TARGET, reduction="sum")
