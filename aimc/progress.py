"""Progress of long phases: a cosimulation writes where it is to a small JSON file, the host
shows it as one line with a rate measured on the phase itself.

The file (:func:`report` writes it atomically, :func:`read` reads it) holds ``phase`` (what
runs: ``calibrating``, ``programming``, a condition's name), ``done`` and ``total`` (0 when
the phase has no count) and ``unit`` (``rows``, ``MVMs``).

:class:`Bar` shows it: on a terminal one line rewritten in place, elsewhere a line when the
phase changes and at most every ``every`` seconds. The rate is measured from the first counted
step of the current unit on, so that a build, a calibration or a programming
phase does not distort the estimate of the MVMs that follow (the rate of a unit, rows or
MVMs, runs on across the phases that count in it); until a rate is known the line
says so instead of guessing.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["Bar", "read", "report", "run_with_progress"]


def report(path, phase: str, done: int = 0, total: int = 0, unit: str = "") -> None:
    """Write the progress file ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"phase": phase, "done": done, "total": total, "unit": unit}))
    os.replace(tmp, path)


def read(path) -> dict:
    """The progress file's contents ({} while there is none)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Bar:
    """One progress line for a labelled job.

    Parameters
    ----------
    label : str
        What runs (``run 1/4: plain layer 1``).
    stream : file
        Where the line goes (default: standard output).
    every : float
        Seconds between lines when ``stream`` is not a terminal.
    """

    WIDTH = 24

    def __init__(self, label: str, stream=None, every: float = 10.0):
        self.label, self.stream, self.every = label, stream or sys.stdout, every
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._phase = None
        self._phase_t = self.started
        self._unit = None
        self._start = None      # (time, done) of the first counted step in this unit
        self._last_line = 0.0
        self._shown = ""
        #: unit -> (done, rate or None): the figures of close().
        self.counts: dict[str, tuple[int, float | None]] = {}

    def rate(self, now: float, done: int) -> float | None:
        """Steps per second in the current unit, from its first counted step on."""
        if self._start is None:
            return None
        t0, d0 = self._start
        return (done - d0) / (now - t0) if done > d0 and now > t0 else None

    def line(self, state: dict, now: float | None = None) -> str:
        """The text shown for the progress ``state`` (a :func:`read` result)."""
        now = time.perf_counter() if now is None else now
        phase = state.get("phase") or "starting"
        done, total, unit = state.get("done", 0), state.get("total", 0), state.get("unit", "")
        if phase != self._phase:
            self._phase, self._phase_t = phase, now
        if unit and unit != self._unit:
            # A new kind of count (rows, then MVMs); a phase without a count (calibrating
            # between MVM phases) keeps the rate, which then includes its time.
            self._unit, self._start = unit, None
        if self._start is None and done > 0:
            # The rate is measured from here: the first step shows the work has begun.
            self._start = (now, done)
        if unit and done:
            self.counts[unit] = (done, self.rate(now, done))
        text = f"  {self.label}: {phase}"
        if total:
            frac = min(done / total, 1.0)
            filled = int(self.WIDTH * frac)
            text += f" [{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{total} {unit}"
            rate = self.rate(now, done)
            if rate:
                text += f", {rate:.3g} {unit}/s, about {_duration((total - done) / rate)} left"
            else:
                text += ", measuring the rate"
        else:
            text += f" ({_duration(now - self._phase_t)})"
        return text

    def show(self, state: dict) -> None:
        """Show ``state``: on a terminal always, elsewhere on a phase change or every
        ``every`` seconds."""
        now = time.perf_counter()
        phase_changed = state.get("phase") != self._phase
        text = self.line(state, now)
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self._shown)))
            self._shown = text
        elif phase_changed or now - self._last_line >= self.every:
            self.stream.write(text + "\n")
            self._last_line = now
        self.stream.flush()

    def close(self, summary: str = "") -> str:
        """End the line with the job's figures: each counted phase with its rate, the total
        time and ``summary``; returns the final line."""
        seconds = time.perf_counter() - self.started
        parts = [f"{done} {unit}" + (f" at {rate:.3g} {unit}/s" if rate else "")
                 for unit, (done, rate) in self.counts.items()]
        text = f"  {self.label}: done in {_duration(seconds)}" + (
            f"; {', '.join(parts)}" if parts else "") + (f"; {summary}" if summary else "")
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self._shown)) + "\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        return text


def run_with_progress(job, path, bar: Bar | None, poll: float = 0.5):
    """Run ``job()`` in a thread while ``bar`` shows the progress file ``path``; returns its
    result or raises its exception (a Ctrl-C in the main thread raises KeyboardInterrupt
    at once; the job's simulator receives the signal too)."""
    result, error = [], []

    def target():
        try:
            result.append(job())
        except BaseException as exc:  # re-raised below, in the main thread
            error.append(exc)

    Path(path).unlink(missing_ok=True)
    th = threading.Thread(target=target, daemon=True)
    th.start()
    while th.is_alive():
        th.join(poll if bar is None or bar.tty else 1.0)
        if bar is not None and th.is_alive():
            state = read(path)
            if state:
                bar.show(state)
    if bar is not None:
        state = read(path)
        if state:
            bar.line(state)  # the final counts, for the figures of close()
    if error:
        raise error[0]
    return result[0]
