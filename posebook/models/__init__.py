"""Models, one file per paper, made by name: ``posebook.models.create("hourglass", stacks=2)``.

Each model file registers its constructors with :func:`register`; this package imports every model file on first
use, so adding a paper means adding one file. Every model's ``forward(x)`` returns what its loss needs and
``predict(x)`` returns the final heatmaps (B, K, H/4, W/4) (bottom-up models: their final maps).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

_REGISTRY: dict[str, Callable] = {}
_discovered = False


def register(name: str):
    """Decorator: make ``create(name, **kwargs)`` call the decorated constructor."""

    def add(constructor: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name] is not constructor:
            raise ValueError(f"model name {name!r} is registered twice "
                             f"({_REGISTRY[name].__module__} and {constructor.__module__})")
        _REGISTRY[name] = constructor
        return constructor

    return add


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _discovered = True


def available() -> list[str]:
    """The names ``create`` accepts, sorted."""
    _discover()
    return sorted(_REGISTRY)


def create(name: str, **kwargs):
    """Build a registered model by name; an unknown name raises with the list of known names."""
    _discover()
    try:
        constructor = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none yet"
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None
    return constructor(**kwargs)
