"""A dense network on tiles: the public Python API for running any network through the tile.

:func:`map_network` takes a list of ``(weights, bias)`` float arrays (``weights`` of shape
``(inputs, outputs)``, ``y = x W + b``) or a fitted scikit-learn ``MLPClassifier`` /
``MLPRegressor`` and maps every layer onto tiles as the demo does (:func:`aimc.nn.map_layer`:
weights to read-count targets, inputs to signed integers, each layer's ADC step from its
training activations, layers split into tile-sized blocks, biases and activations on the
host). It returns a :class:`TiledNetwork`: one :class:`~aimc.model.Chip` per block, each with
its own seed, and methods that run the tile's engines on them with the golden algorithms of
:mod:`aimc.model` (which the cosimulation tests prove equal to the RTL):

* :meth:`~TiledNetwork.program` writes the weights (program-and-verify with corrected reads,
  as the demo, or a direct programming event);
* :meth:`~TiledNetwork.calibrate` measures offsets and gains and captures each block's drift
  reference (a :class:`~aimc.model.DriftReference` representative of the block);
* :meth:`~TiledNetwork.fit_affine` loads the host's per-column affine correction;
* :meth:`~TiledNetwork.compensate_drift` runs the drift phase at any later moment;
* :meth:`~TiledNetwork.forward`, :meth:`~TiledNetwork.predict` and
  :meth:`~TiledNetwork.score` run inputs through the chips: by default on the batch path
  (the model's golden prediction), with ``backend="cosim"`` through cosimulation of the
  generated Verilog, bit for bit the same (each block's history of engine runs is replayed
  on the RTL, see :mod:`aimc.cosim.test_api`).

Reads are numbered. Every MVM of a block's chip is an event whose number keys its noise
(:meth:`aimc.model.Chip.mvm`); the network keeps each chip's read counter
(``Chip.next_vector``) going across calls, so that two calls on the same inputs draw
independent noise, as two reads of a real chip do, and the engines' MVMs take their numbers
in the same sequence, as on the RTL. ``forward(x, read=n)`` numbers the batch from ``n``
explicitly instead (a read repeated with the same number repeats its result bit for bit).

Example::

    from sklearn.neural_network import MLPClassifier
    from aimc import TileConfig
    from aimc.network import map_network

    clf = MLPClassifier((16,), max_iter=800, random_state=0).fit(x_train, y_train)
    net = map_network(clf, x_train, tile=TileConfig(rows=32, cols=32), model="pcm", seed=7)
    net.program()                  # program-and-verify, converters calibrated first
    net.calibrate()                # offsets, gains, drift reference
    net.score(x_test, y_test)      # accuracy on the chips
    net.compensate_drift(time=86400.0)
    net.score(x_test, y_test)      # a day later, drift compensated
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import TileConfig
from .fixedpoint import RESULT_FRAC, CalFormat
from .nn import LayerMap, affine_fit, map_layer

__all__ = ["ACTIVATIONS", "BACKENDS", "TiledNetwork", "derive_seed", "layers_of",
           "map_network"]

#: Hidden-layer activations the host applies (scikit-learn's names).
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
    "tanh": np.tanh,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
}
#: Where :meth:`TiledNetwork.forward` computes the tiles' results.
BACKENDS = ("batch", "cosim")
_PROGRAM_METHODS = ("verify", "direct")


def derive_seed(*parts) -> int:
    """A 64-bit seed that is a pure function of ``parts`` (their ``repr``), for chips and
    stimulus keyed by coordinates (the same on every machine and Python run)."""
    digest = hashlib.sha256(repr(tuple(parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def layers_of(net):
    """``(layers, activation, classes)`` of ``net``: a list or tuple of ``(weights, bias)``
    pairs (activation ``relu``, no classes), or a fitted scikit-learn ``MLPClassifier`` /
    ``MLPRegressor`` (its ``coefs_``, ``intercepts_``, ``activation`` and, for a
    classifier, ``classes_``).

    Raises
    ------
    TypeError
        ``net`` is neither.
    ValueError
        Layers whose shapes do not chain, non-finite values, or an unfitted estimator.
    """
    classes = None
    activation = "relu"
    if hasattr(net, "coefs_") and hasattr(net, "intercepts_"):
        layers = list(zip(net.coefs_, net.intercepts_, strict=True))
        activation = getattr(net, "activation", "relu")
        classes = getattr(net, "classes_", None)
        if classes is not None and getattr(net, "out_activation_", "softmax") not in (
                "softmax", "logistic"):
            raise ValueError(f"a classifier's output activation must be softmax or logistic, "
                             f"not {net.out_activation_!r}")
    elif hasattr(net, "fit") and hasattr(net, "predict"):
        raise ValueError(f"net must be a fitted MLPClassifier or MLPRegressor (call fit "
                         f"first), not an unfitted {type(net).__name__}")
    elif isinstance(net, list | tuple):
        layers = list(net)
    else:
        raise TypeError(f"net must be a list of (weights, bias) arrays or a fitted "
                        f"scikit-learn MLPClassifier/MLPRegressor, not {type(net).__name__}")
    if not layers:
        raise ValueError("net must have at least one layer, not none")
    out = []
    for i, pair in enumerate(layers):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ValueError(f"layer {i} must be a (weights, bias) pair, not {pair!r:.60}")
        w, b = (np.asarray(a, dtype=np.float64) for a in pair)
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise ValueError(f"layer {i}: weights must be (inputs, outputs) and bias "
                             f"(outputs,), not {w.shape} and {b.shape}")
        if out and out[-1][0].shape[1] != w.shape[0]:
            raise ValueError(f"layer {i} takes {w.shape[0]} inputs but layer {i - 1} gives "
                             f"{out[-1][0].shape[1]}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"layer {i} holds values that are not finite")
        if not np.abs(w).max(initial=0.0) > 0:
            raise ValueError(f"layer {i} has only zero weights: nothing to map")
        out.append((w, b))
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"not {activation!r}")
    return out, activation, classes


@dataclass
class _Block:
    """One tile-sized block of a layer, on its own chip, with what the RTL would hold."""

    layer: int
    row0: int
    col0: int
    chip: object                 # aimc.model.Chip
    targets: np.ndarray          # signed read counts, (rows, cols)
    cal: object                  # aimc.model.Calibration: coefficients and registers
    reference: object            # aimc.model.DriftReference
    correct: bool = False        # CTRL.correct
    reads: int = 0               # device reads so far (key the program-and-verify noise)
    weak: bool = False           # the last capture or drift phase was refused
    history: list = field(default_factory=list)  # engine runs and host writes, for replay

    @property
    def used(self) -> np.ndarray:
        """Columns with a programmed weight."""
        return (self.targets != 0).any(axis=0)


class TiledNetwork:
    """A dense network mapped onto tiles, one chip per tile-sized block (see the module
    docstring; build it with :func:`map_network`).

    Attributes
    ----------
    tile : TileConfig
        The tile every block uses.
    model : ModelConfig
        The analogue model of the chips (each layer's ADC step set as the mapping chose).
    maps : list of LayerMap
        Each layer's mapping (scales, targets, blocks).
    blocks : list of list of _Block
        Each layer's blocks, with their chips.
    time : float
        The moment the network is at: seconds after the reference read (``drift_t0``
        after programming), as :meth:`aimc.model.Chip.state` takes it.
    programmed : bool
        Whether :meth:`program` ran.
    classes : array or None
        Class labels (a classifier: :meth:`predict` returns them); None for a regressor.
    """

    def __init__(self, layers, x_train, *, tile: TileConfig | None = None, model="pcm",
                 seed: int = 0, activation: str = "relu", classes=None):
        from .model import Calibration, Chip, DriftReference
        from .model import config as mc

        layers, _, _ = layers_of(list(layers))
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"not {activation!r}")
        tile = TileConfig(rows=64, cols=64) if tile is None else tile
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        if isinstance(model, str):
            model = mc.preset(model)
        if not isinstance(model, mc.ModelConfig):
            raise TypeError(f"model must be a preset name or a ModelConfig, not {model!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or \
                not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in 0..2**64-1, not {seed!r}")
        x_train = self._check_x(x_train, layers[0][0].shape[0], "x_train")
        if len(x_train) == 0:
            raise ValueError("x_train must hold at least one example, not none")
        self.tile, self.model, self.seed = tile, model, int(seed)
        self.layers, self.activation = layers, activation
        self.classes = None if classes is None else np.asarray(classes)
        self.fmt = CalFormat(tile)
        self.time = 0.0
        self.programmed = False
        chip0 = Chip(tile, model)
        self.maps: list[LayerMap] = []
        self.blocks: list[list[_Block]] = []
        h = x_train
        for li, (w, b) in enumerate(layers):
            m = map_layer(w, h, tile, chip0.lsb, chip0.w_max)
            layer_model = model.replace(name=f"{model.name}-lsb{m.lsb:g}",
                                        adc={"lsb": float(m.lsb)})
            row = []
            for bi, (r0, c0) in enumerate(m.blocks):
                chip = Chip(tile, layer_model, seed=derive_seed(self.seed, "block", li, bi))
                targets = m.block_targets(r0, c0)
                ref = DriftReference.for_weights(targets / chip.read_counts_per_lsb, chip)
                row.append(_Block(li, r0, c0, chip, targets, Calibration.reset(tile.cols),
                                  ref))
            self.maps.append(m)
            self.blocks.append(row)
            z = h @ w + b
            h = ACTIVATIONS[activation](z) if li < len(layers) - 1 else z

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _check_x(x, inputs: int, what: str = "x") -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != inputs:
            raise ValueError(f"{what} must have shape (examples, {inputs}), not {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{what} holds values that are not finite")
        return x

    def _moment(self, time) -> float:
        if time is None:
            return self.time
        if isinstance(time, bool) or not isinstance(time, int | float) or \
                not math.isfinite(time) or time < 0:
            raise ValueError(f"time must be a number of seconds >= 0 after the reference "
                             f"read, not {time!r}")
        self.time = float(time)
        return self.time

    @staticmethod
    def _check_k(k) -> int:
        from .fixedpoint import MAX_AVG_LOG2

        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_AVG_LOG2:
            raise ValueError(f"k must be an integer in 0..{MAX_AVG_LOG2} (2**k MVMs per "
                             f"measurement), not {k!r}")
        return k

    def _need_programmed(self, what: str):
        if not self.programmed:
            raise RuntimeError(f"{what} needs programmed chips: call program() first")

    def all_blocks(self):
        """Every block of every layer, in order."""
        return [b for row in self.blocks for b in row]

    # -- the engines ---------------------------------------------------------------------

    def program(self, method: str = "verify", params=None, k: int = 4) -> dict:
        """Write every block's weights into its chip.

        Parameters
        ----------
        method : str
            ``"verify"``: the program-and-verify engine's golden algorithm, after an offset
            and gain calibration (``2**k`` MVMs each) so that the device reads are corrected
            (the demo's flow); ``"direct"``: one programming event of the model (its
            programming noise, no verify loop; fast, for sweeps).
        params : ProgramParams, optional
            The engine's settings (``"verify"``); default ``ProgramParams(correct=True)``.
        k : int
            Averaging of the calibration before programming, ``2**k`` MVMs.

        Returns
        -------
        dict
            Programming figures summed over the blocks (``"verify"``: the engine's
            counters; ``"direct"``: the devices).

        Raises
        ------
        ValueError
            An unknown method or a bad ``k``.
        """
        from .model import ProgramParams, calibrate, program_and_verify

        if method not in _PROGRAM_METHODS:
            raise ValueError(f"method must be one of {', '.join(_PROGRAM_METHODS)}, "
                             f"not {method!r}")
        k = self._check_k(k)
        params = ProgramParams(correct=True) if params is None else params
        if not isinstance(params, ProgramParams):
            raise TypeError(f"params must be a ProgramParams, not {params!r}")
        t = self._moment(None)
        totals: dict = {}
        for blk in self.all_blocks():
            chip = blk.chip
            if method == "direct":
                w = np.clip(np.round(blk.targets / chip.read_counts_per_lsb), -chip.w_max,
                            chip.w_max).astype(np.int64)
                chip.program(w)
                blk.history.append({"op": "direct", "weights": w})
                totals["devices"] = totals.get("devices", 0) + w.size * 2
                continue
            v = chip.next_vector
            cal = calibrate(chip.state(t), ("offset", "gain"), v, k)
            chip.next_vector = v + cal.mvms
            blk.history.append({"op": "calibrate", "phases": ["offset", "gain"], "k": k,
                                "vector": v, "time": t, "result": _cal_dict(cal)})
            blk.cal = cal
            res = program_and_verify(chip, blk.targets, params, first_read=blk.reads,
                                     calibration=cal if params.correct else None, time=t)
            blk.history.append({"op": "verify", "params": _params_dict(params),
                                "first_read": blk.reads, "time": t,
                                "counters": res.counters()})
            blk.reads += res.reads
            for name, value in res.counters().items():
                totals[name] = totals.get(name, 0) + value
        self.programmed = True
        return totals

    def calibrate(self, k: int = 6, capture: bool = True, time: float | None = None) -> dict:
        """Run the calibration engine's golden algorithm on every block at ``time`` (default:
        the network's moment): offsets and gains from ``2**k`` MVMs each, then, with
        ``capture``, the block's drift reference (its :class:`~aimc.model.DriftReference`);
        results are corrected from then on (``CTRL.correct``).

        Returns
        -------
        dict
            ``bad_columns`` (flagged, among the programmed ones), ``weak`` (blocks whose
            reference was too small to capture) and ``mvms``.
        """
        from .model import calibrate

        self._need_programmed("calibrate()")
        k, t = self._check_k(k), self._moment(time)
        phases = ("offset", "gain", "capture") if capture else ("offset", "gain")
        bad = weak = mvms = 0
        for blk in self.all_blocks():
            v = blk.chip.next_vector
            cal = calibrate(blk.chip.state(t), phases, v, k, reference=blk.reference)
            blk.chip.next_vector = v + cal.mvms
            blk.history.append({"op": "calibrate", "phases": list(phases), "k": k, "vector": v,
                                "time": t, "result": _cal_dict(cal)})
            blk.cal, blk.correct = cal, True
            blk.weak = cal.weak
            bad += int((cal.bad & blk.used).sum())
            weak += int(cal.weak)
            mvms += cal.mvms
        return {"bad_columns": bad, "weak": weak, "mvms": mvms}

    def fit_affine(self, x_fit, k: int = 6, capture: bool = True,
                   time: float | None = None) -> None:
        """The host's per-column affine correction (the demo's): run ``x_fit`` through every
        block raw, fit each column's raw results against an ideal tile's
        (:func:`aimc.nn.affine_fit`), load the coefficients into the OFFSET and GAIN
        windows, and, with ``capture``, capture the drift reference with them (``2**k``
        MVMs). ``x_fit`` are network inputs; each layer sees the previous layer's raw
        outputs, as in the demo."""
        from .model import Calibration, capture_drift

        self._need_programmed("fit_affine()")
        k, t = self._check_k(k), self._moment(time)
        h = self._check_x(x_fit, self.layers[0][0].shape[0], "x_fit")
        for li, m in enumerate(self.maps):
            xq = m.inputs(h)
            codes = {}
            for blk in self.blocks[li]:
                raw = blk.chip.mvm(m.block_inputs(xq, blk.row0), time=t)
                codes[(blk.row0, blk.col0)] = raw
                off, gain = affine_fit(raw, m.ideal_codes(xq, blk.row0, blk.col0),
                                       self.tile.adc_bits)
                cal = Calibration(off, gain, np.zeros(self.tile.cols, dtype=np.int64))
                blk.history.append({"op": "load", "offset": off, "gain": gain})
                if capture:
                    v = blk.chip.next_vector
                    cal = capture_drift(blk.chip.state(t), v, cal, k, blk.reference)
                    blk.chip.next_vector = v + cal.mvms
                    blk.history.append({"op": "calibrate", "phases": ["capture"], "k": k,
                                        "vector": v, "time": t, "result": _cal_dict(cal)})
                    blk.weak = cal.weak
                blk.cal, blk.correct = cal, True
            z = m.outputs(codes) + self.layers[li][1]
            h = ACTIVATIONS[self.activation](z)

    def compensate_drift(self, time: float | None = None, k: int = 6) -> dict:
        """The drift phase on every block at ``time`` (default: the network's moment): the
        drift scale from the block's reference, against the reference captured by
        :meth:`calibrate` or :meth:`fit_affine`. A block whose signal is too small keeps
        its scale and counts as ``weak``.

        Returns
        -------
        dict
            ``scales`` (per block, in block order), ``weak`` (blocks refused) and ``mvms``.
        """
        from .fixedpoint import ONE
        from .model import compensate_drift

        self._need_programmed("compensate_drift()")
        k, t = self._check_k(k), self._moment(time)
        scales, weak, mvms = [], 0, 0
        for blk in self.all_blocks():
            if not blk.cal.drift_ref:
                raise RuntimeError("compensate_drift() needs a captured drift reference: "
                                   "call calibrate() or fit_affine() first")
            v = blk.chip.next_vector
            cal = compensate_drift(blk.chip.state(t), v, blk.cal, k, blk.reference)
            blk.chip.next_vector = v + cal.mvms
            blk.history.append({"op": "calibrate", "phases": ["drift"], "k": k, "vector": v,
                                "time": t, "result": _cal_dict(cal)})
            blk.cal, blk.weak = cal, cal.weak
            scales.append(cal.drift_scale / ONE)
            weak += int(cal.weak)
            mvms += cal.mvms
        return {"scales": scales, "weak": weak, "mvms": mvms}

    def reset_drift_scale(self) -> None:
        """Set every block's drift scale back to 1.0 (the host writes DRIFT_SCALE)."""
        from .fixedpoint import ONE

        for blk in self.all_blocks():
            blk.cal = blk.cal.copy()
            blk.cal.drift_scale = ONE
            blk.history.append({"op": "scale", "value": ONE})

    # -- inference -----------------------------------------------------------------------

    def forward(self, x, *, time: float | None = None, correct: bool | None = None,
                read: int | None = None, backend: str = "batch", sim: str = "icarus",
                work=None) -> np.ndarray:
        """The network's outputs (the last layer before any output activation: logits of a
        classifier) for inputs ``x`` ``(examples, inputs)``, every layer's product computed
        by the chips.

        Parameters
        ----------
        x : array (examples, inputs)
            Network inputs (floats, as the network was trained on).
        time : float, optional
            Seconds after the reference read (default: the network's moment; a new value
            becomes it).
        correct : bool, optional
            Results corrected with the coefficients the blocks hold (default: after a
            calibration or affine fit) or raw.
        read : int, optional
            Number of the first MVM of each block's batch (default: each chip's read
            counter, which then moves past the batch).
        backend : str
            ``"batch"`` (the model's golden prediction) or ``"cosim"`` (cosimulation of the
            generated Verilog: each block's engine history replayed on the RTL, then its
            inputs streamed; the results are checked bit for bit against the batch path
            and returned).
        sim : str
            The simulator of ``backend="cosim"``: ``icarus`` or ``verilator``.
        work : path, optional
            Folder of the cosimulation files (default: ``build/network/<seed>``).

        Raises
        ------
        ValueError
            Bad inputs, backend or read number.
        RuntimeError
            Not programmed, or (cosim) a result that differs from the batch path.
        """
        self._need_programmed("forward()")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if read is not None and (isinstance(read, bool) or not isinstance(read, int | np.integer)
                                 or read < 0):
            raise ValueError(f"read must be an integer >= 0 (the number of the first MVM) or "
                             f"None (each chip's read counter), not {read!r}")
        t = self._moment(time)
        h = self._check_x(x, self.layers[0][0].shape[0])
        runner = _CosimRunner(self, sim, work) if backend == "cosim" else None
        for li, m in enumerate(self.maps):
            xq = m.inputs(h)
            codes = {}
            for blk in self.blocks[li]:
                xb = m.block_inputs(xq, blk.row0)
                first = blk.chip.next_vector if read is None else int(read)
                raw = blk.chip.mvm(xb, first_vector=first, time=t)
                use = blk.correct if correct is None else bool(correct)
                values = (self.fmt.correct(raw, blk.cal.offset, blk.cal.gain,
                                           blk.cal.drift_scale)[0] if use
                          else self.fmt.uncorrected(raw))
                if runner is not None:
                    got = runner.run(blk, xb, first, t, use, values)
                    if not np.array_equal(got, values):
                        raise RuntimeError(f"cosimulation of layer {li} block "
                                           f"({blk.row0}, {blk.col0}) differs from the "
                                           f"batch path")
                codes[(blk.row0, blk.col0)] = values / 2**RESULT_FRAC
            z = m.outputs(codes) + self.layers[li][1]
            h = ACTIVATIONS[self.activation](z) if li < len(self.maps) - 1 else z
        return h

    def predict(self, x, **kwargs) -> np.ndarray:
        """Class labels (a classifier: the largest output, or a positive one with a single
        output) or output values (a regressor: one column squeezed); ``kwargs`` as for
        :meth:`forward`."""
        z = self.forward(x, **kwargs)
        if self.classes is None:
            return z[:, 0] if z.shape[1] == 1 else z
        if z.shape[1] == 1:
            return self.classes[(z[:, 0] > 0).astype(int)]
        return self.classes[np.argmax(z, axis=1)]

    def score(self, x, y, **kwargs) -> float:
        """Accuracy (classifier) or the coefficient of determination R^2 (regressor) of
        :meth:`predict` on ``(x, y)``."""
        p = self.predict(x, **kwargs)
        y = np.asarray(y)
        if self.classes is not None:
            return float(np.mean(p == y))
        y = y.reshape(p.shape).astype(np.float64)
        ss = float(((y - y.mean(axis=0)) ** 2).sum())
        return 1.0 - float(((y - p) ** 2).sum()) / ss if ss else float("nan")

    def float_forward(self, x) -> np.ndarray:
        """The outputs of the network in floating point (no tile)."""
        h = self._check_x(x, self.layers[0][0].shape[0])
        for li, (w, b) in enumerate(self.layers):
            z = h @ w + b
            h = ACTIVATIONS[self.activation](z) if li < len(self.layers) - 1 else z
        return h

    def float_predict(self, x) -> np.ndarray:
        """:meth:`predict` of the floating-point network."""
        z = self.float_forward(x)
        if self.classes is None:
            return z[:, 0] if z.shape[1] == 1 else z
        if z.shape[1] == 1:
            return self.classes[(z[:, 0] > 0).astype(int)]
        return self.classes[np.argmax(z, axis=1)]

    def drift_scales(self) -> list[float]:
        """Each block's drift scale, in block order."""
        from .fixedpoint import ONE

        return [b.cal.drift_scale / ONE for b in self.all_blocks()]


def map_network(net, x_train, *, tile: TileConfig | None = None, model="pcm", seed: int = 0
                ) -> TiledNetwork:
    """Map ``net`` onto tiles: a list of ``(weights, bias)`` float arrays (``y = x W + b``,
    ReLU between layers) or a fitted scikit-learn ``MLPClassifier`` / ``MLPRegressor``.

    Parameters
    ----------
    net : list of (array, array) or MLPClassifier or MLPRegressor
        The network.
    x_train : array (examples, inputs)
        Training inputs: they set each layer's input scale and ADC step.
    tile : TileConfig, optional
        The tile of every block (default 64x64).
    model : str or ModelConfig
        The chips' analogue model (default ``pcm``).
    seed : int
        Network seed; block ``b`` of layer ``l`` gets chip seed
        ``derive_seed(seed, "block", l, b)``.

    Returns
    -------
    TiledNetwork

    Raises
    ------
    TypeError, ValueError
        A bad network, inputs, tile, model or seed (the message names it).
    """
    layers, activation, classes = layers_of(net)
    return TiledNetwork(layers, x_train, tile=tile, model=model, seed=seed,
                        activation=activation, classes=classes)


def _cal_dict(cal) -> dict:
    return {"offset": cal.offset.copy(), "gain": cal.gain.copy(), "status": cal.status.copy(),
            "drift_ref": int(cal.drift_ref), "drift_scale": int(cal.drift_scale),
            "error": bool(cal.error), "weak": bool(cal.weak)}


def _params_dict(params) -> dict:
    import dataclasses

    return dataclasses.asdict(params)


class _CosimRunner:
    """Runs blocks of a :class:`TiledNetwork` in cosimulation (one simulator run per block
    and call; :mod:`aimc.cosim.test_api` replays the block's history on the RTL)."""

    def __init__(self, net: TiledNetwork, sim: str, work):
        from .cosim.runner import check_simulator

        check_simulator(sim)
        self.net, self.sim = net, sim
        self.work = Path(work) if work is not None else Path("build") / "network" / str(net.seed)
        self.runs = 0

    def run(self, blk: _Block, x: np.ndarray, first: int, time: float, correct: bool,
            expect: np.ndarray) -> np.ndarray:
        from .cosim import runner
        from .cosim.replay import write_plan
        from .cosim.settings import CosimSettings

        self.runs += 1
        work = (self.work / f"l{blk.layer}-r{blk.row0}-c{blk.col0}-{self.runs}").resolve()
        work.mkdir(parents=True, exist_ok=True)
        plan = work / "plan.npz"
        write_plan(plan, blk, x, first, time, correct, expect)
        settings = CosimSettings(tile=self.net.tile, model=blk.chip.config,
                                 chip_seed=blk.chip.seed, erased=True, plan=plan,
                                 stats=work / "stats.json", module="aimc.cosim.test_api",
                                 tests="network_replay")
        try:
            runner.run(settings, self.sim, log_file=work / "cosim.log")
        except AssertionError as exc:
            raise RuntimeError(f"cosimulation of layer {blk.layer} block ({blk.row0}, "
                               f"{blk.col0}) failed: {exc}; log: {work / 'cosim.log'}") from None
        return np.load(work / "results.npy")
