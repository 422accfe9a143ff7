"""Datapath equivalence: the SAR controllers, the sequential divider and square root, and the
corrector's pipeline, each against its specification, for every input."""

from __future__ import annotations

import operator
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

from amaranth import Cat, Const, Mux, Signal, Value, signed
from amaranth.asserts import AnySeq
from amaranth.hdl import Assume
from amaranth.lib import data

from .. import fixedpoint as _fixedpoint
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
from ..rtl import correct as _correct
from ..rtl.correct import LATENCY, Corrector, coef_words
from ..rtl.divider import SequentialDivider
from ..rtl.engine import beat_lanes
from ..rtl.sar import SarController
from ..rtl.sqrt import SequentialSqrt
from .harness import Harness, driven, free, frozen

__all__ = ["NARROW_WIDTHS", "TILE_WIDTHS", "CoefWidths", "CorrectorHarness", "DividerHarness",
           "Products", "SarHarness", "SqrtHarness", "check_widths", "coefficient_widths",
           "correct_spec", "diff_spec", "finish_spec", "geff_spec", "uninterpreted_products"]


# -- mutants (subclasses that change one thing after the original elaborate) ----------------

class _SarSkipStep(SarController):
    """Skips the step after the most significant one: one bit is never decided."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        mask = driven(m, "mask")
        with m.If(~self.start & mask[self.bits - 1]):
            m.d.sync += mask.eq(mask >> 2)
        return m


class _SarStaleCode(SarController):
    """Does not clear the code at a start: a conversion begins from the previous code."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        code = driven(m, "code")
        with m.If(self.start):
            m.d.sync += code.eq(code)
        return m


class SarHarness(Harness):
    """:class:`~aimc.rtl.sar.SarController` with free comparator answers and free starts.

    The reference follows each conversion bit by bit: step ``i`` (1 .. ``bits``) tests the
    bit of weight ``2**(bits - i)`` on top of the bits decided so far, and the answer of
    that step decides it.
    """

    mutations = {
        "skip_step": "the SAR skips its second step (one bit undecided, one step short)",
        "stale_code": "a start does not clear the code of the previous conversion",
    }

    def __init__(self, n_adc=2, bits=4, **kwargs):
        super().__init__(**kwargs)
        self.n_adc, self.bits = n_adc, bits

    @property
    def name(self):  # one prefix per configuration: the harness runs at several
        return f"sar{self.n_adc}x{self.bits}"

    def build(self, m):
        n, bits = self.n_adc, self.bits
        cls = {None: SarController, "skip_step": _SarSkipStep,
               "stale_code": _SarStaleCode}[self.mutation]
        m.submodules.dut = dut = cls(n, bits)
        start, cmp = free(m, 1, "start"), free(m, n, "cmp")
        m.d.comb += [dut.start.eq(start), dut.cmp.eq(cmp)]

        step = Signal(range(bits + 1))   # 0: no conversion; i: the i-th step
        code = [Signal(bits, name=f"ref_code{a}") for a in range(n)]
        weight = Signal(bits)
        top = Const(1 << (bits - 1), bits)
        m.d.comb += weight.eq(Mux(step == 0, 0, top >> (step - 1)[:len(step)]))
        with m.If(start):
            m.d.sync += [step.eq(1)] + [c.eq(0) for c in code]
        with m.Elif(step != 0):
            m.d.sync += [step.eq(Mux(step == bits, 0, step + 1))]
            m.d.sync += [code[a].eq(code[a] | Mux(cmp[a], weight, 0)) for a in range(n)]

        self.prop(m, "sample_while_converting", dut.sample == (step != 0))
        self.prop(m, "done_after_bits_steps", dut.done == (step == bits))
        trials = [dut.trial[a * bits:(a + 1) * bits] for a in range(n)]
        results = [dut.result[a * bits:(a + 1) * bits] for a in range(n)]
        with m.If(step != 0):
            self.prop(m, "trial_is_search_step",
                      Cat(*(t == (c | weight) for t, c in zip(trials, code, strict=True))).all())
        with m.If(dut.done):
            self.prop(m, "result_is_binary_search_code",
                      Cat(*(r == (c | Mux(cmp[a], weight, 0))
                            for a, (r, c) in enumerate(zip(results, code, strict=True)))).all())
        # An ideal comparator (answer 1 iff the held input reaches the trial code) makes the
        # search end at the input: the code of the conversion is the input itself.
        level = [frozen(m, bits, f"level{a}") for a in range(n)]
        ideal = Signal()
        with m.If(start):
            m.d.sync += ideal.eq(1)
        with m.If((step != 0) & (cmp != Cat(*(lv >= t for lv, t in zip(level, trials,
                                                                       strict=True))))):
            m.d.sync += ideal.eq(0)
        ideal_now = ideal & (cmp == Cat(*(lv >= t for lv, t in zip(level, trials, strict=True))))
        with m.If(dut.done & ideal_now & ~start):
            self.prop(m, "ideal_comparator_finds_input",
                      Cat(*(r == lv for r, lv in zip(results, level, strict=True))).all())
        self.cover(m, "back_to_back", dut.done & start)
        self.cover(m, "full_scale", dut.done & (results[0] == (1 << bits) - 1))


