"""Synthetic people: seeded, procedural scenes of articulated figures with COCO-17 keypoints, in COCO format.

A scene is a cluttered background, 1..N figures (:mod:`posebook.data.synthetic_body`) projected with a yaw, an
in-plane tilt and a scale, and occluding objects. Everything is drawn back to front (painter's order: people by
depth, and within a figure its parts by depth, so a far arm passes behind the torso) into the image and, alongside,
into an id buffer holding for every pixel the draw id of the last primitive drawn there.

Labels, as a photo annotator would give them:

- v=1 where the pixel at the keypoint was drawn over after the keypoint's own limb, by something other than that
  limb: another person, an occluder, the figure's own torso or other limbs (the torso does not hide a shoulder or
  hip on its near side). v=2 otherwise. v=0, with x=y=0, outside the image.
- A face point (nose, eyes, ears) on the far side of the head (its surface normal faces away from the camera: the
  far eye and ear of a profile, the face of a back view) cannot be seen or placed: it is left unlabelled, v=0.
- bbox is the whole figure's extent (seen and covered parts, clipped to the image); area counts the figure's pixels
  as drawn, before anything in front covers them (an amodal mask area).

Left and right are told apart from the pixels only by evidence that a mirror image keeps consistent, as in photos,
drawn large enough to read in a 96x64 crop (:mod:`posebook.data.cues` measures them there): the face (a skin cap
with dark eyes, brows, nose and mouth on the front of the head; hair, kept in contrast with the skin, over its back
and top), the shirt front (a print or an open jacket's inner shirt in a contrasting colour, and a neckline; the back
is plain), shoes with a white toe cap that shows where the toes point (under the ankles from the front, ahead of
them from the side, hidden from behind), and which limb passes in front of the body (parts are drawn by depth).
Each cue is placed from the figure's 3D surface and normals. Nothing marks a side by itself: both sleeves and both
trouser legs have the same colour, so the mirror image of a figure is the figure of the mirrored pose, and a flipped
training crop with its labels swapped is as true as the original. (An earlier version shaded the left side lighter;
flip augmentation then taught "lighter is left" in half the crops and "lighter is right" in the other half.)
Explained in chapter 01 (Data).
"""
from __future__ import annotations

import colorsys
import json
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import torch.utils.data

from posebook.keypoints import COCO
from posebook._io import atomic_write

from .synthetic_body import FACE_NORMALS, FACE_POINTS, SIDES, Figure, pose_figure, sample_build, sample_pose

PART_NAMES = ("background", "occluder", "torso", "neck", "head") + tuple(
    f"{side}_{part}" for side in SIDES for part in ("upper_arm", "forearm", "hand", "thigh", "shank", "foot"))
PART = {name: i for i, name in enumerate(PART_NAMES)}
_LIMBS_OF_JOINT = {"shoulder": ("upper_arm",), "elbow": ("upper_arm", "forearm"), "wrist": ("forearm", "hand"),
                   "hip": ("thigh",), "knee": ("thigh", "shank"), "ankle": ("shank", "foot")}


def _own_parts(keypoint: str) -> frozenset:
    """The parts a keypoint lies on: its limb segments, or the head for the nose, eyes and ears."""
    side, _, joint = keypoint.partition("_")
    if joint not in _LIMBS_OF_JOINT:
        return frozenset({PART["head"]})
    return frozenset(PART[f"{side}_{limb}"] for limb in _LIMBS_OF_JOINT[joint])


OWN_PARTS = tuple(_own_parts(name) for name in COCO.names)
_OWN_MATRIX = np.array([[part in own for part in range(len(PART_NAMES))] for own in OWN_PARTS])  # (17, parts)
_TORSO_JOINTS = (5, 6, 11, 12)  # shoulders and hips: the torso also counts as their own on its near side
# A face point is labelled when its surface normal's z (toward the camera) exceeds this: nose, eyes, ears.
FACE_LABEL_MIN_NZ = np.array([-0.1, 0.0, 0.0, -0.35, -0.35])

_SHIFT = 4  # cv2 sub-pixel bits: coordinates are drawn with 1/16 pixel precision
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))], 1)
_SKIN = np.array([[255, 219, 172], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [92, 58, 34]])
_HAIR = np.array([[20, 15, 10], [60, 40, 25], [110, 70, 40], [200, 170, 100], [150, 150, 150], [140, 60, 30]])
_LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601 luminance of RGB
# Front/back cues must stay readable in a 96x64 crop (a head ~10 px tall): hair at least this many luminance levels
# from the skin, so that the back of a head (hair) never looks like a face (skin); in photos hair and skin rarely
# match, and a face is told from the back of a head by that contrast before its features can be resolved.
HAIR_SKIN_CONTRAST = 45.0
# The shirt front (a print, or the shirt under an open jacket) is a pale tint of the shirt's colour on a dark shirt
# and a dark shade of it on a light one: this luminance splits the two.
FRONT_SPLIT = 120.0
_TOE_CAP = np.array([235.0, 232.0, 224.0])  # the white rubber toe of a sneaker: the toes show which way feet point
_EYE = np.array([30.0, 25.0, 25.0])


