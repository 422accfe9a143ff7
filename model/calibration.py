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
* capture or drift: the reference vector of a :class:`DriftReference` (``DRIFT_X`` on the
  rows ``DRIFT_ROWS`` drives, with their signs; 0 on the others); ``S`` is the sum over the
  MVMs and over the columns ``DRIFT_COLS`` counts and no flag excludes of ``|corrected|``
  (offset and gain applied, drift scale 1.0, in the output format with ``RESULT_FRAC``
  fractional bits), and ``S_avg = S >> k``. A signal too small to measure, ``S_avg <
  max(DRIFT_MIN, 1)``, is refused: the run ends with an error and the weak flag, and the
  phase changes nothing. Otherwise capture (which takes precedence when both are selected)
  stores ``S_avg`` as the drift reference and sets the scale to 1.0; drift sets the scale to
  ``round(drift_ref * 2**DRIFT_FRAC / S_avg)`` (an error if ``drift_ref`` is 0, no reference
  having been captured, or if the scale does not fit 16 bits; the scale is then left as it
  was).

Why a reference of its own for each block. With every row at ``DRIFT_X`` and every column
counted, a block that uses a small part of a tile gives a drift scale that is mostly noise:
the signed weights of a column cancel in the sum over the rows, and the unused columns add
their residual offsets, which do not drift (a 16x2 layer on a 64x64 tile measured 1.16 where
1.51 was needed a day after programming). :meth:`DriftReference.for_targets` drives only the
programmed rows, with signs that make the programmed columns' results add up, at the
largest ``DRIFT_X`` that keeps them inside the converter range, and counts only the
programmed columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import TileConfig
from ..fixedpoint import (
    DRIFT_BITS,
    DRIFT_FRAC,
    GAIN_FRAC,
    GAIN_MAX,
    GAIN_MIN,
    MAX_AVG_LOG2,
    ONE,
    RESULT_FRAC,
    CalFormat,
)
from ..numeric import as_int
from .state import ChipState

__all__ = ["COL_GAIN", "COL_RAIL", "Calibration", "DriftReference", "PHASES", "calibrate",
           "capture_drift", "compensate_drift", "drift_min_default", "mvm_error",
           "true_drift_scale"]

COL_RAIL = 1  #: column status bit: a result at a rail during the offset phase
COL_GAIN = 2  #: column status bit: no usable reference response or gain out of range
PHASES = ("offset", "gain", "capture", "drift")


@dataclass
class Calibration:
    """Coefficients and registers after a calibration run (and the inputs of the next).

    ``weak`` is ``CAL_STATUS.weak``: the run's capture or drift phase measured a reference
    signal below ``DRIFT_MIN`` and changed nothing (``error`` is set with it)."""

    offset: np.ndarray
    gain: np.ndarray
    status: np.ndarray
    drift_ref: int = 0
    drift_scale: int = ONE
    error: bool = False
    mvms: int = 0                 #: MVMs the run used
    abs_sum: int | None = None    #: S_avg of the last capture or drift phase
    log: list = field(default_factory=list)
    weak: bool = False

    @classmethod
    def reset(cls, cols: int) -> Calibration:
        """The coefficients the RTL holds after reset: offset 0, gain 1.0, no flags."""
        return cls(np.zeros(cols, dtype=np.int64), np.full(cols, ONE, dtype=np.int64),
                   np.zeros(cols, dtype=np.int64))

    @property
    def bad(self) -> np.ndarray:
        return self.status != 0

    def copy(self) -> Calibration:
        """An independent copy (arrays copied)."""
        return Calibration(self.offset.copy(), self.gain.copy(), self.status.copy(),
                           self.drift_ref, self.drift_scale, self.error, self.mvms,
                           self.abs_sum, list(self.log), self.weak)


def drift_min_default(tile: TileConfig) -> int:
    """``DRIFT_MIN`` at reset for ``tile`` (see
    :attr:`aimc.fixedpoint.CalFormat.drift_min_default`)."""
    return CalFormat(tile).drift_min_default


