"""Configuration of the analogue model: devices, programming pulses, array, row drivers,
integrators, ADCs, energy, and the devices' response to training pulses.

Every parameter is a field of a frozen dataclass, checked on construction against the range
in its metadata. :data:`PRESETS` holds the named configurations (``ideal``, ``pcm``,
``rram``, ``adc-only``, and the training presets ``gokmen-vlasov``, ``reram-sb``,
``ecram``); :func:`load` and :func:`save` read and write TOML or JSON.

A configuration file holds tables named after the parts (``[device]``, ``[adc]`` ...). It
may name a ``preset`` at the top: its tables then change only the fields they list::

    preset = "pcm"
    [adc]
    comparator_noise = 0.3

Units: conductances in uS, resistances in ohm, times in seconds, temperatures in kelvin,
converter quantities in ADC LSB, energies in pJ unless a field name says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ._params import _check_fields, _p
from .pulsed import PulsedDeviceConfig

__all__ = [
    "AdcConfig", "ArrayConfig", "DeviceConfig", "DriverConfig", "EnergyConfig",
    "IntegratorConfig", "ModelConfig", "PRESETS", "PulseConfig", "PulsedDeviceConfig", "load",
    "preset", "save",
]


@dataclass(frozen=True)
class DeviceConfig:
    """Memory devices: conductance range, programming noise, 1/f read noise, drift,
    temperature, per-cycle white noise and stuck faults.

    With ``g = G_target / g_max`` and ``t`` the time since programming plus ``drift_t0``:

    * programming noise: ``G_prog = max(G_target + sigma(g) z, 0)``,
      ``sigma(g) = prog_c0 + prog_c1 g + ... + prog_c4 g^4`` uS;
    * drift: ``G(t) = G_prog (t / drift_t0)^-nu``, one ``nu = |mu + s z|`` per device, where
      ``mu`` and ``s`` are linear in ``ln(max(g, 1e-7))`` and clipped to their limits;
    * 1/f read noise accumulated since programming: ``G_read = G(t) (1 + Q sqrt(ln((t +
      read_t) / (2 read_t))) z)`` with ``Q = min(read_q / max((G_prog/g_max)^read_q_exp,
      1e-3), read_q_max)``, drawn once per device and read time;
    * temperature: ``G`` scales with ``exp(-temp_activation / k (1/T - 1/temp_ref))``;
    * white noise: each driven cycle adds an independent conductance error of variance
      ``(white_noise g_max)^2 G / g_max``.
    """

    g_max: float = _p(25.0, 0.0, doc="largest programmable conductance, uS", lo_open=True)
    g_min: float = _p(0.0, 0.0, doc="smallest programmable conductance, uS")
    prog_c0: float = _p(0.0, doc="programming noise polynomial in G/g_max, order 0, uS")
    prog_c1: float = _p(0.0, doc="programming noise polynomial, order 1, uS")
    prog_c2: float = _p(0.0, doc="programming noise polynomial, order 2, uS")
    prog_c3: float = _p(0.0, doc="programming noise polynomial, order 3, uS")
    prog_c4: float = _p(0.0, doc="programming noise polynomial, order 4, uS")
    read_q: float = _p(0.0, 0.0, doc="1/f read noise: Q = min(read_q / g^read_q_exp, read_q_max)")
    read_q_exp: float = _p(0.0, 0.0, 2.0, doc="1/f read noise: exponent of G/g_max in Q")
    read_q_max: float = _p(0.0, 0.0, 1.0, doc="1/f read noise: upper limit of Q")
    read_t: float = _p(250e-9, 0.0, doc="duration of one read, s", lo_open=True)
    drift_t0: float = _p(20.0, 0.0, doc="time from programming to the reference read, s",
                         lo_open=True)
    nu_mean_a: float = _p(0.0, doc="drift exponent mean: slope in ln(G_target/g_max)")
    nu_mean_b: float = _p(0.0, doc="drift exponent mean: intercept")
    nu_mean_lo: float = _p(0.0, 0.0, 1.0, doc="drift exponent mean: lower clip")
    nu_mean_hi: float = _p(0.0, 0.0, 1.0, doc="drift exponent mean: upper clip")
    nu_std_a: float = _p(0.0, doc="drift exponent spread: slope in ln(G_target/g_max)")
    nu_std_b: float = _p(0.0, doc="drift exponent spread: intercept")
    nu_std_lo: float = _p(0.0, 0.0, 1.0, doc="drift exponent spread: lower clip")
    nu_std_hi: float = _p(0.0, 0.0, 1.0, doc="drift exponent spread: upper clip")
    temp_activation: float = _p(0.0, 0.0, 2.0, doc="activation energy of the conductance, eV")
    temp_ref: float = _p(300.0, 0.0, doc="temperature of the characterisation, K",
                         lo_open=True)
    white_noise: float = _p(0.0, 0.0, 1.0, doc="per-cycle white noise, RMS at g_max / g_max")
    stuck_gmin_rate: float = _p(0.0, 0.0, 1.0, doc="fraction of devices stuck at g_min")
    stuck_gmax_rate: float = _p(0.0, 0.0, 1.0, doc="fraction of devices stuck at g_max")

    def __post_init__(self):
        _check_fields(self)
        if self.g_min >= self.g_max:
            raise ValueError(f"DeviceConfig.g_min must be below g_max ({self.g_max}), "
                             f"not {self.g_min!r}")
        if self.stuck_gmin_rate + self.stuck_gmax_rate > 1:
            raise ValueError("DeviceConfig.stuck_gmin_rate + stuck_gmax_rate must be <= 1, "
                             f"not {self.stuck_gmin_rate + self.stuck_gmax_rate!r}")
        for name in ("nu_mean", "nu_std"):
            lo, hi = getattr(self, name + "_lo"), getattr(self, name + "_hi")
            if lo > hi:
                raise ValueError(f"DeviceConfig.{name}_lo must be <= {name}_hi ({hi}), "
                                 f"not {lo!r}")

    @property
    def prog_coeffs(self) -> tuple[float, ...]:
        return (self.prog_c0, self.prog_c1, self.prog_c2, self.prog_c3, self.prog_c4)


@dataclass(frozen=True)
class PulseConfig:
    """The devices' response to programming pulses (program-and-verify).

    A pulse of amplitude code ``a`` (``0 .. AMP_MAX``) lasting ``width`` cycles has the
    strength ``s = a / AMP_MAX * width / WIDTH_REF`` (:mod:`aimc.programming`). With ``G`` the
    device's conductance before the pulse, ``z`` a standard normal deviate per column and
    pulse step, and ``z_d`` one per device, drawn once:

    * SET (soft bound): ``dG = max(set_step d s (c - G) / (c - g_min) (1 + set_cv z), 0)``,
      ``c = set_ceiling g_max``, ``d = max(1 + set_dtod z_d, 0)``; then
      ``G = min(G + dG, g_max)``. One full-strength SET from ``g_min`` adds ``set_step d``
      on average, less as ``G`` approaches the ceiling;
    * RESET: ``r = clip(reset_frac s (1 + reset_cv z), 0, 1)``, ``G = G - r (G - g_min)``:
      a fraction of the conductance above ``g_min`` is removed.

    Stuck devices do not respond. ``g_min`` and ``g_max`` are those of :class:`DeviceConfig`.
    """

    # A full-amplitude partial-SET pulse moves a device by a fifth of g_max from g_min, so
    # that a handful of pulses spans the range (a design assumption of this project).
    set_step: float = _p(5.0, 0.0, doc="mean SET increment at g_min, full amplitude and "
                         "reference width, uS", lo_open=True)
    # Twice g_max: the ceiling of aihwkit's PCMPresetDevice (w_max 2.0), see the pcm preset.
    set_ceiling: float = _p(2.0, 1.0, 10.0, doc="soft-bound ceiling of SET, relative to g_max",
                            lo_open=True)
    # Deterministic pulses by default (ideal, adc-only); the device presets set the spreads.
    set_cv: float = _p(0.0, 0.0, 3.0, doc="cycle-to-cycle relative RMS of a SET increment")
    set_dtod: float = _p(0.0, 0.0, 1.0, doc="device-to-device relative RMS of set_step")
    # A full-strength RESET returns the device to g_min (a design assumption: the pulse
    # re-amorphises the whole cell).
    reset_frac: float = _p(1.0, 0.0, 1.0, doc="fraction of G - g_min removed by a full-strength "
                           "RESET")
    reset_cv: float = _p(0.0, 0.0, 3.0, doc="cycle-to-cycle relative RMS of the RESET fraction")

    def __post_init__(self):
        _check_fields(self)


@dataclass(frozen=True)
class ArrayConfig:
    """The crossbar: weight resolution, read voltage and wire resistance.

    A signed weight ``w`` in ``-w_max .. w_max`` (``w_max = 2^(weight_bits-1) - 1``) is a
    differential pair on two physical columns: ``G+ = g_min + (g_max - g_min) max(w, 0) /
    w_max`` and ``G-`` likewise for ``-w``. The column integrator takes the difference.
    """

    weight_bits: int = _p(8, 2, 16, doc="signed weight resolution, bits", kind=int)
    # Read voltage of aihwkit's time-resolved IR-drop model (IOParametersIRDropT.ir_drop_v_read).
    v_read: float = _p(0.4005, 0.0, 5.0, doc="row read voltage, V", lo_open=True)
    r_row: float = _p(0.0, 0.0, 1e6, doc="row wire resistance per cell segment, ohm")
    r_col: float = _p(0.0, 0.0, 1e6, doc="column wire resistance per cell segment, ohm")

    def __post_init__(self):
        _check_fields(self)

    @property
    def w_max(self) -> int:
        return 2 ** (self.weight_bits - 1) - 1


@dataclass(frozen=True)
class DriverConfig:
    """Row drivers. A pulse delivers ``1 + polarity_mismatch`` (positive) or
    ``1 - polarity_mismatch`` (negative) units of drive per cycle, less ``edge_loss`` of one
    cycle at its rising edge: the PWM transfer becomes ``|x| - edge_loss`` for ``x != 0``."""

    edge_loss: float = _p(0.0, 0.0, 0.5, doc="drive lost at each pulse's rising edge, cycles")
    polarity_mismatch: float = _p(0.0, -0.5, 0.5, doc="relative amplitude asymmetry of +/- drive")

    def __post_init__(self):
        _check_fields(self)


@dataclass(frozen=True)
class IntegratorConfig:
    """Column integrators: range, and per-column gain and offset errors."""

    swing: float = _p(2.0, 0.0, 1e3, doc="saturation level relative to the ADC half range",
                      lo_open=True)
    gain_error: float = _p(0.0, 0.0, 0.5, doc="per-column gain error, relative RMS")
    offset: float = _p(0.0, 0.0, None, doc="per-column offset, RMS, ADC LSB")

    def __post_init__(self):
        _check_fields(self)


@dataclass(frozen=True)
class AdcConfig:
    """Successive-approximation ADCs at comparator level, and the calibration reference.

    ``lsb`` is the charge per code in units of one input LSB times one conductance LSB
    times one cycle; ``None`` scales it to the tile (four standard deviations of the column
    charge of uniform random inputs and weights span half the range).
    """

    lsb: float | None = _p(None, 0.0, None, doc="charge per ADC code (None: from the tile)",
                           lo_open=True, optional=True)
    cap_mismatch: float = _p(0.0, 0.0, 0.2, doc="unit capacitor mismatch of the DAC, relative RMS")
    comparator_offset: float = _p(0.0, 0.0, None, doc="comparator offset, RMS over ADCs, LSB")
    input_noise: float = _p(0.0, 0.0, None,
                            doc="noise per conversion (sampling, integrator), RMS, LSB")
    comparator_noise: float = _p(0.0, 0.0, None, doc="noise per comparator decision, RMS, LSB")
    ref_level: float = _p(0.75, 0.0, 1.0, doc="reference charge, fraction of the half range",
                          lo_open=True)
    ref_error: float = _p(0.0, 0.0, 0.2,
                          doc="per-column error of the reference charge, relative RMS")

    def __post_init__(self):
        _check_fields(self)


@dataclass(frozen=True)
class EnergyConfig:
    """Per-operation energy and timing figures of the estimate."""

    # 1 GHz, as the HERMES core (Khaddam-Aljameh et al., IEEE JSSC 2022).
    clock_ghz: float = _p(1.0, 0.0, 100.0, doc="digital clock, GHz", lo_open=True)
    # Middle of the 0.3-3 pJ of the best 6-8 ENOB converters in the Murmann ADC survey.
    adc_pj: float = _p(1.0, 0.0, doc="energy per ADC conversion, pJ")
    # NeuroSim's 0.2 fF/um wire capacitance (SubArray.cpp) over a 4 um cell-column pitch
    # (the HERMES column ADC pitch).
    row_wire_ff_per_cell: float = _p(0.8, 0.0, doc="row wire capacitance per cell, fF")
    # Drivers dissipate at least the CV^2 they switch; 2x covers the pre-driver chain
    # (a design assumption).
    driver_overhead: float = _p(2.0, 1.0, doc="driver energy as a multiple of the CV^2 switched")
    # Integrating amplifier: ~0.1 mW for a 100 ns window (a design assumption).
    integrator_pj: float = _p(0.1, 0.0, doc="energy per column integration, pJ")
    # Sequencer, 256 SAR registers and accumulators, stream logic: about 256 lanes of
    # 0.02-0.04 pJ per cycle in a 14 nm class process (a design assumption).
    digital_pj_per_cycle: float = _p(8.0, 0.0, doc="periphery logic energy per clock cycle, pJ")
    # Update pulses of the resistive processing unit specification (Gokmen & Vlasov, Front.
    # Neurosci. 2016, Table 1): 1 V across a coincident device for 1 ns; each line carries
    # half of it (the other half on the crossing line).
    update_v: float = _p(1.0, 0.0, 10.0, doc="update pulse across a coincident device, V")
    update_pulse_ns: float = _p(1.0, 0.0, 1000.0, doc="update pulse width, ns")

    def __post_init__(self):
        _check_fields(self)


_SECTIONS = {
    "device": DeviceConfig, "pulse": PulseConfig, "array": ArrayConfig, "driver": DriverConfig,
    "integrator": IntegratorConfig, "adc": AdcConfig, "energy": EnergyConfig,
    "update": PulsedDeviceConfig,
}


@dataclass(frozen=True)
class ModelConfig:
    """The whole analogue model: one table per part. Each part may be given as its
    dataclass or as a dict of the fields that differ from its defaults."""

    name: str = "custom"
    device: DeviceConfig = field(default_factory=DeviceConfig)
    pulse: PulseConfig = field(default_factory=PulseConfig)
    array: ArrayConfig = field(default_factory=ArrayConfig)
    driver: DriverConfig = field(default_factory=DriverConfig)
    integrator: IntegratorConfig = field(default_factory=IntegratorConfig)
    adc: AdcConfig = field(default_factory=AdcConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    #: Training pulses (:mod:`.pulsed`); kind "none" unless a training preset sets it.
    update: PulsedDeviceConfig = field(default_factory=PulsedDeviceConfig)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ModelConfig.name must be a non-empty string, not {self.name!r}")
        for key, cls in _SECTIONS.items():
            if isinstance(getattr(self, key), dict):
                object.__setattr__(self, key, _replace_section(key, cls(), getattr(self, key)))
            if not isinstance(getattr(self, key), cls):
                raise TypeError(f"ModelConfig.{key} must be a {cls.__name__}, "
                                f"not {getattr(self, key)!r}")

    @staticmethod
    def sections() -> tuple[str, ...]:
        """The names of the model's tables (``device``, ``pulse``, ... ``energy``), in order."""
        return tuple(_SECTIONS)

    def replace(self, **sections) -> ModelConfig:
        """A copy with fields changed: ``replace(adc={"input_noise": 0.5}, name="x")``."""
        changes = {}
        for key, value in sections.items():
            if key == "name":
                changes[key] = value
            elif key in _SECTIONS:
                if not isinstance(value, dict):
                    raise TypeError(f"{key} changes must be a dict, not {value!r}")
                changes[key] = _replace_section(key, getattr(self, key), value)
            else:
                raise ValueError(f"unknown model section {key!r}; allowed: name, "
                                 + ", ".join(_SECTIONS))
        return dataclasses.replace(self, **changes)

    @property
    def has_mvm_noise(self) -> bool:
        """Whether any effect draws random numbers per MVM: device white noise, converter
        input noise or comparator noise."""
        d, a = self.device, self.adc
        return bool(d.white_noise or a.input_noise or a.comparator_noise)

    def to_dict(self) -> dict:
        out = {"name": self.name}
        for key in _SECTIONS:
            out[key] = {k: v for k, v in dataclasses.asdict(getattr(self, key)).items()
                        if v is not None}
        return out

    @classmethod
    def from_dict(cls, data: dict, base: ModelConfig | None = None) -> ModelConfig:
        """Build from nested tables; ``base`` (or the preset named in ``preset``) supplies
        the fields the tables leave out."""
        data = dict(data)
        name = data.pop("preset", None)
        if base is None:
            base = preset(name) if name is not None else ModelConfig()
        changes = {k: v for k, v in data.items()}
        if "name" not in changes:
            changes["name"] = base.name if name is None else name
        return base.replace(**changes)


