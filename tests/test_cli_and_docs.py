import json
import re
import shutil
from pathlib import Path

import pytest

from aimc import TileConfig
from aimc.cli import main
from aimc.rtl import boundary
from aimc.rtl.docs import DOC, render


def test_verilog_command_writes_top_and_description(tmp_path, capsys):
    rc = main(["verilog", "--out", str(tmp_path), "--rows", "8", "--cols", "16",
               "--cols-per-adc", "4", "--input-mode", "bitserial", "--adc-bits", "6"])
    assert rc == 0
    text = (tmp_path / "aimc_tile.v").read_text()
    assert "module aimc_tile(" in text
    info = json.loads((tmp_path / "aimc_tile.json").read_text())
    cfg = TileConfig.from_dict(info["config"])
    assert cfg == TileConfig(rows=8, cols=16, cols_per_adc=4, input_mode="bitserial",
                             adc_bits=6)
    ports = {p["name"]: p for p in info["ports"]}
    # Every analogue-boundary port of this (inference) tile is a port of the top, with the
    # documented width; the training ports are absent.
    assert all(p.verilog_name not in ports for p in boundary.BOUNDARY if p.training)
    for p in boundary.ports(cfg):
        assert ports[p.verilog_name]["width"] == p.width_for(cfg), p.name
        assert ports[p.verilog_name]["dir"] == ("out" if p.direction == "out" else "in")
        assert p.verilog_name in text
    assert ports["ana__adc_trial"]["width"] == 4 * 6
    assert ports["s_axis__tdata"]["width"] == cfg.in_data_width
    assert ports["m_axis__tdata"]["width"] == cfg.out_data_width
    assert "wrote" in capsys.readouterr().out


