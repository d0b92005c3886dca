"""Codecs: HRNet's Gaussian targets and decoding exactly, DARK's sub-pixel round trip, CPN's blur-kernel targets."""
import cv2
import numpy as np
import pytest
import torch

from posebook.codecs import BlurHeatmap, GaussianHeatmap, VisibleBlurHeatmap, dark_refine, gaussian_modulate, get_max_preds, quarter_offset


def random_keypoints(rng, n, margin, size=(256, 192)):
    return np.stack([rng.uniform(margin, size[1] - 1 - margin, n), rng.uniform(margin, size[0] - 1 - margin, n)], 1)


def round_trip(codec, keypoints):
    maps = np.stack([codec.encode(k[None], [1])[0][0] for k in keypoints])[:, None]  # (N, 1, h, w)
    decoded, scores = codec.decode(maps)
    return decoded[:, 0] - keypoints, scores[:, 0]


# ---- GaussianHeatmap, unbiased=False: HRNet exactly -----------------------------------------------------------

def test_hrnet_target_centre_is_int_of_x_over_stride_plus_half():
    codec = GaussianHeatmap()
    maps, weights = codec.encode([[41.9, 17.0], [42.1, 17.0]], [2, 1])
    assert weights.tolist() == [1.0, 1.0]
    for hm, col in zip(maps, (10, 11)):  # 41.9 / 4 + 0.5 = 10.98 -> 10; 42.1 / 4 + 0.5 = 11.03 -> 11
        assert np.unravel_index(hm.argmax(), hm.shape) == (4, col) and hm.max() == 1.0


def test_hrnet_target_is_a_13x13_patch_for_sigma_2():
    hm, _ = GaussianHeatmap(sigma=2).encode([[96.0, 128.0]], [1])
    rows, cols = np.nonzero(hm[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (26, 38, 18, 30)
    assert hm[0, 32, 30] == pytest.approx(np.exp(-36 / 8))


@pytest.mark.parametrize("sigma", [0.75, 1.0, 1.25, 1.33, 1.5, 2.0, 2.5, 3.0])
def test_hrnet_target_is_centred_on_its_pixel_for_any_sigma_up_to_the_borders(sigma):
    """HRNet's generate_target only ever ran at sigma 2; for other sigma its int() truncation and an even patch
    shifted targets a pixel near the left and top borders, or crashed. Every centre, borders included, must carry
    the truncated Gaussian exp(-d^2 / 2 sigma^2) centred on it (|dx|, |dy| <= ceil(3 sigma))."""
    from posebook.codecs.gaussian import hrnet_gaussian_target, patch_radius

    h, w = 24, 16
    r = patch_radius(sigma)
    assert r == int(np.ceil(3 * sigma - 1e-9)) and (sigma != 2 or r == 6)
    ys, xs = np.mgrid[0:h, 0:w]
    for mu_y in range(-r - 1, h + r + 1):
        for mu_x in range(-r - 1, w + r + 1):
            hm = hrnet_gaussian_target(mu_x, mu_y, (h, w), sigma)
            inside = (np.abs(xs - mu_x) <= r) & (np.abs(ys - mu_y) <= r)
            want = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * sigma ** 2)) * inside
            np.testing.assert_allclose(hm, want, rtol=1e-6, atol=1e-7, err_msg=f"sigma {sigma} at ({mu_x}, {mu_y})")
            if 0 <= mu_x < w and 0 <= mu_y < h:
                assert hm[mu_y, mu_x] == 1.0


