"""posebook.inference: top-down prediction, HRNet's flip test and evaluation, driven by a ground-truth oracle."""
import json

import numpy as np
import pytest
import torch

from posebook import inference, metrics
from posebook.data.transforms import affine_points, get_affine_transform
from posebook.keypoints import COCO


def _codec(unbiased=True, input_size=(256, 192), heatmap_size=(64, 48)):
    from posebook.codecs import GaussianHeatmap

    return GaussianHeatmap(input_size, heatmap_size, sigma=2.0, unbiased=unbiased)


class Oracle(torch.nn.Module):
    """A 'perfect network': for each crop it knows, it returns the Gaussian heatmaps of the true keypoints.

    A mirrored crop gets the heatmaps of the mirrored keypoints (x -> W - 1 - x, left/right swapped), which is what
    a perfect network would see on the flipped input; that is exactly what HRNet's flip test has to undo.
    """

    def __init__(self, codec):
        super().__init__()
        self.codec = codec
        self.known: dict[bytes, torch.Tensor] = {}
        self.calls = 0

    def learn(self, crop: torch.Tensor, keypoints_in_crop: np.ndarray):
        width = self.codec.input_size[1]
        self.known[crop.numpy().tobytes()] = self._render(keypoints_in_crop)
        mirrored = keypoints_in_crop.copy()
        mirrored[:, 0] = width - 1 - mirrored[:, 0]
        mirrored = mirrored[COCO.flip_index()]
        self.known[torch.flip(crop, dims=[-1]).numpy().tobytes()] = self._render(mirrored)

    def _render(self, kp):
        heatmaps, _ = self.codec.encode(kp[:, :2], kp[:, 2])
        return torch.from_numpy(heatmaps)

    def predict(self, x):
        self.calls += 1
        return torch.stack([self.known[crop.cpu().numpy().tobytes()] for crop in x])


def _oracle_for(dataset, codec, pick=None):
    """An oracle that knows every crop of `dataset`; `pick(meta)` gives the true image keypoints of a crop."""
    oracle = Oracle(codec)
    for i in range(len(dataset)):
        item = dataset[i]
        meta = item["meta"]
        kp = np.asarray(meta["keypoints"], float) if pick is None else pick(meta)
        to_crop = get_affine_transform(meta["center"], meta["scale"], 0.0, dataset.input_size)
        oracle.learn(item["image"], np.c_[affine_points(kp[:, :2], to_crop), kp[:, 2]])
    return oracle


@pytest.fixture(scope="module")
def coco_gt_boxes(coco_sample):
    from posebook.data import CocoKeypoints

    return CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=False,
                         codec=_codec())


@pytest.fixture(scope="module")
def oracle(coco_gt_boxes):
    return _oracle_for(coco_gt_boxes, _codec())


def test_to_image_inverts_the_crop_transform_even_when_rotated():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 400, (3, 17, 2))
    centers, scales, rotations = rng.uniform(100, 300, (3, 2)), rng.uniform(0.5, 2, (3, 2)), np.array([0, 30, -45])
    in_crop = np.stack([affine_points(p, get_affine_transform(c, s, r, (256, 192)))
                        for p, c, s, r in zip(points, centers, scales, rotations)])
    back = inference.to_image(in_crop, centers, scales, (256, 192), rotations)
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_flip_test_runs_the_model_on_the_mirrored_input_and_averages():
    class Ramp(torch.nn.Module):
        def predict(self, x):  # heatmaps that are a fixed function of the input's pixels
            return x[:, :1].repeat(1, 17, 1, 1)[..., ::4, ::4] * torch.arange(1.0, 18)[None, :, None, None]

    x = torch.randn(2, 3, 16, 12)
    model = Ramp()
    plain = model.predict(x)
    mirrored = model.predict(torch.flip(x, dims=[-1]))
    assert torch.equal(inference.predict_heatmaps(model, x), plain)
    expect = plain.clone()
    # flipped back by hand: columns reversed, left/right channels swapped, then shifted one column right
    back = torch.flip(mirrored, dims=[-1])[:, COCO.flip_index()]
    back[..., 1:] = back[..., :-1].clone()
    torch.testing.assert_close(inference.predict_heatmaps(model, x, COCO.flip_pairs), 0.5 * (expect + back))


