"""One training loop for study A's two models: the neural ODE segmenter and the plain U-Net.

Section C of the paper: Adam with initial learning rate 1e-3, binary cross-entropy on the sigmoid
output (computed here from logits, which is the same loss, numerically stable). The pilot on real
glioma slices found BCE alone barely moved the neural ODE in two epochs; what made it train was
BCE + soft Dice, the readout bias initialised to the prior log-odds (`prior_logit`), and a 10x
learning rate on the readout's m + 1 parameters. Those are options here (`loss="bce+dice"`,
`readout_lr_multiplier`), documented as our additions; the defaults are the paper's.

Arrays in, arrays out: images float32 (N, m, H, W) in the model's modality order, masks bool
(N, H, W). Each mini-batch is moved to the device as it is used.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lib.data.slices import ImageSelection
from lib.device import resolve_device, seed_everything
from lib.fingerprint import array_fingerprint
from lib.io import atomic_path

if TYPE_CHECKING:  # lib.training_cache imports this module
    from lib.training_cache import TrainingCache

__all__ = [
    "LOSSES",
    "LR_SCHEDULES",
    "learning_rate_factor",
    "TrainConfig",
    "TrainHistory",
    "soft_dice_loss",
    "segmentation_loss",
    "train_segmenter",
    "predict_logits",
    "predict_masks",
    "prior_logit",
    "save_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
]

LOSSES = ("bce", "bce+dice")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Settings of `train_segmenter`.

    epochs: passes over the training slices. batch_size: slices per Adam step. lr: Adam's learning
    rate (1e-3 in the paper). readout_lr_multiplier: learning rate factor for `model.readout` (the
    neural ODE's Eq. (4) 1x1 conv) when the model has one; the pilot used 10. loss: "bce" (the
    paper) or "bce+dice" (our addition). seed: drives shuffling and torch's RNG. device: "auto",
    "cpu" or "cuda". num_threads: torch CPU threads during training (None leaves it as is).
    progress: tqdm bars over epochs and batches. progress_label: the epoch bar's name, e.g. which
    model and seed it trains (not part of the training cache key).
    lr_schedule: "constant" (lr throughout) or "cosine" (lr is the *initial* rate, as the paper
    says, annealed to 0 over the ``epochs`` x batches Adam steps; see `learning_rate_factor`).
    patience: with validation slices given to `train_segmenter`, stop when the validation Dice
    has not improved for this many epochs and restore the best epoch's weights (early stopping;
    ``epochs`` is then the most it may run). None: train all ``epochs``, validation only recorded.
    """

    epochs: int
    batch_size: int = 16
    lr: float = 1e-3
    readout_lr_multiplier: float = 1.0
    loss: str = "bce"
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    progress: bool = True
    progress_label: str = "epochs"
    patience: int | None = None
    lr_schedule: str = "constant"

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.lr <= 0 or self.readout_lr_multiplier <= 0:
            raise ValueError(f"lr and readout_lr_multiplier must be > 0, got {self.lr}, {self.readout_lr_multiplier}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")


@dataclass
class TrainHistory:
    """What a training run did: mean loss per epoch, every batch loss, wall time and training throughput;
    with validation slices, the validation Dice per epoch; with early stopping (``patience``), the
    epoch whose weights were kept (1-based; None without it: the last epoch's are kept) and whether
    early stopping ended the run before ``epochs`` (False when it ran them all)."""

    epoch_losses: list[float] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)
    val_dice: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0  # the whole run's wall time, validation included
    validation_seconds: float = 0.0  # of ``seconds``, the time spent scoring the validation slices
    slices_per_second: float = 0.0  # trained slices per second of training (validation's time left out)
    n_slices: int = 0
    device: str = "cpu"
    from_cache: bool = False  # the weights were reused from a `lib.training_cache` entry, not trained now

    def to_dict(self) -> dict:
        return asdict(self)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss over the whole mini-batch: 1 - (2 Σ p·g + s) / (Σ p + Σ g + s).

    p = σ(logits), g the binary target, sums over all pixels of all slices in the batch (so
    tumour-free slices do not each contribute an ill-defined ratio), s = `smooth`.
    logits and target: same shape, e.g. (N, 1, H, W). Returns a scalar in [0, 1).
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    probability = torch.sigmoid(logits)
    target = target.to(probability.dtype)
    overlap = (probability * target).sum()
    return 1.0 - (2.0 * overlap + smooth) / (probability.sum() + target.sum() + smooth)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """The training loss on logits (N, 1, H, W) against a binary target of the same shape.

    "bce": binary cross-entropy of σ(logits), the paper's loss (Section C).
    "bce+dice": that plus `soft_dice_loss`, our addition when BCE alone does not train (pilot).
    """
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
    target = target.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, target)
    if kind == "bce+dice":
        loss = loss + soft_dice_loss(logits, target)
    return loss


