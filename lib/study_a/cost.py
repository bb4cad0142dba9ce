"""What study A costs: the benchmark scripts the appendix page runs, and their JSON reports laid out
as the page's tables and ``summary.json`` keys.

Each ``*_arguments`` function gives a script's command-line arguments from the cost page's
parameters (the study A sizes: ``image_size``, ``ode_*``, ``unet_*``, ...). Each ``*_table``
function takes the report the script wrote (``--out``) and returns ``(table, summary keys)``; it
measures nothing itself. The same scripts run from the command line with ``make bench``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from lib.io import read_json
from lib.paths import REPO_ROOT

# The figures of benchmarks/bench_study_a.py that go to summary.json as bench_<key with "_" for ".">.
ODE_BENCHMARK_KEYS = (
    "training.adjoint.slices_per_second", "training.autograd.slices_per_second", "training.autograd_speedup",
    "inference.slices_per_second", "memory_forward_backward.adjoint.peak_mib",
    "memory_forward_backward.autograd.peak_mib", "flow.one_solve_seconds", "flow.separate_solves_seconds",
    "flow.ratio_separate_over_one", "training_per_modality_field.adjoint.slices_per_second",
    "training_per_modality_field.autograd.slices_per_second",
    "training_per_modality_field.slowdown_adjoint", "training_per_modality_field.slowdown_autograd")
PARALLEL_WORKLOADS = {"unet": "U-Net of Table I", "ode": "neural ODE (autograd)"}
MEMORY_FORMAT_WORKLOADS = {"unet4": "U-Net of Table I, all four modalities", "unet1": "U-Net of Table I, one modality",
                           "ode": "neural ODE, shared field (autograd)",
                           "ode_per_modality": "neural ODE, per-modality variant (autograd)"}
GROUPED_FIELDS = {"looped": "per-modality, four U-Nets in a loop (before)",
                  "grouped": "per-modality, one grouped network (now)",
                  "shared": "shared field of the paper, twice the width"}
SLICE_MEMORY_STEPS = {"split": "8:2 hold-out split", "fold": "one Table I fold, all four modalities",
                      "renamed": "renamed cohort (permutation check)"}


def run_script(script: str, *arguments: str) -> None:
    """Run a benchmark script of the repository in a fresh process (its own threads and peak
    memory); on failure, raise naming the script, with the end of what it wrote to stderr."""
    done = subprocess.run([sys.executable, str(REPO_ROOT / script), *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")


def measure(script: str, arguments: Sequence[str], out: str | Path) -> dict[str, Any]:
    """Run ``script`` (:func:`run_script`) with ``arguments`` and ``--out out``; the JSON report it wrote."""
    run_script(script, *arguments, "--out", str(out))
    return read_json(out)


def bench_study_a_arguments(P: Mapping[str, Any]) -> list[str]:
    """benchmarks/bench_study_a.py at the page's sizes (its own thread count when one is set)."""
    return ["--size", str(P["image_size"]), "--width", str(P["ode_base_width"]), "--depth", str(P["ode_depth"]),
            "--train-steps", str(P["ode_train_steps"]), "--batch", str(P["ode_batch_size"]), "--device", P["device"],
            "--variant-width", str(P["variant_per_modality_width"]),
            *(("--threads", str(P["num_threads"])) if P["num_threads"] else ())]


def bench_parallel_arguments(P: Mapping[str, Any]) -> list[str]:
    """benchmarks/bench_parallel.py at the page's sizes."""
    return ["--size", str(P["image_size"]), "--width", str(P["ode_base_width"]), "--depth", str(P["ode_depth"]),
            "--train-steps", str(P["ode_train_steps"]), "--ode-batch", str(P["ode_batch_size"]),
            "--unet-batch", str(P["unet_batch_size"]), "--unet-width", str(P["unet_base_width"]),
            "--unet-depth", str(P["unet_depth"])]


def bench_memory_format_arguments(P: Mapping[str, Any]) -> list[str]:
    """benchmarks/bench_memory_format.py at the page's sizes, one thread."""
    return ["--size", str(P["image_size"]), "--width", str(P["ode_base_width"]),
            "--variant-width", str(P["variant_per_modality_width"]), "--depth", str(P["ode_depth"]),
            "--unet-width", str(P["unet_base_width"]), "--unet-depth", str(P["unet_depth"]),
            "--train-steps", str(P["ode_train_steps"]), "--ode-batch", str(P["ode_batch_size"]),
            "--unet-batch", str(P["unet_batch_size"]), "--threads", "1", "--device", P["device"]]


