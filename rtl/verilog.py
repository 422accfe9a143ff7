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
    text = verilog.convert(tile, name=name, emit_src=False)
    seconds = time.perf_counter() - t0
    (out / f"{name}.v").write_text(text)
    info = {"top": name, "config": cfg.to_dict(), "ports": port_list(tile),
            "generation_seconds": round(seconds, 3)}
    (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
