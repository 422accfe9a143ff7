"""Model tier: each device, wire, driver and converter effect measured against its configured
value, over enough samples that the stated tolerances are several standard errors wide.
Fixed seeds: the draws are pure functions of (seed, event), so these tests never flake."""

import math

import numpy as np
import pytest

from aimc import TileConfig
from aimc.model import Chip, ModelConfig, preset
from aimc.model.chip import BOLTZMANN_EV

BIG = TileConfig(rows=256, cols=256)
PCM = preset("pcm")


def uniform_chip(model, level, seed=1, tile=BIG):
    """A chip with every weight at ``level`` (G+ at the level, G- at g_min)."""
    chip = Chip(tile, model, seed=seed)
    chip.program(np.full((tile.rows, tile.cols), level))
    return chip


@pytest.mark.parametrize("level", [25, 51, 76, 102, 127])
def test_programming_noise_follows_the_state_dependent_polynomial(level):
    # 65,536 devices per level: the standard error of the measured sigma is 0.3 %.
    chip = uniform_chip(PCM, level)
    target = chip.g_target[..., 0]
    error = chip.g_prog[..., 0] - target
    g = target[0, 0] / PCM.device.g_max
    want = 0.26348 + 1.9650 * g - 1.1731 * g**2  # aihwkit PCMLikeNoiseModel prog_coeff, uS
    assert abs(error.std() / want - 1) < 0.015
    assert abs(error.mean()) < 4 * want / math.sqrt(error.size)
    # The G- device, programmed to g_min = 0, is clipped at zero: never negative.
    assert chip.g_prog[..., 1].min() == 0.0


@pytest.mark.parametrize("level", [13, 64, 127])
def test_drift_exponent_distribution_and_power_law(level):
    model = PCM.replace(device={"read_q": 0.0})
    chip = uniform_chip(model, level)
    d = model.device
    g = level / 127
    mu = min(max(-0.0155 * math.log(g) + 0.0244, d.nu_mean_lo), d.nu_mean_hi)
    sd = min(max(-0.0125 * math.log(g) - 0.0059, d.nu_std_lo), d.nu_std_hi)
    nu = chip.nu[..., 0]
    assert abs(nu.mean() - mu) < 0.01 * mu + 3 * sd / math.sqrt(nu.size)
    assert abs(nu.std() / sd - 1) < 0.03
    # G(t) = G_prog ((t + t0) / t0)^-nu, exactly, device by device.
    for t in (3600.0, 86400.0 * 30):
        got = chip.conductances(t)[..., 0]
        want = chip.g_prog[..., 0] * ((t + d.drift_t0) / d.drift_t0) ** -chip.nu[..., 0]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # Measured from conductances alone, the mean exponent is recovered.
    g1, g2 = chip.conductances(100.0)[..., 0], chip.conductances(1e6)[..., 0]
    est = np.log(g1 / g2) / math.log((1e6 + 20) / (100 + 20))
    assert abs(est.mean() - nu.mean()) < 1e-9


@pytest.mark.parametrize("level, time", [(13, 20.0), (64, 3600.0), (127, 86400.0)])
def test_flicker_read_noise_grows_with_log_time(level, time):
    model = PCM.replace(device={"prog_c0": 0.0, "prog_c1": 0.0, "prog_c2": 0.0,
                                "nu_mean_lo": 0.0, "nu_mean_hi": 0.0, "nu_mean_b": 0.0,
                                "nu_mean_a": 0.0, "nu_std_lo": 0.0, "nu_std_hi": 0.0,
                                "nu_std_a": 0.0, "nu_std_b": 0.0})
    chip = uniform_chip(model, level)
    g0 = chip.g_prog[..., 0]
    rel = chip.conductances(time)[..., 0] / g0 - 1
    g = level / 127
    t = time + 20.0
    want = min(0.0088 / g**0.65, 0.2) * math.sqrt(math.log((t + 250e-9) / (2 * 250e-9)))
    assert abs(rel.std() / want - 1) < 0.015
    # A new read time is a new draw; the same read time is the same draw.
    np.testing.assert_array_equal(chip.conductances(time), chip.conductances(time))
    assert not np.array_equal(chip.conductances(time), chip.conductances(time + 1))


