"""Row encoder: turns a signed input vector into row drive pulses (PWM or bit planes)."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from .stream import input_vector

__all__ = ["RowDriver"]


class RowDriver(wiring.Component):
    """Holds the active input vector and drives the rows.

    Attributes
    ----------
    load : In(1)
        Capture ``vector`` (one signed element per row) as the active vector.
    drive : In(1)
        Drive the rows in the next cycle according to ``step``.
    step : In
        PWM: the cycle within the window (row i is on while ``|x_i| > step``).
        Bit-serial: the bit plane (row i is on if bit ``step`` of ``|x_i|`` is set).
    hold : In(1)
        Device reads: row i is on while ``x_i != 0``, whatever ``step``.
    row_en, row_neg : Out(rows)
        Registered row drive; ``row_neg`` only with ``row_en``.
    """

    def __init__(self, cfg: TileConfig):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "load": In(1),
            "vector": In(input_vector(cfg)),
            "drive": In(1),
            # At least 1 bit: with input_bits=2 there is one step (0), and a zero-width port
            # is emitted as an ascending range `[-1:0]` (Verilator ASCRANGE).
            "step": In(range(max(cfg.drive_cycles, cfg.planes, 2))),
            "hold": In(1),
            "row_en": Out(cfg.rows),
            "row_neg": Out(cfg.rows),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        mag = Signal(data.ArrayLayout(cfg.mag_bits, cfg.rows))
        neg = Signal(cfg.rows)

        with m.If(self.load):
            for i in range(cfg.rows):
                v = self.vector[i]
                m.d.sync += [mag[i].eq(Mux(v < 0, -v, v)), neg[i].eq(v < 0)]

        if cfg.input_mode == "pwm":
            on = [mag[i] > self.step for i in range(cfg.rows)]
        else:
            on = [mag[i].bit_select(self.step, 1) for i in range(cfg.rows)]
        on = [Mux(self.hold, mag[i] != 0, o) for i, o in enumerate(on)]
        en = Cat(*on) & self.drive.replicate(cfg.rows)
        m.d.sync += [self.row_en.eq(en), self.row_neg.eq(en & neg)]
        return m
