"""Occlusion importance on hand-written models whose dependence on each modality is known."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lib.explain import occlusion as occ
from lib.explain.verdict import agreement

MODALITIES = ("flair", "t1ce", "t2")


def dice_by_hand(pred, target):
    return 2 * np.logical_and(pred, target).sum() / (pred.sum() + target.sum())


def phantom(n=4, size=8, seed=0):
    """Tumour = a square; bright (1.0) in the modalities told, background noise in [-0.3, 0.3]."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-0.3, 0.3, size=(n, 3, size, size)).astype(np.float32)
    target = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        target[i, 2 + i % 2 : 5 + i % 2, 2:6] = True
    return images, target


class OnlyT1ce(nn.Module):
    """Logit = 20 (t1ce - 0.5): provably ignores flair and t2."""

    def forward(self, x):
        return 20.0 * (x[:, 1:2] - 0.5)


def test_occlude_fills():
    images = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    zeroed = occ.occlude(images, MODALITIES, ["t1ce"])
    assert (zeroed[:, 1] == 0).all() and np.array_equal(zeroed[:, [0, 2]], images[:, [0, 2]])
    assert images[0, 1, 0, 0] == 4  # input untouched
    brain = np.zeros((2, 2, 2), dtype=bool)
    brain[0, 0, :] = True  # slice 0: two brain pixels; slice 1: none
    filled = occ.occlude(images, MODALITIES, ["flair", "t2"], fill="brain_mean", brain=brain)
    assert filled[0, 0, 0].tolist() == [0.5, 0.5] and filled[0, 0, 1].tolist() == [2.0, 3.0]
    assert filled[0, 2, 0].tolist() == [8.5, 8.5]
    assert (filled[1, [0, 2]] == 0).all()  # no brain: falls back to zero
    with pytest.raises(ValueError, match="unknown modality"):
        occ.occlude(images, MODALITIES, ["dwi"])
    with pytest.raises(ValueError, match="brain"):
        occ.occlude(images, MODALITIES, ["t2"], fill="brain_mean")


def test_ignored_modality_has_zero_drop_and_used_one_large_drop():
    images, target = phantom()
    images[:, 1][target] = 1.0  # tumour bright on t1ce only
    images[:, 0][target] = 0.0  # flair carries nothing
    table = occ.occlusion_importance(occ.model_predict_fn(OnlyT1ce(), batch_size=3), images, target, MODALITIES)
    single = table[table.kind == "single"].set_index("occluded")
    assert single.loc["flair", "drop"] == 0.0 and single.loc["t2", "drop"] == 0.0
    assert single.loc["t1ce", "dice_full"] == pytest.approx(1.0)
    assert single.loc["t1ce", "drop"] == pytest.approx(1.0)  # nothing predicted without t1ce
    assert set(table.kind) == {"single", "keep_only", "all"}
    assert len(table) == 2**3 - 1  # 6 proper subsets + everything, each once
    result = occ.key_modalities_occlusion(table)
    assert result.key == ("t1ce",)
    assert result.scores["flair"] == 0.0
    assert agreement(result, {"t1ce"}) == "agrees"


def test_partial_dependence_dice_values_by_hand():
    images, target = phantom(n=2)
    images[:, 1][target] = 1.0

    def predict(x):  # needs t1ce; flair adds a spurious pixel column when present
        prob = (x[:, 1] > 0.5).astype(np.float32)
        prob[:, :, 7] = np.maximum(prob[:, :, 7], (x[:, 0, :, 7] != 0).astype(np.float32))
        return prob

    table = occ.occlusion_importance(predict, images, target, MODALITIES, keep_only=None)
    full = predict(images) > 0.5
    expected_full = np.mean([dice_by_hand(full[i], target[i]) for i in range(2)])
    row = table.set_index("occluded").loc["flair"]
    assert row["dice_full"] == pytest.approx(expected_full)
    assert row["dice_occluded"] == pytest.approx(1.0)  # zeroed flair: no spurious column
    assert row["drop"] == pytest.approx(expected_full - 1.0)  # negative drop: occlusion helped
    assert row["dice_pooled_full"] == pytest.approx(dice_by_hand(full, target))


