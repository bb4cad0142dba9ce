"""Progress bars in executed notebooks, shown as a terminal would show them at the end.

A text progress bar (tqdm in a headless kernel) redraws itself with carriage returns and cursor-up
escapes; a notebook records every redraw, so one training cell carries thousands of stream outputs
(about 140 KB of text in a study A training cell) where a terminal shows a few lines. The runner replaces such
outputs by the final screen (`collapse_progress_streams`); the run's build log keeps every redraw.
A stream left holding only finished tqdm bars is shown as ordinary output (stdout): it reports
progress, not a problem, and the book would otherwise draw it in the colours of a warning.
Streams without a carriage return or cursor movement (plain prints, warnings) are left as they are.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\x1b\[(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]+|\x1b")
_PROGRESS = re.compile(r"\r|\x1b\[\d*[AB]")
# tqdm's default line: "<desc>: <pct>%|<bar>| <n>/<total> [<elapsed><<remaining>, <rate><postfix>]"
_FINISHED_BAR = re.compile(r"^[^\n]*\b100%\|[^\n]*\| (\d+)/\1 \[[^\n]*\]$")


def is_progress_text(text: str) -> bool:
    """True when ``text`` redraws lines (carriage return or cursor up/down), as progress bars do."""
    return bool(_PROGRESS.search(text))


def only_finished_bars(text: str) -> bool:
    """True when every line of ``text`` (a `final_screen`) is a tqdm bar at 100 % (n/n), so
    nothing in it is a message: no warning, no error, no bar cut short."""
    lines = text.splitlines()
    return bool(lines) and all(_FINISHED_BAR.match(line) for line in lines)


def final_screen(text: str) -> str:
    """The lines a terminal shows after printing ``text``: ``\\r`` returns to the line start and
    later characters overwrite, ``ESC[nA``/``ESC[nB`` move up/down, ``ESC[K``/``ESC[2K`` clear (to
    the end of) the line; other escapes are kept as text. Trailing blanks are stripped and lines left
    empty are dropped (a finished bar with ``leave=False`` blanks its line)."""
    lines, row, col = [""], 0, 0
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if match.group(2):
            count, code = int(match.group(1) or 1), match.group(2)
            if code == "A":
                row = max(0, row - count)
            elif code == "B":
                row += count
                lines.extend([""] * (row + 1 - len(lines)))
            elif code == "K":
                lines[row] = "" if match.group(1) == "2" else lines[row][:col]
            else:
                lines[row], col = _write(lines[row], col, token)
        elif token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        else:
            lines[row], col = _write(lines[row], col, token)
    kept = [line.rstrip() for line in lines]
    return "".join(line + "\n" for line in kept if line)


def _write(line: str, col: int, chunk: str) -> tuple[str, int]:
    line = line.ljust(col)
    return line[:col] + chunk + line[col + len(chunk):], col + len(chunk)


def collapse_progress_streams(nb) -> int:
    """In every code cell of ``nb`` (an nbformat node, changed in place), merge each run of
    consecutive stream outputs of one name (stdout or stderr) and, where the merged text redraws
    lines, replace it by its `final_screen`; a stderr stream whose final screen holds only finished
    bars (`only_finished_bars`) becomes stdout. Returns the number of stream outputs removed."""
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs, parts = [], []  # parts[i]: the texts merged into outputs[i] (joined once: no quadratic copying)
        for output in cell.get("outputs", []):
            previous = outputs[-1] if outputs else None
            if (output.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
                parts[-1].append(output["text"])
                removed += 1
            else:
                outputs.append(output)
                parts.append([output["text"]] if output.get("output_type") == "stream" else None)
        for output, texts in zip(outputs, parts):
            if texts is not None:
                text = "".join(texts)
                if is_progress_text(text):
                    text = final_screen(text)
                    if output.get("name") == "stderr" and only_finished_bars(text):
                        output["name"] = "stdout"
                output["text"] = text
        cell["outputs"] = [o for o in outputs if o.get("output_type") != "stream" or o["text"]]
        removed += len(outputs) - len(cell["outputs"])
    return removed
