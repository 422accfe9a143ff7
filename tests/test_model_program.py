"""Model tier, program-and-verify: the devices' response to programming pulses, single-device
reads (the per-cycle path equals the batch path bit for bit) and the chip after pulses."""

import dataclasses
import math
import re

import numpy as np
import pytest
from cycle_driver import EVERYTHING as ALL_EFFECTS
from scipy.stats import norm

from aimc import TileConfig
from aimc.model import Chip, ModelConfig, load, normals, preset
from aimc.model.config import PulseConfig
from aimc.model.ports import pack_bits, unpack_bits
from aimc.model.rng import Stream
from aimc.programming import AMP_BITS, AMP_MAX, READ_CYCLES

TILE = TileConfig(rows=16, cols=16)
ON, OFF = np.ones(TILE.cols, bool), np.zeros(TILE.cols, bool)


def amps(value, cols=TILE.cols):
    return np.full(cols, value)


def positive_part_moments(cv):
    """E[Y] and E[Y^2] of Y = max(1 + cv z, 0), z standard normal."""
    if cv == 0:
        return 1.0, 1.0
    a = 1 / cv
    m1 = norm.cdf(a) + cv * norm.pdf(a)
    m2 = (1 + cv**2) * norm.cdf(a) + cv * norm.pdf(a)
    return m1, m2


# -- the pulse response, deterministic (ideal) ----------------------------------------------

def test_set_pulses_follow_the_soft_bound_exactly():
    chip = Chip(TILE, "ideal")
    p, dev = chip.config.pulse, chip.config.device
    ceil = p.set_ceiling * dev.g_max                                   # 50 uS
    chip.pulse(2, 0, ON, OFF, amps(AMP_MAX), 8)
    # One full-amplitude pulse of the reference width from g_min adds set_step exactly.
    np.testing.assert_array_equal(chip.g_prog[2, :, 0], p.set_step)
    assert p.set_step == 5.0
    # The second is smaller by (ceil - G) / (ceil - g_min) = 45 / 50: 4.5 uS.
    chip.pulse(2, 0, ON, OFF, amps(AMP_MAX), 8)
    np.testing.assert_allclose(chip.g_prog[2, :, 0], 5.0 + 5.0 * (ceil - 5.0) / ceil, rtol=1e-15)
    np.testing.assert_allclose(chip.g_prog[2, :, 0], 9.5, rtol=1e-15)
    # Nothing else moved.
    untouched = np.ones(chip.g_prog.shape, bool)
    untouched[2, :, 0] = False
    assert not chip.g_prog[untouched].any()
    # Strength scales with amplitude and width: half the width, half the step; a fifth of
    # the amplitude at five times the width, the full step; amplitude 0, nothing.
    chip.pulse(3, 1, ON, OFF, amps(AMP_MAX), 4)
    np.testing.assert_allclose(chip.g_prog[3, :, 1], 2.5, rtol=1e-15)
    chip.pulse(4, 1, ON, OFF, amps(51), 40)
    np.testing.assert_allclose(chip.g_prog[4, :, 1], 5.0, rtol=1e-15)
    chip.pulse(5, 1, ON, OFF, amps(0), 255)
    assert not chip.g_prog[5].any()
    # Per-column amplitudes.
    chip.pulse(6, 0, ON, OFF, np.arange(16) * 17, 8)
    np.testing.assert_allclose(chip.g_prog[6, :, 0], 5.0 * np.arange(16) * 17 / 255, rtol=1e-14)


