"""In-situ training: the integer rules shared by the RTL's update engine
(:mod:`aimc.rtl.update`), the golden model of an update (:mod:`aimc.model.update`) and the
docs. One source, so that which lines fire in which pulse slot is predicted bit for bit.

An update ``W_rc -= lr * x_r * d_c`` of the whole array happens in ``BL`` pulse slots
(Gokmen & Vlasov, Front. Neurosci. 2016): in each slot every row line ``r`` fires with
probability ``p_r`` proportional to ``|x_r|`` (polarity the sign of ``x_r``), every column
line ``c`` with ``p_c`` proportional to ``|d_c|``, and each device whose two lines fire
together takes one pulse, down when the signs of ``x_r`` and ``d_c`` agree and up when they
differ. The expected number of pulses of a device is ``BL p_r p_c``.

Probabilities are 16-bit fixed point: a line fires when its 16-bit draw is below its
threshold ``q = min(|v| * S, 2**16)`` (``S`` the scale of the vector, 8 fractional bits
dropped), reduced to ``k`` bits (``q & ~(2**(16-k) - 1)``, which is the comparison of the top
``k`` bits of both). Draws come from one xorshift32 generator per line (Marsaglia, J. Stat.
Softw. 2003, the shift triple 13, 17, 5): in every slot of every update each generator first
steps once, then its top 16 bits are the line's draw for that slot. In deterministic mode
the rows compare against one shared ramp instead (a row of probability ``p_r`` fires in the
first ``n_r ~ p_r BL`` slots) and every column spreads its pulses evenly over the slots with
an accumulator (Bresenham: it fires when ``acc + q`` reaches ``2**16``, ``acc`` starting at
``2**15``), so that a row and a column coincide in ``round(n_r p_c)`` slots, about
``BL p_r p_c`` (aihwkit's deterministic implicit pulse count ``rint(BL p_r p_c)``, up to the
rounding of ``n_r``). The generators step in deterministic updates too, so the numbering of
the draws does not depend on the mode.

Update management (aihwkit's ``update_bl_management`` and ``update_management``): with
``m = eta |x|_max |d|_max`` the expected pulse count of the largest product (``eta`` the
learning rate in units of the devices' step ``dw_min`` per product of input LSBs),
``BL = min(ceil(m), BL_max)`` and both vectors' probabilities are rebalanced so that their
largest elements get the same ``P = sqrt(m / BL)`` (at most 1): ``p_r = P |x_r| / |x|_max``,
``p_c = P |d_c| / |d|_max``, hence ``BL p_r p_c = eta |x_r| |d_c|``. The integer arithmetic
below is what the RTL computes, step by step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BL_MAX", "ETA_FRAC", "LINE_COLUMN_BASE", "PROB_BITS", "SCALE_FRAC", "Schedule",
           "line_constant", "line_seeds", "manage", "probability_thresholds", "ramp", "ramp_step",
           "spread", "xorshift32"]

#: Bits of a line's firing probability (and of its draw).
PROB_BITS = 16
#: Fractional bits of the learning-rate register (UPD_ETA, unsigned Q8.24).
ETA_FRAC = 24
#: Fractional bits of a vector's probability scale (UPD_SCALE_X/D and the managed scales).
SCALE_FRAC = 8
#: Width of the scales.
SCALE_BITS = 32
#: Longest update, pulse slots.
BL_MAX = 255
#: Line numbers of the columns start here (rows 0 .. 1023): a line's generator constant does
#: not depend on the tile's size.
LINE_COLUMN_BASE = 1024

_MASK32 = (1 << 32) - 1
_ONE = 1 << PROB_BITS


def line_constant(line: int) -> int:
    """The generator constant of line ``line`` (rows ``0..``, columns from
    :data:`LINE_COLUMN_BASE`): a fixed 32-bit hash of the line number, never 0."""
    z = ((line + 1) * 0x9E3779B9) & _MASK32
    z ^= z >> 16
    z = (z * 0x85EBCA6B) & _MASK32
    z ^= z >> 13
    return z or 1


def line_seeds(seed: int, lines) -> np.ndarray:
    """Generator states after UPD_CTRL.reseed with UPD_SEED ``seed``: ``seed ^ C`` for each
    line's constant ``C``, or ``C`` where that is 0 (a zero state would stay 0)."""
    c = np.array([line_constant(int(n)) for n in lines], dtype=np.uint32)
    s = np.uint32(seed & _MASK32) ^ c
    return np.where(s == 0, c, s).astype(np.uint32)


