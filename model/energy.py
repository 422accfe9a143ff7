"""Energy and latency estimate of one MVM, from per-operation figures.

Each term is the count of an operation in one MVM times its cost in :class:`EnergyConfig`:

* array: every driven device cycle dissipates ``v_read^2 G t_cycle``;
* row drivers: every pulse charges a row wire across both columns of each pair,
  ``driver_overhead (2 cols row_wire_ff_per_cell) v_read^2``;
* integrators and ADCs: one integration and one conversion per column per bit plane;
* digital: ``digital_pj_per_cycle`` for every cycle of the sustained MVM period.

Without a chip and inputs, the counts are those of uniformly distributed inputs and weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..config import TileConfig
from .config import ModelConfig

__all__ = ["Estimate", "estimate"]


@dataclass(frozen=True)
class Estimate:
    """Energy (pJ) of one MVM and the sustained MVM period."""

    array_pj: float
    drivers_pj: float
    integrators_pj: float
    adc_pj: float
    digital_pj: float
    period_cycles: int
    period_ns: float
    ops: int

    @property
    def total_pj(self) -> float:
        return (self.array_pj + self.drivers_pj + self.integrators_pj + self.adc_pj
                + self.digital_pj)

    @property
    def tops(self) -> float:
        """Throughput, 1e12 operations (a multiply and an add each count one) per second."""
        return self.ops / self.period_ns / 1e3

    @property
    def tops_per_watt(self) -> float:
        return self.ops / self.total_pj

    def as_dict(self) -> dict:
        return {**asdict(self), "total_pj": self.total_pj, "tops": self.tops,
                "tops_per_watt": self.tops_per_watt}


def estimate(tile: TileConfig, config: ModelConfig, x=None, g=None) -> Estimate:
    """Energy and time of one MVM on ``tile``.

    Parameters
    ----------
    x : array (batch, rows) of int, optional
        Inputs: the estimate is their mean. Default: uniform over the input range.
    g : array (rows, cols, 2), optional
        Device conductances, uS (for example :meth:`Chip.conductances`). Default: uniform
        weights over the weight range.
    """
    e, dev, arr = config.energy, config.device, config.array
    rows, cols, planes = tile.rows, tile.cols, tile.planes
    if x is None:
        # |x| of a uniform input over -x_max..x_max: 0 once, every other magnitude twice.
        mags = np.arange(tile.x_max + 1)
        weights = np.where(mags == 0, 1.0, 2.0) / (2 * tile.x_max + 1)
    else:
        mags = np.abs(np.asarray(x, dtype=np.int64)).ravel()
        weights = np.full(mags.size, 1 / mags.size)
    # Driven cycles and pulses per row and MVM.
    if tile.input_mode == "pwm":
        cycles = float(np.sum(weights * mags))
        pulses = float(np.sum(weights * (mags > 0)))
    else:
        bits = np.array([bin(int(m)).count("1") for m in range(tile.x_max + 1)])
        cycles = pulses = float(np.sum(weights * bits[mags]))
    if g is None:
        w_max = config.array.w_max
        mean_abs_w = np.mean(np.abs(np.arange(-w_max, w_max + 1)))
        pair = 2 * dev.g_min + (dev.g_max - dev.g_min) * mean_abs_w / w_max
        g_row = cols * pair                                  # uS per row, both devices
    else:
        g_row = float(np.asarray(g).sum(axis=(1, 2)).mean())
    t_cycle_ns = 1 / e.clock_ghz
    v2 = arr.v_read**2
    array_pj = rows * cycles * g_row * v2 * t_cycle_ns * 1e-3   # uS * V^2 * ns = fJ
    c_row_ff = 2 * cols * e.row_wire_ff_per_cell
    drivers_pj = rows * pulses * e.driver_overhead * c_row_ff * v2 * 1e-3
    period = tile.mvm_period_cycles
    return Estimate(
        array_pj=float(array_pj),
        drivers_pj=drivers_pj,
        integrators_pj=cols * planes * e.integrator_pj,
        adc_pj=cols * planes * e.adc_pj,
        digital_pj=period * e.digital_pj_per_cycle,
        period_cycles=period,
        period_ns=period * t_cycle_ns,
        ops=2 * rows * cols,
    )