def prior_logit(masks: np.ndarray, eps: float = 1e-4) -> float:
    """Log-odds log(p / (1 - p)) of the positive-pixel fraction p of `masks`, p clipped to [eps, 1 - eps].

    Used as the initial readout bias, so an untrained model predicts the base rate.
    """
    fraction = float(np.clip(np.mean(np.asarray(masks, dtype=bool)), eps, 1.0 - eps))
    return math.log(fraction / (1.0 - fraction))


def _check_arrays(model: nn.Module, images: np.ndarray, masks: np.ndarray | None = None) -> None:
    if not isinstance(images, (np.ndarray, ImageSelection)) or images.ndim != 4:
        raise ValueError(f"images must be a numpy array (N, m, H, W), got {getattr(images, 'shape', type(images))}")
    modalities = getattr(model, "modalities", None)
    if modalities is not None and images.shape[1] != len(modalities):
        raise ValueError(
            f"images have {images.shape[1]} channels but the model expects {len(modalities)} {tuple(modalities)}"
        )
    if masks is not None:
        expected = (images.shape[0], *images.shape[2:])
        if not isinstance(masks, np.ndarray) or masks.shape != expected:
            raise ValueError(f"masks must be a numpy array {expected}, got {getattr(masks, 'shape', type(masks))}")


