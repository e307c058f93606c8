"""The pattern cross entropy fused with the K output heads: the logits `[B, K, S, card]` never exist whole.

`fused_pattern_cross_entropy(hidden, heads, codes, pattern)` equals
`pattern_cross_entropy(einsum("bsd,kdc->bksc", hidden, heads) + bias, codes,
pattern)`, value and gradients, for every option of the unfused loss. How:

1. The codes become per-step targets `[B, K, S]` (the code the logits at step
   `s` of codebook `k` predict, -1 where none): `Pattern.logit_steps` gives each
   code its step, and a step predicts at most one code of its codebook, so one
   scatter of int32 codes places them (the same targets `pack` makes).
2. A custom VJP walks the steps in blocks of `block_steps`: per block it makes
   the block's logits `[B, K, block, card]` in float32, keeps only the per-step
   log-normaliser `[B, K, block]`, and sums the negative log-likelihoods per
   codebook. The backward pass makes each block's logits again, and from them
   the softmax minus the one-hot target, then the gradients of `hidden`,
   `heads` and `bias`. The largest buffer is one block's logits.
3. The target logit is read by compare-and-sum over the vocabulary (no gather
   on the vocabulary axis), so `heads` sharded on `card` (vocabulary
   parallel) or on `K` needs only `[B, K, block]`-sized reductions across
   devices for the loss.

`block_steps=None` takes `max(1, 2**21 // (B * K * card))` steps (at most 2M
float32 logits, 8 MB, per block), capped at `S`.
"""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import Pattern
from jax_patterns._checks import check_flag, check_int
from jax_patterns.lm._targets import (
    check_packed_targets,
    check_pattern,
    codebook_means,
    dtype_of,
    expected_steps,
    pattern_targets,
    steps_hint,
)

BLOCK_ELEMENTS = 2**21
"""Float32 logits per block when `block_steps` is None (8 MB)."""