def test_the_one_column_shift_reduces_the_flip_test_error(coco_gt_boxes, oracle):
    """A perfect network's mirrored heatmaps are 0.75 heatmap px off after flip-back; the shift leaves 0.25."""
    calls = oracle.calls
    item = coco_gt_boxes[0]
    images, meta = item["image"][None], item["meta"]
    truth = np.asarray(meta["keypoints"], float)
    labelled = truth[:, 2] > 0

    def error(**kw):
        kp = inference.predict_crops(oracle, images, [meta["center"]], [meta["scale"]], _codec(), **kw)[0]
        return np.abs(kp[labelled, 0] - truth[labelled, 0]).mean()

    plain, shifted, unshifted = error(), error(flip_pairs=COCO.flip_pairs), error(flip_pairs=COCO.flip_pairs,
                                                                                 shift=False)
    assert plain < 0.05
    assert shifted < unshifted
    assert oracle.calls - calls == 5


def _blur_truth_and_crop():
    """A perfect model of a BlurHeatmap codec, one crop, and its true keypoints (crop px) at heatmap cell centres."""
    from posebook.codecs import BlurHeatmap

    codec = BlurHeatmap(kernel=7, decode_kernel=21)
    rng = np.random.default_rng(7)
    cells = np.stack([rng.integers(2, 46, 17), rng.integers(2, 62, 17)], 1)
    truth = np.c_[cells * 4 + 2.0, np.full(17, 2.0)]  # x = 4c + 2: what a perfect blob decodes to
    crop = torch.from_numpy(rng.standard_normal((3, 256, 192)).astype(np.float32))
    oracle = Oracle(codec)
    oracle.learn(crop, truth)
    return codec, oracle, crop[None], truth


def test_blur_codec_flip_test_lands_on_the_truth_without_hrnets_shift():
    """CPN/MSPN targets: a flipped-back ideal map equals the plain one (no shift); HRNet's shift moves it a column."""
    codec, oracle, images, truth = _blur_truth_and_crop()
    center, scale = [96.0, 128.0], [192 / 200, 256 / 200]  # the identity crop: image px = crop px
    expected = inference.to_image(truth[None, :, :2], [center], [scale], (256, 192))[0]

    def predict(**kw):
        return inference.predict_crops(oracle, images, [center], [scale], codec, **kw)[0][:, :2]

    plain = predict()
    # the decoder's own quarter step toward one of the tied neighbours of a perfect blob: 1 input px at most
    assert np.linalg.norm(plain - expected, axis=1).max() <= 1 + 1e-6
    # the codec's convention, no shift: the flipped-back maps are the plain ones, and so is the decode
    np.testing.assert_allclose(predict(flip_pairs=COCO.flip_pairs), plain, atol=1e-6)
    np.testing.assert_allclose(predict(flip_pairs=COCO.flip_pairs, shift=False), plain, atol=1e-6)
    # HRNet's shift forced onto the blur codec: 3 input px (0.75 heatmap px) to the right for most joints
    shifted = predict(flip_pairs=COCO.flip_pairs, shift=True)[:, 0] - expected[:, 0]
    assert shifted.min() >= 1 - 1e-6 and shifted.mean() > 2.5


def test_predict_dataset_and_evaluate_take_the_flip_shift_from_the_codec(coco_sample):
    from posebook.codecs import BlurHeatmap
    from posebook.data import CocoKeypoints

    codec = BlurHeatmap(kernel=7, decode_kernel=21)
    dataset = CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=False,
                            codec=codec)
    oracle = _oracle_for(dataset, codec)

    def error(**kw):
        pred = inference.predict_dataset(oracle, dataset, batch_size=8, progress=False, **kw)
        labelled = pred["gt"][..., 2] > 0
        return np.abs(pred["keypoints"][..., 0] - pred["gt"][..., 0])[labelled].mean()

    assert error() < error(shift=True)
    assert error() == pytest.approx(error(shift=False))
    assert (inference.evaluate(oracle, dataset, batch_size=8, progress=False)["AP"]
            >= inference.evaluate(oracle, dataset, batch_size=8, progress=False, shift=True)["AP"])


def test_a_codec_without_a_flip_convention_needs_an_explicit_shift():
    class Bare:
        input_size = (256, 192)

    with pytest.raises(ValueError, match="Bare declares no flip_shift"):
        inference.flip_shift_of(Bare())
    assert inference.flip_shift_of(Bare(), shift=False) is False


def test_ground_truth_oracle_scores_ap_1_on_the_real_coco_sample(coco_gt_boxes, oracle):
    stats = inference.evaluate(oracle, coco_gt_boxes, flip_test=False, batch_size=5, progress=False)
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["PCK@0.2"] == pytest.approx(1.0)
    flipped = inference.evaluate(oracle, coco_gt_boxes, flip_test=True, batch_size=5, progress=False)
    assert flipped["AP"] > 0.95


