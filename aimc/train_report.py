"""``aimc train``: runs of :func:`aimc.train.train` over device presets and algorithms, the
cosimulated slice, and the report (``report.json``, ``summary.md``, plots) in
``build/train``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .progress import ProgressBar
from .train import TrainConfig, layer_model, train

__all__ = ["cosim_slice", "run", "summary_table"]


def run(configs: list[TrainConfig], out="build/train", progress: bool = True,
        log=print) -> dict:
    """Train every configuration; write and return the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs, details = [], []
    for cfg in configs:
        label = f"{cfg.device_name} {cfg.algorithm}"
        log(f"training {label}: {cfg.epochs} epochs of {cfg.dataset}, hidden {cfg.hidden}, "
            f"{cfg.tile.rows}x{cfg.tile.cols} tiles, lr {cfg.lr:g}")
        bar = ProgressBar("examples") if progress else None
        started = {}

        def show(epoch, done, total, seconds, bar=bar, label=label, started=started):
            if bar is None or (done % 25 and done != total):
                return
            started.setdefault(epoch, time.perf_counter() - seconds)
            bar.show(f"{label}, epoch {epoch + 1}", done, total, started[epoch])
            if done == total:
                bar.end()

        report = train(cfg, progress=show, log=log)
        details.append(report)
        runs.append({k: v for k, v in report.items() if not k.startswith("_")
                     and k != "weight_differences"})
    doc = {"runs": runs, "generated_seconds": sum(r["seconds"] for r in runs)}
    (out / "report.json").write_text(json.dumps(doc, indent=2))
    (out / "summary.md").write_text(summary_table(doc) + "\n")
    _plots(out, runs, details)
    log(f"report: {out / 'report.json'}, {out / 'summary.md'} and plots in {out}")
    return doc


def groups(runs: list) -> dict:
    """The runs by (device, algorithm), in order of first appearance."""
    out: dict = {}
    for r in runs:
        out.setdefault((r["config"]["device"], r["config"]["algorithm"]), []).append(r)
    return out


