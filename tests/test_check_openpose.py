"""Chapter 08's checkers (posebook/check/openpose.py): the reference solutions agree with the library's own code, the
hidden cases really separate the wrong answers they are there for, the messages name the mistake, and a learner's
wrong types or shapes give a clear failure, not a crash. (tests/test_checkers.py runs every solution and mutant.)"""
import numpy as np
import pytest
import torch

from posebook.check import check
from posebook.check import openpose as op
from posebook.codecs.paf import PartAffinityFields
from posebook.inference.bottomup import match_limbs, match_limbs_hungarian, score_limbs
from posebook.keypoints import OPENPOSE


# ---- openpose_paf_target ---------------------------------------------------------------------------------------


def _codec(limbs, output_size, stride, width, support="official"):
    h, w = output_size
    codec = PartAffinityFields((h * stride, w * stride), stride, width, OPENPOSE, support=support)
    a, b = OPENPOSE.limbs[3]  # another channel pair than the checker's
    people = np.zeros((max(len(limbs), 1), OPENPOSE.num_keypoints, 3))
    for n, (x1, y1, x2, y2) in enumerate(limbs):
        people[n, a], people[n, b] = (x1, y1, 1), (x2, y2, 2)
    return codec.encode(people)[6:8]


@pytest.mark.parametrize("seed", range(12))
def test_paf_solution_is_what_the_codec_draws(seed):
    rng = np.random.default_rng(seed)
    stride = int(rng.choice([4, 8]))
    h, w = int(rng.integers(5, 20)), int(rng.integers(5, 20))
    width = float(rng.uniform(2, 12))
    limbs = [tuple(rng.uniform(-20, [w * stride + 20, h * stride + 20] * 2)) for _ in range(rng.integers(0, 6))]
    if seed % 3 == 0 and limbs:
        limbs[0] = limbs[0][:2] * 2  # a zero-length limb is not drawn
    want = _codec(limbs, (h, w), stride, width)
    np.testing.assert_allclose(op.paf_target_solution(limbs, (h, w), stride, width), want, atol=1e-6)
    np.testing.assert_allclose(op._paf_variant(limbs, (h, w), stride, width, support="paper"),
                               _codec(limbs, (h, w), stride, width, support="paper"), atol=1e-6)


def test_paf_cases_separate_official_from_paper_support_and_average_from_sum():
    cases = {what: case for what, *case in op._paf_cases()}
    one = cases["one limb"]
    assert not np.allclose(op.paf_target_solution(*one), _codec(*one, support="paper"))
    crossing = cases["two people whose limbs cross"]
    length = np.hypot(*op.paf_target_solution(*crossing))
    assert (length[length > 0] < 1 - 1e-3).any()  # pixels covered by both people: their mean is shorter than 1
    assert np.hypot(*op._PAF_MUTANTS["sum instead of average where people overlap"](*crossing)).max() > 1 + 1e-3


def test_paf_messages_name_the_mistake():
    paper = check("openpose_paf_target", op._PAF_MUTANTS["the paper's rectangle only (support='paper')"])
    assert paper.status == "failed" and "official" in paper.message and "sigma_l past" in paper.message
    summed = check("openpose_paf_target", op._PAF_MUTANTS["sum instead of average where people overlap"])
    assert "average" in summed.message and "cross" in summed.message


def test_paf_learner_nan_on_zero_length_limb_is_explained():
    def no_skip(limbs, output_size, stride, limb_width):
        with np.errstate(invalid="ignore", divide="ignore"):
            out = op.paf_target_solution([limb for limb in limbs if limb[:2] != limb[2:]], output_size, stride,
                                         limb_width)
            if any(limb[:2] == limb[2:] for limb in limbs):
                out[:, 0, 0] = np.nan
        return out

    result = check("openpose_paf_target", no_skip)
    assert result.status == "failed" and "zero-length limb" in result.message


