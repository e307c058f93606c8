"""The decode core under `generate`, `stream` and `Engine`: one state, one per-example step, three programs.

The loop state (`Carry`) is the interleaved sequence being filled, the step
function's state, the next step to write (one for the batch, or one per
example), each example's length (its EOS), the PRNG key(s) and the sampling
settings. `step` writes one step of every example; `finished` says which
examples are done; `codes_so_far` reverts what is written. `generate` runs
`run_all` (the first call, then every step); `stream` runs `run_first` then
`run_chunk` (donated state, a traced chunk size); `Engine` runs the same `step`
with one offset per slot and a mask of live slots.

What a step writes, per position `(b, k)` of example `b`'s step `s`:
- the prompt's token where the position is already known (never overwritten);
- the fill token (special, or `fill_after` past the codebook's first code)
  where the pattern has no code, or where the code's timestep is at or past
  the example's length (after its EOS, or past a request's own limit);
- otherwise the token the policy makes of the step function's output (sampled
  from logits, or a two-level decoder's own tokens).

With a countdown (an EOS token, or `Engine`'s per-request limits) an example is
finished once every generated code of a frame below its length is written: a
`[B, T + 1]` table made once per call gives, for each example and length, the
step of that last code, so the countdown costs one lookup per example per step.

Programs are keyed on `Config` (everything the trace reads besides arrays) and
on the step function's pytree structure: a plain function is its own key, a
`jax.tree_util.Partial` carries arrays (parameters) as traced leaves. The step
function is always called as `step_fn(state, tokens, info)` (`as_step` adapts
two-argument functions once, at the boundary).
"""

from __future__ import annotations

import dataclasses
import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import Pattern
from jax_patterns.lm._policies import POLICIES, TokenPolicy, doubled, doubled_info, mix
from jax_patterns.lm._sampling import Sampling

UNKNOWN = -1
"""The token of not-yet-generated positions (audiocraft's `unknown_token`)."""


class StepInfo(tp.NamedTuple):
    """What a step function called with `step_info=True` is told about the step it decodes.

    Attributes:
      step: int32, the sequence step the call's output is written to (the
        input tokens are the steps just before it): a scalar under `generate`
        and `stream`, `[B]` under `lm.Engine` (each slot's own step).
      special: bool `[B, K]`: positions of that step that will hold the special
        token whatever the step function returns (no code there, or past the
        example's EOS).
      known: bool `[B, K]`: positions already fixed by the prompt; they keep
        their token whatever the step function returns.
      key: the PRNG key of this step (what the decode samples with), for a
        step function that samples itself: one key, or `[B]` keys (per-example
        keys, and `lm.Engine`).
      reset: None under `generate`; under `lm.Engine`, bool `[B]`: the slots
        that took a new request since the last call.
    """

    step: jax.Array
    special: jax.Array
    known: jax.Array
    key: jax.Array
    reset: tp.Any = None


