"""Every chapter executes top to bottom in the smoke profile (each well under a minute), computes finite figures,
and runs as a trial of each distinct gpu/full profile."""
import contextlib
import io
import json
import math
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


NOT_A_NUMBER = re.compile(r"(?<![\w.])(nan|inf)(?![\w(])", re.IGNORECASE)


def printed(nb) -> str:
    """Everything the executed notebook's code cells printed (streams and plain-text results)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def check_computed(path: Path, nb, results: Path) -> None:
    """What a chapter computed is a number: it prints no NaN or inf, and the figures it records (AP, PCK in [0, 1])
    are written. A chapter that printed ``AP nan`` used to pass its smoke run."""
    text = printed(nb)
    bad = [line for line in text.splitlines() if NOT_A_NUMBER.search(line)]
    assert not bad, f"{path.name} printed a value that is not a number: {bad[:3]}"
    if "posebook.results.record(" not in "\n".join(c.source for c in nb.cells if c.cell_type == "code"):
        return
    files = sorted(results.glob(f"{path.stem}_smoke.json"))
    assert files, f"{path.name} calls posebook.results.record but wrote no record in {results}"
    figures = json.loads(files[0].read_text())["figures"]
    for name, value in figures.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert math.isfinite(value), f"{path.name}: figure {name}={value}"
            if name.startswith(("AP", "PCK")):
                assert 0.0 <= value <= 1.0, f"{path.name}: figure {name}={value} is not a fraction"


@pytest.mark.parametrize("line,bad", [("AP nan", True), ("loss inf", True), ("PCK@0.2 NaN", True),
                                      ("AP 0.171", False), ("torch.nan_to_num", False), ("inference", False),
                                      ("informative", False), ("np.isnan(x)", False)])
def test_not_a_number_pattern(line, bad):
    assert bool(NOT_A_NUMBER.search(line)) is bad


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(path, book):
    """The book build (fixture ``book``, smoke profile, ``-W``: a cell error fails it) executed the chapter; here we
    check what it computed."""
    executed = book.parent / "jupyter_execute" / "notebooks" / f"{path.stem}.ipynb"
    assert executed.is_file(), f"the smoke build of the book did not execute {path.name} (not in _toc.yml?)"
    nb = nbformat.read(executed, as_version=4)
    errors = [out for c in nb.cells if c.cell_type == "code" for out in c.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    check_computed(path, nb, book.parents[1] / "smoke_results")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_starts_with_badge_row_and_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert f"colab.research.google.com/github/posebook/posebook/blob/main/notebooks/{path.name}" in first_md.source
    assert "google.colab" in first_code.source and "pip" in first_code.source
    assert "hide-input" in first_code.metadata.get("tags", []), f"{path.name}: hide the Colab setup cell's input"


def _setup_cells():
    return {p.stem: next(c for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code").source
            for p in NOTEBOOKS}


def test_every_chapter_has_the_same_setup_cell():
    sources = _setup_cells()
    assert len(set(sources.values())) == 1, f"the Colab setup cells differ: {sorted(sources)}"


def test_setup_cell_installs_from_posebook_install_and_says_what_to_do_when_pip_fails(monkeypatch, tmp_path):
    import sys
    import types

    source = next(iter(_setup_cells().values()))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    missing = tmp_path / "posebook-0.0.0-py3-none-any.whl"  # no such wheel: pip fails offline, at once
    monkeypatch.setenv("POSEBOOK_INSTALL", str(missing))
    with pytest.raises(RuntimeError, match="POSEBOOK_INSTALL") as err:
        exec(compile(source, "setup-cell", "exec"), {})
    assert str(missing) in str(err.value)
    monkeypatch.delitem(sys.modules, "google.colab")
    exec(compile(source, "setup-cell", "exec"), {})  # outside Colab: nothing happens


def _coco_folder(tmp_path: Path) -> Path | None:
    """The real COCO sample laid out as data_scripts/download_coco.py writes a download, for the `full` profile."""
    sample = Path(os.environ.get("POSEBOOK_SHARED", ROOT.parent / "shared")) / "data" / "coco_sample"
    if not sample.exists():
        return None
    folder = tmp_path / "coco"
    (folder / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (folder / split).symlink_to(sample / "images", target_is_directory=True)
        text = (sample / "person_keypoints_sample.json").read_text()
        (folder / "annotations" / f"person_keypoints_{split}_subset.json").write_text(text)
    return folder


def trial_settings(path: Path, profile_name: str) -> dict | None:
    """The settings a trial run of ``profile_name`` would use: the chapter's ``posebook.sized(...)`` cell executed on
    its own with that profile (None when the cell needs earlier cells)."""
    cell = next((c.source for c in nbformat.read(path, as_version=4).cells
                 if c.cell_type == "code" and "posebook.sized(" in c.source), None)
    if cell is None:
        return None
    saved = {k: os.environ.get(k) for k in ("POSEBOOK_PROFILE", "POSEBOOK_TRIAL", "MPLBACKEND")}
    os.environ.update(POSEBOOK_PROFILE=profile_name, POSEBOOK_TRIAL="1", MPLBACKEND="Agg")
    namespace: dict = {}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(cell, f"{path.name}:sized", "exec"), namespace)
    except Exception:
        return None
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return dict(namespace["cfg"]) if "cfg" in namespace else None


def distinct_trials() -> list[tuple[Path, str]]:
    """(chapter, profile) for the gpu and full trials, leaving out a full trial whose settings equal the gpu trial's:
    it would run the same cells on the same sizes a second time (CI time)."""
    out = []
    for path in NOTEBOOKS:
        out.append((path, "gpu"))
        gpu, full = trial_settings(path, "gpu"), trial_settings(path, "full")
        if gpu is None or gpu != full:
            out.append((path, "full"))
    return out


TRIALS = distinct_trials()


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path,profile_name", TRIALS, ids=[f"{p.stem}-{name}" for p, name in TRIALS])
def test_notebook_runs_as_a_trial_of_the_gpu_and_full_profiles(path, profile_name, monkeypatch, tmp_path):
    """The gpu and full profiles' models, input sizes and data, with the few steps the chapter declares for a trial
    run (POSEBOOK_TRIAL=1), executed here on the CPU: every cell of those profiles runs. Speed, memory and accuracy
    on a GPU are measured separately (the chapters' cost tables, the Results page)."""
    monkeypatch.setenv("POSEBOOK_PROFILE", profile_name)
    monkeypatch.setenv("POSEBOOK_TRIAL", "1")
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("POSEBOOK_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    coco = _coco_folder(tmp_path)
    if coco is not None:
        monkeypatch.setenv("POSEBOOK_COCO_DIR", str(coco))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    text = "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert f"Settings[{profile_name}, trial run]" in text or "profile: " + profile_name in text
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir()), "trials record nothing"
    if path.stem in ("03_stacked_hourglass", "07_hrnet") and profile_name == "full" and coco is not None:
        assert "in 2 photos" in text or "in 2 COCO val2017 photos" in text, "full trains and validates on COCO"


def shown(nb) -> int:
    """Figures and widget views a run of the notebook shows."""
    kinds = ("image/png", "image/svg+xml", "application/vnd.jupyter.widget-view+json")
    return sum(any(k in out.get("data", {}) for k in kinds)
               for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", []))


@pytest.mark.notebook
def test_the_introduction_shows_every_figure_without_the_shared_folder(book, monkeypatch, tmp_path):
    """On Colab or a laptop there is no ../shared: the chapter shows its photos from the sample the package ships."""
    path = ROOT / "notebooks" / "00_introduction.ipynb"
    with_shared = shown(nbformat.read(book.parent / "jupyter_execute" / "notebooks" / path.name, as_version=4))
    monkeypatch.setenv("POSEBOOK_SHARED", str(tmp_path / "no_shared_here"))
    monkeypatch.setenv("POSEBOOK_PROFILE", "smoke")
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the inline backend: figures become outputs, as in the book
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    assert with_shared >= 5 and shown(nb) == with_shared, (shown(nb), with_shared)
