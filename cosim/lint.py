"""``python -m aimc.cosim.lint``: Verilator's full lint (-Wall) on generated Verilog.

Only the classes waived in waivers.vlt are silenced; any other warning fails the run.
"""

from __future__ import annotations

import subprocess
import sys

from ..config import TileConfig
from .runner import VERILATOR_WAIVERS, setup_verilator, verilog_for

#: Configurations linted: the specification's tile and small ones covering every option.
CONFIGS = (
    TileConfig(),
    TileConfig(rows=8, cols=8),
    TileConfig(rows=16, cols=16, input_mode="bitserial", cols_per_adc=2),
    TileConfig(rows=12, cols=10, lanes=4, cols_per_adc=2, input_bits=10, adc_bits=6),
)


def lint(cfg: TileConfig) -> tuple[bool, str]:
    from ..rtl.verilog import TOP_NAME

    setup_verilator()
    source = verilog_for(cfg)
    proc = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(VERILATOR_WAIVERS), str(source),
         "--top-module", TOP_NAME],
        capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def main() -> int:
    failed = 0
    for cfg in CONFIGS:
        ok, output = lint(cfg)
        print(f"verilator --lint-only -Wall {cfg.key}: {'clean' if ok else 'FINDINGS'}")
        if not ok:
            failed += 1
            print(output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
