"""Property-based tests over the tile configuration space (hypothesis).

Every ``TileConfig`` either is refused at construction with a ``ValueError``/``TypeError``
that names a parameter that is actually bad, or produces Verilog that passes Verilator's
full lint (``-Wall``, only the waivers of cosim/waivers.vlt). ``aimc verilog`` refuses a bad
option with exit code 2 and a message naming it, never with a traceback.

All runs are derandomized (the same examples on every run, so CI is reproducible) and keep no
example database on disk.
"""

import contextlib
import io
import re
import subprocess
import sys
import tempfile
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aimc import TileConfig
from aimc.cli import main
from aimc.config import INPUT_MODES

# -- the specification, written out independently of aimc/config.py --------------------

#: (lowest, highest) of each integer parameter, as documented in TileConfig's docstring.
RANGES = {
    "rows": (1, 1024),
    "cols": (1, 1024),
    "input_bits": (2, 12),
    "adc_bits": (2, 12),
    "cols_per_adc": (1, 1024),
    "lanes": (1, 64),
    "rows_per_adc": (1, 1024),
}
FIELDS = (*RANGES, "input_mode", "training")


def _is_int(v) -> bool:
    """The API's rule for integers: int and numpy integers, and floats (Python or numpy)
    with a whole value; never bool."""
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, int | np.integer):
        return True
    return isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer()


def _pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def expected_errors(kw: dict) -> dict:
    """The parameters of ``kw`` that are bad, each with the exception it deserves:
    ``TypeError`` for a value of the wrong type, ``ValueError`` for one out of range."""
    bad = {}
    kw = {k: int(v) if k in RANGES and _is_int(v) else v for k, v in kw.items()}
    for name, (lo, hi) in RANGES.items():
        v = kw[name]
        if not _is_int(v):
            bad[name] = TypeError
        elif not lo <= v <= hi:
            bad[name] = ValueError
    mode = kw["input_mode"]
    if not isinstance(mode, str):
        bad["input_mode"] = TypeError
    elif mode not in ("pwm", "bitserial"):
        bad["input_mode"] = ValueError
    cpa, cols = kw["cols_per_adc"], kw["cols"]
    if "cols_per_adc" not in bad and (
            not _pow2(cpa) or ("cols" not in bad and cols % cpa)):
        bad["cols_per_adc"] = ValueError
    if "lanes" not in bad and not _pow2(kw["lanes"]):
        bad["lanes"] = ValueError
    rpa, rows = kw["rows_per_adc"], kw["rows"]
    if "rows_per_adc" not in bad and (
            not _pow2(rpa) or ("rows" not in bad and rows % rpa)):
        bad["rows_per_adc"] = ValueError
    if not isinstance(kw["training"], bool):
        bad["training"] = TypeError
    return bad


# -- 1. construction with arbitrary values ------------------------------------------------

#: Values of other types for any parameter (np.int64(8), np.uint8(4), np.float32(8.0) and 8.0
#: are integers by the API's rule for numbers, the others of a wrong type).
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([8.0, 0.5, -1.0, 1e300]),
    st.decimals(allow_nan=False, places=2),
    st.fractions(),
    st.complex_numbers(max_magnitude=1e6),
    st.text(max_size=8),
    st.sampled_from(["8", "0x10", "pwm", "bitserial", " 8 "]),
    st.binary(max_size=4),
    st.just(b"pwm"),
    st.lists(st.integers(0, 16), max_size=3),
    st.tuples(st.integers(0, 16)),
    st.sampled_from([np.int64(8), np.uint8(4), np.float32(8.0), np.array(8), Decimal(8),
                     Fraction(8, 1), object()]),
)

#: Integers of every size: zero, negative, just outside the ranges, and past the
#: 4300-digit limit of Python's int-to-text conversion.
ANY_INTS = st.one_of(
    st.integers(),
    st.integers(-3, 1100),
    st.sampled_from([0, -1, 1, 13, 65, 1025, 2**31, 2**63, -2**63, 2**64, 10**5000,
                     -10**5000]),
)

#: A power of two in 1..1024: a candidate cols_per_adc or lanes.
POW2 = st.integers(0, 10).map(lambda e: 2**e)


def arbitrary(name):
    if name == "input_mode":
        good = st.sampled_from(INPUT_MODES)
        odd = st.sampled_from(["PWM", "pwm ", "bit-serial", "bitSerial", "", "pulse"])
        return st.one_of(good, good, odd, WRONG_TYPES, ANY_INTS)
    if name == "training":
        return st.one_of(st.booleans(), st.booleans(), WRONG_TYPES, ANY_INTS,
                         st.sampled_from([np.bool_(True), "true", "yes"]))
    lo, hi = RANGES[name]
    good = st.one_of(st.integers(lo, hi), POW2) if name in ("cols_per_adc", "lanes",
                                                            "rows_per_adc") \
        else st.integers(lo, hi)
    return st.one_of(good, good, good, ANY_INTS, WRONG_TYPES)


