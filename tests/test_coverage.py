"""Functional coverage plumbing (aimc.cosim.coverage) without a simulator: bin checks,
per-process export, merge, summary and the gate.

Anything that samples runs in a subprocess: the session points AIMC_COVERAGE_DIR at the
regression's coverage directory, and a sample taken here would count as regression coverage.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from aimc import TileConfig
from aimc.cosim import coverage

TOTAL = sum(map(len, coverage.BINS.values())) + 9  # + stalls.source x stalls.sink


def _sample(directory, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` (with ``c`` = the coverage module) in a fresh process exporting to
    ``directory``."""
    env = {**os.environ, coverage.ENV_DIR: str(directory)}
    script = "from aimc.cosim import coverage as c\n" + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


#: Every bin of every group and cross, but errors.analogue_timeout, split over two processes.
FIRST_HALF = """
for g, bins in c.BINS.items():
    for b in bins[: len(bins) // 2]:
        c.hit(g, b)
c.hit("errors", "frame_short")
"""
SECOND_HALF = """
for g, bins in c.BINS.items():
    for b in bins[len(bins) // 2:]:
        if (g, b) != ("errors", "analogue_timeout"):
            c.hit(g, b)
import itertools
for s, k in itertools.product(c.BINS["stalls.source"], c.BINS["stalls.sink"]):
    c.cross("stalls.source_x_sink", s, k)
"""


def test_unknown_group_is_named():
    with pytest.raises(ValueError, match=r"^group 'error' is not one of: config\.input_mode, "):
        coverage.hit("error", "frame_short")


def test_unknown_bin_is_named():
    with pytest.raises(ValueError, match=r"^bin 'frame_shrt' of group 'errors' is not one of: "
                                         r"frame_short, frame_long, "):
        coverage.hit("errors", "frame_shrt")
    with pytest.raises(ValueError, match=r"bin 'x' of group 'stalls.sink' is not one of: none, "
                                         r"light, heavy$"):
        coverage.cross("stalls.source_x_sink", "none", "x")
    with pytest.raises(ValueError, match=r"cross 'stalls' is not one of: stalls.source_x_sink"):
        coverage.cross("stalls", "none", "none")


def test_config_and_stall_bins():
    assert coverage.config_bins(TileConfig(rows=8, cols=8)) == {
        "config.input_mode": "pwm", "config.adc_sharing": "dedicated",
        "config.padding": "none", "config.size": "small"}
    odd = TileConfig(rows=12, cols=10, lanes=4, cols_per_adc=2, input_mode="bitserial")
    assert coverage.config_bins(odd) == {
        "config.input_mode": "bitserial", "config.adc_sharing": "shared",
        "config.padding": "padded", "config.size": "small"}
    assert coverage.config_bins(TileConfig(rows=64, cols=17))["config.size"] == "medium"
    assert coverage.config_bins(TileConfig(rows=8, cols=65))["config.size"] == "full"
    assert coverage.config_bins(TileConfig(rows=16, cols=16))["config.size"] == "small"
    assert [coverage.stall_bin(p) for p in (0, 0.01, 0.2, 0.21, 1)] == \
        ["none", "light", "light", "heavy", "heavy"]
    with pytest.raises(ValueError, match=r"p_sink must be a probability in \[0, 1\], not 1.5"):
        coverage.sample_stalls(0.1, 1.5)


