"""Generation with a pattern: audiocraft's `LMModel.generate` loop as one compiled XLA loop.

`generate` checks its arguments here, in Python (`prepare`, which `stream`
shares), then runs the decode core's `run_all` program (`_decode.py`).
"""

from __future__ import annotations

import typing as tp

import jax
import numpy as np

from jax_patterns import Pattern
from jax_patterns._checks import check_codes, check_key, check_pytree, validate_lengths
from jax_patterns.lm._decode import Config, run_all
from jax_patterns.lm._options import DecodeOptions, resolve
from jax_patterns.lm._protocol import as_pytree, as_step, input_vocab_of, max_len_of, samples_of
from jax_patterns.lm._sampling import Sampling, settings

StepFn = tp.Callable[..., tuple[jax.Array, tp.Any]]


class Generated(tp.NamedTuple):
    """What `generate` returns: the codes and each example's length (unpacks as `codes, lengths = ...`)."""

    codes: jax.Array
    """int32 `[B, K, T]`, the prompt included; frames `>= lengths[b]` are `special_token`."""
    lengths: jax.Array
    """int32 `[B]`: each example's number of timesteps (its EOS frame, or `T` where none was sampled)."""


def start_step(pattern: Pattern, prompt_len: int, per_example: bool) -> int:
    """The first step to decode: the earliest one any example may need (its first unknown code's step).

    With per-example prompts it is the earliest over every prompt length in
    `[0, T0]`, whatever the values: one program per (pattern, T0, options)
    serves every request. Decoding from an earlier step changes no token (prompt
    positions are kept, and a causal step function sees the same prefix); it
    only feeds the prompt steps one at a time instead of in the first call.
    Cached on the pattern.

    Raises:
      ValueError: the pattern has no step to start a prompt of some length from
        (its first step is not a special token).
    """
    return pattern.derived(f"start/{prompt_len}/{per_example}", lambda p: _start_step(p, prompt_len, per_example))


def _start_step(pattern: Pattern, prompt_len: int, per_example: bool) -> int:
    candidates = range(prompt_len + 1) if per_example else (prompt_len,)
    starts = [(n, pattern.get_first_step_with_timesteps(n)) for n in candidates]
    for n, first in starts:
        if first is None or first == 0:
            raise ValueError(
                f"the pattern has no step to start decoding a prompt of {n} timesteps from (first step: {first}); "
                "generation needs a pattern that starts with a special token"
            )
    return min(tp.cast(int, first) for _, first in starts)


def fitting_step(step_fn: tp.Any, step_info: bool, pattern: Pattern) -> jax.tree_util.Partial:
    """The step function normalised (`as_step`), checked to hold the pattern's steps (its declared `max_len`).

    Raises:
      TypeError: `step_fn` is not callable.
      ValueError: the pattern feeds more steps than the step function's `max_len`.
    """
    fn = as_step(step_fn, step_info)
    limit = max_len_of(as_pytree(step_fn, "step_fn"))
    if limit is not None and len(pattern) - 1 > limit:
        raise ValueError(
            f"the pattern has {len(pattern)} steps, so the step function is fed {len(pattern) - 1} of them, more "
            f"than its max_len={limit}; build the model with max_len >= {len(pattern) - 1}"
        )
    return fn


def check_prompt(
    prompt: tp.Any, n_q: int, options: DecodeOptions, vocab: int | None, name: str = "prompt", ndim: int = 3
) -> tp.Any:
    """Prompt codes checked by the one codes check: integers in `[0, 2**31)` (in their own dtype), below the
    model's `input_vocab` where the step function declares one (`step_fn_of` does: a code past it would embed
    as another codebook's row), other than `special_token` and `fill_after` (they would read as "no code")."""
    forbid = [t for t in (options.special_token, options.fill_after) if t is not None]
    return check_codes(prompt, name, n_q=n_q, below=vocab, forbid=forbid, ndim=ndim)


def check_sampling_key(options: DecodeOptions, values: Sampling, key: tp.Any) -> None:
    """Sampling from logits needs a key, unless every (host) temperature is <= 0 (greedy)."""
    if options.step_returns == "logits" and options.use_sampling and key is None:
        temp = values.temp
        if not (isinstance(temp, np.ndarray) and np.all(temp <= 0)):
            raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")