def test_evaluate_equals_coco_eval_of_the_results_it_builds(coco_gt_boxes, oracle, coco_sample):
    noisy = Oracle(oracle.codec)
    rng = np.random.default_rng(1)
    noisy.known = {k: v + 1.5 * torch.from_numpy(rng.uniform(0, 1, v.shape).astype(np.float32))
                   for k, v in oracle.known.items()}
    predictions = inference.predict_dataset(noisy, coco_gt_boxes, flip_test=True, batch_size=4, progress=False)
    assert predictions["keypoints"].shape == (len(coco_gt_boxes), 17, 3)
    results = inference.coco_results(predictions, nms=False)
    want = metrics.coco_eval(coco_sample / "person_keypoints_sample.json", results)
    got = inference.evaluate(noisy, coco_gt_boxes, flip_test=True, batch_size=4, progress=False)
    assert {k: got[k] for k in metrics.STAT_NAMES} == want
    assert 0 < got["AP"] < 1


def test_detector_boxes_get_rescored_and_oks_nms_removes_duplicates(coco_sample):
    from posebook.data import CocoKeypoints

    gt = json.loads((coco_sample / "person_keypoints_sample.json").read_text())
    people = [a for a in gt["annotations"] if a["num_keypoints"] > 0]
    dataset = CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=False,
                            codec=_codec(), detections=coco_sample / "person_detections_sample.json",
                            det_score_threshold=0.3)

    def nearest_person(meta):  # the person whose box centre is nearest the detection's
        same = [a for a in people if a["image_id"] == int(meta["image_id"])]
        centres = np.array([[a["bbox"][0] + a["bbox"][2] / 2, a["bbox"][1] + a["bbox"][3] / 2] for a in same])
        best = same[int(np.argmin(np.linalg.norm(centres - meta["center"], axis=1)))]
        return np.asarray(best["keypoints"], float).reshape(17, 3)

    oracle = _oracle_for(dataset, _codec(), nearest_person)
    predictions = inference.predict_dataset(oracle, dataset, flip_test=False, batch_size=8, progress=False)
    assert np.all(predictions["ann_id"] == -1)
    kept = inference.coco_results(predictions, nms=True)
    everything = inference.coco_results(predictions, nms=False)
    assert len(people) <= len(kept) < len(everything) == len(dataset)
    stats = inference.evaluate(oracle, dataset, flip_test=False, batch_size=8, progress=False)
    # duplicates of a found person come after it in score order, so they cost AP only at full recall
    assert stats["AP"] >= metrics.coco_eval(gt, everything)["AP"] and stats["AP"] > 0.95
    for image_id in {r["image_id"] for r in kept}:
        poses = [np.reshape(r["keypoints"], (17, 3)) for r in kept if r["image_id"] == image_id]
        areas = [np.ptp(p[:, 0]) * np.ptp(p[:, 1]) for p in poses]
        for i, pose in enumerate(poses[:-1]):
            assert np.all(metrics.oks_iou(pose, poses[i + 1:], areas[i], areas[i + 1:]) <= 0.95)
    assert np.isnan(stats["PCK@0.2"])


def test_predict_image_finds_the_people_of_a_real_photo(coco_gt_boxes, oracle, coco_sample):
    from posebook.data import load_image

    oracle = _oracle_for(coco_gt_boxes, _codec())
    gt = json.loads((coco_sample / "person_keypoints_sample.json").read_text())
    ann = next(a for a in gt["annotations"] if a["image_id"] == 785)
    image = load_image(coco_sample / "images" / "000000000785.jpg")
    from posebook.data import clip_box

    box = clip_box(ann["bbox"], image.shape[1], image.shape[0])  # the box the dataset cropped, so the oracle knows it
    poses = inference.predict_image(oracle, image, [box], _codec(), flip_test=False)
    truth = np.asarray(ann["keypoints"], float).reshape(17, 3)
    assert poses.shape == (1, 17, 3)
    np.testing.assert_allclose(poses[0, :, :2], truth[:, :2], atol=0.1)
    assert inference.predict_image(oracle, image, np.zeros((0, 4)), _codec()).shape == (0, 17, 3)


def test_ground_truth_oracle_scores_ap_1_on_a_synthetic_validation_set():
    from posebook.data import SyntheticTopDown

    dataset = SyntheticTopDown.validation(3, seed=11, codec=_codec())
    oracle = _oracle_for(dataset, _codec())
    stats = inference.evaluate(oracle, dataset, flip_test=False, batch_size=4, progress=False)
    assert stats["AP"] == pytest.approx(1.0) and stats["PCK@0.2"] == pytest.approx(1.0)


def test_crops_of_another_size_than_the_codecs_are_refused():
    with pytest.raises(ValueError, match=r"crops are \(128, 96\).*\(256, 192\)"):
        inference.predict_crops(Oracle(_codec()), torch.zeros(1, 3, 128, 96), [[0, 0]], [[1, 1]], _codec())
