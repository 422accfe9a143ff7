"""Top level of the tile: host interfaces, sequencer, row encoders, ADC controllers."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import ColFlag, CorrectMode
from ..fixedpoint import GAIN_BITS, ONE, CalFormat
from .arbiter import Arbiter
from .axi import AxiLiteSignature, AxiStreamSignature
from .boundary import PREFIX, analogue_signature
from .calib import CalibrationEngine
from .correct import Corrector
from .csr import RegisterFile
from .engine import OpKind
from .program import ProgramEngine
from .regmap import REG_ADDR_WIDTH, register_map, windows
from .rowdrv import RowDriver
from .sar import SarController
from .sequencer import Sequencer
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
        regs = csr.regs
        m.submodules.loader = loader = InputLoader(cfg)
        m.submodules.rowdrv = rowdrv = RowDriver(cfg)
        m.submodules.sar = sar = SarController(cfg.n_adc, cfg.adc_bits)
        m.submodules.seq = seq = Sequencer(cfg)
        m.submodules.packer = packer = ResultPacker(cfg)
        m.submodules.corr = corr = Corrector(cfg)
        m.submodules.cal = cal = CalibrationEngine(cfg)
        m.submodules.prog = prog = ProgramEngine(cfg)
        m.submodules.arb = arb = Arbiter(cfg, ("cal", "prog"))

        wiring.connect(m, wiring.flipped(self.s_axil), csr.bus)
        wiring.connect(m, wiring.flipped(self.s_axis), loader.stream)
        wiring.connect(m, wiring.flipped(self.t_axis), prog.targets)
        wiring.connect(m, cal.seq, arb.cal)
        wiring.connect(m, prog.seq, arb.prog)
        wiring.connect(m, arb.op, seq.op)
        wiring.connect(m, seq.results, packer.vector)
        wiring.connect(m, packer.stream, corr.sink)
        wiring.connect(m, corr.source, arb.results)
        self._coefficients(m, csr, corr, cal)

        # Results leave through m_axis, or go to the engine that owns the pipeline (from
        # its first request on: results in flight when an engine starts are the host's
        # and drain to m_axis first); the program engine's status packets leave on m_axis.
        out = self.m_axis
        m.d.comb += [
            out.tdata.eq(arb.out.payload.data), out.tlast.eq(arb.out.payload.last),
            out.tvalid.eq(arb.out.valid), arb.out.ready.eq(out.tready),
            arb.host_valid.eq(loader.vector.valid), loader.vector.ready.eq(arb.host_take),
            arb.enable.eq(regs.ctrl.enable),
            arb.host_mode.eq(Mux(regs.ctrl.correct, CorrectMode.CORRECT, CorrectMode.RAW)),
            corr.mode.eq(arb.mode),
            corr.drift.eq(regs.drift_scale.value.value),
        ]

        # The vector of the operation the sequencer starts: the host's, zero input, DRIFT_X
        # on every row, or a device read (the selected row at 1, held on for the read
        # window, the others 0).
        op = arb.op.payload
        drift_x = regs.drift_x.value
        with m.Switch(op.kind):
            with m.Case(OpKind.HOST):
                m.d.comb += rowdrv.vector.eq(loader.vector.payload)
            with m.Case(OpKind.DRIFT):
                m.d.comb += [rowdrv.vector[i].eq(drift_x) for i in range(cfg.rows)]
            with m.Case(OpKind.READ):
                m.d.comb += [rowdrv.vector[i].eq(op.row == i) for i in range(cfg.rows)]

        # -- sequencer, row driver, SAR controllers, boundary ---------------------------------
        m.d.comb += [
            seq.ready.eq(ana.ready),
            seq.wait_in.eq(arb.wait),
            seq.timeout_limit.eq(regs.ready_timeout.cycles),
            arb.timeout.eq(seq.timeout),
            arb.ready.eq(ana.ready),
            rowdrv.load.eq(seq.row_load),
            rowdrv.drive.eq(seq.row_drive),
            rowdrv.step.eq(seq.row_step),
            rowdrv.hold.eq(seq.row_hold),
            sar.start.eq(seq.sar_start),
            seq.sar_done.eq(sar.done),
            seq.codes.eq(sar.result),
            seq.adc_sat.eq(ana.adc_sat),
            sar.cmp.eq(ana.adc_cmp),
            ana.row_en.eq(rowdrv.row_en),
            ana.row_neg.eq(rowdrv.row_neg),
            ana.adc_trial.eq(sar.trial),
            ana.adc_sample.eq(sar.sample),
            ana.adc_sel.eq(seq.adc_sel),
            ana.int_reset.eq(seq.int_reset),
            ana.ref_en.eq(seq.ref_en),
            ana.read_dev.eq(seq.read_dev),
            ana.read_neg.eq(seq.read_neg),
        ]
        busy = ~seq.idle | packer.busy | ~corr.idle
        m.d.comb += arb.idle.eq(~busy)

        # -- counters and status -----------------------------------------------------------
        cycle = Signal(32)
        last_start = Signal(32)
        mvm_count, drop_frame, drop_range, rail_count, clip_count, sat_count, timeouts = (
            Signal(32, name=n) for n in ("mvm_count", "drop_frame_count", "drop_range_count",
                                         "rail_count", "clip_count", "corr_sat_count",
                                         "timeout_count"))
        host_emit = seq.done & seq.host
        host_sat = Mux(arb.owned, 0, corr.saturated)
        latency, period = Signal(32), Signal(32)
        m.d.sync += cycle.eq(cycle + 1)
        with m.If(seq.started):
            m.d.sync += [last_start.eq(cycle), period.eq(cycle - last_start)]
        with m.If(seq.done):
            m.d.sync += latency.eq(cycle - last_start)
        for counter, event in ((mvm_count, host_emit), (rail_count, host_emit & seq.rail),
                               (clip_count, host_emit & seq.clip),
                               (drop_frame, loader.drop_frame), (drop_range, loader.drop_range),
                               (timeouts, seq.timeout)):
            with m.If(event):
                m.d.sync += counter.eq(counter + 1)
        m.d.sync += sat_count.eq(sat_count + host_sat)

        m.d.comb += [
            regs.status.busy.eq(busy),
            regs.status.done.set.eq(host_emit),
            regs.status.dropped.set.eq(loader.drop_frame | loader.drop_range),
            regs.status.rail.set.eq(host_emit & seq.rail),
            regs.status.clip.set.eq(host_emit & seq.clip),
            regs.status.sat.set.eq(host_sat != 0),
            regs.status.timeout.set.eq(seq.timeout),
            regs.mvm_count.count.eq(mvm_count),
            regs.drop_frame.count.eq(drop_frame),
            regs.drop_range.count.eq(drop_range),
            regs.rail_count.count.eq(rail_count),
            regs.clip_count.count.eq(clip_count),
            regs.corr_sat.count.eq(sat_count),
            regs.timeout_count.count.eq(timeouts),
            regs.latency.cycles.eq(latency),
            regs.period.cycles.eq(period),
            self.irq.eq(regs.ctrl.irq_en & (regs.status.done.value
                                            | regs.cal_status.done.value
                                            | regs.prog_status.done.value)),
        ]
        self._calibration(m, regs, cal, prog)
        self._program(m, regs, prog, cal, ana)
        self._col_flags(m, csr, seq.events)
        # Refused bus accesses: why, and the address of the last one.
        err_addr = Signal(REG_ADDR_WIDTH)
        with m.If(csr.err != 0):
            m.d.sync += err_addr.eq(csr.err_addr)
        m.d.comb += [regs.bus_error_addr.address.eq(err_addr),
                     regs.bus_error.reason.set.eq(csr.err)]
        # What a reset cuts short, recorded in bits the reset does not clear.
        rst = ResetSignal("sync")
        m.d.comb += [
            regs.aborted.mvm.set.eq(rst & ~arb.busy & (busy | loader.vector.valid)),
            regs.aborted.cal.set.eq(rst & cal.seq.busy),
            regs.aborted.prog.set.eq(rst & prog.seq.busy),
        ]
        return m

    def _calibration(self, m, regs, cal, prog):
        """Registers of the calibration engine."""
        start = regs.cal_ctrl.start
        m.d.comb += [
            cal.start.eq(start & ~prog.seq.busy),
            cal.phases.eq(regs.cal_ctrl.phases),
            cal.avg_log2.eq(regs.cal_ctrl.avg_log2),
            cal.ref.eq(regs.cal_ref.value),
            cal.drift_ref.eq(regs.drift_ref.value.value),
            regs.cal_status.busy.eq(cal.seq.busy),
            regs.cal_status.done.set.eq(cal.done),
            regs.cal_status.error.set.eq(cal.error | (start & prog.seq.busy)),
            regs.cal_status.bad.eq(cal.bad_count != 0),
            regs.bad_cols.count.eq(cal.bad_count),
            regs.drift_ref.value.we.eq(cal.drift_ref_we),
            regs.drift_ref.value.data.eq(cal.drift_ref_out),
            regs.drift_scale.value.we.eq(cal.drift_scale_we),
            regs.drift_scale.value.data.eq(cal.drift_scale_out),
        ]

    def _program(self, m, regs, prog, cal, ana):
        """Registers and boundary ports of the program-and-verify engine."""
        m.d.comb += [
            prog.start.eq(regs.prog_ctrl.start),
            prog.parallel.eq(regs.prog_ctrl.parallel),
            prog.correct.eq(regs.prog_ctrl.correct),
            prog.tol.eq(regs.prog_limits.tol),
            prog.max_iter.eq(regs.prog_limits.iterations),
            prog.width.eq(regs.prog_limits.width),
            prog.set_gain.eq(regs.prog_gain.set),
            prog.reset_gain.eq(regs.prog_gain.reset),
            prog.inhibit.eq(cal.seq.busy),
            regs.prog_status.busy.eq(prog.seq.busy),
            regs.prog_status.done.set.eq(prog.done),
            regs.prog_status.error.set.eq(prog.error),
            ana.prog_pulse.eq(prog.pulse),
            ana.prog_row.eq(prog.pulse_row),
            ana.prog_neg.eq(prog.pulse_neg),
            ana.prog_set.eq(prog.pulse_set),
            ana.prog_reset.eq(prog.pulse_reset),
            ana.prog_amp.eq(prog.pulse_amp),
            ana.prog_width.eq(prog.pulse_width),
        ]
        m.d.comb += [
            regs.prog_pulses.count.eq(prog.pulses),
            regs.prog_passed.count.eq(prog.passed),
            regs.prog_failed.count.eq(prog.failed),
            regs.prog_stuck.count.eq(prog.stuck),
            regs.prog_reads.count.eq(prog.reads),
            regs.prog_steps.count.eq(prog.steps),
            regs.prog_cycles.count.eq(prog.cycles),
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
            m.d.comb += [win.rdata.eq(host.data[lane_q]), win.lock.eq(cal.seq.busy)]
            value = win.wdata[:len(write.data[0])]
            if name == "offset":
                engine_write = (cal.off_waddr, cal.off_wen, cal.off_wdata)
            else:
                engine_write = (cal.gain_waddr, cal.gain_wen, cal.gain_wdata)
            with m.If(cal.seq.busy):
                m.d.comb += [write.addr.eq(engine_write[0]), write.en.eq(engine_write[1]),
                             write.data.eq(engine_write[2])]
            with m.Else():
                m.d.comb += [write.addr.eq(word), write.en.eq(Mux(win.we, 1 << lane, 0))]
                m.d.comb += [write.data[j].eq(value) for j in range(lanes)]
        # Column flags, read through the COL_STATUS window.
        flags = Signal(2)
        with m.If(csr.win.col_status.re):
            m.d.sync += flags.eq(cal.status.word_select(csr.win.col_status.addr, 2))
        m.d.comb += [csr.win.col_status.rdata.eq(flags), csr.win.col_status.lock.eq(cal.seq.busy)]

    def _col_flags(self, m, csr, events):
        """The COL_FLAGS window: per-column sticky bits, set by ``events`` (which win over
        a clear in the same cycle), cleared by writing 1s to the column's word (bits in
        :class:`~aimc.enums.ColFlag` order)."""
        cols = self.cfg.cols
        events = [events.low, events.high, events.clip]
        assert [f.name for f in ColFlag] == ["LOW", "HIGH", "CLIP"]
        flags = [Signal(cols, name=f"col_flags_{f.name.lower()}") for f in ColFlag]
        hit = Signal(cols)
        m.d.comb += hit.eq(Mux(csr.win.col_flags.we, Const(1, cols) << csr.win.col_flags.addr, 0))
        for i, (flag, event) in enumerate(zip(flags, events, strict=True)):
            clear = Mux(csr.win.col_flags.wdata[i], hit, 0)
            m.d.sync += flag.eq((flag & ~clear) | event)
        word = Signal(len(flags))
        with m.If(csr.win.col_flags.re):
            m.d.sync += word.eq(Cat(*(f.bit_select(csr.win.col_flags.addr, 1) for f in flags)))
        m.d.comb += [csr.win.col_flags.rdata.eq(word), csr.win.col_flags.lock.eq(0)]
