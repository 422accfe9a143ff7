"""Shared helper of the Amaranth-simulator tests."""

from amaranth.sim import Simulator


def simulate(dut, testbench, *background, period=1e-6):
    """Run ``testbench`` (and ``background`` processes) against ``dut`` with one clock."""
    sim = Simulator(dut)
    sim.add_clock(period)
    for process in background:
        sim.add_process(process)
    sim.add_testbench(testbench)
    sim.run()
