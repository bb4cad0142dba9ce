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
# # Study A: a neural ODE, its image flows and the accumulated contribution curve
#
# **What this chapter shows.** The neural ODE of Yang et al. (paper:
# `shared/seeds/neural-ode-acc-glioma-segmentation.txt`) re-implemented from its Methods, trained
# for one target region with several seeds, and everything the paper derives from it: image flows
# $I_t$, segmentation frames $J_t$ (Eq. 5), the binarised contribution factor $\eta_t^k$ (Eq. 6) and
# the accumulated contribution curve (ACC, Eq. 7), the key modalities the paper's reading of the ACC
# selects, and its confirmation by U-Nets on subsets of modalities (Table I). Then what the paper did
# not do: the same question answered by measures that do not depend on which ODE channel carries
# which modality (occlusion, integrated gradients), over seeds, with the modality files renamed,
# and against the phantom's planted truth; and a labelled variant whose vector field cannot mix
# the modalities (one U-Net per modality), to tell whether, where the ACC fails, channel mixing is why.
#
# **What it needs.** The cohort of the data chapter (generated on first use). The parameter file
# names the target (ET, TC or WT) and the profile; `paper` profiles use the paper's settings on real
# BraTS 2020 and a GPU.
#
# **The method, as printed.** With $m$ modalities $\mathbf I_0 = \{I_0^k\}$ and a U-Net $f$ as the
# vector field,
#
# $$\frac{d\mathbf I(t)}{dt} = f(\mathbf I(t), t, \theta) \quad (1), \qquad
#   \mathbf I_t = \mathbf I_0 + \int_0^t f(\mathbf I(s), s, \theta)\,ds \quad (2, 3)$$
#
# $$\gamma = \sigma\Big(\sum_k w^k I_1^k\Big) \quad (4), \qquad J_t = \sigma\Big(\sum_k w^k I_t^k\Big) \quad (5)$$
#
# $$\eta_t^k = \mathbb 1\Big[w^k I_t^k - \sum_{n\ne k} w^n I_t^n > 0\Big] \quad (6), \qquad
#   \mu_t^k = \frac{|\eta_t^k \cap \gamma|}{|\eta_t^k \cup \gamma|} \quad (7)$$
#
# Where they live: `lib.models.node.NeuralODESegmenter` (Eq. 1–4: TorchDyn's `NeuralODE` with the adjoint, and
# classic RK4 through `ClassicRungeKutta4`, TorchDyn's stepper with its stage times corrected),
# `lib.explain.acc.segmentation_frames` (Eq. 5), `binarised_contribution` (Eq. 6),
# `accumulated_contribution` (Eq. 7), `key_modalities_acc` (the paper's reading of the curves:
# a key modality has a high final value and a positive slope). $J_t$ includes the 1×1 convolution's
# bias so that $J_1$ is the model's own probability map; Eq. (6) has no bias, as printed. (The
# model is trained and scored with `ode_train_steps` RK4 steps, and its flow is rendered on the
# `render_frames` grid, so the two ends agree only up to the coarser solve's error: "Diagnostics the
# paper lacks" measures the gap.)

# %% tags=["parameters"]
params_file = "params/study_a/et-default.yaml"
run_dir = None
# True in a live Jupyter session: the slice/t explorer and widget progress bars. The runner sets it
# False: a headless run has nobody to move a slider, and nbclient can stall on widget messages
# (a `make book` run of this chapter once hung 2.5 h in the explorer cell; jupyter/nbclient#312).
live_widgets = True

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, Markdown, display
from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

from lib.data.planted import planted_key_modalities
from lib.device import device_name, resolve_device
from lib.explain.acc import ACCRule, binarised_contribution, segmentation_frames
from lib.paper_numbers import SOURCE_STUDY_A, STUDY_A_SAMPLES, STUDY_A_TABLE_II
from lib.plots import (acc_panels, dice_gap_scatter, eta_coverage_panels, flow_animation, flow_explorer, flow_figure,
                       heatmap)
from lib.results import SYNTHETIC_LABEL, data_label, setup
from lib.training_cache import usage as training_cache_usage
from lib.data.cohort import tumour_free_twin
from lib.study_a.comparison import (comparison_subsets, cross_validate_subsets, dice_by_grade, dice_gaps,
                                   dice_gap_lines, paper_table_one, table_one, training_lengths, twin_reading,
                                   twin_subsets)
from lib.study_a.data import left_out_note, load_study_a_data, region_fraction, renamed_in_place
from lib.study_a import permutation, tables
from lib.study_a.ode import explain_ode, train_ode
from lib.study_a.measures import summary_stems, verdict_measures
from lib.study_a.report import closing_lines, key_modalities_record, summary_record
from lib.study_a.verdict import holds_contrasts, seed_agreement, subset_verdict, subset_verdict_by_grade, verdict_rows

