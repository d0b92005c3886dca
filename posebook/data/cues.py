"""The front/back cues of the synthetic people, measured where a network reads them: in 96x64 crops (the cpu
profile's input size) of a person about 120 px tall in a 256x256 scene, the scenes' median. Chapter 01 shows the
crops and quotes the numbers; tests/test_synthetic_cues.py holds the renderer to them.

:func:`front_back_contrast` draws the same posed figure facing the camera (yaw 0) and turned away (yaw 180) and
compares the crops pixel by pixel over one region per cue: the head (a face versus the hair on the back of the head),
the chest, the upper half of the torso (the shirt front versus its plain back) and the feet (toes pointing at the
camera versus heels). The pose is left-right symmetric, so both views have the same silhouette and every difference
is a cue, not a shape.

:func:`side_contrast` measures the facing side: in a profile, the face lies ahead of the head's centre and the hair
behind it, and each shoe's toe ahead of its ankle and the heel behind.

Thresholds. A pixel counts as differing where the mean over R, G and B of ``|front - back|`` is at least :data:`STEP`
= 20 of 255 levels (8% of the range): far above the 1-2 levels of anti-aliasing, and still 12 levels after the
training colour jitter's strongest darkening (x0.6). A cue must cover at least 2 such pixels, the smallest step a
3x3 first-layer filter resolves; larger regions are held to more. The measurements are per person, over
:data:`PEOPLE` colour samples (skin, hair, shirt, shoes, build), because a cue must hold in the worst case, not on
average: read the minimum, not the mean.

Everything is deterministic (person ``i`` is drawn from the seed ``[41, i]``) and nothing here prints.
"""
from __future__ import annotations

import cv2
import numpy as np

from posebook.data import synthetic
from posebook.data.synthetic_body import pose_figure, sample_build, sample_pose
from posebook.data.transforms import box_to_center_scale, get_affine_transform, warp
from posebook.keypoints import COCO

INPUT = (96, 64)        # the cpu profile's crop, H x W
SCENE = 256             # the square scene the crop is cut from, pixels
HEIGHT = 120.0          # the person's standing height in the scene, pixels: the median of the default scenes
PEOPLE = 12             # colour samples measured by default
STEP = 20.0             # levels (0-255, mean over RGB) that count a pixel as differing
GREY = 128              # the plain background, so that only the figure differs between views

# The regions compared front against back, as part names of ``synthetic.PART``. The chest is the torso's upper half
# (its rows above the middle), where the shirt front's print, the open jacket's inner shirt and the neckline are.
HEAD = ("head",)
CHEST = ("torso",)
FEET = ("left_foot", "right_foot")
CUES = {"head": HEAD, "chest": CHEST, "feet": FEET}


def neutral_pose() -> dict[str, float]:
    """A left-right symmetric stance (the joint angles of ``sample_pose``), arms a little away from the body so that
    they do not cover the chest: a front and a back view of it have the same silhouette."""
    angles = {key: 0.0 for key in sample_pose(np.random.default_rng(0))}
    for side in ("left", "right"):
        angles[f"{side}_shoulder_abduction"] = 25.0
        angles[f"{side}_hip_abduction"] = 6.0
    return angles


def render_view(angles: dict, build, yaw: float, colors: dict, long_sleeves: bool,
                input_size: tuple[int, int] = INPUT) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """One figure alone on grey, untextured, cropped like a training item (``SyntheticTopDown.record``'s box, no
    augmentation) to ``input_size`` (H, W).

    Returns the (H, W, 3) uint8 crop, the (H, W) part index (``synthetic.PART``) each crop pixel shows, and the crop x
    of the head's centre and of the ankles (``"head"``, ``"left_ankle"``, ``"right_ankle"``), where a side view splits
    ahead from behind. Long sleeves make a jacket open down the front, short ones a T-shirt with a print."""
    height, width = input_size
    canvas = synthetic._Canvas(np.full((SCENE, SCENE, 3), GREY, np.uint8))
    figure = pose_figure(angles, build, yaw)
    person = synthetic._Person(figure=figure, yaw=yaw, height=HEIGHT, center=np.array([(SCENE - 1) / 2, 0.55 * SCENE]),
                               linear=HEIGHT * np.diag([1.0, -1.0]), colors=colors, textures=(0, 0),
                               long_sleeves=long_sleeves, long_trousers=True)
    record = synthetic._draw_person(np.random.default_rng(0), canvas, person, 0,
                                    synthetic.SceneOptions(textures=False))
    center, scale = box_to_center_scale(record["bbox"], width / height)
    matrix = get_affine_transform(center, scale, 0.0, input_size)
    parts = np.asarray(canvas.owners)[canvas.ids, 1].astype(np.uint8)  # what each scene pixel shows
    crop_parts = cv2.warpAffine(parts, matrix, (width, height), flags=cv2.INTER_NEAREST)
    points = {"head": figure.points["head"], "left_ankle": figure.keypoints[COCO.index("left_ankle")],
              "right_ankle": figure.keypoints[COCO.index("right_ankle")]}
    xs = {name: float(matrix @ [*person.project(p), 1.0] @ [1.0, 0.0]) for name, p in points.items()}
    return warp(canvas.image, matrix, input_size), crop_parts, xs


