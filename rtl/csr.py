"""AXI4-Lite register file built from the register map."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR, AxiLiteSignature
from .regmap import REG_ADDR_WIDTH

__all__ = ["ERRORS", "RegisterFile", "port_name"]

#: Why an access was refused: the ``err_*`` outputs, one per field of ``BUS_ERROR``.
ERRORS = ("decode", "readonly", "range", "window")


def port_name(reg, field) -> str:
    """Name of the register-file port that carries ``reg.field``."""
    return f"{reg.name.lower()}_{field.name}"


class RegisterFile(wiring.Component):
    """AXI4-Lite subordinate exposing the registers of a register map.

    One transaction of each direction at a time; reads and writes proceed independently.
    Writes honour WSTRB byte by byte. A write to a register with no writable field changes
    nothing and answers SLVERR; so does a write that would leave a field with a legal range
    (``Field.legal``) outside it: the whole write is refused. An access to an unmapped
    address answers DECERR. Each refusal pulses one of ``err_decode``, ``err_readonly``,
    ``err_range`` or ``err_window`` for a cycle, with the byte address on ``err_addr``.

    Ports, for each field ``f`` of register ``r`` (named ``r_f`` in lower case):

    * ``R`` fields without a constant: ``In(width)``, the value read.
    * ``RW`` fields: ``Out(width)``, the register (its reset value from the map).
    * ``RWH`` fields: as ``RW``, plus ``In(1)`` ``r_f_we`` and ``In(width)`` ``r_f_in``: the
      hardware writes ``r_f_in`` when ``r_f_we`` is high, winning over a bus write.
    * ``W1C`` fields: ``Out(1)`` the sticky bit, and ``In(1)`` named ``r_f_set`` that sets
      it; a set in the same cycle as a clear wins, so no event is lost. A ``reset_less``
      field keeps its value through the domain's reset (a set during the reset cycle
      lands).
    * ``W1P`` fields: ``Out(1)``, high for the one cycle after a bus write of 1.

    For each window ``w`` (a per-column array, one word per column), ports ``w_addr``
    (word index), ``w_re`` (read strobe; the data is expected on ``w_rdata`` the next
    cycle, as from a synchronous memory), ``w_we`` and ``w_wdata`` (write strobe and word),
    and ``In(1)`` ``w_lock``: while high, writes are refused with SLVERR. A window write
    must be a whole word (WSTRB 0xF) holding a value of the window's width (sign-extended
    if the window is signed), others are refused with SLVERR; a read-only window refuses
    every write. For a ``W1C`` window the word written is passed on like any other: the
    owner of the array clears the bits set in it.

    Parameters
    ----------
    registers : tuple of Register
        The register map.
    windows : tuple of Window
        The per-column arrays, with the number of columns ``cols``.
    cols : int
        Number of columns (words) of each window.
    """

    def __init__(self, registers, windows=(), cols=0):
        self.registers = tuple(registers)
        self.windows = tuple(windows)
        self.cols = cols
        members = {"bus": In(AxiLiteSignature(REG_ADDR_WIDTH)),
                   **{f"err_{kind}": Out(1) for kind in ERRORS},
                   "err_addr": Out(REG_ADDR_WIDTH)}
        for r in self.registers:
            for f in r.fields:
                name = port_name(r, f)
                if f.access == "R" and f.const is None:
                    members[name] = In(f.width)
                elif f.access in ("RW", "RWH"):
                    members[name] = Out(f.width, init=f.reset)
                    if f.access == "RWH":
                        members[name + "_we"] = In(1)
                        members[name + "_in"] = In(f.width)
                elif f.access in ("W1C", "W1P"):
                    members[name] = Out(1)
                    if f.access == "W1C":
                        members[name + "_set"] = In(1)
        for w in self.windows:
            name = w.name.lower()
            members[name + "_addr"] = Out(range(max(cols, 2)))
            members[name + "_re"] = Out(1)
            members[name + "_rdata"] = In(32)
            members[name + "_we"] = Out(1)
            members[name + "_wdata"] = Out(32)
            members[name + "_lock"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # -- read channel ------------------------------------------------------------------
        rindex = bus.araddr[2:]
        pending = Signal(len(self.windows) + 1)  # one-hot: window read waiting for data
        wen = Signal()
        # A write takes the window ports first: a read waits while one is accepted.
        m.d.comb += bus.arready.eq(~bus.rvalid & ~pending.any() & ~wen)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        m.d.sync += pending.eq(0)
        for i, w in enumerate(self.windows):
            with m.If(pending[i]):
                m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(RESP_OKAY),
                             bus.rdata.eq(self._window_value(w))]
        read_decerr = Signal()
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(RESP_DECERR), bus.rdata.eq(0)]
            m.d.comb += read_decerr.eq(1)
            with m.Switch(rindex):
                for r in self.registers:
                    with m.Case(r.offset >> 2):
                        m.d.comb += read_decerr.eq(0)
                        m.d.sync += [bus.rresp.eq(RESP_OKAY), bus.rdata.eq(self._value(r))]
            for i, w in enumerate(self.windows):
                hit, word = self._decode(w, bus.araddr)
                m.d.comb += getattr(self, w.name.lower() + "_addr").eq(word)
                with m.If(hit):
                    m.d.comb += [getattr(self, w.name.lower() + "_re").eq(1),
                                 read_decerr.eq(0)]
                    m.d.sync += [bus.rvalid.eq(0), pending[i].eq(1)]

        # -- write channel -----------------------------------------------------------------
        for r in self.registers:
            for f in r.fields:
                if f.access == "W1P":  # back to 0 unless a bus write below sets it
                    m.d.sync += getattr(self, port_name(r, f)).eq(0)
        m.d.comb += [
            wen.eq(bus.awvalid & bus.wvalid & ~bus.bvalid),
            bus.awready.eq(wen),
            bus.wready.eq(wen),
        ]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        strobe_mask = Cat(*(bit.replicate(8) for bit in bus.wstrb))
        clear = {}
        err = {kind: Signal(name=f"write_err_{kind}") for kind in ERRORS}
        with m.If(wen):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(RESP_DECERR)]
            m.d.comb += err["decode"].eq(1)
            for w in self.windows:
                name = w.name.lower()
                hit, word = self._decode(w, bus.awaddr)
                with m.If(hit):
                    m.d.comb += err["decode"].eq(0)
                    if w.access == "R":
                        m.d.comb += err["readonly"].eq(1)
                    else:
                        m.d.comb += [
                            err["window"].eq((bus.wstrb != 0xF) | getattr(self, name + "_lock")),
                            err["range"].eq(~err["window"] & ~self._fits(w, bus.wdata)),
                        ]
                    ok = ~(err["readonly"] | err["window"] | err["range"])
                    m.d.sync += bus.bresp.eq(Mux(ok, RESP_OKAY, RESP_SLVERR))
                    with m.If(ok):
                        m.d.comb += [getattr(self, name + "_we").eq(1),
                                     getattr(self, name + "_addr").eq(word),
                                     getattr(self, name + "_wdata").eq(bus.wdata)]
            with m.Switch(bus.awaddr[2:]):
                for r in self.registers:
                    with m.Case(r.offset >> 2):
                        m.d.comb += err["decode"].eq(0)
                        if not r.writable:
                            m.d.comb += err["readonly"].eq(1)
                            m.d.sync += bus.bresp.eq(RESP_SLVERR)
                            continue
                        merged = {}
                        for f in r.fields:
                            if f.access in ("RW", "RWH"):
                                bits = slice(f.lsb, f.lsb + f.width)
                                merged[f.name] = (getattr(self, port_name(r, f))
                                                  & ~strobe_mask[bits]) | (
                                    bus.wdata[bits] & strobe_mask[bits])
                        legal = Const(1)
                        for f in r.fields:
                            if f.legal is None:
                                continue
                            value = merged[f.name].as_signed() if f.signed else merged[f.name]
                            low, high = f.representable
                            # Only the bounds the width does not already impose.
                            if f.legal[0] > low:
                                legal &= value >= f.legal[0]
                            if f.legal[1] < high:
                                legal &= value <= f.legal[1]
                        m.d.comb += err["range"].eq(~legal)
                        m.d.sync += bus.bresp.eq(Mux(legal, RESP_OKAY, RESP_SLVERR))
                        for f in r.fields:
                            if f.access == "R":
                                continue
                            port = getattr(self, port_name(r, f))
                            if f.access in ("RW", "RWH"):
                                with m.If(legal):
                                    m.d.sync += port.eq(merged[f.name])
                            elif f.access == "W1P":
                                m.d.sync += port.eq(bus.wdata[f.lsb] & strobe_mask[f.lsb]
                                                    & legal)
                            elif f.access == "W1C":
                                clr = Signal(name=f"{port_name(r, f)}_clr")
                                m.d.comb += clr.eq(bus.wdata[f.lsb] & strobe_mask[f.lsb]
                                                   & legal)
                                clear[port_name(r, f)] = clr
        m.d.comb += [
            self.err_decode.eq(err["decode"] | read_decerr),
            self.err_readonly.eq(err["readonly"]),
            self.err_range.eq(err["range"]),
            self.err_window.eq(err["window"]),
            self.err_addr.eq(Mux(Cat(*err.values()).any(), bus.awaddr, bus.araddr)),
        ]

        for r in self.registers:
            for f in r.fields:
                name = port_name(r, f)
                if f.access == "RWH":
                    with m.If(getattr(self, name + "_we")):
                        m.d.sync += getattr(self, name).eq(getattr(self, name + "_in"))
                if f.access != "W1C":
                    continue
                name = port_name(r, f)
                sticky, setter = getattr(self, name), getattr(self, name + "_set")
                if f.reset_less:
                    # The port follows a register the bus reset does not touch.
                    store = Signal(name=f"{name}_store", reset_less=True)
                    m.d.comb += sticky.eq(store)
                    sticky = store
                clr = clear.get(name, Const(0))
                with m.If(setter):
                    m.d.sync += sticky.eq(1)
                with m.Elif(clr):
                    m.d.sync += sticky.eq(0)
        return m

    def _decode(self, w, addr):
        """Whether ``addr`` falls in window ``w``, and its word index there."""
        word_bits = max(self.cols - 1, 1).bit_length()
        base = w.base >> 2
        index = addr[2:]
        hit = (index >= base) & (index < base + self.cols)
        return hit, (index - base)[:word_bits]

    @staticmethod
    def _fits(w, word):
        """Whether the 32-bit ``word`` holds a value of window ``w``'s width."""
        if w.width >= 32:
            return Const(1)
        if w.signed:
            top = word[w.width - 1:]
            return (top == 0) | (top == (1 << len(top)) - 1)
        return word[w.width:] == 0

    def _window_value(self, w):
        data = getattr(self, w.name.lower() + "_rdata")
        if w.signed:
            return Cat(data[:w.width], data[w.width - 1].replicate(32 - w.width))
        return Cat(data[:w.width], Const(0, 32 - w.width))

    def _value(self, reg):
        parts = []
        pos = 0
        for f in sorted(reg.fields, key=lambda f: f.lsb):
            if f.lsb > pos:
                parts.append(Const(0, f.lsb - pos))
            if f.access == "W1P":
                parts.append(Const(0, f.width))
            else:
                parts.append(Const(f.const, f.width) if f.const is not None
                             else getattr(self, port_name(reg, f)))
            pos = f.lsb + f.width
        if pos < 32:
            parts.append(Const(0, 32 - pos))
        return Cat(*parts)
