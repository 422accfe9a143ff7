"""Model tier, the golden pulsed update: line generators against an independent xorshift32,
reseeding, unbiasedness of the stochastic update (the mean change of ``W_rc`` is ``-lr x_r
d_c``), deterministic mode's coincidence counts, management and validation."""

import math

import numpy as np
import pytest

from aimc import TileConfig
from aimc.model.pulsed import PulsedArray, PulsedDeviceConfig
from aimc.model.update import UpdateEngine
from aimc.training import ETA_FRAC, LINE_COLUMN_BASE, manage

TILE = TileConfig(rows=16, cols=16)
M32 = (1 << 32) - 1
#: A constant-step device without spreads or noise, bounds far away: every pulse is dw_min.
CLEAN = PulsedDeviceConfig(kind="constant_step", dw_min_dtod=0.0, up_down_dtod=0.0,
                           dw_min_std=0.0, w_max=50.0, w_min=-50.0, w_max_dtod=0.0,
                           w_min_dtod=0.0, span=100.0)


def clean(**changes):
    return PulsedDeviceConfig(**{**CLEAN.__dict__, **changes})


def python_line_seed(seed, line):
    """The line seed, from the rule in aimc.training's docstring, in Python integers."""
    z = ((line + 1) * 0x9E3779B9) & M32
    z ^= z >> 16
    z = (z * 0x85EBCA6B) & M32
    z ^= z >> 13
    c = z or 1
    return (seed ^ c) or c


def python_xorshift32(s):
    """Marsaglia's xorshift32 (13, 17, 5), J. Stat. Softw. 2003."""
    s ^= (s << 13) & M32
    s ^= s >> 17
    s ^= (s << 5) & M32
    return s


def small_vectors(rng, tile, m=3):
    return rng.integers(-m, m + 1, tile.rows), rng.integers(-m, m + 1, tile.cols)


# -- the generators ----------------------------------------------------------------------------

def test_marsaglias_known_answer():
    from aimc.training import xorshift32

    assert python_xorshift32(2463534242) == 723471715  # the paper's first output
    assert int(xorshift32(np.array([2463534242], np.uint32))[0]) == 723471715


def test_generators_follow_an_independent_xorshift32():
    """Every slot advances every line once; a line fires when its top 16 bits are below its
    threshold. Checked slot by slot against Python integers."""
    tile = TileConfig(rows=8, cols=12)
    e = UpdateEngine(tile, seed=0xC0FFEE)
    rows = [python_line_seed(0xC0FFEE, r) for r in range(8)]
    cols = [python_line_seed(0xC0FFEE, LINE_COLUMN_BASE + c) for c in range(12)]
    assert list(e.row_state) == rows and list(e.col_state) == cols
    a = PulsedArray(tile, CLEAN, seed=1)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x, d = rng.integers(-127, 128, 8), rng.integers(-127, 128, 12)
        r = e.update(a, x, d, bl=40, scale_x=300, scale_d=500, k=12, record=True)
        for t in range(40):
            rows = [python_xorshift32(s) for s in rows]
            cols = [python_xorshift32(s) for s in cols]
            np.testing.assert_array_equal(
                r.fire_rows[t], [(s >> 16) < q for s, q in zip(rows, r.q_x, strict=True)])
            np.testing.assert_array_equal(
                r.fire_cols[t], [(s >> 16) < q for s, q in zip(cols, r.q_d, strict=True)])
        # k = 12: thresholds keep their top 12 bits; 300 / 256 |x| saturates at none here.
        np.testing.assert_array_equal(r.q_x, ((np.abs(x) * 300) >> 8) & ~0xF)
    assert list(e.row_state) == rows and list(e.col_state) == cols


