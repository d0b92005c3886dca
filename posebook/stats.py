"""The statistics of a study's verdict: Welch's t-test in the claimed direction, an effect size, and the smallest
effect a design of so many seeds can detect.

A study compares two variants, each trained on a few seeds. :func:`welch` tests whether the difference of their
means has the claimed sign (one-sided Welch's t-test: unequal variances, Welch-Satterthwaite degrees of freedom,
as ``scipy.stats.ttest_ind(equal_var=False)``) and sets it against the seeds' pooled standard deviation;
:func:`welch_verdict` turns that into "shown", "contradicted" or "not shown"; :func:`detectable_effect` is the
smallest true effect the same design would call "shown" four times in five (80% power), by simulating the rule
(:func:`rule_power`). A claim that two variants are *equally* good is tested by :func:`equivalence` (two one-sided
Welch tests against a declared margin, TOST). Chapter 03 explains the rule where the first study is.
"""
from __future__ import annotations

import math
from typing import Sequence

ALPHA = 0.05  # one-sided, per claim, uncorrected: each claim is its own declared hypothesis
POWER = 0.8


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """The pooled standard deviation of two samples (each with ddof 1): sqrt(((n_a-1)s_a^2 + (n_b-1)s_b^2) /
    (n_a + n_b - 2))."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        raise ValueError(f"pooled_sd: each variant needs at least 2 seeds, got {na} and {nb}")
    return math.sqrt(((na - 1) * _var(a) + (nb - 1) * _var(b)) / (na + nb - 2))


def _mean(x: Sequence[float]) -> float:
    return sum(x) / len(x)


def _var(x: Sequence[float]) -> float:
    m = _mean(x)
    return sum((v - m) ** 2 for v in x) / (len(x) - 1)


def _welch_df(a: Sequence[float], b: Sequence[float]) -> float:
    qa, qb = _var(a) / len(a), _var(b) / len(b)
    if qa + qb == 0:
        return float(len(a) + len(b) - 2)
    return (qa + qb) ** 2 / (qa ** 2 / (len(a) - 1) + qb ** 2 / (len(b) - 1))


def welch(a: Sequence[float], b: Sequence[float], sign: int = 1) -> dict:
    """Welch's t-test of ``mean(a) - mean(b)`` in the direction ``sign`` (+1: a above b). Returns ``effect``,
    ``t`` (of a - b), ``df``, ``p`` (one-sided, in the claimed direction), ``p_against`` (one-sided, the other
    way), ``sd`` (pooled), ``d`` (effect / pooled SD, Cohen's d; inf when every seed agrees) and ``n``."""
    from scipy import stats

    if sign not in (1, -1):
        raise ValueError(f"welch: sign={sign!r} must be +1 or -1")
    sd = pooled_sd(a, b)
    effect = _mean(a) - _mean(b)
    se = math.sqrt(_var(a) / len(a) + _var(b) / len(b))
    df = _welch_df(a, b)
    if se == 0:  # every seed of both variants agrees: the t statistic is infinite (or undefined)
        t = math.copysign(math.inf, effect) if effect else 0.0
        p_up, p_down = (0.0, 1.0) if effect > 0 else ((1.0, 0.0) if effect < 0 else (0.5, 0.5))
    else:
        t = effect / se
        p_up, p_down = float(stats.t.sf(t, df)), float(stats.t.cdf(t, df))
    p, p_against = (p_up, p_down) if sign > 0 else (p_down, p_up)
    d = effect / sd if sd else (math.copysign(math.inf, effect) if effect else 0.0)
    return dict(effect=effect, t=t, df=df, p=p, p_against=p_against, sd=sd, d=d, n=[len(a), len(b)])


def welch_verdict(a: Sequence[float], b: Sequence[float], sign: int = 1, complete: bool = True,
                  alpha: float = ALPHA) -> str:
    """"shown" when the one-sided Welch test in the claimed direction gives p < ``alpha`` **and** the effect is
    larger than one pooled standard deviation of the seeds; "contradicted" when the same holds in the other
    direction (a result against the claim); else "not shown" (also for an incomplete study or fewer than 2 seeds)."""
    if not complete or len(a) < 2 or len(b) < 2:
        return "not shown"
    w = welch(a, b, sign)
    large = abs(w["effect"]) > w["sd"]
    if w["p"] < alpha and large:
        return "shown"
    if w["p_against"] < alpha and large:
        return "contradicted"
    return "not shown"


def rule_power(delta: float, sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = ALPHA,
               draws: int = 20000, seed: int = 0) -> float:
    """The probability that :func:`welch_verdict` says "shown" when the true effect is ``delta`` (> 0, in the
    claimed direction) and each variant's seeds are normal with these standard deviations: the share of
    ``draws`` simulated studies (a fixed ``seed``, so the same design always gets the same figure) that pass both
    of the rule's conditions."""
    import numpy as np
    from scipy import stats

    g = np.random.default_rng(seed)
    a = delta + sd_a * g.standard_normal((draws, n_a))
    b = sd_b * g.standard_normal((draws, n_b))
    va, vb = a.var(axis=1, ddof=1), b.var(axis=1, ddof=1)
    qa, qb = va / n_a, vb / n_b
    effect = a.mean(axis=1) - b.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = effect / np.sqrt(qa + qb)
        df = (qa + qb) ** 2 / (qa ** 2 / (n_a - 1) + qb ** 2 / (n_b - 1))
    p = stats.t.sf(t, df)
    pooled = np.sqrt(((n_a - 1) * va + (n_b - 1) * vb) / (n_a + n_b - 2))
    return float(np.mean((p < alpha) & (effect > pooled)))


def detectable_effect(sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = ALPHA,
                      power: float = POWER) -> float:
    """The smallest true effect that :func:`welch_verdict`'s design calls "shown" with probability ``power``
    (80%): :func:`rule_power` solved for the effect, for ``n_a`` and ``n_b`` seeds with these standard deviations
    (the seeds' own, in a study's table). The design's resolution: a smaller effect is likely to read
    "not shown", so a null result rules out only effects this large."""
    from scipy import optimize

    if n_a < 2 or n_b < 2:
        raise ValueError(f"detectable_effect: each variant needs at least 2 seeds, got {n_a} and {n_b}")
    if sd_a < 0 or sd_b < 0:
        raise ValueError(f"detectable_effect: standard deviations must be >= 0, got {sd_a} and {sd_b}")
    scale = max(sd_a, sd_b)
    if scale == 0:
        return 0.0
    high = scale
    while rule_power(high, sd_a, sd_b, n_a, n_b, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda d: rule_power(d, sd_a, sd_b, n_a, n_b, alpha) - power, 0.0, high,
                                 xtol=scale * 1e-3))


