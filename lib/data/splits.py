"""Patient-level splits: a subject's slices all fall on the same side.

Splitting slices instead of subjects leaks near-identical neighbouring slices of one brain
into both training and test data and inflates every score. All splits here are over
subject ids, stratified by grade when grades are known (a subject of unknown grade forms
its own stratum), and depend only on the set of ids, their grades and the seed, not on the
order the ids are given in.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np


def _strata(subject_ids: Sequence[str], grades) -> dict[str, list[str]]:
    """Stratum -> its subject ids, sorted; one stratum "all" when grades is None."""
    ids = [str(s) for s in subject_ids]
    if len(set(ids)) != len(ids):
        duplicated = sorted(s for s, count in Counter(ids).items() if count > 1)
        raise ValueError(f"subject ids must be unique; repeated: {duplicated}")
    if grades is None:
        return {"all": sorted(ids)}
    if isinstance(grades, Mapping):
        by_id = {str(k): v for k, v in grades.items()}  # ids are compared as text, as above
        grade_of = {s: by_id.get(s) for s in ids}
    else:
        grades = list(grades)
        if len(grades) != len(ids):
            raise ValueError(f"{len(grades)} grades for {len(ids)} subject ids")
        grade_of = dict(zip(ids, grades))
    strata: dict[str, list[str]] = {}
    for subject in sorted(ids):
        grade = grade_of[subject]
        strata.setdefault("unknown" if grade is None else str(grade), []).append(subject)
    return strata


def _shuffled(strata: dict[str, list[str]], seed: int) -> dict[str, list[str]]:
    """Each stratum shuffled by one generator, strata visited in sorted order (deterministic)."""
    rng = np.random.default_rng(seed)
    return {name: [members[i] for i in rng.permutation(len(members))]
            for name, members in sorted(strata.items())}


def holdout_split(subject_ids: Sequence[str], grades: Sequence[str | None] | Mapping[str, str | None] | None = None,
                  test_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train ids, test ids), each sorted; round(n * test_fraction) subjects go to test.

    grades: one per subject id (aligned), or id -> grade. Each grade gets its share of the
    test set by largest remainder, so the test set's grade proportions match the cohort's
    as closely as whole subjects allow.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    strata = _shuffled(_strata(subject_ids, grades), seed)
    n = sum(len(m) for m in strata.values())
    n_test = int(np.floor(n * test_fraction + 0.5))
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_fraction {test_fraction} of {n} subject(s) leaves an empty train or test set")

    exact = {name: len(members) * n_test / n for name, members in strata.items()}
    quota = {name: int(np.floor(x)) for name, x in exact.items()}
    by_remainder = sorted(strata, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[: n_test - sum(quota.values())]:
        quota[name] += 1

    test = [s for name, members in strata.items() for s in members[: quota[name]]]
    train = [s for name, members in strata.items() for s in members[quota[name]:]]
    return sorted(train), sorted(test)


def kfold_split(subject_ids: Sequence[str], grades: Sequence[str | None] | Mapping[str, str | None] | None = None,
                k: int = 10, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """k (train ids, val ids) pairs, each list sorted; every subject is in exactly one val fold.

    Subjects are dealt to folds round-robin, stratum after stratum, so each fold's size and
    its count per grade differ from any other fold's by at most one.
    """
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2, got k={k}")
    strata = _shuffled(_strata(subject_ids, grades), seed)
    dealt = [s for members in strata.values() for s in members]
    if k > len(dealt):
        raise ValueError(f"k={k} folds need at least {k} subjects, got {len(dealt)}")
    folds = [sorted(dealt[i::k]) for i in range(k)]
    return [(sorted(s for j, fold in enumerate(folds) if j != i for s in fold), folds[i]) for i in range(k)]


def slice_indices(slice_subject_ids: Sequence[str] | np.ndarray, ids: Iterable[str]) -> np.ndarray:
    """Indices (int, ascending) of the slices whose subject is in ``ids``.

    A subject with no slices (e.g. none passed the slice filter) simply contributes none.
    """
    wanted = np.asarray([str(s) for s in ids], dtype=str)
    return np.flatnonzero(np.isin(np.asarray(slice_subject_ids, dtype=str), wanted))
