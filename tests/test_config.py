import pytest

from aimc import TileConfig


def test_defaults_are_the_specification_tile():
    cfg = TileConfig()
    assert (cfg.rows, cfg.cols, cfg.input_bits, cfg.adc_bits, cfg.cols_per_adc) == (
        256, 256, 8, 8, 1)
    assert cfg.input_mode == "pwm"
    assert cfg.analogue_min_cycles == 127 + 8


def test_derived_widths():
    cfg = TileConfig(rows=12, cols=10, input_bits=6, adc_bits=5, cols_per_adc=2,
                     input_mode="bitserial", lanes=4)
    assert cfg.x_max == 31 and cfg.planes == 5 and cfg.drive_cycles == 1
    assert cfg.result_bits == 10 and cfg.out_lane_width == 16 and cfg.in_lane_width == 8
    assert cfg.in_beats == 3 and cfg.out_beats == 3 and cfg.n_adc == 5
    assert cfg.analogue_min_cycles == 5 * (1 + 2 * 5)
    assert cfg.mvm_period_cycles == 5 * (1 + 2 * 5) + 2  # an integrator reset, an emit


def test_result_width_holds_the_extreme_results():
    for mode in ("pwm", "bitserial"):
        cfg = TileConfig(input_mode=mode)
        half = 2 ** (cfg.adc_bits - 1)
        lowest = -half * (2 ** cfg.planes - 1)
        highest = (half - 1) * (2 ** cfg.planes - 1)
        assert -(2 ** (cfg.result_bits - 1)) <= lowest
        assert highest < 2 ** (cfg.result_bits - 1)
        assert lowest < -(2 ** (cfg.result_bits - 2)), "no wasted bit"


def test_json_round_trip():
    cfg = TileConfig(rows=16, cols=32, cols_per_adc=4, input_mode="bitserial")
    assert TileConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 0}, r"^TileConfig\.rows must be between 1 and 1024, not 0$"),
    ({"cols": 2000}, r"^TileConfig\.cols must be between 1 and 1024, not 2000$"),
    ({"input_bits": 1}, r"^TileConfig\.input_bits must be between 2 and 12, not 1$"),
    ({"adc_bits": 13}, r"^TileConfig\.adc_bits must be between 2 and 12, not 13$"),
    ({"cols_per_adc": 3}, r"^TileConfig\.cols_per_adc must be a power of two that divides "
                          r"cols=256, not 3$"),
    ({"cols": 12, "cols_per_adc": 8}, r"^TileConfig\.cols_per_adc must be a power of two "
                                      r"that divides cols=12, not 8$"),
    ({"input_mode": "pulse"}, r"^TileConfig\.input_mode must be one of pwm, bitserial, "
                              r"not 'pulse'$"),
    ({"lanes": 6}, r"^TileConfig\.lanes must be a power of two, not 6$"),
])
def test_bad_parameter_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TileConfig(**kwargs)


def test_bad_type_is_named():
    with pytest.raises(TypeError, match=r"^TileConfig\.rows must be an integer, not '8'$"):
        TileConfig(rows="8")
    with pytest.raises(TypeError, match=r"^TileConfig\.adc_bits must be an integer, not True$"):
        TileConfig(adc_bits=True)


def test_unknown_parameter_in_dict():
    with pytest.raises(ValueError, match=r"^TileConfig has no parameter\(s\) colums$"):
        TileConfig.from_dict({"colums": 8})
