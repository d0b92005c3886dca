"""Foundations: profiles, device, environment report, cache and sample-data locations."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import posebook
from posebook.profiles import sized


def test_profile_honours_environment_variable(monkeypatch):
    for name in posebook.PROFILES:
        monkeypatch.setenv("POSEBOOK_PROFILE", name)
        assert posebook.profile() == name


def test_profile_default_is_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("POSEBOOK_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert posebook.profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert posebook.profile() == "gpu"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("POSEBOOK_PROFILE", "tiny")
    with pytest.raises(ValueError, match="POSEBOOK_PROFILE='tiny'.*smoke"):
        posebook.profile()


def test_sized_picks_the_active_profile_and_reads_as_attributes(monkeypatch):
    monkeypatch.setenv("POSEBOOK_PROFILE", "smoke")
    cfg = sized(smoke=dict(steps=2), cpu=dict(steps=200), gpu=dict(steps=2000), full=dict(steps=10**5))
    assert cfg.steps == 2 and cfg["steps"] == 2 and cfg.profile == "smoke"
    with pytest.raises(AttributeError, match="sets no 'batch'"):
        cfg.batch


def test_sized_requires_the_same_keys_in_every_profile():
    with pytest.raises(ValueError, match="'gpu'.*missing \\['steps'\\]"):
        sized(smoke=dict(steps=1), cpu=dict(steps=1), gpu=dict(), full=dict(steps=1))


def test_trial_run_replaces_only_the_declared_budgets(monkeypatch):
    monkeypatch.setenv("POSEBOOK_PROFILE", "gpu")
    profiles = dict(smoke=dict(steps=2, width=8), cpu=dict(steps=200, width=16), gpu=dict(steps=2000, width=32),
                    full=dict(steps=10**5, width=32))
    monkeypatch.delenv("POSEBOOK_TRIAL", raising=False)
    assert not posebook.is_trial() and not sized(**profiles, trial=dict(steps=2)).trial
    assert sized(**profiles, trial=dict(steps=2)).steps == 2000
    for value in ("1", "true", "YES"):
        monkeypatch.setenv("POSEBOOK_TRIAL", value)
        cfg = sized(**profiles, trial=dict(steps=2))
        assert cfg.trial and cfg.profile == "gpu" and cfg.steps == 2 and cfg.width == 32
        assert "gpu, trial run" in repr(cfg)
    assert sized(**profiles) == profiles["gpu"], "a chapter that declares no trial budgets runs unchanged"
    for value in ("0", "false", "no", ""):
        monkeypatch.setenv("POSEBOOK_TRIAL", value)
        assert not posebook.is_trial()


def test_trial_settings_are_checked(monkeypatch):
    profiles = dict(smoke=dict(steps=2), cpu=dict(steps=200), gpu=dict(steps=2000), full=dict(steps=10**5))
    with pytest.raises(ValueError, match="sized\\(trial=...\\) sets \\['stpes'\\]"):
        sized(**profiles, trial=dict(stpes=2))
    monkeypatch.setenv("POSEBOOK_TRIAL", "maybe")
    with pytest.raises(ValueError, match="POSEBOOK_TRIAL='maybe'"):
        posebook.is_trial()


def test_smoke_profile_reaches_a_fresh_interpreter(monkeypatch):
    monkeypatch.setenv("POSEBOOK_PROFILE", "smoke")
    out = subprocess.run([sys.executable, "-c", "import posebook; print(posebook.profile())"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "smoke"


def test_env_report_says_when_a_run_is_a_trial(monkeypatch):
    monkeypatch.setenv("POSEBOOK_PROFILE", "gpu")
    monkeypatch.setenv("POSEBOOK_TRIAL", "1")
    assert "profile      gpu (trial run)" in posebook.env_report()
    monkeypatch.setenv("POSEBOOK_TRIAL", "perhaps")
    assert "trial setting invalid" in posebook.env_report()


def test_env_report_names_every_dependency():
    report = posebook.env_report()
    for name in ("python", "torch", "CUDA", "GPU", "numpy", "opencv", "pycocotools", "profile"):
        assert name in report
    assert torch.__version__ in report


def test_device_is_cpu_here_and_overridable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert posebook.device().type == "cpu"
    monkeypatch.setenv("POSEBOOK_DEVICE", "meta")
    assert posebook.device().type == "meta"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path))
    path = posebook.cache_dir("checkpoints", "03")
    assert path == tmp_path / "checkpoints" / "03" and path.is_dir()


def test_sample_data_finds_shared_fixtures_or_returns_none(coco_sample, monkeypatch):
    monkeypatch.setenv("POSEBOOK_SHARED", str(coco_sample.parents[1]))
    assert posebook.sample_data("coco_sample") == coco_sample
    assert posebook.sample_data("no_such_folder") is None


def test_the_package_ships_the_coco_sample_so_chapters_show_photos_without_shared(coco_sample, monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_SHARED", str(tmp_path))  # an empty shared folder: only the packaged copy is left
    shipped = posebook.sample_data("coco_sample")
    assert shipped is not None and shipped.is_relative_to(Path(posebook.__file__).parent)
    assert posebook.sample_data("mpii_sample") is None, "the MPII photos are for research use: not shipped"
    for name in ("person_keypoints_sample.json", "person_detections_sample.json", *(
            f"images/{p.name}" for p in (coco_sample / "images").glob("*.jpg"))):
        assert (shipped / name).read_bytes() == (coco_sample / name).read_bytes(), name


def test_the_shipped_photos_are_attributed_with_their_own_licences():
    import json

    folder = Path(posebook.__file__).parent / "sample_data" / "coco_sample"
    data = json.loads((folder / "person_keypoints_sample.json").read_text())
    licences = {entry["id"]: entry["url"] for entry in data["licenses"]}
    attribution = (folder / "ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in attribution  # the annotations
    for image in data["images"]:
        row = next(line for line in attribution.splitlines() if image["file_name"] in line)
        assert licences[image["license"]] in row and image["flickr_url"] in row, row
    assert sorted(p.name for p in (folder / "images").iterdir()) == sorted(i["file_name"] for i in data["images"])
