"""The synthetic people: deterministic, real COCO, labelled from what was drawn, anatomically limited, left != right."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from posebook.data.synthetic import (FACE_LABEL_MIN_NZ, OWN_PARTS, PART, PART_NAMES, SyntheticScenes, make_coco,
                                     occlusion_stats, render_scene, write_coco)
from posebook.data.synthetic_body import LIMITS, joint_flexion, pose_figure, sample_build, sample_pose
from posebook.keypoints import COCO

SIZE = (160, 160)


@pytest.fixture(scope="module")
def scenes():
    return [render_scene([11, i], (256, 256)) for i in range(50)]


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    write_coco(tmp_path / "a", 3, seed=5, image_size=SIZE)
    write_coco(tmp_path / "b", 3, seed=5, image_size=SIZE)
    write_coco(tmp_path / "c", 3, seed=6, image_size=SIZE)
    a, b, c = (_digests(tmp_path / n) for n in "abc")
    assert sorted(a) == ["annotations.json", "images/000000000001.jpg", "images/000000000002.jpg",
                         "images/000000000003.jpg"]
    assert a == b
    assert all(a[name] != c[name] for name in a)
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files were left behind"


def test_scene_i_of_a_stream_is_render_scene_of_seed_and_i():
    stream = SyntheticScenes(3, image_size=SIZE, length=4)
    assert np.array_equal(stream[2].image, render_scene([3, 2], SIZE).image)
    assert np.array_equal(stream[2].image, SyntheticScenes(3, image_size=SIZE)[2].image)
    assert not np.array_equal(stream[2].image, stream[1].image)
    assert [s.image.shape for s in stream] == [(160, 160, 3)] * 4
    with pytest.raises(IndexError):
        stream[4]


def test_dataloader_workers_share_out_the_stream_in_order():
    from torch.utils.data import DataLoader

    stream = SyntheticScenes(1, image_size=(64, 64), length=4)
    loaded = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert all(np.array_equal(got.image, stream[i].image) for i, got in enumerate(loaded)) and len(loaded) == 4


def test_annotations_load_in_pycocotools_and_ground_truth_as_detections_scores_ap_1(tmp_path):
    from pycocotools.coco import COCO as CocoApi
    from pycocotools.cocoeval import COCOeval

    coco, images = make_coco(8, seed=2, image_size=SIZE)
    assert len(images) == 8 and images[0].shape == (160, 160, 3) and images[0].dtype == np.uint8
    assert coco["categories"] == [COCO.coco_category()]
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = CocoApi(str(tmp_path / "gt.json"))
        assert len(gt.getAnnIds(imgIds=[1])) >= 1 and len(gt.getAnnIds()) == len(coco["annotations"])
        dets = gt.loadRes([dict(image_id=a["image_id"], category_id=1, keypoints=a["keypoints"], score=1.0)
                           for a in coco["annotations"]])
        ev = COCOeval(gt, dets, "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
    for ann in coco["annotations"]:
        assert ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3])
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1 and len(ann["keypoints"]) == 51


def test_labelled_keypoints_lie_in_the_image_and_unlabelled_ones_are_zero(scenes):
    for scene in scenes:
        h, w = scene.image.shape[:2]
        for person in scene.people:
            kp = person["keypoints"]
            on = kp[:, 2] > 0
            assert np.all((kp[on, 0] >= 0) & (kp[on, 0] <= w - 1) & (kp[on, 1] >= 0) & (kp[on, 1] <= h - 1))
            assert np.all(kp[~on, :2] == 0) and set(np.unique(kp[:, 2])) <= {0, 1, 2}


def test_between_10_and_40_percent_of_labelled_keypoints_are_occluded_at_defaults(scenes):
    share = occlusion_stats([{"keypoints": p["keypoints"].reshape(-1).tolist()}
                             for s in scenes for p in s.people])["occluded_share"]
    assert 0.10 <= share <= 0.40, f"occluded share {share:.2f}"


def test_an_occluded_keypoint_is_covered_by_something_drawn_after_its_own_limb(scenes):
    occluded = 0
    for scene in scenes:
        for index, person in enumerate(scene.people):
            own_ids = [i for i, (p, part) in enumerate(scene.owners) if p == index]
            for k, (x, y, v) in enumerate(person["keypoints"]):
                if v == 0:
                    continue
                drawn = scene.ids[int(round(y)), int(round(x))]
                who, part = scene.owner(x, y)
                own = [i for i in own_ids if scene.owners[i][1] in OWN_PARTS[k]]
                if v == 2:
                    assert who == index or drawn < min(own), f"visible {COCO.names[k]} lies under {part}"
                else:
                    occluded += 1
                    assert not (who == index and PART[part] in OWN_PARTS[k])
                    assert drawn > min(own), f"occluded {COCO.names[k]} is under {part}, drawn before its limb"
    assert occluded > 50


def test_far_side_face_points_are_unlabelled_as_an_annotator_would_leave_them():
    angles = {key: 0.0 for key in sample_pose(np.random.default_rng(0))}
    build = sample_build(np.random.default_rng(0))
    labelled = {yaw: pose_figure(angles, build, yaw).face_normals[:, 2] > FACE_LABEL_MIN_NZ for yaw in (0, 90, 180)}
    assert labelled[0].all()  # facing the camera: nose, both eyes, both ears
    assert labelled[90].tolist() == [True, False, True, False, True]  # facing image right: the left side is far
    assert labelled[180].tolist() == [False, False, False, True, True]  # seen from behind: only the ears


def test_elbows_and_knees_stay_within_limits_and_knees_fold_backward():
    rng = np.random.default_rng(0)
    for _ in range(300):
        angles = sample_pose(rng)
        for key, value in angles.items():
            joint = key.split("_", 1)[1] if key.split("_")[0] in ("left", "right") else key
            assert LIMITS[joint][0] <= value <= LIMITS[joint][1], key
        figure = pose_figure(angles, sample_build(rng), rng.uniform(-180, 180))
        flexion = joint_flexion(figure)
        for side in ("left", "right"):
            assert flexion[f"{side}_elbow"] <= 145 + 1e-6 and flexion[f"{side}_knee"] <= 150 + 1e-6
            kp = {n: figure.keypoints[COCO.index(f"{side}_{n}")] for n in ("hip", "knee", "ankle")}
            lateral = figure.keypoints[COCO.index("left_hip")] - figure.keypoints[COCO.index("right_hip")]
            fold = np.cross(kp["knee"] - kp["hip"], kp["ankle"] - kp["knee"]) @ lateral
            assert fold >= -1e-9, f"{side} knee bends forward"


def test_proportions_head_is_about_one_seventh_of_height():
    build = sample_build(np.random.default_rng(1))
    angles = {key: 0.0 for key in sample_pose(np.random.default_rng(0))}
    fig = pose_figure(angles, build, 0.0)
    head = 2 * fig.head_axes[1, 1]
    lowest = min(fig.keypoints[15, 1], fig.keypoints[16, 1]) - 0.039  # ankle height above the ground
    stature = fig.points["head_top"][1] - lowest
    assert 6.5 <= stature / head <= 8.2 and 0.93 <= stature <= 1.07


def side_pixels(scene) -> dict[str, np.ndarray]:
    """Luminance of every visible pixel of the figures' left limbs and of their right limbs."""
    part = scene.owners[scene.ids, 1]
    luminance = scene.image.astype(np.float64) @ [0.299, 0.587, 0.114]
    return {side: luminance[np.isin(part, [PART[n] for n in PART_NAMES if n.startswith(side + "_")])]
            for side in ("left", "right")}


