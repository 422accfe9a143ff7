"""One chip of the analogue half: programmed devices, wires, drivers, integrators, ADCs.

:class:`Chip` draws every static mismatch once, from its seed. Programming draws the
programming noise and the drift exponents (keyed by the programming number). Time since
programming and temperature are explicit: :meth:`Chip.state` gives the :class:`ChipState` at
one ``(time, temperature)``, which holds the effective weight matrix of that moment, IR drop
included, and has the two faces that compute the same thing:

* :meth:`ChipState.mvm`, the batch path: the golden prediction of the results the RTL emits;
* :class:`CycleModel`, the per-cycle path: the analogue half that answers the RTL's ports.

Units. Charge counts one input LSB times one conductance LSB (``(g_max - g_min) / w_max``)
for one clock cycle, so ideal devices integrate exactly the integer dot product.

Exact agreement of the two paths. The effective weights are rounded to a binary grid
(``2^-k``, ``k`` as fine as the array allows, typically ``2^-14`` of a conductance LSB) and the
drive levels to ``2^-16``, chosen so that every product and partial sum of an integration
is exactly representable in float64. Summing cycle by cycle (per-cycle path) and one matrix
product (batch path) then give the same charge to the last bit, in any order of summation.
Noise is drawn per event (see :mod:`.rng`) and added by the same operations in both paths.

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
from .adc import AdcBank
from .config import ModelConfig, preset
from .rng import Static, Stream, normals, uniforms

__all__ = ["Chip", "ChipState", "CycleModel", "BOLTZMANN_EV"]

BOLTZMANN_EV = 8.617333262e-5  #: Boltzmann constant, eV/K
DRIVE_GRID = 2.0**-16          #: resolution of the drive levels
_CHUNK = 256                  # vectors per batch-path pass
_PROGRAM_NOISE, _PROGRAM_NU = 0, 1


class Chip:
    """One chip: static mismatch drawn from ``seed``, weights set by :meth:`program`.

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
        normals(seed, Stream.STATIC, 0, 1, 1)  # validates the seed
        self.adc = AdcBank(tile, config, self.lsb, seed)
        u = uniforms(seed, Stream.STATIC, 0, 1, tile.rows * tile.cols * 2,
                     context=int(Static.STUCK))[0].reshape(tile.rows, tile.cols, 2)
        #: Stuck devices, ``(rows, cols, 2)`` for G+ and G-: -1 at g_min, +1 at g_max, else 0.
        self.stuck = np.where(u < dev.stuck_gmin_rate, -1,
                              np.where(u >= 1 - dev.stuck_gmax_rate, 1, 0)).astype(np.int8)
        #: Number of programming events so far (each keys its own noise).
        self.programs = 0
        self._states: dict = {}
        self._erase()

    def _erase(self) -> None:
        """A new chip: every device at g_min (stuck devices at their rail), no drift."""
        shape = (self.tile.rows, self.tile.cols)
        dev = self.config.device
        self.target_weights = np.zeros(shape, dtype=np.int64)
        self.g_target = np.full(shape + (2,), dev.g_min)
        self.g_prog = np.where(self.stuck < 0, dev.g_min,
                               np.where(self.stuck > 0, dev.g_max, self.g_target))
        self.nu = np.zeros(shape + (2,))
        self._states.clear()

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
        self.target_weights = w.astype(np.int64)
        pair = np.stack([np.maximum(w, 0), np.maximum(-w, 0)], axis=-1).astype(np.float64)
        #: Target conductances, uS, ``(rows, cols, 2)``.
        self.g_target = dev.g_min + self.g_lsb * pair
        g_rel = self.g_target / dev.g_max
        size = self.g_target.size
        ctx = self.programs * 2
        sigma = np.polynomial.polynomial.polyval(g_rel, dev.prog_coeffs)
        if np.any(dev.prog_coeffs):
            z = normals(self.seed, Stream.PROGRAM, 0, 1, size, context=ctx + _PROGRAM_NOISE)
            g = np.maximum(self.g_target + sigma * z[0].reshape(self.g_target.shape), 0.0)
        else:
            g = self.g_target.copy()
        g = np.where(self.stuck < 0, dev.g_min, np.where(self.stuck > 0, dev.g_max, g))
        #: Conductances right after programming, uS.
        self.g_prog = g
        ln_g = np.log(np.maximum(g_rel, 1e-7))
        mu = np.clip(dev.nu_mean_a * ln_g + dev.nu_mean_b, dev.nu_mean_lo, dev.nu_mean_hi)
        s = np.clip(dev.nu_std_a * ln_g + dev.nu_std_b, dev.nu_std_lo, dev.nu_std_hi)
        if np.any(s):
            z = normals(self.seed, Stream.PROGRAM, 0, 1, size, context=ctx + _PROGRAM_NU)
            mu = mu + s * z[0].reshape(g.shape)
        #: Drift exponent of each device.
        self.nu = np.abs(mu)
        self._states.clear()

    # -- conductance at a moment ---------------------------------------------------------

    def conductances(self, time: float = 0.0, temperature: float | None = None) -> np.ndarray:
        """Conductances (uS, ``(rows, cols, 2)``) read ``time`` seconds after the reference
        read (which is ``drift_t0`` after programming) at ``temperature`` kelvin (``None``:
        the characterisation temperature)."""
        time, temperature = self._moment(time, temperature)
        dev = self.config.device
        t = time + dev.drift_t0
        g = self.g_prog * (t / dev.drift_t0) ** -self.nu if np.any(self.nu) else self.g_prog
        if dev.read_q:
            q = np.minimum(dev.read_q / np.maximum((self.g_prog / dev.g_max) ** dev.read_q_exp,
                                                   1e-3), dev.read_q_max)
            spread = q * math.sqrt(max(math.log((t + dev.read_t) / (2 * dev.read_t)), 0.0))
            z = normals(self.seed, Stream.FLICKER, _time_event(time), 1, g.size,
                        context=self.programs)[0].reshape(g.shape)
            g = np.maximum(g + np.abs(g) * spread * z, 0.0)
        if dev.temp_activation and temperature != dev.temp_ref:
            g = g * math.exp(-dev.temp_activation / BOLTZMANN_EV
                             * (1 / temperature - 1 / dev.temp_ref))
        stuck = self.stuck != 0
        if stuck.any():
            g = np.where(stuck, self.g_prog, g)
        return g

    def _moment(self, time, temperature):
        if not (isinstance(time, (int, float)) and math.isfinite(time) and time >= 0):
            raise ValueError(f"time must be a finite number of seconds >= 0, not {time!r}")
        if temperature is None:
            temperature = self.config.device.temp_ref
        if not (isinstance(temperature, (int, float)) and 0 < temperature < 1000):
            raise ValueError(f"temperature must be in kelvin, between 0 and 1000, "
                             f"not {temperature!r}")
        return float(time), float(temperature)

    def state(self, time: float = 0.0, temperature: float | None = None) -> ChipState:
        """The chip at one moment (cached per programming, time and temperature)."""
        key = self._moment(time, temperature)
        if key not in self._states:
            self._states[key] = ChipState(self, self.conductances(*key))
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


