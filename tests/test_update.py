"""The UpdateEngine (the pulse generator of in-situ training) alone in Amaranth's simulator.

A testbench drives what the line drivers and the registers would (``x`` and ``d`` as
magnitudes and signs, their largest magnitudes, ``x_valid``, UPD_CTRL, UPD_ETA, UPD_BL,
UPD_SCALE_X/D, UPD_SEED with reseed) and starts updates one after another; a trace sampled
at every clock edge is then compared with what the rules of :mod:`aimc.training` give for
the same numbers, computed here: the schedule (``manage``: BL and both scales), each
line's threshold (``probability_thresholds``, reduced to ``k`` bits), and per pulse slot
the lines that fire (stochastic: one xorshift32 draw per line from ``line_seeds``;
deterministic: ``ramp`` for the rows, ``spread`` for the columns) with their polarity, the
devices' up and down pulses (counted here device by device), and the registers the engine
leaves (``count``, ``up``, ``down``, ``last_bl``, ``last_cycles``). The update engine exists
on training tiles only (``TileConfig.training``): every tile here is one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from component_bench import Trace, pack, run, wait_until

from aimc import TileConfig
from aimc.enums import UpdateMode
from aimc.rtl.update import UpdateEngine, update_cycles
from aimc.training import (
    ETA_FRAC,
    LINE_COLUMN_BASE,
    PROB_BITS,
    SCALE_FRAC,
    line_constant,
    line_seeds,
    manage,
    probability_thresholds,
    ramp,
    spread,
    xorshift32,
)

STOCHASTIC, DETERMINISTIC = UpdateMode.STOCHASTIC, UpdateMode.DETERMINISTIC
UPD_CONFIGS = [
    TileConfig(rows=4, cols=6, input_bits=4, training=True),    # x_max 7: coarse thresholds
    TileConfig(rows=5, cols=3, training=True),                  # x_max 127
    TileConfig(rows=3, cols=8, input_bits=12, training=True),   # x_max 2047: fine thresholds
]


def cfg_id(cfg):
    return cfg.key


@dataclass
class Update:
    """One update as the testbench starts it: the vectors and the registers."""

    x: list
    d: list
    mode: UpdateMode = STOCHASTIC
    manage: bool = False
    k: int = PROB_BITS
    eta: int = 0
    bl: int = 31
    scale_x: int = 0
    scale_d: int = 0
    x_valid: bool = True
    reseed: int | None = None   # UPD_SEED to load (UPD_CTRL.reseed) before the start
    go_while_busy: bool = False  # pulse go again in the middle of the update


@dataclass
class Expected:
    bl: int
    error: bool
    slots: list = field(default_factory=list)  # (row, row_neg, col, col_neg) bit masks
    up: int = 0
    down: int = 0
    scales: tuple = (0, 0)
    cycles: int = 0  # last_cycles: update_cycles of the update


def bits(flags) -> int:
    return sum(int(f) << i for i, f in enumerate(flags))


class Golden:
    """What an update does by the rules of :mod:`aimc.training`, update after update. The
    generators start from UPD_SEED's reset value (0: every line at its constant) and step
    once per slot of every update, deterministic ones too."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.numbers = list(range(cfg.rows)) + [LINE_COLUMN_BASE + c for c in range(cfg.cols)]
        self.state = line_seeds(0, self.numbers)

    def reseed(self, seed):
        self.state = line_seeds(seed, self.numbers)

    def update(self, u: Update) -> Expected:
        cfg = self.cfg
        x, d = np.array(u.x), np.array(u.d)
        xmag, dmag = np.abs(x), np.abs(d)
        x_max, d_max = int(xmag.max()), int(dmag.max())
        if not u.x_valid:
            return Expected(0, True, cycles=update_cycles(cfg, 0, u.manage, ran=False))
        if u.manage:
            sched = manage(u.eta, x_max, d_max, u.bl)
            if sched.bl == 0:
                return Expected(0, False, cycles=update_cycles(cfg, 0, True))
            bl, sx, sd = sched.bl, sched.scale_x, sched.scale_d
        else:
            bl, sx, sd = u.bl, u.scale_x, u.scale_d
        qx = probability_thresholds(xmag, sx, u.k)
        qd = probability_thresholds(dmag, sd, u.k)
        rows_t, cols_fire = ramp(bl), spread(qd, bl)
        want = Expected(bl, False, scales=(sx, sd), cycles=update_cycles(cfg, bl, u.manage))
        for t in range(bl):
            # every generator steps in every slot, whatever the mode
            self.state = xorshift32(self.state)
            if u.mode == STOCHASTIC:
                draws = (self.state >> np.uint32(32 - PROB_BITS)).astype(np.int64)
                fr, fc = draws[:cfg.rows] < qx, draws[cfg.rows:] < qd
            else:
                fr, fc = rows_t[t] < qx, cols_fire[t]
            want.slots.append((bits(fr), bits(fr & (x < 0)), bits(fc), bits(fc & (d < 0))))
            # device (r, c) takes a pulse when both lines fire: down when the signs agree
            both = np.outer(fr, fc)
            agree = np.outer(x < 0, np.ones(cfg.cols, bool)) == np.outer(
                np.ones(cfg.rows, bool), d < 0)
            want.down += int((both & agree).sum())
            want.up += int((both & ~agree).sum())
        return want


