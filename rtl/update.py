"""The pulsed update engine: a rank-one update of the whole array in ``BL`` pulse slots.

It runs the rules of :mod:`aimc.training` (the golden model is :mod:`aimc.model.update`):
update management from ``max |x|`` and ``max |d|``, one threshold per line, and per slot
one draw per line from its xorshift32 generator (or the shared deterministic thresholds);
the lines that fire go to the analogue boundary, where the devices of coincident lines take
one pulse each. The length of an update is ``BL`` slots plus a constant number of cycles
(the sequential divisions and square root of the management, the thresholds: see
:func:`update_cycles`), independent of rows and columns.
"""

from __future__ import annotations

import functools

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import UpdateMode
from ..training import (
    BL_MAX,
    ETA_FRAC,
    LINE_COLUMN_BASE,
    PROB_BITS,
    SCALE_BITS,
    SCALE_FRAC,
    line_constant,
)
from .divider import SequentialDivider
from .sqrt import SequentialSqrt

__all__ = ["UpdateEngine", "update_cycles"]

_ONE = 1 << PROB_BITS


class UpdateEngine(wiring.Component):
    """Pulsed update engine.

    Started by the sequencer (``go``) with the row driver holding ``x`` (the last forward
    input) and the column driver ``d`` (the update vector). With ``manage`` it derives the
    number of slots and both vectors' probability scales from ``eta`` and ``x_max``,
    ``d_max`` (:func:`aimc.training.manage`: a multiplication, a division, a square root
    and two divisions on small sequential units); without, it takes ``bl``, ``scale_x`` and
    ``scale_d`` as they are. Then it forms each line's threshold (shift and add over the
    magnitude's bits, one per cycle, every line at once), and runs the slots: in each, every
    generator steps, every line compares, and the lines that fire drive ``upd_row`` /
    ``upd_col`` with their polarity for one cycle (``upd_pulse``).

    Attributes
    ----------
    go : In(1)
        Start an update (ignored while busy).
    done, error : Out(1)
        One cycle at the end of an update; ``error`` with it when the row driver does not
        hold a forward input (``x_valid`` low): nothing was pulsed.
    busy : Out(1)
    x_mag, x_sign, d_mag, d_sign : In
        The vectors, from the row and the column driver.
    x_valid, x_max, d_max : In
        The row driver holds the host's last forward input; the largest magnitudes.
    mode, manage, k, eta, bl, scale_x, scale_d : In
        ``UPD_CTRL.mode``, ``UPD_CTRL.manage``, ``UPD_CTRL.k``, ``UPD_ETA``, ``UPD_BL``,
        ``UPD_SCALE_X``, ``UPD_SCALE_D``.
    reseed, seed : In
        Load every generator from ``seed`` (``UPD_CTRL.reseed``, ``UPD_SEED``).
    upd_start, upd_pulse, upd_row, upd_row_neg, upd_col, upd_col_neg : Out
        The analogue boundary (see :mod:`aimc.rtl.boundary`).
    count, up, down : Out(32)
        Updates run (those that found a forward input), up pulses and down pulses (device
        coincidences) since reset. Every update that runs raises ``upd_start`` once, also
        a managed one of no slots (a zero vector), so ``count`` numbers the next update's
        noise events.
    last_bl, last_cycles : Out
        Slots and cycles (``go`` to ``done``) of the last update.
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg = cfg
        rows, cols, mb = cfg.rows, cfg.cols, cfg.mag_bits
        super().__init__({
            "go": In(1),
            "done": Out(1),
            "error": Out(1),
            "busy": Out(1),
            "x_mag": In(data.ArrayLayout(mb, rows)),
            "x_sign": In(rows),
            "d_mag": In(data.ArrayLayout(mb, cols)),
            "d_sign": In(cols),
            "x_valid": In(1),
            "x_max": In(mb),
            "d_max": In(mb),
            "mode": In(UpdateMode),
            "manage": In(1),
            "k": In(5),
            "eta": In(32),
            "bl": In(8),
            "scale_x": In(SCALE_BITS),
            "scale_d": In(SCALE_BITS),
            "reseed": In(1),
            "seed": In(32),
            "upd_start": Out(1),
            "upd_pulse": Out(1),
            "upd_row": Out(rows),
            "upd_row_neg": Out(rows),
            "upd_col": Out(cols),
            "upd_col_neg": Out(cols),
            "count": Out(32),
            "up": Out(32),
            "down": Out(32),
            "last_bl": Out(8),
            "last_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols, mb = cfg.rows, cfg.cols, cfg.mag_bits
        lines = rows + cols
        numbers = list(range(rows)) + [LINE_COLUMN_BASE + c for c in range(cols)]

        # -- update management units ------------------------------------------------------
        units = self._units()
        for name, unit in units.items():
            m.submodules[name] = unit
        div_r, div_x, div_d, div_s, root = (units[n] for n in ("div_r", "div_x", "div_d",
                                                               "div_s", "root"))

        bl = Signal(8)
        sx, sd = Signal(SCALE_BITS), Signal(SCALE_BITS)
        mq = Signal(32)      # eta * x_max * d_max, PROB_BITS fractional bits
        p = Signal(PROB_BITS + 1)
        step = Signal(25)    # deterministic ramp step, round(2**24 / BL)
        step_ready = Signal()
        ramp = Signal(34)    # its accumulator: (2t + 1) * step
        slot = Signal(8)
        bit = Signal(range(max(mb, 2)))
        failed = Signal()
        cycles = Signal(32)
        mask = Signal(PROB_BITS + 1)  # the thresholds' bits below the k kept
        m.d.comb += mask.eq(Const(_ONE - 1, PROB_BITS) >> self.k)  # 2**(16 - k) - 1

        # -- per-line state -----------------------------------------------------------------
        # Reset to UPD_SEED's reset value (0): every line at its constant.
        state = Signal(data.ArrayLayout(32, lines),
                       init=[line_constant(n) for n in numbers])
        q = Signal(data.ArrayLayout(PROB_BITS + SCALE_FRAC + 2, lines))  # thresholds
        mags = [self.x_mag[j] for j in range(rows)] + [self.d_mag[c] for c in range(cols)]
        signs = Cat(self.x_sign, self.d_sign)
        with m.If(self.reseed & ~self.busy):
            for j, n in enumerate(numbers):
                c = line_constant(n)
                s = self.seed ^ c
                m.d.sync += state[j].eq(Mux(s == 0, c, s))
        nxt = []
        for j in range(lines):
            s0 = state[j]
            s1 = s0 ^ (s0 << 13)[:32]
            s2 = s1 ^ (s1 >> 17)
            s3 = s2 ^ (s2 << 5)[:32]
            nxt.append(s3)
        # Deterministic mode: the rows compare with a shared ramp, the columns spread their
        # pulses with an accumulator each (aimc.training.spread).
        t_row = ramp >> 9
        spread_acc = Signal(data.ArrayLayout(PROB_BITS, cols))
        deterministic = self.mode == UpdateMode.DETERMINISTIC
        fire, sums = [], []
        for j in range(lines):
            thr = Mux(q[j] >> SCALE_FRAC >= _ONE, _ONE, q[j] >> SCALE_FRAC) & ~mask
            stochastic = nxt[j][32 - PROB_BITS:] < thr
            if j < rows:
                fire.append(Mux(deterministic, t_row < thr, stochastic))
            else:
                total = spread_acc[j - rows] + thr
                sums.append(total)
                fire.append(Mux(deterministic, total[PROB_BITS], stochastic))
        fire = Cat(*fire)

        def start_step(n):
            return [div_s.start.eq(1), div_s.dividend.eq((1 << 24) + (n >> 1)),
                    div_s.divisor.eq(n)]

        with m.If(div_s.done):
            m.d.sync += [step.eq(div_s.quotient), step_ready.eq(1)]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.sync += step_ready.eq(0)
                with m.If(self.go):
                    m.d.sync += [failed.eq(0), cycles.eq(1)]
                    with m.If(~self.x_valid):
                        m.d.sync += [failed.eq(1), bl.eq(0)]
                        m.next = "DONE"
                    with m.Elif(self.manage):
                        m.next = "M_PRODUCT"
                    with m.Else():
                        m.d.sync += [bl.eq(self.bl), sx.eq(self.scale_x), sd.eq(self.scale_d)]
                        m.d.comb += start_step(self.bl)
                        m.next = "THRESHOLD_START"
            with m.State("M_PRODUCT"):
                prod = (self.eta * self.x_max * self.d_max) >> (ETA_FRAC - PROB_BITS)
                m.d.sync += mq.eq(Mux(prod >> 32 != 0, (1 << 32) - 1, prod[:32]))
                m.next = "M_BL"
            with m.State("M_BL"):
                ceil = (mq + _ONE - 1) >> PROB_BITS
                bl_new = Mux(ceil > self.bl, self.bl, ceil)
                m.d.sync += bl.eq(bl_new)
                with m.If(mq == 0):
                    # Nothing to pulse: an update of no slots, started all the same, so
                    # that every update that runs numbers its noise events alike.
                    m.d.sync += [bl.eq(0), sx.eq(0), sd.eq(0), self.upd_start.eq(1)]
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += start_step(bl_new)
                    m.next = "M_RATIO"
            with m.State("M_RATIO"):
                m.d.comb += [div_r.start.eq(1), div_r.dividend.eq(mq + (bl >> 1)),
                             div_r.divisor.eq(bl)]
                m.next = "M_RATIO_WAIT"
            with m.State("M_RATIO_WAIT"):
                with m.If(div_r.done):
                    r = Mux(div_r.overflow | (div_r.quotient > _ONE), _ONE, div_r.quotient)
                    m.d.comb += [root.start.eq(1), root.radicand.eq(r << PROB_BITS)]
                    m.next = "M_ROOT"
            with m.State("M_ROOT"):
                with m.If(root.done):
                    m.d.sync += p.eq(root.root)
                    m.next = "M_SCALES"
            with m.State("M_SCALES"):
                m.d.comb += [
                    div_x.start.eq(1), div_x.divisor.eq(self.x_max),
                    div_x.dividend.eq((p << SCALE_FRAC) + (self.x_max >> 1)),
                    div_d.start.eq(1), div_d.divisor.eq(self.d_max),
                    div_d.dividend.eq((p << SCALE_FRAC) + (self.d_max >> 1)),
                ]
                m.next = "M_SCALES_WAIT"
            with m.State("M_SCALES_WAIT"):
                with m.If(div_x.done):
                    m.d.sync += [sx.eq(div_x.quotient), sd.eq(div_d.quotient)]
                    m.next = "THRESHOLD_START"
            with m.State("THRESHOLD_START"):
                m.d.sync += [bit.eq(mb - 1), q.eq(0)]
                m.d.sync += [spread_acc[c].eq(_ONE >> 1) for c in range(cols)]
                m.next = "THRESHOLDS"
            with m.State("THRESHOLDS"):
                # q = |v| * S, most significant magnitude bit first, every line at once.
                for j in range(lines):
                    scale = sx if j < rows else sd
                    add = Mux(mags[j].bit_select(bit, 1), scale, 0)
                    acc = (q[j] << 1) + add
                    # Saturate far above 2**16 << SCALE_FRAC: the threshold caps at 2**16.
                    top = (1 << len(q[j])) - 1
                    m.d.sync += q[j].eq(Mux(acc > top, top, acc))
                m.d.sync += bit.eq(bit - 1)
                with m.If(bit == 0):
                    m.next = "STEP_WAIT"
            with m.State("STEP_WAIT"):
                with m.If(step_ready | div_s.done):
                    m.d.sync += [slot.eq(0), self.upd_start.eq(1),
                                 ramp.eq(Mux(step_ready, step, div_s.quotient))]
                    m.next = "SLOTS"
            with m.State("SLOTS"):
                m.d.sync += [self.upd_start.eq(0), self.upd_pulse.eq(1),
                             Cat(self.upd_row, self.upd_col).eq(fire),
                             Cat(self.upd_row_neg, self.upd_col_neg).eq(fire & signs),
                             slot.eq(slot + 1), ramp.eq(ramp + (step << 1))]
                m.d.sync += [state[j].eq(nxt[j]) for j in range(lines)]
                m.d.sync += [spread_acc[c].eq(sums[c][:PROB_BITS]) for c in range(cols)]
                with m.If(slot == bl - 1):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += [self.upd_start.eq(0), self.upd_pulse.eq(0), self.upd_row.eq(0),
                             self.upd_col.eq(0), self.upd_row_neg.eq(0),
                             self.upd_col_neg.eq(0), self.last_bl.eq(bl),
                             self.last_cycles.eq(cycles)]
                with m.If(~failed):
                    m.d.sync += self.count.eq(self.count + 1)
                m.next = "IDLE"
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += [
            self.busy.eq(~fsm.ongoing("IDLE")),
            self.done.eq(fsm.ongoing("DONE")),
            self.error.eq(fsm.ongoing("DONE") & failed),
        ]
        self._count(m)
        return m

    def _units(self) -> dict:
        """The sequential units, by name (:func:`_units`). A formal harness overrides this
        with stand-ins of the same ports and latency."""
        return _units(self.cfg)

    def _count(self, m):
        """Device pulses of the slot on the boundary: up where the polarities differ (the
        signs of x and d differ: ``W -= lr x d`` grows), down where they agree; the products
        of the lines' counts per polarity."""
        row, row_neg, col, col_neg = self.upd_row, self.upd_row_neg, self.upd_col, self.upd_col_neg
        r_neg, c_neg = _popcount(m, row_neg, "r_neg"), _popcount(m, col_neg, "c_neg")
        r_pos = _popcount(m, row & ~row_neg, "r_pos")
        c_pos = _popcount(m, col & ~col_neg, "c_pos")
        with m.If(self.upd_pulse):
            m.d.sync += [self.up.eq(self.up + r_pos * c_neg + r_neg * c_pos),
                         self.down.eq(self.down + r_pos * c_pos + r_neg * c_neg)]


