"""What a worker of a sweep (:mod:`aimc.sweep`) runs: a job of tasks that share chips, and
the row of figures each task gives (:data:`FIGURES`). Every draw is a function of the
task's seeds, so a job gives the same rows on any worker."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from .config import TileConfig
from .network import derive_seed

__all__ = ["FIGURES", "RUN_COLUMNS", "run_job", "task_id"]

#: The figures of a row, after the parameters (NaN where a workload has none).
FIGURES = ("err_rms_uncal", "err_worst_uncal", "err_rms_cal", "err_worst_cal",
           "err_rms_comp", "err_worst_comp", "rounding_rms", "offset_err_rms",
           "offset_err_max", "gain_err_rms", "gain_err_max", "bad_columns", "drift_scale",
           "drift_scale_true", "drift_weak", "acc_float", "acc_uncal", "acc_cal", "acc_comp")
#: Parameter columns that hold text (read back as text from a CSV, whatever they look like).
_TEXT_COLUMNS = ("task_id", "chip_seed", "sweep_seed", "preset", "workload", "dataset",
                 "program", "worker")
#: Columns that depend on where and how fast a job ran, not on the task.
RUN_COLUMNS = ("job_seconds", "job_cpu_seconds", "tasks_in_job", "worker")



def task_id(task: dict) -> str:
    """A task's identity: a digest of its parameters (the same on every run)."""
    keys = {k: v for k, v in task.items() if k != "task_id"}
    return f"{derive_seed(json.dumps(keys, sort_keys=True, default=str)):016x}"


def _jobs(tasks: list[dict], chips_per_job: int) -> list[list[dict]]:
    """Tasks grouped into jobs: a chip's tasks (its times and temperatures) together, and
    ``chips_per_job`` chips of one condition per job."""
    groups: dict = {}
    for t in tasks:
        key = tuple((k, v) for k, v in t.items() if k not in ("time", "temperature",
                                                                "task_id"))
        groups.setdefault(key, []).append(t)
    chips = list(groups.values())
    by_condition: dict = {}
    for g in chips:
        cond = tuple((k, v) for k, v in g[0].items() if k not in (
            "time", "temperature", "task_id", "chip", "chip_seed"))
        by_condition.setdefault(cond, []).append(g)
    jobs = []
    for gs in by_condition.values():
        for i in range(0, len(gs), chips_per_job):
            jobs.append([t for g in gs[i:i + chips_per_job] for t in g])
    return jobs


# -- one job, on a worker -----------------------------------------------------------------

def run_job(tasks: list[dict]) -> list[dict]:
    """Compute the rows of ``tasks`` (one job): a pure function of the tasks' parameters.
    Runs on a Dask worker, single-threaded (BLAS limited to one thread)."""
    from threadpoolctl import threadpool_limits

    _tune_malloc()
    t0, cpu0 = time.perf_counter(), time.process_time()
    rows = []
    with threadpool_limits(1):
        chips: dict = {}
        for t in tasks:
            chips.setdefault(t["chip"], []).append(t)
        for group in chips.values():
            if group[0]["workload"] == "mvm":
                rows += _mvm_chip(group)
            else:
                rows += _network_chip(group)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    worker = os.environ.get("AIMC_WORKER_NAME") or f"pid{os.getpid()}"
    for r in rows:
        r.update({"job_seconds": seconds, "job_cpu_seconds": cpu, "tasks_in_job": len(tasks),
                  "worker": worker})
    return rows


def _warm_up() -> None:
    """Import what the jobs use (run once on every worker before the jobs)."""
    import scipy.sparse  # noqa: F401
    import threadpoolctl  # noqa: F401

    from . import model, network  # noqa: F401

    _tune_malloc()


_MALLOC_TUNED = False


