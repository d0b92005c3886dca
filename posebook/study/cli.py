"""``python -m posebook.study CHAPTER|summary ...``. Chapter 03."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from posebook.results import machine
from posebook.study.declarations import ENV_VAR, PROFILES, _plain, chapter_module, default_profile
from posebook.study.runner import _threads, plan, run_study
from posebook.study.summary import format_summary, load_claims, update_page


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
