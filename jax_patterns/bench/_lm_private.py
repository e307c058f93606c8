"""The bench's only use of `jax_patterns.lm`'s private internals: one function per need. Adapt here when they change.

`bench_magnet`'s baseline loop draws its tokens exactly as `magnet_generate`'s
default sampling does (the same annealed temperatures, uniforms and top-p
draw), so that the row measures the bookkeeping alone. `lm` has no public
function for MAGNeT's draw (`sample_next_token` draws differently), hence this
module. Everything else in the bench uses public names only.
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp


def magnet_top_p_sampler(
    keys: jax.Array, decoding_steps: tuple[int, ...], timesteps: int, temp: float = 3.0, top_p: float = 0.9
) -> tp.Callable[[jax.Array, jax.Array], jax.Array]:
    """MAGNeT's sampling step: `sample(logits [B, T, card], j) -> tokens [B, T]` at iteration `j`.

    Args:
      keys: one PRNG key per example, `[B]`, as `magnet_generate` derives them.
      decoding_steps: iterations per stage, as passed to `magnet_generate`.
      timesteps: T.
      temp: the initial temperature (annealed over each stage, as `magnet_generate` does by default).
      top_p: the nucleus.

    Returns:
      The sampler, to be called inside a traced loop.
    """
    from jax_patterns.lm import _magnet_decode as _magnet  # private: the one place the bench reads it
    from jax_patterns.lm._magnet_schedule import schedule, schedule_values

    batch = keys.shape[0]
    table = schedule(decoding_steps)
    temps, _ = schedule_values(table, jnp.full((batch,), temp, jnp.float32), True, None, None)
    zeros, nucleus = jnp.zeros((batch,), jnp.int32), jnp.full((batch,), top_p, jnp.float32)

    def sample(logits: jax.Array, j: jax.Array) -> jax.Array:
        u = _magnet._uniforms(keys, j, timesteps)
        return _magnet._sample(logits, temps[j], u, True, zeros, nucleus)[0]

    return sample
