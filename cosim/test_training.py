"""cocotb tests of the training hardware (tiles generated with ``TileConfig.training``):
backward MVMs and pulsed updates, with the crossbar model in the loop.

Run through :func:`aimc.cosim.runner.run` like :mod:`aimc.cosim.test_tile`, whose bench
they share. The update test needs a chip with pulsed devices (a training preset:
``gokmen-vlasov``, ``reram-sb``, ``ecram``); the golden update runs on a second chip built
from the same settings, so that the RTL's pulses and the golden model's meet only in the
comparison.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, with_timeout

from ..enums import InputKind, ResultKind, UpdateMode
from ..fixedpoint import ONE
from ..model.calibration import Calibration
from ..model.update import UpdateEngine
from ..rtl.update import update_cycles
from ..training import BL_MAX, ETA_FRAC, PROB_BITS, SCALE_FRAC
from . import coverage
from .bench import TileBench, to_lanes
from .settings import CosimSettings


def _setup(dut) -> TileBench:
    settings = CosimSettings.from_env()
    if not settings.tile.training:
        raise ValueError(f"the tests of {__name__} need a training tile "
                         f"(TileConfig.training), not {settings.tile.key}")
    return TileBench(dut, settings)


@cocotb.test()
async def backward_mvm(dut):
    """Backward MVMs (the vector drives the columns, the rows are converted) interleaved with
    forward ones under random stalls on both streams: every result arrives in order, marked
    with its kind on TUSER, bit for bit the batch model's (with device and converter noise
    when the run's model has them); raw, then corrected with row coefficients loaded through
    ROW_OFFSET/ROW_GAIN. Back to back, the period and latency the RTL measures equal
    TileConfig.bwd_period_cycles. Vectors of the wrong length for their kind, or with a
    TUSER that names no kind or changes within the frame, are dropped whole."""
    tb = _setup(dut)
    cfg, settings = tb.cfg, tb.settings
    n = settings.vector_count(24)
    rng = settings.stimulus_rng(11)
    await tb.start()
    await tb.enable()
    tb.backpressure(*settings.stalls)

    kinds = [InputKind.BACKWARD if k else InputKind.FORWARD for k in rng.integers(0, 2, n)]
    kinds[0] = InputKind.BACKWARD
    x = tb.random_vectors(n, rng)
    d = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(n, cfg.cols))
    collector = cocotb.start_soon(tb.collect(n))
    for k, xv, dv in zip(kinds, x, d, strict=True):
        await tb.send(dv if k == InputKind.BACKWARD else xv, kind=k)
    await with_timeout(collector, n * tb.cycles_per_mvm_bound() * 4 + 500, "ns")
    sb = tb.scoreboard
    assert not sb.mismatches and sb.matched == n, f"{len(sb.mismatches)} of {n} differ"
    backward = sum(k == InputKind.BACKWARD for k in kinds)
    assert await tb.read("BWD_COUNT") == backward
    assert await tb.read("MVM_COUNT") == n - backward
    assert tb.model.back_integration + 1 == backward * cfg.planes
    coverage.hit("mode.mvm", "backward")

    # Back to back, corrected with the rows' own coefficients.
    tb.backpressure(0, 0)
    row_cal = Calibration.reset(cfg.rows)
    row_cal.offset[:] = np.arange(cfg.rows) * 4 - 12
    row_cal.gain[:] = ONE + 250 * (np.arange(cfg.rows) % 7) - 700
    await tb.write_coefficients(row_cal.offset, row_cal.gain, rows=True)
    await tb.set_correction(Calibration.reset(cfg.cols))
    d = rng.integers(-cfg.x_max, cfg.x_max + 1, size=(4, cfg.cols))
    collector = cocotb.start_soon(tb.collect(4))
    for v in d:
        await tb.send(v, kind=InputKind.BACKWARD)
    await with_timeout(collector, 8 * tb.cycles_per_mvm_bound(), "ns")
    assert not sb.mismatches and sb.matched == n + 4
    raw = tb.state.backward(d, first_vector=tb.sent_backward - 4)
    assert np.any(tb.fmt.correct(raw, row_cal.offset, row_cal.gain)[0]
                  != tb.fmt.uncorrected(raw)), "the row correction changed nothing"
    period, latency = await tb.read("BWD_PERIOD"), await tb.read("BWD_LATENCY")
    dut._log.info("backward period %d, latency %d (forward %d); analogue minimum %d",
                  period, latency, cfg.mvm_period_cycles, cfg.bwd_analogue_min_cycles)
    assert period == cfg.bwd_period_cycles, f"period {period}, expected {cfg.bwd_period_cycles}"
    assert latency == cfg.bwd_period_cycles
    settings.write_stats("backward_mvm", {"backward_period_cycles": period,
                                          "backward_latency_cycles": latency,
                                          "forward_period_cycles": cfg.mvm_period_cycles,
                                          "vectors": n + 4, "matched": sb.matched})

    # Malformed: a TUSER of no kind, a TUSER that changes, a backward vector of a forward
    # vector's length (when those differ). Each is dropped whole; the next one is right.
    drops = await tb.read("DROP_FRAME")
    words = to_lanes(d[0], cfg)
    await tb.send_words(words, tuser=[3] * len(words))
    if len(words) > cfg.lanes:
        # (cocotbext-axi takes a beat's TUSER from its last lane)
        await tb.send_words(words, tuser=[1] * cfg.lanes + [0] * (len(words) - cfg.lanes))
    expected_drops = 1 + (len(words) > cfg.lanes)
    if cfg.in_beats != cfg.out_beats:
        await tb.send_words(to_lanes(x[0], cfg), tuser=[1] * len(to_lanes(x[0], cfg)))
        expected_drops += 1
    collector = cocotb.start_soon(tb.collect(1))
    await tb.send(d[1], kind=InputKind.BACKWARD)
    await with_timeout(collector, 4 * tb.cycles_per_mvm_bound() + 200, "ns")
    await tb.drain(tb.cycles_per_mvm_bound())
    assert not sb.mismatches and sb.unexpected == 0 and sb.matched == n + 5
    assert await tb.read("DROP_FRAME") - drops == expected_drops
    coverage.hit("errors", "frame_kind")


async def _finish_update(tb: TileBench, bound: int) -> dict:
    """Wait (polling UPD_STATUS, at most ``bound`` cycles) for the next update to end;
    returns UPD_STATUS as it was and clears its sticky bits."""
    waited = 0
    while True:
        status = await tb.fields("UPD_STATUS")
        if status["done"]:
            await tb.clear("UPD_STATUS", "done", "error")
            return status
        assert waited < bound, f"no update ended within {bound} cycles"
        await ClockCycles(tb.dut.clk, 16)
        waited += 16 + 8  # the poll itself takes a few cycles


def _plan(rng: np.random.Generator, cfg, n: int) -> list[dict]:
    """``n`` updates of every kind: stochastic and deterministic, managed (learning rates
    for 0.5 to 40 slots at full-scale inputs, under caps of 1 to 64) and unmanaged (1 to 40
    slots, probabilities up to 1.3 at full scale: some saturate), 16 bits of probability
    or fewer, a reseed now and then, and each with a backward MVM before it or not."""
    steps = []
    for i in range(n):
        s = {"deterministic": bool(i % 3 == 1), "manage": bool(i % 2 == 0),
             "k": int(rng.choice([PROB_BITS, PROB_BITS, PROB_BITS, 9, 4, 1])),
             "reseed": int(rng.integers(0, 2**32)) if i % 7 == 3 else None,
             "backward": bool(rng.integers(0, 2))}
        if s["manage"]:
            slots = rng.uniform(0.5, 40)
            s["eta"] = min(int(slots * 2**ETA_FRAC / cfg.x_max**2), 2**32 - 1)
            s["bl_max"] = int(rng.integers(1, 65))
        else:
            s["bl"] = int(rng.integers(1, 41))
            s["scale_x"] = int(rng.uniform(0, 1.3) * 2**(PROB_BITS + SCALE_FRAC) / cfg.x_max)
            s["scale_d"] = int(rng.uniform(0, 1.3) * 2**(PROB_BITS + SCALE_FRAC) / cfg.x_max)
        steps.append(s)
    steps[-1].update(manage=True, eta=1 << ETA_FRAC, bl_max=BL_MAX, zero_d=True)
    return steps


@cocotb.test()
async def pulsed_update(dut):
    """Training steps on the tile: a forward MVM, perhaps a backward one, then a pulsed
    update from an UPDATE vector (its d) and the forward input the row driver holds. Every
    update is checked against the golden update engine (aimc.model.update) run on a twin
    chip: the counters (UPD_COUNT, UPD_UP, UPD_DOWN), UPD_LAST and UPD_CYCLES (slots plus
    the constant of rtl.update.update_cycles), and after each update every pulsed device's
    weight, bit for bit; the forward and backward results that follow see the updated
    conductances. Stochastic and deterministic, managed and not, k < 16, reseeds, a managed
    update of a zero vector (no slot), and first of all an update with no forward input,
    which is refused (UPD_STATUS.error) without a pulse."""
    tb = _setup(dut)
    cfg, settings, chip = tb.cfg, tb.settings, tb.chip
    assert chip.training is not None, (
        f"pulsed_update needs pulsed devices: a training model preset (gokmen-vlasov, "
        f"reram-sb, ecram), not {chip.config.name!r}")
    twin = settings.chip()  # the same chip again: the golden update runs on it
    assert np.array_equal(twin.training.w, chip.training.w)
    golden = UpdateEngine(cfg, seed=tb.regs["UPD_SEED"].fields[0].reset)
    rng = settings.stimulus_rng(17)
    steps = _plan(rng, cfg, settings.vector_count(24))
    await tb.start()
    await tb.enable()
    tb.backpressure(*settings.stalls)
    ctrl = tb.regs["UPD_CTRL"]
    bound = 4 * (BL_MAX + 200) + 8 * tb.cycles_per_mvm_bound()

    # An update before any forward input: refused, nothing pulsed, not counted.
    await tb.send(rng.integers(-cfg.x_max, cfg.x_max + 1, cfg.cols), kind=InputKind.UPDATE)
    status = await _finish_update(tb, bound)
    assert status["error"] == 1
    assert await tb.read("UPD_COUNT") == 0 and chip.update_slots == 0
    assert await tb.read("UPD_CYCLES") == update_cycles(cfg, 0, True, ran=False)
    coverage.hit("errors", "update_without_forward")

    up = down = slots = 0
    results = sum(1 + s["backward"] for s in steps)
    collector = cocotb.start_soon(tb.collect(results))
    for i, s in enumerate(steps):
        if s["reseed"] is not None:
            await tb.write("UPD_SEED", s["reseed"])
            golden.reseed(s["reseed"])
        await tb.write("UPD_CTRL", ctrl.pack(
            reseed=int(s["reseed"] is not None), manage=int(s["manage"]), k=s["k"],
            mode=UpdateMode.DETERMINISTIC if s["deterministic"] else UpdateMode.STOCHASTIC))
        if s["manage"]:
            await tb.write("UPD_ETA", s["eta"])
            await tb.write("UPD_BL", s["bl_max"])
        else:
            for name in ("bl", "scale_x", "scale_d"):
                await tb.write("UPD_" + name.upper(), s[name])
        x = tb.random_vectors(1, rng)[0]
        d = rng.integers(-cfg.x_max, cfg.x_max + 1, cfg.cols)
        if s.get("zero_d"):
            d[:] = 0
        await tb.send(x)
        if s["backward"]:
            await tb.send(d, kind=InputKind.BACKWARD)
        await tb.send(d, kind=InputKind.UPDATE)
        mode = dict(k=s["k"], deterministic=s["deterministic"])
        if s["manage"]:
            want = golden.update_managed(twin, x, d, eta=s["eta"], bl_max=s["bl_max"], **mode)
        else:
            want = golden.update(twin, x, d, bl=s["bl"], scale_x=s["scale_x"],
                                 scale_d=s["scale_d"], **mode)
        status = await _finish_update(tb, bound)
        up, down, slots = up + want.up, down + want.down, slots + want.slots
        last = await tb.fields("UPD_LAST")
        got = {"error": status["error"], "count": await tb.read("UPD_COUNT"),
               "up": await tb.read("UPD_UP"), "down": await tb.read("UPD_DOWN"),
               "slots": last["slots"], "x_max": last["x_max"], "d_max": last["d_max"],
               "cycles": await tb.read("UPD_CYCLES")}
        expected = {"error": 0, "count": i + 1, "up": up, "down": down, "slots": want.slots,
                    "x_max": int(np.abs(x).max()), "d_max": int(np.abs(d).max()),
                    "cycles": update_cycles(cfg, want.slots, s["manage"])}
        assert got == expected, f"update {i} ({s}): RTL {got}, golden {expected}"
        assert (chip.update_up, chip.update_down) == (up, down)
        differ = int(np.count_nonzero(chip.training.w != twin.training.w))
        assert differ == 0, f"update {i}: {differ} devices differ from the golden update's"
        tb.state = twin.state(settings.time)  # the next results see the updated devices
        coverage.hit("mode.update", "deterministic" if s["deterministic"] else "stochastic")
        coverage.hit("mode.update", "managed" if s["manage"] else "unmanaged")
    await with_timeout(collector, results * 4 * tb.cycles_per_mvm_bound() + 1000, "ns")
    await tb.drain(tb.cycles_per_mvm_bound())
    sb = tb.scoreboard
    assert not sb.mismatches and sb.unexpected == 0 and sb.matched == results
    moved = int(np.count_nonzero(chip.training.w != chip.training.w_ref))
    assert moved > 0 and up > 0 and down > 0, "the updates changed nothing"
    settings.write_stats("pulsed_update", {
        "updates": len(steps), "slots": slots, "pulses_up": up, "pulses_down": down,
        "devices_moved": moved, "results_matched": sb.matched,
        # UPD_CYCLES = slots + these constants (checked on every update above)
        "unmanaged_constant_cycles": update_cycles(cfg, 0, False),
        "managed_constant_cycles": update_cycles(cfg, 1, True) - 1,
    })


async def _results_in(tb: TileBench, bound: int) -> None:
    """Wait (at most ``bound`` cycles) until every expected result has arrived."""
    waited = 0
    while tb.scoreboard.expected:
        assert waited < bound, f"{len(tb.scoreboard.expected)} results outstanding"
        await ClockCycles(tb.dut.clk, 32)
        waited += 32


@cocotb.test()
async def train_replay(dut):
    """One tile's recorded training operations (``aimc train --cosim``, the settings'
    ``replay``): forward and backward MVMs, the offset coefficients, gradient and transfer
    updates with their register values, in order, from the recorded initial device states.
    Every result must equal the batch path's recorded one, and after every update the
    update counters and every device's weight the recorded ones, bit for bit."""
    from ..fixedpoint import ONE
    from ..model import Chip
    from ..train_tile import COEFFICIENTS, REG_ORDER

    settings = CosimSettings.from_env()
    cfg = settings.tile
    assert settings.replay is not None, "train_replay needs the settings' replay file"
    rec = np.load(settings.replay)
    chip = Chip(cfg, settings.model, seed=settings.chip_seed)
    chip.set_training_state(rec["initial"])
    tb = TileBench(dut, settings, chip)
    await tb.start()
    await tb.enable()
    tb.backpressure(*settings.stalls)
    sb, ctrl = tb.scoreboard, tb.regs["UPD_CTRL"]
    kinds, vectors, results = rec["kinds"], rec["vectors"], rec["results"]
    n_results = int(np.count_nonzero((kinds == InputKind.FORWARD.value)
                                     | (kinds == InputKind.BACKWARD.value)))
    collector = cocotb.start_soon(tb.collect(n_results))
    written, updates, compared = None, 0, 0
    bound = 4 * (BL_MAX + 200) + 8 * tb.cycles_per_mvm_bound()
    for i, kind in enumerate(kinds):
        if kind == COEFFICIENTS:
            # The offsets the host measured; gains 1; correction on for both directions,
            # once the raw results before are out.
            await _results_in(tb, 100 * bound)
            await tb.write_coefficients(rec["col_offset"], np.full(cfg.cols, ONE))
            await tb.write_coefficients(rec["row_offset"], np.full(cfg.rows, ONE), rows=True)
            await tb.set_correction(Calibration(rec["col_offset"], np.full(cfg.cols, ONE),
                                                np.zeros(cfg.cols, dtype=np.int64)))
            continue
        kind = InputKind(int(kind))
        if kind == InputKind.UPDATE:
            regs = dict(zip(REG_ORDER, (int(v) for v in rec["regs"][i]), strict=True))
            if regs != written:
                await tb.write("UPD_CTRL", ctrl.pack(manage=regs["manage"], k=regs["k"],
                                                     mode=UpdateMode(regs["mode"])))
                for name in ("eta", "bl", "scale_x", "scale_d"):
                    await tb.write("UPD_" + name.upper(), regs[name])
                written = regs
            # The results before it first (the update waits behind them in the tile).
            await _results_in(tb, 100 * bound)
            await tb.send(vectors[i, :cfg.cols], kind=kind)
            await _finish_update(tb, bound)
            slots, up, down = (int(v) for v in rec["counts"][i])
            got = (await tb.field("UPD_LAST", "slots"), await tb.read("UPD_COUNT"))
            assert got == (slots, updates + 1), f"operation {i}: UPD_LAST/UPD_COUNT {got}"
            want = rec["weights"][updates]
            differ = int(np.count_nonzero(chip.training.w != want))
            assert differ == 0, f"operation {i} (update {updates}): {differ} devices differ"
            updates += 1
            compared += want.size
            continue
        length = cfg.rows if kind == InputKind.FORWARD else cfg.cols
        out = cfg.cols if kind == InputKind.FORWARD else cfg.rows
        sb.expect(results[i, :out], ResultKind.BACKWARD if kind == InputKind.BACKWARD
                  else ResultKind.FORWARD)
        await tb.send(vectors[i, :length], expect=False, kind=kind)
    await with_timeout(collector, n_results * 4 * tb.cycles_per_mvm_bound() + 1000, "ns")
    await tb.drain(tb.cycles_per_mvm_bound())
    assert not sb.mismatches and sb.unexpected == 0 and sb.matched == n_results, (
        f"{len(sb.mismatches)} of {n_results} results differ from the batch path's")
    settings.write_stats("train_replay", {
        "operations": len(kinds), "results_matched": sb.matched, "updates_matched": updates,
        "device_weights_compared": compared,
        "up": await tb.read("UPD_UP"), "down": await tb.read("UPD_DOWN")})
