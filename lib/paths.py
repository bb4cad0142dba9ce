"""Where things live. Relative paths in parameter files are relative to the repository root,
whatever the current directory (papermill and nbval run kernels in other folders)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOT = REPO_ROOT / "results"
BOOK_DIR = REPO_ROOT / "book"


def resolve(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def display(path: str | Path) -> str:
    """A path as a reader should see it: relative to the repository when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def folder_for_key(key: str, path: str | Path) -> Path:
    """The folder a parameter ``key`` names (resolved as :func:`resolve`), created if missing.
    A path that cannot be a folder (a file, a read-only place) raises ``ValueError`` in one line
    naming the key, before anything is computed."""
    folder = resolve(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"key '{key}': {display(folder)}: cannot be used as a folder ({reason})") from None
    return folder
