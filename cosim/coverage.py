"""Functional coverage of the cosimulation regression (cocotb-coverage).

One table, :data:`BINS`, lists every cover group and its bins; :data:`CROSSES` lists the
crosses of groups. Both are declared as cocotb-coverage CoverPoints / CoverCrosses under the
root ``aimc`` (``aimc.errors``, ``aimc.stalls.source_x_sink``...). To add a bin, add it to the
table and call :func:`hit` where the behaviour happens.

Every process that samples (the simulators, with the cocotb tests in them) exports its whole
coverage database after each sample to ``$AIMC_COVERAGE_DIR/<pid>.yml``; the test session
merges those files (:func:`merge`), writes a report (:func:`write_summary`) and, when asked,
fails on bins nobody hit (:func:`gate`). Without ``AIMC_COVERAGE_DIR`` nothing is written.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import yaml
from cocotb_coverage.coverage import (
    CoverCross,
    CoverItem,
    CoverPoint,
    coverage_db,
    merge_coverage,
)

from ..config import TileConfig

__all__ = ["BINS", "CROSSES", "ENV_DIR", "ROOT", "config_bins", "cross", "export",
           "format_summary", "gate", "hit", "merge", "missing_bins", "sample_config",
           "sample_stalls", "stall_bin", "summarize", "write_summary"]

#: Root of the cover groups in the cocotb-coverage database.
ROOT = "aimc"
#: Directory the per-process databases are exported to (unset: no export).
ENV_DIR = "AIMC_COVERAGE_DIR"

#: Cover groups and their bins: the one list.
BINS: dict[str, tuple[str, ...]] = {
    "config.input_mode": ("pwm", "bitserial"),
    "config.adc_sharing": ("dedicated", "shared"),
    "config.padding": ("none", "padded"),
    "config.size": ("small", "medium", "full"),
    "mode.mvm": ("raw", "corrected", "backward"),
    "mode.update": ("stochastic", "deterministic", "managed", "unmanaged"),
    "mode.calibration": ("offset", "gain", "drift", "capture"),
    "mode.program": ("parallel_raw", "parallel_corrected", "serial_raw"),
    "stalls.source": ("none", "light", "heavy"),
    "stalls.sink": ("none", "light", "heavy"),
    "stalls.axil": ("none", "paused"),
    "errors": (
        "frame_short", "frame_long", "element_range",
        "decerr_read", "decerr_write", "readonly_write", "window_strobe", "window_locked",
        "register_range",
        "cal_avg_range", "cal_zero_reference", "cal_drift_range", "cal_while_programming",
        "prog_target_length", "prog_while_calibrating",
        "reset_mvm", "reset_cal", "reset_prog",
        "rail_low", "rail_high", "integrator_saturated", "corrected_saturated",
        "comparator_random", "analogue_timeout",
        "frame_kind", "update_without_forward",
    ),
}

#: Crosses: name -> the groups crossed (every combination of their bins is a bin).
CROSSES: dict[str, tuple[str, ...]] = {
    "stalls.source_x_sink": ("stalls.source", "stalls.sink"),
}

#: Stall probabilities up to this are "light", above it "heavy".
LIGHT_STALLS = 0.2


def _full(group: str) -> str:
    return f"{ROOT}.{group}"


def _sampler(item):
    # cocotb-coverage samples through decorated functions; the point's own bins do the work.
    return item(lambda *values: None)


_points = {g: _sampler(CoverPoint(_full(g), bins=list(b))) for g, b in BINS.items()}
_crosses = {name: _sampler(CoverCross(_full(name), items=[_full(g) for g in groups]))
            for name, groups in CROSSES.items()}


def _check(group: str, bin: str) -> None:
    if group not in BINS:
        raise ValueError(f"group {group!r} is not one of: {', '.join(BINS)}")
    if bin not in BINS[group]:
        raise ValueError(f"bin {bin!r} of group {group!r} is not one of: "
                         f"{', '.join(BINS[group])}")


def hit(group: str, bin: str) -> None:
    """Sample ``bin`` of ``group``, then export this process's database (see :func:`export`)."""
    _check(group, bin)
    _points[group](bin)
    export()


def cross(name: str, *bins: str) -> None:
    """Sample one bin of each group of cross ``name`` (in its order) and the cross itself,
    then export."""
    _cross(name, bins)
    export()


