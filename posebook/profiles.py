"""Run-size profiles: one notebook, every machine.

``POSEBOOK_PROFILE`` selects the size of every run: ``smoke`` (seconds; tests and CI), ``cpu`` (minutes on a 2-core
laptop; the rendered book), ``gpu`` (minutes on a Colab T4), ``full`` (the paper's recipe). The default is ``gpu`` when
CUDA is available, else ``cpu``. Chapters read their sizes with :func:`sized`. Explained in chapter 00.
"""
from __future__ import annotations

import os

PROFILES = ("smoke", "cpu", "gpu", "full")
ENV_VAR = "POSEBOOK_PROFILE"


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


class Settings(dict):
    """The settings of one profile: a dict that also reads as attributes (``cfg.steps``), and knows its profile."""

    def __init__(self, profile_name: str, values: dict):
        super().__init__(values)
        self.profile = profile_name

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"profile {self.profile!r} sets no {name!r}; it sets {sorted(self)}") from None

    def __repr__(self):
        body = ", ".join(f"{k}={v!r}" for k, v in self.items())
        return f"Settings[{self.profile}]({body})"


def sized(*, smoke: dict, cpu: dict, gpu: dict, full: dict, profile_name: str | None = None) -> Settings:
    """Pick the settings of the active profile (or of ``profile_name``) from one dict per profile.

    Every profile must set the same keys, so that a chapter cannot work in one profile and break in another.
    """
    table = {"smoke": smoke, "cpu": cpu, "gpu": gpu, "full": full}
    keys = set(smoke)
    for name, values in table.items():
        if set(values) != keys:
            missing, extra = sorted(keys - set(values)), sorted(set(values) - keys)
            raise ValueError(f"profile {name!r} must set the same keys as 'smoke': missing {missing}, extra {extra}")
    chosen = profile_name or profile()
    if chosen not in table:
        raise ValueError(f"unknown profile {chosen!r}; expected one of {PROFILES}")
    return Settings(chosen, table[chosen])
