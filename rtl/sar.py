"""Successive-approximation ADC controllers (the digital half of the column ADCs)."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SarController"]


class SarController(wiring.Component):
    """A bank of ``n_adc`` SAR controllers stepping in lockstep.

    A conversion takes ``bits`` cycles. In each, the trial code of ADC a (offset binary:
    the bits decided so far with the bit under test set) is presented on ``trial`` with
    ``sample`` high; the comparator answer ``cmp[a]`` (1: input >= trial level) is
    sampled at the next rising edge and keeps or drops that bit.

    Attributes
    ----------
    start : In(1)
        Begin a conversion in the next cycle. May be asserted in the cycle ``done`` is high
        to convert back to back.
    cmp : In(n_adc)
        Comparator decisions for the trials presented this cycle.
    trial : Out(n_adc * bits)
        Trial codes, ADC a at bits ``[a*bits, (a+1)*bits)``; a function of registers only.
    sample : Out(1)
        A comparison is requested this cycle.
    done : Out(1)
        This is the last step of a conversion: ``result`` is valid now.
    result : Out(n_adc * bits)
        Offset-binary codes including this cycle's decision; valid while ``done``.

    Parameters
    ----------
    n_adc : int
        Number of ADCs, at least 1.
    bits : int
        Resolution, 1..16.

    Raises
    ------
    ValueError
        ``n_adc`` or ``bits`` out of range.
    """

    def __init__(self, n_adc: int, bits: int):
        if not isinstance(n_adc, int) or n_adc < 1:
            raise ValueError(f"SarController n_adc must be a positive integer, not {n_adc!r}")
        if not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ValueError(f"SarController bits must be an integer in 1..16, not {bits!r}")
        self.n_adc, self.bits = n_adc, bits
        super().__init__({
            "start": In(1),
            "cmp": In(n_adc),
            "trial": Out(n_adc * bits),
            "sample": Out(1),
            "done": Out(1),
            "result": Out(n_adc * bits),
        })

    def elaborate(self, platform):
        m = Module()
        n, bits = self.n_adc, self.bits
        mask = Signal(bits)  # one-hot: the bit under test; 0 when idle
        code = Signal(data.ArrayLayout(bits, n))
        decided = [code[a] | Mux(self.cmp[a], mask, 0) for a in range(n)]

        m.d.comb += [
            self.sample.eq(mask.any()),
            self.done.eq(mask[0]),
            self.trial.eq(Cat(*(code[a] | mask for a in range(n)))),
            self.result.eq(Cat(*decided)),
        ]
        with m.If(self.start):
            m.d.sync += [mask.eq(1 << (bits - 1)), code.eq(0)]
        with m.Elif(self.sample):
            m.d.sync += [mask.eq(mask >> 1)] + [code[a].eq(decided[a]) for a in range(n)]
        return m