def test_temperature_scales_conductance_by_arrhenius():
    chip = uniform_chip(PCM, 90, tile=TileConfig(rows=8, cols=8))
    hot = chip.conductances(0.0, temperature=330.0)
    ref = chip.conductances(0.0)
    factor = math.exp(-0.2 / BOLTZMANN_EV * (1 / 330 - 1 / 300))
    assert factor > 1.5  # PCM conducts much better hot
    np.testing.assert_allclose(hot, ref * factor, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^temperature must be in kelvin, 200\.\.1000 K, not -5 "
                                         r"\(below 200 K is no operating temperature; 25 "
                                         r"degrees Celsius is 298\.15 K\)$"):
        chip.conductances(0.0, temperature=-5)


def test_stuck_devices_at_their_rate_and_deaf_to_programming():
    model = PCM.replace(device={"stuck_gmin_rate": 0.01, "stuck_gmax_rate": 0.004})
    chip = uniform_chip(model, 64)
    n = chip.stuck.size
    for value, rate in ((-1, 0.01), (1, 0.004)):
        count = (chip.stuck == value).sum()
        assert abs(count - rate * n) < 4 * math.sqrt(rate * n)
    assert np.all(chip.g_prog[chip.stuck < 0] == 0.0)
    assert np.all(chip.g_prog[chip.stuck > 0] == 25.0)
    # Stuck devices neither drift nor read noisy.
    g = chip.conductances(86400.0)
    assert np.all(g[chip.stuck > 0] == 25.0)


def test_ir_drop_lowers_effective_weights_and_vanishes_with_the_wires():
    tile = TileConfig(rows=32, cols=16)
    w = np.full((32, 16), 100)
    # Bounds around the worst-cell loss of a 32x16 array at 100/127 of 25 uS.
    for r, lo, hi in ((0.0, 0.0, 0.0), (0.35, 0.002, 0.008), (5.0, 0.03, 0.1)):
        chip = Chip(tile, ModelConfig(array={"r_row": r, "r_col": r}))
        chip.program(w)
        loss = 1 - chip.state().weights / w
        assert loss.min() >= 0
        assert lo <= loss.max() <= hi
        if r:
            # The cell farthest from its driver and from its integrator loses most.
            assert loss[0, -1] == loss.max()


def test_driver_edge_loss_and_polarity_mismatch():
    tile = TileConfig(rows=1, cols=1)
    model = ModelConfig(driver={"edge_loss": 0.25, "polarity_mismatch": 0.0625},
                        integrator={"swing": 1000.0})
    chip = Chip(tile, model)
    chip.program(np.array([[10]]))
    state = chip.state()
    for x in (1, 7, 127, -1, -127):
        amp = 1 + 0.0625 * np.sign(x)
        assert state.charges(np.array([[x]]), 0)[0, 0] == np.sign(x) * amp * (abs(x) - 0.25) * 10
    assert state.charges(np.array([[0]]), 0)[0, 0] == 0


BIG_ADC = TileConfig(rows=4, cols=1024, adc_bits=8)


def test_integrator_gain_and_offset_spread():
    model = ModelConfig(integrator={"gain_error": 0.07, "offset": 2.0})
    adc = Chip(BIG_ADC, model, seed=2).adc
    assert abs(adc.gain.std() / 0.07 - 1) < 0.1 and abs(adc.gain.mean() - 1) < 0.01
    assert abs(adc.offset.std() / 2.0 - 1) < 0.1


def test_dac_capacitor_mismatch_makes_dnl_at_the_major_carry():
    sigma_u = 0.01
    model = ModelConfig(adc={"cap_mismatch": sigma_u})
    chip = Chip(BIG_ADC, model, seed=2)
    lsb = chip.lsb
    thr = chip.adc.thresholds / lsb
    # Width of the code 127 -> 128 step (the MSB carry): 1 LSB nominal; its error is the
    # MSB capacitor against all the lower ones, variance sigma_u^2 (2^7 + 2^7 - 1).
    width = thr[:, 128] - thr[:, 127]
    want = sigma_u * math.sqrt(255)
    assert abs((width - 1).std() / want - 1) < 0.1
    # Without mismatch every code is exactly one LSB wide.
    ideal = Chip(BIG_ADC, ModelConfig(), seed=2).adc.thresholds / lsb
    np.testing.assert_array_equal(np.diff(ideal[:, 1:], axis=1), 1.0)
    # DNL and INL of one converter exist and are measured from its transfer.
    dnl = np.diff(thr[0, 1:]) - 1
    assert 0 < np.abs(dnl).max() < 1


