"""Shared fixtures: the real data in ../shared (skipped, saying so, when absent) and the repository paths."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two threads can stall on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def assert_close(actual, expected, rel: float = 1e-5, what: str = "") -> None:
    """``actual`` equals ``expected`` up to ``rel`` times the largest magnitude in ``expected``.

    A hand computation of a network's activations sums many float32 products; how those sums round depends on the
    machine's kernels, so the error grows with the values' magnitude, not with each element's own size (an element
    near 0 in a map whose values reach 500 carries the rounding of the 500s). A fixed small ``atol`` passes on one
    machine and fails on the next: scale it to the values, or compute in float64."""
    import numpy as np
    import torch

    a = actual.detach().double().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual, float)
    e = expected.detach().double().cpu().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected, float)
    assert a.shape == e.shape, f"{what} shapes differ: {a.shape} vs {e.shape}"
    scale = float(np.abs(e).max()) if e.size else 0.0
    tol = rel * max(scale, 1e-3)
    err = float(np.abs(a - e).max()) if e.size else 0.0
    assert err <= tol, f"{what} differs by {err:.3g} > {tol:.3g} ({rel:g} x the largest |value| {scale:.3g})"


JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
ARTIFACTS = ROOT / "test-artifacts"


def build_book(source: Path, out: Path, env: dict | None = None) -> Path:
    """Run `jupyter-book build source -W --path-output out`; return out/_build/html (the build log on failure)."""
    cmd = [str(JUPYTER_BOOK), "build", str(source), "-W", "--path-output", str(out)]
    run = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    # the log without traceback frames: the warning or cell error that failed the build is what matters
    log = [line for line in (run.stdout + run.stderr).splitlines() if not line.startswith("  ")]
    assert run.returncode == 0, f"{' '.join(cmd)} failed:\n" + "\n".join(log[-80:])
    return out / "_build" / "html"


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    """The book built once per session in the smoke profile into test-artifacts/book (kept for inspection).

    The build executes every chapter in the smoke profile: the smoke tests of the chapters read what it executed
    (``jupyter_execute/`` beside ``html/``) and the records it wrote (``smoke_results/`` beside it), so that CI runs
    each chapter once, not once for the tests and once for the book.
    """
    if _BOOK_FAILURE:  # pytest runs a failed session fixture again for every test that asks for it: fail at once
        pytest.fail(f"the smoke build of the book failed (see the first test that asked for it):\n{_BOOK_FAILURE[0]}")
    try:
        return _build_smoke_book(tmp_path_factory)
    except BaseException as err:
        _BOOK_FAILURE.append(str(err)[-4000:])
        raise


_BOOK_FAILURE: list[str] = []


def _build_smoke_book(tmp_path_factory) -> Path:
    vendor = subprocess.run([sys.executable, str(ROOT / "book_tools" / "vendor.py")], capture_output=True, text=True)
    assert vendor.returncode == 0, f"book_tools/vendor.py failed:\n{vendor.stdout}\n{vendor.stderr[-3000:]}"
    out = ARTIFACTS / "book"
    shutil.rmtree(out, ignore_errors=True)
    env = {"POSEBOOK_PROFILE": "smoke", "POSEBOOK_CACHE": str(tmp_path_factory.mktemp("cache")),
           "POSEBOOK_RESULTS": str(out / "smoke_results")}  # (no MPLBACKEND=Agg: the book shows inline figures)
    return build_book(ROOT, out, env)