def _tune_malloc() -> None:
    """Undo what Dask's nanny sets for its workers (``MALLOC_TRIM_THRESHOLD_=65536``, which
    also freezes glibc's mmap threshold at 128 KiB): every large numpy temporary would then
    be mapped and faulted in afresh, which made a 256x256 chip 50 % slower. Large
    thresholds keep freed memory for the next array, as a plain process does. glibc only;
    elsewhere nothing changes."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 2**20)
    mallopt(m_trim_threshold, 256 * 2**20)


def _model_of(task: dict):
    from .model import preset

    sections: dict = {}
    for name, value in task.items():
        if "." in name:
            section, f = name.split(".", 1)
            sections.setdefault(section, {})[f] = value
    cfg = preset(task["preset"])
    return cfg.replace(**sections) if sections else cfg


def _true_transfer(chip):
    """Each column's true offset (codes of a raw result at zero charge) and gain (the
    factor the correction must apply): the least-squares line of the noise-free transfer
    over the middle 80 % of the converter range."""
    tile = chip.tile
    half = 2 ** (tile.adc_bits - 1)
    ideal = np.linspace(-0.8 * half, 0.8 * half, 257)
    codes = chip.adc.convert(np.repeat((ideal * chip.lsb)[:, None], tile.cols, axis=1)) - half
    a, b = np.polyfit(ideal, codes, 1)
    weight = 2**tile.planes - 1   # bit-serial: an offset in every plane's conversion
    return b * weight, 1.0 / a


def _mvm_chip(group: list[dict]) -> list[dict]:
    from .fixedpoint import GAIN_FRAC, OFF_FRAC, ONE, CalFormat
    from .model import (
        Chip,
        DriftReference,
        ProgramParams,
        calibrate,
        mvm_error,
        program_and_verify,
        true_drift_scale,
    )

    t = group[0]
    tile = TileConfig(rows=t["rows"], cols=t["cols"])
    fmt = CalFormat(tile)
    chip = Chip(tile, _model_of(t), seed=int(t["chip_seed"], 16))
    rng = np.random.default_rng(derive_seed(int(t["sweep_seed"]), "stimulus", t["chip"],
                                            t["rows"], t["cols"]))
    w = rng.integers(-chip.w_max, chip.w_max + 1, size=(tile.rows, tile.cols))
    x = rng.integers(-tile.x_max, tile.x_max + 1, size=(t["vectors"], tile.rows))
    k, v = t["k"], 0
    if t["program"] == "verify":
        pre = calibrate(chip.state(0.0), ("offset", "gain"), v, k)
        v += pre.mvms
        targets = np.round(w * chip.read_counts_per_lsb).astype(np.int64)
        program_and_verify(chip, targets, ProgramParams(correct=True), calibration=pre)
    else:
        chip.program(w)
    ref = DriftReference.for_weights(chip.target_weights, chip)
    cal = calibrate(chip.state(0.0), ("offset", "gain", "capture"), v, k, reference=ref)
    v += cal.mvms
    good = ~cal.bad
    off_true, gain_true = _true_transfer(chip)
    off_err = (cal.offset / 2**OFF_FRAC - off_true)[good]
    gain_err = ((cal.gain / 2**GAIN_FRAC) / gain_true - 1)[good] * 100
    base = {"offset_err_rms": _rms(off_err), "offset_err_max": _max(off_err),
            "gain_err_rms": _rms(gain_err), "gain_err_max": _max(gain_err),
            "bad_columns": int(cal.bad.sum())}
    rows = []
    for task in group:
        temp = task.get("temperature")
        st = chip.state(task["time"], temp)
        raw = st.mvm(x, v)
        v += len(x)
        uncal = mvm_error(st, x, fmt.uncorrected(raw), good, raw=raw)
        fixed = mvm_error(st, x, fmt.correct(raw, cal.offset, cal.gain, ONE)[0], good, raw=raw)
        if task["time"] > 0 or (temp is not None and temp != chip.config.device.temp_ref):
            comp = calibrate(st, ("drift",), v, k, start=cal, reference=ref)
            v += comp.mvms
            comped = mvm_error(st, x, fmt.correct(raw, cal.offset, cal.gain,
                                                  comp.drift_scale)[0], good, raw=raw)
            scale, weak = comp.drift_scale / ONE, bool(comp.weak)
            true = true_drift_scale(chip, task["time"], temp)
        else:
            comped, scale, weak, true = fixed, 1.0, False, 1.0
        rows.append({**task, **_empty(), **base,
                     "err_rms_uncal": uncal["rms_percent"],
                     "err_worst_uncal": uncal["worst_percent"],
                     "err_rms_cal": fixed["rms_percent"], "err_worst_cal": fixed["worst_percent"],
                     "err_rms_comp": comped["rms_percent"],
                     "err_worst_comp": comped["worst_percent"],
                     "rounding_rms": fixed["rounding_rms_percent"],
                     "drift_scale": scale, "drift_scale_true": true, "drift_weak": weak})
    return rows


_TRAINED: dict = {}


def _trained(dataset: str, hidden: int, seed: int):
    """The demo's MLP trained on ``dataset`` (cached per worker)."""
    key = (dataset, hidden, seed)
    if key not in _TRAINED:
        from .evaluate import load_dataset
        from .nn import train

        x_tr, x_te, y_tr, y_te = load_dataset(dataset, seed=0)
        _TRAINED[key] = (train(x_tr, y_tr, hidden=hidden, seed=seed), x_tr, x_te, y_tr, y_te)
    return _TRAINED[key]


def _network_chip(group: list[dict]) -> list[dict]:
    from .network import TiledNetwork

    t = group[0]
    mlp, x_tr, x_te, y_tr, y_te = _trained(t["dataset"], t["hidden"],
                                           derive_seed(int(t["sweep_seed"]), "train") % 2**32)
    tile = TileConfig(rows=t["rows"], cols=t["cols"])
    net = TiledNetwork([(mlp.w1, mlp.b1), (mlp.w2, mlp.b2)], x_tr, tile=tile,
                       model=_model_of(t), seed=int(t["chip_seed"], 16),
                       classes=np.arange(int(y_tr.max()) + 1))
    net.program(method=t["program"], k=t["k"])
    uncal = net.score(x_te, y_te, correct=False)
    cal = net.calibrate(k=t["k"])
    acc0 = net.score(x_te, y_te)
    rows = []
    for task in group:
        if task["time"] > 0:
            net.reset_drift_scale()
            acc_cal = net.score(x_te, y_te, time=task["time"])
            comp = net.compensate_drift(time=task["time"], k=t["k"])
            acc_comp = net.score(x_te, y_te)
            scale = float(np.mean(comp["scales"]))
            weak = comp["weak"] > 0
        else:
            acc_cal = acc_comp = acc0
            scale, weak = 1.0, False
        rows.append({**task, **_empty(), "bad_columns": cal["bad_columns"],
                     "acc_float": mlp.accuracy(x_te, y_te), "acc_uncal": uncal,
                     "acc_cal": acc_cal, "acc_comp": acc_comp, "drift_scale": scale,
                     "drift_weak": weak})
    return rows


def _empty() -> dict:
    return {f: (0 if f == "bad_columns" else False if f == "drift_weak" else float("nan"))
            for f in FIGURES}


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a)))) if len(a) else float("nan")


def _max(a) -> float:
    return float(np.abs(a).max()) if len(a) else float("nan")
