"""Cost of study A's neural ODE segmenter: training and inference throughput, memory, flow rendering.

    python benchmarks/bench_study_a.py --size 64 --batch 16 --train-steps 4 --width 8 --depth 4 \
        --out results/benchmarks/study_a.json

Measures, in one run, on random 4-modality images (cost does not depend on the values):

* training slices/s with the adjoint (the paper's sensitivity method) and with autograd
  (backpropagation through the RK4 steps), via `lib.train.train_segmenter`;
* with ``--variant-width W``: training slices/s of the labelled variant whose vector field is one
  U-Net of base width W per modality (`PerModalityVectorField`), per sensitivity, and how many
  times slower it trains than the paper's shared field;
* inference slices/s (`lib.train.predict_logits`);
* peak memory of one forward + backward per sensitivity, each in a fresh subprocess (CPU: the
  peak resident set size above the resident set before, from /proc/self/status VmHWM after
  resetting it, falling back to the growth of `ru_maxrss`; CUDA: `torch.cuda.max_memory_allocated`
  above what was allocated before);
* the paper's 101-frame image flow (0.01 grid): one solve saving every frame vs 100 separate solves
  from t = 0 to each t_j at the same step (what one would do if the solver could not return
  intermediate frames). The separate solves cost 5050 RK4 steps against 100; by default every
  10th is timed and the total is scaled by the exact step count (`--flow-separate-every 1` times
  all 100).

The JSON is written atomically. The default run takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.report import write_report  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchdyn  # noqa: E402

from benchmarks.rss import peak_rss_bytes, proc_status_bytes, reset_peak_rss  # noqa: E402
from lib.device import device_name, resolve_device, seed_everything  # noqa: E402
from lib.models import SENSITIVITIES, NeuralODESegmenter, count_parameters  # noqa: E402
from lib.train import TrainConfig, predict_logits, train_segmenter  # noqa: E402

MODALITIES = ("flair", "t1", "t1ce", "t2")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="slice height and width")
    parser.add_argument("--batch", type=int, default=16, help="slices per training batch")
    parser.add_argument("--train-steps", type=int, default=4, help="RK4 steps on [0, 1] during training")
    parser.add_argument("--width", type=int, default=8, help="U-Net base width")
    parser.add_argument("--depth", type=int, default=4, help="U-Net encoder blocks")
    parser.add_argument("--train-batches", type=int, default=3, help="timed training batches per sensitivity")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of each timed comparison; the median is reported (a shared "
                             "machine's speed drifts between two back-to-back timings)")
    parser.add_argument("--flow-frames", type=int, default=101, help="frames of the rendered flow (paper: 101)")
    parser.add_argument("--flow-batch", type=int, default=1, help="slices in the flow comparison")
    parser.add_argument("--flow-separate-every", type=int, default=10, help="time every k-th separate solve")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/benchmarks/study_a.json")
    parser.add_argument("--variant-width", type=int, default=0,
                        help="also time the per-modality vector field (one U-Net of this width per modality; 0: skip)")
    parser.add_argument("--memory-probe", choices=SENSITIVITIES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def build_model(args, device: torch.device, vector_field: str = "shared") -> NeuralODESegmenter:
    torch.manual_seed(args.seed)
    # a non-zero field: the default zero-initialised one costs the same but flows nowhere
    width = args.width if vector_field == "shared" else args.variant_width
    model = NeuralODESegmenter(
        MODALITIES, base_width=width, depth=args.depth, train_steps=args.train_steps, zero_init_field=False,
        vector_field=vector_field,
    )
    return model.to(device)


def random_data(n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, len(MODALITIES), size, size)).astype(np.float32)
    return images, images[:, 2] > 1.0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_probe(args) -> dict:
    """One forward + backward of a training batch in this (fresh) process; print its peak memory."""
    device = resolve_device(args.device)
    model = build_model(args, device)
    model.sensitivity = args.memory_probe
    images, masks = random_data(args.batch, args.size, args.seed)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(masks).float().unsqueeze(1).to(device)
    # One-off set-up outside the measurement: a whole forward + backward on one slice (the first
    # backward allocates ~16-20 MiB once, in either mode, which would otherwise shrink the ratio).
    F.binary_cross_entropy_with_logits(model(x[:1]), y[:1]).backward()
    model.zero_grad(set_to_none=True)  # training allocates its gradients inside each step
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        method = "torch.cuda.max_memory_allocated above the allocation before"
    elif reset_peak_rss() and proc_status_bytes("VmRSS") is not None:
        before = proc_status_bytes("VmRSS")
        method = "peak RSS (VmHWM, reset first) above the RSS before, in a fresh process"
    else:
        before = peak_rss_bytes()
        method = "growth of the peak RSS (ru_maxrss / VmHWM) in a fresh process"
    F.binary_cross_entropy_with_logits(model(x), y).backward()
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss_bytes()
    return {"peak_bytes": int(peak - before), "peak_mib": (peak - before) / 2**20, "method": method}


def run_memory_probe(args, mode: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", mode]
    for name in ("size", "batch", "train_steps", "width", "depth", "threads", "device", "seed"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory probe ({mode}) failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def training_throughput(args, device: torch.device, vector_fields=("shared",)) -> dict:
    """Training slices/s per vector field and sensitivity: ``args.rounds`` rounds, each timing every
    (field, sensitivity) once in turn, so drift of the machine's speed reaches all alike; the
    median over rounds is reported (each round's figure too)."""
    images, masks = random_data(args.batch * args.train_batches, args.size, args.seed)
    config = TrainConfig(epochs=1, batch_size=args.batch, device=str(device), seed=args.seed, progress=False)
    models = {}
    for field in vector_fields:
        for mode in SENSITIVITIES:
            model = build_model(args, device, field)
            model.sensitivity = mode
            train_segmenter(model, images[: args.batch], masks[: args.batch], config)  # warm-up batch
            models[field, mode] = model
    rates = {key: [] for key in models}
    evaluations = {}
    for _ in range(max(args.rounds, 1)):
        for key, model in models.items():
            model.vector_field.nfe = 0
            history = train_segmenter(model, images, masks, config)
            rates[key].append(history.slices_per_second)
            evaluations[key] = model.vector_field.nfe / args.train_batches
    reports = {}
    for field in vector_fields:
        report = {mode: {"slices_per_second": float(np.median(rates[field, mode])),
                         "slices_per_second_by_round": rates[field, mode],
                         "slices": len(images),
                         "field_evaluations_per_batch": evaluations[field, mode]} for mode in SENSITIVITIES}
        report["autograd_speedup"] = report["autograd"]["slices_per_second"] / report["adjoint"]["slices_per_second"]
        reports[field] = report
    return reports


def inference_throughput(args, device: torch.device) -> dict:
    images, _ = random_data(args.batch * args.train_batches, args.size, args.seed)
    model = build_model(args, device)
    predict_logits(model, images[: args.batch], batch_size=args.batch)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    predict_logits(model, images, batch_size=args.batch)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"slices_per_second": len(images) / seconds, "seconds": seconds, "slices": len(images)}


