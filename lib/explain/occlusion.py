"""Occlusion of input modalities: importance that does not depend on channel identity inside a flow.

Study A reads modality importance from the neural ODE's channels (Eq. 6-7), which presumes ODE
channel k still carries modality k. Occlusion asks the model directly: replace one input modality
(or a set) by an uninformative image at inference and measure how much Dice is lost. It works for
any segmenter (neural ODE or plain U-Net) and is unaffected by channel mixing or readout signs.
In the pilot it followed the physics in every usable model and under channel permutation.

Caveat kept in view: the occluded input is out of the training distribution, so drops can be
larger than what a model retrained without that modality would lose (study A's own subset
U-Nets answer that question; this module does not retrain).

Arrays are **numpy**: images (N, m, H, W) float32, masks (N, H, W) bool; modalities are addressed
by name through the ``modalities`` tuple that gives the channel order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from lib.metrics import dice, dice_per_sample

from .acc import _to_numpy
from .verdict import KeyModalityResult, _format_reasons, _order_by_score

__all__ = [
    "occlude",
    "model_predict_fn",
    "occlusion_importance",
    "OcclusionRule",
    "key_modalities_occlusion",
]

Fill = Literal["zero", "brain_mean"]
PredictFn = Callable[[np.ndarray], np.ndarray]


def _channel_indices(modalities: Sequence[str], names: Iterable[str]) -> list[int]:
    modalities = list(modalities)
    indices = []
    for name in names:
        if name not in modalities:
            raise ValueError(f"unknown modality {name!r}; the channel order is {tuple(modalities)}")
        indices.append(modalities.index(name))
    return sorted(set(indices))


def _label(names: Iterable[str], modalities: Sequence[str]) -> str:
    """'a+b' in channel order ('' for the empty set): the table's key for a set of modalities."""
    chosen = set(names)
    return "+".join(name for name in modalities if name in chosen)


def _names(label: str) -> frozenset[str]:
    return frozenset(label.split("+")) if label else frozenset()


def occlude(
    images: Any,
    modalities: Sequence[str],
    occluded: Sequence[str],
    fill: Fill = "zero",
    brain: Any = None,
) -> np.ndarray:
    """Copy of ``images`` with the named modalities replaced by an uninformative image.

    images : (N, m, H, W) float array (z-scored per modality); modalities : m names in channel
    order; occluded : names to remove; brain : (N, H, W) bool, required for ``"brain_mean"``.
    fill:
      - ``"zero"``: the whole channel set to 0. After z-scoring over the brain, 0 is the brain
        mean, so this is "an average-intensity image with no contrast" (the pilot's choice).
      - ``"brain_mean"``: inside the brain, each slice's own mean of that channel over its brain
        pixels; outside the brain the values are left as they were (background carries no contrast
        after skull stripping). A slice with no brain pixel gets 0 in that channel.
    Returns a new float32 array (N, m, H, W); the input is not modified.
    """
    out = np.array(_to_numpy(images), dtype=np.float32, copy=True)
    if out.ndim != 4 or out.shape[1] != len(modalities):
        raise ValueError(f"images must be (N, {len(modalities)}, H, W), got {out.shape}")
    channels = _channel_indices(modalities, occluded)
    if fill == "zero":
        out[:, channels] = 0.0
    elif fill == "brain_mean":
        if brain is None:
            raise ValueError('fill="brain_mean" needs the brain mask (N, H, W)')
        region = _to_numpy(brain).astype(bool)
        for n in range(out.shape[0]):
            for k in channels:
                if region[n].any():
                    channel = out[n, k]
                    channel[region[n]] = channel[region[n]].mean()
                else:
                    out[n, k] = 0.0
    else:
        raise ValueError(f'fill must be "zero" or "brain_mean", got {fill!r}')
    return out


