"""On-chip calibration engine: column offsets, column gains and the global drift scale.

It runs the algorithm of :mod:`aimc.model.calibration` (the golden reference) on MVMs it
requests from the sequencer, without the host, once started by ``CAL_CTRL.start``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import CalPhase, ColStatus, CorrectMode
from ..fixedpoint import (
    DRIFT_BITS,
    DRIFT_FRAC,
    GAIN_BITS,
    GAIN_FRAC,
    GAIN_MAX,
    GAIN_MIN,
    MAX_AVG_LOG2,
    OFF_FRAC,
    ONE,
    RESULT_FRAC,
    CalFormat,
)
from .divider import SequentialDivider
from .engine import EngineFSM, EngineSignature, OpKind

__all__ = ["CalibrationEngine"]

#: The order a run executes its phases in (capture before drift).
PHASE_ORDER = (CalPhase.OFFSET, CalPhase.GAIN, CalPhase.CAPTURE, CalPhase.DRIFT)


class CalibrationEngine(wiring.Component):
    """Calibration engine.

    A run executes the selected phases in the order offset, gain, capture or drift
    (:data:`PHASE_ORDER`). Each phase requests ``2**avg_log2`` MVMs from the sequencer (zero
    input; with the reference charge in the gain phase; every row at ``DRIFT_X`` for
    capture and drift: the tile drives the rows ``DRIFT_ROWS`` selects), takes their result
    beats from the corrector (raw, or corrected without the drift scale for capture and
    drift) and accumulates them per column in a memory of ``lanes``-wide words, one word per
    result beat. Then it computes the coefficients word by word, dividing with one
    :class:`SequentialDivider` column by column for the gains. Capture and drift sum
    ``|corrected|`` over the columns ``drift_cols`` selects and no flag excludes, and refuse
    a sum below ``drift_min`` (or 0): the run ends with ``error`` and ``weak``, and the
    phase writes nothing.

    Attributes
    ----------
    seq : Out(EngineSignature)
        Requests to the sequencer and the result beats of the requested MVMs.
    start : In(1)
        Begin a run (ignored while busy).
    phases : In(CalPhase)
        Selected phases.
    avg_log2, ref, drift_ref : In
        ``CAL_CTRL.avg_log2``, ``CAL_REF``, ``DRIFT_REF``.
    drift_cols : In(cols)
        ``DRIFT_COLS``: bit ``c`` set counts column ``c`` in the reference signal (reset:
        every column).
    drift_min : In(32)
        ``DRIFT_MIN`` (reset: :attr:`~aimc.fixedpoint.CalFormat.drift_min_default`).
    done, error, weak : Out(1)
        ``done`` (and ``error`` and ``weak`` with it) pulse for one cycle at the end of a
        run; ``weak``: a capture or drift phase found the signal below ``drift_min``.
    off_*, gain_* : memory ports
        Read port (engine side) of the offset memory and write ports of both memories.
    status : Out(2 * cols)
        Column flags, a :class:`~aimc.enums.ColStatus` field of two bits per column.
    bad_count : Out(16)
        Columns with a flag set, recounted at the end of each run.
    drift_ref_we, drift_ref_out, drift_scale_we, drift_scale_out : Out
        Register updates (capture stores DRIFT_REF and resets DRIFT_SCALE to 1.0; drift
        writes DRIFT_SCALE).
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg, self.fmt = cfg, CalFormat(cfg)
        fmt, lanes, beats = self.fmt, cfg.lanes, max(cfg.out_beats, 2)
        super().__init__({
            "seq": Out(EngineSignature(cfg)),
            "start": In(1),
            "phases": In(CalPhase),
            "avg_log2": In(4),
            "ref": In(fmt.ref_bits),
            "drift_ref": In(32),
            "drift_cols": In(cfg.cols, init=(1 << cfg.cols) - 1),
            "drift_min": In(32, init=fmt.drift_min_default),
            "done": Out(1),
            "error": Out(1),
            "weak": Out(1),
            "off_raddr": Out(range(beats)),
            "off_rdata": In(data.ArrayLayout(signed(fmt.off_bits), lanes)),
            "off_waddr": Out(range(beats)),
            "off_wen": Out(lanes),
            "off_wdata": Out(data.ArrayLayout(signed(fmt.off_bits), lanes)),
            "gain_waddr": Out(range(beats)),
            "gain_wen": Out(lanes),
            "gain_wdata": Out(data.ArrayLayout(unsigned(GAIN_BITS), lanes)),
            "status": Out(2 * cfg.cols),
            "bad_count": Out(16),
            "drift_ref_we": Out(1),
            "drift_ref_out": Out(32),
            "drift_scale_we": Out(1),
            "drift_scale_out": Out(DRIFT_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.cfg, self.fmt
        lanes, cols = cfg.lanes, cfg.cols
        seq = self.seq
        beats = cfg.out_beats
        rail_lo, rail_hi = fmt.rails

        m.submodules.acc = acc = Memory(shape=data.ArrayLayout(signed(fmt.sum_bits), lanes),
                                        depth=max(beats, 2), init=[])
        acc_rd, acc_wr = acc.read_port(), acc.write_port()
        div_n = max(fmt.ref_bits + GAIN_FRAC + 1, 32 + DRIFT_FRAC + 1)
        div_d = max(fmt.diff_bits, fmt.abs_sum_bits)
        m.submodules.div = div = SequentialDivider(div_n, div_d, GAIN_BITS)

        k = Signal(4)
        remaining = Signal(CalPhase)
        phase = Signal(CalPhase)  # the running phase, one bit
        rep = Signal(MAX_AVG_LOG2 + 1)
        beat = Signal(range(max(beats, 2)))
        lane = Signal(range(max(lanes, 2)))
        total = Signal(fmt.abs_sum_bits + MAX_AVG_LOG2)
        s_avg = Signal(len(total))  # the average of a drift or capture phase
        failed = Signal()
        weak = Signal()  # a capture or drift phase of this run measured too little
        # DRIFT_COLS as one word of ``lanes`` bits per result beat, like the flags.
        counted = Signal(data.ArrayLayout(lanes, max(beats, 2)))
        m.d.comb += counted.as_value()[:cols].eq(self.drift_cols)
        d = Signal(data.ArrayLayout(signed(fmt.diff_bits + 1), lanes))
        dj = Signal(signed(fmt.diff_bits + 1))  # d of the lane being worked on
        # Column flags, one word of ``lanes`` two-bit fields per result beat: the engine
        # touches the word of the beat it works on (a small mux, not a per-column decoder).
        words = Signal(data.ArrayLayout(2 * lanes, max(beats, 2)))
        status = words.as_value()
        # The flags as the last finished phase left them: an aborted phase (whose flags are
        # cleared as it begins) puts them back, so that they keep agreeing with the
        # coefficients and BAD_COLS.
        saved = Signal(len(status))
        m.d.comb += self.status.eq(status[:2 * cols])
        word = words[beat]

        is_offset, is_gain = (phase & CalPhase.OFFSET).any(), (phase & CalPhase.GAIN).any()
        is_sum = (phase & (CalPhase.DRIFT | CalPhase.CAPTURE)).any()
        # Set with k at the start of a run (constants of the run, off the paths that use
        # them): the rounding term of the average, and the last repetition's index.
        round_k = Signal(MAX_AVG_LOG2 + 1)
        rep_last = Signal(MAX_AVG_LOG2 + 1)

        def average(value):
            return ((value << OFF_FRAC) + round_k) >> k

        def column(j):
            return beat * lanes + j

        m.d.comb += [
            seq.request.payload.kind.eq(Mux(is_sum, OpKind.DRIFT, OpKind.ZERO)),
            seq.request.payload.inject.eq(is_gain),
            seq.mode.eq(Mux(is_sum, CorrectMode.NO_DRIFT, CorrectMode.RAW)),
            self.off_raddr.eq(beat),
            self.off_waddr.eq(beat),
            self.gain_waddr.eq(beat),
            acc_rd.addr.eq(beat),
            acc_wr.addr.eq(beat),
            self.drift_ref_out.eq(total >> k),
        ]
        count = Signal(16)
        terms = Signal(data.ArrayLayout(fmt.out_bits, lanes))  # |corrected| of a beat's lanes
        pend = Signal()  # terms hold a beat not yet added to total
        with m.If(pend):
            m.d.sync += [total.eq(total + sum(terms[j] for j in range(lanes))), pend.eq(0)]

        # Lane values in the output format; the raw phases take the integer part (exact:
        # raw results have zero fractional bits).
        ob = fmt.out_bits
        outs = [seq.results.payload.data[j][:ob].as_signed() for j in range(lanes)]
        values = [v >> RESULT_FRAC for v in outs]

        engine = EngineFSM(m, seq, failed)

        def collect():
            first = rep == 0
            for j in range(lanes):
                m.d.comb += acc_wr.data[j].eq(Mux(first, 0, acc_rd.data[j]) + values[j])
            m.d.comb += acc_wr.en.eq(~is_sum)
            with m.If(is_offset):
                rail = Const(int(ColStatus.RAIL), 2)
                rails = Cat(*(Mux((column(j) < cols)
                                  & ((values[j] == rail_lo) | (values[j] == rail_hi)), rail, 0)
                              for j in range(lanes)))
                m.d.sync += word.eq(word | rails)
            with m.If(is_sum):
                # The lanes' magnitudes are registered here and added to the total in the
                # next cycle (off the path from the corrector's output).
                for j in range(lanes):
                    good = ((column(j) < cols) & ~word[2 * j:2 * j + 2].any()
                            & counted[beat][j])
                    magnitude = Mux(outs[j] < 0, -outs[j], outs[j])
                    m.d.sync += terms[j].eq(Mux(good, magnitude, 0))
                m.d.sync += pend.eq(1)

        def last_beat():
            m.d.sync += rep.eq(rep + 1)
            m.next = "REQUEST"
            with m.If(rep == rep_last):
                m.next = "FINISH"

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    # A capture takes precedence over a drift measurement in the same run.
                    drop = Mux((self.phases & CalPhase.CAPTURE).any(), CalPhase.DRIFT, 0)
                    reps = Const(1, MAX_AVG_LOG2 + 1) << self.avg_log2
                    m.d.sync += [round_k.eq(reps >> 1), rep_last.eq(reps - 1)]
                    m.d.sync += [k.eq(self.avg_log2), remaining.eq(self.phases & ~drop),
                                 failed.eq(0), weak.eq(0)]
                    # avg_log2 and DRIFT_X are range-checked by the register file.
                    with m.If(self.phases == 0):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "WAIT_IDLE"
            engine.wait_idle("PHASE")
            with m.State("PHASE"):
                m.d.sync += saved.eq(status)
                # The next phase: the first remaining one in PHASE_ORDER.
                with m.If((remaining & PHASE_ORDER[0]).any()):
                    m.d.sync += [phase.eq(PHASE_ORDER[0]),
                                 status.eq(status & ~_every(len(status) // 2, ColStatus.RAIL))]
                for i, p in enumerate(PHASE_ORDER[1:], start=1):
                    earlier = (remaining & sum(PHASE_ORDER[:i], CalPhase(0))).any()
                    with m.If((remaining & p).any() & ~earlier):
                        m.d.sync += phase.eq(p)
                        if p == CalPhase.GAIN:
                            m.d.sync += status.eq(
                                status & ~_every(len(status) // 2, ColStatus.GAIN))
                m.d.sync += [rep.eq(0), beat.eq(0), total.eq(0)]
                m.next = "REQUEST"
            # Coefficients of unfinished phases stay unchanged when a request is aborted.
            # An abort restores the flags and recounts them (COUNT), so that COL_STATUS,
            # BAD_COLS and the coefficients of the phases that finished agree.
            engine.request(beat, on_abort=[status.eq(saved), count.eq(0)], abort_to="COUNT",
                           on_beat=collect, on_last=last_beat)
            with m.State("FINISH"):
                with m.If(is_sum):
                    m.next = "DRIFT_AVG"
                with m.Else():
                    m.next = "WORD_READ"
            with m.State("WORD_READ"):
                # Accumulator and offset words of ``beat`` arrive next cycle.
                m.next = "WORD"
            with m.State("WORD"):
                with m.If(is_offset):
                    for j in range(lanes):
                        m.d.comb += self.off_wdata[j].eq(average(acc_rd.data[j]))
                    m.d.comb += self.off_wen.eq((1 << lanes) - 1)
                    m.next = "NEXT_WORD"
                with m.Else():
                    for j in range(lanes):
                        m.d.sync += d[j].eq(average(acc_rd.data[j]) - self.off_rdata[j])
                    m.d.sync += lane.eq(0)
                    m.next = "GAIN_PICK"
            with m.State("GAIN_PICK"):
                # The lane's difference registered: the lane multiplexer is not in series
                # with the divider's start (one cycle more per column).
                m.d.sync += dj.eq(d[lane])
                m.next = "GAIN_LANE"
            with m.State("GAIN_LANE"):
                with m.If(column(lane) >= cols):
                    m.next = "GAIN_NEXT"
                with m.Elif(dj <= 0):
                    m.d.comb += self._gain_write(lane, ONE)
                    m.d.sync += _flag(word, lane, ColStatus.GAIN)
                    m.next = "GAIN_NEXT"
                with m.Else():
                    m.d.comb += [div.start.eq(1), div.divisor.eq(dj),
                                 div.dividend.eq((self.ref << GAIN_FRAC) + (dj >> 1))]
                    m.next = "GAIN_WAIT"
            with m.State("GAIN_WAIT"):
                with m.If(div.done):
                    q = div.quotient
                    bad = div.overflow | (q < GAIN_MIN) | (q >= GAIN_MAX)
                    m.d.comb += self._gain_write(lane, Mux(bad, ONE, q))
                    with m.If(bad):
                        m.d.sync += _flag(word, lane, ColStatus.GAIN)
                    m.next = "GAIN_NEXT"
            with m.State("GAIN_NEXT"):
                m.d.sync += lane.eq(lane + 1)
                with m.If(lane == lanes - 1):
                    m.next = "NEXT_WORD"
                with m.Else():
                    m.next = "GAIN_PICK"
            with m.State("NEXT_WORD"):
                m.d.sync += beat.eq(beat + 1)
                m.next = "WORD_READ"
                with m.If(beat == beats - 1):
                    m.next = "NEXT_PHASE"
            with m.State("DRIFT_AVG"):
                # The average registered: its shifter is not in series with the divider's
                # start (one cycle more per drift or capture phase).
                m.d.sync += s_avg.eq(total >> k)
                m.next = "DRIFT"
            with m.State("DRIFT"):
                with m.If((s_avg == 0) | (s_avg < self.drift_min)):
                    # Too small to measure: refused, nothing written.
                    m.d.sync += [failed.eq(1), weak.eq(1)]
                    m.next = "NEXT_PHASE"
                with m.Elif((phase & CalPhase.CAPTURE).any()):
                    m.d.comb += [self.drift_ref_we.eq(1), self.drift_scale_we.eq(1),
                                 self.drift_scale_out.eq(ONE)]
                    m.next = "NEXT_PHASE"
                with m.Elif(self.drift_ref == 0):
                    # No reference captured (or a refused capture): no scale to compute.
                    m.d.sync += failed.eq(1)
                    m.next = "NEXT_PHASE"
                with m.Else():
                    m.d.comb += [div.start.eq(1), div.divisor.eq(s_avg),
                                 div.dividend.eq((self.drift_ref << DRIFT_FRAC) + (s_avg >> 1))]
                    m.next = "DRIFT_WAIT"
            with m.State("DRIFT_WAIT"):
                with m.If(div.done):
                    with m.If(div.overflow):
                        m.d.sync += failed.eq(1)
                    with m.Else():
                        m.d.comb += [self.drift_scale_we.eq(1),
                                     self.drift_scale_out.eq(div.quotient)]
                    m.next = "NEXT_PHASE"
            with m.State("NEXT_PHASE"):
                m.d.sync += [remaining.eq(remaining & ~phase), beat.eq(0), count.eq(0)]
                with m.If((remaining & ~phase) == 0):
                    m.next = "COUNT"
                with m.Else():
                    m.next = "PHASE"
            with m.State("COUNT"):
                # Recount the flagged columns, one word of lanes per cycle.
                flagged = sum((column(j) < cols) & word[2 * j:2 * j + 2].any()
                              for j in range(lanes))
                m.d.sync += [count.eq(count + flagged), beat.eq(beat + 1)]
                with m.If(beat == beats - 1):
                    m.d.sync += [self.bad_count.eq(count + flagged), beat.eq(0)]
                    m.next = "DONE"
            engine.finish()
        engine.drive(fsm, self.done, self.error)
        m.d.comb += self.weak.eq(fsm.ongoing("DONE") & weak)
        return m

    def _gain_write(self, lane, value):
        return [self.gain_wen.eq(Const(1, self.cfg.lanes) << lane)] + [
            self.gain_wdata[j].eq(value) for j in range(self.cfg.lanes)]


def _every(cols: int, bits: ColStatus) -> int:
    """A mask with ``bits`` set in every column's two-bit status field."""
    return sum(int(bits) << (2 * c) for c in range(cols))


def _flag(word, lane, bit: ColStatus):
    """Set ``bit`` in the status field of ``lane`` of a status word."""
    return word.bit_select(2 * lane + (int(bit).bit_length() - 1), 1).eq(1)
