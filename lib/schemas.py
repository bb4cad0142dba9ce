"""The schema of every study's parameter files (see lib.params for the rules).

Keys are grouped: COMMON (every run), DATA (which cohort and how it is sliced), then one
block per study. Defaults are the paper's settings where the paper states one.
"""

from __future__ import annotations

from lib.params import Field, Relation, coerce, did_you_mean
from lib.paths import home_problem

MODALITY_NAMES = ("t1", "t1ce", "t2", "flair")
PROFILES = ("smoke", "default", "paper")


def _distinct(values) -> str | None:
    return "values must be distinct" if len(set(values)) != len(values) else None


def _some_distinct(values) -> str | None:
    return "give at least one value" if not values else _distinct(values)


def _some(values) -> str | None:
    return "give at least one value" if not values else None


def _spacing(values) -> str | None:
    # lib.data.preprocess.resample broadcasts it over the volume's three axes: one value or three.
    if len(values) not in (1, 3):
        return f"give one spacing in mm (every axis) or three (one per axis), not {len(values)}"
    bad = [v for v in values if v <= 0]
    return f"{bad[0]!r} is not a positive spacing" if bad else None


def _rule_overrides(module: str, rule: str, extra: dict[str, type] | None = None):
    """A check: every key overrides a field of the dataclass ``lib.explain.<module>.<rule>`` (or
    is in ``extra``: {key: type}) with a value of that field's type, so that a typo or a wrong type
    stops the run before training instead of at ``rule(**values)`` hours later."""

    def check(values) -> str | None:
        if not values:
            return None  # the rule's defaults; skips the import
        types = rule_fields(module, rule) | (extra or {})
        for key, value in values.items():
            if key not in types:
                hint = did_you_mean(key, types) or f" (known: {', '.join(types)})"
                return f"unknown key '{key}'{hint}"
            problem = _rule_value(types[key], value)
            if problem:
                return f"'{key}': {problem}"
        return None

    return check


def rule_fields(module: str, rule: str) -> dict[str, object]:
    """{field: type annotation} of the dataclass ``lib.explain.<module>.<rule>``."""
    # Imported here, not at the top: lib.explain pulls in pandas (about 0.6 s), which every
    # params check and `python -m lib --help` would pay; only a file that overrides a rule does.
    import dataclasses
    import importlib
    import typing

    cls = getattr(importlib.import_module(f"lib.explain.{module}"), rule)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _rule_value(annotation, value) -> str | None:
    """Why ``value`` does not fit a rule field's annotation (float, int, bool, str or Literal), or None."""
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        return None if value in choices else f"{value!r} is not one of {', '.join(map(str, choices))}"
    kind = {float: "float", int: "int", bool: "bool", str: "str"}[annotation]
    try:
        coerce(Field(kind), value)  # ints pass as floats; a bool is not a number; nan is not a float
    except TypeError:
        return f"expected {kind}, got {value!r}"
    return None


def _modality_sets(values) -> str | None:
    """Each value names a set of modalities joined by '+', e.g. 't1+t1ce'."""
    for value in values:
        names = value.split("+")
        unknown = [n for n in names if n not in MODALITY_NAMES]
        if unknown or len(set(names)) != len(names):
            return f"{value!r} is not a '+'-joined set of distinct modalities from {', '.join(MODALITY_NAMES)}"
    return None


def _modality_gains(values) -> str | None:
    """{modality: gain >= 0}, e.g. {t1: 0}."""
    unknown = [k for k in values if k not in MODALITY_NAMES]
    if unknown:
        return f"{unknown[0]!r} is not one of {', '.join(MODALITY_NAMES)}"
    negative = [k for k, v in values.items() if v < 0]
    return f"the gain of {negative[0]!r} must be >= 0" if negative else None


def _pair_or_empty(values) -> str | None:
    if len(values) not in (0, 2):
        return "give two modalities to swap, or [] to skip"
    return _distinct(values)


def _positive(value) -> str | None:
    # a learning rate (or its multiplier) of 0 trains nothing; TrainConfig refuses it, but only at training
    return None if value > 0 else f"{value!r} must be above 0"


def _open_unit_interval(value) -> str | None:
    return None if 0.0 < value < 1.0 else f"{value!r} is not between 0 and 1 (exclusive)"


