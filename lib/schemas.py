"""The schema of every study's parameter files (see lib.params for the rules).

Keys are grouped: COMMON (every run), DATA (which cohort and how it is sliced), then one
block per study. Defaults are the paper's settings where the paper states one.
"""

from __future__ import annotations

from lib.params import Field

MODALITY_NAMES = ("t1", "t1ce", "t2", "flair")
PROFILES = ("smoke", "default", "paper")


def _distinct(values) -> str | None:
    return "values must be distinct" if len(set(values)) != len(values) else None


COMMON = {
    "study": Field("str", help="which schema/study this file belongs to"),
    "profile": Field("str", choices=PROFILES, help="smoke (tests), default (make book), paper (GPU)"),
    "name": Field("str", default=None, nullable=True, help="run name; defaults to the file's stem"),
    "title": Field("str", default="", help="shown at the top of the chapter"),
    "seed": Field("int", default=0, minimum=0),
    "device": Field("str", default="auto", choices=("auto", "cpu", "cuda")),
    "num_threads": Field("int", default=None, nullable=True, minimum=1, help="torch CPU threads"),
}

DATA = {
    "data_source": Field("str", default="phantom", choices=("phantom", "folder"),
                         help="phantom: the embedded synthetic cohort (generated if missing); folder: your BraTS copy"),
    "data_dir": Field("str", default="data/phantom-default", help="cohort folder (relative to the repository root or absolute)"),
    "phantom_subjects": Field("int", default=40, minimum=2),
    "phantom_seed": Field("int", default=2020, minimum=0),
    "phantom_resolution_mm": Field("float", default=2.0, minimum=0.5, maximum=8.0),
    "phantom_hgg_fraction": Field("float", default=0.6, minimum=0.0, maximum=1.0),
    "modalities": Field("list[str]", default=list(MODALITY_NAMES), choices=MODALITY_NAMES, check=_distinct),
    "label_convention": Field("str", default="auto", choices=("auto", "brats2020", "brats2023")),
    "image_size": Field("int", default=64, minimum=16),
    "normalisation": Field("str", default="zscore", choices=("zscore", "minmax", "p95", "none")),
    "crop": Field("str", default="brain_bbox", choices=("brain_bbox", "none")),
    "slice_filter": Field("str", default="tumour", choices=("all", "brain", "tumour")),
    "filter_region": Field("str", default="WT", choices=("ET", "TC", "WT")),
    "min_region_pixels": Field("int", default=1, minimum=0),
    "max_slices_per_subject": Field("int", default=None, nullable=True, minimum=1),
    "cache_dir": Field("str", default="data/cache"),
}

DATA_CHAPTER = {
    **COMMON,
    **DATA,
    "example_subjects": Field("int", default=2, minimum=1, help="subjects shown in the figures"),
    "contrast_subjects": Field("int", default=None, nullable=True, minimum=1,
                               help="subjects measured for the contrast table (all if null)"),
}

SCHEMAS: dict[str, dict[str, Field]] = {
    "data": DATA_CHAPTER,
}
