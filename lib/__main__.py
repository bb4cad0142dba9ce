"""Command line: ``python -m lib COMMAND ...``.

  phantom   write the synthetic phantom cohort (BraTS 2020 layout)
  validate  check a BraTS folder before any work (exit 1 on problems)
  run       execute chapter(s) with parameter file(s) into results/<study>/<name>/
  prepare   write a chapter with parameters injected, not executed (for nbval)
  cohort    generate (phantom) or check the cohort of a parameter file
  prepare-smoke  prepare every chapter on the smoke profile into build/smoke
  book      run every chapter of params/book.yml and build the HTML book
  check-book  check the built HTML book: every page there, offline, from complete runs, labelled
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def _overrides(items: list[str] | None) -> dict:
    from lib.params import parse_overrides

    return parse_overrides(items)


def cmd_run(args) -> int:
    from lib import runner

    overrides = _overrides(args.set)
    from lib import params as params_mod

    for params_file in args.params:  # a batch checks every file before its first run, not an hour in
        runner.check_chapter_study(Path(args.script), params_mod.load(params_file, overrides), params_file)
    restore = runner.stop_on_sigterm()  # `kill` stops the kernel and cleans up, as Ctrl-C does
    try:
        for params_file in args.params:
            runner.run(args.script, params_file, overrides, force=args.force, book_page=args.page)
    finally:
        restore()
    return 0


def cmd_prepare(args) -> int:
    from lib import runner

    out = runner.prepare_notebook(args.script, args.params, args.out, _overrides(args.set))
    print(f"prepared {out}")
    return 0


def cmd_prepare_smoke(args) -> int:
    from lib import runner
    from lib.paths import REPO_ROOT

    runner.prepare_book(REPO_ROOT / args.plan, "smoke", Path(args.out))
    return 0


def cmd_cohort(args) -> int:
    from lib import params as params_mod
    from lib.data.cohort import CohortError, prepare_cohort
    from lib.paths import display

    params = params_mod.load(args.params, _overrides(args.set))
    if "data_dir" not in params:  # a page that reads no data (study A's summary and cost pages)
        raise CohortError(f"{args.params}: names no cohort (no key 'data_dir')")
    cohort = prepare_cohort(params)
    kind = "synthetic phantom" if cohort.synthetic else "folder"
    print(f"cohort ready: {display(cohort.root)} ({kind}, {len(cohort.subjects)} subjects, "
          f"fingerprint {cohort.fingerprint[:12]})")
    return 0


def build_book() -> int:
    """``jupyter-book build book`` (book/_config.yml and book/_toc.yml link to the top-level files)."""
    from lib.paths import REPO_ROOT

    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", "book"]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO_ROOT)


def check_book() -> int:
    from lib.book_check import main as check_book_main

    return check_book_main([])


def cmd_book(args) -> int:
    from lib import runner
    from lib.paths import REPO_ROOT

    if args.jobs is None:
        args.jobs = runner.default_jobs(args.profile)
    if args.dry_run:
        status = runner.book_status(REPO_ROOT / args.plan, profile=args.profile, jobs=args.jobs,
                                    overrides=_overrides(args.set))
        for page, reasons in status:
            state = ("up to date" if not reasons else
                     ("cannot run: " if runner.cannot_run(reasons) else "will run: ") + "; ".join(reasons))
            print(f"{page}: {state}")
        stale = sum(bool(reasons) for _, reasons in status)
        print(f"{stale} of {len(status)} page(s) would run or cannot (--force runs them all)")
        return 0
    restore = runner.stop_on_sigterm()  # `kill` stops the run going as Ctrl-C does (with --jobs 1 too)
    try:
        runner.run_book(REPO_ROOT / args.plan, profile=args.profile, force=args.force, jobs=args.jobs,
                        overrides=_overrides(args.set))
    finally:
        restore()
    if args.no_build:
        return 0
    return build_book() or check_book()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("phantom", help="write the synthetic phantom cohort", add_help=False)
    sub.add_parser("validate", help="check a BraTS folder", add_help=False)
    sub.add_parser("check-book", help="check the built HTML book (exit 1 on problems)", add_help=False)

    p = sub.add_parser("run", help="execute chapter(s) with parameter file(s)")
    p.add_argument("script", help="chapter, e.g. book/study_a.py")
    p.add_argument("--params", nargs="+", required=True, help="one or more parameter files (a batch)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter (YAML value)")
    p.add_argument("--force", action="store_true", help="re-run even if inputs are unchanged")
    p.add_argument("--page", help="also publish the executed notebook as book/<PAGE>.ipynb")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("prepare", help="inject parameters without executing (for nbval)")
    p.add_argument("script")
    p.add_argument("--params", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("prepare-smoke", help="prepare every chapter of the book plan on the smoke profile")
    p.add_argument("--plan", default="params/book.yml")
    p.add_argument("--out", default="build/smoke")
    p.set_defaults(func=cmd_prepare_smoke)

    p = sub.add_parser("cohort", help="generate (phantom) or check the cohort named by a parameter file")
    p.add_argument("--params", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_cohort)

    p = sub.add_parser("book", help="run every chapter in the book plan and build the HTML book")
    p.add_argument("--plan", default="params/book.yml")
    p.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-build", action="store_true", help="run the chapters only")
    p.add_argument("--dry-run", action="store_true",
                   help="say which pages would run and why (what changed since their results), run nothing")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs at a time, each with CPUs/JOBS torch threads (entries marked 'alone' run by "
                        "themselves); default 3, or 1 on the paper profile (lib.runner.default_jobs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a parameter on every page that has it (e.g. data_dir=/data/BraTS2020/...; "
                        "num_threads replaces the CPUs/JOBS share)")
    p.set_defaults(func=cmd_book)

    argv = list(sys.argv[1:] if argv is None else argv)
    # phantom and validate own their argument parsing.
    if argv and argv[0] == "phantom":
        from lib.data.phantom import main as phantom_main

        return phantom_main(argv[1:])
    if argv and argv[0] == "validate":
        from lib.data.validate import main as validate_main

        return validate_main(argv[1:])
    if argv and argv[0] == "check-book":
        from lib.book_check import main as check_book_main

        return check_book_main(argv[1:])

    args = parser.parse_args(argv)
    from lib.data.cohort import CohortError
    from lib.data.validate import InvalidCohortError
    from lib.params import ParamsError
    from lib.io import os_error_line
    from lib.runner import RunError

    try:
        return args.func(args)
    except (ParamsError, RunError, CohortError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except InvalidCohortError as err:
        print(f"error: invalid cohort, {len(err.problems)} problem(s), one line each:\n{err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a folder that cannot be written: name the path, no traceback
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A book or a batch keeps the results of the runs that finished before the interruption.
        several = args.command == "book" or (args.command == "run" and len(args.params) > 1)
        print("interrupted: " + ("the runs that finished are kept; for the others " if several else "")
              + "no result was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
