"""The Sequencer alone in Amaranth's simulator, with the real SarController beside it and a
model of the analogue half as a background testbench.

The model counts the integrations (``int_reset``) and answers every comparison from a
code chosen in advance for each integration and column (a SAR search whose comparator
says ``code >= trial`` ends exactly at ``code``), and drives the integrator-clamp latches
of the columns converted. The schedule of the boundary ports, the raw results (the plane
codes added with shift-and-add), the flags and the per-column events are then computed
here from the cycles the operations started in, the formulas of docs/architecture.md
("Schedule and timing") and the chosen codes, and compared with a trace sampled at every
clock edge.
"""

import random

import pytest
from amaranth import Elaboratable, Module
from component_bench import RandomReady, Source, Trace, pack, run, unpack, wait_until

from aimc import TileConfig
from aimc.programming import READ_CYCLES
from aimc.rtl.engine import OpKind, op_layout
from aimc.rtl.sar import SarController
from aimc.rtl.sequencer import Sequencer

SEQ_CONFIGS = [
    TileConfig(rows=4, cols=4, input_bits=3, adc_bits=3, lanes=4),       # PWM, T 3, period 8
    TileConfig(rows=4, cols=4, input_bits=4, adc_bits=3, cols_per_adc=2, lanes=4),  # shared ADCs
    TileConfig(rows=4, cols=8, input_bits=4, adc_bits=4, cols_per_adc=4, lanes=4,
               input_mode="bitserial"),                                 # 3 planes, 4 per ADC
    TileConfig(rows=2, cols=2, input_bits=3, adc_bits=2, lanes=2, input_mode="bitserial"),
]


def cfg_id(cfg):
    return cfg.key


class Harness(Elaboratable):
    """The sequencer and the SAR controllers, connected as in the tile."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.seq = Sequencer(cfg)
        self.sar = SarController(cfg.n_adc, cfg.adc_bits)

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq, m.submodules.sar = seq, sar = self.seq, self.sar
        m.d.comb += [sar.start.eq(seq.sar_start), seq.sar_done.eq(sar.done),
                     seq.codes.eq(sar.result)]
        return m


class Analogue:
    """The analogue half as the sequencer sees it: integration ``i`` (counted from the
    ``int_reset`` pulses) converts column ``c`` to ``codes[i][c]`` and has its integrator
    clamped if ``sat[i][c]``. ``seen`` logs each comparison (integration, column, trial)."""

    def __init__(self, dut, codes, sat, seed=0):
        self.dut, self.codes, self.sat = dut, codes, sat
        self.rng = random.Random(seed)
        self.integrations = 0
        self.seen = []

    async def run(self, ctx):
        cfg, seq, sar = self.dut.cfg, self.dut.seq, self.dut.sar
        bits, k = cfg.adc_bits, cfg.cols_per_adc
        async for _, _, reset in ctx.tick().sample(seq.int_reset):
            self.integrations += reset
            i = self.integrations - 1
            if ctx.get(sar.sample):  # registered: this cycle's trial codes and column select
                assert i < len(self.codes), "more integrations than planned"
                trials = unpack(ctx.get(sar.trial), bits, cfg.n_adc, signed=False)
                sel = ctx.get(seq.adc_sel)
                cols = [a * k + sel for a in range(cfg.n_adc)]
                self.seen += [(i, c, t) for c, t in zip(cols, trials, strict=True)]
                ctx.set(sar.cmp, pack([self.codes[i][c] >= t for c, t in
                                       zip(cols, trials, strict=True)], 1))
                ctx.set(seq.adc_sat, pack([self.sat[i][c] for c in cols], 1))
            else:  # noise the RTL must not look at
                ctx.set(sar.cmp, self.rng.getrandbits(cfg.n_adc))
                ctx.set(seq.adc_sat, self.rng.getrandbits(cfg.n_adc))


def plan(cfg, rng, ops):
    """Chosen codes and clamp latches for every integration of ``ops``: random, with rail
    codes and clamps now and then, and both rails in the first integration of every host
    MVM (the events are for host MVMs only)."""
    top = (1 << cfg.adc_bits) - 1
    codes, sat = [], []
    for kind, *_ in ops:
        for j in range(1 if kind == OpKind.READ else cfg.planes):
            codes.append([rng.choice([0, top]) if rng.random() < 0.12 else rng.randint(0, top)
                          for _ in range(cfg.cols)])
            sat.append([rng.random() < 0.1 for _ in range(cfg.cols)])
            if kind == OpKind.HOST and j == 0:
                low, high = rng.sample(range(cfg.cols), 2)
                codes[-1][low], codes[-1][high] = 0, top
    return codes, sat


def op_word(cfg, kind, inject=0, row=0, neg=0):
    """The request payload as bits, packed by the layout's own offsets."""
    layout = op_layout(cfg)
    fields = {"kind": kind.value, "inject": inject, "row": row, "neg": neg}
    return sum(v << layout[name].offset for name, v in fields.items())


