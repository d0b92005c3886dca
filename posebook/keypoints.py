"""Skeleton definitions: COCO-17, MPII-16 and OpenPose-18 keypoints, limbs, flip pairs and OKS sigmas.

Facts from the datasets (COCO order and skeleton from the COCO keypoint json, MPII order from MMPose's dataset meta,
flip pairs from the HRNet code) and §7 (OKS sigmas from pycocotools). Explained in chapter 00 (Introduction).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def flip_permutation(num_keypoints: int, flip_pairs) -> np.ndarray:
    """The index permutation that swaps every (left, right) pair: ``flipped = original[..., perm, ...]``."""
    perm = np.arange(num_keypoints)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout: names in order, limbs (0-indexed pairs), left/right flip pairs, and OKS sigmas if any."""

    name: str
    names: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None = None
    upper_body: tuple[int, ...] = field(default=())

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of a keypoint by name; the error lists the valid names."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{self.name} has no keypoint {name!r}; its keypoints are {list(self.names)}") from None

    def flip_index(self) -> np.ndarray:
        """The permutation that swaps left and right: ``flipped[:, k] = original[:, flip_index()[k]]``."""
        return flip_permutation(self.num_keypoints, self.flip_pairs)

    @property
    def lower_body(self) -> tuple[int, ...]:
        return tuple(k for k in range(self.num_keypoints) if k not in self.upper_body)

    def coco_category(self) -> dict:
        """The COCO ``categories`` entry for this skeleton (COCO's skeleton is 1-indexed)."""
        return {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(self.names),
            "skeleton": [[a + 1, b + 1] for a, b in self.limbs],
        }


def _pairs_by_name(names, pairs):
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# COCO's own skeleton (person_keypoints json), converted from 1-indexed to 0-indexed; 19 edges.
_COCO_SKELETON_1 = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)

COCO = Skeleton(
    name="COCO-17",
    names=_COCO_NAMES,
    limbs=tuple((a - 1, b - 1) for a, b in _COCO_SKELETON_1),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # pycocotools' per-keypoint sigmas (cocoeval.Params.setKpParams)
    sigmas=(.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089),
    upper_body=tuple(range(11)),  # HRNet's half-body split: ids 0-10 upper, 11-16 lower
)

_MPII_NAMES = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
MPII = Skeleton(
    name="MPII-16",
    names=_MPII_NAMES,
    limbs=_pairs_by_name(_MPII_NAMES, (
        ("r_ankle", "r_knee"), ("r_knee", "r_hip"), ("r_hip", "pelvis"), ("l_hip", "pelvis"),
        ("l_knee", "l_hip"), ("l_ankle", "l_knee"), ("pelvis", "thorax"), ("thorax", "upper_neck"),
        ("upper_neck", "head_top"), ("r_wrist", "r_elbow"), ("r_elbow", "r_shoulder"), ("r_shoulder", "thorax"),
        ("l_shoulder", "thorax"), ("l_elbow", "l_shoulder"), ("l_wrist", "l_elbow"),
    )),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    upper_body=tuple(range(7, 16)),  # HRNet's MPII upper body: ids 7-15
)

_OPENPOSE_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
# The CMU body model's 19 limbs (limbSeq, 1-indexed in the demo), in PAF channel order.
_OPENPOSE_LIMBS_1 = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
    (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (3, 17), (6, 18),
)
OPENPOSE = Skeleton(
    name="OpenPose-18",
    names=_OPENPOSE_NAMES,
    limbs=tuple((a - 1, b - 1) for a, b in _OPENPOSE_LIMBS_1),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
)

# OpenPose-18 from COCO-17: every part but the neck is a COCO keypoint; the neck is the shoulders' midpoint.
COCO_TO_OPENPOSE = tuple(
    None if n == "neck" else _COCO_NAMES.index(n) for n in _OPENPOSE_NAMES
)

COCO_SIGMAS = np.asarray(COCO.sigmas)
SKELETONS = {s.name: s for s in (COCO, MPII, OPENPOSE)}


def get(name: str) -> Skeleton:
    """A skeleton by name ('COCO-17', 'MPII-16', 'OpenPose-18'; case-insensitive, 'coco'/'mpii'/'openpose' too)."""
    key = name.lower()
    for s in SKELETONS.values():
        if key in (s.name.lower(), s.name.split("-")[0].lower()):
            return s
    raise KeyError(f"unknown skeleton {name!r}; known: {list(SKELETONS)}")
