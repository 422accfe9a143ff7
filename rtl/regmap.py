"""The register map: the one description from which the RTL decoder, the documentation table
and the test benches' addresses and words are all produced."""

from __future__ import annotations

import enum as py_enum
from dataclasses import dataclass

from amaranth import Shape

from ..config import TileConfig
from ..enums import BusError, CalPhase, ColFlag, ColStatus, DriftRow, UpdateMode, describe
from ..fixedpoint import DRIFT_FRAC, GAIN_BITS, GAIN_FRAC, MAX_AVG_LOG2, OFF_FRAC, ONE, CalFormat
from ..programming import AMP_MAX, PROG_RESET_GAIN, PROG_SET_GAIN, PULSE_GAIN_FRAC, WIDTH_REF
from ..training import BL_MAX, ETA_FRAC, PROB_BITS, SCALE_BITS, SCALE_FRAC

__all__ = ["Access", "Field", "Register", "REG_ADDR_WIDTH", "Window", "markdown_table",
           "register_map", "windows"]


class Access(py_enum.StrEnum):
    """Field access modes."""

    R = "R"      #: read-only (a hardware value or a constant)
    RW = "RW"    #: read/write
    RWH = "RWH"  #: read/write, and also written by hardware (hardware wins in the same cycle)
    W1C = "W1C"  #: sticky bits, set by hardware, each cleared by writing 1 to it
    W1P = "W1P"  #: writing 1 pulses the bit for one cycle; reads 0

    @classmethod
    def cast(cls, value, what: str) -> Access:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what}: access must be one of {', '.join(cls)}, "
                             f"not {value!r}") from None


#: Width of the AXI4-Lite address: registers in the first 256 bytes, per-column windows
#: from 0x1000 (a 64 KiB space).
REG_ADDR_WIDTH = 16

ID_MAGIC = 0x41494D43  # "AIMC"

#: READY_TIMEOUT at reset: far longer than any settling the analogue half needs between
#: operations, short enough that a dead analogue half is reported within microseconds.
READY_TIMEOUT_DEFAULT = 4096


def _enum_doc(enum) -> str:
    """The members of a flag or mode enum as documentation text."""
    if issubclass(enum, py_enum.Flag):
        return "; ".join(f"bit {m.value.bit_length() - 1} {m.name.lower()}: {describe(m)}"
                         for m in enum)
    return "; ".join(f"{m.value} {m.name.lower()}: {describe(m)}" for m in enum)


