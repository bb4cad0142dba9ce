"""The verdict every key-modality rule returns, and how it is compared with a planted truth.

Study A picks "key modalities" from ACC curves (Eq. 7 and Figure 7). The book judges that
reading against measures that do not depend on channel identity inside the flow (occlusion,
integrated gradients) and against the phantom's planted truth. All three rules return the same
:class:`KeyModalityResult`, so one table can hold them side by side.

Conventions
-----------
- ``key`` is a tuple of modality names (never channel indices); the empty tuple means the rule
  gave no verdict (nothing passed, or the data did not allow a decision); ``reasons`` says which.
- ``scores`` holds the one number per modality the rule ranks by (its meaning is in ``params``
  under ``"score"``); ``table`` has every criterion per modality for the book to show.
- Nothing here knows which modality *should* be key: ``planted`` is passed in by the caller,
  from the phantom's documentation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

AGREES = "agrees"
PARTLY = "partly"
DISAGREES = "disagrees"
NO_VERDICT = "no verdict"


@dataclass(frozen=True)
class KeyModalityResult:
    """Outcome of one key-modality rule (ACC, occlusion or attribution).

    Attributes
    ----------
    method : str
        Which rule produced it, e.g. ``"acc (Eq. 7, as printed)"``, ``"occlusion"``.
    key : tuple[str, ...]
        Key modalities by name, ordered by decreasing score (ties in channel order).
        Empty: no verdict (see ``reasons``).
    scores : dict[str, float]
        The score each modality was ranked by (nan where it could not be computed).
    reasons : str
        Human-readable account: the rule, why each modality passed or failed, and why there is
        no verdict when ``key`` is empty.
    params : dict
        Every threshold the rule used (defaults included), plus ``"score"``: what ``scores`` are.
    modality_reasons : dict[str, str]
        One line per modality (also folded into ``reasons``).
    table : pandas.DataFrame | None
        One row per modality with every criterion the rule evaluated.
    """

    method: str
    key: tuple[str, ...]
    scores: dict[str, float]
    reasons: str
    params: dict[str, Any]
    modality_reasons: dict[str, str] = field(default_factory=dict)
    table: pd.DataFrame | None = None

    @property
    def has_verdict(self) -> bool:
        """True when at least one modality was declared key."""
        return len(self.key) > 0

    def summary_row(self) -> dict[str, Any]:
        """Flat dict for a comparison table: method, key ("a+b" or "-"), one column per score."""
        row: dict[str, Any] = {"method": self.method, "key": "+".join(self.key) if self.key else "-"}
        row.update({f"score[{name}]": value for name, value in self.scores.items()})
        return row


def agreement(result: KeyModalityResult, planted: Iterable[str]) -> str:
    """Compare a rule's key modalities with the planted ones (given by the caller).

    Returns one of
      - ``"no verdict"``: ``result.key`` is empty (nothing passed, or no usable data);
      - ``"agrees"``: the key set equals ``planted``;
      - ``"partly"``: they overlap but differ (a planted modality missed, or an extra one named);
      - ``"disagrees"``: no overlap.

    Names are compared exactly (case-sensitive), as everywhere in the package.
    """
    planted_set = set(planted)
    if not planted_set:
        raise ValueError("planted must name at least one modality (take it from the phantom's documentation)")
    found = set(result.key)
    if not found:
        return NO_VERDICT
    if found == planted_set:
        return AGREES
    if found & planted_set:
        return PARTLY
    return DISAGREES


def agreement_table(results: Iterable[KeyModalityResult], planted: Iterable[str]) -> pd.DataFrame:
    """One row per result: method, key, planted, agreement (for the book's comparison tables)."""
    planted_set = set(planted)
    rows = []
    for result in results:
        rows.append(
            {
                "method": result.method,
                "key": "+".join(result.key) if result.key else "-",
                "planted": "+".join(sorted(planted_set)),
                "agreement": agreement(result, planted_set),
            }
        )
    return pd.DataFrame(rows, columns=["method", "key", "planted", "agreement"])


# ----------------------------------------------------------------------------------------------
# helpers shared by the three rules (private to the package)


def _format_reasons(headline: str, modality_reasons: Mapping[str, str]) -> str:
    lines = [headline]
    lines += [f"  {name}: {why}" for name, why in modality_reasons.items()]
    return "\n".join(lines)


def _order_by_score(names: Iterable[str], scores: Mapping[str, float], channel_order: list[str]) -> tuple[str, ...]:
    """Key names by decreasing score, ties (and nan) in channel order: deterministic."""

    def sort_key(name: str) -> tuple[float, int]:
        value = scores.get(name, math.nan)
        return (-(value if not math.isnan(value) else -math.inf), channel_order.index(name))

    return tuple(sorted(names, key=sort_key))
