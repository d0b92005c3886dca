"""``python -m posebook.bench data`` prints synthetic scenes/s and top-down samples/s (or says what is missing)."""
import re

from posebook.bench import main as bench_main
from posebook.data.benchmark import main, rate


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
