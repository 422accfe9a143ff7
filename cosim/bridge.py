"""The cocotb bridge between the analogue-boundary ports of the Verilog top and the model."""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, First, RisingEdge, ValueChange

from ..model.cycle import CycleModel
from ..rtl.boundary import PREFIX, ports

__all__ = ["AnalogueBridge"]

_OUTPUTS = ("int_reset", "int_back", "row_en", "row_neg", "col_en", "col_neg", "ref_en",
            "read_dev", "read_neg", "prog_pulse", "adc_sel", "adc_sample", "adc_trial",
            "adc_row_sel", "adc_row_sample", "adc_row_trial", "upd_start", "upd_pulse",
            "upd_row", "upd_row_neg", "upd_col", "upd_col_neg")


def _zero():
    return 0


def _reader(handle):
    """A function returning the port's value as an unsigned integer.

    It parses the simulator's binary string directly: building a ``LogicArray`` for every
    read of the wide ports (``row_en``, ``adc_trial``: hundreds to thousands of bits) was
    most of the bridge's time. cocotb is pinned to 2.1.x, whose handles keep the simulator
    object in ``_handle``; the public ``value`` is the fallback.
    """
    raw = getattr(getattr(handle, "_handle", None), "get_signal_val_binstr", None)
    name = handle._name if hasattr(handle, "_name") else str(handle)
    if raw is None:
        def read():
            v = handle.value
            return int(v) if len(handle) == 1 else v.to_unsigned()
        return read

    def read():
        text = raw()
        try:
            return int(text, 2)
        except ValueError:
            raise ValueError(f"analogue boundary: port {name} holds {text!r}, which is not "
                             f"a defined binary value") from None
    return read


class AnalogueBridge:
    """Answers the RTL's analogue ports from a :class:`~aimc.model.cycle.CycleModel`.

    At the falling edge of each clock with activity at the boundary (the RTL's registered
    outputs are stable then), it reads the ports, advances the model by one cycle and drives
    the comparator decisions and the integrator-clamp latches of the selected columns, which
    the RTL samples at the next rising edge (the row ADCs' likewise in backward MVMs). A
    cycle with ``prog_pulse`` high applies a pulse step to the model's devices, one with
    ``upd_start`` or ``upd_pulse`` an update's start or slot. When every port is idle (no
    integrator reset, no line driven, no comparison, no pulse), a cycle changes nothing in
    the model, so the bridge sleeps until one of them rises or a line drive changes.
    """

    def __init__(self, dut, model: CycleModel):
        self.dut = dut
        self.model = model
        p = lambda name: getattr(dut, f"{PREFIX}__{name}")  # noqa: E731
        tile = model.state.tile
        present = {port.name for port in ports(tile)}
        self._handles = {n: p(n) for n in _OUTPUTS if n in present}
        # A tile without training hardware has no backward or update ports: they read 0.
        self._read = {n: (_reader(self._handles[n]) if n in self._handles else _zero)
                      for n in _OUTPUTS}
        self._prog = {k: _reader(p("prog_" + k))
                      for k in ("row", "neg", "set", "reset", "amp", "width")}
        self._cmp, self._sat, self._ready = p("adc_cmp"), p("adc_sat"), p("ready")
        self._training = tile.training
        self._row_cmp = p("adc_row_cmp") if tile.training else None
        self._row_sat = p("adc_row_sat") if tile.training else None
        self._task = None
        self._random_cmp = None
        #: Falling edges the bridge woke at, and the clock cycles it slept through.
        self.wakes = 0

    def start(self):
        self._cmp.value = 0
        self._sat.value = 0
        if self._training:
            self._row_cmp.value = 0
            self._row_sat.value = 0
        self._ready.value = 1
        self._task = cocotb.start_soon(self.run())

    def random_comparators(self, columns, rng):
        """From now on, the comparators of ``columns`` answer every comparison with a coin
        flip from ``rng`` (a ``random.Random``): a comparator stuck near its threshold.
        ``None`` or no columns ends the fault."""
        adc = self.model.state.adc
        columns = set(columns or ())
        self._random_cmp = None
        if columns:
            masks = [sum(1 << a for a, c in enumerate(adc.columns(sel)) if c in columns)
                     for sel in range(self.model.state.tile.cols_per_adc)]
            self._random_cmp = (masks, rng, self.model.state.tile.n_adc)

    def set_ready(self, ready: bool):
        """Drive ``ready`` (a fault: the analogue half not ready for operations)."""
        self._ready.value = int(ready)

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def run(self):
        """The bridge itself, one step per falling edge with activity (:meth:`start` runs it
        as a task)."""
        r, h = self._read, self._handles
        edge = FallingEdge(self.dut.clk)
        rising = [n for n in ("int_reset", "adc_sample", "adc_row_sample", "prog_pulse",
                              "upd_start", "upd_pulse") if n in h]
        changing = [n for n in ("row_en", "col_en") if n in h]
        activity = First(*(RisingEdge(h[n]) for n in rising),
                         *(ValueChange(h[n]) for n in changing))
        last_sat = last_row_sat = 0
        while True:
            await edge
            self.wakes += 1
            model = self.model  # may be replaced between cycles (TileBench.use_chip)
            row_en, sample, int_reset = r["row_en"](), r["adc_sample"](), r["int_reset"]()
            col_en, row_sample = r["col_en"](), r["adc_row_sample"]()
            pulse, upd_start, upd_pulse = r["prog_pulse"](), r["upd_start"](), r["upd_pulse"]()
            if pulse:
                v = {k: f() for k, f in self._prog.items()}
                model.pulse(v["row"], v["neg"], v["set"], v["reset"], v["amp"], v["width"])
            if upd_start:
                model.update_start()
            if upd_pulse:
                model.update_slot(r["upd_row"](), r["upd_row_neg"](), r["upd_col"](),
                                  r["upd_col_neg"]())
            read_dev = r["read_dev"]() if int_reset else 0
            sel = r["adc_sel"]() if sample else 0
            row_sel = r["adc_row_sel"]() if row_sample else 0
            decision = model.cycle(
                int_reset=int_reset,
                int_back=r["int_back"]() if int_reset else 0,
                ref_en=r["ref_en"]() if int_reset else 0,
                read_dev=read_dev,
                read_neg=r["read_neg"]() if read_dev else 0,
                row_en=row_en,
                row_neg=r["row_neg"]() if row_en else 0,
                col_en=col_en,
                col_neg=r["col_neg"]() if col_en else 0,
                sample=sample,
                sel=sel,
                trial=r["adc_trial"]() if sample else 0,
                row_sample=row_sample,
                row_sel=row_sel,
                row_trial=r["adc_row_trial"]() if row_sample else 0,
            )
            if decision is not None and row_sample:
                self._row_cmp.value = decision
                sat = model.saturated(row_sel, backward=True)
                if sat != last_row_sat:
                    self._row_sat.value = last_row_sat = sat
            elif decision is not None:
                if self._random_cmp is not None:
                    masks, rng, n = self._random_cmp
                    m = masks[sel]
                    decision = (decision & ~m) | (rng.getrandbits(n) & m)
                self._cmp.value = decision
                sat = model.saturated(sel)
                if sat != last_sat:
                    self._sat.value = last_sat = sat
            elif not (row_en or col_en or int_reset or pulse or upd_start or upd_pulse):
                # Idle: nothing happens in the model until a port becomes active. The
                # trigger fires just after the rising edge that changes the port; the
                # falling edge that follows reads that cycle.
                await activity
