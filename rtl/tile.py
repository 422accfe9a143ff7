"""Top level of the tile: host interfaces, sequencer, row encoders, ADC controllers."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..fixedpoint import GAIN_BITS, ONE, CalFormat
from ..programming import READ_CYCLES
from .axi import AxiLiteSignature, AxiStreamSignature
from .boundary import PREFIX, analogue_signature
from .calib import CalibrationEngine
from .correct import MODE_CORRECT, MODE_RAW, Corrector
from .csr import RegisterFile
from .program import ProgramEngine
from .regmap import REG_ADDR_WIDTH, register_map, windows
from .rowdrv import RowDriver
from .sar import SarController
from .stream import InputLoader, ResultPacker

__all__ = ["Tile"]


class Tile(wiring.Component):
    """The digital periphery of one crossbar tile.

    An MVM starts when ``CTRL.enable`` is set and a complete input vector has arrived on
    ``s_axis``. The sequencer resets the column integrators, drives the rows (PWM window,
    or one cycle per bit plane), converts every column with the SAR controllers (one
    conversion per column group member when ADCs are shared), accumulates bit planes by
    shift-and-add, and hands the results through the corrector (per-column offset and
    gain, global drift scale; or raw) to ``m_axis``. The next vector loads while the
    current one is in the analogue phase. The calibration engine, once started, takes the
    sequencer for its own MVMs and the corrector's output for their results.

    Attributes
    ----------
    s_axil : In(AxiLiteSignature)
        Control and status registers (see :func:`aimc.rtl.regmap.register_map`).
    s_axis : In(AxiStreamSignature)
        Input vectors.
    m_axis : Out(AxiStreamSignature)
        Result vectors.
    irq : Out(1)
        Interrupt: ``CTRL.irq_en & STATUS.done``.
    ana : Out(analogue signature)
        The analogue boundary (see :mod:`aimc.rtl.boundary`).

    Parameters
    ----------
    cfg : TileConfig
    """

    def __init__(self, cfg: TileConfig | None = None):
        cfg = TileConfig() if cfg is None else cfg
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg = cfg
        self.registers = register_map(cfg)
        self.windows = windows(cfg)
        super().__init__({
            "s_axil": In(AxiLiteSignature(REG_ADDR_WIDTH)),
            "s_axis": In(AxiStreamSignature(cfg.in_data_width)),
            "m_axis": Out(AxiStreamSignature(cfg.out_data_width)),
            "t_axis": In(AxiStreamSignature(cfg.tgt_data_width)),
            "irq": Out(1),
            PREFIX: Out(analogue_signature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ana = getattr(self, PREFIX)

        m.submodules.csr = csr = RegisterFile(self.registers, self.windows, cfg.cols)
        m.submodules.loader = loader = InputLoader(cfg)
        m.submodules.rowdrv = rowdrv = RowDriver(cfg)
        m.submodules.sar = sar = SarController(cfg.n_adc, cfg.adc_bits)
        m.submodules.packer = packer = ResultPacker(cfg)
        m.submodules.corr = corr = Corrector(cfg)
        m.submodules.cal = cal = CalibrationEngine(cfg)
        m.submodules.prog = prog = ProgramEngine(cfg)

        wiring.connect(m, wiring.flipped(self.s_axil), csr.bus)
        wiring.connect(m, wiring.flipped(self.s_axis), loader.stream)
        wiring.connect(m, packer.stream, corr.sink)
        wiring.connect(m, wiring.flipped(self.t_axis), prog.targets)
        self._coefficients(m, csr, corr, cal)

        # Results leave through m_axis, or go to the calibration or the program-and-verify
        # engine while it owns the pipeline (from its first request on: results in flight
        # when an engine starts are the host's and drain to m_axis first); the latter's
        # per-row status packets leave through m_axis.
        out, src, eng, pv, st = self.m_axis, corr.source, cal.results, prog.results, prog.status
        m.d.comb += [
            out.tdata.eq(Mux(prog.owns, st.tdata, src.tdata)),
            out.tlast.eq(Mux(prog.owns, st.tlast, src.tlast)),
            out.tvalid.eq(Mux(prog.owns, st.tvalid, src.tvalid & ~cal.owns)),
            st.tready.eq(prog.owns & out.tready),
            eng.tdata.eq(src.tdata), eng.tlast.eq(src.tlast),
            eng.tvalid.eq(src.tvalid & cal.owns),
            pv.tdata.eq(src.tdata), pv.tlast.eq(src.tlast),
            pv.tvalid.eq(src.tvalid & prog.owns),
            src.tready.eq(Mux(cal.owns, eng.tready, Mux(prog.owns, pv.tready, out.tready))),
        ]
        m.d.comb += [
            corr.mode.eq(Mux(cal.owns, cal.mode, Mux(prog.owns, prog.mode,
                             Mux(csr.regs.ctrl.correct, MODE_CORRECT, MODE_RAW)))),
            corr.drift.eq(csr.regs.drift_scale.value.value),
        ]

        # The engine's MVMs: zero input, or DRIFT_X on every row.
        lw = cfg.in_lane_width
        drift_x = csr.regs.drift_x.value[:lw]
        cal_vector = Mux(cal.zero_input, 0, Cat(*([drift_x] * cfg.rows)))
        # Device reads: the selected row at 1 (held on for the read window), the others 0.
        read_vector = Cat(*(Cat(prog.read_row == i, Const(0, lw - 1)) for i in range(cfg.rows)))

        m.d.comb += [
            rowdrv.vector.eq(Mux(prog.busy, read_vector,
                                 Mux(cal.busy, cal_vector, loader.vector))),
            ana.row_en.eq(rowdrv.row_en),
            ana.row_neg.eq(rowdrv.row_neg),
            ana.adc_trial.eq(sar.trial),
            ana.adc_sample.eq(sar.sample),
            sar.cmp.eq(ana.adc_cmp),
        ]

        # -- sequencer ---------------------------------------------------------------------
        k = cfg.cols_per_adc
        t = Signal(range(max(cfg.drive_cycles, READ_CYCLES, 2)))
        plane = Signal(range(max(cfg.planes, 2)))
        sel = Signal(cfg.sel_bits)
        acc = Signal(data.ArrayLayout(cfg.result_bits, cfg.cols))  # two's complement
        rail_hit = Signal()  # a conversion of this MVM ended at a rail code
        clip_hit = Signal()  # an integrator of this MVM clamped
        # Per-column events of the conversions ending this cycle (host MVMs): lowest code,
        # highest code, integrator clamped.
        col_events = [Signal(cfg.cols, name=f"col_{n}") for n in ("low", "high", "clip")]
        start = Signal()  # take a vector and begin an MVM this cycle
        emit = Signal()   # hand the results to the packer this cycle

        m.d.comb += [
            ana.adc_sel.eq(sel),
            rowdrv.step.eq(t if cfg.input_mode == "pwm" else plane),
        ]

        inject = Signal()  # this MVM injects the reference charge in every integration
        host_mvm = Signal()  # this MVM is the host's (not an engine's)
        reading = Signal()   # this operation is a device read (one integration, one row)
        m.d.comb += rowdrv.hold.eq(reading)

        # What would start now if the analogue half were ready (host vectors first).
        host_want = csr.regs.ctrl.enable & loader.valid & ~cal.busy & ~prog.busy
        want = host_want | cal.request | prog.request
        can_start = Signal()  # the sequencer is where it takes the next operation
        timeout = Signal()    # the operation waiting for ready is abandoned this cycle

        with m.FSM() as fsm:
            def begin_if_ready():
                # Take the waiting vector (or the engine's request) and reset the
                # integrators for its first plane.
                host_go = host_want & ana.ready
                cal_go = ~host_want & cal.request
                read_go = ~host_want & ~cal.request & prog.request
                with m.If(timeout & host_want):
                    m.d.comb += loader.take.eq(1)  # dropped, counted in TIMEOUT_COUNT
                with m.If(want & ana.ready):
                    m.d.comb += [start.eq(1), loader.take.eq(host_go), rowdrv.load.eq(1),
                                 cal.accepted.eq(cal_go), prog.accepted.eq(read_go)]
                    m.d.sync += [ana.int_reset.eq(1), t.eq(0),
                                 plane.eq(Mux(read_go, 0, cfg.planes - 1)),
                                 rail_hit.eq(0), clip_hit.eq(0), host_mvm.eq(host_go),
                                 reading.eq(read_go),
                                 inject.eq(cal_go & cal.inject),
                                 ana.ref_en.eq(cal_go & cal.inject),
                                 ana.read_dev.eq(read_go),
                                 ana.read_neg.eq(read_go & prog.read_neg)]
                    m.next = "DRIVE"

            with m.State("IDLE"):
                begin_if_ready()
            with m.State("DRIVE"):
                m.d.comb += rowdrv.drive.eq(1)
                m.d.sync += [ana.int_reset.eq(0), ana.ref_en.eq(0), ana.read_dev.eq(0),
                             ana.read_neg.eq(0), t.eq(t + 1)]
                with m.If(t == Mux(reading, READ_CYCLES - 1, cfg.drive_cycles - 1)):
                    m.next = "CONV_START"
            with m.State("CONV_START"):
                m.d.comb += sar.start.eq(1)
                m.d.sync += sel.eq(0)
                m.next = "CONVERT"
            with m.State("CONVERT"):
                with m.If(sar.done):
                    self._capture(m, sar, acc, sel, plane, reading)
                    with m.If(sel != k - 1):
                        m.d.comb += sar.start.eq(1)
                        m.d.sync += sel.eq(sel + 1)
                    with m.Elif(plane != 0):
                        m.d.sync += [ana.int_reset.eq(1), ana.ref_en.eq(inject), t.eq(0),
                                     plane.eq(plane - 1)]
                        m.next = "DRIVE"
                    with m.Else():
                        m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(packer.ready):
                    m.d.comb += [emit.eq(1), packer.load.eq(1)]
                    m.next = "IDLE"
                    begin_if_ready()
        # A continuous assignment (valid from time zero in every simulator).
        m.d.comb += can_start.eq(fsm.ongoing("IDLE") | (fsm.ongoing("EMIT") & packer.ready))
        self._flag(m, sar, ana.adc_sat, sel, fsm.ongoing("CONVERT") & sar.done, host_mvm,
                   rail_hit, clip_hit, col_events)
        busy = ~fsm.ongoing("IDLE") | packer.busy | ~corr.idle
        idle = fsm.ongoing("IDLE") & ~packer.busy & corr.idle
        m.d.comb += [cal.pipeline_idle.eq(idle), prog.pipeline_idle.eq(idle)]

        m.d.comb += packer.results.eq(Cat(*(_sign_extend(acc[c], cfg.out_lane_width)
                                            for c in range(cfg.cols))))

        # -- waiting for the analogue half ----------------------------------------------------
        # An operation waits while ready is low: a start (host vector or engine request) or
        # a pulse step. After READY_TIMEOUT cycles of waiting it is abandoned: the host's
        # vector is dropped, an engine ends its run with an error.
        waiting = ~ana.ready & ((can_start & want) | prog.pulse_wait)
        waited = Signal(16)
        m.d.comb += timeout.eq(waiting & (waited == csr.regs.ready_timeout.cycles - 1))
        with m.If(waiting & ~timeout):
            m.d.sync += waited.eq(waited + 1)
        with m.Else():
            m.d.sync += waited.eq(0)
        m.d.comb += [
            cal.abort.eq(timeout & cal.request),
            prog.abort.eq(timeout & (prog.request | prog.pulse_wait)),
            prog.ready.eq(ana.ready),
        ]
        timeout_count = Signal(32)
        with m.If(timeout):
            m.d.sync += timeout_count.eq(timeout_count + 1)
        m.d.comb += [csr.regs.status.timeout.set.eq(timeout),
                     csr.regs.timeout_count.count.eq(timeout_count)]

        # -- counters and status -----------------------------------------------------------
        cycle = Signal(32)
        last_start = Signal(32)
        mvm_count, drop_frame, drop_range, rail_count, clip_count, sat_count = (
            Signal(32, name=n) for n in ("mvm_count", "drop_frame_count", "drop_range_count",
                                         "rail_count", "clip_count", "corr_sat_count"))
        host_emit = emit & host_mvm
        host_sat = Mux(cal.owns | prog.owns, 0, corr.saturated)
        latency, period = Signal(32), Signal(32)
        m.d.sync += cycle.eq(cycle + 1)
        with m.If(start):
            m.d.sync += [last_start.eq(cycle), period.eq(cycle - last_start)]
        with m.If(emit):
            m.d.sync += latency.eq(cycle - last_start)
        for counter, event in ((mvm_count, host_emit), (rail_count, host_emit & rail_hit),
                               (clip_count, host_emit & clip_hit),
                               (drop_frame, loader.drop_frame), (drop_range, loader.drop_range)):
            with m.If(event):
                m.d.sync += counter.eq(counter + 1)
        m.d.sync += sat_count.eq(sat_count + host_sat)

        m.d.comb += [
            csr.regs.status.busy.eq(busy),
            csr.regs.status.done.set.eq(host_emit),
            csr.regs.status.dropped.set.eq(loader.drop_frame | loader.drop_range),
            csr.regs.status.rail.set.eq(host_emit & rail_hit),
            csr.regs.status.clip.set.eq(host_emit & clip_hit),
            csr.regs.clip_count.count.eq(clip_count),
            csr.regs.status.sat.set.eq(host_sat != 0),
            csr.regs.corr_sat.count.eq(sat_count),
            cal.start.eq(csr.regs.cal_ctrl.start & ~prog.busy),
            cal.phases.eq(csr.regs.cal_ctrl.phases),
            cal.avg_log2.eq(csr.regs.cal_ctrl.avg_log2),
            cal.ref.eq(csr.regs.cal_ref.value),
            cal.drift_ref.eq(csr.regs.drift_ref.value.value),
            csr.regs.cal_status.busy.eq(cal.busy),
            csr.regs.cal_status.done.set.eq(cal.done),
            csr.regs.cal_status.error.set.eq(cal.error | (csr.regs.cal_ctrl.start & prog.busy)),
            csr.regs.cal_status.bad.eq(cal.bad_count != 0),
            csr.regs.bad_cols.count.eq(cal.bad_count),
            csr.regs.drift_ref.value.we.eq(cal.drift_ref_we),
            csr.regs.drift_ref.value.data.eq(cal.drift_ref_out),
            csr.regs.drift_scale.value.we.eq(cal.drift_scale_we),
            csr.regs.drift_scale.value.data.eq(cal.drift_scale_out),
            csr.regs.mvm_count.count.eq(mvm_count),
            csr.regs.drop_frame.count.eq(drop_frame),
            csr.regs.drop_range.count.eq(drop_range),
            csr.regs.rail_count.count.eq(rail_count),
            csr.regs.latency.cycles.eq(latency),
            csr.regs.period.cycles.eq(period),
            self.irq.eq(csr.regs.ctrl.irq_en & (csr.regs.status.done.value
                                                 | csr.regs.cal_status.done.value
                                                 | csr.regs.prog_status.done.value)),
        ]
        self._program(m, csr, prog, cal, ana)
        self._col_flags(m, csr, col_events)
        # Refused bus accesses: why, and the address of the last one.
        err_addr = Signal(REG_ADDR_WIDTH)
        with m.If(csr.err != 0):
            m.d.sync += err_addr.eq(csr.err_addr)
        m.d.comb += [csr.regs.bus_error_addr.address.eq(err_addr),
                     csr.regs.bus_error.reason.set.eq(csr.err)]
        # What a reset cuts short, recorded in bits the reset does not clear.
        rst = ResetSignal("sync")
        engines = cal.busy | prog.busy
        m.d.comb += [
            csr.regs.aborted.mvm.set.eq(rst & ~engines & (busy | loader.valid)),
            csr.regs.aborted.cal.set.eq(rst & cal.busy),
            csr.regs.aborted.prog.set.eq(rst & prog.busy),
        ]
        return m

    def _program(self, m, csr, prog, cal, ana):
        """Registers and boundary ports of the program-and-verify engine."""
        m.d.comb += [
            prog.start.eq(csr.regs.prog_ctrl.start),
            prog.parallel.eq(csr.regs.prog_ctrl.parallel),
            prog.correct.eq(csr.regs.prog_ctrl.correct),
            prog.tol.eq(csr.regs.prog_limits.tol),
            prog.max_iter.eq(csr.regs.prog_limits.iterations),
            prog.width.eq(csr.regs.prog_limits.width),
            prog.set_gain.eq(csr.regs.prog_gain.set),
            prog.reset_gain.eq(csr.regs.prog_gain.reset),
            prog.inhibit.eq(cal.busy),
            csr.regs.prog_status.busy.eq(prog.busy),
            csr.regs.prog_status.done.set.eq(prog.done),
            csr.regs.prog_status.error.set.eq(prog.error),
            ana.prog_pulse.eq(prog.pulse),
            ana.prog_row.eq(prog.pulse_row),
            ana.prog_neg.eq(prog.pulse_neg),
            ana.prog_set.eq(prog.pulse_set),
            ana.prog_reset.eq(prog.pulse_reset),
            ana.prog_amp.eq(prog.pulse_amp),
            ana.prog_width.eq(prog.pulse_width),
        ]
        m.d.comb += [
            csr.regs.prog_pulses.count.eq(prog.pulses),
            csr.regs.prog_passed.count.eq(prog.passed),
            csr.regs.prog_failed.count.eq(prog.failed),
            csr.regs.prog_stuck.count.eq(prog.stuck),
            csr.regs.prog_reads.count.eq(prog.reads),
            csr.regs.prog_steps.count.eq(prog.steps),
            csr.regs.prog_cycles.count.eq(prog.cycles),
        ]

    def _coefficients(self, m, csr, corr, cal):
        """Offset and gain memories (one word of ``lanes`` entries per result beat) with
        their ports: corrector, engine, and the host's windows; and the column flags."""
        cfg, fmt = self.cfg, CalFormat(self.cfg)
        lanes, depth = cfg.lanes, max(cfg.out_beats, 2)
        lane_bits = lanes.bit_length() - 1
        mems = {
            "offset": Memory(shape=data.ArrayLayout(signed(fmt.off_bits), lanes), depth=depth,
                             init=[]),
            "gain": Memory(shape=data.ArrayLayout(unsigned(GAIN_BITS), lanes), depth=depth,
                           init=[[ONE] * lanes] * depth),
        }
        for name, mem in mems.items():
            m.submodules[name + "_mem"] = mem
            to_corr, host, write = mem.read_port(), mem.read_port(), mem.write_port(granularity=1)
            m.d.comb += [to_corr.addr.eq(corr.coef_addr), to_corr.en.eq(corr.coef_en),
                         getattr(corr, name).eq(to_corr.data)]
            if name == "offset":
                engine = mem.read_port()
                m.d.comb += [engine.addr.eq(cal.off_raddr), cal.off_rdata.eq(engine.data)]
            # Host window: column c is lane c % lanes of word c // lanes.
            win = csr.win.offset if name == "offset" else csr.win.gain
            word, lane = win.addr >> lane_bits, win.addr[:lane_bits] if lane_bits else Const(0, 1)
            lane_q = Signal.like(lane)
            m.d.comb += [host.addr.eq(word), host.en.eq(win.re)]
            with m.If(win.re):
                m.d.sync += lane_q.eq(lane)
            m.d.comb += [win.rdata.eq(host.data[lane_q]), win.lock.eq(cal.busy)]
            value = win.wdata[:len(write.data[0])]
            if name == "offset":
                engine_write = (cal.off_waddr, cal.off_wen, cal.off_wdata)
            else:
                engine_write = (cal.gain_waddr, cal.gain_wen, cal.gain_wdata)
            with m.If(cal.busy):
                m.d.comb += [write.addr.eq(engine_write[0]), write.en.eq(engine_write[1]),
                             write.data.eq(engine_write[2])]
            with m.Else():
                m.d.comb += [write.addr.eq(word), write.en.eq(Mux(win.we, 1 << lane, 0))]
                m.d.comb += [write.data[j].eq(value) for j in range(lanes)]
        # Column flags, read through the COL_STATUS window.
        flags = Signal(2)
        with m.If(csr.win.col_status.re):
            m.d.sync += flags.eq(cal.status.word_select(csr.win.col_status.addr, 2))
        m.d.comb += [csr.win.col_status.rdata.eq(flags), csr.win.col_status.lock.eq(cal.busy)]

    def _col_flags(self, m, csr, events):
        """The COL_FLAGS window: per-column sticky bits, set by ``events`` (which win over
        a clear in the same cycle), cleared by writing 1s to the column's word."""
        cols = self.cfg.cols
        flags = [Signal(cols, name=f"col_flags_{i}") for i in range(len(events))]
        hit = Signal(cols)
        m.d.comb += hit.eq(Mux(csr.win.col_flags.we, Const(1, cols) << csr.win.col_flags.addr, 0))
        for i, (flag, event) in enumerate(zip(flags, events, strict=True)):
            clear = Mux(csr.win.col_flags.wdata[i], hit, 0)
            m.d.sync += flag.eq((flag & ~clear) | event)
        word = Signal(len(flags))
        with m.If(csr.win.col_flags.re):
            m.d.sync += word.eq(Cat(*(f.bit_select(csr.win.col_flags.addr, 1) for f in flags)))
        m.d.comb += [csr.win.col_flags.rdata.eq(word), csr.win.col_flags.lock.eq(0)]

    def _flag(self, m, sar, adc_sat, sel, done, host, rail_hit, clip_hit, events):
        """Rail codes and integrator clamps of the conversions that end when ``done``: for
        the MVM (``rail_hit``, ``clip_hit``) and per column (``events``, host MVMs only).
        Continuous logic, outside the sequencer's FSM."""
        cfg = self.cfg
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        codes = [sar.result[a * bits:(a + 1) * bits] for a in range(cfg.n_adc)]
        # Signals, not expressions: each column below takes one bit, and a bit of a Cat
        # expression would repeat the whole Cat in the netlist for every column.
        low, high = Signal(cfg.n_adc), Signal(cfg.n_adc)
        m.d.comb += [low.eq(Cat(*(c == 0 for c in codes))),
                     high.eq(Cat(*(c == (1 << bits) - 1 for c in codes)))]
        with m.If(done & (low | high).any()):
            m.d.sync += rail_hit.eq(1)
        with m.If(done & adc_sat.any()):
            m.d.sync += clip_hit.eq(1)
        # Column c is converted by ADC c // k when sel is c % k.
        now = [Signal(name=f"flag_sel{s}") for s in range(k)]
        m.d.comb += [now[s].eq(done & host & (sel == s)) for s in range(k)]
        for event, per_adc in zip(events, (low, high, adc_sat), strict=True):
            m.d.comb += event.eq(Cat(*(per_adc[c // k] & now[c % k] for c in range(cfg.cols))))

    def _capture(self, m, sar, acc, sel, plane, reading):
        """Accumulate the codes of the conversion that ends this cycle (MSB plane first;
        a device read has one integration)."""
        cfg = self.cfg
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        first = (plane == cfg.planes - 1) | reading
        codes = [sar.result[a * bits:(a + 1) * bits] for a in range(cfg.n_adc)]
        with m.Switch(sel):
            for s in range(k):
                with m.Case(s):
                    for a, code in enumerate(codes):
                        col = a * k + s
                        signed_code = (code ^ (1 << (bits - 1))).as_signed()
                        if cfg.planes == 1:
                            m.d.sync += acc[col].eq(signed_code)
                        else:
                            prev = acc[col].as_signed()
                            m.d.sync += acc[col].eq(signed_code + Mux(first, 0, prev << 1))


def _sign_extend(value, width):
    """Two's complement ``value`` widened to ``width`` bits."""
    if width == len(value):
        return value
    return Cat(value, value[-1].replicate(width - len(value)))
