"""Pulsed (training) devices: how a crossbar device answers one update pulse, after the pulsed
device models of IBM aihwkit (``src/rpucuda/rpu_*_device.cpp``), and an array of them.

A device's state ``w`` is a weight in the units of aihwkit's device parameters. Every device
draws its hidden parameters once per chip (:func:`populate`, after
``PulsedRPUDevice::populate``), with ``z`` standard normal deviates:

* bounds ``b_max = w_max (1 + w_max_dtod z)``, ``b_min = w_min (1 + w_min_dtod z)``;
* steps ``scale_up = (up_bias + gain + r) dw_min``, ``scale_down = (down_bias + gain - r)
  dw_min`` with ``gain = 1 + dw_min_dtod z``, ``r = up_down_dtod z``, ``up_bias =
  min(up_down, 0)``, ``down_bias = -max(up_down, 0)``;
* consistency (aihwkit's ``enforce_consistency``, on by default there and always here): both
  scales taken in magnitude, the bounds swapped if ``b_min > b_max``, then ``b_max = |b_max|``,
  ``b_min = -|b_min|``; finally both clamped into ``-span .. span``, the weight range the
  conductance window holds (before any slope is derived from them, so that a soft bound's
  step still vanishes at the bound the device has).

One pulse moves ``w`` up (``w + m_up``) or down (``w - m_down``), then ``w`` is clipped into
``b_min .. b_max``; ``n = 1 + dw_min_std z`` is the cycle-to-cycle factor:

=============== ====================================================================
kind            step magnitude ``m`` (up / down)
=============== ====================================================================
constant_step   ``n scale``  (``rpu_constantstep_device.cpp``)
linear_step     ``(slope w + scale) n`` (``mult_noise``) or ``slope w + scale n``, with
                ``slope_up = -g_up scale_up / ref_up``, ``slope_down = -g_down scale_down /
                ref_down``, ``g = |gamma + gamma_dtod z|``, ``ref`` the mean bounds
                ``w_max``, ``w_min`` (``mean_bound_reference``) or the device's own
                (``rpu_linearstep_device.cpp``)
soft_bounds     linear_step with ``g = 1``, no spread of ``g``, the device's own bounds
                (``SoftBoundsRPUDeviceMetaParameter`` in ``rpu_linearstep_device.h``)
exp_step        ``y n scale``, ``y_up = max(1 - A_up exp(gamma_up s), 0)``, ``y_down =
                max(1 - A_down exp(-gamma_down s), 0)``, ``s = 2 w / (b_max - b_min) a + b``;
                no step where ``b_max <= b_min`` (``rpu_expstep_device.cpp``)
pow_step        ``scale_up ((b_max - w) / R)^gamma_up n`` up, ``scale_down ((w - b_min) /
                R)^gamma_down n`` down, ``R = b_max - b_min``, gammas drawn as the scales
                from ``pow_gamma``, ``pow_gamma_dtod``, ``pow_up_down``, ``pow_up_down_dtod``;
                no step where ``R = 0`` (``rpu_powstep_device.cpp``)
=============== ====================================================================

aihwkit's sign convention holds: a coincidence whose row and column polarities agree moves
the device down (``W -= lr x d``), one whose polarities differ up.

Each weight is a pair: the pulsed device ``G+`` and a reference ``G-`` programmed once at
``w_ref`` (``reference``: the device's symmetry point, where an up and a down step are equal
and where random equal numbers of up and down pulses leave it; or 0). The weight is ``w -
w_ref``; ``-span .. span`` maps linearly onto ``g_min .. g_max``.

Floating-point order, so that cosimulation (which calls :meth:`PulsedArray.apply` with the
masks the RTL drives) and the batch path agree bit for bit: every step is computed in
float64, elementwise, in the order its function's docstring gives, then clipped as
``min(max(w, b_min), b_max)``. A slot computes either the coincident devices alone
(gathered) or every device, keeping the coincident ones (when at least half coincide):
which elements are computed changes, never how (a test checks both against the step
functions). ``exp_step`` and ``pow_step`` call numpy's ``exp`` and ``power``, whose last
bit may differ between numpy builds or processors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..config import TileConfig
from ._params import _check_fields, _p
from .rng import Static, Stream, normals

__all__ = ["KINDS", "REFERENCES", "DeviceParameters", "PulsedArray", "PulsedDeviceConfig",
           "constant_step", "exp_step", "linear_step", "populate", "pow_step", "step",
           "symmetry_point", "training_scale"]

#: Device models, as aihwkit's ConstantStep, LinearStep, SoftBounds, ExpStep, PowStep;
#: "none": no pulsed update (a chip that is not trained).
KINDS = ("none", "constant_step", "linear_step", "soft_bounds", "exp_step", "pow_step")
#: Where the reference device of each pair sits.
REFERENCES = ("symmetry", "zero")

_BISECTIONS = 64  # halvings of b_max - b_min: past the float64 resolution of any bound
#: Share of coincident devices from which a slot steps every device rather than gathering
#: the coincident ones (the measured crossover of the two, bench/update_speed.py).
_DENSE = 0.5


@dataclass(frozen=True)
class PulsedDeviceConfig:
    """The devices' response to update pulses (the ``[update]`` section of a model).

    Defaults are aihwkit's (``PulsedDevice``, ``LinearStepDevice``, ``ExpStepDevice``,
    ``PowStepDevice`` in ``src/aihwkit/simulator/configs/devices.py``). Relative spreads
    (``*_dtod``, ``dw_min_std``) are in units of the quantity they spread, as there.

    Raises
    ------
    ValueError
        A field is out of its range, ``kind`` or ``reference`` is not one of :data:`KINDS`
        or :data:`REFERENCES`, or a mean bound lies outside ``-span .. span``.
    TypeError
        ``mult_noise`` or ``mean_bound_reference`` is not a bool.
    """

    kind: str = field(default="none", metadata=dict(doc="device model: " + ", ".join(KINDS)))
    # PulsedDevice: dw_min 0.001, dw_min_dtod 0.3, dw_min_std 0.3, up_down 0,
    # up_down_dtod 0.01, w_max 0.6, w_min -0.6, w_max_dtod 0.3, w_min_dtod 0.3.
    dw_min: float = _p(0.001, 0.0, 1.0, doc="mean step at w = 0, weight units", lo_open=True)
    dw_min_dtod: float = _p(0.3, 0.0, 10.0, doc="device-to-device spread of the step, relative")
    dw_min_std: float = _p(0.3, 0.0, 10.0, doc="cycle-to-cycle spread of a step, relative")
    up_down: float = _p(0.0, -1.0, 1.0, doc="up/down asymmetry of the step, relative")
    up_down_dtod: float = _p(0.01, 0.0, 10.0, doc="device-to-device spread of up_down")
    w_max: float = _p(0.6, 0.0, 100.0, doc="mean upper bound, weight units")
    w_min: float = _p(-0.6, -100.0, 0.0, doc="mean lower bound, weight units")
    w_max_dtod: float = _p(0.3, 0.0, 10.0, doc="device-to-device spread of w_max, relative")
    w_min_dtod: float = _p(0.3, 0.0, 10.0, doc="device-to-device spread of w_min, relative")
    # LinearStepDevice: gamma_up = gamma_down = 0, their dtods 0.05, mult_noise and
    # mean_bound_reference on (SoftBoundsDevice keeps mult_noise on).
    gamma_up: float = _p(0.0, 0.0, 100.0, doc="linear_step: relative step decrease at w_max")
    gamma_down: float = _p(0.0, 0.0, 100.0, doc="linear_step: relative step decrease at w_min")
    gamma_up_dtod: float = _p(0.05, 0.0, 100.0, doc="linear_step: spread of gamma_up")
    gamma_down_dtod: float = _p(0.05, 0.0, 100.0, doc="linear_step: spread of gamma_down")
    mult_noise: bool = field(default=True, metadata=dict(
        doc="linear_step, soft_bounds: cycle-to-cycle noise multiplies the whole step"))
    mean_bound_reference: bool = field(default=True, metadata=dict(
        doc="linear_step: slopes relative to w_max, w_min, not the device's own bounds"))
    # ExpStepDevice: A_up 0.00081, A_down 0.36833, gamma_up 12.44625, gamma_down 12.78785,
    # a 0.244, b 0.2425.
    es_A_up: float = _p(0.00081, -1e3, 1e3, doc="exp_step: factor A, up")
    es_A_down: float = _p(0.36833, -1e3, 1e3, doc="exp_step: factor A, down")
    es_gamma_up: float = _p(12.44625, -1e3, 1e3, doc="exp_step: exponent, up")
    es_gamma_down: float = _p(12.78785, -1e3, 1e3, doc="exp_step: exponent, down")
    es_a: float = _p(0.244, -1e3, 1e3, doc="exp_step: slope of the exponent's argument")
    es_b: float = _p(0.2425, -1e3, 1e3, doc="exp_step: offset of the exponent's argument")
    # PowStepDevice: pow_gamma 1, pow_gamma_dtod 0.1, pow_up_down 0, pow_up_down_dtod 0.
    pow_gamma: float = _p(1.0, 0.0, 100.0, doc="pow_step: exponent of the distance to a bound")
    pow_gamma_dtod: float = _p(0.1, 0.0, 10.0, doc="pow_step: device spread of pow_gamma")
    pow_up_down: float = _p(0.0, -1.0, 1.0, doc="pow_step: up/down asymmetry of pow_gamma")
    pow_up_down_dtod: float = _p(0.0, 0.0, 10.0, doc="pow_step: device spread of pow_up_down")
    # A design choice of this project: the reference of each pair at the symmetry point, so
    # that weight 0 is where training's random up and down pulses settle.
    reference: str = field(default="symmetry", metadata=dict(
        doc="reference device of each pair: symmetry (point) or zero"))
    # A design choice: one unit of weight is half the conductance window, as aihwkit's
    # +-1 weight range of its presets.
    span: float = _p(1.0, 0.0, 1e3, doc="weight mapped onto g_max (-span onto g_min)",
                     lo_open=True)

    def __post_init__(self):
        for name, allowed in (("kind", KINDS), ("reference", REFERENCES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"PulsedDeviceConfig.{name} must be one of "
                                 f"{', '.join(allowed)}, not {getattr(self, name)!r}")
        for name in ("mult_noise", "mean_bound_reference"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"PulsedDeviceConfig.{name} must be True or False, "
                                f"not {getattr(self, name)!r}")
        _check_fields(self)
        for name, bound in (("w_max", self.w_max), ("w_min", -self.w_min)):
            if bound > self.span:
                raise ValueError(f"PulsedDeviceConfig.{name} must lie within -span..span "
                                 f"(span={self.span}), not {getattr(self, name)!r}")


@dataclass(frozen=True)
class DeviceParameters:
    """Hidden parameters of pulsed devices, arrays of one shape (weight units).

    ``slope_*`` are 0 but for linear_step and soft_bounds, ``gamma_*`` 0 but for pow_step.
    """

    b_max: np.ndarray
    b_min: np.ndarray
    scale_up: np.ndarray
    scale_down: np.ndarray
    slope_up: np.ndarray
    slope_down: np.ndarray
    gamma_up: np.ndarray
    gamma_down: np.ndarray

    def take(self, index) -> DeviceParameters:
        """The parameters of the devices ``index`` selects (any numpy index)."""
        return DeviceParameters(*(getattr(self, f.name)[index]
                                  for f in dataclasses.fields(self)))


def _biased(base, dtod_z, up_down, spread_z):
    """aihwkit's up/down pair around ``base``: ``((up_bias + gain + r) base, (down_bias +
    gain - r) base)``, ``gain = 1 + dtod_z``, ``r = spread_z``, both taken in magnitude."""
    gain = 1.0 + dtod_z
    up = (min(up_down, 0.0) + gain + spread_z) * base
    down = (-max(up_down, 0.0) + gain - spread_z) * base
    return np.abs(up), np.abs(down)


def populate(config: PulsedDeviceConfig, shape, seed: int) -> DeviceParameters:
    """Draw the hidden parameters of ``shape`` devices from chip seed ``seed``.

    Device ``i`` (row-major) takes element ``i`` and ``n + i`` (``n`` devices) of the draws
    of :attr:`Static.UPDATE_BOUNDS` (``w_max``, ``w_min``), :attr:`Static.UPDATE_SCALES`
    (gain, up/down) and :attr:`Static.UPDATE_SHAPE` (the gammas of linear_step or
    pow_step). See the module docstring for the formulas.
    """
    n = int(np.prod(shape))

    def draw(kind):
        z = normals(seed, Stream.STATIC, 0, 1, 2 * n, context=int(kind))[0]
        return z[:n].reshape(shape), z[n:].reshape(shape)

    c = config
    z_max, z_min = draw(Static.UPDATE_BOUNDS)
    b_max = c.w_max * (1.0 + c.w_max_dtod * z_max)
    b_min = c.w_min * (1.0 + c.w_min_dtod * z_min)
    b_max, b_min = np.maximum(b_max, b_min), np.minimum(b_max, b_min)
    b_max = np.minimum(np.abs(b_max), c.span)
    b_min = np.maximum(-np.abs(b_min), -c.span)
    z_gain, z_r = draw(Static.UPDATE_SCALES)
    scale_up, scale_down = _biased(c.dw_min, c.dw_min_dtod * z_gain, c.up_down,
                                   c.up_down_dtod * z_r)
    zero = np.zeros(shape)
    slope_up, slope_down, gamma_up, gamma_down = zero, zero, zero, zero
    if c.kind in ("linear_step", "soft_bounds"):
        if c.kind == "soft_bounds":
            g_up = g_down = 1.0
            ref_up, ref_down = b_max, b_min
        else:
            z_up, z_down = draw(Static.UPDATE_SHAPE)
            g_up = np.abs(c.gamma_up + c.gamma_up_dtod * z_up)
            g_down = np.abs(c.gamma_down + c.gamma_down_dtod * z_down)
            ref_up, ref_down = ((c.w_max, c.w_min) if c.mean_bound_reference
                                else (b_max, b_min))
        # A zero reference bound gives no slope, as in aihwkit.
        with np.errstate(divide="ignore", invalid="ignore"):
            slope_up = np.where(ref_up != 0, -g_up * scale_up / ref_up, 0.0)
            slope_down = np.where(ref_down != 0, -g_down * scale_down / ref_down, 0.0)
    elif c.kind == "pow_step":
        z_gain, z_r = draw(Static.UPDATE_SHAPE)
        gamma_up, gamma_down = _biased(c.pow_gamma, c.pow_gamma_dtod * z_gain, c.pow_up_down,
                                       c.pow_up_down_dtod * z_r)
    return DeviceParameters(b_max, b_min, scale_up, scale_down, slope_up, slope_down,
                            gamma_up, gamma_down)


# -- one pulse ------------------------------------------------------------------------------

def _noise(z, std):
    """The cycle-to-cycle factor ``1 + std z`` (1 without noise)."""
    return 1.0 if z is None or std == 0 else 1.0 + std * np.asarray(z, dtype=np.float64)


def _signed(down, up_value, down_value):
    """``up_value`` for an up pulse, ``-down_value`` for a down pulse: a step formed from
    the negated parameters of a down pulse is exactly the negated step (IEEE rounding is
    symmetric), so ``w + (-m)`` is the ``w - m`` of aihwkit's formulas."""
    return np.where(down, np.negative(down_value), up_value)