@pytest.mark.parametrize("answer,words", [
    (lambda limbs, size, s, lw: np.moveaxis(op.paf_target_solution(limbs, size, s, lw), 0, -1), "channels first"),
    (lambda limbs, size, s, lw: None, "expected shape"),
    (lambda limbs, size, s, lw: "field", "array of numbers"),
    (lambda limbs, size, s, lw: np.zeros((2, 3, 3)), "expected shape"),
])
def test_paf_wrong_types_and_shapes_fail_clearly(answer, words):
    result = check("openpose_paf_target", answer)
    assert result.status == "failed" and words in result.message, str(result)


def test_paf_accepts_torch_and_float32():
    assert check("openpose_paf_target", lambda *args: torch.as_tensor(op.paf_target_solution(*args))).passed
    assert check("openpose_paf_target", lambda *args: op.paf_target_solution(*args).astype(np.float32)).passed


# ---- openpose_limb_score ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_limb_score_solution_agrees_with_score_limbs(seed):
    rng = np.random.default_rng(seed)
    paf_x, paf_y = rng.uniform(-0.2, 1.0, (2, 40, 50))
    height = float(rng.choice([40, 60, 100]))
    peaks_a = np.c_[rng.integers(0, 50, 6), rng.integers(0, 40, 6)].astype(float)
    peaks_b = np.c_[rng.integers(0, 50, 5), rng.integers(0, 40, 5)].astype(float)
    peaks_b[0] = peaks_a[0]  # one pair on a single pixel
    want = score_limbs(peaks_a, peaks_b, paf_x, paf_y, height)
    for i, a in enumerate(peaks_a):
        for j, b in enumerate(peaks_b):
            score, accepted = op.limb_score_solution(a, b, paf_x, paf_y, height)
            assert accepted == np.isfinite(want[i, j])
            if accepted:
                assert score == pytest.approx(want[i, j], abs=1e-9)


def test_limb_score_cases_hold_what_their_names_say():
    cases = {what: case for what, *case in op._score_cases()}
    eight = cases["exactly 8 of the 10 samples above 0.05"]
    assert (op._dots(*eight[:4]) > 0.05).sum() == 8
    nine = cases["9 of the 10 samples above 0.05, one against the limb"]
    assert (op._dots(*nine[:4]) > 0.05).sum() == 9 and op.limb_score_solution(*nine)[1]
    long_limb = cases["a limb longer than half the image height"]
    assert np.hypot(*(long_limb[1] - long_limb[0])) > long_limb[4] / 2 and op.limb_score_solution(*long_limb)[1]
    weak = cases["a very long limb with a weak field"]
    score, accepted = op.limb_score_solution(*weak)
    assert (op._dots(*weak[:4]) > 0.05).all() and score < 0 and not accepted
    for what, a, b, paf_x, paf_y, _ in op._score_cases():
        if np.any(a != b):  # 10 samples on 10 different pixels, none halfway between two
            points = a + np.linspace(0, 1, 10)[:, None] * (b - a)
            assert len({tuple(p) for p in np.rint(points)}) == 10, what
            assert np.all(np.abs(points - np.floor(points) - 0.5) > 1e-6), what


def test_limb_score_messages_name_the_mistake():
    at_least = check("openpose_limb_score", op._SCORE_MUTANTS[">= 80% of the samples instead of > 80%"])
    assert "exactly 8" in at_least.message and "MORE than 80%" in at_least.message
    matlab = check("openpose_limb_score", op._SCORE_MUTANTS["mean of the above-threshold samples only (MATLAB)"])
    assert "ALL 10" in matlab.message and "MATLAB" in matlab.message
    no_prior = check("openpose_limb_score", op._SCORE_MUTANTS["no distance prior"])
    assert "longer than half the image height" in no_prior.message and "prior" in no_prior.message


def test_limb_score_accepts_numpy_types_and_minus_inf_for_rejected_pairs():
    def numpy_types(*args):
        score, accepted = op.limb_score_solution(*args)
        return np.float32(score), np.bool_(accepted)

    def minus_inf(*args):
        score, accepted = op.limb_score_solution(*args)
        return (score if accepted else -np.inf), accepted

    assert check("openpose_limb_score", numpy_types).passed
    assert check("openpose_limb_score", minus_inf).passed


