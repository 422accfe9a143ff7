"""Compiled kernels of the batch path (numba): everything after the matrix product.

The batch path (:meth:`.state.ChipState.mvm`) takes the column charges from a float32
product and settles, value by value, what the exact float64 product would give:

* Error bound. With ``u = 2**-24`` and ``n`` inputs, a float32 product of the float32
  roundings of the drive ``d`` and of the weights ``w``, summed in any order (blocked, with
  or without fused multiply-adds), differs from the exact charge ``q`` by at most
  ``((1 + u)**2 gamma_n + 2 u + u**2) S`` with ``gamma_n = n u / (1 - n u)`` and
  ``S = sum_i |d_i w_i|``; that is below ``(n + 3) u S`` for ``n < 2**20``. The float32
  spread ``|d| @ |w| (1 + 2e-4)`` of the saturation screening is at least ``S`` (its own
  rounding errs by under ``2e-5`` of it), so ``eps = (n + 4) u`` times the spread bounds the
  error; where no spread is computed (bit-serial), ``||d||_2 ||w||_2 >= S`` does.
* Same codes. Rounding to float64 is monotonic, so the noisy value ``v = q + sigma z``
  lies within that bound (and a few float64 ulps) of ``q32 + sigma z``; a converter's code
  is constant between consecutive breakpoints, so where no breakpoint lies within the
  bound of the float32 value both give the same code. The other values (about 1 % of them
  with the ``pcm`` preset at 256 rows) are recomputed exactly: the float64 dot product of
  the drive and the weight column, exact on the weight grid in any order of summation
  (:mod:`.grid`), hence the one product the previous path computed.
* The clamp. Bit-serial integrations clamp the product itself, and the clamp is monotonic
  and moves no two values further apart, so the bound holds for the clamped values. PWM
  vectors whose partial sums may reach the clamp are integrated exactly by the caller
  (:meth:`.state.ChipState._saturating`) and passed in as exact charges.
* Noise. The deviates are those of :func:`.rng.to_normals`, by the same operations in the
  same order (no fused multiply-add: numba compiles without ``contract`` unless told), with
  scipy's own ``ndtri`` in the two outermost bins.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding
from numba import types
from numba.extending import get_cython_function_address

from .rng import _TABLE_BITS

__all__ = ["EXACT_DONE", "convert", "drive32", "epsilon", "noise"]

_LOW_BITS = 32 - _TABLE_BITS
_LOW_MASK = (1 << _LOW_BITS) - 1
_TOP_BIN = (1 << _TABLE_BITS) - 1
_U32 = 2.0**-32
#: The float64 rounding slack on top of the float32 bound, relative to the value and bound.
_SLACK = 2.0**-48

# scipy.special.ndtri's scalar C function, the one the ufunc calls, as a linked symbol (not
# a ctypes pointer: that would keep the kernels out of numba's on-disk cache).
binding.add_symbol("aimc_ndtri",
                   get_cython_function_address("scipy.special.cython_special", "ndtri"))
_ndtri = types.ExternalFunction("aimc_ndtri", types.float64(types.float64))


def epsilon(inputs: int) -> float:
    """Relative error bound of the float32 charges of ``inputs`` driven lines against the
    spread (see the module docstring)."""
    return (inputs + 4) * 2.0**-24


@numba.njit(cache=True, nogil=True)
def drive32(x, table, abs_table, offset, d, a):
    """``d = table[x + offset]`` and ``a = abs_table[x + offset]`` (float32), ``x`` (batch,
    inputs)."""
    b, n = x.shape
    for i in range(b):
        for k in range(n):
            j = x[i, k] + offset
            d[i, k] = table[j]
            a[i, k] = abs_table[j]


#: ``exact[i]`` of a vector already converted (skipped by :func:`convert`).
EXACT_DONE = -2


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _dot(a, b):
    """Exact charge of one output: every partial sum is exact on the grid, so the order of
    summation (free here, for vector code) does not change the result."""
    s = 0.0
    for k in range(a.size):
        s += a[k] * b[k]
    return s


@numba.njit(cache=True, nogil=True, inline="always")
def _guess(v, bp, base, inv_step, offset, m):
    """First guess of the flat index ``j`` of ``v`` in a column's table at ``base``, the one
    with ``bp[j] <= v < bp[j + 1]``: linear, then one step (the linear guess is rarely
    further off; :func:`_count` settles it). Unsigned indices: no wrap-around test."""
    g = np.floor(v * inv_step + offset)
    g = min(max(g, 0.0), np.float64(m))
    j = np.uint64(g) + base
    if v >= bp[j + np.uint64(1)]:
        j += np.uint64(1)
    elif v < bp[j]:
        j -= np.uint64(1)
    return j


@numba.njit(cache=True, nogil=True, inline="always")
def _count(v, bp, j):
    """The flat index with ``bp[j] <= v < bp[j + 1]``, from a guess ``j``."""
    one = np.uint64(1)
    while v >= bp[j + one]:
        j += one
    while v < bp[j]:
        j -= one
    return j


@numba.njit(cache=True, nogil=True)
def noise(raw, row0, row_step, sigma, per_value, start, slope, t):
    """The column noise ``t[i, c] = sigma z`` of every vector ``i``: ``z`` the deviate of word
    ``raw[i * row_step + row0, c]``, as :func:`.rng.to_normals` computes it (``start`` and
    ``slope`` its tables), ``sigma`` per value (``sigma[i, c]``, with ``per_value``) or
    ``sigma[0, 0]``."""
    b, n = t.shape
    for i in range(b):
        r = i * row_step + row0
        for c in range(n):
            word = raw[r, c]
            hi = word >> _LOW_BITS
            if hi == 0 or hi == _TOP_BIN:
                z = _ndtri((np.float64(word) + 0.5) * _U32)
            else:
                z = np.float64(word & _LOW_MASK) * slope[hi]
                z += start[hi]
            t[i, c] = (sigma[i, c] if per_value else sigma[0, 0]) * z


@numba.njit(cache=True, nogil=True)
def convert(q32, t, exact, qx, two_limit, pending, sp32, norm_d, norm_w, use_norms, eps, x,
            drive, offset, w_t, clamp, limit, bp, codes, inv_step, bp_offset, m, half, shift,
            out):
    """Convert one integration of every vector and add its code to ``out`` (batch,
    outputs), int64: ``out += (code - half) << shift``.

    The value converted is the charge plus the noise ``t`` (batch, outputs; ``(1, 1)``
    without noise). ``exact[i]``: :data:`EXACT_DONE` skips vector ``i``; ``k >= 0`` takes
    the exact charges ``qx[k]``; ``-1`` the float32 ones ``q32``, recomputed exactly from
    ``x``, ``drive`` (float64 table indexed ``x + offset``) and ``w_t`` (outputs, inputs)
    where a breakpoint lies within ``eps`` times the spread (``sp32``, or
    ``norm_d[i] norm_w[c]`` when ``use_norms``) of the value, plus its float64 rounding.
    With ``two_limit > 0`` such a vector is screened first: if ``|q32| + sp32 >
    two_limit`` at any output (the spread's enlargement covers the float32 error of
    ``q32``: no partial sum reaches the clamp otherwise), it is left out and ``pending[i]``
    set. ``clamp``: clip the charges to ``+-limit`` (bit-serial). ``bp``, ``codes``,
    ``inv_step``, ``bp_offset`` and ``m``: the converters' tables
    (:meth:`.adc.AdcBank._tabulate`). Returns the number of vectors left out.
    """
    b, n = q32.shape
    noisy = t.shape[0] == b and t.shape[1] == n
    width = np.uint64(m + 2)
    left = 0
    row = np.empty(x.shape[1])
    for i in range(b):
        e = exact[i]
        if e == EXACT_DONE:
            continue
        if e == -1 and two_limit > 0:
            over = False
            for c in range(n):
                if np.float64(abs(q32[i, c])) + np.float64(sp32[i, c]) > two_limit:
                    over = True
                    break
            if over:
                pending[i] = True
                left += 1
                continue
        have_row = False
        for c in range(n):
            noise_ic = t[i, c] if noisy else 0.0
            base = np.uint64(c) * width
            if e >= 0:
                v = qx[e, c] + noise_ic
                j = _count(v, bp, _guess(v, bp, base, inv_step[c], bp_offset[c], m))
            else:
                q = np.float64(q32[i, c])
                if clamp:
                    q = min(max(q, -limit), limit)
                v = q + noise_ic
                j = _guess(v, bp, base, inv_step[c], bp_offset[c], m)
                # The bound, and the float64 roundings of v (either way) and of v -+ d. A
                # guess still off fails this test as a value near a breakpoint does.
                d = eps * (norm_d[i] * norm_w[c] if use_norms else np.float64(sp32[i, c]))
                d += _SLACK * (abs(v) + d)
                if (bp[j] > v - d) | (v + d >= bp[j + np.uint64(1)]):
                    if not have_row:
                        for k in range(row.size):
                            row[k] = drive[x[i, k] + offset]
                        have_row = True
                    q = _dot(row, w_t[c])
                    if clamp:
                        q = min(max(q, -limit), limit)
                    v = q + noise_ic
                    j = _count(v, bp, j)
            out[i, c] += (codes[j] - half) << shift
    return left


# -- Philox-4x64-10 for small draws ------------------------------------------------------
# numpy's Philox builds its generator in a few microseconds, more than the draw of one
# vector's noise; the same function compiled here gives the same words (tested against
# numpy): the counter is incremented before each block, each block is ten rounds with the
# key bumped between rounds, and each 64-bit output is two uint32 words, low half first.

_M0, _M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
_LO32, _S32 = np.uint64(0xFFFFFFFF), np.uint64(32)


@numba.njit(cache=True, nogil=True, inline="always")
def _mulhilo(a, b):
    """High and low 64 bits of the 128-bit product ``a b``."""
    a0, a1, b0, b1 = a & _LO32, a >> _S32, b & _LO32, b >> _S32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _S32) + (p01 & _LO32) + (p10 & _LO32)
    return p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32), a * b


@numba.njit(cache=True, nogil=True)
def philox_words(seed, stream, counter0, counter1, blocks, out):
    """The uint32 words of ``np.random.Philox(counter=[counter0, counter1, 0, 0], key=[seed,
    stream]).random_raw(blocks * 4)``, into ``out`` (``blocks * 8`` words, flat)."""
    c0, c1 = np.uint64(counter0), np.uint64(counter1)
    for blk in range(blocks):
        c0 += np.uint64(1)
        if c0 == np.uint64(0):
            c1 += np.uint64(1)
        x0, x1, x2, x3 = c0, c1, np.uint64(0), np.uint64(0)
        k0, k1 = np.uint64(seed), np.uint64(stream)
        for r in range(10):
            if r:
                k0 += _W0
                k1 += _W1
            hi0, lo0 = _mulhilo(_M0, x0)
            hi1, lo1 = _mulhilo(_M1, x2)
            x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        base = blk * 8
        for k, v in enumerate((x0, x1, x2, x3)):
            out[base + 2 * k] = np.uint32(v & _LO32)
            out[base + 2 * k + 1] = np.uint32(v >> _S32)