def _clip(w, b_min, b_max):
    return np.minimum(np.maximum(w, b_min), b_max)


def _where_ranged(r, new, w):
    """``new`` where the range ``r`` of a device is positive, ``w`` (no move) elsewhere."""
    ok = np.asarray(r > 0)
    return new if ok.all() else np.where(ok, new, w)


def constant_step(w, down, scale_up, scale_down, b_min, b_max, z=None, std=0.0):
    """One pulse of a constant-step device: ``m = (1 + std z) scale`` (``scale`` of the
    pulse's direction), then ``w + m`` up or ``w - m`` down, clipped to ``b_min .. b_max``
    (``min(max(w, b_min), b_max)``).

    Parameters
    ----------
    w : array_like
        States before the pulse, weight units.
    down : array_like of bool
        Direction of each device's pulse (``True``: down).
    scale_up, scale_down, b_min, b_max : array_like
        Hidden parameters (:class:`DeviceParameters`), weight units.
    z : array_like or None
        Standard normal deviates, one per device; ``None``: no cycle-to-cycle noise.
    std : float
        ``dw_min_std``.

    Returns
    -------
    numpy.ndarray
        States after the pulse (float64).
    """
    w = np.asarray(w, dtype=np.float64)
    return _clip(w + _noise(z, std) * _signed(down, scale_up, scale_down), b_min, b_max)


