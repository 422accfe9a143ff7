"""Argument checks the chip's classes share: device indices, pair sides and column masks."""

from __future__ import annotations

import numpy as np

from ..numeric import as_int

__all__ = ["check_index", "check_mask", "check_side"]


def check_index(name: str, value, n: int) -> int:
    """``value`` as an int, checked to be an integer (:mod:`aimc.numeric`: numpy integers
    and whole-number floats too, not a bool) in ``0 .. n-1``.

    Raises
    ------
    ValueError
        It is not; the message names the argument ``name``.
    """
    return as_int(value, name, 0, n - 1)


def check_side(side) -> int:
    """``side`` as an int, checked to be 0 (the G+ device of a pair) or 1 (G-).

    Raises
    ------
    ValueError
        It is neither.
    """
    return as_int(side, "side", 0, 1, allowed="0 (G+) or 1 (G-)")


def check_mask(name: str, mask, cols: int) -> np.ndarray:
    """``mask`` as a bool array of shape ``(cols,)``; integer 0 and 1 are accepted.

    Raises
    ------
    ValueError
        It has another shape or holds other values; the message names the argument ``name``.
    """
    m = np.asarray(mask)
    if m.shape != (cols,):
        raise ValueError(f"{name} must be a bool array of shape ({cols},), not shape "
                         f"{m.shape}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.integer) or (m.size and not np.isin(m, (0, 1)).all()):
            raise ValueError(f"{name} must hold booleans (or 0 and 1), not {m.dtype} "
                             f"values {np.unique(m)[:4].tolist()}")
        m = m.astype(bool)
    return m
