"""Event-keyed randomness: every random number is a pure function of (chip seed, event).

A counter-based generator (Philox-4x64, numpy's implementation, whose output stream numpy
keeps stable across releases) is keyed by the chip seed and the noise source. The counter
holds the position: event ``e`` of a source owns the words from ``e * K`` on (``K`` fixed per
source and draw size) in the context ``context`` (a programming or read epoch). Events are
integrations (:attr:`Stream.READ`), conversions (:attr:`Stream.COMPARATOR`), read times
(:attr:`Stream.FLICKER`), pulse steps (:attr:`Stream.PULSE`) and the pulse slots of training
updates (:attr:`Stream.UPDATE`); :attr:`Stream.PROGRAM` keys each programming by its
context, :attr:`Stream.STATIC` each kind of static mismatch (:class:`Static`) likewise. So
the per-cycle path of cosimulation, which draws one event at a time, and the batch path,
which draws thousands of consecutive events in one call, get the same numbers.
Draws of a few blocks use a compiled copy of the same generator (``_batch.philox_words``,
tested word for word against numpy's), because building numpy's costs more than they do.

Normal deviates are the inverse normal distribution of 32-bit uniforms ``(k + 1/2) / 2**32``.
In the body it is interpolated linearly in a table at ``i / 2**12`` (small enough to stay in
the processor's first-level cache): only integer operations, additions and multiplications,
so the result is the same in every numpy code path (no transcendental function whose
vectorised and scalar versions could differ). The error is below 1e-4 for ``|z| < 2.5``,
2e-3 for ``|z| < 3`` and 0.016 up to ``|z| = 3.49``. The outermost bin on each side
(``|z| > 3.49``, probability 2.4e-4 each) is computed exactly, element by element, with
scipy's ``ndtri``. The deviates are bounded: ``|z| < 6.34``.
"""

from __future__ import annotations

import enum
import functools

import numpy as np

from ..numeric import as_int

__all__ = ["Static", "Stream", "check_seed", "normals", "uniforms"]

_SEED_LIMIT = 2**64
_TABLE_BITS = 12


class Stream(enum.IntEnum):
    """Noise sources; each has its own key."""

    READ = 1        #: per-conversion column noise, one draw per column per integration
    #: (context 0: MVM integrations; context 1: device reads, numbered apart)
    COMPARATOR = 2  #: comparator noise, one draw per ADC per SAR step
    STATIC = 3      #: chip mismatch, drawn once per chip
    PROGRAM = 4     #: programming noise and drift exponents, once per programming
    FLICKER = 5     #: 1/f read noise, once per device per read time
    PULSE = 6       #: programming-pulse response, one draw per column per pulse step
    #: training-pulse response (cycle-to-cycle), one draw per device per update pulse slot:
    #: event ``update_index * 256 + slot``
    UPDATE = 7


class Static(enum.IntEnum):
    """Events of the :attr:`Stream.STATIC` source (one per kind of static mismatch)."""

    CAP = 0
    COMPARATOR_OFFSET = 1
    INTEGRATOR_GAIN = 2
    INTEGRATOR_OFFSET = 3
    REFERENCE = 4
    STUCK = 5
    PULSE_DTOD = 6  #: device-to-device factor of the SET step, one per device
    #: The row converters (backward MVMs): capacitor mismatch, comparator offset, integrator
    #: gain and offset, reference error, as the columns' kinds above.
    ROW_CAP = 20
    ROW_COMPARATOR_OFFSET = 21
    ROW_INTEGRATOR_GAIN = 22
    ROW_INTEGRATOR_OFFSET = 23
    ROW_REFERENCE = 24
    #: pulsed (training) devices, two draws per device each: the bounds (``w_max``, ``w_min``),
    UPDATE_BOUNDS = 7
    #: the step scales (gain and up/down asymmetry),
    UPDATE_SCALES = 8
    #: and the shape (linear-step slopes or power-step exponents)
    UPDATE_SHAPE = 9


@functools.cache
def _table() -> tuple[np.ndarray, np.ndarray]:
    """Bin ``i`` maps its low bits ``l`` to ``start[i] + l slope[i]`` (the value at the
    middle of the low-bit step, ``node + (l + 1/2) slope``)."""
    from scipy.special import ndtri

    n = 1 << _TABLE_BITS
    nodes = ndtri(np.arange(1, n) / n)
    nodes = np.concatenate([[0.0], nodes, [0.0]])  # the two tail bins are computed exactly
    slope = np.diff(nodes) / (1 << (32 - _TABLE_BITS))
    return nodes[:-1] + 0.5 * slope, slope