def test_slices_without_target_are_left_out_of_the_mean_dice():
    target = np.zeros((2, 1, 4), dtype=bool)
    target[0, 0, :2] = True  # slice 1 has no target
    prediction = np.zeros((2, 1, 4), dtype=np.float32)
    prediction[0, 0, 0] = 1.0  # slice 0: Dice 2 * 1 / (1 + 2) = 2/3; slice 1 stays empty (Dice 1 by convention)
    images = np.zeros((2, 3, 1, 4), dtype=np.float32)
    table = occ.occlusion_importance(lambda x: prediction[: len(x)], images, target, MODALITIES, keep_only=None)
    # the mean runs over target slices only: 2/3, not (2/3 + 1) / 2
    assert table["dice_full"].iloc[0] == pytest.approx(2 / 3)
    assert table["n_slices"].iloc[0] == 1


def test_redundant_pair_found_by_keep_only_rule():
    images, target = phantom(seed=1)
    images[:, 0][target] = 1.0  # tumour bright on flair AND t2 (redundant), not on t1ce
    images[:, 2][target] = 1.0

    def predict(x):  # OR of two channels
        return ((x[:, 0] > 0.5) | (x[:, 2] > 0.5)).astype(np.float32)

    table = occ.occlusion_importance(predict, images, target, MODALITIES)
    single = table[table.kind == "single"].set_index("occluded")
    assert (single["drop"] == 0).all()  # no single occlusion shows anything
    assert table.set_index("occluded").loc["flair+t2", "dice_occluded"] == 0.0
    result = occ.key_modalities_occlusion(table)
    assert set(result.key) == {"flair", "t2"}
    assert "interchangeable" in result.reasons
    assert agreement(result, {"flair", "t2"}) == "agrees"
    # without keep-only tests the redundancy is invisible and the rule says so
    singles_only = occ.occlusion_importance(predict, images, target, MODALITIES, keep_only=None)
    blind = occ.key_modalities_occlusion(singles_only)
    assert blind.key == () and "missing" in blind.reasons
    assert agreement(blind, {"flair", "t2"}) == "no verdict"


def test_complementary_pair_both_necessary():
    images, target = phantom(seed=2)
    left = target.copy()
    left[:, :, 4:] = False
    right = target & ~left
    images[:, 0][left] = 1.0  # left half of the tumour only on flair, right half only on t2
    images[:, 2][right] = 1.0

    def predict(x):
        return ((x[:, 0] > 0.5) | (x[:, 2] > 0.5)).astype(np.float32)

    table = occ.occlusion_importance(predict, images, target, MODALITIES)
    result = occ.key_modalities_occlusion(table)
    assert set(result.key) == {"flair", "t2"}
    assert result.table.loc["flair", "necessary"] and result.table.loc["t2", "necessary"]
    assert not result.table.loc["t1ce", "key"]


def test_useless_model_gives_no_verdict():
    images, target = phantom()

    def predict(x):
        return np.zeros(x[:, 0].shape, dtype=np.float32)

    result = occ.key_modalities_occlusion(occ.occlusion_importance(predict, images, target, MODALITIES))
    assert result.key == () and "min_full_dice" in result.reasons


def test_model_ignoring_everything_is_not_called_redundant():
    images, target = phantom()

    def predict(x):  # predicts the target from nothing (it is baked in)
        return np.broadcast_to(target, x[:, 0].shape).astype(np.float32)

    result = occ.key_modalities_occlusion(occ.occlusion_importance(predict, images, target, MODALITIES))
    assert result.key == ()
    assert "not needed" in result.reasons


def test_subsets_and_shapes_validated():
    images, target = phantom(n=2)
    table = occ.occlusion_importance(
        lambda x: (x[:, 1:2] > 0.5).astype(np.float32), images, target, MODALITIES,
        subsets=[("flair", "t1ce")], keep_only=[("t2",)],
    )
    kinds = table.set_index("occluded")["kind"].to_dict()
    assert kinds["flair+t1ce"] == "keep_only"  # keeping t2 only == occluding flair and t1ce, computed once
    assert kinds["flair+t1ce+t2"] == "all"
    with pytest.raises(ValueError):
        occ.occlusion_importance(lambda x: x[:, 0], images, target[:1], MODALITIES)
    with pytest.raises(ValueError, match="unknown modality"):
        occ.occlusion_importance(lambda x: x[:, 0], images, target, MODALITIES, subsets=[("dwi",)])