def linear_step(w, down, scale_up, scale_down, slope_up, slope_down, b_min, b_max, z=None,
                std=0.0, mult_noise=True):
    """One pulse of a linear-step (or soft-bounds) device: with ``slope``, ``scale`` of the
    pulse's direction, ``m = (slope w + scale) (1 + std z)`` (``mult_noise``) or ``m = slope
    w + scale (1 + std z)``; then as :func:`constant_step`."""
    w = np.asarray(w, dtype=np.float64)
    slope, scale = _signed(down, slope_up, slope_down), _signed(down, scale_up, scale_down)
    if mult_noise:
        m = (slope * w + scale) * _noise(z, std)
    else:
        m = slope * w + scale * _noise(z, std)
    return _clip(w + m, b_min, b_max)


def _exp_factor(w, down, b_min, b_max, A_up, A_down, gamma_up, gamma_down, a, b):
    """``y`` of :func:`exp_step` (``exp(-gamma_down s)`` computed as ``exp((-gamma_down)
    s)``, the same number), and ``b_max - b_min``."""
    diff = b_max - b_min
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = 2.0 * w / diff * a + b
        e = np.exp(np.where(down, -gamma_down, gamma_up) * s)
        y = 1.0 - np.where(down, A_down, A_up) * e
    return np.maximum(y, 0.0), diff


