"""The latency the docs state, measured at the ports (bench/cosim_probe.py, timing_probe):
LATENCY is the sequencer's schedule (TileConfig.mvm_period_cycles) and the first result
beat of a vector that finds the tile idle is accepted LATENCY + 6 cycles after its last
input beat, with correction off and on, for PWM, bit-serial and shared ADCs."""

import sys
from pathlib import Path

import pytest

from aimc import TileConfig
from aimc.rtl.tile import PORT_TO_PORT_EXTRA

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from cosim_probe import probe  # noqa: E402

#: The port-to-port latency beyond LATENCY: the take cycle, the result packer and the
#: corrector's four stages (docs/architecture.md, Schedule and timing).

CONFIGS = {
    "8x8-pwm": TileConfig(rows=8, cols=8),
    "8x8-bitserial": TileConfig(rows=8, cols=8, input_mode="bitserial"),
    "16x16-pwm-share4": TileConfig(rows=16, cols=16, cols_per_adc=4),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("correct", [False, True], ids=["raw", "corrected"])
def test_port_to_port_latency(sim, name, correct):
    cfg = CONFIGS[name]
    s = probe(cfg, sim, "timing_probe", vectors=2, correct=correct)
    assert s["matched"] == 3 and s["mismatches"] == 0
    assert s["isolated_latency_cycles"] == s["latency_cycles"] == cfg.mvm_period_cycles
    assert s["stream_latency_cycles"] == cfg.mvm_period_cycles + PORT_TO_PORT_EXTRA
    # The integrator reset of the first MVM: two cycles after the last input beat (the take
    # cycle, then the first DRIVE cycle).
    assert s["integrator_resets"][0] - s["last_input_beats"][0] == 2
