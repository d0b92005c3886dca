"""posebook.metrics: OKS and COCO AP agree with pycocotools; PCK/PCKh, rescoring and OKS-NMS follow HRNet's code."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest

from posebook import metrics
from posebook.keypoints import COCO_SIGMAS, MPII


def _load(coco_sample):
    return json.loads((coco_sample / "person_keypoints_sample.json").read_text())


def _gt_as_results(data, rng=None, noise=0.0, score=None):
    """One detection per GT person with labelled keypoints, optionally jittered by `noise` x sqrt(area) px."""
    rng = rng or np.random.default_rng(0)
    out = []
    for ann in data["annotations"]:
        if ann["num_keypoints"] == 0:
            continue
        kp = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, noise * np.sqrt(ann["area"]), (len(kp), 2))
        kp[:, 2] = 1.0
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(),
                    "score": float(rng.uniform(0.1, 1) if score is None else score)})
    return out


def _pycocotools_stats(data, results, sigmas=None):
    """pycocotools run the plain way (printing silenced), on private copies."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(data)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _random_people(rng, n, k=17, labelled=0.7):
    xy = rng.uniform(0, 300, (n, k, 2))
    v = np.where(rng.uniform(size=(n, k)) < labelled, rng.integers(1, 3, (n, k)), 0)
    return np.concatenate([xy, v[..., None]], -1)


# ---- OKS ------------------------------------------------------------------------------------------------------

def _assert_oks_equals_computeOks(data, seed):
    rng = np.random.default_rng(seed)
    # near and far guesses, so some pairs are across people
    results = _gt_as_results(data, rng, noise=0.05) + _gt_as_results(data, rng, noise=0.3)
    ev = _pycocotools_stats(data, results)
    checked = 0
    for (img_id, cat_id), ious in ev.ious.items():
        if len(ious) == 0:
            continue
        gts = ev._gts[img_id, cat_id]
        dts = sorted(ev._dts[img_id, cat_id], key=lambda d: -d["score"])
        got = metrics.oks([d["keypoints"] for d in dts], [g["keypoints"] for g in gts],
                          [g["area"] for g in gts], gt_boxes=[g["bbox"] for g in gts])
        np.testing.assert_allclose(got, ious, rtol=0, atol=1e-12)
        checked += got.size
    return checked


def test_oks_equals_pycocotools_computeOks_on_the_real_coco_sample(coco_sample):
    assert _assert_oks_equals_computeOks(_load(coco_sample), seed=1) > 40


@pytest.fixture(scope="module")
def synthetic_coco():
    synthetic = pytest.importorskip("posebook.data.synthetic", reason="posebook.data.synthetic not written yet")
    data, _images = synthetic.make_coco(num_images=5, seed=0, image_size=(160, 160))
    return data


def test_oks_equals_pycocotools_computeOks_on_synthetic_scenes(synthetic_coco):
    assert _assert_oks_equals_computeOks(synthetic_coco, seed=7) > 10


def test_oks_handles_unlabelled_keypoints_and_unlabelled_people_like_pycocotools():
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(2)
    gt = _random_people(rng, 4)
    gt[1, :, 2] = 0  # a person with no labelled keypoint: the 2x-box rule
    gt[2, :5, 2] = 0
    dt = _random_people(rng, 6)
    dt[0] = gt[0]
    area = rng.uniform(500, 20000, 4)
    boxes = np.c_[rng.uniform(0, 200, (4, 2)), rng.uniform(20, 100, (4, 2))]
    ev = COCOeval(iouType="keypoints")
    ev._gts[1, 1] = [{"keypoints": g.ravel().tolist(), "area": a, "bbox": b.tolist()}
                     for g, a, b in zip(gt, area, boxes)]
    ev._dts[1, 1] = [{"keypoints": d.ravel().tolist(), "score": 1 - i / 10} for i, d in enumerate(dt)]
    want = ev.computeOks(1, 1)
    got = metrics.oks(dt, gt, area, gt_boxes=boxes)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[0, 0] == pytest.approx(1.0)


def test_oks_without_boxes_names_the_unlabelled_person():
    gt = np.zeros((2, 17, 3))
    gt[0, :, 2] = 2
    with pytest.raises(ValueError, match=r"\[1\].*gt_boxes"):
        metrics.oks(np.zeros((1, 17, 2)), gt, [100.0, 100.0])


