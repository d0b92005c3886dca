"""Checkers for chapter 08 (OpenPose, Cao et al., CVPR 2017 / TPAMI 2019): the part affinity field target of one
limb type, the score of one candidate limb, and the greedy matching of one limb type's candidates.

Each is checked against the library's own code: :class:`posebook.codecs.paf.PartAffinityFields` (with its default
``support="official"``), :func:`posebook.inference.bottomup.score_limbs` and
:func:`posebook.inference.bottomup.match_limbs`, which follow the official training code and the CMU demo's parser.
The reference solutions below are plain numpy, short enough for the notebook to show as the answers.
"""
from __future__ import annotations

import functools

import numpy as np

from posebook.codecs.paf import PartAffinityFields
from posebook.inference.bottomup import MID_NUM, MIN_ABOVE, THRE2, match_limbs, match_limbs_hungarian, score_limbs
from posebook.keypoints import OPENPOSE

from ._core import CheckFailure, as_array, exercise

CHAPTER = "08_openpose"


def _fmt(values, digits: int = 3) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}g}" for v in values) + ")"


# ---- openpose_paf_target ---------------------------------------------------------------------------------------


def paf_target_solution(limbs, output_size, stride, limb_width):
    """The PAF target (2, h, w) of ONE limb type: channel 0 the x component, channel 1 the y component.

    ``limbs``: one (x1, y1, x2, y2) per person, the limb's start and end parts in input pixels (only people whose
    two parts are labelled are listed). ``output_size``: (h, w) of the map; ``stride``: input pixels per map pixel;
    ``limb_width``: sigma_l in input pixels. Map pixel (row i, column j) stands for the input point
    (j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2), the centre of the block it summarises.

    A pixel p is on a person's limb (the official code's support) when it lies within sigma_l of the limb's line,
    abs(v_perp . (p - x1)) <= sigma_l, and inside the segment's bounding box widened by sigma_l on every side; there it
    gets the unit vector v = (x2 - x1) / norm(x2 - x1). Where several people's limbs cover a pixel, their vectors are
    averaged (summed, then divided by how many cover it); elsewhere the field is 0. A zero-length limb (both parts
    at one point) has no direction and is not drawn.
    """
    h, w = (int(v) for v in output_size)
    xs = np.arange(w) * stride + (stride - 1) / 2          # input x of each map column
    ys = np.arange(h) * stride + (stride - 1) / 2          # input y of each map row
    px, py = np.meshgrid(xs, ys)                           # (h, w) each
    total = np.zeros((2, h, w))
    count = np.zeros((h, w))
    for x1, y1, x2, y2 in limbs:
        length = np.hypot(x2 - x1, y2 - y1)
        if length == 0:
            continue                                       # no direction: not drawn
        vx, vy = (x2 - x1) / length, (y2 - y1) / length
        across = (py - y1) * vx - (px - x1) * vy           # signed distance from the limb's line
        on = ((np.abs(across) <= limb_width)
              & (px >= min(x1, x2) - limb_width) & (px <= max(x1, x2) + limb_width)
              & (py >= min(y1, y2) - limb_width) & (py <= max(y1, y2) + limb_width))
        total[0][on] += vx
        total[1][on] += vy
        count += on
    return total / np.maximum(count, 1)


