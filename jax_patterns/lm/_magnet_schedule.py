"""MAGNeT's schedule: which stage each iteration decodes, its mask rate, temperature and guidance coefficient.

The stage and mask rate are a small host table per configuration (`schedule`);
the per-iteration temperature and guidance coefficient are computed from it in
the decode program, host and traced settings alike (`schedule_values`).

audiocraft's mask rate of iteration `i` of `n` is the float32
`cos(pi / 2 * linspace(0, 1, n)[i])`, with torch's float32 `linspace`; the
cosine here is the correctly rounded float32 value, which is torch's on the
shipped configurations (torch's own float32 cosine is 1 ulp off it on some `n`,
and CUDA's differs again: a masked count `int(p * N)` moves by one only where
`p * N` lies within an ulp of an integer). audiocraft computes the temperature
and the guidance coefficient in Python floats (float64); the program computes
them in two-float arithmetic (a float32 pair holding about 48 bits) and rounds
once, which gives audiocraft's float32 value for settings that float32 holds
(the shipped ones; tested bit for bit).
"""

from __future__ import annotations

import functools
import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np


def _linspace32(n: int) -> np.ndarray:
    """torch's float32 `linspace(0, 1, n)` bit for bit: `i * step` below the middle, `1 - (n - 1 - i) * step` above,
    each a fused multiply-add (one rounding), `step` the float32 `1 / (n - 1)`."""
    if n == 1:
        return np.zeros(1, np.float32)
    step = float(np.float32(1.0) / np.float32(n - 1))
    i = np.arange(n, dtype=np.float64)  # i * step is exact in float64; one rounding to float32 below
    return np.where(i < n // 2, i * step, 1.0 - (n - 1 - i) * step).astype(np.float32)


@functools.lru_cache(maxsize=64)
def schedule(decoding_steps: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The decode's iterations in order, over every stage: `stage`, `first` (the stage's first iteration),
    `rate` (float32 mask rate `cos(pi / 2 * linspace(0, 1, n)[i])`), `left` (iterations left after this one)
    and `n` (the stage's iteration count). Read-only numpy arrays of length `sum(decoding_steps)`."""
    stage, first, rate, left, count = [], [], [], [], []
    for k, n in enumerate(decoding_steps):
        x = (_linspace32(n) * np.float32(math.pi)).astype(np.float32) * np.float32(0.5)
        rate.append(np.cos(x.astype(np.float64)).astype(np.float32))
        stage += [k] * n
        first += [True] + [False] * (n - 1)
        left += list(reversed(range(n)))
        count += [n] * n
    out = {
        "stage": np.asarray(stage, np.int32),
        "first": np.asarray(first, bool),
        "rate": np.concatenate(rate).astype(np.float32),
        "left": np.asarray(left, np.int32),
        "n": np.asarray(count, np.int32),
    }
    for array in out.values():
        array.flags.writeable = False
    return out


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`a + b` as `(s, e)` with `s + e` exact (Knuth's TwoSum, no branch)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _split(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Veltkamp's split of a float32 into two 12-bit halves (exact: `hi + lo == a`)."""
    c = a * jnp.float32(4097.0)
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`a * b` as `(p, e)` with `p + e` exact (Dekker's product, without a fused multiply-add)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _rounded(*parts: jax.Array) -> jax.Array:
    """The float32 sum of exact parts, accumulated as a two-float pair and rounded once."""
    hi, lo = parts[0], jnp.zeros_like(parts[0])
    for part in parts[1:]:
        hi, err = _two_sum(hi, part)
        lo = lo + err
    return hi + lo


def schedule_values(
    table: dict[str, np.ndarray], temp: jax.Array, anneal: bool, high: tp.Any, low: tp.Any
) -> tuple[jax.Array, jax.Array]:
    """`[J, B]` temperatures `max(temp * (left / n), 0.01)` and guidance coefficients `p * high + (1 - p) * low`.

    audiocraft's Python (float64) formulas, in two-float arithmetic, rounded once to float32: one path for host
    and traced settings (host settings enter the program as arrays too).
    """
    rate = jnp.asarray(table["rate"])[:, None]
    if anneal:  # left / n as a two-float quotient, then times temp
        left, n = jnp.asarray(table["left"], jnp.float32)[:, None], jnp.asarray(table["n"], jnp.float32)[:, None]
        q = left / n
        p, e = _two_prod(q, n)
        q_lo = ((left - p) - e) / n
        t_hi, t_lo = _two_prod(temp[None, :], q)
        temps = _rounded(t_hi, t_lo, temp[None, :] * q_lo)
    else:
        temps = jnp.broadcast_to(temp[None, :], (rate.shape[0], temp.shape[0]))
    temps = jnp.maximum(temps, jnp.float32(1e-2))
    if high is None:
        return temps, jnp.zeros_like(temps)
    one_minus_hi, one_minus_lo = _two_sum(jnp.float32(1.0), -rate)
    a, a_err = _two_prod(rate, high[None, :])
    b, b_err = _two_prod(one_minus_hi, low[None, :])
    return temps, _rounded(a, b, a_err, b_err, one_minus_lo * low[None, :])
