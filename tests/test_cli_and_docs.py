import json

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
    # Every analogue-boundary port is a port of the top, with the documented width.
    for p in boundary.BOUNDARY:
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
