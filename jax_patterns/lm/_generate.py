"""Generation with a pattern: audiocraft's `LMModel.generate` loop as one compiled XLA loop, and streaming.

`generate` and `stream` check their arguments here, in Python, then run the
programs of `_decode.py`. Both accept per-example prompt lengths, an EOS token
with the pattern's own countdown, and step functions that return logits or,
for two-level (depth) decoders, tokens.
"""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import Pattern
from jax_patterns._checks import check_flag, check_int_token, validate_lengths
from jax_patterns.lm import _decode
from jax_patterns.lm._decode import Config
from jax_patterns.lm._sampling import Sampling, settings

StepFn = tp.Callable[..., tuple[jax.Array, tp.Any]]


def _as_pytree(step_fn: tp.Any) -> jax.tree_util.Partial:
    """The step function as a pytree argument: a `Partial` keeps its arrays traced, a function is its own key."""
    if not callable(step_fn):
        raise TypeError(f"`step_fn` must be callable, got {type(step_fn).__name__}")
    if isinstance(step_fn, jax.tree_util.Partial):
        return step_fn
    return jax.tree_util.Partial(step_fn)


def _max_len(step_fn: jax.tree_util.Partial) -> int | None:
    """The longest input a step function declares (`max_len` on it or on a `Partial`'s function), if any."""
    for holder in (step_fn.func, step_fn):
        limit = getattr(holder, "max_len", None)
        if isinstance(limit, int):
            return limit
    return None


def token_ids(special_token: tp.Any, eos_token: tp.Any, fill_after: tp.Any, step_returns: tp.Any) -> tuple:
    """The decode's token ids and `step_returns`, checked (`generate`, `stream` and `Engine` share them).

    Returns `(special_token, eos_token, fill_after)` as ints (None kept).
    """
    special_token = check_int_token("special_token", special_token)
    if step_returns not in ("logits", "tokens"):
        raise ValueError(f"`step_returns` must be 'logits' or 'tokens', got {step_returns!r}")
    if eos_token is not None:
        if isinstance(eos_token, bool) or not isinstance(eos_token, (int, np.integer)) or eos_token < 0:
            raise ValueError(f"`eos_token` must be a non-negative int (a code of codebook 0), got {eos_token!r}")
        eos_token = check_int_token("eos_token", eos_token)
        if eos_token == special_token:
            raise ValueError(f"`eos_token`={eos_token} equals `special_token`; EOS must be a code the model samples")
    if fill_after is not None:
        fill_after = check_int_token("fill_after", fill_after)
    return special_token, eos_token, fill_after


def fitting_step_fn(step_fn: tp.Any, pattern: Pattern) -> jax.tree_util.Partial:
    """The step function as a pytree, checked to hold the pattern's steps (its declared `max_len`)."""
    fn = _as_pytree(step_fn)
    limit = _max_len(fn)
    if limit is not None and len(pattern) - 1 > limit:
        raise ValueError(
            f"the pattern has {len(pattern)} steps, so the step function is fed {len(pattern) - 1} of them, more "
            f"than its max_len={limit}; build the model with max_len >= {len(pattern) - 1}"
        )
    return fn


def _prompt_lengths(prompt_lengths: tp.Any, batch: int, prompt_len: int) -> tp.Any:
    """`prompt_lengths` checked by the library's one lengths check: host values in `[0, T0]` (as int32), device
    or traced values as they are (clipped into `[0, T0]` in the program, never read back)."""
    if prompt_lengths is None:
        return None
    checked = validate_lengths(prompt_lengths, (batch,), prompt_len, "prompt_lengths", "T0")
    return checked.astype(np.int32) if isinstance(checked, np.ndarray) else checked


