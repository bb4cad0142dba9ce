"""Segmentation label conventions and the nested tumour regions evaluated by BraTS.

Canonical sub-labels used inside the library (equal to the BraTS 2023 files):

  0 background, 1 NCR/NET (necrotic / non-enhancing core), 2 ED (oedema), 3 ET (enhancing).

BraTS 2021 and earlier write ET as 4 (3 is unused). The evaluated regions are nested:
ET = {3}, TC (tumour core) = ET + NCR = {1, 3}, WT (whole tumour) = TC + ED = {1, 2, 3}.
"""

from __future__ import annotations

import numpy as np

# File value -> canonical value, per convention.
LABEL_CONVENTIONS = {
    "brats2020": {0: 0, 1: 1, 2: 2, 4: 3},
    "brats2023": {0: 0, 1: 1, 2: 2, 3: 3},
}
REGIONS = ("ET", "TC", "WT")
SUBLABELS = ("NCR", "ED", "ET")
# Canonical values making up each region or sub-label.
REGION_LABELS = {
    "ET": (3,),
    "TC": (1, 3),
    "WT": (1, 2, 3),
    "NCR": (1,),
    "ED": (2,),
}


def present_values(label_array: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a label array (any dtype; floats as read by nibabel).

    Small non-negative integer labels, the normal case, are counted with ``bincount``,
    much faster than sorting a 240x240x155 volume.
    """
    array = np.asarray(label_array)
    if array.size == 0:
        return np.array([], dtype=array.dtype)
    if np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating):
        low, high = array.min(), array.max()
        if np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 255:
            as_int = array.astype(np.int64)
            if np.issubdtype(array.dtype, np.integer) or np.array_equal(as_int, array):
                return np.flatnonzero(np.bincount(as_int.ravel()))
    return np.unique(array)


def detect_convention(values) -> str:
    """"brats2020" if 4 is present, "brats2023" if 3 is present (and 4 is not), else "brats2020".

    ``values`` may be the distinct values or a whole label array. Without 3 or 4 the two
    conventions agree, so the choice does not matter.
    """
    present = set(present_values(np.asarray(values)).tolist())
    if 4 in present:
        return "brats2020"
    if 3 in present:
        return "brats2023"
    return "brats2020"


def _check_convention(convention: str) -> None:
    if convention not in LABEL_CONVENTIONS:
        raise ValueError(f"unknown label convention {convention!r}; "
                         f"known: auto, {', '.join(LABEL_CONVENTIONS)}")


def unexpected_values(values, convention: str) -> list:
    """The values (sorted, as Python numbers) that ``convention`` does not define."""
    _check_convention(convention)
    allowed = LABEL_CONVENTIONS[convention]
    bad = []
    for v in np.asarray(values).ravel().tolist():
        if not (isinstance(v, (int, float)) and float(v).is_integer() and int(v) in allowed):
            bad.append(int(v) if isinstance(v, float) and v.is_integer() else v)
    return bad


def format_values(values) -> str:
    """``[5, 7]``-style list of label values for messages (integers without a trailing .0)."""
    shown = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    return "[" + ", ".join(str(v) for v in shown) + "]"


def to_canonical(label_array: np.ndarray, convention: str = "auto") -> np.ndarray:
    """Map a label array of a file convention to canonical uint8 values; same shape.

    convention: "brats2020", "brats2023", or "auto" (``detect_convention`` on this array).
    Raises ValueError naming the values the convention does not define.
    """
    array = np.asarray(label_array)
    values = present_values(array)
    if convention == "auto":
        convention = detect_convention(values)
    bad = unexpected_values(values, convention)
    if bad:
        allowed = sorted(LABEL_CONVENTIONS[convention])
        raise ValueError(f"label values {format_values(bad)} are not in the {convention} convention "
                         f"(allowed {format_values(allowed)})")
    lookup = np.zeros(max(LABEL_CONVENTIONS[convention]) + 1, dtype=np.uint8)
    for file_value, canonical in LABEL_CONVENTIONS[convention].items():
        lookup[file_value] = canonical
    return lookup[array.astype(np.intp)]


def region_mask(canonical: np.ndarray, region: str) -> np.ndarray:
    """Boolean mask, same shape as ``canonical``, of a region (ET, TC, WT) or sub-label (NCR, ED)."""
    try:
        values = REGION_LABELS[region]
    except KeyError:
        raise ValueError(f"unknown region {region!r}; allowed: {', '.join(REGION_LABELS)}") from None
    return np.isin(canonical, values)
