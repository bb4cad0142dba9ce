"""The cohort a run uses: the embedded phantom (generated on first use) or the user's BraTS
folder, validated before any work and fingerprinted by content.

Validation and full content hashing read every file; their result is remembered in the
cache folder under a quick key (relative paths, sizes, modification times), so an unchanged
cohort is checked once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lib import io
from lib.fingerprint import modules_fingerprint
from lib.paths import display, folder_for_key, resolve


class CohortError(ValueError):
    """The cohort folder cannot be used as asked; ``str(err)`` is one line."""


@dataclass(frozen=True)
class Cohort:
    root: Path
    subjects: list
    fingerprint: str
    synthetic: bool


def phantom_spec(params: Mapping[str, Any]):
    from lib.data.phantom import PhantomSpec

    return PhantomSpec(
        n_subjects=params["phantom_subjects"],
        seed=params["phantom_seed"],
        resolution_mm=params["phantom_resolution_mm"],
        hgg_fraction=params["phantom_hgg_fraction"],
        contrast_gain=dict(params.get("phantom_contrast_gain") or {}),
    )


def tumour_free_twin(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The params of the cohort's tumour-free twin, or None when ``twin_tumour_free`` is empty.

    The twin is the same phantom (subjects, random draws, labels, every other modality) with the
    modalities in ``twin_tumour_free`` rendered as if no tumour were there (``phantom_contrast_gain``
    0 for them), in ``<data_dir>-twin-<modalities>``. A real cohort has no twin: a scan cannot be
    re-rendered without its tumour, so asking for one there is an error.
    """
    names = list(params.get("twin_tumour_free") or [])
    if not names:
        return None
    if params["data_source"] != "phantom":
        raise CohortError(f"twin_tumour_free: {'+'.join(names)} needs data_source: phantom (a real scan cannot be "
                          "re-rendered without its tumour); set twin_tumour_free: []")
    gain = {**dict(params.get("phantom_contrast_gain") or {}), **{name: 0.0 for name in names}}
    return {**params, "phantom_contrast_gain": gain, "data_dir": f"{params['data_dir']}-twin-{'-'.join(names)}"}


def check_phantom_place(root: Path) -> None:
    """CohortError (one line) unless a phantom can be generated or kept at ``root``: not a file,
    not inside a file, not a non-empty folder that is not a phantom (never touched)."""
    from lib.data.phantom import read_phantom_spec

    if root.exists() and not root.is_dir():
        raise CohortError(f"{display(root)}: data_dir is a file, not a folder (data_source: phantom); "
                          "choose another data_dir")
    in_a_file = next((parent for parent in root.parents if parent.exists() and not parent.is_dir()), None)
    if in_a_file is not None:
        raise CohortError(f"{display(in_a_file)}: is a file, not a folder, so data_dir {display(root)} cannot be "
                          "made (data_source: phantom); choose another data_dir")
    if root.exists() and any(root.iterdir()) and read_phantom_spec(root) is None:
        raise CohortError(f"{display(root)}: exists but is not a phantom cohort (no valid phantom.json); "
                          "set data_source: folder to use it, or choose another data_dir")


def ensure_phantom(root: Path, spec) -> None:
    """Generate the phantom at ``root`` unless the same phantom (spec and generator version) is
    already there. Another phantom there is regenerated (it is a reproducible build product);
    a folder that is not a phantom is never touched (see :func:`check_phantom_place`)."""
    from lib.data.phantom import generate_cohort, is_same_phantom

    check_phantom_place(root)
    if root.exists() and is_same_phantom(root, spec):
        return
    # Runs side by side can need the same phantom (make book's ET and TC pages, both with the
    # tumour-free twin): one generates it, the others wait and then find it made, instead of
    # each replacing the folder while another may be reading it.
    with _exclusive(root.parent / f".{root.name}.lock"):
        if root.exists() and is_same_phantom(root, spec):
            return
        verb = "regenerating" if root.exists() else "generating"
        print(f"{verb} the synthetic phantom cohort in {display(root)} ({spec.n_subjects} subjects)", flush=True)
        generate_cohort(root, spec, overwrite=True)


