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
