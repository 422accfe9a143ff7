"""Training a multilayer perceptron on the tile: forward MVMs, backward MVMs and pulsed
updates all on the analogue array (``aimc train``).

Every layer ``z = x W + b`` is split into tile-sized blocks as :mod:`aimc.nn` splits it for
inference (rows: the layer's inputs, columns: its outputs). A training step on one example:

1. forward: each layer's input is scaled by its largest magnitude to the input codes
   (``x_max`` for the largest), every block of the layer converts its slice, the host
   rescales the results, sums them over the blocks of a column range, adds the bias and
   applies the activation (ReLU; the last layer's logits go to a softmax);
2. backward: the error of the last layer (softmax minus one-hot) is scaled the same way
   and sent down the layers as backward MVMs (the columns drive, the rows convert), times
   the ReLU derivative on the host;
3. update: each block gets an UPDATE vector (its slice of the layer's scaled error) and
   updates its devices from it and the forward input its row driver still holds: a managed
   pulsed update with ``UPD_ETA = lr * s_x * s_d / dw_min`` (``s_x``, ``s_d`` the values
   of one input LSB), so that the expected change of a weight is ``-lr x_r d_c``.

The host keeps what a digital unit next to the array would: the biases (updated by SGD in
floating point), the activations and their derivatives, the loss and the last layer's
error, and the per-vector scales. The network's weights are the devices' weights
``w - w_ref`` (device units, the reference devices at the symmetry point).

Algorithms:

* ``sgd``: plain analogue SGD, one device pair per weight (aihwkit's ``AnalogSGD`` on a
  single device);
* ``ttv2``: Tiki-Taka v2 (aihwkit's ``BufferedTransferCompound``; Gokmen, Front. Artif.
  Intell. 2021, after Gokmen & Haensch, Front. Neurosci. 2020). The gradient pulses go to
  a fast array A (starting at its symmetry point, 0), the network's weights are a slow
  array C (``gamma = 0``: forward and backward MVMs read C alone). Every
  ``transfer_every`` examples one row of A is read (a forward MVM of a one-hot input),
  added into a digital buffer H (``transfer_lr`` times the read value) and, where
  ``|H|`` reaches ``thres_scale * dw_min`` of C, C takes ``trunc(H / threshold)`` pulses
  (at most ``transfer_bl``) through a deterministic update of that row, and H keeps
  ``momentum`` times its value there. A and C are two tiles: each tile has one row driver
  and one update engine, the update of A needs its row driver to hold the example while C
  computes the forward MVM, and a tile's update drives all its rows at once. The forward
  input therefore goes to both tiles (A's result is not used).

``--cosim --steps N`` records every operation of every tile for the first N examples and
replays each tile's operations through the cosimulated Verilog
(:mod:`aimc.cosim.test_training`), where every result and every device's weight after
every update must equal the batch path's.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .config import TileConfig
from .enums import UpdateMode
from .evaluate import DATASETS, load_dataset
from .fixedpoint import RESULT_FRAC
from .train_config import ALGORITHMS, TrainConfig
from .train_tile import TrainTile
from .training import ETA_FRAC, PROB_BITS, SCALE_FRAC

__all__ = ["ALGORITHMS", "DATASETS", "TrainConfig", "energy_pj", "load_dataset", "train"]

_WORD = (1 << 32) - 1


def _scaled(v, x_max: int):
    """Integer codes of ``v`` with its largest magnitude at ``x_max``, and the value of one
    code (1 for a zero vector)."""
    peak = float(np.abs(v).max()) if len(v) else 0.0
    if peak == 0.0:
        return np.zeros(len(v), dtype=np.int64), 1.0
    step = peak / x_max
    return np.clip(np.rint(v / step), -x_max, x_max).astype(np.int64), step


# -- layers -------------------------------------------------------------------------------

@dataclass
class _Block:
    row0: int
    col0: int
    rows: int        # used rows of the tile
    cols: int
    c: TrainTile     # the weights (C)
    a: TrainTile | None = None   # Tiki-Taka's fast array
    buffer: np.ndarray | None = None
    next_row: int = 0


class Layer:
    """One layer on tiles: ``z = x W + b`` with ``W`` on the devices of its blocks."""

    def __init__(self, cfg: TrainConfig, model, n_in: int, n_out: int, w0, seed: int,
                 record: bool):
        t = cfg.tile
        self.cfg, self.n_in, self.n_out = cfg, n_in, n_out
        self.bias = np.zeros(n_out)
        self.blocks: list[_Block] = []
        self.dw_min = model.update.dw_min
        for row0 in range(0, n_in, t.rows):
            for col0 in range(0, n_out, t.cols):
                rows, cols = min(t.rows, n_in - row0), min(t.cols, n_out - col0)
                w = np.zeros((t.rows, t.cols))
                w[:rows, :cols] = w0[row0:row0 + rows, col0:col0 + cols]
                k = len(self.blocks)
                b = _Block(row0, col0, rows, cols,
                           TrainTile(t, model, _seed(seed, k, 0), w, record))
                if cfg.algorithm == "ttv2":
                    b.a = TrainTile(t, model, _seed(seed, k, 1), np.zeros_like(w), record)
                    b.buffer = np.zeros((t.rows, t.cols))
                self.blocks.append(b)
        c = self.blocks[0].c
        self.lsb, self.scale = c.chip.forward.lsb, c.scale
        self.back_lsb = c.chip.backward.lsb
        self.x_int = self.x_step = None

    def tiles(self):
        for b in self.blocks:
            yield b.c
            if b.a is not None:
                yield b.a

    def _pad(self, v, start, length, size):
        out = np.zeros(size, dtype=np.int64)
        out[:length] = v[start:start + length]
        return out

    def forward(self, x) -> np.ndarray:
        """``x W + b`` for one example."""
        t = self.cfg.tile
        self.x_int, self.x_step = _scaled(x, t.x_max)
        z = np.zeros(self.n_out)
        for b in self.blocks:
            xb = self._pad(self.x_int, b.row0, b.rows, t.rows)
            raw = b.c.forward(xb)
            if b.a is not None:
                b.a.forward(xb)  # loads A's row driver for its update (result unused)
            z[b.col0:b.col0 + b.cols] += raw[:b.cols] * (self.lsb * self.x_step / self.scale)
        return z + self.bias

    def backward(self, delta) -> np.ndarray:
        """``W delta`` (the error at this layer's input) from the backward MVMs."""
        t = self.cfg.tile
        d_int, d_step = _scaled(delta, t.x_max)
        out = np.zeros(self.n_in)
        for b in self.blocks:
            raw = b.c.backward(self._pad(d_int, b.col0, b.cols, t.cols))
            out[b.row0:b.row0 + b.rows] += raw[:b.rows] * (self.back_lsb * d_step / self.scale)
        return out

    def update(self, delta, lr: float) -> None:
        """SGD step ``W -= lr x delta`` on the devices (``x`` the last forward input), and
        ``b -= lr delta`` on the host."""
        cfg, t = self.cfg, self.cfg.tile
        self.bias -= lr * delta
        d_int, d_step = _scaled(delta, t.x_max)
        fast = cfg.algorithm == "ttv2"
        rate = cfg.fast_lr if fast else lr
        eta = rate * self.x_step * d_step / self.dw_min
        regs = {"mode": UpdateMode.STOCHASTIC, "manage": 1, "k": PROB_BITS,
                "eta": min(int(round(eta * 2**ETA_FRAC)), _WORD), "bl": cfg.bl,
                "scale_x": 0, "scale_d": 0}
        for b in self.blocks:
            xb = self._pad(self.x_int, b.row0, b.rows, t.rows)
            db = self._pad(d_int, b.col0, b.cols, t.cols)
            (b.a if fast else b.c).update(xb, db, regs)

    def transfer(self) -> None:
        """Tiki-Taka v2: one row of each block's A read into its buffer, and the buffer's
        whole steps written to C's row."""
        cfg, t = self.cfg, self.cfg.tile
        thres = cfg.thres_scale * self.dw_min
        for b in self.blocks:
            r = b.next_row
            b.next_row = (r + 1) % b.rows
            one_hot = np.zeros(t.rows, dtype=np.int64)
            one_hot[r] = t.x_max
            read = b.a.forward(one_hot) * (self.lsb / (t.x_max * self.scale))
            h = b.buffer[r] + cfg.transfer_lr * read
            n = np.clip(np.trunc(h / thres), -cfg.transfer_bl, cfg.transfer_bl)
            b.buffer[r] = np.where(n != 0, cfg.momentum * h, h)
            if not n.any():
                continue
            # C's row r takes |n_c| pulses, up where n_c > 0: a deterministic update of
            # transfer_bl slots, row r firing in every slot (its probability caps at 1),
            # column c in |n_c| of them (probability |n_c| / BL).
            b.c.forward(one_hot)  # loads C's row driver with the one-hot row
            bl = cfg.transfer_bl
            regs = {"mode": UpdateMode.DETERMINISTIC, "manage": 0, "k": PROB_BITS,
                    "eta": 0, "bl": bl,
                    "scale_x": -(-(1 << (PROB_BITS + SCALE_FRAC)) // t.x_max),
                    "scale_d": int(round((1 << (PROB_BITS + SCALE_FRAC)) / bl))}
            d = np.zeros(t.cols, dtype=np.int64)
            d[:len(n)] = -n.astype(np.int64)
            b.c.update(one_hot, d, regs)

    @property
    def weights(self) -> np.ndarray:
        w = np.zeros((self.n_in, self.n_out))
        for b in self.blocks:
            w[b.row0:b.row0 + b.rows, b.col0:b.col0 + b.cols] = b.c.weights[:b.rows, :b.cols]
        return w


def _seed(seed: int, block: int, array: int) -> int:
    return (seed * 1_000_003 + block * 7919 + array * 104_729) % 2**63


def layer_model(cfg: TrainConfig):
    """The chips' model: the device preset with the ADC step that puts ``out_bound`` (full
    input, unit weights) at the converters' full scale, rounded up to a whole charge unit
    (a chip's programmable integration gain); a bit-serial plane drives one LSB."""
    from .model.pulsed import training_scale

    model = cfg.model
    t = cfg.tile
    scale = training_scale(model)
    drive = t.x_max if t.input_mode == "pwm" else 1
    lsb = max(math.ceil(cfg.out_bound * drive * scale / 2 ** (t.adc_bits - 1)), 1)
    return model.replace(name=f"{cfg.device_name}-lsb{lsb}", adc={"lsb": float(lsb)})


# -- the float reference ----------------------------------------------------------------

class FloatMlp:
    """The same network in floating point, trained by the same SGD on the same examples in
    the same order."""

    def __init__(self, weights, biases):
        self.w = [np.array(w, dtype=np.float64) for w in weights]
        self.b = [np.array(b, dtype=np.float64) for b in biases]

    def forward(self, x):
        acts = [x]
        for i, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0.0) if i < len(self.w) - 1 else z)
        return acts

    def step(self, x, label, lr):
        acts = self.forward(x)
        delta = _softmax(acts[-1]) - np.eye(len(acts[-1]))[label]
        for i in range(len(self.w) - 1, -1, -1):
            back = self.w[i] @ delta if i else None
            self.w[i] -= lr * np.outer(acts[i], delta)
            self.b[i] -= lr * delta
            if i:
                delta = back * (acts[i] > 0)

    def accuracy(self, x, y) -> float:
        return float(np.mean(np.argmax(self.forward(x)[-1], axis=1) == y))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# -- the network on tiles ---------------------------------------------------------------

