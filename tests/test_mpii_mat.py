"""posebook.data.mpii_mat: MPII's official .mat (RELEASE struct) -> HRNet-style json that MpiiKeypoints reads.

The fixture .mat is written with scipy.io.savemat in the release's nesting: annolist is a 1xN struct array,
annorect a 1xR struct array whose fields may hold [], annopoints.point a 1xP struct array, img_train a 1xN vector,
single_person an Nx1 cell array.
"""
from __future__ import annotations

import builtins
import importlib.util
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

scipy_io = pytest.importorskip("scipy.io", reason="scipy reads MATLAB files (pip install posebook[mpii])")

from posebook.data import MpiiKeypoints  # noqa: E402
from posebook.data import mpii_mat  # noqa: E402
from posebook.keypoints import MPII  # noqa: E402

EMPTY = np.zeros((0, 0))  # MATLAB's []


def struct_array(items: list[dict]):
    """A MATLAB 1xN struct array; every element gets every field (MATLAB's rule), [] where one has no value."""
    fields = sorted({k for item in items for k in item})
    array = np.empty((1, len(items)), dtype=[(f, object) for f in fields])
    for n, item in enumerate(items):
        for f in fields:
            array[0, n][f] = item.get(f, EMPTY)
    return array


def cells(values: list):
    array = np.empty((len(values), 1), dtype=object)
    for n, value in enumerate(values):
        array[n, 0] = value
    return array


def points(joints: dict[int, tuple], visible=lambda j: j % 2):
    """annopoints with one point per joint id: x, y (1-based pixels), is_visible from ``visible(j)``."""
    return {"point": struct_array([{"id": float(j), "x": float(x), "y": float(y), "is_visible": visible(j)}
                                   for j, (x, y) in joints.items()])}


def person(joints, center, scale, head=(40, 10, 60, 30), visible=lambda j: j % 2):
    x1, y1, x2, y2 = head
    return {"x1": float(x1), "y1": float(y1), "x2": float(x2), "y2": float(y2), "scale": float(scale),
            "objpos": {"x": float(center[0]), "y": float(center[1])}, "annopoints": points(joints, visible)}


FULL = {j: (50.0 + 2 * j, 20.0 + 5 * j) for j in range(16)}
NO_ANKLES = {j: xy for j, xy in FULL.items() if j not in (0, 5)}
STRING_VIS = {0: "1", 1: "0", 2: EMPTY, 3: 1, 4: 0.0}  # the release mixes '0'/'1', 0/1 and []


def image(name: str, rects: list[dict]) -> dict:
    return {"image": {"name": name}, "annorect": struct_array(rects) if rects else EMPTY}


