"""The AXI4-Lite subordinate (:class:`~aimc.rtl.csr.RegisterFile`) under any protocol-correct
manager: one response per handshake, stable responses, and the register semantics of the
register map (RW read-back, refused writes, W1C with set-wins, W1P pulses, error codes)."""

from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal, Value

from ..config import TileConfig
from ..rtl.axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR
from ..rtl.csr import RegisterFile
from ..rtl.regmap import REG_ADDR_WIDTH, Access, register_map, windows
from .harness import Harness, driven, free

__all__ = ["AxiLiteHarness"]


class _LeakyRegisterFile(RegisterFile):
    """Lets a write refused for its range through: the RW fields take the written bits."""

    def _write_register(self, m, r, hit, legal, strobe_mask, clear):
        super()._write_register(m, r, hit, legal, strobe_mask, clear)
        with m.If(hit):
            for f in r.fields:
                if f.access == Access.RW:
                    bits = slice(f.lsb, f.lsb + f.width)
                    m.d.sync += Value.cast(self._port(r, f)).eq(self.bus.wdata[bits])


class _ClearWinsRegisterFile(RegisterFile):
    """A host clear in the cycle of a hardware set wins: the event is lost."""

    def _hardware_side(self, m, r, f, clr):
        super()._hardware_side(m, r, f, clr)
        if f.access == Access.W1C and not f.reset_less and clr is not None:
            port = self._port(r, f)
            sticky = Value.cast(port.value)
            m.d.sync += sticky.eq((sticky | port.set) & ~clr)


class _DroppingRegisterFile(RegisterFile):
    """Drops BVALID after one cycle whether or not BREADY took it."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.bus.bvalid.eq(0)
        return m


class _OverrunRegisterFile(RegisterFile):
    """Accepts a read while its previous response still waits (ARREADY ungated)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.bus.arready.eq(driven(m, "rchecked") & ~driven(m, "wen"))
        return m


