"""Layer 3 for variable lengths: each example's indexes, computed in the graph from its length.

Example `b` of a batch padded to `T_max` is interleaved (or reverted) with its own
pattern `provider.get_pattern(lengths[b])`, exactly as audiocraft would do for
that example alone, and right-padded with the special token to the `T_max` shape
(or left-padded: `padding_side="left"` computes the same indexes, then moves
them to the end of each row with `right_align`).
With a family's `LengthRule`, the indexes are arithmetic on the T_max pattern's
O(K * T_max) tables (`_indices.full_tables`); without one (`GenericRule`) they
are rows of the all-lengths tables (`_indices.generic_tables`), looked up by the
traced length. (Host lengths with a `GenericRule` skip this module: `_ops` asks
only the lengths that occur and passes the rows in.)

`lengths` arrive clipped to `[0, T_max]` and int32 (`_checks.clip_lengths`).
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import _indices
from jax_patterns._layout import GenericRule, Pattern


def expand(x: jax.Array, ndim: int) -> jax.Array:
    """`x` `[...batch]` -> `[...batch, 1, 1]`, then the rank is `ndim`."""
    return x.reshape(x.shape + (1,) * (ndim - x.ndim))


def grid(n_batch: int, size: int, axis: int) -> jax.Array:
    """`arange(size)` shaped to broadcast along axis -2 (axis=0) or -1 (axis=1) of `[...batch, A, B]`."""
    shape = [1] * (n_batch + 2)
    shape[n_batch + axis] = size
    return jnp.arange(size, dtype=jnp.int32).reshape(shape)


def right_align(table: tp.Any, shift: jax.Array) -> jax.Array:
    """Per example, `table` `[...batch, K, N]` moved `shift` `[...batch]` places right along N, -1 shifted in.

    Left padding (`padding_side="left"`): an example's own indexes, computed as
    if it were right-padded, placed at the end of its row.
    """
    table = jnp.asarray(table)
    n_batch = shift.ndim
    j = grid(n_batch, table.shape[-1], 1) - expand(shift, n_batch + 2)
    moved = jnp.take_along_axis(table, jnp.broadcast_to(jnp.maximum(j, 0), table.shape), axis=-1)
    return jnp.where(j >= 0, moved, -1)


def left_positions(pos: tp.Any, ref: tp.Any, lengths: jax.Array, steps: int) -> tuple[jax.Array, jax.Array]:
    """Left padding of a revert: each example's own positions `pos` `[...batch, K, T]` moved to its last `L` timesteps.

    Returns `(own, at)`: the own positions (steps of the example's sequence,
    -1 where none) at the moved timesteps, and where they sit in a padded
    sequence of `steps` steps whose last `ref` steps are the example's.
    """
    own = right_align(pos, pos.shape[-1] - lengths)
    shift = expand(steps - jnp.asarray(ref), lengths.ndim + 2)
    return own, jnp.where(own >= 0, own + shift, -1)


def _lookup(table: np.ndarray, lengths: jax.Array) -> jax.Array:
    return jnp.asarray(table)[lengths]


def build_sources(pattern: Pattern, rule: tp.Any, lengths: jax.Array, kovs: bool) -> tuple[jax.Array, jax.Array]:
    """Per example: `t` of each output cell `[...batch, K, S]` (-1 if special) and `S(L)` `[...batch]`."""
    if isinstance(rule, GenericRule):
        ref, t_src, _ = _indices.generic_tables(pattern, kovs, False)
        return _lookup(t_src, lengths), _lookup(ref, lengths)
    n_batch, out_steps = lengths.ndim, _indices.layout_length(pattern, kovs)
    ref = _lookup(rule.ref_steps(np.arange(pattern.timesteps + 1), kovs).astype(np.int32), lengths)
    t_at, _ = _indices.full_tables(pattern)
    L = expand(lengths, n_batch + 2)
    steps = grid(n_batch, out_steps, 1)
    full_steps = jnp.clip(rule.to_full(jnp, L, steps, pattern.timesteps), 0, max(len(pattern) - 1, 0))
    codebooks = grid(n_batch, pattern.n_q, 0)
    t = jnp.asarray(t_at.reshape(-1))[codebooks * len(pattern) + full_steps]
    return jnp.where((steps < expand(ref, n_batch + 2)) & (t < L), t, -1), ref


def revert_positions(
    pattern: Pattern, rule: tp.Any, lengths: jax.Array, kovs: bool, model_output: bool
) -> tuple[jax.Array, jax.Array]:
    """Per example: the step of each code in its own sequence `[...batch, K, T]` (-1 if none), and `S(L)`."""
    if isinstance(rule, GenericRule):
        ref, _, pos = _indices.generic_tables(pattern, kovs, model_output)
        return _lookup(pos, lengths), _lookup(ref, lengths)
    n_batch = lengths.ndim
    all_lengths = np.arange(pattern.timesteps + 1)
    ref = _lookup(rule.ref_steps(all_lengths, kovs).astype(np.int32), lengths)
    _, step_of = _indices.full_tables(pattern)
    L = expand(lengths, n_batch + 2)
    full_step = jnp.asarray(step_of).reshape((1,) * n_batch + step_of.shape)
    step = rule.from_full(jnp, L, full_step, pattern.timesteps)  # in layout(L); within its (valid) steps
    position = step
    if model_output:  # the logits at step s predict step s + 1: read from the step before
        shift = _lookup(rule.starts_with_special(all_lengths).astype(np.int32), lengths)
        position = step - expand(shift, n_batch + 2)
    ok = (grid(n_batch, pattern.timesteps, 1) < L) & (full_step >= 0) & (position >= 0)
    ok &= step < expand(ref, n_batch + 2)
    return jnp.where(ok, position, -1), ref