@dataclass(frozen=True)
class SceneOptions:
    """What a scene may contain; every field can be passed to :func:`render_scene` by name."""

    min_people: int = 1
    person_height: tuple[float, float] = (0.22, 1.0)  # standing height / min(H, W), drawn log-uniform
    occluders: float = 0.8        # mean number of occluding objects per image (Poisson)
    clutter: tuple[int, int] = (4, 16)  # background shapes per image
    textures: bool = True         # stripes and noise on clothing
    tilt_std: float = 12.0        # in-plane tilt of a figure, degrees; 5% of figures take any angle
    overlap: float = 0.35         # chance that a figure is placed beside one already placed
    # chances of a front view (yaw within ±50°), a side view (50°..130°) and a back view; (1, 0, 0): every figure
    # faces the camera, so its left is on the image's right (the cpu profiles' easier setting)
    facing: tuple[float, float, float] = (0.55, 0.3, 0.15)


def _options(options: dict) -> SceneOptions:
    known = {f.name for f in fields(SceneOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"render_scene got unknown options {unknown}; valid options are {sorted(known)}")
    opts = SceneOptions(**options)
    facing = np.asarray(opts.facing, dtype=float)
    if facing.shape != (3,) or (facing < 0).any() or abs(facing.sum() - 1) > 1e-6:
        raise ValueError(f"render_scene: facing={opts.facing!r} must be 3 chances (front, side, back) that sum to 1")
    return opts


def _size(image_size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (H, W), got {image_size!r}") from None
    if h < 32 or w < 32:
        raise ValueError(f"image_size must be at least (32, 32), got {(h, w)}")
    return h, w


def _rng(seed_or_rng) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


@dataclass
class Scene:
    """One rendered scene: the RGB image, its people (COCO-style dicts) and the id buffer it was labelled from."""

    image: np.ndarray    # (H, W, 3) uint8 RGB
    people: list[dict]   # keypoints (17, 3) float32 x, y, v; bbox [x, y, w, h]; area; yaw; height
    ids: np.ndarray      # (H, W) int32: draw id of the last primitive drawn at each pixel (0 = background)
    owners: np.ndarray   # (num_ids, 2) int32: person index (-1 for none) and part index into PART_NAMES

    def owner(self, x: float, y: float) -> tuple[int, str]:
        """(person index or -1, part name) of what was drawn last at image point (x, y)."""
        person, part = self.owners[self.ids[int(round(y)), int(round(x))]]
        return int(person), PART_NAMES[part]

    def mask(self, person: int) -> np.ndarray:
        """(H, W) bool: where person ``person`` is on top, i.e. its visible silhouette."""
        return self.owners[self.ids, 0] == person


class _Canvas:
    """The image and the id buffer, drawn together: anti-aliased colour, hard-edged ids."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.ids = np.zeros(image.shape[:2], np.int32)
        self.owners = [(-1, PART["background"])]

    def new_id(self, person: int, part: str) -> int:
        self.owners.append((person, PART[part]))
        return len(self.owners) - 1

    def fill(self, points: np.ndarray, color, draw_id: int | None = None) -> None:
        """Fill a convex polygon (N, 2) in image coordinates; with ``draw_id`` it is also written to the ids."""
        pts = (points * (1 << _SHIFT)).round().astype(np.int32)
        cv2.fillConvexPoly(self.image, pts, tuple(map(float, color)), cv2.LINE_AA, _SHIFT)
        if draw_id is not None:
            cv2.fillConvexPoly(self.ids, pts, int(draw_id), cv2.LINE_8, _SHIFT)


def _capsule(p0, p1, r0: float, r1: float) -> np.ndarray:
    """Outline of a tapered capsule: the convex hull of two discs."""
    pts = np.concatenate([p0 + max(r0, 0.8) * _CIRCLE, p1 + max(r1, 0.8) * _CIRCLE]).astype(np.float32)
    return cv2.convexHull(pts)[:, 0]


def _ellipse(center, factor: np.ndarray) -> np.ndarray:
    """Outline of the ellipse {center + factor @ u : |u| = 1}; factor is (2, 2)."""
    return center + _CIRCLE @ factor.T


def _random_color(rng, sat=(0.2, 0.9), val=(0.3, 0.95)) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val))
    return np.array(rgb) * 255


# ---------------------------------------------------------------------------------------------------- background
def _background(rng, h: int, w: int, opts: SceneOptions) -> np.ndarray:
    """A low-frequency colour field (gradient, two-tone wall and floor, or blotches) plus clutter shapes."""
    base = rng.uniform(40, 220, 3)
    kind = rng.integers(3)
    if kind == 0:
        small = base + rng.normal(0, 45, (2, 2, 3))
    elif kind == 1:
        horizon = rng.integers(1, 7)
        small = np.repeat(base + rng.normal(0, 15, (8, 1, 3)), 2, axis=1)
        small[horizon:] = rng.uniform(40, 200, 3) + rng.normal(0, 10, (8 - horizon, 2, 3))
    else:
        n = rng.integers(4, 16)
        small = base + rng.normal(0, 30, (n, n, 1)) + rng.normal(0, 8, (n, n, 3))
    canvas = _Canvas(cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR))
    for _ in range(rng.integers(opts.clutter[0], opts.clutter[1] + 1)):
        _clutter_shape(rng, canvas, h, w)
    return canvas.image


def _clutter_shape(rng, canvas: _Canvas, h: int, w: int) -> None:
    size = min(h, w) * rng.uniform(0.04, 0.25)
    center = rng.uniform([0, 0], [w, h])
    color = _random_color(rng, val=(0.2, 0.9))
    kind = rng.integers(4)
    if kind == 0:  # boxes: windows, furniture, signs
        angle = np.radians(rng.normal(0, 10))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        half = size * np.array([rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.5)])
        canvas.fill(center + (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half) @ rot.T, color)
    elif kind == 1:  # discs and ovals
        canvas.fill(_ellipse(center, np.diag(size * rng.uniform(0.2, 0.7, 2))), color)
    elif kind == 2:  # limb-like strokes in skin tones: a network must use context, not colour alone
        end = center + rng.normal(0, size, 2)
        tone = _SKIN[rng.integers(len(_SKIN))] if rng.uniform() < 0.5 else color
        canvas.fill(_capsule(center, end, size * 0.12, size * 0.08), tone)
    else:  # shards
        canvas.fill(cv2.convexHull((center + rng.normal(0, size * 0.6, (5, 2))).astype(np.float32))[:, 0], color)


# ---------------------------------------------------------------------------------------------------- people
@dataclass
class _Person:
    figure: Figure
    yaw: float
    height: float              # standing height in pixels
    center: np.ndarray         # pelvis in the image
    linear: np.ndarray         # (2, 2): body units (x right, y up) -> image pixels (x right, y down)
    colors: dict
    textures: tuple[int, int]  # shirt, trousers: 0 solid, 1 stripes, 2 noise
    long_sleeves: bool
    long_trousers: bool

    def project(self, points: np.ndarray) -> np.ndarray:
        return points[..., :2] @ self.linear.T + self.center


def _sample_yaw(rng, facing) -> float:
    # photos show more fronts than sides, and more sides than backs (the default chances)
    band = rng.choice(3, p=list(facing))
    yaw = (rng.uniform(-50, 50), rng.choice([-1, 1]) * rng.uniform(50, 130), rng.uniform(130, 230))[band]
    return float((yaw + 180) % 360 - 180)


def _sample_colors(rng) -> dict:
    """Skin, hair, shirt, the shirt front's panel, trousers and shoes of one figure."""
    skin = np.clip(_SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 8, 3), 0, 255)
    jeans = np.array([[40, 60, 110], [30, 30, 35], [90, 90, 95], [170, 150, 110]])
    trousers = jeans[rng.integers(4)] + rng.normal(0, 12, 3) if rng.uniform() < 0.5 else _random_color(rng)
    hair = _contrasting_hair(np.clip(_HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 8, 3), 0, 255), skin)
    shirt = _random_color(rng)
    # the shirt front's panel: a pale tint of a dark shirt's colour, a dark shade of a light one (no random draw, so
    # the scenes of a seed keep the people, poses and places they had before the front/back cues were drawn)
    front = shirt + 0.85 * (255 - shirt) if shirt @ _LUMA < FRONT_SPLIT else 0.2 * shirt
    return {"skin": skin, "hair": hair, "shirt": shirt, "front": front, "trousers": np.clip(trousers, 0, 255),
            "shoes": _random_color(rng, sat=(0, 0.5), val=(0.05, 0.5))}


