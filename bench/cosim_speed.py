"""Cosimulation speed and Verilog generation time (a benchmark, not a test).

    .venv/bin/python bench/cosim_speed.py [--sizes 16 256] [--sims icarus verilator]

Prints a table and writes build/bench/cosim_speed.json. Each run streams random vectors
through the `mvm_stream` cocotb test twice, with the random stalls of `aimc stream` on both
streams (input 0.2, results 0.3 per cycle) and with none; the figures are the test's own
timing of the streaming phase (simulator build and start-up excluded). Next to them, the
floor of the simulator itself: ``idle_probe`` (bench/cosim_probe.py) runs the tile idle
after reset for 100,000 cycles under one ``Timer``, Python asleep.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import log, save
from cosim_probe import probe

from aimc import TileConfig
from aimc.cosim import runner
from aimc.cosim.settings import CosimSettings
from aimc.rtl.verilog import generate

OUT = runner.BUILD / "bench" / "cosim_speed.json"
#: The stall probabilities of `aimc stream` (CosimSettings' default): input, results.
STALLS = CosimSettings.__dataclass_fields__["stalls"].default


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
            speed = {}
            for label, stalls in (("stalls", STALLS), ("no_stalls", (0, 0))):
                with tempfile.TemporaryDirectory() as tmp:
                    settings = CosimSettings(tile=cfg, tests="mvm_stream", vectors=vectors,
                                             stalls=stalls, stats=Path(tmp) / "stats.json")
                    runner.run(settings, sim,
                               log_file=logs / f"cosim_{cfg.key}_{sim}_{label}.log")
                    speed[label] = settings.read_stats("mvm_stream")
            idle = probe(cfg, sim, "idle_probe", logs, vectors=100)
            s, free = speed["stalls"], speed["no_stalls"]
            rows.append({"size": f"{size}x{size}", "mode": mode, "sim": sim,
                         "verilog_seconds": round(gen, 2), "build_seconds": round(build, 1),
                         "mvm_per_second": round(s["mvm_per_second"], 1),
                         "cycles_per_second": round(s["cycles_per_second"]),
                         "mvm_per_second_no_stalls": round(free["mvm_per_second"], 1),
                         "cycles_per_second_no_stalls": round(free["cycles_per_second"]),
                         "idle_cycles_per_second": round(idle["cycles_per_second"]),
                         "period_cycles": s["period_cycles"],
                         "analogue_min_cycles": s["analogue_min_cycles"],
                         "matched": f"{s['matched']}/{s['vectors']}, "
                                    f"{free['matched']}/{free['vectors']}"})
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
    print("\n| size | sim | MVM/s, stalls | cycles/s | MVM/s, no stalls | cycles/s | "
          "cycles/s idle | period | matched |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['size']} | {r['sim']} | {r['mvm_per_second']} | {r['cycles_per_second']} "
              f"| {r['mvm_per_second_no_stalls']} | {r['cycles_per_second_no_stalls']} | "
              f"{r['idle_cycles_per_second']} | {r['period_cycles']} | {r['matched']} |")
    return save(OUT, rows)


if __name__ == "__main__":
    raise SystemExit(main())
