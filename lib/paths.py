"""Where things live. Relative paths in parameter files are relative to the repository root,
whatever the current directory (papermill and nbval run kernels in other folders)."""

from __future__ import annotations

import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOT = REPO_ROOT / "results"
BOOK_DIR = REPO_ROOT / "book"


def resolve(path: str | Path) -> Path:
    """``path`` with ``~`` expanded, relative to the repository root unless absolute. A ``~user``
    that names no home folder raises ``ValueError`` in one line (see :func:`home_problem`)."""
    problem = home_problem(path)
    if problem:
        raise ValueError(f"{path}: {problem}")
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def home_problem(path: str | Path) -> str | None:
    """Why ``~`` in ``path`` cannot be expanded (``~nobody``: no such user; ``~``: no home
    folder known), or None. For a parameter's ``check``: the error then names the key."""
    try:
        Path(path).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory."
        first = Path(path).parts[0]
        who = f"user '{first[1:]}'" if first != "~" else "the current user"
        return f"cannot expand '{first}': no home folder is known for {who}"
    return None


def display(path: str | Path) -> str:
    """A path as a reader should see it: relative to the repository when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def folder_for_key(key: str, path: str | Path) -> Path:
    """The folder a parameter ``key`` names (resolved as :func:`resolve`), created if missing.
    A path that cannot be a folder (a file, a read-only place) or cannot be written raises
    ``ValueError`` in one line naming the key, before anything is computed."""
    try:
        folder = resolve(path)
    except ValueError as err:
        raise ValueError(f"key '{key}': {err}") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a folder that exists but cannot be written fails here,
            pass                                   # not after the first result is computed
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"key '{key}': {display(folder)}: cannot be used as a folder ({reason})") from None
    return folder