def _paf_variant(limbs, output_size, stride, limb_width, *, support="official", combine="mean", normalise=True,
                 swap=False, offset=True):
    """A planted wrong PAF target: one part of the reference changed (the names say which)."""
    h, w = (int(v) for v in output_size)
    shift = (stride - 1) / 2 if offset else 0.0
    px, py = np.meshgrid(np.arange(w) * stride + shift, np.arange(h) * stride + shift)
    total, count = np.zeros((2, h, w)), np.zeros((h, w))
    for x1, y1, x2, y2 in limbs:
        length = np.hypot(x2 - x1, y2 - y1)
        if length == 0:
            continue
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        across = (py - y1) * ux - (px - x1) * uy
        on = np.abs(across) <= limb_width
        if support == "official":
            on &= ((px >= min(x1, x2) - limb_width) & (px <= max(x1, x2) + limb_width)
                   & (py >= min(y1, y2) - limb_width) & (py <= max(y1, y2) + limb_width))
        else:  # the paper's rectangle: 0 <= v.(p - x1) <= |x2 - x1|
            along = (px - x1) * ux + (py - y1) * uy
            on &= (along >= 0) & (along <= length)
        vx, vy = (ux, uy) if normalise else (x2 - x1, y2 - y1)
        if swap:
            vx, vy = vy, vx
        if combine == "last":
            total[0][on], total[1][on], count[on] = vx, vy, 1
        else:
            total[0][on] += vx
            total[1][on] += vy
            count += on
    return total if combine == "sum" else total / np.maximum(count, 1)


_PAF_MUTANTS = {
    "the paper's rectangle only (support='paper')": functools.partial(_paf_variant, support="paper"),
    "sum instead of average where people overlap": functools.partial(_paf_variant, combine="sum"),
    "a later person overwrites (no average)": functools.partial(_paf_variant, combine="last"),
    "vector not normalised": functools.partial(_paf_variant, normalise=False),
    "x and y components swapped": functools.partial(_paf_variant, swap=True),
    "no half-pixel offset (map pixel j at input j * stride)": functools.partial(_paf_variant, offset=False),
}

_PAF_HINTS = {
    "the paper's rectangle only (support='paper')":
        "your field stops exactly at the two parts (the paper's rectangle, TPAMI'19 §3: "
        "0 <= v.(p - x1) <= |x2 - x1|). "
        "The official training code draws the segment's bounding box widened by sigma_l on every side, intersected "
        "with the band |v_perp.(p - x1)| <= sigma_l, so the field reaches about sigma_l past each end. The demo's "
        "parser samples the field ON the two peaks, so with the paper's rectangle true limbs get rejected",
    "sum instead of average where people overlap":
        "where two people's limbs cover the same pixel you added their vectors; the target is their average "
        "(TPAMI'19 Eq. 9: the sum divided by n_c(p), the number of people whose limb covers p)",
    "a later person overwrites (no average)":
        "where two people's limbs cover the same pixel the later person's vector replaced the earlier one (as the "
        "CVPR'17 Caffe code does); the target averages them (TPAMI'19 Eq. 9 and the 2019 training code)",
    "vector not normalised":
        "the field holds the limb's UNIT vector (x2 - x1) / |x2 - x1|, not the raw difference: it encodes only the "
        "direction, so its length is 1 on a single limb",
    "x and y components swapped":
        "channel 0 is the x component (along the columns), channel 1 the y component (along the rows)",
    "no half-pixel offset (map pixel j at input j * stride)":
        "map pixel (row i, column j) stands for the input point (j * stride + (stride - 1) / 2, i * stride + "
        "(stride - 1) / 2), the centre of the stride x stride block it summarises, not its corner",
}


def _codec_paf(limbs, output_size, stride, limb_width) -> np.ndarray:
    """The truth: the channels of one limb type as posebook.codecs.paf.PartAffinityFields draws them."""
    h, w = output_size
    codec = PartAffinityFields(input_size=(h * stride, w * stride), stride=stride, limb_width=limb_width,
                               skeleton=OPENPOSE, support="official")
    a, b = OPENPOSE.limbs[0]
    people = np.zeros((max(len(limbs), 1), OPENPOSE.num_keypoints, 3))
    for n, (x1, y1, x2, y2) in enumerate(limbs):
        people[n, a], people[n, b] = (x1, y1, 2), (x2, y2, 2)
    return codec.encode(people)[:2].astype(np.float64)


