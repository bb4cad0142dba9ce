"""Study A's pipeline pieces with known answers: the renamed-modality cohort, the comparison
subsets, Table I's statistics and the verdict logic."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lib.data.slices import SliceSet
from lib.explain.verdict import KeyModalityResult
from lib.stats import mean_sd
from lib.study_a.comparison import average_over_seeds, comparison_subsets, table_one
from lib.study_a.data import swap_modality_names
from lib.study_a.verdict import (follows, follows_on_pair, holds_contrasts, min_pairs_for_significance, subset_outcome,
                                 subset_outcome_text, subset_verdict, subset_verdict_by_grade, verdict_rows)

MODS = ("t1", "t1ce", "t2", "flair")
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _slices(n=2):
    images = np.stack([np.full((n, 4, 4), k, dtype=np.float32) for k in range(4)], axis=1)  # channel k == k
    return SliceSet(images=images, labels=np.zeros((n, 4, 4), np.uint8), brain=np.ones((n, 4, 4), bool),
                    subject_ids=np.array(["a"] * n), slice_index=np.arange(n), grades=np.array(["HGG"] * n, dtype=object),
                    modalities=MODS)


def test_swapping_names_moves_the_images_not_the_names():
    swapped = swap_modality_names(_slices(), ("t1ce", "flair"))
    assert swapped.modalities == MODS
    assert swapped.images[0, 1, 0, 0] == 3 and swapped.images[0, 3, 0, 0] == 1   # t1ce holds FLAIR's image
    assert swapped.images[0, 0, 0, 0] == 0 and swapped.images[0, 2, 0, 0] == 2


def test_comparison_subsets_add_this_runs_selection_only_when_it_differs():
    base = comparison_subsets(MODS, ["t1ce"], ("t1ce",))
    assert base == {"baseline": MODS, "paper key": ("t1ce",), "paper complement": ("t1", "t2", "flair")}
    extra = comparison_subsets(MODS, ["t1ce"], ("flair",))
    assert extra["this run's key"] == ("flair",) and extra["this run's complement"] == ("t1", "t1ce", "t2")
    assert "this run's key" not in comparison_subsets(MODS, ["t1ce"], ())


def test_diagnostic_subsets_are_added_in_channel_order_without_repeats():
    subsets = comparison_subsets(MODS, ["t1ce"], (), [["t1ce", "t1"], ["t1ce"]])
    assert subsets["diagnostic: t1+t1ce"] == ("t1", "t1ce")
    assert "diagnostic: t1ce" not in subsets  # already there as the paper's key
    with pytest.raises(ValueError, match="dwi"):
        comparison_subsets(MODS, ["t1ce"], (), [["dwi"]])


def test_diagnostic_subsets_param_names_the_bad_entry(tmp_path):
    from lib.params import ParamsError, load

    path = tmp_path / "p.yaml"
    path.write_text("extends: " + str(REPO / "params/study_a/et-smoke.yaml") + "\nunet_diagnostic_subsets: [t1+t1cee]\n")
    with pytest.raises(ParamsError, match="unet_diagnostic_subsets.*t1\\+t1cee"):
        load(path)


def _per_patient(key_dice, comp_dice, base_dice=0.8, n=8):
    rows = []
    for role, inputs, dice in [("baseline", "all", base_dice), ("paper key", "t1ce", key_dice),
                               ("paper complement", "t1+t2+flair", comp_dice)]:
        for i in range(n):
            rows.append({"subset": role, "inputs": inputs, "fold": i % 2 + 1, "subject": f"s{i}",
                         "dice": dice + 0.01 * i, "accuracy": 0.99, "sensitivity": 0.8, "specificity": 0.99,
                         "target_pixels": 10})
    rows.append({"subset": "baseline", "inputs": "all", "fold": 1, "subject": "empty", "dice": 1.0, "accuracy": 1.0,
                 "sensitivity": np.nan, "specificity": 1.0, "target_pixels": 0})
    return pd.DataFrame(rows)


def test_table_one_marks_a_clearly_lower_subset_and_ignores_empty_targets():
    table, tests = table_one(_per_patient(key_dice=0.79, comp_dice=0.3))
    assert table.loc["Dice", "paper complement: t1+t2+flair"].endswith("*")
    comp = tests.set_index("subset").loc["paper complement"]
    assert comp["dice_mean_diff_vs_baseline"] == pytest.approx(-0.5)
    assert comp["n_patients"] == 8  # the patient without target is left out
    assert comp["p_by_patient"] == pytest.approx(2 / 2 ** 8)  # exact two-sided, all 8 differences negative
    assert tests.set_index("subset").loc["paper key", "dice_mean_diff_vs_baseline"] == pytest.approx(-0.01)


def test_unet_seeds_are_averaged_per_patient_before_the_table():
    """Two U-Net seeds: seed 0's key subset is 0.2 below baseline, seed 1's level with it. Table I
    sees each patient's mean over seeds (-0.1) and the tests list each seed's own difference."""
    runs = []
    for seed, key_dice in ((0, 0.6), (1, 0.8)):
        one = _per_patient(key_dice=key_dice, comp_dice=0.3)
        one.insert(1, "seed", seed)
        runs.append(one)
    both = pd.concat(runs, ignore_index=True)
    averaged = average_over_seeds(both)
    assert len(averaged) == len(runs[0]) and (averaged["seeds"] == 2).all()
    key = averaged[averaged["subset"] == "paper key"].set_index("subject")["dice"]
    assert key["s0"] == pytest.approx(0.7) and key["s3"] == pytest.approx(0.73)
    _, tests = table_one(both)
    row = tests.set_index("subset").loc["paper key"]
    assert row["dice_mean_diff_vs_baseline"] == pytest.approx(-0.1)
    # one pair per patient (its mean over seeds), all 0.1 below the baseline: exact p = 2 / 2**8
    assert row["n_patients"] == 8 and row["p_by_patient"] == pytest.approx(2 / 2**8)
    assert row["dice_diff_by_seed"] == "-0.200 +0.000"
    assert average_over_seeds(runs[0].drop(columns="seed")).equals(runs[0].drop(columns="seed"))


def test_unet_seeds_param_must_name_some_distinct_seeds(tmp_path):
    from lib.params import ParamsError, load

    path = tmp_path / "p.yaml"
    for bad, message in (("[]", "at least one"), ("[1, 1]", "distinct")):
        path.write_text("extends: " + str(REPO / "params/study_a/et-smoke.yaml") + f"\nunet_seeds: {bad}\n")
        with pytest.raises(ParamsError, match=f"unet_seeds.*{message}"):
            load(path)


def test_subset_verdicts():
    _, tests = table_one(_per_patient(key_dice=0.79, comp_dice=0.3))
    assert subset_verdict(tests, True, False, 0.05, 0.1)[0] == "agrees"
    assert subset_verdict(tests, False, True, 0.05, 0.1)[0] == "disagrees"
    assert subset_verdict(tests, True, True, 0.05, 0.1)[0] == "not discriminative"
    _, failed = table_one(_per_patient(key_dice=0.05, comp_dice=0.05, base_dice=0.05))
    assert subset_verdict(failed, True, False, 0.05, 0.1)[0] == "no verdict"


def _tests(key_diff, comp_diff, comp_significant=True, baseline=0.8):
    """A hand-made table_one tests frame: the two subsets' mean Dice difference to the baseline."""
    return pd.DataFrame([
        {"subset": "paper key", "dice_mean_diff_vs_baseline": key_diff, "significant_by_patient": True,
         "p_by_patient": 0.001, "baseline_dice": baseline},
        {"subset": "paper complement", "dice_mean_diff_vs_baseline": comp_diff,
         "significant_by_patient": comp_significant, "p_by_patient": 0.01 if comp_significant else 0.3,
         "baseline_dice": baseline},
    ])


