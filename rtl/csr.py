"""AXI4-Lite register file built from the register map."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR, AxiLiteSignature
from .regmap import REG_ADDR_WIDTH

__all__ = ["RegisterFile", "port_name"]


def port_name(reg, field) -> str:
    """Name of the register-file port that carries ``reg.field``."""
    return f"{reg.name.lower()}_{field.name}"


class RegisterFile(wiring.Component):
    """AXI4-Lite subordinate exposing the registers of a register map.

    One transaction of each direction at a time; reads and writes proceed independently.
    Writes honour WSTRB byte by byte. A write to a register with no writable field changes
    nothing and answers SLVERR; an access to an unmapped address answers DECERR.

    Ports, for each field ``f`` of register ``r`` (named ``r_f`` in lower case):

    * ``R`` fields without a constant: ``In(width)``, the value read.
    * ``RW`` fields: ``Out(width)``, the register (reset value 0).
    * ``W1C`` fields: ``Out(1)`` the sticky bit, and ``In(1)`` named ``r_f_set`` that sets
      it; a set in the same cycle as a clear wins, so no event is lost.

    Parameters
    ----------
    registers : tuple of Register
        The register map.
    """

    def __init__(self, registers):
        self.registers = tuple(registers)
        members = {"bus": In(AxiLiteSignature(REG_ADDR_WIDTH))}
        for r in self.registers:
            for f in r.fields:
                name = port_name(r, f)
                if f.access == "R" and f.const is None:
                    members[name] = In(f.width)
                elif f.access == "RW":
                    members[name] = Out(f.width)
                elif f.access == "W1C":
                    members[name] = Out(1)
                    members[name + "_set"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # -- read channel ------------------------------------------------------------------
        rindex = bus.araddr[2:]
        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(RESP_DECERR), bus.rdata.eq(0)]
            with m.Switch(rindex):
                for r in self.registers:
                    with m.Case(r.offset >> 2):
                        m.d.sync += [bus.rresp.eq(RESP_OKAY), bus.rdata.eq(self._value(r))]

        # -- write channel -----------------------------------------------------------------
        wen = Signal()
        m.d.comb += [
            wen.eq(bus.awvalid & bus.wvalid & ~bus.bvalid),
            bus.awready.eq(wen),
            bus.wready.eq(wen),
        ]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        strobe_mask = Cat(*(bit.replicate(8) for bit in bus.wstrb))
        clear = {}
        with m.If(wen):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(RESP_DECERR)]
            with m.Switch(bus.awaddr[2:]):
                for r in self.registers:
                    with m.Case(r.offset >> 2):
                        m.d.sync += bus.bresp.eq(RESP_OKAY if r.writable else RESP_SLVERR)
                        for f in r.fields:
                            if f.access == "R":
                                continue
                            port = getattr(self, port_name(r, f))
                            bits = slice(f.lsb, f.lsb + f.width)
                            if f.access == "RW":
                                merged = (port & ~strobe_mask[bits]) | (
                                    bus.wdata[bits] & strobe_mask[bits])
                                m.d.sync += port.eq(merged)
                            elif f.access == "W1C":
                                clr = Signal(name=f"{port_name(r, f)}_clr")
                                m.d.comb += clr.eq(bus.wdata[f.lsb] & strobe_mask[f.lsb])
                                clear[port_name(r, f)] = clr

        for r in self.registers:
            for f in r.fields:
                if f.access != "W1C":
                    continue
                name = port_name(r, f)
                sticky, setter = getattr(self, name), getattr(self, name + "_set")
                clr = clear.get(name, Const(0))
                with m.If(setter):
                    m.d.sync += sticky.eq(1)
                with m.Elif(clr):
                    m.d.sync += sticky.eq(0)
        return m

    def _value(self, reg):
        parts = []
        pos = 0
        for f in sorted(reg.fields, key=lambda f: f.lsb):
            if f.lsb > pos:
                parts.append(Const(0, f.lsb - pos))
            parts.append(Const(f.const, f.width) if f.const is not None
                         else getattr(self, port_name(reg, f)))
            pos = f.lsb + f.width
        if pos < 32:
            parts.append(Const(0, 32 - pos))
        return Cat(*parts)
