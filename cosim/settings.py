"""Everything a cosimulation run needs, in one validated object.

The host (the ``aimc`` command, the demo, the benchmarks, the pytest suites) describes a run
as a :class:`CosimSettings`; construction checks every value, so that a bad one is refused by
name, before any simulator starts. :func:`aimc.cosim.runner.run` hands the object to the
simulator as one environment variable (:meth:`CosimSettings.to_env`) and the cocotb tests
read it back with :meth:`CosimSettings.from_env`: no test parses an environment variable of
its own.

No cocotb import here: the host side imports this module without a simulator.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..config import TileConfig
from ..fixedpoint import MAX_AVG_LOG2
from ..model.adc import AdcBank
from ..model.config import ModelConfig, preset
from ..model.program import ProgramParams
from ..numeric import as_int, as_real, is_integer, is_number

__all__ = ["ENV", "NETWORK_MODES", "CosimSettings", "NetworkPhase", "NetworkPlan",
           "cocotb_tests", "skip_reason", "TILE_MODULE", "TRAINING_MODULE"]

#: The one environment variable that carries the settings to the simulator.
ENV = "AIMC_SETTINGS"

#: What a network phase does to its results (see :mod:`aimc.cosim.test_network`): raw; with
#: the on-chip calibration's coefficients; with the host's affine coefficients, drift scale
#: 1; the same after the engine's drift compensation at that moment.
NETWORK_MODES = ("raw", "cal", "affine", "affine_drift")

_SEED_MAX = 2 ** 64 - 1


#: The cocotb tests of every tile, and those of the training hardware (training tiles).
TILE_MODULE, TRAINING_MODULE = "aimc.cosim.test_tile", "aimc.cosim.test_training"


def cocotb_tests(module: str) -> tuple[str, ...]:
    """The names of the cocotb tests (``@cocotb.test()`` coroutines) of ``module`` (or of
    several, comma separated), in source order, read from its source without importing it
    (no simulator needed).

    Raises
    ------
    ValueError
        ``module`` cannot be found.
    """
    if "," in module:
        return tuple(t for m in module.split(",") for t in cocotb_tests(m.strip()))
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"cocotb test module {module!r} not found on the Python path")
    return _tests_in(spec.origin)


@functools.cache
def _tests_in(path: str) -> tuple[str, ...]:
    tree = ast.parse(Path(path).read_text(), path)

    def is_test(d) -> bool:
        d = d.func if isinstance(d, ast.Call) else d
        return (isinstance(d, ast.Attribute) and d.attr == "test"
                and isinstance(d.value, ast.Name) and d.value.id == "cocotb")

    return tuple(node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)
                 and any(is_test(d) for d in node.decorator_list))


#: Tests that do not apply to every tile: (whether the test applies to a tile, why not).
#: The cocotb test skips itself with the reason (:func:`skip_reason`), and the command line
#: reports it; a test that does not apply is never counted as a failure.
_APPLIES = {
    "program_errors": (
        lambda t: t.out_beats >= 2,
        lambda t: f"its target packet shorter than a row needs rows of at least two stream "
                  f"beats (cols > lanes); this tile's {t.cols} columns fit one beat of "
                  f"{t.lanes} lanes"),
    "reset_recovery": (
        lambda t: t.planes == 1,
        lambda t: "the golden model's MVM numbering after an integration cut short is "
                  "defined for PWM tiles only (one integration per MVM); this tile is "
                  "bit-serial"),
}


def skip_reason(test: str, tile: TileConfig) -> str | None:
    """Why the cocotb test ``test`` does not apply to ``tile`` (None: it applies)."""
    rule = _APPLIES.get(test)
    if rule is None or rule[0](tile):
        return None
    return rule[1](tile)


def _path(value, what: str) -> Path | None:
    """An absolute path (the simulator runs in its own directory), or None."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise TypeError(f"{what} must be a path, not {value!r}")
    return Path(os.path.abspath(value))