def random_ops(cfg, rng, n):
    kinds = [OpKind.HOST, OpKind.ZERO, OpKind.DRIFT, OpKind.READ]
    ops = [(kinds[i % 4], i % 3 == 1 and i % 4 != 3, rng.randrange(cfg.rows), rng.getrandbits(1))
           for i in range(n)]
    rng.shuffle(ops)
    return [(kind, int(inject) if kind != OpKind.READ else 0, row, neg)
            for kind, inject, row, neg in ops]


def trace_of(dut):
    seq, sar = dut.seq, dut.sar
    return Trace({
        "op_valid": seq.op.valid, "op_ready": seq.op.ready, "ready": seq.ready,
        "started": seq.started, "row_load": seq.row_load, "row_drive": seq.row_drive,
        "row_hold": seq.row_hold, "row_step": seq.row_step, "int_reset": seq.int_reset,
        "ref_en": seq.ref_en, "read_dev": seq.read_dev, "read_neg": seq.read_neg,
        "sar_start": seq.sar_start, "sample": sar.sample, "adc_sel": seq.adc_sel,
        "res_valid": seq.results.valid, "res_ready": seq.results.ready,
        "res": seq.results.payload.as_value(), "done": seq.done, "host": seq.host,
        "rail": seq.rail, "clip": seq.clip, "low": seq.events.low, "high": seq.events.high,
        "ev_clip": seq.events.clip, "idle": seq.idle, "timeout": seq.timeout,
    })


def run_schedule(cfg, ops, *, seed, p_valid=1.0, ready=None, take=None):
    """Run ``ops`` [(kind, inject, row, neg)]; ``ready`` and ``take`` are patterns (functions
    of the cycle) for the analogue half's ready and the results' ready (default: high)."""
    rng = random.Random(seed)
    dut = Harness(cfg)
    seq = dut.seq
    codes, sat = plan(cfg, rng, ops)
    analogue = Analogue(dut, codes, sat, seed)
    source = Source(seq.op.valid, seq.op.ready, [seq.op.payload.as_value()],
                    [(op_word(cfg, *op),) for op in ops], p_valid=p_valid, seed=seed)
    ready_model = RandomReady(seq.ready, pattern=ready or (lambda c: 1))
    take_model = RandomReady(seq.results.ready, pattern=take or (lambda c: 1))
    trace = trace_of(dut)

    async def main(ctx):
        ctx.set(seq.timeout_limit, 1000)
        limit = len(ops) * (cfg.mvm_period_cycles + READ_CYCLES) * 6 + 50
        await wait_until(ctx, lambda: sum(r["done"] for r in trace.rows) == len(ops), limit,
                         "operations done")
        for _ in range(3):
            await ctx.tick()

    run(dut, main, analogue.run, source.run, ready_model.run, take_model.run, trace.run)
    return trace, codes, sat, analogue


