"""``python -m aimc.rtl.docs [--write] [--doc PATH]``: keep the generated tables of
docs/architecture.md (register map, its configuration-dependent fields, the ports of the
top, the analogue boundary, the calibration formats) equal to their Python sources.

The tables that depend on the configuration say which one they show; the ones that compare
configurations show :data:`DOC_CONFIGS`. This is a tool of the source checkout: an installed
package has no docs/ folder (``--doc`` names the file then).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .. import fixedpoint
from ..config import TileConfig
from . import boundary, regmap

__all__ = ["DOC", "DOC_CONFIGS", "REGMAP_CONFIG", "TABLES", "port_table", "regmap_variants",
           "render", "update"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

#: The configurations the comparing tables show, by the name their column carries: the
#: product's tile and two that differ in every way the map and the ports can (one of them
#: with the training hardware, TileConfig.training).
DOC_CONFIGS = {
    "256x256 PWM (default)": TileConfig(),
    "16x16 bit-serial, 2 cols and 2 rows per ADC, training": TileConfig(
        rows=16, cols=16, input_mode="bitserial", cols_per_adc=2, rows_per_adc=2,
        training=True),
    "12x10 PWM, 6-bit, 2 cols / 4 rows per ADC, 4 lanes": TileConfig(
        rows=12, cols=10, input_bits=6, adc_bits=6, cols_per_adc=2, rows_per_adc=4, lanes=4),
}

#: The configuration the register table shows: the default tile with the training hardware
#: (an inference tile's map is the same without the rows marked "(training tiles)").
REGMAP_CONFIG = TileConfig(training=True)

#: Widths of the host ports, as TileConfig attributes (the boundary's come from its table).
_HOST_WIDTHS = {
    "clk": (), "rst": (),
    "s_axil__awaddr": (regmap.REG_ADDR_WIDTH,), "s_axil__araddr": (regmap.REG_ADDR_WIDTH,),
    "s_axil__wdata": (32,), "s_axil__rdata": (32,), "s_axil__wstrb": (4,),
    "s_axil__bresp": (2,), "s_axil__rresp": (2,),
    "s_axis__tdata": ("lanes", "in_lane_width"), "s_axis__tuser": (2,),
    "m_axis__tdata": ("lanes", "out_lane_width"), "m_axis__tuser": (2,),
    "t_axis__tdata": ("lanes", "tgt_lane_width"),
}

_PORT_ROLES = {
    "clk": "clock, rising edge (the only clock)",
    "rst": "synchronous reset, active high (see Reset and initialisation)",
    "s_axil": "AXI4-Lite subordinate: the registers and windows",
    "s_axis": "AXI4-Stream sink: input vectors, TUSER the kind (forward; backward and "
              "update on training tiles)",
    "m_axis": "AXI4-Stream source: result vectors and status packets, TUSER the kind",
    "t_axis": "AXI4-Stream sink: program-and-verify targets, one packet per row",
    "irq": "interrupt, active high, level: CTRL.irq_en & (STATUS.done | CAL_STATUS.done | "
           "PROG_STATUS.done)",
    "ana": "analogue boundary (next section)",
}


def _config_text(cfg: TileConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items())


def _width(cfg: TileConfig, factors: tuple) -> int:
    n = 1
    for f in factors:
        n *= getattr(cfg, f) if isinstance(f, str) else f
    return n


def port_table(configs: dict[str, TileConfig] | None = None) -> str:
    """Every port of the Verilog top with its direction, its width as an expression of the
    configuration and the width in each configuration of ``configs`` (default
    :data:`DOC_CONFIGS`), from the ports of the RTL itself.

    Raises
    ------
    ValueError
        A port whose width the expression does not give (the table would be wrong).
    """
    from .tile import Tile
    from .verilog import port_list

    configs = DOC_CONFIGS if configs is None else configs
    widths = {b.verilog_name: b.width for b in boundary.BOUNDARY} | _HOST_WIDTHS
    training = {b.verilog_name for b in boundary.BOUNDARY if b.training}
    ports = {label: {p["name"]: p for p in port_list(Tile(cfg))}
             for label, cfg in configs.items()}
    # Every port in the top's order: a training tile's ports are an inference tile's and
    # the training ones (rtl.boundary.ports), so the longest list holds them all in order.
    order = max((list(p) for p in ports.values()), key=len)
    for label, plist in ports.items():
        if not set(plist) <= set(order):
            raise ValueError(f"ports of {label} not among those of the largest top: "
                             f"{sorted(set(plist) - set(order))}")
    seen = set()
    lines = ["| port | dir | width | " + " | ".join(configs) + " | what |",
             "| --- | --- | --- | " + " | ".join("---" for _ in configs) + " | --- |"]
    for name in order:
        factors = widths.get(name, ())
        expression = " * ".join(map(str, factors)) or "1"
        cells, direction = [], None
        for (label, cfg), plist in zip(configs.items(), ports.values(), strict=True):
            got = plist.get(name)
            if got is None:
                if name not in training:
                    raise ValueError(f"{label} has no port {name}")
                cells.append("absent")
                continue
            if got["width"] != _width(cfg, factors):
                raise ValueError(f"port {name} of {label} is {got['width']} bits, "
                                 f"not {expression} = {_width(cfg, factors)}")
            cells.append(str(got["width"]))
            direction = got["dir"]
        group = name.split("__")[0]
        role = _PORT_ROLES.get(name, "")
        if not role and group not in seen:  # the first port of an interface says what it is
            role = _PORT_ROLES.get(group, "")
        seen.add(group)
        mark = " (training tiles)" if name in training else ""
        lines.append(f"| `{name}`{mark} | {direction} | {expression} | " + " | ".join(cells)
                     + f" | {role} |")
    return "\n".join(lines)


def _field_text(f: regmap.Field) -> str:
    bits = f"{f.lsb}" if f.width == 1 else f"{f.lsb + f.width - 1}:{f.lsb}"
    text = f"bits {bits}"
    if f.const is not None:
        text += f", value {f.const:#x}"
    elif f.reset:
        text += f", reset {f.reset:#x}"
    if f.legal:
        text += f", legal {f.legal[0]}..{f.legal[1]}"
    return text


def _window_text(w: regmap.Window) -> str:
    bits = f"31:0, signed {w.width} bits" if w.signed else f"{w.width - 1}:0"
    return f"{w.words} words, bits {bits}"


def _entries(cfg: TileConfig) -> dict[str, str]:
    entries = {}
    for r in regmap.register_map(cfg):
        for f in r.fields:
            entries[f"{r.name}.{f.name}"] = _field_text(f)
    for w in regmap.windows(cfg):
        entries[f"{w.name}[]"] = _window_text(w)
    return entries


def regmap_variants(configs: dict[str, TileConfig] | None = None,
                    shown: TileConfig = REGMAP_CONFIG) -> str:
    """The register fields and windows whose bits, reset value, constant or legal range in
    a configuration of ``configs`` (default :data:`DOC_CONFIGS`) differ from the map of
    ``shown`` (the configuration of the register table) or between them: the parts of the
    map that table does not show for every tile. Registers of the training hardware that
    an inference tile lacks (marked "(training tiles)" in that table) are listed only when
    they differ on a training tile too."""
    configs = DOC_CONFIGS if configs is None else configs
    base = _entries(shown)
    maps = {label: _entries(cfg) for label, cfg in configs.items()}
    names = list(base) + [n for m in maps.values() for n in m if n not in base]
    names = list(dict.fromkeys(names))
    lines = ["| field | " + " | ".join(configs) + " |",
             "| --- | " + " | ".join("---" for _ in configs) + " |"]
    for name in names:
        present = {m[name] for m in maps.values() if name in m}
        absent_only_untrained = all(name in m or not cfg.training
                                    for m, cfg in zip(maps.values(), configs.values(),
                                                      strict=True))
        if present <= {base.get(name)} and absent_only_untrained:
            continue
        cells = [m.get(name, "absent") for m in maps.values()]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _regmap() -> str:
    cfg = REGMAP_CONFIG
    regs, wins = regmap.register_map(cfg), regmap.windows(cfg)
    spans = ", ".join(f"{w.name} 0x{w.base:04X}..0x{w.address(w.words - 1):04X}" for w in wins)
    return (f"Shown for the default tile with the training hardware, "
            f"`TileConfig(training=True)` ({_config_text(cfg)}); an inference tile "
            f"(`TileConfig()`) has the same map without the rows marked (training tiles). "
            f"The next table lists what differs in other configurations. `aimc verilog` "
            f"writes the map of any configuration as SystemRDL, C header, HTML and IP-XACT. "
            f"Registers at 0x00..0x{max(r.offset for r in regs):02X}; windows: {spans}.\n\n"
            + regmap.markdown_table(regs, wins))


#: Marker name -> function producing the block.
TABLES = {
    "regmap": _regmap,
    "regmap_variants": regmap_variants,
    "ports": port_table,
    "boundary": boundary.markdown_table,
    "formats": lambda: fixedpoint.markdown_table(TileConfig()),
}


def render(text: str) -> str:
    """``text`` with every ``<!-- BEGIN name -->...<!-- END name -->`` block regenerated.

    Raises
    ------
    ValueError
        A block of :data:`TABLES` is missing.
    """
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/architecture.md has no '<!-- BEGIN {name} -->' block")
        text = pattern.sub(lambda m, t=table: m.group(1) + t() + "\n" + m.group(2), text)
    return text


def update(write: bool, doc: Path = DOC) -> bool:
    """Return True when the document is up to date (after writing it, with ``write``)."""
    text = doc.read_text()
    new = render(text)
    if write and new != text:
        doc.write_text(new)
        return True
    return new == text


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    doc = Path(argv[argv.index("--doc") + 1]) if "--doc" in argv else DOC
    if not doc.is_file():
        print(f"{doc} not found: run this in a source checkout, or name the file with --doc",
              file=sys.stderr)
        return 2
    ok = update("--write" in argv, doc)
    status = "up to date" if ok else "tables out of date; run python -m aimc.rtl.docs --write"
    print(f"{doc}: {status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