@dataclass
class TileNetwork:
    """The MLP on tiles."""

    cfg: TrainConfig
    layers: list
    seen: int = 0
    history: list = field(default_factory=list)

    def step(self, x, label) -> float:
        """One training step on one example; returns its loss."""
        cfg = self.cfg
        acts, zs = [x], []
        for i, layer in enumerate(self.layers):
            z = layer.forward(acts[-1])
            zs.append(z)
            acts.append(np.maximum(z, 0.0) if i < len(self.layers) - 1 else z)
        p = _softmax(acts[-1])
        delta = p - np.eye(len(p))[label]
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            back = layer.backward(delta) if i else None
            layer.update(delta, cfg.lr)
            if i:
                delta = back * (zs[i - 1] > 0)
        self.seen += 1
        if cfg.algorithm == "ttv2" and self.seen % cfg.transfer_every == 0:
            for layer in self.layers:
                layer.transfer()
        return float(-np.log(max(p[label], 1e-300)))

    def logits(self, x):
        """Forward pass of a batch on the batch path without touching the training
        counters: every tile's state at the current weights, numbered reads after the
        training's (the evaluation does not disturb the recorded sequence)."""
        a = np.asarray(x, dtype=np.float64)
        for i, layer in enumerate(self.layers):
            t = self.cfg.tile
            steps = np.abs(a).max(axis=1) / t.x_max
            steps[steps == 0] = 1.0
            xi = np.clip(np.rint(a / steps[:, None]), -t.x_max, t.x_max).astype(np.int64)
            z = np.zeros((len(a), layer.n_out))
            for b in layer.blocks:
                xb = np.zeros((len(a), t.rows), dtype=np.int64)
                xb[:, :b.rows] = xi[:, b.row0:b.row0 + b.rows]
                raw = b.c.chip.state(0.0).mvm(xb, first_vector=_EVAL_BASE)
                codes = b.c._out(raw, b.c.col_offset) / 2**RESULT_FRAC
                z[:, b.col0:b.col0 + b.cols] += codes[:, :b.cols] * layer.lsb / layer.scale
            z = z * steps[:, None] + layer.bias
            a = np.maximum(z, 0.0) if i < len(self.layers) - 1 else z
        return a

    def accuracy(self, x, y) -> float:
        return float(np.mean(np.argmax(self.logits(x), axis=1) == y))

    def tiles(self):
        for layer in self.layers:
            yield from layer.tiles()


