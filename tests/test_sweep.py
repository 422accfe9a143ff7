"""Monte-Carlo sweeps on Dask (issue 18): the grid and its refusals, deterministic rows on
any number of workers, resuming, CSV and Parquet output, the summary, an unreachable
scheduler, and a real ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1,
one of them killed in the middle of the sweep."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aimc.sweep import (
    FIGURES,
    RUN_COLUMNS,
    Grid,
    _jobs,
    _Output,
    read_results,
    run_job,
    run_sweep,
    summarize,
)

DASK = Path(sys.executable).with_name("dask")
SMALL = dict(chips=4, sizes=(16,), times=(0.0, 86400.0), vectors=16, k=3,
             fields={"adc.comparator_offset": (0.5, 1.0)})


def _rows(path) -> dict:
    """Task id -> the row's task-determined values (the run columns aside)."""
    table = read_results(path)
    rows = table.to_pylist()
    ids = [r["task_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a task was written twice"
    return {r["task_id"]: {k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in rows}


def _same(a: dict, b: dict) -> bool:
    def norm(row):
        return {k: ("nan" if isinstance(v, float) and v != v else v) for k, v in row.items()}

    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The small grid on an embedded LocalCluster of two workers, Parquet output."""
    out = tmp_path_factory.mktemp("sweep") / "local.parquet"
    report = run_sweep(Grid(**SMALL), out, workers=2, chips_per_job=1, progress=False,
                       log=lambda *_: None)
    return out, report


def test_grid_tasks_and_deterministic_seeds():
    g = Grid(**SMALL)
    tasks = g.tasks()
    assert g.size == len(tasks) == 4 * 2 * 2
    assert len({t["task_id"] for t in tasks}) == len(tasks)
    # The same chip under every condition; the same ids on every run.
    assert len({t["chip_seed"] for t in tasks}) == 4
    assert [t["task_id"] for t in Grid(**SMALL).tasks()] == [t["task_id"] for t in tasks]
    assert Grid(**{**SMALL, "seed": 1}).tasks()[0]["chip_seed"] != tasks[0]["chip_seed"]
    jobs = _jobs(tasks, 2)
    assert sorted(t["task_id"] for j in jobs for t in j) == sorted(t["task_id"] for t in tasks)
    assert all(len({t["chip"] for t in j}) == 2 for j in jobs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fields={"adc.nope": (1,)}), r"^Grid.fields: unknown preset field 'adc.nope'; "
                                      r"allowed: temperature or section.field, one of "),
    (dict(fields={"r_row": ()}), r"^Grid.fields\['r_row'\] must hold at least one value, not "
                                 r"none \(the grid would be empty\)$"),
    (dict(times=()), r"^Grid.times must hold at least one value, not none \(the grid would "
                     r"be empty\)$"),
    (dict(chips=0), r"^Grid.chips must be an integer >= 1, not 0$"),
    (dict(presets=("nosuch",)), r"^Grid.presets: a preset must be one of "),
    (dict(fields={"adc.input_noise": (-1.0,)}), r"^Grid.fields\['adc.input_noise'\]: -1.0 is "
                                                r"not allowed for pcm: "),
    (dict(times=(-5,)), r"^Grid.times: a time must be a number of seconds >= 0, not -5$"),
    (dict(workload="network", fields={"temperature": (300,)}),
     r"^Grid.fields\['temperature'\] is an axis of the mvm workload only"),
])
def test_bad_grids_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Grid(**kwargs)


def test_bare_field_names_and_the_command_line_refusal(capsys):
    from aimc.cli import main

    assert "array.r_row" in Grid(fields={"r_row": (0.0, 2.0)}).fields
    assert main(["sweep", "--field", "adc.nope=1", "--out", "x.parquet"]) == 2
    err = capsys.readouterr().err
    assert "aimc sweep: error: Grid.fields: unknown preset field 'adc.nope'" in err
    assert main(["sweep", "--times", "soon"]) == 2
    assert "--times takes seconds or a number with s, m, h, d, w, mo or y, not 'soon'" in \
        capsys.readouterr().err


def test_local_sweep_writes_every_task_once_and_reruns_skip(local_run):
    out, report = local_run
    assert report["tasks"] == report["written"] == 16 and report["skipped"] == 0
    rows = _rows(out)
    assert len(rows) == 16
    row = next(iter(rows.values()))
    for column in ("chip", "chip_seed", "preset", "adc.comparator_offset", "rows", "cols",
                   "time", *FIGURES):
        assert column in row
    # Calibration helps right after programming; drift compensation a day later.
    for r in rows.values():
        if r["time"] == 0:
            assert r["err_rms_cal"] < r["err_rms_uncal"]
        else:
            assert r["err_rms_comp"] < 0.6 * r["err_rms_cal"]
            assert abs(r["drift_scale"] / r["drift_scale_true"] - 1) < 0.1
    again = run_sweep(Grid(**SMALL), out, workers=1, progress=False, log=lambda *_: None)
    assert again["skipped"] == 16 and again["written"] == 0 and again["workers"] == 0


def test_one_worker_gives_the_same_rows_and_csv_resumes(local_run, tmp_path):
    """The same grid on one worker, to CSV, stopped after its first job and resumed: the
    same rows as the two-worker run, none twice; a line cut short by a crash is dropped."""
    out, _ = local_run
    csv = tmp_path / "one.csv"
    jobs = _jobs(Grid(**SMALL).tasks(), 1)
    _Output(csv).write(run_job(jobs[0]))
    with open(csv, "a") as fh:
        fh.write("deadbeef,1,2")  # a crash in the middle of a line
    report = run_sweep(Grid(**SMALL), csv, workers=1, chips_per_job=2, progress=False,
                       log=lambda *_: None)
    assert report["skipped"] == len(jobs[0]) and report["written"] == 16 - len(jobs[0])
    assert _same(_rows(csv), _rows(out))


def test_summary_writes_tables_and_plots(local_run, tmp_path):
    out, _ = local_run
    summary = summarize(out, tmp_path / "summary", threshold=15.0)
    assert len(summary) == 4  # comparator offset x time
    for name in ("summary.md", "summary.json", "errors.png", "yield.png"):
        assert (tmp_path / "summary" / name).stat().st_size > 0
    text = (tmp_path / "summary" / "summary.md").read_text()
    assert "adc.comparator_offset=0.5, time=86400.0" in text
    assert all(0.0 <= s["yield_at_threshold"] <= 1.0 for s in summary.values())


def test_network_workload(tmp_path):
    grid = Grid(chips=2, sizes=(16,), times=(0.0, 86400.0), workload="network",
                dataset="iris", hidden=8, k=3)
    out = tmp_path / "net.parquet"
    run_sweep(grid, out, workers=1, progress=False, log=lambda *_: None)
    rows = list(_rows(out).values())
    assert len(rows) == 4
    assert all(r["acc_comp"] >= r["acc_float"] - 0.15 for r in rows)
    summarize(out, tmp_path / "s")
    assert (tmp_path / "s" / "accuracy.png").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_named_within_seconds(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=rf"^could not reach the Dask scheduler at "
                                           rf"{address} within 2 s"):
        run_sweep(Grid(**SMALL), tmp_path / "x.parquet", scheduler=address, timeout=2.0,
                  progress=False, log=lambda *_: None)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ValueError, match=r"^scheduler must be an address such as "
                                         r"tcp://127.0.0.1:8786, not '127.0.0.1'$"):
        run_sweep(Grid(**SMALL), tmp_path / "x.parquet", scheduler="127.0.0.1")


def _spawn(args, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([str(DASK), *args], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.slow
def test_cluster_of_two_workers_survives_one_killed(tmp_path):
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; the sweep
    runs against the address; once rows arrive, one worker (with its nanny) is killed; the
    output is complete, without duplicates, and identical to a local run. Bounded: every
    process is stopped at the end, the sweep has two minutes."""
    from distributed import Client

    if not DASK.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_spawn(["scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--no-dashboard"], tmp_path / "scheduler.log")]
    try:
        for name in ("w1", "w2"):
            procs.append(_spawn(["worker", address, "--nthreads", "1", "--nworkers", "1",
                                 "--name", name, "--no-dashboard", "--host", "127.0.0.1"],
                                tmp_path / f"{name}.log"))
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as c:
                    c.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:
                assert time.monotonic() < deadline, "the cluster did not come up"
                time.sleep(0.5)
        grid = Grid(chips=16, sizes=(96,), times=(0.0,), vectors=16, k=3)
        out = tmp_path / "cluster.parquet"
        result, errors = {}, []

        def sweep():
            try:
                result.update(run_sweep(grid, out, scheduler=address, chips_per_job=1,
                                        progress=False, flush_seconds=0.0,
                                        log=lambda *_: None))
            except BaseException as exc:  # reported in the test's thread
                errors.append(exc)

        th = threading.Thread(target=sweep, daemon=True)
        th.start()
        t0 = time.monotonic()
        while not list(out.glob("part-*.parquet")) and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        assert list(out.glob("part-*.parquet")), "no results arrived"
        killed_at = len(read_results(out))
        os.killpg(procs[1].pid, signal.SIGKILL)  # worker w1 and its nanny
        procs[1].wait(10)
        th.join(120)
        assert not th.is_alive(), "the sweep did not finish within two minutes"
        assert not errors, errors
        assert killed_at < grid.size, "the worker was killed after the sweep had finished"
        rows = _rows(out)
        assert len(rows) == grid.size == result["written"]
        workers = {r["worker"] for r in read_results(out).to_pylist()}
        assert len(workers) >= 1
        log = (tmp_path / "scheduler.log").read_text()
        assert "Remove worker" in log and "name: w1" in log, log[-2000:]
        local = tmp_path / "local.parquet"
        run_sweep(grid, local, workers=1, progress=False, log=lambda *_: None)
        assert _same(rows, _rows(local))
    finally:
        for p in reversed(procs):
            _stop(p)
