"""The per-cycle path: the analogue half as the RTL's ports see it, one clock at a time.

:class:`CycleModel` is what the cosimulation bridge drives: it integrates the lines the RTL
drives (rows for forward MVMs and device reads, columns for backward MVMs), answers the
comparisons its SAR logic asks for on either side, applies the programming pulses and the
update pulses it issues, and keeps the integrator-saturated latches it reads. It computes on
the grids of :mod:`.grid` and draws the noise events of :mod:`.events` one at a time, so it
gives the batch path's results (:mod:`.state`) bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..programming import AMP_BITS
from .checks import check_index
from .events import READ_CONTEXT
from .ports import pack_bits, unpack_bits, unpack_fields, unpack_rows
from .state import ChipState, Path

__all__ = ["CycleModel"]


class _Integrators:
    """The integrators and latches of one side, and the running integration's noise."""

    def __init__(self, chip, inputs: int, outputs: int):
        self.chip = chip
        self.q = np.zeros(outputs)            # integrator state (less the pending cycles)
        self.pending = []                     # (en, neg) of drive cycles not integrated yet
        self.pending_prev = 0                 # en of the cycle before the pending ones
        self.split = None                     # (weights, positive part, negative part)
        self.counts = np.zeros(inputs)        # cycles each input line was driven
        self.prev_en = 0
        self.clipped = np.zeros(outputs, dtype=bool)  # clamp acted since the last reset
        self.event_key = None                 # (event, context) of the draws below
        self.z = self.zc = None               # its conversion and comparator noise, unit RMS
        self.sel_key = None                   # select the scaled noise below is for
        self.lines = self.read = self.cmp = None

    def reset(self) -> None:
        self.pending.clear()
        self.q[:] = 0.0
        self.clipped[:] = False
        self.counts[:] = 0
        self.prev_en = 0

    def drive(self, en: int, neg: int) -> None:
        """One cycle of line drive (packed port values). The cycles are kept and integrated
        together when the charge is next needed (:meth:`flush`), with the same result to
        the bit as integrating them one by one."""
        if en or self.pending:
            if not self.pending:
                self.pending_prev = self.prev_en
            self.pending.append((en, neg if en else 0))
        self.prev_en = en

    def flush(self, w: np.ndarray, limit: float, count: bool) -> None:
        """Integrate the pending cycles with weights ``w`` (inputs by outputs). Cycle ``t``
        adds ``c_t = L_t @ W`` (``L_t`` the drive of each line that cycle) and the integrator
        clamps to +-limit after every cycle. All values lie on the binary grid (see
        :mod:`.grid`), so sums are exact in any order. Every partial sum of the window lies
        between the sum of its negative products and the sum of its positive ones; where
        both stay within the limit the clamp never acts and ``q + (sum_t L_t) @ W`` is the
        cycle-by-cycle result to the bit. The other outputs are integrated cycle by cycle,
        and only there can the clamp act (:attr:`clipped`). ``count``: keep the driven
        cycles of each input (white noise)."""
        pending = self.pending
        if not pending:
            return
        self.pending = []
        n = w.shape[0]
        en_all = unpack_rows([self.pending_prev] + [e for e, _ in pending], n)
        en, neg = en_all[1:], unpack_rows([g for _, g in pending], n)
        first = en & ~en_all[:-1]
        levels = self.chip.drive_levels.level(np.where(en, np.where(neg, -1, 1), 0),
                                              first)                         # (cycles, inputs)
        if count:
            self.counts += en.sum(axis=0)
        q = self.q
        if self.split is None or self.split[0] is not w:
            self.split = (w, np.maximum(w, 0.0), np.minimum(w, 0.0))
        _, wp, wn = self.split
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
        self.clipped[cols] |= hit


