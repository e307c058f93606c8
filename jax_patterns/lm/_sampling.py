"""audiocraft's `_sample_next_token`: greedy, full, top-k and top-p sampling of last-step logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sample_next_token(
    logits: jax.Array, key: jax.Array | None, use_sampling: bool, temp: float, top_k: int, top_p: float
) -> jax.Array:
    """audiocraft's `_sample_next_token` on last-step logits `[B, K, card]` -> tokens `[B, K]` (int32).

    Greedy (argmax, first maximum) unless `use_sampling and temp > 0`; then top-p
    if `top_p > 0`, else top-k if `top_k > 0`, else the full distribution.
    """
    if not (use_sampling and temp > 0.0):
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if key is None:
        raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")
    probs = jax.nn.softmax(logits.astype(jnp.float32) / temp, axis=-1)
    if top_p > 0.0:
        order = jnp.argsort(-probs, axis=-1, stable=True)
        sorted_probs = jnp.take_along_axis(probs, order, axis=-1)
        keep = (jnp.cumsum(sorted_probs, axis=-1) - sorted_probs) <= top_p
        choice = jax.random.categorical(key, jnp.log(jnp.where(keep, sorted_probs, 0.0)), axis=-1)
        return jnp.take_along_axis(order, choice[..., None], axis=-1)[..., 0].astype(jnp.int32)
    if top_k > 0:
        kth = jax.lax.top_k(probs, top_k)[0][..., -1:]
        probs = jnp.where(probs >= kth, probs, 0.0)
    return jax.random.categorical(key, jnp.log(probs), axis=-1).astype(jnp.int32)
