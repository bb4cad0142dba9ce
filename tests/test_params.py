"""Parameter files: every error is one line naming the file and the key."""

import pytest

from lib import params as P
from lib.params import Field, ParamsError

SCHEMA = {
    "study": Field("str"),
    "epochs": Field("int", default=3, minimum=1),
    "lr": Field("float", default=1e-3),
    "loss": Field("str", default="bce", choices=("bce", "bce+dice")),
    "modalities": Field("list[str]", default=["t1"], choices=("t1", "t1ce", "t2", "flair")),
    "amp": Field("bool", default=False),
    "subset": Field("dict[str,list[str]]", default={}),
    "limit": Field("int", default=None, nullable=True),
}


def test_defaults_are_filled_and_ints_accepted_as_floats():
    out = P.validate({"study": "x", "lr": 1}, SCHEMA, "f.yaml")
    assert out["epochs"] == 3 and out["lr"] == 1.0 and isinstance(out["lr"], float)
    assert out["limit"] is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"study": "x", "epoch": 3}, "f.yaml: unknown key 'epoch' (did you mean 'epochs'?)"),
        ({"study": "x", "epochs": "ten"}, "f.yaml: key 'epochs': expected int, got 'ten'"),
        ({"study": "x", "epochs": True}, "f.yaml: key 'epochs': expected int, got True"),
        ({"study": "x", "epochs": 0}, "f.yaml: key 'epochs': 0 is below the minimum 1"),
        ({"study": "x", "loss": "mse"}, "f.yaml: key 'loss': 'mse' is not one of bce, bce+dice"),
        ({"study": "x", "modalities": ["t1", "pd"]}, "f.yaml: key 'modalities': 'pd' is not one of t1, t1ce, t2, flair"),
        ({"study": "x", "modalities": "t1"}, "f.yaml: key 'modalities': expected list[str], got 't1'"),
        ({"study": "x", "lr": float("nan")}, "f.yaml: key 'lr': expected float, got nan"),
        ({"study": "x", "subset": {"a": "t1"}}, "f.yaml: key 'subset': expected dict[str,list[str]], got dict"),
        ({}, "f.yaml: missing required key 'study' (str)"),
    ],
)
def test_errors_are_one_line_and_name_the_key(raw, expected):
    with pytest.raises(ParamsError) as info:
        P.validate(raw, SCHEMA, "f.yaml")
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


def test_relations_between_keys_are_checked_after_each_key():
    relations = [("lr", lambda p: "must exceed epochs / 1000" if p["lr"] <= p["epochs"] / 1000 else None)]
    assert P.validate({"study": "x", "lr": 0.01}, SCHEMA, "f.yaml", relations)["lr"] == 0.01
    with pytest.raises(ParamsError) as info:
        P.validate({"study": "x", "lr": 0.001, "epochs": 3}, SCHEMA, "f.yaml", relations)
    assert str(info.value) == "f.yaml: key 'lr': must exceed epochs / 1000"
    with pytest.raises(ParamsError, match="key 'epochs': expected int"):  # a key's own check comes first
        P.validate({"study": "x", "epochs": "ten"}, SCHEMA, "f.yaml", relations)


def test_load_extends_overrides_and_name(tmp_path):
    (tmp_path / "base.yaml").write_text("study: data\nprofile: default\nimage_size: 48\nseed: 1\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nprofile: smoke\nseed: 2\n")
    out = P.load(tmp_path / "child.yaml", {"seed": 5})
    assert out["profile"] == "smoke" and out["image_size"] == 48 and out["seed"] == 5
    assert out["name"] == "child"


