"""Single-stream flattening: a layout with one code per step, collapsed to one token stream, and back.

Models that put every codebook in one vocabulary (Bark's coarse model, SNAC /
Orpheus' 7 tokens per frame) read a flattened layout as a single stream: the
code of codebook `q` at a step becomes `code + offsets[q]`. `to_stream` and
`from_stream` convert a built sequence `[..., K, S]` to the stream `[..., S]`
and back; steps holding no code, and positions holding the special token (a
shorter example's padding with `lengths=`), carry the special token itself.
The step -> codebook map is a static table of the pattern, so both are one
gather under `jit` and `vmap`.
"""

from __future__ import annotations

import functools
import typing as tp

import numpy as np

from jax_patterns._layout import Pattern


@functools.lru_cache(maxsize=64)
def _codebook_of_step(pattern: Pattern) -> np.ndarray:
    """`[S]` int32: the codebook of each step's code (-1 where none); raises if a step holds two."""
    steps, _, qs = pattern.coords
    counts = np.bincount(steps, minlength=len(pattern))
    if counts.size and counts.max() > 1:
        step = int(np.argmax(counts > 1))
        raise ValueError(
            f"step {step} of the pattern holds {int(counts[step])} codes; a single stream needs one code per step "
            "(a flattened layout, e.g. UnrolledPatternProvider or DelayedPatternProvider with flatten_first)"
        )
    out = np.full(len(pattern), -1, np.int32)
    out[steps] = qs
    return out


def _lead(table: np.ndarray, ndim: int) -> tp.Any:
    """A static table with leading unit axes up to `ndim` (explicit broadcasting)."""
    import jax.numpy as jnp

    return jnp.asarray(table.reshape((1,) * (ndim - table.ndim) + table.shape))


def _offsets(offsets: tp.Sequence[int], n_q: int) -> np.ndarray:
    array = np.asarray(offsets)
    if array.shape != (n_q,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`offsets` must be {n_q} ints (one per codebook), got {offsets!r}")
    return array.astype(np.int32)


def to_stream(
    seq: tp.Any, pattern: Pattern, offsets: tp.Sequence[int], special_token: int, keep_only_valid_steps: bool = False
) -> tp.Any:
    """A built sequence `[..., K, S]` as one stream `[..., S]`: codebook `q`'s code `c` becomes `c + offsets[q]`.

    Raises:
      ValueError: a pattern with two codes at one step, or `offsets` not one int per codebook.

    Example:
      >>> import numpy as np
      >>> from jax_patterns import DelayedPatternProvider
      >>> p = DelayedPatternProvider(2, [0, 0], flatten_first=3, empty_initial=-1).get_pattern(3)
      >>> seq, _, _ = p.build_pattern_sequence(np.array([[1, 2, 3], [4, 5, 6]]), -1)
      >>> to_stream(seq, p, [100, 200], -1).tolist()
      [101, 204, 102, 205, 103, 206]
    """
    import jax.numpy as jnp

    owner = _codebook_of_step(pattern)
    steps = pattern.valid_steps if keep_only_valid_steps else len(pattern)
    owner, add = owner[:steps], _offsets(offsets, pattern.n_q)
    seq = jnp.asarray(seq)
    if seq.shape[-2:] != (pattern.n_q, steps):
        raise ValueError(f"`seq` has shape {seq.shape}; expected [..., K={pattern.n_q}, S={steps}]")
    picked = seq[..., np.maximum(owner, 0), np.arange(steps)]  # [..., S]: the owning codebook's value
    keep = _lead(owner >= 0, picked.ndim) & (picked != special_token)
    return jnp.where(keep, picked + _lead(add[np.maximum(owner, 0)], picked.ndim), special_token)


def from_stream(
    stream: tp.Any, pattern: Pattern, offsets: tp.Sequence[int], special_token: int, keep_only_valid_steps: bool = False
) -> tp.Any:
    """The inverse of `to_stream`: a stream `[..., S]` back to the sequence `[..., K, S]` (special elsewhere).

    Example:
      >>> import numpy as np
      >>> from jax_patterns import DelayedPatternProvider
      >>> p = DelayedPatternProvider(2, [0, 0], flatten_first=2, empty_initial=-1).get_pattern(2)
      >>> from_stream(np.array([101, 204, 102, 205]), p, [100, 200], -1).tolist()
      [[1, -1, 2, -1], [-1, 4, -1, 5]]
    """
    import jax.numpy as jnp

    owner = _codebook_of_step(pattern)
    steps = pattern.valid_steps if keep_only_valid_steps else len(pattern)
    owner, add = owner[:steps], _offsets(offsets, pattern.n_q)
    stream = jnp.asarray(stream)
    if stream.shape[-1] != steps:
        raise ValueError(f"`stream` has {stream.shape[-1]} steps; expected S={steps}")
    mine = np.arange(pattern.n_q)[:, None] == owner[None, :]  # [K, S]
    spread = stream[..., None, :]  # [..., 1, S]
    value = spread - _lead(add[np.maximum(owner, 0)], spread.ndim)
    return jnp.where(_lead(mine, spread.ndim) & (spread != special_token), value, special_token)
