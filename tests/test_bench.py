"""The benchmark runner (bench/run.py) runs and reports sane figures: its timing section,
quick, on Icarus (a smoke test of `make bench`, which itself is not part of `make test`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.cosim
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_bench_quick_timing(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "timing",
         "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert set(doc) == {"run", "seconds", "results"}
    assert doc["run"]["quick"] is True and doc["run"]["sections"] == ["timing"]
    assert set(doc["results"]) == {"timing"} and doc["seconds"]["timing"] > 0
    t = doc["results"]["timing"]
    assert t["errors"] == [] and t["disagreements"] == []
    assert t["all_periods_match_schedule"] is True
    modes = set()
    for r in t["measured"]:
        modes.add(r["mode"])
        assert r["matched"] == r["vectors"] > 1
        assert r["period_cycles"] == r["schedule_period_cycles"]
        assert r["analogue_min_cycles"] < r["period_cycles"] < 2 * r["analogue_min_cycles"]
        assert r["latency_cycles"] > 0
        assert r["stream_latency_cycles"] >= r["latency_cycles"]
        assert 0 < r["digital_share"] < 0.5
        assert r["spacing_matches_period"] is True
    assert modes == {"pwm", "bitserial"}
    full = {r["mode"]: r for r in t["full_size"]}
    assert set(full) == {"pwm", "bitserial"} and full["pwm"]["size"] == "256x256"
    assert all(r["analogue_min_cycles"] < r["schedule_period_cycles"] for r in full.values())
    md = (tmp_path / "results.md").read_text()
    assert "## Tile timing" in md and "| 16x16 | pwm | 1 |" in md


def test_block_wrappers_read_every_port_and_elaborate(tmp_path):
    """bench/synth.py --blocks places each block of the tile alone in the five-pin wrapper:
    the ports it reads from the generated Verilog are the module's port list, and Verilator
    elaborates the wrapper around each block (escaped names such as ``\\port$2$0``)."""
    import re

    from aimc import TileConfig
    from aimc.cosim.runner import setup_verilator
    from aimc.rtl.verilog import TOP_NAME, generate

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import synth
    finally:
        sys.path.remove(str(ROOT / "bench"))
    generate(TileConfig(rows=4, cols=4, lanes=2, training=True), tmp_path)
    text = (tmp_path / f"{TOP_NAME}.v").read_text()
    modules = synth.block_modules(text)
    assert {"\\aimc_tile.csr", "\\aimc_tile.upd", "\\aimc_tile.cal.div"} <= set(modules)
    setup_verilator()
    wrappers = []
    for i, module in enumerate(modules):
        ports = synth.module_ports(text, module)
        header = re.search(rf"^module {re.escape(module)} ?\(([^;]*)\);", text, re.M).group(1)
        assert sorted(p["name"] for p in ports) == sorted(
            n.strip() for n in header.replace("\n", " ").split(",")), module
        assert all(p["width"] >= 1 for p in ports)
        wrappers.append(synth.wrapper(ports, module, name=f"wrap_{i}"))
    (tmp_path / "wrap.v").write_text("\n".join(wrappers))
    # Every wrapper is a top of its own (MULTITOP): one elaboration checks them all.
    proc = subprocess.run(["verilator", "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                           "-Wno-MULTITOP", str(tmp_path / f"{TOP_NAME}.v"),
                           str(tmp_path / "wrap.v")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
