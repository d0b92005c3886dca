"""The shared top-down pipeline (make_sample, TopDownDataset) and SyntheticTopDown: crops of seeded synthetic people."""
import random

import numpy as np
import pytest
import torch

from posebook.codecs import BlurHeatmap, GaussianHeatmap
from posebook.data import ImageCache, PersonRecord, SyntheticTopDown, TopDownDataset, make_sample
from posebook.losses import MultiOutputLoss
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


# ---- seeded draws keyed on (seed, epoch, index) -------------------------------------------------------------

def people(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [person(rng)[1] for _ in range(n)]


def test_synthetic_epochs_draw_new_augmentations_of_the_same_scenes():
    ds = SyntheticTopDown(20, seed=4)
    first = [ds[i] for i in range(4)]
    ds.set_epoch(1)
    second = [ds[i] for i in range(4)]
    assert all(np.array_equal(ds.record(i).keypoints, SyntheticTopDown(20, seed=4).record(i).keypoints)
               for i in range(4))  # the same people...
    assert sum(not torch.equal(a["image"], b["image"]) for a, b in zip(first, second)) >= 3  # ...cropped anew
    ds.set_epoch(0)
    assert all(torch.equal(a["image"], ds[i]["image"]) and torch.equal(a["target"], ds[i]["target"])
               for i, a in enumerate(first))  # and epoch 0 again gives epoch 0's items: resume is exact


@pytest.mark.parametrize("make", [lambda: TopDownDataset(people(), train=True, seed=3),
                                  lambda: SyntheticTopDown(6, seed=3)], ids=["records", "synthetic"])
def test_negative_indices_of_seeded_datasets_count_from_the_end(make):
    ds = make()
    ds.set_epoch(2)
    last = ds[-1]
    assert torch.equal(last["image"], ds[len(ds) - 1]["image"]) and torch.equal(last["target"], ds[5]["target"])
    assert torch.equal(ds[-6]["image"], ds[0]["image"])
    with pytest.raises(IndexError, match="index -7 out of range"):
        ds[-7]
    with pytest.raises(TypeError):
        ds[1.5]


def test_seeded_items_ignore_global_generators_and_unseeded_ones_draw_fresh_entropy():
    ds = TopDownDataset(people(), train=True, seed=1)
    a = ds[2]
    np.random.seed(123), random.seed(123), torch.manual_seed(123)  # reseeding the globals changes nothing
    assert torch.equal(a["image"], ds[2]["image"]) and a["meta"]["scale"].tolist() == ds[2]["meta"]["scale"].tolist()
    unseeded = TopDownDataset(people(), train=True, seed=None)
    assert not all(torch.equal(unseeded[2]["image"], unseeded[2]["image"]) for _ in range(3))
    with pytest.raises(ValueError, match="seed must be a non-negative int or None, got -1"):
        TopDownDataset(people(), train=True, seed=-1)


def test_global_generators_are_left_as_they_were():
    ds = TopDownDataset(people(), train=True, seed=1)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    for i in range(len(ds)):
        ds[i]
    SyntheticTopDown(3, seed=0)[1]
    after = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and torch.equal(before[2], after[2])


# ---- several codecs: one target per model output -----------------------------------------------------------

CPN_KERNELS = (15, 11, 9, 7, 7)  # GlobalNet's four levels, then RefineNet (PAPERS.md §3)


def test_a_dataset_with_five_blur_codecs_gives_five_targets_that_collate_and_feed_multi_output_loss():
    codecs = [BlurHeatmap(kernel=k) for k in CPN_KERNELS]
    multi = TopDownDataset(people(), train=True, seed=5, codec=codecs)
    assert multi.codec is codecs[-1] and multi.codecs == codecs and multi.multi_target
    item = multi[3]
    assert isinstance(item["target"], list) and len(item["target"]) == 5 and len(item["target_weight"]) == 5
    for codec, target, weight in zip(codecs, item["target"], item["target_weight"]):
        single = TopDownDataset(people(), train=True, seed=5, codec=codec)[3]  # the same draws, one codec
        assert torch.equal(target, single["target"]) and torch.equal(weight, single["target_weight"])
        assert target.shape == (17, 64, 48) and weight.shape == (17,)
    # each target carries its own codec's blur: wider kernels spread over more pixels
    labelled = int(torch.nonzero(item["target_weight"][0])[0])
    spread = [int((t[labelled] > 0.01).sum()) for t in item["target"]]
    assert spread[0] > spread[1] > spread[2] > spread[3] == spread[4]
    batch = next(iter(torch.utils.data.DataLoader(multi, batch_size=4)))
    assert isinstance(batch["target"], list) and [t.shape for t in batch["target"]] == [(4, 17, 64, 48)] * 5
    assert [w.shape for w in batch["target_weight"]] == [(4, 17)] * 5
    outputs = [torch.rand(4, 17, 64, 48, requires_grad=True) for _ in range(5)]
    loss = MultiOutputLoss(_WeightedMSE())(outputs, batch["target"], batch["target_weight"])
    loss.backward()
    assert torch.isfinite(loss) and all(o.grad is not None for o in outputs)


class _WeightedMSE(torch.nn.Module):
    def forward(self, output, target, target_weight):
        return (((output - target) ** 2).mean((-2, -1)) * target_weight).mean()


def test_single_codec_items_are_unchanged_and_synthetic_sets_take_codec_lists():
    ds = SyntheticTopDown(4, seed=2, codec=[BlurHeatmap(kernel=11), GaussianHeatmap()])
    item = ds[1]
    assert len(item["target"]) == 2 and torch.equal(item["target"][1], SyntheticTopDown(4, seed=2)[1]["target"])
    assert isinstance(SyntheticTopDown(4, seed=2)[1]["target"], torch.Tensor)


def test_codec_lists_are_checked():
    with pytest.raises(ValueError, match="codec is an empty list"):
        TopDownDataset(people(), train=True, codec=[])
    with pytest.raises(ValueError, match=r"codec\[1\] has input_size \(128, 96\), but the dataset crops \(256, 192\)"):
        TopDownDataset(people(), train=True, codec=[GaussianHeatmap(), GaussianHeatmap((128, 96), (32, 24))])
    with pytest.raises(TypeError, match=r"codec\[0\] .* has no encode"):
        TopDownDataset(people(), train=True, codec=[object()])


# ---- the image cache -------------------------------------------------------------------------------------------

def test_image_cache_keeps_at_most_its_budget_and_evicts_the_least_recently_used(tmp_path):
    import cv2

    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((100, 100, 3), i * 40, np.uint8))  # 30 000 bytes decoded
        paths.append(path)
    cache = ImageCache(max_mb=70_000 / 2**20)  # room for two
    a = cache.get(paths[0])
    assert cache.get(paths[0]) is a and (cache.hits, cache.misses) == (1, 1) and not a.flags.writeable
    cache.get(paths[1]), cache.get(paths[0]), cache.get(paths[2])  # 1 is now the least recently used
    assert len(cache) == 2 and cache.nbytes == 60_000 and cache.get(paths[0]) is a
    assert cache.get(paths[1]) is not a and len(cache) == 2 and cache.nbytes <= cache.max_bytes
    off = ImageCache(0)
    assert off.get(paths[3]) is not off.get(paths[3]) and len(off) == 0
    with pytest.raises(ValueError, match="max_mb must be >= 0"):
        ImageCache(-1)
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        cache.get(tmp_path / "missing.png")
