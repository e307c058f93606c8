"""MusicGen's generation on `lm.generate`, and the step / MAGNeT functions that hand the model to `jax_patterns.lm`.

`generate` checks its arguments, builds the conditioned cache in one jitted
program (the conditional rows, then the null condition's rows when guiding),
and runs `lm.generate` with the model's pattern and a `DecodeStep`: both
programs are compiled once per shape, and new prompts, conditions, sampling
values and keys compile nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jax_patterns import lm
from jax_patterns._checks import check_codes, check_flag, check_int, is_host

if tp.TYPE_CHECKING:
    from jax_patterns.models._musicgen import MusicGen


@dataclasses.dataclass(frozen=True)
class DecodeStep:
    """`MusicGen.decode` as a function of `(params, cache, tokens[, info])`: `lm.generate`'s step function.

    Equal for models of equal structure, so the decode loop's program is reused
    across models and parameter updates. `max_len` tells `lm.generate` the
    longest sequence the model decodes.
    """

    graphdef: tp.Any
    max_len: int

    def __call__(self, params: tp.Any, cache: tp.Any, tokens: jax.Array, info: tp.Any = None) -> tuple:
        return nnx.merge(self.graphdef, params).decode(cache, tokens, info)


def step_fn_of(model: MusicGen) -> jax.tree_util.Partial:
    """The model as `lm.generate` / `lm.stream` / `lm.Engine`'s step function `(cache, tokens[, info])`.

    A `jax.tree_util.Partial` of `DecodeStep` and the parameters (traced arrays,
    not constants). Its state is `model.init_cache(batch, ...)`, conditioned by
    `model.condition`.
    """
    graphdef, params = nnx.split(model)
    return jax.tree_util.Partial(DecodeStep(graphdef, model.max_len), params)


@dataclasses.dataclass(frozen=True)
class MagnetStep:
    """A MAGNeT `MusicGen` and its condition as `(params, states, mask, tokens, stage) -> logits`."""

    graphdef: tp.Any

    def __call__(self, params: tp.Any, states: tp.Any, mask: tp.Any, tokens: jax.Array, stage: jax.Array) -> tp.Any:
        model = nnx.merge(self.graphdef, params)
        return model(tokens, encoder_hidden_states=states, encoder_attention_mask=mask, stage=stage)


def _with_null(states: tp.Any, mask: tp.Any) -> tuple[jax.Array, jax.Array]:
    """`[states; zeros]` and `[mask (ones if None); zeros]`: the conditional rows, then the null condition's."""
    states = jnp.asarray(states)
    mask = jnp.ones(states.shape[:2], jnp.int32) if mask is None else jnp.asarray(mask).astype(jnp.int32)
    return (
        jnp.concatenate([states, jnp.zeros_like(states)], axis=0),
        jnp.concatenate([mask, jnp.zeros_like(mask)], axis=0),
    )


def magnet_fn_of(
    model: MusicGen,
    encoder_hidden_states: tp.Any = None,
    encoder_attention_mask: tp.Any = None,
    *,
    guidance: bool = True,
) -> jax.tree_util.Partial:
    """A MAGNeT model and its condition as `lm.magnet_generate`'s `model_fn(tokens, stage)`.

    With `guidance=True` (pass `max_cfg_coef` to `magnet_generate`), `model_fn`
    gets `[2B, K, T]`: the rows of `encoder_hidden_states`, then the null
    condition (zero states, zero mask), as audiocraft's `_generate_magnet` does.
    A `jax.tree_util.Partial` holding the parameters and the condition as traced
    arrays: new conditions and parameters compile nothing.

    Raises:
      ValueError: a causal model; guidance without a condition.
    """
    if model.causal:
        raise ValueError("`magnet_fn` is for a MAGNeT model (causal=False); decode MusicGen with `generate`")
    mask = encoder_attention_mask
    if check_flag("guidance", guidance):
        if encoder_hidden_states is None:
            raise ValueError("guidance needs `encoder_hidden_states` (the null condition is made from them)")
        encoder_hidden_states, mask = _with_null(encoder_hidden_states, mask)
    elif encoder_hidden_states is not None:
        encoder_hidden_states = jnp.asarray(encoder_hidden_states)
        mask = None if mask is None else jnp.asarray(mask)
    graphdef, params = nnx.split(model)
    return jax.tree_util.Partial(MagnetStep(graphdef), params, encoder_hidden_states, mask)


@functools.partial(jax.jit, static_argnames=("graphdef", "rows", "length", "guidance"))
def _conditioned_cache(graphdef, params, states, mask, *, rows: int, length: int, guidance: bool) -> tp.Any:
    """The decode state: an empty cache of `rows` rows, conditioned (with the null condition's rows when guiding)."""
    model = nnx.merge(graphdef, params)
    condition_len = 0 if states is None else states.shape[1]
    cache = model.init_cache(rows, condition_len=condition_len, length=length)
    if states is None:
        return cache
    if guidance:
        states, mask = _with_null(states, mask)
    return model.condition(cache, {"encoder_hidden_states": states, "encoder_attention_mask": mask})


def _guidance(guidance_scale: tp.Any) -> tp.Any:
    """transformers' rule: guidance is on for a scale > 1 (a host number <= 1 turns it off); arrays and traced
    values turn it on as given."""
    if guidance_scale is None:
        return None
    if is_host(guidance_scale) and np.ndim(guidance_scale) == 0:
        if isinstance(guidance_scale, (bool, np.bool_)) or not isinstance(guidance_scale, numbers.Real):
            raise TypeError(f"`guidance_scale` must be a number, got {guidance_scale!r}")
        return guidance_scale if float(guidance_scale) > 1 else None
    return guidance_scale


