"""``aimc demo``: a neural network on the cosimulated tile, from float weights to an accuracy
report with plots.

Two MLPs are trained on the host (one plainly, one hardware-aware). Each layer is mapped
onto tiles (:mod:`aimc.nn`); every tile-sized block runs in cosimulation of the generated
Verilog with its own chip of the analogue model: the calibration engine measures the
converters, the program-and-verify engine writes the weights, and the test images pass
through under every condition (raw, on-chip calibration, the host's affine correction, drift
with and without compensation). The second layer's inputs are the first layer's outputs of
the same condition. Every result is checked bit for bit against the batch model as it is
produced, and the report is computed from the results the RTL streamed out.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import TileConfig

__all__ = ["Condition", "accuracy_figure", "check_options", "conditions", "drift_figure",
           "run_demo", "wilson_interval"]

DAY = 86400.0


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    time: float
    mode: str   # one of aimc.cosim.settings.NETWORK_MODES


_WHEN = {"1h": "1 hour", "1d": "1 day", "1w": "1 week", "1mo": "1 month", "1y": "1 year"}


def conditions(full: bool) -> list[Condition]:
    """The tile conditions, in the order a cosimulation runs them (time never decreases)."""
    out = [Condition("raw", "uncalibrated", 0.0, "raw"),
           Condition("cal", "on-chip calibration", 0.0, "cal"),
           Condition("affine", "+ host affine correction", 0.0, "affine")]
    drift = ([("1h", 3600.0), ("1d", DAY), ("1w", 7 * DAY), ("1mo", 30 * DAY),
              ("1y", 365 * DAY)] if full else [("1d", DAY), ("1mo", 30 * DAY)])
    for tag, t in drift:
        when = _WHEN[tag]
        out.append(Condition(f"{tag}", f"{when} later, no drift compensation", t, "affine"))
        out.append(Condition(f"{tag}_comp", f"{when} later, drift compensation", t,
                             "affine_drift"))
    return out


#: Test images of the digits split (30 % of scikit-learn's 1797).
TEST_IMAGES = 540
#: Largest demo seed: each block's chip seed is ``seed * 1000 + run``.
SEED_MAX = 2 ** 32 - 1


def check_options(seed, images, *, names=("seed", "images")) -> tuple[int, int | None]:
    """``seed`` and ``images`` checked (``names``: what to call them in a message, the
    command line's ``--seed``, ``--images``).

    Raises
    ------
    ValueError
        ``seed`` is not an integer in 0..2**32-1, ``images`` (unless None) not in 1..540.
    """
    from .numeric import as_int

    seed = as_int(seed, names[0], 0, SEED_MAX, allowed="an integer in 0..2**32-1")
    if images is not None:
        images = as_int(images, names[1], 1, TEST_IMAGES,
                        allowed=f"a number of test images in 1..{TEST_IMAGES}")
    return seed, images


def _cosim_block(cfg, sim, model, seed, plan, work: Path, label: str, progress: bool):
    """Run one block's plan in cosimulation on a chip of ``model`` and seed ``seed``;
    returns its stats. ``progress``: show where the run is (calibration, programming
    rows, MVMs, each with its rate) and a final line with its figures."""
    from .cosim import runner
    from .cosim.settings import CosimSettings, NetworkPlan
    from .progress import Bar, run_with_progress

    plan = NetworkPlan(**plan, progress=work / "progress.json")
    settings = CosimSettings(tile=cfg, model=model, chip_seed=seed, cal_k=4, network=plan,
                             stats=work / "stats.json", module="aimc.cosim.test_network",
                             tests="network_block")
    started = time.perf_counter()
    bar = Bar(label) if progress else None
    try:
        run_with_progress(lambda: runner.run(settings, sim, log_file=work / "cosim.log"),
                          plan.progress, bar)
    except Exception as exc:
        if bar:
            bar.close("FAILED")
        raise RuntimeError(f"cosimulation of {label} failed ({exc}); log: "
                           f"{work / 'cosim.log'}") from None
    stats = settings.read_stats("network_block")
    stats["wall_seconds"] = time.perf_counter() - started
    if bar:
        bar.close(f"{stats['mvms_checked']} MVMs checked bit for bit")
    return stats


def _layer_model(model, lsb):
    return model.replace(name=f"{model.name}-lsb{lsb:g}", adc={"lsb": float(lsb)})


def run_demo(out="build/report", *, full: bool = False, sim: str = "verilator", seed: int = 1,
             model_name: str = "pcm", tile: TileConfig | None = None, images: int | None = None,
             hwa: bool = True, progress: bool = True, log=print) -> dict:
    """Run the demo; returns the report (also written to ``out``).

    Raises
    ------
    ValueError
        A bad ``seed`` or ``images`` (see :func:`check_options`), ``sim`` or model.
    """
    from .model import Chip
    from .model import config as mc
    from .model.energy import estimate
    from .nn import load_digits, map_layer, train

    t_start = time.perf_counter()
    seed, images = check_options(seed, images)
    tile = tile or TileConfig(rows=64, cols=64)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = mc.preset(model_name) if isinstance(model_name, str) else model_name
    if not isinstance(model, mc.ModelConfig):
        raise TypeError(f"model_name must be a preset name or a ModelConfig, not {model!r}")
    conds = conditions(full)
    x_tr, x_te, y_tr, y_te = load_digits(seed=0)
    assert len(x_te) == TEST_IMAGES
    n_test = len(x_te) if images is None else images
    if images is None and not full:
        n_test = 180
    x_te, y_te = x_te[:n_test], y_te[:n_test]
    n_fit = min(128 if full else 64, len(x_tr))
    x_fit = x_tr[:n_fit]
    log(f"[1/4] training on {len(x_tr)} digits (8x8 images): 64-32-10 MLP"
        f"{', plain and hardware-aware' if hwa else ''}")
    nets = {"plain": train(x_tr, y_tr, seed=seed)}
    if hwa:
        nets["aware"] = train(x_tr, y_tr, seed=seed, aware=True)
    report = {"tile": tile.to_dict(), "model": model.name, "seed": seed, "images": n_test,
              "conditions": [dataclasses.asdict(c) for c in conds], "networks": {}}
    chip0 = Chip(tile, model)
    log(f"[2/4] mapping onto {tile.rows}x{tile.cols} tiles ({tile.input_mode}, "
        f"{tile.adc_bits}-bit ADCs); {len(conds)} conditions, {n_test} test images")
    from .cosim import runner

    runner.check_simulator(sim)
    # The simulator model is built once for every block (the first time: minutes for
    # Verilator), announced as it starts and ends rather than hidden in a block's progress.
    runner.build(tile, sim, announce=log if progress else None)
    wall_cosim = 0.0
    mvms = 0
    run_no = 0
    predictions = {}
    for net_name, net in nets.items():
        rec = {"float": net.accuracy(x_te, y_te), "digital8": _digital8(net, x_tr, x_te, y_te)}
        layers = []
        # Layer 1 on the test images (the same for every condition).
        h_fit = net.hidden(x_fit)
        lay_in = {c.name: x_te for c in conds}
        fit_in = x_fit
        outs = {}
        for li, (w, b, x_train) in enumerate(((net.w1, net.b1, x_tr),
                                              (net.w2, net.b2, net.hidden(x_tr)))):
            m = map_layer(w, x_train, tile, chip0.lsb, chip0.w_max)
            lsb = m.lsb
            layer_model = _layer_model(model, lsb)
            codes = {c.name: {} for c in conds}
            fit_codes = {}
            block_stats = []
            for bi, (r0, c0) in enumerate(m.blocks):
                run_no += 1
                work = out / "runs" / f"{net_name}-l{li + 1}-b{bi}"
                work.mkdir(parents=True, exist_ok=True)
                np.save(work / "targets.npy", m.block_targets(r0, c0))
                xf = m.block_inputs(m.inputs(fit_in), r0)
                np.save(work / "fit_inputs.npy", xf)
                np.save(work / "fit_ideal.npy", m.ideal_codes(m.inputs(fit_in), r0, c0))
                if li == 0:  # for the plots: what an ideal tile gives the test images
                    np.save(work / "test_ideal.npy", m.ideal_codes(m.inputs(x_te), r0, c0))
                phases = []
                for c in conds:
                    np.save(work / f"x_{c.name}.npy", m.block_inputs(m.inputs(lay_in[c.name]), r0))
                    phases.append({"name": c.name, "time": c.time, "mode": c.mode,
                                   "inputs": str(work / f"x_{c.name}.npy"),
                                   "out": str(work / f"y_{c.name}.npy")})
                plan = {"targets": work / "targets.npy", "fit_inputs": work / "fit_inputs.npy",
                        "fit_ideal": work / "fit_ideal.npy", "fit_out": work / "fit_raw.npy",
                        "phases": phases}
                label = f"run {run_no}: {net_name} layer {li + 1} block {bi + 1}/{len(m.blocks)}"
                chip_seed = seed * 1000 + run_no
                st = _cosim_block(tile, sim, layer_model, chip_seed, plan, work, label,
                                  progress)
                wall_cosim += st["wall_seconds"]
                mvms += st["mvms_checked"]
                for c in conds:
                    codes[c.name][(r0, c0)] = np.load(work / f"y_{c.name}.npy")
                fit_codes[(r0, c0)] = np.load(work / "fit_raw.npy")
                block_stats.append({k: st[k] for k in ("program", "period_cycles",
                                                       "latency_cycles", "mvms_checked",
                                                       "wall_seconds", "phases")}
                                   | {"block": [r0, c0], "chip_seed": chip_seed,
                                      "work": str(work)})
            outs[li] = {c.name: m.outputs(codes[c.name]) + b for c in conds}
            layers.append({"in_scale": m.in_scale, "w_scale": m.w_scale,
                           "out_scale": m.out_scale, "adc_lsb": lsb, "blocks": block_stats,
                           "shape": list(w.shape)})
            if li == 0:
                lay_in = {c.name: np.maximum(outs[0][c.name], 0.0) for c in conds}
                fit_in = h_fit
        for c in conds:
            pred = np.argmax(outs[1][c.name], axis=1)
            predictions[f"{net_name}/{c.name}"] = pred
            rec[c.name] = float(np.mean(pred == y_te))
        rec["layers"] = layers
        report["networks"][net_name] = rec
        np.savez(out / f"net_{net_name}.npz", w1=net.w1, b1=net.b1, w2=net.w2, b2=net.b2)
    np.savez(out / "predictions.npz", labels=y_te, **predictions)
    log("[3/4] cosimulation done")
    first = report["networks"]["plain"]["layers"][0]["blocks"][0]
    e = estimate(tile, model)
    report.update({
        "mvms": mvms, "cosim_wall_seconds": wall_cosim,
        "period_cycles": first["period_cycles"], "latency_cycles": first["latency_cycles"],
        "clock_ghz": model.energy.clock_ghz,
        "time_per_mvm_ns": first["period_cycles"] / model.energy.clock_ghz,
        "energy_pj_per_mvm": e.total_pj, "tops": e.tops, "tops_per_watt": e.tops_per_watt,
        "wall_seconds": time.perf_counter() - t_start,
    })
    work = Path(report["networks"]["plain"]["layers"][0]["blocks"][0]["work"])
    ideal = np.load(work / "test_ideal.npy")
    used = np.ptp(ideal, axis=0) > 0
    fs = 2 ** (tile.adc_bits - 1)
    report["layer1_error_rms_percent"] = {
        name: float(np.sqrt(np.mean(((np.load(work / f"y_{name}.npy") - ideal)[:, used]
                                     / fs * 100) ** 2))) for name in ("raw", "cal", "affine")}
    _write(out, report, x_te, y_te, conds)
    log(f"[4/4] report in {out}: summary.md, report.json, predictions.npz and the plots")
    return report


def _digital8(net, x_tr, x_te, y_te) -> float:
    """Accuracy with 8-bit weights (per layer, symmetric) and 8-bit activations (unsigned,
    scaled to the training data), integer arithmetic."""
    def q(a, scale):
        return np.clip(np.round(a / scale), -127, 127)

    s_w1, s_w2 = np.abs(net.w1).max() / 127, np.abs(net.w2).max() / 127
    s_x = np.abs(x_tr).max() / 127
    s_h = np.abs(net.hidden(x_tr)).max() / 127
    h = np.maximum(q(x_te, s_x) @ q(net.w1, s_w1) * (s_x * s_w1) + net.b1, 0.0)
    z = q(h, s_h) @ q(net.w2, s_w2) * (s_h * s_w2) + net.b2
    return float(np.mean(np.argmax(z, axis=1) == y_te))


def _write(out: Path, report: dict, x_te, y_te, conds):
    (out / "report.json").write_text(json.dumps(report, indent=2))
    nets = report["networks"]
    lines = [f"# Digits MLP on the cosimulated tile ({report['model']} preset)", "",
             f"{report['images']} test images, {report['tile']['rows']}x"
             f"{report['tile']['cols']} tiles, chip seed {report['seed']}. Every tile result "
             f"came from cosimulation of the generated Verilog and matched the batch model "
             f"bit for bit ({report['mvms']} MVMs).", "",
             "| condition | " + " | ".join(nets) + " |",
             "| --- | " + " | ".join("---" for _ in nets) + " |"]
    rows = [("float", "floating point"), ("digital8", "8-bit digital")] + \
        [(c.name, c.label) for c in conds]
    for key, label in rows:
        lines.append(f"| {label} | " + " | ".join(f"{100 * nets[n][key]:.1f} %" for n in nets)
                     + " |")
    p = nets["plain"]["layers"][0]["blocks"][0]["program"]
    lines += ["", f"MVM period {report['period_cycles']} cycles, latency "
              f"{report['latency_cycles']} cycles ({report['time_per_mvm_ns']:.0f} ns per MVM "
              f"at {report['clock_ghz']:g} GHz); energy estimate "
              f"{report['energy_pj_per_mvm']:.0f} pJ per MVM, {report['tops']:.3f} TOPS, "
              f"{report['tops_per_watt']:.1f} TOPS/W.",
              "Layer 1 MVM error against an ideal tile (test images, first block): "
              + ", ".join(f"{k} {v:.2f} %" for k, v in report["layer1_error_rms_percent"].items())
              + " RMS of full scale.",
              f"Programming (first block): {p['passed']}/{p['devices']} devices within "
              f"tolerance, {p['pulses']} pulses, {p['cycles']} cycles.",
              f"Cosimulation wall time {report['cosim_wall_seconds']:.0f} s; the whole run "
              f"{report['wall_seconds']:.0f} s.", "",
              "![accuracy](accuracy.png)", "", "![drift](drift.png)", "",
              "![transfer](transfer.png)", "", "![error](error.png)", ""]
    (out / "summary.md").write_text("\n".join(lines))
    _plots(out, report, conds)


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % (``z`` = 1.96) Wilson score interval of a binomial proportion ``p``
    observed in ``n`` trials: the accuracy's uncertainty from the finite test set (it stays
    inside [0, 1], also at 0 % and 100 %)."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # It holds p (at 0 and 1 the bound equals p, which rounding can put a few ulps off: an
    # error bar of negative length, which matplotlib refuses).
    return float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half)))


#: How the networks are drawn and named in the plots.
_NET_STYLE = {"plain": ("plain training", "tab:blue", "o", "//"),
              "aware": ("hardware-aware training", "tab:orange", "s", "..")}


def _net_style(name: str, i: int):
    return _NET_STYLE.get(name, (name, f"C{i}", "^", "xx"))


def _what(report: dict) -> str:
    t = report["tile"]
    return f"{report['model']} chips, {t['rows']}x{t['cols']} {t['input_mode']} tiles"


def accuracy_figure(report: dict, conds):
    """Test accuracy per condition and network: horizontal bars named by condition, the
    95 % binomial (Wilson) interval of each as an error bar, the axis from 0 to 100 %."""
    import matplotlib.pyplot as plt

    nets = report["networks"]
    n = report["images"]
    rows = [("float", "floating point"), ("digital8", "8-bit digital")] + \
        [(c.name, c.label) for c in conds]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) * max(len(nets), 1) + 1.6))
    height = 0.8 / len(nets)
    y = np.arange(len(rows))
    for i, name in enumerate(nets):
        label, color, _, hatch = _net_style(name, i)
        acc = np.array([100 * nets[name][k] for k, _ in rows])
        lo, hi = np.array([wilson_interval(nets[name][k], n) for k, _ in rows]).T * 100
        pos = y + (i - (len(nets) - 1) / 2) * height
        ax.barh(pos, acc, height, xerr=[acc - lo, hi - acc], color=color, hatch=hatch,
                edgecolor="white", label=label, error_kw={"ecolor": "black", "capsize": 2,
                                                          "lw": 0.8})
        for yy, a, h in zip(pos, acc, hi, strict=True):
            ax.text(h + 0.8, yy, f"{a:.1f} %", va="center", fontsize=7)
    ax.set_yticks(y, [label for _, label in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel(f"test accuracy, % of {n} images (error bars: 95 % binomial interval)")
    ax.set_title(f"Digits MLP accuracy per condition: {_what(report)}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=len(nets), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def drift_figure(report: dict, conds):
    """Accuracy against time after programming, without and with drift compensation, per
    network: distinct colours (network), line styles and markers (compensation), a small
    horizontal offset so that equal values stay visible, binomial error bars."""
    import matplotlib.pyplot as plt

    nets = report["networks"]
    n = report["images"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drift = [c for c in conds if c.time > 0]
    series = [(name, comp) for name in nets for comp in (False, True)]
    lows = []
    for j, (name, comp) in enumerate(series):
        label, color, marker, _ = _net_style(name, list(nets).index(name))
        pts = [(0.0, nets[name]["affine"])] + [(c.time, nets[name][c.name]) for c in drift
                                               if (c.mode == "affine_drift") == comp]
        shift = 1.12 ** (j - (len(series) - 1) / 2)  # a dodge on the log axis
        t = np.array([max(p[0], 60.0) / DAY for p in pts]) * shift
        acc = np.array([100 * p[1] for p in pts])
        lo, hi = np.array([wilson_interval(p[1], n) for p in pts]).T * 100
        lows.append(lo.min())
        ax.errorbar(t, acc, yerr=[acc - lo, hi - acc], color=color,
                    linestyle="-" if comp else "--", marker=marker if comp else "x",
                    markerfacecolor=color if comp else "none", capsize=2, lw=1.4,
                    label=f"{label}, {'with' if comp else 'without'} drift compensation")
    ax.axhline(100 * nets["plain"]["digital8"], color="gray", lw=1, linestyle=":",
               label="8-bit digital (no drift)")
    ax.set_xscale("log")
    span = max([c.time for c in drift] + [DAY])
    ticks = [(60.0, "programming\n(drawn at 1 min)"), (3600.0, "1 hour"), (DAY, "1 day"),
             (7 * DAY, "1 week"), (30 * DAY, "1 month"), (365 * DAY, "1 year")]
    ticks = [(t / DAY, text) for t, text in ticks if t <= span * 1.01]
    ax.set_xticks([t for t, _ in ticks], [text for _, text in ticks], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("time after programming (log scale)")
    low = np.floor(min(lows) / 5) * 5 - 5
    ax.set_ylim(max(low, 0), 100.5)
    ax.set_ylabel(f"test accuracy, % of {n} images (axis from {max(low, 0):.0f} %)")
    ax.set_title(f"Accuracy after drift: {_what(report)}\n(error bars: 95 % binomial "
                 f"interval)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def _plots(out: Path, report: dict, conds):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = report["networks"]
    for name, figure in (("accuracy.png", accuracy_figure), ("drift.png", drift_figure)):
        fig = figure(report, conds)
        fig.savefig(out / name, dpi=120)
        plt.close(fig)

    # Transfer curves and error histograms of the first layer's first block (plain net), on
    # the test images: the RTL's results in the raw, calibrated and affine phases.
    blk = nets["plain"]["layers"][0]["blocks"][0]
    work = Path(blk["work"])
    ideal = np.load(work / "test_ideal.npy")
    modes = (("raw", "raw"), ("cal", "on-chip calibration"), ("affine", "host affine"))
    got = {name: np.load(work / f"y_{name}.npy") for name, _ in modes}
    cols = [c for c in range(ideal.shape[1]) if np.ptp(ideal[:, c]) > 0][:3]
    fig, axes = plt.subplots(1, max(len(cols), 1), figsize=(10, 3.5), squeeze=False)
    for ax, c in zip(axes[0], cols, strict=False):
        for name, label in modes:
            ax.plot(ideal[:, c], got[name][:, c], ".", ms=3, label=label)
        lim = [ideal[:, c].min(), ideal[:, c].max()]
        ax.plot(lim, lim, "k-", lw=0.7)
        ax.set_title(f"column {c}")
        ax.set_xlabel("ideal result, ADC codes")
    axes[0][0].set_ylabel("tile result, ADC codes")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Transfer of layer 1 columns (test images, results streamed by the RTL): "
                 f"{_what(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "transfer.png", dpi=120)
    plt.close(fig)

    fs = 2 ** (report["tile"]["adc_bits"] - 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    used = np.ptp(ideal, axis=0) > 0
    for name, label in modes:
        err = (got[name] - ideal)[:, used].ravel() / fs * 100
        ax.hist(err, bins=60, histtype="step",
                label=f"{label}: {np.sqrt(np.mean(err**2)):.2f} % RMS")
    ax.set_xlabel("MVM error, % of full scale")
    ax.set_ylabel("results")
    ax.legend(fontsize=8)
    ax.set_title(f"Layer 1 MVM error against an ideal tile (test images)\n{_what(report)}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "error.png", dpi=120)
    plt.close(fig)
