"""Program and verify on a :class:`~.chip.Chip` (:class:`ProgrammingMixin`): one SET or
RESET pulse step on devices of one row and side, the settling of the pulsed conductances,
and single-device reads of a row (batch path of what a ``read_dev`` integration converts)."""

from __future__ import annotations

import numpy as np

from ..numeric import as_int
from ..programming import AMP_BITS, AMP_MAX, READ_CYCLES, WIDTH_REF, read_full_scale
from .checks import check_index, check_mask, check_side
from .events import READ_CONTEXT
from .grid import fine_grid
from .rng import Static

__all__ = ["PULSE_WIDTH_MAX", "ProgrammingMixin"]

PULSE_WIDTH_MAX = 255          #: longest programming pulse, cycles


class ProgrammingMixin:
    """Methods of :class:`~.chip.Chip` for program-and-verify: pulse steps and device reads."""

    def pulse(self, row: int, side: int, set_mask, reset_mask, amplitude, width: int) -> None:
        """One pulse step: SET or RESET pulses on devices of one row and side.

        The response is that of :class:`~.config.PulseConfig` with strength ``s = amplitude /
        AMP_MAX * width / WIDTH_REF``; the cycle-to-cycle noise is one normal deviate per
        column, keyed by the pulse step number (:attr:`pulse_steps`). Stuck devices do not
        change. The next :meth:`state` counts as a programming (see :meth:`state`).

        Parameters
        ----------
        row : int
            Row of the devices, ``0 .. rows-1``.
        side : int
            0 for the G+ devices of the pairs, 1 for G-.
        set_mask, reset_mask : array of bool, shape (cols,)
            Columns that get a SET or a RESET pulse; never both on one column.
        amplitude : array of int, shape (cols,), or int
            Amplitude code of each column's pulse, ``0 .. AMP_MAX``.
        width : int
            Pulse width, cycles, ``1 .. PULSE_WIDTH_MAX``.

        Raises
        ------
        ValueError
            A parameter is out of range or has the wrong shape, or a column is in both masks.
        """
        tile, dev, cfg = self.tile, self.config.device, self.config.pulse
        cols = tile.cols
        row = check_index("row", row, tile.rows)
        side = check_side(side)
        set_mask = check_mask("set_mask", set_mask, cols)
        reset_mask = check_mask("reset_mask", reset_mask, cols)
        both = np.flatnonzero(set_mask & reset_mask)
        if both.size:
            raise ValueError("set_mask and reset_mask must not select the same column, "
                             f"both select column(s) {', '.join(map(str, both[:8]))}"
                             + (" ..." if both.size > 8 else ""))
        amp = np.asarray(amplitude)
        if amp.shape not in ((), (cols,)):
            raise ValueError(f"amplitude must have shape ({cols},), not {amp.shape}")
        if not np.issubdtype(amp.dtype, np.integer):
            raise ValueError(f"amplitude must be integer codes, not {amp.dtype}")
        if amp.size and (amp.min() < 0 or amp.max() > AMP_MAX):
            bad = amp.min() if amp.min() < 0 else amp.max()
            raise ValueError(f"amplitude must lie in 0..{AMP_MAX} (AMP_BITS={AMP_BITS}), "
                             f"found {int(bad)}")
        width = as_int(width, "width", 1, PULSE_WIDTH_MAX, unit="cycles")
        strength = np.broadcast_to(amp, (cols,)).astype(np.int64) / AMP_MAX * int(width) \
            / WIDTH_REF
        if cfg.set_cv or cfg.reset_cv:
            z = self.noise.pulse(self.pulse_steps)
        else:
            z = np.zeros(cols)
        g = self.g_prog[row, :, side]
        live = self.stuck[row, :, side] == 0
        on = set_mask & live
        if on.any():
            ceil = cfg.set_ceiling * dev.g_max
            d = self._set_factor()[row, :, side]
            dg = np.maximum(cfg.set_step * d * strength * (ceil - g) / (ceil - dev.g_min)
                            * (1 + cfg.set_cv * z), 0.0)
            g = np.where(on, np.minimum(g + dg, dev.g_max), g)
        on = reset_mask & live
        if on.any():
            r = np.clip(cfg.reset_frac * strength * (1 + cfg.reset_cv * z), 0.0, 1.0)
            g = np.where(on, g - r * (g - dev.g_min), g)
        self.g_prog[row, :, side] = g
        self.pulse_steps += 1
        self.device_pulses += int(np.count_nonzero(set_mask | reset_mask))
        self._changed()
        self._pulsed = True

    def _set_factor(self) -> np.ndarray:
        """Device-to-device factor of the SET step, ``max(1 + set_dtod z_d, 0)``, ``(rows,
        cols, 2)``, drawn once."""
        if self._pulse_dtod is None:
            tile, dtod = self.tile, self.config.pulse.set_dtod
            shape = (tile.rows, tile.cols, 2)
            if dtod:
                zd = self.noise.static(Static.PULSE_DTOD, shape)
                self._pulse_dtod = np.maximum(1 + dtod * zd, 0.0)
            else:
                self._pulse_dtod = np.ones(shape)
        return self._pulse_dtod

    def _settle_pulses(self) -> None:
        """After programming pulses: a new programming with the conductances the pulses
        left, its drift exponents drawn for them and its weights read off them."""
        if not self._pulsed:
            return
        self._pulsed = False
        self.programs += 1
        dev = self.config.device
        self.nu = self._drift_exponents(self.g_prog / dev.g_max)
        w = np.round((self.g_prog[..., 0] - self.g_prog[..., 1]) / self.g_lsb)
        self._set_targets(np.clip(w, -self.w_max, self.w_max).astype(np.int64))
        self._states.clear()

    # -- single-device reads -------------------------------------------------------------

    @property
    def read_counts_per_lsb(self) -> float:
        """Read result (ADC counts) per conductance LSB above ``g_min``: ``g_max`` reads
        :func:`~aimc.programming.read_full_scale` counts (96 at 8 bits)."""
        return read_full_scale(self.tile.adc_bits) / self.w_max

    def read_weights(self, side: int) -> np.ndarray:
        """Charge per cycle of unit drive of each device of ``side`` in a single-device read,
        ``(rows, cols)``: ``(G - g_min) / g_lsb * read_counts_per_lsb * lsb / READ_CYCLES``,
        on a binary grid on which sums of up to ``READ_CYCLES`` drive-weighted terms are
        exact.

        ``G`` is the programming-time conductance (:attr:`g_prog`): a read does not see
        drift, 1/f noise or temperature, nor IR drop (it drives one row; the drop on its
        wires is left out). Cached until the conductances change (read-only).

        Raises
        ------
        ValueError
            ``side`` is not 0 or 1.
        """
        side = check_side(side)
        if side not in self._reads:
            dev = self.config.device
            w = ((self.g_prog[..., side] - dev.g_min) / self.g_lsb * self.read_counts_per_lsb
                 * self.lsb / READ_CYCLES)
            w = fine_grid(w, READ_CYCLES * self.drive_levels.peak * np.abs(w).max(initial=0.0))
            w.flags.writeable = False
            self._reads[side] = w
        return self._reads[side]

    def _read_charges(self, w: np.ndarray) -> np.ndarray:
        """Integrated charge of a read of devices with read weights ``w`` (any shape): the
        per-cycle path's operations, cycle by cycle."""
        first, on = self.drive_levels.first[1], self.drive_levels.on[1]
        limit = self.limit
        q = np.zeros_like(w)
        for t in range(READ_CYCLES):
            q = np.clip(q + (first if t == 0 else on) * w, -limit, limit)
        return q

    def read_row(self, row: int, side: int, index: int, time: float = 0.0,
                 temperature: float | None = None) -> np.ndarray:
        """Golden single-device read of the devices of ``side`` on ``row``: the signed codes
        the per-cycle path gives when row ``row`` is driven positively for ``READ_CYCLES``
        cycles after an integrator reset with ``read_dev`` (the ``index``-th device read of
        the per-cycle model), every column group converted.

        Parameters
        ----------
        row : int
            Row read, ``0 .. rows-1``.
        side : int
            0 for the G+ devices of the pairs, 1 for G-.
        index : int
            Number of the device read. Device reads have their own event numbers (context
            :data:`READ_CONTEXT` of the noise sources), so they never shift the numbering
            of the MVM integrations.
        time, temperature
            The moment of the read, checked as for :meth:`state`. A read sees the
            programming-time conductances (see :meth:`read_weights`) and noise that does not
            depend on the moment, so they do not change the result; the read does not
            count as a state after pulses either.

        Returns
        -------
        array of int64, shape (cols,)
            Signed codes, ``code - 2^(adc_bits-1)``.

        Raises
        ------
        ValueError
            A parameter is out of range.
        """
        tile = self.tile
        row = check_index("row", row, tile.rows)
        index = as_int(index, "index", 0)
        self.moment(time, temperature)
        v = self._read_charges(self.read_weights(side)[row])
        # Conversion noise as CycleModel.compare draws it: no white-noise counts in a read.
        if self.input_sigma or self.config.device.white_noise:
            v = v + self.input_sigma * self.noise.conversion(index, 1, READ_CONTEXT)[0]
        if self.comparator_sigma:
            step = self.comparator_sigma * self.noise.comparator(index, 1, READ_CONTEXT)[0]
            codes = np.empty(tile.cols, dtype=np.int64)
            for sel in range(tile.cols_per_adc):
                cols = self.adc.columns(sel)
                codes[cols] = self.adc.search(v[cols], cols, step[sel])
        else:
            codes = self.adc.convert(v[None, :])[0]
        return codes - 2 ** (tile.adc_bits - 1)

    def ideal_reads(self, side: int) -> np.ndarray:
        """Noise-free signed read codes of every device of ``side``, ``(rows, cols)``: the
        integration of :meth:`read_row` through the chip's converters, without conversion
        noise."""
        v = self._read_charges(self.read_weights(side))
        return self.adc.convert(v) - 2 ** (self.tile.adc_bits - 1)

    # -- conductance at a moment ---------------------------------------------------------