def run_updates(cfg, updates, *, seed=0):
    """Run ``updates`` one after another in one simulation. Returns, per update, what the
    trace shows: go and done cycles, upd_start cycles, the pulse slots, error, and the
    registers in the cycle after done."""
    dut = UpdateEngine(cfg)
    mb = cfg.mag_bits
    rng = random.Random(seed)
    trace = Trace({
        "go": dut.go, "busy": dut.busy, "done": dut.done, "error": dut.error,
        "start": dut.upd_start, "pulse": dut.upd_pulse, "row": dut.upd_row,
        "row_neg": dut.upd_row_neg, "col": dut.upd_col, "col_neg": dut.upd_col_neg,
        "count": dut.count, "up": dut.up, "down": dut.down, "last_bl": dut.last_bl,
        "last_cycles": dut.last_cycles,
    })
    marks = []

    async def main(ctx):
        for u in updates:
            # the largest magnitudes, as the loader finds them
            x_max, d_max = max(abs(v) for v in u.x), max(abs(v) for v in u.d)
            ctx.set(dut.x_mag.as_value(), pack([abs(v) for v in u.x], mb))
            ctx.set(dut.x_sign, bits(v < 0 for v in u.x))
            ctx.set(dut.d_mag.as_value(), pack([abs(v) for v in u.d], mb))
            ctx.set(dut.d_sign, bits(v < 0 for v in u.d))
            ctx.set(dut.x_max, x_max)
            ctx.set(dut.d_max, d_max)
            ctx.set(dut.x_valid, u.x_valid)
            ctx.set(dut.mode, u.mode)
            ctx.set(dut.manage, u.manage)
            ctx.set(dut.k, u.k)
            ctx.set(dut.eta, u.eta)
            ctx.set(dut.bl, u.bl)
            ctx.set(dut.scale_x, u.scale_x)
            ctx.set(dut.scale_d, u.scale_d)
            if u.reseed is not None:
                ctx.set(dut.seed, u.reseed)
                ctx.set(dut.reseed, 1)
                await ctx.tick()
                ctx.set(dut.reseed, 0)
                ctx.set(dut.seed, rng.getrandbits(32))  # the seed matters only with reseed
            for _ in range(rng.randint(0, 2)):
                await ctx.tick()
            ctx.set(dut.go, 1)
            await ctx.tick()
            ctx.set(dut.go, 0)
            go = len(trace.rows) - 1
            if u.go_while_busy:
                for _ in range(5):
                    await ctx.tick()
                assert ctx.get(dut.busy)
                ctx.set(dut.go, 1)
                await ctx.tick()
                ctx.set(dut.go, 0)
            await wait_until(ctx, lambda g=go: any(r["done"] for r in trace.rows[g + 1:]),
                             2000, "update done")
            for _ in range(3):
                await ctx.tick()
            marks.append(go)

    run(dut, main, trace.run)
    rows = trace.rows
    got = []
    ends = marks[1:] + [len(rows)]
    for go, end in zip(marks, ends, strict=True):
        assert rows[go]["go"] and not rows[go]["busy"]
        done = [n for n in range(go, end) if rows[n]["done"]]
        assert len(done) == 1, f"update from cycle {go}: done in cycles {done}"
        done = done[0]
        for n in range(go + 1, done + 1):
            assert rows[n]["busy"], f"cycle {n}: not busy during the update"
        assert not rows[done + 1]["busy"]
        pulses = [n for n in range(go, end) if rows[n]["pulse"]]
        starts = [n for n in range(go, end) if rows[n]["start"]]
        # between pulse slots nothing fires: the lines are driven only with upd_pulse
        for n in range(go, end):
            if not rows[n]["pulse"]:
                assert (rows[n]["row"], rows[n]["row_neg"], rows[n]["col"],
                        rows[n]["col_neg"]) == (0, 0, 0, 0), f"cycle {n}: lines fire"
        for n in pulses:  # a polarity only with its line
            assert rows[n]["row_neg"] & ~rows[n]["row"] == 0
            assert rows[n]["col_neg"] & ~rows[n]["col"] == 0
        after = rows[done + 1]  # final when UPD_STATUS.done can first be read
        got.append({
            "go": go, "done": done, "error": rows[done]["error"],
            "errors": [n for n in range(go, end) if rows[n]["error"]],
            "starts": starts, "pulses": pulses,
            "slots": [(rows[n]["row"], rows[n]["row_neg"], rows[n]["col"], rows[n]["col_neg"])
                      for n in pulses],
            "count": after["count"], "up": after["up"], "down": after["down"],
            "last_bl": after["last_bl"], "last_cycles": after["last_cycles"],
        })
    return got


