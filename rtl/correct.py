"""Per-column correction of result beats: offset, gain and global drift scale in fixed point."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import CorrectMode, ResultKind
from ..fixedpoint import (
    DRIFT_BITS,
    DRIFT_FRAC,
    GAIN_BITS,
    GAIN_FRAC,
    OFF_FRAC,
    RESULT_FRAC,
    CalFormat,
)
from .engine import beat_lanes, result_beat

__all__ = ["Corrector", "LATENCY", "coef_words", "product"]


def coef_words(cfg: TileConfig) -> int:
    """Words of the coefficient memories: one per beat of a forward result, then (training
    tiles) one per beat of a backward result."""
    return cfg.out_beats + (cfg.back_beats if cfg.training else 0)

def product(a, b):
    """Each of the corrector's products (per lane, ``gain * drift`` and ``diff * g_eff``):
    a function of its own so that the formal proof can stand in for the multipliers
    (``formal/datapath.py``, :func:`~aimc.formal.datapath.uninterpreted_products`)."""
    return a * b


#: Pipeline stages of the corrector: cycles from a beat's acceptance to its leaving.
LATENCY = 4


class Corrector(wiring.Component):
    """Applies ``aimc.fixedpoint.CalFormat.correct`` to every lane of a result stream.

    A four-stage pipeline that takes one beat (``lanes`` results) per cycle, so it adds
    four cycles of latency and never slows the stream. Stage 1 holds the raw beat while
    the coefficient memories (synchronous read ports driven by ``coef_addr``/``coef_en``)
    return that beat's offsets and gains; stage 2 forms ``diff`` and ``g_eff``; stage 3
    multiplies; stage 4 rounds, clamps and marks the clamped lanes (counted as the beat
    leaves, in ``saturated``). All stages advance together when the output is free.

    Attributes
    ----------
    sink : In(stream.Signature(result_beat))
        Raw result beats (integers in each lane, ``last`` on the last beat of a vector).
    source : Out(stream.Signature(result_beat))
        The same beats with ``RESULT_FRAC`` fractional bits, corrected or raw as ``mode``
        says; padding lanes stay zero.
    mode : In(CorrectMode)
        Taken with each beat.
    drift : In(16)
        Global drift scale, unsigned Q2.14.
    coef_addr, coef_en : Out
        Word address (the beat index within the vector) and enable of the coefficient
        read ports; ``offset`` and ``gain`` are their data, one cycle later.
    saturated : Out
        Number of lanes clamped in the beat leaving this cycle.
    idle : Out(1)
        No beat inside the pipeline.
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg, self.fmt = cfg, CalFormat(cfg)
        super().__init__({
            "sink": In(stream.Signature(result_beat(cfg))),
            "source": Out(stream.Signature(result_beat(cfg))),
            "mode": In(CorrectMode),
            "drift": In(DRIFT_BITS),
            "coef_addr": Out(range(max(coef_words(cfg), 2))),
            "coef_en": Out(1),
            "offset": In(data.ArrayLayout(signed(self.fmt.off_bits), cfg.lanes)),
            "gain": In(data.ArrayLayout(unsigned(GAIN_BITS), cfg.lanes)),
            "saturated": Out(range(cfg.lanes + 1)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.cfg, self.fmt
        lanes, rb, ob = cfg.lanes, fmt.raw_bits, fmt.out_bits
        sink, source = self.sink, self.source
        shift = OFF_FRAC + GAIN_FRAC - RESULT_FRAC
        lo, hi = -(1 << (ob - 1)), (1 << (ob - 1)) - 1

        valid = Signal(LATENCY)
        last = Signal(LATENCY)
        kinds = [Signal(ResultKind, name=f"kind{i + 1}") for i in range(LATENCY)]
        advance = Signal()
        beat = Signal(range(max(cfg.out_beats, cfg.back_beats if cfg.training else 0, 2)))
        # Backward results use the row coefficients, after the columns' words.
        backward = (sink.payload.kind == ResultKind.BACKWARD) if cfg.training else Const(0)
        m.d.comb += [
            advance.eq(~valid[-1] | source.ready),
            sink.ready.eq(advance),
            self.coef_addr.eq(beat + Mux(backward, cfg.out_beats, 0)),
            self.coef_en.eq(advance),
            self.idle.eq(~valid.any()),
        ]
        with m.If(sink.valid & sink.ready):
            m.d.sync += beat.eq(Mux(sink.payload.last, 0, beat + 1))

        lane_ok1 = Signal(lanes)
        beat1 = Signal.like(beat)
        mode1 = Signal(CorrectMode)
        drift1 = Signal(DRIFT_BITS)
        raw1 = Signal(data.ArrayLayout(signed(rb), lanes))
        diff2 = Signal(data.ArrayLayout(signed(fmt.diff_bits), lanes))
        geff2 = Signal(data.ArrayLayout(unsigned(fmt.geff_bits), lanes))
        raw2 = Signal(data.ArrayLayout(signed(rb), lanes))
        ok2 = Signal(lanes)
        mode2 = Signal(CorrectMode)
        prod3 = Signal(data.ArrayLayout(signed(fmt.diff_bits + fmt.geff_bits + 1), lanes))
        raw3 = Signal(data.ArrayLayout(signed(rb), lanes))
        ok3 = Signal(lanes)
        mode3 = Signal(CorrectMode)
        out4 = Signal(beat_lanes(cfg))
        sat4 = Signal(lanes)  # the clamped lanes of the beat in stage 4

        with m.If(advance):
            m.d.sync += [valid.eq(Cat(sink.valid, valid[:-1])),
                         last.eq(Cat(sink.payload.last, last[:-1])),
                         kinds[0].eq(sink.payload.kind),
                         *(kinds[i].eq(kinds[i - 1]) for i in range(1, LATENCY))]
            # Stage 1: the raw beat; its coefficients arrive from the memories meanwhile. The
            # mode and the drift operand are registered with it (off the multiplier's path).
            m.d.sync += [beat1.eq(beat), mode1.eq(self.mode),
                         drift1.eq(Mux(self.mode == CorrectMode.CORRECT, self.drift,
                                       Const(1 << DRIFT_FRAC, DRIFT_BITS)))]
            for j in range(lanes):
                m.d.sync += raw1[j].eq(sink.payload.data[j])
            # Stage 2: diff = (raw << OFF_FRAC) - offset; g_eff = gain * drift, rounded.
            for j in range(lanes):
                m.d.sync += [
                    diff2[j].eq((raw1[j] << OFF_FRAC) - self.offset[j]),
                    geff2[j].eq((product(self.gain[j], drift1) + (1 << (DRIFT_FRAC - 1)))
                                 >> DRIFT_FRAC),
                    raw2[j].eq(raw1[j]),
                ]
            m.d.sync += [ok2.eq(lane_ok1), mode2.eq(mode1)]
            # Stage 3: the product.
            for j in range(lanes):
                m.d.sync += [prod3[j].eq(product(diff2[j], geff2[j])), raw3[j].eq(raw2[j])]
            m.d.sync += [ok3.eq(ok2), mode3.eq(mode2)]
            # Stage 4: round, clamp, sign-extend (the element assignment does); mark the
            # clamped lanes (counted at the output, off the product's path).
            sat_bits = []
            raw_mode = mode3 == CorrectMode.RAW
            half = 1 << (shift - 1)
            for j in range(lanes):
                full = (prod3[j] + half) >> shift
                # The clamp's comparisons on the product itself, beside the rounding adder
                # rather than after it: (p + half) >> shift < lo exactly when
                # p < (lo << shift) - half, and > hi when p >= ((hi + 1) << shift) - half.
                below = prod3[j] < (lo << shift) - half
                above = prod3[j] >= ((hi + 1) << shift) - half
                clamped = Mux(below, lo, Mux(above, hi, full))
                value = Mux(raw_mode, raw3[j] << RESULT_FRAC, clamped)
                m.d.sync += out4[j].eq(Mux(ok3[j], value[:ob].as_signed(), 0))
                sat_bits.append(ok3[j] & ~raw_mode & (below | above))
            m.d.sync += sat4.eq(Cat(sat_bits))
        # Which lanes hold a column (or a row, backward): the last beat may be padded.
        length = (Mux(kinds[0] == ResultKind.BACKWARD, cfg.rows, cfg.cols) if cfg.training
                  else cfg.cols)
        for j in range(lanes):
            m.d.comb += lane_ok1[j].eq(beat1 * lanes + j < length)
        m.d.comb += [
            source.valid.eq(valid[-1]),
            source.payload.last.eq(last[-1]),
            source.payload.kind.eq(kinds[-1]),
            source.payload.data.eq(out4),
            self.saturated.eq(Mux(source.valid & source.ready, sum(sat4), 0)),
        ]
        return m

