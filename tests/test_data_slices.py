"""2-D slice sets from synthetic cohorts with a known tumour extent, and their cache.

Every synthetic subject (tests/conftest.py) is 16 x 16 x 8 voxels with brain in z = 1..6,
whole tumour (5 x 5 = 25 pixels per slice) in z = 2..5 and tumour core / enhancing tumour
(ET 2 x 2 = 4 pixels) in z = 3..4. With ``crop="none"`` and ``image_size=16`` no resizing
happens, so pixel counts are exact.
"""

import os

import nibabel
import numpy as np
import pytest

from lib.data import cache
from lib.data.cache import cached, cohort_fingerprint
from lib.fingerprint import array_fingerprint
from lib.data.slices import (ImageSelection, SliceSet, _concatenate_releasing, even_subsample, load_slices,
                             permute_rows_in_place, require_slices)

EXACT = dict(crop="none", image_size=16, progress=False)


def forbid_nifti_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a NIfTI file was read")

    monkeypatch.setattr(nibabel, "load", refuse)


@pytest.mark.parametrize("slice_filter, region, min_pixels, kept", [
    ("all", "WT", 1, list(range(8))),
    ("brain", "WT", 1, [1, 2, 3, 4, 5, 6]),
    ("tumour", "WT", 1, [2, 3, 4, 5]),
    ("tumour", "WT", 25, [2, 3, 4, 5]),
    ("tumour", "WT", 26, []),
    ("tumour", "TC", 1, [3, 4]),
    ("tumour", "ET", 4, [3, 4]),
    ("tumour", "ET", 5, []),
    ("tumour", "ED", 1, [2, 3, 4, 5]),
])
def test_slice_filter_keeps_the_known_slices(make_cohort, slice_filter, region, min_pixels, kept):
    root = make_cohort("brats2021", n_subjects=2)
    slices = load_slices(root, ("t1", "flair"), slice_filter=slice_filter, filter_region=region,
                         min_region_pixels=min_pixels, **EXACT)
    assert len(slices) == 2 * len(kept)
    assert slices.slice_index.tolist() == kept * 2
    assert slices.subject_ids.tolist() == ["BraTS2021_00000"] * len(kept) + ["BraTS2021_00001"] * len(kept)


def test_arrays_have_the_documented_shapes_types_and_content(make_cohort, synth):
    root = make_cohort("brats2020", n_subjects=2)  # label files use 4 for ET
    slices = load_slices(root, ("t1", "t1ce", "t2", "flair"), **EXACT)
    assert slices.images.shape == (8, 4, 16, 16) and slices.images.dtype == np.float32
    assert slices.labels.shape == (8, 16, 16) and slices.labels.dtype == np.uint8
    assert slices.brain.shape == (8, 16, 16) and slices.brain.dtype == bool
    assert slices.modalities == ("t1", "t1ce", "t2", "flair")
    label = synth.geometry.canonical_label()
    for i, z in enumerate(slices.slice_index):
        np.testing.assert_array_equal(slices.labels[i], label[:, :, z])  # ET mapped 4 -> 3
        np.testing.assert_array_equal(slices.brain[i], synth.geometry.brain_mask()[:, :, z])
    assert slices.grades.tolist() == ["HGG"] * 4 + ["LGG"] * 4  # from name_mapping.csv


def test_a_cohort_stored_in_another_orientation_gives_the_same_slices(make_cohort):
    # BraTS releases commonly carry an LPS affine (diag(-1, -1, 1)); the phantom and the fixtures are RAS.
    # The same anatomy stored either way must give the same slices (anterior up in every figure).
    ras = make_cohort("brats2020", n_subjects=2)
    lps = make_cohort("brats2020", n_subjects=2)
    flip = np.array([[-1.0, 0, 0, 15], [0, -1.0, 0, 15], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])  # 16 voxels: 0 <-> 15
    for path in lps.glob("*/*.nii.gz"):
        image = nibabel.load(path)
        data = np.asarray(image.dataobj)[::-1, ::-1, :]
        nibabel.Nifti1Image(np.ascontiguousarray(data), flip @ image.affine).to_filename(path)
    a, b = load_slices(ras, **EXACT), load_slices(lps, **EXACT)
    np.testing.assert_array_equal(b.labels, a.labels)
    np.testing.assert_array_equal(b.brain, a.brain)
    np.testing.assert_allclose(b.images, a.images)