P, run = setup(params_file, run_dir)
pd.set_option("display.max_colwidth", None)  # tables show whole cells: pandas cuts text at 50 characters
tqdm = auto_tqdm if live_widgets else text_tqdm  # text bars in a headless run: they reach the build log
if P["num_threads"]:
    torch.set_num_threads(P["num_threads"])
device = resolve_device(P["device"])
TARGET, SEEDS = P["target"], P["seeds"]
started = time.time()
data = load_study_a_data(P)
truth = planted_key_modalities(TARGET, data.synthetic)
reference = truth if truth is not None else tuple(P["paper_key_modalities"])
reference_source = "planted truth of the phantom" if truth is not None else "the paper's key modalities"
this_build = data_label(P)
if data.synthetic:
    display(Markdown(f"**{SYNTHETIC_LABEL}.** Every figure and table in this chapter is computed in this build "
                     "from the synthetic phantom cohort. Numbers from the paper are labelled as such."))
display(Markdown(
    f"**Target: {TARGET}.** Device: {device_name(device)}. {len(data.train_ids)} training and {len(data.test_ids)} test "
    f"patients (8:2 by patient, stratified by grade{left_out_note(data, P)}); {len(data.train)} training and "
    f"{len(data.test)} test slices of "
    f"{P['image_size']}×{P['image_size']} px; {TARGET} covers {100 * region_fraction(data.train, TARGET):.2f}% of the "
    f"training pixels. Channels: {', '.join(data.modalities)}. (For scale, {SOURCE_STUDY_A}: "
    f"{STUDY_A_SAMPLES['slices']} slices of {STUDY_A_SAMPLES['patients']} patients, "
    f"{STUDY_A_SAMPLES['slices'] / STUDY_A_SAMPLES['patients']:.0f} per patient; this run: "
    f"{(len(data.train) + len(data.test)) / (len(data.train_ids) + len(data.test_ids)):.0f} per patient.)"))

# %% [markdown]
# ## Training the neural ODE, one model per seed
#
# Adam at the learning rate of the parameter file, RK4 (Section C); gradients by the adjoint as in the
# paper, or by backpropagation through the solver steps where the profile says so (`ode_sensitivity`;
# the default profile does, for CPU time: see its file and the appendix page on what the model costs). The training
# grid has `ode_train_steps` RK4 steps on [0, 1] (in TorchDyn the grid *is* the step); trajectories
# for the figures are solved on the paper's 0.01 grid (101 frames) in one solve. The parameter file
# says which loss (the paper: binary cross-entropy) and whether the readout bias starts at the prior
# log-odds; where either departs from the paper the profile's file says why.

# %%
models, histories = {}, {}
for seed in SEEDS:
    model, history = train_ode(P, data, seed, checkpoint=run.checkpoint(f"ode-{TARGET}-seed{seed}.pt"))
    models[seed], histories[seed] = model, history
train_table = tables.training_table(histories)
run.table("ode-training", train_table)
train_table.round(3)

# %% [markdown]
# ## Explaining each model: flows, BCF, ACC, diagnostics, occlusion, attribution
#
# For every seed: the test slices' flows on the 0.01 grid, Eq. (5)–(7) per slice, the key
# modalities by the paper's reading of the ACC (printed Eq. 6 and a polarity-aware variant), the
# diagnostics, occlusion of each input modality and integrated gradients.

# %%
target_area = data.test.region(TARGET).reshape(len(data.test), -1).sum(1)
example = int(np.argmax(target_area))  # the test slice with the most target: a display choice only
explained = {}
for seed in tqdm(SEEDS, desc="explaining"):
    explained[seed] = explain_ode(P, data, models[seed], seed, histories[seed], keep_slices=[example])
scores = pd.concat([e.scores.assign(seed=s) for s, e in explained.items()])
run.table("ode-test-scores-per-patient", scores)

# %% [markdown]
# ### Table II: the neural ODE on the test set
#
# Per test patient (its slices pooled), mean ± sd over patients, for each seed; the paper's Table II
# beside it. Dice and sensitivity are averaged over the patients that have some target (for ET,
# low-grade tumours may have none); accuracy and specificity over all test patients.

# %%
table_ii = tables.table_two(explained, this_build, STUDY_A_TABLE_II[TARGET], SOURCE_STUDY_A)
run.table("table-ii", table_ii, index=True)
table_ii

# %% [markdown]
# ### Figures 4–6: image flows, segmentation frames and BCF
#
# One test slice (the one with the most target), seed by seed: rows $t = 0, 0.3, 0.5, 0.8, 1$;
# (A) the four ODE channels $I_t^k$ (named by the modality each starts from), (B) $J_t$ and the
# ground truth, (C) $\eta_t^k$ (a red "*" marks a map that is 1 everywhere, as the paper's figures do).

