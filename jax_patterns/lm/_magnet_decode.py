"""MAGNeT's masked iterative decoding (audiocraft 1.3.0 `MagnetLMModel._generate_magnet`), one compiled program.

audiocraft's `_generate_magnet` decodes one codebook per stage, each in
`decoding_steps[stage]` iterations: re-mask the least confident spans (a cosine
schedule sets how many), run the model on the whole sequence, sample the masked
positions, score them. Here the whole decode (every stage, every iteration) is
one compiled `lax.fori_loop`.

The schedule's numbers (mask rates, temperatures, guidance coefficients) are
`_magnet_schedule.py`'s; the spans' ranking and masks are `_magnet_spans.py`'s.
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
    check_codes,
    check_flag,
    check_int,
    check_int_token,
    check_key,
    clip_lengths,
    validate_lengths,
)
from jax_patterns.lm._magnet_schedule import schedule, schedule_values
from jax_patterns.lm._magnet_spans import least_probable_spans, rank
from jax_patterns.lm._policies import doubled, mix
from jax_patterns.lm._protocol import as_pytree, input_vocab_of
from jax_patterns.lm._sampling import Sampling, setting, settings, truncation

DONT_REMASK = -1e4
"""audiocraft's score of a position (or span) that must not be re-masked."""

MAX_ITERATIONS = 2**16
"""The most decode iterations `magnet_generate` runs in all (the used `decoding_steps` summed): each is a full model
pass, and the schedule's host tables are sized by the total (audiocraft's default is 50)."""

ARRANGEMENTS = ("nonoverlap", "stride1")
SCORINGS = ("max", "prod")


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
    probability as confidence. Sampling: the codes `truncation` keeps (the
    library's one top-k / top-p), drawn by inverse CDF: top-p in decreasing
    probability order (audiocraft's `sample_top_p`; confidence from `probs`),
    top-k in the vocabulary's order over the truncated and renormalised
    `probs`, which is also the confidence (audiocraft's `sample_top_k` works
    in place), else the full `probs`.
    """
    probs = jax.nn.softmax(logits / temp[:, None, None], axis=-1)
    if not use_sampling:
        tokens = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return tokens, jnp.take_along_axis(probs, tokens[..., None], axis=-1)[..., 0]
    use_p, use_k = (top_p > 0)[:, None], ((top_k > 0) & ~(top_p > 0))[:, None]
    kept = jnp.where(truncation(probs, top_k, top_p), probs, 0.0)
    truncated = kept / kept.sum(-1, keepdims=True)

    def in_sorted_order(kept: jax.Array) -> jax.Array:
        order = jnp.argsort(-probs, axis=-1, stable=True)
        ordered = jnp.take_along_axis(kept, order, axis=-1)
        drawn = _inverse_cdf(ordered / ordered.sum(-1, keepdims=True), u)
        return jnp.take_along_axis(order, drawn[..., None], axis=-1)[..., 0]

    from_top_p = jax.lax.cond(jnp.any(use_p), in_sorted_order, lambda k: jnp.zeros(k.shape[:-1], jnp.int32), kept)
    tokens = jnp.where(use_p, from_top_p, jnp.where(use_k, _inverse_cdf(truncated, u), _inverse_cdf(probs, u)))
    confidence = jnp.take_along_axis(jnp.where(use_k[..., None], truncated, probs), tokens[..., None], axis=-1)
    return tokens, confidence[..., 0]


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
    anneal_temp: bool
    mask_token: int

    @property
    def chunked(self) -> bool:
        return self.span_len > 1 and self.arrangement == "nonoverlap"


def _uniforms(keys: jax.Array, j: jax.Array, timesteps: int) -> jax.Array:
    """Iteration `j`'s uniforms `[B, T]`: `jax.random.uniform(jax.random.fold_in(keys[b], j), (T,))`."""
    return jax.vmap(lambda key: jax.random.uniform(jax.random.fold_in(key, j), (timesteps,), jnp.float32))(keys)


def _check_logits(logits: tp.Any, shape: tuple[int, ...]) -> None:
    """The model's output, at trace time: logits `[B', K, T', card]`."""
    got = getattr(logits, "shape", None)
    if got is None or len(got) != 4 or tuple(got[:3]) != shape:
        raise ValueError(
            f"`model_fn` must return logits [B', K, T', card] = [{', '.join(map(str, shape))}, card]; "
            f"got {got if got is not None else type(logits).__name__}"
        )


@functools.partial(jax.jit, static_argnames=("cfg",))
def _decode(model_fn, prompt, prompt_lengths, key, temp, high, low, top_k, top_p, *, cfg: MagnetConfig):
    table = schedule(cfg.decoding_steps)
    keys = _keys(jax.random.key(0) if key is None else key, prompt.shape[0])
    temps, coefs = schedule_values(table, temp, cfg.anneal_temp, high if cfg.guidance else None, low)
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

    def model(codes: jax.Array, stage: jax.Array, coef: jax.Array) -> jax.Array:
        tokens = doubled(codes) if cfg.guidance else codes
        logits = model_fn(tokens, stage)
        _check_logits(logits, tuple(tokens.shape))
        return mix(logits, coef) if cfg.guidance else logits

    def one_iteration(j, carry):
        codes, row, scores, chosen = carry
        stage = jnp.asarray(table["stage"])[j]
        first = jnp.asarray(table["first"])[j]
        row = jnp.where(first, mask, row)
        scores = jnp.where(first, fresh_scores, scores)
        count = jnp.maximum((jnp.asarray(table["rate"])[j] * to_generate).astype(jnp.int32), 1)  # [B]
        if L > 1 and cfg.arrangement == "stride1":
            remask = jax.vmap(functools.partial(least_probable_spans, span_len=L))(scores, count)
        else:
            chosen = rank(scores) < count[:, None]
            remask = jnp.repeat(chosen, L, axis=-1) if cfg.chunked else chosen
        row = jnp.where(remask, mask, row)
        prompt_row = jax.lax.dynamic_index_in_dim(prompt, stage, axis=1, keepdims=False)
        row = jnp.where(in_prompt, prompt_row, row)
        this = (jnp.arange(n_q) == stage)[None, :, None]
        codes = jnp.where(this, row[:, None, :], codes)
        logits = model(codes, stage, coefs[j])
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


@functools.lru_cache(maxsize=32)
def _probe(treedef: tp.Any, avals: tuple, shape: tuple[int, ...]) -> tp.Any:
    """The shape of `model_fn`'s output on tokens of `shape` (a trace once per structure, then cached)."""

    def run(leaves: tp.Any, tokens: jax.Array, stage: jax.Array) -> tp.Any:
        return jax.tree_util.tree_unflatten(treedef, leaves)(tokens, stage)

    out = jax.eval_shape(run, list(avals), jax.ShapeDtypeStruct(shape, jnp.int32), jax.ShapeDtypeStruct((), jnp.int32))
    return getattr(out, "shape", None)


def _card(fn: jax.tree_util.Partial, shape: tuple[int, ...]) -> int:
    """The model's vocabulary, from its output's shape (checked); traced once per model structure and shape."""
    leaves, treedef = jax.tree_util.tree_flatten(fn)
    avals = tuple(jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)) for x in leaves)
    out = _probe(treedef, avals, shape)
    if out is None or len(out) != 4 or tuple(out[:3]) != shape:
        raise ValueError(
            f"`model_fn` must return logits [B', K, T', card] = [{', '.join(map(str, shape))}, card]; got {out}"
        )
    return int(out[-1])