def _replace_section(key: str, current, values: dict):
    names = {f.name for f in dataclasses.fields(current)}
    for k in values:
        if k not in names:
            raise ValueError(f"unknown field {key}.{k}; allowed: {', '.join(sorted(names))}")
    return dataclasses.replace(current, **values)


# -- presets ------------------------------------------------------------------------------

_IDEAL = ModelConfig(name="ideal")

# Converter non-idealities of a realistic column ADC chain, shared by adc-only, pcm and rram.
_REAL_CONVERTERS = dict(
    integrator=dict(
        # Column gain spread: +-21 % across the 256 column ADCs of the HERMES core
        # (Khaddam-Aljameh et al., IEEE JSSC 2022), removed digitally; 7 % RMS puts the
        # extremes of 256 columns near +-20 %.
        gain_error=0.07,
        # Column offsets of a few LSB, also corrected per column on that chip.
        offset=2.0,
    ),
    adc=dict(
        # Unit-capacitor mismatch of femtofarad metal-fringe DAC capacitors, 0.5-1 %
        # (Tripathi and Murmann, IEEE TCAS-I 2014); a 2^k-unit capacitor has 1/sqrt(2^k)
        # of it, as in CrossSim's SarADC (sigma_capacitor, Pelgrom scaling).
        cap_mismatch=0.005,
        # Comparator offset after sizing: a few mV against a ~0.5 V reference at 8 bits
        # (2 mV per LSB), i.e. about one LSB.
        comparator_offset=1.0,
        # Sampling (kT/C) and integrator noise: a 50 fF sampling capacitor gives
        # sqrt(kT/C) = 0.29 mV RMS, 0.07 LSB of a 1 V, 8-bit range; 0.15 LSB allows about
        # as much again for the integrator and the reference buffers.
        input_noise=0.15,
        # Per-decision comparator noise (0.3-1 mV, a fraction of an LSB) is dominated by
        # the input noise above; 0 keeps the batch path free of per-step draws.
        comparator_noise=0.0,
        # Reference charge from a trimmed source (bandgap-referenced charge pump): 0.1 %
        # RMS, well below the 0.4 % of one LSB at the reference level, so that it does not
        # limit the gain calibration (a design assumption of this project).
        ref_error=0.001,
    ),
)

