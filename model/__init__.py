"""Behavioural model of the analogue half of the tile (numpy and scipy; no cocotb, no Amaranth).

:class:`Chip` is one chip; :class:`ModelConfig` and :data:`PRESETS` describe the analogue
model (devices, array, drivers, integrators, ADCs, energy).

The golden algorithms of the tile's engines, which the cosimulation tests prove equal to the
RTL bit for bit, are public too: :func:`calibrate` (offsets, gains, drift reference and drift
scale), :func:`capture_drift` and :func:`compensate_drift` (the drift phases alone, with a
:class:`DriftReference`), :func:`program_and_verify` (with :class:`ProgramParams`), and
:func:`mvm_error` and :func:`true_drift_scale` to judge their results.
"""

from .calibration import (
    Calibration,
    DriftReference,
    calibrate,
    capture_drift,
    compensate_drift,
    mvm_error,
    true_drift_scale,
)
from .chip import Chip
from .config import PRESETS, ModelConfig, load, preset, save
from .cycle import CycleModel
from .program import ProgramParams, ProgramResult, program_and_verify, targets_from_weights
from .rng import Stream, normals, uniforms
from .state import ChipState

__all__ = ["Calibration", "Chip", "ChipState", "CycleModel", "DriftReference", "ModelConfig",
           "PRESETS", "ProgramParams", "ProgramResult", "Stream", "calibrate", "capture_drift",
           "compensate_drift", "load", "mvm_error", "normals", "preset", "program_and_verify",
           "save", "targets_from_weights", "true_drift_scale", "uniforms"]
