"""The permutation check of study A: the same pipeline on the cohort with two modality files
renamed (``permutation_swap``), read measure by measure.

A measure that follows the image contrast names the swapped modality on the renamed cohort; one
that follows the channel name or position keeps its old answer (:func:`lib.study_a.verdict.follows`).
The chapter trains and explains the renamed model; these functions turn what it got into the
permutation table's rows and the verdict table's "renamed" columns."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from lib.study_a.measures import MEASURES, SUBSET_LABEL, renamed_labels
from lib.study_a.ode import mean_dice
from lib.study_a.verdict import follows, follows_on_pair, holds_contrasts, key_label, subset_verdict


def measure_rows(seed: int, renamed: Any, original: Any | None, reference: Sequence[str],
                 swap: Sequence[str]) -> list[dict]:
    """One row per measure (:data:`lib.study_a.measures.MEASURES`) for one seed: its key on the
    original cohort (``original``, the same seed's explained model there; ``None`` when that seed
    was not run, and every comparison with it is "no verdict") and on the renamed one
    (``renamed``); "verdict" compares the two, "on the swapped pair" reads the comparison on the
    two renamed channels only, "against the reference" compares the renamed key with the
    reference (planted truth) instead."""
    rows = []
    for measure in MEASURES:
        renamed_key = measure.read(renamed).key
        original_key = measure.read(original).key if original is not None else ()
        rows.append({"seed": seed, "measure": measure.label, "key on original cohort": key_label(original_key),
                     "key on renamed cohort": key_label(renamed_key), "renamed model's test Dice": mean_dice(renamed.scores),
                     "verdict": follows(renamed_key, original_key, swap),
                     "on the swapped pair": follows_on_pair(renamed_key, original_key, swap),
                     "against the reference": follows(renamed_key, reference, swap)})
    return rows


def subset_row(tests: pd.DataFrame, subsets: dict, reference: Sequence[str], swap: Sequence[str],
               near: float, clearly_lower: float) -> dict:
    """The subset comparison's row: Table I's rule (:func:`lib.study_a.verdict.subset_verdict`)
    on the renamed cohort's subset U-Nets (``tests``: :func:`lib.study_a.comparison.table_one`'s
    tests; ``subsets``: the paper's subsets *by name*), with the subset that now holds the
    reference contrasts in the key's place. "agrees" there means the comparison followed the
    contrast."""
    holds_key = holds_contrasts(subsets["paper key"], reference, swap)
    holds_complement = holds_contrasts(subsets.get("paper complement", ()), reference, swap)
    verdict, text = subset_verdict(tests, holds_key, holds_complement, near, clearly_lower)
    outcome = "follows the contrast" if verdict == "agrees" else verdict
    return {"seed": "—", "measure": SUBSET_LABEL, "key on original cohort": "—", "key on renamed cohort": text,
            "renamed model's test Dice": float("nan"), "verdict": outcome, "on the swapped pair": outcome,
            "against the reference": outcome}


def with_renamed_columns(verdict: pd.DataFrame, permutation: pd.DataFrame, swap: Sequence[str]) -> pd.DataFrame:
    """The verdict table with two columns from the permutation check: each measure's "verdict"
    and "on the swapped pair" there (the seeds' readings joined; "—" for a row the check does not
    read). Unchanged when the check was not run."""
    if not len(permutation):
        return verdict
    labels = verdict["measure"].map(renamed_labels())
    out = verdict.copy()
    for column, name in (("verdict", f"renamed {swap[0]}↔{swap[1]}"),
                         ("on the swapped pair", f"renamed, on {swap[0]}+{swap[1]} only")):
        joined = permutation.groupby("measure")[column].agg(lambda v: ", ".join(sorted(set(v))))
        out[name] = labels.map(joined).fillna("—")
    return out
