"""Run-size profiles: one notebook, every machine.

``POSEBOOK_PROFILE`` selects the size of every run: ``smoke`` (seconds; tests and CI), ``cpu`` (minutes on a 2-core
laptop; the rendered book), ``gpu`` (minutes on a Colab T4), ``full`` (the paper's recipe). The default is ``gpu`` when
CUDA is available, else ``cpu``. Chapters read their sizes with :func:`sized`. Explained in chapter 00.

``POSEBOOK_TRIAL=1`` makes a *trial run* of the chosen profile: the chapter keeps the profile's model, input size and
data source but replaces its budgets (steps, batch, validation images) with the few it declares in ``sized(trial=...)``.
A trial proves in a minute or two that every cell of a profile runs on this machine before its hours are spent
(tests run the ``gpu`` and ``full`` profiles this way on a CPU); it says nothing about speed, memory or accuracy, so
trial runs keep their checkpoints apart (:func:`posebook.cache_dir`) and record no results (:mod:`posebook.results`).
"""
from __future__ import annotations

import os

PROFILES = ("smoke", "cpu", "gpu", "full")
ENV_VAR = "POSEBOOK_PROFILE"
TRIAL_VAR = "POSEBOOK_TRIAL"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # the library's pure-numpy parts work without torch
        return False
    return torch.cuda.is_available()


def profile() -> str:
    """The active profile: ``$POSEBOOK_PROFILE`` if set, else ``gpu`` with CUDA, else ``cpu``."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return "gpu" if _cuda_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a profile; expected one of {PROFILES}")
    return value


def is_trial() -> bool:
    """True when ``$POSEBOOK_TRIAL`` asks for a trial run (``1``/``true``/``yes``; ``0``/``false``/``no``/unset: not)."""
    value = os.environ.get(TRIAL_VAR, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{TRIAL_VAR}={os.environ[TRIAL_VAR]!r} is not understood; expected 1/true/yes or 0/false/no")


class Settings(dict):
    """The settings of one profile: a dict that also reads as attributes (``cfg.steps``), and knows its profile
    and whether it is a trial run (``cfg.trial``)."""

    def __init__(self, profile_name: str, values: dict, trial: bool = False):
        super().__init__(values)
        self.profile = profile_name
        self.trial = bool(trial)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"profile {self.profile!r} sets no {name!r}; it sets {sorted(self)}") from None

    def __repr__(self):
        body = ", ".join(f"{k}={v!r}" for k, v in self.items())
        return f"Settings[{self.profile}{', trial run' if self.trial else ''}]({body})"


def sized(*, smoke: dict, cpu: dict, gpu: dict, full: dict, trial: dict | None = None,
          profile_name: str | None = None) -> Settings:
    """Pick the settings of the active profile (or of ``profile_name``) from one dict per profile.

    Every profile must set the same keys, so that a chapter cannot work in one profile and break in another.
    ``trial`` holds the budgets that replace the profile's in a trial run (``$POSEBOOK_TRIAL``); its keys must be
    keys of the profiles. A chapter without ``trial`` runs unchanged in a trial (its runs are short already).
    """
    table = {"smoke": smoke, "cpu": cpu, "gpu": gpu, "full": full}
    keys = set(smoke)
    for name, values in table.items():
        if set(values) != keys:
            missing, extra = sorted(keys - set(values)), sorted(set(values) - keys)
            raise ValueError(f"profile {name!r} must set the same keys as 'smoke': missing {missing}, extra {extra}")
    unknown = sorted(set(trial or {}) - keys)
    if unknown:
        raise ValueError(f"sized(trial=...) sets {unknown}, which no profile sets; the profiles set {sorted(keys)}")
    chosen = profile_name or profile()
    if chosen not in table:
        raise ValueError(f"unknown profile {chosen!r}; expected one of {PROFILES}")
    in_trial = is_trial()
    values = {**table[chosen], **(trial or {})} if in_trial else table[chosen]
    return Settings(chosen, values, trial=in_trial)
