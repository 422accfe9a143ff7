"""Stream ends of the tile: the input-vector loader and the result packer."""

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from .axi import AxiStreamSignature
from .engine import result_beat

__all__ = ["InputLoader", "ResultPacker", "input_vector", "result_vector"]


def input_vector(cfg: TileConfig) -> data.ArrayLayout:
    """An input vector as the sequencer takes it: one signed element per row."""
    return data.ArrayLayout(signed(cfg.in_lane_width), cfg.rows)


def result_vector(cfg: TileConfig) -> data.ArrayLayout:
    """A result vector as the sequencer hands it over: one raw result per column."""
    return data.ArrayLayout(signed(cfg.result_bits), cfg.cols)


class InputLoader(wiring.Component):
    """Receives input vectors on AXI4-Stream into a buffer that the sequencer takes whole.

    A vector is ``in_beats`` beats of ``lanes`` elements (row ``beat*lanes + j`` in lane j,
    sign-extended to ``in_lane_width`` bits); lanes past the last row are padding and
    ignored. A vector whose TLAST comes early or late is dropped whole (``drop_frame``);
    one with an element outside ``+-x_max`` is dropped whole (``drop_range``). The stream
    stalls only while a complete vector waits to be taken.

    Attributes
    ----------
    stream : In(AxiStreamSignature)
    vector : Out(stream.Signature(input_vector(cfg)))
        The complete vector waiting in the buffer (``valid``); the sequencer takes it in a
        cycle with ``ready`` high.
    drop_frame, drop_range : Out(1)
        One-cycle strobes when a vector is dropped.
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "stream": In(AxiStreamSignature(cfg.in_data_width)),
            "vector": Out(stream.Signature(input_vector(cfg))),
            "drop_frame": Out(1),
            "drop_range": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lw, lanes, beats = cfg.in_lane_width, cfg.lanes, cfg.in_beats
        buf = Signal(data.ArrayLayout(cfg.in_data_width, beats))
        beat = Signal(range(max(beats, 2)))  # no zero-width signal for one-beat vectors
        overlong = Signal()
        bad = Signal()
        s = self.stream

        out = self.vector
        m.d.comb += [
            s.tready.eq(~out.valid),
            out.payload.eq(buf.as_value()[:cfg.rows * lw]),
        ]
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)

        # Elements of this beat outside +-x_max; padding lanes of the last beat don't count.
        last_beat = beat == beats - 1
        lane_bad = []
        for j in range(lanes):
            v = s.tdata[j * lw:(j + 1) * lw].as_signed()
            bad_lane = (v > cfg.x_max) | (v < -cfg.x_max)
            if (beats - 1) * lanes + j >= cfg.rows:
                bad_lane = bad_lane & ~last_beat
            lane_bad.append(bad_lane)
        beat_bad = Cat(*lane_bad).any()

        with m.If(s.tvalid & s.tready):
            with m.If(~overlong):
                with m.Switch(beat):
                    for k in range(beats):
                        with m.Case(k):
                            m.d.sync += buf[k].eq(s.tdata)
            with m.If(s.tlast):
                m.d.sync += [beat.eq(0), overlong.eq(0), bad.eq(0)]
                with m.If(overlong | ~last_beat):
                    m.d.comb += self.drop_frame.eq(1)
                with m.Elif(bad | beat_bad):
                    m.d.comb += self.drop_range.eq(1)
                with m.Else():
                    m.d.sync += out.valid.eq(1)
            with m.Else():
                m.d.sync += bad.eq(bad | beat_bad)
                with m.If(last_beat):
                    m.d.sync += overlong.eq(1)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        return m


class ResultPacker(wiring.Component):
    """Sends one result vector per MVM, ``lanes`` results per beat.

    Attributes
    ----------
    vector : In(stream.Signature(result_vector(cfg)))
        Raw results, taken whole (``ready`` when the packer is empty or sending its last
        beat).
    busy : Out(1)
        A vector is being sent.
    stream : Out(stream.Signature(result_beat(cfg)))
        Results sign-extended to the lane width, ``last`` on the last beat of each vector;
        padding lanes are zero.
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
        beats, lanes = cfg.out_beats, cfg.lanes
        buf = Signal(data.ArrayLayout(result_beat(cfg).members["data"], beats))
        beat = Signal(range(max(beats, 2)))  # no zero-width signal for one-beat vectors
        s, v = self.stream, self.vector
        sent = s.valid & s.ready & s.payload.last

        m.d.comb += [
            s.valid.eq(self.busy),
            s.payload.data.eq(buf[beat]),
            s.payload.last.eq(beat == beats - 1),
            v.ready.eq(~self.busy | sent),
        ]
        with m.If(s.valid & s.ready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(s.payload.last):
                m.d.sync += [beat.eq(0), self.busy.eq(0)]
        with m.If(v.valid & v.ready):
            # Element assignments sign-extend each result to the lane width; padding lanes
            # of the last beat are cleared.
            for b in range(beats):
                for j in range(lanes):
                    c = b * lanes + j
                    m.d.sync += buf[b][j].eq(v.payload[c] if c < cfg.cols else 0)
            m.d.sync += [self.busy.eq(1), beat.eq(0)]
        return m
