"""The chip at one moment, and the batch path: the golden prediction of the RTL's results.

:class:`ChipState` (from :meth:`Chip.state`) holds the effective weight matrix of one
``(time, temperature)``, IR drop included, on the weight grid of :mod:`.grid`, and computes
whole input batches at once: :meth:`ChipState.mvm` the results the RTL emits,
:meth:`ChipState.saturation` the integrator-saturated latches it reads, and
:meth:`ChipState.backward` the results of backward MVMs (the columns driven, the rows
integrated and converted: the same arithmetic on the transposed weights, the row side's
converters and noise events). It draws the noise of
thousands of consecutive events in one call (:mod:`.events`), the same numbers the per-cycle
path (:mod:`.cycle`) draws one event at a time, and adds them by the same operations.

Speed. The charges come from a float32 product, and compiled passes (:mod:`._batch`, numba)
add the noise, convert, and recompute exactly (float64) the few values whose float32 charge
lies within its proven error bound of a converter breakpoint, so the codes are those of
the exact product. Reference injection and comparator noise take the previous numpy path
(:meth:`ChipState._mvm_numpy`), which ``_batch(..., previous=True)`` also runs for
comparison: both give the same results bit for bit.

Column noise. Independent Gaussian errors that add up in a column are drawn as one
column-level Gaussian of the same variance: per conversion, the input noise of the
converter (``input_noise`` LSB) and, when ``white_noise`` is on, the per-cycle white noise
of every device driven, ``var = input_noise^2 lsb^2 + sum_i n_i S_ij`` where ``n_i`` counts
the cycles row ``i`` was driven and ``S_ij`` is the per-cycle variance of the device pair. A
sum of independent normal variables is normal with the summed variance, so the conversion
sees exactly the distribution of the per-device model, at the cost of one draw per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from .grid import fine_grid
from .rng import _table

if TYPE_CHECKING:
    from .chip import Chip, Side

__all__ = ["ChipState", "Path"]

_CHUNK = 256                  # vectors per pass of the previous (numpy) batch path
_FAST_CHUNK = 1024            # vectors per pass of the compiled batch path


@dataclass
class Path:
    """One direction of MVM through a chip state: the weights oriented inputs by outputs
    (forward ``W``, backward ``W.T``), their float32 copies for the clamp screening, the
    per-cycle white-noise variances likewise, and the :class:`~.chip.Side` that integrates
    and converts."""

    weights: np.ndarray
    side: Side
    white_var: np.ndarray | None

    def __post_init__(self):
        self.w32 = self.weights.astype(np.float32)
        self.abs_w32m = np.abs(self.w32) * np.float32(1 + 2e-4)  # see ChipState._charges
        #: The side's converter input noise (charge RMS) as the compiled pass takes it.
        self.input_sigma = np.full((1, 1), self.side.input_sigma)

    @cached_property
    def weights_t(self) -> np.ndarray:
        """The weights outputs by inputs, C-contiguous: one output's column is one row."""
        return np.ascontiguousarray(self.weights.T)

    @cached_property
    def norms(self) -> np.ndarray:
        """Euclidean norm of each output's weights, enlarged by ``1e-12`` of itself (over
        float64 rounding): with the drive's norm, a bound on ``|d| @ |w|``."""
        return np.sqrt(np.einsum("io,io->o", self.weights, self.weights)) * (1 + 1e-12)


