"""Bounded liveness of the program-and-verify engine (rtl/program.py): a run ends (``done``,
with or without ``error``) within a number of cycles that follows from its registers and
from how fast its partners answer.

The engine is on its own, at a tiny size, its partners free but bounded: every handshake the
engine waits for (the pipeline's ``idle`` before the first request, each target beat, the
sequencer's take of a read request or its abort, each result beat, ``ready`` or ``abort``
for a pulse step, each status beat) comes at the latest in the ``p``-th cycle of the wait,
where ``p`` (the *patience*) is any value from 1 to ``p_max``, the same in the whole trace.
The values are free: targets, result data, ``tlast`` of the targets (a wrong length ends the
run with an error), ``abort``, ``inhibit``, ``tol``, the gains, ``correct``, ``start``. The
result stream keeps the sequencer's framing: ``last`` on the ``out_beats``-th beat after the
engine's request was taken, and only there. ``max_iter``, ``width`` and ``parallel`` are free
but do not change while the engine is busy, and ``max_iter`` is at most ``iter_max``,
``width`` from 1 to ``width_max`` (3 and 3 by default: the solver's multipliers grow with
them, see docs/reliability.md).

The bound, in cycles from the cycle of ``start`` (the run's first cycle is 1) to the cycle of
``done``, with ``M = max_iter``, ``W = width`` (256 for 0, the pulse counter wrapping; 0 is
outside the proved range), ``G = 1`` with ``parallel`` and ``cols`` without, ``R = rows``,
``N = out_beats``::

    READS  = N (1 + p) + 3            one read: READ and COLLECT per beat, DRAIN, DRAIN2, DECIDE
    LAST   = p + READS                the group's last read (REQUEST waits up to p)
    STEP   = LAST + p + W             a read followed by a pulse step (PULSE up to p, WAIT W)
    GROUP  = 1 + M STEP + LAST        at most M pulse steps and M + 1 reads per group
    SIDE   = G GROUP + 1              the groups of one side, then SIDE_END
    ROW    = 2 N p + 2 SIDE           the target packet, both sides, the status packet
    B      = 1 + p + R ROW            WAIT_IDLE, then the rows

The harness proves it by k-induction with a ranking function: in every busy cycle
``elapsed + remaining <= B``, where ``remaining`` is the worst number of cycles the engine
still needs from its state (its FSM state, iteration count, column, side, row, beat and
pulse counters, and the harness's count of the current wait), and ``remaining`` falls by at
least one in every cycle of a run.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Mux, Signal

from ..config import TileConfig
from ..rtl.program import ProgramEngine
from .harness import Harness, drive_inputs, driven, free, frozen, fsm, holding

__all__ = ["ProgramHarness", "ProgramStreamHarness", "program_bound"]

def _bound_terms(cfg: TileConfig, max_iter, width, parallel, p, *,
                 wrap=lambda v: v, pick=lambda c, a, b: a if c else b) -> SimpleNamespace:
    """The terms of the module docstring's bound, one formula for Python integers
    (:func:`program_bound`) and for the harness's signals (``wrap`` sizes each term, ``pick``
    is ``Mux``). ``width`` is W (1 to 256)."""
    n = cfg.out_beats
    reads = wrap(n * (1 + p) + 3)
    last = wrap(p + reads)
    step = wrap(last + p + width)
    group = wrap(1 + max_iter * step + last)
    side = wrap(pick(parallel, group, cfg.cols * group) + 1)
    row = wrap(2 * n * p + 2 * side)
    return SimpleNamespace(reads=reads, last=last, step=step, group=group, side=side, row=row,
                           bound=wrap(1 + p + cfg.rows * row))


def program_bound(cfg: TileConfig, max_iter: int, width: int, parallel: bool, p: int) -> int:
    """The bound B of the module docstring, in Python (for the documentation and tests)."""
    return _bound_terms(cfg, max_iter, (width - 1) % 256 + 1, parallel, p).bound


_ItStuck = holding(ProgramEngine, "it", "The iteration count never advances: a group whose "
                   "devices never reach their targets pulses forever.")
_ColStuck = holding(ProgramEngine, "col", "The column never advances: without parallel the "
                    "first column's group repeats forever.")


class ProgramHarness(Harness):
    """See the module docstring."""

    name = "prog"
    mutations = {
        "it_stuck": "the iteration count never advances",
        "col_stuck": "the column (one group at a time) never advances",
    }
    # The ranking invariant names the engine's insides: a mutant breaks it first.
    helpers_in_mutants = False

    def __init__(self, cfg=None, p_max=3, iter_max=3, width_max=3, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(
            rows=1, cols=2, input_bits=2, adc_bits=2, lanes=2)
        self.p_max, self.iter_max, self.width_max = p_max, iter_max, width_max

    def build(self, m):
        cfg = self.cfg
        rows, cols, beats = cfg.rows, cfg.cols, cfg.out_beats
        cls = {None: ProgramEngine, "it_stuck": _ItStuck,
               "col_stuck": _ColStuck}[self.mutation]
        dut = cls(cfg)
        inner = self.instance(m, dut)
        seq = dut.seq

        # -- the engine's partners ----------------------------------------------------------
        for name in ("start", "correct", "tol", "set_gain", "reset_gain", "inhibit"):
            port = getattr(dut, name)
            m.d.comb += port.eq(free(m, len(port), name))
        held = {}
        for name in ("max_iter", "width", "parallel"):
            port = getattr(dut, name)
            held[name] = free(m, len(port), name)
            m.d.comb += port.eq(held[name])
            before = self.past(m, held[name])
            with m.If(seq.busy):
                self.assume(m, held[name] == before)
        self.assume(m, (held["max_iter"] <= self.iter_max) & (held["width"] >= 1)
                    & (held["width"] <= self.width_max))
        t = dut.targets
        for name in ("tvalid", "tdata", "tlast"):
            m.d.comb += getattr(t, name).eq(free(m, len(getattr(t, name)), f"t_{name}"))
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
        waiting = (t.tready | seq.request.valid | seq.results.ready | seq.emit.valid
                   | seq.wait | waiting_idle)
        answered = ((t.tready & t.tvalid)
                    | (seq.request.valid & (seq.request.ready | seq.abort))
                    | (seq.results.ready & seq.results.valid)
                    | (seq.emit.valid & seq.emit.ready)
                    | (seq.wait & (seq.ready | seq.abort))
                    | (waiting_idle & seq.idle))
        waited = Signal(range(self.p_max + 1))  # cycles of this wait before this one
        m.d.sync += waited.eq(Mux(waiting & ~answered, waited + 1, 0))
        with m.If(waiting):
            self.assume(m, answered | (waited + 1 < p))

        # -- the bound ----------------------------------------------------------------------
        bits = program_bound(cfg, self.iter_max, self.width_max, False, self.p_max).bit_length() + 1
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

        # The harness's arithmetic is as wide as the bound and no wider (the solver's
        # multipliers), its operands cut to the ranges assumed.
        max_iter = held["max_iter"][:max(self.iter_max.bit_length(), 1)]
        w_pulse = held["width"][:self.width_max.bit_length()]
        terms = _bound_terms(cfg, max_iter, w_pulse, held["parallel"], p, wrap=wide, pick=Mux)
        reads, last_read, step, group = terms.reads, terms.last, terms.step, terms.group
        side_cost, row_cost, bound = terms.side, terms.row, terms.bound
        self.prop(m, "ends_within_the_bound", ~seq.busy | (elapsed <= bound))

        # -- covers -------------------------------------------------------------------------
        steps = dut.steps
        self.cover(m, "done_without_error", done & ~dut.error & (steps != 0))
        self.cover(m, "error_after_a_pulse_step", done & dut.error & (steps != 0))
        self.cover(m, "done_at_the_bound_after_a_pulse_step",
                   done & (elapsed == bound) & (steps != 0))

        # -- the ranking invariant (k-induction) --------------------------------------------
        it, col, row, side, beat, wait = (driven(inner, n) for n in (
            "it", "col", "row", "side", "beat", "wait"))
        any_todo, last = driven(inner, "any_todo"), driven(inner, "last")
        # Cycles after the current group, side and row, to DONE.
        after_row = wide((rows - 1 - row) * row_cost)
        after_side = wide(Mux(side, 0, side_cost) + beats * p + after_row)
        after_group = wide(Mux(held["parallel"], 0, (cols - 1 - col) * group) + 1 + after_side)
        # The rest of the group after a read that pulses (or after PULSE's first cycle).
        tail = wide((max_iter - it[:len(max_iter)]) * step)
        left = wide(p - waited)  # cycles of the current wait, this one included
        beats_left = wide(beats - beat)
        reading = at("READ", "COLLECT", "DRAIN", "DRAIN2", "DECIDE")
        remaining = Mux(at("WAIT_IDLE"), left + rows * row_cost,
                    Mux(at("LOAD"), (beats_left - 1) * p + left + 2 * side_cost + beats * p
                        + after_row,
                    Mux(at("GROUP"), group + after_group,
                    Mux(at("REQUEST"), left + reads + tail + after_group,
                    Mux(at("READ"), beats_left * (1 + p) + 3 + tail + after_group,
                    Mux(at("COLLECT"), left + (beats_left - 1) * (1 + p) + 3 + tail
                        + after_group,
                    Mux(at("DRAIN"), 3 + tail + after_group,
                    Mux(at("DRAIN2"), 2 + tail + after_group,
                    Mux(at("DECIDE"), 1 + tail + after_group,
                    Mux(at("PULSE"), tail - waited + after_group,
                    Mux(at("WAIT"), Mux(wait == 0, 256, wait) + tail + last_read + after_group,
                    Mux(at("SIDE_END"), 1 + after_side,
                    Mux(at("EMIT"), (beats_left - 1) * p + left + after_row,
                        0)))))))))))))
        rem = wide(remaining)
        self.prop(m, "inv_ranking", ~seq.busy | (elapsed + rem <= bound), helper=True)
        iterating = at("REQUEST", "READ", "COLLECT", "DRAIN", "DRAIN2", "DECIDE", "PULSE",
                       "WAIT")
        in_groups = iterating | at("GROUP")
        running = seq.busy & ~done
        self.prop(m, "inv_wait", (waited < p) & (seq.busy | (waited == 0)), helper=True)
        self.prop(m, "inv_place",
                  at(*machine.encoding) & (~running | (row < rows))
                  & (~in_groups | ((col < cols) & (~held["parallel"] | (col == 0))))
                  & (~at("WAIT_IDLE") | ((row == 0) & (beat == 0))), helper=True)
        self.prop(m, "inv_beats",
                  (~at("LOAD", "READ", "COLLECT", "EMIT") | (beat < beats))
                  & (~at("GROUP", "REQUEST", "DRAIN", "DRAIN2", "DECIDE", "PULSE", "WAIT",
                         "SIDE_END") | (beat == 0))
                  & (~at("READ", "COLLECT") | (beat == taken)), helper=True)
        self.prop(m, "inv_iterations",
                  (~iterating | (it <= max_iter))
                  & (~at("PULSE") | (it < max_iter))
                  & (~at("WAIT") | (it >= 1))
                  & (~reading | ((last == (it == max_iter)) & (~any_todo | (it < max_iter)))),
                  helper=True)


def _any(terms):
    terms = list(terms)
    out = terms[0]
    for term in terms[1:]:
        out = out | term
    return out


# -- the target stream (t_axis) ---------------------------------------------------------------

class _ShortPacketTaken(ProgramEngine):
    """A packet's TLAST before its last beat is ignored: the row loads on from the next
    packet's beats."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        machine, t = fsm(m), self.targets
        beat = driven(m, "beat")
        loading = machine.state == machine.encoding["LOAD"]
        with m.If(loading & t.tvalid & t.tlast & (beat != self.cfg.out_beats - 1)):
            m.d.sync += [machine.state.eq(machine.encoding["LOAD"]),
                         driven(m, "failed", width=1).eq(0)]
        return m


