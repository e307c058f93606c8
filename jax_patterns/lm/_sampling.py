"""Sampling settings as traced values, the one top-k / top-p truncation, and audiocraft's `_sample_next_token`.

`Sampling` holds what a request may change without a new program: temperature,
top-k, top-p and the guidance coefficient, each a scalar or one value per
example (a served batch mixes requests). Greedy vs sampling and guidance on/off
change the program, so they stay static (`use_sampling`, `cfg_coef is None`).

`truncation(probs, top_k, top_p)` is the one implementation of top-k and
nucleus truncation, shared by `sample_next_token` and MAGNeT's sampler (they
draw differently). It needs no sort: each threshold is found by a bisection on
the probability's float32 bits (30 passes of a compare-and-sum over the
vocabulary), and it runs only when some example asks for it (`lax.cond`).
"""

from __future__ import annotations

import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns._checks import check_flag, check_key, is_host


class Sampling(tp.NamedTuple):
    """Sampling settings of `generate`, `stream` and `Engine`: traced values, so new values compile nothing.

    Each field is a scalar or `[B]` (one per example). `cfg_coef=None` turns
    classifier-free guidance off (that choice is static); a number or `[B]`
    turns it on.

    Attributes:
      temp: temperature (> 0 samples; <= 0 is greedy for that example, as audiocraft's `temp > 0` test).
      top_k: keep the `top_k` most probable codes (0: off; `top_k >= card` keeps every code).
      top_p: nucleus sampling threshold in `[0, 1]` (0: off; it takes precedence over `top_k`).
      cfg_coef: guidance coefficient, `uncond + (cond - uncond) * cfg_coef`, or None.
    """

    temp: tp.Any = 1.0
    top_k: tp.Any = 0
    top_p: tp.Any = 0.0
    cfg_coef: tp.Any = None


def setting(name: str, value: tp.Any, batch: int, integer: bool, low: float, high: float) -> tp.Any:
    """One setting as `[B]` (int32 or float32): shape and dtype checked; host values range-checked too.

    Host values stay numpy (the caller moves them with one explicit `jax.device_put`).

    Raises:
      TypeError: None, a bool, a string, a float where an int is expected.
      ValueError: a shape other than a scalar or `[B]`; a host value outside `[low, high]` or not finite.
    """
    if value is None:
        raise TypeError(f"`{name}` is None; expected a number or one per example [{batch}]")
    host = is_host(value)
    array: tp.Any = value
    if host:
        try:
            array = np.asarray(value)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"`{name}` must be a number or [{batch}] numbers, got {type(value).__name__}") from err
    kind = array.dtype
    if kind == np.bool_ or not (jnp.issubdtype(kind, jnp.integer) or (jnp.issubdtype(kind, jnp.floating))):
        raise TypeError(f"`{name}` must be a number or [{batch}] numbers, got {value!r} of dtype {kind}")
    if integer and not jnp.issubdtype(kind, jnp.integer):
        if not (host and np.all(np.mod(array, 1) == 0)):
            raise TypeError(f"`{name}` must be an int (or [{batch}] ints), got {value!r}")
    if tuple(array.shape) not in ((), (batch,)):
        raise ValueError(f"`{name}` has shape {tuple(array.shape)}; expected a scalar or ({batch},), one per example")
    if host:
        wide = array.astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(wide) | (array < low) | (array > high)
            if not integer:  # a float32 setting: a finite value past float32's range would become inf
                bad |= np.abs(wide) > np.finfo(np.float32).max
        if np.any(bad):
            shown = array if array.ndim == 0 else array[np.flatnonzero(bad)[0]]
            if (low, high) == (-math.inf, math.inf):
                raise ValueError(f"`{name}` must be a finite number within float32's range, got {shown.item()!r}")
            past = not integer and np.isfinite(float(shown)) and abs(float(shown)) > float(np.finfo(np.float32).max)
            note = " (past float32's range)" if past else ""
            raise ValueError(f"`{name}` must lie in [{low}, {high}], got {shown.item()!r}{note}")
    dtype = np.int32 if integer else np.float32
    if host:
        return np.broadcast_to(np.asarray(array).astype(dtype), (batch,))
    return jnp.broadcast_to(array.astype(dtype), (batch,))


