"""Chapter 01's study: the AP ceiling of heatmap decoding at strides 4, 8 and 16 (posebook/studies/data.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posebook import study
from posebook.studies import data as ceiling

# mean distance of a point uniform in a unit square to its centre: (sqrt(2) + asinh(1)) / 6
GRID_ERROR = (math.sqrt(2) + math.asinh(1)) / 6


def _config(profile: str, name: str) -> dict:
    (claim,) = ceiling.claims(profile)
    return claim.variant(name).config


def test_the_claim_is_a_probe_at_strides_4_8_16_with_sigma_scaled_to_the_stride():
    (claim,) = study.chapter_claims("01", "cpu")
    assert claim.chapter == "01_data" and claim.name == "decoding_ceiling" and claim.metric == "AP"
    assert claim.effect == ("rounded-s4", "rounded-s16") and claim.sign == 1
    assert "74.40 / 68.90 / 55.00" in claim.paper and "Fig. 5" in claim.paper and ".md" not in claim.paper
    assert all(v.kind == "probe" for v in claim.variants) and len(claim.variants) == 9
    sizes = {}
    for v in claim.variants:
        c = v.config
        assert c["input_size"] == (256, 192) and c["val_people"] >= 200
        assert c["sigma"] * c["stride"] == pytest.approx(8.0)  # the same 8-pixel Gaussian in the input
        sizes[c["stride"]] = c["heatmap_size"]
    assert sizes == {4: (64, 48), 8: (32, 24), 16: (16, 12)}
    encoder, decoder = ceiling.codecs(claim.variant("exact-s16").config)
    assert encoder.unbiased and not decoder.unbiased and tuple(decoder.heatmap_size) == (16, 12)


def test_the_probe_is_deterministic_and_ap_falls_with_the_stride(one_thread):
    runs = {name: ceiling.ceiling_probe(_config("smoke", name), 0)
            for name in ("rounded-s4", "rounded-s8", "rounded-s16", "dark-s16")}
    again = ceiling.ceiling_probe(_config("smoke", "rounded-s16"), 0)
    assert again == runs["rounded-s16"]
    ap = {name: run["final"]["AP"] for name, run in runs.items()}
    assert ap["rounded-s4"] > ap["rounded-s8"] > ap["rounded-s16"], ap
    assert ap["dark-s16"] > ap["rounded-s16"], ap  # DARK's sub-pixel target and decoding recover most of it
    assert runs["rounded-s4"]["val_people"] >= ceiling.SIZES["smoke"]["val_people"]
    # HRNet's rounded target decodes to the grid: the error is that of a uniform point in a stride x stride cell
    for stride in (4, 8, 16):
        error = runs[f"rounded-s{stride}"]["final"]["error.input_px"]
        assert error == pytest.approx(GRID_ERROR * stride, rel=0.12), (stride, error)
    assert ceiling.ceiling_probe(_config("smoke", "rounded-s16"), 1) != runs["rounded-s16"]  # another set


def test_a_perfect_prediction_on_the_grid_is_scored_ap_1(one_thread):
    val = ceiling.validation_set(_config("smoke", "rounded-s4"), 0)
    encoder = ceiling.GaussianHeatmap((256, 192), (256, 192), 1.0, unbiased=True)  # stride 1: no rounding loss
    pred = ceiling.perfect_predictions(val, encoder, encoder)
    held = (pred["weight"] > 0) & (pred["gt"][..., 2] > 0)
    error = np.linalg.norm(pred["keypoints"][..., :2] - pred["gt"][..., :2], axis=-1)[held]
    assert np.median(error) < 0.05 and error.mean() < 0.5, (np.median(error), error.mean())
    assert ceiling.ceiling_scores(val, encoder, encoder)["AP"] > 0.99


def test_bad_inputs_raise_saying_what(one_thread):
    encoder, decoder = ceiling.codecs(_config("smoke", "rounded-s4"))
    with pytest.raises(ValueError, match="no person records"):
        ceiling.perfect_predictions(object(), encoder, decoder)
    val = ceiling.validation_set(_config("smoke", "rounded-s4"), 0)
    with pytest.raises(ValueError, match="differ in size"):
        ceiling.perfect_predictions(val, encoder, ceiling.codecs(_config("smoke", "rounded-s8"))[1])
    with pytest.raises(ValueError, match="expected the 'decoding_ceiling' claim"):
        ceiling.ceiling_numbers({"claim": "stacking", "variants": []})


def test_smoke_study_end_to_end_records_validate_and_the_chapter_view_falls_back(tmp_path, monkeypatch, capsys,
                                                                               one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    assert study.main(["01", "--profile", "smoke"]) == 0
    assert capsys.readouterr().out.count("done") == 27
    (claim,) = ceiling.claims("smoke")
    for v in claim.variants:
        for seed in claim.seeds:
            path = study.record_path(None, "smoke", "01_data", claim.name, v.name, seed)
            record = study.read_record(path, claim, v, "smoke", seed)
            assert record["kind"] == "probe" and record["curves"] == [] and record["val_people"] >= 24
    assert study.main(["01", "--profile", "smoke"]) == 0
    assert capsys.readouterr().out.count("skipped") == 27
    assert study.main(["summary", "--json", "--profile", "smoke"]) == 0
    (entry,) = [c for c in json.loads(capsys.readouterr().out.strip().splitlines()[-1]) if c["chapter"] == "01_data"]
    assert entry["verdict"] == "shown" and all(len(v["values"]) == 3 for v in entry["variants"])

    shown, computed = ceiling.ceiling_claim("smoke")  # records exist: read, not computed
    assert not computed and shown["verdict"] == "shown"
    live, computed = ceiling.ceiling_claim("cpu")  # no cpu records under this root: computed now, smoke size
    assert computed and live["profile"] == "smoke"
    assert [v["values"] for v in live["variants"]] == [v["values"] for v in shown["variants"]]
    numbers = ceiling.ceiling_numbers(shown)
    assert numbers["ceiling_paper_s16"] == "55.0" and numbers["ceiling_paper_loss_s16"] == "19.4"
    assert float(numbers["ceiling_rounded_s4"]) > float(numbers["ceiling_rounded_s16"])
    assert numbers["ceiling_sets"] == "3" and int(numbers["ceiling_people"]) >= 24
    fig = ceiling.plot_ceiling(shown)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:3] == ["rounded-s4", "rounded-s8", "rounded-s16"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_committed_cpu_records_validate_and_show_the_claim(root):
    folder = root / "book" / "results" / "studies" / "cpu" / "01_data"
    if not folder.is_dir():
        pytest.skip(f"no cpu records at {folder}: run `python -m posebook.study 01 --profile cpu`")
    (entry,) = [c for c in study.load_claims("01_data", "cpu", root / "book" / "results" / "studies")
                if c["claim"] == "decoding_ceiling"]
    assert entry["complete"] and entry["verdict"] == "shown"
    means = {v["name"]: v["mean"] for v in entry["variants"]}
    for family in ceiling.FAMILIES:
        assert means[f"{family}-s4"] >= means[f"{family}-s8"] >= means[f"{family}-s16"], means
    assert means["rounded-s8"] > means["rounded-s16"]
    for v in entry["variants"]:
        people = v["val_people"] if isinstance(v["val_people"], list) else [v["val_people"]]
        assert min(people) >= 200


def test_the_real_coco_sample_shows_the_same_order(coco_sample, one_thread):
    from posebook.data import CocoKeypoints

    val = CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=False)
    ap = {name: ceiling.ceiling_scores(val, *ceiling.codecs(_config("smoke", name)))["AP"]
          for name in ("rounded-s4", "rounded-s16", "dark-s16")}
    assert ap["rounded-s4"] > ap["rounded-s16"] and ap["dark-s16"] > ap["rounded-s16"], ap