def equivalence(a: Sequence[float], b: Sequence[float], margin: float) -> dict:
    """Two one-sided Welch tests (TOST) of ``|mean(a) - mean(b)| < margin``: :func:`welch`'s figures of a - b plus
    ``margin``, ``p_equivalent`` (the larger of the two one-sided p-values that the effect lies above -margin and
    below +margin: small when the two are equivalent) and ``p_outside`` (the smaller of the one-sided p-values that
    it lies beyond +margin or below -margin: small when they differ by more than the margin)."""
    if not margin > 0:
        raise ValueError(f"equivalence: margin must be > 0, got {margin!r}")
    w = welch(a, b, 1)
    above = welch([x + margin for x in a], b, 1)   # effect > -margin
    below = welch([x - margin for x in a], b, -1)  # effect < +margin
    w.update(margin=float(margin), p_equivalent=max(above["p"], below["p"]),
             p_outside=min(above["p_against"], below["p_against"]))
    return w


def equivalence_verdict(a: Sequence[float], b: Sequence[float], margin: float, complete: bool = True,
                        alpha: float = ALPHA) -> str:
    """"shown" (the two are equivalent) when both one-sided tests put the effect inside +-``margin`` at p <
    ``alpha``; "contradicted" when a one-sided test puts it beyond the margin at p < ``alpha``; else "not shown"
    (also for an incomplete study or fewer than 2 seeds)."""
    if not complete or len(a) < 2 or len(b) < 2:
        return "not shown"
    w = equivalence(a, b, margin)
    if w["p_equivalent"] < alpha:
        return "shown"
    if w["p_outside"] < alpha:
        return "contradicted"
    return "not shown"


def equivalence_detectable(sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = ALPHA,
                           power: float = POWER, draws: int = 20000, seed: int = 0) -> float:
    """The smallest margin within which :func:`equivalence_verdict`'s design shows two variants of equal true means
    equivalent with probability ``power`` (80%): in each of ``draws`` simulated studies (normal seeds with these
    standard deviations, a fixed ``seed``) the TOST passes for every margin above ``|effect| + t(1 - alpha, df) * SE``;
    the ``power`` quantile of that bound. The design's resolution for an equivalence claim."""
    import numpy as np
    from scipy import stats

    if n_a < 2 or n_b < 2:
        raise ValueError(f"equivalence_detectable: each variant needs at least 2 seeds, got {n_a} and {n_b}")
    if max(sd_a, sd_b) == 0:
        return 0.0
    g = np.random.default_rng(seed)
    a, b = sd_a * g.standard_normal((draws, n_a)), sd_b * g.standard_normal((draws, n_b))
    qa, qb = a.var(axis=1, ddof=1) / n_a, b.var(axis=1, ddof=1) / n_b
    df = (qa + qb) ** 2 / (qa ** 2 / (n_a - 1) + qb ** 2 / (n_b - 1))
    bound = np.abs(a.mean(axis=1) - b.mean(axis=1)) + stats.t.ppf(1 - alpha, df) * np.sqrt(qa + qb)
    return float(np.quantile(bound, power))


def design(a: Sequence[float], b: Sequence[float], sign: int = 1, complete: bool = True,
           margin: float | None = None) -> dict | None:
    """Everything a study's table prints for one claim under the Welch rule: :func:`welch`'s figures, the
    ``verdict`` and the ``detectable`` effect at 80% power (from the seeds' own standard deviations); with a
    ``margin``, the equivalence rule's (:func:`equivalence`; ``detectable`` is then the smallest margin the design
    shows at 80% power, :func:`equivalence_detectable`). None when a variant has fewer than 2 values."""
    if len(a) < 2 or len(b) < 2:
        return None
    if margin is not None:
        w = equivalence(a, b, margin)
        w["verdict"] = equivalence_verdict(a, b, margin, complete)
        w["detectable"] = equivalence_detectable(math.sqrt(_var(a)), math.sqrt(_var(b)), len(a), len(b))
        return w
    w = welch(a, b, sign)
    w["verdict"] = welch_verdict(a, b, sign, complete)
    w["detectable"] = detectable_effect(math.sqrt(_var(a)), math.sqrt(_var(b)), len(a), len(b))
    return w
