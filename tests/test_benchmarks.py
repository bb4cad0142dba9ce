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


def test_the_unet_workload_has_the_table_i_unet_size_not_the_vector_field_size():
    """The cost page's 'U-Net of Table I' row used the ODE's width and depth: unet_base_width and
    unet_depth reached only the memory-layout benchmark."""
    bench = _load("bench_parallel")
    args = bench.parse_args(["--width", "8", "--depth", "4", "--unet-width", "16", "--unet-depth", "5"])
    command = bench._command(args, "unet", 1)
    worker = bench.parse_args(command[2:])
    assert (worker.width, worker.depth, worker.unet_width, worker.unet_depth) == (8, 4, 16, 5)
    default = bench.parse_args(["--width", "8", "--depth", "4"])  # without them: the shared size, as before
    assert bench.unet_size(default) == (8, 4) and bench.unet_size(worker) == (16, 5)
    chapter = (REPO_ROOT / "book/study_a_cost.py").read_text()
    call = chapter[chapter.index('run_script("benchmarks/bench_parallel.py"'):]
    call = call[:call.index("--out")]
    assert '"--unet-width", str(P["unet_base_width"])' in call and '"--unet-depth", str(P["unet_depth"])' in call


def test_compile_benchmark_rates_over_summed_time_and_compiles_the_fields_network_inside_an_ode():
    bench = _load("bench_compile")
    # 300 slices in 2 s eager, 300 in 3 s compiled: 150 vs 100 slices/s, compiled at 2/3 of eager's speed
    rates = bench.speedup({"eager": 2.0, "compiled": 3.0}, {"eager": 300, "compiled": 300})
    assert rates["eager_slices_per_second"] == pytest.approx(150.0)
    assert rates["compiled_speedup"] == pytest.approx(2 / 3)
    from lib.models.grouped_unet import GroupedUNet2D
    from lib.models.unet import UNet2D

    args = bench.parse_args(["--width", "4", "--depth", "2", "--unet-width", "4", "--unet-depth", "2",
                             "--variant-width", "2"])
    unet4, _, _ = bench.build(args, "unet4")
    assert bench.compiled_part(unet4, "unet4") is unet4
    ode, _, _ = bench.build(args, "ode")
    assert isinstance(bench.compiled_part(ode, "ode"), UNet2D) and bench.compiled_part(ode, "ode") is ode.vector_field.unet
    variant, _, _ = bench.build(args, "ode_per_modality")
    assert isinstance(bench.compiled_part(variant, "ode_per_modality"), GroupedUNet2D)
