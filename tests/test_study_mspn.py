"""Chapter 06's study under protocol 2: its declarations (each variant differs from the 2-stage MSPN in the one
setting it tests), the official kernels carried to each profile's map, the targets each MSPN output takes of those
the data carries (against ``mspn_loss`` by hand), the hourglass at the MSPN's real multiply-adds on its own Gaussian
targets, and a smoke run of one claim end to end."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_close

from posebook import study
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.models.mspn import kernel_schedule, mspn_loss
from posebook.recipe import recipe
from posebook.studies import mspn as S


def claims(profile: str) -> dict:
    return {c.name: c for c in study.chapter_claims("06", profile)}


# ---- declarations ------------------------------------------------------------------------------------------------

def test_chapter_06_declares_stages_aggregation_the_official_switch_and_the_hourglass():
    declared = claims("cpu")
    assert list(declared) == ["stages", "aggregation", "coarse_to_fine", "vs_hourglass"]
    assert all(c.metric == "PCK@0.1" and len(c.seeds) >= 5 and c.protocol == 2 and c.margin is None
               for c in declared.values())
    assert all(c.effect[0] == "two_stages" and c.sign == 1 for c in declared.values())
    assert "71.5 / 74.5 / 75.2 / 75.9" in declared["stages"].paper
    for name in ("aggregation", "coarse_to_fine"):  # the paper's base / +CTF / +CTF+CSFA rows
        assert "73.3" in declared[name].paper and "74.2" in declared[name].paper and "74.5" in declared[name].paper
    assert "LOSS.COARSE_TO_FINE" in declared["coarse_to_fine"].paper and "70.9" in declared["vs_hourglass"].paper
    for name in ("aggregation", "coarse_to_fine", "vs_hourglass"):  # one set of 2-stage runs
        assert declared[name].variant("two_stages").of == "stages/two_stages"
    # the statement names the kernels the switch really changes at the cpu map
    assert "5/3/3/3, then 3/3/3/3" in declared["coarse_to_fine"].statement
    assert "5/3/3/3, then 5/3/3/3" in declared["coarse_to_fine"].statement


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_trained_variants_differ_from_the_two_stage_mspn_only_in_what_they_test(profile):
    declared = claims(profile)
    base = declared["stages"].variant("two_stages").config
    assert base["model"] == "mspn" and base["kwargs"]["stages"] == 2 and base["kwargs"]["aggregation"]
    assert base["loss"] == {"kernels": S.schedule(profile), "topk": 8} and base["codec"]["peak"] == 255
    assert base["pretrained"] == (profile == "cpu") and base["val_people"] >= 500
    trained = [v for c in declared.values() for v in c.variants if v.of is None]
    assert [v.name for v in trained] == ["one_stage", "two_stages", "no_aggregation", "no_shift", "hourglass"]
    changed = {}
    for v in trained:
        assert v.config["val_people"] >= 500 and v.config["max_people"] == 4 and v.config["scene"] == {}
        data = {k for k in set(base) | set(v.config) if k not in ("model", "kwargs", "loss", "targets")
                and v.config.get(k) != base.get(k)}
        if v.name == "hourglass":  # from scratch, on the recipe's Gaussians (DARK's), with its own loss
            assert data == ({"codec", "pretrained"} if profile == "cpu" else {"codec"})
            assert v.config.get("codec") == ({"unbiased": True} if recipe(profile).unbiased else None)
            assert v.config["model"] == "hourglass" and not v.config["pretrained"] and "loss" not in v.config
            continue
        assert data == set()
        kwargs = {k for k in set(base["kwargs"]) | set(v.config["kwargs"])
                  if v.config["kwargs"].get(k) != base["kwargs"].get(k)}
        changed[v.name] = (kwargs, v.config["loss"] != base["loss"])
    assert changed["two_stages"] == (set(), False)
    assert changed["one_stage"] == ({"stages"}, True)
    assert declared["stages"].variant("one_stage").config["loss"]["kernels"] == S.schedule(profile, 1)
    assert changed["no_aggregation"] == ({"aggregation"}, False)
    assert changed["no_shift"] == (set(), True)  # the official switch off: only the last stage's shift goes
    # same steps and batch for every variant: the claims compare at the same budget
    assert {(v.config["steps"], v.config["batch_size"]) for v in trained} == {(base["steps"], base["batch_size"])}


def test_the_kernels_are_the_official_schedule_carried_to_each_map():
    assert S.schedule("gpu") == [list(k) for k in kernel_schedule(2)]  # 64x48 maps: the official kernels
    assert S.schedule("gpu", coarse_to_fine=False) == [[15, 11, 9, 7]] * 2
    assert S.schedule("cpu") == [[5, 3, 3, 3], [3, 3, 3, 3]]  # 24x16: most reach the smallest odd kernel
    assert S.schedule("cpu", coarse_to_fine=False) == [[5, 3, 3, 3]] * 2
    assert S.schedule("cpu", 1) == [[3, 3, 3, 3]]
    # every target any variant needs, the final one (finest, every labelled joint) last: it decodes
    assert S.targets("gpu") == ((15, True), (11, True), (9, True), (7, True), (7, False), (5, False))
    assert S.targets("cpu") == ((5, True), (3, True), (3, False))


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_hourglass_costs_the_two_stage_mspns_real_multiply_adds(profile):
    from posebook.bench import real_macs

    declared = claims(profile)
    mspn, hourglass = declared["stages"].variant("two_stages"), declared["vs_hourglass"].variant("hourglass")
    size = tuple(mspn.config["input_size"])
    with torch.device("meta"):
        a, b = real_macs(S.model(mspn.config), size), real_macs(S.model(hourglass.config), size)
    assert abs(b / a - 1) < 0.03, (a, b)
    assert hourglass.config["kwargs"]["stacks"] == 2


def test_the_gpu_mspn_is_the_papers():
    config = claims("gpu")["stages"].variant("two_stages").config
    assert config["input_size"] == (256, 192) and config["heatmap_size"] == (64, 48)
    net = S.model(config)
    assert net.stages[0].downsample.feature_channels[32] == 2048
    assert config["codec"]["decode_kernel"] == 5


# ---- targets and losses ------------------------------------------------------------------------------------------

def _batch(config, b=2, k=17):
    h, w = config["heatmap_size"]
    g = torch.Generator().manual_seed(0)
    carried = len(config["codec"]["kernels"])
    targets = [torch.rand(b, k, h, w, generator=g) for _ in range(carried)]
    weights = [(torch.rand(b, k, generator=g) < 0.7).float() for _ in range(carried)]
    return targets, weights


def test_each_mspn_output_takes_its_target_of_those_the_data_carries():
    declared = claims("gpu")  # the official kernels: every output distinguishable
    configs = {"two_stages": declared["stages"].variant("two_stages").config,
               "one_stage": declared["stages"].variant("one_stage").config,
               "no_aggregation": declared["aggregation"].variant("no_aggregation").config,
               "no_shift": declared["coarse_to_fine"].variant("no_shift").config}
    # carried: L2 (visible) 15, 11, 9, 7, then OHKM (all labelled) 7, 5
    assert S.target_indices(configs["two_stages"]) == [0, 1, 2, 4, 1, 2, 3, 5]
    assert S.target_indices(configs["no_aggregation"]) == [0, 1, 2, 4, 1, 2, 3, 5]
    assert S.target_indices(configs["one_stage"]) == [1, 2, 3, 5]
    assert S.target_indices(configs["no_shift"]) == [0, 1, 2, 4, 0, 1, 2, 4]
    targets, weights = _batch(configs["two_stages"], k=17)
    for name, config in configs.items():
        idx = S.target_indices(config)
        outputs = [torch.rand_like(targets[0]) for _ in idx]
        pick = ([targets[i] for i in idx], [weights[i] for i in idx])
        expected = mspn_loss(config["kwargs"]["stages"], 8)(outputs, *pick)
        assert torch.allclose(S.loss(config)(outputs, targets, weights), expected), name
        assert len(S.codecs(config)) == len(idx)
    codecs = S.codecs(configs["two_stages"])
    assert [(c.kernel, c.visible_only) for c in codecs] == [(15, True), (11, True), (9, True), (7, False),
                                                           (11, True), (9, True), (7, True), (5, False)]
    assert all(not c.clamp and c.peak == 255 for c in codecs)
    with pytest.raises(ValueError, match="expected the 6 targets"):
        S.loss(configs["two_stages"])([torch.zeros(1)] * 8, targets[:5], weights[:5])
    with pytest.raises(ValueError, match="expected 8 model outputs"):
        S.loss(configs["two_stages"])([torch.zeros(1)] * 4, targets, weights)
    with pytest.raises(ValueError, match="no rendered target has kernel 13"):
        S.target_indices(dict(configs["two_stages"], loss=dict(kernels=[[13, 11, 9, 7]], topk=8)))


def test_the_two_stage_loss_against_the_official_formula_by_hand():
    """The 2-stage variant's loss equals the official formula written out: per stage three L2 terms / 4 (per-joint
    pixel MSE without 0.5, mean over joints and batch) and OHKM top 8 on the finest."""
    config = claims("cpu")["stages"].variant("two_stages").config
    targets, weights = _batch(config)
    outputs = [torch.rand_like(targets[0]) for _ in range(8)]
    total = 0.0
    for i, t in enumerate(S.target_indices(config)):
        per_joint = ((outputs[i] - targets[t]) * weights[t][:, :, None, None]).pow(2).mean(dim=(2, 3))
        total += per_joint.topk(8, dim=1).values.mean(1).mean() if i % 4 == 3 else per_joint.mean() / 4
    assert S.loss(config)(outputs, targets, weights).item() == pytest.approx(float(total), rel=1e-5)


def test_the_hourglass_takes_one_gaussian_target_on_every_stack():
    config = claims("smoke")["vs_hourglass"].variant("hourglass").config
    t, w = torch.rand(2, 17, 16, 16), torch.ones(2, 17)
    outputs = [torch.rand_like(t), torch.rand_like(t)]
    assert torch.allclose(S.loss(config)(outputs, t, w), JointsMSELoss()(outputs[0], t, w) +
                          JointsMSELoss()(outputs[1], t, w))
    assert isinstance(S.loss(config), MultiOutputLoss) and len(S.codecs(config)) == 2
    with pytest.raises(ValueError, match="one Gaussian target"):
        S.target_indices(config)


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
    assert S.model(declared["aggregation"].variant("no_aggregation").config).stages[0].aggregation is None
    with pytest.raises(ValueError, match="arch='simple_baseline'"):
        S.config("cpu", "simple_baseline")


def test_the_cpu_mspn_starts_from_the_pretrained_trunk_in_every_stage():
    from posebook import learn
    from posebook.studies import protocol

    config = claims("cpu")["stages"].variant("two_stages").config
    torch.manual_seed(0)
    net = protocol.recipe_model(config)
    trunk = learn.pretrained_trunk()
    key = next(k for k in trunk if k.startswith("layer1") and k.endswith("conv1.weight"))
    for stage in net.stages:
        own = dict(stage.downsample.named_parameters())
        match = [n for n in own if n.endswith(key)]
        assert match and torch.equal(own[match[0]], trunk[key])


# ---- end to end --------------------------------------------------------------------------------------------------

def test_smoke_study_of_one_claim_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["06", "--profile", "smoke", "--only", "aggregation"]) == 0
    assert capsys.readouterr().out.count("done") == 4
    folder = tmp_path / "studies" / "smoke" / "06_mspn"
    record = json.loads((folder / "aggregation" / "no_aggregation-seed1.json").read_text())
    assert record["config"]["kwargs"]["aggregation"] is False and record["protocol"] == 2
    assert {"AP", "PCK@0.2", "PCK@0.1", "PCK@0.1.occluded", "PCK@0.1.visible", "inversion.back", "params",
            "gflops", "macs", "cpu_minutes"} <= set(record["final"])
    assert (folder / "stages" / "two_stages-seed0.json").exists()  # the 2-stage runs belong to `stages`
    entries = {c["claim"]: c for c in study.load_claims("06", "smoke")}
    assert entries["aggregation"]["complete"] and not entries["stages"]["complete"]
    assert [len(v["values"]) for v in entries["aggregation"]["variants"]] == [2, 2]
