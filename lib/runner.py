"""Run a chapter: parameters -> jupytext -> papermill -> ``results/<study>/<name>/``.

One run = one jupytext percent-format chapter (``book/*.py``) executed with one validated
parameter file. What a run leaves, all in ``results/<study>/<name>/``:

- ``notebook.ipynb``   the executed chapter (the book page is a copy of it)
- ``params.yaml``      the validated parameters, defaults filled in
- ``tables/*.csv``, ``figures/*``, ``checkpoints/*``   written by the chapter via lib.results
- ``summary.json``     the run's key figures, flat (read by the reproduction report and tools)
- ``manifest.json``    params, seed, package versions, git commit, data fingerprint, timings

Atomicity: the chapter runs in a hidden sibling folder ``.<name>.tmp-<host tag>-<pid>``
(`lib.io.writer_tag`); only a run that finished is renamed onto ``<name>/``, with
``manifest.json`` saying ``"status": "complete"``.
An interrupted or failed run never replaces a previous result, and a later run never trusts
a folder without a complete manifest. A run whose inputs (chapter source, parameters, lib
source, data fingerprint, the manifests of the runs it reads, and for a chapter that runs
``benchmarks/`` scripts their source) are unchanged is skipped.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lib import io, kernel, params as params_mod
from lib.io import os_error_line
from lib.fingerprint import lib_source_fingerprint
from lib.paths import BOOK_DIR, REPO_ROOT, RESULTS_ROOT, display, folder_for_key, resolve
from lib.progress_streams import collapse_progress_streams

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
NOTEBOOK = "notebook.ipynb"
# Packages whose versions go into every manifest.
TRACKED_PACKAGES = (
    "torch", "torchdyn", "torchdiffeq", "monai", "captum", "numpy", "scipy", "pandas", "scikit-learn",
    "statsmodels", "scikit-posthocs", "nibabel", "nilearn", "matplotlib", "papermill", "jupytext",
    "jupyter-book",
)


class RunError(RuntimeError):
    """A run failed; ``str(err)`` is one line saying where and why."""


@dataclass(frozen=True)
class RunOutcome:
    study: str
    name: str
    result_dir: Path
    skipped: bool
    seconds: float


def _sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def git_commit() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                                    capture_output=True, text=True, check=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# The kernel that executes a chapter inherits MPLBACKEND. With a non-interactive backend (the
# Makefile exports Agg for scripts and tests, as do many headless servers) plt.show() draws nothing
# into the notebook and every figure is missing from the book; the inline backend is headless too.
KERNEL_MPLBACKEND = "module://matplotlib_inline.backend_inline"


@contextmanager
def kernel_environment():
    """os.environ for a chapter's kernel while it starts: MPLBACKEND = the inline backend
    (figures land in the executed notebook); the caller's value is restored afterwards."""
    previous = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = KERNEL_MPLBACKEND
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = previous


def environment() -> dict[str, Any]:
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import torch

        from lib.device import cpu_kernels

        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        env["cpu_kernels"] = cpu_kernels()  # CPU results are bit-reproducible only on the same kernels
    except ImportError:
        env["cuda"] = None
    return env


def read_complete_manifest(result_dir: Path) -> dict[str, Any] | None:
    """The manifest of a finished run, or None when the folder is not a trusted result."""
    try:
        manifest = io.read_json(result_dir / MANIFEST)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("status") != "complete":
        return None
    if not all((result_dir / name).is_file() for name in (SUMMARY, NOTEBOOK)):  # a damaged result
        return None
    return manifest


def _remove_stale_temporaries(study_dir: Path, name: str, log: Callable[[str], None] = print) -> None:
    for stale in study_dir.glob(f".{name}.tmp-*"):
        if io.held_by_another_process(stale):  # another runner, here or on another machine, may be at work
            log(f"left {display(stale)}: another run of this page may still be writing it "
                "(remove it by hand once no run is)")
            continue
        shutil.rmtree(stale, ignore_errors=True)


def read_chapter(script: Path) -> str:
    """The chapter's source text; RunError (one line naming the file) when it is missing or
    unreadable, before anything is prepared or written."""
    if not script.is_file():
        raise RunError(f"{display(script)}: chapter not found")
    try:
        return script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else (err.strerror or type(err).__name__)
        raise RunError(f"{display(script)}: cannot read the chapter ({reason})") from None


def notebook_from_script(script: Path):
    """Read a jupytext percent-format chapter into a notebook node."""
    import jupytext

    nb = jupytext.reads(read_chapter(script), fmt=script.suffix.lstrip(".") or "py")  # one read of the file
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


# Chapter parameters the runner sets beside params_file/run_dir when the chapter's parameters cell
# declares them: a headless run builds no ipywidgets (nobody can use them, and nbclient can stall
# on widget messages, jupyter/nbclient#312: a study A run once hung 2.5 h in its explorer cell).
HEADLESS_PARAMETERS = {"live_widgets": False}


def headless_parameters(nb) -> dict[str, Any]:
    """The HEADLESS_PARAMETERS the notebook's ``parameters`` cell declares (papermill would warn
    about, and still inject, the others)."""
    import re

    declared = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            declared |= set(re.findall(r"^([A-Za-z_]\w*)\s*=", cell.source, flags=re.M))
    return {name: value for name, value in HEADLESS_PARAMETERS.items() if name in declared}


@dataclass(frozen=True)
class DataFingerprints:
    """What `prepare_inputs` found. ``combined``: the run's data input (the cohort, or with a
    tumour-free twin the hash of both); ``cohort``: the cohort alone (what a reader comparing
    runs on "the same data" needs; the manifest's ``cohort_fingerprint``)."""

    combined: str
    cohort: str


