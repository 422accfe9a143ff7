"""The whole tile at a small configuration, bounded: conservation of vectors and results,
and bounded liveness with a ready analogue half and a draining result stream (the readiness
timeout is proved on the sequencer alone, :mod:`aimc.formal.timeout`).

The harness drives every input port of :class:`~aimc.rtl.tile.Tile`: the analogue half's
``ready``, comparator and clamp answers free in every cycle; ``s_axis`` and ``t_axis`` free
(a manager that drops TVALID or changes TDATA mid-beat included); ``m_axis`` TREADY free;
AXI4-Lite from a protocol-correct manager (a VALID stays, with its payload, until its READY)
that writes ``CTRL`` and ``READY_TIMEOUT`` with any data and never reads. So the host can
enable and disable the tile, switch correction on and off and set any timeout while vectors
stream, but starts no engine (their runs are the engines' own jobs).

What the harness counts at the ports: ``frames`` (s_axis beats with TLAST taken), result
vectors (m_axis beats with TLAST taken, any kind but a status packet), and what the tile
itself reports as lost, read from the counters the host reads (``DROP_FRAME``,
``DROP_RANGE``, ``TIMEOUT_COUNT``; each counts one cycle after its event, as do the
harness's own counters).
"""

from __future__ import annotations

from amaranth import Signal, signed

from ..config import TileConfig
from ..enums import ResultKind
from ..rtl.correct import LATENCY as CORRECTOR_LATENCY
from ..rtl.regmap import register_map
from ..rtl.tile import PORT_TO_PORT_EXTRA, Tile
from .harness import Harness, drive_inputs, driven, free, holding

__all__ = ["TileHarness", "tile_buffers"]


def tile_buffers(cfg: TileConfig) -> int:
    """Vectors a tile can hold between taking a frame's TLAST and sending the last beat of
    its results: the input buffer, the operation in the sequencer (its vector in the line
    driver, then its results until the packer takes them), the packer's vector, and at most
    one per stage of the corrector's pipeline."""
    return 3 + CORRECTOR_LATENCY


_NoDropTile = holding(Tile, "drop_range_count", "A vector with an element out of range "
                      "is dropped but not counted.")


class TileHarness(Harness):
    """See the module docstring. ``live``: the liveness assumptions (the analogue half
    always ready, m_axis TREADY high, the host's CTRL writes keep ``enable`` set); vectors
    are sent only after the first CTRL write has been answered."""

    name = "tile"
    mutations = {
        "no_drop_count": "a vector dropped for an element out of range is not counted",
        "ready_may_fall": "(an assumption weakened) the analogue half may drop ready",
    }

    def __init__(self, cfg=None, *, live=False, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(
            rows=2, cols=2, input_bits=2, adc_bits=2, lanes=2)
        self.live = live

    # -- the manager of the register bus ---------------------------------------------------
    def _axil(self, m, bus, addrs):
        aw = {n: free(m, len(getattr(bus, n)), f"m_{n}") for n in ("awvalid", "awaddr")}
        w = {n: free(m, len(getattr(bus, n)), f"m_{n}") for n in ("wvalid", "wdata", "wstrb")}
        bready = free(m, 1, "m_bready")
        m.d.comb += [getattr(bus, n).eq(v) for n, v in (aw | w).items()]
        m.d.comb += [bus.bready.eq(bready), bus.arvalid.eq(0), bus.araddr.eq(0),
                     bus.rready.eq(1)]
        hold_aw = self.past(m, bus.awvalid & ~bus.awready)
        hold_w = self.past(m, bus.wvalid & ~bus.wready)
        last_aw = self.past(m, bus.awaddr)
        last_w = self.past(m, bus.wdata)
        last_s = self.past(m, bus.wstrb)
        with m.If(hold_aw):
            self.assume(m, bus.awvalid & (bus.awaddr == last_aw))
        with m.If(hold_w):
            self.assume(m, bus.wvalid & (bus.wdata == last_w) & (bus.wstrb == last_s))
        self.assume(m, (bus.awaddr == addrs[0]) | (bus.awaddr == addrs[1]))
        return w

    def build(self, m):
        cfg = self.cfg
        dut = (_NoDropTile if self.mutation == "no_drop_count" else Tile)(cfg)
        inner = self.instance(m, dut)
        regs = {r.name: r.offset for r in register_map(cfg)}
        w = self._axil(m, dut.s_axil, (regs["CTRL"], regs["READY_TIMEOUT"]))
        for port in ("s_axis", "t_axis", "ana"):
            drive_inputs(m, getattr(dut, port), f"{port}_")
        tready = free(m, 1, "m_axis_tready")
        m.d.comb += dut.m_axis.tready.eq(tready)
        ana = dut.ana

        s, o = dut.s_axis, dut.m_axis
        frame_end = s.tvalid & s.tready & s.tlast
        result_end = o.tvalid & o.tready & o.tlast & (o.tuser != ResultKind.STATUS.value)

        # -- conservation --------------------------------------------------------------------
        width = 8
        frames, results = Signal(width), Signal(width)
        with m.If(frame_end):
            m.d.sync += frames.eq(frames + 1)
        with m.If(result_end):
            m.d.sync += results.eq(results + 1)
        lost = sum(driven(inner, n)[:width] for n in (
            "drop_frame_count", "drop_range_count", "timeout_count"))
        in_flight = Signal(signed(width + 4))
        m.d.comb += in_flight.eq(frames - results - lost)
        if not self.live:
            bound = tile_buffers(cfg)
            self.prop(m, "results_are_frames_less_losses_and_in_flight",
                      (in_flight >= 0) & (in_flight <= bound))
            self.cover(m, "three_in_flight", in_flight == 3)

        # -- liveness ------------------------------------------------------------------------
        if self.live:
            self.assume(m, tready)
            if self.mutation != "ready_may_fall":
                self.assume(m, ana.ready)
            with m.If(dut.s_axil.wvalid & (dut.s_axil.awaddr == regs["CTRL"])):
                self.assume(m, w["wdata"][0] & w["wstrb"][0])
            enabled = Signal()
            with m.If(dut.s_axil.bvalid & dut.s_axil.bready):
                m.d.sync += enabled.eq(1)
            with m.If(~enabled):
                # The first write enables the tile; no vector before its response.
                self.assume(m, ~s.tvalid & (dut.s_axil.awaddr == regs["CTRL"]))
            # Cycles with vectors in flight since the last result left (or since the first
            # of them was taken): a result taken PORT_TO_PORT_EXTRA + mvm_period_cycles
            # cycles after its frame's TLAST has waited one cycle less.
            waited = Signal(8)
            with m.If(result_end | (in_flight == 0)):
                m.d.sync += waited.eq(0)
            with m.Elif(waited != 255):
                m.d.sync += waited.eq(waited + 1)
            limit = cfg.mvm_period_cycles + PORT_TO_PORT_EXTRA - 1
            self.prop(m, "a_result_leaves_within_the_latency_bound", waited <= limit)
            self.cover(m, "a_result_after_the_whole_bound", result_end & (waited == limit))
