"""Drift compensation on sparsely used tiles (issue 18): the golden algorithm with the
registers at reset and with a block's own reference, on blocks that use 3 %, 25 % and 100 %
of a 64x64 tile, against the true drift scale; the refusal of a signal too small to
measure; the reference's validation."""

from __future__ import annotations

import numpy as np
import pytest

from aimc import TileConfig
from aimc.fixedpoint import ONE, CalFormat
from aimc.model import Chip, DriftReference, calibrate, true_drift_scale
from aimc.network import TiledNetwork

TILE = TileConfig(rows=64, cols=64)
DAY = 86400.0
#: Layers (inputs, outputs) on the 64x64 tile: 3.1 %, 25 % and 100 % of its devices.
BLOCKS = {"3%": (16, 8), "25%": (32, 32), "100%": (64, 64)}


def _before(tile):
    """The algorithm before issue 18: every row at DRIFT_X = x_max // 2, every column
    counted, no minimum."""
    return DriftReference(tile, tile.x_max // 2, np.ones(tile.rows, np.int64),
                          np.ones(tile.cols, bool), 0)


def _layer(shape, seed, method):
    """A layer of random normal weights run as the demo runs a block: mapped with positive
    training inputs (they set its ADC step), programmed, the host's affine correction."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (128, shape[0]))
    net = TiledNetwork([(rng.normal(0, 1, shape), np.zeros(shape[1]))], x, tile=TILE,
                       model="pcm", seed=seed)
    net.program(method=method, k=4)
    net.fit_affine(x[:64], k=4, capture=False)
    return net.all_blocks()[0]


def _ratio(blk, ref, k=4):
    """measured / true drift scale a day after programming (NaN if refused)."""
    chip, v = blk.chip, blk.chip.next_vector
    cap = calibrate(chip.state(0.0), ("capture",), v, k, start=blk.cal, reference=ref)
    comp = calibrate(chip.state(DAY), ("drift",), v + cap.mvms, k, start=cap, reference=ref)
    if cap.weak or comp.weak or comp.error:
        return float("nan")
    return comp.drift_scale / ONE / true_drift_scale(chip, DAY)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_reference_measures_the_true_scale(name):
    """With the block's own reference the scale a day later is within 10 % of the true one
    on every chip and within 3 % at the median; none is refused."""
    ratios = np.array([_ratio(b, b.reference)
                       for b in (_layer(BLOCKS[name], s, "direct") for s in range(1, 7))])
    assert np.isfinite(ratios).all(), ratios
    assert np.abs(ratios - 1).max() < 0.1, ratios
    assert abs(np.median(ratios) - 1) < 0.03, ratios


def test_the_old_reference_is_biased_on_a_sparse_block_and_the_fix_is_not():
    """On the 3 % layer the algorithm before issue 18 (every row, every column) measures
    too small a scale on every chip (the unused columns' residual offsets do not drift);
    the block reference is closer to the true scale at the median. On the full tile the
    old one works too."""
    blocks = [_layer(BLOCKS["3%"], s, "direct") for s in range(1, 7)]
    old = np.array([_ratio(b, _before(TILE)) for b in blocks])
    new = np.array([_ratio(b, b.reference) for b in blocks])
    assert np.median(old) < 0.95 and (old < 0.97).mean() >= 0.8, old
    assert np.median(np.abs(new - 1)) < np.median(np.abs(old - 1)) / 2, (old, new)
    full = _layer(BLOCKS["100%"], 1, "direct")
    assert abs(_ratio(full, _before(TILE)) - 1) < 0.06


def test_the_issue_16x2_layer():
    """The issue's case, a 16x2 layer on a 64x64 tile with program-and-verify: the old
    reference measures about 1.16 where about 1.5 is needed a day later; the block
    reference is within 12 % of the true scale (32 devices: their own read noise and drift
    spread limit any estimate; the bench over 12 chips: median 3.5 %, worst 11.6 %)."""
    for seed in (1, 2):
        blk = _layer((16, 2), seed, "verify")
        true = true_drift_scale(blk.chip, DAY)
        assert true > 1.4
        assert _ratio(blk, _before(TILE)) < 0.88
        assert abs(_ratio(blk, blk.reference) - 1) < 0.12


def _chip(shape, seed):
    rng = np.random.default_rng(seed)
    chip = Chip(TILE, "pcm", seed=seed)
    w = np.zeros((TILE.rows, TILE.cols), dtype=np.int64)
    r, c = shape
    w[:r, :c] = np.clip(np.round(rng.normal(0, 40, (r, c))), -127, 127)
    chip.program(w)
    return chip


def test_weak_signal_is_refused_and_changes_nothing():
    chip = _chip((8, 2), 5)
    st = chip.state(0.0)
    cal = calibrate(st, ("offset", "gain"), 0, 3)
    cal.drift_ref, cal.drift_scale = 1234, ONE + 99
    ref = DriftReference.for_weights(chip.target_weights, chip)
    huge = DriftReference(TILE, ref.x, ref.rows, ref.cols, 2**32 - 1)
    for phase in ("capture", "drift"):
        out = calibrate(st, (phase,), 100, 3, start=cal, reference=huge)
        assert out.weak and out.error
        assert (out.drift_ref, out.drift_scale) == (1234, ONE + 99)
        assert out.abs_sum > 0
    ok = calibrate(st, ("capture",), 100, 3, start=cal, reference=ref)
    assert not ok.weak and not ok.error and ok.drift_ref == ok.abs_sum >= ref.min_sum


def test_for_weights_drives_the_programmed_rows_and_counts_the_programmed_columns():
    chip = _chip((10, 3), 2)
    ref = DriftReference.for_weights(chip.target_weights, chip)
    assert (ref.rows[:10] != 0).all() and (ref.rows[10:] == 0).all()
    assert ref.cols[:3].all() and not ref.cols[3:].any()
    # The reference's ideal results fill at most half the converter range, and reach
    # close to it (DRIFT_X is as large as that allows).
    v = ref.vector() @ chip.target_weights / chip.lsb
    half = 2 ** (TILE.adc_bits - 1)
    assert np.abs(v[:3]).max() <= 0.5 * half
    assert ref.x == TILE.x_max or np.abs(v[:3]).max() > 0.4 * half
    # The signs make the columns add up: more than the all-positive drive gives.
    plus = (ref.rows != 0) @ chip.target_weights
    assert np.abs(ref.rows @ chip.target_weights).sum() >= np.abs(plus).sum()
    assert ref.ideal_sum(chip) > CalFormat(TILE).drift_min_default
    empty = DriftReference.for_weights(np.zeros((64, 64)), chip)
    assert not empty.cols.any() and not empty.rows.any()


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=200), r"^DriftReference.x \(DRIFT_X\) must be an integer in -127..127, not 200$"),
    (dict(rows=np.full(64, 2)), r"^DriftReference.rows \(DRIFT_ROWS\) must be 64 values each "
                                r"-1, 0 or \+1"),
    (dict(cols=np.ones(63, bool)), r"^DriftReference.cols \(DRIFT_COLS\) must be 64 booleans"),
    (dict(min_sum=-1), r"^DriftReference.min_sum \(DRIFT_MIN\) must be an integer in "
                       r"0..2\*\*32-1, not -1$"),
])
def test_reference_refuses_bad_values(kwargs, message):
    base = dict(tile=TILE, x=10, rows=np.ones(64, np.int64), cols=np.ones(64, bool),
                min_sum=0)
    with pytest.raises(ValueError, match=message):
        DriftReference(**{**base, **kwargs})


def test_for_weights_refuses_bad_arguments():
    chip = _chip((4, 4), 1)
    with pytest.raises(ValueError, match=r"^weights must have shape \(64, 64\), not \(4, 4\)$"):
        DriftReference.for_weights(np.ones((4, 4)), chip)
    with pytest.raises(ValueError, match=r"^fill must be a number in \(0, 1\], not 1.5$"):
        DriftReference.for_weights(chip.target_weights, chip, fill=1.5)


@pytest.mark.cosim
def test_rtl_drift_reference_equals_golden_on_sparse_blocks(sim, tmp_path):
    """The RTL engine with DRIFT_ROWS, DRIFT_COLS and DRIFT_MIN on blocks that use 3 %, 25 %
    and 100 % of a 16x16 pcm tile (cosim/test_api.py drift_reference): DRIFT_REF,
    DRIFT_SCALE, CAL_STATUS.error and .weak equal the golden algorithm's bit for bit, with
    the registers at reset and with the block's reference; the block reference is near the
    true scale, and the 3 % block (4x2: 8 devices) is refused at reset."""
    from aimc.cosim import runner
    from aimc.cosim.settings import CosimSettings

    settings = CosimSettings(tile=TileConfig(rows=16, cols=16), model="pcm", chip_seed=9,
                             cal_k=4, stats=tmp_path / "stats.json",
                             module="aimc.cosim.test_api", tests="drift_reference")
    runner.run(settings, sim, log_file=tmp_path / "cosim.log")
    figures = settings.read_stats("drift_reference")
    assert set(figures) == {"3%", "25%", "100%"}
    for name in ("25%", "100%"):
        f = figures[name]
        assert not f["block"]["weak"], f
        assert abs(f["block"]["scale"] / f["true"] - 1) < 0.12, f
    assert figures["3%"]["reset"]["weak"]
