"""The ``aimc`` command: Verilog generation, cosimulation runs and the demo."""

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
)


def _add_tile_options(p: argparse.ArgumentParser, **defaults):
    d = TileConfig(**defaults)
    g = p.add_argument_group("tile configuration")
    for name, text in _TILE_OPTIONS:
        value = getattr(d, name)
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=type(value), default=value,
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


def _cosim(cfg, sim, vectors, seed, testcase, waves, stats_path, log_file=None):
    from .cosim import runner

    env = {"AIMC_VECTORS": vectors, "AIMC_SEED": seed, "AIMC_STATS": stats_path}
    return runner.run(cfg, sim, testcase, env=env, waves=waves, log_file=log_file)


def cmd_cosim(args) -> int:
    cfg = _tile(args)
    stats_path = Path(args.stats).resolve()
    stats_path.parent.mkdir(parents=True, exist_ok=True)
    stats_path.unlink(missing_ok=True)
    results = _cosim(cfg, args.sim, args.vectors, args.seed, args.test, args.waves, stats_path)
    print(f"cocotb results: {results}")
    if stats_path.exists():
        _print_stats(json.loads(stats_path.read_text()), args.sim)
    if args.waves:
        build_dir = results.parents[2]  # <build_dir>/run/<test>/results.xml
        dumps = sorted((p for ext in ("*.fst", "*.vcd") for p in build_dir.rglob(ext)),
                       key=lambda p: p.stat().st_mtime)
        where = dumps[-1] if dumps else build_dir
        print(f"waveforms: {where} (open with GTKWave or Surfer)")
    return 0


def _print_stats(s, sim):
    print(f"{s['matched']}/{s['vectors']} result vectors matched the golden model bit for bit")
    print(f"{sim}: {s['mvm_per_second']:.1f} MVM/s, {s['cycles_per_second']:.0f} cycles/s "
          f"({s['wall_seconds']:.2f} s for {s['vectors']} MVMs)")
    print(f"MVM latency {s['latency_cycles']} cycles, period {s['period_cycles']} cycles; "
          f"analogue minimum {s['analogue_min_cycles']} cycles")


def cmd_demo(args) -> int:
    from .cosim import runner
    from .rtl.verilog import generate

    cfg = _tile(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    info = generate(cfg, out)
    print(f"[1/3] generated {cfg.rows}x{cfg.cols} {cfg.input_mode} tile Verilog: "
          f"{out / (info['top'] + '.v')} ({info['generation_seconds']:.1f} s)")
    t1 = time.perf_counter()
    runner.build(cfg, args.sim)
    print(f"[2/3] built the {args.sim} model ({time.perf_counter() - t1:.1f} s; reused on "
          f"later runs)")
    stats_path = (out / "stats.json").resolve()
    stats_path.unlink(missing_ok=True)
    print(f"[3/3] streaming {args.vectors} random vectors through cosimulation with the "
          f"crossbar model in the loop ...")
    log = (out / "cosim.log").resolve()
    _cosim(cfg, args.sim, args.vectors, args.seed, "mvm_stream", False, stats_path, log)
    s = json.loads(stats_path.read_text())
    _print_stats(s, args.sim)
    print(f"total {time.perf_counter() - t0:.1f} s; Verilog, figures (stats.json) and the "
          f"cocotb log (cosim.log) in {out}")
    return 0 if s["matched"] == s["vectors"] else 1


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
                   help="cocotb test(s), comma separated (default: all of aimc.cosim.test_tile)")
    c.add_argument("--vectors", type=int, default=24, help="random vectors (default %(default)s)")
    c.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    c.add_argument("--waves", action="store_true", help="dump waveforms")
    c.add_argument("--stats", default="build/cosim/stats.json", help="speed figures (JSON)")
    c.set_defaults(func=cmd_cosim)

    d = sub.add_parser("demo", help="generate the full tile and stream vectors through it")
    _add_tile_options(d)
    d.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    d.add_argument("--vectors", type=int, default=32, help="random vectors (default %(default)s)")
    d.add_argument("--seed", type=int, default=1, help="chip seed (default %(default)s)")
    d.add_argument("--out", default="build/demo", help="output folder (default %(default)s)")
    d.set_defaults(func=cmd_demo)
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