def exp_step(w, down, scale_up, scale_down, b_min, b_max, z=None, std=0.0, *, A_up, A_down,
             gamma_up, gamma_down, a, b):
    """One pulse of an exp-step device: ``s = ((2 w) / (b_max - b_min)) a + b``, ``y =
    max(1 - A exp(gamma s), 0)`` with ``(A_up, gamma_up)`` up and ``(A_down, -gamma_down)``
    down, ``m = (y (1 + std z)) scale``; then as :func:`constant_step`. Devices with
    ``b_max <= b_min`` do not move."""
    w = np.asarray(w, dtype=np.float64)
    y, diff = _exp_factor(w, down, b_min, b_max, A_up, A_down, gamma_up, gamma_down, a, b)
    m = y * _noise(z, std) * _signed(down, scale_up, scale_down)
    return _where_ranged(diff, _clip(w + m, b_min, b_max), w)


def _pow_factor(w, down, b_min, b_max, gamma_up, gamma_down):
    """``((b_max - w) / R)^gamma_up`` up, ``((w - b_min) / R)^gamma_down`` down, and ``R``."""
    r = b_max - b_min
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(down, w - b_min, b_max - w) / r
        return np.power(base, np.where(down, gamma_down, gamma_up)), r


def pow_step(w, down, scale_up, scale_down, gamma_up, gamma_down, b_min, b_max, z=None,
             std=0.0):
    """One pulse of a power-step device: ``m = (scale f) (1 + std z)`` with ``f`` of
    :func:`_pow_factor`; then as :func:`constant_step`. Devices with ``b_max = b_min`` do
    not move."""
    w = np.asarray(w, dtype=np.float64)
    f, r = _pow_factor(w, down, b_min, b_max, gamma_up, gamma_down)
    m = _signed(down, scale_up, scale_down) * f * _noise(z, std)
    return _where_ranged(r, _clip(w + m, b_min, b_max), w)


