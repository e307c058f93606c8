"""Packing: several examples of different lengths in one row of a fixed number of steps, host side (numpy).

Each example is interleaved with its own pattern (`provider.get_pattern(L_i)`)
and placed in a row after the examples before it. A packed batch carries:

- `tokens [B, K, S_row]`: the segments' sequences, the special token in padding;
- `targets [B, K, S_row]`: at each step, the code the logits there predict (-1
  where they predict nothing), so the loss needs no pattern and no revert
  (`lm.packed_cross_entropy`);
- `segment_ids [B, S_row]` (1, 2, ... within a row, 0 for padding) and
  `positions [B, S_row]` (steps within the segment): a block-diagonal causal
  mask and position embeddings make each segment see only itself, so a packed
  row computes exactly what its examples compute alone.

Everything here is numpy on the index arrays of `_indices` (cached per
pattern), so it runs in a data-loader worker without jax dispatches or
compilations. `segment` is the per-example step (what a grain pipeline maps);
`plan_rows` and `pack` place examples; `unpack` reverts each segment.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns import _indices
from jax_patterns._checks import INT32_LIMIT, check_codes, check_flag, check_int, check_int_token, check_provider

METHODS = ("first-fit", "best-fit")


def _codes(name: str, codes: tp.Any, n_q: int, special_token: int) -> np.ndarray:
    """Host codes `[K, L]`: integers in int32, none equal to `special_token` (`check_codes`, before any cast)."""
    array = np.asarray(check_codes(codes, name, n_q=n_q, below=None, ndim=2))
    if array.size and (array == special_token).any():
        raise ValueError(
            f"`{name}` holds the code {special_token}, the `special_token`; codes must differ from it "
            "(padding and empty positions would be indistinguishable from codes)"
        )
    if array.shape[1] == 0:
        raise ValueError(f"`{name}` has no timesteps; an empty example has nothing to train on")
    return array


def segment_steps(provider: tp.Any, length: int, keep_only_valid_steps: bool = True) -> int:
    """How many sequence steps an example of `length` timesteps takes (its pattern's (valid) length).

    Raises:
      TypeError: not a provider, a `length` that is not an int, a `keep_only_valid_steps` that is not a bool.
      ValueError: a negative `length`.
    """
    check_provider(provider)
    length = check_int("length", length, minimum=0)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    return _indices.layout_length(provider.get_pattern(length), kovs)


def segment(
    codes: tp.Any, provider: tp.Any, special_token: int, keep_only_valid_steps: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One example `[K, L]` interleaved with `provider.get_pattern(L)`: `(tokens [K, S], targets [K, S])`.

    `tokens` is `build_pattern_sequence(codes, special_token, keep_only_valid_steps)`;
    `targets[q, s]` is the code the logits at step `s` predict (`Pattern.logit_steps`),
    -1 where they predict none.

    Example:
      >>> import numpy as np
      >>> from jax_patterns import DelayedPatternProvider
      >>> tokens, targets = segment(np.array([[1, 2, 3], [4, 5, 6]]), DelayedPatternProvider(2), 9, False)
      >>> tokens.tolist(), targets.tolist()
      ([[9, 1, 2, 3, 9], [9, 9, 4, 5, 6]], [[1, 2, 3, -1, -1], [-1, 4, 5, 6, -1]])
    """
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    special_token = check_int_token("special_token", special_token)
    codes = _codes("codes", codes, check_provider(provider), special_token)
    n_q, length = codes.shape
    pattern = provider.get_pattern(length)
    steps = _indices.layout_length(pattern, kovs)
    indexes, _ = _indices.build_indexes(pattern, length, kovs)
    flat = np.concatenate([codes.reshape(-1).astype(np.int32), np.asarray([special_token], np.int32)])
    tokens = flat[indexes]
    reverse, mask = _indices.revert_indexes(pattern, steps, kovs, True)
    targets = np.full(n_q * steps + 1, -1, np.int32)
    targets[reverse[mask]] = codes.astype(np.int32)[mask]
    return tokens, targets[:-1].reshape(n_q, steps)


def plan_rows(steps: tp.Sequence[int], row_steps: int, method: str = "first-fit") -> list[list[int]]:
    """Places items of `steps[i]` sequence steps into rows of `row_steps` steps; returns each row's items.

    `first-fit` puts each item, in order, into the first row with room;
    `best-fit` into the row it fills the most. A new row opens when none has
    room.

    Raises:
      ValueError: an item longer than a row or shorter than one step, or an unknown method.
      TypeError: an item that is not an int.

    Example:
      >>> plan_rows([4, 5, 3, 3], 8)
      [[0, 2], [1, 3]]
      >>> plan_rows([4, 5, 3, 3], 8, "best-fit")
      [[0, 3], [1, 2]]
    """
    row_steps = check_int("row_steps", row_steps, minimum=1)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    steps = _sequence("steps", steps)
    rows: list[list[int]] = []
    room: list[int] = []
    for i, size in enumerate(steps):
        size = check_int(f"steps[{i}]", size, minimum=1)
        if size > row_steps:
            raise ValueError(f"example {i} takes {size} sequence steps, more than a row's row_steps={row_steps}")
        fits = [r for r, free in enumerate(room) if free >= size]
        if not fits:
            rows.append([i])
            room.append(row_steps - size)
            continue
        r = fits[0] if method == "first-fit" else min(fits, key=lambda r: (room[r], r))
        rows[r].append(i)
        room[r] -= size
    return rows


def _sequence(name: str, items: tp.Any) -> list[tp.Any]:
    """`items` as a list: a list, a tuple or a 1-D array (a string or a scalar is not a sequence of items)."""
    if isinstance(items, np.ndarray) and items.ndim == 1:
        return list(items)
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"`{name}` must be a list or tuple, got {type(items).__name__}")
    return list(items)


