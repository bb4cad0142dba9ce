"""Study A across its three targets: the paper's Table I and Table II in their own layout, the
verdicts side by side, and Figure 7's panels (A)-(C), assembled from finished study A runs.

Nothing here trains or selects anything: every cell is read from a run's own tables and
``summary.json`` (one run per target, ``results/study_a/<name>/``), and the paper's numbers
(``lib.paper_numbers``) stand beside them under their own label. A run is read only when its
folder is a finished result: a ``manifest.json`` that says ``complete`` (the runner writes it last,
after everything else is in place). A folder without any manifest (a chapter executed by nbval or
by hand) is read too, and its provenance says so; a folder whose manifest is not complete is never read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from lib.io import read_json
from lib.notebook_times import section_seconds
from lib.paper_numbers import SOURCE_STUDY_A, STUDY_A_TABLE_I, STUDY_A_TABLE_II
from lib.paths import display, resolve
from lib.results import slug
from lib.stats import mean_sd
from lib.study_a.comparison import METRIC_LABELS
from lib.study_a.ode import with_target

TARGETS = ("ET", "TC", "WT")
FIGURE_7_PANELS = {"ET": "(A) ET", "TC": "(B) TC", "WT": "(C) WT"}  # the paper's panel letters
# Table I's three columns, as this build's table-i.csv names them (role prefix) and as the paper
# prints them (its own header per target block, kept in paper_numbers).
TABLE_I_ROLES = (("baseline", "all four modalities"), ("paper key", "the paper's key modalities"),
                 ("paper complement", "their complement"))


class SourceRunError(ValueError):
    """A study A run named as a source cannot be read; ``str(err)`` is one line naming the folder."""


@dataclass
class TargetRun:
    """One finished study A run: its folder, ``summary.json``, manifest (None when it has none)."""

    target: str
    path: Path
    summary: dict[str, Any]
    manifest: dict[str, Any] | None
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> pd.DataFrame:
        """``tables/<name>.csv`` of the run (read once)."""
        if name not in self._tables:
            path = self.path / "tables" / f"{name}.csv"
            try:
                self._tables[name] = pd.read_csv(path)
            except (OSError, ValueError) as err:
                raise SourceRunError(f"{display(path)}: cannot read this study A table ({type(err).__name__}); "
                                     "re-run the target's page") from None
        return self._tables[name]

    def has_table(self, name: str) -> bool:
        return (self.path / "tables" / f"{name}.csv").is_file()

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.table("ode-test-scores-per-patient")["seed"].unique())


def load_target_run(target: str, folder: str | Path) -> TargetRun:
    """Read the study A run in ``folder`` (relative to the repository or absolute) for ``target``.

    Raises SourceRunError (one line naming the folder) when the folder is missing, its manifest is
    not ``complete`` or unreadable, it has no ``summary.json``, or the run is of another target."""
    path = resolve(folder)
    where = display(path)
    if not path.is_dir():
        raise SourceRunError(f"{where}: no such run folder (run the {target} page of study A first)")
    manifest = None
    if (path / "manifest.json").exists():
        try:
            manifest = read_json(path / "manifest.json")
        except (OSError, ValueError) as err:
            raise SourceRunError(f"{where}/manifest.json: unreadable ({type(err).__name__})") from None
        if not isinstance(manifest, dict) or manifest.get("status") != "complete":
            raise SourceRunError(f"{where}/manifest.json: the run is not complete; an unfinished run is never read")
    try:
        summary = read_json(path / "summary.json")
    except FileNotFoundError:
        raise SourceRunError(f"{where}: no summary.json (the run did not finish)") from None
    except (OSError, ValueError) as err:
        raise SourceRunError(f"{where}/summary.json: unreadable ({type(err).__name__})") from None
    if manifest is not None and manifest.get("study") != "study_a":
        raise SourceRunError(f"{where}: a run of {manifest.get('study')!r}, not of study A")
    if summary.get("target") != target:
        raise SourceRunError(f"{where}: a run of target {summary.get('target')!r}, named as the {target} run")
    return TargetRun(target, path, summary, manifest)


def load_target_runs(folders: Mapping[str, str | Path]) -> dict[str, TargetRun]:
    """``{target: folder}`` -> ``{target: TargetRun}`` in the order ET, TC, WT."""
    unknown = [t for t in folders if t not in TARGETS]
    if unknown:
        raise SourceRunError(f"{unknown[0]!r} is not a study A target ({', '.join(TARGETS)})")
    return {t: load_target_run(t, folders[t]) for t in TARGETS if t in folders}


def data_sources(runs: Mapping[str, TargetRun]) -> tuple[str, bool]:
    """The data label every run gives (``'; '``-joined when they differ) and whether any is synthetic."""
    labels = list(dict.fromkeys(str(r.summary.get("data")) for r in runs.values()))
    return "; ".join(labels), any(bool(r.summary.get("synthetic")) for r in runs.values())


def provenance(runs: Mapping[str, TargetRun]) -> pd.DataFrame:
    """Where each target's numbers come from: folder, parameters, commit, when, on what."""
    rows = []
    for target, run in runs.items():
        m = run.manifest or {}
        git = m.get("git") or {}
        finished = (m.get("timings") or {}).get("finished")
        env = m.get("environment") or {}
        kernels = env.get("cpu_kernels") or {}
        commit = git.get("commit")
        rows.append({
            "target": target, "run folder": display(run.path),
            "parameters": m.get("params_file", "no manifest (not a runner result)"),
            "overrides": "; ".join(f"{k}={v}" for k, v in (m.get("overrides") or {}).items()) or "none",
            "profile": m.get("profile", "—"), "data": run.summary.get("data"),
            "commit": (commit[:10] + (" (uncommitted changes)" if git.get("dirty") else "")) if commit else "—",
            "finished (UTC)": (dt.datetime.fromtimestamp(finished, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
                               if finished is not None else "—"),
            "ODE seeds": run.summary.get("seeds"),
            "minutes": run.summary.get("minutes"),
            "device": env.get("cuda") or (f"CPU ({kernels.get('model', '?')}, {kernels.get('capability', '?')})"
                                          if kernels else "—"),
        })
    return pd.DataFrame(rows)


def mismatches(runs: Mapping[str, TargetRun]) -> list[str]:
    """What differs between the runs that a reader comparing targets should know (empty: nothing)."""
    notes = []
    for what, get in (("profiles", lambda r: (r.manifest or {}).get("profile")),
                      ("data", lambda r: r.summary.get("data")),
                      # the cohort's own: a run with tumour-free-twin rows hashes its twin in too
                      ("data fingerprints", lambda r: (r.manifest or {}).get(
                          "cohort_fingerprint", (r.manifest or {}).get("data_fingerprint"))),
                      ("commits", lambda r: ((r.manifest or {}).get("git") or {}).get("commit"))):
        values = {t: get(r) for t, r in runs.items()}
        if len(set(values.values())) > 1:
            notes.append(f"the runs differ in their {what}: "
                         + ", ".join(f"{t} {str(v)[:12] if v is not None else '—'}" for t, v in values.items()))
    missing = [t for t in TARGETS if t not in runs]
    if missing:
        notes.append(f"no run for {', '.join(missing)}")
    return notes


def folds_line(runs: Mapping[str, TargetRun]) -> str:
    """How many cross-validation folds each run's Table I used (its manifest's ``cv_folds``;
    "unknown" without a manifest), beside the paper's 10: the sd over folds depends on it."""
    folds = {t: ((r.manifest or {}).get("params") or {}).get("cv_folds") for t, r in runs.items()}
    return ("Cross-validation folds of this build's Table I: "
            + ", ".join(f"{t} {k if k is not None else 'unknown'}" for t, k in folds.items()) + " (the paper: 10).")


def table_one_across_targets(runs: Mapping[str, TargetRun], data_label: str) -> pd.DataFrame:
    """The paper's Table I layout for every target: rows (target, inputs / metric), columns the
    three input sets (all four, the paper's key modalities, their complement), each with this
    build's cell and the paper's printed cell. "*": Wilcoxon p < alpha on Dice against the
    baseline (this build: paired by patient, see the target's page; the paper: its own test)."""
    rows = {}
    for target, run in runs.items():
        ours = run.table("table-i").set_index("metric")
        paper = STUDY_A_TABLE_I[target]
        block: dict[str, dict[str, str]] = {}
        for i, (role, label) in enumerate(TABLE_I_ROLES):
            columns = [c for c in ours.columns if c.split(": ", 1)[0] == role]
            if len(columns) != 1:
                raise SourceRunError(f"{display(run.path / 'tables' / 'table-i.csv')}: expected one column "
                                     f"'{role}: <inputs>', found {len(columns)}")
            block[(label, data_label)] = {"inputs": columns[0].split(": ", 1)[1],
                                          **{m: ours.loc[m, columns[0]] for m in METRIC_LABELS.values()}}
            block[(label, SOURCE_STUDY_A)] = {"inputs": paper["inputs"][i],
                                              **{m: paper[m][i] for m in METRIC_LABELS.values()}}
        for column, cells in block.items():
            for row, value in cells.items():
                rows.setdefault((target, row), {})[column] = value
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["target", ""])
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["inputs", "source"])
    return table


