"""What a flow takes from `aimc verilog`: FuseSoC parses the CAPI2 core and runs its lint
target (Verilator through Edalize, with the project's waivers); the file list compiles with
Icarus (-c) and lints with Verilator (-F)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aimc import TileConfig
from aimc.cosim.runner import setup_verilator
from aimc.rtl.verilog import file_stem, generate

# A training tile: the flow sees every port and register of the training hardware too.
CFG = TileConfig(rows=8, cols=8, input_mode="bitserial", cols_per_adc=2, training=True)
FUSESOC = Path(sys.executable).parent / "fusesoc"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("verilog")
    stem = file_stem(CFG)
    generate(CFG, out, stem=stem)
    return out, stem


@pytest.mark.skipif(not FUSESOC.exists(), reason="fusesoc not installed (dev extra)")
def test_fusesoc_parses_the_core_and_lints_through_it(generated, tmp_path):
    out, stem = generated
    vlnv = f"aimc:aimc:{stem}:0.1.0"
    info = subprocess.run([str(FUSESOC), "--cores-root", str(out), "core-info", vlnv],
                          capture_output=True, text=True, cwd=tmp_path)
    assert info.returncode == 0, info.stdout + info.stderr
    assert f"Name:        {vlnv}" in info.stdout
    assert "8x8 bitserial" in info.stdout
    assert "default" in info.stdout and "lint" in info.stdout
    setup_verilator()
    lint = subprocess.run([str(FUSESOC), "--cores-root", str(out), "run", "--target", "lint",
                           vlnv], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    work = next((tmp_path / "build").iterdir()) / "lint-verilator"
    options = (work / f"{vlnv.replace(':', '_')}.vc").read_text()
    assert f"{stem}.vlt" in options and f"{stem}.v" in options
    assert "-Wall" in (work / "config.mk").read_text()


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_file_list_compiles_with_icarus_and_lints_with_verilator(generated, tmp_path):
    out, stem = generated
    proc = subprocess.run(["iverilog", "-g2012", "-c", f"{stem}.f", "-o", str(tmp_path / "a")],
                          cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    setup_verilator()
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(out / f"{stem}.vlt"), "-F",
                           str(out / f"{stem}.f"), "--top-module", "aimc_tile"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