def prepare_inputs(params: Mapping[str, Any]) -> DataFingerprints | None:
    """Make sure the run's cohort (and its tumour-free twin, when asked for) exists and is valid;
    return their fingerprints (None: the chapter reads no data)."""
    if "data_source" not in params:
        return None
    from lib.data.cohort import prepare_cohort, tumour_free_twin

    fingerprint = prepare_cohort(params).fingerprint
    twin = tumour_free_twin(params)
    combined = fingerprint if twin is None else _sha256_text(fingerprint, prepare_cohort(twin).fingerprint)
    return DataFingerprints(combined, fingerprint)


def source_runs_fingerprint(params: Mapping[str, Any], *, restore: bool = True) -> str | None:
    """For a chapter that reads other runs' results (``source_runs: {label: folder}``): the hash of
    their manifests, so that it re-runs when any of them is re-run. None when it reads none.
    Raises RunError naming the first folder that is not a finished run.

    A source run stopped between the two renames of its swap is first put back, as a run of
    it would (``restore=True``); ``restore=False`` (a dry run) reads it where it is, moving nothing."""
    sources = params.get("source_runs")
    if not sources:
        return None
    parts = []
    for label, folder in sorted(sources.items()):
        path = resolve(folder)
        if restore:
            _recover_interrupted_swap(path)
        found = path if restore else previous_result_dir(path)
        if read_complete_manifest(found) is None:
            raise RunError(f"{display(path)}: not a finished run (no complete {MANIFEST}), named by "
                           f"source_runs.{label}; run it first")
        parts += [label, (found / MANIFEST).read_text(encoding="utf-8")]
    return _sha256_text(*parts)


BENCHMARKS_DIR = "benchmarks"


def benchmark_scripts_fingerprint(chapter_text: str, root: Path = REPO_ROOT) -> str | None:
    """For a chapter that runs the repository's benchmark scripts (its text names the
    ``benchmarks/`` folder; the cost page does): the hash of every ``benchmarks/**/*.py``, so
    that it re-runs when one of them changes. None for any other chapter."""
    if f"{BENCHMARKS_DIR}/" not in chapter_text:
        return None
    parts = []
    for path in sorted((root / BENCHMARKS_DIR).rglob("*.py")):
        parts += [str(path.relative_to(root)), path.read_text(encoding="utf-8")]
    return _sha256_text(*parts)


# A dry run's reasons for a page that cannot run: its data cannot be used, or a page it needs cannot run.
WILL_STOP = "it will stop before running: "
WONT_START = "it will not start: "


def cannot_run(reasons: Sequence[str]) -> bool:
    """Whether a dry run's reasons (``check_run``, ``book_status``) say the page cannot run."""
    return any(r.startswith((WILL_STOP, WONT_START)) for r in reasons)


# What a run's input fingerprint is made of, in this order (the reasons `check_run` gives).
INPUT_PARTS = {"chapter": "the chapter's source", "params": "its parameters", "lib": "the code in lib/",
               "data": "the data", "sources": "the runs it reads", "benchmarks": "the code in benchmarks/"}


@dataclass(frozen=True)
class RunInputs:
    """Everything that decides whether a run is up to date.

    ``parts``: the text of each input by ``INPUT_PARTS`` name (absent when a chapter has none);
    ``fingerprint``: their hash, the manifest's ``input_fingerprint``; ``unknown``: why some
    input cannot be known before running (only with ``prepare=False``), else empty;
    ``cohort_fingerprint``: the cohort without its twin, when known."""

    params: dict[str, Any]
    final_dir: Path
    parts: dict[str, str]
    unknown: tuple[str, ...] = ()
    cohort_fingerprint: str | None = None  # the cohort alone, as prepared (DataFingerprints.cohort)

    @property
    def fingerprint(self) -> str:
        return _sha256_text(*self.parts.values())

    def part_digests(self) -> dict[str, str]:
        """sha256 of each part, for the manifest (``input_parts``): what changed, later."""
        return {name: _sha256_text(text) for name, text in self.parts.items()}


def _phantom_to_generate(params: Mapping[str, Any]) -> list[str]:
    """The phantom folders a run would (re)generate before running: none for real data. Raises
    CohortError where the run would stop instead (a data_dir that cannot hold a phantom)."""
    if params.get("data_source") != "phantom":
        return []
    from lib.data.cohort import check_phantom_place, cohort_root, phantom_spec, tumour_free_twin
    from lib.data.phantom import is_same_phantom

    pending = []
    for p in [params] + [t for t in [tumour_free_twin(params)] if t is not None]:
        root = cohort_root(p)
        check_phantom_place(root)
        if not is_same_phantom(root, phantom_spec(p)):
            pending.append(f"the phantom cohort {display(root)} will be generated")
    return pending


def check_chapter_study(script: Path, params: Mapping[str, Any], params_file: str | Path) -> None:
    """A chapter of the book (``book/<study>.py``) runs only with its own study's parameter file:
    another study's file would fail deep in the notebook on a missing key, leaving a failed copy."""
    from lib.schemas import SCHEMAS

    chapter = script.resolve()
    if chapter.parent == BOOK_DIR.resolve() and chapter.stem in SCHEMAS and params["study"] != chapter.stem:
        raise RunError(f"{display(Path(params_file))}: a parameter file of study '{params['study']}'; "
                       f"{display(script)} takes one of study '{chapter.stem}'")