# %%
for seed, e in explained.items():
    frames = e.acc.kept_frames[example]                      # (T, m, H, W)
    w, b = models[seed].readout_weights()
    J = segmentation_frames(frames[:, None], w, b)[:, 0]     # (T, H, W)
    eta = binarised_contribution(frames[:, None], w)[:, 0]   # (T, m, H, W)
    rot = lambda a: np.rot90(a, axes=(-2, -1))               # noqa: E731  (display orientation)
    fig = flow_figure(e.acc.t, rot(frames), rot(J), rot(eta), rot(data.test.region(TARGET)[example]),
                      data.modalities, P["figure_times"], title=f"{TARGET}, seed {seed}")
    run.figure(f"flows-{TARGET}-seed{seed}", fig)
    plt.show()

# %% [markdown]
# The flow of the first seed as an animation over $t$ (plays in the static page; no kernel needed):

# %%
seed0 = SEEDS[0]
frames = explained[seed0].acc.kept_frames[example]
w0, b0 = models[seed0].readout_weights()
rot = lambda a: np.rot90(a, axes=(-2, -1))  # noqa: E731
animation_html = flow_animation(explained[seed0].acc.t, rot(frames), rot(segmentation_frames(frames[:, None], w0, b0)[:, 0]),
                                rot(binarised_contribution(frames[:, None], w0)[:, 0]), data.modalities, every=4,
                                label=SYNTHETIC_LABEL if data.synthetic else "")
HTML(animation_html)

# %% [markdown]
# In a live Jupyter kernel, an explorer scrubs $t$ across $I_t$, $J_t$ and $\eta_t$ for any of a few
# test slices. It is built only when `live_widgets` is True: open `book/study_a.py` in Jupyter (jupytext
# reads it as a notebook) or this page's executed notebook (`results/study_a/<target>-<profile>/notebook.ipynb`,
# with `live_widgets = True` in its parameters cell) and run the cells. The runner executes chapters
# without widgets, so the static book shows the animation above instead.

# %%
if not live_widgets:
    display(Markdown("*The explorer is not built in a headless run (`live_widgets = False`); run this cell in "
                     "Jupyter with `live_widgets = True` to scrub the flows.*"))
else:
    explorer_slices = np.linspace(0, len(data.test) - 1, min(6, len(data.test))).round().astype(int)
    with torch.no_grad():
        t_grid, flows = models[seed0].flow(torch.from_numpy(data.test.images[explorer_slices]).to(device),
                                           n_frames=P["render_frames"])
    flows = flows.cpu().numpy()
    display(flow_explorer(t_grid.cpu().numpy(), rot(flows), rot(segmentation_frames(flows, w0, b0)),
                          rot(binarised_contribution(flows, w0)), data.modalities,
                          label=SYNTHETIC_LABEL if data.synthetic else ""))

# %% [markdown]
# ### Figure 7: the accumulated contribution curves, one panel per seed
#
# Mean ± sd over the test slices of $\mu_t^k$ (Eq. 7 with Eq. 6 as printed). Which slices: the
# parameter `acc_slices` (`lib.explain.acc.ACC_SLICES`). "segmented" (the default) averages over
# the slices where the model's own final segmentation $\gamma$ is non-empty: on a slice with an
# empty $\gamma$, Eq. (7) is 0 wherever $\eta^k$ is non-empty, whatever the modality does, and the
# paper's T1ce curve "close to 1" for ET could not be reached if such slices counted. "all" keeps
# every test slice. Below: the key modalities the paper's reading gives for each seed, with the
# rule's reasons, and the same rule on the other choice of slices. The verdict table reads the
# parameter file's choice only, so where the two choices disagree, this table is where it shows.
#
# The second figure is a variant not in the paper, with verdict rows of its own: the
# **polarity-aware** BCF. With the signed contributions $c_t^k = w^k I_t^k$ (the logit is
# $\sum_k c_t^k + b$), $\tilde\eta_t^k = \mathbb 1\big[c_t^k > \sum_{n \ne k} \max(c_t^n, 0)\big]$
# (`binarised_contribution_polarity_aware`): channel $k$ must push the pixel towards the tumour harder
# than all the other channels that push that way together. Printed Eq. (6) also credits a channel
# that votes for background when the others vote against it harder ($c^k = -1 > \sum_{n \ne k} c^n = -3$).

# %%
fig = acc_panels({s: e.acc.curves("printed", P["acc_slices"]) for s, e in explained.items()}, data.modalities,
                 title=f"ACC (Eq. 6–7 as printed), {TARGET}, {P['acc_slices']} slices")
run.figure(f"acc-{TARGET}", fig)
plt.show()
fig = acc_panels({s: e.acc.curves("polarity_aware", P["acc_slices"]) for s, e in explained.items()}, data.modalities,
                 title=f"ACC with the polarity-aware η (variant), {TARGET}, {P['acc_slices']} slices")
