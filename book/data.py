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
# # The data: BraTS layouts and the synthetic phantom cohort
#
# **What this chapter shows.** The cohort every other chapter uses: how it is read, checked,
# preprocessed and split, what its four MRI modalities and tumour labels look like, and how its
# tumour contrasts compare with measurements on real glioma MRI.
#
# **What it needs.** Nothing but this repository: by default the cohort is a *synthetic phantom*
# generated on first use (`python -m lib phantom`). Set `data_source: folder` and `data_dir` in
# the parameter file to run the same chapter on your BraTS copy.
#
# **The data contract** (checked by `python -m lib validate DIR` before any work, like nnU-Net's
# dataset integrity check):
#
# - one folder per subject, with one NIfTI file per modality (`t1`, `t1ce`, `t2`, `flair`, or the
#   BraTS 2023 names `t1n`, `t1c`, `t2w`, `t2f`) and a label file `seg`; BraTS 2018/2019 `HGG/`
#   and `LGG/` folders, BraTS 2020 `name_mapping.csv` (grade), 2021 and 2023 naming are read;
# - all files of a subject share one shape and affine; intensities are finite;
# - labels are 0 background, 1 NCR/NET, 2 edema (ED), 4 enhancing tumour (ET; 3 from BraTS 2023
#   on). Internally the sub-labels are 1 NCR, 2 ED, 3 ET, and the regions are nested:
#   ET, TC = ET ∪ NCR, WT = TC ∪ ED.
#
# Modalities are addressed by name everywhere; nothing assumes a channel order.

# %% tags=["parameters"]
params_file = "params/data/default.yaml"
run_dir = None

# %% tags=["hide-input"]
import json
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from lib.data.cohort import prepare_cohort
from lib.data.grades import grade_mix_table
from lib.data.layout import detect_layout
from lib.data.phantom import contrast_report, reference_contrast, summarise_contrast
from lib.data.phantom_acquisition import acquisition_table
from lib.data.slices import load_slices, require_slices
from lib.data.report import contrast_comparison, data_findings, data_summary, mean_et_share, splits_table
from lib.data.validate import format_report, validate_cohort
from lib.data.validate_demo import damaged_copies
from lib.paper_numbers import PAPER_COHORT_GRADES
from lib.paths import display as show_path, resolve
from lib.plots import modality_grid, label_histograms
from lib.results import SYNTHETIC_LABEL, setup

P, run = setup(params_file, run_dir)
pd.set_option("display.max_colwidth", None)  # tables show whole cells: pandas cuts text at 50 characters
cohort = prepare_cohort(P)
if cohort.synthetic:
    display(Markdown(f"**{SYNTHETIC_LABEL}.** Every figure and table in this chapter is computed from the "
                     "synthetic phantom cohort, not from patients."))

# %% [markdown]
# ## The cohort and its validation report

# %%
subjects = pd.DataFrame([{"subject": s.subject_id, "grade": s.grade} for s in cohort.subjects])
grade_counts = subjects["grade"].fillna("unknown").value_counts().rename_axis("grade").rename("subjects").to_frame()
print(f"cohort: {show_path(cohort.root)}  layout: {detect_layout(cohort.root)}  "
      f"fingerprint: {cohort.fingerprint[:16]}")
print(format_report(validate_cohort(cohort.root, modalities=tuple(P["modalities"])), cohort.root,
                    modalities=tuple(P["modalities"])))
run.table("grades", grade_counts, index=True)
grade_counts

# %% [markdown]
# The grade mix beside the papers' cohorts. It may matter for study A: by the phantom's design
# (`lib/data/planted.py`) a low-grade core does not enhance, so it is no brighter on T1ce than on
# T1, and T1ce alone may find less of the tumour core the more low-grade patients a cohort holds.
# Whether it does is measured, not assumed: study A's pages score every subset on each grade
# separately. The phantom's share is a parameter (`phantom_hgg_fraction`).

# %%
grade_mix = grade_mix_table(f"this build: {'synthetic phantom' if cohort.synthetic else show_path(cohort.root)}",
                            grades=subjects["grade"], references=PAPER_COHORT_GRADES)
run.table("grade-mix", grade_mix, index=True)
if cohort.synthetic:
    print(f"phantom_hgg_fraction: {P['phantom_hgg_fraction']}")
grade_mix

