"""The main job, reduced: a few images through the whole flow in cosimulation (Icarus), with
a 32x32 tile so that the first layer splits into two blocks."""

import json

import numpy as np

from aimc import TileConfig
from aimc.demo import conditions, run_demo


def test_reduced_demo_reports_what_the_cosimulation_computed(tmp_path):
    tile = TileConfig(rows=32, cols=32)
    r = run_demo(tmp_path, sim="icarus", tile=tile, images=6, hwa=False, progress=False,
                 log=lambda *a: None)
    rec = r["networks"]["plain"]
    l1, l2 = rec["layers"]
    assert [b["block"] for b in l1["blocks"]] == [[0, 0], [32, 0]]  # 64 inputs, two blocks
    assert [b["block"] for b in l2["blocks"]] == [[0, 0]]
    net = np.load(tmp_path / "net_plain.npz")
    pred = np.load(tmp_path / "predictions.npz")
    labels = pred["labels"]
    assert len(labels) == 6 and r["mvms"] > 0
    for c in conditions(full=False):
        # Layer 1: the RTL's codes of both blocks, rescaled, summed, biased, ReLU; they are
        # exactly the inputs the second layer's run received.
        h = sum(np.load(f"{b['work']}/y_{c.name}.npy") for b in l1["blocks"]) * l1["out_scale"]
        h = np.maximum(h + net["b1"], 0.0)
        x2 = np.clip(np.round(h / l2["in_scale"]), -tile.x_max, tile.x_max)
        np.testing.assert_array_equal(np.load(f"{l2['blocks'][0]['work']}/x_{c.name}.npy"),
                                      x2, err_msg=c.name)
        # Layer 2: the classes are the argmax of the RTL's codes, and the accuracy printed
        # is the fraction of them that match the labels.
        z = np.load(f"{l2['blocks'][0]['work']}/y_{c.name}.npy")[:, :10] * l2["out_scale"] \
            + net["b2"]
        np.testing.assert_array_equal(np.argmax(z, axis=1), pred[f"plain/{c.name}"])
        assert rec[c.name] == np.mean(pred[f"plain/{c.name}"] == labels)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["networks"]["plain"]["affine"] == rec["affine"]
    for name in ("summary.md", "accuracy.png", "drift.png", "transfer.png", "error.png"):
        assert (tmp_path / name).stat().st_size > 0
