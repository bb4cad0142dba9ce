"""lib.study_a.tables, lib.study_a.comparison.dice_gap_lines and lib.plots.eta_coverage_panels with
known answers on hand-made explained models and slices."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lib.data.slices import SliceSet  # noqa: E402
from lib.explain.acc import ACCRule  # noqa: E402
from lib.explain.verdict import KeyModalityResult  # noqa: E402
from lib.plots import eta_coverage_panels  # noqa: E402
from lib.study_a import tables  # noqa: E402
from lib.study_a.comparison import dice_gap_lines  # noqa: E402

MODALITIES = ("t1", "t1ce", "t2", "flair")


def _result(key, scores):
    return KeyModalityResult(method="hand-made", key=tuple(key), scores=dict(scores), reasons=f"named {key}", params={})


def _curves(finals):
    """ACC curves rising linearly from 0 to each modality's final value over t = 0, 0.5, 1."""
    return pd.DataFrame([{"t": t, "modality": m, "mean": t * v, "sd": 0.0} for m, v in finals.items()
                         for t in (0.0, 0.5, 1.0)])


class _ACC:
    """An ACC run of two test slices: γ empty on the second; the printed curves name t1ce over the
    segmented slices and flair over all slices; the polarity-aware ones name t2 over both."""
    t = np.array([0.0, 1.0])
    gamma = np.array([[[True, False], [False, False]], [[False, False], [False, False]]])
    final_frame_error = 1e-7
    gamma_model_dice, gamma_model_differing_pixels = 0.96, 3
    # (T = 2, N = 2, m = 4): coverage NaN on the slice with an empty γ
    eta_coverage = np.array([[[0.0, 0.5, 0.0, 0.0], [np.nan] * 4], [[0.0, 1.0, 0.0, 0.0], [np.nan] * 4]])
    eta_area = np.full((2, 2, 4), 0.25)

    def segmented_slices(self):
        return self.gamma.reshape(2, -1).any(1)

    def curves(self, kind, slices):
        if kind == "polarity_aware":
            return _curves({"t1": 0.1, "t1ce": 0.1, "t2": 0.8, "flair": 0.1})
        return _curves({"t1": 0.1, "t1ce": 0.9, "t2": 0.1, "flair": 0.1} if slices == "segmented"
                       else {"t1": 0.1, "t1ce": 0.1, "t2": 0.1, "flair": 0.7})


def _explained():
    scores = pd.DataFrame({"subject": ["a", "b", "c"], "dice": [0.8, 0.6, 1.0], "accuracy": [0.9, 0.95, 1.0],
                           "sensitivity": [0.7, 0.5, np.nan], "specificity": [0.99, 0.98, 1.0],
                           "target_pixels": [5, 3, 0]})
    occlusion_table = pd.DataFrame({"n_slices": [4, 4]})
    by_grade = {"HGG": (occlusion_table, _result(("t1ce", "t1"), {"t1ce": 0.4, "t1": 0.1})),
                "LGG": (None, _result((), {}))}
    shares = pd.DataFrame({"modality": ["t1ce", "t1ce", "t2", "t2"], "share": [0.6, 0.8, 0.4, 0.2]})
    return SimpleNamespace(
        scores=scores, acc=_ACC(), key_acc=_result(("t1ce", "t1"), {"t1": 0.5, "t1ce": 0.9}),
        key_acc_polarity=_result(("t2",), {}), key_acc_logit_share=_result(("t1ce", "t2"), {"t1ce": 0.55, "t2": 0.45}),
        key_occlusion=_result(("t1ce", "t1"), {"t1ce": 0.5, "t1": 0.3}), key_attribution=_result(("t1ce",), {"t1ce": 0.7}),
        occlusion_by_grade=by_grade, completeness_error=np.array([0.01, 0.2, 0.03]), extra={"ig_tolerance": 0.05},
        attribution_shares=shares, fidelity=pd.Series({"t1": 0.4, "t1ce": -0.1}))


