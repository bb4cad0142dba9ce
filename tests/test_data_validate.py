"""Cohort validation: one test per kind of problem, each a single line naming file and fault."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from lib.data.validate import (InvalidCohortError, Problem, format_report, main, require_valid,
                               validate_cohort)


def only_problem(problems, path, *fragments) -> str:
    """The single problem's line, checked to name ``path`` and contain every fragment."""
    assert len(problems) == 1, [str(p) for p in problems]
    line = str(problems[0])
    assert problems[0].path == str(path)
    assert line.startswith(f"{path}: ")
    assert "\n" not in line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.mark.parametrize("layout", ["brats2018", "brats2020", "brats2021", "brats2023"])
def test_synthetic_cohorts_of_every_layout_are_valid(make_cohort, layout):
    assert validate_cohort(make_cohort(layout)) == []


def test_uncompressed_cohort_is_valid(make_cohort):
    assert validate_cohort(make_cohort("brats2020", suffix=".nii")) == []


def test_problem_is_one_line_path_then_message():
    assert str(Problem("/data/a.nii.gz", "unreadable")) == "/data/a.nii.gz: unreadable"


def test_missing_root(tmp_path):
    only_problem(validate_cohort(tmp_path / "absent"), tmp_path / "absent", "does not exist")


def test_root_without_subjects(tmp_path):
    only_problem(validate_cohort(tmp_path), tmp_path, "no subject folders found")


def test_missing_modality(make_cohort):
    root = make_cohort("brats2020", n_subjects=2)
    folder = root / "BraTS20_Training_002"
    (folder / "BraTS20_Training_002_t1ce.nii.gz").unlink()
    only_problem(validate_cohort(root), folder, "missing t1ce image", "BraTS20_Training_002_t1ce.nii.gz")


def test_missing_modality_is_named_as_in_the_2023_layout(make_cohort):
    root = make_cohort("brats2023", n_subjects=2)
    folder = root / "BraTS-GLI-00001-000"
    (folder / "BraTS-GLI-00001-000-t2f.nii.gz").unlink()
    only_problem(validate_cohort(root), folder, "missing flair image", "BraTS-GLI-00001-000-t2f.nii.gz")