def summary_table(doc: dict) -> str:
    """The runs of a report as a Markdown table, one row per device and algorithm: the
    mean over its seeds (and the range, with several), the float SGD twin's, the gap, the
    inference flow's accuracy, counts, the estimates and the wall time per epoch."""
    lines = ["| device | algorithm | seeds | epochs | test accuracy | float SGD | gap (pp) | "
             "inference flow | pulses per epoch | energy per epoch | array time per epoch | "
             "wall per epoch |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (device, algorithm), rs in groups(doc["runs"]).items():
        acc = np.array([r["final_test_accuracy"] for r in rs]) * 100
        ref = np.array([r["float_test_accuracy"] for r in rs]) * 100
        inf = [r["inference_flow"]["test_accuracy"] * 100 for r in rs if "inference_flow" in r]
        spread = f" ({acc.min():.2f}..{acc.max():.2f})" if len(rs) > 1 else ""
        epochs = len(rs[0]["epochs"])
        wall = np.median([e["seconds"] for r in rs for e in r["epochs"]])
        lines.append(
            f"| {device} | {algorithm} | {len(rs)} | {epochs} | {acc.mean():.2f} %{spread} | "
            f"{ref.mean():.2f} % | {ref.mean() - acc.mean():+.2f} | "
            f"{f'{np.mean(inf):.2f} %' if inf else '-'} | "
            f"{np.mean([r['counts']['pulses'] for r in rs]) / epochs:.3g} | "
            f"{np.mean([r['energy_per_epoch_uj'] for r in rs]):.3g} uJ | "
            f"{np.mean([r['time_per_epoch_ms'] for r in rs]):.3g} ms | {wall:.1f} s |")
    return "\n".join(lines)


def _plots(out: Path, runs: list, details: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{r['config']['device']} {r['config']['algorithm']}" for r in runs]
    grouped = groups(runs)
    labels = [f"{d} {a}" for d, a in grouped]
    # Learning curves against the float baseline (means over the seeds).
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rs in zip(labels, grouped.values(), strict=True):
        ep = [e["epoch"] for e in rs[0]["epochs"]]
        mean = np.mean([[100 * e["test_accuracy"] for e in r["epochs"]] for r in rs], axis=0)
        ref = np.mean([[100 * e["float_test_accuracy"] for e in r["epochs"]] for r in rs],
                      axis=0)
        line, = ax.plot(ep, mean, "-o", ms=3, label=label)
        ax.plot(ep, ref, "--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy, %")
    seeds = len(next(iter(grouped.values())))
    ax.set_title(f"on the tile (solid) and float SGD of the same network (dashed)"
                 f"{f', mean of {seeds} seeds' if seeds > 1 else ''}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)

    # Weight error against the float network (the first seed of each).
    fig, ax = plt.subplots(figsize=(7, 4))
    firsts = {}
    for name, d in zip(names, details, strict=True):
        firsts.setdefault(name, d)
    for name, d in firsts.items():
        ax.hist(d["weight_differences"], bins=80, histtype="step", label=name)
    ax.set_xlabel("weight on the tile - weight of the float network")
    ax.set_ylabel("weights")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "weight_error.png", dpi=120)
    plt.close(fig)

    # Traces of a few devices (the first seed of each).
    fig, axes = plt.subplots(1, len(grouped), figsize=(4 * len(grouped), 3.5), squeeze=False)
    for ax, name, rs in zip(axes[0], labels, grouped.values(), strict=True):
        r = rs[0]
        t = r["trace"]
        w, f = np.array(t["weight"]), np.array(t["float"])
        for k, (row, col) in enumerate(t["devices"]):
            line, = ax.plot(t["step"], w[:, k], label=f"({row}, {col})")
            ax.plot(t["step"], f[:, k], ":", color=line.get_color())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("examples")
    axes[0][0].set_ylabel("weight (dotted: float)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "device_traces.png", dpi=120)
    plt.close(fig)

    # Accuracy per device preset and algorithm (means over the seeds).
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(grouped))
    tile_acc = [100 * np.mean([r["final_test_accuracy"] for r in rs]) for rs in grouped.values()]
    float_acc = [100 * np.mean([r["float_test_accuracy"] for r in rs])
                 for rs in grouped.values()]
    ax.bar(x - 0.2, tile_acc, 0.4, label="on the tile")
    ax.bar(x + 0.2, float_acc, 0.4, label="float SGD")
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("final test accuracy, %")
    lo = min(tile_acc + float_acc)
    ax.set_ylim(max(0, lo - 10), 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)


def cosim_slice(cfg: TrainConfig, steps: int, sim: str = "verilator", out="build/train",
                log=print) -> dict:
    """The first ``steps`` training examples with every operation recorded, each tile's
    operations replayed through the cosimulated Verilog (cocotb test ``train_replay``):
    every result and every device's weight after every update must match. Returns and
    writes (``cosim.json``) the figures."""
    from .cosim import runner
    from .cosim.settings import CosimSettings

    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100_000:
        raise ValueError(f"--steps must be an integer in 1..100000, not {steps!r}")
    runner.check_simulator(sim)
    out = Path(out)
    work = out / "cosim"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = train(cfg, steps=steps, log=lambda *a: None)
    tiles = list(report["_net"].tiles())
    model = layer_model(cfg)
    log(f"recorded {steps} training steps on {len(tiles)} tiles in "
        f"{time.perf_counter() - t0:.1f} s; building and running {sim} (the first build of "
        f"a {cfg.tile.rows}x{cfg.tile.cols} training tile takes minutes)")
    results = []
    for k, tile in enumerate(tiles):
        path = tile.save(work / f"tile{k}.npz")
        settings = CosimSettings(tile=cfg.tile, model=model, chip_seed=tile.seed,
                                 tests="train_replay", replay=path, stalls=(0.1, 0.1),
                                 stats=work / f"tile{k}.json")
        t1 = time.perf_counter()
        runner.run(settings, sim, log_file=work / f"tile{k}.log")
        stats = settings.read_stats("train_replay")
        stats["seconds"] = time.perf_counter() - t1
        results.append(stats)
        log(f"  tile {k + 1}/{len(tiles)}: {stats['results_matched']} results and "
            f"{stats['updates_matched']} updates ({stats['device_weights_compared']} device "
            f"weights) matched the batch path, {stats['seconds']:.0f} s")
    doc = {"config": cfg.to_dict(), "steps": steps, "simulator": sim, "tiles": results,
           "results_matched": sum(r["results_matched"] for r in results),
           "updates_matched": sum(r["updates_matched"] for r in results),
           "device_weights_compared": sum(r["device_weights_compared"] for r in results),
           "seconds": time.perf_counter() - t0}
    (out / "cosim.json").write_text(json.dumps(doc, indent=2))
    log(f"cosimulated slice: {doc['results_matched']} results and {doc['updates_matched']} "
        f"updates matched bit for bit in {doc['seconds']:.0f} s ({out / 'cosim.json'})")
    return doc


def _list(text: str, option: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"--{option} must name at least one, not {text!r}")
    return items


def add_parser(sub, add_tile_options) -> None:
    """The ``aimc train`` subcommand."""
    from .train import ALGORITHMS, DATASETS

    d = TrainConfig()
    t = sub.add_parser("train", help="train an MLP on tiles: forward, backward and pulsed "
                       "updates on the analogue array, against float SGD")
    add_tile_options(t, "train", rows=64, cols=64, training=True)
    t.add_argument("--hidden", default="32", help="hidden layer widths, comma separated "
                   "(default %(default)s)")
    t.add_argument("--device", default=d.device, help="pulsed device preset(s), comma "
                   "separated: gokmen-vlasov, reram-sb, ecram (default %(default)s)")
    t.add_argument("--algorithm", default=d.algorithm, help=f"algorithm(s), comma separated: "
                   f"{', '.join(ALGORITHMS)} (default %(default)s)")
    t.add_argument("--dataset", default=d.dataset, help=f"{', '.join(DATASETS)}, or a .npz "
                   f"with X and y (default %(default)s)")
    for name, kind, text in (
            ("epochs", int, "passes over the training set"),
            ("lr", float, "learning rate"),
            ("bl", int, "most pulse slots of a gradient update, 1..255 (UPD_BL)"),
            ("fast_lr", float, "Tiki-Taka: learning rate of the fast array A"),
            ("transfer_every", int, "Tiki-Taka: examples between transfers"),
            ("transfer_lr", float, "Tiki-Taka: scale of A's reads into the buffer"),
            ("thres_scale", float, "Tiki-Taka: transfer threshold, steps of C"),
            ("momentum", float, "Tiki-Taka: share of the buffer kept after a transfer"),
            ("transfer_bl", int, "Tiki-Taka: most pulses per device and transfer"),
            ("out_bound", float, "converter range, full-scale input times unit weight")):
        t.add_argument("--" + name.replace("_", "-"), dest=name, type=kind,
                       default=getattr(d, name), help=f"{text} (default %(default)s)")
    t.add_argument("--seed", default=str(d.seed), help="seed(s) of chips, initial weights and "
                   "example order, comma separated: each combination runs once per seed "
                   "(default %(default)s)")
    t.add_argument("--out", default="build/train", help="report folder (default %(default)s)")
    t.add_argument("--cosim", action="store_true", help="instead of training: run the first "
                   "--steps steps through cosimulation of the Verilog and check every result "
                   "and device against the batch path")
    t.add_argument("--steps", type=int, default=20, help="steps of the cosimulated slice "
                   "(default %(default)s)")
    t.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .cli import _tile

    try:
        hidden = tuple(int(h) for h in _list(args.hidden, "hidden"))
    except ValueError:
        raise ValueError(f"--hidden must be layer widths such as 32 or 64,32, not "
                         f"{args.hidden!r}") from None
    try:
        seeds = [int(v) for v in _list(args.seed, "seed")]
    except ValueError:
        raise ValueError(f"--seed must be integers such as 1 or 1,2,3, not {args.seed!r}") \
            from None
    names = ("epochs", "lr", "bl", "fast_lr", "transfer_every", "transfer_lr",
             "thres_scale", "momentum", "transfer_bl", "out_bound")
    base = dict(hidden=hidden, tile=_tile(args), dataset=args.dataset,
                **{n: getattr(args, n) for n in names})
    # Every configuration is checked before any work starts.
    configs = [TrainConfig(**base, device=dev, algorithm=alg, seed=seed)
               for dev in _list(args.device, "device")
               for alg in _list(args.algorithm, "algorithm") for seed in seeds]
    if args.cosim:
        if len(configs) != 1:
            raise ValueError("--cosim runs one device, one algorithm and one seed, not "
                             f"{len(configs)} combinations")
        cosim_slice(configs[0], args.steps, args.sim, args.out)
        return 0
    run(configs, args.out, progress=not args.no_progress)
    return 0