def run_inputs(script: str | Path, params_file: str | Path, overrides: Mapping[str, Any] | None = None, *,
               results_root: str | Path = RESULTS_ROOT, prepare: bool = True) -> RunInputs:
    """The inputs of ``script`` run with ``params_file`` (and ``overrides``).

    ``prepare=True`` (what ``run`` does): generate or validate the cohort first; a source run that
    has not finished raises RunError. ``prepare=False`` (a dry run): generate nothing; a phantom
    still to be made, a cohort that cannot be used, or an unfinished source run is listed in
    ``unknown`` instead."""
    script = Path(script)
    chapter_text = read_chapter(script)
    params = params_mod.load(params_file, overrides)
    check_chapter_study(script, params, params_file)
    from lib.data.cohort import CohortError
    from lib.data.validate import InvalidCohortError

    unknown: list[str] = []
    try:
        unknown += [] if prepare else _phantom_to_generate(params)
        data = None if unknown else prepare_inputs(params)
    except (CohortError, InvalidCohortError) as err:  # one line naming the folder and what is wrong
        if prepare:
            raise
        unknown.append(f"{WILL_STOP}{err}")
        data = None
    try:
        sources_fingerprint = source_runs_fingerprint(params, restore=prepare)
    except RunError:
        if prepare:
            raise
        unknown.append("a run it reads (source_runs) has no finished result")
        sources_fingerprint = None
    benchmarks_fingerprint = benchmark_scripts_fingerprint(chapter_text)
    parts = {"chapter": chapter_text, "params": params_mod.dump(params), "lib": lib_source_fingerprint(),
             "data": data.combined if data else ""}
    if sources_fingerprint:
        parts["sources"] = sources_fingerprint
    if benchmarks_fingerprint:
        parts["benchmarks"] = benchmarks_fingerprint
    return RunInputs(params, Path(results_root) / params["study"] / params["name"], parts, tuple(unknown),
                     data.cohort if data else None)


def check_run(script: str | Path, params_file: str | Path, overrides: Mapping[str, Any] | None = None, *,
              results_root: str | Path = RESULTS_ROOT) -> list[str]:
    """Why ``run`` would execute the chapter now; an empty list when it would skip it (up to date).

    Runs no chapter and writes no result. Like ``run``, it fingerprints the cohort, which the
    first time validates it and keeps its fingerprint under ``cache_dir``; a cohort that cannot
    be used is a reason (``WILL_STOP``), not an error."""
    inputs = run_inputs(script, params_file, overrides, results_root=results_root, prepare=False)
    previous = read_complete_manifest(previous_result_dir(inputs.final_dir))  # as run, restoring nothing
    if previous is None:
        return [f"no finished result in {display(inputs.final_dir)}", *inputs.unknown]
    if inputs.unknown:
        return list(inputs.unknown)
    if previous.get("input_fingerprint") == inputs.fingerprint:
        return []
    recorded = previous.get("input_parts")
    if not isinstance(recorded, dict):
        return ["its inputs changed (the result records no per-input digests: made before they were kept)"]
    now = inputs.part_digests()
    changed = [f"{label} changed" + (_changed_keys(previous.get("params"), inputs.params) if name == "params" else "")
               for name, label in INPUT_PARTS.items() if now.get(name) != recorded.get(name)]
    return changed or ["its inputs changed"]


def _changed_keys(before: Any, now: Mapping[str, Any], shown: int = 3) -> str:
    """`` (num_threads: 1 → 2, seeds: [0] → [0, 1])``: which parameters differ from the recorded
    ones (``--jobs`` alone changes num_threads), or "" when the manifest does not say."""
    if not isinstance(before, dict):
        return ""
    keys = sorted(k for k in set(before) | set(now) if before.get(k, "—") != now.get(k, "—"))
    if not keys:
        return ""
    listed = ", ".join(f"{k}: {before.get(k, '—')} → {now.get(k, '—')}" for k in keys[:shown])
    return f" ({listed}{f' and {len(keys) - shown} more' if len(keys) > shown else ''})"


