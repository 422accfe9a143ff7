import os
import shutil
from pathlib import Path

import pytest

from aimc.cosim import coverage
from aimc.cosim.runner import SIMULATORS

#: Functional coverage of the session: the simulators export to raw/, merged at the end.
COVERAGE = Path(__file__).resolve().parent.parent / "build" / "coverage"
_SUMMARY = pytest.StashKey[tuple]()  # (summary, gate or merge-error message, failed)


def pytest_generate_tests(metafunc):
    # Cosimulation tests run on every simulator; AIMC_SIMS narrows it for quick local runs.
    if "sim" in metafunc.fixturenames:
        sims = os.environ.get("AIMC_SIMS", ",".join(SIMULATORS)).split(",")
        metafunc.parametrize("sim", [pytest.param(s, marks=pytest.mark.cosim) for s in sims])


def _controller(config) -> bool:
    return not hasattr(config, "workerinput")  # pytest-xdist workers have it


def pytest_configure(config):
    # Runs on the controller before xdist starts its workers, so the workers and the
    # simulators they start (cocotb_tools passes os.environ through) inherit the directory.
    if _controller(config):
        # One raw directory per session: sessions running side by side keep their own.
        raw = COVERAGE / "raw" / str(os.getpid())
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir(parents=True)
        os.environ[coverage.ENV_DIR] = str(raw)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not _controller(config):
        return
    required = os.environ.get("AIMC_COVERAGE_REQUIRED") == "1"
    summary = message = None
    raw = Path(os.environ[coverage.ENV_DIR])
    if any(raw.glob("*.yml")) or required:
        try:
            summary = coverage.merge(raw, COVERAGE / "merged.yml")
            coverage.write_summary(summary, COVERAGE)
            message = coverage.gate(summary) if required else None
        except Exception as e:  # a broken report must not hide the test results
            message = f"functional coverage could not be merged: {e!r}"
    shutil.rmtree(raw, ignore_errors=True)
    failed = required and message is not None
    config.stash[_SUMMARY] = (summary, message, failed)
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _controller(config):
        return
    summary, message, failed = config.stash.get(_SUMMARY, (None, None, False))
    if summary is None and message is None:
        return
    terminalreporter.write_sep("-", "functional coverage")
    if summary is not None:
        terminalreporter.write_line(coverage.format_summary(summary))
        terminalreporter.write_line(f"report: {COVERAGE / 'summary.md'}")
    if message:
        terminalreporter.write_line(("FAILED: " if failed else "warning: ") + message,
                                    red=failed, yellow=not failed, bold=True)
