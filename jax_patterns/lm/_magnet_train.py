"""MAGNeT's training step (audiocraft 1.3.0 `MagnetSolver.run_step`): the masks, the inputs and the loss.

`MagnetSolver` draws one stage for the batch and a span mask per example;
`magnet_mask`, `magnet_inputs` and `magnet_cross_entropy` are its three parts,
each usable with a traced `stage` (one compiled train step for every stage).
"""

from __future__ import annotations

import functools
import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns._checks import (
    check_codes,
    check_int,
    check_int_token,
    check_key,
    check_padding_side,
    clip_lengths,
    is_host,
    validate_lengths,
)
from jax_patterns.lm._magnet_spans import dilate


@functools.lru_cache(maxsize=64)
def maskrate_to_spans(timesteps: int, span_len: int) -> np.ndarray:
    """audiocraft's `_calc_mean_maskrate_to_u_LUT`: int32 `[101]`, mask rate in percent -> number of span starts.

    The mean mask rate of `u` random span starts is `1 - C(T - L, u) / C(T, u)`
    (computed as audiocraft does, a running product in float64); entry `m` is
    the first `u` whose rate reaches `m / 100`.
    """
    rates = [0.0]
    v = (timesteps - span_len) / float(timesteps)
    for u in range(1, timesteps):
        rates.append(1 - v)
        v *= (timesteps - span_len - u) / (timesteps - u)
    table = np.searchsorted(np.asarray(rates), np.arange(101) / 100.0, side="left").astype(np.int32)
    table.flags.writeable = False
    return table