def test_oks_is_exp_of_minus_d2_over_2_s2_k2_for_one_keypoint():
    gt = np.zeros((1, 17, 3))
    gt[0, 9] = [50, 50, 2]  # left wrist only
    dt = np.zeros((1, 17, 2))
    dt[0, 9] = [53, 54]
    area = 900.0
    k = 2 * COCO_SIGMAS[9]
    assert metrics.oks(dt, gt, [area])[0, 0] == pytest.approx(np.exp(-25 / (2 * area * k**2)), rel=1e-12)


def test_oks_rejects_mismatched_keypoint_counts_and_sigmas():
    with pytest.raises(ValueError, match="keypoints per person"):
        metrics.oks(np.zeros((1, 16, 2)), np.ones((1, 17, 3)), [1.0])
    with pytest.raises(ValueError, match="sigmas"):
        metrics.oks(np.zeros((1, 16, 2)), np.ones((1, 16, 3)), [1.0])


# ---- COCO AP ----------------------------------------------------------------------------------------------------

def test_ground_truth_as_predictions_gives_ap_1_on_the_real_coco_sample(coco_sample):
    stats = metrics.coco_eval(coco_sample / "person_keypoints_sample.json", _gt_as_results(_load(coco_sample)))
    assert set(stats) == set(metrics.STAT_NAMES)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)


@pytest.mark.parametrize("noise", [0.02, 0.06, 0.15])
def test_coco_eval_equals_pycocotools_on_perturbed_predictions(coco_sample, noise):
    data = _load(coco_sample)
    results = _gt_as_results(data, np.random.default_rng(3), noise=noise)
    want = _pycocotools_stats(data, results).stats
    got = metrics.coco_eval(data, results)
    np.testing.assert_allclose([got[n] for n in metrics.STAT_NAMES], want, rtol=0, atol=1e-9)
    assert 0 < got["AP"] < 1


def test_coco_eval_leaves_the_callers_dict_and_detections_untouched(coco_sample):
    data = _load(coco_sample)
    results = _gt_as_results(data, noise=0.05)
    before = copy.deepcopy((data, results))
    metrics.coco_eval(data, results)
    assert (data, results) == before


def test_coco_eval_accepts_a_pycocotools_coco_object(coco_sample):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_sample / "person_keypoints_sample.json"))
    results = _gt_as_results(_load(coco_sample), noise=0.05)
    assert metrics.coco_eval(gt, results) == metrics.coco_eval(_load(coco_sample), results)
    assert all("ignore" not in ann for ann in gt.dataset["annotations"])


def test_coco_eval_of_no_detections_is_zero(coco_sample):
    assert metrics.coco_eval(_load(coco_sample), []) == {n: 0.0 for n in metrics.STAT_NAMES}


def test_coco_eval_prints_nothing(coco_sample, capsys):
    metrics.coco_eval(coco_sample / "person_keypoints_sample.json", _gt_as_results(_load(coco_sample)))
    assert capsys.readouterr().out == ""


def test_coco_eval_names_a_bad_detection(coco_sample):
    data = _load(coco_sample)
    results = _gt_as_results(data)
    results[2]["keypoints"] = results[2]["keypoints"][:-3]
    with pytest.raises(ValueError, match="detection 2: expected 51"):
        metrics.coco_eval(data, results)
    with pytest.raises(ValueError, match="image_id 7"):
        metrics.coco_eval(data, [dict(results[0], image_id=7)])


def _mpii_like_coco(rng, people=12, k=16):
    """A COCO-format set with K = 16 keypoints, to exercise custom sigmas."""
    images = [{"id": i, "width": 400, "height": 400, "file_name": f"{i}.jpg"} for i in range(3)]
    anns = []
    for i in range(people):
        kp = _random_people(rng, 1, k, labelled=0.9)[0]
        anns.append({"id": i + 1, "image_id": i % 3, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 300, 300],
                     "area": float(rng.uniform(2000, 30000)), "keypoints": kp.ravel().tolist(),
                     "num_keypoints": int((kp[:, 2] > 0).sum())})
    cat = {"id": 1, "name": "person", "keypoints": list(MPII.names), "skeleton": []}
    return {"images": images, "annotations": anns, "categories": [cat]}


def test_coco_eval_with_16_keypoints_needs_sigmas_and_then_matches_pycocotools():
    rng = np.random.default_rng(4)
    data = _mpii_like_coco(rng)
    results = _gt_as_results(data, rng, noise=0.04)
    with pytest.raises(ValueError, match="16 keypoints.*sigmas"):
        metrics.coco_eval(data, results)
    sigmas = np.full(16, 0.07)
    got = metrics.coco_eval(data, results, sigmas=sigmas)
    want = _pycocotools_stats(data, results, sigmas).stats
    np.testing.assert_allclose([got[n] for n in metrics.STAT_NAMES], want, rtol=0, atol=1e-9)


