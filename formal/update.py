"""The pulsed update engine (rtl/update.py), kept to its ports and the rules of
:mod:`aimc.training`: a line fires in a slot iff its draw is below its quantised threshold,
and an update lasts ``BL`` slots plus a constant number of cycles.

The engine's sequential units (the divisions and the square root of the management, and the
ramp-step division ``div_s`` that every update runs) are replaced by stand-ins with the
same ports and the same latency whose results are free (assume-guarantee: the units' own
jobs, ``div*`` and ``sqrt*``, prove their latency and results). In stochastic mode without
management no result of a unit reaches the properties, so the stand-ins lose nothing there.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.asserts import AnySeq
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..config import TileConfig
from ..enums import UpdateMode
from ..rtl.update import UpdateEngine, update_cycles
from ..training import LINE_COLUMN_BASE, PROB_BITS, SCALE_BITS, SCALE_FRAC, line_constant
from .harness import Harness, driven, free, fsm, holding

__all__ = ["LatencyStandIn", "UpdateHarness", "update_constant"]

_ONE = 1 << PROB_BITS


def update_constant(cfg: TileConfig) -> int:
    """Cycles of an update without management besides its ``BL`` slots (the ramp-step
    division, started with ``go``, and the DONE cycle): 28 at every size."""
    return update_cycles(cfg, 0, manage=False)


class LatencyStandIn(wiring.Component):
    """A sequential unit's stand-in: the ports of ``unit`` (a
    :class:`~aimc.rtl.divider.SequentialDivider` or :class:`~aimc.rtl.sqrt.SequentialSqrt`)
    and its control exactly (``start`` accepted while not ``busy``; ``busy`` for
    ``latency - 1`` cycles after, then ``done`` for one), but every result output free: any
    value in each cycle from the accepted ``start`` to ``done``, held from ``done`` until the
    next accepted ``start`` (0 before the first), as the real unit holds its registers.
    ``free=False`` keeps the results at 0 (for simulation, which has no free values)."""

    def __init__(self, unit, free=True):
        self.latency = unit.latency
        self.free = free
        super().__init__(unit.signature)
        #: 0 idle, 1 done, ``latency`` in the cycle after the accepted start.
        self.count = Signal(range(self.latency + 1))

    def elaborate(self, platform):
        m = Module()
        count = self.count
        busy = count > 1
        m.d.comb += [self.busy.eq(busy), self.done.eq(count == 1)]
        with m.If(self.start & ~busy):
            m.d.sync += count.eq(self.latency)
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        if self.free:
            with m.If((self.start & ~busy) | busy):
                for name, member in self.signature.members.items():
                    if member.flow == Out and name not in ("busy", "done"):
                        port = getattr(self, name)
                        m.d.sync += port.eq(AnySeq(port.shape()))
        return m


class AbstractUnitsEngine(UpdateEngine):
    """The update engine with its sequential units replaced by :class:`LatencyStandIn`."""

    def _units(self):
        #: The stand-ins of the last elaboration, by name (the harness's invariants name
        #: their counters).
        self.stand_ins = {name: LatencyStandIn(unit) for name, unit in super()._units().items()}
        return self.stand_ins


_StuckGenerators = holding(AbstractUnitsEngine, "state", "The line generators never step "
                          "(nor reseed): every slot repeats the first draw.")


class _ExtraSlot(AbstractUnitsEngine):
    """An unmanaged update latches ``BL + 1`` as its slot count: one slot too many."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        bl = driven(m, "bl")
        with m.If(self.go & ~self.busy & self.x_valid & ~self.manage):
            m.d.sync += bl.eq(self.bl + 1)
        return m


