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


def test_a_seed_that_would_change_nothing_is_refused():
    from lib.paths import REPO_ROOT

    # study A reads seeds, split_seed, unet_seeds...: a plain 'seed' was accepted and did nothing
    with pytest.raises(ParamsError, match="seed"):
        P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", {"seed": 3})
    assert P.load(REPO_ROOT / "params/data/smoke.yaml", {"seed": 3})["seed"] == 3


@pytest.mark.parametrize("params_file", ["params/study_a/et-smoke.yaml", "params/study_a/cost-smoke.yaml"])
def test_an_image_size_the_unet_cannot_halve_is_refused_when_read(params_file):
    from lib.paths import REPO_ROOT

    # depth 4: three poolings, so 48 px (6 x 8) fits and 44 px (not a multiple of 8) does not
    fits = P.load(REPO_ROOT / params_file, {"image_size": 48, "ode_depth": 4, "unet_depth": 4})
    assert fits["image_size"] == 48
    with pytest.raises(ParamsError, match=r"key 'image_size': 44 px does not halve 3 times.*multiple of 8"):
        P.load(REPO_ROOT / params_file, {"image_size": 44, "ode_depth": 4, "unet_depth": 2})


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


def test_parse_overrides_refuses_a_key_given_twice_with_two_values():
    assert P.parse_overrides(["epochs=3", "seeds=[0, 1]"]) == {"epochs": 3, "seeds": [0, 1]}
    assert P.parse_overrides(["epochs=3", "epochs=3"]) == {"epochs": 3}  # the same value twice is no clash
    assert P.parse_overrides(None) == {}
    with pytest.raises(ParamsError, match=r"^override 'data_dir': given twice, as 'a' and 'b'; give it once$"):
        P.parse_overrides(["data_dir=a", "epochs=3", "data_dir=b"])


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
        ({"unet_lr": 0}, "key 'unet_lr': 0.0 must be above 0"),
        ({"ode_readout_lr_multiplier": 0}, "key 'ode_readout_lr_multiplier': 0.0 must be above 0"),
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


@pytest.mark.parametrize("override, expected", [
    # a typo or a wrong type in a rule used to pass and fail at ACCRule(**...) after training
    ({"acc_rule": {"min_gapp": 0.1}}, "key 'acc_rule': unknown key 'min_gapp' (known: min_final, relative_to_best, "
                                      "require_positive_slope, slope, slope_window, min_slope)"),
    ({"acc_rule": {"min_fnal": 0.1}}, "key 'acc_rule': unknown key 'min_fnal' (did you mean 'min_final'?)"),
    ({"acc_rule": {"min_final": "high"}}, "key 'acc_rule': 'min_final': expected float, got 'high'"),
    ({"acc_rule": {"min_final": True}}, "key 'acc_rule': 'min_final': expected float, got True"),  # not a number
    ({"acc_rule": {"require_positive_slope": 1}}, "key 'acc_rule': 'require_positive_slope': expected bool, got 1"),
    ({"acc_rule": {"slope": "early"}}, "key 'acc_rule': 'slope': 'early' is not one of net, late"),
    ({"occlusion_rule": {"retian": 0.9}}, "key 'occlusion_rule': unknown key 'retian' (did you mean 'retain'?)"),
    ({"occlusion_rule": {"dice": "median"}}, "key 'occlusion_rule': 'dice': 'median' is not one of mean, pooled"),
    ({"attribution_rule": {"min_slices": 2.5}}, "key 'attribution_rule': 'min_slices': expected int, got 2.5"),
    ({"attribution_rule": {"tolerance": "tight"}}, "key 'attribution_rule': 'tolerance': expected float, got 'tight'"),
])
def test_rule_overrides_are_checked_against_the_rule_dataclasses(override, expected):
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", override)
    assert str(info.value).endswith(expected) and "\n" not in str(info.value)


def test_valid_rule_overrides_pass_and_build_their_rules():
    from lib.explain.acc import ACCRule
    from lib.explain.attribution import AttributionRule
    from lib.explain.occlusion import OcclusionRule
    from lib.paths import REPO_ROOT

    out = P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", {
        "acc_rule": {"min_final": 1, "slope": "late"},  # an int is a float
        "occlusion_rule": {"dice": "pooled", "retain": 0.8},
        "attribution_rule": {"min_slices": 3, "tolerance": 0.1},  # tolerance: read by lib.study_a.ode
    })
    ACCRule(**out["acc_rule"]), OcclusionRule(**out["occlusion_rule"])
    AttributionRule(**{k: v for k, v in out["attribution_rule"].items() if k != "tolerance"})


@pytest.mark.parametrize("module, rule", [("acc", "ACCRule"), ("occlusion", "OcclusionRule"),
                                          ("attribution", "AttributionRule")])
