"""Layer 1 (fast path): the built-in layouts as flat coordinate arrays, by vectorised numpy.

For each provider family, `*_coords(...)` returns `(steps, t, q, num_steps)`:
the coordinates of `get_pattern(T).layout` flattened in layout order (step by
step, and in the provider's order within a step) as int32 arrays, and the
number of steps. No Python loop runs over timesteps or codebooks, so a pattern
for T = 30000 costs milliseconds; the plain-Python layouts in `_providers.py`
stay the readable specification, and the tests check both agree on a grid.
"""

from __future__ import annotations

import numpy as np

Coords = tuple[np.ndarray, np.ndarray, np.ndarray, int]


def _i32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int32)


def delayed_coords(n_q: int, delays: tuple[int, ...], flatten_first: int, empty_initial: int, timesteps: int) -> Coords:
    """`DelayedPatternProvider`: special step, empty steps, flattened head, then delayed steps."""
    base = (0 if empty_initial < 0 else 1) + max(empty_initial, 0)
    head = min(timesteps, flatten_first)
    head_steps = base + np.arange(head * n_q, dtype=np.int32)
    head_t = np.repeat(np.arange(head, dtype=np.int32), n_q)
    head_q = np.tile(np.arange(n_q, dtype=np.int32), head)
    tail = max(timesteps + max(delays) - flatten_first, 0)  # steps j in [flatten_first, T + max_delay)
    j = flatten_first + np.arange(tail, dtype=np.int32)[:, None]
    t = j - _i32(delays)[None, :]
    keep = t >= flatten_first
    tail_steps = np.broadcast_to(base + head * n_q + (j - flatten_first), t.shape)[keep]
    tail_q = np.broadcast_to(np.arange(n_q, dtype=np.int32)[None, :], t.shape)[keep]
    return (
        np.concatenate([head_steps, tail_steps]),
        np.concatenate([head_t, t[keep]]),
        np.concatenate([head_q, tail_q]),
        base + head * n_q + tail,
    )


def unrolled_coords(n_q: int, flattening: tuple[int, ...], delays: tuple[int, ...], timesteps: int) -> Coords:
    """`UnrolledPatternProvider`: entries (t + delay, group coords) sorted by key, then coordinates."""
    flattening_a, delays_a = _i32(flattening), _i32(delays)
    inner_steps = int(flattening_a.max()) + 1
    horizon = timesteps + int(delays_a.max())
    # one entry per (t, inner step); empty inner steps are keyed by t and sort before groups of equal key
    inner = np.arange(inner_steps, dtype=np.int32)
    has_group = np.isin(inner, flattening_a)
    first_q = np.full(inner_steps, -1, dtype=np.int32)
    group_delay = np.zeros(inner_steps, dtype=np.int32)
    firsts = np.searchsorted(flattening_a, inner[has_group])
    first_q[has_group] = firsts
    group_delay[has_group] = delays_a[firsts]
    t = np.repeat(np.arange(horizon, dtype=np.int32), inner_steps)
    i = np.tile(inner, horizon)
    key = t + group_delay[i]
    emitted = ~has_group[i] | (key < horizon)
    t, i, key = t[emitted], i[emitted], key[emitted]
    nonempty = has_group[i]
    order = np.lexsort((first_q[i], t, nonempty, key))  # (key, coords): () first, then by (t, q)
    t, i, nonempty = t[order], i[order], nonempty[order]
    step_of_entry = 1 + np.arange(t.size, dtype=np.int32)
    # expand each group entry into its codebooks, in codebook order
    sizes = np.bincount(flattening_a, minlength=inner_steps)
    counts = np.where(nonempty, sizes[i], 0)
    steps = np.repeat(step_of_entry, counts)
    entry_t = np.repeat(t, counts)
    offsets = np.arange(steps.size, dtype=np.int32) - np.repeat(np.cumsum(counts) - counts, counts)
    q = np.repeat(first_q[i], counts) + offsets
    return steps, entry_t, q, 1 + int(t.size)


def coarse_first_coords(n_q: int, delays: tuple[int, ...], timesteps: int) -> Coords:
    """`CoarseFirstPattern`: special step, codebook 0 for every t, then codebooks 1.. with delays."""
    head_t = np.arange(timesteps, dtype=np.int32)
    max_delay = max(delays, default=0)
    j = np.arange(timesteps + max_delay, dtype=np.int32)[:, None]
    t = j - _i32(delays).reshape(1, -1)
    keep = t >= 0
    tail_steps = np.broadcast_to(1 + timesteps + j, t.shape)[keep]
    tail_q = np.broadcast_to(np.arange(1, n_q, dtype=np.int32)[None, :], t.shape)[keep]
    return (
        np.concatenate([1 + head_t, tail_steps]),
        np.concatenate([head_t, t[keep]]),
        np.concatenate([np.zeros(timesteps, dtype=np.int32), tail_q]),
        1 + 2 * timesteps + max_delay,
    )


def musiclm_coords(n_q: int, group_by: int, timesteps: int) -> Coords:
    """`MusicLMPattern`: special step, then per group of codebooks every timestep, one codebook a step."""
    groups = n_q // group_by
    g, t, r = np.meshgrid(
        np.arange(groups, dtype=np.int32),
        np.arange(timesteps, dtype=np.int32),
        np.arange(group_by, dtype=np.int32),
        indexing="ij",
    )
    steps = 1 + np.arange(n_q * timesteps, dtype=np.int32)
    return steps, t.reshape(-1), (g * group_by + r).reshape(-1), 1 + n_q * timesteps
