"""Reading a study in a chapter: numbers printed as the chapters print them, the paper's figure as the claim quotes
it, the config a variant trains (following a variant that reads another claim's runs) and the two means a claim
compares. The chapters' study sections (04-07) import these instead of keeping copies. Chapter 03 explains studies."""
from __future__ import annotations

import re

from posebook.study.declarations import Claim


def number(value: float) -> str:
    """A metric as the chapters print it: three decimals below 1 (PCK, AP), one above (AP in percent, minutes)."""
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"


def paper_figure(claim: Claim) -> str:
    """The claim's quotation of the paper, without a parenthesised pointer to the study's notes (``(... .md ...)``)."""
    return re.sub(r"\s*\([^()]*\.md[^()]*\)", "", claim.paper)


def variant_config(declared: dict[str, Claim], claim: str, variant: str) -> dict:
    """The config of ``claim``'s ``variant`` in ``declared`` (claims by name), following a variant that reads another
    claim's runs (``of="claim/variant"``) to the run it reads."""
    v = declared[claim].variant(variant)
    if v.of:
        other, source = v.of.split("/")
        v = declared[other].variant(source)
    return v.config


def compared_means(claim: Claim, summary: dict | None) -> str:
    """``"a 0.612 vs b 0.598 (metric)"``: the mean over the recorded seeds of the two variants the claim's effect
    compares (``summary`` is its :func:`posebook.study.load_claims` entry), or ``"not yet measured"``."""
    if summary is None or summary["effect"] is None:
        return "not yet measured"
    means = {v["name"]: v["mean"] for v in summary["variants"]}
    a, b = claim.effect
    return f"{a} {number(means[a])} vs {b} {number(means[b])} ({claim.metric})"
