"""One rule for numbers passed to the Python API.

* An integer parameter takes a Python ``int``, a numpy integer, or a float (Python or numpy)
  whose value is a whole number: ``8``, ``np.int64(8)``, ``8.0`` and ``np.float32(8)`` are
  the same. ``True``/``False``, ``8.5``, strings and other types are refused.
* A real parameter takes any of these, whole or not, if it is finite.
* An array of integers (weights, inputs) takes an integer array, or a float array whose
  values are all whole numbers.

Every refusal names the parameter, what is allowed (with its unit) and the value. The checks
return plain ``int``/``float`` (or an ``int64`` array), so that what is stored is the same
whichever form was passed.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["as_int", "as_int_array", "as_real", "is_integer", "is_number", "show"]


def show(value) -> str:
    """``repr`` of a rejected value for a message: numpy scalars as plain numbers, huge
    integers by their size (past 4300 digits Python refuses to print them)."""
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        value = value.item()
    if isinstance(value, int) and value.bit_length() > 10_000:
        return f"{'a negative' if value < 0 else 'an'} integer of {value.bit_length()} bits"
    return repr(value)


def is_number(value) -> bool:
    """Whether ``value`` is a real number of an accepted type (not a bool)."""
    return (isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool | np.bool_))


def is_integer(value) -> bool:
    """Whether ``value`` is an integer by the module's rule (a whole-number float counts)."""
    return is_number(value) and (isinstance(value, int | np.integer)
                                 or (math.isfinite(value) and float(value).is_integer()))


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" in {lo}..{hi}"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def as_int(value, what: str, lo: int | None = None, hi: int | None = None, *,
           unit: str = "", allowed: str | None = None, error=ValueError) -> int:
    """``value`` as an ``int``, checked to be an integer (see the module's rule) in
    ``lo..hi`` (either bound may be None).

    Raises
    ------
    ValueError (or ``error``)
        It is not; the message is ``"{what} must be {allowed}, not {value}"``, ``allowed``
        defaulting to "an integer in lo..hi unit".
    """
    ok = is_integer(value)
    number = int(value) if ok else None
    if ok and ((lo is not None and number < lo) or (hi is not None and number > hi)):
        ok = False
    if not ok:
        text = allowed or ("an integer" + (f" number of {unit}" if unit else "")
                           + _range(lo, hi))
        raise error(f"{what} must be {text}, not {show(value)}")
    return number


def as_real(value, what: str, lo: float | None = None, hi: float | None = None, *,
            unit: str = "", lo_open: bool = False, allowed: str | None = None) -> float:
    """``value`` as a finite ``float`` in ``lo..hi`` (``lo_open``: strictly above ``lo``).

    Raises
    ------
    ValueError
        It is not; the message names ``what``, the unit and the value.
    """
    ok = is_number(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        if allowed is None:
            u = f" of {unit}" if unit else ""
            bounds = []
            if lo is not None:
                bounds.append(f"{'>' if lo_open else '>='} {lo:g}")
            if hi is not None:
                bounds.append(f"<= {hi:g}")
            allowed = f"a finite number{u}" + (" " + " and ".join(bounds) if bounds else "")
        raise ValueError(f"{what} must be {allowed}, not {show(value)}")
    return float(value)


def as_int_array(x, what: str) -> np.ndarray:
    """``x`` as an ``int64`` array: integers, or floats that are all whole numbers.

    Raises
    ------
    ValueError
        Another dtype (bool, complex, object, strings) or a float that is not whole; the
        message names ``what`` and shows the first offending value.
    """
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64, copy=False)
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a) | (a != np.round(a)) if a.size else np.zeros(0, bool)
        if not bad.any():
            return a.astype(np.int64)
        raise ValueError(f"{what} must be integers (whole-number floats are accepted), not "
                         f"{a.dtype} values such as {show(a[bad].flat[0])}")
    raise ValueError(f"{what} must be integers (whole-number floats are accepted), not "
                     f"{a.dtype} values")

