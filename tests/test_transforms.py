"""Top-down transforms follow HRNet's conventions (PAPERS.md §1.6): box -> center/scale, the affine crop, flip."""
import cv2
import numpy as np
import pytest
import torch

from posebook.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, Augment, affine_points, box_to_center_scale,
                                      clip_box, color_jitter, crop, denormalize, flip_heatmaps, flip_image,
                                      flip_keypoints, get_affine_transform, half_body, to_tensor)
from posebook.keypoints import COCO, MPII


def three_point_affine(center, scale, rot, output_size, inv=False):
    """An independent construction of HRNet's mapping: three point pairs solved by OpenCV."""
    out_h, out_w = output_size
    src_w = scale[0] * 200
    rad = np.deg2rad(rot)
    up = np.array([0.0, -src_w / 2])
    src_up = np.array([up[0] * np.cos(rad) - up[1] * np.sin(rad), up[0] * np.sin(rad) + up[1] * np.cos(rad)])
    src = np.array([center, center + src_up, center + np.array([src_up[1], -src_up[0]])], np.float32)
    dst_c = np.array([out_w / 2, out_h / 2])
    dst_up = np.array([0, -out_w / 2])
    dst = np.array([dst_c, dst_c + dst_up, dst_c + np.array([dst_up[1], -dst_up[0]])], np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def test_box_to_center_scale_widens_the_short_side_and_pads_by_1_25():
    center, scale = box_to_center_scale([10, 20, 30, 100], aspect_ratio=0.75)
    np.testing.assert_allclose(center, [25, 70])
    np.testing.assert_allclose(scale, [75 / 200 * 1.25, 100 / 200 * 1.25])  # w grown to 0.75 * 100
    center, scale = box_to_center_scale([0, 0, 300, 100], aspect_ratio=0.75)
    np.testing.assert_allclose(scale, [300 / 200 * 1.25, 400 / 200 * 1.25])  # h grown to 300 / 0.75


def test_box_to_center_scale_names_the_bad_argument():
    with pytest.raises(ValueError, match="box_xywh"):
        box_to_center_scale([1, 2, 3])


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_affine_matches_an_independent_three_point_construction(rot):
    center, scale = np.array([320.5, 211.0]), np.array([1.1, 1.1 / 0.75])
    for inv in (False, True):
        np.testing.assert_allclose(get_affine_transform(center, scale, rot, (256, 192), inv=inv),
                                   three_point_affine(center, scale, rot, (256, 192), inv=inv), atol=1e-4)


def test_box_centre_lands_on_the_crop_centre_and_box_width_on_the_crop_width():
    m = get_affine_transform([100, 50], [0.96, 1.28], 0, (256, 192))
    np.testing.assert_allclose(affine_points([[100, 50], [100 + 96, 50]], m), [[96, 128], [192, 128]])


def test_transform_then_inverse_returns_points_within_1e_4_px():
    rng = np.random.default_rng(0)
    for _ in range(200):
        center = rng.uniform(-100, 1000, 2)
        scale = rng.uniform(0.05, 5.0) * np.array([0.75, 1.0])
        rot = rng.uniform(-180, 180)
        size = tuple(rng.choice([64, 96, 192, 256, 384], 2))
        pts = rng.uniform(-500, 1500, (17, 2))
        fwd = get_affine_transform(center, scale, rot, size)
        back = get_affine_transform(center, scale, rot, size, inv=True)
        assert np.abs(affine_points(affine_points(pts, fwd), back) - pts).max() < 1e-4


def test_crop_puts_a_marked_pixel_where_affine_points_says():
    image = np.zeros((300, 400, 3), np.uint8)
    image[120, 250] = 255
    center, scale, rot = np.array([240.0, 140.0]), np.array([0.6, 0.8]), 20.0
    out = crop(image, center, scale, rot, (256, 192))
    assert out.shape == (256, 192, 3)
    y, x = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    expected = affine_points([250, 120], get_affine_transform(center, scale, rot, (256, 192)))
    assert np.hypot(x - expected[0], y - expected[1]) <= 1.0


def test_flip_keypoints_mirrors_to_w_minus_1_minus_x_and_swaps_left_right():
    kp = np.zeros((17, 3))
    kp[COCO.index("left_wrist")] = [10, 40, 2]
    kp[COCO.index("right_wrist")] = [30, 41, 1]
    out = flip_keypoints(kp, 100, COCO.flip_pairs)
    np.testing.assert_allclose(out[COCO.index("right_wrist")], [89, 40, 2])
    np.testing.assert_allclose(out[COCO.index("left_wrist")], [69, 41, 1])
    assert np.all(out[COCO.index("nose")] == 0)  # unlabelled stays (0, 0, 0)


def test_flip_heatmaps_twice_is_identity_and_swaps_channels():
    hm = np.random.default_rng(1).random((2, 16, 8, 6)).astype(np.float32)
    flipped = flip_heatmaps(hm, MPII.flip_pairs)
    np.testing.assert_array_equal(flipped[:, 0], hm[:, 5, :, ::-1])  # r_ankle <- l_ankle mirrored
    np.testing.assert_array_equal(flip_heatmaps(flipped, MPII.flip_pairs), hm)
    torch_out = flip_heatmaps(torch.from_numpy(hm), MPII.flip_pairs, shift=True)
    np.testing.assert_array_equal(torch_out.numpy()[..., 1:], flipped[..., :-1])


def test_half_body_box_covers_only_the_chosen_half():
    kp = np.zeros((17, 3))
    kp[:, 2] = 2
    kp[:11, :2] = np.random.default_rng(2).uniform(100, 140, (11, 2))  # upper body
    kp[11:, :2] = np.random.default_rng(3).uniform(300, 400, (6, 2))   # lower body
    centers = [half_body(kp, COCO.upper_body, np.random.default_rng(s))[0] for s in range(40)]
    upper = [c for c in centers if c[1] < 200]
    assert 0 < len(upper) < 40  # both halves occur (upper about 69 %)
    for c in upper:
        np.testing.assert_allclose(c, kp[:11, :2].mean(0))


def test_half_body_needs_at_least_two_joints():
    kp = np.zeros((17, 3))
    kp[0] = [5, 5, 2]
    assert half_body(kp, COCO.upper_body, np.random.default_rng(0)) is None


def test_augment_presets_follow_the_papers_recipes():
    assert (Augment().scale, Augment().rotation, Augment().rotation_prob, Augment().half_body) == (0.35, 45, 0.6, 0.3)
    assert Augment().half_body_min_joints == 8 and Augment().flip == 0.5
    mpii = Augment.hrnet_mpii()
    assert (mpii.scale, mpii.rotation, mpii.half_body) == (0.25, 30, 0.0)
    sb = Augment.simple_baseline()
    assert (sb.scale, sb.rotation, sb.half_body) == (0.3, 40, 0.0)
    hg = Augment.hourglass()
    assert (hg.scale_mode, hg.rotation, hg.rotation_prob, hg.color) == ("log2", 30, 0.4, (0.6, 1.4))


def test_augment_draws_stay_inside_their_clips():
    rng = np.random.default_rng(0)
    a, hg = Augment(), Augment.hourglass()
    s = np.array([a.scale_factor(rng) for _ in range(2000)])
    r = np.array([a.rotation_deg(rng) for _ in range(2000)])
    assert s.min() >= 0.65 and s.max() <= 1.35
    assert np.abs(r).max() <= 90 and 0.3 < np.mean(r == 0) < 0.5  # rotated with p 0.6
    h = np.array([hg.scale_factor(rng) for _ in range(2000)])
    assert h.min() >= 2 ** -0.5 - 1e-9 and h.max() <= 2 ** 0.5 + 1e-9


def test_color_jitter_scales_each_channel_within_bounds():
    image = np.full((4, 4, 3), 100, np.uint8)
    out = color_jitter(image, np.random.default_rng(0))
    assert out.dtype == np.uint8 and np.all((out >= 60) & (out <= 140))
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 1  # one factor per channel, not per pixel


def test_to_tensor_and_denormalize_round_trip():
    image = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    t = to_tensor(image)
    assert t.shape == (3, 8, 6) and t.dtype == torch.float32
    np.testing.assert_allclose(t[:, 0, 0].numpy(), (image[0, 0] / 255 - IMAGENET_MEAN) / [0.229, 0.224, 0.225],
                               rtol=1e-5)
    np.testing.assert_array_equal(denormalize(t), image)


@pytest.mark.parametrize("shape", [(256, 192, 3), (7, 5, 3), (1, 1, 3)])
def test_to_tensor_gives_the_bits_of_the_float32_formula_for_every_level(shape):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    image.reshape(-1)[:256] = np.arange(256)[: image.size]  # every level, where there is room
    formula = (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    assert torch.equal(to_tensor(image), torch.from_numpy(np.ascontiguousarray(formula.transpose(2, 0, 1))))
    view = np.zeros((shape[0], 2 * shape[1], 3), np.uint8)
    view[:, ::2] = image
    assert torch.equal(to_tensor(view[:, ::2]), to_tensor(image))  # a strided view reads the same
    as_float = image.astype(np.float64)
    np.testing.assert_allclose(to_tensor(as_float).numpy(), to_tensor(image).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"expects an \(H, W, 3\) RGB image, got shape \(4, 4\)"):
        to_tensor(np.zeros((4, 4), np.uint8))


def test_flip_image_is_the_reversed_view_as_a_new_contiguous_array():
    image = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image.flags.writeable = False  # cached images are read-only
    flipped = flip_image(image)
    assert np.array_equal(flipped, image[:, ::-1]) and flipped.flags.c_contiguous and flipped.flags.writeable


def test_clip_box_lives_with_the_box_geometry():
    # HRNet adds w - 1 to the clipped x1, so a box sticking out on the left keeps its full width
    assert clip_box([-10, -10, 30, 40], 100, 100) == [0.0, 0.0, 29.0, 39.0]
    assert clip_box([10, 10, 1, 40], 100, 100) is None  # one pixel wide: no area left