#: Examples between two samples of the traced devices.
TRACE_EVERY = 50
#: Evaluation reads are numbered from here (far past any training read).
_EVAL_BASE = 1 << 40


def build(cfg: TrainConfig, n_in: int, n_out: int, record: bool = False):
    """The network on tiles and its float twin, from the same initial weights (PyTorch's
    nn.Linear default: uniform within +-1/sqrt(fan_in)), biases 0."""
    rng = np.random.default_rng(cfg.seed)
    sizes = (n_in, *cfg.hidden, n_out)
    model = layer_model(cfg)
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    w0 = [rng.uniform(-1, 1, (a, b)) / math.sqrt(a) for a, b in pairs]
    layers = [Layer(cfg, model, a, b, w, _seed(cfg.seed, i, 2), record)
              for i, ((a, b), w) in enumerate(zip(pairs, w0, strict=True))]
    net = TileNetwork(cfg, layers)
    # The float twin starts from what the devices hold (their bounds may clip a weight).
    ref = FloatMlp([layer.weights for layer in layers], [np.zeros(b) for b in sizes[1:]])
    return net, ref, model


def train(cfg: TrainConfig, *, steps: int | None = None, progress=None,
          log=print) -> dict:
    """Train ``cfg``'s network on the tiles and its float twin; returns the report (see
    :func:`aimc.train_report.write`). ``steps`` stops after that many examples (the
    cosimulated slice: every operation recorded)."""
    from .model.energy import estimate

    x_tr, x_te, y_tr, y_te = load_dataset(cfg.dataset, cfg.seed)
    n_out = int(max(y_tr.max(), y_te.max())) + 1
    record = steps is not None
    net, ref, model = build(cfg, x_tr.shape[1], n_out, record)
    rng = np.random.default_rng(cfg.seed + 1)
    epochs = 1 if record else cfg.epochs
    report = {"config": cfg.to_dict(), "dataset": {"train": len(x_tr), "test": len(x_te),
                                                   "features": x_tr.shape[1],
                                                   "classes": n_out},
              "epochs": []}
    start = time.perf_counter()
    # A few devices of the first block of the first layer, traced over training (and the
    # same weights of the float twin).
    first = net.layers[0].blocks[0]
    rows, cols = np.meshgrid(np.arange(first.rows), np.arange(first.cols), indexing="ij")
    pick = rng.choice(rows.size, size=min(4, rows.size), replace=False)
    traced = [(int(rows.ravel()[k]), int(cols.ravel()[k])) for k in pick]
    trace = {"devices": traced, "step": [], "weight": [], "float": []}

    def sample():
        w = first.c.weights
        trace["step"].append(net.seen)
        trace["weight"].append([float(w[r, c]) for r, c in traced])
        trace["float"].append([float(ref.w[0][r, c]) for r, c in traced])

    sample()
    for epoch in range(epochs):
        order = rng.permutation(len(x_tr))
        if steps is not None:
            order = order[:steps]
        t0 = time.perf_counter()
        loss = 0.0
        for n, i in enumerate(order):
            loss += net.step(x_tr[i], y_tr[i])
            ref.step(x_tr[i], y_tr[i], cfg.lr)
            if net.seen % TRACE_EVERY == 0:
                sample()
            if progress is not None:
                progress(epoch, n + 1, len(order), time.perf_counter() - t0)
        seconds = time.perf_counter() - t0
        entry = {"epoch": epoch + 1, "loss": loss / len(order), "seconds": seconds,
                 "test_accuracy": net.accuracy(x_te, y_te),
                 "float_test_accuracy": ref.accuracy(x_te, y_te),
                 "train_accuracy": net.accuracy(x_tr, y_tr)}
        report["epochs"].append(entry)
        log(f"epoch {epoch + 1}/{epochs}: loss {entry['loss']:.3f}, test accuracy "
            f"{100 * entry['test_accuracy']:.2f} % (float {100 * entry['float_test_accuracy']:.2f}"
            f" %), {seconds:.1f} s ({len(order) / seconds:.0f} examples/s)")
    tiles = list(net.tiles())
    e = estimate(cfg.tile, model)
    clock = model.energy.clock_ghz
    counts = {k: int(sum(getattr(t, k) for t in tiles))
              for k in ("forwards", "backwards", "updates", "slots", "pulses", "line_pulses",
                        "capped", "update_cycles")}
    report.update({
        "final_test_accuracy": report["epochs"][-1]["test_accuracy"],
        "float_test_accuracy": report["epochs"][-1]["float_test_accuracy"],
        "tiles": len(tiles), "counts": counts,
        "cycles_per_epoch": sum(t.cycles for t in tiles) / epochs,
        "energy_per_epoch_uj": energy_pj(counts, e, cfg.tile, model) / epochs * 1e-6,
        "seconds": time.perf_counter() - start, "model": model.name,
    })
    report["time_per_epoch_ms"] = report["cycles_per_epoch"] / clock * 1e-6
    report["weight_error"] = [float(np.sqrt(np.mean((layer.weights - w) ** 2)))
                              for layer, w in zip(net.layers, ref.w, strict=True)]
    if not record:
        report["inference_flow"] = inference_flow(ref, x_tr, x_te, y_te, cfg)
    report["trace"] = trace
    report["weight_differences"] = np.concatenate(
        [(layer.weights - w).ravel() for layer, w in zip(net.layers, ref.w, strict=True)])
    report["_net"], report["_ref"] = net, ref
    return report


