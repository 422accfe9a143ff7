"""Column integrators and successive-approximation ADCs at comparator level.

Every conversion of column ``c`` is a binary search: for trial code ``t`` (offset binary, the
bit being decided set) the comparator answers ``q + r >= thresholds[c, t]``, where ``q`` is
the integrated charge and ``r`` the noise of that conversion (all referred to the column
charge). The thresholds hold every static error of the chain:

* the capacitive DAC: bit ``k`` weighs ``2^k (1 + e)``, ``e ~ N(0, cap_mismatch / sqrt(2^k))``
  per ADC (``2^k`` unit capacitors), so level ``L(t) = sum_k t_k 2^k (1 + e_k) - 2^(N-1)``;
* the comparator offset ``o_a`` per ADC, and the integrator gain ``g_c`` and offset ``b_c``
  per column: ``thresholds[c, t] = ((L(t) - 1/2 + o_a) / g_c - b_c) lsb``.

With no errors the thresholds are ``(t - 2^(N-1) - 1/2) lsb``: the conversion rounds half up.

The SAR result is a non-decreasing function of ``q + r`` (two values first decided apart go
the same way ever after), constant between consecutive thresholds. :class:`AdcBank` tabulates
it once per chip, so the batch path converts by table lookup and reaches the same code as
the comparator-level search of the per-cycle path, comparison for comparison.
"""

from __future__ import annotations

import numpy as np

from ..config import TileConfig
from ..numeric import as_int
from .config import ModelConfig
from .events import NoiseEvents
from .rng import Static

__all__ = ["AdcBank"]


#: The static-mismatch draws of each side's converters: the column side's (forward MVMs)
#: and the row side's (backward MVMs), which are other circuits with their own errors.
_STATIC_KINDS = {
    "col": (Static.CAP, Static.COMPARATOR_OFFSET, Static.INTEGRATOR_GAIN,
            Static.INTEGRATOR_OFFSET, Static.REFERENCE),
    "row": (Static.ROW_CAP, Static.ROW_COMPARATOR_OFFSET, Static.ROW_INTEGRATOR_GAIN,
            Static.ROW_INTEGRATOR_OFFSET, Static.ROW_REFERENCE),
}


