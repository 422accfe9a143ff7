"""The pulsed update engine (rtl/update.py, new and still changing: kept to its ports and
the rules of :mod:`aimc.training`, so that the harness adapts to a change of its insides):
a line fires in a slot iff its draw is below its quantised threshold, and an update lasts
``BL`` slots plus a constant number of cycles."""

from __future__ import annotations

from amaranth import Cat, Mux, Signal

from ..config import TileConfig
from ..enums import UpdateMode
from ..rtl.update import UpdateEngine
from ..training import LINE_COLUMN_BASE, PROB_BITS, SCALE_BITS, SCALE_FRAC, line_constant
from .harness import Harness, driven, free

__all__ = ["UpdateHarness", "UPDATE_CONSTANT"]

#: Cycles of an update without management besides its BL slots: the ramp-step divider
#: (started with the update, 27 cycles) and the DONE cycle.
UPDATE_CONSTANT = 28


class _StuckGenerators(UpdateEngine):
    """The line generators never step (nor reseed): every slot repeats the first draw."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        state = driven(m, "state")
        m.d.sync += state.eq(state)
        return m


class UpdateHarness(Harness):
    """:class:`~aimc.rtl.update.UpdateEngine` of a 1x1 tile with 2-bit inputs, stochastic
    line decisions, without update management (``manage`` low: BL and the scales as
    written), ``BL`` of 1 to ``bl_max``. The vectors, scales, ``k``, the mode and the seed
    are free but held through an update (the line drivers and registers hold them in the
    tile); ``go`` and ``reseed`` are free. The harness keeps its own xorshift32 generator
    per line (:func:`aimc.training.xorshift32`, reseeded by the rule of
    :func:`aimc.training.line_seeds`) and its own thresholds
    (:func:`aimc.training.probability_thresholds`)."""

    name = "upd"
    mutations = {"stuck_generators": "the line generators never step"}

    def __init__(self, cfg=None, bl_max=4, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(rows=1, cols=1, input_bits=2,
                                                          lanes=1)
        self.bl_max = bl_max

    def build(self, m):
        cfg = self.cfg
        rows, cols, mb = cfg.rows, cfg.cols, cfg.mag_bits
        lines = rows + cols
        dut = (_StuckGenerators if self.mutation == "stuck_generators" else UpdateEngine)(cfg)
        self.instance(m, dut)
        ins = {}
        for name, width in (("go", 1), ("x_sign", rows), ("d_sign", cols), ("x_valid", 1),
                            ("x_max", mb), ("d_max", mb), ("k", 5), ("eta", 32), ("bl", 8),
                            ("scale_x", SCALE_BITS), ("scale_d", SCALE_BITS), ("reseed", 1),
                            ("seed", 32)):
            ins[name] = free(m, width, name)
            m.d.comb += getattr(dut, name).eq(ins[name])
        x_mag = [free(m, mb, f"x_mag{j}") for j in range(rows)]
        d_mag = [free(m, mb, f"d_mag{c}") for c in range(cols)]
        m.d.comb += [dut.x_mag[j].eq(x_mag[j]) for j in range(rows)]
        m.d.comb += [dut.d_mag[c].eq(d_mag[c]) for c in range(cols)]
        m.d.comb += [dut.mode.eq(UpdateMode.STOCHASTIC), dut.manage.eq(0)]
        self.assume(m, (ins["bl"] >= 1) & (ins["bl"] <= self.bl_max))
        self.assume(m, (ins["k"] >= 1) & (ins["k"] <= PROB_BITS))
        held = Cat(*x_mag, *d_mag, ins["k"], ins["bl"], ins["scale_x"], ins["scale_d"],
                   ins["x_valid"])
        before = self.past(m, held)
        was_busy = self.past(m, dut.busy)
        with m.If(was_busy):
            self.assume(m, held == before)

        # -- the length ------------------------------------------------------------------
        count = Signal(16)
        bl = Signal(8)
        ok = Signal()
        with m.If(~dut.busy & ins["go"]):
            m.d.sync += [count.eq(1), bl.eq(ins["bl"]), ok.eq(ins["x_valid"])]
        with m.Elif(dut.busy):
            m.d.sync += count.eq(count + 1)
        with m.If(dut.done):
            self.prop(m, "length_is_bl_plus_constant",
                      count == Mux(ok, bl + UPDATE_CONSTANT, 1))
            self.prop(m, "error_iff_no_forward_input", dut.error == ~ok)
        done_before = self.past(m, dut.done)
        expect_cycles = self.past(m, Mux(ok, bl + UPDATE_CONSTANT, 1))
        with m.If(done_before):
            self.prop(m, "upd_cycles_reports_the_length", dut.last_cycles == expect_cycles)

        # -- the line rule -----------------------------------------------------------------
        numbers = list(range(rows)) + [LINE_COLUMN_BASE + c for c in range(cols)]
        state = [Signal(32, name=f"gen{j}") for j in range(lines)]
        with m.If(ins["reseed"] & ~dut.busy):
            for j, n in enumerate(numbers):
                c = line_constant(n)
                s = ins["seed"] ^ c
                m.d.sync += state[j].eq(Mux(s == 0, c, s))

        def step(s0):
            s1 = s0 ^ (s0 << 13)[:32]
            s2 = s1 ^ (s1 >> 17)
            return s2 ^ (s2 << 5)[:32]

        mask = (Signal(PROB_BITS, init=(1 << PROB_BITS) - 1) >> ins["k"])
        mags = x_mag + d_mag
        thr = []
        for j in range(lines):
            scale = ins["scale_x"] if j < rows else ins["scale_d"]
            q = (mags[j] * scale) >> SCALE_FRAC
            thr.append(Mux(q > (1 << PROB_BITS), 1 << PROB_BITS, q) & ~mask)
        fires = Cat(*(step(state[j])[32 - PROB_BITS:] < thr[j] for j in range(lines)))
        signs = Cat(ins["x_sign"], ins["d_sign"])
        # The slots: from the cycle after upd_start, BL cycles; the lines of a slot are on
        # the boundary in the cycle after it.
        in_slot = Signal()
        left = Signal(8)
        with m.If(dut.upd_start):
            m.d.sync += [in_slot.eq(1), left.eq(bl)]
        expect = Signal(lines)
        expect_neg = Signal(lines)
        with m.If(in_slot):
            m.d.sync += [expect.eq(fires), expect_neg.eq(fires & signs), left.eq(left - 1)]
            m.d.sync += [state[j].eq(step(state[j])) for j in range(lines)]
            with m.If(left == 1):
                m.d.sync += in_slot.eq(0)
        pulsed = self.past(m, in_slot)
        with m.If(pulsed):
            self.prop(m, "line_fires_iff_draw_below_threshold",
                      dut.upd_pulse & (Cat(dut.upd_row, dut.upd_col) == expect)
                      & (Cat(dut.upd_row_neg, dut.upd_col_neg) == expect_neg))
        with m.Else():
            self.prop(m, "no_pulse_outside_slots", ~dut.upd_pulse)
        self.cover(m, "update_done", dut.done & ok & (bl == 2))