class Carry(tp.NamedTuple):
    """The decode loop's state (a pytree). `active` and `reset` are None but under `Engine`."""

    seq: tp.Any  # [B, K, S] int32, UNKNOWN where not yet written
    state: tp.Any  # the step function's state
    offset: tp.Any  # int32: the next step to write; a scalar, or [B] (one per example)
    lengths: tp.Any  # [B] int32: timesteps before the EOS (or the request's limit)
    prompt_lengths: tp.Any  # [B] int32
    needed: tp.Any  # [B, T + 1] int32: `needed_steps`, the countdown by length ([B, 0] without a countdown)
    key: tp.Any  # one PRNG key, or [B] keys
    sampling: Sampling  # [B] arrays: temperature, top-k, top-p, guidance (traced: new values compile nothing)
    active: tp.Any = None  # [B] bool: the slot holds a request (Engine)
    reset: tp.Any = None  # [B] bool: the slot took a new request since the last step (Engine)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the decode programs read besides arrays (their static key).

    The sampling values are not here: they are traced arrays of the carry, so a
    new value compiles nothing; only greedy vs sampling and guidance on/off are
    static.
    """

    pattern: Pattern
    special_token: int
    start: int  # the step written by the first call; it is fed `seq[..., :start]`
    use_sampling: bool = False
    guidance: bool = False
    eos_token: int | None = None
    policy: TokenPolicy = POLICIES["logits"]
    fill_after: int | None = None
    countdown: bool = False  # lengths end examples: with an EOS token, and always under `Engine`


def _make_tables(pattern: Pattern) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps, ts, qs = pattern.coords
    keep = ts < pattern.timesteps
    steps, ts, qs = steps[keep], ts[keep], qs[keep]
    timestep = np.full((pattern.n_q, len(pattern)), -1, np.int32)
    timestep[qs, steps] = ts
    last = np.full(pattern.timesteps, -1, np.int64)
    np.maximum.at(last, ts, steps)
    first = np.full(pattern.n_q, len(pattern), np.int64)
    np.minimum.at(first, qs, steps)
    after = np.arange(len(pattern))[None, :] > first[:, None]
    out = (timestep, last.astype(np.int32), after)
    for array in out:
        array.flags.writeable = False
    return out


def tables(pattern: Pattern) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static tables of a pattern, made once and cached on the pattern itself.

    Returns:
      `timestep [K, S]`: the timestep each position holds, -1 where none;
      `last [T]`: the step holding frame `t`'s last code (-1 if none): frame `t`
      is complete in every codebook once that step is written;
      `after [K, S]`: whether the position comes after its codebook's first code
      (where `fill_after` replaces the special token).
    """
    return pattern.derived("decode_tables", _make_tables)


def needed_steps(cfg: Config, prompt_lengths: jax.Array) -> jax.Array:
    """`[B, T + 1]`: for example `b` and a length `L`, the last step holding a code of a frame in `[P_b, L)`.

    Frames below the prompt length are known from the start; -1 where nothing
    is left to generate. Made once per call (O(B * T)); a step reads one entry
    per example.
    """
    last = jnp.asarray(tables(cfg.pattern)[1])
    generated = jnp.arange(last.shape[0])[None, :] >= prompt_lengths[:, None]
    running = jax.lax.cummax(jnp.where(generated, last[None, :], -1), axis=1)
    return jnp.concatenate([jnp.full((prompt_lengths.shape[0], 1), -1, jnp.int32), running], axis=1)


def _read(seq: jax.Array, at: jax.Array) -> jax.Array:
    """`seq[b, :, at]` -> `[B, K]`; `at` a scalar (one step for the batch) or `[B]`."""
    if at.ndim == 0:
        return jax.lax.dynamic_index_in_dim(seq, at, axis=2, keepdims=False)
    return jnp.take_along_axis(seq, at[:, None, None], axis=2)[..., 0]


def _write(seq: jax.Array, at: jax.Array, token: jax.Array) -> jax.Array:
    """`seq[b, :, at] = token [B, K]`: an in-place update when the step is shared, a scatter per example else."""
    if at.ndim == 0:
        return jax.lax.dynamic_update_index_in_dim(seq, token, at, axis=2)
    return seq.at[jnp.arange(seq.shape[0]), :, at].set(token)


def _rows(table: np.ndarray, at: jax.Array) -> jax.Array:
    """Column(s) `at` of a `[K, S]` table as `[1 or B, K]`."""
    rows = jnp.asarray(table).T[at]
    return rows[None] if at.ndim == 0 else rows


def call(step_fn: tp.Callable, cfg: Config, state: tp.Any, tokens: jax.Array, info: StepInfo, coef: tp.Any) -> tuple:
    """One call of the step function, under guidance when the config says so (the batch doubled, then mixed)."""
    if not cfg.guidance:
        return _pair(step_fn(state, tokens, info))
    out, state = _pair(step_fn(state, doubled(tokens), doubled_info(info)))
    return mix(out, coef), state