def run(
    script: str | Path,
    params_file: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    results_root: str | Path = RESULTS_ROOT,
    force: bool = False,
    book_page: str | None = None,
    log: Callable[[str], None] = print,
    log_output: bool = True,
) -> RunOutcome:
    """Execute ``script`` with ``params_file`` into ``results_root/<study>/<name>/``.

    Raises ParamsError (invalid parameters, nothing written), InvalidCohortError (invalid
    data, nothing written) or RunError (the chapter failed; the previous result is kept and
    the failed notebook is saved beside it as ``<name>.failed.ipynb``).
    """
    import papermill

    script, params_file = Path(script), Path(params_file)
    inputs = run_inputs(script, params_file, overrides, results_root=results_root)
    params, final_dir = inputs.params, inputs.final_dir
    nb = notebook_from_script(script)
    data_fingerprint = inputs.parts["data"] or None
    study, name = params["study"], params["name"]
    study_dir = final_dir.parent
    input_fingerprint = inputs.fingerprint
    _recover_interrupted_swap(final_dir, log)
    previous = read_complete_manifest(final_dir)
    if not force and previous and previous.get("input_fingerprint") == input_fingerprint:
        log(f"up to date: {display(final_dir)} (inputs unchanged; --force re-runs)")
        _publish_page(final_dir, book_page)
        return RunOutcome(study, name, final_dir, True, 0.0)

    if params.get("training_cache_dir"):  # a cache that cannot be written fails now, not an hour in
        try:
            folder_for_key("training_cache_dir", params["training_cache_dir"])
        except ValueError as err:
            raise RunError(f"{display(params_file)}: {err}") from None
    study_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(study_dir, name, log)
    work_dir = study_dir / f".{name}.tmp-{io.writer_tag()}"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir()
    started = time.time()
    # The commit of the code this run imports: taken now, since a commit made while a long run
    # is going would otherwise be recorded as its code.
    commit = git_commit()
    keep_work_dir = False  # True only when a finished run could be kept nowhere else
    try:
        resolved_params = work_dir / "params.yaml"
        io.write_text(resolved_params, params_mod.dump(params))
        source_nb = work_dir / ".source.ipynb"
        import nbformat

        nbformat.write(nb, str(source_nb))
        headless = headless_parameters(nb)
        log(f"running {display(script)} with {display(params_file)} -> {display(final_dir)}")
        try:
            with kernel_environment():
                papermill.execute_notebook(
                    str(source_nb),
                    str(work_dir / NOTEBOOK),
                    parameters={"params_file": str(resolved_params), "run_dir": str(work_dir),
                                **headless},
                    kernel_name="python3",
                    cwd=str(REPO_ROOT),
                    progress_bar=False,
                    log_output=log_output,
                    **kernel.execution_options(),
                )
        except Exception as err:  # papermill wraps the kernel's error
            failed = study_dir / f"{name}.failed.ipynb"
            kept = f"executed notebook: {display(failed)}"
            try:
                if (work_dir / NOTEBOOK).is_file():
                    io.write_bytes(failed, (work_dir / NOTEBOOK).read_bytes())
            except OSError as write_error:  # e.g. the disk is full: report the run's error, not this one
                kept = f"its executed notebook could not be kept: {os_error_line(write_error)}"
            reason = " ".join(str(getattr(err, "evalue", "") or err).split())[:300]
            ename = getattr(err, "ename", type(err).__name__)
            raise RunError(f"{display(script)} with {display(params_file)} failed: {ename}: {reason} "
                           f"({kept})") from None
        source_nb.unlink()
        _finalise_notebook(work_dir / NOTEBOOK, final_dir, params, script, headless)
        if not (work_dir / SUMMARY).is_file():
            raise RunError(f"{display(script)}: the chapter wrote no {SUMMARY} (every chapter must call "
                           "lib.results.RunDir.write_summary)")
        finished = time.time()
        manifest = {
            "status": "complete",
            "study": study,
            "name": name,
            "profile": params.get("profile"),
            "script": display(script),
            "params_file": display(params_file),
            "params": params,
            "overrides": dict(overrides or {}),
            "seed": params.get("seed"),
            "input_fingerprint": input_fingerprint,
            "input_parts": inputs.part_digests(),
            "data_fingerprint": data_fingerprint,
            "cohort_fingerprint": inputs.cohort_fingerprint,
            "git": commit,
            "packages": package_versions(),
            "environment": environment(),
            "timings": {"started": started, "finished": finished, "seconds": round(finished - started, 2)},
        }
        io.write_json(work_dir / MANIFEST, manifest)
        try:
            _swap_into_place(work_dir, final_dir)
        except OSError as err:  # the run finished: keep it where a later run will not delete it
            message, keep_work_dir = _keep_unplaced(work_dir, final_dir, err)
            raise RunError(message) from None
        (study_dir / f"{name}.failed.ipynb").unlink(missing_ok=True)  # superseded by this success
    finally:
        if not keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    log(f"done in {time.time() - started:.1f} s: {display(final_dir)}")
    _publish_page(final_dir, book_page)
    return RunOutcome(study, name, final_dir, False, time.time() - started)


