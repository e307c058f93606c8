"""MAGNeT (audiocraft's non-autoregressive family): masked iterative decoding, training masks and loss.

audiocraft 1.3.0's `MagnetLMModel._generate_magnet` decodes one codebook per
stage, each in `decoding_steps[stage]` iterations: re-mask the least confident
spans (a cosine schedule sets how many), run the model on the whole sequence,
sample the masked positions, score them. Here the whole decode (every stage,
every iteration) is one compiled `lax.fori_loop`; the per-iteration schedule
(stage, mask rate, temperature, guidance coefficient) is a small host table,
built once per configuration. `MagnetSolver` draws the training masks:
`magnet_mask`, `magnet_inputs` and `magnet_cross_entropy` are its three parts,
each usable with a traced `stage` (one compiled train step for every stage).

Numbers follow audiocraft's: the mask rate of iteration `i` of `n` is the
float32 `cos(pi / 2 * linspace(0, 1, n)[i])`, with torch's float32 `linspace`
(see `schedule`); the cosine is the correctly rounded float32 value, which is
torch's on the shipped configurations (torch's own float32 cosine is 1 ulp off
it on some `n`, and CUDA's differs again: a masked count `int(p * N)` moves by
one only where `p * N` lies within an ulp of an integer).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns._checks import (
    check_flag,
    check_int,
    check_int_token,
    check_key,
    check_padding_side,
    clip_lengths,
    is_host,
    validate_lengths,
)
from jax_patterns.lm._sampling import Sampling, _setting, settings

DONT_REMASK = -1e4
"""audiocraft's score of a position (or span) that must not be re-masked."""

ARRANGEMENTS = ("nonoverlap", "stride1")
SCORINGS = ("max", "prod")