def _run_decode(step: tp.Any, cache: tp.Any, pattern: tp.Any, prompt: tp.Any, **kwargs: tp.Any) -> jax.Array:
    """The one call of `lm.generate` (it returns `(codes, lengths)` with an EOS token, or soon always)."""
    out = lm.generate(step, cache, pattern, prompt, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def generate(
    model: MusicGen,
    *,
    encoder_hidden_states: tp.Any = None,
    encoder_attention_mask: tp.Any = None,
    max_new_frames: int,
    prompt: tp.Any = None,
    guidance_scale: tp.Any = None,
    use_sampling: bool = False,
    temp: tp.Any = 1.0,
    top_k: tp.Any = 250,
    top_p: tp.Any = 0.0,
    key: jax.Array | None = None,
) -> jax.Array:
    """Codes `[B, K, T0 + max_new_frames]` (the prompt included), the model's pattern decoded by `lm.generate`.

    transformers' `generate` (and audiocraft's `LMModel.generate`): the
    pattern's sequence is decoded step by step with the KV cache;
    classifier-free guidance runs the conditional rows and the null condition
    (zero states, zero mask) in one doubled batch and mixes
    `uncond + (cond - uncond) * guidance_scale`; sampling applies the
    temperature, then top-k or top-p, to the guided logits. Greedy output equals
    transformers' `generate` token for token (`MusicgenForCausalLM` with
    `hide_special`, `MusicgenForConditionalGeneration` without), and
    audiocraft's (`hide_special=False`).

    Compiled once per shape and static choice (sampling or greedy, guidance on
    or off): new prompts, conditions, keys and sampling values compile nothing.

    Args:
      model: a causal `MusicGen`.
      encoder_hidden_states: `[B, S_enc, encoder_dim]`, the text encoder's states, or None: no
        cross-attention (for a model without attention biases, the same as the null condition).
      encoder_attention_mask: `[B, S_enc]` (1 token, 0 padding), or None.
      max_new_frames: frames to generate after the prompt.
      prompt: `[B, K, T0]` codes in `[0, card)` to continue, or None.
      guidance_scale: None or a number `<= 1` (transformers' rule): no guidance;
        a number `> 1`, or `[B]`, host or traced: guidance.
      use_sampling: sample (static) rather than take the argmax.
      temp, top_k, top_p: a number or `[B]` each (traced: new values compile
        nothing). `top_p > 0` samples from the nucleus and `top_k` is then not
        applied (audiocraft's rule; transformers applies top-k then top-p when
        both are set); `top_p = 0` is off (transformers' `top_p=1.0`).
      key: a PRNG key, needed when sampling.

    Returns:
      int32 codes `[B, K, T0 + max_new_frames]`.

    Raises:
      ValueError: a MAGNeT model, a sequence longer than `max_len`, guidance
        without a condition, inputs of the wrong shape, sampling without a key,
        settings out of range.
      TypeError: non-integer prompt codes or `max_new_frames`.
    """
    if not model.causal:
        raise ValueError("a MAGNeT model (causal=False) decodes with `lm.magnet_generate(model.magnet_fn(...), ...)`")
    max_new_frames = check_int("max_new_frames", max_new_frames, minimum=1)
    if encoder_hidden_states is None and encoder_attention_mask is not None:
        raise ValueError("`encoder_attention_mask` given without `encoder_hidden_states`")
    if prompt is None:
        batch = 1 if encoder_hidden_states is None else int(np.shape(encoder_hidden_states)[0])
        prompt = np.zeros((batch, model.n_q, 0), np.int32)
    prompt = check_codes(prompt, "prompt", n_q=model.n_q, below=model.card)
    batch, _, prompt_len = prompt.shape
    if encoder_hidden_states is not None and np.shape(encoder_hidden_states)[0] != batch:
        raise ValueError(
            f"`encoder_hidden_states` has {np.shape(encoder_hidden_states)[0]} rows; the prompt has B={batch}"
        )
    pattern = model.provider.get_pattern(prompt_len + max_new_frames)
    steps = len(pattern) - 1  # the steps fed to the model
    if steps > model.max_len:
        raise ValueError(
            f"{prompt_len} + {max_new_frames} frames take {steps} steps, more than the model's max_len={model.max_len}"
        )
    scale = _guidance(guidance_scale)
    if scale is not None and encoder_hidden_states is None:
        raise ValueError("classifier-free guidance needs `encoder_hidden_states` (the null condition is their zeros)")
    rows = batch * (1 if scale is None else 2)
    graphdef, params = nnx.split(model)
    states = None if encoder_hidden_states is None else jnp.asarray(encoder_hidden_states)
    mask = None if encoder_attention_mask is None else jnp.asarray(encoder_attention_mask)
    if states is not None:  # shapes checked here, before the program is traced
        model.check_condition(states.shape, None if mask is None else mask.shape, batch)
    cache = _conditioned_cache(graphdef, params, states, mask, rows=rows, length=steps, guidance=scale is not None)
    step = jax.tree_util.Partial(DecodeStep(graphdef, model.max_len), params)
    return _run_decode(
        step,
        cache,
        pattern,
        prompt,
        special_token=model.special_token,
        key=key,
        use_sampling=use_sampling,
        temp=temp,
        top_k=top_k,
        top_p=top_p,
        cfg_coef=scale,
    )