def _cross(name: str, bins: tuple[str, ...]) -> None:
    if name not in CROSSES:
        raise ValueError(f"cross {name!r} is not one of: {', '.join(CROSSES)}")
    groups = CROSSES[name]
    if len(bins) != len(groups):
        raise ValueError(f"cross {name!r} takes {len(groups)} bins ({', '.join(groups)}), "
                         f"not {len(bins)}")
    for group, b in zip(groups, bins, strict=True):
        _check(group, b)
    for group, b in zip(groups, bins, strict=True):
        _points[group](b)
    _crosses[name]()


# -- samplers of the bench -------------------------------------------------------------------

def config_bins(cfg: TileConfig) -> dict[str, str]:
    """The ``config.*`` bin of each group that ``cfg`` falls in."""
    largest = max(cfg.rows, cfg.cols)
    return {
        "config.input_mode": cfg.input_mode,
        "config.adc_sharing": "dedicated" if cfg.cols_per_adc == 1 else "shared",
        "config.padding": "padded" if cfg.rows % cfg.lanes or cfg.cols % cfg.lanes else "none",
        "config.size": "small" if largest <= 16 else "medium" if largest <= 64 else "full",
    }


def sample_config(cfg: TileConfig) -> None:
    """The configuration a cosimulation runs."""
    bins = config_bins(cfg)
    for group, b in bins.items():
        _check(group, b)
    for group, b in bins.items():
        _points[group](b)
    export()


def stall_bin(p: float, name: str = "p") -> str:
    """``none`` for probability 0, ``light`` up to :data:`LIGHT_STALLS`, ``heavy`` above."""
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], not {p!r}")
    return "none" if p == 0 else "light" if p <= LIGHT_STALLS else "heavy"


def sample_stalls(p_source: float, p_sink: float, axil: bool = False) -> None:
    """The stall probabilities of the input and output streams (and their cross), and
    whether AXI-Lite transfers pause."""
    bins = stall_bin(p_source, "p_source"), stall_bin(p_sink, "p_sink")
    _cross("stalls.source_x_sink", bins)
    _points["stalls.axil"]("paused" if axil else "none")
    export()


# -- export -----------------------------------------------------------------------------------

_export_file: tuple[int, Path] | None = None  # (pid, file) chosen at this process's 1st export


def _target(directory: Path) -> Path:
    """``<pid>.yml``, unless an earlier process with the same (recycled) pid left one."""
    global _export_file
    pid = os.getpid()
    if _export_file is None or _export_file[0] != pid or _export_file[1].parent != directory:
        path, n = directory / f"{pid}.yml", 0
        while path.exists():
            n += 1
            path = directory / f"{pid}-{n}.yml"
        _export_file = (pid, path)
    return _export_file[1]


def _database() -> dict:
    """The whole database as ``coverage_db.export_to_yaml`` writes it (same keys and
    layout, so ``merge_coverage`` reads it), built here to dump it with libyaml: ~1 ms a
    sample instead of ~6 ms."""
    data = {}
    for name in sorted(coverage_db, key=str.lower):
        item = coverage_db[name]
        attrs = {"type": str(type(item)), "size": item.size, "coverage": item.coverage,
                 "cover_percentage": round(item.cover_percentage, 2)}
        if type(item) is not CoverItem:
            attrs["weight"], attrs["at_least"] = item.weight, item.at_least
            attrs["bins:_hits"] = {str(k) if isinstance(k, tuple) else k: v
                                   for k, v in item.detailed_coverage.items()}
        data[name] = attrs
    return data


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def export() -> Path | None:
    """Write this process's whole database to ``$AIMC_COVERAGE_DIR/<pid>.yml`` (replacing
    it atomically). Does nothing without the variable; an OSError is a warning, not an error."""
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return None
    try:
        path = _target(Path(directory))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.dump(_database(), Dumper=_Dumper, default_flow_style=False))
        os.replace(tmp, path)
        return path
    except OSError as e:
        warnings.warn(f"functional coverage not exported to {directory}: {e}", stacklevel=2)
        return None


# -- merge and report -------------------------------------------------------------------------

def _cross_bins(name: str) -> list[tuple[str, ...]]:
    return list(itertools.product(*(BINS[g] for g in CROSSES[name])))