def test_pulses_stay_within_g_min_and_g_max():
    chip = Chip(TILE, ModelConfig(device={"g_min": 2.0}))
    p = chip.config.pulse
    # With g_min = 2 the soft bound and the RESET fraction are relative to g_min.
    chip.pulse(0, 0, ON, OFF, amps(AMP_MAX), 8)
    np.testing.assert_allclose(chip.g_prog[0, :, 0], 2.0 + p.set_step, rtol=1e-15)
    chip.pulse(0, 0, OFF, ON, amps(AMP_MAX), 4)                       # half strength
    np.testing.assert_allclose(chip.g_prog[0, :, 0], 2.0 + p.set_step / 2, rtol=1e-15)
    # A very strong SET saturates at g_max, and stays there.
    for _ in range(3):
        chip.pulse(1, 0, ON, OFF, amps(AMP_MAX), 255)
        np.testing.assert_array_equal(chip.g_prog[1, :, 0], 25.0)
    # A full-amplitude RESET returns to g_min exactly; a half-strength one removes half of
    # G - g_min; a very strong one stops at g_min.
    chip.pulse(1, 0, OFF, ON, amps(AMP_MAX), 4)
    np.testing.assert_allclose(chip.g_prog[1, :, 0], 2.0 + 23.0 / 2, rtol=1e-15)
    chip.pulse(1, 0, OFF, ON, amps(AMP_MAX), 8)
    np.testing.assert_array_equal(chip.g_prog[1, :, 0], 2.0)
    chip.pulse(1, 0, ON, OFF, amps(AMP_MAX), 8)
    chip.pulse(1, 0, OFF, ON, amps(AMP_MAX), 255)
    np.testing.assert_array_equal(chip.g_prog[1, :, 0], 2.0)
    # Noisy pulses too: many random pulses on the pcm chip never leave the range.
    pcm = Chip(TILE, "pcm", seed=4)
    rng = np.random.default_rng(0)
    for _ in range(300):
        s = rng.random(16) < 0.5
        pcm.pulse(int(rng.integers(16)), int(rng.integers(2)), s, ~s,
                  rng.integers(0, AMP_MAX + 1, 16), int(rng.integers(1, 256)))
    assert pcm.g_prog.min() >= 0.0 and pcm.g_prog.max() <= 25.0
    assert (pcm.g_prog == 25.0).any() and (pcm.g_prog == 0.0).any()


def test_mixed_masks_stuck_devices_and_counters():
    model = ModelConfig(device={"stuck_gmin_rate": 0.1, "stuck_gmax_rate": 0.1})
    chip = Chip(TILE, model, seed=9)
    assert chip.pulse_steps == chip.device_pulses == 0
    stuck = chip.stuck != 0
    assert 20 < stuck.sum() < 110
    before = chip.g_prog.copy()
    set_cols = np.arange(16) % 3 == 0
    reset_cols = np.arange(16) % 3 == 1
    for row in range(16):
        for side in (0, 1):
            chip.pulse(row, side, ON, OFF, amps(AMP_MAX), 8)
    assert chip.pulse_steps == 32 and chip.device_pulses == 32 * 16
    np.testing.assert_array_equal(chip.g_prog[stuck], before[stuck])
    np.testing.assert_array_equal(chip.g_prog[~stuck], 5.0)
    mid = chip.g_prog.copy()
    chip.pulse(7, 1, set_cols, reset_cols, amps(AMP_MAX), 8)
    assert chip.pulse_steps == 33 and chip.device_pulses == 32 * 16 + 11
    live = chip.stuck[7, :, 1] == 0
    g = chip.g_prog[7, :, 1]
    np.testing.assert_array_equal(g[set_cols & live], 9.5)
    np.testing.assert_array_equal(g[reset_cols & live], 0.0)
    np.testing.assert_array_equal(g[~live | ~(set_cols | reset_cols)],
                                  mid[7, :, 1][~live | ~(set_cols | reset_cols)])
    # An empty step still counts as a step (it keys the noise), with no device pulses.
    chip.pulse(0, 0, OFF, OFF, amps(AMP_MAX), 8)
    assert chip.pulse_steps == 34 and chip.device_pulses == 32 * 16 + 11


# -- the pulse response, statistics (pcm) -----------------------------------------------------