@dataclass(frozen=True)
class Field:
    """One field of a register.

    ``enum``, an ``amaranth.lib.enum`` class of the field's width: the field holds its
    values (a mode) or its bits (a flag set); the RTL port has that shape and the docs list
    the members. ``W1C`` and ``W1P`` fields act bit by bit.
    """

    name: str
    lsb: int
    width: int
    access: Access
    doc: str
    const: int | None = None  # value of a read-only constant field
    reset: int = 0            # reset value of a RW or RWH field
    reset_less: bool = False  # W1C only: keeps its value through the bus reset
    #: RW fields only: the legal values ``(lo, hi)``, inclusive; a write of a value outside
    #: them is refused whole (SLVERR, BUS_ERROR.range). None: every value of the width.
    legal: tuple[int, int] | None = None
    signed: bool = False      # the value (and ``legal``) is two's complement
    enum: type | None = None

    def __post_init__(self):
        object.__setattr__(self, "access", Access.cast(self.access, f"Field {self.name}"))
        if self.reset_less and self.access != Access.W1C:
            raise ValueError(f"Field {self.name}: only W1C fields can keep their value "
                             f"through reset, not {self.access}")
        if self.enum is not None and Shape.cast(self.enum).width != self.width:
            raise ValueError(f"Field {self.name}: enum {self.enum.__name__} is "
                             f"{Shape.cast(self.enum).width} bits wide, not {self.width}")
        for what, value in (("constant", self.const), ("reset value", self.reset)):
            if value is not None and not 0 <= value < 2 ** self.width:
                raise ValueError(f"Field {self.name}: {what} {value} does not fit "
                                 f"{self.width} bits")
        if self.legal is not None:
            if self.access != Access.RW:
                raise ValueError(f"Field {self.name}: only RW fields have a legal range, "
                                 f"not {self.access}")
            lo, hi = self.legal
            low, high = self.representable
            if not low <= lo <= hi <= high:
                raise ValueError(f"Field {self.name}: legal range {lo}..{hi} does not fit "
                                 f"{self.width} {'signed' if self.signed else 'unsigned'} bits")
            reset = self.reset - (2 ** self.width if self.signed and
                                  self.reset >= 2 ** (self.width - 1) else 0)
            if not lo <= reset <= hi:
                raise ValueError(f"Field {self.name}: reset value {reset} is outside its "
                                 f"legal range {lo}..{hi}")

    @property
    def representable(self) -> tuple[int, int]:
        """The lowest and highest value the field's bits can hold (``signed`` or not)."""
        if self.signed:
            return -(2 ** (self.width - 1)), 2 ** (self.width - 1) - 1
        return 0, 2 ** self.width - 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    @property
    def shape(self):
        """The RTL shape of the field: its enum, or its width (signed or not)."""
        if self.enum is not None:
            return self.enum
        return Shape(self.width, self.signed)

    @property
    def description(self) -> str:
        """``doc``, followed by the members of ``enum``."""
        if self.enum is None:
            return self.doc
        return f"{self.doc}: {_enum_doc(self.enum)}" if self.doc else _enum_doc(self.enum)

    def encode(self, value) -> int:
        """The field's bits for ``value`` (an integer, a bool or a member of ``enum``).

        Raises
        ------
        ValueError
            The value does not fit the field.
        """
        if isinstance(value, py_enum.Enum):
            if self.enum is not None and not isinstance(value, self.enum):
                raise ValueError(f"field {self.name} holds {self.enum.__name__} values, "
                                 f"not {value!r}")
            value = value.value
        if not isinstance(value, int):
            raise ValueError(f"field {self.name} takes an integer, not {value!r}")
        low, high = self.representable
        if not low <= value <= high:
            raise ValueError(f"field {self.name} holds {low}..{high} "
                             f"({self.width} {'signed' if self.signed else 'unsigned'} "
                             f"bits), not {value}")
        return value & ((1 << self.width) - 1)

    def decode(self, bits: int):
        """The value of the field's ``bits`` (sign-extended, or a member of ``enum``)."""
        if self.signed and bits >> (self.width - 1):
            bits -= 1 << self.width
        return self.enum(bits) if self.enum is not None else bits


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    doc: str
    fields: tuple[Field, ...]

    def __post_init__(self):
        used = 0
        for f in self.fields:
            if f.lsb + f.width > 32 or used & f.mask:
                raise ValueError(f"Register {self.name}: field {f.name} overlaps or exceeds "
                                 f"32 bits")
            used |= f.mask

    @property
    def writable(self) -> bool:
        return any(f.access != Access.R for f in self.fields)

    @property
    def reset_value(self) -> int:
        return sum(((f.const or 0) | f.reset) << f.lsb for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"Register {self.name} has no field {name!r}")

    def pack(self, **values) -> int:
        """The register word with each named field set (the others 0).

        ``reg.pack(enable=1, irq_en=1)``; a field with an ``enum`` takes its members.

        Raises
        ------
        ValueError
            A field name the register does not have, or a value that does not fit.
        """
        word = 0
        for name, value in values.items():
            try:
                f = self.field(name)
            except KeyError:
                raise ValueError(f"register {self.name} has no field {name!r}; its fields: "
                                 f"{', '.join(f.name for f in self.fields)}") from None
            try:
                word |= f.encode(value) << f.lsb
            except ValueError as e:
                raise ValueError(f"{self.name}.{e}") from None
        return word

    def unpack(self, word: int) -> dict:
        """Every field's value in the register word ``word``."""
        return {f.name: f.decode((word >> f.lsb) & ((1 << f.width) - 1)) for f in self.fields}


