"""Sampling settings as traced values (one pytree, scalar or per example) and audiocraft's `_sample_next_token`.

`Sampling` holds what a request may change without a new program: temperature,
top-k, top-p and the guidance coefficient, each a scalar or one value per
example (a served batch mixes requests). Greedy vs sampling and guidance on/off
change the program, so they stay static (`use_sampling`, `cfg_coef is None`).
"""

from __future__ import annotations

import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns._checks import is_host


class Sampling(tp.NamedTuple):
    """Sampling settings of `generate` and `stream`: traced values, so new values compile nothing.

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


def _setting(name: str, value: tp.Any, batch: int, integer: bool, low: float, high: float) -> tp.Any:
    """One setting as `[B]` (int32 or float32): shape and dtype checked; host values range-checked too."""
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
        bad = ~np.isfinite(array.astype(np.float64)) | (array < low) | (array > high)
        if np.any(bad):
            shown = array if array.ndim == 0 else array[np.flatnonzero(bad)[0]]
            raise ValueError(f"`{name}` must lie in [{low}, {high}], got {shown.item()!r}")
    dtype = np.int32 if integer else np.float32
    if host:  # stays on the host: the program's call (or `stream`'s explicit device_put) moves it
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
        temp=_setting("temp", sampling.temp, batch, False, 0.0, math.inf),
        top_k=_setting("top_k", sampling.top_k, batch, True, 0, 2**31 - 1),
        top_p=_setting("top_p", sampling.top_p, batch, False, 0.0, 1.0),
        cfg_coef=None
        if sampling.cfg_coef is None
        else _setting("cfg_coef", sampling.cfg_coef, batch, False, -math.inf, math.inf),
    )


def _per_example(value: tp.Any, logits: jax.Array, dtype: tp.Any) -> jax.Array:
    """A scalar or `[B]` setting as `[B, 1, ..., 1]`, to broadcast against `logits [B, ..., card]`."""
    array = jnp.asarray(value, dtype)
    if array.ndim == 0:
        array = jnp.broadcast_to(array, logits.shape[:1])
    return array.reshape(array.shape + (1,) * (logits.ndim - 1))


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
    full distribution. `temp`, `top_k` and `top_p` are scalars or `[B]` and may
    be traced: one program serves every value. `top_k >= card` keeps every
    code (no truncation; audiocraft's `torch.topk` raises there).
    """
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if not use_sampling:
        return greedy
    if key is None:
        raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")
    card = logits.shape[-1]
    temp = _per_example(temp, logits, jnp.float32)
    top_k = _per_example(top_k, logits, jnp.int32)
    top_p = _per_example(top_p, logits, jnp.float32)
    probs = jax.nn.softmax(logits.astype(jnp.float32) / jnp.where(temp > 0.0, temp, 1.0), axis=-1)
    order = jnp.argsort(-probs, axis=-1, stable=True)
    sorted_probs = jnp.take_along_axis(probs, order, axis=-1)
    # top-p: the smallest prefix of the sorted codes whose mass reaches top_p (drawn in sorted order)
    nucleus = (jnp.cumsum(sorted_probs, axis=-1) - sorted_probs) <= top_p
    choice = jax.random.categorical(key, jnp.log(jnp.where(nucleus, sorted_probs, 0.0)), axis=-1)
    from_top_p = jnp.take_along_axis(order, choice[..., None], axis=-1)[..., 0]
    # top-k: every code at least as probable as the k-th (ties kept, as audiocraft's `probs >= kth`)
    kth = jnp.take_along_axis(sorted_probs, jnp.clip(top_k, 1, card) - 1, axis=-1)
    from_top_k = jax.random.categorical(key, jnp.log(jnp.where(probs >= kth, probs, 0.0)), axis=-1)
    from_all = jax.random.categorical(key, jnp.log(probs), axis=-1)
    token = jnp.where(top_p[..., 0] > 0.0, from_top_p, jnp.where(top_k[..., 0] > 0, from_top_k, from_all))
    return jnp.where(temp[..., 0] > 0.0, token, greedy).astype(jnp.int32)
