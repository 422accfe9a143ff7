"""Speed of training on the batch path (a benchmark, not a test).

    .venv/bin/python bench/train_speed.py [--algorithms sgd ttv2] [--epochs 3]

Trains the 64-32-10 MLP of ``aimc train`` on digits on 64x64 tiles (gokmen-vlasov) for
``--epochs`` epochs per algorithm, in this process (one core: numpy's threads limited to
one), and reports each epoch's wall and CPU seconds, their median, examples per second and
the machine's load average, which on a shared machine says how far the wall time is from
the CPU time. Writes build/bench/train_speed.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
from common import log, save  # noqa: E402

from aimc.train import TrainConfig, build, load_dataset  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "train_speed.json"


def measure(algorithm: str, epochs: int, seed: int = 1) -> dict:
    cfg = TrainConfig(algorithm=algorithm, epochs=epochs, seed=seed)
    x_tr, _, y_tr, _ = load_dataset(cfg.dataset, cfg.seed)
    net, _, _ = build(cfg, x_tr.shape[1], int(y_tr.max()) + 1)
    rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(epochs):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in rng.permutation(len(x_tr)):
            net.step(x_tr[i], y_tr[i])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append({"epoch": epoch + 1, "wall_s": wall, "cpu_s": cpu,
                     "examples_per_s": len(x_tr) / wall, "load_average": os.getloadavg()[0]})
        log(f"  {algorithm} epoch {epoch + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"{len(x_tr) / wall:.0f} examples/s, load {os.getloadavg()[0]:.1f}")
    return {"algorithm": algorithm, "examples": len(x_tr), "epochs": rows,
            "median_wall_s": float(np.median([r["wall_s"] for r in rows])),
            "median_cpu_s": float(np.median([r["cpu_s"] for r in rows]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithms", nargs="+", default=["sgd", "ttv2"])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)
    runs = []
    for alg in args.algorithms:
        r = measure(alg, args.epochs)
        log(f"{alg}: median epoch {r['median_wall_s']:.1f} s wall, {r['median_cpu_s']:.1f} s "
            f"CPU (64-32-10 on 64x64 tiles, {r['examples']} examples)")
        runs.append(r)
    return save(OUT, {"runs": runs, "cpus": os.cpu_count()})


if __name__ == "__main__":
    raise SystemExit(main())
