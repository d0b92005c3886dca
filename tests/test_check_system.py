"""The exercise machinery: outcomes, messages, time limit, and notebook extraction."""
import subprocess
import sys
import time

import nbformat
import pytest

from posebook.check import check, run_with_timeout
from posebook.check._core import CheckTimeout
from posebook.check._notebook import notebook_exercises, run_notebook_exercise


def test_untouched_stub_is_reported_as_not_attempted():
    def stub(center, size, sigma):
        raise NotImplementedError

    assert check("gaussian_heatmap", stub).status == "not attempted"


def test_learner_exception_is_one_line_naming_error_and_line():
    def buggy(center, size, sigma):
        return size[2]

    result = check("gaussian_heatmap", buggy)
    assert result.status == "error"
    assert "IndexError" in result.message and "line" in result.message and "\n" not in result.message


def test_hanging_learner_code_is_stopped_after_time_limit():
    def hang(center, size, sigma):
        while True:
            pass

    start = time.perf_counter()
    result = check("gaussian_heatmap", hang, timeout=0.5)
    assert result.status == "timeout"
    assert time.perf_counter() - start < 5


def test_timeout_is_not_swallowed_by_learner_except_exception():
    def sneaky():
        while True:
            try:
                time.sleep(0.01)
            except Exception:
                pass

    with pytest.raises(CheckTimeout):
        run_with_timeout(sneaky, 0.3)


def test_fast_code_finishing_near_limit_leaves_no_pending_timeout():
    for _ in range(20):
        assert run_with_timeout(lambda: sum(range(1000)), 0.001 + 0.01) == 499500
    time.sleep(0.05)  # a stray asynchronous exception would surface here


def test_non_function_answer_is_an_error():
    assert check("gaussian_heatmap", 3).status == "error"


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(KeyError, match="gaussian_heatmap"):
        check("no_such_exercise", print)


def test_result_renders_as_one_line_and_html():
    result = check("gaussian_heatmap", lambda c, s, g: (_ for _ in ()).throw(NotImplementedError))
    assert str(result).startswith("[NOT ATTEMPTED]")
    assert "NOT ATTEMPTED" in result._repr_html_()


def _notebook(tmp_path, exercise_source, name="gaussian_heatmap", fn="gaussian_heatmap"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Write the heatmap."),
        nbformat.v4.new_code_cell(exercise_source, metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell(f'from posebook.check import check\ncheck("{name}", {fn})'),
    ]
    path = tmp_path / "edited.ipynb"
    nbformat.write(nb, path)
    return path


CORRECT = """import numpy as np
def gaussian_heatmap(center, size, sigma):
    v, u = np.mgrid[:size[0], :size[1]]
    return np.exp(-((u - center[0])**2 + (v - center[1])**2) / (2 * sigma**2))
"""
WRONG = CORRECT.replace("2 * sigma**2", "sigma**2")
STUB = "def gaussian_heatmap(center, size, sigma):\n    raise NotImplementedError\n"


def test_notebook_extraction_finds_exercise_and_check(tmp_path):
    [ex] = notebook_exercises(_notebook(tmp_path, STUB))
    assert (ex.name, ex.function, ex.cell) == ("gaussian_heatmap", "gaussian_heatmap", 1)


@pytest.mark.parametrize("source,status", [(CORRECT, "passed"), (WRONG, "failed"), (STUB, "not attempted"),
                                           ("def gaussian_heatmap(:\n", "error"), ("x = 1\n", "error")])
def test_notebook_exercise_runs_in_isolation(tmp_path, source, status):
    [ex] = notebook_exercises(_notebook(tmp_path, source))
    assert run_notebook_exercise(ex).status == status


def test_exercise_cell_without_check_cell_is_an_error(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f(): pass", metadata={"tags": ["exercise"]})]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="cell 0"):
        notebook_exercises(path)


@pytest.mark.parametrize("source,expect", [(CORRECT, "1 passed"), (WRONG, "1 failed"), (STUB, "1 skipped")])
def test_pytest_mode_on_an_edited_notebook(tmp_path, root, source, expect):
    path = _notebook(tmp_path, source)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(root / "tests" / "test_exercises.py"), "--notebooks", str(path)],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert expect in proc.stdout, proc.stdout + proc.stderr


def test_importing_posebook_check_imports_every_chapters_checkers_by_name():
    """Checkers are found by explicit imports in posebook/check/__init__.py, not by scanning the package folder."""
    import ast
    from pathlib import Path

    import posebook.check as package

    folder = Path(package.__file__).parent
    chapters = sorted(p.stem for p in folder.glob("[!_]*.py"))
    imported = {alias.name for node in ast.parse((folder / "__init__.py").read_text()).body
                if isinstance(node, ast.ImportFrom) and node.module == "posebook.check" for alias in node.names}
    assert set(chapters) <= imported, f"posebook/check/__init__.py does not import {set(chapters) - imported}"
    assert "pkgutil" not in (folder / "_core.py").read_text()
    code = ("import sys, posebook.check as c; from posebook.check._core import _EXERCISES; "
            f"print(sorted(m for m in {chapters!r} if 'posebook.check.' + m in sys.modules), len(_EXERCISES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    assert out == f"{chapters} {len(package.exercises())}"
