"""Cosimulation speed and Verilog generation time (a benchmark, not a test).

    .venv/bin/python bench/cosim_speed.py [--sizes 16 256] [--sims icarus verilator]

Prints a table and writes build/bench/cosim_speed.json. Each run streams random vectors with
no back-pressure through the `mvm_stream` cocotb test; the figures are the test's own timing
of the streaming phase (simulator build and start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from aimc import TileConfig
from aimc.cosim import runner
from aimc.rtl.verilog import generate

OUT = runner.BUILD / "bench" / "cosim_speed.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 256])
    p.add_argument("--sims", nargs="+", default=list(runner.SIMULATORS))
    p.add_argument("--vectors", type=int, default=40)
    p.add_argument("--mode", default="pwm")
    args = p.parse_args()

    OUT.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        cfg = TileConfig(rows=size, cols=size, input_mode=args.mode)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(cfg, tmp)
            gen = time.perf_counter() - t0
        for sim in args.sims:
            t0 = time.perf_counter()
            runner.build(cfg, sim)
            build = time.perf_counter() - t0
            stats = Path(tempfile.mkstemp(suffix=".json")[1])
            runner.run(cfg, sim, "mvm_stream", env={
                "AIMC_VECTORS": args.vectors, "AIMC_STALLS": "0,0", "AIMC_STATS": stats},
                log_file=runner.BUILD / "bench" / f"cosim_{cfg.key}_{sim}.log")
            s = json.loads(stats.read_text())
            stats.unlink()
            rows.append({"size": f"{size}x{size}", "mode": args.mode, "sim": sim,
                         "verilog_seconds": round(gen, 2), "build_seconds": round(build, 1),
                         "mvm_per_second": round(s["mvm_per_second"], 1),
                         "cycles_per_second": round(s["cycles_per_second"]),
                         "period_cycles": s["period_cycles"],
                         "analogue_min_cycles": s["analogue_min_cycles"],
                         "matched": f"{s['matched']}/{s['vectors']}"})
            print(rows[-1], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| size | sim | Verilog gen (s) | MVM/s | cycles/s | period | analogue min | matched |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['size']} | {r['sim']} | {r['verilog_seconds']} | {r['mvm_per_second']} | "
              f"{r['cycles_per_second']} | {r['period_cycles']} | {r['analogue_min_cycles']} | "
              f"{r['matched']} |")
    print(f"\nwrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