class _Unmasked(AbstractUnitsEngine):
    """The thresholds ignore ``k``: all 16 bits kept."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += driven(m, "mask").eq(0)
        return m


class UpdateHarness(Harness):
    """:class:`~aimc.rtl.update.UpdateEngine` (its sequential units as
    :class:`LatencyStandIn`) of a 1x1 tile with 2-bit inputs, stochastic line decisions,
    without update management (``manage`` low: BL and the scales as written), ``BL`` of 1 to
    ``bl_max``. The magnitudes, scales, ``k``, ``BL`` and ``x_valid`` are free but held from
    ``go`` to the cycle after ``done`` (the line drivers and registers hold them in the
    tile); the signs, ``go``, ``reseed``, ``seed``, ``eta`` and the maxima are free in every
    cycle. The harness keeps its own xorshift32 generator per line
    (:func:`aimc.training.xorshift32`, reseeded by the rule of
    :func:`aimc.training.line_seeds`), its own thresholds
    (:func:`aimc.training.probability_thresholds`) and its own count of the cycles since
    ``go``: the slots are the cycles ``C .. C + BL - 1`` after it (``C`` =
    :func:`update_constant`)."""

    name = "upd"
    mutations = {"stuck_generators": "the line generators never step",
                 "extra_slot": "an update runs BL + 1 slots",
                 "unmasked": "the thresholds keep all 16 bits whatever k"}

    helpers_in_mutants = False

    def __init__(self, cfg=None, bl_max=4, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(rows=1, cols=1, input_bits=2,
                                                          lanes=1, training=True)
        self.bl_max = bl_max

    def build(self, m):
        cfg = self.cfg
        rows, cols, mb = cfg.rows, cfg.cols, cfg.mag_bits
        lines = rows + cols
        const = update_constant(cfg)
        cls = {None: AbstractUnitsEngine, "stuck_generators": _StuckGenerators,
               "extra_slot": _ExtraSlot, "unmasked": _Unmasked}[self.mutation]
        dut = cls(cfg)
        inner = self.instance(m, dut)
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
        was_busy = self.past(m, dut.busy | ins["go"])
        with m.If(was_busy):
            self.assume(m, held == before)

        # -- the length ------------------------------------------------------------------
        count = Signal(16)   # cycles since go: 1 in the cycle after it
        bl = Signal(8)
        ok = Signal()
        running = Signal()
        start = ~dut.busy & ins["go"]
        length = Mux(ok, bl + const, 1)
        with m.If(start):
            m.d.sync += [count.eq(1), bl.eq(ins["bl"]), ok.eq(ins["x_valid"]), running.eq(1)]
        with m.Elif(running):
            m.d.sync += count.eq(count + 1)
            with m.If(count == length):
                m.d.sync += running.eq(0)
        # busy from the cycle after go for exactly the length, done in its last cycle
        self.prop(m, "length_is_bl_plus_constant",
                  (dut.busy == running) & (dut.done == (running & (count == length))))
        self.prop(m, "error_iff_no_forward_input", dut.error == (dut.done & ~ok))
        done_before = self.past(m, dut.done)
        expect_cycles = self.past(m, length)
        with m.If(done_before):
            self.prop(m, "upd_cycles_reports_the_length", dut.last_cycles == expect_cycles)

        # -- the line rule -----------------------------------------------------------------
        # Two statements: the engine's generators are the harness's (xorshift32, reseeded by
        # line_seeds' rule while idle, one step per slot), and in every slot each line fires,
        # with the sign of its element, iff the top 16 bits of its generator's next state
        # are below its threshold.
        engine_state = driven(inner, "state")
        numbers = list(range(rows)) + [LINE_COLUMN_BASE + c for c in range(cols)]
        gen = [Signal(32, name=f"gen{j}", init=line_constant(n))
               for j, n in enumerate(numbers)]
        with m.If(ins["reseed"] & ~dut.busy):
            for j, n in enumerate(numbers):
                c = line_constant(n)
                s = ins["seed"] ^ c
                m.d.sync += gen[j].eq(Mux(s == 0, c, s))

        def step(s0):
            s1 = s0 ^ (s0 << 13)[:32]
            s2 = s1 ^ (s1 >> 17)
            return s2 ^ (s2 << 5)[:32]

        mask = Const(_ONE - 1, PROB_BITS + 1) >> ins["k"]   # the bits below the k kept
        mags = x_mag + d_mag
        thr = []
        for j in range(lines):
            scale = ins["scale_x"] if j < rows else ins["scale_d"]
            q = (mags[j] * scale) >> SCALE_FRAC
            thr.append(Mux(q > _ONE, _ONE, q) & ~mask)
        draws = [step(engine_state[32 * j:32 * (j + 1)])[32 - PROB_BITS:] for j in range(lines)]
        fires = Cat(*(draws[j] < thr[j] for j in range(lines)))
        signs = Cat(ins["x_sign"], ins["d_sign"])
        # The slots: cycles const .. const + BL - 1 after go; the lines a slot decides are
        # on the boundary in the cycle after it.
        in_slot = running & ok & (count >= const) & (count < bl + const)
        expect = Signal(lines)
        expect_neg = Signal(lines)
        with m.If(in_slot):
            m.d.sync += [expect.eq(fires), expect_neg.eq(fires & signs)]
            m.d.sync += [gen[j].eq(step(gen[j])) for j in range(lines)]
        self.prop(m, "generators_follow_xorshift32", engine_state == Cat(*gen))
        pulsed = self.past(m, in_slot)
        boundary = Cat(dut.upd_row, dut.upd_col, dut.upd_row_neg, dut.upd_col_neg)
        with m.If(pulsed):
            self.prop(m, "line_fires_iff_draw_below_threshold",
                      dut.upd_pulse & (boundary == Cat(expect, expect_neg)))
        with m.Else():
            self.prop(m, "no_pulse_outside_slots", ~dut.upd_pulse & (boundary == 0))
        # upd_start marks the first slot of every update that runs
        self.prop(m, "upd_start_opens_the_slots",
                  dut.upd_start == (running & ok & (count == const)))
        self.cover(m, "update_done", dut.done & ok & (bl == 2) & (expect != 0))

        # -- invariants for the induction (the engine's insides at each count) -------------
        self._invariants(m, dut, inner, running, ok, count, bl, length, pulsed, in_slot,
                         mags, ins)

    def _invariants(self, m, dut, inner, running, ok, count, bl, length, pulsed, in_slot,
                    mags, ins):
        cfg = self.cfg
        rows, mb = cfg.rows, cfg.mag_bits
        const = update_constant(cfg)
        machine = fsm(inner)

        def at(name):
            return machine.state == machine.encoding[name]

        units = dut.stand_ins
        lat = units["div_s"].latency
        assert lat + 1 == const and mb + 2 <= lat
        # The phase of the FSM at each count of the harness (from go).
        thresholds = (count >= 2) & (count < 2 + mb)
        phase = Mux(~running, at("IDLE"),
                    Mux(~ok, at("DONE") & (count == 1),
                        Mux(count == 1, at("THRESHOLD_START"),
                            Mux(thresholds, at("THRESHOLDS"),
                                Mux(count < const, at("STEP_WAIT"),
                                    Mux(count < length, at("SLOTS"), at("DONE")))))))
        self.prop(m, "inv_phase", phase & (~running | (count >= 1) & (count <= length)),
                  helper=True)
        # The ramp-step division: started with go, done in the cycle before the first slot;
        # the management's units are never started.
        div_s = Mux(running & ok & (count <= lat), lat + 1 - count, 0)
        self.prop(m, "inv_units",
                  (units["div_s"].count == div_s)
                  & ~Cat(*(u.count != 0 for n, u in units.items() if n != "div_s")).any(),
                  helper=True)
        step_ready = driven(inner, "step_ready")
        self.prop(m, "inv_step_ready", ~(running & ok & (count <= lat)) | ~step_ready,
                  helper=True)
        cycles, slot, failed = (driven(inner, n) for n in ("cycles", "slot", "failed"))
        self.prop(m, "inv_registers",
                  ~running | ((cycles == count) & (failed == ~ok)
                              & (~ok | (driven(inner, "bl") == bl))
                              & (bl == ins["bl"]) & (ok == ins["x_valid"])
                              & (~in_slot | (slot == count - const))),
                  helper=True)
        # The thresholds: after the magnitude bits above ``bit`` (all of them after the
        # THRESHOLDS phase), q = min(their value * S, top).
        q = driven(inner, "q")
        width = len(q) // len(mags)
        top = (1 << width) - 1
        bit = driven(inner, "bit")
        good = []
        for j, mag in enumerate(mags):
            scale = ins["scale_x"] if j < rows else ins["scale_d"]
            qj = q[width * j:width * (j + 1)]
            done_bits = Mux(thresholds, mag >> (bit + 1), mag)
            want = done_bits * scale
            good.append(qj == Mux(want > top, top, want))
        self.prop(m, "inv_thresholds",
                  ~(running & ok & (count >= 2)) | (Cat(*good).all()
                                                     & (~thresholds
                                                        | (bit == mb + 1 - count))),
                  helper=True)
        self.prop(m, "inv_pulsed",
                  pulsed == (running & ok & (count > const) & (count <= bl + const)),
                  helper=True)
