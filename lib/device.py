"""Where tensors live and how runs are made repeatable.

Every model and training entry point takes a device argument and passes it through
`resolve_device`, so the same code runs on a CUDA GPU when one is present and on the CPU
always (the book is built and tested on CPU-only machines).
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "device_name"]

_PREFERENCES = ("auto", "cpu", "cuda")


def resolve_device(preference: str | torch.device = "auto") -> torch.device:
    """Turn a preference into a `torch.device`.

    "auto" -> "cuda" when a CUDA device is available, else "cpu". "cuda" (or "cuda:N") when no
    CUDA device is available raises a one-line ValueError instead of failing later inside a
    kernel. A `torch.device` is validated the same way and returned.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    if not isinstance(preference, str):
        raise ValueError(f"device preference must be a string or torch.device, got {preference!r}")
    kind = preference.split(":", 1)[0].lower()
    if kind not in _PREFERENCES:
        raise ValueError(f"device preference must be one of {_PREFERENCES}, got {preference!r}")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} requested but CUDA is not available on this machine")
    return torch.device(preference.lower())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all CUDA devices) for a repeatable run.

    Also makes cuDNN pick deterministic kernels (cheap: it only disables autotuning). It does not
    call `torch.use_deterministic_algorithms`, which raises on some CUDA ops; CPU runs are
    deterministic for a seed without it.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def device_name(device: str | torch.device) -> str:
    """Human-readable name of a device, for benchmark and run records ("cpu" or the GPU model)."""
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def model_device(model) -> torch.device:
    """The device of a model's parameters (CPU for a parameter-free module or function)."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.device if first is not None else torch.device("cpu")
