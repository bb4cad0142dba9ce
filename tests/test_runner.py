"""The runner on a toy chapter: results land atomically, unchanged inputs are skipped, a failed
or interrupted run never replaces (or fakes) a result."""

import functools
import json
import textwrap
from pathlib import Path

import pytest

from lib import runner, schemas
from lib.params import Field, ParamsError

TOY_CHAPTER = textwrap.dedent(
    '''
    # %% tags=["parameters"]
    params_file = None
    run_dir = None

    # %%
    import json, pathlib, yaml
    P = yaml.safe_load(open(params_file))
    if P["fail"]:
        raise ValueError("planted failure")
    out = pathlib.Path(run_dir)
    (out / "summary.json").write_text(json.dumps({"square": P["x"] ** 2}))
    '''
)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setitem(schemas.SCHEMAS, "toy", {
        "study": Field("str"), "profile": Field("str"), "name": Field("str", default=None, nullable=True),
        "x": Field("int", default=2), "fail": Field("bool", default=False),
    })
    # Other library edits must not make this test flaky: pin the library's fingerprint.
    monkeypatch.setattr(runner, "lib_source_fingerprint", lambda: "pinned")
    chapter = tmp_path / "toy.py"
    chapter.write_text(TOY_CHAPTER)
    params = tmp_path / "toy-smoke.yaml"
    params.write_text("study: toy\nprofile: smoke\nx: 3\n")
    return chapter, params, tmp_path / "results"


def test_run_writes_complete_result_then_skips(toy):
    chapter, params, results = toy
    first = runner.run(chapter, params, results_root=results, log_output=False)
    out = results / "toy" / "toy-smoke"
    assert first.result_dir == out and not first.skipped
    assert json.loads((out / "summary.json").read_text()) == {"square": 9}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["params"]["x"] == 3
    assert manifest["packages"]["torch"] and "seconds" in manifest["timings"]
    assert (out / "notebook.ipynb").is_file() and (out / "params.yaml").is_file()
    executed = (out / "notebook.ipynb").read_text()
    assert ".tmp-" not in executed and "toy-smoke/params.yaml" in executed  # says where results are
    assert sorted(p.name for p in (results / "toy").iterdir()) == ["toy-smoke"]

    again = runner.run(chapter, params, results_root=results, log_output=False)
    assert again.skipped
    changed = runner.run(chapter, params, {"x": 4}, results_root=results, log_output=False)
    assert not changed.skipped
    assert json.loads((out / "summary.json").read_text()) == {"square": 16}


def test_failed_run_keeps_previous_result(toy):
    chapter, params, results = toy
    runner.run(chapter, params, results_root=results, log_output=False)
    out = results / "toy" / "toy-smoke"
    before = (out / "manifest.json").read_text()
    with pytest.raises(runner.RunError, match="failed: ValueError: planted failure") as info:
        runner.run(chapter, params, {"fail": True}, results_root=results, log_output=False)
    assert "\n" not in str(info.value)
    assert (out / "manifest.json").read_text() == before
    assert (results / "toy" / "toy-smoke.failed.ipynb").is_file()
    assert not list((results / "toy").glob(".*tmp*"))
    runner.run(chapter, params, {"x": 5}, results_root=results, log_output=False)
    assert not (results / "toy" / "toy-smoke.failed.ipynb").exists()  # a later success supersedes it


def test_a_chapter_that_writes_no_summary_fails_and_keeps_the_previous_result(toy):
    chapter, params, results = toy
    runner.run(chapter, params, results_root=results, log_output=False)
    out = results / "toy" / "toy-smoke"
    before = {name: (out / name).read_bytes() for name in ("manifest.json", "summary.json", "notebook.ipynb")}
    chapter.write_text(TOY_CHAPTER.replace('(out / "summary.json").write_text', 'len'))  # forgets write_summary
    with pytest.raises(runner.RunError, match=r"toy.py: the chapter wrote no summary.json"):
        runner.run(chapter, params, results_root=results, log_output=False)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not list((results / "toy").glob(".*tmp*"))


def test_stale_temporary_folders_of_dead_runs_are_removed_and_live_ones_kept(toy):
    chapter, params, results = toy
    study = results / "toy"
    here = runner.io.writer_tag().rsplit("-", 1)[0]  # this machine's host tag
    dead = study / f".toy-smoke.tmp-{here}-999999999"   # no such process on this machine
    dead_untagged = study / ".toy-smoke.tmp-999999999"  # named before host tags: read as this machine's
    live = study / f".toy-smoke.tmp-{here}-{runner.os.getppid()}"  # a running process: another runner at work
    elsewhere = study / ".toy-smoke.tmp-h0123abcd-999999999"  # another machine's pid: cannot be checked
    other = study / f".other-run.tmp-{here}-999999999"  # another run's: not this run's to remove
    for folder in (dead, dead_untagged, live, elsewhere, other):
        folder.mkdir(parents=True)
    lines = []
    runner.run(chapter, params, results_root=results, log=lines.append, log_output=False)
    assert not dead.exists() and not dead_untagged.exists()
    assert live.is_dir() and elsewhere.is_dir() and other.is_dir()
    kept = [line for line in lines if line.startswith("left ")]
    assert len(kept) == 2 and all("another run of this page may still be writing it" in line for line in kept)