def check(cfg, updates, got):
    """Every update against the golden rules, the counters accumulated over the run
    (``count``: every update that ran, those without a slot included, not those refused
    for want of a forward input); last_cycles the go-to-done count and ``update_cycles``.
    An update that runs raises upd_start once: the cycle before its first slot, or, with no
    slot (a managed zero update), its done cycle."""
    golden = Golden(cfg)
    count = up = down = 0
    wants = []
    for i, (u, g) in enumerate(zip(updates, got, strict=True)):
        if u.reseed is not None:
            golden.reseed(u.reseed)
        w = golden.update(u)
        wants.append(w)
        where = f"update {i}"
        assert g["error"] == w.error, where
        assert g["errors"] == ([g["done"]] if w.error else []), where
        assert g["last_bl"] == w.bl, f"{where}: last_bl {g['last_bl']}, expected {w.bl}"
        assert g["last_cycles"] == g["done"] - g["go"] == w.cycles, \
            f"{where}: last_cycles {g['last_cycles']}, expected {w.cycles}"
        if w.bl:
            # upd_start for one cycle, then BL pulse slots back to back, done in the last
            first = g["starts"][0] + 1
            assert g["starts"] == [first - 1], where
            assert g["pulses"] == list(range(first, first + w.bl)), where
            assert g["done"] == first + w.bl - 1, where
        elif w.error:
            assert g["starts"] == g["pulses"] == [], f"{where}: refused, nothing expected"
        else:
            assert g["starts"] == [g["done"]] and g["pulses"] == [], \
                f"{where}: upd_start in the done cycle and no slot expected"
        for t, (gs, ws) in enumerate(zip(g["slots"], w.slots, strict=True)):
            assert gs == ws, f"{where} slot {t}: (row, row_neg, col, col_neg) {gs}, " \
                             f"expected {ws}"
        count, up, down = count + (not w.error), up + w.up, down + w.down
        assert (g["count"], g["up"], g["down"]) == (count, up, down), where
    return wants


def random_vector(rng, n, top, p_zero=0.15):
    return [0 if rng.random() < p_zero else rng.choice([-1, 1]) * (
        top if rng.random() < 0.2 else rng.randint(1, top)) for _ in range(n)]


def eta_for(m, x_max, d_max):
    """UPD_ETA (Q8.24) for which eta |x|max |d|max is about ``m`` pulses."""
    return max(1, round(m * (1 << ETA_FRAC) / (x_max * d_max)))


def scale_for(p):
    """UPD_SCALE for a line probability of ``p`` per input LSB."""
    return round(p * (1 << (PROB_BITS + SCALE_FRAC)))


def rule(scale, k=PROB_BITS):
    """The thresholds of an array of magnitudes with ``scale`` and ``k``."""
    return lambda mags: probability_thresholds(mags, scale, k)


def row_slots(bl):
    """Deterministic mode, rows: the slots (of ``bl``) in which lines of thresholds ``q``
    fire, ``(bl, len(q))``: the shared ramp below the threshold."""
    t = ramp(bl)
    return lambda q: t[:, None] < np.asarray(q)[None, :]


def col_slots(bl):
    """Deterministic mode, columns: the slots in which lines of thresholds ``q`` fire, each
    spreading its pulses with its own accumulator."""
    return lambda q: spread(q, bl)


def telling(rng, top, slots, a, b):
    """A magnitude ``v`` in 1 .. ``top`` whose line fires in other slots (``slots``, a
    function of the thresholds as :func:`row_slots`) with the thresholds ``a`` gives than
    with those of ``b`` (functions of a magnitude array), or None. A line so chosen makes
    the slots tell the two rules apart."""
    v = np.arange(1, top + 1)
    differ = (slots(a(v)) != slots(b(v))).any(axis=0)
    return int(rng.choice(v[differ])) if differ.any() else None


# -- reference sanity ----------------------------------------------------------------------


def test_reference_generator_is_marsaglias_xorshift32():
    """The rules' generator is the published one: Marsaglia (2003), shifts 13, 17, 5, from
    2463534242 the first output 723471715; the deterministic rules written out: the rows'
    ramp, and the columns' accumulators (from 2**15, adding the threshold, firing at 2**16)
    for probabilities 0, 1/4, 1/2, 3/4 and 1 over four slots."""
    assert int(xorshift32(np.array([2463534242], dtype=np.uint32))[0]) == 723471715
    assert list(ramp(4)) == [8192, 24576, 40960, 57344]
    T, F = True, False
    assert spread([0, 1 << 14, 1 << 15, 3 << 14, 1 << 16], 4).T.tolist() == [
        [F, F, F, F], [F, T, F, F], [T, F, T, F], [T, T, F, T], [T, T, T, T]]
    assert spread([1], 3).shape == (3, 1) and spread([], 2).shape == (2, 0)
    assert list(probability_thresholds([1, 2, 3, 600], 1 << 15, 2)) == [0, 0, 0, 1 << 16]
    assert list(probability_thresholds([1, 2, 3], 1 << 15, 16)) == [128, 256, 384]


