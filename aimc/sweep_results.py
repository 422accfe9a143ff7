"""The results of a sweep (:mod:`aimc.sweep`) on disk, and their summary: the Parquet
folder or CSV file written as job results arrive (resumable: the tasks already there are
skipped), :func:`read_results`, and :func:`summarize` (``summary.md`` and plots)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .sweep_tasks import _TEXT_COLUMNS, FIGURES, RUN_COLUMNS

__all__ = ["read_results", "summarize"]

# -- output ---------------------------------------------------------------------------------

class _Output:
    """The results table on disk: a folder of Parquet parts or one CSV file."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.suffix not in (".parquet", ".csv"):
            raise ValueError(f"output must end in .parquet (a folder of parts) or .csv, "
                             f"not {str(self.path)!r}")
        self.parquet = self.path.suffix == ".parquet"
        if self.parquet and self.path.exists() and not self.path.is_dir():
            raise ValueError(f"output {str(self.path)!r} exists and is not a folder of "
                             f"Parquet parts")

    def done(self) -> set[str]:
        """The task ids already written."""
        table = read_results(self.path) if self.path.exists() else None
        return set() if table is None else set(table.column("task_id").to_pylist())

    def write(self, rows: list[dict]) -> None:
        """Append ``rows`` (durably: a part is renamed into place whole; CSV lines are
        flushed to disk)."""
        if not rows:
            return
        import pyarrow as pa

        table = pa.Table.from_pylist(rows)
        if self.parquet:
            import pyarrow.parquet as pq

            self.path.mkdir(parents=True, exist_ok=True)
            n = len(list(self.path.glob("part-*.parquet")))
            while (self.path / f"part-{n:06d}.parquet").exists():
                n += 1
            final = self.path / f"part-{n:06d}.parquet"
            tmp = self.path / f".part-{n:06d}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, final)
            return
        import pyarrow.csv as pacsv

        self.path.parent.mkdir(parents=True, exist_ok=True)
        _trim_partial_line(self.path)
        header = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "ab") as fh:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=header))
            fh.write(sink.getvalue().to_pybytes())
            fh.flush()
            os.fsync(fh.fileno())


def _trim_partial_line(path: Path) -> None:
    """Drop a last line cut short by a crash (a CSV that does not end in a newline)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def read_results(path):
    """The results table at ``path`` (a pyarrow Table; a task written twice, which a run
    never does, would appear once), or None if nothing was written yet.

    Raises
    ------
    ValueError
        ``path`` is not a ``.parquet`` folder or a ``.csv`` file.
    """
    import pyarrow as pa

    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        parts = sorted(path.glob("part-*.parquet")) if path.is_dir() else []
        if not parts:
            return None
        table = pa.concat_tables([pq.read_table(p) for p in parts],
                                 promote_options="default")
    elif path.suffix == ".csv":
        import pyarrow.csv as pacsv

        if not path.exists() or path.stat().st_size == 0:
            return None
        _trim_partial_line(path)
        floats = [c for c in FIGURES if c not in ("bad_columns", "drift_weak")] + ["time"]
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={**{c: pa.string() for c in _TEXT_COLUMNS},
                          **{c: pa.float64() for c in floats}}))
        import pyarrow.compute as pc

        for c in floats:  # a CSV holds NaN as an empty field
            if c in table.column_names:
                i = table.column_names.index(c)
                table = table.set_column(i, c, pc.fill_null(table.column(c), float("nan")))
    else:
        raise ValueError(f"results must be a .parquet folder or a .csv file, "
                         f"not {str(path)!r}")
    ids = table.column("task_id").to_pylist()
    first = {}
    for i, t in enumerate(ids):
        first.setdefault(t, i)
    if len(first) != len(ids):
        table = table.take(sorted(first.values()))
    return table


# -- summary --------------------------------------------------------------------------------

def _conditions(table) -> tuple[list[str], list[tuple]]:
    """The parameter columns that vary (besides the chip) and each row's condition."""
    params = [c for c in table.column_names
              if c not in FIGURES and c not in RUN_COLUMNS
              and c not in ("task_id", "chip", "chip_seed")]
    cols = {c: table.column(c).to_pylist() for c in params}
    varying = [c for c in params if len(set(map(str, cols[c]))) > 1]
    conds = list(zip(*(cols[c] for c in varying), strict=True)) if varying else \
        [()] * table.num_rows
    return varying, conds