def test_coco_eval_matches_pycocotools_on_synthetic_scenes(synthetic_coco):
    data = synthetic_coco
    results = _gt_as_results(data, np.random.default_rng(5), noise=0.05)
    want = _pycocotools_stats(data, results).stats
    got = metrics.coco_eval(data, results)
    np.testing.assert_allclose([got[n] for n in metrics.STAT_NAMES], want, rtol=0, atol=1e-9)
    assert metrics.coco_eval(data, _gt_as_results(data))["AP"] == pytest.approx(1.0)


# ---- PCK / PCKh ---------------------------------------------------------------------------------------------------

def test_pck_counts_only_visible_joints_and_weights_the_mean_by_their_counts():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, 0] = [3, 4]  # error 5: correct at thr 0.5 x norm 10 (5 <= 5), wrong at 0.4
    pred[1, 1] = [0, 20]  # error 20, but invisible
    pred[1, 2] = [6, 8]  # error 10 > 5
    visible = np.array([[1, 1, 1], [1, 0, 1]])
    per_joint, mean = metrics.pck(pred, gt, visible, norm=[10, 10], thr=0.5)
    np.testing.assert_allclose(per_joint, [1.0, 1.0, 0.5])
    assert mean == pytest.approx(4 / 5)  # 4 correct of 5 visible, not the mean of per-joint values
    assert metrics.pck(pred, gt, visible, [10, 10], thr=0.4)[0][0] == 0.5


def test_pck_gives_nan_for_a_joint_never_visible_and_rejects_bad_shapes():
    per_joint, mean = metrics.pck(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), [[1, 0]], [1.0], 0.5)
    assert per_joint[0] == 1 and np.isnan(per_joint[1]) and mean == 1
    with pytest.raises(ValueError, match="visible"):
        metrics.pck(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), [[1, 0, 1]], [1.0], 0.5)
    with pytest.raises(ValueError, match="norm"):
        metrics.pck(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), [[1, 1]], [0.0], 0.5)


def test_head_size_is_0_6_of_the_head_box_diagonal():
    assert metrics.head_size([[10, 20, 40, 60]])[0] == pytest.approx(0.6 * 50)


def test_pckh_leaves_pelvis_and_thorax_out_of_the_mean():
    gt = np.zeros((1, 16, 2))
    pred = gt.copy()
    pred[0, [MPII.index("pelvis"), MPII.index("thorax")]] = 100  # wrong, but not counted in the mean
    per_joint, mean = metrics.pckh(pred, gt, np.ones((1, 16)), metrics.head_size([[0, 0, 30, 40]]))
    assert mean == 1.0 and per_joint[MPII.index("pelvis")] == 0


def test_head_size_from_joints_on_the_real_mpii_sample(mpii_sample):
    people = json.loads((mpii_sample / "annotations_sample.json").read_text())
    joints = np.array([p["joints"] for p in people])
    sizes = metrics.head_size_from_joints(joints)
    assert sizes.shape == (5,) and np.all(sizes > 10)
    # a person's head is far shorter than the person (scale x 200 px is about the person's height)
    assert np.all(sizes < np.array([p["scale"] for p in people]) * 200 / 2)


# ---- rescoring and OKS-NMS -----------------------------------------------------------------------------------

def test_rescore_multiplies_box_score_by_mean_confident_keypoint_score():
    scores = np.array([[0.9, 0.1, 0.5, 0.3], [0.1, 0.1, 0.2, 0.0]])
    np.testing.assert_allclose(metrics.rescore([0.8, 0.9], scores), [0.8 * (0.9 + 0.5 + 0.3) / 3, 0.0])


def _hrnet_style_nms(poses, scores, areas, thr, in_vis_thre=None):
    """The greedy loop written pair by pair, as the HRNet code does it (one pose against each other)."""
    variances = (COCO_SIGMAS * 2) ** 2
    order = list(np.argsort(scores)[::-1])
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        survivors = []
        for j in order:
            d2 = ((poses[j, :, :2] - poses[i, :, :2]) ** 2).sum(-1)
            e = d2 / variances / ((areas[i] + areas[j]) / 2 + np.spacing(1)) / 2
            if in_vis_thre is not None:
                e = e[poses[j, :, 2] > in_vis_thre]
            sim = np.exp(-e).sum() / len(e) if len(e) else 0.0
            if sim <= thr:
                survivors.append(j)
        order = survivors
    return keep


