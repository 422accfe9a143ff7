"""Stream ends of the tile: the input-vector loader and the result packer."""

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import InputKind, ResultKind
from .axi import AxiStreamSignature
from .engine import beat_lanes, result_beat

__all__ = ["InputLoader", "ResultPacker", "input_frame", "line_vector", "result_vector"]

#: TUSER width of both vector streams: the kind of the vector (InputKind, ResultKind).
KIND_BITS = 2


def line_vector(cfg: TileConfig, lines: int) -> data.ArrayLayout:
    """A vector of ``lines`` signed inputs (one per row, or per column)."""
    return data.ArrayLayout(signed(cfg.in_lane_width), lines)


def input_frame(cfg: TileConfig) -> data.StructLayout:
    """An input vector as the sequencer takes it: its kind, ``in_lines`` elements (a
    forward vector uses the first ``rows``, the others the first ``cols``) and the largest
    magnitude among its elements (training tiles; else 0)."""
    return data.StructLayout({
        "kind": InputKind,
        "data": line_vector(cfg, cfg.in_lines),
        "max": unsigned(cfg.mag_bits),
    })


def result_vector(cfg: TileConfig) -> data.StructLayout:
    """A result vector as the sequencer hands it over: its kind and one raw result per
    column (forward) or per row (backward), in the first of ``out_lines`` elements."""
    return data.StructLayout({
        "kind": ResultKind,
        "data": data.ArrayLayout(signed(cfg.result_bits), cfg.out_lines),
    })


