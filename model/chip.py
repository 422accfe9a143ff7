"""One chip of the analogue half: programmed devices and their conductances at a moment.

:class:`Chip` draws every static mismatch once, from its seed. Programming draws the
programming noise and the drift exponents (keyed by the programming number). Time since
programming and temperature are explicit: :meth:`Chip.state` gives the :class:`ChipState` at
one ``(time, temperature)``, which holds the effective weight matrix of that moment, IR drop
included, and has the two faces that compute the same thing:

* :meth:`ChipState.mvm`, the batch path (:mod:`.state`): the golden prediction of the results
  the RTL emits (and :meth:`ChipState.saturation`, of the integrator-saturated latches it
  reads);
* :class:`CycleModel`, the per-cycle path (:mod:`.cycle`): the analogue half that answers the
  RTL's ports.

Both paths compute on the binary grids of :mod:`.grid`, which makes them agree to the last
bit, and draw their noise through the chip's :class:`~.events.NoiseEvents`.

Program-and-verify. :meth:`Chip.pulse` applies one SET or RESET pulse step to devices of one
row and side (the response is :class:`~.config.PulseConfig`'s, noise keyed by the pulse step
number). A single-device read integrates one row for :data:`~aimc.programming.READ_CYCLES`
cycles with each column seeing one device of the selected side, scaled so that ``g_max``
reads :func:`~aimc.programming.read_full_scale` counts: :meth:`Chip.read_row` is its batch path, a
:class:`CycleModel` integration started with ``read_dev`` its per-cycle path. Reads see the
programming-time conductances (no drift, 1/f noise or IR drop). After pulses the next
:meth:`Chip.state` counts as a programming: it draws the drift exponents of the new
conductances.

Training. With a pulsed device model (:class:`~.config.ModelConfig` ``update`` section, e.g.
the ``gokmen-vlasov``, ``reram-sb`` and ``ecram`` presets) each pair holds a bidirectional
update device (G+, a :class:`~.pulsed.PulsedArray` state) against a reference device (G-) at
the update device's symmetry point, aihwkit's reference-device scheme: the weight is
``w - w_ref``. :meth:`Chip.update_slot` applies one pulse slot of an update (the per-cycle
path's and the golden update's common step, see :mod:`.update`); :meth:`Chip.program` sets
the update devices to integer weights (``W_int = (w - w_ref) w_max / (2 span)``).

Backward MVMs. The columns drive and the rows integrate: by reciprocity of the resistive
network (the transfer from a driven column to a row held at virtual ground equals that from
the row to the column), the effective weights are those of the forward direction, read
transposed. The rows have their own integrators and converters (:class:`Side`), with their
own static errors, and their own noise events (:data:`~.events.BACKWARD_CONTEXT`).

Program-and-verify's methods are in :mod:`.chip_program`, training's in
:mod:`.chip_training` (mixins of :class:`Chip`, one concept each).

Units. Charge counts one input LSB times one conductance LSB (``(g_max - g_min) / w_max``)
for one clock cycle, so ideal devices integrate exactly the integer dot product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import TileConfig
from ..numeric import as_int_array, as_real, is_number, show
from .adc import AdcBank
from .checks import check_index, check_side
from .chip_program import PULSE_WIDTH_MAX, ProgrammingMixin
from .chip_training import TrainingMixin
from .config import ModelConfig, preset
from .cycle import CycleModel
from .events import BACKWARD_CONTEXT, NoiseEvents
from .grid import DriveLevels
from .pulsed import PulsedArray
from .rng import Static
from .state import ChipState

__all__ = ["Chip", "BOLTZMANN_EV", "PULSE_WIDTH_MAX", "Side", "TEMPERATURE_RANGE"]

BOLTZMANN_EV = 8.617333262e-5  #: Boltzmann constant, eV/K
#: Temperatures a chip is read at, kelvin: below 200 K (-73 C) is no operating point, and a
#: value there is most likely degrees Celsius passed by mistake.
TEMPERATURE_RANGE = (200, 1000)


@dataclass(frozen=True)
class Side:
    """The integrators and converters of one direction of MVM: the columns' (forward) or
    the rows' (backward).

    Attributes
    ----------
    name : str
        ``"col"`` or ``"row"``.
    adc : AdcBank
        The converters' static part.
    lsb, limit : float
        Charge per ADC code; the integrators' clamp (charge).
    input_sigma, comparator_sigma : float
        RMS (charge) of the converter input noise (per conversion) and of the comparator
        noise (per decision).
    context : int
        Noise context of the side's integrations.
    inputs, outputs : int
        Lines driven and lines integrated (rows and columns forward, columns and rows
        backward).
    """

    name: str
    adc: AdcBank
    lsb: float
    limit: float
    input_sigma: float
    comparator_sigma: float
    context: int
    inputs: int
    outputs: int

    @property
    def per_adc(self) -> int:
        return self.adc.per_adc

    @property
    def n_adc(self) -> int:
        return self.adc.n_adc


class Chip(TrainingMixin, ProgrammingMixin):
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
        #: Drive per cycle of the line drivers (:class:`~.grid.DriveLevels`), rows and
        #: columns alike.
        self.drive_levels = DriveLevels(config.driver)
        #: The chip's random draws (:class:`~.events.NoiseEvents`), keyed by the seed.
        self.noise = NoiseEvents(tile, seed)
        #: The column side (forward MVMs) and the row side (backward MVMs).
        self.forward = self._side("col", tile.rows, tile.cols, 0)
        self.backward = self._side("row", tile.cols, tile.rows, BACKWARD_CONTEXT)
        f = self.forward
        #: The forward side's figures, as most of the model uses them.
        self.lsb, self.limit, self.adc = f.lsb, f.limit, f.adc
        self.input_sigma, self.comparator_sigma = f.input_sigma, f.comparator_sigma
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
        #: Number of the next MVM :meth:`mvm` uses when not told one (the read counter).
        self.next_vector = 0
        self._states: dict = {}
        self._reads: dict = {}         # read_weights per side
        self._pulse_dtod = None        # device-to-device factor of the SET step, drawn lazily
        self._pulsed = False           # pulses applied since the last state
        #: The pulsed (training) devices, or None for an inference model.
        self.training = (PulsedArray(tile, config, seed) if config.update.kind != "none"
                         else None)
        #: Update pulse slots applied, and device pulses up and down.
        self.update_slots = self.update_up = self.update_down = 0
        self._erase()

    def _side(self, name: str, inputs: int, outputs: int, context: int) -> Side:
        cfg, tile = self.config, self.tile
        lsb = (default_lsb(tile, self.w_max, inputs) if cfg.adc.lsb is None
               else cfg.adc.lsb)
        limit = cfg.integrator.swing * 2 ** (tile.adc_bits - 1) * lsb
        return Side(name, AdcBank(tile, cfg, lsb, self.noise, name), lsb, limit,
                    cfg.adc.input_noise * lsb, cfg.adc.comparator_noise * lsb, context,
                    inputs, outputs)

    def _erase(self) -> None:
        """A new chip: every device at g_min (stuck devices at their rail), no drift."""
        shape = (self.tile.rows, self.tile.cols)
        self._set_targets(np.zeros(shape, dtype=np.int64))
        self.g_prog = self._at_rails(self.g_target)
        self.nu = np.zeros(shape + (2,))
        self._changed()
        self._pulsed = False
        if self.training is not None:
            self._sync_training()

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
        w = as_int_array(w, "weights")
        if w.size and np.abs(w).max() > self.w_max:
            raise ValueError(
                f"weights must lie in -{self.w_max}..{self.w_max} (weight_bits="
                f"{self.config.array.weight_bits}), found {int(np.abs(w).max())}")
        if self.training is not None:
            # Ideal programming of the update devices; the references stay where they are.
            self.training.set_weights(w / self.training_scale)
            self._set_targets(w.astype(np.int64))
            self._sync_training()
            return
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

        Both take any real number (numpy scalars too, :mod:`aimc.numeric`).

        Raises
        ------
        ValueError
            ``time`` is not a finite number >= 0, or ``temperature`` not in
            ``TEMPERATURE_RANGE`` kelvin: below 200 K is no operating temperature of a chip,
            and the likely slip is degrees Celsius (25 would leave the array dark).
        """
        time = as_real(time, "time", 0.0, unit="seconds")
        if temperature is None:
            return time, float(self.config.device.temp_ref)
        lo, hi = TEMPERATURE_RANGE
        if not (is_number(temperature) and lo <= temperature <= hi):
            raise ValueError(f"temperature must be in kelvin, {lo}..{hi} K, not "
                             f"{show(temperature)} (below {lo} K is no operating "
                             f"temperature; 25 degrees Celsius is 298.15 K)")
        return time, float(temperature)

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

    def mvm(self, x, first_vector: int | None = None, time: float = 0.0,
            temperature: float | None = None) -> np.ndarray:
        """:meth:`ChipState.mvm` at ``(time, temperature)``, numbered by the chip's read
        counter.

        Every MVM is an event whose number keys its noise (converter, comparator and
        white noise), as the RTL's MVMs since reset are numbered in cosimulation. Without
        ``first_vector`` the batch takes the next numbers of :attr:`next_vector`, so two
        calls on the same vector draw independent noise (averaging repeated reads works);
        ``first_vector`` numbers the batch explicitly (a read repeated with the same number
        gives the same result, bit for bit). Either way :attr:`next_vector` moves past the
        numbers used, so later calls without ``first_vector`` never reuse them.
        """
        x = self.check_inputs(x)
        if first_vector is None:
            first_vector = self.next_vector
        elif isinstance(first_vector, bool) or not isinstance(first_vector, int | np.integer) \
                or first_vector < 0:
            raise ValueError(f"first_vector must be an integer >= 0 or None (the read "
                             f"counter), not {first_vector!r}")
        out = self.state(time, temperature).mvm(x, int(first_vector))
        self.next_vector = max(self.next_vector, int(first_vector) + len(x))
        return out

    def cycle_model(self, time: float = 0.0, temperature: float | None = None) -> CycleModel:
        """A fresh per-cycle model of the chip at ``(time, temperature)``, as after reset."""
        return CycleModel(self.state(time, temperature))

    def integration_index(self, vector: int, plane: int) -> int:
        """Event number of the integration of ``plane`` of the ``vector``-th MVM. The RTL
        evaluates bit planes most significant first, so integrations are numbered so."""
        return vector * self.tile.planes + (self.tile.planes - 1 - plane)

    def check_inputs(self, x, lines: int | None = None) -> np.ndarray:
        """Validate an input batch ``(batch, lines)`` (default: the rows) of integers within
        ``+-x_max``."""
        lines = self.tile.rows if lines is None else lines
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != lines:
            raise ValueError(f"inputs must have shape (batch, {lines}), not {x.shape}")
        x = as_int_array(x, "inputs")
        x_max = self.tile.x_max
        if x.size and max(-int(x.min()), int(x.max())) > x_max:
            raise ValueError(
                f"inputs must lie in -{x_max}..{x_max} (input_bits={self.tile.input_bits}), "
                f"found {max(-int(x.min()), int(x.max()))}")
        return x.astype(np.int64, copy=False)


def default_lsb(tile: TileConfig, w_max: int, inputs: int | None = None) -> float:
    """ADC LSB (charge) for which four standard deviations of the charge of uniform random
    inputs and weights on ``inputs`` driven lines (default: the rows) span half the
    converter range."""
    inputs = tile.rows if inputs is None else inputs
    if tile.input_mode == "pwm":
        # Uniform x in [-x_max, x_max] and w in [-w_max, w_max]: var = x_max^2 w_max^2 / 9.
        sigma = math.sqrt(inputs) * tile.x_max * w_max / 3
    else:
        # One bit plane: the driven value is 0 or +-1 with probability 1/2 each.
        sigma = math.sqrt(inputs / 2) * w_max / math.sqrt(3)
    return float(math.ceil(4 * sigma / 2 ** (tile.adc_bits - 1)))