def test_reseeding_reproduces_an_update():
    x, d = small_vectors(np.random.default_rng(1), TILE, 100)
    runs = []
    for seed in (7, 7, 8):
        e, a = UpdateEngine(TILE, seed), PulsedArray(TILE, "gokmen-vlasov", seed=3)
        r = e.update_managed(a, x, d, eta=1 << 22, record=True)
        runs.append((r.fire_rows, r.fire_cols, a.w.copy(), r.counters()))
        e.reseed(seed)  # back to the line seeds: the same lines fire again
        again = e.update_managed(a, x, d, eta=1 << 22, record=True)
        np.testing.assert_array_equal(again.fire_rows, r.fire_rows)
        np.testing.assert_array_equal(again.fire_cols, r.fire_cols)
    for got, want in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(runs[0][0], runs[2][0])
    # The noise is keyed by (chip seed, update index, slot): update 5 is the same wherever
    # it runs, update 6 differs.
    w = []
    for index in (5, 5, 6):
        e, a = UpdateEngine(TILE, 7), PulsedArray(TILE, "gokmen-vlasov", seed=3)
        e.update_managed(a, x, d, eta=1 << 22, update_index=index)
        assert e.updates == index + 1
        w.append(a.w)
    np.testing.assert_array_equal(w[0], w[1])
    assert not np.array_equal(w[0], w[2])


def test_a_zero_vector_takes_no_slot():
    e, a = UpdateEngine(TILE, 3), PulsedArray(TILE, "ecram", seed=3)
    state = e.row_state.copy()
    r = e.update_managed(a, np.zeros(16, int), np.arange(16) - 8, eta=1 << 24)
    assert r.counters() == {"slots": 0, "up": 0, "down": 0}
    np.testing.assert_array_equal(e.row_state, state)
    np.testing.assert_array_equal(a.weights, 0)


def test_management_sets_the_schedule():
    e, a = UpdateEngine(TILE, 3), PulsedArray(TILE, CLEAN, seed=3)
    x, d = np.arange(16) - 8, np.arange(16) % 5 - 2
    for eta, bl_max in ((1 << 24, 255), (1 << 28, 255), (1 << 28, 20)):
        r = e.update_managed(a, x, d, eta=eta, bl_max=bl_max, record=True)
        assert r.schedule == manage(eta, 8, 2, bl_max)
        assert r.slots == r.fire_rows.shape[0] == min(math.ceil(eta * 16 / 2**24), bl_max)
        hits = r.fire_rows.astype(int).T @ r.fire_cols.astype(int)
        assert r.up + r.down == hits.sum()


# -- unbiasedness ----------------------------------------------------------------------------

