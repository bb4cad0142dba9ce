"""The measures of modality importance study A reads, named once.

Each reading of a trained neural ODE (the paper's ACC, its variants, occlusion, integrated
gradients, each by its rule or top-ranked) appears in four places of a study A page: a row of the
verdict table, a row of the permutation check, a column of the per-modality variant's table, and
keys of ``summary.json``. :data:`MEASURES` names each reading once for all four, so that a measure
added here reaches every one of them. The chapter reads these names; the study A summary page reads
the ``summary.json`` keys they give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from lib.explain.verdict import KeyModalityResult
from lib.study_a.verdict import SUBSET_MEASURE, subset_grade_name, top_ranked

SUBSET_LABEL = "U-Net subset comparison"  # the subset comparison's row in the permutation check
SUBSET_STEM = "subset_unet"
VARIANT_PREFIX = "variant, one U-Net per modality: "
VARIANT_STEM_PREFIX = "variant_per_modality_"


@dataclass(frozen=True)
class Measure:
    """One reading of an explained model (:class:`lib.study_a.ode.ExplainedModel`).

    ``verdict_name``: its row in the verdict table; ``label``: its row in the permutation check
    and its column in the variant's table (``summary.json``'s ``renamed_<slug of label>`` keys);
    ``stem``: ``summary.json``'s ``<stem>_verdict`` and ``<stem>_seeds_agreeing``; ``field``: the
    :class:`KeyModalityResult` attribute it reads; ``top_ranked``: read leniently
    (:func:`lib.study_a.verdict.top_ranked`) rather than by its rule; ``variant_name``: the name of
    the per-modality variant's own verdict row (``None``: the variant gets no row for it);
    ``in_variant_table``: whether the variant's table shows it for both vector fields."""

    verdict_name: str
    label: str
    stem: str
    field: str
    top_ranked: bool = False
    variant_name: str | None = None
    in_variant_table: bool = True

    def read(self, explained: Any) -> KeyModalityResult:
        result = getattr(explained, self.field)
        return top_ranked(result) if self.top_ranked else result


MEASURES: tuple[Measure, ...] = (
    Measure("ACC, Eq. 6-7 as printed (paper's rule)", "ACC (printed)", "acc", "key_acc",
            variant_name="ACC as printed"),
    Measure("ACC, printed, top-ranked final μ", "ACC (printed, top-ranked)", "acc_top", "key_acc", top_ranked=True),
    Measure("ACC, polarity-aware variant", "ACC (polarity-aware)", "acc_polarity", "key_acc_polarity",
            variant_name="ACC, polarity-aware"),
    Measure("ACC, logit-share variant", "ACC (logit share)", "acc_logit_share", "key_acc_logit_share",
            variant_name="ACC, logit share"),
    Measure("occlusion", "occlusion", "occlusion", "key_occlusion", variant_name="occlusion"),
    Measure("occlusion, largest single drop", "occlusion (largest single drop)", "occlusion_top", "key_occlusion",
            top_ranked=True, in_variant_table=False),
    Measure("integrated gradients", "integrated gradients", "attribution", "key_attribution",
            variant_name="integrated gradients"),
    Measure("integrated gradients, largest share", "integrated gradients (largest share)", "attribution_top",
            "key_attribution", top_ranked=True, in_variant_table=False),
)
VARIANT_MEASURES: tuple[Measure, ...] = tuple(m for m in MEASURES if m.variant_name is not None)
# The occlusion readings that are also made on each grade's test slices alone.
_OCCLUSION_BY_GRADE = tuple(m for m in MEASURES if m.field == "key_occlusion")


def variant_verdict_name(measure: Measure) -> str:
    return f"{VARIANT_PREFIX}{measure.variant_name}"


def occlusion_grade_name(measure: Measure, grade: str) -> str:
    """The verdict row of an occlusion reading on one grade's test slices alone."""
    return f"{measure.verdict_name}, {grade} test slices only"


def verdict_measures(explained: Mapping[int, Any], variant: Mapping[int, Any],
                     occlusion_grades: Sequence[str]) -> dict[str, list[KeyModalityResult]]:
    """{verdict row: each seed's result} in the verdict table's order: every measure of the
    paper's model, its occlusion readings on each grade's test slices alone (supplementary rows,
    every grade whichever way it falls), then the variant's own measures when it was run."""
    rows = {m.verdict_name: [m.read(e) for e in explained.values()] for m in MEASURES}
    for grade in occlusion_grades:
        for m in _OCCLUSION_BY_GRADE:
            rows[occlusion_grade_name(m, grade)] = [
                top_ranked(e.occlusion_by_grade[grade][1]) if m.top_ranked else e.occlusion_by_grade[grade][1]
                for e in explained.values()]
    if variant:
        rows.update({variant_verdict_name(m): [m.read(e) for e in variant.values()] for m in VARIANT_MEASURES})
    return rows


def summary_stems(occlusion_grades: Iterable[str], subset_grades: Iterable[str]) -> dict[str, str]:
    """{verdict row: its ``summary.json`` stem} for every row the verdict table can have."""
    stems = {m.verdict_name: m.stem for m in MEASURES}
    stems.update({variant_verdict_name(m): f"{VARIANT_STEM_PREFIX}{m.stem}" for m in VARIANT_MEASURES})
    stems[SUBSET_MEASURE] = SUBSET_STEM
    for grade in occlusion_grades:
        stems.update({occlusion_grade_name(m, grade): f"{m.stem}_{grade.lower()}" for m in _OCCLUSION_BY_GRADE})
    for grade in subset_grades:
        stems[subset_grade_name(grade)] = f"{SUBSET_STEM}_{grade.lower()}"
    return stems


def renamed_labels() -> dict[str, str]:
    """{verdict row: its row in the permutation check} for the rows the permutation check reads."""
    return {**{m.verdict_name: m.label for m in MEASURES}, SUBSET_MEASURE: SUBSET_LABEL}