def _contrasting_hair(hair: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """``hair``, darkened where its luminance is within :data:`HAIR_SKIN_CONTRAST` of the skin's (brown hair on
    dark skin becomes black, grey hair on tanned skin dark grey), so the back of the head never reads as a face."""
    hair_luma, skin_luma = float(hair @ _LUMA), float(skin @ _LUMA)
    if abs(hair_luma - skin_luma) >= HAIR_SKIN_CONTRAST:
        return hair
    target = max(skin_luma - HAIR_SKIN_CONTRAST, 5.0)
    return hair * (target / max(hair_luma, 1.0))


def _sample_person(rng, h: int, w: int, placed: list[_Person], opts: SceneOptions) -> _Person:
    lo, hi = opts.person_height
    height = min(h, w) * float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if placed and rng.uniform() < opts.overlap:
        other = placed[rng.integers(len(placed))]
        center = other.center + rng.uniform(-0.6, 0.6, 2) * [other.height, other.height * 0.3]
    else:
        center = rng.uniform([0.06 * w, 0.2 * h], [0.94 * w, 0.85 * h])
    center = np.clip(center, [2, 2], [w - 3, h - 3])
    tilt = rng.uniform(-180, 180) if rng.uniform() < 0.05 else rng.normal(0, opts.tilt_std)
    c, s = np.cos(np.radians(tilt)), np.sin(np.radians(tilt))
    linear = height * np.array([[c, -s], [s, c]]) @ np.diag([1.0, -1.0])
    yaw = _sample_yaw(rng, opts.facing)
    figure = pose_figure(sample_pose(rng), sample_build(rng), yaw)
    colors = _sample_colors(rng)
    textures = (int(rng.choice(3, p=[0.4, 0.35, 0.25])), int(rng.choice([0, 2], p=[0.6, 0.4])))
    return _Person(figure=figure, yaw=yaw, height=height, center=center, linear=linear, colors=colors,
                   textures=textures, long_sleeves=bool(rng.uniform() < 0.5), long_trousers=bool(rng.uniform() < 0.75))


def _limb_primitives(person: _Person, side: str) -> list:
    """(depth, part, kind, outline, colour, overlays) of one side's six limb segments; kind: 0 skin (untextured),
    1 shirt, 2 trousers; overlays: (outline, colour) painted inside the outline right after it (the shoe's toe)."""
    fig, col, bulk = person.figure, person.colors, person.figure.build.bulk * person.height
    k = int(side == "right")  # COCO lists each left keypoint just before its right one
    kp, pts = fig.keypoints, fig.points
    shirt, trousers = col["shirt"], col["trousers"]  # the same on both sides: no cue that a mirror would invert
    segments = (  # part, from, to, radii (fraction of height), colour, texture kind
        ("upper_arm", kp[5 + k], kp[7 + k], (0.032, 0.027), shirt, 1),
        ("forearm", kp[7 + k], kp[9 + k], (0.026, 0.019),
         shirt if person.long_sleeves else col["skin"], 1 if person.long_sleeves else 0),
        ("hand", kp[9 + k], pts[f"{side}_hand"], (0.02, 0.017), col["skin"], 0),
        ("thigh", kp[11 + k], kp[13 + k], (0.05, 0.038), trousers, 2),
        ("shank", kp[13 + k], kp[15 + k], (0.036, 0.026),
         trousers if person.long_trousers else col["skin"], 2 if person.long_trousers else 0),
        ("foot", kp[15 + k], pts[f"{side}_toe"], (0.027, 0.022), col["shoes"], 0),
    )
    out = []
    for part, a, b, radii, color, kind in segments:
        r0, r1 = radii[0] * bulk, radii[1] * bulk
        outline = _capsule(person.project(a), person.project(b), r0, r1)
        overlays = _toe_cap(person, a, b, r0, r1) if part == "foot" else []
        out.append(((a[2] + b[2]) / 2 + 0.01, f"{side}_{part}", kind, outline, color, overlays))
    return out


TOE_CAP_FROM = 0.55    # the toe cap covers the foot from this fraction of the way from ankle to toe
TOE_CAP_MIN_Z = -0.25  # seen while the foot points less than ~105 degrees away from the camera


def _toe_cap(person: _Person, ankle: np.ndarray, toe: np.ndarray, r_ankle: float, r_toe: float) -> list:
    """The shoe's light toe cap, [(outline, colour)] or [] when the toes point away from the camera.

    Photos tell a front from a back by which way the feet point: seen from the front, the toes (here a white toe
    cap under each ankle); from behind, the heels (the plain shoe); from the side, a light tip on the side the
    figure faces. The cap lies inside the foot's outline (a capsule contains every disc between its end discs),
    so the foot's draw id and labels are unchanged.
    """
    direction = (toe - ankle) / np.linalg.norm(toe - ankle)
    if direction[2] < TOE_CAP_MIN_Z:
        return []
    start = ankle + TOE_CAP_FROM * (toe - ankle)
    r_start = r_ankle + TOE_CAP_FROM * (r_toe - r_ankle)
    return [(_capsule(person.project(start), person.project(toe), 0.8 * r_start, 0.8 * r_toe), _TOE_CAP)]


def _torso_primitives(person: _Person) -> list:
    rings, col = person.figure.torso_rings, person.colors
    flat = person.project(rings).astype(np.float32)
    chest = cv2.convexHull(np.concatenate([flat[0], flat[1]]))[:, 0]
    pelvis = cv2.convexHull(np.concatenate([flat[1], flat[2]]))[:, 0]
    z = float(rings[..., 2].mean())
    neck = _capsule(person.project(person.figure.points["neck"]), person.project(person.figure.points["head"]),
                    0.026 * person.height, 0.024 * person.height)
    return [(z, "torso", 2, pelvis, col["trousers"], []), (z + 1e-4, "torso", 1, chest, col["shirt"], []),
            (z + 0.005, "neck", 0, neck, col["skin"], [])]


def _head_factor(person: _Person, scale: float = 1.0) -> np.ndarray:
    """Cholesky factor of the projected head ellipsoid: the image of the unit sphere under head axes."""
    m = person.linear @ person.figure.head_axes[:2] * scale
    (a, b), (_, d) = m @ m.T
    l00 = np.sqrt(a)
    return np.array([[l00, 0.0], [b / l00, np.sqrt(max(d - b * b / a, 1e-6))]])


def _draw_head(canvas: _Canvas, person: _Person, draw_id: int) -> None:
    """Skin, hair over the back and top of the head, the face's skin where it faces the camera, then its features.

    Photos tell a face from the back of a head: from the front, skin with dark eyes, brows and mouth framed by hair;
    from behind, hair (kept :data:`HAIR_SKIN_CONTRAST` from the skin); from the side, the face on the side the head
    turns to and the hair behind it.
    """
    fig, col = person.figure, person.colors
    center = person.project(fig.points["head"])
    hair_3d = fig.points["head"] + fig.head_axes @ np.array([0.0, 0.3, -0.4])
    canvas.fill(_ellipse(center, _head_factor(person)), col["skin"], draw_id)
    canvas.fill(_ellipse(person.project(hair_3d), _head_factor(person, 0.97)), col["hair"], draw_id)
    face = _face_outline(person)
    if face is not None:
        canvas.fill(face, col["skin"])
    _draw_face(canvas, person)


# The face: the cap of the head (a unit sphere mapped by the head's axes) within FACE_CAP_DEGREES of a direction a
# little below straight ahead; beyond it, at the temples, forehead and round the back, the hair shows.
FACE_CAP_DEGREES = 70.0
_FACE_AXIS = np.array([0.0, -0.15, 1.0]) / np.linalg.norm([0.0, -0.15, 1.0])


def _cap_points(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Points of the unit sphere's cap round ``axis``: its apex and two rings of 12, at half and full ``degrees``."""
    side = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    other = np.cross(axis, side)
    turn = np.arange(12) * np.pi / 6
    rings = [np.cos(a) * axis + np.sin(a) * (np.cos(turn)[:, None] * side + np.sin(turn)[:, None] * other)
             for a in np.radians([degrees / 2, degrees])]
    return np.concatenate([axis[None]] + rings)


_FACE_CAP = _cap_points(_FACE_AXIS, FACE_CAP_DEGREES)


def _face_outline(person: _Person) -> np.ndarray | None:
    """Outline of the face's skin: the hull of the face cap's points whose surface normal faces the camera, None
    when none does (a back view). The points lie on the head's surface, so the face stays inside its outline."""
    axes = person.figure.head_axes
    on_head = _FACE_CAP @ axes.T                          # x = A p on the ellipsoid ...
    normal_z = _FACE_CAP @ np.linalg.inv(axes)[:, 2]      # ... has its normal along A^-T p
    seen = on_head[normal_z > 0]
    if len(seen) < 3:
        return None
    return cv2.convexHull(person.project(person.figure.points["head"] + seen).astype(np.float32))[:, 0]


# Face features, head frame (head centre 0, x to the head's left, y up, z where it faces; units of standing height
# at head scale 1): centre, outward normal, half width and half height of a flat ellipse on the head's surface, and
# the colour. Drawn stylised and large (an eye nearly half the eye-to-eye distance across) so that in a 96x64 crop,
# where the face is ~8 px wide, eyes and brows read as a dark band over the skin and the mouth as a dark dash.
_BROW = np.array([0.4, 0.35, 0.85]) / np.linalg.norm([0.4, 0.35, 0.85])  # the left brow's; x negated: the right's
_MOUTH = np.array([0.0, -0.35, 0.94]) / np.linalg.norm([0.0, -0.35, 0.94])
FACE_FEATURES = (  # name, centre, normal, (half width, half height), colour (a key of _face_colors)
    ("nose", FACE_POINTS[0], FACE_NORMALS[0], (0.006, 0.008), "nose"),
    ("left_eye", FACE_POINTS[1], FACE_NORMALS[1], (0.009, 0.007), "eyes"),
    ("right_eye", FACE_POINTS[2], FACE_NORMALS[2], (0.009, 0.007), "eyes"),
    ("left_brow", np.array([0.021, 0.024, 0.046]), _BROW, (0.012, 0.0035), "brows"),
    ("right_brow", np.array([-0.021, 0.024, 0.046]), _BROW * [-1.0, 1.0, 1.0], (0.012, 0.0035), "brows"),
    ("mouth", np.array([0.0, -0.034, 0.05]), _MOUTH, (0.014, 0.0045), "mouth"),
)
_FEATURE_POINTS, _FEATURE_NORMALS, _FEATURE_HALF_SIZES = (np.array([f[i] for f in FACE_FEATURES]) for i in (1, 2, 3))
_FEATURE_COLORS = tuple(f[4] for f in FACE_FEATURES)
_FEATURE_MIN_Z = np.array([FACE_LABEL_MIN_NZ[0], 0.0, 0.0, 0.0, 0.0, 0.0])  # drawn where normal z exceeds: the nose
# wherever it is labelled, the rest on the near side of the head


def _face_colors(col: dict) -> dict:
    """Features darker than the skin: a shadowed nose, near-black eyes, brows of darkened hair, a dark red mouth."""
    return {"nose": col["skin"] * 0.75, "eyes": _EYE, "brows": np.minimum(col["hair"], col["skin"]) * 0.6,
            "mouth": col["skin"] * np.array([0.55, 0.3, 0.3])}


def _draw_face(canvas: _Canvas, person: _Person) -> None:
    """The ears that face the camera, then the nose, eyes, brows and mouth where their normals face the camera.

    Each feature is an ellipse on the head's surface, foreshortened by its normal (a profile's near eye is a
    narrow dash), so a mirrored figure gets the mirror image of its face.
    """
    fig, col = person.figure, person.colors
    shown = fig.face_normals[:, 2] > FACE_LABEL_MIN_NZ
    ears = person.project(fig.keypoints[3:5])
    r = max(0.7, 0.005 * person.height)
    for k in (3, 4):
        if shown[k]:
            canvas.fill(_ellipse(ears[k - 3], np.diag([r * 1.2, r * 2.2])), col["skin"] * 0.8)
    rotation = fig.head_axes / np.linalg.norm(fig.head_axes, axis=0)
    scale, colors = fig.build.head_scale, _face_colors(col)
    normals = _FEATURE_NORMALS @ rotation.T
    across = rotation[:, 0] - (normals @ rotation[:, 0])[:, None] * normals  # the head's left-right axis, in each
    across /= np.linalg.norm(across, axis=1, keepdims=True)                 # feature's surface
    tangents = np.stack([across, np.cross(normals, across)], 2) * _FEATURE_HALF_SIZES[:, None, :] * scale
    factors = person.linear @ tangents[:, :2]  # (features, 2, 2): the unit circle -> each feature's ellipse
    centers = person.project(fig.points["head"] + (_FEATURE_POINTS * scale) @ rotation.T)
    for center, factor, normal_z, min_z, color in zip(centers, factors, normals[:, 2], _FEATURE_MIN_Z,
                                                      _FEATURE_COLORS):
        if normal_z > min_z:
            canvas.fill(_ellipse(center, factor), colors[color])


# The shirt front's panel: half width (fraction of the chest's half width) and its bottom and top (fractions of the
# way from the waist up to the shoulders). Short sleeves: a T-shirt's chest print; long sleeves: a jacket, open down
# the front over the inner shirt, from waist to neck.
FRONT_PANELS = {"print": (0.5, 0.3, 0.75), "open": (0.3, 0.0, 1.0)}
# The chest is the hull of 12-gon cross-sections; between its front vertex (u = 0) and the next ones (u = +-0.5,
# depth sin 60) the surface's depth falls linearly. Panel points sit on that surface, 4% inside it, so the panel (and
# the draw ids it writes) never leaves the chest's outline: the figure's bbox, area and labels are unchanged by it.
_EDGE_SLOPE = (1 - np.sin(np.pi / 3)) / np.cos(np.pi / 3)
_PANEL_INSET = 0.96


def _front_panel(person: _Person) -> np.ndarray | None:
    """Outline of the part of the shirt front's panel that faces the camera, or None when none does.

    The panel is a patch of the chest's front (waist to shoulders, lateral fraction u in [-half, half] of the half
    width); a point is kept where the surface normal there (of the elliptical cross-section) faces the camera, so
    the panel shows whole from the front, as a sliver on the leading edge from the side, and not at all from behind.
    """
    rings = person.figure.torso_rings[:2]  # shoulders, waist
    centers = rings.mean(1)
    lateral, forward = rings[:, 0] - centers, rings[:, 3] - centers  # half width and half depth vectors
    half, bottom, top = FRONT_PANELS["open" if person.long_sleeves else "print"]
    t = np.array([bottom, top])[:, None, None]  # waist (0) to shoulders (1)
    center, a, f = (v[1] + t * (v[0] - v[1]) for v in (centers, lateral, forward))
    u = np.linspace(-half, half, 5)[None, :, None]
    normal_z = (u * a[..., 2:] / (a * a).sum(-1, keepdims=True)
                + np.sqrt(1 - u ** 2) * f[..., 2:] / (f * f).sum(-1, keepdims=True))
    points = (center + u * a + _PANEL_INSET * (1 - _EDGE_SLOPE * np.abs(u)) * f)[normal_z[..., 0] > 0]
    if len(points) < 3:
        return None
    return cv2.convexHull(person.project(points).astype(np.float32))[:, 0]


def _draw_shirt_front(canvas: _Canvas, person: _Person, draw_id: int) -> None:
    """The shirt front, a front/back cue photos have (a shirt's front differs from its plain back): the panel
    (:data:`FRONT_PANELS`) in the person's contrasting ``front`` colour, then a V of skin under the neck."""
    panel = _front_panel(person)
    if panel is not None:
        canvas.fill(panel, person.colors["front"], draw_id)
    axes = person.figure.torso_axes
    if axes[2, 2] < 0.2:  # the chest faces away from the camera
        return
    neck = person.figure.points["neck"]
    tri = np.stack([neck + axes @ np.array(v) for v in ([-0.035, 0.0, 0.066], [0.035, 0.0, 0.066],
                                                         [0.0, -0.06, 0.07])])
    canvas.fill(person.project(tri), person.colors["skin"], draw_id)


def _texture(rng, shape, ys: np.ndarray, xs: np.ndarray, kind: int, period: float) -> np.ndarray:
    """Brightness factors at pixels (ys, xs) of a crop of ``shape``: stripes (kind 1) or blotchy noise (kind 2)."""
    if kind == 1:
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        wave = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * (2 * np.pi / period) + phase)
        return np.where(wave > 0, 1.0, rng.uniform(0.55, 0.8))
    small = rng.uniform(0.7, 1.15, (4, 4)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)[ys, xs]


def _draw_person(rng, canvas: _Canvas, person: _Person, index: int, opts: SceneOptions) -> dict:
    """Draw one figure back to front and return its amodal bbox and area (its pixels before anything covers it)."""
    first = len(canvas.owners)
    prims = _torso_primitives(person) + _limb_primitives(person, "left") + _limb_primitives(person, "right")
    head_z = person.figure.points["head"][2] + 0.06
    kinds = {}
    head_primitive = (head_z, "head", 0, None, None, [])
    for _, part, kind, outline, color, overlays in sorted(prims + [head_primitive], key=lambda p: p[0]):
        draw_id = canvas.new_id(index, part)
        kinds[draw_id] = kind
        if part == "head":
            _draw_head(canvas, person, draw_id)
            continue
        canvas.fill(outline, color, draw_id)
        for overlay, overlay_color in overlays:
            canvas.fill(overlay, overlay_color)
        if part == "torso" and kind == 1:
            front = canvas.new_id(index, "torso")
            kinds[front] = 0  # print and skin: they take no shirt texture
            _draw_shirt_front(canvas, person, front)
    head, reach = person.project(person.figure.points["head"]), 0.1 * person.height
    extent = np.concatenate([p[3] for p in prims] + [[head - reach, head + reach]])
    h, w = canvas.ids.shape
    x0, y0 = np.maximum(np.floor(extent.min(0)) - 1, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(extent.max(0)) + 2, [w, h]).astype(int)
    if x1 <= x0 or y1 <= y0:
        return {"bbox": [0.0, 0.0, 0.0, 0.0], "area": 0.0}
    return _finish_person(rng, canvas, person, (first, kinds), (x0, y0, x1, y1), opts)


def _finish_person(rng, canvas: _Canvas, person: _Person, drawn, box, opts: SceneOptions) -> dict:
    """Texture the clothes just drawn; measure the figure's pixels in the crop ``box`` (x0, y0, x1, y1)."""
    first, kinds = drawn
    x0, y0, x1, y1 = box
    ids = canvas.ids[y0:y1, x0:x1]
    ys, xs = np.nonzero(ids >= first)  # this figure's pixels: nothing has been drawn over it yet
    if not len(ys):
        return {"bbox": [0.0, 0.0, 0.0, 0.0], "area": 0.0}
    if opts.textures:
        table = np.zeros(len(canvas.owners) - first, np.int8)
        table[np.array(list(kinds)) - first] = list(kinds.values())
        cloth = table[ids[ys, xs] - first]
        crop = canvas.image[y0:y1, x0:x1]
        for kind, texture in zip((1, 2), person.textures):
            where = np.flatnonzero(cloth == kind)
            if texture and len(where):
                period = max(3.0, person.height * rng.uniform(0.03, 0.07))
                field = _texture(rng, ids.shape, ys[where], xs[where], texture, period)
                pixels = crop[ys[where], xs[where]]
                crop[ys[where], xs[where]] = np.clip(pixels * field[:, None], 0, 255).astype(np.uint8)
    h, w = canvas.ids.shape
    left, top = max(x0 + xs.min() - 0.5, 0.0), max(y0 + ys.min() - 0.5, 0.0)
    right, bottom = min(x0 + xs.max() + 0.5, w), min(y0 + ys.max() + 0.5, h)
    return {"bbox": [float(left), float(top), float(right - left), float(bottom - top)], "area": float(len(ys))}


# ---------------------------------------------------------------------------------------------------- occluders
def _draw_occluder(rng, canvas: _Canvas, target: _Person) -> None:
    """An object in front of a person: a box, a ball, a pole or a shard, near one of its joints."""
    size = target.height * rng.uniform(0.1, 0.3)
    center = target.project(target.figure.keypoints[rng.integers(5, 17)]) + rng.normal(0, size * 0.3, 2)
    kind = rng.integers(4)
    if kind == 0:
        half = size * np.array([rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0)])
        outline = center + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    elif kind == 1:
        outline = _ellipse(center, np.diag(size * rng.uniform(0.35, 0.7, 2)))
    elif kind == 2:
        direction = np.array([np.sin(rng.normal(0, 0.3)), np.cos(rng.normal(0, 0.3))])
        outline = _capsule(center - direction * size * 3, center + direction * size * 3, size * 0.15, size * 0.15)
    else:
        outline = cv2.convexHull((center + rng.normal(0, size * 0.5, (6, 2))).astype(np.float32))[:, 0]
    canvas.fill(outline, _random_color(rng, sat=(0.1, 0.8), val=(0.15, 0.9)), canvas.new_id(-1, "occluder"))


