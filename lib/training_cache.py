"""Trained weights kept by everything that determined them, so an interrupted run resumes.

Why: the paper profile trains dozens of models at 240 px (3 neural ODE seeds, the renamed run,
10 folds of U-Nets per subset); without this, a run stopped on its last model
would train every model again. A chapter is still one atomic run (``lib.runner``): what is kept
here is never a result, only the weights a repeated training would produce.

The key of an entry is the sha256 of the JSON of (:func:`training_key`):

* the model's class, constructor arguments, memory layout and *initial* weights (so the seed and
  the architecture are in it);
* the training images and masks, and the validation slices, by their values;
* every `TrainConfig` field that changes what training computes (not ``progress``);
* the device type, the torch CPU threads (CPU sums are deterministic for a thread count, not
  across counts) and the CPU's kernel capability and vector-instruction flags (another instruction
  set sums in another order: :func:`lib.device.cpu_kernels`);
* the torch, TorchDyn (the neural ODE's solve and its adjoint) and NumPy versions, and the hash
  of all library code: any change of ``lib`` trains again, as any change of ``lib`` re-runs the
  chapters.

Entries are written atomically once training has finished, and the stored key is compared with
the asked one on reading, as are the weights and the history with their stored digests, so a
partial, foreign, damaged or mismatched file is never used: it is retrained and replaced. On the
CPU a reused model is bit-identical to one trained again (tested). On a GPU, where cuDNN may sum
in any order, it is one of the models training could have produced.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchdyn
from torch import nn

from lib.device import cpu_kernels
from lib.fingerprint import array_fingerprint, canonical_json, json_fingerprint, lib_source_fingerprint
from lib.train import TrainHistory, read_checkpoint, save_checkpoint, state_dict_digest

__all__ = ["TRAINING_CACHE_VERSION", "TrainingCache", "training_cache", "training_key", "usage", "weights_fingerprint"]

# Bump when what an entry holds, or what its key means, changes.
TRAINING_CACHE_VERSION = 5  # 2: the CPU's kernels are in the key; 3: entries carry a digest of their weights;
# 4: the TorchDyn version is in the key, entries carry a digest of their history;
# 5: histories hold validation_seconds, and slices_per_second leaves validation's time out

# TrainConfig fields that do not change the trained weights.
_NOT_IN_KEY = {"progress", "progress_label", "device", "num_threads"}  # device and threads enter as resolved values


def weights_fingerprint(model: nn.Module) -> str:
    """Hash of a model's state dict (names, dtypes, shapes, values), whatever the memory layout."""
    return state_dict_digest(model.state_dict())


def _layouts(model: nn.Module) -> list[bool]:
    """Channels-last flag of every nested U-Net: the layout changes float rounding, not the model."""
    return sorted({bool(m.channels_last) for m in model.modules() if hasattr(m, "channels_last")})


def training_key(model: nn.Module, images: np.ndarray, masks: np.ndarray, config: Any,
                 validation: tuple[np.ndarray, np.ndarray] | None, device: torch.device) -> dict:
    """Everything that determines the weights `lib.train.train_segmenter` would produce.

    Call it before training: the initial weights are part of the key."""
    kwargs = getattr(model, "init_kwargs", None)
    if kwargs is None:
        raise ValueError(f"{type(model).__name__} has no init_kwargs; its training cannot be cached")
    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in _NOT_IN_KEY}
    return {
        "version": TRAINING_CACHE_VERSION,
        "model_class": type(model).__name__,
        "model_kwargs": dict(kwargs),
        "channels_last": _layouts(model),
        "initial_weights": weights_fingerprint(model),
        "images": array_fingerprint(images),
        "masks": array_fingerprint(masks),  # as given: training reads their values, not only their truth
        "validation": None if validation is None else [array_fingerprint(validation[0]),
                                                       array_fingerprint(np.asarray(validation[1], dtype=bool))],
        "config": settings,
        "device": device.type,
        "cpu_threads": torch.get_num_threads() if device.type == "cpu" else None,
        "cpu_kernels": _cpu_kernels_in_key() if device.type == "cpu" else None,
        "torch": torch.__version__,
        "torchdyn": torchdyn.__version__,
        "numpy": np.__version__,
        "lib": lib_source_fingerprint(),
    }


