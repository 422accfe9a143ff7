"""AXI4-Stream ends of the tile: the input loader (``s_axis``, the tile a subordinate) and the
result packer (the manager side that feeds ``m_axis`` through the corrector). TVALID held
until TREADY with its payload stable; TREADY never a function of TVALID; one outcome per
frame (delivered or dropped, by reason); the data delivered in order."""

from __future__ import annotations

from amaranth import Cat, Mux, Signal, Value

from ..config import TileConfig
from ..enums import InputKind, ResultKind
from ..rtl.stream import InputLoader, ResultPacker
from .harness import Harness, driven, free

__all__ = ["LoaderHarness", "PackerHarness"]


class _ReadyOnValid(InputLoader):
    """Waits for TVALID before it raises TREADY."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.stream.tready.eq(~self.vector.valid & self.stream.tvalid)
        return m


class _Overwrite(InputLoader):
    """TREADY ungated: a beat is taken while a complete vector waits in the buffer."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.stream.tready.eq(1)
        return m


class LoaderHarness(Harness):
    """:class:`~aimc.rtl.stream.InputLoader` of a 3-row, 2-column tile (two beats per forward
    vector, one per backward or update vector), every TDATA, TLAST, TUSER and TVALID
    free (a manager need not hold TVALID: the loader must not rely on it), the sequencer's
    ``ready`` free. The harness applies the documented frame rules itself (length by kind,
    TUSER constant and a kind, every used element within +-x_max) and predicts each frame's
    outcome and payload."""

    name = "loader"
    mutations = {"ready_on_valid": "TREADY waits for TVALID",
                 "overwrite": "TREADY stays high while a complete vector waits"}

    def __init__(self, cfg=None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(rows=3, cols=2, lanes=2,
                                                          training=True)

    def build(self, m):
        cfg = self.cfg
        cls = {"ready_on_valid": _ReadyOnValid, "overwrite": _Overwrite}.get(self.mutation,
                                                                            InputLoader)
        dut = cls(cfg)
        f = self.instance(m, dut)
        s, out = dut.stream, dut.vector
        lanes, lw = cfg.lanes, cfg.in_lane_width
        m.d.comb += [s.tvalid.eq(free(m, 1, "tvalid")), s.tdata.eq(free(m, len(s.tdata))),
                     s.tlast.eq(free(m, 1, "tlast")), s.tuser.eq(free(m, 2, "tuser")),
                     out.ready.eq(free(m, 1, "take"))]
        hs = s.tvalid & s.tready

        self.prop(m, "tready_never_waits_for_tvalid", s.tready == ~out.valid)

        # -- the frame rules, applied by the harness ---------------------------------------
        # On an inference tile only forward vectors exist (every other TUSER is wrong) and
        # the loader finds no largest magnitude (0).
        training = cfg.training
        beats = max(cfg.in_beats, cfg.out_beats) if training else cfg.in_beats
        n = Signal(range(beats + 2))     # beats of this frame so far (saturating)
        kind = Signal(2)
        wrong = Signal()                 # TUSER changed or names no kind
        bad = Signal()                   # an element out of range
        peak = Signal(cfg.mag_bits)
        buf = [Signal(len(s.tdata), name=f"beat{b}") for b in range(beats)]
        now_kind = Mux(n == 0, s.tuser, kind)
        forward = (now_kind == InputKind.FORWARD) if training else 1
        no_kind = (s.tuser == 3) if training else (s.tuser != InputKind.FORWARD)
        length = Mux(forward, cfg.in_beats, cfg.out_beats)
        elems = Mux(forward, cfg.rows, cfg.cols)
        # The beat's index within the frame, held at the last one of its kind past the end
        # (an overlong frame is dropped whatever its elements).
        index = Mux(n > length - 1, length - 1, n)
        lane_bad, mags = [], []
        for j in range(lanes):
            v = s.tdata[j * lw:(j + 1) * lw].as_signed()
            used = index * lanes + j < elems
            lane_bad.append(used & ((v > cfg.x_max) | (v < -cfg.x_max)))
            # (An element out of range drops the frame: its magnitude's top bit is moot.)
            mags.append(Mux(used, Mux(v < 0, -v, v)[:cfg.mag_bits], 0))
        best = mags[0]
        for mg in mags[1:]:
            best = Mux(mg > best, mg, best)
        beat_peak = Signal(cfg.mag_bits)
        m.d.comb += beat_peak.eq(best)
        new_peak = (Mux(n == 0, beat_peak, Mux(beat_peak > peak, beat_peak, peak))
                    if training else 0)
        frame_wrong = wrong | (s.tuser != now_kind) | no_kind | (n + 1 != length)
        frame_bad = bad | Cat(*lane_bad).any()
        expect_frame = Signal()
        expect_range = Signal()
        expect_accept = Signal()
        with m.If(hs):
            with m.If(n < beats):
                with m.Switch(n):
                    for b in range(beats):
                        with m.Case(b):
                            m.d.sync += buf[b].eq(s.tdata)
            with m.If(s.tlast):
                m.d.sync += [n.eq(0), wrong.eq(0), bad.eq(0)]
                m.d.comb += [expect_frame.eq(frame_wrong),
                             expect_range.eq(~frame_wrong & frame_bad),
                             expect_accept.eq(~frame_wrong & ~frame_bad)]
            with m.Else():
                m.d.sync += [n.eq(Mux(n == beats + 1, n, n + 1)), kind.eq(now_kind),
                             wrong.eq(wrong | (s.tuser != now_kind) | no_kind),
                             bad.eq(bad | Cat(*lane_bad).any()), peak.eq(new_peak)]
        self.prop(m, "drop_frame_iff_wrong_framing", dut.drop_frame == expect_frame)
        self.prop(m, "drop_range_iff_element_out_of_range", dut.drop_range == expect_range)
        # The delivered vector: its kind, its elements in order, its largest magnitude.
        exp_kind, exp_max = Signal(2), Signal(cfg.mag_bits)
        exp_data = Signal(len(out.payload.data.as_value()))
        last_data = Cat(*(Mux(n == b, s.tdata, buf[b]) for b in range(beats)))
        with m.If(expect_accept):
            m.d.sync += [exp_kind.eq(now_kind), exp_max.eq(new_peak),
                         exp_data.eq(last_data[:len(exp_data)])]
        valid_was = self.past(m, out.valid & ~out.ready)
        accepted = self.past(m, expect_accept)
        held = [self.past(m, Value.cast(out.payload))]
        self.prop(m, "vector_only_from_a_good_frame",
                  ~out.valid | valid_was | accepted)
        with m.If(valid_was):
            self.prop(m, "vector_held_until_taken",
                      out.valid & (Value.cast(out.payload) == held[0]))
        used = Mux(exp_kind == InputKind.FORWARD, cfg.rows, cfg.cols)
        same = Cat(*((i >= used) | (out.payload.data[i] == exp_data.word_select(i, lw)
                                    .as_signed()) for i in range(cfg.in_lines))).all()
        with m.If(out.valid):
            self.prop(m, "vector_is_the_frame",
                      (Value.cast(out.payload.kind) == exp_kind) & (out.payload.max == exp_max)
                      & same, helper=True)
        # Helper invariants: the loader's frame state is the harness's. Past the end of an
        # overlong frame only the overlong flag counts (the frame is dropped at its TLAST
        # whatever else happens; the loader's other frame state is then moot).
        last_index = length - 1
        self.prop(m, "frame_overlong", (n <= beats + 1)
                  & (driven(f, "overlong") == (n > last_index)), helper=True)
        with m.If(n <= last_index):
            self.prop(m, "frame_state", (driven(f, "beat") == n)
                      & (driven(f, "wrong") == wrong) & (driven(f, "bad") == bad), helper=True)
        with m.If((n != 0) & (n <= last_index)):
            self.prop(m, "frame_kind", (driven(f, "kind") == kind) & (driven(f, "peak") == peak)
                      & Cat(*((driven(f, "buf")[b * len(s.tdata):(b + 1) * len(s.tdata)]
                               == buf[b]) | (b >= n) for b in range(beats))).all(), helper=True)
            # A frame whose first beat named no kind (of this tile) is already wrong.
            valid_kind = (kind != 3) if training else (kind == InputKind.FORWARD)
            self.prop(m, "frame_kind_or_wrong", wrong | valid_kind, helper=True)
        self.cover(m, "forward_vector", out.valid & (out.payload.kind == InputKind.FORWARD))
        dropped = Signal()
        with m.If(dut.drop_frame):
            m.d.sync += dropped.eq(1)
        self.cover(m, "frame_dropped_then_vector", out.valid & dropped)


class _ValidOnReady(ResultPacker):
    """Raises TVALID only when TREADY is high (a manager waiting for its subordinate)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.stream.valid.eq(self.busy & self.stream.ready)
        return m


class _EarlyLast(ResultPacker):
    """Marks the first beat of every vector as the last."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.stream.valid & self.stream.ready):
            m.d.sync += [self.busy.eq(0)]
        m.d.comb += self.stream.payload.last.eq(1)
        return m


class PackerHarness(Harness):
    """:class:`~aimc.rtl.stream.ResultPacker` of a 3-row, 3-column tile with two lanes (two
    beats per vector, the last one padded): vectors and the downstream TREADY free."""

    name = "packer"
    mutations = {"valid_on_ready": "TVALID waits for TREADY",
                 "early_last": "TLAST on the first beat of every vector"}

    def __init__(self, cfg=None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(rows=3, cols=3, lanes=2,
                                                          training=True)

    def build(self, m):
        cfg = self.cfg
        cls = {"valid_on_ready": _ValidOnReady, "early_last": _EarlyLast}.get(self.mutation,
                                                                             ResultPacker)
        dut = cls(cfg)
        f = self.instance(m, dut)
        v, s = dut.vector, dut.stream
        m.d.comb += [v.valid.eq(free(m, 1, "vvalid")), s.ready.eq(free(m, 1, "tready")),
                     Value.cast(v.payload).eq(free(m, len(Value.cast(v.payload))))]
        # The sequencer hands over kinds of this tile only (forward alone without training).
        self.assume(m, Value.cast(v.payload.kind) != 3)
        if not cfg.training:
            self.assume(m, v.payload.kind == ResultKind.FORWARD)
        hs = s.valid & s.ready
        self.prop(m, "tvalid_never_waits_for_tready", s.valid == dut.busy)
        held = self.past(m, s.valid & ~s.ready)
        before = self.past(m, Value.cast(s.payload))
        with m.If(held):
            self.prop(m, "tvalid_held_with_payload",
                      s.valid & (Value.cast(s.payload) == before))
        # The vector being sent and the beat expected next.
        vec = Signal(len(Value.cast(v.payload)))
        most = max(cfg.out_beats, cfg.back_beats) if cfg.training else cfg.out_beats
        beat = Signal(range(most + 1))
        view = v.payload.shape()(vec)
        backward = view.kind == ResultKind.BACKWARD
        nbeats = Mux(backward, cfg.back_beats, cfg.out_beats)
        length = Mux(backward, cfg.rows, cfg.cols)
        with m.If(hs):
            m.d.sync += beat.eq(Mux(beat + 1 == nbeats, 0, beat + 1))
        with m.If(v.valid & v.ready):
            m.d.sync += [vec.eq(Value.cast(v.payload)), beat.eq(0)]
        with m.If(s.valid):
            lanes_ok = []
            for j in range(cfg.lanes):
                c = beat * cfg.lanes + j
                elem = view.data.as_value().word_select(c, cfg.result_bits).as_signed()
                ref = Mux(c < length, elem, 0)
                lanes_ok.append(s.payload.data[j] == ref)
            self.prop(m, "beats_are_the_vector_in_order",
                      Cat(*lanes_ok).all() & (s.payload.last == (beat + 1 == nbeats))
                      & (Value.cast(s.payload.kind) == Value.cast(view.kind)))
        self.prop(m, "next_vector_only_after_last_beat",
                  v.ready == (~dut.busy | (hs & s.payload.last)))
        self.prop(m, "harness_beat", beat < nbeats, helper=True)
        # Helper invariants: the packer's buffer, beat and kind are the harness's vector.
        buf = driven(f, "buf")
        lw = cfg.out_lane_width
        cells = []
        for b in range(most):
            for j in range(cfg.lanes):
                c = b * cfg.lanes + j
                ref = (Mux(c < length, view.data[c], 0) if c < cfg.out_lines else 0)
                cells.append(buf[(b * cfg.lanes + j) * lw:(b * cfg.lanes + j + 1) * lw]
                             .as_signed() == ref)
        with m.If(dut.busy):
            self.prop(m, "packer_state", Cat(*cells).all() & (driven(f, "beat") == beat)
                      & (driven(f, "kind") == Value.cast(view.kind)), helper=True)
        self.cover(m, "back_to_back_vectors", hs & s.payload.last & v.valid)