def _pair(result: tp.Any) -> tuple:
    """The step function's `(logits or tokens, state)`, or a TypeError naming `step_fn` (at trace time)."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"`step_fn` must return a pair (logits or tokens, new state), got {type(result).__name__}")
    return tuple(result)


def finished(cfg: Config, carry: Carry) -> jax.Array:
    """`[B]`: each example is complete (its frames before its length are written, or the pattern has ended)."""
    offset = jnp.broadcast_to(carry.offset, carry.lengths.shape)
    done = offset >= len(cfg.pattern)
    if cfg.countdown:
        needed = jnp.take_along_axis(carry.needed, carry.lengths[:, None], axis=1)[:, 0]
        done = done | (needed < offset)
    return done


def step(step_fn: tp.Callable, cfg: Config, carry: Carry, first: bool = False) -> Carry:
    """Writes each example's step `carry.offset` from the step function's output on the steps before it.

    `first`: the first call, fed the whole prefix `seq[..., :cfg.start]` (a
    shared offset). Under `Engine` (`carry.active` set), slots that are not
    live keep their tokens and their offset.
    """
    seq, offset, lengths = carry.seq, carry.offset, carry.lengths
    batch, n_q, steps = seq.shape
    running = None if carry.active is None else carry.active & ~finished(cfg, carry)
    at = offset if running is None else jnp.clip(offset, 1, steps - 1)  # frozen slots sit at 0 or past the end
    timestep_table, _, after_table = tables(cfg.pattern)
    timestep = _rows(timestep_table, at)  # [1 or B, K]
    current = _read(seq, at)  # [B, K]
    known = current != UNKNOWN
    special = (timestep < 0) | (timestep >= lengths[:, None])
    if carry.key.ndim == 0:
        key = jax.random.fold_in(carry.key, at)
    else:
        key = jax.vmap(jax.random.fold_in)(carry.key, jnp.broadcast_to(at, (batch,)))
    if first:
        tokens = seq[..., : cfg.start]
    else:
        tokens = _read(seq, at - 1)[..., None]
    info = StepInfo(at, special, known, key, carry.reset)
    out, state = call(step_fn, cfg, carry.state, tokens, info, carry.sampling.cfg_coef)
    cfg.policy.check(out, batch, n_q, cfg.eos_token)
    token = cfg.policy.tokens(out, key, carry.sampling, cfg.use_sampling)
    if cfg.eos_token is not None:
        # a generated codebook-0 code (a prompt code is one below the prompt length): read from the
        # carry, not from `seq`, so that XLA updates the sequence in place instead of copying it
        frame = timestep[:, 0]
        hit = (frame >= carry.prompt_lengths) & (frame < lengths) & (token[:, 0] == cfg.eos_token)
        if running is not None:
            hit = hit & running
        lengths = jnp.where(hit, jnp.minimum(lengths, frame), lengths)
    fill = jnp.int32(cfg.special_token)
    if cfg.fill_after is not None:  # two fill tokens: before each codebook's first code, and after it
        fill = jnp.where(_rows(after_table, at), jnp.int32(cfg.fill_after), fill)
    token = jnp.where(special, fill, token)
    keep = known if running is None else known | ~running[:, None]
    token = jnp.where(keep, current, token)
    seq = _write(seq, at, token)
    if running is None:
        return carry._replace(seq=seq, state=state, offset=offset + 1, lengths=lengths)
    return carry._replace(
        seq=seq,
        state=state,
        offset=offset + running.astype(jnp.int32),
        lengths=lengths,
        reset=jnp.zeros_like(carry.reset),
    )


def codes_so_far(cfg: Config, carry: Carry) -> tuple[jax.Array, jax.Array]:
    """Each example's codes `[B, K, T]` so far (fill past its length) and its complete leading frames `[B]`."""
    codes, _, _ = cfg.pattern.revert_pattern_sequence(carry.seq, UNKNOWN)
    timesteps = cfg.pattern.timesteps
    if cfg.countdown:
        past = jnp.arange(timesteps)[None, None, :] >= carry.lengths[:, None, None]
        codes = jnp.where(past, jnp.int32(cfg.special_token), codes)
    complete = jnp.all(codes != UNKNOWN, axis=1)  # [B, T]
    ready = jnp.where(jnp.all(complete, axis=1), timesteps, jnp.argmin(complete, axis=1)).astype(jnp.int32)
    return codes, ready


