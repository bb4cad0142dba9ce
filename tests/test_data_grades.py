"""The grade-mix table of the data chapter, on hand-made grade lists."""

import math

from lib.data.grades import grade_mix_row, grade_mix_table
from lib.paper_numbers import PAPER_COHORT_GRADES


def test_grade_mix_row_counts_and_share():
    row = grade_mix_row("x", ["HGG", "LGG", "HGG", None, "HGG"])
    assert (row["HGG"], row["LGG"], row["no grade"]) == (3, 1, 1)
    assert row["HGG share"] == 0.75  # of the graded subjects only


def test_grade_mix_row_without_grades_is_nan():
    assert math.isnan(grade_mix_row("real folder", [None, None])["HGG share"])


def test_grade_mix_table_puts_this_cohort_first_and_references_after():
    table = grade_mix_table("this build", ["HGG", "LGG"], [("paper", 3, 1)])
    assert list(table.index) == ["this build", "paper"]
    assert table.loc["paper", "HGG share"] == 0.75
    assert table.loc["this build", "HGG share"] == 0.5


def test_paper_cohort_totals_match_the_papers():
    totals = [hgg + lgg for _, hgg, lgg in PAPER_COHORT_GRADES]
    assert totals == [369, 335, 285]  # study A: 369 subjects; B: 259 + 76; C: 285 scans