# ---------------------------------------------------------------------------------------------------- labels
def _keypoints(person: _Person, index: int, canvas: _Canvas) -> np.ndarray:
    """(17, 3) x, y, v from what was drawn: v=1 covered by something drawn later, v=0 outside or far face side."""
    h, w = canvas.ids.shape
    fig = person.figure
    xy = person.project(fig.keypoints)
    labelled = np.ones(17, bool)
    labelled[:5] = fig.face_normals[:, 2] > FACE_LABEL_MIN_NZ
    labelled &= (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    out = np.zeros((17, 3), np.float32)
    owners = np.asarray(canvas.owners)
    mine = np.flatnonzero(owners[:, 0] == index)
    # the draw id of each keypoint's own limb (the first, where a joint joins two segments)
    own_limb = np.where(_OWN_MATRIX[:, owners[mine, 1]], mine, len(owners)).min(1)
    for k in np.flatnonzero(labelled):
        drawn = canvas.ids[int(round(xy[k, 1])), int(round(xy[k, 0]))]
        person_at, part_at = owners[drawn]
        own = _OWN_MATRIX[k, part_at] or (k in _TORSO_JOINTS and part_at == PART["torso"] and _near_side(fig, k))
        # covered: what is on top was drawn after the keypoint's own limb and is not that limb
        covered = drawn > own_limb[k] and not (person_at == index and own)
        out[k] = (*xy[k], 1 if covered else 2)
    return out


def _near_side(figure: Figure, k: int) -> bool:
    """Whether shoulder or hip ``k`` is turned less than 50 degrees away from the camera, seen from the spine."""
    ring = figure.torso_rings[0 if k < 11 else 2]
    lateral = figure.keypoints[k] - ring.mean(0)
    return lateral[2] > -np.sin(np.radians(50)) * np.linalg.norm(lateral)


def render_scene(seed_or_rng, image_size=(256, 256), max_people: int = 4, **options) -> Scene:
    """Render one scene of 1..max_people figures from a seed (int, tuple) or a numpy Generator. Chapter 01.

    Options are the fields of :class:`SceneOptions`. The result is a pure function of the seed and the arguments.
    """
    rng, opts, (h, w) = _rng(seed_or_rng), _options(options), _size(image_size)
    if not opts.min_people <= max_people:
        raise ValueError(f"max_people={max_people} must be >= min_people={opts.min_people}")
    canvas = _Canvas(_background(rng, h, w, opts))
    placed: list[_Person] = []
    for _ in range(rng.integers(opts.min_people, max_people + 1)):
        placed.append(_sample_person(rng, h, w, placed, opts))
    # nearer people are larger, and drawn later
    order = np.argsort([p.height * rng.uniform(0.8, 1.2) for p in placed], kind="stable")
    placed = [placed[i] for i in order]
    occluder_after = rng.integers(0, len(placed), min(rng.poisson(opts.occluders), 4))
    records = []
    for index, person in enumerate(placed):
        records.append(_draw_person(rng, canvas, person, index, opts))
        for _ in range(int((occluder_after == index).sum())):
            _draw_occluder(rng, canvas, placed[rng.integers(0, index + 1)])
    people = [dict(record, keypoints=_keypoints(person, i, canvas), yaw=person.yaw, height=person.height)
              for i, (person, record) in enumerate(zip(placed, records))]
    return Scene(image=canvas.image, people=people, ids=canvas.ids, owners=np.asarray(canvas.owners, np.int32))


# ---------------------------------------------------------------------------------------------------- datasets
class SyntheticScenes(torch.utils.data.IterableDataset):
    """A seeded stream of scenes: item i is ``render_scene((seed, i), ...)``, so workers and resumed runs agree.

    Indexable (``scenes[i]``) and iterable from index ``start`` (to resume), endless unless ``length`` is given;
    DataLoader workers share the indices out. Use ``DataLoader(scenes, batch_size=..., collate_fn=list)``. Chapter 01.
    """

    def __init__(self, seed: int = 0, image_size=(256, 256), max_people: int = 4, length: int | None = None,
                 start: int = 0, **options):
        _options(options)
        self.seed, self.image_size, self.max_people = int(seed), _size(image_size), int(max_people)
        self.length, self.start, self.options = length, int(start), options

    def __getitem__(self, index: int) -> Scene:
        if index < 0 or (self.length is not None and index >= self.length):
            raise IndexError(f"scene index {index} is outside 0..{self.length}")
        return render_scene([self.seed, int(index)], self.image_size, self.max_people, **self.options)

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("this SyntheticScenes stream is endless (length=None)")
        return self.length

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        index = self.start + worker
        while self.length is None or index < self.length:
            yield self[index]
            index += workers


def _annotation(person: dict, ann_id: int, image_id: int) -> dict:
    kp = person["keypoints"]
    flat = [v for x, y, vis in kp.tolist() for v in (round(x, 2), round(y, 2), int(vis))]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [round(float(v), 2) for v in person["bbox"]], "area": float(person["area"]),
            "keypoints": flat, "num_keypoints": int((kp[:, 2] > 0).sum())}


