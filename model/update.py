"""The golden pulsed update: which row and column lines of the RTL's update engine fire in
which slot, and what the coincidences do to a :class:`~aimc.model.pulsed.PulsedArray`.

An update ``W_rc -= lr x_r d_c`` (``x`` over the rows, ``d`` over the columns, signed
integers of at most ``x_max``) takes ``bl`` pulse slots (:mod:`aimc.training` holds the
integer rules). In slot ``t`` every line's xorshift32 generator advances once; row ``r``
fires when the top 16 bits of its state are below its threshold
``probability_thresholds(|x_r|, scale_x, k)`` (columns likewise with ``d``), or, in
deterministic mode, when ``ramp(bl)[t]`` is below it (rows) or when its accumulator crosses
``2**16`` (columns, :func:`aimc.training.spread`). The generators advance in deterministic
mode too, so that their numbering stays the RTL's. A line's polarity is the sign of its
element. The slot's cycle-to-cycle noise is event ``update_index * 256 + t`` of
:attr:`~aimc.model.rng.Stream.UPDATE`, one deviate per device, so it depends on (chip seed,
update, slot) alone.

With update management (:meth:`UpdateEngine.update_managed`, :func:`aimc.training.manage`)
the expected number of pulses of device ``(r, c)`` is ``eta / 2**24 |x_r| |d_c|`` (up to the
rounding of the thresholds): on a constant-step device of step ``dw_min`` the learning rate
is ``lr = eta / 2**24 dw_min`` per product of input LSBs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import TileConfig
from ..training import (
    BL_MAX,
    LINE_COLUMN_BASE,
    PROB_BITS,
    Schedule,
    line_seeds,
    manage,
    probability_thresholds,
    ramp,
    spread,
    xorshift32,
)
from .events import SLOT_EVENTS, NoiseEvents
from .pulsed import PulsedArray

__all__ = ["SLOT_EVENTS", "UpdateEngine", "UpdateResult"]

#: Noise events reserved per update (one per slot; ``BL_MAX`` slots at most).

_WORD = (1 << 32) - 1


@dataclass
class UpdateResult:
    """What one update did.

    Attributes
    ----------
    schedule : Schedule
        Slots and scales (with the managed figures for a managed update).
    q_x, q_d : numpy.ndarray
        Line thresholds of the rows and columns (16-bit probabilities).
    up, down : int
        Pulses up and down (coincidences per direction), summed over the slots.
    line_pulses : int
        Line firings (rows and columns), summed over the slots.
    fire_rows, fire_cols : numpy.ndarray or None
        With ``record``: which lines fired, ``(slots, rows)`` and ``(slots, cols)``.
    """

    schedule: Schedule
    q_x: np.ndarray
    q_d: np.ndarray
    up: int = 0
    down: int = 0
    line_pulses: int = 0
    fire_rows: np.ndarray | None = field(default=None, repr=False)
    fire_cols: np.ndarray | None = field(default=None, repr=False)

    @property
    def slots(self) -> int:
        return self.schedule.bl

    def counters(self) -> dict:
        return {"slots": self.slots, "up": self.up, "down": self.down}


def _integer(name: str, value, lo: int, hi: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
            or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    return int(value)


class UpdateEngine:
    """Golden model of the RTL's update engine: one xorshift32 generator per row and column
    line, and the update that drives them.

    Parameters
    ----------
    tile : TileConfig
        The tile.
    seed : int
        UPD_SEED of the first reseed, ``0 .. 2**32 - 1``.

    Attributes
    ----------
    row_state, col_state : numpy.ndarray
        Generator states (uint32) of the rows (lines ``0 .. rows - 1``) and the columns
        (lines ``LINE_COLUMN_BASE + c``).
    updates : int
        Updates run so far (the default ``update_index`` of the next one).

    Raises
    ------
    TypeError
        ``tile`` is not a TileConfig.
    ValueError
        The seed is out of range.
    """

    def __init__(self, tile: TileConfig, seed: int = 0):
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        self.tile = tile
        self.updates = 0
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """UPD_CTRL.reseed with UPD_SEED ``seed``: every generator to its line's seed."""
        seed = _integer("seed", seed, 0, _WORD)
        self.row_state = line_seeds(seed, range(self.tile.rows))
        self.col_state = line_seeds(seed, LINE_COLUMN_BASE + np.arange(self.tile.cols))

    def _vector(self, name: str, v, n: int, what: str) -> np.ndarray:
        v = np.asarray(v)
        if v.shape != (n,):
            raise ValueError(f"{name} must be a vector of {n} elements (one per {what}), "
                             f"not an array of shape {v.shape}")
        if not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"{name} must be integers (input codes), not {v.dtype}")
        x_max = self.tile.x_max
        if v.size and np.abs(v.astype(np.int64)).max() > x_max:
            raise ValueError(f"{name} must lie in -{x_max}..{x_max} (input_bits="
                             f"{self.tile.input_bits}), found {int(np.abs(v).max())}")
        return v.astype(np.int64)

    def _check(self, array, x, d):
        from .chip import Chip

        if isinstance(array, Chip):
            array = array._require_training()
        if not isinstance(array, PulsedArray):
            raise TypeError(f"array must be a PulsedArray or a Chip, not {array!r}")
        if (array.tile.rows, array.tile.cols) != (self.tile.rows, self.tile.cols):
            raise ValueError(f"array of {array.tile.rows}x{array.tile.cols} devices does not "
                             f"fit a {self.tile.rows}x{self.tile.cols} engine")
        return (self._vector("x", x, self.tile.rows, "row"),
                self._vector("d", d, self.tile.cols, "column"))

    def update(self, array: PulsedArray, x, d, *, bl: int, scale_x: int, scale_d: int,
               k: int = PROB_BITS, deterministic: bool = False, update_index: int | None = None,
               chip_seed: int | None = None, record: bool = False) -> UpdateResult:
        """Run one update of ``bl`` slots with the given probability scales.

        Parameters
        ----------
        array : PulsedArray or Chip
            The devices; changed in place. A chip applies each slot itself
            (:meth:`Chip.update_slot`, the per-cycle path's step), so that its conductances
            follow.
        x, d : array_like of int
            Row vector ``(rows,)`` and column vector ``(cols,)``, within ``+-x_max``.
        bl : int
            Pulse slots, ``0 .. BL_MAX``.
        scale_x, scale_d : int
            Probability scales (UPD_SCALE_X/D, ``SCALE_FRAC`` fractional bits), 32 bits.
        k : int
            Bits of the line probabilities, ``1 .. 16``.
        deterministic : bool
            The ramp (rows) and the spread accumulators (columns) instead of the
            generators' draws.
        update_index : int, optional
            Number of this update (its noise events); default :attr:`updates`.
        chip_seed : int, optional
            Seed of the noise; default the array's.
        record : bool
            Keep the per-slot fire masks in the result.

        Raises
        ------
        TypeError
            ``array`` is not a PulsedArray.
        ValueError
            A vector or parameter is out of range, or the array does not fit the engine.
        """
        x, d = self._check(array, x, d)
        bl = _integer("bl", bl, 0, BL_MAX)
        return self._run(array, x, d, Schedule(bl, _integer("scale_x", scale_x, 0, _WORD),
                                               _integer("scale_d", scale_d, 0, _WORD)),
                         k, deterministic, update_index, chip_seed, record)

    def update_managed(self, array: PulsedArray, x, d, *, eta: int, bl_max: int = BL_MAX,
                       k: int = PROB_BITS, deterministic: bool = False,
                       update_index: int | None = None, chip_seed: int | None = None,
                       record: bool = False) -> UpdateResult:
        """Run one managed update: :func:`aimc.training.manage` with ``xmax = max|x|``,
        ``dmax = max|d|`` gives the slots and scales (a zero vector: no slot). ``eta`` is
        UPD_ETA (unsigned Q8.24, 32 bits), ``bl_max`` UPD_BL (``1 .. BL_MAX``); the other
        parameters are those of :meth:`update`."""
        x, d = self._check(array, x, d)
        eta = _integer("eta", eta, 0, _WORD)
        bl_max = _integer("bl_max", bl_max, 1, BL_MAX)
        xmax, dmax = int(np.abs(x).max(initial=0)), int(np.abs(d).max(initial=0))
        schedule = manage(eta, xmax, dmax, bl_max)  # m = 0 for a zero vector: no slot
        return self._run(array, x, d, schedule, k, deterministic, update_index, chip_seed,
                         record)

    def _run(self, array, x, d, schedule, k, deterministic, update_index, chip_seed, record):
        k = _integer("k", k, 1, PROB_BITS)
        if not isinstance(deterministic, bool):
            raise ValueError(f"deterministic must be True or False, not {deterministic!r}")
        index = self.updates if update_index is None else update_index
        index = _integer("update_index", index, 0, (1 << 62) // SLOT_EVENTS - 1)
        from .chip import Chip

        chip = array if isinstance(array, Chip) else None
        if chip is not None:
            array = chip.training
        seed = array.seed if chip_seed is None else chip_seed
        noise = chip.noise if chip is not None else NoiseEvents(self.tile, seed)
        self.updates = index + 1
        rows, cols, bl = self.tile.rows, self.tile.cols, schedule.bl
        q_x = probability_thresholds(np.abs(x), schedule.scale_x, k)
        q_d = probability_thresholds(np.abs(d), schedule.scale_d, k)
        res = UpdateResult(schedule, q_x, q_d)
        fire_rows = np.zeros((bl, rows), bool)
        fire_cols = np.zeros((bl, cols), bool)
        if deterministic and bl:
            row_thr = ramp(bl)
            fire_rows[:] = row_thr[:, None] < q_x[None, :]
            fire_cols[:] = spread(q_d, bl)
        for t in range(bl):
            # The generators step in every slot, in deterministic mode too (as the RTL's).
            self.row_state = xorshift32(self.row_state)
            self.col_state = xorshift32(self.col_state)
            if not deterministic:
                fire_rows[t] = (self.row_state >> np.uint32(16)).astype(np.int64) < q_x
                fire_cols[t] = (self.col_state >> np.uint32(16)).astype(np.int64) < q_d
        if record:
            res.fire_rows, res.fire_cols = fire_rows, fire_cols
        res.line_pulses = int(np.count_nonzero(fire_rows) + np.count_nonzero(fire_cols))
        neg_x, neg_d = x < 0, d < 0
        if chip is not None:
            res.up, res.down = chip.apply_slots(index, 0, fire_rows, neg_x, fire_cols, neg_d)
            return res
        hits = np.flatnonzero(fire_rows.any(axis=1) & fire_cols.any(axis=1))
        z = noise.update_slots(index, 0, bl) if array.noisy and hits.size else None
        for t in hits:
            up, down = array.apply(fire_rows[t], neg_x, fire_cols[t], neg_d,
                                   None if z is None else z[t])
            res.up += up
            res.down += down
        return res