def test_missing_label_only_when_labels_are_required(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    folder = root / "BraTS2021_00000"
    (folder / "BraTS2021_00000_seg.nii.gz").unlink()
    only_problem(validate_cohort(root), folder, "missing segmentation", "BraTS2021_00000_seg.nii.gz")
    assert validate_cohort(root, require_label=False) == []


def test_empty_subject_folder_is_reported_not_skipped(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    empty = root / "BraTS2021_00002"
    empty.mkdir()
    problems = validate_cohort(root)
    assert [p.path for p in problems] == [str(empty)] * 5
    assert [p.message.split(" (")[0] for p in problems] == [
        "missing t1 image", "missing t1ce image", "missing t2 image", "missing flair image",
        "missing segmentation"]


def test_only_requested_modalities_are_required(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    (root / "BraTS2021_00000" / "BraTS2021_00000_t1.nii.gz").unlink()
    assert validate_cohort(root, modalities=("t1ce", "flair")) == []


def test_truncated_gzip_is_reported_not_raised(make_cohort):
    root = make_cohort("brats2020", n_subjects=2)
    path = root / "BraTS20_Training_001" / "BraTS20_Training_001_flair.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    only_problem(validate_cohort(root), path, "unreadable")


def test_file_that_is_not_gzip_at_all(make_cohort):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t2.nii.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    only_problem(validate_cohort(root), path, "unreadable")


def test_shape_mismatch_names_the_odd_file_and_the_reference(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t2.nii.gz"
    synth.write_nifti(path, np.arange(16 * 16 * 9, dtype=np.float32).reshape(16, 16, 9))
    only_problem(validate_cohort(root), path, "shape (16, 16, 9) differs from BraTS2021_00000_t1.nii.gz (16, 16, 8)")


def test_label_shape_mismatch(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz"
    synth.write_nifti(path, np.zeros((16, 15, 8), np.uint8))
    only_problem(validate_cohort(root), path, "shape (16, 15, 8) differs")


def test_affine_mismatch(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_flair.nii.gz"
    shifted = np.eye(4)
    shifted[0, 3] = 0.5  # half a voxel: a different grid, although the shape agrees
    synth.write_nifti(path, synth.synthetic_image(3, 0), affine=shifted)
    only_problem(validate_cohort(root), path, "affine differs from BraTS2021_00000_t1.nii.gz", "0.5")


def test_affine_rounding_below_tolerance_is_accepted(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_flair.nii.gz"
    nearly = np.eye(4)
    nearly[0, 3] = 1e-4
    synth.write_nifti(path, synth.synthetic_image(3, 0), affine=nearly)
    assert validate_cohort(root) == []


def test_nan_and_inf_intensities(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t1ce.nii.gz"
    image = synth.synthetic_image(1, 0)
    image[8, 8, 4] = np.nan
    image[8, 9, 4] = np.nan
    image[0, 0, 0] = np.inf
    synth.write_nifti(path, image)
    only_problem(validate_cohort(root), path, "non-finite values: 2 NaN and 1 infinite voxel(s)")


def test_four_dimensional_volume(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t2.nii.gz"
    synth.write_nifti(path, np.ones((16, 16, 8, 2), np.float32))
    only_problem(validate_cohort(root), path, "expected a 3-D volume, got shape (16, 16, 8, 2)")


def test_label_values_outside_the_convention(make_cohort, synth):
    root = make_cohort("brats2020", n_subjects=2)
    path = root / "BraTS20_Training_002" / "BraTS20_Training_002_seg.nii.gz"
    label = synth.file_label(synth.geometry.canonical_label(), "brats2020")
    label[0, 0, 0] = 5
    label[0, 0, 1] = 7
    synth.write_nifti(path, label)
    only_problem(validate_cohort(root), path, "label values [5, 7] not allowed by the brats2020 convention",
                 "allowed [0, 1, 2, 4]")


def test_a_nan_label_voxel_is_one_problem_not_also_a_disallowed_value(make_cohort, synth):
    root = make_cohort("brats2020", n_subjects=1)
    path = root / "BraTS20_Training_001" / "BraTS20_Training_001_seg.nii.gz"
    label = synth.file_label(synth.geometry.canonical_label(), "brats2020").astype(np.float32)
    label[0, 0, 0] = np.nan
    synth.write_nifti(path, label)
    only_problem(validate_cohort(root), path, "non-finite values: 1 NaN and 0 infinite voxel(s)")


def test_a_nan_label_voxel_beside_a_disallowed_value_reports_both(make_cohort, synth):
    root = make_cohort("brats2020", n_subjects=1)
    path = root / "BraTS20_Training_001" / "BraTS20_Training_001_seg.nii.gz"
    label = synth.file_label(synth.geometry.canonical_label(), "brats2020").astype(np.float32)
    label[0, 0, 0] = np.nan
    label[0, 0, 1] = 5
    synth.write_nifti(path, label)
    lines = [str(p) for p in validate_cohort(root)]
    assert len(lines) == 2, lines
    assert "non-finite values: 1 NaN" in lines[0] and "label values [5] not allowed" in lines[1], lines


def test_label_3_and_4_in_one_file(make_cohort, synth):
    root = make_cohort("brats2020", n_subjects=1)
    path = root / "BraTS20_Training_001" / "BraTS20_Training_001_seg.nii.gz"
    label = synth.file_label(synth.geometry.canonical_label(), "brats2020")
    label[0, 0, 0] = 3
    synth.write_nifti(path, label)
    only_problem(validate_cohort(root), path, "label values [3] not allowed by the brats2020 convention")


def test_explicit_convention_rejects_the_other_releases_et_value(make_cohort):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz"
    only_problem(validate_cohort(root, label_convention="brats2023"), path, "label values [4]")


def test_cohort_mixing_label_conventions(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=3)
    path = root / "BraTS2021_00002" / "BraTS2021_00002_seg.nii.gz"
    synth.write_nifti(path, synth.geometry.canonical_label())  # ET written as 3, the others as 4
    only_problem(validate_cohort(root), root, "label files mix conventions",
                 "brats2020 in 2 subject(s)", "brats2023 in 1 subject(s) (e.g. BraTS2021_00002)")


def test_name_mapping_unreadable(make_cohort):
    root = make_cohort("brats2020", n_subjects=2)
    csv = root / "name_mapping.csv"
    csv.write_text("")
    only_problem(validate_cohort(root), csv, "unreadable CSV")


def test_name_mapping_without_the_needed_columns(make_cohort):
    root = make_cohort("brats2020", n_subjects=2)
    csv = root / "name_mapping.csv"
    csv.write_text("Grade,Subject\nHGG,BraTS20_Training_001\nLGG,BraTS20_Training_002\n")
    only_problem(validate_cohort(root), csv, "missing column(s) BraTS_2020_subject_ID", "found: Grade, Subject")


def test_name_mapping_with_an_unknown_grade(make_cohort):
    root = make_cohort("brats2020", n_subjects=2)
    csv = root / "name_mapping.csv"
    csv.write_text("Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_001\nGBM,BraTS20_Training_002\n")
    only_problem(validate_cohort(root), csv, "Grade values ['GBM'] are not HGG or LGG", "BraTS20_Training_002")


def test_name_mapping_missing_a_subject(make_cohort):
    root = make_cohort("brats2020", n_subjects=3)
    csv = root / "name_mapping.csv"
    csv.write_text("Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_001\n")
    only_problem(validate_cohort(root), csv, "2 subject(s) not listed: BraTS20_Training_002, BraTS20_Training_003")



def test_name_mapping_giving_one_subject_two_grades(make_cohort):
    # the grade mix is a result of the data chapter and moves study A: a subject listed as both
    # HGG and LGG must not silently take whichever row comes last
    root = make_cohort("brats2020", n_subjects=2)
    csv = root / "name_mapping.csv"
    csv.write_text("Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_001\nLGG,BraTS20_Training_002\n"
                   "LGG,BraTS20_Training_001\n")
    only_problem(validate_cohort(root), csv, "BraTS20_Training_001", "HGG", "LGG")


def test_a_subject_folder_beside_hgg_and_lgg_is_named_not_skipped(make_cohort, synth):
    # a 2018/2019 download merged with a later release's folders: those subjects are not read
    root = make_cohort("brats2018", n_subjects=2)
    loose = root / "BraTS20_Training_001"
    synth.write_subject(loose, "brats2020")
    only_problem(validate_cohort(root), loose, "HGG", "LGG")

def test_duplicate_subject_id_across_grade_folders(make_cohort, synth):
    root = make_cohort("brats2018", n_subjects=2)  # Brats18_2013_0_1 is HGG
    duplicate = root / "LGG" / "Brats18_2013_0_1"
    synth.write_subject(duplicate, "brats2018")
    only_problem(validate_cohort(root), duplicate, "duplicate subject id Brats18_2013_0_1",
                 str(root / "HGG" / "Brats18_2013_0_1"))


def test_two_files_for_one_modality(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    folder = root / "BraTS2021_00000"
    synth.write_nifti(folder / "BraTS2021_00000_t1.nii", synth.synthetic_image(0, 0))
    only_problem(validate_cohort(root), folder, "2 files for the t1 image",
                 "BraTS2021_00000_t1.nii, BraTS2021_00000_t1.nii.gz")


def test_another_subjects_file_is_named(make_cohort):
    root = make_cohort("brats2020", n_subjects=3)
    wrong = root / "BraTS20_Training_001" / "BraTS20_Training_001_t1.nii.gz"
    wrong.unlink()
    # copied in under its own name: same shape and affine as every BraTS volume
    copied = root / "BraTS20_Training_001" / "BraTS20_Training_003_t1.nii.gz"
    copied.write_bytes((root / "BraTS20_Training_003" / "BraTS20_Training_003_t1.nii.gz").read_bytes())
    only_problem(validate_cohort(root), copied, "named for subject BraTS20_Training_003",
                 "folder of BraTS20_Training_001", "t1 image")


def test_the_2020_release_label_named_segm_is_accepted(make_cohort):
    root = make_cohort("brats2020", n_subjects=2)
    folder = root / "BraTS20_Training_001"
    (folder / "BraTS20_Training_001_seg.nii.gz").rename(folder / "W39_1998.09.19_Segm.nii.gz")
    assert validate_cohort(root) == []


@pytest.mark.parametrize("entry", ["folder", "broken link"])
def test_a_modality_entry_that_is_no_file_is_named_not_called_missing(make_cohort, entry):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t2.nii.gz"
    path.unlink()
    if entry == "folder":
        path.mkdir()
    else:
        path.symlink_to(root / "nowhere.nii.gz")
    only_problem(validate_cohort(root), path, "the t2 image is not a readable file")



@pytest.mark.parametrize("layout, parent", [("brats2021", "."), ("brats2018", "LGG")])
def test_a_subject_folder_linked_to_nothing_is_named_not_skipped(make_cohort, tmp_path, layout, parent):
    # A cohort of links to subject folders is common; a link whose target is gone (an unmounted
    # disk, a moved download) is a subject the run would silently go without.
    root = make_cohort(layout, n_subjects=2)
    link = root / parent / "BraTS2021_00009"
    link.symlink_to(tmp_path / "unmounted" / "BraTS2021_00009", target_is_directory=True)
    only_problem(validate_cohort(root), link, "link to nothing")

@pytest.mark.parametrize("dtype", ["complex64", "rgb24"])
def test_voxels_that_are_not_real_numbers(make_cohort, synth, dtype):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t1.nii.gz"
    image = synth.synthetic_image(0, 0)
    if dtype == "rgb24":
        rgb = np.zeros(image.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
        rgb["R"] = image.clip(0, 255)
        image = rgb
    synth.write_nifti(path, image.astype(np.complex64) if dtype == "complex64" else image)
    only_problem(validate_cohort(root), path, "not real numbers")


@pytest.mark.parametrize("layout, name", [("brats2020", "BraTS20_Training_001"), ("brats2018", "HGG"), ("brats2021", ".")])
def test_an_unreadable_folder_is_named_not_raised(make_cohort, monkeypatch, layout, name):
    # chmod 000 (simulated: the tests may run as root, who reads everything); was a PermissionError
    # traceback from layout detection, and an unreadable HGG/ silently dropped its subjects
    root = make_cohort(layout, n_subjects=2)
    folder = root / name
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    only_problem(validate_cohort(root), folder, "unreadable folder", "Permission denied")


def test_every_problem_is_reported_not_just_the_first(make_cohort):
    root = make_cohort("brats2021", n_subjects=3)
    (root / "BraTS2021_00000" / "BraTS2021_00000_t1.nii.gz").unlink()
    (root / "BraTS2021_00002" / "BraTS2021_00002_seg.nii.gz").unlink()
    problems = validate_cohort(root)
    assert [p.path for p in problems] == [str(root / "BraTS2021_00000"), str(root / "BraTS2021_00002")]


def test_each_file_is_read_once(make_cohort, monkeypatch):
    root = make_cohort("brats2021", n_subjects=2)
    read = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real_read_bytes(self))
    assert validate_cohort(root) == []
    assert len(read) == len(set(read)) == 2 * 5


def test_require_valid_returns_subjects_or_raises_with_every_line(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    assert [s.subject_id for s in require_valid(root)] == ["BraTS2021_00000", "BraTS2021_00001"]
    (root / "BraTS2021_00000" / "BraTS2021_00000_t1.nii.gz").unlink()
    (root / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz").unlink()
    with pytest.raises(InvalidCohortError) as error:
        require_valid(root)
    lines = str(error.value).splitlines()
    assert len(lines) == 2 and "missing t1 image" in lines[0] and "missing t2 image" in lines[1]
    assert isinstance(error.value, ValueError) and len(error.value.problems) == 2


def test_format_report_ok_line(make_cohort):
    root = make_cohort("brats2020", n_subjects=6)
    assert format_report([], root) == "OK: 6 subjects, modalities t1,t1ce,t2,flair, layout brats2020"


def test_cli_returns_0_when_valid_and_1_with_the_problem_lines(make_cohort, capsys):
    root = make_cohort("brats2023", n_subjects=2)
    assert main([str(root), "--modalities", "t1c", "t2f"]) == 0
    assert capsys.readouterr().out.strip() == "OK: 2 subjects, modalities t1ce,flair, layout brats2023"

    (root / "BraTS-GLI-00000-000" / "BraTS-GLI-00000-000-seg.nii.gz").unlink()
    assert main([str(root), "--no-label"]) == 0
    capsys.readouterr()
    assert main([str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{root / 'BraTS-GLI-00000-000'}: missing segmentation (expected BraTS-GLI-00000-000-seg.nii.gz)"
    assert out[-1] == f"INVALID: 1 problem(s) in {root}"


def test_gzip_with_bad_crc_is_unreadable(make_cohort):
    root = make_cohort("brats2021", n_subjects=1)
    path = root / "BraTS2021_00000" / "BraTS2021_00000_t1ce.nii.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    compressed = bytearray(gzip.compress(bytes(raw)))
    compressed[-8] ^= 0xFF  # corrupt the stored CRC32: the data decompress, the check fails
    path.write_bytes(bytes(compressed))
    only_problem(validate_cohort(root), path, "unreadable")


def test_constant_modality_is_refused_but_an_empty_label_is_not(make_cohort, synth):
    # A blank T1ce would pass every other check, and a study of which modality matters would then
    # silently learn without it. A label with no tumour (all zero) is a normal subject.
    root = make_cohort("brats2020", n_subjects=2)
    folder = root / "BraTS20_Training_002"
    path = folder / "BraTS20_Training_002_t1ce.nii.gz"
    synth.write_nifti(path, np.zeros((16, 16, 8), np.float32))
    synth.write_nifti(folder / "BraTS20_Training_002_seg.nii.gz", np.zeros((16, 16, 8), np.uint8))
    only_problem(validate_cohort(root), path, "image is constant (every voxel 0)")


def test_brats2019_name_mapping_beside_hgg_lgg_folders_does_not_invalidate_the_cohort(make_cohort):
    # BraTS 2019 ships name_mapping.csv beside HGG/ and LGG/, keyed by BraTS_2019_subject_ID (no 2020
    # column); the grade of that layout is its folder, so the file must not make the cohort invalid.
    root = make_cohort("brats2018", n_subjects=2)
    (root / "name_mapping.csv").write_text(
        "Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,BraTS_2019_subject_ID\n"
        "HGG,NA,Brats18_2013_0_1,NA,Brats18_2013_0_1\nLGG,NA,Brats18_2013_1_1,NA,Brats18_2013_1_1\n")
    assert validate_cohort(root) == []
    assert [s.grade for s in require_valid(root)] == ["HGG", "LGG"]


@pytest.mark.parametrize("layout, options", [("brats2018", {}), ("brats2023", {}),
                                             ("brats2020", {"wrapper": "MICCAI_BraTS2020_TrainingData"}),
                                             ("brats2021", {"suffix": ".nii"})])
def test_damaged_copies_of_every_layout_show_the_five_problems(make_cohort, tmp_path, layout, options):
    # The data chapter damages two subjects of the user's own folder: it must find them (HGG/ and
    # LGG/ folders, a wrapper folder) and their files (BraTS 2023 names) as discovery does, and
    # rewrite an uncompressed .nii it has read (memory-mapped: the kernel died of SIGBUS).
    from lib.data.layout import discover
    from lib.data.validate_demo import damaged_copies

    root = make_cohort(layout, **options)
    ids = [s.subject_id for s in discover(root)[:2]]
    (folder,) = damaged_copies(root, tmp_path / "demo", ids).values()
    assert len(validate_cohort(folder)) == 5, [str(p) for p in validate_cohort(folder)]
