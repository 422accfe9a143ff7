"""``aimc evaluate``: any data set through the tile, the demo's condition table.

:func:`load_dataset` gives scikit-learn's bundled sets (``digits``, ``iris``, ``wine``,
``breast_cancer``: no download) or a ``.npz`` file of one's own (arrays ``X`` and ``y``, and
optionally ``X_test`` and ``y_test``), features scaled to ``[0, 1]`` from the training set.
:func:`evaluate` trains the demo's MLP on it (plain and hardware-aware, :func:`aimc.nn.train`),
maps both onto tiles (:func:`aimc.network.map_network`) and reports the accuracy under the
demo's conditions: floating point, 8-bit digital, uncalibrated, the on-chip calibration, the
host's affine correction, and a day and a month later without and with the engine's drift
compensation. The tiles run on the batch path (the model's golden prediction of the RTL) or,
with ``backend="cosim"``, in cosimulation of the generated Verilog.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .config import TileConfig

__all__ = ["DATASETS", "CONDITIONS", "evaluate", "format_table", "load_dataset"]

#: scikit-learn's bundled data sets :func:`load_dataset` knows by name.
DATASETS = ("digits", "iris", "wine", "breast_cancer")
DAY = 86400.0
#: The demo's conditions, in order: (key, label).
CONDITIONS = (("float", "floating point"), ("digital8", "8-bit digital"),
              ("raw", "uncalibrated"), ("cal", "on-chip calibration"),
              ("affine", "+ host affine correction"),
              ("1d", "1d later, no drift compensation"),
              ("1d_comp", "1d later, drift compensation"),
              ("1mo", "1mo later, no drift compensation"),
              ("1mo_comp", "1mo later, drift compensation"))


def load_dataset(name, seed: int = 0, test_fraction: float = 0.3):
    """``(x_train, x_test, y_train, y_test)`` of a data set, features scaled to [0, 1] by the
    training set's range (test values may fall outside; the tile clips its inputs), labels
    as integers ``0 .. classes-1``.

    Parameters
    ----------
    name : str or path
        One of :data:`DATASETS`, or a ``.npz`` file with ``X`` (examples, features) and
        ``y`` (examples,), and optionally ``X_test`` and ``y_test``.
    seed : int
        The stratified split's seed (when the file has no test set).
    test_fraction : float
        Share of the examples held out, in (0, 1).

    Raises
    ------
    ValueError
        An unknown name, a file that does not exist or lacks ``X``/``y``, arrays of the
        wrong shape, or a bad ``test_fraction``.
    """
    from sklearn.model_selection import train_test_split

    if not (isinstance(test_fraction, float) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be a number in (0, 1), not {test_fraction!r}")
    x_test = y_test = None
    if str(name) in DATASETS:
        import sklearn.datasets as skd

        d = getattr(skd, f"load_{name}")()
        x, y = d.data.astype(np.float64), d.target
    else:
        path = Path(name)
        if path.suffix != ".npz":
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)} or a .npz file, "
                             f"not {str(name)!r}")
        if not path.exists():
            raise ValueError(f"dataset file {str(path)!r} does not exist")
        with np.load(path) as f:
            if "X" not in f.files or "y" not in f.files:
                raise ValueError(f"dataset file {str(path)!r} must hold arrays 'X' and 'y', "
                                 f"not {', '.join(f.files) or 'none'}")
            x, y = f["X"].astype(np.float64), f["y"]
            if "X_test" in f.files and "y_test" in f.files:
                x_test, y_test = f["X_test"].astype(np.float64), f["y_test"]
    for what, a, b in (("X, y", x, y), ("X_test, y_test", x_test, y_test)):
        if a is not None and (a.ndim != 2 or b.shape != (len(a),)):
            raise ValueError(f"dataset arrays {what} must be (examples, features) and "
                             f"(examples,), not {a.shape} and {b.shape}")
    if x_test is None:
        x, x_test, y, y_test = train_test_split(x, y, test_size=test_fraction,
                                                random_state=seed, stratify=y)
    if x_test.shape[1] != x.shape[1]:
        raise ValueError(f"X_test has {x_test.shape[1]} features, X {x.shape[1]}")
    labels = np.unique(y)
    y, y_test = np.searchsorted(labels, y), np.searchsorted(labels, y_test)
    lo, span = x.min(axis=0), np.ptp(x, axis=0)
    span = np.where(span > 0, span, 1.0)
    return (x - lo) / span, (x_test - lo) / span, y, y_test


def evaluate(dataset="digits", *, tile: TileConfig | None = None, model="pcm", seed: int = 1,
             hidden: int = 32, hwa: bool = True, backend: str = "batch", sim: str = "icarus",
             k: int = 4, fit_examples: int = 64, images: int | None = None,
             log=print) -> dict:
    """Train, map and evaluate as the demo does, on any data set (see the module
    docstring); returns ``{"networks": {"plain": {condition: accuracy}, ...}, ...}``.

    Raises
    ------
    ValueError
        A bad data set, tile, model, backend or count (the message names it).
    """
    from .demo import _digital8
    from .network import TiledNetwork
    from .nn import train

    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be an integer >= 1 (hidden units), not {hidden!r}")
    t0 = time.perf_counter()
    x_tr, x_te, y_tr, y_te = load_dataset(dataset, seed=0)
    if images is not None:
        if isinstance(images, bool) or not isinstance(images, int) or \
                not 1 <= images <= len(x_te):
            raise ValueError(f"images must be an integer in 1..{len(x_te)}, not {images!r}")
        x_te, y_te = x_te[:images], y_te[:images]
    tile = TileConfig(rows=64, cols=64) if tile is None else tile
    x_fit = x_tr[:min(fit_examples, len(x_tr))]
    log(f"[1/3] {dataset}: {len(x_tr)} training and {len(x_te)} test examples, "
        f"{x_tr.shape[1]} features, {int(y_tr.max()) + 1} classes; training a "
        f"{x_tr.shape[1]}-{hidden}-{int(y_tr.max()) + 1} MLP"
        f"{', plain and hardware-aware' if hwa else ''}")
    nets = {"plain": train(x_tr, y_tr, hidden=hidden, seed=seed)}
    if hwa:
        nets["aware"] = train(x_tr, y_tr, hidden=hidden, seed=seed, aware=True)
    log(f"[2/3] {tile.rows}x{tile.cols} tiles, {model if isinstance(model, str) else model.name}"
        f" chips, {backend} backend")
    report = {"dataset": str(dataset), "tile": tile.to_dict(), "backend": backend,
              "images": len(x_te), "networks": {}}
    for name, mlp in nets.items():
        layers = [(mlp.w1, mlp.b1), (mlp.w2, mlp.b2)]
        net = TiledNetwork(layers, x_tr, tile=tile, model=model, seed=seed,
                           classes=np.arange(int(y_tr.max()) + 1))
        run = {"backend": backend, "sim": sim}
        acc = {"float": mlp.accuracy(x_te, y_te), "digital8": _digital8(mlp, x_tr, x_te, y_te)}
        net.program(k=k)
        acc["raw"] = net.score(x_te, y_te, correct=False, **run)
        acc["cal"] = net.score(x_te, y_te, correct=True, **run)
        net.fit_affine(x_fit, k=k)
        acc["affine"] = net.score(x_te, y_te, **run)
        scales = {}
        for tag, t in (("1d", DAY), ("1mo", 30 * DAY)):
            net.reset_drift_scale()
            acc[tag] = net.score(x_te, y_te, time=t, **run)
            comp = net.compensate_drift(time=t, k=k)
            scales[tag] = comp["scales"]
            acc[tag + "_comp"] = net.score(x_te, y_te, **run)
        report["networks"][name] = {**acc, "drift_scales": scales,
                                    "blocks": len(net.all_blocks())}
    report["wall_seconds"] = time.perf_counter() - t0
    log(f"[3/3] done in {report['wall_seconds']:.1f} s")
    return report


def format_table(report: dict) -> str:
    """The demo's condition table of a report of :func:`evaluate`."""
    nets = report["networks"]
    lines = [f"accuracy on {report['images']} test examples ({report['dataset']}, "
             f"{report['tile']['rows']}x{report['tile']['cols']} tiles, {report['backend']}):",
             f"  {'condition':44} " + " ".join(f"{n:>9}" for n in nets)]
    for key, label in CONDITIONS:
        lines.append(f"  {label:44} " + " ".join(f"{100 * nets[n][key]:8.1f}%" for n in nets))
    return "\n".join(lines)


