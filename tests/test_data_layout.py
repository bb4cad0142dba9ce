"""Cohort discovery across the BraTS releases' folder and file naming."""

from pathlib import Path

import pytest

from lib.data.layout import (MODALITIES, CohortLayoutError, Subject, canonical_modality, detect_layout,
                             discover, expected_file_name, file_kind)


def test_brats2018_grade_comes_from_the_hgg_lgg_folder(make_cohort):
    root = make_cohort("brats2018", n_subjects=4)
    subjects = discover(root)
    assert [s.subject_id for s in subjects] == [f"Brats18_2013_{i}_1" for i in range(4)]
    assert [s.grade for s in subjects] == ["HGG", "LGG", "HGG", "LGG"]
    first = subjects[0]
    assert first.images == {m: root / "HGG" / "Brats18_2013_0_1" / f"Brats18_2013_0_1_{m}.nii.gz"
                            for m in MODALITIES}
    assert first.label == root / "HGG" / "Brats18_2013_0_1" / "Brats18_2013_0_1_seg.nii.gz"
    assert detect_layout(root) == "brats2018"


def test_brats2020_grade_comes_from_name_mapping_inside_a_wrapper_folder(make_cohort):
    root = make_cohort("brats2020", n_subjects=3, wrapper="MICCAI_BraTS2020_TrainingData")
    subjects = discover(root)
    cohort = root / "MICCAI_BraTS2020_TrainingData"
    assert [s.subject_id for s in subjects] == ["BraTS20_Training_001", "BraTS20_Training_002",
                                                "BraTS20_Training_003"]
    assert [s.grade for s in subjects] == ["HGG", "LGG", "HGG"]
    assert subjects[1].images["t1ce"] == cohort / "BraTS20_Training_002" / "BraTS20_Training_002_t1ce.nii.gz"
    assert detect_layout(root) == "brats2020"


def test_brats2020_without_wrapper_and_without_name_mapping_has_no_grade(make_cohort):
    root = make_cohort("brats2020", n_subjects=2, name_mapping=False)
    subjects = discover(root)
    assert [s.grade for s in subjects] == [None, None]
    assert detect_layout(root) == "brats2020"  # recognised by the subject names alone


def test_brats2021_has_no_grade(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    subjects = discover(root)
    assert [s.subject_id for s in subjects] == ["BraTS2021_00000", "BraTS2021_00001"]
    assert all(s.grade is None and s.label is not None for s in subjects)
    assert detect_layout(root) == "brats2021"


def test_brats2023_file_names_map_to_canonical_modalities(make_cohort):
    root = make_cohort("brats2023", n_subjects=2)
    subject = discover(root)[0]
    folder = root / "BraTS-GLI-00000-000"
    assert subject.images == {
        "t1": folder / "BraTS-GLI-00000-000-t1n.nii.gz",
        "t1ce": folder / "BraTS-GLI-00000-000-t1c.nii.gz",
        "t2": folder / "BraTS-GLI-00000-000-t2w.nii.gz",
        "flair": folder / "BraTS-GLI-00000-000-t2f.nii.gz",
    }
    assert subject.label == folder / "BraTS-GLI-00000-000-seg.nii.gz"
    assert detect_layout(root) == "brats2023"


def test_modality_tokens_are_case_insensitive(make_cohort):
    root = make_cohort("brats2023", n_subjects=1)
    folder = root / "BraTS-GLI-00000-000"
    for path in folder.iterdir():
        stem, token = path.name[: -len(".nii.gz")].rsplit("-", 1)
        path.rename(folder / f"{stem}-{token.upper()}.NII.GZ")
    subject = discover(root)[0]
    assert set(subject.images) == set(MODALITIES)
    assert subject.images["t1ce"].name == "BraTS-GLI-00000-000-T1C.NII.GZ"
    assert subject.label.name == "BraTS-GLI-00000-000-SEG.NII.GZ"


def test_uncompressed_nii_files_are_found(make_cohort):
    root = make_cohort("brats2021", n_subjects=2, suffix=".nii")
    subjects = discover(root)
    assert all(p.suffix == ".nii" for s in subjects for p in s.images.values())
    assert subjects[0].label.name == "BraTS2021_00000_seg.nii"


def test_missing_modality_is_recorded_not_raised(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    (root / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz").unlink()
    (root / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz").unlink()
    complete, incomplete = discover(root)
    assert set(complete.images) == set(MODALITIES)
    assert set(incomplete.images) == {"t1", "t1ce", "flair"}
    assert incomplete.label is None


def test_requested_modalities_by_alias_and_label_not_required(make_cohort):
    root = make_cohort("brats2020", n_subjects=1)
    subject = discover(root, modalities=("t2f", "t1c"), require_label=False)[0]
    assert list(subject.images) == ["flair", "t1ce"]
    assert subject.label is None


def test_files_that_are_not_brats_volumes_are_ignored(make_cohort):
    root = make_cohort("brats2021", n_subjects=1)
    folder = root / "BraTS2021_00000"
    (folder / "notes.txt").write_text("x")
    (folder / "._BraTS2021_00000_t1.nii.gz").write_bytes(b"macOS resource fork")
    (folder / "BraTS2021_00000_mask.nii.gz").write_bytes(b"")
    subject = discover(root)[0]
    assert subject.images["t1"].name == "BraTS2021_00000_t1.nii.gz"
    assert file_kind(folder / "BraTS2021_00000_mask.nii.gz") is None


def test_discover_returns_subjects_sorted_by_id(tmp_path, synth):
    for name in ("BraTS2021_00002", "BraTS2021_00000", "BraTS2021_00001"):
        synth.write_subject(tmp_path / name, "brats2021")
    assert [s.subject_id for s in discover(tmp_path)] == ["BraTS2021_00000", "BraTS2021_00001",
                                                          "BraTS2021_00002"]
    assert isinstance(discover(tmp_path)[0], Subject)


def test_missing_root_raises_one_line_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CohortLayoutError) as error:
        discover(missing)
    assert str(error.value) == f"{missing}: does not exist"


def test_root_without_subject_folders_raises(tmp_path):
    (tmp_path / "readme.txt").write_text("empty download")
    with pytest.raises(CohortLayoutError) as error:
        detect_layout(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path}: no subject folders found") and "\n" not in message


def test_canonical_modality_accepts_aliases_and_rejects_unknown_names():
    assert [canonical_modality(n) for n in ("T1N", "t1c", "T2w", "t2f", "FLAIR")] == \
        ["t1", "t1ce", "t2", "flair", "flair"]
    with pytest.raises(ValueError, match="unknown modality 'dwi'"):
        canonical_modality("dwi")


@pytest.mark.parametrize("layout, kind, name", [
    ("brats2020", "t1ce", "S_t1ce.nii.gz"),
    ("brats2023", "t1ce", "S-t1c.nii.gz"),
    ("brats2023", "seg", "S-seg.nii.gz"),
])
def test_expected_file_name_follows_the_layout(layout, kind, name):
    assert expected_file_name("S", kind, layout) == name


def test_file_kind_reads_the_last_token():
    assert file_kind(Path("BraTS20_Training_001_t1ce.nii.gz")) == "t1ce"
    assert file_kind(Path("BraTS20_Training_001_t1.nii")) == "t1"
    assert file_kind(Path("W39_1998.09.19_Segm.nii")) == "seg"  # BraTS20_Training_355's label
    assert file_kind(Path("BraTS20_Training_001_t1ce.json")) is None
