"""One rule for numbers in the Python API (aimc.numeric): numpy integer and float scalars
and whole-number floats are accepted alike wherever a number goes, weights and inputs
alike; refusals name the parameter, the unit and the value; a temperature that is not
plausibly kelvin is refused by name."""

import numpy as np
import pytest

from aimc import TileConfig
from aimc.cosim.settings import CosimSettings
from aimc.model import Chip, preset
from aimc.model.program import ProgramParams
from aimc.numeric import as_int, as_int_array, as_real

TILE = TileConfig(rows=4, cols=4)


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), 3.0, np.float32(3.0),
                                   np.float64(3.0)])
def test_integers_in_every_form(value):
    assert as_int(value, "n", 0, 5) == 3 and type(as_int(value, "n")) is int
    assert TileConfig(rows=value, cols=4).rows == 3
    assert ProgramParams(tol=value).tol == 3
    assert CosimSettings(tile=TILE, vectors=value, chip_seed=value).vectors == 3
    assert Chip(TILE, seed=value).seed == 3


@pytest.mark.parametrize("value, text", [
    (True, "True"), (3.5, "3.5"), ("3", "'3'"), (np.float32(3.5), "3.5"),
    (float("nan"), "nan"), (None, "None"),
])
def test_non_integers_are_refused_with_the_value(value, text):
    with pytest.raises(ValueError, match=rf"^width must be an integer number of cycles in "
                                         rf"1\.\.255, not {text}$"):
        Chip(TILE).pulse(0, 0, np.ones(4, bool), np.zeros(4, bool), 1, value)


def test_weights_and_inputs_take_whole_number_floats_alike():
    chip = Chip(TILE)
    w = np.arange(16).reshape(4, 4) - 8
    chip.program(w.astype(np.float32))
    x = np.array([[1, -2, 3, 0]])
    np.testing.assert_array_equal(chip.mvm(x.astype(np.float64)), chip.mvm(x))
    with pytest.raises(ValueError, match=r"^inputs must be integers \(whole-number floats are "
                                         r"accepted\), not float64 values such as 0\.5$"):
        chip.mvm(np.array([[0.5, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"^inputs must be integers .*, not bool values$"):
        chip.mvm(np.ones((1, 4), bool))


@pytest.mark.parametrize("time", [3600, 3600.0, np.int64(3600), np.float32(3600.0)])
def test_times_in_every_form(time):
    chip = Chip(TILE, "pcm")
    chip.program(np.zeros((4, 4), int))
    assert chip.moment(time) == (3600.0, 300.0)
    assert CosimSettings(tile=TILE, time=time).time == 3600.0


def test_a_time_out_of_range_names_its_unit():
    with pytest.raises(ValueError, match=r"^time must be a finite number of seconds >= 0, "
                                         r"not -1$"):
        Chip(TILE).moment(np.int64(-1))


@pytest.mark.parametrize("temperature", [25, 25.0, np.float32(77.0), 0.5, -5])
def test_a_temperature_that_is_not_kelvin_is_refused(temperature):
    with pytest.raises(ValueError, match=r"^temperature must be in kelvin, 200\.\.1000 K, not "
                                         r"-?[\d.]+ \(below 200 K is no operating temperature; "
                                         r"25 degrees Celsius is 298\.15 K\)$"):
        Chip(TILE, "pcm").state(0.0, temperature)


@pytest.mark.parametrize("temperature", [298.15, np.float32(330.0), np.int64(250)])
def test_kelvin_in_every_form(temperature):
    assert Chip(TILE, "pcm").moment(0.0, temperature)[1] == pytest.approx(float(temperature))


def test_model_fields_take_numpy_scalars():
    model = preset("pcm").replace(array={"r_row": np.float32(2.0)}, adc={"lsb": np.int64(8)})
    assert model.array.r_row == 2.0 and type(model.array.r_row) is float
    with pytest.raises(ValueError, match=r"^ArrayConfig\.r_row must be a finite number >= "
                                         r"0\.0 and <= 1000000\.0, not -1\.0 \(row wire "
                                         r"resistance per cell segment, ohm\)$"):
        preset("pcm").replace(array={"r_row": np.float32(-1.0)})


def test_helpers():
    assert as_real(np.float32(0.25), "p", 0, 1) == 0.25
    with pytest.raises(ValueError, match=r"^p must be a finite number of seconds >= 0, not "
                                         r"-1\.0$"):
        as_real(-1.0, "p", 0, unit="seconds")
    assert as_int_array(np.array([1.0, -2.0]), "w").dtype == np.int64


def test_training_api_takes_numpy_scalars():
    """The training flag and aimc train's configuration follow the rule too."""
    from aimc.train_config import TrainConfig

    tile = TileConfig(rows=8, cols=8, training=np.bool_(True))
    assert tile.training is True and tile.key.endswith("t")
    c = TrainConfig(tile=tile, hidden=(np.int64(16),), epochs=np.int64(2), bl=8.0,
                    seed=np.uint32(3), lr=np.float32(0.25), momentum=np.float64(0.5))
    assert (c.hidden, c.epochs, c.bl, c.seed) == ((16,), 2, 8, 3)
    assert type(c.epochs) is int and type(c.lr) is float and c.lr == 0.25
    with pytest.raises(ValueError, match=r"^--epochs must be an integer in 1\.\.10000, not "
                                         r"2\.5$"):
        TrainConfig(tile=tile, epochs=2.5)
    with pytest.raises(ValueError, match=r"^--lr must be a positive finite number, not 0$"):
        TrainConfig(tile=tile, lr=np.int64(0))

