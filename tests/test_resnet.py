"""ResNet blocks and backbone: torchvision's attribute names, C2..C5 features by stride, residual arithmetic."""
import pytest
import torch
from conftest import assert_close

from posebook.blocks import BasicBlock, Bottleneck, ResNet
from posebook.blocks.resnet import RESNET_SPECS, make_layer
from posebook.bench import count_params

# torchvision's trunk parameter counts (its published totals minus the 1000-way fc layer)
TORCHVISION_TRUNK_PARAMS = {18: 11_689_512 - 513_000, 50: 25_557_032 - 2_049_000}


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_trunk_has_torchvision_parameter_count_without_fc(depth):
    with torch.device("meta"):  # shapes only: counting needs no memory or arithmetic
        model = ResNet(depth)
    assert count_params(model) == TORCHVISION_TRUNK_PARAMS[depth]


def test_resnet50_uses_torchvision_attribute_names():
    keys = set(ResNet(50).state_dict())
    for key in ["conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                "layer2.0.conv2.weight", "layer3.5.bn3.weight", "layer4.2.conv3.weight"]:
        assert key in keys
    assert not any(k.startswith("fc.") for k in keys)


@pytest.mark.parametrize("depth", [18, 50])
def test_features_are_c2_to_c5_keyed_by_stride_and_forward_is_c5(depth):
    model = ResNet(depth).eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        feats = model.features(x)
        c5 = model(x)
    assert list(feats) == [4, 8, 16, 32]
    expansion = 1 if depth < 50 else 4
    assert model.feature_channels == {4: 64 * expansion, 8: 128 * expansion, 16: 256 * expansion, 32: 512 * expansion}
    for stride, f in feats.items():
        assert f.shape == (1, model.feature_channels[stride], 128 // stride, 96 // stride)
    assert torch.equal(c5, feats[32])
    with torch.no_grad():  # C2 is layer1 of the stem: stride 4
        assert torch.equal(feats[4], model.layer1(model.stem(x)))


def test_bottleneck_carries_stride_on_its_3x3_conv_like_torchvision_v1_5():
    layer = make_layer(Bottleneck, 256, 128, 2, stride=2)
    assert layer[0].conv1.stride == (1, 1) and layer[0].conv2.stride == (2, 2)
    assert layer[0].downsample is not None and layer[1].downsample is None


def test_basic_block_is_relu_of_residual_plus_identity():
    block = BasicBlock(8, 8).eval()
    x = torch.randn(2, 8, 6, 5)
    with torch.no_grad():
        residual = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        assert_close(block(x), torch.relu(residual + x))


def test_unknown_depth_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"depth=42.*\[18, 34, 50, 101, 152\]"):
        ResNet(42)
    assert sorted(RESNET_SPECS) == [18, 34, 50, 101, 152]


def test_width_scales_every_stage_and_64_is_the_papers():
    import torch

    from posebook.blocks.resnet import ResNet

    assert ResNet(50, width=64).feature_channels == ResNet(50).feature_channels == {4: 256, 8: 512, 16: 1024, 32: 2048}
    narrow = ResNet(50, width=8)
    assert narrow.feature_channels == {4: 32, 8: 64, 16: 128, 32: 256} and narrow.conv1.out_channels == 8
    features = narrow.features(torch.randn(1, 3, 64, 32))
    assert {s: tuple(f.shape[1:]) for s, f in features.items()} == {4: (32, 16, 8), 8: (64, 8, 4), 16: (128, 4, 2),
                                                                    32: (256, 2, 1)}
    for bad in (0, -8, 8.0, True):
        with pytest.raises(ValueError, match="ResNet width"):
            ResNet(18, width=bad)