def default_block_steps(batch: int, n_q: int, card: int, steps: int) -> int:
    """The block of steps `block_steps=None` picks: at most `BLOCK_ELEMENTS` logits, at least 1, at most `S`."""
    return max(1, min(max(steps, 1), BLOCK_ELEMENTS // max(batch * n_q * card, 1)))


def _check_heads(hidden: tp.Any, heads: tp.Any, bias: tp.Any) -> tuple[int, int, int, int]:
    """Shapes and dtypes of `hidden [B, S, D]`, `heads [K, D, card]` and `bias [K, card]`; returns (B, S, K, card)."""
    for name, value in (("hidden", hidden), ("heads", heads)):
        if value is None:
            raise TypeError(f"`{name}` is None; expected an array")
    h_shape, w_shape = tuple(np.shape(hidden)), tuple(np.shape(heads))
    if len(h_shape) != 3:
        raise ValueError(f"`hidden` must be [B, S, D], got shape {h_shape}")
    if len(w_shape) != 3:
        raise ValueError(f"`heads` must be [K, D, card] (one projection per codebook), got shape {w_shape}")
    if w_shape[1] != h_shape[2]:
        raise ValueError(f"`heads` has D={w_shape[1]} (shape {w_shape}) but `hidden` has D={h_shape[2]}")
    if bias is not None and tuple(np.shape(bias)) != (w_shape[0], w_shape[2]):
        raise ValueError(f"`bias` has shape {tuple(np.shape(bias))}; expected [K, card] = {(w_shape[0], w_shape[2])}")
    for name, value in (("hidden", hidden), ("heads", heads), ("bias", bias)):
        if value is not None and not jnp.issubdtype(dtype_of(value), jnp.floating):
            raise TypeError(f"`{name}` must be floating point, got dtype {dtype_of(value)}")
    return h_shape[0], h_shape[1], w_shape[0], w_shape[2]


def _block(block_steps: tp.Any, batch: int, n_q: int, card: int, steps: int) -> int:
    if block_steps is None:
        return default_block_steps(batch, n_q, card, steps)
    # capped at S here, before the static key: every block of S steps or more is one program
    return min(check_int("block_steps", block_steps, minimum=1, maximum=None), max(steps, 1))  # more than S: S


def fused_pattern_cross_entropy(
    hidden: jax.typing.ArrayLike,
    heads: jax.typing.ArrayLike,
    codes: jax.typing.ArrayLike,
    pattern: Pattern,
    *,
    bias: jax.typing.ArrayLike | None = None,
    keep_only_valid_steps: bool = True,
    mask: jax.typing.ArrayLike | None = None,
    lengths: jax.typing.ArrayLike | None = None,
    padding_side: str = "right",
    average: str = "codebooks",
    block_steps: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """`pattern_cross_entropy` of the logits `einsum("bsd,kdc->bksc", hidden, heads) + bias`, never made whole.

    Value and gradients (with respect to `hidden`, `heads` and `bias`) equal the
    unfused loss with every option it has (`keep_only_valid_steps`, `mask`,
    `lengths` host or traced, `padding_side`, `average`, the `S - 1` input
    steps); the compiled program holds no `[B, K, S, card]` array, forward or
    backward (see the module docstring).

    Dtypes (any floating mix, strict dtype promotion included): `hidden` and
    `heads` are multiplied in one dtype, `matmul_dtype` (theirs when they
    agree; for a mix the wider when it is at least float32, else float32:
    every cast exact), and the products accumulate in float32: the logits,
    log-normalisers, sums and the loss are float32, and `bias` is added in
    float32. So bfloat16 inputs give the loss of their float32 casts, and a mix
    gives the loss of the float32 casts of all three. Each gradient comes back
    in its argument's own dtype; the backward matmuls run in `matmul_dtype`
    (for bfloat16 inputs, the logits' gradient rounded to bfloat16 once),
    accumulated in float32.

    Args:
      hidden: `[B, S, D]`, the trunk's output at each sequence step (`S` is the
        pattern's (valid) length, or one less when it starts with its special step).
      heads: `[K, D, card]`, one projection per codebook.
      codes: `[B, K, T]` int targets.
      pattern: the pattern the sequence was built with.
      bias: optional `[K, card]`.
      keep_only_valid_steps: as for `pattern_cross_entropy`.
      mask: as for `pattern_cross_entropy`.
      lengths: as for `pattern_cross_entropy`.
      padding_side: as for `pattern_cross_entropy`.
      average: as for `pattern_cross_entropy`.
      block_steps: steps per block, an int >= 1 (None: `default_block_steps`; more than S: S).

    Returns:
      `(ce, ce_per_codebook [K])`, float32.

    Raises:
      ValueError: shapes that do not fit (K of `heads` against the pattern, D,
        S), bad `lengths`, host targets outside `[0, card)` at scored positions.
      TypeError: non-integer codes, non-floating `hidden` or `heads`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import ParallelPatternProvider
      >>> pattern = ParallelPatternProvider(2).get_pattern(3)
      >>> ce, _ = fused_pattern_cross_entropy(jnp.ones((1, 4, 8)), jnp.zeros((2, 8, 4)), jnp.zeros((1, 2, 3), int),
      ...                                     pattern)
      >>> round(float(ce), 4)  # log(4): uniform logits over 4 classes
      1.3863
    """
    pattern = check_pattern(pattern)
    batch, steps, n_q, card = _check_heads(hidden, heads, bias)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    if n_q != pattern.n_q:
        raise ValueError(f"`heads` has K={n_q} codebooks but the pattern has n_q={pattern.n_q}")
    if steps not in expected_steps(pattern, kovs):
        raise ValueError(
            f"`hidden` has S={steps} steps; the pattern needs {steps_hint(pattern, kovs)} "
            f"(keep_only_valid_steps={kovs})"
        )
    options = dict(mask=mask, lengths=lengths, padding_side=padding_side, average=average)
    steps_of, valid, mask = pattern_targets(codes, pattern, batch, card, keep_only_valid_steps=kovs, **options)
    block = _block(block_steps, batch, n_q, card, steps)
    return _fused_pattern(hidden, heads, bias, codes, steps_of, valid, mask, average=average, block=block)


@functools.partial(jax.jit, static_argnames=("average", "block"))
def _fused_pattern(hidden, heads, bias, codes, steps_of, valid, mask, *, average: str, block: int):
    hidden, heads, codes = jnp.asarray(hidden), jnp.asarray(heads), jnp.asarray(codes)
    batch, steps, _ = hidden.shape
    n_q, _, card = heads.shape
    shape = codes.shape
    own = jnp.asarray(valid)
    # each codebook's count of scored codes; without a mask, from the (constant) `[K, T]` table times B, so that
    # XLA never folds a `[B, K, T]` constant inside the caller's jit
    count = jnp.sum(own, axis=(*range(own.ndim - 2), own.ndim - 1)) * (batch if own.ndim == 2 else 1)  # T=0 too
    valid = jnp.broadcast_to(own, shape)
    if mask is not None:
        valid = valid & jnp.asarray(mask, dtype=bool)
        count = jnp.sum(valid, axis=(0, 2))
    in_range = (codes >= 0) & (codes < card)
    bad = valid & ~in_range  # traced or device codes only: NaN for their codebook, never a number
    where = jnp.where(valid, jnp.broadcast_to(steps_of, shape), steps)  # `steps` is out of bounds: dropped
    b = jnp.arange(batch, dtype=jnp.int32)[:, None, None]
    q = jnp.arange(n_q, dtype=jnp.int32)[None, :, None]
    values = jnp.where(valid & in_range, codes, -1).astype(jnp.int32)
    targets = jnp.full((batch, n_q, steps), -1, jnp.int32).at[b, q, where].set(values, mode="drop")
    count = count.astype(jnp.float32)
    bad = jnp.any(bad, axis=(0, 2))
    # the weights of the loss's gradient: a codebook with a bad target or nothing to score (no 1 / 0) weighs 0, as
    # its terms do in the unfused loss's gradient
    if average == "tokens":  # the mean over every scored code
        tokens = jnp.sum(count)
        weights = jnp.where(jnp.any(bad) | (tokens == 0), 0.0, 1.0 / jnp.maximum(tokens, 1.0)) * jnp.ones_like(count)
    else:  # the mean over codebooks of their means
        weights = jnp.where(bad | (count == 0), 0.0, 1.0 / (n_q * jnp.maximum(count, 1.0)))
    total, sums = _fused_sums(hidden, heads, bias, targets, weights, block)
    per_codebook = jnp.where(bad, jnp.nan, sums / count)
    if average == "tokens":
        mean = jnp.where(jnp.any(bad), jnp.nan, jnp.sum(sums) / jnp.sum(count))
    else:
        mean = jnp.mean(per_codebook)
    return _with_gradient_of(mean, total), per_codebook


def fused_packed_cross_entropy(
    hidden: jax.typing.ArrayLike,
    heads: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    bias: jax.typing.ArrayLike | None = None,
    block_steps: int | None = None,
    skip_empty: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """`packed_cross_entropy` of the logits `einsum("bsd,kdc->bksc", hidden, heads) + bias`, never made whole.

    `targets [B, K, S]` are `Packed.targets` (-1 where nothing is predicted);
    value and gradients equal the unfused loss (audiocraft's averaging: per
    codebook, then over codebooks), `skip_empty` included. Dtypes as for
    `fused_pattern_cross_entropy`.

    Args:
      hidden: `[B, S, D]`, the trunk's output on the packed tokens.
      heads: `[K, D, card]`, one projection per codebook.
      targets: `[B, K, S]` int targets (`Packed.targets`, -1 where none).
      bias: optional `[K, card]`.
      block_steps: steps per block, an int >= 1 (None: `default_block_steps`; more than S: S).
      skip_empty: leave codebooks without targets out of the mean (see `packed_cross_entropy`).

    Returns:
      `(ce, ce_per_codebook [K])`, float32.

    Raises:
      ValueError: shapes that do not fit, host targets outside `[-1, card)`.
      TypeError: non-integer targets, non-floating `hidden` or `heads`.
    """
    batch, steps, n_q, card = _check_heads(hidden, heads, bias)
    if targets is None:
        raise TypeError("`targets` is None; expected int targets [B, K, S] (`Packed.targets`)")
    if tuple(np.shape(targets)) != (batch, n_q, steps):
        raise ValueError(f"`targets` has shape {tuple(np.shape(targets))}; expected [B, K, S] = {(batch, n_q, steps)}")
    check_packed_targets(targets, card)
    block = _block(block_steps, batch, n_q, card, steps)
    return _fused_packed(hidden, heads, bias, targets, block=block, skip_empty=check_flag("skip_empty", skip_empty))


@functools.partial(jax.jit, static_argnames=("block", "skip_empty"))
def _fused_packed(hidden, heads, bias, targets, *, block: int, skip_empty: bool):
    hidden, heads, targets = jnp.asarray(hidden), jnp.asarray(heads), jnp.asarray(targets)
    card = heads.shape[-1]
    valid = targets != -1
    bad = jnp.any(valid & ((targets < 0) | (targets >= card)), axis=(0, 2))
    clean = jnp.where(valid & (targets >= 0) & (targets < card), targets, -1).astype(jnp.int32)
    count = jnp.sum(valid, axis=(0, 2)).astype(jnp.float32)
    scored = (count > 0) if skip_empty else jnp.ones_like(bad)
    share = jnp.maximum(jnp.sum(scored), 1).astype(jnp.float32) if skip_empty else jnp.float32(targets.shape[1])
    weights = jnp.where(bad | ~scored | (count == 0), 0.0, 1.0 / (share * jnp.maximum(count, 1.0)))  # no 1 / 0
    total, sums = _fused_sums(hidden, heads, bias, clean, weights, block)
    mean, per_codebook = codebook_means(sums, count, bad, skip_empty)
    return _with_gradient_of(mean, total), per_codebook


def _fused_sums(hidden, heads, bias, targets, weights, block: int) -> tuple[jax.Array, jax.Array]:
    """`(weighted loss, per-codebook sums)` through the blockwise core, inputs in one dtype."""
    hidden, heads = _common(hidden, heads)
    if hidden.shape[1] == 0:  # no step: nothing to score
        zeros = jnp.zeros((heads.shape[0],), jnp.float32)
        return jnp.sum(zeros * weights), zeros
    block = min(block, hidden.shape[1])
    return _loss_and_sums(hidden, heads, _bias_of(bias, heads), targets, weights.astype(jnp.float32), block)


def _with_gradient_of(value: jax.Array, total: jax.Array) -> jax.Array:
    """`value`, differentiated as `total` (the same function of the inputs, where `value` is not NaN)."""
    return total + jax.lax.stop_gradient(value - total)


def matmul_dtype(hidden_dtype: tp.Any, heads_dtype: tp.Any) -> np.dtype:
    """The dtype `hidden` and `heads` are multiplied in: theirs when they agree; for a mix, the wider of the two
    when it is at least float32, else float32 (bfloat16 beside float16: neither holds the other).

    Chosen here, explicitly: `jnp.promote_types` refuses every mix under strict dtype promotion. Every cast it
    implies is exact, so a mix gives the loss of the float32 (or wider) casts of the inputs.

    Example:
      >>> import jax.numpy as jnp
      >>> str(matmul_dtype(jnp.bfloat16, jnp.bfloat16)), str(matmul_dtype(jnp.bfloat16, jnp.float16))
      ('bfloat16', 'float32')
    """
    a, b = np.dtype(hidden_dtype), np.dtype(heads_dtype)
    if a == b:
        return a
    wider = a if jnp.finfo(a).bits >= jnp.finfo(b).bits else b
    return wider if jnp.finfo(wider).bits >= 32 else np.dtype(np.float32)


def _common(hidden: jax.Array, heads: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`hidden` and `heads` in one dtype (`matmul_dtype`), cast explicitly: strict promotion allows no mix."""
    dtype = matmul_dtype(hidden.dtype, heads.dtype)
    return hidden.astype(dtype), heads.astype(dtype)


def _bias_of(bias: tp.Any, heads: jax.Array) -> jax.Array:
    """The bias `[K, card]` in float32, the logits' dtype it is added in (zeros when None: no gradient asked)."""
    if bias is None:
        return jnp.zeros((heads.shape[0], heads.shape[2]), jnp.float32)
    return jnp.asarray(bias).astype(jnp.float32)


# ---------------------------------------------------------------------------
# The blockwise core: per-codebook sums of the negative log-likelihood, with its own gradient
# ---------------------------------------------------------------------------
def _logits(h: jax.Array, heads: jax.Array, bias: jax.Array) -> jax.Array:
    """One block's logits `[B, K, block, card]` in float32."""
    out = jnp.einsum("bsd,kdc->bksc", h, heads, preferred_element_type=jnp.float32)
    return out + bias.astype(jnp.float32)[None, :, None, :]


def _vocabulary(logits: jax.Array) -> jax.Array:
    """The code of each vocabulary entry, `[1, ..., 1, card]` (explicitly broadcast against the logits)."""
    return jax.lax.broadcasted_iota(jnp.int32, (1,) * (logits.ndim - 1) + logits.shape[-1:], logits.ndim - 1)


def _picked_and_norm(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The target's logit (compare-and-sum over the vocabulary: no gather on it) and the log-normaliser."""
    hit = _vocabulary(logits) == targets[..., None]
    picked = jnp.sum(jnp.where(hit, logits, 0.0), axis=-1)
    top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    norm = jnp.log(jnp.sum(jnp.exp(logits - top), axis=-1)) + top[..., 0]
    return picked, norm


def _d_logits(logits: jax.Array, norm: jax.Array, targets: jax.Array, scale: jax.Array) -> jax.Array:
    """`scale[k] * (softmax - onehot(target))` at scored steps, 0 elsewhere: the logits' gradient, in float32.

    The mask is applied after the scale: a codebook with nothing to score may have an infinite or NaN scale (the
    cotangent of `sums / 0`), and its gradient is still 0, as the unfused loss's `where` makes it.
    """
    soft = jnp.exp(logits - norm[..., None])
    hit = _vocabulary(logits) == targets[..., None]
    scaled = (soft - hit.astype(jnp.float32)) * scale[None, :, None, None]
    return jnp.where((targets >= 0)[..., None], scaled, 0.0)


class _Block(tp.NamedTuple):
    """Block `i` of the steps: it starts at `min(i * block, S - block)` (no padding, no copy of `hidden`);
    the steps before `i * block` were the previous block's, so they are not scored twice (`fresh`)."""

    start: jax.Array
    hidden: jax.Array  # [B, block, D]
    targets: jax.Array  # [B, K, block], -1 at steps not scored here
    fresh: jax.Array  # [block] bool


def _block_of(i: jax.Array, hidden: jax.Array, targets: jax.Array, block: int) -> _Block:
    steps = hidden.shape[1]
    start = jnp.minimum(i * block, steps - block)
    fresh = start + jnp.arange(block) >= i * block
    h = jax.lax.dynamic_slice_in_dim(hidden, start, block, axis=1)
    t = jax.lax.dynamic_slice_in_dim(targets, start, block, axis=2)
    return _Block(start, h, jnp.where(fresh[None, None, :], t, -1), fresh)


def _backprop(b: _Block, d_logits: jax.Array, heads: jax.Array, d_hidden: jax.Array, d_heads, d_bias):
    """Adds one block's contribution to the gradients; `d_hidden` rows are written at the block's fresh steps."""
    low = d_logits.astype(heads.dtype)  # the matmuls in the inputs' precision, accumulated in float32
    d_h = jnp.einsum("bksc,kdc->bsd", low, heads, preferred_element_type=jnp.float32).astype(d_hidden.dtype)
    old = jax.lax.dynamic_slice_in_dim(d_hidden, b.start, d_h.shape[1], axis=1)
    d_hidden = jax.lax.dynamic_update_slice_in_dim(d_hidden, jnp.where(b.fresh[None, :, None], d_h, old), b.start, 1)
    d_heads = d_heads + jnp.einsum("bsd,bksc->kdc", b.hidden, low, preferred_element_type=jnp.float32)
    return d_hidden, d_heads, d_bias + jnp.sum(d_logits, axis=(0, 2))


def _count(steps: int, block: int) -> int:
    return -(-steps // block)


def _sums(hidden, heads, bias, targets, block):
    """Per-codebook sums of the negative log-likelihood, block by block (the primal: no gradient work)."""
    n_q = heads.shape[0]

    def body(i, total):
        b = _block_of(i, hidden, targets, block)
        picked, norm = _picked_and_norm(_logits(b.hidden, heads, bias), b.targets)
        return total + jnp.sum(jnp.where(b.targets >= 0, norm - picked, 0.0), axis=(0, 2))

    return jax.lax.fori_loop(0, _count(hidden.shape[1], block), body, jnp.zeros((n_q,), jnp.float32))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _loss_and_sums(hidden, heads, bias, targets, weights, block):
    """`(sum_k weights[k] * sums[k], sums [K])`: the weighted loss and the per-codebook sums.

    The forward pass of a gradient computes the weighted loss's gradients as
    it goes (the weights are the loss's own averaging, known before): each
    block's logits are made once, forward and backward together, so the
    fused loss costs the unfused loss's three matmuls. The sums' gradient
    (asked for only when `per_codebook` itself is differentiated) makes the
    logits again from the kept log-normalisers.
    """
    sums = _sums(hidden, heads, bias, targets, block)
    return jnp.sum(weights * sums), sums


def _forward(hidden, heads, bias, targets, weights, block):
    hidden, heads, bias, targets, weights = (x.value for x in (hidden, heads, bias, targets, weights))
    batch, steps, _ = hidden.shape
    n_q = heads.shape[0]

    def body(i, carry):
        total, norms, d_hidden, d_heads, d_bias = carry
        b = _block_of(i, hidden, targets, block)
        logits = _logits(b.hidden, heads, bias)
        picked, norm = _picked_and_norm(logits, b.targets)
        total = total + jnp.sum(jnp.where(b.targets >= 0, norm - picked, 0.0), axis=(0, 2))
        norms = jax.lax.dynamic_update_slice_in_dim(norms, norm, b.start, axis=2)
        grads = _backprop(b, _d_logits(logits, norm, b.targets, weights), heads, d_hidden, d_heads, d_bias)
        return (total, norms, *grads)

    carry = (
        jnp.zeros((n_q,), jnp.float32),
        jnp.zeros((batch, n_q, steps), jnp.float32),
        jnp.zeros_like(hidden),
        jnp.zeros(heads.shape, jnp.float32),
        jnp.zeros(bias.shape, jnp.float32),
    )
    sums, norms, d_hidden, d_heads, d_bias = jax.lax.fori_loop(0, _count(steps, block), body, carry)
    grads = (d_hidden, d_heads.astype(heads.dtype), d_bias.astype(bias.dtype))
    return (jnp.sum(weights * sums), sums), (hidden, heads, bias, targets, norms, grads)


def _backward(block, residuals, cotangents):
    hidden, heads, bias, targets, norms, grads = residuals
    g_total, g_sums = cotangents
    zero = jax.custom_derivatives.SymbolicZero
    out = [jnp.zeros_like(x) for x in (hidden, heads, bias)]
    if not isinstance(g_total, zero):
        out = [o + (g_total * g.astype(jnp.float32)).astype(o.dtype) for o, g in zip(out, grads)]
    if not isinstance(g_sums, zero):  # `per_codebook` differentiated: make the logits again
        scale = g_sums.astype(jnp.float32)

        def body(i, carry):
            b = _block_of(i, hidden, targets, block)
            logits = _logits(b.hidden, heads, bias)
            norm = jax.lax.dynamic_slice_in_dim(norms, b.start, block, axis=2)
            return _backprop(b, _d_logits(logits, norm, b.targets, scale), heads, *carry)

        zeros = (jnp.zeros_like(hidden), jnp.zeros(heads.shape, jnp.float32), jnp.zeros(bias.shape, jnp.float32))
        d_hidden, d_heads, d_bias = jax.lax.fori_loop(0, _count(hidden.shape[1], block), body, zeros)
        out = [o + g.astype(o.dtype) for o, g in zip(out, (d_hidden, d_heads, d_bias))]
    return (*out, None, None)


_loss_and_sums.defvjp(_forward, _backward, symbolic_zeros=True)
