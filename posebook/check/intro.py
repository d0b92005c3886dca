"""Checkers for chapter 00 (Introduction): flipping keypoints with the skeleton's pairs; a Gaussian heatmap."""
from __future__ import annotations

import numpy as np

from posebook.data import transforms
from posebook.keypoints import COCO, MPII, flip_permutation

from ._core import CheckFailure, expect_close, expect_shape, exercise

# ---- flip_keypoints ----------------------------------------------------------------------------------------


flip_keypoints_solution = transforms.flip_keypoints  # mirror x -> W - 1 - x, swap pairs, v == 0 rows stay zero


def _flip_no_swap(keypoints, image_width, flip_pairs):
    return transforms.flip_keypoints(keypoints, image_width, ())


def _flip_off_by_one(keypoints, image_width, flip_pairs):
    return transforms.flip_keypoints(keypoints, image_width + 1, flip_pairs)


def _swapped(keypoints, flip_pairs):
    return np.array(keypoints, dtype=float)[flip_permutation(len(keypoints), flip_pairs)]


def _flip_swap_only(keypoints, image_width, flip_pairs):
    return _swapped(keypoints, flip_pairs)


def _flip_unlabelled_moved(keypoints, image_width, flip_pairs):
    out = _swapped(keypoints, flip_pairs)
    out[:, 0] = image_width - 1 - out[:, 0]
    return out


def _random_person(rng, k, width, height, unlabelled=3):
    kp = np.stack([rng.uniform(0, width - 1, k), rng.uniform(0, height - 1, k), rng.integers(1, 3, k)], 1)
    kp[rng.choice(k, unlabelled, replace=False)] = 0
    return kp


def _flip_in_place(keypoints, image_width, flip_pairs):
    flipped = transforms.flip_keypoints(keypoints, image_width, flip_pairs)
    keypoints[...] = flipped  # overwrites the caller's array
    return keypoints


@exercise("flip_keypoints", solution=flip_keypoints_solution, chapter="00_introduction",
          mutants={"no left/right swap": _flip_no_swap, "x -> W - x (off by one)": _flip_off_by_one,
                   "swap without mirroring": _flip_swap_only, "unlabelled keypoints moved": _flip_unlabelled_moved,
                   "flips the caller's array in place": _flip_in_place})
def check_flip_keypoints(fn):
    rng = np.random.default_rng(0)
    cases = [("COCO person, width 640", COCO, 640, 480), ("MPII person, width 333", MPII, 333, 500)]
    for what, skeleton, width, height in cases:
        kp = _random_person(rng, skeleton.num_keypoints, width, height)
        given = kp.copy()
        got = expect_shape(fn(given, width, skeleton.flip_pairs), kp.shape, f"{what}: flipped keypoints")
        if not np.array_equal(given, kp):
            raise CheckFailure(f"{what}: your function changed the keypoints it was given; a dataset keeps its "
                               "annotations and flips a copy for each augmented sample (start from a copy)")
        want = flip_keypoints_solution(kp, width, skeleton.flip_pairs)
        if np.allclose(got, want):
            continue
        labelled = want[:, 2] > 0
        if np.allclose(got[labelled], _flip_no_swap(kp, width, skeleton.flip_pairs)[labelled]):
            raise CheckFailure(f"{what}: x is mirrored but left and right are not swapped; after a flip the "
                               "left wrist is where the right wrist was, so swap every flip pair")
        if np.allclose(got[labelled, 0], want[labelled, 0] + 1):
            raise CheckFailure(f"{what}: every x is 1 px too far right; pixel x mirrors to W - 1 - x, not W - x")
        if np.allclose(got[labelled], _flip_unlabelled_moved(kp, width, skeleton.flip_pairs)[labelled]):
            raise CheckFailure(f"{what}: unlabelled keypoints (v = 0) must stay (0, 0, 0); yours moved to "
                               f"{got[~labelled][0].tolist()}")
        expect_close(got, want, f"{what}: flipped keypoints", atol=1e-6)


# ---- gaussian_heatmap --------------------------------------------------------------------------------------


def gaussian_heatmap_solution(center, size, sigma):
    """An (h, w) heatmap with peak 1 at ``center = (x, y)``: exp(-((u - x)^2 + (v - y)^2) / (2 sigma^2)).

    Pixel (row v, column u) has its centre at integer coordinates (u, v).
    """
    h, w = size
    u = np.arange(w)[None, :]
    v = np.arange(h)[:, None]
    return np.exp(-((u - center[0]) ** 2 + (v - center[1]) ** 2) / (2 * sigma ** 2))


def _gauss_no_two(center, size, sigma):
    return gaussian_heatmap_solution(center, size, sigma / np.sqrt(2))


def _gauss_xy_swapped(center, size, sigma):
    return gaussian_heatmap_solution((center[1], center[0]), size, sigma)


def _gauss_normalised(center, size, sigma):
    hm = gaussian_heatmap_solution(center, size, sigma)
    return hm / hm.sum()


def _gauss_half_pixel(center, size, sigma):
    return gaussian_heatmap_solution((center[0] - 0.5, center[1] - 0.5), size, sigma)


def _gauss_sigma_not_squared(center, size, sigma):
    return gaussian_heatmap_solution(center, size, np.sqrt(sigma))


@exercise("gaussian_heatmap", solution=gaussian_heatmap_solution, chapter="00_introduction",
          mutants={"no factor 2": _gauss_no_two, "x and y swapped": _gauss_xy_swapped,
                   "normalised to sum 1": _gauss_normalised, "half-pixel centre": _gauss_half_pixel,
                   "sigma not squared": _gauss_sigma_not_squared})
def check_gaussian_heatmap(fn):
    cases = [((20.0, 10.0), (64, 48), 2.0), ((5.3, 40.7), (64, 48), 2.0), ((30.0, 12.0), (32, 48), 3.0)]
    for center, size, sigma in cases:
        what = f"center {center}, size {size}, sigma {sigma}"
        got = expect_shape(fn(center, size, sigma), size, f"heatmap for {what}")
        want = gaussian_heatmap_solution(center, size, sigma)
        peak = np.unravel_index(np.argmax(got), got.shape)
        if abs(got.max() - want.max()) > 1e-3 and abs(got.sum() - 1) < 1e-3:
            raise CheckFailure(f"heatmap for {what}: it sums to 1; a training target has peak 1 at the keypoint "
                               "(unnormalised), so the network's output is comparable across sigmas")
        if peak != np.unravel_index(np.argmax(want), want.shape):
            raise CheckFailure(f"heatmap for {what}: the peak is at row {peak[0]}, column {peak[1]}; expected "
                               f"row {round(center[1])}, column {round(center[0])} (x is the column, y the row)")
        expect_close(got, want, f"heatmap for {what}", atol=1e-6,
                     hint="the exponent is -(dx^2 + dy^2) / (2 sigma^2), with pixel centres at integer "
                          "coordinates")
