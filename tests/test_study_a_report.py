"""lib.study_a.report, with known answers on hand-made results: which keys ``summary.json`` and
``key_modalities.json`` get, in which order and with which values, and what the closing lines say."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from lib.explain.verdict import KeyModalityResult
from lib.study_a.measures import summary_stems
from lib.study_a.report import closing_lines, key_modalities_record, summary_record
from lib.study_a.verdict import SUBSET_MEASURE


def _result(key, scores, params=None):
    return KeyModalityResult(method="hand-made", key=tuple(key), scores=dict(scores), reasons=f"named {key}",
                             params=params or {})


def _explained(dice, acc_key=("t1ce",), occlusion_key=("t1ce", "t1"), gamma_model_dice=0.99):
    """An explained model: test Dice per patient (a patient with no target pixels is left out of the
    mean), the key modalities of each measure, and how well γ matches the model's segmentation."""
    scores = pd.DataFrame({"subject": [f"p{i}" for i in range(len(dice) + 1)], "dice": list(dice) + [1.0],
                           "target_pixels": [10] * len(dice) + [0]})
    return SimpleNamespace(
        scores=scores, key_acc=_result(acc_key, {"t1ce": 0.6, "flair": 0.2}, params={"min_final": 0.1}),
        key_acc_polarity=_result(("flair",), {}), key_acc_logit_share=_result((), {}),
        key_occlusion=_result(occlusion_key, {}), key_attribution=_result(("t1ce",), {}),
        acc=SimpleNamespace(gamma_model_dice=gamma_model_dice))


SPLIT = {"train_patients": 8, "test_patients": 2, "train_slices": 30, "test_slices": 7}
VERDICT = pd.DataFrame({"measure": ["ACC, Eq. 6-7 as printed (paper's rule)", "occlusion", SUBSET_MEASURE],
                        "key modalities (seeds)": ["t1ce (2/2)", "t1ce+t1 (2/2)", "T1ce: near baseline"],
                        "verdict": ["agrees", "partly", "agrees"], "seeds agreeing": ["2/2", "0/2", "—"],
                        "renamed t1ce↔flair": ["follows the channel", "follows the contrast", "follows the contrast"],
                        "renamed, on t1ce+flair only": ["no", "yes", "yes"]})
TESTS = pd.DataFrame({"subset": ["paper key", "paper complement", "diagnostic: t1+t1ce"],
                      "subset_dice": [0.70, 0.20, 0.74], "baseline_dice": [0.76, 0.76, 0.76],
                      "dice_mean_diff_vs_baseline": [-0.06, -0.56, -0.02], "p_by_patient": [0.01, 1e-9, 0.4]})
PERMUTATION = pd.DataFrame({"measure": ["ACC (printed)", "occlusion", "U-Net subset comparison"], "seed": [0, 0, "—"],
                            "verdict": ["follows the channel", "follows the contrast", "follows the contrast"],
                            "on the swapped pair": ["no", "yes", "yes"]})
SEPARABILITY = pd.DataFrame({"auc_alone": [0.90, 0.60], "auc_with_reference": [0.95, 0.55]},
                            index=pd.Index(["ET (bright on T1ce)", "NCR/NET (dark on T1ce)"], name="region"))
NO_TWINS = pd.DataFrame(columns=["twin", "with", "without", "added_real", "added_tumour_free"])


def _summary(explained, variant=None, verdict=VERDICT):
    return summary_record(target="ET", split=SPLIT, reference=("t1ce",), explained=explained, variant=variant or {},
                          verdict=verdict, stems=summary_stems([], []), twin_rows=NO_TWINS, tests=TESTS,
                          permutation_table=PERMUTATION, separability=SEPARABILITY, minutes=12.3456)


