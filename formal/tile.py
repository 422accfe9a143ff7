"""The whole tile at a small configuration, bounded: conservation of vectors and results,
and bounded liveness with a ready analogue half and a draining result stream (the readiness
timeout is proved on the sequencer alone, :mod:`aimc.formal.timeout`).

The harness drives every input port of :class:`~aimc.rtl.tile.Tile`: the analogue half's
``ready``, comparator and clamp answers free in every cycle; ``s_axis`` and ``t_axis`` free
(a manager that drops TVALID or changes TDATA mid-beat included); ``m_axis`` TREADY free;
AXI4-Lite from a protocol-correct manager (a VALID stays, with its payload, until its READY)
that writes ``CTRL`` and ``READY_TIMEOUT`` with any data and never reads. So the host can
enable and disable the tile, switch correction on and off and set any timeout while vectors
stream, but starts no engine (their runs are the engines' own jobs).

What the harness counts at the ports: ``frames`` (s_axis beats with TLAST taken), result
vectors (m_axis beats with TLAST taken, any kind but a status packet), and what the tile
itself reports as lost, read from the counters the host reads (``DROP_FRAME``,
``DROP_RANGE``, ``TIMEOUT_COUNT``; each counts one cycle after its event, as do the
harness's own counters).
"""

from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal, Value, signed

from ..config import TileConfig
from ..enums import InputKind, ResultKind
from ..rtl.correct import LATENCY as CORRECTOR_LATENCY
from ..rtl.engine import OpKind
from ..rtl.regmap import register_map
from ..rtl.tile import PORT_TO_PORT_EXTRA, Tile
from .harness import Harness, drive_inputs, driven, free, holding

__all__ = ["MAX_SKIPS", "TileHarness", "tile_buffers"]

#: The order check's bound on timeouts not yet passed over (:meth:`TileHarness._order`).
MAX_SKIPS = 2


def tile_buffers(cfg: TileConfig) -> int:
    """Vectors a tile can hold between taking a frame's TLAST and sending the last beat of
    its results: the input buffer, the operation in the sequencer (its vector in the line
    driver, then its results until the packer takes them), the packer's vector, and at most
    one per stage of the corrector's pipeline."""
    return 3 + CORRECTOR_LATENCY


_NoDropTile = holding(Tile, "drop_range_count", "A vector with an element out of range "
                      "is dropped but not counted.")


class _LateLoadTile(Tile):
    """The line driver latches the input buffer two cycles after the sequencer has taken
    the vector, when the loader, released in the take, may already hold the next one."""

    driver, load = "rowdrv", "row_load"

    def elaborate(self, platform):
        m = super().elaborate(platform)
        load = getattr(m.submodules.seq, self.load)
        late = [Signal(name=f"late_{self.load}_{i}") for i in range(2)]
        m.d.sync += [late[0].eq(load), late[1].eq(late[0])]
        m.d.comb += getattr(m.submodules, self.driver).load.eq(late[1])
        return m


class _LateColLoadTile(_LateLoadTile):
    """As :class:`_LateLoadTile`, for the column driver (backward and update vectors)."""

    driver, load = "coldrv", "col_load"


class _StaleAfterTimeoutTile(Tile):
    """After a timeout the line driver keeps its last vector: the next operation's take does
    not load it (the order check with timeouts sees the earlier vector's tag again)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        seq = m.submodules.seq
        stale = Signal(name="stale_after_timeout")
        with m.If(seq.timeout):
            m.d.sync += stale.eq(1)
        with m.Elif(seq.row_load):
            m.d.sync += stale.eq(0)
        m.d.comb += m.submodules.rowdrv.load.eq(seq.row_load & ~stale)
        return m


class _BeatsSwappedTile(Tile):
    """The line driver reads the input buffer's beats in reverse order (row ``r`` from the
    beat that holds row ``rows - 1 - r``'s lanes): a wiring error between the loader and the
    line driver that neither block's own proof sees, nor a tile with one beat per vector."""

    driver, lines, beats = "rowdrv", "rows", "in_beats"

    def elaborate(self, platform):
        m = super().elaborate(platform)
        cfg = self.cfg
        width = cfg.lanes * cfg.in_lane_width
        data = Value.cast(m.submodules.loader.vector.payload.data)
        beats = [data[b * width:(b + 1) * width] for b in range(getattr(cfg, self.beats))]
        m.d.comb += Value.cast(getattr(m.submodules, self.driver).vector).eq(
            Cat(*reversed(beats))[:getattr(cfg, self.lines) * cfg.in_lane_width])
        return m


