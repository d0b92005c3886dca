"""``python -m posebook.bench people`` (review OPENPOSE.md, probe P6): one image's cost as its people multiply,
bottom-up (one network pass + the parse) against top-down (one crop pass per person, the detector excluded). Smoke
sizes only; nothing here asserts that one thing is faster than another."""
import json

import pytest
import torch

from posebook import bench
from posebook.inference import people_cost as pc

SMOKE = dict(size="smoke", repeats=1, warmup=0, scenes=1)


def run_cli(argv, capsys) -> dict:
    bench.main(["people", *argv, "--json"])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_json_has_every_count_and_the_totals_are_built_as_stated(capsys):
    threads = torch.get_num_threads()
    out = run_cli(["--size", "smoke", "--people", "3", "1", "2", "--repeats", "1", "--warmup", "0", "--scenes",
                   "1"], capsys)
    assert torch.get_num_threads() == threads  # restored
    assert out["people"] == [1, 2, 3] and [r["people"] for r in out["rows"]] == [1, 2, 3]
    assert out["size"] == "smoke" and out["threads"] == 1 and "EXCLUDED" in out["detector"]
    network, crop = out["bottomup"]["ms"], out["topdown"]["ms"]
    for r in out["rows"]:
        # the network is timed once: the same number in every row, constant by construction
        assert r["network_ms"] == network and r["network_cpu_ms"] == out["bottomup"]["cpu_ms"]
        assert r["bottomup_ms"] == network + r["parse_ms"]
        # one crop per person
        assert r["crop_ms"] == crop and r["topdown_ms"] == r["people"] * crop
        assert r["topdown_cpu_ms"] == r["people"] * out["topdown"]["cpu_ms"]
        assert r["parse_ms"] > 0 and r["labelled"] <= r["people"]
    assert out["crossover"] == pc.crossover(out["people"], [r["bottomup_ms"] for r in out["rows"]],
                                            [r["topdown_ms"] for r in out["rows"]])
    assert out["macs_break_even"] == out["bottomup"]["macs"] / out["topdown"]["macs"]
    assert out["bottomup"]["input"] == [64, 64] and out["bottomup"]["model"] == "openpose"


def test_the_text_table_has_a_row_per_count(capsys):
    report = pc.people_cost((1, 2), **SMOKE)
    text = pc.text(report)
    assert "EXCLUDED" in text and "crossover (wall)" in text and "break-even" in text
    rows = [line.split() for line in text.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2]


def test_crossover_is_the_smallest_count_where_top_down_costs_more():
    people, bottomup = [1, 2, 4, 8, 16], [100.0, 101.0, 103.0, 106.0, 112.0]
    assert pc.crossover(people, bottomup, [10.0 * n for n in people]) == 16     # 160 > 112; 80 < 106
    assert pc.crossover(people, bottomup, [20.0 * n for n in people]) == 8      # 160 > 106; 80 < 103
    assert pc.crossover(people, bottomup, [1.0 * n for n in people]) is None
    assert pc.crossover(people, bottomup, [200.0 * n for n in people]) == 1
    assert pc.crossover([4, 1, 2], [103.0, 100.0, 101.0], [120.0, 30.0, 101.0]) == 4   # order-free; a tie is not more
    assert pc.crossover([], [], []) is None


def test_break_even_interpolates_inside_and_flags_extrapolation():
    people, bottomup = [1, 2, 4, 8, 16], [100.0, 101.0, 103.0, 106.0, 112.0]
    # 20 ms crops: top-down minus bottom-up is 80 - 103 = -23 at 4 people and 160 - 106 = 54 at 8: 4 + 4 * 23 / 77
    n, extrapolated = pc.break_even(people, bottomup, 20.0)
    assert n == pytest.approx(4 + 4 * 23 / 77) and not extrapolated
    assert 20.0 * n == pytest.approx(103 + (106 - 103) * (n - 4) / 4)   # the two lines meet there
    n, extrapolated = pc.break_even(people, bottomup, 1.0)                # never inside: parse held at 112
    assert n == pytest.approx(112.0) and extrapolated
    n, extrapolated = pc.break_even(people, bottomup, 500.0)              # already dearer at 1
    assert n == pytest.approx(0.2) and extrapolated
    with pytest.raises(ValueError, match="crop_ms"):
        pc.break_even(people, bottomup, 0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(people=(0, 2)), "integer >= 1"),
    (dict(people=(-1,)), "integer >= 1"),
    (dict(people=()), "at least one"),
    (dict(size="huge"), "unknown size 'huge'.*'paper', 'small', 'smoke'"),
    (dict(repeats=0), "repeats must be"),
    (dict(scenes=0), "scenes must be"),
    (dict(threads=0), "threads must be"),
    (dict(input_size=(60, 64)), "multiple of the stride"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pc.people_cost(**{**SMOKE, **kwargs})


@pytest.mark.parametrize("argv, message", [
    (["--people", "0"], "--people: expected an integer >= 1, got '0'"),
    (["--people", "two"], "--people: expected an integer >= 1"),
    (["--size", "huge"], "--size: invalid choice: 'huge'"),
    (["--repeats", "0"], "--repeats: expected an integer >= 1"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
])
def test_bad_command_lines_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.main(["people", *argv])
    assert message in capsys.readouterr().err
