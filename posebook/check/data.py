"""Checkers for chapter 01 (Data): box -> center/scale, HRNet's Gaussian target with its weight rule, and
argmax + quarter-offset decoding. Each has a reference solution and planted wrong answers."""
from __future__ import annotations

import numpy as np

from ._core import CheckFailure, as_array, expect_close, expect_shape, exercise

CHAPTER = "01_data"

# ---- box_to_center_scale --------------------------------------------------------------------------------------


def box_to_center_scale_solution(box, aspect_ratio=192 / 256):
    """COCO [x, y, w, h] -> (center (2,), scale (2,)): grow the side too short for the aspect, / 200, x 1.25."""
    x, y, w, h = (float(v) for v in box)
    center = np.array([x + w / 2, y + h / 2])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w, h]) / 200 * 1.25


def _bcs_no_aspect(box, aspect_ratio=0.75):
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2]), np.array([w, h]) / 200 * 1.25


def _bcs_no_padding(box, aspect_ratio=0.75):
    center, scale = box_to_center_scale_solution(box, aspect_ratio)
    return center, scale / 1.25


def _bcs_shrinks_long_side(box, aspect_ratio=0.75):
    x, y, w, h = box
    w, h = (w, w / aspect_ratio) if w < aspect_ratio * h else (h * aspect_ratio, h)
    return np.array([x + w / 2, y + h / 2]), np.array([w, h]) / 200 * 1.25


def _bcs_grows_shorter_side(box, aspect_ratio=0.75):
    x, y, w, h = (float(v) for v in box)  # the literal reading "grow the shorter of w and h"
    if w < h:
        w = h * aspect_ratio
    else:
        h = w / aspect_ratio
    return np.array([x + w / 2, y + h / 2]), np.array([w, h]) / 200 * 1.25


def _bcs_corner(box, aspect_ratio=0.75):
    _, scale = box_to_center_scale_solution(box, aspect_ratio)
    return np.array(box[:2], dtype=float), scale


def _bcs_pixels(box, aspect_ratio=0.75):
    center, scale = box_to_center_scale_solution(box, aspect_ratio)
    return center, scale * 200


@exercise("box_to_center_scale", solution=box_to_center_scale_solution, chapter=CHAPTER,
          mutants={"no aspect fix": _bcs_no_aspect, "no 1.25 padding": _bcs_no_padding,
                   "shrinks the long side": _bcs_shrinks_long_side, "center at the corner": _bcs_corner,
                   "grows the shorter of w and h": _bcs_grows_shorter_side,
                   "scale in pixels": _bcs_pixels})
def check_box_to_center_scale(fn):
    # the 180 x 200 box is taller than wide, yet too wide for 192 x 256 (w / h = 0.9 > 0.75): its height grows
    cases = [([100.0, 50.0, 60.0, 200.0], 0.75), ([10.0, 20.0, 300.0, 100.0], 0.75), ([0.0, 0.0, 90.0, 90.0], 1.0),
             ([5.0, 7.0, 30.0, 40.0], 0.75), ([40.0, 30.0, 180.0, 200.0], 0.75)]
    for box, aspect in cases:
        what = f"box {box}, aspect_ratio {aspect}"
        out = fn(list(box), aspect)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailure(f"{what}: return a pair (center, scale), got {type(out).__name__}")
        center, scale = expect_shape(out[0], (2,), f"{what}: center"), expect_shape(out[1], (2,), f"{what}: scale")
        want_c, want_s = box_to_center_scale_solution(box, aspect)
        expect_close(center, want_c, f"{what}: center", atol=1e-6, hint="the center is the middle of the box")
        if np.allclose(scale, want_s * 200):
            raise CheckFailure(f"{what}: scale is in pixels; divide by pixel_std = 200")
        if np.allclose(scale * 1.25, want_s):
            raise CheckFailure(f"{what}: scale is 1.25x too small; pad the box by 1.25 so the limbs fit")
        ratio = scale[0] / scale[1]
        if abs(ratio - aspect) > 1e-6:
            raise CheckFailure(f"{what}: scale w/h is {ratio:.4f}, expected the input's aspect {aspect:.4f}: grow the "
                               "side that is too short for it, so the crop is not distorted")
        if np.allclose(scale, _bcs_grows_shorter_side(box, aspect)[1]) and not np.allclose(scale, want_s):
            raise CheckFailure(f"{what}: you grew the shorter of w and h; grow whichever side is too short for the "
                               f"aspect ratio: here w / h = {box[2] / box[3]:.2f} > {aspect:g}, so the box is too "
                               "wide for the crop and its height grows (the longer side)")
        expect_close(scale, want_s, f"{what}: scale", atol=1e-6,
                     hint="grow the side that is too short for the aspect ratio (never shrink the other), then "
                          "/ 200 and x 1.25")