def _track_latency(harness: Harness, m, dut, start, latency: int, loads):
    """The harness's count of a sequential unit's operation (the divider, the square root):
    ``left``, the cycles until ``done`` from the cycle a ``start`` is accepted (``latency``;
    0: idle), and ``valid``, the outputs hold a finished operation; ``loads`` latch the
    operands when it is accepted. States the latency properties, which are also the
    invariants the other properties' induction rests on."""
    left = Signal(range(latency + 1))
    valid = Signal()
    with m.If(start & ~dut.busy):
        m.d.sync += [*loads, left.eq(latency), valid.eq(0)]
    with m.Elif(left != 0):
        m.d.sync += left.eq(left - 1)
        with m.If(left == 1):
            m.d.sync += valid.eq(1)
    harness.prop(m, "busy_until_done", dut.busy == (left > 1), helper=True)
    harness.prop(m, "done_after_latency", dut.done == (left == 1), helper=True)
    # The counter's width holds values no operation reaches; this keeps the induction out
    # of them.
    harness.prop(m, "harness_count", left <= latency, helper=True)
    return left, valid


class _DivSkipOverflow(SequentialDivider):
    """The check step does not record an overflow: a quotient too wide wraps."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        count, ovf = driven(m, "count"), driven(m, "ovf")
        with m.If(~self.start & (count == self.quotient_width + 2)):
            m.d.sync += ovf.eq(ovf)
        return m


class _DivNoRestore(SequentialDivider):
    """Keeps the difference even when the trial subtraction borrows (a non-restoring bug)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        count, rem = driven(m, "count"), driven(m, "rem")
        divisor, shift = driven(m, "divisor"), driven(m, "shift")
        trial = Cat(shift[-1], rem)
        with m.If(~self.start & (count > 1)):
            m.d.sync += rem.eq((trial - divisor)[:self.divisor_width])
        return m


class DividerHarness(Harness):
    """:class:`~aimc.rtl.divider.SequentialDivider` against :func:`~aimc.rtl.divider.divide`:
    for every dividend and divisor, ``done`` comes ``quotient_width + 2`` cycles after the
    accepted start, and the quotient ``q`` and overflow flag satisfy ``q * d <= n < (q + 1)
    * d`` (the remainder ``n - q d`` lies in ``[0, d)``) when the quotient fits, and
    ``q = 2**qw - 1`` with the flag set exactly when it does not (``d = 0`` included)."""

    mutations = {
        "skip_overflow": "the check step never sets the overflow flag",
        "no_restore": "the partial remainder is not restored after a failed subtraction",
    }

    def __init__(self, dividend_width=8, divisor_width=4, quotient_width=4, **kwargs):
        super().__init__(**kwargs)
        self.widths = (dividend_width, divisor_width, quotient_width)

    @property
    def name(self):  # one prefix per width set: the harness runs at several
        return "div{}_{}_{}".format(*self.widths)

    def build(self, m):
        nw, dw, qw = self.widths
        cls = {None: SequentialDivider, "skip_overflow": _DivSkipOverflow,
               "no_restore": _DivNoRestore}[self.mutation]
        m.submodules.dut = dut = cls(nw, dw, qw)
        start = free(m, 1, "start")
        m.d.comb += [dut.start.eq(start), dut.dividend.eq(free(m, nw, "n_in")),
                     dut.divisor.eq(free(m, dw, "d_in"))]
        n, d = Signal(nw), Signal(dw)
        left, valid = _track_latency(self, m, dut, start, qw + 2,
                                     [n.eq(dut.dividend), d.eq(dut.divisor)])
        fits = (d != 0) & (n < (d << qw))
        q = dut.quotient
        with m.If(dut.done | (valid & ~dut.busy & (left == 0))):
            self.prop(m, "overflow_iff_too_wide", dut.overflow == ~fits)
            with m.If(fits):
                self.prop(m, "quotient_and_remainder", (q * d <= n) & (n - q * d < d))
            with m.Else():
                self.prop(m, "overflow_all_ones", q == (1 << qw) - 1)
        self.cover(m, "exact_division", dut.done & fits & (q * d == n) & (q != 0))
        self.cover(m, "overflow", dut.done & ~fits)