def person_views(i: int, yaws=(0.0, 180.0), input_size: tuple[int, int] = INPUT) -> list:
    """Person ``i`` (its build and colours, drawn from the seed ``[41, i]``; a jacket for even ``i``, a T-shirt for
    odd) in :func:`neutral_pose`, seen at each of ``yaws``: a list of :func:`render_view` results."""
    rng = np.random.default_rng([41, i])
    build, colors = sample_build(rng), synthetic._sample_colors(rng)
    return [render_view(neutral_pose(), build, yaw, colors, long_sleeves=i % 2 == 0, input_size=input_size)
            for yaw in yaws]


def region(parts: np.ndarray, names) -> np.ndarray:
    """The crop pixels that show one of the named parts, from a part-index crop."""
    return np.isin(parts, [synthetic.PART[n] for n in names])


def upper_half(mask: np.ndarray) -> np.ndarray:
    """``mask`` cut to its upper half of rows (the rows above the middle of its first and last): the chest."""
    mask = mask.copy()
    rows = np.flatnonzero(mask.any(1))
    if rows.size:
        mask[(rows[0] + rows[-1]) // 2 + 1:] = False
    return mask


def contrast(front: np.ndarray, back: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """(mean ``|front - back|`` over the region, pixels of the region differing by at least :data:`STEP`), in 0-255
    levels averaged over R, G and B; (0.0, 0) for an empty region."""
    diff = np.abs(front.astype(float) - back.astype(float)).mean(axis=2)[mask]
    return float(diff.mean()) if diff.size else 0.0, int((diff >= STEP).sum())


def view_contrast(front_view, back_view) -> dict[str, tuple[float, int]]:
    """Per cue of :data:`CUES`, the :func:`contrast` of two :func:`render_view` results over the pixels both show as
    the cue's parts (the chest: the upper half of those)."""
    (front, front_parts, _), (back, back_parts, _) = front_view, back_view
    out = {}
    for cue, names in CUES.items():
        mask = region(front_parts, names) & region(back_parts, names)
        out[cue] = contrast(front, back, upper_half(mask) if cue == "chest" else mask)
    return out


def _columns(rows: list[dict[str, tuple[float, int]]], names) -> dict[str, dict[str, np.ndarray]]:
    """Per-view ``{name: (mean, pixels)}`` rows as per-name ``{"mean": array, "pixels": array}`` columns."""
    return {name: {"mean": np.array([r[name][0] for r in rows], float),
                   "pixels": np.array([r[name][1] for r in rows], int)} for name in names}


def front_back_contrast(people: int = PEOPLE,
                        input_size: tuple[int, int] = INPUT) -> dict[str, dict[str, np.ndarray]]:
    """How much each cue tells a front view (yaw 0) from a back view (yaw 180), for persons 0 .. ``people`` - 1.

    Returns, per cue (``"head"``, ``"chest"``, ``"feet"``), ``{"mean": (people,) float array, "pixels": (people,) int
    array}``: the mean level difference over the region and the count of its pixels differing by at least
    :data:`STEP`, person by person (take ``.min()`` for the worst case the tests bound, ``np.median`` for the
    typical one)."""
    rows = [view_contrast(*person_views(i, (0.0, 180.0), input_size)) for i in range(people)]
    return _columns(rows, CUES)


def facing_contrast(image: np.ndarray, parts: np.ndarray, xs: dict[str, float],
                    yaw: float) -> dict[str, tuple[float, int]]:
    """In a side view (one :func:`render_view` result at ``yaw``), per region: (mean ``|colour ahead - colour behind|``
    of the region's pixels ahead of and behind its centre, in the direction the figure faces, fewest pixels of the
    two halves); (0.0, 0) where a half is empty. Head: split at the head's centre (face ahead, hair behind); feet:
    each foot split at its ankle (toes ahead, heel behind)."""
    ahead_sign = np.sign(np.sin(np.radians(yaw)))  # yaw 90 faces image right (+x)
    columns = np.arange(image.shape[1])[None, :].repeat(image.shape[0], 0)
    out = {}
    for name, regions in (("head", [("head", "head")]),
                          ("feet", [("left_foot", "left_ankle"), ("right_foot", "right_ankle")])):
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


def side_contrast(people: int = PEOPLE, input_size: tuple[int, int] = INPUT) -> dict[str, dict[str, np.ndarray]]:
    """How much a profile shows which way the figure faces, for persons 0 .. ``people`` - 1, each at yaw 90 and -90.

    Returns, per region (``"head"``, ``"feet"``), ``{"mean": (2 * people,) float array, "pixels": (2 * people,) int
    array}`` in the order person 0 at 90, person 0 at -90, person 1 at 90, ...: :func:`facing_contrast`'s mean colour
    difference ahead versus behind, and the pixel count of the smaller half."""
    yaws = (90.0, -90.0)
    rows = [facing_contrast(*view, yaw) for i in range(people)
            for yaw, view in zip(yaws, person_views(i, yaws, input_size))]
    return _columns(rows, ("head", "feet"))
