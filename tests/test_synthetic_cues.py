"""The synthetic people's front/back cues, measured where a network reads them: in 96x64 crops (the cpu profile's
input size) of a person about 120 px tall in a 256x256 scene, the scenes' median.

Each test draws the same posed figure facing the camera (yaw 0) and turned away (yaw 180) and compares the crops
pixel by pixel over one region: the head (a face versus the hair on the back of the head), the upper torso (the
shirt front versus its plain back) and the feet (toes pointing at the camera versus heels). The pose is left-right
symmetric, so both views have the same silhouette and every difference is a cue, not a shape.

A side-view test checks the facing side: in a profile, the face lies ahead of the head's centre and the hair
behind it, and each shoe's toe ahead of its ankle and the heel behind.

Thresholds. A pixel counts as differing where the mean over R, G and B of |front - back| is at least 20 of 255
levels (8% of the range): far above the 1-2 levels of anti-aliasing, and still 12 levels after the training colour
jitter's strongest darkening (x0.6). A cue must cover at least 2 such pixels, the smallest step a 3x3 first-layer
filter resolves; the counts below ask for more where the region is larger. Every bound must hold for each of the
``PEOPLE`` colour samples (skin, hair, shirt, shoes, build): the worst case, not the average. They were set under
the worst of 200 samples when written (head 18 px and a mean of 13 levels, chest 55 px / 31, feet 14 px / 74;
side views: head 17 levels, feet 60 levels and 2 px) and above the renderer before these cues (head 8 px / 10 for
brown hair on dark skin, chest 0.7 levels, feet 0.9, side-view head 7): each test fails on that renderer.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import posebook.data.synthetic as synthetic
from posebook.data.synthetic_body import pose_figure, sample_build, sample_pose
from posebook.data.transforms import box_to_center_scale, get_affine_transform, warp
from posebook.keypoints import COCO

INPUT = (96, 64)        # the cpu profile's crop, H x W
SCENE = 256             # the scene the crop is cut from
HEIGHT = 120.0          # the person's standing height in the scene, pixels: the median of the default scenes
PEOPLE = 12             # colour samples per test
STEP = 20.0             # levels (0-255, mean over RGB) that count a pixel as differing
GREY = 128


def neutral_pose() -> dict[str, float]:
    """A left-right symmetric stance, arms a little away from the body so that they do not cover the chest."""
    angles = {key: 0.0 for key in sample_pose(np.random.default_rng(0))}
    for side in ("left", "right"):
        angles[f"{side}_shoulder_abduction"] = 25.0
        angles[f"{side}_hip_abduction"] = 6.0
    return angles


def render(angles, build, yaw: float, colors: dict, long_sleeves: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """The figure alone on grey, untextured, cropped like a training item (``SyntheticTopDown.record``'s box, no
    augmentation): the (96, 64, 3) crop, the (96, 64) part index each crop pixel shows, and the crop x of the head's
    centre and of the ankles. Long sleeves make a jacket open down the front, short ones a T-shirt with a print."""
    canvas = synthetic._Canvas(np.full((SCENE, SCENE, 3), GREY, np.uint8))
    figure = pose_figure(angles, build, yaw)
    person = synthetic._Person(figure=figure, yaw=yaw, height=HEIGHT, center=np.array([(SCENE - 1) / 2, 0.55 * SCENE]),
                               linear=HEIGHT * np.diag([1.0, -1.0]), colors=colors, textures=(0, 0),
                               long_sleeves=long_sleeves, long_trousers=True)
    record = synthetic._draw_person(np.random.default_rng(0), canvas, person, 0,
                                    synthetic.SceneOptions(textures=False))
    center, scale = box_to_center_scale(record["bbox"], INPUT[1] / INPUT[0])
    matrix = get_affine_transform(center, scale, 0.0, INPUT)
    parts = np.asarray(canvas.owners)[canvas.ids, 1].astype(np.uint8)  # what each scene pixel shows
    crop_parts = cv2.warpAffine(parts, matrix, (INPUT[1], INPUT[0]), flags=cv2.INTER_NEAREST)
    points = {"head": figure.points["head"], "left_ankle": figure.keypoints[COCO.index("left_ankle")],
              "right_ankle": figure.keypoints[COCO.index("right_ankle")]}
    xs = {name: float(matrix @ [*person.project(p), 1.0] @ [1.0, 0.0]) for name, p in points.items()}
    return warp(canvas.image, matrix, INPUT), crop_parts, xs


def region(parts: np.ndarray, names) -> np.ndarray:
    """Crop pixels that show one of the named parts."""
    return np.isin(parts, [synthetic.PART[n] for n in names])


def contrast(front: np.ndarray, back: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """(mean |front - back| over the region, pixels of the region differing by at least ``STEP``), 0-255 levels."""
    diff = np.abs(front.astype(float) - back.astype(float)).mean(axis=2)[mask]
    return float(diff.mean()) if diff.size else 0.0, int((diff >= STEP).sum())


def views(i: int, yaws=(0.0, 180.0)):
    """Person ``i`` (its build and colours; a jacket for even ``i``, a T-shirt for odd) in the neutral pose, seen at
    each of ``yaws``."""
    rng = np.random.default_rng([41, i])
    build, colors = sample_build(rng), synthetic._sample_colors(rng)
    return [render(neutral_pose(), build, yaw, colors, long_sleeves=i % 2 == 0) for yaw in yaws]


@pytest.fixture(scope="module")
def front_back():
    return [views(i) for i in range(PEOPLE)]


def measure(front_back, names, upper_only=False):
    out = []
    for (front, front_parts, _), (back, back_parts, _) in front_back:
        mask = region(front_parts, names) & region(back_parts, names)
        if upper_only:  # the chest: the upper half of the torso's rows
            rows = np.flatnonzero(mask.any(1))
            mask[(rows[0] + rows[-1]) // 2 + 1:] = False
        out.append(contrast(front, back, mask))
    return np.array(out)


def test_the_head_shows_a_face_from_the_front_and_hair_from_behind(front_back):
    mean, count = measure(front_back, ["head"]).T
    assert mean.min() >= 12 and count.min() >= 16, (mean.round(1), count)


def test_the_shirt_front_differs_from_its_back(front_back):
    mean, count = measure(front_back, ["torso"], upper_only=True).T
    assert mean.min() >= 25 and count.min() >= 40, (mean.round(1), count)


def test_the_feet_show_toes_from_the_front_and_heels_from_behind(front_back):
    mean, count = measure(front_back, ["left_foot", "right_foot"]).T
    assert mean.min() >= 40 and count.min() >= 8, (mean.round(1), count)


def facing_contrast(image, parts, xs, yaw: float) -> dict[str, tuple[float, int]]:
    """In a side view, per region: (mean |colour ahead - colour behind| of the region's pixels ahead of and behind
    its centre, in the direction the figure faces, fewest pixels of the two halves). Head: split at the head's
    centre (face ahead, hair behind); feet: each foot split at its ankle (toes ahead, heel behind)."""
    ahead_sign = np.sign(np.sin(np.radians(yaw)))  # yaw 90 faces image right (+x)
    columns = np.arange(INPUT[1])[None, :].repeat(INPUT[0], 0)
    out = {}
    for name, regions in (("head", [("head", "head")]), ("feet", [("left_foot", "left_ankle"),
                                                                 ("right_foot", "right_ankle")])):
        ahead, behind = [], []
        for part, centre in regions:
            mask = region(parts, [part])
            offset = (columns - xs[centre]) * ahead_sign
            ahead.append(image[mask & (offset > 0.5)])
            behind.append(image[mask & (offset < -0.5)])
        ahead, behind = np.concatenate(ahead).astype(float), np.concatenate(behind).astype(float)
        if not len(ahead) or not len(behind):
            out[name] = (0.0, 0)
            continue
        out[name] = (float(np.abs(ahead.mean(0) - behind.mean(0)).mean()), min(len(ahead), len(behind)))
    return out


def test_hair_keeps_its_contrast_with_every_skin_tone():
    """Brown hair on dark skin would make the back of a head look like a face: such hair is darkened."""
    for skin in synthetic._SKIN.astype(float):
        for hair in synthetic._HAIR.astype(float):
            hair = synthetic._contrasting_hair(hair, skin)
            assert abs((hair - skin) @ synthetic._LUMA) >= synthetic.HAIR_SKIN_CONTRAST - 1e-9, (skin, hair)


def test_side_views_show_the_face_and_the_toes_on_the_side_the_figure_faces():
    measured = {"head": [], "feet": []}
    for i in range(PEOPLE):
        for yaw, (image, parts, xs) in zip((90.0, -90.0), views(i, (90.0, -90.0))):
            for name, value in facing_contrast(image, parts, xs, yaw).items():
                measured[name].append(value)
    head, feet = np.array(measured["head"]), np.array(measured["feet"])
    assert head[:, 0].min() >= 12 and head[:, 1].min() >= 10, head.round(1)
    assert feet[:, 0].min() >= 30 and feet[:, 1].min() >= 2, feet.round(1)
