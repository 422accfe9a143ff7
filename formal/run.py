"""Running the catalogue: each property on its own (with its harness's helper invariants),
each harness's covers, each mutation; results as JSON and as the Markdown table that
docs/reliability.md quotes; counterexamples and cover traces as VCD files."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ._sby import DEFAULT_SOLVER, run_sby, to_rtlil
from .catalogue import Job, Mutation

__all__ = ["CheckResult", "MutationResult", "run_cover", "run_job", "run_mutation",
           "write_results"]

#: Seconds one SymbiYosys run may take before it counts as a time-out.
TIMEOUT = 1800


@dataclass
class CheckResult:
    """One property (or one harness's covers): ``status`` PASS, FAIL, UNKNOWN, TIMEOUT or
    ERROR; for a cover, ``step`` is the step its trace reaches it in."""

    name: str
    job: str
    block: str
    kind: str
    depth: int
    status: str
    seconds: float
    step: int | None = None
    trace: str | None = None


@dataclass
class MutationResult:
    """A mutation is caught when the bounded check fails on the expected property with a
    counterexample from the initial state (a trace a user can open)."""

    job: str
    mutation: str
    description: str
    expected: str
    failed: list
    caught: bool
    seconds: float
    trace: str | None = None


def _kind(job: Job) -> str:
    return f"proof (k-induction, k={job.depth})" if job.mode == "prove" \
        else f"bounded to depth {job.depth}"


def _keep(trace, out: Path, name: str) -> str | None:
    if trace is None or not Path(trace).exists():
        return None
    dest = out / "traces" / f"{name}.vcd"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trace, dest)
    return str(dest)


def _solver(job: Job, solver: str | None) -> str:
    """The solver of a run: ``solver`` if given (``--solver``), else the job's own."""
    return solver or job.solver or DEFAULT_SOLVER


def run_job(job: Job, out: Path, *, per_property: bool = True,
            solver: str | None = None) -> list[CheckResult]:
    """Prove (or check to the bound) every assertion of ``job``: one run per property, or
    one run for all of them (``per_property=False``, the quick mode of the tests).
    ``solver`` overrides the job's."""
    out = Path(out)
    names = [n for n, kind, _ in job.harness().properties() if kind == "assert"]
    groups = [[n] for n in names] if per_property else [names]
    results = []
    for group in groups:
        only = set(group) if per_property else None
        il, _ = to_rtlil(job.harness(only=only))
        tag = group[0] if per_property else job.key
        o = run_sby(il, out / "work" / tag, mode=job.mode, depth=job.depth, timeout=TIMEOUT,
                    solver=_solver(job, solver))
        for name in group:
            status = o.status
            if status in ("FAIL", "UNKNOWN") and name not in o.failed:
                status = ("UNKNOWN (induction)" if name in o.induction_failed
                          else f"{status} (another property)")
            trace = o.traces[0] if o.traces and (name in o.failed
                                                 or name in o.induction_failed) else None
            results.append(CheckResult(name, job.key, job.block, _kind(job), job.depth, status,
                                       round(o.seconds, 1), trace=_keep(trace, out, name)))
    return results


def run_cover(job: Job, out: Path, *, solver: str | None = None) -> list[CheckResult]:
    """Search a trace for every cover of ``job`` (one run)."""
    out = Path(out)
    il, names = to_rtlil(job.harness())
    covers = [n for n, kind, _ in job.harness().properties() if kind == "cover"]
    if not covers or not job.covers:
        return []
    o = run_sby(il, out / "work" / f"{job.key}.cover", mode="cover", depth=job.cover_depth,
                timeout=TIMEOUT, solver=_solver(job, solver))
    results = []
    for name in covers:
        step = o.reached.get(name)
        status = "PASS" if step is not None else ("UNREACHED" if o.status != "TIMEOUT"
                                                  else o.status)
        trace = o.cover_traces.get(name)
        results.append(CheckResult(name, job.key, job.block, f"cover (depth {job.cover_depth})",
                                   job.cover_depth, status, round(o.seconds, 1), step=step,
                                   trace=_keep(trace, out, name)))
    return results


def run_mutation(job: Job, mutation: Mutation, out: Path, *,
                 solver: str | None = None) -> MutationResult:
    """Check ``job``'s harness with ``mutation`` to ``mutation.depth`` steps, asserting only
    the property that must catch it (so that the counterexample is one of that property,
    whichever other properties the mutant breaks too)."""
    out = Path(out)
    expected = job.harness(mutation=mutation.key).full(mutation.catches)
    harness = job.harness(mutation=mutation.key, only={expected})
    il, _ = to_rtlil(harness)
    name = f"{job.key}.mutant.{mutation.key}"
    o = run_sby(il, out / "work" / name, mode="bmc", depth=mutation.depth, timeout=TIMEOUT,
                solver=_solver(job, solver))
    failed = o.basecase_failures
    caught = o.status == "FAIL" and expected in failed and bool(o.traces)
    return MutationResult(job.key, mutation.key, harness.mutations[mutation.key], expected,
                          failed, caught, round(o.seconds, 1),
                          trace=_keep(o.traces[0] if o.traces else None, out, name))


def markdown(checks: list[CheckResult], mutations: list[MutationResult]) -> str:
    lines = ["| property | block | kind | result | time (s) |", "| --- | --- | --- | --- | --- |"]
    for c in checks:
        result = c.status + (f" (step {c.step})" if c.step is not None else "")
        lines.append(f"| `{c.name}` | {c.block} | {c.kind} | {result} | {c.seconds} |")
    lines += ["", "| mutation | what it changes | caught by | result | time (s) |",
              "| --- | --- | --- | --- | --- |"]
    for mu in mutations:
        lines.append(f"| `{mu.job}.{mu.mutation}` | {mu.description} | `{mu.expected}` | "
                     f"{'caught' if mu.caught else 'MISSED'} | {mu.seconds} |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, checks, mutations) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"checks": [asdict(c) for c in checks], "mutations": [asdict(m) for m in mutations]},
        indent=1))
    (out / "results.md").write_text(markdown(checks, mutations))
