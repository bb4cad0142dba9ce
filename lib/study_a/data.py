"""Study A's slices and its 8:2 patient-level split (Section C), plus the renamed-modality cohort
of the permutation check."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from lib.data.cohort import prepare_cohort
from lib.data.slices import SliceSet, load_slices, require_slices
from lib.data.splits import holdout_split
from lib.paths import resolve


@dataclass(frozen=True)
class StudyAData:
    """Training and test slices of one target; ``swapped`` names the renamed modality pair;
    ``without_slices``: the cohort's subjects with no slice that passes the slice filter (they are
    in neither side of the split)."""

    train: SliceSet
    test: SliceSet
    train_ids: list[str]
    test_ids: list[str]
    target: str
    synthetic: bool
    swapped: tuple[str, ...] = ()
    without_slices: tuple[str, ...] = ()

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.train.modalities)

    def grades_of(self, ids: Sequence[str]) -> list[str | None]:
        lookup = dict(zip(self.train.subject_ids.tolist() + self.test.subject_ids.tolist(),
                          self.train.grades.tolist() + self.test.grades.tolist()))
        return [lookup[i] for i in ids]

    def split_sizes(self) -> dict[str, int]:
        """Patients and slices on each side of the split, under the names ``summary.json`` gives them."""
        return {"train_patients": len(self.train_ids), "test_patients": len(self.test_ids),
                "train_slices": len(self.train), "test_slices": len(self.test)}


def subject_grades(slices: SliceSet) -> tuple[list[str], list[str | None]]:
    """Unique subjects of a slice set (sorted) and their grades."""
    lookup = dict(zip(slices.subject_ids.tolist(), slices.grades.tolist()))
    ids = sorted(lookup)
    return ids, [lookup[i] for i in ids]


def _swap_channels_in_place(slices: SliceSet, pair: Sequence[str], rows_per_block: int = 256) -> None:
    """Exchange the images of the two named channels in place, a block of rows at a time (the
    copy held is one block's two channels, not the whole set's)."""
    ia, ib = (list(slices.modalities).index(name) for name in pair)
    images = slices.images
    for start in range(0, len(images), rows_per_block):
        block = images[start:start + rows_per_block]
        block[:, [ia, ib]] = block[:, [ib, ia]]


def swap_modality_names(slices: SliceSet, pair: Sequence[str]) -> SliceSet:
    """The slice set as if the two modalities' files had been renamed into each other.

    The channel named ``pair[0]`` now holds what was ``pair[1]``'s image and vice versa; the
    channel order by name stays the requested one. Equivalent to renaming the NIfTI files,
    without reading them again: one copy of the images (``renamed_in_place`` makes none)."""
    renamed_slices = replace(slices, images=slices.images.copy())
    _swap_channels_in_place(renamed_slices, pair)
    return renamed_slices


def load_study_a_data(params: Mapping[str, Any], swap: Sequence[str] = ()) -> StudyAData:
    """Slices of the params' cohort, split 8:2 by patient (stratified by grade, seeded)."""
    cohort = prepare_cohort(params)
    slices = load_slices(
        cohort.root, params["modalities"], image_size=params["image_size"], normalisation=params["normalisation"],
        crop=params["crop"], crop_margin=params["crop_margin"], target_spacing=params["target_spacing"],
        slice_filter=params["slice_filter"], filter_region=params["filter_region"],
        min_region_pixels=params["min_region_pixels"], max_slices_per_subject=params["max_slices_per_subject"],
        label_convention=params["label_convention"], cache_dir=resolve(params["cache_dir"]), progress=False,
    )
    require_slices(slices, cohort.root, params)
    if swap:
        slices = swap_modality_names(slices, swap)
    ids, grades = subject_grades(slices)
    train_ids, test_ids = holdout_split(ids, grades, test_fraction=params["test_fraction"], seed=params["split_seed"])
    check_fold_counts(params, len(train_ids))
    # Views of one array, not copies: the cohort's images are held once (README, "RAM for the slices").
    train, test = slices.partition_by_subjects(train_ids, test_ids)
    without_slices = tuple(sorted({s.subject_id for s in cohort.subjects} - set(ids)))
    return StudyAData(
        train=train, test=test, train_ids=list(train_ids),
        test_ids=list(test_ids), target=params["target"], synthetic=cohort.synthetic, swapped=tuple(swap),
        without_slices=without_slices,
    )


def check_fold_counts(params: Mapping[str, Any], n_train_patients: int) -> None:
    """Table I splits the training patients into ``cv_folds`` (and the renamed run into
    ``permutation_cv_folds``) folds: say now, before an ODE is trained, when there are too few."""
    for key in ("cv_folds", "permutation_cv_folds"):
        folds = params.get(key)
        if folds is not None and folds > n_train_patients:
            raise ValueError(f"{key} is {folds}, but the training set has {n_train_patients} patient(s) with slices; "
                             f"lower {key} or use more patients")


def left_out_note(data: StudyAData, params: Mapping[str, Any], shown: int = 5) -> str:
    """``"; 2 of the cohort's patients have no slice ... left out: A, B"``, or "" when none is."""
    missing = data.without_slices
    if not missing:
        return ""
    rule = (f"no slice with at least {params['min_region_pixels']} {params['filter_region']} pixels"
            if params["slice_filter"] == "tumour" else f"no slice that passes the slice filter '{params['slice_filter']}'")
    names = ", ".join(missing[:shown]) + (f" and {len(missing) - shown} more" if len(missing) > shown else "")
    return f"; {len(missing)} of the cohort's patients have {rule} and are left out: {names}"


def renamed(data: StudyAData, pair: Sequence[str]) -> StudyAData:
    """``data`` as if the two modalities' files had been renamed into each other: what
    ``load_study_a_data(params, swap=pair)`` returns (the split depends on the patients and their
    grades only, not on the images), built from the loaded slices instead of the files: one copy
    of the images, not a second load. The chapter uses :func:`renamed_in_place`, which copies none."""
    if data.swapped:
        raise ValueError(f"data are already renamed ({' <-> '.join(data.swapped)})")
    return replace(data, train=swap_modality_names(data.train, pair), test=swap_modality_names(data.test, pair),
                   swapped=tuple(pair))


@contextmanager
def renamed_in_place(data: StudyAData, pair: Sequence[str]) -> Iterator[StudyAData]:
    """Inside the ``with`` block, ``data`` as if the two modalities' files had been renamed into
    each other (what :func:`renamed` returns), made by swapping the two channels of ``data``'s own
    images in place and swapping them back on leaving the block, also on an error.

    Why not :func:`renamed`: it copies the cohort's images, and the renamed run then holds them
    twice (~22 GB more at the paper profile's size). The price: inside the block ``data`` itself
    reads renamed, and anything made there that keeps a view of the images (not a copy) reads the
    original ones after it."""
    pair = tuple(pair)
    if data.swapped:
        raise ValueError(f"data are already renamed ({' <-> '.join(data.swapped)})")
    if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(data.modalities):
        raise ValueError(f"permutation_swap must name two different modalities of {list(data.modalities)}, "
                         f"got {list(pair)}")
    for part in (data.train, data.test):
        _swap_channels_in_place(part, pair)
    try:
        yield replace(data, swapped=pair)
    finally:
        for part in (data.train, data.test):
            _swap_channels_in_place(part, pair)


def region_fraction(slices: SliceSet, region: str) -> float:
    """Share of pixels in ``region`` (class balance, for the reader and the prior bias)."""
    return float(np.mean(slices.region(region)))