def register_map(cfg: TileConfig) -> tuple[Register, ...]:
    """The registers of a tile with configuration ``cfg``, constants filled in."""
    from .. import VERSION

    major, minor, patch = VERSION
    fmt = CalFormat(cfg)
    R, RW, RWH, W1C, W1P = Access
    regs = (
        Register("ID", 0x00, "Identification, ASCII 'AIMC'.", (
            Field("magic", 0, 32, R, "0x41494D43", ID_MAGIC),)),
        Register("VERSION", 0x04, "RTL version.", (
            Field("patch", 0, 8, R, "patch", patch),
            Field("minor", 8, 8, R, "minor", minor),
            Field("major", 16, 8, R, "major", major))),
        Register("CFG_ARRAY", 0x08, "Array size the RTL was generated for.", (
            Field("rows", 0, 16, R, "crossbar rows", cfg.rows),
            Field("cols", 16, 16, R, "crossbar columns", cfg.cols))),
        Register("CFG_CONV", 0x0C, "Converter parameters the RTL was generated for.", (
            Field("input_bits", 0, 8, R, "signed input width", cfg.input_bits),
            Field("adc_bits", 8, 8, R, "ADC resolution", cfg.adc_bits),
            Field("cols_per_adc", 16, 11, R, "columns sharing one ADC", cfg.cols_per_adc),
            Field("lanes", 27, 4, R, "log2 of elements per stream beat",
                  cfg.lanes.bit_length() - 1),
            Field("bitserial", 31, 1, R, "input mode: 0 PWM, 1 bit-serial",
                  int(cfg.input_mode == "bitserial")))),
        Register("CTRL", 0x10, "Control.", (
            Field("enable", 0, 1, RW, "1: start an MVM whenever an input vector is ready"),
            Field("irq_en", 1, 1, RW, "1: drive the interrupt line while STATUS.done, "
                  "CAL_STATUS.done or PROG_STATUS.done is set"),
            Field("correct", 2, 1, RW, "1: results leave corrected (offset, gain, drift "
                  "scale); 0: raw"))),
        Register("STATUS", 0x14, "Status.", (
            Field("busy", 0, 1, R, "an MVM is in progress or results are waiting to stream"),
            Field("done", 1, 1, W1C, "an MVM completed"),
            Field("dropped", 2, 1, W1C, "an input vector was dropped (see DROP_*)"),
            Field("rail", 3, 1, W1C, "a conversion ended at a rail code (see RAIL_COUNT)"),
            Field("sat", 4, 1, W1C, "a corrected result was clamped (see CORR_SAT)"),
            Field("clip", 5, 1, W1C, "a column integrator clamped at its limit (see "
                  "CLIP_COUNT and COL_FLAGS)"),
            Field("timeout", 6, 1, W1C, "an operation was abandoned because the analogue "
                  "half was not ready (see TIMEOUT_COUNT)"))),
        Register("MVM_COUNT", 0x18, "MVMs completed since reset.", (
            Field("count", 0, 32, R, ""),)),
        Register("DROP_FRAME", 0x1C, "Input vectors dropped for a wrong length (TLAST early "
                 "or late).", (Field("count", 0, 32, R, ""),)),
        Register("DROP_RANGE", 0x20, "Input vectors dropped for an element outside "
                 "+-(2**(input_bits-1)-1).", (Field("count", 0, 32, R, ""),)),
        Register("RAIL_COUNT", 0x24, "MVMs in which at least one conversion ended at the "
                 "lowest or highest code (the charge beyond the converter's range).", (
            Field("count", 0, 32, R, ""),)),
        Register("LATENCY", 0x28, "Cycles from the cycle the sequencer took the last MVM's "
                 "vector to the cycle it handed the results to the result pipeline "
                 "(TileConfig.mvm_period_cycles when nothing waits); the first result beat "
                 "is on m_axis 5 cycles later (see docs: schedule and timing).", (
            Field("cycles", 0, 32, R, ""),)),
        Register("PERIOD", 0x2C, "Cycles between the starts of the last two MVMs.", (
            Field("cycles", 0, 32, R, ""),)),
        Register("CORR_SAT", 0x30, "Corrected results clamped to the result range since "
                 "reset.", (Field("count", 0, 32, R, ""),)),
        Register("CLIP_COUNT", 0x34, "MVMs in which at least one column integrator "
                 "clamped at its limit (the result lost charge, even if its code is not at "
                 "a rail).", (Field("count", 0, 32, R, ""),)),
        Register("CAL_CTRL", 0x40, "Calibration engine control (see docs: calibration).", (
            Field("start", 0, 1, W1P, "1: run the selected phases"),
            Field("phases", 1, 4, RW, "phases to run", enum=CalPhase),
            Field("avg_log2", 8, 4, RW, "each measurement averages 2**avg_log2 MVMs",
                  reset=6, legal=(0, MAX_AVG_LOG2)))),
        Register("CAL_STATUS", 0x44, "Calibration engine status.", (
            Field("busy", 0, 1, R, "the engine is running"),
            Field("done", 1, 1, W1C, "a run finished"),
            Field("error", 2, 1, W1C, "a run finished with an error: DRIFT_SCALE out of "
                  "range, a reference signal too small (see weak), or a drift phase with "
                  "DRIFT_REF 0; or a start while the program-and-verify engine runs"),
            Field("bad", 3, 1, R, "at least one column is flagged bad (see COL_STATUS)"),
            Field("weak", 4, 1, W1C, "a capture or drift phase measured a reference signal "
                  "below DRIFT_MIN (or none) and changed nothing; error is set with it"))),
        Register("CAL_REF", 0x48, "Expected response to the reference charge, fixed point "
                 f"with {OFF_FRAC} fractional bits.", (
            Field("value", 0, fmt.ref_bits, RW, "", reset=fmt.ref_default),)),
        Register("DRIFT_X", 0x4C, "Input applied to every row for the drift reference "
                 "vector (two's complement).", (
            Field("value", 0, 16, RW, "", reset=(cfg.x_max // 2),
                  legal=(-cfg.x_max, cfg.x_max), signed=True),)),
        Register("DRIFT_REF", 0x50, "Sum over columns of abs(corrected result) for the drift "
                 "reference vector, stored by a capture or by the host.", (
            Field("value", 0, 32, RWH, ""),)),
        Register("DRIFT_SCALE", 0x54, f"Global drift scale, unsigned Q2.{DRIFT_FRAC}.", (
            Field("value", 0, 16, RWH, "", reset=ONE),)),
        Register("BAD_COLS", 0x58, "Number of columns flagged bad by the last calibration.", (
            Field("count", 0, 16, R, ""),)),
        Register("ABORTED", 0x5C, "Operations a reset (rst) cut short. These bits keep their "
                 "value through the reset (0 at power-on) so that the host can read them "
                 "afterwards.", (
            Field("mvm", 0, 1, W1C, "a host MVM was in progress, or its vector or results "
                  "were waiting", reset_less=True),
            Field("cal", 1, 1, W1C, "the calibration engine was running", reset_less=True),
            Field("prog", 2, 1, W1C, "the program-and-verify engine was running",
                  reset_less=True))),
        Register("PROG_CTRL", 0x60, "Program-and-verify engine control (see docs: "
                 "program and verify).", (
            Field("start", 0, 1, W1P, "1: program the matrix streamed on t_axis"),
            Field("parallel", 1, 1, RW, "1: all devices of a row in each pulse step; 0: "
                  "one device at a time", reset=1),
            Field("correct", 2, 1, RW, "1: device reads corrected for column offset and "
                  "gain (PWM tiles; bit-serial reads are raw)"))),
        Register("PROG_STATUS", 0x64, "Program-and-verify engine status.", (
            Field("busy", 0, 1, R, "the engine is running"),
            Field("done", 1, 1, W1C, "a run finished"),
            Field("error", 2, 1, W1C, "a run ended early: a target packet of the wrong "
                  "length, or the calibration engine running"))),
        Register("PROG_LIMITS", 0x68, "Program-and-verify limits.", (
            Field("tol", 0, 8, RW, "a device passes within tol counts of its target",
                  reset=5),
            Field("iterations", 8, 8, RW, "pulse steps per device before it fails",
                  reset=30, legal=(1, 255)),
            Field("width", 16, 8, RW, f"pulse width, cycles (strength scales with "
                  f"width/{WIDTH_REF})", reset=WIDTH_REF, legal=(1, 255)))),
        Register("PROG_GAIN", 0x6C, f"Pulse amplitude per count of read error, unsigned "
                 f"Q4.{PULSE_GAIN_FRAC}: amplitude = clamp(|error| * gain, 1, {AMP_MAX}).", (
            Field("set", 0, 8, RW, "SET pulses (read below target)", reset=PROG_SET_GAIN),
            Field("reset", 8, 8, RW, "RESET pulses (read above target)",
                  reset=PROG_RESET_GAIN))),
        *(Register(name, offset, doc, (Field("count", 0, 32, R, ""),)) for name, offset, doc in (
            ("PROG_PULSES", 0x70, "Device pulses issued in the last run."),
            ("PROG_PASSED", 0x74, "Devices within tolerance in the last run."),
            ("PROG_FAILED", 0x78, "Devices still off target after PROG_LIMITS.iterations "
                                  "pulse steps in the last run."),
            ("PROG_STUCK", 0x7C, "Failed devices whose reads never moved by more than the "
                                 "tolerance (counted in PROG_FAILED too)."),
            ("PROG_READS", 0x80, "Device reads (row reads) in the last run."),
            ("PROG_STEPS", 0x84, "Pulse steps in the last run."),
            ("PROG_CYCLES", 0x88, "Clock cycles of the last run."))),
        Register("BUS_ERROR", 0x8C, "Bus accesses refused with an AXI error response, "
                 "and why; nothing changed in any of them.", (
            Field("reason", 0, 4, W1C, "", enum=BusError),)),
        Register("BUS_ERROR_ADDR", 0x90, "Byte address of the last refused access.", (
            Field("address", 0, REG_ADDR_WIDTH, R, ""),)),
        Register("READY_TIMEOUT", 0x94, "Cycles an operation waits for the analogue half's "
                 "ready before it is abandoned: a host vector is dropped, an engine run ends "
                 "with its error bit.", (
            Field("cycles", 0, 16, RW, "", reset=READY_TIMEOUT_DEFAULT,
                  legal=(1, 2 ** 16 - 1)),)),
        Register("TIMEOUT_COUNT", 0x98, "Operations abandoned for a READY_TIMEOUT since "
                 "reset.", (Field("count", 0, 32, R, ""),)),
        Register("DRIFT_MIN", 0xE0, "Smallest drift reference signal S (sum over the "
                 "DRIFT_COLS columns of abs(corrected result), averaged over the MVMs) a "
                 "capture or drift phase accepts; below it the phase changes nothing and "
                 "sets CAL_STATUS.weak and error (S = 0 always does).", (
            Field("value", 0, 32, RW, "units of the corrected result",
                  reset=fmt.drift_min_default),)),
    )
    if cfg.training:
        regs += _training_registers()
    offsets = [r.offset for r in regs]
    if len(set(offsets)) != len(offsets) or any(o % 4 for o in offsets):
        raise ValueError("register offsets must be distinct and word aligned")
    return regs


def _training_registers() -> tuple[Register, ...]:
    """The registers of the training hardware (tiles generated with TileConfig.training)."""
    R, RW, RWH, W1C, W1P = Access
    return (
        Register("BWD_COUNT", 0x9C, "Backward MVMs completed since reset.", (
            Field("count", 0, 32, R, ""),)),
        Register("BWD_LATENCY", 0xA0, "Cycles from the start of the last backward MVM to the "
                 "cycle its results are handed to the result pipeline.", (
            Field("cycles", 0, 32, R, ""),)),
        Register("BWD_PERIOD", 0xA4, "Cycles between the starts of the last two backward "
                 "MVMs.", (Field("cycles", 0, 32, R, ""),)),
        Register("UPD_CTRL", 0xB0, "Pulsed update engine control (see docs: training). An "
                 "update runs when an UPDATE vector (its d) is taken from s_axis.", (
            Field("reseed", 0, 1, W1P, "1: load every line generator from UPD_SEED"),
            Field("mode", 1, 1, RW, "line decisions", enum=UpdateMode),
            Field("manage", 2, 1, RW, "1: BL and the scales from UPD_ETA and max|x|, max|d| "
                  "(update management); 0: UPD_BL, UPD_SCALE_X and UPD_SCALE_D as written",
                  reset=1),
            Field("k", 8, 5, RW, f"bits kept of each line's {PROB_BITS}-bit probability",
                  reset=PROB_BITS, legal=(1, PROB_BITS)))),
        Register("UPD_ETA", 0xB4, f"Learning rate in device steps (dw_min) per product of "
                 f"input LSBs, unsigned Q{32 - ETA_FRAC}.{ETA_FRAC}.", (
            Field("value", 0, 32, RW, ""),)),
        Register("UPD_BL", 0xB8, "Pulse slots of an update: the most (manage), or all.", (
            Field("slots", 0, 8, RW, "", reset=31, legal=(1, BL_MAX)),)),
        Register("UPD_SCALE_X", 0xBC, f"Row probability per input LSB, {PROB_BITS + SCALE_FRAC}"
                 f" fractional bits (without manage).", (Field("value", 0, SCALE_BITS, RW, ""),)),
        Register("UPD_SCALE_D", 0xC0, "Column probability per input LSB, likewise.", (
            Field("value", 0, SCALE_BITS, RW, ""),)),
        Register("UPD_SEED", 0xC4, "Seed of the line generators (loaded by UPD_CTRL.reseed).", (
            Field("value", 0, 32, RW, ""),)),
        Register("UPD_STATUS", 0xC8, "Pulsed update engine status.", (
            Field("busy", 0, 1, R, "an update runs"),
            Field("done", 1, 1, W1C, "an update finished"),
            Field("error", 2, 1, W1C, "an update found no forward input in the row driver "
                  "(none since reset, or an engine's operation since): nothing was pulsed"))),
        Register("UPD_COUNT", 0xCC, "Updates run since reset (not those refused for want "
                 "of a forward input).", (Field("count", 0, 32, R, ""),)),
        Register("UPD_UP", 0xD0, "Up pulses (device coincidences where x and d have opposite "
                 "signs) since reset.", (Field("count", 0, 32, R, ""),)),
        Register("UPD_DOWN", 0xD4, "Down pulses (signs agree) since reset.", (
            Field("count", 0, 32, R, ""),)),
        Register("UPD_LAST", 0xD8, "The last update.", (
            Field("slots", 0, 8, R, "pulse slots (BL)"),
            Field("x_max", 8, 12, R, "max |x|"),
            Field("d_max", 20, 12, R, "max |d|"))),
        Register("UPD_CYCLES", 0xDC, "Cycles of the last update, from its start to its end.", (
            Field("cycles", 0, 32, R, ""),)),
    )


@dataclass(frozen=True)
class Window:
    """A per-column (or per-row) array in the address space: element ``c`` at ``base +
    4 c``, ``words`` of them. ``access``
    is RW, R (writes refused) or W1C (writing 1s clears those bits); ``enum`` as for
    :class:`Field`."""

    name: str
    base: int
    width: int
    signed: bool
    access: Access
    doc: str
    enum: type | None = None
    words: int = 1  #: columns (or rows) of the window

    def __post_init__(self):
        access = Access.cast(self.access, f"Window {self.name}")
        if access not in (Access.RW, Access.R, Access.W1C):
            raise ValueError(f"Window {self.name}: access must be one of RW, R, W1C, not "
                             f"{self.access!r}")
        object.__setattr__(self, "access", access)
        if self.enum is not None and Shape.cast(self.enum).width != self.width:
            raise ValueError(f"Window {self.name}: enum {self.enum.__name__} is "
                             f"{Shape.cast(self.enum).width} bits wide, not {self.width}")

    def address(self, column: int) -> int:
        return self.base + 4 * column

    @property
    def description(self) -> str:
        return f"{self.doc}: {_enum_doc(self.enum)}" if self.enum is not None else self.doc


def windows(cfg: TileConfig) -> tuple[Window, ...]:
    """The per-column coefficient and status arrays (one 32-bit word per column; signed
    values read sign-extended). Writes must be whole words (WSTRB 0xF) holding a value of
    the window's width (sign-extended for a signed window); others are refused with SLVERR,
    as are writes while the calibration engine runs."""
    fmt = CalFormat(cfg)
    cols, rows = cfg.cols, cfg.rows
    offset = f"raw-result LSB with {OFF_FRAC} fractional bits"
    gain = f"unsigned Q2.{GAIN_FRAC}"
    return (
        Window("OFFSET", 0x1000, fmt.off_bits, True, Access.RW, f"column offset, {offset}",
               words=cols),
        Window("GAIN", 0x2000, GAIN_BITS, False, Access.RW, f"column gain, {gain}",
               words=cols),
        Window("COL_STATUS", 0x3000, 2, False, Access.R,
               "flags of the last calibration", enum=ColStatus, words=cols),
        Window("COL_FLAGS", 0x4000, 3, False, Access.W1C,
               "host MVMs since the bits were cleared (writing 1 clears a bit)", enum=ColFlag,
               words=cols),
    ) + ((
        Window("ROW_OFFSET", 0x5000, fmt.off_bits, True, Access.RW,
               f"row offset of backward results, {offset}", words=rows),
        Window("ROW_GAIN", 0x6000, GAIN_BITS, False, Access.RW,
               f"row gain of backward results, {gain}", words=rows),
    ) if cfg.training else ()) + (
        Window("DRIFT_ROWS", 0x8000, 2, False, Access.RW,
               "how the drift reference vector drives row r (reset: drive, every row)",
               enum=DriftRow, words=rows),
        Window("DRIFT_COLS", 0x9000, 1, False, Access.RW,
               "1: column c counts in the drift reference signal S (reset: 1, every column)",
               words=cols),
    )


def markdown_table(regs, wins=()) -> str:
    """The register map as a Markdown table (used in docs/architecture.md). Registers and
    windows of the training hardware are marked "(training tiles)"."""
    training = {r.name for r in _training_registers()} | {"ROW_OFFSET", "ROW_GAIN"}
    lines = ["| offset | register | bits | field | access | description |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in regs:
        mark = " (training tiles)" if r.name in training else ""
        for i, f in enumerate(r.fields):
            bits = f"{f.lsb}" if f.width == 1 else f"{f.lsb + f.width - 1}:{f.lsb}"
            reset = f" Reset {f.reset:#x}." if f.reset else ""
            if f.reset_less:
                reset = " Kept through rst (0 at power-on in simulation and FPGAs)."
            legal = f" Legal {f.legal[0]}..{f.legal[1]}." if f.legal else ""
            doc = " ".join(filter(None, (r.doc if i == 0 else "", f.description))) + reset + legal
            lines.append(f"| {f'0x{r.offset:02X}' if i == 0 else ''} | "
                         f"{r.name + mark if i == 0 else ''} | {bits} | {f.name} | {f.access} "
                         f"| {doc} |")
    for w in wins:
        index = "r" if w.name.startswith("ROW_") or w.name == "DRIFT_ROWS" else "c"
        mark = " (training tiles)" if w.name in training else ""
        last = w.address(w.words - 1)
        # A signed window reads sign-extended: software sees (and must write) 32 bits.
        bits = "31:0" if w.signed else f"{w.width - 1}:0"
        signed = (f" Signed, {w.width} significant bits, sign-extended to 32 (a write "
                  f"outside -{2 ** (w.width - 1)}..{2 ** (w.width - 1) - 1} is refused)."
                  if w.signed else "")
        lines.append(f"| 0x{w.base:04X} + 4{index} | {w.name}[{index}]{mark} | {bits} | value "
                     f"| {w.access} | {w.description}.{signed} {index} = 0..{w.words - 1} "
                     f"(last word 0x{last:04X}). |")
    return "\n".join(lines)