def settings(sampling: Sampling, batch: int) -> Sampling:
    """`sampling` checked and broadcast to `[B]` arrays (`cfg_coef` stays None when guidance is off).

    Raises:
      TypeError: a setting that is None (but `cfg_coef`), a bool, a string, a float `top_k`.
      ValueError: a shape other than a scalar or `[B]`; a host value out of range
        (temperature < 0, `top_k` < 0, `top_p` outside `[0, 1]`, a non-finite value).
    """
    if not isinstance(sampling, Sampling):
        raise TypeError(f"`sampling` must be an lm.Sampling, got {type(sampling).__name__}")
    return Sampling(
        temp=setting("temp", sampling.temp, batch, False, 0.0, math.inf),
        top_k=setting("top_k", sampling.top_k, batch, True, 0, 2**31 - 1),
        top_p=setting("top_p", sampling.top_p, batch, False, 0.0, 1.0),
        cfg_coef=None
        if sampling.cfg_coef is None
        else setting("cfg_coef", sampling.cfg_coef, batch, False, -math.inf, math.inf),
    )


def per_example(value: tp.Any, like: jax.Array, dtype: tp.Any) -> jax.Array:
    """A scalar or `[B]` setting as `[B, 1, ..., 1]`, to broadcast against `like [B, ...]`."""
    array = jnp.asarray(value, dtype)
    if array.ndim == 0:
        array = jnp.broadcast_to(array, like.shape[:1])
    return array.reshape(array.shape + (1,) * (like.ndim - 1))


# ---------------------------------------------------------------------------
# Truncation: top-k and nucleus, without a sort
# ---------------------------------------------------------------------------
_ONE_BITS = 0x3F800000  # float32 1.0: the bits of probabilities lie in [0, _ONE_BITS], ordered as the values


