"""The model registry and the papers' GFLOPs convention."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from posebook import bench, models


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="unknown model 'no_such_net'; known models"):
        models.create("no_such_net")


def test_register_rejects_a_second_constructor_under_one_name(monkeypatch):
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))  # leave the real registry untouched
    models.register("_test_net")(nn.Identity)
    with pytest.raises(ValueError, match="registered twice"):
        models.register("_test_net")(nn.ReLU)
    assert isinstance(models.create("_test_net"), nn.Identity)


def test_gflops_counts_conv_transposed_conv_and_linear_as_the_papers_do():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    expected = 8 * 3 * 9 * (8 * 8) + 8 * 4 * 16 * (16 * 16) + 4 * 16 * 16 * 10
    assert bench.conv_macs(net, (8, 8)) == expected
    assert bench.gflops(net, (8, 8)) == pytest.approx(expected / 2**30)


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
