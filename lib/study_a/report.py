"""What a study A page records at its end: ``key_modalities.json``, ``summary.json`` and the
closing "What this run found" lines.

Nothing here computes a result: these functions gather what the chapter's earlier cells computed
(trained and explained models, Table I's tests, the verdict and permutation tables) under stable
names. The study A summary page (``book/study_a_summary.py``) reads the ``summary.json`` keys;
``key_modalities.json`` records each seed's key modalities by every measure, with the target and
the data named in it, as issue 3 asks.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lib.paths import display as display_path
from lib.results import slug
from lib.study_a.comparison import twin_reading_text
from lib.study_a.ode import mean_dice
from lib.study_a.tables import SEPARABILITY_REGIONS
from lib.study_a.verdict import key_label, seed_agreement

# Which key-modality result of an explained model each selection of key_modalities.json lists, and
# whether the rule's scores and reasons go with each entry (only the printed ACC's do).
_SELECTIONS = (("acc_selection", "key_acc", True), ("acc_polarity_aware_selection", "key_acc_polarity", False),
               ("acc_logit_share_selection", "key_acc_logit_share", False))
_MEASURE_SELECTIONS = (("occlusion_selection", "key_occlusion"), ("attribution_selection", "key_attribution"))


def key_modalities_record(target: str, data_label: str, reference: Sequence[str], reference_source: str,
                          paper_key_modalities: Sequence[str], explained: Mapping[int, Any],
                          variant: Mapping[int, Any]) -> dict:
    """``key_modalities.json``: each seed's key modalities under the paper's ACC rule (with the
    rule's scores, reasons and parameters), its two ACC variants, the per-modality variant's ACC,
    occlusion and integrated gradients, beside the reference they are read against."""

    def selection(models: Mapping[int, Any], field: str, with_scores: bool, with_reasons: bool = False) -> list[dict]:
        out = []
        for seed, e in models.items():
            result = getattr(e, field)
            entry = {"seed": seed, "key": list(result.key)}
            if with_scores:
                entry["scores"] = result.scores
            if with_reasons:
                entry["reasons"] = result.reasons
            out.append(entry)
        return out

    record = {"target": target, "data": data_label, "reference": list(reference), "reference_source": reference_source,
              "paper_key_modalities": list(paper_key_modalities)}
    for name, field, with_scores in _SELECTIONS:
        record[name] = selection(explained, field, with_scores, with_reasons=with_scores)
    record["variant_per_modality_acc_selection"] = selection(variant, "key_acc", True)
    for name, field in _MEASURE_SELECTIONS:
        record[name] = selection(explained, field, False)
    record["acc_rule"] = next(iter(explained.values())).key_acc.params
    return record


def summary_record(*, target: str, split: Mapping[str, int], reference: Sequence[str],
                   explained: Mapping[int, Any], variant: Mapping[int, Any], verdict: pd.DataFrame,
                   stems: Mapping[str, str], twin_rows: pd.DataFrame, tests: pd.DataFrame,
                   permutation_table: pd.DataFrame, separability: pd.DataFrame, minutes: float) -> dict:
    """``summary.json`` of one study A page (the file sorts its keys; gathered in this order):

    ``target``, ``seeds``, the patient and slice counts of ``split``
    (:meth:`lib.study_a.data.StudyAData.split_sizes`), ``reference``; each seed's neural ODE
    test Dice (``ode_test_dice_seed<s>``) and their mean; the Dice between each seed's γ and its
    model's own segmentation (``gamma_model_dice_seed<s>``, null when not checked); the
    per-modality variant's test Dice; each
    verdict row's ``<stem>_verdict`` and ``<stem>_seeds_agreeing`` (``stems``:
    :func:`lib.study_a.measures.summary_stems`; a row without a stem is an error, not skipped);
    ``acc_most_frequent_key``; what each tumour-free twin adds (``twin_added_real_<twin>``,
    ``twin_added_tumour_free_<twin>``); Table I's mean Dice difference of each subset to all
    inputs (``unet_dice_diff_<subset>``); the permutation check's readings (``renamed_<measure>``
    and ``renamed_on_pair_<measure>``, with ``_seed<s>`` where the row is one seed's); the pixel
    AUCs of T1ce alone and with T1 (``pixel_auc_<et|ncr>_t1ce_alone``/``_with_t1``); ``minutes``.
    """
    summary = {"target": target, "seeds": len(explained), **split, "reference": key_label(reference)}
    for s, e in explained.items():
        summary[f"ode_test_dice_seed{s}"] = mean_dice(e.scores)
    summary["ode_test_dice_mean"] = float(np.mean([mean_dice(e.scores) for e in explained.values()]))
    for s, e in explained.items():
        agreement = float(e.acc.gamma_model_dice)
        summary[f"gamma_model_dice_seed{s}"] = None if np.isnan(agreement) else agreement
    for s, e in variant.items():
        summary[f"variant_per_modality_test_dice_seed{s}"] = mean_dice(e.scores)
    for _, row in verdict.iterrows():
        short = stems[row["measure"]]
        summary[f"{short}_verdict"] = row["verdict"]
        summary[f"{short}_seeds_agreeing"] = row["seeds agreeing"]
    summary["acc_most_frequent_key"] = seed_agreement([e.key_acc for e in explained.values()], None)["most_frequent"]
    for _, row in twin_rows.iterrows():
        summary[f"twin_added_real_{slug(row['twin'])}"] = row["added_real"]
        summary[f"twin_added_tumour_free_{slug(row['twin'])}"] = row["added_tumour_free"]
    for _, row in tests.iterrows():
        summary[f"unet_dice_diff_{slug(row['subset'])}"] = row["dice_mean_diff_vs_baseline"]
    for _, row in permutation_table.iterrows():
        seed_part = f"_seed{row['seed']}" if row["seed"] != "—" else ""
        summary[f"renamed_{slug(row['measure'])}{seed_part}"] = row["verdict"]
        summary[f"renamed_on_pair_{slug(row['measure'])}{seed_part}"] = row["on the swapped pair"]
    for key, (region, _) in SEPARABILITY_REGIONS.items():
        summary[f"pixel_auc_{key}_t1ce_alone"] = float(separability.loc[region, "auc_alone"])
        summary[f"pixel_auc_{key}_t1ce_with_t1"] = float(separability.loc[region, "auc_with_reference"])
    summary["minutes"] = round(minutes, 2)
    return summary


def closing_lines(summary: Mapping[str, Any], *, seeds: Sequence[int], variant_seeds: Sequence[int], data_label: str,
                  reference_source: str, paper_dice: float,
                  verdict: pd.DataFrame, swap: Sequence[str], tests: pd.DataFrame, twin_rows: pd.DataFrame,
                  twin_tumour_free: Sequence[str], subsets: Mapping[str, Sequence[str]], device_label: str,
                  cache_usage: Mapping[Any, Mapping[str, int]]) -> list[str]:
    """The chapter's closing bullet points, read from ``summary`` (:func:`summary_record`) and
    the tables it came from (``seeds``, ``variant_seeds``: those of its ``*_seed<s>`` keys): each seed's test Dice beside the paper's Table II (``paper_dice``),
    each verdict row (with its renamed-file readings when ``swap`` was run), the diagnostic subsets
    no verdict reads, the tumour-free twins, the pixel AUCs, run time and the training cache's use."""
    lines = [f"- **Target {summary['target']}**, {summary['seeds']} seeds, {data_label}; reference: "
             f"{summary['reference']} ({reference_source})."]
    lines.append("- Neural ODE test Dice per seed: " + ", ".join(f"{summary[f'ode_test_dice_seed{s}']:.3f}" for s in seeds)
                 + f" (paper, Table II: {paper_dice:.3f} on BraTS 2020).")
    lines.append("- γ, which Eq. (7) reads from the rendered flow, against the model's own segmentation (Dice per seed): "
                 + ", ".join("not checked" if summary[f"gamma_model_dice_seed{s}"] is None
                             else f"{summary[f'gamma_model_dice_seed{s}']:.3f}" for s in seeds)
                 + " (1: the ACC explains the segmentation the model makes).")
    if variant_seeds:
        lines.append("- Variant with one U-Net per modality (not in the paper), test Dice per seed: "
                     + ", ".join(f"{summary[f'variant_per_modality_test_dice_seed{s}']:.3f}" for s in variant_seeds) + ".")
    for _, row in verdict.iterrows():
        extra = (f" Renamed files: {row[f'renamed {swap[0]}↔{swap[1]}']} (on {swap[0]}+{swap[1]} only: "
                 f"{row[f'renamed, on {swap[0]}+{swap[1]} only']})." if swap and f"renamed {swap[0]}↔{swap[1]}" in row else "")
        lines.append(f"- {row['measure']}: {row['key modalities (seeds)']} → **{row['verdict']}**.{extra}")
    for _, row in tests[tests["subset"].str.startswith("diagnostic")].iterrows():
        lines.append(f"- {row['subset'].replace('diagnostic: ', 'Diagnostic subset ')} (no verdict reads it): Dice "
                     f"{row['subset_dice']:.3f} vs baseline {row['baseline_dice']:.3f}, means over patients (Table I's cells "
                     f"average the folds; difference {row['dice_mean_diff_vs_baseline']:+.3f}, p = "
                     f"{row['p_by_patient']:.2g} by patient).")
    for _, row in twin_rows.iterrows():
        lines.append("- " + twin_reading_text(row, "+".join(twin_tumour_free), "+".join(subsets[row["without"]]))
                     + " (Not measured in this build: in two earlier builds of 2026-12-03 that differed only in "
                       "floating-point rounding, Table I differences like this one moved by up to 0.047; NOTES.md, "
                       "\"How much do the figures move from build to build?\")")
    higher = [name for name, key in (("enhancing rim", "et"), ("necrosis/core", "ncr"))
              if summary[f"pixel_auc_{key}_t1ce_with_t1"] > summary[f"pixel_auc_{key}_t1ce_alone"]]
    lines.append(f"- Pixel separability from healthy brain (AUC), T1ce alone vs T1ce with T1 as reference: enhancing rim "
                 f"{summary['pixel_auc_et_t1ce_alone']:.3f} vs {summary['pixel_auc_et_t1ce_with_t1']:.3f}, "
                 f"necrosis/core {summary['pixel_auc_ncr_t1ce_alone']:.3f} vs "
                 f"{summary['pixel_auc_ncr_t1ce_with_t1']:.3f}: T1 as a reference separates "
                 f"{' and '.join(higher) if higher else 'neither'} better.")
    lines.append(f"- Run time: {summary['minutes']:.1f} min on {device_label}.")
    for folder, counts in cache_usage.items():
        lines.append(f"- Training cache `{display_path(folder)}`: {counts['trained']} models trained in this run, "
                     f"{counts['reused']} reused from an earlier run with the same initial weights, data, settings, "
                     "device, threads and library code (`lib.training_cache`; `training_cache_dir: null` trains every "
                     "model).")
    return lines

