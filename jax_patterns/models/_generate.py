"""MusicGen's generation on `lm.generate`, and the step / MAGNeT functions that hand the model to `jax_patterns.lm`.

`generate` checks its arguments, builds the conditioned cache in one jitted
program (the conditional rows, then the null condition's rows when guiding),
and runs `lm.generate` with the model's pattern and `lm.step_fn_of(model)`: both
programs are compiled once per shape, and new prompts, conditions, sampling
values and keys compile nothing.
"""

from __future__ import annotations

import functools
import numbers
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jax_patterns import lm
from jax_patterns._checks import check_codes, check_int, is_host
from jax_patterns.lm._sampling import setting

if tp.TYPE_CHECKING:
    from jax_patterns.models._musicgen import MusicGen


def magnet_fn_of(model: MusicGen, encoder_hidden_states: tp.Any = None, encoder_attention_mask: tp.Any = None):
    """A MAGNeT model and its condition as `lm.magnet_generate`'s `model_fn(tokens, stage)` (`lm.magnet_fn_of`).

    With guidance (`magnet_generate(..., max_cfg_coef=...)`), `model_fn` gets
    `[2B, K, T]`: the rows of `encoder_hidden_states`, then the null condition
    (zero states, zero mask), as audiocraft's `_generate_magnet` does. A
    `jax.tree_util.Partial` holding the parameters and the condition as traced
    arrays: new conditions and parameters compile nothing.

    Raises:
      ValueError: a causal model; a mask without states; states or a mask of the wrong shape.
      TypeError: states that are not floats, a mask that is not numbers or bools.
    """
    if model.causal:
        raise ValueError("`magnet_fn` is for a MAGNeT model (causal=False); decode MusicGen with `generate`")
    if encoder_hidden_states is None:
        if encoder_attention_mask is not None:
            raise ValueError("`encoder_attention_mask` given without `encoder_hidden_states`")
        return lm.magnet_fn_of(model)
    states, mask = model._condition_arrays(encoder_hidden_states, encoder_attention_mask, None)
    states = jnp.asarray(states)
    mask = jnp.ones(states.shape[:2], bool) if mask is None else model._visible_mask(mask)
    return lm.magnet_fn_of(model, {"encoder_hidden_states": states, "encoder_attention_mask": mask.astype(jnp.int32)})


@functools.partial(jax.jit, static_argnames=("graphdef", "rows", "length", "guidance"))
def _conditioned_cache(graphdef, params, states, mask, *, rows: int, length: int, guidance: bool) -> tp.Any:
    """The decode state: an empty cache of `rows` rows, conditioned (with the null condition's rows when guiding)."""
    model = nnx.merge(graphdef, params)
    condition_len = 0 if states is None else states.shape[1]
    cache = model.init_cache(rows, condition_len=condition_len, length=length)
    if states is None:
        return cache
    conditions = {"encoder_hidden_states": states, "encoder_attention_mask": mask}
    return model.condition(cache, model.guided_conditions(conditions) if guidance else conditions)


def _guidance(guidance_scale: tp.Any, batch: int) -> tp.Any:
    """transformers' rule: guidance is on for a scale > 1 (a host number <= 1 turns it off); arrays and traced
    values turn it on as given. Host values are checked here (finite, within float32), naming `guidance_scale`."""
    if guidance_scale is None:
        return None
    if is_host(guidance_scale) and np.ndim(guidance_scale) == 0:
        if isinstance(guidance_scale, (bool, np.bool_)) or not isinstance(guidance_scale, numbers.Real):
            raise TypeError(f"`guidance_scale` must be a number, got {guidance_scale!r}")
    checked = setting("guidance_scale", guidance_scale, batch, False, -np.inf, np.inf)
    if is_host(guidance_scale) and np.ndim(guidance_scale) == 0:
        return guidance_scale if float(checked[0]) > 1 else None
    return guidance_scale


