"""The bottom-up path (OpenPose): confidence maps and PAFs as the paper defines them, the CMU demo's parsing, and
whole-image samples on the real COCO sample and on synthetic scenes."""
import json
import random

import numpy as np
import pytest
import torch

import posebook
from posebook.codecs.paf import (ConfidenceMaps, OutputGrid, PartAffinityFields, coco_to_openpose,
                                 openpose_to_coco)
from posebook.data.bottomup import BottomUpAugment, BottomUpDataset, SyntheticBottomUp, fit_matrix
from posebook.inference.bottomup import (assemble, coco_results, find_peaks, match_limbs, parse, parse_outputs,
                                         score_limbs, to_image)
from posebook.keypoints import COCO, OPENPOSE
from posebook.metrics import coco_eval, oks

# A person facing the camera (COCO-17, x right, y down), one unit tall from the eyes to the ankles.
TEMPLATE = np.array([(0, -.42), (.03, -.45), (-.03, -.45), (.07, -.43), (-.07, -.43), (.15, -.3), (-.15, -.3),
                     (.22, -.1), (-.22, -.1), (.25, .08), (-.25, .08), (.1, .05), (-.1, .05), (.11, .3),
                     (-.11, .3), (.12, .55), (-.12, .55)])


def person(cx, cy, height):
    """A COCO-17 person (17, 3), every keypoint visible."""
    return np.concatenate([TEMPLATE * height + (cx, cy), np.full((17, 1), 2.0)], axis=1)


def openpose_people(*people):
    return coco_to_openpose(np.stack(people))


def encode(people_op, size=368):
    return ConfidenceMaps(size).encode(people_op), PartAffinityFields(size).encode(people_op)


def oks_to_truth(poses_op, truth_coco):
    """(parsed, truth) OKS matrix of OpenPose-18 parses against COCO-17 truths, area = the truth's box."""
    area = np.ptp(truth_coco[..., 0], axis=1) * np.ptp(truth_coco[..., 1], axis=1)
    return oks(openpose_to_coco(poses_op), truth_coco, area)


# ---- codecs: confidence maps and part affinity fields (TPAMI'19 §3) ------------------------------------------

def test_confidence_map_is_the_papers_gaussian_with_no_factor_2():
    cm = ConfidenceMaps(64, stride=8, sigma=7.0, form="paper")  # no longer the default (official: 2 sigma^2)
    kp = np.zeros((1, 18, 3))
    kp[0, 3] = [3.5 + 8 * 4, 3.5 + 8 * 2, 2]  # exactly on output pixel (row 2, column 4)
    maps = cm.encode(kp)
    assert maps.shape == (19, 8, 8) and maps.dtype == np.float32
    assert maps[3, 2, 4] == pytest.approx(1.0)
    assert maps[3, 2, 5] == pytest.approx(np.exp(-64 / 49), rel=1e-6)  # one output pixel = 8 input px away
    assert maps[3, 3, 5] == pytest.approx(np.exp(-128 / 49), rel=1e-6)


def test_confidence_map_takes_the_max_over_people_not_the_sum():
    cm = ConfidenceMaps(64, sigma=7.0, background=False, form="paper")  # the paper's width, as the value below
    kp = np.zeros((2, 18, 3))
    kp[0, 0] = [27.5, 27.5, 2]
    kp[1, 0] = [35.5, 27.5, 1]  # the next output pixel to the right
    maps = cm.encode(kp)
    assert maps.shape == (18, 8, 8)
    assert maps[0, 3, 3] == pytest.approx(1.0) and maps[0, 3, 4] == pytest.approx(1.0)
    assert maps[0, 3, 5] == pytest.approx(np.exp(-64 / 49), rel=1e-6)


def test_background_channel_is_one_minus_the_max_over_parts_and_unlabelled_parts_are_not_drawn():
    cm = ConfidenceMaps(64)
    kp = np.zeros((1, 18, 3))
    kp[0, 5] = [30.0, 20.0, 2]
    kp[0, 6] = [10.0, 50.0, 0]  # v = 0: not drawn, wherever its x, y say
    maps = cm.encode(kp)
    assert not maps[6].any()
    np.testing.assert_allclose(maps[18], 1 - maps[:18].max(axis=0), atol=1e-6)
    assert maps[18].min() < 0.2 and maps[18].max() == pytest.approx(1.0)


