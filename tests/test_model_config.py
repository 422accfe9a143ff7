"""Model configuration: validation, presets, files and the ``aimc model show`` command."""

import dataclasses
import json
import re

import numpy as np
import pytest

from aimc import TileConfig
from aimc.cli import main
from aimc.model import PRESETS, Chip, ModelConfig, load, preset, save
from aimc.model.config import AdcConfig, DeviceConfig, IntegratorConfig
from aimc.model.energy import estimate


@pytest.mark.parametrize("make, message", [
    (lambda: DeviceConfig(g_max=0), r"^DeviceConfig\.g_max must be a finite number > 0\.0, "
                                    r"not 0 \(largest programmable conductance, uS\)$"),
    (lambda: DeviceConfig(g_min=30.0), r"^DeviceConfig\.g_min must be below g_max \(25\.0\), "
                                       r"not 30\.0$"),
    (lambda: DeviceConfig(stuck_gmin_rate=0.7, stuck_gmax_rate=0.5),
     r"^DeviceConfig\.stuck_gmin_rate \+ stuck_gmax_rate must be <= 1, not 1\.2$"),
    (lambda: DeviceConfig(read_q=float("nan")),
     r"^DeviceConfig\.read_q must be a finite number >= 0\.0, not nan \(1/f read noise: Q = "
     r"min\(read_q / g\^read_q_exp, read_q_max\)\)$"),
    (lambda: DeviceConfig(nu_mean_lo=0.2, nu_mean_hi=0.1),
     r"^DeviceConfig\.nu_mean_lo must be <= nu_mean_hi \(0\.1\), not 0\.2$"),
    (lambda: AdcConfig(lsb=-1.0), r"^AdcConfig\.lsb must be a finite number > 0\.0, or None, "
                                  r"not -1\.0 \(charge per ADC code \(None: from the "
                                  r"tile\)\)$"),
    (lambda: AdcConfig(cap_mismatch=0.5), r"^AdcConfig\.cap_mismatch must be a finite number "
                                          r">= 0\.0 and <= 0\.2, not 0\.5 \(unit capacitor "
                                          r"mismatch of the DAC, relative RMS\)$"),
    (lambda: IntegratorConfig(swing="big"), r"^IntegratorConfig\.swing must be a finite "
                                            r"number > 0\.0 and <= 1000\.0, not 'big' "
                                            r"\(saturation level relative to the ADC half "
                                            r"range\)$"),
    (lambda: ModelConfig(array={"weight_bits": 1}), r"^ArrayConfig\.weight_bits must be an "
                                                    r"integer >= 2 and <= 16, not 1 \(signed "
                                                    r"weight resolution, bits\)$"),
    (lambda: ModelConfig(adc={"bits": 8}), r"^unknown field adc\.bits; allowed: "),
    (lambda: PRESETS["pcm"].replace(wires={}), r"^unknown model section 'wires'; allowed: "),
    (lambda: preset("flash"), r"^model preset must be one of ideal, adc-only, pcm, rram, "
                              r"gokmen-vlasov, reram-sb, ecram, not 'flash'$"),
])
def test_bad_model_parameters_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_presets_are_what_they_say():
    assert set(PRESETS) == {"ideal", "adc-only", "pcm", "rram",
                            "gokmen-vlasov", "reram-sb", "ecram"}  # training presets
    ideal, adc_only, pcm = PRESETS["ideal"], PRESETS["adc-only"], PRESETS["pcm"]
    assert not ideal.has_mvm_noise and ideal.device == DeviceConfig() and ideal.adc == AdcConfig()
    assert adc_only.device == ideal.device and adc_only.adc.input_noise > 0
    assert pcm.device.g_max == 25.0 and pcm.adc == adc_only.adc
    assert PRESETS["rram"].device.g_max == 40.0
    for name, model in PRESETS.items():
        assert model.name == name


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_files_round_trip_and_overlay_a_preset(tmp_path, suffix):
    model = PRESETS["pcm"].replace(name="mine", adc={"lsb": 12.5, "comparator_noise": 0.25},
                                   array={"r_row": 1.5})
    path = save(model, tmp_path / ("m" + suffix))
    assert load(path) == model
    # A partial file changes only what it lists, on top of the preset it names.
    partial = tmp_path / ("p" + suffix)
    if suffix == ".toml":
        partial.write_text('preset = "rram"\n[adc]\ninput_noise = 0.75\n')
    else:
        partial.write_text(json.dumps({"preset": "rram", "adc": {"input_noise": 0.75}}))
    got = load(partial)
    assert got == PRESETS["rram"].replace(adc={"input_noise": 0.75})
    with pytest.raises(ValueError, match=r"^model configuration file must end in \.toml or "
                                         r"\.json, not 'm\.yaml'$"):
        save(model, tmp_path / "m.yaml")
    bad = tmp_path / ("bad" + suffix)
    bad.write_text('[device]\ng_max = -3\n' if suffix == ".toml"
                   else json.dumps({"device": {"g_max": -3}}))
    with pytest.raises(ValueError, match=r"^DeviceConfig\.g_max must be a finite number > 0\.0"):
        load(bad)


