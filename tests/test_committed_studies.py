"""The book's committed cpu studies of chapters 03-09, as issue "Studies that can decide" defines them done: every
claim preregistered (every record carries its declaration's digest) and complete, every trained variant with at
least 5 seeds and at least 500 validation people, and every verdict equal to a Welch recomputation (or, for a
margin claim, two one-sided tests) from the per-seed values the summary lists."""
from __future__ import annotations

import pytest

from posebook import stats, study

CHAPTERS = ("03_stacked_hourglass", "04_simple_baseline", "05_cpn", "06_mspn", "07_hrnet", "08_openpose",
            "09_side_by_side")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_committed_claim_is_preregistered_complete_and_decided_by_its_rule(chapter, root):
    entries = study.load_claims(chapter, "cpu", root / "book" / "results" / "studies")
    declared = {c.name: c for c in study.chapter_claims(chapter, "cpu")}
    assert [e["claim"] for e in entries] == list(declared)
    for entry in entries:
        claim = declared[entry["claim"]]
        assert entry["complete"] and entry["preregistered"], entry["claim"]
        assert entry["declaration"] == claim.digest and entry["rule"] == claim.rule
        for v in entry["variants"]:
            assert len(v["values"]) >= 5, (entry["claim"], v["name"])
            if v["kind"] == "trained":
                assert v["val_people"] >= 500, (entry["claim"], v["name"], v["val_people"])
        named = {v["name"]: v["values"] for v in entry["variants"]}
        a, b = (named[n] for n in claim.effect)
        expected = (stats.equivalence_verdict(a, b, claim.margin) if claim.margin is not None
                    else stats.welch_verdict(a, b, claim.sign))
        assert entry["verdict"] == expected, (entry["claim"], entry["verdict"], expected)
