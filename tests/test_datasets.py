"""COCO and MPII datasets on the real samples: HRNet's filtering, detections, errors, and targets on the keypoints."""
import json
import shutil

import numpy as np
import pytest
import torch

from posebook.codecs import get_max_preds
from posebook.data import CocoKeypoints, MpiiKeypoints
from posebook.data.topdown import load_image
from posebook.data.transforms import Augment, crop, denormalize
from posebook.keypoints import COCO, MPII


@pytest.fixture(scope="module")
def coco_files(coco_sample):
    return coco_sample / "person_keypoints_sample.json", coco_sample / "images"


@pytest.fixture(scope="module")
def mpii_files(mpii_sample):
    return mpii_sample / "annotations_sample.json", mpii_sample / "images"


def test_coco_train_keeps_the_12_instances_with_keypoints(coco_files):
    ds = CocoKeypoints(*coco_files, train=True)
    assert len(ds) == 12  # 14 annotations, two with no labelled keypoint
    assert ds.coco is not None and len(ds.coco.getAnnIds()) == 14
    assert ds.skeleton is COCO and ds.input_size == (256, 192) and ds.heatmap_size == (64, 48)
    assert {int(r.ann_id) for r in ds.records} == {a["id"] for a in ds.coco.anns.values() if a["num_keypoints"] > 0}


def item_of(ds, ann_id):
    return ds[[r.ann_id for r in ds.records].index(ann_id)]


def test_coco_item_has_the_documented_shapes_and_meta(coco_files):
    item = item_of(CocoKeypoints(*coco_files, train=False), 442619)
    assert item["image"].shape == (3, 256, 192) and item["image"].dtype == torch.float32
    assert item["target"].shape == (17, 64, 48) and item["target_weight"].shape == (17,)
    meta = item["meta"]
    assert meta["image_id"] == 785 and meta["ann_id"] == 442619 and meta["score"] == 1.0
    assert meta["keypoints"].shape == (17, 3) and meta["rotation"] == 0.0 and meta["flipped"] is False
    # HRNet's box: [280.79, 44.73, 218.7, 346.68] -> centre of the box, height / 200 * 1.25
    np.testing.assert_allclose(meta["center"], [280.79 + 217.7 / 2, 44.73 + 345.68 / 2], atol=1e-3)
    np.testing.assert_allclose(meta["scale"][1], 345.68 / 200 * 1.25, rtol=1e-5)


def test_coco_items_collate_into_a_batch(coco_files):
    ds = CocoKeypoints(*coco_files, train=True, seed=0)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 256, 192) and batch["meta"]["center"].shape == (4, 2)


def test_coco_detections_give_one_item_per_box_above_the_threshold(coco_files, coco_sample):
    det_file = coco_sample / "person_detections_sample.json"
    ds = CocoKeypoints(*coco_files, train=False, detections=det_file)
    assert len(ds) == 118
    dets = json.loads(det_file.read_text())
    strong = CocoKeypoints(*coco_files, train=False, detections=dets, det_score_threshold=0.5)
    assert len(strong) == sum(d["score"] >= 0.5 for d in dets) < 118
    item = strong[[r.image_id for r in strong.records].index(785)]
    assert item["meta"]["ann_id"] == -1 and item["target_weight"].sum() == 0
    assert item["meta"]["score"] == pytest.approx(max(d["score"] for d in dets if d["image_id"] == 785))


def test_train_items_are_a_pure_function_of_seed_epoch_and_index(coco_files):
    a = CocoKeypoints(*coco_files, train=True, seed=3)
    b = CocoKeypoints(*coco_files, train=True, seed=3)
    assert torch.equal(a[5]["image"], b[5]["image"])
    b.set_epoch(1)
    assert not torch.equal(a[5]["image"], b[5]["image"])
    assert torch.equal(b[-1]["image"], b[11]["image"]) and torch.equal(b[-12]["target"], b[0]["target"])


# ---- the fast pipeline makes the same items as the plain one --------------------------------------------------