class _SqrtDropBit(SequentialSqrt):
    """Clears the last root bit."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        count = driven(m, "count")
        with m.If(~self.start & (count == 2)):
            m.d.sync += self.root.eq(Cat(0, self.root[:-1]))
        return m


class SqrtHarness(Harness):
    """:class:`~aimc.rtl.sqrt.SequentialSqrt`: for every radicand ``x``, ``done`` comes
    ``root_width + 1`` cycles after the accepted start with ``r**2 <= x < (r + 1)**2``."""

    mutations = {"drop_bit": "the last root bit is forced to 0"}

    def __init__(self, root_width=4, **kwargs):
        super().__init__(**kwargs)
        self.root_width = root_width

    @property
    def name(self):
        return f"sqrt{self.root_width}"

    def build(self, m):
        n = self.root_width
        cls = {None: SequentialSqrt, "drop_bit": _SqrtDropBit}[self.mutation]
        m.submodules.dut = dut = cls(n)
        start = free(m, 1, "start")
        m.d.comb += [dut.start.eq(start), dut.radicand.eq(free(m, 2 * n, "x_in"))]
        x = Signal(2 * n)
        left, valid = _track_latency(self, m, dut, start, n + 1, [x.eq(dut.radicand)])
        r = dut.root
        with m.If(dut.done | (valid & (left == 0) & ~dut.busy)):
            self.prop(m, "root_is_floor_sqrt", (r * r <= x) & (x < (r + 1) * (r + 1)))
        self.cover(m, "perfect_square", dut.done & (r * r == x) & (r > 1))


# -- the corrector ----------------------------------------------------------------------------

class CoefWidths(NamedTuple):
    """Widths of the corrector's coefficients: the gain and the drift scale, and their
    fractional bits. The tile's are :data:`TILE_WIDTHS` (Q2.14, 16 bits each)."""

    gain_bits: int
    gain_frac: int
    drift_bits: int
    drift_frac: int


TILE_WIDTHS = CoefWidths(GAIN_BITS, GAIN_FRAC, DRIFT_BITS, DRIFT_FRAC)
#: Narrow coefficients (unsigned Q2.4 gain and drift scale), for the check with the
#: multipliers themselves (``exact_products``); the RTL is the same text at either width
#: (see :func:`coefficient_widths`).
NARROW_WIDTHS = CoefWidths(6, 4, 6, 4)


@contextmanager
def coefficient_widths(w: CoefWidths):
    """Build the corrector with other coefficient widths: its code reads them from the
    constants of :mod:`aimc.fixedpoint` (imported into :mod:`aimc.rtl.correct`), which this
    sets for the duration of the block and restores after. Every width in the corrector
    follows from them (``CalFormat.geff_bits`` too), so the same RTL text is checked."""
    names = ("GAIN_BITS", "GAIN_FRAC", "DRIFT_BITS", "DRIFT_FRAC")
    saved = [{n: getattr(mod, n) for n in names} for mod in (_fixedpoint, _correct)]
    try:
        for mod in (_fixedpoint, _correct):
            for n, v in zip(names, w, strict=True):
                setattr(mod, n, v)
        yield
    finally:
        for mod, values in zip((_fixedpoint, _correct), saved, strict=True):
            for n, v in values.items():
                setattr(mod, n, v)


