"""Study A across targets (lib.study_a.across_targets): the paper's tables and the verdicts of
three hand-made target runs, whose every number is known; and which folders may be read."""

import json

import pandas as pd
import pytest

from lib.paper_numbers import SOURCE_STUDY_A
from lib.study_a import across_targets as A

LABEL = "this build, synthetic phantom"
INPUTS = {"ET": ("t1ce", "t1+t2+flair"), "TC": ("t1ce", "t1+t2+flair"), "WT": ("t2+flair", "t1+t1ce")}


def make_run(folder, target, *, dice=(0.8, 0.7, 0.3), verdicts=None, seeds=(0, 1), manifest="complete",
             commit="a" * 40, fingerprint="f1"):
    """A study A run folder as the chapter leaves it, with hand-picked numbers."""
    tables = folder / "tables"
    tables.mkdir(parents=True)
    key, comp = INPUTS[target]
    pd.DataFrame({"metric": ["Dice", "Accuracy (%)", "Sensitivity", "Specificity"],
                  "baseline: t1+t1ce+t2+flair": [f"{dice[0]:.3f} ± 0.010", "99.000 ± 0.100", "0.900 ± 0.010",
                                                 "0.999 ± 0.001"],
                  f"paper key: {key}": [f"{dice[1]:.3f} ± 0.020*", "98.000 ± 0.100", "0.800 ± 0.010", "0.998 ± 0.001"],
                  f"paper complement: {comp}": [f"{dice[2]:.3f} ± 0.030*", "97.000 ± 0.100", "0.400 ± 0.010",
                                                "0.997 ± 0.001"],
                  "this run's key: t1": ["0.100 ± 0.000*", "1", "1", "1"]}).to_csv(tables / "table-i.csv", index=False)
    verdicts = verdicts or [("ACC, Eq. 6-7 as printed (paper's rule)", "1/2", "partly"),
                            ("occlusion", "2/2", "agrees"), ("U-Net subset comparison (Table I)", "—", "agrees")]
    pd.DataFrame([{"target": target, "measure": m, "reference (planted truth of the phantom)": "+".join(INPUTS[target][:1]),
                   "key modalities (seeds)": "x", "seeds agreeing": a, "verdict": v} for m, a, v in verdicts]
                 ).to_csv(tables / "verdict.csv", index=False)
    # two patients per seed; patient p2 has no target (excluded from Dice and sensitivity)
    rows = []
    for i, seed in enumerate(seeds):
        rows += [{"subject": "p1", "dice": 0.6 + 0.2 * i, "accuracy": 0.99, "sensitivity": 0.5 + 0.2 * i,
                  "specificity": 0.998, "target_pixels": 10, "seed": seed},
                 {"subject": "p2", "dice": 0.0, "accuracy": 0.97, "sensitivity": 0.0, "specificity": 0.996,
                  "target_pixels": 0, "seed": seed}]
    pd.DataFrame(rows).to_csv(tables / "ode-test-scores-per-patient.csv", index=False)
    for seed in seeds:
        pd.DataFrame({"t": [0.0, 1.0] * 2, "modality": ["t1", "t1", "t1ce", "t1ce"], "mean": [0.1, 0.2, 0.3, 0.9],
                      "sd": [0.01] * 4, "n": [5] * 4}).to_csv(tables / f"acc-curves-seed{seed}.csv", index=False)
    summary = {"target": target, "data": LABEL, "synthetic": True, "seeds": len(seeds), "reference": "t1ce",
               "acc_verdict": verdicts[0][2], "ode_test_dice_mean": 0.7}
    (folder / "summary.json").write_text(json.dumps(summary))
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps({
            "status": manifest, "study": "study_a", "profile": "default", "params_file": f"params/study_a/{target}.yaml",
            "overrides": {"seeds": [0, 1]}, "data_fingerprint": fingerprint, "git": {"commit": commit, "dirty": False},
            "timings": {"finished": 0.0}, "environment": {"cuda": None}}))
    return folder


@pytest.fixture
def three(tmp_path):
    return {t: make_run(tmp_path / t.lower(), t, dice=(0.8, 0.7 if t != "TC" else 0.5, 0.3)) for t in A.TARGETS}