def _sampling(
    sampling: Sampling | None, batch: int, temp: tp.Any, top_k: tp.Any, top_p: tp.Any, cfg_coef: tp.Any
) -> Sampling:
    """The sampling settings from `sampling=` or the keyword arguments (not both), checked, as `[B]` arrays."""
    if sampling is None:
        return settings(Sampling(temp, top_k, top_p, cfg_coef), batch)
    defaults = Sampling()
    given = [
        name
        for name, value, default in zip(Sampling._fields, (temp, top_k, top_p, cfg_coef), defaults)
        if not (
            value is default or (type(value) in (int, float) and type(default) in (int, float) and value == default)
        )
    ]
    if given:
        raise ValueError(
            f"pass the sampling settings either as `sampling=` or as keywords, not both (got {', '.join(given)} too)"
        )
    return settings(sampling, batch)


@functools.lru_cache(maxsize=256)
def _start_step(pattern: Pattern, prompt_len: int, per_example: bool) -> int:
    """The first step to decode: the earliest one any example may need (its first unknown code's step).

    With per-example prompts it is the earliest over every prompt length in
    `[0, T0]`, whatever the values: one program per (pattern, T0, options)
    serves every request. Decoding from an earlier step changes no token (prompt
    positions are kept, and a causal step function sees the same prefix); it
    only feeds the prompt steps one at a time instead of in the first call.
    """
    candidates = set(range(prompt_len + 1)) if per_example else {prompt_len}
    starts = [pattern.get_first_step_with_timesteps(n) for n in sorted(candidates)]
    if any(s is None or s == 0 for s in starts):
        bad = next(n for n, s in zip(sorted(candidates), starts) if s is None or s == 0)
        first = pattern.get_first_step_with_timesteps(bad)
        raise ValueError(
            f"the pattern has no step to start decoding a prompt of {bad} timesteps from (first step: {first}); "
            "generation needs a pattern that starts with a special token"
        )
    return min(tp.cast(list[int], starts))


def _prepare(
    step_fn: tp.Any,
    pattern: Pattern,
    prompt: tp.Any,
    *,
    special_token: int,
    key: tp.Any,
    use_sampling: bool,
    temp: tp.Any,
    top_k: tp.Any,
    top_p: tp.Any,
    cfg_coef: tp.Any,
    prompt_lengths: tp.Any,
    eos_token: int | None,
    step_info: bool,
    step_returns: str,
    fill_after: int | None = None,
    sampling: Sampling | None = None,
) -> tuple[jax.tree_util.Partial, jax.Array, tp.Any, Sampling, Config]:
    """Every check of `generate` and `stream`, before tracing; returns what the programs take."""
    if not isinstance(pattern, Pattern):
        raise TypeError(f"`pattern` must be a Pattern, got {type(pattern).__name__}")
    if prompt is None:
        raise TypeError("`prompt` is None; expected codes [B, K, T0] (T0 may be 0)")
    if not isinstance(prompt, (jax.Array, jax.core.Tracer)):
        prompt = np.asarray(prompt)  # moved to the device by the program's call, not here
    if prompt.ndim != 3 or prompt.shape[1] != pattern.n_q:
        raise ValueError(f"`prompt` must be [B, K={pattern.n_q}, T0], got shape {prompt.shape}")
    if prompt.dtype == np.bool_ or not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise TypeError(f"`prompt` must hold integer codes, got dtype {prompt.dtype}")
    batch, _, prompt_len = prompt.shape
    if prompt_len >= pattern.timesteps:
        raise ValueError(f"`prompt` has T0={prompt_len} timesteps; expected fewer than timesteps={pattern.timesteps}")
    special_token, eos_token, fill_after = token_ids(special_token, eos_token, fill_after, step_returns)
    use_sampling = check_flag("use_sampling", use_sampling)
    values = _sampling(sampling, batch, temp, top_k, top_p, cfg_coef)
    if step_returns == "tokens" and values.cfg_coef is not None:
        raise ValueError("`cfg_coef` mixes logits; a step function with step_returns='tokens' applies guidance itself")
    if step_returns == "logits" and use_sampling and key is None:
        given = (sampling or Sampling(temp, top_k, top_p, cfg_coef)).temp
        if not (isinstance(given, (int, float, np.ndarray, np.generic)) and np.all(np.asarray(given) <= 0)):
            raise ValueError("sampling (`use_sampling=True`, `temp > 0`) needs a PRNG `key`")
    fn = fitting_step_fn(step_fn, pattern)
    lengths = _prompt_lengths(prompt_lengths, batch, prompt_len)
    cfg = Config(
        pattern=pattern,
        special_token=special_token,
        start=_start_step(pattern, prompt_len, prompt_lengths is not None),
        use_sampling=use_sampling,
        guidance=values.cfg_coef is not None,
        eos_token=eos_token,
        step_info=check_flag("step_info", step_info),
        step_returns=step_returns,
        per_example_prompts=prompt_lengths is not None,
        fill_after=fill_after,
    )
    return fn, prompt, lengths, values, cfg