def xorshift32(state: np.ndarray) -> np.ndarray:
    """One step of every generator (uint32 array), as the RTL takes it in a slot."""
    s = state.astype(np.uint32, copy=True)
    s ^= s << np.uint32(13)
    s ^= s >> np.uint32(17)
    s ^= s << np.uint32(5)
    return s


def probability_thresholds(magnitudes, scale: int, k: int) -> np.ndarray:
    """Thresholds ``min((|v| * scale) >> SCALE_FRAC, 2**16)`` reduced to ``k`` bits: a line
    fires when its draw (or the shared deterministic threshold) is below it."""
    q = np.minimum((np.asarray(magnitudes, dtype=np.int64) * int(scale)) >> SCALE_FRAC, _ONE)
    return q & ~((1 << (PROB_BITS - k)) - 1)


def ramp_step(bl: int) -> int:
    """``round(2**24 / BL)``: the reciprocal the deterministic ramp steps by."""
    return ((1 << 24) + bl // 2) // bl


def ramp(bl: int) -> np.ndarray:
    """Deterministic mode, rows: the threshold of slot ``t`` is ``((2t + 1) R) >> 9`` with
    ``R = ramp_step(BL)``, about ``(t + 1/2) 2**16 / BL``, so that a row of probability ``p``
    fires in about the first ``p BL`` slots. The RTL adds ``2R`` per slot."""
    t = np.arange(bl, dtype=np.int64)
    return ((2 * t + 1) * ramp_step(bl)) >> 9


def spread(thresholds, bl: int) -> np.ndarray:
    """Deterministic mode, columns: whether each line fires in each slot, ``(bl, lines)``.
    A line's accumulator starts at ``2**15``; each slot it adds the line's threshold and
    fires when the sum reaches ``2**16``, keeping the sum modulo ``2**16``. In the first
    ``n`` slots a line of threshold ``q`` fires ``floor((n q + 2**15) / 2**16)`` times:
    ``round(n p)``."""
    q = np.asarray(thresholds, dtype=np.int64)
    acc = np.full(q.shape, _ONE >> 1, dtype=np.int64)
    out = np.zeros((bl,) + q.shape, dtype=bool)
    for t in range(bl):
        acc = acc + q
        out[t] = acc >= _ONE
        acc &= _ONE - 1
    return out


def _quotient(num: int, den: int) -> int:
    """``round(num / den)``, half up, as the RTL's divider is asked: ``(num + den // 2) // den``."""
    return (num + den // 2) // den


@dataclass(frozen=True)
class Schedule:
    """What one update does, before its slots: the number of slots and both scales."""

    bl: int          #: pulse slots
    scale_x: int     #: probability scale of the rows (SCALE_FRAC fractional bits)
    scale_d: int     #: probability scale of the columns
    m_q16: int = 0   #: managed: eta |x|max |d|max, 16 fractional bits
    p_q16: int = 0   #: managed: the largest line probability, 16 fractional bits


def manage(eta: int, xmax: int, dmax: int, bl_max: int) -> Schedule:
    """Hardware update management, the RTL's integer arithmetic:

    * ``m = (eta * xmax * dmax) >> (ETA_FRAC - 16)`` (16 fractional bits, saturated to 32
      bits); with ``m == 0`` (a zero vector) the update has no slot;
    * ``BL = min(ceil(m), bl_max)``;
    * ``r = min(round(m / BL), 2**16)`` and ``P = isqrt(r << 16)`` (16 fractional bits, at
      most 1.0);
    * ``S_x = round((P << SCALE_FRAC) / xmax)``, ``S_d`` likewise with ``dmax``.

    Parameters
    ----------
    eta : int
        UPD_ETA, unsigned Q8.24.
    xmax, dmax : int
        Largest magnitudes of the row and column vectors.
    bl_max : int
        UPD_BL, 1 .. BL_MAX.
    """
    m = min((eta * xmax * dmax) >> (ETA_FRAC - PROB_BITS), _MASK32)
    if m == 0:
        return Schedule(0, 0, 0, 0, 0)
    bl = min(-(-m >> PROB_BITS), bl_max)
    r = min(_quotient(m, bl), _ONE)
    p = math.isqrt(r << PROB_BITS)
    return Schedule(bl, _quotient(p << SCALE_FRAC, xmax), _quotient(p << SCALE_FRAC, dmax),
                    m, p)
