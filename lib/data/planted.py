"""The phantom's planted truths: which modality carries which information, by construction.

These follow from ``lib.data.phantom_tumour.Z_TARGETS`` (the contrasts each label is given):

- ET: the enhancing rim is bright on T1ce only (z ≈ 2–3 on T1ce; on FLAIR/T2 it is as bright as
  edema, so they cannot separate it).
- TC = ET ∪ NCR: in HGG the core is outlined by the T1ce rim (the necrosis is also dark on T1);
  the paper's claim, and the phantom's design, is that T1ce is the key input.
- WT: the whole tumour is bright on FLAIR and T2 (CSF is also bright on T2 but dark on FLAIR).
- Grade: HGG have an enhancing rim around necrosis; LGG little or no enhancement.

They are a property of the phantom only: for real data there is no planted truth.

Known limit (measured by study A's TC runs): the truths are planted in *intensity*. Shape leaks
information the intensities do not carry: the tumour core is the interior of the FLAIR/T2-bright
lesion (and 35-85 % of a low-grade lesion), so a network can find much of TC from FLAIR/T2 outlines
alone. Study A's independent measures detect exactly that.
"""

from __future__ import annotations

PLANTED_KEY_MODALITIES = {"ET": ("t1ce",), "TC": ("t1ce",), "WT": ("flair", "t2")}
PLANTED_GRADE_SIGNAL = "enhancement (ET share of the tumour; bright T1ce rim)"


def planted_key_modalities(target: str, synthetic: bool) -> tuple[str, ...] | None:
    """The phantom's planted key modalities for ``target``; None for real data."""
    return PLANTED_KEY_MODALITIES[target] if synthetic else None