def bench_grouped_unet_arguments(P: Mapping[str, Any]) -> list[str]:
    """benchmarks/bench_grouped_unet.py at the page's sizes, one thread."""
    return ["--size", str(P["image_size"]), "--variant-width", str(P["variant_per_modality_width"]),
            "--depth", str(P["ode_depth"]), "--batch", str(P["ode_batch_size"]), "--threads", "1"]


def slice_memory_slices(image_size: int) -> int:
    """How many random slices benchmarks/bench_slice_memory.py holds: about 512 MiB of four float32
    channels, at least 500 and at most 4000 slices."""
    slice_bytes = 4 * 4 * image_size ** 2
    return int(min(4000, max(500, 512 * 2**20 // slice_bytes)))


def flat_table(report: Mapping[str, Any], drop=("command", "config.out")) -> pd.DataFrame:
    """A nested report as one ``value`` column indexed by dotted key, without the keys ``drop``
    names (the command line and output path: temporary paths)."""
    table = pd.json_normalize(report, sep=".").T
    table.columns = ["value"]
    return table.drop(index=[k for k in drop if k in table.index])


def ode_benchmark_table(report: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, float]]:
    """bench_study_a.py's report, flat; summary keys ``bench_<key>`` for :data:`ODE_BENCHMARK_KEYS`."""
    table = flat_table(report)
    return table, {f"bench_{key.replace('.', '_')}": float(table.loc[key, "value"]) for key in ODE_BENCHMARK_KEYS}


def parallel_table(report: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, float]]:
    """bench_parallel.py's report: per workload, one process with every thread against one process
    per core side by side (slices/s) and their ratio (``parallel_speedup_<workload>``)."""
    rows, summary = [], {}
    for workload, label in PARALLEL_WORKLOADS.items():
        measured = report[workload]
        rows.append({"workload": label,
                     f"1 process × {measured['one_process']['threads']} threads (slices/s)":
                         measured["one_process"]["slices_per_second"],
                     f"{measured['side_by_side']['processes']} processes × 1 thread (slices/s, together)":
                         measured["side_by_side"]["slices_per_second"],
                     "ratio": measured["speedup_side_by_side"]})
        summary[f"parallel_speedup_{workload}"] = float(measured["speedup_side_by_side"])
    return pd.DataFrame(rows).set_index("workload"), summary


def memory_format_table(report: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, float]]:
    """bench_memory_format.py's report: per model, training slices/s in the standard and the
    channels-last layout and their ratio (``channels_last_speedup_<model>``)."""
    table = pd.DataFrame([
        {"model": label,
         "standard layout (slices/s)": report[workload]["contiguous_slices_per_second"],
         "channels-last (slices/s)": report[workload]["channels_last_slices_per_second"],
         "ratio": report[workload]["channels_last_speedup"]}
        for workload, label in MEMORY_FORMAT_WORKLOADS.items()]).set_index("model")
    return table, {f"channels_last_speedup_{w}": float(report[w]["channels_last_speedup"])
                   for w in MEMORY_FORMAT_WORKLOADS}


def grouped_unet_table(report: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, float]]:
    """bench_grouped_unet.py's report: ms per forward + backward of each vector field and its cost
    over the shared field; the report's two ratios as summary keys."""
    table = pd.DataFrame([
        {"vector field": label, "ms per forward + backward": report[f"{name}_ms_per_pass"],
         "× the shared field": report[f"{name}_ms_per_pass"] / report["shared_ms_per_pass"]}
        for name, label in GROUPED_FIELDS.items()]).set_index("vector field")
    return table, {"grouped_speedup_over_looped": float(report["grouped_speedup_over_looped"]),
                   "grouped_cost_over_shared": float(report["grouped_cost_over_shared"])}


