"""SequentialDivider alone in Amaranth's simulator, against the divide() reference."""

import random

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from aimc.rtl.divider import SequentialDivider, divide

# (dividend_width, divisor_width, quotient_width)
RANDOM_WIDTHS = [
    (32, 24, 16),  # the calibration case: dividend wider than the quotient
    (8, 8, 8),
    (20, 4, 6),  # dividend bits above quotient + divisor: overflow from the high bits alone
]
EDGE_WIDTHS = RANDOM_WIDTHS + [
    (6, 8, 10),  # dividend narrower than the quotient
    (1, 1, 1),
    (5, 3, 1),
]


def run_divider(dut, ops, gaps=None, noise_seed=None):
    """Run ``ops`` [(n, d), ...] one after another and check each against divide().

    ``gaps[i]`` is the number of cycles between the ``done`` of operation i and the
    ``start`` of operation i + 1: 0 asserts ``start`` in the ``done`` cycle itself. With
    ``noise_seed``, ``start`` is toggled with random operands while busy, which must
    change nothing.
    """
    qw, latency = dut.quotient_width, dut.quotient_width + 2
    gaps = [1] * len(ops) if gaps is None else gaps
    noise = random.Random(noise_seed) if noise_seed is not None else None
    results = []

    async def bench(ctx):
        # Out of reset: idle, nothing to report.
        for _ in range(2):
            assert (ctx.get(dut.busy), ctx.get(dut.done)) == (0, 0)
            await ctx.tick()
        for i, (n, d) in enumerate(ops):
            assert ctx.get(dut.busy) == 0
            ctx.set(dut.dividend, n)
            ctx.set(dut.divisor, d)
            ctx.set(dut.start, 1)
            await ctx.tick()
            for _ in range(latency - 1):
                assert (ctx.get(dut.busy), ctx.get(dut.done)) == (1, 0)
                if noise is not None:
                    ctx.set(dut.start, noise.getrandbits(1))
                    ctx.set(dut.dividend, noise.getrandbits(dut.dividend_width))
                    ctx.set(dut.divisor, noise.getrandbits(dut.divisor_width))
                else:
                    ctx.set(dut.start, 0)
                await ctx.tick()
            ctx.set(dut.start, 0)
            assert (ctx.get(dut.busy), ctx.get(dut.done)) == (0, 1), f"op {i}: latency"
            got = (ctx.get(dut.quotient), bool(ctx.get(dut.overflow)))
            results.append(got)
            assert got == divide(n, d, qw), f"op {i}: {n} / {d}"
            for _ in range(gaps[i] if i + 1 < len(ops) else 2):
                await ctx.tick()
                # done lasts one cycle; the result holds until the next start.
                assert (ctx.get(dut.busy), ctx.get(dut.done)) == (0, 0)
                assert (ctx.get(dut.quotient), bool(ctx.get(dut.overflow))) == got

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == len(ops)
    return results