def test_interrupted_run_is_not_trusted(toy, monkeypatch):
    chapter, params, results = toy
    real_write_json = runner.io.write_json

    def crash_on_manifest(path, obj):
        if str(path).endswith("manifest.json"):
            raise KeyboardInterrupt
        return real_write_json(path, obj)

    monkeypatch.setattr(runner.io, "write_json", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        runner.run(chapter, params, results_root=results, log_output=False)
    assert not (results / "toy" / "toy-smoke").exists()
    assert not list((results / "toy").glob(".*tmp*"))


def test_untrusted_folder_is_rerun(toy):
    chapter, params, results = toy
    out = results / "toy" / "toy-smoke"
    out.mkdir(parents=True)
    (out / "summary.json").write_text("{}")
    (out / "manifest.json").write_text('{"status": "running"}')
    assert runner.read_complete_manifest(out) is None
    assert not runner.run(chapter, params, results_root=results, log_output=False).skipped


def test_a_complete_result_that_lost_its_notebook_is_rerun_not_trusted(toy):
    chapter, params, results = toy
    out = runner.run(chapter, params, results_root=results, log_output=False).result_dir
    (out / "notebook.ipynb").unlink()  # before: "up to date", then a traceback publishing the page
    assert runner.read_complete_manifest(out) is None
    again = runner.run(chapter, params, results_root=results, log_output=False)
    assert not again.skipped and (out / "notebook.ipynb").is_file()


def test_invalid_params_write_nothing(toy):
    chapter, params, results = toy
    params.write_text("study: toy\nprofile: smoke\nx: three\n")
    with pytest.raises(ParamsError, match=r"toy-smoke.yaml: key 'x': expected int, got 'three'"):
        runner.run(chapter, params, results_root=results, log_output=False)
    assert not results.exists()


def test_book_plan_substitutes_profile(tmp_path):
    plan = tmp_path / "book.yml"
    plan.write_text("runs:\n  - {notebook: book/data.py, params: 'params/data/{profile}.yaml', page: data}\n")
    assert runner.load_book_plan(plan, "smoke") == [
        {"notebook": "book/data.py", "params": "params/data/smoke.yaml", "page": "data", "alone": False, "needs": []}]
    plan.write_text("runs: {}\n")
    with pytest.raises(ParamsError, match="expected a key 'runs' holding a list"):
        runner.load_book_plan(plan, "smoke")


def test_figures_reach_the_executed_notebook_even_with_agg_exported(toy, monkeypatch):
    # The Makefile exports MPLBACKEND=Agg; a kernel that inherited it (or a module that called
    # matplotlib.use) would show no figure.
    chapter, params, results = toy
    chapter.write_text(TOY_CHAPTER + textwrap.dedent(
        """
        # %%
        import matplotlib.pyplot as plt
        import lib.plots  # the chapters' figure module must not switch the kernel's backend
        plt.plot([0, 1], [1, 0])
        plt.show()
        """))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runner.run(chapter, params, results_root=results, log_output=False)
    executed = json.loads((results / "toy" / "toy-smoke" / "notebook.ipynb").read_text())
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert runner.os.environ["MPLBACKEND"] == "Agg"  # the caller's environment is restored


def test_headless_run_turns_off_widgets_the_chapter_declares(toy):
    # A chapter that declares live_widgets gets it False from the runner (no ipywidgets in a
    # headless run: nbclient can stall on their messages); the executed notebook says so.
    chapter, params, results = toy
    chapter.write_text(TOY_CHAPTER.replace("run_dir = None\n", "run_dir = None\nlive_widgets = True\n", 1)
                       + "\n# %%\n(out / 'widgets.txt').write_text(repr(live_widgets))\n")
    runner.run(chapter, params, results_root=results, log_output=False)
    out = results / "toy" / "toy-smoke"
    assert (out / "widgets.txt").read_text() == "False"
    executed = json.loads((out / "notebook.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "live_widgets = False" in "".join(injected[0]["source"])


def test_headless_parameters_only_for_declared_names():
    import jupytext

    declares = jupytext.reads('# %% tags=["parameters"]\nparams_file = None\nlive_widgets = True\n', fmt="py:percent")
    silent = jupytext.reads('# %% tags=["parameters"]\nparams_file = None\n\n# %%\nlive_widgets = 1\n', fmt="py:percent")
    assert runner.headless_parameters(declares) == {"live_widgets": False}
    assert runner.headless_parameters(silent) == {}


def test_executed_notebook_shows_a_progress_bar_as_its_final_line(toy):
    chapter, params, results = toy
    chapter.write_text(TOY_CHAPTER + textwrap.dedent(
        """
        # %%
        import sys
        for i in range(50):
            sys.stderr.write(f"\\rsteps: {i + 1}/50")
            sys.stderr.flush()
        sys.stderr.write("\\n")
        print("plain output stays")
        """))
    runner.run(chapter, params, results_root=results, log_output=False)
    executed = json.loads((results / "toy" / "toy-smoke" / "notebook.ipynb").read_text())
    streams = [(o["name"], "".join(o["text"])) for cell in executed["cells"] for o in cell.get("outputs", [])
               if o["output_type"] == "stream"]
    assert ("stderr", "steps: 50/50\n") in streams and ("stdout", "plain output stays\n") in streams
    assert not any("steps: 49/50" in text for _, text in streams)


def test_run_stopped_between_the_two_renames_restores_the_previous_result(toy, monkeypatch):
    # _swap_into_place moves the old result aside, then the new one into place. Stopped between
    # the two, the old complete result is only in .toy-smoke.old-<pid>; the next run puts it back
    # (it is complete and trusted: up to date for its inputs) instead of losing it.
    chapter, params, results = toy
    runner.run(chapter, params, results_root=results, log_output=False)
    out = results / "toy" / "toy-smoke"
    before = (out / "manifest.json").read_text()
    real_replace = runner.os.replace

    def stop_after_moving_the_old_result_aside(src, dst):
        real_replace(src, dst)
        if ".old-" in str(dst):
            raise KeyboardInterrupt

    monkeypatch.setattr(runner.os, "replace", stop_after_moving_the_old_result_aside)
    with pytest.raises(KeyboardInterrupt):
        runner.run(chapter, params, {"x": 4}, results_root=results, log_output=False)
    monkeypatch.setattr(runner.os, "replace", real_replace)
    assert not out.exists() and len(list((results / "toy").glob(".toy-smoke.old-*"))) == 1

    again = runner.run(chapter, params, results_root=results, log_output=False)
    assert again.skipped and (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in (results / "toy").iterdir()) == ["toy-smoke"]


def _refuse_renames_of_the_temporary_folder(monkeypatch, *, also_elsewhere: bool):
    """os.replace fails (PermissionError) for the finished run's temporary folder going onto the
    result's name, and with ``also_elsewhere`` wherever it goes."""
    real_replace = runner.os.replace

    def replace(src, dst):
        if Path(src).name.startswith(".toy-smoke.tmp-") and (also_elsewhere or Path(dst).name == "toy-smoke"):
            raise PermissionError(13, "Permission denied", str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(runner.os, "replace", replace)
    return real_replace


def test_a_finished_run_that_cannot_be_put_in_place_is_kept_and_the_previous_result_too(toy, monkeypatch):
    chapter, params, results = toy
    runner.run(chapter, params, results_root=results, log_output=False)
    out = results / "toy" / "toy-smoke"
    before = (out / "manifest.json").read_bytes()
    real_replace = _refuse_renames_of_the_temporary_folder(monkeypatch, also_elsewhere=False)
    with pytest.raises(runner.RunError) as err:
        runner.run(chapter, params, {"x": 4}, results_root=results, log_output=False)
    [kept] = (results / "toy").glob("toy-smoke.unplaced-*")
    message = str(err.value)
    assert "\n" not in message and "the run finished but could not be put in place" in message
    assert "Permission denied" in message and f"it is in {kept}" in message
    assert message.endswith("(the previous result is unchanged)")
    assert (out / "manifest.json").read_bytes() == before  # the old result is back under its name
    assert runner.read_complete_manifest(kept)["params"]["x"] == 4  # the new one, complete, kept
    assert sorted(p.name for p in (results / "toy").iterdir()) == sorted(["toy-smoke", kept.name])
    monkeypatch.setattr(runner.os, "replace", real_replace)
    assert runner.run(chapter, params, results_root=results, log_output=False).skipped  # not mistaken for it
    assert kept.is_dir()  # and not removed by a later run


def test_a_finished_run_that_cannot_be_moved_at_all_says_where_it_is_for_now(toy, monkeypatch):
    chapter, params, results = toy
    _refuse_renames_of_the_temporary_folder(monkeypatch, also_elsewhere=True)
    with pytest.raises(runner.RunError) as err:
        runner.run(chapter, params, results_root=results, log_output=False)
    [work] = (results / "toy").glob(".toy-smoke.tmp-*")
    assert runner.read_complete_manifest(work) is not None  # the finished run was not deleted
    assert f"it is in {work} (the next run of this page deletes that folder)" in str(err.value)
    assert str(err.value).endswith("(there was no previous result)")


def test_leftover_old_folder_beside_a_result_is_removed(toy):
    chapter, params, results = toy
    runner.run(chapter, params, results_root=results, log_output=False)
    leftover = results / "toy" / ".toy-smoke.old-999999999"
    leftover.mkdir()
    (leftover / "summary.json").write_text("{}")
    assert runner.run(chapter, params, results_root=results, log_output=False).skipped
    assert not leftover.exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", " padded"])
def test_run_name_must_be_a_plain_folder_name(toy, name):
    chapter, params, results = toy
    monkeypatch_schema = schemas.SCHEMAS["toy"]
    monkeypatch_schema["name"] = schemas.COMMON["name"]
    with pytest.raises(ParamsError, match=r"key 'name': expected a plain folder name") as info:
        runner.run(chapter, params, {"name": name}, results_root=results, log_output=False)
    assert "\n" not in str(info.value)
    assert not results.exists()


def _reader_schema(monkeypatch):
    monkeypatch.setitem(schemas.SCHEMAS, "reader", {
        "study": Field("str"), "profile": Field("str"), "name": Field("str", default=None, nullable=True),
        "source_runs": Field("dict[str,str]"), "x": Field("int", default=0), "fail": Field("bool", default=False),
    })


def test_a_run_reading_other_runs_reruns_when_one_of_them_is_rerun(toy, monkeypatch):
    chapter, params, results = toy
    _reader_schema(monkeypatch)
    source = runner.run(chapter, params, results_root=results, log_output=False).result_dir
    reader = params.with_name("reader-smoke.yaml")
    reader.write_text(f"study: reader\nprofile: smoke\nsource_runs: {{A: {source}}}\n")
    assert not runner.run(chapter, reader, results_root=results, log_output=False).skipped
    assert runner.run(chapter, reader, results_root=results, log_output=False).skipped
    runner.run(chapter, params, force=True, results_root=results, log_output=False)  # the source again
    assert not runner.run(chapter, reader, results_root=results, log_output=False).skipped


def test_a_run_reading_an_unfinished_run_stops_before_running(toy, monkeypatch):
    chapter, params, results = toy
    _reader_schema(monkeypatch)
    unfinished = results / "toy" / "half"
    unfinished.mkdir(parents=True)
    (unfinished / "summary.json").write_text("{}")  # a summary but no complete manifest
    reader = params.with_name("reader-smoke.yaml")
    reader.write_text(f"study: reader\nprofile: smoke\nsource_runs: {{A: {unfinished}}}\n")
    with pytest.raises(runner.RunError, match=r"half: not a finished run \(no complete manifest.json\), named by "
                                              r"source_runs.A; run it first"):
        runner.run(chapter, reader, results_root=results, log_output=False)
    assert not (results / "reader").exists()


def test_prepare_book_numbers_pages_in_plan_order_and_points_readers_at_prepared_runs(tmp_path, monkeypatch):
    import yaml

    from lib.paths import REPO_ROOT, RESULTS_ROOT

    out = tmp_path / "smoke"
    out.mkdir()
    (out / "00-stale.ipynb").write_text("{}")  # an earlier preparation's page, since renamed
    (out / "00-stale.params.yaml").write_text("study: data\n")
    (out / "00-stale-run").mkdir()
    written = runner.prepare_book(REPO_ROOT / "params/book.yml", "smoke", out, log=lambda line: None)
    names = [p.name for p in written]
    assert names == sorted(names) and sorted(p.name for p in out.glob("*.ipynb")) == names  # stale one gone
    assert not (out / "00-stale-run").exists() and not (out / "00-stale.params.yaml").exists()
    pages = [name.split("-", 1)[1].removesuffix(".ipynb") for name in names]
    plan = runner.load_book_plan(REPO_ROOT / "params/book.yml", "smoke")
    assert pages == [entry["page"] for entry in plan]
    summary = next(p for p in written if p.name.endswith("study_a_summary.ipynb"))
    prepared = yaml.safe_load(summary.with_name(summary.stem + ".params.yaml").read_text())
    for target in ("ET", "TC", "WT"):
        page = next(p for p in written if p.name.endswith(f"study_a_{target.lower()}.ipynb"))
        assert prepared["source_runs"][target] == str(page.with_name(page.stem + "-run").resolve())
    assert not str(RESULTS_ROOT) in json.dumps(prepared["source_runs"])


def test_a_chapter_running_benchmark_scripts_reruns_when_one_changes(toy, monkeypatch, tmp_path):
    chapter, params, results = toy
    root = tmp_path / "repo"
    (root / "benchmarks").mkdir(parents=True)
    script = root / "benchmarks" / "bench_toy.py"
    script.write_text("print(1)\n")
    original = runner.benchmark_scripts_fingerprint
    assert original("no such folder named here", root) is None
    monkeypatch.setattr(runner, "benchmark_scripts_fingerprint", functools.partial(original, root=root))
    chapter.write_text(TOY_CHAPTER + "# runs benchmarks/bench_toy.py\n")
    assert not runner.run(chapter, params, results_root=results, log_output=False).skipped
    assert runner.run(chapter, params, results_root=results, log_output=False).skipped
    script.write_text("print(2)\n")  # the benchmark changed, the chapter did not
    assert not runner.run(chapter, params, results_root=results, log_output=False).skipped
    plain = params.with_name("plain-smoke.yaml")  # a chapter naming no benchmark ignores the folder
    plain.write_text("study: toy\nprofile: smoke\nx: 5\n")
    other = chapter.with_name("plain.py")
    other.write_text(TOY_CHAPTER)
    assert not runner.run(other, plain, results_root=results, log_output=False).skipped
    script.write_text("print(3)\n")
    assert runner.run(other, plain, results_root=results, log_output=False).skipped



def test_check_run_says_why_a_run_would_run_and_nothing_when_it_would_skip(toy):
    chapter, params, results = toy
    check = lambda overrides=None: runner.check_run(chapter, params, overrides, results_root=results)  # noqa: E731
    assert check() == [f"no finished result in {results / 'toy' / 'toy-smoke'}"]
    runner.run(chapter, params, results_root=results, log_output=False)
    assert check() == []
    assert check({"x": 5}) == ["its parameters changed (x: 3 → 5)"]
    chapter.write_text(TOY_CHAPTER + "# an edit\n")
    assert check() == ["the chapter's source changed"]
    assert check({"x": 5}) == ["the chapter's source changed", "its parameters changed (x: 3 → 5)"]
    assert json.loads((results / "toy" / "toy-smoke" / "summary.json").read_text()) == {"square": 9}  # nothing ran
    manifest_file = results / "toy" / "toy-smoke" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["input_parts"]  # a result made before the per-input digests were kept
    manifest_file.write_text(json.dumps(manifest))
    assert check() == ["its inputs changed (the result records no per-input digests: made before they were kept)"]


def test_book_status_follows_needs_and_runs_nothing(toy, monkeypatch, tmp_path):
    chapter, params, results = toy
    _reader_schema(monkeypatch)
    source_dir = results / "toy" / "toy-smoke"
    reader = params.with_name("reader-smoke.yaml")
    reader.write_text(f"study: reader\nprofile: smoke\nsource_runs: {{A: {source_dir}}}\n")
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n"
                    f"  - {{notebook: {chapter}, params: {reader}, page: reader, needs: [toy]}}\n")
    status = runner.book_status(plan, "smoke", results_root=results)
    assert status == [("toy", [f"no finished result in {source_dir}"]),
                      ("reader", [f"no finished result in {results / 'reader' / 'reader-smoke'}",
                                  "a run it reads (source_runs) has no finished result", "it reads toy, which will run"])]
    assert not results.exists()  # a dry run writes nothing
    runner.run(chapter, params, results_root=results, log_output=False)
    runner.run(chapter, reader, results_root=results, log_output=False)
    assert runner.book_status(plan, "smoke", results_root=results) == [("toy", []), ("reader", [])]
    params.write_text("study: toy\nprofile: smoke\nx: 4\n")
    assert runner.book_status(plan, "smoke", results_root=results) == [
        ("toy", ["its parameters changed (x: 3 → 4)"]), ("reader", ["it reads toy, which will run"])]
    runner.run(chapter, params, results_root=results, log_output=False)  # the source again, as make book would
    assert runner.book_status(plan, "smoke", results_root=results) == [("toy", []), ("reader", ["the runs it reads changed"])]


def test_check_run_reports_unusable_data_instead_of_stopping(toy, monkeypatch):
    chapter, params, results = toy
    from lib.data.cohort import CohortError

    def missing_folder(params):
        raise CohortError("/nowhere/BraTS2020: data_dir does not exist (data_source: folder)")

    monkeypatch.setattr(runner, "prepare_inputs", missing_folder)
    assert runner.check_run(chapter, params, results_root=results) == [
        f"no finished result in {results / 'toy' / 'toy-smoke'}",
        "it will stop before running: /nowhere/BraTS2020: data_dir does not exist (data_source: folder)"]
    with pytest.raises(CohortError, match="does not exist"):
        runner.run(chapter, params, results_root=results, log_output=False)


def test_book_status_says_a_page_cannot_run_when_a_page_it_needs_cannot(toy, monkeypatch, tmp_path):
    chapter, params, results = toy
    _reader_schema(monkeypatch)
    from lib.data.cohort import CohortError

    def toy_data_missing(p):
        if p["study"] == "toy":
            raise CohortError("/nowhere: data_dir does not exist (data_source: folder)")
        return None

    monkeypatch.setattr(runner, "prepare_inputs", toy_data_missing)
    reader = params.with_name("reader-smoke.yaml")
    reader.write_text(f"study: reader\nprofile: smoke\nsource_runs: {{A: {results / 'toy' / 'toy-smoke'}}}\n")
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n"
                    f"  - {{notebook: {chapter}, params: {reader}, page: reader, needs: [toy]}}\n")
    (toy_page, toy_reasons), (reader_page, reader_reasons) = runner.book_status(plan, "smoke", results_root=results)
    assert runner.cannot_run(toy_reasons) and toy_reasons[-1].endswith("data_dir does not exist (data_source: folder)")
    assert runner.cannot_run(reader_reasons) and reader_reasons[-1] == "it will not start: it reads toy, which cannot run"
    assert not runner.cannot_run(["its parameters changed"])


def test_a_missing_chapter_is_one_line_before_anything_is_prepared(toy, monkeypatch):
    chapter, params, results = toy
    prepared = []
    monkeypatch.setattr(runner, "prepare_inputs", lambda p: prepared.append(p))
    missing = chapter.with_name("nope.py")
    for call in (lambda: runner.run(missing, params, results_root=results, log_output=False),
                 lambda: runner.check_run(missing, params, results_root=results)):
        with pytest.raises(runner.RunError) as info:  # was FileNotFoundError from read_text
            call()
        assert str(info.value) == f"{missing}: chapter not found"
    assert prepared == [] and not results.exists()
    chapter.write_bytes(b"\xff\xfe not text")
    with pytest.raises(runner.RunError, match=r"toy.py: cannot read the chapter \(not UTF-8 text\)"):
        runner.check_run(chapter, params, results_root=results)


def test_a_book_plan_naming_a_missing_file_stops_before_any_page(toy, tmp_path):
    chapter, params, results = toy
    plan = tmp_path / "book.yml"
    missing = chapter.with_name("nope.py")
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n"
                    f"  - {{notebook: {missing}, params: {params}, page: gone}}\n")
    for call in (lambda: runner.load_book_plan(plan, "smoke"), lambda: runner.book_status(plan, "smoke", results_root=results)):
        with pytest.raises(ParamsError) as info:
            call()
        assert str(info.value) == f"{plan}: runs[1]: key 'notebook': {missing} not found"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: '{tmp_path}/toy-{{profile}}.yaml', page: toy}}\n")
    assert runner.load_book_plan(plan, "smoke")[0]["params"] == str(params)
    with pytest.raises(ParamsError, match=r"runs\[0\]: key 'params': .*toy-paper.yaml not found"):
        runner.load_book_plan(plan, "paper")
    assert not results.exists()