def hand_table(modalities, dice_full, dice_occluded):
    """An occlusion_importance-like table with chosen Dice values: {occluded label: Dice}."""
    rows = [
        {"occluded": label, "n_occluded": len(label.split("+")), "kind": "hand", "dice_full": dice_full,
         "dice_occluded": value, "drop": dice_full - value, "dice_pooled_full": dice_full,
         "dice_pooled_occluded": value}
        for label, value in dice_occluded.items()
    ]
    table = pd.DataFrame(rows)
    table.attrs["modalities"] = tuple(modalities)
    return table


# full Dice 1; single drops a 0.5, b 0.125, c 0; kept alone a retains 0.875 (dyadic: exact boundaries)
RULE_TABLE = dict(a=0.5, b=0.875, c=1.0, **{"a+b": 0.0, "a+c": 0.25, "b+c": 0.875, "a+b+c": 0.0})


def test_occlusion_rule_reads_the_dice_columns_it_is_told_to():
    """Per-slice mean Dice names a, pooled Dice names c: ``dice="pooled"`` must read the pooled columns."""
    mean = hand_table("abc", 1.0, RULE_TABLE)
    # pooled: occluding c alone loses 0.5, a or b nothing; keeping c alone (occluding a+b) retains 0.875
    pooled_values = {"a": 1.0, "b": 1.0, "c": 0.5, "a+b": 0.875, "a+c": 0.25, "b+c": 0.25, "a+b+c": 0.0}
    table = mean.assign(dice_pooled_occluded=mean["occluded"].map(pooled_values))
    rule = dict(min_drop=0.125, relative_to_max=0.5, retain=0.875)
    assert occ.key_modalities_occlusion(table, occ.OcclusionRule(**rule)).key == ("a",)
    assert occ.key_modalities_occlusion(table, occ.OcclusionRule(**rule, dice="pooled")).key == ("c",)


def test_occlusion_rule_necessary_needs_both_the_absolute_and_the_relative_drop():
    table = hand_table("abc", 1.0, RULE_TABLE)
    # b loses exactly min_drop 0.125 (passes the absolute cut) but less than 0.5 x the largest drop 0.5
    result = occ.key_modalities_occlusion(table, occ.OcclusionRule(min_drop=0.125, relative_to_max=0.5, retain=0.875))
    assert result.table["necessary"].to_dict() == {"a": True, "b": False, "c": False}
    assert result.key == ("a",)  # a alone retains exactly retain = 0.875: sufficient
    # a's drop exactly at min_drop still counts (">=")
    at_cut = occ.key_modalities_occlusion(table, occ.OcclusionRule(min_drop=0.5, relative_to_max=0.5, retain=0.875))
    assert at_cut.table.loc["a", "necessary"] and at_cut.key == ("a",)
    # a stricter retain makes {a} insufficient: the smallest sufficient superset is {a, b} (retains 1.0)
    strict = occ.key_modalities_occlusion(table, occ.OcclusionRule(min_drop=0.125, relative_to_max=0.5, retain=0.9))
    assert set(strict.key) == {"a", "b"}


def test_occlusion_rule_joint_drop_exactly_at_min_drop_is_needed():
    # nothing is necessary alone (drops 0.125 < min_drop 0.25); keeping only a or only b retains
    # everything (redundant pair); occluding both loses exactly min_drop 0.25: needed (">=")
    table = hand_table("abc", 1.0, {"a": 0.875, "b": 0.875, "c": 1.0, "a+b": 0.75, "a+c": 0.875,
                                    "b+c": 0.875})
    result = occ.key_modalities_occlusion(table, occ.OcclusionRule(min_drop=0.25, retain=0.875))
    assert set(result.key) == {"a", "b"}
    assert "loses 0.250" in result.reasons


def test_a_probability_exactly_at_the_threshold_is_background():
    target = np.zeros((1, 1, 4), dtype=bool)
    target[0, 0, :2] = True
    images = np.zeros((1, 3, 1, 4), dtype=np.float32)
    half = np.full((1, 1, 4), 0.5, dtype=np.float32)  # p = 0.5 is not > 0.5: nothing predicted
    table = occ.occlusion_importance(lambda x: half[: len(x)], images, target, MODALITIES, keep_only=None)
    assert (table["dice_full"] == 0.0).all() and (table["dice_occluded"] == 0.0).all()