def test_paf_is_the_unit_vector_inside_the_limb_rectangle_and_zero_outside():
    paf = PartAffinityFields(64, stride=8, limb_width=8.0, support="paper")  # the default is now "official"
    kp = np.zeros((1, 18, 3))
    kp[0, 1] = [11.5, 27.5, 2]  # neck ... limb 0 is neck -> right_shoulder
    kp[0, 2] = [51.5, 27.5, 2]  # ... 40 px to the right, on output row 3
    fields = paf.encode(kp)
    assert fields.shape == (38, 8, 8) and OPENPOSE.limbs[0] == (1, 2)
    xs, ys = paf.grid()
    inside = (xs[None, :] >= 11.5) & (xs[None, :] <= 51.5) & (np.abs(ys[:, None] - 27.5) <= 8)
    np.testing.assert_array_equal(fields[0], np.where(inside, 1.0, 0.0))  # x of limb 0
    assert not fields[1].any() and not fields[2:].any()  # y of limb 0, and every other limb


def test_paf_turns_with_the_limb_and_averages_where_people_overlap():
    paf = PartAffinityFields(64, limb_width=8.0)
    kp = np.zeros((2, 18, 3))
    kp[0, 1], kp[0, 2] = [27.5, 3.5, 2], [27.5, 59.5, 2]  # person 0: neck -> right shoulder straight down
    kp[1, 1], kp[1, 2] = [3.5, 27.5, 2], [59.5, 27.5, 2]  # person 1: the same limb to the right
    fields = paf.encode(kp)
    assert fields[:2, 6, 3].tolist() == [0.0, 1.0]   # only person 0's limb there
    assert fields[:2, 3, 6].tolist() == [1.0, 0.0]   # only person 1's
    assert fields[:2, 3, 3].tolist() == [0.5, 0.5]   # both: the average of (0, 1) and (1, 0)


def test_paf_skips_a_limb_with_an_unlabelled_end():
    kp = openpose_people(person(180, 180, 200))
    kp[0, 3, 2] = 0  # right elbow unlabelled: right upper arm (limb 2) and forearm (limb 3) vanish
    fields = PartAffinityFields(368).encode(kp)
    assert not fields[4:8].any() and fields[0:4].any() and fields[8:].any()


def test_coco_to_openpose_puts_the_neck_between_labelled_shoulders():
    coco = np.stack([person(100, 100, 100), person(200, 100, 100)])
    coco[1, 5, 2] = 0  # the second person's left shoulder is unlabelled
    op = coco_to_openpose(coco)
    assert op.shape == (2, 18, 3)
    np.testing.assert_allclose(op[0, 1], [100, 70, 2])
    assert op[1, 1].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(openpose_to_coco(op)[0], coco[0])
    assert op[0, OPENPOSE.index("left_wrist"), 0] == coco[0, COCO.index("left_wrist"), 0]


def test_codecs_name_the_method_on_a_wrong_shape():
    with pytest.raises(ValueError, match=r"ConfidenceMaps.encode expects people keypoints \(N, 18, 3\)"):
        ConfidenceMaps(64).encode(np.zeros((2, 17, 3)))
    with pytest.raises(ValueError, match=r"PartAffinityFields.encode"):
        PartAffinityFields(64).encode(np.zeros((18, 2)))
    with pytest.raises(ValueError, match="multiples of stride 8"):
        ConfidenceMaps(100)


def test_upsample_puts_an_output_pixel_back_on_the_input_pixel_it_stands_for():
    grid = OutputGrid(64, 8)
    maps = np.zeros((1, 8, 8), np.float32)
    maps[0, 2, 5] = 1.0
    up = grid.upsample(maps)
    assert up.shape == (1, 64, 64)
    # output (row 2, column 5) stands for input (x, y) = (5 * 8 + 3.5, 2 * 8 + 3.5): between pixels 43 and 44
    assert up[0, 19:21, 43:45].min() == pytest.approx(up[0].max())


# ---- parsing (the CMU demo logic, PAPERS.md §6) ----------------------------------------------------------------