def step(config: PulsedDeviceConfig, w, down, p: DeviceParameters, z=None):
    """One pulse of devices of ``config.kind`` with hidden parameters ``p`` (the dispatcher
    :class:`PulsedArray` uses)."""
    c, std = config, config.dw_min_std
    if c.kind == "constant_step":
        return constant_step(w, down, p.scale_up, p.scale_down, p.b_min, p.b_max, z, std)
    if c.kind in ("linear_step", "soft_bounds"):
        return linear_step(w, down, p.scale_up, p.scale_down, p.slope_up, p.slope_down,
                           p.b_min, p.b_max, z, std, c.mult_noise)
    if c.kind == "exp_step":
        return exp_step(w, down, p.scale_up, p.scale_down, p.b_min, p.b_max, z, std,
                        A_up=c.es_A_up, A_down=c.es_A_down, gamma_up=c.es_gamma_up,
                        gamma_down=c.es_gamma_down, a=c.es_a, b=c.es_b)
    if c.kind == "pow_step":
        return pow_step(w, down, p.scale_up, p.scale_down, p.gamma_up, p.gamma_down, p.b_min,
                        p.b_max, z, std)
    raise ValueError(f"devices of kind {c.kind!r} take no pulses")


def _imbalance(config: PulsedDeviceConfig, w, p: DeviceParameters):
    """Noise-free up step minus down step at ``w``, for exp_step and pow_step."""
    c, up, down = config, np.zeros(np.shape(w), bool), np.ones(np.shape(w), bool)
    if c.kind == "exp_step":
        args = (p.b_min, p.b_max, c.es_A_up, c.es_A_down, c.es_gamma_up, c.es_gamma_down,
                c.es_a, c.es_b)
        f_up, f_down = _exp_factor(w, up, *args)[0], _exp_factor(w, down, *args)[0]
    else:
        args = (p.b_min, p.b_max, p.gamma_up, p.gamma_down)
        f_up, f_down = _pow_factor(w, up, *args)[0], _pow_factor(w, down, *args)[0]
    return p.scale_up * f_up - p.scale_down * f_down