def table_two_across_targets(runs: Mapping[str, TargetRun], data_label: str) -> pd.DataFrame:
    """The paper's Table II (the neural ODE on the test set), one column per target and source.

    This build: each seed's mean over test patients (Dice and sensitivity over patients with some
    target, accuracy and specificity over all, as on the target's page), then mean ± sd over the
    seeds; the paper's single model beside it."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for target, run in runs.items():
        scores = run.table("ode-test-scores-per-patient")
        has_target = with_target(scores)
        per_seed = {
            "Dice": has_target.groupby("seed")["dice"].mean(),
            "Accuracy (%)": 100 * scores.groupby("seed")["accuracy"].mean(),
            "Sensitivity": has_target.groupby("seed")["sensitivity"].mean(),
            "Specificity": scores.groupby("seed")["specificity"].mean(),
        }
        seeds = sorted(scores["seed"].unique())
        n = len(seeds)
        column = (f"{data_label}: seed {int(seeds[0])}" if n == 1  # no spread over one seed: its value alone
                  else f"{data_label}: mean ± sd over {n} seeds")
        cells[(target, column)] = {metric: _seed_cell(values.reindex(seeds)) for metric, values in per_seed.items()}
        cells[(target, SOURCE_STUDY_A)] = {k: f"{v:.3f}" for k, v in STUDY_A_TABLE_II[target].items()}
    table = pd.DataFrame(cells)
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["target", "source"])
    return table


def _seed_cell(values: pd.Series) -> str:
    """One seed's value, or mean ± sd over the seeds that have one; a seed without one (no test
    patient with the target) is named, not silently averaged away."""
    present = values.dropna()
    if present.empty:
        return "— (no test patient with the target)"
    if len(values) == 1:
        return f"{float(present.iloc[0]):.3f}"
    text = mean_sd(present.to_numpy())
    return text if len(present) == len(values) else f"{text} ({len(present)} of {len(values)} seeds)"


def verdict_matrix(runs: Mapping[str, TargetRun]) -> pd.DataFrame:
    """Every measure's verdict for every target, "verdict (seeds agreeing)", rows in the order the
    target pages list them; the first row is each target's reference (the phantom's planted truth,
    or on real data the paper's key modalities). An empty cell: that page has no such row."""
    order: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    for target, run in runs.items():
        verdict = run.table("verdict")
        reference = next(c for c in verdict.columns if c.startswith("reference"))
        cells.setdefault(reference, {})[target] = str(verdict[reference].iloc[0]) if len(verdict) else "—"
        for _, row in verdict.iterrows():
            measure = row["measure"]
            if measure not in order:
                order.append(measure)
            agreeing = str(row["seeds agreeing"])
            cells.setdefault(measure, {})[target] = (f"{row['verdict']} ({agreeing})" if agreeing not in ("—", "nan")
                                                     else str(row["verdict"]))
    references = [k for k in cells if k.startswith("reference")]
    table = pd.DataFrame.from_dict({k: cells[k] for k in references + order}, orient="index")
    table = table.reindex(columns=[t for t in TARGETS if t in runs]).fillna("")
    table.index.name = "measure"
    return table


