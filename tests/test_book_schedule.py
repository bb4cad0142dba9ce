"""The book's run scheduler: N runs at a time in plan order, 'alone' runs with nothing beside
them, nothing new after a failure; and the plan file's checks."""

import re

import pytest

from lib import runner
from lib.params import ParamsError


class FakeRun:
    """Stands in for a Popen: finishes with ``code`` after being polled ``polls`` times."""

    def __init__(self, log, name, polls, code):
        self.log, self.name, self.left, self.code = log, name, polls, code
        log.append(("start", name))

    def poll(self):
        self.left -= 1
        if self.left > 0:
            return None
        self.log.append(("end", self.name))
        return self.code


def _replay(events):
    """Max number running at once, and for each run the set of runs it overlapped."""
    running, most, overlaps = set(), 0, {}
    for kind, name in events:
        if kind == "start":
            for other in running:
                overlaps.setdefault(name, set()).add(other)
                overlaps.setdefault(other, set()).add(name)
            running.add(name)
            most = max(most, len(running))
        else:
            running.discard(name)
    return most, overlaps


def _entries(*specs):
    return [{"page": name, "alone": alone} for name, alone in specs]


def _run(entries, jobs, polls=None, codes=None):
    events = []
    polls, codes = polls or {}, codes or {}

    def start(entry):
        return FakeRun(events, entry["page"], polls.get(entry["page"], 2), codes.get(entry["page"], 0))

    finished = []
    result = runner.schedule(entries, jobs, start, on_finish=lambda e, c: finished.append((e["page"], c)),
                             poll_seconds=0)
    return result, events, finished


def test_two_jobs_run_two_at_a_time_in_plan_order():
    entries = _entries(("a", False), ("b", False), ("c", False), ("d", False))
    result, events, _ = _run(entries, jobs=2, polls={"a": 1, "b": 5, "c": 1, "d": 1})
    assert [code for _, code in result] == [0, 0, 0, 0]
    starts = [name for kind, name in events if kind == "start"]
    assert starts == ["a", "b", "c", "d"]
    most, overlaps = _replay(events)
    assert most == 2
    assert overlaps["b"] == {"a", "c", "d"}  # the long run had company all along


def test_one_job_never_overlaps():
    entries = _entries(("a", False), ("b", False), ("c", False))
    _, events, _ = _run(entries, jobs=1)
    assert _replay(events)[0] == 1


def test_an_alone_run_has_nothing_beside_it():
    entries = _entries(("a", False), ("b", False), ("bench", True), ("c", False), ("d", False))
    result, events, _ = _run(entries, jobs=3, polls={"a": 4, "b": 1, "bench": 3})
    _, overlaps = _replay(events)
    assert "bench" not in overlaps
    assert events.index(("start", "bench")) > events.index(("end", "a"))  # waited for the long one
    assert events.index(("start", "c")) > events.index(("end", "bench"))
    assert [code for _, code in result] == [0] * 5


def test_after_a_failure_nothing_new_starts_but_running_runs_finish():
    entries = _entries(("a", False), ("b", False), ("c", False))
    result, events, finished = _run(entries, jobs=2, polls={"a": 1, "b": 4}, codes={"a": 3})
    assert dict((e["page"], c) for e, c in result) == {"a": 3, "b": 0, "c": None}
    assert ("start", "c") not in events and ("end", "b") in events
    assert finished == [("a", 3), ("b", 0)]


def test_threads_are_shared_out():
    assert runner.threads_per_job(2, cpus=2) == 1
    assert runner.threads_per_job(2, cpus=8) == 4
    assert runner.threads_per_job(4, cpus=2) == 1


def test_run_book_refuses_zero_jobs(tmp_path):
    with pytest.raises(ParamsError, match="--jobs: expected a number >= 1, got 0"):
        runner.run_book(tmp_path / "book.yml", jobs=0)