def test_pcm_set_and_reset_statistics():
    tile = TileConfig(rows=64, cols=256)
    chip = Chip(tile, "pcm", seed=11)
    p = chip.config.pulse
    assert (p.set_step, p.set_cv, p.set_dtod, p.reset_cv) == (5.0, 0.6, 0.2, 0.3)
    on = np.ones(tile.cols, bool)
    off = ~on
    for row in range(tile.rows):
        for side in (0, 1):
            chip.pulse(row, side, on, off, amps(AMP_MAX, tile.cols), 8)
    dg = chip.g_prog.ravel().copy()               # 32768 increments from g_min = 0
    # dG = set_step d max(1 + set_cv z, 0), d = max(1 + set_dtod z_d, 0) independent of z
    # (the soft-bound factor is 1 at g_min, the g_max cap is out of reach at 5 sigma).
    x1, x2 = positive_part_moments(p.set_cv)      # 1.0118, 1.3547
    d1, d2 = positive_part_moments(p.set_dtod)    # 1.0000, 1.0400
    mean = p.set_step * d1 * x1
    rel_std = math.sqrt(d2 * x2 / (d1 * x1) ** 2 - 1)                 # 0.613
    assert mean == pytest.approx(5.059, abs=1e-3) and rel_std == pytest.approx(0.613, abs=1e-3)
    # Sampling errors: 0.34 % of the mean, about 0.5 % of the relative spread (RMS); the
    # tolerances are four to six of them.
    assert dg.mean() == pytest.approx(mean, rel=0.015)
    assert dg.std() / dg.mean() == pytest.approx(rel_std, rel=0.03)
    # About 4.8 % of the increments are clipped to 0 (1 + 0.6 z < 0).
    assert np.mean(dg == 0) == pytest.approx(norm.cdf(-1 / p.set_cv), abs=0.005)
    # A full RESET removes r (G - g_min), r = clip(1 + 0.3 z, 0, 1): half the devices go
    # back to g_min exactly, and on average 0.3 phi(0) = 12 % of G remains.
    before = chip.g_prog.copy()
    for row in range(tile.rows):
        for side in (0, 1):
            chip.pulse(row, side, off, on, amps(AMP_MAX, tile.cols), 8)
    kept = (chip.g_prog / np.where(before > 0, before, 1))[before > 0]
    assert np.mean(kept == 0) == pytest.approx(0.5, abs=0.015)
    assert kept.mean() == pytest.approx(p.reset_cv * norm.pdf(0), rel=0.03)


def test_pcm_device_to_device_spread_of_the_set_step():
    # Without RESET noise every device returns to g_min; K SET pulses per device average
    # the cycle-to-cycle noise and leave the device-to-device factor d.
    tile = TileConfig(rows=32, cols=64)
    chip = Chip(tile, preset("pcm").replace(pulse={"reset_cv": 0.0}), seed=12)
    p = chip.config.pulse
    on = np.ones(tile.cols, bool)
    k = 16
    total = np.zeros(chip.g_prog.shape)
    for _ in range(k):
        for row in range(tile.rows):
            for side in (0, 1):
                chip.pulse(row, side, on, ~on, amps(AMP_MAX, tile.cols), 8)
        total += chip.g_prog
        for row in range(tile.rows):
            for side in (0, 1):
                chip.pulse(row, side, ~on, on, amps(AMP_MAX, tile.cols), 8)
        assert not chip.g_prog.any()
    per_device = total.ravel() / k / p.set_step   # d times the mean of K max(1 + cv z, 0)
    x1, x2 = positive_part_moments(p.set_cv)
    d1, d2 = positive_part_moments(p.set_dtod)
    var = d2 * (x1**2 + (x2 - x1**2) / k) - (d1 * x1) ** 2           # 0.0626
    # 4096 devices: sampling errors of 0.3 % (mean) and 1.2 % (standard deviation) RMS,
    # measured over 20 seeds; the tolerances are four to five of them.
    assert per_device.mean() == pytest.approx(d1 * x1, rel=0.015)
    assert per_device.std() == pytest.approx(math.sqrt(var), rel=0.05)


def test_pulses_are_reproducible_per_seed():
    def run(seed):
        chip = Chip(TILE, "rram", seed=seed)
        rng = np.random.default_rng(1)
        for _ in range(40):
            s = rng.random(16) < 0.7
            chip.pulse(int(rng.integers(16)), int(rng.integers(2)), s, ~s & (rng.random(16) < 0.5),
                       rng.integers(0, AMP_MAX + 1, 16), 8)
        return chip.g_prog

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # The cycle-to-cycle deviate of step n, column c is normals(seed, PULSE, n)[c]: with
    # set_dtod = 0, one pulse of step 0 from g_min gives set_step (1 + set_cv z).
    chip = Chip(TILE, preset("rram").replace(pulse={"set_dtod": 0.0}), seed=5)
    chip.pulse(0, 0, ON, OFF, amps(AMP_MAX), 8)
    z = normals(5, Stream.PULSE, 0, 1, 16)[0]
    want = np.minimum(np.maximum(8.0 * (1 + 0.3 * z), 0), 40.0)
    np.testing.assert_allclose(chip.g_prog[0, :, 0], want, rtol=1e-14)


