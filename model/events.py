"""The chip's noise events: which stream, event number and context each random draw uses.

:class:`NoiseEvents`, bound to one chip's seed and tile, is the only caller of
:func:`~.rng.normals` and :func:`~.rng.uniforms` in the model: it has one method per kind of
draw, so the keys of every random number the chip uses are laid out here.

* Static mismatch (:attr:`~.rng.Stream.STATIC`): event 0, one context per kind
  (:class:`~.rng.Static`), drawn once per chip.
* Programming (:attr:`~.rng.Stream.PROGRAM`): event 0 in context ``2 p`` for the programming
  noise of the ``p``-th programming, ``2 p + 1`` for its drift exponents; one per device.
* 1/f read noise (:attr:`~.rng.Stream.FLICKER`): the read time in microseconds is the
  event, the programming number the context; one per device.
* Pulse response (:attr:`~.rng.Stream.PULSE`): the pulse step is the event; one per column.
* Conversions: integration ``i`` (context 0 for MVM integrations, :data:`READ_CONTEXT` for
  device reads, numbered apart) is event ``i`` of the column noise
  (:attr:`~.rng.Stream.READ`, one per column), and its conversion with ``adc_sel = s`` is
  event ``i * cols_per_adc + s`` of the comparator noise (:attr:`~.rng.Stream.COMPARATOR`,
  one per ADC and SAR step). Backward integrations are numbered apart too, in
  :data:`BACKWARD_CONTEXT`, with one draw per row and per row ADC.
* Update pulses (:attr:`~.rng.Stream.UPDATE`): slot ``t`` of update ``u`` is event
  ``u * 256 + t``; one draw per device (its cycle-to-cycle noise, if it fires).
"""

from __future__ import annotations

import numpy as np

from ..config import TileConfig
from .rng import Static, Stream, check_seed, normals, raw_words, to_normals, uniforms

__all__ = ["BACKWARD_CONTEXT", "READ_CONTEXT", "SLOT_EVENTS", "NoiseEvents"]

READ_CONTEXT = 1      #: noise context of device reads (MVM integrations: 0)
SLOT_EVENTS = 256     #: update noise events per update (one per slot; BL is at most 255)
BACKWARD_CONTEXT = 2  #: noise context of backward integrations (numbered apart)
_PROGRAM_NOISE, _PROGRAM_NU = 0, 1


