"""The models by name (``MODELS``, ``create``) and the papers' GFLOPs convention."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from posebook import bench, models


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="unknown model 'no_such_net'; known models"):
        models.create("no_such_net")


def test_models_is_a_plain_dict_of_the_model_files_constructors(monkeypatch):
    from posebook.models import cpn, hourglass, hrnet, mspn, openpose, simple_baseline

    assert models.MODELS == {"cpn": cpn.CPN, "hourglass": hourglass.StackedHourglass, "hrnet": hrnet.hrnet,
                             "hrnet_w32": hrnet.hrnet_w32, "hrnet_w48": hrnet.hrnet_w48, "mspn": mspn.MSPN,
                             "openpose": openpose.OpenPose, "openpose_paf_first": openpose.OpenPosePAFFirst,
                             "simple_baseline": simple_baseline.simple_baseline}
    assert models.available() == sorted(models.MODELS)
    monkeypatch.setitem(models.MODELS, "_test_net", nn.Identity)
    assert isinstance(models.create("_test_net"), nn.Identity)


def test_model_files_do_not_import_the_models_package():
    """No cycle: posebook.models imports each model file; a model file never imports posebook.models back."""
    import ast
    from pathlib import Path

    folder = Path(models.__file__).parent
    for path in sorted(folder.glob("[!_]*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "posebook.models" and not (node.level == 1 and node.module is None), path.name
            elif isinstance(node, ast.Import):
                assert all(a.name != "posebook.models" for a in node.names), path.name
        assert hasattr(models, path.stem) and getattr(models, path.stem).__name__ == f"posebook.models.{path.stem}"


def test_gflops_counts_conv_transposed_conv_and_linear_as_the_papers_do():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    expected = 8 * 3 * 9 * (8 * 8) + 8 * 4 * 16 * (16 * 16) + 4 * 16 * 16 * 10
    assert bench.conv_macs(net, (8, 8)) == expected
    assert bench.gflops(net, (8, 8)) == pytest.approx(expected / 2**30)


def test_real_macs_count_a_transposed_convolution_at_its_input_size():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    # each of the 8 x 8 input pixels scatters a 4 x 4 patch for each of the 8 x 4 channel pairs
    expected = 8 * 3 * 9 * (8 * 8) + 8 * 4 * 16 * (8 * 8) + 4 * 16 * 16 * 10
    assert bench.real_macs(net, (8, 8)) == expected
    assert bench.conv_macs(net, (8, 8)) - expected == 8 * 4 * 16 * (16 * 16 - 8 * 8)  # stride^2 = 4x the real count
    # the arithmetic itself: a transposed convolution equals a convolution of the zero-stuffed input, whose
    # multiply-adds by nonzero inputs are exactly weight.numel() x input H x W
    deconv = nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, bias=False)
    assert bench.real_macs(deconv, (5, 7), in_channels=2) == 2 * 3 * 16 * 5 * 7


def test_bench_model_json_gives_params_the_papers_gflops_and_real_macs():
    import json

    proc = subprocess.run([sys.executable, "-m", "posebook.bench", "model", "simple_baseline", "--input", "256x192",
                           "--json"], capture_output=True, text=True, check=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["params"] == 33_999_697  # HRNet Table 1: 34.0M
    assert round(row["gflops"], 2) == 8.99  # the papers' convention (HRNet Table 1: 8.9)
    assert round(row["macs"] / 1e9, 2) == 5.43  # real multiply-adds: the deconvolutions at their input size
    with torch.device("meta"):
        hrnet = models.create("hrnet", width=32)
    assert round(bench.real_macs(hrnet, (256, 192)) / 1e9, 2) == 7.65  # no transposed convolution: both counts agree
    assert bench.real_macs(hrnet, (256, 192)) == bench.conv_macs(hrnet, (256, 192))


def test_gflops_leaves_training_mode_and_hooks_as_they_were():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    bench.gflops(net, (4, 4))
    assert net.training and not net[0]._forward_hooks


def test_count_params_skips_frozen_and_buffers():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    net[0].weight.requires_grad_(False)
    assert bench.count_params(net) == 4 + 8
    assert bench.count_params(net, trainable_only=False) == 12 + 4 + 8


def test_bench_cli_rejects_a_malformed_input_size():
    proc = subprocess.run([sys.executable, "-m", "posebook.bench", "model", "x", "--input", "256by192"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "256x192" in proc.stderr


def test_latency_is_positive():
    assert bench.latency_ms(nn.Conv2d(3, 4, 3), (16, 16), repeats=2) > 0
