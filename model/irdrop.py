"""IR drop: the column currents of a crossbar whose row and column wires have resistance.

The network. A crossbar of ``R`` rows and ``C`` columns of conductances ``g[i, j]``
(siemens). Row ``i`` is driven at its left end by an ideal voltage source ``v[i]`` (volts);
its wire runs from the driver past the cells of columns ``0 .. C-1``, with resistance
``r_row`` (ohms) per segment: one segment between the driver and the cell of column 0 and one
between each pair of adjacent cells; the row wire ends open after column ``C-1``. Column
``j`` runs from row 0 down to row ``R-1`` and ends in an ideal virtual ground (the integrator
input, 0 V) below row ``R-1``, with resistance ``r_col`` per segment: one between each pair of
adjacent cells and one between the cell of row ``R-1`` and the virtual ground. Cell
``(i, j)`` joins row node ``(i, j)`` and column node ``(i, j)`` with conductance ``g[i, j]``.

The column current ``I[j]`` is the current flowing into the virtual ground of column ``j``
(positive into the ground). The network is linear, so ``I = v @ M`` for an effective matrix
``M`` of shape ``(R, C)`` in siemens; with ``r_row = r_col = 0``, ``M = g`` exactly.

Three ways to the same currents:

* :func:`effective_matrix`, the model's path: a sparse nodal solve (scipy) for ``M``;
* :func:`direct_currents`, an independent reference for small arrays: modified nodal
  analysis, assembled densely element by element and solved with numpy;
* :func:`spice_netlist` and :func:`run_ngspice`: the same circuit simulated by ngspice.

Properties. All node voltages lie between the lowest and the highest drive voltage, so
``M >= 0``. With every row driven at the same voltage the array is a two-terminal network
(drivers on one side, virtual grounds on the other): each column current is then at most its
ideal value ``v * g.sum(axis=0)``, and the total current never grows when a wire resistance
grows (Rayleigh's monotonicity law). With unequal drive voltages this monotonicity does not
hold in general: a row driven lower than the others sinks current from the columns through
its cells (a sneak path), and more row-wire resistance weakens that sink, so the current
reaching the virtual grounds can grow.
"""

from __future__ import annotations

import math
import numbers
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

__all__ = ["direct_currents", "effective_matrix", "run_ngspice", "spice_netlist"]

# Cells per leaf of the nested dissection; below this a block of cells is ordered as it comes.
_LEAF_CELLS = 16
# Doubles held at once in the right-hand sides of the general multi-RHS solve (32 MB).
_RHS_BLOCK_DOUBLES = 1 << 22
# Largest array direct_currents accepts: its dense system has about 2 R C unknowns.
_DIRECT_MAX_CELLS = 2500
# Markers around the column currents in the ngspice output.
_BEGIN = "AIMC_COLUMN_CURRENTS_BEGIN"
_END = "AIMC_COLUMN_CURRENTS_END"


# -- validation ------------------------------------------------------------------------------

def _float_array(name: str, value, what: str) -> np.ndarray:
    """``value`` as a float64 array; if it is none, the message says that ``name`` must be
    ``what``."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {what}, not {type(value).__name__}") from None


def _check_g(g) -> np.ndarray:
    """``g`` as a float64 array, checked: 2-D, not empty, finite, >= 0."""
    arr = _float_array("g", g, "a 2-D array of conductances in siemens")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(
            f"g must be a 2-D array (rows, columns) with at least one row and one column, "
            f"not an array of shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"g must be finite, but g[{i}, {j}] is {float(arr[i, j])!r}")
    if (arr < 0).any():
        i, j = np.argwhere(arr < 0)[0]
        raise ValueError(
            f"g must be >= 0 (conductances in siemens), but g[{i}, {j}] is "
            f"{float(arr[i, j])!r}")
    return arr


def _check_resistance(name: str, value) -> float:
    """A wire resistance, checked: a real number, finite, >= 0."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"{name} must be a finite number of ohms >= 0, not {value!r}")
    return float(value)


def _check_crossbar(g, r_row, r_col) -> tuple[np.ndarray, float, float]:
    """Cell conductances and wire resistances of a crossbar, checked (in that order)."""
    return _check_g(g), _check_resistance("r_row", r_row), _check_resistance("r_col", r_col)


