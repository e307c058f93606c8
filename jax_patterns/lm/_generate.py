"""Generation with a pattern: audiocraft's `LMModel.generate` loop as one compiled XLA loop."""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp

from jax_patterns import Pattern

UNKNOWN = -1
"""The token of not-yet-generated positions (audiocraft's `unknown_token`)."""

StepFn = tp.Callable[[tp.Any, jax.Array], tuple[jax.Array, tp.Any]]


def sample_next_token(
    logits: jax.Array, key: jax.Array | None, use_sampling: bool, temp: float, top_k: int, top_p: float
) -> jax.Array:
    """audiocraft's `_sample_next_token` on last-step logits `[B, K, card]` -> tokens `[B, K]` (int32).

    Greedy (argmax, first maximum) unless `use_sampling and temp > 0`; then top-p
    if `top_p > 0`, else top-k if `top_k > 0`, else the full distribution.
    """
    if not (use_sampling and temp > 0.0):
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if key is None:
        raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")
    probs = jax.nn.softmax(logits.astype(jnp.float32) / temp, axis=-1)
    if top_p > 0.0:
        order = jnp.argsort(-probs, axis=-1, stable=True)
        sorted_probs = jnp.take_along_axis(probs, order, axis=-1)
        keep = (jnp.cumsum(sorted_probs, axis=-1) - sorted_probs) <= top_p
        choice = jax.random.categorical(key, jnp.log(jnp.where(keep, sorted_probs, 0.0)), axis=-1)
        return jnp.take_along_axis(order, choice[..., None], axis=-1)[..., 0].astype(jnp.int32)
    if top_k > 0:
        kth = jax.lax.top_k(probs, top_k)[0][..., -1:]
        probs = jnp.where(probs >= kth, probs, 0.0)
    return jax.random.categorical(key, jnp.log(probs), axis=-1).astype(jnp.int32)


def generate(
    step_fn: StepFn,
    state: tp.Any,
    pattern: Pattern,
    prompt: jax.typing.ArrayLike,
    *,
    special_token: int,
    key: jax.Array | None = None,
    use_sampling: bool = False,
    temp: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
    cfg_coef: float | None = None,
) -> jax.Array:
    """Generates `pattern.timesteps` timesteps of codes, audiocraft's `LMModel.generate` step for step.

    The sequence starts as the pattern built from the prompt padded with the
    unknown token (-1); decoding runs from `pattern.get_first_step_with_timesteps(T0)`
    to the last step: each step's tokens are sampled from the logits of the step
    before, forced to `special_token` where the pattern has no code, and written
    only where the sequence is still unknown (prompt tokens are never
    overwritten). The result is the sequence reverted to `[B, K, T]`, prompt
    included. The whole decode is one `lax.fori_loop`; `generate` can be called
    inside `jax.jit` (all options but `key` and `state` are static).

    Args:
      step_fn: `(state, tokens [B, K, n]) -> (logits [B, K, card], state)`: the
        logits predict the step after `tokens`. It is called once with the whole
        prefix before the first decoded step, then with one step at a time (a
        KV-cached model fits directly). With `cfg_coef`, `tokens` is `[2B, K, n]`
        (the batch twice) and the logits `[2B, K, card]`: conditional first.
      state: the initial state of `step_fn` (e.g. an empty KV cache).
      pattern: the pattern for the number of timesteps to generate.
      prompt: `[B, K, T0]` codes, `0 <= T0 < timesteps`.
      special_token: the special token id (audiocraft: `card`).
      key: PRNG key, needed when sampling.
      use_sampling, temp, top_k, top_p: as in audiocraft (greedy by default).
      cfg_coef: classifier-free guidance: `uncond + (cond - uncond) * cfg_coef`.

    Returns:
      codes `[B, K, timesteps]` (int32).

    Raises:
      ValueError: a prompt that does not fit, a pattern that does not start with
        a special token (nothing to predict the first step from), or sampling
        without a key.
    """
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 3 or prompt.shape[1] != pattern.n_q:
        raise ValueError(f"`prompt` must be [B, K={pattern.n_q}, T0], got shape {prompt.shape}")
    batch, n_q, prompt_len = prompt.shape
    if prompt_len >= pattern.timesteps:
        raise ValueError(f"`prompt` has T0={prompt_len} timesteps; expected fewer than timesteps={pattern.timesteps}")
    if use_sampling and temp > 0.0 and key is None:
        raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")
    start = pattern.get_first_step_with_timesteps(prompt_len)
    if start is None or start == 0:
        raise ValueError(
            f"the pattern has no step to start decoding T0={prompt_len} from (first step: {start}); "
            "generation needs a pattern that starts with a special token"
        )
    codes = jnp.full((batch, n_q, pattern.timesteps), UNKNOWN, dtype=jnp.int32)
    codes = codes.at[..., :prompt_len].set(prompt.astype(jnp.int32))
    seq, _, mask = pattern.build_pattern_sequence(codes, special_token)
    steps = seq.shape[-1]
    key = jax.random.key(0) if key is None else key

    def call(state, tokens):
        if cfg_coef is None:
            return step_fn(state, tokens)
        logits, state = step_fn(state, jnp.concatenate([tokens, tokens], axis=0))
        cond, uncond = logits[:batch], logits[batch:]
        return uncond + (cond - uncond) * cfg_coef, state

    def write(seq, logits, offset):
        token = sample_next_token(logits, jax.random.fold_in(key, offset), use_sampling, temp, top_k, top_p)
        has_code = jax.lax.dynamic_index_in_dim(mask, offset, axis=1, keepdims=False)  # [K]
        token = jnp.where(has_code[None, :], token, special_token)
        current = jax.lax.dynamic_index_in_dim(seq, offset, axis=2, keepdims=False)
        token = jnp.where(current == UNKNOWN, token, current)
        return jax.lax.dynamic_update_index_in_dim(seq, token, offset, axis=2)

    logits, state = call(state, seq[..., :start])
    seq = write(seq, logits, start)

    def body(offset, carry):
        seq, state = carry
        logits, state = call(state, jax.lax.dynamic_slice_in_dim(seq, offset - 1, 1, axis=2))
        return write(seq, logits, offset), state

    seq, _ = jax.lax.fori_loop(start + 1, steps, body, (seq, state))
    out, _, _ = pattern.revert_pattern_sequence(seq, UNKNOWN)
    return out