def plain_item(ds, index):
    """Item ``index`` made the slow, plain way of posebook at 5e45df6: imread + cvtColor every time, a numpy flip
    copy, crop(), the normalisation formula in float32, the codec's encode."""
    import cv2

    from posebook.data.topdown import augment_box
    from posebook.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, affine_points, flip_keypoints,
                                          get_affine_transform)

    record = ds.records[index]
    image = cv2.cvtColor(cv2.imread(str(record.image), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION),
                         cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng([ds.seed, ds.epoch, index])
    kp = np.asarray(record.keypoints, dtype=np.float64)
    center, scale, rotation = augment_box(kp, record.center, record.scale, ds.augment, ds.skeleton, rng, 192 / 256)
    if rng.random() < ds.augment.flip:
        image = image[:, ::-1]
        kp = flip_keypoints(kp, image.shape[1], ds.skeleton.flip_pairs)
        center = np.array([image.shape[1] - 1 - center[0], center[1]])
    patch = crop(np.ascontiguousarray(image), center, scale, rotation, (256, 192))
    joints = affine_points(kp[:, :2], get_affine_transform(center, scale, rotation, (256, 192)))
    target, weight = ds.codec.encode(joints, kp[:, 2])
    normalised = (patch.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1))), torch.from_numpy(target), \
        torch.from_numpy(weight), (center, scale, rotation)


@pytest.mark.parametrize("cache_mb", [256, 0])
def test_fast_items_are_bit_identical_to_the_plain_pipeline(coco_files, cache_mb):
    ds = CocoKeypoints(*coco_files, train=True, seed=11, image_cache_mb=cache_mb)
    flips = 0
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            image, target, weight, (center, scale, rotation) = plain_item(ds, i)
            assert torch.equal(item["image"], image) and torch.equal(item["target"], target)
            assert torch.equal(item["target_weight"], weight) and item["meta"]["rotation"] == rotation
            assert np.array_equal(item["meta"]["center"], center) and np.array_equal(item["meta"]["scale"], scale)
            flips += item["meta"]["flipped"]
    assert 0 < flips < 2 * len(ds)  # both paths exercised
    assert (len(ds.image_cache), ds.image_cache.hits) == ((4, 20) if cache_mb else (0, 0))


# ---- one home for COCO JSON, and a package that imports one way ------------------------------------------------

def test_posebook_data_modules_import_one_way():
    """Every import between posebook.data's modules (at the top or inside a function) points one way: no cycle."""
    import ast
    from pathlib import Path

    import posebook.data

    folder = Path(posebook.data.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for name in modules:
        deps = set()
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level == 1:
                    targets = [base] if base else [a.name for a in node.names]
                elif base.startswith("posebook.data."):
                    targets = [base.split(".")[2]]
                elif base == "posebook.data":
                    targets = [a.name for a in node.names]
                else:
                    targets = []
                deps |= {t for t in targets if t in modules}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] for a in node.names if a.name.startswith("posebook.data.")}
        graph[name] = deps - {name, "__init__"}
    seen, done = set(), set()

    def visit(node, path):
        if node in done:
            return
        assert node not in seen, f"import cycle in posebook.data: {' -> '.join(path + [node])}"
        seen.add(node)
        for dep in sorted(graph[node]):
            visit(dep, path + [node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert "cocofile" in graph["coco"] and "coco" not in graph["topdown"]


def test_coco_json_has_one_reader():
    import posebook.metrics
    from posebook.data import cocofile, coco, download

    assert not any(hasattr(m, "load_coco") for m in (coco, download, cocofile))
    assert download.coco_subset is cocofile.coco_subset and coco.read_coco is cocofile.read_coco
    with pytest.raises(ValueError, match=r"gt dict: annotation id 7 has no \['area'\]"):
        posebook.metrics.coco_eval({"images": [{"id": 1}], "categories": [],
                                    "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "keypoints": [],
                                                     "num_keypoints": 0, "iscrowd": 0, "bbox": [0, 0, 1, 1]}]}, [])


def test_mpii_reads_hrnets_json_with_its_center_and_scale_conventions(mpii_files):
    ds = MpiiKeypoints(*mpii_files, train=False)
    raw = json.loads(mpii_files[0].read_text())
    assert len(ds) == 5 and ds.coco is None and ds.skeleton is MPII and not ds.has_head_size
    meta = ds[0]["meta"]
    s = raw[0]["scale"]
    np.testing.assert_allclose(meta["center"], [raw[0]["center"][0] - 1, raw[0]["center"][1] + 15 * s - 1], rtol=1e-6)
    np.testing.assert_allclose(meta["scale"], [1.25 * s, 1.25 * s], rtol=1e-6)
    np.testing.assert_allclose(meta["keypoints"][:, :2], np.asarray(raw[0]["joints"]) - 1, rtol=1e-6)
    assert ds[0]["target"].shape == (16, 64, 64)
    assert ds.augment is None and MpiiKeypoints(*mpii_files, train=True).augment == Augment.hrnet_mpii()


