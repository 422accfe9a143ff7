"""The Sequencer alone in Amaranth's simulator, with the real SarControllers of both sides
beside it, a model of the analogue half and a model of the update engine's handshake as
background testbenches.

The analogue model counts the integrations (``int_reset``) and answers every comparison,
of the column ADCs and of the row ADCs, from a code chosen in advance for each integration
and line (a SAR search whose comparator says ``code >= trial`` ends exactly at ``code``),
and drives the integrator-clamp latches of the lines converted; the lines not converted
get noise. The update model answers ``upd_go`` with ``upd_done`` after a delay chosen per
update. The schedule of the boundary ports (forward MVMs, device reads, backward MVMs and
updates), the raw results (the plane codes added with shift-and-add), the flags, the
per-column events and ``x_valid`` are then computed here from the cycles the operations
started in, the formulas of docs/architecture.md ("Schedule and timing", with
``rows_per_adc`` row groups for a backward MVM) and the chosen codes, and compared with a
trace sampled at every clock edge.

Backward MVMs and updates run on training tiles (``TileConfig.training``); an inference
tile's sequencer runs the forward MVMs and device reads alike, and never drives the columns
or starts an update, whatever kind of operation it is offered.
"""

import random
from dataclasses import replace

import pytest
from amaranth import Elaboratable, Module
from component_bench import RandomReady, Source, Trace, pack, run, unpack, wait_until

from aimc import TileConfig
from aimc.enums import ResultKind
from aimc.programming import READ_CYCLES
from aimc.rtl.engine import OpKind, op_layout
from aimc.rtl.sar import SarController
from aimc.rtl.sequencer import Sequencer
from aimc.rtl.stream import result_vector

SEQ_CONFIGS = [  # training tiles
    TileConfig(rows=4, cols=4, input_bits=3, adc_bits=3, lanes=4, training=True),  # PWM, T 3
    TileConfig(rows=4, cols=4, input_bits=4, adc_bits=3, cols_per_adc=2, rows_per_adc=2,
               lanes=4, training=True),                                  # shared ADCs
    TileConfig(rows=4, cols=8, input_bits=4, adc_bits=4, cols_per_adc=4, rows_per_adc=2,
               lanes=4, input_mode="bitserial", training=True),          # 3 planes, 4 per ADC
    TileConfig(rows=2, cols=2, input_bits=3, adc_bits=2, lanes=2, input_mode="bitserial",
               training=True),
    TileConfig(rows=8, cols=2, input_bits=3, adc_bits=3, rows_per_adc=4, lanes=4,
               training=True),                                 # 4 per row ADC, rows > cols
]
INFERENCE_CONFIGS = [
    TileConfig(rows=4, cols=4, input_bits=3, adc_bits=3, lanes=4),       # PWM, T 3, period 8
    TileConfig(rows=4, cols=8, input_bits=4, adc_bits=4, cols_per_adc=4, rows_per_adc=2,
               lanes=4, input_mode="bitserial"),                         # 3 planes, 4 per ADC
    TileConfig(rows=8, cols=2, input_bits=3, adc_bits=3, rows_per_adc=4, lanes=4),
]
#: The operations of a training tile only.
TRAINING_KINDS = (OpKind.BACKWARD, OpKind.UPDATE)


def cfg_id(cfg):
    return cfg.key


