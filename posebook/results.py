"""Measured results: each chapter records its model's accuracy and cost; the book's Results page tabulates them.

A chapter calls :func:`record` at the end of training and evaluation. It writes nothing unless ``$POSEBOOK_RESULTS``
names a folder; then it writes ``<chapter>_<profile>.json`` there (profile, machine, date, git commit, figures, and
the chapter's cached runs: whether each model was trained in this run or loaded from the run cache).
``python -m posebook.results measure --profile cpu`` executes the chapters in that profile with the variable set and
regenerates the table of ``book/results.md`` from the records kept in ``book/results/``. Explained in book/results.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from .profiles import PROFILES, is_trial, profile
from ._io import atomic_write

ENV_VAR = "POSEBOOK_RESULTS"
ROOT = Path(__file__).resolve().parents[1]  # the repository, when posebook runs from a checkout
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
RECORD_KEYS = ("chapter", "profile", "machine", "date", "commit", "figures")


def glue(name: str, value, fmt: str | None = None):
    """Name a number for the chapter's prose: the MyST role ``glue:text`` with ``name`` in a markdown cell shows it.

    ``value`` is formatted with ``fmt`` (e.g. ``"{:.3f}"``) when given. Uses myst-nb's ``glue`` in a kernel where it is
    installed (the book build); elsewhere (Colab, a plain Jupyter, a script) the value is returned and nothing is
    shown, so prose never holds a typed-in number. Returns the (formatted) value. Explained in book/results.md.
    """
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_.-]*", name):
        raise ValueError(f"glue: name {name!r} must be a plain identifier (letters, digits, _ . -)")
    shown = fmt.format(value) if fmt is not None else value
    try:
        from IPython import get_ipython
        from myst_nb import glue as myst_glue
    except ImportError:
        return shown
    if get_ipython() is not None:  # only in a kernel: outside one, myst-nb's glue would start an IPython shell
        myst_glue(name, shown, display=False)
    return shown


def record(chapter: str, **figures) -> Path | None:
    """Save one chapter's measured figures for the active profile into ``$POSEBOOK_RESULTS`` (no-op when unset).

    Figures are numbers (AP, PCK, params, GFLOPs, seconds) or short strings. Returns the file written, or None.
    A trial run (``$POSEBOOK_TRIAL``) records nothing: its few steps measure nothing worth a results row.
    """
    # checked even when nothing is written, so that smoke runs catch a chapter recording a bad figure
    if not re.fullmatch(r"[0-9A-Za-z_]+", chapter):
        raise ValueError(f"record: chapter {chapter!r} must be a notebook stem such as '03_stacked_hourglass'")
    for name, value in figures.items():
        _check_figure(name, value)
    folder = os.environ.get(ENV_VAR)
    if not folder or is_trial():
        return None
    active = profile()
    entry = {"chapter": chapter, "profile": active, "machine": machine(),
             "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
             "figures": figures}
    runs = _runs(chapter)
    if runs:
        entry["runs"] = runs
    path = Path(folder) / f"{chapter}_{active}.json"
    write_atomic(path, json.dumps(entry, indent=1) + "\n")
    return path


def notebook_minutes(chapter: str, profile_name: str, folder: str | os.PathLike | None = None) -> float | None:
    """Minutes the whole notebook of ``chapter`` took in ``profile_name``, as ``python -m posebook.results measure``
    recorded them in ``folder`` (default: the checkout's ``book/results``); None when not measured. Explained in
    book/results.md."""
    path = Path(folder if folder is not None else ROOT / "book" / "results") / f"{chapter}_{profile_name}.json"
    if not path.exists():
        return None
    try:
        seconds = json.loads(path.read_text())["figures"].get("notebook_s")
    except (ValueError, KeyError, AttributeError) as err:
        raise ValueError(f"results record {path} cannot be read ({type(err).__name__}: {err})") from None
    return None if seconds is None else seconds / 60


def _runs(chapter: str) -> list[dict]:
    """The chapter's runs in this process (``posebook.checkpoints.load_or_train``): checkpoint, retrained, source."""
    checkpoints = sys.modules.get("posebook.checkpoints")  # not imported: the chapter trained nothing through it
    return checkpoints.runs(chapter) if checkpoints is not None else []


def cached(entry: dict) -> bool:
    """True when a record's model (or one of its models) was loaded from the run cache, not trained in that run."""
    return any(not run.get("retrained", True) for run in entry.get("runs", []))


def _check_figure(name: str, value) -> None:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if numeric and not math.isfinite(value):
        raise ValueError(f"record: figure {name}={value!r} is not finite")
    if not numeric and not (isinstance(value, str) and len(value) <= 80):
        raise TypeError(f"record: figure {name}={value!r} must be a number or a short string "
                        f"(got {type(value).__name__}); convert tensors with float(...)")


def machine() -> str:
    """The GPU's name when CUDA is in use, else the CPU model and its core count."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"CPU {model}, {os.cpu_count()} cores"


def git_commit(root: Path = ROOT) -> str:
    """The checkout's short commit, with ``+dirty`` when tracked files differ from it; ``unknown`` outside git."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file in the same folder, so no reader sees it half-written."""
    atomic_write(path, lambda f: f.write(text.encode()))


def load_records(folder: Path) -> list[dict]:
    """Every ``*.json`` record in folder, checked; a malformed one raises naming its file."""
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        missing = [k for k in RECORD_KEYS if k not in entry]
        if missing or entry["profile"] not in PROFILES:
            raise ValueError(f"{path}: a results record needs {RECORD_KEYS} and a profile in {PROFILES}; "
                             f"missing {missing}, profile {entry.get('profile')!r}")
        records.append(entry)
    return records


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def table(records: list[dict]) -> str:
    """Markdown: one table per chapter, one row per profile (smoke, cpu, gpu, full order), a column per figure;
    the commit of a record whose model came from the run cache reads ``, cached model``."""
    if not records:
        return "_No measurements recorded yet: run `python -m posebook.results measure --profile cpu`._"
    parts = []
    for chapter in sorted({r["chapter"] for r in records}):
        rows = sorted((r for r in records if r["chapter"] == chapter), key=lambda r: PROFILES.index(r["profile"]))
        names = list(dict.fromkeys(k for r in rows for k in r["figures"]))
        header = ["profile", *names, "machine", "date", "commit"]
        lines = [f"## {chapter}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in rows:
            commit = f"`{r['commit']}`" + (", cached model" if cached(r) else "")
            cells = [r["profile"], *(_cell(r["figures"].get(n, "")) for n in names), r["machine"], r["date"], commit]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def replace_block(text: str, begin: str, end: str, body: str, page="page") -> str:
    """``text`` with what lies between its one ``begin`` marker and the one ``end`` marker after it replaced by
    ``body``; a page without exactly that pair raises naming ``page`` and the markers. The Results page's tables
    (results, calibration, plateau pilots, studies) are such blocks."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"{page}: expected one {begin} line followed by one {end} line around the block it marks")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def update_page(page: Path, records: list[dict]) -> None:
    """Replace the text between the results markers of page with :func:`table` (atomically)."""
    page = Path(page)
    write_atomic(page, replace_block(page.read_text(), BEGIN, END, table(records), page))


def execute_chapter(notebook: Path, profile_name: str, results: Path, timeout: int) -> float:
    """Run one chapter top to bottom with nbclient in ``profile_name``, recording into ``results``; its seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    with _environ(POSEBOOK_PROFILE=profile_name, **{ENV_VAR: str(Path(results).resolve())}):
        start = time.perf_counter()
        client.execute()
        return time.perf_counter() - start


@contextlib.contextmanager
def _environ(**values: str):
    """Set environment variables for the kernels started inside the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def add_figure(path: Path, **figures) -> None:
    """Add figures to an existing record (the notebook's total run time, measured from outside)."""
    entry = json.loads(Path(path).read_text())
    entry["figures"].update(figures)
    write_atomic(Path(path), json.dumps(entry, indent=1) + "\n")


def measure(profile_name: str, chapters: list[str] | None = None, notebooks: Path = ROOT / "notebooks",
            results: Path = ROOT / "book" / "results", page: Path = ROOT / "book" / "results.md",
            timeout: int = 3600) -> dict[str, Path | None]:
    """Execute the chosen chapters (stems or number prefixes; all by default), then regenerate the page's table.

    Returns chapter stem -> its record file, or None where the chapter recorded nothing.
    """
    if profile_name not in PROFILES:
        raise ValueError(f"--profile {profile_name!r}: expected one of {PROFILES}")
    chosen = select_chapters(Path(notebooks), chapters)
    written = {}
    for notebook in chosen:
        seconds = execute_chapter(notebook, profile_name, Path(results), timeout)
        path = Path(results) / f"{notebook.stem}_{profile_name}.json"
        written[notebook.stem] = path if path.exists() else None
        if path.exists():
            add_figure(path, notebook_s=round(seconds, 1))
    update_page(Path(page), load_records(Path(results)))
    return written


def select_chapters(notebooks: Path, chapters: list[str] | None) -> list[Path]:
    """The chapter notebooks named by stem or number prefix ('03' or '03_stacked_hourglass'); all when None."""
    available = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        return available
    chosen = []
    for name in chapters:
        hits = [p for p in available if p.stem == name or p.stem.split("_", 1)[0] == name]
        if not hits:
            raise ValueError(f"--chapters {name!r}: no such chapter in {notebooks}; "
                             f"available: {[p.stem for p in available]}")
        chosen += hits
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posebook.results", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("measure", help="execute chapters in a profile, recording results; then update the page")
    run.add_argument("--profile", required=True, choices=PROFILES)
    run.add_argument("--chapters", nargs="*", help="stems or number prefixes (default: every chapter)")
    run.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    sub.add_parser("table", help="regenerate the page's table from the records only")
    for p in (run, sub.choices["table"]):
        p.add_argument("--results", type=Path, default=ROOT / "book" / "results")
        p.add_argument("--page", type=Path, default=ROOT / "book" / "results.md")
    args = parser.parse_args(argv)
    if args.command == "table":
        update_page(args.page, load_records(args.results))
        print(f"updated {args.page}")
        return 0
    written = measure(args.profile, args.chapters, results=args.results, page=args.page, timeout=args.timeout)
    for stem, path in written.items():
        print(f"{stem}: {path if path else 'recorded nothing (no posebook.results.record call ran)'}")
    print(f"updated {args.page}")
    return 0 if all(written.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