class AdcBank:
    """The static part of all converters of one side of a chip: the column ADCs (forward
    MVMs, ``side="col"``) or the row ADCs (backward MVMs, ``side="row"``). "Line" is a column
    or a row; a line ``c`` is converted by ADC ``c // per_adc`` with the select at
    ``c % per_adc``.

    Attributes
    ----------
    thresholds : array (lines, 2**adc_bits)
        Comparator threshold (charge) of each line for each trial code; column 0 of the
        code axis is unused.
    lsb : float
        Nominal charge per code.
    reference : array (lines,)
        Charge the calibration reference injects into each line's integrator.
    """

    def __init__(self, tile: TileConfig, config: ModelConfig, lsb: float, noise: NoiseEvents,
                 side: str = "col"):
        if side not in _STATIC_KINDS:
            raise ValueError(f"AdcBank side must be 'col' or 'row', not {side!r}")
        self.tile, self.lsb, self.side = tile, float(lsb), side
        if side == "col":
            self.lines, self.per_adc, self.n_adc = tile.cols, tile.cols_per_adc, tile.n_adc
        else:
            self.lines, self.per_adc, self.n_adc = tile.rows, tile.rows_per_adc, tile.n_row_adc
        k_cap, k_cmp, k_gain, k_off, k_ref = _STATIC_KINDS[side]
        adc, integ = config.adc, config.integrator
        n, n_adc, cols = tile.adc_bits, self.n_adc, self.lines
        half = 2 ** (n - 1)
        static = noise.static

        weights = 2.0 ** np.arange(n)
        cap = static(k_cap, (n_adc, n))
        cap_w = weights * (1 + adc.cap_mismatch * cap / np.sqrt(weights))      # (n_adc, n)
        codes = np.arange(2**n)
        bits = (codes[:, None] >> np.arange(n)) & 1                           # (2^n, n)
        level = bits @ cap_w.T - half                                         # (2^n, n_adc)
        cmp_off = adc.comparator_offset * static(k_cmp, n_adc)
        gain = 1 + integ.gain_error * static(k_gain, cols)
        int_off = integ.offset * static(k_off, cols)
        adc_of = self.adc_of_column()
        t_lsb = (level[:, adc_of].T - 0.5 + cmp_off[adc_of, None]) / gain[:, None] \
            - int_off[:, None]
        self.thresholds = t_lsb * self.lsb
        self.gain, self.offset = gain, int_off + cmp_off[adc_of]
        self.reference = (adc.ref_level * half * self.lsb
                          * (1 + adc.ref_error * static(k_ref, cols)))
        self._tabulate()

    #: Column faults :meth:`set_fault` knows.
    FAULTS = ("dead", "stuck-high", "stuck-low")

    def set_fault(self, column: int, kind: str) -> None:
        """Break one column's chain: ``dead`` (the integrator passes no charge: every
        conversion gives the column's offset code), ``stuck-high`` or ``stuck-low`` (the
        comparator always answers 1 or 0: the highest or lowest code).

        Raises
        ------
        ValueError
            Unknown column or fault.
        """
        column = as_int(column, "column", 0, self.lines - 1,
                        allowed=f"in 0..{self.lines - 1}")
        if kind not in self.FAULTS:
            raise ValueError(f"column fault must be one of {', '.join(self.FAULTS)}, "
                             f"not {kind!r}")
        thr = self.thresholds[column]
        if kind == "dead":
            # Zero gain: each threshold goes to -inf or +inf by the sign of its level.
            thr[:] = np.where(thr > 0, np.inf, -np.inf)
        else:
            thr[:] = -np.inf if kind == "stuck-high" else np.inf
        self._tabulate()

    def adc_of_column(self) -> np.ndarray:
        """ADC index of each line: line ``c = a * per_adc + sel``."""
        return np.arange(self.lines) // self.per_adc

    def columns(self, sel: int) -> np.ndarray:
        """Lines (columns, or rows for the row side) connected to the ADCs when the select
        is ``sel``."""
        return np.arange(self.n_adc) * self.per_adc + sel

    # -- comparator level ---------------------------------------------------------------

    def search(self, v: np.ndarray, cols: np.ndarray, step_noise=None) -> np.ndarray:
        """Binary search of values ``v`` (..., len(cols)) on columns ``cols``; ``step_noise``
        (..., len(cols), adc_bits), indexed by the bit decided, is added at each step.
        Returns offset-binary codes."""
        n = self.tile.adc_bits
        code = np.zeros(np.shape(v), dtype=np.int64)
        cols = np.broadcast_to(cols, code.shape)
        for bit in range(n - 1, -1, -1):
            trial = code | (1 << bit)
            t = self.thresholds[cols, trial]
            noisy = v if step_noise is None else v + step_noise[..., bit]
            code = np.where(noisy >= t, trial, code)
        return code

    def decide(self, v: np.ndarray, cols: np.ndarray, trials: np.ndarray) -> np.ndarray:
        """One comparator decision per ADC: ``v >= thresholds[cols, trials]``."""
        return v >= self.thresholds[cols, trials]

    # -- batch ----------------------------------------------------------------------------

    def _tabulate(self):
        """Breakpoints (sorted thresholds) and the code between each pair, per column, in
        flat tables with one row of ``M + 2`` entries per column (``-inf``, the breakpoints,
        ``+inf``): breakpoint count ``j`` of column ``c`` is at ``c (M + 2) + j``."""
        cols = self.lines
        bp = np.sort(self.thresholds[:, 1:], axis=1)                       # (cols, M)
        m = bp.shape[1]
        codes = np.zeros((cols, m + 2), dtype=np.int64)                    # last: unused
        for c in range(cols):
            codes[c, 1:-1] = self.search(bp[c], np.full(m, c))
        ext = np.empty((cols, m + 2))
        ext[:, 0], ext[:, -1], ext[:, 1:-1] = -np.inf, np.inf, bp
        self._bp = ext.ravel()
        self._bp_next = np.append(self._bp[1:], np.inf)
        self._codes = codes.ravel()
        self._row = np.arange(cols)[:, None] * (m + 2)
        self._m = m
        # Linear fit of the finite breakpoints (a broken column may have infinite ones), a
        # starting guess for the count: j ~ v * inv_step + offset.
        below = (bp == -np.inf).sum(axis=1)
        finite = np.isfinite(bp).sum(axis=1)
        rows = np.arange(cols)
        first = np.where(finite > 0, bp[rows, np.minimum(below, m - 1)], 0.0)
        last = np.where(finite > 0, bp[rows, np.minimum(below + finite - 1, m - 1)], 0.0)
        span = last - first
        inv = np.where((finite > 1) & (span > 0), (finite - 1) / np.where(span > 0, span, 1),
                       0.0)
        self._inv_step = inv[:, None]
        self._offset = (1 + below - first * inv)[:, None]

    def convert(self, v: np.ndarray) -> np.ndarray:
        """Offset-binary codes of values ``v`` (batch, cols), noise already added."""
        return self.convert_t(np.ascontiguousarray(v.T)).T

    def convert_t(self, vt: np.ndarray) -> np.ndarray:
        """:meth:`convert` of values laid out ``(cols, batch)``; codes in that layout.

        Column by column, so that the lookups of one column stay within its own table: a
        linear guess of the breakpoint count ``j``, then steps up or down until
        ``breakpoints[j] <= v < breakpoints[j + 1]``, only where a step was taken."""
        j = vt * self._inv_step
        j += self._offset
        np.floor(j, out=j)
        np.clip(j, 0, self._m, out=j)
        idx = j.astype(np.intp)
        idx += self._row                             # flat index into the tables
        step = (vt >= np.take(self._bp_next, idx)).view(np.int8)
        step -= (vt < np.take(self._bp, idx)).view(np.int8)
        idx += step
        moved = np.flatnonzero(step)
        flat_v, flat_idx, bp = vt.ravel(), idx.reshape(-1), self._bp
        while moved.size:
            vv, ii = flat_v[moved], flat_idx[moved]
            step = (vv >= bp[ii + 1]).view(np.int8) - (vv < bp[ii]).view(np.int8)
            flat_idx[moved] = ii + step
            moved = moved[step != 0]
        return np.take(self._codes, idx)
