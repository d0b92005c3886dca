"""The seed-range rule: the verdict of records made before declarations were stored, and every claim's robust
column. The Welch rule of declared claims is :mod:`posebook.stats`. Chapter 03."""
from __future__ import annotations

from typing import Sequence


def verdict(a: Sequence[float], b: Sequence[float], sign: int = 1, complete: bool = True) -> str:
    """"shown" when mean(a) - mean(b) has ``sign`` and exceeds the seed range (max - min) of both; "contradicted"
    when it exceeds both ranges with the opposite sign (a result against the claim, not a null result); else
    "not shown".

    An incomplete study (a declared seed not yet recorded) is "not shown". Chapter 03.
    """
    if not complete or not len(a) or not len(b):
        return "not shown"
    effect = _mean(a) - _mean(b)
    exceeds = abs(effect) > max(a) - min(a) and abs(effect) > max(b) - min(b)
    if not exceeds or effect == 0:
        return "not shown"
    return "shown" if sign * effect > 0 else "contradicted"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
