"""lib.study_a.cost: the cost page's tables, summary keys and closing lines from hand-made benchmark
reports whose every number is known."""

import pytest

from lib.study_a import cost


def _ode_report():
    """bench_study_a.py's report: every figure the page reads, each a distinct number."""
    report = {"command": "python bench", "config": {"out": "/tmp/x.json", "size": 32}}
    for i, key in enumerate(cost.ODE_BENCHMARK_KEYS):
        node = report
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = float(i + 1)
    return report


def test_ode_benchmark_table_flat_without_temporary_paths():
    table, summary = cost.ode_benchmark_table(_ode_report())
    assert "command" not in table.index and "config.out" not in table.index
    assert table.loc["config.size", "value"] == 32
    assert summary["bench_training_adjoint_slices_per_second"] == 1.0
    assert summary["bench_training_per_modality_field_slowdown_autograd"] == float(len(cost.ODE_BENCHMARK_KEYS))
    assert len(summary) == len(cost.ODE_BENCHMARK_KEYS)


def test_parallel_memory_format_and_grouped_tables():
    parallel = {w: {"one_process": {"threads": 2, "slices_per_second": 10.0},
                    "side_by_side": {"processes": 2, "slices_per_second": 15.0 + i}, "speedup_side_by_side": 1.5 + i}
                for i, w in enumerate(("unet", "ode"))}
    table, summary = cost.parallel_table(parallel)
    assert list(table.index) == ["U-Net of Table I", "neural ODE (autograd)"]
    assert list(table.columns) == ["1 process × 2 threads (slices/s)", "2 processes × 1 thread (slices/s, together)",
                                   "ratio"]
    assert summary == {"parallel_speedup_unet": 1.5, "parallel_speedup_ode": 2.5}

    layout = {w: {"contiguous_slices_per_second": 4.0, "channels_last_slices_per_second": 5.0,
                  "channels_last_speedup": 1.25 - 0.1 * i} for i, w in enumerate(cost.MEMORY_FORMAT_WORKLOADS)}
    table, summary = cost.memory_format_table(layout)
    assert table["ratio"].tolist() == pytest.approx([1.25, 1.15, 1.05, 0.95])
    assert summary["channels_last_speedup_ode_per_modality"] == pytest.approx(0.95)

    grouped = {"looped_ms_per_pass": 40.0, "grouped_ms_per_pass": 30.0, "shared_ms_per_pass": 20.0,
               "grouped_speedup_over_looped": 1.33, "grouped_cost_over_shared": 1.5}
    table, summary = cost.grouped_unet_table(grouped)
    assert table["× the shared field"].tolist() == [2.0, 1.5, 1.0]
    assert summary == {"grouped_speedup_over_looped": 1.33, "grouped_cost_over_shared": 1.5}


def test_slice_memory_table_reads_each_way_by_its_name():
    report = {"steps": {"fold": {"before": "copy", "now": "batches",
                                 "copy": {"peak_per_images": 2.1, "images_mib": 100.0},
                                 "batches": {"peak_per_images": 0.2, "images_mib": 99.0}}}}
    table, summary = cost.slice_memory_table(report)
    row = table.loc["one Table I fold, all four modalities"]
    assert (row["before"], row["before (× images)"], row["now"], row["now (× images)"], row["images (MiB)"]) == (
        "copy", 2.1, "batches", 0.2, 99.0)
    assert summary == {"slice_memory_fold_before": 2.1, "slice_memory_fold_now": 0.2}


@pytest.mark.parametrize("size, slices", [(32, 4000), (240, 582), (1024, 500)])
def test_slice_memory_slices_about_512_mib_within_bounds(size, slices):
    assert cost.slice_memory_slices(size) == slices


def _summary():
    _, summary = cost.ode_benchmark_table(_ode_report())
    summary.update({"device": "cpu", "parallel_speedup_unet": 1.5, "parallel_speedup_ode": 1.2,
                    "channels_last_speedup_unet4": 1.3, "channels_last_speedup_ode": 0.9,
                    "grouped_speedup_over_looped": 1.1, "grouped_cost_over_shared": 1.4})
    return summary


def test_closing_blocks_memory_line_only_when_measured():
    blocks = cost.closing_blocks(_summary(), ode_train_steps=4)
    assert len(blocks) == 1
    # training: autograd speedup is key 3; peak memory autograd (6) over adjoint (5)
    assert blocks[0].startswith("- On cpu, backpropagation through the 4 RK4 steps trains 3.00× as many slices "
                                "per second as the adjoint and takes 1.2× its peak memory.")
    assert "The channels-last layout against the standard one: 0.90–1.30× the training" in blocks[0]
    with_memory = {**_summary(), **{f"slice_memory_{s}_{w}": v for s in ("fold", "split", "renamed")
                                    for w, v in (("before", 2.0), ("now", 0.5))}}
    blocks = cost.closing_blocks(with_memory, ode_train_steps=4)
    assert blocks[1].startswith("- Beyond the images themselves, a Table I fold holds 0.50× them now (2.00×")


def test_benchmark_paragraph_and_a_failing_script_named():
    paragraph = cost.benchmark_paragraph(_summary(), variant_width=6)
    assert paragraph.startswith("Training: adjoint 1.0 slices/s, backpropagation through the solver 2.0 slices/s")
    assert "one U-Net of width 6 per modality" in paragraph
    with pytest.raises(RuntimeError, match=r"benchmarks/no_such_script.py failed \(exit 2\)"):
        cost.run_script("benchmarks/no_such_script.py")


def test_arguments_mirror_the_parameters():
    P = {"image_size": 48, "ode_base_width": 8, "ode_depth": 4, "ode_train_steps": 3, "ode_batch_size": 16,
         "device": "cpu", "variant_per_modality_width": 4, "num_threads": 0, "unet_batch_size": 8,
         "unet_base_width": 16, "unet_depth": 4}
    args = cost.bench_study_a_arguments(P)
    assert "--threads" not in args and args[args.index("--size") + 1] == "48"
    assert cost.bench_study_a_arguments({**P, "num_threads": 1})[-2:] == ["--threads", "1"]
    assert cost.bench_memory_format_arguments(P)[cost.bench_memory_format_arguments(P).index("--threads") + 1] == "1"
    parallel = cost.bench_parallel_arguments(P)
    assert parallel[parallel.index("--unet-width") + 1] == "16" and parallel[parallel.index("--ode-batch") + 1] == "16"
