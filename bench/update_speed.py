"""Speed of one pulse slot of the pulsed-device model (a benchmark, not a test).

    .venv/bin/python bench/update_speed.py [--sizes 64 256] [--repeats 200]

For each device kind and tile size, the wall time of :meth:`PulsedArray.apply` for slots in
which a fraction of the row and column lines fire (1/8: sparse, about 1.6 % of the devices
coincide; 1/2: a quarter of them; all), with fresh random masks and noise per slot, median
over ``--repeats`` slots; and one managed update of full-range random vectors through
:class:`UpdateEngine` (slots, line decisions and the noise draws included). Prints a table
and writes build/bench/update_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from aimc import TileConfig
from aimc.model.pulsed import KINDS, PulsedArray, PulsedDeviceConfig
from aimc.model.update import UpdateEngine

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "update_speed.json"
FRACTIONS = (1 / 8, 1 / 2, 1.0)


def slot_times(array: PulsedArray, fraction: float, repeats: int, rng) -> list[float]:
    rows, cols = array.tile.rows, array.tile.cols
    times = []
    for _ in range(repeats):
        masks = (rng.random(rows) < fraction, rng.random(rows) < 0.5,
                 rng.random(cols) < fraction, rng.random(cols) < 0.5)
        z = rng.standard_normal((rows, cols))
        t0 = time.perf_counter()
        array.apply(*masks, z)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    results = []
    print(f"{'kind':14} {'size':>5} " + " ".join(f"{f'slot {f:g}':>11}" for f in FRACTIONS)
          + f" {'update':>14}")
    for kind in KINDS[1:]:
        for n in args.sizes:
            tile = TileConfig(rows=n, cols=n)
            array = PulsedArray(tile, PulsedDeviceConfig(kind=kind), seed=1)
            slots = {f: float(np.median(slot_times(array, f, args.repeats, rng)))
                     for f in FRACTIONS}
            engine = UpdateEngine(tile, 1)
            x, d = rng.integers(-127, 128, n), rng.integers(-127, 128, n)
            t0 = time.perf_counter()
            r = engine.update_managed(array, x, d, eta=1 << 20)  # 1/16 pulse per LSB product
            update = time.perf_counter() - t0
            results.append(dict(kind=kind, size=n, slot_s={str(f): t for f, t in slots.items()},
                                update_s=update, update_slots=r.slots))
            print(f"{kind:14} {n:5d} " + " ".join(f"{slots[f] * 1e6:8.0f} us" for f in FRACTIONS)
                  + f" {update * 1e3:6.1f} ms/{r.slots:3d}")
    out = dict(machine=platform.processor() or platform.machine(), numpy=np.__version__,
               repeats=args.repeats, results=results)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