def flow_rendering(args, device: torch.device) -> dict:
    """One solve of the whole flow vs separate solves per frame, alternating ``args.rounds`` times
    (medians reported); the separate solves' frames must equal the one solve's."""
    model = build_model(args, device)
    images, _ = random_data(args.flow_batch, args.size, args.seed)
    x = torch.from_numpy(images).to(device)
    model.flow(x, n_frames=3)  # warm-up
    n_intervals = args.flow_frames - 1
    timed = list(range(args.flow_separate_every, n_intervals + 1, args.flow_separate_every))
    one_solve_rounds, timed_rounds, largest_difference = [], [], 0.0
    for _ in range(max(args.rounds, 1)):
        synchronize(device)
        start = time.perf_counter()
        t, frames = model.flow(x, n_frames=args.flow_frames)
        synchronize(device)
        one_solve_rounds.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            for j in timed:  # frame j: its own solve of j steps from 0 to t_j, on the same 0.01 grid
                _, trajectory = model.node(x, t[: j + 1].clone())
                largest_difference = max(largest_difference, float((trajectory[-1] - frames[j]).abs().max()))
        synchronize(device)
        timed_rounds.append(time.perf_counter() - start)
    if largest_difference > 1e-5:  # the same RK4 steps on the same grid: the frames must agree
        raise RuntimeError(f"the separate solves' frames differ from the one solve's by {largest_difference:.3g}")
    one_solve, timed_seconds = float(np.median(one_solve_rounds)), float(np.median(timed_rounds))
    steps_all = n_intervals * (n_intervals + 1) // 2
    steps_timed = sum(timed)
    separate = timed_seconds * steps_all / steps_timed
    return {
        "frames": args.flow_frames,
        "slices": args.flow_batch,
        "one_solve_seconds": one_solve,
        "one_solve_rk4_steps": n_intervals,
        "separate_solves": n_intervals,
        "separate_solves_seconds": separate,
        "separate_solves_rk4_steps": steps_all,
        "separate_solves_timed": len(timed),
        "separate_solves_timed_seconds": timed_seconds,
        "separate_solves_extrapolated": len(timed) < n_intervals,
        "rounds": len(one_solve_rounds),
        "ratio_separate_over_one": separate / one_solve,
        "max_abs_difference_of_frames": largest_difference,
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args)))
        return {}
    device = resolve_device(args.device)
    seed_everything(args.seed)
    model = build_model(args, device)
    report = {
        "command": " ".join(sys.argv),
        "config": {key: value for key, value in vars(args).items() if key != "memory_probe"},
        "device": device_name(device),
        "device_type": device.type,
        "torch_threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "torchdyn": torchdyn.__version__},
        "model": {
            "modalities": list(MODALITIES),
            "parameters": count_parameters(model),
            "unet_widths": list(model.vector_field.unet.features),
            "train_rk4_steps": args.train_steps,
        },
    }
    started = time.perf_counter()
    print(f"study A benchmark on {report['device']} ({report['torch_threads']} threads)", flush=True)
    memory = {mode: run_memory_probe(args, mode) for mode in SENSITIVITIES}
    memory["ratio_autograd_over_adjoint"] = memory["autograd"]["peak_bytes"] / max(memory["adjoint"]["peak_bytes"], 1)
    report["memory_forward_backward"] = memory
    print("memory:", json.dumps(memory), flush=True)
    fields = ("shared", "per_modality") if args.variant_width else ("shared",)
    training = training_throughput(args, device, fields)  # both fields in the same alternating rounds
    report["training"] = training["shared"]
    print("training:", json.dumps(report["training"]), flush=True)
    if args.variant_width:
        variant = training["per_modality"]
        variant["parameters"] = count_parameters(build_model(args, device, "per_modality"))
        for mode in SENSITIVITIES:
            variant[f"slowdown_{mode}"] = (report["training"][mode]["slices_per_second"]
                                           / variant[mode]["slices_per_second"])
        report["training_per_modality_field"] = variant
        print("training, per-modality field:", json.dumps(variant), flush=True)
    report["inference"] = inference_throughput(args, device)
    print("inference:", json.dumps(report["inference"]), flush=True)
    report["flow"] = flow_rendering(args, device)
    print("flow:", json.dumps(report["flow"]), flush=True)
    return write_report(report, args.out, started)


if __name__ == "__main__":
    main()
