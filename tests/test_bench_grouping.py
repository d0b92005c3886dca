"""``python -m posebook.bench grouping`` (issue #24 D3; review OPENPOSE.md §2): ground-truth maps parsed back to
people, COCO AP, the share of complete people and the named failures."""
import json

import numpy as np
import pytest

from posebook import bench
from posebook.data.benchmark import one_thread
from posebook.inference import grouping
from posebook.keypoints import OPENPOSE

NOSE, NECK, R_SHOULDER, L_SHOULDER = (OPENPOSE.index(n) for n in ("nose", "neck", "right_shoulder",
                                                                    "left_shoulder"))
PARTS = (NOSE, NECK, R_SHOULDER, L_SHOULDER)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():  # torch and OpenCV: the machine is shared
        yield


def run(argv, capsys) -> tuple[dict, str]:
    """bench grouping through ``python -m posebook.bench``'s entry: (the JSON object, all of stdout)."""
    bench.main(["grouping", *argv, "--json"])
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1]), out


# ---- the failure kinds on a hand-made parse --------------------------------------------------------------------

def hand_made(scale: float = 1.0):
    """Three people, each with a nose, neck and two shoulders, in a 100 x 100 input; the image is the input
    shrunk by ``scale`` (the matrix image -> input multiplies by it). Returns (truth, trace, matrix, input size)."""
    where = {"A": [(20, 20), (20, 30), (15, 30), (25, 30)],
             "B": [(30, 20), (60, 30), (55, 30), (94.5, 30)],   # its nose 10 px from A's, its left shoulder at the edge
             "C": [(60, 60), (60, 70), (55, 70), (65, 70)]}
    truth = np.zeros((3, 18, 3))
    for g, points in enumerate(where.values()):
        truth[g, PARTS, :2], truth[g, PARTS, 2] = points, 2
    # one nose peak for A and B (merged); B's left shoulder pulled 4.5 px onto the edge (x = 99)
    peaks = {NOSE: [(20.5, 20), (60, 60.5)], NECK: [(20, 30), (60, 30), (60, 70)],
             R_SHOULDER: [(15, 30), (55, 30), (55, 70)], L_SHOULDER: [(25, 30), (99, 30), (65, 70)]}
    people = np.zeros((3, 18, 3))
    people[0, PARTS] = [(20.5, 20, 1), (20, 30, 1), (15, 30, 1), (25, 30, 1)]           # A, complete
    people[1, PARTS] = [(60, 60.5, 1), (60, 30, 1), (55, 70, 1), (65, 70, 1)]           # B's neck with C: wrong
    people[2, [NECK, R_SHOULDER]] = [(60, 70, 1), (55, 30, 1)]                          # C and B, pruned
    to_image = np.array([1 / scale, 1 / scale, 1.0])
    trace = {"peaks": [np.array([(x, y, 1.0) for x, y in peaks.get(j, [])]).reshape(-1, 3) * to_image
                       for j in range(18)],
             "people": people * to_image, "kept": np.array([True, True, False])}
    return truth * to_image, trace, np.array([[scale, 0, 0], [0, scale, 0]]), (100, 100)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_each_failure_kind_is_counted_as_its_definition_says(scale):
    # distances are in input px: the same parse of an image half the size (scale 2) counts the same
    counts = grouping.grouping_failures(*hand_made(scale))
    assert dict(counts) == {"people": 3, "detections": 2, "complete": 1, "merged_peaks": 1, "border": 1,
                            "wrong_match": 1, "pruned_fragment": 2}


def test_the_tolerance_decides_what_a_peak_belongs_to():
    truth, trace, matrix, size = hand_made()
    # 4.5 px from B's left shoulder: found with a 5 px tolerance, so no border miss
    assert grouping.grouping_failures(truth, trace, matrix, size, tolerance=5.0)["border"] == 0


# ---- the acceptance targets of issue #24 D3 --------------------------------------------------------------------

@pytest.mark.slow
def test_people_apart_parse_back_to_ap_0_97_and_the_papers_targets_do_worse(capsys):
    # 2 people apart, height 0.35-0.5, front, tilt 0, 512 input (review OPENPOSE.md §2.2: 0.980 on 100 images).
    # Measured on seed 0, official / paper targets: 100 images 0.983 / 0.970; the first 50 0.982 / 0.966, the
    # first 40 0.972 / 0.962 (too close to 0.97), the first 20 1.0 / 0.988. 50 images keep a margin
    official, _ = run(["--scene", "apart", "--num", "50", "--seed", "0"], capsys)
    assert official["AP"] >= 0.97 and official["detections"] == official["people"] == 100
    paper, _ = run(["--scene", "apart", "--num", "50", "--seed", "0", "--targets", "paper"], capsys)
    assert paper["AP"] < official["AP"] and paper["complete"] < official["complete"]


@pytest.mark.slow
def test_default_scenes_parse_back_to_ap_0_75_and_name_their_failures(capsys):
    # the default scenes (1-4 people, height 0.22-1.0, overlap 0.35) at 256, seed 1000003, 100 images: measured
    # AP 0.768 (review 0.780, ranked by the mean; the first 50 images only 0.741), complete 55%, failures merged
    # peaks 69, border 58, wrong match 33, pruned fragment 48
    report, _ = run(["--scene", "default", "--num", "100", "--seed", "1000003"], capsys)
    assert report["AP"] >= 0.75 and report["scene"] == "default" and report["targets"] == "official"
    assert set(report["failures"]) == set(grouping.FAILURES) and sum(report["failures"].values()) > 0
    assert all(report["failures"][name] > 0 for name in grouping.FAILURES)


def test_the_coco_sample_at_height_368_parses_back_to_ap_0_97(capsys):
    # the 4 COCO val2017 photos scaled to height 368 (the CMU test scale): measured 0.990 (review 0.990), with
    # the paper's targets 0.928 (review 0.925); 12 people with keypoints, 10 complete
    report, _ = run(["--coco-sample", "--height", "368"], capsys)
    assert report["AP"] >= 0.97 and report["num"] == 4 and report["people"] == 12
    assert report["scene"] == "coco_sample" and report["height"] == 368 and report["seed"] is None


def test_the_same_arguments_print_the_same_bytes(capsys):
    argv = ["--scene", "default", "--num", "3", "--seed", "5"]
    first, out = run(argv, capsys)
    again, out_again = run(argv, capsys)
    assert out == out_again and out.count("\n") == 1
    assert {"AP", "AP50", "AR", "detections", "complete", "failures", "num", "seed", "scene", "targets"} <= set(first)
    assert (first["num"], first["seed"], first["scene"]) == (3, 5, "default")
    grouping.main(argv)  # the text form names every failure kind
    text = capsys.readouterr().out
    assert "merged peaks" in text and "border" in text and "wrong match" in text and "pruned fragment" in text


@pytest.mark.parametrize("argv,named", [
    (["--num", "0"], "--num: must be >= 1, got 0"),
    (["--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["--height", "368"], "--height goes with --coco-sample"),
    (["--coco-sample", "--num", "5"], "--coco-sample takes no --num"),
    (["--targets", "cmu"], "--targets: invalid choice: 'cmu'"),
])
def test_bad_arguments_are_refused_by_name(argv, named, capsys):
    with pytest.raises(SystemExit) as error:
        grouping.main(argv)
    assert error.value.code == 2 and named in capsys.readouterr().err
