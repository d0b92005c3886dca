"""What the records say: per claim the variants' values per seed, the effect, the verdict by the rule its records
were declared under, and the Results page's tables. Chapter 03."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from posebook import stats
from posebook._io import atomic_write
from posebook.results import replace_block
from posebook.study.declarations import PROFILES, RULE, Claim, _check_profile, _source, chapter_claims
from posebook.study.records import _number, _value, read_record, record_path, studies_root
from posebook.study.verdicts import _mean, equivalence_range, verdict


def load_claims(chapter: str | None = None, profile: str | None = None, root=None) -> list[dict]:
    """What ``summary`` prints, one dict per (claim, profile) with records: variants with their values per seed,
    mean, min, max, curves (mean and seed range over steps), the effect, the paper's figure, verdict and complete.

    ``chapter`` None: every chapter with a study; ``profile`` None: every profile with records (kept apart).
    """
    from posebook import studies

    chapters = [studies.resolve(chapter)] if chapter else list(studies.CHAPTERS)
    profiles = [profile] if profile else list(PROFILES)
    out = []
    for prof in profiles:
        _check_profile(prof)
        for name in chapters:
            if not (studies_root(root) / prof / name).is_dir():
                continue
            claims = chapter_claims(name, prof)
            by_name = {c.name: c for c in claims}
            out += [_summarise(c, by_name, prof, root) for c in claims]
    return out


def _summarise(claim: Claim, by_name: dict, profile: str, root) -> dict:
    """One claim's entry of :func:`load_claims`. Its ``verdict`` follows the rule its records were declared under:
    when every record carries the digest of the declaration in the code (``preregistered``), the Welch rule
    (:func:`posebook.stats.welch_verdict`; ``welch`` holds its t, p, pooled SD and the ``detectable`` effect at 80%
    power); records made before declarations were stored are read with the seed-range rule (:func:`verdict`), which
    is also every claim's ``robust`` column. A record made under another declaration raises (:func:`read_record`)."""
    variants, digests = [], set()
    for v in claim.variants:
        owner, source = (by_name[v.of.split("/")[0]], _source(by_name, claim, v)) if v.of else (claim, v)
        paths = {seed: record_path(root, profile, owner.chapter, owner.name, source.name, seed) for seed in claim.seeds}
        records = {seed: read_record(path, owner, source, profile, seed) for seed, path in paths.items()
                   if path.exists()}
        digests |= {r.get("declaration") == owner.digest for r in records.values()}
        key = v.read or claim.metric
        values = [_value(record, key, paths[seed]) for seed, record in records.items()]
        variants.append({"name": v.name, "kind": source.kind, "read": key, "source": f"{owner.name}/{source.name}",
                         "seeds": list(records), "values": values, "val_people": _people(records.values()),
                         "mean": _mean(values) if values else None, "min": min(values, default=None),
                         "max": max(values, default=None), "minutes": sum(r["minutes"] for r in records.values()),
                         "curves": _curves(list(records.values()))})
    named = {v["name"]: v for v in variants}
    a, b = (named[n]["values"] for n in claim.effect)
    complete = all(len(v["values"]) == len(claim.seeds) for v in variants)
    robust = (verdict(a, b, claim.sign, complete) if claim.margin is None else
              equivalence_range(a, b, claim.margin, complete))
    welch = stats.design(a, b, claim.sign, complete, margin=claim.margin)
    preregistered = bool(digests) and digests == {True}
    decided = (welch["verdict"] if welch else "not shown") if preregistered else robust
    return {"chapter": claim.chapter, "claim": claim.name, "statement": claim.statement, "metric": claim.metric,
            "paper": claim.paper, "profile": profile, "effect_of": list(claim.effect), "sign": claim.sign,
            "effect": _mean(a) - _mean(b) if a and b else None, "verdict": decided,
            "rule": claim.rule if preregistered else "seed-range", "robust": robust, "margin": claim.margin, "welch": welch,
            "preregistered": preregistered, "declaration": claim.digest, "complete": complete, "variants": variants}


def _people(records) -> int | list | None:
    """The validation people of a variant's runs: one number, or the list when runs differ; None for probes."""
    people = sorted({r["val_people"] for r in records if r["val_people"] is not None})
    return people[0] if len(people) == 1 else (people or None)


def _curves(records: list[dict]) -> dict:
    """{metric: {"step", "mean", "min", "max"}} over the steps every record has that metric at."""
    if not records:
        return {}
    keys = set.intersection(*({k for point in r["curves"] for k in point} for r in records)) - {"step"}
    out = {}
    for key in sorted(keys):
        per_record = [{p["step"]: p[key] for p in r["curves"] if _number(p.get(key))} for r in records]
        steps = sorted(set.intersection(*(set(p) for p in per_record)))
        if steps:
            rows = [[p[s] for p in per_record] for s in steps]
            out[key] = {"step": steps, "mean": [_mean(r) for r in rows], "min": [min(r) for r in rows],
                        "max": [max(r) for r in rows]}
    return out


def own_runs(claims: list[dict]) -> list[dict]:
    """The variants of ``claims`` (``load_claims`` entries) whose runs their claim owns, each with its ``claim``:
    a variant read through another claim (``of=``) is left out, so every run counts once. Chapter 03."""
    return [dict(v, claim=c["claim"]) for c in claims for v in c["variants"]
            if v["source"] == f"{c['claim']}/{v['name']}"]


def recorded_minutes(claims: list[dict]) -> float:
    """The minutes of every recorded run of ``claims``, each run counted once (:func:`own_runs`). Chapter 03."""
    return float(sum(v["minutes"] for v in own_runs(claims)))