def test_the_subset_verdict_says_the_differences_and_p_values_it_read():
    # "near baseline" is a margin on the Dice difference, not the paper's "without significance":
    # the text shows the p-value beside it, so a significant small difference is visible
    verdict, text = subset_verdict(_tests(-0.01, -0.5), True, False, 0.05, 0.1)
    assert verdict == "agrees"
    assert text == "paper key subset near baseline (-0.010, p = 0.001); complement clearly lower (-0.500, p = 0.01)"
    assert subset_outcome_text(_tests(-0.01, -0.5).iloc[:1], "paper complement", 0.05, 0.1) == "not run"


def test_a_large_drop_that_is_not_significant_is_not_clearly_lower():
    # complement 0.5 below the baseline but p >= alpha: "clearly lower" needs significance too
    assert subset_outcome(_tests(-0.01, -0.5, comp_significant=False), "paper complement", 0.05, 0.1) == "in between"
    assert subset_verdict(_tests(-0.01, -0.5, comp_significant=False), True, False, 0.05, 0.1)[0] == "partly"
    assert subset_verdict(_tests(-0.01, -0.5), True, False, 0.05, 0.1)[0] == "agrees"


def test_a_nan_baseline_dice_gives_no_verdict():
    # nan is not >= min_baseline_dice: a baseline whose Dice is undefined did not show it learned the target
    assert subset_verdict(_tests(-0.01, -0.5, baseline=np.nan), True, False, 0.05, 0.1)[0] == "no verdict"


def _two_grades(n=8):
    """High-grade patients where the key subset is level with the baseline and the complement far
    below; low-grade ones the other way round (subjects h0.., l0..)."""
    high = _per_patient(key_dice=0.79, comp_dice=0.3, n=n).assign(subject=lambda d: "h" + d["subject"])
    low = _per_patient(key_dice=0.3, comp_dice=0.79, n=n).assign(subject=lambda d: "l" + d["subject"])
    grades = {**{s: "HGG" for s in high["subject"]}, **{s: "LGG" for s in low["subject"]}}
    return pd.concat([high, low], ignore_index=True), grades


def test_subset_verdict_by_grade_reads_each_grade_with_the_same_rule():
    per_patient, grades = _two_grades()
    by_grade = subset_verdict_by_grade(per_patient, grades, True, False, 0.05, 0.1)
    assert list(by_grade) == ["HGG", "LGG"]
    assert by_grade["HGG"][0] == "agrees" and by_grade["LGG"][0] == "disagrees"
    assert "(8 HGG patients)" in by_grade["HGG"][1]  # the empty-target patient is not counted
    # over both grades each subset is 0.255 below the baseline: the mean hides which grade fails it
    _, tests = table_one(per_patient)
    assert tests["dice_mean_diff_vs_baseline"].tolist() == pytest.approx([-0.255, -0.255])
    assert subset_verdict(tests, True, False, 0.05, 0.1)[0] == "partly"
    # too few patients in a grade for the signed-rank test to reach alpha: no verdict, not "partly"
    few, few_grades = _two_grades(n=5)
    assert table_one(few[few["subject"].str.startswith("h")])[1]["p_by_patient"].min() == pytest.approx(2 / 2 ** 5)
    verdict, reason = subset_verdict_by_grade(few, few_grades, True, False, 0.05, 0.1)["HGG"]
    assert verdict == "no verdict" and "5 HGG patients with the target: the signed-rank test needs 6" in reason
    assert subset_verdict_by_grade(*_two_grades(n=6), True, False, 0.05, 0.1)["HGG"][0] == "agrees"


def test_min_pairs_for_significance_is_where_the_smallest_exact_p_drops_below_alpha():
    assert min_pairs_for_significance(0.05) == 6   # 2/32 = 0.0625, 2/64 = 0.031
    assert min_pairs_for_significance(0.0625) == 6  # p < alpha, strictly
    assert min_pairs_for_significance(0.01) == 8    # 2/128 = 0.0156, 2/256 = 0.0078
    assert min_pairs_for_significance(1.0) == 2
    with pytest.raises(ValueError, match="alpha"):
        min_pairs_for_significance(0)


def test_subset_verdict_by_grade_needs_two_known_grades_and_some_target():
    per_patient, grades = _two_grades()
    assert subset_verdict_by_grade(per_patient, {s: None for s in grades}, True, False, 0.05, 0.1) == {}
    assert subset_verdict_by_grade(per_patient, {s: "HGG" for s in grades}, True, False, 0.05, 0.1) == {}
    no_target = per_patient.copy()
    no_target.loc[no_target["subject"].str.startswith("l"), "target_pixels"] = 0
    by_grade = subset_verdict_by_grade(no_target, grades, True, False, 0.05, 0.1)
    assert by_grade["LGG"] == ("no verdict", "no LGG patient has the target")
    rows = verdict_rows("TC", ("t1ce",), "planted", {}, ("partly", "x"), by_grade)
    assert rows["measure"].tolist() == ["U-Net subset comparison (Table I)",
                                        "U-Net subset comparison (Table I), HGG patients only",
                                        "U-Net subset comparison (Table I), LGG patients only"]
    assert rows["verdict"].tolist() == ["partly", "agrees", "no verdict"]