def edge_operands(nw, dw, qw):
    n_max, d_max = (1 << nw) - 1, (1 << dw) - 1
    ops = [(0, 0), (n_max, 0), (0, 1), (n_max, 1), (0, d_max), (n_max, d_max),
           (d_max, d_max), (d_max - 1, d_max)]
    for d in {1, 2, 3, d_max, max(d_max // 3, 1)}:
        ops += [(d * (1 << qw) - 1, d),  # quotient all ones: just fits
                (d * (1 << qw), d),  # one more: overflows
                (d, d), (d - 1, d)]
    return [(n, d) for n, d in ops if 0 <= n <= n_max and 0 <= d <= d_max]


def random_operands(nw, dw, qw, count, rng):
    ops = []
    for k in range(count):
        d = rng.getrandbits(rng.randint(0, dw))
        if k % 2 and d:
            # Built from a quotient and a remainder: mostly fits, near the boundary too.
            n = rng.getrandbits(rng.randint(0, qw)) * d + rng.randrange(d)
            if n >> nw:
                n = rng.getrandbits(nw)
        else:
            n = rng.getrandbits(rng.randint(0, nw))
        ops.append((n, d))
    return ops


def test_reference_divide():
    assert divide(7, 2, 4) == (3, False)
    assert divide(0, 5, 1) == (0, False)
    assert divide(15, 1, 4) == (15, False)
    assert divide(16, 1, 4) == (15, True)
    assert divide(47, 3, 4) == (15, False)  # 3 * 16 - 1
    assert divide(48, 3, 4) == (15, True)
    assert divide(5, 0, 3) == (7, True)
    assert divide(0, 0, 2) == (3, True)
    assert divide(2**32 - 1, 2**24 - 1, 16) == (256, False)
    with pytest.raises(ValueError, match=r"^divide d must be a non-negative integer, not -1$"):
        divide(1, -1, 4)
    with pytest.raises(ValueError, match=r"^divide quotient_width must be a positive "
                                         r"integer, not 0$"):
        divide(1, 1, 0)


@pytest.mark.parametrize("widths", EDGE_WIDTHS, ids=lambda w: "n{}_d{}_q{}".format(*w))
def test_divider_edge_cases(widths):
    ops = edge_operands(*widths)
    results = run_divider(SequentialDivider(*widths), ops)
    assert any(ovf for _, ovf in results) and any(not ovf for _, ovf in results)


@pytest.mark.parametrize("widths", RANDOM_WIDTHS, ids=lambda w: "n{}_d{}_q{}".format(*w))
def test_divider_random_back_to_back(widths):
    rng = random.Random(sum(w << (8 * i) for i, w in enumerate(widths)))
    ops = random_operands(*widths, 300, rng)
    # Mostly back to back: start in the done cycle (0) or right after (1).
    gaps = [rng.choice([0, 0, 0, 1, 1, 3]) for _ in ops]
    results = run_divider(SequentialDivider(*widths), ops, gaps)
    overflows = sum(ovf for _, ovf in results)
    assert 0.1 * len(ops) < overflows < 0.9 * len(ops), "operands should exercise both paths"


@pytest.mark.parametrize("widths", [(32, 24, 16), (12, 5, 4)],
                         ids=lambda w: "n{}_d{}_q{}".format(*w))
def test_divider_ignores_start_while_busy(widths):
    rng = random.Random(7)
    ops = edge_operands(*widths)[:8] + random_operands(*widths, 40, rng)
    gaps = [rng.choice([0, 1, 2]) for _ in ops]
    run_divider(SequentialDivider(*widths), ops, gaps, noise_seed=11)


def test_divider_latency_attribute_and_conversion():
    dut = SequentialDivider(32, 24, 16)
    assert dut.latency == 18
    text = rtlil.convert(dut)
    assert "quotient" in text and "overflow" in text


@pytest.mark.parametrize("kwargs, message", [
    ({"dividend_width": 0, "divisor_width": 8, "quotient_width": 8},
     r"^SequentialDivider dividend_width must be a positive integer, not 0$"),
    ({"dividend_width": 8, "divisor_width": -3, "quotient_width": 8},
     r"^SequentialDivider divisor_width must be a positive integer, not -3$"),
    ({"dividend_width": 8, "divisor_width": 8, "quotient_width": 0},
     r"^SequentialDivider quotient_width must be a positive integer, not 0$"),
    ({"dividend_width": 8.0, "divisor_width": 8, "quotient_width": 8},
     r"^SequentialDivider dividend_width must be a positive integer, not 8\.0$"),
    ({"dividend_width": 8, "divisor_width": True, "quotient_width": 8},
     r"^SequentialDivider divisor_width must be a positive integer, not True$"),
    ({"dividend_width": 8, "divisor_width": 8, "quotient_width": "16"},
     r"^SequentialDivider quotient_width must be a positive integer, not '16'$"),
])
def test_divider_rejects_bad_widths(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequentialDivider(**kwargs)
