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
# rendered in one solve against 100 separate solves from $t = 0$. Then whether running the chapters
# side by side, one thread each, as `make book` does, pays: the throughput of one process with every
# thread against one process per core, for the U-Net of Table I and for the neural ODE. Then what
# the channels-last memory layout of the U-Nets changes against the standard one, for every model
# study A trains, and what evaluating the per-modality variant's U-Nets as one grouped network
# changes against a loop. Last, how much RAM the
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
import os
import sys

import pandas as pd
from IPython.display import Markdown, display

from lib.device import device_name, resolve_device
from lib.results import setup
from lib.study_a import cost

P, run = setup(params_file, run_dir)
pd.set_option("display.max_colwidth", None)  # tables show whole cells: pandas cuts text at 50 characters
device = resolve_device(P["device"])
summary = {"device": device_name(device)}
display(Markdown(f"Device: **{device_name(device)}**, {os.cpu_count()} CPU cores. Random images of "
                 f"{P['image_size']}×{P['image_size']} px, four modalities (no patient or phantom data on this page)."))


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
    ode_bench, measured = cost.ode_benchmark_table(cost.measure(
        "benchmarks/bench_study_a.py", cost.bench_study_a_arguments(P), run.sub("benchmark.json")))
    summary.update(measured)
    run.table("benchmark", ode_bench, index=True)
    with pd.option_context("display.max_rows", None):  # every benchmark figure, not pandas' first and last rows
        display(ode_bench)
    display(Markdown(cost.benchmark_paragraph(summary, P["variant_per_modality_width"])))
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
    parallel_table, measured = cost.parallel_table(cost.measure(
        "benchmarks/bench_parallel.py", cost.bench_parallel_arguments(P), run.sub("parallel.json")))
    summary.update(measured)
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
    layout_table, measured = cost.memory_format_table(cost.measure(
        "benchmarks/bench_memory_format.py", cost.bench_memory_format_arguments(P), run.sub("memory_format.json")))
    summary.update(measured)
    run.table("memory_format", layout_table, index=True)
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
    grouped_table, measured = cost.grouped_unet_table(cost.measure(
        "benchmarks/bench_grouped_unet.py", cost.bench_grouped_unet_arguments(P), run.sub("grouped_unet.json")))
    summary.update(measured)
    run.table("grouped_unet", grouped_table, index=True)
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
    n_slices = cost.slice_memory_slices(P["image_size"])
    memory_table, measured = cost.slice_memory_table(cost.measure(
        "benchmarks/bench_slice_memory.py", ["--steps", "split", "fold", "renamed", "--slices", str(n_slices),
                                             "--size", str(P["image_size"])], run.sub("slice_memory.json")))
    summary.update(measured)
    run.table("slice_memory", memory_table, index=True)
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
    for block in cost.closing_blocks(summary, P["ode_train_steps"]):
        display(Markdown(block))