def _run_name(value) -> str | None:
    # The run's folder under results/<study>/: one plain path component, so that it can neither
    # escape results/ nor clash with the runner's hidden temporary folders.
    if value is None:
        return None
    if not value or "/" in value or "\\" in value or value.startswith(".") or value != value.strip():
        return "expected a plain folder name (no '/', not starting with '.', no surrounding spaces)"
    return None


COMMON = {
    "study": Field("str", help="which schema/study this file belongs to"),
    "profile": Field("str", choices=PROFILES, help="smoke (tests), default (make book), paper (GPU)"),
    "name": Field("str", default=None, nullable=True, check=_run_name,
                  help="run name (a folder under results/<study>/); defaults to the file's stem"),
    "title": Field("str", default="", help="shown at the top of the chapter"),
    "device": Field("str", default="auto", choices=("auto", "cpu", "cuda")),
    "num_threads": Field("int", default=None, nullable=True, minimum=1, help="torch CPU threads"),
}

# Folder keys are checked with home_problem: a '~user' naming no home folder is refused when the
# file is read, naming the key, instead of failing later wherever the path is first used.
DATA = {
    "data_source": Field("str", default="phantom", choices=("phantom", "folder"),
                         help="phantom: the embedded synthetic cohort (generated if missing); folder: your BraTS copy"),
    "data_dir": Field("str", default="data/phantom-default", check=home_problem, help="cohort folder (relative to the repository root or absolute)"),
    "phantom_subjects": Field("int", default=40, minimum=2),
    "phantom_seed": Field("int", default=2020, minimum=0),
    "phantom_resolution_mm": Field("float", default=2.0, minimum=0.5, maximum=8.0),
    "phantom_hgg_fraction": Field("float", default=0.6, minimum=0.0, maximum=1.0),
    "phantom_contrast_gain": Field("dict[str,float]", default={}, check=_modality_gains,
                                   help="lesion contrast per modality (lib.data.phantom.PhantomSpec.contrast_gain); "
                                        "0 renders that modality as if no tumour were there, with every random draw, "
                                        "the other modalities and the labels unchanged (a tumour-free twin)"),
    "modalities": Field("list[str]", default=list(MODALITY_NAMES), choices=MODALITY_NAMES, check=_some_distinct),
    "label_convention": Field("str", default="auto", choices=("auto", "brats2020", "brats2023")),
    "image_size": Field("int", default=64, minimum=16),
    "normalisation": Field("str", default="zscore", choices=("zscore", "minmax", "p95", "none")),
    "crop": Field("str", default="brain_bbox", choices=("brain_bbox", "none")),
    "crop_margin": Field("int", default=2, minimum=0, help="voxels around the brain's bounding square"),
    "target_spacing": Field("list[float]", default=None, nullable=True, check=_spacing,
                            help="resample to this voxel spacing in mm (one value or one per axis) first"),
    "slice_filter": Field("str", default="tumour", choices=("all", "brain", "tumour")),
    "filter_region": Field("str", default="WT", choices=("ET", "TC", "WT")),
    "min_region_pixels": Field("int", default=1, minimum=1),  # lib.data.slices refuses 0
    "max_slices_per_subject": Field("int", default=None, nullable=True, minimum=1),
    "cache_dir": Field("str", default="data/cache", check=home_problem),
}

DATA_CHAPTER = {
    **COMMON,
    **DATA,
    # Only the data chapter has one seed; study A names each of its seeds (seeds, split_seed,
    # unet_seeds, ...), so a plain 'seed' there would be a key that changes nothing.
    "seed": Field("int", default=0, minimum=0, help="seed of the example 8:2 split and folds"),
    "example_subjects": Field("int", default=2, minimum=1, help="subjects shown in the figures"),
    "contrast_subjects": Field("int", default=None, nullable=True, minimum=1,
                               help="subjects measured for the contrast table (all if null)"),
}

