"""The articulated figure of the synthetic people: proportions, joint limits, poses and 3D forward kinematics.

A figure is a 3D body in units of its standing height (y up, x toward the figure's left, z toward where it faces),
posed by joint angles kept inside human ranges of motion, then turned about the vertical axis by its yaw. The renderer
(:mod:`posebook.data.synthetic`) projects it orthographically. Segment lengths follow Drillis & Contini's fractions of
height (head 1/7.5, upper arm .186, forearm .146, thigh .245, shank .246); elbows and knees are hinges that bend one
way only (elbows forward, knees backward). Explained in chapter 01 (Data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebook.keypoints import COCO

# Ranges of motion in degrees (clinical ranges, slightly narrowed so every sample looks natural).
LIMITS: dict[str, tuple[float, float]] = {
    "shoulder_flexion": (-45.0, 170.0),   # arm raised forward (+) or swung back (-)
    "shoulder_abduction": (-10.0, 160.0),  # arm raised sideways, away from the body
    "shoulder_rotation": (-40.0, 90.0),    # internal (+) rotation: a bent forearm swings across the belly
    "elbow_flexion": (0.0, 145.0),         # one way only: the forearm folds forward onto the upper arm
    "hip_flexion": (-25.0, 120.0),
    "hip_abduction": (-10.0, 45.0),
    "hip_rotation": (-30.0, 35.0),
    "knee_flexion": (0.0, 150.0),          # one way only: the shank folds backward
    "spine_flexion": (-15.0, 40.0),        # lean forward (+) or back (-)
    "spine_bend": (-20.0, 20.0),           # lean sideways
    "spine_twist": (-30.0, 30.0),          # shoulders turned against the hips
    "head_yaw": (-70.0, 70.0),
    "head_pitch": (-25.0, 35.0),           # looking down (+)
    "head_roll": (-20.0, 20.0),
}
SIDES = {"left": 1.0, "right": -1.0}  # sign of x for the figure's left and right
LIMB_ANGLES = ("shoulder_flexion", "shoulder_abduction", "shoulder_rotation", "elbow_flexion",
               "hip_flexion", "hip_abduction", "hip_rotation", "knee_flexion")
BODY_ANGLES = ("spine_flexion", "spine_bend", "spine_twist", "head_yaw", "head_pitch", "head_roll")

# Drillis & Contini (1966) segment lengths, fractions of standing height.
UPPER_ARM, FOREARM, HAND = 0.186, 0.146, 0.09
THIGH, SHANK, FOOT = 0.245, 0.246, 0.13
TORSO = 0.288        # hip joints (0.530) to shoulder joints (0.818)
NECK = 0.05          # shoulder line to the base of the skull
HEAD_RADII = np.array([0.05, 0.066, 0.06])  # half width, half height, half depth: head height ~ 1/7.5
# Face keypoints on the head (head frame, head centre at 0) and their outward surface normals.
FACE_POINTS = np.array([[0.0, -0.008, 0.056], [0.021, 0.01, 0.05], [-0.021, 0.01, 0.05],
                        [0.046, 0.0, -0.004], [-0.046, 0.0, -0.004]])
FACE_NORMALS = np.array([[0.0, 0.0, 1.0], [0.4, 0.1, 0.91], [-0.4, 0.1, 0.91], [1.0, 0.0, -0.15], [-1.0, 0.0, -0.15]])


def _rx(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Build:
    """A figure's body: segment length scale, head scale, half widths of shoulders and hips, bulk of limbs."""

    limb_scale: np.ndarray   # (4,) upper arm, forearm, thigh, shank length factors
    head_scale: float
    shoulder_half: float     # shoulder joints' distance from the spine
    hip_half: float
    bulk: float              # limb and torso thickness factor


def sample_build(rng: np.random.Generator) -> Build:
    """A body within the adult range: lengths +-6%, head 1/8 to 1/6.5 of height, broad or narrow shoulders."""
    return Build(limb_scale=rng.uniform(0.94, 1.06, 4), head_scale=float(rng.uniform(0.92, 1.15)),
                 shoulder_half=float(rng.uniform(0.1, 0.13)), hip_half=float(rng.uniform(0.075, 0.095)),
                 bulk=float(rng.uniform(0.85, 1.25)))