def format_summary(claims: list[dict]) -> str:
    """The summary as text: per claim its variants (n, mean, min-max, val people), effect, paper figure, verdict.
    Chapter 03."""
    if not claims:
        return "No study records found."
    lines = []
    for c in claims:
        a, b = c["effect_of"]
        lines += [f"{c['chapter']} / {c['claim']}  [{c['profile']}]  metric {c['metric']}",
                  f"  claim: {c['statement']}",
                  f"  {'variant':<16}{'n':>3}{'mean':>10}{'min-max':>20}{'val people':>12}{'minutes':>9}"]
        for v in c["variants"]:
            spread = f"{v['min']:.4g}-{v['max']:.4g}" if v["values"] else "-"
            mean = f"{v['mean']:.4g}" if v["values"] else "-"
            people = v["val_people"]
            people = f"{min(people)}-{max(people)}" if isinstance(people, list) else str(people or "-")
            lines.append(f"  {v['name']:<16}{len(v['values']):>3}{mean:>10}{spread:>20}{people:>12}"
                         f"{v['minutes']:>9.1f}")
        effect = "-" if c["effect"] is None else f"{c['effect']:+.4g}"
        lines += [f"  effect {a} - {b}: {effect} " + (f"(claimed within +-{c['margin']:g})" if c.get("margin") else
                                                  f"(claimed {'>' if c['sign'] > 0 else '<'} 0)"),
                  f"  paper: {c['paper']}",
                  f"  verdict: {c['verdict']}" + ("" if c["complete"] else " (incomplete: seeds missing)"), ""]
    for profile in dict.fromkeys(c["profile"] for c in claims):
        minutes = recorded_minutes([c for c in claims if c["profile"] == profile])
        lines.append(f"recorded minutes, {profile}: {minutes:.1f}")
    return "\n".join(lines).rstrip()


def chapter_costs(chapter: str, model_of: Callable[[str], str], study_chapter: str | None = None,
                  keep: Callable[[dict], bool] | None = None, results: str | os.PathLike | None = None) -> str:
    """A chapter's cost as a Markdown table: per profile, its live model (``model_of(profile)``), the whole
    notebook's minutes (:func:`posebook.results.notebook_minutes`) and the minutes of the recorded study runs of
    ``study_chapter`` (default: the chapter's own) that ``keep(variant)`` selects, each run once. Chapter 03."""
    from posebook.results import notebook_minutes

    rows = ["| profile | model and data | notebook | study |", "|---|---|---|---|"]
    for profile in ("smoke", "cpu", "gpu", "full"):
        minutes = notebook_minutes(chapter, profile, results)
        notebook = "not yet measured" if minutes is None else f"{minutes:.1f}"
        studied = "-"
        if profile in PROFILES:
            own = [v for v in own_runs(load_claims(study_chapter or chapter, profile)) if keep is None or keep(v)]
            runs = sum(len(v["values"]) for v in own)
            studied = f"{sum(v['minutes'] for v in own):.1f} ({runs} runs recorded)" if runs else "not yet measured"
        rows.append(f"| `{profile}` | {model_of(profile)} | {notebook} | {studied} |")
    return "\n".join(rows)


STUDIES_BEGIN, STUDIES_END = "<!-- studies:begin -->", "<!-- studies:end -->"


def summary_markdown(claims: list[dict]) -> str:
    """The summary as Markdown tables, one per profile: a row per claim with each variant's mean and seed range, the
    effect, the verdict with the rule that gave it, the one-sided Welch p and the smallest effect the design detects
    at 80% power (also for records read with the seed-range rule), the seed-range ("robust") verdict, the paper's
    figure and the minutes its own runs took. Chapter 03."""
    if not claims:
        return "_No study records yet: run `python -m posebook.study CHAPTER --profile cpu`._"
    parts = []
    for profile in dict.fromkeys(c["profile"] for c in claims):
        rows = [c for c in claims if c["profile"] == profile]
        lines = [f"### Studies, `{profile}` profile", "",
                 "| chapter | claim | metric | variants: mean [min-max] (seeds) | effect | verdict (rule) | Welch p | "
                 "detectable at 80% | robust | paper | minutes |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        total = 0.0
        for c in rows:
            cells = []
            for v in c["variants"]:
                if not v["values"]:
                    cells.append(f"{v['name']} -")
                elif len(v["values"]) == 1:
                    cells.append(f"{v['name']} {v['mean']:.4g} (1)")
                else:
                    cells.append(f"{v['name']} {v['mean']:.4g} [{v['min']:.4g}-{v['max']:.4g}] ({len(v['values'])})")
            own = recorded_minutes([c])
            total += own
            effect = "-" if c["effect"] is None else f"{c['effect']:+.3g}"
            verdict_text = f"{c['verdict']} ({c['rule']})" + ("" if c["complete"] else " (seeds missing)")
            welch = c.get("welch")
            p = "-" if welch is None else f"{welch.get('p_equivalent', welch['p']):.2g}"  # an equivalence claim: TOST's p
            detectable = "-" if welch is None else f"{welch['detectable']:.3g}"
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in (
                c["chapter"], c["claim"], c["metric"], "; ".join(cells), effect, verdict_text, p, detectable,
                c["robust"], c["paper"], f"{own:.1f}")) + " |")
        lines += ["", f"Recorded minutes, `{profile}`: {total:.1f} (each run counted once, by the claim that owns it)."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def update_page(page: str | os.PathLike, claims: list[dict]) -> Path:
    """Replace the text between the studies markers of ``page`` (the book's Results page) with
    :func:`summary_markdown`, atomically. Chapter 03."""
    page = Path(page)
    body = replace_block(page.read_text(), STUDIES_BEGIN, STUDIES_END, summary_markdown(claims), page)
    atomic_write(page, lambda f: f.write(body.encode()))
    return page
