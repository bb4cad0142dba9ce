"""The phantom's planted truths: which modality carries which information, by construction.

These follow from ``lib.data.phantom_tumour.Z_TARGETS`` (the contrasts each label is given):

- ET: the enhancing rim is bright on T1ce only (z ≈ 2–3 on T1ce; on FLAIR/T2 it is as bright as
  edema, so they cannot separate it).
- TC = ET ∪ NCR: in HGG the core is outlined by the T1ce rim around necrosis; the paper's claim,
  and the phantom's design, is that T1ce is the key input. Non-enhancing tumour (the necrosis, a
  low-grade core) has no contrast agent in it, so since generator 1.4 it is as dark on T1 as on
  T1ce (the same place among the healthy tissues): in low-grade subjects T1 shows the core too.
- WT: the whole tumour is bright on FLAIR and T2 (CSF is also bright on T2 but dark on FLAIR).
- Grade: HGG have an enhancing rim around necrosis; LGG little or no enhancement.

They are a property of the phantom only: for real data there is no planted truth.

Known limits (measured by study A's runs):

- Shape. The truths are planted in *intensity*, but shape can leak what intensities hide. Up to
  generator 1.1 the core sat at the centre of the FLAIR/T2-bright lesion (and filled 35-85 % of a
  low-grade one), so a U-Net found much of TC from FLAIR/T2 outlines alone (complement Dice 0.72
  vs baseline 0.74). Since 1.2 the core is off-centre in a random direction and smaller in LGG.
  A FLAIR/T2 network still knows the core lies inside the lesion, so its TC Dice stays well above
  the paper's 0.042 on real data.
- Anatomy. T1ce is a T1-weighted image: healthy tissue looks alike on T1 and T1ce, and only
  enhancement differs. T1 therefore helps read T1ce (a learned T1ce - T1 subtraction tells a
  partial-volume enhancing rim from bright white matter) although it shows no enhancement. Up to generator 1.2 the two were rendered on one grid with near-equal tissue signals,
  a perfect reference no real scan gives; since 1.3 each sequence is acquired as BraTS describes
  (``phantom_acquisition``: thick 2D slices, misregistration, spin-echo vs gradient-echo contrast).
  That narrowed, but did not remove, the advantage: it is physical, and it grows as pixels get
  coarser. A 3-4 mm rim fills about one pixel of a 48 px slice (~3.6 mm) and 3-4 pixels of the
  paper's 240 px (1 mm) ones. Study A measures it with a T1+T1ce diagnostic subset and with pixel
  separability (``lib.explain.separability``). Whether T1 helps as healthy anatomy or through its
  own (mild) lesion contrast can be told apart on a twin cohort whose T1 is rendered as if no
  tumour were there (``phantom_contrast_gain: {t1: 0}``: every random draw, the other modalities and
  the labels unchanged; README, "Is T1 an anatomy reference for T1ce?"). On generator 1.3 that
  twin gave back 80-93 % of what T1 adds to T1ce (TC and ET), so the advantage is mainly anatomy.
- Non-enhancing tumour. Up to 1.3 the necrosis and the low-grade core were far darker on T1ce
  than on T1 (the LGG core CSF-dark on T1ce only), which no tissue without contrast agent does;
  since 1.4 they keep their place among the healthy tissues on both, with one texture (the same
  tissue; only the acquisition differs). In study A's Table I that did not close the gap between
  T1ce alone and all inputs; it let T1 show low-grade cores, so TC's complement (FLAIR + T1 + T2)
  finds more of them than before, and TC's models lean on FLAIR and T1 more. For a non-enhancing
  core the truth is "T1-weighted" (T1ce or T1), not T1ce alone; ``PLANTED_KEY_MODALITIES["TC"]``
  keeps T1ce, the enhancing rim's modality and the paper's claim, and study A's TC verdicts are
  read with that in mind.
"""

from __future__ import annotations

PLANTED_KEY_MODALITIES = {"ET": ("t1ce",), "TC": ("t1ce",), "WT": ("flair", "t2")}
PLANTED_GRADE_SIGNAL = "enhancement (ET share of the tumour; bright T1ce rim)"


def planted_key_modalities(target: str, synthetic: bool) -> tuple[str, ...] | None:
    """The phantom's planted key modalities for ``target``; None for real data."""
    return PLANTED_KEY_MODALITIES[target] if synthetic else None