def _cpu_kernels_in_key() -> dict:
    kernels = cpu_kernels()
    return {"capability": kernels["capability"], "flags": kernels["flags"]}  # not the model's marketing name


# How many training runs of this process each cache answered and stored, by folder (for the chapter's account).
_USAGE: dict[str, dict[str, int]] = {}


def usage() -> dict[str, dict[str, int]]:
    """{cache folder: {"reused": n, "trained": n}} for this process so far."""
    return {folder: dict(counts) for folder, counts in _USAGE.items()}


def _count(root: Path, what: str) -> None:
    counts = _USAGE.setdefault(str(root), {"reused": 0, "trained": 0})
    counts[what] += 1


class TrainingCache:
    """A folder of trained weights, one ``<sha256 of the key>.pt`` per training run.

    `load` puts the stored weights into a freshly built model and returns the stored history
    (with ``from_cache=True``), or None when there is no usable entry; `store` writes one.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: dict) -> Path:
        return self.root / f"{json_fingerprint(key)}.pt"

    def load(self, key: dict, model: nn.Module):
        """The stored history with the weights loaded into ``model``; None when there is no usable entry."""
        path = self.path(key)
        if not path.is_file():
            return None
        # load_state_dict copies every matching tensor before it reports a mismatch: keep the
        # model's own weights to put back, so a rejected entry cannot leak into the training.
        original = {name: value.detach().clone() for name, value in model.state_dict().items()}
        try:
            payload = read_checkpoint(path)  # checks the weights against their stored digest
            if payload["extra"].get("training_key") != canonical_json(key):
                raise ValueError("its stored key differs from the asked one")
            if payload.get("state_digest") is None:
                raise ValueError("it has no digest of its weights")
            if payload["extra"].get("history_digest") != json_fingerprint(payload["extra"].get("history")):
                raise ValueError("its history does not match the digest stored with it")
            model.load_state_dict(payload["state_dict"])
            history = TrainHistory(**{**payload["extra"]["history"], "from_cache": True})
        except Exception as err:  # noqa: BLE001  (any unreadable entry is retrained, never trusted)
            model.load_state_dict(original)
            reason = " ".join(f"{type(err).__name__}: {err}".split())  # torch's messages span lines
            warnings.warn(f"{path}: unusable training-cache entry ({reason}); training again", stacklevel=2)
            return None
        _count(self.root, "reused")
        return history

    def store(self, key: dict, model: nn.Module, history) -> Path | None:
        """Write the trained weights and history under ``key``, atomically, as a `save_checkpoint`
        file (so `lib.train.load_checkpoint` also rebuilds a cached model). Returns its path, or
        None with a warning when it cannot be written (a full disk): the cache only saves time, so
        the run goes on with the model it trained."""
        path = self.path(key)
        stored = {name: value for name, value in asdict(history).items() if name != "from_cache"}
        _count(self.root, "trained")
        try:
            save_checkpoint(model, path, extra={"training_key": canonical_json(key), "history": stored,
                                                "history_digest": json_fingerprint(stored)})
        except OSError as err:
            warnings.warn(f"training_cache_dir: {path}: the trained model was not cached "
                          f"({err.strerror or err}); the run goes on without it", stacklevel=2)
            return None
        return path


def training_cache(params: dict) -> TrainingCache | None:
    """The cache a run's parameters name (``training_cache_dir``, relative to the repository root),
    or None when they name none."""
    from lib.paths import folder_for_key

    folder = params.get("training_cache_dir")
    return TrainingCache(folder_for_key("training_cache_dir", folder)) if folder else None
