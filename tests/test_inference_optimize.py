"""posebook.inference.optimize: BN folding (Conv2d and ConvTranspose2d), the data-flow rule that picks the pairs, the
optimized copy of every model of the book equal to the eager model, and ``python -m posebook.bench infer``."""
import importlib
import json

import pytest
import torch
from torch import nn

from conftest import assert_close
from posebook import bench
from posebook.inference import optimize
from posebook.inference.optimize import TOLERANCE, GemmConvTranspose2d, conv_bn_pairs, fold_bn
from posebook.models import create


def random_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters (a fresh BN folds to a scale of ~1 and a bias of 0)."""
    g = torch.Generator().manual_seed(seed)
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats):
        n = bn.num_features
        bn.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
        bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        bn.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
        bn.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return module


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_fold_bn_equals_conv_then_bn_for_conv_and_transposed_conv(groups, bias):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    for conv in (nn.Conv2d(4, 6, 3, padding=1, groups=groups, bias=bias),
                 nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=groups, bias=bias)):
        conv, bn = conv.double(), random_bn(nn.BatchNorm2d(6)).double().eval()
        before = {k: v.clone() for k, v in [*conv.state_dict().items(), *bn.state_dict().items()]}
        fused = fold_bn(conv, bn)
        assert type(fused) is type(conv) and fused.bias is not None
        assert_close(fused(x), bn(conv(x)), rel=1e-12, what=f"{type(conv).__name__} groups={groups} bias={bias}")
        after = {**conv.state_dict(), **bn.state_dict()}
        assert all(torch.equal(before[k], after[k]) for k in before), "fold_bn changed its inputs"


def test_fold_bn_of_a_grouped_transposed_conv_scales_output_channels_not_input_channels():
    # weight (in=4, out/groups=3, kH, kW) with 2 groups: output channel o is group o // 3, column o % 3
    conv = nn.ConvTranspose2d(4, 6, 1, groups=2, bias=False)
    bn = nn.BatchNorm2d(6, affine=False).eval()
    bn.running_var.copy_(torch.arange(1.0, 7.0) ** 2 - bn.eps)  # scale 1 / (o + 1)
    fused = fold_bn(conv, bn)
    scale = torch.tensor([1 / (o + 1) for o in range(6)])
    expected = conv.weight.detach().view(2, 2, 3) * scale.view(2, 1, 3)
    assert torch.allclose(fused.weight.detach().view(2, 2, 3), expected)


def test_fold_bn_refuses_what_it_cannot_fold():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="training mode"):
        fold_bn(conv, nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="no running statistics"):
        fold_bn(conv, nn.BatchNorm2d(4, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="5 channels.*4 output channels"):
        fold_bn(conv, nn.BatchNorm2d(5).eval())
    with pytest.raises(TypeError, match="nn.Conv2d or nn.ConvTranspose2d, got Linear"):
        fold_bn(nn.Linear(3, 4), nn.BatchNorm2d(4).eval())
    with pytest.raises(TypeError, match="nn.BatchNorm2d, got BatchNorm1d"):
        fold_bn(conv, nn.BatchNorm1d(4).eval())


@pytest.mark.parametrize("kernel, stride, padding, dilation, bias", [(4, 2, 1, 1, False), (3, 1, 1, 1, True),
                                                                    (3, 3, 0, 1, True), (4, 2, 2, 2, True),
                                                                    ((3, 2), (2, 1), (1, 0), (1, 2), True)])
def test_gemm_conv_transpose_equals_the_transposed_convolution(kernel, stride, padding, dilation, bias):
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(5, 3, kernel, stride, padding, dilation=dilation, bias=bias).double()
    gemm = GemmConvTranspose2d(conv)
    for x in (torch.randn(2, 5, 7, 6, dtype=torch.float64),
              torch.randn(1, 5, 4, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last)):
        assert_close(gemm(x), conv(x), rel=1e-12, what=f"k{kernel} s{stride} p{padding} d{dilation}")
    assert gemm.bias is conv.bias and gemm.weight.shape == (3 * conv.weight[0, 0].numel(), 5)


def test_gemm_conv_transpose_refuses_groups_and_output_padding():
    for conv in (nn.ConvTranspose2d(4, 4, 3, groups=2), nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=1),
                 nn.Conv2d(4, 4, 3)):
        assert not GemmConvTranspose2d.applies(conv)
        with pytest.raises(ValueError, match="groups=1 and no output_padding"):
            GemmConvTranspose2d(conv)


@pytest.mark.parametrize("transposed", ["gemm", "native"])
def test_optimize_computes_transposed_convolutions_as_asked(transposed, one_thread):
    torch.manual_seed(0)
    model = random_bn(create("simple_baseline", depth=18, width=8, deconv_channels=16, num_joints=3)).eval()
    x = torch.randn(2, 3, 64, 48)
    fast = optimize(model, x, transposed=transposed)
    kind = GemmConvTranspose2d if transposed == "gemm" else nn.ConvTranspose2d
    assert [type(m) for m in fast.deconv_layers[::3]] == [kind] * 3
    with torch.no_grad():
        assert_close(fast(x), model(x), rel=TOLERANCE, what=f"transposed={transposed}")
    with pytest.raises(ValueError, match="transposed='fast'; expected one of fastest, gemm, native"):
        optimize(model, x, transposed="fast")


class Tricky(nn.Module):
    """Conv->BN pairs in every arrangement: only ``a``/``bn_a`` and the Sequential's (0, 1) may be folded."""

    def __init__(self):
        super().__init__()
        self.a, self.bn_a = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)
        self.b, self.bn_b = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)  # b's output also feeds a residual sum
        self.c, self.bn_c = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)  # bn_c reads c's output after a ReLU
        self.d, self.bn_d = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)  # relu_ rewrites d's output before bn_d
        self.e, self.bn_e = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)  # bn_e is called twice
        self.f, self.bn_f = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)  # f's output is also returned
        self.seq = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.g, self.bn_g = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, track_running_stats=False)

    def forward(self, x):
        x = torch.relu(self.bn_a(self.a(x)))
        y = self.b(x)
        x = self.bn_b(y) + y
        x = self.bn_c(torch.relu(self.c(x)))
        y = self.d(x)
        y.relu_()
        x = self.bn_d(y)
        x = self.bn_e(self.bn_e(self.e(x)))
        kept = self.f(x)
        x = self.seq(self.bn_f(kept))
        return self.bn_g(self.g(x)), kept


