"""Check a BraTS cohort before any work, the way nnU-Net checks a dataset's integrity.

Every problem is one line, ``<path>: <message>``, naming the file (or folder) and what is
wrong with it, so a user can fix a download without reading a traceback. Each NIfTI file
is read once, whole (so a gzip checksum is verified): its header gives shape and affine,
its data finiteness and label values.

Command line: ``python -m lib validate DIR [--modalities t1 t1ce ...] [--no-label]``.
"""

from __future__ import annotations

import argparse
import gzip
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import nibabel as nib
import numpy as np

from lib.data.labels import (LABEL_CONVENTIONS, detect_convention, format_values, present_values,
                             unexpected_values)
from lib.data.layout import (GRADES, LABEL, MODALITIES, NAME_MAPPING_GRADE_COLUMN, CohortFolders,
                             CohortLayoutError, Subject, canonical_modalities, discover,
                             expected_file_name, file_kind, holds_nifti, layout_of, listing_error,
                             locate, named_subject, read_name_mapping, scan_subject_folder, visible_dirs)

AFFINE_TOLERANCE = 1e-3  # mm; headers written by different tools differ by rounding
_MAX_LISTED = 10  # subjects named in one problem line before "and N more"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a cohort: the file or folder, and what is wrong (one line)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidCohortError(ValueError):
    """Raised by ``require_valid``; ``str`` is the problem lines, one per line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_nifti(raw: bytes) -> nib.Nifti1Image:
    """A NIfTI image from a file's bytes, gunzipped first if they are gzip.

    Decompressing the whole stream ourselves checks the gzip CRC and length, which
    ``nib.load`` never reaches (it stops after the voxel data), so a corrupted download
    whose damage decompresses cleanly is still caught.
    """
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    sizes = {int.from_bytes(raw[:4], order) for order in ("little", "big")}
    image_class = nib.Nifti2Image if 540 in sizes else nib.Nifti1Image
    return image_class.from_bytes(raw)


@dataclass
class _Volume:
    """The geometry of one readable 3-D file, for comparing it with the subject's others."""

    path: Path
    shape: tuple[int, ...]
    affine: np.ndarray


def _read_volume(path: Path, is_label: bool, label_convention: str,
                 problems: list[Problem]) -> tuple[_Volume | None, str | None]:
    """Read a file once and check its own content. Returns its geometry (None if unreadable
    or not 3-D, so it is not compared with the others) and, for a label, the convention its
    values point to when they decide it (None otherwise)."""
    try:
        image = _parse_nifti(path.read_bytes())
        shape, affine = tuple(image.shape), np.asarray(image.affine)
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel, gzip and zlib raise many types for a broken file
        problems.append(Problem(str(path), f"unreadable ({_one_line(exc)})"))
        return None, None

    volume = _Volume(path, shape, affine)
    if len(shape) != 3:
        problems.append(Problem(str(path), f"expected a 3-D volume, got shape {shape}"))
        volume = None
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)
            or data.dtype == np.bool_):
        # complex or RGB voxels: nothing below can judge them, and a run cannot read them as intensities
        problems.append(Problem(str(path), f"voxels are not real numbers (data type {data.dtype})"))
        return volume, None
    finite = None  # the finite voxels' mask, for floating data (used again for labels below)
    if np.issubdtype(data.dtype, np.floating):
        finite = np.isfinite(data)
        if not finite.all():
            n_nan = int(np.isnan(data).sum())
            problems.append(Problem(str(path), f"non-finite values: {n_nan} NaN and "
                                               f"{int((~finite).sum()) - n_nan} infinite voxel(s)"))
    if not is_label:
        if volume is not None and data.size and np.issubdtype(data.dtype, np.number):
            finite_values = data[np.isfinite(data)] if np.issubdtype(data.dtype, np.floating) else data
            if finite_values.size and finite_values.min() == finite_values.max():
                # A blank (e.g. all-zero) modality would pass every other check and train a model
                # that silently learns without it: a study of which modality matters cannot use it.
                problems.append(Problem(str(path), f"image is constant (every voxel {finite_values.flat[0]:g}): "
                                                   "no contrast"))
        return volume, None

    # non-finite voxels were reported above: one problem, not also a disallowed "nan" label value
    values = present_values(data if finite is None or finite.all() else data[finite])
    decided = None
    convention = label_convention
    if convention == "auto":
        convention = detect_convention(values)
        decided = convention if ({3, 4} & set(values.tolist())) else None
    bad = unexpected_values(values, convention)
    if bad:
        allowed = format_values(sorted(LABEL_CONVENTIONS[convention]))
        problems.append(Problem(str(path), f"label values {format_values(bad)} not allowed by the "
                                           f"{convention} convention (allowed {allowed})"))
    return volume, decided


