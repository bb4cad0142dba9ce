"""The command line and the runner's refusal of bad input: one line naming the file or key, a
non-zero exit, and nothing written."""

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
