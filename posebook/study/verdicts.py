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


def equivalence_range(a: Sequence[float], b: Sequence[float], margin: float, complete: bool = True) -> str:
    """The seed-range reading of an equivalence claim: "shown" when every seed of a lies within ``margin`` of every
    seed of b; "contradicted" when the means differ by more than the margin plus the range of either variant's
    seeds; else "not shown" (also for an incomplete study). Chapter 03."""
    if not complete or not len(a) or not len(b):
        return "not shown"
    if max(a) - min(b) < margin and max(b) - min(a) < margin:
        return "shown"
    beyond = abs(_mean(a) - _mean(b)) - margin
    return "contradicted" if beyond > max(a) - min(a) and beyond > max(b) - min(b) else "not shown"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