@pytest.mark.parametrize("std", [0.0, 0.3])
def test_the_stochastic_update_is_unbiased(std):
    """``U`` managed updates of small x and d on a constant-step device of step ``dw``
    (``dw_min``): the mean change of ``W_rc`` per update is ``-lr x_r d_c``, ``lr = eta /
    2**24 dw``, within

    * the rounding of the integer schedule (the thresholds' floor, the scales' and the
      ratio's rounding, the square root's floor), bounded per device below; and
    * five standard errors: a slot pulses device ``(r, c)`` with probability ``p = p_r p_c``
      (independent line draws), by ``dw (1 + std z)``, so that a slot's change has variance
      ``dw^2 (p (1 + std^2) - p^2)`` and the mean of ``U`` updates of ``BL`` slots the
      variance ``BL dw^2 (p (1 + std^2) - p^2) / U``."""
    c = clean(dw_min_std=std)
    rng = np.random.default_rng(11)
    x, d = small_vectors(rng, TILE)
    eta, u = 1 << 23, 1500  # 0.5 expected pulses per product of LSBs and update
    e, a = UpdateEngine(TILE, 99), PulsedArray(TILE, c, seed=5)
    for _ in range(u):
        r = e.update_managed(a, x, d, eta=eta)
    s, bl, dw = r.schedule, r.slots, c.dw_min
    assert bl < 255  # the schedule is not saturated
    p = np.outer(r.q_x, r.q_d) / 2.0**32
    ideal = -(eta / 2**ETA_FRAC) * dw * np.outer(x, d)
    scheduled = -np.sign(np.outer(x, d)) * bl * p * dw
    # Rounding: p_r = P |x_r| / xmax (1 + e_r), |e_r| <= 1 / q_r + 1 / (2 S_x) (the floor of
    # q and the rounding of S); BL P^2 = m (1 + e) with |e| <= 2 / P (the floor of the square
    # root, P in 16 fractional bits) + BL / (2 m) (the rounding of m / BL, m in 16
    # fractional bits) + 2**16 / m (the floor of m).
    e_x = 1 / np.maximum(r.q_x, 1) + 1 / (2 * s.scale_x)  # (devices with q = 0 never move)
    e_d = 1 / np.maximum(r.q_d, 1) + 1 / (2 * s.scale_d)
    e_m = 2 / s.p_q16 + bl / (2 * s.m_q16) + 2**16 / s.m_q16
    bound = np.abs(ideal) * (np.outer(1 + e_x, 1 + e_d) * (1 + e_m) - 1)
    live = ideal != 0
    assert np.all(np.abs(scheduled - ideal)[live] <= bound[live])
    assert np.all(scheduled[~live] == 0) and np.all(a.weights[~live] == 0)
    se = dw * np.sqrt(bl * (p * (1 + std**2) - p**2) / u)
    z = (a.weights / u - scheduled)[live] / se[live]
    assert np.abs(z).max() < 5, np.abs(z).max()
    # The spread is the one derived (RMS of 168 z-scores: 1 within about 0.06).
    assert 0.75 < np.sqrt(np.mean(z**2)) < 1.25
    assert np.abs(a.w).max() < 0.5 * c.w_max  # no device met a bound
    # The worst rounding is far below the statistical resolution.
    assert (np.abs(scheduled - ideal)[live] / se[live]).max() < 0.1
    print(f"std {std}: BL {bl}, worst |z| {np.abs(z).max():.2f}, mean z {z.mean():+.3f}, RMS z "
          f"{np.sqrt(np.mean(z**2)):.2f} over {live.sum()} devices")


# -- deterministic mode --------------------------------------------------------------------

def test_deterministic_mode_counts_coincidences():
    """Rows fire in the first n_r ~ round(p_r BL) slots (ramp), columns spread their pulses
    evenly (an accumulator each, aimc.training.spread): device (r, c) counts
    round(n_r p_c) coincidences exactly, within one pulse of rint(BL p_r p_c), and without a
    bias (the deviations average out). (A first version compared the columns with a van der
    Corput sequence starting near 0: it counted ceil(n p_c), 0.7 to 1.0 pulses too many on
    average.) The generators advance all the same (the engine's numbering stays the RTL's)."""
    tile = TileConfig(rows=32, cols=32)
    rng = np.random.default_rng(3)
    figures = []
    for eta_lsb in (0.001, 0.01, 0.05):
        e, a = UpdateEngine(tile, 7), PulsedArray(tile, CLEAN, seed=1)
        shadow = UpdateEngine(tile, 7)
        dev = []
        for _ in range(20):
            x, d = rng.integers(-127, 128, 32), rng.integers(-127, 128, 32)
            before = a.w.copy()
            r = e.update_managed(a, x, d, eta=int(eta_lsb * 2**24), deterministic=True,
                                 record=True)
            shadow.update_managed(a.__class__(tile, CLEAN, seed=1), x, d,
                                  eta=int(eta_lsb * 2**24))
            hits = r.fire_rows.astype(int).T @ r.fire_cols.astype(int)
            want = np.rint(r.slots * np.outer(r.q_x, r.q_d) / 2.0**32)
            n_r = r.fire_rows.sum(axis=0)
            exact = (n_r[:, None] * r.q_d[None, :] + 2**15) >> 16  # round(n_r p_c)
            np.testing.assert_array_equal(hits, exact)
            dev.append(hits - want)
            # Each coincidence is one step of dw_min against the sign of x_r d_c.
            np.testing.assert_allclose(a.w - before, -np.sign(np.outer(x, d)) * hits * 1e-3,
                                       rtol=1e-9, atol=1e-12)
            assert r.up + r.down == hits.sum()
        np.testing.assert_array_equal(e.row_state, shadow.row_state)
        np.testing.assert_array_equal(e.col_state, shadow.col_state)
        dev = np.array(dev)
        figures.append((eta_lsb, r.slots, dev.mean(), dev.min(), dev.max()))
        assert dev.min() >= -1 and dev.max() <= 1 and abs(dev.mean()) < 0.1
    print("eta/LSB, BL, mean, min, max deviation:", figures)


