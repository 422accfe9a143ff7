"""The host side of a neural network on the tile: data, training, quantisation, mapping.

A small MLP (64 inputs, one hidden ReLU layer, 10 outputs) is trained on scikit-learn's
handwritten digits (8x8 images, shipped with the package). Each layer ``y = x W + b`` is
mapped onto tiles: ``W`` becomes signed read-count targets (``|W|`` max at
:func:`~aimc.programming.read_full_scale`) split into tile-sized blocks, the inputs become
signed integers at the tile's input resolution, the biases and the ReLU stay digital on the
host, and each block's results (ADC codes) are rescaled to floating point and summed over
the blocks of a row of blocks.

Hardware-aware training adds, in every forward pass, weight noise of the size the
program-and-verify engine leaves (3.5 % of the largest weight, measured on the ``pcm``
preset at 256x256) and output noise of one ADC step, as aihwkit's hardware-aware training
injects noise during training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import TileConfig
from .fixedpoint import GAIN_FRAC, OFF_FRAC, RESULT_FRAC
from .programming import read_full_scale

__all__ = ["LayerMap", "Mlp", "affine_fit", "load_digits", "map_layer", "train"]

#: Weight error left by program-and-verify on the pcm preset, fraction of the largest weight
#: (`aimc program`, 256x256: 3.52 % RMS).
HWA_WEIGHT_NOISE = 0.035
#: Share of the ADC range the training inputs' ideal results fill (sets each layer's ADC step).
CODE_LIMIT = 0.85


def load_digits(seed: int = 0, test_fraction: float = 0.3):
    """scikit-learn's digits, pixels scaled to [0, 1], split into train and test sets
    (stratified, fixed by ``seed``)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = d.data.astype(np.float64) / 16.0
    return train_test_split(x, d.target, test_size=test_fraction, random_state=seed,
                            stratify=d.target)