def test_channels_follow_the_requested_modality_order(make_cohort):
    root = make_cohort("brats2023", n_subjects=1)
    folder = root / "BraTS-GLI-00000-000"
    slices = load_slices(root, ("t2f", "t1n"), normalisation="none", slice_filter="all", **EXACT)
    flair = nibabel.load(folder / "BraTS-GLI-00000-000-t2f.nii.gz").get_fdata()
    t1 = nibabel.load(folder / "BraTS-GLI-00000-000-t1n.nii.gz").get_fdata()
    assert slices.modalities == ("flair", "t1")
    np.testing.assert_allclose(slices.images[:, 0], np.moveaxis(flair, 2, 0), rtol=1e-6)
    np.testing.assert_allclose(slices.images[:, 1], np.moveaxis(t1, 2, 0), rtol=1e-6)
    assert slices.grades.tolist() == [None] * 8


def test_zscore_is_computed_over_the_whole_brain_volume(make_cohort):
    root = make_cohort("brats2021", n_subjects=1)
    slices = load_slices(root, ("t1", "t2"), slice_filter="all", normalisation="zscore", **EXACT)
    for channel in range(2):
        brain_voxels = slices.images[:, channel][slices.brain]
        assert abs(brain_voxels.mean()) < 1e-5 and abs(brain_voxels.std() - 1) < 1e-5
        assert np.all(slices.images[:, channel][~slices.brain] == 0)


