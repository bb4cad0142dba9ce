"""Study A's confirmation (Section C, Table I): plain U-Nets on all modalities (baseline), on the
key modalities and on the complementary ones, k-fold cross-validation inside the training set,
Wilcoxon signed-rank on Dice against the baseline."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lib.data.splits import holdout_split, kfold_split
from lib.device import model_device, resolve_device, seed_everything
from lib.metrics import scores_by_group
from lib.models.node import SegmentationUNet
from lib.stats import mean_sd, wilcoxon_signed_rank
from lib.study_a.data import StudyAData
from lib.train import TrainConfig, predict_masks, prior_logit, train_segmenter
from lib.training_cache import training_cache

METRICS = ("dice", "accuracy", "sensitivity", "specificity")
METRIC_LABELS = {"dice": "Dice", "accuracy": "Accuracy (%)", "sensitivity": "Sensitivity", "specificity": "Specificity"}


def complement(modalities: Sequence[str], subset: Sequence[str]) -> tuple[str, ...]:
    return tuple(m for m in modalities if m not in subset)


def subset_label(subset: Sequence[str], all_modalities: Sequence[str]) -> str:
    if tuple(subset) == tuple(all_modalities):
        return f"all {len(all_modalities)} modalities"
    return "+".join(subset)


def comparison_subsets(all_modalities: Sequence[str], paper_key: Sequence[str],
                       selected: Sequence[str] | None,
                       diagnostic: Sequence[Sequence[str]] = ()) -> dict[str, tuple[str, ...]]:
    """Baseline, the paper's key subset and its complement, (when it differs and is a proper
    non-empty subset) this run's own selection and its complement, then any ``diagnostic``
    subsets (role "diagnostic"; no verdict reads them). Keys are display roles; a subset already
    listed under an earlier role is not repeated."""
    subsets = {"baseline": tuple(all_modalities)}
    ordered = lambda names: tuple(m for m in all_modalities if m in names)  # noqa: E731
    candidates = [("paper key", ordered(paper_key)), ("paper complement", complement(all_modalities, paper_key))]
    if selected and set(selected) != set(paper_key) and 0 < len(selected) < len(all_modalities):
        candidates += [("this run's key", ordered(selected)),
                       ("this run's complement", complement(all_modalities, selected))]
    for names in diagnostic:
        unknown = set(names) - set(all_modalities)
        if unknown:
            raise ValueError(f"diagnostic subset {'+'.join(names)}: {', '.join(sorted(unknown))} not among the inputs "
                             f"{', '.join(all_modalities)}")
        candidates.append((f"diagnostic: {'+'.join(ordered(names))}", ordered(names)))
    for role, subset in candidates:
        if subset and subset not in subsets.values():
            subsets[role] = subset
    return subsets


def twin_subsets(all_modalities: Sequence[str], subsets: Sequence[Sequence[str]],
                 tumour_free: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Diagnostic subsets to train on the tumour-free twin cohort, keyed by a role that says so,
    e.g. "diagnostic: t1+t1ce, tumour-free t1 (twin cohort)" -> ("t1", "t1ce"). Only subsets holding a
    tumour-free modality mean anything there; others are refused (they would repeat a row)."""
    ordered = lambda names: tuple(m for m in all_modalities if m in names)  # noqa: E731
    out = {}
    for names in subsets:
        unknown = set(names) - set(all_modalities)
        if unknown:
            raise ValueError(f"twin_subsets: {'+'.join(names)}: {', '.join(sorted(unknown))} not among the inputs "
                             f"{', '.join(all_modalities)}")
        blank = [m for m in ordered(names) if m in tumour_free]
        if not blank:
            raise ValueError(f"twin_subsets: {'+'.join(names)} holds none of the tumour-free modalities "
                             f"({', '.join(tumour_free) or 'twin_tumour_free is empty'})")
        out[f"diagnostic: {'+'.join(ordered(names))}, tumour-free {'+'.join(blank)} (twin cohort)"] = ordered(names)
    return out


