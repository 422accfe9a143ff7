"""The register map as SystemRDL (aimc.rtl.rdl): it compiles with systemrdl-compiler, and
the C header PeakRDL makes from it has the RTL's addresses, masks and reset values, for tiles
whose maps differ (widths of CAL_REF and OFFSET, window lengths, the training hardware's
registers and windows on training tiles only, the drift reference's on every tile)."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from aimc import TileConfig
from aimc.rtl import rdl
from aimc.rtl.regmap import Access, register_map, windows

pytest.importorskip("systemrdl", reason="the regs extra is not installed (pip install "
                                        "'aimc[regs]')")

CONFIGS = {
    "256x256-pwm": TileConfig(),
    "256x256-pwm-training": TileConfig(training=True),
    "16x16-bitserial-share2": TileConfig(rows=16, cols=16, input_mode="bitserial",
                                         cols_per_adc=2, rows_per_adc=2, training=True),
    "12x10-pwm-lanes4-6bit": TileConfig(rows=12, cols=10, lanes=4, cols_per_adc=2,
                                        input_bits=6, adc_bits=6, rows_per_adc=4),
    "8x8-bitserial-12bit": TileConfig(rows=8, cols=8, input_mode="bitserial", input_bits=12,
                                      adc_bits=12),
}


def _expected(cfg):
    """(name, field) -> (offset, mask, reset or None) from the RTL's register map."""
    out = {}
    for r in register_map(cfg):
        for f in r.fields:
            reset = f.const if f.const is not None else (
                None if f.access == Access.R or f.reset_less else f.reset)
            out[(r.name, f.name)] = (r.offset, f.mask, reset)
    for w in windows(cfg):
        width = 32 if w.signed else w.width  # signed windows read sign-extended
        # Only the sticky flags are registers that rst clears; the others are memories.
        reset = 0 if w.access == Access.W1C else None
        out[(w.name, "value")] = (w.base, (1 << width) - 1, reset)
    return out


def _c_probe(header, cfg):
    """A C program that prints, from the header alone, each register's offset in the
    tile's struct and each field's mask and reset value."""
    lines = [f'#include "{header.name}"', "#include <stdio.h>", "#include <stddef.h>",
             "int main(void) {"]
    text = header.read_text()
    for (reg, field) in _expected(cfg):
        macro = f"AIMC_TILE__{reg}__{field.upper()}"
        member = f"{reg}[0]" if reg in {w.name for w in windows(cfg)} else reg
        reset = f"(unsigned long long){macro}_reset" if f"{macro}_reset " in text else "-1LL"
        lines.append(f'  printf("%s %s %zu %llu %lld\\n", "{reg}", "{field}", '
                     f'offsetof(aimc_tile_t, {member}), (unsigned long long){macro}_bm, '
                     f'(long long){reset});')
    for w in windows(cfg):
        lines.append(f'  printf("words %s %zu\\n", "{w.name}", '
                     f'sizeof(((aimc_tile_t *)0)->{w.name}) / 4);')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.parametrize("name", list(CONFIGS))
