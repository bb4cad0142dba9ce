"""The tables a study A page shows about its explained models, one function per table, and its
pixel-separability table.

The model tables take ``{seed: ExplainedModel}`` (:class:`lib.study_a.ode.ExplainedModel`) and
return a DataFrame with one row per seed (or per seed and grade), in seed order. They compute
nothing new: they lay out what :func:`lib.study_a.ode.explain_ode` measured, under the column names
the chapter and its saved CSVs use.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lib.explain.acc import ACCRule, key_modalities_acc
from lib.explain.diagnostics import empty_gamma_count
from lib.explain.separability import subtraction_separability
from lib.stats import mean_sd
from lib.study_a.measures import MEASURES
from lib.study_a.ode import mean_dice, with_target
from lib.study_a.verdict import key_label, top_ranked

# The rows of the pixel-separability table: {summary.json key part: (row label, whether the region is
# bright on T1ce)}.
SEPARABILITY_REGIONS = {"et": ("ET (bright on T1ce)", True), "ncr": ("NCR/NET (dark on T1ce)", False)}


def _scores_text(scores: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.2g}" for k, v in scores.items())


def training_table(histories: Mapping[int, Any]) -> pd.DataFrame:
    """Per seed (``{seed: lib.train.TrainHistory}``): epochs, first and last epoch loss, seconds,
    training slices/s, and whether the weights were trained in this run or reused from the
    training cache."""
    return pd.DataFrame([{"seed": s, "epochs": len(h.epoch_losses), "first epoch loss": h.epoch_losses[0],
                          "last epoch loss": h.epoch_losses[-1], "seconds": h.seconds,
                          "training slices/s": h.slices_per_second,
                          "weights": "reused (training cache)" if h.from_cache else "trained in this run"}
                         for s, h in histories.items()])


def table_two(explained: Mapping[int, Any], data_label: str, paper: Mapping[str, float], paper_source: str) -> pd.DataFrame:
    """The paper's Table II layout: one column per seed (``"seed <s> (<data_label>)"``, mean ± sd
    over test patients) and the paper's own column (``paper_source``; "—" where it prints nothing).
    Dice and sensitivity over the patients with some target, accuracy (%) and specificity over all
    test patients."""
    columns = {}
    for seed, e in explained.items():
        some = with_target(e.scores)
        columns[f"seed {seed} ({data_label})"] = {
            "Dice": mean_sd(some["dice"]), "Accuracy (%)": mean_sd(100 * e.scores["accuracy"]),
            "Sensitivity": mean_sd(some["sensitivity"]), "Specificity": mean_sd(e.scores["specificity"]),
            "patients (with target)": f"{len(e.scores)} ({len(some)})"}
    columns[paper_source] = {k: f"{v:.3f}" for k, v in paper.items()}
    return pd.DataFrame(columns).fillna("—")  # a row the paper does not print (its patient count)


def acc_key_table(explained: Mapping[int, Any], acc_slices: str, rule: ACCRule) -> pd.DataFrame:
    """Each seed's key modalities by the paper's ACC reading, printed and polarity-aware, over the
    slices ``acc_slices`` names and, beside them, over the other choice ("segmented" ↔ "all"),
    with the final μ per modality, the top-ranked reading and the rule's reasons."""
    other = "all" if acc_slices == "segmented" else "segmented"
    rows = []
    for s, e in explained.items():
        averaged = int(e.acc.segmented_slices().sum()) if acc_slices == "segmented" else len(e.acc.gamma)
        rows.append({"seed": s, "ACC key (printed)": key_label(e.key_acc.key),
                     "ACC key (polarity-aware)": key_label(e.key_acc_polarity.key),
                     "slices averaged": f"{averaged} of {len(e.acc.gamma)}",
                     "final μ per modality (printed)": _scores_text(e.key_acc.scores),
                     "top-ranked final μ": key_label(top_ranked(e.key_acc).key),
                     f"ACC key (printed), {other} slices": key_label(
                         key_modalities_acc(e.acc.curves("printed", other), rule).key),
                     f"ACC key (polarity-aware), {other} slices": key_label(
                         key_modalities_acc(e.acc.curves("polarity_aware", other), rule).key),
                     "reasons": e.key_acc.reasons})
    return pd.DataFrame(rows)


def gamma_diagnostics(explained: Mapping[int, Any]) -> pd.DataFrame:
    """Per seed: test slices whose final segmentation γ is empty (Eq. 7 is 0 there whatever η
    does), the mean γ area, and how far the rendered flow's end is from the model's own forward
    pass: J_1 (Eq. 5 at t = 1) against σ(model) at the worst pixel, and γ against the model's
    segmentation (pooled Dice, differing pixels)."""
    return pd.DataFrame([{"seed": s, "empty γ slices": empty_gamma_count(e.acc.gamma),
                          "test slices": len(e.acc.gamma), "mean γ area (%)": 100 * float(e.acc.gamma.mean()),
                          "max |J_1 − σ(model)|": e.acc.final_frame_error,
                          "Dice(γ, model's segmentation)": e.acc.gamma_model_dice,
                          "pixels where γ and the model differ": e.acc.gamma_model_differing_pixels}
                         for s, e in explained.items()])


