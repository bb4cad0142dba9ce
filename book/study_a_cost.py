# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Study A, appendix: what the neural ODE costs
#
# **What this page shows.** Measured in this build, on the machine that built it: training slices/s
# of the neural ODE with the paper's adjoint and with backpropagation through the RK4 steps, inference
# slices/s, the peak memory of one forward + backward for each, and the paper's 101-frame trajectory
# rendered in one solve against 100 separate solves from $t = 0$. Then why `make book` runs the
# chapters side by side, one thread each: the throughput of one process with every thread against one process per
# core, for the U-Net of Table I and for the neural ODE. Then what the channels-last memory layout of
# the U-Nets buys over the standard one, for every model study A trains, and what evaluating the
# per-modality variant's U-Nets as one grouped network buys over a loop. Last, how much RAM the
# steps that could copy the cohort's images hold beyond them, as they were done before and now.
#
# **What it needs.** Nothing but the CPU (or GPU) it runs on: the models see random images, since
# their cost does not depend on the values. The sizes are those of the study A parameter file
# (`image_size`, `ode_base_width`, `ode_depth`, `ode_train_steps`, `ode_batch_size`, `unet_*`). The
# book runs this page alone (`alone: true` in `params/book.yml`), with nothing else on the CPU.
# The same measurements from the command line: `make bench`.

# %% tags=["parameters"]
params_file = "params/study_a/cost-default.yaml"
run_dir = None

# %% tags=["hide-input"]
import json
import os
import subprocess
import sys

import pandas as pd
from IPython.display import Markdown, display

from lib.device import device_name, resolve_device
from lib.paths import REPO_ROOT
from lib.results import setup

P, run = setup(params_file, run_dir)
pd.set_option("display.max_colwidth", None)  # tables show whole cells: pandas cuts text at 50 characters
device = resolve_device(P["device"])
summary = {"device": device_name(device)}
display(Markdown(f"Device: **{device_name(device)}**, {os.cpu_count()} CPU cores. Random images of "
                 f"{P['image_size']}×{P['image_size']} px, four modalities (no patient or phantom data on this page)."))


