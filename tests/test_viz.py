"""viz: skeletons with left limbs one colour and right limbs another; heatmap overlays and grids."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from posebook.keypoints import COCO, MPII  # noqa: E402
from posebook.viz import LEFT, RIGHT, draw_skeleton, limb_colors, overlay_heatmap, show_heatmaps, side  # noqa: E402


def test_sides_come_from_coco_and_mpii_names():
    assert [side(n) for n in ("left_wrist", "r_knee", "l_hip", "nose", "thorax")] == \
        ["left", "right", "left", "center", "center"]


def test_left_limbs_and_right_limbs_get_their_own_colours():
    colors = limb_colors(COCO)
    for (a, b), color in zip(COCO.limbs, colors):
        if COCO.names[a].startswith("left") and COCO.names[b].startswith("left"):
            assert color == LEFT
        if COCO.names[a].startswith("right") and COCO.names[b].startswith("right"):
            assert color == RIGHT
    assert LEFT in limb_colors(MPII) and RIGHT in limb_colors(MPII)


def test_draw_skeleton_on_an_image_colours_the_left_forearm_with_the_left_colour():
    kp = np.zeros((17, 3))
    kp[COCO.index("left_elbow")] = [20, 20, 2]
    kp[COCO.index("left_wrist")] = [60, 20, 2]
    image = np.zeros((40, 80, 3), np.uint8)
    out = draw_skeleton(image, kp, COCO, markersize=2)
    assert image.max() == 0  # drawn on a copy
    np.testing.assert_allclose(out[20, 40], np.array(LEFT) * 255, atol=2)
    assert out[5:15].max() == 0 and out[25:].max() == 0  # unlabelled keypoints draw nothing


def test_draw_skeleton_on_axes_draws_one_line_per_visible_limb():
    kp = np.zeros((17, 3))
    kp[[5, 7, 9], :] = [[10, 10, 2], [20, 20, 1], [30, 30, 2]]  # left shoulder, elbow, wrist
    fig, ax = plt.subplots()
    draw_skeleton(ax, kp, COCO)
    lines = [l for l in ax.lines if len(l.get_xdata()) == 2]
    assert len(lines) == 2 and len(ax.lines) == 2 + 3
    plt.close(fig)


def test_draw_skeleton_rejects_the_wrong_keypoint_count():
    with pytest.raises(ValueError, match=r"\(17, 3\) keypoints for COCO-17"):
        draw_skeleton(np.zeros((4, 4, 3), np.uint8), np.zeros((16, 3)), COCO)


def test_overlay_heatmap_colours_only_where_the_heatmap_is_hot():
    image = np.full((64, 48, 3), 100, np.uint8)
    hm = np.zeros((16, 12), np.float32)
    hm[8, 6] = 1.0
    out = overlay_heatmap(image, hm)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.all(out[0, 0] == 100) and np.any(out[32, 24] != 100)


def test_show_heatmaps_makes_one_titled_panel_per_keypoint():
    fig = show_heatmaps(np.random.default_rng(0).random((17, 16, 12)), names=COCO.names)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 17 and titled[9].get_title() == "left_wrist"
    plt.close(fig)
