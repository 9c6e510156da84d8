"""Statistics for drift: Wilson intervals, paired (McNemar) and unpaired tests, bootstrap.

scipy is not a dependency, so the few distributions needed are written out with `math`; each
function is checked against textbook values in tests/probe/test_drift.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from adapterscan.findings import JSONValue


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (0..1 when n == 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (independent samples)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0.0:
        return 1.0
    return normal_two_sided_p((k1 / n1 - k2 / n2) / se)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # Sum in log space: comb(n, i) / 2**n overflows floats for n > ~1000.
    log_half = n * math.log(0.5)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + log_half) for i in range(k + 1))
    return min(1.0, 2.0 * tail)


def paired_diff_ci(b: int, c: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wald interval for the paired difference of proportions (c - b) / n."""
    if n <= 0:
        return (-1.0, 1.0)
    d = (c - b) / n
    var = (b + c - (c - b) ** 2 / n) / (n * n)
    half = z * math.sqrt(max(var, 0.0))
    return (max(-1.0, d - half), min(1.0, d + half))


def bootstrap_mean_ci(values: Sequence[float], *, seed: int = 0, rounds: int = 2000,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (deterministic for a seed)."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    lo = means[int((1 - level) / 2 * rounds)]
    hi = means[min(rounds - 1, int((1 + level) / 2 * rounds))]
    return (lo, hi)


def sign_flip_p(diffs: Sequence[float], *, seed: int = 0, rounds: int = 2000) -> float:
    """Two-sided paired randomisation (sign-flip) test that the mean difference is zero."""
    n = len(diffs)
    if n == 0:
        return 1.0
    observed = abs(sum(diffs) / n)
    if observed == 0.0:
        return 1.0
    rng = random.Random(seed)
    hits = 0
    for _ in range(rounds):
        s = sum(d if rng.random() < 0.5 else -d for d in diffs) / n
        if abs(s) >= observed - 1e-12:
            hits += 1
    return (hits + 1) / (rounds + 1)


@dataclass(frozen=True)
class PairedRates:
    """One binary outcome (e.g. "refused") measured on the same prompts with base and merged."""

    n: int
    base_k: int
    merged_k: int
    only_base: int  # b: base yes, merged no
    only_merged: int  # c: base no, merged yes

    @classmethod
    def from_pairs(cls, base: Sequence[bool], merged: Sequence[bool]) -> PairedRates:
        if len(base) != len(merged):
            raise ValueError("paired outcomes must have the same length")
        b = sum(1 for x, y in zip(base, merged, strict=True) if x and not y)
        c = sum(1 for x, y in zip(base, merged, strict=True) if y and not x)
        return cls(n=len(base), base_k=sum(base), merged_k=sum(merged), only_base=b,
                   only_merged=c)

    def plus(self, other: PairedRates) -> PairedRates:
        """The same outcome measured on two disjoint prompt sets, pooled."""
        return PairedRates(self.n + other.n, self.base_k + other.base_k,
                           self.merged_k + other.merged_k, self.only_base + other.only_base,
                           self.only_merged + other.only_merged)

    @property
    def base_rate(self) -> float:
        return self.base_k / self.n if self.n else 0.0

    @property
    def merged_rate(self) -> float:
        return self.merged_k / self.n if self.n else 0.0

    @property
    def drift(self) -> float:
        """Merged minus base."""
        return self.merged_rate - self.base_rate

    @property
    def p_value(self) -> float:
        return mcnemar_exact_p(self.only_base, self.only_merged)

    def to_json(self) -> dict[str, JSONValue]:
        lo, hi = paired_diff_ci(self.only_base, self.only_merged, self.n)
        return {
            "n": self.n,
            "base_rate": round(self.base_rate, 4),
            "merged_rate": round(self.merged_rate, 4),
            "base_ci95": [round(v, 4) for v in wilson(self.base_k, self.n)],
            "merged_ci95": [round(v, 4) for v in wilson(self.merged_k, self.n)],
            "drift": round(self.drift, 4),
            "drift_ci95": [round(lo, 4), round(hi, 4)],
            "discordant": [self.only_base, self.only_merged],
            "test": "mcnemar-exact",
            "p_value": float(f"{self.p_value:.3g}"),
        }