# -- single-device reads ----------------------------------------------------------------------

def cycle_read(model, row, side):
    """A single-device read through the per-cycle path, with the port activity of the RTL:
    an integrator reset with read_dev, READ_CYCLES cycles of positive drive on ``row``, and
    the SAR search of every column group. Returns (signed codes, read number)."""
    cfg = model.state.tile
    model.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0, read_dev=1,
                read_neg=side)
    en = pack_bits(np.arange(cfg.rows) == row)
    for _ in range(READ_CYCLES):
        model.cycle(int_reset=0, row_en=en, row_neg=0, sample=0, sel=0, trial=0)
    return sar(model), model.reads - 1


def cycle_mvm(model, v):
    """One PWM MVM through the per-cycle path; returns (signed codes, integration number)."""
    cfg = model.state.tile
    mag, neg = np.abs(v), v < 0
    model.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0)
    for t in range(cfg.drive_cycles):
        on = mag > t
        model.cycle(int_reset=0, row_en=pack_bits(on), row_neg=pack_bits(on & neg), sample=0,
                    sel=0, trial=0)
    return sar(model), model.integration


def sar(model):
    cfg = model.state.tile
    out = np.zeros(cfg.cols, dtype=np.int64)
    for sel in range(cfg.cols_per_adc):
        code = np.zeros(cfg.n_adc, dtype=np.int64)
        for bit in reversed(range(cfg.adc_bits)):
            trial = code | (1 << bit)
            packed = sum(int(c) << (a * cfg.adc_bits) for a, c in enumerate(trial))
            d = unpack_bits(model.cycle(int_reset=0, row_en=0, row_neg=0, sample=1, sel=sel,
                                        trial=packed), cfg.n_adc)
            code = np.where(d, trial, code)
        out[model.chip.adc.columns(sel)] = code
    return out - 2 ** (cfg.adc_bits - 1)


#: Every effect that can touch a read: converter noise per decision, white noise (left out
#: of reads), drivers, wires (left out of reads), stuck devices.
EVERYTHING = ALL_EFFECTS.replace(device={"stuck_gmin_rate": 0.05, "stuck_gmax_rate": 0.05})