run.figure(f"acc-polarity-aware-{TARGET}", fig)
plt.show()
for s, e in explained.items():
    run.table(f"acc-curves-seed{s}", e.acc.curves("printed", P["acc_slices"]))
acc_keys = tables.acc_key_table(explained, P["acc_slices"], ACCRule(**P["acc_rule"]))
run.table("acc-keys", acc_keys)
acc_keys

# %% [markdown]
# ## Diagnostics the paper lacks
#
# **Readout.** Eq. (6) compares $w^k I_t^k$ with the sum of the other weighted channels: where
# $w^k < 0$, $\eta^k$ marks where channel $k$ is *dark*. The sign is whatever training gave.

# %%
readout = pd.concat([e.readout.assign(seed=s) for s, e in explained.items()])
run.table("readout", readout)
readout.round(3)

# %% [markdown]
# **How much of γ each η covers over t**, and how large η is. Why it is worth measuring: a pilot of
# this method on real glioma data, made for this project outside this build
# (`shared/reference/acc-pilot.md`), reported η covering 4–96 % of the image while γ covered a few
# per cent, which caps μ far below 1. The table gives this build's figures.
#
# **Is γ the model's own segmentation?** Eq. (7) divides by γ, the last frame of the flow rendered
# on the fine grid; Table II and occlusion score the model's forward pass, solved on the training
# grid. The table's last three columns compare the two ends: the largest difference in probability
# at any pixel, and how far γ is from the model's segmentation (pooled Dice over the test slices,
# and the pixels that differ). A Dice near 1 means the ACC explains the segmentation the model
# makes; a large worst-pixel difference beside a Dice near 1 means the two probabilities differ
# mostly where both are on the same side of the threshold.

# %%
fig = eta_coverage_panels({s: e.acc for s, e in explained.items()}, data.modalities)
run.figure(f"eta-coverage-{TARGET}", fig)
plt.show()
coverage_table = tables.gamma_diagnostics(explained)
run.table("gamma-diagnostics", coverage_table)
display(Markdown(f"The model's forward pass: {P['ode_train_steps']} RK4 steps on [0, 1]; the rendered flow: "
                 f"{P['render_frames'] - 1} steps ({P['render_frames']} frames)."))
coverage_table.round(3)

# %% [markdown]
# **Channel mixing.** Correlation over brain pixels between each input modality at $t = 0$ (rows)
# and each ODE channel at $t = 1$ (columns). Eq. (6)–(7) attribute channel $k$ to modality $k$; if
# the diagonal is weak, "the ACC of T1ce" is the ACC of a channel that no longer carries T1ce.

# %%
fig, axes = plt.subplots(1, len(SEEDS), figsize=(3.4 * len(SEEDS), 3.0), squeeze=False)
for ax, (s, e) in zip(axes[0], explained.items()):
    heatmap(e.mixing.to_numpy(dtype=float), list(e.mixing.index), list(e.mixing.columns), title=f"seed {s}", ax=ax)
fig.tight_layout()
run.figure(f"channel-mixing-{TARGET}", fig)
plt.show()
fidelity = pd.DataFrame({f"seed {s}": e.fidelity for s, e in explained.items()})
run.table("channel-self-fidelity", fidelity, index=True)
display(Markdown("Self-fidelity per channel: |r| with its own input modality minus the largest |r| with another "
                 "(negative: the channel resembles another modality more than its own)."))
fidelity.round(2)

# %% [markdown]
# ## Independent measures of modality importance
#
# **Occlusion.** At inference, replace one input modality (or all but a subset) by the brain mean
# (zero after z-scoring) and measure the Dice drop; a modality the model needs costs Dice when
# removed. A keep-only test catches redundant pairs (two modalities carrying the same information
# each cost little alone). This does not look inside the flow, so channel mixing cannot fool it.
# Its Dice ("full Dice" in the reasons) is the mean of per-slice Dice over the test slices with some
# target, where a slice holding a few target pixels scores near 0 or 1; Table II's is per patient,
# over each patient's pixels pooled, so the two differ. The drops compare like with like.
#
# The rule (`lib.explain.occlusion.OcclusionRule`; `occlusion_rule` overrides its thresholds): a
# modality is *necessary* when occluding it alone costs at least `min_drop` Dice and at least `relative_to_max`
# of the largest single drop; the key is then the smallest set of modalities that contains the
# necessary ones and, kept alone (the rest occluded), retains `retain` of the full Dice (the
# "minimal sufficient subset" of the reasons; ties name every modality that differs between them).
# "Largest single drop" in the verdict table reads the single-occlusion drops alone, with no threshold.

# %%
occlusion = pd.concat([e.occlusion.assign(seed=s) for s, e in explained.items()])
run.table("occlusion", occlusion)
occ_keys = tables.occlusion_key_table(explained)
display(occlusion[occlusion["seed"] == SEEDS[0]].round(3))
occ_keys

