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


# ---- the chapter's checkers: each wrong answer gets its own hint ----------------------------------------------------

from torch import nn  # noqa: E402

from posebook.bench import gflops, real_macs  # noqa: E402,F811
from posebook.check import check, exercises  # noqa: E402
from posebook.check import simple_baseline as sb_check  # noqa: E402


def _layers(in_channels, channels, layers, norm=nn.BatchNorm2d, nested=False, final=False):
    modules = []
    for _ in range(layers):
        layer = [nn.ConvTranspose2d(in_channels, channels, 4, 2, 1, bias=False), norm(channels), nn.ReLU()]
        modules += [nn.Sequential(*layer)] if nested else layer
        in_channels = channels
    return nn.Sequential(*modules, *([nn.Conv2d(channels, 17, 1)] if final else []))


@pytest.mark.parametrize("answer,hint", [
    (lambda i, c, n: _layers(i, c, n, norm=lambda ch: nn.GroupNorm(1, ch)), "(GroupNorm keeps none)"),
    (lambda i, c, n: _layers(i, c, n, final=True), "the 1x1 convolution to the heatmaps is a separate layer"),
    (lambda i, c, n: _layers(i, c, n, nested=True), "not one Sequential per layer"),
    ("deconvolutions with a bias", "have no bias (bias=False)"),
    ("no BatchNorm", "is followed by a BatchNorm2d"),
    ("ReLU before BatchNorm", "the ReLU after the BatchNorm2d"),
])
def test_head_checker_names_what_the_keys_show(answer, hint):
    fn = exercises()["simple_baseline_head"].mutants[answer] if isinstance(answer, str) else answer
    result = check("simple_baseline_head", fn)
    assert result.status == "failed" and hint in result.message, result.message
    assert "which layers have a bias" not in result.message


@pytest.mark.parametrize("mutant,hint", [
    ("real counted at the output pixels (the papers' count twice)", "at its *input* pixels"),
    ("real and papers' swapped", "the first number is the real count"),
    ("every layer reads in_channels", "only the first deconvolution reads in_channels"),
    ("no doubling (every layer at the input size)", "each deconvolution doubles the side"),
    ("kernel not squared", "k * k multiply-adds"),
    ("papers' count = 2 x real (stride, not stride^2)", "twice the height *and* twice the width"),
])
def test_head_macs_checker_gives_each_mutant_its_own_hint(mutant, hint):
    result = check("simple_baseline_head_macs", exercises()["simple_baseline_head_macs"].mutants[mutant])
    assert result.status == "failed" and hint in result.message.split("Hint: ")[1], result.message


def test_head_macs_hints_hold_on_every_case_not_only_the_first():
    # every mutant differs from the right answer, and from every other mutant, on each case with several layers
    # and a width change (so no coincidence of sizes can give a wrong answer another mutant's hint); the checker
    # tries the paper's head first
    assert sb_check.MACS_CASES[0] == (2048, 256, 3, 4, (8, 6))
    for case in [c for c in sb_check.MACS_CASES if c[2] >= 2 and c[0] != c[1]]:
        answers = [tuple(w(*case)) for w, _ in sb_check.MACS_HINTS] + [sb_check._torch_head_macs(*case)]
        assert len(set(answers)) == len(answers), case


def test_head_macs_solution_agrees_with_bench_on_the_paper_model():
    with torch.device("meta"):
        model = create("simple_baseline", depth=50)
    real, papers = sb_check.head_macs_solution(2048, 256, 3, 4, (8, 6))
    final = 256 * 17 * 64 * 48  # the 1x1 convolution, counted alike by both
    backbone = real_macs(model, (256, 192)) - real - final
    assert backbone + papers + final == round(gflops(model, (256, 192)) * 2 ** 30)
    assert papers == 4 * real
    assert round((real + final) / real_macs(model, (256, 192)), 2) == 0.26  # the head's real share


@pytest.mark.parametrize("case", sb_check.MACS_CASES)
def test_head_macs_solution_is_what_bench_counts_on_the_pytorch_layers(case):
    assert sb_check.head_macs_solution(*case) == sb_check._torch_head_macs(*case)
