"""Runs side by side vs one run with all threads: why `make book` runs chapters two at a time.

    python benchmarks/bench_parallel.py --size 48 --width 8 --depth 4 --out results/benchmarks/parallel.json

Study A's default models are tiny (48 px, U-Net width 8): one process spends much of its time
in per-operation overhead that more threads do not shorten. This measures, in one run, the
training throughput (slices/s summed over processes) of each workload of the default profile

* with one process using ``--cpus`` torch threads (what one chapter at a time gets), and
* with ``--cpus`` processes, one thread each, started together (what ``--jobs`` gets),

for the plain U-Net of Table I (``unet``) and the neural ODE (``ode``, backpropagation through
the RK4 steps as in the default profile). Each process trains on random images (cost does not
depend on the values) after one warm-up batch. Processes start apart (interpreter and torch start-up
vary), so each waits after its warm-up until all are ready, and they start training together; the
rate of a set of processes is all their slices over the wall time from the first start to the last
end (summing each process's own rate would count a process that runs alone for a while as if it
had shared the cores throughout). The JSON (written atomically) gives both rates and their ratio
per workload.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.report import write_report  # noqa: E402

MODALITIES = ("flair", "t1", "t1ce", "t2")
WORKLOADS = ("unet", "ode")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=48, help="slice height and width")
    parser.add_argument("--width", type=int, default=8, help="U-Net base width (both workloads)")
    parser.add_argument("--depth", type=int, default=4, help="U-Net encoder blocks (both workloads)")
    parser.add_argument("--unet-width", type=int, help="base width of the unet workload (default: --width)")
    parser.add_argument("--unet-depth", type=int, help="encoder blocks of the unet workload (default: --depth)")
    parser.add_argument("--train-steps", type=int, default=3, help="RK4 steps of the ODE in training")
    parser.add_argument("--unet-batch", type=int, default=8)
    parser.add_argument("--ode-batch", type=int, default=16)
    parser.add_argument("--unet-slices", type=int, default=512, help="slices each process trains on (unet)")
    parser.add_argument("--ode-slices", type=int, default=128, help="slices each process trains on (ode)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="cores to share out")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--out", default="results/benchmarks/parallel.json")
    parser.add_argument("--worker", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--barrier", help=argparse.SUPPRESS)  # folder: ready-<index> files, then "go"
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def unet_size(args) -> tuple[int, int]:
    """(base width, depth) of the unet workload: the Table I U-Net's where given, else the shared size."""
    return (args.width if args.unet_width is None else args.unet_width,
            args.depth if args.unet_depth is None else args.unet_depth)


def worker(args) -> dict:
    """Train one workload in this process with ``args.threads`` threads; return its rate."""
    import numpy as np
    import torch

    from lib.models import NeuralODESegmenter, SegmentationUNet
    from lib.train import TrainConfig, train_segmenter

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.worker == "unet":
        width, depth = unet_size(args)
        model = SegmentationUNet(MODALITIES, base_width=width, depth=depth)
        batch, n = args.unet_batch, args.unet_slices
    else:
        model = NeuralODESegmenter(MODALITIES, base_width=args.width, depth=args.depth, train_steps=args.train_steps,
                                   sensitivity="autograd", zero_init_field=False)
        batch, n = args.ode_batch, args.ode_slices
    rng = np.random.default_rng(0)
    images = rng.standard_normal((n, len(MODALITIES), args.size, args.size)).astype(np.float32)
    masks = images[:, 2] > 1.0
    config = TrainConfig(epochs=1, batch_size=batch, loss="bce+dice", device="cpu", num_threads=args.threads,
                         progress=False)
    train_segmenter(model, images[:batch], masks[:batch], config)  # warm-up batch
    if args.barrier:  # ready; start when every process is
        barrier = Path(args.barrier)
        (barrier / f"ready-{args.index}").touch()
        while not (barrier / "go").exists():
            time.sleep(0.002)
    started = time.time()
    history = train_segmenter(model, images, masks, config)
    return {"slices": history.n_slices, "seconds": history.seconds, "slices_per_second": history.slices_per_second,
            "started": started, "ended": time.time()}


def _command(args, workload: str, threads: int) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", workload, "--threads", str(threads)]
    for name in ("size", "width", "depth", "train_steps", "unet_batch", "ode_batch", "unet_slices", "ode_slices"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    for name in ("unet_width", "unet_depth"):
        if getattr(args, name) is not None:
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return command


def _run_together(commands: list[list[str]]) -> list[dict]:
    """Start the commands, let each warm up, then release them at once (see the module docstring)."""
    with tempfile.TemporaryDirectory() as barrier:
        commands = [c + ["--barrier", barrier, "--index", str(i)] for i, c in enumerate(commands)]
        # stderr to a file, not a pipe: a pipe nobody reads before the release could fill and block
        errors = [tempfile.TemporaryFile(mode="w+") for _ in commands]
        processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=e, text=True) for c, e in zip(commands, errors)]
        while not all((Path(barrier) / f"ready-{i}").exists() for i in range(len(commands))):
            if any(p.poll() not in (None, 0) for p in processes):
                break  # a worker failed before it was ready: reported below
            time.sleep(0.005)
        (Path(barrier) / "go").touch()
        return _collect(processes, errors)


def _collect(processes, errors) -> list[dict]:
    results = []
    for process, error in zip(processes, errors):
        out, _ = process.communicate()
        error.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"benchmark worker failed:\n{error.read()[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def combined_rate(results: list[dict]) -> float:
    """All processes' slices over the wall time from the first start to the last end."""
    return sum(r["slices"] for r in results) / (max(r["ended"] for r in results) - min(r["started"] for r in results))


def measure(args, workload: str) -> dict:
    single = _run_together([_command(args, workload, args.cpus)])[0]
    side_by_side = _run_together([_command(args, workload, 1) for _ in range(args.cpus)])
    together = combined_rate(side_by_side)
    return {
        "one_process": {"threads": args.cpus, **single},
        "side_by_side": {"processes": args.cpus, "threads_each": 1, "per_process": side_by_side,
                         "slices_per_second": together,
                         "sum_of_own_rates": sum(r["slices_per_second"] for r in side_by_side)},
        "speedup_side_by_side": together / single["slices_per_second"],
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return {}
    report = {"command": " ".join(sys.argv), "config": {k: v for k, v in vars(args).items() if k not in ("worker", "threads")}}
    started = time.perf_counter()
    for workload in args.workloads:
        report[workload] = measure(args, workload)
        print(f"{workload}: one process x {args.cpus} threads "
              f"{report[workload]['one_process']['slices_per_second']:.1f} slices/s; {args.cpus} processes x 1 thread "
              f"{report[workload]['side_by_side']['slices_per_second']:.1f} slices/s "
              f"({report[workload]['speedup_side_by_side']:.2f}x)", flush=True)
    return write_report(report, args.out, started)


if __name__ == "__main__":
    main()
