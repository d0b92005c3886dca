"""posebook.results: chapters record measured figures; `measure` runs chapters and regenerates the results page."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from posebook import results

PAGE = "# Results\n\nintro\n\n<!-- results:begin -->\nold table\n<!-- results:end -->\n\nafter\n"


def make_record(chapter="03_stacked_hourglass", profile="cpu", **figures):
    return {"chapter": chapter, "profile": profile, "machine": "CPU test, 2 cores", "date": "2026-01-01 00:00 UTC",
            "commit": "abc1234", "figures": figures or {"ap": 0.5}}


def test_record_is_a_no_op_without_posebook_results(monkeypatch, tmp_path):
    monkeypatch.delenv("POSEBOOK_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert results.record("03_stacked_hourglass", ap=0.5) is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="figure ap="):  # checked all the same, so smoke runs catch bad figures
        results.record("03_stacked_hourglass", ap=[0.5])


def test_record_writes_nothing_in_a_trial_run_but_still_checks_the_figures(monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_RESULTS", str(tmp_path))
    monkeypatch.setenv("POSEBOOK_PROFILE", "gpu")
    monkeypatch.setenv("POSEBOOK_TRIAL", "1")
    assert results.record("07_hrnet", ap=0.01) is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="figure ap="):
        results.record("07_hrnet", ap=float("nan"))


def test_record_writes_chapter_profile_json_with_machine_date_commit(monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_RESULTS", str(tmp_path))
    monkeypatch.setenv("POSEBOOK_PROFILE", "smoke")
    path = results.record("07_hrnet", ap=0.123, params=28_535_000, note="synthetic val")
    assert path == tmp_path / "07_hrnet_smoke.json"
    entry = json.loads(path.read_text())
    assert entry["chapter"] == "07_hrnet" and entry["profile"] == "smoke"
    assert entry["figures"] == {"ap": 0.123, "params": 28_535_000, "note": "synthetic val"}
    assert entry["machine"].startswith(("CPU ", "GPU "))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", entry["date"])
    assert re.fullmatch(r"[0-9a-f]{4,}(\+dirty)?|unknown", entry["commit"])
    assert [p.name for p in tmp_path.iterdir()] == ["07_hrnet_smoke.json"], "no temporary file left behind"


def test_record_says_whether_the_chapters_model_was_trained_or_loaded_from_the_run_cache(monkeypatch, tmp_path):
    """A model reloaded from the cache is not what this commit trained: the record and the table say so."""
    import posebook.checkpoints

    monkeypatch.setenv("POSEBOOK_RESULTS", str(tmp_path / "records"))
    monkeypatch.setenv("POSEBOOK_PROFILE", "smoke")
    monkeypatch.setattr(posebook.checkpoints, "_RUNS", {})
    run = {"checkpoint": "07_hrnet-smoke-abc.pt", "retrained": False, "source": "0123456789ab"}
    posebook.checkpoints._RUNS[("07_hrnet", run["checkpoint"])] = run
    posebook.checkpoints._RUNS[("03_stacked_hourglass", "other.pt")] = dict(run, checkpoint="other.pt")
    entry = json.loads(results.record("07_hrnet", ap=0.5).read_text())
    assert entry["runs"] == [run] and entry["figures"] == {"ap": 0.5}
    assert results.cached(entry) and "| `abc1234`, cached model |" in results.table([{**make_record("07_hrnet"),
                                                                                      "runs": [run]}])
    run["retrained"] = True
    entry = json.loads(results.record("07_hrnet", ap=0.5).read_text())
    assert entry["runs"] == [run] and not results.cached(entry)
    assert "| `abc1234` |" in results.table([entry | {"commit": "abc1234"}])
    monkeypatch.setattr(posebook.checkpoints, "_RUNS", {})
    assert "runs" not in json.loads(results.record("07_hrnet", ap=0.5).read_text()), "no run, no runs key"


@pytest.mark.parametrize("bad", [float("nan"), [1, 2], None, True])
def test_record_rejects_a_figure_that_is_not_a_finite_number_or_short_string(monkeypatch, tmp_path, bad):
    monkeypatch.setenv("POSEBOOK_RESULTS", str(tmp_path))
    with pytest.raises((TypeError, ValueError), match="figure ap="):
        results.record("07_hrnet", ap=bad)
    assert list(tmp_path.iterdir()) == []


def test_record_rejects_a_chapter_that_is_not_a_notebook_stem(monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_RESULTS", str(tmp_path))
    with pytest.raises(ValueError, match="notebook stem"):
        results.record("../07 hrnet", ap=0.1)


def test_table_has_one_section_per_chapter_and_rows_in_profile_order():
    records = [make_record("07_hrnet", "gpu", ap=0.71234, gflops=7.1), make_record("07_hrnet", "smoke", ap=0.01),
               make_record("03_stacked_hourglass", "cpu", pck=0.8)]
    text = results.table(records)
    assert text.index("## 03_stacked_hourglass") < text.index("## 07_hrnet")
    hrnet = text.split("## 07_hrnet")[1]
    assert "| profile | ap | gflops | machine | date | commit |" in hrnet
    assert hrnet.index("| smoke |") < hrnet.index("| gpu |")
    assert "| gpu | 0.7123 | 7.1 |" in hrnet
    assert "| smoke | 0.01 |  |" in hrnet, "a figure a profile did not record is an empty cell"


def test_table_without_records_says_how_to_make_them():
    assert "python -m posebook.results measure" in results.table([])


def test_update_page_replaces_only_the_text_between_the_markers(tmp_path):
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    results.update_page(page, [make_record()])
    text = page.read_text()
    assert text.startswith("# Results\n\nintro\n\n<!-- results:begin -->\n## 03_stacked_hourglass")
    assert text.endswith("<!-- results:end -->\n\nafter\n") and "old table" not in text


def test_update_page_without_markers_names_the_file(tmp_path):
    page = tmp_path / "results.md"
    page.write_text("# Results\n")
    with pytest.raises(ValueError, match="results.md.*results:begin"):
        results.update_page(page, [])


def test_load_records_names_a_malformed_file(tmp_path):
    (tmp_path / "07_hrnet_cpu.json").write_text(json.dumps({"chapter": "07_hrnet", "profile": "laptop"}))
    with pytest.raises(ValueError, match="07_hrnet_cpu.json"):
        results.load_records(tmp_path)


def test_select_chapters_by_number_or_stem_and_unknown_names_the_choices(tmp_path):
    for stem in ("00_introduction", "03_stacked_hourglass", "07_hrnet"):
        (tmp_path / f"{stem}.ipynb").write_text("{}")
    assert [p.stem for p in results.select_chapters(tmp_path, ["07", "00_introduction"])] == \
        ["07_hrnet", "00_introduction"]
    assert len(results.select_chapters(tmp_path, None)) == 3
    with pytest.raises(ValueError, match="available"):
        results.select_chapters(tmp_path, ["05"])


def test_the_committed_records_match_the_committed_page(root):
    """book/results.md shows exactly the table its records in book/results/ make (regenerate: `... table`)."""
    text = (root / "book" / "results.md").read_text()
    shown = text.split(results.BEGIN)[1].split(results.END)[0].strip()
    assert shown == results.table(results.load_records(root / "book" / "results")).strip()


def fake_chapter(folder, stem, figure_code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import posebook\nfrom posebook.results import record"),
                nbformat.v4.new_code_cell(figure_code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{stem}.ipynb")


@pytest.mark.slow
def test_measure_runs_the_chapters_in_the_profile_and_regenerates_the_page(tmp_path):
    notebooks, store, page = tmp_path / "notebooks", tmp_path / "results", tmp_path / "results.md"
    notebooks.mkdir()
    page.write_text(PAGE)
    # the chapter records the profile it ran in, so the test sees that measure set it
    fake_chapter(notebooks, "09_fake", "record('09_fake', ap=0.25, seen=posebook.profile())")
    fake_chapter(notebooks, "10_silent", "x = 1")
    written = results.measure("smoke", ["09", "10"], notebooks=notebooks, results=store, page=page, timeout=60)
    assert written["09_fake"] == store / "09_fake_smoke.json" and written["10_silent"] is None
    entry = json.loads(written["09_fake"].read_text())
    assert entry["figures"]["seen"] == "smoke" and entry["figures"]["ap"] == 0.25
    assert entry["figures"]["notebook_s"] > 0
    table = page.read_text().split(results.BEGIN)[1]
    assert "## 09_fake" in table and "| smoke | 0.25 | smoke |" in table


def test_measure_rejects_an_unknown_profile(tmp_path):
    with pytest.raises(ValueError, match="laptop"):
        results.measure("laptop", notebooks=tmp_path, results=tmp_path, page=tmp_path / "p.md")


def test_glue_formats_the_value_and_rejects_a_name_the_book_cannot_reference():
    from posebook.results import glue

    from IPython import get_ipython

    assert glue("ap_main", 0.123456, "{:.3f}") == "0.123"
    assert get_ipython() is None, "outside a kernel glue starts no IPython shell (the live plot would think it is in one)"
    assert glue("ap_raw", 7) == 7
    with pytest.raises(ValueError, match="plain identifier"):
        glue("AP @ 0.5", 1.0)