def _bool(value, what: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{what} must be True or False, not {value!r}")
    return bool(value)


def _integer(value, what: str, lo: int, hi: int | None, allowed: str) -> int:
    return as_int(value, what, lo, hi, allowed=allowed)


def _seconds(value, what: str) -> float:
    return as_real(value, what, 0.0, allowed="a number of seconds >= 0")


@dataclass(frozen=True)
class NetworkPhase:
    """One condition of a network block run.

    Parameters
    ----------
    name : str
        The condition's name (also the key of its figures).
    time : float
        Seconds after the reference read at which the phase runs (drift), >= 0.
    mode : str
        One of :data:`NETWORK_MODES`.
    inputs : path
        ``.npy`` of the phase's input vectors, ``(n, rows)``.
    out : path
        ``.npy`` the phase's result codes are written to.

    Raises
    ------
    ValueError
        An empty name, a negative time or an unknown mode.
    TypeError
        A path that is not one.
    """

    name: str
    time: float
    mode: str
    inputs: Path
    out: Path

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"network phase name must be a non-empty string, not {self.name!r}")
        object.__setattr__(self, "time", _seconds(self.time, f"phase {self.name}: time"))
        if self.mode not in NETWORK_MODES:
            raise ValueError(f"phase {self.name}: mode must be one of "
                             f"{', '.join(NETWORK_MODES)}, not {self.mode!r}")
        for name in ("inputs", "out"):
            object.__setattr__(self, name, _path(getattr(self, name),
                                                 f"phase {self.name}: {name}"))


@dataclass(frozen=True)
class NetworkPlan:
    """What :mod:`aimc.cosim.test_network` does with one layer block: program the targets,
    calibrate, fit the host's affine correction on the calibration subset, then run every
    phase in order.

    Parameters
    ----------
    targets : path
        ``.npy`` of signed read-count targets, ``(rows, cols)``.
    fit_inputs, fit_ideal : path
        ``.npy`` of the calibration subset's inputs and of an ideal tile's codes for them.
    phases : sequence of NetworkPhase (or of dicts of its fields)
        Run in this order; their times must not decrease, their names must differ.
    fit_out : path, optional
        Where the raw codes of the calibration subset are written.
    progress : path, optional
        A JSON file rewritten with the MVMs done so far as the run goes.

    Raises
    ------
    ValueError
        No phases, phases out of time order, two phases of one name, or a bad phase.
    """

    targets: Path
    fit_inputs: Path
    fit_ideal: Path
    phases: tuple[NetworkPhase, ...]
    fit_out: Path | None = None
    progress: Path | None = None

    def __post_init__(self):
        for name in ("targets", "fit_inputs", "fit_ideal", "fit_out", "progress"):
            object.__setattr__(self, name, _path(getattr(self, name), f"network plan {name}"))
        if self.targets is None or self.fit_inputs is None or self.fit_ideal is None:
            raise ValueError("a network plan needs targets, fit_inputs and fit_ideal")
        phases = tuple(p if isinstance(p, NetworkPhase) else NetworkPhase(**p)
                       for p in self.phases)
        if not phases:
            raise ValueError("a network plan needs at least one phase")
        times = [p.time for p in phases]
        if times != sorted(times):
            raise ValueError(f"network phase times must not decrease, not {times}")
        names = [p.name for p in phases]
        if len(set(names)) != len(names):
            raise ValueError(f"network phase names must differ, not {names}")
        object.__setattr__(self, "phases", phases)

    def to_dict(self) -> dict:
        def text(p):
            return None if p is None else str(p)

        return {"targets": text(self.targets), "fit_inputs": text(self.fit_inputs),
                "fit_ideal": text(self.fit_ideal), "fit_out": text(self.fit_out),
                "progress": text(self.progress),
                "phases": [{k: text(v) if isinstance(v, Path) else v
                            for k, v in dataclasses.asdict(p).items()} for p in self.phases]}

    @classmethod
    def from_dict(cls, d: dict) -> NetworkPlan:
        return cls(**d)


