"""A one-line progress bar for long host-side work (the demo's cosimulation, training)."""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar"]


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