# ---------------------------------------------------------------------------
# The schedule: host tables, once per configuration
# ---------------------------------------------------------------------------
def _linspace32(n: int) -> np.ndarray:
    """torch's float32 `linspace(0, 1, n)` bit for bit: `i * step` below the middle, `1 - (n - 1 - i) * step` above,
    each a fused multiply-add (one rounding), `step` the float32 `1 / (n - 1)`."""
    if n == 1:
        return np.zeros(1, np.float32)
    step = float(np.float32(1.0) / np.float32(n - 1))
    i = np.arange(n, dtype=np.float64)  # i * step is exact in float64; one rounding to float32 below
    return np.where(i < n // 2, i * step, 1.0 - (n - 1 - i) * step).astype(np.float32)


@functools.lru_cache(maxsize=64)
def schedule(decoding_steps: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The decode's iterations in order, over every stage: `stage`, `first` (the stage's first iteration),
    `rate` (float32 mask rate `cos(pi / 2 * linspace(0, 1, n)[i])`), `left` (iterations left after this one)
    and `n` (the stage's iteration count). Read-only numpy arrays of length `sum(decoding_steps)`."""
    stage, first, rate, left, count = [], [], [], [], []
    for k, n in enumerate(decoding_steps):
        x = (_linspace32(n) * np.float32(math.pi)).astype(np.float32) * np.float32(0.5)
        rate.append(np.cos(x.astype(np.float64)).astype(np.float32))
        stage += [k] * n
        first += [True] + [False] * (n - 1)
        left += list(reversed(range(n)))
        count += [n] * n
    out = {
        "stage": np.asarray(stage, np.int32),
        "first": np.asarray(first, bool),
        "rate": np.concatenate(rate).astype(np.float32),
        "left": np.asarray(left, np.int32),
        "n": np.asarray(count, np.int32),
    }
    for array in out.values():
        array.flags.writeable = False
    return out


def _host_number(value: tp.Any) -> bool:
    return is_host(value) and not isinstance(value, (bool, np.bool_))


def _temperatures(temp: tp.Any, anneal: bool, table: dict[str, np.ndarray], batch: int) -> tp.Any:
    """`[J, B]` float32 temperatures `max(temp * left / n, 0.01)` (or `max(temp, 0.01)`), as audiocraft's Python
    floats: host values in float64, rounded once; traced values in float32 in the graph."""
    factor = table["left"] / table["n"] if anneal else np.ones(len(table["n"]))
    if is_host(temp):
        values = np.broadcast_to(np.asarray(temp, np.float64), (batch,))[None, :] * factor[:, None]
        return np.maximum(values, 1e-2).astype(np.float32)
    return jnp.maximum(temp[None, :] * jnp.asarray(factor, jnp.float32)[:, None], jnp.float32(1e-2))


def _coefficients(high: tp.Any, low: tp.Any, table: dict[str, np.ndarray], batch: int) -> tp.Any:
    """`[J, B]` float32 guidance coefficients `p * max + (1 - p) * min` (audiocraft's annealing), host values in
    float64 as audiocraft's `float(mask_p)` arithmetic; traced values in float32."""
    rate = table["rate"].astype(np.float64)[:, None]
    if is_host(high) and is_host(low):
        high, low = (np.broadcast_to(np.asarray(v, np.float64), (batch,))[None] for v in (high, low))
        return (rate * high + (1.0 - rate) * low).astype(np.float32)
    rate32 = jnp.asarray(rate, jnp.float32)
    high, low = (jnp.broadcast_to(jnp.asarray(v, jnp.float32), (batch,))[None] for v in (high, low))
    return rate32 * high + (1.0 - rate32) * low


# ---------------------------------------------------------------------------
# One iteration's parts
# ---------------------------------------------------------------------------
def _inverse_cdf(weights: jax.Array, u: jax.Array) -> jax.Array:
    """The code drawn by the uniform `u`: the first whose cumulative weight exceeds `u` times the total."""
    cdf = jnp.cumsum(weights, axis=-1)
    drawn = jnp.sum(cdf <= (u * cdf[..., -1])[..., None], axis=-1)
    return jnp.minimum(drawn, weights.shape[-1] - 1).astype(jnp.int32)


def _sample(
    logits: jax.Array, temp: jax.Array, u: tp.Any, use_sampling: bool, top_k: jax.Array, top_p: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """audiocraft's sampling step on one codebook's logits `[B, T, card]`: `(tokens, confidence)`, both `[B, T]`.

    `probs = softmax(logits / temp)`. Greedy: the argmax of the logits, its
    probability as confidence. Sampling: top-p (`top_p > 0`; drawn in sorted
    order, confidence from `probs`), else top-k (`top_k > 0`; `probs`
    truncated and renormalised, which is also the confidence: audiocraft's
    `sample_top_k` works in place), else the full `probs`.
    """
    probs = jax.nn.softmax(logits / temp[:, None, None], axis=-1)
    if not use_sampling:
        tokens = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return tokens, jnp.take_along_axis(probs, tokens[..., None], axis=-1)[..., 0]
    card = logits.shape[-1]
    order = jnp.argsort(-probs, axis=-1, stable=True)
    ordered = jnp.take_along_axis(probs, order, axis=-1)
    kept = jnp.where((jnp.cumsum(ordered, axis=-1) - ordered) <= top_p[:, None, None], ordered, 0.0)
    from_top_p = jnp.take_along_axis(order, _inverse_cdf(kept / kept.sum(-1, keepdims=True), u)[..., None], -1)[..., 0]
    kth = jnp.take_along_axis(ordered, jnp.clip(top_k, 1, card)[:, None, None] - 1, axis=-1)
    truncated = jnp.where(probs >= kth, probs, 0.0)
    truncated = truncated / truncated.sum(-1, keepdims=True)
    from_top_k = _inverse_cdf(truncated, u)
    from_all = _inverse_cdf(probs, u)
    use_p, use_k = (top_p > 0)[:, None], (top_k > 0)[:, None]
    tokens = jnp.where(use_p, from_top_p, jnp.where(use_k, from_top_k, from_all))
    confidence = jnp.take_along_axis(
        jnp.where(use_k[..., None] & ~use_p[..., None], truncated, probs), tokens[..., None], axis=-1
    )[..., 0]
    return tokens, confidence


def _rank(scores: jax.Array) -> jax.Array:
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


def _dilate(starts: jax.Array, span_len: int, timesteps: int) -> jax.Array:
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


def _least_probable_spans(scores: jax.Array, num: jax.Array, span_len: int) -> jax.Array:
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
    rank = _rank(windows)
    target = jnp.maximum(num, span_len)

    def build(count: jax.Array) -> jax.Array:
        return _dilate(rank < count, span_len, timesteps)

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


# ---------------------------------------------------------------------------
# The compiled decode
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MagnetConfig:
    """Everything the decode's trace reads besides its arrays (the program's static key)."""

    decoding_steps: tuple[int, ...]
    timesteps: int  # after audiocraft's trim to a multiple of span_len
    span_len: int
    arrangement: str
    scoring: str
    use_sampling: bool
    guidance: bool
    mask_token: int

    @property
    def chunked(self) -> bool:
        return self.span_len > 1 and self.arrangement == "nonoverlap"


def _uniforms(keys: jax.Array, j: jax.Array, timesteps: int) -> jax.Array:
    """Iteration `j`'s uniforms `[B, T]`: `jax.random.uniform(jax.random.fold_in(keys[b], j), (T,))`."""
    return jax.vmap(lambda key: jax.random.uniform(jax.random.fold_in(key, j), (timesteps,), jnp.float32))(keys)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _decode(model_fn, prompt, prompt_lengths, keys, temps, coefs, top_k, top_p, *, cfg: MagnetConfig):
    table = schedule(cfg.decoding_steps)
    batch, n_q, _ = prompt.shape
    T, L, mask = cfg.timesteps, cfg.span_len, cfg.mask_token
    positions = jnp.arange(T)
    lengths = clip_lengths(prompt_lengths, prompt.shape[-1])
    in_prompt = positions[None, :] < lengths[:, None]  # [B, T]
    prompt = jnp.pad(prompt.astype(jnp.int32), ((0, 0), (0, 0), (0, T - prompt.shape[-1])))[..., :T]
    codes = jnp.where(in_prompt[:, None, :], prompt, mask)
    if cfg.chunked:
        units = T // L
        protected = jnp.arange(units)[None, :] < (lengths // L)[:, None]
    else:
        units = T
        protected = in_prompt
    to_generate = (units - protected.sum(-1)).astype(jnp.float32)  # chunks or tokens, per example
    fresh_scores = jnp.where(protected, jnp.float32(DONT_REMASK), jnp.float32(0.0))

    def one_iteration(j, carry):
        codes, row, scores, chosen = carry
        stage = jnp.asarray(table["stage"])[j]
        first = jnp.asarray(table["first"])[j]
        row = jnp.where(first, mask, row)
        scores = jnp.where(first, fresh_scores, scores)
        count = jnp.maximum((jnp.asarray(table["rate"])[j] * to_generate).astype(jnp.int32), 1)  # [B]
        if L > 1 and cfg.arrangement == "stride1":
            remask = jax.vmap(functools.partial(_least_probable_spans, span_len=L))(scores, count)
        else:
            chosen = _rank(scores) < count[:, None]
            remask = jnp.repeat(chosen, L, axis=-1) if cfg.chunked else chosen
        row = jnp.where(remask, mask, row)
        prompt_row = jax.lax.dynamic_index_in_dim(prompt, stage, axis=1, keepdims=False)
        row = jnp.where(in_prompt, prompt_row, row)
        this = (jnp.arange(n_q) == stage)[None, :, None]
        codes = jnp.where(this, row[:, None, :], codes)
        if cfg.guidance:
            logits = model_fn(jnp.concatenate([codes, codes], axis=0), stage)
            cond, uncond = logits[:batch], logits[batch:]
            logits = uncond + (cond - uncond) * coefs[j][:, None, None, None]
        else:
            logits = model_fn(codes, stage)
        logits = jax.lax.dynamic_index_in_dim(logits, stage, axis=1, keepdims=False).astype(jnp.float32)
        u = _uniforms(keys, j, T) if cfg.use_sampling else None
        tokens, confidence = _sample(logits, temps[j], u, cfg.use_sampling, top_k, top_p)
        masked = row == mask
        row = jnp.where(masked, tokens, row)
        codes = jnp.where(this, row[:, None, :], codes)
        if cfg.chunked:
            spans = confidence.reshape(batch, units, L)
            if cfg.scoring == "max":
                scores = 1.0 - spans.max(-1)
            else:
                logs = -jnp.log(spans)
                scores = logs[..., 0]
                for i in range(1, L):  # left to right, as torch's sum over a span
                    scores = scores + logs[..., i]
            scores = jnp.where(chosen, scores, jnp.float32(DONT_REMASK))
        else:
            scores = jnp.where(masked, -jnp.log(confidence), jnp.float32(DONT_REMASK))
        return codes, row, scores, chosen

    carry = (codes, jnp.full((batch, T), mask, jnp.int32), fresh_scores, jnp.zeros((batch, units), bool))
    return jax.lax.fori_loop(0, len(table["stage"]), one_iteration, carry)[0]


# ---------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------
def _as_pytree(model_fn: tp.Any) -> jax.tree_util.Partial:
    if not callable(model_fn):
        raise TypeError(f"`model_fn` must be callable, got {type(model_fn).__name__}")
    return model_fn if isinstance(model_fn, jax.tree_util.Partial) else jax.tree_util.Partial(model_fn)


def _keys(key: tp.Any, batch: int) -> jax.Array:
    """One PRNG key per example: `key` itself when it is `[B]` keys, else `fold_in(key, b)` for example `b`."""
    key = check_key("key", key, batch)
    if key.shape == (batch,):
        return key
    return jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(batch))


def _choice(name: str, value: tp.Any, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return value


def magnet_generate(
    model_fn: tp.Callable[[jax.Array, jax.Array], jax.Array],
    prompt: tp.Any,
    *,
    timesteps: int,
    mask_token: int,
    key: jax.Array | None = None,
    decoding_steps: tp.Sequence[int] = (20, 10, 10, 10),
    span_len: int = 3,
    span_arrangement: str = "nonoverlap",
    span_scoring: str = "max",
    use_sampling: bool = True,
    temp: tp.Any = 3.0,
    anneal_temp: bool = True,
    top_k: tp.Any = 0,
    top_p: tp.Any = 0.9,
    max_cfg_coef: tp.Any = 10.0,
    min_cfg_coef: tp.Any = 1.0,
    prompt_lengths: tp.Any = None,
) -> jax.Array:
    """MAGNeT's iterative decoding (audiocraft 1.3.0 `MagnetLMModel._generate_magnet`), one compiled program.

    Stage `k = 0 .. K - 1` decodes codebook `k` in `decoding_steps[k]`
    iterations. Iteration `i` of `n` re-masks the `max(int(p * N), 1)` least
    confident spans (`p = cos(pi / 2 * i / (n - 1))`, `N` the spans (or
    tokens) left to generate past the prompt), restores the prompt, runs
    `model_fn` on the whole sequence and samples every masked position of the
    stage's codebook. Confidence is the sampled code's probability; a span
    scores `1 - max(prob)` (`"max"`) or `sum(-log prob)` (`"prod"`);
    positions sampled before stay fixed unless re-masked.

    - `span_arrangement="nonoverlap"` with `span_len > 1`: spans are the
      chunks `[c * L, (c + 1) * L)`; `timesteps` is trimmed to a multiple of
      `span_len` (audiocraft's trim: the codes returned are `[B, K, T']`,
      `T' = span_len * (timesteps // span_len)`), and chunks wholly inside the
      prompt are never re-masked.
    - `"stride1"` with `span_len > 1`: overlapping windows, their count found by
      audiocraft's bisection on the masked total; `span_len <= 1`: single tokens.
    - Guidance (`max_cfg_coef` not None): `model_fn` gets `[2B, K, T]`, the
      conditional half first, and the logits are
      `uncond + (cond - uncond) * (p * max_cfg_coef + (1 - p) * min_cfg_coef)`.
      `max_cfg_coef=None`: no guidance, `model_fn` gets `[B, K, T]`
      (audiocraft's own loop needs conditions; here guidance is optional).
    - Temperature `temp * left / n` when annealing (`left` = iterations left
      in the stage), floored at 0.01; `probs = softmax(logits / temperature)`.

    Sampling draws one uniform per position and iteration: with `keys[b]` the
    example's key (`key` itself if it holds `[B]` keys, else
    `jax.random.fold_in(key, b)`), iteration `j` (counted over every stage
    from 0) uses `jax.random.uniform(jax.random.fold_in(keys[b], j), (T',))`.
    A code is drawn by inverse CDF: the first whose cumulative weight exceeds
    `u` times the total, codes in their natural order (full, top-k) or sorted
    by decreasing probability (top-p, as audiocraft's `sample_top_p`). Handing
    the same uniforms to audiocraft's `utils.multinomial` gives the same codes.

    Args:
      model_fn: `(tokens [B', K, T'], stage) -> logits [B', K, T', card]`;
        `stage` is a traced int32 scalar (one program serves every stage). A
        `jax.tree_util.Partial` keeps its arrays traced (`lm.magnet_fn_of`).
      prompt: `[B, K, T0]` codes in `[0, card)`, `0 <= T0 <= T'`.
      timesteps: the length to generate (audiocraft's `max_gen_len`), `> T0`.
      mask_token: the mask id (audiocraft: `card`); not a code the model samples.
      key: a PRNG key, or `[B]` keys (needed when sampling).
      decoding_steps: iterations per stage; the first K are used (audiocraft
        zips them with the codebooks); fewer than K raises.
      span_len, span_arrangement, span_scoring: the masking spans (see above).
      use_sampling: sample (True) or take the argmax (False).
      temp, top_k, top_p: sampling settings, scalars or `[B]`, host or traced
        (new values compile nothing). top-p wins when `> 0`, then top-k.
      anneal_temp: decay the temperature linearly to 0 over each stage.
      max_cfg_coef, min_cfg_coef: guidance coefficients at mask rate 1 and 0
        (scalars or `[B]`); `max_cfg_coef=None` turns guidance off.
      prompt_lengths: optional `[B]` (host or traced): example `b` keeps
        `prompt[b, :, :prompt_lengths[b]]` and generates the rest, exactly as
        a batch of one with that prompt.

    Returns:
      int32 codes `[B, K, T']`, the prompt included.

    Raises:
      ValueError: bad sizes or choices, a prompt of the wrong shape or codes out
        of `[0, card)`, `mask_token` inside `[0, card)`, fewer `decoding_steps`
        than codebooks, `model_fn` logits of the wrong shape.
      TypeError: non-integer ids, sizes or prompt codes, a non-callable `model_fn`.
    """
    timesteps = check_int("timesteps", timesteps, minimum=1)
    mask_token = check_int_token("mask_token", mask_token)
    span_len = check_int("span_len", span_len, minimum=1)
    span_arrangement = _choice("span_arrangement", span_arrangement, ARRANGEMENTS)
    span_scoring = _choice("span_scoring", span_scoring, SCORINGS)
    use_sampling = check_flag("use_sampling", use_sampling)
    anneal_temp = check_flag("anneal_temp", anneal_temp)
    if prompt is None:
        raise TypeError("`prompt` is None; expected codes [B, K, T0] (T0 may be 0)")
    if is_host(prompt):
        prompt = np.asarray(prompt)
    if prompt.ndim != 3:
        raise ValueError(f"`prompt` must be codes [B, K, T0], got shape {tuple(prompt.shape)}")
    if prompt.dtype == np.bool_ or not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise TypeError(f"`prompt` must hold integer codes, got dtype {prompt.dtype}")
    batch, n_q, prompt_len = prompt.shape
    if isinstance(decoding_steps, (str, bytes)) or not isinstance(decoding_steps, tp.Sequence):
        raise TypeError(f"`decoding_steps` must be a sequence of ints, got {decoding_steps!r}")
    steps = tuple(check_int(f"decoding_steps[{i}]", n, minimum=1) for i, n in enumerate(decoding_steps))
    if len(steps) < n_q:
        raise ValueError(
            f"`decoding_steps` has {len(steps)} entries for K={n_q} codebooks; one per codebook is needed "
            "(audiocraft would leave the codebooks past them as mask tokens)"
        )
    steps = steps[:n_q]
    chunked = span_len > 1 and span_arrangement == "nonoverlap"
    trimmed = span_len * (timesteps // span_len) if chunked else timesteps
    if prompt_len >= timesteps:
        raise ValueError(f"`prompt` has T0={prompt_len} timesteps; expected fewer than timesteps={timesteps}")
    if trimmed < max(prompt_len, 1) or (span_len > 1 and trimmed < span_len):
        raise ValueError(
            f"`timesteps`={timesteps} leaves {trimmed} after the trim to a multiple of span_len={span_len}; "
            f"expected at least max(span_len, T0={prompt_len}) positions"
        )
    lengths = np.full((batch,), prompt_len, np.int32)
    if prompt_lengths is not None:
        lengths = validate_lengths(prompt_lengths, (batch,), prompt_len, "prompt_lengths", "T0")
        lengths = lengths.astype(np.int32) if isinstance(lengths, np.ndarray) else lengths
    guidance = max_cfg_coef is not None
    values = settings(Sampling(temp, top_k, top_p), batch)
    if guidance:
        high = _setting("max_cfg_coef", max_cfg_coef, batch, False, -math.inf, math.inf)
        low = _setting("min_cfg_coef", min_cfg_coef, batch, False, -math.inf, math.inf)
    if use_sampling and key is None:
        raise ValueError("sampling (`use_sampling=True`) needs a PRNG `key`")
    keys = _keys(key if key is not None else jax.random.key(0), batch)
    fn = _as_pytree(model_fn)
    tokens_shape = jax.ShapeDtypeStruct(((2 if guidance else 1) * batch, n_q, trimmed), jnp.int32)
    out = jax.eval_shape(fn, tokens_shape, jax.ShapeDtypeStruct((), jnp.int32))
    if not hasattr(out, "shape") or len(out.shape) != 4 or tuple(out.shape[:3]) != tokens_shape.shape:
        raise ValueError(
            f"`model_fn` must return logits [B', K, T', card] = [{tokens_shape.shape[0]}, {n_q}, {trimmed}, card]; "
            f"got {getattr(out, 'shape', type(out).__name__)}"
        )
    card = out.shape[-1]
    if 0 <= mask_token < card:
        raise ValueError(f"`mask_token`={mask_token} is a code the model samples (card={card}); audiocraft uses card")
    if isinstance(prompt, np.ndarray) and prompt.size and (prompt.min() < 0 or prompt.max() >= card):
        bad = int(prompt.min()) if prompt.min() < 0 else int(prompt.max())
        raise ValueError(f"`prompt` holds the code {bad}; codes must lie in [0, card={card})")
    table = schedule(steps)
    temps = _temperatures(temp if is_host(temp) else values.temp, anneal_temp, table, batch)
    raw = (max_cfg_coef if is_host(max_cfg_coef) else high, min_cfg_coef if is_host(min_cfg_coef) else low)
    coefs = _coefficients(*raw, table, batch) if guidance else np.zeros((len(table["n"]), batch), np.float32)
    cfg = MagnetConfig(steps, trimmed, span_len, span_arrangement, span_scoring, use_sampling, guidance, mask_token)
    return _decode(fn, prompt, lengths, keys, temps, coefs, values.top_k, values.top_p, cfg=cfg)


# ---------------------------------------------------------------------------
# Training: masks, inputs, loss
# ---------------------------------------------------------------------------
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
    return stage, _dilate(order < count[:, None], span_len, timesteps)


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
    if (
        mask is None
        or (is_host(mask) and np.asarray(mask).dtype != np.bool_)
        or (not is_host(mask) and mask.dtype != jnp.bool_)
    ):
        raise TypeError(f"`mask` must be a bool array [B, T], got {getattr(mask, 'dtype', type(mask).__name__)}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"`mask` has shape {tuple(mask.shape)}; expected [B, T] = {shape}")
    return jnp.asarray(mask)


def magnet_inputs(codes: tp.Any, stage: tp.Any, mask: tp.Any, mask_token: int) -> jax.Array:
    """The model's training input: codebooks below `stage` clean, the stage's `mask` positions and every codebook
    above it `mask_token` (audiocraft's `run_step`). `codes [B, K, T]`, `mask [B, T]` -> int32 `[B, K, T]`."""
    mask_token = check_int_token("mask_token", mask_token)
    codes = _codes(codes)
    batch, n_q, timesteps = codes.shape
    if isinstance(codes, np.ndarray) and codes.size and (codes.min() < 0 or np.any(codes == mask_token)):
        raise ValueError(f"`codes` must be codes >= 0 other than `mask_token`={mask_token} (it would read as masked)")
    stage = _stage(stage, n_q)
    mask = _mask_of(mask, (batch, timesteps))
    level = jnp.arange(n_q)[None, :, None]
    hidden = (level > stage) | ((level == stage) & mask[:, None, :])
    return jnp.where(hidden, jnp.int32(mask_token), codes.astype(jnp.int32))


def _codes(codes: tp.Any) -> tp.Any:
    if codes is None:
        raise TypeError("`codes` is None; expected codes [B, K, T]")
    codes = np.asarray(codes) if is_host(codes) else codes
    if codes.ndim != 3:
        raise ValueError(f"`codes` must be [B, K, T], got shape {tuple(codes.shape)}")
    if codes.dtype == np.bool_ or not jnp.issubdtype(codes.dtype, jnp.integer):
        raise TypeError(f"`codes` must hold integer codes, got dtype {codes.dtype}")
    return codes


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
    codes = _codes(codes)
    batch, n_q, timesteps = codes.shape
    if tuple(logits.shape[:3]) != (batch, n_q, timesteps) or logits.ndim != 4:
        raise ValueError(
            f"`logits` has shape {tuple(logits.shape)}; expected [B, K, T, card] with [B, K, T] = "
            f"{(batch, n_q, timesteps)}"
        )
    card = logits.shape[-1]
    if isinstance(codes, np.ndarray) and codes.size and (codes.min() < 0 or codes.max() >= card):
        bad = int(codes.min()) if codes.min() < 0 else int(codes.max())
        raise ValueError(f"`codes` holds the target {bad}; targets must lie in [0, card={card})")
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
