"""Progress of long phases: a cosimulation writes where it is to a small JSON file, the host
shows it as one line with a rate measured on the phase itself.

The file (:func:`report` writes it atomically, :func:`read` reads it) holds ``phase`` (what
runs: ``calibrating``, ``programming``, a condition's name), ``done`` and ``total`` (0 when
the phase has no count), ``unit`` (``rows``, ``MVMs``), and what the writer measured:
``since`` (when the phase began), ``rate`` (steps of the unit per second from the first
counted step of that unit on, so that a build, a calibration or a programming phase does not
distort the estimate of the MVMs that follow; the rate of a unit runs on across the phases
that count in it) and ``past``, the phases that ended, each with its last figures. The host
polls the file, so it may never see a short phase while it runs; ``past`` still tells it,
and the rates do not depend on how often it looks.

:class:`Bar` shows it: on a terminal one line rewritten in place, elsewhere a line per phase
(those that ended between two looks too) and at most every ``every`` seconds. Until a rate
is known the line says so instead of guessing.

:class:`ProgressBar` is the simpler bar of host-side loops that count their own steps
(``aimc train``'s evaluation): the caller passes the count and the start time.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["Bar", "ProgressBar", "read", "report", "run_with_progress"]


def report(path, phase: str, done: int = 0, total: int = 0, unit: str = "",
           now: float | None = None) -> None:
    """Write the progress file ``path`` (nothing when ``path`` is None); ``now``: the time
    (``time.time()``, the default)."""
    if path is None:
        return
    path = Path(path)
    now = time.time() if now is None else now
    old = read(path)
    past = list(old.get("past", []))
    since = old.get("since", now)
    if old and old.get("phase") != phase:
        past.append({k: old.get(k) for k in ("phase", "done", "total", "unit", "rate")}
                    | {"seconds": now - since})
        since = now
    # The unit counted last and the first counted step since it became the one counted: a
    # phase without a count keeps both.
    counting, first = old.get("counting", ""), old.get("first")
    if unit and unit != counting:
        counting, first = unit, None
    if unit and first is None and done > 0:
        first = [now, done]
    rate = None
    if unit and first is not None and done > first[1] and now > first[0]:
        rate = (done - first[1]) / (now - first[0])
    state = {"phase": phase, "done": done, "total": total, "unit": unit, "since": since,
             "rate": rate, "counting": counting, "first": first, "past": past}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
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
        self._printed: set[int] = set()  # phases (by their number in the run) shown
        self._last_line = 0.0
        self._shown = ""
        #: unit -> (done, rate or None): the figures of close().
        self.counts: dict[str, tuple[int, float | None]] = {}

    def absorb(self, state: dict) -> None:
        """Take the figures of ``state`` and of the phases it says ended, for close()."""
        for p in [*state.get("past", []), state]:
            if p.get("unit") and p.get("done"):
                self.counts[p["unit"]] = (p["done"], p.get("rate"))

    def line(self, state: dict, now: float | None = None) -> str:
        """The text shown for the progress ``state`` (a :func:`read` result, or one of its
        ``past`` phases: then with the phase's length); ``now``: ``time.time()``."""
        now = time.time() if now is None else now
        phase = state.get("phase") or "starting"
        done, total, unit = state.get("done", 0), state.get("total", 0), state.get("unit", "")
        text = f"  {self.label}: {phase}"
        if total:
            frac = min(done / total, 1.0)
            filled = int(self.WIDTH * frac)
            text += f" [{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{total} {unit}"
            rate = state.get("rate")
            if rate and done < total:
                text += f", {rate:.3g} {unit}/s, about {_duration((total - done) / rate)} left"
            elif rate:
                text += f", {rate:.3g} {unit}/s"
            else:
                text += ", measuring the rate"
        else:
            seconds = state.get("seconds", now - state.get("since", now))
            text += f" ({_duration(max(seconds, 0.0))})"
        return text

    def show(self, state: dict) -> None:
        """Show ``state``: on a terminal always, elsewhere each phase once (those that ended
        since the last look too) and the current one again every ``every`` seconds."""
        self.absorb(state)
        past = state.get("past", [])
        text = self.line(state)
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self._shown)))
            self._shown = text
        else:
            for i, p in enumerate(past):
                if i not in self._printed:
                    self.stream.write(self.line(p) + "\n")
                    self._printed.add(i)
            now = time.perf_counter()
            if len(past) not in self._printed or now - self._last_line >= self.every:
                self.stream.write(text + "\n")
                self._printed.add(len(past))
                self._last_line = now
        self.stream.flush()

    def close(self, summary: str = "") -> str:
        """End the line with the job's figures: each counted unit with its rate, the total
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
            bar.show(state)  # the phases that ended since the last look, the final counts
    if error:
        raise error[0]
    return result[0]


class ProgressBar:
    """A one-line progress bar with the rate and an estimate of the time left (redrawn in
    place on a terminal, one line per call otherwise).

    Parameters
    ----------
    unit : str
        What is counted ("MVMs", "examples").
    stream
        Where the bar goes (default: standard output).
    """

    def __init__(self, unit: str = "MVMs", stream=None):
        self.unit = unit
        self.stream = sys.stdout if stream is None else stream
        self.tty = self.stream.isatty()

    def show(self, label: str, done: int, total: int, started: float):
        """Draw ``done`` of ``total`` for ``label``, started at ``started``
        (``time.perf_counter()``)."""
        frac = done / total if total else 0.0
        elapsed = time.perf_counter() - started
        left = elapsed / frac * (1 - frac) if frac > 0.02 else float("nan")
        rate = done / elapsed if elapsed > 0 else float("nan")
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        eta = f"{left:5.0f} s left" if left == left else "  ... s left"
        line = (f"  {label:34} [{bar}] {done:5d}/{total} {self.unit} "
                f"({rate:.1f}/s) {eta}")
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self):
        if self.tty:
            self.stream.write("\n")