def test_follows_contrast_or_name():
    pair = ("t1ce", "flair")
    assert follows(("flair",), ("t1ce",), pair) == "follows the contrast"
    assert follows(("t1ce",), ("t1ce",), pair) == "follows the channel name/position"
    assert follows((), ("t1ce",), pair) == "no verdict"
    assert follows(("t2",), ("t1ce",), pair).startswith("neither")
    assert follows(("t1",), ("t1",), pair) == "not discriminative"
    assert follows(("t1ce",), ("flair", "t2"), pair) == "follows the contrast"   # FLAIR's image is in 't1ce'
    assert follows(("t2",), ("flair", "t2"), pair) == "not discriminative"
    assert follows(("flair", "t1ce"), ("t1ce",), pair).startswith("neither")


def test_follows_on_the_renamed_pair_ignores_the_other_channels():
    pair = ("t1ce", "flair")
    # the whole key differs outside the pair (t2 vs t1): follows() cannot tell, the pair reading can
    assert follows(("flair", "t1"), ("t1ce", "t2"), pair).startswith("neither")
    assert follows_on_pair(("flair", "t1"), ("t1ce", "t2"), pair) == "follows the contrast"
    assert follows_on_pair(("t1ce", "t1"), ("t1ce", "t2"), pair) == "follows the channel name/position"
    assert follows_on_pair(("flair", "t1ce"), ("t1ce",), pair) == "neither (flair+t1ce)"
    assert follows_on_pair(("t1",), ("t1ce",), pair) == "neither (none of t1ce+flair)"
    assert follows_on_pair(("t2",), ("t2",), pair) == "not discriminative"          # reference outside the pair
    assert follows_on_pair(("t1ce",), ("t1ce", "flair"), pair) == "not discriminative"  # both in the pair
    assert follows_on_pair(("t1ce", "t2"), ("flair", "t2"), pair) == "follows the contrast"  # WT
    assert follows_on_pair((), ("t1ce",), pair) == "no verdict"
    assert follows_on_pair(("flair",), (), pair).startswith("no verdict")
    # against the measure's own original key: a measure that named FLAIR (not the truth) and names
    # the channel now holding FLAIR's image follows the contrast
    assert follows(("t1ce",), ("flair",), pair) == "follows the contrast"
    assert follows(("flair",), ("flair",), pair) == "follows the channel name/position"
    assert follows(("t1ce",), (), pair) == "no verdict (no key on the original cohort)"
    assert holds_contrasts(("t1", "t2", "flair"), ("t1ce",), pair)       # flair now holds T1ce
    assert not holds_contrasts(("t1ce",), ("t1ce",), pair)


def test_verdict_rows_count_seeds():
    def result(key):
        return KeyModalityResult(method="m", key=tuple(key), scores={}, reasons="", params={})

    rows = verdict_rows("ET", ("t1ce",), "planted", {"acc": [result(["t1ce"]), result(["flair"]), result([])],
                                                     "occ": [result(["t1ce"])] * 3, "none": [result([])] * 3,
                                                     "wrong": [result(["flair"]), result([]), result(["t2", "t1"])],
                                                     "all wrong": [result(["flair"])] * 3,
                                                     "overlap": [result(["t1ce", "t1"])] * 3},
                        ("agrees", "text"))
    by = rows.set_index("measure")
    assert by.loc["acc", "verdict"] == "partly" and by.loc["acc", "seeds agreeing"] == "1/3"
    assert by.loc["occ", "verdict"] == "agrees" and by.loc["none", "verdict"] == "no verdict"
    # no seed names the reference (some name nothing): disagrees, not partly
    assert by.loc["wrong", "verdict"] == "disagrees" and by.loc["wrong", "seeds agreeing"] == "0/3"
    assert by.loc["all wrong", "verdict"] == "disagrees"
    assert by.loc["overlap", "verdict"] == "partly" and by.loc["overlap", "seeds agreeing"] == "0/3"
    assert by.loc["U-Net subset comparison (Table I)", "verdict"] == "agrees"


def test_seeds_naming_one_set_in_different_orders_count_as_one_key_set():
    from lib.study_a.verdict import seed_agreement

    def result(key):
        return KeyModalityResult(method="m", key=tuple(key), scores={}, reasons="", params={})

    seeds = [result(["t2", "flair"]), result(["flair", "t2"]), result(["t1ce"])]  # keys ranked by score
    tally = seed_agreement(seeds, ("flair", "t2"))
    assert tally["keys"] == {"flair+t2": 2, "t1ce": 1}
    assert tally["most_frequent"] == "flair+t2" and tally["most_frequent_n"] == 2 and tally["agree_n"] == 2
    rows = verdict_rows("WT", ("flair", "t2"), "planted", {"occ": seeds}, ("agrees", "text")).set_index("measure")
    assert rows.loc["occ", "key modalities (seeds)"] == "flair+t2 (2/3), t1ce (1/3)"
    # equally frequent sets: the earliest seed's
    assert seed_agreement([result(["t1"]), result(["t1ce"])], None)["most_frequent"] == "t1"


def test_top_ranked_reading():
    from lib.study_a.verdict import top_ranked

    def result(scores):
        return KeyModalityResult(method="m", key=(), scores=scores, reasons="", params={})

    assert top_ranked(result({"t1": 0.1, "t1ce": 0.3, "flair": float("nan")})).key == ("t1ce",)
    assert top_ranked(result({"t1": 0.2, "t1ce": 0.2})).key == ()
    assert top_ranked(result({"t1": 0.0, "t1ce": -0.1})).key == ()
    assert top_ranked(result({})).key == ()


def test_table_one_with_a_single_patient_reports_no_test():
    one = _per_patient(key_dice=0.5, comp_dice=0.2, n=1)
    table, tests = table_one(one)
    assert tests["p_by_patient"].isna().all() and not tests["significant_by_patient"].any()
    assert "*" not in table.loc["Dice"].str.cat()


def test_dice_by_grade():
    from lib.study_a.comparison import dice_by_grade

    pp = _per_patient(key_dice=0.5, comp_dice=0.2, n=4)
    grades = {"s0": "HGG", "s1": "HGG", "s2": "LGG", "s3": "LGG", "empty": "LGG"}
    table = dice_by_grade(pp, grades)
    assert table.loc[("paper key", "t1ce"), "Dice HGG"] == pytest.approx(0.505)
    assert table.loc[("baseline", "all"), "n LGG"] == 2  # the patient without target is left out


