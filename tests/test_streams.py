"""The tile's stream ends alone in Amaranth's simulator: the InputLoader (AXI4-Stream in,
whole input vectors out) and the ResultPacker (result vectors in, result beats out).

Both run under random TVALID gaps on their input and random ``ready`` on their output,
with the models of the neighbours as background testbenches; a trace sampled at every
clock edge is then checked against the vectors computed here from the stimulus. On a
training tile vectors of every kind (TUSER: forward vectors of ``rows`` elements, backward
and update vectors of ``cols``; forward and backward result vectors) are mixed in one
stream; an inference tile (``TileConfig.training`` False) knows forward vectors only: the
loader drops a frame of any other kind and finds no largest magnitude (``max`` 0), the
packer sends forward result vectors of ``cols`` elements.
"""

import random

import pytest
from component_bench import RandomReady, Source, Trace, pack, run, unpack, wait_until

from aimc import TileConfig
from aimc.enums import InputKind, ResultKind
from aimc.rtl.stream import InputLoader, ResultPacker, input_frame, result_vector

LOADER_CONFIGS = [
    TileConfig(rows=8, cols=7, lanes=4, training=True),   # two beats either way, 0 / 1 padding
    TileConfig(rows=10, cols=4, lanes=4, training=True),  # three beats (two padding lanes), one
    TileConfig(rows=3, cols=3, lanes=8, training=True),   # one beat, five padding lanes
    TileConfig(rows=5, cols=2, input_bits=10, lanes=2, training=True),  # 16-bit lanes, 1 pad
    TileConfig(rows=3, cols=2, input_bits=3, lanes=1, input_mode="bitserial",
               training=True),                            # x_max 3
    TileConfig(rows=3, cols=9, lanes=4, training=True),   # one beat forward, three backward
    # inference tiles: forward vectors only, every other TUSER a malformed frame
    TileConfig(rows=8, cols=7, lanes=4),                  # two beats
    TileConfig(rows=10, cols=4, lanes=4),                 # three beats, two padding lanes
    TileConfig(rows=3, cols=2, input_bits=3, lanes=1, input_mode="bitserial"),  # x_max 3
]

PACKER_CONFIGS = [
    TileConfig(rows=4, cols=8, lanes=4, training=True),   # two beats (one backward), 16-bit
    TileConfig(rows=4, cols=10, lanes=4, training=True),  # three beats, two padding lanes
    TileConfig(rows=4, cols=3, lanes=8, training=True),   # one beat, five padding lanes
    TileConfig(rows=4, cols=3, adc_bits=4, lanes=1, training=True),  # 6-bit results, 8-bit lanes
    TileConfig(rows=4, cols=5, input_bits=4, input_mode="bitserial", lanes=2,
               training=True),                            # 11-bit raw
    # 32-bit lanes, three backward beats, one forward
    TileConfig(rows=9, cols=4, adc_bits=12, input_mode="bitserial", lanes=4, training=True),
    # inference tiles: forward vectors only
    TileConfig(rows=4, cols=10, lanes=4),                 # three beats, two padding lanes
    TileConfig(rows=9, cols=4, adc_bits=12, input_mode="bitserial", lanes=4),  # one beat
]

GAPS = [(1.0, 1.0), (0.5, 0.5), (0.3, 0.9), (0.9, 0.3)]  # (p_valid, p_ready)


def cfg_id(cfg):
    return cfg.key


def field(layout, value, name):
    """Field ``name`` of ``value`` (an integer holding ``layout``), unsigned."""
    f = layout[name]
    return (value >> f.offset) & ((1 << f.width) - 1)


# -- InputLoader --------------------------------------------------------------------------


def kinds_of(cfg):
    """The kinds of input vector the tile takes: every kind on a training tile, forward
    vectors only on an inference tile."""
    return list(InputKind) if cfg.training else [InputKind.FORWARD]


def no_kinds(cfg):
    """The TUSER values that name no kind of vector of the tile (a malformed frame)."""
    return sorted(set(range(4)) - {k.value for k in kinds_of(cfg)})


