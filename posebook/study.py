"""Studies: a chapter's claims, tested by variants x seeds, one JSON record per run, and a verdict from the records.

A chapter declares its paper's claims (``posebook/studies/<chapter>.py``). A claim has a metric, the paper's own
figure (quoted with its table or figure number) and variants: a *trained* variant is a config trained once per seed (at least 3);
a *probe* is a deterministic computation with no training; a variant may also read another claim's runs (``of``),
so one training run can serve several claims. Commands::

    python -m posebook.study 03 [--profile cpu] [--only CLAIM] [--dry-run]   # run what is missing, record each run
    python -m posebook.study summary [--json] [--profile cpu]                # means, seed ranges, effects, verdicts
    python -m posebook.study summary --page book/results.md                  # and the Results page's tables

Records live in ``book/results/studies/<profile>/<chapter>/<claim>/<variant>-seed<k>.json`` (``$POSEBOOK_STUDIES``
overrides the root); a run whose record exists is skipped, so a study accumulates over several sittings. The verdict
is "shown" when the difference of means has the claimed sign and exceeds the seed range (max - min) of both
variants, with every declared seed recorded; "contradicted" when it exceeds both with the opposite sign (a result
against the paper); "not shown" otherwise. CPU and GPU records are never averaged together.
Explained in chapter 03 (Stacked Hourglass), where the first study is.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib
import json
import math
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import posebook
from posebook import stats
from posebook._io import atomic_write
from posebook.results import ROOT, git_commit, machine

FORMAT = "posebook.study/1"
ENV_VAR = "POSEBOOK_STUDIES"
PROFILES = ("smoke", "cpu", "gpu")
MIN_SEEDS = 3                                            # a trained variant's seeds, at least
MIN_VAL_PEOPLE = {"smoke": 1, "cpu": 200, "gpu": 200}   # validation people a trained run must be scored on
VERDICTS = ("shown", "not shown", "contradicted")
RULE = "welch-1"  # the verdict rule of declared claims (posebook.stats.welch_verdict); records without a declaration
# digest were made before declarations were stored and are read with the seed-range rule (:func:`verdict`)
KINDS = ("trained", "probe")
RECORD_KEYS = ("format", "chapter", "claim", "variant", "kind", "profile", "seed", "config", "curves", "final",
               "val_people", "minutes", "device", "machine", "torch", "posebook", "commit", "command", "date")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


# ---- declarations ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """One arm of a claim: ``run(config, seed) -> {"final": {metric: value}, "curves": [...], "val_people": n}``.

    ``kind`` is "trained" or "probe"; ``read`` is the key of ``final`` its value comes from (default: the claim's
    metric); ``of="claim/variant"`` reads that variant's runs instead of running anything. Chapter 03.
    """

    name: str
    run: Callable[[dict, int], dict] | None = None
    config: dict = field(default_factory=dict)
    kind: str = "trained"
    read: str | None = None
    of: str | None = None

    def __post_init__(self):
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"variant name {self.name!r} must be a file-name-safe word (letters, digits, _.+-)")
        if self.kind not in KINDS:
            raise ValueError(f"variant {self.name!r}: kind={self.kind!r}; expected one of {KINDS}")
        if (self.run is None) == (self.of is None):
            raise ValueError(f"variant {self.name!r}: give either run (a function) or of ('claim/variant')")
        if self.of is not None and self.of.count("/") != 1:
            raise ValueError(f"variant {self.name!r}: of={self.of!r} must be 'claim/variant'")


@dataclass(frozen=True)
class Claim:
    """A paper's claim: ``effect = mean(effect[0]) - mean(effect[1])`` of ``metric`` should have sign ``sign``.

    ``paper`` quotes the paper's own figure with its table or figure; ``seeds`` are run for every variant.
    Chapter 03.
    """

    chapter: str
    name: str
    statement: str
    metric: str
    paper: str
    variants: tuple[Variant, ...]
    effect: tuple[str, str]
    sign: int = 1
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self):
        where = f"claim {self.chapter}/{self.name}"
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"{where}: the name must be a file-name-safe word (letters, digits, _.+-)")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: variant names must be unique, got {names}")
        if len(self.effect) != 2 or not set(self.effect) <= set(names) or self.effect[0] == self.effect[1]:
            raise ValueError(f"{where}: effect={self.effect!r} must name two different variants of {names}")
        if self.sign not in (1, -1):
            raise ValueError(f"{where}: sign={self.sign!r} must be +1 or -1 (the claimed sign of the effect)")
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"{where}: seeds={self.seeds!r} must be distinct and not empty")
        if any(v.kind == "trained" for v in self.variants) and len(self.seeds) < MIN_SEEDS:
            raise ValueError(f"{where}: a trained comparison needs at least {MIN_SEEDS} seeds, got {self.seeds}")

    def declaration(self) -> dict:
        """What is fixed before a claim runs: its variants (name, kind, config, the key read, the run read through
        ``of``), metric, claimed sign and effect, seeds, and the verdict rule. Not its wording (``statement``,
        ``paper``) nor the code of the runs. Chapter 03."""
        return _plain({"rule": RULE, "chapter": self.chapter, "claim": self.name, "metric": self.metric,
                       "sign": self.sign, "effect": list(self.effect), "seeds": list(self.seeds),
                       "variants": [{"name": v.name, "kind": v.kind, "config": v.config, "read": v.read, "of": v.of}
                                    for v in self.variants]})

    @property
    def digest(self) -> str:
        """The declaration's SHA-256 (16 hex digits), stored in every record the claim's runs write: a record whose
        digest is this one was made under this very declaration (``summary``'s ``preregistered``). Chapter 03."""
        text = json.dumps(self.declaration(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"claim {self.chapter}/{self.name} has no variant {name!r}; it has "
                       f"{[v.name for v in self.variants]}")


def verdict(a: Sequence[float], b: Sequence[float], sign: int = 1, complete: bool = True) -> str:
    """"shown" when mean(a) - mean(b) has ``sign`` and exceeds the seed range (max - min) of both; "contradicted"
    when it exceeds both ranges with the opposite sign (a result against the claim, not a null result); else
    "not shown".

    An incomplete study (a declared seed not yet recorded) is "not shown". Chapter 03.
    """
    if not complete or not len(a) or not len(b):
        return "not shown"
    effect = _mean(a) - _mean(b)
    exceeds = abs(effect) > max(a) - min(a) and abs(effect) > max(b) - min(b)
    if not exceeds or effect == 0:
        return "not shown"
    return "shown" if sign * effect > 0 else "contradicted"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# ---- chapters --------------------------------------------------------------------------------------------------

def chapter_module(chapter: str):
    """The module declaring a chapter's claims; ``chapter`` is its notebook stem or number ("03"). Chapter 03."""
    from posebook import studies

    name = studies.resolve(chapter)
    module = importlib.import_module(f"posebook.studies.{studies.CHAPTERS[name]}")
    if getattr(module, "CHAPTER", None) != name or not callable(getattr(module, "claims", None)):
        raise TypeError(f"{module.__name__} must define CHAPTER = {name!r} and claims(profile)")
    return module


def chapter_claims(chapter: str, profile: str) -> list[Claim]:
    """A chapter's declared claims for ``profile``, checked: ``of`` references exist and are runs. Chapter 03."""
    _check_profile(profile)
    module = chapter_module(chapter)
    claims = list(module.claims(profile))
    by_name = {c.name: c for c in claims}
    if len(by_name) != len(claims):
        raise ValueError(f"{module.__name__}: two claims share a name: {[c.name for c in claims]}")
    for claim in claims:
        for v in claim.variants:
            if v.of is not None:
                source = _source(by_name, claim, v)
                if source.of is not None:
                    raise ValueError(f"claim {claim.name}, variant {v.name}: of={v.of!r} reads a variant that "
                                     "itself reads another; point at the run")
    return claims


def _source(by_name: dict, claim: Claim, v: Variant) -> Variant:
    other, name = v.of.split("/")
    if other not in by_name:
        raise ValueError(f"claim {claim.name}, variant {v.name}: of={v.of!r} names no claim of this chapter")
    source = by_name[other].variant(name)
    if by_name[other].seeds != claim.seeds:
        raise ValueError(f"claim {claim.name}, variant {v.name}: it reads {v.of!r}, which has seeds "
                         f"{by_name[other].seeds}, not {claim.seeds}")
    return source


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"study profile {profile!r} is unknown; expected one of {PROFILES}")


def default_profile() -> str:
    """``$POSEBOOK_PROFILE`` when it names a study profile, else gpu with CUDA and cpu without. Chapter 03."""
    active = posebook.profile()
    return active if active in PROFILES else ("gpu" if posebook.device().type == "cuda" else "cpu")


# ---- records ---------------------------------------------------------------------------------------------------

def studies_root(root: str | os.PathLike | None = None) -> Path:
    """Where records live: ``root``, else ``$POSEBOOK_STUDIES``, else ``book/results/studies`` of the checkout.
    Chapter 03."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ENV_VAR) or ROOT / "book" / "results" / "studies")


def record_path(root, profile: str, chapter: str, claim: str, variant: str, seed: int) -> Path:
    """``<root>/<profile>/<chapter>/<claim>/<variant>-seed<k>.json``. Chapter 03."""
    return studies_root(root) / profile / chapter / claim / f"{variant}-seed{seed}.json"


def _plain(value):
    """JSON-ready copy: tuples as lists, numpy scalars as numbers, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write one run's record atomically (temporary file, then os.replace): it is whole or absent. Chapter 03."""
    text = json.dumps(_plain(record), indent=1, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_record(path: str | os.PathLike, claim: Claim | None = None, variant: Variant | None = None,
                profile: str | None = None, seed: int | None = None) -> dict:
    """Load and check one record; a malformed one (or one made for another declaration) raises naming its file.
    Chapter 03."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"study record {path}: cannot be read as JSON ({err})") from None
    if not isinstance(record, dict):
        raise ValueError(f"study record {path}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing or record["format"] != FORMAT:
        raise ValueError(f"study record {path}: expected format {FORMAT!r} with keys {RECORD_KEYS}; missing "
                         f"{missing}, format {record.get('format')!r}")
    if not isinstance(record["final"], dict) or not isinstance(record["curves"], list):
        raise ValueError(f"study record {path}: 'final' must be an object and 'curves' a list")
    bad = [k for k, v in record["final"].items() if v is not None and not _number(v)]
    if bad:
        raise ValueError(f"study record {path}: final metrics {bad} are not numbers")
    expected = {"claim": claim and claim.name, "variant": variant and variant.name, "profile": profile,
                "seed": seed, "kind": variant and variant.kind, "chapter": claim and claim.chapter}
    wrong = {k: (record[k], v) for k, v in expected.items() if v is not None and record[k] != v}
    if wrong:
        raise ValueError(f"study record {path}: does not belong here (found, expected): {wrong}")
    if variant is not None and _plain(variant.config) != record["config"]:
        changed = sorted(k for k in set(record["config"]) | set(_plain(variant.config))
                         if record["config"].get(k) != _plain(variant.config).get(k))
        raise ValueError(f"study record {path}: made with another config than the chapter now declares (differs "
                         f"in {changed}); delete the record to rerun it, or restore the declaration")
    if claim is not None and "declaration" in record and record["declaration"] != claim.digest:
        raise ValueError(f"study record {path}: made under another declaration of {claim.chapter}/{claim.name} "
                         f"(digest {record['declaration']}, the chapter now declares {claim.digest}: its variants, "
                         f"metric, seeds or rule changed); no verdict is given from it. Delete the claim's records "
                         f"to rerun it, or restore the declaration")
    return record


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value(record: dict, key: str, path: Path) -> float:
    value = record["final"].get(key)
    if not _number(value):
        raise ValueError(f"study record {path}: final metric {key!r} is missing or not a finite number "
                         f"(has {sorted(record['final'])})")
    return float(value)


# ---- running ---------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One (claim, variant, seed) to run or already recorded. Chapter 03."""

    claim: Claim
    variant: Variant
    seed: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.claim.name}/{self.variant.name} seed {self.seed}"


def plan(chapter: str, profile: str, only: Sequence[str] | None = None, root=None) -> list[Run]:
    """Every run the selected claims need (those read through ``of`` included), each once, in declaration order.

    ``only`` names claims ("ohkm") or single variants of a claim ("ohkm/M4", "ohkm/M8": the runs that variant reads),
    so that one study can be split into lanes that never train the same run twice. Chapter 03."""
    claims = chapter_claims(chapter, profile)
    by_name = {c.name: c for c in claims}
    only = list(only or ())
    unknown = sorted({o for o in only if o.split("/")[0] not in by_name})
    if unknown:
        raise ValueError(f"--only {unknown}: chapter {claims[0].chapter if claims else chapter} declares "
                         f"{sorted(by_name)}")
    picked: dict[str, set[str]] = {}  # claim -> the variants named (empty: every variant of the claim)
    for o in only:
        name, _, variant = o.partition("/")
        picked.setdefault(name, set())
        if variant:
            if variant not in {v.name for v in by_name[name].variants}:
                raise ValueError(f"--only {o}: claim {name} has the variants "
                                 f"{[v.name for v in by_name[name].variants]}")
            picked[name].add(variant)
        elif "/" in o:
            raise ValueError(f"--only {o}: expected CLAIM or CLAIM/VARIANT")
    # a bare claim name selects all of its variants, even when a CLAIM/VARIANT of it is also given
    whole = {o for o in only if "/" not in o}
    wanted = [c for c in claims if not only or c.name in picked]
    pairs: list[tuple[Claim, Variant]] = []
    for claim in wanted:
        for v in claim.variants:
            if only and claim.name not in whole and v.name not in picked[claim.name]:
                continue
            pair = (by_name[v.of.split("/")[0]], _source(by_name, claim, v)) if v.of else (claim, v)
            if all(pair[0] is not c or pair[1] is not w for c, w in pairs):
                pairs.append(pair)
    return [Run(c, v, s, record_path(root, profile, c.chapter, c.name, v.name, s)) for c, v in pairs
            for s in c.seeds]


def run_study(chapter: str, profile: str, only: Sequence[str] | None = None, root=None,
              command: str | None = None) -> Iterator[tuple[str, Run]]:
    """Run every missing run of a chapter's claims, writing one record each; yields ("skipped"|"done", run).

    An existing record is checked (a malformed or stale one raises naming its file) and skipped.
    Chapter 03.
    """
    import torch

    for run in plan(chapter, profile, only, root):
        if run.path.exists():
            read_record(run.path, run.claim, run.variant, profile, run.seed)
            yield "skipped", run
            continue
        start = time.perf_counter()
        out = run.variant.run(dict(run.variant.config), run.seed)
        minutes = (time.perf_counter() - start) / 60
        record = _make_record(run, profile, out, minutes, command, torch.__version__)
        write_record(run.path, record)
        yield "done", run


def _make_record(run: Run, profile: str, out: dict, minutes: float, command: str | None, torch_version) -> dict:
    where = f"{run.claim.chapter}/{run.label}"
    if not isinstance(out, dict) or not isinstance(out.get("final"), dict):
        raise TypeError(f"{where}: the variant's run must return a dict with 'final' (metrics), got {out!r:.200}")
    key = run.variant.read or run.claim.metric
    if not _number(out["final"].get(key)):
        raise ValueError(f"{where}: the run's final metrics lack a finite {key!r} (the claim's metric); it gave "
                         f"{sorted(out['final'])}")
    val_people = out.get("val_people")
    if run.variant.kind == "trained" and not (isinstance(val_people, int) and
                                              val_people >= MIN_VAL_PEOPLE[profile]):
        raise ValueError(f"{where}: a trained run of the {profile} profile must be scored on at least "
                         f"{MIN_VAL_PEOPLE[profile]} validation people, got val_people={val_people!r}")
    return {"format": FORMAT, "chapter": run.claim.chapter, "claim": run.claim.name, "variant": run.variant.name,
            "declaration": run.claim.digest, "kind": run.variant.kind, "profile": profile, "seed": run.seed, "config": run.variant.config,
            "curves": list(out.get("curves", [])), "final": out["final"], "val_people": val_people,
            "minutes": round(minutes, 3), "device": str(out.get("device", posebook.device())),
            "machine": machine(), "threads": _threads(), "torch": str(torch_version), "posebook": posebook.__version__,
            "commit": git_commit(), "command": command or "",
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ---- summary ---------------------------------------------------------------------------------------------------

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
    robust = verdict(a, b, claim.sign, complete)
    welch = stats.design(a, b, claim.sign, complete)
    preregistered = bool(digests) and digests == {True}
    decided = (welch["verdict"] if welch else "not shown") if preregistered else robust
    return {"chapter": claim.chapter, "claim": claim.name, "statement": claim.statement, "metric": claim.metric,
            "paper": claim.paper, "profile": profile, "effect_of": list(claim.effect), "sign": claim.sign,
            "effect": _mean(a) - _mean(b) if a and b else None, "verdict": decided,
            "rule": RULE if preregistered else "seed-range", "robust": robust, "welch": welch,
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
            people = str(v["val_people"] or "-")
            lines.append(f"  {v['name']:<16}{len(v['values']):>3}{mean:>10}{spread:>20}{people:>12}"
                         f"{v['minutes']:>9.1f}")
        effect = "-" if c["effect"] is None else f"{c['effect']:+.4g}"
        lines += [f"  effect {a} - {b}: {effect} (claimed {'>' if c['sign'] > 0 else '<'} 0)",
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
    effect, the verdict, the paper's figure and the minutes its own runs took. Chapter 03."""
    if not claims:
        return "_No study records yet: run `python -m posebook.study CHAPTER --profile cpu`._"
    parts = []
    for profile in dict.fromkeys(c["profile"] for c in claims):
        rows = [c for c in claims if c["profile"] == profile]
        lines = [f"### Studies, `{profile}` profile", "",
                 "| chapter | claim | metric | variants: mean [min-max] (seeds) | effect | verdict | paper | minutes |",
                 "|---|---|---|---|---|---|---|---|"]
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
            verdict_text = c["verdict"] + ("" if c["complete"] else " (seeds missing)")
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in (
                c["chapter"], c["claim"], c["metric"], "; ".join(cells), effect, verdict_text, c["paper"],
                f"{own:.1f}")) + " |")
        lines += ["", f"Recorded minutes, `{profile}`: {total:.1f} (each run counted once, by the claim that owns it)."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def update_page(page: str | os.PathLike, claims: list[dict]) -> Path:
    """Replace the text between the studies markers of ``page`` (the book's Results page) with
    :func:`summary_markdown`, atomically. Chapter 03."""
    page = Path(page)
    text = page.read_text()
    if text.count(STUDIES_BEGIN) != 1 or text.count(STUDIES_END) != 1 or \
            text.index(STUDIES_BEGIN) > text.index(STUDIES_END):
        raise ValueError(f"{page}: expected one {STUDIES_BEGIN} line followed by one {STUDIES_END} line around "
                         "the studies' tables")
    head, rest = text.split(STUDIES_BEGIN)
    _, tail = rest.split(STUDIES_END)
    body = f"{head}{STUDIES_BEGIN}\n{summary_markdown(claims)}\n{STUDIES_END}{tail}"
    atomic_write(page, lambda f: f.write(body.encode()))
    return page


def plot_claim(claim: dict, ax=None):
    """Plot one entry of :func:`load_claims`: mean and seed range over steps per variant, or per variant when the
    value is only recorded at the end (dots per seed, bar from min to max). Returns the figure. Chapter 03."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    over_steps = all(v["read"] in v["curves"] for v in claim["variants"])
    for i, v in enumerate(claim["variants"]):
        if over_steps:
            curve = v["curves"][v["read"]]
            line, = ax.plot(curve["step"], curve["mean"], marker="o", label=f"{v['name']} ({len(v['values'])} seeds)")
            ax.fill_between(curve["step"], curve["min"], curve["max"], color=line.get_color(), alpha=0.2)
        elif v["values"]:
            ax.plot([i] * len(v["values"]), v["values"], "o", alpha=0.6)
            ax.vlines(i, v["min"], v["max"], color="k", lw=1)
            ax.hlines(v["mean"], i - 0.2, i + 0.2, color="k", lw=2)
    if over_steps:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    else:
        ax.set_xticks(range(len(claim["variants"])), [v["name"] for v in claim["variants"]])
        ax.set_xlim(-0.6, len(claim["variants"]) - 0.4)
    ax.set_ylabel(claim["metric"])
    ax.set_title(f"{claim['claim']} [{claim['profile']}]: {claim['verdict']}", fontsize=10)
    ax.grid(alpha=0.3)
    return ax.figure


# ---- rendering once ----------------------------------------------------------------------------------------------

class RenderedItems:
    """A top-down training set rendered once: crops as uint8, targets as float16, weights; items as the dataset's
    (one target per output, as lists, when the dataset has a list of codecs).

    Reused across variants and seeds, so rendering is paid once per study (it adds ~28% to a cpu training step).
    Chapter 03.
    """

    def __init__(self, images, targets, weights):
        import torch

        if not (len(images) == len(targets) == len(weights)):
            raise ValueError(f"RenderedItems: {len(images)} images, {len(targets)} targets, {len(weights)} weights")
        self.images, self.targets, self.weights = images, targets, weights
        from posebook.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        self._mean = torch.from_numpy(IMAGENET_MEAN).view(3, 1, 1)
        self._std = torch.from_numpy(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = (self.images[index].float() / 255.0 - self._mean) / self._std
        if self.targets.dim() == 5:  # one target per model output (CPN, MSPN): lists, as the dataset gives them
            return {"image": image, "target": list(self.targets[index].float()),
                    "target_weight": list(self.weights[index])}
        return {"image": image, "target": self.targets[index].float(), "target_weight": self.weights[index]}

    @classmethod
    def render(cls, dataset, progress: bool = False) -> "RenderedItems":
        """Fetch every item of a top-down dataset once (its seeded augmentation included). Chapter 03."""
        import torch
        from tqdm.auto import tqdm

        from posebook.data.transforms import denormalize

        images, targets, weights = [], [], []
        for i in tqdm(range(len(dataset)), desc="render", disable=not progress, leave=False):
            item = dataset[i]
            target, weight = item["target"], item["target_weight"]
            if isinstance(target, (list, tuple)):  # one target per output: stacked (T, K, h, w) and (T, K)
                target, weight = torch.stack(list(target)), torch.stack([w.reshape(-1) for w in weight])
            if not hasattr(target, "dim"):
                raise TypeError(f"RenderedItems: item {i} has a {type(target).__name__} target; expected a "
                                "heatmap tensor (K, h, w) or a list of them")
            crop = denormalize(item["image"])  # (H, W, 3) float in 0..255
            images.append(torch.from_numpy(crop.round().clip(0, 255).astype("uint8")).permute(2, 0, 1))
            targets.append(target.half())
            weights.append(weight.float().reshape(target.shape[:-2]))
        return cls(torch.stack(images), torch.stack(targets), torch.stack(weights))

    @staticmethod
    def cache_path(name: str, settings: dict) -> Path:
        """``cache_dir("studies")/<name>-<key>.pt``, the key hashing settings and the data and codec source.
        Chapter 03."""
        from posebook.checkpoints import source_digest

        key = hashlib.sha1((json.dumps(_plain(settings), sort_keys=True) +
                            source_digest("posebook.data", "posebook.codecs")).encode()).hexdigest()[:12]
        return Path(posebook.cache_dir("studies")) / f"{name}-{key}.pt"

    @classmethod
    def cached(cls, name: str, settings: dict, make_dataset: Callable[[], object],
               progress: bool = False) -> "RenderedItems":
        """Load ``cache_dir("studies")/<name>-<key>.pt`` or render ``make_dataset()`` and save it; the key hashes
        ``settings`` and the source of posebook.data and posebook.codecs. Chapter 03."""
        import torch

        path = cls.cache_path(name, settings)
        if path.exists():
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                return cls(saved["images"], saved["targets"], saved["weights"])
            except Exception as err:
                raise ValueError(f"rendered study data {path} cannot be read ({type(err).__name__}: {err}); "
                                 "delete it to render again") from None
        items = cls.render(make_dataset(), progress)
        saved = {"images": items.images, "targets": items.targets, "weights": items.weights}
        atomic_write(path, lambda f: torch.save(saved, f))
        return items


# ---- command line ------------------------------------------------------------------------------------------------

def _dry_run(chapter: str, profile: str, only, root) -> list[str]:
    """The runs of a study, recorded or not, with the chapter's estimate of each missing run's minutes."""
    module = chapter_module(chapter)
    runs = plan(chapter, profile, only, root)
    todo = [r for r in runs if not r.path.exists()]
    lines = [f"{module.CHAPTER}, profile {profile}: {len(runs)} runs declared, {len(todo)} to run"]
    if not hasattr(module, "estimate_run"):
        return lines + ["(this chapter declares no estimate)"]
    total, seen = 0.0, {}
    if todo and hasattr(module, "estimate_data"):
        seconds, note = module.estimate_data(profile)
        total += seconds
        lines.append(f"  {'data, rendered once':<52} {seconds / 60:6.1f} min  {note}")
    for run in runs:
        if run.path.exists():
            lines.append(f"  {run.label:<52} recorded")
            continue
        key = json.dumps(_plain([run.variant.kind, run.variant.config]), sort_keys=True)
        if key not in seen:
            seen[key] = module.estimate_run(run.variant.config, run.variant.kind)
        seconds, note = seen[key]
        total += seconds
        lines.append(f"  {run.label:<52} {seconds / 60:6.1f} min  {note}")
    load = ", load average {:.1f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
    lines.append(f"estimated total: {total / 60:.1f} min on {machine()}, {_threads()} torch threads{load}")
    return lines


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    """``python -m posebook.study CHAPTER|summary ...``: run a chapter's study, or print the summary. Chapter 03."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m posebook.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="a chapter ('03' or '03_stacked_hourglass'), or 'summary'")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="study size (default: $POSEBOOK_PROFILE if a study profile, else gpu/cpu by device)")
    parser.add_argument("--only", action="append", default=None, metavar="CLAIM[/VARIANT]",
                        help="run only this claim, or only this variant of it (repeatable: a lane of a study)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and estimate their minutes")
    parser.add_argument("--json", action="store_true", help="summary: end with one line of JSON")
    parser.add_argument("--page", default=None, metavar="MD",
                        help="summary: also rewrite the studies' tables of this page (e.g. book/results.md)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's; 1 avoids stalls on a machine shared with others)")
    parser.add_argument("--root", default=None, help=f"records folder (default ${ENV_VAR} or book/results/studies)")
    args = parser.parse_args(argv)
    if args.chapter == "summary":
        claims = load_claims(None, args.profile, args.root)
        print(format_summary(claims))
        if args.page:
            update_page(args.page, claims)
        if args.json:
            print(json.dumps(_plain(claims), allow_nan=False))
        return 0
    profile = args.profile or default_profile()
    if args.threads is not None:
        import torch

        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.dry_run:
        print("\n".join(_dry_run(args.chapter, profile, args.only, args.root)))
        return 0
    command = "python -m posebook.study " + " ".join(shlex.quote(a) for a in argv)
    for status, run in run_study(args.chapter, profile, args.only, args.root, command):
        extra = "" if status == "skipped" else f"  {json.loads(run.path.read_text())['minutes']:.2f} min"
        print(f"{status:>8}  {run.label}{extra}  -> {run.path}", flush=True)
    return 0


if __name__ == "__main__":
    from posebook.study import main as _main  # the module's own copy, so declarations and runner share classes

    sys.exit(_main())