@dataclass(frozen=True)
class CosimSettings:
    """The settings of one cosimulation run: which tests, against which tile and chip, with
    which stimulus, and where the figures go.

    Parameters
    ----------
    tile : TileConfig
        The tile the Verilog is generated for.
    model : str, ModelConfig or dict
        The analogue model: a preset name, a configuration, or its tables (as
        :meth:`ModelConfig.from_dict` takes them). Held as a ModelConfig.
    chip_seed : int
        Keys the chip's static mismatch and all its noise, 0..2**64-1 (``--seed``).
    stimulus_seed : int, optional
        Keys the random weights and the random input vectors and register writes of the
        tests (each test offsets it by a constant of its own), 0..2**64-1. Default: the chip
        seed.
    pause_seed : int, optional
        Keys the random pauses of the bus models (stream stalls and AXI4-Lite idle
        cycles), 0..2**64-1. Default: the chip seed.
    vectors : int, optional
        Random vectors the tests stream, >= 1 (``--vectors``). Default: each test's own.
    stalls : (float, float)
        Probabilities of a pause on each cycle of the input and the result stream in
        ``mvm_stream``, each in [0, 1).
    time : float
        Seconds after the reference read the chip is at when a test starts, >= 0 (``--time``).
    column_faults : mapping of str to sequence of int
        Converter faults (``dead``, ``stuck-high``, ``stuck-low``) to the columns that have
        them.
    stuck : sequence of (row, col, side, level)
        Devices stuck at g_min (level -1) or g_max (+1), or freed (0); side 0 is G+.
    erased : bool
        Leave every device at g_min instead of programming random weights.
    program : ProgramParams or dict
        The program-and-verify engine's settings for ``program_verify``.
    targets : path, optional
        ``.npy`` of read-count targets for ``program_verify`` (default: random ones).
    replay : path, optional
        ``.npz`` of one tile's recorded training operations for ``train_replay``
        (:meth:`aimc.train_tile.TrainTile.save`).
    cal_k : int
        Each calibration measurement averages ``2**cal_k`` MVMs, 0..8 (``--avg-log2``).
    stats : path, optional
        The JSON file the tests write their figures to, one entry per test.
    progress : path, optional
        A JSON file the bench rewrites with where the run is (:mod:`aimc.progress`: the
        phase, rows programmed, MVMs streamed), for the host to show.
    network : NetworkPlan or dict, optional
        The plan of :mod:`aimc.cosim.test_network`.
    plan : path, optional
        A file with the plan of a test module that brings its own (``.npz``: the block
        replays of :mod:`aimc.cosim.test_api`, written by :mod:`aimc.cosim.replay`).
    waves : bool
        Dump waveforms.
    correct : bool
        ``timing_probe`` (bench/cosim_probe.py) streams with result correction on.
    module : str
        The cocotb test module(s), comma separated. Default: :data:`TILE_MODULE`, and on a
        training tile :data:`TRAINING_MODULE` too.
    tests : str or sequence of str
        The tests of ``module`` to run (a string: comma separated; ``--test``); empty: all.

    Raises
    ------
    ValueError
        A value outside what is allowed; the message names the command-line option where
        there is one.
    TypeError
        A value of the wrong type.
    """

    tile: TileConfig = TileConfig()
    model: ModelConfig | str = "ideal"
    chip_seed: int = 1
    stimulus_seed: int | None = None
    pause_seed: int | None = None
    vectors: int | None = None
    stalls: tuple[float, float] = (0.2, 0.3)
    time: float = 0.0
    column_faults: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    stuck: tuple[tuple[int, int, int, int], ...] = ()
    erased: bool = False
    program: ProgramParams = ProgramParams()
    targets: Path | None = None
    replay: Path | None = None
    cal_k: int = 6
    stats: Path | None = None
    progress: Path | None = None
    network: NetworkPlan | None = None
    plan: Path | None = None
    waves: bool = False
    correct: bool = True
    module: str = ""
    tests: tuple[str, ...] = ()

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        if not isinstance(self.tile, TileConfig):
            raise TypeError(f"CosimSettings.tile must be a TileConfig, not {self.tile!r}")
        tile = self.tile
        model = self.model
        if isinstance(model, str):
            model = preset(model)
        elif isinstance(model, Mapping):
            model = ModelConfig.from_dict(dict(model))
        if not isinstance(model, ModelConfig):
            raise TypeError(f"CosimSettings.model must be a preset name or a ModelConfig, "
                            f"not {self.model!r}")
        put("model", model)
        seed_range = "an integer in 0..2**64-1"
        put("chip_seed", _integer(self.chip_seed, "--seed", 0, _SEED_MAX, seed_range))
        for name in ("stimulus_seed", "pause_seed"):
            value = getattr(self, name)
            put(name, self.chip_seed if value is None else
                _integer(value, f"CosimSettings.{name}", 0, _SEED_MAX, seed_range))
        if self.vectors is not None:
            put("vectors", _integer(self.vectors, "--vectors", 1, None, "an integer >= 1"))
        stalls = tuple(self.stalls) if isinstance(self.stalls, tuple | list) else None
        if stalls is None or len(stalls) != 2 or not all(
                is_number(p) and 0 <= p < 1
                for p in stalls):
            raise ValueError(f"CosimSettings.stalls must be two probabilities in [0, 1) "
                             f"(input stream, result stream), not {self.stalls!r}")
        put("stalls", tuple(float(p) for p in stalls))
        put("time", _seconds(self.time, "--time"))
        if not isinstance(self.column_faults, Mapping):
            raise TypeError(f"CosimSettings.column_faults must map a fault to columns, "
                            f"not {self.column_faults!r}")
        faults = {}
        for kind, columns in self.column_faults.items():
            if kind not in AdcBank.FAULTS:
                raise ValueError(f"CosimSettings.column_faults: a fault must be one of "
                                 f"{', '.join(AdcBank.FAULTS)}, not {kind!r}")
            faults[kind] = tuple(
                _integer(c, f"CosimSettings.column_faults[{kind!r}]: a column", 0,
                         tile.cols - 1, f"an integer in 0..{tile.cols - 1}") for c in columns)
        put("column_faults", MappingProxyType(faults))
        stuck = []
        for device in self.stuck:
            row, col, side, level = tuple(device) if len(device) == 4 else (None,) * 4
            if not (_in(row, 0, tile.rows) and _in(col, 0, tile.cols) and _in(side, 0, 2)
                    and _in(level, -1, 2)):
                raise ValueError(f"CosimSettings.stuck: a device must be [row, col, side, "
                                 f"level] with row in 0..{tile.rows - 1}, col in "
                                 f"0..{tile.cols - 1}, side 0 or 1 and level -1, 0 or 1, "
                                 f"not {device!r}")
            stuck.append((int(row), int(col), int(side), int(level)))
        put("stuck", tuple(stuck))
        for name in ("erased", "waves", "correct"):
            put(name, _bool(getattr(self, name), f"CosimSettings.{name}"))
        program = self.program
        if isinstance(program, Mapping):
            program = ProgramParams(**program)
        if not isinstance(program, ProgramParams):
            raise TypeError(f"CosimSettings.program must be a ProgramParams, not {program!r}")
        put("program", program)
        put("cal_k", _integer(self.cal_k, "--avg-log2", 0, MAX_AVG_LOG2,
                              f"an integer in 0..{MAX_AVG_LOG2}"))
        for name in ("targets", "stats", "progress", "replay", "plan"):
            put(name, _path(getattr(self, name), f"CosimSettings.{name}"))
        network = self.network
        if isinstance(network, Mapping):
            network = NetworkPlan.from_dict(dict(network))
        if network is not None and not isinstance(network, NetworkPlan):
            raise TypeError(f"CosimSettings.network must be a NetworkPlan, not {network!r}")
        put("network", network)
        if not isinstance(self.module, str):
            raise TypeError(f"CosimSettings.module must be a module name, not {self.module!r}")
        module = self.test_modules
        tests = self.tests
        if isinstance(tests, str):
            tests = [t.strip() for t in tests.split(",") if t.strip()]
        tests = tuple(tests)
        known = cocotb_tests(module)
        for name in tests:
            if name not in known and name in cocotb_tests(TRAINING_MODULE):
                raise ValueError(f"--test {name} needs the training hardware: a tile "
                                 f"generated with --training (TileConfig.training)")
            if name not in known:
                raise ValueError(f"--test must name cocotb tests of {module} "
                                 f"({', '.join(known)}), not {name!r}")
        put("tests", tests)

    def skipped(self) -> dict[str, str]:
        """The tests of this run (``tests``, or every test of :attr:`test_modules`) that do
        not apply to its tile, each with the reason."""
        tests = self.tests or cocotb_tests(self.test_modules)
        return {t: r for t in tests if (r := skip_reason(t, self.tile)) is not None}

    @property
    def test_modules(self) -> str:
        """The cocotb test module(s) of the run, comma separated: :attr:`module`, or by
        default :data:`TILE_MODULE` and on a training tile :data:`TRAINING_MODULE` too."""
        return self.module or (TILE_MODULE + ("," + TRAINING_MODULE if self.tile.training
                                              else ""))

    def replace(self, **changes) -> CosimSettings:
        """A copy with the fields ``changes`` names set (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON values: the tile's and the model's tables, paths as strings."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, TileConfig | ModelConfig | NetworkPlan):
                value = value.to_dict()
            elif isinstance(value, ProgramParams):
                value = dataclasses.asdict(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            elif isinstance(value, Mapping):
                value = {k: list(v) for k, v in value.items()}
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> CosimSettings:
        """The settings :meth:`to_dict` gave (or a subset of them).

        Raises
        ------
        ValueError
            A key that is not a field, or a bad value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"CosimSettings has no field(s) {', '.join(sorted(unknown))}")
        d = dict(d)
        if isinstance(d.get("tile"), Mapping):
            d["tile"] = TileConfig.from_dict(d["tile"])
        return cls(**d)

    def to_env(self) -> dict[str, str]:
        """The environment the simulator needs to rebuild these settings (one variable)."""
        return {ENV: json.dumps(self.to_dict(), sort_keys=True)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CosimSettings:
        """The settings :meth:`to_env` wrote (``environ`` defaults to ``os.environ``).

        Raises
        ------
        RuntimeError
            The variable is not set: the tests were not started by
            :func:`aimc.cosim.runner.run`.
        """
        environ = os.environ if environ is None else environ
        if ENV not in environ:
            raise RuntimeError(f"{ENV} is not set: run the cocotb tests through "
                               f"aimc.cosim.runner.run")
        return cls.from_dict(json.loads(environ[ENV]))

    # -- what the tests draw from the settings ---------------------------------------------

    def vector_count(self, default: int) -> int:
        """The number of random vectors to stream: ``vectors``, or a test's ``default``."""
        return default if self.vectors is None else self.vectors

    def stimulus_rng(self, offset: int = 0) -> np.random.Generator:
        """A generator of random stimulus: the stimulus seed plus a test's ``offset``."""
        return np.random.default_rng(self.stimulus_seed + offset)

    def pause_rng(self) -> random.Random:
        """The generator of the bus models' random pauses."""
        return random.Random(self.pause_seed)

    def chip(self):
        """A new chip as the settings describe it: stuck devices, then random weights
        (uniform over +-w_max, from the stimulus seed) unless ``erased``, then the column
        faults."""
        from ..model import Chip

        tile = self.tile
        chip = Chip(tile, self.model, seed=self.chip_seed)
        for row, col, side, level in self.stuck:
            chip.set_stuck(row, col, side, level)
        if not self.erased:
            rng = self.stimulus_rng()
            chip.program(rng.integers(-chip.w_max, chip.w_max + 1, size=(tile.rows, tile.cols)))
        for kind, columns in self.column_faults.items():
            for c in columns:
                chip.set_column_fault(c, kind)
        return chip

    # -- figures -------------------------------------------------------------------------

    def write_stats(self, test: str, stats: dict) -> None:
        """Add the figures of ``test`` to the stats file (nothing without one). Each test of
        a run has its own entry, so that a run of several keeps every test's figures."""
        if self.stats is None:
            return
        doc = json.loads(self.stats.read_text()) if self.stats.exists() else {}
        doc[test] = stats
        tmp = self.stats.with_name(self.stats.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, self.stats)

    def read_stats(self, test: str | None = None) -> dict:
        """The figures of ``test`` in the stats file (every test's, keyed by name, when
        ``test`` is None: none without a file).

        Raises
        ------
        RuntimeError
            ``test`` wrote no figures (or there is no stats file).
        """
        doc = {}
        if self.stats is not None and self.stats.exists():
            doc = json.loads(self.stats.read_text())
        if test is None:
            return doc
        if test not in doc:
            raise RuntimeError(f"test {test} wrote no figures to {self.stats} (it has: "
                               f"{', '.join(doc) or 'none'})")
        return doc[test]


def _in(value, lo: int, hi: int) -> bool:
    """Whether ``value`` is an integer in ``lo..hi-1``."""
    return is_integer(value) and lo <= value < hi
