"""Exercise checkers: ``check("oks", my_oks)`` answers with a clear pass or a specific hint.

Each chapter's checkers live in a module of this package (``intro``, ``data``, ...), registered with
:func:`exercise` together with a reference solution and planted wrong answers that the tests prove are rejected.
``python -m posebook.check NOTEBOOK...`` runs the exercises of a learner's edited notebooks, like the pytest mode.
"""
from ._core import (CheckFailure, Exercise, Result, as_array, check, exercise, exercises, expect_close,
                    expect_shape, get, guard, run_with_timeout)

__all__ = ["CheckFailure", "Exercise", "Result", "as_array", "check", "exercise", "exercises", "expect_close",
           "expect_shape", "get", "guard", "run_with_timeout"]