@pytest.mark.parametrize("model, tile", [
    ("pcm", TileConfig(rows=16, cols=16)),
    ("adc-only", TileConfig(rows=16, cols=16, cols_per_adc=2)),
    (EVERYTHING, TileConfig(rows=8, cols=16, cols_per_adc=4, adc_bits=6)),
], ids=["pcm", "adc-only-cpa2", "everything-cpa4"])
def test_cycle_reads_equal_read_row_bit_for_bit(model, tile):
    chip = Chip(tile, model, seed=21)
    rng = np.random.default_rng(2)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(tile.rows, tile.cols)))
    cm = chip.cycle_model()
    x = rng.integers(-tile.x_max, tile.x_max + 1, size=(3, tile.rows))
    codes = []
    for step in range(12):
        row, side = int(rng.integers(tile.rows)), int(rng.integers(2))
        got, index = cycle_read(cm, row, side)
        assert index == step, "device reads are numbered on their own"
        np.testing.assert_array_equal(got, chip.read_row(row, side, index),
                                      err_msg=f"read {step} of row {row} side {side}")
        codes.append(got)
        # Pulse steps through the packed ports, and MVM integrations in between.
        s = rng.random(tile.cols) < 0.5
        r = ~s & (rng.random(tile.cols) < 0.5)
        amp = rng.integers(0, AMP_MAX + 1, tile.cols)
        cm.pulse(row, side, pack_bits(s), pack_bits(r),
                 sum(int(a) << (AMP_BITS * c) for c, a in enumerate(amp)), 8)
        if step % 4 == 3:
            got, integration = cycle_mvm(cm, x[step // 4])
            assert integration == step // 4, "reads do not shift the MVM numbering"
            np.testing.assert_array_equal(got, chip.mvm(x[step // 4:step // 4 + 1],
                                                        first_vector=integration)[0])
    assert chip.pulse_steps == 12
    assert len({tuple(c) for c in codes}) > 1
    # The conversion noise is keyed by the read number: the same device read under other
    # numbers gives other codes on a noisy chip.
    many = np.array([chip.read_row(0, 0, i) for i in range(20)])
    assert (many != many[0]).any()


def test_ideal_reads_count_conductance_lsbs():
    chip = Chip(TILE, "ideal")
    assert chip.read_counts_per_lsb == 96 / 127
    w = np.clip(np.arange(256).reshape(16, 16) - 128, -127, 127)
    chip.program(w)
    # g_max reads 96 counts: code round(k * 96 / 127), never a tie (127 is prime).
    plus, minus = (np.floor(np.maximum(v, 0) * 96 / 127 + 0.5).astype(np.int64)
                   for v in (w, -w))
    for row in (0, 5, 15):
        np.testing.assert_array_equal(chip.read_row(row, 0, row), plus[row])
        np.testing.assert_array_equal(chip.read_row(row, 1, row), minus[row])
    np.testing.assert_array_equal(chip.ideal_reads(0), plus)
    np.testing.assert_array_equal(chip.ideal_reads(1), minus)
    assert chip.ideal_reads(0).dtype == np.int64
    # The read sees programming-time conductances: drift time and temperature do not enter.
    np.testing.assert_array_equal(chip.read_row(15, 0, 3, time=1e6, temperature=350.0),
                                  plus[15])
    # g_min > 0 reads 0; 4-bit weights span the same read range: code round(k * 96 / 7).
    chip = Chip(TILE, ModelConfig(device={"g_min": 3.0}, array={"weight_bits": 4}))
    assert chip.read_counts_per_lsb == 96 / 7
    w4 = np.clip(np.arange(256).reshape(16, 16) % 15 - 7, -7, 7)
    chip.program(w4)
    np.testing.assert_array_equal(chip.ideal_reads(0),
                                  np.floor(np.maximum(w4, 0) * 96 / 7 + 0.5).astype(int))
    # Read weights: charge per cycle of unit drive, cached until the conductances change.
    rw = chip.read_weights(1)
    assert rw is chip.read_weights(1) and not rw.flags.writeable
    # (on the binary grid: here 2^-23 for reads of up to 8 * 603 charge units)
    np.testing.assert_allclose(rw, np.maximum(-w4, 0) * 96 / 7 * chip.lsb / READ_CYCLES,
                               rtol=0, atol=2.0**-23)
    chip.pulse(0, 1, ON, OFF, amps(AMP_MAX), 8)
    assert chip.read_weights(1) is not rw


def test_ideal_reads_equal_read_row_without_noise():
    tile = TileConfig(rows=16, cols=16, cols_per_adc=2)
    chip = Chip(tile, preset("adc-only").replace(adc={"input_noise": 0.0}), seed=8)
    rng = np.random.default_rng(4)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(16, 16)))
    chip.pulse(3, 0, ON, OFF, rng.integers(0, AMP_MAX + 1, 16), 8)
    for side in (0, 1):
        ideal = chip.ideal_reads(side)
        rows = np.array([chip.read_row(r, side, 100 + r) for r in range(16)])
        np.testing.assert_array_equal(rows, ideal)
    # The static converter errors are in both (not the plain rounding of the ideal chain).
    assert not np.array_equal(chip.ideal_reads(0), np.maximum(chip.target_weights, 0))


# -- the chip after pulse programming ---------------------------------------------------------

def test_state_after_pulses_is_a_new_programming():
    chip = Chip(TILE, "pcm", seed=3)
    first = chip.state()
    assert chip.programs == 0
    np.testing.assert_array_equal(first.weights, 0)
    for row in range(16):
        chip.pulse(row, row % 2, ON, OFF, amps(AMP_MAX), 8)
    # Reads do not settle the pulses (the per-cycle path reads without a new state).
    chip.read_row(0, 0, 0)
    chip.ideal_reads(1)
    assert chip.programs == 0
    st = chip.state()
    assert st is not first and chip.programs == 1 and st.moment == (0.0, 300.0)
    assert chip.state() is st and chip.programs == 1
    g = chip.g_prog
    want = np.clip(np.round((g[..., 0] - g[..., 1]) / chip.g_lsb), -127, 127)
    np.testing.assert_array_equal(chip.target_weights, want)
    tw = chip.target_weights
    assert (tw[0::2] >= 0).all() and (tw[1::2] <= 0).all() and np.count_nonzero(tw) > 200
    # Weights of the moment: the new conductances at the reference read (1/f noise on).
    gc = chip.conductances()
    np.testing.assert_allclose(st.weights, (gc[..., 0] - gc[..., 1]) / chip.g_lsb, rtol=0,
                               atol=2.0**-10)
    assert np.corrcoef(st.weights.ravel(), want.ravel())[0, 1] > 0.95
    # Drift exponents drawn as program() draws them, from G / g_max of the new
    # conductances, in the context of programming 1.
    dev = chip.config.device
    ln_g = np.log(np.maximum(g / dev.g_max, 1e-7))
    mu = np.clip(dev.nu_mean_a * ln_g + dev.nu_mean_b, dev.nu_mean_lo, dev.nu_mean_hi)
    s = np.clip(dev.nu_std_a * ln_g + dev.nu_std_b, dev.nu_std_lo, dev.nu_std_hi)
    z = normals(3, Stream.PROGRAM, 0, 1, g.size, context=1 * 2 + 1)[0].reshape(g.shape)
    np.testing.assert_array_equal(chip.nu, np.abs(mu + s * z))
    # Drift then shrinks the weights.
    late = chip.state(1e5)
    assert np.abs(late.weights).sum() < 0.8 * np.abs(st.weights).sum()
    # More pulses, another programming.
    chip.pulse(0, 0, OFF, ON, amps(AMP_MAX), 8)
    chip.state(1e5)
    assert chip.programs == 2


def test_cycle_model_switches_to_the_pulsed_chip_at_the_next_mvm():
    chip = Chip(TILE, "adc-only", seed=6)
    rng = np.random.default_rng(6)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(16, 16)))
    old = chip.state()
    cm = chip.cycle_model()
    x = rng.integers(-TILE.x_max, TILE.x_max + 1, size=(3, 16))
    got, n = cycle_mvm(cm, x[0])
    np.testing.assert_array_equal(got, old.mvm(x[:1], first_vector=n)[0])
    for row in range(16):
        cm.pulse(row, 0, pack_bits(ON), 0, sum(255 << (8 * c) for c in range(16)), 8)
    assert chip.generation != old.generation
    # A read integration keeps the state (no new programming during program-and-verify).
    cycle_read(cm, 4, 0)
    assert cm.state is old and chip.programs == 1
    got, n = cycle_mvm(cm, x[1])
    assert cm.state is not old and cm.state is chip.state() and chip.programs == 2
    np.testing.assert_array_equal(got, chip.mvm(x[1:2], first_vector=n)[0])
    assert not np.array_equal(got, old.mvm(x[1:2], first_vector=n)[0])
    # The packed ports reach the same conductances as the arrays do.
    chip2 = Chip(TILE, "pcm", seed=2)
    twin2 = Chip(TILE, "pcm", seed=2)
    amp = rng.integers(0, AMP_MAX + 1, 16)
    s = rng.random(16) < 0.5
    chip2.cycle_model().pulse(5, 1, pack_bits(s), pack_bits(~s),
                              sum(int(a) << (8 * c) for c, a in enumerate(amp)), 17)
    twin2.pulse(5, 1, s, ~s, amp, 17)
    np.testing.assert_array_equal(chip2.g_prog, twin2.g_prog)


