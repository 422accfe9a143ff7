"""The reset-less ABORTED bits (Amaranth simulator, the register file alone): a reset keeps
them, and the documented way to clear them, writing 1s (W1C), leaves the tile in the state
of a power-on. The cosimulation bench does this after its reset, so that every cocotb test of
one simulation starts from the same state (tests/test_cli_and_docs.py runs all of them on
an 8x8 tile)."""

import random

from amaranth import ClockDomain, Module
from amaranth.sim import Simulator
from test_calibration_rtl import LiteHost

from aimc import TileConfig
from aimc.rtl.axi import RESP_OKAY
from aimc.rtl.csr import RegisterFile
from aimc.rtl.regmap import register_map, windows

CFG = TileConfig(rows=8, cols=8)


def test_aborted_survives_reset_and_clears_on_writing_ones():
    aborted = next(r for r in register_map(CFG) if r.name == "ABORTED")
    dut = RegisterFile(register_map(CFG), windows(CFG))
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.csr = dut
    seen = {}

    async def bench(ctx):
        host = LiteHost(ctx, dut, random.Random(1))
        await host.idle(2)
        seen["power-on"] = await host.read(aborted.offset)
        # What the tile does in a reset cycle: set the bits of what the reset cuts short.
        ctx.set(cd.rst, 1)
        ctx.set(dut.regs.aborted.mvm.set, 1)
        ctx.set(dut.regs.aborted.prog.set, 1)
        await host.idle(1)
        ctx.set(dut.regs.aborted.mvm.set, 0)
        ctx.set(dut.regs.aborted.prog.set, 0)
        await host.idle(2)
        ctx.set(cd.rst, 0)
        await host.idle(1)
        seen["after reset"] = await host.read(aborted.offset)
        seen["clear prog"] = await host.write(aborted.offset, aborted.pack(prog=1))
        seen["after clearing prog"] = await host.read(aborted.offset)
        seen["clear all"] = await host.write(aborted.offset, aborted.pack(mvm=1, cal=1, prog=1))
        seen["after clearing all"] = await host.read(aborted.offset)

    sim = Simulator(m)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    assert seen["power-on"] == (0, RESP_OKAY)
    assert seen["after reset"] == (aborted.pack(mvm=1, prog=1), RESP_OKAY)
    assert seen["clear prog"] == RESP_OKAY
    assert seen["after clearing prog"] == (aborted.pack(mvm=1), RESP_OKAY)
    assert seen["after clearing all"] == (0, RESP_OKAY)