def test_summary_record_keys_order_and_values():
    explained = {3: _explained([0.8, 0.6]), 5: _explained([0.5, 0.3], gamma_model_dice=math.nan)}
    summary = _summary(explained, variant={3: _explained([0.9, 0.7])})
    assert summary == {
        "target": "ET", "seeds": 2, **SPLIT, "reference": "t1ce",
        "ode_test_dice_seed3": pytest.approx(0.7), "ode_test_dice_seed5": pytest.approx(0.4),
        "ode_test_dice_mean": pytest.approx(0.55),  # the patient without target is in no mean
        "gamma_model_dice_seed3": 0.99, "gamma_model_dice_seed5": None,  # not checked: null, not NaN, in JSON
        "variant_per_modality_test_dice_seed3": pytest.approx(0.8),
        "acc_verdict": "agrees", "acc_seeds_agreeing": "2/2", "occlusion_verdict": "partly",
        "occlusion_seeds_agreeing": "0/2", "subset_unet_verdict": "agrees", "subset_unet_seeds_agreeing": "—",
        "acc_most_frequent_key": "t1ce",
        "unet_dice_diff_paper_key": -0.06, "unet_dice_diff_paper_complement": -0.56,
        "unet_dice_diff_diagnostic_t1_t1ce": -0.02,
        "renamed_acc_printed_seed0": "follows the channel", "renamed_on_pair_acc_printed_seed0": "no",
        "renamed_occlusion_seed0": "follows the contrast", "renamed_on_pair_occlusion_seed0": "yes",
        "renamed_u_net_subset_comparison": "follows the contrast", "renamed_on_pair_u_net_subset_comparison": "yes",
        "pixel_auc_et_t1ce_alone": 0.90, "pixel_auc_et_t1ce_with_t1": 0.95,
        "pixel_auc_ncr_t1ce_alone": 0.60, "pixel_auc_ncr_t1ce_with_t1": 0.55, "minutes": 12.35}
    assert list(summary)[:8] == ["target", "seeds", "train_patients", "test_patients", "train_slices", "test_slices",
                                 "reference", "ode_test_dice_seed3"]
    assert list(summary)[-1] == "minutes"


def test_summary_record_most_frequent_acc_key_and_twins():
    explained = {0: _explained([0.5], acc_key=("flair",)), 1: _explained([0.5], acc_key=("t1ce",)),
                 2: _explained([0.5], acc_key=("t1ce",))}
    twins = pd.DataFrame({"twin": ["twin: T1 without tumour + T1ce"], "added_real": [0.03], "added_tumour_free": [0.01]})
    summary = summary_record(target="ET", split=SPLIT, reference=("t1ce",), explained=explained, variant={},
                             verdict=VERDICT.iloc[:0], stems={}, twin_rows=twins, tests=TESTS.iloc[:0],
                             permutation_table=PERMUTATION.iloc[:0], separability=SEPARABILITY, minutes=0.0)
    assert summary["acc_most_frequent_key"] == "t1ce"  # 2 of 3 seeds
    assert summary["twin_added_real_twin_t1_without_tumour_t1ce"] == 0.03
    assert summary["twin_added_tumour_free_twin_t1_without_tumour_t1ce"] == 0.01
    assert not any(k.endswith("_verdict") or k.startswith(("unet_dice_diff", "renamed")) for k in summary)


def test_a_verdict_row_without_a_summary_stem_is_an_error():
    unknown = pd.concat([VERDICT, pd.DataFrame([{"measure": "a measure nobody named", "verdict": "agrees",
                                                 "seeds agreeing": "1/1"}])], ignore_index=True)
    with pytest.raises(KeyError, match="a measure nobody named"):
        _summary({0: _explained([0.5])}, verdict=unknown)


def test_key_modalities_record_lists_every_seed_by_every_measure():
    explained = {0: _explained([0.5], acc_key=("t1ce",)), 2: _explained([0.5], acc_key=("flair", "t2"))}
    record = key_modalities_record("ET", "synthetic phantom", ("t1ce",), "planted truth of the phantom", ["t1ce"],
                                   explained, {1: _explained([0.5], acc_key=("t2",))})
    assert list(record) == ["target", "data", "reference", "reference_source", "paper_key_modalities",
                            "acc_selection", "acc_polarity_aware_selection", "acc_logit_share_selection",
                            "variant_per_modality_acc_selection", "occlusion_selection", "attribution_selection",
                            "acc_rule"]
    assert record["acc_selection"] == [
        {"seed": 0, "key": ["t1ce"], "scores": {"t1ce": 0.6, "flair": 0.2}, "reasons": "named ('t1ce',)"},
        {"seed": 2, "key": ["flair", "t2"], "scores": {"t1ce": 0.6, "flair": 0.2}, "reasons": "named ('flair', 't2')"}]
    assert record["acc_logit_share_selection"] == [{"seed": 0, "key": []}, {"seed": 2, "key": []}]
    assert record["variant_per_modality_acc_selection"] == [
        {"seed": 1, "key": ["t2"], "scores": {"t1ce": 0.6, "flair": 0.2}}]
    assert record["occlusion_selection"][1] == {"seed": 2, "key": ["t1ce", "t1"]}
    assert record["acc_rule"] == {"min_final": 0.1} and record["reference"] == ["t1ce"]


def _lines(summary, **changes):
    kwargs = dict(seeds=[3, 5], variant_seeds=[], data_label="synthetic phantom", reference_source="planted truth",
                  paper_dice=0.81, verdict=VERDICT, swap=["t1ce", "flair"], tests=TESTS, twin_rows=NO_TWINS,
                  twin_tumour_free=["t1"], subsets={}, device_label="CPU", cache_usage={})
    kwargs.update(changes)
    return closing_lines(summary, **kwargs)