STUDY_A = {
    **COMMON,
    **DATA,
    "target": Field("str", choices=("ET", "TC", "WT"), help="region segmented by this run"),
    "seeds": Field("list[int]", default=[0, 1, 2], minimum=0, check=_some_distinct, help="one ODE model per seed"),
    "split_seed": Field("int", default=0, minimum=0, help="seed of the 8:2 patient-level split"),
    "test_fraction": Field("float", default=0.2, minimum=0.05, maximum=0.5),
    "training_cache_dir": Field("str", default=None, nullable=True, check=home_problem,
                                help="folder of trained weights kept by everything that determined them "
                                     "(lib.training_cache), so a run stopped part-way does not train its finished "
                                     "models again; null trains every model"),
    # neural ODE (Eq. 1-4; Section C)
    "ode_base_width": Field("int", default=16, minimum=2),
    "ode_depth": Field("int", default=5, minimum=2, maximum=6, help="U-Net levels; the paper's Fig. 3A has 5"),
    "ode_train_steps": Field("int", default=10, minimum=1, help="RK4 steps on [0, 1] in training (the grid is the step)"),
    "ode_sensitivity": Field("str", default="adjoint", choices=("adjoint", "autograd")),
    # A labelled variant beside the paper's model, trained and explained in its own section.
    "variant_per_modality_seeds": Field("list[int]", default=[], minimum=0, check=_distinct,
                                        help="seeds of a variant ODE (not in the paper) whose vector field is one "
                                             "U-Net per modality, each seeing only its own channel, so Eq. (6)-(7) "
                                             "attribute to modalities, not mixed channels ([] skips it)"),
    "variant_per_modality_width": Field("int", default=4, minimum=2,
                                        help="base width of each per-modality U-Net (4 U-Nets of width 4 have "
                                             "about the parameters of one shared U-Net of width 8)"),
    "ode_epochs": Field("int", default=20, minimum=1),
    "ode_batch_size": Field("int", default=16, minimum=1),
    "ode_lr": Field("float", default=1e-3, check=_positive),
    "ode_lr_schedule": Field("str", default="constant", choices=("constant", "cosine"),
                             help="constant ode_lr, or cosine annealing from it to 0 over the training steps"),
    "ode_loss": Field("str", default="bce", choices=("bce", "bce+dice")),
    "ode_readout_lr_multiplier": Field("float", default=1.0, check=_positive),
    "ode_prior_bias": Field("bool", default=False, help="initialise the readout bias to the prior log-odds"),
    # explanation (Eq. 5-7) and the measures that do not depend on channel identity
    "render_frames": Field("int", default=101, minimum=2, help="frames of I_t on [0, 1]; 101 = the paper's 0.01 step"),
    "figure_times": Field("list[float]", default=[0.0, 0.3, 0.5, 0.8, 1.0], minimum=0.0, maximum=1.0, check=_some,
                          help="stage times in [0, 1] shown in the flow figures (the nearest rendered frame)"),
    "flow_batch_size": Field("int", default=8, minimum=1),
    "acc_rule": Field("dict[str,scalar]", default={}, check=_rule_overrides("acc", "ACCRule"),
                      help="overrides of lib.explain.acc.ACCRule"),
    "acc_slices": Field("str", default="segmented", choices=("segmented", "all"),
                        help="test slices the ACC curves average over: those with a non-empty final segmentation "
                             "gamma, or all (lib.explain.acc.ACC_SLICES)"),
    "occlusion_fill": Field("str", default="zero", choices=("zero", "brain_mean")),
    "occlusion_rule": Field("dict[str,scalar]", default={}, check=_rule_overrides("occlusion", "OcclusionRule"),
                            help="overrides of lib.explain.occlusion.OcclusionRule"),
    "ig_steps": Field("int", default=16, minimum=2),
    "ig_max_slices": Field("int", default=32, minimum=1),
    "separability_max_pixels": Field("int", default=2_000_000, minimum=1000, nullable=True,
                                     help="pixel separability uses a seeded sample of at most about this many pixels "
                                          "per class when a class has more (null: every pixel); the default "
                                          "profile's training slices have fewer, so there it uses every pixel"),
    "ig_images_per_pass": Field("int", default=None, nullable=True, minimum=1,
                                help="images (slices x ig_steps) per forward/backward pass of integrated gradients "
                                     "(Captum's internal_batch_size); bounds its memory, not its result. "
                                     "null: 4 slices x ig_steps at once"),
    "ig_gradients": Field("str", default="autograd", choices=("autograd", "adjoint"),
                          help="input gradients for integrated gradients: exact through the RK4 solve, or the adjoint's"),
    # 'tolerance' is not a field of the rule: lib.study_a.ode reads it for converged_slices.
    "attribution_rule": Field("dict[str,scalar]", default={},
                              check=_rule_overrides("attribution", "AttributionRule", {"tolerance": float}),
                              help="overrides of lib.explain.attribution.AttributionRule, and the completeness "
                                   "'tolerance' (default 0.05)"),
    # the paper's confirmation: U-Nets on subsets of modalities
    "paper_key_modalities": Field("list[str]", choices=MODALITY_NAMES, check=_some_distinct,
                                  help="the key modalities the paper reports for this target"),
    "unet_base_width": Field("int", default=16, minimum=2),
    "unet_depth": Field("int", default=5, minimum=2, maximum=6),
    "unet_epochs": Field("int", default=20, minimum=1),
    "unet_batch_size": Field("int", default=16, minimum=1),
    "unet_lr": Field("float", default=1e-3, check=_positive),
    "unet_lr_schedule": Field("str", default="constant", choices=("constant", "cosine"),
                              help="constant unet_lr, or cosine annealing from it to 0 over unet_epochs' steps"),
    "unet_loss": Field("str", default="bce", choices=("bce", "bce+dice")),
    "unet_prior_bias": Field("bool", default=False),
    "unet_diagnostic_subsets": Field("list[str]", default=[], check=_modality_sets,
                                     help="extra subsets for Table I, e.g. 't1+t1ce' (shown, never used by a verdict)"),
    "twin_tumour_free": Field("list[str]", default=[], choices=MODALITY_NAMES, check=_distinct,
                              help="phantom only: modalities that a twin of the cohort renders as if no tumour were "
                                   "there (phantom_contrast_gain 0; draws, other modalities and labels unchanged)"),
    "twin_subsets": Field("list[str]", default=[], check=_modality_sets,
                          help="Table I diagnostic subsets trained and scored on that twin cohort, e.g. 't1+t1ce' "
                               "(shown, never used by a verdict)"),
    "unet_patience": Field("int", default=None, nullable=True, minimum=1,
                           help="early stopping: epochs without a better inner-validation Dice before a U-Net stops "
                                "(unet_epochs is then the most it runs); null trains unet_epochs epochs"),
    "unet_val_fraction": Field("float", default=0.2, minimum=0.05, maximum=0.5,
                               help="share of each fold's training patients held out to stop on (with unet_patience)"),
    "unet_seeds": Field("list[int]", default=[0], minimum=0, check=_some_distinct,
                        help="U-Net training seeds for Table I; each patient's scores are averaged over them"),
    "cv_folds": Field("int", default=10, minimum=2, help="k-fold cross-validation inside the training set"),
    "alpha": Field("float", default=0.05, check=_open_unit_interval, help="significance level of the Wilcoxon tests"),
    "subset_near_baseline": Field("float", default=0.05, minimum=0.0,
                                  help="a subset whose mean Dice is within this of the baseline is 'near baseline'"),
    "subset_clearly_lower": Field("float", default=0.10, minimum=0.0,
                                  help="... and one this far below (and significant) is 'clearly lower'"),
    # robustness
    "permutation_swap": Field("list[str]", default=["t1ce", "flair"], choices=MODALITY_NAMES, check=_pair_or_empty,
                              help="two modalities whose files are swapped for the permutation check ([] skips it)"),
    "permutation_seeds": Field("list[int]", default=[0], minimum=0, check=_distinct,
                               help="ODE seeds trained on the renamed cohort ([] trains none; the U-Net "
                                    "comparison still runs)"),
    "permutation_cv_folds": Field("int", default=None, nullable=True, minimum=2),
}