def test_verilog_command_names_a_bad_parameter(tmp_path, capsys):
    rc = main(["verilog", "--out", str(tmp_path), "--adc-bits", "20"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "TileConfig.adc_bits must be between 2 and 12, not 20" in err
    assert not (tmp_path / "aimc_tile.v").exists()


def test_architecture_tables_match_their_sources():
    text = DOC.read_text()
    assert render(text) == text, "run: python -m aimc.rtl.docs --write"


def test_program_command_writes_a_matrix(tmp_path, capsys):
    """`aimc program` on an 8x8 float matrix, Icarus: prints the figures the golden run
    confirmed, and writes them."""
    import numpy as np

    w = np.random.default_rng(0).normal(size=(8, 8))
    np.save(tmp_path / "w.npy", w)
    rc = main(["program", str(tmp_path / "w.npy"), "--sim", "icarus", "--model", "pcm",
               "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0, out
    s = json.loads((tmp_path / "out" / "program.json").read_text())["program_verify"]
    assert s["devices"] == 128 and s["passed"] + s["failed"] == 128
    assert f"yield: {s['passed']}/128 devices within 5 counts" in out
    assert "bit for bit" in out
    targets = np.load(tmp_path / "out" / "targets.npy")
    assert np.abs(targets).max() == 96  # the largest weight maps to g_max's read count
    np.testing.assert_array_equal(targets, np.round(w * 96 / np.abs(w).max()))


def test_program_command_names_bad_input(tmp_path, capsys):
    import numpy as np

    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    np.save(tmp_path / "big.npy", np.full((8, 8), 200))
    np.save(tmp_path / "w.npy", np.zeros((8, 8)))
    for args, text in (
        ([str(tmp_path / "nothing.npy")], "weights must be an existing .npy file"),
        ([str(tmp_path / "cube.npy")], "weights must be a 2-D matrix, not an array of shape "
                                       "(2, 2, 2)"),
        ([str(tmp_path / "w.npy"), "--rows", "16"], "weights of shape (8, 8) do not fit a "
                                                    "16x8 tile"),
        ([str(tmp_path / "big.npy")], "targets must lie in -96..96 (the read counts of g_max "
                                      "at adc_bits=8), found 200"),
        ([str(tmp_path / "w.npy"), "--iterations", "0"], "ProgramParams.max_iter must be an "
                                                          "integer in 1..255, not 0"),
    ):
        assert main(["program", *args, "--sim", "icarus"]) != 0
        assert text in capsys.readouterr().err, args


@pytest.fixture
def no_simulator(monkeypatch):
    """Make any Verilog generation or simulator start fail the command (and so the test)."""
    from aimc.cosim import runner
    from aimc.rtl import verilog

    def started(*args, **kwargs):
        raise AssertionError("a simulator or the Verilog generator was started")

    for module, name in ((runner, "build"), (runner, "run"), (runner, "verilog_for"),
                         (verilog, "generate")):
        monkeypatch.setattr(module, name, started)


@pytest.mark.parametrize("args, message", [
    (["calibrate", "--seed", "-1"], r"--seed must be an integer in 0\.\.2\*\*64-1, not -1"),
    (["stream", "--seed", "-1"], r"--seed must be an integer in 0\.\.2\*\*64-1, not -1"),
    (["calibrate", "--avg-log2", "12"], r"--avg-log2 must be an integer in 0\.\.8, not 12"),
    (["stream", "--vectors", "0"], r"--vectors must be an integer >= 1, not 0"),
    (["cosim", "--time", "-5"], r"--time must be a number of seconds >= 0, not -5\.0"),
    (["cosim", "--test", "nosuch"], r"--test must name cocotb tests of aimc\.cosim\.test_tile "
                                    r"\(mvm_stream, back_to_back_timing, registers, .*, "
                                    r"engines_wait_for_results_in_flight\), not 'nosuch'"),
    (["cosim", "--test", "mvm_stream,nosuch"], r"--test must name .*, not 'nosuch'"),
])
def test_bad_options_are_refused_before_a_simulator_starts(no_simulator, tmp_path, capsys,
                                                           args, message):
    rc = main([*args, "--sim", "icarus"]
              + (["--out", str(tmp_path)] if args[0] == "stream" else []))
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert re.fullmatch(f"aimc {args[0]}: error: {message}\n", err), err
    assert not any(tmp_path.iterdir()), "the command wrote files before refusing"


@pytest.mark.cosim
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_cosim_command_runs_every_test_and_reports_each(tmp_path, capsys):
    """`aimc cosim` without --test runs the whole module; every test keeps its figures (the
    last one used to overwrite the stream's, and the summary crashed with KeyError)."""
    from aimc.cosim.settings import cocotb_tests

    stats = tmp_path / "stats.json"
    rc = main(["cosim", "--sim", "icarus", "--vectors", "8", "--stats", str(stats)])
    out = capsys.readouterr().out
    assert rc == 0, out
    tests = cocotb_tests("aimc.cosim.test_tile")
    assert f"{len(tests)} of {len(tests)} cocotb test(s) of aimc.cosim.test_tile passed on " \
           f"icarus (r16c16i8a8s1pwml8): {', '.join(tests)}\n" in out
    assert "8/8 result vectors matched the golden model bit for bit\n" in out
    assert "MVM latency 137 cycles, period 137 cycles; analogue minimum 135 cycles" in out
    figures = json.loads(stats.read_text())
    assert set(figures) == {"mvm_stream", "calibration", "drift_compensation", "program_verify"}
    assert figures["mvm_stream"]["matched"] == figures["mvm_stream"]["vectors"] == 8
    assert figures["calibration"]["coefficients_match"]


@pytest.mark.cosim
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_cosim_command_with_waves_names_the_dump(tmp_path, capsys):
    rc = main(["cosim", "--sim", "icarus", "--waves", "--test", "registers,mvm_stream",
               "--vectors", "4", "--stats", str(tmp_path / "stats.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2 of 2 cocotb test(s)" in out and "4/4 result vectors matched" in out
    dump = re.search(r"^waveforms: (\S+) \(open with GTKWave or Surfer\)$", out, re.M)
    assert dump, out
    assert dump[1].endswith("icarus-waves/aimc_tile.fst") and Path(dump[1]).stat().st_size > 0
