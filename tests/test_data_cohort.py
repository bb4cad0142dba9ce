"""lib.data.cohort: a data_dir that cannot be a cohort is a one-line CohortError naming it, and a
damaged cohort check file (kept after validation) is never trusted: the cohort is checked again."""

import json

import pytest

from lib import params as params_mod, runner
from lib.data.cohort import CohortError, prepare_cohort
from lib.paths import REPO_ROOT

SMOKE = REPO_ROOT / "params/data/smoke.yaml"


def _folder_params(root, tmp_path):
    return {"data_source": "folder", "data_dir": str(root), "modalities": ["t1", "t1ce", "t2", "flair"],
            "label_convention": "auto", "cache_dir": str(tmp_path / "cache")}


@pytest.mark.parametrize("source", ["phantom", "folder"])
def test_a_data_dir_that_is_a_file_is_named_as_a_file(tmp_path, source):
    a_file = tmp_path / "notes.md"
    a_file.write_text("not a cohort")
    params = params_mod.load(SMOKE, {"data_source": source, "data_dir": str(a_file), "cache_dir": str(tmp_path / "c")})
    with pytest.raises(CohortError) as info:  # was NotADirectoryError (phantom), 'does not exist' (folder)
        prepare_cohort(params)
    assert str(info.value) == f"{a_file}: data_dir is a file, not a folder (data_source: {source})" + (
        "; choose another data_dir" if source == "phantom" else "")
    assert a_file.read_text() == "not a cohort" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


def test_a_phantom_data_dir_inside_a_file_is_refused_before_generating(tmp_path):
    a_file = tmp_path / "notes.md"
    a_file.write_text("x")
    params = params_mod.load(SMOKE, {"data_dir": str(a_file / "phantom"), "cache_dir": str(tmp_path / "c")})
    with pytest.raises(CohortError, match=r"notes.md: is a file, not a folder, so data_dir .*notes.md/phantom "
                                          r"cannot be made \(data_source: phantom\)"):
        prepare_cohort(params)


def test_the_dry_run_says_a_data_dir_that_is_a_file_will_stop_the_run(tmp_path):
    # The dry run used to say the phantom would be generated there; the run then stopped.
    a_file = tmp_path / "notes.md"
    a_file.write_text("x")
    reasons = runner.check_run(REPO_ROOT / "book/data.py", SMOKE, {"data_dir": str(a_file), "cache_dir": str(tmp_path)},
                               results_root=tmp_path / "results")
    assert runner.cannot_run(reasons)
    assert reasons[-1] == f"it will stop before running: {a_file}: data_dir is a file, not a folder (data_source: " \
                          "phantom); choose another data_dir"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]  # wrote nothing


def test_a_data_dir_under_an_unknown_home_is_a_cohort_error_naming_the_key(tmp_path):
    # Parameter files refuse it when read (tests/test_params.py); a mapping given directly too.
    with pytest.raises(CohortError, match=r"^key 'data_dir': ~no-such-user-s29x: cannot expand"):
        prepare_cohort(_folder_params("~no-such-user-s29x", tmp_path))  # was RuntimeError from expanduser


@pytest.mark.parametrize("damage", [
    "[]", '{"fingerprint": null}', '"text"', "{", '{"fingerprint": 5, "valid": true}',
    '{"fingerprint": "0000", "valid": true}', '{"fingerprint": "%s"}' % ("0" * 64),
])
def test_a_damaged_cohort_check_file_is_not_trusted_and_the_cohort_is_checked_again(make_cohort, tmp_path,
                                                                                     monkeypatch, damage):
    from lib.data import validate

    params = _folder_params(make_cohort("brats2020"), tmp_path)
    first = prepare_cohort(params)
    [memo] = (tmp_path / "cache" / "cohorts").glob("*.json")
    checks = []
    real_require_valid = validate.require_valid
    monkeypatch.setattr(validate, "require_valid", lambda *a, **k: checks.append(1) or real_require_valid(*a, **k))
    assert prepare_cohort(params).fingerprint == first.fingerprint and checks == []  # an intact record is used

    memo.write_text(damage)
    again = prepare_cohort(params)  # was TypeError for [] and a None fingerprint for null
    assert again.fingerprint == first.fingerprint and checks == [1]
    assert json.loads(memo.read_text())["fingerprint"] == first.fingerprint  # rewritten whole


def test_a_cohort_check_recorded_by_another_validator_is_not_trusted(make_cohort, tmp_path, monkeypatch):
    # A validator that learned a new check (a subject folder linked to nothing, say) must see a
    # cohort that an older one passed, not take its recorded verdict.
    from lib.data import cohort, validate

    params = _folder_params(make_cohort("brats2020"), tmp_path)
    prepare_cohort(params)
    monkeypatch.setattr(cohort, "validator_fingerprint", lambda: "a newer validator", raising=False)
    monkeypatch.setattr(validate, "validate_cohort", lambda *a, **k: [validate.Problem("x", "a new check")])
    with pytest.raises(validate.InvalidCohortError, match="a new check"):
        prepare_cohort(params)
