"""One chip of the analogue half: programmed devices, wires, drivers, integrators, ADCs.

:class:`Chip` draws every static mismatch once, from its seed. Programming draws the
programming noise and the drift exponents (keyed by the programming number). Time since
programming and temperature are explicit: :meth:`Chip.state` gives the :class:`ChipState` at
one ``(time, temperature)``, which holds the effective weight matrix of that moment, IR drop
included, and has the two faces that compute the same thing:

* :meth:`ChipState.mvm`, the batch path: the golden prediction of the results the RTL emits
  (and :meth:`ChipState.saturation`, of the integrator-saturated latches it reads);
* :class:`CycleModel`, the per-cycle path: the analogue half that answers the RTL's ports.

Program-and-verify. :meth:`Chip.pulse` applies one SET or RESET pulse step to devices of one
row and side (the response is :class:`~.config.PulseConfig`'s, noise keyed by the pulse step
number). A single-device read integrates one row for :data:`~aimc.programming.READ_CYCLES`
cycles with each column seeing one device of the selected side, scaled so that ``g_max``
reads :func:`~aimc.programming.read_full_scale` counts: :meth:`Chip.read_row` is its batch path, a
:class:`CycleModel` integration started with ``read_dev`` its per-cycle path. Reads see the
programming-time conductances (no drift, 1/f noise or IR drop). After pulses the next
:meth:`Chip.state` counts as a programming: it draws the drift exponents of the new
conductances.

Units. Charge counts one input LSB times one conductance LSB (``(g_max - g_min) / w_max``)
for one clock cycle, so ideal devices integrate exactly the integer dot product.

Exact agreement of the two paths: see :mod:`.grid`.

Column noise. Independent Gaussian errors that add up in a column are drawn as one
column-level Gaussian of the same variance: per conversion, the input noise of the
converter (``input_noise`` LSB) and, when ``white_noise`` is on, the per-cycle white noise
of every device driven, ``var = input_noise^2 lsb^2 + sum_i n_i S_ij`` where ``n_i`` counts
the cycles row ``i`` was driven and ``S_ij`` is the per-cycle variance of the device pair. A
sum of independent normal variables is normal with the summed variance, so the conversion
sees exactly the distribution of the per-device model, at the cost of one draw per column.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import TileConfig
from ..programming import AMP_BITS, AMP_MAX, READ_CYCLES, WIDTH_REF, read_full_scale
from .adc import AdcBank
from .checks import check_index, check_mask, check_side
from .config import ModelConfig, preset
from .events import READ_CONTEXT, NoiseEvents
from .grid import DriveLevels, fine_grid
from .ports import pack_bits, unpack_bits, unpack_fields, unpack_rows
from .rng import Static

__all__ = ["Chip", "ChipState", "CycleModel", "BOLTZMANN_EV", "PULSE_WIDTH_MAX"]

BOLTZMANN_EV = 8.617333262e-5  #: Boltzmann constant, eV/K
PULSE_WIDTH_MAX = 255          #: longest programming pulse, cycles
_CHUNK = 256                  # vectors per batch-path pass


class Chip:
    """One chip: static mismatch drawn from ``seed``, weights set by :meth:`program` or by
    programming pulses (:meth:`pulse`, verified with :meth:`read_row`).

    Parameters
    ----------
    tile : TileConfig
        The tile the chip belongs to.
    config : ModelConfig or str
        The analogue model, or the name of a preset. Default: ``"ideal"``.
    seed : int
        Chip seed, ``0 <= seed < 2**64``: all randomness is a function of it and of the event.

    Raises
    ------
    TypeError, ValueError
        A parameter has the wrong type or value.
    """

    def __init__(self, tile: TileConfig, config: ModelConfig | str = "ideal", seed: int = 0):
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        if isinstance(config, str):
            config = preset(config)
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig or a preset name, not {config!r}")
        self.tile, self.config, self.seed = tile, config, seed
        self.w_max = config.array.w_max
        dev = config.device
        self.g_lsb = (dev.g_max - dev.g_min) / self.w_max
        self.lsb = default_lsb(tile, self.w_max) if config.adc.lsb is None else config.adc.lsb
        self.limit = config.integrator.swing * 2 ** (tile.adc_bits - 1) * self.lsb
        #: Drive per cycle of the row drivers (:class:`~.grid.DriveLevels`).
        self.drive_levels = DriveLevels(config.driver)
        #: RMS (charge) of the converter's input noise, one draw per conversion.
        self.input_sigma = config.adc.input_noise * self.lsb
        #: RMS (charge) of the comparator noise, one draw per comparator decision.
        self.comparator_sigma = config.adc.comparator_noise * self.lsb
        #: The chip's random draws (:class:`~.events.NoiseEvents`), keyed by the seed.
        self.noise = NoiseEvents(tile, seed)
        self.adc = AdcBank(tile, config, self.lsb, self.noise)
        u = self.noise.static_uniform(Static.STUCK, (tile.rows, tile.cols, 2))
        #: Stuck devices, ``(rows, cols, 2)`` for G+ and G-: -1 at g_min, +1 at g_max, else 0.
        self.stuck = np.where(u < dev.stuck_gmin_rate, -1,
                              np.where(u >= 1 - dev.stuck_gmax_rate, 1, 0)).astype(np.int8)
        #: Number of programming events so far (each keys its own noise); the first state
        #: after programming pulses counts as one.
        self.programs = 0
        #: Pulse steps so far (each keys its own noise) and device pulses applied (stuck
        #: devices included).
        self.pulse_steps = 0
        self.device_pulses = 0
        #: Changes whenever the conductances do (pulse, program, erase): a
        #: :class:`ChipState` of an older generation is stale.
        self.generation = 0
        self._states: dict = {}
        self._reads: dict = {}         # read_weights per side
        self._pulse_dtod = None        # device-to-device factor of the SET step, drawn lazily
        self._pulsed = False           # pulses applied since the last state
        self._erase()

    def _erase(self) -> None:
        """A new chip: every device at g_min (stuck devices at their rail), no drift."""
        shape = (self.tile.rows, self.tile.cols)
        self._set_targets(np.zeros(shape, dtype=np.int64))
        self.g_prog = self._at_rails(self.g_target)
        self.nu = np.zeros(shape + (2,))
        self._changed()
        self._pulsed = False

    def _changed(self) -> None:
        """The conductances changed: drop everything derived from them."""
        self.generation += 1
        self._states.clear()
        self._reads.clear()

    def set_stuck(self, row: int, col: int, side: int, level: int) -> None:
        """Make one device stuck at g_min (``level`` -1) or g_max (+1), or free it (0)."""
        row = check_index("row", row, self.tile.rows)
        col = check_index("col", col, self.tile.cols)
        side = check_side(side)
        if level not in (-1, 0, 1):
            raise ValueError(f"level must be -1 (g_min), 0 (free) or 1 (g_max), not {level!r}")
        dev = self.config.device
        self.stuck[row, col, side] = level
        if level:
            self.g_prog[row, col, side] = dev.g_max if level > 0 else dev.g_min
        self._changed()

    def set_column_fault(self, column: int, kind: str) -> None:
        """Break column ``column``'s converter chain (see :meth:`AdcBank.set_fault`)."""
        self.adc.set_fault(column, kind)

    # -- programming ---------------------------------------------------------------------

    def program(self, weights) -> None:
        """Program integer weights as differential conductance pairs (one programming event).

        Raises
        ------
        ValueError
            ``weights`` has the wrong shape, is not integral, or is outside ``-w_max..w_max``.
        """
        w = np.asarray(weights)
        shape = (self.tile.rows, self.tile.cols)
        if w.shape != shape:
            raise ValueError(f"weights must have shape {shape}, not {w.shape}")
        if not (np.issubdtype(w.dtype, np.number) and np.array_equal(w, np.round(w))):
            raise ValueError("weights must be integers")
        if w.size and np.abs(w).max() > self.w_max:
            raise ValueError(
                f"weights must lie in -{self.w_max}..{self.w_max} (weight_bits="
                f"{self.config.array.weight_bits}), found {int(np.abs(w).max())}")
        self.programs += 1
        dev = self.config.device
        self._set_targets(w.astype(np.int64))
        g_rel = self.g_target / dev.g_max
        sigma = np.polynomial.polynomial.polyval(g_rel, dev.prog_coeffs)
        if np.any(dev.prog_coeffs):
            g = np.maximum(self.g_target + sigma * self.noise.programming(self.programs), 0.0)
        else:
            g = self.g_target.copy()
        #: Conductances right after programming, uS.
        self.g_prog = self._at_rails(g)
        #: Drift exponent of each device.
        self.nu = self._drift_exponents(g_rel)
        self._changed()
        self._pulsed = False

    def _at_rails(self, g: np.ndarray) -> np.ndarray:
        """Conductances ``g`` (uS, ``(rows, cols, 2)``) with the stuck devices at their rail."""
        dev = self.config.device
        return np.where(self.stuck < 0, dev.g_min, np.where(self.stuck > 0, dev.g_max, g))

    def _set_targets(self, weights: np.ndarray) -> None:
        """Make integer ``weights`` the targets: :attr:`target_weights`, and the differential
        pairs that stand for them in :attr:`g_target` (``|w|`` conductance LSBs above
        ``g_min`` on the G+ side for ``w > 0``, on the G- side for ``w < 0``, the other
        device at ``g_min``)."""
        #: Integer weights the conductances stand for, ``(rows, cols)``.
        self.target_weights = weights
        pair = np.stack([np.maximum(weights, 0), np.maximum(-weights, 0)],
                        axis=-1).astype(np.float64)
        #: Target conductances, uS, ``(rows, cols, 2)``.
        self.g_target = self.config.device.g_min + self.g_lsb * pair

    def _drift_exponents(self, g_rel: np.ndarray) -> np.ndarray:
        """Drift exponents ``|mu + s z|`` of devices at relative conductances ``g_rel``,
        drawn in the context of the current programming (:attr:`programs`)."""
        dev = self.config.device
        ln_g = np.log(np.maximum(g_rel, 1e-7))
        mu = np.clip(dev.nu_mean_a * ln_g + dev.nu_mean_b, dev.nu_mean_lo, dev.nu_mean_hi)
        s = np.clip(dev.nu_std_a * ln_g + dev.nu_std_b, dev.nu_std_lo, dev.nu_std_hi)
        if np.any(s):
            mu = mu + s * self.noise.drift(self.programs)
        return np.abs(mu)

    # -- programming pulses --------------------------------------------------------------

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
        if not (isinstance(width, (int, np.integer)) and not isinstance(width, bool)
                and 1 <= width <= PULSE_WIDTH_MAX):
            raise ValueError(f"width must be an integer number of cycles in "
                             f"1..{PULSE_WIDTH_MAX}, not {width!r}")
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
        if not (isinstance(index, (int, np.integer)) and not isinstance(index, bool)
                and index >= 0):
            raise ValueError(f"index must be an integer >= 0, not {index!r}")
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

    def conductances(self, time: float = 0.0, temperature: float | None = None) -> np.ndarray:
        """Conductances (uS, ``(rows, cols, 2)``) read ``time`` seconds after the reference
        read (which is ``drift_t0`` after programming) at ``temperature`` kelvin (``None``:
        the characterisation temperature)."""
        time, temperature = self.moment(time, temperature)
        self._settle_pulses()
        dev = self.config.device
        t = time + dev.drift_t0
        g = (self.g_prog * (t / dev.drift_t0) ** -self.nu if np.any(self.nu)
             else self.g_prog.copy())
        if dev.read_q:
            q = np.minimum(dev.read_q / np.maximum((self.g_prog / dev.g_max) ** dev.read_q_exp,
                                                   1e-3), dev.read_q_max)
            spread = q * math.sqrt(max(math.log((t + dev.read_t) / (2 * dev.read_t)), 0.0))
            z = self.noise.flicker(time, self.programs)
            g = np.maximum(g + np.abs(g) * spread * z, 0.0)
        if dev.temp_activation and temperature != dev.temp_ref:
            g = g * math.exp(-dev.temp_activation / BOLTZMANN_EV
                             * (1 / temperature - 1 / dev.temp_ref))
        stuck = self.stuck != 0
        if stuck.any():
            g = np.where(stuck, self.g_prog, g)
        return g

    def moment(self, time: float = 0.0, temperature: float | None = None
               ) -> tuple[float, float]:
        """A moment of the chip, checked: ``(time, temperature)`` as floats, ``time`` seconds
        after the reference read at ``temperature`` kelvin (``None``: the characterisation
        temperature, ``temp_ref``).

        Raises
        ------
        ValueError
            ``time`` is not a finite number >= 0, or ``temperature`` not in ``(0, 1000)``.
        """
        if not (isinstance(time, (int, float)) and math.isfinite(time) and time >= 0):
            raise ValueError(f"time must be a finite number of seconds >= 0, not {time!r}")
        if temperature is None:
            temperature = self.config.device.temp_ref
        if not (isinstance(temperature, (int, float)) and 0 < temperature < 1000):
            raise ValueError(f"temperature must be in kelvin, between 0 and 1000, "
                             f"not {temperature!r}")
        return float(time), float(temperature)

    def state(self, time: float = 0.0, temperature: float | None = None) -> ChipState:
        """The chip at one moment (cached per programming, time and temperature).

        The first state after programming pulses (:meth:`pulse`) starts a new programming
        (:attr:`programs` goes up): drift exponents are drawn for the conductances the
        pulses left, as :meth:`program` draws them, and :attr:`target_weights` becomes the
        weights those conductances stand for, ``round((G+ - G-) / g_lsb)`` within
        ``+-w_max``.
        """
        key = self.moment(time, temperature)
        self._settle_pulses()
        if key not in self._states:
            self._states[key] = ChipState(self, self.conductances(*key), moment=key)
        return self._states[key]

    # -- shortcuts -----------------------------------------------------------------------

    def mvm(self, x, first_vector: int = 0, time: float = 0.0,
            temperature: float | None = None) -> np.ndarray:
        """:meth:`ChipState.mvm` at ``(time, temperature)``."""
        return self.state(time, temperature).mvm(x, first_vector)

    def cycle_model(self, time: float = 0.0, temperature: float | None = None) -> CycleModel:
        """A fresh per-cycle model of the chip at ``(time, temperature)``, as after reset."""
        return CycleModel(self.state(time, temperature))

    def integration_index(self, vector: int, plane: int) -> int:
        """Event number of the integration of ``plane`` of the ``vector``-th MVM. The RTL
        evaluates bit planes most significant first, so integrations are numbered so."""
        return vector * self.tile.planes + (self.tile.planes - 1 - plane)

    def check_inputs(self, x) -> np.ndarray:
        """Validate an input batch ``(batch, rows)`` of integers within ``+-x_max``."""
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.tile.rows:
            raise ValueError(f"inputs must have shape (batch, {self.tile.rows}), not {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"inputs must be integers, not {x.dtype}")
        x_max = self.tile.x_max
        if x.size and max(-int(x.min()), int(x.max())) > x_max:
            raise ValueError(
                f"inputs must lie in -{x_max}..{x_max} (input_bits={self.tile.input_bits}), "
                f"found {max(-int(x.min()), int(x.max()))}")
        return x.astype(np.int64, copy=False)


def default_lsb(tile: TileConfig, w_max: int) -> float:
    """ADC LSB (charge) for which four standard deviations of the column charge of uniform
    random inputs and weights span half the converter range."""
    if tile.input_mode == "pwm":
        # Uniform x in [-x_max, x_max] and w in [-w_max, w_max]: var = x_max^2 w_max^2 / 9.
        sigma = math.sqrt(tile.rows) * tile.x_max * w_max / 3
    else:
        # One bit plane: the driven value is 0 or +-1 with probability 1/2 each.
        sigma = math.sqrt(tile.rows / 2) * w_max / math.sqrt(3)
    return float(math.ceil(4 * sigma / 2 ** (tile.adc_bits - 1)))


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
        w = w_us / chip.g_lsb
        drive_bound = rows * max(tile.x_max, 1) * self._levels.peak
        self.weights = fine_grid(w, drive_bound * np.abs(w).max(initial=0.0))
        self._w32 = self.weights.astype(np.float32)
        self._abs_w32m = np.abs(self._w32) * np.float32(1 + 2e-4)  # see _charges
        if tile.input_mode == "pwm":
            # Drive over the first and the second half of the PWM window, per input value.
            self._halves = [self._drive_window(0, tile.drive_cycles // 2),
                            self._drive_window(tile.drive_cycles // 2, tile.drive_cycles)]
        dev = cfg.device
        if dev.white_noise:
            s = dev.white_noise**2 * dev.g_max * (g[..., 0] + g[..., 1]) / chip.g_lsb**2
            self.white_var = fine_grid(s, rows * tile.x_max * s.max(initial=0.0))
        else:
            self.white_var = None
        self._input_var = chip.input_sigma ** 2
        self.has_column_noise = bool(self._input_var or self.white_var is not None)

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
                 clipped: np.ndarray | None = None) -> np.ndarray:
        """:meth:`charges`, transposed: ``(cols, batch)``, C-contiguous.

        ``clipped``, a ``(cols, batch)`` bool array, is set where the clamp acts in the
        integration (a value before a clamp strictly beyond +-limit); ``None`` (the MVM)
        skips that bookkeeping.
        """
        w, limit = self.weights, self.chip.limit
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
        aw, two_limit = self._abs_w32m.T, 2 * limit
        spread = aw @ np.take(self._drive_abs32[plane], index).T
        candidates = np.nonzero(_over(spread, q, two_limit).any(axis=0))[0]
        if candidates.size:
            first, rest = (np.take(t, index[candidates]).T for t in self._halves)
            q1, spread1 = self._w32.T @ first, aw @ np.abs(first)
            over = _over(spread1, q1, two_limit)
            headroom = two_limit - 2 * np.abs(q1) - np.float32(2e-4) * spread1
            over |= _over(aw @ np.abs(rest), self._w32.T @ rest, headroom)
            candidates = candidates[over.any(axis=0)]
        if clipped is not None:
            clipped[:] = False
        for start in range(0, candidates.size, 64):
            chunk = candidates[start:start + 64]
            if clipped is None:
                q[:, chunk] = self._saturating(x[chunk]).T
            else:
                hit = np.zeros((chunk.size, self.tile.cols), dtype=bool)
                q[:, chunk] = self._saturating(x[chunk], hit).T
                clipped[:, chunk] = hit.T
        return q

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

    def _saturating(self, x: np.ndarray, clipped: np.ndarray | None = None) -> np.ndarray:
        """Exact PWM integration of vectors ``x`` with the clamp after every cycle.

        Cycle 0 adds ``F``, the rising-edge drive times the weights; cycle ``t >= 1`` adds
        ``c_t = sum_{m > t} V_m``, where ``V_m`` sums the per-cycle drive times the weights
        of the rows whose pulse lasts ``m`` cycles (one sparse product for all vectors).
        Every sum is exact on the grid, so ``c_t`` equals the per-cycle path's current to
        the bit, and the clamped accumulation below is the per-cycle path's, operation for
        operation.

        ``clipped``, optional, a ``(len(x), cols)`` bool array: OR-ed with where the clamp
        acts (a value before a clamp strictly beyond +-limit) in any cycle.
        """
        from scipy.sparse import csr_matrix

        n, rows = x.shape
        limit, w = self.chip.limit, self.weights
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

    def sigma(self, counts: np.ndarray) -> np.ndarray | float:
        """Column noise RMS (charge) for rows driven ``counts`` cycles."""
        if self.white_var is None:
            return self.chip.input_sigma
        return np.sqrt(self._input_var + counts @ self.white_var)

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
        if x.shape[0] <= _CHUNK:
            return self._mvm(x, first_vector, reference)
        # Chunks keep the temporaries in cache and out of the allocator's page-fault path.
        return np.concatenate([self._mvm(x[s:s + _CHUNK], first_vector + s, reference)
                               for s in range(0, x.shape[0], _CHUNK)])

    def _mvm(self, x: np.ndarray, first_vector: int, reference: bool) -> np.ndarray:
        chip, tile = self.chip, self.tile
        b, p, cpa = x.shape[0], tile.planes, tile.cols_per_adc
        half = 2 ** (tile.adc_bits - 1)
        if self.has_column_noise:
            z = chip.noise.conversion(first_vector * p, b * p).reshape(b, p, tile.cols)
        if chip.comparator_sigma:
            zc = chip.noise.comparator(first_vector * p, b * p).reshape(
                b, p, cpa, tile.n_adc, tile.adc_bits)
        out = np.zeros((tile.cols, b), dtype=np.int64)  # transposed: columns first
        for plane in range(p):
            v = self._charges(x, plane, reference)
            k = p - 1 - plane  # position of this plane's integration within the vector
            if self.has_column_noise:
                counts = self.driven_cycles(x, plane) if self.white_var is not None else None
                v += (self.sigma(counts) * z[:, k]).T
            if chip.comparator_sigma:
                codes = np.empty_like(out)
                for sel in range(cpa):
                    cols = self.adc.columns(sel)
                    codes[cols] = self.adc.search(v[cols].T, cols,
                                                  chip.comparator_sigma * zc[:, k, sel]).T
            else:
                codes = self.adc.convert_t(v)
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


def _over(spread: np.ndarray, q: np.ndarray, two_limit) -> np.ndarray:
    """Whether a partial sum can exceed half of ``two_limit``: ``(spread + |q|) / 2`` bounds
    the sums of the positive and of the negative products (``spread`` already enlarged to
    cover float32 rounding)."""
    t = np.abs(q, dtype=np.float32)
    t += spread
    return t > two_limit


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
        self._noise_key = None                # adc_sel the noise below is for
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
        self._event_key = self._noise_key = None

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
            self._event_key, self._noise_key = (event, context), None
            noise = chip.noise
            self._z = noise.conversion(event, 1, context)[0] if state.has_column_noise else None
            self._zc = noise.comparator(event, 1, context)[0] if chip.comparator_sigma else None
        if self._noise_key != sel:
            self._noise_key = sel
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
