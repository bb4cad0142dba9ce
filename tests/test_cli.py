"""The command line and the runner's refusal of bad input: one line naming the file or key, a
non-zero exit, and nothing written."""

import json
import os
import subprocess
import sys

import pytest

from lib import runner
from lib.data.validate import InvalidCohortError
from lib.paths import REPO_ROOT


def _cli(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})


def test_run_with_a_wrong_key_prints_one_line_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: " + str(REPO_ROOT / "params/data/smoke.yaml") + "\nimage_sise: 32\n")
    out = _cli("run", "book/data.py", "--params", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: {bad}: unknown key 'image_sise' (did you mean 'image_size'?)"]


def test_validate_cli_reports_each_problem_and_exits_1(make_cohort):
    root = make_cohort("brats2020")
    next(root.glob("*/*_t1ce.nii.gz")).unlink()
    out = _cli("validate", str(root))
    assert out.returncode == 1
    problems = [line for line in out.stdout.splitlines() if "missing t1ce" in line]
    assert len(problems) == 1 and "BraTS20_Training_" in problems[0]
    assert _cli("validate", str(make_cohort("brats2021"))).returncode == 0


def test_a_run_refuses_an_invalid_cohort_and_writes_nothing(make_cohort, tmp_path):
    root = make_cohort("brats2020")
    next(root.glob("*/*_seg.nii.gz")).write_bytes(b"not a gzip")
    params = tmp_path / "data-folder.yaml"
    params.write_text(f"study: data\nprofile: smoke\ndata_source: folder\ndata_dir: {root}\n"
                      f"cache_dir: {tmp_path / 'cache'}\n")
    results = tmp_path / "results"
    with pytest.raises(InvalidCohortError, match=r"_seg.nii.gz: unreadable"):
        runner.run(REPO_ROOT / "book/data.py", params, results_root=results, log_output=False)
    assert not results.exists()
    out = _cli("run", "book/data.py", "--params", str(params))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and lines[0] == "error: invalid cohort, 1 problem(s), one line each:"
    assert len(lines) == 2 and "_seg.nii.gz: unreadable" in lines[1]


@pytest.mark.parametrize("layout", ["brats2018", "brats2023"])
def test_the_data_chapter_runs_on_a_users_folder_of_another_layout(make_cohort, tmp_path, layout):
    # HGG/ and LGG/ folders; BraTS 2023 names and no grade (so no HGG subject to measure)
    root = make_cohort(layout)
    params = tmp_path / "data-folder.yaml"
    params.write_text(f"extends: {REPO_ROOT / 'params/data/smoke.yaml'}\ndata_source: folder\n"
                      f"data_dir: {root}\ncache_dir: {tmp_path / 'cache'}\n")
    results = tmp_path / "results"
    runner.run(REPO_ROOT / "book/data.py", params, results_root=results, log_output=False)
    summary = json.loads((results / "data" / "data-folder" / "summary.json").read_text())
    # HGG/ folders give HGG subjects to measure; BraTS 2023 records no grade: null, not an error
    assert (summary["t1ce_cnr_et_vs_ed"] is None) == (layout == "brats2023")


def test_a_missing_chapter_or_a_placeholder_typo_is_one_line_and_exits_2(tmp_path):
    out = _cli("run", "book/nope.py", "--params", "params/data/smoke.yaml")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == ["error: book/nope.py: chapter not found"]
    plan = tmp_path / "book.yml"
    plan.write_text((REPO_ROOT / "params/book.yml").read_text().replace("params/data/{profile}", "params/data/{profle}"))
    out = _cli("book", "--dry-run", "--plan", str(plan))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: {plan}: runs[0]: key 'params': unknown placeholder {{profle}} in 'params/data/{{profle}}.yaml' "
        "(known: {profile})"]


@pytest.mark.parametrize("setting, message", [
    ("data_dri=/x", "error: --set data_dri: no page of the book plan has this parameter"),
    ("name=mine", "error: --set name: every page of the book keeps its own 'name'"),
])
def test_a_book_wide_set_that_cannot_apply_is_one_line_and_exits_2(setting, message):
    out = _cli("book", "--profile", "smoke", "--dry-run", "--set", setting)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr


@pytest.mark.parametrize("params", ["params/study_a/summary-smoke.yaml", "params/study_a/cost-smoke.yaml"])
def test_cohort_of_a_parameter_file_that_reads_no_data_is_one_line(params):
    out = _cli("cohort", "--params", params)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: {params}: names no cohort (no key 'data_dir')"]


