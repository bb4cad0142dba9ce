"""One neural ODE model of study A: train (Section C), evaluate (Table II), explain (Eq. 5-7 and
the independent measures)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from lib.device import model_device, resolve_device, seed_everything
from lib.explain.acc import ACCRule, ACCRun, acc_from_model, key_modalities_acc
from lib.explain.attribution import (AttributionRule, attribution_shares, converged_slices, integrated_gradients,
                                     key_modalities_attribution)
from lib.explain.diagnostics import channel_mixing, readout_summary, self_fidelity
from lib.explain.occlusion import OcclusionRule, key_modalities_occlusion, model_predict_fn, occlusion_importance
from lib.explain.verdict import KeyModalityResult
from lib.metrics import scores_by_group
from lib.models.node import NeuralODESegmenter
from lib.study_a.data import StudyAData
from lib.study_a.verdict import min_pairs_for_significance
from lib.train import TrainConfig, TrainHistory, predict_masks, prior_logit, save_checkpoint, train_segmenter
from lib.training_cache import training_cache


def ode_train_config(params: Mapping[str, Any], seed: int, label: str = "epochs") -> TrainConfig:
    return TrainConfig(epochs=params["ode_epochs"], batch_size=params["ode_batch_size"], lr=params["ode_lr"],
                       readout_lr_multiplier=params["ode_readout_lr_multiplier"], loss=params["ode_loss"], seed=seed,
                       device=params["device"], num_threads=params["num_threads"], progress=True,
                       progress_label=label, lr_schedule=params["ode_lr_schedule"])


def ode_progress_label(data: StudyAData, seed: int, vector_field: str = "shared") -> str:
    """Names the model an epoch bar trains, e.g. "ODE ET seed 0, renamed t1ce ↔ flair: epochs"."""
    parts = [f"ODE {data.target.upper()} seed {seed}"]
    if vector_field != "shared":
        parts.append(f"{vector_field.replace('_', '-')} vector field")
    if data.swapped:
        parts.append(f"renamed {' ↔ '.join(data.swapped)}")
    return ", ".join(parts) + ": epochs"


def build_ode(params: Mapping[str, Any], data: StudyAData, vector_field: str = "shared") -> NeuralODESegmenter:
    """Fig. 3B with the params' vector-field size; readout bias at the prior log-odds if asked.
    ``vector_field="per_modality"`` builds the labelled variant (one U-Net per modality, of
    ``variant_per_modality_width``; see `PerModalityVectorField`)."""
    bias = prior_logit(data.train.region(data.target)) if params["ode_prior_bias"] else None
    width = params["ode_base_width"] if vector_field == "shared" else params["variant_per_modality_width"]
    return NeuralODESegmenter(data.modalities, base_width=width, depth=params["ode_depth"],
                              train_steps=params["ode_train_steps"], sensitivity=params["ode_sensitivity"],
                              prior_logit=bias, vector_field=vector_field)


def train_ode(params: Mapping[str, Any], data: StudyAData, seed: int, checkpoint=None,
              vector_field: str = "shared"):
    """Train one ODE model; returns (model, history). Saves a checkpoint when a path is given."""
    seed_everything(seed)
    model = build_ode(params, data, vector_field).to(resolve_device(params["device"]))
    config = ode_train_config(params, seed, ode_progress_label(data, seed, vector_field))
    history = train_segmenter(model, data.train.images, data.train.region(data.target), config,
                              cache=training_cache(params))
    if checkpoint is not None:
        save_checkpoint(model, checkpoint, extra={"seed": seed, "target": data.target, "swapped": list(data.swapped),
                                                  "vector_field": vector_field,
                                                  "history": history.to_dict()})
    return model, history


def patient_scores(model, data: StudyAData, which: str = "test") -> pd.DataFrame:
    """Dice, accuracy, sensitivity, specificity per patient (the patient's slices pooled)."""
    slices = data.test if which == "test" else data.train
    pred = predict_masks(model, slices.images, device=model_device(model))
    table = scores_by_group(pred, slices.region(data.target), slices.subject_ids)
    return table.rename(columns={"group": "subject"})


def with_target(scores: pd.DataFrame) -> pd.DataFrame:
    """Patients that have some target: Dice and sensitivity are reported over these only (a
    patient without target scores Dice 1 or 0 by the empty-mask convention)."""
    return scores[scores["target_pixels"] > 0]


def mean_dice(scores: pd.DataFrame) -> float:
    return float(with_target(scores)["dice"].mean())


@dataclass
class ExplainedModel:
    """Everything the chapter shows about one trained ODE model."""

    seed: int
    history: TrainHistory
    scores: pd.DataFrame
    acc: ACCRun
    key_acc: KeyModalityResult
    key_acc_polarity: KeyModalityResult
    key_acc_logit_share: KeyModalityResult
    readout: pd.DataFrame
    mixing: pd.DataFrame
    fidelity: pd.Series
    occlusion: pd.DataFrame
    key_occlusion: KeyModalityResult
    attribution_shares: pd.DataFrame
    completeness_error: np.ndarray
    key_attribution: KeyModalityResult
    extra: dict = field(default_factory=dict)
    # {grade: (occlusion table or None, key-modality result)} on each grade's test slices alone
    # (:func:`occlusion_by_grade`); empty unless the test set holds two grades.
    occlusion_by_grade: dict = field(default_factory=dict)

    def key_results(self) -> list[KeyModalityResult]:
        return [self.key_acc, self.key_acc_polarity, self.key_acc_logit_share, self.key_occlusion,
                self.key_attribution]


def occlusion_by_grade(predict, slices, truth: np.ndarray, modalities, fill: str, rule: OcclusionRule,
                       min_patients: int) -> dict[str, tuple[pd.DataFrame | None, KeyModalityResult]]:
    """Occlusion (:func:`lib.explain.occlusion.occlusion_importance`) and its key-modality rule on
    each tumour grade's test slices alone, the same model and rule as over all slices.

    A supplementary reading, like Table I's per-grade rows (``lib.study_a.verdict
    .subset_verdict_by_grade``): a planted truth about contrast enhancement is one about
    high-grade tumours (a low-grade core does not enhance), and a model's reliance measured over
    both grades can hide which grade it comes from. A grade whose test slices show the target in
    fewer than ``min_patients`` patients gets no verdict (the same minimum as Table I's per-grade
    rows). ``slices``: a SliceSet with ``images``, ``brain``, ``grades`` and ``subject_ids`` per
    slice; ``truth``: (N, H, W) bool. Returns {grade: (table or None, result)} in sorted grade
    order; empty unless at least two grades are known."""
    grades = np.asarray([g if g else "" for g in slices.grades.tolist()], dtype=object)
    labels = sorted(set(grades) - {""})
    if len(labels) < 2:
        return {}
    has_target = truth.reshape(len(truth), -1).any(1)
    out = {}
    for grade in labels:
        mine = grades == grade
        patients = len(set(np.asarray(slices.subject_ids)[mine & has_target].tolist()))
        method = f"occlusion, {grade} test slices"
        if patients < min_patients:
            out[grade] = (None, KeyModalityResult(
                method=method, key=(), scores={}, params={"min_patients": min_patients},
                reasons=f"{patients} {grade} test patient(s) with the target, fewer than {min_patients}: no verdict"))
            continue
        table = occlusion_importance(predict, slices.images[mine], truth[mine], modalities, fill=fill,
                                     brain=slices.brain[mine])
        out[grade] = (table, key_modalities_occlusion(table, rule, modalities=modalities, method=method))
    return out


def attribution_slices(data: StudyAData, limit: int) -> np.ndarray:
    """Test slices with a non-empty target, at most ``limit``, spread evenly (no look at results)."""
    candidates = np.flatnonzero(data.test.region(data.target).reshape(len(data.test), -1).any(1))
    if len(candidates) <= limit:
        return candidates
    return candidates[np.linspace(0, len(candidates) - 1, limit).round().astype(int)]


@contextmanager
def gradients_by(model, sensitivity: str):
    """Temporarily compute the neural ODE's input gradients by ``sensitivity``: "autograd"
    differentiates the discrete RK4 solve exactly (what integrated gradients' completeness
    assumes); "adjoint" solves the adjoint ODE backward on the same grid, which only approximates
    that derivative (the pilot's non-converged model). The forward pass is the same either way.
    Models without a ``sensitivity`` (plain U-Nets) are left alone."""
    previous = getattr(model, "sensitivity", None)
    if previous is None:
        yield model
        return
    model.sensitivity = sensitivity
    try:
        yield model
    finally:
        model.sensitivity = previous


def acc_readings(acc: ACCRun, params: Mapping[str, Any]) -> tuple[KeyModalityResult, ...]:
    """The key modalities the ACC rule (``acc_rule``) reads from the curves over ``acc_slices``:
    Eq. (6)-(7) as printed, the polarity-aware variant and the logit share, in this order."""
    rule, slices = ACCRule(**params["acc_rule"]), params["acc_slices"]
    return (key_modalities_acc(acc.curves("printed", slices), rule, method="ACC (Eq. 6-7 as printed)"),
            key_modalities_acc(acc.curves("polarity_aware", slices), rule, method="ACC, polarity-aware variant"),
            # the same rule on the continuous logit share (not winner-take-all): lib.explain.acc.logit_share
            key_modalities_acc(acc.curves("logit_share", slices), rule, method="ACC, logit-share variant"))


def explain_ode(params: Mapping[str, Any], data: StudyAData, model, seed: int, history: TrainHistory,
                keep_slices=()) -> ExplainedModel:
    """Eq. (5)-(7) exactly as printed (and the polarity-aware and logit-share variants), the
    diagnostics, occlusion and integrated gradients, each with its key-modality rule. Works for
    either vector field (the paper's shared one or the per-modality variant)."""
    test, target = data.test, data.target
    truth = test.region(target)
    acc = acc_from_model(model, test.images, n_frames=params["render_frames"], batch_size=params["flow_batch_size"],
                         brain=test.brain, keep_slices=keep_slices)
    key_acc, key_acc_pa, key_acc_share = acc_readings(acc, params)
    w, b = model.readout_weights()
    mixing = channel_mixing(test.images, acc.I_1, brain_mask=test.brain, modalities=data.modalities)
    acc = replace(acc, I_1=None)  # its only use; a copy of the test images per model otherwise

    predict = model_predict_fn(model, device=model_device(model))
    occ = occlusion_importance(predict, test.images, truth, data.modalities, fill=params["occlusion_fill"],
                               brain=test.brain)
    occ_rule = OcclusionRule(**params["occlusion_rule"])
    key_occ = key_modalities_occlusion(occ, occ_rule, modalities=data.modalities)
    occ_by_grade = occlusion_by_grade(predict, test, truth, data.modalities, params["occlusion_fill"], occ_rule,
                                      min_patients=min_pairs_for_significance(params["alpha"]))

    chosen = attribution_slices(data, params["ig_max_slices"])
    with gradients_by(model, params["ig_gradients"]):
        attributions, error = integrated_gradients(model, test.images[chosen], truth[chosen],
                                                   n_steps=params["ig_steps"], brain=test.brain[chosen],
                                                   internal_batch_size=params["ig_images_per_pass"])
    shares = attribution_shares(attributions, truth[chosen], data.modalities)
    attribution_rule = AttributionRule(**{k: v for k, v in params["attribution_rule"].items() if k != "tolerance"})
    tolerance = float(params["attribution_rule"].get("tolerance", 0.05))
    key_att = key_modalities_attribution(shares, converged_slices(error, tolerance), attribution_rule)
    return ExplainedModel(
        seed=seed, history=history, scores=patient_scores(model, data), acc=acc, key_acc=key_acc,
        key_acc_polarity=key_acc_pa, key_acc_logit_share=key_acc_share, readout=readout_summary(w, b, data.modalities), mixing=mixing,
        fidelity=self_fidelity(mixing), occlusion=occ, key_occlusion=key_occ, attribution_shares=shares,
        completeness_error=np.asarray(error), key_attribution=key_att,
        extra={"attribution_slices": chosen, "ig_tolerance": tolerance}, occlusion_by_grade=occ_by_grade,
    )
