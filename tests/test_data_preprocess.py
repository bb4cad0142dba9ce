"""Label conventions, regions and the preprocessing functions, on hand-made arrays."""

import numpy as np
import pytest

from lib.data.labels import detect_convention, present_values, region_mask, to_canonical
from lib.data.preprocess import (bounding_box, brain_mask, crop_or_pad_fixed, crop_to_bbox, crop_window,
                                 normalize, resample, resize_inplane, resize_slice)

# ---------------------------------------------------------------- labels


def test_brats2020_labels_map_4_to_canonical_3():
    label = np.array([[0, 1], [2, 4]], dtype=np.int16)
    canonical = to_canonical(label, "brats2020")
    assert canonical.dtype == np.uint8
    np.testing.assert_array_equal(canonical, [[0, 1], [2, 3]])


def test_brats2023_labels_are_already_canonical():
    np.testing.assert_array_equal(to_canonical(np.array([0, 1, 2, 3]), "brats2023"), [0, 1, 2, 3])


def test_auto_convention_follows_the_values_present():
    assert detect_convention([0, 2, 4]) == "brats2020"
    assert detect_convention(np.array([[0, 3], [1, 2]])) == "brats2023"
    assert detect_convention([0, 1, 2]) == "brats2020"  # ambiguous, and both agree on 0, 1, 2
    np.testing.assert_array_equal(to_canonical(np.array([0, 4, 1]), "auto"), [0, 3, 1])
    np.testing.assert_array_equal(to_canonical(np.array([0, 3, 1]), "auto"), [0, 3, 1])


def test_float_label_arrays_as_nibabel_returns_them():
    np.testing.assert_array_equal(to_canonical(np.array([0.0, 1.0, 4.0]), "auto"), [0, 1, 3])


@pytest.mark.parametrize("values, convention, named", [
    ([0, 3, 4], "auto", "[3]"),          # 4 decides brats2020, where 3 is undefined
    ([0, 1, 5, 7], "brats2020", "[5, 7]"),
    ([0, 4], "brats2023", "[4]"),
    ([0, 1.5], "auto", "[1.5]"),
    ([0, -1], "auto", "[-1]"),
])
def test_values_outside_the_convention_are_named(values, convention, named):
    with pytest.raises(ValueError) as error:
        to_canonical(np.array(values), convention)
    assert str(error.value).startswith(f"label values {named} are not in the ")


def test_unknown_convention_is_rejected():
    with pytest.raises(ValueError, match="unknown label convention 'brats2019'"):
        to_canonical(np.array([0, 1]), "brats2019")


def test_present_values_fast_path_and_general_path_agree():
    assert present_values(np.array([[4, 0], [0, 2]], np.uint8)).tolist() == [0, 2, 4]
    assert present_values(np.array([0.0, 2.0, 2.0])).tolist() == [0, 2]
    assert present_values(np.array([0.5, -1.0, 0.5])).tolist() == [-1.0, 0.5]


def test_regions_are_the_nested_brats_regions():
    canonical = np.array([0, 1, 2, 3], np.uint8)  # background, NCR, ED, ET
    assert region_mask(canonical, "ET").tolist() == [False, False, False, True]
    assert region_mask(canonical, "TC").tolist() == [False, True, False, True]
    assert region_mask(canonical, "WT").tolist() == [False, True, True, True]
    assert region_mask(canonical, "NCR").tolist() == [False, True, False, False]
    assert region_mask(canonical, "ED").tolist() == [False, False, True, False]


def test_regions_nest_on_a_random_volume():
    canonical = np.random.default_rng(0).integers(0, 4, (6, 6, 6)).astype(np.uint8)
    et, tc, wt = (region_mask(canonical, r) for r in ("ET", "TC", "WT"))
    assert np.all(tc[et]) and np.all(wt[tc])
    assert wt.sum() == (canonical > 0).sum()


def test_unknown_region_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown region 'TUMOUR'; allowed: ET, TC, WT, NCR, ED"):
        region_mask(np.zeros(3, np.uint8), "TUMOUR")


# ---------------------------------------------------------------- brain mask and normalisation

VOLUME = np.array([[0.0, 2.0, 4.0], [6.0, 8.0, 0.0]])
BRAIN = VOLUME != 0  # brain voxels 2, 4, 6, 8: mean 5, population sd sqrt(5), min 2, max 8


def test_brain_mask_is_nonzero_in_any_modality():
    t1 = np.array([[0, 1], [0, 0]])
    flair = np.array([[0, 0], [0, 3]])
    assert brain_mask({"t1": t1, "flair": flair}).tolist() == [[False, True], [False, True]]
    assert brain_mask([t1, flair]).tolist() == [[False, True], [False, True]]
    assert brain_mask(t1).tolist() == [[False, True], [False, False]]


def test_zscore_uses_brain_voxels_only_and_zeroes_the_background():
    result = normalize(VOLUME, BRAIN, "zscore")
    expected = np.array([[0.0, -3, -1], [1, 3, 0.0]]) / np.sqrt(5)
    expected[~BRAIN] = 0
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    np.testing.assert_allclose([result[BRAIN].mean(), result[BRAIN].std()], [0, 1], atol=1e-6)


def test_minmax_maps_the_brain_to_0_1():
    np.testing.assert_allclose(normalize(VOLUME, BRAIN, "minmax"), [[0, 0, 1 / 3], [2 / 3, 1, 0]], rtol=1e-6)