def test_every_rule_field_has_a_type_the_check_knows(module, rule):
    """A new field of another type would make the rule check fail with KeyError; each default
    must pass its own field's check."""
    import dataclasses
    import importlib

    from lib.schemas import _rule_value, rule_fields

    cls = getattr(importlib.import_module(f"lib.explain.{module}"), rule)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, annotation in rule_fields(module, rule).items():
        assert _rule_value(annotation, defaults[name]) is None, name


def test_checking_a_shipped_file_does_not_import_the_explanation_code():
    """The rule checks import lib.explain only for a file that overrides a rule (pandas: ~0.6 s)."""
    import subprocess
    import sys

    from lib.paths import REPO_ROOT

    code = ("import sys; from lib import params; params.load('params/study_a/et-default.yaml'); "
            "print(sorted(m for m in ('lib.explain', 'pandas', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("override, expected", [
    # resample broadcasts target_spacing over a volume's three axes, and divides by it
    ({"target_spacing": [0]}, "key 'target_spacing': 0.0 is not a positive spacing"),
    ({"target_spacing": [-2]}, "key 'target_spacing': -2.0 is not a positive spacing"),
    ({"target_spacing": [1, 2, 3, 4]}, "key 'target_spacing': give one spacing in mm (every axis) or three "
                                       "(one per axis), not 4"),
    ({"target_spacing": []}, "key 'target_spacing': give one spacing in mm (every axis) or three "
                             "(one per axis), not 0"),
    # seeds feed np.random.default_rng, which refuses negative seeds (after the data is loaded)
    ({"seeds": [-1]}, "key 'seeds': -1 is below the minimum 0"),
    ({"seeds": []}, "key 'seeds': give at least one value"),  # would train no ODE at all
    ({"unet_seeds": [0, -1]}, "key 'unet_seeds': -1 is below the minimum 0"),
    ({"variant_per_modality_seeds": [-1]}, "key 'variant_per_modality_seeds': -1 is below the minimum 0"),
    ({"variant_per_modality_seeds": [1, 1]}, "key 'variant_per_modality_seeds': values must be distinct"),
    ({"permutation_seeds": [-1]}, "key 'permutation_seeds': -1 is below the minimum 0"),
    ({"permutation_seeds": [0, 0]}, "key 'permutation_seeds': values must be distinct"),
    ({"paper_key_modalities": []}, "key 'paper_key_modalities': give at least one value"),
    # stage times of the flow figures: the flow runs on [0, 1]
    ({"figure_times": [5.0]}, "key 'figure_times': 5.0 is above the maximum 1.0"),
    ({"figure_times": [0.5, -0.1]}, "key 'figure_times': -0.1 is below the minimum 0.0"),
    ({"figure_times": []}, "key 'figure_times': give at least one value"),
])
def test_study_a_list_values_are_checked_element_by_element(override, expected):
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", override)
    assert str(info.value).endswith(expected)


def test_valid_list_values_pass():
    from lib.paths import REPO_ROOT

    path = REPO_ROOT / "params/study_a/et-smoke.yaml"
    for spacing in (None, [1.5], [1, 1, 2.5]):
        assert P.load(path, {"target_spacing": spacing})["target_spacing"] == spacing
    out = P.load(path, {"seeds": [3], "variant_per_modality_seeds": [], "permutation_seeds": [],
                        "figure_times": [0, 1]})
    assert out["seeds"] == [3] and out["figure_times"] == [0.0, 1.0]


def test_errors_name_the_file_or_override_that_gave_the_key(tmp_path, monkeypatch):
    (tmp_path / "base.yaml").write_text("study: data\nprofile: default\nimage_sise: 48\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/child.yaml").write_text("extends: ../base.yaml\nprofile: smoke\n")
    monkeypatch.chdir(tmp_path)  # relative names stay relative, as the user typed them
    with pytest.raises(ParamsError) as info:
        P.load("sub/child.yaml")
    assert str(info.value) == "base.yaml: unknown key 'image_sise' (did you mean 'image_size'?)"
    (tmp_path / "base.yaml").write_text("study: data\nprofile: default\nimage_size: big\n")
    with pytest.raises(ParamsError) as info:
        P.load("sub/child.yaml")
    assert str(info.value) == "base.yaml: key 'image_size': expected int, got 'big'"
    # the child's value replaces the base's, and so does the message's source
    with pytest.raises(ParamsError) as info:
        P.load("sub/child.yaml", {"image_size": 8})
    assert str(info.value) == "sub/child.yaml (--set): key 'image_size': 8 is below the minimum 16"
    with pytest.raises(ParamsError) as info:
        P.load("sub/child.yaml", dict([P.parse_override("image_sise=32")]))
    assert str(info.value) == "sub/child.yaml (--set): unknown key 'image_sise' (did you mean 'image_size'?)"
    (tmp_path / "sub/child.yaml").write_text("extends: ../base.yaml\nprofile: smoke\nimage_size: 4\n")
    with pytest.raises(ParamsError) as info:
        P.load("sub/child.yaml")
    assert str(info.value) == "sub/child.yaml: key 'image_size': 4 is below the minimum 16"