@pytest.mark.parametrize("in_vis_thre", [None, 0.2])
def test_oks_nms_equals_the_pairwise_loop_and_removes_duplicates(in_vis_thre):
    rng = np.random.default_rng(6)
    people = _random_people(rng, 5, labelled=1.0)
    people[..., 2] = rng.uniform(0, 1, (5, 17))
    dupes = people[[0, 0, 2, 3]].copy()
    dupes[..., :2] += rng.normal(0, 1.0, dupes[..., :2].shape)
    poses = np.concatenate([people, dupes])
    scores = rng.uniform(0, 1, len(poses))
    areas = np.full(len(poses), 40000.0)
    keep = metrics.oks_nms(poses, scores, areas, 0.9, in_vis_thre=in_vis_thre)
    assert keep == _hrnet_style_nms(poses, scores, areas, 0.9, in_vis_thre)
    assert len(keep) == 5
    assert metrics.oks_nms(np.zeros((0, 17, 3)), [], []) == []


def _two_people():
    rng = np.random.default_rng(0)
    gt = np.zeros((2, 17, 3))
    gt[0, :, :2] = rng.uniform(100, 200, (17, 2))
    gt[1, :, :2] = gt[0, :, :2] + 400  # far away, in the same image
    gt[..., 2] = 2
    return gt, np.array([5000.0, 5000.0])


def test_keypoint_errors_sorts_each_prediction_into_ronchi_peronas_kinds():
    from posebook.keypoints import COCO
    from posebook.metrics import ERROR_KINDS, keypoint_errors

    gt, area = _two_people()
    gt[0, 16, 2] = 0  # right ankle unlabelled
    pred = gt[..., :2].copy()
    flip = COCO.flip_index()
    sigma = COCO_SIGMAS[5] * 2
    ks_target = 0.7  # jitter: move the left shoulder so that its OKS term is 0.7
    pred[0, 5, 0] += np.sqrt(-2 * area[0] * sigma ** 2 * np.log(ks_target))
    pred[0, 7] = gt[0, flip[7], :2]  # left elbow placed on the right elbow: inversion
    pred[0, 9] = gt[1, 9, :2]  # left wrist on the other person's left wrist: swap
    pred[0, 11] += 300  # left hip nowhere near: miss
    result = keypoint_errors(pred, gt, area, flip, image_ids=[1, 1])
    kind = result["kind"]
    assert [ERROR_KINDS[kind[0, j]] for j in (0, 5, 7, 9, 11)] == ["good", "jitter", "inversion", "swap", "miss"]
    assert kind[0, 16] == -1 and (kind[1] == 0).all()
    labelled = 33
    assert result["share"]["good"] == pytest.approx(29 / labelled)
    assert all(result["share"][name] == pytest.approx(1 / labelled) for name in ERROR_KINDS[1:])
    assert result["per_joint"].shape == (17, 5) and result["per_joint"][7, 2] == pytest.approx(0.5)
    # the same wrist in separate images is a miss, not a swap
    assert ERROR_KINDS[keypoint_errors(pred, gt, area, flip, image_ids=[1, 2])["kind"][0, 9]] == "miss"


def test_keypoint_similarity_averages_to_oks():
    from posebook.metrics import keypoint_similarity

    gt, area = _two_people()
    pred = gt[..., :2] + np.random.default_rng(1).normal(0, 6, gt[..., :2].shape)
    terms = keypoint_similarity(pred, gt, area, np.asarray(COCO_SIGMAS))
    assert np.allclose(terms.mean(1), np.diag(metrics.oks(pred, gt, area)), atol=1e-12)


def test_keypoint_errors_names_bad_arguments():
    from posebook.keypoints import COCO
    from posebook.metrics import keypoint_errors

    gt, area = _two_people()
    with pytest.raises(ValueError, match="must hold the same people"):
        keypoint_errors(gt[:1], gt, area, COCO.flip_index())
    with pytest.raises(ValueError, match="area: expected one area per person"):
        keypoint_errors(gt, gt, area[:1], COCO.flip_index())
    with pytest.raises(ValueError, match="flip_index must be a left/right permutation"):
        keypoint_errors(gt, gt, area, np.zeros(17, int))
    with pytest.raises(ValueError, match="image_ids: expected one image id per person"):
        keypoint_errors(gt, gt, area, COCO.flip_index(), image_ids=[1])
