"""posebook.bench: `bench train` prints samples/s and ms/step of a training step; GFLOPs on the meta device."""
from __future__ import annotations

import ast
import json
import re

import pytest
import torch

import posebook
from posebook import bench, models

TINY = ["hourglass", "--arg", "stacks=1", "--arg", "channels=8", "--arg", "num_joints=3", "--arg", "order=2",
        "--input", "32x32"]


def test_bench_train_prints_one_row_per_batch_and_layout_and_the_speed_up(capsys):
    bench.main(["train", *TINY, "--batch", "2", "4", "--steps", "1", "--warmup", "0", "--channels-last", "both",
                "--device", "cpu"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'model        hourglass {"stacks": 1, "channels": 8, "num_joints": 3, "order": 2}'
    assert re.fullmatch(r"input        32x32, adam, device cpu, \d+ threads, median of 1 steps after 0", lines[1])
    assert lines[2].split() == ["batch", "channels_last", "precision", "ms/step", "samples/s"]
    rows = [line.split() for line in lines[3:7]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("2", "off", "fp32"), ("2", "on", "fp32"), ("4", "off", "fp32"),
                                                  ("4", "on", "fp32")]
    for batch, _, _, ms, rate in rows:
        assert float(ms) > 0 and float(rate) == pytest.approx(int(batch) * 1000 / float(ms), rel=0.02, abs=0.1)
    ratios = re.fullmatch(r"channels_last speed-up \(off ms / on ms\): batch 2 ([\d.]+)x, batch 4 ([\d.]+)x",
                          lines[7])
    assert ratios and len(lines) == 8
    assert float(ratios[1]) == pytest.approx(float(rows[0][3]) / float(rows[1][3]), abs=0.01)


def test_bench_train_amp_needs_cuda_and_says_so(capsys):
    for amp in ("on", "both"):
        with pytest.raises(SystemExit):
            bench.main(["train", *TINY, "--batch", "2", "--steps", "1", "--device", "cpu", "--amp", amp])
        assert f"--amp {amp} needs a CUDA device" in capsys.readouterr().err
    bench.main(["train", *TINY, "--batch", "2", "--steps", "1", "--warmup", "0", "--device", "cpu", "--amp", "off"])
    assert capsys.readouterr().out.splitlines()[3].split()[2] == "fp32"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision is timed on CUDA only (no GPU here)")
def test_bench_train_amp_both_times_mixed_precision_beside_fp32(capsys):
    bench.main(["train", *TINY, "--batch", "2", "--steps", "1", "--warmup", "0", "--device", "cuda", "--amp", "both"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines[3:5]][0] == "fp32" and lines[4].split()[2] in ("bfloat16", "float16")
    assert lines[-1].startswith("mixed-precision speed-up (fp32 ms / amp ms): batch 2")


def test_bench_train_auto_layout_is_the_trainers_default(capsys):
    from posebook.train import CHANNELS_LAST

    bench.main(["train", *TINY, "--batch", "2", "--steps", "1", "--warmup", "0", "--device", "cpu"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[3].split()[:2] == ["2", "on" if CHANNELS_LAST["cpu"] else "off"]


def test_bench_train_needs_a_model_or_a_chapter_and_sane_sizes(capsys):
    with pytest.raises(SystemExit):
        bench.main(["train"])
    assert "NAME or --chapter" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["train", *TINY, "--batch", "0"])
    assert "--batch >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["train", "--chapter", "99"])


def test_training_setup_gives_outputs_of_different_sizes_one_target_each():
    class TwoScales(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 2, 1, stride=8), torch.nn.Conv2d(3, 2, 1, stride=4)

        def forward(self, x):
            return [self.a(x), self.b(x)]

    trainer, batch = bench.training_setup(TwoScales(), (32, 32), 2, device="cpu")
    assert [tuple(t.shape) for t in batch["target"]] == [(2, 2, 4, 4), (2, 2, 8, 8)]
    assert bench.train_step_ms([(trainer, batch)], steps=1, warmup=0)[0] > 0
    with pytest.raises(TypeError, match="must return"):
        bench.training_setup(torch.nn.Flatten(), (8, 8), 2, device="cpu")


def _profile_settings(notebook, monkeypatch) -> dict:
    """The cpu profile's settings of a chapter: the assignments of its ``posebook.sized`` cell, executed alone."""
    monkeypatch.setenv("POSEBOOK_PROFILE", "cpu")
    cells = json.loads(notebook.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "posebook.sized(" in
                  "".join(c["source"]))
    namespace = {"posebook": posebook}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            exec(compile(ast.Module([node], []), str(notebook), "exec"), namespace)
    return namespace["cfg"]


def test_chapter_shortcuts_are_the_chapters_reference_networks_at_the_cpu_recipe():
    from posebook import learn
    from posebook.studies import hrnet

    for chapter in bench.TRAIN_CHAPTERS:
        ref = learn.reference(chapter)
        assert bench.chapter_setting(chapter) == (ref.model, dict(ref.kwargs, num_joints=17), (96, 64), 32)
    study = hrnet.claims("cpu")[0].variant("all").config  # chapter 07's study trains the same network
    assert {k: v for k, v in study["kwargs"].items() if k in learn.reference("07").kwargs} == learn.reference("07").kwargs


@pytest.mark.parametrize("name, kwargs, size", [
    ("hourglass", dict(stacks=2, channels=16, num_joints=5, order=2), (64, 48)),
    ("hrnet", dict(width=4, stem_width=8, layer1_blocks=1, stage_blocks=1), (64, 64)),
])
def test_gflops_on_the_meta_device_equal_the_cpu_count(name, kwargs, size):
    cpu = models.create(name, **kwargs)
    with torch.device("meta"):
        meta = models.create(name, **kwargs)
    assert next(meta.parameters()).is_meta
    assert bench.conv_macs(meta, size) == bench.conv_macs(cpu, size) > 0
    assert bench.gflops(meta, size) == bench.gflops(cpu, size)
    assert meta.training, "counting leaves the model in the mode it was in"


def test_gflops_of_a_model_without_parameters_uses_its_buffers_device():
    class Pool(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.ones(1, device="meta"))

        def forward(self, x):
            assert x.is_meta
            return x * self.scale

    assert bench.conv_macs(Pool(), (8, 8)) == 0
