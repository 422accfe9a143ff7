"""Stream ends of the tile: the input-vector loader and the result packer."""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from .axi import AxiStreamSignature

__all__ = ["InputLoader", "ResultPacker"]


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
    valid : Out(1)
        A complete vector is waiting in ``vector``.
    take : In(1)
        The sequencer takes the vector this cycle (only while ``valid``).
    vector : Out(rows * in_lane_width)
    drop_frame, drop_range : Out(1)
        One-cycle strobes when a vector is dropped.
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "stream": In(AxiStreamSignature(cfg.in_data_width)),
            "valid": Out(1),
            "take": In(1),
            "vector": Out(cfg.rows * cfg.in_lane_width),
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

        m.d.comb += [
            s.tready.eq(~self.valid),
            self.vector.eq(buf.as_value()[:cfg.rows * lw]),
        ]
        with m.If(self.take):
            m.d.sync += self.valid.eq(0)

        # Elements of this beat outside +-x_max; padding lanes of the last beat don't count.
        last_beat = beat == beats - 1
        lane_bad = []
        for j in range(lanes):
            v = s.tdata[j * lw:(j + 1) * lw].as_signed()
            out = (v > cfg.x_max) | (v < -cfg.x_max)
            if (beats - 1) * lanes + j >= cfg.rows:
                out = out & ~last_beat
            lane_bad.append(out)
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
                    m.d.sync += self.valid.eq(1)
            with m.Else():
                m.d.sync += bad.eq(bad | beat_bad)
                with m.If(last_beat):
                    m.d.sync += overlong.eq(1)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        return m


class ResultPacker(wiring.Component):
    """Sends one result vector per MVM on AXI4-Stream, ``lanes`` results per beat.

    Attributes
    ----------
    load : In(1)
        Capture ``results`` and start sending (only while ``ready``).
    results : In(cols * out_lane_width)
        Sign-extended results, column 0 in the low bits.
    ready : Out(1)
        The packer can take a vector this cycle (empty, or sending its last beat).
    busy : Out(1)
        A vector is being sent.
    stream : Out(AxiStreamSignature)
        TLAST marks the last beat of each vector; padding lanes are zero.
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "load": In(1),
            "results": In(cfg.cols * cfg.out_lane_width),
            "ready": Out(1),
            "busy": Out(1),
            "stream": Out(AxiStreamSignature(cfg.out_data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        beats = cfg.out_beats
        buf = Signal(data.ArrayLayout(cfg.out_data_width, beats))
        beat = Signal(range(max(beats, 2)))  # no zero-width signal for one-beat vectors
        s = self.stream
        pad = beats * cfg.out_data_width - cfg.cols * cfg.out_lane_width
        sent = s.tvalid & s.tready & s.tlast

        m.d.comb += [
            s.tvalid.eq(self.busy),
            s.tdata.eq(buf[beat]),
            s.tlast.eq(beat == beats - 1),
            self.ready.eq(~self.busy | sent),
        ]
        with m.If(s.tvalid & s.tready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(s.tlast):
                m.d.sync += [beat.eq(0), self.busy.eq(0)]
        with m.If(self.load):
            padded = Cat(self.results, Const(0, pad)) if pad else self.results
            m.d.sync += [buf.eq(padded), self.busy.eq(1), beat.eq(0)]
        return m