def _walk(rng: np.random.Generator) -> dict[str, float]:
    # legs swing in antiphase and each arm swings against its leg
    phase, stride, swing = rng.uniform(0, 2 * np.pi), rng.uniform(10, 35), rng.uniform(5, 40)
    angles = {}
    for name, sign in SIDES.items():
        s = np.sin(phase) * sign
        angles.update({f"{name}_hip_flexion": stride * s, f"{name}_knee_flexion": rng.uniform(0, 25) + 35 * max(s, 0),
                       f"{name}_shoulder_flexion": -swing * s, f"{name}_elbow_flexion": rng.uniform(5, 60),
                       f"{name}_shoulder_abduction": rng.uniform(0, 15), f"{name}_hip_abduction": rng.uniform(0, 8)})
    return angles


def _crouch(rng: np.random.Generator) -> dict[str, float]:
    # sitting, squatting and kneeling: both hips and knees deeply flexed
    hip, knee = rng.uniform(50, 115), rng.uniform(60, 145)
    return {f"{name}_{joint}": value + rng.normal(0, 8) for name in SIDES
            for joint, value in (("hip_flexion", hip), ("knee_flexion", knee), ("hip_abduction", 12))}


def _stand(rng: np.random.Generator) -> dict[str, float]:
    return {f"{name}_{joint}": rng.normal(0, spread) for name in SIDES
            for joint, spread in (("shoulder_flexion", 20), ("shoulder_abduction", 15), ("elbow_flexion", 30),
                                  ("hip_flexion", 8), ("hip_abduction", 6), ("knee_flexion", 8))}


def _free(rng: np.random.Generator) -> dict[str, float]:
    # anywhere inside the ranges: dancing, sports, reaching; knees follow hips a little so legs look loaded
    angles = {f"{name}_{joint}": rng.uniform(*LIMITS[joint]) for name in SIDES for joint in LIMB_ANGLES}
    for name in SIDES:
        angles[f"{name}_hip_flexion"] = rng.uniform(-25, 100) * rng.uniform(0.3, 1)
        angles[f"{name}_knee_flexion"] = rng.uniform(0, 40) + 0.6 * max(angles[f"{name}_hip_flexion"], 0)
    return angles


_STYLES = ((_stand, 0.3), (_walk, 0.3), (_crouch, 0.1), (_free, 0.3))


def sample_pose(rng: np.random.Generator) -> dict[str, float]:
    """Joint angles (degrees) of one figure: standing, walking, crouching or free, always inside :data:`LIMITS`."""
    styles, weights = zip(*_STYLES)
    angles = {f"{name}_{joint}": rng.normal(0, 6) for name in SIDES for joint in LIMB_ANGLES}
    angles.update(styles[rng.choice(len(styles), p=weights)](rng))
    for joint, spread in zip(BODY_ANGLES, (12, 7, 12, 35, 12, 7)):
        angles[joint] = rng.normal(4 if joint == "spine_flexion" else 0, spread)
    return {key: _clip(float(value), LIMITS[key.split("_", 1)[1] if key.split("_")[0] in SIDES else key])
            for key, value in angles.items()}


def _clip(value: float, limits: tuple[float, float]) -> float:
    return min(max(value, limits[0]), limits[1])


@dataclass
class Figure:
    """A posed figure in camera axes (x right, y up, z toward the camera), units of standing height, pelvis at 0."""

    keypoints: np.ndarray      # (17, 3) COCO order
    face_normals: np.ndarray   # (5, 3) outward normals of nose, eyes, ears
    points: dict[str, np.ndarray]  # extra points: neck, head, head_top, {side}_hand, {side}_toe
    head_axes: np.ndarray      # (3, 3) columns: the head's x, y, z axes scaled by its radii
    torso_rings: np.ndarray    # (3, 12, 3) cross-sections at the shoulders, waist and hips
    torso_axes: np.ndarray     # (3, 3) the torso's rotation (columns: left, up, forward)
    build: Build


_RING = np.stack([np.cos(np.arange(12) * np.pi / 6), np.zeros(12), np.sin(np.arange(12) * np.pi / 6)], 1)


def _ring(center, axes, half_width, half_depth):
    return center + (_RING * [half_width, 0.0, half_depth]) @ axes.T


