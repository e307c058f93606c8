"""Training-side use of a pattern: predictions and a cross entropy that never reverts the logits."""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import Pattern
from jax_patterns._checks import INT32_LIMIT, check_codes, check_flag, check_int, is_host
from jax_patterns.lm._targets import (
    check_integer,
    check_packed_targets,
    check_pattern,
    codebook_means,
    dtype_of,
    expected_steps,
    pattern_targets,
    steps_hint,
)

NAN = float("nan")


def _kept(codes: tp.Any, lengths: tp.Any, padding_side: tp.Any) -> tp.Any:
    """Host `codes [B, K, T]` with the positions host `lengths` drop set to 0 (what the codes check reads); any
    other input as it is (the checks that follow refuse what is malformed)."""
    if lengths is None or not (is_host(codes) and is_host(lengths)):
        return codes
    array, kept = np.asarray(codes), np.asarray(lengths)
    if array.ndim != 3 or kept.shape != array.shape[:1] or not np.issubdtype(kept.dtype, np.integer):
        return codes
    t = np.arange(array.shape[-1])
    keep = t >= array.shape[-1] - kept[:, None] if padding_side == "left" else t < kept[:, None]
    return np.where(keep[:, None, :], array, np.zeros((), array.dtype))


def compute_predictions(
    apply_fn: tp.Callable[[jax.Array], jax.Array],
    codes: jax.typing.ArrayLike,
    pattern: Pattern,
    special_token: int,
    keep_only_valid_steps: bool = True,
    *,
    lengths: jax.typing.ArrayLike | None = None,
    padding_side: str = "right",
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
      padding_side: with `lengths`, "right" or "left" (examples are the last
        `lengths[b]` timesteps of `codes`; the predictions sit there too).

    Returns:
      `(logits [B, K, T, card], mask [B, K, T])`; logits are NaN where the mask is False.

    Raises:
      TypeError: `pattern` not a Pattern, `apply_fn` not callable, non-integer
        codes, non-floating logits, a bad `special_token` or `keep_only_valid_steps`.
      ValueError: codes of another shape or outside `[0, 2**31)`, bad `lengths` or
        `padding_side`, logits from `apply_fn` that are not `[B, K, S, card]`
        for the sequence `[B, K, S]` it was given.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import DelayedPatternProvider
      >>> pattern = DelayedPatternProvider(2).get_pattern(3)
      >>> model = lambda seq: jnp.zeros((*seq.shape, 5))
      >>> logits, mask = compute_predictions(model, jnp.zeros((1, 2, 3), jnp.int32), pattern, 5)
      >>> logits.shape, mask.tolist()
      ((1, 2, 3, 5), [[[True, True, True], [True, True, False]]])
    """
    pattern = check_pattern(pattern)
    if not callable(apply_fn):
        raise TypeError(f"`apply_fn` must be the model, seq [B, K, S] -> logits [B, K, S, card]; got {apply_fn!r:.80}")
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    # one check of codes, in their own dtype: an int64 2**32 must not reach the model as 0, nor -1 as a wrapped row;
    # with host `lengths`, only the codes they keep (padding past them, -1 say, is never read)
    check_codes(_kept(codes, lengths, padding_side), "codes", n_q=pattern.n_q, below=None)
    shape = tuple(np.shape(codes))
    if shape[-1] != pattern.timesteps:
        raise ValueError(f"`codes` must be [B, K={pattern.n_q}, T={pattern.timesteps}], got shape {shape}")
    seq, _, _ = pattern.build_pattern_sequence(codes, special_token, kovs, lengths=lengths, padding_side=padding_side)
    logits = apply_fn(seq)
    out = tuple(np.shape(logits)) if logits is not None else None
    if out is None or len(out) != 4 or out[:3] != tuple(seq.shape):
        raise ValueError(
            f"`apply_fn` returned logits of shape {out} for the sequence of shape {tuple(seq.shape)}; expected "
            f"[B, K, S, card] = {(*seq.shape, 'card')}"
        )
    if not jnp.issubdtype(dtype_of(logits), jnp.floating):
        raise TypeError(f"`apply_fn` returned logits of dtype {dtype_of(logits)}; expected floating point")
    values, _, mask = pattern.revert_pattern_logits(
        logits, NAN, kovs, card_axis=-1, lengths=lengths, padding_side=padding_side
    )
    return values, jnp.broadcast_to(mask, values.shape[:-1])


def pattern_cross_entropy(
    logits_seq: jax.typing.ArrayLike,
    codes: jax.typing.ArrayLike,
    pattern: Pattern,
    *,
    keep_only_valid_steps: bool = True,
    mask: jax.typing.ArrayLike | None = None,
    lengths: jax.typing.ArrayLike | None = None,
    padding_side: str = "right",
    average: str = "codebooks",
) -> tuple[jax.Array, jax.Array]:
    """audiocraft's `MusicGenSolver._compute_cross_entropy`, computed in the pattern domain.

    Equal (with its gradient) to reverting `logits_seq` with the pattern and taking
    the cross entropy over positions where `mask & pattern_mask` holds, averaged
    per codebook and then over codebooks; but instead of moving the logits to the
    codes, each code looks up its logit step. Only `[B, K, S]` log-normalisers and
    `[B, K, T]` gathered scalars are made; no `[B, K, T, card]` tensor.

    A codebook with no valid position gives NaN, as in audiocraft (mean of nothing);
    so does a batch of 0 examples. A target outside `[0, card)` at a scored
    position (inside the pattern, `mask` and `lengths`) is an error: host
    (numpy) codes raise `ValueError`; device or traced codes, which are never
    read back, make that codebook's loss (and the mean) NaN, never a finite number.
    The logits are indexed per step and then per code, so any `K * S * card`
    that fits in memory works; eager calls move nothing host -> device besides
    the arguments (the pattern's indexes are constants of compiled programs).

    Args:
      logits_seq: model output `[B, K, S, card]` on the built sequence; when
        the pattern starts with the special token, `S - 1` steps (the model run
        on the sequence less its last step, as transformers trains) give the
        same loss, since the last step's logits predict nothing.
      codes: target codes `[B, K, T]`, `T == pattern.timesteps`.
      pattern: the pattern the sequence was built with.
      keep_only_valid_steps: how the sequence was built (audiocraft trains with True).
      mask: optional `[B, K, T]` padding mask (True = real code).
      lengths: optional per-example lengths `[B]`: the pattern of each example is
        `get_pattern(lengths[b])` (as for `build_pattern_sequence(lengths=...)`),
        and codes at `t >= lengths[b]` are ignored.
      padding_side: with `lengths`, "right" or "left" (Dia's batches: example
        `b` is the last `lengths[b]` timesteps of `codes` and the last steps of
        `logits_seq`; codes at `t < T - lengths[b]` are ignored).
      average: "codebooks" (audiocraft's, and MusicGen's in transformers: the
        mean over each codebook's scored codes, then over codebooks) or
        "tokens" (a `CrossEntropyLoss` over every scored code at once, as Moshi's
        depth loss and Dia's loss in transformers). They differ when codebooks
        have different numbers of scored codes.

    Returns:
      `(ce, ce_per_codebook [K])`, float32.

    Raises:
      ValueError: shapes that do not fit the pattern, bad `lengths`, or host
        targets outside `[0, card)` at scored positions.
      TypeError: non-integer codes.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import ParallelPatternProvider
      >>> pattern = ParallelPatternProvider(2).get_pattern(3)
      >>> ce, per_codebook = pattern_cross_entropy(jnp.zeros((1, 2, 4, 4)), jnp.zeros((1, 2, 3), jnp.int32), pattern)
      >>> round(float(ce), 4)  # log(4): uniform logits over 4 classes
      1.3863
    """
    pattern = check_pattern(pattern)
    if logits_seq is None:
        raise TypeError("`logits_seq` is None; expected logits [B, K, S, card]")
    shape = tuple(np.shape(logits_seq))
    if len(shape) != 4:
        raise ValueError(f"`logits_seq` must be [B, K, S, card], got shape {shape}")
    batch, n_q, steps, card = shape
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    if n_q != pattern.n_q or steps not in expected_steps(pattern, kovs):
        raise ValueError(
            f"`logits_seq` has K={n_q}, S={steps}; the pattern needs K={pattern.n_q}, {steps_hint(pattern, kovs)} "
            f"(keep_only_valid_steps={kovs})"
        )
    if not jnp.issubdtype(dtype_of(logits_seq), jnp.floating):
        raise TypeError(f"`logits_seq` must be floating point, got dtype {dtype_of(logits_seq)}")
    options = dict(mask=mask, lengths=lengths, padding_side=padding_side, average=average)
    steps_of, valid, mask = pattern_targets(codes, pattern, batch, card, keep_only_valid_steps=kovs, **options)
    return _cross_entropy(logits_seq, codes, steps_of, valid, mask, average=average)


def _log_normalizer(logits: jax.Array) -> jax.Array:
    """`logsumexp` over the last axis in float32, written so that XLA fuses the cast into the reduction.

    (`jax.nn.logsumexp(x.astype(float32))` materialises a float32 copy of the
    logits, twice a bfloat16 input's size; this form needs no temporary.)
    """
    top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)).astype(jnp.float32)
    return jnp.log(jnp.sum(jnp.exp(logits.astype(jnp.float32) - top), axis=-1)) + top[..., 0]


@functools.partial(jax.jit, static_argnames=("average",))
def _cross_entropy(logits_seq, codes, steps_of, valid, mask, *, average: str):
    """The loss, gathering per step and then per code: every index stays below K * S or card."""
    logits_seq, codes = jnp.asarray(logits_seq), jnp.asarray(codes)
    batch, n_q, _, card = logits_seq.shape
    shape = codes.shape
    valid = jnp.broadcast_to(valid, shape)
    if mask is not None:
        valid = valid & jnp.asarray(mask, dtype=bool)
    in_range = (codes >= 0) & (codes < card)
    bad = valid & ~in_range  # only traced or device codes get here: NaN for their codebook, never a number
    targets = jnp.where(valid & in_range, codes, 0).astype(jnp.int32)
    step = jnp.broadcast_to(jnp.where(valid, steps_of, 0), shape)
    b = jnp.arange(batch, dtype=jnp.int32)[:, None, None]
    q = jnp.arange(n_q, dtype=jnp.int32)[None, :, None]
    picked = logits_seq[b, q, step, targets].astype(jnp.float32)
    log_norm = _log_normalizer(logits_seq)  # [B, K, S]
    nll = jnp.take_along_axis(log_norm, step, axis=2) - picked
    nll = jnp.where(valid, nll, 0.0)
    count = jnp.sum(valid, axis=(0, 2)).astype(jnp.float32)
    per_codebook = jnp.sum(nll, axis=(0, 2)) / count
    per_codebook = jnp.where(jnp.any(bad, axis=(0, 2)), jnp.nan, per_codebook)
    if average == "tokens":
        total = jnp.sum(nll) / jnp.sum(count)
        return jnp.where(jnp.any(bad), jnp.nan, total), per_codebook
    return jnp.mean(per_codebook), per_codebook


def packed_cross_entropy(
    logits_seq: jax.typing.ArrayLike, targets: jax.typing.ArrayLike, *, skip_empty: bool = False
) -> tuple[jax.Array, jax.Array]:
    """The pattern cross entropy of packed rows (`jax_patterns.pack`), with audiocraft's averaging.

    `targets[b, q, s]` is the code the logits at step `s` predict (-1 where none),
    as `pack` makes them, so the loss needs neither the patterns nor a revert:
    the negative log-likelihood of every target, averaged per codebook over the
    batch, then over codebooks. On packed rows run with a block-diagonal mask
    (`CodecLM(seq, segment_ids=..., positions=...)`) it equals
    `pattern_cross_entropy` of the same examples padded to `T_max` with
    `lengths=` (tested, with the gradient). Targets outside `[0, card)` other
    than -1 make that codebook's loss NaN (host targets raise).

    A codebook with no target in the batch has a NaN loss, audiocraft's mean of
    nothing; with `skip_empty=True` (a training objective, what `python -m
    jax_patterns train` uses) the mean is over the codebooks that have targets,
    with a finite gradient, and a batch with no target at all gives 0.

    Args:
      logits_seq: `[B, K, S, card]` logits on the packed tokens.
      targets: `[B, K, S]` int targets (`Packed.targets`).
      skip_empty: leave codebooks without targets out of the mean.

    Returns:
      `(ce, ce_per_codebook [K])`, float32.

    Raises:
      ValueError: shapes that do not match, or host targets outside `[-1, card)`.
      TypeError: non-integer targets.

    Example:
      >>> import jax.numpy as jnp
      >>> ce, _ = packed_cross_entropy(jnp.zeros((1, 2, 3, 4)), jnp.array([[[1, 2, -1], [0, -1, -1]]]))
      >>> round(float(ce), 4)
      1.3863
    """
    shapes = (tuple(np.shape(logits_seq)), tuple(np.shape(targets)))
    if len(shapes[0]) != 4 or shapes[0][:3] != shapes[1]:
        raise ValueError(
            f"`logits_seq` must be [B, K, S, card] and `targets` [B, K, S]; got {shapes[0]} and {shapes[1]}"
        )
    if not jnp.issubdtype(dtype_of(logits_seq), jnp.floating):
        raise TypeError(f"`logits_seq` must be floating point, got dtype {dtype_of(logits_seq)}")
    check_packed_targets(targets, shapes[0][3])
    return _packed_cross_entropy(logits_seq, targets, skip_empty=check_flag("skip_empty", skip_empty))


def _target_nll(logits_seq: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(nll [B, K, S], valid [B, K, S])` of per-step targets (-1: none); 0 where there is no target."""
    card = logits_seq.shape[-1]
    valid = targets != -1
    picked = jnp.take_along_axis(logits_seq, jnp.clip(targets, 0, card - 1)[..., None], axis=-1)[..., 0]
    return jnp.where(valid, _log_normalizer(logits_seq) - picked.astype(jnp.float32), 0.0), valid


@functools.partial(jax.jit, static_argnames=("skip_empty",))
def _packed_cross_entropy(logits_seq, targets, *, skip_empty: bool = False):
    logits_seq, targets = jnp.asarray(logits_seq), jnp.asarray(targets)
    nll, valid = _target_nll(logits_seq, targets)
    bad = jnp.any(valid & ((targets < 0) | (targets >= logits_seq.shape[-1])), axis=(0, 2))
    count = jnp.sum(valid, axis=(0, 2)).astype(jnp.float32)
    return codebook_means(jnp.sum(nll, axis=(0, 2)), count, bad, skip_empty)


def packed_segment_cross_entropy(
    logits_seq: jax.typing.ArrayLike, targets: jax.typing.ArrayLike, segment_ids: jax.typing.ArrayLike, segments: int
) -> jax.Array:
    """Each packed segment's loss as if its example were alone: `[B, segments]`.

    For segment `j` of row `b` (`segment_ids == j + 1`), audiocraft's cross entropy
    of that example by itself: the mean negative log-likelihood of its codes per
    codebook, then the mean over codebooks. Equal to `pattern_cross_entropy` of
    the example as a batch of one (tested). Rows with fewer segments give NaN
    after their last, as an empty batch does. Host targets and segment ids are
    checked; device ones are not read back: a target outside `[0, card)` makes
    its segment NaN, and a target at a position whose segment id is outside
    `[1, segments]` (scored in no segment) makes its row NaN, never a number.

    Args:
      logits_seq: `[B, K, S, card]` logits on the packed tokens.
      targets: `[B, K, S]` (`Packed.targets`).
      segment_ids: `[B, S]` (`Packed.segment_ids`).
      segments: the most segments a row holds (a static int >= 1).

    Returns:
      float32 `[B, segments]`.

    Raises:
      ValueError: shapes that do not match; host targets outside `[-1, card)`; host `segment_ids` outside
        `[0, segments]`, or a target at a position of segment id 0 (padding).
      TypeError: `segments` not an int; non-integer targets or segment ids.
    """
    segments = check_int("segments", segments, minimum=1)
    if segments >= INT32_LIMIT:
        raise ValueError(f"`segments` must be below 2**31, got {segments}")
    shapes = tuple(np.shape(logits_seq)), tuple(np.shape(targets)), tuple(np.shape(segment_ids))
    if len(shapes[0]) != 4 or shapes[0][:3] != shapes[1] or shapes[2] != (shapes[1][0], shapes[1][2]):
        raise ValueError(
            f"expected `logits_seq` [B, K, S, card], `targets` [B, K, S] and `segment_ids` [B, S]; got shapes {shapes}"
        )
    if not jnp.issubdtype(dtype_of(logits_seq), jnp.floating):
        raise TypeError(f"`logits_seq` must be floating point, got dtype {dtype_of(logits_seq)}")
    check_packed_targets(targets, shapes[0][3])
    check_integer("segment_ids", segment_ids, "integer segment ids")
    if is_host(segment_ids):
        ids = np.asarray(segment_ids)
        outside = (ids < 0) | (ids > segments)
        if is_host(targets):  # a target in the padding (id 0) would be scored nowhere
            outside |= (ids == 0) & np.any(np.asarray(targets) != -1, axis=1)
        if outside.any():
            b, s = (int(i) for i in np.argwhere(outside)[0])
            raise ValueError(
                f"`segment_ids`[{b}, {s}] = {int(ids[b, s])}; expected an id in [1, segments={segments}] "
                "(0 only where no target is)"
            )
    return _packed_segment_cross_entropy(logits_seq, targets, segment_ids, segments)


@functools.partial(jax.jit, static_argnums=3)
def _packed_segment_cross_entropy(logits_seq, targets, segment_ids, segments):
    logits_seq, targets, ids = jnp.asarray(logits_seq), jnp.asarray(targets), jnp.asarray(segment_ids)
    nll, valid = _target_nll(logits_seq, targets)  # [B, K, S]
    which = jax.nn.one_hot(ids - 1, segments, dtype=jnp.float32)  # [B, S, R]; padding: zeros
    sums = jnp.einsum("bks,bsr->brk", nll, which)
    counts = jnp.einsum("bks,bsr->brk", valid.astype(jnp.float32), which)
    # device values are not read back: a target outside [0, card) makes its segment NaN, and a target whose
    # segment id is outside [1, segments] (scored nowhere) its row, never a number
    bad = valid & ((targets < 0) | (targets >= logits_seq.shape[-1]))
    bad_segment = jnp.einsum("bks,bsr->br", bad.astype(jnp.float32), which) > 0
    lost = jnp.any(valid & ((ids < 1) | (ids > segments))[:, None, :], axis=(1, 2))
    return jnp.where(bad_segment | lost[:, None], jnp.nan, jnp.mean(sums / counts, axis=-1))