def _compare_geometry(volumes: list[_Volume], problems: list[Problem]) -> None:
    """Every volume must have the shape and affine of the first (the first modality)."""
    if not volumes:
        return
    reference = volumes[0]
    for volume in volumes[1:]:
        if volume.shape != reference.shape:
            problems.append(Problem(str(volume.path), f"shape {volume.shape} differs from "
                                                      f"{reference.path.name} {reference.shape}"))
        elif not np.allclose(volume.affine, reference.affine, atol=AFFINE_TOLERANCE):
            worst = float(np.abs(volume.affine - reference.affine).max())
            problems.append(Problem(str(volume.path), f"affine differs from {reference.path.name} "
                                                      f"(largest difference {worst:.4g})"))


def _check_subject(folder: Path, layout: str, modalities: tuple[str, ...], require_label: bool,
                   label_convention: str, problems: list[Problem]) -> str | None:
    """Check one subject folder; returns the label convention its label file decided, if any."""
    try:
        files = scan_subject_folder(folder)
    except OSError as exc:  # chmod 000, or gone since it was found
        problems.append(Problem(str(folder), f"unreadable folder ({_one_line(exc)})"))
        return None
    kinds = list(modalities) + ([LABEL] if require_label else [])
    volumes, decided = [], None
    for kind in kinds:
        paths = files.get(kind, [])
        what = "segmentation" if kind == LABEL else f"{kind} image"
        if not paths:
            # an entry of that name that is no file (a folder, a link to nothing) is not "missing"
            unusable = [p for p in sorted(folder.iterdir()) if file_kind(p) == kind and not p.is_file()]
            if unusable:
                problems.append(Problem(str(unusable[0]), f"the {what} is not a readable file "
                                                          "(a folder, or a link to nothing)"))
                continue
            expected = expected_file_name(folder.name, kind, layout)
            problems.append(Problem(str(folder), f"missing {what} (expected {expected})"))
            continue
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            problems.append(Problem(str(folder), f"{len(paths)} files for the {what}: {names}; keep one"))
        named = named_subject(paths[0])
        if named is not None and named != folder.name:
            # every BraTS release names a subject's files after its folder; shapes and affines
            # cannot tell two subjects apart (all 240x240x155 at 1 mm)
            problems.append(Problem(str(paths[0]), f"named for subject {named}, but it is in the folder of "
                                                   f"{folder.name} (another subject's {what}?)"))
        volume, convention = _read_volume(paths[0], kind == LABEL, label_convention, problems)
        if volume is not None:
            volumes.append(volume)
        decided = decided or convention
    _compare_geometry(volumes, problems)
    return decided


def _check_duplicate_ids(folders: CohortFolders, problems: list[Problem]) -> None:
    first_seen: dict[str, Path] = {}
    for folder in folders.subject_dirs:
        if folder.name in first_seen:
            problems.append(Problem(str(folder), f"duplicate subject id {folder.name} "
                                                 f"(also {first_seen[folder.name]})"))
        else:
            first_seen[folder.name] = folder


def _check_links_to_nothing(folders: CohortFolders, problems: list[Problem]) -> None:
    """A link beside the subject folders whose target is gone (an unmounted disk, a moved download)
    is no folder, so discovery passes over it: name it rather than run without that subject."""
    for parent in sorted({folders.cohort_root, *(d.parent for d in folders.subject_dirs)}):
        for path in sorted(parent.iterdir()):
            if path.is_symlink() and not path.exists() and not path.name.startswith("."):
                problems.append(Problem(str(path), f"a link to nothing (target {os.readlink(path)} is missing)"))


def _check_grade_folders(folders: CohortFolders, problems: list[Problem]) -> None:
    """With HGG/ and LGG/ folders only their subjects are read: an unreadable grade folder, or a
    subject folder beside them (a later release merged in), would be left out without a word."""
    for folder in visible_dirs(folders.cohort_root):
        if folder.name.upper() in GRADES:
            error = listing_error(folder)
            if error is not None:
                problems.append(Problem(str(folder), f"unreadable folder ({_one_line(error)})"))
        elif holds_nifti(folder):
            problems.append(Problem(str(folder), f"a subject folder beside {' and '.join(GRADES)} folders is not "
                                                 f"read (move it into {'/ or '.join(GRADES)}/, or the others out)"))


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _check_name_mapping(folders: CohortFolders, problems: list[Problem]) -> None:
    path = folders.name_mapping
    try:
        grades = read_name_mapping(path)
    except ValueError as exc:
        problems.append(Problem(str(path), str(exc)))
        return
    bad = sorted({g for g in grades.values() if g.upper() not in GRADES})
    if bad:
        rows = sorted(s for s, g in grades.items() if g in bad)
        problems.append(Problem(str(path), f"{NAME_MAPPING_GRADE_COLUMN} values {bad} are not "
                                           f"{' or '.join(GRADES)} (subjects {_listed(rows)})"))
    missing = sorted({d.name for d in folders.subject_dirs} - set(grades))
    if missing:
        problems.append(Problem(str(path), f"{len(missing)} subject(s) not listed: {_listed(missing)}"))


