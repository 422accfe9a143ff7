"""SequentialSqrt alone in Amaranth's simulator, against ``math.isqrt``: edge and random
radicands, the latency of ``root_width + 1`` clock edges, back-to-back starts, starts
ignored while busy, and the root held until the next start."""

import math
import random
import re

import pytest
from amaranth.sim import Simulator

from aimc.rtl.sqrt import SequentialSqrt

WIDTHS = [1, 2, 5, 8, 17]  # 17: the update engine's (P = isqrt(r << 16), r <= 2**16)


def run_sqrt(dut, radicands, gaps=None, noise_seed=None):
    """Run ``radicands`` one after another; returns the roots. ``gaps[i]`` is the number of
    cycles between the ``done`` of operation i and the ``start`` of operation i + 1 (0: in
    the ``done`` cycle itself). With ``noise_seed``, ``start`` toggles with random radicands
    while busy, which must change nothing. The latency is asserted cycle by cycle."""
    n = dut.root_width
    gaps = [1] * len(radicands) if gaps is None else gaps
    noise = random.Random(noise_seed) if noise_seed is not None else None
    roots = []

    async def bench(ctx):
        for _ in range(2):  # out of reset: idle, nothing to report
            assert (ctx.get(dut.busy), ctx.get(dut.done)) == (0, 0)
            await ctx.tick()
        for i, x in enumerate(radicands):
            ctx.set(dut.radicand, x)
            ctx.set(dut.start, 1)
            await ctx.tick()
            for _ in range(n):  # root_width + 1 edges in all, the accepting one included
                assert (ctx.get(dut.busy), ctx.get(dut.done)) == (1, 0), f"op {i}: latency"
                if noise is not None:
                    ctx.set(dut.start, noise.getrandbits(1))
                    ctx.set(dut.radicand, noise.getrandbits(2 * n))
                else:
                    ctx.set(dut.start, 0)
                await ctx.tick()
            ctx.set(dut.start, 0)
            assert (ctx.get(dut.busy), ctx.get(dut.done)) == (0, 1), f"op {i}: latency"
            root = ctx.get(dut.root)
            roots.append(root)
            for _ in range(gaps[i] if i + 1 < len(radicands) else 2):
                await ctx.tick()
                # done lasts one cycle; the root holds until the next start
                assert (ctx.get(dut.busy), ctx.get(dut.done), ctx.get(dut.root)) == (0, 0, root)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(roots) == len(radicands)
    return roots


def edge_radicands(n):
    """0, 1, the largest radicand, and each side of every perfect square whose root has one
    bit set or all bits set (the trial subtraction exactly zero, or one short)."""
    top = (1 << (2 * n)) - 1
    roots = {1 << b for b in range(n)} | {(1 << b) - 1 for b in range(1, n + 1)} | {3, 5}
    xs = {0, 1, 2, 3, top, top - 1}
    for r in roots:
        xs |= {r * r - 1, r * r, r * r + 1, (r + 1) ** 2 - 1, r * r + 2 * r}
    return sorted(x for x in xs if 0 <= x <= top)


@pytest.mark.parametrize("n", WIDTHS)
def test_sqrt_edge_radicands(n):
    xs = edge_radicands(n)
    roots = run_sqrt(SequentialSqrt(n), xs)
    assert roots == [math.isqrt(x) for x in xs]
    if n > 1:
        assert (1 << n) - 1 in roots  # the largest root came out


@pytest.mark.parametrize("n", WIDTHS)
def test_sqrt_random_back_to_back(n):
    rng = random.Random(n)
    # radicands of every size, and squares with a small offset
    xs = [rng.getrandbits(rng.randint(0, 2 * n)) for _ in range(60)]
    xs += [min(r * r + rng.randint(-1, 1), (1 << (2 * n)) - 1)
           for r in (rng.getrandbits(n) for _ in range(20))]
    xs = [max(x, 0) for x in xs]
    gaps = [rng.choice([0, 0, 1, 3]) for _ in xs]
    assert run_sqrt(SequentialSqrt(n), xs, gaps) == [math.isqrt(x) for x in xs]


def test_sqrt_ignores_start_while_busy():
    rng = random.Random(3)
    xs = [rng.getrandbits(34) for _ in range(30)] + edge_radicands(17)[:10]
    gaps = [rng.choice([0, 1, 2]) for _ in xs]
    assert run_sqrt(SequentialSqrt(17), xs, gaps, noise_seed=5) == [math.isqrt(x) for x in xs]


def test_sqrt_latency_attribute():
    assert [SequentialSqrt(n).latency for n in WIDTHS] == [2, 3, 6, 9, 18]


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "4"])
def test_sqrt_rejects_a_bad_width(value):
    with pytest.raises(ValueError, match=rf"^SequentialSqrt root_width must be a positive "
                                         rf"integer, not {re.escape(repr(value))}$"):
        SequentialSqrt(value)