def vector_length(cfg, kind):
    """Elements and beats of a vector of ``kind``: one element per row for a forward vector,
    per column for a backward or update vector."""
    n = cfg.rows if kind == InputKind.FORWARD else cfg.cols
    return n, -(-n // cfg.lanes)


def malformations(cfg):
    """The ways a frame can be malformed on ``cfg``, each with the kinds it applies to."""
    kinds, tile_kinds = {}, kinds_of(cfg)
    for kind in tile_kinds:
        _, beats = vector_length(cfg, kind)
        other = {vector_length(cfg, k)[1] for k in tile_kinds} - {beats}
        for name, ok in (("late", True), ("range", True), ("range_late", True),
                         ("no_kind", True), ("early", beats > 1), ("range_early", beats > 1),
                         ("kind_change", beats > 1 and len(tile_kinds) > 1),
                         ("no_kind_later", beats > 1), ("other_length", bool(other))):
            if ok:
                kinds.setdefault(name, []).append(kind)
    return kinds


def loader_frames(cfg, rng, n_good):
    """AXI4-Stream frames [(tdata, tuser, tlast), ...] and what each must produce:
    ("vector", kind, elements, max), ("frame",) or ("range",), and the plan
    [(way, kind, TUSER of each beat)]. The good frames go through the tile's kinds; a
    malformed frame follows each (at least ``n_good``, more on an inference tile): TLAST
    early or late (also the length of another kind), an element out of range, a TUSER that
    names no kind of the tile (3; on an inference tile also BACKWARD and UPDATE, each in
    turn; on the first beat or later), TUSER changed to another kind within the frame.
    Padding lanes carry values outside +-x_max (or at least larger than the vector's
    elements) that must not matter to the range check or to the largest magnitude (found on
    training tiles only: 0 on an inference tile)."""
    lw, lanes = cfg.in_lane_width, cfg.lanes
    lane_lo, lane_hi = -(1 << (lw - 1)), (1 << (lw - 1)) - 1
    # representable in a lane and outside +-x_max (at 8 bits the lane's top is x_max)
    bad_values = sorted({v for v in (cfg.x_max + 1, -cfg.x_max - 1, lane_lo, lane_hi)
                         if lane_lo <= v <= lane_hi and abs(v) > cfg.x_max})
    bad = malformations(cfg)
    bad_names = sorted(bad)
    tile_kinds, wrong_kinds = kinds_of(cfg), no_kinds(cfg)
    # at least as many frames as it takes every way to name each wrong kind in turn
    n_good = max(n_good, len(wrong_kinds) * len(bad_names))
    turn = dict.fromkeys(bad_names, rng.randrange(len(wrong_kinds)))
    plan = []
    for i in range(n_good):
        plan.append(("ok", tile_kinds[i % len(tile_kinds)]))
        name = bad_names[i % len(bad_names)]
        plan.append((name, rng.choice(bad[name])))
    frames, want, used = [], [], []
    for name, kind in plan:
        n, beats = vector_length(cfg, kind)
        small = rng.random() < 0.4  # elements well below x_max: padding lanes are larger
        top = max(cfg.x_max // 3, 1) if small else cfg.x_max
        x = [rng.choice([-top, top, 0]) if rng.random() < 0.3 else rng.randint(-top, top)
             for _ in range(n)]
        padding = [rng.choice(bad_values + [cfg.x_max, -cfg.x_max]) if rng.random() < 0.6
                   else rng.randint(lane_lo, lane_hi) for _ in range(beats * lanes - n)]
        if name.startswith("range"):
            x[rng.randrange(n)] = rng.choice(bad_values)
        elements = x + padding
        words = [pack(elements[k * lanes:(k + 1) * lanes], lw) for k in range(beats)]
        if name.endswith("early"):
            words = words[:rng.randint(1, beats - 1)]
        elif name.endswith("late"):
            words += [rng.getrandbits(cfg.in_data_width) for _ in range(rng.randint(1, 2))]
        elif name == "other_length":
            other = rng.choice(sorted({vector_length(cfg, k)[1] for k in tile_kinds} - {beats}))
            words = (words + [rng.getrandbits(cfg.in_data_width) for _ in range(other)])[:other]
        tuser = [kind.value] * len(words)
        no_kind = wrong_kinds[turn[name] % len(wrong_kinds)] if name != "ok" else None
        if name != "ok":
            turn[name] += 1
        if name == "no_kind":
            tuser = [no_kind] * len(words)
        elif name in ("kind_change", "no_kind_later"):
            j = rng.randrange(1, len(words))
            changed = no_kind if name == "no_kind_later" else rng.choice(
                [k.value for k in tile_kinds if k != kind])
            tuser[j] = changed
            if rng.random() < 0.5:  # changed for good, or for one beat
                tuser[j:] = [changed] * (len(words) - j)
        frames.append([(w, u, int(k == len(words) - 1))
                       for k, (w, u) in enumerate(zip(words, tuser, strict=True))])
        used.append((name, kind, tuple(tuser)))
        if name == "ok":
            want.append(("vector", kind, tuple(x),
                         max(abs(v) for v in x) if cfg.training else 0))
        elif name == "range":
            want.append(("range",))
        else:  # a wrong length or kind wins over a bad element
            want.append(("frame",))
    return frames, want, used


def run_loader(cfg, frames, p_valid, p_ready, seed):
    dut = InputLoader(cfg)
    s, v = dut.stream, dut.vector
    beats = [b for f in frames for b in f]
    source = Source(s.tvalid, s.tready, [s.tdata, s.tuser, s.tlast], beats, p_valid=p_valid,
                    seed=seed)
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


def decode_frame(cfg, payload):
    """("vector", kind, elements, max) of an input_frame payload: the first ``rows`` (forward)
    or ``cols`` elements; the others are not part of the vector."""
    layout = input_frame(cfg)
    kind = InputKind(field(layout, payload, "kind"))
    n, _ = vector_length(cfg, kind)
    data, lw = field(layout, payload, "data"), cfg.in_lane_width
    return ("vector", kind, tuple(unpack(data, lw, n)), field(layout, payload, "max"))


def loader_events(cfg, trace):
    """("vector", ...) per vector taken, ("frame",)/("range",) per strobe, in order; the
    handshake rules are asserted on the way."""
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
            events.append(decode_frame(cfg, r["payload"]))
        elif r["vvalid"] and n + 1 < len(rows):
            nxt = rows[n + 1]
            assert nxt["vvalid"] and nxt["payload"] == r["payload"], \
                f"cycle {n}: the waiting vector changed or vanished"
    assert not rows[-1]["vvalid"], "a vector was never taken"
    return events


@pytest.mark.parametrize("p_valid, p_ready", GAPS)
@pytest.mark.parametrize("cfg", LOADER_CONFIGS, ids=cfg_id)
def test_input_loader_delivers_each_good_vector_once_and_drops_bad_ones(cfg, p_valid, p_ready):
    """Every good vector once, in order, with its kind, its elements and their largest
    magnitude; every malformed one dropped with the right strobe."""
    seed = LOADER_CONFIGS.index(cfg) * 10 + GAPS.index((p_valid, p_ready))
    rng = random.Random(seed)
    frames, want, _ = loader_frames(cfg, rng, n_good=12)
    trace = run_loader(cfg, frames, p_valid, p_ready, seed)
    got = loader_events(cfg, trace)
    for n, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"frame {n}: {g}, expected {w}"
    assert len(got) == len(want)
    # the stimulus covered every kind of frame and vector and really stalled both sides
    assert {w[0] for w in want} == {"vector", "frame", "range"}
    assert {w[1] for w in want if w[0] == "vector"} == set(kinds_of(cfg))
    if cfg.training:  # the stimulus had vectors whose max is not 0
        assert any(w[3] for w in want if w[0] == "vector")
    if p_ready <= 0.5:
        assert any(r["vvalid"] and not r["vready"] for r in trace.rows)
    if p_valid <= 0.5:
        assert any(not r["tvalid"] and r["tready"] for r in trace.rows)


@pytest.mark.parametrize("cfg", LOADER_CONFIGS, ids=cfg_id)
def test_input_loader_malformed_frames_cover_every_way(cfg):
    """The frames of the test above reach every malformation that ``cfg`` allows, for
    every kind it allows it for, and every TUSER value that names no kind of the tile (on an
    inference tile BACKWARD and UPDATE among them), on the first beat and on a later one
    (the plan, not the RTL: a check of the stimulus)."""
    ways = malformations(cfg)
    tile_kinds = {k.value for k in kinds_of(cfg)}
    seen = {"no_kind": set(), "no_kind_later": set()}
    for seed in range(len(GAPS)):
        _, _, plan = loader_frames(cfg, random.Random(LOADER_CONFIGS.index(cfg) * 10 + seed),
                                   n_good=12)
        assert {name for name, _, _ in plan} == {"ok", *ways}
        for name, _, tuser in plan:
            if name in seen:
                seen[name] |= set(tuser) - tile_kinds
            elif name != "kind_change":
                assert set(tuser) <= tile_kinds, (name, tuser)
        # every TUSER value that names no kind of the tile, first and later
        for way, values in seen.items():
            assert values == (set(no_kinds(cfg)) if way in ways else set()), (way, values)
            values.clear()
    assert {"late", "range", "no_kind"} <= set(ways)
    assert no_kinds(cfg) == ([3] if cfg.training else [1, 2, 3])
    beats = {cfg.in_beats, cfg.out_beats} if cfg.training else {cfg.in_beats}
    if max(beats) > 1:
        assert {"early", "no_kind_later"} <= set(ways)
        assert ("kind_change" in ways) == cfg.training
    if len(beats) > 1:
        assert "other_length" in ways


def send_frame(ctx, s, frame):
    """Drive one frame's beats back to back (the loader must be ready)."""

    async def go():
        for tdata, tuser, tlast in frame:
            ctx.set(s.tvalid, 1)
            ctx.set(s.tdata, tdata)
            ctx.set(s.tuser, tuser)
            ctx.set(s.tlast, tlast)
            assert ctx.get(s.tready)
            await ctx.tick()
        ctx.set(s.tvalid, 0)
    return go()


@pytest.mark.parametrize("training, kind", [(True, k) for k in InputKind]
                         + [(False, InputKind.FORWARD)],
                         ids=lambda v: v.name.lower() if isinstance(v, InputKind)
                         else "training" if v else "inference")
def test_input_loader_elements_arrive_in_line_order_with_their_largest_magnitude(training,
                                                                                 kind):
    """Row (forward) or column ``beat*lanes + j`` in lane ``j``: each element read back
    through the payload's signed view, with a different value per line; ``max`` is the
    largest magnitude of the vector's elements (a negative one here), not of the padding
    lanes, which hold larger values; 0 on an inference tile, which finds none. The payload
    holds ``in_lines`` elements: max(rows, cols) on a training tile, rows on an inference
    tile."""
    cfg = TileConfig(rows=6, cols=7, lanes=4, training=training)  # two beats, 2 / 1 padding
    assert input_frame(cfg)["data"].shape.length == (7 if training else 6)
    x = {InputKind.FORWARD: [-7, 1, 12, -55, 0, 54],
         InputKind.BACKWARD: [3, -2, 0, 9, -100, 99, 1],
         InputKind.UPDATE: [0, 0, 0, -1, 0, 0, 0]}[kind]
    n = len(x)
    padded = x + [127, -127][:8 - n]
    frame = [(pack(padded[:4], 8), kind.value, 0), (pack(padded[4:], 8), kind.value, 1)]
    dut = InputLoader(cfg)
    seen = {}

    async def main(ctx):
        s, v = dut.stream, dut.vector
        await send_frame(ctx, s, frame)
        assert ctx.get(v.valid) and not ctx.get(s.tready)
        seen["data"] = [ctx.get(v.payload.data[i]) for i in range(n)]
        seen["kind"] = ctx.get(v.payload.kind)
        seen["max"] = ctx.get(v.payload.max)
        ctx.set(v.ready, 1)
        await ctx.tick()
        assert not ctx.get(v.valid) and ctx.get(s.tready)

    run(dut, main)
    assert seen["data"] == x
    assert seen["kind"] == kind
    assert seen["max"] == ({InputKind.FORWARD: 55, InputKind.BACKWARD: 100,
                            InputKind.UPDATE: 1}[kind] if training else 0)


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_input_loader_max_of_a_zero_vector_and_of_every_lane(training):
    """The largest magnitude in each lane position of a beat and in each beat (the tree of
    comparisons has no favourite), x_max itself, and 0 for a zero vector; one vector after
    the other, so that no maximum leaks into the next vector. An inference tile has no
    use for the maximum: always 0."""
    cfg = TileConfig(rows=5, cols=5, lanes=2, training=training)  # three beats, one padding
    vectors = [[0] * 5] + [[(3 if i == j else 1) * (-1) ** i for i in range(5)]
                           for j in range(5)] + [[-127, 0, 0, 0, 0], [0, 0, 0, 0, 127]]
    vectors.append([0] * 5)
    dut = InputLoader(cfg)
    seen = []

    async def main(ctx):
        s, v = dut.stream, dut.vector
        ctx.set(v.ready, 1)
        for x in vectors:
            padded = x + [-127]
            frame = [(pack(padded[2 * k:2 * k + 2], 8), InputKind.FORWARD.value, int(k == 2))
                     for k in range(3)]
            await send_frame(ctx, s, frame)
            assert ctx.get(v.valid)
            seen.append(ctx.get(v.payload.max))
            await ctx.tick()

    run(dut, main)
    assert seen == ([0, 3, 3, 3, 3, 3, 127, 127, 0] if training else [0] * 9)


INFERENCE_LOADERS = [
    TileConfig(rows=8, cols=7, lanes=4),    # two beats either length
    TileConfig(rows=3, cols=9, lanes=4),    # a forward vector in one beat, the columns in three
    TileConfig(rows=10, cols=4, lanes=4),   # three beats forward, the columns in one
]


@pytest.mark.parametrize("cfg", INFERENCE_LOADERS, ids=cfg_id)
def test_input_loader_inference_tile_drops_backward_and_update_frames(cfg):
    """An inference tile takes forward vectors only: a frame whose TUSER is BACKWARD or
    UPDATE is dropped whole with ``drop_frame`` (no vector), of the forward length or of the
    length such a vector has on a training tile (one element per column), with its elements
    in range or not (the kind wins over the range); so is a forward frame whose TUSER turns
    BACKWARD or UPDATE on a later beat. The forward vectors between them arrive, ``max``
    0, and the payload holds ``rows`` elements."""
    assert input_frame(cfg)["data"].shape.length == cfg.rows
    rng = random.Random(cfg.rows)
    lanes, top = cfg.lanes, cfg.x_max

    def frame(n, tuser, bad=False):
        x = [rng.randint(-top, top) for _ in range(n)]
        if bad:
            x[rng.randrange(n)] = top + 1
        padded = x + [0] * (-n % lanes)
        words = [pack(padded[k:k + lanes], cfg.in_lane_width) for k in range(0, len(padded),
                                                                              lanes)]
        if isinstance(tuser, int):
            tuser = [tuser] * len(words)
        return x, [(w, u, int(k == len(words) - 1))
                   for k, (w, u) in enumerate(zip(words, tuser, strict=True))]

    F, B, U = (k.value for k in InputKind)
    frames, want = [], []
    for kind in (B, U):
        for n in (cfg.rows, cfg.cols):
            for bad in (False, True):
                frames.append(frame(n, kind, bad)[1])
                want.append(("frame",))
        x, f = frame(cfg.rows, F)
        frames.append(f)
        want.append(("vector", InputKind.FORWARD, tuple(x), 0))
        if cfg.in_beats > 1:  # forward first, then the other kind: from the second beat on,
            tuser = [F] + [kind] * (cfg.in_beats - 1)  # or on the last beat only
            frames.append(frame(cfg.rows, tuser)[1])
            frames.append(frame(cfg.rows, [F] * (cfg.in_beats - 1) + [kind])[1])
            want += [("frame",), ("frame",)]
    # and a good vector with an element out of range is still dropped for its range
    frames.append(frame(cfg.rows, F, bad=True)[1])
    want.append(("range",))
    trace = run_loader(cfg, frames, 1.0, 1.0, seed=cfg.rows)
    assert loader_events(cfg, trace) == want


# -- ResultPacker -------------------------------------------------------------------------

def result_kinds(cfg):
    """What the sequencer hands over: forward and backward result vectors on a training
    tile, forward ones only on an inference tile."""
    return [ResultKind.FORWARD, ResultKind.BACKWARD] if cfg.training else [ResultKind.FORWARD]


def result_length(cfg, kind):
    """Results and beats of a result vector: one per column (forward), per row (backward)."""
    if kind == ResultKind.BACKWARD:
        return cfg.rows, cfg.back_beats
    return cfg.cols, cfg.out_beats


def packer_vectors(cfg, rng, n):
    """[(kind, results)]: the extremes of the result range for both kinds, then ``n``
    random vectors of random kinds."""
    bits = cfg.result_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    vectors = []
    for kind in result_kinds(cfg):
        m, _ = result_length(cfg, kind)
        vectors += [(kind, [lo] * m), (kind, [hi] * m), (kind, [-1] * m),
                    (kind, [[lo, hi, 0, -1][c % 4] for c in range(m)])]
    for _ in range(n):
        kind = rng.choice(result_kinds(cfg))
        m, _ = result_length(cfg, kind)
        vectors.append((kind, [rng.randint(lo, hi) for _ in range(m)]))
    return vectors


def vector_word(cfg, kind, x, rng):
    """A result_vector payload: the kind and the results in the first elements; the
    elements past the vector's length hold noise that must not leave the packer."""
    layout = result_vector(cfg)
    bits = cfg.result_bits
    noise = [rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
             for _ in range(cfg.out_lines - len(x))]
    return (kind.value << layout["kind"].offset
            | pack(list(x) + noise, bits) << layout["data"].offset)


def run_packer(cfg, vectors, p_valid, p_ready, seed):
    dut = ResultPacker(cfg)
    v, s = dut.vector, dut.stream
    rng = random.Random(seed + 2)
    items = [(vector_word(cfg, kind, x, rng),) for kind, x in vectors]
    source = Source(v.valid, v.ready, [v.payload.as_value()], items, p_valid=p_valid, seed=seed)
    sink = RandomReady(s.ready, p_ready=p_ready, seed=seed + 1)
    trace = Trace({"vvalid": v.valid, "vready": v.ready, "svalid": s.valid, "sready": s.ready,
                   "data": s.payload.data.as_value(), "last": s.payload.last,
                   "kind": s.payload.kind, "busy": dut.busy})
    n_beats = sum(result_length(cfg, kind)[1] for kind, _ in vectors)

    async def main(ctx):
        limit = 30 * n_beats + 50
        await wait_until(ctx, lambda: sum(r["svalid"] and r["sready"] for r in trace.rows)
                         == n_beats, limit, "beats sent")
        for _ in range(5):
            await ctx.tick()

    run(dut, main, source.run, sink.run, trace.run)
    return trace, source


def packer_beats(cfg, trace):
    """[(cycle, lanes, last, kind)] of every beat sent; the stream rules are asserted on the
    way."""
    beats, rows = [], trace.rows
    for n, r in enumerate(rows):
        sent = r["svalid"] and r["sready"]
        assert r["svalid"] == r["busy"], f"cycle {n}: valid {r['svalid']}, busy {r['busy']}"
        # a new vector is taken when the packer is empty or its last beat leaves
        assert r["vready"] == (not r["busy"] or (sent and r["last"])), f"cycle {n}: ready"
        if sent:
            beats.append((n, unpack(r["data"], cfg.out_lane_width, cfg.lanes), r["last"],
                          ResultKind(r["kind"])))
        elif r["svalid"] and n + 1 < len(rows):
            nxt = rows[n + 1]
            assert nxt["svalid"] and (nxt["data"], nxt["last"], nxt["kind"]) == (
                r["data"], r["last"], r["kind"]), f"cycle {n}: the beat changed while stalled"
    return beats


def expected_beats(cfg, vectors):
    """[(lanes, last, kind)] of every beat: ``lanes`` results per beat, padding lanes 0."""
    want, lanes = [], cfg.lanes
    for kind, x in vectors:
        m, n_beats = result_length(cfg, kind)
        padded = list(x) + [0] * (n_beats * lanes - m)
        want += [(padded[k * lanes:(k + 1) * lanes], int(k == n_beats - 1), kind)
                 for k in range(n_beats)]
    return want


@pytest.mark.parametrize("p_valid, p_ready", GAPS)
@pytest.mark.parametrize("cfg", PACKER_CONFIGS, ids=cfg_id)
def test_result_packer_sends_every_vector_sign_extended_in_order(cfg, p_valid, p_ready):
    """Forward vectors in ``out_beats`` beats, backward ones in ``back_beats`` (training
    tiles), each beat with its vector's kind; results sign-extended, padding lanes 0 (the
    noise past the vector's length in the payload cleared). An inference tile's payload
    holds ``cols`` results (forward vectors only)."""
    assert result_vector(cfg)["data"].shape.length == (
        max(cfg.rows, cfg.cols) if cfg.training else cfg.cols)
    seed = PACKER_CONFIGS.index(cfg) * 10 + GAPS.index((p_valid, p_ready))
    vectors = packer_vectors(cfg, random.Random(seed), n=12)
    trace, source = run_packer(cfg, vectors, p_valid, p_ready, seed)
    beats = packer_beats(cfg, trace)
    want = expected_beats(cfg, vectors)
    assert len(beats) == len(want)
    for n, ((cycle, got, last, kind), (w_lanes, w_last, w_kind)) in enumerate(
            zip(beats, want, strict=True)):
        assert (got, last, kind) == (w_lanes, w_last, w_kind), \
            f"beat {n} (cycle {cycle}): {(got, last, kind)}, expected {(w_lanes, w_last, w_kind)}"
    # each vector's first beat is offered in the cycle after the vector was taken
    takes = [c for c, _ in source.taken]
    first = [n for n, r in enumerate(trace.rows)
             if r["svalid"] and (n == 0 or not trace.rows[n - 1]["svalid"]
                                 or (trace.rows[n - 1]["sready"] and trace.rows[n - 1]["last"]))]
    assert first == [t + 1 for t in takes]
    if p_valid == 1.0:
        # back to back: vector i is taken in the cycle the last beat of vector i-1 leaves
        last_cycles = [c for c, _, last, _ in beats if last]
        assert takes[1:] == last_cycles[:-1]
        if p_ready == 1.0:
            assert [c for c, *_ in beats] == list(range(1, 1 + len(beats)))
    if p_ready <= 0.5:
        assert any(r["svalid"] and not r["sready"] for r in trace.rows)
    # training tiles: both kinds, one after the other in both orders
    kinds = [k for k, _ in vectors]
    if cfg.training:
        assert {(a, b) for a, b in zip(kinds, kinds[1:], strict=False)} >= {
            (ResultKind.FORWARD, ResultKind.BACKWARD), (ResultKind.BACKWARD, ResultKind.FORWARD)}
    else:
        assert set(kinds) == {ResultKind.FORWARD}


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_result_packer_full_rate_with_one_beat_vectors(training):
    """One beat per vector either way: a vector taken every cycle and a beat leaving every
    cycle, the kinds mixed (training tile)."""
    cfg = TileConfig(rows=2, cols=4, lanes=4, training=training)
    vectors = packer_vectors(cfg, random.Random(7), n=10)
    trace, source = run_packer(cfg, vectors, 1.0, 1.0, seed=7)
    beats = packer_beats(cfg, trace)
    assert [c for c, _ in source.taken] == list(range(len(vectors)))
    assert beats == [(i + 1, list(x) + [0] * (cfg.lanes - len(x)), 1, kind)
                     for i, (kind, x) in enumerate(vectors)]


def test_result_packer_backward_vector_of_rows_by_hand():
    """A backward vector of 9 rows in three beats (three padding lanes), then a forward one
    of 4 columns in one beat, written out."""
    cfg = TileConfig(rows=9, cols=4, lanes=4, training=True)  # 8-bit raw in 16-bit lanes
    rows = [-128, 127, 0, -1, 7, -100, 100, 1, -2]
    cols = [5, -5, 127, -128]
    dut = ResultPacker(cfg)
    got = []

    async def main(ctx):
        v, s = dut.vector, dut.stream
        ctx.set(s.ready, 1)
        for kind, x in ((ResultKind.BACKWARD, rows), (ResultKind.FORWARD, cols)):
            ctx.set(v.valid, 1)
            ctx.set(v.payload.kind, kind)
            for i in range(cfg.out_lines):
                ctx.set(v.payload.data[i], x[i] if i < len(x) else 99)  # noise past the end
            assert ctx.get(v.ready)
            await ctx.tick()
            ctx.set(v.valid, 0)
            while ctx.get(s.valid):
                got.append((ResultKind(ctx.get(s.payload.kind)),
                            [ctx.get(s.payload.data[j]) for j in range(cfg.lanes)],
                            ctx.get(s.payload.last)))
                await ctx.tick()

    run(dut, main)
    B, F = ResultKind.BACKWARD, ResultKind.FORWARD
    assert got == [(B, [-128, 127, 0, -1], 0), (B, [7, -100, 100, 1], 0), (B, [-2, 0, 0, 0], 1),
                   (F, [5, -5, 127, -128], 1)]
