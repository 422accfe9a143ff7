"""Model tier, pulsed (training) devices: each device kind's response to one pulse against
IBM aihwkit's formulas (written out here, element by element, independently of the model),
the hidden parameters against aihwkit's populate, soft bounds, symmetry points and the
reference pairs, the array's slot, the configuration and its presets."""

import dataclasses
import math

import numpy as np
import pytest

from aimc import TileConfig
from aimc.model import PRESETS, ModelConfig, load, save
from aimc.model.pulsed import (
    KINDS,
    DeviceParameters,
    PulsedArray,
    PulsedDeviceConfig,
    populate,
    step,
    symmetry_point,
)
from aimc.model.rng import Static, Stream, normals

TILE = TileConfig(rows=16, cols=16)
ON, OFF = np.ones(16, bool), np.zeros(16, bool)
PULSED = KINDS[1:]
#: Shapes that make every kind's step depend on w (aihwkit's defaults leave gamma at 0).
SHAPED = dict(gamma_up=0.3, gamma_down=0.6, up_down=0.05, pow_gamma=1.7, pow_up_down=0.2,
              pow_up_down_dtod=0.05)


def cfg(kind, **changes):
    return PulsedDeviceConfig(kind=kind, **{**SHAPED, **changes})


# -- one pulse, against aihwkit's update_once ------------------------------------------------

def aihwkit_once(c: PulsedDeviceConfig, w, sign, p, i, z):
    """One pulse of device ``i`` as aihwkit's update_once functions write it: ``sign > 0``
    is a down pulse (``w -= ...``), otherwise up (``w += ...``); ``z`` the deviate."""
    bmax, bmin = p.b_max.flat[i], p.b_min.flat[i]
    su, sd, std = p.scale_up.flat[i], p.scale_down.flat[i], c.dw_min_std
    if c.kind == "constant_step":
        if sign > 0:
            w -= (1.0 + std * z) * sd
        else:
            w += (1.0 + std * z) * su
        return max(min(w, bmax), bmin)
    if c.kind in ("linear_step", "soft_bounds"):
        lu, ld = p.slope_up.flat[i], p.slope_down.flat[i]
        if c.mult_noise:
            if sign > 0:
                w -= (ld * w + sd) * (1.0 + std * z)
            else:
                w += (lu * w + su) * (1.0 + std * z)
        else:
            if sign > 0:
                w -= ld * w + sd * (1.0 + std * z)
            else:
                w += lu * w + su * (1.0 + std * z)
        return min(max(w, bmin), bmax)
    if c.kind == "exp_step":
        b_diff = bmax - bmin
        if b_diff > 0:
            s = 2.0 * w / b_diff * c.es_a + c.es_b
            if sign > 0:
                y = max(1.0 - c.es_A_down * math.exp(c.es_gamma_down * (-s)), 0.0)
                w -= y * (1.0 + std * z) * sd
            else:
                y = max(1.0 - c.es_A_up * math.exp(c.es_gamma_up * s), 0.0)
                w += y * (1.0 + std * z) * su
            w = max(min(w, bmax), bmin)
        return w
    r = bmax - bmin  # pow_step
    if r == 0:
        return w
    if sign > 0:
        w -= sd * ((w - bmin) / r) ** p.gamma_down.flat[i] * (1.0 + std * z)
    else:
        w += su * ((bmax - w) / r) ** p.gamma_up.flat[i] * (1.0 + std * z)
    return min(max(w, bmin), bmax)


