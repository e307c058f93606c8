"""The targets of the pattern losses, fused or not: their checks, and the averaging of per-codebook sums.

`pattern_cross_entropy` and `packed_cross_entropy` (`_train`) and their fused forms (`_fused`) take the same
codes, options and per-step targets and average the same way; this module is the one home of both, so that the
two loss modules import only public names of it (and nothing of each other).
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import Pattern
from jax_patterns._checks import check_flag, check_padding_side, is_host, validate_lengths

AVERAGES = ("codebooks", "tokens")


def check_pattern(pattern: tp.Any) -> Pattern:
    """`pattern` itself, or a `TypeError` naming it (a provider, None, anything but a `Pattern`).

    Raises:
      TypeError: `pattern` is not a `Pattern`.
    """
    if not isinstance(pattern, Pattern):
        hint = " (call `provider.get_pattern(T)`)" if hasattr(pattern, "get_pattern") else ""
        raise TypeError(f"`pattern` must be a Pattern{hint}, got {pattern!r:.80} of type {type(pattern).__name__}")
    return pattern


def dtype_of(x: tp.Any) -> np.dtype:
    """The dtype of an array-like without moving it (a jax array's own, or numpy's reading of a host value)."""
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def check_integer(name: str, x: tp.Any, what: str = "integer codes") -> None:
    """Raises a `TypeError` naming `name` unless `x` holds integers (bools and floats refused).

    Raises:
      TypeError: `x` is None, or its dtype is not an integer dtype.
    """
    if x is None:
        raise TypeError(f"`{name}` is None; expected {what}")
    dtype = dtype_of(x)
    if dtype == np.bool_ or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"`{name}` must hold {what}, got dtype {dtype}")


def expected_steps(pattern: Pattern, keep_only_valid_steps: bool) -> tuple[int, ...]:
    """The step counts `S` a pattern loss accepts: the sequence's, and one less when it starts with its special
    step (the model run on the sequence less its last step, as transformers trains: the last step predicts nothing).
    """
    full = pattern.valid_steps if keep_only_valid_steps else len(pattern)
    return (full, full - 1) if pattern.starts_with_special_token() else (full,)


def steps_hint(pattern: Pattern, keep_only_valid_steps: bool) -> str:
    """`S=6` or `S=6 or 5 (the inputs less their last step)`, for the messages."""
    steps = expected_steps(pattern, keep_only_valid_steps)
    also = f" or {steps[1]} (the inputs less their last step)" if len(steps) == 2 else ""
    return f"S={steps[0]}{also}"


def pattern_targets(
    codes: tp.Any,
    pattern: Pattern,
    batch: int,
    card: int,
    *,
    keep_only_valid_steps: bool,
    mask: tp.Any,
    lengths: tp.Any,
    padding_side: tp.Any,
    average: tp.Any,
) -> tuple[jax.Array, jax.Array, tp.Any]:
    """Checks a pattern loss's codes and options; returns `(steps_of, valid, mask)`.

    `(steps_of, valid)` are `Pattern.logit_steps` for the options, and `mask`
    the mask to use: a host mask as numpy bools (integer masks compared with 0
    in their own dtype), a device or traced one as it was, or None.

    The one check of `pattern_cross_entropy` and `fused_pattern_cross_entropy`
    (after each has checked its own logits or hidden states): codes `[B, K, T]`
    of an integer dtype, `lengths`, a boolean or integer `mask` of the codes'
    shape, `padding_side`, `average`, and host targets in `[0, card)` at every
    scored position (`check_targets`).

    Raises:
      TypeError: codes or mask of a wrong dtype; a non-bool `keep_only_valid_steps`.
      ValueError: shapes that do not fit, bad `lengths`, `padding_side` or
        `average`, host targets outside `[0, card)` at scored positions.
    """
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    check_integer("codes", codes)
    shape = tuple(np.shape(codes))
    if shape != (batch, pattern.n_q, pattern.timesteps):
        raise ValueError(f"`codes` has shape {shape}; expected {(batch, pattern.n_q, pattern.timesteps)}")
    check_padding_side(padding_side)
    if lengths is not None:  # one length per example of this batch (the pattern alone would take any batch shape)
        validate_lengths(lengths, (batch,), pattern.timesteps)
    if mask is not None:
        if tuple(np.shape(mask)) != shape:
            raise ValueError(f"`mask` has shape {tuple(np.shape(mask))}; expected the codes' shape {shape}")
        dtype = dtype_of(mask)
        if dtype != np.bool_ and not jnp.issubdtype(dtype, jnp.integer):  # a float weight would be rounded to a bool
            raise TypeError(f"`mask` must be boolean (True = a real code), got dtype {dtype}")
        if is_host(mask):  # to bool here, in the mask's own dtype: an int64 2**32 must not wrap to 0 (False) first
            mask = np.asarray(mask) != 0
    if not isinstance(average, str) or average not in AVERAGES:
        raise ValueError(f'`average` must be "codebooks" or "tokens", got {average!r}')
    steps_of, valid = pattern.logit_steps(kovs, lengths=lengths, padding_side=padding_side)
    check_targets(codes, card, valid, mask)
    return steps_of, valid, mask


def check_targets(codes: tp.Any, card: int, valid: tp.Any, mask: tp.Any) -> None:
    """Host codes: a target outside `[0, card)` at a position that is scored raises (device codes give NaN).

    Positions are scored where `valid` (the pattern's, `[..., K, T]`) and `mask`
    hold. When either is traced the positions cannot be known here: the check
    is left to the loss, which makes the codebook of such a target NaN.

    Raises:
      ValueError: a host target outside `[0, card)` at a scored position.
    """
    if not isinstance(codes, (np.ndarray, list, tuple)):
        return  # on a device or traced: never read back; the loss of that codebook is NaN instead
    codes = np.asarray(codes)
    outside = (codes < 0) | (codes >= card)
    if not outside.any():
        return
    if isinstance(mask, jax.core.Tracer) or isinstance(valid, jax.core.Tracer):
        return  # traced lengths or mask: which positions are scored is not known before the run
    if mask is not None:
        outside &= np.asarray(mask, dtype=bool)
    outside &= np.broadcast_to(np.asarray(valid), codes.shape)  # only here, with bad host codes: a small copy
    if outside.any():
        b, q, t = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"`codes`[{b}, {q}, {t}] = {int(codes[b, q, t])} is a target outside [0, card={card}) at a position "
            "that is scored; mask it out (`mask=`, `lengths=`) or fix the targets (special tokens are not targets)"
        )


def check_packed_targets(targets: tp.Any, card: int) -> None:
    """Per-step targets (`Packed.targets`): integer, and host values in `[-1, card)` (device values give NaN).

    Raises:
      TypeError: None, or non-integer targets.
      ValueError: a host target outside `[-1, card)`.
    """
    check_integer("targets", targets)
    if isinstance(targets, (np.ndarray, list, tuple)):
        host = np.asarray(targets)
        bad = (host < -1) | (host >= card)
        if bad.any():
            b, q, s = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`targets`[{b}, {q}, {s}] = {int(host[b, q, s])}; expected -1 or a code in [0, card={card})"
            )


def codebook_means(sums: jax.Array, count: jax.Array, bad: jax.Array, skip_empty: bool) -> tuple[jax.Array, jax.Array]:
    """`(mean, per_codebook)` from per-codebook sums and counts: audiocraft's averaging (the packed losses').

    `bad` codebooks are NaN. An empty codebook is NaN too (a mean of nothing),
    or, with `skip_empty`, left out of the mean with no 0 / 0 anywhere, so the
    gradient stays finite (a batch with nothing to score gives 0).
    """
    if skip_empty:
        safe = sums / jnp.maximum(count, 1.0)
        scored = count > 0
        mean = jnp.sum(jnp.where(scored, safe, 0.0)) / jnp.maximum(jnp.sum(scored), 1).astype(jnp.float32)
        return jnp.where(jnp.any(bad), jnp.nan, mean), jnp.where(bad | ~scored, jnp.nan, safe)
    per_codebook = jnp.where(bad, jnp.nan, sums / count)
    return jnp.mean(per_codebook), per_codebook
