"""Behavioural model of the analogue half of the tile (numpy only; no cocotb, no Amaranth)."""

from .crossbar import AnalogueParams, Crossbar, CycleModel, quantise
from .rng import Stream, event_normal

__all__ = ["AnalogueParams", "Crossbar", "CycleModel", "Stream", "event_normal", "quantise"]
