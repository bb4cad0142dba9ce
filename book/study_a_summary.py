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
# # Study A across its targets: the paper's tables, and whether its explanation holds
#
# **What this page shows.** The paper reports study A for three targets at once: Table I (U-Nets on
# all four modalities, on the key modalities and on their complement) and Table II (the neural ODE)
# each have an ET, a TC and a WT block, and Figure 7 has one ACC panel per target. The target pages
# each compute one block; this page puts them back into the paper's layout, with the paper's numbers
# beside this build's, and lays every verdict of the three pages side by side: does the paper's
# reading of the ACC name the modalities that carry each target, and do the measures that do not
# depend on which ODE channel carries which modality (occlusion, integrated gradients, the U-Net
# subset comparison) say the same?
#
# **What it needs.** The three finished study A runs named in the parameter file (`source_runs`;
# `make book` runs them first). Nothing is trained or selected here: every cell is read from those
# runs' tables and summaries, and the provenance table below says which run, commit and machine each
# target's numbers come from. How each number was computed is on the target's own page.

# %% tags=["parameters"]
params_file = "params/study_a/summary-default.yaml"
run_dir = None

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from lib.paper_numbers import SOURCE_STUDY_A
from lib.plots import acc_grid
from lib.results import SYNTHETIC_LABEL, setup
from lib.study_a.across_targets import (FIGURE_7_PANELS, acc_curves, data_sources, findings, folds_line,
                                        load_target_runs, mismatches, provenance, renamed_matrix,
                                        table_one_across_targets, table_two_across_targets, thread_note,
                                        time_by_section, verdict_counts, verdict_matrix)

P, run = setup(params_file, run_dir)
pd.set_option("display.max_colwidth", None)  # tables show whole cells: pandas cuts text at 50 characters
runs = load_target_runs(P["source_runs"])
this_build, synthetic = data_sources(runs)
run.data_from(this_build, synthetic)
if synthetic:
    display(Markdown(f"**{SYNTHETIC_LABEL}.** Every figure and table on this page was computed in this build "
                     "from the synthetic phantom cohort. Numbers from the paper are labelled as such."))
notes = mismatches(runs)
if notes:
    display(Markdown("**Read with care:** " + "; ".join(notes) + "."))
sources = provenance(runs)
run.table("provenance", sources)
sources

# %% [markdown]
# ## Every verdict, every target
#
# One row per measure, as each target's page lists them in its closing verdict table; a cell reads
# "verdict (seeds agreeing / seeds run)". The first row is the reference each verdict is read
# against: on the phantom, its planted truth (the modalities the phantom's tumours were built to show
# each region in; see the data chapter), on real data the paper's key modalities. For a measure run
# on every ODE seed, "agrees": every seed names exactly the reference; "disagrees": no seed names any
# reference modality; "partly": anything in between; "no verdict": no seed named anything. The U-Net
# subset rows read Table I, the paper's confirmation, and have no seeds: "agrees" when the input set
# holding the reference is near the baseline and the other clearly lower, "partly" when one of the
# two holds, "disagrees" when neither does (each target page prints the thresholds under its verdict
# table, and each reading's Dice difference and p-value).

# %% tags=["hide-input"]
matrix = verdict_matrix(runs)
run.table("verdicts", matrix, index=True)
display(matrix)
counts = verdict_counts(matrix)
run.table("verdict-counts", counts, index=True)
display(Markdown("How many of each page's measures (every row above but the reference) end in each verdict:"))
counts

# %% [markdown]
# ### The renamed modality files
#
# Each target page also ran its models again on the same cohort with two modality files renamed (the
# parameter file's `permutation_swap`, for the ODE seeds in `permutation_seeds`; e.g. the T1ce image
# is read as FLAIR and the FLAIR image as T1ce). A measure that explains the network should then name the renamed channel that now holds the
# informative contrast ("follows the contrast"); one that names the same channel as before follows
# the channel's name or position, not the image. The first column of a target reads the whole key,
# the second only the renamed pair (other channels may move with the seed alone).

# %% tags=["hide-input"]
renamed = renamed_matrix(runs)
if renamed.empty:
    display(Markdown("The runs named here skipped the renamed-file check (`permutation_swap: []`)."))