@pytest.mark.parametrize("template, message", [
    ("params/data/{profle}.yaml", "runs[0]: key 'params': unknown placeholder {profle} in "
                                  "'params/data/{profle}.yaml' (known: {profile})"),
    ("params/data/{0}.yaml", "runs[0]: key 'params': 'params/data/{0}.yaml' is not a valid template"),
    ("params/data/{.yaml", "runs[0]: key 'params': 'params/data/{.yaml' is not a valid template"),
    ("params/data/{profile.x}.yaml", "is not a valid template (placeholders: {profile}; write {{ and }} for a brace)"),
])
def test_a_book_plan_placeholder_typo_is_one_line_naming_the_plan_entry_and_placeholder(tmp_path, template, message):
    plan, error = _plan_error(tmp_path, f"{{notebook: book/data.py, params: '{template}', page: data}}")  # was KeyError
    assert error.startswith(f"{plan}: ") and message in error and "\n" not in error


def _plan_error(tmp_path, entry: str) -> tuple:
    """(plan file, the ParamsError's text) for a book plan whose one run is ``entry``."""
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {entry}\n")
    with pytest.raises(ParamsError) as info:
        runner.load_book_plan(plan, "smoke")
    return plan, str(info.value)


@pytest.mark.parametrize("entry, message", [
    ("{notebook: book/data.py, params: 3, page: data}", "runs[0]: key 'params': expected a non-empty text, got 3"),
    ("{notebook: [book/data.py], params: p.yaml, page: data}", "runs[0]: key 'notebook': expected a non-empty text"),
    ("{notebook: book/data.py, params: p.yaml, page: ''}", "runs[0]: key 'page': expected a non-empty text, got ''"),
])
def test_a_book_plan_entry_that_is_not_text_is_one_line(tmp_path, entry, message):
    assert message in _plan_error(tmp_path, entry)[1]