# ---- encode_gaussian_target -----------------------------------------------------------------------------------


def encode_gaussian_target_solution(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    """HRNet's target for one joint: (heatmap (h, w), weight). Centre int(x / stride + 0.5); a (6 sigma + 1)
    square patch, peak 1; weight 0 if not visible or if the patch lies fully outside; drawn only if weight > 0.5."""
    return _encode(keypoint, visible, heatmap_size, stride, sigma, int)


def _encode(keypoint, visible, heatmap_size, stride, sigma, to_int):
    """The target with the centre ``to_int(x / stride + 0.5)`` (HRNet: ``int``, which truncates toward zero)."""
    h, w = heatmap_size
    mu_x, mu_y = to_int(keypoint[0] / stride + 0.5), to_int(keypoint[1] / stride + 0.5)
    radius = 3 * sigma
    ul = (int(mu_x - radius), int(mu_y - radius))
    br = (int(mu_x + radius + 1), int(mu_y + radius + 1))
    weight = 1.0 if visible else 0.0
    if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
        weight = 0.0
    heatmap = np.zeros((h, w))
    if weight > 0.5:
        xs, ys = np.arange(w)[None, :], np.arange(h)[:, None]
        patch = (xs >= ul[0]) & (xs < br[0]) & (ys >= ul[1]) & (ys < br[1])
        heatmap = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * sigma ** 2)) * patch
    return heatmap, weight