def _check_v(v, rows: int) -> np.ndarray:
    """Row voltages as a float64 array, checked: 1-D, one per row, finite."""
    arr = _float_array("v", v, "a 1-D array of row voltages in volts")
    if arr.ndim != 1 or arr.shape[0] != rows:
        raise ValueError(
            f"v must be a 1-D array of length {rows} (one voltage per row of g), "
            f"not an array of shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"v must be finite, but v[{i}] is {float(arr[i])!r}")
    return arr


# -- sparse nodal solve ----------------------------------------------------------------------

def _nodal_matrix(n: int, p: np.ndarray, q: np.ndarray, cond: np.ndarray,
                  to_fixed: np.ndarray) -> scipy.sparse.csc_matrix:
    """Nodal matrix (CSC) of conductances ``cond`` between unknowns ``p`` and ``q``, plus
    ``to_fixed[k]``, the conductance from unknown ``k`` to nodes of known voltage."""
    diagonal = (to_fixed + np.bincount(p, cond, minlength=n)
                + np.bincount(q, cond, minlength=n))
    rows = np.concatenate([p, q, np.arange(n)])
    cols = np.concatenate([q, p, np.arange(n)])
    vals = np.concatenate([-cond, -cond, diagonal])
    return scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(n, n))


def _factorise(matrix: scipy.sparse.csc_matrix):
    """SuperLU factors of a symmetric positive definite nodal matrix, eliminated in the order
    its unknowns are numbered (NATURAL). Such a matrix needs no pivoting."""
    return scipy.sparse.linalg.splu(matrix, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                    options={"SymmetricMode": True})


def _chains(h: np.ndarray, r: float) -> np.ndarray:
    """Voltages of independent wire chains with one end at 1 V.

    Chain ``c`` has unknown nodes ``0 .. L-1``, joined by segments of resistance ``r``; node
    ``k`` is tied to 0 V by conductance ``h[c, k]``, and node ``L-1`` to 1 V by one more
    segment. Returns the node voltages, shape ``(chains, L)``. The unknowns are numbered
    chain by chain, so the matrix is tridiagonal and factorises without fill.
    """
    chains, length = h.shape
    n = chains * length
    node = np.arange(n).reshape(chains, length)
    g_wire = 1.0 / r
    p, q = node[:, :-1].ravel(), node[:, 1:].ravel()
    to_fixed = h.ravel().copy()
    to_fixed[node[:, -1]] += g_wire
    rhs = np.zeros(n)
    rhs[node[:, -1]] = g_wire
    lu = _factorise(_nodal_matrix(n, p, q, np.full(p.size, g_wire), to_fixed))
    return lu.solve(rhs).reshape(chains, length)


class _NodalSystem(NamedTuple):
    """``matrix @ x = drive @ v`` gives the unknown node voltages ``x``; ``I = sense.T @ x``.

    ``tail`` > 0 promises that every nonzero row of ``drive`` and ``sense`` lies in the last
    ``tail`` unknowns; 0 promises nothing.
    """

    matrix: scipy.sparse.csc_matrix   # (n, n) symmetric positive definite
    drive: scipy.sparse.csc_matrix    # (n, R) current injected per volt on each driver
    sense: scipy.sparse.csc_matrix    # (n, C) current into each virtual ground per node volt
    tail: int


def _dissection_order(rows: int, cols: int) -> np.ndarray:
    """Elimination order of the unknowns of the network with both wire resistances > 0.

    Unknown ``2 * (i * cols + j)`` is row node ``(i, j)``, the next one column node ``(i, j)``.
    Nested dissection of the grid of cells: a block is cut across its longer side; a cut
    along cell row ``m`` needs only the column nodes of that row as separator (row wires stay
    within their row), a cut along cell column ``m`` only its row nodes. The other nodes of
    the cut line touch nothing but the separator and are eliminated first, then both halves,
    then the separator. The nodes next to the drivers and the virtual grounds (row nodes of
    column 0, then column nodes of row ``rows - 1``) come last.
    """
    pieces: list[np.ndarray] = []

    def dissect(i0: int, i1: int, j0: int, j1: int) -> None:
        if (i1 - i0) * (j1 - j0) <= _LEAF_CELLS:
            cells = (np.arange(i0, i1)[:, None] * cols + np.arange(j0, j1)).ravel()
            pieces.append(np.stack([2 * cells, 2 * cells + 1], axis=1).ravel())
        elif i1 - i0 >= j1 - j0:
            m = (i0 + i1) // 2
            line = 2 * (m * cols + np.arange(j0, j1))
            pieces.append(line)
            dissect(i0, m, j0, j1)
            dissect(m + 1, i1, j0, j1)
            pieces.append(line + 1)
        else:
            m = (j0 + j1) // 2
            line = 2 * (np.arange(i0, i1) * cols + m)
            pieces.append(line + 1)
            dissect(i0, i1, j0, m)
            dissect(i0, i1, m + 1, j1)
            pieces.append(line)

    dissect(0, rows, 0, cols)
    order = np.concatenate(pieces)
    boundary = np.concatenate([2 * np.arange(rows) * cols,
                               2 * ((rows - 1) * cols + np.arange(cols)) + 1])
    inner = np.ones(2 * rows * cols, dtype=bool)
    inner[boundary] = False
    return np.concatenate([order[inner[order]], boundary])


def _full_system(g: np.ndarray, r_row: float, r_col: float) -> _NodalSystem:
    """Both wire resistances > 0: every row node and every column node is unknown."""
    rows, cols = g.shape
    n = 2 * rows * cols
    rank = np.empty(n, dtype=np.intp)
    rank[_dissection_order(rows, cols)] = np.arange(n)
    cell = np.arange(rows * cols).reshape(rows, cols)
    row_node = rank[2 * cell]
    col_node = rank[2 * cell + 1]
    g_row, g_col = 1.0 / r_row, 1.0 / r_col
    p = np.concatenate([row_node.ravel(), row_node[:, :-1].ravel(), col_node[:-1, :].ravel()])
    q = np.concatenate([col_node.ravel(), row_node[:, 1:].ravel(), col_node[1:, :].ravel()])
    cond = np.concatenate([g.ravel(), np.full(rows * (cols - 1), g_row),
                           np.full((rows - 1) * cols, g_col)])
    to_fixed = np.zeros(n)
    to_fixed[row_node[:, 0]] += g_row      # first row segment, to the driver
    to_fixed[col_node[-1, :]] += g_col     # last column segment, to the virtual ground
    drive = scipy.sparse.csc_matrix(
        (np.full(rows, g_row), (row_node[:, 0], np.arange(rows))), shape=(n, rows))
    sense = scipy.sparse.csc_matrix(
        (np.full(cols, g_col), (col_node[-1, :], np.arange(cols))), shape=(n, cols))
    return _NodalSystem(_nodal_matrix(n, p, q, cond, to_fixed), drive, sense, rows + cols)


def _solve(system: _NodalSystem) -> np.ndarray:
    """``M = (sense.T @ matrix^-1 @ drive).T``: one factorisation, all drivers' solves."""
    matrix, drive, sense, tail = system
    n = matrix.shape[0]
    lu = _factorise(matrix)
    identity = np.arange(n)
    if tail and np.array_equal(lu.perm_r, identity) and np.array_equal(lu.perm_c, identity):
        # Every right-hand side is zero outside the tail, and only the tail of the solution
        # is read. Forward substitution then never leaves the tail, and the tail of the
        # backward substitution needs only the tail: it is a solve with the trailing blocks
        # of L and U (the factors of the Schur complement of the tail), here dense.
        t0 = n - tail
        lower = lu.L[t0:, t0:].toarray()
        upper = lu.U[t0:, t0:].toarray()
        x = scipy.linalg.solve_triangular(lower, drive[t0:].toarray(), lower=True,
                                          unit_diagonal=True)
        x = scipy.linalg.solve_triangular(upper, x, lower=False)
        return x.T @ sense[t0:].toarray()
    # General path: every right-hand side through the whole factor, in blocks.
    rows = drive.shape[1]
    out = np.empty((rows, sense.shape[1]))
    block = max(1, _RHS_BLOCK_DOUBLES // n)
    sense_t = sense.T.tocsr()
    for k0 in range(0, rows, block):
        k1 = min(rows, k0 + block)
        x = lu.solve(np.asfortranarray(drive[:, k0:k1].toarray()))
        out[k0:k1] = (sense_t @ x).T
    return out


def effective_matrix(g, r_row, r_col) -> np.ndarray:
    """Effective conductance matrix ``M`` of a crossbar with wire resistance: ``I = v @ M``.

    Parameters
    ----------
    g : array_like, shape (R, C)
        Cell conductances in siemens, finite and >= 0.
    r_row : float
        Resistance of one row-wire segment in ohms, finite and >= 0.
    r_col : float
        Resistance of one column-wire segment in ohms, finite and >= 0.

    Returns
    -------
    ndarray of float64, shape (R, C)
        ``M[k, j]``: current into the virtual ground of column ``j`` per volt on the driver of
        row ``k``, the other drivers at 0 V. A new array (a copy of ``g`` when both wire
        resistances are 0).

    Notes
    -----
    A sparse nodal solve: the nodal conductance matrix is built once (scipy.sparse, CSC) and
    factorised once (SuperLU, in the order the unknowns are numbered and without pivoting:
    the matrix is symmetric positive definite). Nodes joined to a driver or to a virtual
    ground by wire of zero resistance are at its voltage and are not unknowns; no tiny
    resistance replaces a zero one.

    * Both resistances > 0: all ``2 R C`` nodes are unknown, ordered by nested dissection
      of the grid with the nodes next to the drivers and the virtual grounds last. The
      right-hand sides are the ``R`` unit row voltages; they are zero outside those last
      nodes, and the currents are read there, so the solve needs only the trailing
      ``(R + C)``-square blocks of the factors (the Schur complement onto those nodes).
    * ``r_row == 0``: only the column nodes are unknown, and each column is an independent
      chain. By reciprocity ``M[k, j] = g[k, j] * u[k, j]``, ``u`` the column node voltages
      with the virtual grounds at 1 V and the rows at 0 V: one solve serves every row.
    * ``r_col == 0``: only the row nodes are unknown, each row an independent chain, and
      ``M[k, j] = g[k, j] * u[k, j]``, ``u`` the row node voltages with every driver at 1 V.

    A 256 x 256 array with both resistances > 0 takes under 1 s, mostly in the
    factorisation (solving the 256 right-hand sides through the whole factor instead would
    add 6 to 10 s); with one resistance 0, under 0.1 s.

    Raises
    ------
    ValueError
        ``g`` is not a non-empty 2-D array, or has a non-finite or negative entry; ``r_row``
        or ``r_col`` is not a finite number >= 0.
    """
    g, r_row, r_col = _check_crossbar(g, r_row, r_col)
    if r_row == 0 and r_col == 0:
        return g.copy()
    if r_row == 0:
        # Column chains; by reciprocity M[k, j] = g[k, j] times the voltage of column node
        # (k, j) when the virtual grounds are at 1 V and the rows at 0 V.
        return g * _chains(g.T, r_col).T
    if r_col == 0:
        # Row chains; the columns are at 0 V, so the cell current is g times the row node
        # voltage. The rows are independent: one solve with every driver at 1 V.
        return g * _chains(g[:, ::-1], r_row)[:, ::-1]
    return _solve(_full_system(g, r_row, r_col))


# -- dense reference -------------------------------------------------------------------------

def direct_currents(g, r_row, r_col, v) -> np.ndarray:
    """Column currents for one voltage vector, by dense modified nodal analysis.

    An independent reference for :func:`effective_matrix`: every node of the circuit is a
    voltage unknown (drivers, row and column nodes, column ends), every voltage source a
    current unknown, and the elements are stamped one by one into a dense matrix solved
    with ``numpy.linalg.solve``. A wire segment of zero resistance is a 0 V source. The
    column currents are the currents of the 0 V sources (ammeters) between each column's
    end and ground. Meant for small arrays only.

    Parameters
    ----------
    g : array_like, shape (R, C)
        Cell conductances in siemens, finite and >= 0; at most 2500 cells.
    r_row, r_col : float
        Resistance of one row- and one column-wire segment in ohms, finite and >= 0.
    v : array_like, shape (R,)
        Driver voltages in volts.

    Returns
    -------
    ndarray of float64, shape (C,)
        Current into the virtual ground of each column, in amperes.

    Raises
    ------
    ValueError
        A parameter is out of range (as for :func:`effective_matrix`), ``v`` does not hold
        one finite voltage per row, or the array has more than 2500 cells.
    """
    g, r_row, r_col = _check_crossbar(g, r_row, r_col)
    rows, cols = g.shape
    v = _check_v(v, rows)
    if rows * cols > _DIRECT_MAX_CELLS:
        raise ValueError(
            f"g must have at most {_DIRECT_MAX_CELLS} cells for direct_currents (a dense "
            f"reference for small arrays), not {rows} x {cols}; use effective_matrix")

    ground = -1
    nodes: dict[tuple, int] = {}

    def node(*name) -> int:
        return nodes.setdefault(name, len(nodes))

    resistors = []   # (node, node, conductance)
    sources = []     # (plus node, minus node, volts); current flows from plus through it
    for i in range(rows):
        sources.append((node("driver", i), ground, v[i]))
    for i in range(rows):
        for j in range(cols):
            left = node("driver", i) if j == 0 else node("row", i, j - 1)
            if r_row > 0:
                resistors.append((left, node("row", i, j), 1.0 / r_row))
            else:
                sources.append((left, node("row", i, j), 0.0))
    for j in range(cols):
        for i in range(rows):
            below = node("col", i + 1, j) if i < rows - 1 else node("end", j)
            if r_col > 0:
                resistors.append((node("col", i, j), below, 1.0 / r_col))
            else:
                sources.append((node("col", i, j), below, 0.0))
    ammeters = []
    for j in range(cols):
        ammeters.append(len(sources))
        sources.append((node("end", j), ground, 0.0))
    for i in range(rows):
        for j in range(cols):
            resistors.append((node("row", i, j), node("col", i, j), g[i, j]))

    n = len(nodes)
    size = n + len(sources)
    a = np.zeros((size, size))
    rhs = np.zeros(size)
    # Node equations: the currents leaving the node through its elements sum to zero.
    for p, q, cond in resistors:
        for x, y in ((p, q), (q, p)):
            if x != ground:
                a[x, x] += cond
                if y != ground:
                    a[x, y] -= cond
    # Source k: its current leaves the plus node and enters the minus node, and
    # V(plus) - V(minus) = volts.
    for k, (plus, minus, volts) in enumerate(sources):
        row = n + k
        if plus != ground:
            a[plus, row] += 1.0
            a[row, plus] += 1.0
        if minus != ground:
            a[minus, row] -= 1.0
            a[row, minus] -= 1.0
        rhs[row] = volts
    solution = np.linalg.solve(a, rhs)
    return solution[n + np.array(ammeters)]


# -- ngspice ---------------------------------------------------------------------------------

def _spice_number(x: float) -> str:
    """Shortest decimal that reads back as ``x`` (SPICE reads the exponent form)."""
    return repr(float(x))


def spice_netlist(g, r_row, r_col, v) -> str:
    """SPICE netlist (ngspice dialect) of the crossbar, with an operating-point analysis.

    Elements: a voltage source per row driver (``vdrv<i>``, node ``drv<i>``); a resistor per
    row-wire segment (``rrw<i>_<j>``, ending at row node ``row<i>_<j>``) and per column-wire
    segment (``rcw<i>_<j>``, from column node ``col<i>_<j>`` down to the next one, or to
    ``end<j>`` below the last row); a resistor ``1/g`` per cell (``rcell<i>_<j>``), cells with
    ``g == 0`` omitted; a 0 V source per column (``vamm<j>``, from ``end<j>`` to ground) as
    the ammeter. A wire resistance of 0 becomes 0 V sources (``vrw``, ``vcw``) in place of
    the wire resistors: ngspice would replace a 0-ohm resistor by 1 milliohm.

    The ``.control`` block runs the analysis and prints ``i(vamm<j>) = <value>`` for every
    column, 15 significant digits, between the lines ``AIMC_COLUMN_CURRENTS_BEGIN`` and
    ``AIMC_COLUMN_CURRENTS_END`` (see :func:`run_ngspice`). ngspice's current through a
    source flows from its first node through it to its second, so ``i(vamm<j>)`` is the
    current into the virtual ground.

    Parameters
    ----------
    g, r_row, r_col, v
        As for :func:`direct_currents` (any array size).

    Returns
    -------
    str
        The netlist, newline-terminated.

    Raises
    ------
    ValueError
        A parameter is out of range, or ``v`` does not hold one finite voltage per row.
    """
    g, r_row, r_col = _check_crossbar(g, r_row, r_col)
    rows, cols = g.shape
    v = _check_v(v, rows)

    def wire(kind: str, name: str, a: str, b: str, r: float) -> str:
        if r > 0:
            return f"r{kind}{name} {a} {b} {_spice_number(r)}"
        return f"v{kind}{name} {a} {b} dc 0"

    lines = [
        f"aimc crossbar {rows} x {cols}, IR drop",
        f"* r_row = {_spice_number(r_row)} ohm per row-wire segment, "
        f"r_col = {_spice_number(r_col)} ohm per column-wire segment",
        "* column currents: i(vamm<j>), positive into the virtual ground",
    ]
    lines += [f"vdrv{i} drv{i} 0 dc {_spice_number(v[i])}" for i in range(rows)]
    for i in range(rows):
        for j in range(cols):
            left = f"drv{i}" if j == 0 else f"row{i}_{j - 1}"
            lines.append(wire("rw", f"{i}_{j}", left, f"row{i}_{j}", r_row))
    for i, j in zip(*np.nonzero(g), strict=True):
        lines.append(f"rcell{i}_{j} row{i}_{j} col{i}_{j} {_spice_number(1.0 / g[i, j])}")
    for j in range(cols):
        for i in range(rows):
            below = f"col{i + 1}_{j}" if i < rows - 1 else f"end{j}"
            lines.append(wire("cw", f"{i}_{j}", f"col{i}_{j}", below, r_col))
    lines += [f"vamm{j} end{j} 0 dc 0" for j in range(cols)]
    lines += [".op", ".control", "run", "set numdgt=15", f"echo {_BEGIN}"]
    lines += [f"print i(vamm{j})" for j in range(cols)]
    lines += [f"echo {_END}", "quit", ".endc", ".end"]
    return "\n".join(lines) + "\n"


def run_ngspice(netlist: str, executable: str = "ngspice", timeout: float = 60) -> np.ndarray:
    """Simulate a netlist from :func:`spice_netlist` with ngspice; return the column currents.

    Runs ``<executable> -b`` on the netlist in a temporary directory and reads the lines
    ``i(vamm<j>) = <value>`` between the markers the netlist prints.

    Parameters
    ----------
    netlist : str
        The netlist.
    executable : str
        ngspice command name or path.
    timeout : float
        Seconds to wait for ngspice.

    Returns
    -------
    ndarray of float64, shape (C,)
        The column currents, as :func:`direct_currents` gives them.

    Raises
    ------
    FileNotFoundError
        The executable is not found.
    RuntimeError
        ngspice fails, times out, reports a singular matrix, or its output does not hold
        the currents of columns ``0 .. C-1``; the message includes ngspice's output.
    ValueError
        ``timeout`` is not a positive number.
    """
    if (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)
            or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    path = shutil.which(executable)
    hint = (f"ngspice executable {executable!r} not found; install ngspice, for example "
            f"apt-get install ngspice")
    if path is None:
        raise FileNotFoundError(hint)
    with tempfile.TemporaryDirectory(prefix="aimc-irdrop-") as tmp:
        circuit = Path(tmp) / "crossbar.cir"
        circuit.write_text(netlist)
        try:
            done = subprocess.run([path, "-b", circuit.name], cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise FileNotFoundError(hint) from None
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"ngspice did not finish within {timeout} s; output:\n"
                f"{_text(exc.stdout)}{_text(exc.stderr)}") from None
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"ngspice failed (exit status {done.returncode}); output:\n{output}")
    if "singular matrix" in output:
        raise RuntimeError(f"ngspice reports a singular matrix; output:\n{output}")
    begin, end = done.stdout.find(_BEGIN), done.stdout.find(_END)
    currents: dict[int, float] = {}
    if 0 <= begin < end:
        for line in done.stdout[begin + len(_BEGIN):end].splitlines():
            name, sep, value = line.partition("=")
            name = name.strip().lower()
            if not (sep and name.startswith("i(vamm") and name.endswith(")")):
                continue
            try:
                currents[int(name[len("i(vamm"):-1])] = float(value)
            except ValueError:
                raise RuntimeError(
                    f"cannot read the ngspice output line {line!r}; output:\n{output}"
                ) from None
    if not currents or sorted(currents) != list(range(len(currents))):
        raise RuntimeError(
            f"the ngspice output does not hold the column currents i(vamm0), i(vamm1), ... "
            f"between {_BEGIN} and {_END}; output:\n{output}")
    return np.array([currents[j] for j in range(len(currents))])


def _text(data) -> str:
    """Captured process output that may be bytes, str or None."""
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