class Products:
    """Multiplications as an uninterpreted function of integers.

    Each product the corrector (:func:`aimc.rtl.correct.product`, while
    :func:`uninterpreted_products` is in force) or the specification (:meth:`spec`) forms
    becomes a signal of the product's shape that takes any value in every cycle; the only
    fact kept of multiplication is that it is a function, and commutative: :meth:`constrain`
    assumes, in every cycle and for every pair of a corrector product and a specification
    product, that equal operands (in either order) give equal results (Ackermann's
    reduction). Multiplication satisfies every such assumption, so what is proved with
    them holds for it; the solver never meets a multiplier.
    """

    def __init__(self):
        self.rtl: list[tuple[Value, Value, Signal]] = []
        self.spec_uses: list[tuple[Value, Value, Signal]] = []

    @staticmethod
    def _use(into, a, b, name):
        a, b = Value.cast(a), Value.cast(b)
        u = Signal((a * b).shape(), name=f"{name}{len(into)}")
        into.append((a, b, u))
        return u

    def corrector(self, a, b):
        return self._use(self.rtl, a, b, "rtl_product")

    def spec(self, a, b):
        return self._use(self.spec_uses, a, b, "spec_product")

    def constrain(self, m, linked=True):
        """Drive every product with a free value and, if ``linked``, add the assumptions."""
        for _, _, u in self.rtl + self.spec_uses:
            m.d.comb += u.eq(AnySeq(u.shape()))
        for a, b, u in self.rtl if linked else ():
            for c, d, v in self.spec_uses:
                same = ((a == c) & (b == d)) | ((a == d) & (b == c))
                m.d.comb += Assume(~same | (u == v))


@contextmanager
def corrector_products(fn):
    """Build the corrector with ``fn(a, b)`` forming its products."""
    saved = _correct.product
    _correct.product = fn
    try:
        yield
    finally:
        _correct.product = saved


def uninterpreted_products(products: Products):
    """Build the corrector with its products taken from ``products`` (see
    :class:`Products`)."""
    return corrector_products(products.corrector)


def _unsigned_product(a, b):
    """A multiplication that ignores the sign of its first operand (the mutant
    ``unsigned_product``)."""
    return a.as_unsigned() * b


def geff_bits(w: CoefWidths) -> int:
    return w.gain_bits + w.drift_bits - w.drift_frac


def correct_spec(raw, offset, gain, drift, out_bits, w: CoefWidths = TILE_WIDTHS,
                 mul=operator.mul):
    """:meth:`aimc.fixedpoint.CalFormat.correct` for one lane as an Amaranth expression: the
    corrected value (``RESULT_FRAC`` fractional bits) and whether it was clamped.

    The arithmetic is exact: Amaranth widens every sum and product, and the one narrowing,
    ``g_eff`` to ``geff_bits``, drops only bits that are always zero (:func:`check_widths`).
    ``mul`` forms the two products (:meth:`Products.spec` in the proof at the tile's
    widths). ``tests/test_formal.py`` checks this transcription against
    ``CalFormat.correct``."""
    return finish_spec(mul(diff_spec(raw, offset), geff_spec(gain, drift, w, mul)), out_bits, w)


def diff_spec(raw, offset):
    """``diff = raw * 2**OFF_FRAC - offset``."""
    return (raw << OFF_FRAC) - offset


def geff_spec(gain, drift, w: CoefWidths = TILE_WIDTHS, mul=operator.mul):
    """``g_eff = (gain * drift + 2**(drift_frac-1)) >> drift_frac`` in ``geff_bits``."""
    return ((mul(gain, drift) + (1 << (w.drift_frac - 1))) >> w.drift_frac)[:geff_bits(w)]


def finish_spec(prod, out_bits, w: CoefWidths = TILE_WIDTHS):
    """The product ``diff * g_eff`` rounded half up to ``RESULT_FRAC`` fractional bits and
    clamped to ``out_bits``: the value and whether it was clamped."""
    s = OFF_FRAC + w.gain_frac - RESULT_FRAC
    value = (prod + (1 << (s - 1))) >> s
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    return Mux(value < lo, lo, Mux(value > hi, hi, value)), (value < lo) | (value > hi)


def check_widths(w: CoefWidths = TILE_WIDTHS):
    """``g_eff`` of the largest gain and drift fits ``geff_bits`` (it is monotonic in
    both), so the corrector's narrowing drops no bit the specification keeps.

    Raises
    ------
    ValueError
        It does not fit.
    """
    top = ((2**w.gain_bits - 1) * (2**w.drift_bits - 1) + (1 << (w.drift_frac - 1))) \
        >> w.drift_frac
    if top >= 1 << geff_bits(w):
        raise ValueError(f"g_eff needs {top.bit_length()} bits, not {geff_bits(w)}")


