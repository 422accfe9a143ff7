"""Validated parameter fields of the model's configuration dataclasses.

A field declared with :func:`_p` carries its allowed range in its metadata;
:func:`_check_fields`, called from a dataclass's ``__post_init__``, checks every such field
and normalises it to ``int`` or ``float``. :mod:`.config` and :mod:`.pulsed` both declare
their parameters this way, so a rejected value reads the same whichever section it is in.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field

from ..numeric import is_number, show

__all__: list[str] = []


def _p(default, lo=None, hi=None, *, doc, lo_open=False, optional=False, kind=float):
    """A parameter with its allowed range ``lo .. hi`` (``lo_open``: strictly above ``lo``)."""
    return field(default=default, metadata=dict(lo=lo, hi=hi, lo_open=lo_open, doc=doc,
                                                optional=optional, kind=kind))


def _allowed(meta) -> str:
    kind = "an integer" if meta["kind"] is int else "a finite number"
    lo, hi = meta["lo"], meta["hi"]
    parts = []
    if lo is not None:
        parts.append(f"{'>' if meta['lo_open'] else '>='} {lo}")
    if hi is not None:
        parts.append(f"<= {hi}")
    text = kind + (" " + " and ".join(parts) if parts else "")
    return text + (", or None" if meta["optional"] else "")


def _check_fields(obj) -> None:
    section = type(obj).__name__
    for f in dataclasses.fields(obj):
        meta, value = f.metadata, getattr(obj, f.name)
        if "kind" not in meta:
            continue
        if value is None and meta["optional"]:
            continue
        ok = is_number(value)  # numpy scalars too (aimc.numeric)
        if meta["kind"] is int:
            ok = ok and float(value).is_integer()
        ok = ok and math.isfinite(value)
        if ok and meta["lo"] is not None:
            ok = value > meta["lo"] if meta["lo_open"] else value >= meta["lo"]
        if ok and meta["hi"] is not None:
            ok = value <= meta["hi"]
        if not ok:
            # The field's meaning ends with its unit ("..., uS"): every message names it.
            raise ValueError(f"{section}.{f.name} must be {_allowed(meta)}, not "
                             f"{show(value)} ({meta['doc']})")
        if meta["kind"] is int:
            object.__setattr__(obj, f.name, int(value))
        else:
            object.__setattr__(obj, f.name, float(value))