def renamed_matrix(runs: Mapping[str, TargetRun]) -> pd.DataFrame:
    """The permutation check side by side: for every measure and target, what the measure did on
    the cohort whose two modality files were renamed ("follows the contrast", "follows the channel
    name/position", ...), on the whole key and on the renamed pair alone (the target pages' verdict
    columns "renamed a↔b" and "renamed, on a+b only"). Rows in the pages' order; empty where a
    page has no such row; no columns for a target whose run skipped the check."""
    order: list[str] = []
    cells: dict[str, dict[tuple[str, str], str]] = {}
    for target, run in runs.items():
        verdict = run.table("verdict")
        columns = [c for c in verdict.columns if c.startswith("renamed")]  # whole key, then the pair alone
        for _, row in verdict.iterrows():
            for column in columns:
                if str(row[column]) in ("", "nan", "—"):  # not applicable to this measure
                    continue
                if row["measure"] not in order:
                    order.append(row["measure"])
                cells.setdefault(row["measure"], {})[(target, column)] = str(row[column])
    if not cells:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict({m: cells[m] for m in order}, orient="index").fillna("")
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["target", "renamed files"])
    table.index.name = "measure"
    return table


VERDICT_OUTCOMES = ("agrees", "partly", "disagrees", "no verdict")


