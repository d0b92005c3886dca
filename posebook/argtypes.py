"""Argument types of the command lines (``argparse``): a whole number >= 1 and an input size written ``HxW``, each
raising ``argparse.ArgumentTypeError`` with the text it was given, so that a bad option is named with its value.
Used by ``python -m posebook.bench``, ``python -m posebook.train`` and ``posebook.inference.optimize``. Chapter 01.
"""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """``text`` as an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def input_size(text: str) -> tuple[int, int]:
    """``"256x192"`` as ``(256, 192)`` (height, width), each >= 1."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size must look like 256x192 (H x W), got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"input size must be positive (H x W), got {text!r}")
    return h, w
