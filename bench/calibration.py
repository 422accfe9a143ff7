"""Calibration over many chips: MVM error before and after, from the golden algorithm
(a benchmark, not a test).

    .venv/bin/python bench/calibration.py [--chips 100] [--size 256] [--vectors 200]

Each chip (its own seed: its own mismatch and random weights) is calibrated by
``aimc.model.calibration.calibrate``, the algorithm the cosimulation tests prove the RTL's
engine computes bit for bit, through the batch model that predicts the RTL's results bit for
bit. The error is the result minus ideal arithmetic (``x @ w / lsb``), in percent of full
scale, over the columns not flagged bad and the results whose ideal value and raw conversion
are inside the converter range. ``adc-only`` shows what the periphery leaves; ``pcm`` adds
the devices, also one day and one month after programming without and with the engine's
drift compensation. Prints percentiles and writes build/bench/calibration.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import log, save

from aimc import TileConfig
from aimc.fixedpoint import CalFormat
from aimc.model import Chip
from aimc.model.calibration import calibrate, mvm_error

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "calibration.json"
DAY = 86400.0


def one_chip(tile, model, seed, vectors, k):
    fmt = CalFormat(tile)
    rng = np.random.default_rng(seed)
    chip = Chip(tile, model, seed=seed)
    chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(tile.rows, tile.cols)))
    x = rng.integers(-tile.x_max, tile.x_max + 1, size=(vectors, tile.rows))
    state = chip.state(0.0)
    out = {}
    raw = state.mvm(x)
    cal = calibrate(state, ("offset", "gain", "capture"), vectors, k)
    good = ~cal.bad
    out["before"] = mvm_error(state, x, fmt.uncorrected(raw), good)
    v = vectors + cal.mvms
    corrected = fmt.correct(state.mvm(x, v), cal.offset, cal.gain, cal.drift_scale)[0]
    out["after"] = mvm_error(state, x, corrected, good)
    out["bad_columns"] = int(cal.bad.sum())
    if model != "adc-only":
        for label, t in (("one_day", DAY), ("one_month", 30 * DAY)):
            later = chip.state(t)
            v += vectors
            stale = fmt.correct(later.mvm(x, v), cal.offset, cal.gain, cal.drift_scale)[0]
            out[label + "_without"] = mvm_error(later, x, stale, good)
            comp = calibrate(later, ("drift",), v, k, start=cal)
            v += comp.mvms
            fixed = fmt.correct(later.mvm(x, v), comp.offset, comp.gain, comp.drift_scale)[0]
            out[label + "_with"] = mvm_error(later, x, fixed, good)
    return out


def run(chips: int = 100, size: int = 256, vectors: int = 200, avg_log2: int = 6,
        models=("adc-only", "pcm"), log=log) -> dict:
    """Calibrate ``chips`` chips (seeds 1..``chips``) of each of ``models`` on a ``size`` x
    ``size`` tile with ``2**avg_log2`` MVMs per measurement, ``vectors`` random vectors for
    the error; returns the percentiles over chips that bench/calibration.json holds."""
    tile = TileConfig(rows=size, cols=size)
    report = {"tile": f"{size}x{size}", "chips": chips, "vectors": vectors,
              "avg_log2": avg_log2, "models": {}}
    for model in models:
        t0 = time.perf_counter()
        runs = [one_chip(tile, model, seed, vectors, avg_log2) for seed in range(1, chips + 1)]
        summary = {}
        for key in runs[0]:
            if key == "bad_columns":
                summary[key] = int(sum(r[key] for r in runs))
                continue
            rms = np.array([r[key]["rms_percent"] for r in runs])
            worst = np.array([r[key]["worst_percent"] for r in runs])
            rounding = np.array([r[key]["rounding_rms_percent"] for r in runs])
            summary[key] = {
                "rms_median": round(float(np.median(rms)), 3),
                "rms_p90": round(float(np.percentile(rms, 90)), 3),
                "rms_max": round(float(rms.max()), 3),
                "worst_median": round(float(np.median(worst)), 3),
                "worst_max": round(float(worst.max()), 3),
                "worst_under_1_percent": round(float((worst < 1.0).mean()), 3),
                "rounding_rms_median": round(float(np.median(rounding)), 3),
                "rms_over_rounding_median": round(float(np.median(rms / rounding)), 3),
            }
        report["models"][model] = summary
        log(f"{model}: {chips} chips of {size}x{size} in {time.perf_counter() - t0:.1f} s; "
            f"bad columns in all: {summary['bad_columns']}")
        for key, s in summary.items():
            if key == "bad_columns":
                continue
            log(f"  {key:18s} RMS median {s['rms_median']:6.3f} % (90th {s['rms_p90']:6.3f}, "
                f"max {s['rms_max']:6.3f});  worst median {s['worst_median']:6.2f} %, "
                f"max {s['worst_max']:6.2f} %, under 1 % on "
                f"{100 * s['worst_under_1_percent']:.0f} % of chips; rounding alone "
                f"{s['rounding_rms_median']:.3f} % RMS ({s['rms_over_rounding_median']:.2f}x)")
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chips", type=int, default=100)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--vectors", type=int, default=200)
    p.add_argument("--avg-log2", type=int, default=6)
    p.add_argument("--models", nargs="+", default=["adc-only", "pcm"])
    args = p.parse_args(argv)
    report = run(args.chips, args.size, args.vectors, args.avg_log2, args.models)
    return save(OUT, report)


if __name__ == "__main__":
    raise SystemExit(main())
