"""Small unsigned divider for the calibration engine: one quotient bit per cycle."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SequentialDivider", "divide"]


def _check_width(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"SequentialDivider {name} must be a positive integer, not {value!r}")


def divide(n: int, d: int, quotient_width: int) -> tuple[int, bool]:
    """Bit-exact reference of :class:`SequentialDivider`.

    Parameters
    ----------
    n : int
        Dividend, at least 0.
    d : int
        Divisor, at least 0.
    quotient_width : int
        Width of the quotient, at least 1.

    Returns
    -------
    q : int
        ``n // d`` if that fits ``quotient_width`` bits and ``d`` is not 0, else
        ``2**quotient_width - 1`` (all ones).
    overflow : bool
        The quotient did not fit or ``d`` is 0.

    Raises
    ------
    ValueError
        A negative or non-integer operand, or a bad ``quotient_width``.
    """
    for name, value in (("n", n), ("d", d)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"divide {name} must be a non-negative integer, not {value!r}")
    if isinstance(quotient_width, bool) or not isinstance(quotient_width, int) \
            or quotient_width < 1:
        raise ValueError(f"divide quotient_width must be a positive integer, "
                         f"not {quotient_width!r}")
    limit = 1 << quotient_width
    if d == 0 or n >= d * limit:
        return limit - 1, True
    return n // d, False


class SequentialDivider(wiring.Component):
    """Unsigned restoring divider: ``quotient = floor(dividend / divisor)``.

    One quotient bit is decided per cycle with a single ``divisor_width + 1`` bit
    subtractor, so the area is a few registers and one adder whatever the widths. The
    latency is fixed and does not depend on the operands:

    * cycle 0: ``start`` is high while ``busy`` is low; the operands are latched at the
      end of it;
    * cycles 1 .. ``quotient_width + 1``: ``busy`` is high. Cycle 1 is the overflow check
      (it decides the quotient bit of weight ``2**quotient_width``, i.e. whether
      ``dividend >> quotient_width >= divisor``); cycles 2 .. ``quotient_width + 1``
      decide the quotient bits from the most significant down;
    * cycle ``quotient_width + 2``: ``done`` is high for this one cycle, ``busy`` is low.

    So ``done`` rises ``quotient_width + 2`` clock edges after the one that accepted
    ``start``. ``start`` may be asserted again in the ``done`` cycle, which gives one
    division every ``quotient_width + 2`` cycles.

    A dividend wider than the quotient is allowed (e.g. 32 / 24 -> 16 bits): the quotient
    fits ``quotient_width`` bits exactly when ``dividend >> quotient_width < divisor``, which
    the check cycle decides before any quotient bit is produced. A zero divisor fails that
    check too, so it is reported as an overflow without a separate comparator.

    The division truncates. For rounding to nearest the caller adds ``divisor // 2`` to the
    dividend itself (the sum must still fit ``dividend_width`` bits).

    Registers: the latched divisor (``divisor_width`` bits), the partial remainder
    (``divisor_width`` bits: it is always below the divisor; the shifted trial value of
    ``divisor_width + 1`` bits is combinational), one shift register of
    ``quotient_width + 1`` bits that shifts the low dividend bits out at the top while the
    quotient bits shift in at the bottom, the overflow flag and a step counter.

    Attributes
    ----------
    start : In(1)
        Latch ``dividend`` and ``divisor`` and begin a division. Ignored while ``busy``.
    dividend : In(dividend_width)
        Unsigned dividend; sampled only in the cycle ``start`` is accepted.
    divisor : In(divisor_width)
        Unsigned divisor; sampled only in the cycle ``start`` is accepted.
    busy : Out(1)
        A division is in progress; ``start`` is ignored. Low in the ``done`` cycle.
    done : Out(1)
        High for exactly one cycle, ``quotient_width + 2`` cycles after ``start`` was
        accepted: ``quotient`` and ``overflow`` are valid now.
    quotient : Out(quotient_width)
        ``floor(dividend / divisor)``, or all ones on overflow. Valid from ``done`` until
        the next accepted ``start``; intermediate values while ``busy``. A register output.
    overflow : Out(1)
        The true quotient does not fit ``quotient_width`` bits or the divisor is 0. Valid,
        like ``quotient``, from ``done`` until the next accepted ``start``.

    Parameters
    ----------
    dividend_width : int
        Width of the dividend, at least 1.
    divisor_width : int
        Width of the divisor, at least 1.
    quotient_width : int
        Width of the quotient, at least 1.

    Raises
    ------
    ValueError
        A width that is not a positive integer.

    See Also
    --------
    divide : the bit-exact reference model.
    """

    def __init__(self, dividend_width: int, divisor_width: int, quotient_width: int):
        _check_width("dividend_width", dividend_width)
        _check_width("divisor_width", divisor_width)
        _check_width("quotient_width", quotient_width)
        self.dividend_width = dividend_width
        self.divisor_width = divisor_width
        self.quotient_width = quotient_width
        super().__init__({
            "start": In(1),
            "dividend": In(dividend_width),
            "divisor": In(divisor_width),
            "busy": Out(1),
            "done": Out(1),
            "quotient": Out(quotient_width),
            "overflow": Out(1),
        })

    @property
    def latency(self) -> int:
        """Clock edges from the one that accepts ``start`` to the ``done`` cycle."""
        return self.quotient_width + 2

    def elaborate(self, platform):
        m = Module()
        dw, qw = self.divisor_width, self.quotient_width
        n = self.dividend

        # count: 0 idle, 1 done, qw + 2 the check step, qw + 1 .. 2 the quotient bits.
        count = Signal(range(qw + 3))
        divisor = Signal(dw)
        rem = Signal(dw)
        # Low dividend bits n[qw::-1] leave at the top, quotient bits enter at the bottom.
        shift = Signal(qw + 1)
        ovf = Signal()

        busy = count[1:].any()
        first = count == qw + 2
        trial = Cat(shift[-1], rem)  # 2 * rem + next dividend bit: dw + 1 bits
        # trial - divisor (dw + 2 bits); the top bit is the borrow. An expression, not a
        # named signal: bit dw is never read (the new remainder is below the divisor), only
        # its carry, and a named signal would show it as unused bits in Verilator's lint.
        diff = trial - divisor
        fits = ~diff[-1]  # trial >= divisor

        m.d.comb += [
            self.busy.eq(busy),
            self.done.eq(count == 1),
            self.quotient.eq(shift[:qw]),
            self.overflow.eq(ovf),
        ]

        with m.If(self.start & ~busy):
            m.d.sync += [
                count.eq(qw + 2),
                divisor.eq(self.divisor),
                # n >> (qw + 1); it only fits the remainder if the bits above are all 0,
                # otherwise n >> qw >= 2**(dw + 1) > divisor and the quotient overflows.
                rem.eq(n[qw + 1:qw + 1 + dw]),
                shift.eq(n[:qw + 1]),
                ovf.eq(n[qw + 1 + dw:].any()),
            ]
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
            with m.If(busy):
                m.d.sync += [
                    rem.eq(Mux(fits, diff[:dw], trial[:dw])),
                    # On overflow every quotient bit is forced to 1 (all-ones result).
                    shift.eq(Cat(fits | ovf, shift[:-1])),
                ]
                with m.If(first):
                    m.d.sync += ovf.eq(ovf | fits)
        return m
