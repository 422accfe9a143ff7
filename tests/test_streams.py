"""The tile's stream ends alone in Amaranth's simulator: the InputLoader (AXI4-Stream in,
whole input vectors out) and the ResultPacker (result vectors in, result beats out).

Both run under random TVALID gaps on their input and random ``ready`` on their output,
with the models of the neighbours as background testbenches; a trace sampled at every
clock edge is then checked against the vectors computed here from the stimulus.
"""

import random

import pytest
from component_bench import RandomReady, Source, Trace, pack, run, unpack, wait_until

from aimc import TileConfig
from aimc.rtl.stream import InputLoader, ResultPacker

LOADER_CONFIGS = [
    TileConfig(rows=8, cols=4, lanes=4),                  # two full beats
    TileConfig(rows=10, cols=4, lanes=4),                 # three beats, two padding lanes
    TileConfig(rows=3, cols=3, lanes=8),                  # one beat, five padding lanes
    TileConfig(rows=5, cols=2, input_bits=10, lanes=2),   # 16-bit lanes, one padding lane
    TileConfig(rows=3, cols=2, input_bits=3, lanes=1, input_mode="bitserial"),  # x_max 3
]

PACKER_CONFIGS = [
    TileConfig(rows=4, cols=8, lanes=4),                  # two full beats, 16-bit lanes
    TileConfig(rows=4, cols=10, lanes=4),                 # three beats, two padding lanes
    TileConfig(rows=4, cols=3, lanes=8),                  # one beat, five padding lanes
    TileConfig(rows=4, cols=3, adc_bits=4, lanes=1),      # 6-bit results in 8-bit lanes
    TileConfig(rows=4, cols=5, input_bits=4, input_mode="bitserial", lanes=2),  # 11-bit raw
    TileConfig(rows=4, cols=4, adc_bits=12, input_mode="bitserial", lanes=4),   # 32-bit lanes
]

GAPS = [(1.0, 1.0), (0.5, 0.5), (0.3, 0.9), (0.9, 0.3)]  # (p_valid, p_ready)


def cfg_id(cfg):
    return cfg.key


# -- InputLoader --------------------------------------------------------------------------


