"""Line drivers: turn a signed input vector into line drive pulses (PWM or bit planes), for
the rows (forward MVMs) or the columns (backward MVMs)."""

from amaranth import Cat, Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from .stream import line_vector

__all__ = ["LineDriver"]


class LineDriver(wiring.Component):
    """Holds the active input vector and drives the lines.

    Attributes
    ----------
    load : In(1)
        Capture ``vector`` (one signed element per line) as the active vector.
    drive : In(1)
        Drive the lines in the next cycle according to ``step``.
    step : In
        PWM: the cycle within the window (line i is on while ``|x_i| > step``).
        Bit-serial: the bit plane (line i is on if bit ``step`` of ``|x_i|`` is set).
    hold : In(1)
        Device reads: line i is on while ``x_i != 0``, whatever ``step``.
    en, neg : Out(lines)
        Registered line drive; ``neg`` only with ``en``.
    mag, sign : Out
        The active vector: magnitudes and signs (the update engine's x or d).

    Parameters
    ----------
    cfg : TileConfig
    lines : int
        ``cfg.rows`` (default) or ``cfg.cols``.
    """

    def __init__(self, cfg: TileConfig, lines: int | None = None):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        lines = cfg.rows if lines is None else lines
        if lines not in (cfg.rows, cfg.cols):
            raise ValueError(f"LineDriver lines must be the rows ({cfg.rows}) or the columns "
                             f"({cfg.cols}) of the tile, not {lines!r}")
        self.cfg, self.lines = cfg, lines
        super().__init__({
            "load": In(1),
            "vector": In(line_vector(cfg, lines)),
            "drive": In(1),
            # At least 1 bit: with input_bits=2 there is one step (0), and a zero-width port
            # is emitted as an ascending range `[-1:0]` (Verilator ASCRANGE).
            "step": In(range(max(cfg.drive_cycles, cfg.planes, 2))),
            "hold": In(1),
            "en": Out(lines),
            "neg": Out(lines),
            "mag": Out(data.ArrayLayout(cfg.mag_bits, lines)),
            "sign": Out(lines),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, n = self.cfg, self.lines
        mag, neg = self.mag, self.sign

        with m.If(self.load):
            for i in range(n):
                v = self.vector[i]
                m.d.sync += [mag[i].eq(Mux(v < 0, -v, v)), neg[i].eq(v < 0)]

        if cfg.input_mode == "pwm":
            on = [mag[i] > self.step for i in range(n)]
        else:
            on = [mag[i].bit_select(self.step, 1) for i in range(n)]
        on = [Mux(self.hold, mag[i] != 0, o) for i, o in enumerate(on)]
        en = Cat(*on) & self.drive.replicate(n)
        m.d.sync += [self.en.eq(en), self.neg.eq(en & neg)]
        return m