def test_dice_gaps_pair_each_patient_with_its_own_baseline():
    from lib.study_a.comparison import dice_gaps

    pp = _per_patient(key_dice=0.5, comp_dice=0.2, n=4)
    pp.loc[pp["subject"] == "s3", "target_pixels"] = 99
    gaps = dice_gaps(pp, {"s0": "HGG", "s1": "HGG", "s2": "LGG"}).set_index(["subset", "subject"])
    assert len(gaps) == 8  # 2 subsets x 4 patients; the patient without target is left out
    assert gaps.loc[("paper key", "s2"), "dice_diff_vs_baseline"] == pytest.approx(0.5 - 0.8)
    assert gaps.loc[("paper complement", "s1"), "dice_diff_vs_baseline"] == pytest.approx(0.2 - 0.8)
    assert gaps.loc[("paper key", "s3"), "target_pixels"] == 99
    assert gaps.loc[("paper key", "s3"), "grade"] == "unknown" and gaps.loc[("paper key", "s0"), "grade"] == "HGG"


def test_integrated_gradients_complete_with_exact_solver_gradients():
    """IG's completeness holds for the derivative of the discrete RK4 solve ('autograd'); the
    adjoint's backward solve only approximates it, so its error does not vanish with more steps.
    gradients_by switches for the call and restores the model's own setting."""
    import torch

    from lib.explain.attribution import integrated_gradients
    from lib.models.node import NeuralODESegmenter
    from lib.study_a.ode import gradients_by

    torch.manual_seed(0)
    model = NeuralODESegmenter(MODS, base_width=4, depth=2, train_steps=2, zero_init_field=False)
    with torch.no_grad():
        for p in model.vector_field.parameters():
            p.mul_(3.0)  # a strongly non-linear field, so the adjoint's discretisation error shows
    images = np.random.default_rng(0).normal(size=(2, 4, 16, 16)).astype(np.float32)
    region = np.zeros((2, 16, 16), bool)
    region[:, 4:12, 4:12] = True
    errors = {}
    for how in ("autograd", "adjoint"):
        with gradients_by(model, how):
            assert model.sensitivity == how
            _, errors[how] = integrated_gradients(model, images, region, n_steps=16)
        assert model.sensitivity == "adjoint"
    # measured: autograd 0.03/0.01 (quadrature error at ReLU kinks), adjoint 0.96/0.77
    assert np.nanmax(errors["autograd"]) < 0.1
    assert np.nanmin(errors["adjoint"]) > 0.5


def test_integrated_gradients_in_smaller_passes_give_the_same_attributions(monkeypatch):
    """ig_images_per_pass bounds memory (the paper profile's ODE needs ~3.9 GiB per image with
    autograd through its RK4 steps), not the result: explain_ode hands it to Captum, and the
    attributions of a non-linear ODE agree with those of one pass to rounding."""
    import torch

    from lib import params as params_mod
    from lib.models.node import NeuralODESegmenter
    from lib.study_a import ode
    from lib.study_a.data import StudyAData

    rng = np.random.default_rng(1)
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[:, 2:6, 2:6] = 2
    labels[:, 3:5, 3:5] = 4
    test = SliceSet(images=rng.normal(size=(3, 4, 8, 8)).astype(np.float32), labels=labels,
                    brain=np.ones((3, 8, 8), bool), subject_ids=np.array(["a", "a", "b"]), slice_index=np.arange(3),
                    grades=np.array(["HGG"] * 3, dtype=object), modalities=MODS)
    data = StudyAData(train=test, test=test, train_ids=["a", "b"], test_ids=["a", "b"], target="ET", synthetic=True)
    torch.manual_seed(0)
    model = NeuralODESegmenter(MODS, base_width=4, depth=2, train_steps=2, sensitivity="autograd",
                               zero_init_field=False)
    passes_seen = []
    real = ode.integrated_gradients

    def recording(*args, **kwargs):
        passes_seen.append(kwargs["internal_batch_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ode, "integrated_gradients", recording)
    shares = {}
    for per_pass in (None, 3):
        P = params_mod.load(REPO / "params/study_a/et-smoke.yaml",
                            {"ig_images_per_pass": per_pass, "ig_steps": 8, "render_frames": 3})
        explained = ode.explain_ode(P, data, model, seed=0, history=None)
        shares[per_pass] = explained.attribution_shares.set_index(["slice", "modality"])["share"]
        assert explained.acc.I_1 is None  # used for channel mixing, then dropped (RAM at the paper's size)
        assert explained.mixing.shape == (4, 4)
    assert passes_seen == [None, 3]
    pd.testing.assert_series_equal(shares[3], shares[None], rtol=1e-4)


def test_inner_split_holds_out_patients_of_the_training_fold_only():
    from types import SimpleNamespace

    from lib.study_a.comparison import inner_split

    ids = [f"p{i}" for i in range(10)]
    data = SimpleNamespace(grades_of=lambda chosen: ["HGG" if int(i[1:]) < 6 else "LGG" for i in chosen])
    params = {"unet_patience": 5, "unet_val_fraction": 0.2, "split_seed": 0}
    learn, stop = inner_split(params, data, ids, fold=0)
    assert len(stop) == 2 and sorted(learn + stop) == sorted(ids) and not set(learn) & set(stop)
    assert {data.grades_of([i])[0] for i in stop} == {"HGG", "LGG"}  # stratified by grade
    assert inner_split(params, data, ids, fold=1) != (learn, stop)  # another fold, another draw
    assert inner_split({**params, "unet_patience": None}, data, ids, fold=0) == (ids, [])
    with pytest.raises(ValueError, match="unet_val_fraction"):
        inner_split({**params, "unet_val_fraction": 0.2}, data, ids[:2], fold=0)


def _tiny_et_data():
    """10 patients x 2 slices of 16 px, ET a square bright on T1ce, one test patient."""
    from lib.study_a.data import StudyAData

    rng = np.random.default_rng(0)
    n_subjects, per = 10, 2
    labels = np.zeros((n_subjects * per, 16, 16), np.uint8)
    labels[:, 5:10, 5:10] = 3
    images = rng.normal(size=(len(labels), 4, 16, 16)).astype(np.float32)
    images[:, 1] += 3.0 * (labels == 3)
    ids = np.repeat([f"s{i}" for i in range(n_subjects)], per)
    grades = np.array(["HGG" if i < 6 else "LGG" for i in range(n_subjects)], dtype=object).repeat(per)
    train = SliceSet(images=images, labels=labels, brain=np.ones(labels.shape, bool), subject_ids=ids,
                     slice_index=np.tile(np.arange(per), n_subjects), grades=grades, modalities=MODS)
    return StudyAData(train=train, test=train.for_subjects(["s0"]), train_ids=sorted(set(ids)), test_ids=["s0"],
                      target="ET", synthetic=True)


def test_cross_validation_with_early_stopping_scores_each_patient_once_per_subset_and_seed():
    """A tiny cohort (ET bright on T1ce): every training patient is scored out of fold exactly once
    per (subset, seed), by a model that stopped on other patients of its own training fold."""
    from lib.params import load
    from lib.study_a.comparison import cross_validate_subsets, training_lengths

    n_subjects = 10
    data = _tiny_et_data()
    params = load(REPO / "params/study_a/et-smoke.yaml",
                  {"unet_patience": 2, "unet_epochs": 6, "unet_val_fraction": 0.25, "num_threads": 1})
    subsets = {"baseline": MODS, "paper key": ("t1ce",)}
    per_run = cross_validate_subsets(params, data, subsets, folds=2, seeds=[0, 1])
    counts = per_run.groupby(["subset", "seed", "subject"]).size()
    assert (counts == 1).all() and len(counts) == 2 * 2 * n_subjects
    assert (per_run["epochs_trained"] <= 6).all() and (per_run["best_epoch"] <= per_run["epochs_trained"]).all()
    lengths = training_lengths(per_run)
    assert list(lengths["models"]) == [4, 4]  # 2 folds x 2 seeds per subset
    table, tests = table_one(per_run)
    assert set(tests["subset"]) == {"paper key"} and "dice_diff_by_seed" in tests


def test_a_resumed_run_reuses_every_model_and_gives_the_same_scores(tmp_path):
    """With ``training_cache_dir`` a second run (as after an interruption) trains nothing: the
    U-Nets of every fold and the neural ODE come from the cache, with the same scores."""
    import lib.training_cache as cache_module
    from lib.params import load
    from lib.study_a.comparison import cross_validate_subsets
    from lib.study_a.ode import patient_scores, train_ode

    data = _tiny_et_data()
    folder = tmp_path / "training-cache"
    params = load(REPO / "params/study_a/et-smoke.yaml",
                  {"unet_epochs": 2, "ode_epochs": 1, "num_threads": 1, "training_cache_dir": str(folder)})
    subsets = {"baseline": MODS, "paper key": ("t1ce",)}
    runs = []
    for _ in range(2):
        per_run = cross_validate_subsets(params, data, subsets, folds=2, seeds=[0])
        model, history = train_ode(params, data, seed=0)
        runs.append((per_run, patient_scores(model, data, "train"), history.from_cache))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])
    assert (runs[0][2], runs[1][2]) == (False, True)
    assert cache_module.usage()[str(folder)] == {"trained": 5, "reused": 5}  # 2 subsets x 2 folds + 1 ODE, each


