"""lib.study_a.measures and lib.study_a.permutation, with known answers on hand-made results: each
reading of an explained model is named once for the verdict table, the permutation check, the
variant's table and summary.json, and the permutation check reads each of them the same way."""

from types import SimpleNamespace

from lib.explain.verdict import KeyModalityResult
from lib.study_a.measures import MEASURES, SUBSET_LABEL, renamed_labels, summary_stems, verdict_measures
from lib.study_a.verdict import SUBSET_MEASURE, verdict_rows


def _result(method, key, scores):
    return KeyModalityResult(method=method, key=tuple(key), scores=dict(scores), reasons="hand-made", params={})


def _explained(tag):
    """An explained model whose rules named two modalities and whose scores rank t1ce first, so that
    a top-ranked reading (t1ce alone) differs from the rule's (t1ce+t1); ``tag`` marks which model."""
    def result(method):
        return _result(f"{method} {tag}", ("t1ce", "t1"), {"t1ce": 0.5, "t1": 0.3, "t2": 0.1, "flair": 0.0})
    by_grade = {g: (None, _result(f"occlusion {g} {tag}", ("flair",), {"flair": 0.4, "t1ce": 0.2})) for g in ("HGG", "LGG")}
    return SimpleNamespace(key_acc=result("acc"), key_acc_polarity=result("polarity"),
                           key_acc_logit_share=result("share"), key_occlusion=result("occlusion"),
                           key_attribution=result("attribution"), occlusion_by_grade=by_grade)


def test_verdict_measures_rows_in_order_with_top_ranked_and_per_grade_readings():
    explained, variant = {0: _explained("paper"), 1: _explained("paper")}, {0: _explained("variant")}
    rows = verdict_measures(explained, variant, ["HGG", "LGG"])
    assert list(rows) == [
        "ACC, Eq. 6-7 as printed (paper's rule)", "ACC, printed, top-ranked final μ", "ACC, polarity-aware variant",
        "ACC, logit-share variant", "occlusion", "occlusion, largest single drop", "integrated gradients",
        "integrated gradients, largest share",
        "occlusion, HGG test slices only", "occlusion, largest single drop, HGG test slices only",
        "occlusion, LGG test slices only", "occlusion, largest single drop, LGG test slices only",
        "variant, one U-Net per modality: ACC as printed", "variant, one U-Net per modality: ACC, polarity-aware",
        "variant, one U-Net per modality: ACC, logit share", "variant, one U-Net per modality: occlusion",
        "variant, one U-Net per modality: integrated gradients"]
    assert [r.key for r in rows["occlusion"]] == [("t1ce", "t1")] * 2              # the rule's key
    assert [r.key for r in rows["occlusion, largest single drop"]] == [("t1ce",)] * 2  # top-ranked
    assert rows["occlusion, HGG test slices only"][0].method == "occlusion HGG paper"
    assert rows["occlusion, largest single drop, LGG test slices only"][0].key == ("flair",)
    assert [r.method for r in rows["variant, one U-Net per modality: occlusion"]] == ["occlusion variant"]
    assert rows["integrated gradients"][0].method == "attribution paper"
    # each row reads its own field of the explained model (methods are tagged per field)
    fields = {"ACC, Eq. 6-7 as printed (paper's rule)": "acc", "ACC, printed, top-ranked final μ": "acc",
              "ACC, polarity-aware variant": "polarity", "ACC, logit-share variant": "share",
              "occlusion": "occlusion", "occlusion, largest single drop": "occlusion",
              "integrated gradients": "attribution", "integrated gradients, largest share": "attribution"}
    for name, method in fields.items():
        top = ", top-ranked" if "top-ranked" in name or "largest" in name else ""
        assert {r.method for r in rows[name]} == {f"{method} paper{top}"}, name
    for name, method in (("ACC as printed", "acc"), ("ACC, polarity-aware", "polarity"), ("ACC, logit share", "share"),
                         ("integrated gradients", "attribution")):
        assert [r.method for r in rows[f"variant, one U-Net per modality: {name}"]] == [f"{method} variant"], name