@dataclass(frozen=True, eq=False)
class DriftReference:
    """The reference of the capture and drift phases: the registers ``DRIFT_X``,
    ``DRIFT_ROWS``, ``DRIFT_COLS`` and ``DRIFT_MIN``.

    Parameters
    ----------
    tile : TileConfig
        The tile the reference is for.
    x : int
        ``DRIFT_X``: the input on every driven row, ``-x_max .. x_max``.
    rows : array of int, shape (rows,)
        ``DRIFT_ROWS``: per row 0 (not driven: input 0), +1 (``DRIFT_X``) or -1
        (``-DRIFT_X``).
    cols : array of bool, shape (cols,)
        ``DRIFT_COLS``: the columns whose results count in ``S``.
    min_sum : int
        ``DRIFT_MIN``: the smallest ``S_avg`` accepted (units of the corrected result),
        ``0 .. 2**32-1``; ``S_avg`` of 0 is always refused.

    Raises
    ------
    TypeError
        ``tile`` is not a TileConfig.
    ValueError
        A value outside what is allowed, or an array of the wrong shape.
    """

    tile: TileConfig
    x: int
    rows: np.ndarray
    cols: np.ndarray
    min_sum: int

    def __post_init__(self):
        tile = self.tile
        if not isinstance(tile, TileConfig):
            raise TypeError(f"DriftReference.tile must be a TileConfig, not {tile!r}")
        x = self.x
        if isinstance(x, bool) or not isinstance(x, int | np.integer) or abs(x) > tile.x_max:
            raise ValueError(f"DriftReference.x (DRIFT_X) must be an integer in "
                             f"-{tile.x_max}..{tile.x_max}, not {x!r}")
        object.__setattr__(self, "x", int(x))
        rows = np.asarray(self.rows)
        if rows.shape != (tile.rows,) or not np.isin(rows, (-1, 0, 1)).all():
            raise ValueError(f"DriftReference.rows (DRIFT_ROWS) must be {tile.rows} values "
                             f"each -1, 0 or +1, not an array of shape {rows.shape} holding "
                             f"{np.unique(rows)[:6].tolist()}")
        cols = np.asarray(self.cols)
        if cols.shape != (tile.cols,) or cols.dtype != bool:
            raise ValueError(f"DriftReference.cols (DRIFT_COLS) must be {tile.cols} booleans, "
                             f"not an array of shape {cols.shape} and dtype {cols.dtype}")
        m = self.min_sum
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m < 2**32:
            raise ValueError(f"DriftReference.min_sum (DRIFT_MIN) must be an integer in "
                             f"0..2**32-1, not {m!r}")
        object.__setattr__(self, "min_sum", int(m))
        rows, cols = rows.astype(np.int64), cols.copy()
        rows.flags.writeable = cols.flags.writeable = False
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)

    @classmethod
    def default(cls, tile: TileConfig, x: int | None = None) -> DriftReference:
        """The registers at reset: every row at ``DRIFT_X`` (default ``x_max // 2``), every
        column counted, ``DRIFT_MIN`` at :func:`drift_min_default`."""
        return cls(tile, tile.x_max // 2 if x is None else x, np.ones(tile.rows, np.int64),
                   np.ones(tile.cols, bool), drift_min_default(tile))

    @classmethod
    def for_weights(cls, weights, chip, fill: float = 0.5,
                    min_sum: int | None = None) -> DriftReference:
        """A reference representative of the programmed block ``weights``.

        Drives only the rows with a programmed weight, with signs ``s`` chosen so that the
        programmed columns' results add up (a local maximum of ``sum_c |s . w_c|``, by
        alternating sign updates from the all-positive vector and from the signs of the
        strongest column), counts only the columns with a programmed weight, and takes the
        largest ``DRIFT_X`` for which the ideal results of the counted columns stay within
        ``fill`` of the converter's half range (room for gain errors and temperature).

        Parameters
        ----------
        weights : array (rows, cols)
            The weights the chip holds, in conductance LSB (``chip.target_weights``; for
            read-count targets ``t``, ``t / chip.read_counts_per_lsb``).
        chip : Chip
            The chip (its tile, ADC step and input mode).
        fill : float
            Share of the converter's half range the largest ideal reference result may
            reach, in (0, 1].
        min_sum : int, optional
            ``DRIFT_MIN``; default :func:`drift_min_default`.

        Raises
        ------
        ValueError
            ``weights`` of the wrong shape, ``fill`` outside (0, 1].
        """
        tile = chip.tile
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (tile.rows, tile.cols):
            raise ValueError(f"weights must have shape {(tile.rows, tile.cols)}, "
                             f"not {w.shape}")
        if not (isinstance(fill, int | float) and 0 < fill <= 1):
            raise ValueError(f"fill must be a number in (0, 1], not {fill!r}")
        used_r, used_c = (w != 0).any(axis=1), (w != 0).any(axis=0)
        min_sum = drift_min_default(tile) if min_sum is None else min_sum
        if not used_c.any():
            return cls(tile, 0, np.zeros(tile.rows, np.int64), used_c, min_sum)
        signs = np.zeros(tile.rows, np.int64)
        signs[used_r] = _representative_signs(w[np.ix_(used_r, used_c)])
        # The ideal result of column c for the input x on the driven rows is
        # x * (s . w_c) / lsb (PWM: |x| cycles of drive).
        peak = float(np.abs(signs @ w)[used_c].max())
        half = 2 ** (tile.adc_bits - 1)
        if tile.input_mode == "pwm":
            x = int(np.clip(np.floor(fill * half * chip.lsb / peak), 1, tile.x_max)) \
                if peak > 0 else tile.x_max
        else:
            x = tile.x_max  # each plane drives 0 or 1: the magnitude only weights planes
        return cls(tile, x, signs, used_c, min_sum)

    def vector(self) -> np.ndarray:
        """The reference input vector, ``(rows,)``."""
        return self.rows * self.x

    def ideal_sum(self, chip) -> float:
        """``S_avg`` an ideal chip with ``chip``'s target weights and ADC step gives (units
        of the corrected result, before rounding)."""
        v = self.vector() @ chip.target_weights / chip.lsb
        return float(np.abs(v[self.cols]).sum() * 2**RESULT_FRAC)


