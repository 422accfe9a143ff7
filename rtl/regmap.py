"""The register map: the one description from which the RTL decoder, the documentation table
and the test benches' addresses are all produced."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TileConfig

__all__ = ["ACCESS", "Field", "Register", "REG_ADDR_WIDTH", "markdown_table", "register_map"]

#: Field access modes. R: read-only (hardware value); RW: read/write;
#: W1C: sticky, set by hardware, cleared by writing 1.
ACCESS = ("R", "RW", "W1C")

#: Width of the AXI4-Lite address (a 256-byte window).
REG_ADDR_WIDTH = 8

ID_MAGIC = 0x41494D43  # "AIMC"


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    access: str
    doc: str
    const: int | None = None  # value of a read-only constant field

    def __post_init__(self):
        if self.access not in ACCESS:
            raise ValueError(f"Field {self.name}: access must be one of {ACCESS}, "
                             f"not {self.access!r}")
        if self.const is not None and not 0 <= self.const < 2 ** self.width:
            raise ValueError(f"Field {self.name}: constant {self.const} does not fit "
                             f"{self.width} bits")

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


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
        return any(f.access != "R" for f in self.fields)

    @property
    def reset_value(self) -> int:
        return sum((f.const or 0) << f.lsb for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"Register {self.name} has no field {name!r}")


def register_map(cfg: TileConfig) -> tuple[Register, ...]:
    """The registers of a tile with configuration ``cfg``, constants filled in."""
    from .. import VERSION

    major, minor, patch = VERSION
    R = "R"
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
            Field("enable", 0, 1, "RW", "1: start an MVM whenever an input vector is ready"),
            Field("irq_en", 1, 1, "RW", "1: drive the interrupt line while STATUS.done is set"))),
        Register("STATUS", 0x14, "Status.", (
            Field("busy", 0, 1, R, "an MVM is in progress or results are waiting to stream"),
            Field("done", 1, 1, "W1C", "an MVM completed"),
            Field("dropped", 2, 1, "W1C", "an input vector was dropped (see DROP_*)"),
            Field("rail", 3, 1, "W1C", "a conversion ended at a rail code (see RAIL_COUNT)"))),
        Register("MVM_COUNT", 0x18, "MVMs completed since reset.", (
            Field("count", 0, 32, R, ""),)),
        Register("DROP_FRAME", 0x1C, "Input vectors dropped for a wrong length (TLAST early "
                 "or late).", (Field("count", 0, 32, R, ""),)),
        Register("DROP_RANGE", 0x20, "Input vectors dropped for an element outside "
                 "+-(2**(input_bits-1)-1).", (Field("count", 0, 32, R, ""),)),
        Register("RAIL_COUNT", 0x24, "MVMs in which at least one conversion ended at the "
                 "lowest or highest code (integrator or ADC saturation).", (
            Field("count", 0, 32, R, ""),)),
        Register("LATENCY", 0x28, "Cycles from the start of the last MVM to its results "
                 "being ready to stream.", (Field("cycles", 0, 32, R, ""),)),
        Register("PERIOD", 0x2C, "Cycles between the starts of the last two MVMs.", (
            Field("cycles", 0, 32, R, ""),)),
    )
    offsets = [r.offset for r in regs]
    if len(set(offsets)) != len(offsets) or any(o % 4 for o in offsets):
        raise ValueError("register offsets must be distinct and word aligned")
    return regs


def markdown_table(regs) -> str:
    """The register map as a Markdown table (used in docs/architecture.md)."""
    lines = ["| offset | register | bits | field | access | description |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in regs:
        for i, f in enumerate(r.fields):
            bits = f"{f.lsb}" if f.width == 1 else f"{f.lsb + f.width - 1}:{f.lsb}"
            doc = " ".join(filter(None, (r.doc if i == 0 else "", f.doc)))
            lines.append(f"| {f'0x{r.offset:02X}' if i == 0 else ''} | "
                         f"{r.name if i == 0 else ''} | {bits} | {f.name} | {f.access} | {doc} |")
    return "\n".join(lines)
