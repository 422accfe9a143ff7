import os

import pytest

from aimc.cosim.runner import SIMULATORS


def pytest_generate_tests(metafunc):
    # Cosimulation tests run on every simulator; AIMC_SIMS narrows it for quick local runs.
    if "sim" in metafunc.fixturenames:
        sims = os.environ.get("AIMC_SIMS", ",".join(SIMULATORS)).split(",")
        metafunc.parametrize("sim", [pytest.param(s, marks=pytest.mark.cosim) for s in sims])
