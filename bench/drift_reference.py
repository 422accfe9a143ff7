"""Drift compensation on sparsely used tiles: the scale measured with the registers at reset
and with the block's own reference, against the true scale (a benchmark, not a test).

    .venv/bin/python bench/drift_reference.py [--chips 20] [--time 86400]

Layers of random normal weights that use 3 %, 25 % and 100 % of a 64x64 ``pcm`` tile, and
the issue's 16x2 layer, run as the demo runs a block (:class:`aimc.network.TiledNetwork`:
mapped with positive training inputs, which set the layer's ADC step; program-and-verify
with corrected reads; the host's affine correction); the drift reference captured right
after programming and the drift phase ``--time`` later (``2**4`` MVMs per measurement), with
three references: ``before`` (the algorithm before issue 18: every row at ``DRIFT_X = 63``,
every column, no minimum), ``reset`` (the same with DRIFT_MIN at reset) and ``block``
(:meth:`DriftReference.for_weights`, what :class:`TiledNetwork` uses). The true scale is the
least-squares factor that maps the drifted effective weights back onto the programmed ones
(``true_drift_scale``). Prints, per block and reference, the median measured and true
scales, the median and worst ``|measured / true - 1|`` and the chips refused (signal below
DRIFT_MIN); writes build/bench/drift_reference.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import log, save

from aimc import TileConfig
from aimc.fixedpoint import ONE
from aimc.model import DriftReference, calibrate, true_drift_scale
from aimc.network import TiledNetwork

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "drift_reference.json"
BLOCKS = {"16x2 (0.8 %)": (16, 2), "16x8 (3 %)": (16, 8), "32x32 (25 %)": (32, 32),
          "64x64 (100 %)": (64, 64)}


def one(shape, seed, time, k: int = 4):
    """One layer of ``shape`` on a 64x64 tile as the demo runs it (mapped with its training
    inputs, program-and-verify with corrected reads, the host's affine correction), then
    the capture and the drift phase with each reference. Returns {reference: (measured
    scale or NaN if refused, weak)} and the true scale."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, shape)
    x_train = rng.uniform(0, 1, (128, shape[0]))
    net = TiledNetwork([(w, np.zeros(shape[1]))], x_train, tile=TileConfig(rows=64, cols=64),
                       model="pcm", seed=seed)
    net.program(k=k)
    net.fit_affine(x_train[:64], k=k, capture=False)
    blk = net.all_blocks()[0]
    chip, tile = blk.chip, net.tile
    refs = {"before": DriftReference(tile, tile.x_max // 2, np.ones(tile.rows, np.int64),
                                     np.ones(tile.cols, bool), 0),
            "reset": DriftReference.default(tile), "block": blk.reference}
    out = {}
    v = chip.next_vector
    for name, ref in refs.items():
        cap = calibrate(chip.state(0.0), ("capture",), v, k, start=blk.cal, reference=ref)
        comp = calibrate(chip.state(time), ("drift",), v + cap.mvms, k, start=cap,
                         reference=ref)
        v += cap.mvms + comp.mvms
        weak = cap.weak or comp.weak or comp.error
        out[name] = (float("nan") if weak else comp.drift_scale / ONE, weak)
    return out, true_drift_scale(chip, time)


def run(chips: int = 20, time: float = 86400.0, log=log) -> dict:
    report = {"chips": chips, "time": time, "blocks": {}}
    for name, shape in BLOCKS.items():
        report["blocks"][name] = {}
        runs = [one(shape, s, time) for s in range(1, chips + 1)]
        true = np.array([r[1] for r in runs])
        for reference in ("before", "reset", "block"):
            measured = np.array([r[0][reference][0] for r in runs])
            ok = np.isfinite(measured)
            err = np.abs(measured[ok] / true[ok] - 1) * 100
            entry = {"measured_median": float(np.median(measured[ok])) if ok.any() else None,
                     "true_median": float(np.median(true)),
                     "error_median_percent": float(np.median(err)) if ok.any() else None,
                     "error_worst_percent": float(err.max()) if ok.any() else None,
                     "refused": int((~ok).sum())}
            report["blocks"][name][reference] = entry
            log(f"{name:15s} {reference:6s}: scale {entry['measured_median'] or float('nan'):.3f}"
                f" (true {entry['true_median']:.3f}); |measured/true - 1| median "
                f"{entry['error_median_percent'] or float('nan'):.2f} %, worst "
                f"{entry['error_worst_percent'] or float('nan'):.2f} %; refused "
                f"{entry['refused']}/{chips}")
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chips", type=int, default=20)
    p.add_argument("--time", type=float, default=86400.0)
    args = p.parse_args(argv)
    return save(OUT, run(args.chips, args.time))


if __name__ == "__main__":
    raise SystemExit(main())
