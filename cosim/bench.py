"""Test bench of the tile: clock, reset, AXI bus functional models, analogue bridge, scoreboard."""

from __future__ import annotations

import random
import warnings

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame

from .. import progress
from ..config import TileConfig
from ..enums import BusError, CalPhase, InputKind, ResultKind
from ..fixedpoint import CalFormat
from ..model import Chip, CycleModel
from ..model.calibration import Calibration
from ..model.program import ProgramParams
from ..rtl.axi import RESP_DECERR, RESP_SLVERR
from ..rtl.regmap import register_map, windows
from . import coverage
from .axis import StreamSink, StreamSource
from .bridge import AnalogueBridge
from .settings import CosimSettings

__all__ = ["Scoreboard", "TileBench", "random_pauses"]

# cocotbext-axi 0.1.x still calls APIs that cocotb 2.x deprecates (Task.kill, Event.data);
# they work, and the warnings would bury the tests' own messages.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi")

#: Clock period used in simulation, ns (the specification's 1 GHz reporting clock).
CLOCK_NS = 1


def random_pauses(rng: random.Random, probability: float):
    """Pause generator for cocotbext-axi: pause on each cycle with ``probability``."""
    while True:
        yield rng.random() < probability


#: Coverage bin of each kind of refused write (BUS_ERROR field).
_REFUSAL_BINS = {"decode": "decerr_write", "readonly": "readonly_write",
                 "range": "register_range", "window": "window_strobe"}