@dataclasses.dataclass(frozen=True, eq=False)
class Packed:
    """A packed batch (numpy). See the module docstring for the arrays.

    Built by `pack`; one built by hand is checked: every field's kind and shape, the placements inside the rows
    and each placement's steps those of its length's pattern. Two batches are equal when their arrays, placements,
    providers and layouts are.

    Raises:
      TypeError: a field of the wrong kind (None, float arrays, a non-provider, a non-bool flag).
      ValueError: a field of the wrong shape, a value outside int32, or a placement the rows cannot hold.

    Attributes:
      tokens: `[B, K, S_row]` int32.
      targets: `[B, K, S_row]` int32, -1 where nothing is predicted.
      segment_ids: `[B, S_row]` int32, 0 for padding.
      positions: `[B, S_row]` int32.
      placements: per input example, `(row, first step, steps, length)`.
      provider: the provider the segments were built with.
      keep_only_valid_steps: whether segments hold valid steps only.
    """

    tokens: np.ndarray
    targets: np.ndarray
    segment_ids: np.ndarray
    positions: np.ndarray
    placements: tuple[tuple[int, int, int, int], ...]
    provider: tp.Any
    keep_only_valid_steps: bool

    def __post_init__(self) -> None:
        n_q = check_provider(self.provider)
        kovs = check_flag("keep_only_valid_steps", self.keep_only_valid_steps)
        tokens = _int_array("tokens", self.tokens, 3, -INT32_LIMIT)
        if tokens.shape[1] != n_q:
            raise ValueError(f"`tokens` has shape {tokens.shape}; expected [B, K={n_q}, S_row] (the provider's n_q)")
        rows, _, row_steps = tokens.shape
        targets = _int_array("targets", self.targets, 3, -1)
        segment_ids = _int_array("segment_ids", self.segment_ids, 2, 0)
        positions = _int_array("positions", self.positions, 2, 0)
        for name, array, shape in (
            ("targets", targets, tokens.shape),
            ("segment_ids", segment_ids, (rows, row_steps)),
            ("positions", positions, (rows, row_steps)),
        ):
            if array.shape != shape:
                raise ValueError(f"`{name}` has shape {array.shape}; expected {shape} (from `tokens` {tokens.shape})")
        if not isinstance(self.placements, (list, tuple)):
            raise TypeError(f"`placements` must be a tuple of (row, start, steps, length), got {self.placements!r}")
        placements = list(self.placements)
        checked = []
        for i, placement in enumerate(placements):
            where = f"placements[{i}]"
            if not isinstance(placement, (list, tuple)) or len(placement) != 4:
                raise TypeError(f"`{where}` must be a (row, start, steps, length) tuple, got {placement!r}")
            row, start, steps, length = (
                check_int(f"{where}[{j}]", v, minimum=m) for j, (v, m) in enumerate(zip(placement, (0, 0, 0, 1)))
            )
            if row >= rows or start + steps > row_steps:
                raise ValueError(
                    f"`{where}`={tuple(placement)} is outside the {rows} rows of {row_steps} steps of `tokens`"
                )
            if steps != segment_steps(self.provider, length, kovs):
                raise ValueError(
                    f"`{where}`={tuple(placement)}: an example of length {length} takes "
                    f"{segment_steps(self.provider, length, kovs)} steps with keep_only_valid_steps={kovs}, not {steps}"
                )
            checked.append((row, start, steps, length))
        for name, value in (
            ("tokens", tokens),
            ("targets", targets),
            ("segment_ids", segment_ids),
            ("positions", positions),
            ("placements", tuple(checked)),
            ("keep_only_valid_steps", kovs),
        ):
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packed):
            return NotImplemented
        arrays = ("tokens", "targets", "segment_ids", "positions")
        return (
            all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)
            and self.placements == other.placements
            and self.keep_only_valid_steps == other.keep_only_valid_steps
            and bool(self.provider == other.provider)
        )

    __hash__ = None  # type: ignore[assignment]  # arrays: not hashable

    @property
    def padding_fraction(self) -> float:
        """The fraction of row steps that hold no segment."""
        return float(np.mean(self.segment_ids == 0)) if self.segment_ids.size else 0.0


