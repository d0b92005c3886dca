"""viz: skeletons with left limbs one colour and right limbs another; heatmap overlays and grids; training curves."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from posebook.keypoints import COCO, MPII  # noqa: E402
from posebook.viz import (LEFT, RIGHT, LivePlot, draw_skeleton, in_notebook, limb_colors, overlay_heatmap,  # noqa: E402
                          plot_history, show_heatmaps, side)


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


HISTORY = [{"step": 2, "loss": 1.0, "lr": 1e-3, "samples_per_s": 9.0}, {"step": 3, "AP": 0.1, "PCK@0.2": 0.3},
           {"step": 4, "loss": 0.5, "lr": 1e-3, "samples_per_s": 9.0, "AP": 0.2, "PCK@0.2": 0.4}]


def test_plot_history_draws_the_loss_and_every_validation_metric_on_a_second_axis():
    fig = plot_history(HISTORY)
    loss_ax, metric_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and list(loss_ax.lines[0].get_xdata()) == [2, 4]
    assert sorted(line.get_label() for line in metric_ax.lines) == ["AP", "PCK@0.2"]
    plt.close(fig)
    fig = plot_history(HISTORY, metrics=["AP"])
    assert [line.get_label() for line in fig.axes[1].lines] == ["AP"]
    plt.close(fig)
    fig = plot_history([h for h in HISTORY if "loss" in h], metrics=[])
    assert len(fig.axes) == 1, "no metric, no second axis"
    plt.close(fig)


def test_plot_history_names_a_metric_no_record_holds():
    with pytest.raises(ValueError, match=r"'PCK@0\.5'.*recorded: \['AP', 'PCK@0\.2'\]"):
        plot_history(HISTORY, metrics=["PCK@0.5"])
    plt.close("all")


def test_live_plot_redraws_one_figure_in_place_and_prints_nothing_outside_a_notebook(capsys):
    assert not in_notebook()  # pytest is no IPython kernel
    live = LivePlot()
    live.update(HISTORY[:1])
    live.update(HISTORY)
    assert len(live.fig.axes) == 2 and len(live.ax.lines) == 1, "old curves and axes are cleared, not stacked"
    live.close()
    assert not plt.fignum_exists(live.fig.number)
    assert capsys.readouterr().out == "" and live.handle is None


def test_viz_and_checkpoints_do_not_import_the_trainer(root):
    """One-way: train imports checkpoints and viz; neither imports train (at module level or in a function)."""
    import ast

    for name in ("viz", "checkpoints"):
        tree = ast.parse((root / "posebook" / f"{name}.py").read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {f"{node.module}.{alias.name}" if node.module == "posebook" else node.module
                     for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert not {m for m in imported if m and m.startswith(("posebook.train", "posebook.bench"))}, name
