"""Modes and bit positions: the one source shared by the RTL, the model, the benches and the
documentation.

Each class is an ``amaranth.lib.enum`` class with an explicit shape, so that RTL signals are
declared with it (``Signal(CorrectMode)``), the golden model and the tests pack and test bits
with the same names (the ``Int`` kinds are plain integers to numpy), and the register map
builds its fields from it. The register fields that hold one of them say so
(:attr:`aimc.rtl.regmap.Field.enum`).
"""

from __future__ import annotations

from amaranth.lib import enum

__all__ = ["BusError", "CalPhase", "ColFlag", "ColStatus", "CorrectMode", "DeviceStatus",
           "DriftRow", "InputKind", "ResultKind", "UpdateMode", "describe"]


class CorrectMode(enum.Enum, shape=2):
    """What the corrector does to a result beat (:class:`aimc.rtl.correct.Corrector`)."""

    RAW = 0
    NO_DRIFT = 1
    CORRECT = 2


class InputKind(enum.Enum, shape=2):
    """What a vector on the input stream (``s_axis``, TUSER) asks for."""

    FORWARD = 0
    BACKWARD = 1
    UPDATE = 2


class ResultKind(enum.Enum, shape=2):
    """What a vector on the result stream (``m_axis``, TUSER) is."""

    FORWARD = 0
    BACKWARD = 1
    STATUS = 2


class UpdateMode(enum.Enum, shape=1):
    """How the update engine decides which lines fire in a pulse slot."""

    STOCHASTIC = 0
    DETERMINISTIC = 1


class CalPhase(enum.IntFlag, shape=4):
    """Phases of a calibration run (``CAL_CTRL.phases``). A run executes the selected ones
    in the order offset, gain, capture, drift; capture wins over drift in one run."""

    OFFSET = 1
    GAIN = 2
    DRIFT = 4
    CAPTURE = 8

    @classmethod
    def parse(cls, names) -> CalPhase:
        """The phases named in ``names`` (an iterable of lower-case names).

        Raises
        ------
        ValueError
            A name is not a phase.
        """
        flags = cls(0)
        for name in names:
            try:
                flags |= cls[str(name).upper()]
            except KeyError:
                raise ValueError(f"calibration phase must be one of "
                                 f"{', '.join(p.name.lower() for p in cls)}, not {name!r}") \
                    from None
        return flags


class ColStatus(enum.IntFlag, shape=2):
    """Per-column flags of the last calibration (the ``COL_STATUS`` window)."""

    RAIL = 1
    GAIN = 2


class DriftRow(enum.IntFlag, shape=2):
    """How the drift reference vector drives one row (the ``DRIFT_ROWS`` window): not at
    all (0: input 0), at ``DRIFT_X`` (DRIVE) or at ``-DRIFT_X`` (DRIVE | NEGATE)."""

    DRIVE = 1
    NEGATE = 2


class ColFlag(enum.IntFlag, shape=3):
    """Per-column sticky flags of host MVMs (the ``COL_FLAGS`` window)."""

    LOW = 1
    HIGH = 2
    CLIP = 4


class DeviceStatus(enum.IntFlag, shape=4):
    """One column's field of a program-and-verify status packet (one packet per row)."""

    POS_PASS = 1
    POS_STUCK = 2
    NEG_PASS = 4
    NEG_STUCK = 8

    @classmethod
    def passed(cls, side: int) -> DeviceStatus:
        return cls.NEG_PASS if side else cls.POS_PASS

    @classmethod
    def stuck(cls, side: int) -> DeviceStatus:
        return cls.NEG_STUCK if side else cls.POS_STUCK


class BusError(enum.IntFlag, shape=4):
    """Why a bus access was refused (the fields of ``BUS_ERROR``)."""

    DECODE = 1
    READONLY = 2
    RANGE = 4
    WINDOW = 8


#: What each member means: the one text, used by the register map's documentation and the
#: generated register descriptions. Keyed by class, then name (IntFlag members of different
#: classes with equal values compare equal).
_DOCS = {
    InputKind: {
        "FORWARD": "a forward MVM of the vector (one element per row)",
        "BACKWARD": "a backward MVM: the vector (one element per column) drives the columns",
        "UPDATE": "a pulsed update with the vector (one element per column) as the error d "
                  "and the last forward input as x",
    },
    ResultKind: {
        "FORWARD": "the results of a forward MVM (one per column)",
        "BACKWARD": "the results of a backward MVM (one per row)",
        "STATUS": "a program-and-verify status packet (one field per column)",
    },
    UpdateMode: {
        "STOCHASTIC": "every line compares its own pseudo-random draw with its probability",
        "DETERMINISTIC": "rows compare with a shared ramp, each column spreads its pulses "
                         "evenly over the slots (an accumulator)",
    },
    CorrectMode: {
        "RAW": "results leave as converted, with zero fractional bits",
        "NO_DRIFT": "per-column offset and gain",
        "CORRECT": "per-column offset and gain, and the global drift scale",
    },
    CalPhase: {
        "OFFSET": "measure column offsets (zero input)",
        "GAIN": "measure column gains (reference charge)",
        "DRIFT": "set DRIFT_SCALE from the reference vector",
        "CAPTURE": "store the reference vector's response in DRIFT_REF (right after programming)",
    },
    ColStatus: {
        "RAIL": "a conversion at a rail during the offset phase (a stuck column)",
        "GAIN": "gain outside [0.5, 2) or no response to the reference (a dead column)",
    },
    DriftRow: {
        "DRIVE": "the row takes DRIFT_X in the capture and drift phases (else 0)",
        "NEGATE": "with drive: -DRIFT_X instead",
    },
    ColFlag: {
        "LOW": "a conversion at the lowest code",
        "HIGH": "a conversion at the highest code",
        "CLIP": "the column integrator clamped at its limit",
    },
    DeviceStatus: {
        "POS_PASS": "the G+ device passed",
        "POS_STUCK": "the G+ device failed and never moved by more than the tolerance",
        "NEG_PASS": "the G- device passed",
        "NEG_STUCK": "the G- device failed and never moved",
    },
    BusError: {
        "DECODE": "a read or write of an unmapped address (DECERR)",
        "READONLY": "a write to a read-only register or window (SLVERR)",
        "RANGE": "a value outside its field's legal range or its window's width (SLVERR)",
        "WINDOW": "a window write of less than a whole word, or while it is locked (SLVERR)",
    },
}


def describe(member) -> str:
    """What ``member`` (of one of the classes above) means, in a few words."""
    return _DOCS[type(member)][member.name]