def model_predict_fn(model: Any, batch_size: int = 16, device: Any = "cpu") -> PredictFn:
    """Wrap a torch segmenter (``model(x) -> logits (n, 1, H, W)``) as numpy images -> probabilities (N, H, W).

    Runs in eval mode without gradients, ``batch_size`` slices at a time; restores the training flag.
    """
    import torch

    def predict(images: np.ndarray) -> np.ndarray:
        was_training = bool(getattr(model, "training", False))
        model.eval()
        outputs = []
        try:
            with torch.no_grad():
                for start in range(0, images.shape[0], batch_size):
                    x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32))
                    logits = model(x.to(device))
                    outputs.append(torch.sigmoid(logits)[:, 0].float().cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(outputs, axis=0)

    return predict


def _predict(predict_fn: PredictFn, images: np.ndarray, batch_size: int | None) -> np.ndarray:
    if batch_size is None:
        chunks = [predict_fn(images)]
    else:
        chunks = [predict_fn(images[s : s + batch_size]) for s in range(0, images.shape[0], batch_size)]
    probabilities = np.concatenate([_to_numpy(c) for c in chunks], axis=0)
    if probabilities.ndim == 4 and probabilities.shape[1] == 1:
        probabilities = probabilities[:, 0]
    if probabilities.shape != (images.shape[0],) + images.shape[2:]:
        raise ValueError(f"predict_fn must return (N, H, W) probabilities, got {probabilities.shape}")
    return probabilities


def _dice_summary(predicted: np.ndarray, target: np.ndarray, has_target: np.ndarray) -> tuple[float, float]:
    """(mean per-slice Dice over slices with a non-empty target, Dice of all pixels pooled)."""
    per_slice = dice_per_sample(predicted, target)
    mean = float(per_slice[has_target].mean()) if has_target.any() else math.nan
    return mean, float(dice(predicted, target))


def _occluded_sets(
    modalities: Sequence[str],
    subsets: Iterable[Sequence[str]] | None,
    keep_only: Iterable[Sequence[str]] | Literal["all"] | None,
) -> dict[str, str]:
    """{occluded label: kind}, deduplicated; kind priority single > keep_only > subset > all."""
    modalities = list(modalities)
    sets: dict[str, str] = {}
    for name in modalities:
        sets[_label([name], modalities)] = "single"
    if keep_only == "all":
        if len(modalities) > 6:
            raise ValueError('keep_only="all" enumerates 2^m subsets; pass the kept subsets explicitly for m > 6')
        kept_sets: list[Sequence[str]] = [
            combo for size in range(1, len(modalities)) for combo in itertools.combinations(modalities, size)
        ]
    else:
        kept_sets = [tuple(kept) for kept in (keep_only or [])]
    for kept in kept_sets:
        _channel_indices(modalities, kept)
        removed = [name for name in modalities if name not in set(kept)]
        if removed:
            sets.setdefault(_label(removed, modalities), "keep_only")
    for subset in subsets or []:
        _channel_indices(modalities, subset)
        if subset:
            sets.setdefault(_label(subset, modalities), "subset")
    # always occlude everything too: the floor, and the joint-necessity check of the rule
    sets.setdefault(_label(modalities, modalities), "all")
    return sets


def occlusion_importance(
    predict_fn: PredictFn,
    images: Any,
    target_masks: Any,
    modalities: Sequence[str],
    subsets: Iterable[Sequence[str]] | None = None,
    fill: Fill = "zero",
    brain: Any = None,
    keep_only: Iterable[Sequence[str]] | Literal["all"] | None = "all",
    threshold: float = 0.5,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Dice lost when input modalities are occluded at inference, one row per occluded set.

    predict_fn : images (n, m, H, W) float32 ndarray -> probabilities (n, H, W) (or (n, 1, H, W));
        see :func:`model_predict_fn`. images : (N, m, H, W); target_masks : (N, H, W) bool (the
        ground truth of the region studied); modalities : channel order.
    Conditions (each distinct occluded set evaluated once, one ``predict_fn`` pass each):
      - every single modality (kind ``"single"``);
      - ``keep_only``: for each kept subset S, occlude its complement (kind ``"keep_only"``);
        ``"all"`` (default) = every non-empty proper subset, 2^m - 2 conditions (m <= 6);
      - ``subsets``: extra occluded sets (kind ``"subset"``), e.g. ``[("t1", "t1ce")]``;
      - always all modalities at once (kind ``"all"``), the floor.
    Dice: predictions are binarised at ``threshold`` (p > threshold) and scored two ways:
      - ``dice_*``: mean of per-slice Dice over slices whose target is non-empty (slices without
        tumour are left out: Dice there only says whether the model stayed silent);
      - ``dice_pooled_*``: Dice of all pixels of all slices pooled (per-volume like when the
        slices are one patient's).
    Columns: occluded, kept ("a+b" in channel order), kind, n_occluded, dice_full, dice_occluded,
    drop (= full - occluded), relative_drop (= drop / full), retained (= occluded / full),
    dice_pooled_full, dice_pooled_occluded, drop_pooled, n_slices (slices with a target), fill.
    ``table.attrs["modalities"]`` keeps the channel order.
    """
    images = np.asarray(_to_numpy(images), dtype=np.float32)
    target = _to_numpy(target_masks).astype(bool)
    modalities = list(modalities)
    if images.shape[0] != target.shape[0] or images.shape[2:] != target.shape[1:]:
        raise ValueError(f"images {images.shape} and target_masks {target.shape} do not match")
    has_target = target.any(axis=(-2, -1))

    full = _predict(predict_fn, images, batch_size) > threshold
    dice_full, pooled_full = _dice_summary(full, target, has_target)
    rows = []
    for label, kind in _occluded_sets(modalities, subsets, keep_only).items():
        removed = _names(label)
        changed = occlude(images, modalities, sorted(removed), fill=fill, brain=brain)
        predicted = _predict(predict_fn, changed, batch_size) > threshold
        dice_occluded, pooled_occluded = _dice_summary(predicted, target, has_target)
        drop = dice_full - dice_occluded
        relative = drop / dice_full if dice_full > 0 else math.nan
        retained = dice_occluded / dice_full if dice_full > 0 else math.nan
        rows.append(
            {
                "occluded": label,
                "kept": _label([m for m in modalities if m not in removed], modalities),
                "kind": kind,
                "n_occluded": len(removed),
                "dice_full": dice_full,
                "dice_occluded": dice_occluded,
                "drop": drop,
                "relative_drop": relative,
                "retained": retained,
                "dice_pooled_full": pooled_full,
                "dice_pooled_occluded": pooled_occluded,
                "drop_pooled": pooled_full - pooled_occluded,
                "n_slices": int(has_target.sum()),
                "fill": fill,
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["modalities"] = tuple(modalities)
    return table


@dataclass(frozen=True)
class OcclusionRule:
    """Key modalities from an occlusion table: necessity of single modalities plus sufficiency of subsets.

    1. No verdict when the full model's Dice is below ``min_full_dice`` (nothing to lose).
    2. *Necessary* modalities N: single-occlusion drop >= ``min_drop`` (absolute Dice) and
       >= ``relative_to_max`` x the largest single drop.
    3. *Sufficient* subsets: keeping only S (occluding the rest) retains >= ``retain`` x full Dice
       (the full set is trivially sufficient). Among sufficient subsets that contain N, take those
       of the smallest size; key = the union of them. When several minimal subsets tie, the
       modalities that differ between them are interchangeable (redundant) and all are named:
       two modalities carrying the same information (FLAIR and T2 for whole tumour) each give a
       small single drop, but each alone retains the Dice, so both appear.
    4. Joint necessity: occluding the whole key set together must lose >= ``min_drop``; otherwise
       (the candidates are not needed at all, e.g. a model that ignores its inputs) key = N.
    Step 3 needs every kept subset containing N up to the minimal size in the table
    (``keep_only="all"`` provides them); when some are missing, key = N and the reasons say that
    redundancy was not tested.
    ``dice`` selects the per-slice mean (``"mean"``) or pooled (``"pooled"``) Dice columns.
    """

    min_drop: float = 0.05
    relative_to_max: float = 0.5
    retain: float = 0.9
    min_full_dice: float = 0.1
    dice: Literal["mean", "pooled"] = "mean"


def key_modalities_occlusion(
    table: pd.DataFrame,
    rule: OcclusionRule = OcclusionRule(),
    modalities: Sequence[str] | None = None,
    method: str = "occlusion",
) -> KeyModalityResult:
    """Key modalities from :func:`occlusion_importance`'s table by :class:`OcclusionRule`.

    modalities : channel order (default: ``table.attrs["modalities"]``, else the single rows).
    Returns :class:`KeyModalityResult` with scores = single-occlusion Dice drop per modality,
    key ordered by decreasing drop; ``table`` per modality: drop, relative_drop, retained_alone,
    necessary, in_minimal_sufficient, key.
    """
    if modalities is None:
        modalities = table.attrs.get("modalities") or list(table.loc[table["n_occluded"] == 1, "occluded"])
    modalities = list(modalities)
    if rule.dice == "mean":
        full_column, occluded_column = "dice_full", "dice_occluded"
    else:
        full_column, occluded_column = "dice_pooled_full", "dice_pooled_occluded"
    params = asdict(rule) | {"score": f"Dice drop ({rule.dice}) when the modality alone is occluded"}

    by_occluded = {_names(label): row for label, row in zip(table["occluded"], table.to_dict("records"))}
    dice_full = float(table[full_column].iloc[0]) if len(table) else math.nan
    everything = frozenset(modalities)

    def dice_with_occluded(names: Iterable[str]) -> float:
        row = by_occluded.get(frozenset(names))
        return math.nan if row is None else float(row[occluded_column])

    def retained_when_kept(kept: frozenset[str]) -> float:
        if kept == everything:
            return 1.0
        return dice_with_occluded(everything - kept) / dice_full if dice_full > 0 else math.nan

    per_modality = pd.DataFrame(index=pd.Index(modalities, name="modality"))
    per_modality["drop"] = [dice_full - dice_with_occluded([k]) for k in modalities]
    per_modality["relative_drop"] = per_modality["drop"] / dice_full if dice_full > 0 else math.nan
    per_modality["retained_alone"] = [retained_when_kept(frozenset([k])) for k in modalities]
    scores = {k: float(per_modality.loc[k, "drop"]) for k in modalities}

    def result(key: Iterable[str], headline: str, reasons: dict[str, str]) -> KeyModalityResult:
        return KeyModalityResult(
            method=method,
            key=_order_by_score(list(key), scores, modalities),
            scores=scores,
            reasons=_format_reasons(headline, reasons),
            params=params,
            modality_reasons=reasons,
            table=per_modality,
        )

    if not dice_full >= rule.min_full_dice:  # also catches nan
        for column in ("necessary", "in_minimal_sufficient", "key"):
            per_modality[column] = False
        reasons = {k: "not assessed" for k in modalities}
        return result((), f"no verdict: full-input Dice {dice_full:.3f} < min_full_dice {rule.min_full_dice}", reasons)

    drops = per_modality["drop"]
    max_drop = float(np.nanmax(drops)) if drops.notna().any() else math.nan
    necessary = frozenset(
        k for k in modalities if drops[k] >= rule.min_drop and drops[k] >= rule.relative_to_max * max_drop
    )
    per_modality["necessary"] = [k in necessary for k in modalities]

    # sufficiency: every kept set the table has a row for (complement occluded), plus the full set
    kept_available = {everything - occluded for occluded in by_occluded if occluded and occluded != everything}
    kept_available.add(everything)
    candidates = [kept for kept in kept_available if necessary <= kept and retained_when_kept(kept) >= rule.retain]
    smallest = min(len(kept) for kept in candidates)  # the full set is always a candidate
    minimal = [kept for kept in candidates if len(kept) == smallest]
    union = frozenset().union(*minimal)
    # minimal subsets are trustworthy only if every superset of N up to that size was tested
    others = [k for k in modalities if k not in necessary]
    untested = []
    for size in range(0, smallest - len(necessary) + 1):
        for extra in itertools.combinations(others, size):
            kept = necessary | frozenset(extra)
            if kept and kept not in kept_available:
                untested.append(kept)
    per_modality["in_minimal_sufficient"] = [k in union for k in modalities]

    notes = []
    sufficiency_tested = not untested
    if not sufficiency_tested:
        key = necessary
        notes.append(
            f"{len(untested)} keep-only subset(s) needed for the sufficiency test are missing "
            "(use keep_only='all'): redundancy not tested, key = necessary set"
        )
    else:
        key = union
        if len(minimal) > 1:
            interchangeable = union - frozenset.intersection(*minimal)
            notes.append(
                "each of these minimal subsets alone retains the Dice: "
                + " | ".join(sorted(_label(kept, modalities) for kept in minimal))
                + f"; interchangeable (redundant): {_label(interchangeable, modalities)}"
            )
        joint = dice_full - dice_with_occluded(union)
        if math.isnan(joint):
            notes.append(f"joint necessity of {_label(union, modalities)} not tested (no row occluding it)")
        elif joint < rule.min_drop:
            notes.append(
                f"occluding {_label(union, modalities)} together loses only {joint:.3f} < min_drop: "
                "not needed, key = necessary set"
            )
            key = necessary
        else:
            notes.append(f"occluding {_label(union, modalities)} together loses {joint:.3f}")
    per_modality["key"] = [k in key for k in modalities]

    reasons = {}
    for k in modalities:
        row = per_modality.loc[k]
        facts = (
            f"drop {row['drop']:.3f} (relative {row['relative_drop']:.2f}), "
            f"kept alone retains {row['retained_alone']:.2f} of full Dice"
        )
        why = []
        if k in necessary:
            why.append("necessary")
        if sufficiency_tested and k in union:
            why.append("in a minimal sufficient subset")
        reasons[k] = ("KEY: " if k in key else "not key: ") + facts + (f" [{', '.join(why)}]" if why else "")
    if key:
        headline = f"key = {_label(key, modalities)} (full Dice {dice_full:.3f}, largest single drop {max_drop:.3f})"
    else:
        headline = f"no verdict: no modality is necessary or in a needed sufficient subset (full Dice {dice_full:.3f})"
    if notes:
        headline += "\n  " + "\n  ".join(notes)
    return result(key, headline, reasons)