def _finalise_notebook(path: Path, final_dir: Path, params: Mapping[str, Any], script: Path,
                       headless: Mapping[str, Any] | None = None) -> None:
    """Make the executed notebook say where its results are (not the temporary folder it ran in),
    put the run's title on its first heading, so each target/profile page is named, and show each
    text progress bar as its final line (`lib.progress_streams`)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    collapse_progress_streams(nb)  # a progress bar's redraws -> its final line (the build log keeps them)
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = (f"# Parameters injected by the runner; the results are in {display(final_dir)}/\n"
                           f"params_file = {display(final_dir / 'params.yaml')!r}\n"
                           f"run_dir = {display(final_dir)!r}"
                           + "".join(f"\n{name} = {value!r}" for name, value in (headless or {}).items()))
            break
    papermill_meta = nb.metadata.get("papermill", {})
    papermill_meta["parameters"] = {"params_file": display(final_dir / "params.yaml"), "run_dir": display(final_dir),
                                    **(headless or {})}
    papermill_meta["input_path"] = display(script)
    papermill_meta["output_path"] = display(final_dir / NOTEBOOK)
    title = params.get("title")
    if title:
        for cell in nb.cells:
            if cell.cell_type == "markdown" and cell.source.startswith("# "):
                first, _, rest = cell.source.partition("\n")
                cell.source = f"# {title}\n{rest}"
                break
    nbformat.write(nb, str(path))


def _interrupted_swap(final_dir: Path) -> tuple[Path | None, list[Path]]:
    """What a :func:`_swap_into_place` stopped between its two renames left beside ``final_dir``:
    ``(restore, leftovers)``. ``restore`` is the ``.<name>.old-<host tag>-<pid>`` folder holding the previous
    complete result when ``final_dir`` is missing (else None); ``leftovers`` the other old folders.
    A folder whose runner is still alive is in neither. Looks only: changes nothing."""
    restore, leftovers = None, []
    for old in sorted(final_dir.parent.glob(f".{final_dir.name}.old-*")):
        if io.held_by_another_process(old):
            continue
        if restore is None and not final_dir.exists() and read_complete_manifest(old) is not None:
            restore = old
        else:
            leftovers.append(old)
    return restore, leftovers


def previous_result_dir(final_dir: Path) -> Path:
    """Where ``run`` finds the previous result of ``final_dir``: the folder itself, or the old
    folder of an interrupted swap that it would put back first (see :func:`_interrupted_swap`)."""
    restore, _ = _interrupted_swap(final_dir)
    return restore or final_dir


def _recover_interrupted_swap(final_dir: Path, log: Callable[[str], None] = print) -> None:
    """Undo a :func:`_swap_into_place` stopped between its two renames (the previous complete
    result is then only in ``.<name>.old-<host tag>-<pid>``): put it back; drop leftovers once ``final_dir``
    is there. A folder whose runner is still alive is left alone."""
    restore, leftovers = _interrupted_swap(final_dir)
    if restore is not None:
        os.replace(restore, final_dir)
        io.sync_dir(final_dir.parent)
        log(f"restored the previous result {display(final_dir)} (a run was stopped while replacing it)")
    for old in leftovers:
        shutil.rmtree(old, ignore_errors=True)


def _swap_into_place(work_dir: Path, final_dir: Path) -> None:
    """Replace ``final_dir`` by ``work_dir`` so that a complete result is always either the old
    or the new one (two renames; the old one is deleted only after the new one is in place).
    When the second rename fails (OSError), the old result is put back before the error goes on."""
    old = final_dir.with_name(f".{final_dir.name}.old-{io.writer_tag()}")
    moved_aside = final_dir.exists()
    if moved_aside:
        os.replace(final_dir, old)
    try:
        os.replace(work_dir, final_dir)
    except OSError:
        if moved_aside:
            os.replace(old, final_dir)
        raise
    io.sync_dir(final_dir.parent)
    shutil.rmtree(old, ignore_errors=True)


UNPLACED_SUFFIX = ".unplaced-"  # <name>.unplaced-<time>/: a finished run that could not replace <name>/


def _keep_unplaced(work_dir: Path, final_dir: Path, err: OSError) -> tuple[str, bool]:
    """A finished run whose folder could not be put in place: move it to ``<name>.unplaced-<time>/``
    (not hidden, not a name a later run deletes or trusts). Returns the one-line error saying where
    it is, and whether it is still in ``work_dir`` (that move failed too), which the caller must
    then not delete (the next run of the page does, as with every dead run's temporary folder:
    the message says so)."""
    kept = final_dir.with_name(final_dir.name + UNPLACED_SUFFIX + time.strftime("%Y%m%d-%H%M%S"))
    still_in_work_dir = False
    try:
        if kept.exists():  # an earlier unplaced run of this page, this very second: keep both
            raise FileExistsError(errno.EEXIST, "exists", str(kept))
        os.replace(work_dir, kept)
        where = f"it is in {display(kept)}: move it to {display(final_dir)} by hand once the cause is fixed"
    except OSError:
        still_in_work_dir = True
        where = (f"it is in {display(work_dir)} (the next run of this page deletes that folder): "
                 f"move it to {display(final_dir)} by hand once the cause is fixed")
    restore, _ = _interrupted_swap(final_dir)  # the old result moved aside and not put back
    previous = ("the previous result is unchanged" if final_dir.exists() else
                f"the previous result is in {display(restore)}; the next run of this page puts it back"
                if restore is not None else "there was no previous result")
    return (f"{display(final_dir)}: the run finished but could not be put in place ({os_error_line(err)}); "
            f"{where} ({previous})"), still_in_work_dir


def _publish_page(result_dir: Path, page: str | None) -> None:
    if page:
        io.write_bytes(BOOK_DIR / f"{page}.ipynb", (result_dir / NOTEBOOK).read_bytes())


def prepare_notebook(script: str | Path, params_file: str | Path, out: str | Path,
                     overrides: Mapping[str, Any] | None = None) -> Path:
    """Write ``out`` (.ipynb) with the parameters injected but not executed (for nbval).

    Its ``run_dir`` is ``<out without suffix>-run/``, so executing it writes there. An earlier
    preparation of ``out`` is replaced; a file or folder of those names that no preparation wrote
    is a RunError, and nothing is deleted."""
    import nbformat
    import papermill

    script, out = Path(script), Path(out)
    params = params_mod.load(params_file, overrides)
    nb = notebook_from_script(script)
    run_dir = out.with_name(out.stem + "-run")
    for existing in (out, run_dir):
        if existing.exists() and not _prepared_here(out):
            raise RunError(f"{display(existing)}: exists and was not written by `python -m lib prepare`; "
                           "not replacing it (move it, or choose another --out)")
    prepare_inputs(params)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    resolved = out.with_name(out.stem + ".params.yaml")
    io.write_text(resolved, params_mod.dump(params))
    source_nb = out.with_name(f".{out.stem}.source.ipynb")
    nbformat.write(nb, str(source_nb))
    try:
        papermill.execute_notebook(str(source_nb), str(out), prepare_only=True, kernel_name="python3",
                                   parameters={"params_file": str(resolved.resolve()),
                                               "run_dir": str(run_dir.resolve()), **headless_parameters(nb)},
                                   progress_bar=False)
    finally:
        source_nb.unlink(missing_ok=True)
    return out


def prepare_book(plan_file: str | Path, profile: str, out: str | Path,
                 log: Callable[[str], None] = print) -> list[Path]:
    """Write every chapter of the book plan, parameters injected and not executed, into ``out``
    (for nbval), as ``NN-<page>.ipynb`` in plan order, so that nbval (which runs a folder's
    notebooks in name order) executes a page after the pages it ``needs``. A chapter that reads
    other runs (``source_runs``) is pointed at the folders the prepared pages write into.
    Notebooks left in ``out`` by an earlier preparation are removed first (nbval would run them);
    a notebook there that no preparation wrote is a RunError, raised before anything is deleted."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(out.glob("*.ipynb"))
    foreign = [nb for nb in notebooks if not _prepared_here(nb)]
    if foreign:
        raise RunError(f"{display(foreign[0])}: a notebook not written by `python -m lib prepare` in the folder "
                       "prepare-smoke fills and nbval runs; not deleting it (move it, or choose another --out)")
    for stale in notebooks:
        stale.unlink()
        shutil.rmtree(stale.with_name(stale.stem + "-run"), ignore_errors=True)
        stale.with_name(stale.stem + ".params.yaml").unlink(missing_ok=True)
    written, run_dirs = [], {}
    for number, entry in enumerate(load_book_plan(plan_file, profile), start=1):
        params = params_mod.load(REPO_ROOT / entry["params"])
        target = out / f"{number:02d}-{entry['page']}.ipynb"
        overrides = None
        if params.get("source_runs"):
            overrides = {"source_runs": {label: str(run_dirs.get(resolve(folder), folder))
                                         for label, folder in params["source_runs"].items()}}
        written.append(prepare_notebook(REPO_ROOT / entry["notebook"], REPO_ROOT / entry["params"], target, overrides))
        run_dirs[RESULTS_ROOT / params["study"] / params["name"]] = (target.with_name(target.stem + "-run")).resolve()
        log(f"prepared {written[-1]}")
    return written