def initial(
    cfg: Config,
    prompt: jax.Array,
    prompt_lengths: jax.Array | None,
    state: tp.Any,
    key: tp.Any,
    sampling: Sampling,
    lengths: jax.Array | None = None,
) -> Carry:
    """The sequence built from the prompt (codes past each prompt length unknown), before any call.

    `lengths` (default `T` each) are the examples' starting lengths: `Engine`
    passes each request's own limit.
    """
    batch, n_q, prompt_len = prompt.shape
    given = prompt.astype(jnp.int32)
    if prompt_lengths is None:
        prompt_lengths = jnp.full((batch,), prompt_len, jnp.int32)
    else:  # traced values are clipped: the library's lengths policy
        prompt_lengths = jnp.clip(prompt_lengths.astype(jnp.int32), 0, prompt_len)
        given = jnp.where(jnp.arange(prompt_len)[None, None, :] < prompt_lengths[:, None, None], given, UNKNOWN)
    codes = jnp.full((batch, n_q, cfg.pattern.timesteps), UNKNOWN, dtype=jnp.int32)
    codes = codes.at[..., :prompt_len].set(given)
    seq, _, mask = cfg.pattern.build_pattern_sequence(codes, cfg.special_token)
    if cfg.fill_after is not None:  # the layout's empty positions after each codebook's first code
        after = jnp.asarray(tables(cfg.pattern)[2]) & ~mask
        seq = jnp.where(jnp.broadcast_to(after, seq.shape), jnp.int32(cfg.fill_after), seq)
    key = jax.random.key(0) if key is None else key
    if lengths is None:
        lengths = jnp.full((batch,), cfg.pattern.timesteps, jnp.int32)
    needed = needed_steps(cfg, prompt_lengths) if cfg.countdown else jnp.zeros((batch, 0), jnp.int32)
    return Carry(seq, state, jnp.int32(cfg.start), lengths, prompt_lengths, needed, key, sampling)


def advance(step_fn: tp.Callable, cfg: Config, carry: Carry, limit: tp.Any) -> Carry:
    """Steps until `limit` (exclusive) or until every example is finished: one `lax.while_loop`."""
    steps = len(cfg.pattern)

    def running(c: Carry) -> jax.Array:
        return (c.offset < jnp.minimum(limit, steps)) & ~jnp.all(finished(cfg, c))

    return jax.lax.while_loop(running, lambda c: step(step_fn, cfg, c), carry)


def _report(cfg: Config, carry: Carry) -> tuple:
    """What `stream` reads after a program: the codes, the frames complete in every example, done, lengths."""
    codes, ready = codes_so_far(cfg, carry)
    return codes, jnp.min(ready), jnp.all(finished(cfg, carry)), jnp.copy(carry.lengths)


@functools.partial(jax.jit, static_argnames=("cfg",))
def run_all(step_fn, state, prompt, prompt_lengths, key, sampling, *, cfg: Config) -> tuple[jax.Array, jax.Array]:
    """`generate`'s program: the first call, every step, then the codes and lengths."""
    carry = step(step_fn, cfg, initial(cfg, prompt, prompt_lengths, state, key, sampling), first=True)
    carry = advance(step_fn, cfg, carry, len(cfg.pattern))
    codes, _ = codes_so_far(cfg, carry)
    return codes, carry.lengths


@functools.partial(jax.jit, static_argnames=("cfg",))
def run_first(step_fn, state, prompt, prompt_lengths, key, sampling, *, cfg: Config) -> tuple:
    """`stream`'s first program: the first call; returns the carry and what is complete."""
    carry = step(step_fn, cfg, initial(cfg, prompt, prompt_lengths, state, key, sampling), first=True)
    return (carry, *_report(cfg, carry))


@functools.partial(jax.jit, static_argnames=("cfg",), donate_argnames=("carry",))
def run_chunk(step_fn, carry: Carry, chunk_steps: jax.Array, *, cfg: Config) -> tuple:
    """`stream`'s chunk program: up to `chunk_steps` (traced) more steps; one compilation for every chunk size.

    The carry is donated: the KV cache and the sequence are updated in place, never copied per chunk.
    """
    limit = carry.offset + jnp.minimum(chunk_steps, len(cfg.pattern) - carry.offset)  # no int32 overflow
    carry = advance(step_fn, cfg, carry, limit)
    return (carry, *_report(cfg, carry))