@pytest.mark.parametrize("std", [0.0, 0.3])
@pytest.mark.parametrize("kind, changes", [
    ("constant_step", {}), ("linear_step", {}), ("linear_step", {"mult_noise": False}),
    ("linear_step", {"mean_bound_reference": False}), ("soft_bounds", {}),
    ("soft_bounds", {"mult_noise": False}), ("exp_step", {}),
    ("exp_step", {"es_A_up": -1.18445, "es_A_down": -0.081404, "es_a": -0.5, "es_b": -0.5,
                  "es_gamma_up": 5.0, "es_gamma_down": 5.0}),  # aihwkit's ReRamESPresetDevice
    ("pow_step", {}),
])
def test_one_pulse_follows_aihwkit(kind, changes, std):
    c = cfg(kind, dw_min=0.01, dw_min_std=std, **changes)
    p = populate(c, (8, 8), seed=11)
    rng = np.random.default_rng(1)
    w = p.b_min + (p.b_max - p.b_min) * rng.random((8, 8))
    w.flat[:4] = [p.b_max.flat[0], p.b_min.flat[1], p.b_max.flat[2], p.b_min.flat[3]]
    z = rng.standard_normal((8, 8))
    for down in (np.zeros((8, 8), bool), np.ones((8, 8), bool), rng.random((8, 8)) < 0.5):
        got = step(c, w, down, p, z if std else None)
        want = np.array([aihwkit_once(c, w.flat[i], 1 if down.flat[i] else -1, p, i,
                                      z.flat[i]) for i in range(64)]).reshape(8, 8)
        if kind in ("exp_step", "pow_step"):
            # numpy's exp and power against the math module's: the last bit may differ.
            np.testing.assert_allclose(got - w, want - w, rtol=1e-13, atol=1e-18)
        else:
            np.testing.assert_array_equal(got, want)
        assert np.count_nonzero(got != w) > 32
        assert np.all((got >= p.b_min) & (got <= p.b_max))


def test_directions_follow_aihwkits_sign_convention():
    """Down (signs agree, ``W -= lr x d``) lowers a constant-step device by scale_down, up
    raises it by scale_up."""
    a = PulsedArray(TILE, cfg("constant_step", dw_min_std=0.0), seed=2)
    neg = np.arange(16) % 2 == 1
    assert a.apply(ON, neg, ON, neg) == (128, 128)
    agree = neg[:, None] == neg[None, :]
    want = np.where(agree, -a.params.scale_down, a.params.scale_up)
    np.testing.assert_array_equal(a.w - a.w_ref, np.clip(a.w_ref + want, a.params.b_min,
                                                         a.params.b_max) - a.w_ref)


# -- hidden parameters, against aihwkit's populate -------------------------------------------

def aihwkit_populate(c: PulsedDeviceConfig, n, seed):
    """PulsedRPUDevice::populate and the LinearStep / PowStep additions, with the deviates
    the model assigns to each draw (Static contexts), enforce_consistency on."""
    def draw(ctx):
        z = normals(seed, Stream.STATIC, 0, 1, 2 * n, context=int(ctx))[0]
        return z[:n], z[n:]

    zb, zs, zg = draw(Static.UPDATE_BOUNDS), draw(Static.UPDATE_SCALES), \
        draw(Static.UPDATE_SHAPE)
    up_bias = c.up_down if c.up_down < 0 else 0.0
    down_bias = -c.up_down if c.up_down > 0 else 0.0
    out = {k: np.zeros(n) for k in ("b_max", "b_min", "scale_up", "scale_down", "slope_up",
                                    "slope_down", "gamma_up", "gamma_down")}
    for i in range(n):
        bmax = c.w_max * (1 + c.w_max_dtod * zb[0][i])
        bmin = c.w_min * (1 + c.w_min_dtod * zb[1][i])
        gain = 1.0 + c.dw_min_dtod * zs[0][i]
        r = c.up_down_dtod * zs[1][i]
        su, sd = abs((up_bias + gain + r) * c.dw_min), abs((down_bias + gain - r) * c.dw_min)
        if bmin > bmax:
            bmin, bmax = bmax, bmin
        bmax, bmin = min(abs(bmax), c.span), max(-abs(bmin), -c.span)  # then the window
        out["b_max"][i], out["b_min"][i] = bmax, bmin
        out["scale_up"][i], out["scale_down"][i] = su, sd
        if c.kind in ("linear_step", "soft_bounds"):
            soft = c.kind == "soft_bounds"
            gu = 1.0 if soft else abs(c.gamma_up + c.gamma_up_dtod * zg[0][i])
            gd = 1.0 if soft else abs(c.gamma_down + c.gamma_down_dtod * zg[1][i])
            ru, rd = (c.w_max, c.w_min) if c.mean_bound_reference and not soft else (bmax, bmin)
            out["slope_up"][i] = -gu * su / ru if ru != 0 else 0.0
            out["slope_down"][i] = -gd * sd / rd if rd != 0 else 0.0
        if c.kind == "pow_step":
            pu = c.pow_up_down if c.pow_up_down < 0 else 0.0
            pd = -c.pow_up_down if c.pow_up_down > 0 else 0.0
            g, r = 1.0 + c.pow_gamma_dtod * zg[0][i], c.pow_up_down_dtod * zg[1][i]
            out["gamma_up"][i] = abs((pu + g + r) * c.pow_gamma)
            out["gamma_down"][i] = abs((pd + g - r) * c.pow_gamma)
    return out


