"""Lazy re-export of public names from submodules (PEP 562), so importing one block does not import every paper."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """Return ``(__getattr__, __dir__)`` for a package whose public names live in the submodules named in ``exports``."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"{package} has no {name!r}; it exports {sorted(exports)}")

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
