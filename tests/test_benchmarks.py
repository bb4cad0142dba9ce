"""The benchmarks' arithmetic on hand-made measurements (their timings are measured, not tested)."""

import importlib.util

import pytest

from lib.paths import REPO_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_processes_side_by_side_are_rated_over_their_common_wall_time_not_by_summed_rates():
    bench = _load("bench_parallel")
    # two processes of 100 slices each, one second of training each, the second starting 0.5 s late:
    # summing their own rates says 200 slices/s, but the two took 1.5 s of wall time together
    results = [{"slices": 100, "started": 10.0, "ended": 11.0}, {"slices": 100, "started": 10.5, "ended": 11.5}]
    assert bench.combined_rate(results) == pytest.approx(200 / 1.5)
    assert bench.combined_rate(results[:1]) == pytest.approx(100.0)
