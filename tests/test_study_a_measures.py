"""lib.study_a.measures: each reading of an explained model is named once, for the verdict table,
the permutation check, the variant's table and summary.json, with known answers on hand-made results."""

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