@pytest.mark.parametrize("entry, message", [
    ("  - {notebook: a.py, params: p.yaml, page: a, alone: yes please}\n", "runs[0]: key 'alone': expected true or false"),
    ("  - {notebook: a.py, params: p.yaml, page: a, alnoe: true}\n", "runs[0]: unknown key 'alnoe'"),
    ("  - {notebook: a.py, page: a}\n", "runs[0]: missing key 'params' (each run needs notebook, params, page)"),
    ("  - [a.py, p.yaml, a]\n",
     "runs[0]: expected a mapping with keys notebook, params, page, got ['a.py', 'p.yaml', 'a']"),
    ("  - {notebook: book/data.py, params: params/data/smoke.yaml, page: data}\n"
     "  - {notebook: book/data.py, params: params/data/default.yaml, page: data}\n",
     "runs[1]: key 'page': 'data' is already runs[0]'s page"),
])
def test_plan_errors_are_one_line(tmp_path, entry, message):
    plan = tmp_path / "book.yml"
    plan.write_text("runs:\n" + entry)
    with pytest.raises(ParamsError, match=re.escape(message)) as info:
        runner.load_book_plan(plan, "smoke")
    assert "\n" not in str(info.value)


def test_shipped_plan_runs_the_benchmarks_alone():
    from lib.paths import REPO_ROOT

    plan = runner.load_book_plan(REPO_ROOT / "params/book.yml", "default")
    alone = [entry["page"] for entry in plan if entry["alone"]]
    assert alone == ["study_a_cost"]
    assert plan[0]["page"] == "data" and not plan[0]["alone"]


def test_an_interrupt_stops_the_runs_going():
    events, terminated = [], []

    class Interrupted(FakeRun):
        def poll(self):
            raise KeyboardInterrupt

    class Long(FakeRun):
        def terminate(self):
            terminated.append(self.name)

    def start(entry):
        kind = Interrupted if entry["page"] == "b" else Long
        return kind(events, entry["page"], 100, 0)

    with pytest.raises(KeyboardInterrupt):
        runner.schedule(_entries(("a", False), ("b", False)), 2, start, poll_seconds=0)
    assert terminated == ["a"]


def test_sigterm_stops_the_runs_going_and_the_handler_is_restored():
    import os
    import signal

    events, terminated = [], []
    before = signal.getsignal(signal.SIGTERM)

    class Killed(FakeRun):
        def poll(self):
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid of lib book>` would
            return None

    class Long(FakeRun):
        def terminate(self):
            terminated.append(self.name)

    def start(entry):
        kind = Killed if entry["page"] == "b" else Long
        return kind(events, entry["page"], 100, 0)

    with pytest.raises(KeyboardInterrupt, match="signal"):
        runner.schedule(_entries(("a", False), ("b", False)), 2, start, poll_seconds=0)
    assert terminated == ["a"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_run_that_needs_others_starts_after_they_finished():
    entries = _entries(("data", False), ("et", False), ("tc", False), ("wt", False))
    entries.append({"page": "summary", "alone": False, "needs": ["et", "tc", "wt"]})
    entries.append({"page": "cost", "alone": True})
    result, events, _ = _run(entries, jobs=3, polls={"data": 1, "et": 2, "tc": 6, "wt": 3, "summary": 1})
    assert [code for _, code in result] == [0] * 6
    start = events.index(("start", "summary"))
    assert all(events.index(("end", page)) < start for page in ("et", "tc", "wt"))
    assert events.index(("start", "cost")) > events.index(("end", "summary"))  # plan order is kept


def test_a_run_whose_need_failed_never_starts():
    entries = _entries(("et", False), ("tc", False))
    entries.append({"page": "summary", "alone": False, "needs": ["et", "tc"]})
    result, events, _ = _run(entries, jobs=3, polls={"et": 1, "tc": 3}, codes={"et": 1})
    assert dict((e["page"], c) for e, c in result) == {"et": 1, "tc": 0, "summary": None}
    assert ("start", "summary") not in events


def test_a_need_nothing_provides_is_an_error_not_a_hang():
    entries = [{"page": "summary", "alone": False, "needs": ["et"]}]
    with pytest.raises(runner.RunError, match=r"summary: needs \['et'\], which no earlier run provided"):
        _run(entries, jobs=2)


@pytest.mark.parametrize("needs, message", [
    ("[b]", "runs[0]: key 'needs': 'b' is not a page earlier in the plan"),
    ("b", "runs[0]: key 'needs': expected a list of page names, got 'b'"),
])
def test_plan_needs_are_checked(tmp_path, needs, message):
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: a.py, params: p.yaml, page: a, needs: {needs}}}\n"
                    "  - {notebook: b.py, params: p.yaml, page: b}\n")
    with pytest.raises(ParamsError, match=re.escape(message)):
        runner.load_book_plan(plan, "smoke")
