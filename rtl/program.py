"""Program-and-verify engine: writes a weight matrix into the crossbar, device by device,
reading every device back through the ADC path.

It runs the algorithm of :func:`aimc.model.program.program_and_verify` (the golden
reference) once started by ``PROG_CTRL.start``. The rules it applies are in
:mod:`aimc.programming`.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import CorrectMode, DeviceStatus, ResultKind
from ..fixedpoint import RESULT_FRAC, CalFormat
from ..programming import AMP_BITS, AMP_MAX, PULSE_GAIN_FRAC
from .axi import AxiStreamSignature
from .engine import EngineFSM, EngineSignature, OpKind

__all__ = ["ProgramEngine"]


class ProgramEngine(wiring.Component):
    """Program-and-verify engine.

    For each row in turn the engine takes one packet of signed targets (counts) from
    ``targets``, then programs the G+ devices of the row (targets ``max(t, 0)``) and then the
    G- devices (``max(-t, 0)``). A group of devices (the whole row with ``parallel``, else one
    column at a time) iterates: one device read of the row (requested from the sequencer,
    results through the corrector), a decision per device, and one pulse step in which every
    device still off target gets its SET or RESET pulse, all at once. A device passes when
    its read is within ``tol`` counts of its target; it fails when it is still off target
    after ``max_iter`` pulse steps, and counts as stuck when its reads never moved by more
    than ``tol`` from the first one. After both sides the engine emits a status packet for
    the row (``seq.emit``: one lane per column, a :class:`~aimc.enums.DeviceStatus` field).

    Attributes
    ----------
    seq : Out(EngineSignature)
        Device-read requests to the sequencer (kind READ, the row and the side), their
        result beats, and the per-row status packets (``emit``); ``wait`` while a pulse
        step waits for the analogue half's ``ready``.
    start : In(1)
        Begin a run (ignored while busy).
    parallel, correct : In(1)
        ``PROG_CTRL.parallel`` and ``PROG_CTRL.correct`` (reads corrected for column
        offset and gain; PWM tiles only, bit-serial reads are always raw).
    tol, max_iter, width, set_gain, reset_gain : In(8)
        ``PROG_LIMITS`` and ``PROG_GAIN``.
    inhibit : In(1)
        Another engine runs: a start ends at once with an error.
    done, error : Out(1)
        ``done`` (and ``error`` with it) pulse for one cycle at the end of a run.
    targets : In(AxiStreamSignature)
        Target packets, one per row.
    pulse, pulse_row, pulse_neg, pulse_set, pulse_reset, pulse_amp, pulse_width : Out
        The pulse step to the analogue boundary.
    pulses, passed, failed, stuck, reads, steps, cycles : Out(32)
        Counters of the current or last run.
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "start": In(1),
            "parallel": In(1),
            "correct": In(1),
            "tol": In(8),
            "max_iter": In(8),
            "width": In(8),
            "set_gain": In(8),
            "reset_gain": In(8),
            "seq": Out(EngineSignature(cfg)),
            "inhibit": In(1),
            "done": Out(1),
            "error": Out(1),
            "targets": In(AxiStreamSignature(cfg.tgt_data_width)),
            "pulse": Out(1),
            "pulse_row": Out(range(max(cfg.rows, 2))),
            "pulse_neg": Out(1),
            "pulse_set": Out(cfg.cols),
            "pulse_reset": Out(cfg.cols),
            "pulse_amp": Out(cfg.cols * AMP_BITS),
            "pulse_width": Out(8),
            **{name: Out(32) for name in ("pulses", "passed", "failed", "stuck", "reads",
                                           "steps", "cycles")},
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lanes, beats, cols, rows = cfg.lanes, cfg.out_beats, cfg.cols, cfg.rows
        tw = cfg.tgt_lane_width
        ob = CalFormat(cfg).out_bits
        seq = self.seq
        padded = beats * lanes  # per-column vectors cover whole beats

        m.submodules.tgt = tgt = Memory(shape=data.ArrayLayout(tw, lanes),
                                        depth=max(beats, 2), init=[])
        m.submodules.first = first = Memory(shape=data.ArrayLayout(signed(ob), lanes),
                                            depth=max(beats, 2), init=[])
        tgt_rd, tgt_wr = tgt.read_port(), tgt.write_port()
        first_rd, first_wr = first.read_port(), first.write_port()

        row = Signal(range(max(rows, 2)))
        side = Signal()
        col = Signal(range(max(cols, 2)))
        it = Signal(8)
        beat = Signal(range(max(beats, 2)))
        wait = Signal(8)
        failed = Signal()
        any_todo = Signal()
        take = Signal()  # a result beat is taken this cycle
        read_taken = Signal()  # the sequencer took a read request last cycle
        # Per-column state, rotated by one beat of lanes as each result beat is taken, so
        # that the current beat's columns are always in the low lanes.
        todo, pset, preset, ok, stk, ok_p, stk_p = (Signal(padded, name=n) for n in (
            "todo", "pset", "preset", "ok", "stk", "ok_p", "stk_p"))
        amp = Signal(data.ArrayLayout(AMP_BITS, padded))

        m.d.comb += [
            seq.request.payload.kind.eq(OpKind.READ),
            seq.request.payload.row.eq(row), seq.request.payload.neg.eq(side),
            seq.mode.eq(Mux(self.correct & (cfg.input_mode == "pwm"), CorrectMode.NO_DRIFT,
                            CorrectMode.RAW)),
            self.pulse_row.eq(row), self.pulse_neg.eq(side),
            self.pulse_set.eq(pset[:cols]), self.pulse_reset.eq(preset[:cols]),
            self.pulse_amp.eq(amp.as_value()[:cols * AMP_BITS]),
            self.pulse_width.eq(self.width),
            tgt_rd.addr.eq(beat), tgt_wr.addr.eq(beat),
            first_rd.addr.eq(beat), first_wr.addr.eq(beat),
        ]

        counters = {n: getattr(self, n) for n in ("pulses", "passed", "failed", "stuck",
                                                   "reads", "steps", "cycles")}
        col_ones = Const((1 << cols) - 1, padded)
        tol_q = self.tol << RESULT_FRAC

        def rotate(vec, new):
            # One beat's worth of fields out at the bottom, the new ones in at the top.
            return vec.eq(Cat(vec[len(new):], new) if len(vec) > len(new) else new)

        engine = EngineFSM(m, seq, failed)

        def take_beat():
            m.d.comb += take.eq(1)

        def last_beat():
            m.next = "DRAIN"

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [failed.eq(0), row.eq(0), beat.eq(0)]
                    m.d.sync += [c.eq(0) for c in counters.values()]
                    # max_iter and width are at least 1: the register file refuses 0.
                    with m.If(self.inhibit):
                        m.d.sync += failed.eq(1)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "WAIT_IDLE"
            engine.wait_idle("LOAD")
            with m.State("LOAD"):
                # One target packet per row, exactly ``beats`` beats long.
                with m.If(self.targets.tvalid):
                    m.d.comb += [tgt_wr.en.eq(1), tgt_wr.data.eq(self.targets.tdata)]
                    m.d.sync += beat.eq(beat + 1)
                    last = beat == beats - 1
                    with m.If(self.targets.tlast != last):
                        m.d.sync += failed.eq(1)
                        m.next = "DONE"
                    with m.Elif(last):
                        m.d.sync += [beat.eq(0), side.eq(0), ok.eq(0), stk.eq(0), col.eq(0)]
                        m.next = "GROUP"
            with m.State("GROUP"):
                group = Mux(self.parallel, col_ones, Const(1, padded) << col)
                m.d.sync += [todo.eq(group), it.eq(0)]
                m.next = "REQUEST"
            # The read counted the cycle after the sequencer takes it (read_taken), so that
            # the counter's enable is a register, not the end of the arbitration path.
            engine.request(beat, on_accept=[any_todo.eq(0), read_taken.eq(1)],
                           on_beat=take_beat, on_last=last_beat)
            with m.State("DRAIN"):
                # The last beat's decisions (stage 2) land; DECIDE sees any_todo complete.
                m.next = "DRAIN2"
            with m.State("DRAIN2"):
                # ... and its amplitudes (stage 3).
                m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(any_todo):
                    m.next = "PULSE"
                with m.Elif(self.parallel | (col == cols - 1)):
                    m.next = "SIDE_END"
                with m.Else():
                    m.d.sync += col.eq(col + 1)
                    m.next = "GROUP"
            with m.State("PULSE"):
                # The pulse lasts ``width`` cycles; the boundary holds the step meanwhile.
                # It starts when the analogue half is ready.
                with m.If(seq.ready):
                    m.d.sync += [wait.eq(self.width), it.eq(it + 1),
                                 counters["steps"].eq(counters["steps"] + 1)]
                    m.next = "WAIT"
                with m.Elif(seq.abort):
                    m.d.sync += failed.eq(1)
                    m.next = "DONE"
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 1):
                    m.next = "REQUEST"
            with m.State("SIDE_END"):
                with m.If(side == 0):
                    m.d.sync += [ok_p.eq(ok), stk_p.eq(stk), ok.eq(0), stk.eq(0), side.eq(1),
                                 col.eq(0)]
                    m.next = "GROUP"
                with m.Else():
                    m.d.sync += beat.eq(0)
                    m.next = "EMIT"
            with m.State("EMIT"):
                emit = seq.emit
                with m.If(emit.ready):
                    m.d.sync += [rotate(v, v[:lanes]) for v in (ok_p, stk_p, ok, stk)]
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(beat == beats - 1):
                        m.d.sync += [beat.eq(0), row.eq(row + 1)]
                        m.next = "LOAD"
                        with m.If(row == rows - 1):
                            m.next = "DONE"
            engine.finish()
        self._beat(m, take, tgt_rd, first_wr, first_rd, it, side, tol_q, todo, pset, preset,
                   ok, stk, amp, any_todo, counters, rotate)
        with m.If(read_taken):
            m.d.sync += [counters["reads"].eq(counters["reads"] + 1), read_taken.eq(0)]
        running = ~fsm.ongoing("IDLE") & ~fsm.ongoing("DONE")
        with m.If(running):
            m.d.sync += counters["cycles"].eq(counters["cycles"] + 1)
        # Continuous assignments (valid from time zero in every simulator). The status
        # packet's beat: the flags of the low lanes (the state rotates a beat per beat sent).
        engine.drive(fsm, self.done, self.error)
        for j in range(lanes):
            flags = (Mux(ok_p[j], DeviceStatus.POS_PASS, 0)
                     | Mux(stk_p[j], DeviceStatus.POS_STUCK, 0)
                     | Mux(ok[j], DeviceStatus.NEG_PASS, 0)
                     | Mux(stk[j], DeviceStatus.NEG_STUCK, 0))
            m.d.comb += seq.emit.payload.data[j].eq(flags)
        m.d.comb += [seq.emit.payload.last.eq(beat == beats - 1),
                     seq.emit.payload.kind.eq(ResultKind.STATUS)]
        m.d.comb += [
            self.targets.tready.eq(fsm.ongoing("LOAD")),
            seq.emit.valid.eq(fsm.ongoing("EMIT")),
            self.pulse.eq(fsm.ongoing("PULSE") & seq.ready),
            seq.wait.eq(fsm.ongoing("PULSE")),
        ]
        return m

    def _beat(self, m, take, tgt_rd, first_wr, first_rd, it, side, tol_q, todo, pset, preset,
              ok, stk, amp, any_todo, counters, rotate):
        """Decisions for the ``lanes`` devices of a result beat, in three register stages so
        that the amplitude multiplier has registers on both sides: stage 1 (the cycle the
        beat is taken) forms each error, its magnitude and its comparisons; stage 2 decides,
        rotates the per-column state, counts and multiplies; stage 3 clamps the amplitudes
        and rotates them in."""
        cfg = self.cfg
        lanes = cfg.lanes
        ob = CalFormat(cfg).out_bits
        frac = RESULT_FRAC
        # -- stage 1 ----------------------------------------------------------------------
        e = Signal(data.ArrayLayout(signed(ob + 2), lanes))
        mags = Signal(data.ArrayLayout(ob + 2, lanes))
        hit, far, pend, pend3 = Signal(lanes), Signal(lanes), Signal(), Signal()
        m.d.sync += [pend.eq(take), pend3.eq(pend)]
        for j in range(lanes):
            v = self.seq.results.payload.data[j][:ob].as_signed()
            t = tgt_rd.data[j].as_signed()
            # e = v - (max(t, 0) << frac) on the G+ side, v - (max(-t, 0) << frac) on the
            # G- side: one adder per side and a select, no negation in series; the
            # magnitude comparisons against +-tol side by side.
            ts = t << frac
            ej = Mux(side, Mux(t < 0, v + ts, v), Mux(t > 0, v - ts, v))
            moved = v - first_rd.data[j]
            with m.If(take):
                m.d.sync += [e[j].eq(ej), mags[j].eq(Mux(ej < 0, -ej, ej)),
                             hit[j].eq((ej <= tol_q) & (ej >= -tol_q)),
                             far[j].eq((moved > tol_q) | (moved < -tol_q))]
            m.d.comb += first_wr.data[j].eq(v)
        m.d.comb += first_wr.en.eq(take & (it == 0))
        # -- stage 2 ----------------------------------------------------------------------
        # Registered: ``it`` changes in PULSE and GROUP, at least two cycles before the
        # first result beat that uses it.
        last = Signal()
        m.d.sync += last.eq(it == self.max_iter)
        new = {k: [] for k in ("todo", "set", "reset", "amp", "ok", "stk")}
        n_pass, n_fail, n_stuck, n_pulse = [], [], [], []
        prod = Signal(data.ArrayLayout(ob + 2 + 8, lanes))
        for j in range(lanes):
            ej = e[j]
            active = todo[j]
            fail = active & ~hit[j] & last
            stuck = fail & ~far[j]
            again = active & ~hit[j] & ~last
            gain = Mux(ej < 0, self.set_gain, self.reset_gain)
            with m.If(pend):
                m.d.sync += prod[j].eq(mags[j] * gain)
            a = prod[j] >> (PULSE_GAIN_FRAC + frac)
            new["amp"].append(Mux(a > AMP_MAX, AMP_MAX, Mux(a == 0, 1, a))[:8])
            new["todo"].append(again)
            new["set"].append(again & (ej < 0))
            new["reset"].append(again & (ej > 0))
            new["ok"].append(ok[j] | (active & hit[j]))
            new["stk"].append(stk[j] | stuck)
            n_pass.append(active & hit[j])
            n_fail.append(fail)
            n_stuck.append(stuck)
            n_pulse.append(again)
        with m.If(pend):
            m.d.sync += [
                rotate(todo, Cat(*new["todo"])), rotate(pset, Cat(*new["set"])),
                rotate(preset, Cat(*new["reset"])), rotate(ok, Cat(*new["ok"])),
                rotate(stk, Cat(*new["stk"])),
                any_todo.eq(any_todo | Cat(*new["todo"]).any()),
            ]
            for name, bits in (("passed", n_pass), ("failed", n_fail), ("stuck", n_stuck),
                               ("pulses", n_pulse)):
                m.d.sync += counters[name].eq(counters[name] + sum(bits))
        # -- stage 3 ----------------------------------------------------------------------
        with m.If(pend3):
            m.d.sync += rotate(amp.as_value(), Cat(*new["amp"]))