def test_twin_subsets_name_the_tumour_free_modality_and_refuse_pointless_ones():
    from lib.study_a.comparison import twin_subsets

    roles = twin_subsets(MODS, [["t1ce", "t1"], ["t1"]], ["t1"])
    assert roles == {"diagnostic: t1+t1ce, tumour-free t1 (twin cohort)": ("t1", "t1ce"),
                     "diagnostic: t1, tumour-free t1 (twin cohort)": ("t1",)}
    with pytest.raises(ValueError, match="t1ce\\+flair holds none of the tumour-free"):
        twin_subsets(MODS, [["t1ce", "flair"]], ["t1"])
    with pytest.raises(ValueError, match="dwi"):
        twin_subsets(MODS, [["dwi", "t1"]], ["t1"])


def test_twin_reading_splits_what_t1_adds_into_anatomy_and_tumour():
    from lib.study_a.comparison import twin_reading

    twin = "diagnostic: t1+t1ce, tumour-free t1 (twin cohort)"
    subsets = {"baseline": MODS, "paper key": ("t1ce",), "diagnostic: t1+t1ce": ("t1", "t1ce"), twin: ("t1", "t1ce")}
    tests = pd.DataFrame({"subset": ["paper key", "diagnostic: t1+t1ce", twin],
                          "dice_mean_diff_vs_baseline": [-0.10, -0.02, -0.04]})
    (row,) = twin_reading(tests, subsets, {twin: ("t1", "t1ce")}, ["t1"]).to_dict("records")
    assert (row["with"], row["without"]) == ("diagnostic: t1+t1ce", "paper key")
    assert row["added_real"] == pytest.approx(0.08) and row["added_tumour_free"] == pytest.approx(0.06)
    assert row["anatomy_share"] == pytest.approx(0.75)
    # a tumour-free T1 that costs Dice: a negative share; a real T1 that adds nothing: no share
    tests.loc[2, "dice_mean_diff_vs_baseline"] = -0.12
    assert twin_reading(tests, subsets, {twin: ("t1", "t1ce")}, ["t1"])["anatomy_share"].iloc[0] == pytest.approx(-0.25)
    tests.loc[1, "dice_mean_diff_vs_baseline"] = -0.11
    assert np.isnan(twin_reading(tests, subsets, {twin: ("t1", "t1ce")}, ["t1"])["anatomy_share"].iloc[0])
    # without the real-T1 row there is nothing to compare with
    assert twin_reading(tests.iloc[[0, 2]], subsets, {twin: ("t1", "t1ce")}, ["t1"]).empty


def test_twin_reading_of_all_inputs_reads_the_baseline_as_the_real_row():
    """A twin of all four inputs: its real-image row is the baseline itself, whose difference to
    the baseline is 0 by definition (Table I's tests list no row for it)."""
    from lib.study_a.comparison import twin_reading

    twin = "diagnostic: t1+t1ce+t2+flair, tumour-free t1 (twin cohort)"
    subsets = {"baseline": MODS, "paper key": ("t1ce",), "diagnostic: t1ce+t2+flair": ("t1ce", "t2", "flair"),
               twin: MODS}
    tests = pd.DataFrame({"subset": ["paper key", "diagnostic: t1ce+t2+flair", twin],
                          "dice_mean_diff_vs_baseline": [-0.10, -0.04, -0.01]})
    (row,) = twin_reading(tests, subsets, {twin: MODS}, ["t1"]).to_dict("records")
    assert (row["with"], row["without"]) == ("baseline", "diagnostic: t1ce+t2+flair")
    assert row["d_with"] == 0.0
    assert row["added_real"] == pytest.approx(0.04) and row["added_tumour_free"] == pytest.approx(0.03)
    assert row["anatomy_share"] == pytest.approx(0.75)


