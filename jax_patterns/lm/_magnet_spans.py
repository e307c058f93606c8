"""MAGNeT's spans: ranking scores, widening span starts into masks, and audiocraft's least-probable span masking."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rank(scores: jax.Array) -> jax.Array:
    """Each score's place in decreasing order, ties lowest index first: `[..., N]` int32.

    Counted pairwise for up to 1024 entries (XLA's CPU sort costs more than
    the `N x N` comparisons there), else the inverse of a stable argsort.
    """
    n = scores.shape[-1]
    if n > 1024:
        return jnp.argsort(jnp.argsort(-scores, axis=-1, stable=True), axis=-1, stable=True).astype(jnp.int32)
    before = jnp.arange(n)[None, :] < jnp.arange(n)[:, None]  # [i, j]: j has a lower index than i
    before = before.reshape((1,) * (scores.ndim - 1) + (n, n))
    ahead = (scores[..., None, :] > scores[..., :, None]) | ((scores[..., None, :] == scores[..., :, None]) & before)
    return ahead.sum(-1, dtype=jnp.int32)


def dilate(starts: jax.Array, span_len: int, timesteps: int) -> jax.Array:
    """Span starts `[..., S]` -> the mask `[..., T]` of the spans `[s, s + span_len)` (audiocraft's shifted ORs)."""
    mask = jnp.zeros(starts.shape[:-1] + (timesteps,), bool).at[..., : starts.shape[-1]].set(starts)
    out = mask
    for shift in range(1, span_len):
        out = out | jnp.pad(mask[..., :-shift], [(0, 0)] * (mask.ndim - 1) + [(shift, 0)])
    return out


def _round_half_even(twice: jax.Array) -> jax.Array:
    """Python's `round(twice / 2)` for a non-negative int32 `twice` (ties to even)."""
    half = twice // 2
    return jnp.where(twice % 2 == 1, half + (half % 2), half)


def least_probable_spans(scores: jax.Array, num: jax.Array, span_len: int) -> jax.Array:
    """audiocraft's `_least_probable_span_masking` for one example: token scores `[T]` -> mask `[T]`.

    Overlapping windows of `span_len` are ranked by their summed score; a
    bisection over how many of the best windows to take brings the masked total
    closest to `max(num, span_len)`. The mask returned is the last one tried,
    as audiocraft's loop returns it.
    """
    timesteps = scores.shape[-1]
    windows = scores[: timesteps - span_len + 1]
    for shift in range(1, span_len):  # summed left to right, as torch's `unfold(...).sum(-1)`
        windows = windows + scores[shift : timesteps - span_len + 1 + shift]
    ranks = rank(windows)
    target = jnp.maximum(num, span_len)

    def build(count: jax.Array) -> jax.Array:
        return dilate(ranks < count, span_len, timesteps)

    low, high = target // span_len, target - span_len + 1
    mid = _round_half_even(low + high)

    def searching(state: tuple) -> jax.Array:
        low, high, mid, _ = state
        return (mid > low) & (mid < high)

    def bisect(state: tuple) -> tuple:
        low, high, mid, _ = state
        mask = build(mid)
        over = mask.sum() > target
        low, high = jnp.where(over, low, mid), jnp.where(over, mid, high)
        return low, high, _round_half_even(low + high), mask

    return jax.lax.while_loop(searching, bisect, (low, high, mid, build(mid)))[3]
