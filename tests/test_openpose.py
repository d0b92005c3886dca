"""OpenPose (CVPR'17 two-branch, TPAMI'19 PAF-first): exact parameter counts and multiply-adds of the CMU models, the
stage wiring, no activation after the output convs, and narrow variants that run on a CPU."""
import pytest
import torch
from torch import nn

from posebook.bench import count_params, real_macs
from posebook.blocks import Concat3x3Block, SingleBranchStage, TwoBranchStage, VGG19Front
from posebook.models import create
from posebook.models.openpose import OpenPose, OpenPosePAFFirst


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the CPU is shared)."""


def on_meta(name, **kwargs):
    """The model on the meta device: shapes and a shape-only forward, no memory or arithmetic (fast)."""
    with torch.device("meta"):
        return create(name, **kwargs)


@pytest.fixture(scope="module")
def cvpr17():
    return on_meta("openpose")


@pytest.fixture(scope="module")
def body25():
    return on_meta("openpose_paf_first", num_pafs=52, num_heatmaps=26)


# ---- sizes of the CMU models ---------------------------------------------------------------------------------------

def test_cvpr17_coco_model_has_52_311_446_parameters_and_a_7_340_480_front(cvpr17):
    assert count_params(cvpr17) == 52_311_446
    assert count_params(cvpr17.front) == 7_340_480


def test_body25_has_26_166_084_parameters_with_99_prelus(body25):
    assert count_params(body25) == 26_166_084
    assert sum(isinstance(m, nn.PReLU) for m in body25.modules()) == 99
    # conv4_2, conv4_3_CPM and conv4_4_CPM: 512 + 256 + 128 slopes
    assert sum(m.weight.numel() for m in body25.front.modules() if isinstance(m, nn.PReLU)) == 896


@pytest.mark.parametrize("paf_stages,cm_stages,expected", [(4, 2, 26_050_878), (5, 1, 26_038_737),
                                                           (3, 1, 18_726_277)])
def test_tpami_architecture_with_coco18_heads_has_the_computed_counts(paf_stages, cm_stages, expected):
    assert count_params(on_meta("openpose_paf_first", paf_stages=paf_stages, cm_stages=cm_stages)) == expected


def test_real_multiply_adds_at_368_are_135_9e9_and_80_6e9(cvpr17, body25):
    assert round(real_macs(cvpr17, (368, 368)) / 1e9, 1) == 135.9
    assert round(real_macs(body25, (368, 368)) / 1e9, 1) == 80.6


@pytest.mark.parametrize("kwargs,expected", [(dict(width=0.25, stages=3, later_kernel=3), 789_531),
                                             (dict(width=0.25, stages=3), 1_900_571)])
def test_quarter_width_cvpr17_variants_have_the_reviewed_counts(kwargs, expected):
    assert count_params(on_meta("openpose", **kwargs)) == expected


def test_quarter_width_paf_first_2paf_1cm_count():
    # the review's scratch model had 224 fewer: ReLU instead of the front's PReLUs (896 x 0.25 slopes)
    assert count_params(on_meta("openpose_paf_first", width=0.25, paf_stages=2, cm_stages=1)) == 965_919


# ---- structure -------------------------------------------------------------------------------------------------------

def test_outputs_at_368_are_every_stages_maps_at_46x46(cvpr17, body25):
    pafs, heatmaps = cvpr17(torch.zeros(2, 3, 368, 368, device="meta"))
    assert [p.shape for p in pafs] == [(2, 38, 46, 46)] * 6
    assert [h.shape for h in heatmaps] == [(2, 19, 46, 46)] * 6
    pafs, heatmaps = body25(torch.zeros(2, 3, 368, 368, device="meta"))
    assert [p.shape for p in pafs] == [(2, 52, 46, 46)] * 4
    assert [h.shape for h in heatmaps] == [(2, 26, 46, 46)] * 2
    last = body25.predict(torch.zeros(1, 3, 368, 368, device="meta"))
    assert [t.shape for t in last] == [(1, 52, 46, 46), (1, 26, 46, 46)]


def test_front_is_vgg19_to_conv4_2_then_the_two_cpm_layers(cvpr17):
    convs = [(name, m.in_channels, m.out_channels) for name, m in cvpr17.front.named_children()
             if isinstance(m, nn.Conv2d)]
    assert convs == [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
                     ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
                     ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3_CPM", 512, 256),
                     ("conv4_4_CPM", 256, 128)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in cvpr17.front) == 3


def test_body25_front_has_relu_to_conv4_1_and_prelu_from_conv4_2(body25, cvpr17):
    kinds = [type(m).__name__ for m in body25.front if isinstance(m, (nn.ReLU, nn.PReLU))]
    assert kinds == ["ReLU"] * 9 + ["PReLU"] * 3
    assert all(not isinstance(m, nn.PReLU) for m in cvpr17.modules())


def branches(model):
    """Every branch of every stage, as (name, Sequential ending in its output conv)."""
    if isinstance(model, OpenPose):
        return [(f"stages.{t}.{b}", getattr(stage, b)) for t, stage in enumerate(model.stages)
                for b in ("paf_branch", "heatmap_branch")]
    return [(f"{kind}.{t}", stage) for kind in ("paf_stages", "cm_stages")
            for t, stage in enumerate(getattr(model, kind))]


@pytest.mark.parametrize("name", ["openpose", "openpose_paf_first"])
def test_no_activation_after_any_output_conv(name):
    model = on_meta(name)
    found = branches(model)
    assert len(found) == (12 if name == "openpose" else 6)
    for where, branch in found:
        last_name, last = list(branch.named_children())[-1]
        assert last_name == "output" and type(last) is nn.Conv2d, where
        assert last.kernel_size == (1, 1) and last.out_channels in (model.num_pafs, model.num_heatmaps), where
    # the only convs that make PAFs or maps are the branches' last children
    outputs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)
               and m.out_channels in (model.num_pafs, model.num_heatmaps)]
    assert outputs == [f"{where}.output" for where, _ in found]


def test_cvpr17_has_relu_after_every_conv_but_the_outputs():
    model = on_meta("openpose", stages=2)
    for where, branch in branches(model):
        children = list(branch.children())
        convs = [i for i, m in enumerate(children) if isinstance(m, nn.Conv2d)]
        assert all(isinstance(children[i + 1], nn.ReLU) for i in convs[:-1]), where
        assert convs[-1] == len(children) - 1, where


def test_cvpr17_stage_layout_3x3_then_7x7_reading_185_channels(cvpr17):
    first, later = cvpr17.stages[0].paf_branch, cvpr17.stages[1].heatmap_branch
    k = [(m.kernel_size[0], m.in_channels, m.out_channels) for m in first if isinstance(m, nn.Conv2d)]
    assert k == [(3, 128, 128)] * 3 + [(1, 128, 512), (1, 512, 38)]
    k = [(m.kernel_size[0], m.in_channels, m.out_channels) for m in later if isinstance(m, nn.Conv2d)]
    assert k == [(7, 185, 128)] + [(7, 128, 128)] * 4 + [(1, 128, 128), (1, 128, 19)]
    assert [s.in_channels for s in cvpr17.stages] == [128] + [185] * 5


def test_later_kernel_3_makes_the_cheap_cvpr17_variant():
    model = on_meta("openpose", later_kernel=3, stages=2)
    assert {m.kernel_size for m in model.stages[1].modules() if isinstance(m, nn.Conv2d)} == {(3, 3), (1, 1)}


def test_tpami_stage_order_by_channel_counts():
    # unequal head sizes tell the inputs apart: F = 128, PAFs = 10, maps = 6
    model = on_meta("openpose_paf_first", paf_stages=3, cm_stages=3, num_pafs=10, num_heatmaps=6)
    assert [s.in_channels for s in model.paf_stages] == [128, 128 + 10, 128 + 10]  # F; F + previous PAFs
    assert [s.in_channels for s in model.cm_stages] == [128 + 10, 128 + 6 + 10, 128 + 6 + 10]  # F + L; F + S + L
    assert [s.Mconv1.conv0.in_channels for s in (*model.paf_stages, *model.cm_stages)] == [128, 138, 138, 138, 144,
                                                                                           144]
    # the first stage of each kind 96 wide with a 256 1x1, later ones 128 wide with a 512 1x1
    widths = [(s.Mconv1.conv0.out_channels, s.Mconv6.out_channels) for s in (*model.paf_stages, *model.cm_stages)]
    assert widths == [(96, 256), (128, 512), (128, 512), (96, 256), (128, 512), (128, 512)]
    assert [s.output.out_channels for s in (*model.paf_stages, *model.cm_stages)] == [10] * 3 + [6] * 3


def test_tpami_stages_read_f_the_last_pafs_and_the_previous_maps():
    torch.manual_seed(0)
    model = create("openpose_paf_first", paf_stages=2, cm_stages=2, width=0.125, num_pafs=4, num_heatmaps=3).eval()
    seen = {}
    model.front.register_forward_hook(lambda m, i, o: seen.__setitem__("F", o))
    for kind in ("paf_stages", "cm_stages"):
        for t, stage in enumerate(getattr(model, kind)):
            stage.register_forward_pre_hook(lambda m, i, key=f"{kind}{t}": seen.__setitem__(key, i[0]))
    with torch.no_grad():
        pafs, heatmaps = model(torch.randn(1, 3, 32, 32))
    assert torch.equal(seen["paf_stages0"], seen["F"])
    assert torch.equal(seen["paf_stages1"], torch.cat([seen["F"], pafs[0]], 1))
    assert torch.equal(seen["cm_stages0"], torch.cat([seen["F"], pafs[-1]], 1))
    assert torch.equal(seen["cm_stages1"], torch.cat([seen["F"], heatmaps[0], pafs[-1]], 1))


def test_cvpr17_later_stages_read_l_s_and_f():
    torch.manual_seed(0)
    model = create("openpose", stages=2, width=0.125, later_kernel=3).eval()
    seen = {}
    model.front.register_forward_hook(lambda m, i, o: seen.__setitem__("F", o))
    model.stages[1].register_forward_pre_hook(lambda m, i: seen.__setitem__("stage2", i[0]))
    with torch.no_grad():
        pafs, heatmaps = model(torch.randn(1, 3, 32, 32))
    assert torch.equal(seen["stage2"], torch.cat([pafs[0], heatmaps[0], seen["F"]], 1))


def test_concat3x3_block_concatenates_its_three_chained_outputs():
    torch.manual_seed(0)
    block = Concat3x3Block(5, 4).eval()
    x = torch.randn(1, 5, 6, 6)
    with torch.no_grad():
        a = block.prelu0(block.conv0(x))
        b = block.prelu1(block.conv1(a))
        c = block.prelu2(block.conv2(b))
        assert torch.equal(block(x), torch.cat([a, b, c], 1))
    assert block.out_channels == 12 and isinstance(SingleBranchStage(5, 2, 4, 8)[0], Concat3x3Block)


# ---- narrow variants run on the CPU ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,stages", [("openpose", dict(width=0.25, stages=3, later_kernel=3), (3, 3)),
                                                ("openpose_paf_first", dict(width=0.25, paf_stages=2, cm_stages=1),
                                                 (2, 1))])
def test_quarter_width_runs_a_real_forward_and_backward_at_128(name, kwargs, stages):
    torch.manual_seed(0)
    model = create(name, **kwargs)
    pafs, heatmaps = model(torch.randn(2, 3, 128, 128))
    assert (len(pafs), len(heatmaps)) == stages
    assert all(p.shape == (2, 38, 16, 16) for p in pafs) and all(h.shape == (2, 19, 16, 16) for h in heatmaps)
    # output convs carry no ReLU: every stage's maps take negative values at initialisation
    assert all(m.min() < 0 for m in (*pafs, *heatmaps))
    sum(m.square().mean() for m in (*pafs, *heatmaps)).backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        last = model.eval().predict(torch.zeros(1, 3, 64, 64))
    assert [t.shape for t in last] == [(1, 38, 8, 8), (1, 19, 8, 8)]


def test_width_scales_every_channel_count():
    model = on_meta("openpose", width=0.25, stages=2)
    assert model.front.conv1_1.out_channels == 16 and model.front.out_channels == 32
    assert model.stages[0].paf_branch.conv4.out_channels == 128 and model.stages[1].in_channels == 32 + 57


# ---- arguments ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,message", [
    ("openpose", dict(stages=0), r"stages=0; expected an int >= 1"),
    ("openpose", dict(stages=2.0), r"stages=2\.0; expected an int"),
    ("openpose", dict(width=0), r"width=0; expected a number > 0"),
    ("openpose", dict(width="wide"), r"width='wide'"),
    ("openpose", dict(later_kernel=4), r"later_kernel=4; expected an odd int"),
    ("openpose", dict(num_pafs=37), r"num_pafs=37; expected an even int"),
    ("openpose", dict(num_heatmaps=0), r"num_heatmaps=0; expected an int >= 1"),
    ("openpose_paf_first", dict(paf_stages=0), r"OpenPosePAFFirst: paf_stages=0; expected an int >= 1"),
    ("openpose_paf_first", dict(cm_stages=True), r"cm_stages=True"),
    ("openpose_paf_first", dict(width=-1.0), r"width=-1\.0"),
])
def test_bad_arguments_raise_naming_the_argument_and_what_is_expected(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        on_meta(name, **kwargs)


@pytest.mark.parametrize("shape", [(1, 3, 100, 96), (1, 1, 64, 64), (3, 64, 64)])
def test_input_not_b3hw_with_multiples_of_8_is_refused_with_its_shape(shape):
    model = on_meta("openpose", stages=1, width=0.125)
    with pytest.raises(ValueError, match=r"multiples of 8.*" + r"\(" + ", ".join(map(str, shape)) + r"\)"):
        model(torch.zeros(*shape, device="meta"))


def test_registry_builds_the_two_classes():
    assert isinstance(on_meta("openpose", stages=1), OpenPose)
    assert isinstance(on_meta("openpose_paf_first", paf_stages=1, cm_stages=1), OpenPosePAFFirst)
    assert isinstance(on_meta("openpose", stages=1).stages[0], TwoBranchStage)


# ---- ImageNet VGG-19 weights for the front -------------------------------------------------------------------------

def torchvision_vgg19_features():
    """The keys and shapes of torchvision's ``vgg19().features`` (configuration "E": 3x3 convs, "M" max-pools; each
    conv is followed by a ReLU), as random tensors."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    state, index, c = {}, 0, 3
    for v in cfg:
        if v == "M":
            index += 1
            continue
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = torch.randn(v, c, 3, 3), torch.randn(v)
        index, c = index + 2, v
    return state