@pytest.mark.parametrize("people", [
    [person(70, 180, 200), person(190, 180, 180), person(300, 150, 150)],   # apart
    [person(150, 180, 200), person(200, 190, 200), person(300, 150, 150)],  # the first two overlap
    [person(150, 180, 200), person(175, 190, 200)],                          # mostly on top of each other
], ids=["apart", "two-overlap", "on-top"])
def test_people_encoded_then_parsed_come_back_as_the_same_people(people):
    truth = np.stack(people)
    poses, scores = parse_outputs(*encode(coco_to_openpose(truth)), stride=8)
    assert len(poses) == len(truth) and (scores > 0.4).all()
    similarity = oks_to_truth(poses, truth)
    best = similarity.argmax(axis=1)
    assert sorted(best) == list(range(len(truth)))  # one parse per person
    assert similarity.max(axis=1).min() > 0.98
    found = openpose_to_coco(poses)
    error = np.hypot(*(found[..., :2] - truth[best, :, :2]).transpose(2, 0, 1))
    assert error.max() <= 2.0  # input px


def test_a_single_part_or_a_short_chain_does_not_make_a_person():
    alone = np.zeros((1, 18, 3))
    alone[0, 0] = [100, 100, 2]
    assert len(parse_outputs(*encode(alone), stride=8)[0]) == 0
    three = openpose_people(person(180, 180, 200))
    three[0, 3:, 2] = 0  # the nose, the neck and the right shoulder: 3 parts, under the 4-part minimum
    heat, fields = encode(three)
    assert len(find_peaks(ConfidenceMaps(368).upsample(heat)[:18])[0]) == 1
    assert len(parse_outputs(heat, fields, stride=8)[0]) == 0


def test_a_part_halfway_between_two_pixels_gives_one_peak():
    maps = np.zeros((1, 20, 20), np.float32)
    maps[0, 4, 4] = maps[0, 4, 5] = 1.0    # two-pixel plateaus, side by side and one above the other: the
    maps[0, 14, 10] = maps[0, 15, 10] = 1.0  # demo's >= on all four sides keeps both pixels of each
    maps[0, 12, 16] = 1.0                  # and a single spike, more than 4 sigma from the others
    peaks = find_peaks(maps, sigma=1.0)[0]
    assert peaks.tolist() == [[5, 4, 1.0], [16, 12, 1.0], [10, 15, 1.0]]


def test_limb_score_is_the_mean_dot_product_plus_the_distance_prior():
    paf_x, paf_y = np.full((100, 400), 0.6, np.float32), np.zeros((100, 400), np.float32)
    a = np.array([[10.0, 50.0, 1.0]])
    b = np.array([[40.0, 50.0, 1.0], [160.0, 50.0, 1.0], [10.0, 80.0, 1.0]])
    scores = score_limbs(a, b, paf_x, paf_y, image_height=100)
    # 30 px: no penalty; 150 px: 0.6 + (0.5 * 100 / 150 - 1) < 0, rejected; straight down: the field is across it
    assert scores[0, 0] == pytest.approx(0.6)
    assert scores[0, 1] == -np.inf and scores[0, 2] == -np.inf
    assert score_limbs(a, b[1:2], paf_x, paf_y, image_height=200)[0, 0] == pytest.approx(0.6 + 100 / 150 - 1)


def test_a_limb_needs_more_than_80_percent_of_its_samples_above_thre2():
    paf_x, paf_y = np.ones((20, 100), np.float32), np.zeros((20, 100), np.float32)
    a, b = np.array([[0.0, 10.0, 1.0]]), np.array([[90.0, 10.0, 1.0]])  # samples at x = 0, 10, ..., 90
    paf_x[:, 75:] = 0.0   # the last two samples (80, 90) fall on zeros: 8 of 10 above, not more than 80%
    assert score_limbs(a, b, paf_x, paf_y, image_height=400)[0, 0] == -np.inf
    paf_x[:, 75:85] = 1.0  # 9 of 10
    assert score_limbs(a, b, paf_x, paf_y, image_height=400)[0, 0] == pytest.approx(0.9)


def test_greedy_matching_takes_the_best_pairs_first_and_each_candidate_once():
    scores = np.array([[0.9, 0.8, -np.inf], [0.85, 0.2, 0.1]])
    # (0, 0) first; then (1, 0) and (0, 1) reuse a candidate; (1, 1) is next, though (1, 2) would leave both used
    assert match_limbs(scores).tolist() == [[0, 0, 0.9], [1, 1, 0.2]]


