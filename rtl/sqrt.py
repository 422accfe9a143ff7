"""Small unsigned square root for the update engine: one root bit per cycle."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SequentialSqrt"]


class SequentialSqrt(wiring.Component):
    """``root = floor(sqrt(radicand))``, digit by digit (two radicand bits per cycle, one
    subtractor of ``root_width + 2`` bits).

    ``start`` latches ``radicand`` (ignored while ``busy``); ``done`` is high for one cycle
    ``root_width + 1`` clock edges later, with ``root`` valid from then until the next
    accepted ``start``.

    Parameters
    ----------
    root_width : int
        Width of the root, at least 1; the radicand is ``2 * root_width`` bits.

    Raises
    ------
    ValueError
        ``root_width`` is not a positive integer.
    """

    def __init__(self, root_width: int):
        if isinstance(root_width, bool) or not isinstance(root_width, int) or root_width < 1:
            raise ValueError(f"SequentialSqrt root_width must be a positive integer, "
                             f"not {root_width!r}")
        self.root_width = root_width
        super().__init__({
            "start": In(1),
            "radicand": In(2 * root_width),
            "busy": Out(1),
            "done": Out(1),
            "root": Out(root_width),
        })

    @property
    def latency(self) -> int:
        """Clock edges from the one that accepts ``start`` to the ``done`` cycle."""
        return self.root_width + 1

    def elaborate(self, platform):
        m = Module()
        n = self.root_width
        count = Signal(range(n + 2))   # 0 idle, 1 done, n + 1 .. 2 the root bits
        bits = Signal(2 * n)           # radicand bits still to bring down, two per step
        rem = Signal(n + 2)
        root = self.root
        busy = count[1:].any()
        trial_rem = Cat(bits[-2:], rem[:n])     # rem * 4 + the next two bits
        trial = Cat(Signal(1, init=1), Signal(1), root)  # root * 4 + 1
        # trial_rem - trial with its borrow on top, an expression (see divider.py: the bit
        # under the borrow is never read).
        diff = trial_rem - trial
        m.d.comb += [self.busy.eq(busy), self.done.eq(count == 1)]
        fits = ~diff[-1]
        with m.If(self.start & ~busy):
            m.d.sync += [count.eq(n + 1), bits.eq(self.radicand), rem.eq(0), root.eq(0)]
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
            with m.If(busy):
                m.d.sync += [
                    rem.eq(Mux(fits, diff[:n + 2], trial_rem[:n + 2])),
                    root.eq(Cat(fits, root[:-1])),
                    bits.eq(bits << 2),
                ]
        return m