@dataclass
class Mlp:
    """Weights ``w1 (64, H)``, ``b1``, ``w2 (H, 10)``, ``b2``."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    history: list = field(default_factory=list)

    def hidden(self, x):
        return np.maximum(x @ self.w1 + self.b1, 0.0)

    def logits(self, x):
        return self.hidden(x) @ self.w2 + self.b2

    def accuracy(self, x, y) -> float:
        return float(np.mean(np.argmax(self.logits(x), axis=1) == y))


def train(x, y, hidden: int = 32, epochs: int = 150, seed: int = 0, aware: bool = False,
          lr: float = 3e-3, batch: int = 32) -> Mlp:
    """Train the MLP with Adam on softmax cross-entropy; with ``aware``, inject the tile's
    weight noise (relative to each layer's largest weight) and one ADC step of output noise
    in every forward pass."""
    rng = np.random.default_rng(seed)
    n_in, n_out = x.shape[1], int(y.max()) + 1
    params = [rng.normal(0, np.sqrt(2 / n_in), (n_in, hidden)), np.zeros(hidden),
              rng.normal(0, np.sqrt(2 / hidden), (hidden, n_out)), np.zeros(n_out)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(n_out)[y]
    step = 0
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            xb, tb = x[idx], onehot[idx]
            w1, b1, w2, b2 = params
            if aware:
                w1 = w1 + HWA_WEIGHT_NOISE * np.abs(w1).max() * rng.normal(size=w1.shape)
                w2 = w2 + HWA_WEIGHT_NOISE * np.abs(w2).max() * rng.normal(size=w2.shape)
            z1 = xb @ w1
            if aware:
                z1 = z1 + np.abs(z1).max() / 128 * rng.normal(size=z1.shape)
            h = np.maximum(z1 + b1, 0.0)
            z2 = h @ w2
            if aware:
                z2 = z2 + np.abs(z2).max() / 128 * rng.normal(size=z2.shape)
            logits = z2 + b2
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            g2 = (p - tb) / len(idx)
            gw2, gb2 = h.T @ g2, g2.sum(0)
            gh = (g2 @ w2.T) * (h > 0)
            gw1, gb1 = xb.T @ gh, gh.sum(0)
            step += 1
            for i, g in enumerate((gw1 + 1e-4 * params[0], gb1, gw2 + 1e-4 * params[2], gb2)):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                params[i] -= lr * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step))
                                                              + 1e-8)
        history.append(float(np.mean(np.argmax(np.maximum(x @ params[0] + params[1], 0)
                                               @ params[2] + params[3], 1) == y)))
    return Mlp(*params, history=history)


@dataclass
class LayerMap:
    """One layer on tiles.

    Attributes
    ----------
    counts : array of int (in, out)
        Signed read-count targets of the whole layer.
    in_scale : float
        Input value of one input LSB (inputs are ``round(x / in_scale)``, clipped).
    w_scale : float
        Counts per unit of weight.
    out_scale : float
        Output value of one ADC code of an ideal tile.
    blocks : list of (row0, col0)
        Top-left corner of each tile-sized block in ``counts``.
    """

    tile: TileConfig
    counts: np.ndarray
    in_scale: float
    w_scale: float
    out_scale: float
    blocks: list
    read_per_lsb: float   # read counts per conductance LSB
    lsb: float            # ADC step, charge units

    def block_targets(self, row0: int, col0: int) -> np.ndarray:
        """The block's targets, padded with zeros to the tile."""
        t = np.zeros((self.tile.rows, self.tile.cols), dtype=np.int64)
        part = self.counts[row0:row0 + self.tile.rows, col0:col0 + self.tile.cols]
        t[:part.shape[0], :part.shape[1]] = part
        return t

    def inputs(self, x) -> np.ndarray:
        """Integer inputs of the whole layer, ``(batch, in)``."""
        q = np.round(np.asarray(x) / self.in_scale)
        return np.clip(q, -self.tile.x_max, self.tile.x_max).astype(np.int64)

    def block_inputs(self, xq, row0: int) -> np.ndarray:
        """A block's slice of the integer inputs, padded with zeros to the tile's rows."""
        out = np.zeros((len(xq), self.tile.rows), dtype=np.int64)
        part = xq[:, row0:row0 + self.tile.rows]
        out[:, :part.shape[1]] = part
        return out

    def ideal_codes(self, xq, row0: int, col0: int) -> np.ndarray:
        """Results an ideal tile gives the block (ADC codes, unrounded)."""
        return self.block_inputs(xq, row0) @ self.block_targets(row0, col0) * self._code_per

    @property
    def _code_per(self) -> float:
        # One input LSB times one read count, in ADC codes of an ideal tile.
        return 1.0 / (self.read_per_lsb * self.lsb)

    def outputs(self, codes: dict) -> np.ndarray:
        """Layer output (before bias) from each block's result codes ``{(row0, col0):
        (batch, tile.cols)}``: rescaled and summed over the blocks of each column range."""
        batch = len(next(iter(codes.values())))
        y = np.zeros((batch, self.counts.shape[1]))
        for (_row0, col0), c in codes.items():
            width = min(self.tile.cols, self.counts.shape[1] - col0)
            y[:, col0:col0 + width] += np.asarray(c)[:, :width] * self.out_scale
        return y


def map_layer(w, x_train, tile: TileConfig, chip_lsb: float, w_max: int) -> LayerMap:
    """Map weights ``w (in, out)`` onto ``tile``-sized blocks. ``chip_lsb`` is the chip's
    default ADC step (charge units, the design value of :class:`~aimc.model.chip.Chip`) and
    ``w_max`` the weight range in conductance LSB: both are design parameters the host
    knows. The input scale puts the largest training input at ``x_max``; the layer's ADC step
    (the model's ``adc.lsb``, a chip's programmable integration gain) is the default one
    scaled, and rounded up to a whole charge unit, so that the training inputs' ideal
    results reach ``CODE_LIMIT`` of the converter range."""
    w = np.asarray(w, dtype=np.float64)
    full = read_full_scale(tile.adc_bits)
    w_scale = full / float(np.abs(w).max())
    counts = np.round(w * w_scale).astype(np.int64)
    read_per_lsb = full / w_max
    in_scale = float(np.abs(x_train).max()) / tile.x_max
    blocks = [(r, c) for r in range(0, w.shape[0], tile.rows)
              for c in range(0, w.shape[1], tile.cols)]
    m = LayerMap(tile, counts, in_scale, w_scale, 0.0, blocks, read_per_lsb, chip_lsb)
    xq = m.inputs(x_train)
    peak = max(float(np.abs(m.ideal_codes(xq, r, c)).max()) for r, c in blocks)
    limit = CODE_LIMIT * 2 ** (tile.adc_bits - 1)
    m.lsb = float(max(np.ceil(chip_lsb * peak / limit), 1.0))
    # y = sum x w = in_scale * sum xq * counts / w_scale = in_scale / w_scale * code * (lsb *
    # read_per_lsb).
    m.out_scale = m.in_scale / w_scale * m.lsb * read_per_lsb
    return m


def affine_fit(raw, ideal, adc_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column affine correction from a calibration subset: fit ``raw = a ideal + b``
    (least squares over the raw codes ``(batch, cols)``, results at a rail left out) and
    return the OFFSET and GAIN window words (``offset = b`` with OFF_FRAC fractional bits,
    ``gain = 1/a`` in Q2.GAIN_FRAC) that map raw results back onto the ideal ones. Columns
    with too few points or a slope outside the gain range keep offset 0 and gain 1."""
    raw, ideal = np.asarray(raw, dtype=np.float64), np.asarray(ideal, dtype=np.float64)
    lo, hi = -2 ** (adc_bits - 1), 2 ** (adc_bits - 1) - 1
    cols = raw.shape[1]
    offset = np.zeros(cols, dtype=np.int64)
    gain = np.full(cols, 1 << GAIN_FRAC, dtype=np.int64)
    for c in range(cols):
        use = (raw[:, c] > lo) & (raw[:, c] < hi)
        if use.sum() < 3 or np.ptp(ideal[use, c]) == 0:
            continue
        a, b = np.polyfit(ideal[use, c], raw[use, c], 1)
        if not 0.5 < 1 / a < 2:
            continue
        offset[c] = int(round(b * 2**OFF_FRAC))
        gain[c] = min(int(round(2**GAIN_FRAC / a)), 2 * (1 << GAIN_FRAC) - 1)
    return offset, gain


def result_codes(values) -> np.ndarray:
    """Results on the stream (RESULT_FRAC fractional bits) as ADC codes."""
    return np.asarray(values, dtype=np.float64) / 2**RESULT_FRAC
