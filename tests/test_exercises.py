"""The pytest mode for learners: check the exercise cells of the (edited) notebooks.

    pytest tests/test_exercises.py                       # every notebook in notebooks/
    pytest tests/test_exercises.py --notebooks my.ipynb  # one edited copy

A correct answer passes, a wrong one fails with the checker's hint, an untouched stub is skipped as not attempted.
"""
from pathlib import Path

import pytest

from posebook.check._notebook import notebook_exercises, run_notebook_exercise

ROOT = Path(__file__).resolve().parents[1]


def _notebooks(config) -> list[Path]:
    given = [Path(p) for p in config.getoption("--notebooks")] or [ROOT / "notebooks"]
    found = []
    for path in given:
        found += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    return found


def pytest_generate_tests(metafunc):
    if "notebook_exercise" in metafunc.fixturenames:
        items = [ex for nb in _notebooks(metafunc.config) for ex in notebook_exercises(nb)]
        metafunc.parametrize("notebook_exercise", items, ids=[ex.id for ex in items])


def test_exercise(notebook_exercise):
    result = run_notebook_exercise(notebook_exercise)
    if result.status == "not attempted":
        pytest.skip(f"{notebook_exercise.id}: not attempted (the stub still raises NotImplementedError)")
    assert result.passed, f"{notebook_exercise.id}: {result}"