_PCM_DEVICE = dict(
    # PCM statistics of IBM aihwkit's PCMLikeNoiseModel (src/aihwkit/inference/noise/pcm.py,
    # fit by Nandakumar et al., ICECS 2019, to the devices of Joshi et al., Nat. Commun.
    # 2020). g_max and g_min = 0 from its SinglePairConductanceConverter.
    g_max=25.0,
    prog_c0=0.26348, prog_c1=1.9650, prog_c2=-1.1731,  # prog_coeff, uS
    read_q=0.0088, read_q_exp=0.65, read_q_max=0.2,   # Q_s = min(0.0088/g^0.65, 0.2)
    read_t=250e-9,                                    # t_read
    drift_t0=20.0,                                    # t_0
    nu_mean_a=-0.0155, nu_mean_b=0.0244, nu_mean_lo=0.049, nu_mean_hi=0.1,  # mu_drift
    nu_std_a=-0.0125, nu_std_b=-0.0059, nu_std_lo=0.008, nu_std_hi=0.045,   # sig_drift
    # Temperature: aihwkit has none; PCM conductance rises strongly with temperature
    # (Giannopoulos et al., AICAS 2020). 0.2 eV is the low end of the activation energy
    # of amorphous GST conduction (a stated assumption, not a fit).
    temp_activation=0.2,
)

