"""``python -m posebook.bench data`` prints synthetic scenes/s and top-down samples/s (or says what is missing)."""
import re

import pytest

import numpy as np
import torch

from posebook.bench import main as bench_main
from posebook.data.benchmark import OfficialTopDown, main, rate, rates_in_turns


def test_rate_counts_items_per_second_and_makes_at_least_the_minimum():
    made = []
    per_s, per_cpu_s = rate(made.append, seconds=0.0, min_items=5)
    assert made == [0, 1, 2, 3, 4, 5] and per_s > 0 and per_cpu_s > 0  # a warm-up item, then five timed


def test_bench_data_prints_scene_and_sample_throughput(capsys):
    main(["--seconds", "0.01", "--sizes", "64x64", "96x128"])
    out = capsys.readouterr().out
    scenes = re.findall(r"synthetic scenes\s+([\d.]+) scenes/s\s+\(([\d.]+) per CPU second; image (\d+x\d+)", out)
    assert [size for *_, size in scenes] == ["64x64", "96x128"]
    assert all(float(wall) > 0 and float(cpu) > 0 for wall, cpu, _ in scenes)
    for name in ("SyntheticTopDown", "CocoKeypoints"):
        assert re.search(rf"^{name}\s+([\d.]+ samples/s|not available \(.+\))", out, re.M), out


def test_coco_keypoints_line_says_not_available_when_the_sample_is_missing(capsys, tmp_path):
    bench_main(["data", "--seconds", "0.01", "--sizes", "64x64", "--coco", str(tmp_path)])
    assert re.search(r"^CocoKeypoints\s+not available \(no COCO sample at .*person_keypoints_sample.json\)",
                     capsys.readouterr().out, re.M)


def test_rates_in_turns_measures_every_maker_in_each_turn():
    made = {"a": [], "b": []}
    rates = rates_in_turns({name: made[name].append for name in made}, seconds=0.0, turns=2, min_items=3)
    assert made["a"] == [0, 1, 2, 3, 4, 5, 6] and made["b"] == made["a"]  # a warm-up, then 2 turns of 3
    assert set(rates) == {"a", "b"} and all(r > 0 for pair in rates.values() for r in pair)


def test_bench_data_times_coco_keypoints_beside_hrnets_steps_and_prints_the_ratio(capsys, coco_sample):
    main(["--seconds", "0.05", "--sizes", "64x64", "--coco", str(coco_sample)])
    out = capsys.readouterr().out
    rates = {name: float(v) for name, v in re.findall(r"^(CocoKeypoints|  no image cache|HRNet's steps)\s+([\d.]+) "
                                                      r"samples/s", out, re.M)}
    assert set(rates) == {"CocoKeypoints", "  no image cache", "HRNet's steps"}, out
    ratio = re.search(r"^CocoKeypoints / HRNet's steps: ([\d.]+)x per second", out, re.M)
    assert ratio and float(ratio.group(1)) == pytest.approx(rates["CocoKeypoints"] / rates["HRNet's steps"], rel=0.02)


def test_the_reference_pipeline_makes_hrnet_items_like_coco_keypoints(coco_sample):
    """OfficialTopDown is timed as the official loader: its unaugmented items must be the same crops and targets."""
    from posebook.data import Augment, CocoKeypoints

    ds = CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=True, seed=0,
                       augment=Augment.none())
    official = OfficialTopDown(ds, scale_factor=0.0, rotation_factor=0.0, half_body_prob=0.0)
    official.py_random.random = lambda: 1.0  # never rotate, never flip
    for i in range(len(ds)):
        image, target, weight, _ = official[i]
        item = ds[i]
        # the same crop up to OpenCV's fixed-point rounding of a float32 three-point matrix: few pixels, few levels
        levels = (image - item["image"]).abs() * 0.229 * 255
        assert float((levels > 0.5).float().mean()) < 0.02 and float(levels.max()) < 8
        assert torch.equal(target, item["target"])
        np.testing.assert_array_equal(weight[:, 0].numpy(), item["target_weight"].numpy())