@pytest.mark.parametrize("kind, changes", [
    ("constant_step", {"up_down": -0.2}), ("linear_step", {}),
    ("linear_step", {"mean_bound_reference": False}), ("soft_bounds", {"w_max_dtod": 1.5}),
    ("pow_step", {"pow_up_down": -0.3}), ("exp_step", {}),
])
def test_hidden_parameters_follow_aihwkits_populate(kind, changes):
    c = cfg(kind, **changes)
    p = populate(c, (8, 4), seed=5)
    want = aihwkit_populate(c, 32, 5)
    for f in dataclasses.fields(DeviceParameters):
        np.testing.assert_allclose(getattr(p, f.name).ravel(), want[f.name], rtol=1e-15,
                                   atol=0, err_msg=f.name)


def test_hidden_parameter_statistics():
    """65,536 devices: means within five standard errors, spreads within 2 % (five standard
    errors of a standard deviation, 1/sqrt(2n), are 1.4 %)."""
    n = 256 * 256
    c = cfg("pow_step", dw_min=0.002, dw_min_dtod=0.2, up_down=0.1, up_down_dtod=0.05,
            w_max=0.8, w_min=-0.5, w_max_dtod=0.1, w_min_dtod=0.2, pow_gamma=2.0,
            pow_gamma_dtod=0.1, pow_up_down=-0.2, pow_up_down_dtod=0.03, span=2.0)
    p = populate(c, (256, 256), seed=9)

    def check(values, mean, sd):
        assert abs(values.mean() - mean) < 5 * sd / math.sqrt(n), (values.mean(), mean)
        assert values.std() == pytest.approx(sd, rel=0.02)

    check(p.b_max, 0.8, 0.08)
    check(p.b_min, -0.5, 0.1)
    # up_down 0.1 > 0: up keeps the gain, down loses 0.1; r spreads them in opposite senses.
    check(p.scale_up, 0.002, 0.002 * math.hypot(0.2, 0.05))
    check(p.scale_down, 0.0018, 0.002 * math.hypot(0.2, 0.05))
    check(p.scale_up - p.scale_down, 0.0002, 0.002 * 2 * 0.05)
    check(p.gamma_up, 2.0 * 0.8, 2.0 * math.hypot(0.1, 0.03))
    check(p.gamma_down, 2.0, 2.0 * math.hypot(0.1, 0.03))
    # linear_step: g = |gamma + dtod z|, slopes against the mean bounds.
    c = cfg("linear_step", gamma_up=0.5, gamma_down=0.25, gamma_up_dtod=0.05,
            gamma_down_dtod=0.1)
    p = populate(c, (256, 256), seed=9)
    check(-p.slope_up * c.w_max / p.scale_up, 0.5, 0.05)
    check(-p.slope_down * c.w_min / p.scale_down, 0.25, 0.1)
    # The window clamps the bounds: w_max 0.6 (1 + 0.3 z) > 0.75 for z > 0.833.
    p = populate(cfg("constant_step", span=0.75), (256, 256), seed=9)
    assert p.b_max.max() == 0.75 and p.b_min.min() == -0.75
    clamped = np.mean(p.b_max == 0.75)
    assert abs(clamped - 0.2024) < 5 * math.sqrt(0.2024 * 0.7976 / n)  # 1 - Phi(0.8333)


def test_the_same_seed_gives_the_same_devices():
    a, b = (PulsedArray(TILE, "ecram", seed=4) for _ in range(2))
    c = PulsedArray(TILE, "ecram", seed=5)
    np.testing.assert_array_equal(a.params.scale_up, b.params.scale_up)
    np.testing.assert_array_equal(a.w_ref, b.w_ref)
    assert not np.array_equal(a.params.scale_up, c.params.scale_up)


# -- soft bounds, symmetry points, references ----------------------------------------------

