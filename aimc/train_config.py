"""The options of ``aimc train`` (:class:`TrainConfig`): network, tile, device, algorithm
and its parameters, each checked with a message naming the option, the value and what is
allowed, before any work starts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .config import TileConfig
from .evaluate import DATASETS
from .training import BL_MAX

__all__ = ["ALGORITHMS", "OUT_BOUND", "TrainConfig"]

ALGORITHMS = ("sgd", "ttv2")

#: The converters' range, in units of a full-scale input times a unit weight: aihwkit's
#: default output step at the tile's 8-bit converters (IOParameters out_bound 12 at out_res
#: 1/510 is 0.047 per step; +-6 over 256 codes is the same step). Measured on digits
#: (gokmen-vlasov, plain SGD, seeds 1 and 2): a gap to float SGD of 1.2 pp at +-12, 0.5 pp
#: at +-6.
OUT_BOUND = 6.0
_WORD = (1 << 32) - 1


# -- configuration --------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """What ``aimc train`` runs.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer widths (the input and output widths come from the data set).
    tile : TileConfig
        The tiles (``training=True``); layers are split into blocks of its size.
    device : str or ModelConfig
        Model preset with pulsed devices (``gokmen-vlasov``, ``reram-sb``, ``ecram``), or
        a model configuration with them.
    algorithm : str
        ``sgd`` or ``ttv2``.
    epochs, lr, bl, seed
        Passes over the training set; learning rate (per example); most pulse slots of a
        gradient update (UPD_BL, 1..255); seed of the chips, the initial weights and the
        example order.
    dataset : str
        One of :data:`DATASETS`, or a ``.npz`` file with ``X`` and ``y``.
    fast_lr, transfer_every, transfer_lr, thres_scale, momentum, transfer_bl
        Tiki-Taka v2: learning rate of A; examples between transfers; scale of A's reads
        into H; transfer threshold in C's steps; share of H kept after a transfer;
        most pulses per device and transfer. Defaults: aihwkit's BufferedTransferCompound
        (thres_scale 1, momentum 0.1), transfer every example, but up to 8 pulses per
        transfer instead of aihwkit's one (``desired_bl=1``): with one row of 64 read per
        example, one pulse per transfer let C move too slowly (reram-sb, 10 epochs of
        digits: 87.8 % against 95.4 % with 8, float SGD 96.9 %).
    out_bound : float
        Converter range in units of a full-scale input times a unit weight (sets each
        layer's ADC step).
    """

    hidden: tuple[int, ...] = (32,)
    tile: TileConfig = TileConfig(rows=64, cols=64, training=True)
    device: object = "gokmen-vlasov"
    algorithm: str = "sgd"
    epochs: int = 10
    lr: float = 0.05
    bl: int = 31
    seed: int = 1
    dataset: str = "digits"
    fast_lr: float = 0.1
    transfer_every: int = 1
    transfer_lr: float = 1.0
    thres_scale: float = 1.0
    momentum: float = 0.1
    transfer_bl: int = 8
    out_bound: float = OUT_BOUND

    def __post_init__(self):
        from .model.config import PRESETS

        def bad(option, value, allowed):
            raise ValueError(f"--{option} must be {allowed}, not {value!r}")

        from .numeric import as_int, as_real, is_integer

        # The API's rule for numbers (aimc.numeric): numpy scalars and whole-number floats
        # are integers where one is asked, numpy floats real numbers; stored as int, float.
        hidden = tuple(self.hidden) if isinstance(self.hidden, (list, tuple)) else self.hidden
        if not isinstance(hidden, tuple) or not all(
                is_integer(h) and 1 <= h <= 4096 for h in hidden):
            bad("hidden", self.hidden, "layer widths in 1..4096 (for example 32 or 64,32)")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if not isinstance(self.tile, TileConfig):
            raise TypeError(f"TrainConfig.tile must be a TileConfig, not {self.tile!r}")
        if not self.tile.training:
            bad("training", False, "on: aimc train needs tiles with the training hardware")
        from .model.config import ModelConfig

        trainable = [n for n, m in PRESETS.items() if m.update.kind != "none"]
        if isinstance(self.device, ModelConfig):
            if self.device.update.kind == "none":
                bad("device", self.device.name, "a model with pulsed devices (update.kind "
                    "other than 'none')")
        elif self.device not in trainable:
            bad("device", self.device, f"a preset with pulsed devices: {', '.join(trainable)}")
        if self.algorithm not in ALGORITHMS:
            bad("algorithm", self.algorithm, f"one of {', '.join(ALGORITHMS)}")
        for option, lo, hi in (("epochs", 1, 10_000), ("bl", 1, BL_MAX),
                               ("seed", 0, 2**32 - 1), ("transfer-every", 1, 10**6),
                               ("transfer-bl", 1, BL_MAX)):
            name = option.replace("-", "_")
            object.__setattr__(self, name, as_int(getattr(self, name), f"--{option}", lo, hi,
                                                  allowed=f"an integer in {lo}..{hi}"))
        for option in ("lr", "fast-lr", "transfer-lr", "thres-scale", "out-bound"):
            name = option.replace("-", "_")
            object.__setattr__(self, name, as_real(getattr(self, name), f"--{option}", 0.0,
                                                   lo_open=True,
                                                   allowed="a positive finite number"))
        object.__setattr__(self, "momentum", as_real(self.momentum, "--momentum", 0.0, 1.0,
                                                     allowed="a number in 0..1"))
        # A unit product (full-scale input and error) must fit the update's slots: more
        # pulses than UPD_BL can hold would be clipped by the register, not learnt.
        dw_min = self.model.update.dw_min
        for option, lr in (("lr", self.lr),) + ((("fast-lr", self.fast_lr),)
                                                if self.algorithm == "ttv2" else ()):
            pulses = lr / dw_min
            if pulses > BL_MAX:
                bad(option, lr, f"at most {BL_MAX * dw_min:g} on {self.model.name} (dw_min "
                    f"{dw_min:g}): {lr:g} asks for {pulses:.0f} pulses per unit product, more "
                    f"than the {BL_MAX} slots of UPD_BL")
        if isinstance(self.dataset, (str, Path)):
            name = str(self.dataset)
            if name not in DATASETS and not name.endswith(".npz"):
                bad("dataset", name, f"one of {', '.join(DATASETS)} or a .npz file")
            if name.endswith(".npz") and not Path(name).exists():
                bad("dataset", name, "an existing .npz file")

    @property
    def model(self):
        """The device model: the preset :attr:`device` names, or the ModelConfig given."""
        from .model.config import preset

        return self.device if not isinstance(self.device, str) else preset(self.device)

    @property
    def device_name(self) -> str:
        return self.device if isinstance(self.device, str) else self.device.name

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["device"] = self.device_name
        d["tile"] = self.tile.to_dict()
        d["hidden"] = list(self.hidden)
        d["dataset"] = str(self.dataset)
        return d