class _CorrNoDrift(Corrector):
    """Ignores the drift scale in CORRECT mode."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(driven(m, "advance")):
            m.d.sync += driven(m, "drift1").eq(1 << _correct.DRIFT_FRAC)
        return m


class _CorrModeSkew(Corrector):
    """Stage 2 takes the mode of the beat entering stage 1, not of the beat in stage 1."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(driven(m, "advance")):
            m.d.sync += driven(m, "mode2").eq(self.mode)
        return m


class _CorrRoundDown(Corrector):
    """Rounds the product down (drops the half added before the shift)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        fmt = self.fmt
        shift = OFF_FRAC + _correct.GAIN_FRAC - RESULT_FRAC
        lo, hi = -(1 << (fmt.out_bits - 1)), (1 << (fmt.out_bits - 1)) - 1
        lanes = self.cfg.lanes
        prod3 = driven(m, "prod3", data.ArrayLayout(signed(fmt.diff_bits + fmt.geff_bits + 1),
                                                    lanes))
        out4 = driven(m, "out4", beat_lanes(self.cfg))
        ok3, mode3 = driven(m, "ok3"), driven(m, "mode3")
        with m.If(driven(m, "advance") & (mode3 != CorrectMode.RAW)):
            for j in range(self.cfg.lanes):
                full = prod3[j] >> shift
                clamped = Mux(full < lo, lo, Mux(full > hi, hi, full))
                m.d.sync += out4[j].eq(Mux(ok3[j], clamped[:fmt.out_bits].as_signed(), 0))
        return m


class _CorrCrossedLanes(Corrector):
    """Multiplies each lane's difference by the next lane's effective gain."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        fmt, lanes = self.fmt, self.cfg.lanes
        diff2 = driven(m, "diff2", data.ArrayLayout(signed(fmt.diff_bits), lanes))
        geff2 = driven(m, "geff2", data.ArrayLayout(fmt.geff_bits, lanes))
        prod3 = driven(m, "prod3", data.ArrayLayout(signed(fmt.diff_bits + fmt.geff_bits + 1),
                                                    lanes))
        with m.If(driven(m, "advance")):
            m.d.sync += [prod3[j].eq(_correct.product(diff2[j], geff2[(j + 1) % lanes]))
                         for j in range(lanes)]
        return m