# %% [markdown]
# **Occlusion by grade.** The same model, occlusion and rule on each grade's test slices alone (on
# data with known grades). A low-grade tumour has little or no enhancing rim (`lib/data/planted.py`), so a model
# may read it from other inputs than a high-grade one; this says which grade a reliance comes from.
# A grade with the target in fewer test patients than Table I's per-grade rows need gets no verdict.

# %%
OCC_GRADES = sorted({g for e in explained.values() for g in e.occlusion_by_grade})
occ_by_grade = tables.occlusion_by_grade_table(explained, data.modalities)
run.table("occlusion-by-grade", occ_by_grade)
occ_by_grade.round(3) if len(occ_by_grade) else Markdown("No per-grade reading: the test set does not hold two grades.")

# %% [markdown]
# **Integrated gradients** (Captum) of the summed logits inside the ground-truth region with respect
# to the inputs $I_0$, zero (= brain-mean) baseline. Summarised per region (not whole-image sums,
# which cancel), and only over slices whose completeness error |Σ attributions − (F(x) − F(x′))| /
# |F(x) − F(x′)| is below the tolerance. The input gradients are taken through the discrete RK4
# solve (`ig_gradients: autograd`), the derivative completeness is about; the adjoint's backward
# solve only approximates it: on the strongly non-linear toy field of the test suite
# (`tests/test_study_a.py`, not this build's models) its completeness error is near 1. Setting
# `ig_gradients: adjoint` shows what it is here.

# %%
attribution_table = tables.attribution_table(explained)
run.table("attribution", attribution_table)
attribution_table.round(3)

# %% [markdown]
# ## Table I: U-Nets on the key and complementary modalities
#
# The paper's confirmation: a plain U-Net (the same Fig. 3A architecture, BCE, Adam) on all
# modalities (baseline), on the paper's key modalities and on the complement, with k-fold
# cross-validation inside the training set (the same folds for every subset). Where this run's
# ACC selection (most frequent over seeds; on a tie, the key of the lowest-numbered seed among the
# tied) differs from the paper's, its subsets are run too.
# Subsets listed in `unet_diagnostic_subsets` (role "diagnostic") are shown to explain a result;
# no verdict reads them. On the phantom, `twin_subsets` are trained on a twin of the cohort whose
# `twin_tumour_free` modalities are rendered as if no tumour were there (same patients, folds, labels
# and every other image): T1 without any tumour beside T1ce tells how much of what T1 adds is the
# healthy anatomy it shares with T1ce rather than the lesion. (A tumour-free T1 is also a reference
# no real scan gives: against it, any change on T1ce marks the lesion. Where it adds more than the
# real T1, the closing lines say so instead of crediting anatomy.)
# Mean ± sd over folds; "*" marks a significant Dice difference to the baseline (Wilcoxon signed-rank,
# paired by patient over the out-of-fold predictions, α from the parameter file). The paper's 10
# folds allow pairing by fold too: both p-values are listed. Only Dice is tested, as the paper's
# text describes; its printed table also stars accuracy, sensitivity and specificity without naming
# a test for them. Every metric here is averaged over the patients with some target (a patient
# without one has Dice 1 or 0 by the empty-mask convention); Table II above averages accuracy and
# specificity over all test patients.
#
# How long each U-Net trains is part of the comparison. A fixed, short budget favours the inputs
# that are quickest to learn, not the ones that carry the information: a U-Net on T1ce alone must
# learn to read enhancement against the surrounding anatomy, which a U-Net that also sees T1 might
# get from T1ce − T1 (the tumour-free-twin rows test whether T1's help is that anatomy), so it can
# need many more epochs (with `unet_patience` set, the table below says how many; without it every
# U-Net runs `unet_epochs`). So
# with `unet_patience` set, every U-Net trains until its Dice on held-out patients of its own
# training fold (`unet_val_fraction`, never the fold it is scored on) stops improving, and keeps
# its best epoch; `unet_epochs` is then only the cap. `unet_seeds` trains each fold once per seed
# and averages each patient's scores over the seeds (one seed is one draw of the training noise;
# with several, the tests list each seed's own difference to the baseline).

# %%
acc_selected = seed_agreement([e.key_acc for e in explained.values()], None)["most_frequent"]
acc_selected = () if acc_selected == "no verdict" else tuple(acc_selected.split("+"))
subsets = comparison_subsets(data.modalities, P["paper_key_modalities"], acc_selected,
                             [s.split("+") for s in P["unet_diagnostic_subsets"]])
per_patient = cross_validate_subsets(P, data, subsets, folds=P["cv_folds"], seeds=P["unet_seeds"],
                                     progress=lambda jobs: tqdm(jobs, desc="subset U-Nets"))
