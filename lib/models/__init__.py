"""Study A's models: the U-Net of Fig. 3A and the neural ODE segmenter of Fig. 3B (Eq. 1-4)."""

from lib.models.grouped_unet import GroupedUNet2D
from lib.models.node import (
    SENSITIVITIES,
    VECTOR_FIELDS,
    ClassicRungeKutta4,
    NeuralODESegmenter,
    ODEVectorField,
    PerModalityVectorField,
    SegmentationUNet,
    adjoint_gradient_error,
    ode_solver,
    stage_grid,
)
from lib.models.unet import UNet2D, count_parameters, set_channels_last

__all__ = [
    "UNet2D",
    "GroupedUNet2D",
    "count_parameters",
    "set_channels_last",
    "ODEVectorField",
    "PerModalityVectorField",
    "VECTOR_FIELDS",
    "NeuralODESegmenter",
    "SegmentationUNet",
    "SENSITIVITIES",
    "ClassicRungeKutta4",
    "ode_solver",
    "stage_grid",
    "adjoint_gradient_error",
]
