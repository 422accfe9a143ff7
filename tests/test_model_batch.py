"""Model tier: the compiled batch path (:mod:`aimc.model._batch`) against the previous numpy
path, bit for bit: random configurations, seeds and batch sizes, both directions, charges
placed exactly on and next to the converters' breakpoints, and the noise deviates."""

import zlib

import numpy as np
import pytest
from cycle_driver import EVERYTHING

from aimc import TileConfig
from aimc.model import Chip, preset
from aimc.model import _batch as kernels
from aimc.model.rng import _table, to_normals

#: Configurations of the analogue model the compiled path covers (no comparator noise) and
#: one it hands to the previous path (comparator noise).
MODELS = {
    "ideal": preset("ideal"),
    "pcm": preset("pcm"),
    "rram": preset("rram"),
    "adc-only": preset("adc-only"),
    "everything-but-comparator": EVERYTHING.replace(adc={"comparator_noise": 0.0}),
    "everything": EVERYTHING,
    "small-swing": preset("pcm").replace(integrator={"swing": 0.3},
                                         driver={"edge_loss": 0.1}),
    "white-noise": preset("pcm").replace(device={"white_noise": 0.05},
                                         driver={"polarity_mismatch": 0.04}),
}

TILES = [
    TileConfig(rows=16, cols=16),
    TileConfig(rows=24, cols=8, input_mode="bitserial"),
    TileConfig(rows=16, cols=32, cols_per_adc=4),
    TileConfig(rows=32, cols=16, input_mode="bitserial", cols_per_adc=2, input_bits=6),
    TileConfig(rows=8, cols=16, input_bits=10, adc_bits=6),
]


def both(state, x, first_vector=0, backward=False):
    """(compiled, previous) results of the same batch."""
    path = state.backward_path if backward else state.forward
    fast = (state.backward(x, first_vector) if backward else state.mvm(x, first_vector))
    return fast, state._batch(x, first_vector, False, path, previous=True)


@pytest.mark.parametrize("tile", TILES, ids=lambda t: t.key)
@pytest.mark.parametrize("model", MODELS, ids=str)
def test_compiled_path_equals_previous_path(tile, model):
    rng = np.random.default_rng(zlib.crc32(f"{tile.key} {model}".encode()))
    for seed in (1, int(rng.integers(2**63))):
        chip = Chip(tile, MODELS[model], seed=seed)
        chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(tile.rows, tile.cols)))
        state = chip.state(float(rng.choice([0.0, 3600.0])))
        for batch in (1, 2, 7, 65):
            first = int(rng.integers(0, 10**6))
            x = rng.integers(-tile.x_max, tile.x_max + 1, size=(batch, tile.rows))
            if batch == 65:
                x[:20] = tile.x_max * np.sign(x[:20])  # full drive: the clamp acts
            fast, previous = both(state, x, first)
            np.testing.assert_array_equal(fast, previous)
            d = rng.integers(-tile.x_max, tile.x_max + 1, size=(batch, tile.cols))
            fast, previous = both(state, d, first, backward=True)
            np.testing.assert_array_equal(fast, previous)


def test_large_batches_across_chunks_and_faults():
    tile = TileConfig(rows=64, cols=64)
    chip = Chip(tile, "pcm", seed=11)
    rng = np.random.default_rng(5)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(64, 64)))
    chip.set_column_fault(3, "dead")
    chip.set_column_fault(9, "stuck-high")
    state = chip.state(60.0)
    x = rng.integers(-tile.x_max, tile.x_max + 1, size=(2 * 1024 + 37, 64))
    fast, previous = both(state, x, 123)
    np.testing.assert_array_equal(fast, previous)
    np.testing.assert_array_equal(chip.mvm(x[5:9], first_vector=128, time=60.0), fast[5:9])


@pytest.mark.parametrize("mode", ["pwm", "bitserial"])
def test_charges_on_and_next_to_breakpoints(mode):
    """Breakpoints moved onto the exact charges of the batch, and one float64 step either
    side: the float32 charge is off by more than that, so only the exact recomputation
    gives the previous path's codes."""
    tile = TileConfig(rows=256, cols=32, input_mode=mode)
    model = preset("pcm").replace(adc={"input_noise": 0.0})
    chip = Chip(tile, model, seed=2)
    rng = np.random.default_rng(8)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(tile.rows, tile.cols)))
    state = chip.state(3600.0)
    x = rng.integers(-tile.x_max, tile.x_max + 1, size=(96, tile.rows))
    plane = tile.planes - 1
    q = state.charges(x, plane)                                  # exact, (batch, cols)
    q32 = (state._drive32[plane][x + tile.x_max] @ state.forward.w32).astype(np.float64)
    assert np.any(q32 != q)  # the float32 product is not exact here
    adc = chip.adc
    for c in range(tile.cols):
        thr = adc.thresholds[c]
        for k, v in enumerate(q[(3 * c) % 96:(3 * c) % 96 + 3, c]):
            # Replace the threshold nearest the charge by the charge itself, or a step off.
            t = 1 + np.argmin(np.abs(thr[1:] - v))
            thr[t] = [v, np.nextafter(v, np.inf), np.nextafter(v, -np.inf)][k]
    adc._tabulate()
    fast, previous = both(state, x)
    np.testing.assert_array_equal(fast, previous)


def test_noise_deviates_equal_to_normals():
    low = 1 << 20
    bins = np.arange(4096, dtype=np.int64) * low
    words = np.concatenate([
        np.arange(0, 3 * low, 997), np.arange(2**32 - 3 * low, 2**32, 991),  # the tails
        bins, bins + 1, bins + low - 1,                                      # bin edges
        np.random.default_rng(0).integers(0, 2**32, 100_000),
    ]).astype(np.uint32)
    raw = words[: words.size // 64 * 64].reshape(-1, 64)
    sigma = np.full((1, 1), 1.7)
    t = np.empty(raw.shape)
    kernels.noise(raw, 0, 1, sigma, False, *_table(), t)
    np.testing.assert_array_equal(t, 1.7 * to_normals(raw))


def test_small_draws_equal_numpy_philox():
    """Small draws go through the compiled Philox; they are numpy's words, large seeds
    (numpy's own reading of the key) included."""
    from aimc.model.rng import _SMALL_BLOCKS, _raw32

    rng = np.random.default_rng(3)
    for trial in range(300):
        seed = int(rng.integers(0, 2**64, dtype=np.uint64)) if trial % 2 else trial
        stream, size = int(rng.integers(1, 8)), int(rng.integers(1, 300))
        count = int(rng.integers(1, 6))
        first = int(rng.integers(0, 2**40)) if trial % 3 else int(rng.integers(0, 100))
        context = int(rng.integers(0, 4))
        blocks = -(-size // 8)
        with np.errstate(invalid="ignore"):  # numpy casts a key word >= 2**63 via float
            bg = np.random.Philox(counter=[first * blocks, context, 0, 0], key=[seed, stream])
        expected = bg.random_raw(count * blocks * 4).view(np.uint32).reshape(count, -1)
        got = _raw32(seed, stream, first, count, size, context)
        np.testing.assert_array_equal(got, expected[:, :size])
    assert _SMALL_BLOCKS >= 32  # one vector of a 256-column tile