def test_assembly_merges_two_people_that_a_limb_joins_and_share_no_part():
    # ids: 0 neck, 1 right shoulder, 2 right eye, 3 right ear; limb 0 neck-r_shoulder, 14 r_eye-r_ear,
    # 17 r_shoulder-r_ear (one of the two redundant limbs)
    assert [OPENPOSE.limbs[c] for c in (0, 14, 17)] == [(1, 2), (14, 16), (2, 16)]
    connections = [np.zeros((0, 3)) for _ in OPENPOSE.limbs]
    connections[0], connections[14] = np.array([[0, 1, 1.0]]), np.array([[2, 3, 1.0]])
    parts, totals, counts = assemble(connections, np.ones(4), min_parts=2)
    assert counts.tolist() == [2, 2]  # two people: nothing joins them yet
    connections[17] = np.array([[1, 3, 1.0]])
    parts, totals, counts = assemble(connections, np.ones(4), min_parts=2)
    assert counts.tolist() == [4] and parts[0, [1, 2, 14, 16]].tolist() == [0, 1, 2, 3]
    assert totals.tolist() == [7.0]  # 4 parts + 3 limbs


def test_the_redundant_limbs_do_not_start_a_person():
    connections = [np.zeros((0, 3)) for _ in OPENPOSE.limbs]
    connections[17] = np.array([[0, 1, 1.0]])
    assert len(assemble(connections, np.ones(2), min_parts=2)[0]) == 0
    connections[16] = np.array([[0, 1, 1.0]])  # l_eye - l_ear, one of the first 17
    assert len(assemble(connections, np.ones(2), min_parts=2)[0]) == 1


def test_parse_rejects_maps_of_the_wrong_skeleton():
    with pytest.raises(ValueError, match=r"heatmaps \(18 or 19, H, W\) and pafs \(38, H, W\)"):
        parse(np.zeros((17, 32, 32)), np.zeros((38, 32, 32)))


def test_to_image_undoes_the_sample_matrix_and_keeps_missing_parts_at_zero():
    matrix = fit_matrix((100, 200), (64, 64), zoom=1.3, rotation=30.0, shift=(5.0, -3.0), flip=True)
    poses = np.array([[[10.0, 20.0, 0.7], [0.0, 0.0, 0.0]]])
    back = to_image(poses, matrix)
    np.testing.assert_allclose(matrix @ [*back[0, 0, :2], 1.0], [10.0, 20.0])
    assert back[0, 0, 2] == 0.7 and back[0, 1].tolist() == [0.0, 0.0, 0.0]


def test_coco_results_drop_the_neck_and_follow_coco_order():
    poses = openpose_people(person(100, 100, 100))
    results = coco_results(7, poses, [0.9])
    assert len(results) == 1 and results[0]["image_id"] == 7 and results[0]["category_id"] == 1
    np.testing.assert_allclose(np.reshape(results[0]["keypoints"], (17, 3)), person(100, 100, 100))


# ---- whole-image datasets --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def coco_files():
    """The four COCO val2017 photos and their annotations: ../shared's copy where it is, else the copy the package
    ships (posebook.sample_data), so these tests run without ../shared."""
    folder = posebook.sample_data("coco_sample")
    assert folder is not None, "posebook/sample_data/coco_sample is missing from the package"
    return folder / "person_keypoints_sample.json", folder / "images"


def test_coco_items_have_the_documented_shapes_and_mask_the_two_people_without_keypoints(coco_files):
    ds = BottomUpDataset(*coco_files, train=False, input_size=368)
    assert len(ds) == 4 and [len(ds.people(i)) for i in range(4)] == [1, 2, 4, 5]  # 14 annotations, 2 unlabelled
    item = ds[1]
    assert item["image"].shape == (3, 368, 368) and item["heatmaps"].shape == (19, 46, 46)
    assert item["pafs"].shape == (38, 46, 46) and item["mask"].shape == (1, 46, 46)
    assert item["meta"]["image_id"] == 40083 and item["meta"]["num_people"] == 2
    for index, ann_id in ((1, 1202706), (2, 508900)):  # the people with num_keypoints 0
        ann = ds.coco.anns[ann_id]
        assert ann["num_keypoints"] == 0 and ds.unannotated_mask(index).sum() > 0
        mask = ds[index]["mask"][0].numpy()
        x, y, w, h = ann["bbox"]
        cx, cy = (np.array([x + w / 2, y + h / 2]) @ ds[index]["meta"]["matrix"][:, :2].T
                  + ds[index]["meta"]["matrix"][:, 2]) / 8
        assert mask[int(cy), int(cx)] == 0.0 and mask.mean() > 0.95
    assert ds[0]["mask"].min() == 1.0 and ds[3]["mask"].min() == 1.0