# %% [markdown]
# The same check on deliberately damaged copies of two subjects shows what a user sees when a
# folder is not usable: one line per problem, naming the file. (`python -m lib validate` prints
# the same lines and exits with status 1; a study run refuses such a cohort and writes nothing.)

# %%
demo_root = run.sub("validation-demo")
for case, folder in damaged_copies(cohort.root, demo_root, [s.subject_id for s in cohort.subjects[:2]]).items():
    problems = validate_cohort(folder, modalities=tuple(P["modalities"]))
    print(f"--- {case}")
    print("\n".join(str(p).replace(str(demo_root) + "/", "") for p in problems))
shutil.rmtree(demo_root)

# %% [markdown]
# ## The four modalities and the labels
#
# Axial slices are extracted after z-scoring each modality over the brain, cropping to the brain's
# bounding square and resizing to `image_size`. For each example subject the slice with the most
# whole tumour is shown.

# %%
slices = load_slices(cohort.root, P["modalities"], image_size=P["image_size"], normalisation=P["normalisation"],
                     crop=P["crop"], crop_margin=P["crop_margin"], target_spacing=P["target_spacing"],
                     slice_filter=P["slice_filter"], filter_region=P["filter_region"],
                     min_region_pixels=P["min_region_pixels"], max_slices_per_subject=P["max_slices_per_subject"],
                     label_convention=P["label_convention"], cache_dir=resolve(P["cache_dir"]), progress=False)
require_slices(slices, cohort.root, P)
print(f"{len(slices)} slices of {len(set(slices.subject_ids))} subjects, "
      f"{slices.images.shape[1]} channels ({', '.join(slices.modalities)}), {slices.images.shape[2]}×{slices.images.shape[3]} px")
wt = slices.region("WT").reshape(len(slices), -1).sum(1)
examples = []
for grade in ("HGG", "LGG"):
    ids = [s.subject_id for s in cohort.subjects if s.grade == grade][: P["example_subjects"]]
    examples += [(sid, grade) for sid in ids]
for sid, grade in examples:
    idx = np.flatnonzero(slices.subject_ids == sid)
    if idx.size == 0:
        continue
    best = idx[np.argmax(wt[idx])]
    fig = modality_grid(slices.images[best], slices.labels[best], slices.modalities,
                        title=f"{sid} ({grade}), axial slice {slices.slice_index[best]}")
    run.figure(f"modalities-{sid}", fig)
    plt.show()

# %% [markdown]
# Label colours: blue NCR/NET, green edema, red enhancing tumour.
#
# ## Intensities per label
#
# Distributions of each modality's z-score (over the whole brain, as the networks see it) inside each label, pooled over the
# tumour slices. On the phantom, this is where its planted truths (below) should show: the enhancing
# rim separating from edema on T1ce only, FLAIR and T2 bright over the whole tumour (the contrast table
# below measures ET against edema on T1ce and FLAIR).

# %%
fig = label_histograms(slices.images, slices.labels, slices.brain, slices.modalities)
run.figure("label-histograms", fig)
plt.show()

# %% [markdown]
# ## Tumour contrasts beside real glioma MRI
#
# The same figures as `shared/reference/real-brats-contrast.md` (six real BRATS 2013 high-grade
# cases: each image z-scored against the normal brain, then summarised inside each label),
# measured on this cohort's high-grade subjects. A phantom whose figures fall inside the real
# min–max ranges is *not cleaner than real data*: labels overlap in intensity as they do in patients.

# %%
limit = P["contrast_subjects"]
report = contrast_report(cohort.root, grade="HGG")
if limit:
    report = report.head(limit)
ours = summarise_contrast(report)
real = reference_contrast()
table = contrast_comparison(ours, real)
run.table("contrast-vs-real", table, index=True)
run.table("contrast-per-subject", report)
label = "synthetic phantom" if cohort.synthetic else "this cohort"
display(Markdown(f"Columns *real*: shared/reference/real-brats-contrast.md (6 real BRATS 2013 HGG cases). "
                 f"Columns *this cohort*: this build, {label}, {len(report)} HGG subjects."))
if report.empty:
    display(Markdown("**No HGG subject to measure:** this cohort's layout records no grade (BraTS 2021 and 2023+ "
                     "have neither HGG/LGG folders nor a name_mapping.csv), or it holds no labelled HGG subject, "
                     "so its contrasts are not compared with the real HGG cases."))