def test_table_two_seed_columns_beside_the_paper_column():
    table = tables.table_two({4: _explained()}, "synthetic phantom", {"Dice": 0.8123}, "paper (BraTS 2020)")
    assert list(table.columns) == ["seed 4 (synthetic phantom)", "paper (BraTS 2020)"]
    seed = table["seed 4 (synthetic phantom)"]
    assert seed["Dice"] == "0.700 ± 0.141"            # patients a, b: c has no target
    assert seed["Specificity"] == "0.990 ± 0.010"     # all three patients
    assert seed["patients (with target)"] == "3 (2)"
    assert table.loc["Dice", "paper (BraTS 2020)"] == "0.812"
    assert table.loc["Specificity", "paper (BraTS 2020)"] == "—"  # a row the paper does not give


def test_acc_key_table_reads_both_choices_of_slices():
    row = tables.acc_key_table({0: _explained()}, "segmented", ACCRule()).iloc[0]
    assert row["slices averaged"] == "1 of 2"
    assert row["ACC key (printed), all slices"] == "flair" and row["ACC key (polarity-aware), all slices"] == "t2"
    assert row["ACC key (printed)"] == "t1ce+t1" and row["top-ranked final μ"] == "t1ce"  # the rule's key, then the top one
    assert row["final μ per modality (printed)"] == "t1 0.5, t1ce 0.9"
    other = tables.acc_key_table({0: _explained()}, "all", ACCRule()).iloc[0]
    assert other["slices averaged"] == "2 of 2" and other["ACC key (printed), segmented slices"] == "t1ce"


def test_gamma_and_occlusion_tables():
    gamma = tables.gamma_diagnostics({1: _explained()}).iloc[0]
    assert gamma["empty γ slices"] == 1 and gamma["test slices"] == 2 and gamma["mean γ area (%)"] == 12.5
    assert gamma["Dice(γ, model's segmentation)"] == 0.96 and gamma["pixels where γ and the model differ"] == 3
    by_grade = tables.occlusion_by_grade_table({1: _explained()}, MODALITIES)
    hgg, lgg = by_grade.iloc[0], by_grade.iloc[1]
    assert (hgg["grade"], hgg["test slices with the target"], hgg["drop, t1ce occluded"]) == ("HGG", 4, 0.4)
    assert np.isnan(hgg["drop, t2 occluded"]) and hgg["occlusion key"] == "t1ce+t1"
    assert hgg["largest single drop"] == "t1ce" and hgg["note"] == ""
    assert pd.isna(lgg["test slices with the target"]) and lgg["occlusion key"] == "no verdict"
    assert str(by_grade["test slices with the target"].dtype) == "Int64"  # counts print as 4, not 4.0
    assert lgg["note"] == "named ()"
    assert tables.occlusion_key_table({1: _explained()}).to_dict("records") == [
        {"seed": 1, "occlusion key": "t1ce+t1", "reasons": "named ('t1ce', 't1')"}]


def test_attribution_table_counts_converged_slices():
    row = tables.attribution_table({2: _explained()}).iloc[0]
    assert (row["slices"], row["converged"]) == (3, 2)
    assert row["median completeness error"] == 0.03 and row["max completeness error"] == 0.2
    assert row["share t1ce (all slices)"] == pytest.approx(0.7) and row["share t2 (all slices)"] == pytest.approx(0.3)
    assert row["share t1ce (converged)"] == 0.7 and row["attribution key"] == "t1ce"


def test_vector_field_table_one_row_per_field_and_seed():
    table = tables.vector_field_table({"shared": {0: _explained(), 1: _explained()}, "variant": {}})
    assert list(table["vector field"]) == ["shared", "shared"] and list(table["seed"]) == [0, 1]
    row = table.iloc[0]
    assert row["test Dice"] == pytest.approx(0.7) and row["lowest self-fidelity"] == -0.1
    assert row["final logit share per modality"] == "t1ce 0.55, t2 0.45"
    assert row["ACC (printed)"] == "t1ce+t1" and row["ACC (printed, top-ranked)"] == "t1ce" and row["occlusion"] == "t1ce+t1"
    assert "occlusion (largest single drop)" not in table.columns  # not shown for both fields