_RRAM_DEVICE = dict(
    # HfOx RRAM of the NeuRRAM chip (Wan et al., Nature 608, 2022) as fitted in aihwkit's
    # ReRamWan2022NoiseModel (src/aihwkit/inference/noise/reram.py), 1-second data:
    # programming noise a 4th-order polynomial in G/g_max, g_max 40 uS; no drift exponent.
    g_max=40.0,
    prog_c0=0.348, prog_c1=16.030, prog_c2=-43.853, prog_c3=45.393, prog_c4=-16.815,
    # Short-term read noise of about 1 % (the same model's suggested w_noise = 0.01),
    # here as 1/f noise: Q = 0.0025 gives 0.9 % at one second with a 1 us read.
    read_q=0.0025, read_q_exp=0.0, read_q_max=0.0025, read_t=1e-6, drift_t0=1.0,
    # Oxide RRAM in its low-resistance states is near metallic: temperature left out.
)

_PCM_PULSE = dict(
    # Cycle-to-cycle and device-to-device spread of the SET increment, and the soft-bound
    # ceiling, of IBM aihwkit's PCMPresetDevice (src/aihwkit/simulator/presets/devices.py,
    # after Nandakumar et al., Front. Neurosci. 2020): dw_min_std 0.6, dw_min_dtod 0.2,
    # w_max 2.0 against a weight range of 1, i.e. a ceiling of twice g_max.
    set_cv=0.6, set_dtod=0.2, set_ceiling=2.0,
    # A design assumption: a partial-SET pulse of full amplitude moves 20 % of g_max.
    # aihwkit's training-size increment (dw_min, 0.5 % of its range) is the small-amplitude
    # end of the same pulse.
    set_step=5.0,
    # A full-amplitude RESET re-amorphises the cell back to g_min; the 30 % spread of the
    # fraction it removes is an assumption.
    reset_frac=1.0, reset_cv=0.3,
)

