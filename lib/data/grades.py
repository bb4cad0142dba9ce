"""The grade mix of a cohort (HGG / LGG), beside the papers' cohorts.

The grade mix matters to study A: a low-grade core does not enhance, so the share of low-grade
patients moves how much T1ce alone can find of the tumour core (``lib.data.planted``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd


def grade_mix_row(source: str, grades: Iterable[str | None]) -> dict:
    """One row: HGG and LGG counts, subjects without a grade, and the HGG share of graded ones
    (NaN when none is graded)."""
    grades = list(grades)
    hgg = sum(g == "HGG" for g in grades)
    lgg = sum(g == "LGG" for g in grades)
    return {"cohort": source, "HGG": hgg, "LGG": lgg, "no grade": len(grades) - hgg - lgg,
            "HGG share": hgg / (hgg + lgg) if hgg + lgg else float("nan")}


def grade_mix_table(this_cohort: str, grades: Iterable[str | None],
                    references: Sequence[tuple[str, int, int]]) -> pd.DataFrame:
    """This cohort's grade mix, then each reference ``(source, n_hgg, n_lgg)`` as its own row."""
    rows = [grade_mix_row(this_cohort, grades)]
    rows += [grade_mix_row(source, ["HGG"] * n_hgg + ["LGG"] * n_lgg) for source, n_hgg, n_lgg in references]
    return pd.DataFrame(rows).set_index("cohort")