def test_c_header_has_the_rtl_addresses_masks_and_resets(name, tmp_path):
    cfg = CONFIGS[name]
    source = tmp_path / "map.rdl"
    source.write_text(rdl.systemrdl(cfg))
    files = rdl.export(source, tmp_path, "map")
    assert (files["html"] / "index.html").is_file()
    probe = tmp_path / "probe.c"
    probe.write_text(_c_probe(files["cheader"], cfg))
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", "-o", str(tmp_path / "probe"),
                    str(probe)], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    got = {}
    for line in out:
        if line.startswith("words "):
            continue
        reg, field, offset, mask, reset = line.split()
        got[(reg, field)] = (int(offset), int(mask), None if reset == "-1" else int(reset))
    assert got == _expected(cfg)
    words = {w: int(n) for _, w, n in (line.split() for line in out if line.startswith("words"))}
    assert words == {w.name: w.words for w in windows(cfg)}
    # The drift reference's registers and windows on every tile; the training hardware's
    # (update engine, backward MVMs, row coefficients) on training tiles only.
    regs = {reg for reg, _ in got}
    assert {"DRIFT_X", "DRIFT_MIN", "DRIFT_ROWS", "DRIFT_COLS"} <= regs
    training = {"BWD_COUNT", "UPD_CTRL", "UPD_ETA", "UPD_BL", "UPD_STATUS", "UPD_LAST",
                "UPD_CYCLES", "ROW_OFFSET", "ROW_GAIN"}
    assert (regs & training) == (training if cfg.training else set())
    assert got[("DRIFT_ROWS", "value")][:2] == (0x8000, 0x3)
    assert got[("DRIFT_COLS", "value")][:2] == (0x9000, 0x1)
    if cfg.training:
        assert got[("UPD_BL", "slots")] == (0xB8, 0xFF, 0x1F)
        assert got[("UPD_CTRL", "k")] == (0xB0, 0x1F00, 16)
        assert got[("UPD_LAST", "d_max")] == (0xD8, 0xFFF00000, None)
        assert got[("ROW_OFFSET", "value")] == (0x5000, 0xFFFFFFFF, None)
        assert words["ROW_GAIN"] == cfg.rows
    # The configuration-dependent fields the issue found wrong in the default tile's docs.
    if name == "16x16-bitserial-share2":
        text = files["cheader"].read_text()
        assert "#define AIMC_TILE__CAL_REF__VALUE_bw 19" in text
        assert "#define AIMC_TILE__CAL_REF__VALUE_reset 0x2fa00" in text
        assert got[("DRIFT_MIN", "value")] == (0xE0, 0xFFFFFFFF, 0x3F80)
        assert "#define AIMC_TILE__UPD_BL__SLOTS_reset 0x1f" in text


def test_ipxact_and_rdl_carry_the_configuration_and_the_legal_ranges(tmp_path):
    cfg = CONFIGS["16x16-bitserial-share2"]
    text = rdl.systemrdl(cfg)
    assert "// configuration: rows=16, cols=16, input_bits=8, adc_bits=8, cols_per_adc=2, " \
           "input_mode=bitserial, lanes=8, rows_per_adc=2" in text
    assert re.search(r'aimc_legal = "-127\.\.127"; aimc_signed = true;.* value\[15:0\] = '
                     r"16'h3f;", text)
    assert "encode = CalPhase_e;" in text and "OFFSET[16] @ 0x1000 += 0x4;" in text
    assert "ROW_GAIN[16] @ 0x6000 += 0x4;" in text
    source = tmp_path / "map.rdl"
    source.write_text(text)
    files = rdl.export(source, tmp_path, "map")
    ns = {"ipxact": "http://www.accellera.org/XMLSchema/IPXACT/1685-2014"}
    root = ET.parse(files["ipxact"]).getroot()
    regs = {r.find("ipxact:name", ns).text: r for r in root.iter(f"{{{ns['ipxact']}}}register")}
    assert regs["CTRL"].find("ipxact:addressOffset", ns).text == "'h10"
    assert regs["OFFSET"].find("ipxact:dim", ns).text == "16"


def test_bad_source_is_reported_by_the_compiler(tmp_path):
    bad = tmp_path / "bad.rdl"
    bad.write_text("addrmap x { reg { field {} f[40:0]; } r @ 0; };\n")
    with pytest.raises(RuntimeError, match=r"bad\.rdl does not compile as SystemRDL"):
        rdl.export(bad, tmp_path, "bad")


@pytest.mark.parametrize("name, error", [("1tile", ValueError), ("field", ValueError)])
def test_systemrdl_names_a_bad_parameter(name, error):
    with pytest.raises(error, match=rf"name must be a SystemRDL identifier, not '{name}'"):
        rdl.systemrdl(TileConfig(rows=8, cols=8), name=name)
    with pytest.raises(TypeError, match=r"cfg must be a TileConfig, not 8"):
        rdl.systemrdl(8)