def test_brain_crop_is_a_square_window_around_the_brain(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    # Brain spans x 2..13 (12 voxels) and y 3..12 (10): the square window is x 2..13, y 2..13,
    # and image_size 12 means no resizing.
    slices = load_slices(root, ("t1",), crop="brain_bbox", crop_margin=0, image_size=12, progress=False)
    label = synth.geometry.canonical_label()
    assert slices.labels.shape == (4, 12, 12)
    for i, z in enumerate(slices.slice_index):
        np.testing.assert_array_equal(slices.labels[i], label[2:14, 2:14, z])


def test_resizing_to_image_size_keeps_the_slices_and_label_values(make_cohort):
    root = make_cohort("brats2023", n_subjects=1)
    slices = load_slices(root, ("t1c",), image_size=32, progress=False)
    assert slices.images.shape == (4, 1, 32, 32)
    assert set(np.unique(slices.labels).tolist()) == {0, 1, 2, 3}
    assert slices.region("WT").sum(axis=(1, 2)).min() > 25  # upsampled from 25 pixels


def test_max_slices_per_subject_subsamples_evenly(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    slices = load_slices(root, ("t1",), slice_filter="all", max_slices_per_subject=3, **EXACT)
    assert slices.slice_index.tolist() == [0, 4, 7, 0, 4, 7]
    tumour = load_slices(root, ("t1",), max_slices_per_subject=2, **EXACT)
    assert tumour.slice_index.tolist() == [2, 5, 2, 5]


def test_even_subsample_spreads_indices_without_repeats():
    assert even_subsample(8, 3).tolist() == [0, 4, 7]
    assert even_subsample(4, 10).tolist() == [0, 1, 2, 3]
    for n in range(1, 30):
        for k in range(1, n + 1):
            picked = even_subsample(n, k)
            assert len(set(picked.tolist())) == k and picked.min() >= 0 and picked.max() < n


def test_target_spacing_resamples_through_plane(make_cohort):
    root = make_cohort("brats2021", n_subjects=1)
    slices = load_slices(root, ("t1",), slice_filter="all", target_spacing=(1.0, 1.0, 2.0), **EXACT)
    assert slices.slice_index.tolist() == [0, 1, 2, 3]  # 8 slices of 1 mm -> 4 of 2 mm


def test_the_brain_mask_is_resampled_like_a_label_not_read_off_interpolated_images(make_cohort, synth):
    """Linear interpolation blends the zero background into the brain's edge; a mask taken after it
    grows by those voxels and drags the normalisation's statistics toward 0."""
    from lib.data.preprocess import resample

    root = make_cohort("brats2021", n_subjects=1)
    target = (1.0, 1.0, 0.5)  # through-plane upsampling: 8 slices of 1 mm -> 16 of 0.5 mm
    slices = load_slices(root, ("t1",), slice_filter="all", target_spacing=target, normalisation="minmax", **EXACT)
    expected = resample(synth.geometry.brain_mask().astype(np.uint8), (1.0, 1.0, 1.0), target, order=0).astype(bool)
    for i, z in enumerate(slices.slice_index):
        np.testing.assert_array_equal(slices.brain[i], expected[:, :, z])
    assert slices.images[:, 0][slices.brain].min() == 0.0  # minmax over the brain: its darkest voxel is 0


def test_slice_cache_key_holds_the_preprocessing_code(make_cohort, tmp_path, monkeypatch):
    root = make_cohort("brats2021", n_subjects=1)
    load_slices(root, ("t1",), cache_dir=tmp_path / "cache", **EXACT)
    forbid_nifti_reads(monkeypatch)
    load_slices(root, ("t1",), cache_dir=tmp_path / "cache", **EXACT)  # reused
    monkeypatch.setattr("lib.data.slices.preprocessing_code_digest", lambda: "other code")
    with pytest.raises(AssertionError, match="a NIfTI file was read"):  # built again, not reused
        load_slices(root, ("t1",), cache_dir=tmp_path / "cache", **EXACT)


def test_labels_outside_the_brain_crop_are_named_not_dropped_silently(make_cohort, synth):
    root = make_cohort("brats2021", n_subjects=1)
    folder = root / "BraTS2021_00000"
    label = synth.file_label(synth.geometry.canonical_label(), "brats2021")
    label[0, 0, 3] = 2  # oedema on a voxel where every image is 0: outside the brain's square
    synth.write_nifti(folder / "BraTS2021_00000_seg.nii.gz", label)
    with pytest.warns(UserWarning, match=r"BraTS2021_00000_seg.nii.gz: 1 labelled voxels lie outside the brain"):
        load_slices(root, ("t1",), crop="brain_bbox", crop_margin=0, image_size=16, progress=False)


def test_incomplete_subject_is_named(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    (root / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"BraTS2021_00001 lacks t2.*python -m lib validate"):
        load_slices(root, ("t1", "t2"), **EXACT)
    assert len(load_slices(root, ("t1",), **EXACT)) == 8  # t2 not requested: fine


@pytest.mark.parametrize("argument, value", [
    ("normalisation", "histogram"), ("crop", "skull"), ("slice_filter", "lesion"),
    ("filter_region", "GTV"), ("min_region_pixels", 0), ("label_convention", "brats2017"),
])
def test_unknown_arguments_are_rejected_before_any_work(make_cohort, monkeypatch, argument, value):
    root = make_cohort("brats2021", n_subjects=1)
    forbid_nifti_reads(monkeypatch)
    with pytest.raises(ValueError, match=argument.split("_")[0]):
        load_slices(root, ("t1",), progress=False, **{argument: value})


# ---------------------------------------------------------------- SliceSet


def small_slice_set() -> SliceSet:
    labels = np.zeros((3, 2, 2), np.uint8)
    labels[0, 0, 0], labels[1, 0, 0], labels[2, 0, 0] = 1, 2, 3
    images = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 2, 2)
    return SliceSet(images=images, labels=labels, brain=np.ones((3, 2, 2), bool),
                    subject_ids=np.array(["A", "B", "A"]), slice_index=np.array([4, 7, 5]),
                    grades=np.array(["HGG", None, "HGG"], dtype=object), modalities=("t1", "flair"))


def test_slice_set_selection_methods():
    s = small_slice_set()
    assert len(s) == 3
    assert s.region("TC")[:, 0, 0].tolist() == [True, False, True]
    assert s.region("WT")[:, 0, 0].tolist() == [True, True, True]
    a = s.for_subjects(["A"])
    assert a.subject_ids.tolist() == ["A", "A"] and a.slice_index.tolist() == [4, 5]
    np.testing.assert_array_equal(a.images, s.images[[0, 2]])
    assert s.subset(np.array([False, True, False])).grades.tolist() == [None]
    assert len(s.subset(1)) == 1 and len(s.subset(slice(0, 2))) == 2
    swapped = s.select_modalities(["t2f", "t1n"])  # aliases of flair, t1
    assert swapped.modalities == ("flair", "t1")
    np.testing.assert_array_equal(swapped.images[:, 0], s.images[:, 1])
    with pytest.raises(ValueError, match="not in this slice set"):
        s.select_modalities(["t2"])


def test_for_subjects_with_modalities_equals_selecting_after():
    s = small_slice_set()
    one_step = s.for_subjects(["A"], ["flair"])
    assert_same(one_step, s.for_subjects(["A"]).select_modalities(["flair"]))
    assert one_step.modalities == ("flair",) and one_step.images[:, 0].tolist() == s.images[[0, 2], 1].tolist()
    with pytest.raises(ValueError, match="not in this slice set"):
        s.for_subjects(["A"], ["t2"])


def test_image_selection_gathers_rows_and_channels_on_indexing():
    base = np.arange(6 * 3 * 2 * 2, dtype=np.float32).reshape(6, 3, 2, 2)
    rows, channels = [5, 0, 3], [2, 0]
    selection = ImageSelection(base, rows, channels)
    gathered = base[rows][:, channels]
    assert selection.shape == gathered.shape and len(selection) == 3 and selection.nbytes == gathered.nbytes
    np.testing.assert_array_equal(np.asarray(selection), gathered)
    np.testing.assert_array_equal(selection[1], gathered[1])
    np.testing.assert_array_equal(selection[1:], gathered[1:])
    np.testing.assert_array_equal(selection[np.array([2, 0])], gathered[[2, 0]])
    np.testing.assert_array_equal(selection[np.array([True, False, True])], gathered[[0, 2]])
    assert array_fingerprint(selection) == array_fingerprint(gathered)
    assert array_fingerprint(ImageSelection(base, rows, [0, 2])) != array_fingerprint(gathered)


def test_for_subjects_without_copying_the_images():
    s = small_slice_set()
    lazy = s.for_subjects(["A"], ["flair"], copy_images=False)
    assert isinstance(lazy.images, ImageSelection) and lazy.images.base is s.images
    np.testing.assert_array_equal(np.asarray(lazy.images), s.for_subjects(["A"], ["flair"]).images)
    assert lazy.subject_ids.tolist() == ["A", "A"] and lazy.modalities == ("flair",)
    every_channel = s.for_subjects(["B"], copy_images=False)
    assert every_channel.modalities == s.modalities
    np.testing.assert_array_equal(np.asarray(every_channel.images), s.images[[1]])


def six_subject_slices() -> SliceSet:
    """Ten slices of six subjects, interleaved; every image pixel holds its original row number."""
    ids = np.array(["s3", "s1", "s2", "s1", "s4", "s3", "s5", "s2", "s1", "s6"])
    n = len(ids)
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 2, 3, 3)).copy()
    images[:, 1] += 100  # channel 1 differs from channel 0
    return SliceSet(images=images, labels=(np.arange(n) % 4).astype(np.uint8)[:, None, None].repeat(3, 1).repeat(3, 2),
                    brain=np.ones((n, 3, 3), bool), subject_ids=ids, slice_index=np.arange(n) * 10,
                    grades=np.array(["HGG", "LGG", None, "LGG", "HGG", "HGG", None, None, "LGG", "HGG"], dtype=object),
                    modalities=("t1", "flair"))


