"""Find the subjects of a BraTS cohort in the folder layouts users actually download.

Supported layouts (``detect_layout`` names them):

  brats2018  root/HGG/<id>/<id>_{t1,t1ce,t2,flair,seg}.nii.gz and root/LGG/... (also 2019);
             the grade is the name of the folder.
  brats2020  root/BraTS20_Training_001/BraTS20_Training_001_{t1,...,seg}.nii.gz and
             root/name_mapping.csv, whose ``Grade`` column gives HGG/LGG per
             ``BraTS_2020_subject_ID``.
  brats2021  root/BraTS2021_00000/BraTS2021_00000_{t1,...,seg}.nii.gz; no grade.
  brats2023  root/BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz; no grade.

A root holding one single folder (an unzipped archive such as
``MICCAI_BraTS2020_TrainingData/``) is descended into. Files may be ``.nii.gz`` or ``.nii``.

Modalities are addressed by their canonical name (``MODALITIES``) everywhere; the BraTS 2023
file names are aliases of them. Discovery records what is there and never judges it: a
missing file is simply absent from ``Subject.images`` and ``lib.data.validate`` reports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

MODALITIES = ("t1", "t1ce", "t2", "flair")

# File-name token (lower case) -> canonical modality. BraTS 2023+ renamed the sequences.
MODALITY_ALIASES = {
    "t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair",
    "t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair",
}
# Tokens of segmentation files. "segm": BraTS20_Training_355 ships as W39_1998.09.19_Segm.nii.
LABEL_TOKENS = ("seg", "segm")
LABEL = "seg"  # key of the segmentation in scan_subject_folder's result

# How each layout spells a modality in a file name: separator and token per canonical name.
_FILE_TOKENS = {
    "brats2023": ("-", {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", LABEL: "seg"}),
    "other": ("_", {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", LABEL: "seg"}),
}

GRADES = ("HGG", "LGG")
NAME_MAPPING_FILE = "name_mapping.csv"
NAME_MAPPING_ID_COLUMN = "BraTS_2020_subject_ID"
NAME_MAPPING_GRADE_COLUMN = "Grade"
LAYOUTS = ("brats2018", "brats2020", "brats2021", "brats2023")

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# Single wrapper folders descended into at most this deep (archive/inner-archive/cohort).
_MAX_WRAPPER_DEPTH = 3
_IGNORED_FOLDERS = {"__MACOSX"}


class CohortLayoutError(ValueError):
    """The folder is not a cohort we can read. ``str`` is one line: ``<root>: <reason>``."""

    def __init__(self, root: str | Path, reason: str):
        super().__init__(f"{root}: {reason}")
        self.root = str(root)
        self.reason = reason


@dataclass(frozen=True)
class Subject:
    """One subject as found on disk.

    images: canonical modality -> NIfTI file, only for the requested modalities that exist.
    label:  the segmentation file, or None (missing, or labels not requested).
    grade:  "HGG", "LGG", or None where the layout does not say.
    """

    subject_id: str
    images: dict[str, Path]
    label: Path | None
    grade: str | None


@dataclass(frozen=True)
class CohortFolders:
    """Where a cohort's pieces are.

    root:          the folder the user gave.
    cohort_root:   root after descending single wrapper folders.
    subject_dirs:  one folder per subject, in discovery order (grade folder, then name).
    folder_grades: subject folder -> "HGG"/"LGG" for the 2018/2019 layout.
    name_mapping:  the BraTS 2020 name_mapping.csv, if present.
    """

    root: Path
    cohort_root: Path
    subject_dirs: tuple[Path, ...]
    folder_grades: dict[Path, str] = field(default_factory=dict)
    name_mapping: Path | None = None


def canonical_modality(name: str) -> str:
    """Canonical name of a modality given by canonical name or BraTS 2023 alias (any case)."""
    try:
        return MODALITY_ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; known: {', '.join(MODALITY_ALIASES)}") from None


def canonical_modalities(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical names, order kept; a modality named twice is an error."""
    if isinstance(names, str):
        names = (names,)
    result = tuple(canonical_modality(n) for n in names)
    if len(set(result)) != len(result):
        raise ValueError(f"modality named twice in {list(names)}")
    if not result:
        raise ValueError("no modality requested")
    return result