# The appendix page on what study A's models cost (book/study_a_cost.py): the model sizes of a
# study A profile (tests/test_params.py checks each cost file against the study A files of its
# profile) and no data, so the page runs without any cohort.
STUDY_A_COST = {
    **COMMON,
    **{key: STUDY_A[key] for key in ("ode_base_width", "ode_depth", "ode_train_steps", "ode_batch_size",
                                      "variant_per_modality_width",
                                      "unet_base_width", "unet_depth", "unet_batch_size")},
    "image_size": DATA["image_size"],
    "run_benchmark": Field("bool", default=True, help="run the benchmarks (false: the page only says so)"),
}


def _target_runs(values) -> str | None:
    """{target: run folder} for ET, TC and/or WT."""
    if not values:
        return "name at least one target's run folder, e.g. {ET: results/study_a/et-default}"
    unknown = [k for k in values if k not in ("ET", "TC", "WT")]
    if unknown:
        return f"{unknown[0]!r} is not a study A target (ET, TC, WT)"
    empty = [k for k, v in values.items() if not v.strip()]
    if empty:
        return f"the run folder of {empty[0]} is empty"
    return next((f"{k}: {problem}" for k, v in values.items() if (problem := home_problem(v))), None)


# Study A across its targets (book/study_a_summary.py): no data and no training; it reads the
# finished study A runs it names (the runner keys its result by their manifests).
STUDY_A_SUMMARY = {
    **COMMON,
    "source_runs": Field("dict[str,str]", check=_target_runs,
                         help="{target: folder of a finished study A run} (relative to the repository or absolute)"),
}

