"""A study's declarations: a claim's variants, metric, claimed sign, seeds and rule, the digest that ties every
record to them, and the chapters that declare them (``posebook/studies/<chapter>.py``). Chapter 03."""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import posebook

FORMAT = "posebook.study/1"
ENV_VAR = "POSEBOOK_STUDIES"
PROFILES = ("smoke", "cpu", "gpu")
PROTOCOL = 2  # the protocol of new declarations: at least 5 seeds per trained variant, 500 validation people (cpu,
# gpu); protocol 1 (3 seeds, 200 people) is that of the records made before it, which are read until rerun
MIN_SEEDS = {1: 3, 2: 5}                                 # a trained variant's seeds, at least, by protocol
MIN_VAL_PEOPLE = {1: {"smoke": 1, "cpu": 200, "gpu": 200},  # validation people a trained run must be scored on
                  2: {"smoke": 1, "cpu": 500, "gpu": 500}}
SMOKE_SEEDS = 2  # the smoke profile (plumbing, not evidence) may declare as few seeds as this
VERDICTS = ("shown", "not shown", "contradicted")
RULE = "welch-1"  # the verdict rule of declared claims (posebook.stats.welch_verdict); records without a declaration
# digest were made before declarations were stored and are read with the seed-range rule (:func:`verdict`)
EQUIVALENCE_RULE = "tost-1"  # an equivalence claim's rule (posebook.stats.equivalence_verdict): both one-sided
# Welch tests put the effect inside +-margin
KINDS = ("trained", "probe")
RECORD_KEYS = ("format", "chapter", "claim", "variant", "kind", "profile", "seed", "config", "curves", "final",
               "val_people", "minutes", "device", "machine", "torch", "posebook", "commit", "command", "date")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


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
    protocol: int = 1
    profile: str | None = None  # the profile declaring it (the smoke profile may use fewer seeds)
    margin: float | None = None  # an equivalence claim: |effect| < margin (EQUIVALENCE_RULE; sign unused)

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
        if self.margin is not None and not (isinstance(self.margin, (int, float)) and self.margin > 0):
            raise ValueError(f"{where}: margin={self.margin!r} must be a number > 0 (an equivalence claim's margin)")
        if self.protocol not in MIN_SEEDS:
            raise ValueError(f"{where}: protocol={self.protocol!r}; expected one of {sorted(MIN_SEEDS)}")
        least = SMOKE_SEEDS if self.profile == "smoke" else MIN_SEEDS[self.protocol]
        if any(v.kind == "trained" for v in self.variants) and len(self.seeds) < least:
            raise ValueError(f"{where}: a trained comparison of protocol {self.protocol} needs at least {least} "
                             f"seeds, got {self.seeds}")

    def declaration(self) -> dict:
        """What is fixed before a claim runs: its variants (name, kind, config, the key read, the run read through
        ``of``), metric, claimed sign and effect, seeds, the verdict rule and (from protocol 2) the protocol. Not its
        wording (``statement``, ``paper``) nor the code of the runs. Chapter 03."""
        extra = {"protocol": self.protocol} if self.protocol > 1 else {}
        if self.margin is not None:
            extra["margin"] = float(self.margin)
        return _plain({**extra, "rule": self.rule, "chapter": self.chapter, "claim": self.name, "metric": self.metric,
                       "sign": self.sign, "effect": list(self.effect), "seeds": list(self.seeds),
                       "variants": [{"name": v.name, "kind": v.kind, "config": v.config, "read": v.read, "of": v.of}
                                    for v in self.variants]})

    @property
    def rule(self) -> str:
        """The verdict rule of the declaration: :data:`RULE` (Welch, one-sided), or :data:`EQUIVALENCE_RULE` (two
        one-sided Welch tests against ``margin``) for an equivalence claim. Chapter 03."""
        return RULE if self.margin is None else EQUIVALENCE_RULE

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