def loader_frames(cfg, rng, n_good):
    """AXI4-Stream frames [(tdata, tlast), ...] and what each must produce: ("vector",
    packed payload), ("frame",) or ("range",). A malformed frame follows every few good
    ones; padding lanes carry values outside +-x_max that must not matter."""
    lw, lanes, beats, rows = cfg.in_lane_width, cfg.lanes, cfg.in_beats, cfg.rows
    lane_lo, lane_hi = -(1 << (lw - 1)), (1 << (lw - 1)) - 1
    # representable in a lane and outside +-x_max (at 8 bits the lane's top is x_max)
    bad_values = sorted({v for v in (cfg.x_max + 1, -cfg.x_max - 1, lane_lo, lane_hi)
                         if lane_lo <= v <= lane_hi and abs(v) > cfg.x_max})
    bad_kinds = ["late", "range", "range_late"] + (["early", "range_early"] if beats > 1 else [])
    kinds = []
    for i in range(n_good):
        kinds.append("ok")
        if i % 2:
            kinds.append(bad_kinds[(i // 2) % len(bad_kinds)])
    frames, want = [], []
    for kind in kinds:
        x = [rng.choice([-cfg.x_max, cfg.x_max, 0]) if rng.random() < 0.3
             else rng.randint(-cfg.x_max, cfg.x_max) for _ in range(rows)]
        padding = [rng.choice(bad_values) if rng.random() < 0.6 else rng.randint(lane_lo, lane_hi)
                   for _ in range(beats * lanes - rows)]
        if kind.startswith("range"):
            x[rng.randrange(rows)] = rng.choice(bad_values)
        elements = x + padding
        words = [pack(elements[k * lanes:(k + 1) * lanes], lw) for k in range(beats)]
        if kind.endswith("early"):
            words = words[:rng.randint(1, beats - 1)]
        elif kind.endswith("late"):
            words += [rng.getrandbits(cfg.in_data_width) for _ in range(rng.randint(1, 2))]
        frames.append([(w, int(k == len(words) - 1)) for k, w in enumerate(words)])
        if kind == "ok":
            want.append(("vector", pack(x, lw)))
        elif kind == "range":
            want.append(("range",))
        else:  # a wrong length wins over a bad element
            want.append(("frame",))
    return frames, want


def run_loader(cfg, frames, p_valid, p_ready, seed):
    dut = InputLoader(cfg)
    s, v = dut.stream, dut.vector
    beats = [b for f in frames for b in f]
    source = Source(s.tvalid, s.tready, [s.tdata, s.tlast], beats, p_valid=p_valid, seed=seed)
    sink = RandomReady(v.ready, p_ready=p_ready, seed=seed + 1)
    trace = Trace({"tvalid": s.tvalid, "tready": s.tready, "tlast": s.tlast,
                   "drop_frame": dut.drop_frame, "drop_range": dut.drop_range,
                   "vvalid": v.valid, "vready": v.ready, "payload": v.payload.as_value()})

    async def main(ctx):
        limit = 20 * len(beats) + 50
        await wait_until(ctx, lambda: source.finished, limit, "frames sent")
        for _ in range(40):  # the last vector leaves
            await ctx.tick()

    run(dut, main, source.run, sink.run, trace.run)
    return trace


def loader_events(trace):
    """("vector", payload) per vector taken, ("frame",)/("range",) per strobe, in order;
    the handshake rules are asserted on the way."""
    events, rows = [], trace.rows
    for n, r in enumerate(rows):
        end = r["tvalid"] and r["tready"] and r["tlast"]
        assert r["tready"] == (not r["vvalid"]), f"cycle {n}: tready with a vector waiting"
        assert not (r["drop_frame"] and r["drop_range"]), f"cycle {n}: two strobes"
        if r["drop_frame"] or r["drop_range"]:
            assert end, f"cycle {n}: a drop strobe outside a frame's last beat"
            events.append(("frame",) if r["drop_frame"] else ("range",))
        if n and r["vvalid"] and not rows[n - 1]["vvalid"]:
            p = rows[n - 1]
            assert p["tvalid"] and p["tready"] and p["tlast"] and not (
                p["drop_frame"] or p["drop_range"]), f"cycle {n}: a vector from nowhere"
        if r["vvalid"] and r["vready"]:
            events.append(("vector", r["payload"]))
        elif r["vvalid"] and n + 1 < len(rows):
            nxt = rows[n + 1]
            assert nxt["vvalid"] and nxt["payload"] == r["payload"], \
                f"cycle {n}: the waiting vector changed or vanished"
    assert not rows[-1]["vvalid"], "a vector was never taken"
    return events


@pytest.mark.parametrize("p_valid, p_ready", GAPS)
@pytest.mark.parametrize("cfg", LOADER_CONFIGS, ids=cfg_id)
def test_input_loader_delivers_each_good_vector_once_and_drops_bad_ones(cfg, p_valid, p_ready):
    seed = LOADER_CONFIGS.index(cfg) * 10 + GAPS.index((p_valid, p_ready))
    rng = random.Random(seed)
    frames, want = loader_frames(cfg, rng, n_good=10)
    trace = run_loader(cfg, frames, p_valid, p_ready, seed)
    got = loader_events(trace)
    for n, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"frame {n}: {g}, expected {w}"
    assert len(got) == len(want)
    # the stimulus covered every kind of frame and really stalled both sides
    assert {w[0] for w in want} == {"vector", "frame", "range"}
    if p_ready <= 0.5:
        assert any(r["vvalid"] and not r["vready"] for r in trace.rows)
    if p_valid <= 0.5:
        assert any(not r["tvalid"] and r["tready"] for r in trace.rows)


def test_input_loader_elements_arrive_in_row_order():
    """Row ``beat*lanes + j`` in lane ``j``: each element read back through the payload's
    signed view, with a different value per row."""
    cfg = TileConfig(rows=6, cols=2, lanes=4)   # two beats, two padding lanes
    x = [-7, 1, 127, -127, 0, 55]
    frame = [(pack(x[:4], 8), 0), (pack(x[4:] + [-128, 127], 8), 1)]
    dut = InputLoader(cfg)
    seen = []

    async def main(ctx):
        s = dut.stream
        for tdata, tlast in frame:
            ctx.set(s.tvalid, 1)
            ctx.set(s.tdata, tdata)
            ctx.set(s.tlast, tlast)
            assert ctx.get(s.tready)
            await ctx.tick()
        ctx.set(s.tvalid, 0)
        assert ctx.get(dut.vector.valid) and not ctx.get(s.tready)
        seen.extend(ctx.get(dut.vector.payload[i]) for i in range(cfg.rows))
        ctx.set(dut.vector.ready, 1)
        await ctx.tick()
        assert not ctx.get(dut.vector.valid) and ctx.get(s.tready)

    run(dut, main)
    assert seen == x
    assert unpack(pack(x, 8), 8, 6) == x


# -- ResultPacker -------------------------------------------------------------------------


def packer_vectors(cfg, rng, n):
    bits = cfg.result_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    fixed = [[lo] * cfg.cols, [hi] * cfg.cols, [-1] * cfg.cols,
             [[lo, hi, 0, -1][c % 4] for c in range(cfg.cols)]]
    return fixed + [[rng.randint(lo, hi) for _ in range(cfg.cols)] for _ in range(n)]


def run_packer(cfg, vectors, p_valid, p_ready, seed):
    dut = ResultPacker(cfg)
    v, s = dut.vector, dut.stream
    items = [(pack(x, cfg.result_bits),) for x in vectors]
    source = Source(v.valid, v.ready, [v.payload.as_value()], items, p_valid=p_valid, seed=seed)
    sink = RandomReady(s.ready, p_ready=p_ready, seed=seed + 1)
    trace = Trace({"vvalid": v.valid, "vready": v.ready, "svalid": s.valid, "sready": s.ready,
                   "data": s.payload.data.as_value(), "last": s.payload.last,
                   "busy": dut.busy})
    n_beats = len(vectors) * cfg.out_beats

    async def main(ctx):
        limit = 30 * n_beats + 50
        await wait_until(ctx, lambda: sum(r["svalid"] and r["sready"] for r in trace.rows)
                         == n_beats, limit, "beats sent")
        for _ in range(5):
            await ctx.tick()

    run(dut, main, source.run, sink.run, trace.run)
    return trace, source


def packer_beats(cfg, trace):
    """[(cycle, lanes, last)] of every beat sent; the stream rules are asserted on the way."""
    beats, rows = [], trace.rows
    for n, r in enumerate(rows):
        sent = r["svalid"] and r["sready"]
        assert r["svalid"] == r["busy"], f"cycle {n}: valid {r['svalid']}, busy {r['busy']}"
        # a new vector is taken when the packer is empty or its last beat leaves
        assert r["vready"] == (not r["busy"] or (sent and r["last"])), f"cycle {n}: ready"
        if sent:
            beats.append((n, unpack(r["data"], cfg.out_lane_width, cfg.lanes), r["last"]))
        elif r["svalid"] and n + 1 < len(rows):
            nxt = rows[n + 1]
            assert nxt["svalid"] and (nxt["data"], nxt["last"]) == (r["data"], r["last"]), \
                f"cycle {n}: the beat changed while stalled"
    return beats


@pytest.mark.parametrize("p_valid, p_ready", GAPS)
@pytest.mark.parametrize("cfg", PACKER_CONFIGS, ids=cfg_id)
def test_result_packer_sends_every_vector_sign_extended_in_order(cfg, p_valid, p_ready):
    seed = PACKER_CONFIGS.index(cfg) * 10 + GAPS.index((p_valid, p_ready))
    vectors = packer_vectors(cfg, random.Random(seed), n=12)
    trace, source = run_packer(cfg, vectors, p_valid, p_ready, seed)
    beats = packer_beats(cfg, trace)
    lanes, n_beats = cfg.lanes, cfg.out_beats
    assert len(beats) == len(vectors) * n_beats
    for i, x in enumerate(vectors):
        padded = list(x) + [0] * (n_beats * lanes - cfg.cols)
        for k in range(n_beats):
            cycle, got, last = beats[i * n_beats + k]
            want = padded[k * lanes:(k + 1) * lanes]
            assert got == want, f"vector {i} beat {k} (cycle {cycle}): {got}, expected {want}"
            assert last == (k == n_beats - 1), f"vector {i} beat {k}: last {last}"
    # each vector's first beat is offered in the cycle after the vector was taken
    takes = [c for c, _ in source.taken]
    first = [n for n, r in enumerate(trace.rows)
             if r["svalid"] and (n == 0 or not trace.rows[n - 1]["svalid"]
                                 or (trace.rows[n - 1]["sready"] and trace.rows[n - 1]["last"]))]
    assert first == [t + 1 for t in takes]
    if p_valid == 1.0:
        # back to back: vector i is taken in the cycle the last beat of vector i-1 leaves
        last_cycles = [c for c, _, last in beats if last]
        assert takes[1:] == last_cycles[:-1]
        if p_ready == 1.0:
            assert [c for c, _, _ in beats] == list(range(1, 1 + len(beats)))
    if p_ready <= 0.5:
        assert any(r["svalid"] and not r["sready"] for r in trace.rows)


def test_result_packer_full_rate_with_one_beat_vectors():
    """One beat per vector: a vector taken every cycle and a beat leaving every cycle."""
    cfg = TileConfig(rows=2, cols=4, lanes=4)
    vectors = packer_vectors(cfg, random.Random(7), n=10)
    trace, source = run_packer(cfg, vectors, 1.0, 1.0, seed=7)
    beats = packer_beats(cfg, trace)
    assert [c for c, _ in source.taken] == list(range(len(vectors)))
    assert [(c, lanes, last) for c, lanes, last in beats] == [
        (i + 1, list(x), 1) for i, x in enumerate(vectors)]
