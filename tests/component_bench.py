"""Shared by the component tests of the streams, the sequencer and the engines: a simulator
run with background testbenches (device models beside the DUT, as Glasgow's
``simulate_flash``), stream models with random gaps and back-pressure, and bit packing.

Every model samples the DUT's signals at the clock edge (``ctx.tick().sample(...)``), so it
sees exactly what the DUT saw when the edge came, whatever order the testbenches run in
after it; what a model drives it sets right after the edge, for the next cycle.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

__all__ = ["RandomReady", "Source", "Trace", "pack", "run", "to_signed", "unpack", "wait_until"]


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def pack(values, width: int) -> int:
    """Lane ``i`` of ``values`` at bits ``[i*width, (i+1)*width)`` (two's complement)."""
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def unpack(word: int, width: int, n: int, signed: bool = True) -> list[int]:
    lanes = [(word >> (i * width)) & ((1 << width) - 1) for i in range(n)]
    return [to_signed(v, width) for v in lanes] if signed else lanes


def run(dut, main, *background, period=1e-6):
    """Run the testbench ``main`` against ``dut`` with one clock; ``background`` testbenches
    (the models) run beside it and stop when ``main`` returns."""
    sim = Simulator(dut)
    sim.add_clock(period)
    for bench in background:
        sim.add_testbench(bench, background=True)
    sim.add_testbench(main)
    sim.run()


async def wait_until(ctx, condition, limit: int, what: str) -> int:
    """Tick until ``condition()`` (a Python predicate on the models' state) holds; at most
    ``limit`` cycles. Returns the cycles waited."""
    for n in range(limit):
        if condition():
            return n
        await ctx.tick()
    raise AssertionError(f"{what}: not within {limit} cycles")


class Trace:
    """Samples ``signals`` (a dict of name to value) at every clock edge: ``rows[n]`` holds
    what they were during cycle ``n`` (the cycle ending with the ``n``-th edge)."""

    def __init__(self, signals: dict):
        self.names = list(signals)
        self.values = [signals[n] for n in self.names]
        self.rows: list[dict] = []

    async def run(self, ctx):
        async for _, _, *sampled in ctx.tick().sample(*self.values):
            self.rows.append(dict(zip(self.names, sampled, strict=True)))

    def cycles(self, name: str) -> list[int]:
        """The cycles in which ``name`` was non-zero."""
        return [n for n, row in enumerate(self.rows) if row[name]]

    def column(self, name: str) -> list[int]:
        return [row[name] for row in self.rows]


class Source:
    """A stream source: offers ``items`` (tuples of values for ``fields``) in order on
    ``valid``/``ready``, with a random gap before each with probability ``1 - p_valid``;
    holds the item while it is not taken, and drives random noise on the fields while
    ``valid`` is low. ``taken`` records (cycle, index) of every transfer."""

    def __init__(self, valid, ready, fields, items, *, p_valid=1.0, seed=0):
        self.valid, self.ready, self.fields = valid, ready, list(fields)
        self.items = [tuple(i) for i in items]
        self.p_valid, self.rng = p_valid, random.Random(seed)
        self.taken: list[tuple[int, int]] = []

    @property
    def finished(self) -> bool:
        return len(self.taken) == len(self.items)

    def _offer(self, ctx, i):
        if i < len(self.items) and self.rng.random() < self.p_valid:
            ctx.set(self.valid, 1)
            for f, v in zip(self.fields, self.items[i], strict=True):
                ctx.set(f, v & ((1 << len(f)) - 1))
            return True
        ctx.set(self.valid, 0)
        for f in self.fields:
            ctx.set(f, self.rng.getrandbits(len(f)))
        return False

    async def run(self, ctx):
        i, cycle = 0, 0
        offered = self._offer(ctx, i)
        async for _, _, valid, ready in ctx.tick().sample(self.valid, self.ready):
            if valid and ready:
                self.taken.append((cycle, i))
                i += 1
                offered = self._offer(ctx, i)
            elif not offered:
                offered = self._offer(ctx, i)
            cycle += 1


class RandomReady:
    """Drives ``ready`` high with probability ``p_ready`` each cycle (or from ``pattern``,
    a function of the cycle number, when given)."""

    def __init__(self, ready, *, p_ready=1.0, seed=0, pattern=None):
        self.ready, self.p_ready, self.rng = ready, p_ready, random.Random(seed)
        self.pattern = pattern

    def _value(self, cycle):
        if self.pattern is not None:
            return int(self.pattern(cycle))
        return int(self.rng.random() < self.p_ready)

    async def run(self, ctx):
        cycle = 0
        ctx.set(self.ready, self._value(cycle))
        async for _ in ctx.tick():
            cycle += 1
            ctx.set(self.ready, self._value(cycle))
