"""Content fingerprints (sha256, hex): of library source, of arrays, of JSON-able keys.

One place for the hashes that decide when something computed earlier may be reused: the runner
skips a chapter whose inputs are unchanged (``lib.runner``), and a training run reuses weights
trained from the same inputs (``lib.training_cache``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from lib.paths import REPO_ROOT

__all__ = ["lib_source_fingerprint", "modules_fingerprint", "array_fingerprint", "json_fingerprint", "canonical_json"]

_CHUNK = 1 << 24  # bytes hashed per update: bounds the extra memory for a large, non-contiguous array


def lib_source_fingerprint() -> str:
    """Hash of every ``lib/**/*.py`` (paths and bytes): any change of library code changes it."""
    h = hashlib.sha256()
    for path in sorted((REPO_ROOT / "lib").rglob("*.py")):
        h.update(str(path.relative_to(REPO_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def modules_fingerprint(names: tuple[str, ...]) -> str:
    """Hash of the named modules' sources (name and bytes of each): a key part for results that
    only those modules decide (the slice cache, the cohort check's memo)."""
    import importlib

    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()


def array_fingerprint(array: np.ndarray) -> str:
    """Hash of an array's dtype, shape and values (C order), whatever its memory layout.

    Hashed in slabs along the first axis, so a view that is not contiguous is copied a slab at a
    time, never whole (the paper profile's training images are ~20 GB)."""
    if not getattr(array, "gathers_rows", False):  # lib.data.slices.ImageSelection is hashed as it is gathered
        array = np.asarray(array)
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}|{array.shape}".encode())
    if array.ndim == 0 or array.size == 0:
        h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()
    per_row = max(1, array[0].nbytes)
    step = max(1, _CHUNK // per_row)
    for start in range(0, array.shape[0], step):
        h.update(np.ascontiguousarray(array[start:start + step]).data)
    return h.hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal objects give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def json_fingerprint(obj: Any) -> str:
    """Hash of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