def test_conv_bn_pairs_folds_only_a_bn_reading_a_convs_only_output():
    model = random_bn(Tricky()).eval()
    assert conv_bn_pairs(model, torch.randn(2, 3, 5, 5)) == [("a", "bn_a"), ("seq.0", "seq.1")]
    fast = optimize(model, torch.randn(2, 3, 5, 5))  # the checked copy: the rest left as they are
    assert isinstance(fast.bn_a, nn.Identity) and isinstance(fast.seq[1], nn.Identity)
    assert all(isinstance(getattr(fast, f"bn_{k}"), nn.BatchNorm2d) for k in "bcdefg")


def test_optimize_raises_when_the_copy_differs_from_the_eager_model(monkeypatch):
    module = importlib.import_module("posebook.inference.optimize")  # the package's `optimize` is the function

    monkeypatch.setattr(module, "conv_bn_pairs", lambda model, example: [("a", "bn_b")])  # a wrong pair
    with pytest.raises(RuntimeError, match=r"optimize\(Tricky\): the optimized outputs differ .* by "):
        module.optimize(random_bn(Tricky()).eval(), torch.randn(1, 3, 5, 5))
    with pytest.raises(TypeError, match="expected an nn.Module, got function"):
        module.optimize(lambda x: x)


SMALL = {  # every model of the book at a small size: (name, kwargs, input H x W)
    "hrnet": ("hrnet", dict(width=4, num_joints=5), (64, 64)),
    "simple_baseline": ("simple_baseline", dict(depth=50, width=4, num_joints=5, deconv_channels=16), (64, 64)),
    "hourglass": ("hourglass", dict(stacks=2, channels=16, num_joints=5, order=3), (64, 64)),
    "cpn": ("cpn", dict(width=4, num_joints=5, pyramid_channels=16), (64, 64)),
    "mspn": ("mspn", dict(stages=2, width=4, num_joints=5), (64, 64)),
    "openpose": ("openpose", dict(stages=2, width=0.125, later_kernel=3), (64, 64)),
    "openpose_paf_first": ("openpose_paf_first", dict(paf_stages=2, cm_stages=2, width=0.125, num_pafs=4,
                                                      num_heatmaps=3), (64, 64)),
}


def _leaves(output):
    return torch.utils._pytree.tree_leaves(output)


def _check_copy(model, fast, x, what):
    with torch.no_grad():
        for method in ("__call__", "predict"):  # (not .forward: a module's hooks run only through __call__)
            eager, optimized = _leaves(getattr(model, method)(x)), _leaves(getattr(fast, method)(x))
            assert len(eager) == len(optimized)
            for e, o in zip(eager, optimized):
                assert not o.requires_grad
                assert_close(o, e, rel=TOLERANCE, what=f"{what}.{method}")


