"""The lint waivers (cosim/waivers.vlt) silence only what Amaranth's backend emits by
construction: a finding in the design itself still fails Verilator's full lint."""

import subprocess

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.back import verilog

from aimc.cosim.runner import VERILATOR_WAIVERS, setup_verilator


class _Adder(Elaboratable):
    """``out = (a + b) mod 16``, with a named copy of ``a`` nothing reads; the sum is held
    in a named 5-bit signal (``named_sum``, its carry bit unread) or left an expression
    (Amaranth's own net)."""

    def __init__(self, named_sum: bool):
        self.named_sum = named_sum
        self.a, self.b, self.out = Signal(4), Signal(4), Signal(4)

    def elaborate(self, platform):
        m = Module()
        copy = Signal(4, name="copy_of_a")
        m.d.comb += copy.eq(self.a)
        if self.named_sum:
            total = Signal(5, name="total")
            m.d.comb += [total.eq(self.a + self.b), self.out.eq(total[:4])]
        else:
            m.d.comb += self.out.eq((self.a + self.b)[:4])
        return m


def _lint(tmp_path, design) -> str:
    setup_verilator()
    source = tmp_path / "adder.v"
    source.write_text(verilog.convert(design, name="adder",
                                      ports=[design.a, design.b, design.out]))
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(VERILATOR_WAIVERS),
                           str(source), "--top-module", "adder"],
                          capture_output=True, text=True)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("named_sum", [False, True])
def test_unused_bits_of_a_named_signal_still_fail_the_lint(tmp_path, named_sum):
    output = _lint(tmp_path, _Adder(named_sum))
    warnings = [line for line in output.splitlines() if line.startswith("%Warning")]
    if named_sum:
        assert len(warnings) == 1, output
        assert "UNUSEDSIGNAL" in warnings[0] and "'total'[4]" in warnings[0], output
    else:
        # The carry of Amaranth's own net and the unread named copy are waived.
        assert warnings == [], output
    assert "copy_of_a" not in output
