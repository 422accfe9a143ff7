"""cocotb test of one network layer block on the tile: program, calibrate, run the inputs of
every condition, and write the results (used by ``aimc demo``).

The run's :class:`~aimc.cosim.settings.CosimSettings` carry the block's
:class:`~aimc.cosim.settings.NetworkPlan` (targets, the calibration subset for the affine
fit, the phases), the calibration averaging (``cal_k``) and the stats file the programming
and calibration figures go to.

Modes (:data:`~aimc.cosim.settings.NETWORK_MODES`): raw results; corrected with the on-chip
calibration's coefficients; corrected with the host's affine coefficients (fitted on the
calibration subset), drift scale 1; the same after the engine's drift compensation at that
moment. Phases run in the order given (the plan checks that their times do not decrease).
Every result is checked bit for bit against the batch model.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from .. import progress
from ..fixedpoint import ONE
from ..model.calibration import Calibration, calibrate
from ..model.program import ProgramParams, program_and_verify
from ..nn import affine_fit, result_codes
from .bench import TileBench
from .settings import CosimSettings

CHUNK = 32


class _Progress:
    """MVMs streamed so far, written to the progress file (:mod:`aimc.progress`)."""

    def __init__(self, path, total):
        self.path, self.total, self.done = path, total, 0

    def add(self, n, what):
        self.done += n
        progress.report(self.path, what, self.done, self.total, "MVMs")


async def _run(tb: TileBench, x: np.ndarray, progress: _Progress, what: str) -> np.ndarray:
    out = []
    for s in range(0, len(x), CHUNK):
        out.append(await tb.stream(x[s:s + CHUNK]))
        progress.add(len(x[s:s + CHUNK]), what)
    return np.concatenate(out) if out else np.zeros((0, tb.cfg.cols), dtype=np.int64)


@cocotb.test()
async def network_block(dut):
    settings = CosimSettings.from_env().replace(erased=True)
    cfg, plan = settings.tile, settings.network
    assert plan is not None, "the settings carry no network plan"
    tb = TileBench(dut, settings.replace(progress=plan.progress))
    twin = settings.chip()
    targets = np.load(plan.targets)
    k = settings.cal_k
    x_fit, y_fit = np.load(plan.fit_inputs), np.load(plan.fit_ideal)
    phases = plan.phases
    inputs = {p.name: np.load(p.inputs) for p in phases}
    progress = _Progress(plan.progress, len(x_fit) + sum(len(v) for v in inputs.values()))
    stats = {"config": cfg.to_dict()}
    await tb.start()
    await tb.enable()

    # Calibrate the converters, then program the weights with corrected reads.
    t0 = time.perf_counter()
    await tb.calibrate(("offset", "gain"), k)
    onchip = calibrate(tb.state, ("offset", "gain"), 0, k)
    got = await tb.read_calibration()
    assert np.array_equal(got.offset, onchip.offset) and np.array_equal(got.gain, onchip.gain)
    params = ProgramParams(correct=True)
    counters, status = await tb.program(targets, params)
    want = program_and_verify(twin, targets, params, calibration=onchip)
    assert {n: counters[n] for n in want.counters()} == want.counters()
    assert np.array_equal(status, want.status) and np.array_equal(tb.chip.g_prog, twin.g_prog)
    stats["program"] = {**{n: counters[n] for n in want.counters()},
                        "cycles": counters["cycles"], "devices": 2 * cfg.rows * cfg.cols}
    stats["program_seconds"] = time.perf_counter() - t0

    # The affine fit: raw results of the calibration subset against the ideal codes.
    await tb.set_correction(None)
    raw_fit = result_codes(await _run(tb, x_fit, progress, "calibration subset"))
    a_off, a_gain = affine_fit(raw_fit, y_fit, cfg.adc_bits)
    affine = Calibration(a_off, a_gain, np.zeros(cfg.cols, dtype=np.int64))
    stats["onchip"] = {"offset": onchip.offset.tolist(), "gain": onchip.gain.tolist()}
    stats["affine"] = {"offset": a_off.tolist(), "gain": a_gain.tolist()}
    if plan.fit_out is not None:
        np.save(plan.fit_out, raw_fit)

    captured = False
    stats["phases"] = {}
    for p in phases:
        if p.time != tb.state.moment[0]:
            tb.at_time(p.time)
        mode = p.mode
        if mode == "raw":
            await tb.set_correction(None)
        elif mode == "cal":
            await tb.write_coefficients(onchip.offset, onchip.gain)
            await tb.write("DRIFT_SCALE", ONE)
            await tb.set_correction(Calibration(onchip.offset, onchip.gain, onchip.status))
        else:
            await tb.write_coefficients(affine.offset, affine.gain)
            if not captured:
                # The drift reference, right after programming, with the host's coefficients.
                start = tb.sent
                await tb.set_correction(None)
                await tb.calibrate(("capture",), k)
                ref = calibrate(tb.state, ("capture",), start, k, start=affine)
                assert await tb.read("DRIFT_REF") == ref.drift_ref
                affine.drift_ref = ref.drift_ref
                captured = True
            affine.drift_scale = ONE
            await tb.write("DRIFT_SCALE", ONE)
            if mode == "affine_drift":
                start = tb.sent
                await tb.calibrate(("drift",), k)
                d = calibrate(tb.state, ("drift",), start, k, start=affine)
                affine.drift_scale = await tb.read("DRIFT_SCALE")
                assert affine.drift_scale == d.drift_scale
            await tb.set_correction(Calibration(affine.offset, affine.gain, affine.status,
                                                drift_scale=affine.drift_scale))
        y = await _run(tb, inputs[p.name], progress, p.name)
        np.save(p.out, result_codes(y))
        stats["phases"][p.name] = {"mvms": len(y), "drift_scale": affine.drift_scale / ONE
                                   if mode == "affine_drift" else 1.0}
    assert not tb.scoreboard.mismatches and not tb.scoreboard.missing
    stats["mvms_checked"] = tb.scoreboard.matched
    stats["period_cycles"] = await tb.read("PERIOD")
    stats["latency_cycles"] = await tb.read("LATENCY")
    settings.write_stats("network_block", stats)