@pytest.mark.parametrize("d_without, d_with, d_twin, reading", [
    (-0.092, -0.020, -0.120, "what the real t1 adds is what it shows of the tumour, not the anatomy it shares."),
    (-0.077, -0.038, +0.051, "the tumour-free one adds 0.089 Dice more than the real one; it is a reference no real "
                             "scan gives (every change of t1ce from it marks the lesion), so this measures more than "
                             "the anatomy they share."),
    (-0.100, -0.020, -0.040, "the tumour-free one adds 75% of that: the part of the real t1's help that does not "
                             "come from the tumour it shows."),
    (-0.100, -0.110, -0.120, "neither adds anything here, so there is nothing to split."),
])
def test_twin_reading_text_says_what_the_two_differences_allow(d_without, d_with, d_twin, reading):
    from lib.study_a.comparison import twin_reading_text

    row = {"d_without": d_without, "d_with": d_with, "d_twin": d_twin, "added_real": d_with - d_without,
           "added_tumour_free": d_twin - d_without}
    text = twin_reading_text(row, "t1", "t1ce")
    assert text.startswith(f"What t1 adds beside t1ce (Table I, differences to all inputs): the real t1 "
                           f"{d_with - d_without:+.3f} Dice ({d_without:+.3f} → {d_with:+.3f}); a t1 without the tumour ")
    assert text.endswith(": " + reading)


def test_tumour_free_twin_params(tmp_path):
    from lib.data.cohort import CohortError, tumour_free_twin

    base = {"data_source": "phantom", "data_dir": "data/ph", "phantom_contrast_gain": {"flair": 0.5},
            "twin_tumour_free": []}
    assert tumour_free_twin(base) is None
    twin = tumour_free_twin({**base, "twin_tumour_free": ["t1", "t2"]})
    assert twin["data_dir"] == "data/ph-twin-t1-t2"
    assert twin["phantom_contrast_gain"] == {"flair": 0.5, "t1": 0.0, "t2": 0.0}
    assert base["phantom_contrast_gain"] == {"flair": 0.5}  # the run's own params are not changed
    with pytest.raises(CohortError, match="^twin_tumour_free: t1 needs data_source: phantom"):
        tumour_free_twin({**base, "data_source": "folder", "twin_tumour_free": ["t1"]})


def test_a_twin_is_the_same_cohort_but_for_the_tumour_free_modality(tmp_path):
    """prepare_inputs makes the twin too; it has the cohort's subjects and labels, the other
    modalities bit for bit, and a T1 without the tumour; the fingerprint covers both cohorts."""
    import nibabel as nib

    from lib.data.cohort import prepare_cohort, tumour_free_twin
    from lib.runner import prepare_inputs

    params = {"data_source": "phantom", "data_dir": str(tmp_path / "ph"), "phantom_subjects": 2, "phantom_seed": 3,
              "phantom_resolution_mm": 4.0, "phantom_hgg_fraction": 1.0, "phantom_contrast_gain": {},
              "modalities": list(MODS), "label_convention": "auto", "cache_dir": str(tmp_path / "cache"),
              "twin_tumour_free": ["t1"]}
    fingerprints = prepare_inputs(params)
    main, twin = prepare_cohort(params), prepare_cohort(tumour_free_twin(params))
    assert fingerprints.combined not in (main.fingerprint, twin.fingerprint)
    assert fingerprints.cohort == main.fingerprint
    alone = prepare_inputs({**params, "twin_tumour_free": []})
    assert alone.combined == alone.cohort == main.fingerprint
    read = lambda root, sid, mod: np.asarray(nib.load(root / sid / f"{sid}_{mod}.nii.gz").dataobj)  # noqa: E731
    sid = "BraTS20_Training_001"
    assert np.array_equal(read(main.root, sid, "seg"), read(twin.root, sid, "seg"))
    for mod in ("t1ce", "t2", "flair"):
        assert np.array_equal(read(main.root, sid, mod), read(twin.root, sid, mod))
    assert not np.array_equal(read(main.root, sid, "t1"), read(twin.root, sid, "t1"))


def test_patients_without_a_slice_are_named_not_dropped_silently(make_cohort, synth, tmp_path):
    from lib.params import load
    from lib.study_a.data import left_out_note, load_study_a_data

    root = make_cohort("brats2020", n_subjects=6)
    empty = np.zeros(synth.geometry.shape, np.uint8)  # a patient whose label holds no tumour
    synth.write_nifti(root / "BraTS20_Training_002" / "BraTS20_Training_002_seg.nii.gz", empty)
    P = load(REPO / "params/study_a/et-smoke.yaml",
             {"data_source": "folder", "data_dir": str(root), "cache_dir": str(tmp_path / "cache"),
              "image_size": 16, "crop": "none", "slice_filter": "tumour", "filter_region": "WT",
              "min_region_pixels": 1})
    data = load_study_a_data(P)
    assert data.without_slices == ("BraTS20_Training_002",)
    assert "BraTS20_Training_002" not in data.train_ids + data.test_ids
    assert left_out_note(data, P) == ("; 1 of the cohort's patients have no slice with at least 1 WT pixels and are "
                                      "left out: BraTS20_Training_002")
    assert left_out_note(replace(data, without_slices=()), P) == ""