def learning_rate_factor(schedule: str, step: int, total_steps: int) -> float:
    """Factor on every group's initial learning rate before Adam step ``step`` (0-based) of
    ``total_steps``: 1 for "constant"; for "cosine", (1 + cos(pi * step / total_steps)) / 2, from
    1 at the first step down to near 0 at the last (a single cosine cycle without restarts).

    Why cosine: with a constant rate the weights at the last step still carry the noise of the
    last mini-batches, and Table I compares single models; annealing lets each end near a minimum.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        if total_steps < 1 or not 0 <= step < total_steps:
            raise ValueError(f"step {step} is outside 0..{total_steps - 1}")
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")


def _parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """One Adam group, or two when the model has a `readout` and its lr multiplier is not 1."""
    readout = getattr(model, "readout", None)
    if readout is None or config.readout_lr_multiplier == 1.0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr}]
    readout_ids = {id(p) for p in readout.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in readout_ids]
    head = [p for p in readout.parameters() if p.requires_grad]
    return [
        {"params": body, "lr": config.lr},
        {"params": head, "lr": config.lr * config.readout_lr_multiplier},
    ]


def _to_batch(images: np.ndarray, masks: np.ndarray, index: np.ndarray, device: torch.device):
    x = torch.from_numpy(np.ascontiguousarray(images[index], dtype=np.float32)).to(device)
    y = torch.from_numpy(np.ascontiguousarray(masks[index], dtype=np.float32)).unsqueeze(1).to(device)
    return x, y


def _pooled_dice(model: nn.Module, images: np.ndarray, masks: np.ndarray, device: torch.device) -> float:
    predicted = predict_masks(model, images, device=device)
    target = np.asarray(masks, dtype=bool)
    total = predicted.sum() + target.sum()
    return 1.0 if total == 0 else float(2.0 * (predicted & target).sum() / total)


def train_segmenter(model: nn.Module, images: np.ndarray, masks: np.ndarray, config: TrainConfig,
                    validation: tuple[np.ndarray, np.ndarray] | None = None,
                    cache: TrainingCache | None = None) -> TrainHistory:
    """Train `model` (images (N, m, H, W) -> logits (N, 1, H, W)) in place with Adam; return its history.

    images: float32 (N, m, H, W), a numpy array or a `lib.data.slices.ImageSelection` (read a
    batch at a time, never copied whole); masks: bool (N, H, W). Each epoch visits every slice once in an
    order drawn from a generator seeded with `config.seed` (last batch may be smaller). On the CPU
    a run is deterministic for a seed and a model initialisation. A non-finite loss stops training
    with FloatingPointError (an unstable adjoint solve shows up this way).
    validation: (images, masks) of held-out slices; their pooled Dice is recorded after every
    epoch, and with ``config.patience`` training stops early and keeps the best epoch's weights.
    cache: a `lib.training_cache.TrainingCache`. When it holds a run with the same initial
    weights, data, settings, device, threads and library code, its weights are loaded instead of
    training (the history says ``from_cache``; its times are those of the original training);
    otherwise the trained weights are stored in it.
    """
    _check_arrays(model, images, masks)
    if validation is not None:
        _check_arrays(model, *validation)
    if config.patience is not None and validation is None:
        raise ValueError("early stopping (patience) needs validation slices")
    if config.patience is not None and not np.asarray(validation[1]).any():
        # their pooled Dice is 1 for every epoch that predicts nothing: no epoch could beat the first
        raise ValueError("early stopping (patience) needs validation slices with some target; these have none")
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        seed_everything(config.seed)
        model.to(device).train()
        key = None
        if cache is not None:
            from lib.training_cache import training_key

            key = training_key(model, images, masks, config, validation, device)
            cached = cache.load(key, model)
            if cached is not None:
                return cached  # training draws from no global RNG, so the state after it is the seeded one
        order_rng = np.random.default_rng(config.seed)
        optimizer = torch.optim.Adam(_parameter_groups(model, config))
        initial_lrs = [group["lr"] for group in optimizer.param_groups]
        n = images.shape[0]
        n_batches = math.ceil(n / config.batch_size)
        total_steps, step = config.epochs * n_batches, 0
        history = TrainHistory(n_slices=n, device=str(device))
        start = time.perf_counter()
        epochs = tqdm(range(config.epochs), desc=config.progress_label, disable=not config.progress, mininterval=1.0)
        for epoch in epochs:
            order = order_rng.permutation(n)
            total = 0.0
            batches = tqdm(
                range(n_batches), desc=f"epoch {epoch + 1}", leave=False, disable=not config.progress, mininterval=1.0
            )
            for b in batches:
                index = np.sort(order[b * config.batch_size : (b + 1) * config.batch_size])
                x, y = _to_batch(images, masks, index, device)
                loss = segmentation_loss(model(x), y, config.loss)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch + 1}, batch {b + 1}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                factor = learning_rate_factor(config.lr_schedule, step, total_steps)
                for group, initial in zip(optimizer.param_groups, initial_lrs):
                    group["lr"] = initial * factor
                optimizer.step()
                step += 1
                value = float(loss.detach())
                history.batch_losses.append(value)
                total += value * len(index)
                batches.set_postfix(loss=f"{value:.4f}")
            history.epoch_losses.append(total / n)
            epochs.set_postfix(loss=f"{history.epoch_losses[-1]:.4f}")
            if validation is not None:
                validation_start = time.perf_counter()
                history.val_dice.append(_pooled_dice(model, *validation, device))
                history.validation_seconds += time.perf_counter() - validation_start
                model.train()
            if config.patience is not None:  # (validation is given: checked above)
                if history.best_epoch is None or history.val_dice[-1] > history.val_dice[history.best_epoch - 1]:
                    history.best_epoch = epoch + 1
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                elif epoch + 1 - history.best_epoch >= config.patience and epoch + 1 < config.epochs:
                    history.stopped_early = True
                    break
        if config.patience is not None and history.best_epoch is not None:
            model.load_state_dict(best_state)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        history.seconds = time.perf_counter() - start
        trained = len(history.epoch_losses)
        training_seconds = history.seconds - history.validation_seconds
        history.slices_per_second = trained * n / training_seconds if training_seconds > 0 else float("inf")
        if key is not None:
            cache.store(key, model, history)
        return history
    finally:
        torch.set_num_threads(previous_threads)


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predict_logits(
    model: nn.Module, images: np.ndarray, batch_size: int = 32, device: str | torch.device | None = None
) -> np.ndarray:
    """Logits for every slice, float32 (N, H, W), in eval mode without gradients.

    device: None keeps the model where it is; otherwise the model is moved there first.
    """
    _check_arrays(model, images)
    if device is None:
        device = _model_device(model)
    else:
        device = resolve_device(device)
        model.to(device)
    was_training = model.training
    model.eval()
    out = np.empty((images.shape[0], *images.shape[2:]), dtype=np.float32)
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                chunk = np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32)
                x = torch.from_numpy(chunk).to(device)
                out[start : start + len(x)] = model(x)[:, 0].float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def predict_masks(
    model: nn.Module,
    images: np.ndarray,
    threshold: float = 0.5,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Binary masks bool (N, H, W): σ(logit) > threshold (Eq. (4)'s γ, binarised)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    logits = predict_logits(model, images, batch_size=batch_size, device=device)
    # exp overflows to inf for logits below about -709, and 1 / (1 + inf) = 0 is the right σ: the
    # warning says nothing wrong. At 0.5 this equals logit > 0 (Eq. 4's γ elsewhere) except for
    # 0 < logit < ~1e-16, where σ rounds to exactly 0.5 and the pixel counts as background.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64))) > threshold


# --- checkpoints -------------------------------------------------------------------------------

_CHECKPOINT_FORMAT = 1


def _model_classes() -> dict[str, Callable[..., nn.Module]]:
    from lib.models.node import NeuralODESegmenter, SegmentationUNet
    from lib.models.unet import UNet2D

    return {cls.__name__: cls for cls in (NeuralODESegmenter, SegmentationUNet, UNet2D)}


def state_dict_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and values (`lib.fingerprint.array_fingerprint`: dtype,
    shape and values, whatever the memory layout), in the dict's order."""
    h = hashlib.sha256()
    for name, tensor in state_dict.items():
        h.update(name.encode())
        h.update(array_fingerprint(tensor.detach().cpu().numpy()).encode())
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write the model's weights and constructor kwargs to `path`, atomically.

    The file is written to a temporary file in the same folder and moved into place with
    os.replace (`lib.io.atomic_path`), so `path` is either the old file or the complete new one,
    never a partial one. `model.init_kwargs` (every model in lib.models has it) lets
    `load_checkpoint` rebuild the model. `extra` (plain Python values: numbers, strings, lists,
    dicts) is stored alongside, and so is the weights' `state_dict_digest`, which `read_checkpoint`
    checks: torch does not verify its zip's checksums, so a flipped byte would load silently.
    """
    kwargs = getattr(model, "init_kwargs", None)
    if kwargs is None:
        raise ValueError(f"{type(model).__name__} has no init_kwargs; cannot record how to rebuild it")
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "model_class": type(model).__name__,
        "model_kwargs": dict(kwargs),
        "state_dict": state,
        "state_digest": state_dict_digest(state),
        "extra": dict(extra or {}),
    }
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw contents of a `save_checkpoint` file: format, model_class, model_kwargs,
    state_dict (on the CPU), state_digest and extra. Raises ValueError for another format, and
    for weights that do not match their stored digest (files written before the digest have none)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{path}: not a readable checkpoint ({reason})") from error
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: unknown checkpoint format {found!r}")
    stored = payload.get("state_digest")
    if stored is not None and stored != state_dict_digest(payload["state_dict"]):
        raise ValueError(f"{path}: the weights do not match the digest stored with them (a damaged file)")
    return payload


def load_checkpoint(
    path: str | os.PathLike,
    model_factory: Callable[..., nn.Module] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict]:
    """Rebuild a model saved by `save_checkpoint`: returns (model in eval mode on `device`, extra).

    model_factory: called with the stored constructor kwargs (e.g. `NeuralODESegmenter`); None
    picks the lib.models class recorded in the file.
    """
    payload = read_checkpoint(path)
    if model_factory is None:
        classes = _model_classes()
        if payload["model_class"] not in classes:
            raise ValueError(f"{path}: no model_factory given and unknown model class {payload['model_class']!r}")
        model_factory = classes[payload["model_class"]]
    model = model_factory(**payload["model_kwargs"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:  # torch lists every missing and unexpected key over many lines
        missing = sorted(set(model.state_dict()) - set(payload["state_dict"]))
        unexpected = sorted(set(payload["state_dict"]) - set(model.state_dict()))
        parts = [f"{len(keys)} {what}, e.g. {keys[0]!r}" for what, keys in
                 (("weights missing", missing), ("unexpected weights", unexpected)) if keys]
        detail = "; ".join(parts) or "weights of other shapes"
        raise ValueError(f"{path}: its weights do not fit {type(model).__name__}: {detail}") from error
    model.to(resolve_device(device)).eval()
    return model, payload["extra"]
