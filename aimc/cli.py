"""The ``aimc`` command: Verilog generation, cosimulation runs, the demo and the model.

Exit status: 0 on success, 1 when a run fails or a file cannot be written, 2 for a bad
option (the message names it, its value and what is allowed), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
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

#: Why each command's tile has the size it has by default (shown in --help).
_SIZE_NOTE = {
    "verilog": "The defaults are the product's tile (256x256, 8-bit inputs and ADCs, one ADC "
               "per column).",
    "model": "The defaults are the product's tile (256x256).",
    "cosim": "The default tile is 16x16, the size of the regression's tests: every test "
             "runs in seconds on Icarus.",
    "calibrate": "The default tile is 16x16: a calibration in seconds on Icarus; the "
                 "README's full-size run is --rows 256 --cols 256 --sim verilator.",
    "stream": "The default tile is the product's 256x256: this command measures "
              "cosimulation speed at full size.",
    "demo": "The default tile is 64x64: the network's 64 inputs and 32 hidden units fit one "
            "tile per layer; smaller tiles split the layers into blocks.",
    "program": "rows and cols default to the matrix's shape; the other parameters to the "
               "product's tile.",
    "evaluate": "The default tile is 64x64, the demo's: the network's 64 inputs and 32 "
                "hidden units fit one tile per layer; smaller tiles split the layers into "
                "blocks.",
    "train": "The default tile is 64x64 with the training hardware (--training, which "
             "training needs): layers are split into blocks of the tile's size.",
}

#: Why each command uses the simulator it uses by default (shown in --help).
_SIM_HELP = {
    "icarus": "simulator: icarus or verilator (default %(default)s: Icarus starts at once "
              "and is quickest for small tiles and short runs; Verilator first compiles a "
              "C++ model, 1-4 min once per configuration, then runs large tiles many times "
              "faster)",
    "verilator": "simulator: icarus or verilator (default %(default)s: this command runs "
                 "long, and Verilator's compiled model is many times faster than Icarus; "
                 "its first build takes 1-4 min per configuration and is reused)",
}


def _add_tile_options(p: argparse.ArgumentParser, command: str | None = None, **defaults):
    d = TileConfig(**defaults)
    g = p.add_argument_group("tile configuration", _SIZE_NOTE.get(command))
    for name, text in _TILE_OPTIONS:
        value = getattr(d, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                           default=value, help=f"{text} (default: %(default)s)")
        else:
            g.add_argument(flag, dest=name, type=type(value), default=value,
                           help=f"{text} (default %(default)s)")


def _add_sim(p: argparse.ArgumentParser, default: str):
    p.add_argument("--sim", choices=("icarus", "verilator"), default=default,
                   help=_SIM_HELP[default])


def _tile(args) -> TileConfig:
    return TileConfig(**{name: getattr(args, name) for name, _ in _TILE_OPTIONS})


def _announce(text: str) -> None:
    """Tell the user about a step that takes a while (Verilog generation, a simulator
    build) as it starts and when it ends."""
    print(text, flush=True)


#: What each file aimc verilog writes is, for its report.
_FILE_ROLES = {
    "verilog": "Verilog top and submodules",
    "description": "configuration and port list (JSON)",
    "file_list": "file list (verilator -F, iverilog -c)",
    "fusesoc_core": "FuseSoC CAPI2 core (targets default, lint)",
    "verilator_waivers": "Verilator lint waivers",
    "systemrdl": "register map, SystemRDL 2.0",
    "cheader": "register map, C header (PeakRDL)",
    "html": "register map, HTML reference (PeakRDL; open index.html)",
    "ipxact": "register map, IP-XACT 1685-2014 (PeakRDL)",
}


def cmd_verilog(args) -> int:
    import re

    from .rtl import rdl
    from .rtl.verilog import file_stem, generate

    cfg = _tile(args)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.name):
        raise ValueError(f"--name must be a Verilog identifier (letters, digits and _, not "
                         f"starting with a digit), not {args.name!r}")
    out = Path(args.out)
    stem = file_stem(cfg, args.name)
    info = generate(cfg, out, name=args.name, stem=stem, command=args.command_line)
    files = {k: out / v for k, v in info["files"].items()}
    missing = rdl.missing_tools() if args.regs else []
    if args.regs and not missing:
        files.update(rdl.export(files["systemrdl"], out, stem))
    kind = " training" if cfg.training else ""
    print(f"generated the {cfg.rows}x{cfg.cols} {cfg.input_mode}{kind} tile ({cfg.key}, "
          f"{len(info['ports'])} ports, top module {args.name}) in "
          f"{info['generation_seconds']:.2f} s:")
    for kind, path in files.items():
        print(f"  {str(path) + ('/' if path.is_dir() else ''):60} {_FILE_ROLES[kind]}")
    if missing:
        print(f"not written: the C header, HTML and IP-XACT of the register map need "
              f"{', '.join(missing)} (the regs extra): pip install 'aimc[regs]', or "
              f"make verilog, which installs them")
    if info["replaced"]:
        print(f"replaced the files of an earlier generation of this configuration "
              f"({len(info['replaced'])} files); other configurations' files keep their names")
    return 0


def _model(spec: str, option: str = "--model"):
    """A model configuration (``option``): a preset name or a .toml/.json file."""
    from .model import config as mc

    if Path(spec).suffix in (".toml", ".json"):
        if not Path(spec).is_file():
            raise ValueError(f"{option}: the configuration file {spec!r} does not exist")
        return mc.load(spec)
    if spec not in mc.PRESETS:
        raise ValueError(f"{option} must be a preset ({', '.join(mc.PRESETS)}) or a "
                         f"configuration file ending in .toml or .json, not {spec!r}")
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

    cfg, model = _tile(args), _model(args.model, "MODEL")
    if args.save:
        path = mc.save(model, args.save)
        note = ("every field with its meaning as a comment" if path.suffix == ".toml" else
                "JSON has no comments: save as .toml to keep each field's meaning")
        print(f"wrote {path} ({note})")
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

    settings = _settings(args, vectors=args.vectors, time=args.time, tests=args.test or (),
                         waves=args.waves, stats=args.stats)
    skipped = settings.skipped()
    results = runner.run(settings, args.sim, announce=_announce)
    outcome = runner.outcomes(results)
    passed = [t for t, o in outcome.items() if o == "passed"]
    print(f"cocotb results: {results}")
    print(f"{len(passed)} of {len(outcome)} cocotb test(s) of {settings.test_modules} passed on "
          f"{args.sim} ({settings.tile.key}): {', '.join(passed)}")
    if skipped:
        print(f"{len(skipped)} skipped, not applicable to this tile:")
        for test, reason in skipped.items():
            print(f"  {test}: {reason}")
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
    runner.run(settings, args.sim, log_file=log, announce=_announce)
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
    print(f"[1/3] generating the {cfg.rows}x{cfg.cols} {cfg.input_mode} tile's Verilog ...",
          flush=True)
    info = generate(cfg, out, command=args.command_line)
    print(f"[1/3] generated {out / info['files']['verilog']} "
          f"({info['generation_seconds']:.1f} s)")
    t1 = time.perf_counter()
    print(f"[2/3] building the {args.sim} model (or reusing it) ...", flush=True)
    runner.build(cfg, args.sim, announce=_announce)
    print(f"[2/3] the {args.sim} model is ready ({time.perf_counter() - t1:.1f} s; reused on "
          f"later runs)")
    print(f"[3/3] streaming {args.vectors} random vectors through cosimulation with the "
          f"crossbar model in the loop ...")
    runner.run(settings, args.sim, log_file=(out / "cosim.log").resolve(), announce=_announce)
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
    from .progress import Bar, run_with_progress

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
                         tests="program_verify", stats=out / "program.json",
                         progress=out / "progress.json")
    out.mkdir(parents=True, exist_ok=True)
    np.save(settings.targets, targets)
    log = out / "program.log"
    t0 = time.perf_counter()
    runner.build(cfg, args.sim, announce=_announce)
    bar = Bar(f"{cfg.rows}x{cfg.cols} {args.model} chip")
    run_with_progress(lambda: runner.run(settings, args.sim, log_file=log), settings.progress,
                      bar)
    s = settings.read_stats("program_verify")
    bar.close(f"{s['cycles']} cycles simulated")
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
    from .demo import check_options, run_demo

    check_options(args.seed, args.images, names=("--seed", "--images"))
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    parts = []
    for pkg in ("amaranth", "cocotb", "verilator"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} not installed")
    return f"aimc {__version__} ({', '.join(parts)})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aimc", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verilog", help="generate the Verilog top with its port list, file "
                       "list, FuseSoC core and register map (SystemRDL; C header, HTML and "
                       "IP-XACT with the regs extra)")
    _add_tile_options(v, "verilog")
    v.add_argument("--out", default="build/verilog", help="output folder (default "
                   "%(default)s); the files are named after the top and the configuration, "
                   "aimc_tile_<key>.*, so configurations do not overwrite each other")
    v.add_argument("--name", default="aimc_tile", help="top module name (default %(default)s)")
    v.add_argument("--no-regs", dest="regs", action="store_false",
                   help="skip the C header, HTML and IP-XACT (PeakRDL)")
    v.set_defaults(func=cmd_verilog)

    c = sub.add_parser("cosim", help="run the cocotb tests of a tile with the model in the loop")
    _add_tile_options(c, "cosim", rows=16, cols=16)
    _add_sim(c, "icarus")
    c.add_argument("--test", default=None,
                   help="cocotb test(s), comma separated (default: all of aimc.cosim.test_tile,"
                        " and of aimc.cosim.test_training on a --training tile; a test that "
                        "does not apply to the tile is skipped with its reason)")
    c.add_argument("--vectors", type=int, default=24, help="random vectors (default %(default)s)")
    c.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    c.add_argument("--model", default="ideal", help=_MODEL_HELP)
    c.add_argument("--time", type=float, default=0.0, help=_TIME_HELP)
    c.add_argument("--waves", action="store_true", help="dump waveforms")
    c.add_argument("--stats", default="build/cosim/stats.json",
                   help="figures of every test (JSON; default %(default)s)")
    c.set_defaults(func=cmd_cosim)

    d = sub.add_parser("demo", help="a digits MLP on the cosimulated tile: program, calibrate, "
                       "run under every condition, write an accuracy report with plots")
    _add_tile_options(d, "demo", rows=64, cols=64)
    size = d.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="180 test images, drift at a day "
                      "and a month (the default)")
    size.add_argument("--full", action="store_true", help="all 540 test images, drift at an "
                      "hour, a day, a week, a month and a year")
    d.add_argument("--images", type=int, default=None, help="number of test images, 1..540 "
                   "(overrides --quick/--full)")
    _add_sim(d, "verilator")
    d.add_argument("--seed", type=int, default=1, help="chip and training seed, 0..2**32-1 "
                   "(default %(default)s)")
    d.add_argument("--model", default="pcm", help=_MODEL_HELP)
    d.add_argument("--no-hwa", dest="hwa", action="store_false",
                   help="skip the hardware-aware network")
    d.add_argument("--out", default="build/report", help="report folder (default %(default)s)")
    d.set_defaults(func=cmd_demo)

    st = sub.add_parser("stream", help="generate a tile and stream random vectors through it "
                        "in cosimulation (speed and bit-exactness)")
    _add_tile_options(st, "stream")
    _add_sim(st, "verilator")
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
    _add_tile_options(k, "calibrate", rows=16, cols=16)
    k.add_argument("--model", default="adc-only", help=_MODEL_HELP)
    _add_sim(k, "icarus")
    k.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    k.add_argument("--vectors", type=int, default=24,
                   help="random vectors for the error before and after (default %(default)s)")
    k.add_argument("--avg-log2", type=int, default=6,
                   help="each measurement averages 2**N MVMs, 0..8 (default %(default)s)")
    k.add_argument("--drift", action="store_true",
                   help="also capture the drift reference and compensate one day and one "
                        "month later (use with a drifting model such as pcm)")
    k.add_argument("--stats", default="build/cosim/calibration.json",
                   help="figures (JSON; default %(default)s)")
    k.set_defaults(func=cmd_calibrate)

    g = sub.add_parser("program", help="write a weight matrix (.npy) into a chip with the "
                       "program-and-verify engine, in cosimulation")
    g.add_argument("weights", help="weight matrix, .npy: integers are read counts, floating "
                   "point is scaled to the full count range")
    _add_tile_options(g, "program")
    g.set_defaults(rows=None, cols=None)
    _add_sim(g, "verilator")
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
    _add_tile_options(ms, "model")
    ms.add_argument("--save", metavar="FILE", help="also write the configuration (.toml: "
                    "with each field's meaning as a comment, or .json)")
    ms.add_argument("--json", action="store_true", help="print the configuration as JSON")
    ms.set_defaults(func=cmd_model_show)
    # The research commands live beside their Python functions (aimc/evaluate.py, sweep.py).
    from . import evaluate, sweep

    evaluate.add_parser(sub, _add_tile_options, _model)
    sweep.add_parser(sub)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = "aimc " + shlex.join(argv)
    try:
        try:
            return args.func(args)
        except BaseException:
            # An elaboration cut short leaves components that were never used; Amaranth
            # would report each when they are collected at exit, after the one line that
            # said what happened.
            warnings.filterwarnings("ignore", message=r".* created but never used")
            raise
    except KeyboardInterrupt:
        print(f"\naimc {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"aimc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except AssertionError as exc:
        print(f"aimc {args.command}: FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        out = getattr(args, "out", None)
        name = str(exc.filename) if exc.filename else None
        if name and out and name.startswith(str(out).rstrip("/")):
            text = f"cannot write {name!r} (--out {out}): {exc.strerror}"
        elif name:
            text = f"{exc.strerror}: {name!r}"
        else:
            text = str(exc)
        print(f"aimc {args.command}: error: {text}", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
