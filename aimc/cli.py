"""The ``aimc`` command: Verilog generation, cosimulation runs, the demo and the model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .config import INPUT_MODES, TileConfig

__all__ = ["main"]


#: TileConfig parameters exposed as options, with their help text.
_TILE_OPTIONS = (
    ("rows", "crossbar rows"),
    ("cols", "crossbar columns"),
    ("input_bits", "signed input width"),
    ("adc_bits", "ADC resolution"),
    ("cols_per_adc", "columns sharing one ADC"),
    ("input_mode", "row encoding: " + " or ".join(INPUT_MODES)),
    ("lanes", "vector elements per stream beat"),
    ("rows_per_adc", "rows sharing one row ADC (backward MVMs)"),
    ("training", "generate the training hardware (backward MVMs, pulsed updates)"),
)


def _add_tile_options(p: argparse.ArgumentParser, **defaults):
    d = TileConfig(**defaults)
    g = p.add_argument_group("tile configuration")
    for name, text in _TILE_OPTIONS:
        value = getattr(d, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                           default=value, help=f"{text} (default: %(default)s)")
        else:
            g.add_argument(flag, dest=name, type=type(value), default=value,
                           help=f"{text} (default %(default)s)")


def _tile(args) -> TileConfig:
    return TileConfig(**{name: getattr(args, name) for name, _ in _TILE_OPTIONS})


def cmd_verilog(args) -> int:
    from .rtl.verilog import generate

    cfg = _tile(args)
    info = generate(cfg, args.out, name=args.name)
    out = Path(args.out)
    print(f"wrote {out / (args.name + '.v')} and {out / (args.name + '.json')} "
          f"({cfg.rows}x{cfg.cols}, {cfg.input_mode}, {len(info['ports'])} ports) "
          f"in {info['generation_seconds']:.2f} s")
    return 0


def _model(spec: str):
    """A model configuration: a preset name or a .toml/.json file."""
    from .model import config as mc

    if Path(spec).suffix in (".toml", ".json"):
        if not Path(spec).exists():
            raise ValueError(f"model configuration file {spec!r} does not exist")
        return mc.load(spec)
    return mc.preset(spec)


def _settings(args, **fields):
    """The cosimulation settings of a command: its tile, ``--model`` and ``--seed``, and
    ``fields``; validated here, before any simulator starts."""
    from .cosim.settings import CosimSettings

    return CosimSettings(tile=_tile(args), model=_model(args.model), chip_seed=args.seed,
                         **fields)


def cmd_model_show(args) -> int:
    import dataclasses

    from .model import Chip
    from .model import config as mc
    from .model.energy import estimate

    cfg, model = _tile(args), _model(args.model)
    if args.save:
        print(f"wrote {mc.save(model, args.save)}")
    if args.json:
        print(json.dumps(model.to_dict(), indent=2))
        return 0
    chip = Chip(cfg, model)
    print(f"model {model.name!r} on a {cfg.rows}x{cfg.cols} {cfg.input_mode} tile "
          f"({cfg.adc_bits}-bit ADCs, {cfg.cols_per_adc} column(s) per ADC)")
    for key in mc.ModelConfig.sections():
        section = getattr(model, key)
        print(f"\n[{key}]")
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            print(f"  {f.name:22} = {value!s:12} # {f.metadata.get('doc', '')}")
    charge_fc = chip.g_lsb * model.array.v_read / model.energy.clock_ghz
    print("\nderived")
    print(f"  conductance LSB        = {chip.g_lsb:.4g} uS (weight 1 of {chip.w_max})")
    print(f"  charge unit            = {charge_fc:.4g} fC (one input LSB x conductance LSB "
          f"x cycle)")
    print(f"  ADC LSB                = {chip.lsb:g} charge units ({chip.lsb * charge_fc:.4g} fC)")
    print(f"  integrator limit       = {chip.limit:g} charge units")
    e = estimate(cfg, model)
    print("\nenergy and time per MVM (uniform random inputs and weights)")
    for name in ("array", "drivers", "integrators", "adc", "digital"):
        value = getattr(e, name + "_pj")
        print(f"  {name:22} = {value:10.1f} pJ ({100 * value / e.total_pj:4.1f} %)")
    print(f"  {'total':22} = {e.total_pj:10.1f} pJ")
    print(f"  period                 = {e.period_cycles} cycles = {e.period_ns:.1f} ns at "
          f"{model.energy.clock_ghz:g} GHz")
    print(f"  throughput             = {e.tops:.3f} TOPS, {e.tops_per_watt:.2f} TOPS/W "
          f"({e.ops} operations per MVM)")
    return 0


def cmd_cosim(args) -> int:
    from .cosim import runner
    from .cosim.settings import cocotb_tests

    settings = _settings(args, vectors=args.vectors, time=args.time, tests=args.test or (),
                         waves=args.waves, stats=args.stats)
    results = runner.run(settings, args.sim)
    tests = settings.tests or cocotb_tests(settings.test_modules)
    print(f"cocotb results: {results}")
    print(f"{len(tests)} of {len(tests)} cocotb test(s) of {settings.test_modules} passed on "
          f"{args.sim} ({settings.tile.key}): {', '.join(tests)}")
    stats = settings.read_stats()
    if "mvm_stream" in stats:
        _print_stats(stats["mvm_stream"], args.sim)
    if args.waves:
        build_dir = results.parents[2]  # <build_dir>/run/<test>/results.xml
        dumps = sorted((p for ext in ("*.fst", "*.vcd") for p in build_dir.rglob(ext)),
                       key=lambda p: p.stat().st_mtime)
        where = dumps[-1] if dumps else build_dir
        print(f"waveforms: {where} (open with GTKWave or Surfer)")
    return 0


def cmd_calibrate(args) -> int:
    import numpy as np

    from .cosim import runner
    from .fixedpoint import GAIN_FRAC, OFF_FRAC

    test = "drift_compensation" if args.drift else "calibration"
    settings = _settings(args, vectors=args.vectors, cal_k=args.avg_log2, tests=test,
                         stats=args.stats)
    cfg = settings.tile
    log = settings.stats.with_suffix(".log")
    runner.run(settings, args.sim, log_file=log)
    s = settings.read_stats(test)
    print(f"calibrated a {cfg.rows}x{cfg.cols} {args.model} chip (seed {args.seed}) in "
          f"cosimulation on {args.sim}, 2**{args.avg_log2} MVMs per measurement")

    def pct(e):
        return f"{e['rms_percent']:.2f} RMS, {e['worst_percent']:.2f} worst"

    if args.drift:
        print(f"after programming: {pct(s['at_programming'])} (% of full scale); "
              f"DRIFT_REF {s['drift_ref']}")
        for label in ("one_day", "one_month"):
            d = s[label]
            print(f"{label.replace('_', ' ')} later: without drift compensation "
                  f"{pct(d['without'])}; with it {pct(d['with'])} (DRIFT_SCALE "
                  f"{d['drift_scale']:.4f})")
        print(f"cocotb log: {log}")
        return 0
    offset = np.array(s["offset"]) / 2**OFF_FRAC
    gain = np.array(s["gain"]) / 2**GAIN_FRAC
    good = np.ones(len(offset), bool)
    good[s["bad_columns"]] = False
    print(f"offsets (LSB): mean {offset[good].mean():+.2f}, spread {offset[good].std():.2f} "
          f"RMS, range {offset[good].min():+.2f} .. {offset[good].max():+.2f}")
    print(f"gains: mean {gain[good].mean():.4f}, spread {100 * gain[good].std():.2f} % RMS, "
          f"range {gain[good].min():.4f} .. {gain[good].max():.4f}")
    print(f"bad columns: {s['bad_columns'] or 'none'}; {s['calibration_mvms']} calibration MVMs "
          f"in {s['calibration_cycles']} cycles (to the 100-cycle polling step)")
    print("coefficients equal the golden algorithm's bit for bit")
    b, a = s["before"], s["after"]
    print(f"MVM error against ideal arithmetic, % of full scale, {a['samples']} results: "
          f"before {pct(b)}; after {pct(a)}; rounding alone {a['rounding_rms_percent']:.2f} RMS")
    print(f"cocotb log: {log}")
    return 0


def _print_stats(s, sim):
    print(f"{s['matched']}/{s['vectors']} result vectors matched the golden model bit for bit")
    print(f"{sim}: {s['mvm_per_second']:.1f} MVM/s, {s['cycles_per_second']:.0f} cycles/s "
          f"({s['wall_seconds']:.2f} s for {s['vectors']} MVMs)")
    print(f"MVM latency {s['latency_cycles']} cycles, period {s['period_cycles']} cycles; "
          f"analogue minimum {s['analogue_min_cycles']} cycles")


def cmd_stream(args) -> int:
    from .cosim import runner
    from .rtl.verilog import generate

    out = Path(args.out)
    settings = _settings(args, vectors=args.vectors, time=args.time, tests="mvm_stream",
                         stats=out / "stats.json")
    cfg = settings.tile
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    info = generate(cfg, out)
    print(f"[1/3] generated {cfg.rows}x{cfg.cols} {cfg.input_mode} tile Verilog: "
          f"{out / (info['top'] + '.v')} ({info['generation_seconds']:.1f} s)")
    t1 = time.perf_counter()
    runner.build(cfg, args.sim)
    print(f"[2/3] built the {args.sim} model ({time.perf_counter() - t1:.1f} s; reused on "
          f"later runs)")
    print(f"[3/3] streaming {args.vectors} random vectors through cosimulation with the "
          f"crossbar model in the loop ...")
    runner.run(settings, args.sim, log_file=(out / "cosim.log").resolve())
    s = settings.read_stats("mvm_stream")
    _print_stats(s, args.sim)
    print(f"total {time.perf_counter() - t0:.1f} s; Verilog, figures (stats.json) and the "
          f"cocotb log (cosim.log) in {out}")
    return 0 if s["matched"] == s["vectors"] else 1


def cmd_program(args) -> int:
    import numpy as np

    from .cosim import runner
    from .model import Chip
    from .model.program import ProgramParams, targets_from_weights

    path = Path(args.weights)
    if path.suffix != ".npy" or not path.exists():
        raise ValueError(f"weights must be an existing .npy file, not {args.weights!r}")
    w = np.load(path, allow_pickle=False)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, not an array of shape {w.shape}")
    for name, n in (("rows", w.shape[0]), ("cols", w.shape[1])):
        if getattr(args, name) is None:
            setattr(args, name, n)
    cfg = _tile(args)
    if w.shape != (cfg.rows, cfg.cols):
        raise ValueError(f"weights of shape {w.shape} do not fit a {cfg.rows}x{cfg.cols} tile")
    model = _model(args.model)
    targets, scale = targets_from_weights(w, Chip(cfg, model))
    params = ProgramParams(tol=args.tol, max_iter=args.iterations, width=args.width,
                           parallel=not args.serial, correct=not args.raw)
    out = Path(args.out).resolve()
    settings = _settings(args, cal_k=4, targets=out / "targets.npy", vectors=2, program=params,
                         tests="program_verify", stats=out / "program.json")
    out.mkdir(parents=True, exist_ok=True)
    np.save(settings.targets, targets)
    log = out / "program.log"
    t0 = time.perf_counter()
    runner.run(settings, args.sim, log_file=log)
    s = settings.read_stats("program_verify")
    devices = s["devices"]
    reads = ("calibrated first (2**4 MVMs per phase), reads corrected" if params.correct
             else "raw reads")
    print(f"programmed {path} ({cfg.rows}x{cfg.cols}, {scale:g} counts per unit of weight) "
          f"into a {args.model} chip (seed {args.seed}) in cosimulation on {args.sim}, "
          f"{'row-parallel' if params.parallel else 'one device at a time'}; {reads}")
    print(f"yield: {s['passed']}/{devices} devices within {params.tol} counts "
          f"({100 * s['yield']:.2f} %); failed {s['failed']}, of which stuck {s['stuck']}")
    print(f"weight error: {s['weight_error_sigma']:.2f} % of w_max RMS, mean "
          f"{s['weight_error_mean']:+.2f} %, worst {s['weight_error_worst']:.2f} %")
    print(f"pulses: {s['pulses']} ({s['pulses_per_device']:.2f} per device) in {s['steps']} "
          f"pulse steps; {s['reads']} row reads; at most {s['iterations_max']} steps for a "
          f"device")
    print(f"time: {s['cycles']} cycles ({s['cycles'] / 1e3:.1f} us at 1 GHz); counters, "
          f"status and conductances equal the golden algorithm's bit for bit")
    print(f"cosimulation {time.perf_counter() - t0:.1f} s; figures in {settings.stats}, cocotb "
          f"log {log}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    r = run_demo(args.out, full=args.full, sim=args.sim, seed=args.seed,
                 model_name=_model(args.model), tile=_tile(args), images=args.images,
                 hwa=args.hwa)
    nets = r["networks"]
    from .demo import conditions

    rows = [("float", "floating point"), ("digital8", "8-bit digital")] + [
        (c.name, c.label) for c in conditions(args.full)]
    print(f"\naccuracy on {r['images']} test images ({r['model']} chips, "
          f"{r['tile']['rows']}x{r['tile']['cols']} tiles):")
    print(f"  {'condition':40}" + "".join(f"{n:>10}" for n in nets))
    for key, label in rows:
        print(f"  {label:40}" + "".join(f"{100 * nets[n][key]:9.1f}%" for n in nets))
    print(f"{r['mvms']} MVMs in cosimulation, each checked bit for bit against the model; "
          f"{r['period_cycles']} cycles per MVM ({r['time_per_mvm_ns']:.0f} ns at "
          f"{r['clock_ghz']:g} GHz), {r['energy_pj_per_mvm']:.0f} pJ per MVM (estimate)")
    print(f"cosimulation {r['cosim_wall_seconds']:.0f} s, total {r['wall_seconds']:.0f} s; "
          f"report: {Path(args.out) / 'summary.md'}")
    return 0


_MODEL_HELP = ("analogue model: a preset (ideal, pcm, rram, adc-only; for training "
               "gokmen-vlasov, reram-sb, ecram) or a .toml/.json configuration file "
               "(default %(default)s)")


_TIME_HELP = "seconds after the reference read, for drift (default %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aimc", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verilog", help="generate the Verilog top and its JSON description")
    _add_tile_options(v)
    v.add_argument("--out", default="build/verilog", help="output folder (default %(default)s)")
    v.add_argument("--name", default="aimc_tile", help="top module name (default %(default)s)")
    v.set_defaults(func=cmd_verilog)

    c = sub.add_parser("cosim", help="run the cocotb tests of a tile with the model in the loop")
    _add_tile_options(c, rows=16, cols=16)
    c.add_argument("--sim", choices=("icarus", "verilator"), default="icarus")
    c.add_argument("--test", default=None,
                   help="cocotb test(s), comma separated (default: all of aimc.cosim.test_tile, "
                   "and of aimc.cosim.test_training on a --training tile)")
    c.add_argument("--vectors", type=int, default=24, help="random vectors (default %(default)s)")
    c.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    c.add_argument("--model", default="ideal", help=_MODEL_HELP)
    c.add_argument("--time", type=float, default=0.0, help=_TIME_HELP)
    c.add_argument("--waves", action="store_true", help="dump waveforms")
    c.add_argument("--stats", default="build/cosim/stats.json", help="speed figures (JSON)")
    c.set_defaults(func=cmd_cosim)

    d = sub.add_parser("demo", help="a digits MLP on the cosimulated tile: program, calibrate, "
                       "run under every condition, write an accuracy report with plots")
    _add_tile_options(d, rows=64, cols=64)
    size = d.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="180 test images, drift at a day "
                      "and a month (the default)")
    size.add_argument("--full", action="store_true", help="all 540 test images, drift at an "
                      "hour, a day, a week, a month and a year")
    d.add_argument("--images", type=int, default=None, help="number of test images "
                   "(overrides --quick/--full)")
    d.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    d.add_argument("--seed", type=int, default=1, help="chip and training seed (default "
                   "%(default)s)")
    d.add_argument("--model", default="pcm", help=_MODEL_HELP)
    d.add_argument("--no-hwa", dest="hwa", action="store_false",
                   help="skip the hardware-aware network")
    d.add_argument("--out", default="build/report", help="report folder (default %(default)s)")
    d.set_defaults(func=cmd_demo)

    st = sub.add_parser("stream", help="generate a tile and stream random vectors through it "
                        "in cosimulation (speed and bit-exactness)")
    _add_tile_options(st)
    st.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    st.add_argument("--vectors", type=int, default=32, help="random vectors (default "
                    "%(default)s)")
    st.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    st.add_argument("--model", default="ideal", help=_MODEL_HELP)
    st.add_argument("--time", type=float, default=0.0, help=_TIME_HELP)
    st.add_argument("--out", default="build/stream", help="output folder (default "
                    "%(default)s)")
    st.set_defaults(func=cmd_stream)

    k = sub.add_parser("calibrate", help="run the on-chip calibration in cosimulation and "
                                         "report coefficients and MVM error before and after")
    _add_tile_options(k, rows=16, cols=16)
    k.add_argument("--model", default="adc-only", help=_MODEL_HELP)
    k.add_argument("--sim", choices=("icarus", "verilator"), default="icarus")
    k.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    k.add_argument("--vectors", type=int, default=24,
                   help="random vectors for the error before and after (default %(default)s)")
    k.add_argument("--avg-log2", type=int, default=6,
                   help="each measurement averages 2**N MVMs (default %(default)s)")
    k.add_argument("--drift", action="store_true",
                   help="also capture the drift reference and compensate one day and one "
                        "month later (use with a drifting model such as pcm)")
    k.add_argument("--stats", default="build/cosim/calibration.json", help="figures (JSON)")
    k.set_defaults(func=cmd_calibrate)

    g = sub.add_parser("program", help="write a weight matrix (.npy) into a chip with the "
                       "program-and-verify engine, in cosimulation")
    g.add_argument("weights", help="weight matrix, .npy: integers are read counts, floating "
                   "point is scaled to the full count range")
    _add_tile_options(g)
    g.set_defaults(rows=None, cols=None)
    g.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    g.add_argument("--model", default="pcm", help=_MODEL_HELP)
    g.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    g.add_argument("--tol", type=int, default=5, help="tolerance, counts (default %(default)s)")
    g.add_argument("--iterations", type=int, default=30,
                   help="pulse steps per device before it fails (default %(default)s)")
    g.add_argument("--width", type=int, default=8, help="pulse width, cycles (default "
                   "%(default)s)")
    g.add_argument("--serial", action="store_true", help="one device per pulse step instead "
                   "of a whole row")
    g.add_argument("--raw", action="store_true", help="program with raw device reads; by "
                   "default the calibration engine runs first and the reads are corrected "
                   "for column offset and gain")
    g.add_argument("--out", default="build/program", help="output folder (default %(default)s)")
    g.set_defaults(func=cmd_program)

    from .train_report import add_parser as add_train_parser

    add_train_parser(sub, _add_tile_options)

    m = sub.add_parser("model", help="the analogue model: show its configuration")
    msub = m.add_subparsers(dest="model_command", required=True)
    ms = msub.add_parser("show", help="print the effective configuration and the energy "
                                      "and latency estimate")
    ms.add_argument("model", nargs="?", default="ideal", help=_MODEL_HELP)
    _add_tile_options(ms)
    ms.add_argument("--save", metavar="FILE", help="also write the configuration (.toml/.json)")
    ms.add_argument("--json", action="store_true", help="print the configuration as JSON")
    ms.set_defaults(func=cmd_model_show)
    # The research commands live beside their Python functions (aimc/evaluate.py, sweep.py).
    from . import evaluate, sweep

    evaluate.add_parser(sub, _add_tile_options, _model)
    sweep.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"aimc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except AssertionError as exc:
        print(f"aimc {args.command}: FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