def test_mpii_head_box_gives_head_size(mpii_files, tmp_path):
    raw = json.loads(mpii_files[0].read_text())
    for r in raw:
        r["head_box"] = [0, 0, 30, 40]
    path = tmp_path / "with_heads.json"
    path.write_text(json.dumps(raw))
    ds = MpiiKeypoints(path, mpii_files[1], train=False)
    assert ds.has_head_size and ds[1]["meta"]["head_size"] == pytest.approx(0.6 * 50)


# ---- the target peaks sit on the keypoints, in the pixels, flipped or not ------------------------------------

def dot_positions_in_crop(photo, keypoints, meta):
    """Where each labelled keypoint lands in the crop, found in the pixels: paint a dot, crop, diff, centroid."""
    if meta["flipped"]:
        photo = photo[:, ::-1]
    base = crop(np.ascontiguousarray(photo), meta["center"], meta["scale"], meta["rotation"], (256, 192)).astype(float)
    found = {}
    for k in np.nonzero(keypoints[:, 2] > 0)[0]:
        painted = photo.copy()
        x, y = keypoints[k, :2]
        if meta["flipped"]:
            x = photo.shape[1] - 1 - x
        xi, yi = int(round(x)), int(round(y))
        painted[max(yi - 2, 0):yi + 3, max(xi - 2, 0):xi + 3] = [255, 0, 255] if painted[yi, xi, 1] > 128 else 255
        diff = np.abs(crop(painted, meta["center"], meta["scale"], meta["rotation"], (256, 192)) - base).sum(-1)
        if diff.sum() > 0:
            ys, xs = np.nonzero(diff)
            found[int(k)] = np.average(np.stack([xs, ys], 1), axis=0, weights=diff[ys, xs])
    return found


def check_peaks_on_keypoints(ds, index, photo):
    item = ds[index]
    meta = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in item["meta"].items()}
    # meta describes the crop: re-cropping the (flipped) photo gives the item's image
    view = photo[:, ::-1] if meta["flipped"] else photo
    again = crop(np.ascontiguousarray(view), meta["center"], meta["scale"], meta["rotation"], (256, 192) if
                 ds.input_size == (256, 192) else ds.input_size)
    assert np.abs(denormalize(item["image"]).astype(int) - again.astype(int)).max() <= 1
    if ds.input_size != (256, 192):
        return
    peaks = get_max_preds(item["target"][None])[0][0] * 4
    swap = ds.skeleton.flip_index() if meta["flipped"] else np.arange(ds.skeleton.num_keypoints)
    checked = 0
    for k, pos in dot_positions_in_crop(photo, meta["keypoints"], meta).items():
        channel = swap[k]  # a mirrored left wrist is the right wrist of the mirrored person
        inside = (0 <= pos[0] < 192) and (0 <= pos[1] < 256)
        if not inside or item["target_weight"][channel] == 0:
            continue
        assert np.abs(peaks[channel] - pos).max() <= 2.6, (k, peaks[channel], pos)
        checked += 1
    return checked


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_coco_target_peaks_sit_on_the_keypoints_in_the_pixels(coco_files, flip):
    ds = CocoKeypoints(*coco_files, train=True, seed=7, augment=Augment(flip=flip, half_body=0.0))
    checked = 0
    for i in (0, 3, 8):
        record = ds.records[i]
        item_flipped = ds[i]["meta"]["flipped"]
        assert item_flipped == bool(flip)
        checked += check_peaks_on_keypoints(ds, i, load_image(record.image))
    assert checked >= 30


def test_mpii_target_peaks_sit_on_the_keypoints_in_the_pixels(mpii_files):
    ds = MpiiKeypoints(*mpii_files, train=True, seed=2, input_size=(256, 192), heatmap_size=(64, 48),
                       augment=Augment(flip=1.0))
    checked = sum(check_peaks_on_keypoints(ds, i, load_image(ds.records[i].image)) for i in range(2))
    assert checked >= 16


# ---- malformed input names the file and the annotation ------------------------------------------------------