_RRAM_PULSE = dict(
    # Assumptions, in the absence of a pulse-level fit of the NeuRRAM devices: 20 % of the
    # 40 uS g_max per full-amplitude SET pulse (as for pcm), 30 % cycle-to-cycle spread of
    # SET and RESET, 20 % device-to-device spread of the SET step.
    set_step=8.0, set_cv=0.3, set_dtod=0.2, reset_cv=0.3,
)

# Training presets: IBM aihwkit's pulsed device presets (src/aihwkit/simulator/presets/
# devices.py) as the [update] section, on the realistic converters. Their device section is
# DeviceConfig's: g_max 25 uS (as pcm), g_min 0, and no programming noise, drift, read noise
# or stuck devices, so that what a training run shows is the pulsed update alone. Each span
# (a design choice) covers the larger mean bound plus three of its device-to-device standard
# deviations, so that at most 0.14 % (P(z > 3)) of either bound are clamped by the window.
_TRAINING_DEVICE = dict(g_max=25.0)

# GokmenVlasovPresetDevice (ConstantStepDevice), after Gokmen & Vlasov, Front. Neurosci.
# 2016, scaled to weights -1..1: dw_min 0.0016 keeps about 1,200 states (2 / 0.0016).
_GOKMEN_VLASOV = dict(
    kind="constant_step", dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3,
    up_down=0.0, up_down_dtod=0.01, w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3,
    span=1.9,  # 1.0 (1 + 3 x 0.3)
)

