"""Model tier: the ideal model is integer arithmetic plus the documented quantisation, and the
per-cycle path used in cosimulation agrees with the batch path bit for bit, every effect on."""

import numpy as np
import pytest
from cycle_driver import EVERYTHING, random_chip, run_cycle_model

from aimc import TileConfig
from aimc.model import Chip, ModelConfig, Stream, normals, uniforms
from aimc.model.ports import pack_bits, unpack_bits, unpack_fields


def quantise(q, lsb, adc_bits):
    """The documented ideal conversion: round half up to the LSB, clamp to the code range."""
    half = 2 ** (adc_bits - 1)
    return np.clip(np.floor(np.asarray(q, dtype=np.float64) / lsb + 0.5), -half, half - 1
                   ).astype(np.int64)




@pytest.mark.parametrize("mode", ["pwm", "bitserial"])
def test_ideal_model_is_integer_arithmetic_then_quantisation(mode):
    cfg = TileConfig(rows=32, cols=16, input_mode=mode)
    chip, rng = random_chip(cfg, ModelConfig(integrator={"swing": 1000.0}))
    x = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(200, cfg.rows))
    w = chip.target_weights
    np.testing.assert_array_equal(chip.state().weights, w)
    lsb = chip.lsb
    if mode == "pwm":
        want = quantise(x @ w, lsb, cfg.adc_bits)
    else:
        mag, sign = np.abs(x), np.sign(x)
        want = sum(quantise((sign * ((mag >> p) & 1)) @ w, lsb, cfg.adc_bits) << p
                   for p in range(cfg.planes))
    got = chip.mvm(x)
    np.testing.assert_array_equal(got, want)
    # The chosen LSB uses the converter: codes spread over most of the range.
    assert np.abs(got).max() >= 2 ** (cfg.adc_bits - 2)


@pytest.mark.parametrize("cfg", [
    TileConfig(rows=16, cols=8),
    TileConfig(rows=16, cols=8, input_mode="bitserial", cols_per_adc=2),
    TileConfig(rows=8, cols=8, cols_per_adc=4, adc_bits=6),
])
@pytest.mark.parametrize("model", ["pcm", "rram", EVERYTHING])
def test_cycle_path_equals_batch_path_on_noisy_chips(cfg, model):
    chip, rng = random_chip(cfg, model)
    x = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(12, cfg.rows))
    for time in (0.0, 3600.0):
        batch = chip.mvm(x, first_vector=0, time=time)  # the cycle model numbers from 0
        np.testing.assert_array_equal(run_cycle_model(chip, x, time)[0], batch)
    # The effects are real: the ideal chip with the same weights gives other results.
    ideal = Chip(cfg, "ideal", seed=3)
    ideal.program(chip.target_weights)
    assert not np.array_equal(ideal.mvm(x), batch)


def test_noise_is_keyed_by_event_not_by_order():
    cfg = TileConfig(rows=16, cols=8)
    chip, rng = random_chip(cfg, EVERYTHING)
    x = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(6, cfg.rows))
    whole = chip.mvm(x)
    np.testing.assert_array_equal(chip.mvm(x[3:], first_vector=3), whole[3:])
    other_seed, _ = random_chip(cfg, EVERYTHING, seed=4)
    other_seed.program(chip.target_weights)
    assert not np.array_equal(other_seed.mvm(x), whole)


def test_integrator_saturates_every_cycle():
    cfg = TileConfig(rows=2, cols=1, input_bits=4)  # x_max 7, window 7 cycles
    model = ModelConfig(array={"weight_bits": 4}, adc={"lsb": 1.0},
                        integrator={"swing": 10 / 128})  # limit 10 charge units
    chip = Chip(cfg, model)
    assert chip.limit == 10.0
    chip.program(np.array([[7], [-7]]))
    # Row 0 (+7 per cycle) runs 7 cycles, row 1 (-7 per cycle) 3 cycles: the running sum
    # would be 0,0,0,7,14,... but clamps at 10 -> final 10, while the unclamped sum is 28.
    x = np.array([[7, 3]])
    assert chip.state().charges(x, 0)[0, 0] == 10.0
    np.testing.assert_array_equal(run_cycle_model(chip, x)[0], chip.mvm(x))
    # Partial sums that exceed the limit and come back: row 1 negative first.
    chip.program(np.array([[-7], [7]]))
    x = np.array([[2, 7]])  # -0 net for 2 cycles, then +7 for 5: 35 -> clamps to 10
    assert chip.state().charges(x, 0)[0, 0] == 10.0
    np.testing.assert_array_equal(run_cycle_model(chip, x)[0], chip.mvm(x))


