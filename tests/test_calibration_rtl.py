"""Calibration datapath components alone in Amaranth's simulator.

The Corrector against ``CalFormat.correct`` / ``CalFormat.uncorrected`` (bit exact, under
back-pressure, at full rate), and the RegisterFile's W1P and RWH fields, reset values and
per-column windows, driven over its AXI4-Lite port. The coefficient memories and the window
memories are emulated in the test benches as synchronous-read memories.
"""

import random

import numpy as np
import pytest
from simulation import simulate

from aimc import TileConfig
from aimc.enums import CalPhase, CorrectMode, ResultKind
from aimc.fixedpoint import GAIN_BITS, ONE, CalFormat
from aimc.rtl.axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR
from aimc.rtl.correct import LATENCY, Corrector, coef_words
from aimc.rtl.csr import RegisterFile
from aimc.rtl.regmap import register_map, windows

CORRECTOR_CONFIGS = [
    TileConfig(rows=8, cols=12, lanes=4),  # three full beats, 16-bit lanes
    TileConfig(rows=8, cols=10, lanes=4),  # last of three beats has 2 padding lanes
    TileConfig(rows=8, cols=12, lanes=8),  # last of two beats has 4 padding lanes
    TileConfig(rows=8, cols=8, input_mode="bitserial", lanes=8),  # 15-bit results, 32-bit lanes
]
MODES = list(CorrectMode)



