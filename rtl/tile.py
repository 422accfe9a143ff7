"""Top level of the tile: host interfaces, sequencer, row encoders, ADC controllers."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from .axi import AxiLiteSignature, AxiStreamSignature
from .boundary import PREFIX, analogue_signature
from .csr import RegisterFile
from .regmap import REG_ADDR_WIDTH, register_map
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
    shift-and-add, and hands the results to ``m_axis``. The next vector loads while the
    current one is in the analogue phase.

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
        super().__init__({
            "s_axil": In(AxiLiteSignature(REG_ADDR_WIDTH)),
            "s_axis": In(AxiStreamSignature(cfg.in_data_width)),
            "m_axis": Out(AxiStreamSignature(cfg.out_data_width)),
            "irq": Out(1),
            PREFIX: Out(analogue_signature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ana = getattr(self, PREFIX)

        m.submodules.csr = csr = RegisterFile(self.registers)
        m.submodules.loader = loader = InputLoader(cfg)
        m.submodules.rowdrv = rowdrv = RowDriver(cfg)
        m.submodules.sar = sar = SarController(cfg.n_adc, cfg.adc_bits)
        m.submodules.packer = packer = ResultPacker(cfg)

        wiring.connect(m, wiring.flipped(self.s_axil), csr.bus)
        wiring.connect(m, wiring.flipped(self.s_axis), loader.stream)
        wiring.connect(m, packer.stream, wiring.flipped(self.m_axis))

        m.d.comb += [
            rowdrv.vector.eq(loader.vector),
            ana.row_en.eq(rowdrv.row_en),
            ana.row_neg.eq(rowdrv.row_neg),
            ana.adc_trial.eq(sar.trial),
            ana.adc_sample.eq(sar.sample),
            sar.cmp.eq(ana.adc_cmp),
        ]

        # -- sequencer ---------------------------------------------------------------------
        k = cfg.cols_per_adc
        t = Signal(range(max(cfg.drive_cycles, 2)))
        plane = Signal(range(max(cfg.planes, 2)))
        sel = Signal(cfg.sel_bits)
        acc = Signal(data.ArrayLayout(cfg.result_bits, cfg.cols))  # two's complement
        rail_hit = Signal()
        start = Signal()  # take a vector and begin an MVM this cycle
        emit = Signal()   # hand the results to the packer this cycle

        m.d.comb += [
            ana.adc_sel.eq(sel),
            rowdrv.step.eq(t if cfg.input_mode == "pwm" else plane),
        ]

        with m.FSM() as fsm:
            def begin_if_ready():
                # Take the waiting vector and reset the integrators for its first plane.
                with m.If(csr.ctrl_enable & loader.valid):
                    m.d.comb += [start.eq(1), loader.take.eq(1), rowdrv.load.eq(1)]
                    m.d.sync += [ana.int_reset.eq(1), t.eq(0), plane.eq(cfg.planes - 1),
                                 rail_hit.eq(0)]
                    m.next = "DRIVE"

            with m.State("IDLE"):
                begin_if_ready()
            with m.State("DRIVE"):
                m.d.comb += rowdrv.drive.eq(1)
                m.d.sync += [ana.int_reset.eq(0), t.eq(t + 1)]
                with m.If(t == cfg.drive_cycles - 1):
                    m.next = "CONV_START"
            with m.State("CONV_START"):
                m.d.comb += sar.start.eq(1)
                m.d.sync += sel.eq(0)
                m.next = "CONVERT"
            with m.State("CONVERT"):
                with m.If(sar.done):
                    self._capture(m, sar, acc, sel, plane, rail_hit)
                    with m.If(sel != k - 1):
                        m.d.comb += sar.start.eq(1)
                        m.d.sync += sel.eq(sel + 1)
                    with m.Elif(plane != 0):
                        m.d.sync += [ana.int_reset.eq(1), t.eq(0), plane.eq(plane - 1)]
                        m.next = "DRIVE"
                    with m.Else():
                        m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(packer.ready):
                    m.d.comb += [emit.eq(1), packer.load.eq(1)]
                    m.next = "IDLE"
                    begin_if_ready()
        busy = ~fsm.ongoing("IDLE") | packer.busy

        m.d.comb += packer.results.eq(Cat(*(_sign_extend(acc[c], cfg.out_lane_width)
                                            for c in range(cfg.cols))))

        # -- counters and status -----------------------------------------------------------
        cycle = Signal(32)
        last_start = Signal(32)
        mvm_count, drop_frame, drop_range, rail_count = (Signal(32, name=n) for n in (
            "mvm_count", "drop_frame_count", "drop_range_count", "rail_count"))
        latency, period = Signal(32), Signal(32)
        m.d.sync += cycle.eq(cycle + 1)
        with m.If(start):
            m.d.sync += [last_start.eq(cycle), period.eq(cycle - last_start)]
        with m.If(emit):
            m.d.sync += latency.eq(cycle - last_start)
        for counter, event in ((mvm_count, emit), (rail_count, emit & rail_hit),
                               (drop_frame, loader.drop_frame), (drop_range, loader.drop_range)):
            with m.If(event):
                m.d.sync += counter.eq(counter + 1)

        m.d.comb += [
            csr.status_busy.eq(busy),
            csr.status_done_set.eq(emit),
            csr.status_dropped_set.eq(loader.drop_frame | loader.drop_range),
            csr.status_rail_set.eq(emit & rail_hit),
            csr.mvm_count_count.eq(mvm_count),
            csr.drop_frame_count.eq(drop_frame),
            csr.drop_range_count.eq(drop_range),
            csr.rail_count_count.eq(rail_count),
            csr.latency_cycles.eq(latency),
            csr.period_cycles.eq(period),
            self.irq.eq(csr.ctrl_irq_en & csr.status_done),
        ]
        return m

    def _capture(self, m, sar, acc, sel, plane, rail_hit):
        """Accumulate the codes of the conversion that ends this cycle (MSB plane first)."""
        cfg = self.cfg
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        first = plane == cfg.planes - 1
        codes = [sar.result[a * bits:(a + 1) * bits] for a in range(cfg.n_adc)]
        at_rail = Cat(*((c == 0) | (c == (1 << bits) - 1) for c in codes)).any()
        with m.If(at_rail):
            m.d.sync += rail_hit.eq(1)
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
