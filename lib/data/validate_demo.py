"""Deliberately damaged copies of a cohort, to show (and test) what validation reports."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

from lib.data.layout import locate, scan_subject_folder


def _file(folder: Path, kind: str) -> Path:
    """The subject's file of a kind, found as discovery finds it (any layout's names, any case)."""
    return scan_subject_folder(folder)[kind][0]


def damaged_copies(root: str | Path, out: str | Path, subject_ids: Sequence[str]) -> dict[str, Path]:
    """Copy two subjects of ``root`` into ``out`` and damage them in five documented ways:
    a missing modality, a NaN intensity, a label value outside the convention, a shape mismatch
    and a truncated gzip. Returns {description: cohort folder}."""
    root, out = Path(root), Path(out)
    first, second = subject_ids[:2]
    cohort = out / "damaged"
    cohort.mkdir(parents=True, exist_ok=True)
    folders = {folder.name: folder for folder in locate(root).subject_dirs}  # HGG/, LGG/, wrapper folders
    for sid in (first, second):
        shutil.copytree(folders[sid], cohort / sid, dirs_exist_ok=True)
    a, b = cohort / first, cohort / second
    # mmap=False: each file read is rewritten in place, which must not truncate a mapped .nii

    _file(a, "t1ce").unlink()                                   # a missing modality
    img = nib.load(_file(a, "t2"), mmap=False)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data.flat[data.size // 2] = np.nan                          # a non-finite intensity
    nib.save(nib.Nifti1Image(data, img.affine), _file(a, "t2"))
    seg = nib.load(_file(b, "seg"), mmap=False)
    labels = np.asarray(seg.dataobj).astype(np.uint8)
    labels.flat[labels.size // 2] = 5                           # a label outside {0, 1, 2, 4}
    nib.save(nib.Nifti1Image(labels, seg.affine), _file(b, "seg"))
    flair = nib.load(_file(b, "flair"), mmap=False)
    cropped = np.asarray(flair.dataobj)[:-2]                    # a shape mismatch
    nib.save(nib.Nifti1Image(cropped, flair.affine), _file(b, "flair"))
    t1 = _file(b, "t1")
    raw = t1.read_bytes()
    t1.write_bytes(raw[: len(raw) // 2])                        # a truncated gzip
    assert not _is_complete_gzip(t1)
    return {"two subjects, damaged in five ways": cohort}


def _is_complete_gzip(path: Path) -> bool:
    try:
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                pass
        return True
    except (OSError, EOFError):
        return False