# -- slots ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", UPD_CONFIGS, ids=cfg_id)
def test_update_stochastic_slots_are_the_xorshift32_draws(cfg):
    """Stochastic updates, unmanaged and managed, with the generators reseeded or carried
    over from the update before: every line of every slot, its polarity, the counters."""
    rng = random.Random(UPD_CONFIGS.index(cfg))
    top = cfg.x_max
    updates = []
    for i in range(6):
        x, d = random_vector(rng, cfg.rows, top), random_vector(rng, cfg.cols, top)
        x[0], d[-1] = top, -top  # the largest magnitudes present
        if i % 2:
            updates.append(Update(x, d, manage=True, bl=rng.choice([20, 64]),
                                  eta=eta_for(rng.uniform(5, 40), top, top),
                                  reseed=rng.getrandbits(32) if i == 3 else None))
        else:
            updates.append(Update(x, d, bl=rng.choice([1, 9, 40]),
                                  scale_x=scale_for(rng.uniform(0.3, 1.2) / top),
                                  scale_d=scale_for(rng.uniform(0.3, 1.2) / top),
                                  reseed=rng.getrandbits(32) if i in (0, 4) else None))
    got = run_updates(cfg, updates, seed=1)
    wants = check(cfg, updates, got)
    # the stimulus fired lines of both polarities on both sides, and left some lines out
    slots = [s for w in wants for s in w.slots]
    for side in (0, 2):
        assert any(s[side] for s in slots) and any(s[side + 1] for s in slots)
        assert any(s[side] != (1 << (cfg.rows if side == 0 else cfg.cols)) - 1 for s in slots)
    assert sum(w.up for w in wants) > 0 and sum(w.down for w in wants) > 0


