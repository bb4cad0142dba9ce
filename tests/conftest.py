"""Fixtures writing tiny fake BraTS cohorts (16 x 16 x 8 voxels per subject) into tmp_path.

Every synthetic subject has the same known geometry (``SyntheticGeometry``), so tests can
state exact answers: which slices hold brain or tumour, how many pixels of each region.
Intensities differ per subject and modality (seeded noise), and the label files are written
in the file convention of the layout (ET = 4 up to BraTS 2021, ET = 3 from 2023).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

# The library is used from the repository checkout, not installed.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass(frozen=True)
class SyntheticGeometry:
    """Where things are in every synthetic subject. Boxes are (x, y, z) half-open ranges."""

    shape: tuple[int, int, int] = (16, 16, 8)
    brain: tuple[range, range, range] = (range(2, 14), range(3, 13), range(1, 7))
    # ED fills the whole-tumour box; NCR a 3x3 core inside it; ET a 2x2 corner of that core.
    whole_tumour: tuple[range, range, range] = (range(5, 10), range(5, 10), range(2, 6))
    core: tuple[range, range, range] = (range(6, 9), range(6, 9), range(3, 5))
    enhancing: tuple[range, range, range] = (range(6, 8), range(6, 8), range(3, 5))

    @staticmethod
    def box(ranges) -> tuple[slice, ...]:
        return tuple(slice(r.start, r.stop) for r in ranges)

    def canonical_label(self) -> np.ndarray:
        """uint8 (16, 16, 8): 0 background, 1 NCR, 2 ED, 3 ET."""
        label = np.zeros(self.shape, np.uint8)
        label[self.box(self.whole_tumour)] = 2
        label[self.box(self.core)] = 1
        label[self.box(self.enhancing)] = 3
        return label

    def brain_mask(self) -> np.ndarray:
        mask = np.zeros(self.shape, bool)
        mask[self.box(self.brain)] = True
        return mask


GEOMETRY = SyntheticGeometry()
AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])
FILE_TOKENS = {
    "brats2023": ("-", {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"}),
    "other": ("_", {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", "seg": "seg"}),
}


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(np.asarray(data), affine).to_filename(path)
    return path


def synthetic_image(modality_index: int, seed: int) -> np.ndarray:
    """float32 volume: brain voxels ~ 100 * (modality + 1) plus noise; background exactly 0."""
    rng = np.random.default_rng(seed * 10 + modality_index)
    volume = np.zeros(GEOMETRY.shape, np.float32)
    brain = GEOMETRY.brain_mask()
    volume[brain] = 100.0 * (modality_index + 1) + rng.normal(0, 10, brain.sum()).astype(np.float32)
    volume[GEOMETRY.canonical_label() > 0] += 50.0  # tumour is brighter, as on FLAIR/T1ce
    return volume


def file_label(canonical: np.ndarray, layout: str) -> np.ndarray:
    """Canonical labels written in the layout's file convention (ET = 4 before 2023)."""
    label = canonical.copy()
    if layout != "brats2023":
        label[canonical == 3] = 4
    return label


def subject_file(folder: Path, subject_id: str, kind: str, layout: str, suffix: str = ".nii.gz") -> Path:
    separator, tokens = FILE_TOKENS["brats2023" if layout == "brats2023" else "other"]
    return folder / f"{subject_id}{separator}{tokens[kind]}{suffix}"


def write_subject(folder: Path, layout: str, seed: int = 0, suffix: str = ".nii.gz",
                  kinds=("t1", "t1ce", "t2", "flair", "seg")) -> dict[str, Path]:
    """One synthetic subject in ``folder`` (the folder's name is the subject id)."""
    paths = {}
    for index, kind in enumerate(("t1", "t1ce", "t2", "flair", "seg")):
        if kind not in kinds:
            continue
        path = subject_file(folder, folder.name, kind, layout, suffix)
        data = file_label(GEOMETRY.canonical_label(), layout) if kind == "seg" else synthetic_image(index, seed)
        paths[kind] = write_nifti(path, data)
    return paths


def subject_ids(layout: str, n: int) -> list[str]:
    if layout == "brats2018":
        return [f"Brats18_2013_{i}_1" for i in range(n)]
    if layout == "brats2020":
        return [f"BraTS20_Training_{i + 1:03d}" for i in range(n)]
    if layout == "brats2021":
        return [f"BraTS2021_{i:05d}" for i in range(n)]
    if layout == "brats2023":
        return [f"BraTS-GLI-{i:05d}-000" for i in range(n)]
    raise ValueError(layout)


def grade_of(index: int) -> str:
    """Synthetic grades: subjects 0, 2, 4, ... are HGG, the others LGG."""
    return "HGG" if index % 2 == 0 else "LGG"


def write_cohort(root: Path, layout: str, n_subjects: int = 4, suffix: str = ".nii.gz",
                 wrapper: str | None = None, name_mapping: bool = True) -> Path:
    """A synthetic cohort in ``layout``; returns the folder a user would pass (``root``).

    wrapper:      put the subjects in root/<wrapper>/ (an unzipped archive).
    name_mapping: for brats2020, write name_mapping.csv beside the subjects.
    """
    cohort = root / wrapper if wrapper else root
    ids = subject_ids(layout, n_subjects)
    for index, subject_id in enumerate(ids):
        parent = cohort / grade_of(index) if layout == "brats2018" else cohort
        write_subject(parent / subject_id, layout, seed=index, suffix=suffix)
    if layout == "brats2020" and name_mapping:
        rows = ["Grade,BraTS_2019_subject_ID,BraTS_2020_subject_ID"]
        rows += [f"{grade_of(i)},BraTS19_X_{i},{s}" for i, s in enumerate(ids)]
        (cohort / "name_mapping.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def synth() -> SimpleNamespace:
    """The synthetic subjects' geometry and the helpers that write them."""
    return SimpleNamespace(geometry=GEOMETRY, write_nifti=write_nifti, subject_file=subject_file,
                           write_subject=write_subject, subject_ids=subject_ids, grade_of=grade_of,
                           file_label=file_label, synthetic_image=synthetic_image)


@pytest.fixture
def make_cohort(tmp_path):
    """make_cohort(layout, n_subjects=4, suffix=".nii.gz", wrapper=None, name_mapping=True) -> root.

    Each call writes a new cohort in its own folder under tmp_path.
    """
    counter = iter(range(1_000_000))

    def make(layout: str, n_subjects: int = 4, **options) -> Path:
        return write_cohort(tmp_path / f"{layout}_{next(counter)}", layout, n_subjects, **options)

    return make
