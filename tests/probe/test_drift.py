from __future__ import annotations

import math

import pytest

from adapterscan.probe.drift import (
    PairedRates,
    bootstrap_mean_ci,
    mcnemar_exact_p,
    normal_cdf,
    paired_diff_ci,
    sign_flip_p,
    two_proportion_p,
    wilson,
)


def test_normal_cdf_known_values() -> None:
    assert normal_cdf(0.0) == pytest.approx(0.5)
    assert normal_cdf(1.959964) == pytest.approx(0.975, abs=1e-6)


def test_wilson_matches_textbook() -> None:
    # Newcombe (1998) / statsmodels proportion_confint(8, 10, method="wilson").
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_is_binomial_tail() -> None:
    assert mcnemar_exact_p(0, 5) == pytest.approx(2 * 0.5**5)
    assert mcnemar_exact_p(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact_p(5, 5) == 1.0
    assert mcnemar_exact_p(0, 0) == 1.0
    assert 0.0 <= mcnemar_exact_p(0, 3000) < 1e-300 or mcnemar_exact_p(0, 3000) == 0.0


def test_two_proportion_z() -> None:
    z = 0.2 / math.sqrt(0.4 * 0.6 * 0.02)
    assert two_proportion_p(50, 100, 30, 100) == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert two_proportion_p(0, 10, 0, 10) == 1.0


def test_paired_rates_and_interval() -> None:
    base = [True] * 10 + [False] * 10
    merged = [False] * 8 + [True] * 2 + [False] * 10
    pr = PairedRates.from_pairs(base, merged)
    assert (pr.only_base, pr.only_merged) == (8, 0)
    assert pr.drift == pytest.approx(-0.4)
    assert pr.p_value == pytest.approx(2 * 0.5**8)
    lo, hi = paired_diff_ci(8, 0, 20)
    assert lo < -0.4 < hi < 0
    js = pr.to_json()
    assert js["n"] == 20 and js["discordant"] == [8, 0]
    with pytest.raises(ValueError):
        PairedRates.from_pairs([True], [])


def test_bootstrap_and_sign_flip() -> None:
    assert bootstrap_mean_ci([2.0] * 10) == (2.0, 2.0)
    lo, hi = bootstrap_mean_ci([float(i) for i in range(100)], seed=1)
    assert lo < 49.5 < hi
    assert sign_flip_p([1.0] * 12, seed=0) < 0.01
    assert sign_flip_p([1.0, -1.0] * 6, seed=0) > 0.5
    assert sign_flip_p([]) == 1.0