def test_comparison_before_any_integration_is_a_contract_violation():
    chip, _ = random_chip(TileConfig(rows=4, cols=4))
    model = chip.cycle_model()
    with pytest.raises(RuntimeError, match=r"^analogue boundary: a comparison was requested "
                                           r"\(adc_sample\) before any integrator reset"):
        model.cycle(int_reset=0, row_en=0, row_neg=0, sample=1, sel=0, trial=0x80)


def test_event_draws_are_pure_functions_of_seed_source_and_event():
    a = normals(5, Stream.COMPARATOR, 17, 4, 3)
    np.testing.assert_array_equal(a, normals(5, Stream.COMPARATOR, 17, 4, 3))
    # Event by event equals a block of consecutive events.
    np.testing.assert_array_equal(
        np.concatenate([normals(5, Stream.COMPARATOR, 17 + i, 1, 3) for i in range(4)]), a)
    assert not np.array_equal(a, normals(5, Stream.COMPARATOR, 18, 4, 3))
    assert not np.array_equal(a, normals(5, Stream.READ, 17, 4, 3))
    assert not np.array_equal(a, normals(6, Stream.COMPARATOR, 17, 4, 3))
    assert not np.array_equal(a, normals(5, Stream.COMPARATOR, 17, 4, 3, context=1))
    big = normals(1, Stream.READ, 0, 1, 400_000)[0]
    assert abs(big.mean()) < 0.005 and abs(big.std() - 1) < 0.005
    # Tails: 2.5 and 4 sigma frequencies within their sampling error.
    assert abs((np.abs(big) > 2.5).mean() - 0.012419) < 0.0008
    assert (np.abs(big) > 4).sum() <= 80 and np.abs(big).max() < 6.34
    u = uniforms(1, Stream.STATIC, 0, 1, 100_000)[0]
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005


def test_packing_helpers_round_trip():
    bits = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=bool)
    assert pack_bits(bits) == 0b110001101
    np.testing.assert_array_equal(unpack_bits(0b110001101, 9), bits)
    np.testing.assert_array_equal(unpack_fields(0x3A5, 3, 4), [5, 10, 3])


def test_bad_weights_inputs_and_seed():
    cfg = TileConfig(rows=4, cols=4)
    chip = Chip(cfg)
    with pytest.raises(ValueError, match=r"^weights must have shape \(4, 4\), not \(4, 3\)$"):
        chip.program(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"^weights must lie in -127\.\.127 \(weight_bits=8\), "
                                         r"found 128$"):
        chip.program(np.full((4, 4), 128))
    with pytest.raises(ValueError, match=r"^weights must be integers \(whole-number floats are "
                                         r"accepted\), not float64 values such as 0\.5$"):
        chip.program(np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match=r"^inputs must lie in -127\.\.127 \(input_bits=8\), "
                                         r"found 128$"):
        chip.mvm(np.full((1, 4), -128))
    with pytest.raises(ValueError, match=r"^inputs must have shape \(batch, 4\), not \(1, 5\)$"):
        chip.mvm(np.zeros((1, 5), dtype=int))
    with pytest.raises(ValueError, match=r"^chip seed must be an integer in \[0, 2\*\*64\), "
                                         r"not -1$"):
        Chip(cfg, seed=-1)


def test_saturation_path_equals_cycle_path_on_a_noisy_chip():
    """A small integrator swing: some vectors clamp mid-window and end inside the range,
    some end at the rail, most never clamp; the batch path picks them apart by its bounds
    and must still equal the per-cycle path bit for bit."""
    cfg = TileConfig(rows=48, cols=12, cols_per_adc=2)
    model = EVERYTHING.replace(integrator={"swing": 0.35})
    chip, rng = random_chip(cfg, model)
    x = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(40, cfg.rows))
    x[::3] = np.sort(x[::3], axis=1)  # partial sums that overshoot and come back
    state = chip.state()
    q = state.charges(x, 0)
    unclamped = state.drive(x, 0) @ state.weights
    at_rail = np.isclose(np.abs(q), chip.limit)
    came_back = ~at_rail & (q != unclamped)
    assert at_rail.any() and came_back.any() and (q == unclamped).any()
    np.testing.assert_array_equal(run_cycle_model(chip, x)[0], chip.mvm(x))