def slice_memory_table(report: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, float]]:
    """bench_slice_memory.py's report (its ``steps``): per step, the peak RAM beyond the images,
    as a multiple of them, the way it was done before and now (``slice_memory_<step>_before``/``_now``)."""
    steps = report["steps"]
    table = pd.DataFrame([
        {"step": SLICE_MEMORY_STEPS[step], "before": measured["before"], "before (× images)":
             measured[measured["before"]]["peak_per_images"], "now": measured["now"],
         "now (× images)": measured[measured["now"]]["peak_per_images"],
         "images (MiB)": measured[measured["now"]]["images_mib"]}
        for step, measured in steps.items()]).set_index("step")
    summary = {}
    for step, measured in steps.items():
        summary[f"slice_memory_{step}_before"] = float(measured[measured["before"]]["peak_per_images"])
        summary[f"slice_memory_{step}_now"] = float(measured[measured["now"]]["peak_per_images"])
    return table, summary


def benchmark_paragraph(summary: Mapping[str, Any], variant_width: int) -> str:
    """What bench_study_a.py measured, in one paragraph, from the page's ``summary.json`` keys."""
    s = summary
    return (
        f"Training: adjoint {s['bench_training_adjoint_slices_per_second']:.1f} slices/s, backpropagation "
        f"through the solver {s['bench_training_autograd_slices_per_second']:.1f} slices/s "
        f"({s['bench_training_autograd_speedup']:.2f}×); peak memory of one forward + backward "
        f"{s['bench_memory_forward_backward_adjoint_peak_mib']:.0f} vs "
        f"{s['bench_memory_forward_backward_autograd_peak_mib']:.0f} MiB. Inference "
        f"{s['bench_inference_slices_per_second']:.1f} slices/s. The 101-frame flow: one solve "
        f"{s['bench_flow_one_solve_seconds']:.2f} s, 100 separate solves "
        f"{s['bench_flow_separate_solves_seconds']:.1f} s ({s['bench_flow_ratio_separate_over_one']:.0f}×). "
        f"The labelled variant with one U-Net of width {variant_width} per modality as the vector "
        f"field (a section of each study A page) trains "
        f"{s['bench_training_per_modality_field_autograd_slices_per_second']:.1f} slices/s with backpropagation "
        f"through the solver, {s['bench_training_per_modality_field_slowdown_autograd']:.2f}× slower than the "
        f"shared field ({s['bench_training_per_modality_field_slowdown_adjoint']:.2f}× with the adjoint).")


def closing_blocks(summary: Mapping[str, Any], ode_train_steps: int) -> list[str]:
    """The page's closing Markdown, from its ``summary.json`` keys: the speed findings, then the
    memory findings when the slice-memory benchmark ran (it reads Linux's /proc)."""
    s = summary
    layout = [v for k, v in s.items() if k.startswith("channels_last_speedup_")]
    blocks = [
        f"- On {s['device']}, backpropagation through the {ode_train_steps} RK4 steps trains "
        f"{s['bench_training_autograd_speedup']:.2f}× as many slices per second as the adjoint and takes "
        f"{s['bench_memory_forward_backward_autograd_peak_mib'] / max(s['bench_memory_forward_backward_adjoint_peak_mib'], 1e-9):.1f}× "
        "its peak memory.\n"
        f"- One solve on the 0.01 grid renders the 101 frames {s['bench_flow_ratio_separate_over_one']:.0f}× "
        "faster than 100 separate solves.\n"
        f"- Processes side by side, one thread each, against one process with every thread: "
        f"{s['parallel_speedup_unet']:.2f}× the U-Net training throughput and "
        f"{s['parallel_speedup_ode']:.2f}× the neural ODE's.\n"
        f"- The channels-last layout against the standard one: {min(layout):.2f}–{max(layout):.2f}× the training "
        "throughput of the models above.\n"
        f"- The per-modality variant's field as one grouped network runs "
        f"{s['grouped_speedup_over_looped']:.2f}× as fast as its U-Nets in a loop, and costs "
        f"{s['grouped_cost_over_shared']:.2f}× the paper's shared field."]
    if "slice_memory_fold_now" in s:
        blocks.append(
            "- Beyond the images themselves, a Table I fold holds "
            f"{s['slice_memory_fold_now']:.2f}× them now ({s['slice_memory_fold_before']:.2f}× as it was "
            f"done before), the split {s['slice_memory_split_now']:.2f}× "
            f"({s['slice_memory_split_before']:.2f}×) and the renamed cohort "
            f"{s['slice_memory_renamed_now']:.2f}× ({s['slice_memory_renamed_before']:.2f}×).")
    return blocks