class Harness(Elaboratable):
    """The sequencer and the SAR controllers of both sides, connected as in the tile."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.seq = Sequencer(cfg)
        self.sar = SarController(cfg.n_adc, cfg.adc_bits)
        self.row_sar = SarController(cfg.n_row_adc, cfg.adc_bits)

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq, m.submodules.sar = seq, sar = self.seq, self.sar
        m.submodules.row_sar = row_sar = self.row_sar
        m.d.comb += [sar.start.eq(seq.sar_start), seq.sar_done.eq(sar.done),
                     seq.codes.eq(sar.result),
                     row_sar.start.eq(seq.row_sar_start), seq.row_sar_done.eq(row_sar.done),
                     seq.row_codes.eq(row_sar.result)]
        return m


class Analogue:
    """The analogue half as the sequencer sees it: integration ``i`` (counted from the
    ``int_reset`` pulses) converts line ``l`` (a column, or a row in a backward MVM) to
    ``codes[i][l]`` and has its integrator clamped if ``sat[i][l]``. ``seen`` logs each
    comparison (integration, side, line, trial)."""

    def __init__(self, dut, codes, sat, seed=0):
        self.dut, self.codes, self.sat = dut, codes, sat
        self.rng = random.Random(seed)
        self.integrations = 0
        self.seen = []

    def _side(self, ctx, i, side, sar, sel, cmp, adc_sat, n_adc, k):
        bits = self.dut.cfg.adc_bits
        if ctx.get(sar.sample):  # registered: this cycle's trial codes and line select
            assert i < len(self.codes), "more integrations than planned"
            trials = unpack(ctx.get(sar.trial), bits, n_adc, signed=False)
            s = ctx.get(sel)
            lines = [a * k + s for a in range(n_adc)]
            self.seen += [(i, side, ln, t) for ln, t in zip(lines, trials, strict=True)]
            ctx.set(cmp, pack([self.codes[i][ln] >= t
                               for ln, t in zip(lines, trials, strict=True)], 1))
            ctx.set(adc_sat, pack([self.sat[i][ln] for ln in lines], 1))
        else:  # noise the RTL must not look at
            ctx.set(cmp, self.rng.getrandbits(n_adc))
            ctx.set(adc_sat, self.rng.getrandbits(n_adc))

    async def run(self, ctx):
        cfg, seq, sar, row_sar = self.dut.cfg, self.dut.seq, self.dut.sar, self.dut.row_sar
        async for _, _, reset in ctx.tick().sample(seq.int_reset):
            self.integrations += reset
            i = self.integrations - 1
            self._side(ctx, i, "col", sar, seq.adc_sel, sar.cmp, seq.adc_sat, cfg.n_adc,
                       cfg.cols_per_adc)
            self._side(ctx, i, "row", row_sar, seq.adc_row_sel, row_sar.cmp, seq.row_adc_sat,
                       cfg.n_row_adc, cfg.rows_per_adc)


class UpdateModel:
    """The update engine's handshake: ``upd_done`` for one cycle ``delays[n]`` cycles after
    the cycle of the ``n``-th ``upd_go`` (at least 1, as the engine's shortest update).
    ``go`` and ``done`` log the cycles; a second ``upd_go`` before ``upd_done`` fails."""

    def __init__(self, seq, delays):
        self.seq, self.delays = seq, list(delays)
        self.go, self.done = [], []

    async def run(self, ctx):
        seq, cycle, due = self.seq, 0, None
        async for _, _, go in ctx.tick().sample(seq.upd_go):
            if go:
                assert due is None, f"cycle {cycle}: upd_go again before upd_done"
                assert len(self.go) < len(self.delays), f"cycle {cycle}: an unplanned update"
                due = cycle + self.delays[len(self.go)]
                self.go.append(cycle)
            if due == cycle:
                self.done.append(cycle)
                due = None
            cycle += 1
            ctx.set(seq.upd_done, int(due == cycle))


def op_kinds(cfg):
    """The operations the tile runs: backward MVMs and updates on training tiles only."""
    return [k for k in OpKind if cfg.training or k not in TRAINING_KINDS]


def lines_of(cfg):
    """Lines the analogue model answers for: the columns and the rows."""
    return max(cfg.rows, cfg.cols)


def integrations_of(cfg, kind):
    return 0 if kind == OpKind.UPDATE else 1 if kind == OpKind.READ else cfg.planes


def plan(cfg, rng, ops):
    """Chosen codes and clamp latches (one per line, ``max(rows, cols)``) for every
    integration of ``ops``: random, with rail codes and clamps now and then; both rails in
    the first integration of every host forward MVM (the events are for those only) and a
    rail in the column converted last (the code the column SAR then holds). Backward MVMs
    take turns: no rail and no clamp, a row rail, a row clamp, random."""
    top = (1 << cfg.adc_bits) - 1
    codes, sat = [], []
    backward = 0
    for kind, *_ in ops:
        n = integrations_of(cfg, kind)
        turn = backward % 4 if kind == OpKind.BACKWARD else 3
        backward += kind == OpKind.BACKWARD
        for j in range(n):
            if turn == 3:
                codes.append([rng.choice([0, top]) if rng.random() < 0.12
                              else rng.randint(0, top) for _ in range(lines_of(cfg))])
                sat.append([rng.random() < 0.1 for _ in range(lines_of(cfg))])
            else:
                codes.append([rng.randint(1, top - 1) for _ in range(lines_of(cfg))])
                sat.append([False] * lines_of(cfg))
                if j == n - 1 and turn:
                    line = rng.randrange(cfg.rows)
                    if turn == 1:
                        codes[-1][line] = rng.choice([0, top])
                    else:
                        sat[-1][line] = True
            if kind == OpKind.FORWARD and j == n - 1:
                codes[-1][cfg.cols - 1] = rng.choice([0, top])
            if kind == OpKind.FORWARD and j == 0:
                low, high = rng.sample(range(cfg.cols), 2)
                codes[-1][low], codes[-1][high] = 0, top
    return codes, sat


def op_word(cfg, kind, inject=0, row=0, neg=0):
    """The request payload as bits, packed by the layout's own offsets."""
    layout = op_layout(cfg)
    fields = {"kind": kind.value, "inject": inject, "row": row, "neg": neg}
    return sum(v << layout[name].offset for name, v in fields.items())


def random_ops(cfg, rng, n):
    """``n`` operations of every kind the tile runs in turn, shuffled: (kind, inject, row,
    neg); the reference charge for some of the forward ones (as the gain phase asks for
    it)."""
    kinds = op_kinds(cfg)
    ops = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        inject = int(kind in (OpKind.FORWARD, OpKind.ZERO, OpKind.DRIFT) and rng.random() < 0.4)
        ops.append((kind, inject, rng.randrange(cfg.rows), rng.getrandbits(1)))
    rng.shuffle(ops)
    return ops


def trace_of(dut):
    seq, sar, row_sar = dut.seq, dut.sar, dut.row_sar
    layout = result_vector(dut.cfg)
    return Trace({
        "op_valid": seq.op.valid, "op_ready": seq.op.ready, "ready": seq.ready,
        "started": seq.started, "row_load": seq.row_load, "row_drive": seq.row_drive,
        "col_load": seq.col_load, "col_drive": seq.col_drive,
        "row_hold": seq.row_hold, "row_step": seq.row_step, "int_reset": seq.int_reset,
        "int_back": seq.int_back, "ref_en": seq.ref_en, "read_dev": seq.read_dev,
        "read_neg": seq.read_neg, "sar_start": seq.sar_start, "sample": sar.sample,
        "adc_sel": seq.adc_sel, "row_sar_start": seq.row_sar_start,
        "row_sample": row_sar.sample, "adc_row_sel": seq.adc_row_sel,
        "codes": seq.codes, "sar_done": seq.sar_done,
        "res_valid": seq.results.valid, "res_ready": seq.results.ready,
        "res": seq.results.payload.as_value(), "done": seq.done, "host": seq.host,
        "kind": seq.kind.as_value(), "upd_go": seq.upd_go, "upd_done": seq.upd_done,
        "x_valid": seq.x_valid,
        "rail": seq.rail, "clip": seq.clip, "low": seq.events.low, "high": seq.events.high,
        "ev_clip": seq.events.clip, "idle": seq.idle, "timeout": seq.timeout,
    }), layout


def run_schedule(cfg, ops, *, seed, p_valid=1.0, ready=None, take=None, delays=None):
    """Run ``ops`` [(kind, inject, row, neg)]; ``ready`` and ``take`` are patterns (functions
    of the cycle) for the analogue half's ready and the results' ready (default: high);
    ``delays`` the update model's (default: random, 1 to 12 cycles)."""
    rng = random.Random(seed)
    dut = Harness(cfg)
    seq = dut.seq
    codes, sat = plan(cfg, rng, ops)
    n_updates = sum(op[0] == OpKind.UPDATE for op in ops)
    if delays is None:
        delays = [rng.choice([1, 2, rng.randint(3, 12)]) for _ in range(n_updates)]
    analogue = Analogue(dut, codes, sat, seed)
    updates = UpdateModel(seq, delays)
    source = Source(seq.op.valid, seq.op.ready, [seq.op.payload.as_value()],
                    [(op_word(cfg, *op),) for op in ops], p_valid=p_valid, seed=seed)
    ready_model = RandomReady(seq.ready, pattern=ready or (lambda c: 1))
    take_model = RandomReady(seq.results.ready, pattern=take or (lambda c: 1))
    trace, layout = trace_of(dut)

    async def main(ctx):
        ctx.set(seq.timeout_limit, 1000)
        period = max(cfg.mvm_period_cycles, cfg.bwd_period_cycles) + READ_CYCLES
        limit = len(ops) * period * 6 + 6 * sum(delays) + 50
        await wait_until(ctx, lambda: sum(r["done"] for r in trace.rows) == len(ops) - n_updates
                         and len(updates.done) == n_updates, limit, "operations done")
        for _ in range(3):
            await ctx.tick()

    run(dut, main, analogue.run, updates.run, source.run, ready_model.run, take_model.run,
        trace.run)
    return trace, codes, sat, analogue, updates


def expected(cfg, ops, starts, trace, codes, sat, updates):
    """Per-cycle expectations of every schedule port, computed from the start cycles alone
    (and the results handshake of each operation, which the test's pattern decides, and
    the update model's ``upd_done``)."""
    n_cycles = len(trace.rows)
    bits = cfg.adc_bits
    half, top = 1 << (bits - 1), (1 << bits) - 1
    want = {name: [0] * n_cycles for name in (
        "int_reset", "ref_en", "read_dev", "read_neg", "row_drive", "col_drive", "sar_start",
        "sample", "row_sar_start", "row_sample", "res_valid", "done", "started", "row_load",
        "col_load", "upd_go", "low", "high", "ev_clip")}
    for name in ("adc_sel", "adc_row_sel", "row_step", "int_back", "kind", "host",
                 "row_hold"):
        want[name] = [None] * n_cycles
    x_valid, want["x_valid"] = 0, []
    busy = [False] * n_cycles       # inside an operation (not IDLE)
    per_op = []
    integration, update = 0, 0
    for (kind, inject, _, neg), s in zip(ops, starts, strict=True):
        read, back = kind == OpKind.READ, kind == OpKind.BACKWARD
        want["started"][s] = 1
        want["col_load" if kind in (OpKind.BACKWARD, OpKind.UPDATE) else "row_load"][s] = 1
        if kind == OpKind.UPDATE:
            assert updates.go[update] == s + 1, f"update {update}: upd_go"
            end = updates.done[update]
            update += 1
            want["upd_go"][s + 1] = 1
            per_op.append({"start": s, "end": end, "update": True})
        else:
            planes = integrations_of(cfg, kind)
            t_drive = READ_CYCLES if read else cfg.drive_cycles
            k = cfg.rows_per_adc if back else cfg.cols_per_adc
            n_adc = cfg.n_row_adc if back else cfg.n_adc
            lines = cfg.rows if back else cfg.cols
            side = "row_" if back else ""
            length = t_drive + k * bits  # a plane's drive and conversions
            result = [0] * lines
            rail = clip = False
            for j in range(planes):
                # The plane's first drive step: the cycle after the start, or the last
                # conversion cycle of the plane before. Its integrator reset is the cycle
                # before that step reaches the lines (the drivers are registered), that is,
                # the step's own cycle for the first plane and the next for a later one.
                base = s + 1 + j * length
                reset = base + (j > 0)
                i = integration + j
                want["int_reset"][reset] = 1
                want["ref_en"][reset] = inject
                want["read_dev"][reset] = int(read)
                want["read_neg"][reset] = int(read and neg)
                for t in range(t_drive):
                    want["col_drive" if back else "row_drive"][base + t] = 1
                    if not read:  # the PWM cycle, or the bit plane (most significant first)
                        want["row_step"][base + t] = t if cfg.input_mode == "pwm" \
                            else planes - 1 - j
                for g in range(k):  # group member g of every ADC of the side
                    start = base + t_drive + g * bits
                    want[side + "sar_start"][start] = 1
                    for b in range(bits):
                        want[side + "sample"][start + 1 + b] = 1
                        want["adc_row_sel" if back else "adc_sel"][start + 1 + b] = g
                    last = start + bits
                    for a in range(n_adc):
                        line = a * k + g
                        code = codes[i][line]
                        if kind == OpKind.FORWARD:
                            want["low"][last] |= int(code == 0) << line
                            want["high"][last] |= int(code == top) << line
                            want["ev_clip"][last] |= int(sat[i][line]) << line
                for line in range(lines):
                    result[line] = 2 * result[line] + codes[i][line] - half
                    rail |= codes[i][line] in (0, top)
                    clip |= sat[i][line]
            integration += planes
            emit = s + planes * length + 2
            end = next(n for n in range(emit, n_cycles) if trace.rows[n]["res_ready"])
            for n in range(emit, end + 1):
                want["res_valid"][n] = 1
            want["done"][end] = 1
            for n in range(s + 1, end + 1):
                want["int_back"][n] = int(back)
            per_op.append({"start": s, "emit": emit, "end": end, "update": False,
                           "result": result, "rail": rail, "clip": clip, "back": back})
        for n in range(s + 1, per_op[-1]["end"] + 1):
            busy[n] = True
            want["kind"][n] = kind.value
            want["host"][n] = int(kind in (OpKind.FORWARD, OpKind.BACKWARD))
            want["row_hold"][n] = int(read)
    # x_valid: set by a forward MVM's start, cleared by an engine's operation, kept by a
    # backward MVM and an update; a register (it changes in the cycle after the start)
    kinds = {s: kind for (kind, *_), s in zip(ops, starts, strict=True)}
    for n in range(n_cycles):
        want["x_valid"].append(x_valid)
        kind = kinds.get(n)
        if kind == OpKind.FORWARD:
            x_valid = 1
        elif kind in (OpKind.ZERO, OpKind.DRIFT, OpKind.READ):
            x_valid = 0
    want["idle"] = [int(not b) for b in busy]
    return want, per_op


def check_schedule(cfg, ops, trace, codes, sat, updates):
    rows = trace.rows
    starts = [n for n, r in enumerate(rows) if r["op_valid"] and r["op_ready"]]
    assert len(starts) == len(ops), f"{len(starts)} operations started, {len(ops)} offered"
    want, per_op = expected(cfg, ops, starts, trace, codes, sat, updates)
    assert len(updates.go) == len(updates.done) == sum(o["update"] for o in per_op)
    for name, column in want.items():
        got = trace.column(name)
        for n, w in enumerate(column):
            if w is not None:
                assert got[n] == w, f"{name} is {got[n]} in cycle {n}, expected {w}"
    # an operation starts exactly when one is offered, the analogue half is ready and the
    # sequencer is idle or hands its results over in that cycle (an update ends in IDLE)
    free = [True] * len(rows)
    for o in per_op:
        for n in range(o["start"] + 1, o["end"] + (1 if o["update"] else 0)):
            free[n] = False
    for n, r in enumerate(rows):
        assert r["op_ready"] == int(r["op_valid"] and r["ready"] and free[n]), f"cycle {n}"
        assert not r["timeout"], f"cycle {n}: timeout"
    # results, their kind and flags
    layout = result_vector(cfg)
    for i, o in enumerate(per_op):
        if o["update"]:
            continue
        r = rows[o["end"]]
        kind = (r["res"] >> layout["kind"].offset) & 3
        data = r["res"] >> layout["data"].offset
        got = unpack(data, cfg.result_bits, len(o["result"]))
        assert got == o["result"], f"operation {i} ({ops[i]}): results {got}, " \
                                   f"expected {o['result']}"
        assert kind == (ResultKind.BACKWARD if o["back"] else ResultKind.FORWARD).value, \
            f"operation {i}: result kind {kind}"
        assert (r["rail"], r["clip"]) == (o["rail"], o["clip"]), f"operation {i}: rail/clip"
    return starts, per_op


def check_periods(cfg, ops, starts, per_op):
    """Back to back: an MVM takes exactly mvm_period_cycles, a backward MVM
    bwd_period_cycles, a device read its own length; the operation after an update starts
    in the cycle after upd_done."""
    for i in range(1, len(ops)):
        kind = ops[i - 1][0]
        if kind == OpKind.UPDATE:
            assert starts[i] == per_op[i - 1]["end"] + 1, f"operation {i} after an update"
            continue
        period = {OpKind.READ: READ_CYCLES + 2 + cfg.cols_per_adc * cfg.adc_bits,
                  OpKind.BACKWARD: cfg.bwd_period_cycles}.get(kind, cfg.mvm_period_cycles)
        assert starts[i] - starts[i - 1] == period, f"operation {i - 1} ({ops[i - 1]})"


@pytest.mark.parametrize("cfg", SEQ_CONFIGS + INFERENCE_CONFIGS, ids=cfg_id)
def test_sequencer_back_to_back_schedule_and_results(cfg):
    """Every kind of operation the tile runs, back to back: every port of the schedule in
    every cycle, the results and flags, the periods. On an inference tile (forward MVMs,
    device reads) the columns are never driven, no row converter starts and no update."""
    seed = (SEQ_CONFIGS + INFERENCE_CONFIGS).index(cfg)
    rng = random.Random(seed)
    ops = random_ops(cfg, rng, 12)
    assert {op[0] for op in ops} == set(op_kinds(cfg))
    trace, codes, sat, analogue, updates = run_schedule(cfg, ops, seed=seed)
    starts, per_op = check_schedule(cfg, ops, trace, codes, sat, updates)
    check_periods(cfg, ops, starts, per_op)
    # every line was converted adc_bits times per integration, by the ADC it belongs to
    lines = [cfg.rows if op[0] == OpKind.BACKWARD else cfg.cols for op in ops
             for _ in range(integrations_of(cfg, op[0]))]
    assert len(analogue.seen) == sum(lines) * cfg.adc_bits
    assert analogue.integrations == len(lines)
    for _, side, line, _ in analogue.seen:
        assert line < (cfg.rows if side == "row" else cfg.cols)
    # the stimulus reached both flags and the events
    mvms = [o for o in per_op if not o["update"]]
    assert any(o["rail"] for o in mvms) and any(o["clip"] for o in mvms)
    assert any(trace.column("low")) and any(trace.column("high"))


@pytest.mark.parametrize("cfg", SEQ_CONFIGS, ids=cfg_id)
def test_sequencer_backward_mvms_back_to_back_and_interleaved(cfg):
    """Backward MVMs after one another, after and before forward MVMs, a device read and
    an update: the column drive, the row conversions per group, the results of the rows,
    and rail/clip of the row side only (the column converters hold the codes of the last
    forward MVM and the column clamp latches noise meanwhile)."""
    B, F, U, R = OpKind.BACKWARD, OpKind.FORWARD, OpKind.UPDATE, OpKind.READ
    kinds = [B, B, B, F, B, F, F, B, U, B, R, B, U, U, B]
    rng = random.Random(20 + SEQ_CONFIGS.index(cfg))
    ops = [(k, 0, rng.randrange(cfg.rows), rng.getrandbits(1)) for k in kinds]
    trace, codes, sat, _, updates = run_schedule(cfg, ops, seed=20 + SEQ_CONFIGS.index(cfg))
    starts, per_op = check_schedule(cfg, ops, trace, codes, sat, updates)
    check_periods(cfg, ops, starts, per_op)
    back = [o for o in per_op if not o["update"] and o["back"]]
    assert [(o["rail"], o["clip"]) for o in back][:3] == [(0, 0), (1, 0), (0, 1)]
    # rail from the row side: backward MVMs without a row rail converted while the column
    # SAR held a rail code (0 from reset, then the last forward MVM's last column), and no
    # column event in them
    top = (1 << cfg.adc_bits) - 1
    rows = trace.rows
    held = [o for o in back if not o["rail"] and all(
        any(c in (0, top) for c in unpack(rows[n]["codes"], cfg.adc_bits, cfg.n_adc,
                                          signed=False))
        for n in range(o["start"] + 1, o["end"]))]
    assert len(held) >= 2, "backward MVMs without a row rail saw no column rail code"
    for o in back:
        for n in range(o["start"] + 1, o["end"] + 1):
            assert rows[n]["low"] == rows[n]["high"] == rows[n]["ev_clip"] == 0


@pytest.mark.parametrize("cfg", [SEQ_CONFIGS[1], SEQ_CONFIGS[2], SEQ_CONFIGS[4]], ids=cfg_id)
def test_sequencer_waits_for_ready_and_for_the_results_to_be_taken(cfg):
    """Random gaps between requests, the analogue half not ready 40 % of the cycles, and
    the results taken late: the starts move, the operations keep their fixed length."""
    seed = 10 + SEQ_CONFIGS.index(cfg)
    rng = random.Random(seed)
    ops = random_ops(cfg, rng, 12)
    ready_rng, take_rng = random.Random(seed + 1), random.Random(seed + 2)
    ready = [ready_rng.random() < 0.6 for _ in range(6000)]
    take = [take_rng.random() < 0.3 for _ in range(6000)]
    trace, codes, sat, _, updates = run_schedule(
        cfg, ops, seed=seed, p_valid=0.5, ready=lambda c: ready[c], take=lambda c: take[c])
    starts, per_op = check_schedule(cfg, ops, trace, codes, sat, updates)
    rows = trace.rows
    # the analogue half's ready delayed some starts, and fell during operations
    assert any(r["op_valid"] and not r["ready"] and r["idle"] for r in rows)
    assert any(not rows[n]["ready"] for o in per_op for n in range(o["start"] + 1, o["end"]))
    assert any(o["end"] > o["emit"] for o in per_op if not o["update"]), \
        "no result was taken late"


def test_sequencer_update_handshake_and_x_valid_rules():
    """Updates between the other operations, ``upd_done`` after 1 to 40 cycles, another
    operation offered all the while: ``col_load`` in the start cycle, ``upd_go`` in the
    next one only, nothing starts until the cycle after ``upd_done``, no results. ``x_valid``
    written out per operation: 0 from reset, set by a forward MVM, kept by backward MVMs
    and updates, cleared by the engines' operations (zero input, DRIFT_X, device read)."""
    cfg = SEQ_CONFIGS[0]
    U, F, B, Z, D, R = (OpKind.UPDATE, OpKind.FORWARD, OpKind.BACKWARD, OpKind.ZERO,
                        OpKind.DRIFT, OpKind.READ)
    kinds = [U, F, U, B, U, Z, U, F, R, U, F, D, U, F, U]
    x_valid = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1]  # during each, after its start
    delays = [1, 40, 2, 7, 1, 3, 1]
    ops = [(k, 0, 1, 0) for k in kinds]
    trace, codes, sat, _, updates = run_schedule(cfg, ops, seed=5, delays=delays)
    starts, per_op = check_schedule(cfg, ops, trace, codes, sat, updates)
    check_periods(cfg, ops, starts, per_op)
    rows = trace.rows
    assert [rows[s + 1]["x_valid"] for s in starts] == x_valid
    assert updates.done == [g + d for g, d in zip(updates.go, delays, strict=True)]
    for i, (o, (kind, *_)) in enumerate(zip(per_op, ops, strict=True)):
        if kind != U:
            continue
        span = range(o["start"] + 1, o["end"] + 1)
        assert [rows[n]["upd_go"] for n in span] == [1] + [0] * (len(span) - 1)
        assert not any(rows[n]["res_valid"] or rows[n]["done"] or rows[n]["int_reset"]
                       or rows[n]["row_drive"] or rows[n]["col_drive"] for n in span)
        # the next operation waited all through the update
        if i + 1 < len(ops):
            assert all(rows[n]["op_valid"] and not rows[n]["op_ready"] for n in span)
    assert len(trace.cycles("upd_go")) == kinds.count(U)


