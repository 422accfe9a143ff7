"""The register map as SystemRDL 2.0, and what PeakRDL makes from it.

:func:`systemrdl` writes the register map of one tile configuration
(:func:`aimc.rtl.regmap.register_map` and :func:`~aimc.rtl.regmap.windows`, the same source
as the RTL decoder) as one ``addrmap``: every register at its offset with its fields, their
access, reset values, descriptions, enumerations (``encode``) and legal ranges, and the
per-column and per-row windows as register arrays. :func:`export` compiles it with
``systemrdl-compiler`` (which proves it valid SystemRDL) and writes a C header
(``peakrdl-cheader``), an HTML register reference (``peakrdl-html``) and an IP-XACT
component (``peakrdl-ipxact``). Those four packages are the optional ``regs`` extra
(``pip install 'aimc[regs]'``); :func:`missing_tools` names the ones not installed.

How the access modes map (SystemRDL 2.0, clause 9):

=======  ==========================================================================
``R``    ``sw = r``; a constant ``hw = na`` with its value as reset, else ``hw = w``
``RW``   ``sw = rw; hw = r``
``RWH``  ``sw = rw; hw = rw; we`` (the hardware's write wins in the same cycle)
``W1C``  ``sw = rw; onwrite = woclr; hwset`` (a set wins over a clear in one cycle)
``W1P``  ``sw = w; singlepulse`` (reads 0)
=======  ==========================================================================

SystemRDL has no property for a range of legal values: the user-defined properties
``aimc_legal`` (the range as text, ``"lo..hi"``) and ``aimc_signed`` (two's complement) carry
them, and the description says what the tile does with a write outside the range (SLVERR,
nothing changes). Fields that keep their value through the bus reset (``ABORTED``) have no
reset value here: SystemRDL's reset is the value after reset, and theirs is what they held.
"""

from __future__ import annotations

import enum as py_enum
import importlib.util
from pathlib import Path

from ..config import TileConfig
from .regmap import REG_ADDR_WIDTH, Access, Field, Register, Window, register_map, windows

__all__ = ["REGS_TOOLS", "export", "missing_tools", "systemrdl"]

#: The PyPI packages :func:`export` needs (the ``regs`` extra), by import name.
REGS_TOOLS = {"systemrdl": "systemrdl-compiler", "peakrdl_cheader": "peakrdl-cheader",
              "peakrdl_html": "peakrdl-html", "peakrdl_ipxact": "peakrdl-ipxact"}

#: SystemRDL 2.0 keywords (an identifier that is one is written escaped, ``\\name``).
_KEYWORDS = frozenset(
    "abstract accesstype addressingtype addrmap alias all alternate bit boolean bothedge "
    "byte compact component componentwidth constraint default encode enum external false "
    "field fullalign hw inside int internal level longint mem na negedge nonsticky number "
    "onreadtype onwritetype posedge precedencetype property r rclr real ref reg regalign "
    "regfile rset ruser rw rw1 shortint shortreal signal signed string struct sw this true "
    "type unsigned w w1 wclr within with woclr woset wot wr wset wuser wzc wzs wzt".split())


def _ident(name: str) -> str:
    return "\\" + name if name in _KEYWORDS else name