def _units(cfg: TileConfig) -> dict:
    """The sequential units of an update engine: the division by BL of the management
    (``div_r``), the square root, the divisions by ``x_max`` and ``d_max`` and the
    deterministic ramp's step, ``round(2**24 / BL)``, computed beside the rest (``div_s``,
    also when stochastic: the same number of cycles either way)."""
    mb = cfg.mag_bits
    return {
        "div_r": SequentialDivider(33, 8, PROB_BITS + 1),
        "div_x": SequentialDivider(PROB_BITS + SCALE_FRAC + 2, mb, SCALE_BITS - 7),
        "div_d": SequentialDivider(PROB_BITS + SCALE_FRAC + 2, mb, SCALE_BITS - 7),
        "div_s": SequentialDivider(26, 8, 25),
        "root": SequentialSqrt(PROB_BITS + 1),
    }


@functools.cache
def _latencies(cfg: TileConfig) -> dict:
    return {name: unit.latency for name, unit in _units(cfg).items()}


def update_cycles(cfg: TileConfig, slots: int, manage: bool, ran: bool = True) -> int:
    """UPD_CYCLES of an update of ``slots`` pulse slots: the cycles from the one the engine
    takes ``go`` in to its ``done`` cycle. ``slots`` plus a constant, whatever the rows and
    columns: unmanaged, the ramp-step division; managed, the product, the division by BL,
    the square root, the divisions by the maxima and one cycle per magnitude bit of the
    thresholds. A managed update of no slots (``slots`` 0) ends after the product; one that
    found no forward input (``ran`` False) at once."""
    if not ran:
        return 1
    u = _latencies(cfg)
    if not manage:
        # div_s starts with go and outlasts THRESHOLD_START and the thresholds.
        assert cfg.mag_bits + 2 <= u["div_s"]
        return u["div_s"] + slots + 1
    if slots == 0:
        return 3
    # M_PRODUCT, M_BL (starts div_s), M_RATIO (starts div_r), the root, M_SCALES (starts
    # div_x and div_d): the cycle the scales are done in.
    scales = 3 + u["div_r"] + u["root"] + 1 + u["div_x"]
    # THRESHOLD_START, the thresholds, STEP_WAIT (the ramp step is ready long before).
    wait = scales + 2 + cfg.mag_bits
    assert 2 + u["div_s"] < wait
    return wait + slots + 1


def _popcount(m, value, name):
    """Number of set bits of ``value``, by a tree of adders."""
    level = [value[i] for i in range(len(value))]
    while len(level) > 1:
        nxt = []
        for a, b in zip(level[::2], level[1::2], strict=False):
            s = Signal(len(value).bit_length(), name=f"{name}_sum")
            m.d.comb += s.eq(a + b)
            nxt.append(s)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


assert BL_MAX == 255  # UPD_BL and the slot counter are 8 bits