def test_ground_truth_maps_of_the_coco_sample_parse_back_to_coco_ap_above_0_95(coco_files):
    # at 640 px the sample's photos keep their own scale (stride 8 in image px); measured AP 0.990 with the official
    # targets at 640 and at 368 (0.986 and 0.78 with the paper's rectangle)
    ds = BottomUpDataset(*coco_files, train=False, input_size=640)
    results = []
    for item in ds:
        meta = item["meta"]
        poses, scores = parse_outputs(item["heatmaps"], item["pafs"], 8, meta["matrix"], meta["image_size"])
        results += coco_results(meta["image_id"], poses, scores)
    stats = coco_eval(ds.coco.dataset, results)
    assert stats["AP"] > 0.95 and stats["AP50"] == 1.0


def test_an_augmented_flipped_item_parses_back_to_the_people_in_the_image(coco_files):
    augment = BottomUpAugment(scale=(0.9, 0.9), rotation=20.0, shift=0.0, flip=1.0)
    ds = BottomUpDataset(*coco_files, train=True, input_size=640, augment=augment, seed=3)
    item = ds[0]  # image 785, one person
    assert item["meta"]["flipped"] is True and item["meta"]["rotation"] != 0.0
    meta = item["meta"]
    truth = np.asarray(ds.coco.imgToAnns[785][0]["keypoints"], dtype=float).reshape(1, 17, 3)
    poses, _ = parse_outputs(item["heatmaps"], item["pafs"], 8, meta["matrix"], meta["image_size"], flipped=True)
    assert len(poses) == 1 and oks_to_truth(poses, truth)[0, 0] > 0.95
    # the sample swapped left and right channels as it mirrored: read unswapped, every pair lands on its twin
    mirrored, _ = parse_outputs(item["heatmaps"], item["pafs"], 8, meta["matrix"], meta["image_size"])
    assert oks_to_truth(mirrored, truth)[0, 0] < 0.5


def test_training_draws_are_a_pure_function_of_seed_epoch_and_index(coco_files):
    ds = BottomUpDataset(*coco_files, train=True, input_size=256, seed=11)
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    first = ds[2]
    again = BottomUpDataset(*coco_files, train=True, input_size=256, seed=11)[2]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["pafs"], again["pafs"])
    np.testing.assert_array_equal(first["meta"]["matrix"], ds[-2]["meta"]["matrix"])  # -2 is index 2 of 4
    ds.set_epoch(1)
    assert not np.array_equal(first["meta"]["matrix"], ds[2]["meta"]["matrix"])
    ds.set_epoch(0)
    np.testing.assert_array_equal(first["meta"]["matrix"], ds[2]["meta"]["matrix"])
    # no global generator was drawn from or reseeded
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    with pytest.raises(IndexError, match="out of range"):
        ds[4]


def test_an_unseeded_dataset_draws_a_seed_once_and_replays_with_it(coco_files):
    ds = BottomUpDataset(*coco_files, train=True, input_size=256)
    assert isinstance(ds.seed, int)
    replay = BottomUpDataset(*coco_files, train=True, input_size=256, seed=ds.seed)
    ds.set_epoch(3)
    replay.set_epoch(3)
    np.testing.assert_array_equal(ds[1]["meta"]["matrix"], replay[1]["meta"]["matrix"])


def test_items_collate_into_a_batch(coco_files):
    ds = BottomUpDataset(*coco_files, train=True, input_size=256, seed=0)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["heatmaps"].shape == (4, 19, 32, 32) and batch["mask"].shape == (4, 1, 32, 32)
    assert batch["meta"]["matrix"].shape == (4, 2, 3)


def test_malformed_coco_input_names_the_annotation_and_the_image(coco_files, tmp_path):
    ann_file, image_dir = coco_files
    data = json.loads(ann_file.read_text())
    data["annotations"][3]["keypoints"] = data["annotations"][3]["keypoints"][:-3]
    ann = data["annotations"][3]
    with pytest.raises(ValueError, match=rf"annotation id {ann['id']} \(image id {ann['image_id']}\).*17 keypoints"):
        BottomUpDataset(data, image_dir, train=True)
    data = json.loads(ann_file.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["num_keypoints"] == 0][:1]
    data["annotations"][0]["segmentation"], data["annotations"][0]["bbox"] = [], [1, 2, 0, 5]
    with pytest.raises(ValueError, match=rf"annotation id {data['annotations'][0]['id']}.*segmentation or its bbox"):
        BottomUpDataset(data, image_dir, train=False)
    with pytest.raises(FileNotFoundError, match="image id 785"):
        BottomUpDataset(ann_file, tmp_path, train=True)[0]
    images = {785: np.zeros((10, 10, 3), np.uint8)}
    with pytest.raises(ValueError, match=r"image id 785: the image is \(10, 10, 3\).*\(425, 640\)"):
        BottomUpDataset(ann_file, images, train=False)[0]


