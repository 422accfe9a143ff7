"""Model tier: the integrator-saturated latch. The per-cycle path latches, per column, whether
the clamp acted since the last integrator reset; the batch path predicts it per vector
(:meth:`ChipState.saturation`, OR over bit planes), bit for bit, including clips mid-window
that leave the final charge inside the converter range (which the ADC code does not show)."""

import numpy as np
import pytest
from cycle_driver import EVERYTHING, random_chip, run_cycle_model

from aimc import TileConfig
from aimc.model import Chip, ModelConfig
from aimc.model.ports import pack_bits
from aimc.programming import READ_CYCLES

#: Every effect that changes the integrated charge (drivers, wires, stuck devices, drift),
#: and the noise that does not (it is added at the comparison), with a small swing.
EVERYTHING_SMALL_SWING = EVERYTHING.replace(name="everything-small-swing",
                                            integrator={"swing": 0.25})
IDEAL_SMALL_SWING = ModelConfig(integrator={"swing": 0.25})

TILES = [
    TileConfig(rows=16, cols=16),
    TileConfig(rows=16, cols=16, input_mode="bitserial"),
    TileConfig(rows=16, cols=16, cols_per_adc=4),
    TileConfig(rows=16, cols=16, input_mode="bitserial", cols_per_adc=2),
]


