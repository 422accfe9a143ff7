"""Program-and-verify: the golden algorithm of the RTL engine, and the figures of a run.

:func:`program_and_verify` runs, on a :class:`~aimc.model.chip.Chip`, exactly the steps
the engine of :mod:`aimc.rtl.program` takes: the same device reads (same read numbers, so
the same noise), the same decisions and the same pulses (same pulse-step
numbers). Run on a twin of the chip a cosimulation programs, it predicts every counter,
every device's status and every conductance bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import GAIN_FRAC, ONE, RESULT_FRAC, CalFormat
from ..numeric import as_int, as_int_array
from ..programming import (
    PROG_RESET_GAIN,
    PROG_SET_GAIN,
    WIDTH_REF,
    amplitude,
    read_full_scale,
    side_targets,
)
from .chip import Chip

__all__ = ["ProgramParams", "ProgramResult", "check_targets", "program_and_verify",
           "report", "targets_from_weights"]

#: Bits of a column's field in the engine's per-row status packet (see aimc.rtl.program).
POS_PASS, POS_STUCK, NEG_PASS, NEG_STUCK = 1, 2, 4, 8


@dataclass(frozen=True)
class ProgramParams:
    """The engine's register settings (PROG_CTRL, PROG_LIMITS, PROG_GAIN)."""

    tol: int = 5
    max_iter: int = 30
    width: int = WIDTH_REF
    set_gain: int = PROG_SET_GAIN
    reset_gain: int = PROG_RESET_GAIN
    parallel: bool = True
    correct: bool = False

    def __post_init__(self):
        for name, lo in (("tol", 0), ("max_iter", 1), ("width", 1), ("set_gain", 0),
                         ("reset_gain", 0)):
            unit = {"max_iter": "pulse steps", "width": "cycles", "tol": "counts"}.get(name, "")
            allowed = f"an integer in {lo}..255" + (f" ({unit})" if unit else "")
            object.__setattr__(self, name, as_int(getattr(self, name), f"ProgramParams.{name}",
                                                  lo, 255, allowed=allowed))


@dataclass
class ProgramResult:
    """What a run did: the engine's counters and the per-row status packets."""

    status: np.ndarray                  # (rows, cols) flags POS_PASS | POS_STUCK | ...
    pulses: int = 0
    passed: int = 0
    failed: int = 0
    stuck: int = 0
    reads: int = 0
    steps: int = 0
    iterations: np.ndarray = field(default=None)  # (rows, cols, 2) pulse steps per device

    def counters(self) -> dict:
        return {k: getattr(self, k) for k in ("pulses", "passed", "failed", "stuck", "reads",
                                              "steps")}


def check_targets(targets, chip: Chip) -> np.ndarray:
    """Validate signed read-count targets ``(rows, cols)`` for ``chip``'s tile."""
    tile = chip.tile
    t = np.asarray(targets)
    if t.shape != (tile.rows, tile.cols):
        raise ValueError(f"targets must have shape {(tile.rows, tile.cols)}, not {t.shape}")
    t = as_int_array(t, "targets (read counts)")
    t_max = read_full_scale(tile.adc_bits)
    if t.size and np.abs(t).max() > t_max:
        raise ValueError(f"targets must lie in -{t_max}..{t_max} (the read counts of g_max at "
                         f"adc_bits={tile.adc_bits}), found {int(np.abs(t).max())}")
    return t.astype(np.int64)


def targets_from_weights(weights, chip: Chip) -> tuple[np.ndarray, float]:
    """Read-count targets for a weight matrix: integer arrays are taken as counts; floating
    arrays are scaled so that the largest magnitude is the largest count. Returns the
    targets and the scale (counts per unit of weight)."""
    w = np.asarray(weights)
    t_max = read_full_scale(chip.tile.adc_bits)
    if np.issubdtype(w.dtype, np.integer):
        return check_targets(w, chip), 1.0
    if not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be integers (counts) or finite floating-point numbers")
    peak = float(np.abs(w).max(initial=0.0))
    scale = t_max / peak if peak else 1.0
    return check_targets(np.round(w * scale).astype(np.int64), chip), scale


def _values(chip: Chip, fmt: CalFormat, codes: np.ndarray, params: ProgramParams,
            calibration) -> np.ndarray:
    """Read results as the engine sees them (RESULT_FRAC fractional bits)."""
    if params.correct and chip.tile.input_mode == "pwm":
        if calibration is None:
            raise ValueError("correct=True needs the calibration coefficients the RTL holds")
        return fmt.correct(codes, calibration.offset, calibration.gain, ONE)[0]
    return fmt.uncorrected(codes)