def _int_array(name: str, value: tp.Any, ndim: int, minimum: int) -> np.ndarray:
    """A host integer array of rank `ndim` with values in `[minimum, 2**31)`, as int32 (checked before the cast)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        raise TypeError(f"`{name}` must be an integer array of rank {ndim}, got {value!r}")
    try:
        array = np.asarray(value)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`{name}` must be an integer array of rank {ndim}, got {type(value).__name__}") from err
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must be an integer array, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"`{name}` must have rank {ndim}, got shape {array.shape}")
    if array.size and (array.min() < minimum or array.max() >= INT32_LIMIT):
        bad = int(array.min()) if array.min() < minimum else int(array.max())
        raise ValueError(f"`{name}` holds {bad}; its values must lie in [{minimum}, 2**31)")
    return array.astype(np.int32)


def pack(
    examples: tp.Sequence[tp.Any],
    provider: tp.Any,
    *,
    row_steps: int,
    special_token: int,
    rows: int | None = None,
    method: str = "first-fit",
    max_segments: int | None = None,
    keep_only_valid_steps: bool = True,
) -> Packed:
    """Packs examples `[K, L_i]` into rows of `row_steps` sequence steps, each with its own pattern.

    Args:
      examples: codes `[K, L_i]` (numpy or lists), any lengths that fit a row.
      provider: the pattern provider; segment `i` uses `provider.get_pattern(L_i)`.
      row_steps: sequence steps per row.
      special_token: the token of padding and of the pattern's empty positions.
      rows: the number of rows to return (padding rows added); None: as many
        as the plan needs.
      method: `"first-fit"` or `"best-fit"` (see `plan_rows`).
      max_segments: at most this many examples per row (1: plain padding).
      keep_only_valid_steps: segments hold their pattern's valid steps only
        (audiocraft's training layout, `lm.pattern_cross_entropy`'s default).

    Returns:
      a `Packed` batch.

    Raises:
      ValueError: an example longer than a row, a row size too small for any
        pattern, mismatched K, more rows needed than `rows`, or a special
        token outside int32.
      TypeError: non-integer codes or special token (0.5, None).

    Example:
      >>> import numpy as np
      >>> from jax_patterns import DelayedPatternProvider
      >>> p = pack([np.ones((2, 3), int), np.ones((2, 1), int)], DelayedPatternProvider(2), row_steps=8,
      ...          special_token=9)
      >>> p.segment_ids.tolist(), p.positions.tolist(), p.padding_fraction
      ([[1, 1, 1, 1, 2, 2, 0, 0]], [[0, 1, 2, 3, 0, 1, 0, 0]], 0.25)
    """
    row_steps = check_int("row_steps", row_steps, minimum=1)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    special_token = check_int_token("special_token", special_token)
    if max_segments is not None:
        max_segments = check_int("max_segments", max_segments, minimum=1)
    n_q = check_provider(provider)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    examples = _sequence("examples", examples)
    arrays = [_codes(f"examples[{i}]", codes, n_q, special_token) for i, codes in enumerate(examples)]
    smallest = segment_steps(provider, 1, kovs)
    if row_steps < smallest:
        raise ValueError(
            f"`row_steps`={row_steps} is too small for any example: one timestep already takes {smallest} steps"
        )
    sizes = [segment_steps(provider, a.shape[1], kovs) for a in arrays]
    plan = _plan(sizes, row_steps, method, max_segments)
    count = len(plan) if rows is None else check_int("rows", rows, minimum=0)
    if len(plan) > count:
        raise ValueError(f"the examples need {len(plan)} rows of {row_steps} steps; `rows`={count}")
    tokens = np.full((count, n_q, row_steps), special_token, np.int32)
    targets = np.full((count, n_q, row_steps), -1, np.int32)
    segment_ids = np.zeros((count, row_steps), np.int32)
    positions = np.zeros((count, row_steps), np.int32)
    placements: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * len(arrays)
    for r, items in enumerate(plan):
        start = 0
        for number, i in enumerate(items, start=1):
            seq, tgt = segment(arrays[i], provider, special_token, kovs)
            end = start + seq.shape[1]
            tokens[r, :, start:end] = seq
            targets[r, :, start:end] = tgt
            segment_ids[r, start:end] = number
            positions[r, start:end] = np.arange(end - start)
            placements[i] = (r, start, end - start, arrays[i].shape[1])
            start = end
    return Packed(tokens, targets, segment_ids, positions, tuple(placements), provider, kovs)


def _plan(sizes: list[int], row_steps: int, method: str, max_segments: int | None) -> list[list[int]]:
    if max_segments == 1:
        for i, size in enumerate(sizes):
            if size > row_steps:
                raise ValueError(f"example {i} takes {size} sequence steps, more than a row's row_steps={row_steps}")
        return [[i] for i in range(len(sizes))]
    if max_segments is None:
        return plan_rows(sizes, row_steps, method)
    plan: list[list[int]] = []
    for row in plan_rows(sizes, row_steps, method):  # split rows over the limit, keeping order
        plan += [row[j : j + max_segments] for j in range(0, len(row), max_segments)]
    return plan


def unpack(
    sequence: tp.Any,
    packed: Packed,
    special_token: tp.Any = -1,
    model_output: bool = False,
    *,
    return_mask: bool = False,
) -> list[tp.Any]:
    """Reverts each segment of a packed `[B, K, S_row, ...]` sequence to `[K, L_i, ...]`, with its own pattern.

    The inverse of `pack` on its tokens. With `keep_only_valid_steps=False`,
    `unpack(packed.tokens, packed)[i]` is example `i`'s codes, every one. With
    `pack`'s default `keep_only_valid_steps=True` (audiocraft's training
    layout) a segment holds its pattern's valid steps only, and the codes of
    the trailing partial steps are in no row (for a delayed pattern, the last
    `max_delay - delay[q]` frames of codebook `q`): they come back as
    `special_token`, and `return_mask=True` says which positions a row holds.
    Per-step values with trailing axes (logits `[B, K, S_row, card]`) work
    too; with `model_output=True` the value of a code is read at the step whose
    logits predict it (as `revert_pattern_logits`).

    Args:
      sequence: `[B, K, S_row, ...]`, the packed batch's shape first.
      packed: what `pack` returned.
      special_token: the value of positions no step holds (fits `sequence`'s dtype).
      model_output: read each code at the step whose logits predict it.
      return_mask: also return, per example, bool `[K, L_i]`: True where the
        rows hold the position.

    Returns:
      per example, `[K, L_i, ...]`; with `return_mask`, `(values, mask)` pairs.

    Raises:
      ValueError: a sequence whose leading shape is not the packed batch's, or
        a special token outside its dtype.
      TypeError: a special token of the wrong kind.

    Example:
      >>> import numpy as np
      >>> from jax_patterns import DelayedPatternProvider
      >>> examples = [np.array([[1, 2], [3, 4]]), np.array([[5], [6]])]
      >>> p = pack(examples, DelayedPatternProvider(2), row_steps=8, special_token=9, keep_only_valid_steps=False)
      >>> [e.tolist() for e in unpack(p.tokens, p)]
      [[[1, 2], [3, 4]], [[5], [6]]]
      >>> valid = pack(examples, DelayedPatternProvider(2), row_steps=8, special_token=9)
      >>> [(e.tolist(), m.tolist()) for e, m in unpack(valid.tokens, valid, return_mask=True)][0]
      ([[1, 2], [3, -1]], [[True, True], [True, False]])
    """
    from jax_patterns._checks import special_token_key

    if not isinstance(packed, Packed):
        raise TypeError(f"`packed` must be a Packed batch (what `pack` returns), got {type(packed).__name__}")
    sequence = np.asarray(sequence)
    if sequence.shape[:3] != packed.tokens.shape:
        raise ValueError(f"`sequence` has shape {sequence.shape}; expected the packed {packed.tokens.shape} first")
    special_token_key(special_token, sequence.dtype, "sequence")
    model_output = check_flag("model_output", model_output)
    return_mask = check_flag("return_mask", return_mask)
    kovs = packed.keep_only_valid_steps
    n_q, rest = packed.provider.n_q, sequence.shape[3:]
    out: list[tp.Any] = []
    for row, start, steps, length in packed.placements:
        pattern = packed.provider.get_pattern(length)
        indexes, mask = _indices.revert_indexes(pattern, steps, kovs, model_output)
        flat = sequence[row, :, start : start + steps].reshape(n_q * steps, *rest)
        values = flat[np.minimum(indexes, n_q * steps - 1)]  # [K, L, ...]
        fill = np.asarray(special_token, dtype=sequence.dtype)
        values = np.where(mask.reshape(*mask.shape, *([1] * len(rest))), values, fill)
        out.append((values, np.asarray(mask, bool)) if return_mask else values)
    return out
