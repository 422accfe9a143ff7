"""The engines alone in Amaranth's simulator: the CalibrationEngine and the ProgramEngine,
each with a model of what lies behind its EngineSignature (the sequencer, the analogue
half and the corrector) as a background testbench, and for the calibration engine a model
of the coefficient memories, for the program engine a small integer model of the devices.

The sequencer model accepts requests with random delays (only while the analogue half is
ready), answers each with a result vector chosen by the test, streams it back in beats
with random gaps and logs every request, beat and emitted beat; it holds ``idle`` low for
a while after an engine starts (results of the host still in flight) and while one of the
engine's own operations is in flight. What the engines compute is compared with an
independent computation on the same numbers: ``aimc.fixedpoint.CalFormat`` arithmetic
(and ``aimc.model.calibration.calibrate`` on a stand-in chip state) for calibration, a
Python statement of the program-and-verify rule (docs/architecture.md) on the same device
model for programming.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from component_bench import Source, Trace, pack, run, unpack, wait_until

from aimc import TileConfig
from aimc.enums import CalPhase, ColStatus, CorrectMode, DeviceStatus
from aimc.fixedpoint import (
    DRIFT_BITS,
    DRIFT_FRAC,
    GAIN_BITS,
    GAIN_FRAC,
    GAIN_MAX,
    GAIN_MIN,
    OFF_FRAC,
    ONE,
    RESULT_FRAC,
    CalFormat,
)
from aimc.model.calibration import Calibration, DriftReference, calibrate
from aimc.programming import AMP_BITS, PULSE_GAIN_FRAC, read_full_scale
from aimc.rtl.calib import CalibrationEngine
from aimc.rtl.engine import OpKind, op_layout
from aimc.rtl.program import ProgramEngine


def cfg_id(cfg):
    return cfg.key


# -- the sequencer, the analogue half and the corrector, as an engine sees them ---------------


class EngineSequencer:
    """Background testbench behind an engine's ``seq`` port.

    ``serve(request)`` returns the lane values (``out_beats * lanes``, padding included) of
    the result vector of an accepted request, a dict with ``kind``, ``inject``, ``row``,
    ``neg``, ``index`` (its number) and ``mode`` (the engine's mode when it was taken).
    ``ready(model, cycle)`` and ``abort(model, cycle)`` decide the analogue half's ready
    and the abort input (default: always ready, never abort); ``refuse(model)`` says
    whether the waiting request must not be accepted. ``hold_idle(ctx, n)`` keeps ``idle``
    low for about ``n`` cycles from now (results of the host in flight when the engine
    starts); the model asserts that the engine neither requests nor owns the pipeline
    before it has seen ``idle``.

    Logs: ``requests`` (cycle and request dict), ``beats`` (cycle, request index, mode,
    owns) of every result beat taken, ``emitted`` (cycle, lanes, last) of every emitted
    beat, ``runs`` (cycle busy rose, first cycle idle was seen high).
    """

    def __init__(self, cfg, seq, serve, *, seed=0, p_accept=0.6, p_beat=0.6, latency=(2, 8),
                 p_emit=1.0, ready=None, abort=None, refuse=None):
        self.cfg, self.seq, self.serve = cfg, seq, serve
        self.rng = random.Random(seed)
        self.p_accept, self.p_beat, self.latency = p_accept, p_beat, latency
        self.p_emit = p_emit
        self.host_cycles = 0   # cycles the host's results are still in flight
        self.ready_fn = ready or (lambda model, cycle: 1)
        self.abort_fn = abort or (lambda model, cycle: 0)
        self.refuse_fn = refuse or (lambda model: False)
        self.requests, self.beats, self.emitted, self.runs, self.aborts = [], [], [], [], []
        self.pending_for = 0   # cycles the waiting request has waited
        self.wait_for = 0      # cycles the engine's wait has been high
        self.outstanding = []  # beats of the operation in flight, (data word, last)

    def hold_idle(self, ctx, cycles):
        self.host_cycles = cycles
        if cycles:
            ctx.set(self.seq.idle, 0)

    def _split(self, lanes):
        cfg = self.cfg
        n = cfg.lanes
        return [(pack(lanes[b * n:(b + 1) * n], cfg.out_lane_width), int(b == cfg.out_beats - 1))
                for b in range(cfg.out_beats)]

    async def run(self, ctx):
        cfg, seq = self.cfg, self.seq
        layout = op_layout(cfg)
        fields = {name: (layout[name].offset, layout[name].width)
                  for name in ("kind", "inject", "row", "neg")}
        data, last = seq.results.payload.data.as_value(), seq.results.payload.last
        rng = self.rng
        cycle, start_at, offered, busy_prev = 0, 0, False, 0
        idle_seen = False
        ctx.set(seq.ready, self.ready_fn(self, 0))
        ctx.set(seq.idle, 1)
        sampled = (seq.request.valid, seq.request.ready, seq.request.payload.as_value(),
                   seq.results.valid, seq.results.ready, seq.busy, seq.owns,
                   seq.mode.as_value(), seq.emit.valid, seq.emit.ready,
                   seq.emit.payload.data.as_value(), seq.emit.payload.last, seq.wait,
                   seq.idle, seq.abort)
        async for _, _, *s in ctx.tick().sample(*sampled):
            (rv, rr, rp, resv, resr, busy, owns, mode, ev, er, ed, el, wait, idle, abort) = s
            # -- what happened in this cycle ----------------------------------------------
            if busy and not busy_prev:
                self.runs.append([cycle, None])
                idle_seen = False
            if busy and not idle_seen:
                # results in flight when an engine starts are the host's
                assert not owns, f"cycle {cycle}: the engine owns the pipeline before idle"
            if busy and idle and not idle_seen:
                idle_seen = True
                self.runs[-1][1] = cycle
            busy_prev = busy
            if abort:
                self.aborts.append(cycle)
            if rv:
                assert idle_seen, f"cycle {cycle}: a request before the sequencer was idle"
            if rv and rr:
                req = {name: (rp >> off) & ((1 << w) - 1) for name, (off, w) in fields.items()}
                req.update(index=len(self.requests), mode=mode)
                assert not self.outstanding, f"cycle {cycle}: a request with results in flight"
                self.requests.append((cycle, req))
                self.outstanding = self._split(self.serve(req))
                start_at = cycle + 1 + rng.randint(*self.latency)
                self.pending_for = 0
            elif rv:
                self.pending_for += 1
            if resv and resr:
                self.beats.append((cycle, len(self.requests) - 1, mode, owns))
                self.outstanding.pop(0)
                offered = False
            if ev:
                assert owns, f"cycle {cycle}: emit valid without owning the pipeline"
            if ev and er:
                self.emitted.append((cycle, unpack(ed, cfg.out_lane_width, cfg.lanes), el))
            self.wait_for = self.wait_for + 1 if wait else 0
            cycle += 1
            # -- what the model drives in the next cycle ----------------------------------
            ready = self.ready_fn(self, cycle)
            ctx.set(seq.ready, ready)
            in_flight = bool(self.outstanding)
            self.host_cycles = max(self.host_cycles - 1, 0)
            ctx.set(seq.idle, int(not in_flight and not self.host_cycles))
            ctx.set(seq.request.ready, int(ready and not in_flight and not self.refuse_fn(self)
                                           and rng.random() < self.p_accept))
            ctx.set(seq.abort, int(self.abort_fn(self, cycle)))
            ctx.set(seq.emit.ready, int(rng.random() < self.p_emit))
            if self.outstanding and cycle >= start_at and (offered or rng.random() < self.p_beat):
                offered = True
                ctx.set(seq.results.valid, 1)
                ctx.set(data, self.outstanding[0][0])
                ctx.set(last, self.outstanding[0][1])
            else:
                ctx.set(seq.results.valid, 0)
                ctx.set(data, rng.getrandbits(len(data)))
                ctx.set(last, rng.getrandbits(1))


# -- CalibrationEngine --------------------------------------------------------------------

CAL_CONFIGS = [
    TileConfig(rows=4, cols=6, adc_bits=6, lanes=4),                          # 2 beats, 2 pad
    TileConfig(rows=4, cols=5, input_bits=3, adc_bits=4, lanes=2, input_mode="bitserial"),
    TileConfig(rows=2, cols=3, adc_bits=5, lanes=1),                          # a lane per beat
]
#: Column kinds of the stimulus, repeated over the columns.
KINDS = ["normal", "rail", "dead", "high_gain", "low_gain", "normal"]


class CoefMemories:
    """The offset and gain memories of the tile as the engine sees them: a synchronous read
    port (the word addressed in a cycle is on ``off_rdata`` from the next) and lane-granular
    write ports. ``writes`` logs (cycle, memory, word, lane, value)."""

    def __init__(self, dut, offset, gain):
        self.dut, self.cfg = dut, dut.cfg
        n, lanes = max(self.cfg.out_beats, 2), self.cfg.lanes
        pad = n * lanes - len(offset)
        self.offset = [list(offset[w * lanes:(w + 1) * lanes]) for w in range(n)] if not pad \
            else [(list(offset) + [0] * pad)[w * lanes:(w + 1) * lanes] for w in range(n)]
        self.gain = [(list(gain) + [ONE] * pad)[w * lanes:(w + 1) * lanes] for w in range(n)]
        self.writes, self.out_of_range = [], []
        self.rng = random.Random(len(offset))

    def column(self, name, c):
        lanes = self.cfg.lanes
        return getattr(self, name)[c // lanes][c % lanes]

    def columns(self, name):
        return [self.column(name, c) for c in range(self.cfg.cols)]

    async def run(self, ctx):
        dut, lanes = self.dut, self.cfg.lanes
        off_bits = dut.fmt.off_bits
        rdata = dut.off_rdata.as_value()
        ctx.set(rdata, pack(self.offset[0], off_bits))
        cycle = 0
        async for _, _, raddr, ow, oen, od, gw, gen, gd in ctx.tick().sample(
                dut.off_raddr, dut.off_waddr, dut.off_wen, dut.off_wdata.as_value(),
                dut.gain_waddr, dut.gain_wen, dut.gain_wdata.as_value()):
            if raddr < len(self.offset):
                word = list(self.offset[raddr])  # read before the write of the same edge
            else:  # past the memory (an undefined word in Verilog): noise must not matter
                self.out_of_range.append((cycle, raddr))
                word = [self.rng.randint(-99, 99) for _ in range(lanes)]
            for name, addr, en, value, bits, signed in (
                    ("offset", ow, oen, od, off_bits, True),
                    ("gain", gw, gen, gd, GAIN_BITS, False)):
                values = unpack(value, bits, lanes, signed=signed)
                for j in range(lanes):
                    if en >> j & 1:
                        getattr(self, name)[addr][j] = values[j]
                        self.writes.append((cycle, name, addr, j, values[j]))
            ctx.set(rdata, pack(word, off_bits))
            cycle += 1


def cal_stimulus(cfg, rng, k, ref_raw, *, rails=True):
    """Raw results for one run's offset and gain phases (2**k MVMs each, (n, cols)) with
    the column kinds of KINDS: offsets near a per-column level; a rail code in one offset
    MVM of a "rail" column; reference responses that give a gain in range, a non-positive
    difference ("dead"), a gain of 2 or more, or one below 0.5."""
    fmt = CalFormat(cfg)
    lo, hi = fmt.rails
    n = 2**k
    kinds = [KINDS[c % len(KINDS)] for c in range(cfg.cols)]
    level = [lo + 2 if kind == "low_gain" else rng.randint(-3, 3) for kind in kinds]
    off = np.array([[level[c] + rng.randint(-1, 1) for c in range(cfg.cols)] for _ in range(n)])
    if rails:
        for c, kind in enumerate(kinds):
            if kind == "rail":
                off[rng.randrange(n), c] = rng.choice([lo, hi])
    d = {"normal": lambda: ref_raw / rng.uniform(0.6, 1.8), "rail": lambda: ref_raw,
         "dead": lambda: -rng.randint(0, 2), "high_gain": lambda: ref_raw / rng.uniform(2.2, 3),
         "low_gain": lambda: ref_raw / rng.uniform(0.3, 0.45)}
    gain = np.array([[level[c] + round(d[kinds[c]]()) + rng.randint(-1, 1)
                      for c in range(cfg.cols)] for _ in range(n)])
    return np.clip(off, lo, hi), np.clip(gain, lo, hi)


def sum_stimulus(cfg, rng, k):
    lo, hi = CalFormat(cfg).rails
    return np.array([[rng.randint(lo, hi) for _ in range(cfg.cols)] for _ in range(2**k)])


class CalState:
    """What the engine's run leaves: coefficients, flags, registers."""

    def __init__(self, offset, gain, status, drift_ref=0, drift_scale=ONE):
        self.offset, self.gain, self.status = list(offset), list(gain), list(status)
        self.drift_ref, self.drift_scale = drift_ref, drift_scale
        self.error = False

    def copy(self):
        return CalState(self.offset, self.gain, self.status, self.drift_ref, self.drift_scale)


def expected_run(cfg, state, phases, k, ref, drift_ref, raw, drift_min=None):
    """The run computed with CalFormat arithmetic. ``raw`` maps "offset", "gain", "sum" to
    (2**k, cols) raw results; the sum phases see them corrected (offset, gain, drift 1.0)."""
    fmt = CalFormat(cfg)
    lo, hi = fmt.rails
    s = state.copy()
    if phases & CalPhase.OFFSET:
        r = raw["offset"]
        s.offset = [int(fmt.average(int(r[:, c].sum()), k)) for c in range(cfg.cols)]
        for c in range(cfg.cols):
            at_rail = bool(((r[:, c] == lo) | (r[:, c] == hi)).any())
            s.status[c] = (s.status[c] & ~ColStatus.RAIL) | (ColStatus.RAIL if at_rail else 0)
    if phases & CalPhase.GAIN:
        r = raw["gain"]
        for c in range(cfg.cols):
            d = int(fmt.average(int(r[:, c].sum()), k)) - s.offset[c]
            q, overflow = fmt.quotient(ref, d, GAIN_FRAC)
            bad = overflow or not GAIN_MIN <= q < GAIN_MAX
            s.gain[c] = ONE if bad else q
            s.status[c] = (s.status[c] & ~ColStatus.GAIN) | (ColStatus.GAIN if bad else 0)
    if phases & (CalPhase.CAPTURE | CalPhase.DRIFT):
        corrected, _ = fmt.correct(raw["sum"], s.offset, s.gain, ONE)
        good = [c for c in range(cfg.cols) if not s.status[c]]
        total = int(np.abs(corrected[:, good]).sum()) >> k
        if total < max(fmt.drift_min_default if drift_min is None else drift_min, 1):
            s.error = True  # too small to measure (DRIFT_MIN at reset): nothing changes
        elif phases & CalPhase.CAPTURE:
            s.drift_ref, s.drift_scale = total, ONE
        elif drift_ref == 0:
            s.error = True  # no reference captured
        else:
            q, overflow = fmt.quotient(drift_ref, total, DRIFT_FRAC, DRIFT_BITS)
            if overflow:
                s.error = True
            else:
                s.drift_scale = q
        s.total = total
    return s


class FakeState:
    """A stand-in for ``ChipState`` that returns planned raw results, for the golden
    ``calibrate`` to run on the same numbers as the engine."""

    def __init__(self, cfg, blocks):
        self.tile, self.blocks = cfg, list(blocks)

    def mvm(self, x, first_vector, reference=False):
        return self.blocks.pop(0)


class CalBench:
    """A CalibrationEngine with the coefficient memories and the sequencer model; runs a
    list of runs in one simulation and returns what each left."""

    def __init__(self, cfg, *, seed, offset=None, gain=None, **model_args):
        self.cfg, self.fmt = cfg, CalFormat(cfg)
        self.dut = CalibrationEngine(cfg)
        rng = random.Random(seed)
        olo, ohi = -(1 << (self.fmt.off_bits - 1)), (1 << (self.fmt.off_bits - 1)) - 1
        offset = offset or [rng.randint(olo // 4, ohi // 4) for _ in range(cfg.cols)]
        gain = gain or [rng.randint(ONE // 2, 2 * ONE - 1) for _ in range(cfg.cols)]
        self.mem = CoefMemories(self.dut, offset, gain)
        self.rng = rng
        self.raw = {}      # the phase's planned raw results, set per run
        self.served = {"offset": 0, "gain": 0, "sum": 0}
        self.seq = EngineSequencer(cfg, self.dut.seq, self.serve, seed=seed, **model_args)
        self.trace = Trace({"done": self.dut.done, "error": self.dut.error,
                            "busy": self.dut.seq.busy, "ref_we": self.dut.drift_ref_we,
                            "ref_out": self.dut.drift_ref_out,
                            "scale_we": self.dut.drift_scale_we,
                            "scale_out": self.dut.drift_scale_out})

    def serve(self, req):
        cfg, fmt = self.cfg, self.fmt
        lo, hi = fmt.rails
        pad = cfg.out_beats * cfg.lanes - cfg.cols
        kind = OpKind(req["kind"])
        phase = "sum" if kind == OpKind.DRIFT else "gain" if req["inject"] else "offset"
        i = self.served[phase]
        self.served[phase] += 1
        block = self.raw.get(phase)
        raw = block[i] if block is not None and i < len(block) else np.zeros(cfg.cols, int)
        if phase == "sum":
            # the corrector: offset and gain as the memories hold them now, drift 1.0
            values, _ = fmt.correct(raw, self.mem.columns("offset"), self.mem.columns("gain"),
                                    ONE)
            garbage = [self.rng.choice([-1, 1]) * ((1 << (fmt.out_bits - 1)) - 1)
                       for _ in range(pad)]
        else:
            values = fmt.uncorrected(raw)
            garbage = [self.rng.choice([lo, hi]) << RESULT_FRAC for _ in range(pad)]
        return [int(v) for v in values] + garbage  # padding lanes must not count

    def status(self, word):
        return [(word >> (2 * c)) & 3 for c in range(self.cfg.cols)]

    def execute(self, runs):
        """``runs``: dicts with phases, k, ref, drift_ref, raw and optionally a ``during``
        coroutine function run while the engine is busy. Returns per run: done cycle,
        error, status, bad count, offsets, gains (memory contents) and request log slice."""
        dut, out = self.dut, []

        async def main(ctx):
            for r in runs:
                self.raw = r["raw"]
                self.served = {"offset": 0, "gain": 0, "sum": 0}
                first_request = len(self.seq.requests)
                first_write = len(self.mem.writes)
                ctx.set(dut.phases, int(r["phases"]))
                ctx.set(dut.avg_log2, r["k"])
                ctx.set(dut.ref, r["ref"])
                ctx.set(dut.drift_ref, r.get("drift_ref", 0))
                ctx.set(dut.drift_min, r.get("drift_min", CalFormat(self.cfg).drift_min_default))
                self.seq.hold_idle(ctx, r.get("host", self.rng.randint(2, 6)))
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                start = len(self.trace.rows) - 1
                if "during" in r:
                    await r["during"](ctx, dut)
                await wait_until(ctx, lambda s=start: any(
                    row["done"] for row in self.trace.rows[s:]), 6000, "calibration done")
                await ctx.tick()
                assert not ctx.get(dut.seq.busy)
                done = [n for n in range(start, len(self.trace.rows)) if self.trace.rows[n]["done"]]
                out.append({
                    "start": start, "done": done,
                    "error": [n for n in range(start, len(self.trace.rows))
                              if self.trace.rows[n]["error"]],
                    "status": self.status(ctx.get(dut.status)),
                    "bad_count": ctx.get(dut.bad_count),
                    "offset": self.mem.columns("offset"), "gain": self.mem.columns("gain"),
                    "requests": self.seq.requests[first_request:],
                    "writes": self.mem.writes[first_write:],
                    "ref_we": [(n, self.trace.rows[n]["ref_out"])
                               for n in range(start, len(self.trace.rows))
                               if self.trace.rows[n]["ref_we"]],
                    "scale_we": [(n, self.trace.rows[n]["scale_out"])
                                 for n in range(start, len(self.trace.rows))
                                 if self.trace.rows[n]["scale_we"]],
                })
                for _ in range(self.rng.randint(1, 4)):
                    await ctx.tick()

        run(dut, main, self.mem.run, self.seq.run, self.trace.run)
        return out


PHASE_REQUEST = {CalPhase.OFFSET: (OpKind.ZERO, 0, CorrectMode.RAW),
                 CalPhase.GAIN: (OpKind.ZERO, 1, CorrectMode.RAW),
                 CalPhase.CAPTURE: (OpKind.DRIFT, 0, CorrectMode.NO_DRIFT),
                 CalPhase.DRIFT: (OpKind.DRIFT, 0, CorrectMode.NO_DRIFT)}


def check_run(bench, got, want, phases, k):
    """The run ``got`` (from CalBench.execute) against the state ``want``."""
    cfg = bench.cfg
    ran = [p for p in (CalPhase.OFFSET, CalPhase.GAIN, CalPhase.CAPTURE, CalPhase.DRIFT)
           if phases & p and not (p == CalPhase.DRIFT and phases & CalPhase.CAPTURE)]
    # 2**k requests per phase, of the phase's kind, in the phase order
    want_requests = [PHASE_REQUEST[p][:2] for p in ran for _ in range(2**k)]
    assert [(OpKind(r["kind"]), r["inject"]) for _, r in got["requests"]] == want_requests
    # every result beat of a phase taken in its corrector mode, while owning the pipeline
    indices = {r["index"]: i for i, (_, r) in enumerate(got["requests"])}
    beats = [b for b in bench.seq.beats if b[1] in indices]
    assert len(beats) == len(want_requests) * cfg.out_beats
    for _, index, mode, owns in beats:
        assert owns
        assert mode == PHASE_REQUEST[ran[indices[index] >> k]][2].value
    # one done, with error exactly when due
    assert len(got["done"]) == 1
    assert got["error"] == (got["done"] if want.error else [])
    assert got["offset"] == want.offset, "offsets"
    assert got["gain"] == want.gain, "gains"
    assert got["status"] == want.status, "column status"
    assert got["bad_count"] == sum(1 for s in want.status if s)
    # the register writes of the capture and drift phases
    if phases & CalPhase.CAPTURE:
        assert [v for _, v in got["ref_we"]] == [want.drift_ref]
        assert [v for _, v in got["scale_we"]] == [ONE]
    elif phases & CalPhase.DRIFT and not want.error:
        assert got["ref_we"] == [] and [v for _, v in got["scale_we"]] == [want.drift_scale]
    else:
        assert got["ref_we"] == [] and got["scale_we"] == []
    # the memories are written by the phases that compute them, once per word or column
    offset_writes = [w for w in got["writes"] if w[1] == "offset"]
    gain_writes = [w for w in got["writes"] if w[1] == "gain"]
    assert len(offset_writes) == (cfg.out_beats * cfg.lanes if phases & CalPhase.OFFSET else 0)
    assert len(gain_writes) == (cfg.cols if phases & CalPhase.GAIN else 0)


def golden(cfg, start, phases, k, ref, drift_ref, raw, drift_min=None):
    """model.calibration.calibrate on the same raw results (its drift phase corrects them
    with its own coefficients, as the corrector does with the memories')."""
    names = [n for n, p in (("offset", CalPhase.OFFSET), ("gain", CalPhase.GAIN),
                            ("capture", CalPhase.CAPTURE), ("drift", CalPhase.DRIFT))
             if phases & p]
    blocks = [raw[n] for n, p in (("offset", CalPhase.OFFSET), ("gain", CalPhase.GAIN))
              if phases & p]
    if phases & (CalPhase.CAPTURE | CalPhase.DRIFT):
        blocks.append(raw["sum"])
    begin = Calibration(np.array(start.offset), np.array(start.gain), np.array(start.status),
                        drift_ref, start.drift_scale)
    reference = None if drift_min is None else DriftReference(
        cfg, cfg.x_max // 2, np.ones(cfg.rows, np.int64), np.ones(cfg.cols, bool), drift_min)
    return calibrate(FakeState(cfg, blocks), names, 0, k=k, ref=ref, start=begin,
                     reference=reference)


@pytest.mark.parametrize("cfg, k", [(cfg, k) for cfg in CAL_CONFIGS for k in (0, 2)]
                         + [(CAL_CONFIGS[0], 5)],  # k > OFF_FRAC: the average rounds
                         ids=lambda v: cfg_id(v) if isinstance(v, TileConfig) else f"k{v}")
def test_calibration_runs_match_the_fixed_point_arithmetic(cfg, k):
    """Four runs in one simulation: offset, gain and capture (drift selected too: capture
    wins); drift; gain alone (the offsets of the first run, its rail flags kept); offset
    alone without rails (rail flags cleared, gain flags kept)."""
    seed = CAL_CONFIGS.index(cfg) * 10 + k
    rng = random.Random(seed)
    fmt = CalFormat(cfg)
    lo, hi = fmt.rails
    ref_raw = (hi - lo) // 4
    ref = (ref_raw << OFF_FRAC) + rng.randrange(1 << OFF_FRAC)
    bench = CalBench(cfg, seed=seed)
    state = CalState(bench.mem.columns("offset"), bench.mem.columns("gain"), [0] * cfg.cols)

    off1, gain1 = cal_stimulus(cfg, rng, k, ref_raw)
    runs = [dict(phases=CalPhase.OFFSET | CalPhase.GAIN | CalPhase.CAPTURE | CalPhase.DRIFT,
                 k=k, ref=ref,
                 raw={"offset": off1, "gain": gain1, "sum": sum_stimulus(cfg, rng, k)})]

    async def restart(ctx, dut):
        # a start while the engine runs, with other settings, changes nothing
        for _ in range(3):
            await ctx.tick()
        ctx.set(dut.phases, int(CalPhase.OFFSET))
        ctx.set(dut.avg_log2, (k + 1) % 4)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)

    runs.append(dict(phases=CalPhase.DRIFT, k=k, ref=ref, raw={"sum": sum_stimulus(cfg, rng, k)},
                     during=restart))
    _, gain3 = cal_stimulus(cfg, rng, k, ref_raw)
    runs.append(dict(phases=CalPhase.GAIN, k=k, ref=ref, raw={"gain": gain3}))
    off4, _ = cal_stimulus(cfg, rng, k, ref_raw, rails=False)
    runs.append(dict(phases=CalPhase.OFFSET, k=k, ref=ref, raw={"offset": off4}))

    # the expected states, run after run; the drift reference for run 2 is about 1.3 times
    # its sum, so that its scale is about 1.3 (no DRIFT_MIN: the random sums of the small
    # tiles can be below its reset value)
    wants = []
    for i, r in enumerate(runs):
        r["drift_min"] = 0
        if i == 1:
            total = expected_run(cfg, state, r["phases"], k, r["ref"], 0, r["raw"], 0).total
            r["drift_ref"] = total + max(1, total * 3 // 10)
        state = expected_run(cfg, state, r["phases"], k, r["ref"], r.get("drift_ref", 0),
                             r["raw"], 0)
        wants.append(state)
    got = bench.execute(runs)
    before = CalState(bench.mem.columns("offset"), bench.mem.columns("gain"), [0] * cfg.cols)
    for i, (r, g, w) in enumerate(zip(runs, got, wants, strict=True)):
        check_run(bench, g, w, r["phases"], k)
        # the golden algorithm agrees on the same numbers
        gold = golden(cfg, before if i == 0 else wants[i - 1], r["phases"], k, r["ref"],
                      r.get("drift_ref", 0), r["raw"], 0)
        assert list(gold.offset) == w.offset and list(gold.gain) == w.gain
        assert list(gold.status) == w.status and gold.error == w.error
        if r["phases"] & (CalPhase.CAPTURE | CalPhase.DRIFT):
            assert (gold.drift_ref if r["phases"] & CalPhase.CAPTURE else gold.drift_scale) == (
                w.drift_ref if r["phases"] & CalPhase.CAPTURE else w.drift_scale)
    # the engine asked for nothing before the sequencer was idle, which it was not at once
    for start_cycle, idle_cycle in bench.seq.runs:
        first = min(c for c, _ in bench.seq.requests if c > start_cycle)
        assert idle_cycle is not None and first > idle_cycle > start_cycle
    # the stimulus reached every flag and every kind of bad gain
    status1 = wants[0].status
    assert ColStatus.RAIL in {ColStatus(s) & ColStatus.RAIL for s in status1}
    kinds = [KINDS[c % len(KINDS)] for c in range(cfg.cols)]
    for c, kind in enumerate(kinds):
        if kind in ("dead", "high_gain", "low_gain"):
            assert status1[c] & ColStatus.GAIN, f"column {c} ({kind}) not flagged"
    assert any(s == 0 for s in status1)
    assert wants[1].drift_scale not in (ONE, 0) and not wants[1].error
    assert all(s & ColStatus.RAIL == 0 for s in wants[3].status)
    assert any(s & ColStatus.GAIN for s in wants[3].status)


def test_calibration_gain_range_boundaries():
    """Gains at and next to the ends of [0.5, 2), from 16-MVM averages (k = 4: the average
    keeps every 1/16 of a code): the differences ``d`` (sixteenths of a code) and the gains
    and flags they must give, written out."""
    cfg = CAL_CONFIGS[0]                 # six columns, raw -32 .. 31
    k, ref = 4, 16 << OFF_FRAC           # CAL_REF 16.0 codes
    level = [-10, -10, -12, -12, 3, 0]   # offsets, whole codes
    d = [8 * 16, 8 * 16 + 1, 32 * 16, 32 * 16 + 1, 0, 16 * 16 + 3]
    # gain = (ref << 14 + d / 2) // d with ref << 14 = 2**22: 2**22 / 128 = 32768 (2.0, flagged,
    # 1.0 kept); / 129 = 32514 (1.984); / 512 = 8192 (0.5, kept); / 513 = 8176 (below 0.5,
    # flagged); d = 0 dead; / 259 = 16194
    want_gain = [ONE, 32514, 8192, ONE, ONE, 16194]
    want_status = [ColStatus.GAIN, 0, 0, ColStatus.GAIN, ColStatus.GAIN, 0]
    n = 2**k
    off = np.array([level] * n)
    gain = np.zeros((n, cfg.cols), dtype=np.int64)
    for c in range(cfg.cols):  # n results whose sum, in codes, is 16 * level + d
        total = (level[c] << OFF_FRAC) + d[c]
        base, extra = divmod(total, n)
        gain[:, c] = [base + (i < extra) for i in range(n)]
    bench = CalBench(cfg, seed=6)
    got = bench.execute([dict(phases=CalPhase.OFFSET | CalPhase.GAIN, k=k, ref=ref,
                              raw={"offset": off, "gain": gain})])[0]
    assert got["offset"] == [v << OFF_FRAC for v in level]
    assert got["gain"] == want_gain
    assert got["status"] == want_status
    assert got["bad_count"] == 3 and got["error"] == []


def test_calibration_drift_errors_zero_sum_and_overflow():
    """Drift runs on offsets that are whole raw codes, so that raw results equal to them
    correct to exactly 0: a zero sum is an error, as is a scale that does not fit; the
    scale is then left alone. A fitting scale is written."""
    cfg = CAL_CONFIGS[0]
    k = 1
    rng = random.Random(3)
    fmt = CalFormat(cfg)
    level = [rng.randint(-5, 5) for _ in range(cfg.cols)]
    bench = CalBench(cfg, seed=3, offset=[v << OFF_FRAC for v in level])
    state = CalState(bench.mem.columns("offset"), bench.mem.columns("gain"), [0] * cfg.cols)
    zero = np.array([level] * 2**k)
    lively = sum_stimulus(cfg, rng, k)
    s_avg = expected_run(cfg, state, CalPhase.CAPTURE, k, 0, 0, {"sum": lively}).drift_ref
    assert s_avg > 0
    runs = [
        dict(phases=CalPhase.DRIFT, k=k, ref=0, drift_ref=1000, raw={"sum": zero}),
        dict(phases=CalPhase.DRIFT, k=k, ref=0, drift_ref=4 * s_avg, raw={"sum": lively}),
        dict(phases=CalPhase.DRIFT, k=k, ref=0, drift_ref=4 * s_avg - 1, raw={"sum": lively}),
        dict(phases=CalPhase.DRIFT, k=k, ref=0, drift_ref=s_avg // 3, raw={"sum": lively}),
    ]
    got = bench.execute(runs)
    wants = [expected_run(cfg, state, r["phases"], k, 0, r["drift_ref"], r["raw"]) for r in runs]
    assert [w.error for w in wants] == [True, True, False, False]
    assert wants[0].total == 0
    for r, g, w in zip(runs, got, wants, strict=True):
        check_run(bench, g, w, r["phases"], k)
    assert [v for _, v in got[2]["scale_we"]] == [fmt.quotient(4 * s_avg - 1, s_avg, 14)[0]]


@pytest.mark.parametrize("phase, at", [(CalPhase.OFFSET, 2), (CalPhase.GAIN, 1),
                                       (CalPhase.CAPTURE, 0)])
def test_calibration_abort_during_a_request_ends_the_run_with_an_error(phase, at):
    """The sequencer never takes request ``at`` of ``phase`` and aborts it: the run ends
    (done with error, after the recount of BAD_COLS: ``out_beats`` cycles, one word of flags
    each, from the cycle after the abort), nothing more is requested, and the coefficients
    and column flags of the unfinished phase stay as they were; finished phases keep
    theirs."""
    cfg = CAL_CONFIGS[0]
    k = 2
    order = [CalPhase.OFFSET, CalPhase.GAIN, CalPhase.CAPTURE]
    target = order.index(phase) * 2**k + at
    rng = random.Random(at)
    fmt = CalFormat(cfg)
    lo, hi = fmt.rails

    def refuse(model):
        return len(model.requests) == target

    def abort(model, cycle):
        return refuse(model) and model.pending_for == 5

    bench = CalBench(cfg, seed=4, refuse=refuse, abort=abort)
    start = CalState(bench.mem.columns("offset"), bench.mem.columns("gain"), [0] * cfg.cols)
    off, gain = cal_stimulus(cfg, rng, k, (hi - lo) // 4)
    raw = {"offset": off, "gain": gain, "sum": sum_stimulus(cfg, rng, k)}
    ref = ((hi - lo) // 4) << OFF_FRAC
    phases = CalPhase.OFFSET | CalPhase.GAIN | CalPhase.CAPTURE
    got = bench.execute([dict(phases=phases, k=k, ref=ref, raw=raw)])[0]
    assert len(got["requests"]) == target
    assert len(bench.seq.aborts) == 1
    assert got["done"] == got["error"] == [bench.seq.aborts[0] + 1 + cfg.out_beats]
    finished = sum(order[:order.index(phase)], CalPhase(0))
    want = expected_run(cfg, start, finished, k, ref, 0, raw)
    assert got["offset"] == want.offset
    assert got["gain"] == want.gain
    assert got["status"] == want.status
    assert got["bad_count"] == sum(1 for s in want.status if s)
    assert got["ref_we"] == [] and got["scale_we"] == []


@pytest.mark.parametrize("phase", [CalPhase.OFFSET, CalPhase.GAIN], ids=["offset", "gain"])
def test_calibration_abort_keeps_the_column_flags_of_the_last_finished_run(phase):
    """A run aborted in its offset or gain phase must leave the
    column flags as the last finished run left them, like the coefficients (the gains of
    the columns it flagged are still 1.0, and only the flags keep a later capture or drift
    run from summing those columns), and BAD_COLS must count them.

    Run 1 (offset and gain) flags a rail column and the dead columns; run 2 (``phase``
    alone) is aborted at its first request. (A first version of the engine cleared the
    phase's flags as the phase began and went from the abort straight to DONE: after a gain
    abort COL_STATUS read [0, 1, 0, 0, 0, 0] instead of [0, 3, 2, 2, 2, 0].)"""
    cfg = CAL_CONFIGS[0]
    k = 0
    rng = random.Random(9)
    fmt = CalFormat(cfg)
    lo, hi = fmt.rails
    ref_raw = (hi - lo) // 4

    def refuse(model):
        return len(model.requests) == 2  # the first request of run 2

    def abort(model, cycle):
        return refuse(model) and model.pending_for == 3

    bench = CalBench(cfg, seed=9, refuse=refuse, abort=abort)
    off, gain = cal_stimulus(cfg, rng, k, ref_raw)
    ref = ref_raw << OFF_FRAC
    first, second = bench.execute([
        dict(phases=CalPhase.OFFSET | CalPhase.GAIN, k=k, ref=ref,
             raw={"offset": off, "gain": gain}),
        dict(phases=phase, k=k, ref=ref, raw={"offset": off, "gain": gain})])
    assert second["error"] == second["done"] and len(second["done"]) == 1
    assert second["requests"] == []
    assert ColStatus.RAIL in {ColStatus(s) & ColStatus.RAIL for s in first["status"]}
    assert any(s & ColStatus.GAIN for s in first["status"])
    assert (second["offset"], second["gain"]) == (first["offset"], first["gain"])
    assert second["bad_count"] == first["bad_count"] == 4
    # the flags are what the last finished run left, and BAD_COLS counts them
    assert second["status"] == first["status"]


def test_calibration_without_phases_is_done_at_once():
    cfg = CAL_CONFIGS[2]
    bench = CalBench(cfg, seed=5)
    before = (bench.mem.columns("offset"), bench.mem.columns("gain"))
    got = bench.execute([dict(phases=CalPhase(0), k=3, ref=0, raw={})])[0]
    assert got["done"] == [got["start"] + 1] and got["error"] == []
    assert got["requests"] == [] and got["writes"] == []
    assert (got["offset"], got["gain"]) == before


def test_engines_reject_a_non_config():
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not None$"):
        CalibrationEngine(None)
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not 'cfg'$"):
        ProgramEngine("cfg")


# -- ProgramEngine ------------------------------------------------------------------------

PROG_CONFIGS = [
    TileConfig(rows=2, cols=3, adc_bits=6, lanes=2),                          # 2 beats, 1 pad
    TileConfig(rows=2, cols=4, input_bits=3, adc_bits=6, lanes=4, input_mode="bitserial"),
    TileConfig(rows=3, cols=2, adc_bits=5, lanes=1),                          # a lane per beat
]


class Devices:
    """A small integer model of the crossbar's devices: each (row, column, side) holds a
    read value in quarter counts (the result stream's RESULT_FRAC = 2 fractional bits). A
    read returns it (whole counts for raw reads, quarters for corrected ones; saturated at
    the top of the result range, which ``top`` passes at 5-bit ADCs); a SET pulse
    raises it by ``sens * amp * width // 48`` quarters, a RESET lowers it by
    ``sens * amp * width // 64``, within 0 .. ``top``; stuck devices never move."""

    def __init__(self, cfg, rng, stuck=()):
        self.cfg = cfg
        full = read_full_scale(cfg.adc_bits)
        self.top = 4 * (full + 4)
        shape = (cfg.rows, cfg.cols, 2)
        self.g = np.array([rng.randint(0, self.top) for _ in range(np.prod(shape))]).reshape(shape)
        self.sens = np.array([rng.choice([1, 2, 4, 6]) for _ in range(np.prod(shape))]
                             ).reshape(shape)
        self.stuck = np.zeros(shape, dtype=bool)
        for r, c, s in stuck:
            self.stuck[r, c, s] = True

    def copy(self):
        other = Devices.__new__(Devices)
        other.cfg, other.top = self.cfg, self.top
        other.g, other.sens, other.stuck = self.g.copy(), self.sens.copy(), self.stuck.copy()
        return other

    def read(self, row, side, corrected):
        """What the result stream carries: the converter saturates at its top code (a raw
        read), the corrector at the top of the output format (a corrected one)."""
        v = self.g[row, :, side]
        top_q = (1 << (CalFormat(self.cfg).out_bits - 1)) - 1
        top_raw = (1 << (self.cfg.adc_bits - 1)) - 1
        v = np.minimum(v, top_q) if corrected else np.minimum(v >> 2, top_raw) << 2
        return [int(x) for x in v]

    def pulse(self, row, side, set_mask, reset_mask, amps, width):
        for c in range(self.cfg.cols):
            if self.stuck[row, c, side]:
                continue
            g, s = int(self.g[row, c, side]), int(self.sens[row, c, side])
            if set_mask >> c & 1:
                g = min(g + s * amps[c] * width // 48, self.top)
            elif reset_mask >> c & 1:
                g = max(g - s * amps[c] * width // 64, 0)
            self.g[row, c, side] = g


def program_reference(cfg, devices, targets, *, parallel, tol, max_iter, width, set_gain,
                      reset_gain, corrected, stop_rows=None):
    """The documented rule, on ``devices`` (changed in place): for each row, side G+ then
    G-, each group (the whole row, or one column) reads, decides, pulses, until nobody is
    left. Returns the reads [(row, side)], the steps [(row, side, set, reset, amps of the
    pulsed columns)], the status rows and the counters."""
    cols = cfg.cols
    tol_q = tol << RESULT_FRAC
    reads, steps, status = [], [], []
    n = {k: 0 for k in ("pulses", "passed", "failed", "stuck", "reads", "steps")}
    for r in range(cfg.rows if stop_rows is None else stop_rows):
        row_status = [0] * cols
        for side in (0, 1):
            target = [max(t, 0) if side == 0 else max(-t, 0) for t in targets[r]]
            groups = [list(range(cols))] if parallel else [[c] for c in range(cols)]
            for group in groups:
                todo, it, first = set(group), 0, None
                while True:
                    v = devices.read(r, side, corrected)
                    reads.append((r, side))
                    n["reads"] += 1
                    first = v if it == 0 else first
                    again, amps, set_mask, reset_mask = set(), {}, 0, 0
                    for c in sorted(todo):
                        e = v[c] - (target[c] << RESULT_FRAC)
                        if abs(e) <= tol_q:
                            n["passed"] += 1
                            row_status[c] |= DeviceStatus.passed(side)
                        elif it == max_iter:
                            n["failed"] += 1
                            if abs(v[c] - first[c]) <= tol_q:
                                n["stuck"] += 1
                                row_status[c] |= DeviceStatus.stuck(side)
                        else:
                            again.add(c)
                            n["pulses"] += 1
                            gain = set_gain if e < 0 else reset_gain
                            amps[c] = min(max((abs(e) * gain) >> (PULSE_GAIN_FRAC
                                                                  + RESULT_FRAC), 1), 255)
                            if e < 0:
                                set_mask |= 1 << c
                            else:
                                reset_mask |= 1 << c
                    todo = again
                    if not todo:
                        break
                    steps.append((r, side, set_mask, reset_mask, amps))
                    devices.pulse(r, side, set_mask, reset_mask,
                                  [amps.get(c, 0) for c in range(cols)], width)
                    n["steps"] += 1
                    it += 1
        status.append(row_status)
    return reads, steps, status, n


class ProgBench:
    """A ProgramEngine with the device model, the sequencer model (answering READ requests
    from the devices) and a target-stream source."""

    def __init__(self, cfg, devices, packets, *, seed, p_valid=0.6, **model_args):
        self.cfg, self.devices = cfg, devices
        self.dut = dut = ProgramEngine(cfg)
        self.rng = random.Random(seed)
        self.seq = EngineSequencer(cfg, dut.seq, self.serve, seed=seed, **model_args)
        t = dut.targets
        self.source = Source(t.tvalid, t.tready, [t.tdata, t.tlast],
                             [b for p in packets for b in p], p_valid=p_valid, seed=seed + 1)
        self.pulses = []
        self.trace = Trace({"done": dut.done, "error": dut.error, "busy": dut.seq.busy,
                            "pulse": dut.pulse, "row": dut.pulse_row, "neg": dut.pulse_neg,
                            "set": dut.pulse_set, "reset": dut.pulse_reset,
                            "amp": dut.pulse_amp, "width": dut.pulse_width,
                            "req": dut.seq.request.valid, "wait": dut.seq.wait,
                            "tready": t.tready})

    def serve(self, req):
        cfg = self.cfg
        assert OpKind(req["kind"]) == OpKind.READ
        corrected = req["mode"] == CorrectMode.NO_DRIFT.value
        pad = cfg.out_beats * cfg.lanes - cfg.cols
        return self.devices.read(req["row"], req["neg"], corrected) + [
            self.rng.randint(-100, 100) for _ in range(pad)]  # padding lanes: ignored

    async def pulse_model(self, ctx):
        dut, cfg = self.dut, self.cfg
        cycle = 0
        async for _, _, p, row, neg, s, r, amp, width in ctx.tick().sample(
                dut.pulse, dut.pulse_row, dut.pulse_neg, dut.pulse_set, dut.pulse_reset,
                dut.pulse_amp, dut.pulse_width):
            if p:
                amps = unpack(amp, AMP_BITS, cfg.cols, signed=False)
                assert s & r == 0, f"cycle {cycle}: SET and RESET on one device"
                self.pulses.append((cycle, row, neg, s, r, amps, width))
                self.devices.pulse(row, neg, s, r, amps, width)
            cycle += 1

    def execute(self, settings, *, during=None, limit=20000):
        dut, out = self.dut, {}

        async def main(ctx):
            for name, value in settings.items():
                ctx.set(getattr(dut, name), int(value))
            self.seq.hold_idle(ctx, self.rng.randint(2, 6))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            out["start"] = len(self.trace.rows) - 1
            if during is not None:
                await during(ctx)
            await wait_until(ctx, lambda: any(r["done"] for r in self.trace.rows[out["start"]:]),
                             limit, "programming done")
            await ctx.tick()
            assert not ctx.get(dut.seq.busy)
            out.update({name: ctx.get(getattr(dut, name)) for name in (
                "pulses", "passed", "failed", "stuck", "reads", "steps", "cycles")})
            for _ in range(4):
                await ctx.tick()

        run(dut, main, self.seq.run, self.source.run, self.pulse_model, self.trace.run)
        rows = self.trace.rows
        out["done"] = [n for n, r in enumerate(rows) if r["done"]]
        out["error"] = [n for n, r in enumerate(rows) if r["error"]]
        return out


def packets_for(cfg, targets, broken=None):
    """Target packets, one per row (``lanes`` targets per beat, TLAST on the last beat);
    ``broken`` = (row, "early"|"late") makes that row's packet the wrong length."""
    lanes, width = cfg.lanes, cfg.tgt_lane_width
    packets = []
    for r, row in enumerate(targets):
        padded = list(row) + [0] * (cfg.out_beats * lanes - cfg.cols)
        words = [pack(padded[b * lanes:(b + 1) * lanes], width) for b in range(cfg.out_beats)]
        lasts = [int(b == cfg.out_beats - 1) for b in range(cfg.out_beats)]
        if broken and broken[0] == r:
            if broken[1] == "early":
                words, lasts = words[:-1], [0] * (len(words) - 2) + [1]
            else:
                words, lasts = words + [words[0]], [0] * len(words) + [1]
        packets.append(list(zip(words, lasts, strict=True)))
    return packets


def emitted_rows(cfg, emitted):
    """Status packets from the emitted beats: one list of per-column flags per row."""
    rows, current = [], []
    for _, lanes, last in emitted:
        current += lanes
        if last:
            assert len(current) == cfg.out_beats * cfg.lanes
            assert current[cfg.cols:] == [0] * (len(current) - cfg.cols), "padding lanes"
            rows.append(current[:cfg.cols])
            current = []
    assert current == [], "a status packet without its last beat"
    return rows


def prog_targets(cfg, rng):
    full = read_full_scale(cfg.adc_bits)
    return [[rng.choice([full, -full, 0]) if rng.random() < 0.25 else rng.randint(-full, full)
             for _ in range(cfg.cols)] for _ in range(cfg.rows)]


PROG_SETTINGS = dict(tol=1, max_iter=5, width=3, set_gain=0x80, reset_gain=0x60)
#: Gains that reach both ends of the amplitude clamp (255 for SET, 1 for RESET), no
#: tolerance, one-cycle pulses.
PROG_EXTREME = dict(tol=0, max_iter=4, width=1, set_gain=0xFF, reset_gain=0x03)


@pytest.mark.parametrize("profile", ["default", "extreme"])
@pytest.mark.parametrize("parallel", [1, 0], ids=["parallel", "serial"])
@pytest.mark.parametrize("cfg", PROG_CONFIGS, ids=cfg_id)
def test_program_engine_follows_the_rule_on_a_device_model(cfg, parallel, profile):
    limits = PROG_SETTINGS if profile == "default" else PROG_EXTREME
    seed = PROG_CONFIGS.index(cfg) * 10 + parallel + (5 if profile == "extreme" else 0)
    rng = random.Random(seed)
    stuck = [(0, 0, 0), (cfg.rows - 1, cfg.cols - 1, 1)]
    devices = Devices(cfg, rng, stuck=stuck)
    targets = prog_targets(cfg, rng)
    # the stuck devices' targets far from where they sit
    for r, c, s in stuck:
        g = devices.g[r, c, s] >> 2
        want = read_full_scale(cfg.adc_bits) if g < read_full_scale(cfg.adc_bits) // 2 else 0
        targets[r][c] = want if s == 0 else -want
    # one pair far from its targets on both sides: a long SET and a long RESET
    full = read_full_scale(cfg.adc_bits)
    c = cfg.cols - 1
    targets[0][c], devices.g[0, c, 0], devices.g[0, c, 1] = full, 0, devices.top
    correct = int(cfg.input_mode == "pwm" and parallel)  # corrected reads where they apply
    settings = dict(limits, parallel=parallel, correct=correct)
    reference = devices.copy()
    reads, steps, status, counters = program_reference(
        cfg, reference, targets, parallel=parallel, corrected=bool(correct),
        **limits)
    bench = ProgBench(cfg, devices, packets_for(cfg, targets), seed=seed, p_emit=0.6)
    got = bench.execute(settings)
    # the reads, in order, with the mode the settings ask for
    assert [(r["row"], r["neg"]) for _, r in bench.seq.requests] == reads
    mode = CorrectMode.NO_DRIFT if correct else CorrectMode.RAW
    assert {m for _, _, m, _ in bench.seq.beats} == {mode.value}
    # every pulse step: row, side, masks, the amplitudes of the pulsed columns, the width
    got_steps = [(row, neg, s, r, {c: amps[c] for c in range(cfg.cols) if (s | r) >> c & 1})
                 for _, row, neg, s, r, amps, _ in bench.pulses]
    assert got_steps == steps
    assert {w for *_, w in bench.pulses} == {limits["width"]}
    # the counters, the status packets and the devices themselves
    assert {k: got[k] for k in counters} == counters
    assert emitted_rows(cfg, bench.seq.emitted) == status
    np.testing.assert_array_equal(devices.g, reference.g)
    assert got["error"] == [] and len(got["done"]) == 1
    assert got["cycles"] == got["done"][0] - got["start"] - 1
    # a pulse step holds the boundary for ``width`` cycles, and nothing is requested then
    rows = bench.trace.rows
    for cycle, *_ in bench.pulses:
        held = rows[cycle:cycle + limits["width"] + 1]
        for name in ("row", "neg", "set", "reset", "amp"):
            assert len({r[name] for r in held}) == 1, f"pulse at {cycle}: {name} changed"
        assert not any(r["req"] for r in held)
        assert rows[cycle + limits["width"] + 1]["req"], "the read after the step"
    # nothing taken or requested before the sequencer was idle
    (start_cycle, idle_cycle), = bench.seq.runs
    assert idle_cycle > start_cycle
    assert not any(r["tready"] for r in rows[start_cycle:idle_cycle + 1])
    # the stimulus reached passes, failures, stuck devices, both pulse kinds (and with the
    # extreme gains both ends of the amplitude clamp)
    assert counters["failed"] and counters["stuck"] >= len(stuck)
    assert any(s for _, _, s, _, _ in steps) and any(r for _, _, _, r, _ in steps)
    amps = {a for *_, a in steps for a in a.values()}
    if profile == "default":
        assert counters["passed"] and (counters["failed"] > counters["stuck"] or not parallel)
    else:
        # the largest error is 4 * full quarter counts: 255 needs 4 * full * 255 >> 6 > 255
        assert 1 in amps and (255 in amps or full < 16)


@pytest.mark.parametrize("broken", [(1, "early"), (0, "late"), (1, "late")])
def test_program_engine_wrong_length_packet_ends_the_run_with_an_error(broken):
    cfg = PROG_CONFIGS[0]
    rng = random.Random(20)
    devices = Devices(cfg, rng)
    targets = prog_targets(cfg, rng)
    reference = devices.copy()
    reads, steps, status, counters = program_reference(
        cfg, reference, targets, parallel=1, corrected=False, stop_rows=broken[0],
        **PROG_SETTINGS)
    bench = ProgBench(cfg, devices, packets_for(cfg, targets, broken), seed=20)
    got = bench.execute(dict(PROG_SETTINGS, parallel=1, correct=0))
    assert got["error"] == got["done"] and len(got["done"]) == 1
    assert emitted_rows(cfg, bench.seq.emitted) == status  # the rows before it only
    assert len(bench.seq.requests) == len(reads)
    assert {k: got[k] for k in counters} == counters
    np.testing.assert_array_equal(devices.g, reference.g)
    # the packet is refused at its first wrong beat: the TLAST beat of a short packet, the
    # last beat (without TLAST) of a long one
    taken = len(bench.source.taken)
    row_start = sum(cfg.out_beats for _ in range(broken[0]))
    assert taken == row_start + cfg.out_beats - (1 if broken[1] == "early" else 0)


def test_program_engine_abort_while_waiting_for_ready_on_a_pulse_step():
    """After the first read the analogue half stays not ready: the engine waits in its
    pulse step with ``wait`` high and no pulse; the abort ends the run with an error."""
    cfg = PROG_CONFIGS[0]
    rng = random.Random(30)
    devices = Devices(cfg, rng)
    targets = prog_targets(cfg, rng)
    before = devices.g.copy()

    def ready(model, cycle):
        return int(not model.beats or len(model.beats) < cfg.out_beats)

    def abort(model, cycle):
        return model.wait_for == 7

    bench = ProgBench(cfg, devices, packets_for(cfg, targets), seed=30, ready=ready, abort=abort)
    got = bench.execute(dict(PROG_SETTINGS, parallel=1, correct=0))
    rows = bench.trace.rows
    assert bench.pulses == [] and got["steps"] == 0
    assert got["reads"] == 1 and len(bench.seq.requests) == 1
    waiting = [n for n, r in enumerate(rows) if r["wait"]]
    assert len(bench.seq.aborts) == 1
    assert waiting == list(range(waiting[0], bench.seq.aborts[0] + 1))
    assert len(waiting) >= 7
    assert got["done"] == got["error"] == [bench.seq.aborts[0] + 1]
    assert bench.seq.emitted == []
    np.testing.assert_array_equal(devices.g, before)
    # the devices the first read found off target were counted as pulsed
    ref_devices = devices.copy()
    _, steps, _, _ = program_reference(cfg, ref_devices, targets, parallel=1, corrected=False,
                                       **PROG_SETTINGS)
    assert got["pulses"] == bin(steps[0][2] | steps[0][3]).count("1")


def test_program_engine_abort_while_a_read_waits():
    cfg = PROG_CONFIGS[2]
    rng = random.Random(40)
    devices = Devices(cfg, rng)
    targets = prog_targets(cfg, rng)

    def refuse(model):
        return len(model.requests) == 2

    def abort(model, cycle):
        return refuse(model) and model.pending_for == 4

    bench = ProgBench(cfg, devices, packets_for(cfg, targets), seed=40, refuse=refuse,
                      abort=abort)
    got = bench.execute(dict(PROG_SETTINGS, parallel=1, correct=0))
    assert len(bench.seq.requests) == 2 and got["reads"] == 2
    assert got["done"] == got["error"] == [bench.seq.aborts[0] + 1]


def test_program_engine_start_while_inhibited_is_an_error_at_once():
    cfg = PROG_CONFIGS[0]
    rng = random.Random(50)
    devices = Devices(cfg, rng)
    bench = ProgBench(cfg, devices, packets_for(cfg, prog_targets(cfg, rng)), seed=50)
    got = bench.execute(dict(PROG_SETTINGS, parallel=1, correct=0, inhibit=1))
    assert got["done"] == got["error"] == [got["start"] + 1]
    assert bench.seq.requests == [] and bench.source.taken == []
    assert all(got[k] == 0 for k in ("pulses", "passed", "failed", "stuck", "reads", "steps"))