def expected(cfg, ops, starts, trace, codes, sat):
    """Per-cycle expectations of every schedule port, computed from the start cycles alone
    (and the results handshake of each operation, which the test's pattern decides)."""
    n_cycles = len(trace.rows)
    k, bits = cfg.cols_per_adc, cfg.adc_bits
    half, top = 1 << (bits - 1), (1 << bits) - 1
    want = {name: [0] * n_cycles for name in (
        "int_reset", "ref_en", "read_dev", "read_neg", "row_drive", "sar_start", "sample",
        "res_valid", "done", "started", "row_load")}
    want["adc_sel"] = [None] * n_cycles
    want["row_step"] = [None] * n_cycles
    for name in ("low", "high", "ev_clip"):
        want[name] = [0] * n_cycles
    busy = [False] * n_cycles       # inside an operation (not IDLE)
    per_op = []
    integration = 0
    for (kind, inject, _, neg), s in zip(ops, starts, strict=True):
        read = kind == OpKind.READ
        planes = 1 if read else cfg.planes
        t_drive = READ_CYCLES if read else cfg.drive_cycles
        length = t_drive + 1 + k * bits
        want["started"][s] = want["row_load"][s] = 1
        result = [0] * cfg.cols
        rail = clip = False
        for j in range(planes):
            base = s + 1 + j * length
            i = integration + j
            want["int_reset"][base] = 1
            want["ref_en"][base] = inject
            want["read_dev"][base] = int(read)
            want["read_neg"][base] = int(read and neg)
            for t in range(t_drive):
                want["row_drive"][base + t] = 1
                if not read:  # the PWM cycle, or the bit plane (most significant first)
                    want["row_step"][base + t] = t if cfg.input_mode == "pwm" else planes - 1 - j
            for g in range(k):  # column group member g of every ADC
                start = base + t_drive + g * bits
                want["sar_start"][start] = 1
                for b in range(bits):
                    want["sample"][start + 1 + b] = 1
                    want["adc_sel"][start + 1 + b] = g
                last = start + bits
                for a in range(cfg.n_adc):
                    c = a * k + g
                    code = codes[i][c]
                    if kind == OpKind.HOST:
                        want["low"][last] |= int(code == 0) << c
                        want["high"][last] |= int(code == top) << c
                        want["ev_clip"][last] |= int(sat[i][c]) << c
            for c in range(cfg.cols):
                result[c] = 2 * result[c] + codes[i][c] - half
                rail |= codes[i][c] in (0, top)
                clip |= sat[i][c]
        integration += planes
        emit = s + planes * length + 1
        taken = next(n for n in range(emit, n_cycles) if trace.rows[n]["res_ready"])
        for n in range(emit, taken + 1):
            want["res_valid"][n] = 1
        want["done"][taken] = 1
        for n in range(s + 1, taken + 1):
            busy[n] = True
        per_op.append((s, emit, taken, result, rail, clip, read, kind == OpKind.HOST))
    want["idle"] = [int(not b) for b in busy]
    return want, per_op


def check_schedule(cfg, ops, trace, codes, sat):
    rows = trace.rows
    starts = [n for n, r in enumerate(rows) if r["op_valid"] and r["op_ready"]]
    assert len(starts) == len(ops), f"{len(starts)} operations started, {len(ops)} offered"
    want, per_op = expected(cfg, ops, starts, trace, codes, sat)
    for name, column in want.items():
        got = trace.column(name)
        for n, w in enumerate(column):
            if w is not None:
                assert got[n] == w, f"{name} is {got[n]} in cycle {n}, expected {w}"
    # an operation starts exactly when one is offered, the analogue half is ready and the
    # sequencer is idle or hands its results over in that cycle
    free = [True] * len(rows)
    for s, _, taken, *_ in per_op:
        for n in range(s + 1, taken):
            free[n] = False
    for n, r in enumerate(rows):
        assert r["op_ready"] == int(r["op_valid"] and r["ready"] and free[n]), f"cycle {n}"
        assert not r["timeout"], f"cycle {n}: timeout"
    # results, flags, and who the operation belongs to
    for i, (s, _, taken, result, rail, clip, read, host) in enumerate(per_op):
        r = rows[taken]
        got = unpack(r["res"], cfg.result_bits, cfg.cols)
        assert got == result, f"operation {i} ({ops[i]}): results {got}, expected {result}"
        assert (r["rail"], r["clip"]) == (rail, clip), f"operation {i}: rail/clip"
        for n in range(s + 1, taken + 1):
            assert rows[n]["row_hold"] == read, f"operation {i}: row_hold in cycle {n}"
            assert rows[n]["host"] == host, f"operation {i}: host in cycle {n}"
    return starts, per_op


@pytest.mark.parametrize("cfg", SEQ_CONFIGS, ids=cfg_id)
def test_sequencer_back_to_back_schedule_and_results(cfg):
    rng = random.Random(SEQ_CONFIGS.index(cfg))
    ops = random_ops(cfg, rng, 8)
    trace, codes, sat, analogue = run_schedule(cfg, ops, seed=SEQ_CONFIGS.index(cfg))
    starts, per_op = check_schedule(cfg, ops, trace, codes, sat)
    # back to back: every MVM takes exactly mvm_period_cycles, a device read its own length
    for i in range(1, len(ops)):
        read = ops[i - 1][0] == OpKind.READ
        period = READ_CYCLES + 2 + cfg.cols_per_adc * cfg.adc_bits if read \
            else cfg.mvm_period_cycles
        assert starts[i] - starts[i - 1] == period, f"operation {i - 1} ({ops[i - 1]})"
    # every column was converted adc_bits times per integration, by the ADC it belongs to
    assert len(analogue.seen) == analogue.integrations * cfg.cols * cfg.adc_bits
    assert analogue.integrations == sum(1 if op[0] == OpKind.READ else cfg.planes for op in ops)
    # the stimulus reached both flags and the events
    assert any(o[4] for o in per_op) and any(o[5] for o in per_op)
    assert any(trace.column("low")) and any(trace.column("high"))


