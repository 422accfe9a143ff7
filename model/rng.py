"""Event-keyed randomness: every random number is a pure function of (chip seed, event).

A counter-based generator (Philox) is keyed by the chip seed and the identity of the event
(which noise source, which evaluation, which column group). The per-cycle path used in
cosimulation and the batch path therefore draw the same numbers for the same event, in any
order, so the batch path predicts a cosimulation bit for bit.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Stream", "event_normal"]

_SEED_LIMIT = 2**64
_INDEX_LIMIT = 2**56


class Stream(enum.IntEnum):
    """Noise sources; each has its own key space."""

    READ = 1        #: column read noise, one draw per column per integration
    COMPARATOR = 2  #: comparator noise, one draw per ADC per SAR step
    STATIC = 3      #: chip-level static mismatch, drawn once per chip


def _check(seed: int, index: int):
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"chip seed must be an integer in [0, 2**64), not {seed!r}")
    if not 0 <= index < _INDEX_LIMIT:
        raise ValueError(f"event index must be an integer in [0, 2**56), not {index!r}")


def event_normal(seed: int, stream: Stream, index: int, shape) -> np.ndarray:
    """Standard normal draws for one event.

    Parameters
    ----------
    seed : int
        Chip seed, 0 <= seed < 2**64.
    stream : Stream
        Which noise source.
    index : int
        Identity of the event within the source, 0 <= index < 2**56.
    shape : tuple of int
        Shape of the returned array.
    """
    _check(seed, index)
    key = (int(seed) << 64) | (int(stream) << 56) | int(index)
    return np.random.Generator(np.random.Philox(key=key)).standard_normal(shape)
