"""Cosimulation speed and Verilog generation time (a benchmark, not a test).

    .venv/bin/python bench/cosim_speed.py [--sizes 16 256] [--sims icarus verilator]

Prints a table and writes build/bench/cosim_speed.json. Each run streams random vectors with
no back-pressure through the `mvm_stream` cocotb test; the figures are the test's own timing
of the streaming phase (simulator build and start-up excluded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import log, save

from aimc import TileConfig
from aimc.cosim import runner
from aimc.cosim.settings import CosimSettings
from aimc.rtl.verilog import generate

OUT = runner.BUILD / "bench" / "cosim_speed.json"


def measure(sizes=(16, 256), sims=runner.SIMULATORS, vectors: int = 40, mode: str = "pwm",
            log=log) -> list[dict]:
    """Verilog generation time, simulator build time and the streaming speed of
    ``mvm_stream`` (``vectors`` vectors, no stalls, ideal model) for each square tile of
    ``sizes`` on each of ``sims``; one row each, as bench/cosim_speed.json holds them."""
    logs = runner.BUILD / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        cfg = TileConfig(rows=size, cols=size, input_mode=mode)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(cfg, tmp)
            gen = time.perf_counter() - t0
        for sim in sims:
            t0 = time.perf_counter()
            runner.build(cfg, sim)
            build = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                settings = CosimSettings(tile=cfg, tests="mvm_stream", vectors=vectors,
                                         stalls=(0, 0), stats=Path(tmp) / "stats.json")
                runner.run(settings, sim, log_file=logs / f"cosim_{cfg.key}_{sim}.log")
                s = settings.read_stats("mvm_stream")
            rows.append({"size": f"{size}x{size}", "mode": mode, "sim": sim,
                         "verilog_seconds": round(gen, 2), "build_seconds": round(build, 1),
                         "mvm_per_second": round(s["mvm_per_second"], 1),
                         "cycles_per_second": round(s["cycles_per_second"]),
                         "period_cycles": s["period_cycles"],
                         "analogue_min_cycles": s["analogue_min_cycles"],
                         "matched": f"{s['matched']}/{s['vectors']}"})
            log(rows[-1])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 256])
    p.add_argument("--sims", nargs="+", default=list(runner.SIMULATORS))
    p.add_argument("--vectors", type=int, default=40)
    p.add_argument("--mode", default="pwm")
    args = p.parse_args(argv)
    rows = measure(args.sizes, args.sims, args.vectors, args.mode)
    print("\n| size | sim | Verilog gen (s) | MVM/s | cycles/s | period | analogue min | matched |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['size']} | {r['sim']} | {r['verilog_seconds']} | {r['mvm_per_second']} | "
              f"{r['cycles_per_second']} | {r['period_cycles']} | {r['analogue_min_cycles']} | "
              f"{r['matched']} |")
    return save(OUT, rows)


if __name__ == "__main__":
    raise SystemExit(main())
