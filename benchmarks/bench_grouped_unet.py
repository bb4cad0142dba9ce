"""The per-modality vector field: m small U-Nets one after another vs one grouped network.

    python benchmarks/bench_grouped_unet.py --out results/benchmarks/grouped_unet.json

`lib.models.node.PerModalityVectorField` (the labelled variant of study A) evaluates its m U-Nets
as one `GroupedUNet2D`. This measures, in one run and one process, what that buys over running the
same m `UNet2D`s in a loop (what the field did before), and where both stand against the paper's
shared field (one U-Net over all m channels, of twice the width: for m = 4 the same multiply-adds), each as
one forward and backward pass of the vector field f on a batch (the bulk of training: f is evaluated
4 times per RK4 step). Weights are random and shared by the loop and the grouped network, whose
outputs are checked to agree first. The three run in alternating rounds (a drift in the machine's
speed hits all alike) after a warm-up pass each; a variant's time is its summed time over its passes.
The JSON (written atomically) gives milliseconds per pass and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

VARIANTS = ("looped", "grouped", "shared")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=48, help="slice height and width")
    parser.add_argument("--modalities", type=int, default=4, help="m, the number of U-Nets")
    parser.add_argument("--variant-width", type=int, default=4, help="base width of each per-modality U-Net")
    parser.add_argument("--depth", type=int, default=4, help="encoder blocks of every U-Net")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--passes", type=int, default=10, help="timed passes per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (make book gives each chapter 1)")
    parser.add_argument("--out", default="results/benchmarks/grouped_unet.json")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from lib.io import write_json
    from lib.models import GroupedUNet2D, UNet2D

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = args.modalities
    unets = [UNet2D(1, 1, base_width=args.variant_width, depth=args.depth) for _ in range(m)]
    grouped = GroupedUNet2D.from_unets(unets)
    shared = UNet2D(m, m, base_width=2 * args.variant_width, depth=args.depth)

    def looped(x):
        return torch.cat([unet(x[:, k:k + 1]) for k, unet in enumerate(unets)], dim=1)

    functions = {"looped": looped, "grouped": grouped, "shared": shared}
    x = torch.randn(args.batch, m, args.size, args.size)
    with torch.no_grad():
        difference = float((grouped(x) - looped(x)).abs().max())
    if difference > 1e-4:
        raise SystemExit(f"grouped and looped U-Nets disagree by {difference:.2e}: not the same function")

    def one_pass(f):
        f(x).square().mean().backward()

    seconds = {name: 0.0 for name in VARIANTS}
    for name in VARIANTS:
        one_pass(functions[name])  # warm-up
    started = time.perf_counter()
    for _ in range(args.rounds):
        for name in VARIANTS:
            begin = time.perf_counter()
            for _ in range(args.passes):
                one_pass(functions[name])
            seconds[name] += time.perf_counter() - begin
    passes = args.rounds * args.passes
    ms = {name: 1000 * seconds[name] / passes for name in VARIANTS}
    report = {
        "command": " ".join(sys.argv),
        "config": vars(args),
        "torch": torch.__version__,
        "max_abs_difference_grouped_vs_looped": difference,
        **{f"{name}_ms_per_pass": ms[name] for name in VARIANTS},
        "passes_each": passes,
        "grouped_speedup_over_looped": ms["looped"] / ms["grouped"],
        "grouped_cost_over_shared": ms["grouped"] / ms["shared"],
        "looped_cost_over_shared": ms["looped"] / ms["shared"],
        "total_seconds": time.perf_counter() - started,
    }
    print(f"per-modality field, {m} U-Nets of width {args.variant_width}, forward + backward of a batch of "
          f"{args.batch} at {args.size} px, {args.threads} thread(s): looped {ms['looped']:.1f} ms, grouped "
          f"{ms['grouped']:.1f} ms ({report['grouped_speedup_over_looped']:.2f}x faster); shared field of width "
          f"{2 * args.variant_width} {ms['shared']:.1f} ms (grouped costs {report['grouped_cost_over_shared']:.2f}x it, "
          f"looped {report['looped_cost_over_shared']:.2f}x)")
    write_json(args.out, report)
    print(f"wrote {args.out} ({report['total_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