def test_separability_table_bright_rim_and_dark_core():
    rng = np.random.default_rng(0)
    t1ce = rng.normal(0, 0.1, (2, 8, 8)).astype(np.float32)
    labels = np.zeros((2, 8, 8), np.uint8)
    labels[:, :2, :2], labels[:, 6:, 6:], labels[:, 3:5, 3:5] = 3, 1, 2     # enhancing rim, necrosis, oedema
    t1ce[labels == 3], t1ce[labels == 1], t1ce[labels == 2] = 5.0, -5.0, 6.0
    images = np.stack([rng.normal(0, 0.1, (2, 8, 8)), t1ce, np.zeros((2, 8, 8)), np.zeros((2, 8, 8))], 1)
    slices = SliceSet(images=images.astype(np.float32), labels=labels, brain=np.ones((2, 8, 8), bool),
                      subject_ids=np.array(["a", "b"]), slice_index=np.arange(2), grades=np.array(["HGG", "HGG"], object),
                      modalities=MODALITIES)
    table = tables.separability_table(slices, MODALITIES, max_pixels=None, seed=0)
    assert list(table.index) == ["ET (bright on T1ce)", "NCR/NET (dark on T1ce)"]
    # 1.0 only if the core is read as dark (bright=False) and the oedema, brighter than the rim, is not
    # counted as healthy brain
    assert table["auc_alone"].tolist() == [1.0, 1.0]


def test_dice_gap_lines_by_grade_and_target_size():
    gaps = pd.DataFrame({"subset": ["key"] * 4, "inputs": ["t1ce"] * 4, "subject": list("abcd"),
                         "grade": ["HGG", "HGG", "LGG", "LGG"], "target_pixels": [10, 20, 20, 40],
                         "dice_diff_vs_baseline": [-0.4, -0.2, 0.0, 0.2]})
    assert dice_gap_lines(gaps) == [
        "- key (t1ce): mean difference -0.100; by grade HGG -0.300 (n = 2), LGG +0.100 (n = 2); patients below "
        "the median target size (20 px) -0.400, at or above it +0.000."]  # b and c, at the median, count as large
    assert dice_gap_lines(gaps.iloc[:0]) == []


def test_eta_coverage_panels_leave_out_slices_with_empty_gamma():
    fig = eta_coverage_panels({0: _ACC(), 3: _ACC()}, MODALITIES)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["seed 0", "seed 3"]
    t1ce_coverage = axes[0].get_lines()[2]             # solid line of the second modality
    assert t1ce_coverage.get_label() == "t1ce: covers γ"
    assert list(t1ce_coverage.get_ydata()) == [0.5, 1.0]  # the NaN slice is not averaged in
    assert list(axes[0].get_lines()[3].get_ydata()) == [0.25, 0.25]
    plt.close(fig)


def test_training_table_says_where_the_weights_came_from():
    histories = {0: SimpleNamespace(epoch_losses=[0.9, 0.5, 0.3], seconds=12.0, slices_per_second=20.0, from_cache=False),
                 2: SimpleNamespace(epoch_losses=[0.8], seconds=0.1, slices_per_second=float("nan"), from_cache=True)}
    table = tables.training_table(histories)
    assert table.to_dict("records")[0] == {"seed": 0, "epochs": 3, "first epoch loss": 0.9, "last epoch loss": 0.3,
                                           "seconds": 12.0, "training slices/s": 20.0, "weights": "trained in this run"}
    assert table.iloc[1]["weights"] == "reused (training cache)" and table.iloc[1]["epochs"] == 1
