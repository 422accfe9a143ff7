"""Verilog generation for a tile configuration."""

from __future__ import annotations

import json
import time
from pathlib import Path

from amaranth.back import verilog

from ..config import TileConfig
from .tile import Tile

__all__ = ["TOP_NAME", "generate", "port_list"]

#: Module name of the generated top level.
TOP_NAME = "aimc_tile"


#: Lines of the generated Verilog longer than this are broken after commas.
_MAX_LINE = 1000


def _wrap_long_lines(text: str, width: int = _MAX_LINE) -> str:
    """Break lines longer than ``width`` characters after a comma.

    Yosys writes each concatenation on one line; for a wide tile (e.g. 256 results
    sign-extended to 32 bits, or 1024 columns) that is more than the 40000 tokens Verilator
    accepts on a line ("Too many preprocessor tokens on a line"). Verilog is free-form, so a
    newline in place of the space after a comma means the same; lines with a string or a
    comment are left as they are.
    """
    out = []
    for line in text.split("\n"):
        if len(line) <= width or '"' in line or "//" in line or "/*" in line:
            out.append(line)
            continue
        piece, *rest = line.split(", ")
        for item in rest:
            if len(piece) >= width:
                out.append(piece + ",")
                piece = "    " + item
            else:
                piece += ", " + item
        out.append(piece)
    return "\n".join(out)


def port_list(tile: Tile) -> list[dict]:
    """Ports of the Verilog top: name, direction and width, clock and reset first."""
    ports = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for path, member, _ in tile.signature.flatten(tile):
        ports.append({"name": "__".join(str(p) for p in path),
                      "dir": "in" if member.flow.name == "In" else "out",
                      "width": member.shape.width if hasattr(member.shape, "width")
                      else len(_)})
    return ports


def generate(cfg: TileConfig, out_dir, name: str = TOP_NAME) -> dict:
    """Write ``<name>.v`` and ``<name>.json`` (configuration and port list) to ``out_dir``.

    Returns the JSON description, with the generation time in seconds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tile = Tile(cfg)
    text = _wrap_long_lines(verilog.convert(tile, name=name, emit_src=False))
    seconds = time.perf_counter() - t0
    (out / f"{name}.v").write_text(text)
    info = {"top": name, "config": cfg.to_dict(), "ports": port_list(tile),
            "generation_seconds": round(seconds, 3)}
    (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