# -- configuration and errors -----------------------------------------------------------------

def test_pulse_configuration_and_presets(tmp_path):
    assert preset("ideal").pulse == PulseConfig() == preset("adc-only").pulse
    assert dataclasses.asdict(PulseConfig()) == dict(set_step=5.0, set_ceiling=2.0, set_cv=0.0,
                                                     set_dtod=0.0, reset_frac=1.0, reset_cv=0.0)
    pcm, rram = preset("pcm").pulse, preset("rram").pulse
    assert (pcm.set_cv, pcm.set_dtod, pcm.set_ceiling, pcm.set_step, pcm.reset_frac,
            pcm.reset_cv) == (0.6, 0.2, 2.0, 5.0, 1.0, 0.3)
    assert (rram.set_cv, rram.set_dtod, rram.reset_cv, rram.set_step) == (0.3, 0.2, 0.3, 8.0)
    assert list(preset("pcm").to_dict())[:3] == ["name", "device", "pulse"]
    path = tmp_path / "m.toml"
    path.write_text('preset = "rram"\n[pulse]\nset_cv = 0.1\n')
    assert load(path).pulse == dataclasses.replace(rram, set_cv=0.1)
    for kwargs, message in [
        (dict(set_step=0), r"^PulseConfig\.set_step must be a finite number > 0\.0, not 0 "
                           r"\(mean SET increment at g_min, full amplitude and reference "
                           r"width, uS\)$"),
        (dict(set_ceiling=1.0), r"^PulseConfig\.set_ceiling must be a finite number > 1\.0 "
                                r"and <= 10\.0, not 1\.0 \(.+\)$"),
        (dict(set_cv=-0.1), r"^PulseConfig\.set_cv must be a finite number >= 0\.0 and "
                            r"<= 3\.0, not -0\.1 \(.+\)$"),
        (dict(reset_frac=1.5), r"^PulseConfig\.reset_frac must be a finite number >= 0\.0 "
                               r"and <= 1\.0, not 1\.5 \(.+\)$"),
    ]:
        with pytest.raises(ValueError, match=message):
            PulseConfig(**kwargs)