# ReRamSBPresetDevice (SoftBoundsDevice, additive noise), a loose fit to the HfOx ReRAM of
# Gong et al., Nat. Commun. 2018. aihwkit assumes the devices calibrated to their symmetry
# point by a reference device: reference = "symmetry" here. Its write noise (write_noise_std
# 56) acts on a hidden persistent weight that this model does not have: left out.
_RERAM_SB = dict(
    kind="soft_bounds", dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75,
    mult_noise=False, dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3 / 1.25,
    w_min_dtod=0.3 / 0.75, dw_min_std=3.75,
    span=2.15,  # 1.25 (1 + 3 x 0.24)
)

# EcRamPresetDevice (LinearStepDevice), a fit to the Li-based ECRAM of Tang et al., IEDM
# 2018, shifted so that its symmetry point is near 0.
_ECRAM = dict(
    kind="linear_step", dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276,
    mult_noise=True, gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01,
    w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
    dw_min_std=0.3, mean_bound_reference=True,
    span=1.35,  # 1.1724 (1 + 3 x 0.05), rounded up
)

PRESETS: dict[str, ModelConfig] = {
    "ideal": _IDEAL,
    "adc-only": _IDEAL.replace(name="adc-only", **_REAL_CONVERTERS),
    "pcm": _IDEAL.replace(name="pcm", device=_PCM_DEVICE, pulse=_PCM_PULSE,
                          **_REAL_CONVERTERS),
    "rram": _IDEAL.replace(name="rram", device=_RRAM_DEVICE, pulse=_RRAM_PULSE,
                           **_REAL_CONVERTERS),
    **{name: _IDEAL.replace(name=name, device=_TRAINING_DEVICE, update=update,
                            **_REAL_CONVERTERS)
       for name, update in (("gokmen-vlasov", _GOKMEN_VLASOV), ("reram-sb", _RERAM_SB),
                            ("ecram", _ECRAM))},
}


