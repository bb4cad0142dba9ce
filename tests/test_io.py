import json
import os
import re

import pytest

from lib import io


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path):
    target = tmp_path / "a.json"
    io.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_json_handles_numpy(tmp_path):
    import numpy as np

    io.write_json(tmp_path / "x.json", {"a": np.float32(0.5), "b": np.arange(2)})
    assert io.read_json(tmp_path / "x.json") == {"a": 0.5, "b": [0, 1]}


def test_atomic_write_gives_the_usual_file_mode_not_mkstemps_0600(tmp_path):
    import os

    target = tmp_path / "summary.json"
    io.write_json(target, {"v": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_folder_for_key_names_the_key_when_the_path_cannot_be_a_folder(tmp_path):
    from lib.paths import folder_for_key

    assert folder_for_key("cache_dir", tmp_path / "new" / "deeper").is_dir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError) as info:
        folder_for_key("cache_dir", a_file / "cohorts")
    assert str(info.value).startswith("key 'cache_dir': ") and "cannot be used as a folder" in str(info.value)


def test_folder_for_key_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch):
    """A folder that exists but takes no file (read-only, immutable, full) fails when named, not
    after the first result was computed. Root may write anywhere, so the refusal is simulated."""
    import tempfile

    from lib.paths import folder_for_key

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(ValueError) as info:
        folder_for_key("training_cache_dir", tmp_path)
    assert str(info.value) == f"key 'training_cache_dir': {tmp_path}: cannot be used as a folder (Permission denied)"


NO_SUCH_USER = "~no-such-user-s29x"  # '~user' naming no account: pathlib raises RuntimeError


def test_a_home_folder_that_cannot_be_found_is_a_one_line_error_naming_the_key():
    from lib.paths import folder_for_key, home_problem, resolve

    assert home_problem("data/cache") is None and home_problem("/abs/~x") is None
    assert "no home folder is known for user 'no-such-user-s29x'" in home_problem(f"{NO_SUCH_USER}/cache")
    with pytest.raises(ValueError, match=r"^~no-such-user-s29x/cache: cannot expand '~no-such-user-s29x'"):
        resolve(f"{NO_SUCH_USER}/cache")
    with pytest.raises(ValueError) as info:
        folder_for_key("cache_dir", f"{NO_SUCH_USER}/cache")
    assert str(info.value).startswith("key 'cache_dir': ") and "\n" not in str(info.value)


def test_a_write_syncs_its_folder_after_the_rename_so_the_new_name_survives_a_crash(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(io, "sync_dir", lambda folder: synced.append((folder, (tmp_path / "r.json").is_file())))
    io.write_json(tmp_path / "r.json", {"v": 1})
    assert synced == [(tmp_path, True)]  # after the file has its final name


def test_sync_dir_accepts_a_folder_and_ignores_what_cannot_be_opened(tmp_path):
    io.sync_dir(tmp_path)
    io.sync_dir(tmp_path / "missing")  # no error: the rename it follows has happened anyway


def test_a_finished_run_syncs_the_results_folder_after_its_swap(tmp_path, monkeypatch):
    from lib import runner

    work, final = tmp_path / ".r.tmp-1", tmp_path / "r"
    work.mkdir()
    synced = []
    monkeypatch.setattr(runner.io, "sync_dir", lambda folder: synced.append((folder, final.is_dir())))
    runner._swap_into_place(work, final)
    assert synced == [(tmp_path, True)]


def test_held_by_another_process_reads_the_host_tag_and_pid_ending_a_folder_name(tmp_path):
    tag = io.writer_tag()
    here, pid = tag.rsplit("-", 1)
    assert re.fullmatch(r"h[0-9a-f]{8}", here) and pid == str(os.getpid())
    other_host = "h0123abcd" if here != "h0123abcd" else "h0123abce"
    assert not io.held_by_another_process(tmp_path / f".r.tmp-{tag}")  # this process: its own folder
    assert io.held_by_another_process(tmp_path / f".r.tmp-{here}-{os.getppid()}")  # a live process here
    assert not io.held_by_another_process(tmp_path / f".r.tmp-{here}-999999999")  # no such process here
    assert io.held_by_another_process(tmp_path / f".r.tmp-{other_host}-999999999")  # another machine: unknown
    assert io.held_by_another_process(tmp_path / f".r.tmp-5-{other_host}-1")  # the phantom's time-stamped names
    assert not io.held_by_another_process(tmp_path / ".r.tmp-999999999")  # untagged (older): this machine's
    assert io.held_by_another_process(tmp_path / f".r.tmp-{os.getppid()}")
    assert not io.held_by_another_process(tmp_path / ".r.tmp-abc123.json")  # an atomic_path temporary
