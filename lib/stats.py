"""The non-parametric tests the three papers use, with results as small frozen records.

Who uses what (seed texts in shared/seeds/):
    wilcoxon_signed_rank  study A: Dice of the key-modality models vs the 4-modality
                          baseline, alpha = 0.05 (Table I, "*");
                          study C: DSC of DeepMedic vs U-Net on the same test cases
                          (Table 2), and before vs after transfer learning (Table 3).
    rank_sum              study B: feature-vector frequencies of LGG vs HGG patients.
                          The paper names the Wilcoxon signed-rank test, but the two
                          groups are different patients (unpaired), for which the
                          Wilcoxon rank-sum / Mann-Whitney U test is the applicable one.
    kruskal_wallis        study B: difference values of the responsible regions in the
    dunn_test             NET, ED and ET labels (Figure 6), Kruskal-Wallis then Dunn's
                          all-pairs comparisons on the joint ranking.
    mean_sd               the "mean ± SD" cells of the papers' tables.

Every test rejects NaN inputs (drop undefined values, e.g. sensitivity on an empty
target, before testing) and returns a frozen dataclass with ``statistic``,
``p_value``, ``n`` and ``significant(alpha=0.05)`` (True when p < alpha).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

__all__ = [
    "HypothesisTestResult",
    "KruskalWallisResult",
    "RankSumResult",
    "WilcoxonResult",
    "dunn_test",
    "kruskal_wallis",
    "mean_sd",
    "rank_sum",
    "wilcoxon_signed_rank",
]

_ALTERNATIVES = ("two-sided", "less", "greater")


@dataclass(frozen=True)
class HypothesisTestResult:
    """A test's statistic, p-value and sample size n (meaning stated per test)."""

    statistic: float
    p_value: float
    n: int

    def significant(self, alpha: float = 0.05) -> bool:
        """True when p < alpha (a nan p-value is never significant)."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        return bool(self.p_value < alpha)


@dataclass(frozen=True)
class WilcoxonResult(HypothesisTestResult):
    """Wilcoxon signed-rank result; ``n`` = number of pairs (zero differences included).

    statistic: two-sided, min(W+, W-); one-sided, W+ (scipy's convention), computed
        on the nonzero differences only.
    n_zero_differences: pairs with a - b == 0, dropped before ranking.
    """

    alternative: str
    n_zero_differences: int


@dataclass(frozen=True)
class RankSumResult(HypothesisTestResult):
    """Mann-Whitney U / Wilcoxon rank-sum result; ``n`` = n_a + n_b.

    statistic: U of sample a, i.e. the number of pairs (x in a, y in b) with x > y,
        ties counting 1/2.
    """

    n_a: int
    n_b: int
    alternative: str


@dataclass(frozen=True)
class KruskalWallisResult(HypothesisTestResult):
    """Kruskal-Wallis H result; ``n`` = total observations, ``df`` = groups - 1."""

    df: int
    group_names: tuple
    group_sizes: tuple


def _as_sample(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; drop the undefined values before testing")
    return arr


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def wilcoxon_signed_rank(a: Any, b: Any, alternative: str = "two-sided") -> WilcoxonResult:
    """Paired Wilcoxon signed-rank test of the differences a - b (shape (n,) each).

    Used by study A (Dice vs the baseline, alpha = 0.05) and study C (DeepMedic vs
    U-Net; before vs after transfer learning). ``alternative="greater"`` tests
    whether a tends to exceed b.

    Zero differences follow scipy's default ``zero_method="wilcox"``: they are dropped
    before ranking, so n_zero_differences pairs carry no weight. p-values are scipy's
    default method="auto" (SciPy >= 1.13): the exact null distribution up to 50
    pairs without ties or zeros, the normal approximation above; with ties or zeros,
    an exhaustive permutation distribution up to 13 pairs, the normal approximation
    above (differences [1, 1, 2, 3, 4]: p = 0.0625, not the approximation's 0.042). When every difference is zero there is no
    evidence either way: statistic 0, p = 1 (what scipy returns, without its warning).

    Raises ValueError if a and b differ in length or have fewer than 2 pairs.
    """
    _check_alternative(alternative)
    a, b = _as_sample(a, "a"), _as_sample(b, "b")
    if a.size != b.size:
        raise ValueError(f"paired samples must have the same length, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"the signed-rank test needs at least 2 pairs, got {a.size}")
    n_zero = int(np.count_nonzero(a == b))
    if n_zero == a.size:
        return WilcoxonResult(0.0, 1.0, int(a.size), alternative, n_zero)
    result = scipy_stats.wilcoxon(a, b, zero_method="wilcox", alternative=alternative)
    return WilcoxonResult(float(result.statistic), float(result.pvalue), int(a.size), alternative, n_zero)


def rank_sum(a: Any, b: Any, alternative: str = "two-sided") -> RankSumResult:
    """Wilcoxon rank-sum / Mann-Whitney U test of two independent samples (n_a,), (n_b,).

    Used by study B (LGG vs HGG feature-vector frequencies; the groups are unpaired).
    p-values are scipy.stats.mannwhitneyu's default method (exact for small samples
    without ties, normal approximation with tie and continuity correction otherwise).
    """
    _check_alternative(alternative)
    a, b = _as_sample(a, "a"), _as_sample(b, "b")
    result = scipy_stats.mannwhitneyu(a, b, alternative=alternative)
    return RankSumResult(float(result.statistic), float(result.pvalue), int(a.size + b.size), int(a.size), int(b.size), alternative)


def _named_groups(groups: tuple) -> dict:
    """Accept kruskal_wallis(g1, g2, ...) or kruskal_wallis({"name": g, ...})."""
    if len(groups) == 1 and isinstance(groups[0], Mapping):
        named = dict(groups[0])
    else:
        named = {i: g for i, g in enumerate(groups)}
    if len(named) < 2:
        raise ValueError(f"need at least 2 groups, got {len(named)}")
    return {name: _as_sample(values, f"group {name!r}") for name, values in named.items()}


def kruskal_wallis(*groups: Any) -> KruskalWallisResult:
    """Kruskal-Wallis H test across k >= 2 independent groups (1-D arrays).

    Call as ``kruskal_wallis(g1, g2, g3)`` (names 0, 1, 2) or
    ``kruskal_wallis({"NET": g1, "ED": g2, "ET": g3})``. Used by study B (Figure 6).
    H is tie-corrected and p comes from the chi-square distribution with k - 1
    degrees of freedom (scipy.stats.kruskal).
    """
    named = _named_groups(groups)
    result = scipy_stats.kruskal(*named.values())
    sizes = tuple(int(g.size) for g in named.values())
    return KruskalWallisResult(
        float(result.statistic), float(result.pvalue), int(sum(sizes)), len(named) - 1, tuple(named), sizes
    )


def dunn_test(groups: Mapping[Any, Any], p_adjust: str | None = "holm") -> pd.DataFrame:
    """Dunn's all-pairs test on the joint ranking of k groups (after Kruskal-Wallis).

    groups: {name: 1-D array}. Returns a (k, k) DataFrame of adjusted p-values, rows
    and columns labelled by the group names in the given order, diagonal 1.
    p_adjust: a statsmodels multipletests method ("holm", "bonferroni", ...) or None.
    Computed by scikit-posthocs ``posthoc_dunn`` (tie-corrected z, two-sided).

    Used by study B (Figure 6: NET, ED, ET). Its wording "Dunn method for joint
    ranking" is JMP's, whose all-pairs Dunn output is Bonferroni-adjusted; pass
    ``p_adjust="bonferroni"`` to mirror that rather than the default Holm.
    """
    import scikit_posthocs  # deferred: only notebooks with post-hoc tests pay for it

    if not isinstance(groups, Mapping):
        raise TypeError("dunn_test takes a dict {group name: values}")
    named = _named_groups((groups,))
    long = pd.DataFrame(
        {
            "value": np.concatenate(list(named.values())),
            "group": np.repeat(np.arange(len(named)), [g.size for g in named.values()]),
        }
    )
    # Integer codes keep the order and survive names of any type; relabelled below.
    p_values = scikit_posthocs.posthoc_dunn(long, val_col="value", group_col="group", p_adjust=p_adjust, sort=False)
    p_values = p_values.reindex(index=range(len(named)), columns=range(len(named)))
    names = list(named)
    p_values.index = pd.Index(names, name=None)
    p_values.columns = pd.Index(names, name=None)
    return p_values.astype(float)


def mean_sd(values: Any, digits: int = 3) -> str:
    """Format values as "mean ± SD", e.g. "0.784 ± 0.008" (the papers' table cells).

    NaNs are ignored. SD is the sample standard deviation (ddof = 1); it is nan for a
    single value, and both are nan when no values remain.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    mean = float(arr.mean()) if arr.size else math.nan
    sd = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"
