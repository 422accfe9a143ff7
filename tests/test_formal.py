"""The quick formal checks (docs/reliability.md, "Formal proofs"): every property of each
quick job of :mod:`aimc.formal.catalogue` in one SymbiYosys run, its covers, and every
mutation caught with a counterexample trace. ``make formal`` runs each property alone and
the slower jobs too."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimc.formal._sby import missing_tools

MISSING = missing_tools()
needs_tools = pytest.mark.skipif(
    bool(MISSING), reason=f"the formal extra is not installed (missing {', '.join(MISSING)}): "
                          f"pip install -e '.[formal]', or make test / make formal")

from aimc.formal.catalogue import JOBS  # noqa: E402
from aimc.formal.run import run_cover, run_job, run_mutation  # noqa: E402

QUICK = [j for j in JOBS if j.quick]


@needs_tools
@pytest.mark.parametrize("job", QUICK, ids=[j.key for j in QUICK])
def test_properties_hold(job, tmp_path):
    results = run_job(job, tmp_path, per_property=False)
    assert results and all(r.status == "PASS" for r in results), \
        [(r.name, r.status) for r in results if r.status != "PASS"]


@needs_tools
@pytest.mark.parametrize("job", QUICK, ids=[j.key for j in QUICK])
def test_covers_reached(job, tmp_path):
    results = run_cover(job, tmp_path)
    assert all(r.status == "PASS" and r.trace for r in results), \
        [(r.name, r.status) for r in results]


MUTANTS = [(j, mu) for j in QUICK for mu in j.mutations]


@needs_tools
@pytest.mark.parametrize("job, mutation", MUTANTS,
                         ids=[f"{j.key}-{mu.key}" for j, mu in MUTANTS])
def test_mutation_is_caught(job, mutation, tmp_path):
    r = run_mutation(job, mutation, tmp_path)
    assert r.caught, (r.expected, r.failed)
    assert r.trace.endswith(".vcd") and open(r.trace).read().startswith("$")


def test_every_quick_job_has_a_mutation():
    # A property group that no mutation breaks is a defect (issue 19).
    assert all(j.mutations for j in QUICK)


def test_mutations_name_properties_of_their_harness():
    for job in JOBS:
        names = {n for n, _, _ in job.harness().properties()}
        for mu in job.mutations:
            assert job.harness().full(mu.catches) in names
            assert mu.key in job.harness().mutations


def test_unknown_mutation_is_refused():
    with pytest.raises(ValueError, match=r"^SarHarness has no mutation 'nosuch'; it has "):
        next(j for j in JOBS if j.key == "sar2x4").harness(mutation="nosuch")


def test_tile_order_check_refuses_what_it_cannot_tag():
    from aimc.config import TileConfig
    from aimc.formal.tile import TileHarness
    with pytest.raises(ValueError, match=r"^TileHarness: live and order are separate checks"):
        TileHarness(live=True, order=True)
    for cfg in (TileConfig(rows=2, cols=2, input_bits=2, adc_bits=2, lanes=2,
                           input_mode="bitserial"),
                TileConfig(rows=2, cols=4, input_bits=2, adc_bits=2, lanes=2, cols_per_adc=2)):
        with pytest.raises(ValueError, match=r"needs a tile with PWM inputs and one line per "
                                             r"ADC, not TileConfig\(rows=2, cols="):
            TileHarness(cfg, order=True)
    # Several beats per vector and per result are checked (tile_order_2b).
    TileHarness(TileConfig(rows=4, cols=2, input_bits=2, adc_bits=2, lanes=1), order=True)


def test_a_mutant_asserts_only_the_property_that_must_catch_it():
    # So the counterexample is that property's, whichever solver finds which trace.
    from aimc.formal._sby import to_rtlil
    job = next(j for j in JOBS if j.key == "axil")
    mu = job.mutations[0]
    expected = job.harness().full(mu.catches)
    _, names = to_rtlil(job.harness(mutation=mu.key, only={expected}))
    assert names == [expected]
    _, every = to_rtlil(job.harness(mutation=mu.key))
    assert len(every) > 1 and expected in every


def test_an_unknown_solver_is_refused(tmp_path):
    from aimc.formal._sby import missing_tools, run_sby
    with pytest.raises(ValueError, match=r"^solver must be one of boolector, z3, not 'cvc5'$"):
        run_sby("", tmp_path / "job", mode="prove", depth=2, solver="cvc5")
    with pytest.raises(ValueError, match=r"not 'yices'$"):
        missing_tools(["yices"])


def test_the_solver_option_is_checked_before_any_run(capsys):
    from aimc.formal.__main__ import main
    with pytest.raises(SystemExit) as info:
        main(["--solver", "cvc5", "--only", "sar2x4"])
    assert info.value.code == 2
    assert "argument --solver: invalid choice: 'cvc5'" in capsys.readouterr().err


@needs_tools
def test_the_webassembly_solver_is_compiled_before_a_job_starts_it(tmp_path, monkeypatch):
    # On a fresh machine YoWASP's first run of a module prints "Preparing to run ..." to
    # stderr, which smtbmc reads as the solver's answer: the first job ended in ERROR.
    from aimc.formal import _sby
    cache = tmp_path / "yowasp"
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(cache))
    _sby._prepared.cache_clear()
    try:
        assert _sby._solver_bin("boolector", tmp_path) is not None
        assert list(cache.rglob("*.wasm")), "the solver's module was not compiled"
    finally:
        _sby._prepared.cache_clear()


@needs_tools
def test_a_relative_output_folder_finds_the_solver(tmp_path, monkeypatch):
    # `make formal` writes under build/formal, a relative path: the solver's shim folder
    # went on PATH relative too, and smtbmc, started in SymbiYosys' run folder, found no
    # Boolector (every job ended in ERROR).
    monkeypatch.chdir(tmp_path)
    job = next(j for j in JOBS if j.key == "sar2x4")
    results = run_job(job, Path("build") / "formal", per_property=False)
    assert results and all(r.status == "PASS" for r in results), \
        [(r.name, r.status) for r in results]


@needs_tools
@pytest.mark.parametrize("solver", ["boolector", "z3"])
def test_each_solver_proves_and_catches(solver, tmp_path):
    # Boolector is the default; z3 stays usable (--solver z3) and gives the same verdicts.
    job = next(j for j in JOBS if j.key == "sar2x4")
    results = run_job(job, tmp_path, per_property=False, solver=solver)
    assert results and all(r.status == "PASS" for r in results)
    log = (tmp_path / "work" / job.key / "run" / "logfile.txt").read_text()
    assert f"engine_0: smtbmc {solver}" in log and f"Solver: {solver}" in log
    r = run_mutation(job, job.mutations[0], tmp_path, solver=solver)
    assert r.caught, (r.expected, r.failed)


def test_divider_spec_matches_reference():
    # The harness's division-free statement of the quotient is divide()'s, on every
    # operand of the 8 / 4 -> 4 configuration.
    from aimc.rtl.divider import divide
    for n in range(256):
        for d in range(16):
            q, ovf = divide(n, d, 4)
            fits = d != 0 and n < d << 4
            assert ovf == (not fits)
            if fits:
                assert q * d <= n < (q + 1) * d
            else:
                assert q == 15


def test_sqrt_spec_matches_isqrt():
    import math
    for x in range(1 << 8):
        r = math.isqrt(x)
        assert r * r <= x < (r + 1) ** 2


def test_correct_spec_is_calformat_correct():
    # The corrector harness's transcription of CalFormat.correct (formal/datapath.py), on
    # random and extreme operands at the tile's widths, in Amaranth's simulator.
    import numpy as np
    from amaranth import Module, Signal, signed
    from amaranth.sim import Simulator

    from aimc.config import TileConfig
    from aimc.fixedpoint import CalFormat
    from aimc.formal.datapath import correct_spec

    fmt = CalFormat(TileConfig())
    raw, off = Signal(signed(fmt.raw_bits)), Signal(signed(fmt.off_bits))
    gain, drift = Signal(16), Signal(16)
    out, sat = Signal(signed(fmt.out_bits)), Signal()
    m = Module()
    value, clamped = correct_spec(raw, off, gain, drift, fmt.out_bits)
    m.d.comb += [out.eq(value), sat.eq(clamped)]
    rng = np.random.default_rng(19)
    lo_r, hi_r = -(1 << (fmt.raw_bits - 1)), (1 << (fmt.raw_bits - 1)) - 1
    lo_o, hi_o = -(1 << (fmt.off_bits - 1)), (1 << (fmt.off_bits - 1)) - 1
    cases = [(lo_r, hi_o, 65535, 65535), (hi_r, lo_o, 65535, 65535), (0, 0, 0, 0)]
    cases += [tuple(int(v) for v in (rng.integers(lo_r, hi_r + 1), rng.integers(lo_o, hi_o + 1),
                                     rng.integers(0, 1 << 16), rng.integers(0, 1 << 16)))
              for _ in range(300)]

    async def bench(ctx):
        for r, o, g, d in cases:
            ctx.set(raw, r)
            ctx.set(off, o)
            ctx.set(gain, g)
            ctx.set(drift, d)
            want, want_sat = fmt.correct([r], [o], [g], d)
            assert (ctx.get(out), ctx.get(sat)) == (int(want[0]), bool(want_sat[0]))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_corrector_harness_with_exact_products_builds():
    # The variant with the multipliers themselves (docs/reliability.md, "Not proved yet"):
    # it converts, and only the uninterpreted variant assumes anything of the products.
    from aimc.formal._sby import to_rtlil
    from aimc.formal.datapath import NARROW_WIDTHS, CorrectorHarness
    exact, _ = to_rtlil(CorrectorHarness(widths=NARROW_WIDTHS, exact_products=True))
    free, _ = to_rtlil(CorrectorHarness(widths=NARROW_WIDTHS))
    assert "rtl_product" not in exact and "rtl_product" in free
    assert exact.count("$mul") > free.count("$mul")


@needs_tools
def test_tile_streams_have_no_ready_valid_path(tmp_path):
    from aimc.formal.structural import run_structural
    results = run_structural(tmp_path)
    assert results and all(r.status == "PASS" for r in results), \
        [(r.name, r.detail) for r in results if r.status != "PASS"]


@needs_tools
def test_tile_ready_on_valid_mutation_is_caught(tmp_path):
    from aimc.formal.structural import ReadyOnValidTile, run_structural
    failed = {r.name for r in run_structural(tmp_path, tile_cls=ReadyOnValidTile)
              if r.status == "FAIL"}
    assert failed == {"tile.s_axis_tready_independent_of_tvalid"}


def test_every_property_and_mutation_is_documented():
    # docs/reliability.md's results tables list every check of the catalogue by name.
    from pathlib import Path
    text = (Path(__file__).parents[1] / "docs" / "reliability.md").read_text()
    missing = [n for job in JOBS for n, kind, _ in job.harness().properties()
               if (kind == "assert" or job.covers) and f"| `{n}` |" not in text]
    missing += [f"{job.key}.{mu.key}" for job in JOBS for mu in job.mutations
                if f"| `{job.key}.{mu.key}` |" not in text]
    assert not missing, missing


def test_update_stand_ins_keep_the_units_latency():
    # The update harness's stand-ins (formal/update.py) have each unit's latency attribute,
    # and in simulation their busy and done follow the real unit's cycle by cycle, for
    # starts at random cycles (back to back in the done cycle and ignored while busy too).
    import numpy as np
    from amaranth import Module
    from amaranth.sim import Simulator

    from aimc.config import TileConfig
    from aimc.formal.update import AbstractUnitsEngine, LatencyStandIn
    from aimc.rtl.update import UpdateEngine

    cfg = TileConfig(rows=1, cols=1, input_bits=2, lanes=1, training=True)
    real_units = UpdateEngine(cfg)._units()
    engine = AbstractUnitsEngine(cfg)
    stand_ins = engine._units()
    assert set(stand_ins) == set(real_units)
    rng = np.random.default_rng(6)
    for name, unit in real_units.items():
        assert isinstance(stand_ins[name], LatencyStandIn)
        assert stand_ins[name].latency == unit.latency
        stand = LatencyStandIn(unit, free=False)
        m = Module()
        m.submodules.real, m.submodules.stand = unit, stand
        starts = [bool(rng.random() < 0.3) for _ in range(4 * unit.latency)]

        async def bench(ctx, unit=unit, stand=stand, starts=starts):
            for s in starts:
                ctx.set(unit.start, s)
                ctx.set(stand.start, s)
                assert ctx.get(unit.busy) == ctx.get(stand.busy)
                assert ctx.get(unit.done) == ctx.get(stand.done)
                await ctx.tick()

        sim = Simulator(m)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()


def _worst_case_program_run(cfg, max_iter, width, parallel, p):
    """Cycles from PROG_CTRL.start to done of a ProgramEngine whose partners answer every
    wait in its p-th cycle (as late as formal/program.py allows) and whose devices never
    reach their targets (every read off by one count, tolerance 0): the worst case."""
    from amaranth.sim import Simulator

    from aimc.rtl.program import ProgramEngine

    dut = ProgramEngine(cfg)
    seq, t = dut.seq, dut.targets
    out = {}

    async def bench(ctx):
        for port, value in ((dut.max_iter, max_iter), (dut.width, width),
                            (dut.parallel, parallel), (dut.tol, 0), (dut.set_gain, 1),
                            (dut.reset_gain, 1)):
            ctx.set(port, value)
        for j in range(cfg.lanes):
            ctx.set(seq.results.payload.data[j], 1 << cfg.result_frac)  # targets are 0
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        elapsed, waited, loaded, taken = 1, 0, 0, 0
        while not ctx.get(dut.done):
            assert elapsed < 100_000
            waits = {"idle": ctx.get(seq.busy) and not ctx.get(seq.owns),
                     "load": ctx.get(t.tready), "request": ctx.get(seq.request.valid),
                     "results": ctx.get(seq.results.ready), "emit": ctx.get(seq.emit.valid),
                     "pulse": ctx.get(seq.wait)}
            answer = any(waits.values()) and waited == p - 1
            waited = 0 if answer or not any(waits.values()) else waited + 1
            for name, port in (("idle", seq.idle), ("load", t.tvalid),
                               ("request", seq.request.ready), ("results", seq.results.valid),
                               ("emit", seq.emit.ready), ("pulse", seq.ready)):
                ctx.set(port, int(answer and waits[name]))
            ctx.set(t.tlast, int(loaded == cfg.out_beats - 1))
            ctx.set(seq.results.payload.last, int(taken == cfg.out_beats - 1))
            if answer and waits["load"]:
                loaded = (loaded + 1) % cfg.out_beats
            if answer and waits["results"]:
                taken = (taken + 1) % cfg.out_beats
            await ctx.tick()
            elapsed += 1
        assert not ctx.get(dut.error)
        out["elapsed"] = elapsed

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out["elapsed"]


@pytest.mark.parametrize("shape, max_iter, width, parallel, p", [
    ((1, 2, 2), 3, 3, False, 3), ((1, 2, 2), 2, 1, True, 1), ((1, 2, 2), 0, 2, False, 2),
    ((2, 3, 2), 5, 7, False, 2), ((2, 2, 1), 4, 200, True, 3)])
def test_program_bound_is_reached_by_the_worst_case(shape, max_iter, width, parallel, p):
    # formal/program.py proves that a run ends within program_bound cycles at 1x2; in
    # simulation the worst case (every answer as late as allowed, no device ever on target)
    # ends exactly there, at that size and at others (two rows, three columns, two beats).
    from aimc.config import TileConfig
    from aimc.formal.program import program_bound

    rows, cols, lanes = shape
    cfg = TileConfig(rows=rows, cols=cols, input_bits=2, adc_bits=2, lanes=lanes)
    assert _worst_case_program_run(cfg, max_iter, width, parallel, p) == \
        program_bound(cfg, max_iter, width, parallel, p)


def _worst_case_calibration_run(cfg, phases, avg_log2, p):
    """Cycles from CAL_CTRL.start to done of a CalibrationEngine whose partners answer every
    wait in its p-th cycle (as late as formal/calib.py allows), with results that make every
    column's gain and the drift scale a division (raw results 0, offsets -1.0, a reference
    of 1.0, corrected results of 1 LSB, a drift reference and a floor of 1): the worst case."""
    from amaranth.sim import Simulator

    from aimc.fixedpoint import OFF_FRAC
    from aimc.rtl.calib import CalibrationEngine

    dut = CalibrationEngine(cfg)
    seq = dut.seq
    out = {}

    async def bench(ctx):
        for port, value in ((dut.phases, phases), (dut.avg_log2, avg_log2), (dut.ref, 16),
                            (dut.drift_ref, 1), (dut.drift_min, 1)):
            ctx.set(port, value)
        for j in range(cfg.lanes):
            # Raw results 0 (no rail); an offset of -1.0: every gain is a division (ref
            # 1.0 by 1.0); corrected results of 1 LSB: the drift sum is positive.
            ctx.set(seq.results.payload.data[j], 1)
            ctx.set(dut.off_rdata[j], -1 << OFF_FRAC)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        elapsed, waited, taken = 1, 0, 0
        while not ctx.get(dut.done):
            assert elapsed < 100_000
            waits = {"idle": ctx.get(seq.busy) and not ctx.get(seq.owns),
                     "request": ctx.get(seq.request.valid),
                     "results": ctx.get(seq.results.ready)}
            answer = any(waits.values()) and waited == p - 1
            waited = 0 if answer or not any(waits.values()) else waited + 1
            for name, port in (("idle", seq.idle), ("request", seq.request.ready),
                               ("results", seq.results.valid)):
                ctx.set(port, int(answer and waits[name]))
            ctx.set(seq.results.payload.last, int(taken == cfg.out_beats - 1))
            if answer and waits["results"]:
                taken = (taken + 1) % cfg.out_beats
            await ctx.tick()
            elapsed += 1
        out["elapsed"] = elapsed
        out["error"], out["weak"] = ctx.get(dut.error), ctx.get(dut.weak)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("shape, phases, avg_log2, p", [
    ((1, 2, 2), 0b0111, 2, 3), ((1, 2, 2), 0b1011, 1, 1), ((1, 2, 2), 0b1111, 0, 2),
    ((1, 2, 2), 0b0100, 2, 1), ((1, 2, 2), 0, 1, 2), ((1, 2, 1), 0b0111, 1, 3),
    ((2, 3, 2), 0b0111, 3, 2), ((2, 3, 2), 0b0010, 0, 3)])
def test_calibration_bound_is_reached_by_the_worst_case(shape, phases, avg_log2, p):
    # formal/calib.py proves that a run ends within calibration_bound cycles at 1x2; in
    # simulation the worst case (every answer as late as allowed, every gain and the drift
    # scale a division) ends exactly there, at that size and at others (two beats per
    # result, a padding lane that skips its division, 8 MVMs per average).
    from aimc.config import TileConfig
    from aimc.formal.calib import calibration_bound

    rows, cols, lanes = shape
    cfg = TileConfig(rows=rows, cols=cols, input_bits=2, adc_bits=2, lanes=lanes)
    run = _worst_case_calibration_run(cfg, phases, avg_log2, p)
    assert not run["error"] and not run["weak"]
    assert run["elapsed"] == calibration_bound(cfg, phases, avg_log2, p)
