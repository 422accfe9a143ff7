"""The sequencer: runs one analogue operation at a time (an MVM or a device read) on the row
drivers, the column integrators and the SAR controllers, and hands its results over."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..programming import READ_CYCLES
from .engine import OpKind, op_layout
from .stream import result_vector

__all__ = ["Sequencer"]


def col_events(cfg: TileConfig) -> data.StructLayout:
    """Per-column events of the conversions ending in a cycle (:class:`aimc.enums.ColFlag`
    order): the lowest code, the highest code, the integrator clamped."""
    return data.StructLayout({"low": unsigned(cfg.cols), "high": unsigned(cfg.cols),
                              "clip": unsigned(cfg.cols)})


class Sequencer(wiring.Component):
    """Schedules the analogue operations.

    An operation starts from ``IDLE`` (or in the cycle its predecessor's results are handed
    over) when ``op`` is valid and the analogue half is ``ready``: the row driver loads the
    operation's vector and the integrators are reset (``int_reset``, with ``ref_en`` for
    the reference charge, ``read_dev``/``read_neg`` for a device read). Per bit plane
    (most significant first; one for PWM and for device reads) the rows are driven for
    ``drive_cycles`` cycles (``READ_CYCLES`` for a read), one cycle starts the SAR
    controllers, and each column group is converted in turn (``adc_bits`` cycles each;
    ``adc_sel`` selects the group member); a bit-serial plane's codes are added to the
    doubled sum of the planes before it. The results then wait on ``results`` until the
    packer takes them. With nothing stalling this is :attr:`TileConfig.mvm_period_cycles`
    per MVM.

    While ``op`` is valid and ``ready`` low, or while ``wait_in`` (an engine waits for the
    analogue half), the sequencer counts cycles; after ``timeout_limit`` of them it raises
    ``timeout`` for one cycle: the operation waiting is abandoned by its owner.

    Attributes
    ----------
    op : In(stream.Signature(op_layout))
        The next operation; ``ready`` in the cycle it starts.
    ready : In(1)
        The analogue half's ``ready``.
    wait_in : In(1)
        An engine waits for the analogue half.
    timeout_limit : In(16)
        ``READY_TIMEOUT``.
    timeout : Out(1)
        The wait was abandoned this cycle.
    row_load, row_drive, row_hold : Out(1)
        The row driver: take the vector (in the start cycle), drive the rows in the next
        cycle (``row_step`` is the PWM cycle or the bit plane), and hold every non-zero row
        on (device reads).
    row_step : Out
    sar_start : Out(1)
        Begin a conversion of every ADC.
    sar_done, codes, adc_sat : In
        The SAR controllers' last step, their codes (offset binary), and the analogue half's
        integrator-clamp latches of the columns they convert.
    int_reset, ref_en, read_dev, read_neg, adc_sel : Out
        The analogue boundary ports of the sequencer (see :mod:`aimc.rtl.boundary`).
    results : Out(stream.Signature(result_vector))
        Raw results of the operation (signed codes; the shift-and-add sum for bit-serial).
    started, done : Out(1)
        An operation starts; its results are handed over (``results`` taken).
    host : Out(1)
        The operation in flight is the host's (kind ``HOST``).
    rail, clip : Out(1)
        Valid with ``done``: a conversion of the operation ended at a rail code; an
        integrator clamped.
    events : Out(col_events)
        Per-column events of the host conversions ending this cycle.
    idle : Out(1)
        No operation is in flight.
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "op": In(stream.Signature(op_layout(cfg))),
            "ready": In(1),
            "wait_in": In(1),
            "timeout_limit": In(16),
            "timeout": Out(1),
            "row_load": Out(1),
            "row_drive": Out(1),
            "row_hold": Out(1),
            "row_step": Out(range(max(cfg.drive_cycles, cfg.planes, 2))),
            "sar_start": Out(1),
            "sar_done": In(1),
            "codes": In(cfg.n_adc * cfg.adc_bits),
            "adc_sat": In(cfg.n_adc),
            "int_reset": Out(1),
            "ref_en": Out(1),
            "read_dev": Out(1),
            "read_neg": Out(1),
            "adc_sel": Out(cfg.sel_bits),
            "results": Out(stream.Signature(result_vector(cfg))),
            "started": Out(1),
            "done": Out(1),
            "host": Out(1),
            "rail": Out(1),
            "clip": Out(1),
            "events": Out(col_events(cfg)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        k = cfg.cols_per_adc
        op = self.op
        t = Signal(range(max(cfg.drive_cycles, READ_CYCLES, 2)))
        plane = Signal(range(max(cfg.planes, 2)))
        sel = Signal(cfg.sel_bits)
        acc = self.results.payload               # two's complement, one per column
        inject = Signal()   # this MVM injects the reference charge in every integration
        reading = Signal()  # this operation is a device read (one integration, one row)
        rail_hit, clip_hit = self.rail, self.clip

        m.d.comb += [
            self.adc_sel.eq(sel),
            self.row_step.eq(t if cfg.input_mode == "pwm" else plane),
            self.row_hold.eq(reading),
        ]

        with m.FSM() as fsm:
            def begin_if_ready():
                # Take the operation and reset the integrators for its first plane.
                read = op.payload.kind == OpKind.READ
                with m.If(op.valid & self.ready):
                    m.d.comb += [op.ready.eq(1), self.started.eq(1), self.row_load.eq(1)]
                    m.d.sync += [self.int_reset.eq(1), t.eq(0),
                                 plane.eq(Mux(read, 0, cfg.planes - 1)),
                                 rail_hit.eq(0), clip_hit.eq(0),
                                 self.host.eq(op.payload.kind == OpKind.HOST),
                                 reading.eq(read),
                                 inject.eq(op.payload.inject),
                                 self.ref_en.eq(op.payload.inject),
                                 self.read_dev.eq(read),
                                 self.read_neg.eq(read & op.payload.neg)]
                    m.next = "DRIVE"

            with m.State("IDLE"):
                begin_if_ready()
            with m.State("DRIVE"):
                m.d.comb += self.row_drive.eq(1)
                m.d.sync += [self.int_reset.eq(0), self.ref_en.eq(0), self.read_dev.eq(0),
                             self.read_neg.eq(0), t.eq(t + 1)]
                with m.If(t == Mux(reading, READ_CYCLES - 1, cfg.drive_cycles - 1)):
                    m.next = "CONV_START"
            with m.State("CONV_START"):
                m.d.comb += self.sar_start.eq(1)
                m.d.sync += sel.eq(0)
                m.next = "CONVERT"
            with m.State("CONVERT"):
                with m.If(self.sar_done):
                    self._capture(m, acc, sel, plane, reading)
                    with m.If(sel != k - 1):
                        m.d.comb += self.sar_start.eq(1)
                        m.d.sync += sel.eq(sel + 1)
                    with m.Elif(plane != 0):
                        m.d.sync += [self.int_reset.eq(1), self.ref_en.eq(inject), t.eq(0),
                                     plane.eq(plane - 1)]
                        m.next = "DRIVE"
                    with m.Else():
                        m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.results.valid.eq(1)
                with m.If(self.results.ready):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                    begin_if_ready()
        # Continuous assignments (valid from time zero in every simulator).
        can_start = Signal()  # the sequencer is where it takes the next operation
        m.d.comb += [
            can_start.eq(fsm.ongoing("IDLE") | (fsm.ongoing("EMIT") & self.results.ready)),
            self.idle.eq(fsm.ongoing("IDLE")),
        ]
        self._flag(m, sel, fsm.ongoing("CONVERT") & self.sar_done)

        # -- waiting for the analogue half ------------------------------------------------
        # An operation waits while ready is low: a start or an engine's own step. After
        # timeout_limit cycles of waiting it is abandoned (by whoever owns it).
        waiting = ~self.ready & ((can_start & op.valid) | self.wait_in)
        waited = Signal(16)
        m.d.comb += self.timeout.eq(waiting & (waited == self.timeout_limit - 1))
        with m.If(waiting & ~self.timeout):
            m.d.sync += waited.eq(waited + 1)
        with m.Else():
            m.d.sync += waited.eq(0)
        return m

    def _flag(self, m, sel, done):
        """Rail codes and integrator clamps of the conversions that end when ``done``: for
        the operation (``rail``, ``clip``) and per column (``events``, host MVMs only).
        Continuous logic, outside the FSM."""
        cfg = self.cfg
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        codes = [self.codes[a * bits:(a + 1) * bits] for a in range(cfg.n_adc)]
        # Signals, not expressions: each column below takes one bit, and a bit of a Cat
        # expression would repeat the whole Cat in the netlist for every column.
        low, high = Signal(cfg.n_adc), Signal(cfg.n_adc)
        m.d.comb += [low.eq(Cat(*(c == 0 for c in codes))),
                     high.eq(Cat(*(c == (1 << bits) - 1 for c in codes)))]
        with m.If(done & (low | high).any()):
            m.d.sync += self.rail.eq(1)
        with m.If(done & self.adc_sat.any()):
            m.d.sync += self.clip.eq(1)
        # Column c is converted by ADC c // k when sel is c % k.
        now = [Signal(name=f"flag_sel{s}") for s in range(k)]
        m.d.comb += [now[s].eq(done & self.host & (sel == s)) for s in range(k)]
        for event, per_adc in ((self.events.low, low), (self.events.high, high),
                               (self.events.clip, self.adc_sat)):
            m.d.comb += event.eq(Cat(*(per_adc[c // k] & now[c % k] for c in range(cfg.cols))))

    def _capture(self, m, acc, sel, plane, reading):
        """Accumulate the codes of the conversion that ends this cycle (MSB plane first;
        a device read has one integration)."""
        cfg = self.cfg
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        first = (plane == cfg.planes - 1) | reading
        codes = [self.codes[a * bits:(a + 1) * bits] for a in range(cfg.n_adc)]
        with m.Switch(sel):
            for s in range(k):
                with m.Case(s):
                    for a, code in enumerate(codes):
                        col = a * k + s
                        signed_code = (code ^ (1 << (bits - 1))).as_signed()
                        if cfg.planes == 1:
                            m.d.sync += acc[col].eq(signed_code)
                        else:
                            m.d.sync += acc[col].eq(signed_code + Mux(first, 0, acc[col] << 1))
