"""Study A's verdicts: does each measure of modality importance name the modalities that carry
the target's information (the phantom's planted truth), consistently over seeds, and does it
follow the image contrast when the modality files are renamed?"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

import pandas as pd

from lib.explain.verdict import KeyModalityResult, agreement
from lib.study_a.comparison import table_one

SUBSET_MEASURE = "U-Net subset comparison (Table I)"  # the verdict table's row name for the subset comparison


def subset_grade_name(grade: str) -> str:
    """The verdict table's row of the subset comparison on one grade's patients alone."""
    return f"{SUBSET_MEASURE}, {grade} patients only"


def swap_names(names: Iterable[str], pair: Sequence[str]) -> tuple[str, ...]:
    """Names after renaming ``pair[0]`` <-> ``pair[1]`` (sorted for comparison)."""
    if not pair:
        return tuple(sorted(names))
    a, b = pair
    return tuple(sorted({a: b, b: a}.get(n, n) for n in names))


def holds_contrasts(subset: Sequence[str], reference: Sequence[str], pair: Sequence[str] = ()) -> bool:
    """Does a subset of channel names hold every reference contrast, once ``pair`` is renamed?"""
    return set(reference) <= set(swap_names(subset, pair))


def key_label(key: Sequence[str]) -> str:
    return "+".join(key) if key else "no verdict"


def top_ranked(result: KeyModalityResult) -> KeyModalityResult:
    """The lenient reading of any measure: the single modality with the highest score (final μ
    for ACC, single-occlusion Dice drop, attribution share), with no threshold. No verdict when
    the measure gave none or the top score is not positive or is tied."""
    scores = {k: v for k, v in result.scores.items() if v == v}  # drop nan
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if not ranked:
        key, reason = (), "no scores"
    elif ranked[0][1] <= 0:
        key, reason = (), "no positive score"
    elif len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        key, reason = (), f"tie between {ranked[0][0]} and {ranked[1][0]}"
    else:
        key, reason = (ranked[0][0],), f"highest score {ranked[0][1]:.3g} ({ranked[0][0]})"
    return KeyModalityResult(method=f"{result.method}, top-ranked", key=key, scores=result.scores, reasons=reason,
                             params={"reading": "top-ranked"})


def key_set_label(key: Sequence[str]) -> str:
    """`key_label` of the set: names sorted, so that seeds naming the same modalities in another
    order of score (t2+flair, flair+t2) count as one key set."""
    return key_label(tuple(sorted(key)))


def seed_agreement(results: Sequence[KeyModalityResult], truth: Sequence[str] | None) -> dict:
    """How many seeds give each key set (`key_set_label`), the most frequent one (between equally
    frequent sets, the one of the earliest seed), and how many agree with ``truth``."""
    counts = Counter(key_set_label(r.key) for r in results)
    modal, modal_n = counts.most_common(1)[0] if counts else ("no verdict", 0)
    out = {"seeds": len(results), "keys": dict(counts), "most_frequent": modal, "most_frequent_n": modal_n}
    if truth is not None:
        out["agree_n"] = sum(agreement(r, set(truth)) == "agrees" for r in results)
    return out


def subset_outcome(tests: pd.DataFrame, role: str, near: float, clearly_lower: float) -> str:
    """'near baseline', 'clearly lower' or 'in between', from the mean Dice difference to the
    baseline (paired by patient) and, for 'clearly lower', significance."""
    row = tests[tests["subset"] == role]
    if row.empty:
        return "not run"
    diff, significant = float(row["dice_mean_diff_vs_baseline"].iloc[0]), bool(row["significant_by_patient"].iloc[0])
    if diff >= -near:
        return "near baseline"
    if diff <= -clearly_lower and significant:
        return "clearly lower"
    return "in between"


def _with_numbers(tests: pd.DataFrame, role: str, outcome: str) -> str:
    """``outcome`` of ``role`` followed by the difference and p-value it was read from."""
    if outcome == "not run":
        return outcome
    row = tests[tests["subset"] == role].iloc[0]
    return f"{outcome} ({float(row['dice_mean_diff_vs_baseline']):+.3f}, p = {float(row['p_by_patient']):.2g})"


def subset_outcome_text(tests: pd.DataFrame, role: str, near: float, clearly_lower: float) -> str:
    """:func:`subset_outcome` with the numbers it read: "near baseline (-0.012, p = 0.0006)"."""
    return _with_numbers(tests, role, subset_outcome(tests, role, near, clearly_lower))


def subset_verdict(tests: pd.DataFrame, key_holds_truth: bool, complement_holds_truth: bool,
                   near: float, clearly_lower: float, min_baseline_dice: float = 0.2) -> tuple[str, str]:
    """Verdict of the subset comparison: the subset holding the informative contrast should be
    near the baseline and the other clearly lower. A baseline that did not learn the target
    (mean Dice below ``min_baseline_dice``) gives no verdict. Returns (verdict, description)."""
    if tests.empty:
        return "no verdict", "no comparison was run"
    baseline = float(tests["baseline_dice"].iloc[0])
    if not baseline >= min_baseline_dice:
        return "no verdict", f"the all-modality baseline reached Dice {baseline:.2f} < {min_baseline_dice}"
    key = subset_outcome(tests, "paper key", near, clearly_lower)
    comp = subset_outcome(tests, "paper complement", near, clearly_lower)
    text = (f"paper key subset {_with_numbers(tests, 'paper key', key)}; "
            f"complement {_with_numbers(tests, 'paper complement', comp)}")
    if key_holds_truth == complement_holds_truth:
        return "not discriminative", text
    expected_near, expected_low = (key, comp) if key_holds_truth else (comp, key)
    if expected_near == "near baseline" and expected_low == "clearly lower":
        return "agrees", text
    if expected_near == "near baseline" or expected_low == "clearly lower":
        return "partly", text
    return "disagrees", text


def min_pairs_for_significance(alpha: float) -> int:
    """Fewest pairs for which the exact two-sided Wilcoxon signed-rank test can give p < ``alpha``:
    its smallest p-value, all differences of one sign, is 2 / 2**n (6 pairs for 0.05)."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def subset_verdict_by_grade(per_patient: pd.DataFrame, grades: Mapping[str, str | None], key_holds_truth: bool,
                            complement_holds_truth: bool, near: float, clearly_lower: float, alpha: float = 0.05,
                            min_baseline_dice: float = 0.2) -> dict[str, tuple[str, str]]:
    """The subset comparison read by tumour grade: :func:`subset_verdict` with the same rule and
    thresholds on each grade's patients alone (the Wilcoxon tests re-run on them).

    A supplementary reading, not a replacement of the verdict over all patients: a planted truth
    about contrast enhancement is one about high-grade tumours (a low-grade core does not enhance,
    so T1ce shows no more of it than T1; ``lib.data.planted``), and a mean over both grades can
    hide whether a subset fails on one grade or on both. Every grade is reported, whichever way it
    falls. A grade with fewer patients than :func:`min_pairs_for_significance` gets no verdict:
    its signed-rank test could not reach ``alpha`` whatever the Dice, so the rule could never say
    "clearly lower" there, and a verdict that cannot agree would be no test.

    ``grades``: subject -> "HGG", "LGG" or None. Returns {grade: (verdict, description)} in sorted
    grade order; empty unless at least two grades are known (real data without grades, e.g. BraTS
    2021+, gets no per-grade reading)."""
    known = {subject: grade for subject, grade in grades.items() if grade}
    labels = sorted(set(known.values()))
    if len(labels) < 2:
        return {}
    out = {}
    for grade in labels:
        mine = per_patient[per_patient["subject"].map(known) == grade]
        with_target = mine.loc[mine["target_pixels"] > 0, "subject"].nunique()
        if not with_target:
            out[grade] = ("no verdict", f"no {grade} patient has the target")
            continue
        needed = min_pairs_for_significance(alpha)
        if with_target < needed:
            out[grade] = ("no verdict", f"{with_target} {grade} patient{'' if with_target == 1 else 's'} with the "
                                        f"target: the signed-rank test needs {needed} to reach p < {alpha:g}")
            continue
        _, tests = table_one(mine, alpha=alpha)
        verdict, text = subset_verdict(tests, key_holds_truth, complement_holds_truth, near, clearly_lower,
                                       min_baseline_dice)
        out[grade] = (verdict, f"{text} ({with_target} {grade} patient{'' if with_target == 1 else 's'})")
    return out