@pytest.mark.parametrize("sigma", [0.75, 1.0, 1.5, 2.0])
def test_hrnet_round_trip_keeps_every_joint_within_half_a_pixel_for_any_sigma_at_the_borders(sigma):
    codec = GaussianHeatmap(input_size=(96, 64), heatmap_size=(24, 16), sigma=sigma)
    xs, ys = np.meshgrid(np.arange(0.0, 62.0, 1.0), np.arange(0.0, 94.0, 1.0))  # centres on the map
    points = np.stack([xs.ravel(), ys.ravel()], 1)
    err, scores = round_trip(codec, points)
    assert (scores == 1.0).all()
    assert np.abs(err).max() <= 4 * 0.5 + 4 * 0.25 + 1e-9  # half a pixel from rounding, a quarter from the offset


def test_hrnet_target_refuses_a_centre_between_pixels():
    from posebook.codecs.gaussian import hrnet_gaussian_target

    with pytest.raises(ValueError, match="whole heatmap pixel"):
        hrnet_gaussian_target(3.5, 2, (8, 8), 1.0)


def test_hrnet_weight_is_zero_only_when_the_patch_is_fully_outside():
    codec = GaussianHeatmap()
    # x = -36: centre int(-9 + 0.5) = -8 (int truncates toward zero), patch columns -14..-2: fully outside.
    # x = -20: centre -4, patch columns -10..2: drawn where it overlaps. x = -32: centre -7, patch -13..-1 ends at
    # br = 0, which HRNet's test `br < 0` does not catch: weight 1 and an empty map, as in the official code.
    maps, weights = codec.encode([[-36.0, 100.0], [-20.0, 100.0], [50.0, 60.0], [-32.0, 100.0]], [2, 2, 0, 2])
    assert weights.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert maps[0].max() == 0 and maps[2].max() == 0 and maps[3].max() == 0
    assert np.nonzero(maps[1])[1].max() == 2


def test_get_max_preds_returns_x_column_y_row_and_zero_for_empty_maps():
    hm = np.zeros((1, 2, 8, 6), np.float32)
    hm[0, 0, 5, 2] = 0.7
    coords, maxvals = get_max_preds(torch.from_numpy(hm))
    np.testing.assert_array_equal(coords[0], [[2, 5], [0, 0]])
    np.testing.assert_allclose(maxvals[0], [0.7, 0.0])


def test_quarter_offset_moves_toward_the_higher_neighbour_with_hrnets_strict_bounds():
    hm = np.zeros((1, 2, 10, 10), np.float32)
    hm[0, 0, 5, 5], hm[0, 0, 5, 6], hm[0, 0, 4, 5] = 1.0, 0.5, 0.2  # right and up are higher
    hm[0, 1, 5, 1], hm[0, 1, 5, 2] = 1.0, 0.5  # max in column 1: 1 < px fails, so no move
    coords, _ = get_max_preds(hm)
    out = quarter_offset(hm, coords)
    np.testing.assert_allclose(out[0], [[5.25, 4.75], [1.0, 5.0]])


def test_hrnet_round_trip_is_within_half_a_heatmap_pixel_with_no_half_pixel_correction():
    codec = GaussianHeatmap()
    err, scores = round_trip(codec, random_keypoints(np.random.default_rng(0), 500, 12))
    assert np.abs(err).max() <= 2.0 + 1e-9  # stride 4: the symmetric target never triggers the quarter step
    assert np.all(scores == 1.0)
    # integer heatmap pixels decode exactly: x = 4 * column, no + 0.5 correction, as the official code
    exact = np.array([[40.0, 100.0]])
    assert np.abs(round_trip(codec, exact)[0]).max() == 0


# ---- GaussianHeatmap, unbiased=True: DARK ---------------------------------------------------------------------

def test_dark_round_trip_error_is_well_under_a_tenth_of_an_input_pixel():
    codec = GaussianHeatmap(unbiased=True)
    err, _ = round_trip(codec, random_keypoints(np.random.default_rng(1), 500, 24))
    assert np.abs(err).max() < 0.01
    assert np.abs(err).mean() < 0.002


