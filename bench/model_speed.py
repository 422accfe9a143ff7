"""Batch-path speed of the crossbar model against a plain matrix multiply (a benchmark, not a test).

    .venv/bin/python bench/model_speed.py [--size 256] [--batches 1 64 1024] [--r-wire 2.0]

For each model and batch size, the time of one ``ChipState.mvm`` call (fresh per-MVM noise
drawn for every vector, converters at comparator-level fidelity through their tabulated
transfer) is set against a numpy float32 ``x @ w`` of the same shape, measured in the same
run, interleaved, best of several repeats. The one-time cost of building the chip state
(drift, 1/f noise and, with wires, the sparse nodal solve of the IR-drop matrix) is reported
apart. Prints a table and writes build/bench/model_speed.json.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from common import log, save

from aimc import TileConfig
from aimc.model import Chip, preset

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "model_speed.json"


def best_time(fn, budget=1.0, min_repeats=5) -> float:
    """Best wall time of ``fn`` over repeats that fill about ``budget`` seconds."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) > 2000:
            break
    return min(times)


def models(r_wire: float):
    # NeuroSim's minimum-width 14 nm wire over a 2F crossbar cell is about 2 ohm per segment.
    return {
        "ideal": preset("ideal"),
        "pcm": preset("pcm"),
        "pcm+ir-drop": preset("pcm").replace(name="pcm+ir-drop",
                                             array={"r_row": r_wire, "r_col": r_wire}),
    }


def measure(size: int = 256, batches=(1, 64, 1024), r_wire: float = 2.0,
            time_s: float = 3600.0, log=log) -> dict:
    """The time of ``ChipState.mvm`` against a float32 matrix multiply, for each model of
    :func:`models` and each batch size, on a ``size`` x ``size`` tile ``time_s`` seconds
    after programming, with ``r_wire`` ohm wire segments for the IR-drop model (0: none).
    Returns the figures bench/model_speed.json holds."""
    tile = TileConfig(rows=size, cols=size)
    rng = np.random.default_rng(0)
    w_int = rng.integers(-127, 128, size=(tile.rows, tile.cols))
    w32 = w_int.astype(np.float32)
    rows = []
    states = {}
    for name, model in models(r_wire).items():
        if name.endswith("ir-drop") and r_wire == 0:
            continue
        chip = Chip(tile, model, seed=1)
        chip.program(w_int)
        t0 = time.perf_counter()
        states[name] = chip.state(time_s)
        build = time.perf_counter() - t0
        log(f"{name}: chip state built in {build:.3f} s")
        rows.append({"model": name, "batch": None, "state_seconds": round(build, 3)})
    results = []
    for batch in batches:
        x = rng.integers(-tile.x_max, tile.x_max + 1, size=(batch, tile.rows))
        x32 = x.astype(np.float32)
        for name, state in states.items():
            def matmul(x32=x32):
                return x32 @ w32

            def model(state=state, x=x):
                return state.mvm(x)

            # Interleaved, so that a change in machine load hits both sides.
            plain = best_time(matmul)
            t = best_time(model)
            plain = min(plain, best_time(matmul))
            results.append({
                "model": name, "batch": batch,
                "model_ms": round(t * 1e3, 4), "matmul_f32_ms": round(plain * 1e3, 4),
                "ratio": round(t / plain, 2), "mvm_per_second": round(batch / t),
            })
            r = results[-1]
            log(f"{size}x{size} batch {batch:5d} {name:12s} "
                f"{r['model_ms']:9.3f} ms  vs float32 matmul {r['matmul_f32_ms']:8.3f} ms: "
                f"{r['ratio']:6.2f}x  ({r['mvm_per_second']:,} MVM/s)")
    return {"tile": f"{size}x{size}", "time_since_programming_s": time_s,
            "r_wire_ohm": r_wire, "machine": platform.processor() or platform.machine(),
            "numpy": np.__version__, "states": rows, "results": results}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--r-wire", type=float, default=2.0, help="wire ohm per segment for IR drop")
    p.add_argument("--time", type=float, default=3600.0, help="seconds since programming")
    args = p.parse_args(argv)
    result = measure(args.size, args.batches, args.r_wire, args.time)
    return save(OUT, result)


if __name__ == "__main__":
    raise SystemExit(main())
