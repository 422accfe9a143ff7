"""cocotb tests that measure rather than check, and the host functions that run them (by
bench/timing.py and bench/run.py, not by ``make test``).

    .venv/bin/python bench/cosim_probe.py [--size 16] [--sim icarus] [--vectors 16]

runs ``bridge_probe`` alone and prints the bridge's share of wall time.

Both tests use the project's bench (:class:`aimc.cosim.bench.TileBench`: clock, AXI bus
functional models, the analogue bridge with the crossbar model in the loop, the in-order
scoreboard), take the run's :class:`~aimc.cosim.settings.CosimSettings` and add their figures
to its stats file.

* ``timing_probe``: ``vectors`` random vectors back to back without stalls (correction on
  with non-identity coefficients when the settings' ``correct`` is set), then the RTL's
  LATENCY and PERIOD registers, and the same figures seen from the pins: the cycles between
  consecutive result frames, and from the last input beat of an isolated vector to its
  first result beat.
* ``idle_probe``: the simulator's own floor, Python asleep: after reset (the bench's clock,
  bridge and bus models started, nothing sent), one ``Timer`` over ``vectors`` x 1,000
  cycles; the wall time gives the cycles/s of the compiled model with no Python woken.
* ``bridge_probe``: the speed run of ``mvm_stream`` (no stalls) with the time the Python
  bridge takes counted: each resumption of the bridge's coroutine at the falling edge until
  it waits for the next (port reads, the model's cycle, the comparator write), and within it
  the model's ``CycleModel.cycle``/``pulse`` calls. Both are wrapped from here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, Timer, with_timeout
from cocotb.utils import get_sim_time

from aimc import TileConfig
from aimc.cosim import runner
from aimc.cosim.bench import CLOCK_NS, TileBench
from aimc.cosim.settings import CosimSettings

#: The name the simulator imports this file by (bench/ is on the Python path it inherits).
MODULE = "cosim_probe"

#: The figures of ``bridge_probe`` that bench/run.py reports.
BRIDGE_FIGURES = ("vectors", "matched", "wall_seconds", "mvm_per_second", "cycles_per_second",
                  "bridge_seconds", "model_seconds", "bridge_share", "model_share",
                  "bridge_us_per_cycle", "model_us_per_cycle")


def probe(cfg: TileConfig, sim: str, test: str, log_dir: Path | None = None,
          **settings) -> dict:
    """Run the probe ``test`` of this module on ``cfg`` in ``sim``; returns its figures.

    Parameters
    ----------
    cfg : TileConfig
        The tile.
    sim : str
        ``icarus`` or ``verilator``.
    test : str
        ``timing_probe`` or ``bridge_probe``.
    log_dir : Path, optional
        Where the simulator's log goes (default: the terminal).
    **settings
        Further :class:`CosimSettings` fields (``vectors``, ``correct``, ...).

    Raises
    ------
    ValueError
        An unknown test or a bad setting, before the simulator starts.
    AssertionError
        The probe failed.
    """
    fd, name = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    run = CosimSettings(tile=cfg, module=MODULE, tests=(test,), stats=name, **settings)
    log = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{test}_{cfg.key}_{sim}.log"
    try:
        runner.run(run, sim, log_file=log)
        return run.read_stats(test)
    finally:
        Path(name).unlink(missing_ok=True)


def bridge_share(cfg: TileConfig, sim: str, vectors: int = 16,
                 log_dir: Path | None = None) -> dict:
    """The bridge's and the model's share of the wall time of a stream of ``vectors``
    (``bridge_probe``): the figures of :data:`BRIDGE_FIGURES`, with the size and simulator."""
    s = probe(cfg, sim, "bridge_probe", log_dir, vectors=vectors)
    return {"size": f"{cfg.rows}x{cfg.cols}", "sim": sim, **{k: s[k] for k in BRIDGE_FIGURES}}


def _cycle() -> int:
    """The clock cycle now: the number of the rising edge just passed (the clock's first
    rising edge is half a period in)."""
    return int(get_sim_time("ns") // CLOCK_NS)


async def _handshakes(dut, log: dict):
    """Record the cycle of every last input beat and every first result beat: at each
    rising edge, the values the tile samples there (the stream models change their outputs
    at falling edges, so the handshake is not settled before)."""
    edge = RisingEdge(dut.clk)
    first_out = True
    int_reset = dut.ana__int_reset
    was_reset = 0
    while True:
        await edge
        now = _cycle()
        reset = int(int_reset.value)
        if reset and not was_reset:
            log["int_reset"].append(now)
        was_reset = reset
        if int(dut.s_axis__tvalid.value) and int(dut.s_axis__tready.value) \
                and int(dut.s_axis__tlast.value):
            log["in_last"].append(now)
        if int(dut.m_axis__tvalid.value) and int(dut.m_axis__tready.value):
            if first_out:
                log["out_first"].append(now)
            first_out = bool(int(dut.m_axis__tlast.value))


@cocotb.test()
async def timing_probe(dut):
    """Back-to-back MVMs: LATENCY and PERIOD registers, and the same seen from the pins."""
    tb = TileBench(dut, CosimSettings.from_env())
    cfg = tb.cfg
    n = tb.settings.vector_count(6)
    await tb.start()
    correct = tb.settings.correct
    if correct:
        await tb.set_example_correction()
    else:
        await tb.enable()
    log = {"in_last": [], "out_first": [], "int_reset": []}
    monitor = cocotb.start_soon(_handshakes(dut, log))
    x = tb.random_vectors(n + 1, np.random.default_rng(3))
    bound = tb.cycles_per_mvm_bound()

    # One isolated vector: the stream-to-stream latency with the pipeline empty.
    collector = cocotb.start_soon(tb.collect(1))
    await tb.send(x[0])
    await with_timeout(collector, 4 * bound, "ns")
    isolated_latency = await tb.read("LATENCY")
    # Then n vectors back to back.
    collector = cocotb.start_soon(tb.collect(n))
    for v in x[1:]:
        await tb.send(v)
    await with_timeout(collector, (n + 4) * bound, "ns")
    await tb.drain(bound)
    monitor.cancel()
    period, latency = await tb.read("PERIOD"), await tb.read("LATENCY")
    spacing = np.diff(log["out_first"][1:]).tolist()
    stats = {
        "config": cfg.to_dict(), "vectors": n + 1, "correction": correct,
        "matched": tb.scoreboard.matched, "mismatches": len(tb.scoreboard.mismatches),
        "unexpected": tb.scoreboard.unexpected,
        "mvm_count": await tb.read("MVM_COUNT"),
        "latency_cycles": latency, "period_cycles": period,
        "isolated_latency_cycles": isolated_latency,
        "result_spacing_cycles": spacing,
        "last_input_beats": log["in_last"], "first_result_beats": log["out_first"],
        "integrator_resets": log["int_reset"],
        "stream_latency_cycles": (log["out_first"][0] - log["in_last"][0]
                                  if log["out_first"] and log["in_last"] else None),
        "analogue_min_cycles": cfg.analogue_min_cycles,
        "schedule_period_cycles": cfg.mvm_period_cycles,
    }
    tb.settings.write_stats("timing_probe", stats)
    dut._log.info("period %d, latency %d (schedule %d, analogue minimum %d); result spacing "
                  "%s; stream latency %s", period, latency, cfg.mvm_period_cycles,
                  cfg.analogue_min_cycles, spacing, stats["stream_latency_cycles"])
    assert not tb.scoreboard.mismatches, "results differ from the model"
    assert tb.scoreboard.matched == n + 1, f"{tb.scoreboard.matched} of {n + 1} results"


class _TimedModel:
    """Delegates to a CycleModel, adding up the wall time of its per-cycle calls."""

    def __init__(self, model):
        self._model = model
        self.seconds = 0.0
        self.calls = 0

    def cycle(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._model.cycle(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1

    def pulse(self, *args, **kwargs):
        return self._timed(self._model.pulse, *args, **kwargs)

    def saturated(self, *args, **kwargs):
        return self._timed(self._model.saturated, *args, **kwargs)

    def _timed(self, call, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name):
        return getattr(self._model, name)


class _TimedCoroutine:
    """Awaitable that runs a coroutine and adds up the wall time of each of its steps (from
    its resumption until it next waits)."""

    def __init__(self, coro):
        self._coro = coro
        self.seconds = 0.0
        self.steps = 0

    def __await__(self):
        it = self._coro.__await__()
        value, error = None, None
        while True:
            t0 = time.perf_counter()
            try:
                trigger = it.throw(error) if error is not None else it.send(value)
            except StopIteration as stop:
                self.seconds += time.perf_counter() - t0
                return stop.value
            self.seconds += time.perf_counter() - t0
            self.steps += 1
            try:
                value, error = (yield trigger), None
            except BaseException as exc:  # noqa: B036 - cancellation goes to the coroutine
                value, error = None, exc


@cocotb.test()
async def idle_probe(dut):
    """The cycles/s of the simulation with Python asleep: the tile idle after reset."""
    tb = TileBench(dut, CosimSettings.from_env())
    await tb.start()
    cycles = 1000 * tb.settings.vector_count(200)
    wakes0 = tb.bridge.wakes
    wall0 = time.perf_counter()
    await Timer(cycles * CLOCK_NS, "ns")
    wall = time.perf_counter() - wall0
    stats = {"config": tb.cfg.to_dict(), "cycles": cycles, "wall_seconds": wall,
             "cycles_per_second": cycles / wall, "bridge_wakes": tb.bridge.wakes - wakes0}
    tb.settings.write_stats("idle_probe", stats)
    dut._log.info("idle: %.0f cycles/s (%d cycles in %.2f s, %d bridge wakes)",
                  stats["cycles_per_second"], cycles, wall, stats["bridge_wakes"])


@cocotb.test()
async def bridge_probe(dut):
    """mvm_stream without stalls, with the bridge's and the model's share of wall time."""
    tb = TileBench(dut, CosimSettings.from_env())
    cfg = tb.cfg
    n = tb.settings.vector_count(16)
    timed_model = _TimedModel(tb.model)
    tb.bridge.model = timed_model
    inner_run = tb.bridge.run
    timed = {}

    async def timed_run():
        timed["bridge"] = _TimedCoroutine(inner_run())
        await timed["bridge"]

    tb.bridge.run = timed_run
    await tb.start()
    await tb.enable()
    x = tb.random_vectors(n, tb.settings.stimulus_rng(7))
    # The golden results go on the scoreboard before the timed phase, so that their (batch
    # model) time is not counted as simulation.
    for v in x:
        tb.scoreboard.expect(tb.golden(v))
        tb.sent += 1
    bridge0, model0, steps0 = timed["bridge"].seconds, timed_model.seconds, timed["bridge"].steps
    wall0, sim0 = time.perf_counter(), get_sim_time("ns")
    collector = cocotb.start_soon(tb.collect(n))
    for v in x:
        await tb.send(v, expect=False)
    await with_timeout(collector, n * tb.cycles_per_mvm_bound() + 200, "ns")
    wall, sim_ns = time.perf_counter() - wall0, get_sim_time("ns") - sim0
    bridge = timed["bridge"].seconds - bridge0
    model = timed_model.seconds - model0
    steps = timed["bridge"].steps - steps0
    stats = {
        "config": cfg.to_dict(), "vectors": n, "matched": tb.scoreboard.matched,
        "wall_seconds": wall, "sim_cycles": sim_ns / CLOCK_NS,
        "mvm_per_second": n / wall, "cycles_per_second": sim_ns / CLOCK_NS / wall,
        "bridge_seconds": bridge, "model_seconds": model, "bridge_steps": steps,
        "bridge_share": bridge / wall, "model_share": model / wall,
        "bridge_wakes": tb.bridge.wakes,
        "bridge_us_per_cycle": 1e6 * bridge / max(steps, 1),
        "model_us_per_cycle": 1e6 * model / max(steps, 1),
    }
    tb.settings.write_stats("bridge_probe", stats)
    dut._log.info("%.1f MVM/s; bridge %.1f %% of wall time (model %.1f %%), %.1f us a cycle",
                  stats["mvm_per_second"], 100 * stats["bridge_share"],
                  100 * stats["model_share"], stats["bridge_us_per_cycle"])
    assert not tb.scoreboard.mismatches and tb.scoreboard.matched == n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="the Python bridge's share of cosimulation time")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--sim", default="icarus", choices=runner.SIMULATORS)
    p.add_argument("--vectors", type=int, default=16)
    args = p.parse_args(argv)
    s = bridge_share(TileConfig(rows=args.size, cols=args.size), args.sim, args.vectors,
                     runner.BUILD / "bench" / "logs")
    print(f"{s['size']} {s['sim']}: {s['mvm_per_second']:.1f} MVM/s; bridge "
          f"{100 * s['bridge_share']:.1f} % of wall time (model {100 * s['model_share']:.1f} %), "
          f"{s['bridge_us_per_cycle']:.1f} us a cycle")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