def test_soft_bounds_approach_but_never_pass_their_bounds():
    c = cfg("soft_bounds", dw_min=0.01, dw_min_std=0.0, up_down_dtod=0.0, reference="zero")
    a = PulsedArray(TILE, c, seed=3)
    p, w0 = a.params, a.w.copy()
    for n in range(1, 2001):
        a.apply(ON, ON, ON, OFF)  # polarities differ: up
        if n in (10, 100, 2000):
            # Each up step is scale_up (1 - w / b_max): the distance to b_max shrinks by
            # (1 - scale_up / b_max) per pulse.
            want = p.b_max - (p.b_max - w0) * (1 - p.scale_up / p.b_max) ** n
            np.testing.assert_allclose(a.w, want, rtol=1e-9, atol=1e-12)
            assert np.all(a.w < p.b_max)
    assert np.all(p.b_max - a.w < 1e-3 * (p.b_max - w0))
    # With additive cycle-to-cycle noise a step can overshoot: the hard clip holds it.
    a = PulsedArray(TILE, c.__class__(**{**dataclasses.asdict(c), "dw_min_std": 3.0,
                                         "mult_noise": False}), seed=3)
    rng = np.random.default_rng(0)
    for _ in range(500):
        a.apply(ON, ON, ON, OFF, rng.standard_normal((16, 16)))
        assert np.all(a.w <= a.params.b_max)
    assert np.any(a.w == a.params.b_max)


@pytest.mark.parametrize("reference", ["symmetry", "zero"])
def test_an_asymmetric_device_settles_at_its_symmetry_point(reference):
    """Soft bounds with up steps 30 % larger: random-order pairs of one up and one down
    pulse drive each device from anywhere in its range to where the two steps are equal,
    w* = (su - sd) / (su / b_max - sd / b_min), about 0.12 here. A pair moves the device by
    su (1 - w / b_max) - sd (1 - w / b_min) + O(dw_min^2): the distance to w* shrinks by
    su / b_max + sd / |b_min| (at least 0.0028 here) per pair, so that 3000 pairs leave
    less than 1e-3 of it, and the device ends within one step of w*. The symmetry
    reference puts weight 0 there."""
    c = cfg("soft_bounds", up_down=0.3, dw_min=0.002, dw_min_dtod=0.1, dw_min_std=0.0,
            reference=reference)
    a = PulsedArray(TILE, c, seed=2)
    p = a.params
    w_star = (p.scale_up - p.scale_down) / (p.scale_up / p.b_max - p.scale_down / p.b_min)
    np.testing.assert_allclose(symmetry_point(c, p), w_star, rtol=1e-12)
    assert (p.scale_up / p.b_max - p.scale_down / p.b_min).min() > 0.0028
    rng = np.random.default_rng(0)
    a.set_state(rng.uniform(p.b_min, p.b_max))
    for _ in range(3000):
        u = rng.random(16) < 0.5  # per row, which of the pair comes first
        a.apply(ON, u, ON, OFF)
        a.apply(ON, ~u, ON, OFF)
    assert np.abs(a.w - w_star).max() < c.dw_min
    assert 0.1 < w_star.mean() < 0.14
    if reference == "symmetry":
        np.testing.assert_array_equal(a.w_ref, w_star)
        assert np.abs(a.weights).max() < c.dw_min
    else:
        assert np.all(a.w_ref == 0) and a.weights.mean() > 0.1


@pytest.mark.parametrize("kind", ["exp_step", "pow_step"])
def test_bisected_symmetry_points_balance_the_steps(kind):
    """At the bisected point the noise-free up and down steps (aihwkit's formulas, before
    the clip) agree to 1e-9; where none lies inside the bounds, the point is the bound the
    larger step drives the device to."""
    c = cfg(kind, dw_min_std=0.0)
    a = PulsedArray(TILE, c, seed=8)
    p, w = a.params, a.w_ref

    def steps(w):
        if kind == "exp_step":
            s = 2.0 * w / (p.b_max - p.b_min) * c.es_a + c.es_b
            return (p.scale_up * np.maximum(1 - c.es_A_up * np.exp(c.es_gamma_up * s), 0),
                    p.scale_down * np.maximum(1 - c.es_A_down * np.exp(-c.es_gamma_down * s),
                                              0))
        r = p.b_max - p.b_min
        return (p.scale_up * ((p.b_max - w) / r) ** p.gamma_up,
                p.scale_down * ((w - p.b_min) / r) ** p.gamma_down)

    up, down = steps(w)
    inside = (w > p.b_min) & (w < p.b_max)
    assert inside.mean() > 0.9
    np.testing.assert_allclose(up[inside], down[inside], rtol=1e-9)
    up_max, down_max = steps(p.b_max)
    up_min, down_min = steps(p.b_min)
    np.testing.assert_array_equal(w == p.b_max, up_max > down_max)
    np.testing.assert_array_equal(w == p.b_min, up_min < down_min)