def test_comparator_offset_spread():
    chip = Chip(BIG_ADC, ModelConfig(adc={"comparator_offset": 1.0}), seed=2)
    # A comparator offset shifts every threshold of its ADC by the same amount.
    shift = chip.adc.thresholds[:, 1:] / chip.lsb - (np.arange(1, 256) - 128 - 0.5)
    assert np.allclose(shift, shift[:, :1])
    assert abs(shift[:, 0].std() - 1.0) < 0.1


def test_reference_source_error():
    chip = Chip(BIG_ADC, ModelConfig(adc={"ref_level": 0.5, "ref_error": 0.005}), seed=2)
    nominal = 0.5 * 128 * chip.lsb
    rel = chip.adc.reference / nominal - 1
    assert abs(rel.std() / 0.005 - 1) < 0.1 and abs(rel.mean()) < 0.001
    # The cycle model injects it into the integrators.
    model = chip.cycle_model()
    model.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0)
    model.inject_reference()
    np.testing.assert_array_equal(model.q, chip.adc.reference)


def test_converter_input_noise_rms():
    tile = TileConfig(rows=1, cols=256)
    chip = Chip(tile, ModelConfig(adc={"input_noise": 2.0, "lsb": 4.0}), seed=3)
    chip.program(np.full((1, 256), 10))
    x = np.full((40, 1), 33)  # charge 330 = 82.5 LSB: away from the rails
    codes = chip.mvm(x)
    # A 2 LSB RMS Gaussian quantised to integers: RMS sqrt(4 + 1/12) around 82.5.
    assert abs(codes.std() / math.sqrt(4 + 1 / 12) - 1) < 0.04
    assert abs(codes.mean() - 82.5) < 0.05


def test_comparator_decision_noise_at_the_last_step():
    tile = TileConfig(rows=1, cols=256)
    sigma = 0.1
    chip = Chip(tile, ModelConfig(adc={"comparator_noise": sigma, "lsb": 1.0}), seed=3)
    chip.program(np.full((1, 256), 1))
    # A value one sigma above the threshold between codes 99 and 100 is decided at one SAR
    # step; every other threshold it meets is at least 0.9 LSB (9 sigma, beyond the 6.34
    # sigma bound of the deviates) away: P(code 100) = Phi(1).
    noise = np.random.default_rng(0).standard_normal((80, 256, 8))
    v = np.full((80, 256), 99.5 + sigma)
    codes = chip.adc.search(v, np.arange(256), sigma * noise) - 128
    assert abs((codes == 100).mean() - 0.8413) < 0.01
    # Through the model's own event-keyed draws, with a weight of 1: input 100 sits half an
    # LSB (5 sigma) above that threshold and input 99 5 sigma below it.
    out = chip.mvm(np.tile([[100], [99]], (40, 1)))
    assert np.all(out[0::2] == 100) and np.all(out[1::2] == 99)


def test_white_device_noise_equals_the_sum_of_per_device_draws():
    """One column-level draw with the summed variance, against an explicit Monte Carlo of an
    independent draw per device per driven cycle."""
    tile = TileConfig(rows=64, cols=8)
    white = 0.02
    model = ModelConfig(device={"white_noise": white}, adc={"lsb": 100.0})
    chip = Chip(tile, model, seed=4)
    rng = np.random.default_rng(0)
    # Alternating full-scale weights and full-scale inputs: the column charge cancels to 0
    # while every device conducts at g_max, so the noise is large against the signal.
    chip.program(np.where(np.arange(64)[:, None] % 2, 127, -127).repeat(8, axis=1))
    x = np.full((1, 64), 127)
    state = chip.state()
    counts = np.abs(x[0])
    sigma = state.sigma(counts)
    # Explicit per-device model: each driven cycle of each device adds N(0, s^2) with
    # s^2 = (white g_max)^2 G / g_max, in conductance LSB.
    g = chip.conductances()
    s2 = (white * 25.0) ** 2 * g / 25.0 / chip.g_lsb**2          # (rows, cols, 2)
    # Independent per-cycle draws of one device sum to a draw of n times the variance.
    mc = (rng.standard_normal((4000, 64, 8, 2)) * np.sqrt(s2 * counts[:, None, None])
          ).sum(axis=(1, 3))
    np.testing.assert_allclose(mc.std(axis=0) / sigma, 1, atol=0.05)
    # And the converter sees that spread: codes over repeated MVMs of one vector.
    codes = chip.mvm(np.repeat(x, 3000, axis=0))
    want = np.sqrt(sigma**2 / chip.lsb**2 + 1 / 12)
    np.testing.assert_allclose(codes.std(axis=0) / want, 1, atol=0.06)