twin_P, twin_roles = tumour_free_twin(P), {}
if twin_P is not None and P["twin_subsets"]:
    # The same patients, folds and labels; only the named modalities are rendered without the tumour.
    twin = load_study_a_data(twin_P)
    if twin.train_ids != data.train_ids or len(twin.train) != len(data.train):
        raise RuntimeError(f"{twin_P['data_dir']}: the twin cohort's training patients or slices differ from the cohort's")
    twin_roles = twin_subsets(data.modalities, [s.split("+") for s in P["twin_subsets"]], P["twin_tumour_free"])
    per_patient = pd.concat([per_patient, cross_validate_subsets(
        twin_P, twin, twin_roles, folds=P["cv_folds"], seeds=P["unet_seeds"],
        progress=lambda jobs: tqdm(jobs, desc="twin-cohort U-Nets"))], ignore_index=True)
run.table("table-i-per-patient", per_patient)
ours, tests = table_one(per_patient, alpha=P["alpha"])
run.table("table-i", ours, index=True)
run.table("table-i-tests", tests)
display(Markdown(f"**This build** ({this_build}, {P['cv_folds']} folds):"))
display(ours)
display(Markdown(f"**{SOURCE_STUDY_A}, Table I** (10 folds):"))
display(paper_table_one(TARGET))
display(tests.round(4))
lengths = training_lengths(per_patient)
run.table("table-i-training-lengths", lengths, index=True)
display(Markdown(f"Epochs each subset's U-Nets ran and the epoch they kept (cap `unet_epochs` = {P['unet_epochs']}"
                 + (f", early stopping after {P['unet_patience']} epochs without a better inner-validation Dice):"
                    if P["unet_patience"] else ", no early stopping):")))
display(lengths)
train_grades = dict(zip(data.train.subject_ids, data.train.grades))  # Table I's patients: the training set
by_grade = dice_by_grade(per_patient, train_grades)
run.table("table-i-dice-by-grade", by_grade, index=True)
display(Markdown("Out-of-fold Dice by grade (patients with some target): where a subset works for one grade and "
                 "not the other, the inputs carry the target differently in the two."))
display(by_grade.round(3))

# %% [markdown]
# Is a subset's shortfall spread over every patient, or carried by a few? Each point is one
# patient: its out-of-fold Dice with the subset minus its Dice with all inputs, against how much
# target it has. Small targets (a few pixels of enhancing focus in a low-grade tumour) score Dice
# near 0 or 1 on a handful of pixels, so they move a mean over patients a lot.

# %%
gaps = dice_gaps(per_patient, train_grades)
run.table("table-i-dice-gaps", gaps)
fig = dice_gap_scatter(gaps, title=f"Table I, {TARGET}: Dice difference to the baseline per patient ({this_build})")
run.figure(f"table-i-gaps-{TARGET}", fig)
plt.show()
display(Markdown("\n".join(dice_gap_lines(gaps))))

# %% [markdown]
# ### Does T1 help read T1ce? The pixels before any network
#
# Enhancement is T1ce minus what the tissue would look like without contrast, and T1 shows the
# latter (for the enhancing rim; a dark core is dark on T1 too, so subtracting T1 can hide it).
# Below, over the training slices: how well single pixels of the enhancing rim (bright) and of the
# necrosis / non-enhancing core (dark) separate from healthy brain by T1ce alone, and
# by the residual of T1ce after its best linear prediction from T1 on healthy pixels (a learned
# "subtraction image"; `lib.explain.separability`). Pixel AUC ignores context, so it is a floor of
# what a network can do: where the second AUC is far above the first, a network on T1ce alone must
# make up the difference from shape and neighbourhood, which costs data and resolution; where it is
# below, T1 as a reference blurs that region. It reads the cohort's images and labels, not this
# page's target or models, so the three target pages show the same numbers; it bears on the subsets
# that hold T1ce (the ET and TC references), and on the WT page only as context.

# %%
separability = tables.separability_table(data.train, data.modalities, P["separability_max_pixels"], P["split_seed"])
run.table("pixel-separability", separability, index=True)
display(Markdown(f"{this_build}: {len(data.train)} training slices of {P['image_size']}×{P['image_size']} px; "
                 + (f"a seeded sample of about {P['separability_max_pixels']:,} pixels for a class with more "
                    "(column `sampled`)." if separability["sampled"].any() else "every pixel.")))
separability.round(3)

# %% [markdown]
# ## The permutation check: rename two modality files
#
# The same pipeline on the cohort with the files of two modalities swapped (by default T1ce ↔ FLAIR):
# the channel *named* T1ce now holds FLAIR's image. A measure that follows the image contrast should
# now name the swapped modality; one that follows the channel name or position keeps its old answer.
# "verdict" compares each measure's key with what the *same measure* named for the same seed on the
# original cohort (does it follow the image or the channel?); "against the reference" compares it
# with the planted truth instead (the two differ where the measure did not name the truth at first).
# "on the swapped pair" reads the same comparison on the two renamed channels only: the renaming
# changes nothing for the others, so a partner modality that differs between the original and the
# renamed model (two trainings) is seed variation there, not an answer to "image or channel?".
# The check trains the neural ODE for the seeds in `permutation_seeds` only, and Table I's subset
# U-Nets once more. "ACC (logit share)" is a continuous reading of the flows defined in the variant
# section below.

