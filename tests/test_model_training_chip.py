"""Training on a chip, in the model: the golden update applied to a chip and the per-cycle
path's update slots give the same conductances bit for bit, and MVMs see the new weights."""

import numpy as np
import pytest

from aimc import TileConfig
from aimc.model import Chip
from aimc.model.ports import pack_bits
from aimc.model.update import UpdateEngine

TILE = TileConfig(rows=12, cols=8)


@pytest.mark.parametrize("preset", ["gokmen-vlasov", "reram-sb", "ecram"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_golden_update_equals_the_cycle_path(preset, deterministic):
    rng = np.random.default_rng(4)
    chip, twin = Chip(TILE, preset, seed=9), Chip(TILE, preset, seed=9)
    w = rng.integers(-40, 41, size=(TILE.rows, TILE.cols))
    chip.program(w)
    twin.program(w)
    engine = UpdateEngine(TILE, 123)
    model = twin.cycle_model()
    x_batch = rng.integers(-TILE.x_max, TILE.x_max + 1, size=(5, TILE.rows))
    for x in x_batch:
        d = rng.integers(-TILE.x_max, TILE.x_max + 1, size=TILE.cols)
        r = engine.update_managed(chip, x, d, eta=int(0.02 * 2**24), bl_max=31,
                                  deterministic=deterministic, record=True)
        model.update_start()
        for t in range(r.slots):
            fr, fc = r.fire_rows[t], r.fire_cols[t]
            model.update_slot(pack_bits(fr), pack_bits(fr & (x < 0)), pack_bits(fc),
                              pack_bits(fc & (d < 0)))
        assert r.slots > 0 and r.up + r.down > 0
        np.testing.assert_array_equal(twin.g_prog, chip.g_prog)
    assert (chip.update_up, chip.update_down) == (twin.update_up, twin.update_down)
    # The weights moved, and an MVM sees them.
    assert not np.array_equal(chip.training.weights * chip.training_scale, w)
    x = rng.integers(-TILE.x_max, TILE.x_max + 1, size=(3, TILE.rows))
    np.testing.assert_array_equal(chip.mvm(x), twin.mvm(x))
    assert not np.array_equal(chip.mvm(x), Chip(TILE, preset, seed=9).mvm(x))


def test_programming_a_training_chip_sets_its_update_devices():
    """Within the devices' bounds the pairs hold the integer weights exactly (the scale is
    w_max / (2 span) integer units per device unit); beyond, a device stops at its bound."""
    chip = Chip(TILE, "gokmen-vlasov", seed=1)
    w = np.arange(TILE.rows * TILE.cols).reshape(TILE.rows, TILE.cols) % 31 - 15
    chip.program(w)
    weights = (chip.g_prog[..., 0] - chip.g_prog[..., 1]) / chip.g_lsb
    p, ref, scale = chip.training.params, chip.training.w_ref, chip.training_scale
    want = np.clip(w / scale + ref, p.b_min, p.b_max) - ref
    np.testing.assert_allclose(weights, want * scale, atol=1e-9)
    assert np.mean(np.abs(weights - w) < 1e-9) > 0.9  # most within their bounds
    # The same converters (the same seed's static draws) with the integer weights: the
    # results differ by the devices clipped at their bounds alone.
    same = Chip(TILE, "adc-only", seed=1)
    same.program(np.round(weights).astype(np.int64))
    x = np.random.default_rng(2).integers(-TILE.x_max, TILE.x_max + 1, size=(4, TILE.rows))
    assert np.abs(chip.mvm(x) - same.mvm(x)).max() <= 1
    chip.program(np.full((TILE.rows, TILE.cols), chip.w_max))
    np.testing.assert_allclose(chip.training.w, p.b_max)  # every device at its upper bound


def test_update_slots_need_pulsed_devices():
    chip = Chip(TILE, "pcm", seed=1)
    with pytest.raises(ValueError, match=r"^the chip's model 'pcm' has no pulsed devices "
                                         r"\(update.kind 'none'\): use a training preset"):
        chip.update_slot(0, 0, np.ones(12, bool), np.zeros(12, bool), np.ones(8, bool),
                         np.zeros(8, bool))


@pytest.mark.parametrize("preset", ["gokmen-vlasov", "ecram"])
def test_a_slot_without_coincidence_changes_nothing(preset):
    """A slot where rows fire but no column (or the reverse) pulses no device and draws no
    noise, on noisy devices too; the slot is still counted."""
    chip = Chip(TILE, preset, seed=2)
    before = chip.training.w.copy()
    rows, cols = np.ones(TILE.rows, bool), np.zeros(TILE.cols, bool)
    assert chip.training.noisy
    assert chip.update_slot(0, 0, rows, rows, cols, cols) == (0, 0)
    assert chip.update_slot(0, 1, ~rows, ~rows, ~cols, cols) == (0, 0)
    assert chip.training.apply(rows, rows, cols, cols) == (0, 0)  # no z needed
    np.testing.assert_array_equal(chip.training.w, before)
    assert (chip.update_slots, chip.update_up, chip.update_down) == (2, 0, 0)
    # One coincidence does need the slot's deviates.
    cols[3] = True
    with pytest.raises(ValueError, match=r"^z must be an array of shape \(12, 8\)"):
        chip.training.apply(rows, rows, cols, cols)
