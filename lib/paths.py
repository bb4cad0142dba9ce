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
