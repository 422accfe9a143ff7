"""Bounded liveness of the calibration engine (rtl/calib.py): a run ends (``done``, with or
without ``error`` and ``weak``) within a number of cycles that follows from its registers
and from how fast its partners answer.

The engine is on its own, at a tiny size, its partners free but bounded: every handshake the
engine waits for (the pipeline's ``idle`` before the first request, the sequencer's take of
a request or its ``abort``, each result beat) comes at the latest in the ``p``-th cycle of
the wait, where ``p`` (the *patience*) is any value from 1 to ``p_max``, the same in the
whole trace. The values are free: result data, the offset memory's read data, ``abort``,
``start``. The result stream keeps the sequencer's framing: ``last`` on the
``out_beats``-th beat after the engine's request was taken, and only there. The registers
(``phases``, ``avg_log2``, ``ref``, ``drift_ref``, ``drift_cols``, ``drift_min``) are free
but do not change while the engine is busy, and ``avg_log2`` is at most ``avg_max`` (2 by
default: the ranking function multiplies the repetitions left by the cost of one MVM).

The bound, in cycles from the cycle of ``start`` (the run's first cycle is 1) to the cycle of
``done``, with ``A = 2**avg_log2``, ``N = out_beats``, ``L = lanes``, ``C = cols`` and
``Q = GAIN_BITS + 2`` (the divider's cycles from its start to its ``done``, 18)::

    MVM     = p + N (1 + p)           REQUEST up to p, then READ and COLLECT per beat
    MEASURE = 1 + A MVM + 1           PHASE, the MVMs, FINISH
    OFFSET  = MEASURE + 3 N + 1       WORD_READ, WORD, NEXT_WORD per beat, NEXT_PHASE
    GAIN    = MEASURE + 3 N + 3 N L + C Q + 1
                                      as OFFSET, and GAIN_PICK, GAIN_LANE, GAIN_NEXT per
                                      lane, GAIN_WAIT for each column's division
    CAPTURE = MEASURE + 3             DRIFT_AVG, DRIFT, NEXT_PHASE
    DRIFT   = MEASURE + 3 + Q         as CAPTURE and the drift scale's division
    B       = p + sum of the selected phases' terms + N + 1
                                      WAIT_IDLE, the phases, COUNT, DONE

where DRIFT counts only without CAPTURE (a capture drops the drift phase of its run), and
``B = 1`` when no phase is selected (``done`` in the cycle after ``start``).

The harness proves it by k-induction with a ranking function: in every busy cycle
``elapsed + remaining <= B``, where ``remaining`` is the worst number of cycles the engine
still needs from its state (its FSM state, the phases left and the running one, the
repetition, beat and lane counters, the divider's step counter, and the harness's count of
the current wait), and ``remaining`` falls by at least one in every cycle of a run.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Const, Mux, Signal, Value

from ..config import TileConfig
from ..enums import CalPhase
from ..fixedpoint import GAIN_BITS
from ..rtl.calib import CalibrationEngine
from .harness import Harness, driven, elaborate_submodule, free, frozen, fsm, holding

__all__ = ["CalibrationHarness", "calibration_bound"]

#: The divider's cycles from the one that starts it to its ``done`` (rtl/divider.py).
DIV_CYCLES = GAIN_BITS + 2


def _bound_terms(cfg: TileConfig, phases, avg_log2, p, *, wrap=lambda v: v,
                 pick=lambda c, a, b: a if c else b) -> SimpleNamespace:
    """The terms of the module docstring's bound, one formula for Python integers
    (:func:`calibration_bound`) and for the harness's signals (``wrap`` sizes each term,
    ``pick`` is ``Mux``). ``phases`` maps each :class:`CalPhase` to whether it counts (for
    Python: the selected phases, the drift phase dropped with a capture)."""
    n, lanes, cols, q = cfg.out_beats, cfg.lanes, cfg.cols, DIV_CYCLES
    mvm = wrap(p + n * (1 + p))
    measure = wrap(2 + (mvm << avg_log2))
    # What each phase does after its MVMs, FINISH to NEXT_PHASE (``post``).
    post = {CalPhase.OFFSET: 3 * n + 2, CalPhase.GAIN: 3 * n + 3 * n * lanes + cols * q + 2,
            CalPhase.CAPTURE: 4, CalPhase.DRIFT: 4 + q}
    cost = {ph: wrap(measure - 1 + post[ph]) for ph in post}
    total = 0
    for ph in (CalPhase.OFFSET, CalPhase.GAIN, CalPhase.CAPTURE, CalPhase.DRIFT):
        total = wrap(total + pick(phases[ph], cost[ph], 0))
    return SimpleNamespace(mvm=mvm, post=post, cost=cost, phases=total,
                           bound=wrap(p + total + n + 1))


def calibration_bound(cfg: TileConfig, phases: int, avg_log2: int, p: int) -> int:
    """The bound B of the module docstring, in Python (for the documentation and tests)."""
    phases = CalPhase(phases)
    if not phases:
        return 1
    if phases & CalPhase.CAPTURE:
        phases &= ~CalPhase.DRIFT
    return _bound_terms(cfg, {ph: bool(phases & ph) for ph in CalPhase}, avg_log2, p).bound


_RepStuck = holding(CalibrationEngine, "rep", "The repetition count never advances: a "
                    "phase that averages two or more MVMs requests them forever.")
_PhaseStuck = holding(CalibrationEngine, "phase", "The running phase is never set: NEXT_PHASE "
                      "retires nothing, and the run repeats its measurements forever.")


class CalibrationHarness(Harness):
    """See the module docstring."""

    name = "cal"
    mutations = {
        "rep_stuck": "the repetition count never advances",
        "phase_stuck": "the running phase is never set (no phase retires)",
    }
    # The ranking invariant names the engine's insides: a mutant breaks it first.
    helpers_in_mutants = False

    def __init__(self, cfg=None, p_max=3, avg_max=2, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(
            rows=1, cols=2, input_bits=2, adc_bits=2, lanes=2)
        self.p_max, self.avg_max = p_max, avg_max

    def build(self, m):
        cfg = self.cfg
        beats, lanes, cols, q = cfg.out_beats, cfg.lanes, cfg.cols, DIV_CYCLES
        cls = {None: CalibrationEngine, "rep_stuck": _RepStuck,
               "phase_stuck": _PhaseStuck}[self.mutation]
        dut = cls(cfg)
        inner = self.instance(m, dut)
        div = elaborate_submodule(inner, "div")
        seq = dut.seq

        # -- the engine's partners ----------------------------------------------------------
        m.d.comb += dut.start.eq(free(m, 1, "start"))
        m.d.comb += Value.cast(dut.off_rdata).eq(free(m, len(Value.cast(dut.off_rdata)),
                                                      "off_rdata"))
        held = {}
        for name in ("phases", "avg_log2", "ref", "drift_ref", "drift_cols", "drift_min"):
            port = Value.cast(getattr(dut, name))
            held[name] = free(m, len(port), name)
            m.d.comb += port.eq(held[name])
            before = self.past(m, held[name])
            with m.If(seq.busy):
                self.assume(m, held[name] == before)
        self.assume(m, held["avg_log2"] <= self.avg_max)
        for name in ("abort", "ready", "idle"):
            m.d.comb += getattr(seq, name).eq(free(m, 1, name))
        m.d.comb += [seq.request.ready.eq(free(m, 1, "request_ready")),
                     seq.results.valid.eq(free(m, 1, "results_valid")),
                     seq.results.payload.as_value().eq(
                         free(m, len(seq.results.payload.as_value()), "results_payload")),
                     seq.emit.ready.eq(free(m, 1, "emit_ready"))]

        # The framing of the results: ``last`` on the out_beats-th beat after a taken request.
        taken = Signal(range(max(beats, 2)))
        result_taken = seq.results.valid & seq.results.ready
        with m.If(seq.request.valid & seq.request.ready):
            m.d.sync += taken.eq(0)
        with m.Elif(result_taken):
            m.d.sync += taken.eq(Mux(seq.results.payload.last, 0, taken + 1))
        with m.If(result_taken):
            self.assume(m, seq.results.payload.last == (taken == beats - 1))

        # The patience: each wait ends by its p-th cycle. A wait is seen at the ports.
        p = frozen(m, range(self.p_max + 1), "patience")
        self.assume(m, (p >= 1) & (p <= self.p_max))
        done = dut.done
        waiting_idle = seq.busy & ~seq.owns & ~done
        waiting = seq.request.valid | seq.results.ready | waiting_idle
        answered = ((seq.request.valid & (seq.request.ready | seq.abort))
                    | (seq.results.ready & seq.results.valid)
                    | (waiting_idle & seq.idle))
        waited = Signal(range(self.p_max + 1))  # cycles of this wait before this one
        m.d.sync += waited.eq(Mux(waiting & ~answered, waited + 1, 0))
        with m.If(waiting):
            self.assume(m, answered | (waited + 1 < p))

        # -- the bound ----------------------------------------------------------------------
        bits = calibration_bound(cfg, CalPhase.OFFSET | CalPhase.GAIN | CalPhase.DRIFT,
                                 self.avg_max, self.p_max).bit_length() + 1
        elapsed = Signal(bits)  # cycles since the start's (1 in the run's first)
        machine = fsm(inner)

        def at(*names):
            return _any(machine.state == machine.encoding[n] for n in names)

        with m.If(at("IDLE")):
            m.d.sync += elapsed.eq(Mux(dut.start, 1, 0))
        with m.Elif(~at("DONE")):
            m.d.sync += elapsed.eq(elapsed + 1)

        def wide(value):
            s = Signal(bits)
            m.d.comb += s.eq(value)
            return s

        phases = held["phases"]
        capture = phases[CalPhase.CAPTURE.bit_length() - 1]
        counted = {ph: phases[ph.bit_length() - 1] for ph in CalPhase}
        counted[CalPhase.DRIFT] = counted[CalPhase.DRIFT] & ~capture
        avg_log2 = held["avg_log2"][:max(self.avg_max.bit_length(), 1)]
        terms = _bound_terms(cfg, counted, avg_log2, p, wrap=wide, pick=Mux)
        bound = wide(Mux(phases == 0, 1, terms.bound))
        self.prop(m, "ends_within_the_bound", ~seq.busy | (elapsed <= bound))

        # -- covers -------------------------------------------------------------------------
        remaining_phases, phase = driven(inner, "remaining"), driven(inner, "phase")
        self.cover(m, "done_without_error", done & ~dut.error & (phases != 0))
        self.cover(m, "done_weak", done & dut.error & dut.weak)
        self.cover(m, "done_at_the_bound_after_a_drift_division",
                   done & (elapsed == bound) & counted[CalPhase.DRIFT])

        # -- the ranking invariant (k-induction) --------------------------------------------
        rep, rep_last, beat, lane, k = (driven(inner, n) for n in (
            "rep", "rep_last", "beat", "lane", "k"))
        steps = driven(div, "count")

        def cost_of(flags):
            """Cycles of the phases in ``flags`` (a CalPhase value), PHASE to NEXT_PHASE."""
            total = 0
            for ph in CalPhase:
                total = wide(total + Mux(flags[ph.bit_length() - 1], terms.cost[ph], 0))
            return total

        def is_(ph):
            return phase[ph.bit_length() - 1]

        after_phase = wide(cost_of(remaining_phases & ~phase) + beats + 1)  # T
        post = wide(sum(Mux(is_(ph), terms.post[ph], 0) for ph in CalPhase))
        gain = is_(CalPhase.GAIN)
        reps_left = (rep_last - rep)[:max(self.avg_max, 1)]
        after_mvm = wide(reps_left * terms.mvm + post + after_phase)  # X
        left = wide(p - waited)  # cycles of the current wait, this one included
        per_beat = wide(3 + Mux(gain, 3 * lanes, 0))

        def beats_after(b):
            return wide((beats - 1 - b) * per_beat)

        def divisions_from(c):
            """Cycles of the gain divisions of column ``c`` and after."""
            return wide(Mux(gain & (c < cols), (cols - c) * q, 0))

        column = wide(beat * lanes + lane)
        row_start = wide(beat * lanes)
        lanes_after = wide(3 * (lanes - 1 - lane))
        remaining = Mux(at("WAIT_IDLE"), left + cost_of(remaining_phases) + beats,
                    Mux(at("PHASE"), cost_of(remaining_phases) + beats,
                    Mux(at("REQUEST"), left + beats * (1 + p) - 1 + after_mvm,
                    Mux(at("READ"), p + (beats - 1 - beat) * (1 + p) + after_mvm,
                    Mux(at("COLLECT"), left - 1 + (beats - 1 - beat) * (1 + p) + after_mvm,
                    Mux(at("FINISH"), post - 1 + after_phase,
                    Mux(at("WORD_READ"), beats_after(beat) + per_beat
                        + divisions_from(row_start) + after_phase,
                    Mux(at("WORD"), beats_after(beat) + per_beat - 1
                        + divisions_from(row_start) + after_phase,
                    Mux(at("GAIN_PICK"), lanes_after + 4 + beats_after(beat)
                        + divisions_from(column) + after_phase,
                    Mux(at("GAIN_LANE"), lanes_after + 3 + beats_after(beat)
                        + divisions_from(column) + after_phase,
                    Mux(at("GAIN_WAIT"), steps + lanes_after + 2 + beats_after(beat)
                        + divisions_from(column + 1) + after_phase,
                    Mux(at("GAIN_NEXT"), lanes_after + 2 + beats_after(beat)
                        + divisions_from(column + 1) + after_phase,
                    Mux(at("NEXT_WORD"), beats_after(beat) + 1
                        + divisions_from(row_start + lanes) + after_phase,
                    Mux(at("DRIFT_AVG"), post - 2 + after_phase,
                    Mux(at("DRIFT"), post - 3 + after_phase,
                    Mux(at("DRIFT_WAIT"), steps + after_phase,
                    Mux(at("NEXT_PHASE"), after_phase,
                    Mux(at("COUNT"), beats - beat,
                        0))))))))))))))))))
        rem = wide(remaining)
        self.prop(m, "inv_ranking", ~seq.busy | (elapsed + rem <= bound), helper=True)

        running = seq.busy & ~done
        in_phase = running & ~at("WAIT_IDLE", "PHASE", "COUNT")
        one_hot = _any(phase == ph for ph in CalPhase)
        allowed = phases & ~Mux(capture, Const(int(CalPhase.DRIFT), 4), 0)
        self.prop(m, "inv_wait", (waited < p) & (seq.busy | (waited == 0)), helper=True)
        self.prop(m, "inv_place",
                  at(*machine.encoding)
                  & (~running | ((k == avg_log2)
                                 & (rep_last == (Const(1, 4) << avg_log2) - 1)))
                  & (~at("REQUEST", "READ", "COLLECT") | (rep <= rep_last))
                  & (~at("READ", "COLLECT") | ((beat < beats) & (beat == taken)))
                  & (~at("WORD_READ", "WORD", "GAIN_PICK", "GAIN_LANE", "GAIN_WAIT",
                         "GAIN_NEXT", "NEXT_WORD", "COUNT") | (beat < beats))
                  & (~at("REQUEST", "FINISH", "DRIFT_AVG", "DRIFT", "DRIFT_WAIT") | (beat == 0))
                  & (~at("GAIN_PICK", "GAIN_LANE", "GAIN_WAIT", "GAIN_NEXT") | (lane < lanes)),
                  helper=True)
        self.prop(m, "inv_phases",
                  (~running | (((remaining_phases & ~allowed) == 0)
                               & ~(remaining_phases[2] & remaining_phases[3])))
                  & (~at("WAIT_IDLE", "PHASE") | (remaining_phases != 0))
                  & (~in_phase | (one_hot & ((phase & ~remaining_phases) == 0)))
                  & (~at("DRIFT_AVG", "DRIFT", "DRIFT_WAIT")
                     | is_(CalPhase.CAPTURE) | is_(CalPhase.DRIFT))
                  & (~at("WORD_READ", "WORD", "NEXT_WORD") | is_(CalPhase.OFFSET) | gain)
                  & (~at("GAIN_PICK", "GAIN_LANE", "GAIN_WAIT", "GAIN_NEXT") | gain),
                  helper=True)
        self.prop(m, "inv_divider",
                  Mux(at("GAIN_WAIT", "DRIFT_WAIT"), (steps >= 1) & (steps <= q), steps == 0)
                  & (~at("GAIN_WAIT") | (column < cols))
                  & (~at("DRIFT_WAIT") | is_(CalPhase.DRIFT)), helper=True)


def _any(terms):
    terms = list(terms)
    out = terms[0]
    for term in terms[1:]:
        out = out | term
    return out