def to_lanes(x: np.ndarray, cfg: TileConfig) -> list[int]:
    """One input vector as stream lane words (two's complement), padded to whole beats."""
    mask = (1 << cfg.in_lane_width) - 1
    words = [int(v) & mask for v in x]
    return words + [0] * (-(-len(words) // cfg.lanes) * cfg.lanes - len(words))


def from_lanes(words, cfg: TileConfig, length: int | None = None) -> np.ndarray:
    """Signed results from the lane words of one output frame (the first ``length``:
    default the columns)."""
    w = cfg.out_lane_width
    vals = np.array(list(words)[:cfg.cols if length is None else length], dtype=np.int64)
    return np.where(vals >= 1 << (w - 1), vals - (1 << w), vals)


def vector_frame(x: np.ndarray, cfg: TileConfig, kind: InputKind) -> AxiStreamFrame:
    """An input vector as an s_axis frame: its lanes, TUSER the kind on every beat."""
    words = to_lanes(x, cfg)
    return AxiStreamFrame(words, tuser=[kind.value] * len(words))


class Scoreboard:
    """In-order checker: every expected vector exactly once, in order, bit for bit."""

    def __init__(self):
        self.expected = []
        self.matched = 0
        self.mismatches = []
        self.unexpected = 0

    def expect(self, vector: np.ndarray, kind: ResultKind = ResultKind.FORWARD):
        self.expected.append((np.asarray(vector), kind))

    def check(self, got: np.ndarray, kind: ResultKind = ResultKind.FORWARD):
        if not self.expected:
            self.unexpected += 1
            return
        want, want_kind = self.expected.pop(0)
        if want_kind == kind and np.array_equal(want, got):
            self.matched += 1
        else:
            self.mismatches.append((self.matched + len(self.mismatches), want, got))

    @property
    def missing(self) -> int:
        return len(self.expected)


class TileBench:
    """Owns the clock, the bus models, the analogue bridge and the golden model.

    Parameters
    ----------
    dut
        The cocotb handle of the tile's top.
    settings : CosimSettings
        The run's settings: the tile, the moment the chip is at (``time``) and the seed of
        the bus models' pauses.
    chip : Chip, optional
        The analogue half; default: a new one as ``settings`` describes it.
    """

    def __init__(self, dut, settings: CosimSettings, chip: Chip | None = None):
        cfg = settings.tile
        chip = settings.chip() if chip is None else chip
        self.dut, self.settings, self.cfg, self.chip = dut, settings, cfg, chip
        self.state = chip.state(settings.time)  # the chip at the moment the test runs
        self.rng = settings.pause_rng()
        self.regs = {r.name: r for r in register_map(cfg)}
        self.windows = {w.name: w for w in windows(cfg)}
        self.fmt = CalFormat(cfg)
        #: Coefficients the RTL applies to results (None: correction off), and those of the
        #: rows (backward results; the reset values until the host loads others).
        self.correction: Calibration | None = None
        self.row_correction = Calibration.reset(cfg.rows)
        clk, rst = dut.clk, dut.rst
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                  clk, rst)
        # The data streams' models wake per beat, not per clock (cosim/axis.py).
        bus = lambda name: AxiStreamBus.from_prefix(dut, name, bus_separator="__")  # noqa: E731
        self.source = StreamSource(bus("s_axis"), clk, rst, period_ns=CLOCK_NS,
                                   byte_size=cfg.in_lane_width)
        self.sink = StreamSink(bus("m_axis"), clk, rst, period_ns=CLOCK_NS,
                               byte_size=cfg.out_lane_width)
        self.target_source = StreamSource(bus("t_axis"), clk, rst, period_ns=CLOCK_NS,
                                          byte_size=cfg.tgt_lane_width)
        for log in (self.axil.write_if.log, self.axil.read_if.log, self.source.log,
                    self.sink.log, self.target_source.log):
            log.setLevel("WARNING")
        self.model = CycleModel(self.state)
        self.bridge = AnalogueBridge(dut, self.model)
        self.scoreboard = Scoreboard()
        self.sent = 0            # forward MVMs sent (they key the noise of the golden model)
        self.sent_backward = 0   # backward MVMs sent
        self.received: list[np.ndarray] = []  # every result vector collected, in order
        self._axil_paused = False
        #: Where the run's progress goes (aimc.progress): the settings' file.
        self.progress_path = settings.progress
        self._modes_sampled: set[str] = set()
        coverage.sample_config(cfg)

    async def start(self):
        # The simulator's own clock (cocotb's C++ clock driver): no Python wakes per cycle.
        # It starts half a period in, once reset and the bus models' first values are
        # applied (an edge at time zero finds them undefined on Icarus).
        self.dut.rst.value = 1
        await Timer(CLOCK_NS / 2, "ns")
        Clock(self.dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        self.bridge.start()
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await self.clear_aborted()

    async def clear_aborted(self) -> int:
        """The host's first step after a reset: read the reset-less ABORTED bits (what a
        reset cut short: in one simulation, what an earlier test left running) and clear
        them by writing 1s, so that every test starts from the same state. Returns the
        value read."""
        reg = self.regs["ABORTED"]
        aborted = await self.read("ABORTED")
        if aborted:
            self.dut._log.info("ABORTED %s after reset (left by an earlier test); cleared",
                               reg.unpack(aborted))
        await self.write("ABORTED", reg.pack(**{f.name: 1 for f in reg.fields}))
        left = await self.read("ABORTED")
        assert left == 0, f"ABORTED {left:#x} after writing 1s to clear it"
        return aborted

    async def hard_reset(self, cycles: int = 3):
        """Assert ``rst`` for ``cycles`` clocks in the middle of whatever runs. The analogue
        half keeps its state (a reset of the digital periphery does not reset the chip);
        the golden model's MVM numbering follows the integrations the model saw."""
        for source in (self.source, self.target_source):
            source.clear()  # frames still queued belong to the operation being cut short
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.sent = (self.model.integration + 1) // self.cfg.planes
        self.sent_backward = (self.model.back_integration + 1) // self.cfg.planes
        self.correction = None
        while not self.sink.empty():
            self.sink.recv_nowait()

    # -- registers ---------------------------------------------------------------------

    def address(self, name: str) -> int:
        return self.regs[name].offset

    async def read(self, name: str) -> int:
        return int.from_bytes((await self.axil.read(self.address(name), 4)).data, "little")

    async def write(self, name: str, value: int):
        await self.axil.write(self.address(name), value.to_bytes(4, "little"))

    async def expect_refused(self, target, value, kind: str, cover: str | None = None):
        """Write ``value`` (an int: a whole word; bytes: from the first byte lane) to
        ``target`` (a register name or a byte address) and check that the tile refuses it
        as ``kind`` (a BUS_ERROR field): the AXI error response, BUS_ERROR with that bit
        alone, BUS_ERROR_ADDR, and for a register an unchanged value. Clears BUS_ERROR."""
        address = self.address(target) if isinstance(target, str) else target
        data = value.to_bytes(4, "little") if isinstance(value, int) else value
        before = await self.read(target) if isinstance(target, str) else None
        resp = (await self.axil.write(address, data)).resp
        want = RESP_DECERR if kind == "decode" else RESP_SLVERR
        assert resp == want, f"write to {target!r}: response {resp}, expected {want}"
        await self._check_refusal(address, kind)
        if before is not None:
            assert await self.read(target) == before, f"refused write changed {target}"
        coverage.hit("errors", cover or _REFUSAL_BINS[kind])

    async def expect_read_refused(self, address: int):
        """Read an unmapped ``address``: DECERR and BUS_ERROR.decode. Clears BUS_ERROR."""
        resp = (await self.axil.read(address, 4)).resp
        assert resp == RESP_DECERR, f"read of {address:#x}: response {resp}"
        await self._check_refusal(address, "decode")
        coverage.hit("errors", "decerr_read")

    async def _check_refusal(self, address: int, kind: str):
        reg = self.regs["BUS_ERROR"]
        want = reg.pack(reason=BusError[kind.upper()])
        got = await self.read("BUS_ERROR")
        assert got == want, f"BUS_ERROR {got:#x} after a refused access, expected {want:#x}"
        got = await self.read("BUS_ERROR_ADDR")
        assert got == address, f"BUS_ERROR_ADDR {got:#x}, expected {address:#x}"
        await self.write("BUS_ERROR", reg.pack(reason=~BusError(0)))
        got = await self.read("BUS_ERROR")
        assert got == 0, f"BUS_ERROR {got:#x} after writing 1 to clear its reason, expected 0"

    async def fields(self, reg: str) -> dict:
        """Every field of register ``reg``, read in one access."""
        return self.regs[reg].unpack(await self.read(reg))

    async def field(self, reg: str, field: str):
        return (await self.fields(reg))[field]

    async def clear(self, reg: str, *fields: str):
        """Clear the sticky (W1C) ``fields`` of ``reg``: write 1 to each."""
        await self.write(reg, self.regs[reg].pack(**dict.fromkeys(fields, 1)))

    async def enable(self, irq: bool = False):
        """Start an MVM on every input vector, results raw (CTRL)."""
        await self.set_correction(None, irq)

    # -- streams -----------------------------------------------------------------------

    def backpressure(self, p_source: float, p_sink: float):
        coverage.sample_stalls(p_source, p_sink, axil=self._axil_paused)
        self.source.set_stalls(p_source, self.rng)
        self.sink.set_stalls(p_sink, self.rng)

    def bus_pauses(self, probability: float):
        """Random idle cycles on all five AXI4-Lite channels (address, data and response of
        both directions): each cycle paused with ``probability``."""
        for channel in (self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                        self.axil.write_if.b_channel, self.axil.read_if.ar_channel,
                        self.axil.read_if.r_channel):
            channel.set_pause_generator(random_pauses(self.rng, probability))
        self._axil_paused = probability > 0
        coverage.hit("stalls.axil", "paused" if self._axil_paused else "none")

    def golden(self, x: np.ndarray, kind: InputKind = InputKind.FORWARD) -> np.ndarray:
        """The result the RTL must emit for the next vector ``x`` of ``kind`` (forward or
        backward), in the output format."""
        if kind == InputKind.BACKWARD:
            raw = self.state.backward(x[None, :], first_vector=self.sent_backward)[0]
            c = self.correction and self.row_correction
        else:
            raw = self.state.mvm(x[None, :], first_vector=self.sent)[0]
            c = self.correction
        if c is None:
            return self.fmt.uncorrected(raw)
        return self.fmt.correct(raw, c.offset, c.gain, self.correction.drift_scale)[0]

    async def send(self, x: np.ndarray, expect: bool = True,
                   kind: InputKind = InputKind.FORWARD):
        """Queue one input vector of ``kind``; with ``expect``, its golden result (none for
        an update) joins the scoreboard."""
        if expect and kind != InputKind.UPDATE:
            self.scoreboard.expect(self.golden(x, kind),
                                   ResultKind.BACKWARD if kind == InputKind.BACKWARD
                                   else ResultKind.FORWARD)
            if kind == InputKind.BACKWARD:
                self.sent_backward += 1
            else:
                self.sent += 1
            mode = "raw" if self.correction is None else "corrected"
            if mode not in self._modes_sampled:  # once per mode: export is not per vector
                self._modes_sampled.add(mode)
                coverage.hit("mode.mvm", mode)
        await self.source.send(vector_frame(x, self.cfg, kind))

    # -- calibration -------------------------------------------------------------------

    async def set_example_correction(self) -> Calibration:
        """Load coefficients that change every column's results (a real correction, not
        the identity) and turn correction on; returns them."""
        cols = np.arange(self.cfg.cols)
        cal = Calibration.reset(self.cfg.cols)
        cal.offset[:] = cols * 8 - 40
        cal.gain[:] = 12000 + 300 * cols % 9000
        await self.write_coefficients(cal.offset, cal.gain)
        await self.set_correction(cal)
        return cal

    async def set_correction(self, cal: Calibration | None, irq: bool = False):
        """Enable MVMs with result correction on, with the coefficients ``cal`` holds (the
        RTL's own), or off (``cal`` None)."""
        await self.write("CTRL", self.regs["CTRL"].pack(enable=1, irq_en=irq,
                                                        correct=cal is not None))
        self.correction = cal

    async def start_calibration(self, phases, k: int):
        """Start the engine on ``phases`` (names, see :class:`CalPhase`) with ``2**k`` MVMs
        per measurement."""
        await self.write("CAL_CTRL", self.regs["CAL_CTRL"].pack(
            start=1, phases=CalPhase.parse(phases), avg_log2=k))

    async def calibrate(self, phases, k: int, timeout_cycles: int = 10_000_000) -> dict:
        """Start the engine on ``phases`` with ``2**k`` MVMs per measurement and wait for it;
        returns the fields of CAL_STATUS. The MVM count of the golden model follows the
        engine's MVMs."""
        for p in phases:
            coverage.hit("mode.calibration", p)
        progress.report(self.progress_path, "calibrating")
        await self.start_calibration(phases, k)
        waited = 0
        while True:
            await ClockCycles(self.dut.clk, 100)
            waited += 100
            status = await self.fields("CAL_STATUS")
            if not status["busy"]:
                break
            assert waited < timeout_cycles, "calibration engine did not finish"
        self.sent = (self.model.integration + 1) // self.cfg.planes
        return status

    # -- program and verify ------------------------------------------------------------

    async def start_program(self, params: ProgramParams):
        """Set the engine's registers from ``params`` and start it."""
        regs = self.regs
        await self.write("PROG_LIMITS", regs["PROG_LIMITS"].pack(
            tol=params.tol, iterations=params.max_iter, width=params.width))
        await self.write("PROG_GAIN", regs["PROG_GAIN"].pack(set=params.set_gain,
                                                             reset=params.reset_gain))
        await self.write("PROG_CTRL", regs["PROG_CTRL"].pack(
            start=1, parallel=params.parallel, correct=params.correct))
        mode = ("parallel" if params.parallel else "serial") + (
            "_corrected" if params.correct else "_raw")
        if mode in coverage.BINS["mode.program"]:  # serial with corrected reads: no target
            coverage.hit("mode.program", mode)

    def target_frame(self, row: np.ndarray) -> AxiStreamFrame:
        """One row of signed read-count targets as a t_axis packet, padded to whole beats."""
        cfg = self.cfg
        mask = (1 << cfg.tgt_lane_width) - 1
        return AxiStreamFrame([int(v) & mask for v in row]
                              + [0] * (cfg.out_beats * cfg.lanes - cfg.cols))

    async def program(self, targets: np.ndarray, params: ProgramParams,
                      timeout_cycles: int = 50_000_000, start: bool = True
                      ) -> tuple[dict, np.ndarray]:
        """Program signed read-count ``targets`` with the engine: set the registers and start
        it (unless ``start`` is False: the caller did), stream one target packet per row,
        collect the per-row status packets. Returns the counters (``PROG_*`` registers, and
        ``cycles``) and the status flags ``(rows, cols)``."""
        cfg = self.cfg
        if start:
            await self.start_program(params)
        for r in range(cfg.rows):
            await self.target_source.send(self.target_frame(targets[r]))
        status = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)
        waited = 0
        progress.report(self.progress_path, "programming", 0, cfg.rows, "rows")
        for r in range(cfg.rows):
            frame = await with_timeout(self.sink.recv(), timeout_cycles * CLOCK_NS, "ns")
            status[r] = np.array(list(frame.tdata)[:cfg.cols], dtype=np.int64)
            progress.report(self.progress_path, "programming", r + 1, cfg.rows, "rows")
        while await self.field("PROG_STATUS", "busy"):
            await ClockCycles(self.dut.clk, 10)
            waited += 10
            assert waited < 10_000, "program-and-verify engine did not finish"
        counters = {name.lower()[5:]: await self.read(name) for name in (
            "PROG_PULSES", "PROG_PASSED", "PROG_FAILED", "PROG_STUCK", "PROG_READS",
            "PROG_STEPS", "PROG_CYCLES")}
        counters["status"] = await self.read("PROG_STATUS")
        self.state = self.chip.state(self.state.moment[0])
        return counters, status

    async def read_window(self, name: str) -> np.ndarray:
        w = self.windows[name]
        out = []
        for c in range(w.words):
            word = int.from_bytes((await self.axil.read(w.address(c), 4)).data, "little")
            out.append(word - (1 << 32) if w.signed and word >= 1 << 31 else word)
        return np.array(out, dtype=np.int64)

    async def read_calibration(self) -> Calibration:
        """The coefficients and registers the RTL holds."""
        cal = Calibration(await self.read_window("OFFSET"), await self.read_window("GAIN"),
                          await self.read_window("COL_STATUS"))
        cal.drift_ref = await self.read("DRIFT_REF")
        cal.drift_scale = await self.read("DRIFT_SCALE")
        return cal

    async def write_coefficients(self, offset, gain, rows: bool = False):
        """Load per-column coefficients from the host (for example an affine fit), or with
        ``rows`` the rows' (backward results: ROW_OFFSET, ROW_GAIN)."""
        names = ("ROW_OFFSET", "ROW_GAIN") if rows else ("OFFSET", "GAIN")
        for c in range(self.windows[names[0]].words):
            for name, value in zip(names, (offset[c], gain[c]), strict=True):
                await self.axil.write(self.windows[name].address(c),
                                      (int(value) & 0xFFFFFFFF).to_bytes(4, "little"))
        if rows:
            self.row_correction = Calibration(np.asarray(offset, dtype=np.int64),
                                              np.asarray(gain, dtype=np.int64),
                                              np.zeros(len(offset), dtype=np.int64))

    async def send_words(self, words: list[int], tuser=None):
        """Send raw lane words as one frame (for malformed vectors); ``tuser`` per beat's
        lanes (default: forward)."""
        await self.source.send(AxiStreamFrame(words, tuser=tuser))

    async def receive(self, with_kind: bool = False):
        """The next result frame's values (and, ``with_kind``, its ResultKind from TUSER);
        its length is checked against its kind."""
        frame = await self.sink.recv()
        words = list(frame.tdata)
        users = set(frame.tuser) if isinstance(frame.tuser, list) else {frame.tuser or 0}
        assert len(users) == 1, f"TUSER changed within a result frame: {sorted(users)}"
        kind = ResultKind(users.pop())
        length = self.cfg.rows if kind == ResultKind.BACKWARD else self.cfg.cols
        lanes = -(-length // self.cfg.lanes) * self.cfg.lanes
        assert len(words) == lanes, (f"{kind.name.lower()} result frame of {len(words)} lanes, "
                                     f"expected {lanes}")
        values = from_lanes(words, self.cfg, length)
        return (values, kind) if with_kind else values

    async def collect(self, count: int):
        for _ in range(count):
            got, kind = await self.receive(with_kind=True)
            self.received.append(got)
            self.scoreboard.check(got, kind)

    async def stream(self, x: np.ndarray) -> np.ndarray:
        """Send the vectors ``x`` and return their results (also checked bit for bit)."""
        first = len(self.received)
        collector = cocotb.start_soon(self.collect(len(x)))
        for v in x:
            await self.send(v)
        await with_timeout(collector, len(x) * self.cycles_per_mvm_bound() * 4 + 1000, "ns")
        return np.array(self.received[first:])

    def use_chip(self, chip: Chip, time: float = 0.0):
        """Put another analogue half behind the boundary (same tile) from the next cycle on,
        for example one with a fault: the bridge and the golden model follow it, and the
        event numbering (which keys the noise) goes on from the old one."""
        old = self.model
        self.chip, self.state = chip, chip.state(time)
        self.model = CycleModel(self.state)
        self.model.integration, self.model.reads = old.integration, old.reads
        self.model.back_integration, self.model.updates = old.back_integration, old.updates
        self.bridge.model = self.model

    def at_time(self, time: float):
        """Move the chip to ``time`` seconds after the reference read (drift): the
        analogue half and the golden model continue from there."""
        self.state = self.chip.state(time)
        self.model.set_state(self.state)

    async def drain(self, cycles: int):
        """Wait ``cycles`` and count any result that should not exist."""
        await ClockCycles(self.dut.clk, cycles)
        while not self.sink.empty():
            self.scoreboard.check(await self.receive())

    def random_vectors(self, count: int, np_rng: np.random.Generator) -> np.ndarray:
        x_max = self.cfg.x_max
        return np_rng.integers(-x_max, x_max + 1, size=(count, self.cfg.rows))

    def cycles_per_mvm_bound(self) -> int:
        cfg = self.cfg
        return cfg.analogue_min_cycles + 4 * cfg.planes + cfg.in_beats + cfg.out_beats + 16