def test_p95_divides_by_the_95th_percentile_of_the_brain():
    p95 = 6 + 0.85 * 2  # linear interpolation at rank 0.95 * 3 = 2.85 of [2, 4, 6, 8]
    np.testing.assert_allclose(normalize(VOLUME, BRAIN, "p95"), [[0, 2 / p95, 4 / p95], [6 / p95, 8 / p95, 0]],
                               rtol=1e-6)


def test_none_leaves_the_volume_unchanged():
    np.testing.assert_array_equal(normalize(VOLUME, np.zeros_like(BRAIN), "none"), VOLUME)


def test_voxels_outside_the_mask_do_not_move_the_statistics():
    volume = VOLUME.copy()
    mask = BRAIN.copy()
    volume[0, 0] = 1000.0  # e.g. a bright artefact the mask excludes
    np.testing.assert_allclose(normalize(volume, mask, "zscore"), normalize(VOLUME, BRAIN, "zscore"))


def test_constant_brain_gives_zeros_not_nan():
    volume = np.where(BRAIN, 7.0, 0.0)
    for method in ("zscore", "minmax"):
        result = normalize(volume, BRAIN, method)
        assert np.all(np.isfinite(result)) and np.all(result == 0)
    np.testing.assert_allclose(normalize(volume, BRAIN, "p95")[BRAIN], 1.0)


def test_normalisation_rejects_unknown_method_and_empty_mask():
    with pytest.raises(ValueError, match="unknown normalisation 'histogram'"):
        normalize(VOLUME, BRAIN, "histogram")
    with pytest.raises(ValueError, match="empty mask"):
        normalize(VOLUME, np.zeros_like(BRAIN), "zscore")


# ---------------------------------------------------------------- cropping and padding


def test_bounding_box_with_margin_is_clipped_to_the_array():
    mask = np.zeros((8, 8), bool)
    mask[2, 3] = mask[4, 5] = True
    assert bounding_box(mask) == (slice(2, 5), slice(3, 6))
    assert bounding_box(mask, margin=1) == (slice(1, 6), slice(2, 7))
    assert bounding_box(mask, margin=10) == (slice(0, 8), slice(0, 8))
    with pytest.raises(ValueError, match="empty mask"):
        bounding_box(np.zeros((3, 3), bool))


def test_crop_to_bbox_keeps_the_container_and_trailing_axes():
    mask = np.zeros((5, 5), bool)
    mask[1:3, 2:4] = True
    stack = np.arange(5 * 5 * 2).reshape(5, 5, 2)
    cropped = crop_to_bbox({"image": stack, "mask": mask}, mask, margin=0)
    np.testing.assert_array_equal(cropped["image"], stack[1:3, 2:4])
    assert cropped["mask"].all()
    first, second = crop_to_bbox([stack, mask], mask, 1)
    assert first.shape == (4, 4, 2) and second.shape == (4, 4)


def test_crop_or_pad_fixed_is_centred_and_inverse_of_itself():
    array = np.arange(16).reshape(4, 4)
    np.testing.assert_array_equal(crop_or_pad_fixed(array, (2, 2)), [[5, 6], [9, 10]])
    padded = crop_or_pad_fixed(np.array([[1, 2], [3, 4]]), (4, 4))
    np.testing.assert_array_equal(padded, [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]])
    odd = crop_or_pad_fixed(np.array([1, 2]), (5,))
    np.testing.assert_array_equal(odd, [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(crop_or_pad_fixed(odd, (2,)), [1, 2])


def test_crop_window_pads_outside_the_array():
    array = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(crop_window(array, (-1, 1), (3, 2)), [[0, 0], [2, 0], [4, 0]])
    np.testing.assert_array_equal(crop_window(array, (5, 5), (1, 1)), [[0]])


# ---------------------------------------------------------------- resampling


def test_resample_labels_nearest_duplicates_voxels_and_keeps_dtype():
    label = np.array([[[1], [2]], [[3], [4]]], np.uint8)  # (2, 2, 1), 2 mm in-plane
    result = resample(label, (2.0, 2.0, 1.0), (1.0, 1.0, 1.0), order=0)
    assert result.dtype == np.uint8 and result.shape == (4, 4, 1)
    np.testing.assert_array_equal(result[..., 0], np.kron([[1, 2], [3, 4]], np.ones((2, 2), int)))


def test_resample_images_linear_preserves_constants_and_field_of_view():
    volume = np.full((6, 6, 4), 3.0)
    result = resample(volume, (1.0, 1.0, 2.0), 1.5, order=1)
    assert result.shape == (4, 4, 5)  # round(6 * 1 / 1.5), round(4 * 2 / 1.5)
    np.testing.assert_allclose(result, 3.0)
    np.testing.assert_array_equal(resample(volume, (1, 1, 2), (1, 1, 2), order=1), volume)


def test_resize_slice_and_resize_inplane_agree():
    image = np.random.default_rng(1).normal(size=(6, 6, 3)).astype(np.float32)
    stacked = resize_inplane(image, 9, order=1)
    assert stacked.shape == (9, 9, 3)
    for z in range(3):
        np.testing.assert_allclose(stacked[..., z], resize_slice(image[..., z], 9, order=1), atol=1e-6)
    np.testing.assert_array_equal(resize_slice(np.array([[1, 2], [3, 4]]), 4, order=0),
                                  np.kron([[1, 2], [3, 4]], np.ones((2, 2), int)))
    mask = np.zeros((4, 4, 2), bool)
    mask[1:3, 1:3] = True
    assert resize_inplane(mask, 8, order=0).dtype == bool
    assert resize_inplane(mask, 8, order=0).sum() == 4 * 4 * 2
    with pytest.raises(ValueError, match="2-D"):
        resize_slice(image, 4, order=1)
