"""cocotb tests of the generated tile with the crossbar model in the loop.

Run through :func:`aimc.cosim.runner.run`, which hands every test the run's
:class:`~aimc.cosim.settings.CosimSettings`: the tile, the chip (model, seed, time, faults,
stuck devices), the stimulus (seeds, vector count, stall probabilities, calibration
averaging, program-and-verify parameters and targets) and the stats file the figures go to.
Register words are packed and unpacked through the register map, status bits named by the
enums of :mod:`aimc.enums`.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiStreamFrame

from ..enums import CalPhase, ColFlag, DeviceStatus, InputKind
from ..fixedpoint import ONE
from ..model import Chip
from ..model.calibration import calibrate, mvm_error
from ..model.program import ProgramParams, program_and_verify, report
from ..programming import read_full_scale
from ..rtl.axi import RESP_OKAY
from ..rtl.regmap import ID_MAGIC
from . import coverage
from .bench import CLOCK_NS, TileBench, to_lanes
from .settings import CosimSettings, skip_reason


def _skip_unless_it_applies(test: str):
    """Skip ``test`` (with its reason) on a tile it does not apply to."""
    import pytest  # cocotb's way of skipping a test that has started

    reason = skip_reason(test, CosimSettings.from_env().tile)
    if reason is not None:
        pytest.skip(reason)


def _setup(dut, full_scale_weights=False, erased=False) -> TileBench:
    """The bench for this run's settings; its chip has random weights, all at +w_max
    (``full_scale_weights``) or none (``erased``: every device at g_min)."""
    settings = CosimSettings.from_env()
    if erased:
        settings = settings.replace(erased=True)
    chip = settings.chip()
    if full_scale_weights:
        chip.program(np.full((settings.tile.rows, settings.tile.cols), chip.w_max))
    return TileBench(dut, settings, chip)


@cocotb.test()
async def mvm_stream(dut):
    """Random vectors through the tile under random stalls on both streams, checked in order
    and bit for bit against the model's batch prediction."""
    tb = _setup(dut)
    cfg, settings = tb.cfg, tb.settings
    n = settings.vector_count(24)
    p_in, p_out = settings.stalls
    await tb.start()
    await tb.enable(irq=True)
    tb.backpressure(p_in, p_out)

    x = tb.random_vectors(n, settings.stimulus_rng(7))
    wall0, sim0 = time.perf_counter(), get_sim_time("ns")
    collector = cocotb.start_soon(tb.collect(n))
    for v in x:
        await tb.send(v)
    bound = n * tb.cycles_per_mvm_bound() * (3 if (p_in or p_out) else 1) + 200
    await with_timeout(collector, bound, "ns")
    wall, sim_ns = time.perf_counter() - wall0, get_sim_time("ns") - sim0
    await tb.drain(2 * tb.cycles_per_mvm_bound())

    sb = tb.scoreboard
    for index, want, got in sb.mismatches[:3]:
        dut._log.error("vector %d: expected %s, got %s", index, want.tolist(), got.tolist())
    assert not sb.mismatches, f"{len(sb.mismatches)} of {n} result vectors differ"
    assert sb.matched == n, f"{sb.matched} of {n} results arrived"
    assert sb.unexpected == 0, f"{sb.unexpected} results arrived that were never asked for"
    assert await tb.read("MVM_COUNT") == n
    assert await tb.field("STATUS", "done") == 1
    assert int(dut.irq.value) == 1
    assert tb.model.integration + 1 == n * cfg.planes, "analogue integrations per MVM"

    stats = {"config": cfg.to_dict(), "vectors": n, "matched": sb.matched,
             "wall_seconds": wall, "sim_cycles": sim_ns,
             "mvm_per_second": n / wall, "cycles_per_second": sim_ns / wall,
             "latency_cycles": await tb.read("LATENCY"), "period_cycles": await tb.read("PERIOD"),
             "analogue_min_cycles": cfg.analogue_min_cycles}
    dut._log.info("%d/%d results match; %.1f MVM/s, %.0f cycles/s; latency %d, period %d "
                  "cycles (analogue minimum %d)", sb.matched, n, stats["mvm_per_second"],
                  stats["cycles_per_second"], stats["latency_cycles"], stats["period_cycles"],
                  cfg.analogue_min_cycles)
    settings.write_stats("mvm_stream", stats)


@cocotb.test()
async def back_to_back_timing(dut):
    """Without stalls, MVMs run back to back: the period and latency the RTL measures equal
    the sequencer's documented schedule (TileConfig.mvm_period_cycles), with the correction
    datapath on (it adds latency on the stream, never period)."""
    tb = _setup(dut)
    cfg = tb.cfg
    await tb.start()
    cal = await tb.set_example_correction()
    x = tb.random_vectors(4, np.random.default_rng(3))
    collector = cocotb.start_soon(tb.collect(4))
    for v in x:
        await tb.send(v)
    await with_timeout(collector, 8 * tb.cycles_per_mvm_bound(), "ns")
    assert tb.scoreboard.matched == 4
    period, latency = await tb.read("PERIOD"), await tb.read("LATENCY")
    dut._log.info("period %d, latency %d, analogue minimum %d", period, latency,
                  cfg.analogue_min_cycles)
    assert period == cfg.mvm_period_cycles, f"period {period}, expected {cfg.mvm_period_cycles}"
    assert latency == cfg.mvm_period_cycles  # the next vector is taken as results leave

    # Coefficients that push two columns past the result range: the corrected results
    # clamp, each clamp is counted (CORR_SAT) and flagged (STATUS.sat), as the model says.
    fmt = tb.fmt
    cal.offset[0] = -(1 << (fmt.off_bits - 1))            # the most negative offset
    cal.offset[-1] = (1 << (fmt.off_bits - 1)) - 1        # the most positive one
    cal.gain[[0, -1]] = (1 << tb.windows["GAIN"].width) - 1
    await tb.write_coefficients(cal.offset, cal.gain)
    x = tb.random_vectors(4, np.random.default_rng(4))
    raw = tb.state.mvm(x, first_vector=tb.sent)
    clamped = fmt.correct(raw, cal.offset, cal.gain, cal.drift_scale)[1]
    assert clamped[:, 0].all() and clamped[:, -1].all()
    await tb.clear("STATUS", "sat")
    assert await tb.field("STATUS", "sat") == 0
    before = await tb.read("CORR_SAT")
    await tb.stream(x)
    assert tb.scoreboard.matched == 8 and not tb.scoreboard.mismatches
    assert await tb.read("CORR_SAT") - before == int(clamped.sum())
    assert await tb.field("STATUS", "sat") == 1
    coverage.hit("errors", "corrected_saturated")