def test_renamed_data_equal_a_renamed_load_and_leave_the_original_alone(make_cohort, tmp_path):
    """The chapter builds the renamed cohort from the loaded one (one copy of the images, not a
    second load): same split, same slices, the two channels exchanged, exactly what loading with
    the files renamed gives."""
    from lib.params import load
    from lib.study_a.data import load_study_a_data, renamed

    root = make_cohort("brats2020", n_subjects=6)
    P = load(REPO / "params/study_a/et-smoke.yaml",
             {"data_source": "folder", "data_dir": str(root), "cache_dir": str(tmp_path / "cache"),
              "image_size": 16, "crop": "none", "slice_filter": "brain", "max_slices_per_subject": 2})
    data = load_study_a_data(P)
    before = data.train.images.copy()
    pair = ("t1ce", "flair")
    derived, loaded = renamed(data, pair), load_study_a_data(P, swap=pair)
    assert derived.swapped == loaded.swapped == pair
    assert derived.train_ids == loaded.train_ids and derived.test_ids == loaded.test_ids
    for part in ("train", "test"):
        mine, theirs = getattr(derived, part), getattr(loaded, part)
        np.testing.assert_array_equal(mine.images, theirs.images)
        np.testing.assert_array_equal(mine.labels, theirs.labels)
        np.testing.assert_array_equal(mine.subject_ids, theirs.subject_ids)
    t1ce, flair = MODS.index("t1ce"), MODS.index("flair")
    np.testing.assert_array_equal(derived.train.images[:, t1ce], before[:, flair])
    np.testing.assert_array_equal(data.train.images, before)  # the original is not touched
    with pytest.raises(ValueError, match="already renamed"):
        renamed(derived, pair)


def test_renamed_in_place_reads_as_renamed_inside_and_restores_on_leaving(make_cohort, tmp_path):
    """The chapter's renamed run swaps the two channels of the loaded cohort in place for one
    ``with`` block: inside, the data equal :func:`renamed`'s copy (and a renamed load); on leaving,
    normally or by an error, every array is the original again."""
    from lib.params import load
    from lib.study_a.data import load_study_a_data, renamed, renamed_in_place

    root = make_cohort("brats2020", n_subjects=6)
    P = load(REPO / "params/study_a/et-smoke.yaml",
             {"data_source": "folder", "data_dir": str(root), "cache_dir": str(tmp_path / "cache"),
              "image_size": 16, "crop": "none", "slice_filter": "brain", "max_slices_per_subject": 2})
    data = load_study_a_data(P)
    before = {part: getattr(data, part).images.copy() for part in ("train", "test")}
    pair = ("t1ce", "flair")
    expected = renamed(data, pair)
    with renamed_in_place(data, pair) as swapped:
        assert swapped.swapped == pair and swapped.train_ids == data.train_ids
        for part in ("train", "test"):
            np.testing.assert_array_equal(getattr(swapped, part).images, getattr(expected, part).images)
    for part in ("train", "test"):
        np.testing.assert_array_equal(getattr(data, part).images, before[part])
    with pytest.raises(RuntimeError, match="inside"):
        with renamed_in_place(data, pair):
            raise RuntimeError("an error inside the block")
    np.testing.assert_array_equal(data.train.images, before["train"])
    with pytest.raises(ValueError, match="two different modalities"):
        with renamed_in_place(data, ("t1ce", "t1ce")):
            pass
    with pytest.raises(ValueError, match="already renamed"):
        with renamed_in_place(expected, pair):
            pass
    np.testing.assert_array_equal(data.test.images, before["test"])


def _graded_slices(n_hgg: int, n_lgg: int) -> tuple[SliceSet, np.ndarray]:
    """One slice per patient; the target (a 2x2 square) is bright on T1ce in HGG, on T1 in LGG."""
    n = n_hgg + n_lgg
    images = np.zeros((n, 4, 6, 6), np.float32)
    truth = np.zeros((n, 6, 6), bool)
    truth[:, 2:4, 2:4] = True
    grades = np.array(["HGG"] * n_hgg + ["LGG"] * n_lgg, dtype=object)
    for i, grade in enumerate(grades):
        images[i, MODS.index("t1ce" if grade == "HGG" else "t1"), 2:4, 2:4] = 1.0
    slices = SliceSet(images=images, labels=truth.astype(np.uint8) * 3, brain=np.ones((n, 6, 6), bool),
                      subject_ids=np.array([f"p{i}" for i in range(n)]), slice_index=np.zeros(n, int),
                      grades=grades, modalities=MODS)
    return slices, truth


def _reads_t1_or_t1ce(images: np.ndarray) -> np.ndarray:
    """A 'model' that segments whatever is bright on T1 or T1ce: it needs T1ce for HGG, T1 for LGG."""
    return np.maximum(images[:, MODS.index("t1")], images[:, MODS.index("t1ce")])


def test_occlusion_by_grade_names_each_grades_own_key_modality():
    from lib.explain.occlusion import OcclusionRule
    from lib.study_a.ode import occlusion_by_grade

    slices, truth = _graded_slices(6, 6)
    out = occlusion_by_grade(_reads_t1_or_t1ce, slices, truth, MODS, "zero", OcclusionRule(), min_patients=6)
    assert list(out) == ["HGG", "LGG"]
    assert out["HGG"][1].key == ("t1ce",) and out["LGG"][1].key == ("t1",)
    hgg_table = out["HGG"][0]
    single = hgg_table[hgg_table["kind"] == "single"].set_index("occluded")["drop"]
    assert single["t1ce"] == pytest.approx(1.0) and single["t1"] == pytest.approx(0.0)


def test_occlusion_by_grade_gives_no_verdict_below_the_minimum_and_nothing_for_one_grade():
    from lib.explain.occlusion import OcclusionRule
    from lib.study_a.ode import occlusion_by_grade

    slices, truth = _graded_slices(6, 2)
    out = occlusion_by_grade(_reads_t1_or_t1ce, slices, truth, MODS, "zero", OcclusionRule(), min_patients=6)
    assert out["HGG"][1].key == ("t1ce",)
    table, result = out["LGG"]
    assert table is None and result.key == () and "fewer than 6" in result.reasons
    only_hgg, truth_hgg = _graded_slices(6, 0)
    assert occlusion_by_grade(_reads_t1_or_t1ce, only_hgg, truth_hgg, MODS, "zero", OcclusionRule(), 6) == {}


def test_subset_outcome_boundaries_are_inclusive():
    # a difference of exactly -near is still "near baseline"; exactly -clearly_lower (and significant)
    # is "clearly lower" (dyadic values: no rounding at the boundary)
    tests = _tests(-0.0625, -0.25)
    assert subset_outcome(tests, "paper key", 0.0625, 0.25) == "near baseline"
    assert subset_outcome(tests, "paper complement", 0.0625, 0.25) == "clearly lower"
    assert subset_verdict(tests, True, False, 0.0625, 0.25)[0] == "agrees"
    assert subset_outcome(_tests(-0.125, -0.25), "paper key", 0.0625, 0.25) == "in between"