def test_table_one_puts_each_target_block_in_the_papers_layout_beside_the_papers_cells(three):
    runs = A.load_target_runs(three)
    table = A.table_one_across_targets(runs, LABEL)
    assert list(table.columns.get_level_values(0).unique()) == [label for _, label in A.TABLE_I_ROLES]
    assert table.loc[("TC", "Dice"), ("the paper's key modalities", LABEL)] == "0.500 ± 0.020*"
    assert table.loc[("TC", "Dice"), ("the paper's key modalities", SOURCE_STUDY_A)] == "0.758 ± 0.006"
    assert table.loc[("WT", "inputs"), ("their complement", LABEL)] == "t1+t1ce"
    assert table.loc[("WT", "inputs"), ("their complement", SOURCE_STUDY_A)] == "T1+T1CE"
    assert table.loc[("ET", "Dice"), ("all four modalities", SOURCE_STUDY_A)] == "0.784 ± 0.008"
    assert "t1" not in table.columns.get_level_values(0)  # this run's own selection is not a paper column


def test_table_two_averages_each_seed_over_patients_with_target_then_over_seeds(three):
    table = A.table_two_across_targets(A.load_target_runs(three), LABEL)
    ours = table[("ET", f"{LABEL}: mean ± sd over 2 seeds")]
    # seed means of Dice over p1 only: 0.6 and 0.8 -> 0.700 ± 0.141; accuracy over both patients: 98 %
    assert ours["Dice"] == "0.700 ± 0.141"
    assert ours["Accuracy (%)"] == "98.000 ± 0.000"
    assert ours["Specificity"] == "0.997 ± 0.000"
    assert table[("WT", SOURCE_STUDY_A)]["Dice"] == "0.773"


def test_table_two_shows_a_single_seed_without_a_spread(tmp_path):
    runs = A.load_target_runs({"ET": make_run(tmp_path / "et", "ET", seeds=(3,))})
    table = A.table_two_across_targets(runs, LABEL)
    assert table[("ET", f"{LABEL}: seed 3")]["Dice"] == "0.600"


def test_table_two_names_seeds_without_a_test_patient_with_the_target(tmp_path):
    one = make_run(tmp_path / "one", "TC", seeds=(0,))
    two = make_run(tmp_path / "two", "WT", seeds=(0, 1))
    for folder, drop in ((one, [0]), (two, [1])):  # no patient with the target (in one seed of WT)
        scores = pd.read_csv(folder / "tables" / "ode-test-scores-per-patient.csv")
        scores.loc[scores["seed"].isin(drop), "target_pixels"] = 0
        scores.to_csv(folder / "tables" / "ode-test-scores-per-patient.csv", index=False)
    table = A.table_two_across_targets(A.load_target_runs({"TC": one, "WT": two}), LABEL)
    assert table[("TC", f"{LABEL}: seed 0")]["Dice"] == "— (no test patient with the target)"  # was IndexError
    assert table[("TC", f"{LABEL}: seed 0")]["Accuracy (%)"] == "98.000"
    assert table[("WT", f"{LABEL}: mean ± sd over 2 seeds")]["Dice"] == "0.600 ± nan (1 of 2 seeds)"


def test_verdict_matrix_lines_up_measures_and_counts_outcomes(tmp_path):
    folders = {"ET": make_run(tmp_path / "et", "ET"),
               "WT": make_run(tmp_path / "wt", "WT", verdicts=[
                   ("ACC, Eq. 6-7 as printed (paper's rule)", "0/2", "no verdict"),
                   ("occlusion, HGG test slices only", "0/2", "disagrees"),
                   ("U-Net subset comparison (Table I)", "—", "not discriminative")])}
    matrix = A.verdict_matrix(A.load_target_runs(folders))
    assert list(matrix.columns) == ["ET", "WT"]
    assert matrix.index[0].startswith("reference")
    assert matrix.loc["reference (planted truth of the phantom)", "WT"] == "t2+flair"
    assert matrix.loc["ACC, Eq. 6-7 as printed (paper's rule)", "ET"] == "partly (1/2)"
    assert matrix.loc["U-Net subset comparison (Table I)", "ET"] == "agrees"  # no seeds: no count
    assert matrix.loc["occlusion, HGG test slices only", "ET"] == ""  # ET's page has no such row
    counts = A.verdict_counts(matrix)
    assert counts.loc["ET"].to_dict() == {"agrees": 2, "partly": 1, "disagrees": 0, "no verdict": 0, "other": 0}
    assert counts.loc["WT"].to_dict() == {"agrees": 0, "partly": 0, "disagrees": 1, "no verdict": 1, "other": 1}