@cocotb.test()
async def registers(dut):
    """Identity and configuration read back; control is read/write; errors on bad access."""
    tb = _setup(dut)
    cfg = tb.cfg
    await tb.start()
    assert await tb.read("ID") == ID_MAGIC
    for reg in ("CFG_ARRAY", "CFG_CONV", "VERSION"):
        assert await tb.read(reg) == tb.regs[reg].reset_value, reg
    assert await tb.field("CFG_ARRAY", "rows") == cfg.rows
    assert await tb.field("CFG_CONV", "adc_bits") == cfg.adc_bits
    ctrl = tb.regs["CTRL"]
    both, irq_only = ctrl.pack(enable=1, irq_en=1), ctrl.pack(irq_en=1)
    await tb.write("CTRL", both)
    assert await tb.read("CTRL") == both
    # A write with WSTRB selecting only byte 1 leaves the fields in byte 0 alone.
    await tb.axil.write(tb.address("CTRL") + 1, b"\x00")
    assert await tb.read("CTRL") == both
    await tb.axil.write(tb.address("CTRL"), irq_only.to_bytes(1, "little"))
    assert await tb.read("CTRL") == irq_only
    # Read-only registers: the write is refused and changes nothing.
    for name in ("ID", "MVM_COUNT", "CFG_ARRAY", "LATENCY"):
        await tb.expect_refused(name, 0xFFFFFFFF, "readonly")
    # Unmapped addresses (a hole between registers, past the last one, past the windows):
    # decode error on both channels, and nothing else changes.
    for address in (0x3C, 0xFC, 0x7000, 0xFFFC):
        await tb.expect_refused(address, 0xFFFFFFFF, "decode")
        await tb.expect_read_refused(address)
    assert (await tb.axil.read(tb.address("ID"), 4)).resp == RESP_OKAY
    assert await tb.read("CTRL") == irq_only
    # Every register reads back its reset value after the refused accesses (CTRL aside).
    for r in tb.regs.values():
        if r.name not in ("CTRL", "STATUS", "ABORTED") and all(
                f.access != "R" or f.const is not None for f in r.fields):
            assert await tb.read(r.name) == r.reset_value, r.name


#: Registers the host may rewrite while MVMs stream raw (none changes a raw result), with
#: the fields a random write sets.
_QUIET_REGISTERS = ("CAL_REF", "DRIFT_X", "DRIFT_REF", "DRIFT_SCALE", "PROG_LIMITS",
                    "PROG_GAIN")


def _random_value(reg, rng, legal: bool) -> int:
    """A word for ``reg``: every field random within its legal range, or (``legal`` False)
    one field with a legal range outside it."""
    values = {}
    fields = [f for f in reg.fields if f.access in ("RW", "RWH")]
    bad = rng.choice([f for f in fields if f.legal]) if not legal else None
    for f in fields:
        lo, hi = f.legal or f.representable
        if f is bad:
            low, high = f.representable
            values[f.name] = rng.choice([x for x in (lo - 1, hi + 1, low, high)
                                         if low <= x <= high and not lo <= x <= hi])
        else:
            values[f.name] = rng.randint(lo, hi)
    return reg.pack(**values)


@cocotb.test()
async def bus_under_pauses(dut):
    """Random idle cycles on all five AXI4-Lite channels and on both streams while MVMs
    stream: register writes (legal ones land, out-of-range ones are refused whole and
    reported), coefficient window writes, and reads issued together with writes all read
    back right, and every result still arrives once, in order, bit for bit."""
    tb = _setup(dut)
    cfg = tb.cfg
    n = tb.settings.vector_count(24)
    await tb.start()
    await tb.enable()
    tb.backpressure(0.3, 0.3)
    tb.bus_pauses(0.3)
    rng = tb.settings.stimulus_rng(3)
    pick = random.Random(tb.settings.stimulus_seed)  # which registers, and their values
    collector = cocotb.start_soon(tb.collect(n))
    x = tb.random_vectors(n, rng)
    feeder = cocotb.start_soon(_feed(tb, x))

    shadow = {name: tb.regs[name].reset_value for name in _QUIET_REGISTERS}
    refused = 0
    for i in range(48):
        name = pick.choice(_QUIET_REGISTERS)
        reg = tb.regs[name]
        legal = not any(f.legal for f in reg.fields) or pick.random() < 0.7
        value = _random_value(reg, pick, legal)
        if legal:
            # A write and a read of another register, in flight together.
            other = pick.choice(_QUIET_REGISTERS)
            write = cocotb.start_soon(tb.write(name, value))
            read = await tb.read(other)
            await write
            if other != name:
                assert read == shadow[other], f"{other}: read {read:#x}, wrote {shadow[other]:#x}"
            shadow[name] = value
            assert await tb.read(name) == value, name
        else:
            await tb.expect_refused(name, value, "range")
            refused += 1
        if i % 8 == 0:
            c = pick.randrange(cfg.cols)
            word = pick.randrange(1 << tb.windows["GAIN"].width)
            await tb.axil.write(tb.windows["GAIN"].address(c), word.to_bytes(4, "little"))
            assert (await tb.read_window("GAIN"))[c] == word
    assert refused > 0
    await with_timeout(feeder, n * tb.cycles_per_mvm_bound() * 4 + 1000, "ns")
    await with_timeout(collector, n * tb.cycles_per_mvm_bound() * 4 + 1000, "ns")
    await tb.drain(2 * tb.cycles_per_mvm_bound())
    sb = tb.scoreboard
    assert sb.matched == n and not sb.mismatches and sb.unexpected == 0
    assert await tb.read("MVM_COUNT") == n
    for name, value in shadow.items():
        assert await tb.read(name) == value, name


