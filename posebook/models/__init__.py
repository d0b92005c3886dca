"""Models, one file per paper, made by name: ``posebook.models.create("hourglass", stacks=2)``.

``MODELS`` maps each name to its constructor in the paper's model file (``cpn``, ``hourglass``, ``hrnet``, ``mspn``,
``openpose``, ``simple_baseline``, imported below); adding a paper means adding its file, its import and its lines in
``MODELS``.
Model files never import this package. Classes and configs live in their files (``posebook.models.hrnet.HRNet``,
``HRNetConfig``, ``HRNET_W32``). Every model's ``forward(x)`` returns what its loss needs and ``predict(x)``
returns the final heatmaps (B, K, H/4, W/4) (bottom-up models: their final maps; OpenPose's ``create("openpose")``
and ``create("openpose_paf_first")``: the last (pafs, heatmaps) at 1/8).
"""
from __future__ import annotations

from typing import Callable

from posebook.models import cpn, hourglass, hrnet, mspn, openpose, simple_baseline

# name -> constructor; create(name, **kwargs) calls it
MODELS: dict[str, Callable] = {
    "cpn": cpn.CPN,
    "hourglass": hourglass.StackedHourglass,
    "hrnet": hrnet.hrnet,
    "hrnet_w32": hrnet.hrnet_w32,
    "hrnet_w48": hrnet.hrnet_w48,
    "mspn": mspn.MSPN,
    "openpose": openpose.OpenPose,
    "openpose_paf_first": openpose.OpenPosePAFFirst,
    "simple_baseline": simple_baseline.simple_baseline,
}

__all__ = ["MODELS", "available", "create"]


def available() -> list[str]:
    """The names ``create`` accepts, sorted."""
    return sorted(MODELS)


def create(name: str, **kwargs):
    """Build a model by name; an unknown name raises with the list of known names."""
    try:
        constructor = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(available())}") from None
    return constructor(**kwargs)