def follows(renamed_key: Sequence[str], reference: Sequence[str], pair: Sequence[str]) -> str:
    """After renaming ``pair``: does a measure's key follow the contrast (it names only channels
    that now hold a ``reference`` contrast) or the channel name/position (only channels whose *name*
    is a reference modality)? A key inside both sets cannot tell them apart.

    ``reference`` is what the same measure named on the original cohort (the question "does it
    follow the image or the channel?"), or a planted truth (does it still find the truth?); the
    two differ when the measure did not name the truth in the first place."""
    by_contrast, by_name = set(swap_names(reference, pair)), set(reference)
    got = set(renamed_key)
    if not got:
        return "no verdict"
    if not by_name:
        return "no verdict (no key on the original cohort)"
    in_contrast, in_name = got <= by_contrast, got <= by_name
    if in_contrast and in_name:
        return "not discriminative"
    if in_contrast:
        return "follows the contrast"
    if in_name:
        return "follows the channel name/position"
    return f"neither ({key_label(sorted(got))})"


def follows_on_pair(renamed_key: Sequence[str], reference: Sequence[str], pair: Sequence[str]) -> str:
    """:func:`follows` read on the renamed ``pair`` only. Renaming changes nothing for the other
    channels, so a difference there between the original and the renamed run (two separately
    trained models) is seed variation, not an answer to "image or channel?". Example: the
    original key t1ce+t2 and, after t1ce <-> flair, flair+t1 follow the contrast on the pair
    (t1ce -> flair), though the whole keys are not each other's renaming (t2 vs t1).
    "not discriminative" when the reference holds none or both of the pair."""
    got = set(renamed_key)
    if not got:
        return "no verdict"
    if not reference:
        return "no verdict (no key on the original cohort)"
    ref_pair, got_pair = set(reference) & set(pair), got & set(pair)
    if len(ref_pair) != 1:
        return "not discriminative"
    if got_pair == set(swap_names(ref_pair, pair)):
        return "follows the contrast"
    if got_pair == ref_pair:
        return "follows the channel name/position"
    return f"neither ({key_label(sorted(got_pair)) if got_pair else 'none of ' + '+'.join(pair)})"


