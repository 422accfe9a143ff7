"""The analogue boundary: the ports of the tile that face the analogue half.

This table is the contract between ``aimc.rtl`` and ``aimc.model``. It builds the RTL
signature, names the ports the cosimulation bridge reads and drives, and produces the table in
docs/architecture.md. Directions are seen from the RTL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..programming import AMP_BITS, AMP_MAX, WIDTH_REF

__all__ = ["BOUNDARY", "BoundaryPort", "PREFIX", "analogue_signature", "markdown_table", "ports"]

#: Name of the boundary in the top level: Verilog ports are ``ana__<name>``.
PREFIX = "ana"


@dataclass(frozen=True)
class BoundaryPort:
    name: str
    direction: str               # "out": RTL drives it; "in": the analogue half drives it
    width: tuple                 # product of these TileConfig attributes or numbers (empty: 1)
    timing: str
    model: str
    training: bool = False       # only on tiles generated with TileConfig.training

    def width_for(self, cfg: TileConfig) -> int:
        return math.prod(getattr(cfg, n) if isinstance(n, str) else n for n in self.width)

    @property
    def width_doc(self) -> str:
        return " * ".join(map(str, self.width)) or "1"

    @property
    def verilog_name(self) -> str:
        return f"{PREFIX}__{self.name}"


BOUNDARY = (
    BoundaryPort(
        "ready", "in", (),
        "driven by the analogue half; sampled by the RTL in the cycle it would start an "
        "integration (int_reset) or a pulse step (prog_pulse): low, the start waits, and an "
        "operation that waits READY_TIMEOUT cycles is abandoned. Once started, an operation "
        "runs its fixed length",
        "high while biases, references and the pulse generator are settled (the model is "
        "always ready; a test can drive it low to inject a fault)"),
    BoundaryPort(
        "int_reset", "out", (),
        "registered; high for one cycle at the start of each integration: in the cycle "
        "before an operation's first drive step, and with the first drive step of each "
        "later bit plane",
        "clears every column integrator and starts a new integration event, before the "
        "cycle's drive (if any) is added"),
    BoundaryPort(
        "int_back", "out", (),
        "registered; high from the int_reset of a backward MVM through its last conversion",
        "the integration that follows is a backward one: the column drive (col_en) adds "
        "charge to the row integrators, and comparisons (adc_row_sample) are of the rows",
        training=True),
    BoundaryPort(
        "ref_en", "out", (),
        "registered; high with int_reset when the integration is a reference measurement "
        "(calibration engine, gain phase)",
        "after clearing the integrators, injects the calibration reference charge into every "
        "column integrator (then clamps)"),
    BoundaryPort(
        "read_dev", "out", (),
        "registered; high with int_reset when the integration is a single-device read "
        "(program-and-verify engine)",
        "the integration that follows reads single devices: each column integrates the "
        "device of side read_neg of the driven row alone, at the read gain "
        "(see the program-and-verify section)"),
    BoundaryPort(
        "read_neg", "out", (),
        "registered; valid with read_dev: 0 reads the G+ devices, 1 the G- devices",
        "selects the side of the pairs a device read sees"),
    BoundaryPort(
        "row_en", "out", ("rows",),
        "registered; bit i high while row i is driven. PWM: for the first abs(x_i) cycles of "
        "the x_max-cycle window. Bit-serial: for one cycle per plane, if bit p of abs(x_i) is set",
        "each cycle, adds the column currents of the driven rows (effective weights, IR drop "
        "included, times the drive level of the cycle) to the integrators, then clamps each "
        "integrator to +-limit"),
    BoundaryPort(
        "row_neg", "out", ("rows",),
        "registered; bit i high when row i is driven with negative polarity (only with row_en)",
        "the driven row contributes -w instead of +w"),
    BoundaryPort(
        "col_en", "out", ("cols",),
        "registered; bit c high while column c is driven in a backward MVM, with the timing "
        "of row_en (PWM window or bit planes)",
        "each cycle, adds the row currents of the driven columns (the effective weights "
        "transposed, by reciprocity of the resistive network; the G+ and G- columns of a "
        "pair driven with opposite polarity) to the row integrators, then clamps them",
        training=True),
    BoundaryPort(
        "col_neg", "out", ("cols",),
        "registered; bit c high when column c is driven with negative polarity (only with "
        "col_en)", "the driven column contributes -w instead of +w", training=True),
    BoundaryPort(
        "adc_sel", "out", ("sel_bits",),
        "registered; constant during a conversion; ADC a converts column a*cols_per_adc + sel",
        "selects which column of each group the ADCs compare"),
    BoundaryPort(
        "adc_sample", "out", (),
        "registered; high during each SAR step (adc_bits cycles per conversion)",
        "a comparison is requested this cycle"),
    BoundaryPort(
        "adc_trial", "out", ("n_adc", "adc_bits"),
        "registered; offset-binary trial code of ADC a at bits [a*adc_bits, (a+1)*adc_bits)",
        "the capacitive DAC level the comparator compares the column charge against"),
    BoundaryPort(
        "adc_cmp", "in", ("n_adc",),
        "driven by the analogue half during a cycle with adc_sample high; sampled by the RTL "
        "at the next rising edge",
        "bit a: 1 if charge + noise >= thresholds[c, trial], the static DAC, comparator and "
        "integrator errors of column c; ideally (trial - 2**(adc_bits-1) - 1/2) * lsb"),
    BoundaryPort(
        "adc_sat", "in", ("n_adc",),
        "driven by the analogue half, like adc_cmp, during every cycle with adc_sample high; "
        "the RTL samples it in the last step of each conversion",
        "bit a: the integrator of the column ADC a converts clamped at +-limit at some "
        "cycle since the last int_reset (the reference injection included)"),
    BoundaryPort(
        "adc_row_sel", "out", ("row_sel_bits",),
        "registered; constant during a row conversion; row ADC a converts row "
        "a*rows_per_adc + adc_row_sel", "selects which row of each group the row ADCs compare",
        training=True),
    BoundaryPort(
        "adc_row_sample", "out", (),
        "registered; high during each SAR step of the row ADCs (adc_bits cycles per "
        "conversion)", "a comparison of the row integrators is requested this cycle",
        training=True),
    BoundaryPort(
        "adc_row_trial", "out", ("n_row_adc", "adc_bits"),
        "registered; offset-binary trial code of row ADC a at bits [a*adc_bits, "
        "(a+1)*adc_bits)", "the row converters' DAC levels, as adc_trial for the columns",
        training=True),
    BoundaryPort(
        "adc_row_cmp", "in", ("n_row_adc",),
        "driven by the analogue half during a cycle with adc_row_sample high; sampled by the "
        "RTL at the next rising edge",
        "bit a: 1 if the row charge + noise >= the threshold of row a*rows_per_adc + sel "
        "(the row converters' own static errors)", training=True),
    BoundaryPort(
        "adc_row_sat", "in", ("n_row_adc",),
        "driven by the analogue half, like adc_row_cmp, during every cycle with "
        "adc_row_sample high", "bit a: the integrator of the row ADC a converts clamped since "
        "the last int_reset", training=True),
    BoundaryPort(
        "upd_start", "out", (),
        "registered; high for one cycle before the first pulse slot of an update",
        "starts the numbering of the update's slots (its noise events)", training=True),
    BoundaryPort(
        "upd_pulse", "out", (),
        "registered; high in each of the BL pulse slots of an update, with upd_row, "
        "upd_row_neg, upd_col, upd_col_neg valid",
        "applies the slot: every device whose row and column both fire takes one pulse of "
        "its update device (the G+ side of its pair; G- is the reference), down when the "
        "two polarities agree, up when they differ, with its cycle-to-cycle noise", training=True),
    BoundaryPort(
        "upd_row", "out", ("rows",),
        "registered; bit r: row line r fires in this slot", "row pulse lines", training=True),
    BoundaryPort(
        "upd_row_neg", "out", ("rows",),
        "registered; bit r: row r fires with negative polarity (the sign of x_r; only with "
        "upd_row)", "row polarities", training=True),
    BoundaryPort(
        "upd_col", "out", ("cols",),
        "registered; bit c: column line c fires in this slot", "column pulse lines", training=True),
    BoundaryPort(
        "upd_col_neg", "out", ("cols",),
        "registered; bit c: column c fires with negative polarity (the sign of d_c; only "
        "with upd_col)", "column polarities", training=True),
    BoundaryPort(
        "prog_pulse", "out", (),
        "high for one cycle per pulse step; the step lasts prog_width cycles, during which "
        "the RTL holds every prog_* port and starts nothing else",
        "applies the step: the devices of row prog_row, side prog_neg, marked in prog_set "
        "or prog_reset receive one SET or RESET pulse of their amplitude and prog_width"),
    BoundaryPort(
        "prog_row", "out", ("row_bits",),
        "registered; stable while prog_pulse and during the step", "row of the pulse step"),
    BoundaryPort(
        "prog_neg", "out", (),
        "registered; stable during the step", "0: G+ devices, 1: G- devices"),
    BoundaryPort(
        "prog_set", "out", ("cols",),
        "registered; bit c: column c's device gets a SET pulse", "mask of SET pulses"),
    BoundaryPort(
        "prog_reset", "out", ("cols",),
        "registered; bit c: column c's device gets a RESET pulse (never with prog_set)",
        "mask of RESET pulses"),
    BoundaryPort(
        "prog_amp", "out", ("cols", AMP_BITS),
        f"registered; amplitude code of column c at bits [c*{AMP_BITS}, (c+1)*{AMP_BITS})",
        f"pulse strength amp/{AMP_MAX} * prog_width/{WIDTH_REF}"),
    BoundaryPort(
        "prog_width", "out", (8,),
        "registered; pulse width in cycles, 1..255", "scales the pulse strength"),
)


def ports(cfg: TileConfig) -> tuple[BoundaryPort, ...]:
    """The boundary ports of a tile of configuration ``cfg``."""
    return tuple(p for p in BOUNDARY if cfg.training or not p.training)


def analogue_signature(cfg: TileConfig) -> wiring.Signature:
    """Signature of the analogue boundary as seen from the RTL."""
    return wiring.Signature({
        p.name: (Out if p.direction == "out" else In)(p.width_for(cfg)) for p in ports(cfg)})


def markdown_table() -> str:
    lines = ["| port | dir | width | timing | what the model does |",
             "| --- | --- | --- | --- | --- |"]
    for p in BOUNDARY:
        mark = " (training tiles)" if p.training else ""
        lines.append(f"| `{p.verilog_name}`{mark} | {p.direction} | {p.width_doc} | "
                     f"{p.timing} | {p.model} |")
    return "\n".join(lines)