def _time_event(time: float) -> int:
    """Event number of a read time: microseconds since programming."""
    return int(round(time * 1e6)) % 2**62


def _grid(a: np.ndarray, bound: float) -> tuple[np.ndarray, float]:
    """Round ``a`` to the finest binary grid ``2^-k`` for which sums of drive-weighted
    products up to ``bound`` (in units of ``a``) stay exact in float64."""
    k = 52 - 16 - math.ceil(math.log2(max(bound, 1.0)))
    scale = 2.0 ** min(k, 40)
    return np.round(a * scale) / scale, scale


class ChipState:
    """A chip at one moment: effective weights and noise, and the batch MVM.

    Attributes
    ----------
    weights : array (rows, cols)
        Effective weight matrix (charge per cycle of unit drive), IR drop included.
    """

    def __init__(self, chip: Chip, g: np.ndarray):
        self.chip, self.tile, self.adc = chip, chip.tile, chip.adc
        tile, cfg = chip.tile, chip.config
        rows, cols = tile.rows, tile.cols
        arr = cfg.array
        if arr.r_row or arr.r_col:
            from .irdrop import effective_matrix

            m = effective_matrix(g.reshape(rows, 2 * cols) * 1e-6, arr.r_row, arr.r_col) * 1e6
            w_us = m[:, 0::2] - m[:, 1::2]
        else:
            w_us = g[..., 0] - g[..., 1]
        drv = cfg.driver
        levels = {}
        for s in (1, -1):
            amp = 1 + drv.polarity_mismatch * s
            levels[s] = (_on_grid(amp * (1 - drv.edge_loss)), _on_grid(amp))
        self._first = {s: v[0] for s, v in levels.items()}
        self._on = {s: v[1] for s, v in levels.items()}
        amp_max = max(max(v) for v in levels.values())
        self._drive = [self._drive_table(p) for p in range(tile.planes)]
        self._drive_abs32 = [np.abs(d).astype(np.float32) for d in self._drive]
        w = w_us / chip.g_lsb
        drive_bound = rows * max(tile.x_max, 1) * amp_max
        self.weights, _ = _grid(w, drive_bound * np.abs(w).max(initial=0.0))
        self._w32 = self.weights.astype(np.float32)
        self._abs_w32m = np.abs(self._w32) * np.float32(1 + 2e-4)  # see _charges
        if tile.input_mode == "pwm":
            # Drive over the first and the second half of the PWM window, per input value.
            self._halves = [self._drive_window(0, tile.drive_cycles // 2),
                            self._drive_window(tile.drive_cycles // 2, tile.drive_cycles)]
        dev = cfg.device
        if dev.white_noise:
            s = dev.white_noise**2 * dev.g_max * (g[..., 0] + g[..., 1]) / chip.g_lsb**2
            self._white, _ = _grid(s, rows * tile.x_max * s.max(initial=0.0))
        else:
            self._white = None
        self._base_var = (cfg.adc.input_noise * chip.lsb) ** 2
        self.noisy = bool(self._base_var or self._white is not None)
        self._cmp = cfg.adc.comparator_noise * chip.lsb

    # -- drive ---------------------------------------------------------------------------

    def _level(self, s: np.ndarray, first) -> np.ndarray:
        """Drive per cycle of signs ``s``; ``first`` marks the rising-edge cycle."""
        pos = np.where(first, self._first[1], self._on[1])
        neg = np.where(first, self._first[-1], self._on[-1])
        return np.where(s > 0, pos, np.where(s < 0, -neg, 0.0))

    def _drive_table(self, plane: int) -> np.ndarray:
        """Total drive over the integration of ``plane`` for each input ``-x_max..x_max``."""
        x = np.arange(-self.tile.x_max, self.tile.x_max + 1)
        s, mag = np.sign(x), np.abs(x)
        if self.tile.input_mode == "bitserial":
            return self._level(s * ((mag >> plane) & 1), True)
        return self._level(s, True) + (mag - 1).clip(0) * self._level(s, False)

    def _drive_window(self, start: int, stop: int) -> np.ndarray:
        """PWM drive over cycles ``start .. stop-1`` for each input value, float32."""
        x = np.arange(-self.tile.x_max, self.tile.x_max + 1)
        s, mag = np.sign(x), np.abs(x)
        on = (np.minimum(mag, stop) - np.maximum(start, 1)).clip(0) * self._level(s, False)
        if start == 0:
            on = on + self._level(s, True) * (mag > 0)
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

    def _charges(self, x: np.ndarray, plane: int, reference: bool = False) -> np.ndarray:
        """:meth:`charges`, transposed: ``(cols, batch)``, C-contiguous."""
        w, limit = self.weights, self.chip.limit
        if reference:
            return self._referenced(x, plane)
        index = x + self.tile.x_max
        q = w.T @ np.take(self._drive[plane], index).T
        if self.tile.input_mode == "bitserial":
            return np.clip(q, -limit, limit, out=q)
        # The integrator clamps after every cycle. Every partial sum lies between minus the
        # sum of the negative products and the sum of the positive ones, each at most
        # (spread + |q|) / 2 with spread = |d| @ |w|; where that stays within the limit the
        # clamp never acts and the one product above is exact. The same bound over each
        # half of the window, from the charge at the half, refines it. The bounds only pick
        # the vectors that are integrated cycle by cycle (both ways give the same charge
        # when the clamp is idle), so they are computed in float32, with the spread
        # enlarged by 2e-4 of itself (float32 errs by under 2e-5 of it).
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
        for start in range(0, candidates.size, 64):
            chunk = candidates[start:start + 64]
            q[:, chunk] = self._saturating(x[chunk]).T
        return q

    def _referenced(self, x: np.ndarray, plane: int) -> np.ndarray:
        """Charges of integrations that start from the reference charge: cycle by cycle,
        by the per-cycle path's operations."""
        limit = self.chip.limit
        ref = np.clip(self.adc.reference, -limit, limit)[:, None]
        s, mag = np.sign(x), np.abs(x)
        q = np.repeat(ref, x.shape[0], axis=1)
        for t in range(self.tile.drive_cycles):
            if self.tile.input_mode == "pwm":
                level = np.where(mag > t, self._level(s, t == 0), 0.0)
            else:
                level = self._level(s * ((mag >> plane) & 1), True)
            if level.any():
                q = np.clip(q + self.weights.T @ level.T, -limit, limit)
        return q

    def _saturating(self, x: np.ndarray) -> np.ndarray:
        """Exact PWM integration of vectors ``x`` with the clamp after every cycle.

        Cycle 0 adds ``F``, the rising-edge drive times the weights; cycle ``t >= 1`` adds
        ``c_t = sum_{m > t} V_m``, where ``V_m`` sums the per-cycle drive times the weights
        of the rows whose pulse lasts ``m`` cycles (one sparse product for all vectors).
        Every sum is exact on the grid, so ``c_t`` equals the per-cycle path's current to
        the bit, and the clamped accumulation below is the per-cycle path's, operation for
        operation.
        """
        from scipy.sparse import csr_matrix

        n, rows = x.shape
        limit, w = self.chip.limit, self.weights
        s, mag = np.sign(x), np.abs(x)
        t_max = int(mag.max(initial=0))
        q = np.clip(self._level(s, True) @ w, -limit, limit)          # cycle 0
        if t_max <= 1:
            return q
        b, i = np.nonzero(mag > 1)
        a = csr_matrix((self._level(s, False)[b, i], (b * t_max + mag[b, i] - 1, i)),
                       shape=(n * t_max, rows))
        v = (a @ w).reshape(n, t_max, -1)
        c = v.sum(axis=1)                                             # c_1 = sum_{m > 1} V_m
        for t in range(1, t_max):
            if t > 1:
                c -= v[:, t - 1]
            q += c
            np.clip(q, -limit, limit, out=q)
        return q

    def sigma(self, counts: np.ndarray) -> np.ndarray | float:
        """Column noise RMS (charge) for rows driven ``counts`` cycles."""
        if self._white is None:
            return math.sqrt(self._base_var)
        return np.sqrt(self._base_var + counts @ self._white)

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
        if self.noisy:
            z = normals(chip.seed, Stream.READ, first_vector * p, b * p, tile.cols
                        ).reshape(b, p, tile.cols)
        if self._cmp:
            zc = normals(chip.seed, Stream.COMPARATOR, first_vector * p * cpa, b * p * cpa,
                         tile.n_adc * tile.adc_bits
                         ).reshape(b, p, cpa, tile.n_adc, tile.adc_bits)
        out = np.zeros((tile.cols, b), dtype=np.int64)  # transposed: columns first
        for plane in range(p):
            v = self._charges(x, plane, reference)
            k = p - 1 - plane  # position of this plane's integration within the vector
            if self.noisy:
                counts = self.driven_cycles(x, plane) if self._white is not None else None
                v += (self.sigma(counts) * z[:, k]).T
            if self._cmp:
                codes = np.empty_like(out)
                for sel in range(cpa):
                    cols = self.adc.columns(sel)
                    codes[cols] = self.adc.search(v[cols].T, cols,
                                                  self._cmp * zc[:, k, sel]).T
            else:
                codes = self.adc.convert_t(v)
            codes -= half
            codes <<= plane
            out += codes
        return np.ascontiguousarray(out.T)


def _over(spread: np.ndarray, q: np.ndarray, two_limit) -> np.ndarray:
    """Whether a partial sum can exceed half of ``two_limit``: ``(spread + |q|) / 2`` bounds
    the sums of the positive and of the negative products (``spread`` already enlarged to
    cover float32 rounding)."""
    t = np.abs(q, dtype=np.float32)
    t += spread
    return t > two_limit


def _on_grid(value: float) -> float:
    return round(value / DRIVE_GRID) * DRIVE_GRID


def unpack_bits(value: int, n: int) -> np.ndarray:
    """Bits 0..n-1 of a packed port value, as a bool array (bit i is element i)."""
    raw = np.frombuffer(int(value).to_bytes(-(-n // 8) or 1, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


def unpack_fields(value: int, n: int, width: int) -> np.ndarray:
    """``n`` unsigned fields of ``width`` bits from a packed port value (field i at bit i*width)."""
    bits = unpack_bits(value, n * width).reshape(n, width).astype(np.int64)
    return bits @ (1 << np.arange(width, dtype=np.int64))


def pack_bits(bits: np.ndarray) -> int:
    """Inverse of :func:`unpack_bits`."""
    return int.from_bytes(np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little")
                          .tobytes(), "little")


class CycleModel:
    """The analogue half as the RTL sees it, one clock cycle at a time.

    The cosimulation bridge calls :meth:`cycle` once per clock with the values of the
    analogue-boundary ports; it returns the comparator decisions to drive back.
    """

    def __init__(self, state: ChipState):
        self.state, self.chip = state, state.chip
        tile = state.tile
        self.q = np.zeros(tile.cols)          # integrator state
        self.counts = np.zeros(tile.rows)     # cycles each row was driven this integration
        self.integration = -1                 # event number of the running integration
        self._prev_en = 0
        self._key = None                      # (row_en, row_neg, previous row_en) of _current
        self._current = None
        self._noise_key = None                # (integration, sel) the noise below is for
        self._cols = self._read = self._cmp = None

    def set_state(self, state: ChipState) -> None:
        """Continue with the chip at another moment (same chip, for example later in its
        drift); the event numbering goes on."""
        if state.chip is not self.chip:
            raise ValueError("set_state needs a state of the same chip")
        self.state = state
        self._key = self._noise_key = None

    def reset_integrators(self) -> None:
        self.q[:] = 0.0
        self.counts[:] = 0
        self.integration += 1
        self._prev_en = 0

    def inject_reference(self) -> None:
        """Add the calibration reference charge to every column's integrator."""
        limit = self.chip.limit
        np.clip(self.q + self.chip.adc.reference, -limit, limit, out=self.q)

    def drive(self, row_en: int, row_neg: int) -> None:
        """Integrate one cycle of row drive (packed port values)."""
        if row_en:
            key = (row_en, row_neg, self._prev_en)
            if key != self._key:
                rows = self.state.tile.rows
                en = unpack_bits(row_en, rows)
                neg = unpack_bits(row_neg, rows)
                first = en & ~unpack_bits(self._prev_en, rows)
                s = np.where(en, np.where(neg, -1, 1), 0)
                self._current = self.state._level(s, first) @ self.state.weights
                self._en = en
                self._key = key
            limit = self.chip.limit
            np.clip(self.q + self._current, -limit, limit, out=self.q)
            if self.state._white is not None:
                self.counts += self._en
        self._prev_en = row_en

    def compare(self, sel: int, trial: int) -> int:
        """Comparator decisions for the packed trial codes; returns the packed decisions."""
        state, tile, chip = self.state, self.state.tile, self.chip
        if self.integration < 0:
            raise RuntimeError("analogue boundary: a comparison was requested (adc_sample) "
                               "before any integrator reset (int_reset)")
        if self._noise_key != (self.integration, sel):
            self._noise_key = (self.integration, sel)
            self._cols = state.adc.columns(sel)
            if state.noisy:
                z = normals(chip.seed, Stream.READ, self.integration, 1, tile.cols)[0]
                self._read = (state.sigma(self.counts) * z)[self._cols]
            else:
                self._read = None
            if state._cmp:
                index = self.integration * tile.cols_per_adc + sel
                self._cmp = state._cmp * normals(chip.seed, Stream.COMPARATOR, index, 1,
                                                 tile.n_adc * tile.adc_bits
                                                 )[0].reshape(tile.n_adc, tile.adc_bits)
        trials = unpack_fields(trial, tile.n_adc, tile.adc_bits)
        v = self.q[self._cols]
        if self._read is not None:
            v = v + self._read
        if state._cmp:
            # The bit being decided is the lowest set bit of the trial code.
            bit = np.log2(np.maximum(trials & -trials, 1)).astype(np.int64)
            v = v + self._cmp[np.arange(tile.n_adc), bit]
        return pack_bits(state.adc.decide(v, self._cols, trials))

    def cycle(self, *, int_reset: int, row_en: int, row_neg: int, sample: int, sel: int,
              trial: int, ref_en: int = 0) -> int | None:
        """Advance one clock cycle; returns the packed comparator decisions when sampled.

        Raises
        ------
        RuntimeError
            A comparison is requested before the first integrator reset, or a reference
            injection without an integrator reset.
        """
        if int_reset:
            self.reset_integrators()
            if ref_en:
                self.inject_reference()
        elif ref_en:
            raise RuntimeError("analogue boundary: ref_en without int_reset")
        self.drive(row_en, row_neg)
        if sample:
            return self.compare(sel, trial)
        return None