def preset(name: str) -> ModelConfig:
    """The named preset.

    Raises
    ------
    ValueError
        No preset has that name.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"model preset must be one of {', '.join(PRESETS)}, not {name!r}") \
            from None


# -- files --------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)


def dumps_toml(config: ModelConfig) -> str:
    """The configuration as TOML, every field written out with its meaning as a comment
    (the text ``aimc model show`` prints beside it)."""
    data = config.to_dict()
    lines = [f"# Analogue model {config.name!r}: every field, with its meaning. Pass this file "
             f"where a preset name goes",
             "# (--model FILE); a file may also name `preset = \"pcm\"` and change only some "
             "fields.",
             f"name = {_toml_value(data.pop('name'))}"]
    for key in data:
        lines += ["", f"[{key}]"]
        for f in dataclasses.fields(getattr(config, key)):
            value = getattr(getattr(config, key), f.name)
            # TOML has no None: an unset optional field is written commented out.
            line = (f"# {f.name} = None" if value is None else
                    f"{f.name} = {_toml_value(value)}")
            doc = f.metadata.get("doc", "")
            lines.append(f"{line:34} # {doc}" if doc else line)
    return "\n".join(lines) + "\n"


def save(config: ModelConfig, path) -> Path:
    """Write ``config`` to ``path`` as TOML or JSON, chosen by the suffix."""
    path = Path(path)
    if path.suffix == ".toml":
        path.write_text(dumps_toml(config))
    elif path.suffix == ".json":
        path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    else:
        raise ValueError(f"model configuration file must end in .toml or .json, not {path.name!r}")
    return path


def load(path) -> ModelConfig:
    """Read a configuration from a TOML or JSON file (see the module docstring).

    Raises
    ------
    ValueError
        Unknown suffix, section, field or preset, or a value out of range.
    """
    path = Path(path)
    if path.suffix == ".toml":
        data = tomllib.loads(path.read_text())
    elif path.suffix == ".json":
        data = json.loads(path.read_text())
    else:
        raise ValueError(f"model configuration file must end in .toml or .json, not {path.name!r}")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a model configuration must be a table, "
                         f"not {type(data).__name__}")
    return ModelConfig.from_dict(data)