def signed_range(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def to_signed(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def pack(values, width):
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def unpack(word, width, n):
    return [to_signed(word >> (i * width), width) for i in range(n)]


def cfg_id(cfg):
    return cfg.key


# -- Corrector ---------------------------------------------------------------------------


def make_batches(cfg, rng, n_random, drifts=None):
    """Coefficient sets, each with a drift scale and raw vectors (padding lanes included,
    filled with noise that must not reach the output)."""
    fmt = CalFormat(cfg)
    width = cfg.out_beats * cfg.lanes
    rlo, rhi = signed_range(fmt.raw_bits)
    olo, ohi = signed_range(fmt.off_bits)
    gmax = (1 << GAIN_BITS) - 1
    rail_lo, rail_hi = fmt.rails

    def vectors():
        fixed = [[rlo] * width, [rhi] * width, [0] * width, [-1] * width,
                 [rlo, rhi] * (width // 2), [rail_lo, rail_hi, 1, -1] * (width // 4)]
        rand = [[rng.randint(rlo, rhi) for _ in range(width)] for _ in range(n_random)]
        return fixed + rand

    def cycle(values):
        return [values[i % len(values)] for i in range(width)]

    coefs = [
        # the extremes of both memories, in every combination over the columns
        (cycle([olo, ohi, 0, -1, olo, ohi, 1]), cycle([0, gmax, ONE, 1, gmax])),
        # anything in range
        ([rng.randint(olo, ohi) for _ in range(width)],
         [rng.randint(0, gmax) for _ in range(width)]),
        # calibrated-looking: small offsets, gains near 1 (mostly unsaturated results)
        ([rng.randint(-(1 << (fmt.raw_bits + 1)), 1 << (fmt.raw_bits + 1)) for _ in range(width)],
         [rng.randint(ONE - ONE // 4, ONE + ONE // 4) for _ in range(width)]),
        ([rng.randint(olo, ohi) for _ in range(width)],
         [rng.randint(0, gmax) for _ in range(width)]),
    ]
    drifts = drifts or [ONE, gmax, 0, rng.randint(1, gmax)]
    return [(off, gain, drift, vectors()) for (off, gain), drift in zip(coefs, drifts,
                                                                        strict=True)]


def expected_beats(cfg, mode, batches):
    """[(lanes, tlast, saturated)] for every beat, from CalFormat."""
    fmt = CalFormat(cfg)
    cols, lanes = cfg.cols, cfg.lanes
    pad = cfg.out_beats * lanes - cols
    beats = []
    for offsets, gains, drift, vectors in batches:
        for v in vectors:
            raw = np.array(v[:cols])
            if mode == CorrectMode.RAW:
                value, sat = fmt.uncorrected(raw), np.zeros(cols, dtype=bool)
            else:
                value, sat = fmt.correct(raw, offsets[:cols], gains[:cols],
                                         drift if mode == CorrectMode.CORRECT else ONE)
            value = [int(x) for x in value] + [0] * pad
            sat = [bool(x) for x in sat] + [False] * pad
            for k in range(cfg.out_beats):
                sl = slice(k * lanes, (k + 1) * lanes)
                beats.append((value[sl], int(k == cfg.out_beats - 1), sum(sat[sl])))
    return beats


def run_corrector(cfg, mode, batches, *, seed=0, p_valid=1.0, p_ready=1.0):
    """Stream ``batches`` through a Corrector; returns (accept cycles, output beats), the
    beats as (cycle, lanes, tlast, saturated). Checks the AXI4-Stream rules of the output
    (held while stalled), ``saturated`` outside transfers and ``idle`` on the way."""
    dut = Corrector(cfg)
    fmt = CalFormat(cfg)
    lanes, lw, n_beats = cfg.lanes, cfg.out_lane_width, cfg.out_beats
    rng = random.Random(seed)
    mem = {"offset": [0] * n_beats, "gain": [0] * n_beats}
    accepted, out = [], []

    async def memory(ctx):
        # Two synchronous-read memories: the word addressed in a cycle with coef_en high is
        # on the data port from the next cycle on, until the next enabled read.
        async for _, _, en, addr in ctx.tick().sample(dut.coef_en, dut.coef_addr):
            if en:
                assert addr < n_beats, f"coefficient read past the last beat: {addr}"
                ctx.set(dut.offset.as_value(), mem["offset"][addr])
                ctx.set(dut.gain.as_value(), mem["gain"][addr])

    async def bench(ctx):
        ctx.set(dut.mode, mode)
        now, held = 0, None
        for offsets, gains, drift, vectors in batches:
            # Loaded while the pipeline is empty, as the calibration engine does.
            assert ctx.get(dut.idle)
            mem["offset"] = [pack(offsets[k * lanes:(k + 1) * lanes], fmt.off_bits)
                             for k in range(n_beats)]
            mem["gain"] = [pack(gains[k * lanes:(k + 1) * lanes], GAIN_BITS)
                           for k in range(n_beats)]
            ctx.set(dut.drift, drift)
            queue = [(pack(v[k * lanes:(k + 1) * lanes], lw), int(k == n_beats - 1))
                     for v in vectors for k in range(n_beats)]
            target = len(out) + len(queue)
            i, offered, limit = 0, False, now + 50 * len(queue) + 20
            while len(out) < target:
                assert now < limit, "the Corrector stopped moving"
                # idle: nothing accepted that has not left yet
                assert ctx.get(dut.idle) == (len(accepted) == len(out)), f"idle, cycle {now}"
                if i < len(queue) and not offered:
                    offered = rng.random() < p_valid
                if offered:
                    tdata, tlast = queue[i]
                else:  # noise the Corrector must ignore
                    tdata, tlast = rng.getrandbits(cfg.out_data_width), rng.getrandbits(1)
                ctx.set(dut.sink.valid, offered)
                ctx.set(dut.sink.payload.data.as_value(), tdata)
                ctx.set(dut.sink.payload.last, tlast)
                ready = rng.random() < p_ready
                ctx.set(dut.source.ready, ready)
                if offered and ctx.get(dut.sink.ready):
                    accepted.append(now)
                    i, offered = i + 1, False
                valid = ctx.get(dut.source.valid)
                beat = (ctx.get(dut.source.payload.data.as_value()),
                        ctx.get(dut.source.payload.last))
                if held is not None:
                    assert valid and beat == held, f"output changed while stalled, cycle {now}"
                saturated = ctx.get(dut.saturated)
                if valid and ready:
                    out.append((now, unpack(beat[0], lw, lanes), beat[1], saturated))
                    held = None
                else:
                    assert saturated == 0, f"saturated outside a transfer, cycle {now}"
                    held = beat if valid else None
                await ctx.tick()
                now += 1
        ctx.set(dut.sink.valid, 0)
        assert ctx.get(dut.idle) and not ctx.get(dut.source.valid)
        for _ in range(LATENCY + 1):  # nothing more comes out
            await ctx.tick()
            assert not ctx.get(dut.source.valid)

    simulate(dut, bench, memory)
    return accepted, out


def check_beats(cfg, mode, batches, out):
    want = expected_beats(cfg, mode, batches)
    assert len(out) == len(want), f"{len(out)} beats out, {len(want)} in"
    for n, ((cycle, lanes, tlast, sat), (w_lanes, w_last, w_sat)) in enumerate(
            zip(out, want, strict=True)):
        where = f"beat {n} (vector {n // cfg.out_beats}, beat {n % cfg.out_beats}), cycle {cycle}"
        assert lanes == w_lanes, f"{where}: lanes {lanes}, expected {w_lanes}"
        assert tlast == w_last, f"{where}: TLAST {tlast}"
        assert sat == w_sat, f"{where}: saturated {sat}, expected {w_sat}"
    return want


@pytest.mark.parametrize("mode", MODES, ids=["raw", "no_drift", "correct"])
@pytest.mark.parametrize("cfg", CORRECTOR_CONFIGS, ids=cfg_id)
def test_corrector_bit_exact(cfg, mode):
    rng = random.Random(10 * CORRECTOR_CONFIGS.index(cfg) + mode.value)
    batches = make_batches(cfg, rng, n_random=24 if cfg.out_beats > 1 else 48)
    _, out = run_corrector(cfg, mode, batches, seed=mode.value)
    want = check_beats(cfg, mode, batches, out)
    saturated = sum(s for _, _, s in want)
    columns = len(want) // cfg.out_beats * cfg.cols
    if mode == CorrectMode.RAW:
        assert saturated == 0
        fmt = CalFormat(cfg)
        lo, hi = signed_range(fmt.raw_bits)
        values = {v for lanes, _, _ in want for v in lanes}
        assert {lo << 2, hi << 2} <= values, "the raw extremes went through"
    else:
        # The stimulus reaches both sides of the clamp, and plenty of unclamped results.
        assert 0 < saturated < columns * 3 // 4
        assert any(any(v == (1 << (CalFormat(cfg).out_bits - 1)) - 1 for v in lanes)
                   for lanes, _, _ in want)
        assert any(any(v == -(1 << (CalFormat(cfg).out_bits - 1)) for v in lanes)
                   for lanes, _, _ in want)


@pytest.mark.parametrize("p_valid, p_ready, seed", [(0.6, 0.5, 1), (0.3, 0.9, 2), (0.9, 0.3, 3)])
@pytest.mark.parametrize("cfg", [CORRECTOR_CONFIGS[1], CORRECTOR_CONFIGS[3]], ids=cfg_id)
def test_corrector_back_pressure(cfg, p_valid, p_ready, seed):
    rng = random.Random(seed)
    batches = make_batches(cfg, rng, n_random=12)
    for mode in (CorrectMode.RAW, CorrectMode.CORRECT):
        accepted, out = run_corrector(cfg, mode, batches, seed=seed, p_valid=p_valid,
                                      p_ready=p_ready)
        # Every beat exactly once, in order, with its own coefficients (compared bit for bit;
        # the random raw beats differ, so a lost, repeated or swapped beat shows).
        check_beats(cfg, mode, batches, out)
        assert len(accepted) == len(out)
        for a, (cycle, _, _, _) in zip(accepted, out, strict=True):
            assert cycle >= a + LATENCY
        # the stimulus really stalled both sides
        cycles = out[-1][0] + 1
        assert cycles > 1.3 * len(out)


@pytest.mark.parametrize("cfg", [CORRECTOR_CONFIGS[0], CORRECTOR_CONFIGS[3]], ids=cfg_id)
def test_corrector_full_throughput(cfg):
    rng = random.Random(5)
    # one coefficient set (full-range random) and drift scale, so the stream never pauses
    batches = make_batches(cfg, rng, n_random=16, drifts=[ONE + 1234] * 4)[1:2]
    accepted, out = run_corrector(cfg, CorrectMode.CORRECT, batches)
    check_beats(cfg, CorrectMode.CORRECT, batches, out)
    n = len(out)
    # one beat accepted every cycle from the first, each leaving exactly LATENCY cycles later
    assert accepted == list(range(n))
    assert [cycle for cycle, _, _, _ in out] == list(range(LATENCY, n + LATENCY))


BACKWARD_CONFIGS = [  # training tiles: backward results, the rows' coefficients
    # backward: 3 beats, 2 padding lanes; forward 1
    TileConfig(rows=10, cols=4, lanes=4, training=True),
    # backward: 2 beats, 1 padding lane; forward 4
    TileConfig(rows=3, cols=8, lanes=2, input_mode="bitserial", training=True),
]


def run_corrector_kinds(cfg, mode, coefs, drift, vectors, *, seed):
    """Stream ``vectors`` [(ResultKind, raw values of the vector's lines)] through a
    Corrector whose coefficient memories hold ``coefs`` (offsets, gains: the columns'
    ``out_beats`` words, then the rows' ``back_beats``), with random gaps and
    back-pressure. Lanes past a vector's length carry noise. Returns the output beats as
    (lanes, last, kind, saturated) and the word addresses read for each accepted beat."""
    dut = Corrector(cfg)
    fmt = CalFormat(cfg)
    lanes, lw = cfg.lanes, cfg.out_lane_width
    words = coef_words(cfg)
    assert words == cfg.out_beats + cfg.back_beats
    offsets, gains = coefs
    mem = {"offset": [pack(offsets[w * lanes:(w + 1) * lanes], fmt.off_bits)
                      for w in range(words)],
           "gain": [pack(gains[w * lanes:(w + 1) * lanes], GAIN_BITS) for w in range(words)]}
    rng = random.Random(seed)
    rlo, rhi = signed_range(fmt.raw_bits)
    queue = []
    for kind, raw in vectors:
        beats = cfg.back_beats if kind == ResultKind.BACKWARD else cfg.out_beats
        padded = list(raw) + [rng.randint(rlo, rhi) for _ in range(beats * lanes - len(raw))]
        queue += [(pack(padded[k * lanes:(k + 1) * lanes], lw), int(k == beats - 1), kind)
                  for k in range(beats)]
    out, reads = [], []

    async def memory(ctx):
        # The address follows the sink's kind and the beat count also while no beat is
        # offered (noise on the kind here): a word past the memory is undefined in Verilog,
        # so it reads as noise, which must not matter (the beats taken are checked below).
        async for _, _, en, addr in ctx.tick().sample(dut.coef_en, dut.coef_addr):
            if en and addr < words:
                ctx.set(dut.offset.as_value(), mem["offset"][addr])
                ctx.set(dut.gain.as_value(), mem["gain"][addr])
            elif en:
                ctx.set(dut.offset.as_value(), rng.getrandbits(len(dut.offset.as_value())))
                ctx.set(dut.gain.as_value(), rng.getrandbits(len(dut.gain.as_value())))

    async def bench(ctx):
        ctx.set(dut.mode, mode)
        ctx.set(dut.drift, drift)
        i, offered, now = 0, False, 0
        while len(out) < len(queue):
            assert now < 50 * len(queue) + 20, "the Corrector stopped moving"
            if i < len(queue) and not offered:
                offered = rng.random() < 0.7
            tdata, tlast, kind = queue[i] if offered else (
                rng.getrandbits(cfg.out_data_width), rng.getrandbits(1), rng.randrange(3))
            ctx.set(dut.sink.valid, offered)
            ctx.set(dut.sink.payload.data.as_value(), tdata)
            ctx.set(dut.sink.payload.last, tlast)
            ctx.set(dut.sink.payload.kind, kind)
            ready = rng.random() < 0.6
            ctx.set(dut.source.ready, ready)
            if offered and ctx.get(dut.sink.ready):
                assert ctx.get(dut.coef_en)
                reads.append(ctx.get(dut.coef_addr))
                i, offered = i + 1, False
            if ctx.get(dut.source.valid) and ready:
                out.append((unpack(ctx.get(dut.source.payload.data.as_value()), lw, lanes),
                            ctx.get(dut.source.payload.last),
                            ResultKind(ctx.get(dut.source.payload.kind)),
                            ctx.get(dut.saturated)))
            await ctx.tick()
            now += 1

    simulate(dut, bench, memory)
    return out, reads


@pytest.mark.parametrize("mode", MODES, ids=["raw", "no_drift", "correct"])
@pytest.mark.parametrize("cfg", BACKWARD_CONFIGS, ids=cfg_id)
def test_corrector_backward_vectors_use_the_row_coefficients(cfg, mode):
    """Backward vectors (one result per row, ``back_beats`` beats, kind BACKWARD) mixed with
    forward ones: each beat read from word ``out_beats + beat`` (the rows' coefficients),
    corrected with them (CalFormat on the rows), lanes valid up to ``rows`` (the padding
    lanes 0 and not counted as saturated), ``last`` and ``kind`` passed through."""
    rng = random.Random(40 + 3 * BACKWARD_CONFIGS.index(cfg) + mode.value)
    fmt = CalFormat(cfg)
    rlo, rhi = signed_range(fmt.raw_bits)
    olo, ohi = signed_range(fmt.off_bits)
    lanes = cfg.lanes
    # columns' words, then rows' words, each padded to whole words; gains near 1 for some
    # lines, anything for others, so that both clamped and unclamped results occur
    col = [(rng.randint(olo, ohi), rng.choice([rng.randint(0, (1 << GAIN_BITS) - 1),
                                               rng.randint(ONE - ONE // 4, ONE + ONE // 4)]))
           for _ in range(cfg.out_beats * lanes)]
    row = [(rng.randint(olo // 8, ohi // 8), rng.choice([rng.randint(0, (1 << GAIN_BITS) - 1),
                                                         rng.randint(ONE // 2, ONE * 2)]))
           for _ in range(cfg.back_beats * lanes)]
    offsets = [o for o, _ in col + row]
    gains = [g for _, g in col + row]
    drift = rng.randint(ONE // 2, 2 * ONE)
    kinds = [ResultKind.BACKWARD, ResultKind.BACKWARD, ResultKind.FORWARD, ResultKind.BACKWARD,
             ResultKind.FORWARD, ResultKind.FORWARD] + [rng.choice(
                 [ResultKind.FORWARD, ResultKind.BACKWARD]) for _ in range(14)]
    vectors = []
    for kind in kinds:
        n = cfg.rows if kind == ResultKind.BACKWARD else cfg.cols
        vectors.append((kind, [rng.choice([rlo, rhi]) if rng.random() < 0.1
                               else rng.randint(rlo, rhi) for _ in range(n)]))
    out, reads = run_corrector_kinds(cfg, mode, (offsets, gains), drift, vectors, seed=mode.value)

    want, want_reads = [], []
    for kind, raw in vectors:
        backward = kind == ResultKind.BACKWARD
        n, beats = (cfg.rows, cfg.back_beats) if backward else (cfg.cols, cfg.out_beats)
        base = cfg.out_beats * lanes if backward else 0
        if mode == CorrectMode.RAW:
            value, sat = fmt.uncorrected(raw), np.zeros(n, dtype=bool)
        else:
            value, sat = fmt.correct(raw, offsets[base:base + n], gains[base:base + n],
                                     drift if mode == CorrectMode.CORRECT else ONE)
        value = [int(v) for v in value] + [0] * (beats * lanes - n)
        sat = [bool(v) for v in sat] + [False] * (beats * lanes - n)
        for k in range(beats):
            sl = slice(k * lanes, (k + 1) * lanes)
            want.append((value[sl], int(k == beats - 1), kind, sum(sat[sl])))
            want_reads.append(base // lanes + k)
    assert reads == want_reads
    assert len(out) == len(want)
    for n, (g, w) in enumerate(zip(out, want, strict=True)):
        assert g == w, f"beat {n}: {g}, expected {w}"
    if mode != CorrectMode.RAW:
        # the stimulus clamped some backward results and left others alone
        back_sat = [w[3] for w in want if w[2] == ResultKind.BACKWARD]
        assert 0 < sum(back_sat) < sum(1 for w in want if w[2] == ResultKind.BACKWARD) * lanes


# -- RegisterFile ------------------------------------------------------------------------

LITE_CFG = TileConfig(rows=8, cols=8)
ALL_PHASES = int(~CalPhase(0))


def reg(cfg, name):
    return next(r for r in register_map(cfg) if r.name == name)


def window(cfg, name):
    return next(w for w in windows(cfg) if w.name == name)


class LiteHost:
    """AXI4-Lite manager for a RegisterFile, with a synchronous-read memory behind each
    window: the word addressed in a cycle with ``_re`` high is on ``_rdata`` in the next
    cycle only (noise in every other cycle); ``_we`` writes ``_wdata``. Every strobe is
    logged as (cycle, window, "re"/"we", addr, wdata); ``watch`` signals are sampled every
    cycle into ``trace``."""

    def __init__(self, ctx, dut, rng):
        self.ctx, self.dut, self.rng = ctx, dut, rng
        self.now = 0
        self.names = [w.name.lower() for w in dut.windows]
        self.words = {w.name.lower(): w.words for w in dut.windows}
        self.mem = {n: [rng.getrandbits(32) for _ in range(self.words[n])] for n in self.names}
        self.events, self.watch, self.trace = [], {}, []
        self.a_cycle = None  # cycle of the last address handshake

    async def cycle(self):
        ctx, dut = self.ctx, self.dut
        reads = {}
        for n in self.names:
            win = getattr(dut.win, n)
            addr = ctx.get(win.addr)
            re, we = ctx.get(win.re), ctx.get(win.we)
            assert not (re or we) or addr < self.words[n], f"{n}: strobe for word {addr}"
            if re:
                self.events.append((self.now, n, "re", addr, None))
                reads[n] = self.mem[n][addr]
            if we:
                wdata = ctx.get(win.wdata)
                self.events.append((self.now, n, "we", addr, wdata))
                self.mem[n][addr] = wdata
        self.trace.append({k: ctx.get(s) for k, s in self.watch.items()})
        await ctx.tick()
        self.now += 1
        for n in self.names:
            ctx.set(getattr(self.dut.win, n).rdata, reads.get(n, self.rng.getrandbits(32)))

    async def idle(self, n=1):
        for _ in range(n):
            await self.cycle()

    async def read(self, addr, timeout=8):
        ctx, bus = self.ctx, self.dut.bus
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.rready, 1)
        for _ in range(timeout):
            done = ctx.get(bus.arready)
            await self.cycle()
            if done:
                break
        else:
            raise AssertionError(f"read {addr:#x}: no ARREADY")
        self.a_cycle = self.now - 1
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.araddr, self.rng.getrandbits(len(bus.araddr)))
        for _ in range(timeout):
            if ctx.get(bus.rvalid):
                data, resp = ctx.get(bus.rdata), ctx.get(bus.rresp)
                await self.cycle()
                ctx.set(bus.rready, 0)
                return data, resp
            await self.cycle()
        raise AssertionError(f"read {addr:#x}: no RVALID")

    async def write(self, addr, data, strb=0xF, hw=(), timeout=8):
        """A write; ``hw`` is a list of (signal, value) applied in the handshake cycle only
        (the register file accepts a write the cycle after it is offered)."""
        ctx, bus = self.ctx, self.dut.bus
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, strb)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        for _ in range(timeout):
            done = ctx.get(bus.awready) and ctx.get(bus.wready)
            if done:  # the hardware writes, if any, in the handshake cycle
                for signal, value in hw:
                    ctx.set(signal, value)
            await self.cycle()
            if done:
                break
        else:
            raise AssertionError(f"write {addr:#x}: no AWREADY/WREADY")
        self.a_cycle = self.now - 1
        for signal, _ in hw:
            ctx.set(signal, 0)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.awaddr, self.rng.getrandbits(len(bus.awaddr)))
        ctx.set(bus.wdata, self.rng.getrandbits(32))
        ctx.set(bus.wstrb, self.rng.getrandbits(4))
        for _ in range(timeout):
            if ctx.get(bus.bvalid):
                resp = ctx.get(bus.bresp)
                await self.cycle()
                ctx.set(bus.bready, 0)
                return resp
            await self.cycle()
        raise AssertionError(f"write {addr:#x}: no BVALID")

    async def write_then_read(self, waddr, wdata, raddr, timeout=12):
        """A write, and a read offered with it (the write's handshake comes first: it takes
        the window ports); returns (bresp, (rdata, rresp), write handshake, read
        handshake)."""
        ctx, bus = self.ctx, self.dut.bus
        ctx.set(bus.awaddr, waddr)
        ctx.set(bus.wdata, wdata)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        ctx.set(bus.rready, 1)
        ctx.set(bus.araddr, raddr)
        ctx.set(bus.arvalid, 1)
        aw_cycle = ar_cycle = b = r = None
        for _ in range(timeout):
            aw = ctx.get(bus.awvalid) and ctx.get(bus.awready) and ctx.get(bus.wready)
            ar = ctx.get(bus.arvalid) and ctx.get(bus.arready)
            if b is None and ctx.get(bus.bvalid):
                b = ctx.get(bus.bresp)
            if r is None and ctx.get(bus.rvalid):
                r = (ctx.get(bus.rdata), ctx.get(bus.rresp))
            await self.cycle()
            if aw:
                aw_cycle = self.now - 1
                ctx.set(bus.awvalid, 0)
                ctx.set(bus.wvalid, 0)
            if ar:
                ar_cycle = self.now - 1
                ctx.set(bus.arvalid, 0)
            if b is not None and r is not None:
                break
        else:
            raise AssertionError("write then read: no response")
        ctx.set(bus.bready, 0)
        ctx.set(bus.rready, 0)
        return b, r, aw_cycle, ar_cycle

    def events_since(self, cycle):
        return [e for e in self.events if e[0] >= cycle]


def run_lite(cfg, body, seed=1):
    """Run ``body(ctx, dut, host)`` against a RegisterFile for ``cfg``; returns the host."""
    dut = RegisterFile(register_map(cfg), windows(cfg))
    hosts = []

    async def bench(ctx):
        host = LiteHost(ctx, dut, random.Random(seed))
        hosts.append(host)
        await host.idle(2)
        await body(ctx, dut, host)

    simulate(dut, bench)
    return hosts[0]


@pytest.mark.parametrize("cfg", [LITE_CFG, TileConfig(rows=8, cols=8, input_mode="bitserial")],
                         ids=cfg_id)
def test_register_file_reset_values(cfg):
    fmt = CalFormat(cfg)
    seen = {}

    async def body(ctx, dut, host):
        assert ctx.get(dut.regs.cal_ctrl.avg_log2) == 6
        assert ctx.get(dut.regs.drift_scale.value.value) == 0x4000
        assert ctx.get(dut.regs.cal_ref.value) == fmt.ref_default
        for r in register_map(cfg):
            seen[r.name] = await host.read(r.offset)

    run_lite(cfg, body)
    assert seen["CAL_CTRL"] == (6 << 8, RESP_OKAY)
    assert seen["DRIFT_SCALE"] == (0x4000, RESP_OKAY)
    assert seen["CAL_REF"] == (fmt.ref_default, RESP_OKAY)
    assert seen["ID"] == (0x41494D43, RESP_OKAY)
    for r in register_map(cfg):
        assert seen[r.name] == (r.reset_value, RESP_OKAY), r.name


def test_register_file_w1p_start():
    cfg = LITE_CFG
    ctrl = reg(cfg, "CAL_CTRL").offset
    pulses, reads = [], []

    async def body(ctx, dut, host):
        assert ctx.get(dut.regs.cal_ctrl.start) == 0
        host.watch = {"start": dut.regs.cal_ctrl.start}
        ports = [dut.regs.cal_ctrl.phases, dut.regs.cal_ctrl.avg_log2]

        async def write(data, strb=0xF, pulse=True):
            assert await host.write(ctrl, data, strb) == RESP_OKAY
            if pulse:
                pulses.append(host.a_cycle + 1)  # the cycle after the handshake
            await host.idle(3)
            reads.append((await host.read(ctrl), [ctx.get(p) for p in ports]))

        await write(0x800 | 0b11111)                   # start and every phase, avg_log2 8
        await write(0x800 | 0b11110, pulse=False)      # same fields, no start
        # avg_log2 9 is outside its legal range: refused whole, no start, nothing changes
        assert await host.write(ctrl, 0x900 | 0b00001) == RESP_SLVERR
        await host.idle(3)
        reads.append((await host.read(ctrl), [ctx.get(p) for p in ports]))
        await write(0xFFFFFF01, strb=0x1)              # start; byte 0 fields cleared
        await write(0x00000301, strb=0xE, pulse=False)  # start not strobed; avg_log2 3
        await write(0x0000071F, strb=0x3)              # start again, all fields
        # a read accepted in the very cycle start is high still reads 0 there
        b, r, aw_cycle, ar_cycle = await host.write_then_read(ctrl, 0x51F, ctrl)
        pulses.append(aw_cycle + 1)
        assert ar_cycle == aw_cycle + 1, "the read was not accepted in the pulse cycle"
        reads.append((r, [b]))
        await host.idle(4)

    host = run_lite(cfg, body)
    assert reads == [
        ((0x81E, RESP_OKAY), [ALL_PHASES, 8]),
        ((0x81E, RESP_OKAY), [ALL_PHASES, 8]),
        ((0x81E, RESP_OKAY), [ALL_PHASES, 8]),
        ((0x800, RESP_OKAY), [0, 8]),
        ((0x300, RESP_OKAY), [0, 3]),
        ((0x71E, RESP_OKAY), [ALL_PHASES, 7]),
        ((0x51E, RESP_OKAY), [RESP_OKAY]),
    ]
    # start is high in exactly the cycle after each write of 1, and never otherwise
    high = [c for c, t in enumerate(host.trace) if t.get("start")]
    assert high == pulses


def test_register_file_rwh_drift_scale():
    cfg = LITE_CFG
    scale = reg(cfg, "DRIFT_SCALE").offset
    ref = reg(cfg, "DRIFT_REF").offset
    got = []

    async def body(ctx, dut, host):
        scale_port = dut.regs.drift_scale.value
        we, value_in, port = scale_port.we, scale_port.data, scale_port.value

        async def check():
            data, resp = await host.read(scale)
            got.append((data, resp, ctx.get(port)))

        assert await host.write(scale, 0xFFFF1234) == RESP_OKAY  # bits above the field drop
        await check()
        # the hardware alone
        ctx.set(we, 1)
        ctx.set(value_in, 0xBEEF)
        await host.cycle()
        ctx.set(we, 0)
        ctx.set(value_in, 0x5A5A)  # ignored without _we
        await host.idle(3)
        await check()
        # the hardware and the bus in the same cycle: the hardware wins
        assert await host.write(scale, 0x5555, hw=[(we, 1), (value_in, 0x7777)]) == RESP_OKAY
        await check()
        # the hardware one cycle before the bus: the bus has the last word
        ctx.set(we, 1)
        ctx.set(value_in, 0x9999)
        await host.cycle()
        ctx.set(we, 0)
        assert await host.write(scale, 0x2222) == RESP_OKAY
        await check()
        # the bus honours WSTRB on an RWH field
        assert await host.write(scale, 0xFFFF, strb=0x1) == RESP_OKAY
        await check()
        # DRIFT_REF (32 bits, RWH) the same way
        assert await host.write(ref, 0x12345678, hw=[(dut.regs.drift_ref.value.we, 1),
                                                     (dut.regs.drift_ref.value.data, 0xCAFEF00D)]) \
            == RESP_OKAY
        got.append(await host.read(ref))
        assert await host.write(ref, 0x12345678) == RESP_OKAY
        got.append(await host.read(ref))

    run_lite(cfg, body)
    assert got == [
        (0x1234, RESP_OKAY, 0x1234),
        (0xBEEF, RESP_OKAY, 0xBEEF),
        (0x7777, RESP_OKAY, 0x7777),
        (0x2222, RESP_OKAY, 0x2222),
        (0x22FF, RESP_OKAY, 0x22FF),
        (0xCAFEF00D, RESP_OKAY),
        (0x12345678, RESP_OKAY),
    ]


WINDOW_CFGS = [LITE_CFG, TileConfig(rows=8, cols=12, lanes=4, training=True),
               TileConfig(rows=8, cols=1, training=True)]


def extend(w, word):
    value = word & ((1 << w.width) - 1)
    return to_signed(value, w.width) & 0xFFFFFFFF if w.signed else value


@pytest.mark.parametrize("cfg", WINDOW_CFGS, ids=cfg_id)
def test_register_file_window_reads(cfg):
    wins = windows(cfg)
    assert [(w.name, w.signed) for w in wins] == [
        ("OFFSET", True), ("GAIN", False), ("COL_STATUS", False), ("COL_FLAGS", False),
        *((("ROW_OFFSET", True), ("ROW_GAIN", False)) if cfg.training else ()),
        ("DRIFT_ROWS", False), ("DRIFT_COLS", False)]
    results = []

    async def body(ctx, dut, host):
        for w in wins:
            mem = host.mem[w.name.lower()]
            # sign bit set with zeros above; sign bit clear with ones above
            mem[0] = 1 << (w.width - 1)
            mem[-1] = 0xFFFFFFFF ^ (1 << (w.width - 1))
        order = [(w, c) for w in wins for c in range(w.words)]
        host.rng.shuffle(order)
        for w, c in order:
            name = w.name.lower()
            word = host.mem[name][c]
            start = host.now
            data, resp = await host.read(w.address(c))
            results.append((w.name, c, word, data, resp, host.a_cycle,
                            host.events_since(start)))
        # past the last column, before the first, and unmapped registers
        for addr in [w.address(w.words) for w in wins] + [0x1000 - 4, 0x3C, 0xFFFC]:
            start = host.now
            data, resp = await host.read(addr)
            results.append(("-", addr, None, data, resp, host.a_cycle,
                            host.events_since(start)))

    run_lite(cfg, body)
    for name, c, word, data, resp, a_cycle, events in results:
        if name == "-":
            assert (resp, events) == (RESP_DECERR, []), f"read {c:#x}"
            continue
        w = window(cfg, name)
        assert resp == RESP_OKAY, f"{name}[{c}]"
        # one read strobe, in the address handshake cycle, for this window and word
        assert events == [(a_cycle, name.lower(), "re", c, None)], f"{name}[{c}]"
        # the word the memory returned the cycle after the strobe, extended
        assert data == extend(w, word), f"{name}[{c}]: {data:#x} from {word:#x}"


@pytest.mark.parametrize("cfg", WINDOW_CFGS, ids=cfg_id)
def test_register_file_window_writes(cfg):
    offset, gain, status = (window(cfg, n) for n in ("OFFSET", "GAIN", "COL_STATUS"))
    last = cfg.cols - 1
    rng = random.Random(cfg.cols)
    results = []

    async def body(ctx, dut, host):
        async def write(what, addr, data, strb=0xF):
            start = host.now
            resp = await host.write(addr, data, strb)
            results.append((what, data, resp, host.a_cycle, host.events_since(start)))

        def fitting(w, value):
            """``value`` reduced to window ``w``'s width, as the 32-bit word a host writes."""
            value &= (1 << w.width) - 1
            return extend(w, value)

        columns = sorted({0, last, rng.randrange(cfg.cols)})
        for c, word in zip(columns, [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF], strict=False):
            await write(("ok", "offset", c), offset.address(c), fitting(offset, word))
            await write(("ok", "gain", c), gain.address(c), fitting(gain, word ^ 0x5A5A5A5A))
        for c in columns:
            await write(("ok", "offset", c), offset.address(c),
                        fitting(offset, rng.getrandbits(32)))
        # the written words read back through the memory
        word = fitting(offset, 1 << (offset.width - 1) | rng.getrandbits(offset.width - 1))
        await write(("ok", "offset", last), offset.address(last), word)
        results.append(("readback", await host.read(offset.address(last)), word))
        word = fitting(gain, rng.getrandbits(32))
        await write(("ok", "gain", last), gain.address(last), word)
        results.append(("readback", await host.read(gain.address(last)), word))
        # values wider than the window: not sign-extended, or bits above an unsigned width
        for bad in (1 << offset.width, (1 << (offset.width - 1)), 0x80000000 | 1):
            await write(("slverr", "range"), offset.address(0), bad)
        for bad in (1 << gain.width, 0xFFFFFFFF):
            await write(("slverr", "range"), gain.address(last), bad)
        # partial words
        for strb in (0x3, 0x1, 0x7, 0xE, 0x0):
            await write(("slverr", strb), offset.address(0), 0x1234, strb)
            await write(("slverr", strb), gain.address(last), 0x1234, strb)
        # locked: refused; another window's lock does not matter
        ctx.set(dut.win.offset.lock, 1)
        await write(("slverr", "lock"), offset.address(last), 0x4321)
        await write(("ok", "gain", 0), gain.address(0), 0x4321 & ((1 << gain.width) - 1))
        ctx.set(dut.win.offset.lock, 0)
        ctx.set(dut.win.gain.lock, 1)
        await write(("slverr", "lock"), gain.address(0), 0x4321)
        await write(("ok", "offset", 0), offset.address(0), 0x321)
        ctx.set(dut.win.gain.lock, 0)
        # a read-only window refuses every write
        await write(("slverr", "col_status"), status.address(0), 0x3)
        await write(("slverr", "col_status"), status.address(last), 0x1, 0x1)
        # past the last column, before the first, unmapped
        for addr in [w.address(w.words) for w in (offset, gain, status)] + [0x0FFC, 0x3C]:
            await write(("decerr", addr), addr, 0xFFFFFFFF)
        # a register still answers OKAY after all that
        await write(("reg",), reg(cfg, "DRIFT_X").offset, 5)
        results.append(("readback", await host.read(reg(cfg, "DRIFT_X").offset), 5))

    run_lite(cfg, body)
    writes = 0
    for item in results:
        if item[0] == "readback":
            _, (data, resp), want = item
            assert (data, resp) == (want, RESP_OKAY)
            continue
        what, data, resp, a_cycle, events = item
        if what[0] == "ok":
            _, name, c = what
            assert resp == RESP_OKAY, what
            # one write strobe, in the handshake cycle, with the whole word
            assert events == [(a_cycle, name, "we", c, data)], (what, events)
            writes += 1
        elif what[0] == "slverr":
            assert (resp, events) == (RESP_SLVERR, []), what
        elif what[0] == "decerr":
            assert (resp, events) == (RESP_DECERR, []), f"write {what[1]:#x}"
        else:
            assert (resp, events) == (RESP_OKAY, []), what
    assert writes >= 6
