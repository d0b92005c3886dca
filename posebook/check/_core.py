"""The exercise machinery: a registry of checkers, each with a reference solution and planted wrong answers.

The registry fills as ``posebook.check`` imports each chapter's checker module (explicitly, one line each).

A checker is a function that takes the learner's function and raises :class:`CheckFailure` with a specific hint
(which input, what was expected, what came back). :func:`check` runs it with a time limit and turns every outcome
into a :class:`Result`: passed, failed, not attempted (the stub still raises ``NotImplementedError``), error (the
learner's code raised) or timeout.
"""
from __future__ import annotations

import ctypes
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

DEFAULT_TIMEOUT = 20.0
_LIBRARY_DIR = str(Path(__file__).resolve().parents[1])


class CheckFailure(AssertionError):
    """Raised by a checker: the learner's answer is wrong; the message says where and what was expected."""


class NotAttempted(Exception):
    """The learner's function still raises NotImplementedError."""


class LearnerError(Exception):
    """The learner's function raised; ``summary`` is one line naming the error and the learner's line."""

    def __init__(self, summary: str):
        super().__init__(summary)
        self.summary = summary


class CheckTimeout(BaseException):
    """The check ran past its time limit (a BaseException, so a learner's ``except Exception`` cannot swallow it)."""


@dataclass
class Exercise:
    name: str
    checker: Callable
    solution: Callable
    mutants: dict[str, Callable]
    chapter: str
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class Result:
    """The outcome of one check. Shown as one line in a notebook; ``bool(result)`` is True only when it passed."""

    name: str
    status: str  # "passed" | "failed" | "not attempted" | "error" | "timeout"
    message: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = {"passed": "PASSED", "not attempted": "NOT ATTEMPTED"}.get(self.status, self.status.upper())
        return f"[{mark}] {self.name}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"passed": "#1a7f37", "not attempted": "#6e7781"}.get(self.status, "#cf222e")
        import html

        return (f'<div style="border-left:4px solid {colour};padding:4px 8px"><b style="color:{colour}">'
                f"{html.escape(self.status.upper())}</b> <code>{html.escape(self.name)}</code>: "
                f"{html.escape(self.message)}</div>")


_EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, *, solution: Callable, mutants: dict[str, Callable], chapter: str,
             timeout: float = DEFAULT_TIMEOUT):
    """Decorator registering a checker under ``name`` with its reference solution and planted wrong answers."""

    def add(checker: Callable) -> Callable:
        if name in _EXERCISES:
            raise ValueError(f"exercise {name!r} is registered twice")
        _EXERCISES[name] = Exercise(name, checker, solution, dict(mutants), chapter, timeout)
        return checker

    return add


def _learner_line(tb) -> str:
    """The innermost traceback frame outside posebook and site-packages: where the learner's code failed."""
    frames = [f for f in traceback.extract_tb(tb)
              if not f.filename.startswith(_LIBRARY_DIR) and "site-packages" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f" (line {frame.lineno} of your code{code})"


def guard(fn: Callable) -> Callable:
    """Wrap the learner's function so its own exceptions are told apart from the checker's verdicts."""

    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise NotAttempted() from None
        except (CheckFailure, CheckTimeout):
            raise
        except Exception as err:  # the learner's bug, reported in one line
            raise LearnerError(f"{type(err).__name__}: {err}{_learner_line(err.__traceback__)}") from None

    call.__name__ = getattr(fn, "__name__", "learner_function")
    return call


def run_with_timeout(func: Callable, timeout: float):
    """Call ``func()``; raise CheckTimeout in the calling thread if it runs longer than ``timeout`` seconds.

    The exception is delivered between Python bytecodes, so a pure-Python infinite loop is stopped; a single
    long call into C code is stopped when it returns. Works in the main thread and in worker threads alike.
    """
    target = ctypes.c_ulong(threading.get_ident())
    lock = threading.Lock()
    state = {"finished": False, "fired": False}

    def watchdog():
        if finished_event.wait(timeout):
            return
        with lock:
            if not state["finished"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(CheckTimeout))

    finished_event = threading.Event()
    watcher = threading.Thread(target=watchdog, daemon=True)
    watcher.start()
    try:
        return func()
    finally:
        with lock:
            state["finished"] = True
            if state["fired"]:  # fired just as func returned: drop the exception if it is still pending
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)
        finished_event.set()
        watcher.join()


def exercises() -> dict[str, Exercise]:
    """Every registered exercise, by name (the chapters' modules register theirs when ``posebook.check`` imports them)."""
    return dict(_EXERCISES)


def get(name: str) -> Exercise:
    try:
        return _EXERCISES[name]
    except KeyError:
        raise KeyError(f"no exercise named {name!r}; exercises: {sorted(_EXERCISES)}") from None


def check(name: str, fn: Callable, *, timeout: float | None = None) -> Result:
    """Check the learner's ``fn`` for exercise ``name``; the returned Result shows itself as one line."""
    ex = get(name)
    if not callable(fn):
        return Result(name, "error", f"expected a function, got {type(fn).__name__}")
    limit = ex.timeout if timeout is None else timeout
    try:
        run_with_timeout(lambda: ex.checker(guard(fn)), limit)
    except NotAttempted:
        return Result(name, "not attempted", "the stub still raises NotImplementedError: write your solution, "
                                             "then run this cell again")
    except CheckFailure as failure:
        return Result(name, "failed", str(failure))
    except LearnerError as err:
        return Result(name, "error", f"your function raised {err.summary}")
    except CheckTimeout:
        return Result(name, "timeout", f"stopped after {limit:g} s: does your code loop forever, or loop in "
                                       "Python over every pixel?")
    return Result(name, "passed", "all checks passed")


# ---- helpers that checkers use to phrase their verdicts -------------------------------------------------------

def as_array(value, what: str) -> np.ndarray:
    """The learner's output as a numpy array (torch tensors are accepted), or a CheckFailure saying what came back."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailure(f"{what}: expected an array of numbers, got {type(value).__name__}") from None


def expect_shape(value, shape: tuple, what: str) -> np.ndarray:
    arr = as_array(value, what)
    if arr.shape != tuple(shape):
        raise CheckFailure(f"{what}: expected shape {tuple(shape)}, got {arr.shape}")
    return arr


def expect_close(value, expected, what: str, *, atol: float = 1e-6, rtol: float = 1e-6, hint: str = "") -> None:
    expected = np.asarray(expected, dtype=float)
    arr = expect_shape(value, expected.shape, what)
    if not np.allclose(arr, expected, atol=atol, rtol=rtol, equal_nan=True):
        bad = np.unravel_index(np.argmax(np.abs(np.nan_to_num(arr - expected, nan=np.inf))), expected.shape)
        where = f" at index {tuple(int(i) for i in bad)}" if expected.ndim else ""
        got, want = (arr[bad], expected[bad]) if expected.ndim else (arr, expected)
        raise CheckFailure(f"{what}: expected {float(want):.6g}{where}, got {float(got):.6g}"
                           + (f". Hint: {hint}" if hint else ""))


def randomised(module, seed: int):
    """``module`` with non-trivial weights and BN statistics drawn from ``seed`` (running variances kept positive),
    in eval mode, so that every layer (conv, BN, ReLU) shows in the output a checker compares. Chapters 04 and 07."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                values = torch.randn(t.shape, generator=gen) * 0.3
                t.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return module.eval()
