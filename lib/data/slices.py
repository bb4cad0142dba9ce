"""2-D axial slice sets cut from a BraTS cohort, the input of the 2-D models.

Per subject (``load_slices``): load every requested modality and the label, optionally
resample to ``target_spacing``, normalise each modality over the brain mask, crop in-plane
to the brain's bounding box (one square window for the whole volume), resize in-plane to
``image_size`` and keep the slices that pass the filter. The result is cached on disk keyed
by the cohort's content and every argument (``lib.data.cache``).

Slice ``z`` of a subject is ``volume[:, :, z]`` of its NIfTI array (axial = last axis),
neither flipped nor transposed: image rows are the NIfTI x axis, columns the y axis.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from lib.data.cache import cached, cohort_fingerprint
from lib.data.labels import LABEL_CONVENTIONS, REGION_LABELS, region_mask, to_canonical
from lib.data.layout import MODALITIES, Subject, canonical_modalities, discover, locate
from lib.data.preprocess import (NORMALISATIONS, bounding_box, brain_mask, crop_window, normalize, resample,
                                 resize_inplane)
from lib.data.splits import slice_indices
from lib.fingerprint import modules_fingerprint

CROPS = ("brain_bbox", "none")
SLICE_FILTERS = ("all", "brain", "tumour")


class ImageSelection:
    """``base[rows][:, channels]`` of an image array (N, C, H, W), gathered only when indexed.

    For a consumer that reads the images a batch at a time (training): it holds the row and channel
    indices, not a copy, so picking a cross-validation fold out of a cohort costs no second copy
    of its images (~20 GB at the paper profile's size). Indexing along the first axis (an int, a
    slice, an index or bool array) returns a numpy array; ``np.asarray`` gathers all of it.
    ``lib.fingerprint.array_fingerprint`` hashes it a slab at a time, to the same digest as the
    gathered array's.
    """

    gathers_rows = True  # read by lib.fingerprint: hash by slabs, never np.asarray the whole

    def __init__(self, base: np.ndarray, rows, channels):
        self.base = base
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self.channels = np.asarray(channels, dtype=np.int64).reshape(-1)
        self.shape = (len(self.rows), len(self.channels), *base.shape[2:])
        self.dtype = base.dtype
        self.ndim = base.ndim

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        rows = self.rows[index]
        if np.ndim(rows) == 0:
            return self.base[int(rows)][self.channels]
        return self.base[np.ix_(rows, self.channels)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        gathered = self[:]
        return gathered if dtype is None else gathered.astype(dtype, copy=False)


@dataclass
class SliceSet:
    """N axial slices from one or more subjects.

    images:      float32 (N, C, H, W), channels in the order of ``modalities``.
    labels:      uint8 (N, H, W), canonical sub-labels (0 background, 1 NCR, 2 ED, 3 ET).
    brain:       bool (N, H, W), non-zero in any modality.
    subject_ids: str (N,), the subject each slice comes from.
    slice_index: int (N,), z of the slice in its subject's (resampled) volume.
    grades:      object (N,), "HGG", "LGG" or None per slice.
    modalities:  canonical modality names, one per channel.
    """

    images: np.ndarray
    labels: np.ndarray
    brain: np.ndarray
    subject_ids: np.ndarray
    slice_index: np.ndarray
    grades: np.ndarray
    modalities: tuple[str, ...]

    def __post_init__(self):
        n = len(self.images)
        lengths = {len(a) for a in (self.labels, self.brain, self.subject_ids, self.slice_index, self.grades)}
        if lengths != {n}:
            raise ValueError(f"SliceSet arrays disagree on the number of slices: {sorted(lengths | {n})}")
        if self.images.ndim != 4 or self.images.shape[1] != len(self.modalities):
            raise ValueError(f"images shape {self.images.shape} does not match modalities {self.modalities}")

    def __len__(self) -> int:
        return len(self.images)

    def region(self, name: str) -> np.ndarray:
        """bool (N, H, W) mask of a region (ET, TC, WT) or sub-label (NCR, ED)."""
        return region_mask(self.labels, name)

    def subset(self, index) -> SliceSet:
        """The slices selected by ``index`` (integer indices, bool mask of length N, or a slice)."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        if not isinstance(index, slice):
            index = np.asarray(index)
        return SliceSet(self.images[index], self.labels[index], self.brain[index], self.subject_ids[index],
                        self.slice_index[index], self.grades[index], self.modalities)

    def select_modalities(self, names: Iterable[str]) -> SliceSet:
        """Channels picked and ordered by name (canonical names or aliases)."""
        names = self._channel_names(names)
        channels = [self.modalities.index(n) for n in names]
        return SliceSet(self.images[:, channels], self.labels, self.brain, self.subject_ids,
                        self.slice_index, self.grades, names)

    def for_subjects(self, ids: Iterable[str], modalities: Iterable[str] | None = None,
                     copy_images: bool = True) -> SliceSet:
        """The slices of the given subjects (patient-level selection, order kept), optionally with
        only the named channels: ``for_subjects(ids, names)`` equals
        ``for_subjects(ids).select_modalities(names)`` but copies the images once, not twice.
        ``copy_images=False``: the images are an :class:`ImageSelection` (gathered when indexed,
        for training) instead of a copy; labels and masks are copied either way (1/16 of the
        images' bytes for four channels)."""
        rows = slice_indices(self.subject_ids, ids)
        if modalities is None and copy_images:
            return self.subset(rows)
        names = self.modalities if modalities is None else self._channel_names(modalities)
        channels = [self.modalities.index(n) for n in names]
        images = self.images[np.ix_(rows, channels)] if copy_images else ImageSelection(self.images, rows, channels)
        return SliceSet(images, self.labels[rows], self.brain[rows], self.subject_ids[rows], self.slice_index[rows],
                        self.grades[rows], names)

    def _channel_names(self, names: Iterable[str]) -> tuple[str, ...]:
        names = canonical_modalities(names)
        missing = [n for n in names if n not in self.modalities]
        if missing:
            raise ValueError(f"modalities {missing} not in this slice set {list(self.modalities)}")
        return names

    def partition_by_subjects(self, *groups: Iterable[str]) -> tuple[SliceSet, ...]:
        """One slice set per group of subjects, as ``for_subjects(group)`` each, without copying.

        The slices are reordered **in place** so that each group's are contiguous (in their own
        order, as ``for_subjects`` gives them; slices of subjects in no group go last), and each
        returned set is a view of this one's arrays. This set is consumed: its order is no longer
        its own. Why: a hold-out split by copying held the cohort's images twice (train and test
        beside the whole), ~44 GB at the paper profile's size; this holds them once.
        """
        groups = [list(g) for g in groups]
        seen: set[str] = set()
        for group in groups:
            overlap = seen.intersection(group)
            if overlap:
                raise ValueError(f"subjects {sorted(overlap)} are in more than one group")
            seen.update(group)
        rows = [slice_indices(self.subject_ids, group) for group in groups]
        taken = np.concatenate([np.zeros(0, np.int64)] + rows)
        rest = np.setdiff1d(np.arange(len(self)), taken)
        order = np.concatenate([taken, rest])
        for array in (self.images, self.labels, self.brain, self.subject_ids, self.slice_index, self.grades):
            permute_rows_in_place(array, order)
        bounds = np.cumsum([0] + [len(r) for r in rows])
        return tuple(self.subset(slice(int(a), int(b))) for a, b in zip(bounds[:-1], bounds[1:]))