def test_partition_by_subjects_equals_for_subjects_and_copies_nothing():
    groups = (["s2", "s4", "s1"], ["s6", "s3"])
    expected = [six_subject_slices().for_subjects(g) for g in groups]
    whole = six_subject_slices()
    parts = whole.partition_by_subjects(*groups)
    for part, want in zip(parts, expected):
        assert_same(part, want)
        assert np.shares_memory(part.images, whole.images)  # a view, not a copy
    # rows 0..5 of the reordered whole are the two groups; s5 (in no group) goes last
    assert whole.images[:, 0, 0, 0].tolist() == [1, 2, 3, 4, 7, 8, 0, 5, 9, 6]
    assert whole.subject_ids[-1] == "s5" and whole.grades.tolist()[-1] is None
    with pytest.raises(ValueError, match="more than one group"):
        six_subject_slices().partition_by_subjects(["s1", "s2"], ["s2"])


def test_permute_rows_in_place_matches_fancy_indexing():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50):
        array = rng.normal(size=(n, 3, 2)).astype(np.float32)
        order = rng.permutation(n)
        expected = array[order]
        permute_rows_in_place(array, order)
        np.testing.assert_array_equal(array, expected)
    strings = np.array(["a", "bb", "c"])
    permute_rows_in_place(strings, [2, 0, 1])
    assert strings.tolist() == ["c", "a", "bb"]
    with pytest.raises(ValueError, match="permutation of range"):
        permute_rows_in_place(np.zeros((3, 2)), [0, 0, 1])


