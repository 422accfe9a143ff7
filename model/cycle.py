"""The per-cycle path: the analogue half as the RTL's ports see it, one clock at a time.

:class:`CycleModel` is what the cosimulation bridge drives: it integrates the rows the RTL
drives, answers the comparisons its SAR logic asks for, applies the programming pulses it
issues and keeps the integrator-saturated latches it reads. It computes on the grids of
:mod:`.grid` and draws the noise events of :mod:`.events` one at a time, so it gives the
batch path's results (:mod:`.state`) bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..programming import AMP_BITS
from .checks import check_index
from .events import READ_CONTEXT
from .ports import pack_bits, unpack_bits, unpack_fields, unpack_rows
from .state import ChipState

__all__ = ["CycleModel"]


class CycleModel:
    """The analogue half as the RTL sees it, one clock cycle at a time.

    The cosimulation bridge calls :meth:`cycle` once per clock with the values of the
    analogue-boundary ports; it returns the comparator decisions to drive back, and
    :meth:`pulse` for each programming pulse step the RTL issues.

    An integration is an MVM integration (the differential weights of :attr:`state`) or, when
    started with ``read_dev``, a single-device read (:meth:`Chip.read_weights` of the side
    ``read_neg`` selects). At the start of an MVM integration a stale state (the chip's
    conductances changed since it was built) is replaced by the chip's state at the same
    moment.

    Each column also keeps an integrator-saturated latch (:attr:`clipped`, packed per ADC by
    :meth:`saturated`): whether the clamp acted at any cycle since the last integrator
    reset, reference injection and device reads included. It is what
    :meth:`ChipState.saturation` predicts.
    """

    def __init__(self, state: ChipState):
        self.state, self.chip = state, state.chip
        tile = state.tile
        self._q = np.zeros(tile.cols)         # integrator state (less the pending cycles)
        self._pending = []                    # (row_en, row_neg) of cycles not integrated yet
        self._pending_prev = 0                # row_en of the cycle before the pending ones
        self._split = None                    # (weights, positive part, negative part)
        self.counts = np.zeros(tile.rows)     # cycles each row was driven this integration
        self.integration = -1                 # event number of the last MVM integration
        self.reads = 0                        # device reads started
        self._prev_en = 0
        self._event_key = None                # (integration, context) of the draws below
        self._z = self._zc = None             # its conversion and comparator noise, unit RMS
        self._sel_key = None                  # adc_sel the scaled noise below is for
        self._cols = self._read = self._cmp = None
        self._read_side = None                # side of the running device read; None: MVM
        self._clipped = np.zeros(tile.cols, dtype=bool)  # clamp acted since the last reset

    def set_state(self, state: ChipState) -> None:
        """Continue with the chip at another moment (same chip, for example later in its
        drift); the event numbering goes on."""
        if state.chip is not self.chip:
            raise ValueError("set_state needs a state of the same chip")
        self._flush()
        self.state = state
        self._event_key = self._sel_key = None

    @property
    def q(self) -> np.ndarray:
        """Integrator charges, every cycle so far included."""
        self._flush()
        return self._q

    @property
    def clipped(self) -> np.ndarray:
        """Per column, whether the integrator's clamp acted (a value before a clamp strictly
        beyond +-limit) since the last integrator reset, every cycle so far included; a
        copy."""
        self._flush()
        return self._clipped.copy()

    def saturated(self, sel: int) -> int:
        """The integrator-saturated latches the ADCs see with ``adc_sel = sel``, packed: bit
        ``a`` is :attr:`clipped` of column ``adc.columns(sel)[a]``, the column ADC ``a``
        converts.

        Raises
        ------
        ValueError
            ``sel`` is not in ``0 .. cols_per_adc-1``.
        """
        sel = check_index("sel", sel, self.state.tile.cols_per_adc)
        self._flush()
        return pack_bits(self._clipped[self.state.adc.columns(sel)])

    def reset_integrators(self, read: bool = False) -> None:
        """Clear the integrators and the saturation latches, and start the next MVM
        integration, or with ``read`` the next device read (numbered apart, see
        :meth:`Chip.read_row`)."""
        self._pending.clear()
        self._q[:] = 0.0
        self._clipped[:] = False
        self.counts[:] = 0
        if read:
            self.reads += 1
        else:
            self.integration += 1
        self._prev_en = 0

    def _event(self) -> tuple[int, int]:
        """(event number, noise context) of the running integration."""
        if self._read_side is not None:
            return self.reads - 1, READ_CONTEXT
        return self.integration, 0

    def inject_reference(self) -> None:
        """Add the calibration reference charge to every column's integrator (then clamp)."""
        self._flush()  # the pending cycles come first
        limit = self.chip.limit
        q = self._q + self.chip.adc.reference
        self._clipped |= np.abs(q) > limit
        np.clip(q, -limit, limit, out=self._q)

    def drive(self, row_en: int, row_neg: int) -> None:
        """One cycle of row drive (packed port values). The cycles are kept and integrated
        together when the charge is next needed (:meth:`_flush`), with the same result to
        the bit as integrating them one by one."""
        if row_en or self._pending:
            if not self._pending:
                self._pending_prev = self._prev_en
            self._pending.append((row_en, row_neg if row_en else 0))
        self._prev_en = row_en

    def _flush(self) -> None:
        """Integrate the pending cycles. Cycle ``t`` adds ``c_t = L_t @ W`` (``L_t`` the
        drive of each row that cycle) and the integrator clamps to +-limit after every cycle.
        All values lie on the binary grid (see :mod:`.grid`), so sums are exact in any
        order. Every partial sum of the window lies between the sum of its negative products
        and the sum of its positive ones; where both stay within the limit the clamp never
        acts and ``q + (sum_t L_t) @ W`` is the cycle-by-cycle result to the bit. The other
        columns are integrated cycle by cycle, and only there can the clamp act
        (:attr:`clipped`)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        state, rows = self.state, self.state.tile.rows
        en_all = unpack_rows([self._pending_prev] + [e for e, _ in pending], rows)
        en, neg = en_all[1:], unpack_rows([g for _, g in pending], rows)
        first = en & ~en_all[:-1]
        levels = self.chip.drive_levels.level(np.where(en, np.where(neg, -1, 1), 0),
                                              first)                          # (cycles, rows)
        if self._read_side is None:
            w = state.weights
            if state.white_var is not None:
                self.counts += en.sum(axis=0)
        else:
            w = self.chip.read_weights(self._read_side)
        limit = self.chip.limit
        q = self._q
        if self._split is None or self._split[0] is not w:
            self._split = (w, np.maximum(w, 0.0), np.minimum(w, 0.0))
        _, wp, wn = self._split
        lp, ln = np.maximum(levels, 0.0).sum(axis=0), np.minimum(levels, 0.0).sum(axis=0)
        # Every partial sum lies between the sum of the negative products and the sum of
        # the positive ones (each a subset sum of all products of the window).
        safe = (q + lp @ wp + ln @ wn <= limit) & (q + lp @ wn + ln @ wp >= -limit)
        total = (lp + ln) @ w
        if safe.all():
            q += total
            return
        q[safe] += total[safe]
        cols = ~safe
        wc, qc = w[:, cols], q[cols]
        hit = np.zeros(qc.shape, dtype=bool)
        for lv in levels:
            qc = qc + lv @ wc
            hit |= np.abs(qc) > limit
            np.clip(qc, -limit, limit, out=qc)
        q[cols] = qc
        self._clipped[cols] |= hit

    def pulse(self, row: int, side: int, set_mask: int, reset_mask: int, amplitude: int,
              width: int) -> None:
        """One programming pulse step (:meth:`Chip.pulse`) from packed port values: bit ``c``
        of ``set_mask`` and ``reset_mask`` is column ``c``; ``amplitude`` holds one
        ``AMP_BITS``-bit field per column, column ``c`` at bits ``c*AMP_BITS ..
        c*AMP_BITS + AMP_BITS - 1``.

        Raises
        ------
        ValueError
            A packed value is out of range, or :meth:`Chip.pulse` rejects the pulse.
        """
        cols = self.state.tile.cols
        for name, value, bits in (("set_mask", set_mask, cols), ("reset_mask", reset_mask, cols),
                                  ("amplitude", amplitude, cols * AMP_BITS)):
            if not (isinstance(value, (int, np.integer)) and 0 <= value < 1 << bits):
                raise ValueError(f"{name} must be a packed port value in 0..2**{bits}-1, "
                                 f"not {value!r}")
        self._flush()
        self.chip.pulse(row, side, unpack_bits(set_mask, cols), unpack_bits(reset_mask, cols),
                        unpack_fields(amplitude, cols, AMP_BITS), width)

    def compare(self, sel: int, trial: int) -> int:
        """Comparator decisions for the packed trial codes; returns the packed decisions."""
        self._flush()
        state, tile, chip = self.state, self.state.tile, self.chip
        event, context = self._event()
        if event < 0:
            raise RuntimeError("analogue boundary: a comparison was requested (adc_sample) "
                               "before any integrator reset (int_reset)")
        if self._event_key != (event, context):
            self._event_key, self._sel_key = (event, context), None
            noise = chip.noise
            self._z = noise.conversion(event, 1, context)[0] if state.has_column_noise else None
            self._zc = noise.comparator(event, 1, context)[0] if chip.comparator_sigma else None
        if self._sel_key != sel:
            self._sel_key = sel
            self._cols = state.adc.columns(sel)
            self._read = (None if self._z is None
                          else (state.sigma(self.counts) * self._z)[self._cols])
            if chip.comparator_sigma:
                self._cmp = chip.comparator_sigma * self._zc[sel]
        trials = unpack_fields(trial, tile.n_adc, tile.adc_bits)
        v = self._q[self._cols]
        if self._read is not None:
            v = v + self._read
        if chip.comparator_sigma:
            # The bit being decided is the lowest set bit of the trial code.
            bit = np.log2(np.maximum(trials & -trials, 1)).astype(np.int64)
            v = v + self._cmp[np.arange(tile.n_adc), bit]
        return pack_bits(state.adc.decide(v, self._cols, trials))

    def cycle(self, *, int_reset: int, row_en: int, row_neg: int, sample: int, sel: int,
              trial: int, ref_en: int = 0, read_dev: int = 0, read_neg: int = 0) -> int | None:
        """Advance one clock cycle; returns the packed comparator decisions when sampled.

        ``read_dev`` with ``int_reset`` starts a single-device read of the G+ devices
        (``read_neg`` 0) or the G- devices (``read_neg`` 1) instead of an MVM integration.

        Raises
        ------
        RuntimeError
            A comparison is requested before the first integrator reset, a reference
            injection or a device read without an integrator reset, or both together.
        """
        if int_reset:
            if read_dev:
                if ref_en:
                    raise RuntimeError("analogue boundary: ref_en and read_dev together (a "
                                       "device read starts from an empty integrator)")
                self._read_side = 1 if read_neg else 0
            else:
                if self._read_side is not None:
                    self._read_side = None
                if self.state.generation != self.chip.generation:
                    self.set_state(self.chip.state(*self.state.moment))
            self.reset_integrators(read=bool(read_dev))
            if ref_en:
                self.inject_reference()
        elif ref_en:
            raise RuntimeError("analogue boundary: ref_en without int_reset")
        elif read_dev:
            raise RuntimeError("analogue boundary: read_dev without int_reset")
        self.drive(row_en, row_neg)
        if sample:
            return self.compare(sel, trial)
        return None
