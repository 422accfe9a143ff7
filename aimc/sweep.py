"""Monte-Carlo sweeps over many chips on Dask: ``aimc sweep`` and :func:`run_sweep`.

A :class:`Grid` is the product of its axes: chips (``chips`` seeds), base presets, any
preset fields (``adc.comparator_offset``, ``r_row``, ...; ``temperature`` is the read
temperature in kelvin), times after the reference read, tile sizes, and a workload: random
MVMs (random weights and inputs) or a network (the demo's MLP, trained on a bundled data
set, mapped onto tiles by :mod:`aimc.network`). Each grid point is a *task* and gives one
row of the output: every parameter as a column, then the figures (MVM error before and after
calibration and after drift compensation, in percent of full scale; the error of the
calibrated offsets and gains against the chip's true transfer; the drift scale against the
true one; the network's accuracy).

Determinism. A task's random draws are functions of the sweep seed and its coordinates
(:func:`aimc.network.derive_seed`): chip ``i`` has seed ``derive_seed(seed, "chip", i)``
(the ``chip_seed`` column, in hex)
(the same chip under every condition: paired comparisons), its weights and inputs
``derive_seed(seed, "stimulus", i, rows, cols)``. A rerun on any number of workers gives the
same rows (``job_seconds`` and ``worker`` aside).

Engine. Dask distributed: by default an embedded ``LocalCluster`` with one single-threaded
worker process per core; ``scheduler="tcp://HOST:PORT"`` runs on an existing cluster
(``dask scheduler`` and ``dask worker`` processes, or one started by dask-jobqueue on a
batch system or by dask-kubernetes). Tasks that share a chip (its times and temperatures)
run as one job, and ``chips_per_job`` chips go into one job, so that a job is long against
Dask's per-task overhead. A worker that dies has its jobs rerun elsewhere (Dask's
scheduler reschedules them); each job's rows are written once, when its result arrives.

Output. ``.parquet``: a folder of Parquet parts (one per flush), one table with
:func:`read_results`; ``.csv``: one file, appended. Rows are written as results arrive;
rerunning with the same output skips the tasks already there, so a sweep stopped by a crash
or Ctrl-C resumes where it stopped, with nothing lost or written twice. :func:`summarize`
writes ``summary.md`` and plots (error distribution per condition, yield curve, accuracy
distribution).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import TileConfig
from .network import derive_seed
from .sweep_results import _Output, read_results, summarize
from .sweep_tasks import FIGURES, RUN_COLUMNS, _jobs, _warm_up, run_job, task_id

__all__ = ["FIGURES", "RUN_COLUMNS", "Grid", "WORKLOADS", "read_results", "run_sweep", "run_job",
           "summarize"]

WORKLOADS = ("mvm", "network")
PROGRAM_METHODS = ("direct", "verify")


def _field_names() -> dict:
    """Every preset field by its ``section.field`` name, and by its bare name where only
    one section has it."""
    import dataclasses

    from .model import ModelConfig

    base = ModelConfig()
    full = {}
    for section in ModelConfig.sections():
        for f in dataclasses.fields(getattr(base, section)):
            full[f"{section}.{f.name}"] = (section, f.name)
    bare = {}
    for name, (_section, f) in full.items():
        bare.setdefault(f, []).append(name)
    out = dict(full)
    out.update({f: full[names[0]] for f, names in bare.items() if len(names) == 1})
    return out


def _tuple(value, what: str) -> tuple:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        value = (value,)
    value = tuple(value)
    if not value:
        raise ValueError(f"{what} must hold at least one value, not none (the grid would be "
                         f"empty)")
    return value


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep; their product is the set of tasks.

    Parameters
    ----------
    chips : int
        Chips per condition (chip indices ``0 .. chips-1``), >= 1.
    presets : sequence of str
        Base model presets (``pcm``, ``adc-only``, ...).
    fields : mapping of str to sequence
        Preset fields and their values: ``{"adc.comparator_offset": (0.5, 1.0)}``; a bare
        field name is enough where one section has it (``r_row``); ``temperature`` (kelvin)
        is the temperature of the reads.
    times : sequence of float
        Seconds after the reference read (``drift_t0`` after programming), >= 0.
    sizes : sequence of int or (rows, cols)
        Tile sizes (an int ``n`` is ``n x n``).
    workload : str
        ``"mvm"``: random weights (uniform over +-w_max) and random inputs; ``"network"``:
        the demo's MLP on ``dataset``.
    dataset : str
        The network's data set (:data:`aimc.evaluate.DATASETS` or a ``.npz``).
    hidden : int
        Hidden units of the network.
    vectors : int
        Random input vectors per task (``mvm``), >= 1.
    k : int
        Calibration averaging, ``2**k`` MVMs per measurement, 0..8.
    program : str
        ``"direct"`` (one programming event) or ``"verify"`` (program-and-verify, slower).
    seed : int
        The sweep seed, 0..2**64-1.

    Raises
    ------
    ValueError
        An empty axis, an unknown preset or preset field, a value a field does not allow,
        or another value out of range (the message names it).
    """

    chips: int = 10
    presets: tuple = ("pcm",)
    fields: dict = field(default_factory=dict)
    times: tuple = (0.0,)
    sizes: tuple = (64,)
    workload: str = "mvm"
    dataset: str = "digits"
    hidden: int = 32
    vectors: int = 64
    k: int = 6
    program: str = "direct"
    seed: int = 0

    def __post_init__(self):
        from .fixedpoint import MAX_AVG_LOG2
        from .model import PRESETS, preset

        def put(name, value):
            object.__setattr__(self, name, value)

        for name, lo in (("chips", 1), ("vectors", 1), ("hidden", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
                raise ValueError(f"Grid.{name} must be an integer >= {lo}, not {v!r}")
            put(name, int(v))
        if isinstance(self.k, bool) or not isinstance(self.k, int) or \
                not 0 <= self.k <= MAX_AVG_LOG2:
            raise ValueError(f"Grid.k must be an integer in 0..{MAX_AVG_LOG2}, not {self.k!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or \
                not 0 <= self.seed < 2**64:
            raise ValueError(f"Grid.seed must be an integer in 0..2**64-1, not {self.seed!r}")
        if self.workload not in WORKLOADS:
            raise ValueError(f"Grid.workload must be one of {', '.join(WORKLOADS)}, "
                             f"not {self.workload!r}")
        if self.program not in PROGRAM_METHODS:
            raise ValueError(f"Grid.program must be one of {', '.join(PROGRAM_METHODS)}, "
                             f"not {self.program!r}")
        presets = _tuple(self.presets, "Grid.presets")
        for p in presets:
            if p not in PRESETS:
                raise ValueError(f"Grid.presets: a preset must be one of {', '.join(PRESETS)}, "
                                 f"not {p!r}")
        put("presets", presets)
        times = _tuple(self.times, "Grid.times")
        for t in times:
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) \
                    or t < 0:
                raise ValueError(f"Grid.times: a time must be a number of seconds >= 0, "
                                 f"not {t!r}")
        put("times", tuple(float(t) for t in times))
        sizes = []
        for s in _tuple(self.sizes, "Grid.sizes"):
            rows, cols = (s, s) if isinstance(s, int | np.integer) else tuple(s)
            TileConfig(rows=int(rows), cols=int(cols))  # validates, naming the parameter
            sizes.append((int(rows), int(cols)))
        put("sizes", tuple(sizes))
        known = _field_names()
        fields = {}
        for name, values in dict(self.fields).items():
            values = _tuple(values, f"Grid.fields[{name!r}]")
            if name == "temperature":
                for v in values:
                    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1000:
                        raise ValueError(f"Grid.fields['temperature']: a temperature must be "
                                         f"in kelvin, between 0 and 1000, not {v!r}")
                if self.workload == "network":
                    raise ValueError("Grid.fields['temperature'] is an axis of the mvm "
                                     "workload only, not of the network one")
                fields[name] = tuple(float(v) for v in values)
                continue
            if name not in known:
                raise ValueError(f"Grid.fields: unknown preset field {name!r}; allowed: "
                                 f"temperature or section.field, one of "
                                 f"{', '.join(sorted(n for n in known if '.' in n))}")
            section, f = known[name]
            for p in presets:
                for v in values:
                    try:
                        preset(p).replace(**{section: {f: v}})
                    except (TypeError, ValueError) as exc:
                        raise ValueError(f"Grid.fields[{name!r}]: {v!r} is not allowed for "
                                         f"{p}: {exc}") from None
            fields[f"{section}.{f}"] = values
        put("fields", fields)
        if self.workload == "network":
            from .evaluate import DATASETS

            if self.dataset not in DATASETS and not Path(self.dataset).exists():
                raise ValueError(f"Grid.dataset must be one of {', '.join(DATASETS)} or an "
                                 f"existing .npz file, not {self.dataset!r}")

    # -- tasks -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of tasks."""
        n = self.chips * len(self.presets) * len(self.times) * len(self.sizes)
        for values in self.fields.values():
            n *= len(values)
        return n

    def tasks(self) -> list[dict]:
        """Every task's parameters (one dict per row of the output), in grid order."""
        names = list(self.fields)
        out = []
        common = {"sweep_seed": str(self.seed), "workload": self.workload,
                  "dataset": self.dataset if self.workload == "network" else "",
                  "hidden": self.hidden if self.workload == "network" else 0,
                  "vectors": self.vectors if self.workload == "mvm" else 0,
                  "k": self.k, "program": self.program}
        for p, combo, (rows, cols), chip, t in itertools.product(
                self.presets, itertools.product(*(self.fields[n] for n in names)),
                self.sizes, range(self.chips), self.times):
            task = {"chip": chip, "chip_seed": f"{derive_seed(self.seed, 'chip', chip):016x}",
                    "preset": p, **dict(zip(names, combo, strict=True)), "rows": rows,
                    "cols": cols, "time": t, **common}
            task["task_id"] = task_id(task)
            out.append(task)
        return out


# -- the sweep ------------------------------------------------------------------------------

def _check_scheduler(address: str) -> str:
    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"scheduler must be an address such as tcp://127.0.0.1:8786, "
                         f"not {address!r}")
    return address


def _client(scheduler, workers, timeout: float):
    """A Dask client: of the cluster at ``scheduler``, or of a new LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        address = _check_scheduler(scheduler)
        try:
            return Client(address, timeout=timeout), None
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"could not reach the Dask scheduler at {address} within "
                               f"{timeout:g} s ({type(exc).__name__}: {exc}); is "
                               f"`dask scheduler` running there?") from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address="127.0.0.1:0", host="127.0.0.1")
    return Client(cluster), cluster


def run_sweep(grid: Grid, out, *, scheduler: str | None = None, workers: int | None = None,
              chips_per_job: int | None = None, progress: bool = True, timeout: float = 5.0,
              flush_seconds: float = 5.0, log=print) -> dict:
    """Run the tasks of ``grid`` not yet in ``out`` on Dask and write their rows to ``out``.

    Parameters
    ----------
    grid : Grid
        The sweep.
    out : path
        ``.parquet`` (a folder of parts) or ``.csv``; rows already there are skipped.
    scheduler : str, optional
        ``tcp://HOST:PORT`` of an existing Dask scheduler; default: an embedded
        LocalCluster of ``workers`` single-threaded processes (default: one per core).
    chips_per_job : int, optional
        Chips per Dask job (default: about a second of work per job, and at least four
        jobs per worker).
    progress : bool
        A progress bar (tqdm: rate and time left).
    timeout : float
        Seconds to wait for the scheduler.
    flush_seconds : float
        Rows are written at least this often while results arrive.

    Returns
    -------
    dict
        ``tasks`` (in the grid), ``skipped`` (already written), ``written``, ``jobs``,
        ``wall_seconds``, ``startup_seconds`` (connecting or starting the cluster),
        ``compute_wall_seconds`` (from the first submission to the last result),
        ``job_seconds`` (summed compute time of the jobs, on the workers), ``workers``.

    Raises
    ------
    ValueError
        A bad grid, output or scheduler address.
    RuntimeError
        The scheduler cannot be reached, or a job fails (its error named).
    KeyboardInterrupt
        Ctrl-C: the rows that arrived are written first; a rerun resumes.
    """
    try:
        from distributed import as_completed
    except ImportError:
        raise RuntimeError("sweeps need Dask and pyarrow: install the sweep extra "
                           "(pip install -e '.[sweep]')") from None
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a Grid, not {grid!r}")
    output = _Output(out)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, not {workers!r}")
    if scheduler is not None:
        _check_scheduler(scheduler)
    tasks = grid.tasks()
    done = output.done()
    todo = [t for t in tasks if t["task_id"] not in done]
    if chips_per_job is not None and (isinstance(chips_per_job, bool) or
                                      not isinstance(chips_per_job, int) or chips_per_job < 1):
        raise ValueError(f"chips_per_job must be an integer >= 1, not {chips_per_job!r}")
    report = {"tasks": len(tasks), "skipped": len(tasks) - len(todo), "written": 0,
              "jobs": 0, "job_seconds": 0.0, "wall_seconds": 0.0, "workers": 0}
    if not todo:
        log(f"all {len(tasks)} tasks already in {out}")
        return report
    t0 = time.perf_counter()
    client, cluster = _client(scheduler, workers, timeout)
    bar = None
    pending: list[dict] = []
    try:
        report["workers"] = len(client.scheduler_info()["workers"])
        if chips_per_job is None:
            # About a second of work per job (a 256x256 chip takes ~0.1 s, a 16x16 one
            # ~5 ms), and at least four jobs per worker to share the load.
            cells = max(r * c for r, c in grid.sizes)
            chips = len(_jobs(todo, 1))
            chips_per_job = max(1, min(2**19 // cells,
                                       chips // (4 * max(report["workers"], 1))))
        jobs = _jobs(todo, chips_per_job)
        report["jobs"], report["chips_per_job"] = len(jobs), chips_per_job
        log(f"{len(todo)} tasks in {len(jobs)} jobs on {report['workers']} workers "
            f"({client.scheduler.address}); {report['skipped']} already in {out}")
        client.run(_warm_up)  # imports, outside the timed compute phase
        started = time.perf_counter()
        report["startup_seconds"] = started - t0
        futures = [client.submit(run_job, job, key=f"aimc-job-{task_id(job[0])}-{len(job)}",
                                 pure=False, retries=2) for job in jobs]
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="task", smoothing=0.1)
        last = time.perf_counter()
        for future in as_completed(futures):
            try:
                rows = future.result()
            except Exception as exc:
                raise RuntimeError(f"a sweep job failed on its worker: {type(exc).__name__}: "
                                   f"{exc}") from exc
            pending += rows
            if rows:
                report["job_seconds"] += rows[0]["job_seconds"]
                report["job_cpu_seconds"] = (report.get("job_cpu_seconds", 0.0)
                                             + rows[0]["job_cpu_seconds"])
            if bar is not None:
                bar.update(len(rows))
            if time.perf_counter() - last >= flush_seconds:
                output.write(pending)
                report["written"] += len(pending)
                pending, last = [], time.perf_counter()
            future.release()
        report["compute_wall_seconds"] = time.perf_counter() - started
    finally:
        output.write(pending)
        report["written"] += len(pending)
        if bar is not None:
            bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    report["wall_seconds"] = time.perf_counter() - t0
    return report


# -- command line ---------------------------------------------------------------------------

def _parse_field(text: str) -> tuple[str, tuple]:
    if "=" not in text:
        raise ValueError(f"--field must be NAME=V1,V2,... (for example "
                         f"adc.comparator_offset=0.5,1.0), not {text!r}")
    name, values = text.split("=", 1)
    out = []
    for v in values.split(","):
        v = v.strip()
        try:
            out.append(int(v) if v.lstrip("-").isdigit() else float(v))
        except ValueError:
            out.append({"true": True, "false": False}.get(v.lower(), v))
    return name.strip(), tuple(out)


def _parse_size(text: str):
    a, _, b = text.lower().partition("x")
    try:
        return (int(a), int(b or a))
    except ValueError:
        raise ValueError(f"--sizes takes sizes such as 64 or 64x32, not {text!r}") from None


def _parse_time(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400,
             "y": 365 * 86400}
    t = text.strip().lower()
    for unit in sorted(units, key=len, reverse=True):
        if t.endswith(unit) and t[:-len(unit)].replace(".", "", 1).isdigit():
            return float(t[:-len(unit)]) * units[unit]
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"--times takes seconds or a number with s, m, h, d, w, mo or y, "
                         f"not {text!r}") from None


def add_parser(sub) -> None:
    """Register ``aimc sweep`` on the command's subparsers."""
    s = sub.add_parser("sweep", help="Monte-Carlo sweep over chips x preset fields x times x "
                                     "tile sizes on Dask; a resumable Parquet/CSV table")
    s.add_argument("--chips", type=int, default=10, help="chips per condition (default 10)")
    s.add_argument("--presets", nargs="+", default=["pcm"], help="base presets")
    s.add_argument("--field", action="append", default=[], metavar="NAME=V1,V2",
                   help="a preset field and its values (repeatable): adc.comparator_offset="
                        "0.5,1, r_row=0,2, temperature=300,330")
    s.add_argument("--times", nargs="+", default=["0"],
                   help="times after the reference read: seconds, or 1h, 1d, 1mo, 1y")
    s.add_argument("--sizes", nargs="+", default=["64"], help="tile sizes: 64 or 64x32")
    s.add_argument("--workload", choices=WORKLOADS, default="mvm")
    s.add_argument("--dataset", default="digits", help="network workload: data set")
    s.add_argument("--hidden", type=int, default=32)
    s.add_argument("--vectors", type=int, default=64, help="random vectors per task (mvm)")
    s.add_argument("--avg-log2", type=int, default=6, dest="k",
                   help="2**N MVMs per calibration measurement (default 6)")
    s.add_argument("--program", choices=PROGRAM_METHODS, default="direct")
    s.add_argument("--seed", type=int, default=0, help="sweep seed")
    s.add_argument("--out", default="build/sweep/results.parquet",
                   help=".parquet folder or .csv file (default %(default)s); rerun to resume")
    s.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler (default: a LocalCluster on this machine)")
    s.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    s.add_argument("--chips-per-job", type=int, help="chips per Dask job (default: ~1 s)")
    s.add_argument("--threshold", type=float, default=10.0,
                   help="yield threshold on the calibrated worst-case error, %% (default 10)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-summary", action="store_true")

    def run(args) -> int:
        grid = Grid(chips=args.chips, presets=tuple(args.presets),
                    fields=dict(_parse_field(f) for f in args.field),
                    times=tuple(_parse_time(t) for t in args.times),
                    sizes=tuple(_parse_size(s) for s in args.sizes), workload=args.workload,
                    dataset=args.dataset, hidden=args.hidden, vectors=args.vectors, k=args.k,
                    program=args.program, seed=args.seed)
        try:
            r = run_sweep(grid, args.out, scheduler=args.scheduler, workers=args.workers,
                          chips_per_job=args.chips_per_job, progress=not args.no_progress)
        except KeyboardInterrupt:
            print(f"aimc sweep: interrupted; the rows that arrived are in {args.out}: rerun "
                  f"the same command to resume", file=__import__("sys").stderr)
            return 130
        rate = r["written"] / r["wall_seconds"] if r["wall_seconds"] else float("nan")
        print(f"{r['written']} tasks written ({r['skipped']} already there) in "
              f"{r['wall_seconds']:.1f} s on {r['workers']} workers: {rate:.2f} tasks/s; "
              f"{args.out}")
        if not args.no_summary:
            summary = summarize(args.out, threshold=args.threshold)
            for label, s in summary.items():
                parts = [f"{label}: {s['tasks']} tasks"]
                for f, name in (("err_rms_uncal", "RMS uncal"), ("err_rms_comp", "RMS cal"),
                                ("acc_comp", "accuracy")):
                    if f in s:
                        v = s[f]["median"] * (100 if f.startswith("acc") else 1)
                        parts.append(f"{name} {v:.3f}{' %' if f.startswith('acc') else ''}")
                if "yield_at_threshold" in s:
                    parts.append(f"yield {100 * s['yield_at_threshold']:.1f} %")
                print("  " + "; ".join(parts))
            print(f"summary: {Path(args.out).with_name(Path(args.out).stem + '-summary')}")
        return 0

    s.set_defaults(func=run)