class CycleModel:
    """The analogue half as the RTL sees it, one clock cycle at a time.

    The cosimulation bridge calls :meth:`cycle` once per clock with the values of the
    analogue-boundary ports; it returns the comparator decisions to drive back, and
    :meth:`pulse` for each programming pulse step the RTL issues, :meth:`update_slot` for
    each update pulse slot.

    An integration is a forward MVM integration (the differential weights of :attr:`state`),
    a single-device read when started with ``read_dev`` (:meth:`Chip.read_weights` of the
    side ``read_neg`` selects), or a backward MVM integration when started with
    ``int_back`` (the columns drive, the rows integrate: the weights transposed, the row
    side's integrators, converters and noise). At the start of an MVM integration a stale
    state (the chip's conductances changed since it was built) is replaced by the chip's
    state at the same moment.

    Each output line also keeps an integrator-saturated latch (:attr:`clipped`, packed per
    ADC by :meth:`saturated`): whether the clamp acted at any cycle since the last
    integrator reset, reference injection and device reads included. It is what
    :meth:`ChipState.saturation` predicts.
    """

    def __init__(self, state: ChipState):
        self.state, self.chip = state, state.chip
        tile = state.tile
        self._cols = _Integrators(self.chip, tile.rows, tile.cols)   # forward side
        self._rows = _Integrators(self.chip, tile.cols, tile.rows)   # backward side
        self.integration = -1                 # event number of the last forward integration
        self.back_integration = -1            # ... of the last backward integration
        self.reads = 0                        # device reads started
        self._read_side = None                # side of the running device read; None: MVM
        self._backward = False                # the running integration is a backward one
        self.updates = 0                      # update pulse trains started (upd_start)
        self._slot = 0                        # slots of the running update so far

    def set_state(self, state: ChipState) -> None:
        """Continue with the chip at another moment (same chip, for example later in its
        drift); the event numbering goes on."""
        if state.chip is not self.chip:
            raise ValueError("set_state needs a state of the same chip")
        self._flush()
        self.state = state
        for side in (self._cols, self._rows):
            side.event_key = side.sel_key = None

    # -- the forward side's integrators, as tests and the bench read them -----------------

    @property
    def counts(self) -> np.ndarray:
        return self._cols.counts

    @property
    def q(self) -> np.ndarray:
        """Integrator charges of the columns, every cycle so far included."""
        self._flush()
        return self._cols.q

    @property
    def row_q(self) -> np.ndarray:
        """Integrator charges of the rows (backward MVMs), every cycle so far included."""
        self._flush()
        return self._rows.q

    @property
    def clipped(self) -> np.ndarray:
        """Per column, whether the integrator's clamp acted (a value before a clamp strictly
        beyond +-limit) since the last integrator reset, every cycle so far included; a
        copy."""
        self._flush()
        return self._cols.clipped.copy()

    def saturated(self, sel: int, backward: bool = False) -> int:
        """The integrator-saturated latches the ADCs see with the select at ``sel``, packed:
        bit ``a`` is the latch of the line ADC ``a`` converts (columns; rows with
        ``backward``).

        Raises
        ------
        ValueError
            ``sel`` is not a select of that side.
        """
        side = self.chip.backward if backward else self.chip.forward
        sel = check_index("sel", sel, side.per_adc)
        self._flush()
        ints = self._rows if backward else self._cols
        return pack_bits(ints.clipped[side.adc.columns(sel)])

    def reset_integrators(self, read: bool = False, backward: bool = False) -> None:
        """Clear the integrators and the saturation latches, and start the next forward MVM
        integration, with ``read`` the next device read (numbered apart, see
        :meth:`Chip.read_row`), or with ``backward`` the next backward integration (numbered
        apart too)."""
        self._cols.reset()
        self._rows.reset()
        if read:
            self.reads += 1
        elif backward:
            self.back_integration += 1
        else:
            self.integration += 1

    def _event(self) -> tuple[int, int]:
        """(event number, noise context) of the running integration."""
        if self._read_side is not None:
            return self.reads - 1, READ_CONTEXT
        if self._backward:
            return self.back_integration, self.chip.backward.context
        return self.integration, 0

    def inject_reference(self) -> None:
        """Add the calibration reference charge to every column's integrator (then clamp)."""
        self._flush()  # the pending cycles come first
        limit = self.chip.limit
        ints = self._cols
        q = ints.q + self.chip.adc.reference
        ints.clipped |= np.abs(q) > limit
        np.clip(q, -limit, limit, out=ints.q)

    def drive(self, row_en: int, row_neg: int, col_en: int = 0, col_neg: int = 0) -> None:
        """One cycle of drive (packed port values): rows (forward, device reads) and columns
        (backward)."""
        self._cols.drive(row_en, row_neg)
        self._rows.drive(col_en, col_neg)

    def _flush(self) -> None:
        state = self.state
        if self._cols.pending:
            if self._read_side is None:
                w, count = state.weights, state.white_var is not None
            else:
                w, count = self.chip.read_weights(self._read_side), False
            self._cols.flush(w, self.chip.limit, count)
        if self._rows.pending:
            path = state.backward_path
            self._rows.flush(path.weights, path.side.limit, path.white_var is not None)

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

    def update_start(self) -> None:
        """``upd_start``: a new update pulse train; its slots are numbered from 0."""
        self._flush()
        self.updates += 1
        self._slot = 0

    def update_slot(self, rows: int, rows_neg: int, cols: int, cols_neg: int) -> None:
        """One update pulse slot (``upd_pulse``) from packed port values: every device whose
        row and column both fire takes one pulse (:meth:`Chip.update_slot`).

        Raises
        ------
        RuntimeError
            A slot before any ``upd_start``.
        """
        if self.updates == 0:
            raise RuntimeError("analogue boundary: an update slot (upd_pulse) before any "
                               "upd_start")
        tile = self.state.tile
        self._flush()
        self.chip.update_slot(self.updates - 1, self._slot, unpack_bits(rows, tile.rows),
                              unpack_bits(rows_neg, tile.rows), unpack_bits(cols, tile.cols),
                              unpack_bits(cols_neg, tile.cols))
        self._slot += 1

    def compare(self, sel: int, trial: int, backward: bool = False) -> int:
        """Comparator decisions for the packed trial codes (column ADCs, or with ``backward``
        the row ADCs); returns the packed decisions."""
        self._flush()
        state, tile, chip = self.state, self.state.tile, self.chip
        event, context = self._event()
        if event < 0:
            raise RuntimeError("analogue boundary: a comparison was requested (adc_sample) "
                               "before any integrator reset (int_reset)")
        if backward != self._backward:
            raise RuntimeError("analogue boundary: a comparison of the "
                               f"{'rows' if backward else 'columns'} during a "
                               f"{'backward' if self._backward else 'forward'} integration")
        path: Path = state.backward_path if backward else state.forward
        side, ints = path.side, (self._rows if backward else self._cols)
        if ints.event_key != (event, context):
            ints.event_key, ints.sel_key = (event, context), None
            noise = chip.noise
            ints.z = noise.conversion(event, 1, context)[0] if state.has_column_noise else None
            ints.zc = (noise.comparator(event, 1, context)[0] if side.comparator_sigma
                       else None)
        if ints.sel_key != sel:
            ints.sel_key = sel
            ints.lines = side.adc.columns(sel)
            if ints.z is None:
                ints.read = None
            elif self._read_side is not None:
                ints.read = (side.input_sigma * ints.z)[ints.lines]
            else:
                ints.read = (state.sigma(ints.counts, path) * ints.z)[ints.lines]
            if side.comparator_sigma:
                ints.cmp = side.comparator_sigma * ints.zc[sel]
        trials = unpack_fields(trial, side.n_adc, tile.adc_bits)
        v = ints.q[ints.lines]
        if ints.read is not None:
            v = v + ints.read
        if side.comparator_sigma:
            # The bit being decided is the lowest set bit of the trial code.
            bit = np.log2(np.maximum(trials & -trials, 1)).astype(np.int64)
            v = v + ints.cmp[np.arange(side.n_adc), bit]
        return pack_bits(side.adc.decide(v, ints.lines, trials))

    def cycle(self, *, int_reset: int, row_en: int, row_neg: int, sample: int, sel: int,
              trial: int, ref_en: int = 0, read_dev: int = 0, read_neg: int = 0,
              int_back: int = 0, col_en: int = 0, col_neg: int = 0, row_sample: int = 0,
              row_sel: int = 0, row_trial: int = 0) -> int | None:
        """Advance one clock cycle; returns the packed comparator decisions when sampled
        (those of the row ADCs when ``row_sample``).

        ``read_dev`` with ``int_reset`` starts a single-device read of the G+ devices
        (``read_neg`` 0) or the G- devices (``read_neg`` 1) instead of an MVM integration;
        ``int_back`` with ``int_reset`` a backward integration.

        Raises
        ------
        RuntimeError
            A comparison is requested before the first integrator reset or of the other
            side's converters, a reference injection or a device read without an integrator
            reset, or with a backward integration.
        """
        if int_reset:
            if read_dev and (ref_en or int_back):
                raise RuntimeError("analogue boundary: read_dev with ref_en or int_back (a "
                                   "device read is a forward integration from an empty "
                                   "integrator)")
            if ref_en and int_back:
                raise RuntimeError("analogue boundary: ref_en with int_back (the reference "
                                   "charge is a column-side calibration)")
            self._read_side = (1 if read_neg else 0) if read_dev else None
            self._backward = bool(int_back)
            if not read_dev and self.state.generation != self.chip.generation:
                self.set_state(self.chip.state(*self.state.moment))
            self.reset_integrators(read=bool(read_dev), backward=bool(int_back))
            if ref_en:
                self.inject_reference()
        elif ref_en:
            raise RuntimeError("analogue boundary: ref_en without int_reset")
        elif read_dev:
            raise RuntimeError("analogue boundary: read_dev without int_reset")
        self.drive(row_en, row_neg, col_en, col_neg)
        if sample:
            return self.compare(sel, trial)
        if row_sample:
            return self.compare(row_sel, row_trial, backward=True)
        return None