def _paf_cases():
    """(what, limbs, output_size, stride, limb_width): endpoints off the grid's lattice, so no pixel sits exactly
    on the support's border (a float rounding there would be no mistake)."""
    rng = np.random.default_rng(8)
    crossing = [(20.3, 30.6, 101.2, 70.9), (25.7, 80.2, 98.4, 27.1)]        # an X: two directions meet
    parallel = [(14.2, 40.3, 110.8, 44.9), (18.9, 47.1, 105.3, 52.6), (60.1, 20.7, 61.3, 75.2)]
    random_people = [tuple(np.round(rng.uniform([-10, -10, -10, -10], [140, 90, 140, 90]), 2)) for _ in range(4)]
    return [
        ("one limb", [(30.3, 40.7, 95.2, 61.9)], (12, 16), 8, 8.0),
        ("one limb pointing up and left", [(100.6, 75.3, 41.2, 18.8)], (12, 16), 8, 8.0),
        ("two people whose limbs cross", crossing, (12, 16), 8, 8.0),
        ("three people, two of them side by side", parallel, (12, 16), 8, 8.0),
        ("four people, stride 4, limb width 5.5, partly outside the image", random_people, (24, 36), 4, 5.5),
        ("a zero-length limb (both parts at one point) and a normal one",
         [(50.5, 50.5, 50.5, 50.5), (33.1, 21.4, 70.8, 66.3)], (12, 16), 8, 8.0),
        ("no people", [], (6, 10), 8, 8.0),
    ]


@exercise("openpose_paf_target", solution=paf_target_solution, mutants=_PAF_MUTANTS, chapter=CHAPTER, timeout=10)
def check_paf_target(fn):
    for what, limbs, (h, w), stride, width in _paf_cases():
        label = f"{what} (output {h}x{w}, stride {stride}, limb width {width:g})"
        got = as_array(fn([tuple(limb) for limb in limbs], (h, w), stride, width), f"{label}: PAF target")
        if got.shape != (2, h, w):
            hint = (" (channels first: (2, h, w), channel 0 the x component)" if got.shape == (h, w, 2) else
                    " (two channels, x and y, on the output grid h = H / stride, w = W / stride)")
            raise CheckFailure(f"{label}: expected shape (2, {h}, {w}), got {got.shape}{hint}")
        want = _codec_paf(limbs, (h, w), stride, width)
        if np.allclose(got, want, atol=1e-6, rtol=0):
            continue
        if np.isnan(got).any():
            zero = any(x1 == x2 and y1 == y2 for x1, y1, x2, y2 in limbs)
            raise CheckFailure(f"{label}: your field contains NaN" + (
                ". Hint: a zero-length limb has no direction (0 / 0): skip it, it is not drawn and does not count "
                "in the average" if zero else ". Hint: divide by the number of limbs covering a pixel only where "
                "it is at least 1"))
        for name, mutant in _PAF_MUTANTS.items():
            variant = mutant(limbs, (h, w), stride, width)
            if not np.allclose(variant, want, atol=1e-6) and np.allclose(got, variant, atol=1e-6):
                raise CheckFailure(f"{label}: your field differs from the official target. Hint: {_PAF_HINTS[name]}")
        bad = np.abs(got - want).max(axis=0)
        i, j = np.unravel_index(np.argmax(bad), bad.shape)
        x, y = j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2
        if not want[:, i, j].any():
            hint = ("this pixel is on no person's limb: the support is the band within sigma_l of the limb's line, "
                    "cut by the segment's bounding box widened by sigma_l")
        elif not got[:, i, j].any():
            hint = ("this pixel is on a limb: within sigma_l of its line and inside the segment's bounding box "
                    "widened by sigma_l on every side (the official support reaches about sigma_l past the ends)")
        else:
            hint = "the vector is the limb's unit direction, averaged over the people whose limbs cover the pixel"
        raise CheckFailure(f"{label}: at map row {i}, column {j} (input point x = {x:g}, y = {y:g}) expected "
                           f"(x, y) = {_fmt(want[:, i, j])}, got {_fmt(got[:, i, j])}. Hint: {hint}")