def _records(num_images: int, seed: int, image_size, max_people: int, ext: str, options: dict):
    """Yield (image record, annotations, scene) for images 1..num_images: scene i is SyntheticScenes(seed)[i - 1]."""
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    scenes = SyntheticScenes(seed, image_size, max_people, **options)
    ann_id = 1
    for image_id in range(1, num_images + 1):
        scene = scenes[image_id - 1]
        h, w = scene.image.shape[:2]
        record = {"id": image_id, "file_name": f"{image_id:012d}.{ext}", "height": h, "width": w}
        anns = [_annotation(p, ann_id + i, image_id) for i, p in enumerate(scene.people)]
        ann_id += len(anns)
        yield record, anns, scene


def _coco(images: list, annotations: list, seed: int) -> dict:
    return {"info": {"description": f"posebook synthetic people, seed {seed}", "version": "1.0"},
            "licenses": [], "images": images, "annotations": annotations, "categories": [COCO.coco_category()]}


def make_coco(num_images: int, seed: int = 0, image_size=(256, 256), max_people: int = 4,
              **options) -> tuple[dict, list[np.ndarray]]:
    """In-memory COCO dataset: (coco dict as written by :func:`write_coco`, list of RGB images). Chapter 01."""
    images, anns, pixels = [], [], []
    for record, image_anns, scene in _records(num_images, seed, image_size, max_people, "jpg", options):
        images.append(record)
        anns.extend(image_anns)
        pixels.append(scene.image)
    return _coco(images, anns, seed), pixels