@pytest.mark.parametrize("args, message", [
    (dict(row=16), r"^row must be an integer in 0\.\.15, not 16$"),
    (dict(row=-1), r"^row must be an integer in 0\.\.15, not -1$"),
    (dict(side=2), r"^side must be 0 \(G\+\) or 1 \(G-\), not 2$"),
    (dict(amplitude=amps(256)), r"^amplitude must lie in 0\.\.255 \(AMP_BITS=8\), found 256$"),
    (dict(amplitude=amps(-1)), r"^amplitude must lie in 0\.\.255 \(AMP_BITS=8\), found -1$"),
    (dict(amplitude=np.ones(3, int)), r"^amplitude must have shape \(16,\), not \(3,\)$"),
    (dict(amplitude=amps(1.5)), r"^amplitude must be integer codes, not float64$"),
    (dict(width=0), r"^width must be an integer number of cycles in 1\.\.255, not 0$"),
    (dict(width=256), r"^width must be an integer number of cycles in 1\.\.255, not 256$"),
    (dict(width=2.5), r"^width must be an integer number of cycles in 1\.\.255, not 2\.5$"),
    (dict(set_mask=np.ones(15, bool)),
     r"^set_mask must be a bool array of shape \(16,\), not shape \(15,\)$"),
    (dict(reset_mask=np.full(16, 2)), r"^reset_mask must hold booleans \(or 0 and 1\)"),
    (dict(set_mask=np.arange(16) == 3, reset_mask=np.arange(16) >= 3),
     r"^set_mask and reset_mask must not select the same column, both select column\(s\) 3$"),
])
def test_bad_pulses_are_named(args, message):
    chip = Chip(TILE, "pcm")
    call = dict(row=0, side=0, set_mask=ON, reset_mask=OFF, amplitude=amps(AMP_MAX), width=8)
    call.update(args)
    with pytest.raises(ValueError, match=message):
        chip.pulse(**call)
    assert chip.pulse_steps == 0 and not chip.g_prog.any()


def test_bad_reads_and_ports_are_named():
    chip = Chip(TILE, "pcm")
    with pytest.raises(ValueError, match=r"^side must be 0 \(G\+\) or 1 \(G-\), not 2$"):
        chip.read_weights(2)
    with pytest.raises(ValueError, match=r"^row must be an integer in 0\.\.15, not 16$"):
        chip.read_row(16, 0, 0)
    with pytest.raises(ValueError, match=r"^index must be an integer >= 0, not -1$"):
        chip.read_row(0, 0, -1)
    with pytest.raises(ValueError, match=r"^time must be a finite number of seconds >= 0"):
        chip.read_row(0, 0, 0, time=-1.0)
    cm = chip.cycle_model()
    with pytest.raises(RuntimeError, match=r"^analogue boundary: read_dev without int_reset$"):
        cm.cycle(int_reset=0, row_en=0, row_neg=0, sample=0, sel=0, trial=0, read_dev=1)
    with pytest.raises(RuntimeError, match=r"^analogue boundary: read_dev with ref_en or int_back"):
        cm.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0, ref_en=1,
                 read_dev=1)
    with pytest.raises(ValueError, match=r"^set_mask must be a packed port value in "
                                         r"0\.\.2\*\*16-1, not 65536$"):
        cm.pulse(0, 0, 1 << 16, 0, 0, 8)
    with pytest.raises(ValueError, match=r"^amplitude must be a packed port value in "
                                         r"0\.\.2\*\*128-1, not -1$"):
        cm.pulse(0, 0, 1, 0, -1, 8)
    with pytest.raises(ValueError, match=r"^width must be an integer number of cycles"):
        cm.pulse(0, 0, 1, 0, 255, 0)