def test_imagenet_vgg19_keys_map_onto_the_first_10_convs():
    front = VGG19Front()
    vgg = torchvision_vgg19_features()
    mapped = front.vgg19_state_dict(vgg)
    assert len(mapped) == 20 and torch.equal(mapped["conv4_2.weight"], vgg["features.21.weight"])
    missing, unexpected = front.load_state_dict(mapped, strict=False)
    assert unexpected == [] and sorted(missing) == ["conv4_3_CPM.bias", "conv4_3_CPM.weight", "conv4_4_CPM.bias",
                                                    "conv4_4_CPM.weight"]
    assert torch.equal(front.conv1_1.weight, vgg["features.0.weight"])
    with pytest.raises(ValueError, match=r"features\.0\.weight has shape \(64, 3, 3, 3\) but conv1_1\.weight has "
                                         r"\(16, 3, 3, 3\)"):
        VGG19Front(width=0.25).vgg19_state_dict(vgg)


def test_cmu_paf_channels_follow_the_demos_map_idx():
    from posebook.keypoints import OPENPOSE
    from posebook.models.openpose import CMU_PAF_CHANNELS

    # the CMU demo's limbSeq (1-indexed parts) and mapIdx (channels counted from the 19 maps on), per limb
    limb_seq = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13],
                [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [3, 17], [6, 18]]
    map_idx = [[31, 32], [39, 40], [33, 34], [35, 36], [41, 42], [43, 44], [19, 20], [21, 22], [23, 24], [25, 26],
               [27, 28], [29, 30], [47, 48], [49, 50], [53, 54], [51, 52], [55, 56], [37, 38], [45, 46]]
    assert [list(limb) for limb in OPENPOSE.limbs] == [[a - 1, b - 1] for a, b in limb_seq]
    assert list(CMU_PAF_CHANNELS) == [c - 19 for pair in map_idx for c in pair]
    assert sorted(CMU_PAF_CHANNELS) == list(range(38))
    cmu = torch.arange(38.0).reshape(1, 38, 1, 1)
    assert cmu[:, CMU_PAF_CHANNELS][0, 2 * 6:2 * 6 + 2, 0, 0].tolist() == [0.0, 1.0]  # limb 6, neck-right hip