def _representative_signs(w: np.ndarray) -> np.ndarray:
    """Row signs ``s`` (+1 or -1) with a large ``sum_c |s . w_c|`` for the block ``w`` (rows
    by columns): alternating maximisation of ``s^T w u`` over ``u = sign(w^T s)`` and ``s =
    sign(w u)``, from two starts; deterministic (``sign(0)`` is +1)."""
    def sign(v):
        return np.where(v < 0, -1, 1)

    best, best_value = None, -1.0
    strongest = int(np.argmax(np.abs(w).sum(axis=0)))
    for s in (np.ones(w.shape[0], np.int64), sign(w[:, strongest])):
        for _ in range(32):
            s_next = sign(w @ sign(s @ w))
            if np.array_equal(s_next, s):
                break
            s = s_next
        value = float(np.abs(s @ w).sum())
        if value > best_value:
            best, best_value = s, value
    return best


def calibrate(state: ChipState, phases, first_vector: int, k: int = 6, ref: int | None = None,
              drift_x: int | None = None, start: Calibration | None = None,
              reference: DriftReference | None = None) -> Calibration:
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
        ``CAL_REF`` and ``DRIFT_X`` (default: their reset values); ``drift_x`` is used only
        without ``reference``.
    start : Calibration
        Coefficients and registers before the run (default: after reset).
    reference : DriftReference, optional
        The reference of the capture and drift phases (``DRIFT_X``, ``DRIFT_ROWS``,
        ``DRIFT_COLS``, ``DRIFT_MIN``); default: their reset values with ``drift_x``.

    Returns
    -------
    Calibration
        The coefficients and registers after the run; ``error`` and ``weak`` as
        ``CAL_STATUS`` shows them.

    Raises
    ------
    ValueError
        Unknown phase, ``k`` above :data:`MAX_AVG_LOG2`, or a reference for another tile.
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
    if reference is None:
        reference = DriftReference.default(tile, drift_x)
    elif not isinstance(reference, DriftReference) or reference.tile != tile:
        raise ValueError(f"reference must be a DriftReference for the tile {tile.key}, "
                         f"not {reference!r}")
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
        x = np.broadcast_to(reference.vector(), (n, tile.rows))
        raw = state.mvm(x, v)
        v += n
        corrected, _ = fmt.correct(raw, cal.offset, cal.gain, ONE)
        counted = ~cal.bad & reference.cols
        total = int(np.abs(corrected[:, counted]).sum())
        cal.abs_sum = total >> k
        if cal.abs_sum < max(reference.min_sum, 1):
            cal.error = cal.weak = True   # too small to measure: nothing changes
        elif "capture" in phases:
            cal.drift_ref, cal.drift_scale = cal.abs_sum, ONE
        elif cal.drift_ref == 0:
            cal.error = True              # no reference captured: no scale to compute
        else:
            q, overflow = fmt.quotient(cal.drift_ref, cal.abs_sum, DRIFT_FRAC, DRIFT_BITS)
            if overflow:
                cal.error = True
            else:
                cal.drift_scale = q
    cal.mvms = v - first_vector
    return cal