def _margins_ordered(params) -> str | None:
    # A difference between the two margins would be both 'near baseline' and 'clearly lower'.
    near, lower = params["subset_near_baseline"], params["subset_clearly_lower"]
    return None if lower >= near else f"{lower} is below subset_near_baseline ({near}); it must be at least that"


def _among_inputs(key: str):
    """A rule: every modality named under ``key`` is one of the run's input `modalities`."""

    def check(params) -> str | None:
        missing = [m for m in params[key] if m not in params["modalities"]]
        return (f"{missing[0]!r} is not among the inputs (modalities: {', '.join(params['modalities'])})"
                if missing else None)

    return check


def _subsets_among_inputs(key: str):
    """A rule: every '+'-joined subset under ``key`` names only the run's input `modalities`."""

    def check(params) -> str | None:
        for subset in params[key]:
            missing = [m for m in subset.split("+") if m not in params["modalities"]]
            if missing:
                return (f"{subset!r}: {missing[0]!r} is not among the inputs "
                        f"(modalities: {', '.join(params['modalities'])})")
        return None

    return check


def _twin_subsets(params) -> str | None:
    # What lib.study_a.comparison.twin_subsets refuses, and the chapter's silent skip without a twin.
    subsets, blank = params["twin_subsets"], params["twin_tumour_free"]
    if subsets and not blank:
        return "needs twin_tumour_free (the modalities the twin cohort renders without the tumour)"
    bare = next((s for s in subsets if not set(s.split("+")) & set(blank)), None)
    return f"{bare!r} holds none of the tumour-free modalities ({', '.join(blank)})" if bare else None


def _fits_depth(depth_key: str):
    """A rule: image_size halves cleanly at every pooling of a U-Net of ``depth_key`` levels
    (``lib.models.unet.UNet2D`` refuses other sizes, at the first batch, minutes into a run)."""

    def check(params) -> str | None:
        divisor = 2 ** (params[depth_key] - 1)
        if params["image_size"] % divisor:
            return (f"{params['image_size']} px does not halve {params[depth_key] - 1} times: a U-Net of "
                    f"{depth_key} {params[depth_key]} needs a multiple of {divisor}")
        return None

    return check


# Rules between keys of one study's file (lib.params.validate checks them after each key's own).
RELATIONS: dict[str, list[Relation]] = {
    "study_a": [
        ("image_size", _fits_depth("ode_depth")),
        ("image_size", _fits_depth("unet_depth")),
        ("subset_clearly_lower", _margins_ordered),
        ("paper_key_modalities", _among_inputs("paper_key_modalities")),
        ("permutation_swap", _among_inputs("permutation_swap")),
        ("unet_diagnostic_subsets", _subsets_among_inputs("unet_diagnostic_subsets")),
        ("twin_subsets", _subsets_among_inputs("twin_subsets")),
        ("twin_subsets", _twin_subsets),
    ],
    "study_a_cost": [
        ("image_size", _fits_depth("ode_depth")),
        ("image_size", _fits_depth("unet_depth")),
    ],
}

SCHEMAS: dict[str, dict[str, Field]] = {
    "data": DATA_CHAPTER,
    "study_a": STUDY_A,
    "study_a_cost": STUDY_A_COST,
    "study_a_summary": STUDY_A_SUMMARY,
}