# ---- the stand-in front: the book's pretrained ResNet-50/16 trunk cut at stride 8 ----------------------------------

def test_resnet_front_gives_f_at_stride_8_and_loads_the_trunk_to_layer2():
    from posebook.blocks.openpose import ResNetFront
    from posebook.blocks.resnet import ResNet

    front = ResNetFront(out_channels=32, trunk_width=16)
    assert front(torch.zeros(1, 3, 64, 48)).shape == (1, 32, 8, 6)
    trunk = ResNet(50, 16)
    for p in trunk.parameters():
        nn.init.normal_(p)
    front.load_trunk(trunk.state_dict())  # layer3/layer4 are offered and ignored
    assert torch.equal(front.layer2[0].conv1.weight, trunk.layer2[0].conv1.weight)
    assert torch.equal(front.conv1.weight, trunk.conv1.weight)
    with pytest.raises(ValueError, match="does not fit"):
        front.load_trunk(ResNet(50, 8).state_dict())
    with pytest.raises(ValueError, match="missing"):
        front.load_trunk({k: v for k, v in trunk.state_dict().items() if not k.startswith("layer2")})


def test_openpose_with_the_resnet_front_keeps_the_stages_and_refuses_an_unknown_front():
    net = OpenPose(stages=3, width=0.25, later_kernel=3, front="resnet")
    assert net.front.out_channels == 32 and net.stages[1].in_channels == 38 + 19 + 32
    pafs, heatmaps = net(torch.zeros(1, 3, 64, 64))
    assert [p.shape for p in pafs] == [(1, 38, 8, 8)] * 3 and heatmaps[-1].shape == (1, 19, 8, 8)
    with pytest.raises(ValueError, match="front='alexnet'"):
        OpenPose(front="alexnet")
