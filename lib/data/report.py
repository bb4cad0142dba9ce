"""The data chapter's tables and findings: the cohort's contrasts beside the real ones, the splits
every study uses, and what the chapter records at its end.

These lay out what :mod:`lib.data.phantom` (contrast measurements), :mod:`lib.data.splits` and
:mod:`lib.data.grades` computed; they measure nothing themselves.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lib.data.splits import holdout_split, kfold_split

CNR_T1CE = "contrast-to-noise T1ce, ET vs ED"
CNR_FLAIR = "contrast-to-noise FLAIR, ET vs ED"


def contrast_comparison(ours: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """The figures both tables hold (in the real table's order): the real cases' mean, min and max
    beside this cohort's, and whether this cohort's mean lies inside the real range (ends included).

    ours, real: :func:`lib.data.phantom.summarise_contrast` layout (index: figure; mean, min, max)."""
    common = [name for name in real.index if name in ours.index]
    table = pd.DataFrame({
        "real: mean": real.loc[common, "mean"], "real: min": real.loc[common, "min"], "real: max": real.loc[common, "max"],
        "this cohort: mean": ours.loc[common, "mean"], "this cohort: min": ours.loc[common, "min"],
        "this cohort: max": ours.loc[common, "max"],
    })
    table["mean inside real range"] = (table["this cohort: mean"] >= table["real: min"]) & (
        table["this cohort: mean"] <= table["real: max"])
    table.index.name = "figure"
    return table


def splits_table(ids: Sequence[str], grades: Sequence[str | None], seed: int, test_fraction: float = 0.2,
                max_folds: int = 5) -> pd.DataFrame:
    """The 8:2 hold-out split by patient (stratified by grade) and the k folds of its training part
    (k = ``max_folds``, or fewer when there are fewer training patients): patients and HGG patients
    in each part. Raises if a patient falls on both sides of the hold-out split."""
    grade_of = dict(zip(ids, grades))
    train_ids, test_ids = holdout_split(ids, grades, test_fraction=test_fraction, seed=seed)
    if set(train_ids) & set(test_ids):
        raise RuntimeError(f"hold-out split: patients on both sides: {sorted(set(train_ids) & set(test_ids))[:5]}")
    folds = kfold_split(train_ids, [grade_of[i] for i in train_ids], k=min(max_folds, len(train_ids)), seed=seed)

    def row(part: str, members: Sequence[str]) -> dict[str, Any]:
        return {"part": part, "subjects": len(members), "HGG": sum(grade_of[i] == "HGG" for i in members)}

    return pd.DataFrame([row("train", train_ids), row("test", test_ids)]
                        + [row(f"fold {j + 1} (validation)", v) for j, (_, v) in enumerate(folds)])


def mean_et_share(report: pd.DataFrame) -> float:
    """Mean share of the tumour that enhances over a contrast report's subjects (NaN for none)."""
    return float(report["et_share"].mean()) if len(report) else float("nan")


def data_summary(*, grades: Sequence[str | None], hgg_share: float, slices: int, image_size: int,
                 contrast: pd.DataFrame, ours: pd.DataFrame, lgg_et_share: float) -> dict[str, Any]:
    """The data chapter's ``summary.json``: subjects by grade, the HGG share (None when no subject
    has a grade), slices, the contrast figures inside the real range, the two contrast-to-noise
    figures of ET against oedema (NaN, written as null, when no HGG subject was measured: BraTS 2021
    and 2023 record no grade) and the low-grade tumours' mean ET share."""
    return {
        "subjects": len(grades), "hgg": int(sum(g == "HGG" for g in grades)), "lgg": int(sum(g == "LGG" for g in grades)),
        "hgg_share": None if pd.isna(hgg_share) else float(hgg_share),
        "slices": slices, "image_size": image_size,
        "contrast_figures": len(contrast), "contrast_figures_in_real_range": int(contrast["mean inside real range"].sum()),
        "t1ce_cnr_et_vs_ed": float(ours["mean"].get(CNR_T1CE, np.nan)),
        "flair_cnr_et_vs_ed": float(ours["mean"].get(CNR_FLAIR, np.nan)),
        "lgg_et_share": lgg_et_share,
    }


def data_findings(summary: Mapping[str, Any], hgg_share: float, reference_shares: pd.Series, real: pd.DataFrame,
                  hgg_et_share: float) -> str:
    """The data chapter's closing lines (Markdown), from :func:`data_summary`'s keys, this cohort's
    HGG share beside the papers' cohorts' (``reference_shares``), and the real cases' contrast
    table (``real``)."""
    in_range, figures = summary["contrast_figures_in_real_range"], summary["contrast_figures"]
    lgg_et_share = summary["lgg_et_share"]
    return (
        f"- The cohort has {summary['subjects']} subjects ({summary['hgg']} HGG, {summary['lgg']} LGG) and passed validation.\n"
        f"- Its HGG share is {hgg_share:.0%}; the papers' cohorts (as the table above sources each row) hold "
        f"{reference_shares.min():.0%}–{reference_shares.max():.0%} HGG.\n"
        f"- {in_range} of {figures} contrast figures of its HGG subjects have their mean inside the range measured on real "
        f"glioma MRI" + ("; the rows marked False above are where the phantom differs from the six real cases.\n"
                         if in_range < figures else ".\n") +
        f"- Enhancing tumour against edema: contrast-to-noise {summary['t1ce_cnr_et_vs_ed']:.2f} on T1ce and "
        f"{summary['flair_cnr_et_vs_ed']:.2f} on FLAIR; the six real cases: "
        f"{real.loc[CNR_T1CE, 'mean']:.2f} and {real.loc[CNR_FLAIR, 'mean']:.2f}"
        f" (the table above says whether each is inside the real range).\n"
        f"- Mean ET share of the tumour: {lgg_et_share:.3f} in LGG subjects, {hgg_et_share:.3f} in HGG subjects"
        + (": the low grade enhances less." if lgg_et_share < hgg_et_share
           else ": the low grade does not enhance less here." if lgg_et_share >= hgg_et_share else "."))