class AxiLiteHarness(Harness):
    """The register file of a small tile's register map, every hardware input free.

    Manager assumptions (AXI4-Lite, as ZipCPU's ``faxil_master``): a VALID once raised
    stays until its READY with its payload (AWADDR, WDATA/WSTRB, ARADDR) unchanged. BREADY
    and RREADY are free. The harness keeps a model of every RW and RWH field, updated by
    the register map's rules, and checks the register file against it.
    """

    name = "axil"
    mutations = {
        "leaky": "a write refused for its range still updates the RW fields",
        "clear_wins": "a W1C clear in the cycle of a hardware set wins over the set",
        "drop_bvalid": "BVALID falls after one cycle without waiting for BREADY",
        "read_overrun": "ARREADY no longer waits for the previous read's response",
    }

    def __init__(self, cfg=None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(rows=2, cols=2, lanes=2)

    def build(self, m):
        regs, wins = register_map(self.cfg), windows(self.cfg)
        cls = {"leaky": _LeakyRegisterFile, "clear_wins": _ClearWinsRegisterFile,
               "drop_bvalid": _DroppingRegisterFile,
               "read_overrun": _OverrunRegisterFile}.get(self.mutation, RegisterFile)
        dut = cls(regs, wins)
        self.instance(m, dut)
        bus = dut.bus
        aw = REG_ADDR_WIDTH

        # -- the manager ------------------------------------------------------------------
        for name, width in (("awaddr", aw), ("wdata", 32), ("wstrb", 4), ("araddr", aw)):
            m.d.comb += getattr(bus, name).eq(free(m, width, name))
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
            m.d.comb += getattr(bus, name).eq(free(m, 1, name))
        started = Signal()
        m.d.sync += started.eq(1)
        for valid, ready, payload in ((bus.awvalid, bus.awready, [bus.awaddr]),
                                      (bus.wvalid, bus.wready, [bus.wdata, bus.wstrb]),
                                      (bus.arvalid, bus.arready, [bus.araddr])):
            was_waiting = self.past(m, valid & ~ready)
            before = [self.past(m, p) for p in payload]
            with m.If(started & was_waiting):
                self.assume(m, valid)
                for p, b in zip(payload, before, strict=True):
                    self.assume(m, p == b)

        # -- the hardware side: every input of the register file free -------------------
        for r in regs:
            for fl in r.fields:
                if fl.access == Access.R and fl.const is None:
                    m.d.comb += Value.cast(dut._port(r, fl)).eq(free(m, fl.width))
                elif fl.access == Access.RWH:
                    port = dut._port(r, fl)
                    m.d.comb += [port.we.eq(free(m, 1)),
                                 Value.cast(port.data).eq(free(m, fl.width))]
                elif fl.access == Access.W1C:
                    m.d.comb += dut._port(r, fl).set.eq(free(m, fl.width))
        for w in wins:
            port = dut._win(w)
            m.d.comb += [port.rdata.eq(free(m, 32)), port.lock.eq(free(m, 1))]

        self._protocol(m, bus)
        self._semantics(m, dut, bus, regs, wins)

    def _protocol(self, m, bus):
        aw_hs = bus.awvalid & bus.awready
        w_hs = bus.wvalid & bus.wready
        b_hs = bus.bvalid & bus.bready
        ar_hs = bus.arvalid & bus.arready
        r_hs = bus.rvalid & bus.rready
        self.prop(m, "aw_and_w_together", bus.awready == bus.wready)
        # Outstanding writes and reads: handshakes less responses.
        writes, reads = Signal(2), Signal(2)
        m.d.sync += [writes.eq(writes + aw_hs - b_hs), reads.eq(reads + ar_hs - r_hs)]
        self.prop(m, "one_b_per_write", (writes <= 1) & (bus.bvalid == (writes == 1)),
                  helper=True)
        self.prop(m, "no_b_without_write", ~(b_hs & (writes == 0) & ~aw_hs))
        self.prop(m, "one_r_per_read", (reads <= 1) & (~bus.rvalid | (reads == 1)),
                  helper=True)
        self.prop(m, "w_accepted_with_aw_only", ~(w_hs & ~aw_hs))
        waited = Signal(2)  # cycles a read has waited for its response
        with m.If((reads == 1) & ~bus.rvalid):
            m.d.sync += waited.eq(waited + 1)
        with m.Else():
            m.d.sync += waited.eq(0)
        self.prop(m, "read_answered_within_2", waited <= 1, helper=True)
        for valid, ready, payload, name in (
                (bus.bvalid, bus.bready, [bus.bresp], "bvalid_stable"),
                (bus.rvalid, bus.rready, [bus.rresp, bus.rdata], "rvalid_stable")):
            held = self.past(m, valid & ~ready)
            before = [self.past(m, p) for p in payload]
            with m.If(held):
                self.prop(m, name, valid & Cat(*(p == b for p, b in zip(payload, before,
                                                                         strict=True))).all())
        self.cover(m, "write_then_read", b_hs & self.past(m, r_hs))
        self.cover(m, "stalled_b", bus.bvalid & ~bus.bready & self.past(m, bus.bvalid))

    def _semantics(self, m, dut, bus, regs, wins):
        wen = bus.awvalid & bus.wvalid & bus.awready
        index = bus.awaddr[2:]
        mask = Cat(*(b.replicate(8) for b in bus.wstrb))
        mapped_reg = Cat(*(index == r.offset >> 2 for r in regs)).any()

        def in_window(w, addr):
            i = addr[2:]
            return (i >= w.base >> 2) & (i < (w.base >> 2) + w.words)

        mapped = mapped_reg | Cat(*(in_window(w, bus.awaddr) for w in wins)).any()
        expect = Signal(2)  # the response the register map prescribes for this write
        m.d.comb += expect.eq(RESP_DECERR)
        rw_ports, unchanged, w1c_ok, w1p_ok = [], [], [], []
        for r in regs:
            hit = wen & (index == r.offset >> 2)
            merged, legal = {}, Const(1)
            for fl in r.fields:
                if fl.access in (Access.RW, Access.RWH):
                    value = dut._value_of(r, fl)
                    old = Value.cast(value).as_unsigned()
                    bits = slice(fl.lsb, fl.lsb + fl.width)
                    merged[fl.name] = (old & ~mask[bits]) | (bus.wdata[bits] & mask[bits])
                    if fl.legal is not None:
                        v = merged[fl.name].as_signed() if fl.signed else merged[fl.name]
                        legal &= (v >= fl.legal[0]) & (v <= fl.legal[1])
            ok = hit & Const(int(r.writable)) & legal
            with m.If(index == r.offset >> 2):
                m.d.comb += expect.eq(Mux(r.writable & legal, RESP_OKAY, RESP_SLVERR))
            for fl in r.fields:
                bits = slice(fl.lsb, fl.lsb + fl.width)
                written = bus.wdata[bits] & mask[bits]
                if fl.access in (Access.RW, Access.RWH):
                    port = dut._port(r, fl)
                    now = Value.cast(dut._value_of(r, fl)).as_unsigned()
                    model = Mux(ok, merged[fl.name], now)
                    if fl.access == Access.RWH:
                        model = Mux(port.we, Value.cast(port.data).as_unsigned(), model)
                    rw_ports.append((now, self.past(m, model[:fl.width], init=fl.reset)))
                    if fl.access == Access.RW:
                        unchanged.append(now)
                elif fl.access == Access.W1C:
                    port = dut._port(r, fl)
                    now = Value.cast(port.value)
                    clr = Mux(ok, written, 0)
                    w1c_ok.append(now == self.past(m, (now & ~clr) | port.set))
                elif fl.access == Access.W1P:
                    w1p_ok.append(Value.cast(dut._port(r, fl)) == self.past(m, Mux(ok, written, 0)))
        started = Signal()
        m.d.sync += started.eq(1)
        with m.If(started):
            self.prop(m, "rw_fields_follow_the_map",
                      Cat(*(now == model for now, model in rw_ports)).all(), helper=True)
            self.prop(m, "w1c_set_wins_over_clear", Cat(*w1c_ok).all())
            self.prop(m, "w1p_pulses_once_per_written_one", Cat(*w1p_ok).all())
        # Windows: a write reaches the window's port only when the map allows it.
        for w in wins:
            port = dut._win(w)
            hit = wen & in_window(w, bus.awaddr)
            fits = Const(1)
            if w.width < 32:
                top = bus.wdata[w.width - 1:] if w.signed else bus.wdata[w.width:]
                fits = (top == 0) | (top == (1 << len(top)) - 1) if w.signed else (top == 0)
            allowed = (w.access != Access.R) & (bus.wstrb == 0xF) & ~port.lock & fits
            with m.If(in_window(w, bus.awaddr)):
                m.d.comb += expect.eq(Mux(allowed, RESP_OKAY, RESP_SLVERR))
            self.prop(m, f"{w.name.lower()}_write_only_when_allowed",
                      port.we == (hit & allowed))
        del mapped
        # The response of each write is the one the map prescribes.
        resp = self.past(m, expect)
        with m.If(started & self.past(m, wen)):
            self.prop(m, "bresp_as_the_map_says", bus.bresp == resp)
        # A refused write changes no RW field and starts nothing.
        refused = self.past(m, wen & (expect != RESP_OKAY))
        before = [self.past(m, now) for now in unchanged]
        with m.If(started & refused):
            self.prop(m, "refused_write_changes_nothing",
                      Cat(*(now == b for now, b in zip(unchanged, before, strict=True))).all())
            self.prop(m, "refused_write_starts_nothing",
                      Cat(*(Value.cast(dut._port(r, fl)) == 0 for r in regs for fl in r.fields
                            if fl.access == Access.W1P)).all())
        # Reads of a register return its value at the read handshake; unmapped: DECERR.
        ar = bus.arvalid & bus.arready
        rindex = bus.araddr[2:]
        value = Signal(32)
        rmapped = Cat(*(rindex == r.offset >> 2 for r in regs)).any() \
            | Cat(*(in_window(w, bus.araddr) for w in wins)).any()
        is_reg = Signal()
        for r in regs:
            with m.If(rindex == r.offset >> 2):
                m.d.comb += [value.eq(dut._value(r)), is_reg.eq(1)]
        exp_value, exp_reg, exp_mapped = Signal(32), Signal(), Signal()
        with m.If(ar):
            m.d.sync += [exp_value.eq(value), exp_reg.eq(is_reg), exp_mapped.eq(rmapped)]
        with m.If(bus.rvalid):
            self.prop(m, "rresp_decerr_iff_unmapped",
                      (bus.rresp == RESP_DECERR) == ~exp_mapped)
            with m.If(exp_reg):
                self.prop(m, "read_returns_register_value", bus.rdata == exp_value)
        self.cover(m, "refused_range_write", started & refused & (resp == RESP_SLVERR))