def occlusion_key_table(explained: Mapping[int, Any]) -> pd.DataFrame:
    """Each seed's key modalities by occlusion, with the rule's reasons."""
    return pd.DataFrame([{"seed": s, "occlusion key": key_label(e.key_occlusion.key), "reasons": e.key_occlusion.reasons}
                         for s, e in explained.items()])


def occlusion_by_grade_table(explained: Mapping[int, Any], modalities: Sequence[str]) -> pd.DataFrame:
    """Occlusion on each grade's test slices alone: per seed and grade, the slices with the target,
    the Dice drop when each modality is occluded, the rule's key and the largest single drop; a
    grade without enough patients has no table, NaN drops, no slice count (a missing integer,
    so the counts stay integers) and the rule's reason as its note."""
    table_out = pd.DataFrame([
        {"seed": s, "grade": g,
         "test slices with the target": int(table["n_slices"].iloc[0]) if table is not None else pd.NA,
         **{f"drop, {m} occluded": float(result.scores[m]) if m in result.scores else float("nan") for m in modalities},
         "occlusion key": key_label(result.key), "largest single drop": key_label(top_ranked(result).key),
         "note": "" if table is not None else result.reasons}
        for s, e in explained.items() for g, (table, result) in e.occlusion_by_grade.items()])
    if len(table_out):
        table_out["test slices with the target"] = table_out["test slices with the target"].astype("Int64")
    return table_out


def attribution_table(explained: Mapping[int, Any]) -> pd.DataFrame:
    """Integrated gradients per seed: how many slices converged (completeness error below the
    model's ``ig_tolerance``), the median and largest completeness error, each modality's mean
    share over all slices and over the converged ones (the rule's scores), and the rule's key."""
    rows = []
    for s, e in explained.items():
        err = e.completeness_error
        rows.append({"seed": s, "slices": len(err), "converged": int((err < e.extra["ig_tolerance"]).sum()),
                     "median completeness error": float(np.nanmedian(err)), "max completeness error": float(np.nanmax(err)),
                     **{f"share {k} (all slices)": v for k, v in
                        e.attribution_shares.groupby("modality")["share"].mean().items()},
                     **{f"share {k} (converged)": v for k, v in e.key_attribution.scores.items()},
                     "attribution key": key_label(e.key_attribution.key), "reasons": e.key_attribution.reasons})
    return pd.DataFrame(rows)


def vector_field_table(fields: Mapping[str, Mapping[int, Any]]) -> pd.DataFrame:
    """The paper's shared vector field beside the per-modality variant: per field (``fields``:
    {name: {seed: explained model}}) and seed, the test Dice, the lowest channel self-fidelity, the
    final μ and logit share per modality, and the key every measure of
    :data:`lib.study_a.measures.MEASURES` shown for both fields gives."""
    return pd.DataFrame([
        {"vector field": field_name, "seed": s, "test Dice": mean_dice(e.scores),
         "lowest self-fidelity": float(e.fidelity.min()),
         "final μ per modality (printed)": _scores_text(e.key_acc.scores),
         "final logit share per modality": _scores_text(e.key_acc_logit_share.scores),
         **{m.label: key_label(m.read(e).key) for m in MEASURES if m.in_variant_table}}
        for field_name, group in fields.items() for s, e in group.items()])


def separability_table(slices: Any, modalities: Sequence[str], max_pixels: int | None, seed: int) -> pd.DataFrame:
    """How well single pixels of the enhancing rim (ET, bright) and of the necrosis / non-enhancing
    core (label 1, dark) separate from healthy brain (brain outside the whole tumour) by T1ce alone
    and by T1ce's residual from T1 (:func:`lib.explain.separability.subtraction_separability`), over
    ``slices`` (a :class:`lib.data.slices.SliceSet`); indexed by :data:`SEPARABILITY_REGIONS`' row
    labels. ``max_pixels`` and ``seed``: the seeded pixel sample of a larger class."""
    healthy_brain = slices.brain & ~slices.region("WT")
    regions = {"et": slices.region("ET"), "ncr": slices.labels == 1}
    return pd.DataFrame([
        {"region": label, **subtraction_separability(slices.images, regions[key], healthy_brain, modalities,
                                                     bright=bright, max_pixels=max_pixels, seed=seed)}
        for key, (label, bright) in SEPARABILITY_REGIONS.items()]).set_index("region")