table.round(2)

# %% [markdown]
# ## How each sequence was "acquired"
#
# Real BraTS scans are not four renderings of one anatomy on one grid (Menze et al. 2015, Sec. II):
# T1 is a 2D sagittal or axial acquisition of 1–6 mm slices, T1ce a 3D scan of ~1 mm voxels, T2 an
# axial 2D one of 2–6 mm, FLAIR axial, coronal or sagittal of 2–6 mm; all were registered to T1ce
# and resampled to 1 mm. Pre-contrast T1 is typically a spin echo, T1ce a 3D gradient echo with
# stronger grey/white contrast. Since generator 1.3 the phantom acquires each sequence that way
# (`lib/data/phantom_acquisition.py`): thick slices (slice profile, sampling, linear resampling),
# a residual rigid shift against T1ce, and per-sequence tissue contrast. Without it (generators
# 1.0–1.2), T1 was by construction a perfect anatomical reference for T1ce (T1ce − T1 left only
# noise in healthy brain), which real data never is. Per modality, what this cohort's subjects drew:

# %%
if cohort.synthetic:
    acq = acquisition_table(json.loads((cohort.root / "phantom.json").read_text())["subjects"])
    run.table("acquisition", acq, index=True)
    display(Markdown("Synthetic phantom: what the generator drew for this cohort (phantom.json)."))
    display(acq.round(2))
else:
    print("A real cohort: its acquisition is whatever the scanners did (not recorded in the BraTS files).")

# %%
lgg = contrast_report(cohort.root, grade="LGG")
lgg_et_share, hgg_et_share = mean_et_share(lgg), mean_et_share(report)
print(f"LGG subjects: {len(lgg)}; mean ET share of the tumour: {lgg_et_share:.3f} "
      f"(HGG: {hgg_et_share:.3f})")

# %% [markdown]
# ## The planted truths
#
# The phantom is built so that what the studies claim to discover is known in advance:
#
# | region / question | where the phantom puts the information |
# | --- | --- |
# | enhancing tumour (ET) | bright on **T1ce** only; FLAIR and T2 do not separate it from edema |
# | tumour core (TC = ET ∪ NCR) | **T1ce**: the enhancing rim around dark necrosis (HGG), a dark core (LGG); the core sits off-centre in the lesion and on FLAIR and T2 core and rim look like their edema. Necrosis and the low-grade core carry no contrast agent, so T1 shows them as dark as T1ce does, with the same texture (generator 1.4): a low-grade core is on T1 too |
# | whole tumour (WT) | bright on **FLAIR** and **T2** (CSF is bright on T2 but dark on FLAIR) |
# | grade (HGG vs LGG) | **enhancement**: HGG have an enhancing rim around necrosis, LGG little or no ET |
#
# A study that recovers these on the phantom passes a test with a known answer; one that does not
# has a problem that real data would hide. Two limits are known (`lib/data/planted.py`): a network
# reading FLAIR or T2 still knows that the core lies *inside* the lesion, so TC cannot be hidden
# from them entirely; and healthy tissue looks alike on T1 and T1ce (less so since 1.3, as in real
# scans), so T1 might help read T1ce although it shows no enhancement: wherever a
# thin enhancing rim is only part of a pixel, T1ce − T1 could tell it from bright white matter where
# T1ce alone cannot. Study A measures both; its tumour-free-twin rows test whether T1's help is
# that shared anatomy or what T1 shows of the tumour.
#
# ## Patient-level splits
#
# Every split is by patient (never by slice), stratified by grade and seeded. The 8:2 hold-out and,
# as an example, a 5-fold partition inside the training part (each study sets its own number of
# folds: study A's `cv_folds`):

# %%
split_table = splits_table([s.subject_id for s in cohort.subjects], [s.grade for s in cohort.subjects], seed=P["seed"])
run.table("splits", split_table)
split_table

# %% [markdown]
# ## What this chapter found

# %%
hgg_share = grade_mix["HGG share"].iloc[0]
summary = data_summary(grades=[s.grade for s in cohort.subjects], hgg_share=hgg_share, slices=len(slices),
                       image_size=P["image_size"], contrast=table, ours=ours, lgg_et_share=lgg_et_share)
run.write_summary(summary)
display(Markdown(data_findings(summary, hgg_share, grade_mix["HGG share"].iloc[1:], real, hgg_et_share)))