def mixed_inputs(chip, rng):
    """Inputs that clip some columns and not others: per target column, rows whose product
    with the column's weight is positive driven for ``a`` cycles and the others negatively
    for the whole window (the charge climbs into the clamp, then falls back inside the
    range); uniform random vectors, sorted ones, and small ones after the clipping ones (the
    latch must clear at each reset)."""
    cfg = chip.tile
    w, x_max = chip.target_weights, cfg.x_max
    rows = []
    for c in range(0, cfg.cols, 3):
        s = np.sign(w[:, c])
        long = rng.permutation(cfg.rows) < cfg.rows // 4
        for a in (x_max // 3, x_max // 2, 2 * x_max // 3):
            rows.append(np.where(long, -s * x_max, s * a))
        rows.append(s * x_max)  # full scale, aligned: ends at the rail
    x = np.array(rows, dtype=np.int64)
    rand = rng.integers(-x_max, x_max + 1, size=(12, cfg.rows))
    rand[::2] = np.sort(rand[::2], axis=1)
    # Small: one row of magnitude <= 3, one weight a cycle, far inside the limit.
    small = np.zeros((len(x) + len(rand), cfg.rows), dtype=np.int64)
    small[np.arange(len(small)), rng.integers(0, cfg.rows, len(small))] = \
        rng.integers(-3, 4, len(small))
    both = np.concatenate([x, rand])
    return np.stack([both, small], axis=1).reshape(-1, cfg.rows)


@pytest.mark.parametrize("cfg", TILES, ids=lambda c: f"{c.input_mode}-cpa{c.cols_per_adc}")
@pytest.mark.parametrize("model", [IDEAL_SMALL_SWING, EVERYTHING_SMALL_SWING],
                         ids=["ideal", "everything"])
def test_cycle_latch_equals_batch_saturation(cfg, model):
    chip, rng = random_chip(cfg, model, seed=5)
    x = mixed_inputs(chip, rng)
    state = chip.state()
    got_codes, latched = run_cycle_model(chip, x)
    np.testing.assert_array_equal(got_codes, state.mvm(x))
    sat = state.saturation(x)
    assert sat.shape == x.shape[:1] + (cfg.cols,) and sat.dtype == bool
    np.testing.assert_array_equal(latched, sat)
    assert sat.any() and not sat.all()
    assert not sat[1::2].any()  # the small vectors: the latch was cleared at every reset
    if cfg.input_mode == "pwm":
        # A clip the ADC code cannot show: the clamp acted mid-window and the final charge
        # is strictly inside +-limit.
        q = state.charges(x, 0)
        came_back = sat & (np.abs(q) < chip.limit)
        assert came_back.any()
        # Without a clip the charge is the unclamped sum, so a different charge means one.
        assert sat[q != state.drive(x, 0) @ state.weights].all()
    else:
        # One cycle per plane from an empty integrator: the clamp acts on the plane's
        # unclamped charge alone (a charge exactly at the limit is no clip).
        unclamped = np.stack([state.drive(x, p) @ state.weights for p in range(cfg.planes)])
        np.testing.assert_array_equal(sat, (np.abs(unclamped) > chip.limit).any(axis=0))


def test_clip_is_strictly_beyond_the_limit_and_can_come_back():
    """By hand, limit 10, row 0 driven +2 cycles, row 1 -7 cycles. Column 0 (weights 7, 1)
    runs 6, 12 -> 10, then falls by 1 a cycle to 5: clipped, inside the range. Column 1
    (weights 6, 1) runs 5, 10 (exactly the limit: the clamp is idle), then to 5: not
    clipped. Same final charge, same code; only the latch tells them apart."""
    cfg = TileConfig(rows=2, cols=2, input_bits=4)  # x_max 7, window 7 cycles
    model = ModelConfig(array={"weight_bits": 4}, adc={"lsb": 1.0},
                        integrator={"swing": 10 / 128})
    chip = Chip(cfg, model)
    assert chip.limit == 10.0
    chip.program(np.array([[7, 6], [1, 1]]))
    state = chip.state()
    x = np.array([[2, -7]])
    np.testing.assert_array_equal(state.charges(x, 0), [[5.0, 5.0]])
    np.testing.assert_array_equal(state.saturation(x), [[True, False]])
    codes, latched = run_cycle_model(chip, x)
    np.testing.assert_array_equal(latched, [[True, False]])
    assert codes[0, 0] == codes[0, 1]
    # One more cycle of row 0: column 1 now reaches 15 and clamps too (both end at 6).
    x = np.array([[3, -7]])
    np.testing.assert_array_equal(state.charges(x, 0), [[6.0, 6.0]])
    np.testing.assert_array_equal(state.saturation(x), [[True, True]])
    np.testing.assert_array_equal(run_cycle_model(chip, x)[1], [[True, True]])


def test_reference_beyond_the_limit_clips_every_column():
    """``swing`` below ``ref_level``: the reference charge alone passes the limit, so the
    injection clamps and every column latches, whatever the inputs."""
    for cfg in (TileConfig(rows=16, cols=16), TileConfig(rows=16, cols=16, cols_per_adc=4,
                                                          input_mode="bitserial")):
        chip, rng = random_chip(cfg, ModelConfig(integrator={"swing": 0.5},
                                                 adc={"ref_level": 0.75, "ref_error": 0.01}))
        assert np.all(chip.adc.reference > chip.limit)
        x = np.concatenate([np.zeros((1, cfg.rows), dtype=np.int64),
                            rng.integers(-3, 4, size=(2, cfg.rows))])
        state = chip.state()
        assert state.saturation(x, reference=True).all()
        assert not state.saturation(x[:1]).any()  # without the reference: nothing driven
        codes, latched = run_cycle_model(chip, x, reference=True)
        assert latched.all()
        np.testing.assert_array_equal(codes, state.mvm(x, reference=True))


@pytest.mark.parametrize("cfg", TILES[:3], ids=lambda c: f"{c.input_mode}-cpa{c.cols_per_adc}")
def test_reference_integrations_agree(cfg):
    """The reference inside the range (default swing 2, ref_level 0.75): the integrations
    that start from it clip where the charge adds to it, and the paths agree."""
    chip, rng = random_chip(cfg, "pcm", seed=5)
    assert np.all(np.abs(chip.adc.reference) < chip.limit)
    x = mixed_inputs(chip, rng)
    state = chip.state()
    sat = state.saturation(x, reference=True)
    codes, latched = run_cycle_model(chip, x, reference=True)
    np.testing.assert_array_equal(latched, sat)
    np.testing.assert_array_equal(codes, state.mvm(x, reference=True))
    assert sat.any() and not sat.all()
    # The reference shifts the charge up: some vectors clip only with it.
    assert (sat & ~state.saturation(x)).any()


@pytest.mark.parametrize("mode", ["pwm", "bitserial"])
def test_small_inputs_never_clip_full_scale_ones_do(mode):
    cfg = TileConfig(rows=32, cols=8, input_mode=mode)
    chip = Chip(cfg, "pcm", seed=2)
    rng = np.random.default_rng(2)
    w = rng.choice([-chip.w_max, chip.w_max], size=(cfg.rows, cfg.cols))
    chip.program(w)
    state = chip.state()
    # Inputs of magnitude <= 1 on half the rows: at most 16 weights a cycle, one cycle.
    small = np.zeros((50, cfg.rows), dtype=np.int64)
    small[:, :16] = rng.integers(-1, 2, size=(50, 16))
    assert not state.saturation(small).any()
    # Full-scale inputs aligned with column c's full-scale weights: column c clips.
    x = (np.sign(w) * cfg.x_max).T
    sat = state.saturation(x)
    assert sat[np.arange(cfg.cols), np.arange(cfg.cols)].all()
    q = np.stack([state.charges(x, p) for p in range(cfg.planes)])
    at_rail = (np.abs(q) == chip.limit).any(axis=0)
    assert at_rail[np.arange(cfg.cols), np.arange(cfg.cols)].all()
    assert sat[at_rail].all()
    np.testing.assert_array_equal(sat, run_cycle_model(chip, x)[1])


def test_device_read_latches():
    """A device read integrates through the same clamp: at half the default swing a g_max
    device (96 counts) passes the limit (64 counts), a g_min one does not."""
    cfg = TileConfig(rows=4, cols=8)
    chip = Chip(cfg, ModelConfig(integrator={"swing": 0.5}), seed=1)
    w = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)
    w[1, ::2] = chip.w_max
    chip.program(w)
    model = chip.cycle_model()
    model.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0, read_dev=1)
    for _ in range(READ_CYCLES):
        model.cycle(int_reset=0, row_en=pack_bits(np.arange(cfg.rows) == 1), row_neg=0,
                    sample=0, sel=0, trial=0)
    want = READ_CYCLES * chip.read_weights(0)[1] > chip.limit
    np.testing.assert_array_equal(want, w[1] > 0)
    np.testing.assert_array_equal(model.clipped, want)
    assert model.saturated(0) == pack_bits(want)
    # A copy: the latch is the model's own.
    model.clipped[:] = False
    np.testing.assert_array_equal(model.clipped, want)
    # An MVM integration reset clears it.
    model.cycle(int_reset=1, row_en=0, row_neg=0, sample=0, sel=0, trial=0)
    assert not model.clipped.any() and model.saturated(0) == 0


def test_bad_inputs_raise_as_for_mvm():
    cfg = TileConfig(rows=4, cols=4, cols_per_adc=2)
    chip = Chip(cfg)
    state = chip.state()
    for bad in (np.full((1, 4), -128), np.zeros((1, 5), dtype=int), np.full((1, 4), 0.5)):
        with pytest.raises(ValueError) as want:
            state.mvm(bad)
        with pytest.raises(ValueError) as got:
            state.saturation(bad)
        assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match=r"^inputs must lie in -127\.\.127 \(input_bits=8\), "
                                         r"found 128$"):
        state.saturation(np.full((1, 4), 128), reference=True)
    model = chip.cycle_model()
    with pytest.raises(ValueError, match=r"^sel must be an integer in 0\.\.1, not 2$"):
        model.saturated(2)