def test_fit_matrix_centres_the_image_and_flips_about_the_input():
    m = fit_matrix((100, 200), (64, 64))
    np.testing.assert_allclose(m @ [100, 50, 1], [32, 32])   # image centre -> input centre
    np.testing.assert_allclose(m[:, :2], np.eye(2) * 64 / 200)  # the long side fits
    flipped = fit_matrix((100, 200), (64, 64), flip=True)
    np.testing.assert_allclose(flipped @ [0, 50, 1], [63 - (m @ [0, 50, 1])[0], 32])


def test_synthetic_items_are_seeded_scenes_with_their_people_as_targets():
    ds = SyntheticBottomUp(8, seed=5, train=False, input_size=128, image_size=(128, 128))
    item, scene = ds[3], ds.scene(3)
    assert item["image"].shape == (3, 128, 128) and item["heatmaps"].shape == (19, 16, 16)
    np.testing.assert_allclose(item["meta"]["matrix"], np.eye(2, 3))  # evaluation: the scene as it is
    truth = coco_to_openpose(np.stack([p["keypoints"] for p in scene.people]))
    np.testing.assert_array_equal(item["heatmaps"].numpy(), ConfidenceMaps(128).encode(truth))
    train = SyntheticBottomUp(8, seed=5, input_size=128, image_size=(128, 128))
    assert torch.equal(train[3]["image"], train[-5]["image"])
    train.set_epoch(1)
    assert not torch.equal(train[3]["image"], SyntheticBottomUp(8, seed=5, input_size=128,
                                                                image_size=(128, 128))[3]["image"])


def test_synthetic_people_with_no_labelled_keypoint_are_masked_by_their_silhouette():
    # giant people: some scenes hold a person whose keypoints all fall outside the image, beside labelled ones
    ds = SyntheticBottomUp(60, seed=0, train=False, input_size=128, image_size=(128, 128),
                           person_height=(3.0, 8.0), min_people=2, occluders=0, clutter=(0, 0))

    def unlabelled(scene):
        return [i for i, p in enumerate(scene.people) if not (p["keypoints"][:, 2] > 0).any()]

    def wanted(i):
        scene = ds.scene(i)
        hidden = unlabelled(scene)
        return (len(hidden) == 1 and len(scene.people) > 1 and 10 < scene.mask(hidden[0]).sum()
                and 0 < (scene.mask(hidden[0]).reshape(16, 8, 16, 8).any(axis=(1, 3))).mean() < 0.9)

    index = next(i for i in range(len(ds)) if wanted(i))
    scene = ds.scene(index)
    person = unlabelled(scene)[0]
    touched = scene.mask(person).reshape(16, 8, 16, 8).any(axis=(1, 3))  # the 8 x 8 blocks it appears in
    mask = ds[index]["mask"][0].numpy()
    assert (mask == 0).sum() > 0 and (mask == 1).sum() > 10
    np.testing.assert_array_equal(mask == 0, touched)
    assert ds[index]["meta"]["num_people"] == len(scene.people) - 1


def test_synthetic_validation_is_a_coco_set_whose_ground_truth_parses_back():
    # people at least half the image tall: at stride 8 the parts of small people merge
    ds = SyntheticBottomUp.validation(3, seed=7, input_size=256, facing=(1.0, 0.0, 0.0), person_height=(0.5, 1.0))
    assert isinstance(ds, BottomUpDataset) and len(ds) == 3 and ds.coco.dataset["images"]
    results = []
    for item in ds:
        meta = item["meta"]
        poses, scores = parse_outputs(item["heatmaps"], item["pafs"], 8, meta["matrix"], meta["image_size"])
        results += coco_results(meta["image_id"], poses, scores)
    assert coco_eval(ds.coco.dataset, results)["AP"] > 0.5
