"""lib.data.report: the data chapter's tables and findings on hand-made contrast tables and cohorts."""

import math

import numpy as np
import pandas as pd
import pytest

from lib.data.report import (CNR_FLAIR, CNR_T1CE, contrast_comparison, data_findings, data_summary, mean_et_share,
                             splits_table)

REAL = pd.DataFrame({"mean": [2.0, 1.0, 0.5], "min": [1.0, 0.5, 0.2], "max": [3.0, 1.5, 0.9]},
                    index=[CNR_T1CE, CNR_FLAIR, "only in the real table"])


def _ours(t1ce_mean, flair_mean):
    return pd.DataFrame({"mean": [flair_mean, t1ce_mean, 7.0], "min": [0.0, 0.0, 0.0], "max": [9.0, 9.0, 9.0]},
                        index=[CNR_FLAIR, CNR_T1CE, "only in ours"])


def test_contrast_comparison_common_figures_in_the_real_order_ends_included():
    table = contrast_comparison(_ours(t1ce_mean=3.0, flair_mean=1.6), REAL)
    assert list(table.index) == [CNR_T1CE, CNR_FLAIR] and table.index.name == "figure"
    assert table["mean inside real range"].tolist() == [True, False]   # 3.0 is the real maximum; 1.6 above 1.5
    assert table.loc[CNR_FLAIR, "this cohort: mean"] == 1.6 and table.loc[CNR_FLAIR, "real: max"] == 1.5


def test_splits_table_by_patient_stratified_and_folds():
    ids = [f"p{i:02d}" for i in range(20)]
    grades = ["HGG"] * 15 + ["LGG"] * 4 + [None]                       # one patient without a recorded grade
    table = splits_table(ids, grades, seed=3)
    train, test = table.iloc[0], table.iloc[1]
    assert (train["subjects"], test["subjects"]) == (16, 4)
    assert train["HGG"] + test["HGG"] == 15 and test["HGG"] == 3       # stratified: 3 of the 4 test patients
    folds = table.iloc[2:]
    assert len(folds) == 5 and folds["subjects"].sum() == 16 and folds["HGG"].sum() == train["HGG"]
    assert list(splits_table(ids[:4], grades[:4], seed=0)["part"]).count("fold 1 (validation)") == 1
    assert len(splits_table(ids[:4], grades[:4], seed=0)) == 2 + 3   # 3 training patients: 3 folds, not 5


def _summary(hgg_share=0.6, ours=None, lgg_et_share=0.1):
    contrast = contrast_comparison(ours if ours is not None else _ours(2.5, 1.6), REAL)
    return data_summary(grades=["HGG", "HGG", "LGG", None], hgg_share=hgg_share, slices=12, image_size=48,
                        contrast=contrast, ours=ours if ours is not None else _ours(2.5, 1.6),
                        lgg_et_share=lgg_et_share)


def test_data_summary_counts_and_missing_figures():
    summary = _summary()
    assert (summary["subjects"], summary["hgg"], summary["lgg"]) == (4, 2, 1)
    assert (summary["contrast_figures"], summary["contrast_figures_in_real_range"]) == (2, 1)
    assert summary["t1ce_cnr_et_vs_ed"] == 2.5 and summary["hgg_share"] == 0.6
    no_grades = _summary(hgg_share=float("nan"), ours=pd.DataFrame({"mean": [], "min": [], "max": []}))
    assert no_grades["hgg_share"] is None and math.isnan(no_grades["t1ce_cnr_et_vs_ed"])
    assert no_grades["contrast_figures"] == 0


def test_mean_et_share_of_no_subject_is_nan():
    assert math.isnan(mean_et_share(pd.DataFrame({"et_share": []})))
    assert mean_et_share(pd.DataFrame({"et_share": [0.2, 0.4]})) == pytest.approx(0.3)


@pytest.mark.parametrize("lgg, hgg, ending", [(0.1, 0.4, ": the low grade enhances less."),
                                              (0.4, 0.4, ": the low grade does not enhance less here."),
                                              (float("nan"), 0.4, ".")])
def test_data_findings_say_what_was_measured(lgg, hgg, ending):
    text = data_findings(_summary(lgg_et_share=lgg), 0.6, pd.Series([0.75, 0.8]), REAL, hgg_et_share=hgg)
    lines = text.split("\n")
    assert lines[0] == "- The cohort has 4 subjects (2 HGG, 1 LGG) and passed validation."
    assert lines[1] == "- Its HGG share is 60%; the papers' cohorts (as the table above sources each row) hold 75%–80% HGG."
    assert lines[2].endswith("; the rows marked False above are where the phantom differs from the six real cases.")
    assert "the six real cases: 2.00 and 1.00" in lines[3]
    assert lines[4].split(" in HGG subjects")[1] == ending


def test_data_findings_all_figures_in_range_end_plainly():
    ours = _ours(2.5, 1.2)
    summary = _summary(ours=ours)
    assert summary["contrast_figures_in_real_range"] == 2
    line = data_findings(summary, 0.6, pd.Series([0.8]), REAL, hgg_et_share=np.float64(0.4)).split("\n")[2]
    assert line == "- 2 of 2 contrast figures of its HGG subjects have their mean inside the range measured on real glioma MRI."
