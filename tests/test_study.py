"""posebook.study: verdicts from records, skip-existing runs, atomic and checked records, the summary's JSON, CPU and
GPU records kept apart, and one real smoke run of chapter 03's intermediate-supervision claim."""
from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import pytest

from posebook import study, studies
from posebook.study import Claim, Variant

TOY = "99_toy"


# ---- the verdict rule -------------------------------------------------------------------------------------------

def test_verdict_is_shown_when_the_effect_exceeds_both_seed_ranges_with_the_claimed_sign():
    assert study.verdict([0.60, 0.62, 0.61], [0.50, 0.52, 0.51]) == "shown"
    assert study.verdict([0.50, 0.52, 0.51], [0.60, 0.62, 0.61], sign=-1) == "shown"


def test_verdict_is_contradicted_when_the_effect_exceeds_both_seed_ranges_against_the_claim():
    assert study.verdict([0.50, 0.52, 0.51], [0.60, 0.62, 0.61], sign=1) == "contradicted"
    assert study.verdict([0.60, 0.62, 0.61], [0.50, 0.52, 0.51], sign=-1) == "contradicted"
    # against the claim but within a seed range: a null result
    assert study.verdict([0.45, 0.57, 0.51], [0.60, 0.62, 0.61], sign=1) == "not shown"
    assert study.verdict([0.50, 0.52, 0.51], [0.60, 0.62, 0.61], complete=False) == "not shown"


def test_verdict_is_not_shown_when_a_seed_range_is_as_large_as_the_effect():
    # effect 0.10; the first variant's range 0.12 swallows it, though the other's (0.02) does not
    assert study.verdict([0.55, 0.67, 0.61], [0.50, 0.52, 0.51]) == "not shown"
    assert study.verdict([0.60, 0.62, 0.61], [0.45, 0.57, 0.51]) == "not shown"
    assert study.verdict([0.6], [0.6]) == "not shown"  # no effect at all


def test_verdict_is_not_shown_for_an_incomplete_study():
    assert study.verdict([0.60, 0.62, 0.61], [0.50, 0.52, 0.51], complete=False) == "not shown"
    assert study.verdict([], [0.5]) == "not shown"


def test_a_trained_claim_needs_three_seeds_under_protocol_1_and_five_under_protocol_2():
    variants = (Variant("a", _probe), Variant("b", _probe))
    with pytest.raises(ValueError, match="protocol 1 needs at least 3 seeds"):
        Claim(TOY, "c", "s", "m", "p", variants, ("a", "b"), seeds=(0, 1))
    with pytest.raises(ValueError, match="protocol 2 needs at least 5 seeds"):
        Claim(TOY, "c", "s", "m", "p", variants, ("a", "b"), seeds=(0, 1, 2, 3), protocol=2)
    Claim(TOY, "c", "s", "m", "p", variants, ("a", "b"), seeds=(0, 1, 2, 3, 4), protocol=2)
    Claim(TOY, "c", "s", "m", "p", variants, ("a", "b"), seeds=(0, 1), protocol=2, profile="smoke")  # plumbing
    with pytest.raises(ValueError, match="protocol=3"):
        Claim(TOY, "c", "s", "m", "p", variants, ("a", "b"), protocol=3)
    assert study.PROTOCOL == 2 and study.MIN_SEEDS[2] == 5 and study.MIN_VAL_PEOPLE[2]["cpu"] == 500


def test_chapters_are_named_by_stem_or_number():
    assert studies.resolve("03") == "03_stacked_hourglass" == studies.resolve("3")
    assert studies.resolve("03_stacked_hourglass") == "03_stacked_hourglass"
    with pytest.raises(ValueError, match="no study is declared for chapter '42'"):
        studies.resolve("42")


# ---- a toy chapter: probes that count their calls -----------------------------------------------------------------

CALLS: list = []


def _probe(config, seed):
    CALLS.append((config["value"], seed))
    return {"final": {"m": config["value"] + 0.001 * seed}, "curves": [{"step": 1, "m": 0.0}], "val_people": None}


def _trained(config, seed):
    CALLS.append((config["value"], seed))
    steps = [{"step": s, "loss": 1.0 / s, "m": config["value"] * s / 2} for s in (1, 2)]
    return {"final": {"m": config["value"] + 0.001 * seed, "stack1.m": 0.1}, "curves": steps,
            "val_people": config.get("people", 250)}