# %%
swap = P["permutation_swap"]
permutation_rows = []
if swap:
    # The renamed cohort is `data` with the two channels swapped in place (= load_study_a_data(P, swap=swap)),
    # for the `with` block only: the cohort's images are held once, not twice.
    with renamed_in_place(data, swap) as swapped:
        for seed in P["permutation_seeds"]:
            model, history = train_ode(P, swapped, seed, checkpoint=run.checkpoint(f"ode-{TARGET}-swapped-seed{seed}.pt"))
            e = explain_ode(P, swapped, model, seed, history)
            # compared with the same seed on the original cohort, when it was run
            permutation_rows += permutation.measure_rows(seed, e, explained.get(seed), reference, swap)
        swapped_subsets = comparison_subsets(swapped.modalities, P["paper_key_modalities"], None)
        swapped_pp = cross_validate_subsets(P, swapped, swapped_subsets, folds=P["permutation_cv_folds"] or P["cv_folds"],
                                            seeds=P["unet_seeds"], progress=lambda jobs: tqdm(jobs, desc="renamed subset U-Nets"))
        swapped_table, swapped_tests = table_one(swapped_pp, alpha=P["alpha"])
        run.table("permutation-table-i", swapped_table, index=True)
        # Table I's rule, with the subset that holds the reference contrasts once the files are renamed
        permutation_rows.append(permutation.subset_row(swapped_tests, swapped_subsets, reference, swap,
                                                       P["subset_near_baseline"], P["subset_clearly_lower"]))
        display(Markdown(f"Renamed: **{swap[0]} ↔ {swap[1]}**. Subset U-Nets on the renamed cohort (paper's subsets by name):"))
        display(swapped_table)
permutation_table = pd.DataFrame(permutation_rows)
run.table("permutation", permutation_table)
permutation_table.round(3)

# %% [markdown]
# ## A variant the paper lacks: one U-Net per modality
#
# Eq. (6)–(7) read ODE *channels*, and the channel-mixing diagnostic above shows how far the paper's
# shared vector field lets a channel drift from its own modality. This variant (not in the paper;
# `lib.models.PerModalityVectorField`, seeds in `variant_per_modality_seeds`) removes mixing by
# construction: channel $k$ evolves under its own U-Net, which sees only $I^k$, so $I_t^k$ depends on
# $I_0^k$ alone at every $t$, and the modalities meet only in the readout of Eq. (4), as a weighted
# sum. If the paper's ACC failed only because channels mix, it should name the reference here.
# Same training, Eq. (5)–(7), rules, occlusion and integrated gradients as above.
#
# Beside it, one more reading of the same flows for both models: the **logit share**, each channel's
# share of the foreground-pushing logit inside $\gamma$ (`lib.explain.acc.logit_share`), under the
# same ACC rule. Eq. (6) credits channel $k$ only where it outweighs all the other channels
# *together*; a segmentation that needs evidence from two modalities at once never shows such a
# winner, whatever the channels carry. The share asks for no winner.

# %%
VARIANT_SEEDS = P["variant_per_modality_seeds"]
variant = {}
for seed in VARIANT_SEEDS:
    model, history = train_ode(P, data, seed, vector_field="per_modality",
                               checkpoint=run.checkpoint(f"ode-{TARGET}-per-modality-seed{seed}.pt"))
    variant[seed] = explain_ode(P, data, model, seed, history)
variant_table = tables.vector_field_table({"shared (the paper's)": explained,
                                           "one U-Net per modality (variant)": variant})
run.table("per-modality-variant", variant_table)
if variant:
    for curve, figure_name, label, ylabel in (("printed", "acc", "ACC (Eq. 6–7 as printed)", "μ_t (ACC)"),
                                              ("logit_share", "logit-share", "Logit share inside γ", "logit share s_t")):
        fig = acc_panels({s: e.acc.curves(curve, P["acc_slices"]) for s, e in variant.items()}, data.modalities,
                         title=f"{label}, one U-Net per modality (variant), {TARGET}", ylabel=ylabel)
        run.figure(f"{figure_name}-per-modality-{TARGET}", fig)
        plt.show()
    variant_readout = pd.concat([e.readout.assign(seed=s) for s, e in variant.items()])
    run.table("per-modality-variant-readout", variant_readout)
    display(Markdown("Readout weights of the variant (Eq. 4), per seed:"))
    display(variant_readout.round(3))
else:
    display(Markdown("`variant_per_modality_seeds` is empty in this parameter file: the variant was not run."))
variant_table.round(3)