def _prepared_here(notebook: Path) -> bool:
    """Whether ``notebook`` (existing or not) is where `prepare_notebook` wrote: it leaves the
    resolved parameters beside it as ``<stem>.params.yaml``, written before the notebook itself."""
    return notebook.with_name(notebook.stem + ".params.yaml").is_file()


def load_book_plan(path: str | Path, profile: str) -> list[dict[str, Any]]:
    """Read ``params/book.yml``: the runs the book is made of and the page each becomes.

    Each entry: ``notebook``, ``params`` (``{profile}`` is replaced), ``page``, and optionally
    ``alone: true`` (with ``--jobs`` > 1 the run waits for the others and runs with nothing beside
    it: a page that times something must not share the CPU) and ``needs: [page, ...]`` (pages
    earlier in the plan whose runs must have finished before this one starts: it reads their
    results). Each entry's notebook and parameter file must exist (relative to the repository),
    so that a plan naming a missing one stops before any page runs."""
    import yaml

    path = Path(path)
    try:
        plan = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise params_mod.ParamsError(f"{display(path)}: cannot read the book plan ({type(err).__name__})") from None
    runs = plan.get("runs") if isinstance(plan, dict) else None
    if not isinstance(runs, list):
        raise params_mod.ParamsError(f"{display(path)}: expected a key 'runs' holding a list")
    out = []
    for i, entry in enumerate(runs):
        if not isinstance(entry, dict):
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: expected a mapping with keys notebook, params, "
                                         f"page, got {entry!r}")
        absent = [key for key in ("notebook", "params", "page") if key not in entry]
        if absent:
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: missing key '{absent[0]}' "
                                         "(each run needs notebook, params, page)")
        for key in ("notebook", "params", "page"):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: key '{key}': expected a non-empty text, "
                                             f"got {entry[key]!r}")
        unknown = sorted(set(entry) - {"notebook", "params", "page", "alone", "needs"})
        if unknown:
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: unknown key {unknown[0]!r} "
                                         "(known: notebook, params, page, alone, needs)")
        alone = entry.get("alone", False)
        if not isinstance(alone, bool):
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: key 'alone': expected true or false, "
                                         f"got {alone!r}")
        needs = entry.get("needs", [])
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: key 'needs': expected a list of page names, "
                                         f"got {needs!r}")
        earlier = [e["page"] for e in out]
        if entry["page"] in earlier:  # two runs would publish the same book/<page>.ipynb
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: key 'page': {entry['page']!r} is already "
                                         f"runs[{earlier.index(entry['page'])}]'s page")
        missing = [n for n in needs if n not in earlier]
        if missing:
            raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: key 'needs': {missing[0]!r} is not a page "
                                         "earlier in the plan")
        params_file = _plan_params_file(path, i, entry["params"], profile)
        for key, file in (("notebook", entry["notebook"]), ("params", params_file)):
            if not (REPO_ROOT / file).is_file():
                raise params_mod.ParamsError(f"{display(path)}: runs[{i}]: key '{key}': {display(REPO_ROOT / file)} "
                                             "not found")
        out.append({"notebook": entry["notebook"], "params": params_file,
                    "page": entry["page"], "alone": alone, "needs": list(needs)})
    return out


PLAN_PLACEHOLDERS = ("profile",)


def _plan_params_file(plan: Path, index: int, template: str, profile: str) -> str:
    """A plan entry's ``params`` with ``{profile}`` replaced; ParamsError naming the plan, the
    entry and the placeholder when the template names another one or is malformed."""
    known = ", ".join(f"{{{name}}}" for name in PLAN_PLACEHOLDERS)
    try:
        return template.format(profile=profile)
    except KeyError as err:
        raise params_mod.ParamsError(f"{display(plan)}: runs[{index}]: key 'params': unknown placeholder "
                                     f"{{{err.args[0]}}} in {template!r} (known: {known})") from None
    except (IndexError, ValueError, AttributeError, TypeError):
        raise params_mod.ParamsError(f"{display(plan)}: runs[{index}]: key 'params': {template!r} is not a valid "
                                     f"template (placeholders: {known}; write {{{{ and }}}} for a brace)") from None


# Keys a book-wide --set cannot change: each page keeps its own (one name per result folder; the
# summary page reads its pages' folders).
BOOK_FIXED_KEYS = ("study", "profile", "name", "source_runs")


