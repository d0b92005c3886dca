"""Chapter 09's study (posebook/studies/side_by_side.py): every architecture as its own chapter's study declares it,
on one budget; the papers' orderings as claims reading one run per architecture and seed; a smoke run end to end;
the training minutes read from a record's logged throughput."""
from __future__ import annotations

import json

import pytest

from posebook import study
from posebook.recipe import recipe
from posebook.studies import cpn, hrnet, mspn, simple_baseline, stacked_hourglass
from posebook.studies import side_by_side as sbs

CHAPTER_CONFIGS = {"hourglass": stacked_hourglass.config, "simple_baseline": simple_baseline.config,
                   "cpn": cpn.config, "mspn": mspn.config, "hrnet": hrnet.config}
BUDGET = ("steps", "warmup", "milestones", "evaluations")


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_every_architecture_is_its_chapters_network_on_one_budget(profile):
    steps = sbs.SIZES[profile]["steps"]
    configs = {arch: sbs.config(profile, arch) for arch in sbs.ARCHITECTURES}
    for arch, c in configs.items():
        own = CHAPTER_CONFIGS[arch](profile)
        assert {k: v for k, v in c.items() if k not in BUDGET} == {k: v for k, v in own.items() if k not in BUDGET}
        assert c["steps"] == steps and c["evaluations"] == sbs.SIZES[profile]["evaluations"]
        assert c["warmup"] == recipe(profile).trainer_options(steps)["warmup_steps"]
    shared = ("batch_size", "optimizer", "lr", "schedule", "cosine_tail", "warmup", "input_size", "heatmap_size",
              "augment", "train_items", "val_people", "image_size", "max_people", "scene")
    for key in shared:  # one recipe, one split, one budget: the same for all five
        assert len({json.dumps(c[key], sort_keys=True) for c in configs.values()}) == 1, key
    assert [c["model"] for c in configs.values()] == ["hourglass", "simple_baseline", "cpn", "mspn", "hrnet"]


def test_claims_train_each_architecture_once_and_read_it_elsewhere():
    claims = study.chapter_claims("09", "cpu")
    assert [c.name for c in claims] == ["hrnet_vs_simple_baseline", "mspn_vs_cpn", "cpn_vs_hourglass",
                                        "simple_baseline_vs_hourglass"]
    trained = [(c.name, v.name) for c in claims for v in c.variants if v.of is None]
    assert sorted(v for _, v in trained) == sorted(sbs.ARCHITECTURES)
    for claim_name, arch in trained:
        assert sbs.variant_of(arch) == f"{claim_name}/{arch}"
    for claim in claims:
        assert claim.metric == "AP" and claim.sign == 1 and claim.protocol == 2 and len(claim.seeds) == 5
        assert claim.rule == "welch-1" and claim.paper
        a, b = claim.effect  # the papers' order: the first has the higher AP in their tables
        assert sbs.PAPER_AP[a][0] > sbs.PAPER_AP[b][0]
    runs = study.plan("09", "cpu")
    assert len(runs) == 25  # 5 architectures x 5 seeds, each trained once


def test_an_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="architecture 'vgg' is unknown"):
        sbs.config("cpu", "vgg")
    with pytest.raises(ValueError, match="config model 'vgg' is unknown"):
        sbs.train(dict(sbs.config("smoke", "hrnet"), model="vgg"), 0)


def test_training_minutes_add_up_each_logged_window_and_skip_the_curve_points():
    curves = [{"step": 10, "loss": 1.0, "samples_per_s": 32.0},     # 10 steps x 32 crops at 32/s: 10 s
              {"step": 20, "loss": 0.9, "samples_per_s": 64.0},     # 10 x 32 at 64/s: 5 s
              {"step": 20, "AP": 0.1},                               # a curve point alone: no time
              {"step": 30, "loss": 0.8, "samples_per_s": 16.0, "AP": 0.2}]  # 10 x 32 at 16/s: 20 s
    got = sbs.training_minutes(curves, batch_size=32)
    assert [s for s, _ in got] == [10, 20, 20, 30]
    assert [m * 60 for _, m in got] == pytest.approx([10.0, 15.0, 15.0, 35.0])


@pytest.mark.slow
def test_smoke_runs_write_records_with_curves_costs_occlusion_and_views(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    done = list(study.run_study("09", "smoke", ["cpn_vs_hourglass/hourglass", "mspn_vs_cpn/cpn"], root=tmp_path))
    assert [status for status, _ in done] == ["done"] * 4  # two architectures x two smoke seeds
    for claim, arch in (("cpn_vs_hourglass", "hourglass"), ("mspn_vs_cpn", "cpn")):
        record = study.read_record(study.record_path(tmp_path, "smoke", "09_side_by_side", claim, arch, 0))
        final = record["final"]
        assert final["macs"] > 0 and final["params"] > 0 and 0 <= final["AP"] <= 1
        assert {"PCK@0.1.occluded", "PCK@0.1.visible", "inversion.back", "cpu_minutes"} <= set(final)
        assert any("samples_per_s" in p for p in record["curves"]) and any("AP" in p for p in record["curves"])
        assert record["declaration"] == study.chapter_claims("09", "smoke")[
            [c.name for c in study.chapter_claims("09", "smoke")].index(claim)].digest