def test_load_rejects_unknown_study_cycle_and_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: nosuch\nprofile: smoke\n")
    with pytest.raises(ParamsError, match=r"bad.yaml: key 'study': expected one of .*got 'nosuch'"):
        P.load(bad)
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ParamsError, match="cycle"):
        P.load(tmp_path / "a.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("study: data\nprofile: [smoke\n")
    with pytest.raises(ParamsError, match=r"broken.yaml: line \d+"):
        P.load(broken)
    with pytest.raises(ParamsError, match="parameter file not found"):
        P.load(tmp_path / "missing.yaml")


def test_parse_override_reads_yaml_values():
    assert P.parse_override("epochs=3") == ("epochs", 3)
    assert P.parse_override("modalities=[t1ce, flair]") == ("modalities", ["t1ce", "flair"])
    with pytest.raises(ParamsError, match="expected key=value"):
        P.parse_override("epochs")


def test_every_shipped_parameter_file_validates():
    from lib.paths import REPO_ROOT

    # Files starting with "_" are shared bases, validated through the files that extend them.
    files = sorted(p for p in (REPO_ROOT / "params").rglob("*.yaml") if not p.name.startswith("_"))
    assert files, "no parameter files found"
    for path in files:
        P.load(path)  # raises on the first invalid key


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"ode_depth": 7}, "key 'ode_depth': 7 is above the maximum 6"),  # schema: ode_depth in [2, 6]
        ({"test_fraction": 0.6}, "key 'test_fraction': 0.6 is above the maximum 0.5"),  # schema: [0.05, 0.5]
        ({"seeds": [0, 0]}, "key 'seeds': values must be distinct"),  # one ODE model per seed: a repeat is a copy
        ({"alpha": 0}, "key 'alpha': 0.0 is not between 0 and 1 (exclusive)"),
        ({"alpha": 1}, "key 'alpha': 1.0 is not between 0 and 1 (exclusive)"),
        # a Dice gap of 0.15 would be both 'near baseline' and 'clearly lower'
        ({"subset_near_baseline": 0.2, "subset_clearly_lower": 0.1},
         "key 'subset_clearly_lower': 0.1 is below subset_near_baseline (0.2); it must be at least that"),
        ({"modalities": ["flair", "t1", "t2"]},
         "key 'paper_key_modalities': 't1ce' is not among the inputs (modalities: flair, t1, t2)"),
        ({"modalities": ["t1", "t1ce", "t2"], "paper_key_modalities": ["t1ce"], "permutation_swap": ["t1ce", "flair"]},
         "key 'permutation_swap': 'flair' is not among the inputs (modalities: t1, t1ce, t2)"),
    ],
)
def test_study_a_schema_limits(override, expected):
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", override)
    assert str(info.value).endswith(expected)


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_cost_page_measures_the_models_of_its_profile(profile):
    """The appendix page times models of the sizes the study A runs of the same profile train."""
    from lib.paths import REPO_ROOT
    from lib.schemas import STUDY_A_COST

    cost = P.load(REPO_ROOT / f"params/study_a/cost-{profile}.yaml")
    sizes = [key for key in STUDY_A_COST if key.startswith(("ode_", "unet_", "variant_per_modality_width")) or key == "image_size"]
    for target in ("et", "tc", "wt"):
        study = P.load(REPO_ROOT / f"params/study_a/{target}-{profile}.yaml")
        assert cost["profile"] == study["profile"] == profile
        assert {k: cost[k] for k in sizes} == {k: study[k] for k in sizes}, target


def test_phantom_contrast_gain_reaches_the_generator_and_is_checked(tmp_path):
    from lib.data.cohort import phantom_spec
    from lib.paths import REPO_ROOT

    base = REPO_ROOT / "params/study_a/tc-default.yaml"
    twin = P.load(base, {"phantom_contrast_gain": {"t1": 0}, "data_dir": str(tmp_path / "t1free")})
    assert phantom_spec(twin).contrast_gain == {"t1": 0.0}
    assert phantom_spec(P.load(base)).contrast_gain == {}  # the default cohort is the plain phantom
    with pytest.raises(ParamsError, match=r"key 'phantom_contrast_gain': 'dwi' is not one of t1, t1ce, t2, flair"):
        P.load(base, {"phantom_contrast_gain": {"dwi": 0}})
    with pytest.raises(ParamsError, match=r"key 'phantom_contrast_gain': the gain of 't1' must be >= 0"):
        P.load(base, {"phantom_contrast_gain": {"t1": -1}})


def test_load_names_the_file_when_it_is_not_text_or_repeats_a_key(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00s\x00t")
    with pytest.raises(ParamsError) as info:
        P.load(binary)
    assert str(info.value) == f"{binary}: cannot read the parameter file (not UTF-8 text)"
    twice = tmp_path / "twice.yaml"
    twice.write_text("study: data\nprofile: smoke\nimage_size: 32\nimage_size: 48\n")
    with pytest.raises(ParamsError) as info:
        P.load(twice)
    assert str(info.value) == f"{twice}: line 4 key 'image_size' is given twice"
    nested = tmp_path / "nested.yaml"
    nested.write_text("study: data\nprofile: smoke\nsubset: {a: [t1], b: [t2]}\n")
    with pytest.raises(ParamsError, match="key 'subset'"):  # distinct inner keys pass the duplicate check
        P.load(nested)


def test_acc_slices_choices_are_the_ones_the_acc_code_knows():
    """The schema lists the choices itself (importing the ACC code would add about 0.8 s to every
    params check); the two lists must stay the same."""
    from lib.explain.acc import ACC_SLICES
    from lib.schemas import STUDY_A

    assert STUDY_A["acc_slices"].choices == ACC_SLICES
    assert STUDY_A["acc_slices"].default in ACC_SLICES


@pytest.mark.parametrize("override, expected", [
    ({"source_runs": {"XX": "results/study_a/et-smoke"}}, "key 'source_runs': 'XX' is not a study A target (ET, TC, WT)"),
    ({"source_runs": {}}, "key 'source_runs': name at least one target's run folder"),
    ({"source_runs": {"ET": " "}}, "key 'source_runs': the run folder of ET is empty"),
    ({"source_runs": ["results/study_a/et-smoke"]}, "key 'source_runs': expected dict[str,str], got list"),
])
def test_the_across_targets_page_names_its_runs_by_target(override, expected):
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / "params/study_a/summary-smoke.yaml", override)
    assert expected in str(info.value) and "\n" not in str(info.value)