def training_scale(model) -> float:
    """Integer weight units (conductance LSBs) per weight unit of the pulsed devices of
    ``model`` (a ModelConfig): ``w_max / (2 span)``, the state window ``+-span`` spanning
    ``g_min .. g_max``."""
    return model.array.w_max / (2 * model.update.span)


def symmetry_point(config: PulsedDeviceConfig, p: DeviceParameters) -> np.ndarray:
    """Each device's symmetry point (its noise-free up and down steps equal), clipped into
    its bounds.

    * constant_step: 0 (no point; its steps do not depend on ``w``);
    * linear_step, soft_bounds: ``(scale_down - scale_up) / (slope_up - slope_down)``, 0
      where the slopes are equal;
    * exp_step, pow_step: bisection of ``b_min .. b_max`` on the sign of the up step minus
      the down step (64 halvings); a device whose up step is larger everywhere ends at
      ``b_max``, smaller everywhere at ``b_min``.
    """
    c = config
    if c.kind in ("linear_step", "soft_bounds"):
        den = p.slope_up - p.slope_down
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(den != 0, (p.scale_down - p.scale_up) / den, 0.0)
    elif c.kind in ("exp_step", "pow_step"):
        lo, hi = p.b_min.copy(), p.b_max.copy()
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            above = _imbalance(c, mid, p) > 0  # up steps larger: the point lies above
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        # Without a sign change the halvings end an ulp inside the bound: put them on it.
        w = np.where(_imbalance(c, p.b_max, p) > 0, p.b_max,
                     np.where(_imbalance(c, p.b_min, p) < 0, p.b_min, 0.5 * (lo + hi)))
    else:
        w = np.zeros(np.shape(p.b_max))
    return np.clip(w, p.b_min, p.b_max)


# -- the array ------------------------------------------------------------------------------