def book_overrides(entries: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``--set`` for a whole book: page -> the overrides its parameters have (a key goes to every
    page whose study has it: ``data_dir`` to the data and study pages, not to the cost page).
    ParamsError, one line naming the key, for a key no page has or one each page keeps."""
    from lib.schemas import SCHEMAS

    overrides = dict(overrides or {})
    fixed = [key for key in overrides if key in BOOK_FIXED_KEYS]
    if fixed:
        raise params_mod.ParamsError(f"--set {fixed[0]}: every page of the book keeps its own '{fixed[0]}' "
                                     "(for one page: python -m lib run CHAPTER --params FILE --set ...)")
    per_page, known = {}, set()
    for entry in entries:
        keys = set(SCHEMAS[params_mod.load(REPO_ROOT / entry["params"])["study"]])
        per_page[entry["page"]] = {key: value for key, value in overrides.items() if key in keys}
        known |= keys
    unknown = [key for key in overrides if key not in known]
    if unknown:
        raise params_mod.ParamsError(f"--set {unknown[0]}: no page of the book plan has this parameter "
                                     f"(pages: {', '.join(per_page)})")
    return per_page


def override_arguments(overrides: Mapping[str, Any]) -> list[str]:
    """``--set key=value`` arguments that ``parse_override`` (yaml.safe_load) reads back to
    ``overrides``: written by the same YAML library, on one line (JSON would escape a character
    outside the BMP as a surrogate pair, which YAML reads back as two lone surrogates)."""
    import yaml

    def one_line(value: Any) -> str:
        text = yaml.safe_dump(value, default_flow_style=True, width=2**30)
        return text.removesuffix("\n").removesuffix("\n...")

    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={one_line(value)}")]


def run_book(plan_file: str | Path, profile: str = "default", force: bool = False,
             log: Callable[[str], None] = print, jobs: int = 1,
             overrides: Mapping[str, Any] | None = None) -> list[RunOutcome] | list[dict[str, Any]]:
    """Run every entry of the book plan and publish its page; ``overrides`` (``--set``) go to
    each page that has the key (:func:`book_overrides`).

    ``jobs == 1``: one after the other in this process, stopping at the first failure.
    ``jobs > 1``: see :func:`run_book_parallel` (each run in its own ``python -m lib run``).
    """
    if jobs < 1:
        raise params_mod.ParamsError(f"--jobs: expected a number >= 1, got {jobs}")
    if jobs > 1:
        return run_book_parallel(plan_file, profile, force=force, log=log, jobs=jobs, overrides=overrides)
    entries = load_book_plan(plan_file, profile)
    per_page = book_overrides(entries, overrides)
    outcomes = []
    for entry in entries:
        outcomes.append(run(REPO_ROOT / entry["notebook"], REPO_ROOT / entry["params"], per_page[entry["page"]],
                            force=force, book_page=entry["page"], log=log))
    return outcomes


def book_status(plan_file: str | Path, profile: str = "default", jobs: int = 1, *,
                results_root: str | Path = RESULTS_ROOT,
                overrides: Mapping[str, Any] | None = None) -> list[tuple[str, list[str]]]:
    """For each page of the book plan, in order: why ``run_book`` with these ``jobs`` (and
    ``overrides``) would run it, or an empty list when it would skip it. A page that needs another
    page that will run will run too (it reads that page's new result). Runs no chapter and writes
    no result (see ``check_run``)."""
    if jobs < 1:
        raise params_mod.ParamsError(f"--jobs: expected a number >= 1, got {jobs}")
    threads = threads_per_job(jobs)
    entries = load_book_plan(plan_file, profile)
    per_page = book_overrides(entries, overrides)
    will_run: dict[str, str] = {}  # page -> "will" (run), "cannot" (run) or "" (up to date)
    status = []
    for entry in entries:
        # The same parameters run_book would give the run (run_book_parallel sets the threads).
        page_overrides = dict(per_page[entry["page"]])
        if jobs > 1 and not entry["alone"]:
            page_overrides.setdefault("num_threads", threads)  # a --set num_threads is the user's
        reasons = check_run(REPO_ROOT / entry["notebook"], REPO_ROOT / entry["params"], page_overrides or None,
                            results_root=results_root)
        blocked = [page for page in entry["needs"] if will_run.get(page) == "cannot"]
        upstream = [page for page in entry["needs"] if will_run.get(page) == "will" and page not in blocked]
        if upstream:
            reasons.append(f"it reads {', '.join(upstream)}, which will run")
        if blocked:
            reasons.append(f"{WONT_START}it reads {', '.join(blocked)}, which cannot run")
        will_run[entry["page"]] = "cannot" if cannot_run(reasons) else "will" if reasons else ""
        status.append((entry["page"], reasons))
    return status


def default_jobs(profile: str) -> int:
    """How many chapters ``python -m lib book`` (and ``make book``) runs side by side unless told.

    Three on the CPU profiles, one torch thread each where there are 2 cores: at their 48 px the
    models scale badly across threads, so one thread per process trains more slices per second in
    total than one process with two (``benchmarks/bench_parallel.py``, the study A cost page), and
    three lets the three study A targets run together with no core idle while the last one
    finishes. One on the paper profile: each of its pages holds the paper's ~24k slices in RAM
    (~22 GB at 240 px, README "RAM for the slices") and its models on the one GPU."""
    return 1 if profile == "paper" else 3


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads each of ``jobs`` concurrent runs gets: the CPUs shared out, at least one."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // jobs)


def schedule(entries: list[dict[str, Any]], jobs: int, start: Callable[[dict[str, Any]], Any],
             on_finish: Callable[[dict[str, Any], int], None] = lambda entry, rc: None,
             poll_seconds: float = 1.0) -> list[tuple[dict[str, Any], int | None]]:
    """Run ``entries`` in plan order, at most ``jobs`` at a time; an entry with ``alone`` waits
    for every running one and nothing starts beside it; an entry with ``needs`` waits until each
    page it names has finished (and, plan order being kept, so do the entries after it).

    ``start(entry)`` launches a run and returns a handle with ``poll()`` (None while running,
    else the exit code), like ``subprocess.Popen``. After a failure (exit code != 0) nothing new
    starts; the runs already going are waited for (their results are complete or absent, never
    half-written). Returns ``(entry, exit code)`` in plan order; ``None`` for entries never started.
    """
    pending = list(range(len(entries)))
    running: dict[int, Any] = {}
    codes: dict[int, int] = {}
    failed = False
    restore = stop_on_sigterm()
    finished_pages = lambda: {entries[i].get("page") for i, code in codes.items() if code == 0}  # noqa: E731
    try:
        while running or (pending and not failed):
            while pending and not failed:
                entry = entries[pending[0]]
                blocked_by_alone = any(entries[i].get("alone") for i in running)
                waiting = not set(entry.get("needs", ())) <= finished_pages()
                if waiting and not running:  # what it needs never ran (load_book_plan prevents this)
                    raise RunError(f"{entry.get('page')}: needs {sorted(set(entry['needs']) - finished_pages())}, "
                                   "which no earlier run provided")
                if (entry.get("alone") and running) or blocked_by_alone or waiting or len(running) >= jobs:
                    break
                index = pending.pop(0)
                running[index] = start(entry)
            for index, handle in list(running.items()):
                code = handle.poll()
                if code is None:
                    continue
                del running[index]
                codes[index] = code
                on_finish(entries[index], code)
                failed = failed or code != 0
            if running:
                time.sleep(poll_seconds)
    except BaseException:  # interrupted: stop the runs going (each leaves no result: see run())
        for handle in running.values():
            getattr(handle, "terminate", lambda: None)()
        for handle in running.values():  # each stops its kernel and removes its folder first
            try:
                getattr(handle, "wait", lambda timeout: None)(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        raise
    finally:
        restore()
    return [(entry, codes.get(i)) for i, entry in enumerate(entries)]


def stop_on_sigterm() -> Callable[[], None]:
    """Until the returned undo is called, SIGTERM (``kill``, a CI cancel) interrupts like Ctrl-C:
    the scheduler stops the runs it started instead of leaving them running as orphans, and a
    run stops its kernel and removes its temporary folder. (A job started in the background by a
    non-interactive shell ignores SIGINT; SIGTERM still works.)"""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_book_parallel(plan_file: str | Path, profile: str = "default", force: bool = False,
                      log: Callable[[str], None] = print, jobs: int = 2,
                      log_dir: str | Path | None = None,
                      overrides: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run the book plan ``jobs`` runs at a time, each as ``python -m lib run`` with
    ``num_threads`` = CPUs / jobs (so ``jobs`` runs share the cores instead of fighting over them;
    the manifest records it). ``alone`` entries keep their file's ``num_threads`` and run with
    nothing beside them. Every run's cohort is prepared here first, one after the other, so
    concurrent runs never generate or validate the same cohort at once. Each run's output goes
    to ``<log_dir>/<page>.log`` (default ``build/logs``). Raises RunError naming the first
    failed run and its log; the other runs' results are complete or absent, as with one job."""
    entries = load_book_plan(plan_file, profile)
    per_page = book_overrides(entries, overrides)
    for entry in entries:  # validate every parameter file and prepare each cohort before starting
        prepare_inputs(params_mod.load(REPO_ROOT / entry["params"], per_page[entry["page"]]))
    log_dir = Path(log_dir) if log_dir is not None else REPO_ROOT / "build" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    threads = threads_per_job(jobs)
    started_at: dict[str, float] = {}

    def start(entry: dict[str, Any]):
        command = [sys.executable, "-m", "lib", "run", entry["notebook"], "--params", entry["params"],
                   "--page", entry["page"], *override_arguments(per_page[entry["page"]])]
        shares_cores = not entry["alone"] and "num_threads" not in per_page[entry["page"]]  # else the user's
        if shares_cores:
            command += ["--set", f"num_threads={threads}"]
        if force:
            command.append("--force")
        log_file = log_dir / f"{entry['page']}.log"
        started_at[entry["page"]] = time.time()
        how = "alone" if entry["alone"] else f"{threads} thread(s)" if shares_cores else "num_threads from --set"
        log(f"started {entry['page']} ({how}): {' '.join(command[3:])}; log: {display(log_file)}")
        env = dict(os.environ)
        if shares_cores:
            # Also for OpenMP/BLAS pools the chapters do not size themselves: a pool that spins on
            # a core another run is using slowed a 2-thread torch process over 70x in a measurement.
            env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
        with open(log_file, "w", encoding="utf-8") as out:
            return subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)

    def on_finish(entry: dict[str, Any], code: int) -> None:
        seconds = time.time() - started_at[entry["page"]]
        state = "finished" if code == 0 else f"FAILED (exit {code})"
        log(f"{state} {entry['page']} in {seconds:.0f} s")

    outcomes = schedule(entries, jobs, start, on_finish)
    for entry, code in outcomes:
        if code not in (0, None):
            log_file = log_dir / f"{entry['page']}.log"
            lines = [line for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
            last = lines[-1] if lines else "(no output)"
            if last.startswith("error: "):  # the run's own one-line error already names the chapter and file
                raise RunError(f"{last.removeprefix('error: ')} (log: {display(log_file)})")
            raise RunError(f"{entry['notebook']} with {entry['params']} failed: {last} (log: {display(log_file)})")
    return [{"page": entry["page"], "exit_code": code} for entry, code in outcomes]
