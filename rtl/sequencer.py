"""The sequencer: runs one analogue operation at a time (an MVM or a device read) on the row
drivers, the column integrators and the SAR controllers, and hands its results over."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import ResultKind
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
    """Schedules the analogue operations: forward MVMs (the host's, and the engines' with
    zero input or DRIFT_X), device reads, backward MVMs and pulsed updates.

    An operation starts from ``IDLE`` (or in the cycle its predecessor's results are handed
    over) when ``op`` is valid and the analogue half is ``ready``: the row driver loads the
    operation's vector and the integrators are reset (``int_reset``, with ``ref_en`` for
    the reference charge, ``read_dev``/``read_neg`` for a device read). Per bit plane
    (most significant first; one for PWM and for device reads) the rows are driven for
    ``drive_cycles`` cycles (``READ_CYCLES`` for a read; the last step is on the lines in the
    cycle that starts the SAR controllers), and each column group is converted in turn
    (``adc_bits`` cycles each; ``adc_sel`` selects the group member); a bit-serial plane's codes
    are added to the doubled sum of the planes before it. The integrator reset of each later
    plane falls in the first cycle of its drive (the cycle its predecessor's last conversion
    ends, the drivers take the new plane's first step), so a plane after the first costs
    ``drive_cycles`` plus its conversions. The results then wait on ``results`` until the packer
    takes them. With nothing stalling this is :attr:`TileConfig.mvm_period_cycles`
    per MVM. A backward MVM is the same schedule on the other side (``int_back`` with
    ``int_reset``; the column driver drives, the row ADCs convert, ``rows_per_adc`` groups):
    :attr:`TileConfig.bwd_period_cycles`. An update loads its vector into the column
    driver, starts the update engine (``upd_go``) and waits for its ``upd_done``; it has no
    results.

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
    col_load, col_drive : Out(1)
        The column driver, likewise (``row_step`` serves both).
    sar_start, row_sar_start : Out(1)
        Begin a conversion of every column ADC, or of every row ADC.
    sar_done, codes, adc_sat, row_sar_done, row_codes, row_adc_sat : In
        The SAR controllers' last step, their codes (offset binary), and the analogue half's
        integrator-clamp latches of the lines they convert; for the columns and the rows.
    upd_go : Out(1)
        Start the update engine.
    upd_done : In(1)
        The update engine finished.
    x_valid : Out(1)
        The row driver holds the host's last forward vector (no engine's operation since).
    int_reset, int_back, ref_en, read_dev, read_neg, adc_sel, adc_row_sel : Out
        The analogue boundary ports of the sequencer (see :mod:`aimc.rtl.boundary`).
    results : Out(stream.Signature(result_vector))
        Raw results of the operation (signed codes; the shift-and-add sum for bit-serial).
    started, done : Out(1)
        An operation starts; its results are handed over (``results`` taken).
    kind : Out(OpKind)
        The kind of the operation in flight.
    host : Out(1)
        The operation in flight is a host's MVM (forward or backward).
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
            "col_load": Out(1),
            "col_drive": Out(1),
            "sar_start": Out(1),
            "sar_done": In(1),
            "codes": In(cfg.n_adc * cfg.adc_bits),
            "adc_sat": In(cfg.n_adc),
            "row_sar_start": Out(1),
            "row_sar_done": In(1),
            "row_codes": In(cfg.n_row_adc * cfg.adc_bits),
            "row_adc_sat": In(cfg.n_row_adc),
            "upd_go": Out(1),
            "upd_done": In(1),
            "x_valid": Out(1),
            "int_reset": Out(1),
            "int_back": Out(1),
            "ref_en": Out(1),
            "read_dev": Out(1),
            "read_neg": Out(1),
            "adc_sel": Out(cfg.sel_bits),
            "adc_row_sel": Out(cfg.row_sel_bits),
            "results": Out(stream.Signature(result_vector(cfg))),
            "started": Out(1),
            "done": Out(1),
            "kind": Out(OpKind),
            "host": Out(1),
            "rail": Out(1),
            "clip": Out(1),
            "events": Out(col_events(cfg)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        op = self.op
        t = Signal(range(max(cfg.drive_cycles, READ_CYCLES, 2)))
        plane = Signal(range(max(cfg.planes, 2)))
        sel = Signal(max(cfg.sel_bits, cfg.row_sel_bits))
        acc = self.results.payload.data          # two's complement, one per column or row
        inject = Signal()   # this MVM injects the reference charge in every integration
        reading = Signal()  # this operation is a device read (one integration, one row)
        back = self.int_back  # this operation is a backward MVM (held through it)
        updating = Signal()   # the update engine was started in this UPDATE state
        rail_hit, clip_hit = self.rail, self.clip
        # The SAR bank of this operation's side, and its group size.
        sar_done = Mux(back, self.row_sar_done, self.sar_done)
        last_sel = Mux(back, cfg.rows_per_adc - 1, cfg.cols_per_adc - 1)

        # The bit plane the line drivers drive: the operation's first, then, from the
        # plane's CONV_START on, the next one, which the last conversion cycle of the plane
        # hands to the drivers with the integrator reset (a register: the step is defined
        # from reset on, whatever the simulator's start-up order of the logic).
        drive_plane = Signal.like(plane)
        m.d.comb += [
            self.adc_sel.eq(sel),
            self.adc_row_sel.eq(sel),
            self.row_step.eq(t if cfg.input_mode == "pwm" else drive_plane),
            self.row_hold.eq(reading),
            self.results.payload.kind.eq(Mux(back, ResultKind.BACKWARD, ResultKind.FORWARD)),
        ]

        def start_conversions():
            m.d.comb += [self.sar_start.eq(~back), self.row_sar_start.eq(back)]

        with m.FSM() as fsm:
            def begin_if_ready():
                # Take the operation and reset the integrators for its first plane (an
                # update starts the update engine instead).
                kind = op.payload.kind
                read = kind == OpKind.READ
                # Backward MVMs and updates exist on training tiles only.
                backward = (kind == OpKind.BACKWARD) if cfg.training else Const(0)
                update = (kind == OpKind.UPDATE) if cfg.training else Const(0)
                with m.If(op.valid & self.ready):
                    m.d.comb += [op.ready.eq(1), self.started.eq(1),
                                 self.row_load.eq(~backward & ~update),
                                 self.col_load.eq(backward | update)]
                    m.d.sync += [self.kind.eq(kind), t.eq(0),
                                 plane.eq(Mux(read, 0, cfg.planes - 1)),
                                 drive_plane.eq(Mux(read, 0, cfg.planes - 1)),
                                 rail_hit.eq(0), clip_hit.eq(0),
                                 self.host.eq((kind == OpKind.FORWARD) | backward),
                                 reading.eq(read), back.eq(backward),
                                 inject.eq(op.payload.inject),
                                 self.read_neg.eq(read & op.payload.neg)]
                    with m.If(kind == OpKind.FORWARD):
                        m.d.sync += self.x_valid.eq(1)
                    with m.Elif(~backward & ~update):
                        m.d.sync += self.x_valid.eq(0)
                    with m.If(update):
                        m.next = "UPDATE"
                    with m.Else():
                        m.d.sync += [self.int_reset.eq(1), self.ref_en.eq(op.payload.inject),
                                     self.read_dev.eq(read)]
                        m.next = "DRIVE"

            with m.State("IDLE"):
                begin_if_ready()
            with m.State("DRIVE"):
                m.d.comb += [self.row_drive.eq(~back), self.col_drive.eq(back)]
                m.d.sync += [self.int_reset.eq(0), self.ref_en.eq(0), self.read_dev.eq(0),
                             self.read_neg.eq(0), t.eq(t + 1)]
                with m.If(t == Mux(reading, READ_CYCLES - 1, cfg.drive_cycles - 1)):
                    m.next = "CONV_START"
            with m.State("CONV_START"):
                start_conversions()
                m.d.sync += [sel.eq(0), self.int_reset.eq(0), self.ref_en.eq(0),
                             drive_plane.eq(plane - 1)]
                m.next = "CONVERT"
            with m.State("CONVERT"):
                with m.If(sar_done):
                    self._capture(m, acc, sel, plane, reading, back)
                    with m.If(sel != last_sel):
                        start_conversions()
                        m.d.sync += sel.eq(sel + 1)
                    with m.Elif(plane != 0):
                        m.d.comb += [self.row_drive.eq(~back), self.col_drive.eq(back)]
                        m.d.sync += [self.int_reset.eq(1), self.ref_en.eq(inject), t.eq(1),
                                     plane.eq(plane - 1)]
                        m.next = "DRIVE" if cfg.drive_cycles > 1 else "CONV_START"
                    with m.Else():
                        m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.results.valid.eq(1)
                with m.If(self.results.ready):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                    begin_if_ready()
            with m.State("UPDATE"):
                m.d.comb += self.upd_go.eq(~updating)
                m.d.sync += updating.eq(1)
                with m.If(self.upd_done):
                    m.d.sync += updating.eq(0)
                    m.next = "IDLE"
        # Continuous assignments (valid from time zero in every simulator).
        can_start = Signal()  # the sequencer is where it takes the next operation
        m.d.comb += [
            can_start.eq(fsm.ongoing("IDLE") | (fsm.ongoing("EMIT") & self.results.ready)),
            self.idle.eq(fsm.ongoing("IDLE")),
        ]
        self._flag(m, sel, fsm.ongoing("CONVERT") & sar_done, back)

        # -- waiting for the analogue half ------------------------------------------------
        # An operation waits while ready is low: a start or an engine's own step. After
        # timeout_limit cycles of waiting it is abandoned (by whoever owns it).
        waiting = ~self.ready & ((can_start & op.valid) | self.wait_in)
        waited = Signal(16)
        # The comparison with the limit is registered (``at_limit``: this cycle of waiting
        # reaches ``timeout_limit``), so that the count's adder and comparator are not in
        # series with what a timeout aborts: each cycle of waiting is held against the limit
        # of the cycle before (a write of READY_TIMEOUT counts from the next cycle). The
        # comparison is "at least", not "equal": a limit lowered below the cycles already
        # waited ends the wait at once (with "equal" it waited for the count to wrap).
        at_limit = Signal()
        m.d.comb += self.timeout.eq(waiting & at_limit)
        with m.If(waiting & ~self.timeout):
            m.d.sync += [waited.eq(waited + 1), at_limit.eq(waited + 2 >= self.timeout_limit)]
        with m.Else():
            m.d.sync += [waited.eq(0), at_limit.eq(self.timeout_limit <= 1)]
        return m

    def _flag(self, m, sel, done, back):
        """Rail codes and integrator clamps of the conversions that end when ``done``: for
        the operation (``rail``, ``clip``) and per column (``events``, host forward MVMs
        only). Continuous logic, outside the FSM."""
        cfg = self.cfg
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        # Signals, not expressions: each column below takes one bit, and a bit of a Cat
        # expression would repeat the whole Cat in the netlist for every column.
        rails = {}
        sides = [("col", self.codes, cfg.n_adc)]
        if cfg.training:
            sides.append(("row", self.row_codes, cfg.n_row_adc))
        for side, codes, n in sides:
            per = [codes[a * bits:(a + 1) * bits] for a in range(n)]
            low, high = Signal(n, name=f"{side}_low"), Signal(n, name=f"{side}_high")
            m.d.comb += [low.eq(Cat(*(c == 0 for c in per))),
                         high.eq(Cat(*(c == (1 << bits) - 1 for c in per)))]
            rails[side] = (low, high)
        col_low, col_high = rails["col"]
        rail, clamp = (col_low | col_high).any(), self.adc_sat.any()
        if cfg.training:
            row_low, row_high = rails["row"]
            rail = Mux(back, (row_low | row_high).any(), rail)
            clamp = Mux(back, self.row_adc_sat.any(), clamp)
        with m.If(done & rail):
            m.d.sync += self.rail.eq(1)
        with m.If(done & clamp):
            m.d.sync += self.clip.eq(1)
        # Column c is converted by ADC c // k when sel is c % k.
        now = [Signal(name=f"flag_sel{s}") for s in range(k)]
        m.d.comb += [now[s].eq(done & self.host & ~back & (sel == s)) for s in range(k)]
        for event, per_adc in ((self.events.low, col_low), (self.events.high, col_high),
                               (self.events.clip, self.adc_sat)):
            m.d.comb += event.eq(Cat(*(per_adc[c // k] & now[c % k] for c in range(cfg.cols))))

    def _capture(self, m, acc, sel, plane, reading, back):
        """Accumulate the codes of the conversion that ends this cycle (MSB plane first;
        a device read has one integration): the columns' codes, or the rows' in a
        backward MVM."""
        cfg = self.cfg
        bits = cfg.adc_bits
        first = (plane == cfg.planes - 1) | reading

        def accumulate(line, code):
            signed_code = (code ^ (1 << (bits - 1))).as_signed()
            if cfg.planes == 1:
                m.d.sync += acc[line].eq(signed_code)
            else:
                m.d.sync += acc[line].eq(signed_code + Mux(first, 0, acc[line] << 1))

        sides = [(False, self.codes, cfg.n_adc, cfg.cols_per_adc)]
        if cfg.training:
            sides.append((True, self.row_codes, cfg.n_row_adc, cfg.rows_per_adc))
        for side_back, codes, n, k in sides:
            with m.If(back if side_back else ~back):
                with m.Switch(sel):
                    for s in range(k):
                        with m.Case(s):
                            for a in range(n):
                                accumulate(a * k + s, codes[a * bits:(a + 1) * bits])
