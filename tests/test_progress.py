"""The progress file (aimc.progress): the writer measures the rates and keeps the phases that
ended, so a host that looks seldom still shows every phase and the same rates."""

import io

import pytest

from aimc import progress


def _write(path, steps):
    for now, args in steps:
        progress.report(path, *args, now=now)


def test_rate_from_the_first_counted_step_and_phases_kept(tmp_path):
    path = tmp_path / "p.json"
    _write(path, [
        (100.0, ("calibrating",)),
        (103.0, ("programming", 0, 8, "rows")),
        (104.0, ("programming", 1, 8, "rows")),   # the rate is measured from here
        (106.0, ("programming", 5, 8, "rows")),
        (108.0, ("programming", 8, 8, "rows")),
        (109.0, ("calibrating",)),                 # no count: the rows' rate is kept
        (110.0, ("stream", 0, 100, "MVMs")),       # a new unit starts its own rate
        (112.0, ("stream", 20, 100, "MVMs")),
        (114.0, ("stream", 60, 100, "MVMs")),
    ])
    state = progress.read(path)
    assert state["phase"] == "stream" and state["rate"] == pytest.approx(20.0)  # 40 in 2 s
    past = state["past"]
    assert [p["phase"] for p in past] == ["calibrating", "programming", "calibrating"]
    assert past[0]["seconds"] == 3.0 and past[2]["seconds"] == 1.0
    assert past[1]["done"] == 8 and past[1]["rate"] == pytest.approx(7 / 4)
    assert past[1]["seconds"] == 6.0  # 103 .. 109


def test_a_host_that_looks_once_shows_every_phase(tmp_path):
    path = tmp_path / "p.json"
    _write(path, [(10.0, ("calibrating",)), (12.0, ("programming", 0, 4, "rows")),
                  (13.0, ("programming", 2, 4, "rows")), (15.0, ("programming", 4, 4, "rows")),
                  (15.5, ("verifying",))])
    out = io.StringIO()
    bar = progress.Bar("8x8 pcm chip", stream=out)
    bar.show(progress.read(path))
    bar.show(progress.read(path))  # nothing new: no line repeated
    lines = out.getvalue().splitlines()
    assert lines[0] == "  8x8 pcm chip: calibrating (2 s)"
    assert lines[1] == ("  8x8 pcm chip: programming [########################] 4/4 rows, "
                        "1 rows/s")
    assert lines[2].startswith("  8x8 pcm chip: verifying (")
    assert len(lines) == 3
    final = bar.close("done")
    assert final.endswith("; 4 rows at 1 rows/s; done")


def test_remaining_time_and_unknown_rate(tmp_path):
    path = tmp_path / "p.json"
    bar = progress.Bar("run", stream=io.StringIO())
    progress.report(path, "stream", 0, 100, "MVMs", now=0.0)
    assert bar.line(progress.read(path)).endswith("0/100 MVMs, measuring the rate")
    progress.report(path, "stream", 10, 100, "MVMs", now=1.0)
    progress.report(path, "stream", 40, 100, "MVMs", now=3.0)
    assert bar.line(progress.read(path)).endswith(
        "40/100 MVMs, 15 MVMs/s, about 4 s left")
    progress.report(None, "ignored")  # no file asked for: nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