def test_dark_target_peaks_at_the_sub_pixel_position():
    hm, _ = GaussianHeatmap(unbiased=True).encode([[41.0, 16.0]], [1])
    # 41 / 4 = 10.25: columns 10 and 11 hold exp(-0.25^2/8) and exp(-0.75^2/8)
    np.testing.assert_allclose(hm[0, 4, 10:12], np.exp(-np.array([0.25, 0.75]) ** 2 / 8), rtol=1e-5)


def test_dark_refine_is_exact_on_a_noiseless_large_gaussian_with_a_wide_kernel():
    ys, xs = np.mgrid[0:32, 0:32]
    hm = np.exp(-((xs - 15.3) ** 2 + (ys - 16.8) ** 2) / (2 * 3.0 ** 2))[None, None].astype(np.float32)
    out = dark_refine(hm, get_max_preds(hm)[0], kernel=11)
    np.testing.assert_allclose(out[0, 0], [15.3, 16.8], atol=0.01)


def test_unbiased_decoding_beats_argmax_and_quarter_offset_on_a_blurred_prediction():
    rng = np.random.default_rng(3)
    kp = random_keypoints(rng, 300, 24)
    truth = GaussianHeatmap(sigma=3.0, unbiased=True)  # a smooth "prediction" wider than the sigma-2 target
    maps = np.stack([truth.encode(k[None], [1])[0][0] for k in kp])[:, None]
    errors = {}
    for name, codec in {"argmax+quarter": GaussianHeatmap(), "dark": GaussianHeatmap(unbiased=True)}.items():
        errors[name] = np.linalg.norm(codec.decode(maps)[0][:, 0] - kp, axis=1).mean()
    assert errors["dark"] < 0.1 < errors["argmax+quarter"]


@pytest.mark.parametrize("sigma", [0.1, 0.15, 0.19])
def test_dark_decodes_narrow_targets_whose_modulation_kernel_is_one_pixel(sigma):
    codec = GaussianHeatmap(sigma=sigma, unbiased=True)
    assert codec.dark_kernel == 1  # 2 * round(2.5 sigma) + 1: no modulation at all
    truth = np.array([[41.0, 17.0], [100.0, 130.0]])
    hm, _ = codec.encode(truth, [1, 1])
    decoded, _ = codec.decode(hm[None])
    # no crash and a finite answer; so narrow a Gaussian drops under the log's 1e-10 floor two pixels away, so the
    # Taylor step (DARK's and MMPose's alike) is no better than argmax here: within one heatmap pixel
    assert np.all(np.isfinite(decoded)) and np.abs(decoded[0] - truth).max() <= 4


def test_gaussian_modulate_with_a_one_pixel_kernel_is_the_identity():
    hm = np.random.default_rng(6).uniform(0, 1, (2, 3, 8, 6)).astype(np.float32)
    np.testing.assert_allclose(gaussian_modulate(hm, kernel=1), hm, rtol=1e-6)
    with pytest.raises(ValueError, match="odd positive"):
        gaussian_modulate(hm, kernel=4)


def test_encode_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"keypoints \(K, 2\)"):
        GaussianHeatmap().encode(np.zeros((17, 3)), np.ones(17))


def test_decode_rejects_a_heatmap_without_batch_dimension():
    with pytest.raises(ValueError, match=r"\(B, K, h, w\)"):
        GaussianHeatmap().decode(np.zeros((17, 64, 48)))


# ---- BlurHeatmap: CPN / MSPN ----------------------------------------------------------------------------------

def test_blur_target_is_opencvs_blur_of_one_pixel_with_peak_one():
    codec = BlurHeatmap(kernel=7)
    hm, weights = codec.encode([[43.9, 18.2], [-3.0, 5.0]], [2, 2])
    assert weights.tolist() == [1.0, 0.0]  # the second joint is left of the map
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (4, 10)  # int(43.9 / 4), int(18.2 / 4)
    one = np.zeros((64, 48), np.float32)
    one[4, 10] = 1
    blurred = cv2.GaussianBlur(one, (7, 7), 0)
    np.testing.assert_allclose(hm[0], blurred / blurred.max(), rtol=1e-6)
    assert codec.sigma == pytest.approx(1.4)  # 0.3 * ((7 - 1) / 2 - 1) + 0.8


