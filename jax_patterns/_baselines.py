"""Baselines the benchmarks measure jax_patterns against (not part of any public surface).

- `reverted_cross_entropy`: audiocraft's cross entropy on reverted logits, what
  `lm.pattern_cross_entropy` replaces;
- `bare_decode`: a decode loop with no pattern, what `lm.generate` is compared to.
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp


def reverted_cross_entropy(logits: jax.Array, codes: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """audiocraft's cross entropy on reverted logits `[B, K, T, card]`, averaged per codebook then over codebooks."""
    logp = jax.nn.log_softmax(jnp.where(mask[..., None], logits, 0.0).astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, jnp.where(mask, codes, 0)[..., None], axis=-1)[..., 0]
    per_codebook = jnp.sum(jnp.where(mask, nll, 0.0), axis=(0, 2)) / jnp.sum(mask, axis=(0, 2)).astype(jnp.float32)
    return jnp.mean(per_codebook), per_codebook


def bare_decode(step_fn: tp.Callable, state: tp.Any, first: jax.Array, steps: int) -> jax.Array:
    """A decode loop with no pattern: argmax, feed back; the baseline of the generation benchmark.

    It makes exactly the calls `generate` makes for `steps` decoded steps: one with
    `first`, then `steps - 1` with one step each.

    Args:
      step_fn: as for `generate`.
      state: the initial state.
      first: tokens `[B, K, n]` of the first call.
      steps: number of steps to decode.

    Returns:
      `[B, K, steps]` tokens.
    """
    logits, state = step_fn(state, first)
    out = jnp.zeros((*first.shape[:2], steps), dtype=jnp.int32)
    out = out.at[..., 0].set(jnp.argmax(logits, axis=-1).astype(jnp.int32))

    def body(i, carry):
        out, state = carry
        logits, state = step_fn(state, jax.lax.dynamic_slice_in_dim(out, i - 1, 1, axis=2))
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jax.lax.dynamic_update_index_in_dim(out, token, i, axis=2), state

    out, _ = jax.lax.fori_loop(1, steps, body, (out, state))
    return out


def bare_magnet(
    model_fn: tp.Callable,
    codes: jax.Array,
    iterations: jax.Array,
    guidance: bool,
    sample: tp.Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """The MAGNeT baseline: the model calls `magnet_generate` makes and the same sampling, no bookkeeping.

    `iterations[j]` is iteration `j`'s stage; each iteration runs `model_fn` on
    the whole sequence (`[2B, K, T]` with guidance) and writes the stage's
    codebook back: the argmax, or `sample(logits [B, T, card], j)`. No masking,
    scoring, schedule or prompt.
    """
    batch, n_q, _ = codes.shape

    def body(j, codes):
        stage = iterations[j]
        logits = model_fn(jnp.concatenate([codes, codes]) if guidance else codes, stage)
        logits = jax.lax.dynamic_index_in_dim(logits[:batch], stage, axis=1, keepdims=False)
        row = jnp.argmax(logits, -1) if sample is None else sample(logits, j)
        return jnp.where((jnp.arange(n_q) == stage)[None, :, None], row[:, None, :].astype(codes.dtype), codes)

    return jax.lax.fori_loop(0, iterations.shape[0], body, codes)