def check_seed(seed) -> int:
    """``seed`` as an int, checked to be a chip seed: an integer in ``[0, 2**64)``.

    Raises
    ------
    ValueError
        It is not.
    """
    return as_int(seed, "chip seed", 0, _SEED_LIMIT - 1,
                  allowed="an integer in [0, 2**64)")


def _check(seed, first, count, size, context):
    check_seed(seed)
    for name, value in (("first event", first), ("event count", count), ("draw size", size),
                        ("context", context)):
        if not isinstance(value, (int, np.integer)) or value < 0 or value >= 2**62:
            raise ValueError(f"{name} must be an integer in [0, 2**62), not {value!r}")


#: Draws of at most this many Philox blocks go through the compiled generator
#: (:func:`._batch.philox_words`): building numpy's costs more than such a draw.
_SMALL_BLOCKS = 64


@functools.cache
def _key(seed: int, stream: int) -> tuple[np.uint64, np.uint64]:
    """The key words numpy's Philox takes from ``key=[seed, stream]`` (for a seed of 2**63
    or more numpy converts the pair through float64: its words, not the seed's, key the
    draws)."""
    key = np.random.Philox(counter=[0, 0, 0, 0], key=[seed, stream]).state["state"]["key"]
    return np.uint64(key[0]), np.uint64(key[1])


def _raw32(seed: int, stream: Stream, first: int, count: int, size: int, context: int):
    """``count`` rows of ``size`` uint32 words: row ``i`` is event ``first + i``."""
    # Small draws with plain arguments in range take the compiled generator; anything else
    # (a bad argument among them) numpy's path, which checks them all.
    small = (type(seed) is int and 0 <= seed < _SEED_LIMIT and type(first) is int
             and type(count) is int and type(size) is int and type(context) is int
             and 0 < size and 0 < count and 0 <= first and 0 <= context < 2**62)
    blocks = -(-size // 8) if small else 0  # one Philox block is four 64-bit words
    if small and count * blocks <= _SMALL_BLOCKS and (first + count) * blocks < 2**62:
        from ._batch import philox_words

        raw = np.empty(count * blocks * 8, dtype=np.uint32)
        philox_words(*_key(seed, int(stream)), np.uint64(first * blocks), np.uint64(context),
                     count * blocks, raw)
        return raw.reshape(count, blocks * 8)[:, :size]
    _check(seed, first, count, size, context)
    blocks = -(-size // 8) or 1  # eight uint32 per block
    bg = np.random.Philox(counter=[first * blocks, context, 0, 0],
                          key=[int(seed), int(stream)])
    raw = bg.random_raw(count * blocks * 4).view(np.uint32)
    return raw.reshape(count, blocks * 8)[:, :size]


def uniforms(seed: int, stream: Stream, first: int, count: int, size: int,
             context: int = 0) -> np.ndarray:
    """Uniform deviates in (0, 1), shape ``(count, size)``: row ``i`` belongs to event
    ``first + i`` of ``stream`` in ``context``."""
    raw = _raw32(seed, stream, first, count, size, context)
    return (raw.astype(np.float64) + 0.5) * 2.0**-32


def normals(seed: int, stream: Stream, first: int, count: int, size: int,
            context: int = 0) -> np.ndarray:
    """Standard normal deviates, shape ``(count, size)``; see :func:`uniforms` for the
    layout and the module docstring for the method.

    Raises
    ------
    ValueError
        The seed, an event number, the size or the context is out of range.
    """
    return to_normals(_raw32(seed, stream, first, count, size, context))


def raw_words(seed: int, stream: Stream, first: int, count: int, size: int,
              context: int = 0) -> np.ndarray:
    """The uint32 words :func:`normals` and :func:`uniforms` transform, ``(count, size)``,
    for callers that need only some of the deviates (:func:`to_normals` of a subset)."""
    return _raw32(seed, stream, first, count, size, context)


def to_normals(raw) -> np.ndarray:
    """Standard normal deviates of raw words (element by element: a subset of the words
    gives the same deviates as the whole)."""
    raw = np.asarray(raw, dtype=np.uint32)
    start, slope = _table()
    low_bits = 32 - _TABLE_BITS
    hi = (raw >> np.uint32(low_bits)).astype(np.intp)
    z = (raw & np.uint32((1 << low_bits) - 1)).astype(np.float64)
    z *= np.take(slope, hi)
    z += np.take(start, hi)
    # The two outermost bins: raw < 2^low_bits or raw >= 2^32 - 2^low_bits (uint32 wraps).
    tails = np.nonzero(raw + np.uint32(1 << low_bits) < np.uint32(2 << low_bits))
    if tails[0].size:
        from scipy.special import ndtri

        z[tails] = ndtri((raw[tails].astype(np.float64) + 0.5) * 2.0**-32)
    return z
