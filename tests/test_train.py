"""aimc train: the training algorithms on the batch path against an independent numpy
statement of them, learning, reproducibility, refusals, and the cosimulated slice."""

import contextlib
import io
import math

import numpy as np
import pytest

from aimc import TileConfig
from aimc.cli import main
from aimc.model.config import preset
from aimc.train import TrainConfig, build, load_dataset, train

TILE = TileConfig(rows=8, cols=8, training=True)

#: Constant-step devices without any spread or noise, ideal converters: every pulse moves
#: a weight by exactly dw_min and a result is the rounded ideal one.
IDEAL = preset("gokmen-vlasov").replace(
    name="ideal-training",
    update=dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                w_min_dtod=0.0),
    integrator=dict(gain_error=0.0, offset=0.0),
    adc=dict(cap_mismatch=0.0, comparator_offset=0.0, input_noise=0.0))


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """Two well separated classes of eight features."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 160)
    centers = np.array([[1, 1, 0, 0, 1, 0, 1, 0], [0, 0, 1, 1, 0, 1, 0, 1]], float)
    x = centers[y] + 0.3 * rng.normal(size=(len(y), 8))
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, X=x, y=y)
    return path


def _codes(v, x_max):
    """Independent statement of the scaling: the largest magnitude at x_max."""
    peak = np.abs(v).max()
    step = peak / x_max if peak else 1.0
    return np.clip(np.rint(v / step), -x_max, x_max).astype(np.int64), step


@pytest.mark.parametrize("algorithm", ["sgd", "ttv2"])
def test_tiny_network_steps_match_numpy(blobs, algorithm):
    """An 8-4-2 network, step by step: each forward and backward value equals the numpy
    product of the codes and the device weights within half an ADC step, and each update
    changes every weight by dw_min times its pulses (up minus down) as the recorded fire
    masks give them, and nothing else; the expected change is -lr x d."""
    cfg = TrainConfig(hidden=(4,), tile=TILE, device=IDEAL, dataset=str(blobs),
                      algorithm=algorithm, lr=0.1, fast_lr=0.1, bl=63)
    x_tr, _, y_tr, _ = load_dataset(blobs, cfg.seed)
    net, _, model = build(cfg, 8, 2, record=True)
    dw = model.update.dw_min
    tiles = list(net.tiles())
    assert len(tiles) == (4 if algorithm == "ttv2" else 2)
    seen = [0] * len(tiles)
    checked = pulses = 0
    for n in range(6):
        before = [t.chip.training.w.copy() for t in tiles]
        layer0, layer1 = net.layers
        x = x_tr[n]
        xi, step = _codes(x, TILE.x_max)
        z = layer0.forward(x)
        w0 = layer0.weights
        tol = 0.5 * layer0.lsb * step / layer0.scale + 1e-12
        np.testing.assert_allclose(z - layer0.bias, (xi * step) @ w0, rtol=0, atol=tol)
        net.step(x, y_tr[n])
        for k, t in enumerate(tiles):
            for op in t.ops[seen[k]:]:
                if op["kind"] != "update":
                    continue
                fr, fc = op["fire_rows"].astype(int), op["fire_cols"].astype(int)
                sign = np.where(np.sign(op["x"])[:, None] * np.sign(op["vector"])[None, :] < 0,
                                1.0, -1.0)
                count = (fr.T @ fc) * sign      # pulses per device, up positive
                pulses += int(np.abs(count).sum())
                np.testing.assert_allclose(op["weights"] - before[k], dw * count, rtol=0,
                                           atol=1e-9)
                before[k] = op["weights"]
                checked += 1
            seen[k] = len(t.ops)
    assert checked >= 12 and pulses > 0


def test_backward_is_the_transposed_product(blobs):
    cfg = TrainConfig(hidden=(4,), tile=TILE, device=IDEAL, dataset=str(blobs))
    net, _, _ = build(cfg, 8, 2)
    layer = net.layers[0]
    d = np.array([0.3, -0.7, 0.05, 0.2])
    di, step = _codes(d, TILE.x_max)
    tol = 0.5 * layer.back_lsb * step / layer.scale + 1e-12
    np.testing.assert_allclose(layer.backward(d), layer.weights @ (di * step), rtol=0, atol=tol)


def test_managed_update_follows_sgd_on_average(blobs):
    """Many updates of one layer from the same x and d (devices far from their bounds):
    the mean weight change is -lr x d, within three standard errors of the binomial pulse
    counts and the rounding of the codes."""
    cfg = TrainConfig(hidden=(4,), tile=TILE, device=IDEAL, dataset=str(blobs), lr=0.01)
    net, _, model = build(cfg, 8, 2)
    layer, dw = net.layers[0], model.update.dw_min
    x = np.array([1.0, 0.5, 0.0, -0.25, 0.8, 0.1, 0.0, 0.6])
    d = np.array([0.4, -0.2, 0.1, -0.05])
    n = 100
    w0 = layer.weights.copy()
    for _ in range(n):
        layer.forward(x)
        layer.update(d, cfg.lr)
    mean = (layer.weights - w0) / n
    want = -cfg.lr * np.outer(x, d)
    m = np.abs(want) / dw                       # expected pulses per update
    bl = math.ceil(m.max())
    sem = dw * np.sqrt(m * (1 - m / bl) / n)
    assert np.all(np.abs(mean - want) <= 3 * sem + 0.03 * np.abs(want) + 1e-12)
    assert np.all(mean[want == 0] == 0)


def test_loss_decreases_and_learns_separable_data(blobs):
    cfg = TrainConfig(hidden=(4,), tile=TILE, dataset=str(blobs), epochs=3, lr=0.05)
    r = train(cfg, log=lambda *a: None)
    losses = [e["loss"] for e in r["epochs"]]
    assert losses[-1] < losses[0]
    assert r["final_test_accuracy"] >= 0.9
    assert r["counts"]["updates"] == 2 * 3 * r["dataset"]["train"]
    assert r["counts"]["pulses"] > 0 and r["energy_per_epoch_uj"] > 0


def test_training_is_reproducible(blobs):
    cfg = TrainConfig(hidden=(4,), tile=TILE, dataset=str(blobs), epochs=1, algorithm="ttv2")
    quiet = dict(log=lambda *a: None)
    a, b = train(cfg, **quiet), train(cfg, **quiet)
    assert [e["test_accuracy"] for e in a["epochs"]] == [e["test_accuracy"] for e in b["epochs"]]
    assert a["counts"] == b["counts"] and a["weight_error"] == b["weight_error"]
    c = train(TrainConfig(hidden=(4,), tile=TILE, dataset=str(blobs), epochs=1,
                          algorithm="ttv2", seed=2), **quiet)
    assert c["counts"] != a["counts"]


@pytest.mark.parametrize("argv, fragment", [
    (["--epochs", "0"], "--epochs must be an integer in 1..10000, not 0"),
    (["--device", "pcm"], "--device must be a preset with pulsed devices: gokmen-vlasov, "
                          "reram-sb, ecram, not 'pcm'"),
    (["--lr", "0.5"], "--lr must be at most 0.408 on gokmen-vlasov (dw_min 0.0016): 0.5 asks "
                      "for 312 pulses per unit product"),
    (["--algorithm", "ttv2", "--fast-lr", "1"], "--fast-lr must be at most 0.408"),
    (["--bl", "256"], "--bl must be an integer in 1..255, not 256"),
    (["--algorithm", "adam"], "--algorithm must be one of sgd, ttv2, not 'adam'"),
    (["--no-training"], "--training must be on"),
    (["--dataset", "nosuch.npz"], "--dataset must be an existing .npz file, not 'nosuch.npz'"),
    (["--dataset", "mnist"], "--dataset must be one of digits, iris, wine, breast_cancer or "
                             "a .npz file, not 'mnist'"),
    (["--hidden", "32,x"], "--hidden must be layer widths such as 32 or 64,32, not '32,x'"),
    (["--hidden", "0"], "--hidden must be layer widths in 1..4096"),
    (["--momentum", "2"], "--momentum must be a number in 0..1, not 2.0"),
    (["--lr", "nan"], "--lr must be a positive finite number, not nan"),
    (["--cosim", "--device", "gokmen-vlasov,reram-sb"], "--cosim runs one device, one "
                                                        "algorithm and one seed, not 2 "
                                                        "combinations"),
    (["--seed", "1,x"], "--seed must be integers such as 1 or 1,2,3, not '1,x'"),
    (["--seed", "-1"], "--seed must be an integer in 0..4294967295, not -1"),
    (["--cosim", "--steps", "0"], "--steps must be an integer in 1..100000, not 0"),
])
def test_bad_options_are_refused_before_any_work(argv, fragment, tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["train", "--out", str(tmp_path / "out"), *argv])
    assert rc == 2 and fragment in err.getvalue(), err.getvalue()
    assert not (tmp_path / "out").exists()


def test_report_and_plots(blobs, tmp_path):
    rc = main(["train", "--rows", "8", "--cols", "8", "--hidden", "4", "--dataset",
               str(blobs), "--epochs", "2", "--algorithm", "sgd,ttv2", "--seed", "1,2",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    import json

    doc = json.loads((tmp_path / "report.json").read_text())
    assert [(r["config"]["algorithm"], r["config"]["seed"]) for r in doc["runs"]] == [
        ("sgd", 1), ("sgd", 2), ("ttv2", 1), ("ttv2", 2)]
    for r in doc["runs"]:
        assert len(r["epochs"]) == 2 and 0 <= r["final_test_accuracy"] <= 1
        assert len(r["trace"]["step"]) == len(r["trace"]["weight"]) >= 2
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("\n| gokmen-vlasov |") == 2 and "| 2 | 2 |" in summary
    for name in ("learning_curves", "weight_error", "device_traces", "accuracy"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000


@pytest.mark.parametrize("algorithm", ["sgd", "ttv2"])
def test_cosimulated_slice_matches_bit_for_bit(sim, algorithm, blobs, tmp_path):
    if algorithm == "ttv2" and sim != "verilator":
        pytest.skip("Tiki-Taka's slice runs on Verilator (the same RTL operations as sgd's, "
                    "plus deterministic updates, which run on both simulators in pulsed_update)")
    """Three training steps of an 8-4-2 network, every tile's operations replayed on the
    generated Verilog: every result and every device after every update as on the batch
    path (asserted in the cocotb test train_replay)."""
    from aimc.train_report import cosim_slice

    cfg = TrainConfig(hidden=(4,), tile=TILE, dataset=str(blobs), algorithm=algorithm)
    doc = cosim_slice(cfg, 3, sim, tmp_path, log=lambda *a: None)
    tiles = 4 if algorithm == "ttv2" else 2
    assert len(doc["tiles"]) == tiles
    # 16 + 16 offset reads per tile, then per step a forward on every tile and a backward
    # on the last layer's (C) tiles.
    assert doc["results_matched"] >= tiles * 32 + 3 * tiles
    assert doc["updates_matched"] >= 3 * 2 and doc["device_weights_compared"] > 0
