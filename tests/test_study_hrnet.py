"""Chapter 07's study: its declarations, the effective-receptive-field probe (exact on known maps, deterministic,
wider with more exchange units) and one real smoke run of a trained claim end to end."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_close
from torch import nn

from posebook import study
from posebook.studies import hrnet as H


def claims(profile: str) -> dict:
    return {c.name: c for c in study.chapter_claims("07", profile)}


# ---- declarations ------------------------------------------------------------------------------------------------

def test_chapter_07_declares_table_6_fig_5_and_the_receptive_field_probes():
    declared = claims("cpu")
    assert list(declared) == ["repeated_fusion", "fusion_inversion", "fusion_receptive_field",
                              "output_receptive_field", "high_resolution"]
    fusion, resolution = declared["repeated_fusion"], declared["high_resolution"]
    assert [v.config["kwargs"]["exchange"] for v in fusion.variants] == ["final", "across_stages", "all"]
    assert fusion.effect == ("all", "final") and fusion.metric == "PCK@0.1"
    inversion = declared["fusion_inversion"]
    assert inversion.metric == "inversion.back" and inversion.sign == -1
    assert [v.of for v in inversion.variants] == [f"repeated_fusion/{e}" for e in H.EXCHANGES]
    assert "70.8 / 71.9 / 73.4 AP" in fusion.paper and "Table 6" in fusion.paper
    assert "74.4 / 68.9 / 55.0 AP" in resolution.paper and "Fig. 5" in resolution.paper
    assert resolution.variant("stride4").of == "repeated_fusion/all" and resolution.effect == ("stride4", "stride16")
    # the variants differ from the full HRNet in the one setting they test, nothing else; the heads equally wide
    full = fusion.variant("all").config
    for v in [*fusion.variants, *resolution.variants[1:]]:
        assert {k for k in full if v.config[k] != full[k]} <= {"kwargs"}
        assert {k for k in full["kwargs"] if v.config["kwargs"][k] != full["kwargs"][k]} <= {"exchange",
                                                                                            "head_stride"}
        assert v.config["kwargs"]["head_channels"] == full["kwargs"]["width"]
    assert [v.config["kwargs"]["head_stride"] for v in resolution.variants[1:]] == [16]
    for claim in declared.values():
        assert ("Fig." in claim.paper or "Table" in claim.paper or "no figure" in claim.paper) and ".md" not in claim.paper


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_trained_variants_have_five_seeds_500_validation_people_the_recipe_and_probes_no_training_budget(profile):
    from posebook.recipe import recipe

    rec = recipe(profile)
    for claim in claims(profile).values():
        assert len(claim.seeds) >= 5 and claim.protocol == 2
        for v in claim.variants:
            if v.kind == "trained" and v.of is None:
                assert v.config["val_people"] >= 500 and v.config["scene"] == {} and v.config["max_people"] >= 2
                assert tuple(v.config["input_size"]) == rec.input_size and v.config["lr"] == rec.lr
                assert v.config["schedule"] == rec.schedule and v.config["augment"]["scale"] == rec.augment.scale
            if v.kind == "probe":
                assert "steps" not in v.config and "lr" not in v.config


def test_the_cpu_model_is_chapter_07s_reference_with_equal_head_widths():
    from posebook.learn import reference

    ref = reference("07")
    config = claims("cpu")["repeated_fusion"].variant("all").config
    assert config["model"] == ref.model == "hrnet"
    assert config["kwargs"] == dict(ref.kwargs, exchange="all", head_stride=4, head_channels=ref.kwargs["width"])
    assert config["codec"] == {"unbiased": True} and not config["pretrained"]  # DARK targets, from scratch


def test_equal_head_widths_add_one_projection_and_keep_the_official_network_without_them():
    from posebook import models

    size = dict(num_joints=17, width=4, stem_width=8, layer1_blocks=1, stage_blocks=1)
    official = models.create("hrnet", **size)
    assert not hasattr(official, "head_transition") and official.final_layer.in_channels == 4
    wide = models.create("hrnet", head_stride=16, head_channels=4, **size)
    assert wide.final_layer.in_channels == 4 and wide.head_transition[0].in_channels == 16
    assert wide(torch.randn(1, 3, 64, 64)).shape == (1, 17, 16, 16)
    with pytest.raises(ValueError, match="head_channels"):
        models.create("hrnet", head_channels=0, **size)


# ---- the probe ---------------------------------------------------------------------------------------------------

def test_effective_receptive_field_radii_are_exact_on_known_maps():
    images = torch.randn(2, 3, 32, 24)
    delta = H.effective_receptive_field(lambda x: x[:, :1], images)  # a pixel sees only itself
    assert delta["radii"] == {0.5: 0.0, 0.9: 0.0} and delta["centre"] == (16, 12)
    assert int(delta["grad"].count_nonzero()) == 1 and delta["grad"][16, 12] > 0
    box = H.effective_receptive_field(lambda x: nn.functional.avg_pool2d(x, 3, 1, 1), images, masses=(0.1, 0.5, 1.0))
    assert box["radii"] == {0.1: 0.0, 0.5: 1.0, 1.0: pytest.approx(2 ** 0.5)}  # 1 + 4 + 4 of 9 equal weights
    strided = H.effective_receptive_field(lambda x: x[:, :, ::4, ::4], images)  # pixel i at input i x 4
    assert strided["centre"] == (16.0, 12.0) and strided["grad"][16, 12] > 0
    with pytest.raises(ValueError, match="zero everywhere"):
        H.effective_receptive_field(lambda x: x[:, :, :1] * 0, images)


def test_calibrated_batchnorm_holds_the_probe_batch_statistics_and_leaves_the_model_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.1))
    images = torch.randn(3, 3, 8, 8)
    H.calibrate_batchnorm(model, images)
    with torch.no_grad():
        features = model[0](images)
    assert not model.training and model[1].momentum == 0.1
    assert_close(model[1].running_mean, features.mean(dim=(0, 2, 3)))
    assert_close(model[1].running_var, features.var(dim=(0, 2, 3)))


def test_erf_probe_is_deterministic_and_wider_with_more_exchange_units(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    probe = claims("smoke")["fusion_receptive_field"]
    first = {v.name: H.erf_probe(dict(v.config), 0)["final"] for v in probe.variants}
    assert H.erf_probe(dict(probe.variant("all").config), 0)["final"] == first["all"]
    assert set(first["all"]) == {"erf.high.r50", "erf.high.r90", "erf.output.r50", "erf.output.r90"}
    high = [first[name]["erf.high.r50"] for name in ("final", "across_stages", "all")]
    assert high[0] < high[1] < high[2], high
    # with only the final unit, the output pixel sees wider than the high-resolution branch entering that unit
    assert first["final"]["erf.output.r50"] > first["final"]["erf.high.r50"]


# ---- one real smoke run ------------------------------------------------------------------------------------------

def test_chapter_07_smoke_study_of_one_trained_claim_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["07", "--profile", "smoke", "--only", "high_resolution"]) == 0
    assert capsys.readouterr().out.count("done") == 4  # stride4 is repeated_fusion/all's runs
    folder = tmp_path / "studies" / "smoke" / "07_hrnet"
    record = json.loads((folder / "high_resolution" / "stride16-seed1.json").read_text())
    assert record["config"]["kwargs"]["head_stride"] == 16 and record["config"]["kwargs"]["exchange"] == "all"
    assert record["val_people"] >= 4 and record["kind"] == "trained" and record["seed"] == 1
    assert record["protocol"] == 2 and record["declaration"] == claims("smoke")["high_resolution"].digest
    assert {"AP", "PCK@0.2", "PCK@0.1", "error.jitter", "error.inversion", "params", "gflops", "macs",
            "inversion.back", "inversion.side", "cpu_minutes"} <= set(record["final"])
    assert [p["step"] for p in record["curves"] if "AP" in p] == [2, 4]
    assert (folder / "repeated_fusion" / "all-seed0.json").exists()
    assert not (folder / "high_resolution" / "stride4-seed0.json").exists()
    assert study.main(["07", "--profile", "smoke", "--only", "output_receptive_field"]) == 0
    assert capsys.readouterr().out.count("done") == 6
    assert study.main(["summary", "--json", "--profile", "smoke", "--root", str(tmp_path / "studies")]) == 0
    entries = {c["claim"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
               if c["chapter"] == "07_hrnet"}
    assert entries["high_resolution"]["complete"] and entries["output_receptive_field"]["complete"]
    assert [len(v["values"]) for v in entries["high_resolution"]["variants"]] == [2, 2]
    assert entries["high_resolution"]["verdict"] in study.VERDICTS and entries["high_resolution"]["preregistered"]
    assert entries["high_resolution"]["rule"] == study.RULE
    assert entries["fusion_receptive_field"]["verdict"] in study.VERDICTS
    assert not entries["repeated_fusion"]["complete"]  # final and across_stages not run
    assert study.main(["07", "--profile", "smoke", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "14 runs declared, 4 to run" in plan and plan.count("recorded") == 10
    assert "repeated_fusion/across_stages seed 1" in plan and "ms/step" in plan and "estimated total:" in plan
