"""The golden calibration algorithm: what the RTL's calibration engine computes, bit for bit.

The engine measures through the same MVMs the batch path predicts exactly, so running its
integer arithmetic (:mod:`aimc.fixedpoint`) on the batch path's results gives the
coefficients the RTL must hold. A run executes the selected phases in this order, each on
``2**k`` MVMs that follow one another in the chip's event numbering:

* offset: zero input; per column ``offset = average(sum of raw results)``; a column whose
  result sits at a rail in any of these MVMs is flagged (``COL_RAIL``);
* gain: zero input with the reference charge; ``m = average(...)``, ``d = m - offset``,
  ``gain = round(ref * 2**GAIN_FRAC / d)``; a column with ``d <= 0``, a quotient that does
  not fit 16 bits, or a gain outside ``[0.5, 2)`` is flagged (``COL_GAIN``) and keeps 1.0;
* capture or drift: every row at ``drift_x``; ``S`` is the sum over the MVMs and over the
  unflagged columns of ``|corrected|`` (offset and gain applied, drift scale 1.0, in the
  output format with ``RESULT_FRAC`` fractional bits), and
  ``S_avg = S >> k``. Capture (which takes precedence when both are selected) stores
  ``S_avg`` as the drift reference and sets the scale to 1.0; drift sets the scale
  to ``round(drift_ref * 2**DRIFT_FRAC / S_avg)`` (an error if ``S_avg`` is 0 or the scale
  does not fit 16 bits; the scale is then left as it was).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import (
    DRIFT_BITS,
    DRIFT_FRAC,
    GAIN_FRAC,
    GAIN_MAX,
    GAIN_MIN,
    MAX_AVG_LOG2,
    ONE,
    CalFormat,
)
from ..numeric import as_int
from .state import ChipState

__all__ = ["COL_GAIN", "COL_RAIL", "Calibration", "PHASES", "calibrate", "mvm_error"]

COL_RAIL = 1  #: column status bit: a result at a rail during the offset phase
COL_GAIN = 2  #: column status bit: no usable reference response or gain out of range
PHASES = ("offset", "gain", "capture", "drift")


@dataclass
class Calibration:
    """Coefficients and registers after a calibration run (and the inputs of the next)."""

    offset: np.ndarray
    gain: np.ndarray
    status: np.ndarray
    drift_ref: int = 0
    drift_scale: int = ONE
    error: bool = False
    mvms: int = 0                 #: MVMs the run used
    abs_sum: int | None = None    #: S_avg of the last capture or drift phase
    log: list = field(default_factory=list)

    @classmethod
    def reset(cls, cols: int) -> Calibration:
        """The coefficients the RTL holds after reset: offset 0, gain 1.0, no flags."""
        return cls(np.zeros(cols, dtype=np.int64), np.full(cols, ONE, dtype=np.int64),
                   np.zeros(cols, dtype=np.int64))

    @property
    def bad(self) -> np.ndarray:
        return self.status != 0


def calibrate(state: ChipState, phases, first_vector: int, k: int = 6, ref: int | None = None,
              drift_x: int | None = None, start: Calibration | None = None) -> Calibration:
    """Run the calibration engine's algorithm on ``state``.

    Parameters
    ----------
    state : ChipState
        The chip at the moment of calibration.
    phases : iterable of str
        Phases to run, a subset of :data:`PHASES` (run in that order).
    first_vector : int
        MVM number of the run's first MVM since the model's reset (it keys the noise).
    k : int
        ``CAL_CTRL.avg_log2``: each measurement averages ``2**k`` MVMs.
    ref, drift_x : int
        ``CAL_REF`` and ``DRIFT_X`` (default: their reset values).
    start : Calibration
        Coefficients and registers before the run (default: after reset).

    Raises
    ------
    ValueError
        Unknown phase, or ``k`` above :data:`MAX_AVG_LOG2`.
    """
    tile = state.tile
    fmt = CalFormat(tile)
    phases = set(phases)
    unknown = phases - set(PHASES)
    if unknown:
        raise ValueError(f"calibration phases must be among {', '.join(PHASES)}, "
                         f"not {sorted(unknown)}")
    k = as_int(k, "k", 0, MAX_AVG_LOG2)
    ref = fmt.ref_default if ref is None else ref
    drift_x = tile.x_max // 2 if drift_x is None else drift_x
    cal = start or Calibration.reset(tile.cols)
    cal = Calibration(cal.offset.copy(), cal.gain.copy(), cal.status.copy(), cal.drift_ref,
                      cal.drift_scale)
    n, v = 2**k, first_vector
    zeros = np.zeros((n, tile.rows), dtype=np.int64)
    lo, hi = fmt.rails

    if "offset" in phases:
        raw = state.mvm(zeros, v)
        v += n
        cal.offset = fmt.average(raw.sum(axis=0), k)
        rail = ((raw == lo) | (raw == hi)).any(axis=0)
        cal.status = (cal.status & ~COL_RAIL) | np.where(rail, COL_RAIL, 0)
    if "gain" in phases:
        raw = state.mvm(zeros, v, reference=True)
        v += n
        d = fmt.average(raw.sum(axis=0), k) - cal.offset
        bad = np.zeros(tile.cols, dtype=bool)
        for c in range(tile.cols):
            q, overflow = fmt.quotient(ref, int(d[c]), GAIN_FRAC)
            bad[c] = overflow or not GAIN_MIN <= q < GAIN_MAX
            cal.gain[c] = ONE if bad[c] else q
        cal.status = (cal.status & ~COL_GAIN) | np.where(bad, COL_GAIN, 0)
    if "capture" in phases or "drift" in phases:
        x = np.full((n, tile.rows), drift_x, dtype=np.int64)
        raw = state.mvm(x, v)
        v += n
        corrected, _ = fmt.correct(raw, cal.offset, cal.gain, ONE)
        total = int(np.abs(corrected[:, ~cal.bad]).sum())
        cal.abs_sum = total >> k
        if "capture" in phases:
            cal.drift_ref, cal.drift_scale = cal.abs_sum, ONE
        else:
            q, overflow = fmt.quotient(cal.drift_ref, cal.abs_sum, DRIFT_FRAC, DRIFT_BITS)
            if overflow:
                cal.error = True
            else:
                cal.drift_scale = q
    cal.mvms = v - first_vector
    return cal


def mvm_error(state: ChipState, x, results, good) -> dict:
    """Error of ``results`` (output format, RESULT_FRAC fractional bits) against ideal
    arithmetic ``x @ w / lsb``, in percent of full scale (the converter's half range times
    the bit-plane weights): RMS, worst case, and the RMS that rounding to the converter's
    resolution alone leaves. Only the columns ``good`` and the results whose ideal value
    and raw conversion are inside the converter's range count."""
    chip, tile = state.chip, state.tile
    fmt = CalFormat(tile)
    x = np.asarray(x)
    exact = (x @ chip.target_weights) / chip.lsb
    lo, hi = fmt.rails
    raw = state.mvm(x)  # only to mask conversions at a rail
    use = (np.abs(exact) < hi - 1) & (raw > lo) & (raw < hi) & np.asarray(good)[None, :]
    e = (np.asarray(results) / 2**tile.result_frac - exact)[use]
    rounding = (np.floor(exact + 0.5) - exact)[use]
    full = 2 ** (tile.adc_bits - 1) * (2**tile.planes - 1)
    return {"rms_percent": float(np.sqrt(np.mean(e**2)) / full * 100),
            "worst_percent": float(np.abs(e).max() / full * 100),
            "rounding_rms_percent": float(np.sqrt(np.mean(rounding**2)) / full * 100),
            "samples": int(use.sum())}