def _check_conventions_agree(root: Path, decided: dict[str, list[str]], problems: list[Problem]) -> None:
    """With "auto", each label file is mapped by its own values; a cohort mixing ET=4 and
    ET=3 files is almost certainly two releases merged, and its labels would disagree."""
    if len(decided) > 1:
        parts = [f"{convention} in {len(ids)} subject(s) (e.g. {ids[0]})"
                 for convention, ids in sorted(decided.items())]
        problems.append(Problem(str(root), "label files mix conventions: " + ", ".join(parts)))


def validate_cohort(root: str | Path, modalities: Iterable[str] = MODALITIES, require_label: bool = True,
                    label_convention: str = "auto") -> list[Problem]:
    """Every problem found in the cohort at ``root``; an empty list means it is valid.

    modalities:       the images every subject must have (canonical names or aliases).
    require_label:    every subject must have a segmentation; False ignores segmentations.
    label_convention: "auto" (per file, see ``lib.data.labels.detect_convention``),
                      "brats2020" or "brats2023".
    """
    modalities = canonical_modalities(modalities)
    if label_convention != "auto" and label_convention not in LABEL_CONVENTIONS:
        raise ValueError(f"unknown label convention {label_convention!r}; "
                         f"known: auto, {', '.join(LABEL_CONVENTIONS)}")
    try:
        folders = locate(root)
    except CohortLayoutError as exc:
        return [Problem(exc.root, exc.reason)]
    layout = layout_of(folders)

    problems: list[Problem] = []
    _check_duplicate_ids(folders, problems)
    _check_links_to_nothing(folders, problems)
    if folders.folder_grades:
        _check_grade_folders(folders, problems)
    decided: dict[str, list[str]] = defaultdict(list)
    for folder in folders.subject_dirs:
        convention = _check_subject(folder, layout, modalities, require_label, label_convention, problems)
        if convention is not None:
            decided[convention].append(folder.name)
    _check_conventions_agree(folders.root, decided, problems)
    if folders.name_mapping is not None:
        _check_name_mapping(folders, problems)
    return problems


def require_valid(root: str | Path, modalities: Iterable[str] = MODALITIES, require_label: bool = True,
                  label_convention: str = "auto") -> list[Subject]:
    """The cohort's subjects (``discover``) if it is valid; else raise ``InvalidCohortError``."""
    problems = validate_cohort(root, modalities, require_label, label_convention)
    if problems:
        raise InvalidCohortError(problems)
    return discover(root, modalities, require_label)


def format_report(problems: Sequence[Problem], root: str | Path, modalities: Iterable[str] = MODALITIES) -> str:
    """"OK: 6 subjects, modalities t1,t1ce,t2,flair, layout brats2020" for a valid cohort,
    else the problem lines followed by a one-line count."""
    modalities = canonical_modalities(modalities)
    if not problems:
        folders = locate(root)
        return (f"OK: {len(folders.subject_dirs)} subjects, modalities {','.join(modalities)}, "
                f"layout {layout_of(folders)}")
    lines = [str(p) for p in problems]
    lines.append(f"INVALID: {len(problems)} problem(s) in {root}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib validate DIR ...`` (argv excludes "validate"): print the report;
    exit status 0 if the cohort is valid, 1 if not."""
    parser = argparse.ArgumentParser(prog="python -m lib validate",
                                     description="Check a BraTS folder before any work.")
    parser.add_argument("root", metavar="DIR", help="the cohort folder (any supported BraTS layout)")
    parser.add_argument("--modalities", nargs="+", default=list(MODALITIES),
                        help="images every subject must have (default: %(default)s)")
    parser.add_argument("--no-label", action="store_true", help="do not require or check segmentations")
    parser.add_argument("--label-convention", default="auto", choices=("auto", *LABEL_CONVENTIONS))
    args = parser.parse_args(argv)
    try:
        modalities = canonical_modalities(args.modalities)
    except ValueError as exc:
        parser.error(str(exc))
    problems = validate_cohort(args.root, modalities, not args.no_label, args.label_convention)
    print(format_report(problems, args.root, modalities))
    return 1 if problems else 0
