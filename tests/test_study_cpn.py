"""Chapter 05's study: its declarations (every claim on occluded and visible keypoints), the targets each model
takes of the five the data carries, occluded/visible PCK, rendered multi-target data, and a smoke run end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from posebook import study
from posebook.losses import JointsMSELoss, JointsOHKMMSELoss, MultiOutputLoss
from posebook.studies import cpn as S


def claims(profile: str) -> dict:
    return {c.name: c for c in study.chapter_claims("05", profile)}


# ---- declarations ------------------------------------------------------------------------------------------------

def test_chapter_05_declares_refinenet_ohkm_non_local_and_the_baseline_on_occluded_and_visible_keypoints():
    declared = claims("cpu")
    assert list(declared) == ["refinenet", "refinenet_visible", "ohkm", "ohkm_visible", "non_local",
                              "non_local_visible", "vs_simple_baseline", "vs_simple_baseline_visible"]
    for name, claim in declared.items():
        assert claim.metric == ("PCK@0.1.visible" if name.endswith("_visible") else "PCK@0.1.occluded")
        if name.endswith("_visible"):  # the same runs, read on the visible keypoints: nothing new to train
            twin = declared[name[: -len("_visible")]]
            assert [v.name for v in claim.variants] == [v.name for v in twin.variants]
            assert claim.effect == twin.effect and all(v.of and v.read == claim.metric for v in claim.variants)
    assert "66.6" in declared["refinenet"].paper and "68.6" in declared["refinenet"].paper
    assert "69.4" in declared["ohkm"].paper and "Table 6" in declared["ohkm"].paper
    assert "70.4" in declared["vs_simple_baseline"].paper
    ohkm = declared["ohkm"]
    assert [v.name for v in ohkm.variants] == ["M17", "M8", "M4"] and ohkm.variant("M8").of == "refinenet/cpn"
    assert [ohkm.variant(m).config["loss"]["refine_topk"] for m in ("M17", "M4")] == [17, 4]


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_trained_variants_differ_from_cpn_in_the_one_setting_they_test(profile):
    declared = claims(profile)
    base = declared["refinenet"].variant("cpn").config
    assert base["model"]["arch"] == "cpn" and base["model"]["refine"] and not base["model"]["non_local"]
    assert base["loss"] == {"refine_topk": 8} and base["codec"]["kernels"] == [15, 11, 9, 7, 7]
    assert base["codec"]["peak"] == 255
    if profile == "gpu":  # tf-cpn: global_label = label * (valid > 1.1); the cpu study is declared as recorded
        assert base["codec"]["visible_only"] == [True] * 4 + [False]
    trained = [v for c in declared.values() for v in c.variants if v.of is None]
    assert len(trained) == 6 and all(len(c.seeds) >= 3 for c in declared.values())
    changed = {}
    for v in trained:
        assert v.config["val_people"] >= 200 and v.config["max_people"] >= 2 and v.config["scene"] == {}
        data = {k for k in base if k not in ("model", "loss") and v.config[k] != base[k]}
        without = {k: c for k, c in base["codec"].items() if k != "visible_only"}
        if v.name == "simple_baseline":  # its head has no BatchNorm: RefineNet's targets at peak 1
            assert data == {"codec"} and dict(v.config["codec"], peak=255) == without
        elif v.name == "globalnet":  # alone, GlobalNet learns every labelled joint (nothing after it does)
            assert data == ({"codec"} if "visible_only" in base["codec"] else set())
            assert v.config["codec"] == without
        else:
            assert data == set()
        model = {k for k in set(base["model"]) | set(v.config["model"]) if v.config["model"].get(k) != base["model"].get(k)}
        changed[v.name] = (model, v.config["loss"] != base["loss"])
    assert changed["globalnet"] == ({"refine"}, False) and changed["non_local"] == ({"non_local"}, False)
    assert changed["M17"] == (set(), True) and changed["M4"] == (set(), True)
    assert "arch" in changed["simple_baseline"][0]


def test_the_cpu_simple_baseline_costs_about_cpns_flops():
    from posebook.bench import gflops

    declared = claims("cpu")
    cpn = S.model(declared["refinenet"].variant("cpn").config)
    baseline = S.model(declared["vs_simple_baseline"].variant("simple_baseline").config)
    a, b = gflops(cpn, (128, 96)), gflops(baseline, (128, 96))
    assert abs(b / a - 1) < 0.1, (a, b)


# ---- targets and losses ------------------------------------------------------------------------------------------

def _batch(config, b=2):
    k = 17
    h, w = config["heatmap_size"]
    g = torch.Generator().manual_seed(0)
    targets = [torch.rand(b, k, h, w, generator=g) for _ in S.KERNELS]
    weights = [torch.ones(b, k) for _ in S.KERNELS]
    return targets, weights


def test_each_model_takes_its_outputs_targets_of_the_five():
    declared = claims("smoke")
    targets, weights = _batch(declared["refinenet"].variant("cpn").config)
    outputs = [torch.rand_like(t) for t in targets]
    cpn = declared["refinenet"].variant("cpn").config
    official = MultiOutputLoss([JointsMSELoss()] * 4 + [JointsOHKMMSELoss(topk=8)], weights=[0.25] * 4 + [2.0])
    assert torch.allclose(S.loss(cpn)(outputs, targets, weights), official(outputs, targets, weights))
    glob = declared["refinenet"].variant("globalnet").config
    expected = MultiOutputLoss([JointsMSELoss()] * 4, weights=[0.25] * 4)(outputs[:4], targets[:4], weights[:4])
    assert torch.allclose(S.loss(glob)(outputs[:4], targets, weights), expected)
    base = declared["vs_simple_baseline"].variant("simple_baseline").config
    assert torch.allclose(S.loss(base)(outputs[4], targets, weights), JointsMSELoss()(outputs[4], targets[4], weights[4]))
    m17 = declared["ohkm"].variant("M17").config
    assert not torch.allclose(S.loss(m17)(outputs, targets, weights), S.loss(cpn)(outputs, targets, weights))
    assert [c.kernel for c in S.codecs(cpn)] == [15, 11, 9, 7, 7]
    assert [c.kernel for c in S.codecs(glob)] == [15, 11, 9, 7] and [c.kernel for c in S.codecs(base)] == [7]
    with pytest.raises(ValueError, match="expected the 5 targets"):
        S.loss(cpn)(outputs, targets[:4], weights[:4])


def test_models_give_as_many_outputs_as_their_targets():
    declared = claims("smoke")
    x = torch.randn(2, 3, 64, 64)
    for claim, name, n in (("refinenet", "cpn", 5), ("refinenet", "globalnet", 4), ("non_local", "non_local", 5)):
        net = S.model(declared[claim].variant(name).config).eval()
        out = net(x)
        assert len(out) == n and len(S.codecs(declared[claim].variant(name).config)) == n
        assert torch.equal(net.predict(x), out[-1])
    base = S.model(declared["vs_simple_baseline"].variant("simple_baseline").config).eval()
    assert base(x).shape == (2, 17, 16, 16)


# ---- occluded and visible PCK, rendered multi-target data --------------------------------------------------------

def test_pck_counts_occluded_and_visible_keypoints_apart():
    from types import SimpleNamespace

    from posebook.inference import pck_on_boxes

    gt = np.zeros((1, 17, 3))
    gt[0, :, :2] = 50.0
    gt[0, :6, 2], gt[0, 6:12, 2] = 1, 2  # 6 occluded, 6 visible, 5 unlabelled
    pred = {"ann_id": np.array([7]), "gt": gt, "keypoints": gt.copy()}
    pred["keypoints"][0, :3, :2] += 40  # 3 occluded ones far off
    coco = SimpleNamespace(anns={7: {"bbox": [0, 0, 100, 100]}})
    assert pck_on_boxes(pred, coco, 0.2, visibility=1)[1] == pytest.approx(0.5)
    assert pck_on_boxes(pred, coco, 0.2, visibility=2)[1] == pytest.approx(1.0)
    assert pck_on_boxes(pred, coco, 0.2)[1] == pytest.approx(9 / 12)
    with pytest.raises(ValueError, match="visibility=3"):
        pck_on_boxes(pred, coco, 0.2, visibility=3)


def test_rendered_items_keep_one_target_per_output(tmp_path, monkeypatch):
    from posebook.study import RenderedItems

    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path))
    config = claims("smoke")["refinenet"].variant("cpn").config
    data = S.train_set(dict(config, train_items=3))
    items = RenderedItems.render(data)
    assert items.targets.shape == (3, 5, 17, 16, 16) and items.weights.shape == (3, 5, 17)
    item, direct = items[1], data[1]
    assert isinstance(item["target"], list) and len(item["target"]) == 5
    for a, b in zip(item["target"], direct["target"]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)  # float16 storage (targets peak at 255)
    # the coarser GlobalNet levels have the wider blur: more of the map is lit
    lit = [float((t > 0.05).float().sum()) for t in item["target"][:4]]
    assert lit == sorted(lit, reverse=True) and lit[0] > lit[3]


# ---- end to end --------------------------------------------------------------------------------------------------

def test_smoke_study_of_one_claim_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["05", "--profile", "smoke", "--only", "refinenet_visible"]) == 0
    assert capsys.readouterr().out.count("done") == 6
    folder = tmp_path / "studies" / "smoke" / "05_cpn" / "refinenet"
    record = json.loads((folder / "globalnet-seed2.json").read_text())
    assert record["config"]["model"]["refine"] is False
    assert {"AP", "PCK@0.2", "PCK@0.2.occluded", "PCK@0.2.visible", "PCK@0.1.occluded", "params",
            "gflops"} <= set(record["final"])
    entries = {c["claim"]: c for c in study.load_claims("05", "smoke")}
    assert entries["refinenet_visible"]["complete"] and entries["refinenet"]["complete"]
    assert [len(v["values"]) for v in entries["refinenet_visible"]["variants"]] == [3, 3]
    assert not entries["ohkm"]["complete"]


# ---- statements, costs, and records trained before the official targets -----------------------------------------

def test_every_statement_is_a_sentence_about_the_kind_of_keypoint_it_reads():
    for name, claim in claims("cpu").items():
        kind = "visible" if name.endswith("_visible") else "occluded"
        other = "occluded" if kind == "visible" else "visible"
        assert f"{kind} keypoints" in claim.statement and f"{other} keypoints" not in claim.statement, claim.statement
        assert f"PCK@0.1 of the {kind} keypoints" in claim.statement
    assert "4" in claims("cpu")["ohkm_visible"].statement  # the M = 4 runs are named on both kinds


def test_the_study_simple_baseline_is_cheaper_than_cpn_in_real_multiply_adds():
    from posebook.bench import gflops, real_macs

    declared = claims("cpu")
    cpn = S.model(declared["refinenet"].variant("cpn").config)
    baseline = S.model(declared["vs_simple_baseline"].variant("simple_baseline").config)
    assert real_macs(baseline, (128, 96)) < 0.75 * real_macs(cpn, (128, 96))
    assert gflops(baseline, (128, 96)) > gflops(cpn, (128, 96))  # the papers' convention charges the deconvolutions 4x


def test_the_cpu_study_is_declared_with_the_targets_its_records_were_trained_on():
    official = S.claims("gpu")[0].variant("cpn").config  # a profile without such records: the official targets
    assert official["codec"]["visible_only"] == [True] * 4 + [False]
    recorded = S.claims("cpu")[0].variant("cpn").config
    assert "visible_only" not in recorded["codec"]  # as its runs were trained: every labelled joint drawn
    assert S.claims("cpu", global_visible_only=True)[0].variant("cpn").config["codec"]["visible_only"] == \
        [True] * 4 + [False]
    assert S.recorded_targets("cpu") == "labelled"
    entries = {c["claim"]: c for c in study.load_claims("05", "cpu")}  # summary reads them without a context
    with S.as_recorded():
        assert {c["claim"]: c["verdict"] for c in study.load_claims("05", "cpu")} == \
            {n: c["verdict"] for n, c in entries.items()}
    assert all(entries[n]["complete"] for n in entries) and len(entries) == 8
