"""SimpleBaseline: official pose_resnet key names and shapes, parameter counts and GFLOPs of the paper's table."""
import pytest
import torch

from posebook.bench import count_params, gflops
from posebook.models import create


def test_r50_state_dict_equals_official_keys_and_shapes(reference_dir):
    official = {}
    for line in (reference_dir / "simplebaseline_r50_official_keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            official[key] = shape
    with torch.device("meta"):
        model = create("simple_baseline", depth=50)
    mine = {k: str(tuple(v.shape)) for k, v in model.state_dict().items()}
    assert len(mine) == 338
    assert mine == official


@pytest.mark.parametrize("depth,params,gf", [(50, 33_999_697, 8.99), (101, 52_991_825, 12.38),
                                             (152, 68_635_473, 15.76)])
def test_params_and_gflops_at_256x192_match_the_table(depth, params, gf):
    with torch.device("meta"):  # shapes only: counting needs no arithmetic
        model = create("simple_baseline", depth=depth)
    assert count_params(model) == params
    assert round(gflops(model, (256, 192)), 2) == gf


def test_head_is_three_deconvs_k4_s2_without_bias_then_1x1_with_bias():
    model = create("simple_baseline", depth=18, num_joints=5, deconv_channels=32)
    deconvs = [m for m in model.deconv_layers if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(d.kernel_size, d.stride, d.padding, d.bias) for d in deconvs] == [((4, 4), (2, 2), (1, 1), None)] * 3
    assert model.final_layer.kernel_size == (1, 1) and model.final_layer.bias is not None
    assert abs(deconvs[0].weight.std().item() - 0.001) < 2e-4


def test_predict_returns_heatmaps_at_quarter_resolution():
    model = create("simple_baseline", depth=18, num_joints=5, deconv_channels=32).eval()
    with torch.no_grad():
        assert model.predict(torch.zeros(2, 3, 128, 96)).shape == (2, 5, 32, 24)


def test_head_reads_the_backbones_stride_32_feature():
    model = create("simple_baseline", depth=18, num_joints=5, deconv_channels=32).eval()
    x = torch.randn(1, 3, 128, 96)
    assert model.deconv_layers[0].in_channels == model.feature_channels[32] == 512
    with torch.no_grad():
        assert torch.equal(model(x), model.final_layer(model.deconv_layers(model.features(x)[32])))
