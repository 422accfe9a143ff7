"""Tile configuration: the one description of a tile that the RTL, the model and the benches share.

Every parameter is validated on construction; an invalid value raises ``ValueError`` (or
``TypeError`` for a value of the wrong type) naming the parameter, the value and what is
allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np

from .numeric import is_integer

__all__ = ["INPUT_MODES", "TileConfig"]

#: Fractional bits of every result on the output stream (see ``TileConfig.result_frac``).
RESULT_FRAC = 2

#: Row-driver encodings selectable at generation time.
INPUT_MODES = ("pwm", "bitserial")

# (parameter, lowest, highest) of each integer parameter, checked in this order.
_INT_RANGES = (
    ("rows", 1, 1024),
    ("cols", 1, 1024),
    ("input_bits", 2, 12),
    ("adc_bits", 2, 12),
    ("cols_per_adc", 1, 1024),
    ("lanes", 1, 64),
    ("rows_per_adc", 1, 1024),
)


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _show(value) -> str:
    """``repr`` of a rejected value for an error message (:func:`aimc.numeric.show`: huge
    integers are described by their size, since past 4300 digits Python refuses to print
    them and ``repr`` would raise ``ValueError`` in place of the message)."""
    from .numeric import show

    return show(value)


@dataclass(frozen=True)
class TileConfig:
    """Generation-time parameters of one tile.

    Parameters
    ----------
    rows : int
        Crossbar rows (input vector length), 1..1024.
    cols : int
        Crossbar columns (output vector length), 1..1024.
    input_bits : int
        Signed input width including the sign, 2..12. Inputs are symmetric:
        ``-(2**(input_bits-1) - 1) .. 2**(input_bits-1) - 1``.
    adc_bits : int
        Resolution of each column ADC, 2..12.
    cols_per_adc : int
        ADC sharing factor, a power of two dividing ``cols``.
    input_mode : str
        ``"pwm"`` (|x| cycles of pulse, sign selects polarity) or ``"bitserial"`` (one
        evaluation and conversion per magnitude bit, summed by shift-and-add).
    lanes : int
        Vector elements per beat on both AXI4-Stream interfaces, a power of two 1..64.
    rows_per_adc : int
        Sharing factor of the row ADCs that convert backward MVMs, a power of two dividing
        ``rows``.
    training : bool
        Generate the training hardware: backward MVMs (column drivers, row ADCs, row
        coefficients) and the pulsed update engine. Off, the tile is inference-only, and
        smaller and faster to simulate.

    Integer parameters follow the API's rule for numbers (:mod:`aimc.numeric`): a numpy
    integer or a whole-number float (``8.0``) is taken as that integer and stored as ``int``.

    Raises
    ------
    TypeError
        A parameter is not of the type listed above.
    ValueError
        A parameter is outside its allowed range.
    """

    rows: int = 256
    cols: int = 256
    input_bits: int = 8
    adc_bits: int = 8
    cols_per_adc: int = 1
    input_mode: str = "pwm"
    lanes: int = 8
    rows_per_adc: int = 1
    training: bool = False

    def __post_init__(self):
        for name, lo, hi in _INT_RANGES:
            value = getattr(self, name)
            # The API's one rule for numbers (aimc.numeric): numpy integers and
            # whole-number floats are integers too; they are stored as int.
            if not is_integer(value):
                raise TypeError(f"TileConfig.{name} must be an integer, not {_show(value)}")
            value = int(value)
            object.__setattr__(self, name, value)
            if not lo <= value <= hi:
                raise ValueError(
                    f"TileConfig.{name} must be between {lo} and {hi}, not {_show(value)}")
        if not isinstance(self.input_mode, str):
            raise TypeError(f"TileConfig.input_mode must be a string ({', '.join(INPUT_MODES)}), "
                            f"not {_show(self.input_mode)}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(
                f"TileConfig.input_mode must be one of {', '.join(INPUT_MODES)}, "
                f"not {self.input_mode!r}")
        if not _is_pow2(self.cols_per_adc) or self.cols % self.cols_per_adc:
            raise ValueError(
                f"TileConfig.cols_per_adc must be a power of two that divides cols={self.cols}, "
                f"not {self.cols_per_adc!r}")
        if isinstance(self.training, np.bool_):  # numpy's, as aimc.numeric takes its scalars
            object.__setattr__(self, "training", bool(self.training))
        if not isinstance(self.training, bool):
            raise TypeError(f"TileConfig.training must be True or False, not "
                            f"{_show(self.training)}")
        if not _is_pow2(self.rows_per_adc) or self.rows % self.rows_per_adc:
            raise ValueError(
                f"TileConfig.rows_per_adc must be a power of two that divides rows={self.rows}, "
                f"not {self.rows_per_adc!r}")
        if not _is_pow2(self.lanes):
            raise ValueError(f"TileConfig.lanes must be a power of two, not {self.lanes!r}")

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TileConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"TileConfig has no parameter(s) {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TileConfig:
        return cls.from_dict(json.loads(text))

    @property
    def key(self) -> str:
        """Short unique name, used for build directories."""
        return (f"r{self.rows}c{self.cols}i{self.input_bits}a{self.adc_bits}"
                f"s{self.cols_per_adc}{self.input_mode}l{self.lanes}"
                + (f"q{self.rows_per_adc}" if self.rows_per_adc != 1 else "")
                + ("t" if self.training else ""))

    # -- derived quantities --------------------------------------------------------------

    @property
    def x_max(self) -> int:
        """Largest input magnitude."""
        return 2 ** (self.input_bits - 1) - 1

    @property
    def mag_bits(self) -> int:
        """Width of an input magnitude."""
        return self.input_bits - 1

    @property
    def in_lane_width(self) -> int:
        """Bits per input element on the input stream (sign-extended two's complement)."""
        return 8 if self.input_bits <= 8 else 16

    @property
    def n_adc(self) -> int:
        return self.cols // self.cols_per_adc

    @property
    def sel_bits(self) -> int:
        """Width of the ADC column-select port ``adc_sel``: ``log2(cols_per_adc)``, at least
        1 (with one ADC per column the port is a constant 0)."""
        return max(1, math.ceil(math.log2(self.cols_per_adc)))

    @property
    def n_row_adc(self) -> int:
        """Row ADCs (backward MVMs)."""
        return self.rows // self.rows_per_adc

    @property
    def row_sel_bits(self) -> int:
        """Width of the row ADC select port ``adc_row_sel`` (at least 1)."""
        return max(1, math.ceil(math.log2(self.rows_per_adc)))

    @property
    def in_lines(self) -> int:
        """Elements of the longest input vector: the rows, or on a training tile also the
        columns (backward and update vectors)."""
        return max(self.rows, self.cols) if self.training else self.rows

    @property
    def out_lines(self) -> int:
        """Elements of the longest result vector: the columns, or on a training tile also
        the rows (backward results)."""
        return max(self.rows, self.cols) if self.training else self.cols

    @property
    def planes(self) -> int:
        """Analogue evaluations per MVM: 1 for PWM, one per magnitude bit for bit-serial."""
        return 1 if self.input_mode == "pwm" else self.mag_bits

    @property
    def drive_cycles(self) -> int:
        """Cycles the rows are driven per evaluation: the PWM window, or 1 per bit plane."""
        return self.x_max if self.input_mode == "pwm" else 1

    @property
    def result_bits(self) -> int:
        """Signed width of one result. PWM: the ADC code. Bit-serial: the sum of the plane
        codes weighted 2**p reaches -2**(adc_bits-1) * (2**planes - 1), which needs
        ``adc_bits + planes`` bits."""
        return self.adc_bits if self.planes == 1 else self.adc_bits + self.planes

    @property
    def result_frac(self) -> int:
        """Fractional bits of a result on the output stream: corrected results keep
        resolution below one ADC step (raw results have zeros there)."""
        return RESULT_FRAC

    @property
    def out_value_bits(self) -> int:
        """Signed width of a result on the output stream, fractional bits included."""
        return self.result_bits + RESULT_FRAC

    @property
    def out_lane_width(self) -> int:
        """Bits per result element on the output stream (sign-extended two's complement)."""
        bits = self.out_value_bits
        return 8 if bits <= 8 else 16 if bits <= 16 else 32

    @property
    def tgt_lane_width(self) -> int:
        """Bits per target on the program-and-verify target stream: signed read counts,
        ``adc_bits`` wide, in whole bytes."""
        return 8 * -(-self.adc_bits // 8)

    @property
    def tgt_data_width(self) -> int:
        return self.lanes * self.tgt_lane_width

    @property
    def row_bits(self) -> int:
        """Width of a row index."""
        return max(self.rows - 1, 1).bit_length()

    @property
    def in_beats(self) -> int:
        return -(-self.rows // self.lanes)

    @property
    def out_beats(self) -> int:
        return -(-self.cols // self.lanes)

    @property
    def in_data_width(self) -> int:
        return self.lanes * self.in_lane_width

    @property
    def out_data_width(self) -> int:
        return self.lanes * self.out_lane_width

    @property
    def analogue_min_cycles(self) -> int:
        """Cycles the analogue half needs per MVM: drive window plus conversions, per plane."""
        return self.planes * (self.drive_cycles + self.cols_per_adc * self.adc_bits)

    @property
    def back_beats(self) -> int:
        """Beats of a backward result (and of a forward input): one element per row."""
        return -(-self.rows // self.lanes)

    @property
    def bwd_analogue_min_cycles(self) -> int:
        """Cycles the analogue half needs per backward MVM: column drive window plus the
        row conversions, per plane."""
        return self.planes * (self.drive_cycles + self.rows_per_adc * self.adc_bits)

    @property
    def bwd_period_cycles(self) -> int:
        """Cycles per backward MVM of the sequencer's schedule when nothing stalls (as
        :attr:`mvm_period_cycles`, with the row ADCs' sharing)."""
        return self.planes * (self.drive_cycles + self.rows_per_adc * self.adc_bits) + 2

    @property
    def mvm_period_cycles(self) -> int:
        """Cycles per MVM of the sequencer's schedule when nothing stalls: per plane the
        drive and the conversions; per MVM one cycle that resets the integrators before the
        first plane's drive (a later plane's reset falls in its first drive cycle) and one
        that hands the results over and takes the next vector."""
        return self.planes * (self.drive_cycles + self.cols_per_adc * self.adc_bits) + 2

