"""RAM that study A's slice handling needs beyond the images themselves, before and after holding them once.

    python benchmarks/bench_slice_memory.py --out results/benchmarks/slice_memory.json

At the paper profile's size (BraTS 2020, 240 px, ~24 400 slices) the cohort's images are ~22 GB, so
every whole copy of them is ~22 GB of RAM. Each step below is measured both ways, in one run, each
in a fresh process (so one measurement's freed memory cannot hide the next one's), as the peak
resident set size above the resident set before the step (Linux /proc, VmHWM reset first),
divided by the bytes of the images the step works on:

* ``load``: `lib.data.slices.load_slices` without a cache, on a phantom cohort folder (``--cohort``,
  at ``--load-size`` px): the per-subject slices joined by ``np.concatenate`` (before) or copied
  into the result one subject at a time, each dropped once copied (now; `_concatenate_releasing`).
  The per-subject pieces must be larger than glibc's largest mmap threshold (32 MiB) for freed
  pieces to go back to the system, as at the paper's 240 px; the default size, 192 px, is.
* ``split``: the 8:2 hold-out by copying each side (`SliceSet.for_subjects`, before) or by
  reordering in place and returning views (`SliceSet.partition_by_subjects`, now).
* ``fold``: one Table I fold's training and validation slices on all four modalities, picked by
  subject and then by channel (two copies, before), or (now) the training slices as an
  `ImageSelection` that training gathers a batch at a time (`for_subjects(ids, modalities,
  copy_images=False)`) and the validation slices copied once; labels and masks are copied either way.
* ``renamed``: the renamed-modality cohort as a copy (`lib.study_a.data.renamed`, before) or by
  swapping two channels in place for a ``with`` block (`renamed_in_place`, now).

Except ``load``, the steps run on random slices made in memory (``--slices`` of ``--size`` px, 66
per subject, as BraTS's tumour slices per patient). The JSON (written atomically) gives, per step,
both peaks in multiples of the images and in MiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.rss import peak_rss_bytes, proc_status_bytes, reset_peak_rss  # noqa: E402

MODALITIES = ("flair", "t1", "t1ce", "t2")
STEPS = {"load": ("concatenate", "release as copied"), "split": ("copy", "partition in place"),
         "fold": ("two copies", "gathered in batches"), "renamed": ("copy", "swap in place")}
SLICES_PER_SUBJECT = 66


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=4000, help="random slices for split, fold and renamed")
    parser.add_argument("--size", type=int, default=128, help="their height and width")
    parser.add_argument("--cohort", default="data/phantom-default", help="cohort folder for the load step")
    parser.add_argument("--load-size", type=int, default=192, help="image_size of the load step")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--out", default="results/benchmarks/slice_memory.json")
    parser.add_argument("--probe", nargs=2, metavar=("STEP", "METHOD"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def random_slices(n: int, size: int):
    from lib.data.slices import SliceSet

    rng = np.random.default_rng(0)
    subjects = np.arange(n) // SLICES_PER_SUBJECT
    return SliceSet(images=rng.standard_normal((n, len(MODALITIES), size, size), dtype=np.float32),
                    labels=np.zeros((n, size, size), np.uint8), brain=np.ones((n, size, size), bool),
                    subject_ids=np.array([f"s{i:04d}" for i in subjects]), slice_index=np.arange(n),
                    grades=np.array(["HGG" if i % 5 else "LGG" for i in subjects], dtype=object),
                    modalities=MODALITIES)


def split_ids(slices, fraction: float):
    ids = sorted(set(slices.subject_ids.tolist()))
    cut = int(round(len(ids) * (1 - fraction)))
    return ids[:cut], ids[cut:]


def probe(args, step: str, method: str) -> dict:
    """Run one step one way in this (fresh) process; return its peak above the RSS before it."""
    from lib.data import slices as slices_module

    before_step = None
    if step == "load":
        if method == "concatenate":  # the join as it was: every piece and the result at once
            slices_module._concatenate_releasing = lambda chunks, empty: np.concatenate([empty] + chunks)
        work = lambda: slices_module.load_slices(args.cohort, MODALITIES, image_size=args.load_size,
                                                 slice_filter="brain", progress=False, cache_dir=None)
    else:
        data = random_slices(args.slices, args.size)
        if step == "split":
            train_ids, test_ids = split_ids(data, 0.2)
            work = ((lambda: (data.for_subjects(train_ids), data.for_subjects(test_ids))) if method == "copy"
                    else (lambda: data.partition_by_subjects(train_ids, test_ids)))
        elif step == "fold":
            fit_ids, val_ids = split_ids(data, 0.1)
            work = ((lambda: (data.for_subjects(fit_ids).select_modalities(MODALITIES),
                              data.for_subjects(val_ids).select_modalities(MODALITIES))) if method == "two copies"
                    else (lambda: (data.for_subjects(fit_ids, MODALITIES, copy_images=False),
                                   data.for_subjects(val_ids, MODALITIES))))
        else:
            from lib.study_a.data import StudyAData, renamed, renamed_in_place

            train_ids, test_ids = split_ids(data, 0.2)
            train, test = data.partition_by_subjects(train_ids, test_ids)
            cohort = StudyAData(train=train, test=test, train_ids=train_ids, test_ids=test_ids, target="ET",
                                synthetic=True)
            pair = ("t1ce", "flair")

            def in_place():
                with renamed_in_place(cohort, pair) as swapped:
                    return float(swapped.train.images[0, 0, 0, 0])

            work = (lambda: renamed(cohort, pair)) if method == "copy" else in_place
        before_step = data.images.nbytes
    if not reset_peak_rss() or proc_status_bytes("VmRSS") is None:
        raise SystemExit("this benchmark needs Linux's /proc/self/clear_refs and VmRSS")
    before = proc_status_bytes("VmRSS")
    result = work()
    peak = peak_rss_bytes() - before
    images = before_step if before_step is not None else result.images.nbytes
    return {"peak_mib": peak / 2**20, "images_mib": images / 2**20, "peak_per_images": peak / images}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args, *args.probe)))
        return 0
    if "load" in args.steps and not Path(args.cohort).is_dir():
        print(f"{args.cohort}: no cohort folder; skipping the load step (make data writes it)", file=sys.stderr)
        args.steps = [s for s in args.steps if s != "load"]
    passthrough = ["--slices", str(args.slices), "--size", str(args.size), "--cohort", args.cohort,
                   "--load-size", str(args.load_size)]
    results = {}
    for step in args.steps:
        results[step] = {}
        for method in STEPS[step]:
            out = subprocess.run([sys.executable, __file__, *passthrough, "--probe", step, method],
                                 check=True, capture_output=True, text=True)
            results[step][method] = json.loads(out.stdout.strip().splitlines()[-1])
        before, now = (results[step][m] for m in STEPS[step])
        print(f"{step:8s} {STEPS[step][0]:>12s} {before['peak_per_images']:5.2f}x   {STEPS[step][1]:>18s} "
              f"{now['peak_per_images']:5.2f}x  (images {before['images_mib']:.0f} MiB)")
    from lib.io import write_json

    write_json(args.out, {"benchmark": "slice memory", "slices": args.slices, "size": args.size,
                          "cohort": args.cohort, "load_size": args.load_size,
                          "measure": "peak RSS above the RSS before the step, in a fresh process, / bytes of the images",
                          "steps": {step: {"before": STEPS[step][0], "now": STEPS[step][1], **results[step]}
                                    for step in results}})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
