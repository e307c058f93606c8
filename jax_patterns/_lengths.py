"""Layer 2 for variable lengths: how `get_pattern(L)` relates to `get_pattern(T_max)` (numpy, no jax).

An example of length `L` in a batch padded to `T_max` must be interleaved with
its own pattern, `provider.get_pattern(L)`, not with the pattern for `T_max`.
For the built-in families the two layouts are related by a simple map between
step indexes, which holds for every coordinate with `t < L`:

- delayed, parallel, unrolled: layout(L) is layout(T_max) cut short (identity);
- coarse-first: the second part starts at step `L + 1` instead of `T_max + 1`;
- MusicLM: each group of codebooks spans `L * group_by` steps, not `T_max * group_by`.

With that map, the step count `N(L)`, the reach of the layout (for
`max_delay`) and whether it starts with a special token in closed form, every
index of every example is arithmetic on O(K * T_max) tables: no table is
quadratic in T_max. A `LengthRule` gives both directions of the map with an
array module argument (`numpy` in tests, `jax.numpy` under jit). Custom
providers have no rule; `generic_tables` builds their per-length tables from
`get_pattern(L)` for every `L`, at O(T_max^2 * K) cost (see `GENERIC_LIMIT`).
The tests check every rule against real layouts over a grid of lengths.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns import _providers
from jax_patterns._layout import Pattern, read_only

GENERIC_LIMIT = 1 << 25
"""Most entries (int32) the per-length tables of a custom provider may hold (128 MiB)."""


def slice_length(n: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """`len(range(n)[:stop])`, elementwise: Python's slicing of a length-`n` layout."""
    stop = np.where(stop < 0, np.maximum(n + stop, 0), stop)
    return np.minimum(stop, n)


