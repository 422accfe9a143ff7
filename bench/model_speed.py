"""Batch-path speed of the crossbar model against a plain matrix multiply (a benchmark, not a test).

    .venv/bin/python bench/model_speed.py [--size 256] [--batches 1 64 1024] [--r-wire 2.0]

For each model and batch size, the time of one ``ChipState.mvm`` call (fresh per-MVM noise
drawn for every vector, converters at comparator-level fidelity through their tabulated
transfer) is set against a numpy float32 ``x @ w`` of the same shape and against the
previous, all-numpy implementation of the same call (``ChipState._batch(...,
previous=True)``, the same results bit for bit), all three measured in the same run,
interleaved, best and median of repeats. The one-time costs are reported apart: building
the chip state (drift, 1/f noise and, with wires, the sparse nodal solve of the IR-drop
matrix), and the first call of the compiled kernels in a fresh process, once with an empty
numba cache (the JIT compilation) and once with the cache that run left. Prints a table and
writes build/bench/model_speed.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from common import log, save

from aimc import TileConfig
from aimc.model import Chip, preset

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "model_speed.json"


def times_of(fn, budget=0.5, min_repeats=5) -> list[float]:
    """Wall times of ``fn`` over repeats that fill about ``budget`` seconds."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) > 2000:
            break
    return times


def interleaved(fns: dict, rounds=3) -> dict:
    """Best and median wall time of each of ``fns``, measured round after round in turn, so
    that a change in machine load hits all of them."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += times_of(fn)
    return {name: (min(t), float(np.median(t))) for name, t in times.items()}


_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
from aimc import TileConfig
from aimc.model import Chip
chip = Chip(TileConfig(rows=64, cols=64), "pcm", seed=1)
chip.program(np.ones((64, 64), dtype=int))
state = chip.state(1.0)
x = np.ones((4, 64), dtype=int)
t1 = time.perf_counter()
state.mvm(x)
t2 = time.perf_counter()
state.mvm(x)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def first_call(log=log) -> dict:
    """Seconds of the first ``ChipState.mvm`` in a fresh process: with an empty numba cache
    (compilation of the kernels) and then with the cache that run wrote."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for key in ("empty_cache", "warm_cache"):
            run = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                                 capture_output=True, text=True)
            setup, first, second = (float(v) for v in run.stdout.split())
            out[key] = {"first_call_s": round(first, 3), "second_call_s": round(second, 5)}
            log(f"first mvm in a fresh process, {key.replace('_', ' ')}: {first:.3f} s "
                f"(the next: {second * 1e3:.3f} ms)")
    return out


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
            if not np.array_equal(state.mvm(x), state._batch(x, 0, False, state.forward,
                                                              previous=True)):
                raise RuntimeError(f"{name}: the compiled and the previous path differ")
            got = interleaved({
                "matmul": lambda x32=x32: x32 @ w32,
                "model": lambda state=state, x=x: state.mvm(x),
                "previous": lambda state=state, x=x: state._batch(x, 0, False, state.forward,
                                                                  previous=True),
            })
            (plain, plain_med), (t, t_med), (old, old_med) = (
                got["matmul"], got["model"], got["previous"])
            results.append({
                "model": name, "batch": batch,
                "model_ms": round(t * 1e3, 4), "model_median_ms": round(t_med * 1e3, 4),
                "matmul_f32_ms": round(plain * 1e3, 4),
                "matmul_f32_median_ms": round(plain_med * 1e3, 4),
                "previous_ms": round(old * 1e3, 4), "previous_median_ms": round(old_med * 1e3, 4),
                "ratio": round(t / plain, 2), "ratio_median": round(t_med / plain_med, 2),
                "previous_ratio": round(old / plain, 2),
                "speedup": round(old / t, 2), "speedup_median": round(old_med / t_med, 2),
                "mvm_per_second": round(batch / t),
            })
            r = results[-1]
            log(f"{size}x{size} batch {batch:5d} {name:12s} "
                f"{r['model_ms']:9.3f} ms  vs float32 matmul {r['matmul_f32_ms']:8.3f} ms: "
                f"{r['ratio']:6.2f}x (median {r['ratio_median']:.2f}x); previous "
                f"{r['previous_ms']:9.3f} ms ({r['previous_ratio']:.2f}x), speed-up "
                f"{r['speedup']:.2f} (median {r['speedup_median']:.2f})  "
                f"({r['mvm_per_second']:,} MVM/s)")
    return {"tile": f"{size}x{size}", "time_since_programming_s": time_s,
            "r_wire_ohm": r_wire, "machine": platform.processor() or platform.machine(),
            "numpy": np.__version__, "numba": numba.__version__,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "first_call": first_call(log), "states": rows, "results": results}


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
