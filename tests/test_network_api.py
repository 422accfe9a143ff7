"""The public Python API of issue 18, called as a user would: any dense network on tiles
(arrays or scikit-learn estimators), the engines' golden algorithms on it, any data set,
numbered reads, and the same call through cosimulation of the generated Verilog."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aimc import TileConfig
from aimc.evaluate import DATASETS, load_dataset
from aimc.model import Chip
from aimc.network import map_network

TILE = TileConfig(rows=16, cols=16)


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris")


def _classifier(x, y, hidden=(32,)):
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of a short fit
        return MLPClassifier(hidden, max_iter=2000, random_state=0).fit(x, y)


def test_sklearn_classifier_on_tiles_calibrates_and_compensates_drift(iris):
    """An MLPClassifier on 16x16 pcm tiles (its 4x32 and 32x3 layers, two blocks each):
    program-and-verify, calibration, accuracy close to floating point; a day later the
    drift costs accuracy and the engine's compensation wins it back, with scales near the
    true ones."""
    x_tr, x_te, y_tr, y_te = iris
    clf = _classifier(x_tr, y_tr)
    net = map_network(clf, x_tr, tile=TILE, model="pcm", seed=3)
    assert [len(row) for row in net.blocks] == [2, 2]
    assert np.array_equal(net.float_predict(x_te), clf.predict(x_te))
    counters = net.program()
    assert counters["failed"] == 0 and counters["passed"] == 4 * 2 * TILE.rows * TILE.cols
    report = net.calibrate(k=4)
    assert report["weak"] == 0 and report["bad_columns"] == 0
    float_acc = clf.score(x_te, y_te)
    assert net.score(x_te, y_te) >= float_acc - 0.05
    net.reset_drift_scale()
    stale = net.forward(x_te, time=86400.0)
    comp = net.compensate_drift(k=4)
    assert comp["weak"] == 0
    from aimc.model import true_drift_scale

    for scale, blk in zip(comp["scales"], net.all_blocks(), strict=True):
        assert abs(scale / true_drift_scale(blk.chip, 86400.0) - 1) < 0.12
    fixed = net.forward(x_te)
    ideal = net.float_forward(x_te)
    assert np.abs(fixed - ideal).mean() < 0.6 * np.abs(stale - ideal).mean()
    assert net.score(x_te, y_te) >= float_acc - 0.07


def test_list_of_arrays_and_a_regressor():
    """A (weights, bias) list with layers split into 16x16 blocks (20 inputs: two row
    blocks; 24 hidden: two column blocks), and an MLPRegressor: R^2 on the tiles close to
    the floating-point one."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    layers = [(rng.normal(0, 1, (20, 24)), rng.normal(0, 0.1, 24)),
              (rng.normal(0, 1, (24, 3)), np.zeros(3))]
    x = rng.uniform(0, 1, (50, 20))
    net = map_network(layers, x, tile=TILE, model="adc-only", seed=1)
    assert [len(row) for row in net.blocks] == [4, 2]
    assert len({b.chip.seed for b in net.all_blocks()}) == 6
    net.program(method="direct")
    net.calibrate(k=4)
    out, ideal = net.forward(x), net.float_forward(x)
    assert np.abs(out - ideal).max() < 0.05 * np.abs(ideal).max()

    xr = rng.uniform(0, 1, (200, 5))
    yr = xr @ rng.normal(0, 1, 5) + 0.3 * np.sin(3 * xr[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=0)
        reg.fit(xr[:150], yr[:150])
    tiled = map_network(reg, xr[:150], tile=TILE, model="pcm", seed=2)
    tiled.program(method="direct")
    tiled.calibrate(k=4)
    assert tiled.predict(xr[150:]).shape == (50,)
    assert tiled.score(xr[150:], yr[150:]) > reg.score(xr[150:], yr[150:]) - 0.1


def test_repeated_reads_draw_new_noise_and_numbered_reads_repeat():
    """Chip.mvm's read counter: the same vector read twice gives independent noise, so an
    average of reads has less noise than one; an explicit number repeats a read bit for
    bit; the network's forward does the same per chip."""
    chip = Chip(TILE, "adc-only", seed=4)
    chip.program(np.random.default_rng(1).integers(-127, 128, (16, 16)))
    x = np.full((1, 16), 50)
    reads = np.concatenate([chip.mvm(x) for _ in range(64)])
    assert chip.next_vector == 64
    assert len({tuple(r) for r in reads}) > 1
    ideal = (x @ chip.target_weights / chip.lsb)[0]
    one = np.abs(reads[0] - ideal).mean()
    many = np.abs(reads.mean(axis=0) - ideal).mean()
    assert many < one
    assert np.array_equal(chip.mvm(x, first_vector=5)[0], reads[5])
    assert chip.next_vector == 64  # an explicit earlier number does not move it back
    with pytest.raises(ValueError, match=r"^first_vector must be an integer >= 0 or None "
                                         r"\(the read counter\), not -1$"):
        chip.mvm(x, first_vector=-1)

    rng = np.random.default_rng(2)
    layers = [(rng.normal(0, 1, (16, 4)), np.zeros(4))]
    xs = rng.uniform(0, 1, (8, 16))
    net = map_network(layers, xs, tile=TILE, model="adc-only", seed=5)
    net.program(method="direct")
    a, b = net.forward(xs), net.forward(xs)
    assert not np.array_equal(a, b)
    assert np.array_equal(net.forward(xs, read=0), a)


@pytest.mark.parametrize("name", DATASETS)
def test_bundled_datasets_load(name):
    x_tr, x_te, y_tr, y_te = load_dataset(name)
    assert x_tr.shape[1] == x_te.shape[1] and len(x_tr) > len(x_te) > 0
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    assert set(np.unique(y_tr)) == set(range(int(y_tr.max()) + 1))


def test_npz_dataset_and_evaluate_command(tmp_path, capsys):
    """A .npz of one's own (labels any integers), through ``aimc evaluate``: the demo's
    condition table."""
    from aimc.cli import main

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (120, 6))
    y = np.where(x[:, 0] + x[:, 1] > 0, 7, 3)
    path = tmp_path / "mine.npz"
    np.savez(path, X=x, y=y)
    x_tr, x_te, y_tr, y_te = load_dataset(path)
    assert set(y_tr) == {0, 1} and len(x_te) == 36
    assert main(["evaluate", "--dataset", str(path), "--rows", "16", "--cols", "16",
                 "--hidden", "8", "--no-hwa", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    for label in ("floating point", "8-bit digital", "uncalibrated", "on-chip calibration",
                  "+ host affine correction", "1d later, no drift compensation",
                  "1mo later, drift compensation"):
        assert label in out
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["networks"]["plain"]["1mo_comp"] > 0.8


@pytest.mark.parametrize("call, message", [
    (lambda: map_network("net", np.zeros((2, 2))),
     r"^net must be a list of \(weights, bias\) arrays or a fitted scikit-learn "
     r"MLPClassifier/MLPRegressor, not str$"),
    (lambda: map_network([], np.zeros((2, 2))), r"^net must have at least one layer, not none$"),
    (lambda: map_network([(np.ones((3, 2)), np.zeros(2)), (np.ones((3, 1)), np.zeros(1))],
                         np.zeros((2, 3))),
     r"^layer 1 takes 3 inputs but layer 0 gives 2$"),
    (lambda: map_network([(np.ones((3, 2)), np.zeros(3))], np.zeros((2, 3))),
     r"^layer 0: weights must be \(inputs, outputs\) and bias \(outputs,\), not \(3, 2\) "
     r"and \(3,\)$"),
    (lambda: map_network([(np.ones((3, 2)), np.zeros(2))], np.zeros((2, 4))),
     r"^x_train must have shape \(examples, 3\), not \(2, 4\)$"),
    (lambda: map_network([(np.ones((3, 2)), np.zeros(2))], np.ones((2, 3)), seed=-1),
     r"^seed must be an integer in 0..2\*\*64-1, not -1$"),
])
def test_bad_networks_are_refused(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_unfitted_estimator_and_bad_calls_are_refused():
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(ValueError, match=r"^net must be a fitted MLPClassifier or "
                                         r"MLPRegressor \(call fit first\), not an unfitted "
                                         r"MLPClassifier$"):
        map_network(MLPClassifier(), np.zeros((2, 2)))
    net = map_network([(np.ones((3, 2)), np.zeros(2))], np.ones((4, 3)), tile=TILE)
    with pytest.raises(RuntimeError, match=r"^forward\(\) needs programmed chips: call "
                                           r"program\(\) first$"):
        net.forward(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"^method must be one of verify, direct, not 'x'$"):
        net.program(method="x")
    net.program(method="direct")
    with pytest.raises(ValueError, match=r"^backend must be one of batch, cosim, not 'gpu'$"):
        net.forward(np.ones((1, 3)), backend="gpu")
    with pytest.raises(ValueError, match=r"^time must be a number of seconds >= 0 after the "
                                         r"reference read, not -1$"):
        net.forward(np.ones((1, 3)), time=-1)
    with pytest.raises(RuntimeError, match=r"^compensate_drift\(\) needs a captured drift "
                                           r"reference"):
        net.compensate_drift()


@pytest.mark.cosim
@pytest.mark.slow
def test_cosim_backend_equals_the_batch_path(tmp_path):
    """The same forward call with backend="cosim": each block (a 10-6-3 network on 8x8 tiles:
    three blocks) replays its history on the RTL (program-and-verify, the calibration engine
    with the block's drift reference, drift compensation a day later) and streams the
    inputs; every engine result and every output equals the batch path's bit for bit (the
    call raises otherwise)."""
    rng = np.random.default_rng(7)
    layers = [(rng.normal(0, 1, (10, 6)), rng.normal(0, 0.1, 6)),
              (rng.normal(0, 1, (6, 3)), np.zeros(3))]
    x = rng.uniform(0, 1, (30, 10))
    net = map_network(layers, x, tile=TileConfig(rows=8, cols=8), model="pcm", seed=11)
    net.program(k=3)
    net.calibrate(k=3)
    net.compensate_drift(time=86400.0, k=3)
    batch_twin = net.forward(x[:4], read=10_000)
    got = net.forward(x[:4], read=10_000, backend="cosim", work=tmp_path)
    assert np.array_equal(got, batch_twin)
    assert len(list(tmp_path.glob("*/results.npy"))) == 3