class PulsedArray:
    """The pulsed devices of one tile, ``(rows, cols)``: hidden parameters drawn once from
    the chip seed, the reference of each pair, and the state.

    Parameters
    ----------
    tile : TileConfig
        The tile (its rows and columns).
    config : PulsedDeviceConfig, ModelConfig or str
        The devices; a model configuration (or preset name) gives its ``update`` section
        and takes ``g_min``, ``g_max`` from its ``device`` section.
    seed : int
        Chip seed, ``0 .. 2**64 - 1``.
    g_min, g_max : float, optional
        Conductance window, uS (with a :class:`PulsedDeviceConfig`; default 0 and 25, as
        :class:`~aimc.model.config.DeviceConfig`).

    Attributes
    ----------
    params : DeviceParameters
        Hidden parameters, ``(rows, cols)`` each.
    w_ref : numpy.ndarray
        State of each pair's reference device (weight 0), weight units.
    w : numpy.ndarray
        State of each pulsed device, weight units (read it; change it with
        :meth:`set_weights` or :meth:`set_state`).

    Raises
    ------
    TypeError
        ``tile`` or ``config`` is of the wrong type.
    ValueError
        ``config.kind`` is ``"none"``, or the seed or conductance window is out of range.
    """

    def __init__(self, tile: TileConfig, config, seed: int = 0, *, g_min: float | None = None,
                 g_max: float | None = None):
        from .config import DeviceConfig, ModelConfig, preset

        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        device = DeviceConfig()
        if isinstance(config, str):
            config = preset(config)
        if isinstance(config, ModelConfig):
            config, device = config.update, config.device
        if not isinstance(config, PulsedDeviceConfig):
            raise TypeError(f"config must be a PulsedDeviceConfig, ModelConfig or preset name, "
                            f"not {config!r}")
        if config.kind == "none":
            raise ValueError("a PulsedArray needs a pulsed device model; update.kind is 'none'")
        g_min = device.g_min if g_min is None else g_min
        g_max = device.g_max if g_max is None else g_max
        device = DeviceConfig(g_min=g_min, g_max=g_max)  # validates the window
        normals(seed, Stream.STATIC, 0, 1, 1)  # validates the seed
        self.tile, self.config, self.seed = tile, config, int(seed)
        self.g_min, self.g_max = device.g_min, device.g_max
        shape = (tile.rows, tile.cols)
        self.params = populate(config, shape, self.seed)
        self.w_ref = (symmetry_point(config, self.params) if config.reference == "symmetry"
                      else np.zeros(shape))
        self.w = self.w_ref.copy()
        # One (fields, rows, cols) block, so that a slot gathers its devices in one indexing.
        self._stack = np.stack([getattr(self.params, f.name).ravel()
                                for f in dataclasses.fields(DeviceParameters)])

    @property
    def noisy(self) -> bool:
        """Whether a pulse draws cycle-to-cycle noise (:meth:`apply` needs ``z``)."""
        return self.config.dw_min_std > 0

    @property
    def weights(self) -> np.ndarray:
        """``w - w_ref``, weight units."""
        return self.w - self.w_ref

    def _g(self, w) -> np.ndarray:
        # g_min + (g_max - g_min) ((w + span) / (2 span)), in this order.
        span = self.config.span
        return self.g_min + (self.g_max - self.g_min) * ((w + span) / (2.0 * span))

    def g_plus(self) -> np.ndarray:
        """Conductances of the pulsed devices, uS."""
        return self._g(self.w)

    def g_minus(self) -> np.ndarray:
        """Conductances of the reference devices, uS."""
        return self._g(self.w_ref)

    def set_state(self, w) -> None:
        """Set the pulsed devices' states (weight units), clipped into their bounds."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != self.w.shape or not np.all(np.isfinite(w)):
            raise ValueError(f"states must be finite numbers of shape {self.w.shape}, "
                             f"not an array of shape {w.shape}")
        self.w = np.clip(w, self.params.b_min, self.params.b_max)

    def set_weights(self, weights) -> None:
        """Set the weights ``w - w_ref`` (initial weights), clipped into the bounds."""
        weights = np.asarray(weights, dtype=np.float64)
        self.set_state(self.w_ref + weights if weights.shape == self.w.shape else weights)

    def _mask(self, v, n: int, name: str) -> np.ndarray:
        v = np.asarray(v)
        if v.shape != (n,) or v.dtype != bool:
            raise ValueError(f"{name} must be a bool vector of length {n}, not an array of "
                             f"shape {v.shape} and type {v.dtype}")
        return v

    def check_polarities(self, neg_rows, neg_cols) -> tuple[np.ndarray, np.ndarray]:
        """The polarity masks ``neg_rows (rows,)`` and ``neg_cols (cols,)``, checked.

        Raises
        ------
        ValueError
            A mask is not a bool vector of its length.
        """
        return (self._mask(np.asarray(neg_rows), self.tile.rows, "neg_rows"),
                self._mask(np.asarray(neg_cols), self.tile.cols, "neg_cols"))

    def apply(self, fire_rows, neg_rows, fire_cols, neg_cols, z=None) -> tuple[int, int]:
        """One pulse slot: every device whose row and column fire takes one pulse, down where
        ``neg_rows[r] == neg_cols[c]``, up elsewhere.

        Parameters
        ----------
        fire_rows, neg_rows : array_like of bool, ``(rows,)``
            Which row lines fire, and with negative polarity.
        fire_cols, neg_cols : array_like of bool, ``(cols,)``
            Likewise for the columns.
        z : array_like, ``(rows, cols)``, optional
            Standard normal deviates of the slot; needed when :attr:`noisy` and some device
            coincides (a slot without a coincidence changes nothing and draws nothing).

        Returns
        -------
        (int, int)
            Pulses up and down.
        """
        rows, cols = self.tile.rows, self.tile.cols
        fr, nr = self._mask(fire_rows, rows, "fire_rows"), self._mask(neg_rows, rows, "neg_rows")
        fc, nc = self._mask(fire_cols, cols, "fire_cols"), self._mask(neg_cols, cols, "neg_cols")
        ri, ci = np.flatnonzero(fr), np.flatnonzero(fc)
        if not ri.size or not ci.size:
            return 0, 0
        deviates = None
        if self.noisy:
            if z is None or np.shape(z) != (rows, cols):
                raise ValueError(f"z must be an array of shape {(rows, cols)} (the devices "
                                 f"are noisy), not {None if z is None else np.shape(z)}")
            flat = np.asarray(z, dtype=np.float64).ravel()
            deviates = lambda index: flat if index is None else flat.take(index)  # noqa: E731
        return self.pulse(ri, ci, nr, nc, deviates)

    def pulse(self, ri, ci, neg_rows, neg_cols, deviates=None) -> tuple[int, int]:
        """The step of :meth:`apply` for rows ``ri`` and columns ``ci`` (sorted index
        arrays, masks already checked): ``deviates(index)`` gives the slot's deviates of the
        devices at the flat indices ``index`` (row-major), or of all devices for ``None``;
        it is needed when :attr:`noisy`."""
        rows, cols = self.tile.rows, self.tile.cols
        nr, nc = neg_rows, neg_cols
        if ri.size * ci.size >= _DENSE * rows * cols:
            # Many coincidences: step every device and keep the coincident ones (gathering
            # would cost more than it saves). Same elementwise operations as below.
            hit = np.zeros((rows, cols), bool)
            hit[np.ix_(ri, ci)] = True
            down = nr[:, None] == nc[None, :]
            z = deviates(None).reshape(rows, cols) if self.noisy else None
            new = step(self.config, self.w, down, self.params, z)
            self.w = np.where(hit, new, self.w)
            n_down = int(np.count_nonzero(hit & down))
            return ri.size * ci.size - n_down, n_down
        # Few coincidences: gather them (flat indices, row-major) and step those alone.
        index = (ri[:, None] * cols + ci[None, :]).ravel()
        down = (nr[ri][:, None] == nc[ci][None, :]).ravel()
        p = DeviceParameters(*self._stack.take(index, axis=1))
        zz = deviates(index) if self.noisy else None
        self.w.ravel()[index] = step(self.config, self.w.ravel().take(index), down, p, zz)
        n_down = int(np.count_nonzero(down))
        return down.size - n_down, n_down