class _ColBeatsSwappedTile(_BeatsSwappedTile):
    """As :class:`_BeatsSwappedTile`, for the column driver (backward and update vectors)."""

    driver, lines, beats = "coldrv", "cols", "out_beats"


class TileHarness(Harness):
    """See the module docstring. ``live``: the liveness assumptions (the analogue half
    always ready, m_axis TREADY high, the host's CTRL writes keep ``enable`` set); vectors
    are sent only after the first CTRL write has been answered. ``order``: the order check
    (:meth:`_order`), on a tile with PWM inputs and one line per ADC; ``timeouts``: the
    order check with ``ready`` free. ``live`` and ``order`` are separate checks."""

    name = "tile"
    mutations = {
        "no_drop_count": "a vector dropped for an element out of range is not counted",
        "ready_may_fall": "(an assumption weakened) the analogue half may drop ready",
        "late_load": "the line driver latches the input buffer two cycles after the "
                     "sequencer took the vector (the loader may hold the next one by then)",
        "late_col_load": "(training tiles) the same in the column driver, which takes "
                         "backward and update vectors",
        "queue_every_frame": "(the order check's rule weakened) every frame is queued, "
                             "those the loader must drop too",
        "stale_after_timeout": "after a timeout the line driver keeps its last vector for "
                               "the next operation",
        "beats_swapped": "(tiles of several beats per vector) the line driver reads the "
                         "input buffer's beats in reverse order",
        "col_beats_swapped": "(training tiles of several beats per vector) the same in the "
                             "column driver",
    }

    def __init__(self, cfg=None, *, live=False, order=False, timeouts=False, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(
            rows=2, cols=2, input_bits=2, adc_bits=2, lanes=2)
        if live and order:
            raise ValueError("TileHarness: live and order are separate checks; set one")
        cfg = self.cfg
        if order and (cfg.input_mode != "pwm" or cfg.cols_per_adc != 1
                      or cfg.rows_per_adc != 1):
            raise ValueError("TileHarness(order=True) needs a tile with PWM inputs and one "
                             f"line per ADC, not {cfg}")
        self.live = live
        self.order = order
        self.timeouts = timeouts

    # -- the manager of the register bus ---------------------------------------------------
    def _axil(self, m, bus, addrs):
        aw = {n: free(m, len(getattr(bus, n)), f"m_{n}") for n in ("awvalid", "awaddr")}
        w = {n: free(m, len(getattr(bus, n)), f"m_{n}") for n in ("wvalid", "wdata", "wstrb")}
        bready = free(m, 1, "m_bready")
        m.d.comb += [getattr(bus, n).eq(v) for n, v in (aw | w).items()]
        m.d.comb += [bus.bready.eq(bready), bus.arvalid.eq(0), bus.araddr.eq(0),
                     bus.rready.eq(1)]
        hold_aw = self.past(m, bus.awvalid & ~bus.awready)
        hold_w = self.past(m, bus.wvalid & ~bus.wready)
        last_aw = self.past(m, bus.awaddr)
        last_w = self.past(m, bus.wdata)
        last_s = self.past(m, bus.wstrb)
        with m.If(hold_aw):
            self.assume(m, bus.awvalid & (bus.awaddr == last_aw))
        with m.If(hold_w):
            self.assume(m, bus.wvalid & (bus.wdata == last_w) & (bus.wstrb == last_s))
        self.assume(m, (bus.awaddr == addrs[0]) | (bus.awaddr == addrs[1]))
        return w

    def build(self, m):
        cfg = self.cfg
        dut = {"no_drop_count": _NoDropTile, "late_load": _LateLoadTile,
               "late_col_load": _LateColLoadTile,
               "stale_after_timeout": _StaleAfterTimeoutTile,
               "beats_swapped": _BeatsSwappedTile,
               "col_beats_swapped": _ColBeatsSwappedTile}.get(self.mutation, Tile)(cfg)
        inner = self.instance(m, dut)
        regs = {r.name: r.offset for r in register_map(cfg)}
        timeout_writes = not self.order or self.timeouts
        w = self._axil(m, dut.s_axil, (regs["CTRL"], regs["READY_TIMEOUT"] if timeout_writes
                                       else regs["CTRL"]))
        for port in ("s_axis", "t_axis", "ana"):
            drive_inputs(m, getattr(dut, port), f"{port}_")
        tready = free(m, 1, "m_axis_tready")
        m.d.comb += dut.m_axis.tready.eq(tready)
        ana = dut.ana

        s, o = dut.s_axis, dut.m_axis
        frame_end = s.tvalid & s.tready & s.tlast
        result_end = o.tvalid & o.tready & o.tlast & (o.tuser != ResultKind.STATUS.value)

        # -- conservation --------------------------------------------------------------------
        width = 8
        frames, results = Signal(width), Signal(width)
        with m.If(frame_end):
            m.d.sync += frames.eq(frames + 1)
        with m.If(result_end):
            m.d.sync += results.eq(results + 1)
        lost = sum(driven(inner, n)[:width] for n in (
            "drop_frame_count", "drop_range_count", "timeout_count"))
        # On a training tile an update vector yields no result: it is done with once the
        # sequencer takes it (the update engine's run, or its refusal, follows).
        updates = Signal(width) if cfg.training else Const(0, width)
        if cfg.training:
            seq = inner.submodules.seq
            with m.If(seq.started & (seq.op.payload.kind == OpKind.UPDATE)):
                m.d.sync += updates.eq(updates + 1)
        in_flight = Signal(signed(width + 4))
        m.d.comb += in_flight.eq(frames - results - lost - updates)
        if self.order:
            self._order(m, dut, inner, w, frame_end, result_end)
        elif not self.live:
            bound = tile_buffers(cfg)
            self.prop(m, "results_are_frames_less_losses_and_in_flight",
                      (in_flight >= 0) & (in_flight <= bound))
            self.cover(m, "three_in_flight", in_flight == 3)

        # -- liveness ------------------------------------------------------------------------
        if self.live:
            self.assume(m, tready)
            if self.mutation != "ready_may_fall":
                self.assume(m, ana.ready)
            with m.If(dut.s_axil.wvalid & (dut.s_axil.awaddr == regs["CTRL"])):
                self.assume(m, w["wdata"][0] & w["wstrb"][0])
            enabled = Signal()
            with m.If(dut.s_axil.bvalid & dut.s_axil.bready):
                m.d.sync += enabled.eq(1)
            with m.If(~enabled):
                # The first write enables the tile; no vector before its response.
                self.assume(m, ~s.tvalid & (dut.s_axil.awaddr == regs["CTRL"]))
            # Cycles with vectors in flight since the last result left (or since the first
            # of them was taken): a result taken PORT_TO_PORT_EXTRA + mvm_period_cycles
            # cycles after its frame's TLAST has waited one cycle less.
            waited = Signal(8)
            with m.If(result_end | (in_flight == 0)):
                m.d.sync += waited.eq(0)
            with m.Elif(waited != 255):
                m.d.sync += waited.eq(waited + 1)
            limit = cfg.mvm_period_cycles + PORT_TO_PORT_EXTRA - 1
            self.prop(m, "a_result_leaves_within_the_latency_bound", waited <= limit)
            self.cover(m, "a_result_after_the_whole_bound", result_end & (waited == limit))

    def _order(self, m, dut, inner, w, frame_end, result_end):
        """Results leave in the order of their vectors, each carrying its own vector.

        The analogue half answers as a function of what the tile drives: column ``c``'s
        comparator says 1 in every SAR step of an integration in which row ``c`` was driven,
        0 otherwise, so the conversion ends at the highest code or the lowest, and the raw
        result of column ``c`` tells whether element ``c`` of the vector was nonzero. On a
        training tile the row converters answer the same way from the columns driven
        (backward MVMs). The harness queues those bits (the vector's tag, with its kind on a
        training tile) as it takes each frame, and compares every result vector that
        leaves with the queue; an update vector yields no result and is not queued.

        With ``timeouts`` ``ready`` is free and the host writes ``CTRL`` and
        ``READY_TIMEOUT`` (limits with bit 2 clear, 1 to 3 among them), so vectors are
        abandoned by timeouts too; without, ``ready`` stays high and the host writes only
        ``CTRL``. Each timeout of a forward or backward
        vector (the sequencer's timeout strobe and the kind of the operation it abandons)
        allows the harness to pass over one queued vector: a result must equal the first of
        the queue's head and the next ``skips`` entries that it matches (a greedy match,
        which finds the results to be a subsequence of the vectors whenever they are one),
        and the entries before it leave the queue. Which vector a timeout abandons is the
        sequencer's own proof (:mod:`aimc.formal.timeout`); that the tile counts each is
        conservation's. At most ``MAX_SKIPS`` passes are outstanding (an assumption that
        bounds the queue). The host never sets ``correct`` (raw results); it may disable and
        enable the tile at any time, and m_axis TREADY is free. Frames are free: the
        harness queues only those the loader's rules keep (the kind's number of beats with
        TLAST on the last, TUSER held and naming a kind of this tile, every element within
        +-x_max), so a vector dropped that should not be, or not dropped that should, fails
        the check too. A result vector matches an entry when each of its beats carries the
        entry's kind and its columns, with TLAST on the last beat the kind has."""
        cfg = self.cfg
        ana, s, o = dut.ana, dut.s_axis, dut.m_axis
        tw = min(cfg.rows, cfg.cols)
        lw, ow = cfg.in_lane_width, cfg.out_lane_width

        # -- the analogue half -----------------------------------------------------------
        sides = [(ana.row_en, ana.adc_cmp, ana.adc_sat, cfg.n_adc)]
        if cfg.training:
            sides.append((ana.col_en, ana.adc_row_cmp, ana.adc_row_sat, cfg.n_row_adc))
        if not self.timeouts:
            self.assume(m, ana.ready)
        for lines, cmp, sat, n in sides:
            seen = Signal(tw)  # line c driven since the integration began
            with m.If(ana.int_reset):
                m.d.sync += seen.eq(lines[:tw])
            with m.Else():
                m.d.sync += seen.eq(seen | lines[:tw])
            self.assume(m, (cmp[:tw] == seen) & (sat == 0))
            if n > tw:
                self.assume(m, cmp[tw:] == 0)

        # -- the vectors and the host ----------------------------------------------------
        # Frames are free (any length, kind and elements): the harness judges each on its
        # own, from the loader's documented rules, and queues only the ones the tile must
        # take; a dropped one must yield no result. Element ``beat * lanes + j`` is in lane
        # j; a forward vector has ``in_beats`` beats, the others ``out_beats``.
        lanes = [s.tdata[j * lw:(j + 1) * lw].as_signed() for j in range(cfg.lanes)]
        kinds = [InputKind.FORWARD] + ([InputKind.BACKWARD, InputKind.UPDATE]
                                       if cfg.training else [])
        most_beats = max(cfg.in_beats, cfg.out_beats if cfg.training else 1)
        multi = most_beats > 1
        beat = Signal(range(most_beats + 1))  # beats taken since the last TLAST (saturating)
        # What the frame's earlier beats said. With one beat per vector a frame the tile
        # keeps has no earlier beats: no registers then (fewer for the solver to search).
        first_kind = Signal(len(s.tuser)) if multi else Const(0, len(s.tuser))
        wrong = Signal() if multi else Const(0)  # TUSER changed, or names no kind
        bad = Signal() if multi else Const(0)  # an element out of range so far
        tag = Signal(tw) if multi else Const(0, tw)  # the elements seen nonzero so far
        kind_now = Mux(beat == 0, s.tuser, first_kind) if multi else s.tuser
        forward = kind_now == InputKind.FORWARD.value
        known = sum(s.tuser == k.value for k in kinds) == 1
        beat_wrong = Mux(beat == 0, ~known, s.tuser != first_kind)
        beat_bad = Cat(
            Mux(forward, beat * cfg.lanes + j < cfg.rows, beat * cfg.lanes + j < cfg.cols)
            & ((x > cfg.x_max) | (x < -cfg.x_max)) for j, x in enumerate(lanes)).any()
        beat_tag = Cat((beat == c // cfg.lanes) & (lanes[c % cfg.lanes] != 0)
                       for c in range(tw))
        length_ok = Mux(forward, beat == cfg.in_beats - 1, beat == cfg.out_beats - 1)
        with m.If(s.tvalid & s.tready):
            with m.If(s.tlast):
                m.d.sync += beat.eq(0)
                if multi:
                    m.d.sync += [wrong.eq(0), bad.eq(0), tag.eq(0)]
            with m.Else():
                m.d.sync += beat.eq(Mux(beat == most_beats, beat, beat + 1))
                if multi:
                    m.d.sync += [first_kind.eq(kind_now), wrong.eq(wrong | beat_wrong),
                                 bad.eq(bad | beat_bad), tag.eq(tag | beat_tag)]
        good = length_ok & ~(wrong | beat_wrong) & ~(bad | beat_bad)
        if self.mutation == "queue_every_frame":
            good = Const(1)
        with m.If(dut.s_axil.wvalid & w["wstrb"][0]):
            # CTRL.correct stays 0 (so READY_TIMEOUT's limits have bit 2 clear: 1 to 3
            # among them, the ones that end a wait within the bound).
            self.assume(m, ~w["wdata"][2])

        # -- the queue of tags (and kinds) -----------------------------------------------
        most = MAX_SKIPS if self.timeouts else 0
        depth = tile_buffers(cfg) + 1 + most
        ew = tw + 1  # an entry: the tag, then 1 for a backward vector
        queue = Signal(depth * ew)
        count = Signal(range(depth + 1))
        seq = inner.submodules.seq
        skips = Signal(range(most + 1))  # timeouts not yet passed over
        abandoned = seq.timeout & (seq.op.payload.kind != OpKind.UPDATE)
        with m.If(skips == most):
            self.assume(m, ~abandoned)
        backward = kind_now == InputKind.BACKWARD.value
        entry = Cat(tag | beat_tag, backward)
        queued = frame_end & good & (kind_now != InputKind.UPDATE.value)
        bits, frac = cfg.adc_bits, cfg.result_frac
        high, low = (2 ** (bits - 1) - 1) << frac, -(2 ** (bits - 1)) << frac
        results = [o.tdata[j * ow:(j + 1) * ow].as_signed() for j in range(cfg.lanes)]
        # Result beats (status packets aside) since the last result vector's TLAST; column
        # ``beat * lanes + j`` is in lane j, a forward result has ``out_beats`` beats, a
        # backward one ``back_beats``.
        result_beat = o.tvalid & o.tready & (o.tuser != ResultKind.STATUS.value)
        most_out = max(cfg.out_beats, cfg.back_beats if cfg.training else 1)
        obeat = Signal(range(most_out + 1))
        with m.If(result_beat):
            m.d.sync += obeat.eq(Mux(o.tlast, 0, Mux(obeat == most_out, obeat, obeat + 1)))

        def matches(e):
            """This result beat belongs to the vector of entry ``e``: its kind, its columns
            (each at the highest code where the entry's element is nonzero, else at the
            lowest), and TLAST on the vector's last beat and no other."""
            back = e[tw]
            kind = Mux(back, ResultKind.BACKWARD.value, ResultKind.FORWARD.value)
            last = Mux(back, obeat == cfg.back_beats - 1, obeat == cfg.out_beats - 1)
            columns = Cat(~(obeat == c // cfg.lanes) | (results[c % cfg.lanes]
                                                        == Mux(e[c], high, low))
                          for c in range(tw)).all()
            return columns & (o.tuser == kind) & (o.tlast == last)

        # Which entries the beats of this result vector have matched so far; at its last
        # beat, the first entry among the head and the next ``skips`` that every beat
        # matched.
        beat_hits = Cat(matches(queue.word_select(i, ew)) & (i < count)
                        for i in range(most + 1))
        upto = beat_hits
        if most_out > 1:
            sofar = Signal(most + 1)
            upto = Mux(obeat == 0, beat_hits, sofar & beat_hits)
            with m.If(result_beat):
                m.d.sync += sofar.eq(upto)
        hits = Cat(upto[i] & (i <= skips) for i in range(most + 1))
        passed = Signal(range(most + 1))  # entries passed over before it
        for i in reversed(range(most + 1)):
            with m.If(hits[i]):
                m.d.comb += passed.eq(i)
        popped = Mux(result_end, passed + 1, 0)
        matched = queue.word_select(passed, ew)
        kept = Signal(depth * ew)
        left = Signal(range(depth + 1))
        m.d.comb += [kept.eq(queue >> (popped * ew)), left.eq(count - popped)]
        pushed = Signal(depth * ew)
        m.d.comb += pushed.eq(kept)
        with m.If(queued):
            with m.Switch(left):
                for i in range(depth):
                    with m.Case(i):
                        m.d.comb += pushed.word_select(i, ew).eq(entry)
        m.d.sync += [queue.eq(pushed), count.eq(left + queued),
                     skips.eq(skips - Mux(result_end, passed, 0) + abandoned)]
        with m.If(result_end):
            self.prop(m, "no_result_without_a_vector", count != 0)
        # A vector the queue has no room for (more than the tile's buffering and the skips
        # outstanding) fails the check too: past it the queue could not vouch for order.
        self.prop(m, "results_carry_their_vectors_in_order",
                  (~result_end | hits.any()) & (~queued | (left < depth)))
        last = Signal(ew)  # the entry of the last result
        with m.If(result_end):
            m.d.sync += last.eq(matched)
        taken = Signal()
        m.d.sync += taken.eq(taken | result_end)
        self.cover(m, "results_of_two_vectors_with_different_tags",
                   result_end & taken & (matched != last) & (count > 1))
        dropped = Signal()
        with m.If(frame_end & ~good):
            m.d.sync += dropped.eq(1)
        self.cover(m, "a_result_after_a_dropped_vector", result_end & taken & dropped)
        if self.timeouts:
            self.cover(m, "a_result_past_a_timed_out_vector",
                       result_end & hits.any() & (passed != 0))
        if cfg.training:
            self.cover(m, "a_forward_result_then_a_backward_one",
                       result_end & taken & ~last[tw] & matched[tw])
