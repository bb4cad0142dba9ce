"""How each BraTS sequence was acquired, and what that does to the phantom's images (generator 1.3).

Real BraTS volumes are not four renderings of one anatomy on one grid. Menze et al. 2015 (IEEE
TMI 34(10), Sec. II) describe the multi-institutional scans: T1 "sagittal or axial 2D
acquisitions, with 1-6 mm slice thickness"; T1ce "3D acquisition and 1 mm isotropic voxel size
for most patients"; T2 "axial 2D acquisition, with 2-6 mm slice thickness"; FLAIR "axial,
coronal, or sagittal 2D acquisitions, 2-6 mm slice thickness". All were co-registered to the
T1ce and resampled to 1 mm isotropic, which leaves residual misregistration. Pre-contrast T1 is
typically a spin-echo image and T1ce a 3D gradient-echo one (e.g. MPRAGE), whose grey/white and
CSF contrasts differ (``phantom.TISSUE_SIGNAL``).

Up to generator 1.2 the phantom rendered all four sequences on the same grid from the same tissue
maps with near-identical T1/T1ce tissue signals, so T1ce - T1 cancelled healthy anatomy exactly:
a network could use T1 as a perfect reference for reading T1ce, which real data does not offer.
Study A's subset U-Nets and occlusion measured it (T1 + T1ce well above T1ce alone, occlusion
naming T1 for ET). ``acquire`` models the acquisition per sequence:

- a 2D acquisition of slice thickness ``d`` along the slice axis: the image is averaged over a
  Gaussian slice profile of FWHM ``d``, sampled every ``d`` mm (random offset) and linearly
  interpolated back onto the grid (BraTS's resampling to 1 mm);
- a rigid residual misregistration to T1ce: a translation with sd ``REGISTRATION_SD_MM`` per axis.

T1ce is the registration target and a 3D isotropic scan: it is left as rendered. Labels are drawn
in T1ce space and never move. Draws come from the subject's RNG and do not depend on any
domain-shift option.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import ndimage

# Slice axis of each orientation on the phantom grid (RAS voxel axes: x = 0, y = 1, z = 2).
ORIENTATION_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
# Per sequence: the orientations a site may use, and the slice thickness range (mm), uniform.
ACQUISITION = {
    "t1": {"orientations": ("sagittal", "axial"), "thickness_mm": (1.0, 6.0)},
    "t1ce": None,  # 3D, ~1 mm isotropic, the registration target
    "t2": {"orientations": ("axial",), "thickness_mm": (2.0, 6.0)},
    "flair": {"orientations": ("axial", "coronal", "sagittal"), "thickness_mm": (2.0, 6.0)},
}
REGISTRATION_SD_MM = 0.5  # residual rigid misregistration to T1ce, sd per axis
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def thick_slices(image: np.ndarray, axis: int, thickness_mm: float, voxel_mm: float, offset: float) -> np.ndarray:
    """``image`` as a 2D acquisition with slices ``thickness_mm`` thick along ``axis``, resampled back.

    The grid voxel already averages ``voxel_mm``; the slice profile adds a Gaussian of FWHM
    sqrt(d^2 - voxel^2). Slice centres lie at ``offset`` + k d (offset in [0, 1) of a slice);
    every grid position is linearly interpolated between the two nearest slice centres. A
    thickness at or below the grid's voxel size returns the image unchanged (a copy).
    """
    image = np.asarray(image, dtype=np.float32)
    step = thickness_mm / voxel_mm  # slice spacing in voxels
    if step <= 1.0:
        return image.copy()
    sigma = math.sqrt(thickness_mm ** 2 - voxel_mm ** 2) * FWHM_TO_SIGMA / voxel_mm
    profiled = ndimage.gaussian_filter1d(image, sigma, axis=axis, mode="nearest")
    n = image.shape[axis]
    centres = (offset + np.arange(-1, int(math.ceil(n / step)) + 2)) * step
    sampled = np.stack([_linear_take(profiled, axis, c) for c in centres], axis=axis)
    # each grid position from the slices around it: position i sits at (i / step - offset) + 1 in `sampled`
    positions = np.arange(n) / step - offset + 1.0
    return _linear_resample(sampled, axis, positions).astype(np.float32)


def _linear_take(volume: np.ndarray, axis: int, position: float) -> np.ndarray:
    """The plane at fractional ``position`` along ``axis`` (clamped at the edges), linearly."""
    n = volume.shape[axis]
    p = min(max(position, 0.0), n - 1.0)
    lo = int(math.floor(p))
    hi = min(lo + 1, n - 1)
    w = p - lo
    return (1.0 - w) * np.take(volume, lo, axis=axis) + w * np.take(volume, hi, axis=axis)


def _linear_resample(volume: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    lo = np.clip(np.floor(positions).astype(int), 0, volume.shape[axis] - 1)
    hi = np.clip(lo + 1, 0, volume.shape[axis] - 1)
    shape = [1] * volume.ndim
    shape[axis] = len(positions)
    w = (positions - np.floor(positions)).reshape(shape).astype(np.float32)
    return (1.0 - w) * np.take(volume, lo, axis=axis) + w * np.take(volume, hi, axis=axis)


def acquire(rng: np.random.Generator, images: Mapping[str, np.ndarray], voxel_mm: float) -> tuple[dict, dict]:
    """Each sequence's acquisition applied to its noise-free image; returns (images, facts).

    facts per modality: orientation, thickness_mm and shift_mm (what was drawn), so phantom.json
    says how every subject was "scanned". Draws happen for every modality in a fixed order,
    whatever the images contain, so they never shift other draws of the subject.
    """
    out, facts = {}, {}
    for mod, image in images.items():
        spec = ACQUISITION.get(mod)
        if spec is None:
            out[mod] = image
            facts[mod] = {"orientation": "3d", "thickness_mm": None, "shift_mm": [0.0, 0.0, 0.0]}
            continue
        orientation = spec["orientations"][int(rng.integers(len(spec["orientations"])))]
        thickness = float(rng.uniform(*spec["thickness_mm"]))
        offset = float(rng.uniform(0.0, 1.0))
        shift_mm = rng.normal(0.0, REGISTRATION_SD_MM, 3)
        acquired = thick_slices(image, ORIENTATION_AXIS[orientation], thickness, voxel_mm, offset)
        acquired = ndimage.shift(acquired, shift_mm / voxel_mm, order=1, mode="nearest")
        out[mod] = acquired.astype(np.float32)
        facts[mod] = {"orientation": orientation, "thickness_mm": round(thickness, 2),
                      "shift_mm": [round(float(s), 2) for s in shift_mm]}
    return out, {"acquisition": facts}


def acquisition_table(subject_facts) -> "pd.DataFrame":
    """One row per modality: how the cohort's subjects were "scanned" (orientations used, slice
    thickness min-median-max, residual shift RMS), from phantom.json's per-subject facts."""
    import pandas as pd

    rows = []
    for mod in ACQUISITION:
        drawn = [f["acquisition"][mod] for f in subject_facts if "acquisition" in f and mod in f["acquisition"]]
        if not drawn:
            continue
        thickness = [d["thickness_mm"] for d in drawn if d["thickness_mm"] is not None]
        shifts = np.array([d["shift_mm"] for d in drawn], dtype=float)
        orientations = pd.Series([d["orientation"] for d in drawn]).value_counts()
        rows.append({
            "modality": mod, "subjects": len(drawn),
            "orientations": ", ".join(f"{name} {count}" for name, count in orientations.items()),
            "slice thickness mm (min / median / max)": (
                f"{min(thickness):.1f} / {float(np.median(thickness)):.1f} / {max(thickness):.1f}" if thickness else "3D"),
            "misregistration RMS mm": float(np.sqrt((shifts ** 2).sum(1).mean())),
        })
    return pd.DataFrame(rows).set_index("modality") if rows else pd.DataFrame()
