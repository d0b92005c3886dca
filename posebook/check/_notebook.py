"""Find and run the exercises of a learner's notebook: cells tagged ``exercise`` and the ``check(...)`` after them.

Each exercise cell is run on its own in a fresh namespace (so it must do its own imports), then the checker is
applied to the function the check cell names. Untouched stubs come back as "not attempted".
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from ._core import CheckTimeout, Result, check, get, run_with_timeout, _learner_line

TAG = "exercise"


@dataclass
class NotebookExercise:
    notebook: Path
    cell: int  # index of the exercise cell in the notebook
    source: str
    name: str  # the exercise name passed to check()
    function: str  # the learner's function name passed to check()

    @property
    def id(self) -> str:
        return f"{self.notebook.stem}::{self.name}"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _check_call(source: str) -> tuple[str, str] | None:
    """The (exercise name, function name) of the first ``check("name", fn)`` call in a cell, if any."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            name, fn = node.args[0], node.args[1]
            if called == "check" and isinstance(name, ast.Constant) and isinstance(fn, ast.Name):
                return name.value, fn.id
    return None


def notebook_exercises(path: str | Path) -> list[NotebookExercise]:
    """Every exercise of a notebook; a tagged cell with no ``check(...)`` cell after it is an error naming both."""
    path = Path(path)
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a readable notebook ({err})") from None
    found = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        later = (_check_call(_source(c)) for c in cells[i + 1:] if c.get("cell_type") == "code")
        call = next((c for c in later if c), None)
        if call is None:
            raise ValueError(f"{path}: exercise cell {i} has no check(\"name\", function) cell after it")
        found.append(NotebookExercise(path, i, _source(cell), *call))
    return found


def run_notebook_exercise(ex: NotebookExercise) -> Result:
    """Run one exercise cell in isolation and check the function it defines."""
    limit = get(ex.name).timeout
    namespace: dict = {"__name__": "__exercise__"}
    try:
        code = compile(ex.source, f"{ex.notebook.name}, cell {ex.cell}", "exec")
        run_with_timeout(lambda: exec(code, namespace), limit)
    except SyntaxError as err:
        return Result(ex.name, "error", f"your cell has a syntax error at line {err.lineno}: {err.msg}")
    except CheckTimeout:
        return Result(ex.name, "timeout", f"running your cell took more than {limit:g} s")
    except Exception as err:
        return Result(ex.name, "error",
                      f"running your cell raised {type(err).__name__}: {err}{_learner_line(err.__traceback__)}")
    if ex.function not in namespace:
        return Result(ex.name, "error", f"your cell does not define {ex.function}()")
    return check(ex.name, namespace[ex.function])