def test_no_variant_and_one_grade_give_no_such_rows():
    rows = verdict_measures({0: _explained("paper")}, {}, [])
    assert len(rows) == len(MEASURES) and not any("variant, one U-Net" in name or "test slices only" in name for name in rows)


def test_summary_stems_keep_summary_json_keys():
    stems = summary_stems(["HGG"], ["LGG"])
    assert stems == {
        "ACC, Eq. 6-7 as printed (paper's rule)": "acc", "ACC, printed, top-ranked final μ": "acc_top",
        "ACC, polarity-aware variant": "acc_polarity", "ACC, logit-share variant": "acc_logit_share",
        "occlusion": "occlusion", "occlusion, largest single drop": "occlusion_top",
        "integrated gradients": "attribution", "integrated gradients, largest share": "attribution_top",
        "variant, one U-Net per modality: ACC as printed": "variant_per_modality_acc",
        "variant, one U-Net per modality: ACC, polarity-aware": "variant_per_modality_acc_polarity",
        "variant, one U-Net per modality: ACC, logit share": "variant_per_modality_acc_logit_share",
        "variant, one U-Net per modality: occlusion": "variant_per_modality_occlusion",
        "variant, one U-Net per modality: integrated gradients": "variant_per_modality_attribution",
        SUBSET_MEASURE: "subset_unet",
        "occlusion, HGG test slices only": "occlusion_hgg", "occlusion, largest single drop, HGG test slices only":
            "occlusion_top_hgg",
        "U-Net subset comparison (Table I), LGG patients only": "subset_unet_lgg"}


def test_every_verdict_row_has_a_stem_and_the_permutation_labels_are_distinct():
    explained = {0: _explained("paper")}
    by_grade = {"HGG": ("agrees", "text"), "LGG": ("disagrees", "text")}
    table = verdict_rows("ET", ("t1ce",), "planted truth", verdict_measures(explained, {0: _explained("v")}, ["HGG", "LGG"]),
                         ("agrees", "text"), by_grade)
    stems = summary_stems(["HGG", "LGG"], by_grade)
    assert all(name in stems for name in table["measure"])
    assert len(set(stems.values())) == len(stems)
    labels = renamed_labels()
    assert labels[SUBSET_MEASURE] == SUBSET_LABEL and len(set(labels.values())) == len(labels)
    assert [m.label for m in MEASURES if not m.in_variant_table] == ["occlusion (largest single drop)",
                                                                      "integrated gradients (largest share)"]


# --- lib.study_a.permutation: the renamed-cohort check, measure by measure ------------------------

def _model(key, dice=(0.8, 0.6)):
    """An explained model whose every reading names ``key`` (scores rank ``key[0]`` first) and whose
    test patients score ``dice`` (plus one patient without the target, which mean_dice leaves out)."""
    import pandas as pd
    result = _result("hand-made", key, {name: (1.0 if name == key[0] else 0.1) for name in ("t1", "t1ce", "t2", "flair")})
    scores = pd.DataFrame({"dice": [*dice, 1.0], "target_pixels": [10] * len(dice) + [0]})
    return SimpleNamespace(key_acc=result, key_acc_polarity=result, key_acc_logit_share=result, key_occlusion=result,
                           key_attribution=result, scores=scores)