def test_concatenate_releasing_equals_concatenate_and_empties_the_list():
    chunks = [np.full((k, 2), k, np.float32) for k in (2, 0, 3)]
    expected = np.concatenate(chunks)
    out = _concatenate_releasing(chunks, np.zeros((0, 2), np.float32))
    np.testing.assert_array_equal(out, expected)
    assert chunks == [] and out.dtype == np.float32
    assert _concatenate_releasing([], np.zeros((0, 4, 5), np.uint8)).shape == (0, 4, 5)


def test_slice_set_rejects_inconsistent_arrays():
    s = small_slice_set()
    with pytest.raises(ValueError, match="disagree"):
        SliceSet(s.images, s.labels[:2], s.brain, s.subject_ids, s.slice_index, s.grades, s.modalities)
    with pytest.raises(ValueError, match="does not match modalities"):
        SliceSet(s.images, s.labels, s.brain, s.subject_ids, s.slice_index, s.grades, ("t1",))


# ---------------------------------------------------------------- cache


def assert_same(a: SliceSet, b: SliceSet):
    for name in ("images", "labels", "brain", "subject_ids", "slice_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.grades.tolist() == b.grades.tolist() and a.modalities == b.modalities


def test_second_load_reads_no_nifti(make_cohort, tmp_path, monkeypatch):
    root = make_cohort("brats2020", n_subjects=2)
    cache_dir = tmp_path / "cache"
    first = load_slices(root, ("t1", "flair"), cache_dir=cache_dir, progress=False)
    assert len(list(cache_dir.glob("*.npz"))) == 1
    forbid_nifti_reads(monkeypatch)
    second = load_slices(root, ("t1", "flair"), cache_dir=cache_dir, progress=False)
    assert_same(first, second)
    assert second.grades.tolist() == ["HGG"] * 4 + ["LGG"] * 4
    # Any other argument is another entry, so it has to read the files again.
    with pytest.raises(AssertionError, match="NIfTI file was read"):
        load_slices(root, ("t1", "flair"), cache_dir=cache_dir, image_size=32, progress=False)


def test_changed_cohort_content_misses_the_cache(make_cohort, tmp_path, synth):
    root = make_cohort("brats2021", n_subjects=1)
    cache_dir = tmp_path / "cache"
    before = load_slices(root, ("t1",), cache_dir=cache_dir, **EXACT)
    label_path = root / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz"
    label = synth.file_label(synth.geometry.canonical_label(), "brats2021")
    label[:, :, 5] = 0  # the tumour now ends at z = 4
    synth.write_nifti(label_path, label)
    after = load_slices(root, ("t1",), cache_dir=cache_dir, **EXACT)
    assert before.slice_index.tolist() == [2, 3, 4, 5] and after.slice_index.tolist() == [2, 3, 4]
    assert len(list(cache_dir.glob("*.npz"))) == 2


def test_corrupt_cache_entry_is_rebuilt(make_cohort, tmp_path):
    root = make_cohort("brats2021", n_subjects=1)
    cache_dir = tmp_path / "cache"
    first = load_slices(root, ("t1",), cache_dir=cache_dir, **EXACT)
    (entry,) = cache_dir.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # as if a copy of the cache was cut short
    assert_same(load_slices(root, ("t1",), cache_dir=cache_dir, **EXACT), first)
    assert entry.stat().st_size > 100  # rewritten whole


def test_cached_builds_once_per_key(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(3), "names": np.array(["a", "b"])}

    first = cached(tmp_path, {"cohort": "abc", "size": 64}, build)
    second = cached(tmp_path, {"size": 64, "cohort": "abc"}, build)  # key order does not matter
    assert len(calls) == 1
    np.testing.assert_array_equal(second["x"], [0, 1, 2])
    assert second["names"].tolist() == ["a", "b"] and set(first) == set(second) == {"x", "names"}
    cached(tmp_path, {"cohort": "abc", "size": 32}, build)
    assert len(calls) == 2


def test_cache_version_is_part_of_the_key(tmp_path, monkeypatch):
    build = lambda: {"x": np.zeros(1)}  # noqa: E731
    cached(tmp_path, {"k": 1}, build)
    monkeypatch.setattr(cache, "CACHE_VERSION", cache.CACHE_VERSION + 1)
    assert cache.cache_path(tmp_path, {"k": 1}) not in set(tmp_path.glob("*.npz"))


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    def savez_then_crash(stream, **arrays):
        stream.write(b"PK\x03\x04 partial zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(KeyboardInterrupt):
        cached(tmp_path, {"k": 1}, lambda: {"x": np.zeros(1)})
    assert os.listdir(tmp_path) == []


def test_failed_build_leaves_no_entry(tmp_path):
    def broken_build():
        raise RuntimeError("subject 3 unreadable")

    with pytest.raises(RuntimeError):
        cached(tmp_path, {"k": 1}, broken_build)
    assert list(tmp_path.iterdir()) == []


def test_a_cohort_of_linked_subject_folders_is_fingerprinted_by_their_files(tmp_path, synth):
    """A cohort made of links to downloaded subject folders: discovery reads through the links, so
    the fingerprint (and the validation memo's key) must too (Path.rglob does not, before 3.13)."""
    from lib.data.cohort import quick_key

    store = tmp_path / "download"
    for i, seed in ((0, 1), (1, 2)):
        synth.write_subject(store / f"BraTS2021_0000{i}", "brats2021", seed=seed)
    one, other = tmp_path / "one", tmp_path / "other"
    for cohort, subject in ((one, "BraTS2021_00000"), (other, "BraTS2021_00001")):
        cohort.mkdir()
        (cohort / "BraTS2021_00000").symlink_to(store / subject, target_is_directory=True)
    copied = tmp_path / "copied"
    synth.write_subject(copied / "BraTS2021_00000", "brats2021", seed=1)
    assert len(cache._cohort_files(one)) == 5  # four images and the label, through the link
    assert cohort_fingerprint(one) == cohort_fingerprint(copied)  # as if the folder were there
    assert cohort_fingerprint(one) != cohort_fingerprint(other)
    assert quick_key(one, {}) != quick_key(other, {})
    # a link back up the tree: every folder is walked once (the subject's own folder is not re-entered)
    (store / "BraTS2021_00000" / "loop").symlink_to(store, target_is_directory=True)
    assert len(cache._cohort_files(one)) == 10  # its own 5, then BraTS2021_00001's through the loop


def test_fingerprint_depends_on_content_and_names_not_location_or_dates(tmp_path, synth):
    a, b = tmp_path / "a" / "BraTS2021_00000", tmp_path / "b" / "BraTS2021_00000"
    synth.write_subject(a, "brats2021", seed=1)
    synth.write_subject(b, "brats2021", seed=1)
    fingerprint = cohort_fingerprint(a.parent)
    assert cohort_fingerprint(b.parent) == fingerprint and len(fingerprint) == 64

    t1 = b / "BraTS2021_00000_t1.nii.gz"
    os.utime(t1, (1_000_000, 1_000_000))
    assert cohort_fingerprint(b.parent) == fingerprint  # dates do not count
    (b / "notes.txt").write_text("not part of the data")
    assert cohort_fingerprint(b.parent) == fingerprint

    t1.write_bytes(t1.read_bytes()[:-1] + bytes([t1.read_bytes()[-1] ^ 1]))
    assert cohort_fingerprint(b.parent) != fingerprint
    synth.write_subject(b, "brats2021", seed=1)
    assert cohort_fingerprint(b.parent) == fingerprint
    t1.rename(b / "BraTS2021_00000_t1.nii")
    assert cohort_fingerprint(b.parent) != fingerprint


def test_a_filter_that_keeps_no_slice_names_the_parameters_that_decided(make_cohort):
    root = make_cohort("brats2021", n_subjects=2)
    params = {"slice_filter": "tumour", "filter_region": "ET", "min_region_pixels": 5, "crop": "none",
              "target_spacing": None, "image_size": 16}
    none_kept = load_slices(root, ("t1", "flair"), slice_filter="tumour", filter_region="ET", min_region_pixels=5,
                            **EXACT)
    with pytest.raises(ValueError) as info:
        require_slices(none_kept, root, params)
    assert str(info.value) == (f"{root}: no slice passes the slice filter (slice_filter=tumour, filter_region=ET, "
                               "min_region_pixels=5, crop=none, target_spacing=None, image_size=16)")
    some = load_slices(root, ("t1", "flair"), slice_filter="tumour", filter_region="ET", min_region_pixels=4, **EXACT)
    assert require_slices(some, root, params) is some