class NoiseEvents:
    """The random draws of one chip, by kind of draw; every result is a pure function of the
    seed and the arguments.

    Parameters
    ----------
    tile : TileConfig
        The tile: it gives the sizes of the draws.
    seed : int
        Chip seed, ``0 <= seed < 2**64``.

    Raises
    ------
    ValueError
        The seed is out of range.
    """

    def __init__(self, tile: TileConfig, seed: int):
        self.tile, self.seed = tile, check_seed(seed)
        self._devices = (tile.rows, tile.cols, 2)

    def static(self, kind: Static, shape) -> np.ndarray:
        """Standard normal deviates of static mismatch ``kind``, of shape ``shape``."""
        size = int(np.prod(shape))
        return normals(self.seed, Stream.STATIC, 0, 1, size, context=int(kind))[0].reshape(shape)

    def static_uniform(self, kind: Static, shape) -> np.ndarray:
        """Uniform deviates in (0, 1) of static mismatch ``kind``, of shape ``shape``."""
        size = int(np.prod(shape))
        return uniforms(self.seed, Stream.STATIC, 0, 1, size, context=int(kind))[0].reshape(shape)

    def programming(self, programs: int) -> np.ndarray:
        """Programming noise of programming number ``programs``, one standard normal deviate
        per device, ``(rows, cols, 2)``."""
        return self._per_device(Stream.PROGRAM, 0, programs * 2 + _PROGRAM_NOISE)

    def drift(self, programs: int) -> np.ndarray:
        """Deviates of the drift exponents of programming number ``programs``, one per device,
        ``(rows, cols, 2)``."""
        return self._per_device(Stream.PROGRAM, 0, programs * 2 + _PROGRAM_NU)

    def flicker(self, time: float, programs: int) -> np.ndarray:
        """1/f read noise at ``time`` seconds after the reference read of programming number
        ``programs``, one per device, ``(rows, cols, 2)``."""
        return self._per_device(Stream.FLICKER, _time_event(time), programs)

    def pulse(self, step: int) -> np.ndarray:
        """Cycle-to-cycle noise of pulse step ``step``, one per column, ``(cols,)``."""
        return normals(self.seed, Stream.PULSE, step, 1, self.tile.cols)[0]

    def conversion(self, first: int, count: int, context: int = 0) -> np.ndarray:
        """Column noise of integrations ``first .. first+count-1`` of ``context``, one
        standard normal deviate per column (per row in :data:`BACKWARD_CONTEXT`),
        ``(count, lines)``."""
        lines = self.tile.rows if context == BACKWARD_CONTEXT else self.tile.cols
        return normals(self.seed, Stream.READ, first, count, lines, context=context)

    def conversion_words(self, first: int, count: int, context: int = 0) -> np.ndarray:
        """The raw words of :meth:`conversion`, ``(count, lines)`` uint32:
        :func:`~.rng.to_normals` of them gives its deviates (the compiled batch path
        transforms them as it converts)."""
        lines = self.tile.rows if context == BACKWARD_CONTEXT else self.tile.cols
        return raw_words(self.seed, Stream.READ, first, count, lines, context=context)

    def comparator(self, first: int, count: int, context: int = 0) -> np.ndarray:
        """Comparator noise of the conversions of integrations ``first .. first+count-1`` of
        ``context``: ``(count, per_adc, n_adc, adc_bits)``, element ``[i, s, a, k]`` for
        the decision of bit ``k`` by ADC ``a`` with the select at ``s`` after integration
        ``first + i`` (the row ADCs in :data:`BACKWARD_CONTEXT`)."""
        tile = self.tile
        if context == BACKWARD_CONTEXT:
            cpa, n_adc = tile.rows_per_adc, tile.n_row_adc
        else:
            cpa, n_adc = tile.cols_per_adc, tile.n_adc
        bits = tile.adc_bits
        z = normals(self.seed, Stream.COMPARATOR, first * cpa, count * cpa, n_adc * bits,
                    context=context)
        return z.reshape(count, cpa, n_adc, bits)

    def update(self, update: int, slot: int) -> np.ndarray:
        """Cycle-to-cycle noise of slot ``slot`` of update number ``update``, one standard
        normal deviate per device of the pulsed array, ``(rows, cols)``."""
        return self.update_slots(update, slot, 1)[0]

    def update_slots(self, update: int, first_slot: int, count: int) -> np.ndarray:
        """The noise of ``count`` consecutive slots from ``first_slot`` of update number
        ``update``, ``(count, rows, cols)``: slot by slot what :meth:`update` gives."""
        tile = self.tile
        return to_normals(self.update_words(update, first_slot, count)).reshape(
            count, tile.rows, tile.cols)

    def update_words(self, update: int, first_slot: int, count: int) -> np.ndarray:
        """The raw words of :meth:`update_slots`, ``(count, rows * cols)`` uint32 (device
        ``(r, c)`` at ``r * cols + c``): :func:`~.rng.to_normals` of any of them gives
        those deviates, so that a slot converts only the devices it pulses."""
        tile = self.tile
        if first_slot < 0 or count < 0 or first_slot + count > SLOT_EVENTS:
            raise ValueError(f"update slots {first_slot}..{first_slot + count - 1} outside "
                             f"0..{SLOT_EVENTS - 1}")
        return raw_words(self.seed, Stream.UPDATE, update * SLOT_EVENTS + first_slot, count,
                         tile.rows * tile.cols)

    def _per_device(self, stream: Stream, event: int, context: int) -> np.ndarray:
        size = int(np.prod(self._devices))
        return normals(self.seed, stream, event, 1, size, context=context)[0].reshape(
            self._devices)


def _time_event(time: float) -> int:
    """Event number of a read time: microseconds since programming."""
    return int(round(time * 1e6)) % 2**62
