"""Atomic file writes: a reader never sees a half-written file.

Every writer puts its bytes in a temporary file in the destination folder and then
``os.replace``s it into place (atomic on POSIX within one filesystem). An interrupted
write leaves at most a ``.tmp-*`` file that nothing reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

from lib.paths import display


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    ``suffix`` is kept on the temporary name for writers that infer the format from it
    (``matplotlib.savefig``, ``numpy.savez``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _flush_to_disk(tmp_path)  # so a crash after the rename cannot leave an empty file under the final name
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; a result file gets the usual mode
        os.replace(tmp_path, path)
        sync_dir(path.parent)  # the rename itself reaches the disk (POSIX: the folder's entry)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _host_tag(hostname: str) -> str:
    """``h`` + 8 hex digits of the host's name: no ``-`` in it, so it parses back out of a folder
    name, and it never looks like a pid or a time stamp."""
    return "h" + hashlib.sha1(hostname.encode("utf-8")).hexdigest()[:8]


_HOST_TAG = _host_tag(socket.gethostname())


def writer_tag() -> str:
    """``<host tag>-<pid>``: ends the name of a temporary or old folder this process writes, so that
    :func:`held_by_another_process` can tell whether its writer is still at work."""
    return f"{_HOST_TAG}-{os.getpid()}"


def held_by_another_process(path: str | os.PathLike) -> bool:
    """True when the writer named at the end of ``path``'s name (``...-<host tag>-<pid>``, see
    :func:`writer_tag`) may still be at work, so the folder must not be removed: another live
    process on this machine, or any process on another machine sharing the folder (its pids
    cannot be checked from here). A name without a host tag (written before the tag existed) is
    read as this machine's."""
    parts = Path(path).name.split("-")
    pid = parts[-1]
    if not pid.isdigit():
        return False
    host = parts[-2] if len(parts) > 1 else ""
    if re.fullmatch(r"h[0-9a-f]{8}", host) and host != _HOST_TAG:
        return True
    return int(pid) != os.getpid() and _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _flush_to_disk(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that renames into or out of it survive a crash (POSIX keeps a file's
    name in its folder; fsync of the file alone does not write that). A no-op where folders
    cannot be opened for it (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it, which is process-wide


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths appear in summaries; keep them readable.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    return write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def os_error_line(err: OSError) -> str:
    """One line for an OSError: the path(s) it names and the system's reason."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [display(Path(os.fsdecode(p))) if isinstance(p, (str, bytes, os.PathLike)) else str(p)
             for p in (err.filename, err.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason
