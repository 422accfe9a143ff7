"""IR drop model: the sparse effective matrix agrees with a dense modified nodal analysis and
with ngspice, reduces to ``g`` without wire resistance, and obeys the physics of resistive
networks (maximum principle, Rayleigh monotonicity) where it must."""

import os
import shutil

import numpy as np
import pytest

from aimc.model import irdrop
from aimc.model.irdrop import direct_currents, effective_matrix, run_ngspice, spice_netlist

G_MAX = 25e-6  # siemens


def random_array(rows, cols, seed, zeros=0.2):
    """Conductances uniform in 0..G_MAX with a fraction of cells exactly 0 (unprogrammed)."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.0, G_MAX, size=(rows, cols))
    g[rng.random((rows, cols)) < zeros] = 0.0
    return g, rng


def assert_currents_close(actual, expected, rel):
    """Agreement to ``rel`` of the largest current."""
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * scale)


# -- agreement with the dense reference ---------------------------------------------------

def test_zero_wire_resistance_gives_g_exactly():
    g, _ = random_array(7, 5, seed=1)
    m = effective_matrix(g, 0.0, 0)
    assert m.dtype == np.float64 and m.shape == (7, 5)
    assert np.array_equal(m, g)
    assert m is not g
    m[0, 0] = 1.0
    assert g[0, 0] != 1.0  # a copy, not a view
    assert np.array_equal(effective_matrix([[1, 2], [3, 4]], 0, 0), [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("r_row, r_col", [(0.0, 3.0), (2.0, 0.0)])
def test_one_zero_wire_resistance_matches_direct(r_row, r_col):
    g, rng = random_array(7, 5, seed=2)
    m = effective_matrix(g, r_row, r_col)
    assert m.shape == (7, 5)
    for _ in range(4):
        v = rng.uniform(-1.0, 1.0, size=7)
        assert_currents_close(v @ m, direct_currents(g, r_row, r_col, v), rel=1e-9)


@pytest.mark.parametrize("shape", [(7, 5), (5, 7), (1, 6), (6, 1), (1, 1), (24, 20)])
def test_effective_matrix_matches_direct(shape):
    g, rng = random_array(*shape, seed=3)
    r_row, r_col = rng.uniform(1.0, 5.0, size=2)
    m = effective_matrix(g, r_row, r_col)
    assert m.dtype == np.float64 and m.shape == shape
    for _ in range(4):
        v = rng.uniform(-1.0, 1.0, size=shape[0])
        assert_currents_close(v @ m, direct_currents(g, r_row, r_col, v), rel=1e-9)


@pytest.mark.parametrize("r_row, r_col", [
    (50.0, 50.0), (1e-4, 1e-4), (1e4, 1e4), (1e-4, 1e4), (1e4, 1e-4), (0.0, 1e4), (1e4, 0.0)])
def test_extreme_wire_resistance_matches_direct(r_row, r_col):
    g, rng = random_array(9, 6, seed=4)
    m = effective_matrix(g, r_row, r_col)
    for _ in range(3):
        v = rng.uniform(-1.0, 1.0, size=9)
        assert_currents_close(v @ m, direct_currents(g, r_row, r_col, v), rel=1e-9)


def test_schur_tail_and_full_solve_agree():
    # The fast path reads M off the trailing blocks of the factors; the general path pushes
    # every right-hand side through the whole factor. Same system, same answer.
    g, _ = random_array(12, 9, seed=5)
    system = irdrop._full_system(g, 2.0, 3.0)
    fast = irdrop._solve(system)
    general = irdrop._solve(system._replace(tail=0))
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-12 * np.abs(general).max())


def test_two_rows_one_column_closed_form():
    # Row k reaches the column through r_row + 1/g_k; the column node of row 0 reaches the
    # one of row 1 through r_col, which reaches the virtual ground through r_col.
    g0, g1, r_row, r_col = 3e-3, 5e-3, 40.0, 70.0
    y0, y1, gc = 1 / (r_row + 1 / g0), 1 / (r_row + 1 / g1), 1 / r_col

    def current(v0, v1):
        # b0 = (y0 v0 + gc b1) / (y0 + gc), substituted into the node equation of b1.
        b1 = (y1 * v1 + gc * y0 * v0 / (y0 + gc)) / (2 * gc + y1 - gc**2 / (y0 + gc))
        return gc * b1

    m = effective_matrix([[g0], [g1]], r_row, r_col)
    np.testing.assert_allclose(m[:, 0], [current(1, 0), current(0, 1)], rtol=1e-12)


def test_sneak_path_can_raise_current_with_unequal_drive():
    # With row 1 driven at 0 V its cell drains the column; more row-wire resistance weakens
    # the drain more than it weakens row 0's own path, so the current into ground grows.
    # (This is why monotonicity is only claimed for equal drive voltages.)
    g = [[10.0], [10.0]]
    currents = [effective_matrix(g, r_row, 1.0)[0, 0] for r_row in (0.0, 0.1, 0.2)]
    assert currents[0] < currents[1] < currents[2]


# -- physics of the resistive network -----------------------------------------------------

def test_superposition():
    g, rng = random_array(6, 4, seed=6)
    m = effective_matrix(g, 2.0, 4.0)
    v1, v2 = rng.uniform(-1.0, 1.0, size=(2, 6))
    i1, i2 = direct_currents(g, 2.0, 4.0, v1), direct_currents(g, 2.0, 4.0, v2)
    i12 = direct_currents(g, 2.0, 4.0, 0.3 * v1 - 1.7 * v2)
    assert_currents_close(i12, 0.3 * i1 - 1.7 * i2, rel=1e-12)
    assert_currents_close(i12, (0.3 * v1 - 1.7 * v2) @ m, rel=1e-9)


def test_ir_drop_lowers_currents_and_grows_with_wire_resistance():
    # Every driver at the same voltage: a two-terminal network. Node voltages stay between
    # 0 V and the drive (maximum principle), so M >= 0 and each column current is at most its
    # ideal value; by Rayleigh's monotonicity law the total current never grows with r.
    g, _ = random_array(16, 12, seed=7)
    ones = np.ones(16)
    ideal = ones @ g
    resistances = [0.0, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0, 1000.0]
    for vary in ("row", "col", "both"):
        totals = []
        for r in resistances:
            r_row = r if vary != "col" else 1.0
            r_col = r if vary != "row" else 1.0
            m = effective_matrix(g, r_row, r_col)
            assert (m >= 0).all()
            columns = ones @ m
            assert (columns <= ideal * (1 + 1e-12)).all()
            if r > 0:
                assert columns.sum() < ideal.sum()
            totals.append(columns.sum())
        assert all(b <= a * (1 + 1e-12) for a, b in zip(totals, totals[1:], strict=False))
        assert totals[-1] < 0.9 * totals[0]


def test_no_conductance_no_current():
    for r_row, r_col in [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)]:
        assert not effective_matrix(np.zeros((5, 4)), r_row, r_col).any()


# -- ngspice ------------------------------------------------------------------------------

@pytest.fixture
def ngspice():
    path = shutil.which("ngspice")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("ngspice is not on PATH, and CI is set: CI must install it "
                        "(apt-get install ngspice)")
        pytest.skip("ngspice is not on PATH (install it, e.g. apt-get install ngspice)")
    return path


@pytest.mark.parametrize("r_row, r_col", [(2.5, 2.5), (50.0, 50.0), (0.0, 2.5), (2.5, 0.0)])
def test_ngspice_agrees_with_effective_matrix(ngspice, r_row, r_col):
    g, rng = random_array(8, 8, seed=8)
    m = effective_matrix(g, r_row, r_col)
    for _ in range(2):
        v = rng.uniform(-1.0, 1.0, size=8)
        currents = run_ngspice(spice_netlist(g, r_row, r_col, v), executable=ngspice)
        assert currents.shape == (8,)
        assert_currents_close(currents, v @ m, rel=1e-6)


def test_ngspice_failure_is_reported(ngspice):
    with pytest.raises(RuntimeError, match="ngspice"):
        run_ngspice("broken\nxnot_a_subcircuit a b\n.op\n.end\n", executable=ngspice)
    with pytest.raises(RuntimeError, match="column currents"):
        run_ngspice("no prints\nv1 a 0 dc 1\nr1 a 0 1k\n.control\nrun\nquit\n.endc\n.end\n",
                    executable=ngspice)


def test_missing_ngspice_gives_install_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install ngspice"):
        run_ngspice("x\n.end\n", executable=str(tmp_path / "no-such-ngspice"))


def test_netlist_elements():
    g = np.array([[2.0**-17, 0.0, 2e-5], [4e-6, 5e-6, 0.0]])
    text = spice_netlist(g, 2.5, 0.0, [0.3, -0.2])
    lines = text.splitlines()
    names = [line.split()[0] for line in lines[1:] if line and line[0] not in "*."]
    assert sum(n.startswith("vdrv") for n in names) == 2
    assert sum(n.startswith("rrw") for n in names) == 6        # row wires: resistors
    assert sum(n.startswith("vcw") for n in names) == 6        # zero column wires: 0 V sources
    assert not any(n.startswith(("vrw", "rcw")) for n in names)
    assert sum(n.startswith("rcell") for n in names) == 4      # zero cells omitted
    assert sum(n.startswith("vamm") for n in names) == 3
    assert "rcell0_0 row0_0 col0_0 131072.0" in lines
    assert "vdrv1 drv1 0 dc -0.2" in lines
    assert ".op" in lines and ".control" in lines and lines[-1] == ".end"


# -- errors -------------------------------------------------------------------------------

GOOD = np.full((3, 2), 1e-5)


@pytest.mark.parametrize("call, name", [
    (lambda: effective_matrix(GOOD, -1.0, 1.0), "r_row"),
    (lambda: effective_matrix(GOOD, 1.0, -0.5), "r_col"),
    (lambda: effective_matrix(GOOD, float("nan"), 1.0), "r_row"),
    (lambda: effective_matrix(GOOD, 1.0, float("inf")), "r_col"),
    (lambda: effective_matrix(GOOD, "1", 1.0), "r_row"),
    (lambda: direct_currents(GOOD, -2.0, 1.0, [0, 0, 0]), "r_row"),
    (lambda: spice_netlist(GOOD, 1.0, -3.0, [0, 0, 0]), "r_col"),
    (lambda: effective_matrix([[1e-5, float("nan")]], 1.0, 1.0), "g"),
    (lambda: effective_matrix([[1e-5, float("inf")]], 1.0, 1.0), "g"),
    (lambda: direct_currents([[float("-inf")]], 1.0, 1.0, [1.0]), "g"),
    (lambda: effective_matrix([[1e-5, -1e-6]], 1.0, 1.0), "g"),
    (lambda: effective_matrix([1e-5, 2e-5], 1.0, 1.0), "g"),
    (lambda: effective_matrix(np.zeros((0, 3)), 1.0, 1.0), "g"),
    (lambda: direct_currents(GOOD, 1.0, 1.0, [0.1, 0.2]), "v"),
    (lambda: direct_currents(GOOD, 1.0, 1.0, np.zeros((3, 1))), "v"),
    (lambda: direct_currents(GOOD, 1.0, 1.0, [0.1, float("nan"), 0.2]), "v"),
    (lambda: spice_netlist(GOOD, 1.0, 1.0, [0.1, 0.2, 0.3, 0.4]), "v"),
    (lambda: direct_currents(np.ones((60, 60)), 1.0, 1.0, np.zeros(60)), "g"),
    (lambda: run_ngspice("x\n.end\n", timeout=0), "timeout"),
])
def test_bad_parameters_are_named(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        call()


def test_error_message_shows_value_and_rule():
    with pytest.raises(ValueError, match=r"r_row must be a finite number of ohms >= 0, not -1\.0"):
        effective_matrix(GOOD, -1.0, 1.0)
    with pytest.raises(ValueError, match=r"g\[0, 1\] is nan"):
        effective_matrix([[1e-5, float("nan")]], 1.0, 1.0)
    with pytest.raises(ValueError, match=r"length 3 .* shape \(2,\)"):
        direct_currents(GOOD, 1.0, 1.0, [0.1, 0.2])