def add_parser(sub, add_tile_options, model_of) -> None:
    """Register ``aimc evaluate`` on the command's subparsers (``add_tile_options`` and
    ``model_of`` are the CLI's tile options and ``--model`` reader)."""
    e = sub.add_parser("evaluate", help="a data set through the tile (batch model or "
                                        "cosimulation): the demo's condition table")
    e.add_argument("--dataset", default="digits",
                   help=f"{', '.join(DATASETS)}, or a .npz file with X and y "
                        f"(default %(default)s)")
    e.add_argument("--model", default="pcm", help="preset name or .toml/.json file "
                                                  "(default %(default)s)")
    e.add_argument("--seed", type=int, default=1, help="training and chip seed "
                                                       "(default %(default)s)")
    e.add_argument("--hidden", type=int, default=32, help="hidden units (default %(default)s)")
    e.add_argument("--backend", default="batch", choices=("batch", "cosim"),
                   help="batch model (default) or cosimulation of the Verilog")
    e.add_argument("--sim", default="icarus", choices=("icarus", "verilator"))
    e.add_argument("--images", type=int, default=None, help="test examples used (default all)")
    e.add_argument("--no-hwa", action="store_true", help="plain training only")
    e.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    add_tile_options(e, "evaluate", rows=64, cols=64)

    def run(args) -> int:
        import json

        from .cli import _tile

        if args.seed < 0 or args.seed >= 2**64:
            raise ValueError(f"--seed must be an integer in 0..2**64-1, not {args.seed}")
        report = evaluate(args.dataset, tile=_tile(args), model=model_of(args.model),
                          seed=args.seed, hidden=args.hidden, hwa=not args.no_hwa,
                          backend=args.backend, sim=args.sim, images=args.images)
        print(format_table(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        return 0

    e.set_defaults(func=run)
