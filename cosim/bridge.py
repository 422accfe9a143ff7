"""The cocotb bridge between the analogue-boundary ports of the Verilog top and the model."""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge
from cocotb.types import Logic

from ..model.chip import CycleModel
from ..rtl.boundary import PREFIX

__all__ = ["AnalogueBridge"]


def _unsigned(value) -> int:
    """A port value as an unsigned integer (one-bit ports read as a ``Logic``)."""
    return int(value) if isinstance(value, Logic) else value.to_unsigned()


class AnalogueBridge:
    """Answers the RTL's analogue ports from a :class:`~aimc.model.chip.CycleModel`.

    Once per clock, at the falling edge (the RTL's registered outputs are stable then), it
    reads the ports, advances the model by one cycle and drives the comparator decisions,
    which the RTL samples at the next rising edge. A cycle with ``prog_pulse`` high applies
    a pulse step to the model's devices.
    """

    def __init__(self, dut, model: CycleModel):
        self.dut = dut
        self.model = model
        p = lambda name: getattr(dut, f"{PREFIX}__{name}")  # noqa: E731
        self._int_reset, self._row_en, self._row_neg = p("int_reset"), p("row_en"), p("row_neg")
        self._ref_en = p("ref_en")
        self._read_dev, self._read_neg = p("read_dev"), p("read_neg")
        self._pulse = p("prog_pulse")
        self._prog = {k: p("prog_" + k) for k in ("row", "neg", "set", "reset", "amp", "width")}
        self._sel, self._sample, self._trial = p("adc_sel"), p("adc_sample"), p("adc_trial")
        self._cmp = p("adc_cmp")
        self._task = None

    def start(self):
        self._cmp.value = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        model = self.model
        edge = FallingEdge(self.dut.clk)
        while True:
            await edge
            row_en = self._row_en.value.to_unsigned()
            sample = int(self._sample.value)
            int_reset = int(self._int_reset.value)
            if int(self._pulse.value):
                v = {k: _unsigned(h.value) for k, h in self._prog.items()}
                model.pulse(v["row"], v["neg"], v["set"], v["reset"], v["amp"], v["width"])
            read_dev = int(self._read_dev.value) if int_reset else 0
            decision = model.cycle(
                int_reset=int_reset,
                ref_en=int(self._ref_en.value) if int_reset else 0,
                read_dev=read_dev,
                read_neg=int(self._read_neg.value) if read_dev else 0,
                row_en=row_en,
                row_neg=self._row_neg.value.to_unsigned() if row_en else 0,
                sample=sample,
                sel=int(self._sel.value) if sample else 0,
                trial=self._trial.value.to_unsigned() if sample else 0,
            )
            if decision is not None:
                self._cmp.value = decision
