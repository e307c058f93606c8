"""Layer 2: a pattern frozen into static int32 index arrays (numpy, no jax).

The arrays are exactly audiocraft's scatter indexes and masks, computed with
vectorised numpy from the pattern's flattened coordinates, once per
(pattern, shape, flags), cached on the pattern and made read-only. Every
index fits int32: `Pattern` refuses patterns whose `n_q * steps` would not.

- `build_indexes(pattern, T, valid)` -> `[K, S]`: position in `z` flattened to
  `[K * T]`, `K * T` for the special token.
- `revert_indexes(pattern, S, valid, model_output)` -> `[K, T]`: position in the
  sequence flattened to `[K * S]`, `K * S` for the special token.

For `lengths=`: `full_tables` (what a family's `LengthRule` does arithmetic on),
and, for providers without a rule, `generic_row(s)` / `generic_tables`, made
from `provider.get_pattern(L)` for the lengths that occur (host lengths) or
for every length (traced lengths).
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


def step_owners(pattern: Pattern, keep_only_valid_steps: bool) -> np.ndarray:
    """`[S]` int32: the codebook whose code each step holds (-1 where none), for single-stream flattening.

    Raises:
      ValueError: a step holds two codes (the layout is not flattened).
    """
    key = ("owners", bool(keep_only_valid_steps))
    cached = pattern._cache.get(key)
    if cached is not None:
        return cached
    steps, _, qs = pattern.coords
    counts = np.bincount(steps, minlength=len(pattern))
    if counts.size and counts.max() > 1:
        step = int(np.argmax(counts > 1))
        raise ValueError(
            f"step {step} of the pattern holds {int(counts[step])} codes; a single stream needs one code per step "
            "(a flattened layout, e.g. UnrolledPatternProvider or DelayedPatternProvider with flatten_first)"
        )
    owners = np.full(len(pattern), -1, np.int32)
    owners[steps] = qs
    (result,) = read_only(owners[: layout_length(pattern, keep_only_valid_steps)].copy())
    pattern._cache[key] = result
    return result


# ---------------------------------------------------------------------------
# Tables for lengths= (per-example patterns)
# ---------------------------------------------------------------------------
GENERIC_LIMIT = 1 << 25
"""Most entries (int32) the all-lengths tables of a provider without a length rule may hold (128 MiB)."""


def full_tables(pattern: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """For the T_max pattern: `t_at [K, N]` (t at step, -1 if none) and `step_of [K, T]` (-1 if none).

    The per-example indexes of a family with a `LengthRule` are arithmetic on these.

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


def _pattern_for_length(pattern: Pattern, length: int) -> Pattern:
    """`pattern.provider.get_pattern(length)`, with its failure reported as a clear error."""
    provider = pattern.provider
    try:
        return provider.get_pattern(length)
    except Exception as err:  # noqa: BLE001 - re-raised naming the length and the provider
        raise ValueError(
            f"lengths= interleaves an example of length {length} with {provider!r}.get_pattern({length}), "
            f"which failed: {type(err).__name__}: {err}. The provider has no length rule, so every length that "
            "occurs is asked for (with traced lengths: every length in [0, T_max]); make get_pattern accept it"
        ) from err


def generic_row(pattern: Pattern, length: int, keep_only_valid_steps: bool, model_output: bool):
    """One length's tables for a provider without a length rule, from `provider.get_pattern(length)`.

    Returns `(ref_steps, t_src [K, S], pos [K, T])`: the length of that example's
    (valid) sequence, the `t` of each output cell of a build (-1 if special), and
    the step of each code in that example's sequence for a revert (-1 if none;
    the last one wins, as in audiocraft). `S` and `T` are the T_max pattern's.

    Raises:
      ValueError: `get_pattern(length)` fails, or is longer than the T_max pattern.
    """
    key = ("generic_row", length, keep_only_valid_steps, model_output)
    cached = pattern._cache.get(key)
    if cached is not None:
        return cached
    n_q, t_max = pattern.n_q, pattern.timesteps
    out_steps = layout_length(pattern, keep_only_valid_steps)
    own = _pattern_for_length(pattern, length)
    ref = layout_length(own, keep_only_valid_steps)
    if ref > out_steps:
        raise ValueError(
            f"{pattern.provider!r}.get_pattern({length}) has {ref} steps, more than get_pattern({t_max}) "
            f"({out_steps}); lengths= needs every shorter example's sequence to fit the T_max one"
        )
    steps, ts, qs = own.coords
    t_src = np.full((n_q, out_steps), -1, dtype=np.int32)
    keep = (steps < ref) & (ts < length)
    t_src[qs[keep], steps[keep]] = ts[keep]
    shift = 1 if model_output and own.starts_with_special_token() else 0
    pos = np.full((n_q, t_max), -1, dtype=np.int32)
    keep = (steps >= shift) & (steps < ref) & (ts < length)
    np.maximum.at(pos, (qs[keep], ts[keep]), steps[keep] - shift)
    result = pattern._cache[key] = (ref, *read_only(t_src, pos))
    return result


def generic_rows(pattern: Pattern, lengths: np.ndarray, keep_only_valid_steps: bool, model_output: bool):
    """`generic_row` for each host length (only the lengths that occur are asked), stacked over the batch.

    Returns numpy `(ref_steps [*batch], t_src [*batch, K, S], pos [*batch, K, T])`.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n_q, t_max = pattern.n_q, pattern.timesteps
    out_steps = layout_length(pattern, keep_only_valid_steps)
    ref = np.zeros(lengths.shape, dtype=np.int32)
    t_src = np.full((*lengths.shape, n_q, out_steps), -1, dtype=np.int32)
    pos = np.full((*lengths.shape, n_q, t_max), -1, dtype=np.int32)
    for length in np.unique(lengths).tolist():
        at = lengths == length
        ref[at], t_src[at], pos[at] = generic_row(pattern, length, keep_only_valid_steps, model_output)
    return ref, t_src, pos


def generic_tables(pattern: Pattern, keep_only_valid_steps: bool, model_output: bool):
    """`generic_row` for every length in `[0, T_max]`, for traced lengths: O(T_max^2 * K) entries.

    Returns read-only `(ref_steps [T+1], t_src [T+1, K, S], pos [T+1, K, T])`.

    Raises:
      ValueError: the tables would exceed `GENERIC_LIMIT` entries, or a length fails.
    """
    key = ("generic_tables", keep_only_valid_steps, model_output)
    cached = pattern._cache.get(key)
    if cached is not None:
        return cached
    n_q, t_max = pattern.n_q, pattern.timesteps
    size = (t_max + 1) * n_q * (layout_length(pattern, keep_only_valid_steps) + t_max)
    if size > GENERIC_LIMIT:
        raise ValueError(
            f"lengths= with the provider {pattern.provider!r}, which has no length rule, at T_max={t_max} needs "
            f"per-length tables of {size} entries (limit {GENERIC_LIMIT}) when the lengths are traced: every "
            "length has its own get_pattern. Pass host (numpy) lengths, which ask only the lengths that occur; "
            "declare a length_rule; or use a smaller T_max"
        )
    rows = [generic_row(pattern, length, keep_only_valid_steps, model_output) for length in range(t_max + 1)]
    ref = np.asarray([r[0] for r in rows], dtype=np.int32)
    result = pattern._cache[key] = read_only(ref, np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows]))
    return result
