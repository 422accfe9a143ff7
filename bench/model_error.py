"""MVM error of each model preset against the ideal tile, uncalibrated (a benchmark, not a test).

    .venv/bin/python bench/model_error.py [--size 256] [--vectors 2000] [--seeds 4]

For each preset and time since programming, random weights and uniformly distributed
inputs go through chips of several seeds; the error is the result minus the ideal tile's
result (integer arithmetic and rounding), in percent of the converter's half range (the
full-scale output), RMS and worst case. ``adc-only`` is what the periphery leaves,
``pcm`` and ``rram`` add the devices. Prints a table and writes build/bench/model_error.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import log, save

from aimc import TileConfig
from aimc.model import Chip

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "model_error.json"
CASES = [("adc-only", 0.0), ("pcm", 0.0), ("pcm", 3600.0), ("pcm", 86400.0),
         ("pcm", 30 * 86400.0), ("rram", 0.0)]


def measure(size: int = 256, vectors: int = 2000, seeds: int = 4, log=log) -> dict:
    """The uncalibrated error of each case of :data:`CASES` on a ``size`` x ``size`` tile,
    ``vectors`` random vectors through chips of seeds 1..``seeds``; returns the figures
    bench/model_error.json holds."""
    tile = TileConfig(rows=size, cols=size)
    full_scale = 2 ** (tile.adc_bits - 1)
    rows = []
    for name, time in CASES:
        errors = []
        for seed in range(1, seeds + 1):
            rng = np.random.default_rng(seed)
            w = rng.integers(-127, 128, size=(tile.rows, tile.cols))
            x = rng.integers(-tile.x_max, tile.x_max + 1, size=(vectors, tile.rows))
            ideal = Chip(tile, "ideal", seed=seed)
            ideal.program(w)
            chip = Chip(tile, name, seed=seed)
            chip.program(w)
            errors.append((chip.mvm(x, time=time) - ideal.mvm(x)).ravel())
        e = np.concatenate(errors) / full_scale * 100
        rows.append({"model": name, "time_s": time, "rms_percent": round(float(np.sqrt(
            np.mean(e**2))), 2), "worst_percent": round(float(np.abs(e).max()), 1),
            "mean_percent": round(float(e.mean()), 2), "samples": int(e.size)})
        r = rows[-1]
        log(f"{name:9s} t = {time:>9.0f} s: RMS {r['rms_percent']:6.2f} %  worst "
            f"{r['worst_percent']:6.1f} %  mean {r['mean_percent']:+.2f} % of full scale")
    return {"tile": f"{size}x{size}", "vectors": vectors, "seeds": seeds, "results": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--vectors", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=4)
    args = p.parse_args(argv)
    result = measure(args.size, args.vectors, args.seeds)
    return save(OUT, result)


if __name__ == "__main__":
    raise SystemExit(main())
