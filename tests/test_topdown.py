"""The shared top-down pipeline (make_sample) and SyntheticTopDown: crops of seeded synthetic people."""
import numpy as np
import pytest
import torch

from posebook.codecs import BlurHeatmap, GaussianHeatmap
from posebook.data import PersonRecord, SyntheticTopDown, make_sample
from posebook.data.transforms import Augment, affine_points, box_to_center_scale, get_affine_transform
from posebook.keypoints import COCO


def person(rng, width=320, height=240):
    kp = np.zeros((17, 3))
    kp[:, 0] = rng.uniform(100, 200, 17)
    kp[:, 1] = rng.uniform(60, 200, 17)
    kp[:, 2] = 2
    center, scale = box_to_center_scale([95, 55, 110, 150])
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return image, PersonRecord(image, center, scale, kp, image_id=3, ann_id=11)


def back_to_image(item, codec):
    """Decode the item's target and map it back to the (flipped, if so) original image."""
    meta = item["meta"]
    coords, _ = codec.decode(item["target"][None])
    inv = get_affine_transform(meta["center"], meta["scale"], meta["rotation"], codec.input_size, inv=True)
    return affine_points(coords[0], inv)


def test_unaugmented_sample_decodes_back_to_the_keypoints_within_half_a_heatmap_pixel():
    image, record = person(np.random.default_rng(0))
    codec = GaussianHeatmap()
    item = make_sample(image, record, codec=codec, input_size=(256, 192), skeleton=COCO)
    px_per_input_px = record.scale[0] * 200 / 192
    err = np.abs(back_to_image(item, codec) - record.keypoints[:, :2]).max()
    assert err <= 2.0 * px_per_input_px + 1e-6
    assert item["meta"]["flipped"] is False and item["meta"]["rotation"] == 0.0
    assert item["target_weight"].tolist() == [1.0] * 17


def test_flipped_sample_swaps_left_and_right_channels():
    image, record = person(np.random.default_rng(1))
    codec = GaussianHeatmap(unbiased=True)
    item = make_sample(image, record, codec=codec, input_size=(256, 192), skeleton=COCO,
                       augment=Augment.none().with_(flip=1.0), rng=np.random.default_rng(0))
    assert item["meta"]["flipped"] is True
    decoded = back_to_image(item, codec)  # in the flipped image
    mirrored = record.keypoints[COCO.flip_index(), :2].copy()
    mirrored[:, 0] = image.shape[1] - 1 - mirrored[:, 0]
    assert np.abs(decoded - mirrored).max() < 0.1


def test_rotated_and_scaled_sample_still_decodes_onto_the_keypoints():
    image, record = person(np.random.default_rng(2))
    codec = GaussianHeatmap(unbiased=True)
    augment = Augment(flip=0.0, half_body=0.0, rotation_prob=1.0)
    item = make_sample(image, record, codec=codec, input_size=(256, 192), skeleton=COCO, augment=augment,
                       rng=np.random.default_rng(5))
    assert item["meta"]["rotation"] != 0 and item["meta"]["scale"][0] != pytest.approx(record.scale[0])
    meta = item["meta"]
    in_crop = affine_points(record.keypoints[:, :2],
                            get_affine_transform(meta["center"], meta["scale"], meta["rotation"], (256, 192)))
    # DARK refines maxima at least a few heatmap px from the border (24 input px)
    inside = np.all((in_crop >= 24) & (in_crop <= [192 - 25, 256 - 25]), axis=1)
    assert inside.sum() >= 5
    assert np.abs(back_to_image(item, codec)[inside] - record.keypoints[inside, :2]).max() < 0.1


def test_make_sample_uses_any_codec():
    image, record = person(np.random.default_rng(3))
    item = make_sample(image, record, codec=BlurHeatmap(kernel=11), input_size=(256, 192), skeleton=COCO)
    assert item["target"].shape == (17, 64, 48) and float(item["target"].max()) == pytest.approx(1.0)


def test_synthetic_item_is_a_pure_function_of_seed_and_index():
    a, b = SyntheticTopDown(50, seed=4), SyntheticTopDown(50, seed=4)
    assert torch.equal(a[7]["image"], b[7]["image"]) and torch.equal(a[7]["target"], b[7]["target"])
    assert not torch.equal(a[7]["image"], a[8]["image"])
    assert not torch.equal(a[7]["image"], SyntheticTopDown(50, seed=5)[7]["image"])
    with pytest.raises(IndexError):
        a[50]


def test_synthetic_item_crops_a_person_of_the_matching_scene():
    from posebook.data.synthetic import SyntheticScenes

    ds = SyntheticTopDown(10, seed=2, train=False)
    scene = SyntheticScenes(2)[3]
    record = ds.record(3)
    assert np.array_equal(record.image, scene.image)
    assert any(np.allclose(record.keypoints, p["keypoints"]) for p in scene.people)
    item = ds[3]
    assert item["image"].shape == (3, 256, 192) and item["target"].shape == (17, 64, 48)
    codec = ds.codec
    labelled = (record.keypoints[:, 2] > 0) & (item["target_weight"].numpy() > 0)
    err = np.abs(back_to_image(item, codec)[labelled] - record.keypoints[labelled, :2]).max()
    assert err <= 2.0 * record.scale[0] * 200 / 192 + 1e-6


def test_synthetic_validation_set_is_a_coco_dataset_with_ground_truth():
    val = SyntheticTopDown.validation(4, seed=123)
    assert val.coco is not None and len(val.coco.getImgIds()) == 4
    labelled = [a for a in val.coco.anns.values() if max(a["keypoints"][2::3]) > 0]
    assert len(val) == len(labelled) and not val.train
    item = val[0]
    assert item["meta"]["ann_id"] in val.coco.anns and item["meta"]["image_id"] in val.coco.imgs
    again = SyntheticTopDown.validation(4, seed=123)
    assert torch.equal(item["image"], again[0]["image"])


def test_hourglass_recipe_jitters_colour_and_keeps_geometry():
    image, record = person(np.random.default_rng(6))
    plain = make_sample(image, record, codec=GaussianHeatmap(), input_size=(256, 192), skeleton=COCO,
                        augment=Augment.none(), rng=np.random.default_rng(0))
    jittered = make_sample(image, record, codec=GaussianHeatmap(), input_size=(256, 192), skeleton=COCO,
                           augment=Augment.none().with_(color=(0.6, 1.4)), rng=np.random.default_rng(0))
    assert not torch.equal(plain["image"], jittered["image"])
    assert torch.equal(plain["target"], jittered["target"])