def permute_rows_in_place(array: np.ndarray, order: np.ndarray) -> None:
    """Reorder ``array`` along its first axis so that new ``array[i]`` is old ``array[order[i]]``,
    holding one extra row at a time (cycle by cycle) instead of a second copy of the array.

    ``order`` must be a permutation of ``range(len(array))`` (checked)."""
    order = np.asarray(order, dtype=np.int64)
    n = len(array)
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValueError(f"order must be a permutation of range({n})")
    if array.ndim == 1:  # one value per row: a copy costs nothing worth saving
        array[:] = array[order]
        return
    done = order == np.arange(n)
    for start in np.flatnonzero(~done):
        if done[start]:
            continue
        held = array[start].copy()
        position = start
        while True:
            source = order[position]
            done[position] = True
            if source == start:
                array[position] = held
                break
            array[position] = array[source]
            position = source


def _check_arguments(image_size, normalisation, crop, crop_margin, slice_filter, min_region_pixels,
                     filter_region, max_slices_per_subject, label_convention) -> None:
    if int(image_size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; allowed: {', '.join(NORMALISATIONS)}")
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; allowed: {', '.join(CROPS)}")
    if int(crop_margin) < 0:
        raise ValueError(f"crop_margin must be >= 0, got {crop_margin}")
    if slice_filter not in SLICE_FILTERS:
        raise ValueError(f"unknown slice_filter {slice_filter!r}; allowed: {', '.join(SLICE_FILTERS)}")
    if filter_region not in REGION_LABELS:
        raise ValueError(f"unknown filter_region {filter_region!r}; allowed: {', '.join(REGION_LABELS)}")
    if int(min_region_pixels) < 1:
        raise ValueError(f"min_region_pixels must be >= 1, got {min_region_pixels}")
    if max_slices_per_subject is not None and int(max_slices_per_subject) < 1:
        raise ValueError(f"max_slices_per_subject must be >= 1 or None, got {max_slices_per_subject}")
    if label_convention != "auto" and label_convention not in LABEL_CONVENTIONS:
        raise ValueError(f"unknown label_convention {label_convention!r}; "
                         f"allowed: auto, {', '.join(LABEL_CONVENTIONS)}")


def even_subsample(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n): all n if k >= n, the middle one if k == 1,
    else first and last included."""
    if k >= n:
        return np.arange(n)
    if k == 1:
        return np.array([n // 2])
    # floor(x + 0.5), not round(): numpy rounds halves to even, which could repeat an index.
    return np.floor(np.linspace(0, n - 1, k) + 0.5).astype(int)


def square_window(mask2d: np.ndarray, margin: int) -> tuple[list[int], list[int]]:
    """(starts, sizes) of the square in-plane window centred on the mask's bounding box grown by
    ``margin``; it may extend past the image (``crop_window`` pads with 0). Square, so the
    resize to image_size x image_size keeps the anatomy's aspect ratio."""
    box = bounding_box(mask2d, margin)
    side = max(s.stop - s.start for s in box)
    starts = [s.start - (side - (s.stop - s.start)) // 2 for s in box]
    return starts, [side, side]


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Data (scaling applied) and voxel spacing (mm, first 3 axes) of a NIfTI file, turned to the
    closest RAS orientation. BraTS releases commonly carry an LPS affine (diag(-1, -1, 1)), the
    phantom a RAS one, and an axial slice ``[:, :, z]`` must show the same anatomy the same way
    round (``lib.plots.oriented``) whichever way its file stored it. A RAS file is read as stored."""
    image = nib.as_closest_canonical(nib.load(path))
    return np.asanyarray(image.dataobj), np.asarray(image.header.get_zooms()[:3], dtype=float)


def _subject_slices(subject: Subject, modalities: tuple[str, ...], image_size: int, normalisation: str,
                    crop: str, crop_margin: int, target_spacing, slice_filter: str, min_region_pixels: int,
                    filter_region: str, max_slices_per_subject: int | None,
                    label_convention: str) -> dict[str, np.ndarray]:
    """One subject's kept slices: images (n, C, S, S), labels (n, S, S), brain (n, S, S), z (n,)."""
    volumes, spacing = {}, None
    for modality in modalities:
        data, spacing = _load(subject.images[modality])
        volumes[modality] = data.astype(np.float32)
    label_data, _ = _load(subject.label)
    try:
        labels = to_canonical(label_data, label_convention)
    except ValueError as exc:
        raise ValueError(f"{subject.label}: {exc}") from None
    reference, shape = subject.images[modalities[0]], volumes[modalities[0]].shape
    for path, array in [(subject.images[m], volumes[m]) for m in modalities] + [(subject.label, labels)]:
        if array.ndim != 3:
            raise ValueError(f"{path}: expected a 3-D volume, got shape {array.shape}")
        if array.shape != shape:
            raise ValueError(f"{path}: shape {array.shape} differs from {reference.name} {shape} "
                             f"(run `python -m lib validate`)")

    # The brain mask is taken on the acquired grid and resampled like the labels: linear
    # interpolation blends the zero background into the brain's edge, and a mask taken after it
    # would count those blended voxels as brain (and pull the normalisation's statistics).
    brain = brain_mask(volumes)
    if not brain.any():
        raise ValueError(f"{subject.subject_id}: every modality is zero everywhere (no brain)")
    if target_spacing is not None:
        volumes = {m: resample(v, spacing, target_spacing, order=1) for m, v in volumes.items()}
        labels = resample(labels, spacing, target_spacing, order=0)
        brain = resample(brain.astype(np.uint8), spacing, target_spacing, order=0).astype(bool)
    volumes = {m: normalize(v, brain, normalisation) for m, v in volumes.items()}

    plane = brain.any(axis=2) if crop == "brain_bbox" else np.ones(brain.shape[:2], dtype=bool)
    starts, sizes = square_window(plane, crop_margin if crop == "brain_bbox" else 0)
    images = np.stack([resize_inplane(crop_window(volumes[m], starts, sizes), image_size, order=1)
                       for m in modalities])                                      # (C, S, S, Z)
    cropped_labels = crop_window(labels, starts, sizes)
    lost = int(np.count_nonzero(labels)) - int(np.count_nonzero(cropped_labels))
    if lost:  # labels outside the brain's bounding square (BraTS labels lie inside the brain)
        warnings.warn(f"{subject.label}: {lost} labelled voxels lie outside the brain's bounding square "
                      f"and are cropped away (crop: brain_bbox, crop_margin {crop_margin})", stacklevel=2)
    labels = resize_inplane(cropped_labels, image_size, order=0)  # (S, S, Z)
    brain = resize_inplane(crop_window(brain, starts, sizes), image_size, order=0)    # (S, S, Z)

    if slice_filter == "all":
        keep = np.arange(labels.shape[2])
    elif slice_filter == "brain":
        keep = np.flatnonzero(brain.any(axis=(0, 1)))
    else:
        keep = np.flatnonzero(region_mask(labels, filter_region).sum(axis=(0, 1)) >= min_region_pixels)
    if max_slices_per_subject is not None:
        keep = keep[even_subsample(len(keep), int(max_slices_per_subject))]

    return {
        "images": np.moveaxis(images[..., keep], 3, 0).astype(np.float32),
        "labels": np.moveaxis(labels[..., keep], 2, 0).astype(np.uint8),
        "brain": np.moveaxis(brain[..., keep], 2, 0).astype(bool),
        "slice_index": keep.astype(np.int64),
    }


def _concatenate_releasing(chunks: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    """``np.concatenate(chunks)``, emptying ``chunks`` as it copies them.

    Each chunk is dropped as soon as it is in the result, so resident memory stays near one copy
    of the data (plus one chunk) instead of two: at the paper profile's size the images alone are
    ~22 GB (README, "RAM for the slices"). The result's pages are committed only as they are
    filled. ``empty`` gives the dtype and trailing shape when there are no chunks."""
    out = np.empty((sum(len(c) for c in chunks), *empty.shape[1:]), dtype=empty.dtype)
    start = 0
    chunks.reverse()  # pop() from the end takes them in their original order
    while chunks:
        chunk = chunks.pop()
        out[start:start + len(chunk)] = chunk
        start += len(chunk)
        del chunk
    return out


def _build(subjects: Sequence[Subject], modalities: tuple[str, ...], image_size: int, progress: bool,
           settings: dict) -> dict[str, np.ndarray]:
    """All subjects' slices as plain arrays (the cache's format: no Python objects)."""
    parts = {"images": [], "labels": [], "brain": [], "slice_index": [], "subject_ids": [], "grades": []}
    for subject in tqdm(subjects, desc="slicing subjects", unit="subject", disable=not progress):
        part = _subject_slices(subject, modalities, image_size, **settings)
        n = len(part["slice_index"])
        for name in ("images", "labels", "brain", "slice_index"):
            parts[name].append(part.pop(name))
        parts["subject_ids"].append(np.full(n, subject.subject_id))
        parts["grades"].append(np.full(n, subject.grade or ""))  # "" = unknown grade
    empty = {
        "images": np.zeros((0, len(modalities), image_size, image_size), np.float32),
        "labels": np.zeros((0, image_size, image_size), np.uint8),
        "brain": np.zeros((0, image_size, image_size), bool),
        "slice_index": np.zeros(0, np.int64),
    }
    arrays = {name: _concatenate_releasing(parts[name], empty[name]) for name in empty}
    # Strings: np.concatenate finds the common width (subject ids differ in length).
    for name in ("subject_ids", "grades"):
        arrays[name] = np.concatenate([np.zeros(0, str)] + parts[name])
    arrays["modalities"] = np.array(modalities)
    return arrays


def _to_slice_set(arrays: dict[str, np.ndarray]) -> SliceSet:
    grades = np.array([g if g else None for g in arrays["grades"].tolist()], dtype=object)
    return SliceSet(images=arrays["images"], labels=arrays["labels"], brain=arrays["brain"],
                    subject_ids=arrays["subject_ids"].astype(str), slice_index=arrays["slice_index"],
                    grades=grades, modalities=tuple(arrays["modalities"].tolist()))


# The modules whose code decides what load_slices returns: a change to any of them builds the
# slices again instead of reusing a cache entry the old code wrote.
_PREPROCESSING_MODULES = ("lib.data.slices", "lib.data.preprocess", "lib.data.labels", "lib.data.layout")


def preprocessing_code_digest() -> str:
    """sha256 over the source of the modules that turn a cohort into slices (part of the cache key)."""
    return modules_fingerprint(_PREPROCESSING_MODULES)


def load_slices(root: str | Path, modalities: Iterable[str] = MODALITIES, *, image_size: int = 64,
                normalisation: str = "zscore", crop: str = "brain_bbox", crop_margin: int = 2,
                target_spacing: float | Sequence[float] | None = None, slice_filter: str = "tumour",
                min_region_pixels: int = 1, filter_region: str = "WT", max_slices_per_subject: int | None = None,
                label_convention: str = "auto", cache_dir: str | Path | None = None,
                progress: bool = True) -> SliceSet:
    """Axial slices of every subject under ``root`` (any layout ``lib.data.layout`` reads).

    modalities:       channels, in this order (canonical names or aliases).
    image_size:       slices are resized in-plane to image_size x image_size.
    normalisation:    per modality over the brain mask: zscore, minmax, p95 or none.
    crop:             "brain_bbox" (square window around the brain, ``crop_margin`` voxels
                      wider on each side, the same for all slices) or "none" (whole slice).
    target_spacing:   mm (one value or one per axis) to resample to first; None keeps the files'.
    slice_filter:     "all"; "brain" (a brain pixel in the resized slice); "tumour"
                      (>= ``min_region_pixels`` of ``filter_region`` in the resized slice).
    max_slices_per_subject: keep at most this many of a subject's slices, spread evenly.
    label_convention: "auto" (per file), "brats2020" or "brats2023".
    cache_dir:        folder of cached results; a second call with the same cohort content
                      and arguments reads no NIfTI file.
    Every subject must have every modality and a label (``python -m lib validate`` says
    which do not).
    """
    modalities = canonical_modalities(modalities)
    _check_arguments(image_size, normalisation, crop, crop_margin, slice_filter, min_region_pixels,
                     filter_region, max_slices_per_subject, label_convention)
    if target_spacing is not None:
        target_spacing = [float(s) for s in np.atleast_1d(target_spacing)]
    settings = dict(normalisation=normalisation, crop=crop, crop_margin=int(crop_margin),
                    target_spacing=target_spacing, slice_filter=slice_filter,
                    min_region_pixels=int(min_region_pixels), filter_region=filter_region,
                    max_slices_per_subject=None if max_slices_per_subject is None else int(max_slices_per_subject),
                    label_convention=label_convention)

    def build() -> dict[str, np.ndarray]:
        subjects = discover(root, modalities, require_label=True)
        incomplete = [f"{s.subject_id} lacks {', '.join(_missing(s, modalities))}"
                      for s in subjects if _missing(s, modalities)]
        if incomplete:
            raise ValueError(f"{root}: incomplete subjects ({'; '.join(incomplete)}); "
                             f"run `python -m lib validate {root}`")
        return _build(subjects, modalities, int(image_size), progress, settings)

    locate(root)  # a missing or empty root fails here, with one line, before any hashing
    if cache_dir is None:
        return _to_slice_set(build())
    key = {"kind": "slices", "cohort": cohort_fingerprint(root), "modalities": list(modalities),
           "image_size": int(image_size), **settings, "code": preprocessing_code_digest()}
    return _to_slice_set(cached(cache_dir, key, build))


# The parameters that decide whether a slice is kept, named when none is.
_FILTER_KEYS = {"all": ("slice_filter", "crop", "target_spacing", "image_size"),
                "brain": ("slice_filter", "crop", "target_spacing", "image_size"),
                "tumour": ("slice_filter", "filter_region", "min_region_pixels", "crop", "target_spacing",
                           "image_size")}


def require_slices(slices: SliceSet, root: str | Path, params: Mapping[str, Any]) -> SliceSet:
    """``slices`` when there are some; else a ValueError naming the parameters that kept none, in
    one line (every later step, a split, a table, would fail on the empty set less clearly)."""
    if len(slices):
        return slices
    chosen = ", ".join(f"{key}={params.get(key)}" for key in _FILTER_KEYS.get(params.get("slice_filter"), ()))
    raise ValueError(f"{root}: no slice passes the slice filter ({chosen})")


def _missing(subject: Subject, modalities: tuple[str, ...]) -> list[str]:
    """The requested files a subject lacks: modality names, and "seg" for the label."""
    return [m for m in modalities if m not in subject.images] + (["seg"] if subject.label is None else [])