def release() -> tuple[dict, list[str]]:
    """A small RELEASE: single- and multi-person train images, odd rects, a test image and an empty image."""
    annolist = [
        image("000000001.jpg", [person(NO_ANKLES, (55, 60), 0.5)]),  # one person: annorect squeezes to a struct
        image("000000002.jpg", [
            person(FULL, (70, 70), 0.4, head=(30, 5, 50, 35), visible=lambda j: STRING_VIS.get(j, "1")),
            {"x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0, "scale": 1.0, "objpos": {"x": 5.0, "y": 6.0}},  # no points
            person({9: (60.0, 12.0)}, (65, 40), 0.3),  # one point: point squeezes to a struct
            {**person(FULL, (50, 50), 0.5), "scale": EMPTY},  # labelled but no scale
        ]),
        image("000000003.jpg", [{"scale": 2.0, "objpos": {"x": 40.0, "y": 40.0}}]),  # test image: no joints
        image("000000004.jpg", []),  # no people
    ]
    extra = [f"00000001{k}.jpg" for k in range(6)]  # more single-person train images for the hold-out
    annolist += [image(name, [person(FULL, (60, 70), 0.45)]) for name in extra]
    img_train = [1, 1, 0, 1] + [1] * len(extra)
    single = [1.0, np.array([[2.0], [3.0]]), 1.0, EMPTY] + [1.0] * len(extra)
    names = [a["image"]["name"] for a in annolist]
    return {"RELEASE": {"annolist": struct_array(annolist), "img_train": np.array([img_train], dtype=float),
                        "single_person": cells(single), "version": "12"}}, names


@pytest.fixture
def mpii_dir(tmp_path):
    """tmp_path with the fixture .mat and a small dummy jpg for every image it names."""
    data, names = release()
    scipy_io.savemat(tmp_path / "mpii_human_pose_v1_u12_1.mat", data)
    (tmp_path / "images").mkdir()
    for name in names:
        cv2.imwrite(str(tmp_path / "images" / name), np.full((120, 100, 3), 127, np.uint8))
    return tmp_path


def test_fixture_squeezes_like_the_release(mpii_dir):
    raw = scipy_io.loadmat(mpii_dir / "mpii_human_pose_v1_u12_1.mat", struct_as_record=False, squeeze_me=True)
    annolist = raw["RELEASE"].annolist
    assert isinstance(annolist[0].annorect, scipy_io.matlab.mat_struct)  # single person: a struct
    assert isinstance(annolist[1].annorect, np.ndarray) and annolist[1].annorect.shape == (4,)
    assert annolist[1].annorect[1].annopoints.size == 0  # [] where a rect has no points
    assert isinstance(annolist[1].annorect[2].annopoints.point, scipy_io.matlab.mat_struct)
    assert isinstance(annolist[1].annorect[0].annopoints.point[0].is_visible, str)
    assert not hasattr(annolist[2].annorect, "annopoints")  # the test image's rects have other fields
    assert raw["RELEASE"].single_person.shape == (len(annolist),)


def test_load_keeps_labelled_people_and_counts_the_skipped(mpii_dir):
    records = mpii_mat.load_mpii_mat(mpii_dir / "mpii_human_pose_v1_u12_1.mat")
    assert len(records) == 2 + 1 + 6  # image 1, image 2 (rects 1 and 3), six extra
    assert dict(records.skipped) == {"no annopoints": 1, "no scale or objpos": 1, "test image": 1}
    first, multi, lone = records[0], records[1], records[2]
    assert first["joints"][0] == [-1.0, -1.0] and first["joints_vis"][0] == 0  # HRNet's missing joint
    assert first["joints"][3] == [56.0, 35.0] and first["joints_vis"][3] == 1 and first["visible"][3] == 1
    assert multi["visible"][:5] == [1, 0, -1, 1, 0]  # '1', '0', [], 1, 0.0
    assert (multi["annolist_index"], multi["annorect_index"]) == (2, 1)
    assert lone["joints_vis"] == [int(j == 9) for j in range(16)] and lone["joints"][9] == [60.0, 12.0]
    assert [r["single_person"] for r in records[:3]] == [True, False, True]
    assert first["center"] == [55.0, 60.0] and first["scale"] == 0.5
    assert first["head_box"] == [40.0, 10.0, 60.0, 30.0] and first["is_train"]


def test_converted_json_loads_in_mpii_keypoints_with_head_sizes(mpii_dir):
    paths = mpii_mat.convert_mpii(mpii_dir / "mpii_human_pose_v1_u12_1.mat", mpii_dir / "annot",
                                  valid_images=["000000002.jpg"])
    assert sorted(paths) == ["train", "trainval", "valid"]
    valid = MpiiKeypoints(paths["valid"], mpii_dir / "images", train=False)
    train = MpiiKeypoints(paths["train"], mpii_dir / "images", train=False)
    assert (len(valid), len(train)) == (2, 7)
    assert len(json.loads(paths["trainval"].read_text())) == 9
    assert valid.has_head_size and train.has_head_size
    item = valid[0]
    assert item["meta"]["head_size"] == pytest.approx(0.6 * np.hypot(20, 30))
    # the loader's HRNet adjustment: 0-based, centre 15 x scale lower, box 1.25 x larger
    np.testing.assert_allclose(item["meta"]["center"], [70 - 1, 70 + 15 * 0.4 - 1])
    np.testing.assert_allclose(item["meta"]["scale"], [0.4 * 1.25, 0.4 * 1.25])
    kp = train.records[0].keypoints
    np.testing.assert_allclose(kp[3], [55.0, 34.0, 1.0])
    assert kp[0].tolist() == [0.0, 0.0, 0.0] and item["target_weight"].sum() == 16


def test_default_split_is_a_seeded_holdout_of_training_images_only(mpii_dir):
    records = mpii_mat.load_mpii_mat(mpii_dir / "mpii_human_pose_v1_u12_1.mat")
    records.append({**records[0], "image": "test.jpg", "is_train": False})
    first, again = mpii_mat.split_by(records, seed=3), mpii_mat.split_by(records, seed=3)
    assert first["valid"] == again["valid"] and first["valid"]
    assert {r["image"] for r in first["valid"]}.isdisjoint(r["image"] for r in first["train"])
    assert all(r["is_train"] for part in first.values() for r in part)
    assert len(first["train"]) + len(first["valid"]) == len(first["trainval"]) == len(records) - 1
    others = [mpii_mat.split_by(records, seed=s)["valid"] for s in range(6)]
    assert any(o != first["valid"] for o in others)


def test_validation_people_can_be_picked_by_annolist_and_annorect_index(mpii_dir):
    records = mpii_mat.load_mpii_mat(mpii_dir / "mpii_human_pose_v1_u12_1.mat")
    parts = mpii_mat.split_by(records, valid_images=[(2, 3), "000000011.jpg"])
    assert [(r["annolist_index"], r["annorect_index"]) for r in parts["valid"]] == [(2, 3), (6, 1)]
    assert (2, 1) in [(r["annolist_index"], r["annorect_index"]) for r in parts["train"]]


def test_unknown_validation_entries_are_an_error(mpii_dir):
    records = mpii_mat.load_mpii_mat(mpii_dir / "mpii_human_pose_v1_u12_1.mat")
    with pytest.raises(ValueError, match="000000003.jpg"):  # a test image has no labelled people
        mpii_mat.split_by(records, valid_images=["000000003.jpg"])
    with pytest.raises(ValueError, match=r"\(2, 2\)"):  # rect 2 of image 2 has no joints
        mpii_mat.split_by(records, valid_images=[(2, 2)])


def test_shared_sample_round_trips_through_to_hrnet_json(mpii_sample):
    sample = json.loads((mpii_sample / "annotations_sample.json").read_text())
    assert mpii_mat.to_hrnet_json(sample) == sample
    with_head = [{**r, "head_box": [1, 2, 3, 4]} for r in sample]
    assert mpii_mat.to_hrnet_json(with_head)[0]["head_box"] == [1.0, 2.0, 3.0, 4.0]


def test_errors_name_the_file_and_the_annolist_index(mpii_dir, tmp_path):
    data, _ = release()
    data["RELEASE"]["annolist"][0, 1]["annorect"][0, 0]["annopoints"]["point"][0, 4]["id"] = 16.0
    bad = tmp_path / "bad.mat"
    scipy_io.savemat(bad, data)
    with pytest.raises(ValueError, match=r"bad\.mat, annolist\(2\)\.annorect\(1\), annopoints\.point\(5\).*16"):
        mpii_mat.load_mpii_mat(bad)
    scipy_io.savemat(tmp_path / "other.mat", {"x": np.ones(3)})
    with pytest.raises(ValueError, match="no RELEASE struct"):
        mpii_mat.load_mpii_mat(tmp_path / "other.mat")


def test_missing_scipy_gives_an_install_hint(monkeypatch, mpii_dir):
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(ImportError, match=r"pip install scipy.*posebook\[mpii\]"):
        mpii_mat.load_mpii_mat(mpii_dir / "mpii_human_pose_v1_u12_1.mat")


def test_mpii_joint_ids_follow_the_skeleton_order():
    assert mpii_mat.NUM_JOINTS == 16 and MPII.names[0] == "r_ankle" and MPII.names[15] == "l_wrist"


def test_a_release_with_one_image_still_reads(tmp_path):
    # squeeze_me unwraps a 1x1 annolist, img_train and single_person cell into bare values
    one = {"RELEASE": {"annolist": struct_array([image("a.jpg", [person(FULL, (60, 70), 0.45)])]),
                       "img_train": np.array([[1.0]]), "single_person": cells([EMPTY])}}
    scipy_io.savemat(tmp_path / "one.mat", one)
    (record,) = mpii_mat.load_mpii_mat(tmp_path / "one.mat")
    assert record["image"] == "a.jpg" and not record["single_person"] and record["is_train"]


def download_script():
    path = Path(__file__).resolve().parents[1] / "data_scripts" / "download_mpii.py"
    spec = importlib.util.spec_from_file_location("download_mpii", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_download_script_converts_after_unpacking(mpii_dir, tmp_path, capsys):
    # an archive already in downloads/ is not fetched again, so this needs no server
    out = tmp_path / "mpii"
    (out / "downloads").mkdir(parents=True)
    with zipfile.ZipFile(out / "downloads" / "mpii_human_pose_v1_u12_2.zip", "w") as z:
        z.write(mpii_dir / mpii_mat.MAT_NAME, f"mpii_human_pose_v1_u12_1/{mpii_mat.MAT_NAME}")
    (tmp_path / "valid.txt").write_text("# names or 'annolist annorect'\n000000002.jpg\n\n6 1\n")
    args = ["--out", str(out), "--annotations", "--convert", "--no-progress"]
    assert download_script().main([*args, "--valid-images", str(tmp_path / "valid.txt")]) == 0
    annot = out / "mpii_human_pose_v1_u12_1"
    assert len(json.loads((annot / "valid.json").read_text())) == 3
    assert len(json.loads((annot / "train.json").read_text())) == 6
    assert "9 labelled people" in capsys.readouterr().out