@pytest.fixture
def broken_coco(coco_files, tmp_path):
    """A writable copy of the COCO sample; the test edits the json, then builds the dataset."""
    data = json.loads(coco_files[0].read_text())
    images = tmp_path / "images"
    shutil.copytree(coco_files[1], images)

    def build(edit):
        edit(data)
        path = tmp_path / "broken.json"
        path.write_text(json.dumps(data))
        return lambda: item_of(CocoKeypoints(path, images, train=True), 442619)

    return build, images


def first_annotation(data):
    return data["annotations"][0]


@pytest.mark.parametrize("edit,message", [
    (lambda d: first_annotation(d).pop("bbox"), r"annotation id 442619: missing field\(s\) \['bbox'\]"),
    (lambda d: first_annotation(d).update(keypoints=[1, 2, 2] * 16), "annotation id 442619: expected 17 keypoints"),
    (lambda d: first_annotation(d).update(keypoints=[1, 2, 2] * 16 + [1, 2]), "annotation id 442619: keypoints has 50"),
    (lambda d: first_annotation(d).update(bbox=[10, "a", 5, 50]), r"annotation id 442619: bbox must be \[x, y, w, h\]"),
    (lambda d: first_annotation(d).update(bbox=[10, 10, 50]), r"annotation id 442619: bbox must be \[x, y, w, h\]"),
    (lambda d: first_annotation(d).update(area="big"), "annotation id 442619: area must be a number"),
    (lambda d: first_annotation(d).update(image_id=999), "annotation id 442619 refers to image_id 999, which is not"),
    (lambda d: d.pop("categories"), r"missing top-level keys \['categories'\]"),
])
def test_malformed_coco_annotations_raise_errors_naming_file_and_annotation(broken_coco, edit, message):
    build, _ = broken_coco
    with pytest.raises(ValueError, match=message) as info:
        build(edit)()
    assert "broken.json" in str(info.value)


@pytest.mark.parametrize("edit, reason", [
    (lambda a: a.update(bbox=[10, 10, 0, 50]), "empty_box"),  # zero width
    (lambda a: a.update(bbox=[700, 10, 50, 50]), "empty_box"),  # right of the 640 px wide image
    (lambda a: a.update(bbox=[10, 10, -5, 50]), "empty_box"),
    (lambda a: a.update(area=0), "zero_area"),
    (lambda a: a.update(iscrowd=1), "crowd"),
    (lambda a: a.update(category_id=2), "not_person"),
    (lambda a: a.update(keypoints=[0] * 51), "no_keypoints"),
])
def test_degenerate_annotations_are_skipped_as_hrnet_does_and_counted(coco_files, edit, reason):
    data = json.loads(coco_files[0].read_text())
    edit(first_annotation(data))
    ds = CocoKeypoints(data, coco_files[1], train=True, seed=0)
    expected = {"not_person": 0, "crowd": 0, "empty_box": 0, "zero_area": 0, "no_keypoints": 2}
    expected[reason] += 1
    assert ds.skipped == expected and len(ds) == 11
    assert 442619 not in {r.ann_id for r in ds.records}


def test_the_sample_skips_its_two_people_without_keypoints_and_detections_count_what_they_drop(coco_files):
    ds = CocoKeypoints(*coco_files, train=False)
    assert ds.skipped == {"not_person": 0, "crowd": 0, "empty_box": 0, "zero_area": 0, "no_keypoints": 2}
    dets = [{"image_id": 785, "bbox": [1, 1, 50, 80], "score": 0.9},
            {"image_id": 785, "bbox": [1, 1, 0, 80], "score": 1},  # empty
            {"image_id": 785, "bbox": [1, 1, 5, 5], "score": 0.1},  # below the threshold
            {"image_id": 785, "bbox": [1, 1, 5, 5], "score": 1, "category_id": 3}]  # not a person
    det = CocoKeypoints(*coco_files, train=False, detections=dets, det_score_threshold=0.5)
    assert len(det) == 1 and det.skipped == {"not_person": 1, "low_score": 1, "empty_box": 1}