def run_script(script: str, *arguments: str) -> None:
    """Run a benchmark script of the repository; on failure, say which and show its last words."""
    done = subprocess.run([sys.executable, str(REPO_ROOT / script), *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")


def flat_table(report: dict, drop=("command", "config.out")) -> pd.DataFrame:
    table = pd.json_normalize(report, sep=".").T
    table.columns = ["value"]
    return table.drop(index=[k for k in drop if k in table.index])  # temporary paths


# %% [markdown]
# ## The neural ODE: adjoint vs backpropagation through the solver, inference, the 101-frame flow
#
# `benchmarks/bench_study_a.py` with the model of this profile. The peak memory is measured in a fresh
# process per method (the resident set above what it was before one forward + backward, after a
# forward + backward on one slice has done the one-off set-up; on a GPU the allocator's peak). Each
# speed comparison is timed in alternating rounds (`--rounds`, 3 by default) and the medians are
# shown, so drift of the machine's speed reaches both sides alike. The 100 separate solves are
# extrapolated from every 10th one, by the exact count of RK4 steps (the table says how many were
# timed), and their frames are checked against the one solve's. The same training timed for the
# labelled variant of the study A pages whose vector field is one U-Net per modality.

# %% tags=["hide-input"]
if P["run_benchmark"]:
    bench_file = run.sub("benchmark.json")
    run_script("benchmarks/bench_study_a.py", "--size", str(P["image_size"]), "--width", str(P["ode_base_width"]),
               "--depth", str(P["ode_depth"]), "--train-steps", str(P["ode_train_steps"]),
               "--batch", str(P["ode_batch_size"]), "--device", P["device"], "--out", str(bench_file),
               "--variant-width", str(P["variant_per_modality_width"]),
               *(("--threads", str(P["num_threads"])) if P["num_threads"] else ()))
    ode_bench = flat_table(json.loads(bench_file.read_text()))
    run.table("benchmark", ode_bench, index=True)
    for key in ("training.adjoint.slices_per_second", "training.autograd.slices_per_second", "training.autograd_speedup",
                "inference.slices_per_second", "memory_forward_backward.adjoint.peak_mib",
                "memory_forward_backward.autograd.peak_mib", "flow.one_solve_seconds", "flow.separate_solves_seconds",
                "flow.ratio_separate_over_one", "training_per_modality_field.adjoint.slices_per_second",
                "training_per_modality_field.autograd.slices_per_second",
                "training_per_modality_field.slowdown_adjoint", "training_per_modality_field.slowdown_autograd"):
        summary[f"bench_{key.replace('.', '_')}"] = float(ode_bench.loc[key, "value"])
    with pd.option_context("display.max_rows", None):  # every benchmark figure, not pandas' first and last rows
        display(ode_bench)
    display(Markdown(
        f"Training: adjoint {summary['bench_training_adjoint_slices_per_second']:.1f} slices/s, backpropagation "
        f"through the solver {summary['bench_training_autograd_slices_per_second']:.1f} slices/s "
        f"({summary['bench_training_autograd_speedup']:.2f}×); peak memory of one forward + backward "
        f"{summary['bench_memory_forward_backward_adjoint_peak_mib']:.0f} vs "
        f"{summary['bench_memory_forward_backward_autograd_peak_mib']:.0f} MiB. Inference "
        f"{summary['bench_inference_slices_per_second']:.1f} slices/s. The 101-frame flow: one solve "
        f"{summary['bench_flow_one_solve_seconds']:.2f} s, 100 separate solves "
        f"{summary['bench_flow_separate_solves_seconds']:.1f} s ({summary['bench_flow_ratio_separate_over_one']:.0f}×). "
        f"The labelled variant with one U-Net of width {P['variant_per_modality_width']} per modality as the vector "
        f"field (a section of each study A page) trains "
        f"{summary['bench_training_per_modality_field_autograd_slices_per_second']:.1f} slices/s with backpropagation "
        f"through the solver, {summary['bench_training_per_modality_field_slowdown_autograd']:.2f}× slower than the "
        f"shared field ({summary['bench_training_per_modality_field_slowdown_adjoint']:.2f}× with the adjoint)."))
else:
    print("Benchmark not run (run_benchmark: false in the parameter file).")

# %% [markdown]
# ## Chapters side by side: one process with every thread vs one process per core
#
# `benchmarks/bench_parallel.py`: each process trains one workload of this profile on its own; the
# processes warm up, wait for each other and start training together, and their rate is all their
# slices over the wall time from the first start to the last end. Where one process per core trains more slices per
# second in total, running chapters side by side (`python -m lib book --jobs N`, each run with
# CPUs / N torch threads) finishes the book sooner, and `make book` does so.

# %% tags=["hide-input"]
if P["run_benchmark"]:
    parallel_file = run.sub("parallel.json")
    run_script("benchmarks/bench_parallel.py", "--size", str(P["image_size"]), "--width", str(P["ode_base_width"]),
               "--depth", str(P["ode_depth"]), "--train-steps", str(P["ode_train_steps"]),
               "--ode-batch", str(P["ode_batch_size"]), "--unet-batch", str(P["unet_batch_size"]),
               "--unet-width", str(P["unet_base_width"]), "--unet-depth", str(P["unet_depth"]),
               "--out", str(parallel_file))
    parallel = json.loads(parallel_file.read_text())
    rows = []
    for workload, label in (("unet", "U-Net of Table I"), ("ode", "neural ODE (autograd)")):
        measured = parallel[workload]
        rows.append({"workload": label,
                     f"1 process × {measured['one_process']['threads']} threads (slices/s)":
                         measured["one_process"]["slices_per_second"],
                     f"{measured['side_by_side']['processes']} processes × 1 thread (slices/s, together)":
                         measured["side_by_side"]["slices_per_second"],
                     "ratio": measured["speedup_side_by_side"]})
        summary[f"parallel_speedup_{workload}"] = float(measured["speedup_side_by_side"])
    parallel_table = pd.DataFrame(rows).set_index("workload")
    run.table("parallel", parallel_table, index=True)
    display(parallel_table.round(2))

# %% [markdown]
# ## Memory layout: channels-last vs the standard layout
#
# `benchmarks/bench_memory_format.py`: every U-Net of study A keeps its weights and activations in the
# channels-last (NHWC) layout (`lib.models.unet.UNet2D`, `channels_last=True`). Only the layout
# changes, not the arithmetic. Each model this profile trains is trained here in both layouts, in
# alternating rounds in one process with one thread (what `make book` gives each chapter).

# %% tags=["hide-input"]
if P["run_benchmark"]:
    layout_file = run.sub("memory_format.json")
    run_script("benchmarks/bench_memory_format.py", "--size", str(P["image_size"]), "--width", str(P["ode_base_width"]),
               "--variant-width", str(P["variant_per_modality_width"]), "--depth", str(P["ode_depth"]),
               "--unet-width", str(P["unet_base_width"]), "--unet-depth", str(P["unet_depth"]),
               "--train-steps", str(P["ode_train_steps"]), "--ode-batch", str(P["ode_batch_size"]),
               "--unet-batch", str(P["unet_batch_size"]), "--threads", "1", "--device", P["device"],
               "--out", str(layout_file))
    layout = json.loads(layout_file.read_text())
    labels = {"unet4": "U-Net of Table I, all four modalities", "unet1": "U-Net of Table I, one modality",
              "ode": "neural ODE, shared field (autograd)", "ode_per_modality": "neural ODE, per-modality variant (autograd)"}
    layout_table = pd.DataFrame([
        {"model": label,
         "standard layout (slices/s)": layout[workload]["contiguous_slices_per_second"],
         "channels-last (slices/s)": layout[workload]["channels_last_slices_per_second"],
         "ratio": layout[workload]["channels_last_speedup"]}
        for workload, label in labels.items()]).set_index("model")
    run.table("memory_format", layout_table, index=True)
    for workload in labels:
        summary[f"channels_last_speedup_{workload}"] = float(layout[workload]["channels_last_speedup"])
    display(layout_table.round(2))

# %% [markdown]
# ## The per-modality variant: one grouped network vs a loop over its U-Nets
#
# `benchmarks/bench_grouped_unet.py`: the labelled variant's vector field (one U-Net per modality,
# `lib.models.node.PerModalityVectorField`) evaluates its four U-Nets as one network with grouped
# convolutions (`lib.models.grouped_unet.GroupedUNet2D`): the same function, checked to agree before
# timing. Here one forward + backward pass of the field on a batch, in alternating rounds in one
# process with one thread: the grouped network, the same four U-Nets run one after another (how the
# field ran before), and the paper's shared field of twice the width, which does the same number of
# multiply-adds.

# %% tags=["hide-input"]
if P["run_benchmark"]:
    grouped_file = run.sub("grouped_unet.json")
    run_script("benchmarks/bench_grouped_unet.py", "--size", str(P["image_size"]),
               "--variant-width", str(P["variant_per_modality_width"]), "--depth", str(P["ode_depth"]),
               "--batch", str(P["ode_batch_size"]), "--threads", "1", "--out", str(grouped_file))
    grouped = json.loads(grouped_file.read_text())
    grouped_table = pd.DataFrame([
        {"vector field": label, "ms per forward + backward": grouped[f"{name}_ms_per_pass"],
         "× the shared field": grouped[f"{name}_ms_per_pass"] / grouped["shared_ms_per_pass"]}
        for name, label in [("looped", "per-modality, four U-Nets in a loop (before)"),
                            ("grouped", "per-modality, one grouped network (now)"),
                            ("shared", "shared field of the paper, twice the width")]]).set_index("vector field")
    run.table("grouped_unet", grouped_table, index=True)
    summary["grouped_speedup_over_looped"] = float(grouped["grouped_speedup_over_looped"])
    summary["grouped_cost_over_shared"] = float(grouped["grouped_cost_over_shared"])
    display(grouped_table.round(2))

# %% [markdown]
# ## RAM for the slices: what each step holds beyond the images
#
# `benchmarks/bench_slice_memory.py`: the steps of study A that could copy the cohort's images,
# each done the way it was before and the way it is now, each in a fresh process, as the peak
# resident memory above what the process held before the step, in multiples of the images it works
# on: the 8:2 split (copies, or views after reordering in place), one Table I fold on all four
# modalities (two copies, or the training images gathered a batch at a time), and the renamed
# cohort (a copy, or two channels swapped in place for the block). Random slices of this profile's
# size, as many as fit in about 512 MiB (at most 4000). At the paper profile's size the images
# alone are ~22 GB (the paper's 24422 slices × 4 × 240 × 240 float32), so each multiple is ~22 GB of RAM. Loading is measured by `make bench` (it needs
# a cohort folder; README, "RAM for the slices").

# %% tags=["hide-input"]
if P["run_benchmark"] and sys.platform.startswith("linux"):
    slice_bytes = 4 * 4 * P["image_size"] ** 2  # four float32 channels
    n_slices = int(min(4000, max(500, 512 * 2**20 // slice_bytes)))
    slice_memory_file = run.sub("slice_memory.json")
    run_script("benchmarks/bench_slice_memory.py", "--steps", "split", "fold", "renamed", "--slices", str(n_slices),
               "--size", str(P["image_size"]), "--out", str(slice_memory_file))
    slice_memory = json.loads(slice_memory_file.read_text())["steps"]
    step_labels = {"split": "8:2 hold-out split", "fold": "one Table I fold, all four modalities",
                   "renamed": "renamed cohort (permutation check)"}
    memory_table = pd.DataFrame([
        {"step": step_labels[step], "before": measured["before"], "before (× images)":
             measured[measured["before"]]["peak_per_images"], "now": measured["now"],
         "now (× images)": measured[measured["now"]]["peak_per_images"],
         "images (MiB)": measured[measured["now"]]["images_mib"]}
        for step, measured in slice_memory.items()]).set_index("step")
    run.table("slice_memory", memory_table, index=True)
    for step, measured in slice_memory.items():
        summary[f"slice_memory_{step}_before"] = float(measured[measured["before"]]["peak_per_images"])
        summary[f"slice_memory_{step}_now"] = float(measured[measured["now"]]["peak_per_images"])
    display(Markdown(f"{n_slices} random slices of {P['image_size']}×{P['image_size']} px, four modalities:"))
    display(memory_table.round(2))
elif P["run_benchmark"]:
    print(f"Not measured here: the benchmark reads Linux's /proc, and this is {sys.platform}.")
else:
    print("Benchmark not run (run_benchmark: false in the parameter file).")

# %% [markdown]
# ## What this page found

# %% tags=["hide-input"]
run.write_summary(summary)
if P["run_benchmark"]:
    display(Markdown(
        f"- On {summary['device']}, backpropagation through the {P['ode_train_steps']} RK4 steps trains "
        f"{summary['bench_training_autograd_speedup']:.2f}× as many slices per second as the adjoint and takes "
        f"{summary['bench_memory_forward_backward_autograd_peak_mib'] / max(summary['bench_memory_forward_backward_adjoint_peak_mib'], 1e-9):.1f}× "
        "its peak memory.\n"
        f"- One solve on the 0.01 grid renders the 101 frames {summary['bench_flow_ratio_separate_over_one']:.0f}× "
        "faster than 100 separate solves.\n"
        f"- Processes side by side, one thread each, against one process with every thread: "
        f"{summary['parallel_speedup_unet']:.2f}× the U-Net training throughput and "
        f"{summary['parallel_speedup_ode']:.2f}× the neural ODE's.\n"
        f"- The channels-last layout against the standard one: "
        f"{min(v for k, v in summary.items() if k.startswith('channels_last_speedup_')):.2f}–"
        f"{max(v for k, v in summary.items() if k.startswith('channels_last_speedup_')):.2f}× the training "
        "throughput of the models above.\n"
        f"- The per-modality variant's field as one grouped network runs "
        f"{summary['grouped_speedup_over_looped']:.2f}× as fast as its U-Nets in a loop, and costs "
        f"{summary['grouped_cost_over_shared']:.2f}× the paper's shared field."))
    if "slice_memory_fold_now" in summary:
        display(Markdown(
            "- Beyond the images themselves, a Table I fold holds "
            f"{summary['slice_memory_fold_now']:.2f}× them now ({summary['slice_memory_fold_before']:.2f}× as it was "
            f"done before), the split {summary['slice_memory_split_now']:.2f}× "
            f"({summary['slice_memory_split_before']:.2f}×) and the renamed cohort "
            f"{summary['slice_memory_renamed_now']:.2f}× ({summary['slice_memory_renamed_before']:.2f}×)."))