def test_left_and_right_limbs_have_the_same_brightness_over_many_scenes():
    """No cue that a mirror inverts: flipped crops (labels swapped) must look like real ones. Measured on the old
    two-tone outfit: left-limb pixels were 1.05 standard deviations brighter than right-limb pixels."""
    pixels = {"left": [], "right": []}
    for i in range(300):
        for side, values in side_pixels(render_scene([23, i], (128, 128), max_people=2)).items():
            pixels[side].append(values)
    left, right = (np.concatenate(pixels[side]) for side in ("left", "right"))
    assert len(left) > 50_000 and len(right) > 50_000
    pooled = np.sqrt((left.var() + right.var()) / 2)
    assert abs(left.mean() - right.mean()) / pooled < 0.05, (left.mean(), right.mean(), pooled)
    deciles = np.linspace(0.1, 0.9, 9)
    assert np.abs(np.quantile(left, deciles) - np.quantile(right, deciles)).max() < 0.1 * pooled


def mirrored_pose(angles: dict) -> dict:
    """The pose seen in a mirror: left and right limb angles exchanged, sideways body angles negated."""
    out = {}
    for key, value in angles.items():
        side, _, joint = key.partition("_")
        if side in ("left", "right"):
            out[f"{'right' if side == 'left' else 'left'}_{joint}"] = value
        else:
            out[key] = -value if key in ("spine_bend", "spine_twist", "head_yaw", "head_roll") else value
    return out


def test_the_mirrored_pose_is_the_mirror_image_of_the_figure():
    flip = COCO.flip_index()
    for i in range(20):
        rng = np.random.default_rng([31, i])
        angles, build, yaw = sample_pose(rng), sample_build(rng), float(rng.uniform(-180, 180))
        figure, mirror = pose_figure(angles, build, yaw), pose_figure(mirrored_pose(angles), build, -yaw)
        expected = figure.keypoints[flip] * [-1, 1, 1]
        np.testing.assert_allclose(mirror.keypoints, expected, atol=1e-9)
        np.testing.assert_allclose(mirror.face_normals[[0, 2, 1, 4, 3]], figure.face_normals * [-1, 1, 1],
                                   atol=1e-9)