def verdict_counts(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per target: how many measures (rows other than the reference, cells not empty) agree,
    partly agree, disagree, give no verdict, or end otherwise ("other": e.g. "not discriminative")."""
    rows = matrix[~matrix.index.str.startswith("reference")]
    counts = {}
    for target in rows.columns:
        outcomes = [str(v).split(" (")[0] for v in rows[target] if str(v)]
        counts[target] = {o: outcomes.count(o) for o in VERDICT_OUTCOMES}
        counts[target]["other"] = len(outcomes) - sum(counts[target].values())
    return pd.DataFrame(counts).T.rename_axis("target")


def acc_curves(runs: Mapping[str, TargetRun], seeds: Sequence[int] | None = None) -> dict[tuple[str, int], pd.DataFrame]:
    """``{(target, seed): ACC curves (t, modality, mean, sd, n)}`` for Figure 7's panels, for
    ``seeds`` (default: every seed each run has)."""
    out = {}
    for target, run in runs.items():
        for seed in (seeds if seeds is not None else run.seeds):
            name = f"acc-curves-seed{seed}"
            if run.has_table(name):
                out[(target, seed)] = run.table(name)
    return out


def measure_rows(matrix: pd.DataFrame, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{measure: {target: cell}}`` for those of ``names`` the matrix has (for the closing text)."""
    return {n: matrix.loc[n].to_dict() for n in names if n in matrix.index}


ALL_CELLS = "all cells"
RUN_WALL_TIME = "run wall time (manifest)"
BESIDE_ANOTHER = "of it beside another of these runs"


def _run_interval(run: TargetRun) -> tuple[float, float] | None:
    timings = (run.manifest or {}).get("timings") or {}
    started, finished = timings.get("started"), timings.get("finished")
    if not isinstance(started, (int, float)) or not isinstance(finished, (int, float)) or finished < started:
        return None
    return float(started), float(finished)


def overlap_seconds(interval: tuple[float, float], others: Sequence[tuple[float, float]]) -> float:
    """Length of ``interval`` covered by at least one of ``others`` (intervals as (start, end))."""
    start, end = interval
    pieces = sorted((max(s, start), min(e, end)) for s, e in others if min(e, end) > max(s, start))
    covered, reach = 0.0, start
    for s, e in pieces:
        if e > reach:
            covered += e - max(s, reach)
            reach = e
    return covered


def time_by_section(runs: Mapping[str, TargetRun]) -> pd.DataFrame:
    """Minutes each target's page spent per section (rows, in page order; targets as columns).

    Read from each run's executed notebook (``notebook.ipynb``): papermill's per-cell durations
    summed under each ``##`` heading (`lib.notebook_times.section_seconds`). Below the sections:
    ``ALL_CELLS``; then, from the run's manifest, ``RUN_WALL_TIME`` (start to finish of the run,
    including the kernel's start and the result's writing) and ``BESIDE_ANOTHER`` (how much of it
    overlapped the run of another target named here: then they shared the CPU). A run without an
    executed notebook with durations (nbval, Jupyter by hand) has no column; the table is empty when
    no run has one."""
    columns, order = {}, []
    for target, run in runs.items():
        path = run.path / "notebook.ipynb"
        try:
            sections = section_seconds(path) if path.is_file() else pd.DataFrame()
        except ValueError:
            raise SourceRunError(f"{display(path)}: not a readable notebook; re-run the {target} page") from None
        if sections.empty:
            continue
        columns[target] = dict(zip(sections["section"], sections["seconds"] / 60))
        order += [s for s in sections["section"] if s not in order]
    if not columns:
        return pd.DataFrame()
    table = pd.DataFrame(columns, index=pd.Index(order, name="section"))
    table.loc[ALL_CELLS] = table.sum(min_count=1)
    intervals = {t: _run_interval(r) for t, r in runs.items()}
    for target in table.columns:
        own = intervals.get(target)
        if own is None:
            continue
        others = [i for t, i in intervals.items() if t != target and i is not None]
        table.loc[RUN_WALL_TIME, target] = (own[1] - own[0]) / 60
        table.loc[BESIDE_ANOTHER, target] = overlap_seconds(own, others) / 60
    return table


def thread_note(runs: Mapping[str, TargetRun]) -> str:
    """One sentence on what the runs ran on (their manifests): torch threads and the machine's CPUs/GPU."""
    parts = []
    for target, run in runs.items():
        m = run.manifest or {}
        env = m.get("environment") or {}
        threads = (m.get("params") or {}).get("num_threads")
        where = env.get("cuda") or (f"{env['cpu_count']} CPU cores" if env.get("cpu_count") else "an unrecorded machine")
        parts.append((target, "no manifest" if not m else f"{threads if threads is not None else '?'} torch "
                      f"thread{'' if threads == 1 else 's'} on {where}"))
    if not parts:
        return ""
    if len({p for _, p in parts}) == 1:
        return f"Each run: {parts[0][1]}."
    return "; ".join(f"{t}: {p}" for t, p in parts) + "."


def longest_sections(section_minutes: pd.DataFrame) -> dict[str, tuple[str, float, float, float]]:
    """``{target: (section, minutes, share of all cells, minutes of all cells)}``: the section of each
    page that took longest in :func:`time_by_section`'s table (targets without timings are left out)."""
    out = {}
    sections = section_minutes.drop(index=[ALL_CELLS, RUN_WALL_TIME, BESIDE_ANOTHER], errors="ignore")
    for target in sections.columns:
        minutes = sections[target].dropna()
        total = section_minutes.at[ALL_CELLS, target] if ALL_CELLS in section_minutes.index else float("nan")
        if minutes.empty or not total > 0:
            continue
        out[target] = (str(minutes.idxmax()), float(minutes.max()), float(minutes.max() / total), float(total))
    return out


# The verdicts the summary page's findings name, by summary.json stem (lib.study_a.measures).
FINDING_MEASURES = {"acc": "the paper's reading of the ACC (Eq. 6–7 as printed)", "occlusion": "occlusion",
                    "attribution": "integrated gradients", "subset_unet": "the U-Net subset comparison (Table I)"}
INDEPENDENT_MEASURES = ("occlusion", "attribution", "subset_unet")


def findings(runs: Mapping[str, TargetRun], counts: pd.DataFrame,
             section_minutes: pd.DataFrame) -> tuple[dict[str, Any], list[str]]:
    """The summary page's ``summary.json`` and closing lines, read from each target's
    ``summary.json``, :func:`verdict_counts` and :func:`time_by_section`.

    Per target: the verdict of each measure of :data:`FINDING_MEASURES` (with its seeds agreeing)
    and how many of its measures end in each outcome. Across targets: those where the paper's
    explanation holds against the reference (the printed ACC rule agrees in every seed *and* Table I
    agrees) and those where every independent measure (:data:`INDEPENDENT_MEASURES`) agrees; then
    each page's longest section. A verdict missing from a target's ``summary.json`` is said to be
    missing, never counted as agreeing."""
    summary: dict[str, Any] = {"targets": "+".join(runs)}
    for target, row in counts.iterrows():
        for outcome, n in row.items():
            summary[f"{target.lower()}_measures_{slug(outcome)}"] = int(n)
    lines = []
    for target, r in runs.items():
        s = r.summary
        for short in FINDING_MEASURES:
            summary[f"{target.lower()}_{short}_verdict"] = s.get(f"{short}_verdict")
        parts = []
        for short, name in FINDING_MEASURES.items():
            verdict, agreeing = s.get(f"{short}_verdict"), s.get(f"{short}_seeds_agreeing")
            if verdict is None:
                parts.append(f"{name}: no verdict in its summary.json")
            else:
                parts.append(f"{name}: **{verdict}**" + (f" ({agreeing} seeds)" if agreeing not in (None, "—") else ""))
        c = counts.loc[target]
        seeds = s.get("seeds")
        lines.append(f"- **{target}** (reference {s.get('reference')}; {seeds} ODE seed{'s' if seeds != 1 else ''}, "
                     f"mean test Dice {s.get('ode_test_dice_mean', float('nan')):.3f}): " + "; ".join(parts)
                     + f". Of its {int(c.sum())} measures, {c['agrees']} agree, {c['partly']} partly, "
                     f"{c['disagrees']} disagree, {c['no verdict']} give no verdict"
                     + (f" and {c['other']} another outcome" if c["other"] else "") + ".")
    holds = [t for t, r in runs.items() if r.summary.get("acc_verdict") == "agrees"
             and r.summary.get("subset_unet_verdict") == "agrees"]
    independent = [t for t, r in runs.items()
                   if all(r.summary.get(f"{k}_verdict") == "agrees" for k in INDEPENDENT_MEASURES)]
    lines.append(f"- The paper's explanation (the ACC names each target's key modalities, and Table I confirms them) "
                 f"holds against the reference, with the printed ACC rule agreeing in every seed and Table I agreeing, "
                 f"for: **{', '.join(holds) or 'no target'}** of {len(runs)} target{'s' if len(runs) != 1 else ''}.")
    lines.append(f"- Every independent measure (occlusion, integrated gradients and Table I) agrees with the reference "
                 f"for: **{', '.join(independent) or 'no target'}**.")
    for target, (section, minutes, share, total) in longest_sections(section_minutes).items():
        summary[f"{target.lower()}_minutes_all_cells"] = round(total, 2)
        summary[f"{target.lower()}_longest_section"] = section
        lines.append(f"- The {target} page's cells took {total:.1f} min in this build, {minutes:.1f} of them ({share:.0%}) "
                     f"in *{section}*.")
    summary["paper_explanation_holds_for"] = "+".join(holds) or "none"
    summary["independent_measures_agree_for"] = "+".join(independent) or "none"
    return summary, lines
