"""The settings of a cosimulation run (aimc.cosim.settings): validated once on the host,
carried to the simulator in one variable, and the stimulus derivations of the defaults."""

import json
import random

import numpy as np
import pytest

from aimc import TileConfig
from aimc.cosim.settings import ENV, CosimSettings, NetworkPlan, cocotb_tests
from aimc.model import Chip, preset
from aimc.model.program import ProgramParams

TILE = TileConfig(rows=8, cols=8)


def test_round_trip_through_the_environment(tmp_path):
    s = CosimSettings(tile=TILE, model={"preset": "pcm", "array": {"r_row": 2.0}},
                      chip_seed=7, stimulus_seed=8, pause_seed=9, vectors=5, stalls=(0.1, 0),
                      time=3600, column_faults={"dead": [3], "stuck-high": [1, 2]},
                      stuck=[[0, 1, 1, -1]], erased=True, program={"tol": 3},
                      targets=tmp_path / "t.npy", cal_k=4, stats=tmp_path / "s.json",
                      waves=True, correct=False, tests="registers,mvm_stream")
    env = s.to_env()
    assert list(env) == [ENV]
    back = CosimSettings.from_env(env)
    assert back == s
    assert back.model == preset("pcm").replace(array={"r_row": 2.0})
    assert back.program == ProgramParams(tol=3)
    assert back.tests == ("registers", "mvm_stream")
    assert back.stuck == ((0, 1, 1, -1),) and back.column_faults["stuck-high"] == (1, 2)
    assert json.loads(env[ENV])["stats"] == str(tmp_path / "s.json")


def test_defaults_reproduce_the_single_seed_stimulus():
    """One seed used to key the chip, the random weights, the vectors (seed + offset) and
    the bus pauses; the separate seeds default to it, so every figure stays the same."""
    s = CosimSettings(tile=TILE, model="adc-only", chip_seed=5)
    assert s.stimulus_seed == s.pause_seed == 5
    np.testing.assert_array_equal(s.stimulus_rng(7).integers(0, 1000, 16),
                                  np.random.default_rng(5 + 7).integers(0, 1000, 16))
    assert s.pause_rng().random() == random.Random(5).random()
    chip = Chip(TILE, "adc-only", seed=5)
    chip.program(np.random.default_rng(5).integers(-chip.w_max, chip.w_max + 1, size=(8, 8)))
    assert np.array_equal(s.chip().g_prog, chip.g_prog)
    assert s.replace(stimulus_seed=6).chip().seed == 5
    assert not np.array_equal(s.replace(stimulus_seed=6).chip().g_prog, chip.g_prog)
    erased = s.replace(erased=True).chip()
    assert np.all(erased.g_prog == erased.config.device.g_min)
    assert s.vector_count(24) == 24 and s.replace(vectors=3).vector_count(24) == 3


@pytest.mark.parametrize("changes, message", [
    ({"chip_seed": -1}, r"--seed must be an integer in 0\.\.2\*\*64-1, not -1"),
    ({"chip_seed": 2 ** 64}, r"--seed must be an integer in 0\.\.2\*\*64-1, "
                             r"not 18446744073709551616"),
    ({"stimulus_seed": -2}, r"CosimSettings\.stimulus_seed must be an integer in 0\.\.2\*\*64-1, "
                            r"not -2"),
    ({"vectors": 0}, r"--vectors must be an integer >= 1, not 0"),
    ({"cal_k": 12}, r"--avg-log2 must be an integer in 0\.\.8, not 12"),
    ({"time": -1.0}, r"--time must be a number of seconds >= 0, not -1\.0"),
    ({"time": float("inf")}, r"--time must be a number of seconds >= 0, not inf"),
    ({"tests": "nosuch"}, r"--test must name cocotb tests of aimc\.cosim\.test_tile "
                          r"\(mvm_stream, .*, engines_wait_for_results_in_flight\), not 'nosuch'"),
    ({"tests": "stream"}, r"--test must name .*, not 'stream'"),  # not a suffix match
    ({"stalls": (1.0, 0.0)}, r"CosimSettings\.stalls must be two probabilities in \[0, 1\) "
                             r"\(input stream, result stream\), not \(1\.0, 0\.0\)"),
    ({"column_faults": {"broken": [1]}}, r"CosimSettings\.column_faults: a fault must be one of "
                                         r"dead, stuck-high, stuck-low, not 'broken'"),
    ({"column_faults": {"dead": [8]}}, r"CosimSettings\.column_faults\['dead'\]: a column must "
                                       r"be an integer in 0\.\.7, not 8"),
    ({"stuck": [[0, 8, 0, 1]]}, r"CosimSettings\.stuck: a device must be \[row, col, side, "
                                r"level\] with row in 0\.\.7, col in 0\.\.7, side 0 or 1 and "
                                r"level -1, 0 or 1, not \[0, 8, 0, 1\]"),
    ({"model": "nosuch"}, r"model preset must be one of ideal, adc-only, pcm, rram, gokmen-vlasov, "
                              r"reram-sb, ecram, not "
                          r"'nosuch'"),
    ({"program": {"max_iter": 0}}, r"ProgramParams\.max_iter must be an integer in 1\.\.255 "
                                   r"\(pulse steps\), not 0"),
    ({"module": "aimc.cosim.nosuch"}, r"cocotb test module 'aimc\.cosim\.nosuch' not found on "
                                      r"the Python path"),
])
def test_bad_values_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        CosimSettings(tile=TILE, **changes)


