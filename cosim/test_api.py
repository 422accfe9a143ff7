"""cocotb tests behind the public Python API: a block of a network replayed on the RTL
(``TiledNetwork.forward(..., backend="cosim")``), and the drift reference on sparse blocks.

``network_replay`` reads the plan of :mod:`aimc.cosim.replay` from the run's settings
(``CosimSettings.plan``): it writes the block's drift reference into the registers, replays
the block's history (programming, calibration-engine runs at their recorded MVM numbers and
moments, each compared with the golden coefficients the batch path computed; host writes),
then streams the batch and writes its results. Every result is checked bit for bit against
the batch model as it streams, and against the results the batch path gave.

``drift_reference`` programs blocks that use 3 %, 25 % and 100 % of the tile, captures each
block's reference after programming and compensates drift a day later with the engine, with
the registers at reset and with the block's own reference
(:meth:`~aimc.model.DriftReference.for_weights`): DRIFT_REF, DRIFT_SCALE and the CAL_STATUS
flags equal the golden algorithm's; it writes the scales and the true ones to the stats file.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from ..enums import DriftRow
from ..fixedpoint import ONE
from ..model import Calibration, DriftReference, calibrate, true_drift_scale
from ..model.calibration import drift_min_default
from ..model.program import ProgramParams
from .bench import TileBench
from .replay import read_plan
from .settings import CosimSettings

DAY = 86400.0


async def write_reference(tb: TileBench, ref: DriftReference) -> None:
    """Load a drift reference into DRIFT_X, DRIFT_ROWS, DRIFT_COLS and DRIFT_MIN (only the
    window words that differ from their reset values, then those that must go back)."""
    await tb.write("DRIFT_X", tb.regs["DRIFT_X"].pack(value=int(ref.x)))
    await tb.write("DRIFT_MIN", int(ref.min_sum))
    rows, cols = tb.windows["DRIFT_ROWS"], tb.windows["DRIFT_COLS"]
    drive = {1: int(DriftRow.DRIVE), -1: int(DriftRow.DRIVE | DriftRow.NEGATE), 0: 0}
    current = getattr(tb, "_drift_words", None) or (
        [int(DriftRow.DRIVE)] * tb.cfg.rows, [1] * tb.cfg.cols)
    want = ([drive[int(s)] for s in ref.rows], [int(c) for c in ref.cols])
    for win, old, new in ((rows, current[0], want[0]), (cols, current[1], want[1])):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                await tb.axil.write(win.address(i), b.to_bytes(4, "little"))
    tb._drift_words = want


def jump(tb: TileBench, vector: int) -> None:
    """Number the next MVM ``vector``: the MVMs the host read between two engine runs, which
    the replay does not stream, are skipped (nothing is in flight here)."""
    assert vector >= tb.sent, f"MVM {vector} of the plan is behind the RTL's {tb.sent}"
    tb.model.integration = vector * tb.cfg.planes - 1
    tb.sent = vector


async def engine_run(tb: TileBench, phases, k: int, want: dict | None = None) -> dict:
    """Run the calibration engine on ``phases``; compare what it left with ``want`` (the
    golden algorithm's coefficients and flags); clear CAL_STATUS. Returns CAL_STATUS."""
    status = await tb.calibrate(phases, k)
    assert status["done"] and not status["busy"], f"CAL_STATUS {status}"
    got = await tb.read_calibration()
    if want is not None:
        if {"offset", "gain"} & set(phases):
            assert np.array_equal(got.offset, want["offset"]), "OFFSET differs from golden"
            assert np.array_equal(got.gain, want["gain"]), "GAIN differs from golden"
            assert np.array_equal(got.status, want["status"]), "COL_STATUS differs"
        assert got.drift_ref == want["drift_ref"], (got.drift_ref, want["drift_ref"])
        assert got.drift_scale == want["drift_scale"], (got.drift_scale, want["drift_scale"])
        assert bool(status["error"]) == want["error"], (status, want["error"])
        assert bool(status["weak"]) == want["weak"], (status, want["weak"])
    await tb.clear("CAL_STATUS", "done", "error", "weak")
    return status


@cocotb.test()
async def network_replay(dut):
    settings = CosimSettings.from_env()
    assert settings.plan is not None, "the settings carry no replay plan"
    plan = read_plan(settings.plan)
    tb = TileBench(dut, settings)
    cfg = tb.cfg
    await tb.start()
    await tb.enable()
    ref = DriftReference(cfg, int(plan["ref_x"]), plan["ref_rows"], plan["ref_cols"] != 0,
                         int(plan["ref_min"]))
    await write_reference(tb, ref)
    for op in plan["ops"]:
        kind = op["op"]
        if "time" in op and op["time"] != tb.state.moment[0]:
            tb.at_time(op["time"])
        if kind == "direct":
            tb.chip.program(op["weights"])
            tb.at_time(tb.state.moment[0])
        elif kind == "calibrate":
            jump(tb, op["vector"])
            await engine_run(tb, op["phases"], op["k"], op["result"])
        elif kind == "verify":
            params = ProgramParams(**op["params"])
            assert tb.model.reads == op["first_read"], (tb.model.reads, op["first_read"])
            counters, _ = await tb.program(plan["targets"], params)
            want = op["counters"]
            assert {n: counters[n] for n in want} == want, (counters, want)
        elif kind == "load":
            await tb.write_coefficients(op["offset"], op["gain"])
        elif kind == "scale":
            await tb.write("DRIFT_SCALE", int(op["value"]))
        else:
            raise AssertionError(f"unknown operation {kind!r} in the plan")
    if plan["time"] != tb.state.moment[0]:
        tb.at_time(plan["time"])
    jump(tb, plan["first"])
    if plan["correct"]:
        await tb.set_correction(await tb.read_calibration())
    else:
        await tb.set_correction(None)
    got = await tb.stream(plan["x"])
    assert not tb.scoreboard.mismatches and not tb.scoreboard.missing
    assert np.array_equal(got, plan["expect"]), "the RTL's results differ from the batch path"
    np.save(settings.plan.with_name("results.npy"), got)
    settings.write_stats("network_replay", {"mvms_checked": tb.scoreboard.matched,
                                            "engine_mvms": int(tb.sent - len(got))})


#: Blocks (rows, columns) of a 16x16 tile using about 3 %, 25 % and 100 % of it.
SPARSE_BLOCKS = {"3%": (4, 2), "25%": (8, 8), "100%": (16, 16)}


@cocotb.test()
async def drift_reference(dut):
    settings = CosimSettings.from_env().replace(erased=True)
    cfg = settings.tile
    tb = TileBench(dut, settings)
    k = settings.cal_k
    await tb.start()
    await tb.enable()
    rng = settings.stimulus_rng(18)
    figures = {}
    for name, (r, c) in SPARSE_BLOCKS.items():
        r, c = min(r, cfg.rows), min(c, cfg.cols)
        chip = settings.chip()
        w = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)
        w[:r, :c] = np.clip(np.round(rng.normal(0, chip.w_max / 3, (r, c))), -chip.w_max,
                            chip.w_max)
        w[0, 0] = w[0, 0] or 1
        chip.program(w)
        tb.use_chip(chip, 0.0)
        figures[name] = {"rows": r, "cols": c}
        start = tb.sent
        await engine_run(tb, ("offset", "gain"), k)
        cal = calibrate(tb.state, ("offset", "gain"), start, k)
        for label, ref in (("reset", DriftReference.default(cfg)),
                           ("block", DriftReference.for_weights(chip.target_weights, chip))):
            tb.at_time(0.0)
            await write_reference(tb, ref)
            await tb.write("DRIFT_REF", 0)
            await tb.write("DRIFT_SCALE", ONE)
            start = tb.sent
            cap = calibrate(tb.state, ("capture",), start, k, start=cal, reference=ref)
            await engine_run(tb, ("capture",), k, {**_flat(cap), "drift_ref": cap.drift_ref})
            tb.at_time(DAY)
            start = tb.sent
            comp = calibrate(tb.state, ("drift",), start, k, start=cap, reference=ref)
            await engine_run(tb, ("drift",), k, _flat(comp))
            figures[name][label] = {"drift_ref": cap.drift_ref,
                                    "scale": comp.drift_scale / ONE,
                                    "weak": bool(cap.weak or comp.weak)}
        figures[name]["true"] = true_drift_scale(chip, DAY)
    await tb.write("DRIFT_MIN", drift_min_default(cfg))
    await ClockCycles(dut.clk, 10)
    settings.write_stats("drift_reference", figures)


def _flat(cal: Calibration) -> dict:
    return {"offset": cal.offset, "gain": cal.gain, "status": cal.status,
            "drift_ref": cal.drift_ref, "drift_scale": cal.drift_scale, "error": cal.error,
            "weak": cal.weak}