# ---- openpose_limb_score ---------------------------------------------------------------------------------------


def limb_score_solution(a, b, paf_x, paf_y, image_height):
    """(score, accepted) of one candidate limb from part A at ``a`` to part B at ``b``, as the CMU demo scores it.

    ``a``, ``b``: (x, y) pixel positions with integer values (as the peaks are); ``paf_x``, ``paf_y``: (H, W) the
    limb type's two PAF channels at input resolution (row y, column x); ``image_height``: the image's height in
    pixels, for the distance prior. Ten points from A to B, both ends included, each rounded to the nearest pixel;
    at each the field's dot product with the unit vector from A to B. score = the mean of the 10 dot products +
    min(0.5 * image_height / norm(AB) - 1, 0); accepted when MORE than 80% of the dot products exceed 0.05 (9 or 10 of
    10) and score > 0. A pair on one pixel (norm(AB) = 0) is never accepted. The score is returned for a rejected pair
    too (-inf, as score_limbs gives it, is also taken).
    """
    dots, norm = _samples(a, b, paf_x, paf_y)
    if norm == 0:
        return 0.0, False
    prior = min(0.5 * image_height / norm - 1.0, 0.0)
    score = dots.mean() + prior
    accepted = (dots > 0.05).sum() > 0.8 * len(dots) and score > 0
    return float(score), bool(accepted)


