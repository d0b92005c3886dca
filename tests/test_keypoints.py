"""Skeletons match PAPERS.md §8 (COCO order, 1-indexed skeleton, flip pairs; MPII order) and §7 (sigmas)."""
import json

import numpy as np
import pytest

from posebook import keypoints
from posebook.keypoints import COCO, MPII, OPENPOSE


def test_coco_order_and_sizes():
    assert COCO.num_keypoints == 17 and COCO.names[0] == "nose" and COCO.names[16] == "right_ankle"
    assert len(COCO.limbs) == 19


def test_coco_sigmas_are_pycocotools():
    from pycocotools.cocoeval import Params

    np.testing.assert_allclose(keypoints.COCO_SIGMAS, Params(iouType="keypoints").kpt_oks_sigmas)


def test_coco_category_matches_the_real_annotation_file(coco_sample):
    real = json.loads((coco_sample / "person_keypoints_sample.json").read_text())["categories"][0]
    ours = COCO.coco_category()
    assert ours["keypoints"] == real["keypoints"]
    assert ours["skeleton"] == real["skeleton"]


@pytest.mark.parametrize("skeleton", [COCO, MPII, OPENPOSE], ids=lambda s: s.name)
def test_flip_pairs_swap_left_and_right_names(skeleton):
    for a, b in skeleton.flip_pairs:
        left, right = sorted([skeleton.names[a], skeleton.names[b]])
        assert left.replace("l_", "").replace("left_", "") == right.replace("r_", "").replace("right_", "")


@pytest.mark.parametrize("skeleton", [COCO, MPII, OPENPOSE], ids=lambda s: s.name)
def test_flip_index_is_an_involution_fixing_centre_keypoints(skeleton):
    perm = skeleton.flip_index()
    np.testing.assert_array_equal(perm[perm], np.arange(skeleton.num_keypoints))
    paired = {k for pair in skeleton.flip_pairs for k in pair}
    assert all(perm[k] == k for k in range(skeleton.num_keypoints) if k not in paired)


def test_mpii_order_and_pairs():
    assert MPII.names[:3] == ("r_ankle", "r_knee", "r_hip") and MPII.names[9] == "head_top"
    assert MPII.flip_pairs == ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))


def test_openpose_maps_every_part_but_the_neck_to_coco():
    mapped = keypoints.COCO_TO_OPENPOSE
    assert mapped[OPENPOSE.index("neck")] is None
    for part, coco_index in zip(OPENPOSE.names, mapped):
        if coco_index is not None:
            assert COCO.names[coco_index] == part


def test_unknown_keypoint_and_skeleton_names_list_the_known_ones():
    with pytest.raises(KeyError, match="left_wrist"):
        COCO.index("left_wirst")
    assert keypoints.get("mpii") is MPII
    with pytest.raises(KeyError, match="COCO-17"):
        keypoints.get("h36m")
