"""Fixed-point formats and arithmetic of the calibration subsystem: the one source for the
RTL (widths), the golden calibration algorithm (the same integer arithmetic) and the docs.

Per column ``c`` the correction datapath computes, in integers::

    diff      = (raw << OFF_FRAC) - offset[c]                         signed
    g_eff     = (gain[c] * drift + 2**(DRIFT_FRAC-1)) >> DRIFT_FRAC   unsigned, GAIN_FRAC frac bits
    corrected = clamp((diff * g_eff + 2**(S-1)) >> S, -2**(W-1), 2**(W-1)-1)
                S = OFF_FRAC + GAIN_FRAC - RESULT_FRAC,  W = R + RESULT_FRAC

``>>`` is an arithmetic (floor) shift, so adding half first rounds half up. ``R`` is the
raw result width of the tile (``TileConfig.result_bits``); results leave with
``RESULT_FRAC`` fractional bits (a raw result as ``raw << RESULT_FRAC``), so the correction
keeps a quarter of an ADC step of resolution. A clamped value is a saturation.

Averages of ``2**k`` results (``k`` from 0 to :data:`MAX_AVG_LOG2`) keep ``OFF_FRAC``
fractional bits: ``avg = ((sum << OFF_FRAC) + 2**(k-1)) >> k`` (no rounding term for k = 0).
Gains and the drift scale are quotients rounded to nearest: ``(num << FRAC) + (den >> 1)``
divided by ``den``, floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RESULT_FRAC, TileConfig

__all__ = ["CalFormat", "DRIFT_FRAC", "GAIN_FRAC", "MAX_AVG_LOG2", "OFF_FRAC", "RESULT_FRAC",
           "markdown_table"]

OFF_FRAC = 4        #: fractional bits of offsets and averages
GAIN_FRAC = 14      #: fractional bits of gains (unsigned Q2.14)
GAIN_BITS = 16
DRIFT_FRAC = 14     #: fractional bits of the global drift scale (unsigned Q2.14)
DRIFT_BITS = 16
MAX_AVG_LOG2 = 8    #: at most 2**8 conversions per average
GAIN_MIN = 1 << (GAIN_FRAC - 1)   #: 0.5: a calibrated gain below is a bad column
GAIN_MAX = 1 << (GAIN_FRAC + 1)   #: 2.0 (exclusive)
ONE = 1 << GAIN_FRAC              #: gain 1.0, also the drift scale 1.0


@dataclass(frozen=True)
class CalFormat:
    """Widths of the calibration quantities of one tile configuration."""

    cfg: TileConfig

    @property
    def raw_bits(self) -> int:
        """Width of a raw (and of a corrected) result, two's complement."""
        return self.cfg.result_bits

    @property
    def out_bits(self) -> int:
        """Width of a result on the output stream (RESULT_FRAC fractional bits)."""
        return self.raw_bits + RESULT_FRAC

    @property
    def off_bits(self) -> int:
        """Offset width (signed, OFF_FRAC fractional bits): the raw range plus a guard bit."""
        return self.raw_bits + OFF_FRAC + 1

    @property
    def diff_bits(self) -> int:
        return self.off_bits + 1

    @property
    def geff_bits(self) -> int:
        return GAIN_BITS + DRIFT_BITS - DRIFT_FRAC

    @property
    def sum_bits(self) -> int:
        """Signed sum of up to 2**MAX_AVG_LOG2 raw results."""
        return self.raw_bits + MAX_AVG_LOG2

    @property
    def abs_sum_bits(self) -> int:
        """Unsigned sum over columns of |corrected| for one MVM, averaged."""
        return self.out_bits + max(self.cfg.cols - 1, 1).bit_length()

    @property
    def ref_bits(self) -> int:
        """Expected reference response (unsigned, OFF_FRAC fractional bits)."""
        return self.raw_bits + OFF_FRAC

    @property
    def ref_default(self) -> int:
        """Nominal reference response: 3/4 of the converter half range per conversion,
        summed with the bit-plane weights, in OFF_FRAC fixed point."""
        cfg = self.cfg
        per_conversion = 3 * 2 ** (cfg.adc_bits - 1) // 4
        return (per_conversion * (2**cfg.planes - 1)) << OFF_FRAC

    @property
    def drift_min_default(self) -> int:
        """Reset value of ``DRIFT_MIN``: the smallest drift-reference signal ``S_avg`` (sum
        over the counted columns of ``|corrected|``, RESULT_FRAC fractional bits) the engine
        accepts, a quarter of one column's full scale. Below it the quarter-code resolution
        of the corrected results and the converters' noise leave the scale uncertain by
        more than about 1 %."""
        cfg = self.cfg
        return ((2 ** (cfg.adc_bits - 1) * (2**cfg.planes - 1)) // 4) << RESULT_FRAC

    @property
    def rails(self) -> tuple[int, int]:
        """Lowest and highest raw result (every plane's conversion at a rail)."""
        half, weight = 2 ** (self.cfg.adc_bits - 1), 2**self.cfg.planes - 1
        return -half * weight, (half - 1) * weight

    # -- arithmetic (numpy int64, or Python ints) --------------------------------------

    def correct(self, raw, offset, gain, drift=ONE):
        """Corrected results (RESULT_FRAC fractional bits) and saturation flags."""
        raw, offset, gain = (np.asarray(a, dtype=np.int64) for a in (raw, offset, gain))
        g_eff = (gain * int(drift) + (1 << (DRIFT_FRAC - 1))) >> DRIFT_FRAC
        s = OFF_FRAC + GAIN_FRAC - RESULT_FRAC
        value = ((raw << OFF_FRAC) - offset) * g_eff + (1 << (s - 1)) >> s
        lo, hi = -(1 << (self.out_bits - 1)), (1 << (self.out_bits - 1)) - 1
        return np.clip(value, lo, hi), (value < lo) | (value > hi)

    @staticmethod
    def uncorrected(raw):
        """Raw results in the output format (RESULT_FRAC fractional bits, all zero)."""
        return np.asarray(raw, dtype=np.int64) << RESULT_FRAC

    @staticmethod
    def average(total, k: int):
        """Average of ``2**k`` values summing to ``total``, OFF_FRAC fractional bits."""
        total = np.asarray(total, dtype=np.int64)
        return ((total << OFF_FRAC) + ((1 << k) >> 1)) >> k

    @staticmethod
    def quotient(num, den, frac: int, width: int = GAIN_BITS):
        """``round(num * 2**frac / den)`` as the sequential divider computes it, and whether
        it overflows ``width`` bits or ``den`` is not positive (then all ones)."""
        num, den = int(num), int(den)
        if den <= 0:
            return (1 << width) - 1, True
        q = ((num << frac) + (den >> 1)) // den
        if q >= 1 << width:
            return (1 << width) - 1, True
        return q, False


def markdown_table(cfg: TileConfig) -> str:
    """The calibration formats of ``cfg`` as a Markdown table (docs/architecture.md)."""
    f = CalFormat(cfg)
    rows = [
        ("raw result", f"signed, {f.raw_bits} bits, integer"),
        ("corrected result", f"signed, {f.out_bits} bits, {RESULT_FRAC} fractional"),
        ("offset (OFFSET[c])", f"signed, {f.off_bits} bits, {OFF_FRAC} fractional"),
        ("gain (GAIN[c])", f"unsigned Q2.{GAIN_FRAC}, {GAIN_BITS} bits; calibrated range "
                           f"[0.5, 2)"),
        ("drift scale (DRIFT_SCALE)", f"unsigned Q2.{DRIFT_FRAC}, {DRIFT_BITS} bits"),
        ("g_eff = gain x drift", f"unsigned, {f.geff_bits} bits, {GAIN_FRAC} fractional"),
        ("average of 2**k results", f"{OFF_FRAC} fractional bits, k <= {MAX_AVG_LOG2}"),
        ("CAL_REF", f"unsigned, {f.ref_bits} bits, {OFF_FRAC} fractional; reset "
                    f"{f.ref_default / 2**OFF_FRAC:g} (3/4 of the half range per conversion)"),
        ("DRIFT_REF", "unsigned, 32 bits, units of the corrected result"),
        ("DRIFT_MIN", f"unsigned, 32 bits, units of the corrected result; reset "
                      f"{f.drift_min_default} (a quarter of one column's full scale)"),
    ]
    lines = [f"Formats at the default tile ({cfg.rows}x{cfg.cols}, {cfg.adc_bits}-bit ADCs, "
             f"{cfg.input_mode}):", "", "| quantity | format |", "| --- | --- |"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)
