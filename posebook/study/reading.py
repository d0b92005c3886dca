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


VERDICT_LABELS = {"contradicted": "contradicted (against the paper)"}


def verdict_label(verdict: str) -> str:
    """A verdict as the chapters print it: a contradicted claim says it is against the paper."""
    return VERDICT_LABELS.get(verdict, verdict)


def _spread(got: dict, seeds: int) -> str:
    if not got["values"]:
        return "not yet measured"
    text = f"{number(got['mean'])} ({number(got['min'])} to {number(got['max'])}"
    return text + (")" if len(got["values"]) == seeds else f"; {len(got['values'])} of {seeds} seeds)")


def claim_texts(claim: Claim, summary: dict | None, profile: str, command: str) -> dict[str, str]:
    """The sentences and numbers a chapter glues for one claim (``summary``: its :func:`posebook.study.load_claims`
    entry, None before any run), by key: ``seeds``, ``metric``, ``statement``, ``paper``, ``people``, one per
    variant (mean and seed range), ``effect``, ``verdict``, ``rule`` (the test that gave the verdict: Welch's one-sided
    t with its p, the pooled SD and the smallest effect the design detects at 80% power; or, for records made before
    declarations were stored, the seed-range rule), ``reading`` (what the verdict means against the paper's claim)
    and ``status`` (whether every run is recorded, else the command that runs them). Chapter 03 explains the rule."""
    variants = {v["name"]: v for v in summary["variants"]} if summary else {}
    expected = len(claim.variants) * len(claim.seeds)
    done = sum(len(v["values"]) for v in variants.values())
    kinds = {v["kind"] for v in variants.values()} or {"trained" if any(
        v.kind == "trained" or v.of for v in claim.variants) else "probe"}
    people = {str(v["val_people"]) for v in variants.values() if v["kind"] == "trained" and v["val_people"]}
    out = {"seeds": f"{len(claim.seeds):d}", "metric": claim.metric, "statement": claim.statement,
           "paper": paper_figure(claim),
           "people": people.pop() if len(people) == 1 else ("no training: a probe" if kinds == {"probe"}
                                                            else "not yet measured")}
    for v in claim.variants:
        out[v.name] = _spread(variants.get(v.name, {"values": []}), len(claim.seeds))
    effect = summary["effect"] if summary else None
    out["effect"] = "not yet measured" if effect is None else (f"{effect:+.3f}" if abs(effect) < 1
                                                               else f"{effect:+.1f}")
    complete = bool(summary and summary["complete"])
    verdict = summary["verdict"] if summary else None
    out["verdict"] = (verdict_label(verdict) if complete else
                      "not yet measured" if not done else f"{verdict} (incomplete)")
    a, b = claim.effect
    welch = summary.get("welch") if summary else None
    if summary and summary.get("rule") == "seed-range":
        out["rule"] = ("the seed-range rule (these records predate the declared Welch test): shown when the effect "
                       "exceeds the range of both variants' seeds")
    elif welch and claim.margin is not None:
        out["rule"] = (f"two one-sided Welch t tests against the margin of {number(claim.margin)} give p = "
                       f"{welch['p_equivalent']:.3g} that the difference lies inside it (p = {welch['p_outside']:.3g} "
                       f"that it lies beyond it); the pooled standard deviation of the seeds is {number(welch['sd'])}, "
                       f"and the smallest margin this design shows 80% of the time for two equal variants is "
                       f"{number(welch['detectable'])}")
    elif welch:
        out["rule"] = (f"Welch's one-sided t test in the claimed direction gives p = {welch['p']:.3g} (against it "
                       f"p = {welch['p_against']:.3g}); the pooled standard deviation of the seeds is "
                       f"{number(welch['sd'])}, and the smallest effect this design detects 80% of the time is "
                       f"{number(welch['detectable'])}")
    else:
        out["rule"] = "not yet measured"
    direction = "above" if claim.sign > 0 else "below"
    if not complete:
        out["reading"] = "The study is not complete, so there is no verdict yet."
    elif claim.margin is not None:
        margin = number(claim.margin)
        out["reading"] = {
            "shown": f"As the paper's numbers suggest: {a} and {b} are equivalent, their difference inside "
                     f"+-{margin} beyond the noise of the seeds.",
            "contradicted": f"Against the paper's numbers: {a} and {b} differ by more than {margin}, beyond the "
                            f"noise of the seeds. This is a finding about this setting, not a failed run.",
        }.get(verdict, f"Not shown: the seeds cannot place the difference of {a} and {b} inside +-{margin}, nor "
                       f"beyond it. This design shows equivalence only within a margin of "
                       f"{number(welch['detectable']) if welch else 'a larger size'} (80% of the time).")
    elif verdict == "shown":
        out["reading"] = (f"As the paper claims: {a} is {direction} {b} beyond the noise of the seeds, by more "
                          f"than one pooled standard deviation.")
    elif verdict == "contradicted":
        out["reading"] = (f"Against the paper: {a} is not {direction} {b} but on the other side, beyond the noise "
                          f"of the seeds. This is a finding about this setting, not a failed run.")
    else:
        smallest = f" an effect of {number(welch['detectable'])} or more" if welch else " a larger effect"
        out["reading"] = (f"Not shown: {a} and {b} do not separate beyond the noise of the seeds. The design would "
                          f"have detected{smallest} (80% of the time); an effect smaller than that may exist.")
    out["status"] = (f"All {expected} runs are recorded in the {profile} profile." if complete else
                     f"Not yet run in the {profile} profile ({done} of {expected} runs recorded): {command}.")
    return out


def claim_table(claim: Claim, summary: dict | None) -> str:
    """A Markdown table of one claim's variants: seeds recorded, mean, seed range and validation people, headed by
    the metric, the effect and the verdict. Chapter 03 explains the columns."""
    variants = {v["name"]: v for v in summary["variants"]} if summary else {}
    rows = ["| variant | seeds | mean | min to max | validation people |", "|---|---|---|---|---|"]
    for v in claim.variants:
        got = variants.get(v.name, {"values": [], "val_people": None})
        spread = f"{number(got['min'])} to {number(got['max'])}" if got["values"] else "-"
        mean = number(got["mean"]) if got["values"] else "-"
        rows.append(f"| {v.name} | {len(got['values'])} of {len(claim.seeds)} | {mean} | {spread} | "
                    f"{got['val_people'] or '-'} |")
    effect = summary["effect"] if summary else None
    verdict = verdict_label(summary["verdict"]) if summary and summary["complete"] else "no verdict yet"
    a, b = claim.effect
    return (f"**{claim.name}** ({claim.metric}; effect {a} - {b}: {'-' if effect is None else number(effect)}; "
            f"verdict: {verdict})\n\n" + "\n".join(rows))