@st.composite
def arbitrary_configs(draw):
    """A valid configuration over the whole ranges, with any subset of its parameters (none,
    some or all) replaced by arbitrary values."""
    cols, rows = draw(st.integers(1, 1024)), draw(st.integers(1, 1024))
    kw = {
        "rows": rows,
        "cols": cols,
        "input_bits": draw(st.integers(2, 12)),
        "adc_bits": draw(st.integers(2, 12)),
        "cols_per_adc": draw(st.sampled_from([2**e for e in range(11) if cols % 2**e == 0])),
        "input_mode": draw(st.sampled_from(INPUT_MODES)),
        "lanes": draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64])),
        "rows_per_adc": draw(st.sampled_from([2**e for e in range(11) if rows % 2**e == 0])),
        "training": draw(st.booleans()),
    }
    for name in sorted(draw(st.sets(st.sampled_from(FIELDS)))):  # a set of str: hash order
        kw[name] = draw(arbitrary(name))
    return kw


#: Filled in by the tests (a summary is printed at the end of each).
COUNTS = {"accepted": 0, "refused": 0, "cli": 0}
LINTED = set()  # keys of the configurations linted clean


@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@given(kw=arbitrary_configs())
@example(kw={**TileConfig().to_dict(), "rows": 10**5000})  # repr() of it raises ValueError
@example(kw={**TileConfig().to_dict(), "input_mode": 1})
@example(kw={**TileConfig().to_dict(), "cols": 12, "cols_per_adc": 8})
@example(kw={**TileConfig().to_dict(), "rows": 12, "rows_per_adc": 8})
@example(kw={**TileConfig().to_dict(), "training": 1})
def _construct(kw):
    bad = expected_errors(kw)
    if not bad:
        cfg = TileConfig(**kw)
        COUNTS["accepted"] += 1
        assert TileConfig.from_json(cfg.to_json()) == cfg
        # Every derived quantity is defined for an accepted configuration.
        for prop in ("key", "n_adc", "sel_bits", "planes", "result_bits", "out_lane_width",
                     "tgt_data_width", "row_bits", "in_beats", "out_beats",
                     "mvm_period_cycles", "n_row_adc", "row_sel_bits", "back_beats",
                     "bwd_period_cycles", "in_lines", "out_lines"):
            getattr(cfg, prop)
        return
    COUNTS["refused"] += 1
    with pytest.raises((ValueError, TypeError)) as info:
        TileConfig(**kw)
    message = str(info.value)
    found = re.match(r"TileConfig\.(\w+) must be ", message)
    assert found, f"message does not name a parameter: {message!r}"
    name = found.group(1)
    assert name in bad, f"{message!r} names {name}, but the bad parameter(s) are {sorted(bad)}"
    assert type(info.value) is bad[name], (
        f"{name}={kw[name]!r} raised {type(info.value).__name__}, not {bad[name].__name__}")
    assert ", not " in message, f"message does not show the value: {message!r}"


def test_every_configuration_is_accepted_or_refused_by_name():
    COUNTS["accepted"] = COUNTS["refused"] = 0
    _construct()
    print(f"TileConfig construction: {COUNTS['accepted']} configurations accepted, "
          f"{COUNTS['refused']} refused with the bad parameter named")
    assert COUNTS["refused"] > 1000 and COUNTS["accepted"] > 300


# -- 2. valid configurations: generated Verilog passes verilator -Wall ---------------------

