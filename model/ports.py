"""Packed port values of the analogue boundary: one bit or one field per row or column.

The RTL's analogue-boundary ports carry one bit per row (``row_en``, ``row_neg``), per
column (the pulse masks) or per ADC (the comparator decisions), and one field per column or
ADC (pulse amplitudes, trial codes), element ``i`` at the low end: bit ``i``, or bits
``i*width .. i*width + width - 1``. These functions convert between such integers and numpy
arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack_bits", "unpack_bits", "unpack_fields", "unpack_rows"]


def unpack_bits(value: int, n: int) -> np.ndarray:
    """Bits 0..n-1 of a packed port value, as a bool array (bit i is element i)."""
    raw = np.frombuffer(int(value).to_bytes(-(-n // 8) or 1, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


def unpack_fields(value: int, n: int, width: int) -> np.ndarray:
    """``n`` unsigned fields of ``width`` bits from a packed port value (field i at bit i*width)."""
    bits = unpack_bits(value, n * width).reshape(n, width).astype(np.int64)
    return bits @ (1 << np.arange(width, dtype=np.int64))


def unpack_rows(values, n: int) -> np.ndarray:
    """:func:`unpack_bits` of several packed values at once: ``(len(values), n)`` bools."""
    nbytes = -(-n // 8) or 1
    raw = np.frombuffer(b"".join(int(v).to_bytes(nbytes, "little") for v in values),
                        dtype=np.uint8).reshape(len(values), nbytes)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :n].astype(bool)


def pack_bits(bits: np.ndarray) -> int:
    """Inverse of :func:`unpack_bits`."""
    return int.from_bytes(np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little")
                          .tobytes(), "little")