def test_acc_curves_are_read_per_target_and_seed(three):
    curves = A.acc_curves(A.load_target_runs(three))
    assert sorted(curves) == [(t, s) for t in ("ET", "TC", "WT") for s in (0, 1)]
    assert curves[("TC", 1)].query("modality == 't1ce' and t == 1.0")["mean"].item() == 0.9


def test_mismatches_name_what_differs_and_what_is_missing(tmp_path):
    runs = A.load_target_runs({"ET": make_run(tmp_path / "et", "ET", fingerprint="aaa"),
                               "TC": make_run(tmp_path / "tc", "TC", fingerprint="bbb")})
    notes = A.mismatches(runs)
    assert notes == ["the runs differ in their data fingerprints: ET aaa, TC bbb", "no run for WT"]
    assert A.mismatches(A.load_target_runs({"ET": tmp_path / "et"}))[:-1] == []


def test_a_twin_cohort_in_one_runs_data_fingerprint_is_no_mismatch(tmp_path):
    """ET/TC with tumour-free-twin rows hash the twin into data_fingerprint; the cohort is the same."""
    folders = {"ET": make_run(tmp_path / "et", "ET", fingerprint="cohort+twin"),
               "WT": make_run(tmp_path / "wt", "WT", fingerprint="cohort")}
    for folder in folders.values():
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "cohort_fingerprint": "cohort"}))
    assert A.mismatches(A.load_target_runs(folders)) == ["no run for TC"]


def test_provenance_says_what_each_run_was(three):
    table = A.provenance(A.load_target_runs(three)).set_index("target")
    assert table.loc["ET", "commit"] == "aaaaaaaaaa"
    assert table.loc["TC", "overrides"] == "seeds=[0, 1]"
    assert table.loc["WT", "finished (UTC)"] == "1970-01-01 00:00"


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "manifest.json").write_text(json.dumps({"status": "running", "study": "study_a"})),
     "manifest.json: the run is not complete; an unfinished run is never read"),
    (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json: unreadable (JSONDecodeError)"),
    (lambda f: (f / "summary.json").unlink(), "no summary.json (the run did not finish)"),
    (lambda f: (f / "summary.json").write_text(json.dumps({"target": "WT"})),
     "a run of target 'WT', named as the ET run"),
])
def test_a_folder_that_is_not_a_finished_run_of_the_target_is_refused_in_one_line(tmp_path, damage, message):
    folder = make_run(tmp_path / "et", "ET")
    damage(folder)
    with pytest.raises(A.SourceRunError) as info:
        A.load_target_runs({"ET": folder})
    assert str(info.value).endswith(message) and "\n" not in str(info.value)


def test_missing_folder_unknown_target_and_a_run_without_manifest(tmp_path):
    with pytest.raises(A.SourceRunError, match="no such run folder"):
        A.load_target_run("ET", tmp_path / "nowhere")
    with pytest.raises(A.SourceRunError, match="'XX' is not a study A target"):
        A.load_target_runs({"XX": tmp_path})
    run = A.load_target_run("ET", make_run(tmp_path / "et", "ET", manifest=None))  # nbval or by hand
    assert run.manifest is None
    assert A.provenance({"ET": run}).loc[0, "parameters"] == "no manifest (not a runner result)"


def test_a_damaged_table_is_named(tmp_path):
    folder = make_run(tmp_path / "et", "ET")
    (folder / "tables" / "table-i.csv").unlink()
    with pytest.raises(A.SourceRunError, match=r"tables/table-i.csv: cannot read this study A table"):
        A.table_one_across_targets(A.load_target_runs({"ET": folder}), LABEL)