def test_table_one_leaves_out_patients_without_target_in_every_subset():
    per_patient = _per_patient(key_dice=0.79, comp_dice=0.3)
    empty = per_patient[per_patient["subject"] == "empty"].iloc[0]
    extra = [empty.to_dict() | {"subset": role, "inputs": inputs, "dice": 0.0}
             for role, inputs in (("paper key", "t1ce"), ("paper complement", "t1+t2+flair"))]
    per_patient = pd.concat([per_patient, pd.DataFrame(extra)], ignore_index=True)
    table, tests = table_one(per_patient)
    assert (tests["n_patients"] == 8).all()  # "empty" is in every subset now and still left out
    # baseline folds over s0..s7 only: fold 1 (s0, s2, s4, s6) 0.83, fold 2 0.84; the Dice-1 patient
    # without target would pull fold 1 up to 0.864
    assert table.loc["Dice", "baseline: all"] == mean_sd([0.83, 0.84], digits=3)
    assert table.loc["Accuracy (%)", "baseline: all"] == "99.000 ± 0.000"  # accuracy in percent


def test_table_one_significance_is_strictly_below_alpha():
    # 5 patients, all below the baseline: exact two-sided p = 2 / 2**5 = 0.0625
    per_patient = _per_patient(key_dice=0.79, comp_dice=0.3, n=5)
    table, tests = table_one(per_patient, alpha=0.0625)
    comp = tests.set_index("subset").loc["paper complement"]
    assert comp["p_by_patient"] == 0.0625 and not comp["significant_by_patient"]
    assert not table.loc["Dice", "paper complement: t1+t2+flair"].endswith("*")
    assert table_one(per_patient, alpha=0.07)[1].set_index("subset").loc["paper complement", "significant_by_patient"]


def test_table_one_pairs_patients_and_folds_by_name_when_a_subset_misses_one():
    # one patient per fold; baseline Dice alternates 0.5 / 0.75, the key subset is 0.0625 below it for
    # every patient but lacks s0. Paired by name: 5 pairs, all negative (p = 2 / 2**5); paired by
    # position (s1 against s0, ...) the signs would alternate.
    base = [0.5, 0.75, 0.5, 0.75, 0.5, 0.75]
    rows = [{"subset": "baseline", "inputs": "all", "fold": i + 1, "subject": f"s{i}", "dice": d,
             "accuracy": 0.99, "sensitivity": 0.8, "specificity": 0.99, "target_pixels": 10} for i, d in enumerate(base)]
    rows += [row | {"subset": "paper key", "inputs": "t1ce", "dice": row["dice"] - 0.0625} for row in rows[1:]]
    _, tests = table_one(pd.DataFrame(rows))
    key = tests.set_index("subset").loc["paper key"]
    assert key["n_patients"] == 5 and key["p_by_patient"] == pytest.approx(2 / 2**5)
    assert key["n_folds"] == 5 and key["p_by_fold"] == pytest.approx(2 / 2**5)
    assert key["dice_mean_diff_vs_baseline"] == pytest.approx(-0.0625)
    assert key["baseline_dice"] == pytest.approx(np.mean(base[1:]))


def test_each_ode_epoch_bar_names_the_model_it_trains():
    from types import SimpleNamespace

    from lib.study_a.ode import ode_progress_label

    original = SimpleNamespace(target="et", swapped=())
    renamed_pair = SimpleNamespace(target="wt", swapped=("t1ce", "flair"))
    assert ode_progress_label(original, 0) == "ODE ET seed 0: epochs"
    assert ode_progress_label(original, 2, "per_modality") == "ODE ET seed 2, per-modality vector field: epochs"
    assert ode_progress_label(renamed_pair, 1) == "ODE WT seed 1, renamed t1ce ↔ flair: epochs"


def test_too_many_folds_for_the_training_patients_is_said_before_training():
    from lib.study_a.data import check_fold_counts

    check_fold_counts({"cv_folds": 3, "permutation_cv_folds": None}, 3)
    with pytest.raises(ValueError, match=r"^cv_folds is 4, but the training set has 3 patient\(s\) with slices; "
                                         r"lower cv_folds or use more patients$"):
        check_fold_counts({"cv_folds": 4, "permutation_cv_folds": None}, 3)
    with pytest.raises(ValueError, match=r"^permutation_cv_folds is 5"):
        check_fold_counts({"cv_folds": 2, "permutation_cv_folds": 5}, 3)


def test_acc_readings_read_each_curve_with_the_params_rule_and_slices():
    """Three curve kinds naming three different modalities: each reading names its own. The
    rule's ``min_final`` and the ``acc_slices`` choice reach the rule."""
    from lib.explain.acc import ACCRun
    from lib.study_a.ode import acc_readings

    mods, t = ("t1", "t1ce", "flair"), np.array([0.0, 0.5, 1.0])

    def rising(winner, last=0.9):  # (T, N=2, m): `winner` rises to `last`, the others stay at 0.05
        mu = np.full((3, 2, 3), 0.05)
        mu[:, :, mods.index(winner)] = np.array([0.0, 0.5, last])[:, None]
        return mu

    gamma = np.zeros((2, 2, 2), bool)
    gamma[0, 0, 0] = True  # slice 1 has an empty gamma: "segmented" leaves it out
    printed, polarity, share = rising("t1"), rising("t1ce"), rising("flair")
    polarity[:, 1, mods.index("t1ce")] = 0.0  # only the empty slice differs between the slice choices
    polarity[:, 1, mods.index("t1")] = np.array([0.0, 0.5, 0.9])
    run = ACCRun(t=t, modalities=mods, w=np.ones(3), b=0.0, gamma=gamma, mu=printed, mu_polarity_aware=polarity,
                 logit_share=share, eta_coverage=printed, eta_area=printed, I_1=None, final_frame_error=0.0,
                 kept_frames={})
    segmented = acc_readings(run, {"acc_rule": {}, "acc_slices": "segmented"})
    assert [r.key for r in segmented] == [("t1",), ("t1ce",), ("flair",)]
    assert [r.method for r in segmented] == ["ACC (Eq. 6-7 as printed)", "ACC, polarity-aware variant",
                                             "ACC, logit-share variant"]
    # over all slices the polarity-aware means are t1 0.475 and t1ce 0.45: both within half the best
    assert acc_readings(run, {"acc_rule": {}, "acc_slices": "all"})[1].key == ("t1", "t1ce")
    # a min_final above every final value: the rule names nothing
    assert [r.key for r in acc_readings(run, {"acc_rule": {"min_final": 0.95}, "acc_slices": "segmented"})] == [()] * 3
