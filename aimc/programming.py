"""Program-and-verify: the constants and the integer rules shared by the RTL engine
(:mod:`aimc.rtl.program`), the golden algorithm (:mod:`aimc.model.program`) and the docs.

A device read integrates one row, driven positively for :data:`READ_CYCLES` cycles, with
the integrators switched to single-device reads (each column sees the one device of the
selected side of the pair). The read result is in ADC counts (with the tile's
``result_frac`` fractional bits on the result stream); a device at ``g_max`` reads
:func:`read_full_scale` counts.

The engine compares each read with the device's target ``t`` (counts) and, when the error
``e = read - t`` exceeds the tolerance, pulses the device: SET when ``e < 0``, RESET when
``e > 0``, with amplitude :func:`amplitude`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AMP_BITS", "AMP_MAX", "PROG_RESET_GAIN", "PROG_SET_GAIN", "PULSE_GAIN_FRAC",
           "READ_CYCLES", "WIDTH_REF", "amplitude", "read_full_scale", "side_targets"]

#: Cycles a row is driven during a single-device read.
READ_CYCLES = 8
#: Width of a pulse amplitude code; the model's pulse strength is ``amp / AMP_MAX``.
AMP_BITS = 8
AMP_MAX = (1 << AMP_BITS) - 1
#: Pulse width (cycles) at which the model's pulse strength is ``amp / AMP_MAX``.
WIDTH_REF = 8
#: Fractional bits of the amplitude gains (amplitude codes per count of error).
PULSE_GAIN_FRAC = 4
#: Reset values of PROG_GAIN: 8.0 amplitude codes per count for SET, 2.0 for RESET. With
#: the ``pcm`` preset a full-amplitude SET moves about 25 counts from g_min (10 codes per
#: count); 8.0 aims at 80 % of the error so that the 60 % cycle-to-cycle spread rarely
#: overshoots. A full RESET removes all of G - g_min, so a RESET's effect grows with G;
#: 2.0 removes about the error at full scale and less below it.
PROG_SET_GAIN = 8 << PULSE_GAIN_FRAC
PROG_RESET_GAIN = 2 << PULSE_GAIN_FRAC


def read_full_scale(adc_bits: int) -> int:
    """Read counts of a device at ``g_max``: 3/4 of the converter's positive range (96 at
    8 bits), leaving a quarter for column gain errors (the integrator gain spread of the
    presets, 7 % RMS, reaches +21 % at three sigma) before a read saturates the converter.
    Read targets lie in ``-read_full_scale .. read_full_scale``."""
    return (3 * 2 ** (adc_bits - 1)) // 4


def amplitude(err_q, gain: int, frac: int):
    """Pulse amplitude for read errors ``err_q`` (counts with ``frac`` fractional bits) and
    a gain in amplitude codes per count (unsigned, :data:`PULSE_GAIN_FRAC` fractional bits):
    ``clamp((|err_q| * gain) >> (PULSE_GAIN_FRAC + frac), 1, AMP_MAX)``."""
    a = (np.abs(np.asarray(err_q, dtype=np.int64)) * int(gain)) >> (PULSE_GAIN_FRAC + frac)
    return np.clip(a, 1, AMP_MAX)


def side_targets(targets, side: int):
    """Target counts of the devices of one side of the pairs: ``max(t, 0)`` for G+ (side 0),
    ``max(-t, 0)`` for G- (side 1), from signed weight targets ``t``."""
    t = np.asarray(targets, dtype=np.int64)
    return np.maximum(t, 0) if side == 0 else np.maximum(-t, 0)