def summarize(db: Mapping[str, Mapping], files: int = 0) -> dict:
    """Summary of a (merged) cocotb-coverage YAML database against :data:`BINS` and
    :data:`CROSSES`: per group the hits of each bin, covered / total and the missing bins;
    overall covered / total / percent. Bins the database lacks count as never hit."""
    def hits_of(name):
        return (db.get(_full(name)) or {}).get("bins:_hits") or {}

    groups = {}
    for group, bins in BINS.items():
        got = hits_of(group)
        groups[group] = {b: int(got.get(b, 0)) for b in bins}
    for name in CROSSES:
        got = hits_of(name)  # cocotb-coverage exports a cross bin as str(tuple)
        groups[name] = {" x ".join(t): int(got.get(str(t), 0)) for t in _cross_bins(name)}
    out = {"groups": {}, "covered": 0, "total": 0, "files": files}
    for name, hits in groups.items():
        missing = [b for b, n in hits.items() if n <= 0]
        out["groups"][name] = {"hits": hits, "covered": len(hits) - len(missing),
                               "total": len(hits), "missing": missing}
        out["covered"] += len(hits) - len(missing)
        out["total"] += len(hits)
    out["percent"] = round(100 * out["covered"] / out["total"], 1) if out["total"] else 0.0
    return out


def merge(directory: str | Path, merged_file: str | Path | None = None) -> dict:
    """Merge every ``*.yml`` of ``directory`` with cocotb-coverage's ``merge_coverage`` (into
    ``merged_file``, or a temporary file) and return :func:`summarize` of the result.
    Files that are not a coverage database are skipped with a warning."""
    files = []
    for path in sorted(Path(directory).glob("*.yml")):
        try:
            ok = isinstance(yaml.safe_load(path.read_text()), dict)
        except (OSError, yaml.YAMLError):
            ok = False
        if ok:
            files.append(path)
        else:
            warnings.warn(f"{path} is not a coverage database; skipped", stacklevel=2)
    if not files:
        return summarize({}, 0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(merged_file) if merged_file else Path(tmp) / "merged.yml"
        out.parent.mkdir(parents=True, exist_ok=True)
        merge_coverage(lambda *_: None, str(out), *map(str, files))
        db = yaml.safe_load(out.read_text()) or {}
    return summarize(db, len(files))


def missing_bins(summary: Mapping) -> dict[str, list[str]]:
    """The bins never hit, by group (groups with none missing are left out)."""
    return {g: list(s["missing"]) for g, s in summary["groups"].items() if s["missing"]}


def gate(summary: Mapping) -> str | None:
    """None if every bin was hit; otherwise the message a required-coverage run fails with."""
    missing = missing_bins(summary)
    if not missing:
        return None
    where = "; ".join(f"{g}: {', '.join(bins)}" for g, bins in missing.items())
    n = sum(map(len, missing.values()))
    note = "" if summary.get("files", 1) else " (no coverage was recorded)"
    return (f"functional coverage is required (AIMC_COVERAGE_REQUIRED=1) but {n} of "
            f"{summary['total']} bins were never hit{note}: {where}")


def format_summary(summary: Mapping) -> str:
    """One paragraph for the terminal: the total and the missing bins by group."""
    text = (f"functional coverage: {summary['covered']} of {summary['total']} bins "
            f"({summary['percent']} %)")
    missing = missing_bins(summary)
    if missing:
        text += "; missing: " + "; ".join(f"{g}: {', '.join(b)}" for g, b in missing.items())
    return text


def write_summary(summary: Mapping, out_dir: str | Path) -> Path:
    """Write ``summary.md`` (a table per group) and ``summary.json``; returns the .md path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Functional coverage", "",
             f"{summary['covered']} of {summary['total']} bins covered "
             f"({summary['percent']} %), merged from {summary.get('files', 0)} file(s).", ""]
    for group, s in summary["groups"].items():
        lines += [f"## {group} ({s['covered']} of {s['total']})", "",
                  "| bin | hits | covered |", "|---|---:|---|"]
        lines += [f"| {b} | {n} | {'yes' if n > 0 else 'no'} |" for b, n in s["hits"].items()]
        lines.append("")
    md = out / "summary.md"
    md.write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return md
