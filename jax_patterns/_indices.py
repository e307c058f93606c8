"""Layer 2: a pattern frozen into static int32 index arrays (numpy, no jax).

The arrays are exactly audiocraft's scatter indexes and masks, computed with
vectorised numpy from the pattern's flattened coordinates, once per
(pattern, shape, flags), cached on the pattern and made read-only. Every
index fits int32: `Pattern` refuses patterns whose `n_q * steps` would not.

- `build_indexes(pattern, T, valid)` -> `[K, S]`: position in `z` flattened to
  `[K * T]`, `K * T` for the special token.
- `revert_indexes(pattern, S, valid, model_output)` -> `[K, T]`: position in the
  sequence flattened to `[K * S]`, `K * S` for the special token.
"""

from __future__ import annotations

import numpy as np

from jax_patterns._layout import Pattern, read_only


def layout_length(pattern: Pattern, keep_only_valid_steps: bool) -> int:
    """Number of steps of the (valid) layout, i.e. `S` of a built sequence."""
    return pattern.valid_steps if keep_only_valid_steps else len(pattern)


def build_indexes(pattern: Pattern, timesteps: int, keep_only_valid_steps: bool) -> tuple[np.ndarray, np.ndarray]:
    """Gather indexes `[K, S]` (int32) and mask `[K, S]` (bool) for building from `[K, timesteps]`."""
    key = ("build", timesteps, bool(keep_only_valid_steps))
    cached = pattern._cache.get(key)
    if cached is not None:
        return cached
    n_q = pattern.n_q
    length = layout_length(pattern, keep_only_valid_steps)
    steps, ts, qs = pattern.coords
    keep = (steps < length) & (ts < timesteps)
    if not keep.all():
        steps, ts, qs = steps[keep], ts[keep], qs[keep]
    indexes = np.full((n_q, length), n_q * timesteps, dtype=np.int32)
    indexes.reshape(-1)[qs * length + steps] = ts + qs * timesteps
    result = pattern._cache[key] = read_only(indexes, indexes != n_q * timesteps)
    return result  # type: ignore[return-value]


def revert_indexes(
    pattern: Pattern, sequence_steps: int, keep_only_valid_steps: bool, model_output: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Gather indexes `[K, T]` (int32) and mask `[K, T]` (bool) for reverting `[K, sequence_steps]`.

    With `model_output`, step `s + 1` of the layout is read from step `s` of the
    input (the logits at a step predict the next one), if the pattern starts with
    a special token. When a layout holds one `(t, q)` at several steps, the last
    one wins, as in audiocraft.
    """
    key = ("revert", sequence_steps, bool(keep_only_valid_steps), bool(model_output))
    cached = pattern._cache.get(key)
    if cached is not None:
        return cached
    n_q, timesteps = pattern.n_q, pattern.timesteps
    length = layout_length(pattern, keep_only_valid_steps)
    shift = 1 if model_output and pattern.starts_with_special_token() else 0
    steps, ts, qs = pattern.coords
    position = steps - shift
    keep = (steps >= shift) & (steps < length) & (position < sequence_steps) & (ts < timesteps)
    last = np.full((n_q, timesteps), -1, dtype=np.int64)
    np.maximum.at(last, (qs[keep], ts[keep]), position[keep])
    mask = last >= 0
    offsets = np.arange(n_q, dtype=np.int64)[:, None] * sequence_steps
    indexes = np.where(mask, last + offsets, n_q * sequence_steps).astype(np.int32)
    result = pattern._cache[key] = read_only(indexes, mask)
    return result  # type: ignore[return-value]
