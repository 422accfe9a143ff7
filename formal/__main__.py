"""``python -m aimc.formal [--quick] [--only KEY ...] [--solver NAME] [--out DIR]``: run the
formal checks of :mod:`aimc.formal.catalogue` and write ``DIR/results.md``,
``DIR/results.json`` and the traces (``DIR/traces/*.vcd``). Exit status 1 if a property
fails or a mutation is missed."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

from ._sby import DEFAULT_SOLVER, SOLVERS, missing_tools
from .catalogue import JOBS
from .run import CheckResult, MutationResult, run_cover, run_job, run_mutation, write_results
from .structural import ReadyOnValidTile, run_structural


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aimc.formal", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="only the quick jobs, all properties of a job in one run")
    parser.add_argument("--only", nargs="+", metavar="KEY",
                        help=f"jobs to run, of: {', '.join(j.key for j in JOBS)}")
    parser.add_argument("--solver", choices=sorted(SOLVERS),
                        help="the SMT solver of every run (default: each job's own, Boolector "
                             "unless the catalogue says otherwise)")
    parser.add_argument("--out", type=Path, default=Path("build/formal"))
    args = parser.parse_args(argv)
    # Listing a harness's properties elaborates it without converting it.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    keys = {j.key for j in JOBS} | {"structural"}
    for k in args.only or ():
        if k not in keys:
            parser.error(f"--only takes job keys ({', '.join(sorted(keys))}), not {k!r}")
    jobs = [j for j in JOBS if (not args.only or j.key in args.only)
            and (j.quick or not args.quick)]
    missing = missing_tools(sorted({args.solver or j.solver or DEFAULT_SOLVER for j in jobs}))
    if missing:
        print(f"error: missing {', '.join(missing)}; install the formal extra: "
              f"pip install -e '.[formal]'", file=sys.stderr)
        return 2
    checks, mutations = [], []
    start = time.monotonic()
    for job in jobs:
        alone = not (args.quick or job.together)
        found = (run_job(job, args.out, per_property=alone, solver=args.solver)
                 + run_cover(job, args.out, solver=args.solver))
        for c in found:
            print(f"{c.status:8} {c.seconds:7.1f}s  {c.name}  [{c.kind}]", flush=True)
            checks.append(c)
        for mu in job.mutations:
            r = run_mutation(job, mu, args.out, solver=args.solver)
            print(f"{'caught' if r.caught else 'MISSED':8} {r.seconds:7.1f}s  "
                  f"{r.job}.mutant.{r.mutation} -> {r.failed}  {r.trace or ''}", flush=True)
            mutations.append(r)
    if not args.only or "structural" in args.only:
        for s in run_structural(args.out):
            print(f"{s.status:8} {s.seconds:7.1f}s  {s.name}  [structural] {s.detail}", flush=True)
            checks.append(CheckResult(s.name, "structural", "Tile, 4x4, 4-bit in and ADC, "
                                      "2 lanes (netlist)", "structural proof (no "
                                      "combinational path)", 0, s.status, s.seconds))
        bad_tile = run_structural(args.out / "mutant", tile_cls=ReadyOnValidTile)
        caught = any(s.status == "FAIL" and s.name.endswith("s_axis_tready_independent_of_tvalid")
                     for s in bad_tile)
        mutations.append(MutationResult("structural", "ready_on_valid",
                                        "the tile's s_axis TREADY waits for TVALID",
                                        "tile.s_axis_tready_independent_of_tvalid",
                                        [s.name for s in bad_tile if s.status == "FAIL"], caught,
                                        bad_tile[0].seconds))
        print(f"{'caught' if caught else 'MISSED':8} structural.mutant.ready_on_valid", flush=True)
    write_results(args.out, checks, mutations)
    bad = [c for c in checks if c.status != "PASS"] + [m for m in mutations if not m.caught]
    print(f"{len(checks)} checks, {len(mutations)} mutations in "
          f"{time.monotonic() - start:.0f} s; {len(bad)} not as expected; "
          f"results in {args.out / 'results.md'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