def test_a_missing_base_file_is_reported_against_the_file_that_extends_it(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("extends: nonexist.yaml\nstudy: data\nprofile: smoke\n")
    with pytest.raises(ParamsError) as info:
        P.load(child)
    assert str(info.value) == f"{child}: key 'extends': base file nonexist.yaml not found"


def test_float_keys_accept_exponent_text_but_not_nan_or_inf(tmp_path):
    """YAML 1.1 reads 1e-3 as text; a float key takes it as the number it spells."""
    from lib.paths import REPO_ROOT

    assert P.validate({"study": "x", "lr": "1e-3"}, SCHEMA, "f.yaml")["lr"] == 0.001
    for text in ("nan", "inf", "-Infinity", "1e-3x", "0x10"):
        with pytest.raises(ParamsError) as info:
            P.validate({"study": "x", "lr": text}, SCHEMA, "f.yaml")
        assert str(info.value) == f"f.yaml: key 'lr': expected float, got {text!r}"
    smoke = REPO_ROOT / "params/study_a/et-smoke.yaml"
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {smoke}\node_lr: 1e-3\nfigure_times: [0, 5e-1]\nacc_rule: {{min_final: 2E-1}}\n")
    out = P.load(child)
    assert out["ode_lr"] == 0.001 and out["figure_times"] == [0.0, 0.5] and out["acc_rule"] == {"min_final": 0.2}
    assert P.load(smoke, dict([P.parse_override("ode_lr=1e-3")]))["ode_lr"] == 0.001


@pytest.mark.parametrize("params_file, override, key", [
    ("params/data/smoke.yaml", {"data_dir": "~no-such-user-s29x"}, "data_dir"),
    ("params/data/smoke.yaml", {"cache_dir": "~no-such-user-s29x/cache"}, "cache_dir"),
    ("params/study_a/et-smoke.yaml", {"training_cache_dir": "~no-such-user-s29x/t"}, "training_cache_dir"),
    ("params/study_a/summary-smoke.yaml", {"source_runs": {"ET": "~no-such-user-s29x/et"}}, "source_runs"),
])
def test_a_folder_under_an_unknown_home_is_refused_naming_the_key(params_file, override, key):
    # pathlib's expanduser raised RuntimeError("Could not determine home directory.") wherever the
    # path was first used; the file is refused when read instead, naming the key.
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / params_file, override)
    assert f"key '{key}': " in str(info.value) and "cannot expand '~no-such-user-s29x'" in str(info.value)
    assert "\n" not in str(info.value)


def test_min_region_pixels_is_refused_below_what_the_slicer_accepts():
    # lib.data.slices refuses min_region_pixels < 1 (after the cohort is prepared); the file must
    # be refused when read, naming the key.
    from lib.paths import REPO_ROOT

    for params_file in ("params/data/smoke.yaml", "params/study_a/et-smoke.yaml"):
        with pytest.raises(ParamsError) as info:
            P.load(REPO_ROOT / params_file, {"min_region_pixels": 0})
        assert str(info.value).endswith("key 'min_region_pixels': 0 is below the minimum 1")


@pytest.mark.parametrize("override, expected", [
    # twin_subsets are trained on the twin cohort that twin_tumour_free asks for; without one the
    # chapter skipped them without a word
    ({"twin_tumour_free": [], "twin_subsets": ["t1+t1ce"]},
     "key 'twin_subsets': needs twin_tumour_free (the modalities the twin cohort renders without the tumour)"),
    # a subset with no tumour-free modality stopped the chapter after the ODE training
    ({"twin_tumour_free": ["t1"], "twin_subsets": ["t2+flair"]},
     "key 'twin_subsets': 't2+flair' holds none of the tumour-free modalities (t1)"),
])
def test_twin_subsets_need_a_twin_to_train_on(override, expected):
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", override)
    assert str(info.value).endswith(expected) and "\n" not in str(info.value)
    assert P.load(REPO_ROOT / "params/study_a/et-smoke.yaml", {"twin_tumour_free": [], "twin_subsets": []})


@pytest.mark.parametrize("key", ["unet_diagnostic_subsets", "twin_subsets"])
def test_subsets_name_only_input_modalities(key):
    # lib.study_a.comparison refused such a subset in the Table I section, after the ODE training
    from lib.paths import REPO_ROOT

    with pytest.raises(ParamsError) as info:
        P.load(REPO_ROOT / "params/study_a/et-smoke.yaml",
               {"modalities": ["t1ce", "flair", "t2"], "twin_tumour_free": ["t2"], "unet_diagnostic_subsets": [],
                "twin_subsets": [], key: ["t2+t1"]})
    assert str(info.value).endswith(f"key '{key}': 't2+t1': 't1' is not among the inputs (modalities: t1ce, flair, t2)")