else:
    run.table("renamed", renamed, index=True)
    display(renamed)

# %% [markdown]
# ## Table I: U-Nets on all modalities, on the paper's key modalities and on their complement
#
# The paper's layout: one block per target, the input sets as columns. Each cell of this build is
# the mean ± sd over the cross-validation folds inside the training set (the parameter file of the
# target's run sets how many folds and U-Net seeds); "*" marks a significant Dice difference from the
# baseline (Wilcoxon signed-rank, α of the run, paired by patient; the target's page also gives the
# test paired by fold). The paper's cells are its ten-fold results on BraTS 2020, as printed; its
# table also stars accuracy, sensitivity and specificity without naming a test for them, and only its
# Dice stars are comparable with this build's.

# %% tags=["hide-input"]
table_one = table_one_across_targets(runs, this_build)
run.table("table-i", table_one, index=True)
display(Markdown(folds_line(runs)))
table_one

# %% [markdown]
# ## Table II: the neural ODE on the test set
#
# This build: for each ODE seed the mean over test patients (Dice and sensitivity over the patients
# with some target, accuracy and specificity over all), then mean ± sd over the seeds. The paper
# reports one model.

# %% tags=["hide-input"]
table_two = table_two_across_targets(runs, this_build)
run.table("table-ii", table_two, index=True)
table_two

# %% [markdown]
# ## Figure 7: the accumulated contribution curves, (A) ET, (B) TC, (C) WT
#
# Each panel: the mean of $\mu_t^k$ (Eq. 7, as printed) over the test slices the target's page
# averages over, with a shaded ± sd band, for one seed of one target. The paper shows one model per
# target; here each row is one seed, so the reader can see how much the curves, and the key
# modality read from them, move from seed to seed.

# %% tags=["hide-input"]
curves = acc_curves(runs)
if curves:
    modalities = list(dict.fromkeys(m for c in curves.values() for m in c["modality"]))
    fig = acc_grid(curves, modalities, title=f"Figure 7 analog, every target and seed ({this_build})",
                   column_labels=FIGURE_7_PANELS)
    run.figure("acc-all-targets", fig)
    plt.show()
else:
    display(Markdown("The runs left no ACC curves to draw."))

# %% [markdown]
# ## What each target's page cost
#
# Minutes of each page's cells in this build, summed by section of the page (papermill's duration
# of every cell of the executed notebook the run kept), then the run's wall time from its manifest
# and how much of it overlapped another target's run: runs side by side share the CPU, so a section
# takes longer than it would alone. A run that reused models from the training cache
# (`training_cache_dir`) shows the time of that reuse, not of training. The parameters that set
# each costly section, for a shorter (or a fuller) run of a page with `--set KEY=VALUE`, or of the
# whole book with `make book SET="KEY=VALUE ..."`:
#
# - *Training the neural ODE*: `seeds` (one model each), `ode_epochs`, `ode_train_steps`.
# - *Explaining each model*: `render_frames` (the 0.01 grid's 101 frames), `ig_steps`, `ig_max_slices`.
# - *Table I*: `cv_folds`, `unet_epochs`, `unet_seeds`, `unet_diagnostic_subsets`, `twin_subsets`.
# - *The permutation check*: `permutation_seeds`, `permutation_cv_folds`; `permutation_swap: []` skips it.
# - *The variant*: `variant_per_modality_seeds` (one model each); `[]` skips it.

# %% tags=["hide-input"]
section_minutes = time_by_section(runs)
if section_minutes.empty:
    display(Markdown("The runs named here kept no executed notebook with cell timings (run by nbval or by hand), "
                     "so there is nothing to add up."))
else:
    run.table("minutes-by-section", section_minutes, index=True)
    display(Markdown(thread_note(runs)))
    display(section_minutes.round(1))

# %% [markdown]
# ## What this build found

# %% tags=["hide-input"]
summary, lines = findings(runs, counts, section_minutes)
run.write_summary(summary)
display(Markdown("\n".join(lines) + f"\n\nData: {this_build}. The paper's numbers: {SOURCE_STUDY_A}."))