class CorrectorHarness(Harness):
    """:class:`~aimc.rtl.correct.Corrector` against :meth:`CalFormat.correct
    <aimc.fixedpoint.CalFormat.correct>`, for every raw result, offset, gain, drift scale,
    mode and stall pattern.

    The coefficient memories are modelled as the tile has them (a synchronous read port
    per memory, enabled by ``coef_en``), holding arbitrary contents that do not change
    during the check (host or engine writes in flight are not covered). A shadow pipeline
    in the harness carries each accepted beat's inputs (raw lanes, its coefficients, mode,
    drift, which lanes hold a column) and advances with ``sink.ready``; it evaluates the
    specification on the way, each product in the cycle the corrector forms it (``g_eff``
    as the beat leaves stage 1, ``diff * g_eff`` as it leaves stage 2), and the beat
    leaving must be the specification's result.

    With ``exact_products`` false (the default) the multiplications are uninterpreted
    (:class:`Products`): the proof shows that every product the corrector forms has the
    specification's operands and that everything around the products (alignment of the
    beats and their coefficients, stalls, modes, padding, the widths, rounding, clamping,
    the saturation count) is exact, at the tile's coefficient widths; that the product
    cell multiplies is the netlist's semantics (a ``$mul`` as wide as its result), not
    checked here. With ``exact_products`` the multipliers stay: the ``corr_exact`` job checks
    that to a bound, the first beats through the pipeline (k-induction does not close).
    """

    mutations = {
        "no_drift": "the drift scale is ignored in CORRECT mode",
        "mode_skew": "stage 2 takes the mode of the wrong beat",
        "round_down": "the product is rounded down instead of half up",
        "crossed_lanes": "each lane's difference is multiplied by the next lane's gain",
        "unlinked_products": "the assumption is dropped that equal operands give equal "
                             "products (an assumption weakened, not the design)",
        "unsigned_product": "the products ignore the sign of the difference (a multiplier "
                            "wrong for negative operands)",
    }
    helpers_in_mutants = False  # the stage invariants name the corrector's registers

    def __init__(self, cfg=None, widths=TILE_WIDTHS, exact_products=False, **kwargs):
        super().__init__(**kwargs)
        self.cfg = (cfg if cfg is not None
                    else TileConfig(rows=3, cols=3, lanes=2, training=True))
        self.widths = widths
        self.exact_products = exact_products
        check_widths(widths)

    @property
    def name(self):  # the job keys: corr (training tile), corr_inf; other widths named
        w, cfg = self.widths, self.cfg
        name = "corr" + ("" if cfg.training else "_inf")
        if w != TILE_WIDTHS:
            name += f"_g{w.gain_bits}q{w.gain_frac}_d{w.drift_bits}q{w.drift_frac}"
        return name + ("_exact" if self.exact_products else "")

    def build(self, m):
        products = Products()
        # The mutant changes the multiplication itself, which the uninterpreted products
        # replace: only the check with the multipliers (corr_exact) can catch it.
        wrong = (corrector_products(_unsigned_product) if self.mutation == "unsigned_product"
                 else nullcontext())
        with coefficient_widths(self.widths), wrong:
            if self.exact_products:
                self._build(m, operator.mul)
            else:
                with uninterpreted_products(products):
                    self._build(m, products.spec)
                # Two products per lane (a mutant may form more); fewer would mean a
                # multiplication the abstraction does not see.
                if len(products.rtl) < 2 * self.cfg.lanes:
                    raise RuntimeError(
                        f"the corrector formed {len(products.rtl)} products through "
                        f"aimc.rtl.correct.product, not {2 * self.cfg.lanes} (two per lane)")
                products.constrain(m, linked=self.mutation != "unlinked_products")

    def _build(self, m, mul):
        cfg, w = self.cfg, self.widths
        fmt = CalFormat(cfg)
        lanes, rb = cfg.lanes, fmt.raw_bits
        words = max(coef_words(cfg), 2)
        cls = {"no_drift": _CorrNoDrift, "mode_skew": _CorrModeSkew, "round_down": _CorrRoundDown,
               "crossed_lanes": _CorrCrossedLanes}.get(self.mutation, Corrector)
        dut = cls(cfg)
        f = self.instance(m, dut)
        sink, source = dut.sink, dut.source

        # Inputs: raw results sign-extended from the raw width (as the packer sends them).
        raw_in = [free(m, signed(rb), f"raw_in{j}") for j in range(lanes)]
        kind_in = free(m, ResultKind, "kind_in")
        m.d.comb += [sink.valid.eq(free(m, 1, "sink_valid")),
                     sink.payload.last.eq(free(m, 1, "last_in")),
                     sink.payload.kind.eq(kind_in),
                     source.ready.eq(free(m, 1, "source_ready")),
                     dut.mode.eq(free(m, CorrectMode, "mode_in")),
                     dut.drift.eq(free(m, w.drift_bits, "drift_in"))]
        m.d.comb += [sink.payload.data[j].eq(raw_in[j]) for j in range(lanes)]
        self.assume(m, Value.cast(dut.mode) != 3)
        self.assume(m, Value.cast(kind_in) != 3)

        # Coefficient memories with fixed, arbitrary contents; synchronous read with enable.
        off_tab = [[frozen(m, signed(fmt.off_bits), f"off{k}_{j}") for j in range(lanes)]
                   for k in range(words)]
        gain_tab = [[frozen(m, w.gain_bits, f"gain{k}_{j}") for j in range(lanes)]
                    for k in range(words)]
        with m.If(dut.coef_en):
            with m.Switch(dut.coef_addr):
                for k in range(words):
                    with m.Case(k):
                        m.d.sync += [dut.offset[j].eq(off_tab[k][j]) for j in range(lanes)]
                        m.d.sync += [dut.gain[j].eq(gain_tab[k][j]) for j in range(lanes)]

        # The beat index within the vector, as the specification counts it.
        beat = Signal(range(max(cfg.out_beats, cfg.back_beats, 2)))
        with m.If(sink.valid & sink.ready):
            m.d.sync += beat.eq(Mux(sink.payload.last, 0, beat + 1))
        # Backward results (training tiles) take the rows' words, after the columns'.
        backward = (kind_in == ResultKind.BACKWARD) if cfg.training else Const(0)
        word = beat + Mux(backward, cfg.out_beats, 0)
        # Vectors framed as the packer sends them (the packer job proves it): the kind's
        # number of beats, TLAST on the last. The corrector's coefficient addresses are
        # defined for those only.
        beats = Mux(backward, cfg.back_beats, cfg.out_beats) if cfg.training else cfg.out_beats
        with m.If(sink.valid):
            self.assume(m, sink.payload.last == (beat == beats - 1))

        raw_probe, off_probe = Signal(signed(rb)), Signal(signed(fmt.off_bits))
        prod_shape = (diff_spec(raw_probe, off_probe) * Signal(geff_bits(w))).shape()

        def entry(name):
            return Signal(data.StructLayout({
                "valid": 1, "last": 1, "kind": ResultKind, "mode": CorrectMode,
                "drift": w.drift_bits, "beat": len(beat), "word": range(words),
                "raw": data.ArrayLayout(signed(rb), lanes),
                "off": data.ArrayLayout(signed(fmt.off_bits), lanes),
                "gain": data.ArrayLayout(w.gain_bits, lanes),
                "geff": data.ArrayLayout(geff_bits(w), lanes),
                "prod": data.ArrayLayout(prod_shape, lanes)}), name=name)

        new = entry("shadow_in")
        m.d.comb += [new.valid.eq(sink.valid), new.last.eq(sink.payload.last),
                     new.kind.eq(kind_in), new.mode.eq(dut.mode), new.beat.eq(beat),
                     new.drift.eq(Mux(dut.mode == CorrectMode.CORRECT, dut.drift,
                                      Const(1 << w.drift_frac, w.drift_bits))),
                     ]
        m.d.comb += [new.raw[j].eq(raw_in[j]) for j in range(lanes)]
        m.d.comb += new.word.eq(word)
        stages = [entry(f"shadow{i + 1}") for i in range(LATENCY)]
        s1, s2, s3, s4 = stages
        with m.If(sink.ready):
            m.d.sync += stages[0].eq(new)
            m.d.sync += [stages[i].eq(stages[i - 1]) for i in range(1, LATENCY)]
            for j in range(lanes):
                # The coefficients join the beat as the corrector takes them: the memories'
                # read data when the beat leaves stage 1 (that this is the beat's word is
                # the stage-1 invariant below). The specification's products are formed in
                # the cycles the corrector forms its own.
                m.d.sync += [s2.off[j].eq(dut.offset[j]), s2.gain[j].eq(dut.gain[j]),
                             s2.geff[j].eq(geff_spec(dut.gain[j], s1.drift, w, mul)),
                             s3.prod[j].eq(mul(diff_spec(s2.raw[j], s2.off[j]), s2.geff[j]))]
        self.off_tab, self.gain_tab = off_tab, gain_tab

        def expected(e):
            ok = self._lanes_ok(e)
            values, sats = [], []
            for j in range(lanes):
                value, sat = finish_spec(e.prod[j], fmt.out_bits, w)
                raw_mode = e.mode == CorrectMode.RAW
                values.append(Mux(ok[j], Mux(raw_mode, e.raw[j] << RESULT_FRAC, value), 0))
                sats.append(ok[j] & ~raw_mode & sat)
            return values, Cat(*sats)

        values, sat_lanes = expected(s4)
        sats = sum(sat_lanes)
        self._sat_lanes = lambda e: expected(e)[1]
        self.prop(m, "no_beat_created_or_lost", source.valid == s4.valid, helper=True)
        with m.If(source.valid):
            self.prop(m, "output_equals_spec",
                      Cat(*(source.payload.data[j] == values[j] for j in range(lanes))).all()
                      & (source.payload.last == s4.last) & (source.payload.kind == s4.kind))
        self.prop(m, "saturation_count",
                  dut.saturated == Mux(source.valid & source.ready, sats, 0))
        self.prop(m, "one_beat_per_cycle", sink.ready == (~source.valid | source.ready))
        self.prop(m, "idle_iff_empty",
                  dut.idle == ~Cat(*(s.valid for s in stages)).any())

        # Helper invariants: each stage register of the pipeline holds what the shadow's
        # entry of that stage implies (k-induction needs them: a beat can wait in a stage
        # for any number of cycles).
        self._stage_invariants(m, dut, f, stages, beat)
        self.cover(m, "saturated_beat", source.valid & source.ready & (dut.saturated != 0))
        self.cover(m, "back_to_back_stalled",
                   Cat(*(s.valid for s in stages)).all() & ~source.ready)

    def _lanes_ok(self, e):
        """Which lanes of the shadow entry ``e`` hold a column (or a row, backward)."""
        cfg = self.cfg
        length = (Mux(e.kind == ResultKind.BACKWARD, cfg.rows, cfg.cols) if cfg.training
                  else cfg.cols)
        return Cat(*(e.beat * cfg.lanes + j < length for j in range(cfg.lanes)))

    def _stage_invariants(self, m, dut, f, stages, beat):
        lanes, fmt, w = self.cfg.lanes, CalFormat(self.cfg), self.widths

        def lanes_of(name, shape):
            return driven(f, name, data.ArrayLayout(shape, lanes))
        valid = driven(f, "valid")
        self.prop(m, "stage_valid", valid == Cat(*(s.valid for s in stages)), helper=True)
        self.prop(m, "stage_beat", driven(f, "beat") == beat, helper=True)
        # The beat counts and words of the beats inside stay within the vectors' lengths
        # (the framing assumption), so no state reads a word the memories do not have.
        cfg = self.cfg
        longest = max(cfg.out_beats, cfg.back_beats) if cfg.training else cfg.out_beats
        def in_range(s):
            backward = (s.kind == ResultKind.BACKWARD) if cfg.training else Const(0)
            return ~s.valid | ((s.beat < longest)
                               & (s.word == s.beat + Mux(backward, cfg.out_beats, 0)))
        self.prop(m, "beats_in_range",
                  (beat < longest) & Cat(*(in_range(s) for s in stages)).all(), helper=True)
        last = driven(f, "last")
        for i, s in enumerate(stages):
            with m.If(s.valid):
                self.prop(m, f"stage{i + 1}_framing",
                          (last[i] == s.last) & (driven(f, f"kind{i + 1}") == Value.cast(s.kind)),
                          helper=True)
        s4 = stages[3]
        with m.If(s4.valid):
            self.prop(m, "stage4", driven(f, "sat4") == self._sat_lanes(s4), helper=True)
        s1, s2, s3 = stages[:3]
        with m.If(s1.valid):
            self.prop(m, "stage1", (driven(f, "mode1") == Value.cast(s1.mode))
                      & (driven(f, "drift1") == s1.drift) & (driven(f, "beat1") == s1.beat)
                      & (driven(f, "kind1") == Value.cast(s1.kind))
                      & Cat(*(lanes_of("raw1", signed(fmt.raw_bits))[j] == s1.raw[j]
                              for j in range(lanes))).all(), helper=True)
            # The memories return the coefficients of the beat's word (its index in the
            # vector, after the columns' words for a backward vector).
            sel_off = Signal(data.ArrayLayout(signed(fmt.off_bits), lanes))
            sel_gain = Signal(data.ArrayLayout(w.gain_bits, lanes))
            with m.Switch(s1.word):
                for k, (offs, gains) in enumerate(zip(self.off_tab, self.gain_tab,
                                                      strict=True)):
                    with m.Case(k):
                        m.d.comb += [sel_off[j].eq(offs[j]) for j in range(lanes)]
                        m.d.comb += [sel_gain[j].eq(gains[j]) for j in range(lanes)]
            self.prop(m, "coefficients_of_the_beat",
                      (Value.cast(dut.offset) == Value.cast(sel_off))
                      & (Value.cast(dut.gain) == Value.cast(sel_gain)))
        with m.If(s2.valid):
            diff2 = lanes_of("diff2", signed(fmt.diff_bits))
            geff2 = lanes_of("geff2", fmt.geff_bits)
            self.prop(m, "stage2", (driven(f, "mode2") == Value.cast(s2.mode))
                      & (driven(f, "ok2") == self._lanes_ok(s2))
                      & Cat(*((lanes_of("raw2", signed(fmt.raw_bits))[j] == s2.raw[j])
                              & (diff2[j] == diff_spec(s2.raw[j], s2.off[j]))
                              & (geff2[j] == s2.geff[j])
                              for j in range(lanes))).all(), helper=True)
        with m.If(s3.valid):
            prod3 = lanes_of("prod3", signed(fmt.diff_bits + fmt.geff_bits + 1))
            self.prop(m, "stage3", (driven(f, "mode3") == Value.cast(s3.mode))
                      & (driven(f, "ok3") == self._lanes_ok(s3))
                      & Cat(*((lanes_of("raw3", signed(fmt.raw_bits))[j] == s3.raw[j])
                              & (prod3[j] == s3.prod[j])
                              for j in range(lanes))).all(), helper=True)
