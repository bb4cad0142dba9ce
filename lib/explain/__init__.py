"""Explanation methods of study A: the paper's ACC as printed, its diagnostics, and independent checks.

- :mod:`.acc`          Eq. (4)-(7) as printed (J_t, eta, gamma, mu), the Figure 7 curves, the key-modality
                       rule that follows the paper's reading, and clearly labelled variants.
- :mod:`.diagnostics`  what the paper lacks: readout signs, eta size vs gamma, channel mixing in the flow.
- :mod:`.occlusion`    Dice lost when an input modality is occluded (independent of channel identity).
- :mod:`.attribution`  integrated gradients to the inputs, with a completeness check.
- :mod:`.verdict`      the shared :class:`KeyModalityResult` and :func:`agreement` with a planted truth.

Nothing here assumes which modality is key; modalities are addressed by name, in the channel order
given by a ``modalities`` tuple. torch and captum are imported only by the functions that need them.
"""

from .acc import (
    ACCRule,
    ACC_SLICES,
    ACCRun,
    acc_curves,
    acc_from_model,
    accumulated_contribution,
    binarised_contribution,
    binarised_contribution_polarity_aware,
    empty_union_count,
    final_frame_error,
    segmentation_overlap,
    final_segmentation,
    key_modalities_acc,
    logit_share,
    readout_logits,
    segmentation_frames,
    segmentation_from_logits,
    weighted_frames,
)
from .attribution import (
    AttributionRule,
    attribution_shares,
    converged_slices,
    integrated_gradients,
    key_modalities_attribution,
    region_score,
)
from .diagnostics import (
    best_matching_input,
    channel_mixing,
    empty_gamma_count,
    eta_area,
    eta_area_per_slice,
    eta_coverage,
    eta_coverage_per_slice,
    per_frame_table,
    readout_summary,
    self_fidelity,
)
from .occlusion import OcclusionRule, key_modalities_occlusion, model_predict_fn, occlude, occlusion_importance
from .verdict import KeyModalityResult, agreement, agreement_table

__all__ = [
    # acc (Eq. 4-7)
    "readout_logits",
    "segmentation_frames",
    "final_segmentation",
    "segmentation_from_logits",
    "final_frame_error",
    "segmentation_overlap",
    "weighted_frames",
    "binarised_contribution",
    "binarised_contribution_polarity_aware",
    "logit_share",
    "accumulated_contribution",
    "empty_union_count",
    "acc_curves",
    "ACCRule",
    "key_modalities_acc",
    "ACC_SLICES",
    "ACCRun",
    "acc_from_model",
    # diagnostics
    "readout_summary",
    "eta_coverage_per_slice",
    "eta_coverage",
    "eta_area_per_slice",
    "eta_area",
    "per_frame_table",
    "channel_mixing",
    "self_fidelity",
    "best_matching_input",
    "empty_gamma_count",
    # occlusion
    "occlude",
    "model_predict_fn",
    "occlusion_importance",
    "OcclusionRule",
    "key_modalities_occlusion",
    # attribution
    "region_score",
    "integrated_gradients",
    "converged_slices",
    "attribution_shares",
    "AttributionRule",
    "key_modalities_attribution",
    # verdicts
    "KeyModalityResult",
    "agreement",
    "agreement_table",
]
