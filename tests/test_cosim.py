"""System tier: the generated Verilog with the crossbar model in the loop, on Icarus and on
Verilator (each configuration is built once per simulator and reused by its tests)."""

import json

import pytest

from aimc import TileConfig
from aimc.cosim import runner

SMALL = {
    "8x8-pwm": TileConfig(rows=8, cols=8),
    "8x8-bitserial": TileConfig(rows=8, cols=8, input_mode="bitserial"),
    "16x16-pwm-share4": TileConfig(rows=16, cols=16, cols_per_adc=4),
    "16x16-bitserial-share2": TileConfig(rows=16, cols=16, input_mode="bitserial",
                                         cols_per_adc=2),
    # Sizes that are not multiples of the lanes: padding on both streams.
    "12x10-pwm-share2-lanes4": TileConfig(rows=12, cols=10, lanes=4, cols_per_adc=2,
                                          input_bits=6, adc_bits=6),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_small_tiles(sim, name, tmp_path):
    stats = tmp_path / "stats.json"
    runner.run(SMALL[name], sim, env={"AIMC_VECTORS": 24, "AIMC_STATS": stats})
    result = json.loads(stats.read_text())
    assert result["matched"] == result["vectors"] == 24


def test_noisy_chip_matches_batch_prediction(sim, tmp_path):
    """With every per-conversion noise on (comparator decisions, converter input, device
    white noise), the cosimulation still equals the batch path bit for bit: the noise is a
    function of chip seed and event, not of who draws it."""
    cfg = SMALL["16x16-bitserial-share2"]
    model = json.dumps({"preset": "adc-only", "adc": {"comparator_noise": 0.7},
                        "device": {"white_noise": 0.05}})
    runner.run(cfg, sim, "mvm_stream", env={"AIMC_VECTORS": 16, "AIMC_MODEL": model,
                                            "AIMC_SEED": 11})


@pytest.mark.parametrize("name", ["8x8-pwm", "16x16-pwm-share4"])
def test_pcm_chip_a_day_after_programming(sim, name, tmp_path):
    """The pcm preset (programming noise, drift, 1/f read noise, converter errors) with IR
    drop, one day after programming: the RTL's results equal the batch path bit for bit."""
    model = json.dumps({"preset": "pcm", "array": {"r_row": 2.0, "r_col": 2.0},
                        "driver": {"edge_loss": 0.1, "polarity_mismatch": 0.02}})
    stats = tmp_path / "stats.json"
    runner.run(SMALL[name], sim, "mvm_stream",
               env={"AIMC_VECTORS": 16, "AIMC_MODEL": model, "AIMC_SEED": 5,
                    "AIMC_TIME": 86400, "AIMC_STATS": stats})
    result = json.loads(stats.read_text())
    assert result["matched"] == result["vectors"] == 16


@pytest.mark.slow
def test_full_size_tile():
    """The specification's 256x256 tile, on Verilator."""
    runner.run(TileConfig(), "verilator", "mvm_stream,back_to_back_timing,registers",
               env={"AIMC_VECTORS": 12})


def test_unknown_simulator_is_named():
    with pytest.raises(ValueError, match=r"^simulator must be one of icarus, verilator, "
                                         r"not 'questa'$"):
        runner.check_simulator("questa")