def _egt_floor(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    return encode_gaussian_target_solution(np.asarray(keypoint, float) - stride / 2, visible, heatmap_size, stride,
                                           sigma)


def _egt_floor_centre(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    """The centre by floor(x / stride + 0.5): equal to HRNet's int() except left of or above the map."""
    return _encode(keypoint, visible, heatmap_size, stride, sigma, lambda v: int(np.floor(v)))


def _egt_no_truncation(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    hm, weight = encode_gaussian_target_solution(keypoint, visible, heatmap_size, stride, sigma)
    if weight > 0:
        h, w = heatmap_size
        mu_x, mu_y = int(keypoint[0] / stride + 0.5), int(keypoint[1] / stride + 0.5)
        xs, ys = np.arange(w)[None, :], np.arange(h)[:, None]
        hm = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * sigma ** 2))
    return hm, weight


def _egt_ignores_visibility(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    return encode_gaussian_target_solution(keypoint, True, heatmap_size, stride, sigma)


def _egt_centre_must_be_inside(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    h, w = heatmap_size
    x, y = keypoint[0] / stride, keypoint[1] / stride
    if not (0 <= x < w and 0 <= y < h):
        return np.zeros((h, w)), 0.0
    return encode_gaussian_target_solution(keypoint, visible, heatmap_size, stride, sigma)


def _egt_no_stride(keypoint, visible, heatmap_size=(64, 48), stride=4, sigma=2):
    return encode_gaussian_target_solution(keypoint, visible, heatmap_size, 1, sigma)


@exercise("encode_gaussian_target", solution=encode_gaussian_target_solution, chapter=CHAPTER,
          mutants={"floor instead of round": _egt_floor, "no 3-sigma truncation": _egt_no_truncation,
                   "floor(x + 0.5) instead of int(x + 0.5)": _egt_floor_centre,
                   "visibility ignored": _egt_ignores_visibility, "zero weight once the centre leaves":
                   _egt_centre_must_be_inside, "no division by the stride": _egt_no_stride})
def check_encode_gaussian_target(fn):
    cases = [("a joint at (97.0, 130.5)", (97.0, 130.5), True), ("a joint at (41.9, 17.0)", (41.9, 17.0), True),
             ("an invisible joint", (60.0, 60.0), False),
             ("a joint 3 heatmap px left of the map", (-12.0, 100.0), True),
             ("a joint far below the map", (100.0, 400.0), True)]
    for what, kp, visible in cases:
        out = fn(np.array(kp), visible, (64, 48), 4, 2)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailure(f"{what}: return a pair (heatmap, weight), got {type(out).__name__}")
        heatmap = expect_shape(out[0], (64, 48), f"{what}: heatmap")
        weight = float(as_array(out[1], f"{what}: weight"))
        want_hm, want_w = encode_gaussian_target_solution(kp, visible, (64, 48), 4, 2)
        inside = 0 <= kp[0] / 4 < 48 and 0 <= kp[1] / 4 < 64
        if weight != want_w:
            why = ("an invisible joint has weight 0 and no Gaussian" if not visible else
                   f"it sits at heatmap ({kp[0] / 4:g}, {kp[1] / 4:g}), inside the map: divide by the stride"
                   if want_w and inside else
                   "the weight is 0 only when the whole 13 x 13 patch lies outside the map; a joint just off the "
                   "map still teaches the network through the part of its patch inside" if want_w else
                   "the patch is entirely outside the map, so the weight must be 0")
            raise CheckFailure(f"{what}: weight {weight:g}, expected {want_w:g}: {why}")
        if want_hm.max() > 0 and heatmap.max() > 0:
            got_peak = np.unravel_index(heatmap.argmax(), heatmap.shape)
            want_peak = np.unravel_index(want_hm.argmax(), want_hm.shape)
            if got_peak != want_peak:
                raise CheckFailure(f"{what}: peak at (row, col) {tuple(map(int, got_peak))}, expected "
                                   f"{tuple(map(int, want_peak))}: the centre is int(x / stride + 0.5)")
        if not inside and np.abs(heatmap - want_hm).max() > 1e-6 and np.allclose(
                heatmap, _egt_floor_centre(kp, visible)[0], atol=1e-6):
            raise CheckFailure(f"{what}: your centre is floor(x / stride + 0.5) = {np.floor(kp[0] / 4 + 0.5):g}; "
                               f"HRNet's is int(x / stride + 0.5) = {int(kp[0] / 4 + 0.5)}, and int() truncates "
                               "toward zero. Inside the map the two agree; for a joint left of or above it they "
                               "differ by one pixel, which moves the part of the patch that falls on the map")
        expect_close(heatmap, want_hm, f"{what}: heatmap", atol=1e-6,
                     hint="the Gaussian is cut to a (6 sigma + 1)-wide square around the centre int(x / stride "
                          "+ 0.5) (int truncates toward zero), peak 1")


# ---- decode_quarter_offset ------------------------------------------------------------------------------------


def decode_quarter_offset_solution(heatmap, stride=4):
    """One (h, w) heatmap -> (x, y) in input px: argmax, then 0.25 px toward the higher neighbour per axis
    (HRNet: only when 1 < px < w - 1 and 1 < py < h - 1), times the stride."""
    hm = np.asarray(heatmap, dtype=float)
    h, w = hm.shape
    py, px = np.unravel_index(hm.argmax(), hm.shape)
    x, y = float(px), float(py)
    if 1 < px < w - 1 and 1 < py < h - 1:
        x += 0.25 * np.sign(hm[py, px + 1] - hm[py, px - 1])
        y += 0.25 * np.sign(hm[py + 1, px] - hm[py - 1, px])
    return np.array([x, y]) * stride


def _dqo_no_offset(heatmap, stride=4):
    py, px = np.unravel_index(np.asarray(heatmap).argmax(), np.shape(heatmap))
    return np.array([px, py], dtype=float) * stride


def _dqo_xy_swapped(heatmap, stride=4):
    return decode_quarter_offset_solution(heatmap, stride)[::-1]


def _dqo_away(heatmap, stride=4):
    base = _dqo_no_offset(heatmap, stride)
    return base - (decode_quarter_offset_solution(heatmap, stride) - base)


def _dqo_half_pixel(heatmap, stride=4):
    return decode_quarter_offset_solution(heatmap, stride) + stride / 2


def _dqo_guard(heatmap, stride, low: int):
    """Quarter offset when ``low < p < size - 1`` on each axis (HRNet: low = 1), with numpy's wrap-around otherwise."""
    hm = np.asarray(heatmap, dtype=float)
    h, w = hm.shape
    py, px = np.unravel_index(hm.argmax(), hm.shape)
    x, y = float(px), float(py)
    if low < px < w - 1 and low < py < h - 1:
        x += 0.25 * np.sign(hm[py, px + 1] - hm[py, px - 1])
        y += 0.25 * np.sign(hm[py + 1, px] - hm[py - 1, px])
    return np.array([x, y]) * stride


def _dqo_zero_guard(heatmap, stride=4):
    return _dqo_guard(heatmap, stride, 0)


def _dqo_no_guard(heatmap, stride=4):
    hm = np.pad(np.asarray(heatmap, dtype=float), 1, mode="wrap")  # no border rule: neighbours wrap around
    py, px = np.unravel_index(np.asarray(heatmap).argmax(), np.shape(heatmap))
    x = px + 0.25 * np.sign(hm[py + 1, px + 2] - hm[py + 1, px])
    y = py + 0.25 * np.sign(hm[py + 2, px + 1] - hm[py, px + 1])
    return np.array([x, y]) * stride


@exercise("decode_quarter_offset", solution=decode_quarter_offset_solution, chapter=CHAPTER,
          mutants={"no quarter offset": _dqo_no_offset, "x and y swapped": _dqo_xy_swapped,
                   "offset away from the higher neighbour": _dqo_away, "+ stride / 2": _dqo_half_pixel,
                   "offset when 0 < p (column 1 included)": _dqo_zero_guard,
                   "no border rule": _dqo_no_guard})
def check_decode_quarter_offset(fn):
    ys, xs = np.mgrid[0:64, 0:48]
    # the last three peak in column 1, column 0 and the last row: HRNet offsets only when 1 < p < size - 1
    for mx, my in ((20.3, 10.8), (31.7, 40.2), (12.0, 50.45), (1.3, 30.2), (0.2, 20.7), (25.6, 63.0)):
        what = f"a Gaussian centred at heatmap (x, y) = ({mx}, {my})"
        heatmap = np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / 8.0)
        got = expect_shape(fn(heatmap.copy(), 4), (2,), f"{what}: (x, y)")
        want = decode_quarter_offset_solution(heatmap, 4)
        if np.allclose(got, want[::-1]):
            raise CheckFailure(f"{what}: you returned (y, x); argmax gives (row, column) = (y, x), return (x, y)")
        border = not np.allclose(want, _dqo_zero_guard(heatmap, 4)) or not (1 < round(mx) < 47 and 1 < round(my) < 63)
        if np.allclose(got, _dqo_no_offset(heatmap, 4)) and not border:
            raise CheckFailure(f"{what}: got the bare argmax {got.tolist()}; move 0.25 heatmap px toward the "
                               "higher neighbour on each axis before multiplying by the stride")
        if border and not np.allclose(got, want, atol=1e-6):
            raise CheckFailure(f"{what}: the peak is at the border ({round(mx)}, {round(my)}); HRNet moves it only "
                               "when 1 < px < w - 1 and 1 < py < h - 1 (strict: column and row 1 are left alone, "
                               f"a quirk of the official code), got {got.tolist()}, expected {want.tolist()}")
        expect_close(got, want, f"{what}: (x, y) in input px", atol=1e-6,
                     hint="x = (column + 0.25 sign(right - left)) * stride, no half-pixel shift, as HRNet")