@pytest.mark.parametrize("cfg", INFERENCE_CONFIGS, ids=cfg_id)
def test_sequencer_inference_tile_never_drives_the_columns_or_starts_an_update(cfg):
    """An inference tile has no backward MVMs and no updates: offered operations of every
    kind, BACKWARD and UPDATE among them, back to back and with gaps, its sequencer takes
    each one and carries on, but never raises col_load, col_drive, int_back, row_sar_start
    or upd_go (the update model fails on an unplanned upd_go), and ends idle."""
    seed = 60 + INFERENCE_CONFIGS.index(cfg)
    rng = random.Random(seed)
    ops = random_ops(replace(cfg, training=True), rng, 14)  # every kind
    assert {op[0] for op in ops} >= set(TRAINING_KINDS)
    dut = Harness(cfg)
    seq = dut.seq
    top = (1 << cfg.adc_bits) - 1
    n = len(ops) * cfg.planes  # at most one MVM's integrations per operation
    codes = [[rng.randint(0, top) for _ in range(lines_of(cfg))] for _ in range(n)]
    analogue = Analogue(dut, codes, [[False] * lines_of(cfg) for _ in range(n)], seed)
    updates = UpdateModel(seq, [])
    source = Source(seq.op.valid, seq.op.ready, [seq.op.payload.as_value()],
                    [(op_word(cfg, *op),) for op in ops], p_valid=0.6, seed=seed)
    ready = RandomReady(seq.ready, pattern=lambda c: 1)
    take = RandomReady(seq.results.ready, p_ready=0.7, seed=seed)
    trace, _ = trace_of(dut)

    async def main(ctx):
        ctx.set(seq.timeout_limit, 1000)
        limit = len(ops) * (cfg.mvm_period_cycles + READ_CYCLES) * 4 + 50
        await wait_until(ctx, lambda: source.finished, limit, "operations taken")
        await wait_until(ctx, lambda: trace.rows[-1]["idle"], limit, "idle")
        for _ in range(3):
            await ctx.tick()

    run(dut, main, analogue.run, updates.run, source.run, ready.run, take.run, trace.run)
    assert len(trace.cycles("started")) == len(ops)
    assert trace.rows[-1]["idle"] and not trace.cycles("timeout")
    for name in ("col_load", "col_drive", "int_back", "row_sar_start", "row_sample",
                 "upd_go"):
        assert not trace.cycles(name), f"{name} raised on an inference tile"
    assert updates.go == []