# %% [markdown]
# ## The verdict
#
# One row per measure of modality importance: the reference (the phantom's planted truth; on real
# data, the paper's own key modalities), the key modalities each seed gave, and whether they agree.
# The rules and thresholds are fixed in `lib` and in the parameter file before any run, the same for
# every target; no verdict is set by hand. The default profile's training lengths and cohort shape
# were chosen earlier, in scratch runs on the phantom, partly by how well the models learned (test
# Dice) and partly by how close T1ce alone came to all inputs; `params/study_a/_default.yaml` and
# `NOTES.md` give each choice with its figures, so read the default profile's agreement with that
# in mind.
# The paper's ACC, occlusion and integrated gradients are each read twice: by their rule (thresholds,
# redundancy, convergence), and *top-ranked* (the single modality with the highest score, no
# threshold) — the most lenient reading there is, though against a reference of two modalities
# (WT's) it names one of them at best and so reads "partly" at best: its seeds' keys show whether
# each named a reference modality. The ACC variants and the per-modality model's
# measures are read by their rule only.
# "partly" means the seeds' keys overlap the reference without all equalling it. Rows named
# "variant" read the per-modality model of the section above (not in the paper). The subset
# comparison is also read by grade, with the same rule on each grade's patients alone (rows "HGG/LGG
# patients only"; on data with known grades), and so is occlusion, on each grade's test slices alone
# (rows "HGG/LGG test slices only"): on this phantom a low-grade tumour barely enhances, so a truth
# about contrast enhancement speaks of high-grade tumours. These rows add to the verdict over all
# patients above them; they do not replace it, and both grades are shown whichever way they fall.

# %%
subset_result = subset_verdict(tests, holds_contrasts(P["paper_key_modalities"], reference),
                               holds_contrasts(subsets.get("paper complement", ()), reference),
                               P["subset_near_baseline"], P["subset_clearly_lower"])
subset_by_grade = subset_verdict_by_grade(
    per_patient, train_grades,
    holds_contrasts(P["paper_key_modalities"], reference), holds_contrasts(subsets.get("paper complement", ()), reference),
    P["subset_near_baseline"], P["subset_clearly_lower"], alpha=P["alpha"])
# Every measure of the paper's model, its occlusion on each grade's test slices alone (supplementary rows, like
# Table I's per-grade ones), and the per-modality variant's own measures when it was run (lib.study_a.measures).
measures = verdict_measures(explained, variant, OCC_GRADES)
verdict = verdict_rows(TARGET, reference, reference_source, measures, subset_result, subset_by_grade)
verdict = permutation.with_renamed_columns(verdict, permutation_table, swap)
run.table("verdict", verdict)
display(Markdown(
    f"Table I's rule (`subset_near_baseline`, `subset_clearly_lower`, `alpha`): a subset is *near baseline* when its "
    f"mean Dice is at most {P['subset_near_baseline']} below the baseline's, *clearly lower* when at least "
    f"{P['subset_clearly_lower']} below with p < {P['alpha']} (Wilcoxon signed-rank by patient), *in between* "
    "otherwise. The paper's words are \"very close to baseline results without statistical significance\"; "
    "here *near* is a margin on the difference alone and does not ask for p ≥ α, so each reading shows its "
    "difference and p-value: by the paper's words, a key subset near baseline with p < α would not count."
    + (f" The renamed-file columns read the permutation check: seed{'s' if len(P['permutation_seeds']) > 1 else ''} "
       f"{', '.join(map(str, P['permutation_seeds']))} of the neural ODE, and Table I's subset U-Nets, each trained "
       "again on the renamed cohort." if swap and P["permutation_seeds"] else "")))
verdict

# %%
# key_modalities.json and summary.json gather what the cells above computed (lib.study_a.report).
run.json("key_modalities", key_modalities_record(TARGET, this_build, reference, reference_source,
                                                 P["paper_key_modalities"], explained, variant))
twin_rows = twin_reading(tests, subsets, twin_roles, P["twin_tumour_free"])
summary = summary_record(target=TARGET, split=data.split_sizes(), reference=reference, explained=explained,
                         variant=variant, verdict=verdict, stems=summary_stems(OCC_GRADES, subset_by_grade),
                         twin_rows=twin_rows, tests=tests, permutation_table=permutation_table,
                         separability=separability, minutes=(time.time() - started) / 60)

# %% [markdown]
# ## What this run found

# %%
run.write_summary(summary)
display(Markdown("\n".join(closing_lines(
    summary, seeds=list(explained), variant_seeds=list(variant), data_label=this_build,
    reference_source=reference_source, paper_dice=STUDY_A_TABLE_II[TARGET]["Dice"], verdict=verdict, swap=swap,
    tests=tests, twin_rows=twin_rows, twin_tumour_free=P["twin_tumour_free"], subsets=subsets,
    device_label=device_name(device), cache_usage=training_cache_usage()))))
