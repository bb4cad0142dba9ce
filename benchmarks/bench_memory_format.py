"""Channels-last vs the standard layout: training throughput of each model study A trains.

    python benchmarks/bench_memory_format.py --out results/benchmarks/memory_format.json

`UNet2D` keeps its weights and activations channels-last (NHWC) by default; this measures, in one
run and one process, what that buys on this machine for every model of the default profile:

* ``unet4``: the Table I baseline, a segmentation U-Net on all four modalities (batch 8);
* ``unet1``: a single-modality U-Net of Table I (batch 8);
* ``ode``: the neural ODE with the paper's shared vector field (autograd through 3 RK4 steps, batch 16);
* ``ode_per_modality``: the labelled variant, one U-Net of width 4 per modality (batch 16).

Each workload trains with `lib.train.train_segmenter` on random images (cost does not depend on
the values), in both layouts, for ``--rounds`` alternating rounds (so a drift in the machine's
speed hits both alike) after one warm-up batch each; the rate of a layout is its slices over its
summed training time. The JSON (written atomically) gives both rates and their ratio per workload.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.report import write_report  # noqa: E402

MODALITIES = ("flair", "t1", "t1ce", "t2")
WORKLOADS = ("unet4", "unet1", "ode", "ode_per_modality")
LAYOUTS = ("contiguous", "channels_last")


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The models' sizes, batches, threads, device and workloads (what :func:`build` reads); shared
    with `benchmarks/bench_compile.py`, which trains the same workloads."""
    parser.add_argument("--size", type=int, default=48, help="slice height and width")
    parser.add_argument("--width", type=int, default=8, help="base width of the shared vector field U-Net")
    parser.add_argument("--unet-width", type=int, default=8, help="base width of the Table I U-Nets")
    parser.add_argument("--unet-depth", type=int, default=4, help="encoder blocks of the Table I U-Nets")
    parser.add_argument("--variant-width", type=int, default=4, help="base width of each per-modality U-Net")
    parser.add_argument("--depth", type=int, default=4, help="encoder blocks of the vector field U-Nets")
    parser.add_argument("--train-steps", type=int, default=3, help="RK4 steps of the ODE in training")
    parser.add_argument("--unet-batch", type=int, default=8)
    parser.add_argument("--ode-batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (make book gives each chapter 1)")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_workload_arguments(parser)
    parser.add_argument("--batches", type=int, default=4, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per layout")
    parser.add_argument("--out", default="results/benchmarks/memory_format.json")
    return parser.parse_args(argv)


def build(args, workload: str):
    """(model, batch size, channels) of one workload; the model in the default (channels-last) layout."""
    from lib.models import NeuralODESegmenter, SegmentationUNet

    if workload == "unet4":
        return SegmentationUNet(MODALITIES, base_width=args.unet_width, depth=args.unet_depth), args.unet_batch, 4
    if workload == "unet1":
        return SegmentationUNet(MODALITIES[2:3], base_width=args.unet_width, depth=args.unet_depth), args.unet_batch, 1
    shared = workload == "ode"
    model = NeuralODESegmenter(MODALITIES, base_width=args.width if shared else args.variant_width, depth=args.depth,
                               train_steps=args.train_steps, sensitivity="autograd", zero_init_field=False,
                               vector_field="shared" if shared else "per_modality")
    return model, args.ode_batch, 4


def measure(args, workload: str) -> dict:
    import numpy as np
    import torch

    from lib.device import resolve_device
    from lib.models.unet import set_channels_last
    from lib.train import TrainConfig, train_segmenter

    torch.manual_seed(0)
    model, batch, channels = build(args, workload)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch * args.batches, channels, args.size, args.size)).astype(np.float32)
    masks = images[:, 0] > 1.0
    device = resolve_device(args.device)
    config = TrainConfig(epochs=1, batch_size=batch, loss="bce+dice", device=str(device), num_threads=args.threads,
                         progress=False)
    seconds = {layout: 0.0 for layout in LAYOUTS}
    slices = {layout: 0 for layout in LAYOUTS}
    for layout in LAYOUTS:  # warm-up batch in each layout
        set_channels_last(model, layout == "channels_last")
        train_segmenter(model, images[:batch], masks[:batch], config)
    for _ in range(args.rounds):
        for layout in LAYOUTS:
            set_channels_last(model, layout == "channels_last")
            history = train_segmenter(model, images, masks, config)
            seconds[layout] += history.seconds
            slices[layout] += history.n_slices
    rates = {layout: slices[layout] / seconds[layout] for layout in LAYOUTS}
    return {
        **{f"{layout}_slices_per_second": rates[layout] for layout in LAYOUTS},
        "slices_per_layout": slices["channels_last"],
        "channels_last_speedup": rates["channels_last"] / rates["contiguous"],
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    report = {"command": " ".join(sys.argv), "config": vars(args)}
    started = time.perf_counter()
    for workload in args.workloads:
        report[workload] = measure(args, workload)
        print(f"{workload}: contiguous {report[workload]['contiguous_slices_per_second']:.1f} slices/s, channels-last "
              f"{report[workload]['channels_last_slices_per_second']:.1f} slices/s "
              f"({report[workload]['channels_last_speedup']:.2f}x)", flush=True)
    return write_report(report, args.out, started)


if __name__ == "__main__":
    main()