def _smallest_passing(passes: tp.Callable[[jax.Array], jax.Array], shape: tuple[int, ...]) -> jax.Array:
    """The smallest float32 `v` in `[0, 1]` with `passes(v)` (monotone: False then True), per row `[..., 1]`.

    A bisection on the bits of non-negative floats (ordered as the values): 30 passes, exact.
    """

    def halve(_: int, bounds: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        low, high = bounds
        mid = low + (high - low) // 2
        ok = passes(jax.lax.bitcast_convert_type(mid, jnp.float32))
        return jnp.where(ok, low, mid + 1), jnp.where(ok, mid, high)

    bounds = (jnp.zeros(shape, jnp.int32), jnp.full(shape, _ONE_BITS, jnp.int32))
    low, _ = jax.lax.fori_loop(0, 30, halve, bounds)
    return jax.lax.bitcast_convert_type(low, jnp.float32)


def _nucleus(probs: jax.Array, top_p: jax.Array) -> jax.Array:
    """The nucleus as a mask in the vocabulary's own order: audiocraft's sorted prefix, without the sort.

    A code is kept when the mass of the codes ahead of it (more probable, or as
    probable with a lower index: a stable descending sort) is at most `top_p`.
    The last kept probability `tau` is the smallest value whose strictly-larger
    mass is at most `top_p` (a bisection); codes above it are kept, and codes
    equal to it while the mass ahead of them, counted in index order, stays
    within `top_p`.
    """

    def above(v: jax.Array) -> jax.Array:
        return jnp.sum(jnp.where(probs > v, probs, 0.0), axis=-1, keepdims=True)

    tau = _smallest_passing(lambda v: above(v) <= top_p, probs.shape[:-1] + (1,))
    tied = probs == tau
    ties_before = jnp.cumsum(tied, axis=-1, dtype=jnp.int32) - tied.astype(jnp.int32)
    return (probs > tau) | (tied & (above(tau) + tau * ties_before.astype(probs.dtype) <= top_p))


def _top_k(probs: jax.Array, top_k: jax.Array) -> jax.Array:
    """Every code at least as probable as the k-th (ties kept, as audiocraft's `probs >= kth`), as a mask."""
    k = jnp.clip(top_k, 1, probs.shape[-1])

    def fewer_above(v: jax.Array) -> jax.Array:
        return jnp.sum(probs > v, axis=-1, keepdims=True, dtype=jnp.int32) < k

    return probs >= _smallest_passing(fewer_above, probs.shape[:-1] + (1,))


def truncation(probs: jax.Array, top_k: tp.Any, top_p: tp.Any) -> jax.Array:
    """The codes sampling may draw: bool `[B, ..., card]`, top-p where `top_p > 0`, else top-k where `top_k > 0`.

    `probs [B, ..., card]` (float32 probabilities); `top_k`, `top_p` scalars or
    `[B]`, traced or not. `top_k >= card` keeps every code. The top-p and top-k
    thresholds are computed only when some example uses them (`lax.cond` on the
    whole batch), never with a sort.
    """
    top_k = per_example(top_k, probs, jnp.int32)
    top_p = per_example(top_p, probs, jnp.float32)
    use_p, use_k = top_p > 0.0, (top_k > 0) & ~(top_p > 0.0)
    everything = jnp.ones(probs.shape, bool)
    keep_p = jax.lax.cond(jnp.any(use_p), _nucleus, lambda p, t: everything, probs, top_p)
    keep_k = jax.lax.cond(jnp.any(use_k), _top_k, lambda p, k: everything, probs, top_k)
    return jnp.where(use_p, keep_p, jnp.where(use_k, keep_k, everything))


def sample_next_token(
    logits: jax.Array,
    key: jax.Array | None,
    use_sampling: bool,
    temp: tp.Any = 1.0,
    top_k: tp.Any = 0,
    top_p: tp.Any = 0.0,
) -> jax.Array:
    """audiocraft's `_sample_next_token` on last-step logits `[B, K, card]` -> tokens `[B, K]` (int32).

    Greedy (argmax, first maximum) unless `use_sampling` and the example's
    `temp > 0`; then top-p if `top_p > 0`, else top-k if `top_k > 0`, else the
    full distribution (`truncation`), one categorical draw over the codes kept.
    `temp`, `top_k` and `top_p` are scalars or `[B]` and may be traced: one
    program serves every value. `top_k >= card` keeps every code (no
    truncation; audiocraft's `torch.topk` raises there).

    `key` is one PRNG key for the batch, or `[B]` keys: then example `b` is
    drawn with `key[b]` exactly as a batch of one drawn with that key (what
    `lm.Engine` and per-example keys use).

    Raises:
      ValueError: sampling without a key; logits that are not `[B, K, card]` or have `card = 0`; keys of another
        shape; a host setting out of range (as for `generate`).
      TypeError: logits that are not floats, a key that is not a PRNG key, a setting of the wrong type, a
        `use_sampling` that is not a bool.
    """
    shape = tuple(getattr(logits, "shape", ()))
    if not jnp.issubdtype(getattr(logits, "dtype", np.dtype(object)), jnp.floating):
        raise TypeError(
            f"`logits` must be a float array [B, K, card], got {type(logits).__name__} {shape} "
            f"{getattr(logits, 'dtype', '')}"
        )
    if len(shape) != 3:
        raise ValueError(f"`logits` must be [B, K, card], got shape {shape}")
    if shape[-1] == 0:
        raise ValueError(f"`logits` has shape {shape}: no codes to choose from (card = 0); expected [B, K, card >= 1]")
    use_sampling = check_flag("use_sampling", use_sampling)
    batch = shape[0]
    temp = setting("temp", temp, batch, False, 0.0, math.inf)
    top_k = setting("top_k", top_k, batch, True, 0, 2**31 - 1)
    top_p = setting("top_p", top_p, batch, False, 0.0, 1.0)
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if not use_sampling:
        return greedy
    if key is None:
        raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")
    key = check_key("key", key, batch)
    temp = per_example(temp, logits, jnp.float32)
    probs = jax.nn.softmax(logits.astype(jnp.float32) / jnp.where(temp > 0.0, temp, 1.0), axis=-1)
    weights = jnp.log(jnp.where(truncation(probs, top_k, top_p), probs, 0.0))
    if key.ndim == 0:
        token = jax.random.categorical(key, weights, axis=-1)
    else:  # one key per example: each row drawn as a batch of one
        token = jax.vmap(lambda k, w: jax.random.categorical(k, w[None], axis=-1)[0])(key, weights)
    return jnp.where(temp[..., 0] > 0.0, token, greedy).astype(jnp.int32)