def test_model_show_prints_every_field_and_the_estimate(tmp_path, capsys):
    assert main(["model", "show", "pcm", "--rows", "64", "--cols", "32",
                 "--save", str(tmp_path / "pcm.toml")]) == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(DeviceConfig):
        assert re.search(rf"^  {f.name} +=", out, re.M), f.name
    assert "prog_c1                = 1.965" in out
    tile = TileConfig(rows=64, cols=32)
    e = estimate(tile, PRESETS["pcm"])
    assert f"{e.total_pj:10.1f} pJ" in out
    assert f"period                 = {tile.mvm_period_cycles} cycles" in out
    assert load(tmp_path / "pcm.toml") == PRESETS["pcm"]
    # The saved file is a valid input of the command.
    assert main(["model", "show", str(tmp_path / "pcm.toml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == PRESETS["pcm"].to_dict()
    assert main(["model", "show", "nonesuch"]) == 2
    assert ("MODEL must be a preset (ideal, adc-only, pcm, rram, gokmen-vlasov, reram-sb, "
            "ecram) or a configuration file "
            "ending in .toml or .json, not 'nonesuch'") in capsys.readouterr().err


def test_energy_estimate_counts_operations():
    tile = TileConfig(rows=256, cols=256)
    model = PRESETS["ideal"]
    e = estimate(tile, model)
    assert e.ops == 2 * 256 * 256 and e.period_cycles == tile.mvm_period_cycles
    assert e.adc_pj == 256 * model.energy.adc_pj
    # Array energy of uniform inputs and weights: rows x mean |x| x mean pair conductance.
    mean_x = np.mean(np.abs(np.arange(-127, 128)))
    mean_pair = 25.0 * np.mean(np.abs(np.arange(-127, 128))) / 127
    want = 256 * mean_x * 256 * mean_pair * model.array.v_read**2 * 1e-3
    assert e.array_pj == pytest.approx(want, rel=1e-12)
    # From a chip's conductances and actual inputs: all-zero inputs use no array energy.
    chip = Chip(tile, model)
    chip.program(np.full((256, 256), 127))
    assert estimate(tile, model, x=np.zeros((4, 256), dtype=int),
                    g=chip.conductances()).array_pj == 0
    full = estimate(tile, model, x=np.full((1, 256), 127), g=chip.conductances())
    assert full.array_pj == pytest.approx(256 * 127 * 256 * 25.0 * model.array.v_read**2
                                          * 1e-3, rel=1e-12)


def test_cosim_command_rejects_a_negative_time(capsys):
    assert main(["cosim", "--rows", "8", "--cols", "8", "--time", "-1"]) == 2
    assert "--time must be a number of seconds >= 0, not -1.0" in capsys.readouterr().err


def test_a_new_chip_is_erased():
    chip = Chip(TileConfig(rows=8, cols=4), "pcm", seed=3)
    assert chip.programs == 0
    np.testing.assert_array_equal(chip.state().weights, 0)
    np.testing.assert_array_equal(chip.g_prog, 0.0)