@pytest.mark.parametrize("command", ["book", "batch"])
def test_an_interrupted_book_or_batch_does_not_deny_the_results_it_finished(monkeypatch, capsys, command):
    """`lib book` (or `lib run` with several parameter files) stopped after a page finished: that
    page's result is kept, so the last line must not say that no result at all was written."""
    from lib.__main__ import main

    def finish_one_then_interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_book", finish_one_then_interrupt)
    monkeypatch.setattr(runner, "run", finish_one_then_interrupt)
    argv = (["book", "--profile", "smoke", "--no-build"] if command == "book" else
            ["run", "book/data.py", "--params", "params/data/smoke.yaml", "params/data/default.yaml"])
    assert main(argv) == 130
    line = capsys.readouterr().err.strip()
    assert line.startswith("interrupted: ") and "finished" in line and "are kept" in line


def test_an_interrupted_single_run_says_it_wrote_no_result(monkeypatch, capsys):
    from lib.__main__ import main

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupt)
    assert main(["run", "book/data.py", "--params", "params/data/smoke.yaml"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted: no result was written"


def test_a_chapter_run_with_another_studys_parameter_file_is_one_line():
    # Before: the notebook failed on KeyError 'target' and left a failed copy in results/data/.
    out = _cli("run", "book/study_a.py", "--params", "params/data/smoke.yaml")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: params/data/smoke.yaml: a parameter file of study 'data'; book/study_a.py takes one of study 'study_a'"]


def _make_dry_run(*args):
    """`make -n ARGS`: the commands make would run, without running them (nor the setup they depend
    on). Run under `make test`, an outer make's flags and variables would reach this one through the
    environment, so they are left out of it."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SET", "DATA_DIR", "PROFILE", "JOBS"}}
    return subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env)


def test_make_passes_each_SET_pair_and_DATA_DIR_to_the_book_as_its_own_set():
    out = _make_dry_run("chapters", "status", "SET=variant_per_modality_seeds=[] seeds=[0,1]", "DATA_DIR=/data/my brats")
    assert out.returncode == 0, out.stderr
    book_lines = [line for line in out.stdout.splitlines() if " -m lib book " in line]
    assert len(book_lines) == 2  # make book's chapters, and make status
    for line in book_lines:
        assert line.endswith("--set 'data_dir=/data/my brats' --set 'variant_per_modality_seeds=[]' --set 'seeds=[0,1]'")
    plain = _make_dry_run("chapters").stdout
    assert "--set" not in plain


def test_make_and_lib_book_run_paper_pages_one_at_a_time_unless_told_otherwise(monkeypatch):
    def make_jobs(*args):
        out = _make_dry_run("chapters", "status", *args)
        lines = [line for line in out.stdout.splitlines() if " -m lib book " in line]
        assert len(lines) == 2
        return {line.split("--jobs ")[1].split()[0] if "--jobs " in line else None for line in lines}

    assert make_jobs() == {None} and make_jobs("PROFILE=paper") == {None}  # lib book decides, as below
    assert make_jobs("PROFILE=paper", "JOBS=2") == {"2"}

    from lib.__main__ import main

    asked = []
    monkeypatch.setattr(runner, "run_book", lambda *args, jobs, **kwargs: asked.append(jobs))
    for profile in ("smoke", "default", "paper"):
        assert main(["book", "--profile", profile, "--no-build"]) == 0
    assert main(["book", "--profile", "paper", "--no-build", "--jobs", "2"]) == 0
    assert asked == [3, 3, 1, 2]  # three CPU pages side by side; each paper page holds ~22 GB of slices


def test_a_batch_checks_every_parameter_file_before_its_first_run(monkeypatch, capsys, tmp_path):
    from lib.__main__ import main

    ran = []
    monkeypatch.setattr(runner, "run", lambda *args, **kwargs: ran.append(args[1]))
    missing = tmp_path / "nosuch.yaml"
    assert main(["run", "book/data.py", "--params", "params/data/smoke.yaml", str(missing)]) == 2
    assert ran == []  # before: the first file ran (an hour on the default profile), then the second failed
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {missing}: parameter file not found"]


def test_an_os_error_is_one_line_naming_the_path(monkeypatch, capsys, tmp_path):
    """A full disk or a folder that cannot be written: the path and the system's reason, no traceback."""
    from lib.__main__ import main
    from lib.io import os_error_line

    full = tmp_path / "results" / "data"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(full))

    monkeypatch.setattr(runner, "run", disk_full)
    assert main(["run", "book/data.py", "--params", "params/data/smoke.yaml"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {full}: No space left on device"]
    renamed = OSError(13, "Permission denied", "a", None, "b")
    assert os_error_line(renamed) == "a -> b: Permission denied"
    assert os_error_line(OSError("no errno")) == "no errno"


def test_a_run_with_no_modality_is_one_line():
    out = _cli("cohort", "--params", "params/data/smoke.yaml", "--set", "modalities=[]")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: params/data/smoke.yaml (--set): key 'modalities': give at least one value"]