def inference_flow(ref: FloatMlp, x_tr, x_te, y_te, cfg: TrainConfig,
                   model: str = "pcm") -> dict:
    """The comparison anchor: the float-trained twin put on inference tiles of the same size
    as ``aimc demo`` does (program-and-verify on ``model``'s devices, calibration, the
    host's affine correction; :mod:`aimc.network`, batch path), its test accuracy."""
    from .network import map_network

    tile = dataclasses.replace(cfg.tile, training=False)
    net = map_network(list(zip(ref.w, ref.b, strict=True)), x_tr, tile=tile, model=model,
                      seed=cfg.seed)
    net.program()
    net.calibrate()
    net.fit_affine(x_tr[:200])
    z = net.forward(x_te)
    return {"model": model, "test_accuracy": float(np.mean(np.argmax(z, axis=1) == y_te))}


def energy_pj(counts: dict, e, tile: TileConfig, model) -> float:
    """Estimated energy (pJ) of the counted operations: an MVM (forward or backward) as
    :func:`aimc.model.energy.estimate` gives it for uniform inputs and weights, an update
    as its cycles of periphery logic plus the line pulses (each charges a line of ``cells``
    devices) and the device pulses."""
    en = model.energy
    mvm = e.total_pj * (counts["forwards"] + counts["backwards"])
    line_ff = en.row_wire_ff_per_cell * max(tile.rows, tile.cols)
    lines = counts["line_pulses"] * line_ff * 1e-3 * en.update_v ** 2 / 4 * en.driver_overhead
    g_mid = (model.device.g_min + model.device.g_max) / 2
    devices = counts["pulses"] * en.update_v ** 2 * g_mid * en.update_pulse_ns * 1e-3
    logic = en.digital_pj_per_cycle * counts["update_cycles"]
    return mvm + lines + devices + logic
