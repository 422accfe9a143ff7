"""Cycles and energy of one training step on a training tile (a benchmark, not a test).

    .venv/bin/python bench/training_energy.py [--sizes 16 64 256] [--updates 8]

For each square tile (PWM, 8-bit, training hardware, ``gokmen-vlasov`` devices): the forward
and backward MVM periods, and ``--updates`` managed pulsed updates of uniform random vectors
(every element in ``+-x_max``, ``UPD_ETA`` such that the largest product asks for 31 pulses,
``UPD_BL`` 31) through the golden update engine on a chip, with their cycles
(``rtl.update.update_cycles``), slots, line firings and device pulses. The energy of each
operation is :func:`aimc.train.energy_pj`, the estimate ``aimc train`` reports; a training
step of one layer on one example is a forward MVM, a backward MVM and an update. Next to it,
a GPU's energy for the same arithmetic at its datasheet peak (the most favourable case for
the GPU: a batch-1 step of one 256x256 layer runs far below peak). Writes
build/bench/training_energy.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import log, save

from aimc import TileConfig
from aimc.model import Chip, preset
from aimc.model.energy import estimate
from aimc.model.update import UpdateEngine
from aimc.rtl.update import update_cycles
from aimc.train import energy_pj
from aimc.training import ETA_FRAC

OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "training_energy.json"

#: NVIDIA A100 (SXM4 80 GB) datasheet: 19.5 TFLOPS FP32 (without tensor cores) at 400 W
#: maximum power, hence 400 / 19.5e12 J per operation at peak.
GPU_PJ_PER_FLOP = 400 / 19.5e12 * 1e12
BL = 31


def measure(size: int, updates: int, seed: int = 1) -> dict:
    tile = TileConfig(rows=size, cols=size, training=True)
    model = preset("gokmen-vlasov")
    chip = Chip(tile, model, seed=seed)
    chip.set_training_weights(np.zeros((size, size)))
    engine = UpdateEngine(tile, seed=seed)
    rng = np.random.default_rng(seed)
    xm = tile.x_max
    eta = int(round(BL / (xm * xm) * 2**ETA_FRAC))
    e = estimate(tile, model)
    rows = []
    for _ in range(updates):
        x = rng.integers(-xm, xm + 1, size)
        d = rng.integers(-xm, xm + 1, size)
        res = engine.update_managed(chip, x, d, eta=eta, bl_max=BL)
        cycles = update_cycles(tile, res.slots, True)
        counts = {"forwards": 0, "backwards": 0, "line_pulses": res.line_pulses,
                  "pulses": res.up + res.down, "update_cycles": cycles}
        rows.append({"slots": res.slots, "cycles": cycles, "line_pulses": res.line_pulses,
                     "device_pulses": res.up + res.down,
                     "energy_pj": energy_pj(counts, e, tile, model)})
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    mvm = energy_pj({"forwards": 1, "backwards": 0, "line_pulses": 0, "pulses": 0,
                     "update_cycles": 0}, e, tile, model)
    step_pj = 2 * mvm + med["energy_pj"]
    flops = 6 * size * size  # forward 2 N^2, backward 2 N^2, outer product and add 2 N^2
    clock = model.energy.clock_ghz
    step_cycles = tile.mvm_period_cycles + tile.bwd_period_cycles + med["cycles"]
    out = {"size": f"{size}x{size}", "forward_period": tile.mvm_period_cycles,
           "backward_period": tile.bwd_period_cycles, "update": med,
           "mvm_energy_pj": mvm, "step_energy_pj": step_pj, "step_cycles": step_cycles,
           "step_ns": step_cycles / clock, "flops": flops,
           "gpu_peak_energy_pj": flops * GPU_PJ_PER_FLOP,
           "updates": rows}
    log(f"  {size}x{size}: forward {tile.mvm_period_cycles} and backward "
        f"{tile.bwd_period_cycles} cycles, update {med['cycles']:.0f} cycles "
        f"({med['slots']:.0f} slots, {med['device_pulses']:.0f} device pulses, "
        f"{med['energy_pj']:.0f} pJ); step {step_pj:.0f} pJ, {step_cycles:.0f} cycles; "
        f"GPU at peak {out['gpu_peak_energy_pj']:.0f} pJ")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[16, 64, 256])
    ap.add_argument("--updates", type=int, default=8)
    args = ap.parse_args(argv)
    if args.updates < 1:
        ap.error(f"--updates must be an integer >= 1, not {args.updates}")
    results = {"gpu_pj_per_flop": GPU_PJ_PER_FLOP, "bl": BL,
               "sizes": [measure(s, args.updates) for s in args.sizes]}
    return save(OUT, results)


if __name__ == "__main__":
    raise SystemExit(main())
