"""The grade mix of a cohort (HGG / LGG), beside the papers' cohorts.

The grade mix matters to study A: a low-grade core does not enhance, so the share of low-grade
patients moves how much T1ce alone can find of the tumour core (``lib.data.planted``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd


def _row(source: str, hgg: int, lgg: int, ungraded: int) -> dict:
    return {"cohort": source, "HGG": hgg, "LGG": lgg, "no grade": ungraded,
            "HGG share": hgg / (hgg + lgg) if hgg + lgg else float("nan")}


def grade_mix_row(source: str, grades: Iterable[str | None]) -> dict:
    """One row: HGG and LGG counts, subjects without a grade, and the HGG share of graded ones
    (NaN when none is graded)."""
    grades = list(grades)
    hgg, lgg = sum(g == "HGG" for g in grades), sum(g == "LGG" for g in grades)
    return _row(source, hgg, lgg, len(grades) - hgg - lgg)


def grade_mix_table(this_cohort: str, grades: Iterable[str | None],
                    references: Sequence[tuple[str, int, int]]) -> pd.DataFrame:
    """This cohort's grade mix, then each reference ``(source, n_hgg, n_lgg)`` as its own row."""
    rows = [grade_mix_row(this_cohort, grades)] + [_row(source, hgg, lgg, 0) for source, hgg, lgg in references]
    return pd.DataFrame(rows).set_index("cohort")
