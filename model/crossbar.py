"""Behavioural model of the analogue half of a tile.

One :class:`Crossbar` is one chip: programmed conductance pairs, column integrators with a
finite range, and one successive-approximation ADC per group of ``cols_per_adc`` columns,
modelled at comparator level. It has two faces that compute the same thing:

* :meth:`Crossbar.mvm`, the batch path: the golden prediction of the results the RTL emits.
* :class:`CycleModel`, the per-cycle path: the analogue half that answers the RTL's ports
  in cosimulation (integrator reset, row drive, SAR comparisons).

Units. Charge is counted in units of one input LSB times one conductance LSB
(``g_max / w_max``) integrated for one clock cycle, so with ideal devices the charge a
column integrates is exactly the integer dot product of input and weight columns.

Quantisation (documented contract, see docs/architecture.md). A conversion of column
charge ``q`` with LSB ``lsb`` and ``adc_bits`` N gives the signed code
``clamp(floor(q / lsb + 1/2), -2**(N-1), 2**(N-1) - 1)``: the SAR comparator for trial
code ``t`` (offset binary) answers ``q >= (t - 2**(N-1) - 1/2) * lsb``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..config import TileConfig
from .rng import Stream, event_normal

__all__ = ["AnalogueParams", "Crossbar", "CycleModel", "quantise"]


@dataclass(frozen=True)
class AnalogueParams:
    """Analogue parameters of the model. ``None`` means "derive from the tile".

    Parameters
    ----------
    weight_bits : int
        Signed weight resolution: weights are integers in ``-w_max .. w_max`` with
        ``w_max = 2**(weight_bits-1) - 1``, each a differential pair of conductances in
        ``0 .. g_max``. 2..16.
    adc_lsb : float or None
        Charge per ADC code. ``None``: four standard deviations of the column charge for
        uniformly distributed inputs and weights span half the ADC range.
    integrator_limit : float or None
        Integrator saturation, in charge units; the integrator clamps to
        ``-limit .. +limit`` after every cycle. ``None``: twice the ADC's half range.
    comparator_noise : float
        Comparator input-referred noise, RMS, in ADC LSB; 0 for an ideal converter.
    read_noise : float
        Column read noise per integration, RMS, in charge units; 0 for ideal devices.

    Raises
    ------
    ValueError
        A parameter is out of range.
    """

    weight_bits: int = 8
    adc_lsb: float | None = None
    integrator_limit: float | None = None
    comparator_noise: float = 0.0
    read_noise: float = 0.0

    def __post_init__(self):
        if not isinstance(self.weight_bits, int) or not 2 <= self.weight_bits <= 16:
            raise ValueError(
                f"AnalogueParams.weight_bits must be an integer between 2 and 16, "
                f"not {self.weight_bits!r}")
        for name in ("adc_lsb", "integrator_limit"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(
                    f"AnalogueParams.{name} must be a positive number or None, not {value!r}")
        for name in ("comparator_noise", "read_noise"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
                raise ValueError(
                    f"AnalogueParams.{name} must be a finite number >= 0, not {value!r}")

    @property
    def w_max(self) -> int:
        return 2 ** (self.weight_bits - 1) - 1

    def resolve(self, tile: TileConfig) -> AnalogueParams:
        """Return a copy with every ``None`` replaced by its value for ``tile``."""
        lsb = self.adc_lsb
        if lsb is None:
            if tile.input_mode == "pwm":
                # Uniform x in [-x_max, x_max] and w in [-w_max, w_max]: var = x_max^2 w_max^2 / 9.
                sigma = math.sqrt(tile.rows) * tile.x_max * self.w_max / 3
            else:
                # One bit plane: the driven value is 0 or +-1 with probability 1/2 each.
                sigma = math.sqrt(tile.rows / 2) * self.w_max / math.sqrt(3)
            lsb = float(math.ceil(4 * sigma / 2 ** (tile.adc_bits - 1)))
        limit = self.integrator_limit
        if limit is None:
            limit = 2.0 * lsb * 2 ** (tile.adc_bits - 1)
        return dataclasses.replace(self, adc_lsb=float(lsb), integrator_limit=float(limit))


def quantise(q: np.ndarray, lsb: float, adc_bits: int) -> np.ndarray:
    """Ideal conversion of charge ``q``: round half up to the LSB, clamp to the code range."""
    half = 2 ** (adc_bits - 1)
    return np.clip(np.floor(np.asarray(q, dtype=np.float64) / lsb + 0.5), -half, half - 1
                   ).astype(np.int64)


class Crossbar:
    """One chip: a programmed crossbar with its integrators and ADCs.

    Parameters
    ----------
    tile : TileConfig
        The tile the chip belongs to.
    params : AnalogueParams
        Analogue parameters; ``None`` fields are derived from ``tile``.
    seed : int
        Chip seed: all randomness is a function of it and of the event.
    """

    def __init__(self, tile: TileConfig, params: AnalogueParams | None = None, seed: int = 0):
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        self.tile = tile
        self.params = (params or AnalogueParams()).resolve(tile)
        self.seed = seed
        event_normal(seed, Stream.STATIC, 0, ())  # validates the seed
        # Conductances in units of one conductance LSB (g_max / w_max).
        self.g_plus = np.zeros((tile.rows, tile.cols))
        self.g_minus = np.zeros((tile.rows, tile.cols))

    # -- programming -------------------------------------------------------------------

    def program(self, weights) -> None:
        """Load integer weights directly as differential conductance pairs.

        Raises
        ------
        ValueError
            ``weights`` has the wrong shape, is not integral, or is outside ``-w_max..w_max``.
        """
        w = np.asarray(weights)
        shape = (self.tile.rows, self.tile.cols)
        if w.shape != shape:
            raise ValueError(f"weights must have shape {shape}, not {w.shape}")
        if not np.array_equal(w, np.round(w)):
            raise ValueError("weights must be integers")
        w_max = self.params.w_max
        if w.size and np.abs(w).max() > w_max:
            raise ValueError(
                f"weights must lie in -{w_max}..{w_max} (weight_bits="
                f"{self.params.weight_bits}), found {int(np.abs(w).max())}")
        w = w.astype(np.float64)
        self.g_plus = np.maximum(w, 0.0)
        self.g_minus = np.maximum(-w, 0.0)

    @property
    def weights(self) -> np.ndarray:
        """Effective weight of each cell, (G+ - G-) in conductance LSB."""
        return self.g_plus - self.g_minus

    # -- shared pieces of both paths -----------------------------------------------------

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
        if x.size and np.abs(x).max() > x_max:
            raise ValueError(
                f"inputs must lie in -{x_max}..{x_max} (input_bits={self.tile.input_bits}), "
                f"found {int(np.abs(x).max())}")
        return x.astype(np.int64)

    def integration_index(self, vector: int, plane: int) -> int:
        """Event number of the integration of ``plane`` of the ``vector``-th MVM. The RTL
        evaluates bit planes most significant first, so integrations are numbered so."""
        return vector * self.tile.planes + (self.tile.planes - 1 - plane)

    def read_noise(self, integration: int) -> np.ndarray:
        """Column read noise (charge units) added to an integration's result."""
        if self.params.read_noise == 0:
            return np.zeros(self.tile.cols)
        return self.params.read_noise * event_normal(
            self.seed, Stream.READ, integration, (self.tile.cols,))

    def comparator_noise(self, integration: int, sel: int) -> np.ndarray:
        """Comparator noise (LSB) of each ADC at each SAR step, shape ``(n_adc, adc_bits)``,
        indexed by the bit position being decided."""
        shape = (self.tile.n_adc, self.tile.adc_bits)
        if self.params.comparator_noise == 0:
            return np.zeros(shape)
        index = integration * self.tile.cols_per_adc + sel
        return self.params.comparator_noise * event_normal(
            self.seed, Stream.COMPARATOR, index, shape)

    def threshold(self, trial: np.ndarray) -> np.ndarray:
        """Charge at which the comparator flips for offset-binary trial code(s) ``trial``."""
        half = 2 ** (self.tile.adc_bits - 1)
        return (np.asarray(trial, dtype=np.float64) - half - 0.5) * self.params.adc_lsb

    def columns(self, sel: int) -> np.ndarray:
        """Columns connected to the ADCs when the column select is ``sel``."""
        return np.arange(self.tile.n_adc) * self.tile.cols_per_adc + sel

    # -- batch path ----------------------------------------------------------------------

    def _drive_vector(self, x: np.ndarray, step: int) -> np.ndarray:
        """Signed row drive (-1, 0, +1) at drive step ``step`` (PWM cycle or bit plane)."""
        mag = np.abs(x)
        on = mag > step if self.tile.input_mode == "pwm" else (mag >> step) & 1
        return np.sign(x) * on

    def charges(self, x: np.ndarray, plane: int) -> np.ndarray:
        """Integrated column charge for each vector of ``x`` on ``plane``, with saturation."""
        w = self.weights
        limit = self.params.integrator_limit
        if self.tile.input_mode == "bitserial":
            return np.clip(self._drive_vector(x, plane).astype(np.float64) @ w, -limit, limit)
        q = x.astype(np.float64) @ w
        # The integrator clamps after every cycle; where no partial sum can reach the limit
        # the clamp never acts and the final sum is exact.
        bound = np.abs(x).astype(np.float64) @ np.abs(w)
        risky = np.nonzero((bound > limit).any(axis=1))[0]
        if risky.size:
            xr = x[risky]
            qr = np.zeros((risky.size, self.tile.cols))
            for t in range(self.tile.drive_cycles):
                qr = np.clip(qr + self._drive_vector(xr, t).astype(np.float64) @ w, -limit, limit)
            q[risky] = qr
        return q

    def sar(self, q: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Successive approximation of charges ``q`` (..., n_adc) with comparator noise
        ``noise`` (..., n_adc, adc_bits) in LSB; returns offset-binary codes."""
        n = self.tile.adc_bits
        code = np.zeros(q.shape, dtype=np.int64)
        for bit in range(n - 1, -1, -1):
            trial = code | (1 << bit)
            decide = q + noise[..., bit] * self.params.adc_lsb >= self.threshold(trial)
            code = np.where(decide, trial, code)
        return code

    def mvm(self, x, first_vector: int = 0) -> np.ndarray:
        """Golden prediction of the results the RTL emits for input batch ``x``.

        Parameters
        ----------
        x : array of int, shape (batch, rows)
            Signed inputs.
        first_vector : int
            MVM number (since the model's reset) of ``x[0]``: it keys the noise events.

        Returns
        -------
        array of int64, shape (batch, cols)
            Signed results: the ADC code for PWM, the shift-and-add sum of the plane codes
            for bit-serial.
        """
        x = self.check_inputs(x)
        tile = self.tile
        half = 2 ** (tile.adc_bits - 1)
        out = np.zeros((x.shape[0], tile.cols), dtype=np.int64)
        noisy = self.params.read_noise > 0 or self.params.comparator_noise > 0
        for plane in range(tile.planes):
            q = self.charges(x, plane)
            codes = np.zeros_like(out)
            for sel in range(tile.cols_per_adc):
                cols = self.columns(sel)
                if not noisy:
                    noise = np.zeros((x.shape[0], tile.n_adc, tile.adc_bits))
                    qs = q[:, cols]
                else:
                    events = [self.integration_index(first_vector + b, plane)
                              for b in range(x.shape[0])]
                    noise = np.stack([self.comparator_noise(e, sel) for e in events])
                    qs = q[:, cols] + np.stack([self.read_noise(e)[cols] for e in events])
                codes[:, cols] = self.sar(qs, noise) - half
            out += codes << plane
        return out

    def cycle_model(self) -> CycleModel:
        """A fresh per-cycle model of this chip, as it is after reset."""
        return CycleModel(self)


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

    def __init__(self, chip: Crossbar):
        self.chip = chip
        tile = chip.tile
        self.q = np.zeros(tile.cols)          # integrator state
        self._current = np.zeros(tile.cols)   # column current of the last row drive
        self._row_en = self._row_neg = 0
        self.integration = -1                 # event number of the running integration
        self._noise_key = None                # (integration, sel) the noise below is for
        self._cols = self._read = self._cmp = None

    def reset_integrators(self) -> None:
        self.q[:] = 0.0
        self.integration += 1

    def drive(self, row_en: int, row_neg: int) -> None:
        """Integrate one cycle of row drive (packed port values)."""
        if row_en != self._row_en or row_neg != self._row_neg:
            rows = self.chip.tile.rows
            en = unpack_bits(row_en, rows)
            neg = unpack_bits(row_neg, rows)
            drive = np.where(en, np.where(neg, -1.0, 1.0), 0.0)
            self._current = drive @ self.chip.weights
            self._row_en, self._row_neg = row_en, row_neg
        if row_en:
            limit = self.chip.params.integrator_limit
            np.clip(self.q + self._current, -limit, limit, out=self.q)

    def compare(self, sel: int, trial: int) -> int:
        """Comparator decisions for the packed trial codes; returns the packed decisions."""
        chip, tile = self.chip, self.chip.tile
        if self.integration < 0:
            raise RuntimeError("analogue boundary: a comparison was requested (adc_sample) "
                               "before any integrator reset (int_reset)")
        if self._noise_key != (self.integration, sel):
            self._noise_key = (self.integration, sel)
            self._cols = chip.columns(sel)
            self._read = chip.read_noise(self.integration)[self._cols]
            self._cmp = chip.comparator_noise(self.integration, sel)
        trials = unpack_fields(trial, tile.n_adc, tile.adc_bits)
        # The bit being decided is the lowest set bit of the trial code.
        bit = np.log2(np.maximum(trials & -trials, 1)).astype(np.int64)
        noise = self._cmp[np.arange(tile.n_adc), bit] * chip.params.adc_lsb
        decide = self.q[self._cols] + self._read + noise >= chip.threshold(trials)
        return pack_bits(decide)

    def cycle(self, *, int_reset: int, row_en: int, row_neg: int, sample: int, sel: int,
              trial: int) -> int | None:
        """Advance one clock cycle; returns the packed comparator decisions when sampled.

        Raises
        ------
        RuntimeError
            A comparison is requested before the first integrator reset.
        """
        if int_reset:
            self.reset_integrators()
        self.drive(row_en, row_neg)
        if sample:
            return self.compare(sel, trial)
        return None