def magnet_mask(
    key: jax.Array, batch: int, timesteps: int, *, n_q: int, span_len: int = 3, mask_timesteps: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """A training step's `(stage, mask [B, T])`, drawn as audiocraft's `MagnetSolver.run_step` draws them.

    One stage for the batch, uniform over `[0, n_q)`; per example a mask rate
    `p = cos(pi / 2 * u)`, `u ~ U(0, 1)`. With `span_len > 1`,
    `max(LUT[round(100 p)], 1)` span starts (`maskrate_to_spans`, built for
    `mask_timesteps`: the training segment length, default `timesteps`) chosen
    as a uniform subset, each widened right to `span_len` tokens; with
    `span_len <= 1`, `max(round(T p), 1)` single tokens.

    The draws, for a test to hand the same numbers to audiocraft:
    `k_stage, k_rate, k_order = jax.random.split(key, 3)`;
    `stage = jax.random.randint(k_stage, (), 0, n_q)`;
    `u = jax.random.uniform(k_rate, (B,))`; the subset is the positions `i`
    where `argsort(jax.random.uniform(k_order, (B, T)))[b, i] < count`
    (audiocraft's `rand(B, T).argsort(-1) < count`).

    Args:
      key: a PRNG key.
      batch: B.
      timesteps: T of the batch.
      n_q: the number of codebooks K (the stage is drawn in `[0, n_q)`).
      span_len: the span length (audiocraft's `masking.span_len`).
      mask_timesteps: the length the lookup table is built for (default T).

    Returns:
      `(stage, mask)`: an int32 scalar and a bool `[B, T]`.
    """
    key = check_key("key", key)
    batch = check_int("batch", batch, minimum=1)
    timesteps = check_int("timesteps", timesteps, minimum=1)
    n_q = check_int("n_q", n_q, minimum=1)
    span_len = check_int("span_len", span_len, minimum=1)
    segment = timesteps if mask_timesteps is None else check_int("mask_timesteps", mask_timesteps, minimum=1)
    if span_len > 1 and segment <= span_len:
        raise ValueError(f"`mask_timesteps`={segment} must exceed span_len={span_len} for span masks")
    k_stage, k_rate, k_order = jax.random.split(key, 3)
    stage = jax.random.randint(k_stage, (), 0, n_q, dtype=jnp.int32)
    rate = jnp.cos(jax.random.uniform(k_rate, (batch,), jnp.float32) * jnp.float32(math.pi) * jnp.float32(0.5))
    # audiocraft's `rand(B, T).argsort(-1) < count`: the permutation itself (not its inverse) against the count
    order = jnp.argsort(jax.random.uniform(k_order, (batch, timesteps), jnp.float32), -1).astype(jnp.int32)
    if span_len <= 1:
        count = jnp.maximum(jnp.round(timesteps * rate), 1).astype(jnp.int32)
        return stage, order < count[:, None]
    lut = jnp.asarray(maskrate_to_spans(segment, span_len))
    count = jnp.maximum(lut[jnp.round(100 * rate).astype(jnp.int32)], 1)
    return stage, dilate(order < count[:, None], span_len, timesteps)


def _stage(stage: tp.Any, n_q: int) -> tp.Any:
    """`stage` checked: an int in `[0, n_q)` (host), or a traced int32 scalar (clipped there)."""
    if is_host(stage):
        value = check_int("stage", stage.item() if isinstance(stage, np.ndarray) and stage.ndim == 0 else stage)
        if not 0 <= value < n_q:
            raise ValueError(f"`stage`={value} must lie in [0, K={n_q})")
        return jnp.int32(value)
    if stage.ndim != 0 or not jnp.issubdtype(stage.dtype, jnp.integer):
        raise TypeError(f"`stage` must be an int scalar, got shape {stage.shape} dtype {stage.dtype}")
    return jnp.clip(stage.astype(jnp.int32), 0, n_q - 1)


def _mask_of(mask: tp.Any, shape: tuple[int, int]) -> tp.Any:
    if mask is not None and is_host(mask):
        mask = np.asarray(mask)
    if mask is None or mask.dtype != np.bool_:
        raise TypeError(f"`mask` must be a bool array [B, T], got {getattr(mask, 'dtype', type(mask).__name__)}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"`mask` has shape {tuple(mask.shape)}; expected [B, T] = {shape}")
    return jnp.asarray(mask)


def magnet_inputs(codes: tp.Any, stage: tp.Any, mask: tp.Any, mask_token: int) -> jax.Array:
    """The model's training input: codebooks below `stage` clean, the stage's `mask` positions and every codebook
    above it `mask_token` (audiocraft's `run_step`). `codes [B, K, T]`, `mask [B, T]` -> int32 `[B, K, T]`."""
    mask_token = check_int_token("mask_token", mask_token)
    if mask_token < 0:
        raise ValueError(f"`mask_token` must be >= 0 (a row of the model's embedding), got {mask_token}")
    codes = check_codes(codes, "codes", n_q=None, below=None, forbid=(mask_token,))
    batch, n_q, timesteps = codes.shape
    stage = _stage(stage, n_q)
    mask = _mask_of(mask, (batch, timesteps))
    level = jnp.arange(n_q)[None, :, None]
    hidden = (level > stage) | ((level == stage) & mask[:, None, :])
    return jnp.where(hidden, jnp.int32(mask_token), codes.astype(jnp.int32))


def magnet_cross_entropy(
    logits: jax.Array,
    codes: tp.Any,
    stage: tp.Any,
    mask: tp.Any,
    *,
    lengths: tp.Any = None,
    padding_side: str = "right",
) -> jax.Array:
    """audiocraft's `_compute_cross_entropy_magnet`: the token mean of codebook `stage`'s cross entropy over its
    masked, non-padding positions. NaN when no position is scored (as torch's `cross_entropy` with every target
    ignored).

    Args:
      logits: `[B, K, T, card]`.
      codes: `[B, K, T]` targets in `[0, card)`.
      stage: the trained codebook, an int or a traced int32 scalar.
      mask: bool `[B, T]`, the stage's masked positions (`magnet_mask`).
      lengths: optional `[B]` valid frames per example (padding is not scored).
      padding_side: "right" (frames `[0, lengths)`) or "left" (the last `lengths` frames).

    Returns:
      A float32 scalar.
    """
    codes = check_codes(codes, "codes", n_q=None, below=None)
    batch, n_q, timesteps = codes.shape
    if logits is None or not hasattr(logits, "shape"):
        raise TypeError(f"`logits` must be an array [B, K, T, card], got {type(logits).__name__}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"`logits` must be floating point, got dtype {logits.dtype}")
    if tuple(logits.shape[:3]) != (batch, n_q, timesteps) or logits.ndim != 4:
        raise ValueError(
            f"`logits` has shape {tuple(logits.shape)}; expected [B, K, T, card] with [B, K, T] = "
            f"{(batch, n_q, timesteps)}"
        )
    check_codes(codes, "codes", n_q=n_q, below=logits.shape[-1])
    stage = _stage(stage, n_q)
    mask = _mask_of(mask, (batch, timesteps))
    left = check_padding_side(padding_side)
    if lengths is not None:
        lengths = clip_lengths(validate_lengths(lengths, (batch,), timesteps, bound="T"), timesteps)
        position = jnp.arange(timesteps)[None, :]
        valid = position >= (timesteps - lengths)[:, None] if left else position < lengths[:, None]
        mask = mask & valid
    row = jax.lax.dynamic_index_in_dim(logits, stage, axis=1, keepdims=False).astype(jnp.float32)
    target = jax.lax.dynamic_index_in_dim(codes, stage, axis=1, keepdims=False).astype(jnp.int32)
    picked = jnp.take_along_axis(jax.nn.log_softmax(row, axis=-1), target[..., None], axis=-1)[..., 0]
    return -jnp.sum(jnp.where(mask, picked, 0.0)) / jnp.sum(mask).astype(jnp.float32)