def nifti_stem(name: str) -> str:
    """File name without its .nii/.nii.gz suffix (any case)."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def file_kind(path: Path) -> str | None:
    """Canonical modality, ``LABEL``, or None for a file this module does not use.

    The kind is the last ``_``/``-`` separated token of the name: ``..._t1ce.nii.gz``,
    ``...-t2f.nii``. Hidden files (macOS ``._*`` copies) are not data.
    """
    if path.name.startswith(".") or not path.name.lower().endswith(NIFTI_SUFFIXES):
        return None
    token = re.split(r"[_-]", nifti_stem(path.name))[-1].lower()
    if token in LABEL_TOKENS:
        return LABEL
    return MODALITY_ALIASES.get(token)


def named_subject(path: Path) -> str | None:
    """The subject id a data file's name gives: the name before its kind token
    (``BraTS20_Training_001`` for ``BraTS20_Training_001_t1.nii.gz``), or None where the name
    gives none (BraTS20_Training_355's label ships as ``W39_1998.09.19_Segm.nii``)."""
    stem = nifti_stem(path.name)
    token = re.split(r"[_-]", stem)[-1]
    if token.lower() == "segm":
        return None
    return stem[: len(stem) - len(token) - 1] or None


def scan_subject_folder(folder: Path) -> dict[str, list[Path]]:
    """Kind (canonical modality or ``LABEL``) -> the files of that kind, sorted by name.

    More than one file of a kind (e.g. both .nii and .nii.gz) is kept so validation can
    report it; ``discover`` uses the first.
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        kind = file_kind(path)
        if kind is not None and path.is_file():
            found.setdefault(kind, []).append(path)
    return found


def _listing(folder: Path) -> list[Path]:
    """The folder's entries, or none where it cannot be read (validation names such a folder)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def listing_error(folder: Path) -> OSError | None:
    """Why the folder's entries cannot be listed (permissions, gone), or None."""
    try:
        next(folder.iterdir(), None)
    except OSError as exc:
        return exc
    return None


def visible_dirs(folder: Path) -> list[Path]:
    """The folder's sub-folders that may be subjects or grade folders (not hidden, not ignored)."""
    return sorted(p for p in _listing(folder)
                  if p.is_dir() and not p.name.startswith(".") and p.name not in _IGNORED_FOLDERS)


def holds_nifti(folder: Path) -> bool:
    """Whether the folder holds a NIfTI file of a kind this module uses (a subject folder)."""
    return any(file_kind(p) is not None for p in _listing(folder))


def locate(root: str | Path) -> CohortFolders:
    """Find the subject folders under ``root``; raise ``CohortLayoutError`` if there are none.

    Every visible folder beside a folder of NIfTI files counts as a subject (an empty one is
    a subject with every file missing, which validation reports rather than hides).
    """
    root = Path(root)
    if not root.exists():
        raise CohortLayoutError(root, "does not exist")
    if not root.is_dir():
        raise CohortLayoutError(root, "is not a folder")
    error = listing_error(root)
    if error is not None:
        raise CohortLayoutError(root, f"unreadable folder ({type(error).__name__}: {error.strerror})")

    cohort_root = root
    for _ in range(_MAX_WRAPPER_DEPTH + 1):
        children = visible_dirs(cohort_root)
        grade_dirs = [d for d in children if d.name.upper() in GRADES]
        if grade_dirs:
            folder_grades = {s: g.name.upper() for g in grade_dirs for s in visible_dirs(g)}
            if folder_grades:
                # The grade is the folder's; a name_mapping.csv here is BraTS 2019's (keyed by
                # BraTS_2019_subject_ID), not the BraTS 2020 file this module reads.
                return CohortFolders(root, cohort_root, tuple(folder_grades), folder_grades)
            break
        if any(holds_nifti(d) for d in children):
            return CohortFolders(root, cohort_root, tuple(children), {},
                                 _find_name_mapping(root, cohort_root))
        if len(children) != 1:
            break
        cohort_root = children[0]
    raise CohortLayoutError(root, "no subject folders found (expected folders of NIfTI files such as "
                                  "BraTS20_Training_001/, or HGG/ and LGG/ folders of them)")


def _find_name_mapping(root: Path, cohort_root: Path) -> Path | None:
    for folder in (cohort_root, root):
        candidate = folder / NAME_MAPPING_FILE
        if candidate.is_file():
            return candidate
    return None


def read_name_mapping(path: str | Path) -> dict[str, str]:
    """Subject id -> the ``Grade`` cell as written (stripped) from a BraTS 2020 name_mapping.csv.

    Raises ValueError with a one-line reason if the file cannot be parsed, lacks a column, or
    gives one subject different grades.
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:  # pandas' parse errors are ValueErrors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"unreadable CSV ({reason})") from exc
    missing = [c for c in (NAME_MAPPING_ID_COLUMN, NAME_MAPPING_GRADE_COLUMN) if c not in table.columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)} (found: {', '.join(map(str, table.columns))})")
    ids = table[NAME_MAPPING_ID_COLUMN].str.strip()
    grades = table[NAME_MAPPING_GRADE_COLUMN].str.strip()
    given: dict[str, set[str]] = {}
    for subject, grade in zip(ids, grades):
        if subject:
            given.setdefault(subject, set()).add(grade.upper())
    conflicting = sorted(s for s, g in given.items() if len(g) > 1)
    if conflicting:  # whichever row came last would silently decide the grade
        shown = ", ".join(f"{s} ({'/'.join(sorted(given[s]))})" for s in conflicting[:10])
        raise ValueError(f"subject(s) listed with different {NAME_MAPPING_GRADE_COLUMN} values: {shown}"
                         + (f" and {len(conflicting) - 10} more" if len(conflicting) > 10 else ""))
    return dict(zip(ids, grades))


def layout_of(folders: CohortFolders) -> str:
    """Which BraTS release a located cohort looks like (see the module docstring)."""
    if folders.folder_grades:
        return "brats2018"
    names = [d.name for d in folders.subject_dirs]
    if any(n.startswith("BraTS-") for n in names) or any(
            _tokens(d) & _BRATS2023_TOKENS for d in folders.subject_dirs):
        return "brats2023"
    if folders.name_mapping is not None or any(n.startswith("BraTS20_") for n in names):
        return "brats2020"
    return "brats2021"


_BRATS2023_TOKENS = set(MODALITY_ALIASES) - set(MODALITIES)


def _tokens(folder: Path) -> set[str]:
    return {re.split(r"[_-]", nifti_stem(p.name))[-1].lower()
            for p in _listing(folder) if p.name.lower().endswith(NIFTI_SUFFIXES)}


def detect_layout(root: str | Path) -> str:
    """One of ``LAYOUTS``; raises ``CohortLayoutError`` where no subject folder is found."""
    return layout_of(locate(root))


def expected_file_name(subject_id: str, kind: str, layout: str) -> str:
    """The file name a subject's modality (or ``LABEL``) has in the given layout, .nii.gz form."""
    separator, tokens = _FILE_TOKENS["brats2023" if layout == "brats2023" else "other"]
    return f"{subject_id}{separator}{tokens[kind]}.nii.gz"


def discover(root: str | Path, modalities: Iterable[str] = MODALITIES, require_label: bool = True) -> list[Subject]:
    """Subjects under ``root``, sorted by id.

    modalities:    which images to record (canonical names or aliases); others are ignored.
    require_label: look up each subject's segmentation. False treats the cohort as
                   image-only: ``label`` is None for every subject, so no label is used
                   (nor validated) by accident.

    Raises ``CohortLayoutError`` only if ``root`` does not exist or holds no subject folder.
    """
    modalities = canonical_modalities(modalities)
    folders = locate(root)
    grades = dict(folders.folder_grades)
    if folders.name_mapping is not None:
        try:
            mapping = read_name_mapping(folders.name_mapping)
        except ValueError:
            mapping = {}  # validation reports the broken file; grades stay unknown
        for folder in folders.subject_dirs:
            grade = mapping.get(folder.name, "").upper()
            if grade in GRADES:
                grades.setdefault(folder, grade)

    subjects = []
    for folder in folders.subject_dirs:
        files = scan_subject_folder(folder)
        images = {m: files[m][0] for m in modalities if m in files}
        label = files[LABEL][0] if require_label and LABEL in files else None
        subjects.append(Subject(folder.name, images, label, grades.get(folder)))
    return sorted(subjects, key=lambda s: s.subject_id)
