"""The papers' preprocessing as pure functions on numpy arrays (no files, no state).

Volumes are BraTS NIfTI arrays indexed (x, y, z), z the axial slice axis. Functions that
crop or pad act on the leading axes named by their arguments, so a channel-last or
slice-last stack passes through unchanged on the remaining axes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

NORMALISATIONS = ("zscore", "minmax", "p95", "none")


def brain_mask(volumes: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Bool mask of voxels that are non-zero in any modality.

    volumes: one array, or modality -> array, or a sequence of arrays, all of one shape.
    BraTS volumes are skull-stripped with the background set to exactly 0, so non-zero
    anywhere means brain.
    """
    if isinstance(volumes, np.ndarray):
        return volumes != 0
    arrays = list(volumes.values()) if isinstance(volumes, Mapping) else list(volumes)
    if not arrays:
        raise ValueError("brain_mask needs at least one volume")
    mask = np.zeros(np.shape(arrays[0]), dtype=bool)
    for array in arrays:
        mask |= np.asarray(array) != 0
    return mask


def normalize(volume: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Intensity-normalise ``volume`` using the statistics of its voxels inside ``mask``.

    method:
      "zscore"  (v - mean) / sd over the mask; sd = 0 is treated as 1 (a constant modality
                becomes 0 rather than NaN).
      "minmax"  (v - min) / (max - min) over the mask, so the brain spans [0, 1]; a zero
                range gives 0.
      "p95"     v / 95th percentile of the mask's voxels (0 percentile treated as 1).
      "none"    unchanged.
    Outside the mask the result is 0 for every method but "none". Returns float32, same shape.
    Statistics are computed in float64 so large volumes do not lose precision.
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}; allowed: {', '.join(NORMALISATIONS)}")
    volume = np.asarray(volume)
    if method == "none":
        return volume.astype(np.float32)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != volume.shape:
        raise ValueError(f"mask shape {mask.shape} differs from volume shape {volume.shape}")
    if not mask.any():
        raise ValueError("cannot normalise over an empty mask")
    inside = volume[mask].astype(np.float64)
    if method == "zscore":
        sd = inside.std()
        offset, scale = inside.mean(), (sd if sd > 0 else 1.0)
    elif method == "minmax":
        low, high = inside.min(), inside.max()
        offset, scale = low, (high - low if high > low else 1.0)
    else:  # p95
        p95 = np.percentile(inside, 95)
        offset, scale = 0.0, (p95 if p95 != 0 else 1.0)
    result = np.zeros(volume.shape, dtype=np.float32)
    result[mask] = (inside - offset) / scale
    return result


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Smallest box holding every True voxel, grown by ``margin`` voxels per side and clipped
    to the array; one slice per axis. Raises ValueError for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("an empty mask has no bounding box")
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def crop_to_bbox(arrays, mask: np.ndarray, margin: int = 0):
    """Crop array(s) to ``bounding_box(mask, margin)``.

    arrays: one array, a sequence, or a name -> array mapping; each has the mask's shape as
    its leading axes. Returns the same kind of container.
    """
    box = bounding_box(mask, margin)
    if isinstance(arrays, np.ndarray):
        return arrays[box]
    if isinstance(arrays, Mapping):
        return {name: np.asarray(a)[box] for name, a in arrays.items()}
    return type(arrays)(np.asarray(a)[box] for a in arrays)


def crop_window(array: np.ndarray, starts: Sequence[int], sizes: Sequence[int], fill=0) -> np.ndarray:
    """The window ``array[starts[i] : starts[i] + sizes[i]]`` on the leading axes, where parts
    outside the array are filled with ``fill`` (starts may be negative or run past the end)."""
    array = np.asarray(array)
    out = np.full(tuple(sizes) + array.shape[len(sizes):], fill, dtype=array.dtype)
    source, target = [], []
    for start, size, length in zip(starts, sizes, array.shape):
        lo, hi = max(start, 0), min(start + size, length)
        if hi <= lo:
            return out
        source.append(slice(lo, hi))
        target.append(slice(lo - start, hi - start))
    out[tuple(target)] = array[tuple(source)]
    return out


def crop_or_pad_fixed(array: np.ndarray, shape: Sequence[int], fill=0) -> np.ndarray:
    """Centre-crop or zero-pad the leading ``len(shape)`` axes to ``shape``.

    The voxel at index ``n // 2`` lands at index ``size // 2`` (the centre stays the centre),
    so cropping undoes padding exactly, also for odd differences.
    """
    array = np.asarray(array)
    starts = [length // 2 - size // 2 for length, size in zip(array.shape, shape)]
    return crop_window(array, starts, shape, fill)


def resample(volume: np.ndarray, spacing: Sequence[float], target_spacing: Sequence[float] | float,
             order: int) -> np.ndarray:
    """Resample a volume from voxel ``spacing`` (mm per axis) to ``target_spacing``.

    order: spline order, 1 (linear) for images, 0 (nearest) for labels and masks; order 0
    keeps the dtype. Output shape is round(shape * spacing / target_spacing). Uses
    ``scipy.ndimage.zoom`` with ``grid_mode=True`` so voxel edges, not centres, are aligned
    (the field of view is preserved).
    """
    volume = np.asarray(volume)
    spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (volume.ndim,))
    target = np.broadcast_to(np.asarray(target_spacing, dtype=float), (volume.ndim,))
    if np.any(target <= 0) or np.any(spacing <= 0):
        raise ValueError(f"spacings must be positive, got {tuple(spacing)} -> {tuple(target)}")
    return _zoom(volume, spacing / target, order)


def _zoom(volume: np.ndarray, factors: Sequence[float], order: int) -> np.ndarray:
    new_shape = tuple(max(int(round(n * f)), 1) for n, f in zip(volume.shape, factors))
    if new_shape == volume.shape:
        return volume.copy()  # zoom by 1 would interpolate needlessly (and cost time)
    source = volume.astype(np.uint8) if volume.dtype == bool else volume
    # Factors from the wanted shape, so rounding inside zoom cannot give an off-by-one shape.
    exact = [n / o for n, o in zip(new_shape, volume.shape)]
    result = ndimage.zoom(source, exact, order=order, mode="nearest", grid_mode=True)
    return result.astype(bool) if volume.dtype == bool else result


def resize_slice(array2d: np.ndarray, size: int, order: int) -> np.ndarray:
    """Resize a 2-D (H, W) array to (size, size); order 1 for images, 0 for labels/masks."""
    array2d = np.asarray(array2d)
    if array2d.ndim != 2:
        raise ValueError(f"resize_slice expects a 2-D array, got shape {array2d.shape}")
    return _zoom(array2d, (size / array2d.shape[0], size / array2d.shape[1]), order)


def resize_inplane(volume: np.ndarray, size: int, order: int) -> np.ndarray:
    """Resize the first two axes of an (H, W, ...) stack to (size, size); other axes unchanged.

    Same result as ``resize_slice`` on every slice, in one call.
    """
    volume = np.asarray(volume)
    factors = (size / volume.shape[0], size / volume.shape[1]) + (1.0,) * (volume.ndim - 2)
    return _zoom(volume, factors, order)