@pytest.mark.parametrize("answer,words", [
    (lambda *args: 0.5, "return a pair (score, accepted)"),
    (lambda *args: (0.5, True, 3), "return a pair (score, accepted)"),
    (lambda *args: ("high", True), "array of numbers"),
    (lambda *args: (0.5, "yes"), "accepted"),
    (lambda *args: (np.zeros(10), True), "one number"),
])
def test_limb_score_wrong_types_fail_clearly(answer, words):
    result = check("openpose_limb_score", answer)
    assert result.status == "failed" and words in result.message, str(result)


# ---- openpose_greedy_matching ----------------------------------------------------------------------------------


def _pairs(rows):
    return sorted((int(i), int(j)) for i, j, *_ in rows)


def test_hidden_case_has_greedy_different_from_hungarian():
    scores = op.HIDDEN_GREEDY_NOT_HUNGARIAN
    greedy, hungarian = match_limbs(scores), match_limbs_hungarian(scores)
    assert _pairs(greedy) != _pairs(hungarian)
    assert hungarian[:, 2].sum() > greedy[:, 2].sum() + 0.5
    assert _pairs(greedy) == sorted(op.greedy_match_solution(scores)) == [(0, 0), (2, 2)]


def test_hungarian_is_rejected_on_the_hidden_case_with_the_reason():
    hidden = op.HIDDEN_GREEDY_NOT_HUNGARIAN

    def hungarian_only_there(scores):
        if scores.shape == hidden.shape and np.array_equal(scores, hidden):
            return op._match_hungarian(scores)
        return op.greedy_match_solution(scores)

    result = check("openpose_greedy_matching", hungarian_only_there)
    assert result.status == "failed" and "hidden case" in result.message
    assert "Hungarian" in result.message and "greedy" in result.message


@pytest.mark.parametrize("seed", range(20))
def test_greedy_solution_agrees_with_match_limbs_ties_included(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(1, 7, 2)
    scores = np.round(rng.uniform(0.05, 1, (n_a, n_b)), 1)  # coarse: ties happen
    scores[rng.uniform(size=scores.shape) < 0.3] = -np.inf
    greedy = op.greedy_match_solution(scores)
    assert greedy == [(int(i), int(j)) for i, j, _ in match_limbs(scores)]  # the same pairs in the same order
    assert len(greedy) <= min(n_a, n_b)


def test_greedy_cases_separate_every_mutant_and_have_no_ties():
    for what, scores in op._match_cases():
        finite = scores[np.isfinite(scores)]
        assert len(np.unique(finite)) == len(finite), what
    for name, mutant in op._MATCH_MUTANTS.items():
        assert any(sorted(mutant(s)) != sorted(op.greedy_match_solution(s)) for _, s in op._match_cases()), name


def test_greedy_messages_name_the_mistake():
    argmax = check("openpose_greedy_matching",
                   op._MATCH_MUTANTS["row-wise argmax (each A takes its best B, even if taken)"])
    assert "used at most once" in argmax.message
    rejected = check("openpose_greedy_matching", op._MATCH_MUTANTS["-inf (rejected) pairs matched too"])
    assert "-inf" in rejected.message and "never matched" in rejected.message


def test_greedy_accepts_any_order_arrays_and_score_columns():
    assert check("openpose_greedy_matching", lambda s: list(reversed(op.greedy_match_solution(s)))).passed
    assert check("openpose_greedy_matching", lambda s: set(op.greedy_match_solution(s))).passed
    assert check("openpose_greedy_matching", match_limbs).passed  # (m, 3) rows i, j, score


@pytest.mark.parametrize("answer,words", [
    (lambda s: None, "return a list of (i, j) pairs"),
    (lambda s: 3, "return a list of (i, j) pairs"),
    (lambda s: [(0.5, 1)], "two integer indices"),
    (lambda s: [(0, 1, 2, 3)], "two integer indices"),
    (lambda s: [(9, 0)], "outside"),
    (lambda s: [(0, 0), (0, 0)] if s.shape == (2, 2) else [], "matched twice"),
])
def test_greedy_wrong_types_fail_clearly(answer, words):
    result = check("openpose_greedy_matching", answer)
    assert result.status == "failed" and words in result.message, str(result)