def test_export_per_process_and_merge_is_the_union(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _sample(raw, """
        c.hit("errors", "frame_short")
        c.hit("errors", "frame_short")
        c.sample_stalls(0, 0.5, axil=True)
    """)
    _sample(raw, """
        c.hit("errors", "frame_long")
        from aimc import TileConfig
        c.sample_config(TileConfig(rows=8, cols=8))
    """)
    assert len(list(raw.glob("*.yml"))) == 2
    assert not list(raw.glob("*.tmp"))
    summary = coverage.merge(raw, tmp_path / "merged.yml")
    assert (tmp_path / "merged.yml").exists()
    groups = summary["groups"]
    assert groups["errors"]["hits"]["frame_short"] == 2
    assert groups["errors"]["hits"]["frame_long"] == 1
    assert groups["errors"]["covered"] == 2
    assert groups["stalls.source"]["hits"] == {"none": 1, "light": 0, "heavy": 0}
    assert groups["stalls.sink"]["missing"] == ["none", "light"]
    assert groups["stalls.axil"]["hits"] == {"none": 0, "paused": 1}
    assert groups["stalls.source_x_sink"]["hits"]["none x heavy"] == 1
    assert groups["stalls.source_x_sink"]["covered"] == 1
    assert groups["stalls.source_x_sink"]["total"] == 9
    assert groups["config.size"]["hits"] == {"small": 1, "medium": 0, "full": 0}
    # 2 errors + 3 stall points + 1 cross + 4 config
    assert (summary["covered"], summary["total"], summary["files"]) == (10, TOTAL, 2)
    assert summary["percent"] == round(100 * 10 / TOTAL, 1)


def test_summary_with_a_missing_bin_and_complete(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _sample(raw, FIRST_HALF)
    _sample(raw, SECOND_HALF)
    summary = coverage.merge(raw)
    assert (summary["covered"], summary["total"]) == (TOTAL - 1, TOTAL)
    assert summary["percent"] == round(100 * (TOTAL - 1) / TOTAL, 1) < 100
    assert coverage.missing_bins(summary) == {"errors": ["analogue_timeout"]}
    assert summary["groups"]["errors"]["hits"]["frame_short"] == 2
    message = coverage.gate(summary)
    assert message is not None
    assert f"1 of {TOTAL} bins were never hit" in message
    assert message.endswith("errors: analogue_timeout")
    assert "missing: errors: analogue_timeout" in coverage.format_summary(summary)

    _sample(raw, 'c.hit("errors", "analogue_timeout")')
    summary = coverage.merge(raw)
    assert (summary["covered"], summary["total"], summary["percent"]) == (TOTAL, TOTAL, 100.0)
    assert coverage.missing_bins(summary) == {}
    assert coverage.gate(summary) is None
    assert coverage.format_summary(summary) == \
        f"functional coverage: {TOTAL} of {TOTAL} bins (100.0 %)"


def test_nothing_recorded_fails_the_gate(tmp_path):
    summary = coverage.merge(tmp_path)
    assert (summary["covered"], summary["files"]) == (0, 0)
    assert "no coverage was recorded" in coverage.gate(summary)
    assert coverage.missing_bins(summary)["stalls.axil"] == ["none", "paused"]


def test_write_summary(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _sample(raw, 'c.hit("mode.mvm", "raw")\nc.hit("mode.mvm", "raw")')
    summary = coverage.merge(raw)
    md = coverage.write_summary(summary, tmp_path / "out")
    text = md.read_text()
    assert md == tmp_path / "out" / "summary.md"
    assert f"1 of {TOTAL} bins covered" in text
    assert "## mode.mvm (1 of 3)" in text
    assert "| raw | 2 | yes |" in text and "| corrected | 0 | no |" in text
    assert "| none x none | 0 | no |" in text
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary


def test_export_is_off_without_the_variable_and_never_raises(tmp_path):
    script = """
        import os, warnings
        os.environ.pop(c.ENV_DIR, None)
        c.hit("errors", "rail_low")
        assert c.export() is None
        os.environ[c.ENV_DIR] = os.path.join(os.environ["TARGET"], "no", "such", "dir")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            c.hit("errors", "rail_high")
        print("|".join(str(w.message) for w in caught))
    """
    env = {**os.environ, "TARGET": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", "from aimc.cosim import coverage as c\n"
                           + textwrap.dedent(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "functional coverage not exported to" in proc.stdout
    assert list(tmp_path.rglob("*.yml")) == []
