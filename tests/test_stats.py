"""posebook.stats: the Welch rule of a study's verdict and the smallest effect its design detects."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from posebook import stats


def test_welch_agrees_with_scipys_one_sided_welch_test_in_either_claimed_direction():
    g = np.random.default_rng(0)
    a, b = list(g.normal(0.62, 0.01, 5)), list(g.normal(0.60, 0.015, 4))
    up = scipy_stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    w = stats.welch(a, b, sign=1)
    assert w["t"] == pytest.approx(up.statistic) and w["p"] == pytest.approx(up.pvalue)
    assert w["p_against"] == pytest.approx(1 - up.pvalue)
    down = stats.welch(a, b, sign=-1)
    assert down["p"] == pytest.approx(1 - up.pvalue) and down["p_against"] == pytest.approx(up.pvalue)
    assert w["sd"] == pytest.approx(math.sqrt((4 * np.var(a, ddof=1) + 3 * np.var(b, ddof=1)) / 7))
    assert w["d"] == pytest.approx(w["effect"] / w["sd"]) and w["n"] == [5, 4]


def test_welch_verdict_needs_both_significance_and_an_effect_larger_than_a_pooled_sd():
    a, b = [0.60, 0.62, 0.61, 0.63, 0.61], [0.50, 0.52, 0.51, 0.52, 0.50]
    assert stats.welch_verdict(a, b) == "shown" and stats.welch_verdict(b, a) == "contradicted"
    assert stats.welch_verdict(a, b, sign=-1) == "contradicted"
    assert stats.welch_verdict(a, b, complete=False) == "not shown" and stats.welch_verdict([0.6], b) == "not shown"
    # significant (many tight seeds) but smaller than one SD is impossible; large but noisy is not significant:
    noisy = [0.40, 0.80, 0.55, 0.75, 0.45]
    assert stats.welch_verdict(noisy, b) == "not shown"
    # identical seeds: an infinite t, decided by the sign alone
    assert stats.welch_verdict([0.6] * 3, [0.5] * 3) == "shown" and stats.welch_verdict([0.5] * 3, [0.5] * 3) == \
        "not shown"


def test_detectable_effect_is_the_effect_the_rule_shows_four_times_in_five():
    for n, sd in ((3, 0.01), (5, 0.02), (8, 0.01)):
        delta = stats.detectable_effect(sd, sd, n, n)
        g = np.random.default_rng(123)  # independent of the function's own draws
        shown = np.mean([stats.welch_verdict(list(g.normal(delta, sd, n)), list(g.normal(0, sd, n))) == "shown"
                         for _ in range(2000)])
        assert abs(shown - 0.8) < 0.04, (n, sd, delta, shown)
    assert stats.detectable_effect(0.01, 0.01, 5, 5) < stats.detectable_effect(0.01, 0.01, 3, 3)  # seeds help
    assert stats.detectable_effect(0.02, 0.02, 5, 5) == pytest.approx(2 * stats.detectable_effect(0.01, 0.01, 5, 5),
                                                                      rel=0.01)  # it scales with the noise
    assert stats.detectable_effect(0.01, 0.01, 5, 5) == stats.detectable_effect(0.01, 0.01, 5, 5)  # deterministic
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.detectable_effect(0.01, 0.01, 1, 5)


def test_design_gives_every_figure_of_a_claims_row():
    d = stats.design([0.60, 0.62, 0.61], [0.50, 0.52, 0.51])
    assert d["verdict"] == "shown" and d["detectable"] > 0 and set(d) >= {"t", "df", "p", "sd", "effect"}
    assert stats.design([0.6], [0.5, 0.5]) is None


def test_equivalence_is_two_one_sided_welch_tests_against_the_margin():
    g = np.random.default_rng(1)
    a, b = list(g.normal(0.605, 0.004, 5)), list(g.normal(0.600, 0.004, 5))
    w = stats.equivalence(a, b, 0.02)
    lower = scipy_stats.ttest_ind([x + 0.02 for x in a], b, equal_var=False, alternative="greater").pvalue
    upper = scipy_stats.ttest_ind([x - 0.02 for x in a], b, equal_var=False, alternative="less").pvalue
    assert w["p_equivalent"] == pytest.approx(max(lower, upper)) and w["margin"] == 0.02
    assert w["p_outside"] == pytest.approx(min(1 - lower, 1 - upper))
    assert stats.equivalence_verdict(a, b, 0.02) == "shown"
    assert stats.equivalence_verdict(a, b, 0.001) != "shown"  # a margin inside the noise: not equivalent
    far = [x + 0.1 for x in a]
    assert stats.equivalence_verdict(far, b, 0.02) == "contradicted" and stats.equivalence_verdict(b, far, 0.02) == \
        "contradicted"
    noisy = [0.50, 0.70, 0.55, 0.68, 0.62]
    assert stats.equivalence_verdict(noisy, b, 0.02) == "not shown"
    assert stats.equivalence_verdict(a, b, 0.02, complete=False) == "not shown"
    with pytest.raises(ValueError, match="margin must be > 0"):
        stats.equivalence(a, b, 0)


def test_equivalence_detectable_is_the_margin_shown_four_times_in_five_for_equal_variants():
    for n, sd in ((5, 0.01), (3, 0.02)):
        margin = stats.equivalence_detectable(sd, sd, n, n)
        g = np.random.default_rng(7)  # independent of the function's own draws
        shown = np.mean([stats.equivalence_verdict(list(g.normal(0, sd, n)), list(g.normal(0, sd, n)), margin)
                         == "shown" for _ in range(2000)])
        assert abs(shown - 0.8) < 0.04, (n, sd, margin, shown)
    assert stats.equivalence_detectable(0.01, 0.01, 5, 5) < stats.equivalence_detectable(0.01, 0.01, 3, 3)
    d = stats.design([0.60, 0.61, 0.60], [0.60, 0.60, 0.61], margin=0.05)
    assert d["verdict"] == "shown" and d["detectable"] > 0 and {"p_equivalent", "p_outside", "margin"} <= set(d)
