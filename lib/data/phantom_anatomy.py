"""Healthy anatomy of the phantom: the MNI152 2009 template, resampled, deformed, biased.

The template and its grey/white-matter probability maps ship inside the nilearn wheel
(``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``); they are
read directly with nibabel, never downloaded. CSF = brain mask (template T1 > 0.2 of its
maximum, as ``nilearn.datasets.load_mni152_brain_mask``) minus GM and WM.

``template(resolution_mm)`` is cached per resolution (read-only arrays), so a cohort pays the
resampling once. The grid is the brain's bounding box plus a margin, in RAS world
coordinates of the template, with the in-plane sizes (x, y) padded to a multiple of 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

TISSUES = ("gm", "wm", "csf")
_MARGIN_MM = 6.0
_INPLANE_MULTIPLE = 8
SHARPEN = 2.0


@dataclass(frozen=True)
class Template:
    """Tissue probabilities (gm, wm, csf; they sum to ``brain``) on the phantom grid."""

    resolution_mm: float
    affine: np.ndarray  # 4x4 voxel -> world (mm, RAS)
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray  # brain-mask probability (0..1) after resampling
    depth_mm: np.ndarray  # distance (mm) from the brain-mask boundary, inside the brain

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.gm.shape)

    def world(self, index) -> np.ndarray:
        """World coordinates (mm) of voxel index/indices (..., 3)."""
        index = np.asarray(index, dtype=float)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]


def template_dir() -> Path:
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data"


def _load_raw() -> tuple[dict[str, np.ndarray], np.ndarray]:
    import nibabel as nib

    maps = {}
    affine = None
    for name in ("t1", "gm", "wm"):
        img = nib.load(template_dir() / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")
        data = np.asarray(img.dataobj, dtype=np.float32)
        maps[name] = data / data.max()
        affine = img.affine if affine is None else affine
    return maps, np.asarray(affine, dtype=float)


@lru_cache(maxsize=4)
def template(resolution_mm: float = 2.0) -> Template:
    """The template resampled to ``resolution_mm`` (anti-aliased, trilinear), cached."""
    r = float(resolution_mm)
    maps, src_affine = _load_raw()
    mask = (maps["t1"] > 0.2).astype(np.float32)
    gm = np.minimum(maps["gm"], 1.0) * mask
    wm = np.minimum(maps["wm"], 1.0) * mask
    excess = np.maximum(gm + wm - 1.0, 0.0)  # keep gm + wm <= 1 voxel-wise
    gm = gm - excess * gm / np.maximum(gm + wm, 1e-6)
    wm = wm - excess * wm / np.maximum(gm + wm, 1e-6)
    csf = np.clip(mask - gm - wm, 0.0, 1.0)

    src_vox = np.abs(np.diag(src_affine)[:3])
    idx = np.argwhere(mask > 0)
    lo = idx.min(0) * src_vox - _MARGIN_MM
    hi = idx.max(0) * src_vox + _MARGIN_MM
    shape = np.ceil((hi - lo) / r).astype(int) + 1
    for axis in (0, 1):
        shape[axis] = int(math.ceil(shape[axis] / _INPLANE_MULTIPLE) * _INPLANE_MULTIPLE)
    centre = (lo + hi) / 2.0
    start = centre - (shape - 1) * r / 2.0  # in source-voxel mm, grid centred on the brain box
    sigma = [math.sqrt(max(r * r - v * v, 0.0)) / 2.3548 / v for v in src_vox]  # FWHM matched
    # Work on the brain's box only (plus room for the filter): half the voxels of the template.
    pad = int(math.ceil(_MARGIN_MM + 4 * max(sigma) + 2 * r))
    crop_lo = np.maximum(idx.min(0) - pad, 0)
    crop = tuple(slice(a, b) for a, b in zip(crop_lo, np.minimum(idx.max(0) + pad + 1, mask.shape)))
    mask, gm, wm, csf = mask[crop], gm[crop], wm[crop], csf[crop]
    coords = np.stack(np.meshgrid(*[(start[a] + r * np.arange(shape[a])) / src_vox[a] - crop_lo[a]
                                    for a in range(3)], indexing="ij"))

    def resample(vol: np.ndarray) -> np.ndarray:
        if max(sigma) > 0:
            vol = ndimage.gaussian_filter(vol, sigma, mode="constant")
        out = ndimage.map_coordinates(vol, coords, order=1, mode="constant", cval=0.0)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    gm_r, wm_r, csf_r = resample(gm), resample(wm), resample(csf)
    brain_r = np.clip(gm_r + wm_r + csf_r, 0.0, 1.0)
    # The template averages 152 brains: its tissue maps are blurrier than one subject's.
    # Sharpen them (p**SHARPEN, renormalised to the brain probability) for crisper boundaries.
    sharp = [m ** SHARPEN for m in (gm_r, wm_r, csf_r)]
    total = np.maximum(sum(sharp), 1e-6)
    gm_r, wm_r, csf_r = [(m / total * brain_r).astype(np.float32) for m in sharp]
    depth = ndimage.distance_transform_edt(brain_r > 0.5, sampling=r).astype(np.float32)

    affine = np.eye(4)
    affine[:3, :3] = src_affine[:3, :3] / src_vox * r
    affine[:3, 3] = src_affine[:3, 3] + src_affine[:3, :3] @ (start / src_vox)
    arrays = dict(gm=gm_r, wm=wm_r, csf=csf_r, brain=brain_r, depth_mm=depth)
    for arr in arrays.values():
        arr.setflags(write=False)
    affine.setflags(write=False)
    return Template(resolution_mm=r, affine=affine, **arrays)


def smooth_field(rng: np.random.Generator, shape, voxel_mm: float, corr_mm: float) -> np.ndarray:
    """Gaussian random field with unit sd and correlation length ~``corr_mm`` (float32).

    Long correlations are drawn on a coarse grid (spacing corr/2) and interpolated up, so a
    bias field or a deformation costs a few milliseconds, not a full-volume Gaussian filter.
    """
    shape = tuple(int(s) for s in shape)
    step = max(corr_mm / 2.0, voxel_mm)
    coarse = tuple(max(int(math.ceil(s * voxel_mm / step)) + 3, 4) for s in shape)
    noise = rng.standard_normal(coarse).astype(np.float32)
    noise = ndimage.gaussian_filter(noise, corr_mm / 2.0 / step, mode="wrap")
    if coarse != shape:
        noise = ndimage.zoom(noise, [s / c for s, c in zip(shape, coarse)], order=1, grid_mode=True, mode="nearest")
        noise = noise[tuple(slice(0, s) for s in shape)]
    noise -= noise.mean()
    return (noise / max(float(noise.std()), 1e-6)).astype(np.float32)


def texture_field(rng: np.random.Generator, shape, voxel_mm: float, corr_mm: float) -> np.ndarray:
    """Short-range Gaussian random field (unit sd) on a small box: intra-tumour texture."""
    sigma = max(corr_mm / voxel_mm, 0.5)
    noise = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)).astype(np.float32), sigma, mode="reflect")
    noise -= noise.mean()
    return noise / max(float(noise.std()), 1e-6)


def warp(maps: dict[str, np.ndarray], displacement_vox: np.ndarray) -> dict[str, np.ndarray]:
    """Pull-back warp: out(x) = map(x - u(x)), trilinear; ``displacement_vox`` is (3, *shape)."""
    grid = np.indices(displacement_vox.shape[1:], dtype=np.float32)
    coords = grid - displacement_vox
    return {k: ndimage.map_coordinates(v, coords, order=1, mode="constant", cval=0.0).astype(np.float32)
            for k, v in maps.items()}


def displacement(rng: np.random.Generator, tpl: Template, deformation_mm: float,
                 mass_centre_vox=None, mass_radius_mm: float = 0.0, mass_effect_mm: float = 0.0) -> np.ndarray:
    """Smooth random displacement (voxels; sd per component ``deformation_mm``, correlation
    ~25 mm) plus an optional radial push away from a tumour centre (mass effect), peaking at
    ``mass_radius_mm`` with ``mass_effect_mm`` and decaying outside."""
    r = tpl.resolution_mm
    u = np.stack([smooth_field(rng, tpl.shape, r, 25.0) for _ in range(3)]) * (deformation_mm / r)
    if mass_centre_vox is not None and mass_effect_mm > 0 and mass_radius_mm > 0:
        grid = np.indices(tpl.shape, dtype=np.float32)
        rel = (grid - np.asarray(mass_centre_vox, dtype=np.float32).reshape(3, 1, 1, 1)) * r
        dist = np.sqrt((rel ** 2).sum(0)) + 1e-3
        ratio = dist / mass_radius_mm
        push = mass_effect_mm * ratio * np.exp(1.0 - ratio)  # mm, 0 at the centre, max at the radius
        u += rel / dist * push / r
    return u.astype(np.float32)


def deformed_anatomy(rng: np.random.Generator, tpl: Template, deformation_mm: float, **mass) -> dict[str, np.ndarray]:
    """One subject's tissue maps: warped, renormalised inside the (binary) brain mask.

    Returns gm, wm, csf (fractions summing to 1 inside the brain, 0 outside) and ``brain``
    (bool).
    """
    u = displacement(rng, tpl, deformation_mm, **mass)
    w = warp({"gm": tpl.gm, "wm": tpl.wm, "csf": tpl.csf}, u)
    total = w["gm"] + w["wm"] + w["csf"]
    brain = total > 0.5
    scale = np.where(brain, 1.0 / np.maximum(total, 1e-6), 0.0).astype(np.float32)
    return {"gm": w["gm"] * scale, "wm": w["wm"] * scale, "csf": w["csf"] * scale, "brain": brain}
