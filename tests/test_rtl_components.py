"""Component tier: each RTL block alone in Amaranth's simulator."""

import numpy as np
import pytest
from simulation import simulate

from aimc import TileConfig
from aimc.rtl.rowdrv import LineDriver
from aimc.rtl.sar import SarController
from aimc.rtl.tile import Tile


def pack_vector(x, width):
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(x))


def bits_of(value, n):
    return [(value >> i) & 1 for i in range(n)]


@pytest.mark.parametrize("mode", ["pwm", "bitserial"])
def test_row_driver(mode):
    cfg = TileConfig(rows=8, cols=4, input_bits=4, input_mode=mode)  # x_max 7
    dut = LineDriver(cfg)
    x = np.array([-7, -3, 0, 1, 5, 7, -1, 2])
    steps = range(cfg.drive_cycles) if mode == "pwm" else range(cfg.planes)
    seen = []

    async def testbench(ctx):
        ctx.set(dut.vector.as_value(), pack_vector(x, cfg.in_lane_width))
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        assert ctx.get(dut.en) == 0, "no drive before it is asked for"
        for step in steps:
            ctx.set(dut.drive, 1)
            ctx.set(dut.step, step)
            await ctx.tick()
            seen.append((bits_of(ctx.get(dut.en), 8), bits_of(ctx.get(dut.neg), 8)))
        ctx.set(dut.drive, 0)
        await ctx.tick()
        assert ctx.get(dut.en) == 0 and ctx.get(dut.neg) == 0

    simulate(dut, testbench)
    en = np.array([s[0] for s in seen])
    neg = np.array([s[1] for s in seen])
    if mode == "pwm":
        # Row i is on for exactly the first |x_i| cycles of the window.
        for i, v in enumerate(x):
            assert list(en[:, i]) == [1] * abs(v) + [0] * (cfg.x_max - abs(v)), f"row {i}"
    else:
        for p in steps:
            np.testing.assert_array_equal(en[p], (np.abs(x) >> p) & 1)
    # Polarity only while driven, and only for negative inputs.
    np.testing.assert_array_equal(neg, en * (x < 0))


@pytest.mark.parametrize("n_adc, bits", [(1, 8), (3, 6), (4, 2)])
def test_sar_controller_converts_back_to_back(n_adc, bits):
    dut = SarController(n_adc, bits)
    half = 1 << (bits - 1)
    rng = np.random.default_rng(n_adc * 10 + bits)
    # Analogue inputs in LSB, including both rails and beyond.
    levels = [rng.uniform(-half - 2, half + 1, n_adc) for _ in range(4)]
    levels[0][0] = -1e6
    levels[1][-1] = 1e6
    results = []

    async def testbench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for v in levels:
            for step in range(bits):
                assert ctx.get(dut.sample) == 1
                trials = [(ctx.get(dut.trial) >> (a * bits)) & ((1 << bits) - 1)
                          for a in range(n_adc)]
                # The bit under test is the only bit below the decided ones.
                assert all(t & ((1 << (bits - step)) - 1) == 1 << (bits - 1 - step)
                           for t in trials)
                cmp = sum(int(v[a] >= t - half - 0.5) << a for a, t in enumerate(trials))
                ctx.set(dut.cmp, cmp)
                last = step == bits - 1
                assert ctx.get(dut.done) == last
                if last:
                    results.append([(ctx.get(dut.result) >> (a * bits)) & ((1 << bits) - 1)
                                    for a in range(n_adc)])
                    ctx.set(dut.start, int(len(results) < len(levels)))  # chain
                await ctx.tick()
                ctx.set(dut.start, 0)
        assert ctx.get(dut.sample) == 0 and ctx.get(dut.done) == 0

    simulate(dut, testbench)
    for v, got in zip(levels, results, strict=True):
        want = np.clip(np.floor(v + 0.5), -half, half - 1) + half
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_adc": 0, "bits": 8}, r"^SarController n_adc must be a positive integer, not 0$"),
    ({"n_adc": 2, "bits": 17}, r"^SarController bits must be an integer in 1\.\.16, not 17$"),
])
def test_sar_controller_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SarController(**kwargs)


def test_components_reject_a_non_config():
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not 8$"):
        Tile(8)
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not None$"):
        LineDriver(None)


@pytest.mark.parametrize("kwargs, message", [
    ({"access": "W1C", "legal": (0, 1)}, r"^Field f: only RW fields have a legal range, not W1C$"),
    ({"legal": (0, 256)}, r"^Field f: legal range 0\.\.256 does not fit 8 unsigned bits$"),
    ({"legal": (-129, 3), "signed": True},
     r"^Field f: legal range -129\.\.3 does not fit 8 signed bits$"),
    ({"legal": (1, 255)}, r"^Field f: reset value 0 is outside its legal range 1\.\.255$"),
    ({"reset": 0xFF, "legal": (-3, 3), "signed": True}, None),  # -1: inside
])
def test_register_field_legal_range_is_checked(kwargs, message):
    from aimc.rtl.regmap import Field

    args = {"access": "RW", **kwargs}
    if message is None:
        assert Field("f", 0, 8, doc="", **args).legal == kwargs["legal"]
        return
    with pytest.raises(ValueError, match=message):
        Field("f", 0, 8, doc="", **args)


def test_window_access_is_checked():
    from aimc.rtl.regmap import Window

    with pytest.raises(ValueError, match=r"^Window W: access must be one of RW, R, W1C, not "
                                         r"'W1P'$"):
        Window("W", 0x1000, 8, False, "W1P", "")
