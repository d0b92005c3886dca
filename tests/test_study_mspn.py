"""Chapter 06's study: its declarations (each variant differs from the 2-stage MSPN in the one setting it tests),
the targets and loss each variant takes of the seven the data carries (against ``mspn_loss`` by hand), the 1-stage
and 2-stage outputs, the extended study codec spec, and a smoke run of one claim end to end."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_close

from posebook import study
from posebook.codecs import BlurHeatmap
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.models.mspn import mspn_loss
from posebook.studies import mspn as S
from posebook.studies import topdown


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """Chapter 06 as posebook.studies lists it once registered (``"06_mspn": "mspn"``)."""
    from posebook import studies

    monkeypatch.setitem(studies.CHAPTERS, "06_mspn", "mspn")


def claims(profile: str) -> dict:
    return {c.name: c for c in study.chapter_claims("06", profile)}


# ---- declarations ------------------------------------------------------------------------------------------------

def test_chapter_06_declares_stages_aggregation_coarse_to_fine_and_the_hourglass():
    declared = claims("cpu")
    assert list(declared) == ["stages", "aggregation", "coarse_to_fine", "last_stage_shift", "vs_hourglass",
                              "target_peak"]
    assert all(c.metric == "PCK@0.1" and len(c.seeds) >= 3 for c in declared.values())
    assert all(c.effect[0] == "two_stages" and c.sign == 1 for n, c in declared.items() if n != "target_peak")
    assert declared["target_peak"].effect == ("one_stage", "peak_one") and declared["target_peak"].sign == 1
    assert declared["target_peak"].variant("one_stage").of == "stages/one_stage"
    assert "255" in declared["target_peak"].paper
    assert "71.5 / 74.5 / 75.2 / 75.9" in declared["stages"].paper
    for name in ("aggregation", "coarse_to_fine", "last_stage_shift"):  # the paper's base / +CTF / +CTF+CSFA rows
        assert "73.3" in declared[name].paper and "74.2" in declared[name].paper and "74.5" in declared[name].paper
    assert "70.9" in declared["vs_hourglass"].paper
    assert "stage count not stated" in declared["aggregation"].paper  # the component ablation's hourglass
    assert "LOSS.COARSE_TO_FINE" in declared["last_stage_shift"].paper
    for name in ("aggregation", "coarse_to_fine", "last_stage_shift", "vs_hourglass"):  # one set of 2-stage runs
        assert declared[name].variant("two_stages").of == "stages/two_stages"


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_trained_variants_differ_from_the_two_stage_mspn_only_in_what_they_test(profile):
    declared = claims(profile)
    base = declared["stages"].variant("two_stages").config
    assert base["model"]["arch"] == "mspn" and base["model"]["stages"] == 2 and base["model"]["aggregation"]
    assert base["loss"] == {"kernels": [[15, 11, 9, 7], [11, 9, 7, 5]], "topk": 8}
    trained = [v for c in declared.values() for v in c.variants if v.of is None]
    assert [v.name for v in trained] == ["one_stage", "two_stages", "no_aggregation", "one_kernel", "no_shift",
                                         "hourglass", "peak_one"]
    assert base["codec"]["peak"] == 255  # the official targets' scale
    changed = {}
    for v in trained:
        assert v.config["val_people"] >= 200 and v.config["max_people"] == 4 and v.config["scene"] == {}
        data = {k for k in base if k not in ("model", "loss") and v.config[k] != base[k]}
        if v.name == "peak_one":  # the same targets with peak 1, the rest of the data the same
            assert data == {"codec"} and v.config["codec"] == dict(base["codec"], peak=1)
            assert v.config["model"] == declared["stages"].variant("one_stage").config["model"]
            assert v.config["loss"] == declared["stages"].variant("one_stage").config["loss"]
            continue
        assert data == set()
        model = {k for k in set(base["model"]) | set(v.config["model"])
                 if v.config["model"].get(k) != base["model"].get(k)}
        changed[v.name] = (model, v.config["loss"] != base["loss"])
    assert changed["two_stages"] == (set(), False)
    assert changed["one_stage"] == ({"stages"}, True) and declared["stages"].variant("one_stage").config["loss"][
        "kernels"] == [[11, 9, 7, 5]]
    assert changed["no_aggregation"] == ({"aggregation"}, False)
    assert changed["one_kernel"] == (set(), True)
    assert declared["coarse_to_fine"].variant("one_kernel").config["loss"]["kernels"] == [[5, 5, 5, 5]] * 2
    # the official switch off: only the last stage's shift goes (kernel_schedule(coarse_to_fine=False))
    assert changed["no_shift"] == (set(), True)
    assert declared["last_stage_shift"].variant("no_shift").config["loss"]["kernels"] == [[15, 11, 9, 7]] * 2
    assert "arch" in changed["hourglass"][0]
    # same steps and batch for every variant: the claims compare at the same budget
    assert {(v.config["steps"], v.config["batch_size"]) for v in trained} == {(base["steps"], base["batch_size"])}


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_hourglass_costs_about_the_two_stage_mspns_flops(profile):
    from posebook.bench import gflops

    declared = claims(profile)
    with torch.device("meta"):
        mspn = S.model(declared["stages"].variant("two_stages").config)
        hourglass = S.model(declared["vs_hourglass"].variant("hourglass").config)
    size = tuple(declared["stages"].variant("two_stages").config["input_size"])
    a, b = gflops(mspn, size), gflops(hourglass, size)
    assert abs(b / a - 1) < 0.1, (a, b)
    assert hourglass.stacks == 2


def test_the_gpu_mspn_is_the_papers():
    config = claims("gpu")["stages"].variant("two_stages").config
    assert config["input_size"] == (256, 192) and config["heatmap_size"] == (64, 48)
    assert config["model"]["width"] == 64 and config["model"]["channels"] == 256 and config["model"]["depth"] == 50
    assert config["codec"]["decode_kernel"] == 5


# ---- targets and losses ------------------------------------------------------------------------------------------

def _batch(config, b=2, k=17):
    h, w = config["heatmap_size"]
    g = torch.Generator().manual_seed(0)
    targets = [torch.rand(b, k, h, w, generator=g) for _ in S.TARGETS]
    weights = [(torch.rand(b, k, generator=g) < 0.7).float() for _ in S.TARGETS]
    return targets, weights


def test_each_variant_takes_its_outputs_targets_of_the_seven():
    declared = claims("smoke")
    configs = {"two_stages": declared["stages"].variant("two_stages").config,
               "one_stage": declared["stages"].variant("one_stage").config,
               "no_aggregation": declared["aggregation"].variant("no_aggregation").config,
               "one_kernel": declared["coarse_to_fine"].variant("one_kernel").config,
               "no_shift": declared["last_stage_shift"].variant("no_shift").config,
               "hourglass": declared["vs_hourglass"].variant("hourglass").config}
    # TARGETS: L2 (visible) 15, 11, 9, 7, 5, then OHKM (all labelled) 7, 5
    assert S.target_indices(configs["two_stages"]) == [0, 1, 2, 5, 1, 2, 3, 6]
    assert S.target_indices(configs["no_aggregation"]) == [0, 1, 2, 5, 1, 2, 3, 6]
    assert S.target_indices(configs["one_stage"]) == [1, 2, 3, 6]
    assert S.target_indices(configs["one_kernel"]) == [4, 4, 4, 6, 4, 4, 4, 6]
    assert S.target_indices(configs["no_shift"]) == [0, 1, 2, 5, 0, 1, 2, 5]  # no new target to render
    assert S.target_indices(configs["hourglass"]) == [6, 6]
    targets, weights = _batch(configs["two_stages"])
    for name, config in configs.items():
        idx = S.target_indices(config)
        outputs = [torch.rand_like(targets[0]) for _ in idx]
        pick = ([targets[i] for i in idx], [weights[i] for i in idx])
        if name == "hourglass":  # its own loss: L2 on each stack, weight 1
            expected = MultiOutputLoss(JointsMSELoss())(outputs, *pick)
        else:
            expected = mspn_loss(config["model"]["stages"], 8)(outputs, *pick)
        assert torch.allclose(S.loss(config)(outputs, targets, weights), expected), name
        assert len(S.codecs(config)) == len(idx)
    codecs = S.codecs(configs["two_stages"])
    assert [(c.kernel, c.visible_only) for c in codecs] == [(15, True), (11, True), (9, True), (7, False),
                                                           (11, True), (9, True), (7, True), (5, False)]
    assert all(not c.clamp for c in codecs)
    with pytest.raises(ValueError, match="expected the 7 targets"):
        S.loss(configs["two_stages"])([torch.zeros(1)] * 8, targets[:5], weights[:5])
    with pytest.raises(ValueError, match="expected 8 model outputs"):
        S.loss(configs["two_stages"])([torch.zeros(1)] * 4, targets, weights)


def test_the_two_stage_loss_against_the_official_formula_by_hand():
    """The 2-stage variant's loss equals the official formula written out: per stage three L2 terms / 4 (per-joint
    pixel MSE without 0.5, mean over joints and batch) and OHKM top 8 on the finest."""
    config = claims("smoke")["stages"].variant("two_stages").config
    targets, weights = _batch(config)
    outputs = [torch.rand_like(targets[0]) for _ in range(8)]
    total = 0.0
    for i, t in enumerate(S.target_indices(config)):
        per_joint = ((outputs[i] - targets[t]) * weights[t][:, :, None, None]).pow(2).mean(dim=(2, 3))
        total += per_joint.topk(8, dim=1).values.mean(1).mean() if i % 4 == 3 else per_joint.mean() / 4
    assert S.loss(config)(outputs, targets, weights).item() == pytest.approx(float(total), rel=1e-5)


def test_one_and_two_stage_outputs_and_predict():
    declared = claims("smoke")
    x = torch.randn(2, 3, 64, 64)
    for claim, name, n in (("stages", "one_stage", 4), ("stages", "two_stages", 8),
                           ("aggregation", "no_aggregation", 8), ("vs_hourglass", "hourglass", 2)):
        net = S.model(declared[claim].variant(name).config).eval()
        with torch.no_grad():
            out = net(x)
            assert len(out) == n and all(o.shape == (2, 17, 16, 16) for o in out)
            assert_close(net.predict(x), out[-1])
    one = S.model(declared["stages"].variant("one_stage").config)
    two = S.model(declared["stages"].variant("two_stages").config)
    assert len(one.stages) == 1 and len(two.stages) == 2 and two.stages[0].aggregation is not None
    assert S.model(declared["aggregation"].variant("no_aggregation").config).stages[0].aggregation is None


def test_the_study_codec_spec_keeps_cpns_codecs_and_adds_mspns():
    cpn = dict(topdown.data_settings(claims("cpu")["stages"].variant("two_stages").config),  # CPN's official codec
               codec=dict(kernels=[15, 11, 9, 7, 7], decode_kernel=11, peak=255, visible_only=[True] * 4 + [False]))
    old = topdown.codecs(cpn)
    # CPN's: GlobalNet's four targets draw visible joints only, RefineNet's every labelled joint
    assert [(c.kernel, c.clamp, c.visible_only, c.decode_kernel) for c in old] == \
        [(k, True, True, 11) for k in (15, 11, 9, 7)] + [(7, True, False, 11)]
    assert repr(old[0]) == ("BlurHeatmap(input_size=(128, 96), heatmap_size=(32, 24), kernel=15, decode_kernel=11, "
                            "clamp=True, visible_only=True, peak=255)")
    settings = topdown.data_settings(claims("cpu")["stages"].variant("two_stages").config)
    every = topdown.codecs(settings)
    assert [(c.kernel, c.visible_only, c.clamp) for c in every] == [(k, v, False) for k, v in S.TARGETS]
    kp, v = [[10.0, 10.0], [30.0, 20.0], [95.0, 50.0], [120.0, 50.0]], [2, 1, 2, 2]  # the last beyond the crop
    target, weight = every[0].encode(kp, v)
    assert weight.tolist() == [1, 1, 1, 1] and target[0].max() == pytest.approx(255) and not target[1].any() and not target[3].any()
    target, weight = every[-1].encode(kp, v)
    assert weight.tolist() == [1, 1, 1, 0] and target[1].max() == pytest.approx(255) and not target[3].any()
    assert all(c.peak == 255 for c in every) and all(c.peak == 255 for c in old)
    assert all(c.peak == 1 for c in topdown.codecs(dict(settings, codec=dict(settings["codec"], peak=1))))
    for bad in (dict(visible_only=[True]), dict(clamp="no"), dict(sigma=2), dict(peak=0)):
        spec = dict(kernels=[7, 5], decode_kernel=5, **bad)
        with pytest.raises(ValueError, match="study codec|BlurHeatmap peak"):
            topdown.codecs(dict(settings, codec=spec))
    assert isinstance(every[-1], BlurHeatmap)


# ---- end to end --------------------------------------------------------------------------------------------------

def test_smoke_study_of_one_claim_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["06", "--profile", "smoke", "--only", "aggregation"]) == 0
    assert capsys.readouterr().out.count("done") == 6
    folder = tmp_path / "studies" / "smoke" / "06_mspn"
    record = json.loads((folder / "aggregation" / "no_aggregation-seed2.json").read_text())
    assert record["config"]["model"]["aggregation"] is False
    assert {"AP", "PCK@0.2", "PCK@0.1", "PCK@0.2.occluded", "PCK@0.2.visible", "params",
            "gflops"} <= set(record["final"])
    assert (folder / "stages" / "two_stages-seed0.json").exists()  # the 2-stage runs belong to `stages`
    entries = {c["claim"]: c for c in study.load_claims("06", "smoke")}
    assert entries["aggregation"]["complete"] and not entries["stages"]["complete"]
    assert [len(v["values"]) for v in entries["aggregation"]["variants"]] == [3, 3]


def test_adding_the_shift_claim_keeps_the_committed_cpu_records_valid(root):
    """The committed cpu records still load against the declarations (the new claim reads as not yet measured)."""
    entries = {c["claim"]: c for c in study.load_claims("06", "cpu", root / "book" / "results" / "studies")}
    assert all(entries[n]["complete"] for n in ("stages", "aggregation", "coarse_to_fine", "vs_hourglass",
                                                "target_peak"))
    shift = entries["last_stage_shift"]
    assert not shift["complete"] and shift["effect"] is None
    assert [v["name"] for v in shift["variants"]] == ["no_shift", "two_stages"]
    assert [len(v["values"]) for v in shift["variants"]] == [0, 3]


def test_supervision_must_be_one_of_three():
    with pytest.raises(ValueError, match="supervision='shifted'"):
        S._config("cpu", supervision="shifted")