def test_a_damaged_manifest_is_not_trusted(toy):
    chapter, params, results = toy
    out = results / "toy" / "toy-smoke"
    out.mkdir(parents=True)
    (out / "summary.json").write_text("{}")
    for damaged in ("[]", '"complete"', "null"):
        (out / "manifest.json").write_text(damaged)
        assert runner.read_complete_manifest(out) is None  # was AttributeError on .get
    assert runner.check_run(chapter, params, results_root=results) == [f"no finished result in {out}"]


def _stop_between_the_two_renames(chapter, params, results, monkeypatch):
    """A finished result of ``params``, then a run (x=4) stopped after moving it aside: the
    result is only in ``.<name>.old-<pid>``, renamed to a pid no process has."""
    runner.run(chapter, params, results_root=results, log_output=False)
    real_replace = runner.os.replace

    def stop_after_moving_the_old_result_aside(src, dst):
        real_replace(src, dst)
        if ".old-" in str(dst):
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runner.os, "replace", stop_after_moving_the_old_result_aside)
        with pytest.raises(KeyboardInterrupt):
            runner.run(chapter, params, {"x": 4}, results_root=results, log_output=False)
    [old] = results.glob(f"*/.{params.stem}.old-*")
    return old.rename(old.with_name(f".{params.stem}.old-999999999"))


