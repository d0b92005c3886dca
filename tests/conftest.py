"""Shared fixtures: the real data in ../shared (skipped, saying so, when absent) and the repository paths."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSEBOOK_SHARED", ROOT.parent / "shared"))

# Tests and notebooks run in the smoke profile unless told otherwise.
os.environ.setdefault("POSEBOOK_PROFILE", "smoke")
os.environ.pop("POSEBOOK_TRIAL", None)  # a trial run asked for in the shell must not change what the tests run


def pytest_addoption(parser):
    parser.addoption("--notebooks", action="append", default=[],
                     help="notebook file or folder whose exercise cells to check (default: notebooks/)")


def _shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real fixture {path} is absent (it lives in ../shared beside the project)")
    return path


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def coco_sample() -> Path:
    """../shared/data/coco_sample: 4 COCO val2017 photos, their keypoint annotations and detections."""
    return _shared("data", "coco_sample")


@pytest.fixture(scope="session")
def mpii_sample() -> Path:
    """../shared/data/mpii_sample: 5 MPII photos with HRNet-style annotations."""
    return _shared("data", "mpii_sample")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference: official HRNet/SimpleBaseline key lists and the HRNet-W8 reference output."""
    return _shared("reference")