def test_blur_decode_moves_a_quarter_pixel_toward_the_second_maximum_and_maps_x4_plus_2():
    hm = np.zeros((1, 1, 64, 48), np.float32)
    hm[0, 0, 20, 10], hm[0, 0, 20, 11] = 1.0, 0.9  # second maximum to the right
    decoded, score = BlurHeatmap(decode_kernel=3).decode(hm)
    np.testing.assert_allclose(decoded[0, 0], [(10.25) * 4 + 2, 20 * 4 + 2], atol=1e-6)
    assert score[0, 0] == pytest.approx(1.5)  # the map's value at round(10.25), 20, plus the official 0.5


def test_blur_score_is_the_raw_map_value_at_the_decoded_pixel_plus_one_half():
    # CPN-TF mptest.py / MSPN test.py: score = map / 255 + 0.5 at (round(y), round(x)) of the decoded position, on
    # the flip-averaged map before any normalisation; our maps peak at 1 where theirs peak at 255, so + 0.5
    hm = np.zeros((2, 1, 64, 48), np.float32)
    hm[0, 0, 30, 20], hm[0, 0, 31, 20] = 0.3, 0.1  # decoded at row 30.25, column 20 -> pixel (30, 20): 0.3
    hm[1, 0, 5, 7], hm[1, 0, 5, 6] = 0.05, 0.04  # a weak peak: column 6.75 rounds to 7, 0.05 + 0.5
    decoded, score = BlurHeatmap(decode_kernel=3).decode(hm)
    np.testing.assert_allclose(decoded[:, 0], [[20 * 4 + 2, 30.25 * 4 + 2], [6.75 * 4 + 2, 5 * 4 + 2]], atol=1e-6)
    np.testing.assert_allclose(score[:, 0], [0.8, 0.55], atol=1e-6)


def test_blur_joints_past_the_right_or_bottom_edge_are_clamped_onto_the_map_as_cpn_does():
    # CPN-TF joints_heatmap_gen: x = min(x, W - 1), y = min(y, H - 1) in input px, then int(x / 4): a joint at
    # x = 200 of a 192-wide crop lands in column int(191 / 4) = 47, at y = 300 of 256 in row int(255 / 4) = 63.
    # It is outside the crop, so its weight is 0 (CPN's augmentation marks it invalid); left or above: not drawn.
    codec = BlurHeatmap(kernel=7)
    hm, weights = codec.encode([[200.0, 18.2], [43.9, 300.0], [-3.0, 18.0], [250.0, -1.0], [191.9, 255.9]],
                               [2, 1, 2, 2, 2])
    assert weights.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    for k, (row, col) in ((0, (4, 47)), (1, (63, 10)), (4, (63, 47))):
        one = np.zeros((64, 48), np.float32)
        one[row, col] = 1
        blurred = cv2.GaussianBlur(one, (7, 7), 0)
        np.testing.assert_allclose(hm[k], blurred / blurred.max(), rtol=1e-6)
    assert hm[2].max() == 0 and hm[3].max() == 0
    # MSPN's generate_heatmap draws only joints inside the crop
    unclamped, _ = BlurHeatmap(kernel=7, clamp=False).encode([[200.0, 18.2], [191.9, 255.9]], [2, 2])
    assert unclamped[0].max() == 0 and unclamped[1].max() == 1


def test_each_codec_declares_its_flip_test_convention():
    assert GaussianHeatmap().flip_shift is True  # HRNet's SHIFT_HEATMAP
    assert GaussianHeatmap(unbiased=True).flip_shift is True  # DARK's code and MMPose's DARK configs
    assert BlurHeatmap().flip_shift is False  # CPN-TF and MSPN flip back without a shift


