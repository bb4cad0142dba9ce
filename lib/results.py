"""What a chapter calls to leave its results: ``RunDir`` writes tables, figures, JSON and the
flat ``summary.json`` into the run's folder, atomically, and labels everything made from the
phantom as synthetic."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from lib import io, params as params_mod
from lib.paths import RESULTS_ROOT

SYNTHETIC_LABEL = "SYNTHETIC PHANTOM DATA (not patients)"


def is_synthetic(params: Mapping[str, Any]) -> bool:
    """The embedded phantom, or a folder that holds one (its phantom.json says so)."""
    if params.get("data_source") == "phantom":
        return True
    if not params.get("data_dir"):
        return False
    from lib.data.phantom import is_synthetic_folder
    from lib.paths import resolve

    return is_synthetic_folder(resolve(params["data_dir"]))


def data_label(params: Mapping[str, Any]) -> str:
    """How the book names the data a number came from."""
    if is_synthetic(params):
        return "this build, synthetic phantom"
    if "data_dir" not in params:
        return "this build, no data (random images)"
    return f"this build, {params.get('data_dir')}"


class RunDir:
    """The folder a chapter writes into (the runner's temporary folder during a run)."""

    def __init__(self, run_dir: str | Path | None, params: Mapping[str, Any]):
        if run_dir is None:  # run interactively, outside the runner
            run_dir = RESULTS_ROOT / params["study"] / "interactive" / params["name"]
        self.path = Path(run_dir)
        self.params = dict(params)
        self.path.mkdir(parents=True, exist_ok=True)
        self._data: tuple[str, bool] | None = None

    def data_from(self, label: str, synthetic: bool) -> None:
        """For a chapter with no data of its own that reads other runs: the data label and the
        synthetic flag its summary and figures carry are theirs."""
        self._data = (label, synthetic)

    @property
    def synthetic(self) -> bool:
        return self._data[1] if self._data else is_synthetic(self.params)

    @property
    def data_label(self) -> str:
        return self._data[0] if self._data else data_label(self.params)

    def sub(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def table(self, name: str, frame, index: bool = False) -> None:
        """``tables/<name>.csv`` (atomic). Returns None so a notebook cell ending with it shows nothing."""
        path = self.sub("tables", f"{name}.csv")
        with io.atomic_path(path) as tmp:
            frame.to_csv(tmp, index=index)

    def figure(self, name: str, fig, dpi: int = 110) -> None:
        """``figures/<name>.png`` (atomic); phantom figures get the synthetic label stamped on."""
        if self.synthetic:
            stamp_synthetic(fig)
        path = self.sub("figures", f"{name}.png")
        with io.atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")

    def json(self, name: str, obj: Any) -> Path:
        return io.write_json(self.sub(f"{name}.json"), obj)

    def checkpoint(self, name: str) -> Path:
        return self.sub("checkpoints", name)

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        """The run's key figures as one flat mapping of scalars (numbers, strings, bools, None)."""
        flat = {"data": self.data_label, "synthetic": self.synthetic}
        for key, value in summary.items():
            if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
                value = value.item()
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise TypeError(f"summary key '{key}': expected a scalar, got {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                value = None  # JSON has no NaN; None reads as "not defined"
            flat[key] = value
        return io.write_json(self.path / "summary.json", flat)


def slug(text: str) -> str:
    """A summary key from a label: lower case, runs of other characters as one underscore."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def stamp_synthetic(fig) -> None:
    """Write the synthetic-data label on a matplotlib figure (once)."""
    if getattr(fig, "_synthetic_stamped", False):
        return
    fig.text(0.5, -0.01, SYNTHETIC_LABEL, ha="center", va="top", fontsize=8, color="#b22222")
    fig._synthetic_stamped = True


def setup(params_file: str | Path, run_dir: str | Path | None = None, **overrides):
    """The first call of every chapter: validated parameters and the run folder."""
    params = params_mod.load(params_file, overrides or None)
    return params, RunDir(run_dir, params)
