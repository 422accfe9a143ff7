"""MVM latency and sustained period of the tile, measured in cosimulation (a benchmark, not a test).

    .venv/bin/python bench/timing.py [--size 16] [--sim icarus] [--cols-per-adc 1 2 4 8]

For each input mode (PWM, bit-serial) and ADC sharing factor, the generated Verilog of a
small tile runs the ``timing_probe`` cocotb test (bench/cosim_probe.py): random vectors back
to back, no stalls, result correction on, checked bit for bit against the model; then the
RTL's own LATENCY and PERIOD registers are read over AXI4-Lite. Each is set against the
analogue minimum (``TileConfig.analogue_min_cycles``: the drive window plus the conversions of
every bit plane) and the sequencer's schedule (``TileConfig.mvm_period_cycles``); the digital
share is (period - analogue minimum) / period.

The period does not depend on the numbers of rows and columns (only on the input mode, the
input and ADC widths and the sharing factor), so the 256x256 figures are the schedule
formula's, which the small tiles verify; ``--check-size`` also measures chosen configurations
at full size. Prints a table and writes build/bench/timing.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cosim_probe import probe

from aimc import TileConfig
from aimc.cosim import runner

OUT = runner.BUILD / "bench" / "timing.json"
MODES = ("pwm", "bitserial")
SHARING = (1, 2, 4, 8)
#: Digital share of the period the project aims to stay under.
TARGET_SHARE = 0.05


def figures(cfg: TileConfig) -> dict:
    """What the configuration promises: analogue minimum and schedule period."""
    a, s = cfg.analogue_min_cycles, cfg.mvm_period_cycles
    return {"size": f"{cfg.rows}x{cfg.cols}", "mode": cfg.input_mode,
            "cols_per_adc": cfg.cols_per_adc, "analogue_min_cycles": a,
            "schedule_period_cycles": s, "schedule_digital_share": round((s - a) / s, 4)}


def measure(cfg: TileConfig, sim: str = "icarus", vectors: int = 6,
            log_dir: Path | None = None) -> dict:
    """Measured latency and period of ``cfg`` in cosimulation, with its reference figures."""
    s = probe(cfg, sim, "timing_probe", log_dir, vectors=vectors)
    row = figures(cfg)
    period = s["period_cycles"]
    spacing = s["result_spacing_cycles"]
    row.update({
        "sim": sim, "vectors": s["vectors"], "matched": s["matched"],
        "latency_cycles": s["latency_cycles"], "period_cycles": period,
        "isolated_latency_cycles": s["isolated_latency_cycles"],
        "stream_latency_cycles": s["stream_latency_cycles"],
        "result_spacing_cycles": sorted(set(spacing)),
        "digital_cycles": period - cfg.analogue_min_cycles,
        "digital_share": round((period - cfg.analogue_min_cycles) / period, 4),
        "period_matches_schedule": period == cfg.mvm_period_cycles,
        "spacing_matches_period": bool(spacing) and all(d == period for d in spacing),
    })
    return row


def run(size: int = 16, sim: str = "icarus", modes=MODES, sharing=SHARING, vectors: int = 6,
        full_size: int = 256, check_full: tuple = (), log_dir: Path | None = None,
        progress=print) -> dict:
    """The timing section: measured small tiles, the full-size schedule, disagreements."""
    measured, errors = [], []
    for mode in modes:
        for k in sharing:
            cfg = TileConfig(rows=size, cols=size, input_mode=mode, cols_per_adc=k)
            try:
                row = measure(cfg, sim, vectors, log_dir)
            except Exception as exc:  # reported, and the other configurations still run
                errors.append({"config": cfg.key, "error": f"{type(exc).__name__}: {exc}"})
                progress(f"  {cfg.key}: FAILED {exc}")
                continue
            measured.append(row)
            progress(f"  {row['size']} {mode:9s} {k} col/ADC: latency {row['latency_cycles']}, "
                     f"period {row['period_cycles']} (schedule {row['schedule_period_cycles']}, "
                     f"analogue minimum {row['analogue_min_cycles']}), digital share "
                     f"{100 * row['digital_share']:.1f} %")
    full = [figures(TileConfig(rows=full_size, cols=full_size, input_mode=m, cols_per_adc=k))
            for m in modes for k in sharing]
    for mode, k in check_full:
        cfg = TileConfig(rows=full_size, cols=full_size, input_mode=mode, cols_per_adc=k)
        try:
            row = measure(cfg, sim, 2, log_dir)
        except Exception as exc:
            errors.append({"config": cfg.key, "error": f"{type(exc).__name__}: {exc}"})
            progress(f"  {cfg.key}: FAILED {exc}")
            continue
        for f in full:
            if f["mode"] == mode and f["cols_per_adc"] == k:
                f.update({"measured_period_cycles": row["period_cycles"],
                          "measured_latency_cycles": row["latency_cycles"], "sim": sim})
        measured.append(row)
        progress(f"  {row['size']} {mode} {k} col/ADC: latency {row['latency_cycles']}, "
                 f"period {row['period_cycles']} (schedule {row['schedule_period_cycles']})")
    disagreements = [
        f"{r['size']} {r['mode']} {r['cols_per_adc']} col/ADC: measured period "
        f"{r['period_cycles']}, schedule {r['schedule_period_cycles']}"
        for r in measured if not r["period_matches_schedule"]]
    disagreements += [
        f"{r['size']} {r['mode']} {r['cols_per_adc']} col/ADC: result frames "
        f"{r['result_spacing_cycles']} cycles apart, PERIOD register {r['period_cycles']}"
        for r in measured if not r["spacing_matches_period"]]
    over = [r for r in measured if r["digital_share"] >= TARGET_SHARE]
    return {"sim": sim, "size": f"{size}x{size}", "measured": measured, "full_size": full,
            "all_periods_match_schedule": not disagreements and not errors and bool(measured),
            "disagreements": disagreements, "errors": errors,
            "target_digital_share": TARGET_SHARE,
            "over_target": [f"{r['size']} {r['mode']} {r['cols_per_adc']} col/ADC "
                            f"({100 * r['digital_share']:.1f} %)" for r in over]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--sim", default="icarus", choices=runner.SIMULATORS)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--cols-per-adc", type=int, nargs="+", default=list(SHARING))
    p.add_argument("--vectors", type=int, default=6)
    args = p.parse_args(argv)
    result = run(args.size, args.sim, args.modes, args.cols_per_adc, args.vectors,
                 log_dir=runner.BUILD / "bench" / "logs")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for d in result["disagreements"] + [e["error"] for e in result["errors"]]:
        print("DISAGREEMENT:", d)
    print(f"wrote {OUT}")
    return 0 if result["all_periods_match_schedule"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