async def _feed(tb, x):
    for v in x:
        await tb.send(v)


@cocotb.test()
async def comparator_faults(dut):
    """Comparators that answer every comparison at random (stuck at their threshold) in a
    few columns: every conversion still ends in adc_bits cycles, every MVM keeps the
    documented period, every result arrives in order, the other columns equal the model
    bit for bit, and the faulty ones stay within the result range."""
    tb = _setup(dut)
    cfg = tb.cfg
    n = tb.settings.vector_count(24)
    await tb.start()
    await tb.enable()
    faulty = sorted({0, cfg.cols // 2, cfg.cols - 1})
    tb.bridge.random_comparators(faulty, random.Random(7))
    coverage.hit("errors", "comparator_random")
    x = tb.random_vectors(n, np.random.default_rng(8))
    want = tb.fmt.uncorrected(tb.state.mvm(x, first_vector=tb.sent))
    tb.sent += n
    collector = cocotb.start_soon(_receive(tb, n))
    for v in x:
        await tb.send(v, expect=False)
    got = await with_timeout(collector, n * tb.cycles_per_mvm_bound() + 500, "ns")
    assert await tb.read("PERIOD") == cfg.mvm_period_cycles
    assert await tb.read("MVM_COUNT") == n
    good = np.setdiff1d(np.arange(cfg.cols), faulty)
    np.testing.assert_array_equal(got[:, good], want[:, good])
    low, high = tb.fmt.uncorrected(tb.fmt.rails)
    assert np.all((got[:, faulty] >= low) & (got[:, faulty] <= high))
    # The random answers did change the faulty columns (the fault was real).
    assert np.any(got[:, faulty] != want[:, faulty])
    tb.bridge.random_comparators(None, None)
    await tb.stream(tb.random_vectors(4, np.random.default_rng(9)))
    assert tb.scoreboard.matched == 4 and not tb.scoreboard.mismatches


async def _receive(tb, count: int) -> np.ndarray:
    return np.array([await tb.receive() for _ in range(count)])


@cocotb.test()
async def analogue_timeout(dut):
    """The analogue half never becomes ready: a host vector waits READY_TIMEOUT cycles and
    is dropped, a calibration and a programming run (waiting on a device read, and on a
    pulse step) end with their error bit; each is counted, nothing hangs and nothing stale
    comes out. A ready that comes back within the timeout only delays the operation."""
    tb = _setup(dut, erased=True)
    cfg = tb.cfg
    await tb.start()
    limit = 64
    await tb.write("READY_TIMEOUT", limit)
    await tb.expect_refused("READY_TIMEOUT", 0, "range")
    await tb.enable(irq=True)
    timed_out = tb.regs["STATUS"].pack(timeout=1)
    ended_in_error = tb.regs["PROG_STATUS"].pack(done=1, error=1)
    rng = np.random.default_rng(5)
    integrations = tb.model.integration

    # A host vector.
    tb.bridge.set_ready(False)
    await tb.send(tb.random_vectors(1, rng)[0], expect=False)
    await ClockCycles(dut.clk, limit + 40)
    assert await tb.read("TIMEOUT_COUNT") == 1
    assert await tb.read("STATUS") == timed_out, "dropped: not busy, no result"
    assert await tb.read("MVM_COUNT") == 0 and tb.model.integration == integrations
    await tb.clear("STATUS", "timeout")

    # A calibration run.
    status = await tb.calibrate(("offset",), 2)
    assert status["done"] and status["error"], f"CAL_STATUS {status}"
    assert await tb.read("TIMEOUT_COUNT") == 2
    assert tb.model.integration == integrations
    await tb.clear("CAL_STATUS", "done", "error")

    # A programming run waiting on its first device read.
    targets = _program_targets(tb.chip, rng)
    await tb.start_program(ProgramParams())
    await tb.target_source.send(tb.target_frame(targets[0]))
    await ClockCycles(dut.clk, limit + 8 * cfg.out_beats + 40)
    assert await tb.read("PROG_STATUS") == ended_in_error
    assert await tb.read("TIMEOUT_COUNT") == 3 and await tb.read("PROG_READS") == 0
    await tb.clear("PROG_STATUS", "done", "error")

    # A programming run whose read goes through and whose pulse step then waits.
    tb.bridge.set_ready(True)
    await tb.start_program(ProgramParams())
    await tb.target_source.send(tb.target_frame(targets[0]))
    await RisingEdge(dut.ana__read_dev)
    tb.bridge.set_ready(False)
    await ClockCycles(dut.clk, limit + 200)
    assert await tb.read("PROG_STATUS") == ended_in_error
    assert await tb.read("PROG_READS") == 1 and await tb.read("PROG_STEPS") == 0
    assert tb.chip.pulse_steps == 0
    assert await tb.read("TIMEOUT_COUNT") == 4
    assert await tb.field("STATUS", "timeout") == 1
    await tb.clear("PROG_STATUS", "done", "error")
    await tb.clear("STATUS", "timeout")
    assert tb.sink.empty(), "a status packet of an abandoned row came out"
    coverage.hit("errors", "analogue_timeout")

    # Ready back within the timeout: the MVM waits, then runs and is right.
    tb.sent = (tb.model.integration + 1) // cfg.planes
    integrations = tb.model.integration
    collector = cocotb.start_soon(tb.collect(1))
    await tb.send(tb.random_vectors(1, rng)[0])
    await ClockCycles(dut.clk, limit // 2)
    assert tb.model.integration == integrations, "an integration started while not ready"
    tb.bridge.set_ready(True)
    await with_timeout(collector, 2 * tb.cycles_per_mvm_bound(), "ns")
    assert tb.scoreboard.matched == 1 and not tb.scoreboard.mismatches
    assert await tb.read("TIMEOUT_COUNT") == 4 and await tb.field("STATUS", "timeout") == 0


@cocotb.test()
async def malformed_vectors(dut):
    """A vector with TLAST early, one with TLAST late, one with an element out of range and
    one of a kind the tile has no hardware for are dropped whole and counted; the next
    vector is processed correctly."""
    tb = _setup(dut)
    cfg = tb.cfg
    await tb.start()
    await tb.enable()
    good = tb.random_vectors(2, np.random.default_rng(5))
    words = to_lanes(good[0], cfg)
    if cfg.in_beats > 1:
        await tb.send_words(words[:-cfg.lanes])           # one beat short
    await tb.send_words(words + words[:cfg.lanes])        # one beat long
    bad = good[0].copy()
    bad[cfg.rows // 2] = -(cfg.x_max + 1)                 # representable, but out of range
    await tb.send(bad, expect=False)
    # A kind this tile has no hardware for: a backward vector on an inference tile, the
    # unused code 3 on a training tile (a vector of the forward length either way).
    await tb.send_words(words, tuser=[3 if cfg.training else InputKind.BACKWARD.value]
                        * len(words))
    collector = cocotb.start_soon(tb.collect(2))
    for v in good:
        await tb.send(v)
    await with_timeout(collector, 4 * tb.cycles_per_mvm_bound() + 400, "ns")
    await tb.drain(tb.cycles_per_mvm_bound())
    assert tb.scoreboard.matched == 2 and not tb.scoreboard.mismatches
    assert tb.scoreboard.unexpected == 0
    assert await tb.read("DROP_FRAME") == (3 if cfg.in_beats > 1 else 2)
    assert await tb.read("DROP_RANGE") == 1
    for what in (("frame_long", "element_range", "frame_kind")
                 + (("frame_short",) if cfg.in_beats > 1 else ())):
        coverage.hit("errors", what)
    assert await tb.field("STATUS", "dropped") == 1
    await tb.clear("STATUS", "dropped")
    assert await tb.field("STATUS", "dropped") == 0


@cocotb.test()
async def saturation_flagged(dut):
    """Inputs and weights at full scale clamp every integrator and put every conversion at
    the top rail; a vector that clamps an integrator mid-window and ends inside the range
    is flagged too, though its code is not at a rail. Per column (COL_FLAGS), per MVM
    (RAIL_COUNT, CLIP_COUNT) and in STATUS, each as the model predicts; the results still
    equal the model's bit for bit."""
    tb = _setup(dut, full_scale_weights=True)
    cfg = tb.cfg
    await tb.start()
    await tb.enable()
    full = np.full(cfg.rows, cfg.x_max)
    x = np.stack([full, -full, np.zeros(cfg.rows, dtype=np.int64)])
    clipped = tb.state.saturation(x)
    assert clipped[:2].all() or cfg.input_mode == "bitserial"  # one cycle per plane
    await tb.stream(x)
    assert await tb.read("RAIL_COUNT") == 2
    assert await tb.read("CLIP_COUNT") == int(clipped.any(axis=1).sum())
    assert await tb.field("STATUS", "rail") == 1
    assert await tb.field("STATUS", "clip") == int(clipped.any())
    low, high, clip = ColFlag.LOW, ColFlag.HIGH, ColFlag.CLIP
    want = (low | high) | clip * clipped.any(axis=0)
    np.testing.assert_array_equal(await tb.read_window("COL_FLAGS"), want)
    for what in ("rail_low", "rail_high", "integrator_saturated"):
        coverage.hit("errors", what)
    # Writing 1s clears a column's bits, and only that column's; a write of 0s clears none.
    window = tb.windows["COL_FLAGS"]
    await tb.axil.write(window.address(0), bytes(4))
    await tb.axil.write(window.address(1), int(low | high | clip).to_bytes(4, "little"))
    want[1] = 0
    np.testing.assert_array_equal(await tb.read_window("COL_FLAGS"), want)
    await _clear_flags(tb)

    # An analogue half whose integrators clamp at the converter's full scale (swing 1):
    # vectors that clamp mid-window and end inside the range, found with the model.
    tight = tb.settings.model.replace(integrator={"swing": 1.0})
    chip = Chip(cfg, tight, seed=tb.chip.seed)
    chip.program(np.full((cfg.rows, cfg.cols), chip.w_max))
    tb.use_chip(chip)
    x = _clamping_vectors(tb, np.random.default_rng(4))
    for first, part in ((True, x[:1]), (False, x[1:])):
        got = tb.state.mvm(part, first_vector=tb.sent)
        clipped = tb.state.saturation(part)
        rails0, clips0 = await tb.read("RAIL_COUNT"), await tb.read("CLIP_COUNT")
        await tb.stream(part)
        flags = await tb.read_window("COL_FLAGS")
        np.testing.assert_array_equal((flags & clip) != 0, clipped.any(axis=0))
        assert await tb.read("CLIP_COUNT") - clips0 == int(clipped.any(axis=1).sum())
        if cfg.planes == 1:  # per-column rails from the codes (bit-serial sums hide them)
            half = 2 ** (cfg.adc_bits - 1)
            np.testing.assert_array_equal((flags & low) != 0, (got == -half).any(axis=0))
            np.testing.assert_array_equal((flags & high) != 0, (got == half - 1).any(axis=0))
            rails = ((got == -half) | (got == half - 1)).any(axis=1)
            assert await tb.read("RAIL_COUNT") - rails0 == int(rails.sum())
            if first:
                assert (flags == clip).any(), f"no clamp off the rails: flags {flags}"
        await _clear_flags(tb)


async def _clear_flags(tb):
    for c in range(tb.cfg.cols):
        await tb.axil.write(tb.windows["COL_FLAGS"].address(c),
                            int(~ColFlag(0)).to_bytes(4, "little"))
    assert not (await tb.read_window("COL_FLAGS")).any()


def _clamping_vectors(tb, rng, count: int = 6) -> np.ndarray:
    """Vectors that clamp integrators (weights all at +w_max): ``k`` rows at ``+d`` and the
    others at ``-x_max`` charge the integrators up for ``d`` cycles, past the limit, and
    back down after. The first clamps every column and (PWM) leaves the codes off the
    rails; random vectors follow."""
    cfg, x_max, state = tb.cfg, tb.cfg.x_max, tb.state
    half = 2 ** (cfg.adc_bits - 1)
    for k in range(cfg.rows - 1, 0, -1):
        for d in range(x_max, 0, -1):
            x = np.full((1, cfg.rows), -x_max)
            x[0, :k] = d
            clipped, codes = state.saturation(x)[0], state.mvm(x)[0]
            if clipped.all() and (cfg.planes > 1 or (np.abs(codes) < half - 1).all()):
                return np.concatenate([x, tb.random_vectors(count - 1, rng)])
    raise AssertionError("the model found no vector that clamps and ends inside the range")


def _errors(tb, x, results, good):
    return mvm_error(tb.state, x, results, good)


def _compare(got, want, what):
    for name in ("offset", "gain", "status"):
        a, b = getattr(got, name), getattr(want, name)
        bad = np.nonzero(a != b)[0]
        assert not bad.size, (f"{what}: {name} of columns {bad[:8].tolist()} differ from "
                              f"the golden algorithm: RTL {a[bad[:8]].tolist()}, golden "
                              f"{b[bad[:8]].tolist()}")


@cocotb.test()
async def calibration(dut):
    """The engine calibrates a chip it knows nothing about: offsets, gains and column flags
    equal the golden algorithm's bit for bit, and the MVM error falls."""
    tb = _setup(dut)
    cfg, settings = tb.cfg, tb.settings
    k = settings.cal_k
    n = settings.vector_count(16)
    await tb.start()
    await tb.set_correction(None)
    x = tb.random_vectors(n, settings.stimulus_rng(99))
    before = await tb.stream(x)
    start, t0 = tb.sent, get_sim_time("ns")
    status = await tb.calibrate(("offset", "gain"), k)
    cycles = int((get_sim_time("ns") - t0) / CLOCK_NS)
    golden = calibrate(tb.state, ("offset", "gain"), start, k)
    got = await tb.read_calibration()
    _compare(got, golden, "calibration")
    assert tb.sent - start == golden.mvms, "MVMs the engine used"
    assert status["done"] and not status["error"], f"CAL_STATUS {status}: done without error"
    assert await tb.read("BAD_COLS") == int(golden.bad.sum())
    assert status["bad"] == golden.bad.any()
    await tb.set_correction(got)
    after = await tb.stream(x)
    assert tb.scoreboard.matched == 2 * n and not tb.scoreboard.mismatches
    good = ~golden.bad
    stats = {"config": cfg.to_dict(), "vectors": n, "avg_log2": k,
             "offset": got.offset.tolist(), "gain": got.gain.tolist(),
             "status": got.status.tolist(), "bad_columns": np.nonzero(golden.bad)[0].tolist(),
             "coefficients_match": True, "calibration_mvms": golden.mvms,
             "calibration_cycles": cycles,
             "before": _errors(tb, x, before, good), "after": _errors(tb, x, after, good)}
    settings.write_stats("calibration", stats)
    dut._log.info("error before %.2f %% RMS (worst %.2f %%), after %.2f %% RMS (worst %.2f %%) "
                  "of full scale", stats["before"]["rms_percent"],
                  stats["before"]["worst_percent"], stats["after"]["rms_percent"],
                  stats["after"]["worst_percent"])


@cocotb.test()
async def drift_compensation(dut):
    """Calibrate and capture the drift reference after programming; one day and one month
    later, the error without and with the engine's drift compensation (DRIFT_SCALE equal to
    the golden algorithm's)."""
    tb = _setup(dut)
    k = tb.settings.cal_k
    n = tb.settings.vector_count(16)
    await tb.start()
    await tb.set_correction(None)
    start = tb.sent
    await tb.calibrate(("offset", "gain", "capture"), k)
    golden = calibrate(tb.state, ("offset", "gain", "capture"), start, k)
    got = await tb.read_calibration()
    _compare(got, golden, "calibration")
    assert got.drift_ref == golden.drift_ref and got.drift_scale == golden.drift_scale
    x = tb.random_vectors(n, np.random.default_rng(7))
    good = ~golden.bad
    await tb.set_correction(got)
    stats = {"config": tb.cfg.to_dict(), "vectors": n, "drift_ref": got.drift_ref,
             "at_programming": _errors(tb, x, await tb.stream(x), good)}
    for label, seconds in (("one_day", 86400.0), ("one_month", 30 * 86400.0)):
        tb.at_time(seconds)
        await tb.write("DRIFT_SCALE", ONE)
        got.drift_scale = ONE
        await tb.set_correction(got)
        without = _errors(tb, x, await tb.stream(x), good)
        start = tb.sent
        status = await tb.calibrate(("drift",), k)
        want = calibrate(tb.state, ("drift",), start, k, start=got)
        got.drift_scale = await tb.read("DRIFT_SCALE")
        assert not status["error"] and got.drift_scale == want.drift_scale, (
            f"{label}: DRIFT_SCALE {got.drift_scale:#x}, golden {want.drift_scale:#x}")
        await tb.set_correction(got)
        with_comp = _errors(tb, x, await tb.stream(x), good)
        stats[label] = {"without": without, "with": with_comp,
                        "drift_scale": got.drift_scale / ONE}
        dut._log.info("%s: error %.2f %% RMS without drift compensation, %.2f %% with "
                      "(scale %.4f)", label, without["rms_percent"], with_comp["rms_percent"],
                      got.drift_scale / ONE)
    assert tb.scoreboard.matched == 5 * n and not tb.scoreboard.mismatches
    tb.settings.write_stats("drift_compensation", stats)


@cocotb.test()
async def calibration_errors(dut):
    """Settings out of range are refused at the bus; measurements that cannot give a scale
    (overflow, no response) end the run with CAL_STATUS.error and change nothing; the
    coefficient windows refuse writes while the engine runs, partial writes, values wider
    than the window, and writes to the read-only flags."""
    tb = _setup(dut)
    cfg = tb.cfg
    await tb.start()
    await tb.set_correction(None, irq=True)
    before = await tb.read_calibration()
    ctrl = tb.regs["CAL_CTRL"]
    before_x = await tb.read("DRIFT_X")
    # Values outside their legal range never reach the engine: the write is refused whole
    # (no start), and BUS_ERROR says why and where.
    await tb.expect_refused("CAL_CTRL", ctrl.pack(start=1, phases=CalPhase.OFFSET, avg_log2=9),
                            "range", cover="cal_avg_range")
    await tb.expect_refused("DRIFT_X", cfg.x_max + 1, "range")
    await tb.expect_refused("DRIFT_X", tb.regs["DRIFT_X"].pack(value=-cfg.x_max - 1), "range")
    await ClockCycles(dut.clk, 10)
    assert await tb.read("CAL_STATUS") == 0, "a refused start ran the engine"
    # A drift measurement whose scale overflows Q2.14 ends with CAL_STATUS.error, changes
    # nothing, and raises the interrupt.
    assert int(dut.irq.value) == 0
    await tb.write("DRIFT_REF", 0xFFFFFFFF)
    await tb.write("DRIFT_X", cfg.x_max)
    status = await tb.calibrate(("drift",), 1)
    assert status["done"] and status["error"] and not status["busy"], f"CAL_STATUS {status}"
    assert await tb.read("DRIFT_SCALE") == before.drift_scale
    assert int(dut.irq.value) == 1
    coverage.hit("errors", "cal_drift_range")
    await tb.clear("CAL_STATUS", "done", "error")
    await ClockCycles(dut.clk, 2)
    assert int(dut.irq.value) == 0
    # A drift measurement with no response at all (an ideal analogue half, zero input):
    # the scale would divide by zero.
    tb.use_chip(Chip(cfg, "ideal", seed=1))
    await tb.write("DRIFT_X", 0)
    status = await tb.calibrate(("drift",), 1)
    assert status["done"] and status["error"], f"CAL_STATUS {status}"
    assert await tb.read("DRIFT_SCALE") == before.drift_scale
    coverage.hit("errors", "cal_zero_reference")
    await tb.clear("CAL_STATUS", "done", "error")
    await tb.write("DRIFT_X", before_x)
    await tb.write("DRIFT_REF", before.drift_ref)
    after = await tb.read_calibration()
    assert after.drift_ref == before.drift_ref and after.drift_scale == before.drift_scale
    np.testing.assert_array_equal(after.offset, before.offset)
    np.testing.assert_array_equal(after.gain, before.gain)
    # Window writes: whole words only, not while the engine runs, never to the flags.
    w = tb.windows["OFFSET"]
    await tb.expect_refused(w.address(1), b"\x05\x00", "window")
    await tb.expect_refused(tb.windows["COL_STATUS"].address(1), 0, "readonly")
    await tb.expect_refused(w.address(cfg.cols), 0, "decode")
    # A value wider than the window (not sign-extended, or above an unsigned width).
    await tb.expect_refused(w.address(2), 1 << w.width, "range")
    await tb.expect_refused(w.address(2), (-(1 << w.width)) & 0xFFFFFFFF, "range")
    g = tb.windows["GAIN"]
    await tb.expect_refused(g.address(0), 1 << g.width, "range")
    np.testing.assert_array_equal(await tb.read_window("OFFSET"), before.offset)
    np.testing.assert_array_equal(await tb.read_window("GAIN"), before.gain)
    await tb.start_calibration(("offset",), 8)
    await ClockCycles(dut.clk, 10)
    assert await tb.field("CAL_STATUS", "busy") == 1
    await tb.expect_refused(w.address(1), 7, "window", cover="window_locked")
    assert (await tb.read_window("OFFSET"))[1] == before.offset[1]
    # After the run, a whole-word write lands and reads back sign-extended.
    while await tb.field("CAL_STATUS", "busy"):
        await ClockCycles(dut.clk, 200)
    assert (await tb.axil.write(w.address(1), (-3 & 0xFFFFFFFF).to_bytes(4, "little"))).resp \
        == RESP_OKAY
    assert (await tb.read_window("OFFSET"))[1] == -3


def _program_targets(chip, rng) -> np.ndarray:
    """Random signed read-count targets over the whole range; a device stuck at one rail
    gets a target far from it, so that it cannot pass."""
    t_max = read_full_scale(chip.tile.adc_bits)
    t = rng.integers(-t_max, t_max + 1, size=(chip.tile.rows, chip.tile.cols))
    for r, c, side in np.argwhere(chip.stuck):
        far = t_max if chip.stuck[r, c, side] < 0 else 0
        t[r, c] = far if side == 0 else -far
    return t


@cocotb.test()
async def program_verify(dut):
    """The engine programs random targets into an erased chip. Its counters, every
    device's status and every conductance equal the golden algorithm's bit for bit; every
    device it passes is within tolerance in the model; stuck devices fail; the MVMs that
    follow use the programmed weights."""
    tb = _setup(dut, erased=True)
    cfg, settings = tb.cfg, tb.settings
    twin = settings.chip()
    params = settings.program
    if settings.targets is not None:
        targets = np.load(settings.targets)
    else:
        targets = _program_targets(tb.chip, settings.stimulus_rng())
    await tb.start()
    cal = None
    if params.correct:
        # Calibrate first: the engine's reads are then corrected for column offset and gain.
        k = settings.cal_k
        cal_status = await tb.calibrate(("offset", "gain"), k)
        cal = calibrate(tb.state, ("offset", "gain"), 0, k)
        _compare(await tb.read_calibration(), cal, "calibration")
        assert not cal_status["error"], f"CAL_STATUS {cal_status}"
    wall0 = time.perf_counter()
    got, status = await tb.program(targets, params)
    wall = time.perf_counter() - wall0
    want = program_and_verify(twin, targets, params, calibration=cal)
    for name, value in want.counters().items():
        assert got[name] == value, (f"PROG_{name.upper()}: RTL {got[name]}, golden {value} "
                                    f"(RTL {got}, golden {want.counters()})")
    bad = np.argwhere(status != want.status)
    assert not bad.size, f"status of devices {bad[:8].tolist()} differs from the golden run"
    assert np.array_equal(tb.chip.g_prog, twin.g_prog), "conductances differ from golden"
    prog_status = tb.regs["PROG_STATUS"].unpack(got["status"])
    assert prog_status["done"] and not prog_status["error"], f"PROG_STATUS {prog_status}"
    devices = 2 * cfg.rows * cfg.cols
    assert got["passed"] + got["failed"] == devices
    fig = report(tb.chip, targets, status, params.tol, calibration=cal)
    assert fig["passed_outside_tol"] == 0, f"{fig['passed_outside_tol']} passed devices " \
        "are outside the tolerance in the model"
    for r, c, side in np.argwhere(tb.chip.stuck):
        flags = DeviceStatus(int(status[r, c]))
        assert DeviceStatus.stuck(side) in flags and DeviceStatus.passed(side) not in flags, \
            f"stuck device {(r, c, side)} status {flags!r}"
    assert got["stuck"] >= int(np.count_nonzero(tb.chip.stuck))
    # MVMs now see the programmed conductances.
    n = settings.vector_count(4)
    await tb.enable()
    await tb.stream(tb.random_vectors(n, np.random.default_rng(5)))
    assert tb.scoreboard.matched == n and not tb.scoreboard.mismatches
    fig.update(got, config=cfg.to_dict(), params=dataclasses.asdict(params),
               pulses_per_device=got["pulses"] / devices, wall_seconds=wall,
               iterations_max=int(want.iterations.max(initial=0)))
    settings.write_stats("program_verify", fig)
    dut._log.info("programmed %d devices: yield %.2f %%, weight error %.2f %% of w_max RMS, "
                  "%.2f pulses per device, %d cycles (%.1f s)", devices, 100 * fig["yield"],
                  fig["weight_error_sigma"], fig["pulses_per_device"], got["cycles"], wall)


@cocotb.test()
async def program_errors(dut):
    """Zero iterations or pulse width never reach the engine (the register file refuses
    them); runs that cannot proceed end at once with PROG_STATUS.error and the interrupt: a
    start while the calibration engine runs, a target packet shorter than a row; a
    calibration started while the engine runs is refused with CAL_STATUS.error."""
    _skip_unless_it_applies("program_errors")
    tb = _setup(dut, erased=True)
    cfg = tb.cfg
    await tb.start()
    await tb.enable(irq=True)
    ended_in_error = tb.regs["PROG_STATUS"].pack(done=1, error=1)
    limits, prog_ctrl = tb.regs["PROG_LIMITS"], tb.regs["PROG_CTRL"]
    assert await tb.read("PROG_LIMITS") == limits.reset_value
    for bad in ({"iterations": 0}, {"width": 0}):
        fields = {"tol": 5, "iterations": 30, "width": 8, **bad}
        await tb.expect_refused("PROG_LIMITS", limits.pack(**fields), "range")
    # A start while the calibration engine runs.
    await tb.start_calibration(("offset",), 6)
    await ClockCycles(dut.clk, 10)
    assert await tb.field("CAL_STATUS", "busy") == 1
    await tb.write("PROG_CTRL", prog_ctrl.pack(start=1))
    await ClockCycles(dut.clk, 5)
    status = await tb.read("PROG_STATUS")
    assert status == ended_in_error, f"start during calibration: PROG_STATUS {status:#x}"
    assert int(dut.irq.value) == 1
    coverage.hit("errors", "prog_while_calibrating")
    await tb.clear("PROG_STATUS", "done", "error")
    while await tb.field("CAL_STATUS", "busy"):
        await ClockCycles(dut.clk, 100)
    await tb.clear("CAL_STATUS", "done", "error")
    await ClockCycles(dut.clk, 2)
    assert int(dut.irq.value) == 0
    await tb.write("PROG_LIMITS", limits.reset_value)
    await tb.write("PROG_CTRL", prog_ctrl.pack(start=1))
    await ClockCycles(dut.clk, 10)
    assert await tb.field("PROG_STATUS", "busy") == 1
    await tb.start_calibration(("offset",), 0)
    await ClockCycles(dut.clk, 5)
    assert await tb.field("CAL_STATUS", "error"), "calibration start during programming"
    assert await tb.field("CAL_STATUS", "busy") == 0
    coverage.hit("errors", "cal_while_programming")
    short = (cfg.out_beats - 1) * cfg.lanes
    await tb.target_source.send(AxiStreamFrame([1] * short))
    await ClockCycles(dut.clk, 4 * short + 20)
    status = await tb.read("PROG_STATUS")
    assert status == ended_in_error, f"short target packet: PROG_STATUS {status:#x}"
    coverage.hit("errors", "prog_target_length")
    assert tb.sink.empty(), "no status packet for an aborted row"
    assert tb.chip.pulse_steps == 0 and await tb.read("PROG_READS") == 0


async def _cut_short(tb, what: str):
    """Reset the tile while ``what`` (a field of ABORTED) runs: ABORTED says so through the
    reset, and clears."""
    await tb.hard_reset()
    assert await tb.read("ABORTED") == tb.regs["ABORTED"].pack(**{what: 1}), f"{what} not flagged"
    await tb.clear("ABORTED", what)
    coverage.hit("errors", f"reset_{what}")


@cocotb.test()
async def reset_recovery(dut):
    """A reset in the middle of an MVM, of a calibration and of a programming run: ABORTED
    says which was cut short (through the reset), no stale result comes out, and the next
    operation of each kind equals the golden model."""
    _skip_unless_it_applies("reset_recovery")
    tb = _setup(dut, erased=True)
    rng = np.random.default_rng(3)
    await tb.start()

    # An MVM in its drive window.
    await tb.enable()
    await tb.send(tb.random_vectors(1, rng)[0], expect=False)
    await ClockCycles(dut.clk, 30)
    assert await tb.field("STATUS", "busy") == 1
    await _cut_short(tb, "mvm")
    assert await tb.read("ABORTED") == 0
    await tb.drain(2 * tb.cycles_per_mvm_bound())
    assert tb.scoreboard.unexpected == 0, "a result of the aborted MVM came out"
    await tb.enable()
    await tb.stream(tb.random_vectors(4, rng))

    # A calibration run, then a whole one.
    await tb.start_calibration(("offset", "gain"), 4)
    await ClockCycles(dut.clk, 800)
    assert await tb.field("CAL_STATUS", "busy") == 1
    await _cut_short(tb, "cal")
    start = tb.sent
    status = await tb.calibrate(("offset", "gain"), 4)
    assert status["done"] and not status["error"], f"CAL_STATUS {status}"
    _compare(await tb.read_calibration(), calibrate(tb.state, ("offset", "gain"), start, 4),
             "calibration after a reset")

    # A programming run, then a whole one (from the devices the cut run left).
    targets = _program_targets(tb.chip, rng)
    params = ProgramParams()
    run = cocotb.start_soon(tb.program(targets, params))
    await ClockCycles(dut.clk, 3000)
    assert await tb.field("PROG_STATUS", "busy") == 1
    run.cancel()
    await _cut_short(tb, "prog")
    twin = copy.deepcopy(tb.chip)
    first_read = tb.model.reads
    got, status = await tb.program(targets, params)
    want = program_and_verify(twin, targets, params, first_read=first_read)
    assert {n: got[n] for n in want.counters()} == want.counters()
    assert np.array_equal(status, want.status) and np.array_equal(tb.chip.g_prog, twin.g_prog)
    await tb.enable()
    await tb.stream(tb.random_vectors(4, rng))
    assert not tb.scoreboard.mismatches and tb.scoreboard.unexpected == 0
    assert await tb.read("ABORTED") == 0


@cocotb.test()
async def engines_wait_for_results_in_flight(dut):
    """A calibration or programming run started while host results wait in the pipeline
    (the host is not reading m_axis): the results still leave on m_axis, complete and bit
    for bit, and the run then equals its golden run."""
    tb = _setup(dut, erased=True)
    cfg = tb.cfg
    twin = tb.settings.chip()
    rng = np.random.default_rng(4)
    await tb.start()
    await tb.enable()
    for engine in ("cal", "prog"):
        tb.sink.pause = True
        x = tb.random_vectors(2, rng)
        for v in x:
            await tb.send(v)
        await ClockCycles(dut.clk, 3 * tb.cycles_per_mvm_bound())  # both MVMs converted
        assert await tb.read("MVM_COUNT") >= 1 and tb.sink.empty()
        if engine == "cal":
            start = tb.sent
            await tb.start_calibration(("offset", "gain"), 3)
        else:
            targets = _program_targets(tb.chip, rng)
            await tb.start_program(ProgramParams())
        await ClockCycles(dut.clk, 50)
        tb.sink.pause = False
        await with_timeout(tb.collect(2), 4 * tb.cycles_per_mvm_bound(), "ns")
        assert tb.scoreboard.matched == (2 if engine == "cal" else 4)
        assert not tb.scoreboard.mismatches
        if engine == "cal":
            while await tb.field("CAL_STATUS", "busy"):
                await ClockCycles(dut.clk, 100)
            tb.sent = (tb.model.integration + 1) // cfg.planes
            _compare(await tb.read_calibration(),
                     calibrate(tb.state, ("offset", "gain"), start, 3), "calibration")
        else:
            got, status = await tb.program(targets, ProgramParams(), start=False)
            want = program_and_verify(twin, targets, ProgramParams())
            assert {n: got[n] for n in want.counters()} == want.counters()
            assert np.array_equal(status, want.status)
    assert tb.scoreboard.unexpected == 0
