"""Exact arithmetic: the binary grids of the row drive and of the weights.

Exact agreement of the two paths. The effective weights are rounded to a binary grid
(``2^-k``, ``k`` as fine as the array allows, typically ``2^-14`` of a conductance LSB) and the
drive levels to ``2^-16``, chosen so that every product and partial sum of an integration
is exactly representable in float64. Summing cycle by cycle (per-cycle path) and one matrix
product (batch path) then give the same charge to the last bit, in any order of summation.
Noise is drawn per event (see :mod:`.rng` and :mod:`.events`) and added by the same
operations in both paths.

:class:`DriveLevels` holds the drive per cycle of the row drivers, on the drive grid;
:func:`fine_grid` rounds the weights (and the per-cycle white-noise variances and device read
weights) to the finest grid on which their drive-weighted sums stay exact.
"""

from __future__ import annotations

import math

import numpy as np

from .config import DriverConfig

__all__ = ["DRIVE_GRID", "DriveLevels", "fine_grid"]

DRIVE_GRID = 2.0**-16          #: resolution of the drive levels


class DriveLevels:
    """Drive per cycle of the row drivers for each polarity (+1, -1), on the drive grid.

    Parameters
    ----------
    driver : DriverConfig
        The drivers' polarity mismatch and edge loss.

    Attributes
    ----------
    first : dict {+1: float, -1: float}
        Drive in the rising-edge cycle of a pulse, ``(1 +- polarity_mismatch) (1 -
        edge_loss)``, by polarity.
    on : dict {+1: float, -1: float}
        Drive in the later cycles of a pulse, ``1 +- polarity_mismatch``.
    peak : float
        Largest drive of any cycle.
    """

    def __init__(self, driver: DriverConfig):
        self.first, self.on = {}, {}
        for s in (1, -1):
            amp = 1 + driver.polarity_mismatch * s
            self.first[s], self.on[s] = _on_grid(amp * (1 - driver.edge_loss)), _on_grid(amp)
        self.peak = max(*self.first.values(), *self.on.values())

    def level(self, signs: np.ndarray, first) -> np.ndarray:
        """Signed drive per cycle of rows driven with ``signs`` (+1, -1, or 0 for undriven),
        any shape; ``first`` (broadcast against ``signs``) marks the rising-edge cycle."""
        pos = np.where(first, self.first[1], self.on[1])
        neg = np.where(first, self.first[-1], self.on[-1])
        return np.where(signs > 0, pos, np.where(signs < 0, -neg, 0.0))


def fine_grid(a: np.ndarray, bound: float) -> np.ndarray:
    """Round ``a`` to the finest binary grid ``2^-k`` for which sums of drive-weighted
    products up to ``bound`` (in units of ``a``) stay exact in float64."""
    k = 52 - 16 - math.ceil(math.log2(max(bound, 1.0)))
    scale = 2.0 ** min(k, 40)
    return np.round(a * scale) / scale


def _on_grid(value: float) -> float:
    return round(value / DRIVE_GRID) * DRIVE_GRID
