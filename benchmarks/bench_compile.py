"""Eager vs `torch.compile`: training throughput of each model study A trains.

    python benchmarks/bench_compile.py --out results/benchmarks/compile.json
    # the paper profile's sizes, on a GPU:
    python benchmarks/bench_compile.py --device cuda --size 240 --width 32 --depth 5 --train-steps 10 \
        --unet-width 32 --unet-depth 5 --variant-width 16

Study A trains every model eagerly. This measures, in one run and one process, whether compiling
(``nn.Module.compile()``, inductor, default mode) would make training faster on this machine, for
the workloads of `benchmarks/bench_memory_format.py` (the Table I U-Nets, the neural ODE, the
per-modality variant; inside a neural ODE its vector field's network is what gets compiled). Two
copies of a model are built from the same seed; one is compiled and warmed up (its compile time is
recorded), then both train with `lib.train.train_segmenter` on the same random images (cost does not
depend on the values) for ``--rounds`` alternating rounds, so a drift in the machine's speed hits
both alike; a rate is slices over summed training time. The JSON (written atomically) gives both
rates, their ratio and the compile time per workload; a workload that cannot be compiled gets its
error instead of numbers. Nothing here changes how the book trains.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.report import write_report  # noqa: E402

from benchmarks.bench_memory_format import add_workload_arguments, build  # noqa: E402  (the same models and sizes)

MODES = ("eager", "compiled")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_workload_arguments(parser)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per mode")
    parser.add_argument("--out", default="results/benchmarks/compile.json")
    return parser.parse_args(argv)


def speedup(seconds: dict, slices: dict) -> dict:
    """Rates (slices over summed seconds) of each mode and compiled's over eager's."""
    rates = {mode: slices[mode] / seconds[mode] for mode in MODES}
    return {**{f"{mode}_slices_per_second": rates[mode] for mode in MODES},
            "compiled_speedup": rates["compiled"] / rates["eager"]}


def compiled_part(model, workload: str):
    """What gets compiled: the whole U-Net of Table I; inside the neural ODE, the vector field's
    network (where the arithmetic is). Compiling the whole neural ODE recompiles at every call (the
    field counts its evaluations in a Python attribute) and, once dynamo gives up, runs ~30x slower
    (measured 2026-12-05) - a measure of that, not of compiled kernels."""
    if workload.startswith("unet"):
        return model
    field = model.vector_field
    return field.grouped if workload == "ode_per_modality" else field.unet


def measure(args, workload: str) -> dict:
    import numpy as np
    import torch

    from lib.device import resolve_device
    from lib.train import TrainConfig, train_segmenter

    torch.manual_seed(0)
    eager, batch, channels = build(args, workload)
    torch.manual_seed(0)
    compiled, _, _ = build(args, workload)  # the same weights (a neural ODE cannot be deep-copied)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch * args.batches, channels, args.size, args.size)).astype(np.float32)
    masks = images[:, 0] > 1.0
    device = resolve_device(args.device)
    config = TrainConfig(epochs=1, batch_size=batch, loss="bce+dice", device=str(device), num_threads=args.threads,
                         progress=False)
    models = {"eager": eager, "compiled": compiled}
    started = time.perf_counter()
    try:
        compiled_part(compiled, workload).compile()
        train_segmenter(compiled, images[:2 * batch], masks[:2 * batch], config)  # compiles forward and backward
    except Exception as error:  # noqa: BLE001 - a model inductor cannot compile is a result, not a crash
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
    compile_seconds = time.perf_counter() - started
    train_segmenter(eager, images[:2 * batch], masks[:2 * batch], config)  # warm-up, like the compiled copy
    seconds = {mode: 0.0 for mode in MODES}
    slices = {mode: 0 for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            history = train_segmenter(models[mode], images, masks, config)
            seconds[mode] += history.seconds
            slices[mode] += history.n_slices
    return {**speedup(seconds, slices), "slices_per_mode": slices["eager"], "compile_and_warmup_seconds": compile_seconds}


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    report = {"command": " ".join(sys.argv), "config": vars(args), "torch": torch.__version__}
    started = time.perf_counter()
    for workload in args.workloads:
        result = report[workload] = measure(args, workload)
        if "error" in result:
            print(f"{workload}: not compiled ({result['error']})", flush=True)
        else:
            print(f"{workload}: eager {result['eager_slices_per_second']:.1f} slices/s, compiled "
                  f"{result['compiled_slices_per_second']:.1f} slices/s ({result['compiled_speedup']:.2f}x; "
                  f"{result['compile_and_warmup_seconds']:.0f} s to compile)", flush=True)
    return write_report(report, args.out, started)


if __name__ == "__main__":
    main()