@pytest.mark.parametrize("key", list(SMALL))
def test_optimize_keeps_every_models_outputs_and_leaves_the_model_alone(key, one_thread):
    name, kwargs, size = SMALL[key]
    torch.manual_seed(0)
    model = random_bn(create(name, **kwargs))  # in training mode: optimize works on an eval copy
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, *size)
    fast = optimize(model, x[:1])
    assert model.training and not fast.training and type(fast) is type(model)
    after = model.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(v, after[k]) for k, v in state.items()), key
    assert not any(p.requires_grad for p in fast.parameters())
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.dim() == 4)
    left = [n for n, m in fast.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if key == "hourglass":  # pre-activation: the first BN of each residual step reads a sum, not a conv
        assert left and all(n.endswith("conv_block.0.0") for n in left), left
    else:
        assert not left, f"{key}: BN left unfolded: {left}"
    _check_copy(model.eval(), fast, x, key)


def test_the_optimized_copy_serves_top_down_inference_flip_test_and_decoding(one_thread):
    from posebook.codecs import GaussianHeatmap
    from posebook.inference import predict_heatmaps
    from posebook.keypoints import COCO

    torch.manual_seed(0)
    model = random_bn(create("simple_baseline", depth=18, width=8, deconv_channels=16)).eval()
    x = torch.randn(2, 3, 64, 48)
    fast = optimize(model, x)
    eager, optimized = (predict_heatmaps(m, x, COCO.flip_pairs) for m in (model, fast))
    assert_close(optimized, eager, rel=TOLERANCE, what="flip-tested heatmaps")
    codec = GaussianHeatmap(input_size=(64, 48), heatmap_size=(16, 12))
    (points, scores), (_, scores_eager) = codec.decode(optimized), codec.decode(eager)  # (argmax: ties may flip)
    assert points.shape == (2, 17, 2)
    assert_close(scores, scores_eager, rel=TOLERANCE, what="decoded scores")


class Small(nn.Module):
    """conv-BN-ReLU, a residual sum and a transposed conv-BN: what inductor fuses; ``predict`` as the book's models."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv, self.bn = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.up = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(4))

    def forward(self, x):
        x = self.stem(x)
        return self.up(torch.relu(self.bn(self.conv(x)) + x))

    def predict(self, x):
        return self(x)


@pytest.mark.slow
def test_optimize_compiled_keeps_the_outputs_and_predict(one_thread):
    torch.manual_seed(0)
    model = random_bn(Small()).eval()
    x = torch.randn(2, 3, 16, 12)
    fast = optimize(model, x, compile=True)  # compiles (inductor, freezing) and checks the outputs on x
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    with torch.no_grad():
        assert_close(fast.predict(x), model.predict(x), rel=TOLERANCE, what="compiled predict")


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs", [("hrnet_w32", {}), ("simple_baseline", dict(depth=50))])
def test_optimize_keeps_the_papers_hrnet_w32_and_simplebaseline_r50_at_256x192(name, kwargs, one_thread):
    torch.manual_seed(0)
    model = random_bn(create(name, **kwargs)).eval()
    x = torch.randn(1, 3, 256, 192)
    fast = optimize(model, x, check=False)  # the comparison below is the check
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    with torch.no_grad():
        assert_close(fast.predict(x), model.predict(x), rel=TOLERANCE, what=name)


def test_bench_infer_prints_latencies_the_speed_up_and_the_difference(capsys, one_thread):
    threads = torch.get_num_threads()
    bench.main(["infer", "--model", "hrnet", "--arg", "width=4", "--input", "64x64", "--batch", "1", "2",
                "--rounds", "2", "--warmup", "0", "--threads", "1", "--json"])
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    rows = json.loads(out.strip().splitlines()[-1])
    assert [r["batch"] for r in rows] == [1, 2]
    for row in rows:
        assert row["model"] == "hrnet" and row["kwargs"] == {"width": 4} and row["input"] == [64, 64]
        assert row["threads"] == 1 and row["rounds"] == 2
        assert min(row["eager_ms"], row["optimized_ms"], row["eager_cpu_ms"], row["optimized_cpu_ms"]) > 0
        assert row["optimized_speedup"] == pytest.approx(row["eager_ms"] / row["optimized_ms"])
        assert row["optimized_cpu_speedup"] == pytest.approx(row["eager_cpu_ms"] / row["optimized_cpu_ms"])
        assert row["optimized_max_abs_diff"] <= TOLERANCE * row["max_abs_output"]
        assert row["gemm_transposed"] == []  # HRNet has no transposed convolution
    assert "speed-up" in out


def test_bench_infer_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        bench.main(["infer", "--batch", "0"])
    with pytest.raises(SystemExit):
        bench.main(["infer", "--rounds", "0"])