@pytest.mark.parametrize("changes, message", [
    ({"tile": {"rows": 8}}, r"CosimSettings\.tile must be a TileConfig, not \{'rows': 8\}"),
    ({"erased": 1}, r"CosimSettings\.erased must be True or False, not 1"),
    ({"stats": 3}, r"CosimSettings\.stats must be a path, not 3"),
])
def test_values_of_the_wrong_type_are_refused_by_name(changes, message):
    with pytest.raises(TypeError, match=f"^{message}$"):
        CosimSettings(**{"tile": TILE, **changes})


def test_unknown_fields_and_a_missing_variable_are_refused():
    with pytest.raises(ValueError, match=r"^CosimSettings has no field\(s\) seed$"):
        CosimSettings.from_dict({"seed": 1})
    with pytest.raises(RuntimeError, match=rf"^{ENV} is not set: run the cocotb tests through "
                                           r"aimc\.cosim\.runner\.run$"):
        CosimSettings.from_env({})


def test_cocotb_tests_are_listed_without_importing_the_module():
    assert cocotb_tests("aimc.cosim.test_network") == ("network_block",)
    tile_tests = cocotb_tests("aimc.cosim.test_tile")
    assert tile_tests[:3] == ("mvm_stream", "back_to_back_timing", "registers")
    assert "_setup" not in tile_tests and len(tile_tests) == 15


def test_each_test_keeps_its_own_figures(tmp_path):
    """Several tests in one run add their figures side by side (the stats file used to
    hold the last test's only)."""
    s = CosimSettings(tile=TILE, stats=tmp_path / "sub" / "stats.json")
    assert s.read_stats() == {}
    s.stats.parent.mkdir()
    s.write_stats("mvm_stream", {"matched": 3})
    s.write_stats("calibration", {"offset": [1]})
    assert s.read_stats("mvm_stream") == {"matched": 3}
    assert set(s.read_stats()) == {"mvm_stream", "calibration"}
    with pytest.raises(RuntimeError, match=r"^test registers wrote no figures to .*stats\.json "
                                           r"\(it has: mvm_stream, calibration\)$"):
        s.read_stats("registers")
    CosimSettings(tile=TILE).write_stats("mvm_stream", {})  # no stats file: nothing written


def _plan(tmp_path, *phases):
    return {"targets": tmp_path / "t.npy", "fit_inputs": tmp_path / "x.npy",
            "fit_ideal": tmp_path / "y.npy",
            "phases": [{"name": n, "time": t, "mode": m, "inputs": tmp_path / f"x_{n}.npy",
                        "out": tmp_path / f"y_{n}.npy"} for n, t, m in phases]}


def test_network_plan_is_checked_on_the_host(tmp_path):
    plan = NetworkPlan(**_plan(tmp_path, ("raw", 0, "raw"), ("1d", 86400, "affine_drift")))
    s = CosimSettings(tile=TILE, network=plan, module="aimc.cosim.test_network")
    assert CosimSettings.from_env(s.to_env()).network == plan
    for phases, message in (
        ((("a", 10, "raw"), ("b", 0, "raw")), r"network phase times must not decrease, not "
                                              r"\[10\.0, 0\.0\]"),
        ((("a", 0, "raw"), ("a", 0, "cal")), r"network phase names must differ, not \['a', 'a'\]"),
        ((("a", 0, "drift"),), r"phase a: mode must be one of raw, cal, affine, affine_drift, "
                               r"not 'drift'"),
        ((), r"a network plan needs at least one phase"),
    ):
        with pytest.raises(ValueError, match=f"^{message}$"):
            NetworkPlan(**_plan(tmp_path, *phases))
