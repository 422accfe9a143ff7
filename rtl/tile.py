"""Top level of the tile: host interfaces, sequencer, row encoders, ADC controllers."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import ColFlag, CorrectMode, DriftRow
from ..fixedpoint import GAIN_BITS, ONE, CalFormat
from .arbiter import Arbiter
from .axi import AxiLiteSignature, AxiStreamSignature
from .boundary import PREFIX, analogue_signature
from .calib import CalibrationEngine
from .correct import Corrector, coef_words
from .csr import RegisterFile
from .engine import OpKind
from .program import ProgramEngine
from .regmap import REG_ADDR_WIDTH, register_map, windows
from .rowdrv import LineDriver
from .sar import SarController
from .sequencer import Sequencer
from .stream import KIND_BITS, InputLoader, ResultPacker
from .update import UpdateEngine

__all__ = ["PORT_TO_PORT_EXTRA", "Tile"]

#: Cycles from the rising edge that takes a vector's last beat on s_axis to the one that
#: takes its first result beat on m_axis, beyond ``TileConfig.mvm_period_cycles``, for a
#: vector that finds the tile idle (docs/architecture.md, schedule and timing).
PORT_TO_PORT_EXTRA = 6


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

    The clock is the ``sync`` domain's (``clk`` in Verilog, rising edge) and ``rst`` its
    synchronous, active-high reset; there is no other clock or reset.

    Attributes
    ----------
    s_axil : In(AxiLiteSignature)
        Control and status registers (see :func:`aimc.rtl.regmap.register_map`).
    s_axis : In(AxiStreamSignature)
        Input vectors; TUSER is the vector's kind (:class:`~aimc.enums.InputKind`).
    m_axis : Out(AxiStreamSignature)
        Result vectors and program-and-verify status packets; TUSER is their kind
        (:class:`~aimc.enums.ResultKind`).
    t_axis : In(AxiStreamSignature)
        Program-and-verify targets: one packet of ``out_beats`` beats per row, ``lanes``
        signed read counts of ``tgt_lane_width`` bits per beat.
    irq : Out(1)
        Interrupt: ``CTRL.irq_en & (STATUS.done | CAL_STATUS.done | PROG_STATUS.done)``.
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
            "s_axis": In(AxiStreamSignature(cfg.in_data_width, KIND_BITS)),
            "m_axis": Out(AxiStreamSignature(cfg.out_data_width, KIND_BITS)),
            "t_axis": In(AxiStreamSignature(cfg.tgt_data_width)),
            "irq": Out(1),
            PREFIX: Out(analogue_signature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ana = getattr(self, PREFIX)

        m.submodules.csr = csr = RegisterFile(self.registers, self.windows)
        regs = csr.regs
        m.submodules.loader = loader = InputLoader(cfg)
        m.submodules.rowdrv = rowdrv = LineDriver(cfg, cfg.rows)
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

        # Results leave through m_axis (TUSER: their kind), or go to the engine that owns
        # the pipeline (from its first request on: results in flight when an engine starts
        # are the host's and drain to m_axis first); the program engine's status packets
        # leave on m_axis.
        out = self.m_axis
        frame = loader.vector.payload
        m.d.comb += [
            out.tdata.eq(arb.out.payload.data), out.tlast.eq(arb.out.payload.last),
            out.tuser.eq(arb.out.payload.kind),
            out.tvalid.eq(arb.out.valid), arb.out.ready.eq(out.tready),
            arb.host_valid.eq(loader.vector.valid), arb.host_kind.eq(frame.kind),
            loader.vector.ready.eq(arb.host_take),
            arb.enable.eq(regs.ctrl.enable),
            arb.host_mode.eq(Mux(regs.ctrl.correct, CorrectMode.CORRECT, CorrectMode.RAW)),
            corr.mode.eq(arb.mode),
            corr.drift.eq(regs.drift_scale.value.value),
        ]

        # The vector of the operation the sequencer starts. Rows: the host's forward vector,
        # zero input, DRIFT_X on every row, or a device read (the selected row at 1, held on
        # for the read window, the others 0). Columns: the host's backward or update vector.
        op = arb.op.payload
        drift_x = regs.drift_x.value
        drift_rows = self._drift_reference(m, csr, cal)
        data_bits = Value.cast(frame.data)
        lw = cfg.in_lane_width
        with m.Switch(op.kind):
            with m.Case(OpKind.FORWARD):
                m.d.comb += Value.cast(rowdrv.vector).eq(data_bits[:cfg.rows * lw])
            with m.Case(OpKind.DRIFT):
                # The rows DRIFT_ROWS drives, at DRIFT_X or -DRIFT_X; the others at 0.
                m.d.comb += [rowdrv.vector[i].eq(Mux(drift_rows[i] & DriftRow.DRIVE,
                                                     Mux(drift_rows[i] & DriftRow.NEGATE,
                                                         -drift_x, drift_x), 0))
                             for i in range(cfg.rows)]
            with m.Case(OpKind.READ):
                m.d.comb += [rowdrv.vector[i].eq(op.row == i) for i in range(cfg.rows)]

        # -- sequencer, line drivers, SAR controllers, boundary -----------------------------
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
            ana.row_en.eq(rowdrv.en),
            ana.row_neg.eq(rowdrv.neg),
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
        if cfg.training:
            self._training(m, regs, seq, rowdrv, loader, ana, data_bits)

        # -- counters and status -----------------------------------------------------------
        cycle = Signal(32)
        mvm_count, bwd_count, drop_frame, drop_range, rail_count, clip_count, sat_count, \
            timeouts = (Signal(32, name=n) for n in (
                "mvm_count", "bwd_count", "drop_frame_count", "drop_range_count",
                "rail_count", "clip_count", "corr_sat_count", "timeout_count"))
        host_emit = seq.done & seq.host
        forward = seq.kind != OpKind.BACKWARD
        host_sat = Mux(arb.owned, 0, corr.saturated)
        m.d.sync += cycle.eq(cycle + 1)
        # Latency and period, per direction (the engines' operations are forward MVMs).
        timing = {}
        for name, this in (("fwd", forward), ("bwd", ~forward)):
            last_start, latency, period = (Signal(32, name=f"{name}_{n}")
                                           for n in ("last_start", "latency", "period"))
            is_this = Mux(arb.op.payload.kind == OpKind.BACKWARD, name == "bwd",
                          name == "fwd")
            with m.If(seq.started & is_this & (arb.op.payload.kind != OpKind.UPDATE)):
                m.d.sync += [last_start.eq(cycle), period.eq(cycle - last_start)]
            with m.If(seq.done & this):
                m.d.sync += latency.eq(cycle - last_start)
            timing[name] = (latency, period)
        for counter, event in ((mvm_count, host_emit & forward), (bwd_count, host_emit & ~forward),
                               (rail_count, host_emit & seq.rail),
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
            regs.latency.cycles.eq(timing["fwd"][0]),
            regs.period.cycles.eq(timing["fwd"][1]),
            self.irq.eq(regs.ctrl.irq_en & (regs.status.done.value
                                            | regs.cal_status.done.value
                                            | regs.prog_status.done.value)),
        ]
        if cfg.training:
            m.d.comb += [regs.bwd_count.count.eq(bwd_count),
                         regs.bwd_latency.cycles.eq(timing["bwd"][0]),
                         regs.bwd_period.cycles.eq(timing["bwd"][1])]
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

    def _training(self, m, regs, seq, rowdrv, loader, ana, data_bits):
        """The training hardware: the column driver and the row converters of backward
        MVMs, and the update engine with its registers, the vectors and their largest
        magnitudes (of the last forward vector, captured when it starts, and of the update's
        d), and its boundary ports."""
        cfg = self.cfg
        m.submodules.coldrv = coldrv = LineDriver(cfg, cfg.cols)
        m.submodules.row_sar = row_sar = SarController(cfg.n_row_adc, cfg.adc_bits)
        m.submodules.upd = upd = UpdateEngine(cfg)
        m.d.comb += [
            Value.cast(coldrv.vector).eq(data_bits[:cfg.cols * cfg.in_lane_width]),
            coldrv.load.eq(seq.col_load),
            coldrv.drive.eq(seq.col_drive),
            coldrv.step.eq(seq.row_step),
            row_sar.start.eq(seq.row_sar_start),
            seq.row_sar_done.eq(row_sar.done),
            seq.row_codes.eq(row_sar.result),
            seq.row_adc_sat.eq(ana.adc_row_sat),
            row_sar.cmp.eq(ana.adc_row_cmp),
            ana.col_en.eq(coldrv.en),
            ana.col_neg.eq(coldrv.neg),
            ana.adc_row_trial.eq(row_sar.trial),
            ana.adc_row_sample.eq(row_sar.sample),
            ana.adc_row_sel.eq(seq.adc_row_sel),
            ana.int_back.eq(seq.int_back),
        ]
        x_max, d_max = Signal(cfg.mag_bits), Signal(cfg.mag_bits)
        with m.If(seq.started & (seq.op.payload.kind == OpKind.FORWARD)):
            m.d.sync += x_max.eq(loader.vector.payload.max)
        with m.If(seq.started & (seq.op.payload.kind == OpKind.UPDATE)):
            m.d.sync += d_max.eq(loader.vector.payload.max)
        last_x, last_d = Signal(cfg.mag_bits), Signal(cfg.mag_bits)  # of the last update
        with m.If(upd.done):
            m.d.sync += [last_x.eq(x_max), last_d.eq(d_max)]
        ctrl = regs.upd_ctrl
        m.d.comb += [
            upd.go.eq(seq.upd_go),
            seq.upd_done.eq(upd.done),
            upd.x_mag.eq(rowdrv.mag), upd.x_sign.eq(rowdrv.sign),
            upd.d_mag.eq(coldrv.mag), upd.d_sign.eq(coldrv.sign),
            upd.x_valid.eq(seq.x_valid), upd.x_max.eq(x_max), upd.d_max.eq(d_max),
            upd.mode.eq(ctrl.mode), upd.manage.eq(ctrl.manage), upd.k.eq(ctrl.k),
            upd.reseed.eq(ctrl.reseed), upd.seed.eq(regs.upd_seed.value),
            upd.eta.eq(regs.upd_eta.value), upd.bl.eq(regs.upd_bl.slots),
            upd.scale_x.eq(regs.upd_scale_x.value), upd.scale_d.eq(regs.upd_scale_d.value),
            regs.upd_status.busy.eq(upd.busy),
            regs.upd_status.done.set.eq(upd.done),
            regs.upd_status.error.set.eq(upd.error),
            regs.upd_count.count.eq(upd.count),
            regs.upd_up.count.eq(upd.up),
            regs.upd_down.count.eq(upd.down),
            regs.upd_last.slots.eq(upd.last_bl),
            regs.upd_last.x_max.eq(last_x),
            regs.upd_last.d_max.eq(last_d),
            regs.upd_cycles.cycles.eq(upd.last_cycles),
            ana.upd_start.eq(upd.upd_start),
            ana.upd_pulse.eq(upd.upd_pulse),
            ana.upd_row.eq(upd.upd_row),
            ana.upd_row_neg.eq(upd.upd_row_neg),
            ana.upd_col.eq(upd.upd_col),
            ana.upd_col_neg.eq(upd.upd_col_neg),
        ]

    def _calibration(self, m, regs, cal, prog):
        """Registers of the calibration engine."""
        start = regs.cal_ctrl.start
        m.d.comb += [
            cal.start.eq(start & ~prog.seq.busy),
            cal.phases.eq(regs.cal_ctrl.phases),
            cal.avg_log2.eq(regs.cal_ctrl.avg_log2),
            cal.ref.eq(regs.cal_ref.value),
            cal.drift_ref.eq(regs.drift_ref.value.value),
            cal.drift_min.eq(regs.drift_min.value),
            regs.cal_status.weak.set.eq(cal.weak),
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
        """Offset and gain memories (one word of ``lanes`` entries per result beat: the
        columns' ``out_beats`` words, then the rows' ``back_beats``) with their ports:
        corrector, calibration engine (columns), and the host's windows (OFFSET, GAIN for
        the columns; ROW_OFFSET, ROW_GAIN for the rows: one bus access at a time, so they
        share the memory's host ports); and the column flags."""
        cfg, fmt = self.cfg, CalFormat(self.cfg)
        lanes, depth = cfg.lanes, max(coef_words(cfg), 2)
        lane_bits = lanes.bit_length() - 1
        mems = {
            "offset": Memory(shape=data.ArrayLayout(signed(fmt.off_bits), lanes), depth=depth,
                             init=[]),
            "gain": Memory(shape=data.ArrayLayout(unsigned(GAIN_BITS), lanes), depth=depth,
                           init=[[ONE] * lanes] * depth),
        }
        training = cfg.training
        windows = {"offset": (csr.win.offset, csr.win.row_offset if training else None),
                   "gain": (csr.win.gain, csr.win.row_gain if training else None)}
        for name, mem in mems.items():
            m.submodules[name + "_mem"] = mem
            to_corr, host, write = mem.read_port(), mem.read_port(), mem.write_port(granularity=1)
            m.d.comb += [to_corr.addr.eq(corr.coef_addr), to_corr.en.eq(corr.coef_en),
                         getattr(corr, name).eq(to_corr.data)]
            if name == "offset":
                engine = mem.read_port()
                m.d.comb += [engine.addr.eq(cal.off_raddr), cal.off_rdata.eq(engine.data)]
            # Host windows: column c is lane c % lanes of word c // lanes; row r of word
            # out_beats + r // lanes.
            cols_win, rows_win = windows[name]
            if training:
                use_rows = rows_win.re | rows_win.we
                addr = Mux(use_rows, rows_win.addr, cols_win.addr)
                word = (addr >> lane_bits) + Mux(use_rows, cfg.out_beats, 0)
                re = cols_win.re | rows_win.re
                we = cols_win.we | rows_win.we
                wdata = Mux(rows_win.we, rows_win.wdata, cols_win.wdata)
            else:
                addr, re, we, wdata = cols_win.addr, cols_win.re, cols_win.we, cols_win.wdata
                word = addr >> lane_bits
            lane = addr[:lane_bits] if lane_bits else Const(0, 1)
            lane_q = Signal.like(lane)
            m.d.comb += [host.addr.eq(word), host.en.eq(re)]
            with m.If(re):
                m.d.sync += lane_q.eq(lane)
            for win in (cols_win, rows_win) if training else (cols_win,):
                m.d.comb += [win.rdata.eq(host.data[lane_q]), win.lock.eq(cal.seq.busy)]
            value = wdata[:len(write.data[0])]
            if name == "offset":
                engine_write = (cal.off_waddr, cal.off_wen, cal.off_wdata)
            else:
                engine_write = (cal.gain_waddr, cal.gain_wen, cal.gain_wdata)
            with m.If(cal.seq.busy):
                m.d.comb += [write.addr.eq(engine_write[0]), write.en.eq(engine_write[1]),
                             write.data.eq(engine_write[2])]
            with m.Else():
                m.d.comb += [write.addr.eq(word), write.en.eq(Mux(we, 1 << lane, 0))]
                m.d.comb += [write.data[j].eq(value) for j in range(lanes)]
        # Column flags, read through the COL_STATUS window.
        flags = Signal(2)
        with m.If(csr.win.col_status.re):
            m.d.sync += flags.eq(cal.status.word_select(csr.win.col_status.addr, 2))
        m.d.comb += [csr.win.col_status.rdata.eq(flags), csr.win.col_status.lock.eq(cal.seq.busy)]

    def _drift_reference(self, m, csr, cal):
        """The DRIFT_ROWS and DRIFT_COLS windows: flip-flops (the row driver takes every
        row's drive at once), reset to every row driven positively and every column
        counted, written by the host (refused while the calibration engine runs); returns
        the rows' :class:`~aimc.enums.DriftRow` fields and drives the engine's column
        mask."""
        cfg = self.cfg
        rows = Signal(data.ArrayLayout(2, cfg.rows),
                      init=[int(DriftRow.DRIVE)] * cfg.rows)
        cols = Signal(cfg.cols, init=(1 << cfg.cols) - 1)
        for win, store, width in ((csr.win.drift_rows, rows.as_value(), 2),
                                  (csr.win.drift_cols, cols, 1)):
            with m.If(win.we):
                m.d.sync += store.word_select(win.addr, width).eq(win.wdata[:width])
            word = Signal(width, name=f"{win.wdata.name}_q")
            with m.If(win.re):
                m.d.sync += word.eq(store.word_select(win.addr, width))
            m.d.comb += [win.rdata.eq(word), win.lock.eq(cal.seq.busy)]
        m.d.comb += cal.drift_cols.eq(cols)
        return rows

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