def _scalar(name: str, value: tp.Any) -> tp.Any:
    """An engine-wide default setting: one number (each request's own values go to `submit(sampling=...)`)."""
    try:
        ndim = np.ndim(value)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}") from err
    if ndim:
        raise ValueError(
            f"`{name}` has shape {np.shape(value)}: the engine's default for every request is one number "
            "(a request's own: `submit(..., sampling=lm.Sampling(...))`)"
        )
    return value


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
        a number `> 1`, or `[B]`, host or traced: guidance. Host values must be
        finite and fit float32 (a NaN is refused).
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
        settings out of range (a NaN `guidance_scale`).
      TypeError: non-integer prompt codes or `max_new_frames`, states that are
        not floats, a mask that is not numbers or bools.
    """
    if not model.causal:
        raise ValueError("a MAGNeT model (causal=False) decodes with `lm.magnet_generate(model.magnet_fn(...), ...)`")
    max_new_frames = check_int("max_new_frames", max_new_frames, minimum=1)
    states = mask = None
    if encoder_hidden_states is None:
        if encoder_attention_mask is not None:
            raise ValueError("`encoder_attention_mask` given without `encoder_hidden_states`")
    else:  # kinds and shapes checked here, before anything is traced
        states, mask = model._condition_arrays(encoder_hidden_states, encoder_attention_mask, None)
    if prompt is None:
        batch = 1 if states is None else int(states.shape[0])
        prompt = np.zeros((batch, model.n_q, 0), np.int32)
    prompt = check_codes(prompt, "prompt", n_q=model.n_q, below=model.card)
    batch, _, prompt_len = prompt.shape
    if states is not None and states.shape[0] != batch:
        raise ValueError(f"`encoder_hidden_states` has {states.shape[0]} rows; the prompt has B={batch}")
    pattern = model.provider.get_pattern(prompt_len + max_new_frames)
    steps = len(pattern) - 1  # the steps fed to the model
    if steps > model.max_len:
        raise ValueError(
            f"{prompt_len} + {max_new_frames} frames take {steps} steps, more than the model's max_len={model.max_len}"
        )
    scale = _guidance(guidance_scale, batch)
    if scale is not None and states is None:
        raise ValueError("classifier-free guidance needs `encoder_hidden_states` (the null condition is their zeros)")
    rows = batch * (1 if scale is None else 2)
    graphdef, params = nnx.split(model)
    if states is not None:
        states = jnp.asarray(states)
        mask = None if mask is None else model._visible_mask(mask)
    cache = _conditioned_cache(graphdef, params, states, mask, rows=rows, length=steps, guidance=scale is not None)
    options = lm.DecodeOptions(
        model.special_token, use_sampling=use_sampling, sampling=lm.Sampling(temp, top_k, top_p, scale)
    )
    return lm.generate(lm.step_fn_of(model), cache, pattern, prompt, options, key=key).codes


def engine(
    model: MusicGen,
    *,
    slots: int,
    max_timesteps: int,
    condition_len: int = 0,
    guidance_scale: tp.Any = None,
    use_sampling: bool = False,
    temp: tp.Any = 1.0,
    top_k: tp.Any = 250,
    top_p: tp.Any = 0.0,
    chunk_steps: int = 16,
    key: jax.Array | None = None,
    prompt_buckets: tp.Sequence[int] | None = None,
) -> lm.Engine:
    """An `lm.Engine` serving the model: continuous batching, each request with its own condition and guidance.

    ```python
    engine = model.engine(slots=8, max_timesteps=500, condition_len=S, guidance_scale=3.0)
    rid = engine.submit(prompt, max_timesteps=T0 + new, conditions={
        "encoder_hidden_states": states[None], "encoder_attention_mask": mask[None]})  # [1, S, D], [1, S]
    for rid, frames, finished in engine: ...
    ```

    Every request's conditions are `condition_len` long (pad shorter ones
    yourself: zero states under a mask of 0, as above; a request of another
    length is refused at `submit`). They are written into the request's rows at
    its prefill (`lm.condition_fn_of(model)`), with the null condition's rows
    beside them when guiding (`model.guided_conditions`: zero states under a
    zero mask). Each request may set its own coefficient
    (`sampling=lm.Sampling(cfg_coef=...)`), applied as given: unlike
    `generate`'s host `guidance_scale`, a per-request `cfg_coef <= 1` does not
    turn guidance off (1.0 gives the conditional logits, the same codes; 0.5
    mixes toward the null condition). Each request's codes equal
    `model.generate` of that request alone with the same settings
    (`max_new_frames = max_timesteps - T0`, `guidance_scale=np.array([c])` for
    a request's `cfg_coef=c`; greedy, or sampling with the request's key).

    Args:
      model: a causal `MusicGen`.
      slots, max_timesteps, chunk_steps, key, prompt_buckets: as for `lm.Engine`.
      condition_len: the padded length of every request's `encoder_hidden_states` (0: no conditions).
      guidance_scale: the requests' default guidance coefficient, one number; None or a number `<= 1`: no
        guidance (transformers' rule), the engine then refuses per-request coefficients.
      use_sampling, temp, top_k, top_p: the requests' default sampling (as for `generate`), one number each:
        a request's own values go to `submit(..., sampling=lm.Sampling(...))`.

    Returns:
      an `lm.Engine`.

    Raises:
      ValueError / TypeError: a MAGNeT model, guidance without conditions, bad sizes or settings (a NaN or
        infinite `guidance_scale`, an array where one number is the default).
    """
    if not model.causal:
        raise ValueError("a MAGNeT model (causal=False) decodes with `lm.magnet_generate`, not an engine")
    condition_len = check_int("condition_len", condition_len, minimum=0)
    temp, top_k, top_p = (_scalar(name, v) for name, v in (("temp", temp), ("top_k", top_k), ("top_p", top_p)))
    scale = None if guidance_scale is None else _guidance(_scalar("guidance_scale", guidance_scale), 1)
    if scale is not None and not condition_len:
        raise ValueError("classifier-free guidance needs conditions (`condition_len` > 0): the null one is their zeros")
    options = lm.DecodeOptions(
        model.special_token, use_sampling=use_sampling, sampling=lm.Sampling(temp, top_k, top_p, scale)
    )
    pattern = model.provider.get_pattern(check_int("max_timesteps", max_timesteps, minimum=1))
    length = len(pattern) - 1

    def init_state(rows: int) -> tp.Any:
        return model.init_cache(rows, per_row=True, condition_len=condition_len, length=length)

    return lm.Engine(
        lm.step_fn_of(model),
        init_state,
        model.provider,
        options,
        slots=slots,
        max_timesteps=max_timesteps,
        chunk_steps=chunk_steps,
        key=key,
        prompt_buckets=prompt_buckets,
        condition_fn=lm.condition_fn_of(model) if condition_len else None,
    )