def draw_alone(angles, build, yaw, colors, size=160) -> np.ndarray:
    """One figure drawn by the renderer on a flat grey background, untextured (stripes have their own angle)."""
    import posebook.data.synthetic as synthetic

    canvas = synthetic._Canvas(np.full((size, size, 3), 128, np.uint8))
    height = 0.8 * size
    person = synthetic._Person(figure=pose_figure(angles, build, yaw), yaw=yaw, height=height,
                               center=np.array([(size - 1) / 2, 0.55 * size]),
                               linear=height * np.diag([1.0, -1.0]), colors=colors, textures=(0, 0),
                               long_sleeves=True, long_trousers=True)
    synthetic._draw_person(np.random.default_rng(0), canvas, person, 0, synthetic.SceneOptions(textures=False))
    return canvas.image


def test_the_mirrored_pose_renders_as_the_mirrored_image():
    import posebook.data.synthetic as synthetic

    for i in range(6):
        rng = np.random.default_rng([37, i])
        angles, build, yaw = sample_pose(rng), sample_build(rng), float(rng.uniform(-180, 180))
        colors = synthetic._sample_colors(rng)
        image = draw_alone(angles, build, yaw, colors).astype(int)
        mirror = draw_alone(mirrored_pose(angles), build, -yaw, colors).astype(int)
        differ = np.abs(mirror - image[:, ::-1]).max(axis=2) > 40
        drawn = (np.abs(image - 128).max(axis=2) > 0).sum()
        # rasterising is not exactly symmetric: only edge pixels may differ
        assert differ.sum() < 0.03 * drawn, f"pose {i}: {differ.sum()} of {drawn} figure pixels differ"


def test_bbox_contains_the_labelled_keypoints_and_area_counts_the_figure_pixels(scenes):
    for scene in scenes:
        h, w = scene.image.shape[:2]
        for index, person in enumerate(scene.people):
            x, y, bw, bh = person["bbox"]
            kp = person["keypoints"][person["keypoints"][:, 2] > 0]
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
            assert np.all((kp[:, 0] >= x) & (kp[:, 0] <= x + bw) & (kp[:, 1] >= y) & (kp[:, 1] <= y + bh))
            assert scene.mask(index).sum() <= person["area"] <= bw * bh


def test_every_part_name_is_known_and_scenes_hold_1_to_max_people(scenes):
    assert all(0 <= part < len(PART_NAMES) for _, part in scenes[0].owners)
    assert {len(s.people) for s in scenes} <= {1, 2, 3, 4} and len({len(s.people) for s in scenes}) >= 3
    heights = [p["height"] / 256 for s in scenes for p in s.people]
    assert min(heights) < 0.35 and max(heights) > 0.8, "people should range from small to large"


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(TypeError, match="valid options"):
        render_scene(0, SIZE, colour="red")
    with pytest.raises(ValueError, match=r"image_size must be \(H, W\)"):
        render_scene(0, 160)
    with pytest.raises(ValueError, match="max_people"):
        render_scene(0, SIZE, max_people=0)
    with pytest.raises(ValueError, match=r"facing=\(1, 1, 0\) must be 3 chances"):
        render_scene(0, SIZE, facing=(1, 1, 0))


def test_facing_sets_the_share_of_front_side_and_back_views():
    yaws = {name: np.array([p["yaw"] for i in range(60) for p in render_scene([5, i], SIZE, **options).people])
            for name, options in {"default": {}, "front": dict(facing=(1.0, 0.0, 0.0)),
                                  "back": dict(facing=(0.0, 0.0, 1.0))}.items()}
    assert (np.abs(yaws["front"]) <= 50).all() and (np.abs(yaws["back"]) >= 130).all()
    default = yaws["default"]
    front, back = np.mean(np.abs(default) <= 50), np.mean(np.abs(default) >= 130)
    assert 0.4 < front < 0.7 and 0.05 < back < 0.3, (front, back)  # chances 0.55 and 0.15


@pytest.mark.slow  # a subprocess that imports torch: seconds on a busy machine
def test_make_synthetic_script_writes_a_dataset_and_prints_a_summary(tmp_path, root):
    out = subprocess.run([sys.executable, str(root / "data_scripts" / "make_synthetic.py"), "--out",
                          str(tmp_path / "ds"), "--num", "3", "--seed", "1", "--size", "96x128",
                          "--max-people", "2"], capture_output=True, text=True, check=True).stdout
    coco = json.loads((tmp_path / "ds" / "annotations.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == [f"{i:012d}.jpg" for i in (1, 2, 3)]
    assert coco["images"][0]["height"] == 96 and coco["images"][0]["width"] == 128
    assert "images 3" in out and "occluded" in out and "seconds" in out
    assert f"people {len(coco['annotations'])}" in out
