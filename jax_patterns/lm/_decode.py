"""The compiled decode loop under `generate` and `stream`: one state, one step, three jitted programs.

The loop state (`Carry`) is the interleaved sequence being filled, the step
function's state, the next step to write, each example's length (its EOS) and
the PRNG key. `_step` writes one step; `start` runs the first call (the whole
prefix) and `advance` runs steps until a limit or until every example is
finished. `generate` is `start` then `advance` to the end; `stream` is `start`
then `advance` by `chunk_steps`, so both write the same tokens.

What a step writes, per position `(b, k)` of step `s`:
- the prompt's token where the position is already known (never overwritten);
- the special token where the pattern has no code, or where the code's timestep
  is at or past the example's length (after its EOS);
- otherwise the token sampled from the step function's logits (or the token it
  returned, for two-level decoders).

With an EOS token, an example is finished once every generated code of a frame
below its length is written (prompt codes are written from the start): a
`[B, T + 1]` table made once per call gives, for each example and length, the
step of that last code, so the countdown costs one lookup per example per step.

Programs are keyed on `Config` (everything the trace reads besides arrays) and
on the step function's pytree structure: a plain function is its own key, a
`jax.tree_util.Partial` carries arrays (parameters) as traced leaves.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import Pattern
from jax_patterns.lm._sampling import Sampling, sample_next_token

UNKNOWN = -1
"""The token of not-yet-generated positions (audiocraft's `unknown_token`)."""


class StepInfo(tp.NamedTuple):
    """What a step function called with `step_info=True` is told about the step it decodes.

    Attributes:
      step: int32 scalar, the sequence step the call's output is written to;
        the input tokens are the steps just before it.
      special: bool `[B, K]`: positions of that step that will hold the special
        token whatever the step function returns (no code there, or past the
        example's EOS).
      known: bool `[B, K]`: positions already fixed by the prompt; they keep
        their token whatever the step function returns.
      key: the PRNG key of this step (what `generate` samples with), for a
        step function that samples itself.
      reset: None under `generate`; under `lm.Engine`, bool `[B]`: the slots
        that took a new request since the last call (`step` is then `[B]`, one
        step per slot, and `key` `[B]` keys).
    """

    step: jax.Array
    special: jax.Array
    known: jax.Array
    key: jax.Array
    reset: tp.Any = None


class Carry(tp.NamedTuple):
    """The decode loop's state (a pytree)."""

    seq: jax.Array  # [B, K, S] int32, UNKNOWN where not yet written
    state: tp.Any  # the step function's state
    offset: jax.Array  # int32 scalar: the next step to write
    lengths: jax.Array  # [B] int32: timesteps before the EOS (T where none yet)
    prompt_lengths: jax.Array  # [B] int32
    needed: jax.Array  # [B, T + 1] int32: `_needed_steps`, the countdown of each example by length
    key: jax.Array
    sampling: Sampling  # [B] arrays: temperature, top-k, top-p, guidance (traced: new values compile nothing)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the decode programs read besides arrays (their static key).

    The sampling values (temperature, top-k, top-p, guidance coefficient) are
    not here: they are traced arrays of the carry, so a new value compiles
    nothing; only greedy vs sampling and guidance on/off are static.
    """

    pattern: Pattern
    special_token: int
    start: int  # the step written by the first call; it is fed `seq[..., :start]`
    use_sampling: bool = False
    guidance: bool = False
    eos_token: int | None = None
    step_info: bool = False
    step_returns: str = "logits"
    per_example_prompts: bool = False
    fill_after: int | None = None


@functools.lru_cache(maxsize=64)
def tables(pattern: Pattern) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static tables of a pattern, once per pattern.

    Returns:
      `timestep [K, S]`: the timestep each position holds, -1 where none;
      `last [T]`: the step holding frame `t`'s last code (-1 if none): frame `t`
      is complete in every codebook once that step is written;
      `after [K, S]`: whether the position comes after its codebook's first code
      (where `fill_after` replaces the special token).
    """
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
    return timestep, last.astype(np.int32), after


def _needed_steps(cfg: Config, prompt_lengths: jax.Array) -> jax.Array:
    """`[B, T + 1]`: for example `b` and a length `L`, the last step holding a code of a frame in `[P_b, L)`.

    Frames below the prompt length are known from the start; -1 where nothing
    is left to generate. Made once per call (O(B * T)); a step reads one entry
    per example.
    """
    last = jnp.asarray(tables(cfg.pattern)[1])
    generated = jnp.arange(last.shape[0])[None, :] >= prompt_lengths[:, None]
    running = jax.lax.cummax(jnp.where(generated, last[None, :], -1), axis=1)
    return jnp.concatenate([jnp.full((prompt_lengths.shape[0], 1), -1, jnp.int32), running], axis=1)


def _call(step_fn: tp.Callable, cfg: Config, state: tp.Any, tokens: jax.Array, info: StepInfo, coef: tp.Any) -> tuple:
    """One call of the step function: classifier-free guidance doubles the batch; info is passed if asked."""
    batch = tokens.shape[0]
    if cfg.guidance:
        tokens = jnp.concatenate([tokens, tokens], axis=0)
        info = info._replace(
            special=jnp.concatenate([info.special, info.special]), known=jnp.concatenate([info.known, info.known])
        )
    out, state = step_fn(state, tokens, info) if cfg.step_info else step_fn(state, tokens)
    if cfg.guidance:
        cond, uncond = out[:batch], out[batch:]
        out = uncond + (cond - uncond) * coef.astype(out.dtype)[:, None, None]
    return out, state


def _check_output(out: tp.Any, cfg: Config, batch: int, n_q: int) -> None:
    """The step function's output must be logits `[B, K, card]` or tokens `[B, K]` (trace time)."""
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if cfg.step_returns == "tokens":
        if shape != (batch, n_q) or dtype is None or not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(
                f"with step_returns='tokens' the step function must return int tokens [B={batch}, K={n_q}]; "
                f"got shape {shape}, dtype {dtype}"
            )
        return
    if shape is None or len(shape) != 3 or shape[:2] != (batch, n_q):
        raise ValueError(f"the step function must return logits [B={batch}, K={n_q}, card]; got shape {shape}")
    if cfg.eos_token is not None and not cfg.eos_token < shape[2]:
        raise ValueError(f"`eos_token`={cfg.eos_token} is not a code the model can sample (card={shape[2]})")


def _step(step_fn: tp.Callable, cfg: Config, carry: Carry, first: bool) -> Carry:
    """Writes step `carry.offset` from the step function's output on the steps before it."""
    seq, offset, lengths = carry.seq, carry.offset, carry.lengths
    batch, n_q, _ = seq.shape
    timestep = jnp.asarray(tables(cfg.pattern)[0])[:, offset]  # [K]
    current = jax.lax.dynamic_index_in_dim(seq, offset, axis=2, keepdims=False)  # [B, K]
    known = current != UNKNOWN
    special = (timestep[None, :] < 0) | (timestep[None, :] >= lengths[:, None])
    key = jax.random.fold_in(carry.key, offset)
    tokens = seq[..., : cfg.start] if first else jax.lax.dynamic_slice_in_dim(seq, offset - 1, 1, axis=2)
    settings = carry.sampling
    out, state = _call(step_fn, cfg, carry.state, tokens, StepInfo(offset, special, known, key), settings.cfg_coef)
    _check_output(out, cfg, batch, n_q)
    if cfg.step_returns == "tokens":
        token = out.astype(jnp.int32)
    else:
        token = sample_next_token(out, key, cfg.use_sampling, settings.temp, settings.top_k, settings.top_p)
    if cfg.eos_token is not None:
        # a generated codebook-0 code (a prompt code is one below the prompt length): read from the
        # carry, not from `seq`, so that XLA updates the sequence in place instead of copying it
        generated = (timestep[0] >= carry.prompt_lengths) & (timestep[0] < lengths)
        hit = generated & (token[:, 0] == cfg.eos_token)
        lengths = jnp.where(hit, jnp.minimum(lengths, timestep[0]), lengths)
    fill = jnp.int32(cfg.special_token)
    if cfg.fill_after is not None:  # two fill tokens: before each codebook's first code, and after it
        after = jnp.asarray(tables(cfg.pattern)[2])[:, offset]
        fill = jnp.where(after, jnp.int32(cfg.fill_after), fill)[None, :]
    token = jnp.where(special, fill, token)
    token = jnp.where(known, current, token)
    seq = jax.lax.dynamic_update_index_in_dim(seq, token, offset, axis=2)
    return carry._replace(seq=seq, state=state, offset=offset + 1, lengths=lengths)


def all_finished(cfg: Config, carry: Carry) -> jax.Array:
    """Whether every example's frames before its length are written (always False without `eos_token`)."""
    if cfg.eos_token is None:
        return jnp.bool_(False)
    needed = jnp.take_along_axis(carry.needed, carry.lengths[:, None], axis=1)
    return jnp.all(needed < carry.offset)


def _codes(cfg: Config, carry: Carry) -> tuple[jax.Array, jax.Array]:
    """The codes `[B, K, T]` so far (fill past each length) and how many leading frames are complete."""
    codes, _, _ = cfg.pattern.revert_pattern_sequence(carry.seq, UNKNOWN)
    timesteps = cfg.pattern.timesteps
    if cfg.eos_token is not None:
        past = jnp.arange(timesteps)[None, None, :] >= carry.lengths[:, None, None]
        codes = jnp.where(past, jnp.int32(cfg.special_token), codes)
    complete = jnp.all(codes != UNKNOWN, axis=(0, 1))  # [T]
    ready = jnp.where(jnp.all(complete), timesteps, jnp.argmin(complete)).astype(jnp.int32)
    return codes, ready


def _initial(
    cfg: Config, prompt: jax.Array, prompt_lengths: jax.Array | None, state: tp.Any, key: tp.Any, sampling: Sampling
) -> Carry:
    """The sequence built from the prompt (codes past each prompt length unknown), before any call."""
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
    lengths = jnp.full((batch,), cfg.pattern.timesteps, jnp.int32)
    needed = _needed_steps(cfg, prompt_lengths) if cfg.eos_token is not None else jnp.zeros((batch, 0), jnp.int32)
    return Carry(seq, state, jnp.int32(cfg.start), lengths, prompt_lengths, needed, key, sampling)


def _advance(step_fn: tp.Callable, cfg: Config, carry: Carry, limit: tp.Any) -> Carry:
    """Steps until `limit` (exclusive) or until every example is finished: one `lax.while_loop`."""
    steps = len(cfg.pattern)

    def running(c: Carry) -> jax.Array:
        return (c.offset < jnp.minimum(limit, steps)) & ~all_finished(cfg, c)

    return jax.lax.while_loop(running, lambda c: _step(step_fn, cfg, c, False), carry)


@functools.partial(jax.jit, static_argnames=("cfg",))
def run_all(step_fn, state, prompt, prompt_lengths, key, sampling, *, cfg: Config) -> tuple[jax.Array, jax.Array]:
    """`generate`'s program: the first call, every step, then the codes and lengths."""
    carry = _step(step_fn, cfg, _initial(cfg, prompt, prompt_lengths, state, key, sampling), True)
    carry = _advance(step_fn, cfg, carry, len(cfg.pattern))
    codes, _ = _codes(cfg, carry)
    return codes, carry.lengths


@functools.partial(jax.jit, static_argnames=("cfg",))
def run_first(step_fn, state, prompt, prompt_lengths, key, sampling, *, cfg: Config) -> tuple:
    """`stream`'s first program: the first call; returns the carry and what is complete."""
    carry = _step(step_fn, cfg, _initial(cfg, prompt, prompt_lengths, state, key, sampling), True)
    return (carry, *_codes(cfg, carry), all_finished(cfg, carry) | (carry.offset >= len(cfg.pattern)))


@functools.partial(jax.jit, static_argnames=("cfg", "chunk_steps"))
def run_chunk(step_fn, carry: Carry, *, cfg: Config, chunk_steps: int) -> tuple:
    """`stream`'s chunk program: up to `chunk_steps` more steps; one compilation serves every chunk."""
    carry = _advance(step_fn, cfg, carry, carry.offset + chunk_steps)
    return (carry, *_codes(cfg, carry), all_finished(cfg, carry) | (carry.offset >= len(cfg.pattern)))