def test_sequencer_timeout_pulses_once_after_the_limit():
    cfg = SEQ_CONFIGS[0]
    dut = Harness(cfg)
    seq = dut.seq
    limit = 6
    codes = [[1] * lines_of(cfg) for _ in range(4)]
    analogue = Analogue(dut, codes, [[0] * lines_of(cfg) for _ in range(4)])
    trace, _ = trace_of(dut)
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


def test_sequencer_timeout_a_limit_lowered_during_a_wait_ends_it():
    # Found by the formal check timeout.no_wait_outlasts_the_limit: a limit lowered below
    # the cycles already waited was passed by an equality comparison, and the wait went on
    # until the 16-bit count wrapped (65,536 cycles). The limit in force is the one of the
    # cycle before, so the wait ends in the cycle after the write.
    cfg = SEQ_CONFIGS[0]
    dut = Harness(cfg)
    seq = dut.seq
    analogue = Analogue(dut, [[1] * lines_of(cfg)], [[0] * lines_of(cfg)])
    trace, _ = trace_of(dut)
    marks = {}

    async def main(ctx):
        ctx.set(seq.timeout_limit, 100)
        ctx.set(seq.op.payload.as_value(), op_word(cfg, OpKind.ZERO))
        ctx.set(seq.op.valid, 1)
        for _ in range(10):
            await ctx.tick()
        ctx.set(seq.timeout_limit, 3)
        marks["lowered"] = 10
        for _ in range(6):
            await ctx.tick()
        ctx.set(seq.op.valid, 0)
        await ctx.tick()

    run(dut, main, analogue.run, trace.run)
    # The operation stays offered: the next wait counts from zero against the new limit.
    assert trace.cycles("timeout") == [marks["lowered"] + 1, marks["lowered"] + 1 + 3]


@pytest.mark.parametrize("make", [Sequencer, Harness])
def test_sequencer_rejects_a_non_config(make):
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not 8$"):
        make(8)
