"""Per-sequence acquisition of the phantom (generator 1.3): thick 2D slices, misregistration and
sequence-specific tissue contrast, with answers known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from lib.data import phantom as P
from lib.data.phantom import PhantomSpec
from lib.data.phantom_acquisition import ACQUISITION, ORIENTATION_AXIS, acquire, thick_slices


def test_thin_slices_leave_the_image_unchanged():
    image = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)
    out = thick_slices(image, axis=2, thickness_mm=2.0, voxel_mm=2.0, offset=0.4)
    assert np.array_equal(out, image) and out is not image


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_thick_slices_keep_constants_and_linear_ramps(axis):
    constant = np.full((12, 13, 14), 3.5, dtype=np.float32)
    assert np.allclose(thick_slices(constant, axis, 5.0, 2.0, 0.3), 3.5, atol=1e-5)
    shape = [1, 1, 1]
    shape[axis] = 24
    ramp = np.broadcast_to(np.arange(24, dtype=np.float32).reshape(shape), (24, 24, 24)).copy()
    out = thick_slices(ramp, axis, 5.0, 2.0, 0.3)
    inner = [slice(None)] * 3
    inner[axis] = slice(7, 17)  # beyond the Gaussian's reach (4 sigma) from the clamped edges
    # Gaussian profile and linear interpolation both reproduce a linear function exactly
    assert np.allclose(out[tuple(inner)], ramp[tuple(inner)], atol=1e-4)


def test_thick_slices_blur_only_along_their_axis_and_more_when_thicker():
    step = np.zeros((10, 10, 30), dtype=np.float32)
    step[..., 15:] = 1.0
    # slices across the step (axis 2) blur it; slices along another axis leave it untouched
    assert np.allclose(thick_slices(step, 0, 6.0, 2.0, 0.5), step, atol=1e-6)
    def width(t):
        profile = thick_slices(step, 2, t, 2.0, 0.5)[0, 0]
        return int(((profile > 0.02) & (profile < 0.98)).sum())
    assert width(3.0) < width(6.0) and width(3.0) >= 1


def test_acquire_leaves_t1ce_and_records_what_it_drew():
    rng = np.random.default_rng(5)
    base = np.random.default_rng(1).normal(size=(16, 16, 16)).astype(np.float32)
    images = {m: base.copy() for m in ("t1", "t1ce", "t2", "flair")}
    out, facts = acquire(rng, images, voxel_mm=2.0)
    assert np.array_equal(out["t1ce"], base), "T1ce is the 3D registration target"
    facts = facts["acquisition"]
    assert facts["t1ce"]["orientation"] == "3d"
    for mod in ("t1", "t2", "flair"):
        spec = ACQUISITION[mod]
        assert facts[mod]["orientation"] in spec["orientations"]
        lo, hi = spec["thickness_mm"]
        assert lo <= facts[mod]["thickness_mm"] <= hi
        assert not np.array_equal(out[mod], base)
    # same RNG state, same acquisition
    again, facts2 = acquire(np.random.default_rng(5), images, voxel_mm=2.0)
    assert facts2["acquisition"] == facts and all(np.array_equal(out[m], again[m]) for m in out)
    assert set(ORIENTATION_AXIS) == {"sagittal", "coronal", "axial"}


def test_t1_is_not_a_perfect_anatomical_reference_for_t1ce():
    """1.2 rendered T1 and T1ce from the same tissue maps with near-equal signals on one grid, so a
    linear T1ce-from-T1 fit left only noise in healthy brain. From 1.3 the sequences differ (tissue
    contrast, slices, registration): the residual is several times the noise."""
    spec = PhantomSpec(n_subjects=1, seed=3, resolution_mm=2.0)
    subject = P.synthesize_subject(spec, 0)
    clean = P.synthesize_subject(PhantomSpec.from_dict({**spec.to_dict(), "noise_scale": 0.0}), 0)
    normal = (subject["seg"] == 0) & (subject["images"]["t1"] > 0)
    t1, t1ce = subject["images"]["t1"][normal], subject["images"]["t1ce"][normal]
    a, b = np.polyfit(t1, t1ce, 1)
    residual = float(np.std(t1ce - (a * t1 + b)))
    noise = float(np.std(subject["images"]["t1ce"][normal] - clean["images"]["t1ce"][normal]))
    assert residual > 3.0 * noise
    assert subject["facts"]["acquisition"]["t1ce"]["orientation"] == "3d"


def test_acquisition_can_be_switched_off(monkeypatch):
    spec = PhantomSpec(n_subjects=1, seed=3, resolution_mm=4.0)
    monkeypatch.setattr(P, "ACQUIRE", False)
    subject = P.synthesize_subject(spec, 0)
    assert "acquisition" not in subject["facts"]