def test_figure_7_grid_names_panels_by_the_papers_letters_and_leaves_missing_seeds_empty(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from lib.plots import acc_grid

    runs = A.load_target_runs({"TC": make_run(tmp_path / "tc", "TC", seeds=(0, 1)),
                               "WT": make_run(tmp_path / "wt", "WT", seeds=(0,))})
    fig = acc_grid(A.acc_curves(runs), ["t1", "t1ce"], column_labels=A.FIGURE_7_PANELS)
    titles = [ax.get_title() for ax in fig.axes]  # row by row: seed 0, then seed 1
    assert titles == ["(B) TC, seed 0", "(C) WT, seed 0", "(B) TC, seed 1", "WT: no seed 1"]
    assert not fig.axes[3].axison


def test_renamed_matrix_lines_up_the_permutation_columns_and_skips_runs_without_them(tmp_path):
    with_check = make_run(tmp_path / "tc", "TC")
    verdict = pd.read_csv(with_check / "tables" / "verdict.csv")
    verdict["renamed t1ce↔flair"] = ["follows the contrast", "follows the channel name/position", "agrees"]
    verdict["renamed, on t1ce+flair only"] = ["follows the contrast", "—", "—"]
    verdict.to_csv(with_check / "tables" / "verdict.csv", index=False)
    runs = A.load_target_runs({"ET": make_run(tmp_path / "et", "ET"), "TC": with_check})
    table = A.renamed_matrix(runs)
    assert list(table.columns) == [("TC", "renamed t1ce↔flair"), ("TC", "renamed, on t1ce+flair only")]
    assert table.loc["occlusion", ("TC", "renamed t1ce↔flair")] == "follows the channel name/position"
    assert table.loc["occlusion", ("TC", "renamed, on t1ce+flair only")] == ""  # "—": not applicable
    assert table.loc["ACC, Eq. 6-7 as printed (paper's rule)", ("TC", "renamed, on t1ce+flair only")] == \
        "follows the contrast"
    assert A.renamed_matrix({"ET": runs["ET"]}).empty


def _timed_notebook(*section_seconds):
    cells = [{"cell_type": "markdown", "source": "# T", "metadata": {}}]
    for title, seconds in section_seconds:
        cells += [{"cell_type": "markdown", "source": f"## {title}", "metadata": {}},
                  {"cell_type": "code", "source": "", "outputs": [], "metadata": {"papermill": {"duration": seconds}}}]
    return {"cells": cells}


def _set_timing(folder, started, finished, threads=1, cpus=2):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(timings={"started": started, "finished": finished}, params={"num_threads": threads},
                    environment={"cuda": None, "cpu_count": cpus})
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_overlap_counts_time_covered_by_any_other_run_once():
    assert A.overlap_seconds((0, 100), []) == 0
    assert A.overlap_seconds((0, 100), [(50, 200)]) == 50
    assert A.overlap_seconds((0, 100), [(10, 30), (20, 40), (90, 300), (-5, 5)]) == 5 + 30 + 10
    assert A.overlap_seconds((0, 100), [(100, 200), (-50, 0)]) == 0


def test_time_by_section_adds_up_each_page_and_says_how_long_it_ran_beside_the_others(three):
    (three["ET"] / "notebook.ipynb").write_text(json.dumps(_timed_notebook(("Training", 600), ("Table I", 120))))
    (three["TC"] / "notebook.ipynb").write_text(json.dumps(_timed_notebook(("Training", 300), ("Variant", 900))))
    # WT keeps no executed notebook (run by nbval): no column, nothing guessed
    _set_timing(three["ET"], 0, 1200)
    _set_timing(three["TC"], 600, 2400)
    _set_timing(three["WT"], 5000, 6000)
    table = A.time_by_section(A.load_target_runs(three))
    assert list(table.columns) == ["ET", "TC"]
    assert list(table.index) == ["Training", "Table I", "Variant", A.ALL_CELLS, A.RUN_WALL_TIME, A.BESIDE_ANOTHER]
    assert table.loc["Training"].tolist() == [10.0, 5.0]
    assert table.loc["Table I", "ET"] == 2.0 and pd.isna(table.loc["Table I", "TC"])
    assert table.loc[A.ALL_CELLS].tolist() == [12.0, 20.0]
    assert table.loc[A.RUN_WALL_TIME].tolist() == [20.0, 30.0]
    assert table.loc[A.BESIDE_ANOTHER].tolist() == [10.0, 10.0]  # ET and TC overlap 600..1200; WT ran later
    assert A.longest_sections(table) == {"ET": ("Training", 10.0, 10 / 12, 12.0), "TC": ("Variant", 15.0, 0.75, 20.0)}


def test_time_by_section_is_empty_when_no_run_kept_timings(three):
    assert A.time_by_section(A.load_target_runs(three)).empty
    assert A.longest_sections(pd.DataFrame()) == {}


def test_thread_note_reads_threads_and_machine_from_the_manifests(three):
    for folder in three.values():
        _set_timing(folder, 0, 1)
    assert A.thread_note(A.load_target_runs(three)) == "Each run: 1 torch thread on 2 CPU cores."
    _set_timing(three["WT"], 0, 1, threads=2)
    assert A.thread_note(A.load_target_runs(three)) == ("ET: 1 torch thread on 2 CPU cores; TC: 1 torch thread on "
                                                        "2 CPU cores; WT: 2 torch threads on 2 CPU cores.")


def test_a_damaged_kept_notebook_is_named_in_one_line(three):
    (three["TC"] / "notebook.ipynb").write_text("{truncated")
    with pytest.raises(A.SourceRunError, match=r"tc/notebook.ipynb: not a readable notebook; re-run the TC page"):
        A.time_by_section(A.load_target_runs(three))


def _summary_run(target, **verdicts):
    summary = {"target": target, "seeds": 3, "reference": "t1ce", "ode_test_dice_mean": 0.61234,
               **{f"{k}_verdict": v for k, v in verdicts.items()}, "acc_seeds_agreeing": "1/3",
               "subset_unet_seeds_agreeing": "—"}
    return A.TargetRun(target, None, summary, None)


def test_findings_name_targets_only_where_every_verdict_agrees():
    runs = {"ET": _summary_run("ET", acc="agrees", occlusion="agrees", attribution="agrees", subset_unet="agrees"),
            "TC": _summary_run("TC", acc="partly", occlusion="agrees", attribution="agrees", subset_unet="agrees"),
            "WT": _summary_run("WT", acc="agrees", occlusion="agrees", subset_unet="agrees")}  # no attribution
    counts = pd.DataFrame({"agrees": [4, 3, 3], "partly": [0, 1, 0], "disagrees": [0, 0, 0], "no verdict": [0, 0, 0],
                           "other": [0, 0, 1]}, index=pd.Index(["ET", "TC", "WT"], name="target"))
    minutes = pd.DataFrame({"ET": [2.0, 6.0, 8.0], "TC": [1.0, 1.0, 2.0]},
                           index=["Table I", "The variant", A.ALL_CELLS])
    summary, lines = A.findings(runs, counts, minutes)
    assert summary["paper_explanation_holds_for"] == "ET+WT"       # TC's ACC reads partly
    assert summary["independent_measures_agree_for"] == "ET+TC"    # WT has no attribution verdict
    assert summary["wt_attribution_verdict"] is None and summary["tc_measures_partly"] == 1
    assert summary["et_longest_section"] == "The variant" and summary["et_minutes_all_cells"] == 8.0
    assert "wt_longest_section" not in summary                     # WT kept no timings
    assert lines[0].startswith("- **ET** (reference t1ce; 3 ODE seeds, mean test Dice 0.612): the paper's reading")
    assert "the paper's reading of the ACC (Eq. 6–7 as printed): **agrees** (1/3 seeds)" in lines[0]
    assert "the U-Net subset comparison (Table I): **agrees**;" not in lines[0]  # the last part ends the list
    assert lines[0].endswith("(Table I): **agrees**. Of its 4 measures, 4 agree, 0 partly, 0 disagree, 0 give no verdict.")
    assert "integrated gradients: no verdict in its summary.json" in lines[2]
    assert lines[2].endswith("0 give no verdict and 1 another outcome.")
    assert lines[-1] == "- The TC page's cells took 2.0 min in this build, 1.0 of them (50%) in *Table I*."


def test_finding_measures_are_summary_json_stems():
    from lib.study_a.measures import MEASURES, SUBSET_STEM
    assert set(A.FINDING_MEASURES) <= {m.stem for m in MEASURES} | {SUBSET_STEM}
    assert set(A.INDEPENDENT_MEASURES) < set(A.FINDING_MEASURES)


def test_folds_line_reads_each_runs_manifest():
    runs = {"ET": A.TargetRun("ET", None, {}, {"params": {"cv_folds": 3}}),
            "TC": A.TargetRun("TC", None, {}, None)}
    assert A.folds_line(runs) == "Cross-validation folds of this build's Table I: ET 3, TC unknown (the paper: 10)."