@contextlib.contextmanager
def _exclusive(lock_file: Path):
    """Hold an exclusive advisory lock on ``lock_file`` (created if needed) for the block; the
    operating system releases it when the process ends, so a killed run leaves no stale lock.
    Without fcntl (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def quick_key(root: Path, extra: Mapping[str, Any]) -> str:
    """Cheap identity of a folder's files (paths, sizes, mtimes) plus what was asked of it."""
    h = hashlib.sha256(json.dumps(dict(extra), sort_keys=True).encode())
    from lib.data.cache import visible_files

    for relative, path in visible_files(root):  # linked subject folders included
        stat = path.stat()
        h.update(f"{relative}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def validator_fingerprint() -> str:
    """Hash of the modules that decide whether a cohort is valid: a check recorded by another
    version of them (one that lacked a check added since) is not trusted, the cohort is checked again."""
    return modules_fingerprint(("lib.data.layout", "lib.data.labels", "lib.data.validate"))


def cohort_root(params: Mapping[str, Any]) -> Path:
    """The folder ``data_dir`` names (see :func:`lib.paths.resolve`); CohortError naming the key
    when it cannot be worked out."""
    try:
        return resolve(params["data_dir"])
    except ValueError as err:
        raise CohortError(f"key 'data_dir': {err}") from None


def read_memo(memo: Path) -> str | None:
    """The fingerprint a cohort check file (written after validation) records, or None when it
    is absent or damaged (not JSON, not a mapping, not marked valid, or no sha256 hex
    fingerprint): the cohort is then validated again, never trusted on a damaged record."""
    try:
        record = io.read_json(memo)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("valid") is not True:
        return None
    fingerprint = record.get("fingerprint")
    if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        return None
    return fingerprint


def prepare_cohort(params: Mapping[str, Any]) -> Cohort:
    """Generate (phantom) or locate the cohort, validate it, and fingerprint it.

    Raises CohortError or lib.data.validate.InvalidCohortError before anything is written
    (other than a freshly generated phantom).
    """
    from lib.data.cache import cohort_fingerprint
    from lib.data.layout import discover
    from lib.data.validate import require_valid

    root = cohort_root(params)
    synthetic = params["data_source"] == "phantom"
    if synthetic:
        ensure_phantom(root, phantom_spec(params))
    elif root.exists() and not root.is_dir():
        raise CohortError(f"{display(root)}: data_dir is a file, not a folder (data_source: folder)")
    elif not root.is_dir():
        raise CohortError(f"{display(root)}: data_dir does not exist (data_source: folder)")
    else:
        from lib.data.phantom import is_synthetic_folder

        synthetic = is_synthetic_folder(root)  # a phantom read as a folder is still synthetic

    asked = {"modalities": list(params["modalities"]), "label_convention": params["label_convention"]}
    try:
        cache_root = folder_for_key("cache_dir", params["cache_dir"])
    except ValueError as err:
        raise CohortError(str(err)) from None
    memo = cache_root / "cohorts" / f"{quick_key(root, {**asked, 'validator': validator_fingerprint()})}.json"
    fingerprint = read_memo(memo)
    if fingerprint is not None:
        try:
            subjects = discover(root, modalities=tuple(params["modalities"]))
            return Cohort(root, subjects, fingerprint, synthetic)
        except (ValueError, KeyError):
            pass  # validated again below, which says what is wrong
    subjects = require_valid(root, modalities=tuple(params["modalities"]), label_convention=params["label_convention"])
    fingerprint = cohort_fingerprint(root)
    io.write_json(memo, {"root": str(root), "fingerprint": fingerprint, "valid": True, **asked})
    return Cohort(root, subjects, fingerprint, synthetic)
