"""One tile of a layer being trained (:class:`TrainTile`): its chip, the golden update
engine its RTL twin runs, the offsets measured before training, the operation counters
that key the noise as the RTL's do, and the recording of every operation that
``aimc train --cosim`` replays through the Verilog."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import TileConfig
from .enums import InputKind, UpdateMode
from .fixedpoint import RESULT_FRAC
from .training import PROB_BITS

__all__ = ["CAL_READS_LOG2", "COEFFICIENTS", "REG_ORDER", "TrainTile"]



class TrainTile:
    """One tile of a layer: its chip, the golden update engine its RTL twin runs, the
    numbers of its forward, backward and update operations (they key the noise as the
    RTL's counters do) and, when recording, every operation with its result.

    Before training, the converters' offsets are measured, as the host of a real tile
    would: the average of ``2**CAL_READS_LOG2`` MVMs of a zero vector in each direction (the
    calibration engine's averaging arithmetic). From then on the tile corrects every result
    by them (OFFSET and ROW_OFFSET, gains 1), and its methods return the corrected results
    in ADC codes; the results the RTL emits (output format) are what is recorded.
    """

    def __init__(self, tile: TileConfig, model, seed: int, weights, record: bool = False):
        from .fixedpoint import ONE, CalFormat
        from .model import Chip
        from .model.update import UpdateEngine
        from .rtl.regmap import register_map

        self.tile, self.model, self.seed = tile, model, seed
        self.chip = Chip(tile, model, seed=seed)
        self.chip.set_training_weights(weights)
        self.scale = self.chip.training_scale
        seed_reg = {r.name: r for r in register_map(tile)}["UPD_SEED"]
        self.engine = UpdateEngine(tile, seed=seed_reg.fields[0].reset)
        self.forwards = self.backwards = self.updates = 0
        self.slots = self.pulses = self.line_pulses = self.capped = 0
        self.cycles = self.update_cycles = 0
        self.record = record
        self.initial = self.chip.training.w.copy() if record else None
        self.ops: list[dict] = []
        self.fmt, self._one = CalFormat(tile), ONE
        self.col_offset = self.row_offset = None
        # Offsets: zero vectors in both directions, averaged.
        n = 1 << CAL_READS_LOG2
        fwd = sum(self._forward_raw(np.zeros(tile.rows, dtype=np.int64)) for _ in range(n))
        bwd = sum(self._backward_raw(np.zeros(tile.cols, dtype=np.int64)) for _ in range(n))
        self.col_offset = self.fmt.average(fwd, CAL_READS_LOG2)
        self.row_offset = self.fmt.average(bwd, CAL_READS_LOG2)
        if record:
            self.ops.append({"kind": "coefficients", "col_offset": self.col_offset,
                             "row_offset": self.row_offset})

    def _state(self):
        return self.chip.state(0.0)

    def _out(self, raw, offset):
        """The result words the RTL emits: raw before the offsets are known, then
        corrected."""
        if offset is None:
            return self.fmt.uncorrected(raw)
        return self.fmt.correct(raw, offset, np.full(len(offset), self._one))[0]

    def _forward_raw(self, x_int):
        raw = self._state().mvm(x_int[None, :], first_vector=self.forwards)[0]
        self.forwards += 1
        self.cycles += self.tile.mvm_period_cycles
        out = self._out(raw, self.col_offset)
        if self.record:
            self.ops.append({"kind": "forward", "vector": x_int.copy(), "result": out})
        return raw if self.col_offset is None else out

    def _backward_raw(self, d_int):
        raw = self._state().backward(d_int[None, :], first_vector=self.backwards)[0]
        self.backwards += 1
        self.cycles += self.tile.bwd_period_cycles
        out = self._out(raw, self.row_offset)
        if self.record:
            self.ops.append({"kind": "backward", "vector": d_int.copy(), "result": out})
        return raw if self.row_offset is None else out

    def forward(self, x_int) -> np.ndarray:
        """The corrected results of a forward MVM, ADC codes (``(cols,)``)."""
        return self._forward_raw(x_int) / 2**RESULT_FRAC

    def backward(self, d_int) -> np.ndarray:
        """The corrected results of a backward MVM, ADC codes (``(rows,)``)."""
        return self._backward_raw(d_int) / 2**RESULT_FRAC

    def update(self, x_int, d_int, regs: dict):
        """One update from ``d_int`` and the last forward input ``x_int`` (the row
        driver's), with the UPD_* register values ``regs`` (mode, manage, k, eta, bl,
        scale_x, scale_d)."""
        from .rtl.update import update_cycles

        mode = dict(k=regs["k"], deterministic=regs["mode"] == UpdateMode.DETERMINISTIC,
                    record=self.record)
        if regs["manage"]:
            res = self.engine.update_managed(self.chip, x_int, d_int, eta=regs["eta"],
                                             bl_max=regs["bl"], **mode)
            self.capped += res.schedule.m_q16 > regs["bl"] << PROB_BITS
        else:
            res = self.engine.update(self.chip, x_int, d_int, bl=regs["bl"],
                                     scale_x=regs["scale_x"], scale_d=regs["scale_d"], **mode)
        self.updates += 1
        self.slots += res.slots
        self.pulses += res.up + res.down
        self.line_pulses += res.line_pulses
        cycles = update_cycles(self.tile, res.slots, bool(regs["manage"]))
        self.cycles += cycles
        self.update_cycles += cycles
        if self.record:
            self.ops.append({"kind": "update", "vector": d_int.copy(), "regs": dict(regs),
                             "x": x_int.copy(), "counts": (res.slots, res.up, res.down),
                             "fire_rows": res.fire_rows, "fire_cols": res.fire_cols,
                             "weights": self.chip.training.w.copy()})
        return res

    @property
    def weights(self) -> np.ndarray:
        """Device weights ``w - w_ref``."""
        return self.chip.training.weights

    def save(self, path: Path) -> Path:
        """The recorded operations as an .npz the cosimulation replays
        (:func:`aimc.cosim.test_training.train_replay`)."""
        n = len(self.ops)
        width = max(self.tile.rows, self.tile.cols)
        kinds = np.array([{"forward": InputKind.FORWARD.value, "backward":
                           InputKind.BACKWARD.value, "update": InputKind.UPDATE.value,
                           "coefficients": COEFFICIENTS}[op["kind"]] for op in self.ops],
                         dtype=np.int64)
        vectors = np.zeros((n, width), dtype=np.int64)
        results = np.zeros((n, width), dtype=np.int64)
        regs = np.zeros((n, 7), dtype=np.int64)
        counts = np.zeros((n, 3), dtype=np.int64)
        weights = []
        for i, op in enumerate(self.ops):
            if "vector" in op:
                vectors[i, :len(op["vector"])] = op["vector"]
            if "result" in op:
                results[i, :len(op["result"])] = op["result"]
            if op["kind"] == "update":
                regs[i] = [int(getattr(v, "value", v)) for v in map(op["regs"].get, REG_ORDER)]
                counts[i] = op["counts"]
                weights.append(op["weights"])
        w = np.array(weights) if weights else np.zeros((0, self.tile.rows, self.tile.cols))
        np.savez_compressed(path, kinds=kinds, vectors=vectors, results=results, regs=regs,
                            counts=counts, weights=w, initial=self.initial,
                            col_offset=self.col_offset, row_offset=self.row_offset)
        return path


#: Zero-vector MVMs averaged per direction for the offsets (16, the demo's calibration).
CAL_READS_LOG2 = 4
#: Kind code of the operation that loads the offsets and turns correction on.
COEFFICIENTS = -1
#: Order of the update registers in a recording.
REG_ORDER = ("mode", "manage", "k", "eta", "bl", "scale_x", "scale_d")