def _samples(a, b, paf_x, paf_y, to_pixel=np.rint) -> tuple[np.ndarray, float]:
    """(the 10 dot products of the field with unit(AB) at the points from A to B, both ends included, each put on a
    pixel by ``to_pixel``; norm(AB)). Zero-length: (zeros, 0.0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    vec = b - a
    norm = float(np.hypot(vec[0], vec[1]))
    if norm == 0:
        return np.zeros(MID_NUM), 0.0
    unit = vec / norm
    points = a + np.linspace(0.0, 1.0, MID_NUM)[:, None] * vec          # (10, 2), A and B included
    h, w = np.shape(paf_x)
    xs = np.clip(to_pixel(points[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(to_pixel(points[:, 1]).astype(int), 0, h - 1)
    return paf_x[ys, xs] * unit[0] + paf_y[ys, xs] * unit[1], norm


def _score_variant(a, b, paf_x, paf_y, image_height, *, at_least=False, above_only=False, prior=True,
                   positive=True, truncate=False):
    """A planted wrong limb score: one part of the reference changed (the names say which)."""
    dots, norm = _samples(a, b, paf_x, paf_y, np.trunc if truncate else np.rint)
    if norm == 0:
        return 0.0, False
    above = dots > THRE2
    mean = (dots[above].mean() if above.any() else 0.0) if above_only else dots.mean()
    score = mean + (min(0.5 * image_height / norm - 1.0, 0.0) if prior else 0.0)
    enough = above.sum() >= MIN_ABOVE * MID_NUM if at_least else above.sum() > MIN_ABOVE * MID_NUM
    return float(score), bool(enough and (score > 0 or not positive))


_SCORE_MUTANTS = {
    ">= 80% of the samples instead of > 80%": functools.partial(_score_variant, at_least=True),
    "mean of the above-threshold samples only (MATLAB)": functools.partial(_score_variant, above_only=True),
    "no distance prior": functools.partial(_score_variant, prior=False),
    "score > 0 not required": functools.partial(_score_variant, positive=False),
    "sample positions truncated, not rounded": functools.partial(_score_variant, truncate=True),
    "the map's height as the image height": lambda a, b, paf_x, paf_y, image_height: _score_variant(
        a, b, paf_x, paf_y, np.shape(paf_x)[0]),
}

_SCORE_HINTS = {
    ">= 80% of the samples instead of > 80%":
        "exactly 8 of the 10 samples exceed 0.05 here, which is 80%, not MORE than 80%: the demo's criterion is "
        "len(np.nonzero(vec > thre2)[0]) > 0.8 * len(vec), so it takes 9 of 10",
    "mean of the above-threshold samples only (MATLAB)":
        "the score is the mean of ALL 10 dot products (the discretised line integral E of TPAMI'19 Eq. 11), the "
        "ones at or below 0.05 included; averaging only the samples above the threshold is the MATLAB evaluation "
        "code's variant, not the Python demo's (the book follows the demo)",
    "no distance prior":
        "add the distance prior min(0.5 * image_height / |AB| - 1, 0) to the mean: it is 0 for a limb up to half "
        "the image height long and penalises longer candidates (image_height is the argument, not the map's height)",
    "score > 0 not required":
        "the demo accepts a pair only when BOTH hold: more than 80% of the samples above 0.05, and score > 0 "
        "(the mean plus its prior); here the prior of a very long candidate makes the score negative",
    "sample positions truncated, not rounded":
        "round each sample's x and y to the NEAREST pixel (the demo's int(round(...))); int() or astype(int) "
        "truncates toward 0",
    "the map's height as the image height":
        "the distance prior uses image_height, the argument (the height of the image the maps come from), not the "
        "map's own height: a map padded or cut to the network's input is another size",
}


def _planted_field(shape, a, b, along, seed):
    """paf_x, paf_y (H, W): noise in [-0.3, 0.3] everywhere, and at the 10 (rounded) sample pixels from a to b the
    field along * unit(AB) with along[k] at sample k, so that the dot products are exactly ``along``."""
    rng = np.random.default_rng(seed)
    paf_x, paf_y = rng.uniform(-0.3, 0.3, (2,) + tuple(shape))
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    unit = (b - a) / np.hypot(*(b - a))
    points = np.rint(a + np.linspace(0.0, 1.0, MID_NUM)[:, None] * (b - a)).astype(int)
    for (x, y), value in zip(points, along):
        paf_x[y, x], paf_y[y, x] = value * unit
    return paf_x, paf_y


def _score_cases():
    """(what, a, b, paf_x, paf_y, image_height). Every limb is at least 9 px long in x or y, so its 10 samples fall
    on 10 different pixels; endpoints are integers, so no sample is exactly halfway between two pixels."""
    shape = (64, 80)
    rng = np.random.default_rng(81)
    clear = rng.uniform(0.6, 0.9, MID_NUM)
    eight = np.full(MID_NUM, 0.7)
    eight[[3, 6]] = 0.03
    nine = np.full(MID_NUM, 0.75)
    nine[5] = -0.4
    cases = [
        ("a clear limb", (10, 30), (35, 14), clear, 64.0),
        ("exactly 8 of the 10 samples above 0.05", (12, 50), (40, 37), eight, 64.0),
        ("9 of the 10 samples above 0.05, one against the limb", (60, 8), (48, 36), nine, 64.0),
        ("a limb longer than half the image height", (5, 55), (70, 10), np.full(MID_NUM, 0.95), 80.0),
        ("a very long limb with a weak field", (4, 60), (76, 4), np.full(MID_NUM, 0.5), 64.0),
    ]
    out = []
    for seed, (what, a, b, along, height) in enumerate(cases):
        paf_x, paf_y = _planted_field(shape, a, b, along, seed)
        out.append((what, np.array(a, float), np.array(b, float), paf_x, paf_y, height))
    first = out[0]
    out.append(("the clear limb taken from B to A (against its field)", first[2], first[1], first[3], first[4], 64.0))
    out.append(("both ends on the same pixel", np.array([20.0, 20.0]), np.array([20.0, 20.0]), first[3], first[4],
                64.0))
    return out


def _as_pair(out, what: str) -> tuple[float, bool]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailure(f"{what}: return a pair (score, accepted), got {type(out).__name__}"
                           + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    score, accepted = as_array(out[0], f"{what}: score"), as_array(out[1], f"{what}: accepted")
    if score.size != 1:
        raise CheckFailure(f"{what}: score must be one number, got shape {score.shape}")
    if accepted.size != 1 or float(accepted.reshape(-1)[0]) not in (0.0, 1.0):
        raise CheckFailure(f"{what}: accepted must be True or False, got {out[1]!r}")
    return float(score.reshape(-1)[0]), bool(accepted.reshape(-1)[0])


@exercise("openpose_limb_score", solution=limb_score_solution, mutants=_SCORE_MUTANTS, chapter=CHAPTER, timeout=10)
def check_limb_score(fn):
    for what, a, b, paf_x, paf_y, height in _score_cases():
        label = f"{what}: A = ({a[0]:g}, {a[1]:g}), B = ({b[0]:g}, {b[1]:g}), image height {height:g}"
        score, accepted = _as_pair(fn(a.copy(), b.copy(), paf_x.copy(), paf_y.copy(), height), label)
        want_score, _ = limb_score_solution(a, b, paf_x, paf_y, height)
        # the truth, from the library's parser: -inf where the pair is not accepted
        want_accepted = bool(np.isfinite(score_limbs(a[None], b[None], paf_x, paf_y, height)[0, 0]))
        same_pixel = not np.any(b - a)
        score_ok = same_pixel or np.isclose(score, want_score, atol=1e-6, rtol=1e-6) or (
            not want_accepted and score == -np.inf)  # a rejected pair may be reported with -inf, as score_limbs does
        if score_ok and accepted == want_accepted:
            continue
        for name, mutant in _SCORE_MUTANTS.items():
            bad_score, bad_accepted = mutant(a, b, paf_x, paf_y, height)
            if bad_accepted == want_accepted and np.isclose(bad_score, want_score, atol=1e-6, rtol=1e-6):
                continue  # this wrong answer gives the right result on this case
            if bad_accepted == accepted and (np.isclose(score, bad_score, atol=1e-6, rtol=1e-6)
                                             or (not accepted and score == -np.inf)):
                raise CheckFailure(f"{label}: expected score {want_score:.4f}, accepted {want_accepted}; got "
                                   f"{score:.4f}, {accepted}. Hint: {_SCORE_HINTS[name]}")
        if not score_ok:
            raise CheckFailure(f"{label}: expected score {want_score:.4f} (accepted {want_accepted}), got {score:.4f} "
                               f"({accepted}). Hint: the score is the mean of the dot products PAF(p_k) . (B - A) / "
                               "|B - A| at 10 points p_k = A + k (B - A) / 9, k = 0..9, each rounded to the nearest "
                               "pixel (paf_x[y, x]: rows are y), plus the prior min(0.5 * image_height / |AB| - 1, 0)")
        if same_pixel:
            reason = "A and B are one point, so there is no direction from A to B and no limb"
        else:
            above = int((_dots(a, b, paf_x, paf_y) > THRE2).sum())
            reason = (f"{above} of the 10 samples exceed 0.05 and the score is {want_score:.4f}; the demo "
                      "accepts when more than 80% of them (9 or 10) exceed 0.05 and the score is > 0")
        raise CheckFailure(f"{label}: expected accepted = {want_accepted}, got {accepted}. Hint: {reason}")


def _dots(a, b, paf_x, paf_y) -> np.ndarray:
    unit = (b - a) / np.hypot(*(b - a))
    points = np.rint(a + np.linspace(0.0, 1.0, MID_NUM)[:, None] * (b - a)).astype(int)
    return paf_x[points[:, 1], points[:, 0]] * unit[0] + paf_y[points[:, 1], points[:, 0]] * unit[1]


# ---- openpose_greedy_matching ----------------------------------------------------------------------------------


def greedy_match_solution(scores):
    """The accepted pairs (i, j) of one limb type, as the CMU demo matches them: every candidate pair (a finite
    score; -inf marks a pair the limb score rejected) sorted by score, best first; a pair is taken when neither
    A_i nor B_j is taken yet; at most min(nA, nB) pairs. Returns a list of (i, j), in the order they were taken.
    """
    scores = np.asarray(scores, dtype=float)
    n_a, n_b = scores.shape
    candidates = [(scores[i, j], i, j) for i in range(n_a) for j in range(n_b) if np.isfinite(scores[i, j])]
    candidates.sort(key=lambda c: c[0], reverse=True)      # stable: ties keep row-major order, as the demo
    return _take_free(candidates, min(n_a, n_b))


def _take_free(candidates, limit: int | None = None) -> list[tuple[int, int]]:
    """Walk (score, i, j) in the given order and take each pair whose two ends are still free (up to ``limit``)."""
    used_a, used_b, pairs = set(), set(), []
    for _, i, j in candidates:
        if limit is not None and len(pairs) == limit:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs


def _match_hungarian(scores):
    return [(int(i), int(j)) for i, j, _ in match_limbs_hungarian(scores)]


def _match_row_argmax(scores):
    scores = np.asarray(scores, dtype=float)
    return [(i, int(np.argmax(row))) for i, row in enumerate(scores) if np.isfinite(row).any()]


def _match_rows_in_order(scores):
    scores = np.asarray(scores, dtype=float)
    used, pairs = set(), []
    for i, row in enumerate(scores):
        free = [j for j in np.argsort(-row, kind="stable") if np.isfinite(row[j]) and j not in used]
        if free:
            used.add(int(free[0]))
            pairs.append((i, int(free[0])))
    return pairs


def _match_with_rejected(scores):
    scores = np.asarray(scores, dtype=float)
    order = sorted(((scores[i, j], i, j) for i in range(scores.shape[0]) for j in range(scores.shape[1])),
                   key=lambda c: c[0], reverse=True)
    return _take_free(order)


def _match_ascending(scores):
    scores = np.asarray(scores, dtype=float)
    order = sorted(((scores[i, j], i, j) for i in range(scores.shape[0]) for j in range(scores.shape[1])
                    if np.isfinite(scores[i, j])), key=lambda c: c[0])
    return _take_free(order)


_MATCH_MUTANTS = {
    "Hungarian (the optimal assignment)": _match_hungarian,
    "row-wise argmax (each A takes its best B, even if taken)": _match_row_argmax,
    "A's in row order, each taking its best free B": _match_rows_in_order,
    "-inf (rejected) pairs matched too": _match_with_rejected,
    "sorted ascending (worst first)": _match_ascending,
}

_MATCH_HINTS = {
    "Hungarian (the optimal assignment)":
        "you found the assignment of the largest total score (the Hungarian algorithm): that is what CVPR'17 "
        "Eqs. 12-13 write, but the released code is greedy, and its models were evaluated with it: sort all "
        "candidate pairs by score, best first, and take each pair whose A and B are both still free. Greedy can "
        "take one high pair where two lower ones together score more",
    "row-wise argmax (each A takes its best B, even if taken)":
        "each candidate is used at most once: a B already taken by a better-scoring pair cannot go to a second A",
    "A's in row order, each taking its best free B":
        "you went through the A's in row order; the demo goes through the PAIRS of the whole matrix by score, so "
        "a later A with a higher score takes a B before an earlier A does",
    "-inf (rejected) pairs matched too":
        "a pair with score -inf was rejected by the limb score: it is no candidate and is never matched, even when "
        "both of its parts are still free",
    "sorted ascending (worst first)":
        "the candidates go best first: sort the scores in descending order",
}


def _match_cases():
    """(what, scores) without ties among the finite scores (the demo breaks ties by row-major order)."""
    inf = -np.inf
    rng = np.random.default_rng(808)

    def random_scores(n_a, n_b, rejected):
        s = rng.permutation(np.linspace(0.05, 0.95, n_a * n_b)).reshape(n_a, n_b)
        s[rng.uniform(size=(n_a, n_b)) < rejected] = inf
        return s

    return [
        ("two A's and two B's, each A with its own best B", np.array([[0.9, 0.1], [0.2, 0.8]])),
        ("two A's whose best B is the same", np.array([[0.9, 0.5], [0.8, 0.3]])),
        ("the second A holds the best pair", np.array([[0.5, 0.4], [0.9, inf]])),
        ("the two free parts' pair was rejected (-inf)", np.array([[0.9, 0.2], [0.6, inf]])),
        ("a hidden case: three A's and three B's", HIDDEN_GREEDY_NOT_HUNGARIAN.copy()),
        ("more A's than B's (4 x 2)", random_scores(4, 2, 0.2)),
        ("more B's than A's (3 x 6), some pairs rejected", random_scores(3, 6, 0.3)),
        ("6 x 5, some pairs rejected", random_scores(6, 5, 0.4)),
        ("every pair rejected", np.full((2, 3), inf)),
    ]


# greedy takes (0, 0) = 0.9 first, which blocks (0, 1) and (1, 0), then (2, 2) = 0.7: total 1.6, A1 and B1 left
# unmatched; the optimal assignment is (0, 1) + (1, 0) + (2, 2) = 0.85 + 0.8 + 0.7 = 2.35
HIDDEN_GREEDY_NOT_HUNGARIAN = np.array([[0.9, 0.85, -np.inf],
                                        [0.8, -np.inf, 0.5],
                                        [-np.inf, 0.3, 0.7]])


def _as_pairs(out, shape, what: str) -> list[tuple[int, int]]:
    if out is None or isinstance(out, (str, bytes, dict)) or not hasattr(out, "__iter__"):
        raise CheckFailure(f"{what}: return a list of (i, j) pairs, got {type(out).__name__}")
    pairs = []
    for row in out:
        values = as_array(row, f"{what}: pair {row!r}").reshape(-1)
        if (len(values) not in (2, 3) or not np.all(np.isfinite(values[:2]))
                or np.any(values[:2] != np.round(values[:2]))):
            raise CheckFailure(f"{what}: each pair must be (i, j), two integer indices (a third entry, the score, is "
                               f"allowed), got {row!r}")
        i, j = int(values[0]), int(values[1])
        if not (0 <= i < shape[0] and 0 <= j < shape[1]):
            raise CheckFailure(f"{what}: pair ({i}, {j}) is outside the (nA, nB) = {shape} score matrix")
        pairs.append((i, j))
    return pairs


@exercise("openpose_greedy_matching", solution=greedy_match_solution, mutants=_MATCH_MUTANTS, chapter=CHAPTER,
          timeout=10)
def check_greedy_matching(fn):
    for what, scores in _match_cases():
        shown = np.array2string(scores, precision=3, separator=", ").replace("\n", "")
        label = f"{what}, scores {shown}"
        got = _as_pairs(fn(scores.copy()), scores.shape, label)
        want = [(int(i), int(j)) for i, j, _ in match_limbs(scores)]  # the truth, from the library's parser
        if sorted(got) == sorted(want):
            continue
        for name, mutant in _MATCH_MUTANTS.items():
            variant = mutant(scores)
            if sorted(variant) != sorted(want) and sorted(got) == sorted(variant):
                raise CheckFailure(f"{label}: expected pairs {sorted(want)}, got {sorted(got)}. "
                                   f"Hint: {_MATCH_HINTS[name]}")
        taken_a, taken_b = [i for i, _ in got], [j for _, j in got]
        if len(set(taken_a)) < len(taken_a) or len(set(taken_b)) < len(taken_b):
            hint = "a part was matched twice; each A and each B is used at most once"
        elif any(not np.isfinite(scores[i, j]) for i, j in got):
            hint = _MATCH_HINTS["-inf (rejected) pairs matched too"]
        else:
            hint = ("sort every finite pair by score, best first, and take a pair when neither its A nor its B is "
                    "taken yet")
        raise CheckFailure(f"{label}: expected pairs {sorted(want)}, got {sorted(got)}. Hint: {hint}")