# -- the golden program-and-verify algorithm ---------------------------------------------------

def test_golden_program_and_verify_on_ideal_and_stuck_devices():
    """Ideal devices all pass and read within tolerance; a device stuck far from its target
    fails and counts as stuck; the counters add up."""
    from aimc.model.program import (
        NEG_PASS,
        NEG_STUCK,
        POS_PASS,
        POS_STUCK,
        ProgramParams,
        program_and_verify,
        report,
    )

    chip = Chip(TILE, "ideal", seed=1)
    chip.set_stuck(2, 3, 0, -1)   # G+ stuck at g_min, target far above
    chip.set_stuck(4, 5, 1, 1)    # G- stuck at g_max, target 0
    t = np.random.default_rng(1).integers(-96, 97, size=(TILE.rows, TILE.cols))
    t[2, 3], t[4, 5] = 90, 40
    res = program_and_verify(chip, t, ProgramParams())
    assert res.failed == 2 and res.stuck == 2
    assert res.passed == 2 * TILE.rows * TILE.cols - 2
    assert res.status[2, 3] == POS_STUCK | NEG_PASS and res.status[4, 5] == POS_PASS | NEG_STUCK
    assert res.pulses == int(res.iterations.sum()) and res.iterations.max() <= 30
    fig = report(chip, t, res.status, 5)
    assert fig["passed_outside_tol"] == 0 and fig["yield"] == res.passed / fig["devices"]
    # On ideal devices every passed read is the device's conductance in LSB.
    for s in (0, 1):
        ok = (res.status & (POS_PASS if s == 0 else NEG_PASS)) != 0
        target = np.maximum(t, 0) if s == 0 else np.maximum(-t, 0)
        assert np.all(np.abs(chip.ideal_reads(s) - target)[ok] <= 5)


def test_program_params_and_targets_are_checked():
    from aimc.model.program import ProgramParams, check_targets, targets_from_weights

    chip = Chip(TILE, "ideal")
    for kw, text in (({"tol": 256}, "ProgramParams.tol must be an integer in 0..255 (counts), "
                                    "not 256"),
                     ({"max_iter": 0}, "ProgramParams.max_iter must be an integer in 1..255"),
                     ({"width": 1.5}, "ProgramParams.width must be an integer in 1..255")):
        with pytest.raises(ValueError, match=re.escape(text)):
            ProgramParams(**kw)
    with pytest.raises(ValueError, match=r"targets must have shape \(16, 16\), not \(4, 4\)"):
        check_targets(np.zeros((4, 4), dtype=int), chip)
    with pytest.raises(ValueError, match=r"targets \(read counts\) must be integers \(whole-"
                                         r"number floats are accepted\), not float64 values "
                                         r"such as 0\.5"):
        check_targets(np.full((16, 16), 0.5), chip)
    assert check_targets(np.full((16, 16), 3.0), chip).dtype == np.int64
    with pytest.raises(ValueError, match=r"targets must lie in -96\.\.96 \(the read counts of "
                                         r"g_max at adc_bits=8\), found 97"):
        check_targets(np.full((16, 16), -97), chip)
    with pytest.raises(ValueError, match="finite floating-point"):
        targets_from_weights(np.full((16, 16), np.nan), chip)
    w = np.linspace(-2, 1, 256).reshape(16, 16)
    t, scale = targets_from_weights(w, chip)
    assert scale == 96 / 2 and t.min() == -96 and t.max() == 48