def test_closing_lines_read_the_summary_and_tables():
    summary = _summary({3: _explained([0.8, 0.6]), 5: _explained([0.5, 0.3])})
    lines = _lines(summary)
    assert lines[0] == "- **Target ET**, 2 seeds, synthetic phantom; reference: t1ce (planted truth)."
    assert lines[1] == "- Neural ODE test Dice per seed: 0.700, 0.400 (paper, Table II: 0.810 on BraTS 2020)."
    assert lines[2] == ("- γ, which Eq. (7) reads from the rendered flow, against the model's own segmentation "
                        "(Dice per seed): 0.990, 0.990 (1: the ACC explains the segmentation the model makes).")
    lines = lines[:2] + lines[3:]
    assert lines[3] == ("- occlusion: t1ce+t1 (2/2) → **partly**. Renamed files: follows the contrast "
                        "(on t1ce+flair only: yes).")
    assert lines[5] == ("- Diagnostic subset t1+t1ce (no verdict reads it): Dice 0.740 vs baseline 0.760"
                        ", means over patients (Table I's cells average the folds; difference -0.020, p = 0.4 by patient).")
    assert lines[6].endswith("necrosis/core 0.600 vs 0.550: T1 as a reference separates enhancing rim better.")
    assert lines[7] == "- Run time: 12.3 min on CPU."
    assert len(lines) == 8 and not any("Variant" in line or "Training cache" in line for line in lines)


def test_closing_lines_without_the_renamed_run_with_a_variant_and_a_cache():
    summary = _summary({3: _explained([0.8, 0.6]), 5: _explained([0.5, 0.3])}, variant={7: _explained([0.25])})
    lines = _lines(summary, swap=[], variant_seeds=[7], verdict=VERDICT.drop(columns=["renamed t1ce↔flair"]),
                   cache_usage={"/nonexistent/cache": {"trained": 2, "reused": 1}})
    assert lines[3] == "- Variant with one U-Net per modality (not in the paper), test Dice per seed: 0.250."
    assert lines[4] == "- ACC, Eq. 6-7 as printed (paper's rule): t1ce (2/2) → **agrees**."
    assert lines[-1].startswith("- Training cache `/nonexistent/cache`: 2 models trained in this run, 1 reused")
    unchecked = _summary({3: _explained([0.8], gamma_model_dice=math.nan), 5: _explained([0.5], gamma_model_dice=0.5)})
    assert "segmentation (Dice per seed): not checked, 0.500 (1:" in _lines(unchecked)[2]
    assert not any("Renamed files" in line for line in lines)


def test_closing_lines_say_neither_when_t1_separates_nothing_better():
    separability = SEPARABILITY.assign(auc_with_reference=[0.80, 0.50])
    summary = summary_record(target="ET", split=SPLIT, reference=("t1ce",), explained={0: _explained([0.5])},
                             variant={}, verdict=VERDICT, stems=summary_stems([], []), twin_rows=NO_TWINS,
                             tests=TESTS, permutation_table=PERMUTATION, separability=separability, minutes=1.0)
    line = next(x for x in _lines(summary, seeds=[0]) if x.startswith("- Pixel separability"))
    assert line.endswith("T1 as a reference separates neither better.") and not math.isnan(summary["minutes"])


def test_the_summary_page_reads_what_a_target_page_writes():
    """across_targets.findings reads a target page's summary.json by key: the keys summary_record
    writes are the ones it reads (a renamed key would read as "no verdict in its summary.json")."""
    from lib.study_a import across_targets

    summary = _summary({3: _explained([0.8, 0.6]), 5: _explained([0.5, 0.3])})
    run = across_targets.TargetRun("ET", None, summary, None)
    counts = pd.DataFrame({"agrees": [2], "partly": [1], "disagrees": [0], "no verdict": [0], "other": [0]},
                          index=pd.Index(["ET"], name="target"))
    page_summary, lines = across_targets.findings({"ET": run}, counts, pd.DataFrame())
    assert page_summary["et_acc_verdict"] == "agrees" and page_summary["et_subset_unet_verdict"] == "agrees"
    assert page_summary["et_occlusion_verdict"] == "partly"
    assert lines[0].startswith("- **ET** (reference t1ce; 2 ODE seeds, mean test Dice 0.550): ")
    assert "occlusion: **partly** (0/2 seeds)" in lines[0]
    assert page_summary["paper_explanation_holds_for"] == "ET"
