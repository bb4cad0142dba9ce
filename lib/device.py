"""Where tensors live and how runs are made repeatable.

Every model and training entry point takes a device argument and passes it through
`resolve_device`, so the same code runs on a CUDA GPU when one is present and on the CPU
always (the book is built and tested on CPU-only machines).
"""

from __future__ import annotations

import functools
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "device_name", "cpu_kernels"]

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


# CPU features that decide which kernels torch (ATen) and oneDNN pick for convolutions and matrix
# products; another set is other code summing in another order.
_KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                 "avx512_fp16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve")


def cpu_kernels(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """What decides the CPU's float rounding beyond the thread count: torch's kernel capability
    ("AVX2", "AVX512", ...), the CPU's vector-instruction flags and its model name.

    Measured here: a U-Net trained for 10 Adam steps ends with other weights (not only other last
    bits of the loss) when torch is held to its default kernels instead of AVX2, or oneDNN to SSE4.1
    instead of AVX2. So results made on one CPU are reproduced to the bit only on a CPU with the same
    capability and flags. Off Linux the flags and model are empty (read from /proc/cpuinfo).
    """
    model, flags = _read_cpuinfo(cpuinfo)
    return {"capability": torch.backends.cpu.get_cpu_capability(), "model": model,
            "flags": [f for f in _KERNEL_FLAGS if f in flags]}


@functools.lru_cache(maxsize=None)
def _read_cpuinfo(path: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first CPU in ``path``; read once per process (every training key
    and page label asks, and the CPU does not change under a running process)."""
    flags, model = frozenset(), ""
    try:
        with open(path, encoding="utf-8", errors="replace") as info:
            for line in info:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
                elif name == "model name" and not model:
                    model = value.strip()
    except OSError:
        pass
    return model, flags


def device_name(device: str | torch.device) -> str:
    """Human-readable name of a device, for benchmark and run records: the GPU model, or "cpu"
    with the CPU's model and kernel capability ("cpu (AMD EPYC, AVX2 kernels)"): speed and float
    rounding depend on them (:func:`cpu_kernels`)."""
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    kernels = cpu_kernels()
    return f"cpu ({', '.join(filter(None, [kernels['model'], kernels['capability'] + ' kernels']))})"


def model_device(model) -> torch.device:
    """The device of a model's parameters (CPU for a parameter-free module or function)."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.device if first is not None else torch.device("cpu")