def verdict_rows(target: str, truth: Sequence[str] | None, truth_source: str,
                 per_measure: Mapping[str, Sequence[KeyModalityResult]], subset: tuple[str, str],
                 subset_by_grade: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """The closing verdict table of one target: one row per measure, then the subset comparison
    over all patients and, when given (:func:`subset_verdict_by_grade`), one row per grade."""
    rows = []
    for measure, results in per_measure.items():
        tally = seed_agreement(results, truth)
        seeds = tally["seeds"]
        agree = tally.get("agree_n")
        labels = [agreement(r, set(truth)) for r in results] if truth is not None else []
        if agree is None:
            verdict = "no reference"
        elif all(label == "no verdict" for label in labels):
            verdict = "no verdict"
        elif all(label == "agrees" for label in labels):
            verdict = "agrees"
        elif all(label in ("disagrees", "no verdict") for label in labels):
            verdict = "disagrees"
        else:
            verdict = "partly"
        keys = ", ".join(f"{k} ({n}/{seeds})" for k, n in sorted(tally["keys"].items(), key=lambda kv: -kv[1]))
        rows.append({"target": target, "measure": measure, f"reference ({truth_source})": key_label(truth or ()),
                     "key modalities (seeds)": keys, "seeds agreeing": f"{agree}/{seeds}" if agree is not None else "—",
                     "verdict": verdict})
    rows.append({"target": target, "measure": SUBSET_MEASURE,
                 f"reference ({truth_source})": key_label(truth or ()), "key modalities (seeds)": subset[1],
                 "seeds agreeing": "—", "verdict": subset[0]})
    for grade, (verdict, text) in (subset_by_grade or {}).items():
        rows.append({"target": target, "measure": subset_grade_name(grade),
                     f"reference ({truth_source})": key_label(truth or ()), "key modalities (seeds)": text,
                     "seeds agreeing": "—", "verdict": verdict})
    return pd.DataFrame(rows)
