"""Every chapter executes top to bottom in the smoke profile (each well under a minute)."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(path, monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_PROFILE", "smoke")
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))  # checkpoints of this run only
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()


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


TRIALS = [(path, name) for path in NOTEBOOKS for name in ("gpu", "full")]


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
