"""A content-addressed cache of preprocessed arrays (.npz).

The key of an entry is the sha256 of the JSON of everything that determines its content:
the cohort's fingerprint (its files' bytes, not their dates), the modalities, every
preprocessing argument and ``CACHE_VERSION``. Changing any of them gives a new entry; an
entry never goes stale. Entries are written atomically, and an unreadable entry is rebuilt,
so an interrupted run can cost time but never give wrong data.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from lib.fingerprint import canonical_json
from lib.io import atomic_path

# Bump when a builder of cached arrays changes what it produces for the same arguments.
CACHE_VERSION = 1

FINGERPRINT_SUFFIXES = (".nii.gz", ".nii", ".csv")
_KEY_FIELD = "__cache_key__"  # the key's JSON, stored in the entry and checked on reading
_CHUNK = 1 << 20

# (root, listing of (relative path, size, mtime_ns)) -> fingerprint, for this process only:
# hashing a full BraTS cohort takes minutes and notebooks load the same cohort repeatedly.
_fingerprint_memo: dict[tuple, str] = {}


def visible_files(root: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every file under ``root`` outside hidden folders and not
    hidden itself, sorted, following linked folders as `lib.data.layout.discover` does (a cohort
    made of links to subject folders is common; Path.rglob does not enter them before Python 3.13,
    so their files would be missing from every fingerprint). A link back to a folder already
    walked is not walked again."""
    root = Path(root)
    files, walked = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:
            subfolders[:] = []
            continue
        walked.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in names:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file():
                files.append((path.relative_to(root).as_posix(), path))
    return sorted(files)


def _cohort_files(root: Path) -> list[tuple[str, Path]]:
    return [(relative, path) for relative, path in visible_files(root)
            if path.name.lower().endswith(FINGERPRINT_SUFFIXES)]


def cohort_fingerprint(root: str | Path) -> str:
    """sha256 (hex) over the relative paths and bytes of the cohort's NIfTI and CSV files.

    Independent of where the cohort lives, of file dates and of the file system's listing
    order, so the same download gives the same fingerprint on every machine.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: cohort folder does not exist")
    files = _cohort_files(root)
    stats = [path.stat() for _, path in files]
    listing = tuple((rel, st.st_size, st.st_mtime_ns) for (rel, _), st in zip(files, stats))
    memo_key = (str(root.resolve()), listing)
    if memo_key in _fingerprint_memo:
        return _fingerprint_memo[memo_key]

    digest = hashlib.sha256()
    for (rel, path), st in zip(files, stats):
        # Path and size delimit each file, so moving bytes between files changes the hash.
        digest.update(f"{rel}\0{st.st_size}\0".encode())
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    fingerprint = digest.hexdigest()
    _fingerprint_memo[memo_key] = fingerprint
    return fingerprint


def key_json(key_dict: Mapping) -> str:
    """Canonical JSON of a cache key, ``CACHE_VERSION`` included. Values must be JSON types."""
    return canonical_json({**key_dict, "cache_version": CACHE_VERSION})


def cache_path(cache_dir: str | Path, key_dict: Mapping) -> Path:
    """Where the entry for ``key_dict`` lives: <cache_dir>/<sha256 of key_json>.npz."""
    digest = hashlib.sha256(key_json(key_dict).encode()).hexdigest()
    return Path(cache_dir) / f"{digest}.npz"


def _read_entry(path: Path, expected_key: str) -> dict[str, np.ndarray] | None:
    """The arrays of an entry, or None if it is missing, unreadable or for another key."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            arrays = {name: entry[name] for name in entry.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    stored_key = arrays.pop(_KEY_FIELD, None)
    if stored_key is None or str(stored_key) != expected_key:
        return None
    return arrays


def cached(cache_dir: str | Path | None, key_dict: Mapping,
           build_fn: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays for ``key_dict``: read from the cache, or built by ``build_fn`` and stored.

    cache_dir: folder of entries (created if needed); None disables caching.
    build_fn:  returns name -> array; arrays must not hold Python objects (npz is read
               without pickle).
    """
    if cache_dir is None:
        return dict(build_fn())
    path = cache_path(cache_dir, key_dict)
    expected_key = key_json(key_dict)
    arrays = _read_entry(path, expected_key)
    if arrays is not None:
        return arrays

    arrays = {name: np.asarray(a) for name, a in build_fn().items()}
    if _KEY_FIELD in arrays:
        raise ValueError(f"{_KEY_FIELD} is reserved in cache entries")
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as stream:
            np.savez(stream, **arrays, **{_KEY_FIELD: np.array(expected_key)})
            stream.flush()
            os.fsync(stream.fileno())
    return arrays
