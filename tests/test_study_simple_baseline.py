"""Chapter 04's study: SimpleBaseline's Table 1 claims declared under protocol 2, on chapter 04's reference network
and the recipe, and one real smoke run end to end."""
from __future__ import annotations

import json

import pytest
import torch

from posebook import study
from posebook.studies import simple_baseline as S
from posebook.studies import protocol


def claims(profile: str) -> dict:
    return {c.name: c for c in study.chapter_claims("04", profile)}


def test_chapter_04_declares_table_1s_deconvolution_and_input_size_rows():
    declared = claims("cpu")
    assert list(declared) == ["deconv_layers", "input_size"]
    deconv, size = declared["deconv_layers"], declared["input_size"]
    assert deconv.effect == ("deconv3", "deconv2") and deconv.metric == "PCK@0.1" and deconv.sign == 1
    assert "70.4" in deconv.paper and "67.9" in deconv.paper and "Table 1" in deconv.paper
    assert size.effect == ("input128", "recipe") and size.variant("recipe").of == "deconv_layers/deconv3"
    assert "60.6 / 70.4 / 72.2" in size.paper
    three, two = (v.config for v in deconv.variants)
    larger = size.variant("input128").config
    # the variants differ from the reference in the one setting they test (and the map size it implies)
    assert {k for k in three if two[k] != three[k]} == {"kwargs", "heatmap_size"}
    assert two["kwargs"] == dict(three["kwargs"], deconv_layers=2) and tuple(two["heatmap_size"]) == (12, 8)
    assert {k for k in three if larger[k] != three[k]} == {"input_size", "heatmap_size"}
    assert tuple(larger["input_size"]) == (128, 96) and tuple(larger["heatmap_size"]) == (32, 24)
    assert three["sigma"] == two["sigma"] == larger["sigma"] == 1.0  # the recipe's 1-pixel floor at every size


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_trained_variant_has_five_seeds_500_people_and_the_recipe(profile):
    from posebook.recipe import recipe

    rec = recipe(profile)
    for claim in claims(profile).values():
        assert claim.protocol == 2 and len(claim.seeds) >= 5
        for v in claim.variants:
            if v.of is None:
                assert v.config["val_people"] >= 500 and v.config["lr"] == rec.lr
                assert v.config["schedule"] == rec.schedule and v.config["augment"]["rotation"] == rec.augment.rotation


def test_the_cpu_network_is_chapter_04s_reference_with_its_pretrained_trunk():
    from posebook import learn

    ref = learn.reference("04")
    three = claims("cpu")["deconv_layers"].variant("deconv3").config
    assert three["model"] == ref.model and three["kwargs"] == dict(ref.kwargs, deconv_layers=3)
    assert three["pretrained"] and ref.pretrained
    torch.manual_seed(0)
    net = protocol.recipe_model(three)
    trunk = learn.pretrained_trunk()
    assert torch.equal(net.layer1[0].conv1.weight, trunk["layer1.0.conv1.weight"])
    scratch = protocol.recipe_model(dict(three, pretrained=False))
    assert not torch.equal(scratch.layer1[0].conv1.weight, trunk["layer1.0.conv1.weight"])
    two = protocol.recipe_model(claims("cpu")["deconv_layers"].variant("deconv2").config)
    assert two(torch.zeros(1, 3, 96, 64)).shape == (1, 17, 12, 8)


def test_chapter_04_smoke_study_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["04", "--profile", "smoke"]) == 0
    assert capsys.readouterr().out.count("done") == 6  # 3 variants x 2 seeds; "recipe" reads deconv3's runs
    folder = tmp_path / "studies" / "smoke" / S.CHAPTER
    record = json.loads((folder / "deconv_layers" / "deconv2-seed1.json").read_text())
    assert record["protocol"] == 2 and record["declaration"] == claims("smoke")["deconv_layers"].digest
    assert record["config"]["heatmap_size"] == [8, 8] and record["config"]["kwargs"]["deconv_layers"] == 2
    assert {"AP", "PCK@0.1", "macs", "params", "inversion.back"} <= set(record["final"])
    assert study.main(["summary", "--json", "--profile", "smoke", "--root", str(tmp_path / "studies")]) == 0
    entries = {c["claim"]: c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
               if c["chapter"] == S.CHAPTER}
    for name in ("deconv_layers", "input_size"):
        assert entries[name]["complete"] and entries[name]["preregistered"] and entries[name]["rule"] == study.RULE
        assert entries[name]["verdict"] in study.VERDICTS
