"""`python -m posebook.bench models`: every network of the book at the papers' sizes (posebook.zoo), counted beside
the papers' figures; latency and a training step on a tiny setting (the figures are not asserted, only their
presence: they depend on the machine)."""
from __future__ import annotations

import json
import re

import pytest
import torch

from posebook import bench, zoo
from posebook.models.openpose import OpenPose


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the CPU is shared)."""


def run(capsys, *argv) -> tuple[list[str], list[dict]]:
    """The printed lines and the JSON list of the last line."""
    bench.main(["models", *argv, "--json"])
    lines = capsys.readouterr().out.splitlines()
    return lines, json.loads(lines[-1])


def test_counts_equal_the_papers_tables_and_the_json_last_line_carries_them(capsys):
    lines, rows = run(capsys, "--no-latency", "--only", "hrnet_w32_256x192", "--only", "simple_baseline_r50_256x192")
    # the table's order, not the arguments'
    assert [r["name"] for r in rows] == ["simple_baseline_r50_256x192", "hrnet_w32_256x192"]
    sb, hrnet = rows
    # the exact counts of tests/test_hrnet.py and test_simple_baseline.py
    assert (hrnet["params"], round(hrnet["gflops"], 2)) == (28_536_113, 7.12)
    assert (sb["params"], round(sb["gflops"], 2)) == (33_999_697, 8.99)
    # beside the papers' (PAPERS.md §0: HRNet Table 1)
    assert (hrnet["paper_params"], hrnet["paper_gflops"], hrnet["paper_ap"]) == (28.5e6, 7.10, 74.4)
    assert (sb["paper_params"], sb["paper_gflops"], sb["paper_ap"]) == (34.0e6, 8.90, 70.4)
    # real multiply-adds: a transposed convolution counted at its input's size (bench.real_macs)
    assert sb["macs"] < sb["gflops"] * 2**30 and hrnet["macs"] == round(hrnet["gflops"] * 2**30)
    for row in rows:
        assert row["latency_ms_bs1"] is None and row["latency_ms_bs8"] is None and row["train_step_ms"] is None
        assert {"name", "params", "gflops", "macs", "paper_params", "paper_gflops", "latency_ms_bs1"} <= set(row)
    table = [line.split() for line in lines if line.split()[:1] == ["hrnet_w32_256x192"]]
    assert table == [["hrnet_w32_256x192", "256x192", "28.5M", "28.5M", "7.12", "7.10", "7.65", "74.4"]]


def test_the_8_stack_hourglass_has_mpiis_16_joints_and_hrnet_table_4_beside_it():
    (hg,) = zoo.entries(["hourglass_8stack_256x256"])
    with torch.device("meta"):
        assert bench.count_params(hg.build()) == 25_434_112  # tests/test_hourglass.py: 8 stacks, 16 joints
    assert (hg.input_size, hg.paper_params, hg.paper_gflops, hg.paper_ap) == ((256, 256), 25.1e6, 19.1, None)


def test_the_table_has_every_architecture_at_the_issue_sizes():
    sizes = {e.name: e.input_size for e in zoo.ZOO}
    assert len(sizes) == len(zoo.ZOO) == 16
    assert {n for n in sizes if n.startswith("hrnet")} == {"hrnet_w32_256x192", "hrnet_w32_384x288",
                                                           "hrnet_w48_256x192", "hrnet_w48_384x288"}
    assert [n for n in sizes if n.startswith("mspn")] == [f"mspn_{s}stage_256x192" for s in (1, 2, 3, 4)]
    assert sizes["openpose_cvpr17_368x368"] == sizes["openpose_tpami19_368x368"] == (368, 368)
    for entry in zoo.ZOO:
        assert entry.name.endswith(f"_{entry.input_size[0]}x{entry.input_size[1]}")
        assert entry.source, entry.name


def test_only_selects_by_name_or_prefix_and_names_a_bad_one(capsys):
    assert [e.name for e in zoo.entries(["hrnet_w32"])] == ["hrnet_w32_256x192", "hrnet_w32_384x288"]
    assert [e.name for e in zoo.entries(["openpose"])] == ["openpose_cvpr17_368x368", "openpose_tpami19_368x368"]
    with pytest.raises(SystemExit):
        bench.main(["models", "--no-latency", "--only", "hrnet_w3"])
    err = capsys.readouterr().err
    assert "--only" in err and "'hrnet_w3'" in err and "hrnet_w32_256x192" in err
    for argv, name in ((["--rounds", "0"], "--rounds"), (["--threads", "x"], "--threads"),
                       (["--input", "256"], "--input"), (["--warmup", "-1"], "--warmup"),
                       (["--train-batch", "0"], "--train-batch")):
        with pytest.raises(SystemExit):
            bench.main(["models", "--no-latency", *argv])
        assert name in capsys.readouterr().err


def test_latency_and_training_step_on_the_smallest_network_at_a_tiny_size(capsys):
    lines, rows = run(capsys, "--only", "hourglass_2stack_256x256", "--input", "64x64", "--rounds", "1",
                      "--warmup", "0", "--threads", "1", "--train-batch", "2", "--train-steps", "1")
    (row,) = rows
    assert row["input"] == [64, 64] and row["threads"] == 1 and row["rounds"] == 1 and row["train_batch"] == 2
    for key in ("latency_ms_bs1", "latency_ms_bs8", "cpu_ms_bs1", "cpu_ms_bs8", "train_step_ms"):
        assert row[key] > 0, key
    # another input than the paper's: its GFLOPs and AP do not apply; its parameter count does (none for 2 stacks)
    assert row["paper_gflops"] is None and row["paper_ap"] is None
    assert re.search(r"median ms of 1 interleaved round\(s\) after 0 .*, 1 CPU thread\(s\)", lines[0])
    assert lines[1].split()[-5:] == ["ms", "bs8", "(CPU)", "train", "ms"]
    assert lines[2].split()[0] == "hourglass_2stack_256x256" and torch.get_num_threads() == 1


def test_training_setup_trains_openposes_two_branches_with_its_loss():
    torch.manual_seed(0)
    model = OpenPose(stages=2, width=0.125, later_kernel=3)
    trainer, batch = bench.training_setup(model, (32, 32), 2, device="cpu")
    pafs, heatmaps = batch["target"]
    assert pafs.shape == (2, 38, 4, 4) and heatmaps.shape == (2, 19, 4, 4)
    assert batch["target_weight"].shape == (2, 1, 4, 4)
    before = [p.detach().clone() for p in model.parameters()]
    assert bench.train_step_ms([(trainer, batch)], steps=1, warmup=0)[0] > 0
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
