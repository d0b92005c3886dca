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
    assert base["model"] == "cpn" and base["kwargs"]["refine"] and not base["kwargs"]["non_local"]
    assert base["loss"] == {"refine_topk": 8} and base["codec"]["peak"] == 255
    assert base["codec"]["visible_only"] == [True] * 4 + [False]  # tf-cpn: global_label = label * (valid > 1.1)
    assert base["pretrained"] == (profile == "cpu") and base["targets"] == "cpn"
    trained = [v for c in declared.values() for v in c.variants if v.of is None]
    assert len(trained) == 6
    assert all(len(c.seeds) >= 5 and c.protocol == 2 for c in declared.values())
    changed = {}
    for v in trained:
        assert v.config["val_people"] >= 500 and v.config["max_people"] >= 2 and v.config["scene"] == {}
        data = {k for k in set(base) | set(v.config) if k not in ("model", "kwargs", "loss", "targets")
                and v.config.get(k) != base.get(k)}
        if v.name == "simple_baseline":  # its own paper's Gaussian targets, as chapter 04's
            assert data == {"codec"} and v.config["targets"] == "gaussian" and v.config["model"] == "simple_baseline"
        elif v.name == "globalnet":  # alone, GlobalNet learns every labelled joint (nothing after it does)
            assert data == {"codec"} and v.config["codec"] == dict(base["codec"], visible_only=[False] * 5)
        else:
            assert data == set()
        kwargs = {k for k in set(base["kwargs"]) | set(v.config["kwargs"])
                  if v.config["kwargs"].get(k) != base["kwargs"].get(k)}
        changed[v.name] = (kwargs, v.config.get("loss") != base["loss"])
    assert changed["globalnet"] == ({"refine"}, False) and changed["non_local"] == ({"non_local"}, False)
    assert changed["M17"] == (set(), True) and changed["M4"] == (set(), True)
    equal = declared["vs_simple_baseline"]
    assert equal.margin == 0.02 and equal.rule == "tost-1" and declared["vs_simple_baseline_visible"].margin == 0.02
    assert all(c.margin is None for n, c in declared.items() if not n.startswith("vs_simple_baseline"))


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_simple_baseline_costs_cpns_real_multiply_adds(profile):
    from posebook.bench import real_macs

    declared = claims(profile)
    cpn, sb = declared["refinenet"].variant("cpn"), declared["vs_simple_baseline"].variant("simple_baseline")
    size = tuple(cpn.config["input_size"])
    with torch.device("meta"):
        a, b = real_macs(S.model(cpn.config), size), real_macs(S.model(sb.config), size)
    assert abs(b / a - 1) < 0.02, (a, b)


# ---- targets and losses ------------------------------------------------------------------------------------------

def _batch(config, b=2):
    k = 17
    h, w = config["heatmap_size"]
    g = torch.Generator().manual_seed(0)
    targets = [torch.rand(b, k, h, w, generator=g) for _ in range(S.TARGETS)]
    weights = [torch.ones(b, k) for _ in range(S.TARGETS)]
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
    base = declared["vs_simple_baseline"].variant("simple_baseline").config  # its own single Gaussian target
    assert torch.allclose(S.loss(base)(outputs[4], targets[4], weights[4]),
                          JointsMSELoss()(outputs[4], targets[4], weights[4]))
    m17 = declared["ohkm"].variant("M17").config
    assert not torch.allclose(S.loss(m17)(outputs, targets, weights), S.loss(cpn)(outputs, targets, weights))
    assert len(S.codecs(cpn)) == 5 and len(S.codecs(glob)) == 4 and len(S.codecs(base)) == 1
    cpu = claims("cpu")["refinenet"].variant("cpn").config  # the official kernels scaled to the recipe's 24x16 maps
    assert [c.kernel for c in S.codecs(cpu)] == [5, 3, 3, 3, 3]  # scaled_kernel: the schedule collapses at this size
    assert [c.visible_only for c in S.codecs(cpu)] == [True] * 4 + [False]
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
    for bad in ("hourglass",):
        with pytest.raises(ValueError, match="arch='hourglass'"):
            S.config("cpu", bad)


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
    config = claims("cpu")["refinenet"].variant("cpn").config  # kernels 5, 3, 3, 3 and 3 at the 24x16 maps
    data = S.train_set(dict(config, train_items=3))
    items = RenderedItems.render(data)
    h, w = config["heatmap_size"]
    assert items.targets.shape == (3, 5, 17, h, w) and items.weights.shape == (3, 5, 17)
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
    assert capsys.readouterr().out.count("done") == 4
    folder = tmp_path / "studies" / "smoke" / "05_cpn" / "refinenet"
    record = json.loads((folder / "globalnet-seed1.json").read_text())
    assert record["config"]["kwargs"]["refine"] is False and record["protocol"] == 2
    assert {"AP", "PCK@0.2", "PCK@0.2.occluded", "PCK@0.2.visible", "PCK@0.1.occluded", "params",
            "gflops", "macs", "cpu_minutes"} <= set(record["final"])
    entries = {c["claim"]: c for c in study.load_claims("05", "smoke")}
    assert entries["refinenet_visible"]["complete"] and entries["refinenet"]["complete"]
    assert [len(v["values"]) for v in entries["refinenet_visible"]["variants"]] == [2, 2]
    assert not entries["ohkm"]["complete"]


# ---- statements, costs, and records trained before the official targets -----------------------------------------

def test_every_statement_is_a_sentence_about_the_kind_of_keypoint_it_reads():
    for name, claim in claims("cpu").items():
        kind = "visible" if name.endswith("_visible") else "occluded"
        other = "occluded" if kind == "visible" else "visible"
        assert f"{kind} keypoints" in claim.statement and f"{other} keypoints" not in claim.statement, claim.statement
        assert f"PCK@0.1 of the {kind} keypoints" in claim.statement
    assert "4" in claims("cpu")["ohkm_visible"].statement  # the M = 4 runs are named on both kinds
