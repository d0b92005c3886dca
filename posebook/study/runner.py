"""Running a study: every missing (claim, variant, seed), one record each. Chapter 03."""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import posebook
from posebook.results import git_commit, machine
from posebook.study.declarations import FORMAT, MIN_VAL_PEOPLE, Claim, Variant, _source, chapter_claims
from posebook.study.records import _number, read_record, record_path, write_record


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
    least = MIN_VAL_PEOPLE[run.claim.protocol][profile]
    if run.variant.kind == "trained" and not (isinstance(val_people, int) and val_people >= least):
        raise ValueError(f"{where}: a trained run of the {profile} profile (protocol {run.claim.protocol}) must be "
                         f"scored on at least {least} validation people, got val_people={val_people!r}")
    return {"format": FORMAT, "chapter": run.claim.chapter, "claim": run.claim.name, "variant": run.variant.name,
            "declaration": run.claim.digest, "protocol": run.claim.protocol, "kind": run.variant.kind, "profile": profile, "seed": run.seed, "config": run.variant.config,
            "curves": list(out.get("curves", [])), "final": out["final"], "val_people": val_people,
            "minutes": round(minutes, 3), "device": str(out.get("device", posebook.device())),
            "machine": machine(), "threads": _threads(), "torch": str(torch_version), "posebook": posebook.__version__,
            "commit": git_commit(), "command": command or "",
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _threads() -> int:
    import torch

    return torch.get_num_threads()