def _save_plot(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """Label, title and legend a summary plot, write it to ``path`` and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(out, folder=None, threshold: float = 10.0) -> dict:
    """Write ``summary.md`` and the plots of the results at ``out`` into ``folder``
    (default: beside ``out``, ``<name>-summary``): per condition (the parameters that
    vary, the chip aside) the median and 90th percentile of the errors and accuracies;
    the error distribution per condition; the yield curve (the fraction of chips whose
    calibrated worst-case error, drift compensated, is under a threshold, against the
    threshold); the accuracy distribution (network sweeps). Returns the per-condition
    figures, with the yield at ``threshold`` percent.

    Raises
    ------
    ValueError
        No results at ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = read_results(out)
    if table is None:
        raise ValueError(f"no results in {str(out)!r}")
    out = Path(out)
    folder = Path(folder) if folder is not None else out.with_name(out.stem + "-summary")
    folder.mkdir(parents=True, exist_ok=True)
    varying, conds = _conditions(table)
    data = {f: np.array(table.column(f).to_pylist(), dtype=np.float64) for f in FIGURES
            if f in table.column_names}
    groups: dict = {}
    for i, c in enumerate(conds):
        groups.setdefault(c, []).append(i)
    summary = {}
    for c, idx in groups.items():
        label = ", ".join(f"{n}={v}" for n, v in zip(varying, c, strict=True)) or "all"
        s = {"tasks": len(idx)}
        for f, values in data.items():
            v = values[idx]
            v = v[np.isfinite(v)]
            if v.size:
                s[f] = {"median": float(np.median(v)), "p90": float(np.percentile(v, 90))}
        worst = data["err_worst_comp"][idx]
        worst = worst[np.isfinite(worst)]
        if worst.size:
            s["yield_at_threshold"] = float(np.mean(worst < threshold))
        summary[label] = s
    has_err = np.isfinite(data["err_rms_cal"]).any()
    has_acc = np.isfinite(data["acc_cal"]).any()
    lines = [f"# Sweep summary: {table.num_rows} tasks", "",
             f"Results: `{out}`. Conditions: every combination of "
             f"{', '.join(varying) or 'one condition'} (chips aside); medians over chips, "
             f"90th percentiles in brackets. Errors in % of full scale.", ""]
    if has_err:
        lines += ["| condition | tasks | RMS uncalibrated | RMS calibrated | RMS drift comp. | "
                  f"worst calibrated | yield (worst < {threshold:g} %) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for label, s in summary.items():
            def fig(f, s=s):
                return f"{s[f]['median']:.3f} ({s[f]['p90']:.3f})" if f in s else "-"

            lines.append(f"| {label} | {s['tasks']} | {fig('err_rms_uncal')} | "
                         f"{fig('err_rms_cal')} | {fig('err_rms_comp')} | "
                         f"{fig('err_worst_comp')} | "
                         f"{100 * s.get('yield_at_threshold', float('nan')):.1f} % |")
        lines.append("")
    if has_acc:
        lines += ["| condition | tasks | float | uncalibrated | calibrated | drift comp. |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for label, s in summary.items():
            def acc(f, s=s):
                return f"{100 * s[f]['median']:.1f} %" if f in s else "-"

            lines.append(f"| {label} | {s['tasks']} | {acc('acc_float')} | "
                         f"{acc('acc_uncal')} | {acc('acc_cal')} | {acc('acc_comp')} |")
        lines.append("")
    labels = list(summary)
    if has_err:
        fig, ax = plt.subplots(figsize=(7, 4))
        for (_c, idx), label in zip(groups.items(), labels, strict=True):
            for f, style in (("err_rms_uncal", ":"), ("err_rms_comp", "-")):
                v = data[f][idx]
                v = np.sort(v[np.isfinite(v)])
                if v.size:
                    ax.plot(v, np.arange(1, v.size + 1) / v.size, style,
                            label=f"{label}: {'uncalibrated' if 'uncal' in f else 'calibrated'}")
        _save_plot(plt, fig, ax, "MVM error, % of full scale RMS", "fraction of chips",
                   "error distribution per condition", folder / "errors.png")
        fig, ax = plt.subplots(figsize=(7, 4))
        for (_c, idx), label in zip(groups.items(), labels, strict=True):
            v = data["err_worst_comp"][idx]
            v = np.sort(v[np.isfinite(v)])
            if v.size:
                grid = np.linspace(0, max(v.max() * 1.1, threshold), 200)
                ax.plot(grid, [np.mean(v < g) for g in grid], label=label)
        ax.axvline(threshold, color="gray", lw=0.8)
        _save_plot(plt, fig, ax, "threshold on the calibrated worst-case error, % of full scale",
                   "yield (fraction of chips under it)", "yield curve", folder / "yield.png")
        lines += ["![errors](errors.png)", "", "![yield](yield.png)", ""]
    if has_acc:
        fig, ax = plt.subplots(figsize=(7, 4))
        for (_c, idx), label in zip(groups.items(), labels, strict=True):
            for f, style in (("acc_uncal", ":"), ("acc_comp", "-")):
                v = 100 * data[f][idx]
                v = v[np.isfinite(v)]
                if v.size:
                    ax.hist(v, bins=20, histtype="step", ls=style,
                            label=f"{label}: {f[4:]}")
        _save_plot(plt, fig, ax, "accuracy, %", "chips", "accuracy distribution",
                   folder / "accuracy.png")
        lines += ["![accuracy](accuracy.png)", ""]
    (folder / "summary.md").write_text("\n".join(lines))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