@pytest.mark.parametrize("cfg", [SEQ_CONFIGS[1], SEQ_CONFIGS[2]], ids=cfg_id)
def test_sequencer_waits_for_ready_and_for_the_results_to_be_taken(cfg):
    """Random gaps between requests, the analogue half not ready 40 % of the cycles, and
    the results taken late: the starts move, the operations keep their fixed length."""
    seed = 10 + SEQ_CONFIGS.index(cfg)
    rng = random.Random(seed)
    ops = random_ops(cfg, rng, 8)
    ready_rng, take_rng = random.Random(seed + 1), random.Random(seed + 2)
    ready = [ready_rng.random() < 0.6 for _ in range(4000)]
    take = [take_rng.random() < 0.3 for _ in range(4000)]
    trace, codes, sat, _ = run_schedule(cfg, ops, seed=seed, p_valid=0.5,
                                        ready=lambda c: ready[c], take=lambda c: take[c])
    starts, per_op = check_schedule(cfg, ops, trace, codes, sat)
    rows = trace.rows
    # the analogue half's ready delayed some starts, and fell during operations
    assert any(r["op_valid"] and not r["ready"] and r["idle"] for r in rows)
    assert any(not rows[n]["ready"] for s, _, t, *_ in per_op for n in range(s + 1, t))
    assert any(t > e for _, e, t, *_ in per_op), "no result was taken late"


def test_sequencer_timeout_pulses_once_after_the_limit():
    cfg = SEQ_CONFIGS[0]
    dut = Harness(cfg)
    seq = dut.seq
    limit = 6
    codes = [[1] * cfg.cols for _ in range(4)]
    analogue = Analogue(dut, codes, [[0] * cfg.cols for _ in range(4)])
    trace = trace_of(dut)
    marks = {}

    async def main(ctx):
        ctx.set(seq.timeout_limit, limit)
        ctx.set(seq.op.payload.as_value(), op_word(cfg, OpKind.ZERO))
        n = 0

        async def step(cycles=1):
            nonlocal n
            for _ in range(cycles):
                await ctx.tick()
                n += 1

        # an operation offered while the analogue half is not ready: abandoned by its owner
        # in the timeout cycle
        ctx.set(seq.op.valid, 1)
        marks["offer"] = n
        while not ctx.get(seq.timeout):
            await step()
            assert n < 50
        await step()
        ctx.set(seq.op.valid, 0)
        # nothing waits: nothing counts, however long
        await step(3 * limit)
        # an engine waiting (wait_in) is counted the same way
        ctx.set(seq.wait_in, 1)
        marks["wait"] = n
        await step(limit + 2)
        ctx.set(seq.wait_in, 0)
        await step(2)
        # ready comes one cycle before the limit: the operation starts, no timeout, and the
        # count starts again from zero for the next wait
        ctx.set(seq.op.valid, 1)
        marks["late"] = n
        await step(limit - 1)
        ctx.set(seq.ready, 1)
        assert ctx.get(seq.op.ready)
        await step()
        ctx.set(seq.ready, 0)
        ctx.set(seq.results.ready, 1)
        # the second operation waits during the first one's EMIT (in the handshake cycle),
        # the count starting there
        while not ctx.get(seq.results.valid):
            await step()
        marks["emit"] = n
        await step(limit + 1)
        ctx.set(seq.op.valid, 0)
        await step(2)

    run(dut, main, analogue.run, trace.run)
    timeouts = trace.cycles("timeout")
    assert timeouts == [marks["offer"] + limit - 1, marks["wait"] + limit - 1,
                        marks["emit"] + limit - 1]
    assert trace.cycles("started") == [marks["late"] + limit - 1]


@pytest.mark.parametrize("make", [Sequencer, Harness])
def test_sequencer_rejects_a_non_config(make):
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not 8$"):
        make(8)