def test_constant_step_reference_is_zero():
    a = PulsedArray(TILE, cfg("constant_step", up_down=0.3), seed=1)
    assert np.all(a.w_ref == 0) and np.all(a.weights == 0)


# -- the array -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", PULSED)
@pytest.mark.parametrize("density", [1 / 16, 3 / 4])  # gathered, dense
def test_a_slot_moves_exactly_the_coincident_devices(kind, density):
    """Sparse slots (gathered devices) and dense ones (every device computed, the
    coincident kept) both equal the step function on the coincident devices alone."""
    a = PulsedArray(TILE, cfg(kind), seed=6)
    rng = np.random.default_rng(2)
    a.set_weights(rng.uniform(-0.3, 0.3, (16, 16)))
    k = int(16 * math.sqrt(density))
    fr, fc = rng.permutation(16) < k, rng.permutation(16) < k
    nr, nc = rng.random(16) < 0.5, rng.random(16) < 0.5
    z = rng.standard_normal((16, 16))
    before = a.w.copy()
    up, down = a.apply(fr, nr, fc, nc, z)
    hit = fr[:, None] & fc[None, :]
    dirs = nr[:, None] == nc[None, :]
    assert (up, down) == (int((hit & ~dirs).sum()), int((hit & dirs).sum()))
    ix = np.nonzero(hit)
    want = step(a.config, before[ix], dirs[ix], a.params.take(ix), z[ix])
    np.testing.assert_array_equal(a.w[ix], want)
    np.testing.assert_array_equal(a.w[~hit], before[~hit])
    assert a.apply(OFF, nr, fc, nc, z) == (0, 0)


def test_weights_and_conductances():
    a = PulsedArray(TILE, "reram-sb", seed=1)
    span, g_max = a.config.span, 25.0
    assert (a.g_min, a.g_max) == (0.0, g_max)
    np.testing.assert_array_equal(a.weights, 0)
    np.testing.assert_array_equal(a.g_plus(), a.g_minus())
    a.set_weights(np.full((16, 16), 0.1))
    np.testing.assert_allclose(a.weights, 0.1, rtol=1e-12)
    np.testing.assert_allclose(a.g_plus() - a.g_minus(), 0.1 * g_max / (2 * span), rtol=1e-12)
    a.set_state(np.full((16, 16), 10.0))  # beyond every bound: clipped
    np.testing.assert_array_equal(a.w, a.params.b_max)
    a.set_state(np.full((16, 16), -span))
    assert np.all(a.w >= a.params.b_min) and np.all(a.w >= -span)
    b = PulsedArray(TILE, a.config, seed=1, g_min=2.0, g_max=12.0)
    b.set_state(np.zeros((16, 16)))
    np.testing.assert_allclose(b.g_plus(), 7.0, rtol=1e-15)


