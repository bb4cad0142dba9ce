"""Where an executed chapter spent its time: papermill's per-cell durations, summed by section.

papermill records each executed cell's wall time in ``cell.metadata.papermill.duration``
(seconds). A chapter's sections are its markdown headings; this module sums the code cells'
durations under each heading of one level (deeper headings fold into the section above them), so
a reader can see which part of a page costs what in the build they are reading, and which
parameters to cut. A notebook executed another way (nbval, Jupyter by hand) has no durations: the
result is then empty, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lib.io import read_json

__all__ = ["BEFORE_FIRST_SECTION", "cell_seconds", "section_seconds"]

BEFORE_FIRST_SECTION = "(before the first section: parameters, imports, data)"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")  # an ATX heading; a closing run of # is dropped
_FENCE = re.compile(r"^\s*(```|~~~)")


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_seconds(cell: Mapping[str, Any]) -> float | None:
    """papermill's wall time of one executed cell in seconds; None when it has none (not run by papermill)."""
    duration = ((cell.get("metadata") or {}).get("papermill") or {}).get("duration")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        return None
    return float(duration)


def section_seconds(notebook: Mapping[str, Any] | str | Path, level: int = 2) -> pd.DataFrame:
    """Seconds of code-cell execution under each heading of ``level`` (``##`` by default), in page order.

    ``notebook``: an executed notebook as nbformat JSON (a mapping) or the path of an ``.ipynb``.
    A markdown line ``#``×``level`` starts a section; deeper headings belong to the section they
    are in; code cells before the first such heading go to :data:`BEFORE_FIRST_SECTION`. Two
    sections with the same title are summed into one row (at the place of the first).
    Columns: ``section``, ``seconds`` (sum of papermill durations), ``code_cells``, ``timed_cells``
    (code cells with a duration). Empty (same columns) when no code cell has a duration.
    """
    if not 1 <= level <= 6:
        raise ValueError(f"heading level must be 1..6, got {level}")
    if not isinstance(notebook, Mapping):
        path = Path(notebook)
        try:
            notebook = read_json(path)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise ValueError(f"{path}: not a readable notebook ({type(err).__name__})") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError("a notebook needs a list of 'cells'")
    totals: dict[str, list[float]] = {}
    section = BEFORE_FIRST_SECTION
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            fenced = False  # a '#' line inside a fenced code block is code, not a heading
            for line in _source(cell).splitlines():
                if _FENCE.match(line):
                    fenced = not fenced
                    continue
                match = None if fenced else _HEADING.match(line)
                if match and len(match.group(1)) == level and match.group(2):
                    section = match.group(2)
            continue
        if cell.get("cell_type") != "code":
            continue
        seconds = cell_seconds(cell)
        row = totals.setdefault(section, [0.0, 0, 0])
        row[1] += 1
        if seconds is not None:
            row[0] += seconds
            row[2] += 1
    table = pd.DataFrame([(name, s, int(n), int(t)) for name, (s, n, t) in totals.items()],
                         columns=["section", "seconds", "code_cells", "timed_cells"])
    if not table["timed_cells"].any():
        return table.iloc[0:0]
    return table
