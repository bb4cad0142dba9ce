"""How a benchmark script ends: its run time recorded, its report written, where it went said."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], out: str | Path, started: float) -> dict[str, Any]:
    """Add ``total_seconds`` (since ``started``, a ``time.perf_counter()`` reading), write ``report``
    as JSON to ``out`` (atomically, ``lib.io.write_json``) and print where; returns ``report``."""
    from lib.io import write_json

    report["total_seconds"] = time.perf_counter() - started
    write_json(out, report)
    print(f"wrote {out} ({report['total_seconds']:.0f} s)")
    return report
