"""The engines' interface: how an engine (calibration, program-and-verify, and any engine to
come) asks the sequencer for analogue operations and takes the results they produce.

An engine runs without the host once started by a register write. While it is ``busy``
the sequencer serves only engine requests: the host's vectors wait in the input buffer.
Each request names one analogue operation (an MVM with zero input or with ``DRIFT_X`` on
every row, possibly with the reference charge; or a single-device read of one row); the
sequencer takes it when the analogue half is ready, and its results come back on the
engine's ``results`` stream from the corrector, in the mode the engine asks for. An engine
that pulses devices itself (program and verify) reports that it waits for the analogue
half with ``wait``. The :class:`~aimc.rtl.arbiter.Arbiter` connects the engines to the
sequencer and to the result pipeline.
"""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import CorrectMode, ResultKind

__all__ = ["EngineFSM", "EngineSignature", "OpKind", "beat_lanes", "op_layout", "result_beat"]


class OpKind(enum.Enum, shape=3):
    """The analogue operation a request asks the sequencer for. The first three are the
    host's (the vector in the input buffer), never an engine's request."""

    FORWARD = 0   #: a forward MVM of the host's vector
    BACKWARD = 1  #: a backward MVM of the host's vector (it drives the columns)
    UPDATE = 2    #: a pulsed update with the host's vector as d
    ZERO = 3      #: a forward MVM with every input 0
    DRIFT = 4     #: a forward MVM with DRIFT_X on every row
    READ = 5      #: a single-device read of row ``row``, side ``neg``


def op_layout(cfg: TileConfig) -> data.StructLayout:
    """Payload of a request: the kind, the reference charge (``inject``, MVMs) and the row
    and side of a device read."""
    return data.StructLayout({
        "kind": OpKind,
        "inject": 1,
        "row": unsigned(cfg.row_bits),
        "neg": 1,
    })


def beat_lanes(cfg: TileConfig) -> data.ArrayLayout:
    """The ``lanes`` results of a beat, each sign-extended to ``out_lane_width`` bits."""
    return data.ArrayLayout(signed(cfg.out_lane_width), cfg.lanes)


def result_beat(cfg: TileConfig) -> data.StructLayout:
    """One beat of a result vector: ``lanes`` results (columns, or rows for a backward
    result, ``beat * lanes + j``; padding lanes 0) with ``RESULT_FRAC`` fractional bits,
    ``last`` on the last beat, and the vector's kind."""
    return data.StructLayout({
        "data": beat_lanes(cfg),
        "last": 1,
        "kind": ResultKind,
    })


class EngineSignature(wiring.Signature):
    """An engine's side of the sequencer and of the result pipeline (an engine has
    ``Out(EngineSignature(cfg))``).

    Members
    -------
    request : Out(stream.Signature(op_layout))
        The next analogue operation; held valid with a stable payload until ``ready`` (the
        sequencer starts it).
    abort : In(1)
        The pending request, or the wait for the analogue half (``wait``), timed out
        (READY_TIMEOUT): the engine ends its run with an error.
    wait : Out(1)
        The engine waits for the analogue half's ``ready`` for an operation of its own (a
        pulse step); counted against READY_TIMEOUT like a request.
    ready : In(1)
        The analogue half is ready.
    idle : In(1)
        No operation runs and no result is in flight: an engine waits for it before its
        first request, so that results in flight stay the host's.
    busy : Out(1)
        The engine runs; host vectors wait.
    owns : Out(1)
        The engine owns the result pipeline: ``results`` carries the corrector's output and
        ``emit`` goes to ``m_axis``.
    mode : Out(CorrectMode)
        The corrector's mode while the engine owns the pipeline.
    results : In(stream.Signature(result_beat))
        Result beats of the engine's operations.
    emit : Out(stream.Signature(result_beat))
        Beats the engine sends to ``m_axis`` while it owns the pipeline (status packets);
        never valid otherwise.

    Parameters
    ----------
    cfg : TileConfig
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"EngineSignature needs a TileConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "request": Out(stream.Signature(op_layout(cfg))),
            "abort": In(1),
            "wait": Out(1),
            "ready": In(1),
            "idle": In(1),
            "busy": Out(1),
            "owns": Out(1),
            "mode": Out(CorrectMode),
            "results": In(stream.Signature(result_beat(cfg))),
            "emit": Out(stream.Signature(result_beat(cfg))),
        })

    def __eq__(self, other):
        return isinstance(other, EngineSignature) and other.cfg == self.cfg

    def __repr__(self):
        return f"EngineSignature({self.cfg.key})"


class EngineFSM:
    """The part of an engine's state machine that every engine shares, written once.

    Inside the engine's ``with m.FSM() as fsm:`` block, :meth:`wait_idle` adds the state
    that waits for the pipeline to drain, :meth:`request` the states that request one
    operation and take its result beats (``REQUEST``, then ``READ`` (a cycle for the
    engine's memories to return the word of the beat) and ``COLLECT`` per beat), and
    :meth:`finish` the ``DONE`` state; after the block, :meth:`drive` sets the interface's
    outputs from the state. ``failed`` is the engine's error flag (an abort sets it).
    """

    def __init__(self, m, seq, failed):
        self.m, self.seq, self.failed = m, seq, failed

    def wait_idle(self, then: str) -> None:
        m = self.m
        with m.State("WAIT_IDLE"):
            with m.If(self.seq.idle):
                m.next = then

    def request(self, beat, *, on_accept=(), on_abort=(), abort_to="DONE", on_beat=None,
                on_last=None) -> None:
        """``on_accept``: statements when the sequencer takes the request; ``on_abort``:
        when it is abandoned (the run goes on to state ``abort_to``, with its error flag
        set); ``on_beat()`` and ``on_last()`` add the statements of a beat taken and of the
        last beat (which must set ``m.next``)."""
        m, seq = self.m, self.seq
        with m.State("REQUEST"):
            with m.If(seq.request.ready):
                m.d.sync += [beat.eq(0), *on_accept]
                m.next = "READ"
            with m.Elif(seq.abort):
                # No result is in flight here: each operation's results are taken before
                # the next request.
                m.d.sync += [self.failed.eq(1), *on_abort]
                m.next = abort_to
        with m.State("READ"):
            m.next = "COLLECT"
        with m.State("COLLECT"):
            with m.If(seq.results.valid):
                if on_beat is not None:
                    on_beat()
                m.d.sync += beat.eq(beat + 1)
                m.next = "READ"
                with m.If(seq.results.payload.last):
                    m.d.sync += beat.eq(0)
                    on_last()

    def finish(self) -> None:
        m = self.m
        with m.State("DONE"):
            m.next = "IDLE"

    def drive(self, fsm, done, error) -> None:
        """Continuous assignments (valid from time zero in every simulator: a combinational
        process of the IDLE state alone may never be evaluated)."""
        seq = self.seq
        running = ~fsm.ongoing("IDLE") & ~fsm.ongoing("DONE")
        self.m.d.comb += [
            # Busy through DONE: the done flag it sets is visible when busy falls (a status
            # read never sees neither).
            seq.busy.eq(~fsm.ongoing("IDLE")),
            seq.owns.eq(running & ~fsm.ongoing("WAIT_IDLE")),
            seq.request.valid.eq(fsm.ongoing("REQUEST")),
            seq.results.ready.eq(fsm.ongoing("COLLECT")),
            done.eq(fsm.ongoing("DONE")),
            error.eq(fsm.ongoing("DONE") & self.failed),
        ]