def test_the_dry_run_sees_the_result_a_run_would_restore_and_moves_nothing(toy, monkeypatch, tmp_path):
    chapter, params, results = toy
    old = _stop_between_the_two_renames(chapter, params, results, monkeypatch)
    out = results / "toy" / "toy-smoke"
    assert not out.exists()
    listing = lambda: sorted(str(p.relative_to(results)) for p in results.rglob("*"))  # noqa: E731
    before = listing()
    assert runner.check_run(chapter, params, results_root=results) == []  # was "no finished result"
    assert runner.check_run(chapter, params, {"x": 5}, results_root=results) == ["its parameters changed (x: 3 → 5)"]
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n")
    assert runner.book_status(plan, "smoke", results_root=results) == [("toy", [])]
    assert listing() == before and old.is_dir()  # the dry run restored nothing
    # A folder whose runner is still alive is not restored by a run, so not seen by the dry run either.
    held = old.rename(old.with_name(f".toy-smoke.old-{runner.os.getppid()}"))
    assert runner.check_run(chapter, params, results_root=results) == [f"no finished result in {out}"]
    held.rename(old)
    assert runner.run(chapter, params, results_root=results, log_output=False).skipped  # what the dry run said
    assert out.is_dir() and not old.exists()


def test_a_run_reading_a_result_stopped_mid_swap_restores_it_and_the_dry_run_agrees(toy, monkeypatch, tmp_path):
    chapter, params, results = toy
    _reader_schema(monkeypatch)
    source_dir = results / "toy" / "toy-smoke"
    reader = params.with_name("reader-smoke.yaml")
    reader.write_text(f"study: reader\nprofile: smoke\nsource_runs: {{A: {source_dir}}}\n")
    runner.run(chapter, params, results_root=results, log_output=False)
    runner.run(chapter, reader, results_root=results, log_output=False)
    old = _stop_between_the_two_renames(chapter, params, results, monkeypatch)
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n"
                    f"  - {{notebook: {chapter}, params: {reader}, page: reader, needs: [toy]}}\n")
    assert runner.book_status(plan, "smoke", results_root=results) == [("toy", []), ("reader", [])]
    assert old.is_dir() and not source_dir.exists()
    assert runner.run(chapter, reader, results_root=results, log_output=False).skipped
    assert source_dir.is_dir() and not old.exists()


