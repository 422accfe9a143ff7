"""Sweep throughput on Dask: 256x256 chips, calibrated and uncalibrated, with 1 and 2 workers
(a benchmark, not a test).

    .venv/bin/python bench/sweep_scaling.py [--chips 1000] [--scaling-chips 200] [--repeats 3]

Each task is one ``pcm`` chip of 256x256 (:func:`aimc.sweep.run_sweep`, workload ``mvm``):
random weights programmed directly, 64 random vectors read raw, offsets and gains calibrated
and the drift reference captured (``2**6`` MVMs per measurement), the same results corrected;
a row has the error before and after calibration and the coefficients' error. The scaling
runs (``--scaling-chips`` chips, ``--repeats`` times with 1 and with 2 workers of an
embedded LocalCluster, a fresh output each time) give the throughput (tasks per second over
the compute phase, from the first submission to the last result) and Dask's overhead per
task: ``(compute wall x workers - summed job time on the workers) / jobs``, against the mean
job time. Then one sweep of ``--chips`` chips on 2 workers gives the wall time. Medians over
the repeats; writes build/bench/sweep_scaling.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import log, save

from aimc.sweep import Grid, read_results, run_sweep

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "sweep_scaling.json"


def one_run(chips: int, workers: int, seed: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="aimc-sweep-"))
    try:
        grid = Grid(chips=chips, presets=("pcm",), times=(0.0,), sizes=(256,), vectors=64,
                    k=6, seed=seed)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        r = run_sweep(grid, folder / "r.parquet", workers=workers, progress=False,
                      log=lambda *_: None)
        r["total_seconds"] = time.perf_counter() - t0
        rows = read_results(folder / "r.parquet")
        assert rows.num_rows == grid.size
        compute = r["compute_wall_seconds"]
        r["tasks_per_second"] = r["written"] / compute
        r["job_mean_seconds"] = r["job_seconds"] / r["jobs"]
        r["overhead_per_job_seconds"] = (compute * workers - r["job_seconds"]) / r["jobs"]
        r["overhead_percent"] = 100 * r["overhead_per_job_seconds"] / r["job_mean_seconds"]
        # CPU the jobs got against their wall time: below 1, other processes took the cores.
        r["cpu_share"] = r["job_cpu_seconds"] / r["job_seconds"]
        r["cpu_seconds_per_task"] = r["job_cpu_seconds"] / r["written"]
        r["load_before"], r["load_after"] = load0, os.getloadavg()[0]
        return r
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(chips: int = 1000, scaling_chips: int = 200, repeats: int = 3, log=log) -> dict:
    report = {"tile": "256x256", "model": "pcm", "scaling_chips": scaling_chips,
              "repeats": repeats, "scaling": {}}
    for workers in (1, 2):
        runs = []
        for i in range(repeats):
            r = one_run(scaling_chips, workers, seed=i)
            runs.append(r)
            log(f"{workers} worker(s), run {i + 1}: {r['tasks_per_second']:.3f} tasks/s, "
                f"job {r['job_mean_seconds']:.3f} s, Dask overhead "
                f"{1000 * r['overhead_per_job_seconds']:.1f} ms per job "
                f"({r['overhead_percent']:.2f} %), start-up {r['startup_seconds']:.1f} s; "
                f"CPU share of the jobs {r['cpu_share']:.2f}, "
                f"{r['cpu_seconds_per_task']:.3f} CPU s per task; load average "
                f"{r['load_before']:.1f} -> {r['load_after']:.1f}")
        report["scaling"][workers] = {
            k: statistics.median(r[k] for r in runs)
            for k in ("tasks_per_second", "job_mean_seconds", "overhead_per_job_seconds",
                      "overhead_percent", "startup_seconds", "compute_wall_seconds",
                      "cpu_share", "cpu_seconds_per_task")}
        report["scaling"][workers]["runs"] = [
            {k: r[k] for k in ("tasks_per_second", "overhead_percent", "compute_wall_seconds",
                               "cpu_share", "load_before", "load_after")}
            for r in runs]
    ratio = (report["scaling"][2]["tasks_per_second"]
             / report["scaling"][1]["tasks_per_second"])
    report["speedup_2_over_1"] = ratio
    log(f"median throughput: 1 worker {report['scaling'][1]['tasks_per_second']:.3f}, "
        f"2 workers {report['scaling'][2]['tasks_per_second']:.3f} tasks/s (ratio {ratio:.2f})")
    if chips:
        r = one_run(chips, 2, seed=100)
        report["full"] = {k: r[k] for k in ("written", "total_seconds", "startup_seconds",
                                            "compute_wall_seconds", "tasks_per_second",
                                            "overhead_percent", "job_mean_seconds",
                                            "cpu_share", "cpu_seconds_per_task",
                                            "load_before", "load_after")}
        per_task = r["compute_wall_seconds"] * 2 / r["written"]
        report["full"]["core_seconds_per_task"] = per_task
        report["projection_100k_chips_hours_per_core"] = 100_000 * per_task / 3600
        report["projection_100k_chips_cpu_hours"] = 100_000 * r["cpu_seconds_per_task"] / 3600
        log(f"{chips} chips of 256x256 on 2 workers: {r['total_seconds']:.0f} s in all "
            f"({r['compute_wall_seconds']:.0f} s computing, {r['tasks_per_second']:.2f} "
            f"tasks/s, {per_task:.2f} core-seconds per task, Dask overhead "
            f"{r['overhead_percent']:.2f} %); 100,000 chips: "
            f"{report['projection_100k_chips_hours_per_core']:.1f} core-hours")
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chips", type=int, default=1000)
    p.add_argument("--scaling-chips", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    return save(OUT, run(args.chips, args.scaling_chips, args.repeats))


if __name__ == "__main__":
    raise SystemExit(main())
