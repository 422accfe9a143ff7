"""The training face of a :class:`~.chip.Chip` (:class:`TrainingMixin`): its pulsed update
devices against reference devices at their symmetry point, and the pulse slots of an
update applied to them (the step the golden update engine and the per-cycle path share).
A chip without a pulsed device model refuses these methods with a message saying so."""

from __future__ import annotations

import numpy as np

from .pulsed import PulsedArray, training_scale
from .rng import to_normals

__all__ = ["TrainingMixin"]


class TrainingMixin:
    """Methods of :class:`~.chip.Chip` for chips with a pulsed device model (``training``)."""

    def _sync_training(self) -> None:
        """The conductances of the pulsed pairs: G+ from the update devices, G- the
        references (stuck devices at their rails)."""
        t = self.training
        self.g_prog = self._at_rails(np.stack([t.g_plus(), t.g_minus()], axis=-1))
        self._changed()

    @property
    def training_scale(self) -> float:
        """Integer weight units per weight unit of the pulsed devices:
        ``w_max / (2 span)``."""
        self._require_training()
        return training_scale(self.config)

    def set_training_weights(self, weights) -> None:
        """Set the pulsed devices' weights ``w - w_ref`` (device units, ``(rows, cols)``;
        clipped into each device's bounds), as initial weights of a training run."""
        self._require_training().set_weights(weights)
        self._sync_training()

    def set_training_state(self, w) -> None:
        """Set the pulsed devices' states ``w`` themselves (as :attr:`PulsedArray.w`, for
        example one recorded from another chip of the same seed)."""
        self._require_training().set_state(w)
        self._sync_training()

    def update_slot(self, update: int, slot: int, fire_rows, neg_rows, fire_cols,
                    neg_cols) -> tuple[int, int]:
        """One pulse slot of update number ``update``: the devices whose row and column fire
        take one pulse each (:meth:`PulsedArray.apply`), with the slot's cycle-to-cycle noise
        (:meth:`~.events.NoiseEvents.update`, drawn when a device coincides). Returns the
        pulses up and down.

        Raises
        ------
        ValueError
            The chip has no pulsed devices, or a mask has the wrong shape.
        """
        fr, fc = np.asarray(fire_rows, bool), np.asarray(fire_cols, bool)
        return self.apply_slots(update, slot, fr[None], neg_rows, fc[None], neg_cols)

    def apply_slots(self, update: int, first_slot: int, fire_rows, neg_rows, fire_cols,
                    neg_cols) -> tuple[int, int]:
        """Slots ``first_slot, first_slot + 1, ...`` of update number ``update`` at once:
        ``fire_rows (slots, rows)`` and ``fire_cols (slots, cols)`` say which lines fire in
        each, ``neg_rows (rows,)`` and ``neg_cols (cols,)`` their polarities. The same steps
        as :meth:`update_slot` slot by slot, with the noise of all slots drawn in one go and
        the conductances brought up to date once. Returns the pulses up and down.

        Raises
        ------
        ValueError
            The chip has no pulsed devices, or a mask has the wrong shape.
        """
        t = self._require_training()
        rows, cols = self.tile.rows, self.tile.cols
        fr, fc = np.asarray(fire_rows), np.asarray(fire_cols)
        if fr.dtype != bool or fc.dtype != bool or fr.ndim != 2 or fr.shape[1:] != (rows,) \
                or fc.shape != (len(fr), cols):
            raise ValueError(f"fire_rows and fire_cols must be bool masks (slots, {rows}) and "
                             f"(slots, {cols}) of as many slots, not arrays of shapes "
                             f"{fr.shape} and {fc.shape}")
        nr, nc = t.check_polarities(neg_rows, neg_cols)
        hits = fr.any(axis=1) & fc.any(axis=1)  # slots where some device coincides
        words = None
        if t.noisy and hits.any():
            words = self.noise.update_words(update, first_slot, len(fr))
        up = down = 0
        for k in np.flatnonzero(hits):
            deviates = None
            if words is not None:
                # Only the pulsed devices' deviates matter: convert those alone.
                row = words[k]
                deviates = lambda index, row=row: to_normals(  # noqa: E731
                    row if index is None else row.take(index))
            u, d = t.pulse(np.flatnonzero(fr[k]), np.flatnonzero(fc[k]), nr, nc, deviates)
            up, down = up + u, down + d
        self.update_slots += len(fr)
        self.update_up += up
        self.update_down += down
        if up or down:
            self._sync_training()
        return up, down

    def _require_training(self) -> PulsedArray:
        if self.training is None:
            raise ValueError(f"the chip's model {self.config.name!r} has no pulsed devices "
                             f"(update.kind 'none'): use a training preset such as "
                             f"gokmen-vlasov, reram-sb or ecram")
        return self.training