def test_missing_and_corrupt_images_are_named_with_the_annotation(broken_coco):
    build, images = broken_coco
    (images / "000000000785.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"000000000785.jpg is corrupt.*annotation id 442619"):
        build(lambda d: None)()
    (images / "000000000785.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"annotation id 442619: image .*000000000785.jpg does not exist"):
        build(lambda d: None)()


def test_malformed_mpii_records_raise_errors_naming_file_and_record(mpii_files, tmp_path):
    raw = json.loads(mpii_files[0].read_text())
    raw[2]["joints"] = raw[2]["joints"][:15]
    path = tmp_path / "bad_mpii.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"bad_mpii.json, record 2: expected joints \(16, 2\)"):
        MpiiKeypoints(path, mpii_files[1], train=True)


def test_malformed_detections_name_the_detection(coco_files):
    with pytest.raises(ValueError, match=r"detection 1: missing field\(s\) \['score'\]"):
        CocoKeypoints(*coco_files, train=False, detections=[{"image_id": 785, "bbox": [1, 1, 5, 5], "score": 1},
                                                            {"image_id": 785, "bbox": [1, 1, 5, 5]}])


def test_boxes_are_clipped_to_the_image_as_hrnet_does():
    from posebook.data.transforms import clip_box

    np.testing.assert_allclose(clip_box([0.5, 43.74, 90.1, 220.09], 640, 392), [0.5, 43.74, 89.1, 219.09])
    np.testing.assert_allclose(clip_box([600, 300, 100, 200], 640, 392), [600, 300, 39, 91])
    assert clip_box([700, 10, 50, 50], 640, 392) is None  # entirely right of the image


def test_coco_image_reads_the_whole_photo_from_disk_or_memory(coco_files):
    ds = CocoKeypoints(*coco_files, train=False)
    image_id = sorted(ds.coco.imgs)[0]
    info = ds.coco.imgs[image_id]
    image = ds.image(image_id)
    assert image.shape == (info["height"], info["width"], 3) and image.dtype == np.uint8
    assert np.array_equal(image, load_image(coco_files[1] / info["file_name"]))
    pixels = {i: ds.image(i) for i in ds.coco.imgs}
    in_memory = CocoKeypoints(json.loads(coco_files[0].read_text()), pixels, train=False)
    assert in_memory.image(image_id) is pixels[image_id]
    with pytest.raises(ValueError, match="image id 123456789 is not in the 'images' list"):
        ds.image(123456789)


def test_downloaded_coco_reads_the_layout_of_download_coco_or_says_none(coco_files, tmp_path):
    from posebook.data import downloaded_coco

    assert downloaded_coco(tmp_path, "val2017", train=False) is None
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").symlink_to(coco_files[1], target_is_directory=True)
    ann_file = tmp_path / "annotations" / "person_keypoints_val2017_subset.json"
    shutil.copy(coco_files[0], ann_file)
    every = downloaded_coco(tmp_path, "val2017", train=False)
    assert len(every) == 12 and len(every.coco.imgs) == 4
    two = downloaded_coco(tmp_path, "val2017", train=False, num_images=2, input_size=(128, 96), heatmap_size=(32, 24))
    assert len(two.coco.imgs) == 2 and two.input_size == (128, 96) and set(two.coco.imgs) < set(every.coco.imgs)
    assert len(downloaded_coco(tmp_path, "val2017", train=False, num_images=99).coco.imgs) == 4  # all there are
    train = downloaded_coco(tmp_path, "val2017", train=True, seed=3)
    assert train.seed == 3 and train.train
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["bbox"] = [1, 2]
    ann_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{ann_file}, annotation id {data['annotations'][0]['id']}"):
        downloaded_coco(tmp_path, "val2017", train=False)


def test_downloaded_coco_splits_needs_both_splits(coco_files, tmp_path):
    from posebook.data import downloaded_coco_splits

    (tmp_path / "annotations").mkdir()
    (tmp_path / "train2017").symlink_to(coco_files[1], target_is_directory=True)
    shutil.copy(coco_files[0], tmp_path / "annotations" / "person_keypoints_train2017_subset.json")
    assert downloaded_coco_splits(tmp_path, val_images=2) is None  # no val2017 yet
    (tmp_path / "val2017").symlink_to(coco_files[1], target_is_directory=True)
    shutil.copy(coco_files[0], tmp_path / "annotations" / "person_keypoints_val2017_subset.json")
    train, val = downloaded_coco_splits(tmp_path, val_images=2, input_size=(128, 96), heatmap_size=(32, 24))
    assert train.train and train.seed == 0 and len(train) == 12
    assert not val.train and len(val.coco.imgs) == 2 and val.input_size == (128, 96)