def _toy_claims(profile):
    return [
        Claim(TOY, "probe_claim", "a beats b", "m", "Table 1: 2.0 vs 1.0",
              (Variant("a", _probe, {"value": 2.0}, kind="probe"), Variant("b", _probe, {"value": 1.0}, kind="probe")),
              effect=("a", "b")),
        Claim(TOY, "trained_claim", "x beats y", "m", "Fig. 2",
              (Variant("x", _trained, {"value": 0.6}), Variant("y", _trained, {"value": 0.5})), effect=("x", "y")),
        Claim(TOY, "reader", "x's stack 1 against y", "m", "Fig. 3",
              (Variant("early", of="trained_claim/x", read="stack1.m"), Variant("late", of="trained_claim/y")),
              effect=("late", "early")),
    ]


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A registered toy chapter; records under a temporary $POSEBOOK_STUDIES."""
    module = types.ModuleType("posebook.studies._toy")
    module.CHAPTER, module.claims = TOY, _toy_claims
    monkeypatch.setitem(sys.modules, "posebook.studies._toy", module)
    monkeypatch.setattr(studies, "CHAPTERS", {**studies.CHAPTERS, TOY: "_toy"})
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    CALLS.clear()
    return tmp_path / "studies"


def _run(profile="cpu", only=None):
    return [(status, run.label) for status, run in study.run_study(TOY, profile, only, command="test")]


def test_records_land_under_profile_chapter_claim_variant_seed(toy):
    done = _run(only=["probe_claim"])
    assert [s for s, _ in done] == ["done"] * 6
    path = toy / "cpu" / TOY / "probe_claim" / "a-seed2.json"
    record = json.loads(path.read_text())
    assert record["seed"] == 2 and record["final"]["m"] == pytest.approx(2.002)
    assert record["config"] == {"value": 2.0} and record["command"] == "test" and record["kind"] == "probe"
    assert set(study.RECORD_KEYS) <= set(record)


def test_runs_whose_record_exists_are_skipped(toy):
    _run()
    first = list(CALLS)
    assert len(first) == 12  # 2 probes x 3 seeds + 2 trained x 3 seeds; "reader" runs nothing of its own
    again = _run()
    assert {s for s, _ in again} == {"skipped"} and CALLS == first
    (toy / "cpu" / TOY / "trained_claim" / "y-seed1.json").unlink()
    assert [label for s, label in _run() if s == "done"] == ["trained_claim/y seed 1"]
    assert CALLS[len(first):] == [(0.5, 1)]


def test_only_a_reading_claim_runs_the_runs_it_reads(toy):
    labels = [label for _, label in _run(only=["reader"])]
    assert sorted(labels) == sorted(f"trained_claim/{v} seed {s}" for v in "xy" for s in range(3))


def test_only_one_variant_of_a_claim_runs_its_runs_and_nothing_else(toy):
    assert [label for _, label in _run(only=["trained_claim/y"])] == [f"trained_claim/y seed {s}" for s in range(3)]
    assert CALLS == [(0.5, s) for s in range(3)]
    # a reading variant names the runs it reads; two lanes with disjoint variants never train one run twice
    assert [label for _, label in _run(only=["reader/early", "probe_claim/b"])] == (  # in declaration order
        [f"probe_claim/b seed {s}" for s in range(3)] + [f"trained_claim/x seed {s}" for s in range(3)])
    assert [s for s, _ in _run(only=["trained_claim"])] == ["skipped"] * 6
    with pytest.raises(ValueError, match=r"--only trained_claim/z: claim trained_claim has the variants \['x', 'y'\]"):
        _run(only=["trained_claim/z"])
    with pytest.raises(ValueError, match="expected CLAIM or CLAIM/VARIANT"):
        _run(only=["trained_claim/"])
    with pytest.raises(ValueError, match=r"--only \['nope/x'\]"):
        _run(only=["nope/x"])


def test_records_are_written_atomically(toy, monkeypatch):
    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        _run(only=["probe_claim"])
    folder = toy / "cpu" / TOY / "probe_claim"
    assert not folder.exists() or list(folder.iterdir()) == []  # no record, no half-written temporary file


def test_a_malformed_record_raises_naming_its_file(toy):
    _run(only=["probe_claim"])
    path = toy / "cpu" / TOY / "probe_claim" / "b-seed0.json"
    path.write_text('{"format": "posebook.study/1", "seed": ')
    with pytest.raises(ValueError, match="b-seed0.json.*JSON"):
        study.load_claims(TOY, "cpu")
    with pytest.raises(ValueError, match="b-seed0.json"):
        _run(only=["probe_claim"])
    path.write_text(json.dumps({"format": study.FORMAT, "seed": 0}))
    with pytest.raises(ValueError, match="b-seed0.json.*missing"):
        study.load_claims(TOY, "cpu")


def test_a_record_made_with_another_config_is_refused(toy):
    _run(only=["probe_claim"])
    path = toy / "cpu" / TOY / "probe_claim" / "b-seed0.json"
    record = json.loads(path.read_text())
    record["config"]["value"] = 7.0
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="b-seed0.json.*another config.*value"):
        study.load_claims(TOY, "cpu")


def test_a_trained_run_needs_200_validation_people_on_cpu(toy, monkeypatch):
    monkeypatch.setattr(sys.modules["posebook.studies._toy"], "claims", lambda p: [Claim(
        TOY, "few", "s", "m", "p", (Variant("x", _trained, {"value": 1, "people": 40}),
                                    Variant("y", _trained, {"value": 0})), ("x", "y"))])
    with pytest.raises(ValueError, match="at least 200 validation people, got val_people=40"):
        _run("cpu")
    assert [s for s, _ in _run("smoke")] == ["done"] * 6  # smoke runs may use a handful


def test_a_protocol_2_run_needs_500_validation_people_and_its_record_says_its_protocol(toy, monkeypatch):
    def declared(people):
        return lambda p: [Claim(TOY, "p2", "s", "m", "p", (Variant("x", _trained, {"value": 1, "people": people}),
                                                           Variant("y", _trained, {"value": 0, "people": 500})),
                                ("x", "y"), seeds=(0, 1, 2, 3, 4), protocol=2)]

    monkeypatch.setattr(sys.modules["posebook.studies._toy"], "claims", declared(250))
    with pytest.raises(ValueError, match=r"\(protocol 2\) must be scored on at least 500 validation people"):
        _run("cpu")
    monkeypatch.setattr(sys.modules["posebook.studies._toy"], "claims", declared(500))
    assert [s for s, _ in _run("cpu")] == ["done"] * 10
    record = json.loads((toy / "cpu" / TOY / "p2" / "x-seed0.json").read_text())
    assert record["protocol"] == 2 and record["val_people"] == 500


def test_a_protocol_2_claim_refuses_records_without_a_digest(toy, monkeypatch):
    claim = Claim(TOY, "p2", "s", "m", "p", (Variant("x", _trained, {"value": 1, "people": 500}),
                                             Variant("y", _trained, {"value": 0, "people": 500})),
                  ("x", "y"), seeds=(0, 1, 2, 3, 4), protocol=2)
    monkeypatch.setattr(sys.modules["posebook.studies._toy"], "claims", lambda p: [claim])
    _run("cpu")
    path = toy / "cpu" / TOY / "p2" / "y-seed3.json"
    record = json.loads(path.read_text())
    del record["declaration"]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"y-seed3.json: made before declarations were stored.*protocol 2"):
        study.load_claims(TOY, "cpu")
    assert "protocol" not in Claim(TOY, "c", "s", "m", "p", claim.variants, ("x", "y")).declaration()
    assert claim.declaration()["protocol"] == 2


def test_a_run_without_the_claims_metric_writes_no_record(toy, monkeypatch):
    monkeypatch.setattr(sys.modules["posebook.studies._toy"], "claims", lambda p: [Claim(
        TOY, "nan", "s", "m", "p", (Variant("x", lambda c, s: {"final": {"m": float("nan")}}, kind="probe"),
                                    Variant("y", _probe, {"value": 0}, kind="probe")), ("x", "y"))])
    with pytest.raises(ValueError, match="lack a finite 'm'"):
        _run()
    assert not list(toy.rglob("*.json"))


def test_summary_json_last_line_lists_claims_with_values_per_seed_and_verdicts(toy, capsys):
    _run()
    assert study.main(["summary", "--json", "--profile", "cpu"]) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    claims = json.loads(out[-1])
    assert [c["claim"] for c in claims] == ["probe_claim", "trained_claim", "reader"]
    for c in claims:
        assert {"chapter", "claim", "metric", "paper", "verdict", "variants", "profile", "complete"} <= set(c)
        assert c["chapter"] == TOY and c["profile"] == "cpu" and c["verdict"] in study.VERDICTS and c["complete"]
        for v in c["variants"]:
            assert {"name", "values", "val_people"} <= set(v) and len(v["values"]) == 3
    probe, trained, reader = claims
    assert probe["verdict"] == "shown" and probe["paper"] == "Table 1: 2.0 vs 1.0"
    assert trained["variants"][0]["values"] == pytest.approx([0.6, 0.601, 0.602])
    assert trained["variants"][0]["val_people"] == 250 and probe["variants"][0]["val_people"] is None
    assert trained["effect"] == pytest.approx(0.1) and trained["verdict"] == "shown"
    assert reader["variants"][0]["values"] == [0.1, 0.1, 0.1]  # read from trained_claim/x's stack1.m
    assert reader["verdict"] == "shown"  # 0.5.. against 0.1
    assert trained["variants"][0]["curves"]["m"]["step"] == [1, 2]
    assert "verdict: shown" in "\n".join(out[:-1])


def test_summary_rewrites_the_results_pages_studies_tables(toy, tmp_path, capsys):
    _run()
    page = tmp_path / "results.md"
    page.write_text("# Results\n\nbefore\n\n<!-- studies:begin -->\nold table\n<!-- studies:end -->\n\nafter\n")
    assert study.main(["summary", "--profile", "cpu", "--page", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Results\n\nbefore\n") and text.endswith("<!-- studies:end -->\n\nafter\n")
    assert "old table" not in text and "### Studies, `cpu` profile" in text
    rows = [line for line in text.splitlines() if line.startswith(f"| {TOY} |")]
    assert [r.split(" | ")[1] for r in rows] == ["probe_claim", "trained_claim", "reader"]
    assert "x 0.601 [0.6-0.602] (3)" in rows[1] and "| shown |" in rows[1] and "Table 1: 2.0 vs 1.0" in rows[0]
    broken = tmp_path / "broken.md"
    broken.write_text("no markers here\n")
    with pytest.raises(ValueError, match="broken.md.*studies:begin"):
        study.main(["summary", "--profile", "cpu", "--page", str(broken)])
    assert broken.read_text() == "no markers here\n"


def test_a_missing_seed_makes_the_claim_incomplete_and_not_shown(toy):
    _run()
    (toy / "cpu" / TOY / "probe_claim" / "a-seed1.json").unlink()
    probe = study.load_claims(TOY, "cpu")[0]
    assert not probe["complete"] and probe["verdict"] == "not shown"
    assert probe["variants"][0]["seeds"] == [0, 2]


def test_cpu_and_gpu_records_are_kept_apart(toy):
    _run("cpu", only=["trained_claim"])
    for path in (toy / "cpu").rglob("x-seed*.json"):  # the same runs, recorded on a GPU with other results
        record = json.loads(path.read_text())
        record.update(profile="gpu", final={"m": 0.9, "stack1.m": 0.2})
        target = toy / "gpu" / path.relative_to(toy / "cpu")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(record))
    entries = study.load_claims(TOY)
    by_profile = {(c["profile"], c["claim"]): c for c in entries}
    assert by_profile["cpu", "trained_claim"]["variants"][0]["values"] == pytest.approx([0.6, 0.601, 0.602])
    assert by_profile["gpu", "trained_claim"]["variants"][0]["values"] == [0.9, 0.9, 0.9]
    assert by_profile["gpu", "trained_claim"]["variants"][1]["values"] == []  # no GPU run of y: not borrowed
    assert not by_profile["gpu", "trained_claim"]["complete"]
    assert study.load_claims(TOY, "gpu")[1]["profile"] == "gpu"


def test_plot_claim_draws_steps_or_per_variant_values(toy):
    import matplotlib

    matplotlib.use("Agg")
    _run()
    trained, reader = study.load_claims(TOY, "cpu")[1:]
    assert len(study.plot_claim(trained).axes[0].lines) == 2  # one mean curve per variant over steps
    fig = study.plot_claim(reader)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["early", "late"]


# ---- chapter 03 for real, in the smoke profile ---------------------------------------------------------------------

def test_chapter_03_declares_its_papers_claims_at_equal_width_and_equal_parameters():
    from posebook.bench import count_params
    from posebook.studies import stacked_hourglass as sh

    claims = {c.name: c for c in study.chapter_claims("03", "cpu")}
    assert list(claims) == ["intermediate_supervision", "supervision_gradient", "stacking_width", "stacking",
                            "halfway_vs_final", "refinement", "refinement_fixes"]
    assert all(len(c.seeds) >= 5 and c.protocol == 2 for c in claims.values())
    runs = "intermediate_supervision/with"
    halfway = claims["halfway_vs_final"]  # read per stack from the supervised 2-stack runs, no training of its own
    assert [(v.of, v.read) for v in halfway.variants] == [(runs, "stack1.PCK@0.1"), (runs, "stack2.PCK@0.1")]
    refinement = claims["refinement"]  # left/right swaps on side and back views, fewer is better
    assert refinement.sign == -1 and [v.read for v in refinement.variants] == ["stack1.inversion.side+back",
                                                                             "stack2.inversion.side+back"]
    assert [v.read for v in claims["refinement_fixes"].variants] == ["refined.fixed", "refined.broken"]
    base = claims["intermediate_supervision"].variant("with").config
    assert base["model"] == "hourglass" and base["kwargs"] == {"stacks": 2, "channels": 64, "order": 3}
    assert base["val_people"] >= 500 and not base["pretrained"] and base["supervise_all"]
    assert claims["intermediate_supervision"].variant("without").config == dict(base, supervise_all=False)
    width = claims["stacking_width"].variant("1-stack").config
    assert width == dict(base, kwargs=dict(base["kwargs"], stacks=1))  # equal width: one stack fewer, nothing else
    wide = claims["stacking"].variant("1-stack").config
    counts = [count_params(sh.model(c)) for c in (wide, base)]
    assert max(counts) / min(counts) < 1.05, counts  # parameter counts within 5%
    assert wide["kwargs"]["channels"] > base["kwargs"]["channels"] and wide["kwargs"]["stacks"] == 1
    for claim in claims.values():
        assert ("Fig." in claim.paper or "Table" in claim.paper or "no figure" in claim.paper) and ".md" not in claim.paper


def test_chapter_03_smoke_study_of_one_claim_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["03", "--profile", "smoke", "--only", "intermediate_supervision"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done") == 4
    folder = tmp_path / "studies" / "smoke" / "03_stacked_hourglass" / "intermediate_supervision"
    record = json.loads((folder / "without-seed1.json").read_text())
    assert record["config"]["supervise_all"] is False and record["val_people"] >= 4 and record["protocol"] == 2
    final = record["final"]
    assert {"AP", "PCK@0.1", "inversion.back", "stack1.PCK@0.1", "stack2.PCK@0.1", "stack1.inversion.side+back",
            "stack2.inversion.side+back", "refined.fixed", "refined.broken", "macs", "cpu_minutes"} <= set(final)
    assert final["stack2.PCK@0.1"] == final["PCK@0.1"]  # the last stack is the network's output
    validated = [p for p in record["curves"] if "PCK@0.1" in p]
    assert [p["step"] for p in validated] == [2, 4]
    assert any("loss" in p for p in record["curves"])
    assert record["command"] == "python -m posebook.study 03 --profile smoke --only intermediate_supervision"
    assert study.main(["03", "--profile", "smoke", "--only", "intermediate_supervision"]) == 0
    assert capsys.readouterr().out.count("skipped") == 4
    (entry,) = [c for c in study.load_claims("03", "smoke") if c["claim"] == "intermediate_supervision"]
    assert entry["complete"] and [len(v["values"]) for v in entry["variants"]] == [2, 2]
    assert study.main(["03", "--profile", "smoke", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert plan.count("recorded") == 4 and "12 runs declared, 8 to run" in plan
    assert "stacking/1-stack seed 1" in plan and "M params" in plan and "estimated total:" in plan


def test_chapter_03_judges_each_keypoint_as_pck_does_and_counts_swaps_on_turned_people():
    from types import SimpleNamespace

    from posebook.inference import pck_on_boxes
    from posebook.keypoints import COCO
    from posebook.studies import stacked_hourglass as sh

    rng = np.random.default_rng(0)
    gt = np.zeros((4, 17, 3))
    gt[..., :2] = rng.uniform(0, 100, (4, 17, 2))
    gt[..., 2] = rng.choice([0, 1, 2], (4, 17))
    pred = {"ann_id": np.arange(1, 5), "gt": gt, "keypoints": gt.copy()}
    pred["keypoints"][..., :2] += rng.normal(0, 8, (4, 17, 2))
    flip = COCO.flip_index()
    pred["keypoints"][1, :, :2] = gt[1, flip, :2]  # person 2 predicted mirrored: every eligible joint swapped
    coco = SimpleNamespace(anns={i: {"bbox": [0, 0, 100, 100]} for i in range(1, 5)})
    val = SimpleNamespace(coco=coco)
    views = {1: "front", 2: "back", 3: "side", 4: "front"}
    hit, swapped = sh.judged(pred, val, views)
    assert hit.mean() == pytest.approx(pck_on_boxes(pred, coco, 0.1)[1])
    assert hit.count() == int((gt[..., 2] > 0).sum())
    _, inverted_turned = sh.judged(pred, val, {1: "front", 2: "front", 3: "side", 4: "back"})
    assert swapped > inverted_turned  # the mirrored person counts only when seen from the side or the back
    assert np.isnan(sh.judged(pred, val, {i: "front" for i in range(1, 5)})[1])


def test_chapter_03_gradient_probe_is_deterministic(tmp_path, monkeypatch, one_thread):
    from posebook.studies import stacked_hourglass as sh

    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    claim = {c.name: c for c in sh.claims("smoke")}["supervision_gradient"]
    with_, without = (claim.variant(n).config for n in ("with", "without"))
    assert with_["probe_batch"] == 4
    first = sh.gradient_probe(with_, 0)["final"]
    assert sh.gradient_probe(with_, 0)["final"] == first
    assert first["grad_norm.stack1"] > 0
    assert sh.gradient_probe(without, 0)["final"]["grad_norm.stack1"] != first["grad_norm.stack1"]


def test_recorded_minutes_count_each_run_once_not_through_the_claims_reading_it():
    claims = [{"claim": "a", "variants": [{"name": "x", "source": "a/x", "minutes": 2.0, "values": [1, 2]},
                                          {"name": "y", "source": "a/y", "minutes": 3.0, "values": [1]}]},
              {"claim": "b", "variants": [{"name": "x", "source": "a/x", "minutes": 2.0, "values": [1, 2]},
                                          {"name": "z", "source": "b/z", "minutes": 0.5, "values": [3]}]}]
    assert [(v["claim"], v["name"]) for v in study.own_runs(claims)] == [("a", "x"), ("a", "y"), ("b", "z")]
    assert study.recorded_minutes(claims) == 5.5 and study.recorded_minutes(claims[1:]) == 0.5
    assert study.recorded_minutes([]) == 0.0


def test_chapter_costs_reads_notebook_minutes_and_the_studys_runs_each_once(toy, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / f"{TOY}_cpu.json").write_text(json.dumps({"figures": {"notebook_s": 270.0}}))
    _run("cpu", only=["trained_claim"])
    table = study.chapter_costs(TOY, lambda p: f"net-{p}", results=results)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert list(rows) == ["`smoke`", "`cpu`", "`gpu`", "`full`"]
    assert "| net-cpu | 4.5 |" in rows["`cpu`"] and "(6 runs recorded)" in rows["`cpu`"]
    assert "not yet measured | not yet measured" in rows["`gpu`"] and rows["`full`"].endswith("| - |")
    only_x = study.chapter_costs(TOY, str, keep=lambda v: v["name"] == "x", results=results)
    assert "(3 runs recorded)" in only_x
    (results / f"{TOY}_gpu.json").write_text("{not json")
    with pytest.raises(ValueError, match=f"{TOY}_gpu.json cannot be read"):
        study.chapter_costs(TOY, str, results=results)


# ---- pre-registration: the declaration's digest in every record ------------------------------------------------

def test_every_record_carries_its_claims_declaration_digest_and_the_summary_says_preregistered(toy):
    _run()
    claims = {c["claim"]: c for c in study.load_claims(TOY, "cpu")}
    declared = {c.name: c for c in _toy_claims("cpu")}
    record = json.loads((toy / "cpu" / TOY / "trained_claim" / "x-seed0.json").read_text())
    assert record["declaration"] == declared["trained_claim"].digest and len(record["declaration"]) == 16
    for name, c in claims.items():
        assert c["preregistered"] and c["rule"] == study.RULE and c["declaration"] == declared[name].digest
    trained = claims["trained_claim"]  # x 0.600-0.602 against y 0.500-0.502: Welch p tiny, effect >> 1 SD
    assert trained["verdict"] == "shown" == trained["robust"] and trained["welch"]["p"] < 1e-6
    assert trained["welch"]["detectable"] > 0


def test_the_digest_covers_what_is_declared_before_the_runs_not_the_wording():
    base = _toy_claims("cpu")[1]
    same = Claim(TOY, "trained_claim", "x beats y, said otherwise", "m", "Fig. 2 (quoted again)",
                 base.variants, effect=("x", "y"))
    assert same.digest == base.digest
    for changed in (Claim(TOY, "trained_claim", "x beats y", "m", "Fig. 2", base.variants, effect=("x", "y"),
                          seeds=(0, 1, 2, 3)),
                    Claim(TOY, "trained_claim", "x beats y", "other", "Fig. 2", base.variants, effect=("x", "y")),
                    Claim(TOY, "trained_claim", "x beats y", "m", "Fig. 2", base.variants, effect=("x", "y"), sign=-1),
                    Claim(TOY, "trained_claim", "x beats y", "m", "Fig. 2",
                          (Variant("x", _trained, {"value": 0.7}), base.variants[1]), effect=("x", "y"))):
        assert changed.digest != base.digest


def test_a_record_made_under_another_declaration_gives_no_verdict(toy):
    _run(only=["trained_claim"])
    path = toy / "cpu" / TOY / "trained_claim" / "y-seed1.json"
    record = json.loads(path.read_text())
    record["declaration"] = "0" * 16
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"y-seed1.json: made under another declaration .*\(digest 0000000000000000"):
        study.load_claims(TOY, "cpu")


def test_records_without_a_digest_are_read_with_the_seed_range_rule_and_not_preregistered(toy):
    _run(only=["trained_claim"])
    for path in (toy / "cpu" / TOY / "trained_claim").glob("*.json"):
        record = json.loads(path.read_text())
        del record["declaration"]  # as the records made before declarations were stored
        path.write_text(json.dumps(record))
    c = next(c for c in study.load_claims(TOY, "cpu") if c["claim"] == "trained_claim")
    assert not c["preregistered"] and c["rule"] == "seed-range" and c["verdict"] == c["robust"] == "shown"


# ---- reading a study in a chapter (posebook.study.reading) -------------------------------------------------------

def test_reading_helpers_print_numbers_quote_the_paper_and_follow_read_variants(toy):
    from posebook.study import reading

    assert reading.number(0.61234) == "0.612" and reading.number(70.44) == "70.4" and reading.number(-0.0756) == "-0.076"
    declared = {c.name: c for c in _toy_claims("cpu")}
    quoted = Claim(TOY, "q", "s", "m", "Table 2: 70.4 vs 67.9 (see ABLATIONS.md, row S1)",
                   declared["probe_claim"].variants, effect=("a", "b"))
    assert reading.paper_figure(quoted) == "Table 2: 70.4 vs 67.9"
    assert reading.variant_config(declared, "reader", "late") == {"value": 0.5}  # read through of= trained_claim/y
    assert reading.variant_config(declared, "trained_claim", "x") == {"value": 0.6}
    assert reading.compared_means(declared["trained_claim"], None) == "not yet measured"
    _run(only=["trained_claim"])
    summary = next(c for c in study.load_claims(TOY, "cpu") if c["claim"] == "trained_claim")
    assert reading.compared_means(declared["trained_claim"], summary) == "x 0.601 vs y 0.501 (m)"


def test_claim_texts_say_the_rule_the_verdict_and_what_it_means_against_the_paper(toy):
    from posebook.study import reading

    declared = {c.name: c for c in _toy_claims("cpu")}
    claim = declared["trained_claim"]
    empty = reading.claim_texts(claim, None, "cpu", "python -m posebook.study toy")
    assert empty["x"] == empty["effect"] == empty["verdict"] == empty["rule"] == "not yet measured"
    assert "0 of 6 runs recorded): python -m posebook.study toy." in empty["status"]
    _run(only=["trained_claim"])
    summary = next(c for c in study.load_claims(TOY, "cpu") if c["claim"] == "trained_claim")
    texts = reading.claim_texts(claim, summary, "cpu", "cmd")
    assert texts["x"] == "0.601 (0.600 to 0.602)" and texts["effect"] == "+0.100" and texts["people"] == "250"
    assert summary["verdict"] == "shown" and texts["verdict"] == "shown" and texts["reading"].startswith("As the paper")
    assert texts["rule"].startswith("Welch's one-sided t test in the claimed direction gives p = ")
    assert "smallest effect this design detects 80% of the time is" in texts["rule"]
    assert texts["status"] == "All 6 runs are recorded in the cpu profile."
    against = dict(summary, verdict="contradicted")
    assert reading.claim_texts(claim, against, "cpu", "cmd")["verdict"] == "contradicted (against the paper)"
    assert reading.claim_texts(claim, against, "cpu", "cmd")["reading"].startswith("Against the paper")
    null = reading.claim_texts(claim, dict(summary, verdict="not shown"), "cpu", "cmd")["reading"]
    assert null.startswith("Not shown") and f"an effect of {reading.number(summary['welch']['detectable'])}" in null
    legacy = reading.claim_texts(claim, dict(summary, rule="seed-range"), "cpu", "cmd")["rule"]
    assert legacy.startswith("the seed-range rule")
    partial = reading.claim_texts(claim, dict(summary, complete=False), "cpu", "cmd")
    assert partial["verdict"] == "shown (incomplete)" and "no verdict yet" in partial["reading"]
    table = reading.claim_table(claim, summary)
    assert "| x | 3 of 3 | 0.601 | 0.600 to 0.602 | 250 |" in table and "verdict: shown" in table


def test_an_equivalence_claim_declares_its_margin_and_is_read_with_two_one_sided_tests(toy, monkeypatch):
    from posebook.study import reading

    base = _toy_claims("cpu")[1]
    equal = Claim(TOY, "trained_claim", "x as good as y", "m", "Fig. 2", base.variants, effect=("x", "y"),
                  margin=0.2)
    assert equal.rule == study.EQUIVALENCE_RULE and equal.declaration()["margin"] == 0.2
    assert equal.declaration()["rule"] == "tost-1" and equal.digest != base.digest
    assert "margin" not in base.declaration() and base.rule == study.RULE
    with pytest.raises(ValueError, match="margin=0 must be a number > 0"):
        Claim(TOY, "c", "s", "m", "p", base.variants, effect=("x", "y"), margin=0)
    module = sys.modules["posebook.studies._toy"]
    monkeypatch.setattr(module, "claims", lambda profile: [Claim(TOY, "trained_claim", "x as good as y", "m", "Fig. 2",
                                                                base.variants, effect=("x", "y"), margin=m)
                                                          for m in (margin,)])
    for margin, expected in ((0.2, "shown"), (0.05, "contradicted")):  # x 0.600-0.602 against y 0.500-0.502
        CALLS.clear()
        for path in toy.glob("**/*.json"):
            path.unlink()
        _run()
        c = study.load_claims(TOY, "cpu")[0]
        assert c["rule"] == "tost-1" and c["margin"] == margin and c["verdict"] == expected == c["robust"]
        texts = reading.claim_texts(study.chapter_claims(TOY, "cpu")[0], c, "cpu", "cmd")
        assert texts["rule"].startswith(f"two one-sided Welch t tests against the margin of {reading.number(margin)}")
        assert texts["reading"].startswith("As the paper's numbers suggest" if expected == "shown" else
                                           "Against the paper's numbers")
    null = reading.claim_texts(study.chapter_claims(TOY, "cpu")[0], dict(c, verdict="not shown"), "cpu", "cmd")
    assert null["reading"].startswith("Not shown: the seeds cannot place the difference")


def test_the_text_summary_prints_a_range_of_validation_people_when_runs_differ(toy):
    _run(only=["trained_claim"])
    entries = study.load_claims(TOY, "cpu")
    trained = next(c for c in entries if c["claim"] == "trained_claim")
    trained["variants"][0]["val_people"] = [38, 60, 46]
    line = next(l for l in study.format_summary([trained]).splitlines() if l.strip().startswith("x "))
    assert line.split()[-2] == "38-60", line
