"""The kernel a chapter runs in (lib.kernel): encrypted transport without ipykernel's plain-TCP
warning, and Ctrl-C in the middle of a cell stops the run without a ZMQ traceback or a stray
kernel."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import zmq

from lib import kernel, runner, schemas
from lib.io import _pid_alive as _alive
from lib.params import Field
from lib.paths import REPO_ROOT

CHAPTER = textwrap.dedent(
    '''
    # %% tags=["parameters"]
    params_file = None
    run_dir = None

    # %%
    import json, os, pathlib, time, yaml
    P = yaml.safe_load(open(params_file))
    pathlib.Path(P["marker"]).write_text(str(os.getpid()))  # the kernel's pid: the cell has started
    time.sleep(P["sleep"])
    (pathlib.Path(run_dir) / "summary.json").write_text(json.dumps({"slept": P["sleep"]}))
    '''
)
SCHEMA = {"study": Field("str"), "profile": Field("str"), "name": Field("str", default=None, nullable=True),
          "marker": Field("str"), "sleep": Field("float")}


@pytest.fixture
def sleeper(tmp_path, monkeypatch):
    monkeypatch.setitem(schemas.SCHEMAS, "sleeper", SCHEMA)
    chapter = tmp_path / "sleeper.py"
    chapter.write_text(CHAPTER)
    params = tmp_path / "sleeper-smoke.yaml"
    marker = tmp_path / "kernel.pid"
    params.write_text(f"study: sleeper\nprofile: smoke\nmarker: {marker}\nsleep: 0\n")
    return chapter, params, marker, tmp_path / "results"


@pytest.mark.skipif(not zmq.has("curve"), reason="this pyzmq has no CurveZMQ")
def test_the_kernel_talks_encrypted_and_ipykernel_has_no_plain_tcp_warning(sleeper, capfd):
    chapter, params, marker, results = sleeper
    assert kernel.ChapterKernelManager().transport_encryption == "auto"
    outcome = runner.run(chapter, params, results_root=results, log_output=False)
    assert (outcome.result_dir / "summary.json").is_file()
    assert "without encryption" not in capfd.readouterr().err  # the stock manager's kernel warns


def test_shutdown_is_immediate_only_while_a_cell_is_running(monkeypatch):
    asked = []

    async def record(self, now=False, restart=False):
        asked.append(now)

    monkeypatch.setattr(kernel.AsyncKernelManager, "_async_shutdown_kernel", record)
    manager = kernel.ChapterKernelManager()
    import asyncio

    options = kernel.execution_options()  # a new run: no cell running
    asyncio.run(manager.shutdown_kernel())
    options["on_cell_execute"](cell=None, cell_index=0)
    asyncio.run(manager.shutdown_kernel())  # Ctrl-C while the cell runs
    options["on_cell_executed"](cell=None, cell_index=0, execute_reply={})
    asyncio.run(manager.shutdown_kernel())
    asyncio.run(manager.shutdown_kernel(now=True))
    assert asked == [False, True, False, True]
    assert options["kernel_manager_class"] is kernel.ChapterKernelManager


@pytest.mark.parametrize("command", ["run", "book"])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_stopping_a_run_in_a_cell_leaves_no_traceback_kernel_or_result(sleeper, stop, command, tmp_path):
    """`python -m lib run` (or `lib book`, one job) stopped while a cell runs: exit 130 with one
    line, the kernel gone at once, nothing left in the results folder (not even the temporary folder)."""
    chapter, params, marker, results = sleeper
    params.write_text(params.read_text().replace("sleep: 0", "sleep: 120"))
    plan = tmp_path / "book.yml"
    plan.write_text(f"runs:\n  - {{notebook: {chapter}, params: {params}, page: sleeper}}\n")
    argv = (["run", str(chapter), "--params", str(params)] if command == "run" else
            ["book", "--plan", str(plan), "--profile", "smoke", "--no-build", "--jobs", "1"])
    script = textwrap.dedent(f'''
        import functools, signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job may inherit it ignored
        from lib import runner, schemas
        from lib.__main__ import main
        from tests.test_kernel import SCHEMA
        schemas.SCHEMAS["sleeper"] = SCHEMA
        runner.run = functools.partial(runner.run, results_root={str(results)!r})
        runner._publish_page = lambda result_dir, page: None
        sys.exit(main({argv!r}))
        ''')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (marker.is_file() and marker.read_text()) and time.time() < deadline:
            time.sleep(0.2)
        assert marker.is_file(), "the cell never started"
        time.sleep(0.5)
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    kernel_pid = int(marker.read_text())
    deadline = time.time() + 10
    while _alive(kernel_pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel_pid)
    assert "Traceback" not in err and "non-socket" not in err, err
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 130 and last.startswith("interrupted: ") and last.endswith("no result was written"), err
    assert not (results / "sleeper").exists() or not list((results / "sleeper").iterdir())