# -- validation ------------------------------------------------------------------------------

def _engine():
    return UpdateEngine(TILE, 1), PulsedArray(TILE, "ecram", seed=1)


X = np.zeros(16, int)


@pytest.mark.parametrize("call, error, message", [
    (lambda e, a: e.update(a, X[:3], X, bl=4, scale_x=1, scale_d=1), ValueError,
     r"^x must be a vector of 16 elements \(one per row\), not an array of shape \(3,\)$"),
    (lambda e, a: e.update(a, X, X * 0.5, bl=4, scale_x=1, scale_d=1), ValueError,
     r"^d must be integers \(input codes\), not float64$"),
    (lambda e, a: e.update(a, X + 128, X, bl=4, scale_x=1, scale_d=1), ValueError,
     r"^x must lie in -127\.\.127 \(input_bits=8\), found 128$"),
    (lambda e, a: e.update(a, X, X, bl=256, scale_x=1, scale_d=1), ValueError,
     r"^bl must be an integer in 0\.\.255, not 256$"),
    (lambda e, a: e.update(a, X, X, bl=4, scale_x=-1, scale_d=1), ValueError,
     r"^scale_x must be an integer in 0\.\.4294967295, not -1$"),
    (lambda e, a: e.update(a, X, X, bl=4, scale_x=1, scale_d=1, k=0), ValueError,
     r"^k must be an integer in 1\.\.16, not 0$"),
    (lambda e, a: e.update(a, X, X, bl=4, scale_x=1, scale_d=1, deterministic=1), ValueError,
     r"^deterministic must be True or False, not 1$"),
    (lambda e, a: e.update(a, X, X, bl=4, scale_x=1, scale_d=1, update_index=-1), ValueError,
     r"^update_index must be an integer in 0\.\.18014398509481983, not -1$"),
    (lambda e, a: e.update(a, X, X, bl=4, scale_x=1, scale_d=1, chip_seed=2**64), ValueError,
     r"^chip seed must be an integer in \[0, 2\*\*64\), not 18446744073709551616$"),
    (lambda e, a: e.update_managed(a, X, X, eta=2**32), ValueError,
     r"^eta must be an integer in 0\.\.4294967295, not 4294967296$"),
    (lambda e, a: e.update_managed(a, X, X, eta=1, bl_max=0), ValueError,
     r"^bl_max must be an integer in 1\.\.255, not 0$"),
    (lambda e, a: e.update_managed(None, X, X, eta=1), TypeError,
     r"^array must be a PulsedArray or a Chip, not None$"),
    (lambda e, a: e.update_managed(PulsedArray(TileConfig(rows=8, cols=16), "ecram"), X, X,
                                   eta=1), ValueError,
     r"^array of 8x16 devices does not fit a 16x16 engine$"),
    (lambda e, a: e.reseed(2**32), ValueError,
     r"^seed must be an integer in 0\.\.4294967295, not 4294967296$"),
    (lambda e, a: UpdateEngine((16, 16)), TypeError, r"^tile must be a TileConfig, not "),
])
def test_bad_update_parameters_are_named(call, error, message):
    e, a = _engine()
    with pytest.raises(error, match=message):
        call(e, a)