def prepare(
    step_fn: tp.Any,
    pattern: Pattern,
    prompt: tp.Any,
    options: DecodeOptions,
    key: tp.Any,
    prompt_lengths: tp.Any,
) -> tuple[jax.tree_util.Partial, tuple, Config]:
    """Every check of `generate` and `stream`, before tracing.

    Returns the normalised step function, the program's array arguments
    `(prompt, prompt_lengths, key, sampling)` moved to the device with one
    explicit `device_put` (nothing moves implicitly afterwards), and the static
    `Config`.
    """
    if not isinstance(pattern, Pattern):
        raise TypeError(f"`pattern` must be a Pattern, got {type(pattern).__name__}")
    prompt = check_prompt(prompt, pattern.n_q, options, input_vocab_of(as_pytree(step_fn, "step_fn")))
    batch, _, prompt_len = prompt.shape
    if prompt_len >= pattern.timesteps:
        raise ValueError(f"`prompt` has T0={prompt_len} timesteps; expected fewer than timesteps={pattern.timesteps}")
    values = settings(options.sampling, batch)
    check_sampling_key(options, values, key)
    if key is None and samples_of(as_pytree(step_fn, "step_fn")):
        raise ValueError("the step function samples itself (a two-level step with use_sampling=True): pass a `key`")
    if key is not None:
        key = check_key("key", key, batch)
    fn = fitting_step(step_fn, options.step_info, pattern)
    lengths = None
    if prompt_lengths is not None:
        lengths = validate_lengths(prompt_lengths, (batch,), prompt_len, "prompt_lengths", "T0")
        lengths = lengths.astype(np.int32) if isinstance(lengths, np.ndarray) else lengths
    cfg = Config(
        pattern=pattern,
        special_token=options.special_token,
        start=start_step(pattern, prompt_len, prompt_lengths is not None),
        use_sampling=options.use_sampling,
        guidance=options.guidance,
        eos_token=options.eos_token,
        policy=options.policy,
        fill_after=options.fill_after,
        countdown=options.eos_token is not None,
    )
    return fn, jax.device_put((prompt, lengths, key, values)), cfg


