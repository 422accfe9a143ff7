"""The demo's plots are made for a reader: conditions by name, binomial error bars, titles
naming the model and the tile, distinct line styles, axes that say where they start
(figures built from a report of the demo's shape, no cosimulation)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from aimc.demo import accuracy_figure, conditions, drift_figure, wilson_interval  # noqa: E402

CONDS = conditions(full=False)
ACC = {"float": .967, "digital8": .967, "raw": .967, "cal": .967, "affine": .967, "1d": .944,
       "1d_comp": .967, "1mo": .867, "1mo_comp": .961}
REPORT = {"tile": {"rows": 64, "cols": 64, "input_mode": "pwm"}, "model": "pcm", "images": 180,
          "networks": {"plain": dict(ACC), "aware": {**ACC, "1mo": .944}}}


def test_wilson_interval():
    lo, hi = wilson_interval(1 / 180 * 179, 180)  # one image of 180 is 0.56 %
    assert 0.96 < lo < 0.97 and 0.999 < hi <= 1.0
    assert wilson_interval(1.0, 6) == pytest.approx((0.6097, 1.0), abs=1e-4)
    assert wilson_interval(0.0, 10)[0] == 0.0
    # Every observable accuracy lies inside its interval, 100 % exactly at the top (the
    # formula's rounding put 1.0 about 1e-16 above the upper bound at n = 6: the demo's
    # error bar had a negative length and matplotlib refused the plot).
    for n in (1, 6, 7, 180, 540):
        for k in range(n + 1):
            lo, hi = wilson_interval(k / n, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n)
    assert wilson_interval(1.0, 6)[1] == 1.0 and wilson_interval(0.0, 6)[0] == 0.0


def test_accuracy_plot_names_conditions_and_shows_intervals(tmp_path):
    fig = accuracy_figure(REPORT, CONDS)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["floating point", "8-bit digital", "uncalibrated", "on-chip calibration",
                      "+ host affine correction", "1 day later, no drift compensation",
                      "1 day later, drift compensation", "1 month later, no drift compensation",
                      "1 month later, drift compensation"]
    assert not any(key in " ".join(labels) for key in ("digital8", "1d_comp", "affine_drift"))
    assert ax.get_xlim() == (0, 110)  # the axis starts at 0 %
    assert "95 % binomial interval" in ax.get_xlabel() and "180 images" in ax.get_xlabel()
    assert "pcm chips, 64x64 pwm tiles" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["plain training", "hardware-aware training"]
    # Each network's bars carry error bars: the 95 % interval of its accuracy on 180 images.
    bars = [c for c in ax.containers if hasattr(c, "errorbar") and c.errorbar is not None]
    assert len(bars) == 2
    segments = bars[0].errorbar.lines[2][0].get_segments()
    lo, hi = wilson_interval(ACC["1mo"], 180)
    assert np.allclose(segments[7][:, 0], [100 * lo, 100 * hi])
    fig.savefig(tmp_path / "accuracy.png")
    plt.close(fig)
    assert (tmp_path / "accuracy.png").stat().st_size > 10_000


def test_drift_plot_has_a_title_and_lines_that_do_not_hide(tmp_path):
    fig = drift_figure(REPORT, CONDS)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Accuracy after drift: pcm chips, 64x64 pwm tiles")
    assert ax.get_ylabel() == "test accuracy, % of 180 images (axis from 75 %)"
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "programming\n(drawn at 1 min)", "1 hour", "1 day", "1 week", "1 month"]
    lines = [c.lines[0] for c in ax.containers]  # the four error-bar series
    assert len(lines) == 4
    styles = {(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in lines}
    assert len(styles) == 4  # network by colour, compensation by line style and marker
    assert {ln.get_linestyle() for ln in lines} == {"-", "--"}
    # Equal accuracies at the same moment are drawn side by side, not on top of each other.
    xs = [tuple(ln.get_xdata()) for ln in lines]
    assert len({x[0] for x in xs}) == 4
    fig.savefig(tmp_path / "drift.png")
    plt.close(fig)
    assert (tmp_path / "drift.png").stat().st_size > 10_000