@pytest.mark.parametrize("cfg", UPD_CONFIGS, ids=cfg_id)
def test_update_deterministic_slots_follow_the_ramp_and_the_accumulators(cfg):
    """Deterministic updates: every row against the shared ramp ((2t + 1) R >> 9), every
    column by its accumulator (``spread``: from 2**15, firing when it reaches 2**16); BL 1,
    2, odd, and 255; unmanaged and managed. The generators step all the while, from their
    reset states: a stochastic update without reseed after them draws where the slots
    before left them."""
    rng = random.Random(10 + UPD_CONFIGS.index(cfg))
    top = cfg.x_max
    updates = []
    for i, bl in enumerate([1, 2, 7, 255, 33, 255]):
        x, d = random_vector(rng, cfg.rows, top), random_vector(rng, cfg.cols, top)
        x[-1], d[0] = -top, top
        if i % 2 == 0:  # managed: m below BL, or above UPD_BL (clipped to it)
            m = bl * rng.uniform(0.6, 1.0) if i < 5 else 300
            updates.append(Update(x, d, mode=DETERMINISTIC, manage=True, bl=bl,
                                  eta=eta_for(m, top, top)))
        else:
            updates.append(Update(x, d, mode=DETERMINISTIC, bl=bl,
                                  scale_x=scale_for(rng.uniform(0.5, 1.0) / top),
                                  scale_d=scale_for(rng.uniform(0.5, 1.0) / top)))
    # thresholds of exactly 1/4, 1/2 and 3/4: the accumulators reach 2**16 exactly (and
    # fire), rows meet ramp values exactly (and do not fire)
    v0 = 1 << (cfg.mag_bits - 1)
    exact = [v0, -v0 // 2, 3 * v0 // 2, -v0]
    updates.append(Update([exact[r % 4] for r in range(cfg.rows)],
                          [exact[(c + 1) % 4] for c in range(cfg.cols)], mode=DETERMINISTIC,
                          bl=4, scale_x=1 << (PROB_BITS + SCALE_FRAC - 1 - cfg.mag_bits),
                          scale_d=1 << (PROB_BITS + SCALE_FRAC - cfg.mag_bits)))
    mags = [v0 // 2, v0, 3 * v0 // 2]
    assert probability_thresholds(mags, updates[-1].scale_d, PROB_BITS).tolist() == [
        1 << 14, 1 << 15, 3 << 14]
    assert probability_thresholds(mags, updates[-1].scale_x, PROB_BITS).tolist() == [
        ramp(4)[0], 1 << 14, ramp(4)[1]]
    # then stochastic, from where the generators were left
    x, d = random_vector(rng, cfg.rows, top), random_vector(rng, cfg.cols, top)
    updates.append(Update(x, d, bl=30, scale_x=scale_for(0.5 / top),
                          scale_d=scale_for(0.5 / top)))
    got = run_updates(cfg, updates, seed=2)
    wants = check(cfg, updates, got)
    # a line of probability p fires in about p BL slots (BL 255, unmanaged: exact counts)
    w, u = wants[3], updates[3]
    assert w.bl == 255
    fired = [sum(s[0] >> r & 1 for s in w.slots) for r in range(cfg.rows)]
    p = [min(abs(v) * w.scales[0] / 2**24, 1.0) for v in u.x]
    assert all(abs(f - q * 255) <= 1 for f, q in zip(fired, p, strict=True)), (fired, p)
    # a column of threshold q fires floor((n q + 2**15) / 2**16) times in the first n slots
    # (round(n p), spread evenly), in every update
    for w, u in zip(wants[:-1], updates[:-1], strict=True):
        q = probability_thresholds(np.abs(u.d), w.scales[1], PROB_BITS)
        for c in range(cfg.cols):
            fired = np.cumsum([s[2] >> c & 1 for s in w.slots])
            n = np.arange(1, w.bl + 1)
            assert fired.tolist() == ((n * int(q[c]) + (1 << 15)) >> 16).tolist(), (c, q[c])


@pytest.mark.parametrize("mode", [STOCHASTIC, DETERMINISTIC], ids=["stochastic", "deterministic"])
def test_update_k_keeps_the_top_bits_of_each_threshold(mode):
    """UPD_CTRL.k from 16 down to 1: the thresholds lose their low 16 - k bits. The same
    update at each k, the generators reseeded to the same seed each time, so that only the
    thresholds differ. Deterministic: lines chosen so that the slots tell k = 16, 12 and 8
    apart (rows against the ramp, columns by their accumulators), and each k below 16 from
    k + 1 (a mask one bit short); every k gives other slots there."""
    cfg = UPD_CONFIGS[2]
    rng = random.Random(20 + mode.value)
    top, bl = cfg.x_max, 64
    sx, sd = scale_for(0.9 / top), scale_for(0.8 / top)
    x, d = random_vector(rng, cfg.rows, top), random_vector(rng, cfg.cols, top)
    x[1], d[2] = top, -top
    if mode == DETERMINISTIC:
        for i, (hi, lo) in enumerate(((16, 12), (12, 8))):
            x[2 * i] = telling(rng, top, row_slots(bl), rule(sx, hi), rule(sx, lo))
        pairs = ((16, 12), (12, 8), (13, 12), (9, 8), (6, 5), (4, 3), (3, 2))
        for c, (hi, lo) in zip([0, 1, 3, 4, 5, 6, 7], pairs, strict=True):
            d[c] = -telling(rng, top, col_slots(bl), rule(sd, hi), rule(sd, lo))
    base = Update(x, d, mode=mode, bl=bl, scale_x=sx, scale_d=sd, reseed=0x1234_5678)
    ks = [16, 12, 8, 5, 3, 2, 1]
    updates = [replace(base, k=k) for k in ks]
    got = run_updates(cfg, updates, seed=3)
    wants = check(cfg, updates, got)
    patterns = [tuple(w.slots) for w in wants]
    distinct = ks if mode == DETERMINISTIC else [16, 5, 3, 2, 1]
    assert len({patterns[ks.index(k)] for k in distinct}) == len(distinct), \
        "the stimulus should tell these k apart"
    # a check of the stimulus: the thresholds of k + 1 bits change the slots
    for k in ks[1:] if mode == DETERMINISTIC else [5, 3, 2, 1]:
        golden = Golden(cfg)
        golden.reseed(base.reseed)
        assert tuple(golden.update(replace(base, k=k + 1)).slots) != patterns[ks.index(k)], k
    # k = 1: a threshold is 0, 1/2 or 1 of the full scale
    q1 = probability_thresholds(np.abs(x), base.scale_x, 1)
    assert set(q1.tolist()) <= {0, 1 << 15, 1 << 16}


def test_update_reseed_restarts_every_generator():
    """UPD_SEED loaded by reseed: the same seed twice gives the same slots, another seed
    others; a seed equal to a line's constant (seed ^ C = 0) loads C for that line; a
    stochastic update without reseed continues the sequences."""
    cfg = UPD_CONFIGS[1]
    rng = random.Random(30)
    x, d = random_vector(rng, cfg.rows, cfg.x_max, 0), random_vector(rng, cfg.cols, cfg.x_max, 0)
    base = Update(x, d, bl=24, scale_x=scale_for(0.5 / cfg.x_max),
                  scale_d=scale_for(0.5 / cfg.x_max))
    special = line_constant(LINE_COLUMN_BASE + 1)  # column 1's constant
    seeds = [7, None, 7, 8, special, None]
    updates = [replace(base, reseed=s) for s in seeds]
    got = run_updates(cfg, updates, seed=4)
    check(cfg, updates, got)
    slots = [g["slots"] for g in got]
    assert slots[0] == slots[2] and slots[0] != slots[1] and slots[2] != slots[3]
    assert slots[4] != slots[0]
    states = line_seeds(special, [LINE_COLUMN_BASE + 1])
    assert int(states[0]) == special  # the rule's exception was reached


def test_update_counters_and_last_update_registers():
    """up and down over updates of every sign combination, counted device by device here;
    count, last_bl and last_cycles after each: an update without forward input is refused
    and not counted (last_bl 0, last_cycles 1), a zero update is counted, with no slot
    (last_cycles 3)."""
    cfg = UPD_CONFIGS[0]
    top = cfg.x_max
    sx = scale_for(0.9 / top)
    plus, minus = [top] * cfg.rows, [-top] * cfg.rows
    mixed_x = [top, -top, 3, -2]
    mixed_d = [top, -top, 0, 5, -6, 1]
    updates = [
        Update(plus, [top] * cfg.cols, bl=5, scale_x=sx, scale_d=sx, reseed=99),    # down
        Update(plus, [-top] * cfg.cols, bl=6, scale_x=sx, scale_d=sx),               # up
        Update(minus, [top] * cfg.cols, bl=7, scale_x=sx, scale_d=sx),               # up
        Update(minus, [-top] * cfg.cols, bl=8, scale_x=sx, scale_d=sx),              # down
        Update(mixed_x, mixed_d, bl=200, scale_x=sx, scale_d=sx),
        Update(mixed_x, mixed_d, bl=9, x_valid=False),
        Update(mixed_x, mixed_d, manage=True, eta=0, bl=9),
        Update(mixed_x, mixed_d, mode=DETERMINISTIC, manage=True, bl=50,
               eta=eta_for(30, top, top)),
    ]
    got = run_updates(cfg, updates, seed=5)
    wants = check(cfg, updates, got)
    assert [w.up > 0 for w in wants[:4]] == [False, True, True, False]
    assert [w.down > 0 for w in wants[:4]] == [True, False, False, True]
    assert wants[4].up > 0 and wants[4].down > 0
    assert [g["count"] for g in got] == [1, 2, 3, 4, 5, 5, 6, 7]
    assert [g["last_bl"] for g in got][:7] == [5, 6, 7, 8, 200, 0, 0]
    assert [g["last_cycles"] for g in got][:7] == [33, 34, 35, 36, 228, 1, 3]


def test_update_go_while_busy_is_ignored():
    cfg = UPD_CONFIGS[1]
    x, d = [100, -50, 3, 0, 127], [-127, 60, 1]
    updates = [Update(x, d, bl=20, scale_x=scale_for(0.007), scale_d=scale_for(0.007),
                      reseed=5, go_while_busy=True),
               Update(x, d, manage=True, eta=eta_for(12, 127, 127), bl=255,
                      go_while_busy=True)]
    got = run_updates(cfg, updates, seed=6)
    check(cfg, updates, got)
    assert [g["count"] for g in got] == [1, 2]


@pytest.mark.parametrize("cfg", [TileConfig(rows=3, cols=2, input_bits=2, training=True),
                                 UPD_CONFIGS[2]],
                         ids=cfg_id)
def test_update_unmanaged_scales_at_the_extremes(cfg):
    """Thresholds at their ends: scale 0 (nothing fires), 1, the largest scale (the
    shift-and-add saturates: every line with a magnitude fires in every slot), and scales
    that put |v| S >> 8 at 2**16 - 1 and at 2**16 for the largest magnitude; 1-bit
    magnitudes (input_bits 2) among them."""
    top = cfg.x_max
    x = [top] + [(-1) ** r * max(top // (r + 1), 1) for r in range(1, cfg.rows)]
    d = [-top] + [max(top // (c + 2), 1) for c in range(1, cfg.cols)]
    edge = ((1 << 24) - 1) // top  # top * edge >> 8 just below 2**16
    scales = [(0, 0), (1, 1), ((1 << 32) - 1, (1 << 32) - 1), (edge, edge + 1),
              (edge + 1, edge), (-(-(1 << 24) // top), 1 << 20)]
    updates = [Update(x, d, bl=40, scale_x=a, scale_d=b, reseed=77 if i == 0 else None)
               for i, (a, b) in enumerate(scales)]
    got = run_updates(cfg, updates, seed=11)
    wants = check(cfg, updates, got)
    assert all(s == (0, 0, 0, 0) for s in wants[0].slots)
    full = (1 << cfg.rows) - 1, (1 << cfg.cols) - 1
    assert all((s[0], s[2]) == full for s in wants[2].slots)
    assert probability_thresholds([top], edge, PROB_BITS)[0] < 1 << 16
    assert probability_thresholds([top], scales[-1][0], PROB_BITS)[0] == 1 << 16


# -- update management ---------------------------------------------------------------------


MANAGED = [
    # (eta, x_max, d_max, UPD_BL): what the case reaches
    (1 << 24, 1, 1, 255),            # m = 1.0 exactly: BL 1, P 1
    (1 << 9, 127, 127, 255),         # m about 0.49: BL 1, P = sqrt(m) < 1
    (1 << 20, 100, 50, 31),          # m = 19531 > UPD_BL: BL clipped, r capped, P = 1
    (5 << 18, 127, 127, 255),        # m about 1260: BL 255, P = 1
    (123457, 37, 90, 255),           # m about 24.5: BL 25, r = round(m / 25)
    (3 << 22, 2, 127, 3),            # m = 190.5 > UPD_BL 3: clipped
    ((1 << 32) - 1, 127, 127, 200),  # the largest eta: m about 2**32 (saturated), BL 200
]


@pytest.mark.parametrize("mode", [STOCHASTIC, DETERMINISTIC], ids=["stochastic", "deterministic"])
def test_update_management_bl_and_scales(mode):
    """Managed updates over the corners of ``manage``: BL from ceil(m) or UPD_BL, the
    probability P = sqrt(m / BL) at most 1, the scales P / |x|max and P / |d|max. BL is
    checked on last_bl and the slots, the scales through every slot's lines."""
    cfg = TileConfig(rows=6, cols=5, training=True)
    rng = random.Random(40 + mode.value)
    updates = []
    for i, (eta, xm, dm, bl) in enumerate(MANAGED):
        x = [rng.randint(-xm, xm) for _ in range(cfg.rows)]
        d = [rng.randint(-dm, dm) for _ in range(cfg.cols)]
        x[i % cfg.rows], d[i % cfg.cols] = xm, -dm
        updates.append(Update(x, d, mode=mode, manage=True, eta=eta, bl=bl,
                              reseed=1000 + i if mode == STOCHASTIC else None))
    got = run_updates(cfg, updates, seed=7)
    wants = check(cfg, updates, got)
    schedules = [manage(eta, xm, dm, bl) for eta, xm, dm, bl in MANAGED]
    assert [w.bl for w in wants] == [s.bl for s in schedules] == [1, 1, 31, 255, 25, 3, 200]
    assert [s.p_q16 < 1 << 16 for s in schedules] == [False, True, False, False, True, False,
                                                       False]
    assert schedules[-1].m_q16 == (1 << 32) - 1  # saturated
    # the largest lines fire with probability P: at P = 1 in every slot
    for u, w, s in zip(updates, wants, schedules, strict=True):
        if s.p_q16 == 1 << 16:
            r, c = u.x.index(max(u.x, key=abs)), u.d.index(max(u.d, key=abs))
            assert all(slot[0] >> r & 1 and slot[2] >> c & 1 for slot in w.slots)


def floored_ratio_scales(eta, x_max, d_max, bl_max):
    """The scales ``manage`` would give with ``r = m // BL`` (the ratio rounded down, not
    to nearest): what the stimulus below must tell from the rules'."""
    s = manage(eta, x_max, d_max, bl_max)
    p = math.isqrt(min(s.m_q16 // s.bl, 1 << PROB_BITS) << PROB_BITS)
    return [((p << SCALE_FRAC) + v // 2) // v for v in (x_max, d_max)]


def test_update_management_scales_are_seen_to_the_lsb():
    """The managed scales by their effect, to the last bit: deterministic managed updates
    with rows and columns chosen so that a scale one LSB above or below the rules' would
    fire a line in other slots (a row's threshold next to a ramp value; a column's that
    moves an accumulator's crossing of 2**16 by a slot), and so would the scale of a ratio
    m / BL rounded down instead of to nearest (for the first two updates); the RTL's slots
    match the rules'."""
    cfg = TileConfig(rows=6, cols=6, input_bits=12, training=True)  # x_max 2047: fine steps
    rng = random.Random(50)
    updates = []
    while len(updates) < 4:
        xm, dm = rng.randint(300, 2047), rng.randint(300, 2047)
        eta = eta_for(rng.uniform(2, 250), xm, dm)
        s = manage(eta, xm, dm, 255)
        floored = floored_ratio_scales(eta, xm, dm, 255)
        if len(updates) < 2 and floored == [s.scale_x, s.scale_d]:
            continue
        tx, td = row_slots(s.bl), col_slots(s.bl)
        # a line per other scale whose slots differ between the two
        xs = [telling(rng, xm, tx, rule(s.scale_x), rule(o))
              for o in sorted({s.scale_x + 1, s.scale_x - 1, floored[0]} - {s.scale_x})]
        ds = [telling(rng, dm, td, rule(s.scale_d), rule(o))
              for o in sorted({s.scale_d + 1, s.scale_d - 1, floored[1]} - {s.scale_d})]
        if None in xs + ds:
            continue
        x = [xm] + [rng.choice([-1, 1]) * mag for mag in xs]
        d = [-dm] + [rng.choice([-1, 1]) * mag for mag in ds]
        x += [rng.randint(-xm, xm) for _ in range(cfg.rows - len(x))]
        d += [rng.randint(-dm, dm) for _ in range(cfg.cols - len(d))]
        updates.append(Update(x, d, mode=DETERMINISTIC, manage=True, eta=eta, bl=255))
    got = run_updates(cfg, updates, seed=8)
    wants = check(cfg, updates, got)
    golden = Golden(cfg)
    for i, (u, w) in enumerate(zip(updates, wants, strict=True)):
        # a check of the stimulus: other scales change the slots
        s = manage(u.eta, max(map(abs, u.x)), max(map(abs, u.d)), u.bl)
        others = [(s.scale_x + 1, s.scale_d), (s.scale_x - 1, s.scale_d),
                  (s.scale_x, s.scale_d + 1), (s.scale_x, s.scale_d - 1)]
        if i < 2:
            others.append(tuple(floored_ratio_scales(u.eta, max(map(abs, u.x)),
                                                     max(map(abs, u.d)), u.bl)))
        for sx, sd in others:
            off = replace(u, manage=False, bl=s.bl, scale_x=sx, scale_d=sd)
            assert golden.update(off).slots != w.slots, (i, sx, sd)


def test_update_without_forward_input_ends_at_once_with_error():
    """x_valid low: done with error in the cycle after go (last_cycles 1), no upd_start, no
    slot, last_bl 0, whatever the registers say; managed or not; not counted (count stays
    at the one update that ran)."""
    cfg = UPD_CONFIGS[1]
    x, d = [100, -50, 3, 0, 127], [-127, 60, 1]
    updates = [Update(x, d, bl=50, scale_x=scale_for(0.007), scale_d=scale_for(0.007),
                      reseed=3),
               Update(x, d, bl=50, scale_x=scale_for(0.007), scale_d=scale_for(0.007),
                      x_valid=False),
               Update(x, d, manage=True, eta=eta_for(20, 127, 127), bl=255, x_valid=False),
               Update(x, d, mode=DETERMINISTIC, manage=True, eta=0, bl=255, x_valid=False)]
    got = run_updates(cfg, updates, seed=9)
    check(cfg, updates, got)
    for g in got[1:]:
        assert (g["done"] - g["go"], g["last_cycles"], g["last_bl"], g["error"]) == (1, 1, 0, 1)
        assert g["starts"] == g["pulses"] == []
        assert g["count"] == 1
    assert got[0]["last_bl"] == 50 and not got[0]["error"]
    assert got[1]["up"] == got[0]["up"] and got[1]["down"] == got[0]["down"]


def test_update_of_a_zero_vector_has_no_slot():
    """Managed, m == 0 (x = 0, d = 0 or eta = 0): done without error and without a slot,
    last_bl 0, last_cycles 3, but upd_start once, in the done cycle, and counted (so that
    every update that runs numbers its noise events alike); the up and down counts stay,
    and so do the generators (no slot, no step: the update after them continues the draws
    of the one before)."""
    cfg = UPD_CONFIGS[0]
    top = cfg.x_max
    x, d = [top, -3, 0, 2], [-top, 0, 0, 1, 2, 3]
    eta = eta_for(10, top, top)
    updates = [Update(x, d, manage=True, eta=eta, bl=255, reseed=11),
               Update([0] * cfg.rows, d, manage=True, eta=eta, bl=255),
               Update(x, [0] * cfg.cols, manage=True, eta=eta, bl=255),
               Update(x, d, manage=True, eta=0, bl=255),
               Update(x, d, mode=DETERMINISTIC, manage=True, eta=0, bl=255),
               Update(x, d, manage=True, eta=1, bl=255),   # m >> 8 rounds down to 0 too
               Update(x, d, manage=True, eta=eta, bl=255)]
    got = run_updates(cfg, updates, seed=10)
    wants = check(cfg, updates, got)
    assert wants[0].bl > 0 and [w.bl for w in wants[1:-1]] == [0] * 5 and wants[-1].bl > 0
    for i, g in enumerate(got[1:-1], 1):
        assert g["starts"] == [g["done"]] and g["pulses"] == [], i
        assert not g["error"] and (g["last_bl"], g["last_cycles"]) == (0, 3), i
        assert (g["up"], g["down"], g["count"]) == (got[0]["up"], got[0]["down"], i + 1), i


# -- the length of an update ---------------------------------------------------------------

#: Cycles from go to done (last_cycles) beyond the BL slots, as rtl.update.update_cycles
#: states them and as measured: unmanaged, the ramp step's division (27 cycles) and the
#: start cycle; managed, the management's units one after the other (product, BL, ratio,
#: square root, scales) and the thresholds' shift and add (one cycle per magnitude bit).
UNMANAGED_EXTRA = 28


def managed_extra(cfg):
    return 71 + cfg.mag_bits


@pytest.mark.parametrize("rows, cols, input_bits", [
    (1, 1, 8), (3, 5, 8), (8, 2, 8), (16, 16, 8), (3, 5, 4), (8, 2, 12)])
def test_update_length_is_bl_plus_a_constant(rows, cols, input_bits):
    """last_cycles - BL for BL 1, 2, 17 and 255, managed and unmanaged, on tiles of 1 to
    16 rows and columns: the same constant for every size (each case asserts the one
    measured, and ``update_cycles`` states it), the unmanaged one for every input width
    too; last_cycles is the go-to-done count (checked with the slots)."""
    cfg = TileConfig(rows=rows, cols=cols, input_bits=input_bits, training=True)
    top = cfg.x_max
    x = [top] + [1] * (rows - 1)
    d = [-top] + [2] * (cols - 1)
    updates = []
    for bl in (1, 2, 17, 255):
        updates.append(Update(x, d, bl=bl, scale_x=scale_for(0.5 / top),
                              scale_d=scale_for(0.5 / top), reseed=bl))
        # managed: m a little below bl, so that ceil(m) = bl (255: clipped by UPD_BL)
        m = bl - 0.5 if bl < 255 else 400
        updates.append(Update(x, d, manage=True, eta=eta_for(m, top, top), bl=255))
    got = run_updates(cfg, updates, seed=rows)
    wants = check(cfg, updates, got)
    assert [w.bl for w in wants] == [1, 1, 2, 2, 17, 17, 255, 255]
    extras = {(u.manage, g["last_cycles"] - g["last_bl"])
              for u, g in zip(updates, got, strict=True)}
    assert extras == {(False, UNMANAGED_EXTRA), (True, managed_extra(cfg))}
    for bl in (1, 2, 17, 255):
        assert update_cycles(cfg, bl, False) - bl == UNMANAGED_EXTRA
        assert update_cycles(cfg, bl, True) - bl == managed_extra(cfg)
    assert (update_cycles(cfg, 0, True), update_cycles(cfg, 0, True, ran=False),
            update_cycles(cfg, 9, False, ran=False)) == (3, 1, 1)


def test_update_engine_rejects_a_non_config():
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not 'x'$"):
        UpdateEngine("x")