class ChipState:
    """A chip at one moment: effective weights and noise, and the batch MVM.

    Attributes
    ----------
    weights : array (rows, cols)
        Effective weight matrix (charge per cycle of unit drive), IR drop included.
    moment : tuple (time, temperature)
        The moment the state describes.
    generation : int
        The chip's :attr:`Chip.generation` the state was built from.
    has_column_noise : bool
        Whether each conversion draws column noise (converter input noise or device white
        noise; comparator noise is drawn apart, per decision).
    white_var : array (rows, cols) or None
        Per-cycle white-noise variance (charge squared, on the grid) of each device pair
        driven, the ``S_ij`` of the column noise; ``None`` without white noise.
    """

    def __init__(self, chip: Chip, g: np.ndarray, moment: tuple[float, float] | None = None):
        self.chip, self.tile, self.adc = chip, chip.tile, chip.adc
        self.moment = chip.moment() if moment is None else moment
        self.generation = chip.generation
        tile, cfg = chip.tile, chip.config
        rows, cols = tile.rows, tile.cols
        arr = cfg.array
        if arr.r_row or arr.r_col:
            from .irdrop import effective_matrix

            m = effective_matrix(g.reshape(rows, 2 * cols) * 1e-6, arr.r_row, arr.r_col) * 1e6
            w_us = m[:, 0::2] - m[:, 1::2]
        else:
            w_us = g[..., 0] - g[..., 1]
        self._levels = chip.drive_levels
        self._drive = [self._drive_table(p) for p in range(tile.planes)]
        self._drive_abs32 = [np.abs(d).astype(np.float32) for d in self._drive]
        self._drive32 = [d.astype(np.float32) for d in self._drive]
        w = w_us / chip.g_lsb
        # One grid for both directions: sums over the rows (forward) and over the columns
        # (backward) stay exact.
        drive_bound = max(rows, cols) * max(tile.x_max, 1) * self._levels.peak
        self.weights = fine_grid(w, drive_bound * np.abs(w).max(initial=0.0))
        if tile.input_mode == "pwm":
            # Drive over the first and the second half of the PWM window, per input value.
            self._halves = [self._drive_window(0, tile.drive_cycles // 2),
                            self._drive_window(tile.drive_cycles // 2, tile.drive_cycles)]
        dev = cfg.device
        if dev.white_noise:
            s = dev.white_noise**2 * dev.g_max * (g[..., 0] + g[..., 1]) / chip.g_lsb**2
            self.white_var = fine_grid(s, max(rows, cols) * tile.x_max * s.max(initial=0.0))
        else:
            self.white_var = None
        self.has_column_noise = bool(chip.input_sigma or self.white_var is not None)
        #: The forward and the backward direction (:class:`Path`).
        self.forward = Path(self.weights, chip.forward, self.white_var)
        self.backward_path = Path(np.ascontiguousarray(self.weights.T), chip.backward,
                                  None if self.white_var is None
                                  else np.ascontiguousarray(self.white_var.T))

    # -- drive ---------------------------------------------------------------------------

    def _drive_table(self, plane: int) -> np.ndarray:
        """Total drive over the integration of ``plane`` for each input ``-x_max..x_max``."""
        x = np.arange(-self.tile.x_max, self.tile.x_max + 1)
        s, mag = np.sign(x), np.abs(x)
        if self.tile.input_mode == "bitserial":
            return self._levels.level(s * ((mag >> plane) & 1), True)
        return self._levels.level(s, True) + (mag - 1).clip(0) * self._levels.level(s, False)

    def _drive_window(self, start: int, stop: int) -> np.ndarray:
        """PWM drive over cycles ``start .. stop-1`` for each input value, float32."""
        x = np.arange(-self.tile.x_max, self.tile.x_max + 1)
        s, mag = np.sign(x), np.abs(x)
        on = (np.minimum(mag, stop) - np.maximum(start, 1)).clip(0) * self._levels.level(s, False)
        if start == 0:
            on = on + self._levels.level(s, True) * (mag > 0)
        return on.astype(np.float32)

    def drive(self, x: np.ndarray, plane: int) -> np.ndarray:
        """Total drive of each row over the integration of ``plane`` (exact on the grid)."""
        return np.take(self._drive[plane], x + self.tile.x_max)

    def driven_cycles(self, x: np.ndarray, plane: int) -> np.ndarray:
        mag = np.abs(x)
        return mag if self.tile.input_mode == "pwm" else (mag >> plane) & 1

    def charges(self, x: np.ndarray, plane: int) -> np.ndarray:
        """Integrated column charge of each vector of ``x`` on ``plane``, with saturation,
        shape ``(batch, cols)``."""
        return self._charges(x, plane).T

    def _charges(self, x: np.ndarray, plane: int, reference: bool = False,
                 clipped: np.ndarray | None = None, path: Path | None = None) -> np.ndarray:
        """:meth:`charges`, transposed: ``(outputs, batch)``, C-contiguous, for the
        direction ``path`` (default forward: columns by batch).

        ``clipped``, a ``(outputs, batch)`` bool array, is set where the clamp acts in the
        integration (a value before a clamp strictly beyond +-limit); ``None`` (the MVM)
        skips that bookkeeping.
        """
        path = self.forward if path is None else path
        w, limit = path.weights, path.side.limit
        if reference:
            return self._referenced(x, plane, clipped)
        index = x + self.tile.x_max
        q = w.T @ np.take(self._drive[plane], index).T
        if self.tile.input_mode == "bitserial":
            # One cycle from an empty integrator: the clamp acts on the product itself.
            if clipped is not None:
                np.greater(np.abs(q), limit, out=clipped)
            return np.clip(q, -limit, limit, out=q)
        # The integrator clamps after every cycle. Every partial sum lies between minus the
        # sum of the negative products and the sum of the positive ones, each at most
        # (spread + |q|) / 2 with spread = |d| @ |w|; where that stays within the limit the
        # clamp never acts and the one product above is exact. The same bound over each
        # half of the window, from the charge at the half, refines it. The bounds only pick
        # the vectors that are integrated cycle by cycle (both ways give the same charge
        # when the clamp is idle), so they are computed in float32, with the spread
        # enlarged by 2e-4 of itself (float32 errs by under 2e-5 of it). The same bounds
        # make the clip flags exact: no partial sum of a vector outside the candidates
        # passes the limit, and the candidates are integrated with the clamp.
        spread = path.abs_w32m.T @ np.take(self._drive_abs32[plane], index).T
        candidates = np.nonzero(_over(spread, q, 2 * limit).any(axis=0))[0]
        candidates = self._refine(index, candidates, path)
        if clipped is not None:
            clipped[:] = False
        for start in range(0, candidates.size, 64):
            chunk = candidates[start:start + 64]
            if clipped is None:
                q[:, chunk] = self._saturating(x[chunk], path=path).T
            else:
                hit = np.zeros((chunk.size, path.side.outputs), dtype=bool)
                q[:, chunk] = self._saturating(x[chunk], hit, path).T
                clipped[:, chunk] = hit.T
        return q

    def _refine(self, index: np.ndarray, candidates: np.ndarray, path: Path) -> np.ndarray:
        """The PWM ``candidates`` (vector numbers) that remain after the bound over each half
        of the window (see :meth:`_charges`); ``index`` is ``x + x_max``."""
        if not candidates.size:
            return candidates
        aw, two_limit = path.abs_w32m.T, 2 * path.side.limit
        first, rest = (np.take(t, index[candidates]).T for t in self._halves)
        q1, spread1 = path.w32.T @ first, aw @ np.abs(first)
        over = _over(spread1, q1, two_limit)
        headroom = two_limit - 2 * np.abs(q1) - np.float32(2e-4) * spread1
        over |= _over(aw @ np.abs(rest), path.w32.T @ rest, headroom)
        return candidates[over.any(axis=0)]

    def _referenced(self, x: np.ndarray, plane: int,
                    clipped: np.ndarray | None = None) -> np.ndarray:
        """Charges of integrations that start from the reference charge: cycle by cycle,
        by the per-cycle path's operations. ``clipped`` as for :meth:`_charges`."""
        limit = self.chip.limit
        ref = self.adc.reference[:, None]
        if clipped is not None:
            # The injection clamps too (CycleModel.inject_reference, from an empty integrator).
            clipped[:] = np.abs(ref) > limit
        s, mag = np.sign(x), np.abs(x)
        q = np.repeat(np.clip(ref, -limit, limit), x.shape[0], axis=1)
        for t in range(self.tile.drive_cycles):
            if self.tile.input_mode == "pwm":
                level = np.where(mag > t, self._levels.level(s, t == 0), 0.0)
            else:
                level = self._levels.level(s * ((mag >> plane) & 1), True)
            if level.any():
                q = q + self.weights.T @ level.T
                if clipped is not None:
                    clipped |= np.abs(q) > limit
                q = np.clip(q, -limit, limit)
        return q

    def _saturating(self, x: np.ndarray, clipped: np.ndarray | None = None,
                    path: Path | None = None) -> np.ndarray:
        """Exact PWM integration of vectors ``x`` with the clamp after every cycle.

        Cycle 0 adds ``F``, the rising-edge drive times the weights; cycle ``t >= 1`` adds
        ``c_t = sum_{m > t} V_m``, where ``V_m`` sums the per-cycle drive times the weights
        of the rows whose pulse lasts ``m`` cycles (one sparse product for all vectors).
        Every sum is exact on the grid, so ``c_t`` equals the per-cycle path's current to
        the bit, and the clamped accumulation below is the per-cycle path's, operation for
        operation.

        ``clipped``, optional, a ``(len(x), outputs)`` bool array: OR-ed with where the clamp
        acts (a value before a clamp strictly beyond +-limit) in any cycle. ``path``: the
        direction (default forward).
        """
        from scipy.sparse import csr_matrix

        path = self.forward if path is None else path
        n, rows = x.shape
        limit, w = path.side.limit, path.weights
        s, mag = np.sign(x), np.abs(x)
        t_max = int(mag.max(initial=0))
        q = self._levels.level(s, True) @ w                           # cycle 0
        if clipped is not None:
            clipped |= np.abs(q) > limit
        np.clip(q, -limit, limit, out=q)
        if t_max <= 1:
            return q
        b, i = np.nonzero(mag > 1)
        a = csr_matrix((self._levels.level(s, False)[b, i], (b * t_max + mag[b, i] - 1, i)),
                       shape=(n * t_max, rows))
        v = (a @ w).reshape(n, t_max, -1)
        c = v.sum(axis=1)                                             # c_1 = sum_{m > 1} V_m
        for t in range(1, t_max):
            if t > 1:
                c -= v[:, t - 1]
            q += c
            if clipped is not None:
                clipped |= np.abs(q) > limit
            np.clip(q, -limit, limit, out=q)
        return q

    def sigma(self, counts: np.ndarray, path: Path | None = None) -> np.ndarray | float:
        """Column noise RMS (charge) for rows driven ``counts`` cycles (backward: row noise
        for columns driven ``counts`` cycles)."""
        path = self.forward if path is None else path
        if path.white_var is None:
            return path.side.input_sigma
        return np.sqrt(path.side.input_sigma ** 2 + counts @ path.white_var)

    # -- batch path ----------------------------------------------------------------------

    def mvm(self, x, first_vector: int = 0, reference: bool = False) -> np.ndarray:
        """Golden prediction of the results the RTL emits for input batch ``x``.

        Parameters
        ----------
        x : array of int, shape (batch, rows)
            Signed inputs.
        first_vector : int
            MVM number (since the model's reset) of ``x[0]``: it keys the noise events.
        reference : bool
            Every integration starts with the calibration reference charge (``ref_en``).

        Returns
        -------
        array of int64, shape (batch, cols)
            Signed results: the ADC code for PWM, the shift-and-add sum of the plane codes
            for bit-serial.
        """
        x = self.chip.check_inputs(x)
        return self._batch(x, first_vector, reference, self.forward)

    def backward(self, d, first_vector: int = 0) -> np.ndarray:
        """Golden prediction of the results the RTL emits for a batch of backward MVMs:
        ``d`` (batch, cols) drives the columns, each row's charge is converted by the row
        ADCs.

        Parameters
        ----------
        d : array of int, shape (batch, cols)
            Signed inputs (errors), within ``+-x_max``.
        first_vector : int
            Backward MVM number (since the model's reset) of ``d[0]``: backward MVMs key
            their own noise events.

        Returns
        -------
        array of int64, shape (batch, rows)
            Signed results, as :meth:`mvm`'s.
        """
        d = self.chip.check_inputs(d, self.tile.cols)
        return self._batch(d, first_vector, False, self.backward_path)

    def _batch(self, x, first_vector, reference, path, previous: bool = False):
        """The results of batch ``x`` on ``path``: by the compiled path (:mod:`._batch`), or
        by the previous numpy path with ``previous`` and where the compiled one does not
        apply (reference injection, comparator noise), bit for bit the same."""
        if previous or reference or path.side.comparator_sigma:
            mvm, chunk = self._mvm_numpy, _CHUNK
        else:
            mvm, chunk = self._mvm_fast, _FAST_CHUNK
        if x.shape[0] <= chunk:
            return mvm(x, first_vector, reference, path)
        # Chunks keep the temporaries in cache and out of the allocator's page-fault path.
        return np.concatenate([mvm(x[s:s + chunk], first_vector + s, reference, path)
                               for s in range(0, x.shape[0], chunk)])

    def _mvm_fast(self, x: np.ndarray, first_vector: int, reference: bool,
                  path: Path) -> np.ndarray:
        """:meth:`_mvm_numpy` by a float32 product and compiled passes per integration
        (:mod:`._batch`: noise, conversion, exact recomputation near the breakpoints, code
        assembly); no reference injection, no comparator noise."""
        global _batch
        if _batch is None:
            from . import _batch  # numba loads with the first call, not with the package
        chip, tile, side = self.chip, self.tile, path.side
        b, p, adc = x.shape[0], tile.planes, side.adc
        x_max, limit, outputs = tile.x_max, side.limit, side.outputs
        pwm = tile.input_mode == "pwm"
        noisy = self.has_column_noise
        if noisy:
            raw = chip.noise.conversion_words(first_vector * p, b * p, side.context)
            t = np.empty((b, outputs))
        else:
            t = _NO_CHARGES
        out = np.zeros((b, outputs), dtype=np.int64)
        d32 = np.empty((b, side.inputs), dtype=np.float32)
        a32 = np.empty_like(d32)
        exact = np.full(b, -1, dtype=np.int64)
        pending = np.zeros(b, dtype=bool)
        eps = _batch.epsilon(side.inputs)
        tables = (adc._bp, adc._codes, adc._inv_step.ravel(), adc._offset.ravel(), adc._m,
                  2 ** (tile.adc_bits - 1))
        norm_d = norm_w = _NO_NORMS
        for plane in range(p):
            drive = self._drive[plane]
            _batch.drive32(x, self._drive32[plane], self._drive_abs32[plane], x_max, d32, a32)
            q32 = d32 @ path.w32
            sp32 = a32 @ path.abs_w32m if pwm else _NO_SPREAD
            if not pwm:
                norm_d = np.sqrt(np.take(drive ** 2, x + x_max).sum(axis=1)) * (1 + 1e-12)
                norm_w = path.norms
            if noisy:
                if path.white_var is not None:
                    sigma = self.sigma(self.driven_cycles(x, plane), path)
                else:
                    sigma = path.input_sigma
                _batch.noise(raw, p - 1 - plane, p, sigma, sigma.size > 1, *_table(), t)
            # PWM: the clamp screening of _charges; the vectors it leaves are integrated
            # exactly and converted in a second pass.
            if _batch.convert(q32, t, exact, _NO_CHARGES, 2 * limit if pwm else 0.0, pending,
                              sp32, norm_d, norm_w, not pwm, eps, x, drive, x_max,
                              path.weights_t, not pwm, limit, *tables, plane, out):
                candidates = np.flatnonzero(pending)
                exact[:] = _batch.EXACT_DONE
                exact[candidates] = -1
                kept = self._refine(x + x_max, candidates, path)
                qx = _NO_CHARGES
                if kept.size:
                    qx = np.concatenate([self._saturating(x[kept[s:s + 64]], path=path)
                                         for s in range(0, kept.size, 64)])
                    exact[kept] = np.arange(kept.size)
                _batch.convert(q32, t, exact, qx, 0.0, pending, sp32, norm_d, norm_w,
                               not pwm, eps, x, drive, x_max, path.weights_t, not pwm, limit,
                               *tables, plane, out)
        return out

    def _mvm_numpy(self, x: np.ndarray, first_vector: int, reference: bool,
                   path: Path) -> np.ndarray:
        """The previous batch path, all numpy: float64 products, conversion by
        :meth:`~.adc.AdcBank.convert_t` (and the comparator-level search with comparator
        noise)."""
        chip, tile, side = self.chip, self.tile, path.side
        b, p, cpa, n_out = x.shape[0], tile.planes, side.per_adc, side.outputs
        half = 2 ** (tile.adc_bits - 1)
        adc, cmp_sigma = side.adc, side.comparator_sigma
        if self.has_column_noise:
            z = chip.noise.conversion(first_vector * p, b * p, side.context).reshape(
                b, p, n_out)
        if cmp_sigma:
            zc = chip.noise.comparator(first_vector * p, b * p, side.context).reshape(
                b, p, cpa, side.n_adc, tile.adc_bits)
        out = np.zeros((n_out, b), dtype=np.int64)  # transposed: outputs first
        for plane in range(p):
            v = self._charges(x, plane, reference, path=path)
            k = p - 1 - plane  # position of this plane's integration within the vector
            if self.has_column_noise:
                counts = self.driven_cycles(x, plane) if path.white_var is not None else None
                v += (self.sigma(counts, path) * z[:, k]).T
            if cmp_sigma:
                codes = np.empty_like(out)
                for sel in range(cpa):
                    cols = adc.columns(sel)
                    codes[cols] = adc.search(v[cols].T, cols, cmp_sigma * zc[:, k, sel]).T
            else:
                codes = adc.convert_t(v)
            codes -= half
            codes <<= plane
            out += codes
        return np.ascontiguousarray(out.T)

    def saturation(self, x, reference: bool = False) -> np.ndarray:
        """Whether each column's integrator clamped while computing the MVM of ``x``: the
        integrator-saturated latch of the RTL, OR-ed over the integrations of one vector.

        The clamp acts when a value before it lies strictly beyond +-limit, at any cycle of
        an integration (or at the reference injection). A clip mid-window with inputs of
        both signs can end inside the converter range, so the result codes do not carry
        this. Noise is added at the comparison, after the integration, so the flags do not
        depend on it (nor on event numbers).

        Parameters
        ----------
        x : array of int, shape (batch, rows)
            Signed inputs, as for :meth:`mvm`.
        reference : bool
            Every integration starts with the calibration reference charge (``ref_en``).

        Returns
        -------
        array of bool, shape (batch, cols)
            PWM: whether the clamp acted in the integration; bit-serial: in any bit plane's.
            Equals what :meth:`CycleModel.saturated` shows after each integration, OR-ed
            over the planes of the vector, bit for bit.

        Raises
        ------
        ValueError
            ``x`` is not a valid input batch (as for :meth:`mvm`).
        """
        x = self.chip.check_inputs(x)
        out = np.zeros((x.shape[0], self.tile.cols), dtype=bool)
        for s in range(0, x.shape[0], _CHUNK):
            xs = x[s:s + _CHUNK]
            hit = np.zeros((self.tile.cols, xs.shape[0]), dtype=bool)
            for plane in range(self.tile.planes):
                self._charges(xs, plane, reference, hit)
                out[s:s + _CHUNK] |= hit.T
        return out


_batch = None  # the compiled kernels (model/_batch.py), imported at the first batch

# Placeholders of the compiled pass's unused arguments (fixed types: one compilation).
_NO_WORDS = np.zeros((1, 1), dtype=np.uint32)
_NO_CHARGES = np.zeros((1, 1))
_NO_SPREAD = np.zeros((1, 1), dtype=np.float32)
_NO_NORMS = np.zeros(1)


def _over(spread: np.ndarray, q: np.ndarray, two_limit) -> np.ndarray:
    """Whether a partial sum can exceed half of ``two_limit``: ``(spread + |q|) / 2`` bounds
    the sums of the positive and of the negative products (``spread`` already enlarged to
    cover float32 rounding)."""
    t = np.abs(q, dtype=np.float32)
    t += spread
    return t > two_limit