# -- configuration -------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: PulsedDeviceConfig(kind="flash"), ValueError,
     r"^PulsedDeviceConfig\.kind must be one of none, constant_step, linear_step, soft_bounds, "
     r"exp_step, pow_step, not 'flash'$"),
    (lambda: PulsedDeviceConfig(reference="g_min"), ValueError,
     r"^PulsedDeviceConfig\.reference must be one of symmetry, zero, not 'g_min'$"),
    (lambda: PulsedDeviceConfig(dw_min=0), ValueError,
     r"^PulsedDeviceConfig\.dw_min must be a finite number > 0\.0 and <= 1\.0, not 0 \(mean "
     r"step at w = 0, weight units\)$"),
    (lambda: PulsedDeviceConfig(w_min=0.1), ValueError,
     r"^PulsedDeviceConfig\.w_min must be a finite number >= -100\.0 and <= 0\.0, not 0\.1 "
     r"\(mean lower bound, weight units\)$"),
    (lambda: PulsedDeviceConfig(w_max=1.5), ValueError,
     r"^PulsedDeviceConfig\.w_max must lie within -span\.\.span \(span=1\.0\), not 1\.5$"),
    (lambda: PulsedDeviceConfig(mult_noise=1), TypeError,
     r"^PulsedDeviceConfig\.mult_noise must be True or False, not 1$"),
    (lambda: ModelConfig(update={"kind": "ecram"}), ValueError,
     r"^PulsedDeviceConfig\.kind must be one of "),
    (lambda: ModelConfig(update={"gamma": 1}), ValueError, r"^unknown field update\.gamma; "),
    (lambda: PulsedArray(TILE, PulsedDeviceConfig(), 1), ValueError,
     r"^a PulsedArray needs a pulsed device model; update\.kind is 'none'$"),
    (lambda: PulsedArray((16, 16), "ecram", 1), TypeError, r"^tile must be a TileConfig, "),
    (lambda: PulsedArray(TILE, {"kind": "soft_bounds"}), TypeError,
     r"^config must be a PulsedDeviceConfig, ModelConfig or preset name, not "),
    (lambda: PulsedArray(TILE, "ecram", -1), ValueError,
     r"^chip seed must be an integer in \[0, 2\*\*64\), not -1$"),
    (lambda: PulsedArray(TILE, "ecram", g_min=30.0), ValueError,
     r"^DeviceConfig\.g_min must be below g_max \(25\.0\), not 30\.0$"),
    (lambda: PulsedArray(TILE, "ecram").apply(ON[:4], ON, ON, ON, np.zeros((16, 16))),
     ValueError, r"^fire_rows must be a bool vector of length 16, not an array of shape "
                 r"\(4,\) and type bool$"),
    (lambda: PulsedArray(TILE, "ecram").apply(ON, ON.astype(int), ON, ON, np.zeros((16, 16))),
     ValueError, r"^neg_rows must be a bool vector of length 16, "),
    (lambda: PulsedArray(TILE, "ecram").apply(ON, ON, ON, ON), ValueError,
     r"^z must be an array of shape \(16, 16\) \(the devices are noisy\), not None$"),
    (lambda: PulsedArray(TILE, "ecram").set_weights(np.zeros(3)), ValueError,
     r"^states must be finite numbers of shape \(16, 16\), not an array of shape \(3,\)$"),
])
def test_bad_parameters_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_training_presets_are_aihwkits():
    gv, sb, ec = PRESETS["gokmen-vlasov"], PRESETS["reram-sb"], PRESETS["ecram"]
    assert gv.update == PulsedDeviceConfig(
        kind="constant_step", dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0,
        up_down_dtod=0.01, w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3, span=1.9)
    assert round((gv.update.w_max - gv.update.w_min) / gv.update.dw_min) == 1250
    assert (sb.update.kind, sb.update.mult_noise, sb.update.dw_min_std) == \
        ("soft_bounds", False, 3.75)
    assert sb.update.w_max_dtod == 0.3 / 1.25 and sb.update.w_min_dtod == 0.3 / 0.75
    assert (ec.update.kind, ec.update.gamma_up, ec.update.gamma_down) == \
        ("linear_step", 0.1153, 0.5085)
    assert ec.update.mean_bound_reference and ec.update.w_min == -0.8276
    for m in (gv, sb, ec):
        assert m.device.g_max == 25.0 and not any(m.device.prog_coeffs)
        assert m.device.nu_mean_b == 0 and m.adc == PRESETS["adc-only"].adc
        # The window holds the bounds within three device-to-device deviations.
        u = m.update
        assert u.span >= max(u.w_max * (1 + 3 * u.w_max_dtod), -u.w_min * (1 + 3 * u.w_min_dtod))
    for name in ("ideal", "adc-only", "pcm", "rram"):
        assert PRESETS[name].update == PulsedDeviceConfig()


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_the_update_section_is_saved_and_loaded(tmp_path, suffix):
    model = PRESETS["reram-sb"].replace(name="mine", update={"reference": "zero",
                                                            "dw_min_std": 1.0})
    assert load(save(model, tmp_path / ("m" + suffix))) == model
    # A file without an [update] table keeps the preset's, or the default.
    (tmp_path / "old.toml").write_text('preset = "pcm"\n[adc]\ninput_noise = 0.5\n')
    assert load(tmp_path / "old.toml").update == PulsedDeviceConfig()
    (tmp_path / "p.toml").write_text('preset = "ecram"\n[update]\nkind = "soft_bounds"\n')
    got = load(tmp_path / "p.toml")
    assert got.update.kind == "soft_bounds" and got.update.gamma_up == 0.1153