def test_changed_parameters_are_named_with_their_old_and_new_values():
    before = {"a": 1, "b": 2, "c": 3, "d": 4, "gone": 0}
    now = {"a": 1, "b": 5, "c": 6, "d": 7, "new": [0, 1]}
    assert runner._changed_keys(before, now) == " (b: 2 → 5, c: 3 → 6, d: 4 → 7 and 2 more)"
    assert runner._changed_keys(before, now, shown=9) == (
        " (b: 2 → 5, c: 3 → 6, d: 4 → 7, gone: 0 → —, new: — → [0, 1])")
    assert runner._changed_keys(None, now) == "" and runner._changed_keys(now, now) == ""


def test_the_manifest_names_the_commit_the_run_started_from(toy, monkeypatch):
    """A commit made while a long run goes on is not the code the run imported."""
    chapter, params, results = toy
    head = {"commit": "a" * 40, "dirty": False}
    monkeypatch.setattr(runner, "git_commit", lambda: dict(head))
    finalise = runner._finalise_notebook

    def commit_meanwhile(*args, **kwargs):  # the chapter has run; someone commits before it is recorded
        head["commit"] = "b" * 40
        return finalise(*args, **kwargs)

    monkeypatch.setattr(runner, "_finalise_notebook", commit_meanwhile)
    runner.run(chapter, params, results_root=results, log_output=False)
    manifest = json.loads((results / "toy" / "toy-smoke" / "manifest.json").read_text())
    assert manifest["git"]["commit"] == "a" * 40


