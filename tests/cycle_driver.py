"""Shared by the model tests: a chip with random weights, and the per-cycle model driven
with the port activity of the RTL's schedule."""

import numpy as np

from aimc.model import Chip, preset
from aimc.model.ports import pack_bits, unpack_bits

#: Every effect at once: devices, wires, drivers, converters with per-decision noise.
EVERYTHING = preset("pcm").replace(
    name="everything",
    device={"white_noise": 0.05, "stuck_gmin_rate": 0.02, "stuck_gmax_rate": 0.02},
    array={"r_row": 5.0, "r_col": 5.0},
    driver={"edge_loss": 0.15, "polarity_mismatch": 0.03},
    adc={"comparator_noise": 0.4, "cap_mismatch": 0.03},
)


def random_chip(cfg, model="ideal", seed=3):
    chip = Chip(cfg, model, seed=seed)
    rng = np.random.default_rng(seed)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(cfg.rows, cfg.cols)))
    return chip, rng


def run_cycle_model(chip, x, time=0.0, reference=False):
    """Drive the per-cycle model with exactly the port activity of the RTL's schedule
    (``ref_en`` on every integrator reset when ``reference``), read the saturated latches
    of every ``adc_sel`` after each integration and OR them over the planes. Returns
    (signed results, latches), both (batch, cols)."""
    cfg = chip.tile
    model = chip.cycle_model(time)
    half = 2 ** (cfg.adc_bits - 1)
    out = np.zeros((len(x), cfg.cols), dtype=np.int64)
    sat = np.zeros((len(x), cfg.cols), dtype=bool)
    for n, v in enumerate(x):
        mag, neg = np.abs(v), v < 0
        for plane in reversed(range(cfg.planes)):
            model.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0,
                        ref_en=int(reference))
            for t in range(cfg.drive_cycles):
                on = mag > t if cfg.input_mode == "pwm" else ((mag >> plane) & 1).astype(bool)
                model.cycle(int_reset=0, row_en=pack_bits(on), row_neg=pack_bits(on & neg),
                            sample=0, sel=0, trial=0)
            latched = np.zeros(cfg.cols, dtype=bool)
            for sel in range(cfg.cols_per_adc):
                cols = chip.adc.columns(sel)
                packed = model.saturated(sel)
                latched[cols] = unpack_bits(packed, cfg.n_adc)
                code = np.zeros(cfg.n_adc, dtype=np.int64)
                for bit in reversed(range(cfg.adc_bits)):
                    trial = code | (1 << bit)
                    word = sum(int(c) << (a * cfg.adc_bits) for a, c in enumerate(trial))
                    d = unpack_bits(model.cycle(int_reset=0, row_en=0, row_neg=0, sample=1,
                                                sel=sel, trial=word), cfg.n_adc)
                    code = np.where(d, trial, code)
                out[n, cols] += (code - half) << plane
                # The latch holds through the conversion.
                assert model.saturated(sel) == packed
            np.testing.assert_array_equal(model.clipped, latched)
            sat[n] |= latched
    return out, sat
