"""Exercise checkers: ``check("oks", my_oks)`` answers with a clear pass or a specific hint.

Each chapter's checkers live in a module of this package, registered with :func:`exercise` together with a
reference solution and planted wrong answers that the tests prove are rejected. The chapters' modules are imported
below, one line each: a new chapter adds its module and its line. ``python -m posebook.check NOTEBOOK...`` runs the
exercises of a learner's edited notebooks, like the pytest mode.
"""
from posebook.check._core import (CheckFailure, Exercise, Result, as_array, check, exercise, exercises, expect_close,
                                  expect_shape, get, guard, run_with_timeout)
# each chapter's checkers register on import: intro (00), data (01), metrics (02), hourglass (03),
# simple_baseline (04), cpn (05), mspn (06), hrnet (07), openpose (08), side_by_side (09)
from posebook.check import (cpn, data, hourglass, hrnet, intro, metrics, mspn, openpose, side_by_side,  # noqa: F401
                            simple_baseline)

__all__ = ["CheckFailure", "Exercise", "Result", "as_array", "check", "exercise", "exercises", "expect_close",
           "expect_shape", "get", "guard", "run_with_timeout"]