class InputLoader(wiring.Component):
    """Receives input vectors on AXI4-Stream into a buffer that the sequencer takes whole.

    TUSER (:class:`~aimc.enums.InputKind`, held through the frame) says what a vector is
    for: a forward vector has one element per row, in ``in_beats`` beats; a backward or
    update vector (training tiles only) one per column, in ``out_beats`` beats. Element
    ``beat*lanes + j`` is in lane j, sign-extended to ``in_lane_width`` bits; lanes past the
    last element are padding and ignored. A vector whose TLAST comes early or late, whose
    TUSER changes within the frame or names no kind (of this tile) is dropped whole
    (``drop_frame``); one with an element
    outside ``+-x_max`` is dropped whole (``drop_range``). The stream stalls only while a
    complete vector waits to be taken. The loader also finds the largest magnitude of each
    vector as its beats arrive (for the update engine's update management).

    Attributes
    ----------
    stream : In(AxiStreamSignature)
    vector : Out(stream.Signature(input_frame(cfg)))
        The complete vector waiting in the buffer (``valid``); the sequencer takes it in a
        cycle with ``ready`` high.
    drop_frame, drop_range : Out(1)
        One-cycle strobes when a vector is dropped.
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "stream": In(AxiStreamSignature(cfg.in_data_width, KIND_BITS)),
            "vector": Out(stream.Signature(input_frame(cfg))),
            "drop_frame": Out(1),
            "drop_range": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lw, lanes = cfg.in_lane_width, cfg.lanes
        beats = max(cfg.in_beats, cfg.out_beats) if cfg.training else cfg.in_beats
        buf = Signal(data.ArrayLayout(cfg.in_data_width, beats))
        beat = Signal(range(max(beats, 2)))  # no zero-width signal for one-beat vectors
        overlong = Signal()
        bad = Signal()       # an element out of range so far
        wrong = Signal()     # TUSER changed within the frame, or names no kind
        kind = Signal(InputKind)
        peak = Signal(cfg.mag_bits)
        s, out = self.stream, self.vector

        m.d.comb += [
            s.tready.eq(~out.valid),
            out.payload.data.eq(buf.as_value()[:cfg.in_lines * lw]),
        ]
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)

        # The kind of this beat's frame: the first beat's TUSER.
        first = beat == 0
        now = Signal(InputKind)
        m.d.comb += Value.cast(now).eq(Mux(first, s.tuser, Value.cast(kind)))
        forward = (now == InputKind.FORWARD) if cfg.training else Const(1)
        last_beat = Mux(forward, beat == cfg.in_beats - 1, beat == cfg.out_beats - 1)
        # Elements of this beat outside +-x_max, and the largest magnitude; padding lanes of
        # the last beat do not count.
        lane_bad, mags = [], []
        for j in range(lanes):
            v = s.tdata[j * lw:(j + 1) * lw].as_signed()
            used = Mux(forward, beat * lanes + j < cfg.rows, beat * lanes + j < cfg.cols)
            lane_bad.append(((v > cfg.x_max) | (v < -cfg.x_max)) & used)
            mags.append(Mux(used, Mux(v < 0, -v, v)[:cfg.mag_bits], 0))
        beat_bad = Cat(*lane_bad).any()
        # The largest magnitude serves the update engine alone.
        vector_max = 0
        if cfg.training:
            beat_max, running = _maximum(m, mags, cfg.mag_bits), Mux(first, 0, peak)
            vector_max = Mux(beat_max > running, beat_max, running)
        # Kinds other than forward exist on training tiles only.
        valid_kind = (s.tuser != 3) if cfg.training else (s.tuser == InputKind.FORWARD.value)
        beat_wrong = Mux(first, ~valid_kind, s.tuser != Value.cast(kind))

        with m.If(s.tvalid & s.tready):
            with m.If(~overlong):
                with m.Switch(beat):
                    for k in range(beats):
                        with m.Case(k):
                            m.d.sync += buf[k].eq(s.tdata)
            m.d.sync += [kind.eq(now), peak.eq(vector_max)]
            with m.If(s.tlast):
                m.d.sync += [beat.eq(0), overlong.eq(0), bad.eq(0), wrong.eq(0)]
                with m.If(overlong | ~last_beat | wrong | beat_wrong):
                    m.d.comb += self.drop_frame.eq(1)
                with m.Elif(bad | beat_bad):
                    m.d.comb += self.drop_range.eq(1)
                with m.Else():
                    m.d.sync += [out.valid.eq(1), out.payload.kind.eq(now),
                                 out.payload.max.eq(vector_max)]
            with m.Else():
                m.d.sync += [bad.eq(bad | beat_bad), wrong.eq(wrong | beat_wrong)]
                with m.If(last_beat):
                    m.d.sync += overlong.eq(1)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        return m


def _maximum(m, values, width):
    """The largest of ``values`` (unsigned), by a tree of comparisons."""
    level = list(values)
    while len(level) > 1:
        nxt = []
        for a, b in zip(level[::2], level[1::2], strict=False):
            w = Signal(width)
            m.d.comb += w.eq(Mux(a > b, a, b))
            nxt.append(w)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class ResultPacker(wiring.Component):
    """Sends one result vector per MVM, ``lanes`` results per beat: ``out_beats`` beats for a
    forward vector (one result per column), ``back_beats`` for a backward one (per row).

    Attributes
    ----------
    vector : In(stream.Signature(result_vector(cfg)))
        Raw results, taken whole (``ready`` when the packer is empty or sending its last
        beat).
    busy : Out(1)
        A vector is being sent.
    stream : Out(stream.Signature(result_beat(cfg)))
        Results sign-extended to the lane width, ``last`` on the last beat of each vector,
        ``kind`` the vector's; padding lanes are zero.
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "vector": In(stream.Signature(result_vector(cfg))),
            "busy": Out(1),
            "stream": Out(stream.Signature(result_beat(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lanes = cfg.lanes
        beats = max(cfg.out_beats, cfg.back_beats) if cfg.training else cfg.out_beats
        buf = Signal(data.ArrayLayout(beat_lanes(cfg), beats))
        beat = Signal(range(max(beats, 2)))  # no zero-width signal for one-beat vectors
        kind = Signal(ResultKind)
        s, v = self.stream, self.vector
        last = (Mux(kind == ResultKind.BACKWARD, beat == cfg.back_beats - 1,
                    beat == cfg.out_beats - 1) if cfg.training else beat == cfg.out_beats - 1)
        sent = s.valid & s.ready & last

        m.d.comb += [
            s.valid.eq(self.busy),
            s.payload.data.eq(buf[beat]),
            s.payload.last.eq(last),
            s.payload.kind.eq(kind),
            v.ready.eq(~self.busy | sent),
        ]
        with m.If(s.valid & s.ready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(last):
                m.d.sync += [beat.eq(0), self.busy.eq(0)]
        with m.If(v.valid & v.ready):
            # Element assignments sign-extend each result to the lane width; lanes past the
            # vector's length are cleared.
            backward = v.payload.kind == ResultKind.BACKWARD
            for b in range(beats):
                for j in range(lanes):
                    c = b * lanes + j
                    if c >= cfg.out_lines:
                        m.d.sync += buf[b][j].eq(0)
                        continue
                    if cfg.training:
                        length_ok = Mux(backward, c < cfg.rows, c < cfg.cols)
                        m.d.sync += buf[b][j].eq(Mux(length_ok, v.payload.data[c], 0))
                    else:
                        m.d.sync += buf[b][j].eq(v.payload.data[c])
            m.d.sync += [self.busy.eq(1), beat.eq(0), kind.eq(v.payload.kind)]
        return m
