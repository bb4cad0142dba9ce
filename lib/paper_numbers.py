"""Numbers the papers report, for showing beside this build's results — always with their source.

Nothing here is used to compute or select anything; chapters only print these next to their own
results, in a column labelled with ``SOURCE_*``.
"""

from __future__ import annotations

SOURCE_STUDY_A = "paper: Yang et al., neural ODE study (BraTS 2020, 369 subjects)"

# Study A, Section C: "A total of 24422 samples as 4-channel 2D MRI images", 369 patients, split 8:2.
STUDY_A_SAMPLES = {"slices": 24422, "patients": 369}

# Study A, Table I: ten-fold cross-validation, mean ± sd; "*" = significant vs baseline (Wilcoxon, α=0.05).
# {target: {"inputs": [column labels], metric: [cell per column]}}
STUDY_A_TABLE_I = {
    "ET": {
        "inputs": ["4 Modalities", "T1-Ce", "FLAIR+T1+T2"],
        "Dice": ["0.784 ± 0.008", "0.775 ± 0.007", "0.295 ± 0.016*"],
        "Accuracy (%)": ["99.537 ± 0.015", "99.032 ± 0.031", "98.417 ± 0.045*"],
        "Sensitivity": ["0.919 ± 0.018", "0.949 ± 0.016", "0.875 ± 0.014*"],
        "Specificity": ["0.999 ± 0.001", "0.999 ± 0.001", "0.998 ± 0.000"],
    },
    "TC": {
        "inputs": ["4 Modalities", "T1-Ce", "FLAIR+T1+T2"],
        "Dice": ["0.760 ± 0.014", "0.758 ± 0.006", "0.042 ± 0.010*"],
        "Accuracy (%)": ["99.005 ± 0.063", "99.489 ± 0.008", "96.929 ± 0.132*"],
        "Sensitivity": ["0.949 ± 0.016", "0.909 ± 0.015", "0.031 ± 0.005*"],
        "Specificity": ["0.999 ± 0.000", "0.999 ± 0.001", "0.997 ± 0.001*"],
    },
    "WT": {
        "inputs": ["4 Modalities", "FLAIR +T2", "T1+T1CE"],
        "Dice": ["0.841 ± 0.007", "0.837 ± 0.004", "0.691 ± 0.010*"],
        "Accuracy (%)": ["98.962 ± 0.033", "98.922 ± 0.026", "98.124 ± 0.061"],
        "Sensitivity": ["0.957 ± 0.011", "0.962 ± 0.008", "0.943 ± 0.007*"],
        "Specificity": ["0.999 ± 0.001", "0.999 ± 0.001", "0.998 ± 0.000"],
    },
}

# Study A, Table II: the neural ODE model on the test set.
STUDY_A_TABLE_II = {
    "ET": {"Dice": 0.775, "Accuracy (%)": 99.649, "Sensitivity": 0.774, "Specificity": 0.998},
    "TC": {"Dice": 0.845, "Accuracy (%)": 99.425, "Sensitivity": 0.839, "Specificity": 0.997},
    "WT": {"Dice": 0.773, "Accuracy (%)": 99.383, "Sensitivity": 0.762, "Specificity": 0.998},
}

# Study A's key modalities per target (Results, Fig. 7 and Table I).
STUDY_A_KEY_MODALITIES = {"ET": ("t1ce",), "TC": ("t1ce",), "WT": ("flair", "t2")}

# The grade mix of each paper's cohort, for the data chapter's comparison with the phantom's.
# (source, HGG patients, LGG patients). Study A's text gives only the total (369 subjects of
# BraTS 2020); the split is that of the BraTS 2020 training data's name_mapping.csv, which the
# paper used. Study B counts 259 HGG + 76 LGG = 335 graded patients (its "355 patients" does not
# add up with them; BraTS 2019's training set has 335). Study C: "210 HGG cases and 75 LGG cases".
PAPER_COHORT_GRADES = (
    ("study A: BraTS 2020 training data (name_mapping.csv; the paper states only 369 subjects)", 293, 76),
    ("study B: paper, BraTS 2019 training data", 259, 76),
    ("study C: paper, BraTS training data", 210, 75),
)