def _encode(image: np.ndarray, ext: str, quality: int) -> bytes:
    bgr = np.ascontiguousarray(image[..., ::-1])
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(f".{ext}", bgr, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {ext} image")
    return buf.tobytes()


def write_coco(out_dir, num_images: int, seed: int = 0, image_size=(256, 256), max_people: int = 4,
               image_format: str = "jpg", quality: int = 92, progress: bool = False, **options) -> dict:
    """Write ``out_dir/images/000000000001.jpg ...`` and ``out_dir/annotations.json``; return the COCO dict.

    Same arguments, same bytes. Each file is written to a temporary name and renamed, so none is half-written.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    records = _records(num_images, seed, image_size, max_people, image_format, options)
    if progress:
        from tqdm.auto import tqdm

        records = tqdm(records, total=num_images, desc="synthetic images")
    for record, image_anns, scene in records:
        data = _encode(scene.image, image_format, quality)
        atomic_write(out / "images" / record["file_name"], lambda f: f.write(data))
        images.append(record)
        anns.extend(image_anns)
    coco = _coco(images, anns, seed)
    atomic_write(out / "annotations.json", lambda f: f.write(json.dumps(coco, separators=(",", ":")).encode()))
    return coco


def occlusion_stats(annotations: list[dict]) -> dict:
    """Counts over COCO annotations: people, labelled keypoints (v>0), occluded (v=1) and the occluded share."""
    vis = np.array([a["keypoints"][2::3] for a in annotations]).reshape(-1)
    labelled, occluded = int((vis > 0).sum()), int((vis == 1).sum())
    return {"people": len(annotations), "labelled": labelled, "occluded": occluded,
            "occluded_share": occluded / max(labelled, 1)}