def _high_in_state(state, port, doc):
    """A mutation: the subclass of ``ProgramEngine`` that drives the 1-bit ``port`` (a
    function of the engine) high whenever its FSM is in ``state``."""

    def elaborate(self, platform):
        m = ProgramEngine.elaborate(self, platform)
        machine = fsm(m)
        with m.If(machine.state == machine.encoding[state]):
            m.d.comb += port(self).eq(1)
        return m

    return type(f"_ProgramEngineHigh_{state}", (ProgramEngine,),
                {"elaborate": elaborate, "__doc__": doc})


_ReadyWhileGrouping = _high_in_state(
    "GROUP", lambda e: e.targets.tready,
    "TREADY is also high while a group starts (a beat taken outside a row's packet).")
_RequestWhileLoading = _high_in_state(
    "LOAD", lambda e: e.seq.request.valid,
    "The engine requests a read while the row's packet is still being taken.")


class _SilentInhibit(ProgramEngine):
    """A start refused by ``inhibit`` ends without the error flag."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        machine = fsm(m)
        with m.If((machine.state == machine.encoding["IDLE"]) & self.start & self.inhibit):
            m.d.sync += driven(m, "failed", width=1).eq(0)
        return m


class ProgramStreamHarness(Harness):
    """The program engine's target packets on ``t_axis``: one packet per row, taken before
    the row's reads and pulses, exactly ``out_beats`` beats with TLAST on the last, and a
    packet framed otherwise ends the run with an error at once.

    Every input is free in every cycle (the registers too: these are safety properties,
    true whatever the host writes); the harness follows the run at the ports alone: a packet
    is due at the start of a run and after each row's status packet (the last beat of an
    ``emit`` packet) until ``rows`` packets have been taken.
    """

    name = "prog_tgt"
    mutations = {
        "short_packet_taken": "a TLAST before the packet's last beat is ignored",
        "ready_while_grouping": "TREADY is high while a group starts",
        "request_while_loading": "a read is requested while the row's packet is taken",
        "silent_inhibit": "a start refused by inhibit ends without the error flag",
    }
    helpers_in_mutants = False  # the invariants name the engine's state

    def __init__(self, cfg=None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(
            rows=2, cols=3, input_bits=2, adc_bits=2, lanes=2)

    def build(self, m):
        cfg = self.cfg
        rows, beats = cfg.rows, cfg.out_beats
        cls = {"short_packet_taken": _ShortPacketTaken,
               "ready_while_grouping": _ReadyWhileGrouping,
               "request_while_loading": _RequestWhileLoading,
               "silent_inhibit": _SilentInhibit}.get(self.mutation, ProgramEngine)
        dut = cls(cfg)
        inner = self.instance(m, dut)
        drive_inputs(m, dut)
        seq, t = dut.seq, dut.targets

        # The harness's view of the run, from the ports.
        packets = Signal(range(rows + 1))   # packets taken in this run
        beat = Signal(range(max(beats, 2)))  # beats taken of the current packet
        due = Signal(init=1)                 # a packet is due (nothing else may happen)
        bad = Signal()                       # a beat with TLAST in the wrong place was taken
        taken = t.tvalid & t.tready
        misframed = taken & (t.tlast != (beat == beats - 1))
        status_end = seq.emit.valid & seq.emit.ready & seq.emit.payload.last
        with m.If(~seq.busy):
            m.d.sync += [packets.eq(0), beat.eq(0), due.eq(1), bad.eq(0)]
        with m.Else():
            with m.If(taken):
                m.d.sync += beat.eq(Mux(t.tlast, 0, beat + 1))
                with m.If(t.tlast):
                    m.d.sync += [packets.eq(packets + 1), due.eq(0)]
            with m.If(misframed):
                m.d.sync += bad.eq(1)
            with m.If(status_end & (packets < rows)):
                m.d.sync += due.eq(1)

        self.prop(m, "tready_only_when_a_packet_is_due",
                  ~t.tready | (seq.busy & ~dut.done & due & ~bad))
        after_misframed = self.past(m, misframed)
        self.prop(m, "misframed_packet_ends_the_run_with_error",
                  ~after_misframed | (dut.done & dut.error))
        self.prop(m, "reads_and_pulses_follow_the_row_packet",
                  (~seq.request.valid | (~due & (seq.request.payload.row + 1 == packets)))
                  & (~dut.pulse | (~due & (dut.pulse_row + 1 == packets))))
        self.prop(m, "clean_run_took_one_packet_per_row",
                  ~(dut.done & ~dut.error) | ((packets == rows) & ~due & (beat == 0) & ~bad))

        # Helper invariants: the engine's state against the harness's view.
        machine = fsm(inner)

        def at(*names):
            return _any(machine.state == machine.encoding[n] for n in names)

        row, ebeat = driven(inner, "row"), driven(inner, "beat")
        failed = driven(inner, "failed", width=1)
        working = at(*(n for n in machine.encoding
                       if n not in ("IDLE", "WAIT_IDLE", "LOAD", "DONE")))
        self.prop(m, "inv_state", at(*machine.encoding), helper=True)
        self.prop(m, "inv_wait_idle",
                  ~at("WAIT_IDLE") | ((packets == 0) & due & (row == 0) & (beat == 0)
                                      & (ebeat == 0)),
                  helper=True)
        self.prop(m, "inv_load", ~at("LOAD") | (due & (packets == row) & (beat == ebeat)
                                                & (ebeat < beats) & (row < rows)), helper=True)
        self.prop(m, "inv_working",
                  ~working | (~due & (packets == row + 1) & (beat == 0) & (row < rows)),
                  helper=True)
        self.prop(m, "inv_flags",
                  (~(seq.busy & ~dut.done) | (~failed & ~bad))
                  & (~(dut.done & ~failed) | ((packets == rows) & ~due & (beat == 0) & ~bad))
                  & (~bad | failed), helper=True)
        # Nothing is assumed, so the covers only show each property's trigger reached; a
        # second row's packet (a whole row first) is reached at step 23 (40 s: not quick).
        self.cover(m, "read_after_the_packet", seq.request.valid & seq.request.ready)
        self.cover(m, "misframed_packet_refused", after_misframed)