def _text(s: str) -> str:
    """A SystemRDL string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _enum_name(enum) -> str:
    return f"{enum.__name__}_e"


def _enum_def(enum) -> list[str]:
    from ..enums import describe

    flags = issubclass(enum, py_enum.Flag)
    lines = [f"enum {_enum_name(enum)} {{"]
    for m in enum:
        lines.append(f"    {m.name} = {m.value} {{ desc = {_text(describe(m))}; }};")
    lines.append("};")
    if flags:
        lines.insert(0, f"// {enum.__name__}: bit flags; a field holds any combination of them.")
    return lines


def _range(lo: int, hi: int) -> str:
    return f"{lo}..{hi}"


def _access(access: Access, constant: bool) -> list[str]:
    if access == Access.R:
        return ["sw = r;", "hw = na;" if constant else "hw = w;"]
    return {
        Access.RW: ["sw = rw;", "hw = r;"],
        Access.RWH: ["sw = rw;", "hw = rw;", "we;"],
        Access.W1C: ["sw = rw;", "hw = r;", "onwrite = woclr;", "hwset;"],
        Access.W1P: ["sw = w;", "hw = r;", "singlepulse;"],
    }[access]


def _join(*parts: str) -> str:
    """Sentences joined: each part ends with a full stop."""
    return " ".join(p if p.endswith((".", ")")) else p + "." for p in parts if p)


def _field(f: Field, indent: str) -> list[str]:
    notes = [f.description]
    props = [f"name = {_text(f.name)};"]
    if f.legal is not None:
        lo, hi = f.legal
        twos = " (two's complement)" if f.signed else ""
        notes.append(f"Legal {_range(lo, hi)}{twos}: a write of a value outside it is "
                     f"refused whole (SLVERR, BUS_ERROR.range)")
        props.append(f"aimc_legal = {_text(_range(lo, hi))};")
    elif f.signed:
        notes.append("Two's complement")
    if f.signed:
        props.append("aimc_signed = true;")
    if f.reset_less:
        notes.append("Keeps its value through the bus reset (rst); 0 at power-on; cleared "
                     "by writing 1")
    desc = _join(*notes)
    if desc:
        props.append(f"desc = {_text(desc)};")
    props += _access(f.access, f.const is not None)
    if f.enum is not None:
        props.append(f"encode = {_enum_name(f.enum)};")
    reset = ""
    if f.const is not None:
        reset = f" = {f.width}'h{f.const:x}"
    elif f.access != Access.R and not f.reset_less:
        reset = f" = {f.width}'h{f.reset:x}"
    hi = f.lsb + f.width - 1
    body = " ".join(props)
    return [f"{indent}field {{ {body} }} {_ident(f.name)}[{hi}:{f.lsb}]{reset};"]


def _register(r: Register) -> list[str]:
    lines = ["    reg {", f"        name = {_text(r.name)};", f"        desc = {_text(r.doc)};"]
    for f in r.fields:
        lines += _field(f, "        ")
    lines.append(f"    }} {_ident(r.name)} @ 0x{r.offset:X};")
    return lines


#: The initial contents of the coefficient windows (memories that rst does not reset).
_WINDOW_INIT = {"OFFSET": "0", "GAIN": "0x4000 (1.0)", "ROW_OFFSET": "0",
                "ROW_GAIN": "0x4000 (1.0)"}


def _window(w: Window) -> list[str]:
    kind = "row" if w.name.startswith("ROW_") else "column"
    desc = f"{w.description[0].upper()}{w.description[1:]}; one word per {kind}."
    if w.signed:
        lo, hi = -(2 ** (w.width - 1)), 2 ** (w.width - 1) - 1
        width = 32
        desc += (f" Signed, {w.width} significant bits, read sign-extended to 32; a write "
                 f"must hold a value in {_range(lo, hi)} sign-extended to 32 bits (others are "
                 f"refused, SLVERR).")
        legal = f" aimc_legal = {_text(_range(lo, hi))}; aimc_signed = true;"
    else:
        width = w.width
        desc += (f" Unsigned, {w.width} bits; a write with bits above them set is refused "
                 f"(SLVERR).") if w.access != Access.R else f" {w.width} bits."
        legal = (f" aimc_legal = {_text(_range(0, 2 ** w.width - 1))};"
                 if w.access == Access.RW else "")
    if w.access != Access.R:
        desc += (" Writes must be whole words (WSTRB 0xF); writes while the calibration "
                 "engine runs are refused (SLVERR).")
    init = _WINDOW_INIT.get(w.name)
    if init is not None:
        desc += (f" A memory: rst does not change it; it starts at {init} from the "
                 f"Verilog's initial values (simulation, FPGA), undefined on an ASIC until "
                 f"written.")
    props = _access(w.access, False)
    if w.enum is not None:
        props.append(f"encode = {_enum_name(w.enum)};")
    # Only the sticky flags are registers that rst clears; the others are memories (no
    # reset) or hardware values.
    reset = f" = {width}'h0" if w.access == Access.W1C else ""
    field = (f"        field {{ name = \"value\"; desc = {_text(desc)};{legal} "
             f"{' '.join(props)} }} value[{width - 1}:0]{reset};")
    summary = f"{w.doc[0].upper()}{w.doc[1:]}, one word per {kind}."
    return ["    reg {", f"        name = {_text(w.name)};", f"        desc = {_text(summary)};",
            field, f"    }} {_ident(w.name)}[{w.words}] @ 0x{w.base:X} += 0x4;"]


def describe_config(cfg: TileConfig) -> str:
    """The configuration in one line, every parameter named."""
    return ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items())


def systemrdl(cfg: TileConfig, name: str = "aimc_tile") -> str:
    """The register map of a tile of configuration ``cfg`` as SystemRDL 2.0 source: one
    ``addrmap`` named ``name``.

    Raises
    ------
    TypeError
        ``cfg`` is not a TileConfig.
    ValueError
        ``name`` is not a SystemRDL identifier.
    """
    from .. import __version__

    if not isinstance(cfg, TileConfig):
        raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
    if not (isinstance(name, str) and name.isidentifier() and name.isascii()
            and name not in _KEYWORDS):
        raise ValueError(f"name must be a SystemRDL identifier, not {name!r}")
    regs, wins = register_map(cfg), windows(cfg)
    enums = []
    for e in [f.enum for r in regs for f in r.fields] + [w.enum for w in wins]:
        if e is not None and e not in enums:
            enums.append(e)
    lines = [
        f"// Register map of {name}, SystemRDL 2.0: generated by aimc {__version__} from "
        f"aimc.rtl.regmap",
        f"// configuration: {describe_config(cfg)}",
        "// Do not edit: regenerate with `aimc verilog` (same options).",
        "",
        "property aimc_legal { type = string; component = field; };",
        "property aimc_signed { type = boolean; component = field; };",
        "",
    ]
    for e in enums:
        lines += _enum_def(e) + [""]
    end = max(w.address(w.words - 1) for w in wins) + 4
    title = f"AIMC tile {cfg.rows}x{cfg.cols} {cfg.input_mode}"
    about = (f"Control and status registers of the analogue in-memory-compute tile, the "
             f"AXI4-Lite subordinate s_axil ({REG_ADDR_WIDTH}-bit byte addresses, 32-bit "
             f"data): registers from 0x00 to 0xFF, windows from 0x1000, the last word at "
             f"0x{end - 4:X}; every other address answers DECERR. Configuration: "
             f"{describe_config(cfg)}.")
    lines += [
        f"addrmap {name} {{",
        f"    name = {_text(title)};",
        f"    desc = {_text(about)};",
        "    default regwidth = 32;",
        "    default accesswidth = 32;",
        "",
    ]
    for r in regs:
        lines += _register(r)
    for w in wins:
        lines += _window(w)
    lines.append("};")
    return "\n".join(lines) + "\n"


def missing_tools() -> list[str]:
    """The PyPI names of the packages of :data:`REGS_TOOLS` that are not installed."""
    return [pkg for module, pkg in REGS_TOOLS.items() if importlib.util.find_spec(module) is None]


def export(rdl_file, out_dir, stem: str) -> dict[str, Path]:
    """Compile the SystemRDL file ``rdl_file`` and write ``<stem>.h`` (C header),
    ``<stem>_regs/`` (HTML reference, ``index.html``) and ``<stem>.xml`` (IP-XACT 1685-2014)
    into ``out_dir``; returns their paths by kind (``cheader``, ``html``, ``ipxact``).

    Raises
    ------
    RuntimeError
        A package of the ``regs`` extra is missing (named, with the command that installs
        it), or the SystemRDL does not compile (the compiler's messages).
    """
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed: pip install 'aimc[regs]' "
                           f"(or make verilog, which installs them)")
    from peakrdl_cheader.exporter import CHeaderExporter
    from peakrdl_html import HTMLExporter
    from peakrdl_ipxact import IPXACTExporter
    from systemrdl import RDLCompileError, RDLCompiler

    from .. import __version__

    out = Path(out_dir)
    compiler = RDLCompiler()
    try:
        compiler.compile_file(str(rdl_file))
        root = compiler.elaborate()
    except RDLCompileError as exc:
        raise RuntimeError(f"{rdl_file} does not compile as SystemRDL: {exc}") from None
    files = {"cheader": out / f"{stem}.h", "html": out / f"{stem}_regs",
             "ipxact": out / f"{stem}.xml"}
    CHeaderExporter().export(root, str(files["cheader"]))
    HTMLExporter().export(root, str(files["html"]))
    IPXACTExporter(vendor="aimc", library="aimc", version=__version__).export(
        root, str(files["ipxact"]))
    return files