def _limb(root, frame, angles, side, prefix, lengths, hinge_sign):
    """Upper and lower segment end points of a limb whose hinge folds the lower segment toward ``hinge_sign`` z."""
    name = {"shoulder": ("shoulder", "elbow"), "hip": ("hip", "knee")}[prefix]
    s = SIDES[side]
    rot = (frame @ _rx(-angles[f"{side}_{name[0]}_flexion"]) @ _rz(s * angles[f"{side}_{name[0]}_abduction"])
           @ _ry(-s * angles[f"{side}_{name[0]}_rotation"]))
    bend = angles[f"{side}_{name[1]}_flexion"]
    lower_frame = rot @ _rx(-hinge_sign * bend)
    joint = root + rot @ np.array([0.0, -lengths[0], 0.0])
    end = joint + lower_frame @ np.array([0.0, -lengths[1], 0.0])
    return joint, end, lower_frame


def pose_figure(angles: dict[str, float], build: Build, yaw: float) -> Figure:
    """Forward kinematics: joint angles + build + yaw (degrees; 0 faces the camera, 90 faces image right)."""
    turn = _ry(yaw)
    pelvis = turn
    torso = turn @ _rx(angles["spine_flexion"]) @ _rz(angles["spine_bend"]) @ _ry(angles["spine_twist"])
    head = torso @ _ry(angles["head_yaw"]) @ _rx(angles["head_pitch"]) @ _rz(angles["head_roll"])
    neck = torso @ np.array([0.0, TORSO, 0.0])
    head_radii = HEAD_RADII * build.head_scale
    head_center = neck + torso @ np.array([0.0, NECK, 0.0]) + head @ np.array([0.0, head_radii[1] * 0.85, 0.005])
    kp = np.zeros((17, 3))
    kp[:5] = head_center + (FACE_POINTS * build.head_scale) @ head.T
    points = {"neck": neck, "head": head_center, "head_top": head_center + head @ np.array([0, head_radii[1], 0])}
    arm_len = (UPPER_ARM * build.limb_scale[0], FOREARM * build.limb_scale[1])
    leg_len = (THIGH * build.limb_scale[2], SHANK * build.limb_scale[3])
    for side, s in SIDES.items():
        k = 0 if side == "left" else 1
        shoulder = torso @ np.array([s * build.shoulder_half, TORSO - 0.012, 0.0])
        hip = pelvis @ np.array([s * build.hip_half, 0.0, 0.0])
        elbow, wrist, forearm = _limb(shoulder, torso, angles, side, "shoulder", arm_len, 1.0)
        knee, ankle, shank = _limb(hip, pelvis, angles, side, "hip", leg_len, -1.0)
        kp[[5 + k, 7 + k, 9 + k, 11 + k, 13 + k, 15 + k]] = shoulder, elbow, wrist, hip, knee, ankle
        points[f"{side}_hand"] = wrist + forearm @ np.array([0.0, -HAND, 0.0])
        # the foot points forward, roughly square to the shank
        points[f"{side}_toe"] = ankle + shank @ (np.array([0.0, -0.35, 1.0]) * FOOT / 1.06)
    width = build.bulk * np.array([build.shoulder_half + 0.035, 0.1, build.hip_half + 0.035])
    depth = build.bulk * np.array([0.065, 0.058, 0.07])
    centers = [neck + torso @ np.array([0, -0.01, 0]), torso @ np.array([0, TORSO * 0.42, 0]), np.zeros(3)]
    frames = [torso, turn @ _rx(angles["spine_flexion"] / 2) @ _ry(angles["spine_twist"] / 2), pelvis]
    rings = np.stack([_ring(c, f, w, d) for c, f, w, d in zip(centers, frames, width, depth)])
    return Figure(keypoints=kp, face_normals=FACE_NORMALS @ head.T, points=points,
                  head_axes=head * head_radii, torso_rings=rings, torso_axes=torso, build=build)


def joint_flexion(figure: Figure) -> dict[str, float]:
    """Measured elbow and knee flexion (degrees, 0 = straight) of a posed figure, for checking joint limits."""
    kp, out = figure.keypoints, {}
    for side in SIDES:
        for a, b, c, joint in (("shoulder", "elbow", "wrist", "elbow"), ("hip", "knee", "ankle", "knee")):
            u = kp[COCO.index(f"{side}_{b}")] - kp[COCO.index(f"{side}_{a}")]
            v = kp[COCO.index(f"{side}_{c}")] - kp[COCO.index(f"{side}_{b}")]
            cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
            out[f"{side}_{joint}"] = float(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return out