def test_heatmap_codec_declares_encode_and_decode_abstract():
    from posebook.codecs import HeatmapCodec
    from posebook.codecs.base import HeatmapCodec as in_base

    assert HeatmapCodec is in_base
    assert isinstance(GaussianHeatmap(), HeatmapCodec) and isinstance(BlurHeatmap(), HeatmapCodec)

    class EncodeOnly(HeatmapCodec):
        flip_shift = False

        def encode(self, keypoints, visibility):
            return np.zeros((1, 2, 2)), np.zeros(1)

    with pytest.raises(TypeError, match="decode"):
        EncodeOnly((8, 8), (2, 2))
    with pytest.raises(ValueError, match=r"GaussianHeatmap heatmap_size must be two positive sizes"):
        GaussianHeatmap(heatmap_size=(0, 48))


@pytest.mark.parametrize("kernel,decode_kernel", [(7, 21), (11, 5), (15, 9)])
def test_blur_round_trip_is_within_three_quarters_of_a_stride(kernel, decode_kernel):
    codec = BlurHeatmap(kernel=kernel, decode_kernel=decode_kernel)
    err, _ = round_trip(codec, random_keypoints(np.random.default_rng(4), 300, 16))
    # truncation to the cell, + stride / 2 to its centre (<= 2 px), then a quarter step toward the second
    # maximum (1 px): on a perfect target the neighbours tie, so the step's direction is arbitrary
    assert np.abs(err).max() <= 0.75 * 4 + 1e-6


def test_blur_peak_255_draws_the_official_scale_and_decodes_to_the_same_keypoints_and_scores():
    # MSPN's JointsDataset.generate_heatmap (and CPN-TF): heatmaps[i] /= maxi / 255; test: score = value / 255 + 0.5
    one, official = BlurHeatmap(kernel=7), BlurHeatmap(kernel=7, peak=255)
    kp, vis = [[43.9, 18.2], [100.0, 200.0], [-3.0, 5.0]], [2, 1, 2]
    hm1, w1 = one.encode(kp, vis)
    hm255, w255 = official.encode(kp, vis)
    assert hm255.max() == pytest.approx(255) and w255.tolist() == w1.tolist()
    np.testing.assert_allclose(hm255, hm1 * 255, rtol=1e-5)
    prediction = np.random.default_rng(3).random((2, 17, 64, 48)).astype(np.float32)
    (kp1, s1), (kp255, s255) = one.decode(prediction), official.decode(prediction * 255)
    np.testing.assert_allclose(kp255, kp1, atol=1e-6)
    np.testing.assert_allclose(s255, s1, rtol=1e-5)
    assert "peak=255" in repr(official) and "peak" not in repr(one)
    visible = VisibleBlurHeatmap(kernel=5, peak=255)
    assert visible.encode(kp, vis)[0].max() == pytest.approx(255) and "peak=255" in repr(visible)
    for bad in (0, -1.0, float("nan"), True, "255"):
        with pytest.raises(ValueError, match="BlurHeatmap peak"):
            BlurHeatmap(peak=bad)


def test_blur_kernel_must_be_odd():
    with pytest.raises(ValueError, match="kernel"):
        BlurHeatmap(kernel=8)


def test_hrnet_targets_agree_with_the_exercise_reference_everywhere_including_the_borders():
    from posebook.check.data import encode_gaussian_target_solution

    codec = GaussianHeatmap()
    rng = np.random.default_rng(5)
    points = np.stack([rng.uniform(-60, 250, 300), rng.uniform(-60, 320, 300)], 1)
    maps, weights = codec.encode(points, np.ones(len(points)))
    for point, hm, weight in zip(points, maps, weights):
        want_hm, want_w = encode_gaussian_target_solution(point, True)
        assert weight == want_w
        np.testing.assert_allclose(hm, want_hm, atol=1e-6)