def test_measure_rows_read_every_measure_against_the_same_seed_and_the_reference():
    from lib.study_a.permutation import measure_rows
    swap = ("t1ce", "flair")
    rows = measure_rows(0, _model(("flair",)), _model(("t1ce",)), ("t1ce",), swap)
    assert [r["measure"] for r in rows] == [m.label for m in MEASURES]
    assert {r["verdict"] for r in rows} == {"follows the contrast"}
    assert {r["against the reference"] for r in rows} == {"follows the contrast"}
    assert rows[0]["renamed model's test Dice"] == 0.7 and rows[0]["key on renamed cohort"] == "flair"
    # a measure that kept its answer follows the channel's name
    kept = measure_rows(0, _model(("t1ce",)), _model(("t1ce",)), ("t1ce",), swap)
    assert {r["verdict"] for r in kept} == {"follows the channel name/position"}
    # the partner modality changed between the two trainings (t2 -> t1): on the pair it still follows the contrast
    partner = measure_rows(0, _model(("flair", "t1")), _model(("t1ce", "t2")), ("t1ce",), swap)
    by_rule = [r for r, m in zip(partner, MEASURES) if not m.top_ranked]   # top-ranked: flair alone vs t1ce alone
    assert {r["verdict"] for r in by_rule} == {"neither (flair+t1)"}
    assert {r["on the swapped pair"] for r in partner} == {"follows the contrast"}
    # the seed was not run on the original cohort: nothing to compare with, the reference still is
    alone = measure_rows(3, _model(("flair",)), None, ("t1ce",), swap)
    assert {r["verdict"] for r in alone} == {"no verdict (no key on the original cohort)"}
    assert {r["key on original cohort"] for r in alone} == {"no verdict"}
    assert {r["against the reference"] for r in alone} == {"follows the contrast"}


def test_subset_row_puts_the_renamed_reference_subset_in_the_keys_place():
    import pandas as pd
    from lib.study_a.permutation import subset_row
    swap = ("t1ce", "flair")
    subsets = {"baseline": ("t1", "t1ce", "t2", "flair"), "paper key": ("t1ce",), "paper complement": ("t1", "t2", "flair")}

    def tests(key_diff, comp_diff):
        return pd.DataFrame([{"subset": role, "dice_mean_diff_vs_baseline": diff, "significant_by_patient": True,
                              "p_by_patient": 0.001, "baseline_dice": 0.8} for role, diff in (("paper key", key_diff), ("paper complement", comp_diff))])
    # after t1ce <-> flair the complement (t1+t2+"flair") holds T1ce's image: near baseline there follows the contrast
    assert subset_row(tests(-0.4, -0.01), subsets, ("t1ce",), swap, 0.05, 0.1)["verdict"] == "follows the contrast"
    row = subset_row(tests(-0.01, -0.4), subsets, ("t1ce",), swap, 0.05, 0.1)
    assert row["verdict"] == "disagrees" == row["on the swapped pair"] and row["measure"] == SUBSET_LABEL
    assert row["key on renamed cohort"] == ("paper key subset near baseline (-0.010, p = 0.001); "
                                            "complement clearly lower (-0.400, p = 0.001)")


def test_with_renamed_columns_joins_the_seeds_readings_per_verdict_row():
    import pandas as pd
    from lib.study_a.permutation import with_renamed_columns
    verdict = pd.DataFrame({"measure": ["occlusion", "ACC, polarity-aware variant", SUBSET_MEASURE,
                                        "occlusion, HGG test slices only"], "verdict": ["agrees"] * 4})
    permutation = pd.DataFrame([
        {"measure": "occlusion", "verdict": "follows the contrast", "on the swapped pair": "follows the contrast"},
        {"measure": "occlusion", "verdict": "neither (t1+t2)", "on the swapped pair": "follows the contrast"},
        {"measure": SUBSET_LABEL, "verdict": "partly", "on the swapped pair": "partly"}])
    out = with_renamed_columns(verdict, permutation, ("t1ce", "flair"))
    assert out["renamed t1ce↔flair"].tolist() == ["follows the contrast, neither (t1+t2)", "—", "partly", "—"]
    assert out["renamed, on t1ce+flair only"].tolist() == ["follows the contrast", "—", "partly", "—"]
    assert "renamed t1ce↔flair" not in verdict  # the table given is not changed
    assert with_renamed_columns(verdict, pd.DataFrame(), ()) is verdict  # no check run: nothing added
