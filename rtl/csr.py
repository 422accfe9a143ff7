"""AXI4-Lite register file built from the register map, with one typed port per register."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..enums import BusError
from .axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR, AxiLiteSignature
from .regmap import REG_ADDR_WIDTH, Access, Register, Window

__all__ = ["RegisterFile", "RegisterSignature", "WindowSignature"]


def _field_member(f):
    """The port of one field, seen from the register file; None for a constant."""
    if f.access == Access.R:
        return None if f.const is not None else In(f.shape)
    if f.access == Access.RW:
        return Out(f.shape, init=f.reset)
    if f.access == Access.RWH:
        return Out(wiring.Signature({"value": Out(f.shape, init=f.reset), "we": In(1),
                                     "data": In(f.shape)}))
    if f.access == Access.W1C:
        return Out(wiring.Signature({"value": Out(f.shape), "set": In(f.width)}))
    return Out(f.shape)  # W1P


class RegisterSignature(wiring.Signature):
    """The fields of one register as ports of the register file, by field name:

    * ``R`` (not constant): ``In(shape)``, the value the hardware shows;
    * ``RW``: ``Out(shape)``, the register, reset to its reset value;
    * ``RWH``: ``value`` (the register), ``we`` and ``data``: the hardware writes ``data``
      when ``we`` is high, winning over a bus write in the same cycle;
    * ``W1C``: ``value`` (the sticky bits) and ``set`` (a bit per bit of the field); a set
      in the cycle of a clear wins, so no event is lost;
    * ``W1P``: ``Out(shape)``, high for the one cycle after a bus write of 1.

    ``shape`` is the field's enum when it has one.

    Parameters
    ----------
    register : Register
    """

    def __init__(self, register: Register):
        if not isinstance(register, Register):
            raise TypeError(f"RegisterSignature needs a Register, not {register!r}")
        self.register = register
        members = {f.name: _field_member(f) for f in register.fields}
        super().__init__({k: v for k, v in members.items() if v is not None})

    def __eq__(self, other):
        return isinstance(other, RegisterSignature) and other.register == self.register

    def __repr__(self):
        return f"RegisterSignature({self.register.name})"


class WindowSignature(wiring.Signature):
    """A per-column window as ports of the register file, for a synchronous memory behind
    it: ``addr`` (word index), ``re`` (read strobe: the data is expected on ``rdata`` the
    next cycle), ``we`` and ``wdata`` (write strobe and whole word), and ``lock`` (while
    high, writes are refused with SLVERR).

    Parameters
    ----------
    window : Window
        Its ``words`` give the word count.
    """

    def __init__(self, window: Window):
        if not isinstance(window, Window):
            raise TypeError(f"WindowSignature needs a Window, not {window!r}")
        self.window = window
        super().__init__({"addr": Out(range(max(window.words, 2))), "re": Out(1),
                          "rdata": In(32), "we": Out(1), "wdata": Out(32), "lock": In(1)})

    def __eq__(self, other):
        return isinstance(other, WindowSignature) and other.window == self.window

    def __repr__(self):
        return f"WindowSignature({self.window.name}, {self.window.words})"


class RegisterFile(wiring.Component):
    """AXI4-Lite subordinate exposing the registers of a register map.

    One transaction of each direction at a time; reads and writes proceed independently.
    A write is accepted (AWREADY and WREADY) the cycle after AWVALID and WVALID are both
    high: that cycle registers its address decode, range checks and refusal reason, and the
    write takes effect in the cycle of its handshake, with BVALID the cycle after.
    Writes honour WSTRB byte by byte. A write to a register with no writable field changes
    nothing and answers SLVERR; so does a write that would leave a field with a legal range
    (``Field.legal``) outside it: the whole write is refused. An access to an unmapped
    address answers DECERR. Each refusal pulses the bit of ``err`` that says why for a
    cycle, with the byte address on ``err_addr``.

    A window write must be a whole word (WSTRB 0xF) holding a value of the window's width
    (sign-extended if the window is signed), others are refused with SLVERR; a read-only
    window refuses every write. For a ``W1C`` window the word written is passed on like any
    other: the owner of the array clears the bits set in it.

    Attributes
    ----------
    bus : In(AxiLiteSignature)
    regs : Out
        One :class:`RegisterSignature` per register with a port, named after the register
        in lower case (``regs.cal_ctrl.avg_log2``).
    win : Out
        One :class:`WindowSignature` per window, likewise (``win.offset.addr``).
    err : Out(BusError)
        Why the access of this cycle was refused (one bit), if it was.
    err_addr : Out(REG_ADDR_WIDTH)

    Parameters
    ----------
    registers : tuple of Register
        The register map.
    windows : tuple of Window
        The per-column and per-row arrays.
    """

    def __init__(self, registers, windows=()):
        self.registers = tuple(registers)
        self.windows = tuple(windows)
        regs = {r.name.lower(): Out(RegisterSignature(r)) for r in self.registers
                if RegisterSignature(r).members}
        wins = {w.name.lower(): Out(WindowSignature(w)) for w in self.windows}
        super().__init__({
            "bus": In(AxiLiteSignature(REG_ADDR_WIDTH)),
            "regs": Out(wiring.Signature(regs)),
            "win": Out(wiring.Signature(wins)),
            "err": Out(BusError),
            "err_addr": Out(REG_ADDR_WIDTH),
        })

    def _port(self, reg, field):
        return getattr(getattr(self.regs, reg.name.lower()), field.name)

    def _win(self, w):
        return getattr(self.win, w.name.lower())

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # -- read channel ------------------------------------------------------------------
        # Like a write, a read is accepted (ARREADY) the cycle after ARVALID at the earliest:
        # that cycle registers its address decode (AXI holds ARADDR while ARVALID waits),
        # and the handshake cycle selects the register's value with it.
        pending = Signal(len(self.windows) + 1)  # one-hot: window read waiting for data
        wen = Signal()
        win_word = [Signal(max(w.words - 1, 1).bit_length(), name=f"{w.name.lower()}_word")
                    for w in self.windows]  # the word of the write, registered
        rchecked = Signal()  # the decode of the read on the bus is registered
        rhit = Signal(len(self.registers))  # one-hot: the register read
        rwin = Signal(len(self.windows))  # one-hot: the window read
        rmapped = Signal()
        rword = [Signal(max(w.words - 1, 1).bit_length(), name=f"{w.name.lower()}_rword")
                 for w in self.windows]
        ar_hs = Signal()
        # A write takes the window ports first: a read waits while one is accepted.
        m.d.comb += [bus.arready.eq(rchecked & ~bus.rvalid & ~pending.any() & ~wen),
                     ar_hs.eq(bus.arvalid & bus.arready)]
        # The decode is registered in every cycle a read waits, so it is always that of the
        # address of the cycle before.
        m.d.sync += rchecked.eq(bus.arvalid & ~ar_hs)
        with m.If(bus.arvalid):
            rindex = bus.araddr[2:]
            hits = [rindex == r.offset >> 2 for r in self.registers]
            decoded = [self._decode(w, bus.araddr) for w in self.windows]
            m.d.sync += [rhit.eq(Cat(*hits)), rwin.eq(Cat(*(hit for hit, _ in decoded))),
                         rmapped.eq(Cat(*hits, *(hit for hit, _ in decoded)).any()),
                         *(rw.eq(word) for rw, (_, word) in zip(rword, decoded, strict=True))]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        m.d.sync += pending.eq(0)
        for i, w in enumerate(self.windows):
            with m.If(pending[i]):
                m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(RESP_OKAY),
                             bus.rdata.eq(self._window_value(w))]
        read_decerr = Signal()
        value = Const(0, 32)
        for i, r in enumerate(self.registers):
            value = value | Mux(rhit[i], self._value(r), 0)  # an AND-OR, not a priority
        m.d.comb += read_decerr.eq(ar_hs & ~rmapped)
        with m.If(ar_hs):
            m.d.sync += [bus.rvalid.eq(~rwin.any()), bus.rdata.eq(value),
                         bus.rresp.eq(Mux(rmapped, RESP_OKAY, RESP_DECERR)),
                         pending.eq(rwin)]
        for i, w in enumerate(self.windows):
            m.d.comb += self._win(w).re.eq(ar_hs & rwin[i])

        # The word of a window: the write's in its handshake cycle, else the read's.
        for i, w in enumerate(self.windows):
            m.d.comb += self._win(w).addr.eq(Mux(wen, win_word[i], rword[i]))

        # -- write channel -----------------------------------------------------------------
        # Two cycles: in the first the address and data wait on the bus (VALID high, READY
        # low, so AXI holds them) while the decode, the legal-range checks and the refusal
        # reason are registered; in the second (``wen``) the write is accepted and done
        # with the registered checks. The window lock is sampled in the second cycle.
        for r in self.registers:
            for f in r.fields:
                if f.access == Access.W1P:  # back to 0 unless a bus write below sets it
                    m.d.sync += Value.cast(self._port(r, f)).eq(0)
        checked = Signal()  # the checks of the write on the bus were made last cycle
        m.d.comb += [
            wen.eq(checked & bus.awvalid & bus.wvalid),
            bus.awready.eq(wen),
            bus.wready.eq(wen),
        ]
        m.d.sync += checked.eq(bus.awvalid & bus.wvalid & ~bus.bvalid & ~checked)
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        strobe_mask = Cat(*(bit.replicate(8) for bit in bus.wstrb))
        index = bus.awaddr[2:]

        # The checks, registered while a write is offered (so a bus that leaves its
        # address undriven between writes leaves them alone), used in the cycle after.
        offered = bus.awvalid & bus.wvalid & ~checked
        writable = [r for r in self.registers if r.writable]
        reg_hit = Signal(len(writable))  # one-hot: the register addressed
        reg_legal = Signal(len(writable))  # and whether the write leaves it legal
        decode_err, readonly_err, reg_range_err = Signal(), Signal(), Signal()
        bad_strobe = Signal()
        win_hit = Signal(len(self.windows))
        win_unfit = Signal(len(self.windows))
        hits, ro_hits, range_errs, checks = [], [], [], []
        for r in self.registers:
            hit = index == r.offset >> 2
            hits.append(hit)
            if not r.writable:
                ro_hits.append(hit)
        for i, r in enumerate(writable):
            legal = self._legal(r, strobe_mask)
            hit = index == r.offset >> 2
            checks += [reg_hit[i].eq(hit), reg_legal[i].eq(legal)]
            range_errs.append(hit & ~legal)
        for i, w in enumerate(self.windows):
            hit, word = self._decode(w, bus.awaddr)
            hits.append(hit)
            checks += [win_hit[i].eq(hit), win_word[i].eq(word),
                       win_unfit[i].eq(~self._fits(w, bus.wdata))]
        with m.If(offered):
            m.d.sync += [
                *checks,
                decode_err.eq(~Cat(*hits).any()),
                readonly_err.eq(Cat(*ro_hits).any()),
                reg_range_err.eq(Cat(*range_errs).any()),
                bad_strobe.eq(bus.wstrb != 0xF),
            ]

        # The write, with the checks of the cycle before.
        clear = {}
        err = {kind: Signal(name=f"write_err_{kind.name.lower()}") for kind in BusError}
        win_ro, win_refused, win_range = [], [], []
        for i, w in enumerate(self.windows):
            port = self._win(w)
            if w.access == Access.R:
                win_ro.append(win_hit[i])
                continue
            refused = bad_strobe | port.lock
            win_refused.append(win_hit[i] & refused)
            win_range.append(win_hit[i] & ~refused & win_unfit[i])
            # Plain assignments, not under an If: a combinational process whose inputs
            # never change would never run in Icarus, leaving its outputs undefined.
            m.d.comb += [port.we.eq(wen & win_hit[i] & ~refused & ~win_unfit[i]),
                         port.wdata.eq(bus.wdata)]
        m.d.comb += [
            err[BusError.DECODE].eq(wen & decode_err),
            err[BusError.READONLY].eq(wen & (readonly_err | Cat(*win_ro).any())),
            err[BusError.RANGE].eq(wen & (reg_range_err | Cat(*win_range).any())),
            err[BusError.WINDOW].eq(wen & Cat(*win_refused).any()),
        ]
        with m.If(wen):
            m.d.sync += [
                bus.bvalid.eq(1),
                bus.bresp.eq(Mux(decode_err, RESP_DECERR,
                                 Mux(Cat(*err.values()).any(), RESP_SLVERR, RESP_OKAY))),
            ]
        for i, r in enumerate(writable):
            self._write_register(m, r, wen & reg_hit[i], reg_legal[i], strobe_mask, clear)
        refused = Cat(*err.values()).any()
        m.d.comb += [
            self.err.eq(Cat(err[BusError.DECODE] | read_decerr, *(err[k] for k in BusError
                                                                 if k != BusError.DECODE))),
            self.err_addr.eq(Mux(refused, bus.awaddr, bus.araddr)),
        ]

        for r in self.registers:
            for f in r.fields:
                self._hardware_side(m, r, f, clear.get((r.name, f.name)))
        return m

    def _merged(self, r, f, strobe_mask):
        """The value of RW or RWH field ``f`` of ``r`` after the bus write: its bits with
        the strobed bytes of WDATA."""
        bits = slice(f.lsb, f.lsb + f.width)
        old = Value.cast(self._value_of(r, f)).as_unsigned()
        return (old & ~strobe_mask[bits]) | (self.bus.wdata[bits] & strobe_mask[bits])

    def _legal(self, r, strobe_mask):
        """Whether the write on the bus would leave every field of ``r`` with a legal range
        inside it (the fields with a range are RW: nothing else changes them meanwhile)."""
        legal = Const(1)
        for f in r.fields:
            if f.legal is None:
                continue
            merged = self._merged(r, f, strobe_mask)
            value = merged.as_signed() if f.signed else merged
            low, high = f.representable
            # Only the bounds the width does not already impose.
            if f.legal[0] > low:
                legal &= value >= f.legal[0]
            if f.legal[1] < high:
                legal &= value <= f.legal[1]
        return legal

    def _write_register(self, m, r, hit, legal, strobe_mask, clear):
        """A bus write to register ``r`` in the cycle of the write handshake (``hit``): the
        fields take the strobed bytes if the write is ``legal`` (both registered the cycle
        before)."""
        ok = hit & legal
        for f in r.fields:
            bits = slice(f.lsb, f.lsb + f.width)
            written = self.bus.wdata[bits] & strobe_mask[bits] & ok.replicate(f.width)
            if f.access in (Access.RW, Access.RWH):
                with m.If(ok):
                    m.d.sync += Value.cast(self._value_of(r, f)).eq(
                        self._merged(r, f, strobe_mask))
            elif f.access == Access.W1P:
                m.d.sync += Value.cast(self._port(r, f)).eq(written)
            elif f.access == Access.W1C:
                clr = Signal(f.width, name=f"{r.name.lower()}_{f.name}_clr")
                m.d.comb += clr.eq(written)
                clear[(r.name, f.name)] = clr

    def _value_of(self, r, f):
        """The register behind a RW or RWH field."""
        port = self._port(r, f)
        return port.value if f.access == Access.RWH else port

    def _hardware_side(self, m, r, f, clr):
        """Hardware writes of RWH fields; set and clear of W1C bits."""
        if f.access == Access.RWH:
            port = self._port(r, f)
            with m.If(port.we):
                m.d.sync += Value.cast(port.value).eq(Value.cast(port.data))
        if f.access != Access.W1C:
            return
        port = self._port(r, f)
        sticky = Value.cast(port.value)
        if f.reset_less:
            # The port follows a register the bus reset does not touch.
            store = Signal(f.width, name=f"{r.name.lower()}_{f.name}_store", reset_less=True)
            m.d.comb += sticky.eq(store)
            sticky = store
        clr = Const(0, f.width) if clr is None else clr
        m.d.sync += sticky.eq((sticky & ~clr) | port.set)

    def _decode(self, w, addr):
        """Whether ``addr`` falls in window ``w``, and its word index there."""
        word_bits = max(w.words - 1, 1).bit_length()
        base = w.base >> 2
        index = addr[2:]
        hit = (index >= base) & (index < base + w.words)
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
        data = self._win(w).rdata
        if w.signed:
            return Cat(data[:w.width], data[w.width - 1].replicate(32 - w.width))
        return Cat(data[:w.width], Const(0, 32 - w.width))

    def _value(self, reg):
        parts = []
        pos = 0
        for f in sorted(reg.fields, key=lambda f: f.lsb):
            if f.lsb > pos:
                parts.append(Const(0, f.lsb - pos))
            if f.access == Access.W1P:
                parts.append(Const(0, f.width))
            elif f.const is not None:
                parts.append(Const(f.const, f.width))
            elif f.access in (Access.RWH, Access.W1C):
                parts.append(Value.cast(self._port(reg, f).value))
            else:
                parts.append(Value.cast(self._port(reg, f)))
            pos = f.lsb + f.width
        if pos < 32:
            parts.append(Const(0, 32 - pos))
        return Cat(*parts)