def program_and_verify(chip: Chip, targets, params: ProgramParams = ProgramParams(), *,
                       first_read: int = 0, calibration=None,
                       time: float = 0.0) -> ProgramResult:
    """Program ``targets`` (signed read counts, ``(rows, cols)``) into ``chip`` as the RTL
    engine does. ``first_read`` is the number of the engine's first device read (the
    device reads the chip's cycle model counted before it); ``calibration``
    holds the coefficients for ``params.correct``."""
    t = check_targets(targets, chip)
    rows, cols = chip.tile.rows, chip.tile.cols
    tol_q = params.tol << RESULT_FRAC
    res = ProgramResult(status=np.zeros((rows, cols), dtype=np.int64),
                        iterations=np.zeros((rows, cols, 2), dtype=np.int64))
    read = first_read
    fmt = CalFormat(chip.tile)
    groups = [np.ones(cols, dtype=bool)] if params.parallel else \
        [np.arange(cols) == c for c in range(cols)]
    for r in range(rows):
        for side in (0, 1):
            ts = side_targets(t[r], side) << RESULT_FRAC
            ok = np.zeros(cols, dtype=bool)
            stuck = np.zeros(cols, dtype=bool)
            for group in groups:
                todo, it, first = group.copy(), 0, None
                while True:
                    codes = chip.read_row(r, side, read, time=time)
                    read += 1
                    res.reads += 1
                    v = _values(chip, fmt, codes, params, calibration)
                    if it == 0:
                        first = v
                    e = v - ts
                    hit = np.abs(e) <= tol_q
                    last = it == params.max_iter
                    fail = todo & ~hit & last
                    stk = fail & (np.abs(v - first) <= tol_q)
                    again = todo & ~hit & (not last)
                    res.passed += int(np.sum(todo & hit))
                    res.failed += int(np.sum(fail))
                    res.stuck += int(np.sum(stk))
                    res.pulses += int(np.sum(again))
                    ok |= todo & hit
                    stuck |= stk
                    todo = again
                    if not again.any():
                        break
                    amp = np.where(e < 0, amplitude(e, params.set_gain, RESULT_FRAC),
                                   amplitude(e, params.reset_gain, RESULT_FRAC))
                    chip.pulse(r, side, again & (e < 0), again & (e > 0), amp, params.width)
                    res.iterations[r, again, side] += 1
                    res.steps += 1
                    it += 1
            if side == 0:
                res.status[r] |= np.where(ok, POS_PASS, 0) | np.where(stuck, POS_STUCK, 0)
            else:
                res.status[r] |= np.where(ok, NEG_PASS, 0) | np.where(stuck, NEG_STUCK, 0)
    return res


def report(chip: Chip, targets, status: np.ndarray, tol: int, calibration=None) -> dict:
    """Figures of a programmed chip: yield, weight error, devices within tolerance.

    * ``yield``: fraction of devices the engine passed;
    * ``model_within_tol``: of the passed devices, the fraction whose noise-free read (as
      the engine sees it: raw, or corrected with ``calibration``) is within ``tol`` counts
      plus one raw code (the read noise can move a conversion by one code; corrected, that
      code weighs the column's gain, plus the rounding of the corrected values);
    * ``weight_error_sigma`` and ``weight_error_worst``: RMS and worst of
      ``(G+ - G-) / g_lsb - target / read_counts_per_lsb`` over all weights, in % of w_max.
    """
    t = check_targets(targets, chip)
    passed = np.stack([(status & POS_PASS) != 0, (status & NEG_PASS) != 0], axis=-1)
    fmt = CalFormat(chip.tile)
    margin = 1.0
    if calibration is not None:
        # One raw code through the column's gain, and the rounding of both corrected values.
        margin = np.asarray(calibration.gain) / 2.0**GAIN_FRAC + 2.0**-RESULT_FRAC
    near = []
    for s in (0, 1):
        raw = chip.ideal_reads(s)
        value = (fmt.uncorrected(raw) if calibration is None else
                 fmt.correct(raw, calibration.offset, calibration.gain, ONE)[0])
        near.append(np.abs(value / 2**RESULT_FRAC - side_targets(t, s)) <= tol + margin)
    near = np.stack(near, axis=-1)
    g = chip.g_prog
    w = (g[..., 0] - g[..., 1]) / chip.g_lsb
    err = (w - t / chip.read_counts_per_lsb) / chip.w_max * 100
    return {
        "devices": int(passed.size),
        "yield": float(passed.mean()),
        "passed": int(passed.sum()),
        "model_within_tol": float(near[passed].mean()) if passed.any() else 1.0,
        "passed_outside_tol": int((passed & ~near).sum()),
        "weight_error_sigma": float(np.sqrt(np.mean(err**2))),
        "weight_error_mean": float(err.mean()),
        "weight_error_worst": float(np.abs(err).max(initial=0.0)),
    }