def _book_with_a_page_without_x(toy, monkeypatch, tmp_path):
    """A plan of the toy page (has x) and a 'plain' page whose study has no x."""
    chapter, params, results = toy
    monkeypatch.setitem(schemas.SCHEMAS, "plain", {
        "study": Field("str"), "profile": Field("str"), "name": Field("str", default=None, nullable=True)})
    plain = params.with_name("plain-smoke.yaml")
    plain.write_text("study: plain\nprofile: smoke\n")
    plain_chapter = chapter.with_name("plain.py")
    plain_chapter.write_text(TOY_CHAPTER.replace('if P["fail"]', 'if P.get("fail")').replace('P["x"]', "1"))
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n"
                    f"  - {{notebook: {plain_chapter}, params: {plain}, page: plain}}\n")
    return plan


def test_a_book_wide_set_goes_to_the_pages_that_have_the_key(toy, monkeypatch, tmp_path):
    plan = _book_with_a_page_without_x(toy, monkeypatch, tmp_path)
    entries = runner.load_book_plan(plan, "smoke")
    assert runner.book_overrides(entries, {"x": 5}) == {"toy": {"x": 5}, "plain": {}}
    assert runner.book_overrides(entries, None) == {"toy": {}, "plain": {}}
    with pytest.raises(ParamsError, match=r"^--set y: no page of the book plan has this parameter \(pages: toy, plain\)$"):
        runner.book_overrides(entries, {"x": 5, "y": 1})
    for key in runner.BOOK_FIXED_KEYS:
        with pytest.raises(ParamsError, match=rf"^--set {key}: every page of the book keeps its own '{key}'"):
            runner.book_overrides(entries, {key: "other"})


