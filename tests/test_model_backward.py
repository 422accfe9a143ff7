"""Backward MVMs in the model: the columns drive, the rows integrate and convert.

The ideal model equals integer arithmetic on the transposed weights; with every effect on,
the per-cycle path driven with the RTL's schedule equals the batch path bit for bit; the row
converters are circuits of their own (their own mismatch, noise events and LSB).
"""

import numpy as np
import pytest
from cycle_driver import EVERYTHING, random_chip

from aimc import TileConfig
from aimc.model.ports import pack_bits, unpack_bits

TILES = [
    TileConfig(rows=8, cols=8),
    TileConfig(rows=12, cols=10, lanes=4, rows_per_adc=2, input_bits=6, adc_bits=6),
    TileConfig(rows=16, cols=8, input_mode="bitserial", rows_per_adc=4, cols_per_adc=2),
]


def run_backward(chip, d):
    """Drive the per-cycle model with the RTL's schedule of backward MVMs: an integrator
    reset with int_back, the column drive, one conversion of every row group."""
    cfg = chip.tile
    model = chip.cycle_model()
    side = chip.backward
    half = 2 ** (cfg.adc_bits - 1)
    out = np.zeros((len(d), cfg.rows), dtype=np.int64)
    for n, v in enumerate(d):
        mag, neg = np.abs(v), v < 0
        for plane in reversed(range(cfg.planes)):
            model.cycle(int_reset=1, int_back=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0)
            for t in range(cfg.drive_cycles):
                on = mag > t if cfg.input_mode == "pwm" else ((mag >> plane) & 1).astype(bool)
                model.cycle(int_reset=0, row_en=0, row_neg=0, col_en=pack_bits(on),
                            col_neg=pack_bits(on & neg), sample=0, sel=0, trial=0)
            for sel in range(cfg.rows_per_adc):
                rows = side.adc.columns(sel)
                code = np.zeros(side.n_adc, dtype=np.int64)
                for bit in reversed(range(cfg.adc_bits)):
                    trial = code | (1 << bit)
                    word = sum(int(c) << (a * cfg.adc_bits) for a, c in enumerate(trial))
                    got = model.cycle(int_reset=0, row_en=0, row_neg=0, sample=0, sel=0,
                                      trial=0, row_sample=1, row_sel=sel, row_trial=word)
                    code = np.where(unpack_bits(got, side.n_adc), trial, code)
                out[n, rows] += (code - half) << plane
    return out, model


@pytest.mark.parametrize("cfg", TILES, ids=lambda c: c.key)
def test_ideal_backward_is_integer_arithmetic(cfg):
    chip, rng = random_chip(cfg, "ideal")
    d = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(20, cfg.cols))
    got = chip.state().backward(d)
    exact = d @ chip.target_weights.T                     # z_r = sum_c W_rc d_c
    lsb = chip.backward.lsb
    want = np.clip(np.floor(exact / lsb + 0.5), -2 ** (cfg.adc_bits - 1),
                   2 ** (cfg.adc_bits - 1) - 1).astype(np.int64)
    if cfg.planes == 1:
        np.testing.assert_array_equal(got, want)
    else:  # bit-serial: the sum of the planes' codes, each rounded
        planes = [((np.abs(d) >> p) & 1) * np.sign(d) for p in range(cfg.planes)]
        want = sum(np.clip(np.floor(pl @ chip.target_weights.T / lsb + 0.5),
                           -2 ** (cfg.adc_bits - 1), 2 ** (cfg.adc_bits - 1) - 1
                           ).astype(np.int64) << p for p, pl in enumerate(planes))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cfg", TILES, ids=lambda c: c.key)
@pytest.mark.parametrize("model", ["ideal", EVERYTHING], ids=["ideal", "everything"])
def test_backward_cycle_path_equals_batch_path(cfg, model):
    chip, rng = random_chip(cfg, model)
    d = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(6, cfg.cols))
    d[0] = cfg.x_max  # full scale: the row integrators clamp
    want = chip.state().backward(d)
    got, cycle = run_backward(chip, d)
    np.testing.assert_array_equal(got, want)
    assert cycle.back_integration + 1 == len(d) * cfg.planes
    assert cycle.integration == -1, "backward integrations are numbered apart"


def test_backward_noise_and_converters_are_their_own():
    """The row converters have their own static errors and their own noise events: a
    backward MVM does not reuse the columns' (forward MVM numbering is untouched)."""
    cfg = TileConfig(rows=8, cols=8)
    chip, rng = random_chip(cfg, EVERYTHING)
    assert not np.array_equal(chip.backward.adc.thresholds, chip.forward.adc.thresholds)
    x = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(4, cfg.rows))
    before = chip.state().mvm(x)
    chip.state().backward(rng.integers(-cfg.x_max, cfg.x_max + 1, size=(4, cfg.cols)))
    np.testing.assert_array_equal(chip.state().mvm(x), before)


def test_backward_inputs_are_checked():
    chip, _ = random_chip(TileConfig(rows=8, cols=6))
    with pytest.raises(ValueError, match=r"^inputs must have shape \(batch, 6\), not \(1, 8\)$"):
        chip.state().backward(np.zeros(8, dtype=np.int64))
    with pytest.raises(RuntimeError, match=r"^analogue boundary: a comparison of the rows "
                                           r"during a forward integration$"):
        m = chip.cycle_model()
        m.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0)
        m.cycle(int_reset=0, row_en=0, row_neg=0, sample=0, sel=0, trial=0, row_sample=1,
                row_sel=0, row_trial=128)
