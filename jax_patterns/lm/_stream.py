"""Streaming: `generate`'s loop in jitted chunks, yielding each frame as soon as every codebook holds it."""

from __future__ import annotations

import typing as tp

import jax
import numpy as np

from jax_patterns import Pattern
from jax_patterns._checks import check_int, check_pytree
from jax_patterns.lm._decode import Config, run_chunk, run_first
from jax_patterns.lm._generate import StepFn, prepare
from jax_patterns.lm._options import DecodeOptions, resolve

Progress = tp.Callable[[int, int], tp.Any]


class Stream:
    """The iterator `stream` returns: int32 frames `[B, K, n]`, in order, as soon as they are complete.

    Attributes:
      lengths: `[B]` numpy int32, each example's length as known so far
        (`timesteps` until its EOS is sampled); final once iteration ends.
      frames: frames yielded so far.
      chunks: chunks of decode steps run so far.
    """

    def __init__(self, fn: jax.tree_util.Partial, cfg: Config, chunk_steps: jax.Array, args: tuple, progress: tp.Any):
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
            carry, *out = run_first(self._fn, state, prompt, lengths, key, values, cfg=self._cfg)
        else:  # the carry is donated: the state is updated in place
            carry, *out = run_chunk(self._fn, self._carry, self._chunk_steps, cfg=self._cfg)
        self._carry = carry
        return tuple(out)

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
    options: DecodeOptions | None = None,
    *,
    chunk_steps: int,
    key: jax.Array | None = None,
    prompt_lengths: jax.typing.ArrayLike | None = None,
    progress: bool | Progress = False,
    **settings: tp.Any,
) -> Stream:
    """`generate`, yielding complete frames as it goes: an iterator of int32 numpy `[B, K, n]`.

    Decoding runs in jitted chunks of `chunk_steps` steps (one compiled program
    for every chunk and every chunk size, none per step; the decode state is
    donated, so the KV cache is never copied between chunks); after each chunk
    the host reads, in one transfer, the codes and how many leading frames are
    complete in every codebook of every example, and yields the new ones.
    Prompt frames come first (they are complete from the start), so the
    concatenation of the yields along the last axis is exactly `generate`'s
    codes with the same arguments. With `eos_token`, frames at or past an
    example's length are the special token, iteration stops when every example
    is finished (the last yield holds the remaining frames, up to `timesteps`),
    and the returned `Stream`'s `lengths` attribute holds the lengths. The next
    chunk is queued before the current one is read, so the device keeps
    decoding while the host copies.

    Args:
      step_fn: as for `generate`.
      state: as for `generate`.
      pattern: as for `generate`.
      prompt: as for `generate`.
      options: as for `generate`.
      key: as for `generate`.
      prompt_lengths: as for `generate`.
      **settings: as for `generate`.
      chunk_steps: decode steps per chunk (an int >= 1; values above the
        pattern's length are clamped to it): small chunks give frames sooner,
        large chunks fewer host round trips.
      progress: `True` for a tqdm bar over frames (stderr), or a callable
        `progress(frames_ready, timesteps)` called after every chunk.

    Returns:
      a `Stream` (an iterator of frames; `lengths` once iteration ends).

    Raises:
      ValueError, TypeError: as for `generate`; `chunk_steps` not a positive int;
        `progress` neither a bool nor a callable.

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
    chunk_steps = check_int("chunk_steps", chunk_steps, minimum=1, maximum=None)  # clamped to the pattern
    options = resolve(options, settings, "stream")
    if not (isinstance(progress, bool) or progress is None or callable(progress)):
        raise TypeError(f"`progress` must be a bool or a callable (ready, total), got {progress!r}")
    check_pytree("state", state)
    fn, (prompt, lengths, key, values), cfg = prepare(step_fn, pattern, prompt, options, key, prompt_lengths)
    callback = _Bar(pattern.timesteps) if progress is True else (progress if callable(progress) else None)
    chunk = jax.device_put(np.int32(min(chunk_steps, len(pattern))))
    chunks = Stream(fn, cfg, chunk, (jax.device_put(state), prompt, lengths, key, values), callback)
    chunks._pending = chunks._dispatch()  # trace errors surface here, and the first call starts at once
    return chunks