def generate(
    step_fn: StepFn,
    state: tp.Any,
    pattern: Pattern,
    prompt: jax.typing.ArrayLike,
    options: DecodeOptions | None = None,
    *,
    key: jax.Array | None = None,
    prompt_lengths: jax.typing.ArrayLike | None = None,
    **settings: tp.Any,
) -> Generated:
    """Generates `pattern.timesteps` timesteps of codes, audiocraft's `LMModel.generate` step for step.

    The sequence starts as the pattern built from the prompt padded with the
    unknown token (-1); decoding runs from the first step holding an unknown
    code to the last step: each step's tokens are sampled from the logits of
    the step before, forced to `special_token` where the pattern has no code,
    and written only where the sequence is still unknown (prompt tokens are
    never overwritten). The result is the sequence reverted to `[B, K, T]`,
    prompt included. The decode is one compiled program (a `lax.while_loop`),
    compiled once per configuration: a second identical call, eager or under
    `jax.jit`, compiles nothing. `generate` can be called inside `jax.jit` and
    `jax.vmap`.

    The decode settings are one `lm.DecodeOptions` (`options=`), or its fields
    as keywords: `special_token` (required), `eos_token`, `fill_after`,
    `use_sampling`, `sampling` or its fields `temp`, `top_k`, `top_p`,
    `cfg_coef`, `step_info`, `step_returns` (see `DecodeOptions`).

    Per-example prompts (`prompt_lengths`): example `b` continues from
    `prompt[b, :, :prompt_lengths[b]]`; its codes past that are ignored. The
    batch decodes from the step a prompt of length 0 needs, whatever the
    values (one program for every request); an example whose prompt reaches
    further keeps its prompt tokens there and the step function sees them, so
    for a causal step function each example equals audiocraft's loop run on
    that example alone.

    EOS (`eos_token`): when codebook 0 samples `eos_token` at timestep `t_e`
    (a generated position, never the prompt), the example's length becomes
    `t_e`. From then on its positions of timesteps `>= t_e` are the special
    token (the model is fed what training with `lengths=` shows it); decoding
    continues until its frames `< t_e` are complete in every codebook: the
    pattern's own countdown (`max_delay` steps for a delayed pattern, the
    remaining codebooks' passes for coarse-first). The loop stops when every
    example is finished, on the device, without a host round trip per step.
    Dia (one EOS per channel at its delay, then pad) and Higgs Audio (`eos`
    after each codebook's last code) are the same countdown.

    Step functions: `step_fn(state, tokens [B, K, n]) -> (logits [B, K, card], state)`:
    the logits predict the step after `tokens`; it is called once with the
    whole prefix before the first decoded step, then with one step at a time
    (a KV-cached model fits directly: `lm.step_fn_of(model)`). With
    `step_info=True` it is called as `step_fn(state, tokens, info)` with an
    `lm.StepInfo`. With `step_returns="tokens"` it returns int tokens `[B, K]`
    (a two-level decoder). Pass the same function object (or a
    `jax.tree_util.Partial` holding parameters as arrays, as `step_fn_of`
    does) to reuse the compiled program.

    Keys: `key` is one PRNG key for the batch, or `[B]` keys; with `[B]` keys
    example `b` equals `generate` of that example alone with `key[b]`.

    Changed in this release: `generate` returns `Generated(codes, lengths)`
    whatever `eos_token` is (before, codes alone without `eos_token`).

    Args:
      step_fn: the step function (above). With guidance (`cfg_coef` not None),
        `tokens` is `[2B, K, n]` (the batch twice) and the logits `[2B, K, card]`:
        conditional first; `state` holds the 2B rows.
      state: the initial state of `step_fn` (e.g. an empty KV cache).
      pattern: the pattern for the number of timesteps to generate.
      prompt: `[B, K, T0]` integer codes, `0 <= T0 < timesteps`, other than
        `special_token` and `fill_after`.
      options: an `lm.DecodeOptions` (or its fields as keywords, not both).
      key: a PRNG key or `[B]` keys, needed when sampling.
      prompt_lengths: optional `[B]` ints in `[0, T0]`, host or traced
        (traced values are clipped into range, the library's `lengths` policy).
      **settings: the fields of `lm.DecodeOptions` and of `lm.Sampling`, when
        `options` is not given.

    Returns:
      `Generated(codes, lengths)`: int32 codes `[B, K, timesteps]` (frames
      `>= lengths[b]` are `special_token`) and int32 lengths `[B]`.

    Raises:
      ValueError: a prompt that does not fit or holds a code out of range, bad
        `prompt_lengths`, a pattern that does not start with a special token,
        sampling without a key, keys of the wrong shape, a step function whose
        `max_len` is shorter than the pattern, settings given twice, a bad
        `eos_token` / `step_returns`, a sampling setting out of range or of
        the wrong shape.
      TypeError: a `prompt_lengths` of the wrong type, a non-callable
        `step_fn`, a token id that is not an int, non-integer prompt codes,
        a key that is not a PRNG key, an unknown keyword.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import DelayedPatternProvider, lm
      >>> def step_fn(state, tokens):  # a toy model: logits favour code (state % 4)
      ...     state = state + 1
      ...     return jnp.eye(4)[state % 4][None, None].repeat(2, axis=1), state
      >>> pattern = DelayedPatternProvider(n_q=2).get_pattern(3)
      >>> codes, lengths = lm.generate(step_fn, 0, pattern, jnp.zeros((1, 2, 0), jnp.int32), special_token=4)
      >>> codes[0].tolist(), lengths.tolist()
      ([[1, 2, 3], [2, 3, 0]], [3])
    """
    options = resolve(options, settings, "generate")
    check_pytree("state", state)
    fn, (prompt, lengths, key, values), cfg = prepare(step_fn, pattern, prompt, options, key, prompt_lengths)
    codes, out_lengths = run_all(fn, state, prompt, lengths, key, values, cfg=cfg)
    return Generated(codes, out_lengths)
