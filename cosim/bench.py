"""Test bench of the tile: clock, reset, AXI bus functional models, analogue bridge, scoreboard."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from ..config import TileConfig
from ..model import Chip, CycleModel, ModelConfig
from ..rtl.regmap import register_map
from .bridge import AnalogueBridge

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


def to_lanes(x: np.ndarray, cfg: TileConfig) -> list[int]:
    """One input vector as stream lane words (two's complement), padded to whole beats."""
    mask = (1 << cfg.in_lane_width) - 1
    words = [int(v) & mask for v in x]
    return words + [0] * (cfg.in_beats * cfg.lanes - len(words))


def from_lanes(words, cfg: TileConfig) -> np.ndarray:
    """Signed results from the lane words of one output frame."""
    w = cfg.out_lane_width
    vals = np.array(list(words)[:cfg.cols], dtype=np.int64)
    return np.where(vals >= 1 << (w - 1), vals - (1 << w), vals)


class Scoreboard:
    """In-order checker: every expected vector exactly once, in order, bit for bit."""

    def __init__(self):
        self.expected = []
        self.matched = 0
        self.mismatches = []
        self.unexpected = 0

    def expect(self, vector: np.ndarray):
        self.expected.append(np.asarray(vector))

    def check(self, got: np.ndarray):
        if not self.expected:
            self.unexpected += 1
            return
        want = self.expected.pop(0)
        if np.array_equal(want, got):
            self.matched += 1
        else:
            self.mismatches.append((self.matched + len(self.mismatches), want, got))

    @property
    def missing(self) -> int:
        return len(self.expected)


class TileBench:
    """Owns the clock, the bus models, the analogue bridge and the golden model."""

    def __init__(self, dut, cfg: TileConfig, chip: Chip, seed: int = 1, time: float = 0.0):
        self.dut, self.cfg, self.chip = dut, cfg, chip
        self.state = chip.state(time)  # the chip at the moment the test runs
        self.rng = random.Random(seed)
        self.regs = {r.name: r for r in register_map(cfg)}
        clk, rst = dut.clk, dut.rst
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                  clk, rst)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis",
                                                               bus_separator="__"),
                                      clk, rst, byte_size=cfg.in_lane_width)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis", bus_separator="__"),
                                  clk, rst, byte_size=cfg.out_lane_width)
        for log in (self.axil.write_if.log, self.axil.read_if.log, self.source.log,
                    self.sink.log):
            log.setLevel("WARNING")
        self.model = CycleModel(self.state)
        self.bridge = AnalogueBridge(dut, self.model)
        self.scoreboard = Scoreboard()
        self.sent = 0

    async def start(self):
        Clock(self.dut.clk, CLOCK_NS, unit="ns").start()
        self.dut.rst.value = 1
        self.bridge.start()
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    # -- registers ---------------------------------------------------------------------

    def address(self, name: str) -> int:
        return self.regs[name].offset

    async def read(self, name: str) -> int:
        return int.from_bytes((await self.axil.read(self.address(name), 4)).data, "little")

    async def write(self, name: str, value: int):
        await self.axil.write(self.address(name), value.to_bytes(4, "little"))

    async def field(self, reg: str, field: str) -> int:
        f = self.regs[reg].field(field)
        return (await self.read(reg) >> f.lsb) & ((1 << f.width) - 1)

    async def enable(self, irq: bool = False):
        ctrl = self.regs["CTRL"]
        value = (1 << ctrl.field("enable").lsb) | (int(irq) << ctrl.field("irq_en").lsb)
        await self.write("CTRL", value)

    # -- streams -----------------------------------------------------------------------

    def backpressure(self, p_source: float, p_sink: float):
        if p_source:
            self.source.set_pause_generator(random_pauses(self.rng, p_source))
        if p_sink:
            self.sink.set_pause_generator(random_pauses(self.rng, p_sink))

    async def send(self, x: np.ndarray, expect: bool = True):
        """Queue one input vector; with ``expect``, its golden result joins the scoreboard."""
        if expect:
            self.scoreboard.expect(self.state.mvm(x[None, :], first_vector=self.sent)[0])
            self.sent += 1
        await self.source.send(AxiStreamFrame(to_lanes(x, self.cfg)))

    async def send_words(self, words: list[int]):
        """Send raw lane words as one frame (for malformed vectors)."""
        await self.source.send(AxiStreamFrame(words))

    async def receive(self) -> np.ndarray:
        frame = await self.sink.recv()
        words = list(frame.tdata)
        assert len(words) == self.cfg.out_beats * self.cfg.lanes, (
            f"result frame of {len(words)} lanes, expected {self.cfg.out_beats * self.cfg.lanes}")
        return from_lanes(words, self.cfg)

    async def collect(self, count: int):
        for _ in range(count):
            self.scoreboard.check(await self.receive())

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


def chip_from_env(cfg: TileConfig, env) -> Chip:
    """The chip a cosimulation test runs against, described by ``AIMC_*`` variables:
    ``AIMC_MODEL`` (a preset name, or JSON tables as in a model configuration file, which
    may name a ``preset``), ``AIMC_SEED`` (chip seed, also of the random weights) and
    ``AIMC_TIME`` (seconds since programming)."""
    text = env.get("AIMC_MODEL", "ideal")
    model = ModelConfig.from_dict(json.loads(text)) if text.lstrip().startswith("{") else text
    seed = int(env.get("AIMC_SEED", "1"))
    chip = Chip(cfg, model, seed=seed)
    w_rng = np.random.default_rng(seed)
    chip.program(w_rng.integers(-chip.w_max, chip.w_max + 1, size=(cfg.rows, cfg.cols)))
    return chip