@dataclasses.dataclass(frozen=True)
class LengthRule:
    """The closed-form relation between the patterns for `L` and for `timesteps` (T_max).

    Hashable by value; a static argument of the compiled variable-length ops.
    """

    family: str  # "identity" (delayed, parallel, unrolled), "coarse_first" or "musiclm"
    n_q: int
    timesteps: int
    params: tuple  # family parameters for num_steps / reach / starts

    def num_steps(self, lengths: np.ndarray) -> np.ndarray:
        """`len(get_pattern(L).layout)` for each `L`."""
        return self._shape(lengths)[0]

    def _shape(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(num_steps, reach, starts_with_special)` for each L; reach = max t+1 over steps >= 1."""
        L = np.asarray(lengths, dtype=np.int64)
        kind, args = self.params[0], self.params[1:]
        if kind == "delayed":
            base, delays, flatten_first = args
            d0, dmax, k = delays[0], delays[-1], self.n_q
            head = np.minimum(L, flatten_first)
            tail = np.maximum(L + dmax - flatten_first, 0)
            n = base + head * k + tail
            head_reach = np.where((head >= 1) & ~((head * k == 1) & (base == 0)), head, 0)
            top = L + dmax - 1 - d0  # largest t of the delayed part, at its last step
            top_step = base + head * k + (L + dmax - 1 - flatten_first)
            tail_reach = np.where((tail > 0) & (top >= flatten_first) & (top_step >= 1), top + 1, 0)
            starts = (n > 0) & ((base >= 1) | ((head == 0) & (d0 > 0)))
            return n, np.maximum(head_reach, tail_reach), starts
        if kind == "unrolled":
            empty_inner, group_delays, dmax = args
            horizon = L + dmax
            n = 1 + empty_inner * horizon + sum(horizon - d for d in group_delays)
            reach = np.maximum(horizon - min(group_delays), 0)
            return n, reach, np.ones_like(L, dtype=bool)
        if kind == "coarse_first":
            (delays,) = args
            dmax = max(delays, default=0)
            n = 1 + 2 * L + dmax
            second = np.maximum(L + dmax - delays[0], 0) if delays else np.zeros_like(L)
            return n, np.maximum(L, second), np.ones_like(L, dtype=bool)
        if kind == "musiclm":
            return 1 + self.n_q * L, L, np.ones_like(L, dtype=bool)
        raise AssertionError(kind)

    def ref_steps(self, lengths: np.ndarray, keep_only_valid_steps: bool) -> np.ndarray:
        """Length of the (valid) layout for each `L`: the `S` of that example's sequence."""
        n, reach, _ = self._shape(lengths)
        if not keep_only_valid_steps:
            return n
        return slice_length(n, n - (reach - np.asarray(lengths, dtype=np.int64)))

    def starts_with_special(self, lengths: np.ndarray) -> np.ndarray:
        return self._shape(lengths)[2]

    def to_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any) -> tp.Any:
        """Step of layout(L) -> step of layout(T_max) holding the same `t < L` coordinates."""
        if self.family == "coarse_first":
            return xp.where(steps <= lengths, steps, steps + (self.timesteps - lengths))
        if self.family == "musiclm":
            group_by = self.params[1]
            block = xp.maximum(lengths * group_by, 1)
            r = xp.maximum(steps - 1, 0)
            return xp.where(steps == 0, 0, 1 + (r // block) * (self.timesteps * group_by) + r % block)
        return steps

    def from_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any) -> tp.Any:
        """Step of layout(T_max) -> step of layout(L), for coordinates with `t < L`."""
        if self.family == "coarse_first":
            return xp.where(steps <= self.timesteps, steps, steps - (self.timesteps - lengths))
        if self.family == "musiclm":
            group_by = self.params[1]
            block = max(self.timesteps * group_by, 1)
            r = xp.maximum(steps - 1, 0)
            return xp.where(steps == 0, 0, 1 + (r // block) * (lengths * group_by) + r % block)
        return steps


def rule_for(provider: tp.Any, timesteps: int) -> LengthRule | None:
    """The `LengthRule` of a built-in provider's patterns, or None for a custom provider."""
    p = _providers
    if isinstance(provider, p.DelayedPatternProvider):
        base = (0 if provider.empty_initial < 0 else 1) + max(provider.empty_initial, 0)
        params: tuple = ("delayed", base, provider.delays, provider.flatten_first)
        return LengthRule("identity", provider.n_q, timesteps, params)
    if isinstance(provider, p.UnrolledPatternProvider):
        inner = max(provider.flattening) + 1
        groups = {f: d for f, d in zip(provider.flattening, provider.delays)}
        params = ("unrolled", inner - len(groups), tuple(groups.values()), max(provider.delays))
        return LengthRule("identity", provider.n_q, timesteps, params)
    if isinstance(provider, p.CoarseFirstPattern):
        return LengthRule("coarse_first", provider.n_q, timesteps, ("coarse_first", provider.delays))
    if isinstance(provider, p.MusicLMPattern):
        return LengthRule("musiclm", provider.n_q, timesteps, ("musiclm", provider.group_by))
    return None


def full_tables(pattern: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """For the T_max pattern: `t_at [K, N]` (t at step, -1 if none) and `step_of [K, T]` (-1 if none).

    Raises:
      ValueError: a `(q, t)` appears at several steps (no built-in pattern does that).
    """
    cached = pattern._cache.get("full_tables")
    if cached is not None:
        return cached
    steps, ts, qs = pattern.coords
    n_q, timesteps = pattern.n_q, pattern.timesteps
    t_at = np.full((n_q, len(pattern)), -1, dtype=np.int32)
    t_at[qs, steps] = ts
    inside = ts < timesteps
    step_of = np.full((n_q, timesteps), -1, dtype=np.int32)
    step_of[qs[inside], ts[inside]] = steps[inside]
    if int(inside.sum()) != int((step_of >= 0).sum()):
        raise ValueError(f"{pattern} places some (q, t) at several steps; lengths= needs each at most once")
    result = pattern._cache["full_tables"] = read_only(t_at, step_of)
    return result  # type: ignore[return-value]


def generic_tables(pattern: Pattern, keep_only_valid_steps: bool, model_output: bool) -> dict[str, np.ndarray]:
    """Per-length tables for a custom provider, from `provider.get_pattern(L)` for every L.

    Returns `ref_steps [T+1]`, `t_src [T+1, K, S]` (build: t of each output cell,
    -1 if special) and `pos [T+1, K, T]` (revert: step of each code in that
    example's sequence, -1 if none). Cost: T+1 patterns and O(T^2 * K) memory.

    Raises:
      ValueError: the tables would exceed `GENERIC_LIMIT` entries.
    """
    key = ("generic", keep_only_valid_steps, model_output)
    cached = pattern._cache.get(key)
    if cached is not None:
        return cached
    n_q, t_max = pattern.n_q, pattern.timesteps
    out_steps = pattern.valid_steps if keep_only_valid_steps else len(pattern)
    size = (t_max + 1) * n_q * (out_steps + t_max)
    if size > GENERIC_LIMIT:
        raise ValueError(
            f"lengths= with the custom provider {pattern.provider!r} at T_max={t_max} needs per-length tables of "
            f"{size} entries (limit {GENERIC_LIMIT}): every length has its own get_pattern. Use a built-in "
            "provider, a smaller T_max, or call the operations once per length"
        )
    ref_steps = np.zeros(t_max + 1, dtype=np.int32)
    t_src = np.full((t_max + 1, n_q, out_steps), -1, dtype=np.int32)
    pos = np.full((t_max + 1, n_q, t_max), -1, dtype=np.int32)
    for length in range(t_max + 1):
        p = pattern.provider.get_pattern(length)
        steps, ts, qs = p.coords
        ref = p.valid_steps if keep_only_valid_steps else len(p)
        if ref > out_steps:
            raise ValueError(f"get_pattern({length}) is longer than get_pattern({t_max}); lengths= needs it shorter")
        ref_steps[length] = ref
        keep = (steps < ref) & (ts < length)
        t_src[length, qs[keep], steps[keep]] = ts[keep]
        shift = 1 if model_output and p.starts_with_special_token() else 0
        keep = (steps >= shift) & (steps < ref) & (ts < length)
        np.maximum.at(pos[length], (qs[keep], ts[keep]), steps[keep] - shift)  # the last one wins, as in audiocraft
    result = pattern._cache[key] = dict(zip(("ref_steps", "t_src", "pos"), read_only(ref_steps, t_src, pos)))
    return result