def test_a_book_wide_set_changes_what_runs_and_what_the_status_says(toy, monkeypatch, tmp_path):
    chapter, params, results = toy
    plan = _book_with_a_page_without_x(toy, monkeypatch, tmp_path)
    monkeypatch.setattr(runner, "run", functools.partial(runner.run, results_root=results, log_output=False))
    monkeypatch.setattr(runner, "_publish_page", lambda result_dir, page: None)
    runner.run_book(plan, "smoke", overrides={"x": 5})
    assert json.loads((results / "toy" / "toy-smoke" / "summary.json").read_text()) == {"square": 25}
    assert runner.book_status(plan, "smoke", results_root=results, overrides={"x": 5}) == [("toy", []), ("plain", [])]
    assert runner.book_status(plan, "smoke", results_root=results) == [("toy", ["its parameters changed (x: 5 → 3)"]),
                                                                      ("plain", [])]


def test_a_book_wide_set_reaches_each_parallel_run_as_its_own_set(toy, monkeypatch, tmp_path):
    plan = _book_with_a_page_without_x(toy, monkeypatch, tmp_path)
    commands = []

    class Finished:
        def __init__(self, command, **kwargs):
            commands.append(command)

        def poll(self):
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", Finished)
    value = {"a": [1, "t1ce", 1e-05], "b": "/data/My BraTS: 2020 #1", "c": "/d/\U0001F600/donn\xe9es", "d": "\x85a",
             "e": "yes", "f": None}
    runner.run_book_parallel(plan, "smoke", jobs=2, log=lambda line: None, log_dir=tmp_path / "logs",
                             overrides={"x": 7})
    toy_command, plain_command = commands
    assert toy_command[toy_command.index("--set") + 1] == "x=7"
    assert f"num_threads={runner.threads_per_job(2)}" in toy_command  # the scheduler's share of the cores
    assert "x=7" not in plain_command
    commands.clear()
    monkeypatch.setitem(schemas.SCHEMAS["toy"], "num_threads", Field("int", default=1))
    runner.run_book_parallel(plan, "smoke", jobs=2, log=lambda line: None, log_dir=tmp_path / "logs",
                             overrides={"num_threads": 2})
    assert [arg for arg in commands[0] if arg.startswith("num_threads=")] == ["num_threads=2"]  # the user's wins
    from lib.params import parse_override

    arguments = runner.override_arguments({"x": 7, "tag": value})
    assert dict(parse_override(a) for a in arguments[1::2]) == {"x": 7, "tag": value}  # read back unchanged


@pytest.mark.parametrize("last_line, message", [
    ("error: book/toy.py with toy-smoke.yaml failed: ValueError: planted", "book/toy.py with toy-smoke.yaml failed: ValueError: planted"),
    ("Segmentation fault", "{chapter} with {params} failed: Segmentation fault"),
])
def test_a_failed_parallel_run_is_named_once_with_its_log(toy, monkeypatch, tmp_path, last_line, message):
    """The run's own one-line error is passed on as it is (it was 'X failed: error: X failed: ...')."""
    chapter, params, results = toy
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: toy}}\n")

    class Failed:
        def __init__(self, command, stdout, **kwargs):
            stdout.write(f"running ...\n{last_line}\n")

        def poll(self):
            return 2

    monkeypatch.setattr(runner.subprocess, "Popen", Failed)
    with pytest.raises(runner.RunError) as info:
        runner.run_book_parallel(plan, "smoke", jobs=2, log=lambda line: None, log_dir=tmp_path / "logs")
    expected = message.format(chapter=chapter, params=params)
    assert str(info.value) == f"{expected} (log: {tmp_path / 'logs' / 'toy.log'})"


def test_prepare_deletes_no_notebook_or_folder_it_did_not_write(tmp_path):
    """`prepare-smoke --out` and `prepare --out` replace earlier preparations only: a user's own
    notebook or an ``<name>-run`` folder of theirs is a one-line error, and is left as it was."""
    from lib.paths import REPO_ROOT

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "analysis.ipynb").write_text("{}")
    with pytest.raises(runner.RunError, match=r"analysis.ipynb: a notebook not written by `python -m lib prepare`"):
        runner.prepare_book(REPO_ROOT / "params/book.yml", "smoke", mine, log=lambda line: None)
    assert sorted(p.name for p in mine.iterdir()) == ["analysis.ipynb"]

    chapter, params = REPO_ROOT / "book/data.py", REPO_ROOT / "params/data/smoke.yaml"
    (mine / "analysis-run").mkdir()
    (mine / "analysis-run" / "results.csv").write_text("1\n")
    with pytest.raises(runner.RunError, match=r"analysis.ipynb: exists and was not written by `python -m lib prepare`"):
        runner.prepare_notebook(chapter, params, mine / "analysis.ipynb")
    (mine / "analysis.ipynb").unlink()
    with pytest.raises(runner.RunError, match=r"analysis-run: exists and was not written"):
        runner.prepare_notebook(chapter, params, mine / "analysis.ipynb")
    assert (mine / "analysis-run" / "results.csv").read_text() == "1\n"

    prepared = runner.prepare_notebook(chapter, params, tmp_path / "page.ipynb")
    assert runner.prepare_notebook(chapter, params, prepared) == prepared  # an earlier preparation is replaced
