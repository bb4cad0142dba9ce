"""Patient-level splits: disjoint, complete, stratified, deterministic."""

from collections import Counter

import numpy as np
import pytest

from lib.data.splits import holdout_split, kfold_split, slice_indices

IDS = [f"S{i:03d}" for i in range(50)]
GRADES = ["HGG"] * 40 + ["LGG"] * 10  # BraTS 2020 is about 4:1


def test_holdout_is_disjoint_complete_and_sized():
    train, test = holdout_split(IDS, test_fraction=0.2, seed=0)
    assert set(train).isdisjoint(test)
    assert sorted(train + test) == IDS
    assert len(test) == 10
    assert train == sorted(train) and test == sorted(test)


def test_holdout_keeps_grade_proportions():
    grade_of = dict(zip(IDS, GRADES))
    for seed in range(5):
        train, test = holdout_split(IDS, GRADES, test_fraction=0.2, seed=seed)
        assert Counter(grade_of[s] for s in test) == {"HGG": 8, "LGG": 2}
        assert Counter(grade_of[s] for s in train) == {"HGG": 32, "LGG": 8}


def test_grades_by_id_match_aligned_grades_whatever_the_ids_type():
    ids = list(range(50))  # e.g. numeric patient numbers
    aligned = holdout_split(ids, GRADES, seed=1)
    assert holdout_split(ids, dict(zip(ids, GRADES)), seed=1) == aligned
    assert holdout_split(ids, {str(i): g for i, g in zip(ids, GRADES)}, seed=1) == aligned
    assert holdout_split(ids, seed=1) != aligned  # grades do change the split


def test_holdout_largest_remainder_gives_the_exact_test_size():
    ids = [f"S{i}" for i in range(7)]
    grades = ["HGG", "HGG", "HGG", "LGG", "LGG", "LGG", None]  # None: its own stratum
    train, test = holdout_split(ids, grades, test_fraction=0.3, seed=3)
    assert len(test) == 2 and len(train) == 5  # round(7 * 0.3) = 2


def test_holdout_rounds_the_test_size_to_nearest():
    ids = [f"S{i}" for i in range(13)]
    train, test = holdout_split(ids, test_fraction=0.2, seed=0)
    assert len(test) == 3 and len(train) == 10  # 13 * 0.2 = 2.6 rounds to 3, not down to 2


def test_holdout_extra_test_place_goes_to_the_largest_remainder():
    ids = [f"S{i}" for i in range(10)]
    grades = ["HGG"] * 6 + ["LGG"] * 4
    _, test = holdout_split(ids, grades, test_fraction=0.3, seed=0)
    # 3 test subjects; exact shares HGG 6*3/10 = 1.8, LGG 1.2: floors 1 + 1, the third to HGG (remainder 0.8 > 0.2)
    assert Counter(dict(zip(ids, grades))[s] for s in test) == {"HGG": 2, "LGG": 1}


def test_holdout_is_deterministic_per_seed_and_independent_of_input_order():
    first = holdout_split(IDS, GRADES, seed=7)
    assert holdout_split(IDS, GRADES, seed=7) == first
    shuffled = np.random.default_rng(0).permutation(len(IDS))
    assert holdout_split([IDS[i] for i in shuffled], [GRADES[i] for i in shuffled], seed=7) == first
    assert holdout_split(IDS, dict(zip(IDS, GRADES)), seed=7) == first
    assert holdout_split(IDS, GRADES, seed=8) != first


def test_holdout_rejects_bad_arguments():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        holdout_split(IDS, test_fraction=1.0)
    with pytest.raises(ValueError, match="empty train or test set"):
        holdout_split(["A", "B"], test_fraction=0.1)
    with pytest.raises(ValueError, match="repeated: \\['A'\\]"):
        holdout_split(["A", "A", "B"])
    with pytest.raises(ValueError, match="2 grades for 3 subject ids"):
        holdout_split(["A", "B", "C"], ["HGG", "LGG"])


def test_kfold_every_subject_validates_exactly_once():
    folds = kfold_split(IDS, k=10, seed=0)
    assert len(folds) == 10
    val_counts = Counter(s for _, val in folds for s in val)
    assert set(val_counts) == set(IDS) and set(val_counts.values()) == {1}
    for train, val in folds:
        assert set(train).isdisjoint(val)
        assert sorted(train + val) == IDS
        assert len(val) == 5


def test_kfold_is_stratified_within_one_subject():
    grade_of = dict(zip(IDS, GRADES))
    folds = kfold_split(IDS, GRADES, k=4, seed=1)
    lgg_per_fold = [sum(grade_of[s] == "LGG" for s in val) for _, val in folds]
    sizes = [len(val) for _, val in folds]
    assert sorted(lgg_per_fold) == [2, 2, 3, 3]  # 10 LGG over 4 folds
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 50


def test_kfold_is_deterministic_and_seed_dependent():
    assert kfold_split(IDS, GRADES, k=5, seed=2) == kfold_split(IDS, GRADES, k=5, seed=2)
    assert kfold_split(IDS, GRADES, k=5, seed=2) != kfold_split(IDS, GRADES, k=5, seed=3)


def test_kfold_needs_enough_subjects():
    with pytest.raises(ValueError, match="k=10 folds need at least 10 subjects, got 6"):
        kfold_split([f"S{i}" for i in range(6)], k=10)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_split(IDS, k=1)


def test_slice_indices_select_whole_subjects():
    slice_subjects = np.array(["A", "A", "B", "C", "B", "A"])
    np.testing.assert_array_equal(slice_indices(slice_subjects, ["A", "C"]), [0, 1, 3, 5])
    np.testing.assert_array_equal(slice_indices(slice_subjects, {"B"}), [2, 4])
    assert slice_indices(slice_subjects, ["Z"]).size == 0


def test_no_subject_has_slices_on_both_sides_of_a_split():
    slice_subjects = np.repeat(IDS, 3)  # three slices per subject
    train, test = holdout_split(IDS, GRADES, seed=0)
    train_slices, test_slices = slice_indices(slice_subjects, train), slice_indices(slice_subjects, test)
    assert set(slice_subjects[train_slices]).isdisjoint(slice_subjects[test_slices])
    assert len(train_slices) + len(test_slices) == len(slice_subjects)


def test_kfold_deals_round_robin_across_strata_so_fold_sizes_differ_by_at_most_one():
    # 5 HGG then 5 LGG dealt on one running count: folds of 5 and 5 (3 + 2 and 2 + 3 by grade);
    # restarting the count for each grade would give folds of 6 and 4
    ids = [f"S{i}" for i in range(10)]
    grades = ["HGG"] * 5 + ["LGG"] * 5
    folds = kfold_split(ids, grades, k=2, seed=0)
    assert [len(val) for _, val in folds] == [5, 5]
    grade_of = dict(zip(ids, grades))
    assert sorted(sum(grade_of[s] == "HGG" for s in val) for _, val in folds) == [2, 3]