def _keys(key: jax.Array, batch: int) -> jax.Array:
    """One PRNG key per example: `key` itself when it is `[B]` keys, else `fold_in(key, b)` for example `b`."""
    if key.shape == (batch,):
        return key
    return jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(batch))


def _choice(name: str, value: tp.Any, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return value


def _mask_token(mask_token: int, card: int, vocab: int | None) -> None:
    """The mask id must be one the model embeds and never samples: `card` (audiocraft), or below its `input_vocab`."""
    if 0 <= mask_token < card:
        raise ValueError(f"`mask_token`={mask_token} is a code the model samples (card={card}); audiocraft uses card")
    if vocab is None and mask_token != card:
        raise ValueError(
            f"`mask_token`={mask_token}: the model embeds no id past its {card} codes but the mask `card`={card} "
            "(declare `input_vocab` on the model function, as lm.magnet_fn_of does, to use another id)"
        )
    if vocab is not None and not card <= mask_token < vocab:
        raise ValueError(f"`mask_token`={mask_token} must lie in [card={card}, input_vocab={vocab}) of the model")


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
      `uncond + (cond - uncond) * (p * max_cfg_coef + (1 - p) * min_cfg_coef)`
      (in the logits' dtype). `max_cfg_coef=None`: no guidance, `model_fn`
      gets `[B, K, T]` (audiocraft's own loop needs conditions; here guidance
      is optional).
    - Temperature `temp * left / n` when annealing (`left` = iterations left
      in the stage), floored at 0.01; `probs = softmax(logits / temperature)`.
      Host and traced settings go through the same computation (the same tokens).

    Sampling draws one uniform per position and iteration: with `keys[b]` the
    example's key (`key` itself if it holds `[B]` keys, else
    `jax.random.fold_in(key, b)`), iteration `j` (counted over every stage
    from 0) uses `jax.random.uniform(jax.random.fold_in(keys[b], j), (T',))`.
    A code is drawn by inverse CDF: the first whose cumulative weight exceeds
    `u` times the total, codes in their natural order (full, top-k) or sorted
    by decreasing probability (top-p, as audiocraft's `sample_top_p`). Handing
    the same uniforms to audiocraft's `utils.multinomial` gives the same codes.

    The model is traced once per structure and shape (its output's shape is
    checked then and cached): a second identical call traces nothing.

    Args:
      model_fn: `(tokens [B', K, T'], stage) -> logits [B', K, T', card]`;
        `stage` is a traced int32 scalar (one program serves every stage). A
        `jax.tree_util.Partial` keeps its arrays traced (`lm.magnet_fn_of`).
      prompt: `[B, K, T0]` codes in `[0, card)`, `0 <= T0 <= T'`.
      timesteps: the length to generate (audiocraft's `max_gen_len`), `> T0`.
      mask_token: the mask id: `card` (audiocraft), or an id below the
        model's declared `input_vocab`; never a code the model samples.
      key: a PRNG key, or `[B]` keys (needed when sampling).
      decoding_steps: iterations per stage; the first K are used (audiocraft
        zips them with the codebooks); fewer than K raises, and so do more
        than `MAX_ITERATIONS` (65536) in all.
      span_len: the masking spans' length (see above).
      span_arrangement: `"nonoverlap"` or `"stride1"` (see above).
      span_scoring: `"max"` or `"prod"` (see above).
      use_sampling: sample (True) or take the argmax (False).
      temp: the sampling temperature, a scalar or `[B]`, host or traced (new
        values compile nothing).
      top_k: as `temp`; used when `top_p` is 0.
      top_p: as `temp`; top-p wins when `> 0`, then top-k.
      anneal_temp: decay the temperature linearly to 0 over each stage.
      max_cfg_coef: the guidance coefficient at mask rate 1 (a scalar or
        `[B]`); `max_cfg_coef=None` turns guidance off.
      min_cfg_coef: the guidance coefficient at mask rate 0 (a scalar or `[B]`).
      prompt_lengths: optional `[B]` (host or traced): example `b` keeps
        `prompt[b, :, :prompt_lengths[b]]` and generates the rest, exactly as
        a batch of one with that prompt.

    Returns:
      int32 codes `[B, K, T']`, the prompt included.

    Raises:
      ValueError: bad sizes or choices, a prompt of the wrong shape or codes out
        of `[0, card)` (in their own dtype), a `mask_token` the model samples or
        does not embed, fewer `decoding_steps` than codebooks (or over `MAX_ITERATIONS` in all), `model_fn`
        logits of the wrong shape, keys of the wrong shape.
      TypeError: non-integer ids, sizes or prompt codes, a non-callable
        `model_fn`, a key that is not a PRNG key.
    """
    timesteps = check_int("timesteps", timesteps, minimum=1)
    mask_token = check_int_token("mask_token", mask_token)
    span_len = check_int("span_len", span_len, minimum=1)
    span_arrangement = _choice("span_arrangement", span_arrangement, ARRANGEMENTS)
    span_scoring = _choice("span_scoring", span_scoring, SCORINGS)
    use_sampling = check_flag("use_sampling", use_sampling)
    anneal_temp = check_flag("anneal_temp", anneal_temp)
    prompt = check_codes(prompt, "prompt", n_q=None, below=None)
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
    if sum(steps) > MAX_ITERATIONS:  # before the schedule's tables are built
        raise ValueError(
            f"`decoding_steps` {list(steps)} make {sum(steps)} iterations; at most {MAX_ITERATIONS} in all "
            "(each is a model pass)"
        )
    chunked = span_len > 1 and span_arrangement == "nonoverlap"
    trimmed = span_len * (timesteps // span_len) if chunked else timesteps
    if prompt_len >= timesteps:
        raise ValueError(f"`prompt` has T0={prompt_len} timesteps; expected fewer than timesteps={timesteps}")
    if trimmed < max(prompt_len, 1) or (span_len > 1 and trimmed < span_len):
        raise ValueError(
            f"`timesteps`={timesteps} leaves {trimmed} after the trim to a multiple of span_len={span_len}; "
            f"expected at least max(span_len, T0={prompt_len}) positions"
        )
    lengths: tp.Any = np.full((batch,), prompt_len, np.int32)
    if prompt_lengths is not None:
        lengths = validate_lengths(prompt_lengths, (batch,), prompt_len, "prompt_lengths", "T0")
        lengths = lengths.astype(np.int32) if isinstance(lengths, np.ndarray) else lengths
    guidance = max_cfg_coef is not None
    values = settings(Sampling(temp, top_k, top_p), batch)
    high = low = np.zeros((batch,), np.float32)
    checked_low: tp.Any = None  # checked, guided or not (None is fine without guidance)
    if guidance or min_cfg_coef is not None:
        checked_low = setting("min_cfg_coef", min_cfg_coef, batch, False, -math.inf, math.inf)
    if guidance:
        high = setting("max_cfg_coef", max_cfg_coef, batch, False, -math.inf, math.inf)
        low = checked_low
    if use_sampling and key is None:
        raise ValueError("sampling (`use_sampling=True`) needs a PRNG `key`")
    key = None if key is None else check_key("key", key, batch)
    fn = as_pytree(model_fn, "model_fn")
    card = _card(fn, ((2 if guidance else 1) * batch, n_q, trimmed))
    _mask_token(mask_token, card, input_vocab_of(fn))
    check_codes(prompt, "prompt", n_q=n_q, below=card)
    cfg = MagnetConfig(
        steps, trimmed, span_len, span_arrangement, span_scoring, use_sampling, guidance, anneal_temp, mask_token
    )
    args = jax.device_put((prompt, lengths, key, values.temp, high, low, values.top_k, values.top_p))
    return _decode(fn, *args, cfg=cfg)
