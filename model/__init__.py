"""Behavioural model of the analogue half of the tile (numpy and scipy; no cocotb, no Amaranth).

:class:`Chip` is one chip; :class:`ModelConfig` and :data:`PRESETS` describe the analogue
model (devices, array, drivers, integrators, ADCs, energy).
"""

from .chip import Chip
from .config import PRESETS, ModelConfig, load, preset, save
from .cycle import CycleModel
from .rng import Stream, normals, uniforms
from .state import ChipState

__all__ = ["Chip", "ChipState", "CycleModel", "ModelConfig", "PRESETS", "Stream", "load",
           "normals", "preset", "save", "uniforms"]
