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
    # the cost page's call (lib.study_a.cost) hands the page's U-Net size to the script
    from lib.study_a import cost

    page = bench.parse_args(cost.bench_parallel_arguments(_COST_PARAMS))
    assert bench.unet_size(page) == (16, 5) and (page.width, page.depth) == (8, 4)


# The sizes of a cost page, each distinct, so that an argument handed to the wrong option shows.
_COST_PARAMS = {"image_size": 40, "ode_base_width": 8, "ode_depth": 4, "ode_train_steps": 3, "ode_batch_size": 6,
                "variant_per_modality_width": 2, "unet_base_width": 16, "unet_depth": 5, "unet_batch_size": 7,
                "device": "cpu", "num_threads": 1}


@pytest.mark.parametrize("script, arguments, expected", [
    ("bench_study_a", "bench_study_a_arguments",
     {"size": 40, "width": 8, "depth": 4, "train_steps": 3, "batch": 6, "variant_width": 2, "threads": 1}),
    ("bench_parallel", "bench_parallel_arguments",
     {"size": 40, "width": 8, "depth": 4, "train_steps": 3, "ode_batch": 6, "unet_batch": 7, "unet_width": 16,
      "unet_depth": 5}),
    ("bench_memory_format", "bench_memory_format_arguments",
     {"size": 40, "width": 8, "variant_width": 2, "depth": 4, "unet_width": 16, "unet_depth": 5, "train_steps": 3,
      "ode_batch": 6, "unet_batch": 7, "threads": 1}),
    ("bench_grouped_unet", "bench_grouped_unet_arguments",
     {"size": 40, "variant_width": 2, "depth": 4, "batch": 6, "threads": 1}),
])
def test_the_cost_page_hands_each_script_its_sizes(script, arguments, expected):
    """Each benchmark script parses what the cost page hands it (lib.study_a.cost), every size to its option."""
    from lib.study_a import cost

    parsed = vars(_load(script).parse_args(getattr(cost, arguments)(_COST_PARAMS)))
    assert {key: parsed[key] for key in expected} == expected


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
