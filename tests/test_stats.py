"""lib.stats against hand-computable cases, scipy, scikit-posthocs and a by-hand Dunn test."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from lib import stats


# ----------------------------------------------------------------- Wilcoxon signed-rank


def test_wilcoxon_exact_p_for_six_positive_differences():
    # All 6 differences positive with distinct ranks: only 1 of the 2^6 sign patterns is
    # as extreme on each side, so the exact two-sided p = 2/64.
    a = np.array([1.1, 2.2, 3.3, 4.4, 5.5, 6.6])
    result = stats.wilcoxon_signed_rank(a, np.zeros(6))
    assert result.p_value == pytest.approx(2 / 64)
    assert result.statistic == 0.0  # min(W+, W-) = W- = 0
    assert result.n == 6 and result.n_zero_differences == 0
    assert result.significant() and not result.significant(alpha=0.01)
    greater = stats.wilcoxon_signed_rank(a, np.zeros(6), alternative="greater")
    assert greater.p_value == pytest.approx(1 / 64) and greater.statistic == 21.0  # W+ = 1+...+6


def test_wilcoxon_with_tied_differences_uses_the_exact_permutation_p():
    # differences [1, 1, 2, 3, 4] (ranks 1.5, 1.5, 3, 4, 5), all positive: of the 2^5 sign patterns
    # only all-positive and all-negative are as extreme, so p = 2/32, not the normal approximation's 0.042
    result = stats.wilcoxon_signed_rank(np.array([1.0, 1.0, 2.0, 3.0, 4.0]), np.zeros(5))
    assert result.p_value == pytest.approx(2 / 32) and result.statistic == 0.0
    assert not result.significant()


def test_wilcoxon_drops_zero_differences():
    # One zero difference of six: 'wilcox' drops it, leaving n = 5, exact p = 2/32.
    result = stats.wilcoxon_signed_rank([1, 2, 0, 4, 5, 6], [0, 0, 0, 0, 0, 0])
    assert result.p_value == pytest.approx(2 / 32)
    assert result.n == 6 and result.n_zero_differences == 1


def test_wilcoxon_with_all_differences_zero_is_not_significant():
    result = stats.wilcoxon_signed_rank([0.7, 0.8, 0.9], [0.7, 0.8, 0.9])
    assert (result.statistic, result.p_value, result.n_zero_differences) == (0.0, 1.0, 3)
    assert not result.significant()


@pytest.mark.parametrize("n", [8, 30, 80])  # exact and normal-approximation regimes
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_matches_scipy(n, alternative):
    rng = np.random.default_rng(n)
    baseline = rng.uniform(0.7, 0.85, n)
    other = baseline + rng.normal(0.01, 0.02, n)
    other[:2] = baseline[:2]  # a couple of zero differences
    result = stats.wilcoxon_signed_rank(other, baseline, alternative=alternative)
    reference = scipy_stats.wilcoxon(other, baseline, zero_method="wilcox", alternative=alternative)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.alternative == alternative


def test_wilcoxon_rejects_bad_input_with_one_line_messages():
    with pytest.raises(ValueError, match="same length, got 3 and 4"):
        stats.wilcoxon_signed_rank([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="at least 2 pairs, got 1"):
        stats.wilcoxon_signed_rank([1.0], [2.0])
    with pytest.raises(ValueError, match="NaN"):
        stats.wilcoxon_signed_rank([1.0, np.nan, 3.0], [1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="alternative"):
        stats.wilcoxon_signed_rank([1, 2, 3], [3, 2, 1], alternative="two_sided")


# ----------------------------------------------------------------- rank-sum


def test_rank_sum_exact_p_for_fully_separated_samples():
    # a entirely below b: U_a = 0, and 2 of the C(6, 3) = 20 arrangements are as extreme.
    result = stats.rank_sum([1, 2, 3], [4, 5, 6])
    assert result.statistic == 0.0
    assert result.p_value == pytest.approx(2 / 20)
    assert (result.n, result.n_a, result.n_b) == (6, 3, 3)


@pytest.mark.parametrize("sizes", [(7, 9), (40, 55)])
def test_rank_sum_matches_scipy_mannwhitneyu(sizes):
    rng = np.random.default_rng(sum(sizes))
    lgg = rng.poisson(3.0, sizes[0]).astype(float)  # counts: many ties
    hgg = rng.poisson(4.5, sizes[1]).astype(float)
    result = stats.rank_sum(lgg, hgg)
    reference = scipy_stats.mannwhitneyu(lgg, hgg, alternative="two-sided")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)


# ----------------------------------------------------------------- Kruskal-Wallis


def test_kruskal_wallis_hand_computed():
    # Ranks = values; rank sums 6, 15, 24 with N = 9:
    # H = 12 / (9 * 10) * (6^2 + 15^2 + 24^2) / 3 - 3 * 10 = 7.2, and for 2 degrees of
    # freedom the chi-square tail is exp(-H / 2).
    result = stats.kruskal_wallis([1, 2, 3], [4, 5, 6], [7, 8, 9])
    assert result.statistic == pytest.approx(7.2)
    assert result.p_value == pytest.approx(math.exp(-3.6))
    assert (result.n, result.df, result.group_sizes, result.group_names) == (9, 2, (3, 3, 3), (0, 1, 2))


def test_kruskal_wallis_accepts_named_groups_and_matches_scipy():
    rng = np.random.default_rng(7)
    groups = {"NET": rng.gamma(1.5, 3.0, 25), "ED": rng.gamma(1.5, 2.5, 30), "ET": rng.gamma(2.0, 4.0, 20)}
    result = stats.kruskal_wallis(groups)
    reference = scipy_stats.kruskal(*groups.values())
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.group_names == ("NET", "ED", "ET") and result.group_sizes == (25, 30, 20)
    assert (result.n, result.df) == (75, 2)


def test_kruskal_wallis_needs_two_nonempty_groups():
    with pytest.raises(ValueError, match="at least 2 groups"):
        stats.kruskal_wallis([1, 2, 3])
    with pytest.raises(ValueError, match="'ED' is empty"):
        stats.kruskal_wallis({"NET": [1, 2], "ED": []})


# ----------------------------------------------------------------- Dunn


def dunn_by_hand(groups, p_adjust):
    """Dunn (1964) on the joint ranking, tie-corrected, from its formula."""
    values = np.concatenate(list(groups.values()))
    ranks = scipy_stats.rankdata(values)
    n = len(values)
    _, tie_counts = np.unique(values, return_counts=True)
    variance_factor = n * (n + 1) / 12 - np.sum(tie_counts**3 - tie_counts) / (12 * (n - 1))
    bounds = np.cumsum([0] + [len(g) for g in groups.values()])
    mean_ranks = [ranks[bounds[i] : bounds[i + 1]].mean() for i in range(len(groups))]
    sizes = [len(g) for g in groups.values()]
    pairs = [(i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))]
    raw = [
        2 * scipy_stats.norm.sf(abs(mean_ranks[i] - mean_ranks[j]) / math.sqrt(variance_factor * (1 / sizes[i] + 1 / sizes[j])))
        for i, j in pairs
    ]
    adjusted = multipletests(raw, method=p_adjust)[1] if p_adjust else raw
    matrix = np.ones((len(groups), len(groups)))
    for (i, j), p in zip(pairs, adjusted):
        matrix[i, j] = matrix[j, i] = p
    return matrix


@pytest.mark.parametrize("p_adjust", ["holm", "bonferroni", None])
def test_dunn_matches_formula_and_scikit_posthocs(p_adjust):
    rng = np.random.default_rng(11)
    # Deliberately not in alphabetical order, with ties (rounded values).
    groups = {"NET": np.round(rng.gamma(1.5, 3.0, 18), 1), "ED": np.round(rng.gamma(1.5, 2.5, 22), 1),
              "ET": np.round(rng.gamma(2.5, 4.0, 15), 1)}
    table = stats.dunn_test(groups, p_adjust=p_adjust)
    assert list(table.index) == list(table.columns) == ["NET", "ED", "ET"]
    np.testing.assert_allclose(table.to_numpy(), dunn_by_hand(groups, p_adjust), rtol=1e-10)
    long = pd.DataFrame({"v": np.concatenate(list(groups.values())),
                         "g": np.repeat(list(groups), [len(g) for g in groups.values()])})
    reference = scikit_posthocs.posthoc_dunn(long, val_col="v", group_col="g", p_adjust=p_adjust)
    pd.testing.assert_frame_equal(table, reference.loc[table.index, table.columns], check_names=False)


def test_dunn_separates_a_shifted_group():
    rng = np.random.default_rng(12)
    groups = {"a": rng.normal(0, 1, 30), "b": rng.normal(0, 1, 30), "c": rng.normal(3, 1, 30)}
    table = stats.dunn_test(groups)
    assert table.loc["a", "c"] < 1e-4 and table.loc["b", "c"] < 1e-4 and table.loc["a", "b"] > 0.05


# ----------------------------------------------------------------- results and tables


def test_results_are_frozen_and_significance_uses_strict_inequality():
    result = stats.rank_sum([1, 2, 3], [4, 5, 6])  # p = 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0
    assert not result.significant(alpha=0.1) and result.significant(alpha=0.1000001)
    with pytest.raises(ValueError, match="alpha"):
        result.significant(alpha=5)


def test_mean_sd_formats_like_the_papers_tables():
    assert stats.mean_sd([0.776, 0.784, 0.792]) == "0.784 ± 0.008"
    assert stats.mean_sd([0.776, np.nan, 0.784, 0.792]) == "0.784 ± 0.008"  # NaN ignored
    assert stats.mean_sd([5.0, 7.0], digits=1) == "6.0 ± 1.4"  # sample SD (ddof = 1): sqrt(2)
    assert stats.mean_sd([0.5]) == "0.500 ± nan"
    assert stats.mean_sd([np.nan]) == "nan ± nan"
