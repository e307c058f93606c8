"""Training-side use of a pattern: predictions and a cross entropy that never reverts the logits."""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp

from jax_patterns import _indices, _varlen
from jax_patterns._layout import Pattern

NAN = float("nan")


def compute_predictions(
    apply_fn: tp.Callable[[jax.Array], jax.Array],
    codes: jax.typing.ArrayLike,
    pattern: Pattern,
    special_token: int,
    keep_only_valid_steps: bool = True,
    *,
    lengths: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
    """audiocraft's `LMModel.compute_predictions` for a Flax model (logits channels-last).

    Builds the pattern sequence from `codes`, runs `apply_fn` on it and reverts
    the logits with NaN at positions that have no prediction. The logits are
    never transposed.

    Args:
      apply_fn: the model, `seq [B, K, S] -> logits [B, K, S, card]`.
      codes: `[B, K, T]` integer codes, `T == pattern.timesteps`.
      pattern: the pattern for `T`.
      special_token: the special token id (audiocraft: `card`).
      keep_only_valid_steps: as in audiocraft (True when training).
      lengths: optional per-example lengths `[B]` (see `Pattern.build_pattern_sequence`).

    Returns:
      `(logits [B, K, T, card], mask [B, K, T])`; logits are NaN where the mask is False.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import DelayedPatternProvider
      >>> pattern = DelayedPatternProvider(2).get_pattern(3)
      >>> model = lambda seq: jnp.zeros((*seq.shape, 5))
      >>> logits, mask = compute_predictions(model, jnp.zeros((1, 2, 3), jnp.int32), pattern, 5)
      >>> logits.shape, mask.tolist()
      ((1, 2, 3, 5), [[[True, True, True], [True, True, False]]])
    """
    seq, _, _ = pattern.build_pattern_sequence(codes, special_token, keep_only_valid_steps, lengths=lengths)
    logits = apply_fn(seq)
    values, _, mask = pattern.revert_pattern_logits(logits, NAN, keep_only_valid_steps, card_axis=-1, lengths=lengths)
    return values, jnp.broadcast_to(mask, values.shape[:-1])


def _positions(pattern: Pattern, steps: int, kovs: bool, lengths: tp.Any, batch: int) -> tuple[jax.Array, jax.Array]:
    """For every code `(b, q, t)`: its logit's index in `[K * S]` (`[B, K, T]`) and whether it has one."""
    shape = (batch, pattern.n_q, pattern.timesteps)
    if lengths is None:  # the revert indexes are already `q * S + step`
        indexes, mask = _indices.revert_indexes(pattern, steps, kovs, model_output=True)
        flat = jnp.where(jnp.asarray(mask), jnp.asarray(indexes), 0)
        return jnp.broadcast_to(flat, shape), jnp.broadcast_to(jnp.asarray(mask), shape)
    clipped = jnp.clip(jnp.asarray(lengths, dtype=jnp.int32), 0, pattern.timesteps)
    position, _ = _varlen.revert_positions(pattern, clipped, kovs, model_output=True)
    codebook = jnp.arange(pattern.n_q, dtype=jnp.int32)[None, :, None]
    return codebook * steps + jnp.maximum(position, 0), position >= 0


def pattern_cross_entropy(
    logits_seq: jax.typing.ArrayLike,
    codes: jax.typing.ArrayLike,
    pattern: Pattern,
    *,
    keep_only_valid_steps: bool = True,
    mask: jax.typing.ArrayLike | None = None,
    lengths: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
    """audiocraft's `MusicGenSolver._compute_cross_entropy`, computed in the pattern domain.

    Equal (with its gradient) to reverting `logits_seq` with the pattern and taking
    the cross entropy over positions where `mask & pattern_mask` holds, averaged
    per codebook and then over codebooks; but instead of moving the logits to the
    codes, each code looks up its logit step. Only `[B, K, S]` log-normalisers and
    `[B, K, T]` gathered scalars are made; no `[B, K, T, card]` tensor.

    A codebook with no valid position gives NaN, as in audiocraft (mean of nothing).

    Args:
      logits_seq: model output `[B, K, S, card]` on the built sequence.
      codes: target codes `[B, K, T]`, `T == pattern.timesteps`.
      pattern: the pattern the sequence was built with.
      keep_only_valid_steps: how the sequence was built (audiocraft trains with True).
      mask: optional `[B, K, T]` padding mask (True = real code).
      lengths: optional per-example lengths `[B]`: the pattern of each example is
        `get_pattern(lengths[b])` (as for `build_pattern_sequence(lengths=...)`),
        and codes at `t >= lengths[b]` are ignored.

    Returns:
      `(ce, ce_per_codebook [K])`, float32.

    Raises:
      ValueError: shapes that do not fit the pattern.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import ParallelPatternProvider
      >>> pattern = ParallelPatternProvider(2).get_pattern(3)
      >>> ce, per_codebook = pattern_cross_entropy(jnp.zeros((1, 2, 4, 4)), jnp.zeros((1, 2, 3), jnp.int32), pattern)
      >>> round(float(ce), 4)  # log(4): uniform logits over 4 classes
      1.3863
    """
    logits_seq, codes = jnp.asarray(logits_seq), jnp.asarray(codes)
    if logits_seq.ndim != 4 or codes.ndim != 3:
        raise ValueError(
            f"`logits_seq` must be [B, K, S, card] and `codes` [B, K, T]; got shapes {logits_seq.shape} "
            f"and {codes.shape}"
        )
    batch, n_q, steps, card = logits_seq.shape
    expected_steps = _indices.layout_length(pattern, keep_only_valid_steps)
    if (n_q, steps) != (pattern.n_q, expected_steps):
        raise ValueError(
            f"`logits_seq` has K={n_q}, S={steps}; the pattern needs K={pattern.n_q}, S={expected_steps} "
            f"(keep_only_valid_steps={keep_only_valid_steps})"
        )
    if codes.shape != (batch, n_q, pattern.timesteps):
        raise ValueError(f"`codes` has shape {codes.shape}; expected {(batch, n_q, pattern.timesteps)}")
    if not jnp.issubdtype(codes.dtype, jnp.integer):
        raise TypeError(f"`codes` must hold integer codes, got dtype {codes.dtype}")
    if lengths is not None:
        lengths = _varlen.prepare_lengths(pattern, lengths, (batch,))
    flat_step, valid = _positions(pattern, steps, keep_only_valid_steps, lengths, batch)
    if mask is not None:
        valid = valid & jnp.asarray(mask, dtype=bool)
    targets = jnp.where(valid, codes, 0).astype(jnp.int32)
    flat_step = flat_step.reshape(batch, -1)  # [B, K*T] into [B, K*S]
    log_norm = jax.nn.logsumexp(logits_seq.astype(jnp.float32), axis=-1).reshape(batch, -1)
    picked = jnp.take_along_axis(
        logits_seq.reshape(batch, -1), (flat_step * card + targets.reshape(batch, -1)), axis=1, mode="clip"
    )
    nll = jnp.take_along_axis(log_norm, flat_step, axis=1, mode="clip") - picked.astype(jnp.float32)
    nll = jnp.where(valid, nll.reshape(valid.shape), 0.0)
    count = jnp.sum(valid, axis=(0, 2)).astype(jnp.float32)
    per_codebook = jnp.sum(nll, axis=(0, 2)) / count
    return jnp.mean(per_codebook), per_codebook


def reverted_cross_entropy(logits: jax.Array, codes: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """audiocraft's cross entropy on reverted logits `[B, K, T, card]` (the baseline the pattern CE replaces)."""
    logp = jax.nn.log_softmax(jnp.where(mask[..., None], logits, 0.0).astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, jnp.where(mask, codes, 0)[..., None], axis=-1)[..., 0]
    per_codebook = jnp.sum(jnp.where(mask, nll, 0.0), axis=(0, 2)) / jnp.sum(mask, axis=(0, 2)).astype(jnp.float32)
    return jnp.mean(per_codebook), per_codebook