def twin_reading(tests: pd.DataFrame, subsets: Mapping[str, Sequence[str]],
                 twin_roles: Mapping[str, Sequence[str]], tumour_free: Sequence[str]) -> pd.DataFrame:
    """What a tumour-free modality adds, read off Table I's tests: for each twin row (inputs M with
    the modalities ``tumour_free`` rendered without the tumour), the same inputs with the real
    images and the inputs without those modalities, when both were run.

    Columns: twin role, "with" (M, real images), "without" (M minus ``tumour_free``), each one's
    mean Dice difference to the baseline (``d_twin``, ``d_with``, ``d_without``), ``added_real`` =
    d_with - d_without (what the real modality adds), ``added_tumour_free`` = d_twin - d_without
    (what it adds without the tumour: the anatomy it shares), and their ratio ``anatomy_share``
    (NaN unless the real modality adds something; below 0 when the tumour-free one costs Dice).
    """
    diff = dict(zip(tests["subset"], tests["dice_mean_diff_vs_baseline"])) if len(tests) else {}
    diff.setdefault("baseline", 0.0)  # the tests list no row for the baseline itself: 0 by definition
    role_of: dict[tuple[str, ...], str] = {}
    for role, names in subsets.items():
        if role not in twin_roles:  # the twin rows have the same inputs as their real-image row
            role_of.setdefault(tuple(sorted(names)), role)
    rows = []
    for twin_role, names in twin_roles.items():
        with_role = role_of.get(tuple(sorted(names)))
        without_role = role_of.get(tuple(sorted(n for n in names if n not in tumour_free)))
        if twin_role not in diff or with_role not in diff or without_role not in diff:
            continue
        d_twin, d_with, d_without = diff[twin_role], diff[with_role], diff[without_role]
        added_real, added_free = d_with - d_without, d_twin - d_without
        rows.append({"twin": twin_role, "with": with_role, "without": without_role, "d_twin": d_twin,
                     "d_with": d_with, "d_without": d_without, "added_real": added_real,
                     "added_tumour_free": added_free,
                     "anatomy_share": added_free / added_real if added_real > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["twin", "with", "without", "d_twin", "d_with", "d_without", "added_real",
                                       "added_tumour_free", "anatomy_share"])


def twin_reading_text(row: Mapping[str, Any], tumour_free: str, without: str) -> str:
    """One sentence for a `twin_reading` row: what the real ``tumour_free`` modality and its
    tumour-free render each add beside ``without`` (mean Dice differences to all inputs), and the
    reading the two allow. Measured differences only: no threshold decides anything here."""
    real, free = row["added_real"], row["added_tumour_free"]
    head = (f"What {tumour_free} adds beside {without} (Table I, differences to all inputs): the real {tumour_free} "
            f"{real:+.3f} Dice ({row['d_without']:+.3f} → {row['d_with']:+.3f}); a {tumour_free} without the tumour "
            f"{free:+.3f} ({row['d_twin']:+.3f})")
    if not real > 0 and not free > 0:
        reading = "neither adds anything here, so there is nothing to split"
    elif not free > 0:
        reading = f"what the real {tumour_free} adds is what it shows of the tumour, not the anatomy it shares"
    elif free > real:
        # A render without the tumour is no anatomy-only image: it is a reference no scan gives, and
        # any difference from it on the other inputs marks the lesion. Say so rather than "anatomy".
        reading = (f"the tumour-free one adds {free - real:.3f} Dice more than the real one; it is a reference no real "
                   f"scan gives (every change of {without} from it marks the lesion), so this measures more than "
                   f"the anatomy they share")
    else:
        reading = (f"the tumour-free one adds {free / real:.0%} of that: the part of the real {tumour_free}'s help "
                   f"that does not come from the tumour it shows")
    return f"{head}: {reading}."


def train_unet(params: Mapping[str, Any], images: np.ndarray, masks: np.ndarray, modalities: Sequence[str],
               seed: int, validation: tuple[np.ndarray, np.ndarray] | None = None) -> SegmentationUNet:
    """A plain U-Net on ``modalities``: ``unet_epochs`` epochs, or with ``unet_patience`` and
    ``validation`` slices, early stopping on their Dice (at most ``unet_epochs``; the best epoch's
    weights are kept). The history is on ``model.history``."""
    seed_everything(seed)
    bias = prior_logit(masks) if params["unet_prior_bias"] else None
    model = SegmentationUNet(modalities, base_width=params["unet_base_width"], depth=params["unet_depth"],
                             prior_logit=bias).to(resolve_device(params["device"]))
    patience = params.get("unet_patience") if validation is not None else None
    config = TrainConfig(epochs=params["unet_epochs"], batch_size=params["unet_batch_size"], lr=params["unet_lr"],
                         loss=params["unet_loss"], seed=seed, device=params["device"],
                         num_threads=params["num_threads"], progress=False, patience=patience,
                         lr_schedule=params["unet_lr_schedule"])
    model.history = train_segmenter(model, images, masks, config, validation=validation if patience else None,
                                    cache=training_cache(params))
    return model


def inner_split(params: Mapping[str, Any], data: StudyAData, fit_ids: Sequence[str], fold: int):
    """(ids to train on, ids to stop on) inside one CV fold's training patients, by patient and
    stratified by grade; the whole fold when early stopping is off (``unet_patience`` unset)."""
    if not params.get("unet_patience"):
        return list(fit_ids), []
    try:
        learn, stop = holdout_split(list(fit_ids), data.grades_of(list(fit_ids)),
                                    test_fraction=params["unet_val_fraction"], seed=params["split_seed"] + 1 + fold)
    except ValueError:
        learn, stop = [], []
    if not learn or not stop:
        raise ValueError(f"unet_patience: fold {fold + 1} has {len(fit_ids)} training patient(s); unet_val_fraction "
                         f"{params['unet_val_fraction']} leaves {len(learn)} to train on and {len(stop)} to stop on "
                         "(both must be >= 1; use more patients, another fraction, or unet_patience: null)")
    return learn, stop


def cross_validate_subsets(params: Mapping[str, Any], data: StudyAData, subsets: Mapping[str, Sequence[str]],
                           folds: int, seed: int = 0, progress=None, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """k-fold CV inside the training set for every subset, the same folds for all.

    ``seeds``: U-Net training seeds (default ``[seed]``); every (subset, fold) is trained once per
    seed, with torch seed ``100 * s + fold`` (so seed 0 gives the seeds of a single-seed run).
    Returns one row per (subset, seed, fold, validation patient): the patient's pooled scores on
    its out-of-fold prediction. :func:`average_over_seeds` turns it into one row per patient."""
    seeds = [int(seed)] if seeds is None else [int(s) for s in seeds]
    if not seeds:
        raise ValueError("cross_validate_subsets: give at least one U-Net seed")
    train = data.train
    splits = kfold_split(data.train_ids, data.grades_of(data.train_ids), k=folds, seed=params["split_seed"])
    rows = []
    jobs = [(s, f, role, subset) for s in seeds for f in range(len(splits)) for role, subset in subsets.items()]
    for s, f, role, subset in (progress(jobs) if progress else jobs):
        fit_ids, val_ids = splits[f]
        learn_ids, stop_ids = inner_split(params, data, fit_ids, f)
        # The fold's training images are gathered batch by batch, not copied (README, "RAM for the slices").
        fit, val = train.for_subjects(learn_ids, subset, copy_images=False), train.for_subjects(val_ids, subset)
        stop = train.for_subjects(stop_ids, subset) if stop_ids else None
        model = train_unet(params, fit.images, fit.region(data.target), subset, seed=100 * s + f,
                           validation=(stop.images, stop.region(data.target)) if stop is not None else None)
        pred = predict_masks(model, val.images, device=model_device(model))
        table = scores_by_group(pred, val.region(data.target), val.subject_ids).rename(columns={"group": "subject"})
        table.insert(0, "fold", f + 1)
        table.insert(0, "seed", s)
        table.insert(0, "subset", role)
        table.insert(1, "inputs", "+".join(subset))
        table["epochs_trained"] = len(model.history.epoch_losses)
        table["best_epoch"] = model.history.best_epoch if model.history.best_epoch is not None else len(model.history.epoch_losses)
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


def average_over_seeds(per_run: pd.DataFrame) -> pd.DataFrame:
    """One row per (subset, fold, patient): each metric averaged over the U-Net seeds (a patient
    is validated in one fold, by one model per seed). A table without a ``seed`` column is
    returned as it is."""
    if "seed" not in per_run:
        return per_run
    keys = ["subset", "inputs", "fold", "subject"]
    metrics = [c for c in per_run.columns if c not in keys + ["seed", "target_pixels", "epochs_trained", "best_epoch"]]
    grouped = per_run.groupby(keys, sort=False)
    out = grouped[metrics].mean()
    out["target_pixels"] = grouped["target_pixels"].first()
    out["seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def fold_means(per_patient: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric over the validation patients of each fold (the paper's per-fold unit)."""
    return per_patient.groupby(["subset", "inputs", "fold"], sort=False)[list(METRICS)].mean().reset_index()


def _paired_p(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Wilcoxon signed-rank p-value and the number of pairs; nan when there are fewer than 2 pairs
    (a tiny cohort, or a target that few patients have)."""
    if len(a) < 2:
        return float("nan"), len(a)
    result = wilcoxon_signed_rank(a, b)
    return result.p_value, result.n


def _seed_spread(per_seed: pd.DataFrame | None, role: str) -> dict[str, Any]:
    """The Dice difference to the baseline of each U-Net seed alone (how much one seed can say)."""
    if per_seed is None or per_seed["seed"].nunique() < 2:
        return {}
    rows = per_seed[per_seed["target_pixels"] > 0]
    diffs = []
    for _, one in rows.groupby("seed", sort=True):
        base = one[one["subset"] == "baseline"].set_index("subject")["dice"]
        mine = one[one["subset"] == role].set_index("subject")["dice"]
        common = base.index.intersection(mine.index)
        diffs.append(float((mine[common] - base[common]).mean()))
    return {"dice_diff_by_seed": " ".join(f"{d:+.3f}" for d in diffs)}


def table_one(per_patient: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table I layout from this run (mean ± sd over folds; * = Wilcoxon p < alpha on
    Dice against the baseline, paired by patient over the out-of-fold predictions), and the
    tests themselves (also paired by fold, as the paper's 10 folds would allow). With several
    U-Net seeds each patient's scores are first averaged over them (:func:`average_over_seeds`).

    Only patients with some target are used: a patient without target (e.g. an LGG without
    enhancement, for ET) scores Dice 1 or 0 by the empty-mask convention whatever the inputs, which
    would say more about false positives than about the inputs."""
    per_seed = per_patient if "seed" in per_patient else None
    per_patient = average_over_seeds(per_patient)
    per_patient = per_patient[per_patient["target_pixels"] > 0]
    folds = fold_means(per_patient)
    roles = list(dict.fromkeys(per_patient["subset"]))
    base = per_patient[per_patient["subset"] == "baseline"].set_index("subject")
    base_folds = folds[folds["subset"] == "baseline"].set_index("fold")
    cells, tests = {}, []
    for role in roles:
        mine = per_patient[per_patient["subset"] == role].set_index("subject")
        mine_folds = folds[folds["subset"] == role].set_index("fold")
        star = ""
        if role != "baseline":
            common = base.index.intersection(mine.index)
            by_patient = _paired_p(mine.loc[common, "dice"].to_numpy(), base.loc[common, "dice"].to_numpy())
            by_fold = _paired_p(mine_folds["dice"].to_numpy(), base_folds.loc[mine_folds.index, "dice"].to_numpy())
            significant = bool(by_patient[0] < alpha)  # nan (too few pairs) is never significant
            star = "*" if significant else ""
            tests.append({"subset": role, "inputs": mine["inputs"].iloc[0],
                          "dice_mean_diff_vs_baseline": float((mine.loc[common, "dice"] - base.loc[common, "dice"]).mean()),
                          "p_by_patient": by_patient[0], "n_patients": by_patient[1],
                          "p_by_fold": by_fold[0], "n_folds": by_fold[1],
                          "significant_by_patient": significant,
                          "baseline_dice": float(base.loc[common, "dice"].mean()),
                          "subset_dice": float(mine.loc[common, "dice"].mean()),
                          **_seed_spread(per_seed, role)})
        column = f"{role}: {mine['inputs'].iloc[0]}"
        cells[column] = {}
        for metric in METRICS:
            values = mine_folds[metric].to_numpy() * (100 if metric == "accuracy" else 1)
            mark = star if metric == "dice" else ""
            cells[column][METRIC_LABELS[metric]] = mean_sd(values, digits=3) + mark
    table = pd.DataFrame(cells)
    table.index.name = "metric"
    return table, pd.DataFrame(tests)


def dice_by_grade(per_patient: pd.DataFrame, grades: Mapping[str, str | None]) -> pd.DataFrame:
    """Mean out-of-fold Dice per subset and grade (patients with some target), with counts."""
    per_patient = average_over_seeds(per_patient)
    table = per_patient[per_patient["target_pixels"] > 0].assign(grade=lambda d: d["subject"].map(grades).fillna("unknown"))
    out = table.pivot_table(index=["subset", "inputs"], columns="grade", values="dice", aggfunc=["mean", "count"], sort=False)
    out.columns = [f"Dice {grade}" if stat == "mean" else f"n {grade}" for stat, grade in out.columns]
    return out


def dice_gaps(per_patient: pd.DataFrame, grades: Mapping[str, str | None]) -> pd.DataFrame:
    """Per (subset, patient with some target): out-of-fold Dice minus the baseline's for the same
    patient, with the patient's target size (pixels over its slices) and grade. Shows whether a
    subset's shortfall is spread over all patients or carried by a few (e.g. tiny targets)."""
    per_patient = average_over_seeds(per_patient)
    table = per_patient[per_patient["target_pixels"] > 0]
    base = table[table["subset"] == "baseline"].set_index("subject")["dice"]
    rows = table[table["subset"] != "baseline"]
    rows = rows[rows["subject"].isin(base.index)]
    return pd.DataFrame({"subset": rows["subset"].to_numpy(), "inputs": rows["inputs"].to_numpy(),
                         "subject": rows["subject"].to_numpy(),
                         "grade": rows["subject"].map(grades).fillna("unknown").to_numpy(),
                         "target_pixels": rows["target_pixels"].to_numpy(),
                         "dice_diff_vs_baseline": (rows["dice"].to_numpy() - base[rows["subject"]].to_numpy())})



def dice_gap_lines(gaps: pd.DataFrame) -> list[str]:
    """One line per subset of :func:`dice_gaps`: its mean Dice difference to the baseline, by grade
    (with each grade's patient count), and for patients below vs at or above the median target size
    (over all subsets' rows), which tells whether small targets carry the shortfall."""
    median_size = float(gaps["target_pixels"].median()) if len(gaps) else float("nan")
    lines = []
    for role, one in gaps.groupby("subset", sort=False):
        small, large = one[one["target_pixels"] < median_size], one[one["target_pixels"] >= median_size]
        by_grade = ", ".join(f"{g} {v:+.3f} (n = {int(n)})" for g, (v, n) in
                             one.groupby("grade")["dice_diff_vs_baseline"].agg(["mean", "count"]).iterrows())
        lines.append(f"- {role} ({one['inputs'].iloc[0]}): mean difference {one['dice_diff_vs_baseline'].mean():+.3f}; "
                     f"by grade {by_grade}; patients below the median target size ({median_size:.0f} px) "
                     f"{small['dice_diff_vs_baseline'].mean():+.3f}, at or above it {large['dice_diff_vs_baseline'].mean():+.3f}.")
    return lines

def paper_table_one(target: str) -> pd.DataFrame:
    """Table I of the paper for ``target``, as printed (its own column labels)."""
    from lib.paper_numbers import STUDY_A_TABLE_I

    block = STUDY_A_TABLE_I[target]
    table = pd.DataFrame({col: [block[m][i] for m in METRIC_LABELS.values()] for i, col in enumerate(block["inputs"])},
                         index=list(METRIC_LABELS.values()))
    table.index.name = "metric"
    return table


def training_lengths(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per subset: how many epochs its U-Nets ran and which epoch's weights they kept (mean, min,
    max over seeds and folds). With early stopping this shows whether some inputs needed longer
    to converge; at the cap it says training was cut, not converged."""
    models = per_run.drop_duplicates(["subset", "seed", "fold"] if "seed" in per_run else ["subset", "fold"])
    out = models.groupby(["subset", "inputs"], sort=False)[["epochs_trained", "best_epoch"]].agg(["mean", "min", "max"])
    out.columns = [f"{col} {stat}" for col, stat in out.columns]
    out.insert(0, "models", models.groupby(["subset", "inputs"], sort=False).size())
    return out