def capture_drift(state: ChipState, first_vector: int, start: Calibration, k: int = 6,
                  reference: DriftReference | None = None) -> Calibration:
    """The capture phase alone: store the reference's response ``S_avg`` as ``DRIFT_REF``
    (right after programming, with the coefficients ``start`` the results are corrected
    with) and set the drift scale to 1.0; see :func:`calibrate`."""
    return calibrate(state, ("capture",), first_vector, k, start=start, reference=reference)


def compensate_drift(state: ChipState, first_vector: int, start: Calibration, k: int = 6,
                     reference: DriftReference | None = None) -> Calibration:
    """The drift phase alone: ``DRIFT_SCALE = DRIFT_REF / S_avg`` at the moment of
    ``state``, with the reference :func:`capture_drift` used; see :func:`calibrate`. A weak
    signal leaves the scale unchanged and sets ``weak`` and ``error``."""
    return calibrate(state, ("drift",), first_vector, k, start=start, reference=reference)


def true_drift_scale(chip, time: float, temperature: float | None = None,
                     mask=None, reference_time: float = 0.0) -> float:
    """The drift scale that best restores the weights: the least-squares factor ``a`` with
    ``a W(time) ~ W(reference_time)`` over the programmed weights (``mask``: default the
    nonzero target weights), from the chip's effective weights (hidden state: drift, 1/f
    noise, temperature, IR drop). What a perfect drift compensation would set."""
    w0 = chip.state(reference_time).weights
    wt = chip.state(time, temperature).weights
    mask = chip.target_weights != 0 if mask is None else np.asarray(mask, dtype=bool)
    a, b = w0[mask], wt[mask]
    den = float(b @ b)
    return float(a @ b) / den if den else float("nan")


def mvm_error(state: ChipState, x, results, good, raw=None) -> dict:
    """Error of ``results`` (output format, RESULT_FRAC fractional bits) against ideal
    arithmetic ``x @ w / lsb``, in percent of full scale (the converter's half range times
    the bit-plane weights): RMS, worst case, and the RMS that rounding to the converter's
    resolution alone leaves. Only the columns ``good`` and the results whose ideal value
    and raw conversion are inside the converter's range count. ``raw``, the raw results of
    ``x`` when the caller has them, saves the MVMs that find the conversions at a rail."""
    chip, tile = state.chip, state.tile
    fmt = CalFormat(tile)
    x = np.asarray(x)
    exact = (x @ chip.target_weights) / chip.lsb
    lo, hi = fmt.rails
    raw = state.mvm(x) if raw is None else np.asarray(raw)  # only to mask conversions at a rail
    use = (np.abs(exact) < hi - 1) & (raw > lo) & (raw < hi) & np.asarray(good)[None, :]
    e = (np.asarray(results) / 2**tile.result_frac - exact)[use]
    rounding = (np.floor(exact + 0.5) - exact)[use]
    full = 2 ** (tile.adc_bits - 1) * (2**tile.planes - 1)
    return {"rms_percent": float(np.sqrt(np.mean(e**2)) / full * 100),
            "worst_percent": float(np.abs(e).max() / full * 100),
            "rounding_rms_percent": float(np.sqrt(np.mean(rounding**2)) / full * 100),
            "samples": int(use.sum())}
