"""The plan of a block replay: what :mod:`aimc.cosim.test_api` does on the RTL to reproduce
one block of a :class:`~aimc.network.TiledNetwork` and stream a batch through it.

A plan holds the block's drift reference (``DRIFT_X``, ``DRIFT_ROWS``, ``DRIFT_COLS``,
``DRIFT_MIN``), its history (direct programming events, program-and-verify runs,
calibration-engine runs with the MVM number and moment at which each began and the
coefficients the golden algorithm computed, coefficient and drift-scale writes by the host),
and the batch: its inputs, the number of its first MVM, its moment, whether it is corrected,
and the results the batch path gave. The RTL's MVMs are numbered in the model's event
sequence; reads on the host between two engine runs (which the replay does not stream) are
skipped by moving the numbering on to the next recorded number, so every noise event of the
replay is the batch path's.

No cocotb import here: the host writes plans, the cocotb test reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["read_plan", "write_plan"]


def write_plan(path, block, x, first: int, time: float, correct: bool, expect) -> None:
    """Write the replay plan of ``block`` (a block of a TiledNetwork) and a batch ``x``
    (block inputs, ``(n, rows)``) starting at MVM ``first`` at ``time``, with the results
    ``expect`` the batch path gave (output format)."""
    arrays = {"x": np.asarray(x, dtype=np.int64), "expect": np.asarray(expect, dtype=np.int64),
              "targets": block.targets, "ref_rows": block.reference.rows,
              "ref_cols": block.reference.cols.astype(np.int64)}
    ops = []
    for i, op in enumerate(block.history):
        entry = {}
        for key, value in op.items():
            if isinstance(value, np.ndarray):
                arrays[f"op{i}_{key}"] = value
                entry[key] = {"array": f"op{i}_{key}"}
            elif key == "result":
                entry[key] = {}
                for k, v in value.items():
                    if isinstance(v, np.ndarray):
                        arrays[f"op{i}_result_{k}"] = v
                        entry[key][k] = {"array": f"op{i}_result_{k}"}
                    else:
                        entry[key][k] = v
            else:
                entry[key] = value
        ops.append(entry)
    meta = {"ops": ops, "first": int(first), "time": float(time), "correct": bool(correct),
            "ref_x": block.reference.x, "ref_min": block.reference.min_sum}
    np.savez(Path(path), meta=np.array(json.dumps(meta)), **arrays)


def read_plan(path) -> dict:
    """The plan :func:`write_plan` wrote, arrays restored in place."""
    with np.load(Path(path)) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))

    def restore(value):
        if isinstance(value, dict) and set(value) == {"array"}:
            return arrays[value["array"]]
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        return value

    meta["ops"] = [restore(op) for op in meta["ops"]]
    meta.update({k: arrays[k] for k in ("x", "expect", "targets", "ref_rows", "ref_cols")})
    return meta