def generate(
    step_fn: StepFn,
    state: tp.Any,
    pattern: Pattern,
    prompt: jax.typing.ArrayLike,
    *,
    special_token: int,
    key: jax.Array | None = None,
    use_sampling: bool = False,
    temp: tp.Any = 1.0,
    top_k: tp.Any = 0,
    top_p: tp.Any = 0.0,
    cfg_coef: tp.Any = None,
    prompt_lengths: jax.typing.ArrayLike | None = None,
    eos_token: int | None = None,
    step_info: bool = False,
    step_returns: str = "logits",
    fill_after: int | None = None,
    sampling: Sampling | None = None,
) -> tp.Any:
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
    In the returned codes, frames `>= lengths[b]` are `special_token`.
    Dia (one EOS per channel at its delay, then pad) and Higgs Audio (`eos`
    after each codebook's last code) are the same countdown: their per-channel
    EOS/pad positions are the positions `>= lengths[b]` of the delayed layout,
    which a caller may rewrite with its own fill ids.

    Step functions: `step_fn(state, tokens [B, K, n]) -> (logits [B, K, card], state)`:
    the logits predict the step after `tokens`; it is called once with the
    whole prefix before the first decoded step, then with one step at a time
    (a KV-cached model fits directly). With `step_info=True` it is called as
    `step_fn(state, tokens, info)` with a `StepInfo`: the step it decodes, the
    positions that will be special or kept from the prompt, and the step's PRNG
    key (HF MusicGen masks special input positions from attention: they are
    `tokens == special_token`). With `step_returns="tokens"` it returns int
    tokens `[B, K]` instead of logits: a two-level (Moshi / CSM style) decoder
    samples the K codebooks of a step with its own depth model; special
    tokens, prompt protection and EOS are applied to them unchanged. Pass the
    same function object (or a `jax.tree_util.Partial` holding parameters as
    arrays, as `step_fn_of` does) to reuse the compiled program.

    Args:
      step_fn: the step function (above). With `cfg_coef`, `tokens` is
        `[2B, K, n]` (the batch twice) and the logits `[2B, K, card]`:
        conditional first.
      state: the initial state of `step_fn` (e.g. an empty KV cache).
      pattern: the pattern for the number of timesteps to generate.
      prompt: `[B, K, T0]` codes, `0 <= T0 < timesteps`.
      special_token: the special token id (audiocraft: `card`).
      key: PRNG key, needed when sampling.
      use_sampling: sample (static) rather than take the argmax (greedy, the default).
      temp, top_k, top_p: as in audiocraft, each a number or `[B]` (one per
        example), host or traced: new values compile nothing. `top_k >= card`
        keeps every code (audiocraft's `torch.topk` raises there).
      cfg_coef: classifier-free guidance, `uncond + (cond - uncond) * cfg_coef`,
        a number or `[B]`; None (static) turns guidance off.
      sampling: the four settings above as one `lm.Sampling` (instead of the
        keywords, not with them).
      prompt_lengths: optional `[B]` ints in `[0, T0]`, host or traced
        (traced values are clipped into range, the library's `lengths` policy).
        One program serves every value: decoding starts at the earliest step
        a prompt of length 0 needs (tokens are the same as from each
        example's own start; longer prompts are fed step by step after the
        first call).
      eos_token: optional codebook-0 code that ends an example.
      step_info: call `step_fn(state, tokens, info)`.
      step_returns: `"logits"` (default) or `"tokens"`.
      fill_after: a second fill token (bos/pad, bos/eos conventions): the
        positions without a code get `special_token` before their codebook's
        first position in the layout and `fill_after` after it (as
        `build_pattern_sequence(..., fill_after=)`), past an EOS included.

    Returns:
      codes `[B, K, timesteps]` (int32); with `eos_token`, `(codes, lengths)`
      where `lengths [B]` (int32) is each example's number of timesteps
      (`timesteps` where no EOS was sampled).

    Raises:
      ValueError: a prompt that does not fit, bad `prompt_lengths`, a pattern
        that does not start with a special token (nothing to predict the first
        step from), sampling without a key, a step function whose `max_len` is
        shorter than the pattern, a bad `eos_token` / `step_returns`, a token id
        outside int32, a sampling setting out of range or of the wrong shape.
      TypeError: a `prompt_lengths` of the wrong type, a non-callable `step_fn`,
        a token id that is not an int (4.7, None), non-integer prompt codes.
    """
    fn, prompt, lengths, values, cfg = _prepare(
        step_fn,
        pattern,
        prompt,
        special_token=special_token,
        key=key,
        use_sampling=use_sampling,
        temp=temp,
        top_k=top_k,
        top_p=top_p,
        cfg_coef=cfg_coef,
        prompt_lengths=prompt_lengths,
        eos_token=eos_token,
        step_info=step_info,
        step_returns=step_returns,
        fill_after=fill_after,
        sampling=sampling,
    )
    codes, out_lengths = _decode.run_all(fn, state, prompt, lengths, key, values, cfg=cfg)
    return codes if eos_token is None else (codes, out_lengths)


Progress = tp.Callable[[int, int], tp.Any]


class Stream:
    """The iterator `stream` returns: int32 frames `[B, K, n]`, in order, as soon as they are complete.

    Attributes:
      lengths: `[B]` numpy int32, each example's length as known so far
        (`timesteps` until its EOS is sampled); final once iteration ends.
      frames: frames yielded so far.
      chunks: chunks of decode steps run so far.
    """

    def __init__(self, fn: jax.tree_util.Partial, cfg: Config, chunk_steps: int, args: tuple, progress: tp.Any):
        self._fn, self._cfg, self._chunk_steps, self._args = fn, cfg, chunk_steps, args
        self._pending: tp.Any = None
        self._carry: tp.Any = None
        self._finished = False
        self._progress = progress
        self.frames = 0
        self.chunks = 0
        self.lengths = np.full(args[1].shape[0], cfg.pattern.timesteps, np.int32)

    def __iter__(self) -> Stream:
        return self

    def _dispatch(self) -> tuple:
        """Queues the next program (the first call, then chunks); returns its (codes, ready, done, lengths)."""
        if self._carry is None:
            state, prompt, lengths, key, values = self._args
            carry, *out = _decode.run_first(self._fn, state, prompt, lengths, key, values, cfg=self._cfg)
        else:
            carry, *out = _decode.run_chunk(self._fn, self._carry, cfg=self._cfg, chunk_steps=self._chunk_steps)
        self._carry = carry
        return (*out, carry.lengths)

    def __next__(self) -> np.ndarray:
        timesteps = self._cfg.pattern.timesteps
        while self.frames < timesteps:
            current = self._dispatch() if self._pending is None else self._pending
            # the next chunk is queued before this one is read: the device decodes while the host copies
            self._pending = None if self._finished else self._dispatch()
            self.chunks += 1
            codes, ready, done, lengths = jax.device_get(current)  # the one host sync of this chunk
            self.lengths = np.asarray(lengths)
            self._finished = bool(done)
            ready = timesteps if self._finished else int(ready)
            if self._progress is not None:
                self._progress(ready, timesteps)
            if ready > self.frames:
                frames = np.asarray(codes[..., self.frames : ready])
                self.frames = ready
                return frames
        self._pending = None
        close = getattr(self._progress, "close", None)
        if callable(close):
            close()
        raise StopIteration


class _Bar:
    """A tqdm bar over frames, as a `progress(ready, total)` callback."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc="stream", unit="frame")

    def __call__(self, ready: int, total: int) -> None:
        self._bar.update(ready - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def stream(
    step_fn: StepFn,
    state: tp.Any,
    pattern: Pattern,
    prompt: jax.typing.ArrayLike,
    *,
    special_token: int,
    chunk_steps: int,
    key: jax.Array | None = None,
    use_sampling: bool = False,
    temp: tp.Any = 1.0,
    top_k: tp.Any = 0,
    top_p: tp.Any = 0.0,
    cfg_coef: tp.Any = None,
    prompt_lengths: jax.typing.ArrayLike | None = None,
    eos_token: int | None = None,
    step_info: bool = False,
    step_returns: str = "logits",
    fill_after: int | None = None,
    sampling: Sampling | None = None,
    progress: bool | Progress = False,
) -> Stream:
    """`generate`, yielding complete frames as it goes: an iterator of int32 numpy `[B, K, n]`.

    Decoding runs in jitted chunks of `chunk_steps` steps (one compiled program
    for every chunk, none per step); after each chunk the host reads, in one
    transfer, the codes and how many leading frames are complete in every
    codebook of every example, and yields the new ones. Prompt frames come
    first (they are complete from the start), so the concatenation of the
    yields along the last axis is exactly `generate`'s codes with the same
    arguments. With `eos_token`, frames at or past an example's length are the
    special token, iteration stops when every example is finished (the last
    yield holds the remaining frames, up to `timesteps`), and the returned
    `Stream`'s `lengths` attribute holds the lengths. The next chunk is queued
    before the current one is read, so the device keeps decoding while the host
    copies.

    Args:
      step_fn, state, pattern, prompt, special_token, key, use_sampling, temp,
        top_k, top_p, cfg_coef, prompt_lengths, eos_token, step_info,
        step_returns, fill_after, sampling: as for `generate`.
      chunk_steps: decode steps per chunk (>= 1): small chunks give frames
        sooner, large chunks fewer host round trips.
      progress: `True` for a tqdm bar over frames (stderr), or a callable
        `progress(frames_ready, timesteps)` called after every chunk.

    Returns:
      a `Stream` (an iterator of frames; `lengths` once iteration ends).

    Raises:
      ValueError, TypeError: as for `generate`; `chunk_steps` not a positive int.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax_patterns import DelayedPatternProvider, lm
      >>> def step_fn(state, tokens):  # a toy model: logits favour code (state % 4)
      ...     state = state + 1
      ...     return jnp.eye(4)[state % 4][None, None].repeat(2, axis=1), state
      >>> pattern = DelayedPatternProvider(n_q=2).get_pattern(5)
      >>> chunks = lm.stream(step_fn, 0, pattern, jnp.zeros((1, 2, 0), jnp.int32), special_token=4, chunk_steps=2)
      >>> [c[0].tolist() for c in chunks]  # frame 0 is complete once codebook 1 (delay 1) has it
      [[[1, 2], [2, 3]], [[3, 0], [0, 1]], [[1], [2]]]
    """
    if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, (int, np.integer)) or chunk_steps < 1:
        raise ValueError(f"`chunk_steps` must be a positive int, got {chunk_steps!r}")
    fn, prompt, lengths, values, cfg = _prepare(
        step_fn,
        pattern,
        prompt,
        special_token=special_token,
        key=key,
        use_sampling=use_sampling,
        temp=temp,
        top_k=top_k,
        top_p=top_p,
        cfg_coef=cfg_coef,
        prompt_lengths=prompt_lengths,
        eos_token=eos_token,
        step_info=step_info,
        step_returns=step_returns,
        fill_after=fill_after,
        sampling=sampling,
    )
    callback: tp.Any = None
    if progress is True:
        callback = _Bar(pattern.timesteps)
    elif callable(progress):
        callback = progress
    elif progress is not False and progress is not None:
        raise TypeError(f"`progress` must be a bool or a callable (ready, total), got {progress!r}")
    args = jax.device_put((state, prompt, lengths, key, values))  # explicit: nothing moves implicitly afterwards
    chunks = Stream(fn, cfg, int(chunk_steps), args, callback)
    chunks._pending = chunks._dispatch()  # trace errors surface here, and the first call starts at once
    return chunks