@st.composite
def small_valid_configs(draw):
    """Valid configurations small enough to generate and lint in a few seconds: up to
    32x32, every input and ADC width, every ADC sharing factor, both modes, 1..16 lanes
    (generation time grows with the lanes: 64 lanes take ~20 s alone), with and without the
    training hardware and every row-ADC sharing factor."""
    cols_per_adc = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    rows = draw(st.integers(1, 32))
    return TileConfig(
        rows=rows,
        cols=cols_per_adc * draw(st.integers(1, 32 // cols_per_adc)),
        input_bits=draw(st.integers(2, 12)),
        adc_bits=draw(st.integers(2, 12)),
        cols_per_adc=cols_per_adc,
        input_mode=draw(st.sampled_from(INPUT_MODES)),
        lanes=draw(st.sampled_from([1, 2, 4, 8, 16])),
        rows_per_adc=draw(st.sampled_from([2**e for e in range(6) if rows % 2**e == 0])),
        training=draw(st.booleans()),
    )


# Each example generates the Verilog and lints it: about 2.3 s of CPU; 18 random examples
# and the 4 below take about 50 s on an idle core, 80 s on this 2-core machine under load.
@settings(max_examples=18, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cfg=small_valid_configs())
# The smallest tile: 2-bit inputs have a single drive step (a zero-width port before).
@example(cfg=TileConfig(rows=1, cols=1, input_bits=2, adc_bits=2, lanes=1))
@example(cfg=TileConfig(rows=2, cols=2, input_bits=2, adc_bits=12, cols_per_adc=2,
                        input_mode="bitserial", lanes=4))
# The widest results (23 bits: 32-bit output lanes), one ADC for all columns.
@example(cfg=TileConfig(rows=32, cols=32, input_bits=12, adc_bits=12, cols_per_adc=32,
                        input_mode="bitserial", lanes=2))
# More lanes than rows or columns, odd sizes.
@example(cfg=TileConfig(rows=3, cols=5, input_bits=9, adc_bits=9, lanes=16))
# Training hardware: one row, one row ADC for 32 rows, more columns than rows and back.
@example(cfg=TileConfig(rows=1, cols=1, input_bits=2, adc_bits=2, lanes=1, training=True))
@example(cfg=TileConfig(rows=32, cols=4, cols_per_adc=4, rows_per_adc=32,
                        input_mode="bitserial", lanes=2, training=True))
@example(cfg=TileConfig(rows=5, cols=24, input_bits=12, adc_bits=12, lanes=8, training=True))
def _lint_valid(cfg):
    from aimc.cosim.lint import lint

    ok, output = lint(cfg)
    assert ok and "%Warning" not in output and "%Error" not in output, (
        f"verilator --lint-only -Wall {cfg.key} ({cfg.to_json()}):\n{output}")
    LINTED.add(cfg.key)


def test_valid_configurations_lint_clean():
    LINTED.clear()
    _lint_valid()
    print(f"verilator --lint-only -Wall: {len(LINTED)} distinct configurations clean")
    assert len(LINTED) >= 18


def test_wide_tile_lints_clean():
    """256 results sign-extended to 32 bits: Yosys writes their concatenation on one line of
    more than 40000 tokens, which Verilator refused before the generator broke long lines."""
    from aimc.cosim.lint import lint

    cfg = TileConfig(rows=1, cols=256, input_bits=12, adc_bits=4, input_mode="bitserial",
                     lanes=1)
    assert cfg.out_lane_width - cfg.result_bits == 17
    ok, output = lint(cfg)
    assert ok and "%Warning" not in output, output


# -- 3. the CLI refuses a bad option by name ---------------------------------------------

def _bad_option(name, value, fragment):
    return st.tuples(st.just(name), value, st.just(fragment))


def _out_of_range(name):
    lo, hi = RANGES[name]
    ints = st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1))
    return _bad_option(name, ints.map(str), f"TileConfig.{name} must be between {lo} and {hi}")


#: (parameter, bad value as typed, what the error message must contain, or a tuple of
#: alternatives).
BAD_OPTIONS = st.one_of(
    *(_out_of_range(name) for name in RANGES),
    # Defaults: cols=256, so 512 and 1024 do not divide it.
    _bad_option("cols_per_adc", st.one_of(st.integers(1, 1024).filter(lambda v: not _pow2(v)),
                                          st.sampled_from([512, 1024])).map(str),
                "TileConfig.cols_per_adc must be a power of two that divides cols=256"),
    # Defaults: rows=256.
    _bad_option("rows_per_adc", st.one_of(st.integers(1, 1024).filter(lambda v: not _pow2(v)),
                                          st.sampled_from([512, 1024])).map(str),
                "TileConfig.rows_per_adc must be a power of two that divides rows=256"),
    _bad_option("lanes", st.integers(1, 64).filter(lambda v: not _pow2(v)).map(str),
                "TileConfig.lanes must be a power of two"),
    _bad_option("input_mode", st.text(max_size=12).filter(lambda s: s not in INPUT_MODES),
                "TileConfig.input_mode must be one of pwm, bitserial"),
    # Not an integer at all: argparse refuses it, naming the option.
    # "--" is taken by argparse as the end of options and leaves the option an empty list,
    # which TileConfig refuses by name.
    *(_bad_option(name, st.sampled_from(["", "8.5", "eight", "0x10", "1e3", "--"]),
                  (f"argument --{name.replace('_', '-')}: invalid int value",
                   f"TileConfig.{name} must be an integer"))
      for name in RANGES),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(bad=BAD_OPTIONS)
def _cli_refuses(bad):
    name, value, fragment = bad
    err = io.StringIO()
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(err):
        try:
            rc = main(["verilog", "--out", out, f"--{name.replace('_', '-')}={value}"])
        except SystemExit as exc:  # argparse's own refusal
            rc = exc.code
        assert not list(Path(out).glob("*.v"))
    COUNTS["cli"] += 1
    assert rc == 2, (name, value, err.getvalue())
    fragments = (fragment,) if isinstance(fragment, str) else fragment
    assert any(f in err.getvalue() for f in fragments), (name, value, err.getvalue())
    assert "Traceback" not in err.getvalue()


def test_cli_refuses_a_bad_option_by_name():
    COUNTS["cli"] = 0
    _cli_refuses()
    print(f"aimc verilog: {COUNTS['cli']} bad option values refused by name")
    assert COUNTS["cli"] >= 100


@pytest.mark.parametrize("option, text", [
    ("--lanes=3", "aimc verilog: error: TileConfig.lanes must be a power of two, not 3"),
    ("--input-bits=100000", "TileConfig.input_bits must be between 2 and 12, not 100000"),
    ("--input-mode=PWM", "TileConfig.input_mode must be one of pwm, bitserial, not 'PWM'"),
])
def test_cli_process_exits_2_without_traceback(tmp_path, option, text):
    proc = subprocess.run([sys.executable, "-m", "aimc.cli", "verilog", "--out",
                           str(tmp_path), option], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.v"))
